"""Quiet failure (issue 18): Ctrl-C (once, or three times 50 ms apart), SIGTERM and a full disk
each end a study in one line `error: <what happened; what was kept> — <the fix>`, with no
traceback from any thread; partial files (a half-written figure, ``*.tmp``, an unfinished
checkpoint step) are removed, the output lock is released, and what finished is kept for
``--resume``. Each case runs the two-program worker study (tests/study_worker.py) as a
subprocess; the full-disk cases run on a small tmpfs and need root (skipped otherwise)."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "study_worker.py"


def start(out: Path, *argv, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), "--out", str(out), "--quiet", *argv], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "JAXNET_DEBUG": "", **(env or {})})


def finished_steps(folder: Path) -> list[int]:
    return sorted(int(p.name) for p in folder.glob("[0-9]*") if p.is_dir() and p.name.isdigit())


def stop_when(proc: subprocess.Popen, ready, signum: int, times: int) -> tuple[int, str]:
    """Sends ``signum`` ``times`` times, 50 ms apart, once ``ready()``; the exit status and stderr."""
    deadline = time.monotonic() + 300
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"the study ended before it could be stopped:\n{proc.stderr.read()}"
    for _ in range(times):
        proc.send_signal(signum)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def the_line(err: str) -> str:
    """The one error line; nothing else but the checkpoint module's "finishing the checkpoint
    being written … first" note, and no traceback."""
    assert "Traceback" not in err and "Exception" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and " — " in errors[0], err
    assert all(line.startswith(("error: ", "finishing the checkpoint being written")) for line in lines), err
    return errors[0]


def leftovers(out: Path) -> list[Path]:
    """Partial files: ``*.tmp``, empty files, unfinished checkpoint steps, the lock."""
    if not out.exists():
        return []
    return [p for p in out.rglob("*") if p.name.endswith(".tmp") or "orbax-checkpoint-tmp" in p.name
            or p.name == ".lock" or (p.is_file() and p.stat().st_size == 0)]


@pytest.mark.parametrize("signum, times, status, word", [
    (signal.SIGINT, 1, 130, "interrupted"),
    (signal.SIGINT, 3, 130, "interrupted"),
    (signal.SIGTERM, 1, 143, "terminated (SIGTERM)"),
], ids=["ctrl-c", "ctrl-c three times", "sigterm"])
def test_a_stopped_training_ends_in_one_line_and_keeps_its_checkpoints(tmp_path, signum, times, status, word):
    out = tmp_path / "run"
    code, err = stop_when(start(out), lambda: bool(finished_steps(out / "checkpoints" / "first")), signum, times)
    line = the_line(err)
    assert code == status, err
    assert line.startswith(f"error: {word}") and str(out / "checkpoints") in line and "--resume" in line, line
    assert leftovers(out) == []  # the lock released, no partial file or checkpoint step
    assert finished_steps(out / "checkpoints" / "first")


def test_sigterm_releases_the_lock_so_that_resume_finishes_the_run(tmp_path):
    out = tmp_path / "run"
    code, err = stop_when(start(out), lambda: bool(finished_steps(out / "checkpoints" / "second")), signal.SIGTERM, 1)
    line = the_line(err)
    assert code == 143 and f"the 1 finished run(s) are kept in {out / 'results.json'}" in line, line
    kept = json.loads((out / "results.json").read_text())
    assert kept["complete"] is False and [r["name"] for r in kept["runs"]] == ["first"]
    resumed = start(out, "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    done = json.loads((out / "results.json").read_text())
    assert done["complete"] is True and [r["name"] for r in done["runs"]] == ["first", "second"]
    assert done["runs"][0] == kept["runs"][0]  # the finished program was reused, not retrained


def test_ctrl_c_during_the_report_removes_the_half_drawn_figure(tmp_path):
    out = tmp_path / "run"
    proc = start(out, env={"JAXNET_TEST_REPORT_PAUSE": "30"})
    code, err = stop_when(proc, lambda: (out / "report-started").exists(), signal.SIGINT, 3)
    line = the_line(err)
    assert code == 130 and f"{out / 'results.json'} is complete" in line and "--report-only" in line, line
    assert not (out / "figure.png").exists() and not (out / "report-started").exists()
    assert json.loads((out / "results.json").read_text())["complete"] is True
    assert leftovers(out) == []


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a small tmpfs, which needs root")
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_before_anything_was_saved(tmp_path):
    with small_disk(tmp_path / "disk", "16k") as disk:
        out = disk / "run"
        proc = start(out)
        _, err = proc.communicate(timeout=300)
        line = the_line(err)
        assert proc.returncode == 1, err
        assert line.startswith(f"error: no space left on the device writing {out}"), line
        assert "nothing had been saved" in line and "free space" in line, line
        assert not out.exists()  # the folder it made and could not fill is gone


def test_a_full_disk_in_the_second_program_keeps_the_first(tmp_path):
    with small_disk(tmp_path / "disk", "4m") as disk:
        out = disk / "run"
        proc = start(out, env={"JAXNET_TEST_FILL_DISK": "1"})
        _, err = proc.communicate(timeout=300)
        line = the_line(err)
        assert proc.returncode == 1, err
        assert line.startswith(f"error: no space left on the device writing {out / 'checkpoints' / 'second'}"), line
        assert f"the 1 finished run(s) are kept in {out / 'results.json'}" in line and "--resume" in line, line
        kept = json.loads((out / "results.json").read_text())
        assert kept["complete"] is False and [r["name"] for r in kept["runs"]] == ["first"]
        assert leftovers(out) == []
        (disk / "ballast").unlink()  # space again: --resume reuses the first program and trains the second
        resumed = start(out, "--resume")
        _, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, err
        assert json.loads((out / "results.json").read_text())["runs"][0] == kept["runs"][0]


def test_a_full_disk_while_drawing_the_report(tmp_path):
    with small_disk(tmp_path / "disk", "2m") as disk:
        out = disk / "run"
        proc = start(out, env={"JAXNET_TEST_REPORT_BYTES": str(8 << 20)})
        _, err = proc.communicate(timeout=300)
        line = the_line(err)
        assert proc.returncode == 1, err
        assert line.startswith("error: no space left on the device writing"), line
        assert f"{out / 'results.json'} is complete" in line and "--report-only" in line, line
        assert not (out / "figure.png").exists() and leftovers(out) == []
        assert json.loads((out / "results.json").read_text())["complete"] is True
