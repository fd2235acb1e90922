"""The training engine: compiled epochs, one-program sweeps, early stopping, divergence,
checkpoints.

The whole dataset stays on the device. An epoch draws one permutation from
``fold_in(data_key, epoch)`` and runs ``lax.scan`` over its minibatches inside one jit
region (split into ``evals_per_epoch`` segments when evaluating several times per epoch).
Every minibatch has ``batch_size`` examples: the last ``n mod batch_size`` examples of each
epoch's order are dropped (with shuffling, a different few each epoch).

:func:`sweep` trains K members that differ in traced values (learning rate, λ, init seed,
data-order seed, labels, training subset) as ONE vmapped program whose member axis is
sharded over every device (several processes too, after ``jax.distributed.initialize``).
:func:`fit` runs the same programs without the member axis.
"""
from __future__ import annotations

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


# --- the compiled programs --------------------------------------------------------------


def _programs(train_step, apply_fn, loss: str, batch_size: int, shuffle: bool):
    """The pure functions of one member: epoch order, a training segment, evaluation."""

    def order(data_key, epoch, indices):
        n = indices.shape[0]
        steps = n // batch_size
        if shuffle:
            indices = indices[jax.random.permutation(jax.random.fold_in(data_key, epoch), n)]
        return indices[: steps * batch_size].reshape(steps, batch_size)

    def segment(params, opt_state, x, y, batches, active):
        def body(carry, batch_indices):
            params, opt_state, _ = train_step(*carry, train.Batch(x[batch_indices], y[batch_indices]))
            return (params, opt_state), _["loss"]

        (new_params, new_opt_state), batch_losses = jax.lax.scan(body, (params, opt_state), batches)
        finite = jnp.all(jnp.isfinite(batch_losses)) & jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(new_params)]))
        keep = active & finite  # a diverged or stopped member keeps its last good state
        new_params, new_opt_state = jax.tree.map(
            lambda new, old: jnp.where(keep, new, old), (new_params, new_opt_state), (params, opt_state))
        return new_params, new_opt_state, finite

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


def _compile(functions, vmapped: bool):
    order, segment, evaluate, select = functions
    if vmapped:
        order = jax.vmap(order, in_axes=(0, None, 0))
        segment = jax.vmap(segment, in_axes=(0, 0, None, 0, 0, 0))
        evaluate_train = jax.vmap(evaluate, in_axes=(0, None, 0, 0, 0))
        evaluate_shared = jax.vmap(evaluate, in_axes=(0, None, None, None, None))
        select = jax.vmap(select)
    else:
        evaluate_train = evaluate_shared = evaluate
    return (jax.jit(order), jax.jit(segment, donate_argnums=(0, 1)), jax.jit(evaluate_train),
            jax.jit(evaluate_shared), jax.jit(select))


@functools.lru_cache(maxsize=64)
def _compiled_programs(optimizer, hidden, loss, grad_source, apply_fn, batch_size, shuffle, vmapped):
    """The jitted programs for one configuration, built once per process: a second ``fit``
    with the same optimizer and settings reuses them instead of compiling again."""
    train_step = train.make_train_step(optimizer, hidden=hidden, loss=loss, grad_source=grad_source,
                                       apply_fn=apply_fn, jit=False)
    functions = _programs(train_step, train.resolve_apply(hidden, apply_fn), loss, batch_size, shuffle)
    return _compile(functions, vmapped)


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
    for state in opt_states:
        for name, value in train.hyperparams(state).items():
            if name in ("learning_rate", "l2") and np.any(np.asarray(value) < 0):
                raise ValueError(f"{name} must be non-negative, got {np.asarray(value)}")
    logits = jax.eval_shape(apply_fn, params, jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), x.dtype))
    losses.check_targets(loss, (len(y), logits.shape[-1]), jnp.asarray(y))


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


