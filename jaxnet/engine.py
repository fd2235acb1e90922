"""The training engine: compiled epochs, one-program sweeps, early stopping, divergence,
checkpoints, probes.

The whole dataset stays on the device. An epoch draws one permutation from
``fold_in(data_key, epoch)`` and runs ``lax.scan`` over its minibatches inside one jit
region (split into ``evals_per_epoch`` segments when evaluating several times per epoch).
Every minibatch has ``batch_size`` examples: the last ``n mod batch_size`` examples of each
epoch's order are dropped (with shuffling, a different few each epoch).

:func:`sweep` trains K members that differ in traced values (learning rate, λ, init seed,
data-order seed, labels, training subset) as ONE vmapped program whose member axis is
sharded over every device (several processes too, after ``jax.distributed.initialize``).
:func:`fit` runs the same programs without the member axis, on one device, or with
``data_parallel=True`` with each minibatch split over several.

Both are short loops over a one-epoch API that callers may drive themselves::

    state = engine.start(params, optimizer, (x, y), epochs=10, batch_size=128)   # or start_sweep
    while not state.done:
        state = engine.run_epoch(state)        # one epoch: train, checks, log, callback, checkpoint
    result = engine.finish(state)              # FitResult (SweepResult after start_sweep)
"""
from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxnet import checkpoint, losses, metrics, train
from jaxnet.history import History

Array = jax.Array
EVAL_CHUNK = 2048
Probe = Callable[[Any], dict[str, Array]]


class CheckpointAheadError(ValueError):
    """``resume=True`` found a checkpoint holding more epochs than ``epochs`` asks for."""


class FitResult(NamedTuple):
    params: Any  # after the last step (of the last finite check, if the run diverged)
    opt_state: Any
    best_params: Any  # at the lowest validation loss (= params without validation data)
    history: History


class SweepResult(NamedTuple):
    params: Any  # stacked: leading axis = member
    opt_state: Any
    best_params: Any
    histories: list[History]

    def member(self, k: int, which: str = "params") -> Any:
        """Member ``k``'s parameters (``which="best_params"`` for its best)."""
        return jax.tree.map(lambda leaf: leaf[k], getattr(self, which))


@dataclasses.dataclass(frozen=True)
class Options:
    """Every setting :func:`fit` and :func:`sweep` share (each is documented at :func:`fit`).

    :func:`start` and :func:`start_sweep` take them as keyword arguments; ``devices`` is
    where a sweep's member axis, or a ``data_parallel`` fit's batch axis, is sharded.
    """

    epochs: int
    batch_size: int
    hidden: str = "relu"
    loss: str = "softmax_cross_entropy"
    grad_source: str = "autodiff"
    apply_fn: train.ApplyFn | None = None
    shuffle: bool = True
    evals_per_epoch: int = 1
    patience: int | None = None
    eval_train: bool = True
    checkpoint_dir: str | Path | None = None
    checkpoint_every: int = 1
    resume: bool = False
    config: dict | None = None
    log: Callable[[str], None] | None = print
    callback: Callable[[float, list[History]], None] | None = None
    probe: Probe | None = None
    probe_every: int = 1
    data_parallel: bool = False
    devices: Sequence[jax.Device] | None = None


# --- the compiled programs --------------------------------------------------------------


class _Programs(NamedTuple):
    order: Callable  # (data_keys, epoch, indices) → (steps, batch) indices of the epoch
    segment: Callable  # (params, opt_state, x, y, order, first, length=) → (params, opt_state, finite)
    evaluate_train: Callable  # (params, x, y, chunks, weights) → (mean loss, accuracy)
    evaluate_shared: Callable
    select: Callable  # (condition, new, old) → new where condition else old, per member


def _programs(train_step, apply_fn, loss: str, batch_size: int, shuffle: bool, batch_sharding=None):
    """The pure functions of one member: epoch order, a training segment, evaluation."""

    def order(data_key, epoch, indices):
        n = indices.shape[0]
        steps = n // batch_size
        if shuffle:
            indices = indices[jax.random.permutation(jax.random.fold_in(data_key, epoch), n)]
        return indices[: steps * batch_size].reshape(steps, batch_size)

    def segment(params, opt_state, x, y, epoch_order, first, length):
        def body(carry, batch_indices):
            batch_x, batch_y = x[batch_indices], y[batch_indices]
            if batch_sharding is not None:  # data parallel: each device takes a slice of the batch
                batch_x = jax.lax.with_sharding_constraint(batch_x, batch_sharding)
                batch_y = jax.lax.with_sharding_constraint(batch_y, batch_sharding)
            params, opt_state, step_metrics = train_step(*carry, train.Batch(batch_x, batch_y))
            return (params, opt_state), step_metrics["loss"]

        batches = jax.lax.dynamic_slice_in_dim(epoch_order, first, length)
        (params, opt_state), batch_losses = jax.lax.scan(body, (params, opt_state), batches)
        finite = jnp.all(jnp.isfinite(batch_losses)) & jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(params)]))
        return params, opt_state, finite

    def evaluate(params, x, y, chunks, weights):
        def chunk_totals(chunk):
            chunk_indices, weight = chunk
            logits = apply_fn(params, x[chunk_indices])
            y_chunk = y[chunk_indices]
            per_example = jax.vmap(lambda z, t: losses.loss_from_logits(loss, z[None], t[None]))(logits, y_chunk)
            correct = metrics.predict(logits) == metrics.labels_of(y_chunk)
            return jnp.sum(per_example * weight), jnp.sum(correct * weight)

        loss_sums, correct_sums = jax.lax.map(chunk_totals, (chunks, weights))
        total = jnp.sum(weights)
        return jnp.sum(loss_sums) / total, jnp.sum(correct_sums) / total

    def select(condition, new, old):
        return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)

    return order, segment, evaluate, select


