"""The memorisation (random labels) study: one --quick run shared by the tests, a diverging
run, and the full run (slow)."""
import dataclasses
import re
from pathlib import Path

import pytest

from experiments import lib
from experiments import random_labels as study
from experiments.lib.results import HISTORY_KEYS
from helpers import assert_claims_are_computed, assert_records_are_what_ran, engine_received


@pytest.fixture(scope="module")
def received():
    """What the engine was asked to train while this module's runs ran."""
    with engine_received() as members:
        yield members


@pytest.fixture(scope="module")
def quick(tmp_path_factory, received) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("random_labels")
    return out, study.main(["--quick", "--out", str(out), "--quiet"])


def _figures(out: Path) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", (out / "report.md").read_text())


def _check_outputs(out: Path, results: dict) -> dict:
    lib.check_results(results)
    assert lib.read_results(out)["complete"] is True
    figures = _figures(out)
    assert set(figures) == {"learning_curves_2_classes.png", "learning_curves_10_classes.png", "accuracy.png"}
    for png in figures:
        assert (out / png).exists(), png
    assert "Reported vs reproduced" in (out / "report.md").read_text()
    by = study.by_key(results["runs"])
    assert set(by) == {(2, "true"), (2, "random"), (10, "true"), (10, "random")}
    for (k, _), run in by.items():
        assert set(HISTORY_KEYS) <= set(run["history"])
        assert len(run["confusion"]) == k and len(run["history"]["epoch"]) == run["config"]["epochs"]
        assert run["config"]["layers"] == [784, results["config"]["hidden"], k] and not run["diverged"]
        for key in ("test_accuracy_random_labels", "test_loss_random_labels"):
            assert 0 <= run["final"][key] < float("inf")
    # about half (a tenth) of the random labels agree with the truth by chance
    assert by[2, "random"]["final"]["labels_agreeing_with_truth"] == pytest.approx(0.5, abs=0.1)
    assert by[10, "random"]["final"]["labels_agreeing_with_truth"] == pytest.approx(0.1, abs=0.06)
    return {key: run["final"] for key, run in by.items()}


def test_quick(quick):
    out, results = quick
    final = _check_outputs(out, results)
    assert results["quick"] is True
    expected = study.Config(out=out, quick=True, quiet=True).quick_variant()
    assert results["config"] == lib.to_jsonable(dataclasses.asdict(expected))
    assert results["config"]["train_images"] == 256 and results["config"]["epochs"] == 40
    assert results["headline"]["value"] == final[2, "random"]["train_accuracy"]
    for k in (2, 10):
        assert final[k, "true"]["val_accuracy"] > 1 / k + 0.2  # true labels generalise
        assert final[k, "random"]["train_accuracy"] > 1 / k  # random ones are being fitted


def test_report_only_rebuilds_the_same_report(quick):
    out, _ = quick
    before = (out / "report.md").read_bytes()
    for png in _figures(out):
        (out / png).unlink()
    study.main(["--report-only", "--out", str(out), "--quiet"])
    assert (out / "report.md").read_bytes() == before
    assert all((out / png).exists() for png in _figures(out))


def test_claims_are_computed(quick):
    _, results = quick
    assert_claims_are_computed(study.claims, results)


def test_first_epoch_divergence_is_recorded(tmp_path):
    # --learning-rate 1e38 overflows in the first epoch: no finite check, yet the study finishes
    out = tmp_path / "diverged"
    results = study.main(["--quick", "--out", str(out), "--quiet", "--classes", "2", "--epochs", "1",
                          "--learning-rate", "1e38"])
    lib.check_results(results)
    assert results["config"]["classes"] == [2] and results["config"]["epochs"] == 1
    assert [r["config"]["learning_rate"] for r in results["runs"]] == [1e38, 1e38]
    for run in results["runs"]:
        assert run["diverged"] and run["diverged_epoch"] == 1 and run["history"]["epoch"] == []
        assert run["final"]["train_accuracy"] is None
    text = (out / "report.md").read_text()
    assert "run diverged (its loss became NaN or inf) at epoch 1, in its first epoch" in text
    assert "learning_curves_10_classes.png" not in text


def test_bad_classes_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        study.main(["--quick", "--out", str(tmp_path / "x"), "--classes", "3"])
    assert exit_.value.code == 2 and "--classes" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "random_labels"
    final = _check_outputs(out, study.main(["--out", str(out), "--quiet"]))
    for k in (2, 10):
        random, true = final[k, "random"], final[k, "true"]
        assert random["train_accuracy"] > 0.99 and random["train_loss"] < 0.15  # memorised
        assert random["test_accuracy"] == pytest.approx(1 / k, abs=0.03)  # chance on held-out images
        assert random["test_accuracy_random_labels"] == pytest.approx(1 / k, abs=0.03)
        assert true["train_accuracy"] > 0.99 and true["test_accuracy"] > 0.8
    # reported: mean test loss about 1.93 for two random labels; a confident memoriser is far above ln 2
    assert final[2, "random"]["test_loss"] > 1.0
    text = (out / "report.md").read_text()
    assert text.count("**memorised**") == 4 and text.count("**at chance**") == 2


def test_the_record_is_what_the_engine_trained(quick, received):
    assert_records_are_what_ran(quick[1], received)
