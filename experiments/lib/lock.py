"""One writer per output folder: ``<out>/.lock`` holds the writer's pid.

A second run on the same ``--out`` is refused while the first is alive (two writers would
mix their files, last writer wins); the lock of a process that died (SIGKILL, a crash) is
stale and is taken over with a one-line note. The lock is released however the block ends
(an error, Ctrl-C, SIGTERM: :func:`experiments.lib.errors.guarded` turns SIGTERM into the same
exception as Ctrl-C, so the ``with`` block unwinds).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from experiments.lib.errors import RunError

LOCK_NAME = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class OutputLock:
    """``with OutputLock(out): ...`` holds ``<out>/.lock`` for the block."""

    def __init__(self, out: Path):
        self.path = Path(out) / LOCK_NAME

    def __enter__(self) -> "OutputLock":
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    pid = -1
                if pid > 0 and pid != os.getpid() and _alive(pid):
                    raise RunError(f"{self.path.parent} is in use by another run (pid {pid}, lock {self.path})",
                                   "wait for it to finish or choose another --out") from None
                print(f"note: taking over the stale lock {self.path} (pid {pid} is gone)", file=sys.stderr)
                self.path.unlink(missing_ok=True)
                continue
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(f"{os.getpid()}\n")
            except BaseException:  # a full disk (or Ctrl-C) while writing the pid: leave no empty lock behind
                self.path.unlink(missing_ok=True)
                raise
            return self
        raise RunError(f"could not take the lock {self.path}", "delete it if no run is using the folder")

    def __exit__(self, *exc: object) -> None:
        try:
            if self.path.read_text().split()[0] == str(os.getpid()):
                self.path.unlink()
        except (OSError, IndexError):
            pass
