"""The overfitting study: one --quick run shared by the tests, report-only, computed claims,
and the full run (slow)."""
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from experiments import lib
from experiments import overfitting as study
from experiments.lib.results import HISTORY_KEYS
from helpers import assert_claims_are_computed, assert_records_are_what_ran, engine_received


@pytest.fixture(scope="module")
def received():
    """What the engine was asked to train while this module's runs ran."""
    with engine_received() as members:
        yield members


@pytest.fixture(scope="module")
def quick(tmp_path_factory, received) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("overfitting") / "run"
    return out, study.main(["--quick", "--out", str(out), "--quiet", "--epochs", "4"])


def _figures(out: Path) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", (out / "report.md").read_text())


def _check_outputs(out: Path, results: dict) -> tuple[dict, dict]:
    lib.check_results(results)
    assert lib.read_results(out)["complete"] is True
    figures = _figures(out)
    assert {"learning_curves.png", "gap.png"} <= set(figures) and len(figures) == 4
    for png in figures:
        assert (out / png).exists(), png
    assert "Reported vs reproduced" in (out / "report.md").read_text()
    small, large = results["runs"]
    assert small["config"]["n_train"] < large["config"]["n_train"]
    for run in (small, large):
        assert set(HISTORY_KEYS) <= set(run["history"])
        assert len(run["history"]["epoch"]) == run["config"]["epochs"]
        assert len(run["confusion"]) == 10 and not run["diverged"]
        assert (out / "arrays" / f"weights_{run['config']['n_train']}.npz").exists()
    return small["final"], large["final"]


def test_quick_run_records_the_config_that_ran(quick):
    out, results = quick
    small, large = _check_outputs(out, results)
    expected = dataclasses.replace(study.Config(out=out, quick=True, quiet=True).quick_variant(), epochs=4)
    assert results["config"] == lib.to_jsonable(dataclasses.asdict(expected))
    assert [r["config"]["n_train"] for r in results["runs"]] == list(expected.sizes)
    assert results["runs"][0]["config"]["layers"] == [784, expected.hidden_units, 10]
    for final in (small, large):
        assert final["val_accuracy"] > 0.3 and final["test_accuracy"] > 0.3  # chance is 0.1
    assert large["val_accuracy"] > small["val_accuracy"]


def test_best_accuracy_is_paired_with_its_own_epoch(quick):
    _, results = quick
    for run in results["runs"]:
        h, final = run["history"], run["final"]
        assert final["best_val_accuracy"] == max(h["val_accuracy"])
        assert final["best_val_accuracy_epoch"] == h["epoch"][h["val_accuracy"].index(max(h["val_accuracy"]))]
        assert final["best_val_loss_epoch"] == h["epoch"][h["val_loss"].index(min(h["val_loss"]))]


def test_report_only_rebuilds_the_same_report(quick):
    out, results = quick
    before = (out / "report.md").read_text()
    for png in out.glob("*.png"):
        png.unlink()
    study.main(["--out", str(out), "--report-only"])
    assert (out / "report.md").read_text() == before
    assert all((out / png).exists() for png in _figures(out))


def test_the_claims_are_computed(quick):
    out, results = quick
    weights = study.weight_stats(out, results["runs"])
    assert_claims_are_computed(lambda r: study.claims(r, r["weights"]), {**results, "weights": weights})


def test_a_run_that_diverges_in_its_first_epoch_is_reported(tmp_path):
    out = tmp_path / "diverged"
    # --learning-rate 1e38 overflows in the first epoch: no finite check, yet the study finishes
    results = study.main(["--quick", "--out", str(out), "--quiet", "--epochs", "1", "--learning-rate", "1e38",
                          "--sizes", "300", "600", "--val-images", "300"])
    assert all(r["diverged"] and r["history"]["epoch"] == [] for r in results["runs"])
    assert "Diverged: 300 images, 600 images" in (out / "report.md").read_text()


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "overfitting"
    results = study.main(["--out", str(out), "--quiet"])
    small, large = _check_outputs(out, results)
    # reported: the 2,000-image run has the wider gap; the 50,000 one climbs faster and higher
    assert small["train_accuracy"] > 0.99
    assert small["train_accuracy"] - small["val_accuracy"] > large["train_accuracy"] - large["val_accuracy"] + 0.03
    first = [r["history"]["val_accuracy"][0] for r in results["runs"]]
    assert first[1] > first[0] + 0.05
    assert small["test_accuracy"] == pytest.approx(0.905, abs=0.02)
    assert large["test_accuracy"] > 0.95


def test_the_border_movement_is_measured():
    rng = np.random.default_rng(0)
    initial = rng.normal(size=(784, 4))
    centre_only = initial.copy().reshape(28, 28, 4)
    centre_only[5:-5, 5:-5] += 1.0  # only the centre pixels' weights moved
    moved = study.movement(centre_only.reshape(784, 4), initial)
    assert moved["border"] == 0.0 and moved["centre"] > 0.5
    everywhere = study.movement(initial + 1.0, initial)
    assert everywhere["border"] == everywhere["centre"] == 1.0


def test_the_record_is_what_the_engine_trained(quick, received):
    assert_records_are_what_ran(quick[1], received)


def test_the_weight_claim_reads_each_run_s_own_weights(quick):
    """The "moved further" sentence compares the large run's largest |w| (a) with the small run's (b),
    each read here from the run's saved first-layer weights, and its verdict is the order of the two."""
    out, results = quick
    small, large = results["runs"]
    w_max = {r["name"]: float(np.abs(np.load(out / "arrays" / f"weights_{r['config']['n_train']}.npz")["w0"]).max())
             for r in (small, large)}
    claim = next(c for c in study.claims(results, study.weight_stats(out, results["runs"]))
                 if c.subject == "the largest first-layer |w|")
    assert (claim.a_label, claim.a, claim.b_label, claim.b) == (large["name"], w_max[large["name"]],
                                                                small["name"], w_max[small["name"]])
    assert claim.holds == (w_max[large["name"]] > w_max[small["name"]])
