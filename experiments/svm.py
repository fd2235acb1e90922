"""Support-vector machines on the Gurmukhi digits: scikit-learn's ``SVC`` with the linear,
polynomial, RBF and sigmoid kernels on the flattened 32×32 pixels (1,000 training, 178
validation images), with raw 0..255 pixels and with pixels normalized to [−1, 1], under both
of scikit-learn's default ``gamma`` rules ("scale" = 1/(n_features·Var x), the default since
0.22, and "auto" = 1/n_features, the default before). The reported RBF accuracy of 0.202 is
the collapse of an RBF kernel whose γ is far too large for the pixel units: every
exp(−γ‖x − x′‖²) underflows to 0, every validation image is equally far from every training
image, and the prediction is nearly constant. A γ sweep shows accuracy against the typical
exponent γ·‖x − x′‖². scikit-learn is an optional dependency (``pip install -e '.[svm]'``).
"""
from __future__ import annotations

import sys
import time
from typing import Any, Mapping, Sequence

import numpy as np

from experiments import common, plots
from jaxnet import data, metrics

NAME = "svm"
KERNELS = ("linear", "poly", "rbf", "sigmoid")
KERNEL_LABELS = {"linear": "linear", "poly": "polynomial (degree 3)", "rbf": "RBF", "sigmoid": "sigmoid"}
REPORTED = {"linear": 0.972, "poly": 0.966, "rbf": 0.202, "sigmoid": 0.955}
PIXELS = {"raw": "raw 0..255", "pm1": "[−1, 1]"}
GAMMAS = ("scale", "auto")
SWEEP_EXPONENTS = np.geomspace(1e-2, 1e5, 15)  # γ × (median squared distance between training images)
QUICK_EXPONENTS = np.array([1e-1, 3.0, 1e4])
SOURCE = ("the coursework's SVM baseline on the Gurmukhi pixels (scikit-learn SVC, kernels linear, "
          "polynomial, RBF, sigmoid), as quoted in the jaxnet issue")


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


def kernel_stats(x_train: np.ndarray, x_val: np.ndarray, gamma: float) -> dict[str, float]:
    """How the RBF kernel between validation and training images looks at this γ: the median
    exponent γ‖x − x′‖², the fraction of entries that underflow to exactly 0 in float64, and
    the largest entry that is not an exact duplicate (distance 0)."""
    d2 = squared_distances(x_val, x_train)
    k = np.exp(-gamma * d2)
    return {"median_exponent": float(np.median(gamma * d2)), "fraction_exactly_zero": float(np.mean(k == 0.0)),
            "nonzero": int(np.sum(k > 0.0)), "entries": int(k.size),
            "val_images_with_a_nonzero_value": int(np.sum((k > 0.0).any(axis=1))),
            "largest_non_duplicate": float(k[d2 > 0].max()), "exact_duplicates": int(np.sum(d2 == 0))}


def fit_svc(kernel: str, gamma: str | float, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
            y_val: np.ndarray) -> dict[str, Any]:
    """Fits ``SVC(kernel, gamma)`` (other arguments at their defaults) and measures it."""
    svc = svc_class()(kernel=kernel, gamma=gamma)
    started = time.perf_counter()
    svc.fit(x_train, y_train)
    seconds = time.perf_counter() - started
    predicted = svc.predict(x_val)
    confusion = np.asarray(metrics.confusion_matrix(predicted, y_val, 10))
    counts = confusion.sum(axis=0)
    return {"train_accuracy": float(np.mean(svc.predict(x_train) == y_train)),
            "val_accuracy": float(np.mean(predicted == y_val)), "confusion": confusion, "seconds": seconds,
            "gamma_value": gamma_value(gamma, x_train) if kernel != "linear" else None,
            "support_vectors": int(svc.n_support_.sum()), "most_predicted_class": int(np.argmax(counts)),
            "most_predicted_fraction": float(counts.max() / counts.sum()),
            "classes_predicted": int(np.count_nonzero(counts)),
            "recall": np.asarray(metrics.per_class_recall(confusion)).tolist(),
            "one_vs_rest": np.asarray(metrics.per_class_one_vs_rest_accuracy(confusion)).tolist()}