def _compile(functions, vmapped: bool) -> _Programs:
    order, segment, evaluate, select = functions
    if vmapped:
        order = jax.vmap(order, in_axes=(0, None, 0))
        member_segment = segment

        def segment(params, opt_state, x, y, epoch_order, first, length):
            return jax.vmap(functools.partial(member_segment, length=length), in_axes=(0, 0, None, 0, 0, None))(
                params, opt_state, x, y, epoch_order, first)

        evaluate_train = jax.vmap(evaluate, in_axes=(0, None, 0, 0, 0))
        evaluate_shared = jax.vmap(evaluate, in_axes=(0, None, None, None, None))
        select = jax.vmap(select)
    else:
        evaluate_train = evaluate_shared = evaluate
    # nothing is donated: a diverged or stopped run keeps its previous state by reference
    return _Programs(jax.jit(order), jax.jit(segment, static_argnames="length"), jax.jit(evaluate_train),
                     jax.jit(evaluate_shared), jax.jit(select))


@functools.lru_cache(maxsize=64)
def _compiled_programs(optimizer, hidden, loss, grad_source, apply_fn, batch_size, shuffle, vmapped,
                       batch_sharding=None, penalty=True) -> _Programs:
    """The jitted programs for one configuration, built once per process: a second ``fit``
    with the same optimizer and settings reuses them instead of compiling again.
    ``penalty=False`` (every λ is 0) leaves the λ Σ‖W‖² term out of the step."""
    train_step = train.make_train_step(optimizer, hidden=hidden, loss=loss, grad_source=grad_source,
                                       apply_fn=apply_fn, jit=False, penalty=penalty)
    functions = _programs(train_step, train.resolve_apply(hidden, apply_fn), loss, batch_size, shuffle,
                          batch_sharding)
    return _compile(functions, vmapped)


@functools.lru_cache(maxsize=64)
def _probe_program(probe: Probe, vmapped: bool) -> Callable:
    """``probe`` jitted once (vmapped over the member axis in a sweep)."""
    return jax.jit(jax.vmap(probe) if vmapped else probe)


def _penalized(opt_states) -> bool:
    """Whether any λ is non-zero (else the step is compiled without the penalty term)."""
    return any(np.any(np.asarray(train.hyperparams(state).get("l2", 0.0)) != 0) for state in opt_states)


