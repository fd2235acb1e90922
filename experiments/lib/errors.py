"""How a command fails: one line on stderr, ``error: <what is wrong> — <how to fix it>``.

Exit status 2 for a usage error (a flag, a config file, an output folder), 1 for a failure at
run time (missing data, a damaged file, a full disk, a bug), 130 for Ctrl-C and 143 for SIGTERM.
No traceback unless ``--debug`` or ``JAXNET_DEBUG=1``: the traceback is for us, the line is for
the user.

Stopping is quiet too (:func:`guarded`): SIGTERM is handled like Ctrl-C (the same clean-up: the
output lock released, partial files removed, one line); a second Ctrl-C or SIGTERM while the
first is being handled is ignored, so that the clean-up finishes and no traceback escapes from
it; an exception in a background thread is kept for the one line instead of printed.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import signal
import sys
import threading
import traceback
from typing import Any, Callable, Iterator, NoReturn, Sequence, TypeVar

T = TypeVar("T")

NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class UsageError(Exception):
    """A user error: what is wrong and how to fix it. Exit status 2 by default."""

    def __init__(self, problem: str, fix: str, *, status: int = 2):
        super().__init__(f"{problem} — {fix}")
        self.problem, self.fix, self.status = problem, fix, status


class RunError(UsageError):
    """A failure at run time that the user can act on (missing data, a file in use). Exit status 1."""

    def __init__(self, problem: str, fix: str, *, status: int = 1):
        super().__init__(problem, fix, status=status)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt (so that every
    ``finally`` and ``with`` clean-up runs)."""