def run_name(kernel: str, pixels: str, gamma: str | float) -> str:
    if kernel == "linear":
        return f"linear, {PIXELS[pixels]}"
    g = gamma if isinstance(gamma, str) else f"{gamma:.3g}"
    return f"{kernel}, {PIXELS[pixels]}, gamma={g}"


def record(name: str, config: Mapping[str, Any], fit: Mapping[str, Any]) -> dict[str, Any]:
    """One fit for ``results.json``. Gurmukhi has no test split: its validation split is where
    every accuracy (and the reported ones) is measured, so ``test_accuracy`` is None."""
    final = {"train_accuracy": fit["train_accuracy"], "val_accuracy": fit["val_accuracy"], "test_accuracy": None,
             **{k: fit[k] for k in ("gamma_value", "support_vectors", "most_predicted_class",
                                    "most_predicted_fraction", "classes_predicted")}}
    return common.run_record(name, config, None, final, per_class={"recall": fit["recall"],
                             "one_vs_rest_accuracy": fit["one_vs_rest"]}, confusion=fit["confusion"],
                             seconds=fit["seconds"], diverged=False)


def sweep_figure(path, exponents: np.ndarray, accuracies: Sequence[float],
                 defaults: Mapping[str, tuple[float, float]], chance: float):
    """RBF validation accuracy against γ × median squared distance, the defaults marked."""
    import matplotlib.pyplot as plt

    with plt.rc_context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(7.2, 4.4))
        ax.plot(exponents, accuracies, "o-", color="tab:blue", lw=1.6, ms=5, label="γ sweep (raw pixels)")
        markers = iter(("s", "D", "^", "v"))
        for (label, (x, y)), color in zip(defaults.items(), ("tab:green", "tab:olive", "tab:red", "tab:purple")):
            ax.plot([x], [y], next(markers), color=color, ms=9, mec="black", label=label, zorder=3)
        ax.axhline(REPORTED["rbf"], color="black", ls="--", lw=1.2, label=f"reported RBF ({REPORTED['rbf']})")
        ax.axhline(chance, color="0.5", ls=":", lw=1.2, label=f"most frequent class ({chance:.3f})")
        ax.set_xscale("log")
        ax.set(xlabel="γ × median ‖x − x′‖² between training images (typical exponent)",
               ylabel="validation accuracy", title="RBF SVC: accuracy against the scale of γ", ylim=(0, 1.02))
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        return plots._save(fig, path)  # noqa: SLF001  the shared saver (dpi, tight box, close)


