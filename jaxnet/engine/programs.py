"""The compiled core: an epoch's order, a training segment (``lax.scan`` over minibatches),
evaluation and a per-member select, for one member or vmapped over a sweep's members.

Programs are cached by *structure* (the model's apply, the loss, the optimizer's update
function, batch size, shuffling, penalty or not), never by hyperparameter values: the
learning rate, momentum (in the optimizer state) and λ (``l2``) are traced arguments, so a
run with new values reuses the programs of an earlier one.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnet import evaluate, losses, train
from jaxnet.mlp import Model


class Programs(NamedTuple):
    order: Callable  # (data_key, epoch, indices) → (steps, batch) indices of the epoch
    segment: Callable  # (params, opt_state, l2, x, y, order, first, length=) → (params, opt_state, finite)
    evaluate_train: Callable  # (params, x, y, chunks, weights) → (mean loss, accuracy)
    evaluate_shared: Callable
    select: Callable  # (condition, new, old) → new where condition else old, per member


class Structure(NamedTuple):
    """What selects a program; values never do."""

    apply: Callable
    activation: Any
    loss: losses.Loss
    update: Callable  # the optimizer's update function
    grad_source: str
    batch_size: int
    shuffle: bool
    penalty: bool  # False: no λ term at all (a run without l2)
    vmapped: bool
    batch_sharding: Any = None  # data parallel: how each minibatch is split


def _member_functions(s: Structure):
    """The pure functions of one member."""
    model = Model(None, s.apply, s.activation)
    step = train.make_train_step(model, optax.GradientTransformation(None, s.update), loss=s.loss,
                                 grad_source=s.grad_source, penalty=s.penalty, jit=False)

    def order(data_key, epoch, indices):
        n = indices.shape[0]
        steps = n // s.batch_size
        if s.shuffle:
            indices = indices[jax.random.permutation(jax.random.fold_in(data_key, epoch), n)]
        return indices[: steps * s.batch_size].reshape(steps, s.batch_size)

    def segment(params, opt_state, l2, x, y, epoch_order, first, length):
        def body(carry, batch_indices):
            batch_x, batch_y = x[batch_indices], y[batch_indices]
            if s.batch_sharding is not None:  # data parallel: each device takes a slice of the batch
                batch_x = jax.lax.with_sharding_constraint(batch_x, s.batch_sharding)
                batch_y = jax.lax.with_sharding_constraint(batch_y, s.batch_sharding)
            params, opt_state, step_metrics = step(*carry, train.Batch(batch_x, batch_y), l2)
            return (params, opt_state), step_metrics["loss"]

        batches = jax.lax.dynamic_slice_in_dim(epoch_order, first, length)
        (params, opt_state), batch_losses = jax.lax.scan(body, (params, opt_state), batches)
        finite = jnp.all(jnp.isfinite(batch_losses)) & jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(params)]))
        return params, opt_state, finite

    def evaluation(params, x, y, chunks, weights):
        return evaluate.mean_loss_and_accuracy(model, s.loss, params, x, y, chunks, weights)

    def select(condition, new, old):
        return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)

    return order, segment, evaluation, select


@functools.lru_cache(maxsize=64)
def compiled(s: Structure) -> Programs:
    """The jitted programs of one structure, built once per process."""
    order, segment, evaluation, select = _member_functions(s)
    if not s.vmapped:
        evaluate_train = evaluate_shared = evaluation
    else:
        order = jax.vmap(order, in_axes=(0, None, 0))
        member_segment = segment

        def segment(params, opt_state, l2, x, y, epoch_order, first, length):
            return jax.vmap(functools.partial(member_segment, length=length), in_axes=(0, 0, 0, None, 0, 0, None))(
                params, opt_state, l2, x, y, epoch_order, first)

        evaluate_train = jax.vmap(evaluation, in_axes=(0, None, 0, 0, 0))
        evaluate_shared = jax.vmap(evaluation, in_axes=(0, None, None, None, None))
        select = jax.vmap(select)
    # nothing is donated: a diverged or stopped run keeps its previous state by reference
    return Programs(jax.jit(order), jax.jit(segment, static_argnames="length"), jax.jit(evaluate_train),
                    jax.jit(evaluate_shared), jax.jit(select))


@functools.lru_cache(maxsize=64)
def probe(fn: Callable, vmapped: bool) -> Callable:
    """A probe jitted once (vmapped over the member axis in a sweep)."""
    return jax.jit(jax.vmap(fn) if vmapped else fn)


@functools.lru_cache(maxsize=16)
def first_members(count: int) -> Callable[[Any], Any]:
    """``tree ↦ every leaf[:count]`` as one program (slicing leaf by leaf dispatched one
    gather per leaf per epoch: tens of milliseconds an epoch for a checkpointed sweep)."""
    return jax.jit(lambda tree: jax.tree.map(lambda leaf: leaf[:count], tree))
