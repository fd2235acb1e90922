"""L2 regularisation as one sweep program: softmax regression (784 → 10) on the first 20,000
MNIST training images, validated on the test set, plain SGD (learning rate 0.01, batch 128,
50 epochs) with the penalty λ Σ‖W‖² on the weights (not the biases) for λ ∈ {0, 0.001, 0.01,
0.1, 1}, all five trained as one vmapped program. It shows the validation accuracy per λ over
training, the ten class-weight vectors for the smallest and the largest λ (with a measure of
how smooth and how digit-like they are), and ‖W‖² against λ; then the same kind of sweep for a
784-128-64-10 ReLU MLP on a small training set, to see whether a well-chosen λ helps there.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from experiments import lib
from experiments.lib import mnist, plots
from experiments.lib.claims import Claim
from jaxnet import data, engine, mlp, train

NAME = "regularization"
REPORTED = {"train_accuracy": 0.9225, "val_accuracy": 0.9157, "train_loss": 0.280, "val_loss": 0.299}
"""The original write-up's softmax-regression numbers at λ = 0."""
REPORTED_LOOK = "noisier, less digit-like"
"""The original write-up's description of the λ = 1 weights against λ = 0."""
PIXELS = {"pm1": "[−1, 1]", "unit": "[0, 1]"}
N_TEST_IMAGES = 10_000


@dataclasses.dataclass(frozen=True)
class Config(lib.StudyConfig):
    lambdas: tuple[float, ...] = (0.0, 0.001, 0.01, 0.1, 1.0)
    """softmax regression's λ grid (penalty λ Σ‖W‖², weights only), increasing; one vmapped program"""
    train_images: int = 20_000
    """softmax regression: the first N MNIST training images"""
    learning_rate: float = 0.01
    """softmax regression: SGD learning rate"""
    batch_size: int = 128
    """softmax regression: minibatch size"""
    epochs: int = 50
    """softmax regression: training epochs"""
    pixels: Literal["pm1", "unit"] = "pm1"
    """pixel scaling: pm1 = [−1, 1] (PyTorch's Normalize(0.5, 0.5)), unit = [0, 1]"""
    val_images: int = 0
    """validation images: the first N MNIST test images (0: all 10,000)"""
    init: str = "uniform"
    """weight initialisation of both models (a jaxnet.mlp.init scheme; "uniform" is PyTorch's nn.Linear)"""
    mlp_hidden: tuple[int, ...] = (128, 64)
    """MLP: hidden-layer widths (ReLU)"""
    mlp_lambdas: tuple[float, ...] = (0.0, 0.0003, 0.001, 0.003, 0.01)
    """MLP: λ grid, increasing; a second vmapped program"""
    mlp_train_images: int = 2_000
    """MLP: the first N MNIST training images (few, so that it overfits)"""
    mlp_learning_rate: float = 0.1
    """MLP: SGD learning rate"""
    mlp_batch_size: int = 128
    """MLP: minibatch size"""
    mlp_epochs: int = 80
    """MLP: training epochs"""
    late_epochs: int = 10
    """the MLP runs are compared on their mean over the last N epochs (steadier than the last one)"""
    skip_mlp: bool = False
    """only the softmax-regression sweep"""

    def quick_variant(self) -> Config:
        return dataclasses.replace(self, train_images=2_000, mlp_train_images=1_000, val_images=2_000, epochs=2,
                                   mlp_epochs=3)

    def problems(self) -> list[tuple[str, str, str]]:
        # lib.config has checked the common ranges (λ ≥ 0, learning rates > 0, batch ≥ 1, …) and duplicates
        problems = []
        for name, grid in (("--lambdas", self.lambdas), ("--mlp-lambdas", self.mlp_lambdas)):
            if any(a >= b for a, b in zip(grid, grid[1:])):
                problems.append((name, f"{list(grid)} is not increasing", "list each λ once, from smallest to largest"))
        for name, n, batch, batch_flag in (("--train-images", self.train_images, self.batch_size, "--batch-size"),
                                           ("--mlp-train-images", self.mlp_train_images, self.mlp_batch_size,
                                            "--mlp-batch-size")):
            if n < 1:
                problems.append((name, f"{n} images", "give at least 1"))
            elif n > 60_000:
                problems.append((name, f"{n:,} is more than MNIST's 60,000 training images", "give at most 60,000"))
            elif not 1 <= batch <= n:
                problems.append((batch_flag, f"{batch} is not in [1, {n:,}] (the training images)",
                                 f"use a smaller batch or more {name}"))
        if not 0 <= self.val_images <= N_TEST_IMAGES:
            problems.append(("--val-images", f"{self.val_images} is not in [0, 10,000]", "give 0 (all) or fewer"))
        if any(width < 1 for width in self.mlp_hidden):
            problems.append(("--mlp-hidden", f"{list(self.mlp_hidden)} include a width below 1", "give widths ≥ 1"))
        return problems


