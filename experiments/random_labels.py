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
from jaxnet import data, engine, mlp, train

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
    init: Literal["lecun_normal", "glorot_normal", "he_normal", "uniform"] = "lecun_normal"
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
        bad = [k for k in self.classes if k not in (2, 10)]
        if bad or len(set(self.classes)) != len(self.classes):
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
        if not self.learning_rate > 0:
            return [("--learning-rate", f"{self.learning_rate}", "use a positive learning rate")]
        return []


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
    started = time.perf_counter()
    result = engine.sweep(lambda key: mlp.init(key, layers, scheme=config.init),
                          train.make_optimizer("sgd", learning_rate=config.learning_rate), (x, true),
                          epochs=config.epochs, batch_size=config.batch_size, labels=np.stack([true, shuffled]),
                          init_seed=[config.seed] * 2, data_seed=[config.seed] * 2, hidden=config.activation,
                          val=val, **options)
    seconds = time.perf_counter() - started  # the sweep's wall clock, shared by its two members
    runs = []
    for member, (name, labels) in enumerate(zip(run_names(k), LABELS)):
        params = result.member(member)
        on_random = engine.evaluate_classifier(params, test_random, hidden=config.activation, num_classes=k)
        run_config = {"classes": k, "training_labels": labels, "n_train": len(y), "layers": layers,
                      "hidden": config.activation, "output": "softmax", "loss": "softmax_cross_entropy",
                      "optimizer": "sgd", "learning_rate": config.learning_rate, "batch_size": config.batch_size,
                      "epochs": config.epochs, "init": config.init, "pixels": "[0, 1]", "seed": config.seed,
                      "true_labels": "digit parity (1 = odd)" if k == 2 else "digit",
                      "val": f"last {len(val[1])} training images, true labels",
                      "test": "MNIST test set, true labels (test_*_random_labels: random labels)"}
        runs.append(mnist.classifier_record(
            name, run_config, params, result.histories[member], test_true, hidden=config.activation,
            num_classes=k, seconds=seconds, test_accuracy_random_labels=on_random["accuracy"],
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
                            label=f"{k} classes", epochs=config.epochs, checkpoints=False)
        study.save_progress(runs)
    head = by_key(runs)[config.classes[0], "random"]
    return {"runs": runs,
            "headline": (f"training accuracy on random labels ({config.classes[0]} classes)",
                         head["final"]["train_accuracy"])}


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


def memorisation_sentence(k: int, random: Mapping[str, Any], true: Mapping[str, Any]) -> str:
    """How far the random labels were fitted, and how much later than the true ones."""
    fr, ft = random["final"], true["final"]
    e_random = epoch_reaching(random["history"], "train_accuracy", MEMORISED)
    e_true = epoch_reaching(true["history"], "train_accuracy", MEMORISED)
    epochs = random["config"]["epochs"]
    if fr["train_accuracy"] >= MEMORISED:
        text = (f"**k = {k}.** With random labels the network memorises its {random['config']['n_train']} "
                f"training images: training accuracy {fr['train_accuracy']:.1%}, first ≥ {MEMORISED:.0%} at epoch "
                f"{lib.fmt_epoch(e_random)}")
    else:
        text = (f"**k = {k}.** With random labels the network fits only {fr['train_accuracy']:.1%} of its "
                f"{random['config']['n_train']} training labels in {epochs} epochs (memorised would be "
                f"≥ {MEMORISED:.0%})")
    if e_true is None:
        return text + (f"; with true labels it does not pass {MEMORISED:.0%} either (training accuracy "
                       f"{ft['train_accuracy']:.1%}).")
    if e_random is None or e_random > e_true:
        ratio = None if e_random is None else e_random / e_true
        later = "" if ratio is None else f", {ratio:.{0 if ratio >= 10 else 1}f}× sooner"
        return text + (f"; with true labels it passes {MEMORISED:.0%} at epoch {lib.fmt_epoch(e_true)}{later}. A "
                       "label that agrees with nothing else in the data can only be stored, one image at a time, "
                       "in the weights.")
    return text + (f"; with true labels it passes {MEMORISED:.0%} at epoch {lib.fmt_epoch(e_true)}, not sooner "
                   "than with random labels.")


def chance_sentence(k: int, random: Mapping[str, Any], true: Mapping[str, Any]) -> str:
    """Held-out accuracy of the random-label network against chance, 1/k."""
    acc, chance = random["final"]["test_accuracy"], 1 / k
    if abs(acc - chance) <= CHANCE_TOLERANCE:
        verdict = f"at chance (1/k = {chance:.0%}, within {CHANCE_TOLERANCE * 100:.0f} points)"
    else:
        verdict = (f"{'above' if acc > chance else 'below'} chance (1/k = {chance:.0%}) by "
                   f"{abs(acc - chance) * 100:.1f} points")
    return (f"On the 10,000 held-out test images (true labels) the random-label network scores {acc:.1%}: "
            f"{verdict}; the true-label network scores {true['final']['test_accuracy']:.1%}.")


def loss_sentence(k: int, random: Mapping[str, Any]) -> str:
    """The test loss against ln k, the loss of equal probabilities."""
    loss, uniform = random["final"]["test_loss"], math.log(k)
    if loss is None:
        return "Its test loss is not finite."
    if loss > uniform:
        why = (": with accuracy at chance, the excess comes from confident mistakes, each costing a large −ln p"
               if abs(random["final"]["test_accuracy"] - 1 / k) <= CHANCE_TOLERANCE else "")
        return (f"Its test loss, {loss:.2f}, is above ln {k} = {uniform:.2f}, the loss of a network that outputs "
                f"equal probabilities{why}.")
    return (f"Its test loss, {loss:.2f}, is not above ln {k} = {uniform:.2f}, the loss of a network that outputs "
            "equal probabilities: it is not confident on held-out images.")


def val_loss_sentence(random: Mapping[str, Any], true: Mapping[str, Any]) -> str:
    """How the held-out loss moved over training, random against true labels."""
    parts, rises = [], {}
    for label, run_ in (("random", random), ("true", true)):
        h = run_["history"]
        values = _finite(h["val_loss"])
        if not values:
            return f"The {label}-label network has no finite validation loss."
        i_min, v_min = min(values, key=lambda iv: iv[1])
        first, last = values[0][1], values[-1][1]
        rises[label] = last - v_min
        parts.append(f"the {label}-label network's from {first:.2f} after epoch {lib.fmt_epoch(h['epoch'][0])} to "
                     f"{last:.2f} at the end (lowest {v_min:.2f}, epoch {lib.fmt_epoch(h['epoch'][i_min])})")
    more = ("rises more above its minimum" if rises["random"] > rises["true"]
            else "does not rise more above its minimum")
    return (f"Validation loss (held-out images, true labels): {parts[0]}; {parts[1]}. The random-label network's "
            f"{more} than the true-label network's ({rises['random']:.3f} against {rises['true']:.3f}).")


def findings(results: Mapping[str, Any]) -> list[str]:
    """The report's outcome paragraphs, one per k, each worded from the numbers it states."""
    by = by_key(results["runs"])
    out = []
    for k in class_counts(results):
        random, true = by[k, "random"], by[k, "true"]
        diverged = [r for r in (random, true) if r["diverged"]]
        if diverged:
            out.append(f"**k = {k}.** " + " ".join(diverged_sentence(r) for r in diverged))
            continue
        out.append(" ".join([memorisation_sentence(k, random, true), chance_sentence(k, random, true),
                             loss_sentence(k, random), val_loss_sentence(random, true)]))
    return out


def still_falling(history: Mapping[str, Any], key: str = "train_loss") -> tuple[bool, float, float, float] | None:
    """(falling, epoch, value then, value at the end) over the last tenth of the run; None without data."""
    values = _finite(history[key])
    if len(values) < 2:
        return None
    i_then = values[max(0, int(0.9 * len(values)) - 1)][0]
    then, last = float(history[key][i_then]), values[-1][1]
    return last < then, history["epoch"][i_then], then, last


def crossing_epoch(history: Mapping[str, Any], threshold: float) -> tuple[str, float | None]:
    """When the validation loss went above ``threshold`` for good: ("crossed", epoch), ("always", None)
    when it was above from the first check, ("never", None) when it ends at or below it."""
    values = [(e, v) for e, v in zip(history["epoch"], history["val_loss"]) if v is not None]
    if not values or values[-1][1] <= threshold:
        return "never", None
    below = [i for i, (_, v) in enumerate(values) if v <= threshold]
    return ("crossed", values[below[-1] + 1][0]) if below else ("always", None)


def chance_note(run_: Mapping[str, Any]) -> str:
    """Why a k = 2 held-out accuracy differs from 50%: the test set's parity and the network's guesses."""
    confusion = np.asarray(run_["confusion"], float)
    total = confusion.sum()
    p_odd, q_odd = confusion[1].sum() / total, confusion[:, 1].sum() / total
    expected = p_odd * q_odd + (1 - p_odd) * (1 - q_odd)
    acc = run_["final"]["test_accuracy"]
    match = ("which the network's accuracy matches" if abs(acc - expected) <= 0.01 else
             f"the network is {'above' if acc > expected else 'below'} that by {abs(acc - expected) * 100:.1f} points")
    return (f"{p_odd:.1%} of the test images are odd and the network calls {q_odd:.1%} of them odd; guesses "
            f"independent of the image would score {expected:.1%} on average, {match}.")


def reported_rows(results: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The "reported vs reproduced" rows: the k = 2 claims, and the k = 10 numbers (not reported)."""
    by, cfg, rows = by_key(results["runs"]), results["config"], []
    if (2, "random") in by:
        r2 = by[2, "random"]
        f2 = r2["final"]
        gone = f"Diverged at epoch {r2['diverged_epoch']} (see above): not a trained network's value." if r2["diverged"] else None
        falling = still_falling(r2["history"])
        if gone or falling is None:
            zero_note = gone or "No finite training loss."
        else:
            down, since, then, last = falling
            zero_note = (f"Still falling when training ends ({then:.3g} at epoch {lib.fmt_epoch(since)}, {last:.3g} at "
                         "the end): 'about 0' is a matter of training time, as the loss of a fully memorised set "
                         "keeps shrinking while the logits grow." if down else
                         f"No longer falling at the end ({then:.3g} at epoch {lib.fmt_epoch(since)}, {last:.3g} at "
                         "the end).")
        how, crossed = crossing_epoch(r2["history"], REPORTED_TEST_LOSS)
        held_out = {"crossed": f"; its held-out loss rose past {REPORTED_TEST_LOSS} for good at epoch "
                               f"{lib.fmt_epoch(crossed)}",
                    "always": f"; its held-out loss was above {REPORTED_TEST_LOSS} from the first epoch",
                    "never": f"; its held-out loss ends at or below {REPORTED_TEST_LOSS}"}[how]
        loss = f2["test_loss"]
        loss_note = gone or (
            f"{'Higher' if loss > REPORTED_TEST_LOSS else 'Lower'} than reported: the test loss of a memorising "
            "network is not a fixed number: it grows with the network's confidence, i.e. with training time, "
            "width and the weights' scale, and it depends on which test labels are scored. Ours comes from a "
            f"{cfg['hidden']}-unit network after {cfg['epochs']} epochs{held_out}. The original's width and "
            "training length at the reported number are not given.")
        a, b = f2["test_loss"], f2["test_loss_random_labels"]
        if gone or a is None or b is None:
            random_note = gone or "A test loss is not finite."
        elif abs(b - a) <= 0.05 * a:
            random_note = (f"Same cause as the row above; scoring against random rather than true test labels "
                           f"changes little ({a:.2f} → {b:.2f}): the network's guesses are independent of both.")
        else:
            random_note = (f"Scoring against random rather than true test labels changes the loss from {a:.2f} to "
                           f"{b:.2f}.")
        accuracy_note = gone or ("" if f2["train_accuracy"] >= MEMORISED else
                                 f"Not memorised within {cfg['epochs']} epochs (≥ {MEMORISED:.0%} would be).")
        chance = gone or ("" if abs(f2["test_accuracy"] - 0.5) <= 0.01 else chance_note(r2))
        rows += [
            ("training loss, k = 2 random labels", 0.0, f2["train_loss"], zero_note),
            ("training accuracy, k = 2 random labels", 1.0, f2["train_accuracy"], accuracy_note),
            ("test accuracy, k = 2 random labels (chance)", 0.5, f2["test_accuracy"], chance),
            ("mean test loss, k = 2 random labels (true parity test labels)", REPORTED_TEST_LOSS, a, loss_note),
            ("mean test loss, k = 2 random labels (random test labels)", REPORTED_TEST_LOSS, b, random_note),
        ]
    if (10, "random") in by:
        f10 = by[10, "random"]["final"]
        rows += [("training accuracy, k = 10 random labels", None, f10["train_accuracy"],
                  f"not reported; ≥ {MEMORISED:.2f} is memorised"),
                 ("test accuracy, k = 10 random labels", None, f10["test_accuracy"], "not reported; chance is 0.1")]
    return rows


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
    rows = []
    for r in runs:
        f, random = r["final"], r["config"]["training_labels"] == "random"
        rows.append([r["name"], f["train_accuracy"], f["train_loss"], f["val_accuracy"], f["test_accuracy"],
                     f["test_loss"], f["test_accuracy_random_labels"] if random else None,
                     f["test_loss_random_labels"] if random else None,
                     lib.fmt_epoch(epoch_reaching(r["history"], "train_accuracy", MEMORISED)),
                     f"yes, epoch {r['diverged_epoch']}" if r["diverged"] else "no"])
    rep.table(["Run", "Train acc", "Train loss", "Val acc", "Test acc", "Test loss", "Test acc (random test labels)",
               "Test loss (random test labels)", f"Epoch train acc ≥ {MEMORISED:.0%}", "Diverged"], rows, digits=4)
    for paragraph in findings(results):
        rep.text(paragraph)
    return rep.reported_vs_reproduced(reported_rows(results), source=SOURCE)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__, datasets=("mnist",))


if __name__ == "__main__":
    main()
