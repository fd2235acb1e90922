"""Failing cleanly: what a stopped or failed run removes (half-written files, unfinished
checkpoint steps, the folders it created and left empty) and the one line that says what was
kept and the fix."""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path
from typing import Sequence

from experiments.lib.errors import RunError, UsageError, no_space, os_error_line, stop_status, stop_word
from experiments.lib.lock import LOCK_NAME
from experiments.lib.results import read_results

KEPT = ("checkpoints", "arrays", "tb")  # folders whose files a failed step never removes
ATOMIC = ("results.json", "metrics.csv", LOCK_NAME)  # written whole or not at all: never removed


def files(out: Path) -> dict[Path, tuple[int, int]]:
    """Every file under ``out`` (not in checkpoints/, whose writer keeps its own temporary
    folders) with its size and modification time."""
    found = {}
    if not out.is_dir():
        return found
    for root, dirs, files in os.walk(out):
        if Path(root) == out:
            dirs[:] = [d for d in dirs if d != "checkpoints"]
        for name in files:
            path = Path(root) / name
            with contextlib.suppress(OSError):
                stat = path.stat()
                found[path] = (stat.st_size, stat.st_mtime_ns)
    return found


def remove_partial(out: Path, before: dict[Path, tuple[int, int]], *, report_stage: bool) -> list[Path]:
    """Removes what a failed step left half-written: ``*.tmp`` files and empty files it made;
    in the report stage also every figure and page it made or changed (a figure cut short by
    Ctrl-C looks whole; --report-only draws them all again from results.json). Never removes
    results.json or metrics.csv (written atomically), the lock, nor anything under :data:`KEPT`.
    Returns the removed files that were visibly partial (``*.tmp`` or empty), newest first."""
    partial = []
    for path, (size, mtime) in sorted(files(out).items(), key=lambda item: -item[1][1]):
        touched = before.get(path) != (size, mtime)
        kept = path.relative_to(out).parts[0] in KEPT or path.name in ATOMIC
        cut = path.name.endswith(".tmp") or (touched and size == 0 and not kept)
        if cut or (report_stage and touched and not kept):
            with contextlib.suppress(OSError):
                path.unlink()
                if cut:
                    partial.append(path)
    return partial


def remove_if_empty(top: Path, out: Path) -> bool:
    """Removes ``out`` and its parents up to ``top`` (the folders this run created) where they
    hold nothing but empty folders. Returns whether ``out`` is gone."""
    if not out.is_dir():
        return not out.exists()
    for root, dirs, files in os.walk(out, topdown=False):
        if not files and not os.listdir(root):
            with contextlib.suppress(OSError):
                os.rmdir(root)
    folder, top = out.absolute(), top.absolute()
    while folder != top.parent and (folder == top or top in folder.parents):
        if folder.is_dir():
            if any(folder.iterdir()):
                break
            with contextlib.suppress(OSError):
                folder.rmdir()
        folder = folder.parent
    return not out.exists()


def settle_checkpoints() -> None:
    """Lets the checkpoint save in flight land (orbax cannot finish it once the interpreter
    shuts down; it would print its threads' tracebacks). Its error, if any, is the run's
    error already (the engine raises it at the next save), so it is not repeated here."""
    if "jaxnet.checkpoint" not in sys.modules:
        return
    from jaxnet import checkpoint

    def close_all() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.suppress(Exception):
                checkpoint.close_all()

    # on a thread of its own: a Ctrl-C meanwhile meets the main thread's handler (which ignores
    # it while stopping) instead of the checkpoint module's, which would announce it again
    closer = threading.Thread(target=close_all, name="jaxnet-settle-checkpoints", daemon=True)
    closer.start()
    closer.join()


def remove_unfinished_checkpoints(out: Path) -> None:
    """Removes the step folders a stopped or failed save left unfinished (orbax writes a step
    as ``<step>.orbax-checkpoint-tmp*`` and renames it when complete; resume never reads them)."""
    for partial in (out / "checkpoints").glob("*/*.orbax-checkpoint-tmp*"):
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)


def first_missing(out: Path) -> Path | None:
    """The outermost folder of ``out`` that does not exist yet (None if ``out`` exists)."""
    if out.exists():
        return None
    top = out.absolute()
    while not top.parent.exists():
        top = top.parent
    return top


def _saved(out: Path, start: dict[Path, tuple[int, int]]) -> str:
    """What a stopped run kept, for its one line (a results.json this run has not written is
    not its own: ``start`` holds the files as they were when it began)."""
    path = out / "results.json"
    try:
        ours = path.exists() and start.get(path) != (path.stat().st_size, path.stat().st_mtime_ns)
        results = read_results(path) if ours else None
    except (UsageError, OSError):
        results = None
    if results and results.get("complete") is True:
        return f"{path} is complete"
    if results and results.get("runs"):
        return f"the {len(results['runs'])} finished run(s) are kept in {path}"
    if (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir()):
        return f"no run had finished; the checkpoints are kept in {out / 'checkpoints'}"
    return "no run had finished"


def failure(error: BaseException, out: Path, *, stage: str, removed: Sequence[Path], gone: bool,
             start: dict[Path, tuple[int, int]] | None = None) -> UsageError | None:
    """The one-line error of a run stopped by Ctrl-C, SIGTERM or a refused write, naming what
    was kept and the fix; None for any other error."""
    report = stage == "report"
    start = {} if start is None else start
    if isinstance(error, KeyboardInterrupt):
        if gone:
            return RunError(f"{stop_word(error)}; nothing had been saved, and {out} was removed",
                            "run the command again", status=stop_status(error))
        fix = (f"rebuild the report with --report-only --out {out}" if report
               else "rerun the same command with --resume to continue")
        partial = f"; the partial {removed[0].name} was removed" if removed else ""
        return RunError(f"{stop_word(error)}: {_saved(out, start)}{partial}",
                        fix, status=stop_status(error))
    if not isinstance(error, OSError) and no_space(error) is not None:
        error = no_space(error)
    if isinstance(error, OSError):
        where = error.filename or (f"{removed[0]} (removed)" if removed else
                                   f"the report into {out}" if report else f"into {out}")
        line = os_error_line(error, str(where))
        if line is None:
            return None
        problem = line.split(" — ")[0]
        if "no space" not in problem:
            return RunError(problem, "choose a writable --out folder")
        if gone:
            return RunError(f"{problem}; nothing had been saved, and {out} was removed",
                            "free space on that disk or choose another --out, then run the command again")
        fix = ("free space on that disk or choose another --out, then rebuild the report with --report-only"
               if report else "free space on that disk or choose another --out, then rerun with --resume")
        return RunError(f"{problem}; {_saved(out, start)}", fix)
    return None
