"""The shared layer of the studies: config and CLI, results.json, report.md, figures, resume,
report-only, the output lock, listing and run-all — on a toy study that trains a real engine
fit on a few hundred MNIST-sized random images."""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import experiments
from experiments import all as all_studies
from experiments import lib
from experiments.lib import config as config_lib
from experiments.lib import plots, results as results_lib
from experiments.lib.lock import OutputLock
from jaxnet import engine, mlp, train

REPO = Path(__file__).resolve().parents[1]
HISTORY = {"epoch": [1, 2, 3], "train_loss": [2.0, 1.0, 0.5], "val_loss": [2.1, 1.2, 0.9],
           "train_accuracy": [0.3, 0.6, 0.8], "val_accuracy": [0.3, 0.55, 0.7]}
FINAL = {"train_accuracy": 0.8, "val_accuracy": 0.7, "test_accuracy": 0.69, "train_loss": 0.5, "val_loss": 0.9}
TRAINED = []  # one entry per program the toy study really trained


@dataclasses.dataclass(frozen=True)
class ToyConfig(lib.StudyConfig):
    epochs: int = 3
    """training epochs"""
    learning_rate: float = 0.1
    """SGD learning rate"""
    widths: tuple[int, ...] = (8, 4)
    """hidden layers"""

    def quick_variant(self):
        return dataclasses.replace(self, epochs=2)

    def problems(self):
        return [("--widths", f"width {w}", "use widths ≥ 1") for w in self.widths if w < 1]


def toy_run(config: ToyConfig, study: lib.Study) -> dict[str, Any]:
    x = np.random.default_rng(0).normal(size=(256, 12)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)

    def fit(**options):
        TRAINED.append(config.epochs)
        model = mlp.model([12, *config.widths, 2])
        result = engine.fit(model, model.init(jax.random.PRNGKey(config.seed)),
                            train.make_optimizer("sgd", learning_rate=config.learning_rate), (x, y),
                            epochs=config.epochs, batch_size=32, val=(x, y), seed=config.seed, **options)
        return [lib.run_record("toy", {"epochs": config.epochs}, result.history.to_dict(),
                               {"train_accuracy": result.history.last("train_accuracy"),
                                "val_accuracy": result.history.last("val_accuracy"), "test_accuracy": None},
                               seconds=result.history.seconds[-1], diverged=result.history.diverged)]

    runs = study.train("toy", ["toy"], fit, label="toy", epochs=config.epochs, checkpoints=True)
    return {"runs": runs, "headline": ("val accuracy", runs[0]["final"]["val_accuracy"])}


def toy_report(results: dict, out: Path) -> lib.Report:
    run = results["runs"][0]
    figure = plots.learning_curves(out / "curves.png", {"toy": run["history"]}, "Toy curves")
    epochs = len(run["history"]["epoch"])
    return lib.Report("Toy", quick=results["quick"]).what_was_run(f"{epochs} epochs.").figure(figure, "Curves.")


def toy_main(argv):
    return lib.main("toy", ToyConfig, toy_run, toy_report, argv, datasets=())


