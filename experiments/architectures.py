"""Architectures: depth and width of the PyTorch-tutorial ReLU MLP on MNIST (inputs in [−1, 1],
batch 64, SGD with momentum 0.9, learning rate 0.01, NLL on log-softmax). Hidden layers [16],
[128], [128, 64] (the tutorial's reference), [256, 128], [64, 16, 16, 16] and [256, 128, 64, 32],
each from PyTorch's ``nn.Linear`` initialisation; different shapes are different programs, so
each is its own ``engine.fit``. The report sets test accuracy against the parameter count.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from experiments import lib
from experiments.lib import plots, tutorial
from jaxnet import engine, mlp

NAME = "architectures"
# hidden layers → the tutorial's reported test accuracy ([128, 64]'s 0.979 is from its learning-rate study)
REPORTED: dict[tuple[int, ...], float] = {
    (16,): 0.932, (128,): 0.974, (128, 64): 0.979, (256, 128): 0.981, (64, 16, 16, 16): 0.971,
    (256, 128, 64, 32): 0.980,
}
LOSSES = ("nll", "softmax_cross_entropy", "mse", "kl_divergence")
BIG = 100_000  # parameters: where the report looks for a plateau
LATE_EPOCHS = 5  # the last epochs whose test-accuracy band measures one run's epoch-to-epoch noise


def spell(hidden: Sequence[int]) -> str:
    """(128, 64) → "128-64": the command-line spelling of one architecture."""
    return "-".join(str(h) for h in hidden)


def parse_hidden(text: str) -> tuple[int, ...]:
    """"128-64" → (128, 64); ValueError for anything but positive widths joined by "-"."""
    parts = text.replace(",", "-").replace("x", "-").split("-")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"{text!r} is not a list of positive widths like 128-64")
    return tuple(int(p) for p in parts)


@dataclasses.dataclass(frozen=True)
class Config(tutorial.TutorialConfig):
    architectures: tuple[str, ...] = tuple(spell(h) for h in REPORTED)
    """hidden layers of each network, widths joined by "-" (e.g. 16 128-64 256-128-64-32)"""
    learning_rate: float = 0.01
    """SGD learning rate"""
    loss: str = "nll"
    """loss on the logits (nll applies log-softmax first)"""

    def quick_variant(self) -> Config:
        # one narrow, the reference, one deep: half the compiles
        return dataclasses.replace(super().quick_variant(), architectures=("16", "128-64", "64-16-16-16"))

    def problems(self) -> list[tuple[str, str, str]]:
        found = []
        for text in self.architectures:
            try:
                parse_hidden(text)
            except ValueError as error:
                found.append(("--architectures", str(error), "give hidden widths joined by '-', e.g. 128-64"))
        if not found and len(set(map(parse_hidden, self.architectures))) != len(self.architectures):
            found.append(("--architectures", "lists a network twice", "give each architecture once"))
        if self.loss not in LOSSES:
            found.append(("--loss", f"unknown loss {self.loss!r}", f"use one of {', '.join(LOSSES)}"))
        if self.learning_rate <= 0:
            found.append(("--learning-rate", f"{self.learning_rate} is not positive", "give a rate > 0"))
        return tutorial.config_problems(self) + found


def run_name(hidden: Sequence[int]) -> str:
    return "[" + ", ".join(str(h) for h in hidden) + "]"


def run(config: Config, study: lib.Study) -> dict[str, Any]:
    """One engine fit per architecture, each with the same seed for initialisation and data order."""
    d = tutorial.load_data(config, study)
    runs: list[dict[str, Any]] = []
    for hidden in map(parse_hidden, config.architectures):
        name = run_name(hidden)
        params = tutorial.init_fn(hidden, config.init)(jax.random.PRNGKey(config.seed))
        run_config = {"hidden": list(hidden), "layer_sizes": tutorial.layer_sizes(hidden),
                      "num_params": mlp.num_params(params), "loss": config.loss,
                      "learning_rate": config.learning_rate, "batch_size": config.batch_size,
                      "momentum": config.momentum, "epochs": config.epochs, "init": config.init, "seed": config.seed}

        def train_one(params=params, run_config=run_config, name=name, **options: Any) -> list[dict[str, Any]]:
            study.log(f"hidden {name}: {run_config['num_params']:,} parameters")
            result = engine.fit(params, tutorial.optimizer(run_config["learning_rate"], run_config["momentum"]),
                                (d.x_train, d.y_train), epochs=run_config["epochs"],
                                batch_size=run_config["batch_size"], loss=run_config["loss"],
                                test=(d.x_test, d.y_test), seed=run_config["seed"], eval_train=False, **options)
            h = result.history
            return [tutorial.record(name, run_config, h, result.params, d, loss=run_config["loss"],
                                    seconds=h.seconds[-1] if h.seconds else 0.0)]

        # ~10 s per fit: --resume reuses finished fits; per-epoch checkpoints would cost more than they save
        runs += study.train(f"hidden_{spell(hidden)}", [name], train_one, label=name, epochs=config.epochs,
                            checkpoints=False)
        study.save_progress(runs)
    finite = [r for r in runs if not r["diverged"]] or runs
    best = max(finite, key=lambda r: r["final"]["test_accuracy"])
    return {"runs": runs, "headline": (f"best test accuracy ({best['name']})", best["final"]["test_accuracy"]),
            "class_names": d.class_names, "n_train": len(d.x_train), "n_test": len(d.x_test),
            "reported": {run_name(h): v for h, v in REPORTED.items()}}


# ---------------------------------------------------------------- the findings, from the numbers
def late_band(run: Mapping[str, Any], epochs: int = LATE_EPOCHS) -> tuple[float, float] | None:
    """(min, max) of the test accuracy over the run's last ``epochs`` checks (None without two)."""
    late = [a for a in run["history"]["test_accuracy"][-epochs:] if a is not None]
    return (min(late), max(late)) if len(late) >= 2 else None


