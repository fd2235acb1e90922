"""Learning rate: the PyTorch-tutorial 784-128-64-10 ReLU network (MNIST in [−1, 1], batch 64,
SGD with momentum 0.9, NLL on log-softmax) trained at learning rates 0.5, 0.1, 0.03, 0.01,
0.003 and 0.001 from the same initialisation and data order, as ONE vmapped sweep program. A
rate that is too large either diverges (the loss becomes NaN; reported as such, with the last
finite parameters kept) or kills the network (every image gets the same class); the report
shows which, with the confusion matrix.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

from experiments import common, plots, tutorial
from jaxnet import engine

NAME = "learning_rate"
LEARNING_RATES = (0.5, 0.1, 0.03, 0.01, 0.003, 0.001)
REPORTED = {0.5: 0.114, 0.01: 0.979}
LOSS = "nll"
DEFAULT_EPOCHS = 15


def run_name(lr: float) -> str:
    return f"lr={lr:g}"


def train_sweep(study: common.Study, d: tutorial.Data, epochs: int) -> list[dict[str, Any]]:
    seed, k = study.args.seed, len(LEARNING_RATES)

    def run(checkpoint_dir, resume):
        result = engine.sweep(tutorial.init_fn(), tutorial.optimizer(LEARNING_RATES[0]), (d.x_train, d.y_train),
                              epochs=epochs, batch_size=tutorial.BATCH_SIZE, learning_rate=list(LEARNING_RATES),
                              init_seed=[seed] * k, data_seed=[seed] * k, loss=LOSS, test=(d.x_test, d.y_test),
                              eval_train=False, checkpoint_dir=checkpoint_dir, resume=resume, log=study.log)
        records = []
        for i, lr in enumerate(LEARNING_RATES):
            history = result.histories[i]
            config = {"loss": LOSS, "learning_rate": lr, "hidden": list(tutorial.HIDDEN), "batch_size": tutorial.BATCH_SIZE,
                      "momentum": tutorial.MOMENTUM, "epochs": epochs, "init": tutorial.INIT_SCHEME, "seed": seed,
                      "sweep_members": k}
            records.append(tutorial.record(run_name(lr), config, history, result.member(i), d, loss=LOSS,
                                           seconds=history.seconds[-1] if history.seconds else 0.0))
        return records

    return tutorial.fit_or_resume(study, [run_name(lr) for lr in LEARNING_RATES], run, program="sweep",
                                  epochs=epochs)


def outcome(run: dict[str, Any]) -> str:
    """"diverged (NaN at epoch e)", "dead: every image predicted as c", or "trained"."""
    final = run["final"]
    if run["diverged"]:
        return f"diverged: loss NaN/inf at epoch {run['diverged_epoch']} (last finite parameters kept)"
    if final["classes_predicted"] == 1:
        return f"dead network: every test image predicted as {final['most_predicted_class']}"
    if final["test_accuracy"] < 0.5:
        return "failed to learn"
    return "trained"


def failure_text(big: dict[str, Any], runs: list[dict[str, Any]], y_test: np.ndarray) -> str:
    """What became of the lr = 0.5 run, from its numbers."""
    final, counts = big["final"], np.asarray(big["confusion"]).sum(axis=0)
    dead = ", ".join(f"{100 * f:.0f}%" for f in final["dead_unit_fraction"])
    share = np.bincount(y_test, minlength=10) / len(y_test)
    accs = [a for a in big["history"]["test_accuracy"] if a is not None]
    others = [r["name"] for r in runs if r is not big and not r["diverged"] and r["final"]["classes_predicted"] == 1]
    if big["diverged"]:
        first = (f"The loss became NaN/inf at epoch {big['diverged_epoch']}: the run **diverged**; the engine kept "
                 "the parameters of its last finite check, which the numbers below evaluate. ")
    else:
        first = ("The loss stayed finite (no NaN): the run did **not diverge** but ended as a **dead network**. ")
    return (first +
            f"Test accuracy {final['test_accuracy']:.3f}; {100 * final['most_predicted_fraction']:.1f}% of the test "
            f"images are predicted as \"{final['most_predicted_class']}\" (predicted counts per class: "
            f"{', '.join(str(int(c)) for c in counts)}), so the accuracy is just that class's share of the test set "
            f"({share[final['most_predicted_class']]:.3f}; \"1\", the largest class, is {share[1]:.4f}, the "
            "tutorial's 0.114). The fraction of ReLU units that are zero for every training image is "
            f"{dead} (hidden layers 1, 2): with momentum 0.9 the effective step is lr/(1 − 0.9) = 5, large early "
            "updates push the hidden pre-activations negative for every input, the units die (a dead ReLU passes no gradient, so it "
            "never recovers) and the output layer sees a constant input: only its biases still learn, and they "
            "pick one class for every image. Those biases keep moving under the large step: the test accuracy per "
            f"epoch took values from {min(accs):.3f} to {max(accs):.3f}, each one some class's share of the test "
            "set, so the chosen class changes from epoch to epoch. "
            "The confusion matrix below shows it: one filled column."
            + (f" In this run {', '.join(others)} ended the same way (after first learning, see the curves)."
               if others else ""))


def main(argv: list[str] | None = None) -> dict:
    args = common.parser(NAME, __doc__, default_epochs=DEFAULT_EPOCHS).parse_args(argv)
    study = common.start(NAME, args, sys.argv[1:] if argv is None else argv)
    epochs = common.epochs(args, quick=1)
    d = tutorial.load_data(args)
    runs = train_sweep(study, d, epochs)
    by_lr = dict(zip(LEARNING_RATES, runs))
    best_lr = max(LEARNING_RATES, key=lambda lr: by_lr[lr]["final"]["test_accuracy"])

    acc_vs_lr = plots.line_plot(
        study.path("accuracy_vs_learning_rate.png"), list(LEARNING_RATES),
        {"test": [r["final"]["test_accuracy"] for r in runs], "train": [r["final"]["train_accuracy"] for r in runs]},
        "learning rate (log scale)", "accuracy after the last epoch", f"Accuracy against learning rate ({epochs} epochs)",
        logx=True, annotations=[(lr, by_lr[lr]["final"]["test_accuracy"], f"{by_lr[lr]['final']['test_accuracy']:.3f}")
                                for lr in LEARNING_RATES])
    acc_curves = tutorial.test_accuracy_figure(study, runs, "test_accuracy_curves.png", "Test accuracy during training")
    loss_curves = tutorial.test_loss_figure(study, runs, "test_loss_curves.png", "Test loss (NLL) during training")

    big = by_lr[0.5]
    report = study.report("Learning rate: one sweep from 0.001 to 0.5")
    report.what_was_run(
        tutorial.describe_setup(epochs, study.quick, len(d.x_train), len(d.x_test)) +
        f"\n\nLoss: NLL on log-softmax. Learning rates {', '.join(f'{lr:g}' for lr in LEARNING_RATES)}: one "
        "`engine.sweep` program (the learning rate is a traced hyperparameter, vmapped over 6 members), every "
        "member from the same initialisation and the same data order. A member whose loss becomes NaN or inf "
        "is marked diverged and keeps its last finite parameters; the others go on.")
    report.heading("Results").table(["Learning rate", *tutorial.SUMMARY_HEADERS[1:], "Outcome"],
                                    [[f"{lr:g}", *row[1:], outcome(by_lr[lr])]
                                     for lr, row in zip(LEARNING_RATES, tutorial.summary_rows(runs))])
    report.figure(acc_vs_lr, "Train and test accuracy after the last epoch against the learning rate.")
    report.figure(acc_curves, "Test accuracy after every epoch, per learning rate.")
    report.figure(loss_curves, "Test NLL after every epoch, log scale (a diverged run's line ends at its last finite check).")
    report.heading("What happens at lr = 0.5").text(failure_text(big, runs, d.y_test))
    tutorial.per_class_section(report, study, runs, d.class_names, confusion_for=[run_name(0.5), run_name(best_lr), run_name(0.01)])
    rows = []
    for lr, reported in REPORTED.items():
        got = by_lr[lr]["final"]["test_accuracy"]
        note = ""
        if abs(got - reported) > 0.01 and lr == 0.5:
            note = (f"{outcome(big)} (its share of the test set); the tutorial's dead network settled on \"1\" "
                    "(1135/10000). Same failure: which class the surviving output biases favour after the last "
                    "epoch is arbitrary (it changes from epoch to epoch, see the text).")
        elif abs(got - reported) > 0.01:
            note = (f"{epochs} epochs instead of {tutorial.TUTORIAL_EPOCHS}: the run is still improving"
                    if epochs < tutorial.TUTORIAL_EPOCHS else "one run of one seed; run-to-run spread")
        rows.append([f"test accuracy at lr {lr:g}", reported, got, note])
    rows.append(["lr 0.5: every image predicted as one class", "yes",
                 "yes" if big["final"]["classes_predicted"] == 1 else "no",
                 "" if big["final"]["classes_predicted"] == 1 else outcome(big)])
    rows.append(["best learning rate", "0.01", f"{best_lr:g}", "" if best_lr == 0.01 else
                 "neighbouring rates differ by a few tenths of a point, within the run-to-run spread"])
    report.reported_vs_reproduced(rows, source=tutorial.SOURCE)
    report.text(tutorial.timing_note(runs, shared=True))
    results = study.results(runs, headline=("test accuracy at lr 0.01", by_lr[0.01]["final"]["test_accuracy"]),
                            epochs=epochs, learning_rates=list(LEARNING_RATES), best_learning_rate=best_lr,
                            outcomes={run_name(lr): outcome(by_lr[lr]) for lr in LEARNING_RATES},
                            reported={run_name(lr): v for lr, v in REPORTED.items()})
    return study.finish(results, report)


if __name__ == "__main__":
    main()
