"""The host loop: one epoch at a time (:func:`run_epoch`), and :func:`fit` and :func:`sweep`
as short loops over it. Each check publishes an :class:`~jaxnet.engine.events.Check`."""
from __future__ import annotations

import time
from typing import Any, Sequence

import jax
import numpy as np
import optax

from jaxnet import checkpoint
from jaxnet.engine import events
from jaxnet.engine.start import host, saved_tree, start, start_sweep
from jaxnet.engine.state import FitResult, Run, SweepResult, TrainState
from jaxnet.mlp import Model

Array = jax.Array


def _choose(run: Run, condition: np.ndarray, new, old):
    """Per member, ``new`` where ``condition`` else ``old``; by reference when all agree."""
    if condition.all():
        return new
    if not condition.any():
        return old
    return run.programs.select(run.place_members(condition), new, old)


def _evaluate(run: Run, params) -> dict[str, np.ndarray]:
    """Mean loss and accuracy on the training set (if asked) and the held-out sets, per member."""
    programs, values = run.programs, {}
    if run.options.eval_train:
        values["train"] = programs.evaluate_train(params, run.x, run.y, *run.train_chunks)
    for name, ((split_x, split_y), chunks) in run.splits.items():
        values[name] = programs.evaluate_shared(params, split_x, split_y, *chunks)
    as_members = (lambda v: v) if run.vmapped else (lambda v: v[None])
    return {f"{name}_{metric}": as_members(host(v)) for name, pair in values.items()
            for metric, v in zip(("loss", "accuracy"), pair)}


def _record(run: Run, state: TrainState, values, finite, was_active, epoch_value, step, now):
    """Histories, divergence and early stopping after one check; returns the new per-member
    arrays and which members improved on their best validation loss."""
    o = run.options
    best_loss, bad_checks, active = state.best_loss.copy(), state.bad_checks.copy(), state.active.copy()
    improved = np.zeros(run.members, bool)
    for k in np.flatnonzero(was_active):
        history = run.histories[k]
        if not finite[k]:
            history.diverged, history.diverged_epoch = True, epoch_value
            active[k] = False
            if k < run.reported:
                events.publish(o.hooks, run.log, events.Diverged(int(k), epoch_value, run.vmapped))
            continue
        history.append(epoch_value, step, now, {m: float(v[k]) for m, v in values.items()})
        if "val_loss" not in values:
            improved[k] = True
        elif values["val_loss"][k] < best_loss[k]:
            best_loss[k], bad_checks[k], improved[k] = values["val_loss"][k], 0, True
            history.best_epoch, history.best_val_loss = epoch_value, float(best_loss[k])
        else:
            bad_checks[k] += 1
            if o.patience is not None and bad_checks[k] >= o.patience:
                history.stopped_epoch = epoch_value
                active[k] = False
    return best_loss, bad_checks, active, improved


def run_epoch(run: Run, state: TrainState) -> TrainState:
    """Trains one epoch: the compiled scan over its minibatches (in ``evals_per_epoch``
    segments), the divergence and early-stopping checks, evaluation, the histories, the
    events, the probe (every ``probe_every`` epochs and after the last) and the checkpoint.

    Args:
      run, state: from :func:`~jaxnet.engine.start`, ``start_sweep`` or an earlier ``run_epoch``.
    Returns:
      The state after the epoch (``state.epoch`` one higher); ``state`` itself if ``run.done(state)``.
    """
    if run.done(state):
        return state
    o, programs, epoch = run.options, run.programs, int(state.epoch)
    as_members = (lambda v: v) if run.vmapped else (lambda v: v[None])
    epoch_order = programs.order(state.data_keys, epoch, run.train_indices)
    for first, last in zip(run.bounds[:-1], run.bounds[1:]):
        was_active = state.active.copy()
        new_params, new_opt_state, finite = programs.segment(state.params, state.opt_state, state.l2, run.x, run.y,
                                                             epoch_order, first, length=last - first)
        finite = as_members(host(finite))
        # a diverged or stopped member keeps its last good state
        params, opt_state = _choose(run, was_active & finite, (new_params, new_opt_state),
                                    (state.params, state.opt_state))
        values = _evaluate(run, params)
        epoch_value = epoch + last / run.steps
        now = time.perf_counter() - run.started
        best_loss, bad_checks, active, improved = _record(run, state, values, finite, was_active, epoch_value,
                                                          epoch * run.steps + last, now)
        state = state._replace(params=params, opt_state=opt_state, best_loss=best_loss, bad_checks=bad_checks,
                               active=active, best_params=_choose(run, improved, params, state.best_params))
        probed = _probe(run, state, epoch, last, was_active & finite, epoch_value)
        count = run.reported
        events.publish(o.hooks, run.log, events.Check(
            epoch_value, o.epochs, now, {m: v[:count] for m, v in values.items()}, tuple(run.histories[:count]),
            {m: v[:count] for m, v in probed.items()}, run.vmapped))
        if not active.any():
            break
    state = state._replace(epoch=np.asarray(epoch + 1))
    done = run.done(state)
    if o.checkpoint_dir is not None and ((epoch + 1) % o.checkpoint_every == 0 or done):
        _save(run, state)
    if not state.active.any() and any(h.stopped_epoch is not None for h in run.histories[:run.reported]):
        events.publish(o.hooks, run.log, events.Stopped(epoch_value))
    return state


