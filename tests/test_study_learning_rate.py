"""The learning-rate study: one --quick run shared by the tests (outputs, --report-only, the
claims are computed, a first-epoch divergence), a CLI grid without 0.5 and 0.01, and the full run (slow)."""
import copy
import dataclasses
import re
from pathlib import Path

import pytest

from experiments import lib
from experiments import learning_rate as study
from experiments.lib import config as config_lib
from helpers import assert_claims_are_computed, assert_records_are_what_ran, engine_received


def _links(out: Path) -> list[str]:
    return re.findall(r"\]\(([^)]+\.png)\)", (out / "report.md").read_text())


def _check_outputs(out: Path, results: dict, argv: list[str]) -> dict[float, dict]:
    lib.check_results(results)
    assert lib.read_results(out)["complete"] is True
    expected = config_lib.parse(study.Config, argv, prog="learning_rate")
    assert results["config"] == lib.to_jsonable(dataclasses.asdict(expected))
    assert results["config_hash"] == lib.config_hash(expected)
    links = _links(out)
    assert {"accuracy_vs_learning_rate.png", "test_accuracy_curves.png", "test_loss_curves.png"} <= set(links)
    for link in links:
        assert (out / link).exists(), link
    runs = {r["config"]["learning_rate"]: r for r in results["runs"]}
    assert list(runs) == list(expected.learning_rates)
    assert all(r["config"]["sweep_members"] == len(expected.learning_rates) for r in runs.values())  # one program
    for run in runs.values():
        assert run["config"]["epochs"] == expected.epochs and run["config"]["batch_size"] == expected.batch_size
        assert len(run["confusion"]) == 10 and len(run["per_class"]["one_vs_rest_accuracy"]) == 10
        assert sum(map(sum, run["confusion"])) == (expected.test_images or 10_000)
        assert results["outcomes"][run["name"]] == study.outcome(run)
    return runs


@pytest.fixture(scope="module")
def received():
    """What the engine was asked to train while this module's runs ran."""
    with engine_received() as members:
        yield members


@pytest.fixture(scope="module")
def quick(tmp_path_factory, received):
    out = tmp_path_factory.mktemp("learning_rate") / "out"
    argv = ["--quick", "--out", str(out), "--quiet"]
    return out, study.main(argv), argv


def test_quick(quick):
    out, results, argv = quick
    runs = _check_outputs(out, results, argv)
    assert {"confusion_lr_0_5.png", "confusion_lr_0_01.png"} <= set(_links(out))
    report = (out / "report.md").read_text()
    assert "Reported vs reproduced" in report and "## What happens at lr = 0.5" in report
    assert runs[0.01]["final"]["test_accuracy"] > 0.3  # chance is 0.1, after one short epoch
    assert results["headline"]["label"] == "test accuracy at lr 0.01"


def test_report_only_rebuilds_the_same_report(quick):
    out, _, _ = quick
    before = (out / "report.md").read_bytes()
    pngs = list(out.glob("*.png"))
    for png in pngs:
        png.unlink()
    study.main(["--report-only", "--out", str(out)])
    assert (out / "report.md").read_bytes() == before
    assert all(png.exists() for png in pngs)


def _section(report: str, heading: str) -> str:
    return report.split(heading, 1)[1].split("\n## ", 1)[0]


def test_the_claims_are_computed(quick):
    _, results, _ = quick
    assert_claims_are_computed(study.claims, results)
    # lr 0.5 predicting two classes, and lr 0.01 over two epochs (is it still improving?)
    altered = copy.deepcopy(results)
    runs = {r["config"]["learning_rate"]: r for r in altered["runs"]}
    runs[0.5]["final"].update(classes_predicted=2, most_predicted_fraction=0.6, test_accuracy=0.2)
    accuracy = runs[0.01]["history"]["test_accuracy"]
    runs[0.01]["history"]["test_accuracy"] = [accuracy[-1] - 0.05, accuracy[-1]]
    subjects = [c.subject for c in study.claims(altered)]
    assert subjects[0].startswith("the test accuracy of lr=0.01,")
    assert not any("deadest" in s for s in subjects)  # no one-class claims
    assert_claims_are_computed(study.claims, altered)


def test_a_first_epoch_divergence_is_reported(quick, tmp_path):
    _, results, _ = quick
    gone = copy.deepcopy(results)
    big = next(r for r in gone["runs"] if r["config"]["learning_rate"] == 0.5)
    big["history"] = {k: [] for k in big["history"]}
    big.update(diverged=True, diverged_epoch=1)
    path = lib.write_report(gone, tmp_path / "diverged", study.report)
    section = _section(path.read_text(), "## What happens at lr = 0.5")
    assert "the run **diverged**" in section and "did **not diverge**" not in section
    assert "diverged in epoch 1, before its first check" in path.read_text()


def test_learning_rates_from_the_command_line(tmp_path):
    """A grid without 0.5 and 0.01: the report speaks of the rates that were run."""
    out = tmp_path / "grid"
    argv = ["--quick", "--learning-rates", "0.1", "0.03", "--out", str(out), "--quiet"]
    results = study.main(argv)
    runs = _check_outputs(out, results, argv)
    assert list(runs) == [0.1, 0.03] and results["config"]["learning_rates"] == [0.1, 0.03]
    report = (out / "report.md").read_text()
    assert "## What happens at lr = 0.1" in report and "lr 0.5" not in report and "lr 0.01" not in report
    assert results["headline"]["label"].startswith("best test accuracy")


@pytest.mark.parametrize("argv, flag", [(["--learning-rates", "0.1", "0"], "--learning-rates"),
                                        (["--learning-rates", "0.1", "0.1"], "--learning-rates"),
                                        (["--epochs", "0"], "--epochs"), (["--train-images", "70000"], "--train-images")])
def test_bad_settings_are_usage_errors(argv, flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        study.main([*argv, "--out", str(tmp_path / "never")])
    assert exit_.value.code == 2 and flag in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "learning_rate"
    argv = ["--out", str(out), "--quiet"]
    runs = _check_outputs(out, study.main(argv), argv)
    # reported: lr 0.5 fails (0.114, every image one class); lr 0.01 gives 0.979
    assert runs[0.01]["final"]["test_accuracy"] == pytest.approx(0.979, abs=0.01)
    big = runs[0.5]
    assert big["diverged"] or big["final"]["classes_predicted"] == 1
    assert big["final"]["test_accuracy"] < 0.2
    # the moderate rates all learn; 0.01 is within a point of the best
    for lr in (0.03, 0.01, 0.003, 0.001):
        assert runs[lr]["final"]["test_accuracy"] > 0.9
    assert runs[0.01]["final"]["test_accuracy"] > max(r["final"]["test_accuracy"] for r in runs.values()) - 0.01


def test_the_record_is_what_the_engine_trained(quick, received):
    assert_records_are_what_ran(quick[1], received)
