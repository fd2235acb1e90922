"""The experiment framework: options, results.json, report.md, figures, listing and run-all."""
import json
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import experiments
from experiments import all as all_studies
from experiments import common, plots

REPO = Path(__file__).resolve().parents[1]
HISTORY = {"epoch": [1, 2, 3], "train_loss": [2.0, 1.0, 0.5], "val_loss": [2.1, 1.2, 0.9],
           "train_accuracy": [0.3, 0.6, 0.8], "val_accuracy": [0.3, 0.55, 0.7]}
FINAL = {"train_accuracy": 0.8, "val_accuracy": 0.7, "test_accuracy": 0.69, "train_loss": 0.5, "val_loss": 0.9}


def toy_main(argv=None):
    """A complete toy study on the framework, as a study module's ``main`` would be."""
    args = common.parser("toy", "A toy study.", default_epochs=3).parse_args(argv)
    study = common.start("toy", args, argv)
    n = common.epochs(args, quick=2)
    history = {k: v[:n] for k, v in HISTORY.items()}
    runs = [common.run_record("baseline", {"epochs": n, "seed": args.seed}, history, FINAL,
                              confusion=np.eye(3, dtype=int) * 5, per_class={"recall": np.ones(3)},
                              seconds=0.1, diverged=False)]
    figure = plots.learning_curves(study.path("curves.png"), {"baseline": history}, "Toy curves")
    report = (study.report("Toy study").what_was_run("Nothing, quickly.").figure(figure, "Curves.")
              .reported_vs_reproduced([("test accuracy", 0.70, FINAL["test_accuracy"], None)]))
    return study.finish(study.results(runs, headline=("test accuracy", FINAL["test_accuracy"])), report)


def test_parser_defaults_and_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXNET_MANUAL_DIR", str(tmp_path / "mnist"))
    monkeypatch.delenv("JAXNET_DATA_DIR", raising=False)
    p = common.parser("toy", "A toy study.", default_epochs=7)
    p.add_argument("--width", type=int, default=32)  # a study's own option
    args = p.parse_args([])
    assert args.out == Path("runs/toy") and args.epochs is None and args.seed == 0
    assert not (args.quick or args.resume or args.quiet) and args.width == 32
    assert args.manual_dir == tmp_path / "mnist" and args.data_dir is None
    assert common.epochs(args, quick=2) == 7
    args = p.parse_args(["--quick", "--out", str(tmp_path), "--epochs", "3", "--seed", "5",
                         "--data-dir", "d", "--resume", "--quiet", "--width", "8"])
    assert (args.quick, args.out, args.epochs, args.seed, args.data_dir, args.resume, args.quiet, args.width) == (
        True, tmp_path, 3, 5, Path("d"), True, True, 8)
    assert common.epochs(p.parse_args(["--quick"]), quick=2) == 2


def test_results_json_round_trip(tmp_path):
    results = {"b": np.arange(3, dtype=np.float32), "a": {"nan": float("nan"), "inf": np.float32(np.inf),
               "jax": jnp.array([[1.0, jnp.nan]]), "int": np.int64(4), "flag": np.bool_(True)},
               "path": tmp_path, "tuple": (1, 2.5)}
    path = common.write_results(tmp_path, results)
    text = path.read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert text.index('"a"') < text.index('"b"')  # stable (sorted) key order
    back = common.read_results(tmp_path)
    assert back == {"a": {"nan": None, "inf": None, "jax": [[1.0, None]], "int": 4, "flag": True},
                    "b": [0.0, 1.0, 2.0], "path": str(tmp_path), "tuple": [1, 2.5]}
    with pytest.raises(TypeError, match="cannot write"):
        common.write_results(tmp_path, {"x": object()})


def test_run_record_keys_and_checks():
    run = common.run_record("r", {"lr": 0.1}, {"train_loss": [1.0, float("nan")]}, {**FINAL, "weight_norm": 3.0},
                            seconds=1.5, diverged=True, diverged_epoch=2)
    assert tuple(run) == common.REQUIRED_RUN_KEYS
    assert run["history"]["epoch"] == [1, 2] and run["history"]["val_accuracy"] == []
    assert run["final"]["test_loss"] is None and run["final"]["weight_norm"] == 3.0
    assert common.diverged_epoch(run["history"]) == 2 and common.diverged_epoch(HISTORY) is None
    with pytest.raises(ValueError, match="test_accuracy"):
        common.run_record("r", {}, HISTORY, {"train_accuracy": 1.0, "val_accuracy": 1.0}, seconds=0, diverged=False)
    bad = {k: None for k in common.REQUIRED_RESULTS_KEYS} | {"runs": [run | {"final": {"test_accuracy": 1.5}}]}
    with pytest.raises(ValueError, match=r"not in \[0, 1\]"):
        common.check_results(bad)


