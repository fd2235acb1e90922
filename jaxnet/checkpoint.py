"""Checkpoints of a training run with orbax: the array state (params, optimizer state,
best params, RNG key) as a pytree, and the run's metadata (config, histories, epoch) as
JSON, one step directory per epoch, the newest :data:`KEEP` kept.

One ``orbax.checkpoint.CheckpointManager`` (asynchronous checkpointing) serves each run
directory for the life of the process, created on first use and cached by resolved path.
``save`` blocks only to take a device-side copy of the state (about a millisecond for the
784-128-64-10 network with momentum); one background thread hands it to orbax, which
writes each step into a temporary directory and renames it when complete, so a process
killed mid-write leaves the earlier steps intact. ``wait(directory)`` blocks until pending
saves are on disk; ``latest_epoch``, ``restore_meta``, ``restore`` and ``clear`` wait by
themselves, so they never see a half-written step. Pending saves are finished at exit.

A step that cannot be read (a truncated array file, garbled JSON) is skipped with a
:class:`CorruptCheckpointWarning` naming it, and the newest readable step is used instead.
"""
from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401  (its exit hook must be registered before ours; see close_all)
import functools
import json
import shutil
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


_lock = threading.RLock()
_managers: dict[Path, ocp.CheckpointManager] = {}
_reported: dict[Path, set[int]] = {}  # unreadable steps already warned about, per directory


def _path(directory: str | Path) -> Path:
    return Path(directory).resolve()


def _new_manager(path: Path) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=KEEP, enable_async_checkpointing=True, create=True)
    return ocp.CheckpointManager(path, options=options)


def _manager(directory: str | Path, *, create: bool = True) -> ocp.CheckpointManager | None:
    """The cached manager of ``directory`` (None if it does not exist and ``create`` is False)."""
    path = _path(directory)
    with _lock:
        manager = _managers.get(path)
        if manager is not None and not path.exists():  # deleted behind our back: start over
            _drop(path)
            manager = None
        if manager is None:
            if not create and not path.exists():
                return None
            manager = _managers[path] = _new_manager(path)
        return manager


def _drop(path: Path) -> None:
    manager = _managers.pop(path, None)
    _reported.pop(path, None)
    if manager is not None:
        try:
            manager.close()
        except Exception as error:  # noqa: BLE001 — its directory is gone; nothing left to save into
            warnings.warn(f"pending checkpoint save in {path} failed: {error}", CorruptCheckpointWarning, stacklevel=3)


def _settled(directory: str | Path) -> ocp.CheckpointManager | None:
    """The manager after every pending save has finished, with its step list re-read from
    disk (another process may have written there); None if ``directory`` does not exist.
    Call it holding ``_lock``, after ``_writer.drain`` (the writer needs the lock)."""
    manager = _manager(directory, create=False)
    if manager is not None:
        manager.wait_until_finished()
        manager.reload()
    return manager


def save(directory: str | Path, epoch: int, state: Any, meta: dict) -> None:
    """Writes ``state`` (a pytree of arrays) and ``meta`` (JSON-able) as epoch ``epoch``.

    Blocks only to snapshot the state (a device-side copy, about a millisecond); orbax
    writes it on a background thread. Should saves fall behind training, a save still
    waiting for its turn is superseded by the next (the newest state always lands). Steps
    at or after ``epoch`` already in ``directory`` (from a run resumed at an earlier epoch)
    are replaced. An error of a background save is raised by the next ``save`` or ``wait``.

    Args:
      directory: the run directory (created if needed).
      epoch: the step number.
      state: the arrays; they may be donated or overwritten as soon as this returns.
      meta: JSON-able metadata (NumPy and JAX scalars and arrays are converted).
    """
    path = _path(directory)
    meta_text = json.dumps(meta, default=_json_default)
    if jax.process_count() > 1:  # orbax's collective save: every process, in step, on its main thread
        _write(path, epoch, state, meta_text)
        return
    _writer.submit(path, functools.partial(_write, path, epoch, _snapshot(state), meta_text))


def _snapshot(state: Any) -> Any:
    """A private copy of the device arrays: the caller may donate its buffers to the next step."""
    leaves, treedef = jax.tree.flatten(state)
    arrays = [i for i, leaf in enumerate(leaves) if isinstance(leaf, jax.Array)]
    copies = jax.device_put([leaves[i] for i in arrays], may_alias=False)
    for i, copy in zip(arrays, copies):
        leaves[i] = copy
    return jax.tree.unflatten(treedef, [leaf if isinstance(leaf, jax.Array) else np.array(leaf) for leaf in leaves])


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
        arrays.append(zlib.crc32(np.ascontiguousarray(np.asarray(leaf)).reshape(-1).view(np.uint8)))
    return {"arrays": arrays, "meta": zlib.crc32(json.dumps(meta, sort_keys=True).encode())}


def _write(path: Path, epoch: int, state: Any, meta_text: str) -> None:
    meta = json.loads(meta_text)
    integrity = _checksums(state, meta)
    items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta)}
    if integrity is not None:
        items["integrity"] = ocp.args.JsonSave(integrity)
    with _lock:
        manager = _manager(path)
        stale = [step for step in manager.all_steps() if step >= epoch]
        if stale:
            manager.wait_until_finished()
            for step in stale:
                manager.delete(step)
            _reported.get(path, set()).difference_update(stale)
        manager.save(epoch, force=True, args=ocp.args.Composite(**items))


