"""Loss functions: the PyTorch-tutorial 784-128-64-10 ReLU network (MNIST in [−1, 1], batch 64,
SGD with momentum 0.9, learning rate 0.003) trained from the same initialisation with NLL on
log-softmax, softmax cross-entropy, MSE on the softmax probabilities and KL divergence to the
one-hot targets. Our losses sum over the 10 classes and average over the batch; PyTorch's
``MSELoss`` and ``KLDivLoss`` default to ``reduction="mean"``, which also divides by the 10
classes, i.e. the same SGD trajectory at learning rate 0.0003. MSE and KL therefore run as one
sweep each over both learning rates, to show which reduction reproduces the reported accuracies.
"""
from __future__ import annotations

import sys
from typing import Any

from experiments import common, plots, tutorial
from jaxnet import engine

NAME = "loss_functions"
LEARNING_RATE = 0.003
DEFAULT_EPOCHS = 15
# (label, loss name, reported test accuracy, whether PyTorch's default reduction divides by the classes)
LOSSES = (("NLL", "nll", 0.975, False), ("CE", "softmax_cross_entropy", 0.975, False),
          ("MSE", "mse", 0.938, True), ("KL", "kl_divergence", 0.928, True))
NUM_CLASSES = 10
PYTORCH_LR = round(LEARNING_RATE / NUM_CLASSES, 12)  # PyTorch's reduction="mean" ≡ our loss at this rate


def run_name(label: str, lr: float) -> str:
    return f"{label} lr={lr:g}"


def train_loss(study: common.Study, d: tutorial.Data, label: str, loss: str, learning_rates: list[float],
               epochs: int) -> list[dict[str, Any]]:
    """One sweep over ``learning_rates`` for one loss (same init and data order for every member)."""
    seed = study.args.seed

    def run(checkpoint_dir, resume):
        study.log(f"{label}: loss={loss}, learning rates {learning_rates}")
        result = engine.sweep(tutorial.init_fn(), tutorial.optimizer(LEARNING_RATE), (d.x_train, d.y_train),
                              epochs=epochs, batch_size=tutorial.BATCH_SIZE, learning_rate=learning_rates,
                              init_seed=[seed] * len(learning_rates), data_seed=[seed] * len(learning_rates),
                              loss=loss, test=(d.x_test, d.y_test), eval_train=False,
                              checkpoint_dir=checkpoint_dir, resume=resume, log=study.log)
        records = []
        for k, lr in enumerate(learning_rates):
            history = result.histories[k]
            reduction = ("sum over classes, mean over batch (PyTorch reduction='batchmean')" if lr == LEARNING_RATE
                         else "PyTorch reduction='mean' (÷ 10 classes), as learning rate ÷ 10")
            config = {"loss": loss, "learning_rate": lr, "reduction": reduction, "hidden": list(tutorial.HIDDEN),
                      "batch_size": tutorial.BATCH_SIZE, "momentum": tutorial.MOMENTUM, "epochs": epochs,
                      "init": tutorial.INIT_SCHEME, "seed": seed, "sweep_members": len(learning_rates)}
            records.append(tutorial.record(run_name(label, lr), config, history, result.member(k), d, loss=loss,
                                           seconds=history.seconds[-1] if history.seconds else 0.0))
        return records

    names = [run_name(label, lr) for lr in learning_rates]
    return tutorial.fit_or_resume(study, names, run, program=loss, epochs=epochs)


