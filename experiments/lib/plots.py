"""Figure helpers every study reuses: each saves one PNG (Agg backend, dpi 120), closes the
figure and returns the path. Non-finite values (NaN, inf, None from ``results.json``) are
treated as missing, so a diverged curve simply ends."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

DPI = 120
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


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def learning_curves(path: str | Path, curves: Mapping[str, Mapping[str, Sequence[Any]]], title: str, *,
                    logy: bool | None = None) -> Path:
    """Loss (left) and accuracy (right) against epoch; train solid, validation dashed, one colour per label.

    Args:
      curves: label → History-like dict with "epoch", "train_loss", "val_loss",
        "train_accuracy", "val_accuracy" (any may be missing).
      logy: log-scale loss axis; by default when the finite losses span more than 100×.
    """
    with plt.rc_context(STYLE):
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
        losses = []
        for color, (label, h) in zip(_colors(len(curves)), curves.items()):
            series = {k: _values(v) for k, v in h.items() if v is not None and np.ndim(v) == 1}
            n = max((v.size for v in series.values()), default=0)
            epoch = series["epoch"] if series.get("epoch", np.empty(0)).size else np.arange(1, n + 1.0)
            for ax, kind in ((ax_loss, "loss"), (ax_acc, "accuracy")):
                for split, style in (("train", "-"), ("val", "--")):
                    y = series.get(f"{split}_{kind}", np.empty(0))[: epoch.size]
                    if y.size:
                        ax.plot(epoch[: y.size], y, style, color=color, lw=1.6,
                                label=label if split == "train" and kind == "loss" else None)
                        losses += list(y[np.isfinite(y)]) if kind == "loss" else []
        positive = [v for v in losses if v > 0]
        if logy or (logy is None and positive and max(positive) > 100 * min(positive)):
            ax_loss.set_yscale("log")
        ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
        ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
        if len(curves) > 1 or next(iter(curves), ""):
            ax_loss.legend(title=None, loc="best", ncol=2 if len(curves) > 6 else 1)
        ax_acc.legend([Line2D([], [], color="0.3", ls="-"), Line2D([], [], color="0.3", ls="--")],
                      ["train", "validation"], loc="best")
        fig.suptitle(title)
        fig.tight_layout()
        return _save(fig, path)


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
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(1.25 * ncols + (0.8 if symmetric else 0), 1.35 * nrows + 0.5),
                                 squeeze=False)
        for i, ax in enumerate(axes.ravel()):
            ax.axis("off")
            if i < n:
                im = ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
                if titles is not None:
                    ax.set_title(titles[i], fontsize=8, color=title_colors[i] if title_colors else "black")
        if symmetric and n:
            fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="weight")
        if title:
            fig.suptitle(title)
        return _save(fig, path)


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
        return _save(fig, path)


def bar_chart(path: str | Path, labels: Sequence[str], values: Sequence[Any], ylabel: str, title: str, *,
              reference: float | Sequence[Any] | None = None, reference_label: str = "reported",
              digits: int = 3) -> Path:
    """One bar per label with its value on top ("n/a" for a missing or diverged value).

    ``reference``: one number (a dashed line) or one per bar (diamonds), e.g. the reported result.
    """
    y = _values(values)
    x = np.arange(len(labels))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(max(4.5, 0.8 * len(labels) + 2), 4))
        ax.bar(x, np.nan_to_num(y), color=_colors(len(labels)), alpha=0.85, label="reproduced")
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
        return _save(fig, path)


def line_plot(path: str | Path, x: Sequence[Any] | Mapping[str, Sequence[Any]], ys: Mapping[str, Sequence[Any]],
              xlabel: str, ylabel: str, title: str, *, logx: bool = False, logy: bool = False,
              annotations: Sequence[tuple[float, float, str]] | None = None) -> Path:
    """One line with markers per label, e.g. ‖w‖² against λ or accuracy against parameter count.

    Args:
      x: the shared x values, or label → x values.
      ys: label → y values (non-finite points are left out).
      annotations: (x, y, text) points to label, e.g. the architecture of each point.
    """
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for color, (label, y) in zip(_colors(len(ys)), ys.items()):
            xs = _values(x[label] if isinstance(x, Mapping) else x)
            ax.plot(xs, _values(y), "o-", color=color, lw=1.6, ms=5, label=label)
        for xa, ya, text in annotations or []:
            ax.annotate(text, (xa, ya), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        ax.set_xscale("log" if logx else "linear")
        ax.set_yscale("log" if logy else "linear")
        if len(ys) > 1 or next(iter(ys), ""):
            ax.legend(loc="best")
        return _save(fig, path)
