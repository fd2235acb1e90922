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
from jaxnet import engine

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


def learning_rates(config: Config | Mapping[str, Any], loss: str) -> list[float]:
    """The rates ``loss`` trains at: the config's, and for MSE/KL PyTorch's ÷10 twin (if on)."""
    get = config.get if isinstance(config, Mapping) else lambda k: getattr(config, k)
    lr = get("learning_rate")
    return [lr, pytorch_lr(lr)] if loss in PYTORCH_MEAN and get("pytorch_reduction_runs") else [lr]


def run(config: Config, study: lib.Study) -> dict[str, Any]:
    """One engine sweep per loss over its learning rates (one member for NLL and CE)."""
    d = tutorial.load_data(config, study)
    runs: list[dict[str, Any]] = []
    for loss in config.losses:
        rates = learning_rates(config, loss)

        def train_loss(loss: str = loss, rates: list[float] = rates, **options: Any) -> list[dict[str, Any]]:
            k = len(rates)
            result = engine.sweep(tutorial.init_fn(config.hidden, config.init),
                                  tutorial.optimizer(config.learning_rate, config.momentum), (d.x_train, d.y_train),
                                  epochs=config.epochs, batch_size=config.batch_size, learning_rate=rates,
                                  init_seed=[config.seed] * k, data_seed=[config.seed] * k, loss=loss,
                                  test=(d.x_test, d.y_test), eval_train=False, **options)
            records = []
            for i, lr in enumerate(rates):
                history = result.histories[i]
                reduction = ("sum over classes, mean over batch (PyTorch reduction='batchmean')"
                             if lr == config.learning_rate else
                             "PyTorch reduction='mean' (÷ 10 classes), as learning rate ÷ 10")
                run_config = {"loss": loss, "learning_rate": lr, "reduction": reduction, "hidden": list(config.hidden),
                              "batch_size": config.batch_size, "momentum": config.momentum, "epochs": config.epochs,
                              "init": config.init, "seed": config.seed, "sweep_members": k}
                records.append(tutorial.record(run_name(loss, lr), run_config, history, result.member(i), d, loss=loss,
                                               seconds=history.seconds[-1] if history.seconds else 0.0))
            return records

        runs += study.train(loss, [run_name(loss, lr) for lr in rates], train_loss,
                            label=f"{LABELS[loss]}, lr {', '.join(f'{lr:g}' for lr in rates)}", epochs=config.epochs)
        study.save_progress(runs)
    by_name = {r["name"]: r for r in runs}
    ce = by_name.get(run_name("softmax_cross_entropy", config.learning_rate))
    headline = (("CE test accuracy", ce["final"]["test_accuracy"]) if ce is not None else
                (f"{runs[0]['name']} test accuracy", runs[0]["final"]["test_accuracy"]))
    return {"runs": runs, "headline": headline}


