# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Overfitting, and what an L2 penalty does about it
#
# A 784-64-10 sigmoid network trained with plain SGD on only 2,000 MNIST images fits them
# almost perfectly while its accuracy on held-out images stalls: the gap between the two is
# overfitting. Then the same network as one `engine.sweep` over the L2 penalty λ — every
# member from the same initial weights and the same data order, compiled as one vmapped
# program — to see how the penalty trades training fit for a smaller gap.
#
# Everything here is the library API: `jaxnet.data` (loading, preprocessing), `jaxnet.mlp`
# (the model), `jaxnet.train` (the optimizer) and `jaxnet.engine` (`fit`, `sweep`). The
# scripted, longer version of the first half is `python -m experiments.overfitting`.
#
# Set `JAXNET_NOTEBOOK_QUICK=1` for tiny data and a few epochs (what the test suite runs);
# `JAXNET_MANUAL_DIR` to the folder holding the four MNIST `.gz` files if it is not
# `shared/data/mnist` beside the checkout.

# %%
import os
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

from jaxnet import data, engine, losses, mlp, train

QUICK = os.environ.get("JAXNET_NOTEBOOK_QUICK", "") not in ("", "0")
N_TRAIN = 500 if QUICK else 2_000
N_VAL = 1_000 if QUICK else 10_000
EPOCHS = 3 if QUICK else 100
LAMBDAS = [0.0, 1e-4, 1e-3, 1e-2]
LAYERS = [784, 64, 10]


def mnist_folder() -> Path | None:
    """The MNIST .gz files: $JAXNET_MANUAL_DIR, else a shared/data/mnist beside the checkout."""
    candidates = [os.environ.get("JAXNET_MANUAL_DIR")] + [str(p / "shared" / "data" / "mnist")
                                                           for p in Path.cwd().resolve().parents]
    return next((Path(c) for c in candidates if c and (Path(c) / "train-images-idx3-ubyte.gz").exists()), None)


mnist = data.load("mnist", manual_dir=mnist_folder())  # checksum-verified; no TensorFlow
pixels = data.flatten(data.scale(mnist.x_train)).astype(np.float32)  # (60000, 784) in [0, 1]
train_set = (pixels[:N_TRAIN], mnist.y_train[:N_TRAIN])  # the first N_TRAIN images
val_set = (pixels[-N_VAL:], mnist.y_train[-N_VAL:])  # the last N_VAL: never trained on
print(f"{N_TRAIN:,} training images, {N_VAL:,} validation images, {EPOCHS} epochs")

# %% [markdown]
# ## 1. One network on a small training set
#
# `engine.fit` compiles one epoch (a `lax.scan` over minibatches of a fresh permutation) and
# evaluates training and validation loss and accuracy after every epoch.

# %%
model = mlp.model(LAYERS, activation=mlp.SIGMOID)
params0 = model.init(jax.random.PRNGKey(0))
sgd = train.make_optimizer("sgd", learning_rate=0.1)
result = engine.fit(model, params0, sgd, train_set, epochs=EPOCHS, batch_size=32, val=val_set, log=None)
h = result.history
print(f"train accuracy {h.train_accuracy[-1]:.3f}, validation {h.val_accuracy[-1]:.3f}, "
      f"gap {h.train_accuracy[-1] - h.val_accuracy[-1]:.3f}")
print(f"lowest validation loss {h.best_val_loss:.3f} at epoch {h.best_epoch:g}; "
      f"at the end {h.val_loss[-1]:.3f}")

# %%
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
ax_loss.plot(h.epoch, h.train_loss, label="training")
ax_loss.plot(h.epoch, h.val_loss, "--", label="validation")
ax_loss.axvline(h.best_epoch, color="0.6", lw=1, ls=":", label="lowest validation loss")
ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
ax_acc.plot(h.epoch, h.train_accuracy, label="training")
ax_acc.plot(h.epoch, h.val_accuracy, "--", label="validation")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
for ax in (ax_loss, ax_acc):
    ax.grid(alpha=0.3)
    ax.legend()
fig.suptitle(f"784-64-10 sigmoid, SGD lr 0.1, {N_TRAIN:,} training images")
fig.tight_layout()
plt.show()

# %% [markdown]
# The training loss keeps falling; the validation loss bottoms out and climbs again: past that
# epoch the network is learning these particular images, not digits.
#
# ## 2. An L2 sweep as one program
#
# The penalty λ Σ‖W‖² pulls every weight towards zero with gradient 2λW. `engine.sweep` trains
# one member per λ, all in one compiled, vmapped program: the same initial weights
# (`params=params0`) and the same data order, so the members differ only in λ.

# %%
swept = engine.sweep(model, sgd, train_set, params=params0, l2=LAMBDAS, epochs=EPOCHS, batch_size=32,
                     val=val_set, log=None)
weight_norms = []
print(f"{'λ':>8} {'train acc':>10} {'val acc':>8} {'gap':>7} {'val loss':>9} {'Σ‖W‖²':>8}")
for k, (lam, hk) in enumerate(zip(LAMBDAS, swept.histories)):
    norm = float(losses.l2_penalty(swept.member(k), 1.0))
    weight_norms.append(norm)
    print(f"{lam:>8g} {hk.train_accuracy[-1]:>10.3f} {hk.val_accuracy[-1]:>8.3f} "
          f"{hk.train_accuracy[-1] - hk.val_accuracy[-1]:>7.3f} {hk.val_loss[-1]:>9.3f} {norm:>8.1f}")
assert len(swept.histories) == len(LAMBDAS) and not any(hk.diverged for hk in swept.histories)
# λ = 0 is the plain fit of section 1 (same init, same data order), up to float rounding
assert abs(swept.histories[0].val_accuracy[-1] - h.val_accuracy[-1]) < 0.01

# %%
colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(LAMBDAS)))
fig, (ax_gap, ax_val, ax_norm) = plt.subplots(1, 3, figsize=(15, 4))
for color, lam, hk in zip(colors, LAMBDAS, swept.histories):
    gap = np.array(hk.train_accuracy) - np.array(hk.val_accuracy)
    ax_gap.plot(hk.epoch, gap, color=color, label=f"λ = {lam:g}")
    ax_val.plot(hk.epoch, hk.val_loss, color=color, label=f"λ = {lam:g}")
ax_gap.set(xlabel="epoch", ylabel="train − validation accuracy", title="The generalisation gap")
ax_val.set(xlabel="epoch", ylabel="cross-entropy", title="Validation loss")
positive = [lam for lam in LAMBDAS if lam > 0]
ax_norm.plot(positive, weight_norms[1:], "o-", color="0.3")
ax_norm.axhline(weight_norms[0], color="0.6", ls="--", label="λ = 0")
ax_norm.set(xscale="log", xlabel="λ", ylabel="Σ‖W‖² at the end", title="Weights shrink with λ")
for ax in (ax_gap, ax_val, ax_norm):
    ax.grid(alpha=0.3)
    ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# A larger λ keeps the weights small and the gap narrow, at the price of training accuracy; a
# small λ lowers the validation loss without costing much. The study
# `python -m experiments.regularization` does this sweep at full size, for softmax regression
# and a deeper MLP, and writes a report with the numbers.
