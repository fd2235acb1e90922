"""The memorisation (random labels) study: a --quick smoke run and the full run (slow)."""
import re
from pathlib import Path

import pytest

from experiments import common
from experiments import random_labels as study


def _check_outputs(out: Path, results: dict) -> dict:
    common.check_results(results)
    assert common.read_results(out)["complete"] is True
    report = (out / "report.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", report)
    assert set(figures) == {"learning_curves_2_classes.png", "learning_curves_10_classes.png", "accuracy.png"}
    for png in figures:
        assert (out / png).exists(), png
    assert "Reported vs reproduced" in report
    by = {(r["config"]["classes"], r["config"]["training_labels"]): r for r in results["runs"]}
    assert set(by) == {(2, "true"), (2, "random"), (10, "true"), (10, "random")}
    for (k, _), run in by.items():
        assert len(run["confusion"]) == k and len(run["history"]["epoch"]) == run["config"]["epochs"]
        for key in ("test_accuracy_random_labels", "test_loss_random_labels"):
            assert 0 <= run["final"][key] < float("inf")
    # about half (a tenth) of the random labels agree with the truth by chance
    assert by[2, "random"]["final"]["labels_agreeing_with_truth"] == pytest.approx(0.5, abs=0.1)
    assert by[10, "random"]["final"]["labels_agreeing_with_truth"] == pytest.approx(0.1, abs=0.06)
    return {key: run["final"] for key, run in by.items()}


def test_quick(tmp_path):
    out = tmp_path / "random_labels"
    final = _check_outputs(out, study.main(["--quick", "--out", str(out), "--quiet"]))
    for k in (2, 10):
        assert final[k, "true"]["val_accuracy"] > 1 / k + 0.2  # true labels generalise
        assert final[k, "random"]["train_accuracy"] > 1 / k  # random ones are being fitted


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
