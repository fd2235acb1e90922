"""Memorisation: a sigmoid/softmax MLP (784-256-k) trained with SGD (lr 0.2, batch 128) on
512 MNIST images whose labels were replaced, once, by labels drawn at random, for k = 2
classes (as reported) and k = 10. Trained long enough, the network drives its training
loss to about 0 and its training accuracy to 100% on labels that carry no information,
while its accuracy on held-out images stays at chance; the same network on the true labels
(digit parity for k = 2) fits them as well and generalises. For each k the true-label and
random-label networks share their shapes and run as one two-member sweep.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from experiments import lib
from experiments.lib import mnist, plots
from experiments.lib.claims import Claim
from jaxnet import data, engine, evaluate, mlp, train

NAME = "random_labels"
REPORTED_TEST_LOSS = 1.93
SOURCE = ("the project issue (2 random labels, lr 0.2, batch 128, up to 1,000 epochs: training loss about 0, "
          "test accuracy 50%, mean test loss about 1.93)")
MEMORISED = 0.99  # training accuracy that counts as "memorised"
CHANCE_TOLERANCE = 0.02  # |accuracy − 1/k| that still reads as "at chance" (10,000 test images: σ ≈ 0.005)
LABELS = ("true", "random")


@dataclasses.dataclass(frozen=True)
class Config(lib.StudyConfig):
    train_images: int = 512
    """training images to memorise: the first N MNIST training images"""
    val_images: int = 1_000
    """held-out images, with their true labels: the last N MNIST training images"""
    classes: tuple[int, ...] = (2, 10)
    """output sizes k to run: 2 (true labels: the digit's parity, 1 = odd) and/or 10 (the digit)"""
    hidden: int = 256
    """hidden units"""
    activation: Literal["sigmoid", "relu", "tanh"] = "sigmoid"
    """hidden-layer activation (the output is a softmax with cross-entropy)"""
    init: Literal[mlp.SCHEMES] = "lecun_normal"
    """weight initialisation (a jaxnet.mlp.init scheme)"""
    learning_rate: float = 0.2
    """SGD learning rate"""
    batch_size: int = 128
    """minibatch size"""
    epochs: int = 1000
    """training epochs"""

    def quick_variant(self) -> Config:
        return dataclasses.replace(self, train_images=256, hidden=64, epochs=40)

    def problems(self) -> list[tuple[str, str, str]]:
        if any(k not in (2, 10) for k in self.classes):  # lib.config has already refused a k given twice
            return [("--classes", " ".join(map(str, self.classes)), "give 2 and/or 10, each once")]
        if self.train_images < 1 or self.val_images < 1:
            return [("--train-images", f"{self.train_images} training / {self.val_images} held-out images",
                     "use at least 1 of each")]
        if self.train_images + self.val_images > mnist.N_TRAIN_IMAGES:
            return [("--train-images", f"{self.train_images:,} training + {self.val_images:,} held-out images "
                     "overlap", f"keep their sum ≤ {mnist.N_TRAIN_IMAGES:,}")]
        if not 1 <= self.batch_size <= self.train_images:
            return [("--batch-size", f"{self.batch_size} with {self.train_images} training images",
                     "use a batch between 1 and --train-images")]
        if self.hidden < 1:
            return [("--hidden", f"{self.hidden} units", "use at least 1 hidden unit")]
        return []  # lib.config has already refused a non-positive learning rate


def class_labels(y: np.ndarray, k: int) -> np.ndarray:
    """The true labels for a k-class network: the digit (k = 10) or its parity (k = 2: 1 = odd)."""
    return (y % 2).astype(np.int32) if k == 2 else y.astype(np.int32)


def run_names(k: int) -> list[str]:
    return [f"{k} classes, {labels} labels" for labels in LABELS]


def memorise(config: Config, split: mnist.Split, k: int, **options: Any) -> list[dict[str, Any]]:
    """One sweep of two members (true and random labels) for a k-output network."""
    x, y = split.train
    true = class_labels(y, k)
    shuffled = data.random_labels(true, num_classes=k, seed=config.seed)  # drawn once, fixed for the run
    val = (split.val[0], class_labels(split.val[1], k))
    test_true = (split.test[0], class_labels(split.test[1], k))
    test_random = (split.test[0], data.random_labels(test_true[1], num_classes=k, seed=config.seed + 1))
    layers = [784, config.hidden, k]
    network = mlp.model(layers, activation=mlp.activation(config.activation), scheme=config.init)
    started = time.perf_counter()
    result = engine.sweep(network, train.make_optimizer("sgd", learning_rate=config.learning_rate), (x, true),
                          epochs=config.epochs, batch_size=config.batch_size, labels=np.stack([true, shuffled]),
                          init_seed=[config.seed] * 2, data_seed=[config.seed] * 2, val=val, **options)
    seconds = time.perf_counter() - started  # the sweep's wall clock, shared by its two members
    shared = {"n_train": len(y), "layers": layers, "hidden": config.activation, "output": "softmax",
              "loss": "softmax_cross_entropy", "optimizer": "sgd", "learning_rate": config.learning_rate,
              "batch_size": config.batch_size, "epochs": config.epochs, "init": config.init, "pixels": "[0, 1]",
              "seed": config.seed, "true_labels": "digit parity (1 = odd)" if k == 2 else "digit",
              "val": f"last {len(val[1])} training images, true labels",
              "test": "MNIST test set, true labels (test_*_random_labels: random labels)"}
    runs = []
    for member, (name, labels) in enumerate(zip(run_names(k), LABELS)):
        params = result.member(member)
        on_random = evaluate.classifier(network, params, test_random, num_classes=k)
        runs.append(mnist.classifier_record(
            name, {"classes": k, "training_labels": labels, **shared}, network, params, result.histories[member],
            test_true, num_classes=k, seconds=seconds, test_accuracy_random_labels=on_random["accuracy"],
            test_loss_random_labels=on_random["loss"],
            labels_agreeing_with_truth=float(np.mean(shuffled == true)) if labels == "random" else 1.0))
    return runs


def run(config: Config, study: lib.Study) -> dict[str, Any]:
    """One two-member sweep (true and random labels) per output size k."""
    split = mnist.nielsen_split(study, n_train=config.train_images, n_val=config.val_images)
    runs: list[dict[str, Any]] = []
    for k in config.classes:
        study.log(f"{k} classes: true and random labels on {config.train_images} images, {config.epochs} epochs")
        runs += study.train(f"k{k}", run_names(k), functools.partial(memorise, config, split, k),
                            label=f"{k} classes", epochs=config.epochs)
    first = by_key(runs)[config.classes[0], "random"]
    return {"runs": runs, "headline": (f"training accuracy on random labels ({config.classes[0]} classes)",
                                       first["final"]["train_accuracy"])}


# ---------------------------------------------------------------- outcomes, from results alone
def by_key(runs: Sequence[Mapping[str, Any]]) -> dict[tuple[int, str], Mapping[str, Any]]:
    """(k, "true" | "random") → run."""
    return {(r["config"]["classes"], r["config"]["training_labels"]): r for r in runs}


def class_counts(results: Mapping[str, Any]) -> list[int]:
    """The output sizes k that were run, in run order."""
    return list(dict.fromkeys(r["config"]["classes"] for r in results["runs"]))


def epoch_reaching(history: Mapping[str, Any], key: str, threshold: float) -> float | None:
    """The first epoch at which ``history[key]`` ≥ threshold (None if never)."""
    return next((e for e, v in zip(history["epoch"], history[key]) if v is not None and v >= threshold), None)


def _finite(values: Sequence[Any]) -> list[tuple[int, float]]:
    return [(i, float(v)) for i, v in enumerate(values) if v is not None and math.isfinite(v)]


def diverged_sentence(run: Mapping[str, Any]) -> str:
    """Says that (and when) a run diverged; in its first epoch it has no history at all."""
    empty = not run["history"]["epoch"]
    return (f"The {run['name']} run diverged (its loss became NaN or inf) at epoch {run['diverged_epoch']}"
            + (", in its first epoch, so it has no finite check" if empty else "")
            + f"; its numbers are not meaningful. Lower --learning-rate (it was {run['config']['learning_rate']:g}).")


def lowest_val_loss(run_: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(epoch, value) of the lowest finite validation loss ((None, None) without one)."""
    i, v = min(_finite(run_["history"]["val_loss"]), key=lambda iv: iv[1], default=(None, None))
    return None if i is None else run_["history"]["epoch"][i], v


def training_loss_then_and_last(history: Mapping[str, Any]) -> tuple[float | None, float | None, float | None]:
    """(epoch, training loss then, training loss at the end), "then" a tenth of the run before the end."""
    values = _finite(history["train_loss"])
    if len(values) < 2:
        return None, None, None
    i_then, then = values[max(0, int(0.9 * len(values)) - 1)]
    return history["epoch"][i_then], then, values[-1][1]


def independent_guesses(run_: Mapping[str, Any]) -> tuple[float, float, float]:
    """(odd share of the test images, share the network calls odd, the accuracy guesses independent of
    the image would score on average): what a k = 2 held-out accuracy away from 50% comes from."""
    confusion = np.asarray(run_["confusion"], float)
    p_odd, q_odd = confusion[1].sum() / confusion.sum(), confusion[:, 1].sum() / confusion.sum()
    return p_odd, q_odd, p_odd * q_odd + (1 - p_odd) * (1 - q_odd)


def _apart(x: float | None, y: float | None) -> float | None:
    return None if x is None or y is None else abs(x - y)


def claims(results: Mapping[str, Any]) -> list[Claim]:
    """Every outcome the report states, per k, each computed from ``results`` (none for a k whose runs diverged)."""
    by, out = by_key(results["runs"]), []
    for k in class_counts(results):
        random, true = by[k, "random"], by[k, "true"]
        if random["diverged"] or true["diverged"]:
            continue
        fr, ft, both = random["final"], true["final"], (("random", random), ("true", true))
        rk, vs = f"random labels, k = {k}", f"true vs random labels, k = {k}"
        e_true = epoch_reaching(true["history"], "train_accuracy", MEMORISED)
        i = true["history"]["epoch"].index(e_true) if e_true is not None else -1
        out += [Claim(f"{labels} labels, k = {k}: training accuracy on the {random['config']['n_train']} images after "
                      "the last epoch", "the network's", run_["final"]["train_accuracy"], "the memorised threshold",
                      MEMORISED, reference=True, more="memorised", less="not memorised") for labels, run_ in both]
        out += [
            Claim(f"{vs}: training accuracy when the true labels first reach {MEMORISED:.0%} (or after the last epoch)",
                  f"true labels, epoch {lib.fmt_epoch(true['history']['epoch'][i])},",
                  true["history"]["train_accuracy"][i], "random labels", random["history"]["train_accuracy"][i],
                  more="the true labels are fitted sooner", less="the true labels are not fitted sooner",
                  why="A label that agrees with nothing else in the data can only be stored, one image at a time, "
                      "in the weights."),
            Claim(f"{rk}: held-out test accuracy (true labels) against chance, 1/k = {1 / k:g}",
                  f"its distance from chance, |{lib.fmt(fr['test_accuracy'])} − {1 / k:g}|,",
                  _apart(fr["test_accuracy"], 1 / k), "the tolerance", CHANCE_TOLERANCE, reference=True,
                  more="not at chance", less="at chance"),
            Claim(f"{vs}: held-out test accuracy", "true labels", ft["test_accuracy"], "random labels",
                  fr["test_accuracy"], more="the true-label network generalises better",
                  less="the true-label network does not generalise better"),
            Claim(f"{rk}: held-out test loss", "the network's", fr["test_loss"], f"ln {k}, the loss of equal "
                  "probabilities,", math.log(k), reference=True, more="above it", less="not above it", digits=2,
                  why="Above ln k at chance accuracy means confident mistakes, each costing a large −ln p.")]
        out += [Claim(f"{labels} labels, k = {k}: the validation loss (held-out images, true labels)", "at the end",
                      run_["history"]["val_loss"][-1], f"its lowest (epoch {lib.fmt_epoch(low)})", lowest,
                      more="it rises above its minimum", less="it ends at its minimum")
                for labels, run_ in both for low, lowest in [lowest_val_loss(run_)]]
        out += parity_claims(random) if k == 2 else []
    return out


def parity_claims(random: Mapping[str, Any]) -> list[Claim]:
    """k = 2 only, against the reported numbers: the training loss still falls, and the test loss
    comes from guesses independent of the image."""
    rk, fr = "random labels, k = 2", random["final"]
    since, then, last = training_loss_then_and_last(random["history"])
    loss, loss_random = fr["test_loss"], fr["test_loss_random_labels"]
    p_odd, q_odd, expected = independent_guesses(random)
    return [
        Claim(f"{rk}: training loss over the last tenth of the run", f"at epoch {lib.fmt_epoch(since)},", then,
              "the last epoch's", last, more="still falling", less="no longer falling",
              why="The loss of a fully memorised set keeps shrinking while the logits grow."),
        Claim(f"{rk}: mean test loss (true parity test labels)", "ours", loss, "the reported", REPORTED_TEST_LOSS,
              reference=True, more="higher than reported", less="not higher than reported", digits=2),
        Claim(f"{rk}: validation loss after the last epoch", "ours", random["history"]["val_loss"][-1],
              "the reported test loss", REPORTED_TEST_LOSS, reference=True, more="above it", less="not above it",
              digits=2),
        Claim(f"{rk}: mean test loss scored against random instead of true test labels",
              f"the change, |{lib.fmt(loss_random, 2)} − {lib.fmt(loss, 2)}|,", _apart(loss_random, loss),
              "5% of the loss", None if loss is None else 0.05 * loss, more="it changes",
              less="it changes little: the network's guesses are independent of both"),
        Claim(f"{rk}: held-out test accuracy against guesses independent of the image",
              f"(the test set is {p_odd:.1%} odd, the network calls {q_odd:.1%} odd) the distance, "
              f"|{lib.fmt(fr['test_accuracy'])} − {expected:.3f}|,", _apart(fr["test_accuracy"], expected),
              "the tolerance", 0.01, reference=True, more="not what independent guesses score",
              less="what independent guesses score")]


def reported_rows(results: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The "reported vs reproduced" rows: the k = 2 numbers, and the k = 10 numbers (not reported)."""
    by, cfg, rows = by_key(results["runs"]), results["config"], []
    if (2, "random") in by:
        r2 = by[2, "random"]
        gone = (f"Diverged at epoch {r2['diverged_epoch']} (see above): not a trained network's value."
                if r2["diverged"] else None)
        rows += [(quantity, reported, r2["final"][key], gone or note) for quantity, reported, key, note in (
            ("training loss, k = 2 random labels", 0.0, "train_loss", "'About 0' is a matter of training time; whether "
             "it still falls, and the other k = 2 comparisons, are under What the numbers say."),
            ("training accuracy, k = 2 random labels", 1.0, "train_accuracy",
             f"Memorised means ≥ {MEMORISED:.0%} within {cfg['epochs']} epochs."),
            ("test accuracy, k = 2 random labels (chance)", 0.5, "test_accuracy",
             "Chance for guesses independent of the image depends on the test set's and the network's share of odd "
             "digits."),
            ("mean test loss, k = 2 random labels (true parity test labels)", REPORTED_TEST_LOSS, "test_loss",
             "The test loss of a memorising network is not a fixed number: it grows with the network's confidence, "
             "i.e. with training time, width and the weights' scale, and it depends on which test labels are scored. "
             f"Ours comes from a {cfg['hidden']}-unit network after {cfg['epochs']} epochs; the original's width and "
             "training length at the reported number are not given."),
            ("mean test loss, k = 2 random labels (random test labels)", REPORTED_TEST_LOSS, "test_loss_random_labels",
             "Same cause as the row above."))]
    if (10, "random") in by:
        f10 = by[10, "random"]["final"]
        rows += [("training accuracy, k = 10 random labels", None, f10["train_accuracy"],
                  f"not reported; ≥ {MEMORISED:.2f} is memorised"),
                 ("test accuracy, k = 10 random labels", None, f10["test_accuracy"], "not reported; chance is 0.1")]
    return rows


def run_row(run_: Mapping[str, Any]) -> list[Any]:
    """The run's row of the results table (the random-test-label columns only for random labels)."""
    f, random = run_["final"], run_["config"]["training_labels"] == "random"
    return [run_["name"], f["train_accuracy"], f["train_loss"], f["val_accuracy"], f["test_accuracy"], f["test_loss"],
            f["test_accuracy_random_labels"] if random else None, f["test_loss_random_labels"] if random else None,
            lib.fmt_epoch(epoch_reaching(run_["history"], "train_accuracy", MEMORISED)),
            f"yes, epoch {run_['diverged_epoch']}" if run_["diverged"] else "no"]


def report(results: dict[str, Any], out: Path) -> lib.Report:
    """report.md and its figures, from results.json alone."""
    cfg, runs = results["config"], results["runs"]
    by, ks = by_key(runs), class_counts(results)
    n_train, hidden, epochs = cfg["train_images"], cfg["hidden"], cfg["epochs"]
    rep = lib.Report("Memorisation: random labels", quick=results["quick"]).what_was_run(
        f"A 784-{hidden}-k network ({cfg['activation']} hidden layer, softmax output, cross-entropy, {cfg['init']} "
        f"initialisation, pixels in [0, 1]) trained with plain SGD, lr {cfg['learning_rate']:g}, batch "
        f"{cfg['batch_size']}, for {epochs} epochs on the first {n_train} MNIST training images, for k = "
        f"{' and '.join(map(str, ks))}. The random labels are drawn uniformly from the k classes once, before "
        "training (`jaxnet.data.random_labels`), and stay fixed. For k = 2 the true labels are the digits' parity "
        "(1 = odd), for k = 10 the digits. The true-label and random-label networks start from the same weights and "
        "see the same batch order; for each k they run as one two-member sweep (`labels=` of shape (2, n)); networks "
        f"of different k differ in output size, so they are separate sweeps. Validation: the last "
        f"{cfg['val_images']:,} training images, every epoch; test: the 10,000 test images, once at the end. "
        "Held-out images keep their true labels (parity for k = 2): a random-label network that learned nothing "
        "about digits scores chance on them. For comparison with the reported test loss we also score the test "
        "images against labels drawn at random (`*_random_labels`). The training set is small "
        f"({n_train} images) and the network wide ({hidden} units) so that memorising finishes within the study's "
        "time budget.")
    for k in ks:
        path = plots.learning_curves(out / f"learning_curves_{k}_classes.png",
                                     {lab: by[k, lab]["history"] for lab in LABELS},
                                     f"784-{hidden}-{k} on {n_train} images with true vs random labels "
                                     f"(validation: true labels; chance {1 / k:.0%})")
        rep.figure(path, f"k = {k}: loss and accuracy per epoch; solid: training set (with the labels the network "
                         "is trained on), dashed: held-out images (true labels).")
    keys = [(k, lab, split) for k in ks for lab in LABELS for split in ("train", "test")]
    bars = plots.bar_chart(out / "accuracy.png", [f"{k} cl. {lab}\n{split}" for k, lab, split in keys],
                           [by[k, lab]["final"][f"{split}_accuracy"] for k, lab, split in keys],
                           "accuracy", f"After {epochs} epochs: training vs test accuracy",
                           reference=[1 / k for k, _, _ in keys], reference_label="chance")
    rep.figure(bars, "Training and test accuracy at the end; black marks: chance (1/k).")
    rep.table(["Run", "Train acc", "Train loss", "Val acc", "Test acc", "Test loss", "Test acc (random test labels)",
               "Test loss (random test labels)", f"Epoch train acc ≥ {MEMORISED:.0%}", "Diverged"],
              map(run_row, runs), digits=4)
    rep.claims(claims(results))
    for k in ks:
        gone = [r for r in (by[k, "random"], by[k, "true"]) if r["diverged"]]
        if gone:
            rep.text(f"**k = {k}.** " + " ".join(diverged_sentence(r) for r in gone))
    return rep.reported_vs_reproduced(reported_rows(results), source=SOURCE)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__, datasets=("mnist",))


if __name__ == "__main__":
    main()
