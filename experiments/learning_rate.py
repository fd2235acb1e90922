"""Learning rate: the PyTorch-tutorial 784-128-64-10 ReLU network (MNIST in [−1, 1], batch 64,
SGD with momentum 0.9, NLL on log-softmax) trained at learning rates 0.5, 0.1, 0.03, 0.01,
0.003 and 0.001 from the same initialisation and data order, as ONE vmapped sweep program. A
rate that is too large may diverge (the loss becomes NaN; reported as such, with the last
finite parameters kept) or kill the network (every image gets the same class); the report
says which happened, from the numbers, with the confusion matrix.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from experiments import lib
from experiments.lib import plots, tutorial
from experiments.lib.claims import Claim
from jaxnet import engine, losses

NAME = "learning_rate"
REPORTED = {0.5: 0.114, 0.01: 0.979}
"""The tutorial's test accuracies by learning rate (its best rate is 0.01; at 0.5 every image is "1")."""
REPORTED_BEST = 0.01
REPORTED_DEAD_CLASS = ("1", 1135)  # the tutorial's lr 0.5 network predicts "1" for all 10,000 test images


@dataclasses.dataclass(frozen=True)
class Config(tutorial.TutorialConfig):
    learning_rates: tuple[float, ...] = (0.5, 0.1, 0.03, 0.01, 0.003, 0.001)
    """learning rates of the sweep (one vmapped program, one member per rate)"""
    loss: str = "nll"
    """training loss (a jaxnet loss name; "nll" applies log-softmax to the logits)"""

    def problems(self) -> list[tuple[str, str, str]]:
        problems = tutorial.config_problems(self)
        if any(not lr > 0 for lr in self.learning_rates):
            problems.append(("--learning-rates", f"{list(self.learning_rates)} include a rate ≤ 0",
                             "give positive learning rates"))
        if len({run_name(lr) for lr in self.learning_rates}) != len(self.learning_rates):
            problems.append(("--learning-rates", f"{list(self.learning_rates)} repeat a rate", "give each rate once"))
        return problems


def run_name(lr: float) -> str:
    return f"lr={lr:g}"


def run(config: Config, study: lib.Study) -> dict[str, Any]:
    """Every learning rate as one member of one engine sweep, from the same initial weights."""
    d = tutorial.load_data(config, study)
    rates, k = list(config.learning_rates), len(config.learning_rates)
    loss = losses.get(config.loss)

    shared = {"batch_size": config.batch_size, "momentum": config.momentum, "epochs": config.epochs,
              "init": config.init, "seed": config.seed, "sweep_members": k}

    def train_sweep(**options: Any) -> list[dict[str, Any]]:
        result = engine.sweep(tutorial.model(config.hidden, config.init), tutorial.optimizer(rates[0], config.momentum),
                              (d.x_train, d.y_train), epochs=config.epochs, batch_size=config.batch_size,
                              learning_rate=rates, init_seed=[config.seed] * k, data_seed=[config.seed] * k,
                              loss=loss, test=(d.x_test, d.y_test), eval_train=False, **options)
        return [tutorial.record(run_name(lr), {"loss": config.loss, "learning_rate": lr, "hidden": list(config.hidden),
                                               **shared}, history, result.member(i), d, loss=loss,
                                seconds=history.seconds[-1] if history.seconds else 0.0)
                for i, (lr, history) in enumerate(zip(rates, result.histories))]

    runs = study.train("sweep", [run_name(lr) for lr in rates], train_sweep,
                       label=f"{k} learning rates", epochs=config.epochs)
    study.save_progress(runs)
    best, by_lr = best_run(runs), by_rate(runs)
    headline = ((f"test accuracy at lr {REPORTED_BEST:g}", by_lr[REPORTED_BEST]["final"]["test_accuracy"])
                if REPORTED_BEST in by_lr else (f"best test accuracy (lr {best['config']['learning_rate']:g})",
                                                best["final"]["test_accuracy"]))
    return {"runs": runs, "headline": headline, "best_learning_rate": best["config"]["learning_rate"],
            "outcomes": {r["name"]: outcome(r) for r in runs}}


