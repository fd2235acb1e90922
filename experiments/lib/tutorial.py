"""Shared setup of the PyTorch-tutorial studies (``loss_functions``, ``learning_rate``,
``architectures``): MNIST normalized to [−1, 1] and flattened, a 784-128-64-10 ReLU network
initialised like PyTorch's ``nn.Linear`` (``scheme="uniform"``: U(±1/√fan_in) for weights
and biases), SGD with momentum 0.9 on batches of 64, and the per-run record and report
blocks (test accuracy, per-class one-vs-rest accuracy and recall, confusion matrix, time).

The log-softmax output layer of the tutorial is the loss's business here: the network
returns logits, and "nll" / "kl_divergence" apply ``log_softmax`` (argmax is unchanged).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from experiments.lib import plots
from experiments.lib.config import StudyConfig
from experiments.lib.numbers import format_seconds
from experiments.lib.report import Report
from experiments.lib.results import divergence, run_record
from jaxnet import data, evaluate, losses, mlp, train
from jaxnet.history import History

HIDDEN = (128, 64)
BATCH_SIZE = 64
MOMENTUM = 0.9
TUTORIAL_EPOCHS = 15
INIT_SCHEME = "uniform"
QUICK_TRAIN, QUICK_TEST = 3000, 1000


@dataclasses.dataclass(frozen=True)
class TutorialConfig(StudyConfig):
    """The PyTorch tutorial's settings, shared by the studies built on its network."""

    hidden: tuple[int, ...] = HIDDEN
    """hidden-layer widths"""
    batch_size: int = BATCH_SIZE
    """minibatch size"""
    momentum: float = MOMENTUM
    """heavy-ball momentum of SGD"""
    init: str = INIT_SCHEME
    """weight initialisation (mlp.init scheme; "uniform" is PyTorch's nn.Linear)"""
    epochs: int = TUTORIAL_EPOCHS
    """training epochs"""
    train_images: int = 0
    """training images, a stratified subset (0: all 60,000)"""
    test_images: int = 0
    """test images, a stratified subset (0: all 10,000)"""

    def quick_variant(self):
        return dataclasses.replace(self, train_images=QUICK_TRAIN, test_images=QUICK_TEST, epochs=1)
SOURCE = ("the PyTorch-tutorial MNIST study (784-128-64-10 ReLU MLP, log-softmax output, inputs in [−1, 1], "
          "batch 64, SGD with momentum 0.9, 15 epochs), as quoted in the jaxnet issue")


class Data(NamedTuple):
    x_train: np.ndarray  # (n, 784) float32 in [−1, 1]
    y_train: np.ndarray  # (n,) int32
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]


def load_data(config: TutorialConfig, study: Any) -> Data:
    """MNIST as the tutorial prepares it; ``train_images`` / ``test_images`` > 0 take stratified subsets."""
    ds = study.load("mnist")
    x_train, y_train, x_test, y_test = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    if config.train_images:
        x_train, y_train = data.stratified_subset(x_train, y_train, config.train_images, seed=config.seed)
    if config.test_images:
        x_test, y_test = data.stratified_subset(x_test, y_test, config.test_images, seed=config.seed)
    prep = lambda x: data.flatten(data.normalize(data.scale(x), 0.5, 0.5))  # noqa: E731  ToTensor + Normalize(0.5, 0.5)
    return Data(prep(x_train), np.asarray(y_train), prep(x_test), np.asarray(y_test), list(ds.class_names))


def config_problems(config: TutorialConfig) -> list[tuple[str, str, str]]:
    """``(flag, problem, fix)`` for the tutorial settings that cannot run: subsets larger than
    MNIST, a batch larger than the training set, a non-positive width, momentum outside [0, 1)."""
    problems = []
    for name, size, total in (("--train-images", config.train_images, 60_000),
                              ("--test-images", config.test_images, 10_000)):
        if not 0 <= size <= total:
            problems.append((name, f"{size} is not in [0, {total:,}]", f"give 0 (all {total:,} images) or a smaller subset"))
    n_train = config.train_images or 60_000
    if not 1 <= config.batch_size <= n_train:
        problems.append(("--batch-size", f"{config.batch_size} is not in [1, {n_train:,}] (the training images)",
                         "use a smaller batch or more --train-images"))
    if any(width < 1 for width in config.hidden):
        problems.append(("--hidden", f"widths {list(config.hidden)} include one below 1", "give widths of at least 1"))
    if not 0 <= config.momentum < 1:
        problems.append(("--momentum", f"{config.momentum} is not in [0, 1)", "use e.g. 0.9"))
    return problems