def _chunks(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index chunks of a fixed size for evaluation, padded with weight-0 entries."""
    n = indices.shape[-1]
    size = min(EVAL_CHUNK, n)
    padded = -(-n // size) * size
    pad = [(0, 0)] * (indices.ndim - 1) + [(0, padded - n)]
    weights = np.pad(np.ones(indices.shape, np.float32), pad)
    indices = np.pad(indices, pad)
    shape = indices.shape[:-1] + (padded // size, size)
    return indices.reshape(shape).astype(np.int32), weights.reshape(shape)


# --- checks on the inputs ---------------------------------------------------------------


def _check_inputs(params, apply_fn, loss, x, y, epochs, batch_size, n_train, opt_states) -> None:
    if len(x) != len(y):
        raise ValueError(f"the training set has {len(x)} images but {len(y)} labels; they must match")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 1 or batch_size > n_train:
        raise ValueError(
            f"batch_size {batch_size} is not in [1, {n_train}] (the number of training examples); "
            "use a smaller batch")
    for k, state in enumerate(opt_states):
        member = f" (member {k})" if len(opt_states) > 1 else ""
        for name, value in train.hyperparams(state).items():
            value = np.asarray(value)
            if np.issubdtype(value.dtype, np.inexact) and not np.all(np.isfinite(value)):
                raise ValueError(f"{name}{member} must be a finite number, got {value}")
            if name in ("learning_rate", "l2") and np.any(value < 0):
                raise ValueError(f"{name}{member} must be non-negative, got {value}")
    _check_finite("training inputs", x)
    _check_finite("training targets", y)
    logits = jax.eval_shape(apply_fn, params, jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), x.dtype))
    losses.check_targets(loss, (len(y), logits.shape[-1]), jnp.asarray(y))


@jax.jit
def _count_nonfinite(values: Array) -> Array:
    return jnp.sum(~jnp.isfinite(values), dtype=jnp.int32)


def _check_finite(name: str, values) -> None:
    """ValueError if float ``values`` hold NaN or inf: bad data, not a divergence."""
    if not jnp.issubdtype(jnp.result_type(values), jnp.inexact) or jnp.size(values) == 0:
        return
    bad = int(_count_nonfinite(jnp.asarray(values)))
    if bad:
        raise ValueError(f"the {name} contain {bad} NaN/inf value(s) (of {jnp.size(values)}); clean the data "
                         "before training, e.g. drop those examples or replace them (np.nan_to_num)")


def _check_eval_data(params, apply_fn, loss, x, splits: dict[str, tuple[Array, Array] | None]) -> None:
    """The validation and test sets: matching lengths and shapes, finite inputs, and targets
    valid for the loss (out-of-range labels would quietly score loss 0 and accuracy 0)."""
    splits = {name: split for name, split in splits.items() if split is not None}
    if not splits:
        return
    logits = jax.eval_shape(apply_fn, params, jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), x.dtype))
    for name, split in splits.items():
        split_x, split_y = _check_split(name, split, x)
        _check_finite(f"{name} inputs", split_x)
        _check_finite(f"{name} targets", split_y)
        try:
            losses.check_targets(loss, (len(split_y), logits.shape[-1]), split_y)
        except ValueError as error:
            raise ValueError(f"the {name} set: {error}") from None


def _check_member_data(labels: list | None, indices: list | None, n: int) -> None:
    """Per-member labels with one row per training image, and per-member indices that are
    integers inside the training set (JAX would clamp an index past the end silently)."""
    if labels is not None:
        first = np.shape(labels[0])
        for k, member_labels in enumerate(labels):
            shape = np.shape(member_labels)
            if not shape or shape[0] != n:
                raise ValueError(f"labels of member {k} have shape {shape}; each member needs one label per "
                                 f"training image ({n},)")
            if shape != first:
                raise ValueError(f"labels of member {k} have shape {shape} but member 0's have {first}; "
                                 "every member's labels must have the same shape")
    if indices is not None:
        first = np.shape(indices[0])
        for k, member_indices in enumerate(indices):
            values = np.asarray(member_indices)
            if values.ndim != 1 or values.size == 0 or not np.issubdtype(values.dtype, np.integer):
                raise ValueError(f"indices of member {k} must be a non-empty 1-D integer array, got shape "
                                 f"{values.shape} and dtype {values.dtype}")
            if values.shape != first:
                raise ValueError(f"indices of member {k} have shape {values.shape} but member 0's have {first}; "
                                 "every member must train on the same number of examples")
            if values.min() < 0 or values.max() >= n:
                raise ValueError(f"indices of member {k} must lie in [0, {n}) (the training set), found values "
                                 f"from {values.min()} to {values.max()}")


def _check_members(member_params, apply_fn, loss, x, member_labels) -> None:
    """Every member has member 0's parameter structure, shapes and dtypes, and labels valid
    for the loss."""
    def signature(params):
        leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
        return treedef, [(jax.tree_util.keystr(path), tuple(np.shape(leaf)), jnp.result_type(leaf).name)
                         for path, leaf in leaves]

    reference_def, reference = signature(member_params[0])
    for k, params in enumerate(member_params[1:], start=1):
        treedef, leaves = signature(params)
        if treedef != reference_def:
            raise ValueError(f"member {k}'s parameters have a different structure from member 0's; every member "
                             "of a sweep needs the same architecture (run different ones as separate sweeps)")
        for (path, shape, dtype), (_, shape0, dtype0) in zip(leaves, reference):
            if (shape, dtype) != (shape0, dtype0):
                raise ValueError(f"member {k}'s parameter {path} is {dtype}{list(shape)} but member 0's is "
                                 f"{dtype0}{list(shape0)}; every member of a sweep needs the same architecture "
                                 "(run different ones as separate sweeps)")
    logits = jax.eval_shape(apply_fn, member_params[0], jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), x.dtype))
    for k in range(1, len(member_labels)):
        try:
            _check_finite("training targets", member_labels[k])
            losses.check_targets(loss, (len(member_labels[k]), logits.shape[-1]), member_labels[k])
        except ValueError as error:
            raise ValueError(f"member {k}'s labels: {error}") from None


def _check_stopping(patience, val) -> None:
    if patience is None:
        return
    if patience < 1:
        raise ValueError(f"patience must be at least 1 check, got {patience}")
    if val is None:
        raise ValueError("early stopping (patience) watches the validation loss; pass val=(x, y)")


def _check_split(name: str, split, x) -> tuple[Array, Array] | None:
    if split is None:
        return None
    split_x, split_y = split
    if len(split_x) != len(split_y):
        raise ValueError(f"the {name} set has {len(split_x)} images but {len(split_y)} labels; they must match")
    if tuple(split_x.shape[1:]) != tuple(x.shape[1:]):
        raise ValueError(f"{name} images have shape {tuple(split_x.shape[1:])}, training images {tuple(x.shape[1:])}")
    return jnp.asarray(split_x), jnp.asarray(split_y)


def _check_options(options: Options, *, sweep: bool) -> None:
    """The settings of the one-epoch API that the input checks above do not cover."""
    if options.checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be at least 1 epoch, got {options.checkpoint_every}")
    if options.evals_per_epoch < 1:
        raise ValueError(f"evals_per_epoch must be at least 1, got {options.evals_per_epoch}")
    if options.probe is not None and not callable(options.probe):
        raise ValueError(f"probe must be a function params → dict of scalars, got {type(options.probe).__name__}")
    if options.probe_every < 1:
        raise ValueError(f"probe_every must be at least 1 epoch, got {options.probe_every}")
    if options.data_parallel and sweep:
        raise ValueError("data_parallel splits one model's batches over devices; a sweep already shards its "
                         "members over them: drop data_parallel")
    if options.data_parallel:
        count = len(options.devices or jax.devices())
        if options.batch_size % count:
            raise ValueError(f"data_parallel splits each batch over {count} devices, but batch_size "
                             f"{options.batch_size} is not a multiple of {count}; use a multiple of {count}")


def _options(where: str, options: dict) -> Options:
    names = {f.name for f in dataclasses.fields(Options)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise TypeError(f"{where}() got unknown option(s) {unknown}; the options are {sorted(names)}")
    return Options(**options)


# --- the loop ---------------------------------------------------------------------------


def _host(value) -> np.ndarray:
    if isinstance(value, jax.Array) and not value.is_fully_addressable:
        return np.asarray(multihost_utils.process_allgather(value, tiled=True))
    return np.asarray(value)


def _format(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if percent else f"{value:.4f}"


def _describe(params, opt_state, n_train: int) -> dict:
    """What a checkpoint must agree on besides the caller's settings: the parameter shapes,
    the optimizer's injected hyperparameters and the training-set size."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return {"params": [f"{jax.tree_util.keystr(path)} {jnp.dtype(leaf.dtype).name}{list(np.shape(leaf))}"
                       for path, leaf in leaves],
            "hyperparams": {k: np.asarray(v).tolist() for k, v in sorted(train.hyperparams(opt_state).items())},
            "n_train": int(n_train)}


@dataclasses.dataclass(frozen=True, eq=False)
class _Run:
    """What stays fixed during a run: settings, data on the device, compiled programs."""

    options: Options
    vmapped: bool
    members: int  # the member axis, padded to a multiple of the devices (1 for fit)
    reported: int  # the caller's members
    programs: _Programs
    probe: Callable | None  # jitted
    x: Array
    y: Array
    train_indices: Array
    train_chunks: tuple
    splits: dict
    steps: int  # per epoch
    bounds: tuple[int, ...]  # step counts at the checks of an epoch: (0, …, steps)
    config: dict
    place_members: Callable[[Any], Array]
    place_shared: Callable[[Any], Array]
    log: Callable[[str], None] | None