def test_config_cli_defaults_quick_file_and_flags(tmp_path):
    parse = lambda argv: config_lib.parse(ToyConfig, argv, prog="toy")  # noqa: E731
    assert parse([]) == ToyConfig()
    assert parse(["--quick"]).epochs == 2 and parse(["--quick", "--epochs", "5"]).epochs == 5
    assert parse(["--widths", "3", "2", "1", "--learning-rate", "0.5"]).widths == (3, 2, 1)
    (tmp_path / "setup.toml").write_text('epochs = 7\nlearning-rate = 1\nwidths = [5]\n')
    from_file = parse(["--config", str(tmp_path / "setup.toml")])
    assert (from_file.epochs, from_file.learning_rate, from_file.widths) == (7, 1.0, (5,))
    assert parse(["--config", str(tmp_path / "setup.toml"), "--epochs", "9"]).epochs == 9  # a flag beats the file
    assert config_lib.config_hash(parse([])) == config_lib.config_hash(parse(["--out", "x", "--resume"]))
    assert config_lib.config_hash(parse([])) != config_lib.config_hash(parse(["--epochs", "4"]))


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs: 0 epochs — train for at least 1 epoch"),
    (["--epochs", "-1"], "--epochs: -1 epochs"),
    (["--seed", "99999999999999999999"], "--seed: 99999999999999999999 is out of range"),
    (["--learning-rate", "fast"], "--learning-rate"),
    (["--widths", "0"], "--widths: width 0 — use widths ≥ 1"),
    (["--widths"], "--widths: is empty"),
    (["--bogus"], "Unrecognized options: --bogus"),
    (["--config", "missing.toml"], "--config missing.toml: no such file"),
])
def test_usage_errors_are_one_line_and_create_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        toy_main([*argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_bad_toml_and_unknown_setting(tmp_path, capsys):
    (tmp_path / "bad.toml").write_text("epochs = [\n")
    (tmp_path / "unknown.toml").write_text("epoks = 3\n")
    for name, message in (("bad.toml", "not valid TOML"), ("unknown.toml", "unknown setting 'epoks'")):
        with pytest.raises(SystemExit):
            toy_main(["--config", str(tmp_path / name), "--out", str(tmp_path / "o")])
        assert message in capsys.readouterr().err


def test_out_must_be_a_writable_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        toy_main(["--out", str(tmp_path / "file")])
    assert "is a file, not a folder" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        with pytest.raises(SystemExit):
            toy_main(["--out", str(locked / "x")])
        assert "not writable" in capsys.readouterr().err


def test_run_records_the_config_and_report_only_rebuilds(tmp_path):
    TRAINED.clear()
    out = tmp_path / "toy"
    results = toy_main(["--out", str(out), "--quick", "--quiet", "--learning-rate", "0.2"])
    lib.check_results(results)
    assert lib.read_results(out) == results and TRAINED == [2]
    assert results["config"]["learning_rate"] == 0.2 and results["config"]["epochs"] == 2
    assert results["config_hash"] == config_lib.config_hash(ToyConfig(quick=True, epochs=2, learning_rate=0.2))
    assert results["command"].endswith("--learning-rate 0.2")
    report = (out / "report.md").read_text()
    assert "2 epochs." in report and "](curves.png)" in report and "--report-only" in report
    assert (out / "metrics.csv").read_text().startswith("run,member,epoch,split,metric,value\ntoy,")
    (out / "curves.png").unlink()
    toy_main(["--out", str(out), "--report-only"])
    assert TRAINED == [2] and (out / "curves.png").exists() and (out / "report.md").read_text() == report


def test_resume_reuses_only_runs_of_the_same_config(tmp_path, capsys):
    """The issue's bug: 1 epoch, then --epochs 2 --resume must retrain, not report 1-epoch histories as 2."""
    TRAINED.clear()
    out = str(tmp_path / "toy")
    toy_main(["--out", out, "--epochs", "1"])
    again = toy_main(["--out", out, "--epochs", "1", "--resume"])
    assert TRAINED == [1] and len(again["runs"][0]["history"]["epoch"]) == 1  # same config: reused
    longer = toy_main(["--out", out, "--epochs", "2", "--resume"])
    assert TRAINED[0] == 1 and set(TRAINED[1:]) == {2} and longer["runs"][0]["history"]["epoch"] == [1.0, 2.0]
    assert "was made with other settings (epochs 1 → 2)" in capsys.readouterr().out


def test_resume_never_continues_a_checkpoint_of_other_settings(tmp_path):
    """A run killed after its checkpoint (no results.json) and resumed with fewer epochs trains afresh."""
    TRAINED.clear()
    out = tmp_path / "toy"
    toy_main(["--out", str(out), "--epochs", "3", "--quiet"])
    (out / "results.json").unlink()  # as if killed before the end
    short = toy_main(["--out", str(out), "--epochs", "2", "--resume", "--quiet"])
    assert TRAINED[0] == 3 and set(TRAINED[1:]) == {2} and short["runs"][0]["history"]["epoch"] == [1.0, 2.0]


def test_damaged_results_json_under_resume_is_one_line(tmp_path, capsys):
    out = tmp_path / "toy"
    out.mkdir()
    (out / "results.json").write_text('{"runs": [')
    with pytest.raises(SystemExit) as exit_:
        toy_main(["--out", str(out), "--resume"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and str(out / "results.json") in err and "delete it" in err and "Traceback" not in err


def test_the_output_lock(tmp_path, capsys):
    out = tmp_path / "toy"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(f"{sleeper.pid}\n")
        with pytest.raises(SystemExit) as exit_:
            toy_main(["--out", str(out), "--quiet"])
        assert exit_.value.code == 1 and f"in use by another run (pid {sleeper.pid}" in capsys.readouterr().err
    finally:
        sleeper.kill()
        sleeper.wait()
    toy_main(["--out", str(out), "--quiet", "--quick"])  # the holder is gone: its lock is stale
    assert "stale lock" in capsys.readouterr().err and not (out / ".lock").exists()
    with OutputLock(out):
        assert (out / ".lock").read_text().strip() == str(os.getpid())


def test_results_json_round_trip(tmp_path):
    results = {"b": np.arange(3, dtype=np.float32), "a": {"nan": float("nan"), "inf": np.float32(np.inf),
               "jax": jnp.array([[1.0, jnp.nan]]), "int": np.int64(4), "flag": np.bool_(True)},
               "path": tmp_path, "tuple": (1, 2.5), "runs": []}
    path = results_lib.write_results(tmp_path, results)
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert lib.read_results(tmp_path) == {"a": {"nan": None, "inf": None, "jax": [[1.0, None]], "int": 4, "flag": True},
                                          "b": [0.0, 1.0, 2.0], "path": str(tmp_path), "tuple": [1, 2.5], "runs": []}
    with pytest.raises(TypeError, match="cannot write"):
        results_lib.write_results(tmp_path, {"x": object()})


def test_run_record_keys_and_checks():
    run = lib.run_record("r", {"lr": 0.1}, {"train_loss": [1.0, float("nan")]}, {**FINAL, "weight_norm": 3.0},
                         seconds=1.5, diverged=True, diverged_epoch=2)
    assert tuple(run) == results_lib.REQUIRED_RUN_KEYS
    assert run["history"]["epoch"] == [1, 2] and run["history"]["val_accuracy"] == []
    assert results_lib.diverged_epoch(run["history"]) == 2 and results_lib.diverged_epoch(HISTORY) is None
    empty = lib.run_record("first epoch diverged", {}, {}, {**FINAL}, seconds=0.0, diverged=True, diverged_epoch=1)
    assert empty["history"]["epoch"] == []
    with pytest.raises(ValueError, match="test_accuracy"):
        lib.run_record("r", {}, HISTORY, {"train_accuracy": 1.0, "val_accuracy": 1.0}, seconds=0, diverged=False)
    bad = {k: None for k in results_lib.REQUIRED_RESULTS_KEYS} | {"runs": [run | {"final": {"test_accuracy": 1.5}}]}
    with pytest.raises(ValueError, match=r"not in \[0, 1\]"):
        lib.check_results(bad)


def test_report_tables_figures_and_notes(tmp_path):
    (tmp_path / "figs").mkdir()
    report = (lib.Report("T").what_was_run("An MLP.").figure(tmp_path / "figs" / "a.png", "Loss curves.")
              .table(["run", "accuracy"], [["a|b", 0.91234], ["c", None]]))
    report.reported_vs_reproduced([("test accuracy", 0.97, 0.975, None), ("λ", "1e-3", 0.001, None),
                                   ("train accuracy", 1.0, 0.9, "We ran 10 instead of 100 epochs.")])
    text = report.write(tmp_path).read_text()
    assert text.startswith("# T\n") and "## What was run" in text and "## Reported vs reproduced" in text
    assert "![Loss curves.](figs/a.png)" in text and "*Figure 1: Loss curves.*" in text
    assert "| a\\|b | 0.912 |" in text and "| c | — |" in text and "-0.100" in text and "+0.005" in text
    with pytest.raises(ValueError, match="test accuracy.*no note"):
        lib.Report("T").reported_vs_reproduced([("test accuracy", 0.97, 0.90, "  ")])
    quick = lib.Report("T", quick=True).reported_vs_reproduced([("test accuracy", 0.97, 0.5, None)])
    assert "quick run" in quick.markdown()


def test_formatting():
    assert [lib.fmt(x) for x in (None, 0.5, 3, float("nan"), 1e-5, True, "x")] == [
        "—", "0.500", "3", "NaN", "1.00e-05", "yes", "x"]
    assert [lib.format_seconds(s) for s in (0.42, 185, 3720)] == ["0.4 s", "3 min 05 s", "1 h 02 min"]
    assert [lib.fmt_epoch(e) for e in (None, 60.0, 12.4)] == ["—", "60", "12.4"]


def test_listing_names_every_study():
    listing = subprocess.run([sys.executable, "-m", "experiments"], cwd=REPO, capture_output=True, text=True, check=True)
    assert all(name in listing.stdout for name in experiments.STUDIES)


def test_no_study_imports_another():
    names = set(experiments.STUDIES) | {"all", "main", "check", "train"}
    for name in experiments.STUDIES:
        path = REPO / "experiments" / f"{name}.py"
        if not path.exists():
            continue
        text = path.read_text()
        for other in names - {name}:
            assert f"from experiments.{other} import" not in text and f"from experiments import {other}" not in text, (
                name, other)


def test_run_all_survives_a_failing_study_and_merges_the_index(tmp_path, capsys):
    seen = {}

    def good(argv):
        seen["argv"] = argv
        return toy_main(argv)

    def bad(argv):
        raise RuntimeError("boom")

    code = all_studies.main(["--out", str(tmp_path), "--quick", "--seed", "3", "--quiet"],
                            studies={"bad": bad, "good": good, "missing": None})
    assert code == 1
    assert seen["argv"][:4] == ["--out", str(tmp_path / "good"), "--seed", "3"] and "--quick" in seen["argv"]
    index = (tmp_path / "index.md").read_text()
    assert "[good](good/report.md)" in index and "failed: RuntimeError: boom" in index and "not yet available" in index
    assert "boom" in capsys.readouterr().err
    # --only reruns one study and keeps the others' rows
    all_studies.main(["--out", str(tmp_path), "--quick", "--quiet", "--only", "good"],
                     studies={"bad": bad, "good": good, "missing": None})
    statuses = {e["name"]: e["status"] for e in json.loads((tmp_path / "index.json").read_text())["studies"]}
    assert statuses == {"bad": "failed", "good": "ok", "missing": "skipped"}


def test_the_main_job_is_run_all_restricted_to_the_headline_studies(tmp_path, capsys):
    """``experiments.main`` (``make run``) is ``experiments.all``'s code with the headline default."""
    from experiments import main as main_job

    ran = []

    def study(name):
        def run(argv):
            ran.append(name)
            return toy_main(argv)
        return run

    studies = {name: study(name) for name in ("overfitting", "other", "regularization")}
    assert main_job.HEADLINE == all_studies.HEADLINE == ("overfitting", "regularization")
    assert all_studies.main(["--out", str(tmp_path), "--quick", "--quiet"], studies=studies, headline=True) == 0
    assert ran == ["overfitting", "regularization"]
    out = capsys.readouterr().out
    assert f"reports:\n  {tmp_path / 'overfitting' / 'report.md'}\n  {tmp_path / 'regularization' / 'report.md'}" in out
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["command"] == f"python -m experiments.main --out {tmp_path} --quick --quiet"
    ran.clear()
    all_studies.main(["--out", str(tmp_path), "--quick", "--quiet", "--all"], studies=studies, headline=True)
    assert ran == ["overfitting", "other", "regularization"]
    ran.clear()
    all_studies.main(["--out", str(tmp_path), "--quick", "--quiet", "--only", "other"], studies=studies, headline=True)
    assert ran == ["other"]
    with pytest.raises(SystemExit) as exit_:  # --all is the main job's flag, not run-all's
        all_studies.main(["--out", str(tmp_path), "--all"], studies=studies)
    assert exit_.value.code == 2 and "--all" in capsys.readouterr().err


def test_python_m_experiments_is_the_jaxnet_command(capsys):
    from experiments import __main__ as entry
    from experiments import cli

    assert entry.main([]) == 0 and capsys.readouterr().out.strip() == cli.listing()  # alone: jaxnet list
    assert entry.main(["list"]) == 0 and capsys.readouterr().out.strip() == cli.listing()
    with pytest.raises(SystemExit) as exit_:
        entry.main(["frob"])
    assert exit_.value.code == 2 and capsys.readouterr().err.startswith("error: unknown command 'frob' — ")


# ---------------------------------------------------------------- issue 18: no lost work, schema, resume, check
def two_program_run(config: ToyConfig, study: lib.Study) -> dict[str, Any]:
    """Two programs of one run each; by MODE, the second fails ("fail"), reuses the first's name
    ("clash") or records an accuracy out of range ("accuracy")."""
    runs = []
    for program in ("one", "two"):
        name = "one" if program == "two" and MODE.get("clash") else program

        def fit(**options):
            if program == "two" and MODE.get("fail"):
                raise RuntimeError("the second program broke")
            TRAINED.append(program)
            accuracy = MODE.get("accuracy", 0.69) if program == "two" else 0.69
            record = lib.run_record(name, {}, HISTORY, {**FINAL, "test_accuracy": accuracy},
                                    seconds=0.1, diverged=False)
            return [record]
        runs += study.train(program, [name], fit, label=program, epochs=1, checkpoints=False)
    return {"runs": runs, "headline": ("val accuracy", runs[0]["final"]["val_accuracy"])}


MODE: dict[str, Any] = {}


def two_main(argv):
    return lib.main("toy", ToyConfig, two_program_run, toy_report, argv, datasets=())


@pytest.mark.parametrize("mode, status, message", [
    ({"fail": True}, 1, "RuntimeError: the second program broke"),
    ({"clash": True}, 2, "two runs would both be named 'one' (program 'two')"),
    ({"accuracy": 1.7}, 1, "final test_accuracy = 1.7 is not in [0, 1]"),
])
def test_a_later_failure_keeps_the_finished_program(tmp_path, capsys, mode, status, message):
    """Nothing finished is discarded: the first program's run is in results.json (complete:
    false) when the second fails, repeats a name (refused before it trains) or breaks the schema
    (refused as soon as it is made)."""
    TRAINED.clear()
    MODE.clear()
    MODE.update(mode)
    out = tmp_path / "toy"
    try:
        with pytest.raises(SystemExit) as exit_:
            two_main(["--out", str(out), "--quiet"])
    finally:
        MODE.clear()
    err = capsys.readouterr().err
    assert exit_.value.code == status and message in err and err.count("\n") == 1, err
    kept = json.loads((out / "results.json").read_text())
    assert kept["complete"] is False and [r["name"] for r in kept["runs"]] == ["one"]
    if mode.get("clash"):
        assert TRAINED == ["one"]  # the clashing program never trained
    again = two_main(["--out", str(out), "--quiet", "--resume"])  # reuses "one", trains "two"
    assert [r["name"] for r in again["runs"]] == ["one", "two"] and TRAINED.count("one") == 1


def test_a_name_collision_the_study_can_foresee_is_refused_before_anything_is_created(tmp_path, capsys):
    out = tmp_path / "toy"
    with pytest.raises(SystemExit) as exit_:
        lib.main("toy", ToyConfig, toy_run, toy_report, ["--out", str(out)], datasets=(),
                 run_names=lambda config: ["a", "b", "a"])
    assert exit_.value.code == 2 and "two runs would both be named 'a'" in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture
def finished(tmp_path):
    out = tmp_path / "toy"
    toy_main(["--out", str(out), "--quick", "--quiet"])
    return out


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _edit(results, path, value=None, remove=False):
    node = results
    for key in path[:-1]:
        node = node[key]
    if remove:
        del node[path[-1]]
    else:
        node[path[-1]] = value


@pytest.mark.parametrize("path, value, remove, message", [
    (["runs", 0, "final", "val_accuracy"], 1.7, False, "final val_accuracy = 1.7 is not in [0, 1]"),
    (["runs", 0, "history", "val_accuracy", 0], 1.7, False, "history val_accuracy = 1.7 is not in [0, 1]"),
    (["runs", 0, "final", "val_accuracy"], "0.7", False, "final val_accuracy = '0.7' is not a number"),
    (["runs", 0, "history", "val_loss", 0], "x", False, "history 'val_loss' holds 'x'"),
    (["runs", 0, "seconds"], "1.5", False, "seconds = '1.5'"),
    (["config", "epochs"], "2", False, 'config epochs = "2" is not a whole number'),
    (["config", "learning_rate"], True, False, "config learning_rate = true is not a number"),
    (["quick"], "yes", False, 'quick = "yes" is not true or false'),
    (["config_hash"], None, True, "missing key 'config_hash'"),
    (["runs", 0, "final"], None, True, "missing key 'final'"),
    (["runs", 0, "confusion"], [[1, 2], [3]], False, "confusion matrix is not square"),
])
def test_report_only_checks_the_schema_before_it_writes_anything(finished, capsys, path, value, remove, message):
    results = json.loads((finished / "results.json").read_text())
    _edit(results, path, value, remove)
    (finished / "results.json").write_text(json.dumps(results))
    before = _snapshot(finished)
    with pytest.raises(SystemExit) as exit_:
        toy_main(["--out", str(finished), "--report-only"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "does not follow the results schema" in err and message in err, err
    assert _snapshot(finished) == before  # nothing written, nothing removed


def test_an_incomplete_run_is_marked_at_the_top_of_its_report(finished):
    assert "Incomplete run" not in (finished / "report.md").read_text()
    results = json.loads((finished / "results.json").read_text())
    (finished / "results.json").write_text(json.dumps({**results, "complete": False}))
    toy_main(["--out", str(finished), "--report-only"])
    lines = (finished / "report.md").read_text().splitlines()
    assert lines[0] == "# Toy" and lines[2].startswith("> **Incomplete run.** `results.json` says `complete: false`")


def test_resume_into_another_studys_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "worker"
    out.mkdir()
    other = {k: None for k in results_lib.REQUIRED_RESULTS_KEYS} | {"study": "worker", "runs": []}
    (out / "results.json").write_text(json.dumps(other))
    before = _snapshot(out)
    for argv in (["--resume"], ["--report-only"]):
        with pytest.raises(SystemExit) as exit_:
            toy_main(["--out", str(out), "--quiet", *argv])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "is from study 'worker', not 'toy'" in err, err
    assert _snapshot(out) == before


def test_the_record_is_the_parsed_config_that_ran(tmp_path):
    seen = []

    def run(config, study):
        seen.append(config)
        return toy_run(config, study)

    (tmp_path / "setup.toml").write_text("learning-rate = 1\nwidths = [3, 3]\n")
    argv = ["--out", str(tmp_path / "toy"), "--quiet", "--config", str(tmp_path / "setup.toml"), "--epochs", "2"]
    results = lib.main("toy", ToyConfig, run, toy_report, argv, datasets=())
    (config,) = seen
    assert config == config_lib.parse(ToyConfig, argv, prog="toy")
    assert config.learning_rate == 1.0 and type(config.learning_rate) is float and config.widths == (3, 3)
    assert results["config"] == lib.to_jsonable(dataclasses.asdict(config))
    assert results["config_hash"] == config_lib.config_hash(config)
    assert results_lib.config_problems(results["config"], ToyConfig) == []


def test_resume_on_other_data_files_retrains(tmp_path, capsys):
    """--gurmukhi (and --manual-dir) enter the hash: a resumed run on another data file does not
    reuse the runs of the first."""
    TRAINED.clear()
    for name in ("a.npz", "b.npz"):
        (tmp_path / name).write_bytes(name.encode())
    out = str(tmp_path / "toy")
    toy_main(["--out", out, "--epochs", "1", "--quiet", "--gurmukhi", str(tmp_path / "a.npz")])
    toy_main(["--out", out, "--epochs", "1", "--gurmukhi", str(tmp_path / "a.npz"), "--resume"])
    assert TRAINED == [1]  # the same data: reused
    toy_main(["--out", out, "--epochs", "1", "--gurmukhi", str(tmp_path / "b.npz"), "--resume"])
    changed = f'data.gurmukhi "{tmp_path / "a.npz"}" → "{tmp_path / "b.npz"}"'
    assert len(TRAINED) > 1 and changed in capsys.readouterr().out


def test_check_fails_a_quantity_outside_its_tolerance(tmp_path, capsys):
    from experiments import check

    q = check.Quantity(study="overfitting", quantity="test accuracy", tolerance=0.01, why="seeds")
    assert check.judge(q, 0.975, 0.97) is None  # inside
    assert check.judge(q, 0.98, 0.97) is None  # on the bound
    assert check.judge(q, 0.95, 0.97) == "off by 0.02"  # outside
    assert check.judge(q, float("nan"), 0.97) and check.judge(q, None, 0.97) == "quantity missing"
    assert check.judge(q, "0.97", 0.97) and check.judge(q, True, 1) and check.judge(q, "a", "a") is None
    # and the command fails on it: one quantity of a full run moved outside its tolerance
    (first,) = [q for q in check.quantities() if q.study == "overfitting"][:1]
    reference = check.load_reference()
    expected = reference["values"][check.key(first)]
    for value, status in ((expected, 0), (expected + 10 * first.tolerance + 1, 1)):
        results = {"study": "overfitting", "quick": False, "runs": []}
        node, keys = results, (first.keys or first.path.split("."))
        if first.run is not None:
            results["runs"] = [{"name": first.run}]
            node = results["runs"][0]
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
        (tmp_path / "overfitting").mkdir(exist_ok=True)
        (tmp_path / "overfitting" / "results.json").write_text(json.dumps(results))
        rows = [r for r in check.compare(tmp_path, reference) if r["quantity"] == first]
        assert rows[0]["ok"] is (status == 0), rows


def test_run_all_stops_at_ctrl_c_and_keeps_the_index(tmp_path, capsys):
    ran = []

    def first(argv):
        ran.append("first")
        return toy_main(argv)

    def stopped(argv):
        ran.append("stopped")
        raise SystemExit(130)  # what a study does after Ctrl-C (it printed its line)

    def never(argv):
        ran.append("never")

    with pytest.raises(SystemExit) as exit_:
        all_studies.main(["--out", str(tmp_path), "--quick", "--quiet"],
                         studies={"first": first, "stopped": stopped, "never": never})
    assert exit_.value.code == 130 and ran == ["first", "stopped"]
    statuses = {e["name"]: e["status"] for e in json.loads((tmp_path / "index.json").read_text())["studies"]}
    assert statuses == {"first": "ok", "stopped": "interrupted"}


def test_check_and_run_all_refuse_bad_options_in_one_line(tmp_path, capsys):
    from experiments import check

    for main, argv, message in (
            (check.main, ["--bogus"], "Unrecognized options: --bogus"),
            (check.main, [str(tmp_path / "nowhere")], "is not a folder"),
            (all_studies.main, ["--out", str(tmp_path / "runs"), "--manual-dir", str(tmp_path / "none")],
             "--manual-dir"),
            (all_studies.main, ["--out", str(tmp_path / "runs"), "--only", "a", "a"], "--only: \"a\" twice")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_a_preflight_check_refuses_before_anything_is_created(tmp_path, capsys):
    """``lib.main(..., preflight=)``: the study's checks that need the data run before the
    output folder exists or "writing to" is printed."""
    def preflight(config, study):
        raise lib.UsageError(f"--epochs {config.epochs} is more than the data allows", "use fewer")

    out = tmp_path / "toy"
    with pytest.raises(SystemExit) as exit_:
        lib.main("toy", ToyConfig, toy_run, toy_report, ["--out", str(out)], datasets=(), preflight=preflight)
    captured = capsys.readouterr()
    assert exit_.value.code == 2 and "--epochs 3 is more than the data allows — use fewer" in captured.err
    assert "writing to" not in captured.out and not out.exists()


def test_a_list_field_may_declare_that_it_can_be_empty():
    @dataclasses.dataclass(frozen=True)
    class Widths(lib.StudyConfig):
        hidden: tuple[int, ...] = dataclasses.field(default=(8,), metadata={"empty": True})
        """hidden widths (none: softmax regression)"""
        grid: tuple[float, ...] = (0.1,)
        """a grid"""

    assert config_lib.parse(Widths, ["--hidden"], prog="w").hidden == ()
    with pytest.raises(lib.UsageError, match="--grid: is empty"):
        config_lib.parse(Widths, ["--grid"], prog="w")


def test_a_program_checkpoints_about_twenty_times_by_default(tmp_path):
    """checkpoints=True: every epochs // 20 epochs (at least every epoch), so a kill loses at most
    a twentieth of a program; an int sets the cadence; False none."""
    study = lib.Study("toy", ToyConfig(), tmp_path, [], {})
    assert study.engine_options("p", label="p", epochs=4)["checkpoint_every"] == 1
    assert study.engine_options("p", label="p", epochs=400)["checkpoint_every"] == 20
    assert study.engine_options("p", label="p", epochs=59)["checkpoint_every"] == 2
    every = study.engine_options("p", label="p", epochs=40, checkpoints=10)
    assert every["checkpoint_every"] == 10 and every["checkpoint_dir"] == tmp_path / "checkpoints" / "p"
    assert "checkpoint_dir" not in study.engine_options("p", label="p", epochs=4, checkpoints=False)
