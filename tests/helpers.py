"""Pytree comparison helpers for the tests (in the spirit of equinox's ``tree_allclose``).

``tree_allclose`` answers yes/no; ``tree_max_relative_error`` gives the number to put in an
assertion message, so a failing gradient check says by how much it failed.
"""
from __future__ import annotations

import contextlib

import jax
import numpy as np
import pytest


def _as_numpy(leaf):
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)  # typed PRNG keys compare by their raw bits
    return np.asarray(leaf)


def _leaves(tree):
    leaves, treedef = jax.tree.flatten(tree)
    return [_as_numpy(leaf) for leaf in leaves], treedef


def _same_structure(x, y) -> bool:
    x_leaves, x_def = _leaves(x)
    y_leaves, y_def = _leaves(y)
    return x_def == y_def and all(a.shape == b.shape for a, b in zip(x_leaves, y_leaves))


def tree_allclose(x, y, *, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """True if ``x`` and ``y`` have the same tree structure, the same leaf shapes and dtypes,
    and every pair of leaves is ``np.allclose(rtol=rtol, atol=atol)``."""
    if not _same_structure(x, y):
        return False
    x_leaves, _ = _leaves(x)
    y_leaves, _ = _leaves(y)
    return all(
        a.dtype == b.dtype and np.allclose(a, b, rtol=rtol, atol=atol)
        for a, b in zip(x_leaves, y_leaves)
    )


def tree_max_relative_error(actual, expected, *, floor: float = 0.0) -> float:
    """max over all elements of |actual − expected| / max(|expected|, floor).

    ``floor`` keeps entries that are (nearly) zero from turning rounding noise into a huge
    relative error; with ``floor=0`` an exact zero must be matched exactly. Raises
    ValueError if the two trees differ in structure or leaf shapes.
    """
    if not _same_structure(actual, expected):
        raise ValueError(
            "trees differ in structure or leaf shapes: "
            f"{jax.tree.map(np.shape, actual)} vs {jax.tree.map(np.shape, expected)}"
        )
    worst = 0.0
    a_leaves, _ = _leaves(actual)
    e_leaves, _ = _leaves(expected)
    for a, e in zip(a_leaves, e_leaves):
        if a.size == 0:
            continue
        a = a.astype(np.float64)
        e = e.astype(np.float64)
        error = np.abs(a - e)
        scale = np.maximum(np.abs(e), floor)
        with np.errstate(divide="ignore", invalid="ignore"):
            # x/0 is inf (a wrong exact zero); 0/0 (both exactly zero) is no error.
            ratio = np.where(error == 0, 0.0, error / scale)
        worst = max(worst, float(np.max(ratio)))
    return worst


def report_figures(out) -> list[str]:
    """The PNG files a study's report.md links to."""
    import re
    from pathlib import Path

    return re.findall(r"\]\(([^)]+\.png)\)", (Path(out) / "report.md").read_text())


def assert_report_only_rebuilds(main, out) -> None:
    """Deletes the figures of a finished study in ``out``, runs ``main(["--report-only", …])``
    and asserts that report.md comes back byte-identical and every linked figure is drawn again."""
    from pathlib import Path

    out = Path(out)
    before = (out / "report.md").read_bytes()
    for png in out.glob("*.png"):
        png.unlink()
    main(["--report-only", "--out", str(out)])
    assert (out / "report.md").read_bytes() == before
    assert all((out / link).exists() for link in report_figures(out))


def _perturbed(value, rng):
    """``value`` with every float scaled by its own random factor in [0.5, 1.5) (ints, bools
    and strings kept), so that anything computed from the numbers moves."""
    if isinstance(value, dict):  # the settings stay: claims look their runs up by them
        return {k: v if k == "config" else _perturbed(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [_perturbed(v, rng) for v in value]
    if isinstance(value, float) and value == value:
        return value * float(rng.uniform(0.5, 1.5))
    return value


def assert_claims_are_computed(claims_fn, results, *, seeds: int = 3) -> None:
    """The generic test of a study's claims (experiments.lib.claims): each claim's numbers are
    computed from ``results`` (perturbing the results' floats moves them), and its words follow
    the numbers (swapping them flips the verdict and the sentence)."""
    from experiments.lib.claims import sentence

    claims = claims_fn(results)
    assert claims, "the study states no claim"
    runs = [claims_fn(_perturbed(results, np.random.default_rng(seed))) for seed in range(seeds)]
    for moved in runs:
        assert [c.subject for c in moved] == [c.subject for c in claims]
    for k, before in enumerate(claims):
        sides = [("a", before.a_label)] + ([] if before.reference else [("b", before.b_label)])
        for side, label in sides:
            value = getattr(before, side)
            if isinstance(value, float) and np.isfinite(value):  # a side not measured has nothing to move
                # an argmin or a clipped number may stay put by chance under one perturbation, not under all
                assert any(getattr(moved[k], side) != value for moved in runs), (
                    f"claim {before.subject!r}: {label} ignores the results")
    for claim in claims:
        if claim.measured and claim.a != claim.b and abs(claim.a - claim.b) > claim.margin:
            swapped = claim.swapped()
            assert swapped.holds != claim.holds and sentence(swapped) != sentence(claim), claim.subject


def _members(kwargs: dict) -> int:
    """A sweep's member count K: the length of any per-member sequence it was given."""
    for key in ("learning_rate", "l2", "init_seed", "data_seed", "labels", "indices"):
        if kwargs.get(key) is not None:
            return len(kwargs[key])
    return 1


@contextlib.contextmanager
def engine_received():
    """Yields a list that fills with what ``jaxnet.engine.fit`` and ``sweep`` were asked to train,
    one ``{"learning_rate", "l2", "epochs"}`` per member (the learning rate read from the
    optimizer's state where no per-member value is passed). The engine itself runs as usual."""
    from jaxnet import engine, train

    received, fit, sweep = [], engine.fit, engine.sweep

    def optimizer_rate(optimizer, params):
        return float(train.hyperparams(optimizer.init(params))["learning_rate"])

    def spy_fit(model, params, optimizer, train_data, **kwargs):
        received.append({"learning_rate": optimizer_rate(optimizer, params), "l2": kwargs.get("l2"),
                         "epochs": kwargs.get("epochs")})
        return fit(model, params, optimizer, train_data, **kwargs)

    def spy_sweep(model, optimizer, train_data, **kwargs):
        k = _members(kwargs)
        rates = kwargs.get("learning_rate") or [optimizer_rate(optimizer, model.init(jax.random.key(0)))] * k
        l2 = kwargs.get("l2") or [None] * k
        received.extend({"learning_rate": float(r), "l2": None if v is None else float(v), "epochs": kwargs.get("epochs")}
                        for r, v in zip(rates, l2))
        return sweep(model, optimizer, train_data, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "fit", spy_fit)
        patch.setattr(engine, "sweep", spy_sweep)
        yield received


def assert_records_are_what_ran(results: dict, received: list[dict], *, l2_key: str = "l2") -> None:
    """Every run record's learning rate, λ (``config[l2_key]``) and epochs are those of a member the
    engine trained (nanoGPT's rule: what is recorded is what ran), compared at float32 precision."""
    assert received, "the engine trained nothing"
    ran = [(m["learning_rate"], m["l2"] or 0.0, m["epochs"]) for m in received]
    for run in results["runs"]:
        config = run["config"]
        if "learning_rate" not in config:
            continue
        recorded = (config["learning_rate"], config.get(l2_key) or 0.0, config.get("epochs"))
        assert any(r[0] == pytest.approx(recorded[0], rel=1e-6) and r[1] == pytest.approx(recorded[1], rel=1e-6)
                   and (recorded[2] is None or r[2] == recorded[2]) for r in ran), (
            f"run {run['name']!r} records learning rate {recorded[0]}, λ {recorded[1]}, {recorded[2]} epochs; "
            f"the engine trained {sorted(set(ran))}")