def stop_status(error: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (128 + the signal number, as shells report them)."""
    return 128 + (signal.SIGTERM if isinstance(error, Terminated) else signal.SIGINT)


def stop_word(error: BaseException) -> str:
    return "terminated (SIGTERM)" if isinstance(error, Terminated) else "interrupted"


def debug_requested(argv: Sequence[str] | None = None) -> bool:
    """``--debug`` on the command line or ``JAXNET_DEBUG=1`` in the environment."""
    argv = sys.argv[1:] if argv is None else argv
    return "--debug" in argv or os.environ.get("JAXNET_DEBUG", "") not in ("", "0")


def fail(message: str, status: int) -> NoReturn:
    """Prints ``error: message`` (one line) to stderr and exits with ``status``."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    raise SystemExit(status)


def os_error_line(error: OSError, where: str | None = None, fix: str = "choose a writable --out folder") -> str | None:
    """The one line of a write that the system refused (full disk, permissions), or None."""
    filename = getattr(error, "filename", None) or where or "a file"
    if error.errno in NO_SPACE:
        return (f"no space left on the device writing {filename} — free space on that disk or {fix}; "
                "finished runs are kept (rerun with --resume)")
    if isinstance(error, (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)) or (
            error.errno in NOT_WRITABLE):
        return f"cannot write {filename}: {error.strerror or error} — {fix}"
    return None


def no_space(error: BaseException) -> OSError | None:
    """The full-disk error behind ``error``: an OSError with ENOSPC / EDQUOT in its chain of
    causes, or the text of one (orbax and tensorstore wrap it in their own errors); else None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in NO_SPACE:
            return error
        if "No space left on device" in str(error) or "os_error_code='28'" in str(error):
            match = re.search(r"(?:saving a checkpoint to|writing local file) \"?([^\s\":]+)", str(error))
            return OSError(errno.ENOSPC, "No space left on device", match.group(1) if match else None)
        error = error.__cause__ or error.__context__
    return None


def one_line(error: BaseException) -> tuple[str, int]:
    """The one-line message and exit status for an exception escaping a command."""
    from jaxnet.data import errors as data_errors

    if isinstance(error, UsageError):
        return str(error), error.status
    if isinstance(error, data_errors.DataError):
        text = " ".join(str(error).split())
        return text if "—" in text else f"{text} — see the README's Data section", 1
    if isinstance(error, OSError) and os_error_line(error):
        return os_error_line(error), 1
    if no_space(error) is not None:
        return os_error_line(no_space(error)), 1
    if isinstance(error, KeyboardInterrupt):
        return (f"{stop_word(error)} — run the command again (a study continues from what it saved with --resume)",
                stop_status(error))
    name = type(error).__name__
    return f"{name}: {' '.join(str(error).split())} — rerun with --debug for the traceback", 1


# ---------------------------------------------------------------- signals and threads
_state: dict[str, Any] = {"depth": 0, "signal": None, "thread_errors": []}


def _on_signal(signum: int, frame: Any) -> None:
    if _state["signal"] is not None:  # already stopping: let the clean-up finish
        return
    if signum == signal.SIGTERM:
        # delivered as SIGINT, so that whatever holds Ctrl-C back for a moment (a checkpoint
        # save being started: jaxnet.checkpoint) holds SIGTERM back too; it arrives here after
        if not _state.get("terminating"):
            _state["terminating"] = True
            signal.raise_signal(signal.SIGINT)
        return
    terminating = _state.pop("terminating", False)
    _state["signal"] = signal.SIGTERM if terminating else signum
    raise Terminated() if terminating else KeyboardInterrupt()


def _on_thread_error(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    _state["thread_errors"].append(args.exc_value)
    if _state.get("debug"):
        traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback)


QUIET_LOGGERS = ("absl", "orbax", "asyncio")
"""Loggers whose error records (a checkpoint thread's traceback, logged by orbax through absl;
an unretrieved asyncio task of its writer) are dropped without --debug: the same error reaches
the main thread, which says it in one line."""


def _drop_errors(record: logging.LogRecord) -> bool:
    return record.levelno < logging.ERROR


def _on_uncaught(exc_type: type, value: BaseException, tb: Any) -> None:
    _state["thread_errors"].append(value)


def _on_unraisable(unraisable: Any) -> None:
    _state["thread_errors"].append(unraisable.exc_value)


def thread_errors() -> list[BaseException]:
    """Exceptions raised in background threads (e.g. a checkpoint write) since the command began."""
    return list(_state["thread_errors"])


@contextlib.contextmanager
def quiet_stopping(debug: bool = False) -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt / :class:`Terminated` in the main thread, once;
    later ones are ignored while the first is handled. Background-thread exceptions are kept
    (:func:`thread_errors`), not printed. Nested uses share the outermost's handlers. After a
    signal the process is on its way out: the handlers are left ignoring, so that nothing
    interrupts the interpreter's own shutdown (threads joining, files closing)."""
    outermost = _state["depth"] == 0
    main = threading.current_thread() is threading.main_thread()
    saved: dict[int, Any] = {}
    saved_hook = threading.excepthook
    saved_hooks = (sys.excepthook, sys.unraisablehook)
    if outermost:
        _state.update(signal=None, thread_errors=[], debug=debug, terminating=False)
        threading.excepthook = _on_thread_error
        if not debug:
            for name in QUIET_LOGGERS:
                logging.getLogger(name).addFilter(_drop_errors)
            # what C extensions print for an exception in a callback of theirs (tensorstore's,
            # calling into orbax's closed event loop after a failed save), and what Python
            # cannot raise (an error in a finaliser): kept, not printed
            sys.excepthook, sys.unraisablehook = _on_uncaught, _on_unraisable
        if main:
            for signum in (signal.SIGINT, signal.SIGTERM):
                saved[signum] = signal.signal(signum, _on_signal)
    _state["depth"] += 1
    _state["keep_quiet"] = False
    try:
        yield
    finally:
        _state["depth"] -= 1
        if outermost:
            if main:
                for signum, handler in saved.items():
                    signal.signal(signum, signal.SIG_IGN if _state["signal"] is not None else handler)
            # after a failure at run time the process is on its way out, and the background work
            # of a failed checkpoint write (orbax's asyncio tasks, tensorstore's callbacks) may
            # still report the same error while the interpreter shuts down: stay quiet until
            # then (an in-process caller keeps these quiet hooks; --debug never installs them)
            if _state["signal"] is None and not _state["keep_quiet"]:
                threading.excepthook = saved_hook
                sys.excepthook, sys.unraisablehook = saved_hooks
                for name in QUIET_LOGGERS:
                    logging.getLogger(name).removeFilter(_drop_errors)


def guarded(function: Callable[[], T], argv: Sequence[str] | None = None) -> T:
    """Runs ``function``; any exception becomes one line on stderr and an exit status
    (the traceback too with ``--debug`` / ``JAXNET_DEBUG=1``). Ctrl-C and SIGTERM end the same
    way (130, 143), once, whatever else arrives meanwhile (:func:`quiet_stopping`)."""
    debug = debug_requested(argv)
    with quiet_stopping(debug):
        try:
            return function()
        except SystemExit:
            raise
        except BaseException as error:  # noqa: BLE001  (KeyboardInterrupt too: no traceback for Ctrl-C)
            if debug:
                traceback.print_exc()
            message, status = one_line(error)
            _state["keep_quiet"] = status != 2  # a usage error ran nothing that could leave work behind
            fail(message, status)