class _Writer:
    """One background thread that runs the saves, in order, the newest per directory."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[Path, Callable[[], None]] = {}
        self._busy: Path | None = None
        self._errors: dict[Path, BaseException] = {}
        self._thread: threading.Thread | None = None

    def submit(self, path: Path, task: Callable[[], None]) -> None:
        with self._cond:
            self._raise(path)
            self._pending.pop(path, None)  # superseded: a newer state of the same run
            self._pending[path] = task
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="jaxnet-checkpoint", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def drain(self, path: Path) -> None:
        """Blocks until no save of ``path`` is queued or running; re-raises its error."""
        with self._cond:
            while path in self._pending or self._busy == path:
                self._cond.wait()
            self._raise(path)

    def _raise(self, path: Path) -> None:
        error = self._errors.pop(path, None)
        if error is not None:
            raise RuntimeError(f"saving a checkpoint to {path} failed: {_one_line(error)}") from error

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                path = next(iter(self._pending))
                task = self._pending.pop(path)
                self._busy = path
            try:
                task()
            except BaseException as error:  # noqa: BLE001 — handed to the caller's next save or wait
                with self._cond:
                    self._errors[path] = error
            finally:
                with self._cond:
                    self._busy = None
                    self._cond.notify_all()


_writer = _Writer()


def wait(directory: str | Path) -> None:
    """Blocks until every pending save to ``directory`` is on disk (re-raising its error)."""
    path = _path(directory)
    _writer.drain(path)
    with _lock:
        manager = _managers.get(path)
        if manager is not None:
            manager.wait_until_finished()


def close(directory: str | Path) -> None:
    """Waits for pending saves to ``directory`` and releases its manager (a later call
    creates a new one)."""
    path = _path(directory)
    _writer.drain(path)
    with _lock:
        manager = _managers.pop(path, None)
        _reported.pop(path, None)
        if manager is not None:
            manager.close()


def close_all() -> None:
    """Waits for every pending save of this process and releases every manager."""
    with _lock:
        paths = list(_managers) + [p for p in _writer._pending if p not in _managers]
    for path in paths:
        try:
            close(path)
        except Exception as error:  # noqa: BLE001 — at exit, report and carry on with the others
            warnings.warn(f"checkpoint save in {path} failed: {error}", CorruptCheckpointWarning, stacklevel=2)


# Pending saves are finished at exit before the threads shut down: orbax writes through
# concurrent.futures, which refuses new work once ``threading`` starts shutting down
# (that happens before ``atexit`` handlers run). Registered after orbax imported it, so
# called first (these run in reverse order).
getattr(threading, "_register_atexit", atexit.register)(close_all)


def latest_epoch(directory: str | Path) -> int | None:
    """The newest saved epoch in ``directory``, or None (after pending saves finish; whether
    that step is readable is known only when :func:`restore` reads it)."""
    _writer.drain(_path(directory))
    with _lock:
        manager = _settled(directory)
        return None if manager is None else manager.latest_step()


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
      The newest step whose arrays and metadata both read back; newer unreadable steps are
      skipped with a :class:`CorruptCheckpointWarning`.
    Raises:
      FileNotFoundError: ``directory`` holds no checkpoint.
      NoIntactCheckpointError: every step is unreadable.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)

    def read(manager, step):
        items = {"state": ocp.args.StandardRestore(abstract), "meta": ocp.args.JsonRestore()}
        checked = (Path(manager.directory) / str(step) / "integrity").exists()  # absent: older or multi-process
        if checked:
            items["integrity"] = ocp.args.JsonRestore()
        restored = manager.restore(step, args=ocp.args.Composite(**items))
        if checked and _checksums(restored.state, restored.meta) != restored.integrity:
            raise ValueError("its arrays or metadata differ from what was written (checksum mismatch)")
        return restored.state, restored.meta

    epoch, (state, meta) = _newest_readable(directory, read)
    return epoch, state, meta


def _newest_readable(directory: str | Path, read: Callable[[ocp.CheckpointManager, int], Any]) -> tuple[int, Any]:
    _writer.drain(_path(directory))
    with _lock:
        manager = _settled(directory)
        steps = sorted(manager.all_steps() if manager is not None else [], reverse=True)
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {directory}; run without --resume to start afresh")
        reported = _reported.setdefault(_path(directory), set())
        for step in steps:
            try:
                return step, read(manager, step)
            except Exception as error:  # noqa: BLE001 — orbax, tensorstore and json each raise their own kind
                last_error = error
            if step not in reported:
                reported.add(step)
                warnings.warn(f"checkpoint step {step} in {directory} is unreadable and was skipped "
                              f"({_one_line(last_error)}); falling back to an older step", CorruptCheckpointWarning,
                              stacklevel=3)
    raise NoIntactCheckpointError(
        f"no intact checkpoint in {directory}: steps {sorted(steps)} are all unreadable (newest error: "
        f"{_one_line(last_error)}); run without --resume (resume=False) to start afresh") from last_error


def clear(directory: str | Path) -> None:
    """Deletes every checkpoint step in ``directory`` (a fresh run there starts clean, so
    stale steps of an earlier run are neither kept as "newest" nor resumed later)."""
    _writer.drain(_path(directory))
    with _lock:
        manager = _settled(directory)
        if manager is None:
            return
        for step in manager.all_steps():
            manager.delete(step)
        for leftover in _path(directory).glob("*.orbax-checkpoint-tmp*"):  # an unfinished save of a killed run
            shutil.rmtree(leftover, ignore_errors=True)
        _reported.pop(_path(directory), None)


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
