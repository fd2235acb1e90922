"""How a command fails: one line on stderr, ``error: <what is wrong> — <how to fix it>``.

Exit status 2 for a usage error (a flag, a config file, an output folder), 1 for a failure at
run time (missing data, a damaged file, a bug). No traceback unless ``--debug`` or
``JAXNET_DEBUG=1``: the traceback is for us, the line is for the user.
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import Callable, NoReturn, Sequence, TypeVar

T = TypeVar("T")


class UsageError(Exception):
    """A user error: what is wrong and how to fix it. Exit status 2 by default."""

    def __init__(self, problem: str, fix: str, *, status: int = 2):
        super().__init__(f"{problem} — {fix}")
        self.problem, self.fix, self.status = problem, fix, status


class RunError(UsageError):
    """A failure at run time that the user can act on (missing data, a file in use). Exit status 1."""

    def __init__(self, problem: str, fix: str):
        super().__init__(problem, fix, status=1)


def debug_requested(argv: Sequence[str] | None = None) -> bool:
    """``--debug`` on the command line or ``JAXNET_DEBUG=1`` in the environment."""
    argv = sys.argv[1:] if argv is None else argv
    return "--debug" in argv or os.environ.get("JAXNET_DEBUG", "") not in ("", "0")


def fail(message: str, status: int) -> NoReturn:
    """Prints ``error: message`` (one line) to stderr and exits with ``status``."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    raise SystemExit(status)


def one_line(error: BaseException) -> tuple[str, int]:
    """The one-line message and exit status for an exception escaping a command."""
    from jaxnet.data import errors as data_errors

    if isinstance(error, UsageError):
        return str(error), error.status
    if isinstance(error, data_errors.DataError):
        text = " ".join(str(error).split())
        return text if "—" in text else f"{text} — see the README's Data section", 1
    if isinstance(error, (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)):
        return (f"cannot write {getattr(error, 'filename', None) or ''}: {error.strerror or error} — "
                "choose a writable --out folder"), 1
    if isinstance(error, KeyboardInterrupt):
        return "interrupted — finished runs are kept; rerun with --resume to continue", 130
    name = type(error).__name__
    return f"{name}: {' '.join(str(error).split())} — rerun with --debug for the traceback", 1


def guarded(function: Callable[[], T], argv: Sequence[str] | None = None) -> T:
    """Runs ``function``; any exception becomes one line on stderr and an exit status
    (the traceback too with ``--debug`` / ``JAXNET_DEBUG=1``)."""
    try:
        return function()
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001  (KeyboardInterrupt too: no traceback for Ctrl-C)
        if debug_requested(argv):
            traceback.print_exc()
        message, status = one_line(error)
        fail(message, status)