def prepare(x: np.ndarray, pixels: str) -> np.ndarray:
    """Flattened float32 pixels in [−1, 1] ("pm1") or [0, 1] ("unit")."""
    x = data.scale(x)
    return data.flatten(data.normalize(x, 0.5, 0.5) if pixels == "pm1" else x)


def late_mean(values: Sequence[float | None], n: int) -> float | None:
    """The mean of the last ``n`` checks: the late-training level, steadier than the last check."""
    tail = [v for v in values[-n:] if v is not None]
    return float(np.mean(tail)) if tail else None


def weight_norm(params: mlp.Params) -> float:
    """Σ‖Wˡ‖² over the weight matrices (what the penalty multiplies by λ)."""
    return float(sum(np.sum(np.square(np.asarray(layer["w"]))) for layer in params))


def roughness(w: np.ndarray) -> float:
    """How speckled the 28×28 weight images of ``w`` (784, units) are: the sum of squared
    differences between horizontally and vertically neighbouring pixels over 4 Σ w², averaged
    over the units. About 1 for independent pixel noise (E(a − b)² = 2σ², two directions), near
    0 for a smooth image; independent of the weights' scale."""
    images = np.asarray(w, dtype=np.float64).T.reshape(-1, 28, 28)
    dx, dy = np.diff(images, axis=2), np.diff(images, axis=1)
    energy = np.sum(images ** 2, axis=(1, 2))
    return float(np.mean((np.sum(dx ** 2, axis=(1, 2)) + np.sum(dy ** 2, axis=(1, 2))) / np.maximum(4 * energy, 1e-30)))


def class_templates(x: np.ndarray, y: np.ndarray, classes: int = 10) -> np.ndarray:
    """(784, classes): each class's mean image minus the mean image of all classes."""
    means = np.stack([x[y == k].mean(axis=0) for k in range(classes)], axis=1)
    return means - means.mean(axis=1, keepdims=True)


def template_correlation(w: np.ndarray, templates: np.ndarray) -> float:
    """How digit-like softmax weights (784, 10) are: the correlation of each class's weight image
    with that class's template (:func:`class_templates`), averaged over the classes."""
    return float(np.mean([np.corrcoef(w[:, k], templates[:, k])[0, 1] for k in range(w.shape[1])]))


