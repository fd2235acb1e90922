"""The loss-functions study: a --quick smoke run and the full run."""
import re
from pathlib import Path

import pytest

from experiments import common
from experiments import loss_functions as study

NAMES = ["NLL lr=0.003", "CE lr=0.003", "MSE lr=0.003", "MSE lr=0.0003", "KL lr=0.003", "KL lr=0.0003"]


def _check_outputs(out: Path, results: dict) -> dict[str, dict]:
    common.check_results(results)
    assert common.read_results(out)["complete"] is True
    report = (out / "report.md").read_text()
    links = re.findall(r"\]\(([^)]+\.png)\)", report)
    assert {"test_accuracy.png", "test_accuracy_curves.png", "test_loss_curves.png"} <= set(links)
    assert len([link for link in links if link.startswith("confusion_")]) == len(NAMES)
    for link in links:
        assert (out / link).exists(), link
    for section in ("Reported vs reproduced", "Why MSE and KL land lower", "One-vs-rest accuracy", "Recall"):
        assert section in report
    runs = {r["name"]: r for r in results["runs"]}
    assert list(runs) == NAMES
    for run in runs.values():
        assert len(run["confusion"]) == 10 and len(run["per_class"]["recall"]) == 10
        assert len(run["per_class"]["one_vs_rest_accuracy"]) == 10 and not run["diverged"]
        assert sum(map(sum, run["confusion"])) == (1000 if results["quick"] else 10000)
    # NLL on log-softmax, cross-entropy and (one-hot) KL are the same function of the logits
    for other in ("NLL lr=0.003", "KL lr=0.003"):
        assert runs[other]["final"]["test_accuracy"] == pytest.approx(runs["CE lr=0.003"]["final"]["test_accuracy"], abs=2e-3)
    return runs


def test_quick(tmp_path):
    out = tmp_path / "loss_functions"
    runs = _check_outputs(out, study.main(["--quick", "--out", str(out), "--quiet"]))
    assert runs["CE lr=0.003"]["final"]["test_accuracy"] > 0.2  # chance is 0.1, after one short epoch


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "loss_functions"
    runs = _check_outputs(out, study.main(["--out", str(out), "--quiet"]))
    acc = {name: run["final"]["test_accuracy"] for name, run in runs.items()}
    # reported: NLL 0.975, CE 0.975, MSE 0.938, KL 0.928 (PyTorch's reduction="mean" ≡ our loss at lr/10)
    assert acc["NLL lr=0.003"] == pytest.approx(0.975, abs=0.01)
    assert acc["CE lr=0.003"] == pytest.approx(0.975, abs=0.01)
    assert acc["KL lr=0.0003"] == pytest.approx(0.928, abs=0.015)
    assert acc["MSE lr=0.0003"] == pytest.approx(0.938, abs=0.045)  # init-sensitive slow start; see the report
    # the lr/10 (PyTorch-reduction) runs land lower than their own lr runs and than CE, MSE lowest
    for loss in ("MSE", "KL"):
        assert acc[f"{loss} lr=0.0003"] < acc[f"{loss} lr=0.003"] - 0.02
    assert acc["MSE lr=0.0003"] < acc["KL lr=0.0003"] < acc["CE lr=0.003"] - 0.03
    assert acc["MSE lr=0.003"] < acc["CE lr=0.003"]
