"""Logistic regression, 2 vs 3, with early stopping: one sigmoid output on 784 pixels in
[−1, 1] plus a bias, trained by SGD (batch 128, learning rate 0.05) on the 2s and 3s among the
first 20,000 MNIST training images (4,005) and validated on the 2s and 3s of the test set
(2,042) every fifth of an epoch; training stops after 10 checks without a lower validation
loss. The same run is made twice, in the stored order every epoch and reshuffled every epoch,
and the shuffled run is repeated for five data-order seeds (one vmapped sweep) to show how much
the stopping epoch depends on the order alone.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from experiments import lib
from experiments.lib import mnist, plots
from experiments.lib.claims import Claim
from experiments.lib.config import SEED_MAX
from experiments.lib.results import FINAL_KEYS, divergence
from jaxnet import data, engine, evaluate, losses, mlp, train
from jaxnet.history import History

NAME = "logistic_regression"
REPORTED = {"train_loss": 0.065, "val_loss": 0.065, "train_accuracy": 0.979, "val_accuracy": 0.979,
            "stop_fixed": 33, "stop_shuffled": 16}
SOURCE = "the original study's write-up (final cross-entropy 0.065, accuracy 0.979 / 0.979; stop at epoch 33, 16 when shuffled)"
PLATEAU = 0.01  # "flat": over the second half, the lowest validation loss falls per epoch by ≤ 1% of its swing within an epoch
SAWTOOTH = 0.5  # epoch-periodic when a loss changes less over one epoch than this fraction of its check-to-check change
METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
XY = tuple[np.ndarray, np.ndarray]  # images (n, 784) and labels (n,)


@dataclasses.dataclass(frozen=True)
class Config(lib.StudyConfig):
    positive: int = 2
    """the digit that becomes label 1"""
    negative: int = 3
    """the digit that becomes label 0"""
    first_images: int = 20_000
    """training set: the two digits among the first N MNIST training images (validation: the two digits of the test set)"""
    pixel_range: tuple[float, float] = (-1.0, 1.0)
    """pixels mapped linearly from 0..255 onto this range"""
    init: Literal["zeros", "uniform"] = "zeros"
    """initial weights: zeros, or U(±1/√784) as PyTorch's nn.Linear"""
    learning_rate: float = 0.05
    """SGD learning rate"""
    batch_size: int = 128
    """minibatch size"""
    epochs: int = 200
    """at most this many epochs (early stopping usually ends sooner)"""
    evals_per_epoch: int = 5
    """validation checks per epoch"""
    patience: int = 10
    """stop after this many checks without a lower validation loss"""
    shuffle_seeds: int = 5
    """reshuffled runs, one per data-order seed: seed, seed + 1, … (one vmapped sweep)"""

    def quick_variant(self) -> Config:
        return dataclasses.replace(self, first_images=4_000, epochs=3)

    def problems(self) -> list[tuple[str, str, str]]:
        if not (0 <= self.positive <= 9 and 0 <= self.negative <= 9) or self.positive == self.negative:
            return [("--positive", f"{self.positive} vs {self.negative}", "give two different digits 0–9")]
        if not 1 <= self.first_images <= mnist.N_TRAIN_IMAGES:
            return [("--first-images", f"{self.first_images:,}", f"use 1 … {mnist.N_TRAIN_IMAGES:,}")]
        low, high = self.pixel_range
        if not low < high:
            return [("--pixel-range", f"{low:g} {high:g}", "give the low end first, e.g. --pixel-range -1 1")]
        if not 1 <= self.batch_size <= self.first_images:
            return [("--batch-size", f"{self.batch_size} with {self.first_images:,} images scanned",
                     "use a batch smaller than the two digits' share of --first-images (about a fifth)")]
        if self.evals_per_epoch < 1 or self.patience < 1 or self.shuffle_seeds < 1:
            return [("--evals-per-epoch", f"{self.evals_per_epoch} checks per epoch, patience {self.patience}, "
                     f"{self.shuffle_seeds} seeds", "use at least 1 of each")]
        if self.seed + self.shuffle_seeds - 1 > SEED_MAX:
            return [("--shuffle-seeds", f"seeds up to {self.seed + self.shuffle_seeds - 1}", "use a smaller --seed")]
        return []  # lib.config has already refused a non-positive learning rate, batch or check count