def run_sweep(study: lib.Study, config: Config, model: str, train_xy: tuple, val_xy: tuple) -> list[dict[str, Any]]:
    """One vmapped engine sweep over the λ grid of ``model`` ("softmax" or "mlp") on the first
    ``train_images`` (or ``mlp_train_images``) of ``train_xy``."""
    softmax = model == "softmax"
    lambdas, hidden, n, lr, batch, epochs = (
        (config.lambdas, (), config.train_images, config.learning_rate, config.batch_size, config.epochs) if softmax
        else (config.mlp_lambdas, config.mlp_hidden, config.mlp_train_images, config.mlp_learning_rate,
              config.mlp_batch_size, config.mlp_epochs))
    lambdas, layers, train_xy = list(lambdas), [784, *hidden, 10], (train_xy[0][:n], train_xy[1][:n])
    names, k = [f"{model} λ={lam:g}" for lam in lambdas], len(lambdas)
    network = mlp.model(layers, activation=mlp.RELU, scheme=config.init)

    def train_sweep(**options: Any) -> list[dict[str, Any]]:
        study.log(f"{model}: {k} values of λ as one program, {len(train_xy[0])} images, {epochs} epochs")
        started = time.perf_counter()
        result = engine.sweep(network, train.make_optimizer("sgd", learning_rate=lr), train_xy, epochs=epochs,
                              batch_size=batch, l2=lambdas, init_seed=[config.seed] * k, data_seed=[config.seed] * k,
                              val=val_xy, **options)
        seconds = (time.perf_counter() - started) / k
        members, late = [result.member(i) for i in range(k)], config.late_epochs
        templates = class_templates(*train_xy) if softmax else None
        runs = []
        for name, lam, history, p in zip(names, lambdas, result.histories, members):
            w = np.asarray(p[0]["w"])
            look = {"weight_rms": float(np.sqrt(np.mean(w ** 2))), "weight_roughness": roughness(w),
                    "template_correlation": template_correlation(w, templates)} if softmax else {}
            run_config = {"model": model, "layers": layers, "l2": lam, "learning_rate": lr, "batch_size": batch,
                          "epochs": epochs, "train_images": len(train_xy[0]), "val_images": len(val_xy[0]),
                          "init": config.init, "optimizer": "sgd", "seed": config.seed, "pixels": config.pixels,
                          "sweep_members": k}
            final = {"test_accuracy": None, "test_loss": None,  # the test set validates here: no test numbers
                     "weight_norm": weight_norm(p), "late_val_accuracy": late_mean(history.val_accuracy, late),
                     "late_val_loss": late_mean(history.val_loss, late), **look}
            runs.append(mnist.classifier_record(name, run_config, network, p, history, val_xy, num_classes=10,
                                                seconds=seconds, **final))
        if softmax:
            study.save_arrays("softmax_weights", lambdas=np.asarray(lambdas),
                              w=np.stack([np.asarray(p[0]["w"]) for p in members]))
        return runs

    return study.train(model, names, train_sweep, label=f"{model}, {k} values of λ", epochs=epochs)


def run(config: Config, study: lib.Study) -> dict[str, Any]:
    """The softmax-regression sweep, then (unless --skip-mlp) the MLP sweep."""
    ds = study.load("mnist")
    n_max = max(config.train_images, 0 if config.skip_mlp else config.mlp_train_images)
    train_xy = data.first_n(prepare(ds.x_train, config.pixels), ds.y_train, n_max)
    v = config.val_images or None  # 0: all of them
    val_xy = (prepare(ds.x_test, config.pixels)[:v], ds.y_test[:v])
    runs = run_sweep(study, config, "softmax", train_xy, val_xy)
    if not config.skip_mlp:
        runs += run_sweep(study, config, "mlp", train_xy, val_xy)
    base = runs[0]
    return {"runs": runs, "headline": (f"validation accuracy, softmax λ = {base['config']['l2']:g}",
                                       base["final"]["val_accuracy"])}


# ---------------------------------------------------------------- outcomes, from the numbers
def group(results: Mapping[str, Any], model: str) -> list[Mapping[str, Any]]:
    """The runs of ``model`` ("softmax" or "mlp"), in λ order (the order they ran: each grid increases)."""
    return [r for r in results["runs"] if r["config"]["model"] == model]


def _wobble(a: Mapping[str, Any], b: Mapping[str, Any], late: int) -> tuple[float | None, int]:
    """The mean |epoch-to-epoch change| of two runs' validation accuracy over their last ``late`` epochs
    (all of them if fewer), and over how many epochs."""
    tails = [[v for v in r["history"]["val_accuracy"] if v is not None][-late - 1:] for r in (a, b)]
    steps = [abs(y - x) for tail in tails for x, y in zip(tail, tail[1:])]
    return (float(np.mean(steps)) if steps else None), max(len(tail) for tail in tails)


