"""The Nielsen chapter-3 study: one --quick run shared by the tests (schema, report-only, claims that
come from results.json and flip), the book's conventions (λ, the cross-entropy update, the
programs' layout), and experiments.train re-running a row without code."""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import lib
from experiments import nielsen as study
from experiments.lib import claims as claims_lib
from experiments.lib.results import HISTORY_KEYS
from jaxnet import losses, mlp, train


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("nielsen") / "run"
    return out, study.main(["--quick", "--out", str(out), "--quiet"])


def _figures(out: Path) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", (out / "report.md").read_text())


def test_quick_run_writes_every_row_with_its_seeds(quick):
    out, results = quick
    lib.check_results(results)
    assert lib.read_results(out)["complete"] is True
    config = study.Config(out=out, quick=True, quiet=True).quick_variant()
    assert results["config"] == lib.to_jsonable(dataclasses.asdict(config))
    assert set(results["summary"]) == set(study.ROWS)
    seeds = config.seed_count
    for row in ("overfitting", "regularized", "overfitting_full", "regularized_full"):
        members = study.members_of(results, row)
        assert [r["config"]["seed"] for r in members] == study.seeds_of(config)
        for r in members:
            assert set(HISTORY_KEYS) <= set(r["history"]) and len(r["history"]["test_accuracy"]) == r["config"]["epochs"]
            assert r["config"]["init"] == "nielsen_large" and r["config"]["batch_size"] == 10
    # regularized_full.json and the init row's large-init η = 0.5 members are one run, evaluated on both sets
    shared = study.members_of(results, "regularized_full")
    assert all(r["config"]["rows"] == ["regularized_full", "weight_initialization_30"] for r in shared)
    assert all(len(r["history"]["val_accuracy"]) == len(r["history"]["test_accuracy"]) > 0 for r in shared)
    # the more-data row: every size the same number of steps in one program
    more = [r for r in results["runs"] if "more_data" in r["config"]["rows"]]
    assert len(more) == len(config.sizes) * seeds and {r["config"]["program"] for r in more} == {"more_data"}
    assert len({r["history"]["step"][-1] for r in more}) == 1
    length = study.repeated_length(config)
    for r in more:
        assert r["config"]["repeated_length"] == length
        assert r["config"]["book_epochs"] * r["config"]["train_images"] == config.more_data_examples
        assert r["config"]["l2"] == pytest.approx(config.more_data_lambda_per_image / 2)  # λ_book/(2n), n = size
    assert len([r for r in results["runs"] if r["config"]["program"] == "svm"]) == len(config.svm_sizes) * 2
    figures = _figures(out)
    assert {"overfitting.png", "overfitting_full.png", "more_data.png", "weight_initialization_eta0.1.png",
            "weight_initialization_eta0.5.png"} == set(figures)
    assert all((out / png).exists() for png in figures)
    text = (out / "report.md").read_text()
    assert "Reported vs reproduced" in text and "The book's table against ours" in text


def test_the_summary_is_the_runs_and_report_only_rebuilds_the_same_report(quick):
    out, results = quick
    stored = lib.read_results(out)
    assert json.loads(json.dumps(study.summarise(stored))) == stored["summary"]
    entry = stored["summary"]["more_data"]["100 images"]
    values = [100 * r["final"]["val_accuracy"] for r in study.members_of(stored, "more_data", train_images=100)]
    assert entry["values"] == pytest.approx(values) and entry["mean"] == pytest.approx(np.mean(values))
    before = (out / "report.md").read_text()
    for png in out.glob("*.png"):
        png.unlink()
    study.main(["--out", str(out), "--report-only"])
    assert (out / "report.md").read_text() == before
    assert all((out / png).exists() for png in _figures(out))


def _numbers(tree) -> list[float]:
    if isinstance(tree, dict):
        return [v for x in tree.values() for v in _numbers(x)]
    if isinstance(tree, list):
        return [v for x in tree for v in _numbers(x)]
    return [float(tree)] if isinstance(tree, (int, float)) and not isinstance(tree, bool) else []