def _run(*, vmapped, members, reported, params, opt_state, x, y, train_indices, data_keys, val, test, epochs,
         batch_size, loss, programs, shuffle, evals_per_epoch, patience, eval_train,
         checkpoint_dir, checkpoint_every, resume, config, log, callback, place_members, place_shared):
    order, segment, evaluate_train, evaluate_shared, select = programs
    steps = train_indices.shape[-1] // batch_size
    bounds = sorted(set(np.linspace(0, steps, max(1, evals_per_epoch) + 1).round().astype(int).tolist()))
    train_chunks = tuple(place_members(a) for a in _chunks(_host(train_indices)))
    splits = {name: (split, tuple(place_shared(a) for a in _chunks(np.arange(len(split[0])))))
              for name, split in (("val", val), ("test", test)) if split is not None}

    best_params = jax.tree.map(jnp.copy, params)
    best_loss = np.full(members, np.inf)
    bad_checks = np.zeros(members, int)
    active = np.ones(members, bool)
    histories = [History() for _ in range(members)]
    start_epoch, elapsed_before = 0, 0.0
    config = dict(config or {}, members=members, batch_size=batch_size, loss=loss, shuffle=shuffle,
                  evals_per_epoch=evals_per_epoch, patience=patience)

    def state_tree():
        return {"params": params, "opt_state": opt_state, "best_params": best_params, "data_keys": data_keys}

    if checkpoint_dir is not None and resume and checkpoint.latest_epoch(checkpoint_dir) is not None:
        # the configuration first: a different model must be refused by name, not by a shape clash
        checkpoint.check_config(checkpoint.restore_meta(checkpoint_dir)[1]["config"], config, checkpoint_dir)
        start_epoch, restored, meta = checkpoint.restore(checkpoint_dir, state_tree())
        params, opt_state, best_params, data_keys = (
            jax.tree.map(lambda leaf: place_members(_host(leaf)), restored[k])
            for k in ("params", "opt_state", "best_params", "data_keys"))
        histories = [History.from_dict(h) for h in meta["histories"]]
        best_loss = np.array([np.inf if v is None else v for v in meta["best_loss"]])
        bad_checks, active = np.array(meta["bad_checks"], int), np.array(meta["active"], bool)
        elapsed_before = meta["seconds"]
        if log:
            log(f"resumed from {checkpoint_dir} after epoch {start_epoch}")
    elif checkpoint_dir is not None:
        checkpoint.clear(checkpoint_dir)  # a fresh run: stale steps would otherwise stay "newest"

    as_member_axis = (lambda v: v) if vmapped else (lambda v: v[None])
    started = time.perf_counter() - elapsed_before
    for epoch in range(start_epoch, epochs):
        if not active.any():  # resumed after every member had stopped or diverged
            break
        epoch_order = order(data_keys, epoch, train_indices)
        for first, last in zip(bounds[:-1], bounds[1:]):
            was_active = active.copy()
            batches = epoch_order[..., first:last, :]
            params, opt_state, finite = segment(params, opt_state, x, y, batches,
                                                place_members(active if vmapped else active[0]))
            finite = as_member_axis(_host(finite))
            values = {}
            if eval_train:
                values["train"] = evaluate_train(params, x, y, *train_chunks)
            for name, ((split_x, split_y), chunks) in splits.items():
                values[name] = evaluate_shared(params, split_x, split_y, *chunks)
            values = {f"{name}_{m}": as_member_axis(_host(v)) for name, pair in values.items()
                      for m, v in zip(("loss", "accuracy"), pair)}
            now = time.perf_counter() - started
            epoch_value = epoch + last / steps
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
                history.append(epoch_value, (epoch * steps) + last, now, {m: float(v[k]) for m, v in values.items()})
                if "val_loss" in values:
                    if values["val_loss"][k] < best_loss[k]:
                        best_loss[k], bad_checks[k], improved[k] = values["val_loss"][k], 0, True
                        history.best_epoch, history.best_val_loss = epoch_value, float(best_loss[k])
                    else:
                        bad_checks[k] += 1
                        if patience is not None and bad_checks[k] >= patience:
                            history.stopped_epoch = epoch_value
                            active[k] = False
            if "val_loss" not in values:
                improved = was_active & finite
            best_params = select(place_members(improved if vmapped else improved[0]), params, best_params)
            if log:
                log(_progress(epoch_value, epochs, now, {m: v[:reported] for m, v in values.items()},
                              histories[:reported], vmapped))
            if callback is not None:
                callback(epoch_value, histories[:reported])
            if not active.any():
                break
        last_epoch = epoch + 1 == epochs or not active.any()
        if checkpoint_dir is not None and ((epoch + 1) % checkpoint_every == 0 or last_epoch):
            checkpoint.save(checkpoint_dir, epoch + 1, state_tree(), {
                "config": config, "histories": [h.to_dict() for h in histories],
                "best_loss": [None if not np.isfinite(v) else float(v) for v in best_loss],
                "bad_checks": bad_checks.tolist(), "active": active.tolist(),
                "seconds": time.perf_counter() - started})
        if not active.any():
            if log and patience is not None:
                log(f"stopped early at epoch {epoch_value:.2f}")
            break
    return params, opt_state, best_params, histories


