"""Figure helpers every study reuses: each saves one PNG (Agg backend, dpi 120), closes the
figure and returns the path. Non-finite values (NaN, inf, None from ``results.json``) are
treated as missing, so a diverged curve simply ends.

Made to be read at a glance: curves carry point markers only when they have few points
(≤ :data:`MARKER_MAX_POINTS`), long noisy curves can be smoothed (``smooth=``, the raw curve
stays faint behind) or given a band (``bands=``), and one label keeps one colour in every
figure of a study when the study passes the same ``colors=`` mapping (:func:`palette`) to each.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from experiments.lib.results import replacing  # noqa: E402

DPI = 120
MARKER_MAX_POINTS = 15
"""Curves with at most this many points get point markers; longer ones are plain lines."""
STYLE = {
    "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9,
    "xtick.labelsize": 9, "ytick.labelsize": 9, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False, "figure.titlesize": 13,
}


def _values(seq: Any) -> np.ndarray:
    """A float array with None/NaN/±inf as NaN."""
    return np.array([np.nan if v is None else float(v) for v in np.asarray(seq, dtype=object).ravel()], float)


def _colors(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "viridis")
    return [cmap(i if n <= 10 else i / max(n - 1, 1)) for i in range(n)]


def palette(labels: Sequence[str], *, sequential: bool = False) -> dict[str, str]:
    """One colour per label, to pass as ``colors=`` to every figure of a study so that a run
    has the same colour in each (also in figures that show only some of the runs).

    Args:
      labels: every label the study's figures use, in a fixed order (e.g. the run names).
      sequential: an ordered sweep (λ, learning rate): shades of one colormap (viridis, dark to
        light) instead of ten distinct hues; also used for more than ten labels.
    Returns:
      label → hex colour.
    """
    labels = list(dict.fromkeys(str(label) for label in labels))
    n = len(labels)
    if sequential or n > 10:
        cmap = plt.get_cmap("viridis")
        shades = [cmap(0.9 * i / max(n - 1, 1)) for i in range(n)]  # 0.9: no pale yellow on white
    else:
        shades = [plt.get_cmap("tab10")(i) for i in range(n)]
    return {label: matplotlib.colors.to_hex(color) for label, color in zip(labels, shades)}


def _label_colors(labels: Sequence[str], colors: Mapping[str, Any] | None) -> list:
    """The colour of each label: ``colors[label]`` where given, else by position (as before)."""
    default = _colors(len(labels))
    return [(colors or {}).get(str(label), default[i]) for i, label in enumerate(labels)]


def smoothed(y: Any, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points, ignoring missing values inside the
    window; a missing point stays missing (a diverged curve still ends where it ended)."""
    y = _values(y)
    if window <= 1 or y.size == 0:
        return y
    finite = np.isfinite(y)
    values, counts = np.cumsum(np.where(finite, y, 0.0)), np.cumsum(finite).astype(float)

    def window_ago(running: np.ndarray) -> np.ndarray:  # running[i − window], 0 before the start
        return np.concatenate([np.zeros(window), running])[: running.size]

    with np.errstate(invalid="ignore", divide="ignore"):
        out = (values - window_ago(values)) / (counts - window_ago(counts))
    out[~finite] = np.nan
    return out


def _marker(n_points: int, markers: bool | None) -> str:
    return "o" if (markers if markers is not None else n_points <= MARKER_MAX_POINTS) else ""