def main(argv: list[str] | None = None) -> dict:
    args = common.parser(NAME, __doc__, default_epochs=1).parse_args(argv)
    study = common.start(NAME, args, sys.argv[1:] if argv is None else argv)
    svc_class()  # fail early, with the install hint, if scikit-learn is missing
    ds = data.load("gurmukhi", root=args.gurmukhi)
    y_train, y_val = np.asarray(ds.y_train), np.asarray(ds.y_test)
    x = {p: (features(ds.x_train, p), features(ds.x_test, p)) for p in PIXELS}

    runs: list[dict[str, Any]] = []
    for pixels in PIXELS:
        for kernel in KERNELS:
            for gamma in (GAMMAS[:1] if kernel == "linear" else GAMMAS):
                name = run_name(kernel, pixels, gamma)
                previous = study.previous_run(name)
                if previous is None:
                    fit = fit_svc(kernel, gamma, x[pixels][0], y_train, x[pixels][1], y_val)
                    previous = record(name, {"kernel": kernel, "pixels": PIXELS[pixels], "gamma": gamma,
                                             "C": 1.0, "degree": 3, "coef0": 0.0, "part": "defaults"}, fit)
                runs.append(previous)
                study.log(f"{name}: validation accuracy {previous['final']['val_accuracy']:.3f}")
    by_name = {r["name"]: r for r in runs}

    # the γ sweep, on raw pixels (on [−1, 1] pixels the same exponents give the same kernel matrix)
    x_raw, xv_raw = x["raw"]
    median_d2 = float(np.median(squared_distances(x_raw, x_raw)[np.triu_indices(len(x_raw), 1)]))
    exponents = QUICK_EXPONENTS if args.quick else SWEEP_EXPONENTS
    sweep_runs = []
    for e in exponents:
        gamma = float(e / median_d2)
        name = run_name("rbf", "raw", gamma)
        run = study.previous_run(name) or record(
            name, {"kernel": "rbf", "pixels": PIXELS["raw"], "gamma": gamma, "exponent": float(e), "C": 1.0,
                   "part": "gamma sweep"}, fit_svc("rbf", gamma, x_raw, y_train, xv_raw, y_val))
        sweep_runs.append(run)
    runs += sweep_runs
    study.checkpoint(runs)

    stats = {f"{PIXELS[p]}, gamma={g}": kernel_stats(x[p][0], x[p][1], gamma_value(g, x[p][0]))
             for p in PIXELS for g in GAMMAS}
    median_pm1 = float(np.median(squared_distances(x["pm1"][0], x["pm1"][0])[np.triu_indices(len(x_raw), 1)]))
    acc = lambda kernel, pixels, gamma="scale": by_name[run_name(kernel, pixels, gamma)]["final"]["val_accuracy"]  # noqa: E731
    chance = float(np.bincount(y_val).max() / len(y_val))

    # figures
    default_runs = [r for r in runs if r["config"].get("part") == "defaults"]
    short = {"raw 0..255": "raw", "[−1, 1]": "±1"}
    labels = [", ".join([r["config"]["kernel"], short[r["config"]["pixels"]]]
                        + ([] if r["config"]["kernel"] == "linear" else [r["config"]["gamma"]])) for r in default_runs]
    bars = plots.bar_chart(study.path("accuracy_by_kernel.png"), labels,
                           [r["final"]["val_accuracy"] for r in default_runs], "validation accuracy",
                           "SVC defaults: kernel, pixels (raw 0..255 or ±1 = [−1, 1]), gamma rule",
                           reference=[REPORTED[r["config"]["kernel"]] for r in default_runs])
    default_points = {}
    for p, median in (("raw", median_d2), ("pm1", median_pm1)):
        for g in GAMMAS:
            default_points[f"{PIXELS[p]}, gamma='{g}'"] = (gamma_value(g, x[p][0]) * median, acc("rbf", p, g))
    sweep_fig = sweep_figure(study.path("rbf_gamma_sweep.png"), np.array([r["config"]["exponent"] for r in sweep_runs]),
                             [r["final"]["val_accuracy"] for r in sweep_runs], default_points, chance)
    collapsed, proper = run_name("rbf", "raw", "auto"), run_name("rbf", "pm1", "scale")
    confusion_figs = [plots.confusion_matrix(study.path(f"confusion_{slug}.png"), by_name[n]["confusion"],
                                             ds.class_names, title=f"{n}: accuracy {by_name[n]['final']['val_accuracy']:.3f}")
                      for slug, n in (("rbf_raw_auto", collapsed), ("rbf_pm1_scale", proper))]

    # report
    hits = [round(float(r["config"]["exponent"]), 1) for r in sweep_runs
            if round(r["final"]["val_accuracy"] * len(y_val)) == round(REPORTED["rbf"] * len(y_val))]
    raw_auto, c = stats["raw 0..255, gamma=auto"], by_name[collapsed]["final"]
    report = study.report("Support-vector machines on the Gurmukhi digits")
    report.what_was_run(
        f"Gurmukhi digits: {len(y_train):,} training and {len(y_val)} validation images (32×32, 1-bit; the set has "
        "no test split, so every accuracy here, and the reported ones, are on the validation split), flattened to "
        "1,024 pixels, either **raw 0..255** (0 = ink, 255 = background, as stored) or **[−1, 1]** (scaled to "
        "[0, 1], then normalized with mean 0.5 and std 0.5, as the MLP study and the PyTorch tutorial do; ink −1). "
        "scikit-learn `SVC` with its defaults (C = 1, degree 3, coef0 = 0, one-vs-one) for the linear, polynomial, "
        "RBF and sigmoid kernels, under both default γ rules: `gamma=\"scale\"` = 1/(n_features · Var x) (the "
        "default since scikit-learn 0.22) and `gamma=\"auto\"` = 1/n_features = 1/1024 (the default before; the "
        "linear kernel has no γ). Then an RBF γ sweep on the raw pixels, γ from "
        f"{exponents[0]:g} to {exponents[-1]:g} times 1/median‖x − x′‖² (median over training pairs: "
        f"{median_d2:,.0f} for raw pixels, {median_pm1:,.1f} for [−1, 1] pixels). Validation duplicates: "
        "x_val[141], x_val[150] equal x_train[852] and x_val[153], x_val[156] equal x_train[855] "
        "(see the data's SOURCES.md).")
    report.heading("Results").table(
        ["Kernel", "Pixels", "gamma", "γ", "Validation accuracy", "Train accuracy", "Support vectors",
         "Most predicted class (share)", "Fit time"],
        [[KERNEL_LABELS[r["config"]["kernel"]], r["config"]["pixels"],
          "—" if r["config"]["kernel"] == "linear" else r["config"]["gamma"], r["final"]["gamma_value"],
          r["final"]["val_accuracy"], r["final"]["train_accuracy"], r["final"]["support_vectors"],
          f"{r['final']['most_predicted_class']} ({r['final']['most_predicted_fraction']:.2f})",
          common.format_seconds(r["seconds"])] for r in default_runs])
    report.figure(bars, "Validation accuracy of every default setting; the black bars are the reported "
                        "numbers for each kernel.")
    report.heading("Why RBF gives 0.2 on raw pixels").text(
        f"The RBF kernel is k(x, x′) = exp(−γ‖x − x′‖²). On raw 0..255 pixels two images that differ in m pixels "
        f"are 255²·m = 65,025·m apart, so the median squared distance between training images is {median_d2:,.0f}. "
        f"With `gamma=\"auto\"` = 1/1024 the median exponent between a validation and a training image is "
        f"{raw_auto['median_exponent']:,.0f}: only {raw_auto['nonzero']} of the {raw_auto['entries']:,} "
        "validation-training kernel values are not exactly 0 in float64, the "
        f"{raw_auto['exact_duplicates']} exact duplicates (value 1) and a few near-identical pairs (the largest "
        f"value that is not a duplicate is {raw_auto['largest_non_duplicate']:.1e}). The kernel matrix is "
        "numerically the identity (so every training image is fitted, train accuracy "
        f"{c['train_accuracy']:.3f}): "
        "most validation images are equally (infinitely) far from every training image, their decision values are "
        "the intercepts plus rounding noise, and the prediction is nearly constant: the "
        f"{raw_auto['val_images_with_a_nonzero_value']} validation images with a nonzero kernel value to some "
        "training image (exp(−γd²) > 0 in float64 needs γd² < 745, i.e. fewer than 12 differing pixels: "
        "near-duplicates) mostly take its label, all others one class. Here "
        f"{100 * c['most_predicted_fraction']:.0f}% of the validation images are predicted as class "
        f"{c['most_predicted_class']}, for an accuracy of {c['val_accuracy']:.3f}; which class absorbs the "
        "predictions is decided by rounding-level differences, so the reported 0.202 (36 of 178) is the same "
        "failure landing on another class.\n\n"
        f"`gamma=\"scale\"` divides by the pixel variance ({x_raw.var():,.0f} for raw pixels), which puts the "
        f"typical exponent near 2 whatever the units: raw pixels then give {acc('rbf', 'raw'):.3f}. Scaling the "
        f"pixels properly does the same for `gamma=\"auto\"`: on [−1, 1] pixels RBF reaches "
        f"{acc('rbf', 'pm1', 'auto'):.3f} (auto) and {acc('rbf', 'pm1'):.3f} (scale). The sweep shows the whole "
        "picture: accuracy is a function of the typical exponent γ·‖x − x′‖² only (the pixel units merely move "
        "γ), near its best for exponents around 0.3–3, falling slowly as γ → 0 (the kernel becomes nearly "
        "linear in the distance) and collapsing beyond about 10, once most kernel values vanish. In the "
        "collapsed range the accuracy jumps about as the near-constant class changes"
        + (f"; at exponents {', '.join(f'{e:g}' for e in hits)} it is exactly the reported 0.202 (36 of 178)."
           if hits else "."))
    report.figure(sweep_fig, "RBF validation accuracy against γ times the median squared distance between "
                             "training images. The markers are the two default γ rules on raw and [−1, 1] pixels; "
                             "raw pixels with gamma='auto' sit deep in the collapsed range.")
    report.figure(confusion_figs[0], f"Confusion matrix, {collapsed}: nearly every image in one column "
                                     "(rows: true class, columns: predicted).")
    report.figure(confusion_figs[1], f"Confusion matrix, {proper}: the properly scaled RBF SVM.")
    report.heading("Per-class results").text(
        "Two per-class numbers, named apart: the **one-vs-rest accuracy** (TPₖ + TNₖ)/N, the binary \"is it k?\" "
        "accuracy (the per-class accuracy the coursework reports), which stays near 0.9 for most classes even "
        "for the collapsed model; and the **recall** TPₖ/Nₖ, the fraction of class k's images classified as k, "
        "which shows the collapse.")
    report.per_class_tables(ds.class_names, {name: by_name[name]["per_class"] for name in (collapsed, proper)})

    rows = [
        ["linear, raw 0..255", REPORTED["linear"], acc("linear", "raw"),
         "Identical with [−1, 1] pixels."],
        ["polynomial, raw 0..255, either gamma", REPORTED["poly"], acc("poly", "raw"),
         f"Two images more than reported; on [−1, 1] pixels the polynomial kernel gives {acc('poly', 'pm1'):.3f}, "
         "so the reported run most likely used the tutorial's normalized pixels (a degree-3 kernel with coef0 = 0 "
         "is not invariant to shifting the pixels)."],
        ["RBF, raw 0..255, gamma='auto' (old default)", REPORTED["rbf"], acc("rbf", "raw", "auto"),
         f"The same collapse as reported (near-constant prediction, here {100 * c['most_predicted_fraction']:.0f}% "
         f"class {c['most_predicted_class']}); which class absorbs the predictions, hence the exact accuracy, is "
         "decided by rounding-level differences and changes with γ (see the sweep), so it need not agree between "
         "libsvm builds. No default γ gives 0.202 here; the sweep's collapsed range does."],
        ["sigmoid, raw 0..255, gamma='auto'", REPORTED["sigmoid"], acc("sigmoid", "raw", "auto"),
         f"tanh(γ·x·x′) saturates at +1 for every pair on raw pixels: a constant prediction. With gamma='scale' "
         f"raw pixels give {acc('sigmoid', 'raw'):.3f}; only [−1, 1] pixels reproduce 0.955 (row below)."],
        ["linear, [−1, 1]", REPORTED["linear"], acc("linear", "pm1"), ""],
        ["polynomial, [−1, 1], gamma='scale'", REPORTED["poly"], acc("poly", "pm1"), ""],
        ["RBF, [−1, 1], gamma='scale'", REPORTED["rbf"], acc("rbf", "pm1"),
         "The properly scaled RBF kernel: it does not collapse, so it is not the reported setting for RBF."],
        ["sigmoid, [−1, 1], gamma='scale'", REPORTED["sigmoid"], acc("sigmoid", "pm1"), ""],
    ]
    report.reported_vs_reproduced(rows, source=SOURCE)
    report.text(
        "**Which setting produced the reported numbers.** No single setting reproduces all four with scikit-learn "
        f"{svc_version()}: [−1, 1] pixels with the default γ (either rule) reproduce linear, polynomial and sigmoid "
        "exactly, but not RBF's 0.202, whose only explanation is a γ far too large for the pixel units: raw "
        "0..255 pixels with `gamma=\"auto\"` (1/n_features, the default before scikit-learn 0.22), or an "
        "equivalent explicit γ. With the current default `gamma=\"scale\"` raw pixels give RBF "
        f"{acc('rbf', 'raw'):.3f}. Fit times are wall clock on a 2-core CPU that may have been shared with "
        "other jobs.")
    headline = ("RBF accuracy, [−1, 1] pixels", acc("rbf", "pm1"))
    results = study.results(runs, headline=headline, reported=REPORTED, kernel_stats=stats,
                            median_squared_distance={"raw": median_d2, "pm1": median_pm1},
                            most_frequent_class_accuracy=chance, sklearn_version=svc_version())
    return study.finish(results, report)


def svc_version() -> str:
    import sklearn

    return sklearn.__version__


if __name__ == "__main__":
    main()
