"""The studies: each ``experiments/<name>.py`` reproduces one result and writes a report.

``jaxnet list`` (or ``python -m experiments``) lists them, ``python -m experiments.<name>``
runs one, ``python -m experiments.all`` runs every one, ``python -m experiments.main`` the
headline ones. The shared layer (config → run → results.json → report) is :mod:`experiments.lib`.
"""
from __future__ import annotations

import importlib.util

# Ordered: the order `python -m experiments` lists them and `experiments.all` runs them.
STUDIES: dict[str, str] = {
    "overfitting": "784-64-10 sigmoid MLP on 2,000 vs 50,000 images: the train/validation gap.",
    "random_labels": "Memorisation: the same network on random labels (2 and 10 classes) vs true labels.",
    "sigmoid_mlp": "784-20-10 with sigmoid outputs and the summed sigmoid cross-entropy.",
    "logistic_regression": "Logistic regression, 2 vs 3, early stopping, shuffled vs fixed order.",
    "regularization": "An L2 sweep (λ) as one program: softmax regression and an MLP.",
    "nielsen": "Nielsen's chapter 3 (overfitting, L2, more data, initialisation) with 5 seeds and an SVM line.",
    "loss_functions": "NLL, cross-entropy, MSE and KL divergence on the same 784-128-64-10 network.",
    "learning_rate": "A learning-rate sweep from 0.001 to 0.5 as one program; divergence reported.",
    "sharpness": "Why large learning rates kill the network: λ_max of the Hessian against (2+2β)/η.",
    "architectures": "Depth and width: test accuracy against the number of parameters.",
    "gurmukhi": "A 1024-256-64-10 MLP on handwritten Gurmukhi digits.",
    "svm": "Support-vector machines (scikit-learn) on the Gurmukhi pixels, four kernels.",
    "cnn": "A convolutional network in flax, trained with the same engine: ≥ 99% on MNIST.",
}
NAMES: tuple[str, ...] = tuple(STUDIES)


def module_name(name: str) -> str:
    """The module that runs study ``name``: ``experiments.<name>``."""
    return f"{__name__}.{name}"


def available(name: str) -> bool:
    """Whether ``experiments/<name>.py`` exists (without importing it)."""
    return importlib.util.find_spec(module_name(name)) is not None
