"""Checkpoints of a training run with orbax: the array state (params, optimizer state,
best params, RNG key) as a pytree, and the run's metadata (config, histories, epoch) as
JSON, one step directory per epoch, the newest :data:`KEEP` kept.

Orbax writes every step: one synchronous ``orbax.checkpoint.CheckpointManager`` per run
directory, for the life of the process, called on one writer thread of this module (a
``concurrent.futures`` pool of one). ``save`` blocks training only while it copies the
arrays on their device (so the engine may donate them at once) and takes their CRC-32s:
2-3 ms for the 784-128-64-10 network with momentum on a 2-core CPU machine
(``python -m benchmarks.checkpoint_save``), where orbax's own asynchronous save blocked
20-30 ms (its event loop and about ten thread starts per save). Orbax writes the step into a temporary directory and renames it when
complete, so a process killed mid-write leaves the earlier steps intact.

Every save lands: a save starts only once the previous one is on disk. When epochs are
faster than writes, ``save`` therefore blocks until the previous write finishes, and
training runs at the pace of the disk, with one step in flight, never a queue that a kill
could lose. ``wait(directory)`` blocks until the pending save is on disk;
``latest_epoch``, ``restore_meta``, ``restore`` and ``clear`` wait by themselves. Ctrl-C
and SIGTERM during ``save`` or a wait are held back until that call is done, then delivered.

Call ``wait`` or ``close`` when a run ends (``engine.finish`` waits). A save still in flight
when the interpreter exits may be lost (Python shuts down the thread pools orbax's writer
uses before it runs any ``atexit`` hook): like a kill, it leaves the earlier steps intact,
and the exit hook here reports it.

Each array's CRC-32 is stored with the step and checked on restore. A step that cannot be
read (a truncated array file, garbled JSON, a checksum mismatch) is skipped with one
:class:`CorruptCheckpointWarning` naming it, and the newest intact step is used instead.
"""
from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import gc
import json
import os
import shutil
import signal
import sys
import threading
import warnings
import zlib
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp

KEEP = 2  # steps kept on disk: the newest, and one to fall back to if it is unreadable


class ConfigMismatchError(ValueError):
    """The run directory holds a checkpoint of a different configuration."""


class NoIntactCheckpointError(ValueError):
    """Every checkpoint step in the run directory is unreadable."""


class CorruptCheckpointWarning(UserWarning):
    """A checkpoint step could not be read and was skipped."""


_managers: dict[Path, ocp.CheckpointManager] = {}
_pending: dict[Path, concurrent.futures.Future] = {}  # the save in flight, per directory
_reported: dict[Path, set[int]] = {}  # unreadable steps already warned about, per directory
_writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxnet-checkpoint")


def _path(directory: str | Path) -> Path:
    return Path(directory).resolve()


def _manager(path: Path, *, create: bool = True) -> ocp.CheckpointManager | None:
    """The manager of ``path`` (None if ``path`` does not exist and ``create`` is False)."""
    if path in _managers and not path.exists():  # deleted behind our back: start over
        _close(path)
    if path not in _managers:
        if not create and not path.exists():
            return None
        options = ocp.CheckpointManagerOptions(max_to_keep=KEEP, enable_async_checkpointing=False, create=True)
        _managers[path] = ocp.CheckpointManager(path, options=options)
    return _managers[path]


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # what a save in flight holds back


