"""Loss functions: pure, averaged over the batch, numerically stable.

Each loss is written on the quantity its name says (logits, log-probabilities or outputs).
Each is also a :class:`Loss` *value* (e.g. :data:`SOFTMAX_CROSS_ENTROPY`): its function of the
network's logits beside its hand-derived output delta, which is what training and
:mod:`jaxnet.backprop` use.

Conventions, compared with optax:
  * ``optax.l2_loss`` is ½·(prediction − target)²; :func:`mse` here is the plain squared
    error summed over outputs (no ½), averaged over the batch.
  * ``optax.add_decayed_weights(wd)`` adds ``wd·w`` to the gradient, the gradient of
    (wd/2)‖w‖². Our :func:`l2_penalty` is λ‖w‖², whose gradient is 2λw: it equals
    ``add_decayed_weights(2λ)`` on the weight matrices.
  * PyTorch's ``MSELoss`` and ``KLDivLoss`` default to ``reduction="mean"``, which also
    divides by the number of classes; here every loss sums over outputs and averages over
    the batch (PyTorch's ``reduction="batchmean"``).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

Array = jax.Array


def _nonempty(name: str, predictions: Array) -> None:
    """ValueError for an empty batch (its mean would be a NaN that looks like a divergence)."""
    if jnp.ndim(predictions) == 0 or jnp.shape(predictions)[0] == 0:
        raise ValueError(f"{name} got an empty batch (shape {tuple(jnp.shape(predictions))}); give at least one "
                         "example")


def _same_shape(name: str, predictions: Array, targets: Array) -> None:
    """ValueError unless the targets have the predictions' shape (NumPy would broadcast
    integer labels of shape (B,) against (B, B) logits without a word), for a non-empty batch."""
    _nonempty(name, predictions)
    if jnp.shape(targets) != jnp.shape(predictions):
        raise ValueError(
            f"{name} takes targets of shape {tuple(jnp.shape(predictions))} like its input, got "
            f"{tuple(jnp.shape(targets))}; for integer labels call a Loss value (e.g. losses.SOFTMAX_CROSS_ENTROPY(logits, labels)) or use jax.nn.one_hot")


def _check_label_range(name: str, labels: Array, low: float, high: float, closed: bool) -> None:
    """ValueError if concrete ``labels`` fall outside [low, high) ([low, high] if ``closed``);
    traced labels (under jit, vmap or grad) are left alone, so the losses stay jittable."""
    if isinstance(labels, jax.core.Tracer):
        return
    values = np.asarray(labels)
    if values.size == 0:
        return
    # NumPy, not jnp: under an outer jit a concrete (closed-over) array would give traced
    # jnp.min/max, and float() of those raises a ConcretizationTypeError.
    smallest, largest = values.min(), values.max()
    if not (np.isfinite(smallest) and np.isfinite(largest)) or smallest < low or (
            largest > high if closed else largest >= high):
        interval = f"[{low:g}, {high:g}]" if closed else f"[{low:g}, {high:g})"
        raise ValueError(f"{name}: labels must lie in {interval}; found values from {smallest} to {largest}")


def softmax_cross_entropy(logits: Array, onehot: Array) -> Array:
    """−Σₖ yₖ ln softmax(z)ₖ, averaged over the batch (``optax.softmax_cross_entropy``).

    ``onehot`` has the logits' shape (one-hot or soft targets); ValueError otherwise."""
    _same_shape("softmax_cross_entropy", logits, onehot)
    return jnp.mean(optax.softmax_cross_entropy(logits, onehot))


def sigmoid_cross_entropy(logits: Array, targets: Array) -> Array:
    """The multi-label loss −Σₖ yₖ ln σ(zₖ) + (1−yₖ) ln(1−σ(zₖ)), summed over outputs and
    averaged over the batch (built on ``optax.sigmoid_binary_cross_entropy``, which uses
    log-sigmoid, so logits of ±1e4 stay finite)."""
    _same_shape("sigmoid_cross_entropy", logits, targets)
    return jnp.mean(jnp.sum(optax.sigmoid_binary_cross_entropy(logits, targets), axis=-1))


def nll(log_probs: Array, labels: Array) -> Array:
    """Negative log-likelihood −ln pᵧ of integer ``labels`` under ``log_probs`` (PyTorch's
    ``NLLLoss`` on a ``log_softmax`` output), averaged over the batch.

    ``labels``: integers of shape (batch,) in [0, classes). Concrete labels out of range
    raise ValueError (a label of −1 would otherwise pick the last class, one of `classes`
    a NaN); traced ones are not checked.
    """
    if log_probs.ndim != 2 or jnp.ndim(labels) != 1 or jnp.shape(labels)[0] != log_probs.shape[0]:
        raise ValueError(f"nll takes log_probs of shape (batch, classes) and labels of shape (batch,), got "
                         f"{tuple(log_probs.shape)} and {tuple(jnp.shape(labels))}")
    _nonempty("nll", log_probs)
    if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
        raise ValueError(f"nll takes integer class labels, got {jnp.result_type(labels)}; for one-hot or soft "
                         "targets use kl_divergence or softmax_cross_entropy")
    _check_label_range("nll", labels, 0, log_probs.shape[-1], closed=False)
    picked = jnp.take_along_axis(log_probs, labels[:, None].astype(jnp.int32), axis=-1)
    return -jnp.mean(picked)


