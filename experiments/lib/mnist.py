"""MNIST in the splits the studies share, and the record of one trained classifier."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from jaxnet import data, evaluate, losses
from jaxnet.mlp import Model
from experiments.lib.results import divergence, run_record

N_TRAIN_IMAGES = 60_000


class Split(NamedTuple):
    """Flattened float32 pixels in [0, 1] and int32 labels."""

    train: tuple[np.ndarray, np.ndarray]  # the first n_train training images
    val: tuple[np.ndarray, np.ndarray]  # the last n_val training images
    test: tuple[np.ndarray, np.ndarray]  # the official 10,000 test images
    class_names: tuple[str, ...]


def nielsen_split(study: Any, *, n_train: int = 50_000, n_val: int = 10_000) -> Split:
    """MNIST in Nielsen's split: training images [0, n_train), validation [60,000 − n_val, 60,000).

    Raises:
      ValueError: the two ranges overlap.
    """
    if n_train + n_val > N_TRAIN_IMAGES:
        raise ValueError(f"{n_train:,} training + {n_val:,} validation images overlap: MNIST has "
                         f"{N_TRAIN_IMAGES:,}; lower one of them")
    ds = study.load("mnist")
    x, xt = (data.flatten(data.scale(a)).astype(np.float32) for a in (ds.x_train, ds.x_test))
    n = len(x)
    return Split((x[:n_train], ds.y_train[:n_train]), (x[n - n_val:], ds.y_train[n - n_val:]),
                 (xt, ds.y_test), tuple(ds.class_names))


def classifier_record(name: str, config: dict[str, Any], model: Model, params: Any, history: Any, test: tuple, *,
                      loss: losses.Loss = losses.SOFTMAX_CROSS_ENTROPY, num_classes: int | None = None,
                      seconds: float | None = None, **extra_final: Any) -> dict[str, Any]:
    """One run for ``results.json`` from a trained classifier: the last check's train and
    validation numbers, the test set evaluated once on ``params``, the best validation
    accuracy with the epoch where *that* accuracy first occurs, and the epoch of the lowest
    validation loss, each named for what it is.

    Args:
      model: the network ``params`` belong to (``mlp.model(...)``).
      history: the engine's :class:`~jaxnet.history.History` (possibly empty: a run that
        diverged in its first epoch has no finite check).
      seconds: training wall clock; default the history's last check (0 if it has none).
    """
    ev = evaluate.classifier(model, params, test, loss=loss, num_classes=num_classes)
    val_acc = [a for a in history.val_accuracy if a is not None]
    best_acc = max(val_acc, default=None)
    best_acc_epoch = None if best_acc is None else history.epoch[list(history.val_accuracy).index(best_acc)]
    final = {"train_accuracy": history.last("train_accuracy"), "val_accuracy": history.last("val_accuracy"),
             "test_accuracy": ev["accuracy"], "train_loss": history.last("train_loss"),
             "val_loss": history.last("val_loss"), "test_loss": ev["loss"],
             "best_val_accuracy": best_acc, "best_val_accuracy_epoch": best_acc_epoch,
             "best_val_loss": history.best_val_loss, "best_val_loss_epoch": history.best_epoch, **extra_final}
    if seconds is None:
        seconds = history.seconds[-1] if history.seconds else 0.0
    return run_record(name, config, history.to_dict(), final,
                      per_class={"recall": ev["per_class_recall"],
                                 "one_vs_rest_accuracy": ev["per_class_one_vs_rest_accuracy"]},
                      confusion=ev["confusion_matrix"], seconds=seconds, **divergence(history))