def noise(runs: Sequence[Mapping[str, Any]]) -> float | None:
    """The median over runs of their late test-accuracy band width: differences below it are noise."""
    widths = [b[1] - b[0] for b in map(late_band, runs) if b is not None]
    return float(np.median(widths)) if widths else None


def findings(results: Mapping[str, Any]) -> list[str]:
    """The "What it shows" sentences, each worded from the numbers it states."""
    runs = results["runs"]
    bad = [r["name"] for r in runs if r["diverged"]]
    ok = [r for r in runs if not r["diverged"]]
    acc = {r["name"]: r["final"]["test_accuracy"] for r in ok}
    params = {r["name"]: r["config"]["num_params"] for r in ok}
    band = noise(ok)
    out = []
    if bad:
        out.append(f"Diverged (the loss became NaN/inf): {', '.join(bad)}; left out of the comparisons below. "
                   "Lower --learning-rate.")
    if not ok:
        return out
    tol = band if band is not None else 0.0
    noise_words = ("" if band is None else f" (more than the {band:.3f} that one run's test accuracy moves between "
                                           f"its last epochs, the median band below)")

    def compare(a: str, b: str) -> str:
        diff = acc[b] - acc[a]
        if band is not None and abs(diff) <= band:
            return f"within the noise ({diff:+.3f})"
        return f"{'higher' if diff > 0 else 'lower'} by {abs(diff):.3f}"

    single = sorted((r for r in ok if len(r["config"]["hidden"]) == 1), key=lambda r: r["config"]["hidden"][0])
    if len(single) >= 2:
        lo, hi = single[0]["name"], single[-1]["name"]
        out.append(f"Width, one hidden layer: {lo} ({params[lo]:,} parameters) reaches {acc[lo]:.3f}, {hi} "
                   f"({params[hi]:,}) {acc[hi]:.3f}: the wider layer is {compare(lo, hi)}.")
    big = [r["name"] for r in ok if params[r["name"]] > BIG]
    if len(big) >= 2:
        spread = max(acc[n] for n in big) - min(acc[n] for n in big)
        flat = band is not None and spread <= 2 * band
        out.append(f"The {len(big)} networks with more than {BIG:,} parameters ({', '.join(big)}) land between "
                   f"{min(acc[n] for n in big):.3f} and {max(acc[n] for n in big):.3f}, a spread of {spread:.3f}"
                   + (f": within twice the epoch-to-epoch band ({band:.3f}), so past {BIG:,} parameters the curve "
                      "is **flat**." if flat else
                      f": more than twice the epoch-to-epoch band ({band:.3f}), so the curve is **not flat** there."
                      if band is not None else ": with one epoch there is no band to judge flatness by."))
    # depth at equal leading width: a network and a deeper one that starts with the same layers
    for r in ok:
        for s in ok:
            h, g = r["config"]["hidden"], s["config"]["hidden"]
            if len(g) > len(h) and g[:len(h)] == h:
                out.append(f"Depth at equal leading width: {s['name']} against {r['name']} is "
                           f"{compare(r['name'], s['name'])}.")
    deep = max(ok, key=lambda r: (len(r["config"]["hidden"]), -min(r["config"]["hidden"])))
    if len(deep["config"]["hidden"]) >= 3 and big:
        d, narrow = deep["name"], min(deep["config"]["hidden"])
        below = [n for n in big if acc[n] - acc[d] > tol]
        if len(below) == len(big):
            verdict = (f"below every network of more than {BIG:,} parameters{noise_words}: consistent with its "
                       f"{narrow}-unit layers being a bottleneck")
        else:
            verdict = (f"not below every network of more than {BIG:,} parameters (it trails {len(below)} of "
                       f"{len(big)} by more than the noise): its {narrow}-unit layers are no clear bottleneck here")
        out.append(f"The deep, narrow {d} ({params[d]:,} parameters) reaches {acc[d]:.3f}, {verdict}.")
    if band is None:
        out.append("With one epoch per run the epoch-to-epoch spread of the test accuracy cannot be measured, so "
                   "no difference above can be called noise or signal.")
    else:
        widths = [b[1] - b[0] for b in map(late_band, ok) if b is not None]
        out.append(f"One run's test accuracy moves by {min(widths):.3f}–{max(widths):.3f} (median {band:.3f}) over "
                   f"its last {min(LATE_EPOCHS, len(ok[0]['history']['test_accuracy']))} epochs (see the curves): "
                   "differences smaller than that are noise.")
    return out