def _probe(run: Run, state: TrainState, epoch: int, last: int, measured: np.ndarray, epoch_value: float) -> dict:
    o = run.options
    end_of_epoch = last == run.steps or not state.active.any()
    if run.probe is None or not end_of_epoch or not (
            (epoch + 1) % o.probe_every == 0 or epoch + 1 == o.epochs or not state.active.any()):
        return {}
    as_members = (lambda v: v) if run.vmapped else (lambda v: v[None])
    probed = {name: as_members(host(v)) for name, v in run.probe(state.params).items()}
    for k in np.flatnonzero(measured):
        run.histories[k].append_probe(epoch_value, {name: float(v[k]) for name, v in probed.items()})
    return probed


def _save(run: Run, state: TrainState) -> None:
    count = run.reported
    checkpoint.save(run.options.checkpoint_dir, int(state.epoch), saved_tree(run, state), {
        "config": run.config, "histories": [h.to_dict() for h in run.histories[:count]],
        "best_loss": [None if not np.isfinite(v) else float(v) for v in state.best_loss[:count]],
        "bad_checks": state.bad_checks[:count].tolist(), "active": state.active[:count].tolist(),
        "seconds": time.perf_counter() - run.started})


def finish(run: Run, state: TrainState) -> FitResult | SweepResult:
    """The result of a run driven by :func:`run_epoch` (an unfinished one gives the result so
    far): :class:`FitResult` after ``start``, :class:`SweepResult` (padding members dropped,
    arrays on the host) after ``start_sweep``."""
    if run.options.checkpoint_dir is not None:
        checkpoint.wait(run.options.checkpoint_dir)  # the last save lands before the result is handed over
    if not run.vmapped:
        return FitResult(state.params, state.opt_state, state.best_params, run.histories[0])
    count = run.reported
    unpad = lambda tree: jax.tree.map(lambda leaf: host(leaf)[:count], tree)  # noqa: E731
    return SweepResult(unpad(state.params), unpad(state.opt_state), unpad(state.best_params),
                       list(run.histories[:count]))


def fit(
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
) -> FitResult:
    """Trains one model.

    Args:
      model: the network, ``mlp.model(sizes, activation=...)`` or ``cnn.model(...)``.
      params: initial parameters (never modified: nothing is donated).
      optimizer: an optax transformation, ideally :func:`jaxnet.train.make_optimizer`.
      train_data: ``(x, y)``; x (n, …); y (n,) integer labels, (n, outputs) float targets,
        or 0/1 for a binary loss.
      val, test: optional ``(x, y)`` evaluated at every check.
      seed: the data-order seed.
      l2: λ of the penalty λ Σ‖Wˡ‖², traced (a new value compiles nothing); None leaves the
        penalty out of the program.
      opt_state: resume from this optimizer state instead of ``optimizer.init(params)``.
      **options: the fields of :class:`~jaxnet.engine.Options`: ``epochs`` and ``batch_size``
        (required), ``loss``, ``patience``, ``checkpoint_dir``, ``hooks``, …
    Returns:
      :class:`FitResult` ``(params, opt_state, best_params, history)``.
    """
    run, state = start(model, params, optimizer, train_data, val=val, test=test, seed=seed, l2=l2,
                       opt_state=opt_state, **options)
    return _train(run, state)


def sweep(
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
) -> SweepResult:
    """Trains K members as one vmapped, compiled program; member k equals
    ``fit(model, model.init(PRNGKey(init_seed[k])), …, seed=data_seed[k])`` with its own
    learning rate, λ, labels and training subset.

    Args:
      model: the network; each member starts from ``model.init(PRNGKey(init_seed[k]))``.
      optimizer: from :func:`jaxnet.train.make_optimizer` (its learning rate is set per member).
      train_data: ``(x, y)`` shared by all members (x stays on the device once).
      learning_rate, l2, init_seed, data_seed: one value per member (None: the optimizer's
        learning rate, no penalty, seed 0). Their lengths set K.
      labels: (K, n) training labels per member (label-noise studies).
      indices: (K, m) indices into ``train_data`` per member (training-subset studies).
      params: one set of initial parameters shared by every member (instead of ``init_seed``).
      val, test: as :func:`fit`.
      **options: the fields of :class:`~jaxnet.engine.Options`; ``devices`` is where the
        member axis is sharded (default every device of every process), and ``probe`` is
        given one member's parameters.
    Returns:
      :class:`SweepResult` with member-stacked parameters and one History per member.
    """
    run, state = start_sweep(model, optimizer, train_data, learning_rate=learning_rate, l2=l2, init_seed=init_seed,
                             data_seed=data_seed, labels=labels, indices=indices, params=params, val=val, test=test,
                             **options)
    return _train(run, state)


def _train(run: Run, state: TrainState) -> FitResult | SweepResult:
    """Epochs until done; on any way out (a crash, Ctrl-C) the save in flight lands first."""
    try:
        while not run.done(state):
            state = run_epoch(run, state)
    finally:
        if run.options.checkpoint_dir is not None:
            checkpoint.wait(run.options.checkpoint_dir)
    return finish(run, state)