def mse(outputs: Array, onehot: Array) -> Array:
    """Σₖ (oₖ − yₖ)², averaged over the batch. PyTorch's default ``MSELoss`` is this
    divided by the number of outputs; optax's ``l2_loss`` is half of it."""
    _same_shape("mse", outputs, onehot)
    return jnp.mean(jnp.sum(optax.squared_error(outputs, onehot), axis=-1))


def kl_divergence(log_probs: Array, targets: Array) -> Array:
    """KL(targets ‖ p) = Σₖ tₖ (ln tₖ − ln pₖ), averaged over the batch
    (``optax.kl_divergence``; PyTorch's ``KLDivLoss(reduction="batchmean")``). For one-hot
    targets it equals the cross-entropy."""
    _same_shape("kl_divergence", log_probs, targets)
    return jnp.mean(optax.kl_divergence(log_probs, targets))


def binary_cross_entropy(logits: Array, labels: Array) -> Array:
    """Logistic regression's −[y ln σ(z) + (1−y) ln(1−σ(z))] for one output logit per
    example (shape (batch,) or (batch, 1)) and labels in {0, 1} (or probabilities in
    [0, 1]; concrete labels outside it raise ValueError), averaged over the batch."""
    if logits.ndim not in (1, 2) or logits.size != logits.shape[0] or jnp.size(labels) != logits.shape[0]:
        raise ValueError(f"binary_cross_entropy takes one logit per example, (batch,) or (batch, 1), and "
                         f"(batch,) labels; got {tuple(logits.shape)} and {tuple(jnp.shape(labels))}")
    _nonempty("binary_cross_entropy", logits)
    _check_label_range("binary_cross_entropy", labels, 0, 1, closed=True)
    z = logits.reshape(logits.shape[0])
    return jnp.mean(optax.sigmoid_binary_cross_entropy(z, labels.astype(z.dtype)))


def l2_penalty(params, lam: Array | float) -> Array:
    """λ Σ‖Wˡ‖² over the weights only (biases are not penalized); gradient 2λWˡ.

    Weights are the leaves with two or more dimensions (MLP matrices, conv kernels), so the
    same function serves any pytree of parameters.
    """
    return lam * sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(params) if leaf.ndim >= 2)


# --- losses as values: each cost's function of the logits and its hand-derived delta ------


class Loss(NamedTuple):
    """A loss as a value (Nielsen's ``network2.py``: each cost's ``fn`` and ``delta`` side by side).

    ``fn(logits, targets)`` is the batch-mean loss and ``delta(logits, targets)`` its
    gradient δᴴ = ∂fn/∂zᴴ with respect to the logits, derived by hand (1/B included), so
    :mod:`jaxnet.backprop` needs nothing else; ``targets(y, num_outputs, dtype)`` turns
    integer labels or float targets into what ``fn`` takes. ``loss(logits, y)`` checks ``y``,
    makes the targets and applies ``fn``.
    """

    name: str
    fn: Callable[[Array, Array], Array]
    delta: Callable[[Array, Array], Array]
    targets: Callable[[Array, int, Any], Array]
    binary: bool = False  # one logit per example and labels in {0, 1}

    def __call__(self, logits: Array, y: Array) -> Array:
        check_targets(self, logits.shape, y)
        return self.fn(logits, self.targets(y, logits.shape[-1], logits.dtype))


def _onehot_targets(y: Array, num_outputs: int, dtype=jnp.float32) -> Array:
    """One-hot rows from integer labels; float targets as given."""
    if jnp.issubdtype(y.dtype, jnp.integer):
        return jax.nn.one_hot(y, num_outputs, dtype=dtype)
    return y.astype(dtype)


def _label_targets(y: Array, num_outputs: int, dtype=jnp.float32) -> Array:
    """Integer labels as given; float targets by their largest entry."""
    return y if jnp.issubdtype(y.dtype, jnp.integer) else jnp.argmax(y, axis=-1)


def _binary_targets(y: Array, num_outputs: int, dtype=jnp.float32) -> Array:
    return y.reshape(y.shape[0]).astype(dtype)


def _softmax_ce_delta(z: Array, t: Array) -> Array:
    return (jax.nn.softmax(z) - t) / z.shape[0]  # δᴴ = (ŷ − y) / B, ŷ = softmax(z)


