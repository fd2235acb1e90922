"""The Gurmukhi MLP study: a --quick smoke run and the full run."""
import re
from pathlib import Path

import numpy as np
import pytest

from experiments import common, gurmukhi as study


def _check_outputs(out: Path, results: dict, seeds: int) -> list[dict]:
    common.check_results(results)
    assert common.read_results(out)["complete"] is True
    report = (out / "report.md").read_text()
    links = re.findall(r"\]\(([^)]+\.png)\)", report)
    assert {"samples.png", "confusion.png", "learning_curves.png", "val_accuracy_by_seed.png"} <= set(links)
    for link in links:
        assert (out / link).exists(), link
    for section in ("Reported vs reproduced", "Duplicates in the validation set", "One-vs-rest accuracy", "Recall",
                    "x_val[141]"):
        assert section in report
    runs = results["runs"]
    assert [r["name"] for r in runs] == [f"seed {k}" for k in range(seeds)]
    for run in runs:
        assert len(run["confusion"]) == 10 and sum(map(sum, run["confusion"])) == 178
        assert len(run["per_class"]["recall"]) == 10 and len(run["per_class"]["one_vs_rest_accuracy"]) == 10
        assert not run["diverged"] and run["final"]["test_accuracy"] is None  # Gurmukhi has no test split
        assert len(run["history"]["val_accuracy"]) == run["config"]["epochs"]
    summary = results["summary"]
    val = [r["final"]["val_accuracy"] for r in runs]
    assert summary["val_accuracy_mean"] == pytest.approx(np.mean(val))
    assert summary["val_accuracy_min"] <= summary["val_accuracy_mean"] <= summary["val_accuracy_max"]
    return runs


def test_quick(tmp_path):
    out = tmp_path / "gurmukhi"
    runs = _check_outputs(out, study.main(["--quick", "--out", str(out), "--quiet"]), seeds=study.QUICK_SEEDS)
    for run in runs:
        assert run["final"]["val_accuracy"] > 0.3  # chance is about 0.11, after 5 short epochs
        assert run["history"]["train_loss"][-1] < run["history"]["train_loss"][0]
    assert len({r["final"]["val_accuracy"] for r in runs} | {r["history"]["train_loss"][-1] for r in runs}) > 1  # seeds differ


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "gurmukhi"
    results = study.main(["--out", str(out), "--quiet"])
    runs = _check_outputs(out, results, seeds=study.SEEDS)
    summary = results["summary"]
    # reported 0.955 for one run; here the seed mean lands within ~3 images and the spread covers it
    assert summary["val_accuracy_mean"] == pytest.approx(0.955, abs=0.02)
    assert summary["val_accuracy_std"] < 0.02
    assert summary["val_accuracy_min"] > 0.92
    for run in runs:
        assert run["final"]["train_accuracy"] > run["final"]["val_accuracy"]  # it fits the training set better
    # the four validation copies of training images are classified correctly by a model that fits its training set
    assert summary["val_accuracy_without_train_duplicates_mean"] <= summary["val_accuracy_mean"]