def load_pair(config: Config, study: lib.Study) -> tuple[XY, XY]:
    """(train, validation) (x, y): the positive (label 1) and negative (label 0) digits among the first
    ``first_images`` training images and in the test set, flattened, pixels mapped onto ``pixel_range``."""
    ds = study.load("mnist")
    low, high = config.pixel_range
    # [0, 1] → [low, high] as (x − mean)/std: (−1, 1) is normalize(·, 0.5, 0.5), PyTorch's Normalize
    mean, std = -low / (high - low), 1 / (high - low)

    def pair(x: np.ndarray, y: np.ndarray) -> XY:
        x, y = data.binary_pair(x, y, positive=config.positive, negative=config.negative)
        return data.flatten(data.normalize(data.scale(x), mean, std)), y

    return pair(*data.first_n(ds.x_train, ds.y_train, config.first_images)), pair(ds.x_test, ds.y_test)


def zeros_init(_key: Any = None) -> mlp.Params:
    """w = 0, b = 0: the textbook start for logistic regression (the loss is convex)."""
    return [{"w": jnp.zeros((784, 1), jnp.float32), "b": jnp.zeros((1,), jnp.float32)}]


def model(config: Config) -> mlp.Model:
    """784 → 1 (no hidden layer): w = 0, b = 0 (``zeros``), or U(±1/√784) as PyTorch's nn.Linear (``uniform``)."""
    network = mlp.model([784, 1], scheme="uniform")
    return network._replace(init=zeros_init) if config.init == "zeros" else network


def final_metrics(history: History, params: Any) -> dict[str, Any]:
    """The numbers at the stopping check (last parameters), and at the check of the lowest validation loss."""
    at_best = {f"{m}_at_lowest_val_loss": history.at_epoch(m, history.best_epoch)
               for m in METRICS} if history.best_epoch is not None else {}
    with np.errstate(over="ignore"):  # a diverged run's weights may overflow: recorded as None
        weight_norm = float(np.sum(np.square(np.asarray(params[0]["w"]))))
    # no test set: the validation set is the test set's two digits
    last = {key: None if key.startswith("test_") else history.last(key) for key in FINAL_KEYS}
    return {**last, "stopped_epoch": history.stopped_epoch, "best_val_loss": history.best_val_loss,
            "best_val_loss_epoch": history.best_epoch, "weight_norm": weight_norm, **at_best}


def record(name: str, config: dict[str, Any], network: mlp.Model, history: History, params: Any, val_xy: tuple,
           seconds: float, class_names: Sequence[str]) -> dict[str, Any]:
    """The run's record: metrics at the stop and at the best check, confusion matrix on validation."""
    val = evaluate.classifier(network, params, val_xy, loss=losses.BINARY_CROSS_ENTROPY, num_classes=2)
    return lib.run_record(
        name, config, history.to_dict(), final_metrics(history, params), seconds=seconds, **divergence(history),
        per_class={"classes": list(class_names), "recall": val["per_class_recall"],
                   "one_vs_rest_accuracy": val["per_class_one_vs_rest_accuracy"]},
        confusion=val["confusion_matrix"])


