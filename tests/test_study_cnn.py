"""The CNN study: a --quick smoke run and the full run (≥ 99% on MNIST)."""
import re
from pathlib import Path

import pytest

from experiments import common, cnn as study


def _check_outputs(out: Path, results: dict) -> dict:
    common.check_results(results)
    report = (out / "report.md").read_text()
    links = re.findall(r"\]\(([^)]+\.png)\)", report)
    assert {"test_accuracy.png", "confusion.png", "mistakes.png"} <= set(links)
    for link in links:
        assert (out / link).exists(), link
    for section in ("Reported vs reproduced", "One-vs-rest accuracy", "Recall", "Time per epoch"):
        assert section in report
    (run,) = results["runs"]
    assert len(run["confusion"]) == 10 and len(run["per_class"]["recall"]) == 10
    assert sum(map(sum, run["confusion"])) == (1000 if results["quick"] else 10000)
    assert not run["diverged"] and run["seconds"] > 0
    assert len(run["final"]["epoch_seconds"]) == results["epochs"]
    return run


def test_quick(tmp_path):
    out = tmp_path / "cnn"
    run = _check_outputs(out, study.main(["--quick", "--out", str(out), "--quiet"]))
    assert run["final"]["test_accuracy"] > 0.5  # chance is 0.1; one epoch on 4,000 images
    assert run["history"]["test_loss"][-1] < 2.3


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "cnn"
    results = study.main(["--out", str(out), "--quiet"])
    run = _check_outputs(out, results)
    assert run["final"]["test_accuracy"] >= 0.99 and results["reached_target"]
    assert run["final"]["train_accuracy"] > 0.99
    assert min(run["per_class"]["recall"]) > 0.97