def test_report_tables_figures_and_notes(tmp_path):
    (tmp_path / "figs").mkdir()
    report = (common.Report("T").what_was_run("An MLP.").figure(tmp_path / "figs" / "a.png", "Loss curves.")
              .table(["run", "accuracy"], [["a|b", 0.91234], ["c", None]]))
    report.reported_vs_reproduced([("test accuracy", 0.97, 0.975, None), ("λ", "1e-3", 0.001, None),
                                   ("train accuracy", 1.0, 0.9, "We ran 10 instead of 100 epochs.")])
    text = report.write(tmp_path).read_text()
    assert text.startswith("# T\n") and "## What was run" in text and "## Reported vs reproduced" in text
    assert "![Loss curves.](figs/a.png)" in text and "*Figure 1: Loss curves.*" in text
    assert "| a\\|b | 0.912 |" in text and "|---|---:|" in text and "| c | — |" in text
    assert "-0.100" in text and "+0.005" in text
    common.Report("T").reported_vs_reproduced([("at the tolerance", 0.70, 0.69, None)])  # |Δ| = 0.01: no note needed
    with pytest.raises(ValueError, match="test accuracy.*no note"):
        common.Report("T").reported_vs_reproduced([("test accuracy", 0.97, 0.90, "  ")])
    with pytest.raises(ValueError, match="no note"):
        common.Report("T").reported_vs_reproduced([("loss", 0.1, float("nan"), None)])
    quick = common.Report("T", quick=True).reported_vs_reproduced([("test accuracy", 0.97, 0.5, None)])
    assert "quick run" in quick.markdown()


def test_formatting():
    assert [common.fmt(x) for x in (None, 0.5, 3, float("nan"), 1e-5, True, "x")] == [
        "—", "0.500", "3", "NaN", "1.00e-05", "yes", "x"]
    assert [common.format_seconds(s) for s in (0.42, 185, 3720)] == ["0.4 s", "3 min 05 s", "1 h 02 min"]


def _is_png(path):
    return path.exists() and path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_plot_helper_writes_a_png(tmp_path):
    diverged = {"train_loss": [2.3, 50.0, float("nan")], "train_accuracy": [0.1, 0.1, None]}
    paths = [
        plots.learning_curves(tmp_path / "c.png", {"ok": HISTORY, "diverged": diverged}, "Curves"),
        plots.image_grid(tmp_path / "w.png", np.random.default_rng(0).normal(size=(4, 16)), shape=(4, 4),
                         titles=list("abcd"), ncols=2, title="Weights"),
        plots.image_grid(tmp_path / "s.png", jnp.ones((3, 5, 5)), titles=["t 1 / p 2"] * 3, symmetric=False),
        plots.confusion_matrix(tmp_path / "m.png", np.eye(3, dtype=int) * 7, ["a", "b", "c"], "Confusion"),
        plots.bar_chart(tmp_path / "b.png", ["x", "y"], [0.9, None], "accuracy", "Bars", reference=0.95),
        plots.line_plot(tmp_path / "l.png", [1e-4, 1e-3, 1e-2], {"‖w‖²": [3.0, 2.0, 1.0]}, "λ", "‖w‖²", "Norm",
                        logx=True, annotations=[(1e-3, 2.0, "chosen")]),
    ]
    assert all(_is_png(Path(p)) for p in paths)


def test_listing_names_every_study():
    listing = subprocess.run([sys.executable, "-m", "experiments"], cwd=REPO, capture_output=True, text=True, check=True)
    assert all(name in listing.stdout for name in experiments.STUDIES)
    assert "python -m experiments.all" in listing.stdout


def test_a_study_on_the_framework(tmp_path):
    results = toy_main(["--out", str(tmp_path), "--quick", "--quiet"])
    assert common.read_results(tmp_path) == results
    common.check_results(results)
    assert results["runs"][0]["history"]["epoch"] == [1, 2] and results["args"]["quick"] is True
    assert {"jax", "device", "date"} <= set(results["environment"])
    assert _is_png(tmp_path / "curves.png") and "](curves.png)" in (tmp_path / "report.md").read_text()
    again = toy_main(["--out", str(tmp_path), "--quick", "--quiet", "--resume"])
    assert again["runs"][0]["name"] == "baseline"


def test_run_all_survives_a_failing_study(tmp_path, capsys):
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
    assert "[good](good/report.md)" in index and "test accuracy: 0.690" in index
    assert "failed: RuntimeError: boom" in index and "not yet available" in index
    assert 'href="good/report.md"' in (tmp_path / "index.html").read_text()
    statuses = {e["name"]: e["status"] for e in common.read_results(tmp_path / "index.json")["studies"]}
    assert statuses == {"bad": "failed", "good": "ok", "missing": "skipped"}
    assert "boom" in capsys.readouterr().err
