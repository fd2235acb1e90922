"""The learning-rate study: a --quick smoke run and the full run."""
import re
from pathlib import Path

import pytest

from experiments import common
from experiments import learning_rate as study


def _check_outputs(out: Path, results: dict) -> dict[float, dict]:
    common.check_results(results)
    assert common.read_results(out)["complete"] is True
    report = (out / "report.md").read_text()
    links = re.findall(r"\]\(([^)]+\.png)\)", report)
    assert {"accuracy_vs_learning_rate.png", "test_accuracy_curves.png", "test_loss_curves.png",
            "confusion_lr_0_5.png", "confusion_lr_0_01.png"} <= set(links)
    for link in links:
        assert (out / link).exists(), link
    assert "Reported vs reproduced" in report and "What happens at lr = 0.5" in report
    runs = {r["config"]["learning_rate"]: r for r in results["runs"]}
    assert list(runs) == list(study.LEARNING_RATES)
    assert all(r["config"]["sweep_members"] == len(study.LEARNING_RATES) for r in runs.values())  # one program
    for run in runs.values():
        assert len(run["confusion"]) == 10 and len(run["per_class"]["one_vs_rest_accuracy"]) == 10
        assert isinstance(run["diverged"], bool)
        assert results["outcomes"][run["name"]]
    return runs


def test_quick(tmp_path):
    out = tmp_path / "learning_rate"
    runs = _check_outputs(out, study.main(["--quick", "--out", str(out), "--quiet"]))
    assert runs[0.01]["final"]["test_accuracy"] > 0.3  # chance is 0.1, after one short epoch


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "learning_rate"
    results = study.main(["--out", str(out), "--quiet"])
    runs = _check_outputs(out, results)
    # reported: lr 0.5 fails (0.114, every image one class); lr 0.01 gives 0.979
    assert runs[0.01]["final"]["test_accuracy"] == pytest.approx(0.979, abs=0.01)
    big = runs[0.5]
    assert big["diverged"] or big["final"]["classes_predicted"] == 1
    assert big["final"]["test_accuracy"] < 0.2
    # the moderate rates all learn; 0.01 is within a point of the best
    for lr in (0.03, 0.01, 0.003, 0.001):
        assert runs[lr]["final"]["test_accuracy"] > 0.9
    assert runs[0.01]["final"]["test_accuracy"] > max(r["final"]["test_accuracy"] for r in runs.values()) - 0.01