def monotone_claims(results: Mapping[str, Any]) -> list[Claim]:
    """Whether softmax validation accuracy falls as λ grows: its largest rise, against zero and the noise."""
    runs = group(results, "softmax")
    if len(runs) < 2:
        return []
    val = [r["final"]["val_accuracy"] for r in runs]
    rises = [b - a for a, b in zip(val, val[1:])] if None not in val else None
    i = int(np.argmax(rises)) if rises else 0
    rise = rises[i] if rises else None
    wobble, epochs = _wobble(runs[i], runs[i + 1], results["config"]["late_epochs"])
    step = f"λ = {runs[i]['config']['l2']:g} → {runs[i + 1]['config']['l2']:g}"
    return [Claim("softmax validation accuracy as λ grows: its largest rise between neighbouring λ",
                  f"the rise ({step})", rise, "zero", 0.0, digits=4, reference=True,
                  more="not monotone: it rises at some step", less="it falls or stays at every step"),
            Claim("that largest rise against the epoch-to-epoch noise", "the rise", rise,
                  f"the two runs' mean epoch-to-epoch change over their last {epochs} epochs", wobble, digits=4,
                  more="beyond the noise", less="within the noise")]


def look_claims(results: Mapping[str, Any]) -> list[Claim]:
    """How the λ = 1 weights look against λ = 0's (none unless both ran): smoother, more digit-like, smaller."""
    by_name = {r["name"]: r["final"] for r in group(results, "softmax")}
    zero, one = by_name.get("softmax λ=0"), by_name.get("softmax λ=1")
    if not (zero and one):
        return []
    look = "the λ = 1 class-weight images against λ = 0's:"
    return [Claim(f"{look} roughness (about 1 for pixel noise, 0 when smooth)", "λ = 0", zero["weight_roughness"],
                  "λ = 1", one["weight_roughness"], digits=2, more="smoother", less="not smoother"),
            Claim(f"{look} template correlation (how digit-like)", "λ = 1", one["template_correlation"], "λ = 0",
                  zero["template_correlation"], digits=2, more="more digit-like", less="not more digit-like"),
            Claim("the RMS of the class weights", "λ = 0", zero["weight_rms"], "three times λ = 1's",
                  3 * one["weight_rms"], digits=4,
                  more="λ = 1's are more than 3× smaller: on one shared colour scale their row would look almost "
                       "blank, which may be what was read as noisy", less="λ = 1's are not 3× smaller")]


def mlp_claims(results: Mapping[str, Any]) -> list[Claim]:
    """Whether some λ beats the smallest on the validation set, judged on the mean over the last
    ``late_epochs`` epochs (single epochs swing by a point or more at this learning rate)."""
    runs = group(results, "mlp")
    finished = [r for r in runs if None not in (r["final"]["late_val_accuracy"], r["final"]["late_val_loss"])]
    if len(finished) < 2 or finished[0] is not runs[0]:
        return []
    base, lam = runs[0]["final"], lambda r: f"λ = {r['config']['l2']:g}"  # noqa: E731
    l2 = "L2" if runs[0]["config"]["l2"] == 0 else "a larger λ"
    n_val = runs[0]["config"]["val_images"]
    best_acc = max(finished, key=lambda r: r["final"]["late_val_accuracy"])
    lower = min(finished[1:], key=lambda r: r["final"]["late_val_loss"])
    higher = max(finished[1:], key=lambda r: r["final"]["late_val_accuracy"])
    se = float(np.sqrt(base["late_val_accuracy"] * (1 - base["late_val_accuracy"]) / n_val))
    out = [Claim("the MLP's training accuracy at the smallest λ", lam(runs[0]), base["train_accuracy"], "the threshold",
                 0.99, reference=True, more="it fits its training set", less="it does not fit its training set"),
           Claim("the MLP's late validation cross-entropy: the smallest λ against the lowest at a larger λ",
                 lam(runs[0]), base["late_val_loss"], lam(lower), lower["final"]["late_val_loss"],
                 more=f"{l2} lowers the validation loss", less=f"{l2} does not lower the validation loss"),
           Claim("the MLP's late validation accuracy: the highest at a larger λ against the smallest λ",
                 lam(higher), higher["final"]["late_val_accuracy"], lam(runs[0]), base["late_val_accuracy"], digits=4,
                 more=f"{l2} raises the validation accuracy", less=f"{l2} does not raise the validation accuracy"),
           Claim(f"that accuracy gain against one standard error of the smallest λ's accuracy on {n_val:,} images "
                 "(one seed)", "the gain", higher["final"]["late_val_accuracy"] - base["late_val_accuracy"],
                 "one standard error", se, digits=4, more="beyond one standard error",
                 less="within one standard error")]
    last = runs[-1]
    if last["final"]["late_val_accuracy"] is not None:
        late = results["config"]["late_epochs"]
        tail = [a for a in last["history"]["val_accuracy"][-2 * late:] if a is not None]
        out.append(Claim("the late validation accuracy at the largest λ: how far below the best",
                         f"{lam(last)}, below {lam(best_acc)} by",
                         best_acc["final"]["late_val_accuracy"] - last["final"]["late_val_accuracy"],
                         "one standard error", se, digits=4,
                         more="more than one standard error: too strong a pull towards 0 fights the data term and "
                              "costs accuracy", less="within one standard error",
                         why=f"Its validation accuracy ranges from {lib.fmt(min(tail))} to {lib.fmt(max(tail))} over "
                             f"its last {len(tail)} epochs (final train accuracy "
                             f"{lib.fmt(last['final']['train_accuracy'])})."))
    return out