class LoopState(NamedTuple):
    """A run between two epochs: what :func:`run_epoch` takes and returns.

    A NamedTuple, hence a pytree. ``params``, ``opt_state`` and ``best_params`` have the
    structure of the model's parameters (member-stacked in a sweep: every leaf gains a
    leading axis K, padded to a multiple of the devices); ``data_keys`` is the data-order
    key, (2,) uint32 ((K, 2) in a sweep). The per-member arrays ``best_loss``,
    ``bad_checks`` and ``active`` have shape (K,) ((1,) for fit).
    """

    params: Any
    opt_state: Any
    best_params: Any
    data_keys: Array
    epoch: int  # epochs completed
    histories: tuple[History, ...]  # one per member (one for fit), extended in place by run_epoch
    best_loss: np.ndarray  # the lowest validation loss so far
    bad_checks: np.ndarray  # checks since the validation loss last fell
    active: np.ndarray  # still training: neither stopped early nor diverged
    started: float  # time.perf_counter() when the run (virtually) began: History.seconds is since then
    run: _Run

    @property
    def done(self) -> bool:
        """True once every epoch ran, or every member stopped early or diverged."""
        return self.epoch >= self.run.options.epochs or not self.active.any()


def _saved_tree(state: LoopState) -> dict:
    """The arrays a checkpoint holds, without a sweep's padding members (so that a run can
    resume on another number of devices)."""
    tree = {"params": state.params, "opt_state": state.opt_state, "best_params": state.best_params,
            "data_keys": state.data_keys}
    run = state.run
    if run.members == run.reported:
        return tree
    return _first_members(run.reported)(tree)


@functools.lru_cache(maxsize=16)
def _first_members(count: int) -> Callable[[Any], Any]:
    """``tree ↦ every leaf[:count]`` as one program: slicing leaf by leaf dispatched one
    gather per leaf per epoch (tens of milliseconds an epoch for a checkpointed sweep)."""
    return jax.jit(lambda tree: jax.tree.map(lambda leaf: leaf[:count], tree))


def _pad(values: list, count: int) -> list:
    return values + [values[-1]] * (count - len(values))


def _start(*, vmapped, members, reported, params, opt_state, x, y, train_indices, data_keys, val, test, options,
           programs, config, place_members, place_shared, log) -> LoopState:
    o = options
    steps = train_indices.shape[-1] // o.batch_size
    bounds = tuple(sorted(set(np.linspace(0, steps, o.evals_per_epoch + 1).round().astype(int).tolist())))
    run = _Run(
        options=o, vmapped=vmapped, members=members, reported=reported, programs=programs,
        probe=None if o.probe is None else _probe_program(o.probe, vmapped),
        x=x, y=y, train_indices=train_indices,
        train_chunks=tuple(place_members(a) for a in _chunks(_host(train_indices))) if o.eval_train else (),
        splits={name: (split, tuple(place_shared(a) for a in _chunks(np.arange(len(split[0])))))
                for name, split in (("val", val), ("test", test)) if split is not None},
        steps=steps, bounds=bounds,
        config=dict(config or {}, members=reported, batch_size=o.batch_size, loss=o.loss, shuffle=o.shuffle,
                    evals_per_epoch=o.evals_per_epoch, patience=o.patience),
        place_members=place_members, place_shared=place_shared, log=log)
    state = LoopState(params=params, opt_state=opt_state, best_params=params, data_keys=data_keys, epoch=0,
                      histories=tuple(History() for _ in range(members)), best_loss=np.full(members, np.inf),
                      bad_checks=np.zeros(members, int), active=np.ones(members, bool), started=0.0, run=run)
    elapsed_before = 0.0
    directory = o.checkpoint_dir
    if directory is not None and o.resume and checkpoint.latest_epoch(directory) is not None:
        # the configuration first: a different model must be refused by name, not by a shape clash
        saved_epoch, meta = checkpoint.restore_meta(directory)
        checkpoint.check_config(meta["config"], run.config, directory)
        if saved_epoch > o.epochs:
            raise CheckpointAheadError(
                f"checkpoint in {directory} holds {saved_epoch} epochs but epochs={o.epochs} was asked: pass "
                f"epochs ≥ {saved_epoch} to continue it, or drop resume to start afresh")
        saved_epoch, restored, meta = checkpoint.restore(directory, _saved_tree(state))
        params, opt_state, best_params, data_keys = (
            jax.tree.map(lambda leaf: place_members(_host(leaf)), restored[k])
            for k in ("params", "opt_state", "best_params", "data_keys"))
        state = state._replace(
            params=params, opt_state=opt_state, best_params=best_params, data_keys=data_keys, epoch=saved_epoch,
            histories=tuple(History.from_dict(h) for h in _pad(meta["histories"], members)),
            best_loss=np.array([np.inf if v is None else v for v in _pad(meta["best_loss"], members)]),
            bad_checks=np.array(_pad(meta["bad_checks"], members), int),
            active=np.array(_pad(meta["active"], members), bool))
        elapsed_before = meta["seconds"]
        if log:
            log(f"resumed from {directory} after epoch {saved_epoch}")
    elif directory is not None:
        checkpoint.clear(directory)  # a fresh run: stale steps would otherwise stay "newest"
    return state._replace(started=time.perf_counter() - elapsed_before)


def _placement(options: Options):
    """fit's placement: ``(place, batch_sharding)`` for one device, or for ``data_parallel``
    every array replicated and each minibatch split along its first axis."""
    devices = list(options.devices or jax.devices())
    if not options.data_parallel:
        device = devices[0] if options.devices else None
        return (lambda a: jnp.asarray(a) if device is None else jax.device_put(a, device)), None
    mesh = Mesh(np.array(devices), ("batch",))
    replicated = NamedSharding(mesh, PartitionSpec())

    def place(array):
        array = np.asarray(array)
        return jax.make_array_from_callback(array.shape, replicated, lambda index: array[index])

    return place, NamedSharding(mesh, PartitionSpec("batch"))


