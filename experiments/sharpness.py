"""Sharpness: why large learning rates kill the network. The PyTorch-tutorial 784-128-64-10
ReLU network (MNIST in [−1, 1], NLL on log-softmax, SGD with momentum 0.9, batch 64) trained
at learning rates 0.5 … 0.003 as ONE vmapped sweep, with the top Hessian eigenvalue λ_max
(Lanczos on Hessian-vector products, on a fixed batch), the gradient noise scale and the
fraction of dead ReLUs per layer measured while it trains (``engine.sweep(probe=…)``).

Gradient descent on a quadratic is stable only while λ_max < 2/η; with heavy-ball momentum β
the bound is (2 + 2β)/η (Cohen et al. 2021, "edge of stability"). The report says, from the
numbers, whether each rate's collapse coincides with λ_max crossing its bound, when it
crosses, and which rates never do. The first steps decide it, so they are resolved by
replaying prefixes of the sweep's first-epoch data order (each prefix one sweep). A
full-batch gradient-descent variant on 2,000 images shows the cleanest form of the theory:
progressive sharpening of λ_max up to 2/η, where it stays.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jax
import matplotlib.pyplot as plt
import numpy as np

from experiments import lib
from experiments.lib import plots, tutorial
from experiments.lib.claims import Claim
from jaxnet import diagnostics, engine, losses, train

NAME = "sharpness"
FLAT = 1e-9  # a dead fraction within this of 1 is "every unit dead"


@dataclasses.dataclass(frozen=True)
class Config(tutorial.TutorialConfig):
    learning_rates: tuple[float, ...] = (0.5, 0.2, 0.1, 0.03, 0.01, 0.003)
    """SGD learning rates of the sweep (one vmapped program, one member per rate)"""
    loss: str = "nll"
    """training loss (a jaxnet loss name; "nll" applies log-softmax to the logits)"""
    epochs: int = 5
    """epochs of the SGD sweep over the training set (λ_max measured after each)"""
    early_steps: tuple[int, ...] = (5, 10, 20, 40, 80, 160)
    """SGD steps at which λ_max is measured in the first epoch (each a replayed prefix)"""
    probe_images: int = 512
    """the fixed batch on which λ_max, the noise scale and dead units are measured (SGD)"""
    lanczos_iterations: int = 20
    """Lanczos steps (Hessian-vector products) per λ_max estimate"""
    gd_images: int = 2000
    """training images of the full-batch gradient-descent variant (0: skip it)"""
    gd_learning_rates: tuple[float, ...] = (0.2, 0.1, 0.05)
    """learning rates of the full-batch gradient-descent variant (no momentum)"""
    gd_steps: int = 200
    """full-batch gradient-descent steps"""
    gd_probe_every: int = 25
    """full-batch steps between λ_max measurements"""

    def quick_variant(self) -> Config:
        # 3,000 images = 46 steps an epoch: the replay of 46 steps must equal the sweep after epoch 1
        return dataclasses.replace(self, train_images=3000, test_images=1000, epochs=2, early_steps=(5, 46),
                                   probe_images=128, lanczos_iterations=8, gd_images=500, gd_steps=20,
                                   gd_probe_every=10)

    def problems(self) -> list[tuple[str, str, str]]:
        # after the shared checks (config.RANGES, distinct grids): rates > 0 and distinct, Lanczos steps ≥ 1 hold
        problems = tutorial.config_problems(self)
        n_train = self.train_images or 60_000
        steps = n_train // self.batch_size
        if any(not 1 <= s <= steps for s in self.early_steps) or list(self.early_steps) != sorted(set(self.early_steps)):
            problems.append(("--early-steps", f"{list(self.early_steps)}", f"give increasing steps in [1, {steps}] "
                             "(one epoch)"))
        if not 2 <= self.probe_images <= n_train:
            problems.append(("--probe-images", f"{self.probe_images}", f"give 2 … {n_train}"))
        if self.gd_images and not 2 <= self.gd_images <= 60_000:
            problems.append(("--gd-images", f"{self.gd_images}", "give 0 (skip) or 2 … 60,000"))
        if self.gd_images and not 1 <= self.gd_probe_every <= self.gd_steps:
            problems.append(("--gd-probe-every", f"{self.gd_probe_every}", f"give 1 … {self.gd_steps} (--gd-steps)"))
        return problems


def run_name(lr: float) -> str:
    return f"lr={lr:g}"


def sgd_bound(lr: float, momentum: float) -> float:
    """(2 + 2β)/η: the largest λ_max heavy-ball momentum β at step η is stable on (2/η for β = 0)."""
    return (2.0 + 2.0 * momentum) / lr


# ------------------------------------------------------------------------------- training
def _point(step: int, probes: Mapping[str, float], test_accuracy: float | None = None) -> dict[str, Any]:
    dead = [probes[k] for k in sorted((k for k in probes if k.startswith("dead_")), key=lambda k: int(k[5:]))]
    return {"step": int(step), "lambda_max": probes["lambda_max"], "noise_scale": probes["noise_scale"],
            "dead": dead, "test_accuracy": test_accuracy}


def _probe(config: Config, network: Any, x: np.ndarray, y: np.ndarray) -> tuple[Any, dict[str, float]]:
    """The curvature probe on (x, y) (λ_max, noise scale, dead units), and its values at the initialisation every
    member shares (PRNGKey(seed))."""
    key = jax.random.PRNGKey(config.seed)
    probe = diagnostics.curvature_probe(x, y, activation=network.activation, loss=losses.get(config.loss),
                                        iterations=config.lanczos_iterations, key=key)
    return probe, {name: float(v) for name, v in jax.jit(probe)(network.init(key)).items()}


def run(config: Config, study: lib.Study) -> dict[str, Any]:
    """The SGD sweep (prefix replays, then epochs), each measured by one curvature probe, and
    the full-batch gradient-descent variant."""
    d = tutorial.load_data(config, study)
    rates, k, n, seed = list(config.learning_rates), len(config.learning_rates), len(d.x_train), config.seed
    probe_rows = np.sort(np.random.default_rng(seed).choice(n, config.probe_images, replace=False))
    network, loss = tutorial.model(config.hidden, config.init), losses.get(config.loss)
    probe, at_init = _probe(config, network, d.x_train[probe_rows], d.y_train[probe_rows])
    common = dict(batch_size=config.batch_size, learning_rate=rates, init_seed=[seed] * k, data_seed=[seed] * k,
                  loss=loss, eval_train=False, probe=probe)
    optimizer = tutorial.optimizer(rates[0], config.momentum)
    trajectories = {run_name(lr): [_point(0, at_init)] for lr in rates}

    # The first epoch's order is the engine's documented permutation fold_in(PRNGKey(seed), 0);
    # a sweep over its first S batches in stored order replays the sweep's first S steps.
    order = np.asarray(jax.random.permutation(jax.random.fold_in(jax.random.PRNGKey(seed), 0), n))
    for steps in config.early_steps:
        rows = order[: steps * config.batch_size]
        study.log(f"first {steps} steps")
        result = engine.sweep(network, optimizer, (d.x_train[rows], d.y_train[rows]), epochs=1, shuffle=False,
                              test=(d.x_test, d.y_test), log=None, **common)
        for lr, h in zip(rates, result.histories):
            if h.probe_epoch:
                trajectories[run_name(lr)].append(_point(steps, {name: column[-1] for name, column in h.probes.items()},
                                                         h.test_accuracy[-1] if h.test_accuracy else None))

    def train_sweep(**options: Any) -> list[dict[str, Any]]:
        result = engine.sweep(network, optimizer, (d.x_train, d.y_train), epochs=config.epochs,
                              test=(d.x_test, d.y_test), **common, **options)
        records = []
        for i, (lr, h) in enumerate(zip(rates, result.histories)):
            run_config = {"loss": config.loss, "learning_rate": lr, "hidden": list(config.hidden),
                          "batch_size": config.batch_size, "momentum": config.momentum, "epochs": config.epochs,
                          "init": config.init, "seed": seed, "sweep_members": k,
                          "bound": sgd_bound(lr, config.momentum)}
            records.append(tutorial.record(run_name(lr), run_config, h, result.member(i), d, loss=loss,
                                           seconds=h.seconds[-1] if h.seconds else 0.0))
        return records

    runs = study.train("sweep", [run_name(lr) for lr in rates], train_sweep, label=f"{k} learning rates",
                       epochs=config.epochs)
    steps_per_epoch = n // config.batch_size
    for record in runs:
        h = record["history"]
        accuracy = dict(zip(h["epoch"], h["test_accuracy"]))
        for i, epoch in enumerate(h.get("probe_epoch") or []):
            values = {name: column[i] for name, column in h["probes"].items()}
            if values.get("lambda_max") is not None:
                trajectories[record["name"]].append(_point(round(epoch * steps_per_epoch), values, accuracy.get(epoch)))
    study.save_progress(runs)

    gd = run_gd(config, study) if config.gd_images else None
    summary = summaries({"runs": runs, "trajectories": trajectories})
    return {"runs": runs, "headline": ("runs whose collapse follows a crossing of (2+2β)/η",
                                       sum(s["collapsed"] and s["crossed_step"] is not None for s in summary.values())),
            "steps_per_epoch": steps_per_epoch, "probe_rows": probe_rows.tolist(), "trajectories": trajectories,
            "summary": summary, "gd": gd}


def run_gd(config: Config, study: lib.Study) -> dict[str, Any]:
    """Full-batch gradient descent (no momentum) on a stratified subset: one step per epoch,
    λ_max of the whole training loss every ``gd_probe_every`` steps."""
    d = tutorial.load_data(dataclasses.replace(config, train_images=config.gd_images), study)  # its test set unused
    x, y = d.x_train, d.y_train
    rates, k = list(config.gd_learning_rates), len(config.gd_learning_rates)
    network = tutorial.model(config.hidden, config.init)
    probe, at_init = _probe(config, network, x, y)
    study.log(f"full-batch gradient descent, {k} rates × {config.gd_steps} steps")
    result = engine.sweep(network, train.make_optimizer("sgd", learning_rate=rates[0]), (x, y),
                          epochs=config.gd_steps, batch_size=len(x), shuffle=False, learning_rate=rates,
                          init_seed=[config.seed] * k, data_seed=[config.seed] * k, loss=losses.get(config.loss),
                          probe=probe, probe_every=config.gd_probe_every, log=None)
    return {"images": len(x), "steps": config.gd_steps, "runs": [
        {"name": run_name(lr), "learning_rate": lr, "bound": 2.0 / lr, "step": [0] + [round(e) for e in h.probe_epoch],
         "lambda_max": [at_init["lambda_max"]] + list(h.probes.get("lambda_max", [])),
         "loss_step": [round(e) for e in h.epoch], "train_loss": list(h.train_loss),
         "train_accuracy": list(h.train_accuracy), "diverged": h.diverged} for lr, h in zip(rates, result.histories)]}


# ------------------------------------------------------------------- outcomes, from the numbers
def is_flat(dead: Sequence[float | None]) -> bool:
    """Some hidden layer has every unit dead on the probe batch: the output no longer depends on the input."""
    return any(f is not None and f >= 1.0 - FLAT for f in dead)


def summarize(points: Sequence[Mapping[str, Any]], run: Mapping[str, Any]) -> dict[str, Any]:
    """When λ_max first exceeds the run's bound, when a hidden layer first dies entirely, the
    peak and final λ_max, and whether the run collapsed: it diverged, predicts one class for
    every test image, or ends with a hidden layer dead on every training image."""
    bound, final = run["config"]["bound"], run["final"]
    measured = [p for p in points if p["lambda_max"] is not None]
    crossed = next((p for p in measured if p["lambda_max"] > bound), None)
    flat = next((p for p in points if is_flat(p["dead"])), None)
    peak = max(measured, key=lambda p: p["lambda_max"]) if measured else None

    def at(point: Mapping[str, Any] | None, key: str) -> Any:
        return None if point is None else point[key]

    return {"bound": bound, "crossed_step": at(crossed, "step"), "crossed_value": at(crossed, "lambda_max"),
            "dead_at_crossing": at(crossed, "dead"), "flat_step": at(flat, "step"), "peak": at(peak, "lambda_max"),
            "peak_step": at(peak, "step"), "final": measured[-1]["lambda_max"] if measured else None,
            "collapsed": bool(run["diverged"] or final["classes_predicted"] == 1
                              or is_flat(final["dead_unit_fraction"])),
            "diverged": bool(run["diverged"]), "test_accuracy": final["test_accuracy"],
            "classes": final["classes_predicted"]}


def summaries(results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """:func:`summarize` of every run, from the trajectories and run records of ``results``."""
    return {r["name"]: summarize(results["trajectories"][r["name"]], r) for r in results["runs"]}


def peak_before_death(points: Sequence[Mapping[str, Any]]) -> float | None:
    """The largest λ_max measured up to the first step at which a hidden layer is entirely dead (the whole run if
    none is): a crossing the collapse cannot have caused."""
    flat = next((p["step"] for p in points if is_flat(p["dead"])), None)
    values = [p["lambda_max"] for p in points if p["lambda_max"] is not None and (flat is None or p["step"] <= flat)]
    return max(values) if values else None


def claims(results: Mapping[str, Any]) -> list[Claim]:
    """Every outcome the report states, each computed from ``results``."""
    summary, cfg, trajectories = summaries(results), results["config"], results["trajectories"]
    first = next(iter(trajectories.values()))[0]["lambda_max"]
    out = [Claim("the sharpness at initialisation against the smallest bound", "λ_max on the probe batch", first,
                 f"the smallest bound, (2 + 2·{cfg['momentum']:g})/η at η = {max(cfg['learning_rates']):g},",
                 min(s["bound"] for s in summary.values()), reference=True,
                 more="above the bound of the largest rate", less="below the bound of every rate", digits=2)]
    out += [Claim(f"at lr {name[3:]}, the sharpness against its bound (2 + 2β)/η", f"the peak λ_max (step "
                  f"{s['peak_step']})", s["peak"], "the bound", s["bound"], reference=True, more="crossed",
                  less="never crossed at a measurement", digits=1) for name, s in summary.items()]

    def per_bound(collapsed: bool, value: Callable[[str], float | None]) -> tuple[str, list[float]]:
        """The rates that did (not) collapse, "0.5, 0.2" ("none"), and value / bound for each that has a value."""
        names = [n for n, s in summary.items() if s["collapsed"] == collapsed]
        ratios = [v / summary[n]["bound"] for n in names if (v := value(n)) is not None]
        return ", ".join(n[3:] for n in names) or "none", ratios

    names, ratios = per_bound(True, lambda n: peak_before_death(trajectories[n]))
    out.append(Claim("the runs that collapsed (a hidden layer entirely dead, one class predicted, or diverged): λ_max "
                     "before any hidden layer was entirely dead, per bound", f"the lowest ratio (lr {names})",
                     min(ratios, default=None), "the bound", 1.0, reference=True,
                     more="every collapsed run crossed its bound first",
                     less="not every collapsed run crossed its bound first", digits=2))
    names, ratios = per_bound(False, lambda n: summary[n]["peak"])
    out.append(Claim("the runs that did not collapse: their peak λ_max per bound", f"the highest ratio (lr {names})",
                     max(ratios, default=None), "the bound", 1.0, reference=True, digits=2,
                     more="some run crossed its bound and survived", less="no surviving run crossed its bound"))
    for r in (results.get("gd") or {}).get("runs", []):
        lam = [v for v in r["lambda_max"] if v is not None]
        if not lam or r["diverged"]:
            continue
        train_loss = [v for v in r["train_loss"] if v is not None]
        rises = [b - a for a, b in zip(train_loss, train_loss[1:])]
        out += [Claim(f"full-batch GD at lr {r['name'][3:]}, the sharpness against its bound 2/η",
                      "the largest λ_max", max(lam), "90% of 2/η", 0.9 * r["bound"], reference=True, digits=1,
                      more="it reaches the bound (progressive sharpening)", less="it never reaches the bound"),
                Claim(f"full-batch GD at lr {r['name'][3:]}, the training loss from step to step",
                      f"its largest rise ({sum(d > 0 for d in rises)} of {len(rises)} steps rose)",
                      max(rises, default=None), "no rise", 0.0, reference=True,
                      more="non-monotone (the edge of stability)", less="monotone")]
    return out


# ------------------------------------------------------------------------------- figures
def _steps_axis(ax: Any) -> None:
    ax.set_xscale("symlog", linthresh=5)
    ax.set_xlim(left=0)


def sharpness_figure(path: Path, results: Mapping[str, Any]) -> Path:
    """λ_max against SGD step per rate, with each rate's (2 + 2β)/η as a dashed line."""
    trajectories, summary = results["trajectories"], summaries(results)
    colors = plots.palette(list(trajectories))
    with plt.rc_context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(7.2, 4.6))
        for name, points in trajectories.items():
            xs = [p["step"] for p in points if p["lambda_max"] is not None]
            ys = [max(p["lambda_max"], 1e-3) for p in points if p["lambda_max"] is not None]
            ax.plot(xs, ys, "-o", ms=3.5, color=colors[name], label=name)
            ax.axhline(summary[name]["bound"], color=colors[name], ls="--", lw=1)
        _steps_axis(ax)
        ax.set_yscale("log")
        ax.set(xlabel="SGD step (symlog)", ylabel="λ_max of the Hessian (probe batch)",
               title="Sharpness λ_max; dashed: each rate's bound (2 + 2β)/η")
        ax.legend(loc="best", ncol=2)
        return plots.save_figure(fig, path)