def reported_rows(by_name: dict[str, dict[str, Any]], full_setting: bool) -> list[list[Any]]:
    """(quantity, reported, reproduced, note): the PyTorch-reduction runs are the faithful ones.
    ``full_setting``: the whole data set for the tutorial's 15 epochs (where the side checks were made)."""
    acc = lambda label, lr: by_name[run_name(label, lr)]["final"]["test_accuracy"]  # noqa: E731
    rows = [["NLL test accuracy", 0.975, acc("NLL", LEARNING_RATE), ""],
            ["Cross-entropy test accuracy", 0.975, acc("CE", LEARNING_RATE), ""]]
    for label, reported in (("MSE", 0.938), ("KL", 0.928)):
        faithful = acc(label, PYTORCH_LR)
        note = "PyTorch's reduction=\"mean\" ≡ our loss at lr/10: the tutorial's setting."
        first = by_name[run_name(label, PYTORCH_LR)]["history"]["test_accuracy"][0]
        if label == "MSE" and abs(faithful - reported) > 0.01 and full_setting:
            note += (" Lower than reported, and not by seed noise (seeds 1–4 gave 0.907–0.911 in a side check "
                     "outside this study). The tutorial does not say what its MSELoss compared: on softmax "
                     "probabilities (here) the saturating gradient makes the ÷10 run start very slowly "
                     f"({first:.2f} after epoch 1). MSELoss on the network's log-softmax output itself, a different "
                     "loss the engine does not offer, gave 0.931–0.934 (two seeds) in that side check: a likely cause.")
        elif abs(faithful - reported) > 0.01:
            note += f" Differs from the report; {first:.2f} after epoch 1: a slow start under the ÷10 step."
        rows.append([f"{label} test accuracy, PyTorch reduction (lr {PYTORCH_LR:g})", reported, faithful, note])
        ours = acc(label, LEARNING_RATE)
        rows.append([f"{label} test accuracy, our reduction (lr {LEARNING_RATE:g})", reported, ours,
                     "Not the tutorial's setting: summing over the classes is a 10× larger step"
                     + (", so it trains further and lands higher." if ours > reported else ".")])
    return rows


