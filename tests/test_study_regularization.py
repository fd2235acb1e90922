"""The L2-regularisation study: a --quick smoke run and the full run."""
from pathlib import Path

import pytest

from experiments import common
from experiments import regularization as study

FIGURES = ("val_accuracy_softmax.png", "weights.png", "weight_norm.png", "val_loss_mlp.png", "val_accuracy_mlp.png")


def _check_outputs(out: Path, results: dict) -> tuple[list[dict], list[dict]]:
    common.check_results(results)
    assert common.read_results(out)["complete"] is True
    report = (out / "report.md").read_text()
    for png in FIGURES:
        assert (out / png).exists() and f"]({png})" in report
    assert "Reported vs reproduced" in report
    softmax = [r for r in results["runs"] if r["config"]["model"] == "softmax"]
    mlp = [r for r in results["runs"] if r["config"]["model"] == "mlp"]
    assert [r["config"]["l2"] for r in softmax] == list(study.LAMBDAS)
    assert [r["config"]["l2"] for r in mlp] == list(study.MLP["lambdas"])
    for run in results["runs"]:
        assert len(run["confusion"]) == 10 and run["final"]["weight_norm"] > 0
    # the penalty shrinks the weights: Σ‖W‖² falls as λ grows
    for group in (softmax, mlp):
        norms = [r["final"]["weight_norm"] for r in group]
        assert all(a > b for a, b in zip(norms, norms[1:])), norms
    return softmax, mlp


def test_quick(tmp_path):
    out = tmp_path / "regularization"
    results = study.main(["--quick", "--out", str(out), "--quiet"])
    softmax, mlp = _check_outputs(out, results)
    assert results["quick"] is True
    for run in softmax + mlp:
        assert run["final"]["val_accuracy"] > 0.3  # chance is 0.1
    assert softmax[0]["final"]["val_accuracy"] > 0.5  # 2 epochs on 2,000 images


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "regularization"
    results = study.main(["--out", str(out), "--quiet"])
    softmax, mlp = _check_outputs(out, results)
    base = softmax[0]["final"]
    # reported without L2: accuracy 0.9225 / 0.9157, cross-entropy 0.280 / 0.299
    assert base["train_accuracy"] == pytest.approx(0.9225, abs=0.01)
    assert base["val_accuracy"] == pytest.approx(0.9157, abs=0.01)
    assert base["train_loss"] == pytest.approx(0.280, abs=0.02) and base["val_loss"] == pytest.approx(0.299, abs=0.02)
    # validation accuracy falls as λ grows (strictly from λ = 0.001 on; λ = 0 vs 0.001 is within noise)
    val = [r["final"]["val_accuracy"] for r in softmax]
    assert val[1] - val[0] < 0.003 and all(a > b for a, b in zip(val[1:], val[2:])), val
    # the MLP overfits its 2,000 images without L2; some λ > 0 lowers the late validation loss; too much hurts
    late_loss, late_acc = f"val_loss_last{study.LATE}", f"val_accuracy_last{study.LATE}"
    assert mlp[0]["final"]["train_accuracy"] > 0.99 > mlp[0]["final"][late_acc] + 0.05
    assert min(r["final"][late_loss] for r in mlp[1:]) < mlp[0]["final"][late_loss] - 0.01
    assert mlp[-1]["final"][late_acc] < max(r["final"][late_acc] for r in mlp[:-1]) - 0.01