def _progress(epoch_value, epochs, seconds, values, histories, vmapped) -> str:
    if not vmapped:
        parts = [f"epoch {epoch_value:6.2f}/{epochs}"]
        for name in ("train", "val", "test"):
            if f"{name}_loss" in values:
                parts.append(f"{name} loss {_format(float(values[f'{name}_loss'][0]))} "
                             f"acc {_format(float(values[f'{name}_accuracy'][0]), True)}")
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
) -> FitResult:
    """Trains one model.

    Args:
      params: initial parameters (copied; the caller's arrays stay valid).
      optimizer: an optax transformation, ideally :func:`jaxnet.train.make_optimizer`.
      train_data: ``(x, y)``; y integer labels, float targets, or 0/1 for a binary loss.
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
        hyperparameters, training-set size; else :class:`jaxnet.checkpoint.ConfigMismatchError`).
      config: extra JSON-able settings stored with checkpoints and compared on resume.
      log: where progress lines go (one per check); None for quiet.
      callback: called as ``callback(epoch, [history])`` after every check.
    Returns:
      :class:`FitResult`.
    """
    apply_fn_resolved = train.resolve_apply(hidden, apply_fn)
    x, y = jnp.asarray(train_data[0]), jnp.asarray(train_data[1])
    opt_state = optimizer.init(params) if opt_state is None else opt_state
    _check_inputs(params, apply_fn_resolved, loss, x, y, epochs, batch_size, len(x), [opt_state])
    _check_stopping(patience, val)
    programs = _compiled_programs(optimizer, hidden, loss, grad_source, apply_fn, batch_size, shuffle, False)
    config = dict(config or {}, hidden=hidden, grad_source=grad_source, seed=seed,
                  **_describe(params, opt_state, len(x)))
    params, opt_state, best_params, histories = _run(
        vmapped=False, members=1, reported=1, params=jax.tree.map(jnp.copy, params), opt_state=jax.tree.map(jnp.copy, opt_state),
        x=x, y=y, train_indices=jnp.arange(len(x)), data_keys=jax.random.PRNGKey(seed),
        val=_check_split("validation", val, x), test=_check_split("test", test, x), epochs=epochs,
        batch_size=batch_size, loss=loss, programs=programs, shuffle=shuffle,
        evals_per_epoch=evals_per_epoch, patience=patience, eval_train=eval_train,
        checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, resume=resume, config=config, log=log, callback=callback,
        place_members=jnp.asarray, place_shared=jnp.asarray)
    return FitResult(params, opt_state, best_params, histories[0])


def _member_values(name: str, values, count: int | None) -> list | None:
    if values is None:
        return None
    values = list(values) if isinstance(values, (list, tuple, np.ndarray, jax.Array)) else None
    if values is None:
        raise ValueError(f"{name} must be a sequence with one value per member")
    if count is not None and len(values) != count:
        raise ValueError(f"{name} has {len(values)} values but other settings have {count} members; give one per member")
    return values


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
      devices: where the member axis is sharded; default every device of every process.
      Other arguments: as :func:`fit`.
    Returns:
      :class:`SweepResult` with member-stacked parameters and one History per member.
    """
    settings = {"learning_rate": learning_rate, "l2": l2, "init_seed": init_seed, "data_seed": data_seed,
                "labels": labels, "indices": indices}
    count = None
    for name, values in settings.items():
        settings[name] = _member_values(name, values, count)
        count = len(settings[name]) if settings[name] is not None else count
    if count is None:
        raise ValueError("a sweep needs at least one per-member setting (learning_rate, l2, init_seed, "
                         "data_seed, labels or indices)")
    apply_fn_resolved = train.resolve_apply(hidden, apply_fn)
    x, y = jnp.asarray(train_data[0]), jnp.asarray(train_data[1])
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
    data_keys = np.stack([np.asarray(jax.random.PRNGKey(int(s))) for s in (settings["data_seed"] or [0] * count)])

    devices = list(devices or jax.devices())
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
    programs = _compiled_programs(optimizer, hidden, loss, grad_source, apply_fn, batch_size, shuffle, True)
    config = dict(config or {}, hidden=hidden, grad_source=grad_source,
                  **{k: np.asarray(v).tolist() for k, v in settings.items() if v is not None and k not in ("labels", "indices")},
                  **_describe(member_params[0], member_states[0], member_indices.shape[1]))
    params, opt_state, best_params, histories = _run(
        vmapped=True, members=padded, reported=count, params=stack(member_params), opt_state=stack(member_states),
        x=place_shared(x), y=place_members(member_labels), train_indices=place_members(member_indices),
        data_keys=place_members(data_keys),
        val=None if val is None else tuple(place_shared(a) for a in _check_split("validation", val, x)),
        test=None if test is None else tuple(place_shared(a) for a in _check_split("test", test, x)),
        epochs=epochs, batch_size=batch_size, loss=loss, programs=programs,
        shuffle=shuffle, evals_per_epoch=evals_per_epoch, patience=patience, eval_train=eval_train,
        checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, resume=resume, config=config,
        log=log if jax.process_index() == 0 else None, callback=callback,
        place_members=place_members, place_shared=place_shared)
    unpad = lambda tree: jax.tree.map(lambda leaf: _host(leaf)[:count], tree)  # noqa: E731
    return SweepResult(unpad(params), unpad(opt_state), unpad(best_params), histories[:count])


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