def reported_rows(results: Mapping[str, Any]) -> list[list[Any]]:
    """(quantity, reported, reproduced, note) for each run the tutorial reported a number for."""
    epochs = results["config"]["epochs"]
    rows = []
    for r in results["runs"]:
        hidden = tuple(r["config"]["hidden"])
        if hidden not in REPORTED:
            continue
        reported, got = REPORTED[hidden], r["final"]["test_accuracy"]
        band = late_band(r)
        note = ""
        if r["diverged"]:
            note = f"Diverged at epoch {r['diverged_epoch']}: the number is the last finite model's."
        elif abs(got - reported) > 0.005 and band is not None:
            inside = band[0] - 0.0005 <= reported <= band[1] + 0.0005
            note = (f"Over its last {LATE_EPOCHS} epochs this run's test accuracy moved between {band[0]:.3f} and "
                    f"{band[1]:.3f}; the reported value is {'inside' if inside else 'outside'} that band"
                    + (f" (and {epochs} epochs instead of {tutorial.TUTORIAL_EPOCHS})."
                       if epochs < tutorial.TUTORIAL_EPOCHS else "."))
        source = " (learning-rate study)" if hidden == (128, 64) else ""
        rows.append([f"test accuracy, hidden {r['name']}{source}", reported, got, note])
    return rows


