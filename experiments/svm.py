"""Support-vector machines on the Gurmukhi digits: scikit-learn's ``SVC`` with the linear,
polynomial, RBF and sigmoid kernels on the flattened 32×32 pixels (1,000 training, 178
validation images), with raw 0..255 pixels and with pixels normalized to [−1, 1], under both
of scikit-learn's default ``gamma`` rules ("scale" = 1/(n_features·Var x), the default since
0.22, and "auto" = 1/n_features, the default before). The original report's RBF accuracy of
0.202 is examined against a γ sweep: accuracy against the typical exponent γ·‖x − x′‖², and
what the RBF kernel matrix looks like when γ is large for the pixel units. scikit-learn is an
optional dependency (``pip install -e '.[svm]'``).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from experiments import lib
from experiments.lib import plots
from experiments.lib.claims import Claim
from jaxnet import data, metrics

NAME = "svm"
KERNELS = ("linear", "poly", "rbf", "sigmoid")
KERNEL_LABELS = {"linear": "linear", "poly": "polynomial", "rbf": "RBF", "sigmoid": "sigmoid"}
REPORTED = {"linear": 0.972, "poly": 0.966, "rbf": 0.202, "sigmoid": 0.955}
PIXELS = {"raw": "raw 0..255", "pm1": "[−1, 1]"}
GAMMAS = ("scale", "auto")
EXP_UNDERFLOW = 745.0  # exp(−t) is exactly 0 in float64 beyond t ≈ 745
SOURCE = ("the coursework's SVM baseline on the Gurmukhi pixels (scikit-learn SVC, kernels linear, "
          "polynomial, RBF, sigmoid), as quoted in the jaxnet issue")


@dataclasses.dataclass(frozen=True)
class Config(lib.StudyConfig):
    kernels: tuple[str, ...] = KERNELS
    """SVC kernels fitted with the default settings (linear, poly, rbf, sigmoid)"""
    pixels: tuple[str, ...] = tuple(PIXELS)
    """pixel scalings: raw (0..255 as stored) and pm1 ([−1, 1], ink −1)"""
    gammas: tuple[str, ...] = GAMMAS
    """default γ rules of the non-linear kernels: scale = 1/(n_features·Var x), auto = 1/n_features"""
    c: float = 1.0
    """SVC's C, the penalty on margin violations (scikit-learn's default 1)"""
    degree: int = 3
    """degree of the polynomial kernel (scikit-learn's default 3)"""
    coef0: float = 0.0
    """coef0 of the polynomial and sigmoid kernels (scikit-learn's default 0)"""
    sweep_exponents: tuple[float, ...] = tuple(float(e) for e in np.geomspace(1e-2, 1e5, 15))
    """RBF γ sweep on raw pixels: γ × median ‖x − x′‖² between training images (the typical exponent)"""

    def quick_variant(self) -> Config:
        return dataclasses.replace(self, sweep_exponents=(1e-1, 3.0, 1e4))

    def problems(self) -> list[tuple[str, str, str]]:
        found = []  # lib.config has already refused a value listed twice
        for flag_, values, allowed in (("--kernels", self.kernels, KERNELS), ("--pixels", self.pixels, tuple(PIXELS)),
                                       ("--gammas", self.gammas, GAMMAS)):
            bad = [v for v in values if v not in allowed]
            if bad:
                found.append((flag_, f"unknown value {bad[0]!r}", f"use some of {' '.join(allowed)}"))
        if self.c <= 0:
            found.append(("--c", f"{self.c} is not positive", "give C > 0"))
        if self.degree < 1:
            found.append(("--degree", f"{self.degree}", "give a degree ≥ 1"))
        if any(not e > 0 for e in self.sweep_exponents):
            found.append(("--sweep-exponents", "a value is not positive", "give exponents > 0, e.g. 0.1 3 10000"))
        return found


# ---------------------------------------------------------------- fitting
def svc_class() -> Any:
    """scikit-learn's ``SVC``, imported only when the study runs."""
def svc_class() -> Any:
    """scikit-learn's ``SVC``, imported only when the study runs."""
    try:
        from sklearn.svm import SVC
    except ImportError:
        raise ImportError("the svm study needs scikit-learn, an optional dependency: "
                          "pip install -e '.[svm]' (or '.[dev]')") from None
    return SVC


def features(x: np.ndarray, pixels: str) -> np.ndarray:
    """Flattened float64 pixels: "raw" keeps 0..255 (0 = ink), "pm1" maps them to [−1, 1]
    (ToTensor + Normalize(0.5, 0.5): ink −1, background +1)."""
    if pixels == "raw":
        return data.flatten(x).astype(np.float64)
    return data.flatten(data.normalize(data.scale(x), 0.5, 0.5)).astype(np.float64)


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """‖aᵢ − bⱼ‖² for every pair (exact for integer pixels in float64)."""
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def gamma_value(gamma: str | float, x: np.ndarray) -> float:
    """The γ scikit-learn uses for ``gamma`` on training inputs ``x``."""
    if gamma == "scale":
        return 1.0 / (x.shape[1] * x.var())
    if gamma == "auto":
        return 1.0 / x.shape[1]
    return float(gamma)


def kernel_stats(x_train: np.ndarray, x_val: np.ndarray, gamma: float, coef0: float) -> dict[str, float]:
    """How the RBF and sigmoid kernels look at this γ: the median RBF exponent γ‖x − x′‖²
    between validation and training images, the fraction of RBF values that underflow to
    exactly 0 in float64 (validation–training, and off the diagonal of training–training),
    the largest value that is not an exact duplicate, and the fraction of sigmoid values
    tanh(γ x·x′ + coef0) that are exactly 1."""
    d2 = squared_distances(x_val, x_train)
    k = np.exp(-gamma * d2)
    train = np.exp(-gamma * squared_distances(x_train, x_train))
    off = ~np.eye(len(x_train), dtype=bool)
    return {"median_exponent": float(np.median(gamma * d2)), "fraction_exactly_zero": float(np.mean(k == 0.0)),
            "nonzero": int(np.sum(k > 0.0)), "entries": int(k.size),
            "val_images_with_a_nonzero_value": int(np.sum((k > 0.0).any(axis=1))),
            "largest_non_duplicate": float(k[d2 > 0].max()), "exact_duplicates": int(np.sum(d2 == 0)),
            "train_off_diagonal_fraction_exactly_zero": float(np.mean(train[off] == 0.0)),
            "sigmoid_fraction_exactly_one": float(np.mean(np.tanh(gamma * (x_val @ x_train.T) + coef0) == 1.0))}


def fit(name: str, run_config: Mapping[str, Any], options: Mapping[str, Any], x: tuple[np.ndarray, np.ndarray],
        y: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Fits ``SVC(**options)`` on ``x[0], y[0]`` and records it for ``results.json``. Gurmukhi has no
    test split: its validation split ``x[1], y[1]`` is where every accuracy (and the reported ones)
    is measured, so ``test_accuracy`` is None."""
    svc = svc_class()(**options)
    started = time.perf_counter()
    svc.fit(x[0], y[0])
    seconds = time.perf_counter() - started
    predicted = svc.predict(x[1])
    confusion = np.asarray(metrics.confusion_matrix(predicted, y[1], 10))
    counts = confusion.sum(axis=0)
    final = {"train_accuracy": float(np.mean(svc.predict(x[0]) == y[0])),
             "val_accuracy": float(np.mean(predicted == y[1])), "test_accuracy": None,
             "gamma_value": gamma_value(options["gamma"], x[0]) if options["kernel"] != "linear" else None,
             "support_vectors": int(svc.n_support_.sum()), "most_predicted_class": int(np.argmax(counts)),
             "most_predicted_fraction": float(counts.max() / counts.sum()),
             "classes_predicted": int(np.count_nonzero(counts))}
    per_class = {"recall": metrics.per_class_recall(confusion),
                 "one_vs_rest_accuracy": metrics.per_class_one_vs_rest_accuracy(confusion)}
    return lib.run_record(name, run_config, None, final, per_class=per_class, confusion=confusion, seconds=seconds,
                          diverged=False)


def run_name(kernel: str, pixels: str, gamma: str | float) -> str:
    if kernel == "linear":
        return f"linear, {PIXELS[pixels]}"
    g = gamma if isinstance(gamma, str) else f"{gamma:.3g}"
    return f"{kernel}, {PIXELS[pixels]}, gamma={g}"


def settings(config: Config, median_raw: float) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(name, pixels, SVC options, recorded config) of every fit: the defaults, then the γ sweep."""
    out = []
    for pixels in config.pixels:
        for kernel in config.kernels:
            for gamma in (config.gammas[:1] if kernel == "linear" else config.gammas):
                options = {"kernel": kernel, "gamma": gamma, "C": config.c, "degree": config.degree,
                           "coef0": config.coef0}
                out.append((run_name(kernel, pixels, gamma), pixels, options,
                            {**options, "pixels": PIXELS[pixels], "part": "defaults"}))
    for e in config.sweep_exponents:  # on raw pixels; on [−1, 1] pixels the same exponents give the same kernel
        options = {"kernel": "rbf", "gamma": float(e / median_raw), "C": config.c}
        out.append((run_name("rbf", "raw", options["gamma"]), "raw", options,
                    {**options, "pixels": PIXELS["raw"], "exponent": float(e), "part": "gamma sweep"}))
    return out


def run(config: Config, study: lib.Study) -> dict[str, Any]:
    """Every default setting, then the RBF γ sweep, each fit once (libsvm is deterministic)."""
    svc_class()  # fail early, with the install hint, if scikit-learn is missing
    import sklearn

    ds = study.load("gurmukhi")
    y = np.asarray(ds.y_train), np.asarray(ds.y_test)
    x = {p: (features(ds.x_train, p), features(ds.x_test, p)) for p in dict.fromkeys([*config.pixels, "raw"])}
    medians = {p: float(np.median(squared_distances(a, a)[np.triu_indices(len(a), 1)])) for p, (a, _) in x.items()}
    runs: list[dict[str, Any]] = []
    for name, pixels, options, run_config in settings(config, medians["raw"]):
        # train calls the lambda at once, so it sees this iteration's values
        runs += study.train(name, [name], lambda **_: [fit(name, run_config, options, x[pixels], y)], label=name,
                            epochs=1, checkpoints=False)
        study.log(f"{name}: validation accuracy {runs[-1]['final']['val_accuracy']:.3f}")
    stats = {f"{PIXELS[p]}, gamma={g}": kernel_stats(x[p][0], x[p][1], gamma_value(g, x[p][0]), config.coef0)
             for p in x for g in GAMMAS}
    pm1 = [r for r in runs if r["name"] == run_name("rbf", "pm1", "scale")]
    headline = ("RBF accuracy, [−1, 1] pixels", pm1[0]["final"]["val_accuracy"]) if pm1 else (
        "best validation accuracy", max(r["final"]["val_accuracy"] for r in runs))
    return {"runs": runs, "headline": headline, "reported": REPORTED, "kernel_stats": stats,
            "median_squared_distance": medians, "pixel_variance": {p: float(x[p][0].var()) for p in x},
            "most_frequent_class_accuracy": float(np.bincount(y[1]).max() / len(y[1])),
            "sklearn_version": sklearn.__version__, "class_names": list(ds.class_names), "n_train": len(y[0]),
            "n_val": len(y[1])}


# ---------------------------------------------------------------- the findings, from the numbers
def by_name(results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in results["runs"]}


def acc(results: Mapping[str, Any], kernel: str, pixels: str, gamma: str = "scale") -> float | None:
    """Validation accuracy of a default setting (None if it was not run)."""
    run = by_name(results).get(run_name(kernel, pixels, gamma))
    return None if run is None else run["final"]["val_accuracy"]


def images(results: Mapping[str, Any], accuracy: float) -> int:
    return int(round(accuracy * results["n_val"]))


def apart(results: Mapping[str, Any], a: float | None, b: float | None) -> float | None:
    """How many validation images two accuracies are apart (None if one is missing)."""
    return None if a is None or b is None else abs(a - b) * results["n_val"]


def default_runs(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [r for r in results["runs"] if r["config"].get("part") == "defaults"]


def sweep_runs(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    return sorted((r for r in results["runs"] if r["config"].get("part") == "gamma sweep"),
                  key=lambda r: r["config"]["exponent"])


def sweep_shape(results: Mapping[str, Any]) -> dict[str, Any]:
    """The sweep in numbers: the best accuracy and the exponents within one image of it, the
    accuracy at the smallest exponent, the lowest accuracy past the best, and the collapse: the
    first exponent past the best whose accuracy is below halfway between the best and the
    most-frequent-class rate."""
    sweep = [(r["config"]["exponent"], r["final"]["val_accuracy"]) for r in sweep_runs(results)]
    best = max(a for _, a in sweep)
    near = [e for e, a in sweep if a >= best - 1 / results["n_val"] - 1e-12]
    cut = (best + results["most_frequent_class_accuracy"]) / 2
    after = [(e, a) for e, a in sweep if e > max(near)]
    return {"best": best, "near_best": (min(near), max(near)), "smallest": sweep[0], "cut": cut,
            "lowest_after": min((a for _, a in after), default=None),
            "collapse": next((e for e, a in after if a < cut), None)}


def default_exponent(results: Mapping[str, Any], pixels: str, gamma: str) -> float | None:
    """The typical exponent γ × median ‖x − x′‖² of an RBF default setting."""
    run = by_name(results).get(run_name("rbf", pixels, gamma))
    if run is None or pixels not in results["median_squared_distance"]:
        return None
    return run["final"]["gamma_value"] * results["median_squared_distance"][pixels]


def shown_runs(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(slug, name) of the RBF settings the report shows in detail: raw pixels with gamma='auto', and the properly
    scaled one."""
    return [(slug, n) for slug, n in (("rbf_raw_auto", run_name("rbf", "raw", "auto")),
                                      ("rbf_pm1_scale", run_name("rbf", "pm1", "scale"))) if n in by_name(results)]


def reported_claims(results: Mapping[str, Any]) -> list[Claim]:
    """Which default setting gives each reported accuracy to the image, and whether one setting gives all of them."""
    out, cfg, defaults = [], results["config"], default_runs(results)
    off = {r["name"]: apart(results, r["final"]["val_accuracy"], REPORTED[r["config"]["kernel"]]) for r in defaults}
    for r in defaults:
        k = r["config"]["kernel"]
        out.append(Claim(f"`{r['name']}` against the reported {KERNEL_LABELS[k]} accuracy {REPORTED[k]}",
                         "validation images apart", off[r["name"]], "half an image", 0.5, reference=True,
                         more="not the reported count", less="the reported count", digits=1))
    for p, g in sorted({(p, g) for p in cfg["pixels"] for g in cfg["gammas"]}):
        mine = {r["config"]["kernel"]: off[r["name"]] for r in defaults if r["config"]["pixels"] == PIXELS[p]
                and (r["config"]["kernel"] == "linear" or r["config"]["gamma"] == g)}
        worst = max(mine, key=lambda k: mine[k])
        out.append(Claim(f"{PIXELS[p]} pixels with gamma='{g}', every kernel against its reported accuracy",
                         f"the most validation images apart ({KERNEL_LABELS[worst]})", mine[worst], "half an image",
                         0.5, reference=True, more="not every reported number",
                         less="every reported number to the image", digits=1))
    return out


def rbf_claims(results: Mapping[str, Any]) -> list[Claim]:
    """The RBF kernel on raw pixels, the scale of γ and the sweep."""
    out, runs, stats = [], by_name(results), results["kernel_stats"]
    auto = stats.get("raw 0..255, gamma=auto")
    if run_name("rbf", "raw", "auto") in runs and auto is not None:
        out.append(Claim("RBF, raw pixels, gamma='auto': the training kernel matrix",
                         "the share of its off-diagonal values that are exactly 0,",
                         auto["train_off_diagonal_fraction_exactly_zero"], "the threshold", 0.99, reference=True,
                         more="numerically the identity", less="not the identity", digits=4))
    for _, n in shown_runs(results):
        f = runs[n]["final"]
        out.append(Claim(f"`{n}`: its predictions", f"the share in the most predicted class "
                         f"({f['most_predicted_class']})", f["most_predicted_fraction"], "one half", 0.5, reference=True,
                         more="nearly constant", less="not near-constant", digits=2))
    raw, pm1 = stats.get("raw 0..255, gamma=scale"), stats.get("[−1, 1], gamma=scale")
    if raw is not None and pm1 is not None:
        e = sorted((raw["median_exponent"], pm1["median_exponent"]))
        out.append(Claim("the median RBF exponent under gamma='scale', raw against [−1, 1] pixels", "the larger per "
                         "the smaller", e[1] / e[0], "the tolerance", 1.5, reference=True, more="different typical exponents",
                         less="the same typical exponent whatever the units", digits=2))
    if not sweep_runs(results):
        return out
    shape, sweep = sweep_shape(results), sweep_runs(results)
    (e0, a0), (lo, _) = shape["smallest"], shape["near_best"]
    hits = {r["config"]["exponent"]: apart(results, r["final"]["val_accuracy"], REPORTED["rbf"]) for r in sweep}
    closest = min(hits, key=lambda e: hits[e])
    out += [Claim("the RBF γ sweep, its best exponent against its smallest", f"the best accuracy (exponent {lo:g})",
                  shape["best"], f"exponent {e0:g}'s", a0, more="lower at the smallest exponent",
                  less="as high at the smallest exponent"),
            Claim("the RBF γ sweep past its best exponents", "halfway between the best and the most-frequent-class "
                  f"rate ({results['most_frequent_class_accuracy']:.3f})", shape["cut"], "the lowest accuracy there",
                  shape["lowest_after"], more="the kernel collapses as most of its values vanish",
                  less="no collapse"),
            Claim(f"the RBF γ sweep against the reported RBF accuracy {REPORTED['rbf']}",
                  f"the fewest validation images apart (exponent {closest:g})", hits[closest], "half an image", 0.5, reference=True,
                  more="no exponent gives the reported count", less="an exponent gives the reported count", digits=1)]
    x = default_exponent(results, "raw", "auto")
    if x is not None:
        out.append(Claim("raw pixels with gamma='auto': the typical RBF exponent against where the sweep collapses",
                         "the typical exponent", x, "the first collapsed exponent", shape["collapse"], reference=True,
                         more="γ is too large for raw pixels", less="γ is not too large for raw pixels", digits=0))
    return out


def claims(results: Mapping[str, Any]) -> list[Claim]:
    """Every outcome the report states, each computed from ``results``."""
    return rbf_claims(results) + reported_claims(results)


def mechanism_text(results: Mapping[str, Any]) -> str:
    """What the RBF kernel looks like on raw pixels with gamma='auto', and what the SVC predicts."""
    run = by_name(results).get(run_name("rbf", "raw", "auto"))
    stats = results["kernel_stats"].get("raw 0..255, gamma=auto")
    if run is None or stats is None:
        return ""
    f, median, n_val = run["final"], results["median_squared_distance"]["raw"], results["n_val"]
    return (f"The RBF kernel is k(x, x′) = exp(−γ‖x − x′‖²). On raw 0..255 pixels two images that differ in m "
            f"pixels are 255²·m = 65,025·m apart; the median squared distance between training images is "
            f"{median:,.0f}. With gamma='auto' (γ = {f['gamma_value']:.3g}) the median exponent between a validation "
            f"and a training image is {stats['median_exponent']:,.0f}, and only {stats['nonzero']} of the "
            f"{stats['entries']:,} validation–training kernel values are not exactly 0 in float64 "
            f"({stats['exact_duplicates']} of them exact duplicates, value 1; the largest value that is not a duplicate "
            f"is {stats['largest_non_duplicate']:.1e}): exp(−γd²) > 0 needs γd² < {EXP_UNDERFLOW:g}, i.e. fewer than "
            f"{EXP_UNDERFLOW / (f['gamma_value'] * 255.0 ** 2):.0f} differing pixels. "
            f"{100 * stats['train_off_diagonal_fraction_exactly_zero']:.2f}% of the off-diagonal training kernel values "
            f"are exactly 0 (train accuracy {f['train_accuracy']:.3f}). Only {stats['val_images_with_a_nonzero_value']} "
            f"of the {n_val} validation images have a nonzero kernel value to some training image; for the others "
            f"every decision value is an intercept plus rounding noise. {100 * f['most_predicted_fraction']:.0f}% of "
            f"the validation images are predicted as class {f['most_predicted_class']}, for an accuracy of "
            f"{f['val_accuracy']:.3f} ({images(results, f['val_accuracy'])} of {n_val}; the reported "
            f"{REPORTED['rbf']} is {images(results, REPORTED['rbf'])}).")


def scale_text(results: Mapping[str, Any]) -> str:
    """gamma='scale' against gamma='auto' across the pixel units."""
    stats = results["kernel_stats"]
    raw, pm1 = stats.get("raw 0..255, gamma=scale"), stats.get("[−1, 1], gamma=scale")
    if raw is None or pm1 is None:
        return ""
    rbf = (("raw pixels, scale", "raw", "scale"), ("[−1, 1], auto", "pm1", "auto"), ("[−1, 1], scale", "pm1", "scale"))
    parts = [f"{a:.3f} ({lbl})" for lbl, p, g in rbf if (a := acc(results, "rbf", p, g)) is not None]
    return (f"gamma='scale' divides by the pixel variance ({results['pixel_variance']['raw']:,.0f} for raw pixels, "
            f"{results['pixel_variance']['pm1']:.3f} for [−1, 1]), which puts the median exponent at "
            f"{raw['median_exponent']:.2f} on raw and {pm1['median_exponent']:.2f} on [−1, 1] pixels."
            + (f" RBF validation accuracy: {'; '.join(parts)}." if parts else ""))


def sweep_text(results: Mapping[str, Any]) -> str:
    """The γ sweep's numbers."""
    if not sweep_runs(results):
        return ""
    shape = sweep_shape(results)
    (e0, a0), (lo, hi) = shape["smallest"], shape["near_best"]
    return (f"The sweep (raw pixels; [−1, 1] pixels are an affine map of them, so the same exponents give the same "
            f"kernel matrix): the best accuracy, {shape['best']:.3f}, is reached at "
            + (f"exponents {lo:g}–{hi:g} (within one image of the best)" if hi > lo else f"exponent {lo:g}")
            + f"; at the smallest exponent, {e0:g}, it is {a0:.3f}.")


def reported_rows(results: Mapping[str, Any]) -> list[list[Any]]:
    """(quantity, reported, reproduced, note) for the settings that were run: on raw pixels the RBF and sigmoid
    kernels with gamma='auto', every other setting with gamma='scale'."""
    runs, stats = by_name(results), results["kernel_stats"].get("raw 0..255, gamma=auto")
    poly_pm1, rbf = acc(results, "poly", "pm1"), runs.get(run_name("rbf", "raw", "auto"))
    sig = runs.get(run_name("sigmoid", "raw", "auto"))
    notes = {
        ("poly", "raw"): f"A degree-{results['config']['degree']} kernel is not invariant to shifting the pixels"
                         + ("." if poly_pm1 is None else f"; on [−1, 1] pixels it gives {poly_pm1:.3f}."),
        ("rbf", "raw"): None if rbf is None else f"Most predicted class {rbf['final']['most_predicted_class']}: "
                        f"{100 * rbf['final']['most_predicted_fraction']:.0f}% of the images.",
        ("sigmoid", "raw"): None if sig is None or stats is None else
        f"tanh(γ·x·x′ + coef0) is exactly 1 for {100 * stats['sigmoid_fraction_exactly_one']:.1f}% of the pairs on "
        f"raw pixels; classes predicted: {sig['final']['classes_predicted']} "
        f"({100 * sig['final']['most_predicted_fraction']:.0f}% class {sig['final']['most_predicted_class']}).",
        ("rbf", "pm1"): "The properly scaled RBF kernel."}
    rows: list[list[Any]] = []
    for pixels in ("raw", "pm1"):
        for kernel in KERNELS:
            gamma = "auto" if pixels == "raw" and kernel in ("rbf", "sigmoid") else "scale"
            a, n = acc(results, kernel, pixels, gamma), images(results, REPORTED[kernel])
            if a is None:
                continue
            label = ", ".join([KERNEL_LABELS[kernel], PIXELS[pixels]] + [f"gamma='{gamma}'"] * (kernel != "linear"))
            count = f"{images(results, a) - n:+d} images against the reported count ({n} of {results['n_val']})."
            rows.append([label + (" (old default)" if (kernel, pixels) == ("rbf", "raw") else ""), REPORTED[kernel], a,
                         " ".join(filter(None, [count, notes.get((kernel, pixels))]))])
    return rows


def per_class_text(results: Mapping[str, Any], name: str) -> str:
    run = by_name(results)[name]
    ovr, recall = run["per_class"]["one_vs_rest_accuracy"], run["per_class"]["recall"]
    return (f"`{name}`: {sum(a >= 0.85 for a in ovr)} of {len(ovr)} classes have a one-vs-rest accuracy of at least "
            f"0.85; the recall ranges from {min(recall):.3f} to {max(recall):.3f}; classes never recognised: "
            f"{sum(r == 0 for r in recall)}.")


# ---------------------------------------------------------------- figures and report
def sweep_figure(path: Path, exponents: Sequence[float], accuracies: Sequence[float],
                 defaults: Mapping[str, tuple[float, float]], chance: float) -> Path:
    """RBF validation accuracy against γ × median squared distance, the defaults marked."""
    import matplotlib.pyplot as plt

    with plt.rc_context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(7.2, 4.4))
        ax.plot(exponents, accuracies, "o-", color="tab:blue", lw=1.6, ms=5, label="γ sweep (raw pixels)")
        colors = ("tab:green", "tab:olive", "tab:red", "tab:purple")
        for (label, (x, y)), marker, color in zip(defaults.items(), "sD^v", colors):
            ax.plot([x], [y], marker, color=color, ms=9, mec="black", label=label, zorder=3)
        ax.axhline(REPORTED["rbf"], color="black", ls="--", lw=1.2, label=f"reported RBF ({REPORTED['rbf']})")
        ax.axhline(chance, color="0.5", ls=":", lw=1.2, label=f"most frequent class ({chance:.3f})")
        ax.set_xscale("log")
        ax.set(xlabel="γ × median ‖x − x′‖² between training images (typical exponent)",
               ylabel="validation accuracy", title="RBF SVC: accuracy against the scale of γ", ylim=(0, 1.02))
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        return plots.save_figure(fig, path)


def report(results: dict[str, Any], out: Path) -> lib.Report:
    """report.md and its figures, from results.json alone."""
    cfg, names, runs = results["config"], results["class_names"], by_name(results)
    defaults, sweep = default_runs(results), sweep_runs(results)
    medians = results["median_squared_distance"]
    rep = lib.Report("Support-vector machines on the Gurmukhi digits", quick=results["quick"])
    rep.what_was_run(
        f"Gurmukhi digits: {results['n_train']:,} training and {results['n_val']} validation images (32×32, 1-bit; "
        "the set has no test split, so every accuracy here, and the reported ones, are on the validation split), "
        "flattened to 1,024 pixels, " + " or ".join(f"**{PIXELS[p]}**" for p in cfg["pixels"]) + " (raw: 0 = ink, "
        "255 = background, as stored; [−1, 1]: scaled to [0, 1], then normalized with mean 0.5 and std 0.5, as the "
        f"MLP study and the PyTorch tutorial do; ink −1). scikit-learn `SVC` (C = {cfg['c']:g}, degree "
        f"{cfg['degree']}, coef0 = {cfg['coef0']:g}, one-vs-one) for the kernels {', '.join(cfg['kernels'])}, under the "
        "default γ rules " + " and ".join(f"`gamma=\"{g}\"`" for g in cfg["gammas"]) + " (scale = 1/(n_features · "
        "Var x), the default since scikit-learn 0.22; auto = 1/n_features = 1/1024, the default before; the linear "
        f"kernel has no γ). Then an RBF γ sweep on the raw pixels, γ from {cfg['sweep_exponents'][0]:g} to "
        f"{cfg['sweep_exponents'][-1]:g} times 1/median‖x − x′‖² (median over training pairs: "
        + ", ".join(f"{medians[p]:,.1f} for {PIXELS[p]} pixels" for p in sorted(medians, reverse=True)) +
        "). Validation duplicates: x_val[141], x_val[150] equal x_train[852] and x_val[153], x_val[156] equal "
        "x_train[855] (see the data's SOURCES.md).")
    rep.heading("Results").table(
        ["Kernel", "Pixels", "gamma", "γ", "Validation accuracy", "Train accuracy", "Support vectors",
         "Most predicted class (share)", "Fit time"],
        [[KERNEL_LABELS[r["config"]["kernel"]], r["config"]["pixels"],
          "—" if r["config"]["kernel"] == "linear" else r["config"]["gamma"], r["final"]["gamma_value"],
          r["final"]["val_accuracy"], r["final"]["train_accuracy"], r["final"]["support_vectors"],
          f"{r['final']['most_predicted_class']} ({r['final']['most_predicted_fraction']:.2f})",
          lib.format_seconds(r["seconds"])] for r in defaults])
    labels = [r["name"].replace(PIXELS["raw"], "raw").replace(PIXELS["pm1"], "±1").replace("gamma=", "")
              for r in defaults]
    rep.figure(plots.bar_chart(out / "accuracy_by_kernel.png", labels, [r["final"]["val_accuracy"] for r in defaults],
                               "validation accuracy", "SVC defaults: kernel, pixels (raw 0..255 or ±1 = [−1, 1]), gamma rule",
                               reference=[REPORTED[r["config"]["kernel"]] for r in defaults]),
               "Validation accuracy of every default setting; the black bars are the reported numbers for each kernel.")
    rep.heading("RBF on raw pixels and the scale of γ")
    for paragraph in filter(None, (mechanism_text(results), scale_text(results), sweep_text(results))):
        rep.text(paragraph)
    rep.claims(rbf_claims(results), heading=None)
    points = {f"{PIXELS[p]}, gamma='{g}'": (default_exponent(results, p, g), acc(results, "rbf", p, g))
              for p in cfg["pixels"] for g in cfg["gammas"] if default_exponent(results, p, g) is not None}
    rep.figure(sweep_figure(out / "rbf_gamma_sweep.png", [r["config"]["exponent"] for r in sweep],
                            [r["final"]["val_accuracy"] for r in sweep], points,
                            results["most_frequent_class_accuracy"]),
               "RBF validation accuracy against γ times the median squared distance between training images. The "
               "markers are the default γ rules on raw and [−1, 1] pixels.")
    shown = shown_runs(results)
    for slug, n in shown:
        f = runs[n]["final"]
        rep.figure(plots.confusion_matrix(out / f"confusion_{slug}.png", runs[n]["confusion"], names,
                                          title=f"{n}: accuracy {f['val_accuracy']:.3f}"),
                   f"Confusion matrix, {n} (rows: true class, columns: predicted): "
                   f"{100 * f['most_predicted_fraction']:.0f}% of the images in column {f['most_predicted_class']}.")
    if shown:
        rep.heading("Per-class results").text(
            "Two per-class numbers, named apart: the **one-vs-rest accuracy** (TPₖ + TNₖ)/N, the binary \"is it k?\" "
            "accuracy (the per-class accuracy the coursework reports), and the **recall** TPₖ/Nₖ, the fraction of "
            "class k's images classified as k. The one-vs-rest accuracy cannot show a collapse (a class never predicted "
            "still scores 1 − Nₖ/N); the recall does. " + " ".join(per_class_text(results, n) for _, n in shown))
        rep.per_class_tables(names, {n: runs[n]["per_class"] for _, n in shown})
    rows = reported_rows(results)
    if rows:
        rep.reported_vs_reproduced(rows, source=SOURCE)
    return rep.claims(reported_claims(results), heading="Which setting produced the reported numbers").text(
        f"To the image: half a validation image apart or less, with scikit-learn {results['sklearn_version']}. Fit "
        "times are wall clock on a 2-core CPU that may have been shared with other jobs.")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return lib.main(NAME, Config, run, report, argv, description=__doc__, datasets=("gurmukhi",))


if __name__ == "__main__":
    main()