def start(
    params: Any,
    optimizer: optax.GradientTransformation,
    train_data: tuple[Array, Array],
    *,
    val: tuple[Array, Array] | None = None,
    test: tuple[Array, Array] | None = None,
    seed: int = 0,
    opt_state: Any = None,
    **options: Any,
) -> LoopState:
    """Prepares a :func:`fit` run without training it: checks the inputs, places the data,
    compiles nothing yet, and resumes from a checkpoint if asked.

    Args:
      params: initial parameters (any pytree of arrays).
      optimizer: an optax transformation, ideally :func:`jaxnet.train.make_optimizer`.
      train_data: ``(x, y)``: x of shape (n, …), y (n,) integer labels or (n, outputs) targets.
      val, test, seed, opt_state: as :func:`fit`.
      **options: the fields of :class:`Options` (``epochs`` and ``batch_size`` required),
        exactly :func:`fit`'s keyword arguments.
    Returns:
      A :class:`LoopState` at epoch 0 (or at the checkpoint's epoch when resuming); drive it
      with :func:`run_epoch` until ``state.done``, then call :func:`finish`.
    Raises:
      ValueError: bad input (see :func:`fit`); :class:`CheckpointAheadError` and
      :class:`jaxnet.checkpoint.ConfigMismatchError` when resuming a checkpoint that is
      ahead of ``epochs`` or of another configuration.
    """
    o = _options("start", options)
    apply_fn_resolved = train.resolve_apply(o.hidden, o.apply_fn)
    x, y = jnp.asarray(train_data[0]), jnp.asarray(train_data[1])
    opt_state = optimizer.init(params) if opt_state is None else opt_state
    _check_inputs(params, apply_fn_resolved, o.loss, x, y, o.epochs, o.batch_size, len(x), [opt_state])
    _check_stopping(o.patience, val)
    _check_eval_data(params, apply_fn_resolved, o.loss, x, {"validation": val, "test": test})
    _check_options(o, sweep=False)
    place, batch_sharding = _placement(o)
    programs = _compiled_programs(optimizer, o.hidden, o.loss, o.grad_source, o.apply_fn, o.batch_size, o.shuffle,
                                  False, batch_sharding, _penalized([opt_state]))
    config = dict(o.config or {}, hidden=o.hidden, grad_source=o.grad_source, seed=seed,
                  **_describe(params, opt_state, len(x)))
    as_placed = lambda tree: jax.tree.map(place, tree)  # noqa: E731
    val, test = (None if split is None else as_placed(_check_split(name, split, x))
                 for name, split in (("validation", val), ("test", test)))
    return _start(
        vmapped=False, members=1, reported=1, params=as_placed(params), opt_state=as_placed(opt_state),
        x=place(x), y=place(y), train_indices=place(np.arange(len(x), dtype=np.int32)),
        data_keys=place(jax.random.PRNGKey(seed)), val=val, test=test, options=o, programs=programs,
        config=config, place_members=place, place_shared=place, log=o.log)


def run_epoch(state: LoopState) -> LoopState:
    """Trains one epoch: the compiled scan over its minibatches (in ``evals_per_epoch``
    segments), the divergence and early-stopping checks, evaluation, the History, the
    progress line, the callback, the probe (every ``probe_every`` epochs and after the
    last) and the checkpoint.

    Args:
      state: from :func:`start`, :func:`start_sweep` or an earlier ``run_epoch``. Its
        histories are extended in place and shared with the result, so keep using the
        returned state, not this one.
    Returns:
      The state after the epoch (``state.epoch`` one higher); ``state`` itself if it was
      ``done``.
    """
    if state.done:
        return state
    run, o = state.run, state.run.options
    programs, vmapped, members = run.programs, run.vmapped, run.members
    params, opt_state, best_params = state.params, state.opt_state, state.best_params
    best_loss, bad_checks, active = state.best_loss.copy(), state.bad_checks.copy(), state.active.copy()
    histories, epoch, log = state.histories, state.epoch, run.log
    as_member_axis = (lambda v: v) if vmapped else (lambda v: v[None])

    def choose(condition: np.ndarray, new, old):
        """Per member, ``new`` where ``condition`` else ``old``; by reference when all agree."""
        if condition.all():
            return new
        if not condition.any():
            return old
        return programs.select(run.place_members(condition), new, old)

    epoch_order = programs.order(state.data_keys, epoch, run.train_indices)
    for first, last in zip(run.bounds[:-1], run.bounds[1:]):
        was_active = active.copy()
        new_params, new_opt_state, finite = programs.segment(params, opt_state, run.x, run.y, epoch_order, first,
                                                             length=last - first)
        finite = as_member_axis(_host(finite))
        # a diverged or stopped member keeps its last good state
        params, opt_state = choose(was_active & finite, (new_params, new_opt_state), (params, opt_state))
        values = {}
        if o.eval_train:
            values["train"] = programs.evaluate_train(params, run.x, run.y, *run.train_chunks)
        for name, ((split_x, split_y), chunks) in run.splits.items():
            values[name] = programs.evaluate_shared(params, split_x, split_y, *chunks)
        values = {f"{name}_{m}": as_member_axis(_host(v)) for name, pair in values.items()
                  for m, v in zip(("loss", "accuracy"), pair)}
        now = time.perf_counter() - state.started
        epoch_value = epoch + last / run.steps
        improved = np.zeros(members, bool)
        for k in np.flatnonzero(was_active):
            history = histories[k]
            if not finite[k]:
                history.diverged, history.diverged_epoch = True, epoch_value
                active[k] = False
                if log:
                    log(f"member {k}: " * vmapped + f"diverged at epoch {epoch_value:.2f} (the loss "
                        "became NaN or inf); kept the parameters of the last finite check. "
                        "Try a smaller learning rate.")
                continue
            history.append(epoch_value, (epoch * run.steps) + last, now, {m: float(v[k]) for m, v in values.items()})
            if "val_loss" in values:
                if values["val_loss"][k] < best_loss[k]:
                    best_loss[k], bad_checks[k], improved[k] = values["val_loss"][k], 0, True
                    history.best_epoch, history.best_val_loss = epoch_value, float(best_loss[k])
                else:
                    bad_checks[k] += 1
                    if o.patience is not None and bad_checks[k] >= o.patience:
                        history.stopped_epoch = epoch_value
                        active[k] = False
        if "val_loss" not in values:
            improved = was_active & finite
        best_params = choose(improved, params, best_params)
        probed = {}
        end_of_epoch = last == run.steps or not active.any()
        if run.probe is not None and end_of_epoch and (
                (epoch + 1) % o.probe_every == 0 or epoch + 1 == o.epochs or not active.any()):
            probed = {name: as_member_axis(_host(v)) for name, v in run.probe(params).items()}
            for k in np.flatnonzero(was_active & finite):
                histories[k].append_probe(epoch_value, {name: float(v[k]) for name, v in probed.items()})
        if log:
            log(_progress(epoch_value, o.epochs, now, {m: v[:run.reported] for m, v in values.items()},
                          histories[:run.reported], vmapped, probed))
        if o.callback is not None:
            o.callback(epoch_value, list(histories[:run.reported]))
        if not active.any():
            break
    done = epoch + 1 == o.epochs or not active.any()
    state = state._replace(params=params, opt_state=opt_state, best_params=best_params, epoch=epoch + 1,
                           best_loss=best_loss, bad_checks=bad_checks, active=active)
    if o.checkpoint_dir is not None and ((epoch + 1) % o.checkpoint_every == 0 or done):
        count = run.reported
        checkpoint.save(o.checkpoint_dir, epoch + 1, _saved_tree(state), {
            "config": run.config, "histories": [h.to_dict() for h in histories[:count]],
            "best_loss": [None if not np.isfinite(v) else float(v) for v in best_loss[:count]],
            "bad_checks": bad_checks[:count].tolist(), "active": active[:count].tolist(),
            "seconds": time.perf_counter() - state.started})
    if not active.any() and log and o.patience is not None:
        log(f"stopped early at epoch {epoch_value:.2f}")
    return state


