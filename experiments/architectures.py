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
from experiments.lib.claims import Claim
from jaxnet import engine, losses, mlp

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
    loss = losses.get(config.loss)
    runs: list[dict[str, Any]] = []
    for hidden in map(parse_hidden, config.architectures):
        name = run_name(hidden)
        model = tutorial.model(hidden, config.init)
        params = model.init(jax.random.PRNGKey(config.seed))
        run_config = {"hidden": list(hidden), "layer_sizes": tutorial.layer_sizes(hidden),
                      "num_params": mlp.num_params(params), "loss": config.loss,
                      "learning_rate": config.learning_rate, "batch_size": config.batch_size,
                      "momentum": config.momentum, "epochs": config.epochs, "init": config.init, "seed": config.seed}

        def train_one(model=model, params=params, run_config=run_config, name=name,
                      **options: Any) -> list[dict[str, Any]]:
            study.log(f"hidden {name}: {run_config['num_params']:,} parameters")
            result = engine.fit(model, params,
                                tutorial.optimizer(run_config["learning_rate"], run_config["momentum"]),
                                (d.x_train, d.y_train), epochs=run_config["epochs"],
                                batch_size=run_config["batch_size"], loss=loss,
                                test=(d.x_test, d.y_test), seed=run_config["seed"], eval_train=False, **options)
            h = result.history
            return [tutorial.record(name, run_config, h, result.params, d, loss=loss,
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


# ---------------------------------------------------------------- the claims, from the numbers
def late_band(run: Mapping[str, Any], epochs: int = LATE_EPOCHS) -> tuple[float, float] | None:
    """(min, max) of the test accuracy over the run's last ``epochs`` checks (None without two)."""
    late = [a for a in run["history"]["test_accuracy"][-epochs:] if a is not None]
    return (min(late), max(late)) if len(late) >= 2 else None


def noise(runs: Sequence[Mapping[str, Any]]) -> float | None:
    """The median over runs of their late test-accuracy band width: differences below it are noise."""
    widths = [b[1] - b[0] for b in map(late_band, runs) if b is not None]
    return float(np.median(widths)) if widths else None


def claims(results: Mapping[str, Any]) -> list[Claim]:
    """The report's comparisons of test accuracy, each with the epoch-to-epoch band as its margin."""
    ok = [r for r in results["runs"] if not r["diverged"]]
    acc = {r["name"]: r["final"]["test_accuracy"] for r in ok}
    params = {r["name"]: r["config"]["num_params"] for r in ok}
    band = noise(ok)
    beyond = "" if band is None else " by more than the noise"

    def higher(subject: str, a: str, b: str, what: str) -> Claim:
        return Claim(subject, f"{a} ({params[a]:,} parameters)", acc[a], f"{b} ({params[b]:,})", acc[b],
                     margin=band or 0.0, more=f"{what} is higher{beyond}", less=f"{what} is not higher{beyond}")

    out = []
    single = sorted((r for r in ok if len(r["config"]["hidden"]) == 1), key=lambda r: r["config"]["hidden"][0])
    if len(single) >= 2:
        out.append(higher("width, one hidden layer", single[-1]["name"], single[0]["name"], "the wider layer"))
    big = [r["name"] for r in ok if params[r["name"]] > BIG]
    if len(big) >= 2:
        top, bottom = max(acc[n] for n in big), min(acc[n] for n in big)
        out.append(Claim(f"the spread of test accuracy over the {len(big)} networks with more than {BIG:,} parameters "
                         f"({', '.join(big)})", f"the spread ({bottom:.3f} to {top:.3f})", top - bottom,
                         "twice the epoch-to-epoch band", None if band is None else 2 * band,
                         more="the curve is not flat there", less=f"past {BIG:,} parameters the curve is flat"))
    for r in ok:  # depth at equal leading width: a network and a deeper one that starts with the same layers
        for s in ok:
            h, g = r["config"]["hidden"], s["config"]["hidden"]
            if len(g) > len(h) and g[:len(h)] == h:
                out.append(higher(f"depth at equal leading width: {s['name']} against {r['name']}", s["name"],
                                  r["name"], "the deeper"))
    deep = max(ok, key=lambda r: (len(r["config"]["hidden"]), -min(r["config"]["hidden"])), default=None)
    others = [n for n in big if deep and n != deep["name"]]
    if deep and len(deep["config"]["hidden"]) >= 3 and others:
        d, narrow = deep["name"], min(deep["config"]["hidden"])
        out.append(Claim(f"the deep, narrow {d} ({params[d]:,} parameters) against the networks of more than "
                         f"{BIG:,} parameters", "the lowest of them", min(acc[n] for n in others), d, acc[d],
                         margin=band or 0.0, more=f"it is below every one of them{beyond}: consistent with its "
                                                  f"{narrow}-unit layers being a bottleneck",
                         less=f"it is not below every one of them{beyond}: its {narrow}-unit layers are no clear "
                              "bottleneck here"))
    return out


def noise_text(results: Mapping[str, Any]) -> str:
    """What the epoch-to-epoch band is, or that one epoch cannot measure it; and which runs diverged."""
    ok = [r for r in results["runs"] if not r["diverged"]]
    bad = [r["name"] for r in results["runs"] if r["diverged"]]
    widths = [b[1] - b[0] for b in map(late_band, ok) if b is not None]
    text = (f"Diverged (the loss became NaN/inf): {', '.join(bad)}; left out of the comparisons below. Lower "
            "--learning-rate. " if bad else "")
    if not widths:
        return text + ("With one epoch per run the epoch-to-epoch spread of the test accuracy cannot be measured, so "
                       "no difference below can be called noise or signal.")
    return text + (f"One run's test accuracy moves by {min(widths):.3f}–{max(widths):.3f} (median "
                   f"{float(np.median(widths)):.3f}, the noise below) over its last "
                   f"{min(LATE_EPOCHS, len(ok[0]['history']['test_accuracy']))} epochs (see the curves).")


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
            note = (f"Over its last {LATE_EPOCHS} epochs this run's test accuracy moved between {band[0]:.3f} and "
                    f"{band[1]:.3f}" + (f" (and {epochs} epochs instead of {tutorial.TUTORIAL_EPOCHS})."
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
        return plots.save_figure(fig, path)


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
    rep.heading("What it shows").text(noise_text(results)).claims(claims(results), heading=None)
    tutorial.per_class_section(rep, out, runs, results["class_names"])
    rows = reported_rows(results)
    if rows:
        rep.reported_vs_reproduced(rows, source=tutorial.SOURCE)
    return rep.text(tutorial.timing_note(runs, shared=False))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__, datasets=("mnist",))


if __name__ == "__main__":
    main()
