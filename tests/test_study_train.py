"""The generic study: any MLP, dataset and optimizer from the command line; lists swept as one program."""
import copy
import typing

import pytest

from experiments import lib
from experiments import train as study
from helpers import assert_claims_are_computed


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    results = study.main(["--quick", "--out", str(out), "--quiet", "--train-images", "1200", "--val-images", "200",
                          "--epochs", "1", "--lambdas", "0", "0.01", "--seeds", "0", "1", "--hidden", "32",
                          "--activation", "tanh", "--optimizer", "adam", "--learning-rates", "0.003"])
    return out, results


def test_every_combination_is_a_member_of_one_sweep(quick):
    out, results = quick
    lib.check_results(results)
    assert [r["name"] for r in results["runs"]] == [
        "lr=0.003 λ=0 seed=0", "lr=0.003 λ=0 seed=1", "lr=0.003 λ=0.01 seed=0", "lr=0.003 λ=0.01 seed=1"]
    config = results["config"]
    assert (config["hidden"], config["activation"], config["optimizer"], config["lambdas"]) == ([32], "tanh", "adam",
                                                                                                 [0.0, 0.01])
    assert all(r["config"]["layers"] == [784, 32, 10] for r in results["runs"])
    assert all(r["final"]["test_accuracy"] > 0.5 for r in results["runs"])  # chance is 0.1
    report = (out / "report.md").read_text()
    for png in ("learning_curves.png", "test_accuracy_vs_l2.png", "test_accuracy_vs_seed.png", "confusion_best.png"):
        assert (out / png).exists() and f"]({png})" in report


def test_the_summary_follows_the_numbers(quick):
    _, results = quick
    assert "Diverged" not in study.summary(results)
    altered = copy.deepcopy(results)
    altered["runs"][1]["diverged"] = True
    text = study.summary(altered)
    assert f"Diverged (loss NaN/inf; last finite parameters kept): {altered['runs'][1]['name']}." in text
    assert "across the 3 finished members" in text


def test_claims_are_computed(quick):
    _, results = quick
    assert_claims_are_computed(study.claims, results)


def test_the_best_member_is_named_by_the_set_it_was_chosen_on(quick, tmp_path):
    _, results = quick
    assert "The best member by validation accuracy is" in study.summary(results)
    no_val = copy.deepcopy(results)  # e.g. --val-images 0 or --evaluate train test
    for run in no_val["runs"]:
        run["final"]["val_accuracy"] = None
    best = max(no_val["runs"], key=lambda r: r["final"]["test_accuracy"])
    assert f"The best member by test accuracy is {best['name']}" in study.summary(no_val)
    assert study.claims(no_val)[0].subject == "the best member by test accuracy against the runner-up"
    gone = copy.deepcopy(results)
    for run in gone["runs"]:
        run["diverged"] = True
    assert study.best_member(gone["runs"])[0] is None and not study.claims(gone)
    text = study.report(gone, tmp_path).markdown(tmp_path)
    assert "Every member diverged: there is no best member." in text
    assert "best member by" not in text and "confusion_best.png" not in text


def test_bad_settings_are_refused_before_anything_is_created(tmp_path, capsys):
    for argv, message in ((["--learning-rates", "0"], "--learning-rates: 0 is not positive"),
                          (["--dataset", "cifar"], "--dataset"),
                          (["--hidden", "0"], "--hidden: width 0")):
        with pytest.raises(SystemExit) as exit_:
            study.main([*argv, "--out", str(tmp_path / "x")])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
        assert not (tmp_path / "x").exists()


def test_every_choice_on_the_command_line_is_a_library_value():
    """--loss, --activation, --init and --optimizer name what jaxnet knows, so that the one
    name → value look-up in run() never fails after the data is loaded."""
    from jaxnet import losses, mlp, train

    hints = typing.get_type_hints(study.Config)
    choices = {name: set(typing.get_args(hints[name])) for name in ("loss", "activation", "init", "optimizer")}
    assert choices["loss"] <= set(losses.LOSSES) and all(losses.get(n).name == n for n in choices["loss"])
    assert choices["activation"] == set(mlp.ACTIVATIONS)
    assert choices["init"] == set(mlp.SCHEMES) and choices["optimizer"] == set(train.OPTIMIZERS)