def finish(state: LoopState) -> FitResult | SweepResult:
    """The result of a run driven by :func:`run_epoch`.

    Args:
      state: the last state (normally ``state.done``; an unfinished one gives the result
        so far).
    Returns:
      :class:`FitResult` for a state from :func:`start`, :class:`SweepResult` (padding
      members dropped, arrays on the host) for one from :func:`start_sweep`.
    """
    run = state.run
    if not run.vmapped:
        return FitResult(state.params, state.opt_state, state.best_params, state.histories[0])
    count = run.reported
    unpad = lambda tree: jax.tree.map(lambda leaf: _host(leaf)[:count], tree)  # noqa: E731
    return SweepResult(unpad(state.params), unpad(state.opt_state), unpad(state.best_params),
                       list(state.histories[:count]))


def _progress(epoch_value, epochs, seconds, values, histories, vmapped, probed=None) -> str:
    if not vmapped:
        parts = [f"epoch {epoch_value:6.2f}/{epochs}"]
        for name in ("train", "val", "test"):
            if f"{name}_loss" in values:
                parts.append(f"{name} loss {_format(float(values[f'{name}_loss'][0]))} "
                             f"acc {_format(float(values[f'{name}_accuracy'][0]), True)}")
        parts += [f"{name} {float(v[0]):.4g}" for name, v in (probed or {}).items()]
        return "  ".join(parts) + f"  {seconds:6.1f}s"
    key = next((k for k in ("val_accuracy", "train_accuracy", "test_accuracy") if k in values), None)
    if key is None:
        return f"epoch {epoch_value:6.2f}/{epochs}  {len(histories)} members  {seconds:6.1f}s"
    shown = " ".join(_format(float(v), True) for v in values.get(key, []))
    live = sum(not h.diverged and h.stopped_epoch is None for h in histories)
    return f"epoch {epoch_value:6.2f}/{epochs}  {len(histories)} members ({live} training)  {key}: {shown}  {seconds:6.1f}s"


# --- public API ---------------------------------------------------------------------------


def fit(
    params: Any,
    optimizer: optax.GradientTransformation,
    train_data: tuple[Array, Array],
    *,
    epochs: int,
    batch_size: int,
    hidden: str = "relu",
    loss: str = "softmax_cross_entropy",
    grad_source: str = "autodiff",
    apply_fn: train.ApplyFn | None = None,
    val: tuple[Array, Array] | None = None,
    test: tuple[Array, Array] | None = None,
    shuffle: bool = True,
    seed: int = 0,
    evals_per_epoch: int = 1,
    patience: int | None = None,
    eval_train: bool = True,
    opt_state: Any = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    config: dict | None = None,
    log: Callable[[str], None] | None = print,
    callback: Callable[[float, list[History]], None] | None = None,
    probe: Probe | None = None,
    probe_every: int = 1,
    data_parallel: bool = False,
    devices: Sequence[jax.Device] | None = None,
) -> FitResult:
    """Trains one model: ``start``, then :func:`run_epoch` until done, then ``finish``.

    Args:
      params: initial parameters (never modified: nothing is donated).
      optimizer: an optax transformation, ideally :func:`jaxnet.train.make_optimizer`.
      train_data: ``(x, y)``; x (n, …); y (n,) integer labels, (n, outputs) float targets,
        or 0/1 for a binary loss.
      epochs: passes over the training set.
      batch_size: examples per step; the last ``n mod batch_size`` of each epoch are dropped.
      hidden, loss, grad_source, apply_fn: as :func:`jaxnet.train.make_train_step`.
      val, test: optional ``(x, y)`` evaluated at every check.
      shuffle: draw a fresh permutation each epoch (else the stored order every epoch).
      seed: the data-order seed.
      evals_per_epoch: checks per epoch (the logistic-regression study uses 5).
      patience: stop after this many checks without a lower validation loss.
      eval_train: evaluate the loss and accuracy on the whole training set at each check.
      opt_state: resume from this optimizer state instead of ``optimizer.init(params)``.
      checkpoint_dir: save a checkpoint there after every epoch (orbax): parameters, optimizer
        state, best parameters, the data-order key, histories. A run that does not resume
        deletes the checkpoints it finds there first.
      checkpoint_every: save every this many epochs (and after the last); each save costs
        about 0.1 s, so long runs of fast epochs may save less often.
      resume: continue from the newest checkpoint in ``checkpoint_dir`` (its configuration
        must equal this one's, apart from ``epochs``: settings, parameter shapes, optimizer
        hyperparameters, training-set size; else :class:`jaxnet.checkpoint.ConfigMismatchError`;
        a checkpoint holding more than ``epochs`` epochs raises :class:`CheckpointAheadError`).
      config: extra JSON-able settings stored with checkpoints and compared on resume.
      log: where progress lines go (one per check); None for quiet.
      callback: called as ``callback(epoch, [history])`` after every check.
      probe: ``probe(params) → {name: scalar array}``, traceable; jitted once and run on
        the parameters at the end of every ``probe_every``-th epoch and after the last
        (never inside the scan), recorded in ``history.probe_epoch`` / ``history.probes``.
        For a probe that needs data (e.g. a curvature estimate on a fixed batch), close over
        a small batch.
      probe_every: epochs between probes.
      data_parallel: split every minibatch over ``devices`` (default ``jax.devices()``)
        along its first axis with a ``NamedSharding``; parameters, optimizer state and the
        data are replicated and XLA sums the gradients across devices. ``batch_size`` must
        be a multiple of the device count. Results equal a one-device run up to float
        rounding; this is the route to several GPUs, and to several hosts after
        ``jax.distributed.initialize`` (every process calls ``fit`` with the same arguments).
      devices: the devices of ``data_parallel``; without it, ``devices[0]`` runs the fit.
    Returns:
      :class:`FitResult` ``(params, opt_state, best_params, history)``.
    """
    state = start(params, optimizer, train_data, val=val, test=test, seed=seed, opt_state=opt_state,
                  epochs=epochs, batch_size=batch_size, hidden=hidden, loss=loss, grad_source=grad_source,
                  apply_fn=apply_fn, shuffle=shuffle, evals_per_epoch=evals_per_epoch, patience=patience,
                  eval_train=eval_train, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                  resume=resume, config=config, log=log, callback=callback, probe=probe, probe_every=probe_every,
                  data_parallel=data_parallel, devices=devices)
    while not state.done:
        state = run_epoch(state)
    return finish(state)