def main(argv: list[str] | None = None) -> dict:
    args = common.parser(NAME, __doc__, default_epochs=DEFAULT_EPOCHS).parse_args(argv)
    study = common.start(NAME, args, sys.argv[1:] if argv is None else argv)
    epochs = common.epochs(args, quick=1)
    d = tutorial.load_data(args)
    runs: list[dict[str, Any]] = []
    for label, loss, _, pytorch_mean in LOSSES:
        lrs = [LEARNING_RATE, PYTORCH_LR] if pytorch_mean else [LEARNING_RATE]
        runs += train_loss(study, d, label, loss, lrs, epochs)
        study.checkpoint(runs)
    by_name = {r["name"]: r for r in runs}

    labels = [r["name"] for r in runs]
    reported = {run_name(label, LEARNING_RATE if not mean else PYTORCH_LR): value
                for label, _, value, mean in LOSSES}
    bars = plots.bar_chart(study.path("test_accuracy.png"), labels, [r["final"]["test_accuracy"] for r in runs],
                           "test accuracy", f"Test accuracy after {epochs} epochs by loss and learning rate",
                           reference=[reported.get(n) for n in labels], reference_label="reported (PyTorch)")
    acc_curves = tutorial.test_accuracy_figure(study, runs, "test_accuracy_curves.png",
                                               "Test accuracy during training")
    loss_curves = tutorial.test_loss_figure(study, runs, "test_loss_curves.png",
                                            "Test loss (each run's own loss)", "test loss (own loss)")

    nll, ce = by_name[run_name("NLL", LEARNING_RATE)], by_name[run_name("CE", LEARNING_RATE)]
    kl = by_name[run_name("KL", LEARNING_RATE)]
    same = max(abs(a - b) for a, b in zip(nll["history"]["test_accuracy"], ce["history"]["test_accuracy"]))
    same_kl = max(abs(a - b) for a, b in zip(kl["history"]["test_accuracy"], ce["history"]["test_accuracy"]))
    low = PYTORCH_LR
    mse_gap = by_name[run_name("MSE", LEARNING_RATE)]["final"]["test_accuracy"] - by_name[run_name("MSE", low)]["final"]["test_accuracy"]
    kl_gap = kl["final"]["test_accuracy"] - by_name[run_name("KL", low)]["final"]["test_accuracy"]

    report = study.report("Loss functions: NLL, cross-entropy, MSE and KL divergence")
    report.what_was_run(
        tutorial.describe_setup(epochs, study.quick, len(d.x_train), len(d.x_test)) +
        f"\n\nLearning rate {LEARNING_RATE:g}. Four losses on the same initialisation and data order: **NLL** "
        "(−ln pᵧ on log-softmax), **CE** (softmax cross-entropy on the logits), **MSE** (Σₖ (pₖ − yₖ)² on the "
        "softmax probabilities against one-hot targets) and **KL** (Σₖ yₖ(ln yₖ − ln pₖ) on log-softmax). "
        "Our losses sum over the 10 classes and average over the batch. PyTorch's `MSELoss` and `KLDivLoss` "
        "default to `reduction=\"mean\"`, which averages over all batch × 10 elements: exactly 1/10 of our loss, "
        f"hence under SGD (momentum included) the same trajectory as ours at learning rate {low:g}. So MSE and "
        f"KL each run as one sweep over the learning rates {LEARNING_RATE:g} (our reduction) and {low:g} "
        "(PyTorch's); NLL and CE need no such twin (`NLLLoss`/`CrossEntropyLoss` average over the batch only).")
    report.heading("Results").table(tutorial.SUMMARY_HEADERS, tutorial.summary_rows(runs))
    report.figure(bars, "Test accuracy of every run; the black bars are the tutorial's numbers, placed at the "
                        "run that uses its reduction.")
    report.figure(acc_curves, "Test accuracy after every epoch. NLL, CE and KL at lr 0.003 are the same "
                              "function of the logits, so their three lines coincide (only the last drawn shows).")
    report.figure(loss_curves, "Test loss after every epoch, log scale; each run is "
                               "measured in its own loss, so only the shapes compare across losses.")
    report.heading("Why MSE and KL land lower").text(
        f"**The reduction, i.e. a 10× smaller step.** With PyTorch's default `reduction=\"mean\"`, MSE and KL "
        f"are divided by the 10 classes as well as the batch, so their gradients, and every SGD step, are 10× "
        f"smaller than for NLL/CE at the same learning rate. Our sum-over-classes versions at lr {LEARNING_RATE:g} "
        f"reach {by_name[run_name('MSE', LEARNING_RATE)]['final']['test_accuracy']:.3f} (MSE) and "
        f"{kl['final']['test_accuracy']:.3f} (KL), while at lr {low:g} (≡ PyTorch) they reach "
        f"{by_name[run_name('MSE', low)]['final']['test_accuracy']:.3f} and "
        f"{by_name[run_name('KL', low)]['final']['test_accuracy']:.3f}: the reduction alone costs "
        f"{mse_gap:.3f} (MSE) and {kl_gap:.3f} (KL) of test accuracy here.\n\n"
        f"**KL with one-hot targets is cross-entropy.** Σₖ yₖ(ln yₖ − ln pₖ) = −ln pᵧ when y is one-hot "
        f"(0·ln 0 = 0), so KL at lr {LEARNING_RATE:g} follows CE's trajectory ("
        + ("identical test accuracy at every epoch" if same_kl == 0 else
           f"largest test-accuracy difference over the epochs: {same_kl:.4f}") +
        f"); the tutorial's KL number is CE trained with a 10× smaller step, "
        f"{tutorial.TUTORIAL_EPOCHS} epochs being too few for it to catch up.\n\n"
        "**MSE on probabilities saturates.** ∂/∂zⱼ Σₖ (pₖ − yₖ)² = 2 pⱼ[(pⱼ − yⱼ) − Σₖ pₖ(pₖ − yₖ)]: the "
        "softmax Jacobian multiplies the error, so an example the network is confidently wrong about "
        "(p_y → 0, p_wrong → 1) gets a vanishing gradient, whereas cross-entropy's gradient p − y stays "
        "large exactly there. MSE's errors are also bounded (at most 2 per example), so even at our larger step "
        "it learns more slowly than CE; with the ÷10 reduction on top it is the slowest.\n\n"
        "NLL and CE are the same function of the logits (log-softmax then −ln pᵧ), computed the same way in "
        "PyTorch too; " + ("their test accuracies are identical at every epoch." if same == 0 else
                           f"their test accuracies differ by at most {same:.4f} over the epochs (rounding only)."))
    tutorial.per_class_section(report, study, runs, d.class_names)
    report.reported_vs_reproduced(reported_rows(by_name, not study.quick and epochs == tutorial.TUTORIAL_EPOCHS),
                                  source=tutorial.SOURCE)
    report.text(
        f"Which reduction reproduces the tutorial: the PyTorch-reduction runs (lr {low:g}) — KL within "
        f"{abs(by_name[run_name('KL', low)]['final']['test_accuracy'] - 0.928):.3f}, MSE below (see its note); our "
        f"batch-mean, sum-over-classes losses at lr {LEARNING_RATE:g} land well above both reported numbers. "
        + tutorial.timing_note(runs, shared=True))
    headline = ("CE test accuracy", ce["final"]["test_accuracy"])
    results = study.results(runs, headline=headline, epochs=epochs, learning_rate=LEARNING_RATE,
                            reported={run_name(l, LEARNING_RATE if not m else low): v for l, _, v, m in LOSSES})
    return study.finish(results, report)


if __name__ == "__main__":
    main()
