"""The CNN study: one shared --quick run (schema, config, figures, --report-only, computed
prose, a CLI override) and the full run (slow; ≥ 99% on MNIST)."""
import copy
import dataclasses
from pathlib import Path

import pytest

from experiments import cnn as study
from experiments import lib
from experiments.lib import config as config_lib
from helpers import assert_claims_are_computed, assert_report_only_rebuilds, report_figures

ARGV = ["--quick", "--quiet", "--evals-per-epoch", "2"]  # the override: --quick evaluates once per epoch


def _links(out: Path) -> list[str]:
    return report_figures(out)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn") / "run"
    argv = [*ARGV, "--out", str(out)]
    return out, argv, study.main(argv)


def _check_outputs(out: Path, results: dict) -> dict:
    lib.check_results(results)
    assert lib.read_results(out)["complete"] is True
    report = (out / "report.md").read_text()
    links = _links(out)
    assert {"test_accuracy.png", "confusion.png", "mistakes.png"} <= set(links)
    for link in links:
        assert (out / link).exists(), link
    for section in ("Reported vs reproduced", "One-vs-rest accuracy", "Recall", "Time per epoch"):
        assert section in report
    (run,) = results["runs"]
    assert len(run["confusion"]) == 10 and len(run["per_class"]["recall"]) == 10
    assert sum(map(sum, run["confusion"])) == results["n_test"] == (1000 if results["quick"] else 10000)
    assert not run["diverged"] and run["seconds"] > 0
    assert len(run["final"]["epoch_seconds"]) == results["config"]["epochs"]
    assert run["config"]["conv"] == study.conv_implementation()
    return run


def test_quick_outputs_and_config(quick):
    out, argv, results = quick
    run = _check_outputs(out, results)
    config = config_lib.parse(study.Config, argv, prog="test")
    assert results["config"] == lib.to_jsonable(dataclasses.asdict(config))
    assert run["config"]["learning_rate"] == config.learning_rate and run["config"]["batch_size"] == config.batch_size
    assert run["config"]["steps"] == config.epochs * (config.train_images // config.batch_size)
    assert run["final"]["test_accuracy"] > 0.5  # chance is 0.1; one epoch on 4,000 images
    assert run["history"]["test_loss"][-1] < 2.3


def test_cli_override_reaches_the_record(quick):
    _, _, results = quick
    (run,) = results["runs"]
    assert results["config"]["evals_per_epoch"] == run["config"]["evals_per_epoch"] == 2
    assert len(run["history"]["epoch"]) == 2 and run["history"]["epoch"][-1] == 1.0  # two test evaluations
    assert study.Config().quick_variant().evals_per_epoch == 1 and study.Config().evals_per_epoch == 2


def test_report_only_rebuilds_identically(quick):
    out, _, _ = quick
    assert_report_only_rebuilds(study.main, out)


def test_claims_are_computed(quick, tmp_path):
    out, _, results = quick
    assert_claims_are_computed(study.claims, results)
    altered = copy.deepcopy(results)
    altered["config"]["evals_per_epoch"] = 1
    (tmp_path / "arrays").mkdir()
    (tmp_path / "arrays" / "mistakes.npz").write_bytes((out / "arrays" / "mistakes.npz").read_bytes())
    assert "Test accuracy after every epoch" in study.report(altered, tmp_path).markdown(tmp_path)


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "cnn"
    results = study.main(["--out", str(out), "--quiet"])
    run = _check_outputs(out, results)
    assert run["final"]["test_accuracy"] >= 0.99 and results["reached_target"]
    assert run["final"]["train_accuracy"] > 0.99
    assert min(run["per_class"]["recall"]) > 0.97