def dead_figure(path: Path, results: Mapping[str, Any]) -> Path:
    """Fraction of dead ReLUs per hidden layer against SGD step."""
    trajectories = results["trajectories"]
    colors = plots.palette(list(trajectories))
    layers = len(next(iter(trajectories.values()))[0]["dead"])
    with plt.rc_context(plots.STYLE):
        fig, axes = plt.subplots(1, layers, figsize=(5.2 * layers, 4.0), squeeze=False)
        for layer, ax in enumerate(axes[0]):
            for name, points in trajectories.items():
                ax.plot([p["step"] for p in points], [p["dead"][layer] for p in points], "-o", ms=3,
                        color=colors[name], label=name)
            _steps_axis(ax)
            ax.set(xlabel="SGD step (symlog)", ylabel="dead fraction", ylim=(-0.03, 1.03),
                   title=f"hidden layer {layer + 1}: units zero for every probe image")
        axes[0][0].legend(loc="best")
        return plots.save_figure(fig, path)


def gd_figure(path: Path, gd: Mapping[str, Any]) -> Path:
    """Full-batch GD: λ_max with 2/η (left), training loss (right), against step."""
    runs = {r["name"]: r for r in gd["runs"]}  # a list in results.json: its order is kept
    colors = plots.palette(list(runs))
    with plt.rc_context(plots.STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        for name, r in runs.items():
            left.plot(r["step"], r["lambda_max"], "-o", ms=3.5, color=colors[name], label=name)
            left.axhline(r["bound"], color=colors[name], ls="--", lw=1)
            right.plot(r["loss_step"], r["train_loss"], "-", color=colors[name], label=name)
        left.set(xlabel="gradient-descent step", ylabel="λ_max (all training images)",
                 title="Full-batch GD: λ_max; dashed: 2/η")
        right.set(xlabel="gradient-descent step", ylabel="training loss", title="Training loss", yscale="log")
        left.legend(loc="best")
        return plots.save_figure(fig, path)


# ------------------------------------------------------------------------------- report
def report(results: dict[str, Any], out: Path) -> lib.Report:
    """report.md and its figures, from results.json alone."""
    cfg, runs, summary = results["config"], results["runs"], summaries(results)
    n_train = cfg["train_images"] or 60_000
    rep = lib.Report("Sharpness: why large learning rates kill the network", quick=results["quick"]).what_was_run(
        tutorial.describe_setup(cfg["epochs"], results["quick"], n_train, cfg["test_images"] or 10_000)
        + f" Learning rates {', '.join(f'{lr:g}' for lr in cfg['learning_rates'])} as one vmapped sweep. λ_max, the "
        f"top eigenvalue of the Hessian of the training loss, is estimated by {cfg['lanczos_iterations']} Lanczos "
        f"steps on Hessian-vector products (forward-over-reverse autodiff, `jaxnet.diagnostics`) on a fixed batch of "
        f"{cfg['probe_images']} training images, with the gradient noise scale B_simple = tr(Σ)/‖G‖² and the "
        "fraction of hidden units that are zero for every image of that batch (dead ReLUs). It is measured at "
        f"initialisation, after each epoch (the engine's probe), and after the first "
        f"{', '.join(str(s) for s in cfg['early_steps'])} steps: those come from sweeps over the first S batches of "
        "the sweep's own first-epoch order, in that order, which replay its first S steps.")
    rep.figure(sharpness_figure(out / "sharpness.png", results),
               "λ_max on the probe batch against SGD step (symlog axis), one colour per learning rate; the dashed "
               "line of the same colour is that rate's stability bound (2 + 2β)/η with β = "
               f"{cfg['momentum']:g}.")
    rep.figure(dead_figure(out / "dead_units.png", results),
               "Fraction of ReLU units that are zero for every probe image, per hidden layer, against SGD step.")

    def never(step: int | None) -> int | str:
        return "never" if step is None else step

    rep.table(["Run", "Bound (2+2β)/η", "λ_max > bound at step", "Peak λ_max (step)", "Final λ_max",
               "Layer entirely dead at step", "Final dead fraction (train set)", "Test accuracy", "Classes predicted"],
              [[r["name"], s["bound"], never(s["crossed_step"]), f"{lib.fmt(s['peak'])} ({s['peak_step']})", s["final"],
                never(s["flat_step"]), " / ".join(f"{f:.2f}" for f in r["final"]["dead_unit_fraction"]),
                r["final"]["test_accuracy"], r["final"]["classes_predicted"]]
               for r in runs for s in [summary[r["name"]]]], digits=3)
    noise = {name: [p["noise_scale"] for p in points if p["noise_scale"] is not None]
             for name, points in results["trajectories"].items()}
    alive = [r["name"] for r in runs if not summary[r["name"]]["collapsed"] and noise[r["name"]]]
    if alive:
        rep.text("Gradient noise scale B_simple at the end (images per batch at which the gradient's noise equals "
                 "its signal): " + ", ".join(f"{n} {noise[n][-1]:.0f}" for n in alive)
                 + f"; the batch is {cfg['batch_size']}.")
    collapsed = [r for r in runs if summary[r["name"]]["collapsed"] and not r["diverged"]]
    if collapsed:
        rep.heading("The collapsed runs")
    for r in collapsed:
        slug = "".join(ch if ch.isalnum() else "_" for ch in r["name"]).strip("_")
        rep.figure(plots.confusion_matrix(out / f"confusion_{slug}.png", r["confusion"],
                                          title=f"{r['name']}: test accuracy {r['final']['test_accuracy']:.3f}"),
                   f"Confusion matrix on the test set, {r['name']} (rows: true class, columns: predicted).")
    if gd := results.get("gd"):
        rep.heading("Full-batch gradient descent: progressive sharpening to 2/η")
        rep.text(f"The same network and initialisation trained by plain gradient descent (no momentum, so the bound "
                 f"is 2/η) on {gd['images']:,} training images (a stratified subset), every step on all of them, for "
                 f"{gd['steps']} steps; λ_max is that of the full training loss.")
        rep.figure(gd_figure(out / "sharpness_gd.png", gd),
                   "Left: λ_max of the training loss against step, dashed: 2/η in the same colour. Right: the "
                   "training loss.")
        for r in gd["runs"]:
            if r["diverged"] or not [v for v in r["lambda_max"] if v is not None]:
                rep.text(f"lr {r['name'][3:]}: the run diverged (loss NaN/inf); no λ_max trajectory to compare.")
    return rep.claims(claims(results))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__)


if __name__ == "__main__":
    main()
