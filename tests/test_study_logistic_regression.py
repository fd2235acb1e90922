"""The logistic-regression study (2 vs 3, early stopping): one --quick run shared by the tests,
an override run that diverges, and the full run (slow)."""
import copy
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from experiments import lib
from experiments import logistic_regression as study
from jaxnet.history import History

from helpers import assert_claims_are_computed, assert_records_are_what_ran, engine_received

FIGURES = {"curves.png", "weights.png", "stopping_epochs.png"}


@pytest.fixture(scope="module")
def received():
    """What the engine was asked to train while this module's runs ran."""
    with engine_received() as members:
        yield members


@pytest.fixture(scope="module")
def quick(tmp_path_factory, received) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("logistic_regression")
    return out, study.main(["--quick", "--out", str(out), "--quiet"])


def _figures(out: Path) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", (out / "report.md").read_text())


def _check_outputs(out: Path, results: dict) -> None:
    lib.check_results(results)
    assert lib.read_results(out)["complete"] is True
    assert set(_figures(out)) == FIGURES
    for png in FIGURES:
        assert (out / png).exists(), png
    assert "Reported vs reproduced" in (out / "report.md").read_text()
    names = [run["name"] for run in results["runs"]]
    seeds = results["config"]["shuffle_seeds"]
    assert names == ["stored order"] + [f"shuffled, seed {results['config']['seed'] + k}" for k in range(seeds)]
    for run in results["runs"]:
        assert len(run["confusion"]) == 2 and run["config"]["evals_per_epoch"] == results["config"]["evals_per_epoch"]
        assert run["per_class"]["classes"] == ["3", "2"]


def test_quick(quick):
    out, results = quick
    _check_outputs(out, results)
    assert results["quick"] is True
    expected = study.Config(out=out, quick=True, quiet=True).quick_variant()
    assert results["config"] == lib.to_jsonable(dataclasses.asdict(expected))
    assert results["headline"]["value"] == results["runs"][0]["final"]["val_accuracy"]
    for run in results["runs"]:
        assert run["final"]["val_accuracy"] > 0.9 and run["final"]["train_accuracy"] > 0.9  # chance is 0.5
        assert len(run["history"]["val_loss"]) == 5 * run["config"]["max_epochs"]  # 5 checks an epoch
        assert run["config"]["pixels"] == "[-1, 1]"
    assert (out / "checkpoints" / "fixed").is_dir() and (out / "checkpoints" / "shuffled").is_dir()


def test_report_only_rebuilds_the_same_report(quick):
    out, _ = quick
    before = (out / "report.md").read_bytes()
    for png in _figures(out):
        (out / png).unlink()
    study.main(["--report-only", "--out", str(out), "--quiet"])
    assert (out / "report.md").read_bytes() == before
    assert all((out / png).exists() for png in FIGURES)


def test_claims_are_computed(quick):
    _, results = quick
    assert_claims_are_computed(study.claims, results)
    # a longer run (12 epochs of checks) also states the saw-tooth claims
    altered = copy.deepcopy(results)
    rng = np.random.default_rng(0)
    for run in altered["runs"]:
        run["history"] = {"epoch": [(i + 1) / 5 for i in range(60)], "val_loss": list(rng.uniform(0.1, 0.2, 60)),
                          "train_loss": [0.1 + 0.01 * (i % 5) for i in range(60)]}
    sawtooth = lambda res: [c for c in study.claims(res) if "saw-tooth" in c.more]  # noqa: E731
    assert [c.verdict for c in sawtooth(altered)] == ["a saw-tooth with a period of one epoch"] * 2
    assert_claims_are_computed(sawtooth, altered)


def test_sawtooth_measure():
    # 0 for a curve that repeats every epoch, large for one that does not
    assert study.epoch_periodicity({"train_loss": [1.0, 0.9, 0.8, 0.7, 0.6] * 6}, 5) == pytest.approx(0.0)
    assert study.epoch_periodicity({"train_loss": list(np.random.default_rng(0).uniform(0.5, 1.0, 30))}, 5) > 0.5


def test_first_epoch_divergence_and_overrides(tmp_path, quick):
    # the record of a run with no finite check (diverged in its first epoch)
    _, results = quick
    empty = History(diverged=True, diverged_epoch=0.2)
    val = (np.zeros((4, 784), np.float32), np.array([0, 1, 0, 1], np.int32))
    record = study.record("stored order", {}, study.model(study.Config()), empty, study.zeros_init(), val, 0.0,
                          ["3", "2"])
    assert record["diverged"] and record["diverged_epoch"] == 1 and record["final"]["stopped_epoch"] is None
    altered = copy.deepcopy(results)
    altered["runs"] = [{**record, "name": r["name"], "config": r["config"]} for r in results["runs"]]
    text = study.report(altered, tmp_path / "empty").markdown(tmp_path / "empty")
    assert "**Diverged** (the loss became NaN or inf): stored order at epoch 1 (its first: no finite check)" in text
    # the command line: lr 1e38 overflows at once; the overrides reach the recorded config
    out = tmp_path / "diverged"
    results = study.main(["--quick", "--out", str(out), "--quiet", "--epochs", "1", "--learning-rate", "1e38",
                          "--shuffle-seeds", "2", "--pixel-range", "0", "1"])
    lib.check_results(results)
    assert results["config"]["shuffle_seeds"] == 2 and results["config"]["pixel_range"] == [0.0, 1.0]
    assert [r["config"]["pixels"] for r in results["runs"]] == ["[0, 1]"] * 3
    assert all(r["diverged"] and r["diverged_epoch"] == 1 for r in results["runs"])
    assert "**Diverged**" in (out / "report.md").read_text()


def test_bad_settings_are_refused(tmp_path, capsys):
    for argv, flag in ((["--positive", "3"], "--positive"), (["--pixel-range", "1", "-1"], "--pixel-range")):
        with pytest.raises(SystemExit) as exit_:
            study.main(["--quick", "--out", str(tmp_path / "x"), *argv])
        assert exit_.value.code == 2 and flag in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "logistic_regression"
    results = study.main(["--out", str(out), "--quiet"])
    _check_outputs(out, results)
    stored, shuffled = results["runs"][0]["final"], [r["final"] for r in results["runs"][1:]]
    assert results["runs"][0]["config"]["train_images"] == 4005 and results["runs"][0]["config"]["val_images"] == 2042
    # reported: cross-entropy 0.065, accuracy 0.979 / 0.979
    assert stored["val_loss"] == pytest.approx(0.065, abs=0.01) and stored["train_loss"] == pytest.approx(0.065, abs=0.01)
    assert stored["val_accuracy"] == pytest.approx(0.979, abs=0.01)
    assert stored["train_accuracy"] == pytest.approx(0.979, abs=0.01)
    # every run stopped early, and reshuffling stops earlier than the stored order (reported: 16 vs 33)
    assert stored["stopped_epoch"] is not None and all(f["stopped_epoch"] is not None for f in shuffled)
    assert max(f["stopped_epoch"] for f in shuffled) < stored["stopped_epoch"]
    assert all(f["val_accuracy"] > 0.97 for f in shuffled)
    text = (out / "report.md").read_text()
    assert "**every reshuffled seed stops earlier**" in text and "**a saw-tooth with a period of one epoch**" in text


def test_the_record_is_what_the_engine_trained(quick, received):
    assert_records_are_what_ran(quick[1], received)