def claims(results: Mapping[str, Any]) -> list[Claim]:
    """Every outcome the report states, computed from results.json."""
    return monotone_claims(results) + look_claims(results) + mlp_claims(results)


def _setting_note(cfg: Mapping[str, Any]) -> str:
    """Why a λ = 0 number may differ from the write-up: the settings that are not the defaults."""
    default = Config()
    changed = [f"{key.replace('_', ' ')} {cfg[key]}" for key in ("pixels", "train_images", "learning_rate",
                                                                 "batch_size", "epochs", "val_images", "init")
               if cfg[key] != getattr(default, key)]
    return (f"Settings differ from the defaults that match the write-up ({', '.join(changed)})." if changed else
            "One run of one seed; the write-up's exact setup is not known.")


def reported_rows(results: Mapping[str, Any]) -> list[list[Any]]:
    """(quantity, reported, reproduced, note) for the quantities this grid measures."""
    rows = []
    zero = {r["config"]["l2"]: r for r in group(results, "softmax")}.get(0.0)
    if zero is not None:
        for quantity, key in (("train accuracy", "train_accuracy"), ("validation accuracy", "val_accuracy"),
                              ("train cross-entropy", "train_loss"), ("validation cross-entropy", "val_loss")):
            got = zero["final"][key]
            far = got is None or abs(got - REPORTED[key]) > 0.01
            rows.append([f"{quantity}, λ = 0", REPORTED[key], got, _setting_note(results["config"]) if far else None])
    if monotone_claims(results):
        rises, noise = monotone_claims(results)
        rows.append(["validation accuracy as λ grows", "falls", "—" if not rises.measured else
                     "not monotone" if rises.holds else "falls",
                     "A run diverged; see the table." if not rises.measured else
                     f"Its largest rise is {noise.verdict} (see the claims above)." if rises.holds else None])
    if look_claims(results):
        smoother, digits, _ = look_claims(results)
        note = {(True, True): "The opposite of the reported look, by both measures: λ = 1 pulls every weight towards "
                              "0, and what is left is closer to each digit's template.",
                (False, False): "As reported, by both measures."}.get(
            (smoother.holds, digits.holds), "Mixed: the two measures disagree, so neither look is clearly reproduced.")
        rows.append(["weights for λ = 1 vs λ = 0 (Figure 2)", REPORTED_LOOK, f"{smoother.verdict}, {digits.verdict}",
                     note])
    return rows


def curves(path: Path, runs: Sequence[Mapping[str, Any]], key: str, ylabel: str, title: str, start: int = 0,
           logy: bool = False) -> Path:
    """``history[key]`` against the epoch (from check ``start`` on), one line per λ."""
    labels = [f"λ = {r['config']['l2']:g}" for r in runs]
    return plots.line_plot(path, {lab: r["history"]["epoch"][start:] for lab, r in zip(labels, runs)},
                           {lab: r["history"][key][start:] for lab, r in zip(labels, runs)}, "epoch", ylabel, title,
                           logy=logy)


