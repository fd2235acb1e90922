"""experiments.lib.plots: markers only on short curves, smoothing, bands, one colour per label
across figures, and weight grids without an empty band under the title."""
from __future__ import annotations

from pathlib import Path

import matplotlib.colors as mcolors
import matplotlib.image as mpimg
import numpy as np
import pytest

from experiments.lib import plots


@pytest.fixture
def figures(monkeypatch):
    """Every figure a plot function saves, inspected just before it is closed."""
    seen = []
    save = plots.save_figure

    def keep(fig, path):
        seen.append([(line.get_label(), line.get_marker(), mcolors.to_hex(line.get_color()), line.get_alpha())
                     for ax in fig.axes for line in ax.get_lines()])
        seen[-1].append(("collections", sum(len(ax.collections) for ax in fig.axes), None, None))
        return save(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    return seen


def labelled(lines):
    return {label: (marker, color) for label, marker, color, _ in lines if not label.startswith("_")
            and label != "collections"}


def test_markers_only_on_short_curves(tmp_path: Path, figures):
    plots.line_plot(tmp_path / "few.png", [0.001, 0.01, 0.1], {"a": [3, 2, 1]}, "λ", "‖w‖²", "few")
    plots.line_plot(tmp_path / "many.png", np.arange(100), {"a": np.linspace(0, 1, 100)}, "epoch", "acc", "many")
    plots.line_plot(tmp_path / "forced.png", np.arange(100), {"a": np.linspace(0, 1, 100)}, "epoch", "acc", "x",
                    markers=True)
    assert labelled(figures[0])["a"][0] == "o"
    assert labelled(figures[1])["a"][0] in ("", "None")
    assert labelled(figures[2])["a"][0] == "o"
    history = {"epoch": list(range(1, 101)), "train_loss": list(np.linspace(2, 0.1, 100)),
               "val_loss": list(np.linspace(2, 0.5, 100))}
    plots.learning_curves(tmp_path / "long.png", {"run": history}, "long")
    plots.learning_curves(tmp_path / "short.png", {"run": {k: v[:5] for k, v in history.items()}}, "short")
    assert {m for _, m, _, _ in figures[3][:-1]} <= {"", "None"}
    assert "o" in {m for _, m, _, _ in figures[4][:-1]}


def test_palette_keeps_a_label_s_colour_across_figures(tmp_path: Path, figures):
    names = ["λ=0", "λ=0.001", "λ=0.01", "λ=0.1"]
    colors = plots.palette(names, sequential=True)
    assert list(colors) == names and len(set(colors.values())) == 4
    assert plots.palette(names) == plots.palette(names)  # deterministic
    assert len(set(plots.palette([f"run {i}" for i in range(12)]).values())) == 12
    curves = {n: {"epoch": [1, 2, 3], "train_loss": [3, 2, 1], "val_loss": [3, 2.5, 2]} for n in names}
    plots.learning_curves(tmp_path / "all.png", curves, "all", colors=colors)
    plots.line_plot(tmp_path / "some.png", [1, 2, 3], {n: [1, 2, 3] for n in names[2:]}, "epoch", "x", "subset",
                    colors=colors)
    plots.bar_chart(tmp_path / "bars.png", names[1:], [0.9, 0.8, 0.7], "acc", "bars", colors=colors)
    assert {n: c for n, (_, c) in labelled(figures[0]).items()} == colors
    assert {n: c for n, (_, c) in labelled(figures[1]).items()} == {n: colors[n] for n in names[2:]}
    # without colors= the old positional colours: the subset's first line would take tab10's first colour
    plots.line_plot(tmp_path / "positional.png", [1, 2, 3], {n: [1, 2, 3] for n in names[2:]}, "epoch", "x", "p")
    assert labelled(figures[3])["λ=0.01"][1] == mcolors.to_hex("tab:blue")


def test_smoothing_and_bands(tmp_path: Path, figures):
    y = [1.0, 3.0, None, 5.0, 7.0, float("nan"), 9.0]
    s = plots.smoothed(y, 2)
    np.testing.assert_allclose(s, [1.0, 2.0, np.nan, 5.0, 6.0, np.nan, 9.0])
    np.testing.assert_allclose(plots.smoothed([1, 2, 3, 4], 3), [1.0, 1.5, 2.0, 3.0])
    np.testing.assert_allclose(plots.smoothed([1, 2], 0), [1, 2])
    x = np.arange(50)
    noisy = np.sin(x / 5) + np.random.default_rng(0).normal(0, 0.3, 50)
    plots.line_plot(tmp_path / "smooth.png", x, {"a": noisy}, "epoch", "y", "smoothed", smooth=5,
                    bands={"a": (noisy - 0.2, noisy + 0.2)})
    lines = figures[0]
    raw = [line for line in lines if line[3] == 0.25]
    assert len(raw) == 1 and raw[0][0].startswith("_")  # the raw curve: faint and not in the legend
    assert lines[-1] == ("collections", 1, None, None)  # the band


def blank_band_under_title(path: Path) -> int:
    """Rows of pure background between the title's last ink row and the first image row."""
    image = mpimg.imread(path)[..., :3]
    blank = (image > 0.97).all(axis=(1, 2))
    inked = np.flatnonzero(~blank)
    title_end = inked[0] + np.argmax(blank[inked[0]:])  # first blank row after the title begins
    return int(np.argmax(~blank[title_end:]))


def test_weight_grid_has_no_empty_band_under_the_title(tmp_path: Path):
    weights = np.random.default_rng(0).normal(size=(64, 784))
    path = plots.image_grid(tmp_path / "w.png", weights, shape=(28, 28), ncols=8,
                            title="First-layer weights (one 28×28 image per hidden unit)")
    band = blank_band_under_title(path)
    assert band < 0.3 * plots.DPI, f"{band} empty pixel rows under the title"  # it was ~125 (1 inch)
    samples = np.random.default_rng(1).random((12, 28, 28))
    path = plots.image_grid(tmp_path / "s.png", samples, titles=[f"true {i} / pred {i}" for i in range(12)],
                            ncols=6, symmetric=False, title="Samples")
    assert blank_band_under_title(path) < 0.3 * plots.DPI
    with pytest.raises(ValueError, match="images must be"):
        plots.image_grid(tmp_path / "bad.png", np.zeros((2, 3, 4, 5)))


def test_an_interrupted_figure_keeps_the_earlier_one_whole(tmp_path: Path, monkeypatch):
    """Ctrl-C while a figure is being written: the earlier PNG stays readable and no
    ``*.tmp`` is left (the figure goes to ``<name>.tmp``, then is renamed)."""
    weights = np.random.default_rng(0).normal(size=(4, 784))
    path = plots.image_grid(tmp_path / "w.png", weights, shape=(28, 28), ncols=2)
    before = path.read_bytes()
    savefig = plots.plt.Figure.savefig

    def interrupted(fig, fname, **kwargs):
        savefig(fig, fname, **kwargs)
        Path(fname).write_bytes(Path(fname).read_bytes()[:100])  # half a file, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(plots.plt.Figure, "savefig", interrupted)
    with pytest.raises(KeyboardInterrupt):
        plots.image_grid(path, -weights, shape=(28, 28), ncols=2)
    assert path.read_bytes() == before and mpimg.imread(path).ndim == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.png"]
