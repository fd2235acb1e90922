"""The SVM study (scikit-learn is an optional dependency): one shared --quick run (schema,
config, figures, --report-only, computed prose, a CLI override) and the full run (slow)."""
import dataclasses
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from experiments import lib  # noqa: E402
from experiments import svm as study  # noqa: E402
from experiments.lib import config as config_lib  # noqa: E402
from helpers import assert_claims_are_computed, assert_report_only_rebuilds, report_figures

ARGV = ["--quick", "--quiet", "--sweep-exponents", "3", "10000"]  # the override: two sweep points


def _links(out: Path) -> list[str]:
    return report_figures(out)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("svm") / "run"
    argv = [*ARGV, "--out", str(out)]
    return out, argv, study.main(argv)


def _check_outputs(out: Path, results: dict) -> dict[str, dict]:
    lib.check_results(results)
    report = (out / "report.md").read_text()
    links = _links(out)
    assert {"accuracy_by_kernel.png", "rbf_gamma_sweep.png", "confusion_rbf_raw_auto.png",
            "confusion_rbf_pm1_scale.png"} <= set(links)
    for link in links:
        assert (out / link).exists(), link
    for section in ("Reported vs reproduced", "RBF on raw pixels and the scale of γ", "One-vs-rest accuracy", "Recall"):
        assert section in report
    runs = {r["name"]: r for r in results["runs"]}
    for run in runs.values():
        assert sum(map(sum, run["confusion"])) == 178 and len(run["per_class"]["recall"]) == 10
    acc = lambda kernel, pixels, gamma="scale": study.acc(results, kernel, pixels, gamma)  # noqa: E731
    # deterministic (libsvm): the same numbers under --quick and in full
    assert acc("linear", "raw") == pytest.approx(0.972, abs=0.006)
    for kernel in ("poly", "rbf", "sigmoid"):
        assert acc(kernel, "pm1") > 0.94  # properly scaled pixels: every kernel works
    collapsed = runs[study.run_name("rbf", "raw", "auto")]["final"]
    assert collapsed["val_accuracy"] < 0.4 and collapsed["most_predicted_fraction"] > 0.6  # near-constant prediction
    assert collapsed["train_accuracy"] == 1.0  # the kernel matrix is the identity: memorised
    assert acc("rbf", "raw", "scale") > 0.95  # gamma="scale" adapts to the pixel units
    assert acc("sigmoid", "pm1") == pytest.approx(0.955, abs=0.006) and acc("poly", "pm1") == pytest.approx(0.966, abs=0.006)
    stats = results["kernel_stats"]["raw 0..255, gamma=auto"]
    assert stats["fraction_exactly_zero"] > 0.99 and stats["median_exponent"] > 1e3
    return runs


def test_quick_outputs_and_config(quick):
    out, argv, results = quick
    runs = _check_outputs(out, results)
    config = config_lib.parse(study.Config, argv, prog="test")
    assert results["config"] == lib.to_jsonable(dataclasses.asdict(config))
    for run in runs.values():  # each fit's recorded settings are the SVC's
        assert run["config"]["C"] == config.c
        if run["config"]["part"] == "defaults" and run["config"]["kernel"] != "linear":
            assert run["config"]["degree"] == config.degree and run["config"]["gamma"] in config.gammas
    text = (out / "report.md").read_text()
    assert "**γ is too large for raw pixels**" in text and "**nearly constant**" in text


def test_cli_override_reaches_the_record(quick):
    _, _, results = quick
    assert results["config"]["sweep_exponents"] == [3.0, 10000.0]
    assert [r["config"]["exponent"] for r in study.sweep_runs(results)] == [3.0, 10000.0]
    assert len(study.Config().sweep_exponents) == 15 and study.Config().quick_variant().sweep_exponents == (0.1, 3.0, 1e4)


def test_bad_kernel_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        study.main(["--kernels", "rbf", "cubic", "--out", str(tmp_path / "x")])
    assert exit_.value.code == 2 and "--kernels" in capsys.readouterr().err


def test_report_only_rebuilds_identically(quick):
    out, _, _ = quick
    assert_report_only_rebuilds(study.main, out)


def test_claims_are_computed(quick):
    _, _, results = quick
    assert_claims_are_computed(study.claims, results)


def test_missing_sklearn_is_explained(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[svm\]'"):
        study.svc_class()


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "svm"
    results = study.main(["--out", str(out), "--quiet"])
    _check_outputs(out, results)
    sweep = study.sweep_runs(results)
    assert len(sweep) == len(study.Config().sweep_exponents)
    by_exponent = {r["config"]["exponent"]: r["final"]["val_accuracy"] for r in sweep}
    assert max(a for e, a in by_exponent.items() if 0.1 <= e <= 10) > 0.96  # the plateau
    assert max(a for e, a in by_exponent.items() if e >= 1e3) < 0.45  # the collapse