# ---------------------------------------------------------------- outcomes, from the numbers
def by_rate(runs: Sequence[Mapping[str, Any]]) -> dict[float, Mapping[str, Any]]:
    """The runs by learning rate (one each: Config.problems refuses a repeated rate)."""
    return {r["config"]["learning_rate"]: r for r in runs}


def test_accuracies(run: Mapping[str, Any]) -> list[float]:
    """The run's test accuracy after every epoch it has a check for."""
    return [a for a in run["history"]["test_accuracy"] if a is not None]


def best_run(runs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The run with the highest final test accuracy (the first of equals)."""
    return max(runs, key=lambda r: r["final"]["test_accuracy"] if r["final"]["test_accuracy"] is not None else -1.0)


def outcome(run: Mapping[str, Any]) -> str:
    """"diverged …", "dead network …" (exactly one class predicted), "test accuracy below 0.5 …" or "trained"."""
    final = run["final"]
    if run["diverged"]:
        if not run["history"]["epoch"]:
            return (f"diverged in epoch {run['diverged_epoch']}, before its first check (the numbers are those of "
                    "the last finite parameters)")
        return f"diverged: loss NaN/inf at epoch {run['diverged_epoch']} (last finite parameters kept)"
    if final["classes_predicted"] == 1:
        return f"dead network: every test image predicted as {final['most_predicted_class']}"
    if final["test_accuracy"] < 0.5:
        return f"test accuracy below 0.5 ({final['classes_predicted']} classes predicted)"
    return "trained"


def class_counts(runs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Test images per true class: the row sums of a confusion matrix (the same test set for every run)."""
    return np.asarray(runs[0]["confusion"]).sum(axis=1)


def share_epochs(run: Mapping[str, Any], counts: np.ndarray) -> list[float]:
    """The test accuracies of the epochs at which the accuracy equals some class's share of the
    test set (to half an image): what predicting one class for every image gives."""
    shares = counts / counts.sum()
    return [a for a in test_accuracies(run) if np.min(np.abs(shares - a)) * counts.sum() < 0.5]


def largest(results: Mapping[str, Any]) -> Mapping[str, Any]:
    """The run at the largest learning rate: the one that may fail."""
    return max(results["runs"], key=lambda r: r["config"]["learning_rate"])


def failure_text(run: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> str:
    """Whether ``run`` diverged (a flag), and the numbers its claims (:func:`failure_claims`) compare."""
    final, counts = run["final"], class_counts(runs)
    top, biggest = final["most_predicted_class"], int(np.argmax(counts))
    return ((f"The loss became NaN/inf at epoch {run['diverged_epoch']}: the run **diverged**; the engine kept the "
             "parameters of its last finite step, which the numbers below evaluate. " if run["diverged"] else
             "The loss stayed finite (no NaN): the run did **not diverge**. ")
            + f"Test accuracy {final['test_accuracy']:.4f}; {100 * final['most_predicted_fraction']:.1f}% of the "
              f"test images are predicted as \"{top}\", whose share of the test set is {counts[top] / counts.sum():.4f} "
              f"(the largest class, \"{biggest}\", {counts[biggest] / counts.sum():.4f}); predicted counts per class: "
              f"{', '.join(str(int(c)) for c in np.asarray(run['confusion']).sum(axis=0))}. The fraction of ReLU "
              "units that are zero for every training image is "
              f"{', '.join(f'{100 * f:.0f}%' for f in final['dead_unit_fraction'])} (hidden layers "
              f"1–{len(final['dead_unit_fraction'])}).")


def failure_claims(results: Mapping[str, Any]) -> list[Claim]:
    """What became of the largest learning rate's run: one class or several, above 0.5 or not, and for a
    one-class network whether the class changed between epochs and a ReLU layer died."""
    runs, run = results["runs"], largest(results)
    final, counts = run["final"], class_counts(runs)
    n, top = int(counts.sum()), final["most_predicted_class"]
    out = [Claim(f"the test images it predicts as another class than its most-predicted \"{top}\"", "their number",
                 (1 - final["most_predicted_fraction"]) * n, "half an image", 0.5, digits=1, reference=True,
                 more="it predicts more than one class", less="it predicts one class for every image: a dead network "
                                                              "(one filled column in the confusion matrix below)"),
           Claim("its test accuracy", "test accuracy", final["test_accuracy"], "one half", 0.5, reference=True,
                 more="above 0.5", less="below 0.5")]
    if final["classes_predicted"] != 1:
        return out
    accs, dead = share_epochs(run, counts), final["dead_unit_fraction"]
    deadest = int(np.argmax(dead))
    out += [Claim("the epochs at which its test accuracy equals some class's share of the test set (what a one-class "
                  "network scores)", f"the highest of those ({len(accs)} of its {len(test_accuracies(run))} epochs)",
                  max(accs, default=None), "the lowest", min(accs, default=None), margin=0.5 / n, digits=4,
                  more="they differ, so the chosen class changed from epoch to epoch",
                  less="always the same: the same class"),
            Claim("the live ReLU units (not zero for every training image) of its deadest hidden layer", "their share",
                  1 - dead[deadest], "none", 0.0, reference=True, more="every hidden layer keeps some live units",
                  less=f"every unit of hidden layer {deadest + 1} is dead",
                  why=f"A likely mechanism for a dead layer: with momentum the effective step is lr/(1 − momentum) = "
                      f"{run['config']['learning_rate'] / (1 - run['config']['momentum']):g}: large early updates push "
                      "the pre-activations negative for every input, a dead ReLU passes no gradient and never "
                      "recovers, and the output layer sees a constant input, so only its biases still learn, and they "
                      "pick one class for every image.")]
    return out + [Claim(f"the run at {r['name']}, which also ended predicting a single class: its peak test accuracy "
                        "against its final", "peak", max(test_accuracies(r), default=None), "final",
                        r["final"]["test_accuracy"], margin=0.1,
                        more="it first learned (by more than 0.1), then died", less="it never learned much")
                  for r in runs if r is not run and not r["diverged"] and r["final"]["classes_predicted"] == 1]


def sweep_claims(results: Mapping[str, Any]) -> list[Claim]:
    """Whether the reported best rate was still improving at its last epoch (none with fewer than two)."""
    run = next((r for r in results["runs"] if r["name"] == run_name(REPORTED_BEST)), None)
    accs = test_accuracies(run) if run else []
    return [] if len(accs) < 2 else [
        Claim(f"the test accuracy of {run['name']}, after the last epoch against its best before", "the last", accs[-1],
              "the best before", max(accs[:-1]), more="still improving at the last epoch", less="no longer improving")]


def claims(results: Mapping[str, Any]) -> list[Claim]:
    """Every outcome the report states, computed from results.json."""
    return sweep_claims(results) + failure_claims(results)


def confusion_runs(results: Mapping[str, Any]) -> list[str]:
    """The runs whose confusion matrix is drawn: the largest rate, the best, and the reported best (if run)."""
    by_lr = by_rate(results["runs"])
    reported = [by_lr[REPORTED_BEST]["name"]] if REPORTED_BEST in by_lr else []
    return list(dict.fromkeys([largest(results)["name"], best_run(results["runs"])["name"], *reported]))


def missed_note(run: Mapping[str, Any], epochs: int) -> str:
    """Why a run's test accuracy is more than 0.01 from the tutorial's: its failure, or our shorter training."""
    if run["final"]["classes_predicted"] == 1:
        return (f"{outcome(run)} (its share of the test set); the tutorial's network predicted "
                f"\"{REPORTED_DEAD_CLASS[0]}\" ({REPORTED_DEAD_CLASS[1]}/10000). The same failure: which class "
                "the surviving output biases favour after the last epoch is arbitrary.")
    if run["diverged"]:
        return f"{outcome(run)}; the tutorial's run did not diverge but predicted one class."
    return (f"{epochs} epoch{'s' * (epochs != 1)} instead of the tutorial's {tutorial.TUTORIAL_EPOCHS}"
            if epochs < tutorial.TUTORIAL_EPOCHS else "one run of one seed (no seed spread measured here)")


def reported_rows(results: Mapping[str, Any]) -> list[list[Any]]:
    """(quantity, reported, reproduced, note), for the reported rates that were run."""
    runs, by_lr, rows = results["runs"], by_rate(results["runs"]), []
    for lr, reported in REPORTED.items():
        if lr in by_lr:
            got = by_lr[lr]["final"]["test_accuracy"]
            rows.append([f"test accuracy at lr {lr:g}", reported, got,
                         missed_note(by_lr[lr], results["config"]["epochs"]) if abs(got - reported) > 0.01 else ""])
    if 0.5 in by_lr:
        one = by_lr[0.5]["final"]["classes_predicted"] == 1
        rows.append(["lr 0.5: every image predicted as one class", "yes", "yes" if one else "no",
                     "" if one else outcome(by_lr[0.5])])
    if REPORTED_BEST in by_lr:
        best = best_run(runs)
        gap = best["final"]["test_accuracy"] - by_lr[REPORTED_BEST]["final"]["test_accuracy"]
        rows.append(["best learning rate", f"{REPORTED_BEST:g}", f"{best['config']['learning_rate']:g}",
                     "" if best["config"]["learning_rate"] == REPORTED_BEST else
                     f"lr {REPORTED_BEST:g} is {100 * gap:.2f} points below it, one run of one seed each"])
    return rows


def report(results: dict[str, Any], out: Path) -> lib.Report:
    """report.md and its figures, from results.json alone."""
    cfg, runs = results["config"], results["runs"]
    rates = [r["config"]["learning_rate"] for r in runs]
    by_lr = by_rate(runs)
    n_train, n_test = cfg["train_images"] or 60_000, cfg["test_images"] or 10_000
    rep = lib.Report(f"Learning rate: one sweep from {min(rates):g} to {max(rates):g}", quick=results["quick"])
    rep.what_was_run(
        tutorial.describe_setup(cfg["epochs"], results["quick"], n_train, n_test) +
        f"\n\nLoss: {cfg['loss']}. Learning rates {', '.join(f'{lr:g}' for lr in rates)}: one `engine.sweep` program "
        f"(the learning rate is a traced hyperparameter, vmapped over {len(rates)} members), every member from the "
        "same initialisation and the same data order. A member whose loss becomes NaN or inf is marked diverged "
        "and keeps its last finite parameters; the others go on.")
    rep.heading("Results").table(["Learning rate", *tutorial.SUMMARY_HEADERS[1:], "Outcome"],
                                 [[f"{lr:g}", *row[1:], outcome(by_lr[lr])]
                                  for lr, row in zip(rates, tutorial.summary_rows(runs))])
    order = sorted(rates)
    test, train = ([by_lr[lr]["final"][key] for lr in order] for key in ("test_accuracy", "train_accuracy"))
    rep.figure(plots.line_plot(
        out / "accuracy_vs_learning_rate.png", order, {"test": test, "train": train},
        "learning rate (log scale)", "accuracy after the last epoch",
        f"Accuracy against learning rate ({cfg['epochs']} epochs)", logx=True,
        annotations=[(lr, a, f"{a:.3f}") for lr, a in zip(order, test) if a is not None]),
        "Train and test accuracy after the last epoch against the learning rate.")
    rep.figure(tutorial.test_accuracy_figure(out, runs, "test_accuracy_curves.png", "Test accuracy during training"),
               "Test accuracy after every epoch, per learning rate.")
    rep.figure(tutorial.test_loss_figure(out, runs, "test_loss_curves.png", f"Test loss ({cfg['loss']}) during training"),
               "Test loss after every epoch, log scale (a diverged run's line ends at its last finite check).")
    rep.claims(sweep_claims(results))
    rep.heading(f"What happens at lr = {max(rates):g}").text(failure_text(largest(results), runs))
    rep.claims(failure_claims(results), heading=None)
    class_names = [str(c) for c in range(len(runs[0]["confusion"]))]
    tutorial.per_class_section(rep, out, runs, class_names, confusion_for=confusion_runs(results))
    if rows := reported_rows(results):
        rep.reported_vs_reproduced(rows, source=tutorial.SOURCE)
    return rep.text(tutorial.timing_note(runs, shared=True))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__, datasets=("mnist",))


if __name__ == "__main__":
    main()