def save_figure(fig: plt.Figure, path: str | Path) -> Path:
    """Saves ``fig`` to ``path`` (the format from its suffix, DPI, tight box) and closes it."""
    path = Path(path)
    try:  # into <name>.tmp, then renamed: Ctrl-C mid-draw never leaves half a PNG
        with replacing(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def learning_curves(path: str | Path, curves: Mapping[str, Mapping[str, Sequence[Any]]], title: str, *,
                    logy: bool | None = None, colors: Mapping[str, Any] | None = None, smooth: int = 0,
                    markers: bool | None = None) -> Path:
    """Loss (left) and accuracy (right) against epoch; train solid, validation dashed, one colour per label.

    Args:
      curves: label → History-like dict with "epoch", "train_loss", "val_loss",
        "train_accuracy", "val_accuracy" (any may be missing).
      logy: log-scale loss axis; by default when the finite losses span more than 100×.
      colors: label → colour (e.g. from :func:`palette`); default: tab10 by position.
      smooth: a moving average over this many checks (the raw curve stays faint behind); 0: none.
      markers: point markers; by default only on curves of ≤ :data:`MARKER_MAX_POINTS` checks.
    """
    with plt.rc_context(STYLE):
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
        losses = []
        for color, (label, h) in zip(_label_colors(list(curves), colors), curves.items()):
            series = {k: _values(v) for k, v in h.items() if v is not None and np.ndim(v) == 1}
            n = max((v.size for v in series.values()), default=0)
            epoch = series["epoch"] if series.get("epoch", np.empty(0)).size else np.arange(1, n + 1.0)
            marker = _marker(epoch.size, markers)
            for ax, kind in ((ax_loss, "loss"), (ax_acc, "accuracy")):
                for split, style in (("train", "-"), ("val", "--")):
                    y = series.get(f"{split}_{kind}", np.empty(0))[: epoch.size]
                    if y.size:
                        if smooth > 1:
                            ax.plot(epoch[: y.size], y, style, color=color, lw=0.8, alpha=0.25)
                        ax.plot(epoch[: y.size], smoothed(y, smooth), style, color=color, lw=1.6, marker=marker,
                                ms=3.5, label=label if split == "train" and kind == "loss" else None)
                        losses += list(y[np.isfinite(y)]) if kind == "loss" else []
        if all(float(e).is_integer() for h in curves.values() for e in (h.get("epoch") or []) if e is not None):
            for ax in (ax_loss, ax_acc):  # whole epochs: no "1.25" ticks
                ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        positive = [v for v in losses if v > 0]
        if logy or (logy is None and positive and max(positive) > 100 * min(positive)):
            ax_loss.set_yscale("log")
        ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
        ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
        if (len(curves) > 1 or next(iter(curves), "")) and ax_loss.get_legend_handles_labels()[1]:
            ax_loss.legend(title=None, loc="best", ncol=2 if len(curves) > 6 else 1)
        ax_acc.legend([Line2D([], [], color="0.3", ls="-"), Line2D([], [], color="0.3", ls="--")],
                      ["train", "validation"], loc="best")
        fig.suptitle(title)
        fig.tight_layout()
        return save_figure(fig, path)


def image_grid(path: str | Path, images: Any, *, shape: tuple[int, int] | None = None,
               titles: Sequence[str] | None = None, title_colors: Sequence[str] | None = None,
               ncols: int = 10, cmap: str | None = None, title: str = "", symmetric: bool = True) -> Path:
    """A grid of images: weights (``symmetric``: a diverging colormap centred at 0, one shared
    scale and colourbar) or samples (``symmetric=False``: grey) with e.g. "true 3 / pred 5" titles.

    Args:
      images: (N, H, W), or (N, H*W) with ``shape=(H, W)``.
      title_colors: one colour per title, e.g. "red" for mistakes.
    """
    images = np.asarray(images, dtype=float)
    if shape is not None:
        images = images.reshape(len(images), *shape)
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W) or (N, H*W) with shape=(H, W); got {images.shape}")
    n, ncols = len(images), max(1, min(ncols, len(images)))
    nrows = math.ceil(n / ncols)
    finite = images[np.isfinite(images)]
    if symmetric:
        m = float(np.abs(finite).max()) if finite.size else 1.0
        vmin, vmax, cmap = -m, m, cmap or "RdBu_r"
    else:
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        cmap = cmap or "gray_r"
    height, width = images.shape[1:]
    # inches: each cell is exactly one image (plus its caption), so no axes sit in empty space
    cell_w = max(1.15, min(2.4, 6.0 / ncols))  # a few images are drawn larger
    image_h = cell_w * height / width
    caption_h = 0.2 if titles is not None else 0.0  # 8-point text and its 3-point pad
    gap = 0.06
    bar_w = 0.85 if symmetric and n else 0.0
    title_h = 0.36 if title else 0.0
    fig_w = ncols * cell_w + (ncols - 1) * gap + bar_w + 0.1
    fig_h = nrows * (image_h + caption_h) + (nrows - 1) * gap + title_h + 0.1
    left, right = 0.05 / fig_w, (0.05 + ncols * cell_w + (ncols - 1) * gap) / fig_w
    bottom, top = 0.05 / fig_h, 1 - (0.05 + title_h + caption_h) / fig_h
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(fig_w, fig_h))
        grid = fig.add_gridspec(nrows, ncols, left=left, right=right, bottom=bottom, top=top,
                                wspace=gap / cell_w, hspace=(gap + caption_h) / image_h)
        axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(ncols)] for r in range(nrows)])
        for i, ax in enumerate(axes.ravel()):
            ax.axis("off")
            if i < n:
                im = ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
                if titles is not None:
                    ax.set_title(titles[i], fontsize=8, color=title_colors[i] if title_colors else "black", pad=3)
        if symmetric and n:
            span = top - bottom
            cax = fig.add_axes((right + 0.12 / fig_w, bottom + 0.1 * span, 0.14 / fig_w, 0.8 * span))
            fig.colorbar(im, cax=cax, label="weight")
        if title:
            fig.suptitle(title, y=1 - 0.05 / fig_h, va="top")
        return save_figure(fig, path)