@contextlib.contextmanager
def _holding_signals(path: Path):
    """Holds back Ctrl-C (SIGINT) and SIGTERM until the block ends, then delivers the first one
    that came: orbax, interrupted while it starts or finishes a save, would leave its threads
    writing as the interpreter shuts down (and print their tracebacks). Only the main thread
    receives signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum, frame):
        if not held:
            os.write(2, f"finishing the checkpoint being written to {path} first\n".encode())
        held.append(signum)

    previous = {signum: signal.signal(signum, hold) for signum in HELD_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if held:
            signal.raise_signal(held[0])


def _finished(path: Path) -> None:
    """Waits for the pending save to ``path``, raising its error."""
    pending = _pending.pop(path, None)
    if pending is None:
        return
    with _holding_signals(path):
        try:
            pending.result()
        except Exception as error:  # noqa: BLE001 — orbax and tensorstore raise their own kinds
            raise RuntimeError(f"saving a checkpoint to {path} failed: {_one_line(error)}") from error


def save(directory: str | Path, epoch: int, state: Any, meta: dict) -> None:
    """Writes ``state`` (a pytree of arrays) and ``meta`` (JSON-able) as epoch ``epoch``.

    Blocks until the previous save is on disk and the arrays are copied on their device;
    orbax writes the copies on this module's writer thread. Steps at or after ``epoch`` already
    in ``directory`` (from a run resumed at an earlier epoch) are replaced. An error of the
    previous save is raised here (and this save is not started), or by :func:`wait`.

    Args:
      directory: the run directory (created if needed).
      epoch: the step number.
      state: the arrays; they may be donated or overwritten as soon as this returns.
      meta: JSON-able metadata (NumPy and JAX scalars and arrays are converted).
    """
    path = _path(directory)
    manager = _manager(path)
    _finished(path)
    stale = [step for step in manager.all_steps() if step >= epoch]
    for step in stale:
        manager.delete(step)
    _reported.get(path, set()).difference_update(stale)
    with _holding_signals(path):
        try:
            state = jax.device_put(state, may_alias=False)  # a copy of its own: the engine donates the original
            meta = _normalize(meta)
            items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta)}
            integrity = _checksums(state, meta)
            if integrity is not None:
                items["integrity"] = ocp.args.JsonSave(integrity)
        except Exception as error:  # noqa: BLE001
            raise RuntimeError(f"saving a checkpoint to {path} failed: {_one_line(error)}") from error
        _pending[path] = _writer.submit(manager.save, epoch, force=True, args=ocp.args.Composite(**items))


def _checksums(state: Any, meta: Any) -> dict | None:
    """CRC-32 of every array's bytes and of the metadata, to catch a silently altered file on
    restore; None when some array lives partly on other processes."""
    leaves = jax.tree.leaves(state)
    if not all(getattr(leaf, "is_fully_addressable", True) for leaf in leaves):
        return None
    arrays = []
    for leaf in leaves:
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        arrays.append(zlib.crc32(np.ascontiguousarray(leaf).reshape(-1).view(np.uint8)))
    return {"arrays": arrays, "meta": zlib.crc32(json.dumps(meta, sort_keys=True).encode())}


def wait(directory: str | Path) -> None:
    """Blocks until the pending save to ``directory`` is on disk (raising its error)."""
    _finished(_path(directory))


def close(directory: str | Path) -> None:
    """Waits for the pending save to ``directory`` and releases its manager (a later call
    creates a new one)."""
    _close(_path(directory))


def _close(path: Path) -> None:
    manager = _managers.pop(path, None)
    _reported.pop(path, None)
    try:
        _finished(path)
    finally:
        if manager is not None:
            manager.close()


def close_all() -> None:
    """Waits for every pending save of this process and releases every manager (an error is
    reported as a warning, and the others are still closed)."""
    for path in list(_managers):
        try:
            _close(path)
        except Exception as error:  # noqa: BLE001 — report it and carry on with the others
            warnings.warn(f"{error} (a save still running at exit cannot finish: call "
                          "jaxnet.checkpoint.wait(directory) when a run ends)",
                          CorruptCheckpointWarning, stacklevel=2)


atexit.register(close_all)


def latest_epoch(directory: str | Path) -> int | None:
    """The newest saved epoch in ``directory``, or None (after the pending save finishes;
    whether that step is readable is known only when :func:`restore` reads it)."""
    manager = _settled(_path(directory))
    return None if manager is None else manager.latest_step()


def _settled(path: Path) -> ocp.CheckpointManager | None:
    """The manager after its pending save, with its step list re-read from disk (another
    process may have written there); None if ``path`` does not exist."""
    _finished(path)
    manager = _manager(path, create=False)
    if manager is not None:
        manager.reload()
    return manager


def restore_meta(directory: str | Path) -> tuple[int, dict]:
    """``(epoch, meta)`` of the newest checkpoint whose metadata is readable, without reading
    its arrays (so that a run directory of another configuration can be refused before
    shapes clash)."""
    return _newest_readable(directory, lambda manager, step: manager.restore(
        step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta)


def restore(directory: str | Path, like: Any) -> tuple[int, Any, dict]:
    """``(epoch, state, meta)`` of the newest intact checkpoint.

    Args:
      directory: the run directory.
      like: the state's structure, shapes and dtypes (e.g. the freshly initialized state).
    Returns:
      The newest step whose arrays and metadata both read back and match their checksums;
      newer unreadable steps are skipped with a :class:`CorruptCheckpointWarning`.
    Raises:
      FileNotFoundError: ``directory`` holds no checkpoint.
      NoIntactCheckpointError: every step is unreadable.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)

    def read(manager, step):
        items = {"state": ocp.args.StandardRestore(abstract), "meta": ocp.args.JsonRestore()}
        checked = (Path(manager.directory) / str(step) / "integrity").exists()  # absent: multi-process
        if checked:
            items["integrity"] = ocp.args.JsonRestore()
        restored = manager.restore(step, args=ocp.args.Composite(**items))
        if checked and _checksums(restored.state, restored.meta) != restored.integrity:
            raise ValueError("its arrays or metadata differ from what was written (checksum mismatch)")
        return restored.state, restored.meta

    epoch, (state, meta) = _newest_readable(directory, read)
    return epoch, state, meta