def run(config: Config, study: lib.Study) -> dict[str, Any]:
    """The stored order (one fit), then reshuffled every epoch for every seed (one sweep)."""
    train_xy, val_xy = load_pair(config, study)
    class_names = [str(config.negative), str(config.positive)]  # label 0, label 1
    study.log(f"{len(train_xy[1])} training and {len(val_xy[1])} validation images ({config.positive} vs "
              f"{config.negative}), up to {config.epochs} epochs")
    network = model(config)
    optimizer = train.make_optimizer("sgd", learning_rate=config.learning_rate)
    shared = dict(epochs=config.epochs, batch_size=config.batch_size, loss=losses.BINARY_CROSS_ENTROPY, val=val_xy,
                  evals_per_epoch=config.evals_per_epoch, patience=config.patience)
    low, high = config.pixel_range
    base = {"train_images": len(train_xy[1]), "val_images": len(val_xy[1]), "positive": config.positive,
            "negative": config.negative, "first_images": config.first_images, "pixels": f"[{low:g}, {high:g}]",
            "init": config.init, "learning_rate": config.learning_rate, "batch_size": config.batch_size,
            "max_epochs": config.epochs, "evals_per_epoch": config.evals_per_epoch, "patience": config.patience,
            "optimizer": "sgd"}

    def stored_order(**options: Any) -> list[dict[str, Any]]:
        started = time.perf_counter()
        fit = engine.fit(network, network.init(jax.random.PRNGKey(config.seed)), optimizer, train_xy, shuffle=False,
                         seed=config.seed, **shared, **options)
        seconds = time.perf_counter() - started
        study.save_arrays("weights_stored_order", w=fit.params[0]["w"][:, 0])
        return [record("stored order", {**base, "shuffle": False, "seed": config.seed}, network, fit.history,
                       fit.params, val_xy, seconds, class_names)]

    seeds = list(range(config.seed, config.seed + config.shuffle_seeds))
    names = [f"shuffled, seed {s}" for s in seeds]

    def shuffled(**options: Any) -> list[dict[str, Any]]:
        started = time.perf_counter()
        result = engine.sweep(network, optimizer, train_xy, shuffle=True, init_seed=[config.seed] * len(seeds),
                              data_seed=seeds, **shared, **options)
        seconds = time.perf_counter() - started
        study.save_arrays("weights_shuffled", w=result.member(0)[0]["w"][:, 0])
        return [record(n, {**base, "shuffle": True, "seed": s}, network, h, result.member(k), val_xy,
                       seconds / len(seeds), class_names)
                for k, (n, s, h) in enumerate(zip(names, seeds, result.histories))]

    runs = study.train("fixed", ["stored order"], stored_order, label="stored order", epochs=config.epochs)
    runs += study.train("shuffled", names, shuffled, label=f"shuffled, {len(seeds)} seeds", epochs=config.epochs)
    return {"runs": runs, "headline": ("validation accuracy", runs[0]["final"]["val_accuracy"]),
            "reported": REPORTED, "shuffle_seeds": seeds}


# ---------------------------------------------------------------- the claims, from results alone
def ended(run: Mapping[str, Any]) -> float | None:
    """Where training ended: the early-stopping check, or the last check when patience never ran out."""
    stop, epochs = run["final"]["stopped_epoch"], run["history"]["epoch"]
    return stop if stop is not None else (epochs[-1] if epochs else None)


def plateau(history: Mapping[str, Any], checks_per_epoch: int) -> tuple[float, float] | None:
    """How flat the validation loss is where training ended: how much its lowest value so far fell per
    epoch over the second half of the run, and its swing over the last epoch's checks."""
    values = [(e, v) for e, v in zip(history["epoch"], history["val_loss"]) if v is not None]
    if len(values) < 2:
        return None
    epochs, val_losses = (np.array(column) for column in zip(*values))
    running = np.minimum.accumulate(val_losses)
    i_half = int(np.searchsorted(epochs, epochs[-1] / 2))
    span, last = float(epochs[-1]) - float(epochs[i_half]), val_losses[-checks_per_epoch:]
    return float(running[i_half] - running[-1]) / span if span > 0 else 0.0, float(last.max() - last.min())


