"""The typed boundary of every study (issue 18): each setting, from a flag or a TOML file, is
parsed into its field's exact type and checked (finite, in range, no repeats in a sweep grid)
before anything is printed, created or trained; the record is the object that ran, and its hash
moves with every setting that changes a number.

The command-line cases run as a subprocess each (as a user would), on `experiments.train`
(the "T" of the issue: ``python -m experiments.train --quick --epochs 1 --out DIR``); the
properties of the API are checked with hypothesis."""
import dataclasses
import importlib
import json
import math
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import experiments
from experiments.lib import config as config_lib
from experiments.lib import results as results_lib
from experiments.lib.errors import UsageError

REPO = Path(__file__).resolve().parents[1]
T = ("-m", "experiments.train", "--quick", "--epochs", "1")
TrainConfig = importlib.import_module("experiments.train").Config


def cli(*argv, env=None, timeout=300):
    environment = {**os.environ, "JAXNET_DEBUG": "", **(env or {})}
    return subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=environment)


def assert_refused(proc, status, *fragments):
    """One line `error: <problem> — <fix>` holding every fragment, the status, no traceback, and
    nothing of the run started ("writing to" never printed)."""
    assert proc.returncode == status, (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and " — " in errors[0], proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


# ---------------------------------------------------------------- flags
@pytest.mark.parametrize("argv, fragments", [
    (["--learning-rates", "nan"], ["--learning-rates", "nan is not a finite number"]),
    (["--learning-rates", "inf"], ["--learning-rates", "inf is not a finite number"]),
    (["--lambdas", "nan"], ["--lambdas", "nan is not a finite number"]),
    (["--lambdas", "inf"], ["--lambdas", "inf is not a finite number"]),
    (["--momentum", "1.5"], ["--momentum", "1.5 is outside [0, 1)"]),
    (["--momentum", "-0.5"], ["--momentum", "-0.5 is outside [0, 1)"]),
    (["--momentum", "inf"], ["--momentum", "inf is not a finite number"]),
    (["--learning-rates", "0.01", "0.01"], ["--learning-rates", "0.01 twice"]),
    (["--seeds", "3", "3"], ["--seeds", "3 twice"]),
    (["--learning-rates", "0.01", "0.010000001"], ["--learning-rates", "0.01 and 0.010000001 print alike",
                                                   "share a name"]),
    (["--epochs", "1.5"], ["--epochs", "1.5"]),
    (["--progress", "bogus"], ["'auto', 'bar', 'lines', 'none'"]),  # the whole list, not cut
    (["--optimizer", "bogus"], ["'sgd', 'momentum', 'nesterov', 'adam'"]),
    (["--out", ""], ["--out is empty"]),
    (["--out="], ["--out is empty"]),
])
def test_a_bad_flag_is_refused_before_anything_starts(tmp_path, argv, fragments):
    out = tmp_path / "out"
    gives_out = "--out" in argv or "--out=" in argv
    proc = cli(*T, *([] if gives_out else ["--out", str(out)]), *argv)
    assert_refused(proc, 2, *fragments)
    assert "writing to" not in proc.stdout
    assert not out.exists() and not (REPO / "results.json").exists()  # --out "" is not the current folder


def test_config_given_twice_is_refused(tmp_path):
    """`--config a.toml --config b.toml` is refused (one file is one setup), never run one and
    record the other."""
    (tmp_path / "a.toml").write_text("epochs = 1\n")
    (tmp_path / "b.toml").write_text("epochs = 2\n")
    out = tmp_path / "out"
    proc = cli(*T, "--out", str(out), "--config", str(tmp_path / "a.toml"), "--config", str(tmp_path / "b.toml"))
    assert_refused(proc, 2, "--config is given 2 times", "a.toml", "b.toml")
    assert not out.exists()


# ---------------------------------------------------------------- the TOML file
@pytest.mark.parametrize("study, text, fragments", [
    ("train", "epochs = 1.5\n", ["epochs = 1.5 is not a whole number"]),
    ("train", "epochs = true\n", ["epochs = true is not a whole number"]),
    ("train", 'epochs = "five"\n', ['epochs = "five" is not a whole number']),
    ("train", "lambdas = 0.1\n", ["lambdas = 0.1 is not a list of numbers"]),
    ("train", 'lambdas = [0, "a"]\n', ['"a" is not a number']),
    ("train", "seed = 1.5\n", ["seed = 1.5 is not a whole number"]),
    ("train", "learning-rates = [0.01]\nlearning_rates = [0.1]\n", ["'learning-rates' and 'learning_rates'"]),
    ("train", "momentum = nan\n", ["momentum: nan is not a finite number"]),
    ("train", 'out = ""\n', ['out = "" is not a path']),
    ("train", 'progress = "bogus"\n', ['"auto", "bar", "lines", "none"']),
    ("overfitting", "sizes = [500]\n", ["sizes = [500] is not a list of 2 whole numbers"]),
])
def test_a_toml_value_of_the_wrong_type_is_one_usage_line(tmp_path, study, text, fragments):
    (tmp_path / "setup.toml").write_text(text)
    out = tmp_path / "out"
    proc = cli("-m", f"experiments.{study}", "--quick", "--out", str(out), "--config", str(tmp_path / "setup.toml"))
    assert_refused(proc, 2, f"--config {tmp_path / 'setup.toml'}", *fragments)
    assert not out.exists()


# ---------------------------------------------------------------- settings that do not fit the data
@pytest.mark.parametrize("argv, fragment", [
    (["--train-images", "999999"], "--train-images 999999"),
    (["--val-images", "3000"], "--val-images 3000"),
    (["--batch-size", "2600"], "--batch-size 2600"),
])
def test_a_subset_that_does_not_fit_leaves_no_empty_folder(tmp_path, argv, fragment):
    out = tmp_path / "deeper" / "out"
    assert_refused(cli(*T, "--out", str(out), *argv), 2, fragment)
    assert not (tmp_path / "deeper").exists()  # every folder the run made is gone again


# ---------------------------------------------------------------- data paths
def test_manual_dir_naming_a_file_or_nothing_is_refused(tmp_path):
    (tmp_path / "file.gz").write_bytes(b"")
    for path, fragment in ((tmp_path / "file.gz", "is a file, not a folder"), (tmp_path / "missing", "no such folder")):
        out = tmp_path / "out"
        assert_refused(cli(*T, "--out", str(out), "--manual-dir", str(path)), 2, f"--manual-dir {path}", fragment)
        assert not out.exists()


def test_fashion_mnist_on_the_mnist_folder_does_not_say_replace_a_valid_file(tmp_path, mnist_dir):
    out = tmp_path / "out"
    proc = cli(*T, "--out", str(out), "--dataset", "fashion_mnist", "--manual-dir", str(mnist_dir),
               "--data-dir", str(tmp_path / "cache"))
    line = assert_refused(proc, 1, "holds the mnist files, not the fashion_mnist ones", "a folder of its own")
    assert "Replace" not in line and "replace" not in line
    assert not out.exists()


# ---------------------------------------------------------------- the API: types
CONFIGS = {name: importlib.import_module(f"experiments.{name}").Config
           for name in [*experiments.STUDIES, "train", "nielsen"] if experiments.available(name) or name in (
               "train", "nielsen")}


def values_of(tp):
    """A hypothesis strategy for valid values of a field's type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType")):
        return st.one_of(*[values_of(a) for a in args if a is not type(None)])
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(values_of(args[0]), min_size=1, max_size=4, unique_by=config_lib._grid_key).map(tuple)
        return st.tuples(*[values_of(a) for a in args])
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(1, 10_000)
    if tp is float:
        return st.floats(1e-6, 1e3, allow_nan=False, allow_infinity=False)
    if tp is str:
        return st.text("abcdefgh", min_size=1, max_size=8)
    if tp is Path:
        return st.text("abcdef", min_size=1, max_size=8).map(lambda s: Path("/tmp") / s)
    raise NotImplementedError(tp)


def fields_of(cls):
    return [(f, config_lib.field_types(cls)[f.name]) for f in dataclasses.fields(cls)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_recorded_setting_reads_back_as_the_value_that_ran(data):
    """The record is the object that ran: each field's JSON form (results.json's config) is
    brought back by the boundary's coercion to exactly the value, of exactly its type."""
    cls = data.draw(st.sampled_from(sorted(CONFIGS.values(), key=lambda c: c.__module__)))
    for f, tp in fields_of(cls):
        value = data.draw(values_of(tp), label=f.name)
        recorded = json.loads(json.dumps(results_lib.to_jsonable(value)))
        back = config_lib.coerce(tp, recorded)
        assert back == value and type(back) is type(value), (f.name, value, back)


