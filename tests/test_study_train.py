"""The generic study: any MLP, dataset and optimizer from the command line; lists swept as one program."""
import copy
import typing

import pytest

from experiments import lib
from experiments import train as study
from helpers import assert_claims_are_computed, assert_records_are_what_ran, engine_received


@pytest.fixture(scope="module")
def received():
    """What the engine was asked to train while this module's runs ran."""
    with engine_received() as members:
        yield members


@pytest.fixture(scope="module")
def quick(tmp_path_factory, received):
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


def test_no_hidden_width_is_softmax_regression(tmp_path):
    results = study.main(["--quick", "--out", str(tmp_path / "run"), "--quiet", "--train-images", "600",
                          "--val-images", "100", "--epochs", "1", "--hidden"])
    assert results["config"]["hidden"] == [] and results["runs"][0]["config"]["layers"] == [784, 10]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "a 784-10 network without a hidden layer" in report and "hidden units" not in report


def test_ctrl_c_then_resume_continues_the_checkpoint(tmp_path):
    """The message after Ctrl-C says --resume continues; the resumed run trains only the epochs after its checkpoint
    (its first progress line is the epoch after the checkpoint) and ends where an uninterrupted run ends."""
    import json
    import re
    import signal
    import subprocess
    import sys
    import time

    epochs = 30  # a checkpoint after every epoch (30 // 20 = 1), each epoch ~0.1 s: time to stop it in between
    argv = [sys.executable, "-m", "experiments.train", "--quick", "--epochs", str(epochs), "--train-images", "4000",
            "--val-images", "200", "--hidden", "16", "--progress", "lines"]
    steps = lambda out: [int(p.name) for p in (out / "checkpoints" / "sweep").glob("[0-9]*") if p.name.isdigit()]
    out = tmp_path / "stopped"
    proc = subprocess.Popen([*argv, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (out / "checkpoints" / "sweep").is_dir() or not steps(out):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "rerun the same command with --resume to continue" in err, err
    saved = max(steps(out))
    assert 1 <= saved < epochs, saved
    resumed = subprocess.run([*argv, "--out", str(out), "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    after = resumed.stdout[resumed.stdout.index("resumed from"):]
    assert f"after epoch {saved}" in after.splitlines()[0], after
    first_epoch = re.search(rf"epoch +([0-9.]+)/{epochs} ", after)
    assert first_epoch and float(first_epoch[1]) == saved + 1, after  # not epoch 1 again
    clean = subprocess.run([*argv, "--out", str(tmp_path / "clean"), "--quiet"], capture_output=True, text=True,
                           timeout=300)
    assert clean.returncode == 0, clean.stderr
    got, want = (json.loads((o / "results.json").read_text())["runs"][0] for o in (out, tmp_path / "clean"))
    assert got["history"]["val_loss"] == pytest.approx(want["history"]["val_loss"], rel=1e-6)
    assert got["final"] == pytest.approx(want["final"], rel=1e-6)


def test_the_record_is_what_the_engine_trained(quick, received):
    assert_records_are_what_ran(quick[1], received, l2_key="l2_run")
