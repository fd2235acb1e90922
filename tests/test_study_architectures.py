"""The architectures study: one shared --quick run (schema, config, figures, --report-only,
computed claims, a CLI override) and the full run (slow)."""
import copy
import dataclasses
from pathlib import Path

import pytest

from experiments import architectures as study
from experiments import lib
from experiments.lib import config as config_lib
from helpers import assert_claims_are_computed, assert_report_only_rebuilds, report_figures

ARGV = ["--quick", "--quiet", "--architectures", "128", "128-64"]  # the override: two networks sharing a first layer


def _params(sizes: list[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def _links(out: Path) -> list[str]:
    return report_figures(out)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("architectures") / "run"
    argv = [*ARGV, "--out", str(out)]
    return out, argv, study.main(argv)


def _check_outputs(out: Path, results: dict, expected: list[tuple[int, ...]]) -> dict[tuple, dict]:
    lib.check_results(results)
    assert lib.read_results(out)["complete"] is True
    links = _links(out)
    assert {"accuracy_vs_params.png", "test_accuracy_curves.png", "test_loss_curves.png"} <= set(links)
    assert len([link for link in links if link.startswith("confusion_")]) == len(expected)
    for link in links:
        assert (out / link).exists(), link
    runs = {tuple(r["config"]["hidden"]): r for r in results["runs"]}
    assert list(runs) == expected
    for hidden, run in runs.items():
        assert run["config"]["num_params"] == _params([784, *hidden, 10])
        assert run["config"]["init"] == "uniform" and len(run["confusion"]) == 10
    return runs


def test_quick_outputs_and_config(quick):
    out, argv, results = quick
    runs = _check_outputs(out, results, [(128,), (128, 64)])
    config = config_lib.parse(study.Config, argv, prog="test")
    assert results["config"] == lib.to_jsonable(dataclasses.asdict(config))
    assert results["config_hash"] == lib.config_hash(config)
    for run in runs.values():  # each run's recorded config is the values that went into the fit
        assert run["config"]["learning_rate"] == config.learning_rate and run["config"]["epochs"] == config.epochs == 1
        assert run["config"]["batch_size"] == config.batch_size and run["config"]["loss"] == config.loss
        assert run["final"]["test_accuracy"] > 0.3  # chance is 0.1, after one short epoch
    assert "Reported vs reproduced" in (out / "report.md").read_text()


def test_cli_override_reaches_the_record(quick):
    _, _, results = quick
    assert results["config"]["architectures"] == ["128", "128-64"]
    assert [r["name"] for r in results["runs"]] == ["[128]", "[128, 64]"]
    assert study.Config().architectures == tuple(study.spell(h) for h in study.REPORTED)  # the default is untouched


def test_bad_architecture_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        study.main(["--architectures", "128-0", "--out", str(tmp_path / "x")])
    assert exit_.value.code == 2 and "--architectures" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_report_only_rebuilds_identically(quick):
    out, _, _ = quick
    assert_report_only_rebuilds(study.main, out)


def _with(results: dict, accuracies: dict[str, list[float]]) -> dict:
    """A copy whose runs have these test-accuracy curves (the last value is the final one)."""
    altered = copy.deepcopy(results)
    for run in altered["runs"]:
        curve, history = accuracies[run["name"]], run["history"]
        for key, values in history.items():
            if isinstance(values, list) and values:
                history[key] = [values[-1]] * len(curve)
        history.update(test_accuracy=curve, epoch=list(range(1, len(curve) + 1)))
        run["final"]["test_accuracy"] = curve[-1]
    return altered


def test_the_claims_are_computed(quick):
    _, _, results = quick
    assert_claims_are_computed(study.claims, results)
    # with three epochs there is a band (the noise): every claim is measured, the depth one against that margin
    banded = _with(results, {"[128]": [0.90, 0.905, 0.90], "[128, 64]": [0.95, 0.951, 0.95]})
    assert all(c.measured for c in study.claims(banded))
    assert study.noise(banded["runs"]) in {c.margin for c in study.claims(banded)}
    assert_claims_are_computed(study.claims, banded)


def test_a_run_diverged_in_its_first_epoch_is_reported(quick, tmp_path):
    _, _, results = quick
    altered = copy.deepcopy(results)
    run = altered["runs"][1]
    run.update(diverged=True, diverged_epoch=1)
    run["history"] = {k: [] for k in run["history"]}
    text = study.report(altered, tmp_path).markdown(tmp_path)
    assert "Diverged (the loss became NaN/inf): [128, 64]" in text


@pytest.mark.slow
def test_full(tmp_path):
    out = tmp_path / "architectures"
    runs = _check_outputs(out, study.main(["--out", str(out), "--quiet"]), list(study.REPORTED))
    acc = {hidden: run["final"]["test_accuracy"] for hidden, run in runs.items()}
    for hidden, reported in study.REPORTED.items():
        # one run's last-epoch accuracy: [16] moves by ±0.006 between epochs, the others by ±0.003
        assert acc[hidden] == pytest.approx(reported, abs=0.02 if hidden == (16,) else 0.012), hidden
    # the narrow single layer is clearly worst; every network of ≥ 100k parameters beats it by > 3 points
    assert acc[(16,)] == min(acc.values())
    assert all(a > acc[(16,)] + 0.03 for h, a in acc.items() if runs[h]["config"]["num_params"] > 100_000)