def test_an_int_is_an_int_and_a_list_is_a_list():
    coerce = config_lib.coerce
    assert coerce(int, 3) == 3 and coerce(float, 3) == 3.0 and type(coerce(float, 3)) is float
    for tp, value in ((int, 1.5), (int, True), (int, "5"), (float, True), (float, "0.1"), (bool, 1),
                      (tuple[float, ...], 0.1), (tuple[float, ...], [0, "a"]), (tuple[int, int], [500]),
                      (typing.Literal["a", "b"], "c"), (Path, ""), (str, 3)):
        with pytest.raises(config_lib.Mismatch):
            coerce(tp, value)


def toml_text(values):
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (str, Path)):
            return json.dumps(str(v))
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)
    return "".join(f"{k.replace('_', '-')} = {value(v)}\n" for k, v in values.items())


SCIENCE = [(f, tp) for f, tp in fields_of(TrainConfig) if f.name not in config_lib.RUN_FIELDS]


def valid_train_settings():
    return st.fixed_dictionaries({f.name: values_of(tp) for f, tp in SCIENCE}).filter(
        lambda v: not config_lib.problems(dataclasses.replace(TrainConfig(), **v)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(values=valid_train_settings())
def test_a_toml_file_and_the_flags_give_the_same_config(tmp_path_factory, values):
    """Whatever the file says is what runs: a TOML file of valid settings parses to the config
    of those values, exactly (types included), and so does the same setup given as flags."""
    path = tmp_path_factory.mktemp("toml") / "setup.toml"
    path.write_text(toml_text(values))
    from_file = config_lib.parse(TrainConfig, ["--config", str(path)], prog="t")
    expected = dataclasses.replace(TrainConfig(config=path), **values)
    assert from_file == expected
    assert all(type(getattr(from_file, k)) is type(v) for k, v in values.items())
    flags = []
    for key, v in values.items():
        flags += [config_lib.flag(key), *(map(str, v) if isinstance(v, tuple) else [str(v)])] if not isinstance(
            v, bool) else [config_lib.flag(key) if v else "--no-" + key.replace("_", "-")]
    assert config_lib.parse(TrainConfig, flags, prog="t") == dataclasses.replace(expected, config=None)


@pytest.mark.parametrize("cls", sorted(CONFIGS.values(), key=lambda c: c.__module__), ids=lambda c: c.__module__)
def test_every_float_setting_refuses_nan_and_inf(cls):
    for f, tp in fields_of(cls):
        default = getattr(cls(), f.name)
        for bad in (math.nan, math.inf, -math.inf):
            if tp is float:
                value = bad
            elif typing.get_origin(tp) is tuple and float in typing.get_args(tp) and default:
                value = (bad, *default[1:])
            else:
                continue
            found = config_lib.problems(dataclasses.replace(cls(), **{f.name: value}))
            assert found and found[0][0] == config_lib.flag(f.name) and "not a finite number" in found[0][1], (
                f.name, bad, found)


# ---------------------------------------------------------------- the API: the hash
RUN_CONTROL = frozenset(f.name for f in dataclasses.fields(config_lib.StudyConfig)) - {"seed", "quick"}
"""The settings that say where and how to run (the shared ones but seed and quick), fixed here,
apart from the hash's own list, so that the check below cannot share its mistake."""


def insensitive_fields(cls, hash_fn, draw):
    """The science fields of ``cls`` (all but :data:`RUN_CONTROL`) whose change leaves
    ``hash_fn`` unchanged."""
    base = dataclasses.replace(cls(), quick=True).quick_variant()
    missed = []
    for f, tp in fields_of(cls):
        if f.name in RUN_CONTROL:
            continue
        old = getattr(base, f.name)
        new = draw(values_of(tp).filter(lambda v, old=old: v != old), label=f.name)
        if hash_fn(dataclasses.replace(base, **{f.name: new})) == hash_fn(base):
            missed.append(f.name)
    return missed


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_hash_moves_with_every_science_setting_and_no_run_setting(data):
    cls = data.draw(st.sampled_from(sorted(CONFIGS.values(), key=lambda c: c.__module__)))
    assert insensitive_fields(cls, config_lib.config_hash, data.draw) == []
    base = cls()
    for run_only in (dict(out=Path("/x")), dict(progress="none"), dict(quiet=True), dict(resume=True),
                     dict(debug=True), dict(tensorboard=True), dict(report_only=True)):
        assert config_lib.config_hash(dataclasses.replace(base, **run_only)) == config_lib.config_hash(base)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_hash_that_ignored_the_learning_rate_would_fail_the_sensitivity_check(data, monkeypatch):
    """The check above is not vacuous: with the learning rates left out of the hash (as if they
    were a run-control setting) it names them."""
    monkeypatch.setattr(config_lib, "RUN_FIELDS", config_lib.RUN_FIELDS | {"learning_rates"})
    assert "learning_rates" in insensitive_fields(TrainConfig, config_lib.config_hash, data.draw)


def test_nan_and_inf_never_hash_alike():
    hashes = {config_lib.config_hash(dataclasses.replace(TrainConfig(), momentum=v))
              for v in (math.nan, math.inf, -math.inf, 0.9)}
    assert len(hashes) == 4


def test_the_hash_covers_the_data_files(tmp_path):
    """--manual-dir and --gurmukhi (the path, and the Gurmukhi file's contents) enter the hash."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    base = TrainConfig(manual_dir=tmp_path / "a")
    assert config_lib.config_hash(base) != config_lib.config_hash(dataclasses.replace(base, manual_dir=tmp_path / "b"))
    npz = tmp_path / "g.npz"
    npz.write_bytes(b"first")
    with_file = dataclasses.replace(base, gurmukhi=npz)
    first = config_lib.config_hash(with_file)
    assert first != config_lib.config_hash(base)
    npz.write_bytes(b"other contents")
    os.utime(npz, ns=(1, 1))  # whatever the clock: a new size and time mean the contents are read again
    assert config_lib.config_hash(with_file) != first


# ---------------------------------------------------------------- the parser's messages
def test_choice_errors_list_every_choice():
    with pytest.raises(UsageError) as caught:
        config_lib.parse(TrainConfig, ["--progress", "bogus"], prog="t")
    assert "Expected one of ('auto', 'bar', 'lines', 'none')" in str(caught.value)
    with pytest.raises(UsageError) as caught:
        config_lib.parse(TrainConfig, ["--init", "bogus"], prog="t")
    assert all(repr(s) in str(caught.value) for s in typing.get_args(config_lib.field_types(TrainConfig)["init"]))


def test_a_list_of_layer_widths_may_repeat_but_a_grid_may_not():
    assert config_lib.parse(TrainConfig, ["--hidden", "64", "64"], prog="t").hidden == (64, 64)
    with pytest.raises(UsageError, match="--lambdas: 0.1 twice"):
        config_lib.parse(TrainConfig, ["--lambdas", "0.1", "0.1"], prog="t")
