"""Checkpoints of a training run with orbax: the array state (params, optimizer state,
best params, RNG key) as a pytree, and the run's metadata (config, histories, epoch) as
JSON, one step directory per epoch, the last two kept."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


class ConfigMismatchError(ValueError):
    """The run directory holds a checkpoint of a different configuration."""


def _manager(directory: Path) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False)
    return ocp.CheckpointManager(Path(directory).resolve(), options=options)


def save(directory: str | Path, epoch: int, state: Any, meta: dict) -> None:
    """Writes ``state`` (a pytree of arrays) and ``meta`` (JSON-able) as epoch ``epoch``."""
    with _manager(Path(directory)) as manager:
        manager.save(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            meta=ocp.args.JsonSave(json.loads(json.dumps(meta, default=_json_default))),
        ))
        manager.wait_until_finished()


def latest_epoch(directory: str | Path) -> int | None:
    """The newest saved epoch in ``directory``, or None."""
    if not Path(directory).exists():
        return None
    with _manager(Path(directory)) as manager:
        return manager.latest_step()


def restore_meta(directory: str | Path) -> tuple[int, dict]:
    """``(epoch, meta)`` of the newest checkpoint, without reading its arrays (so that a
    run directory of another configuration can be refused before shapes clash)."""
    with _manager(Path(directory)) as manager:
        epoch = manager.latest_step()
        if epoch is None:
            raise FileNotFoundError(f"no checkpoint in {directory}; run without --resume to start afresh")
        restored = manager.restore(epoch, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return epoch, restored.meta


def clear(directory: str | Path) -> None:
    """Deletes every checkpoint step in ``directory`` (a fresh run there starts clean, so
    stale steps of an earlier run are neither kept as "newest" nor resumed later)."""
    if not Path(directory).exists():
        return
    with _manager(Path(directory)) as manager:
        for step in manager.all_steps():
            manager.delete(step)


def restore(directory: str | Path, like: Any) -> tuple[int, Any, dict]:
    """``(epoch, state, meta)`` of the newest checkpoint; ``like`` gives the state's
    structure, shapes and dtypes (e.g. the freshly initialized state)."""
    with _manager(Path(directory)) as manager:
        epoch = manager.latest_step()
        if epoch is None:
            raise FileNotFoundError(f"no checkpoint in {directory}; run without --resume to start afresh")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        restored = manager.restore(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        return epoch, restored.state, restored.meta


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