def epoch_periodicity(history: Mapping[str, Any], checks_per_epoch: int, key: str = "train_loss") -> float | None:
    """mean |x[t + one epoch] − x[t]| / mean |x[t + 1] − x[t]| over the second half of the run:
    small when the curve repeats the same pattern every epoch (a saw-tooth); None if too short."""
    values = np.array([np.nan if v is None else v for v in history[key]], float)
    values = values[len(values) // 2:]
    if checks_per_epoch < 2 or len(values) < 3 * checks_per_epoch or not np.isfinite(values).all():
        return None
    step = np.mean(np.abs(np.diff(values)))
    return float(np.mean(np.abs(values[checks_per_epoch:] - values[:-checks_per_epoch])) / step) if step else None


def claims(results: Mapping[str, Any]) -> list[Claim]:
    """Every outcome the report states, each computed from ``results`` (none once a run diverged)."""
    runs, cfg = results["runs"], results["config"]
    if any(r["diverged"] for r in runs):
        return []
    fixed, shuffled = runs[0], runs[1:]
    ends = [ended(r) for r in shuffled]
    bounds = (("latest", max(ends), "every", "not every"), ("earliest", min(ends), "some", "no"))
    out = [Claim("the epoch where training ended (its early stop, or the last epoch)", "stored order, epoch",
                 ended(fixed), f"the {which} of the {len(shuffled)} reshuffled seeds,", end,
                 more=f"{yes} reshuffled seed stops earlier", less=f"{no} reshuffled seed stops earlier", digits=1)
           for which, end, yes, no in bounds]
    flat = plateau(fixed["history"], cfg["evals_per_epoch"])
    if flat is not None:
        out.append(Claim(
            "the stored order's validation loss over the second half of its run", "its lowest value so far falls "
            "per epoch by", flat[0], f"{PLATEAU:.0%} of its swing within the last epoch,", PLATEAU * flat[1],
            more="still falling clearly", less="flat",
            why=f"On a flat stretch, when patience ({cfg['patience']} checks without a new minimum) runs out is "
                "decided by differences this small, which makes the stopping point fragile."))
    for label, run_ in (("stored order", fixed), ("reshuffled every epoch", shuffled[0])):
        ratio = epoch_periodicity(run_["history"], cfg["evals_per_epoch"])
        if ratio is not None:
            out.append(Claim(
                "the training loss over the second half of the run (its change over one epoch per change between "
                "consecutive checks)", label, ratio, "the saw-tooth threshold", SAWTOOTH, reference=True,
                more="no one-epoch saw-tooth", less="a saw-tooth with a period of one epoch", digits=2,
                why="In the stored order the same batches come at the same point of every epoch and pull the model "
                    "the same way each time." if run_ is fixed else ""))
    return out


def curves_caption(results: Mapping[str, Any]) -> str:
    """The learning-curve caption: where each curve ends."""
    ends = "; ".join(f"the {r['name']} curve ends where early stopping fired (epoch {r['final']['stopped_epoch']:.1f})"
                     if r["final"]["stopped_epoch"] is not None else
                     f"the {r['name']} run did not stop early" for r in results["runs"][:2])
    return (f"Cross-entropy and accuracy at every check ({results['config']['evals_per_epoch']} per epoch), stored "
            f"order vs reshuffled every epoch (loss on a log axis); {ends}.")


def reported_rows(results: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    fixed, shuffled = results["runs"][0], results["runs"][1]
    f = fixed["final"]
    diverged = (f"The stored-order run diverged at epoch {fixed['diverged_epoch']}: not a trained model's value."
                if fixed["diverged"] else None)
    gone = [r["name"] for r in results["runs"] if r["diverged"]]
    rows = [(f"{quantity} (stored order, at stop)", REPORTED[key], f[key], diverged or (
                "Set by where training stopped (see the stopping-epoch rows)."
                if f[key] is None or abs(f[key] - REPORTED[key]) > 0.01 else None))
            for quantity, key in (("train cross-entropy", "train_loss"), ("validation cross-entropy", "val_loss"),
                                  ("train accuracy", "train_accuracy"), ("validation accuracy", "val_accuracy"))]
    return rows + [
        ("early-stopping epoch, stored order", REPORTED["stop_fixed"], f["stopped_epoch"], diverged or (
            "How flat the validation loss is where patience runs out decides the stop (see What the numbers say). The "
            "original's initialisation, data loader and floating-point details are unknown.")),
        (f"early-stopping epoch, shuffled (seed {shuffled['config']['seed']})", REPORTED["stop_shuffled"],
         shuffled["final"]["stopped_epoch"], f"Diverged: {', '.join(gone)}; no comparison." if gone else
         "Reported: the shuffled run stops earlier; whether every seed does here is under What the numbers say.")]


def diverged_text(results: Mapping[str, Any]) -> str | None:
    """The paragraph naming the runs whose loss became NaN or inf (None if none did)."""
    gone = [f"{r['name']} at epoch {r['diverged_epoch']}" + ("" if r["history"]["epoch"] else
                                                              " (its first: no finite check)")
            for r in results["runs"] if r["diverged"]]
    return ("**Diverged** (the loss became NaN or inf): " + "; ".join(gone)
            + ". Their numbers are not a trained model's; lower --learning-rate.") if gone else None


def run_row(run_: Mapping[str, Any]) -> list[Any]:
    """The run's row of the Runs table."""
    f = run_["final"]
    lowest = f"{lib.fmt(f['best_val_loss'], 4)} (epoch {lib.fmt(f['best_val_loss_epoch'], 1)})"
    return [run_["name"], f["stopped_epoch"], lowest, f["train_loss"], f["val_loss"], f["train_accuracy"],
            f["val_accuracy"], f.get("val_accuracy_at_lowest_val_loss"),
            f"yes, epoch {run_['diverged_epoch']}" if run_["diverged"] else "no"]


def report(results: dict[str, Any], out: Path) -> lib.Report:
    """report.md and its figures, from results.json and the saved weights."""
    cfg, runs = results["config"], results["runs"]
    fixed, shuffled = runs[0], runs[1]
    seeds = results["shuffle_seeds"]
    n_train, n_val = fixed["config"]["train_images"], fixed["config"]["val_images"]
    pos, neg, batch = cfg["positive"], cfg["negative"], cfg["batch_size"]
    steps = n_train // batch
    rep = lib.Report(f"Logistic regression, {pos} vs {neg}, with early stopping", quick=results["quick"])
    rep.what_was_run(
        f"Logistic regression (one output, `binary_cross_entropy`, the bias b as the bias input) on the "
        f"{n_train:,} {pos}s and {neg}s among the first {cfg['first_images']:,} MNIST training images, validated on "
        f"the {n_val:,} {pos}s and {neg}s of the test set (label 1 = digit {pos}). Pixels mapped to "
        f"{fixed['config']['pixels']}; initial weights: {cfg['init']}. Plain SGD, learning rate {cfg['learning_rate']}, "
        f"batch {batch}, validation {cfg['evals_per_epoch']} times per epoch, early stopping after {cfg['patience']} "
        f"checks without a lower validation loss (at most {cfg['epochs']} epochs). Run once in the stored order every "
        f"epoch and, as one vmapped sweep, reshuffled every epoch with data-order seeds {seeds}. The engine drops the "
        f"last incomplete batch of every epoch ({n_train} = {steps}×{batch} + {n_train % batch}); with the stored "
        f"order the same {n_train % batch} images are never seen. There is no separate test set: the validation set "
        f"is the test set's {pos}s and {neg}s. Epochs are fractional: the check after batch j of epoch e is at "
        f"e − 1 + j/{steps}.")
    curves = {"stored order": fixed["history"], f"shuffled every epoch (seed {seeds[0]})": shuffled["history"]}
    rep.figure(plots.learning_curves(out / "curves.png", curves, f"Logistic regression {pos} vs {neg}: train (solid) "
                                     "and validation (dashed)", logy=True), curves_caption(results))
    arrays = {"stored order": out / "arrays/weights_stored_order.npz",
              f"shuffled, seed {seeds[0]}": out / "arrays/weights_shuffled.npz"}
    weights = {title: np.load(path)["w"] for title, path in arrays.items() if path.exists()}
    if weights:
        grid = plots.image_grid(out / "weights.png", np.stack(list(weights.values())), shape=(28, 28),
                                titles=list(weights), title=f"Logistic-regression weights (red: evidence for {pos}, "
                                                            f"blue: for {neg})")
        rep.figure(grid, "The 784 weights as 28×28 images at the end of training.")
    stop_plot = plots.bar_chart(
        out / "stopping_epochs.png", ["stored order"] + [f"seed {s}" for s in seeds],
        [r["final"]["stopped_epoch"] for r in runs], "epoch at which training stopped",
        f"Early stopping: stored order vs reshuffled every epoch ({len(seeds)} seeds)", digits=1)
    rep.figure(stop_plot, f"Epoch of the stopping check for the stored order and for the {len(seeds)} data-order "
                          "seeds of the shuffled run (n/a: did not stop).")
    rep.heading("Runs").table(["Run", "Stopped at epoch", "Lowest val CE (epoch)", "Train CE", "Val CE", "Train acc",
                               "Val acc", "Val acc at lowest val CE", "Diverged"], map(run_row, runs), digits=3)
    rep.claims(claims(results))
    if diverged_text(results):
        rep.text(diverged_text(results))
    return rep.reported_vs_reproduced(reported_rows(results), source=SOURCE, digits=3)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__, datasets=("mnist",))


if __name__ == "__main__":
    main()