def layer_sizes(hidden: Sequence[int]) -> list[int]:
    return [784, *hidden, 10]


def model(hidden: Sequence[int] = HIDDEN, scheme: str = INIT_SCHEME) -> mlp.Model:
    """The tutorial's ReLU MLP; the default scheme is PyTorch's ``nn.Linear`` initialisation."""
    return mlp.model(layer_sizes(hidden), activation=mlp.RELU, scheme=scheme)


def optimizer(learning_rate: float, momentum: float = MOMENTUM) -> Any:
    """``torch.optim.SGD(lr, momentum=0.9)``: heavy-ball momentum, no dampening, no weight decay."""
    return train.make_optimizer("momentum", learning_rate=learning_rate, momentum=momentum)


def describe_setup(epochs: int, quick: bool, n_train: int, n_test: int) -> str:
    """The common "what was run" sentences."""
    shortened = "" if epochs == TUTORIAL_EPOCHS else (
        f" **{epochs} epochs instead of the tutorial's {TUTORIAL_EPOCHS}**, to fit the time budget of the "
        f"full suite on a 2-core CPU; `--epochs {TUTORIAL_EPOCHS}` runs the original setting.")
    return (f"MNIST ({n_train:,} training, {n_test:,} test images{', a --quick subset' if quick else ''}), "
            "pixels scaled to [0, 1] and normalized with mean 0.5, std 0.5 to [−1, 1], flattened to 784. "
            "ReLU MLP, log-softmax output (the loss applies it to the logits), PyTorch `nn.Linear` "
            "initialisation (`mlp.init(scheme=\"uniform\")`: weights and biases U(±1/√fan_in); PyTorch's "
            "kaiming_uniform(a=√5) weight init is exactly this bound). SGD with momentum 0.9, batch 64 "
            "(the last incomplete batch of each epoch is dropped), a fresh shuffle every epoch; "
            f"{epochs} epochs.{shortened} Every number is the model after the last epoch on the test set "
            "(the tutorial has no validation split).")


