"""The sharpness study: one --quick run shared by the tests (outputs, --report-only, the prose
flips with the numbers), and the full run (slow)."""
import copy
import dataclasses
from pathlib import Path

import pytest

from experiments import lib
from experiments import sharpness as study
from experiments.lib import config as config_lib
from helpers import assert_report_only_rebuilds, report_figures


def _links(out: Path) -> list[str]:
    return report_figures(out)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharpness") / "out"
    argv = ["--quick", "--out", str(out), "--quiet"]
    return out, study.main(argv), argv


def test_quick(quick):
    out, results, argv = quick
    lib.check_results(results)
    expected = config_lib.parse(study.Config, argv, prog="sharpness")
    assert results["config"] == lib.to_jsonable(dataclasses.asdict(expected))
    assert {"sharpness.png", "dead_units.png", "sharpness_gd.png"} <= set(_links(out))
    assert all((out / link).exists() for link in _links(out))
    names = [r["name"] for r in results["runs"]]
    assert names == [study.run_name(lr) for lr in expected.learning_rates]
    steps = [0, *expected.early_steps, *(results["steps_per_epoch"] * e for e in range(1, expected.epochs + 1))]
    for run in results["runs"]:
        assert run["config"]["sweep_members"] == len(names)  # one program
        assert run["config"]["bound"] == pytest.approx((2 + 2 * expected.momentum) / run["config"]["learning_rate"])
        points = results["trajectories"][run["name"]]
        assert [p["step"] for p in points] == steps
        assert all(p["lambda_max"] > 0 and len(p["dead"]) == 2 for p in points)
        # the replayed first 46 steps (one quick epoch) are the sweep's own first epoch
        replay, epoch_1 = (p for p in points if p["step"] == results["steps_per_epoch"])
        assert replay["lambda_max"] == pytest.approx(epoch_1["lambda_max"], rel=1e-4)
        assert replay["dead"] == epoch_1["dead"] and replay["test_accuracy"] == epoch_1["test_accuracy"]
    # every member starts from the same initialisation: one λ_max at step 0
    assert len({results["trajectories"][n][0]["lambda_max"] for n in names}) == 1
    gd = results["gd"]["runs"]
    assert [r["learning_rate"] for r in gd] == list(expected.gd_learning_rates)
    assert all(r["step"] == list(range(0, expected.gd_steps + 1, expected.gd_probe_every)) for r in gd)
    report = (out / "report.md").read_text()
    assert "At initialisation λ_max" in report and "Full-batch gradient descent" in report


def test_report_only_rebuilds_the_same_report(quick):
    out, _, _ = quick
    assert_report_only_rebuilds(study.main, out)


def _collapse(run, results):
    """Make ``run`` a one-class network with hidden layer 2 dead from its second measurement on."""
    run["final"].update(classes_predicted=1, dead_unit_fraction=[0.9, 1.0])
    for point in results["trajectories"][run["name"]][1:]:
        point["dead"] = [0.9, 1.0]


def _alive(run, results):
    """Make ``run`` a working network: ten classes, few dead units, λ_max below its bound."""
    run["final"].update(classes_predicted=10, dead_unit_fraction=[0.1, 0.1])
    for point in results["trajectories"][run["name"]]:
        point["dead"] = [0.1, 0.1]
        point["lambda_max"] = 0.5 * run["config"]["bound"]


def test_prose_follows_the_numbers(quick, tmp_path):
    _, results, _ = quick
    altered = copy.deepcopy(results)
    big, *others = altered["runs"]  # the largest rate first
    for run in others:
        _alive(run, altered)
    bound = big["config"]["bound"]
    _collapse(big, altered)

    # λ_max above the bound at the first step: the collapse follows a crossing
    for i, point in enumerate(altered["trajectories"][big["name"]]):
        point["lambda_max"] = 0.5 * bound if i == 0 else (2.0 * bound if i == 1 else 0.01 * bound)
    text = lib.write_report(altered, tmp_path / "crossed", study.report).read_text()
    assert f"**lr {big['name'][3:]} collapsed after crossing its bound**" in text
    assert "**Collapse coincides with crossing the bound**" in text

    # λ_max never above the bound: the same collapse is now unexplained, and the report says so
    for point in altered["trajectories"][big["name"]]:
        point["lambda_max"] = 0.5 * bound
    text = lib.write_report(altered, tmp_path / "never", study.report).read_text()
    assert f"**lr {big['name'][3:]} collapsed without a prior crossing**" in text
    assert "**Collapse does not coincide with crossing the bound** for lr " + big["name"][3:] in text
    assert "**Collapse coincides" not in text


def test_no_collapse_and_crossing_without_collapse(quick, tmp_path):
    _, results, _ = quick
    altered = copy.deepcopy(results)
    for run in altered["runs"]:
        _alive(run, altered)
    first = altered["runs"][0]
    for point in altered["trajectories"][first["name"]][1:]:
        point["lambda_max"] = 1.5 * first["config"]["bound"]
    text = lib.write_report(altered, tmp_path / "alive", study.report).read_text()
    assert "No run collapsed" in text and f"**lr {first['name'][3:]} crossed but survived**" in text
    assert "then stayed above it" in text and "## The collapsed runs" not in text


def test_gd_prose_follows_the_numbers(quick):
    _, results, _ = quick
    gd = copy.deepcopy(results["gd"])
    run = gd["runs"][0]
    run["lambda_max"] = [0.95 * run["bound"]] * len(run["lambda_max"])
    assert "to within 10% of 2/η by step 0 (**progressive sharpening**)" in study.gd_findings(gd)[0]
    run["lambda_max"] = [0.5 * run["bound"]] * len(run["lambda_max"])
    assert "it never reached the bound" in study.gd_findings(gd)[0]
    run["train_loss"] = sorted(v for v in run["train_loss"] if v is not None)[::-1]  # decreasing
    assert "rose in 0 of" in study.gd_findings(gd)[0] and "edge of stability" not in study.gd_findings(gd)[0]


@pytest.mark.parametrize("argv, flag", [(["--early-steps", "20", "5"], "--early-steps"),
                                        (["--learning-rates", "0.1", "0"], "--learning-rates"),
                                        (["--probe-images", "1"], "--probe-images")])
def test_bad_settings_are_usage_errors(argv, flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        study.main([*argv, "--out", str(tmp_path / "never")])
    assert exit_.value.code == 2 and flag in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "sharpness"
    results = study.main(["--out", str(out), "--quiet"])
    lib.check_results(results)
    summary = study.summaries(results)
    assert summary["lr=0.5"]["collapsed"] and summary["lr=0.5"]["crossed_step"] is not None
    assert summary["lr=0.003"]["crossed_step"] is None and not summary["lr=0.003"]["collapsed"]
