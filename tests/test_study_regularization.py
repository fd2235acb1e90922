"""The L2-regularisation study: one --quick run shared by the tests (outputs, --report-only, the
claims are computed), λ grids from the command line, and the full run (slow)."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from experiments import lib
from experiments import regularization as study
from experiments.lib import config as config_lib
from helpers import assert_claims_are_computed, assert_records_are_what_ran, engine_received

FIGURES = ("val_accuracy_softmax.png", "weights.png", "weight_norm.png", "val_loss_mlp.png", "val_accuracy_mlp.png")


def _check_outputs(out: Path, results: dict, argv: list[str]) -> tuple[list[dict], list[dict]]:
    lib.check_results(results)
    assert lib.read_results(out)["complete"] is True
    expected = config_lib.parse(study.Config, argv, prog="regularization")
    assert results["config"] == lib.to_jsonable(dataclasses.asdict(expected))
    report = (out / "report.md").read_text()
    for png in FIGURES:
        assert (out / png).exists() and f"]({png})" in report
    softmax, mlp = study.group(results, "softmax"), study.group(results, "mlp")
    assert [r["config"]["l2"] for r in softmax] == list(expected.lambdas)
    assert [r["config"]["l2"] for r in mlp] == list(expected.mlp_lambdas)
    for run in softmax:
        assert run["config"]["epochs"] == expected.epochs and run["config"]["train_images"] == expected.train_images
    for run in mlp:
        assert run["config"]["epochs"] == expected.mlp_epochs and run["config"]["train_images"] == expected.mlp_train_images
        assert run["config"]["layers"] == [784, *expected.mlp_hidden, 10]
    for run in results["runs"]:
        assert len(run["confusion"]) == 10 and run["final"]["weight_norm"] > 0
        assert len(run["history"]["epoch"]) == run["config"]["epochs"]
    # the penalty shrinks the weights: Σ‖W‖² falls as λ grows
    for group in (softmax, mlp):
        norms = [r["final"]["weight_norm"] for r in group]
        assert all(a > b for a, b in zip(norms, norms[1:])), norms
    return softmax, mlp


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("regularization") / "out"
    argv = ["--quick", "--out", str(out), "--quiet"]
    with engine_received() as received:
        results = study.main(argv)
    return out, results, argv, received


def test_quick(quick):
    out, results, argv, received = quick
    assert_records_are_what_ran(results, received)
    softmax, mlp = _check_outputs(out, results, argv)
    assert results["quick"] is True and "Reported vs reproduced" in (out / "report.md").read_text()
    for run in softmax + mlp:
        assert run["final"]["val_accuracy"] > 0.3  # chance is 0.1
    assert softmax[0]["final"]["val_accuracy"] > 0.5  # 2 epochs on 2,000 images
    saved = np.load(out / "arrays" / "softmax_weights.npz")
    assert list(saved["lambdas"]) == [r["config"]["l2"] for r in softmax] and saved["w"].shape == (len(softmax), 784, 10)
    for run, w in zip(softmax, saved["w"]):  # the recorded measures are those of the saved weights
        assert run["final"]["weight_roughness"] == pytest.approx(study.roughness(w))
        assert run["final"]["weight_norm"] == pytest.approx(float(np.sum(w.astype(np.float64) ** 2)), rel=1e-5)


def test_roughness_and_template_measures():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(784, 10))
    smooth = np.repeat(np.linspace(-1, 1, 28), 28)[:, None] * np.ones((1, 10))
    assert study.roughness(noise) == pytest.approx(0.964, abs=0.05)  # independent pixels: about 1
    assert study.roughness(smooth) < 0.01 and study.roughness(3 * noise) == pytest.approx(study.roughness(noise))
    x, y = rng.random((200, 784)), np.arange(200) % 10
    templates = study.class_templates(x, y)
    assert study.template_correlation(templates, templates) == pytest.approx(1.0)
    assert abs(study.template_correlation(noise, templates)) < 0.2


def test_report_only_rebuilds_the_same_report(quick):
    out, _, _, _ = quick
    before = (out / "report.md").read_bytes()
    pngs = list(out.glob("*.png"))
    assert {p.name for p in pngs} >= set(FIGURES)
    for png in pngs:
        png.unlink()
    study.main(["--report-only", "--out", str(out)])
    assert (out / "report.md").read_bytes() == before
    assert all(png.exists() for png in pngs)


def test_the_claims_are_computed(quick):
    _, results, _, _ = quick
    assert_claims_are_computed(study.claims, results)


def test_lambdas_from_the_command_line(tmp_path):
    """The λ grids reach the runs; without λ = 0 the report drops the λ = 0 rows and still builds."""
    out = tmp_path / "grid"
    argv = ["--quick", "--lambdas", "0.01", "0.1", "--mlp-lambdas", "0", "0.001", "--epochs", "1", "--mlp-epochs", "2",
            "--out", str(out), "--quiet"]
    results = study.main(argv)
    _check_outputs(out, results, argv)
    assert results["config"]["lambdas"] == [0.01, 0.1] and results["config"]["mlp_lambdas"] == [0.0, 0.001]
    report = (out / "report.md").read_text()
    assert "λ = 0.01 (top) and λ = 0.1 (bottom)" in report
    assert "train accuracy, λ = 0" not in report and "weights for λ = 1 vs λ = 0" not in report
    assert "validation accuracy as λ grows" in report


@pytest.mark.parametrize("argv, flag", [(["--mlp-epochs", "0"], "--mlp-epochs"), (["--epochs", "0"], "--epochs"),
                                        (["--lambdas", "0.1", "0"], "--lambdas"), (["--mlp-lambdas", "-1"], "--mlp-lambdas"),
                                        (["--late-epochs", "0"], "--late-epochs"),
                                        (["--mlp-batch-size", "4000"], "--mlp-batch-size")])
def test_bad_settings_are_usage_errors(argv, flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        study.main([*argv, "--out", str(tmp_path / "never")])
    assert exit_.value.code == 2 and flag in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "regularization"
    argv = ["--out", str(out), "--quiet"]
    softmax, mlp = _check_outputs(out, study.main(argv), argv)
    base = softmax[0]["final"]
    # reported without L2: accuracy 0.9225 / 0.9157, cross-entropy 0.280 / 0.299
    assert base["train_accuracy"] == pytest.approx(0.9225, abs=0.01)
    assert base["val_accuracy"] == pytest.approx(0.9157, abs=0.01)
    assert base["train_loss"] == pytest.approx(0.280, abs=0.02) and base["val_loss"] == pytest.approx(0.299, abs=0.02)
    # validation accuracy falls as λ grows (strictly from λ = 0.001 on; λ = 0 vs 0.001 is within noise)
    val = [r["final"]["val_accuracy"] for r in softmax]
    assert val[1] - val[0] < 0.003 and all(a > b for a, b in zip(val[1:], val[2:])), val
    # the MLP overfits its 2,000 images without L2; some λ > 0 lowers the late validation loss; too much hurts
    assert mlp[0]["final"]["train_accuracy"] > 0.99 > mlp[0]["final"]["late_val_accuracy"] + 0.05
    assert min(r["final"]["late_val_loss"] for r in mlp[1:]) < mlp[0]["final"]["late_val_loss"] - 0.01
    assert mlp[-1]["final"]["late_val_accuracy"] < max(r["final"]["late_val_accuracy"] for r in mlp[:-1]) - 0.01