def confusion_matrix(path: str | Path, matrix: Any, class_names: Sequence[str] | None = None,
                     title: str = "Confusion matrix") -> Path:
    """counts[true, predicted] as a heat map with the count in every cell."""
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(k))]
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(0.55 * k + 2.5, 0.55 * k + 2))
        im = ax.imshow(matrix, cmap="Blues")
        threshold = matrix.max() / 2 if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, f"{count:g}", ha="center", va="center", fontsize=8 if k > 6 else 10,
                    color="white" if count > threshold else "black")
        ax.set_xticks(range(k), names)
        ax.set_yticks(range(k), names)
        ax.set(xlabel="predicted class", ylabel="true class", title=title)
        fig.colorbar(im, ax=ax, shrink=0.8, label="count")
        return save_figure(fig, path)


def bar_chart(path: str | Path, labels: Sequence[str], values: Sequence[Any], ylabel: str, title: str, *,
              reference: float | Sequence[Any] | None = None, reference_label: str = "reported",
              digits: int = 3, colors: Mapping[str, Any] | None = None) -> Path:
    """One bar per label with its value on top ("n/a" for a missing or diverged value).

    ``reference``: one number (a dashed line) or one per bar (diamonds), e.g. the reported result.
    ``colors``: label → colour (e.g. from :func:`palette`); default: tab10 by position.
    """
    y = _values(values)
    x = np.arange(len(labels))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(max(4.5, 0.8 * len(labels) + 2), 4))
        ax.bar(x, np.nan_to_num(y), color=_label_colors(list(labels), colors), alpha=0.85, label="reproduced")
        for xi, yi in zip(x, y):  # the value at the foot of each bar, clear of any reference marker
            ax.annotate("n/a" if np.isnan(yi) else f"{yi:.{digits}f}", (xi, 0), textcoords="offset points",
                        xytext=(0, 4), ha="center", fontsize=9)
        if reference is not None:
            if np.ndim(reference) == 0:
                ax.axhline(float(reference), color="black", ls="--", lw=1.2, label=reference_label)
            else:
                ax.plot(x, _values(reference), "_", color="black", ms=28, mew=2.5, label=reference_label)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        long = max((len(str(label)) for label in labels), default=0) > 8
        ax.set_xticks(x, labels, rotation=30 if long else 0, ha="right" if long else "center")
        ax.set(ylabel=ylabel, title=title)
        ax.margins(y=0.12)
        return save_figure(fig, path)


def line_plot(path: str | Path, x: Sequence[Any] | Mapping[str, Sequence[Any]], ys: Mapping[str, Sequence[Any]],
              xlabel: str, ylabel: str, title: str, *, logx: bool = False, logy: bool = False,
              annotations: Sequence[tuple[float, float, str]] | None = None, colors: Mapping[str, Any] | None = None,
              markers: bool | None = None, smooth: int = 0,
              bands: Mapping[str, tuple[Sequence[Any], Sequence[Any]]] | None = None) -> Path:
    """One line per label, e.g. ‖w‖² against λ, accuracy against parameter count or against epoch.

    Args:
      x: the shared x values, or label → x values.
      ys: label → y values (non-finite points are left out).
      annotations: (x, y, text) points to label, e.g. the architecture of each point.
      colors: label → colour (e.g. from :func:`palette`); default: tab10 by position.
      markers: point markers; by default only when every line has ≤ :data:`MARKER_MAX_POINTS` points
        (a sweep over λ gets them, a 100-epoch curve does not).
      smooth: a moving average over this many points (the raw line stays faint behind); 0: none.
      bands: label → (lower, upper) values at the same x, shaded in the label's colour (e.g. the
        spread over seeds).
    """
    series = {label: (_values(x[label] if isinstance(x, Mapping) else x), _values(y)) for label, y in ys.items()}
    longest = max((xs.size for xs, _ in series.values()), default=0)
    marker = _marker(longest, markers)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for color, (label, (xs, y)) in zip(_label_colors(list(series), colors), series.items()):
            if label in (bands or {}):
                low, high = (_values(v) for v in bands[label])
                ax.fill_between(xs[: low.size], low, high[: low.size], color=color, alpha=0.18, lw=0)
            if smooth > 1:
                ax.plot(xs[: y.size], y, "-", color=color, lw=0.8, alpha=0.25)
            ax.plot(xs[: y.size], smoothed(y, smooth), "-", marker=marker, color=color, lw=1.6, ms=5, label=label)
        for xa, ya, text in annotations or []:
            ax.annotate(text, (xa, ya), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        ax.set_xscale("log" if logx else "linear")
        ax.set_yscale("log" if logy else "linear")
        if len(ys) > 1 or next(iter(ys), ""):
            ax.legend(loc="best")
        return save_figure(fig, path)
