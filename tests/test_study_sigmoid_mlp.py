"""The sigmoid-output MLP study: one --quick run shared by the tests (outputs, --report-only,
the claims are computed), a diverging run, and the full run (slow)."""
import dataclasses
import re
from pathlib import Path

import pytest

from experiments import lib
from experiments import sigmoid_mlp as study
from helpers import assert_claims_are_computed, assert_records_are_what_ran, engine_received

FIGURES = {"learning_curves.png", "autodiff_vs_manual.png", "autodiff_minus_manual.png", "confusion_matrix.png"}


@pytest.fixture(scope="module")
def received():
    """What the engine was asked to train while this module's runs ran."""
    with engine_received() as members:
        yield members


@pytest.fixture(scope="module")
def quick(tmp_path_factory, received) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sigmoid_mlp")
    return out, study.main(["--quick", "--out", str(out), "--quiet"])


def _figures(out: Path) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", (out / "report.md").read_text())


def _check_outputs(out: Path, results: dict) -> list[dict]:
    lib.check_results(results)
    assert lib.read_results(out)["complete"] is True
    assert set(_figures(out)) == FIGURES
    for png in FIGURES:
        assert (out / png).exists(), png
    assert "Reported vs reproduced" in (out / "report.md").read_text()
    summed, mean, manual = results["runs"]
    batch = results["config"]["batch_size"]
    assert summed["config"]["learning_rate"] == pytest.approx(5e-4 * batch) == results["summed_learning_rate"]
    assert mean["config"]["learning_rate"] == pytest.approx(5e-4)
    assert (summed["config"]["grad_source"], manual["config"]["grad_source"]) == ("autodiff", "manual")
    assert [r["name"] for r in results["runs"]] == list(study.run_names(study.Config()))
    # hand-derived gradients train exactly as autodiff does, step for step
    assert max(results["autodiff_vs_manual_max_difference"].values()) < 1e-4
    n = len(manual["history"]["epoch"])
    assert n == min(results["config"]["check_epochs"], results["config"]["epochs"])
    assert manual["history"]["val_accuracy"] == pytest.approx(summed["history"]["val_accuracy"][:n], abs=1e-4)
    return [r["final"] for r in results["runs"]]


def test_quick(quick):
    out, results = quick
    summed, mean, _ = _check_outputs(out, results)
    expected = study.Config(out=out, quick=True, quiet=True).quick_variant()
    assert results["config"] == lib.to_jsonable(dataclasses.asdict(expected))
    assert results["headline"]["value"] == summed["test_accuracy"]
    assert summed["test_accuracy"] > 0.3  # chance is 0.1
    assert summed["test_accuracy"] > mean["test_accuracy"]  # 128× larger steps train faster
    assert "give the training that `jax.grad` gives" in (out / "report.md").read_text()


def test_report_only_rebuilds_the_same_report(quick):
    out, _ = quick
    before = (out / "report.md").read_bytes()
    for png in _figures(out):
        (out / png).unlink()
    study.main(["--report-only", "--out", str(out), "--quiet"])
    assert (out / "report.md").read_bytes() == before
    assert all((out / png).exists() for png in FIGURES)


def test_the_claims_are_computed(quick):
    _, results = quick
    assert_claims_are_computed(study.claims, results)


def test_first_epoch_divergence_is_recorded(tmp_path):
    # lr 1e36 (and 1e36 × 128) overflows in the first epoch: recorded, and the study finishes
    out = tmp_path / "diverged"
    results = study.main(["--quick", "--out", str(out), "--quiet", "--learning-rate", "1e36", "--epochs", "1"])
    lib.check_results(results)
    assert results["config"]["learning_rate"] == 1e36 and results["config"]["epochs"] == 1
    assert [r["config"]["epochs"] for r in results["runs"]] == [1, 1, 1]  # check epochs: at most --epochs
    for run in results["runs"]:
        assert run["diverged"] and run["diverged_epoch"] == 1 and run["history"]["epoch"] == []
    assert results["autodiff_vs_manual_max_difference"]["train_loss"] is None
    text = (out / "report.md").read_text()
    assert "**Diverged** (the loss became NaN or inf): lr 1.28e+38" in text and "(its first: no finite check)" in text
    assert "**Which reduction" not in text and "no common finite check" in text


def test_learning_rate_that_overflows_float32_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        study.main(["--quick", "--out", str(tmp_path / "x"), "--learning-rate", "1e37"])
    assert exit_.value.code == 2 and "--learning-rate" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "sigmoid_mlp"
    summed, mean, _ = _check_outputs(out, study.main(["--out", str(out), "--quiet"]))
    # reported 89.6%; the summed-loss reading lands a few points above it, the batch-mean one far below
    assert 0.88 < summed["test_accuracy"] < 0.97
    assert mean["test_accuracy"] < summed["test_accuracy"] - 0.1
    summed_reaches, mean_reaches, same_training = study.claims(lib.read_results(out))
    assert summed_reaches.holds and not mean_reaches.holds and not same_training.holds


def test_the_record_is_what_the_engine_trained(quick, received):
    assert_records_are_what_ran(quick[1], received)
