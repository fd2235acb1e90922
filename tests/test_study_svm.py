"""The SVM study: a --quick smoke run and the full run (scikit-learn is an optional dependency)."""
import re
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from experiments import common, svm as study  # noqa: E402


def _check_outputs(out: Path, results: dict) -> dict[str, dict]:
    common.check_results(results)
    report = (out / "report.md").read_text()
    links = re.findall(r"\]\(([^)]+\.png)\)", report)
    assert {"accuracy_by_kernel.png", "rbf_gamma_sweep.png", "confusion_rbf_raw_auto.png",
            "confusion_rbf_pm1_scale.png"} <= set(links)
    for link in links:
        assert (out / link).exists(), link
    for section in ("Reported vs reproduced", "Why RBF gives 0.2 on raw pixels", "One-vs-rest accuracy", "Recall"):
        assert section in report
    runs = {r["name"]: r for r in results["runs"]}
    for run in runs.values():
        assert sum(map(sum, run["confusion"])) == 178 and len(run["per_class"]["recall"]) == 10
    acc = lambda kernel, pixels, gamma="scale": runs[study.run_name(kernel, pixels, gamma)]["final"]["val_accuracy"]  # noqa: E731
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


def test_quick(tmp_path):
    out = tmp_path / "svm"
    _check_outputs(out, study.main(["--quick", "--out", str(out), "--quiet"]))


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
    runs = _check_outputs(out, results)
    sweep = [r for r in runs.values() if r["config"].get("part") == "gamma sweep"]
    assert len(sweep) == len(study.SWEEP_EXPONENTS)
    by_exponent = {r["config"]["exponent"]: r["final"]["val_accuracy"] for r in sweep}
    assert max(a for e, a in by_exponent.items() if 0.1 <= e <= 10) > 0.96  # the plateau
    assert max(a for e, a in by_exponent.items() if e >= 1e3) < 0.45  # the collapse
