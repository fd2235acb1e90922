"""Bad input and faults, tried as a user would (issue: reliability). Each CLI case runs as a
subprocess and must end in one line `error: <problem> — <fix>` on stderr, the right exit
status (2 usage, 1 run time), no traceback, and nothing created."""
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxnet import data

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "study_worker.py"
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz")


def cli(*argv, env=None, timeout=300):
    environment = {**os.environ, "JAXNET_DEBUG": "", **(env or {})}
    return subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=environment)


def assert_one_line(proc, status, *fragments):
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == status, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and " — " in errors[0], err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.mark.parametrize("argv, status, fragments", [
    (["--epochs", "0"], 2, ["--epochs", "at least 1 epoch"]),
    (["--epochs", "-1"], 2, ["--epochs"]),
    (["--seed", "99999999999999999999"], 2, ["--seed", "out of range"]),
    (["--batch-size", "two"], 2, ["--batch-size"]),
    (["--sizes", "5000", "500"], 2, ["--sizes"]),
])
def test_usage_errors(tmp_path, argv, status, fragments):
    out = tmp_path / "out"
    proc = cli("-m", "experiments.overfitting", *argv, "--out", str(out))
    assert_one_line(proc, status, *fragments)
    assert not out.exists()


def test_out_naming_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    assert_one_line(cli("-m", "experiments.overfitting", "--quick", "--out", str(tmp_path / "file")), 2,
                    "is a file, not a folder")
    assert_one_line(cli("-m", "experiments.overfitting", "--quick", "--out", str(tmp_path / "file" / "sub")), 2,
                    "is a file")


def test_missing_and_corrupt_mnist_files(tmp_path, mnist_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    proc = cli("-m", "experiments.overfitting", "--quick", "--out", str(out), "--manual-dir", str(empty),
               "--data-dir", str(tmp_path / "cache"), env={"JAXNET_MANUAL_DIR": ""})
    assert_one_line(proc, 1, "train-images-idx3-ubyte.gz")
    assert not out.exists()
    corrupt = tmp_path / "corrupt"
    shutil.copytree(mnist_dir, corrupt)
    with gzip.open(corrupt / FILES[1], "rb") as f:
        labels = bytearray(f.read())
    labels[-1] ^= 1
    with gzip.open(corrupt / FILES[1], "wb") as f:
        f.write(bytes(labels))
    proc = cli("-m", "experiments.overfitting", "--quick", "--out", str(out), "--manual-dir", str(corrupt),
               "--data-dir", str(tmp_path / "cache2"))
    assert_one_line(proc, 1, "checksum mismatch", FILES[1])
    assert not out.exists()
    debug = cli("-m", "experiments.overfitting", "--quick", "--out", str(out), "--manual-dir", str(corrupt),
                "--data-dir", str(tmp_path / "cache2"), "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr  # --debug shows where it came from


def test_missing_and_corrupt_gurmukhi(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    for path, fragment in ((tmp_path / "nowhere.npz", "does not exist"), (tmp_path / "bad.npz", "not a readable")):
        proc = cli("-m", "experiments.gurmukhi", "--quick", "--out", str(tmp_path / "out"), "--gurmukhi", str(path))
        assert_one_line(proc, 1, "--gurmukhi", fragment)
        assert "root=" not in proc.stderr and not (tmp_path / "out").exists()


def test_an_unwritable_data_dir_works_when_the_files_are_in_the_manual_folder(tmp_path, mnist_dir):
    """Nothing needs writing: the files are verified in place; the cache write only warns."""
    (tmp_path / "file").write_text("")
    with pytest.warns(UserWarning, match="could not write the cache"):
        ds = data.load("mnist", manual_dir=mnist_dir, data_dir=tmp_path / "file" / "tfds")
    assert ds.x_train.shape == (60000, 28, 28)


def test_the_recorded_command_is_shell_quoted(tmp_path):
    out = tmp_path / "with space"
    proc = cli(str(WORKER), "--out", str(out), "--epochs", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    command = json.loads((out / "results.json").read_text())["command"]
    assert f"'{out}'" in command


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "run"
    assert cli(str(WORKER), "--out", str(out), "--quiet").returncode == 0
    return json.loads((out / "results.json").read_text())


def _kill_when(out: Path, ready) -> None:
    proc = subprocess.Popen([sys.executable, str(WORKER), "--out", str(out), "--quiet"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _steps(folder: Path) -> list[int]:
    """The finished checkpoint steps (orbax writes a step under a temporary name first)."""
    return sorted(int(p.name) for p in folder.glob("[0-9]*") if p.is_dir() and p.name.isdigit()) if folder.exists() else []


# the default suite kills once, inside the second program after a checkpoint (a finished first
# program to reuse and a checkpoint to continue); the other two points run with -m slow
@pytest.mark.parametrize("point", [pytest.param("first program, after a checkpoint", marks=pytest.mark.slow),
                                   pytest.param("between the programs", marks=pytest.mark.slow),
                                   "second program, after a checkpoint"])
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, uninterrupted, point):
    expected = uninterrupted
    out = tmp_path / "killed"
    checkpoints = out / "checkpoints"
    ready = {
        "first program, after a checkpoint": lambda: bool(_steps(checkpoints / "first")),
        "between the programs": lambda: (out / "results.json").exists(),
        "second program, after a checkpoint": lambda: bool(_steps(checkpoints / "second")),
    }[point]
    _kill_when(out, ready)
    assert not (out / "report.md").exists(), "the run finished before it could be killed"
    proc = cli(str(WORKER), "--out", str(out), "--resume", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads((out / "results.json").read_text())
    for run_got, run_expected in zip(got["runs"], expected["runs"]):
        for key in ("epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            np.testing.assert_allclose(run_got["history"][key], run_expected["history"][key], rtol=1e-6, err_msg=key)
        assert run_got["final"]["w0_sum"] == pytest.approx(run_expected["final"]["w0_sum"], rel=1e-6)
