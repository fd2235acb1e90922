"""Setting a run up: check the inputs once, place the data and the members on the devices,
pick the compiled programs by structure, and resume from a checkpoint if asked."""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxnet import checkpoint, evaluate, train, validate
from jaxnet.engine import events, options as options_lib, programs as programs_lib
from jaxnet.engine.state import Run, TrainState
from jaxnet.history import History
from jaxnet.mlp import Model

Array = jax.Array


class CheckpointAheadError(ValueError):
    """``resume=True`` found a checkpoint holding more epochs than ``epochs`` asks for."""


def host(value) -> np.ndarray:
    """A (possibly multi-process) array as one NumPy array."""
    if isinstance(value, jax.Array) and not value.is_fully_addressable:
        return np.asarray(multihost_utils.process_allgather(value, tiled=True))
    return np.asarray(value)


def _dtype(params) -> np.dtype:
    """The dtype λ takes: that of the first floating-point parameter."""
    floating = [leaf for leaf in jax.tree.leaves(params) if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)]
    return jnp.result_type(floating[0]) if floating else jnp.float32


def _describe(params, opt_state, l2, n_train: int) -> dict:
    """What a checkpoint must agree on besides the caller's settings: the parameter shapes,
    the hyperparameters and the training-set size."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    hyperparams = {k: np.asarray(v).tolist() for k, v in sorted(train.hyperparams(opt_state).items())}
    return {"params": [f"{jax.tree_util.keystr(path)} {jnp.dtype(leaf.dtype).name}{list(np.shape(leaf))}"
                       for path, leaf in leaves],
            "hyperparams": dict(hyperparams, l2=l2), "n_train": int(n_train)}


def _structure(model: Model, optimizer, o: options_lib.Options, penalty: bool, vmapped: bool,
               batch_sharding=None) -> programs_lib.Structure:
    return programs_lib.Structure(model.apply, model.activation, o.loss, optimizer.update, o.grad_source,
                                  o.batch_size, o.shuffle, penalty, vmapped, batch_sharding)


def _placement(o: options_lib.Options):
    """fit's placement: ``(place, batch_sharding)`` for one device, or for ``data_parallel``
    every array replicated and each minibatch split along its first axis."""
    devices = list(o.devices or jax.devices())
    if not o.data_parallel:
        device = devices[0] if o.devices else None
        return (lambda a: jnp.asarray(a) if device is None else jax.device_put(a, device)), None
    mesh = Mesh(np.array(devices), ("batch",))
    replicated = NamedSharding(mesh, PartitionSpec())

    def place(array):
        array = np.asarray(array)
        return jax.make_array_from_callback(array.shape, replicated, lambda index: array[index])

    return place, NamedSharding(mesh, PartitionSpec("batch"))


def start(
    model: Model,
    params: Any,
    optimizer: optax.GradientTransformation,
    train_data: tuple[Array, Array],
    *,
    val: tuple[Array, Array] | None = None,
    test: tuple[Array, Array] | None = None,
    seed: int = 0,
    l2: float | None = None,
    opt_state: Any = None,
    **options: Any,
) -> tuple[Run, TrainState]:
    """Prepares a :func:`~jaxnet.engine.fit` run without training it.

    Args:
      model, params, optimizer, train_data, val, test, seed, l2, opt_state: as ``fit``.
      **options: the fields of :class:`~jaxnet.engine.Options` (``epochs``, ``batch_size``).
    Returns:
      ``(run, state)`` at epoch 0 (or at the checkpoint's epoch when resuming); drive it with
      :func:`~jaxnet.engine.run_epoch` until ``run.done(state)``, then ``finish``.
    """
    o = options_lib.parse(options, sweep=False)
    x, y = jnp.asarray(train_data[0]), jnp.asarray(train_data[1])
    opt_state = optimizer.init(params) if opt_state is None else opt_state
    validate.training(model, params, o.loss, x, y, o.epochs, o.batch_size, len(x), [opt_state])
    validate.penalties(None if l2 is None else [l2])
    validate.stopping(o.patience, val)
    validate.eval_data(model, params, o.loss, x, {"validation": val, "test": test})
    place, batch_sharding = _placement(o)
    programs = programs_lib.compiled(_structure(model, optimizer, o, l2 is not None, False, batch_sharding))
    lam = 0.0 if l2 is None else float(l2)
    config = dict(o.checkpoint_config or {}, activation=getattr(model.activation, "name", None), grad_source=o.grad_source,
                  seed=seed, **_describe(params, opt_state, l2, len(x)))
    as_placed = lambda tree: jax.tree.map(place, tree)  # noqa: E731
    val, test = (None if data is None else as_placed(validate.split(name, data, x))
                 for name, data in (("validation", val), ("test", test)))
    state = TrainState(params=as_placed(params), opt_state=as_placed(opt_state),
                       l2=place(np.asarray(lam, _dtype(params))), best_params=None,
                       data_keys=place(jax.random.PRNGKey(seed)), epoch=np.asarray(0),
                       best_loss=np.full(1, np.inf), bad_checks=np.zeros(1, int), active=np.ones(1, bool))
    return _begin(o, programs, state, vmapped=False, members=1, reported=1, x=place(x), y=place(y),
                  train_indices=place(np.arange(len(x), dtype=np.int32)), val=val, test=test, config=config,
                  place_members=place, place_shared=place, log=o.log)


def _member_values(name: str, values, count: int | None) -> list | None:
    if values is None:
        return None
    if not isinstance(values, (list, tuple, np.ndarray, jax.Array)):
        raise ValueError(f"{name} must be a sequence with one value per member")
    values = list(values)
    if not values:
        raise ValueError(f"{name} is empty; give one value per member")
    if count is not None and len(values) != count:
        raise ValueError(f"{name} has {len(values)} values but other settings have {count} members; give one per member")
    return values


def start_sweep(
    model: Model,
    optimizer: optax.GradientTransformation,
    train_data: tuple[Array, Array],
    *,
    learning_rate: Sequence[float] | None = None,
    l2: Sequence[float] | None = None,
    init_seed: Sequence[int] | None = None,
    data_seed: Sequence[int] | None = None,
    labels: Array | None = None,
    indices: Array | None = None,
    params: Any = None,
    val: tuple[Array, Array] | None = None,
    test: tuple[Array, Array] | None = None,
    **options: Any,
) -> tuple[Run, TrainState]:
    """Prepares a :func:`~jaxnet.engine.sweep` (K members as one vmapped program).

    Args: as ``sweep``; ``**options`` the fields of :class:`~jaxnet.engine.Options`
      (``devices``: where the member axis is sharded; ``data_parallel`` is refused).
    Returns:
      ``(run, state)``; the state's arrays carry a leading member axis.
    """
    o = options_lib.parse(options, sweep=True)
    settings = _member_settings(learning_rate=learning_rate, l2=l2, init_seed=init_seed, data_seed=data_seed,
                                labels=labels, indices=indices)
    count = len(next(v for v in settings.values() if v is not None))
    if params is not None and init_seed is not None:
        raise ValueError("give either params (shared initial parameters) or init_seed (one per member), not both")
    x, y = jnp.asarray(train_data[0]), jnp.asarray(train_data[1])
    validate.member_data(settings["labels"], settings["indices"], len(x))
    validate.penalties(settings["l2"])
    member_labels = (np.stack([np.asarray(v) for v in settings["labels"]]) if labels is not None
                     else np.broadcast_to(np.asarray(y), (count,) + y.shape))
    member_indices = (np.stack([np.asarray(v) for v in settings["indices"]]) if indices is not None
                      else np.broadcast_to(np.arange(len(x)), (count, len(x))))
    member_params = ([params] * count if params is not None
                     else [model.init(jax.random.PRNGKey(int(s))) for s in settings["init_seed"] or [0] * count])
    rates = settings["learning_rate"]
    member_states = [train.set_hyperparams(optimizer.init(p), learning_rate=rates[k]) if rates is not None
                     else optimizer.init(p) for k, p in enumerate(member_params)]
    validate.training(model, member_params[0], o.loss, x, jnp.asarray(member_labels[0]), o.epochs, o.batch_size,
                      member_indices.shape[1], member_states)
    validate.stopping(o.patience, val)
    validate.members(model, member_params, o.loss, x, member_labels)
    validate.eval_data(model, member_params[0], o.loss, x, {"validation": val, "test": test})
    data_keys = np.stack([np.asarray(jax.random.PRNGKey(int(s))) for s in (settings["data_seed"] or [0] * count)])
    padded, place_members, place_shared = _member_placement(list(o.devices or jax.devices()), count)
    stack = lambda trees: jax.tree.map(lambda *leaves: place_members(np.stack(leaves)), *trees)  # noqa: E731
    programs = programs_lib.compiled(_structure(model, optimizer, o, l2 is not None, True))
    lams = np.asarray(settings["l2"] or [0.0] * count, _dtype(member_params[0]))
    config = dict(o.checkpoint_config or {}, activation=getattr(model.activation, "name", None), grad_source=o.grad_source,
                  **{k: np.asarray(v).tolist() for k, v in settings.items()
                     if v is not None and k not in ("labels", "indices")},
                  **_describe(member_params[0], member_states[0], None, member_indices.shape[1]))
    state = TrainState(params=stack(member_params), opt_state=stack(member_states), l2=place_members(lams),
                       best_params=None, data_keys=place_members(data_keys), epoch=np.asarray(0),
                       best_loss=np.full(padded, np.inf), bad_checks=np.zeros(padded, int),
                       active=np.ones(padded, bool))
    held_out = {name: None if data is None else tuple(place_shared(a) for a in validate.split(name, data, x))
                for name, data in (("validation", val), ("test", test))}
    return _begin(o, programs, state, vmapped=True, members=padded, reported=count, x=place_shared(x),
                  y=place_members(member_labels), train_indices=place_members(member_indices),
                  val=held_out["validation"], test=held_out["test"], config=config, place_members=place_members,
                  place_shared=place_shared, log=o.log if jax.process_index() == 0 else None)


def _member_settings(**settings: Any) -> dict[str, list | None]:
    """The per-member settings as lists of one length K (None where not given)."""
    count = None
    for name, values in settings.items():
        settings[name] = _member_values(name, values, count)
        count = len(settings[name]) if settings[name] is not None else count
    if count is None:
        raise ValueError("a sweep needs at least one per-member setting (learning_rate, l2, init_seed, "
                         "data_seed, labels or indices)")
    return settings


def _member_placement(devices: list, count: int) -> tuple[int, Callable, Callable]:
    """``(padded, place_members, place_shared)``: the member axis sharded over ``devices``,
    padded with copies of the last member to a multiple of their number."""
    padded = -(-count // len(devices)) * len(devices)
    mesh = Mesh(np.array(devices), ("members",))
    per_member, shared = NamedSharding(mesh, PartitionSpec("members")), NamedSharding(mesh, PartitionSpec())

    def place_members(array):
        array = np.asarray(array)
        if array.shape[0] == count and padded > count:
            array = np.concatenate([array, np.repeat(array[-1:], padded - count, axis=0)])
        return jax.make_array_from_callback(array.shape, per_member, lambda index: array[index])

    def place_shared(array):
        array = np.asarray(array)
        return jax.make_array_from_callback(array.shape, shared, lambda index: array[index])

    return padded, place_members, place_shared


def _pad(values: list, count: int) -> list:
    return values + [values[-1]] * (count - len(values))


def _begin(o, programs, state: TrainState, *, vmapped, members, reported, x, y, train_indices, val, test, config,
           place_members: Callable, place_shared: Callable, log) -> tuple[Run, TrainState]:
    """The :class:`Run` of a prepared state, and the state resumed from a checkpoint if asked."""
    steps = train_indices.shape[-1] // o.batch_size
    bounds = tuple(sorted(set(np.linspace(0, steps, o.evals_per_epoch + 1).round().astype(int).tolist())))
    run = Run(
        options=o, programs=programs, vmapped=vmapped, members=members, reported=reported,
        x=x, y=y, train_indices=train_indices,
        train_chunks=tuple(place_members(a) for a in evaluate.chunks(host(train_indices))) if o.eval_train else (),
        splits={name: (split, tuple(place_shared(a) for a in evaluate.chunks(np.arange(len(split[0])))))
                for name, split in (("val", val), ("test", test)) if split is not None},
        steps=steps, bounds=bounds,
        config=dict(config, members=reported, batch_size=o.batch_size, loss=o.loss.name, shuffle=o.shuffle,
                    evals_per_epoch=o.evals_per_epoch, patience=o.patience),
        place_members=place_members, place_shared=place_shared,
        probe=None if o.probe is None else programs_lib.probe(o.probe, vmapped),
        histories=[History() for _ in range(members)], started=0.0, log=log)
    state = state._replace(best_params=state.params)
    elapsed_before = 0.0
    directory = o.checkpoint_dir
    if directory is not None and o.resume and checkpoint.latest_epoch(directory) is not None:
        state, elapsed_before = _resume(run, state, directory)
    elif directory is not None:
        checkpoint.clear(directory)  # a fresh run: stale steps would otherwise stay "newest"
    run.started = time.perf_counter() - elapsed_before
    return run, state


def saved_tree(run: Run, state: TrainState) -> dict:
    """The arrays a checkpoint holds, without a sweep's padding members (so that a run can
    resume on another number of devices)."""
    tree = {"params": state.params, "opt_state": state.opt_state, "best_params": state.best_params,
            "data_keys": state.data_keys}
    return tree if run.members == run.reported else programs_lib.first_members(run.reported)(tree)


def _resume(run: Run, state: TrainState, directory) -> tuple[TrainState, float]:
    o, members = run.options, run.members
    # the configuration first: a different model must be refused by name, not by a shape clash
    saved_epoch, meta = checkpoint.restore_meta(directory)
    checkpoint.check_config(meta["config"], run.config, directory)
    if saved_epoch > o.epochs:
        raise CheckpointAheadError(
            f"checkpoint in {directory} holds {saved_epoch} epochs but epochs={o.epochs} was asked: pass "
            f"epochs ≥ {saved_epoch} to continue it, or drop resume to start afresh")
    saved_epoch, restored, meta = checkpoint.restore(directory, saved_tree(run, state))
    params, opt_state, best_params, data_keys = (
        jax.tree.map(lambda leaf: run.place_members(host(leaf)), restored[k])
        for k in ("params", "opt_state", "best_params", "data_keys"))
    run.histories[:] = [History.from_dict(h) for h in _pad(meta["histories"], members)]
    state = state._replace(
        params=params, opt_state=opt_state, best_params=best_params, data_keys=data_keys,
        epoch=np.asarray(saved_epoch),
        best_loss=np.array([np.inf if v is None else v for v in _pad(meta["best_loss"], members)]),
        bad_checks=np.array(_pad(meta["bad_checks"], members), int),
        active=np.array(_pad(meta["active"], members), bool))
    events.publish(run.options.hooks, run.log, events.Resumed(str(directory), saved_epoch))
    return state, meta["seconds"]