def weight_rows(path: Path, rows: dict[str, np.ndarray]) -> Path:
    """The ten class-weight vectors as 28×28 images, one row per λ, each row on its own
    symmetric colour scale (with its own colour bar), since a large λ shrinks the weights a lot."""
    import matplotlib.pyplot as plt

    with plt.rc_context(plots.STYLE):
        fig, axes = plt.subplots(len(rows), 10, figsize=(13.5, 1.55 * len(rows) + 0.5), squeeze=False)
        for row, (label, w) in zip(axes, rows.items()):
            m = float(np.abs(w).max()) or 1.0
            for digit, ax in enumerate(row):
                im = ax.imshow(w[:, digit].reshape(28, 28), cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(str(digit), fontsize=9)
            row[0].set_ylabel(label, fontsize=10)
            fig.colorbar(im, ax=list(row), shrink=0.85, pad=0.01, label="weight")
        fig.suptitle("Class-weight vectors of softmax regression (red: evidence for the class, blue: against)")
        return plots.save_figure(fig, path)


def _grid(values: Sequence[float]) -> str:
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


def report(results: dict[str, Any], out: Path) -> lib.Report:
    """report.md and its figures, from results.json and the saved softmax weights."""
    cfg = results["config"]
    soft, mlp_runs = group(results, "softmax"), group(results, "mlp")
    n_val = soft[0]["config"]["val_images"]
    rep = lib.Report("L2 regularisation: softmax regression and an MLP", quick=results["quick"])
    mlp_layers = [784, *cfg["mlp_hidden"], 10]
    n_weights = sum(a * b for a, b in zip(mlp_layers, mlp_layers[1:]))
    rep.what_was_run(
        f"**Softmax regression** (784 → 10) on the first {soft[0]['config']['train_images']:,} MNIST training images, "
        f"validated on {'the' if n_val == N_TEST_IMAGES else 'the first'} {n_val:,} test-set images after every epoch; "
        f"pixels in {PIXELS[cfg['pixels']]}; {cfg['init']} initialisation (\"uniform\": weights and biases from "
        f"U(±1/√fan_in), PyTorch's `nn.Linear` default); plain SGD, learning rate {cfg['learning_rate']:g}, batch "
        f"{cfg['batch_size']}, {cfg['epochs']} epochs; the loss is the mean cross-entropy plus λ Σ‖W‖² (weights only, "
        f"not biases), λ ∈ {_grid(cfg['lambdas'])}. The {len(soft)} members share the initial weights and the data "
        "order and run as one vmapped program. The cross-entropies below exclude the penalty. "
        + ("Pixels in [−1, 1] (PyTorch's `Normalize((0.5,), (0.5,))`) are what we assume the write-up used; "
           "`--pixels unit` scales them to [0, 1] instead." if cfg["pixels"] == "pm1" else
           "Pixels in [0, 1] (`--pixels unit`); the default, [−1, 1], is what we assume the write-up used.")
        + ("" if not mlp_runs else
           f"\n\n**MLP** {'-'.join(map(str, mlp_layers))} (ReLU) on the first {mlp_runs[0]['config']['train_images']:,} "
           f"training images only (so that it can overfit), same validation set, SGD with learning rate "
           f"{cfg['mlp_learning_rate']:g}, batch {cfg['mlp_batch_size']}, {cfg['mlp_epochs']} epochs, λ ∈ "
           f"{_grid(cfg['mlp_lambdas'])} as a second sweep. Its grid is separate because Σ‖W‖² now runs over "
           f"{n_weights:,} weights instead of 7,840, so the useful λ are smaller."))

    rep.figure(curves(out / "val_accuracy_softmax.png", soft, "val_accuracy", "validation accuracy",
                      "Softmax regression: validation accuracy per λ"),
               "Validation accuracy after every epoch, one line per λ.")
    arrays = out / "arrays" / "softmax_weights.npz"
    if arrays.exists():
        saved = np.load(arrays)
        lams, w = list(saved["lambdas"]), saved["w"]
        shown = {f"λ = {lams[i]:g}": w[i] for i in dict.fromkeys([0, len(lams) - 1])}  # the smallest and largest λ
        rep.figure(weight_rows(out / "weights.png", shown),
                   "The ten class-weight vectors W[:, k] as 28×28 images after training, " + " (top) and ".join(shown)
                   + (" (bottom)" if len(shown) > 1 else "") + "; each row has its own colour scale.")
    else:
        rep.text(f"(The weight images are missing: {arrays.relative_to(out)} was not found.)")
    models = {"softmax regression": soft, f"MLP {'-'.join(map(str, mlp_layers))}": mlp_runs}
    positive = {label: [r for r in runs if r["config"]["l2"] > 0] for label, runs in models.items()}
    positive = {label: runs for label, runs in positive.items() if runs}
    zero = {label: r["final"]["weight_norm"] for label, runs in models.items() for r in runs if r["config"]["l2"] == 0}
    rep.figure(plots.line_plot(out / "weight_norm.png", {k: [r["config"]["l2"] for r in v] for k, v in positive.items()},
                               {k: [r["final"]["weight_norm"] for r in v] for k, v in positive.items()},
                               "λ", "Σ‖W‖² after training", "Weight norm against λ", logx=True, logy=True),
               "Σ‖W‖² of the trained weights against λ > 0 (log axes)"
               + (("; at λ = 0 it is " + ", ".join(f"{lib.fmt(v)} ({k})" for k, v in zero.items())) if zero else "")
               + ".")
    rep.heading("Softmax regression").table(
        ["λ", "Train CE", "Val CE", "Train acc", "Val acc", "Σ‖W‖²", "Roughness", "Template corr."],
        [[r["config"]["l2"], *(r["final"][k] for k in ("train_loss", "val_loss", "train_accuracy", "val_accuracy",
                                                        "weight_norm", "weight_roughness", "template_correlation"))]
         for r in soft], digits=4)
    rep.text("Roughness: the sum of squared differences between neighbouring pixels of each class's weight image "
             "over 4 Σ w², averaged over the classes (about 1 for independent pixel noise, near 0 for a smooth image; "
             "scale-free). "
             "Template correlation: the correlation of each class's weight image with that class's mean training "
             "image minus the mean image of all classes, averaged over the classes (how digit-like the weights are).")
    rep.claims(monotone_claims(results) + look_claims(results), heading=None)
    if mlp_runs:
        late, start = min(cfg["late_epochs"], cfg["mlp_epochs"]), cfg["mlp_epochs"] // 5
        on = f"MLP on {mlp_runs[0]['config']['train_images']:,} images"
        rep.heading("MLP").figure(curves(out / "val_loss_mlp.png", mlp_runs, "val_loss", "validation cross-entropy",
                                         f"{on}: validation loss per λ", logy=True),
                                  "MLP: validation cross-entropy after every epoch, one line per λ.")
        rep.figure(curves(out / "val_accuracy_mlp.png", mlp_runs, "val_accuracy", "validation accuracy",
                          f"{on}: validation accuracy per λ", start=start),
                   f"MLP: validation accuracy after every epoch from epoch {start + 1} on (the first epochs are left "
                   "out so that the differences show), one line per λ.")
        rep.table(["λ", "Train CE", "Train acc", "Val CE", "Val acc", f"Val CE, last {late}", f"Val acc, last {late}",
                   "Best val acc (epoch)", "Σ‖W‖²"],
                  [[r["config"]["l2"], *(r["final"][k] for k in ("train_loss", "train_accuracy", "val_loss",
                                                                 "val_accuracy", "late_val_loss", "late_val_accuracy")),
                    f"{lib.fmt(r['final']['best_val_accuracy'], 4)} (epoch "
                    f"{lib.fmt_epoch(r['final']['best_val_accuracy_epoch'])})", r["final"]["weight_norm"]]
                   for r in mlp_runs], digits=4)
        diverged = [r["name"] for r in mlp_runs if r["diverged"]]
        found = mlp_claims(results)
        rep.text((f"The MLP runs are compared on the mean of their last {late} epochs (single epochs swing by a point "
                  "or more at this learning rate); one seed." if found else "Too few finished MLP runs to compare λ.")
                 + (f" Diverged: {', '.join(diverged)}." if diverged else "")).claims(found, heading=None)
    rows = reported_rows(results)
    if rows:
        rep.reported_vs_reproduced(rows, digits=4, source="the original study's write-up (λ = 0: accuracy 0.9225 / "
                                   "0.9157, cross-entropy 0.280 / 0.299; the λ = 1 weights \"noisier, less digit-like\")")
    return rep


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__, datasets=("mnist",))


if __name__ == "__main__":
    main()