def test_every_claim_comes_from_results_json_and_flips_when_its_numbers_swap(quick):
    _, results = quick
    found = study.claims(results)
    assert len(found) > 10
    assert json.loads(json.dumps(study.comparisons(results["summary"]))) == json.loads(json.dumps(
        results["comparisons"]))
    numbers = _numbers(results["summary"]) + _numbers(results["comparisons"])
    for claim in found:
        assert claim.measured
        for value in (claim.a, claim.b):  # the claim's numbers are in results.json (a fixed half image aside)
            assert value == 0.5 or any(math.isclose(value, n, rel_tol=1e-12) for n in numbers), claim
        if not math.isclose(claim.a, claim.b, abs_tol=1e-6):  # equal numbers (a book value on the interval's edge)
            original, swapped = claims_lib.sentence(claim), claims_lib.sentence(claim.swapped())
            assert f"**{claim.more}**" in (original, swapped)[not claim.holds]
            assert f"**{claim.less}**" in (original, swapped)[claim.holds]


def test_a_book_number_moved_across_the_interval_flips_its_sentence(quick):
    _, results = quick
    altered = copy.deepcopy(results)
    entry = altered["summary"]["overfitting"]["final test accuracy"]
    entry["book"] = entry["mean"] + 0.5 * entry["half_width"]
    entry["distance"] = 0.5 * entry["half_width"]
    subject = "the book's final test accuracy in overfitting.json"

    def verdict(res):
        (claim,) = [c for c in study.claims(res) if c.subject.startswith(subject)]
        return claims_lib.sentence(claim)

    assert "**within our interval**" in verdict(altered)
    entry["book"] = entry["mean"] + 2 * entry["half_width"]
    entry["distance"] = 2 * entry["half_width"]
    assert "**outside our interval**" in verdict(altered)
    # the η verdict follows the distances
    init = altered["summary"]["weight_initialization_30"]
    for near, far, verdict in (("η=0.1", "η=0.5", "η = 0.1 is the closer"), ("η=0.5", "η=0.1", "η = 0.5 is the closer")):
        for key, e in init.items():
            if e["distance"] is not None:
                e["distance"] = 1.0 if key.startswith(near + ",") else 3.0
        altered["comparisons"] = study.comparisons(altered["summary"])
        assert altered["comparisons"]["init_distance"] == {near: 2.0, far: 6.0}
        (eta,) = [c for c in study.claims(altered) if c.subject.startswith("which η")]
        assert eta.verdict == verdict


def test_the_books_lambda_is_ours_times_2n():
    assert study.our_lambda(5.0, 50_000) == pytest.approx(5e-5)
    assert study.our_lambda(0.1, 1_000) == pytest.approx(5e-5)
    assert study.our_lambda(100 * 1e-4, 100) == pytest.approx(5e-5)  # the more-data row: size × 1e-4 on size images
    with pytest.raises(ValueError, match="at least 1"):
        study.our_lambda(1.0, 0)
    from experiments import train as train_study

    config = train_study.Config(lambda_convention="nielsen")
    assert train_study.penalty(config, 5.0, 50_000) == study.our_lambda(5.0, 50_000)
    assert train_study.penalty(train_study.Config(), 5.0, 50_000) == 5.0


def test_one_sgd_step_is_network2s_update():
    """network2.py (CrossEntropyCost, δ = a − y at the output): w ← (1 − ηλ_book/n) w − (η/m) Σₓ ∇C_x,
    b ← b − (η/m) Σₓ ∇C_x, C_x summed over the outputs. jaxnet's step on SIGMOID_CROSS_ENTROPY
    (batch mean) with λ = our_lambda(λ_book, n) is the same update, exactly (float64)."""
    with jax.enable_x64(True):
        model = mlp.model([6, 5, 4], activation=mlp.SIGMOID, scheme="nielsen_large", dtype=jnp.float64)
        params = model.init(jax.random.PRNGKey(0))
        x = jax.random.uniform(jax.random.PRNGKey(1), (10, 6), jnp.float64)
        y = jnp.arange(10) % 4
        eta, book_lambda, n = 0.5, 5.0, 1_000
        for grad_source in ("autodiff", "manual"):
            step = train.make_train_step(model, train.make_optimizer("sgd", learning_rate=eta),
                                         loss=losses.SIGMOID_CROSS_ENTROPY, grad_source=grad_source)
            opt_state = train.make_optimizer("sgd", learning_rate=eta).init(params)
            new, _, _ = step(params, opt_state, train.Batch(x, y), study.our_lambda(book_lambda, n))

            def cost(p, xi, yi):  # the book's C_x: −Σₖ [yₖ ln aₖ + (1 − yₖ) ln(1 − aₖ)], a = σ(z)
                a = jax.nn.sigmoid(model.apply(p, xi[None]))[0]
                t = jax.nn.one_hot(yi, 4, dtype=a.dtype)
                return -jnp.sum(t * jnp.log(a) + (1 - t) * jnp.log(1 - a))

            summed = jax.tree.map(lambda *g: sum(g), *[jax.grad(cost)(params, x[i], y[i]) for i in range(10)])
            for layer, grad, updated in zip(params, summed, new):
                np.testing.assert_allclose(updated["w"], (1 - eta * book_lambda / n) * layer["w"] - eta / 10 * grad["w"],
                                           rtol=1e-12, atol=1e-14)
                np.testing.assert_allclose(updated["b"], layer["b"] - eta / 10 * grad["b"], rtol=1e-12, atol=1e-14)