def _newest_readable(directory: str | Path, read: Callable[[ocp.CheckpointManager, int], Any]) -> tuple[int, Any]:
    path = _path(directory)
    manager = _settled(path)
    steps = sorted(manager.all_steps() if manager is not None else [], reverse=True)
    if not steps:
        raise FileNotFoundError(f"no checkpoint in {directory}; run without --resume to start afresh")
    reported = _reported.setdefault(path, set())
    with _quiet_abandoned_reads():
        for step in steps:
            try:
                return step, read(manager, step)
            except Exception as error:  # noqa: BLE001 — orbax, tensorstore and json each raise their own kind
                last_error = error
            _close_abandoned_reads()
            if step not in reported:
                reported.add(step)
                warnings.warn(f"checkpoint step {step} in {directory} is unreadable and was skipped "
                              f"({_one_line(last_error)}); falling back to an older step", CorruptCheckpointWarning,
                              stacklevel=3)
    raise NoIntactCheckpointError(
        f"no intact checkpoint in {directory}: steps {sorted(steps)} are all unreadable (newest error: "
        f"{_one_line(last_error)}); run without --resume (resume=False) to start afresh") from last_error


@contextlib.contextmanager
def _quiet_abandoned_reads():
    """Works around an orbax bug: when one array of a step fails to read, orbax closes its
    event loop with the step's other reads still in flight; later they report "Event loop
    is closed" from tensorstore's threads and "exception ignored" when collected. Inside
    this block those reports, repeats of a failure reported once already, are dropped;
    :func:`_close_abandoned_reads` ends the reads left over."""
    previous = sys.unraisablehook

    def hook(unraisable):
        code = getattr(unraisable.object, "cr_code", None)
        if not (str(unraisable.exc_value) == "Event loop is closed" or "orbax" in getattr(code, "co_filename", "")):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _close_abandoned_reads() -> None:
    for task in [t for t in gc.get_objects() if isinstance(t, asyncio.Task)]:
        if not task.done() and task.get_loop().is_closed():
            with contextlib.suppress(Exception):  # orbax re-raises the GeneratorExit as an Exception
                task.get_coro().close()


def clear(directory: str | Path) -> None:
    """Deletes every checkpoint step in ``directory`` (a fresh run there starts clean, so
    stale steps of an earlier run are neither kept as "newest" nor resumed later)."""
    path = _path(directory)
    manager = _settled(path)
    if manager is None:
        return
    for step in manager.all_steps():
        manager.delete(step)
    for leftover in path.glob("*.orbax-checkpoint-tmp*"):  # an unfinished save of a killed run
        shutil.rmtree(leftover, ignore_errors=True)
    _reported.pop(path, None)


def check_config(saved: dict, current: dict, directory: str | Path) -> None:
    """ConfigMismatchError naming every key whose value differs."""
    saved, current = _normalize(saved), _normalize(current)
    keys = sorted(set(saved) | set(current))
    differences = [f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}" for k in keys if saved.get(k) != current.get(k)]
    if differences:
        raise ConfigMismatchError(
            f"{directory} holds a run with a different configuration, so it cannot be resumed ("
            + "; ".join(differences) + "). Use another --out directory, or drop --resume to start afresh."
        )


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200] if text else ''}"


def _normalize(config: dict) -> dict:
    return json.loads(json.dumps(config, default=_json_default, sort_keys=True))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