def _member_values(name: str, values, count: int | None) -> list | None:
    if values is None:
        return None
    values = list(values) if isinstance(values, (list, tuple, np.ndarray, jax.Array)) else None
    if values is None:
        raise ValueError(f"{name} must be a sequence with one value per member")
    if count is not None and len(values) != count:
        raise ValueError(f"{name} has {len(values)} values but other settings have {count} members; give one per member")
    return values


def start_sweep(
    init: Callable[[Array], Any] | Any,
    optimizer: optax.GradientTransformation,
    train_data: tuple[Array, Array],
    *,
    learning_rate: Sequence[float] | None = None,
    l2: Sequence[float] | None = None,
    init_seed: Sequence[int] | None = None,
    data_seed: Sequence[int] | None = None,
    labels: Array | None = None,
    indices: Array | None = None,
    val: tuple[Array, Array] | None = None,
    test: tuple[Array, Array] | None = None,
    **options: Any,
) -> LoopState:
    """Prepares a :func:`sweep` (K members as one vmapped program) without training it.

    Args:
      init, optimizer, train_data, learning_rate, l2, init_seed, data_seed, labels,
        indices, val, test: as :func:`sweep`.
      **options: the fields of :class:`Options` (``devices``: where the member axis is
        sharded, default every device of every process; ``data_parallel`` is refused).
    Returns:
      A :class:`LoopState` whose arrays carry a leading member axis; drive it with
      :func:`run_epoch`, then :func:`finish` gives the :class:`SweepResult`.
    """
    o = _options("start_sweep", options)
    hidden, loss, epochs, batch_size, patience = o.hidden, o.loss, o.epochs, o.batch_size, o.patience
    settings = {"learning_rate": learning_rate, "l2": l2, "init_seed": init_seed, "data_seed": data_seed,
                "labels": labels, "indices": indices}
    count = None
    for name, values in settings.items():
        settings[name] = _member_values(name, values, count)
        count = len(settings[name]) if settings[name] is not None else count
    if count is None:
        raise ValueError("a sweep needs at least one per-member setting (learning_rate, l2, init_seed, "
                         "data_seed, labels or indices)")
    apply_fn_resolved = train.resolve_apply(hidden, o.apply_fn)
    x, y = jnp.asarray(train_data[0]), jnp.asarray(train_data[1])
    _check_member_data(settings["labels"], settings["indices"], len(x))
    member_labels = np.stack([np.asarray(v) for v in settings["labels"]]) if labels is not None else np.broadcast_to(np.asarray(y), (count,) + y.shape)
    member_indices = (np.stack([np.asarray(v) for v in settings["indices"]]) if indices is not None
                      else np.broadcast_to(np.arange(len(x)), (count, len(x))))

    init_seeds = settings["init_seed"] or [0] * count
    member_params = [init(jax.random.PRNGKey(int(s))) if callable(init) else init for s in init_seeds]
    member_states = []
    for k, params_k in enumerate(member_params):
        state = optimizer.init(params_k)
        overrides = {name: settings[name][k] for name in ("learning_rate", "l2") if settings[name] is not None}
        member_states.append(train.set_hyperparams(state, **overrides) if overrides else state)
    _check_inputs(member_params[0], apply_fn_resolved, loss, x, jnp.asarray(member_labels[0]), epochs, batch_size,
                  member_indices.shape[1], member_states)
    _check_stopping(patience, val)
    _check_members(member_params, apply_fn_resolved, loss, x, member_labels)
    _check_eval_data(member_params[0], apply_fn_resolved, loss, x, {"validation": val, "test": test})
    _check_options(o, sweep=True)
    data_keys = np.stack([np.asarray(jax.random.PRNGKey(int(s))) for s in (settings["data_seed"] or [0] * count)])

    devices = list(o.devices or jax.devices())
    padded = -(-count // len(devices)) * len(devices)  # the member axis must split evenly
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

    stack = lambda trees: jax.tree.map(lambda *leaves: place_members(np.stack(leaves)), *trees)  # noqa: E731
    programs = _compiled_programs(optimizer, hidden, loss, o.grad_source, o.apply_fn, batch_size, o.shuffle, True,
                                  None, _penalized(member_states))
    config = dict(o.config or {}, hidden=hidden, grad_source=o.grad_source,
                  **{k: np.asarray(v).tolist() for k, v in settings.items() if v is not None and k not in ("labels", "indices")},
                  **_describe(member_params[0], member_states[0], member_indices.shape[1]))
    return _start(
        vmapped=True, members=padded, reported=count, params=stack(member_params), opt_state=stack(member_states),
        x=place_shared(x), y=place_members(member_labels), train_indices=place_members(member_indices),
        data_keys=place_members(data_keys),
        val=None if val is None else tuple(place_shared(a) for a in _check_split("validation", val, x)),
        test=None if test is None else tuple(place_shared(a) for a in _check_split("test", test, x)),
        options=o, programs=programs, config=config, place_members=place_members, place_shared=place_shared,
        log=o.log if jax.process_index() == 0 else None)


def sweep(
    init: Callable[[Array], Any] | Any,
    optimizer: optax.GradientTransformation,
    train_data: tuple[Array, Array],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: Sequence[float] | None = None,
    l2: Sequence[float] | None = None,
    init_seed: Sequence[int] | None = None,
    data_seed: Sequence[int] | None = None,
    labels: Array | None = None,
    indices: Array | None = None,
    hidden: str = "relu",
    loss: str = "softmax_cross_entropy",
    grad_source: str = "autodiff",
    apply_fn: train.ApplyFn | None = None,
    val: tuple[Array, Array] | None = None,
    test: tuple[Array, Array] | None = None,
    shuffle: bool = True,
    evals_per_epoch: int = 1,
    patience: int | None = None,
    eval_train: bool = True,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    config: dict | None = None,
    devices: Sequence[jax.Device] | None = None,
    log: Callable[[str], None] | None = print,
    callback: Callable[[float, list[History]], None] | None = None,
    probe: Probe | None = None,
    probe_every: int = 1,
) -> SweepResult:
    """Trains K members as one vmapped, compiled program; member k equals
    ``fit(init(PRNGKey(init_seed[k])), …, seed=data_seed[k])`` with its own learning rate,
    λ, labels and training subset.

    Args:
      init: ``key → params`` (called with ``jax.random.PRNGKey(init_seed[k])``), or one
        set of parameters shared by every member.
      optimizer: from :func:`jaxnet.train.make_optimizer` (its injected hyperparameters are
        set per member).
      train_data: ``(x, y)`` shared by all members (x stays on the device once).
      learning_rate, l2, init_seed, data_seed: one value per member (None: the optimizer's
        value, seed 0). Their lengths set K.
      labels: (K, n) training labels per member (label-noise studies).
      indices: (K, m) indices into ``train_data`` per member (training-subset studies).
      devices: where the member axis is sharded; default every device of every process
        (on a CPU, jaxnet makes one device per core: see ``jaxnet/__init__.py``).
      probe: ``probe(params) → {name: scalar}`` for one member's parameters; vmapped over
        the members and jitted once; each member's History records its own values.
      Other arguments: as :func:`fit`.
    Returns:
      :class:`SweepResult` with member-stacked parameters and one History per member.
    """
    state = start_sweep(init, optimizer, train_data, learning_rate=learning_rate, l2=l2, init_seed=init_seed,
                        data_seed=data_seed, labels=labels, indices=indices, val=val, test=test, epochs=epochs,
                        batch_size=batch_size, hidden=hidden, loss=loss, grad_source=grad_source, apply_fn=apply_fn,
                        shuffle=shuffle, evals_per_epoch=evals_per_epoch, patience=patience, eval_train=eval_train,
                        checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, resume=resume,
                        config=config, devices=devices, log=log, callback=callback, probe=probe,
                        probe_every=probe_every)
    while not state.done:
        state = run_epoch(state)
    return finish(state)


@functools.lru_cache(maxsize=64)
def _classifier_program(hidden, loss, apply_fn):
    """One jitted program (built once per configuration): mean loss, accuracy, predictions."""
    resolved = train.resolve_apply(hidden, apply_fn)
    evaluate = _programs(None, resolved, loss, 1, False)[2]

    def program(params, x, y, chunks, weights):
        mean_loss, accuracy = evaluate(params, x, y, chunks, weights)
        predictions = jax.lax.map(lambda i: metrics.predict(resolved(params, x[i])), chunks)
        return mean_loss, accuracy, predictions.reshape(-1)[: x.shape[0]]

    return resolved, jax.jit(program)


def evaluate_classifier(
    params: Any,
    data: tuple[Array, Array],
    *,
    hidden: str = "relu",
    loss: str = "softmax_cross_entropy",
    apply_fn: train.ApplyFn | None = None,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Loss, accuracy, confusion matrix, per-class recall and one-vs-rest accuracy.

    Returns:
      A dict of plain Python numbers and nested lists (JSON-ready).
    """
    x, y = jnp.asarray(data[0]), jnp.asarray(data[1])
    resolved, program = _classifier_program(hidden, loss, apply_fn)
    _check_eval_data(params, resolved, loss, x, {"evaluation": (x, y)})
    mean_loss, accuracy, predictions = program(params, x, y, *_chunks(np.arange(len(x))))
    labels = metrics.labels_of(y)
    num_classes = num_classes or max(jax.eval_shape(resolved, params, x[:1]).shape[-1], 2)
    confusion = metrics.confusion_matrix(predictions, labels, num_classes)
    return {
        "loss": float(mean_loss),
        "accuracy": float(accuracy),
        "confusion_matrix": np.asarray(confusion).tolist(),
        "per_class_recall": np.asarray(metrics.per_class_recall(confusion)).tolist(),
        "per_class_one_vs_rest_accuracy": np.asarray(metrics.per_class_one_vs_rest_accuracy(confusion)).tolist(),
    }