# ---------------------------------------------------------------- outcomes, from the numbers
def _runs(results: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {r["name"]: r for r in results["runs"]}


def accuracy(results: Mapping[str, Any], loss: str, lr: float) -> float | None:
    """Final test accuracy of ``loss`` at ``lr``; None if that run is not in the results."""
    run = _runs(results).get(run_name(loss, lr))
    return None if run is None else run["final"]["test_accuracy"]


def curve_difference(results: Mapping[str, Any], a: str, b: str) -> float | None:
    """The largest |test-accuracy difference| between runs ``a`` and ``b`` over their epochs."""
    runs = _runs(results)
    if a not in runs or b not in runs:
        return None
    pairs = [(x, y) for x, y in zip(runs[a]["history"]["test_accuracy"], runs[b]["history"]["test_accuracy"])
             if x is not None and y is not None]
    return max((abs(x - y) for x, y in pairs), default=None)


def _first(results: Mapping[str, Any], name: str) -> float | None:
    accs = [a for a in _runs(results)[name]["history"]["test_accuracy"] if a is not None]
    return accs[0] if accs else None


def _epochs(n: int) -> str:
    return f"{n} epoch{'s' * (n != 1)}"


def _same(diff: float | None, what: str) -> str:
    return (f"identical {what} at every epoch" if diff == 0 else
            f"{what} differing by at most {diff:.4f} over the epochs")


def curves_caption(results: Mapping[str, Any]) -> str:
    """The caption of the accuracy curves: whether NLL, CE and KL at the base rate coincide."""
    lr = results["config"]["learning_rate"]
    same = [loss for loss in ("nll", "softmax_cross_entropy", "kl_divergence") if accuracy(results, loss, lr) is not None]
    if len(same) < 2:
        return "Test accuracy after every epoch."
    names = [run_name(loss, lr) for loss in same]
    diff = max(curve_difference(results, names[0], n) or 0.0 for n in names[1:])
    labels = ", ".join(LABELS[loss] for loss in same)
    return (f"Test accuracy after every epoch. {labels} at lr {lr:g} are the same function of the logits; "
            + ("their lines coincide (only the last drawn shows)." if diff == 0 else
               f"their lines differ by at most {diff:.4f}."))


def findings(results: Mapping[str, Any]) -> list[str]:
    """The paragraphs comparing the losses, each worded from the numbers it states."""
    cfg = results["config"]
    lr, low, epochs = cfg["learning_rate"], pytorch_lr(cfg["learning_rate"]), cfg["epochs"]
    acc = lambda loss, rate: accuracy(results, loss, rate)  # noqa: E731
    out = []
    twins = [loss for loss in PYTORCH_MEAN if acc(loss, lr) is not None and acc(loss, low) is not None]
    if twins:
        parts = [f"{LABELS[loss]}: {acc(loss, lr):.3f} at lr {lr:g} against {acc(loss, low):.3f} at lr {low:g}, "
                 f"so the ÷10 reduction {'costs' if acc(loss, lr) > acc(loss, low) else 'gains'} "
                 f"{abs(acc(loss, lr) - acc(loss, low)):.3f}" for loss in twins]
        out.append(
            "**The reduction, i.e. a 10× smaller step.** With PyTorch's default `reduction=\"mean\"`, MSE and KL are "
            "divided by the 10 classes as well as the batch, so their gradients, and every SGD step, are 10× smaller "
            f"than for NLL/CE at the same learning rate. Test accuracy after {_epochs(epochs)}: " + "; ".join(parts) + ".")
    ce, kl = run_name("softmax_cross_entropy", lr), run_name("kl_divergence", lr)
    if acc("kl_divergence", lr) is not None and acc("softmax_cross_entropy", lr) is not None:
        text = ("**KL with one-hot targets is cross-entropy.** Σₖ yₖ(ln yₖ − ln pₖ) = −ln pᵧ when y is one-hot "
                f"(0·ln 0 = 0), so KL at lr {lr:g} and CE follow one trajectory: "
                f"{_same(curve_difference(results, kl, ce), 'test accuracy')}.")
        if acc("kl_divergence", low) is not None:
            behind = acc("softmax_cross_entropy", lr) - acc("kl_divergence", low)
            text += (f" The tutorial's KL setting is therefore CE trained with a 10× smaller step, which after "
                     f"{_epochs(epochs)} is " + (f"still {behind:.3f} below CE." if behind > 0.01 else
                                                 f"within 0.01 of CE ({behind:+.3f})."))
        out.append(text)
    if acc("mse", lr) is not None:
        text = ("**MSE on probabilities saturates.** ∂/∂zⱼ Σₖ (pₖ − yₖ)² = 2 pⱼ[(pⱼ − yⱼ) − Σₖ pₖ(pₖ − yₖ)]: the "
                "softmax Jacobian multiplies the error, so an example the network is confidently wrong about "
                "(p_y → 0, p_wrong → 1) gets a vanishing gradient, whereas cross-entropy's gradient p − y stays large "
                "exactly there, and MSE's error is bounded (at most 2 per example).")
        if acc("softmax_cross_entropy", lr) is not None:
            m, c = acc("mse", lr), acc("softmax_cross_entropy", lr)
            mf, cf = _first(results, run_name("mse", lr)), _first(results, ce)
            text += (f" At the same lr {lr:g}, MSE ends at {m:.3f} against CE's {c:.3f}"
                     + (f" (after epoch 1: {mf:.3f} against {cf:.3f})"
                        if epochs > 1 and mf is not None and cf is not None else "")
                     + (": it learns more slowly." if m < c else ": here it is not behind."))
        if acc("mse", low) is not None:
            lowest = min(results["runs"], key=lambda r: r["final"]["test_accuracy"])
            text += (f" With the ÷10 reduction on top it ends at {acc('mse', low):.3f}"
                     + (", the lowest of all runs." if lowest["name"] == run_name("mse", low) else
                        f"; the lowest run is {lowest['name']} ({lowest['final']['test_accuracy']:.3f})."))
        out.append(text)
    nll = run_name("nll", lr)
    if acc("nll", lr) is not None and acc("softmax_cross_entropy", lr) is not None:
        out.append("NLL and CE are the same function of the logits (log-softmax then −ln pᵧ), computed the same way in "
                   f"PyTorch too; here their runs have {_same(curve_difference(results, nll, ce), 'test accuracies')}.")
    return out


def _plain_note(results: Mapping[str, Any], reported: float, got: float) -> str:
    if abs(got - reported) <= 0.01:
        return ""
    epochs = results["config"]["epochs"]
    return (f"{_epochs(epochs)} instead of the tutorial's {tutorial.TUTORIAL_EPOCHS}." if epochs < tutorial.TUTORIAL_EPOCHS
            else f"{'Above' if got > reported else 'Below'} the reported value; one run of one seed.")


def reported_rows(results: Mapping[str, Any]) -> list[list[Any]]:
    """(quantity, reported, reproduced, note) for the losses that were run; the PyTorch-reduction
    runs are the tutorial's setting for MSE and KL."""
    cfg = results["config"]
    lr, low = cfg["learning_rate"], pytorch_lr(cfg["learning_rate"])
    ce_name = run_name("softmax_cross_entropy", lr)
    rows = []
    for loss in cfg["losses"]:
        reported, ours = REPORTED[loss], accuracy(results, loss, lr)
        label = "Cross-entropy" if loss == "softmax_cross_entropy" else LABELS[loss]
        if loss not in PYTORCH_MEAN:
            rows.append([f"{label} test accuracy", reported, ours, _plain_note(results, reported, ours)])
            continue
        faithful = accuracy(results, loss, low)
        if faithful is not None:
            note = "PyTorch's reduction=\"mean\" ≡ our loss at lr/10: the tutorial's setting."
            if abs(faithful - reported) > 0.01:
                first = _first(results, run_name(loss, low))
                ce_first = _first(results, ce_name) if ce_name in _runs(results) else None
                note += (f" {'Above' if faithful > reported else 'Below'} the reported value"
                         + (f"; {first:.2f} test accuracy after epoch 1" if first is not None else "")
                         + (f" (CE: {ce_first:.2f})" if ce_first is not None else "") + ".")
                if loss == "mse":
                    note += (" The tutorial does not say what its MSELoss compared (softmax probabilities, as here, "
                             "or e.g. the log-softmax output); this study does not test which.")
            rows.append([f"{LABELS[loss]} test accuracy, PyTorch reduction (lr {low:g})", reported, faithful, note])
        setting = ("Not the tutorial's setting: summing over the classes is a 10× larger step"
                   if faithful is not None else "Our reduction (sum over classes), not the tutorial's: "
                   "--pytorch-reduction-runs adds the lr/10 run that is")
        rows.append([f"{LABELS[loss]} test accuracy, our reduction (lr {lr:g})", reported, ours,
                     setting + f"; it lands {'above' if ours > reported else 'below'} the reported value."])
    return rows


def closest_text(results: Mapping[str, Any]) -> str:
    """Which reduction lands nearer the tutorial's MSE and KL numbers, per loss."""
    cfg = results["config"]
    lr, low = cfg["learning_rate"], pytorch_lr(cfg["learning_rate"])
    parts = []
    for loss in PYTORCH_MEAN:
        ours, faithful = accuracy(results, loss, lr), accuracy(results, loss, low)
        if ours is None or faithful is None:
            continue
        d_ours, d_faithful = abs(ours - REPORTED[loss]), abs(faithful - REPORTED[loss])
        winner = f"PyTorch's (lr {low:g})" if d_faithful < d_ours else f"ours (lr {lr:g})"
        parts.append(f"{LABELS[loss]}: {winner}, {min(d_ours, d_faithful):.3f} from the reported "
                     f"{REPORTED[loss]:.3f} (the other is {max(d_ours, d_faithful):.3f} away)")
    return ("Which reduction lands nearer the tutorial's numbers: " + "; ".join(parts) + ". ") if parts else ""


def report(results: dict[str, Any], out: Path) -> lib.Report:
    """report.md and its figures, from results.json alone."""
    cfg, runs = results["config"], results["runs"]
    lr, low = cfg["learning_rate"], pytorch_lr(cfg["learning_rate"])
    n_train, n_test = cfg["train_images"] or 60_000, cfg["test_images"] or 10_000
    definitions = {
        "nll": "**NLL** (−ln pᵧ on log-softmax)", "softmax_cross_entropy": "**CE** (softmax cross-entropy on the logits)",
        "mse": "**MSE** (Σₖ (pₖ − yₖ)² on the softmax probabilities against one-hot targets)",
        "kl_divergence": "**KL** (Σₖ yₖ(ln yₖ − ln pₖ) on log-softmax)"}
    twins = [LABELS[loss] for loss in cfg["losses"] if len(learning_rates(cfg, loss)) == 2]
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
    faithful = {run_name(loss, learning_rates(cfg, loss)[-1]): REPORTED[loss] for loss in cfg["losses"]
                if loss not in PYTORCH_MEAN or len(learning_rates(cfg, loss)) == 2}
    rep.figure(plots.bar_chart(out / "test_accuracy.png", labels, [r["final"]["test_accuracy"] for r in runs],
                               "test accuracy", f"Test accuracy after {cfg['epochs']} epochs by loss and learning rate",
                               reference=[faithful.get(n) for n in labels], reference_label="reported (PyTorch)"),
               "Test accuracy of every run; the black bars are the tutorial's numbers, placed at the run that uses "
               "its reduction.")
    rep.figure(tutorial.test_accuracy_figure(out, runs, "test_accuracy_curves.png", "Test accuracy during training"),
               curves_caption(results))
    rep.figure(tutorial.test_loss_figure(out, runs, "test_loss_curves.png", "Test loss (each run's own loss)",
                                         "test loss (own loss)"),
               "Test loss after every epoch, log scale; each run is measured in its own loss, so only the shapes "
               "compare across losses.")
    paragraphs = findings(results)
    if paragraphs:
        rep.heading("MSE and KL against cross-entropy").text("\n\n".join(paragraphs))
    class_names = [str(c) for c in range(len(runs[0]["confusion"]))]
    tutorial.per_class_section(rep, out, runs, class_names)
    rep.reported_vs_reproduced(reported_rows(results), source=tutorial.SOURCE)
    return rep.text(closest_text(results) + tutorial.timing_note(runs, shared=True))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__, datasets=("mnist",))


if __name__ == "__main__":
    main()
