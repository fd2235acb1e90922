"""The sharpness study: one --quick run shared by the tests (outputs, --report-only, the prose
flips with the numbers), and the full run (slow)."""
import dataclasses
from pathlib import Path

import pytest

from experiments import lib
from experiments import sharpness as study
from experiments.lib import config as config_lib
from helpers import assert_claims_are_computed, assert_report_only_rebuilds, report_figures


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
    assert "the sharpness at initialisation against the smallest bound" in report
    assert "Full-batch gradient descent" in report


def test_report_only_rebuilds_the_same_report(quick):
    out, _, _ = quick
    assert_report_only_rebuilds(study.main, out)


def test_claims_are_computed(quick):
    _, results, _ = quick
    assert_claims_are_computed(study.claims, results)


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