def test_the_interval_is_for_one_more_run():
    stats = study.interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.776 * math.sqrt(2.5) * math.sqrt(1 + 1 / 5)  # t(0.975, 4) · s · √(1 + 1/n)
    assert stats["mean"] == 3.0 and stats["half_width"] == pytest.approx(half)
    assert (stats["lo"], stats["hi"]) == pytest.approx((3.0 - half, 3.0 + half))
    assert study.interval([2.0])["half_width"] is None


def test_the_default_programs_fit_the_budget_and_train_shared_settings_once():
    config = study.Config()
    programs = study.programs(config)
    members = {name: len(p["groups"]) * config.seed_count for name, p in programs.items()}
    assert members == {"small": 10, "full_large": 15, "full_default": 10, "more_data": 45}
    steps = sum(members[name] * p["epochs"] * p.get("length", p["images"]) // config.batch_size
                for name, p in programs.items())
    assert steps == 400 * 100 * 10 + 150_000 * (15 + 10 + 45)  # 10.9M member-steps
    assert programs["more_data"]["length"] == 100_000 and programs["more_data"]["epochs"] == 15
    labels = [g.label for p in programs.values() for g in p["groups"]]
    assert len(labels) == len(set(labels))
    only_init = study.programs(dataclasses.replace(config, rows=("weight_initialization_30",)))
    assert [len(p["groups"]) for p in only_init.values()] == [2, 2]


@pytest.mark.parametrize("argv, message", [
    (["--more-data-examples", "150000"], "--more-data-examples: 150,000 is not a multiple of 100,000"),
    (["--seed-count", "1"], "--seed-count"), (["--sizes", "5"], "--sizes: 5 images"),
    (["--rows", "overfitting", "overfitting"], "--rows"),
])
def test_settings_that_cannot_run_are_refused_before_anything_is_created(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        study.main([*argv, "--out", str(tmp_path / "x")])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_experiments_train_reruns_a_row_without_code(tmp_path):
    """overfitting.json / regularized.json as a command: the book's split, init, λ convention, and the test set
    evaluated every epoch (validation not at all)."""
    from experiments import train as train_study

    out = tmp_path / "train"
    results = train_study.main([
        "--quick", "--out", str(out), "--quiet", "--split", "nielsen", "--train-images", "200", "--val-images",
        "10000", "--hidden", "30", "--activation", "sigmoid", "--loss", "sigmoid_cross_entropy", "--init",
        "nielsen_large", "--optimizer", "sgd", "--learning-rates", "0.5", "--batch-size", "10", "--epochs", "3",
        "--pixels", "unit", "--lambdas", "0", "0.1", "--lambda-convention", "nielsen", "--evaluate", "train", "test",
        "--repeat-to", "400"])
    runs = results["runs"]
    assert [r["config"]["l2_run"] for r in runs] == [0.0, study.our_lambda(0.1, 200)]
    for r in runs:
        h = r["history"]
        assert len(h["test_accuracy"]) == 3 and all(v is not None for v in h["test_accuracy"])
        assert all(v is None for v in h["val_accuracy"]) and r["config"]["train_images"] == 200
        assert h["step"][-1] == 3 * 400 // 10  # 200 images repeated to 400 per epoch