def accuracy_vs_params(path: Path, runs: Sequence[Mapping[str, Any]], epochs: int) -> Path:
    """Test accuracy against parameter count (log x), reproduced and reported, each point labelled."""
    import matplotlib.pyplot as plt

    counts = [r["config"]["num_params"] for r in runs]
    with plt.rc_context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.plot(counts, [r["final"]["test_accuracy"] for r in runs], "o", ms=8, color="tab:blue", label="reproduced")
        reported = [(n, REPORTED[tuple(r["config"]["hidden"])]) for n, r in zip(counts, runs)
                    if tuple(r["config"]["hidden"]) in REPORTED]
        if reported:
            ax.plot(*zip(*reported), "D", ms=7, mfc="none", mew=1.5, color="black", label="reported (PyTorch tutorial)")
        for i, (n, r) in enumerate(sorted(zip(counts, runs), key=lambda t: t[0])):
            below = i % 2 == 1  # alternate labels above and below, so neighbours do not collide
            ax.annotate(r["name"], (n, r["final"]["test_accuracy"]), textcoords="offset points",
                        xytext=(0, -16 if below else 9), ha="center", fontsize=8)
        ax.set_xscale("log")
        ax.set(xlabel="number of parameters (log scale)", ylabel="test accuracy",
               title=f"Test accuracy against parameter count ({epochs} epochs)")
        ax.margins(x=0.12, y=0.15)
        ax.legend(loc="lower right")
        return plots._save(fig, path)  # noqa: SLF001  the shared saver (dpi, tight box, close)


def report(results: dict[str, Any], out: Path) -> lib.Report:
    """report.md and its figures, from results.json alone."""
    cfg, runs = results["config"], results["runs"]
    rep = lib.Report("Architectures: depth, width and parameter count", quick=results["quick"])
    rep.what_was_run(
        tutorial.describe_setup(cfg["epochs"], results["quick"], results["n_train"], results["n_test"]) +
        f"\n\nLearning rate {cfg['learning_rate']:g}, loss {cfg['loss']} on the logits. Hidden layers "
        f"{', '.join(r['name'] for r in runs)}; [128, 64] is the tutorial's reference network. "
        "Each shape is its own compiled program (`engine.fit`), with the same seed for initialisation and data "
        f"order. Initialisation `mlp.init(scheme=\"{cfg['init']}\")`"
        + (" (PyTorch's `nn.Linear` default: weights U(±1/√fan_in) = kaiming_uniform(a=√5), biases U(±1/√fan_in))."
           if cfg["init"] == "uniform" else "."))
    rep.heading("Results").table(
        ["Hidden layers", "Parameters", *tutorial.SUMMARY_HEADERS[1:]],
        [[row[0], r["config"]["num_params"], *row[1:]] for r, row in zip(runs, tutorial.summary_rows(runs))])
    rep.figure(accuracy_vs_params(out / "accuracy_vs_params.png", runs, cfg["epochs"]),
               "Test accuracy against the number of parameters (log scale), each point labelled with its hidden "
               "layers; reproduced (this run) and reported (the tutorial).")
    rep.figure(tutorial.test_accuracy_figure(out, runs, "test_accuracy_curves.png", "Test accuracy during training"),
               "Test accuracy after every epoch.")
    rep.figure(tutorial.test_loss_figure(out, runs, "test_loss_curves.png", f"Test loss ({cfg['loss']}) during training"),
               f"Test loss ({cfg['loss']}) after every epoch (log scale).")
    rep.heading("What it shows").text(" ".join(findings(results)))
    tutorial.per_class_section(rep, out, runs, results["class_names"])
    rows = reported_rows(results)
    if rows:
        rep.reported_vs_reproduced(rows, source=tutorial.SOURCE)
    return rep.text(tutorial.timing_note(runs, shared=False))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__, datasets=("mnist",))


if __name__ == "__main__":
    main()