@jax.jit
def _probe(params: mlp.Params, x: jax.Array, y: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
    """Accuracy on (x, y), and per hidden layer the fraction of ReLU units that are zero for every image."""
    zs, activations = mlp.forward(params, x)
    accuracy = jnp.mean(jnp.argmax(zs[-1], axis=-1) == y)
    return accuracy, [jnp.mean(jnp.all(a <= 0, axis=0)) for a in activations[1:]]


def record(name: str, config: Mapping[str, Any], history: History, params: Any, data_: Data, *,
           loss: losses.Loss, seconds: float) -> dict[str, Any]:
    """One run for ``results.json``: test metrics of ``params`` (the last epoch's, or the last
    finite ones if the run diverged), per-class recall and one-vs-rest accuracy, confusion matrix,
    the final training accuracy and the fraction of dead ReLU units on the training set.

    The engine runs with ``eval_train=False`` (the curves are test curves, as in the tutorial),
    so the training-set accuracy is measured once, here.
    """
    network = mlp.model(mlp.layer_sizes(params))
    test = evaluate.classifier(network, params, (data_.x_test, data_.y_test), loss=loss, num_classes=10)
    train_accuracy, dead = _probe(params, jnp.asarray(data_.x_train), jnp.asarray(data_.y_train))
    confusion = np.asarray(test["confusion_matrix"])
    predicted = confusion.sum(axis=0)
    final = {"train_accuracy": float(train_accuracy), "val_accuracy": None, "test_accuracy": test["accuracy"],
             "train_loss": None, "val_loss": None, "test_loss": test["loss"],
             "classes_predicted": int(np.count_nonzero(predicted)), "most_predicted_class": int(np.argmax(predicted)),
             "most_predicted_fraction": float(predicted.max() / max(predicted.sum(), 1)),
             "dead_unit_fraction": [float(f) for f in dead]}
    per_class = {"recall": test["per_class_recall"], "one_vs_rest_accuracy": test["per_class_one_vs_rest_accuracy"]}
    return run_record(name, config, history.to_dict(), final, per_class=per_class, confusion=confusion,
                      seconds=seconds, **divergence(history))


def test_accuracy_figure(out: Path, runs: Sequence[Mapping[str, Any]], filename: str, title: str) -> Path:
    """Test accuracy after every epoch, one line per run."""
    return plots.line_plot(out / filename, {r["name"]: r["history"]["epoch"] for r in runs},
                           {r["name"]: r["history"]["test_accuracy"] for r in runs},
                           "epoch", "test accuracy", title)


def test_loss_figure(out: Path, runs: Sequence[Mapping[str, Any]], filename: str, title: str,
                     ylabel: str = "test loss") -> Path:
    """Test-set loss after every epoch, one line per run, log scale (a diverged run's line ends)."""
    return plots.line_plot(out / filename, {r["name"]: r["history"]["epoch"] for r in runs},
                           {r["name"]: r["history"]["test_loss"] for r in runs}, "epoch", ylabel, title, logy=True)


def summary_rows(runs: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """Run, test accuracy, train accuracy, test loss, diverged, classes predicted, training time."""
    return [[r["name"], r["final"]["test_accuracy"], r["final"]["train_accuracy"], r["final"]["test_loss"],
             ("yes, epoch " + str(r["diverged_epoch"])) if r["diverged"] else "no",
             r["final"]["classes_predicted"], format_seconds(r["seconds"])] for r in runs]


SUMMARY_HEADERS = ["Run", "Test accuracy", "Train accuracy", "Test loss", "Diverged", "Classes predicted",
                   "Training time"]


def per_class_section(report: Report, out: Path, runs: Sequence[Mapping[str, Any]],
                      class_names: Sequence[str], *, confusion_for: Sequence[str] | None = None,
                      prefix: str = "confusion") -> Report:
    """Per-class one-vs-rest accuracy and recall (a table each, one column per run) and confusion
    matrices (one figure per run in ``confusion_for``, default every run)."""
    report.heading("Per-class results").text(
        "Two per-class numbers, named apart: the **one-vs-rest accuracy** (TPₖ + TNₖ)/N, the binary "
        "\"is it k?\" accuracy, which is the per-class accuracy the tutorial reports (with every image "
        "predicted as \"1\", class 0 still scores 1 − 980/10000 = 0.902); and the **recall** "
        "TPₖ/Nₖ, the fraction of class k's images classified as k.")
    report.per_class_tables(class_names, {r["name"]: r["per_class"] for r in runs})
    for run in runs:
        if confusion_for is not None and run["name"] not in confusion_for:
            continue
        slug = "".join(ch if ch.isalnum() else "_" for ch in run["name"]).strip("_")
        path = plots.confusion_matrix(out / f"{prefix}_{slug}.png", run["confusion"], class_names,
                                      title=f"{run['name']}: test accuracy {run['final']['test_accuracy']:.3f}")
        report.figure(path, f"Confusion matrix on the test set, {run['name']} (rows: true class, columns: predicted).")
    return report


def timing_note(runs: Sequence[Mapping[str, Any]], shared: bool) -> str:
    """A sentence on how the training times were measured."""
    seconds = sum({round(r["seconds"], 6): r["seconds"] for r in runs}.values()) if shared else sum(r["seconds"] for r in runs)
    extra = (" Members of one sweep train together as one vmapped program, so each member's time is its "
             "sweep's wall clock.") if shared else ""
    return (f"Training times are wall clock including compilation ({format_seconds(seconds)} of training "
            "in all), on a 2-core CPU that may have been shared with other jobs; they are not the tutorial's "
            "times." + extra)
