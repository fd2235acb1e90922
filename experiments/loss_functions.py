"""Loss functions: the PyTorch-tutorial 784-128-64-10 ReLU network (MNIST in [−1, 1], batch 64,
SGD with momentum 0.9, learning rate 0.003) trained from the same initialisation with NLL on
log-softmax, softmax cross-entropy, MSE on the softmax probabilities and KL divergence to the
one-hot targets. Our losses sum over the 10 classes and average over the batch; PyTorch's
``MSELoss`` and ``KLDivLoss`` default to ``reduction="mean"``, which also divides by the 10
classes, i.e. the same SGD trajectory at learning rate 0.0003. MSE and KL therefore run as one
sweep each over both learning rates, to show which reduction reproduces the reported accuracies.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, Mapping

from experiments import lib
from experiments.lib import plots, tutorial
from experiments.lib.claims import Claim
from jaxnet import engine, losses

NAME = "loss_functions"
LossName = Literal["nll", "softmax_cross_entropy", "mse", "kl_divergence"]
LABELS = {"nll": "NLL", "softmax_cross_entropy": "CE", "mse": "MSE", "kl_divergence": "KL"}
REPORTED = {"nll": 0.975, "softmax_cross_entropy": 0.975, "mse": 0.938, "kl_divergence": 0.928}
"""The tutorial's test accuracies (PyTorch's default reductions)."""
PYTORCH_MEAN = ("mse", "kl_divergence")
"""Losses whose PyTorch default, reduction="mean", also divides by the classes (NLLLoss and
CrossEntropyLoss average over the batch only)."""
NUM_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class Config(tutorial.TutorialConfig):
    learning_rate: float = 0.003
    """SGD learning rate (the tutorial's)"""
    losses: tuple[LossName, ...] = ("nll", "softmax_cross_entropy", "mse", "kl_divergence")
    """the losses to compare, each from the same initialisation and data order"""
    pytorch_reduction_runs: bool = True
    """also train MSE and KL at learning_rate / 10: PyTorch's reduction="mean" (÷ 10 classes), the tutorial's setting"""

    def problems(self) -> list[tuple[str, str, str]]:
        problems = tutorial.config_problems(self)
        if not self.learning_rate > 0:
            problems.append(("--learning-rate", f"{self.learning_rate} is not positive", "give e.g. 0.003"))
        if len(set(self.losses)) != len(self.losses):
            problems.append(("--losses", f"{list(self.losses)} repeat a loss", "give each loss once"))
        return problems


def pytorch_lr(learning_rate: float) -> float:
    """Our loss at this rate ≡ PyTorch's reduction="mean" (÷ classes) at ``learning_rate``."""
    return round(learning_rate / NUM_CLASSES, 12)


def run_name(loss: str, lr: float) -> str:
    return f"{LABELS[loss]} lr={lr:g}"


def learning_rates(loss: str, lr: float, pytorch_reduction_runs: bool) -> list[float]:
    """The rates ``loss`` trains at: the config's, and for MSE/KL PyTorch's ÷10 twin (if on)."""
    return [lr, pytorch_lr(lr)] if loss in PYTORCH_MEAN and pytorch_reduction_runs else [lr]


def run_settings(config: Config, loss: str, lr: float, members: int) -> dict[str, Any]:
    """What a run trained with, for its record; a run off the config's rate is PyTorch's ÷10 reduction."""
    reduction = ("sum over classes, mean over batch (PyTorch reduction='batchmean')" if lr == config.learning_rate
                 else "PyTorch reduction='mean' (÷ 10 classes), as learning rate ÷ 10")
    return {"loss": loss, "learning_rate": lr, "reduction": reduction, "hidden": list(config.hidden),
            "batch_size": config.batch_size, "momentum": config.momentum, "epochs": config.epochs,
            "init": config.init, "seed": config.seed, "sweep_members": members}


def run(config: Config, study: lib.Study) -> dict[str, Any]:
    """One engine sweep per loss over its learning rates (one member for NLL and CE)."""
    d = tutorial.load_data(config, study)
    runs: list[dict[str, Any]] = []
    for loss in config.losses:
        rates = learning_rates(loss, config.learning_rate, config.pytorch_reduction_runs)

        def train_loss(loss: str = loss, rates: list[float] = rates, **options: Any) -> list[dict[str, Any]]:
            k = len(rates)
            loss_value = losses.get(loss)
            result = engine.sweep(tutorial.model(config.hidden, config.init),
                                  tutorial.optimizer(config.learning_rate, config.momentum), (d.x_train, d.y_train),
                                  epochs=config.epochs, batch_size=config.batch_size, learning_rate=rates,
                                  init_seed=[config.seed] * k, data_seed=[config.seed] * k, loss=loss_value,
                                  test=(d.x_test, d.y_test), eval_train=False, **options)
            return [tutorial.record(run_name(loss, lr), run_settings(config, loss, lr, k), history, result.member(i),
                                    d, loss=loss_value, seconds=history.seconds[-1] if history.seconds else 0.0)
                    for i, (lr, history) in enumerate(zip(rates, result.histories))]

        runs += study.train(loss, [run_name(loss, lr) for lr in rates], train_loss,
                            label=f"{LABELS[loss]}, lr {', '.join(f'{lr:g}' for lr in rates)}", epochs=config.epochs)
        study.save_progress(runs)
    by_name = {r["name"]: r for r in runs}
    ce = by_name.get(run_name("softmax_cross_entropy", config.learning_rate))
    headline = (("CE test accuracy", ce["final"]["test_accuracy"]) if ce is not None else
                (f"{runs[0]['name']} test accuracy", runs[0]["final"]["test_accuracy"]))
    return {"runs": runs, "headline": headline}


# ---------------------------------------------------------------- outcomes, from the numbers
def _epochs(n: int) -> str:
    return f"{n} epoch{'s' * (n != 1)}"


def _pair(results: Mapping[str, Any], loss: str) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """The runs of ``loss``: at the config's learning rate (ours) and at its ÷10 twin (PyTorch's), None if not run."""
    runs = [r for r in results["runs"] if r["config"]["loss"] == loss] + [None, None]
    return runs[0], runs[1]


def _acc(run: Mapping[str, Any]) -> float:
    return run["final"]["test_accuracy"]


def _first(run: Mapping[str, Any]) -> float | None:
    """The test accuracy after the run's first checked epoch."""
    return next((a for a in run["history"]["test_accuracy"] if a is not None), None)


def curve_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> float | None:
    """The largest |test-accuracy difference| between runs ``a`` and ``b`` over their epochs."""
    pairs = [(x, y) for x, y in zip(a["history"]["test_accuracy"], b["history"]["test_accuracy"])
             if x is not None and y is not None]
    return max((abs(x - y) for x, y in pairs), default=None)


def _versus(subject: str, a: Mapping[str, Any], b: Mapping[str, Any], more: str, less: str, **options: Any) -> Claim:
    """Run ``a``'s final test accuracy against run ``b``'s."""
    return Claim(subject, a["name"], _acc(a), b["name"], _acc(b), more=more, less=less, **options)


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> Claim:
    return Claim(f"{a['name']} against {b['name']}: the largest test-accuracy difference over the epochs",
                 "largest |difference|", curve_difference(a, b), "zero", 0.0, digits=4, reference=True,
                 more="their curves differ", less="identical test accuracy at every epoch")


def sections(results: Mapping[str, Any]) -> list[tuple[str, list[Claim]]]:
    """The paragraphs comparing the losses: each a text that states no outcome, and its claims."""
    (nll, _), (ce, _) = _pair(results, "nll"), _pair(results, "softmax_cross_entropy")
    (mse, mse_low), (kl, kl_low) = _pair(results, "mse"), _pair(results, "kl_divergence")
    out = []
    twins = [(ours, low) for ours, low in ((mse, mse_low), (kl, kl_low)) if low is not None]
    if twins:
        out.append(("**The reduction, i.e. a 10× smaller step.** With PyTorch's default `reduction=\"mean\"`, MSE and "
                    "KL are divided by the 10 classes as well as the batch, so their gradients, and every SGD step, are "
                    f"10× smaller than for NLL/CE at the same learning rate. Test accuracy after "
                    f"{_epochs(results['config']['epochs'])}:",
                    [_versus(f"{LABELS[ours['config']['loss']]}: our reduction against PyTorch's ÷10", ours, low,
                             "the ÷10 reduction costs accuracy", "the ÷10 reduction does not cost accuracy")
                     for ours, low in twins]))
    if kl and ce:
        out.append(("**KL with one-hot targets is cross-entropy.** Σₖ yₖ(ln yₖ − ln pₖ) = −ln pᵧ when y is one-hot "
                    "(0·ln 0 = 0), so KL and CE at one learning rate follow one trajectory; the tutorial's KL setting "
                    "is therefore CE trained with a 10× smaller step.",
                    [_same(kl, ce)] + ([] if kl_low is None else [
                        _versus("the tutorial's KL setting (CE with a 10× smaller step) against CE", ce, kl_low,
                                "still more than 0.01 below CE", "not more than 0.01 below CE", margin=0.01)])))
    if mse:
        found = []
        if ce:
            found.append(_versus("MSE against CE at the same learning rate", ce, mse, "MSE learns more slowly",
                                 "MSE is not behind"))
            if results["config"]["epochs"] > 1 and _first(mse) is not None and _first(ce) is not None:
                found.append(Claim("MSE against CE after epoch 1", ce["name"], _first(ce), mse["name"], _first(mse),
                                   more="MSE learns more slowly", less="MSE is not behind"))
        if mse_low:
            lowest = min((r for r in results["runs"] if r is not mse_low), key=_acc)
            found.append(_versus(f"{mse_low['name']}, the ÷10 reduction on top, against the lowest other run", lowest,
                                 mse_low, "it is the lowest of all runs", "it is not the lowest"))
        out.append(("**MSE on probabilities saturates.** ∂/∂zⱼ Σₖ (pₖ − yₖ)² = 2 pⱼ[(pⱼ − yⱼ) − Σₖ pₖ(pₖ − yₖ)]: the "
                    "softmax Jacobian multiplies the error, so an example the network is confidently wrong about "
                    "(p_y → 0, p_wrong → 1) gets a vanishing gradient, whereas cross-entropy's gradient p − y stays "
                    "large exactly there, and MSE's error is bounded (at most 2 per example).", found))
    if nll and ce:
        out.append(("NLL and CE are the same function of the logits (log-softmax then −ln pᵧ), computed the same way "
                    "in PyTorch too.", [_same(nll, ce)]))
    return out


def closest_claims(results: Mapping[str, Any]) -> list[Claim]:
    """Which reduction lands nearer the tutorial's MSE and KL numbers, per loss."""
    out = []
    for loss in PYTORCH_MEAN:
        ours, low = _pair(results, loss)
        if ours and low:
            out.append(Claim(f"{LABELS[loss]}: the distance from the reported {REPORTED[loss]:.3f}", ours["name"],
                             abs(_acc(ours) - REPORTED[loss]), low["name"], abs(_acc(low) - REPORTED[loss]),
                             more="PyTorch's reduction lands nearer", less="ours lands nearer (or as near)"))
    return out


def claims(results: Mapping[str, Any]) -> list[Claim]:
    """Every outcome the report states, computed from results.json."""
    return [c for _, found in sections(results) for c in found] + closest_claims(results)


def reported_rows(results: Mapping[str, Any]) -> list[list[Any]]:
    """(quantity, reported, reproduced, note) for the losses that were run; the PyTorch-reduction
    runs are the tutorial's setting for MSE and KL."""
    cfg = results["config"]
    lr, low, epochs = cfg["learning_rate"], pytorch_lr(cfg["learning_rate"]), cfg["epochs"]
    ce, _ = _pair(results, "softmax_cross_entropy")
    rows = []
    for loss in cfg["losses"]:
        (ours, faithful), reported = _pair(results, loss), REPORTED[loss]
        if loss not in PYTORCH_MEAN:
            far = abs(_acc(ours) - reported) > 0.01
            rows.append([f"{'Cross-entropy' if ours is ce else LABELS[loss]} test accuracy", reported, _acc(ours),
                         "" if not far else f"{_epochs(epochs)} instead of the tutorial's {tutorial.TUTORIAL_EPOCHS}."
                         if epochs < tutorial.TUTORIAL_EPOCHS else "One run of one seed."])
            continue
        if faithful is not None:
            note = "PyTorch's reduction=\"mean\" ≡ our loss at lr/10: the tutorial's setting."
            if abs(_acc(faithful) - reported) > 0.01:
                first, ce_first = _first(faithful), ce and _first(ce)
                note += ((f" {first:.2f} test accuracy after epoch 1" if first is not None else "")
                         + (f" (CE: {ce_first:.2f})." if ce_first is not None else "."))
                if loss == "mse":
                    note += (" The tutorial does not say what its MSELoss compared (softmax probabilities, as here, "
                             "or e.g. the log-softmax output); this study does not test which.")
            rows.append([f"{LABELS[loss]} test accuracy, PyTorch reduction (lr {low:g})", reported, _acc(faithful),
                         note])
        rows.append([f"{LABELS[loss]} test accuracy, our reduction (lr {lr:g})", reported, _acc(ours),
                     "Not the tutorial's setting: summing over the classes is a 10× larger step."
                     if faithful is not None else "Our reduction (sum over classes), not the tutorial's: "
                     "--pytorch-reduction-runs adds the lr/10 run that is."])
    return rows


def report(results: dict[str, Any], out: Path) -> lib.Report:
    """report.md and its figures, from results.json alone."""
    cfg, runs = results["config"], results["runs"]
    lr, low = cfg["learning_rate"], pytorch_lr(cfg["learning_rate"])
    n_train, n_test = cfg["train_images"] or 60_000, cfg["test_images"] or 10_000
    definitions = {
        "nll": "**NLL** (−ln pᵧ on log-softmax)", "softmax_cross_entropy": "**CE** (softmax cross-entropy on the logits)",
        "mse": "**MSE** (Σₖ (pₖ − yₖ)² on the softmax probabilities against one-hot targets)",
        "kl_divergence": "**KL** (Σₖ yₖ(ln yₖ − ln pₖ) on log-softmax)"}
    rates = {loss: learning_rates(loss, lr, cfg["pytorch_reduction_runs"]) for loss in cfg["losses"]}
    twins = [LABELS[loss] for loss, pair in rates.items() if len(pair) == 2]
    rep = lib.Report("Loss functions: NLL, cross-entropy, MSE and KL divergence", quick=results["quick"])
    rep.what_was_run(
        tutorial.describe_setup(cfg["epochs"], results["quick"], n_train, n_test) +
        f"\n\nLearning rate {lr:g}. {len(cfg['losses'])} losses on the same initialisation and data order: "
        + ", ".join(definitions[loss] for loss in cfg["losses"]) + ". "
        "Our losses sum over the 10 classes and average over the batch. PyTorch's `MSELoss` and `KLDivLoss` "
        "default to `reduction=\"mean\"`, which averages over all batch × 10 elements: exactly 1/10 of our loss, "
        f"hence under SGD (momentum included) the same trajectory as ours at learning rate {low:g}. "
        + (f"So {' and '.join(twins)} each run as one sweep over the learning rates {lr:g} (our reduction) and "
           f"{low:g} (PyTorch's); NLL and CE need no such twin (`NLLLoss`/`CrossEntropyLoss` average over the "
           "batch only)." if twins else "The lr/10 runs are off (`--no-pytorch-reduction-runs`)."))
    rep.heading("Results").table(tutorial.SUMMARY_HEADERS, tutorial.summary_rows(runs))
    labels = [r["name"] for r in runs]
    faithful = {run_name(loss, pair[-1]): REPORTED[loss] for loss, pair in rates.items()  # the tutorial's setting
                if loss not in PYTORCH_MEAN or len(pair) == 2}
    rep.figure(plots.bar_chart(out / "test_accuracy.png", labels, [r["final"]["test_accuracy"] for r in runs],
                               "test accuracy", f"Test accuracy after {cfg['epochs']} epochs by loss and learning rate",
                               reference=[faithful.get(n) for n in labels], reference_label="reported (PyTorch)"),
               "Test accuracy of every run; the black bars are the tutorial's numbers, placed at the run that uses "
               "its reduction.")
    same = [LABELS[loss] for loss in ("nll", "softmax_cross_entropy", "kl_divergence") if _pair(results, loss)[0]]
    rep.figure(tutorial.test_accuracy_figure(out, runs, "test_accuracy_curves.png", "Test accuracy during training"),
               "Test accuracy after every epoch." + (f" {', '.join(same)} at lr {lr:g} are the same function of the "
                                                     "logits: where their lines coincide, only the last drawn shows."
                                                     if len(same) >= 2 else ""))
    rep.figure(tutorial.test_loss_figure(out, runs, "test_loss_curves.png", "Test loss (each run's own loss)",
                                         "test loss (own loss)"),
               "Test loss after every epoch, log scale; each run is measured in its own loss, so only the shapes "
               "compare across losses.")
    if paragraphs := sections(results):
        rep.heading("MSE and KL against cross-entropy")
    for text, found in paragraphs:
        rep.text(text).claims(found, heading=None)
    class_names = [str(c) for c in range(len(runs[0]["confusion"]))]
    tutorial.per_class_section(rep, out, runs, class_names)
    rep.reported_vs_reproduced(reported_rows(results), source=tutorial.SOURCE)
    if closest := closest_claims(results):
        rep.text("Which reduction lands nearer the tutorial's numbers:").claims(closest, heading=None)
    return rep.text(tutorial.timing_note(runs, shared=True))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__, datasets=("mnist",))


if __name__ == "__main__":
    main()