def _sigmoid_ce_delta(z: Array, t: Array) -> Array:
    return (jax.nn.sigmoid(z) - t) / z.shape[0]  # δᴴ = (σ(z) − y) / B


def _nll_fn(z: Array, labels: Array) -> Array:
    return nll(jax.nn.log_softmax(z), labels)


def _nll_delta(z: Array, labels: Array) -> Array:
    onehot = jax.nn.one_hot(labels, z.shape[-1], dtype=z.dtype)
    return (jax.nn.softmax(z) - onehot) / z.shape[0]  # δᴴ = (softmax(z) − onehot(y)) / B


def _mse_fn(z: Array, t: Array) -> Array:
    return mse(jax.nn.softmax(z), t)


def _mse_delta(z: Array, t: Array) -> Array:
    p = jax.nn.softmax(z)
    g = 2.0 * (p - t) / z.shape[0]  # ∂L/∂ŷ = 2(ŷ − y) / B
    return p * (g - jnp.sum(g * p, axis=-1, keepdims=True))  # δᴴ = Jᵀg, J = diag(ŷ) − ŷŷᵀ


def _kl_fn(z: Array, t: Array) -> Array:
    return kl_divergence(jax.nn.log_softmax(z), t)


def _kl_delta(z: Array, t: Array) -> Array:
    p = jax.nn.softmax(z)
    return (p * jnp.sum(t, axis=-1, keepdims=True) - t) / z.shape[0]  # δᴴ = (ŷ Σₖtₖ − t) / B


def _binary_ce_delta(z: Array, labels: Array) -> Array:
    return ((jax.nn.sigmoid(z[:, 0]) - labels) / z.shape[0])[:, None]  # δ = −(y − ŷ) / B


SOFTMAX_CROSS_ENTROPY = Loss("softmax_cross_entropy", softmax_cross_entropy, _softmax_ce_delta, _onehot_targets)
SIGMOID_CROSS_ENTROPY = Loss("sigmoid_cross_entropy", sigmoid_cross_entropy, _sigmoid_ce_delta, _onehot_targets)
NLL = Loss("nll", _nll_fn, _nll_delta, _label_targets)  # on log_softmax(logits)
MSE = Loss("mse", _mse_fn, _mse_delta, _onehot_targets)  # on softmax(logits), the probabilities
KL_DIVERGENCE = Loss("kl_divergence", _kl_fn, _kl_delta, _onehot_targets)  # on log_softmax(logits)
BINARY_CROSS_ENTROPY = Loss("binary_cross_entropy", binary_cross_entropy, _binary_ce_delta, _binary_targets,
                            binary=True)
LOSSES: dict[str, Loss] = {loss.name: loss for loss in (
    SOFTMAX_CROSS_ENTROPY, SIGMOID_CROSS_ENTROPY, NLL, MSE, KL_DIVERGENCE, BINARY_CROSS_ENTROPY)}


def get(name: str) -> Loss:
    """The loss called ``name`` (a key of :data:`LOSSES`); ValueError otherwise."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {list(LOSSES)}")
    return LOSSES[name]


def check_targets(loss: Loss, logits_shape: tuple[int, ...], y: Array) -> None:
    """ValueError if ``y`` cannot be the targets of ``loss`` for logits of this shape.

    Shapes are always checked; label values only when ``y`` is concrete (not under jit).
    """
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be a losses.Loss such as losses.SOFTMAX_CROSS_ENTROPY (or losses.get(name)), "
                        f"got {loss!r}")
    batch, outputs = logits_shape
    if y.shape[0] != batch:
        raise ValueError(f"y has {y.shape[0]} rows but x has {batch}; give one target per example")
    if loss.binary:
        if outputs != 1:
            raise ValueError(
                f"{loss.name} needs a network with 1 output, this one has {outputs}; "
                "use layer_sizes [..., 1] or a multi-class loss"
            )
        if y.size != batch:
            raise ValueError(f"{loss.name} needs labels of shape ({batch},), got {tuple(y.shape)}")
        num_classes = 2
    elif jnp.issubdtype(y.dtype, jnp.integer):
        if y.ndim != 1:
            raise ValueError(f"integer labels must have shape ({batch},), got {tuple(y.shape)}")
        num_classes = outputs
    else:
        if y.shape != (batch, outputs):
            raise ValueError(
                f"float targets must have shape ({batch}, {outputs}) to match the logits, got "
                f"{tuple(y.shape)}; or pass integer labels of shape ({batch},)"
            )
        return
    if not isinstance(y, jax.core.Tracer) and y.size:
        # NumPy, not jnp: under an outer jit a concrete (closed-over) y would give traced
        # jnp.min/max, and int() of those raises a ConcretizationTypeError.
        values = np.asarray(y)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"labels must lie in [0, {num_classes}) for a network with {outputs} output(s); "
                f"found values from {low} to {high}"
            )
