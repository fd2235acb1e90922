# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Backpropagation by hand, checked against autodiff
#
# One minibatch through a small sigmoid MLP, and its gradients computed twice: by the chain
# rule written out layer by layer (what `jaxnet.backprop` does), and by `jax.grad`. In float64
# the two agree to rounding (relative differences near 1e-16); a finite-difference check
# closes the loop. The derivations are
# in [docs/backprop.md](../docs/backprop.md).
#
# Notation, for a network of layers l = 1 … H with batch B:
#
# * zˡ = aˡ⁻¹ Wˡ + bˡ, aˡ = h(zˡ) (a⁰ = x; the last layer's zᴴ are the logits)
# * loss L = (1/B) Σₙ CE(softmax(zᴴₙ), yₙ) + λ Σₗ ‖Wˡ‖²
# * δˡ = ∂L/∂zˡ (a (B, nₗ) matrix; the 1/B of the batch mean is inside it)
#
# Set `JAXNET_NOTEBOOK_QUICK=1` for a smaller batch (what the test suite runs).

# %%
import os
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # float64: differences are rounding, not approximation

import jax.numpy as jnp
import numpy as np

from jaxnet import backprop, data, losses, mlp

QUICK = os.environ.get("JAXNET_NOTEBOOK_QUICK", "") not in ("", "0")
BATCH = 16 if QUICK else 64
LAYERS = [784, 32, 16, 10]
LAMBDA = 0.01  # λ of the L2 penalty
ACTIVATION = mlp.SIGMOID  # the hidden activation h, with its derivative h′


def mnist_folder() -> Path | None:
    """The MNIST .gz files: $JAXNET_MANUAL_DIR, else a shared/data/mnist beside the checkout."""
    candidates = [os.environ.get("JAXNET_MANUAL_DIR")] + [str(p / "shared" / "data" / "mnist")
                                                           for p in Path.cwd().resolve().parents]
    return next((Path(c) for c in candidates if c and (Path(c) / "train-images-idx3-ubyte.gz").exists()), None)


folder = mnist_folder()
if folder is not None:
    mnist = data.load("mnist", manual_dir=folder)
    x = jnp.asarray(data.flatten(data.scale(mnist.x_train[:BATCH])), jnp.float64)
    y = jnp.asarray(mnist.y_train[:BATCH])
    print(f"one batch of {BATCH} MNIST training images")
else:  # no MNIST at hand: random pixels work just as well for a gradient check
    x = jax.random.uniform(jax.random.PRNGKey(1), (BATCH, 784), jnp.float64)
    y = jax.random.randint(jax.random.PRNGKey(2), (BATCH,), 0, 10)
    print(f"MNIST not found; one batch of {BATCH} random images")

params = mlp.init(jax.random.PRNGKey(0), LAYERS, dtype=jnp.float64)
onehot = jax.nn.one_hot(y, 10, dtype=jnp.float64)
print("layers", LAYERS, "·", mlp.num_params(params), "parameters")

# %% [markdown]
# ## 1. Forward pass
#
# `mlp.forward` returns every layer's zˡ and aˡ; the loss is the batch mean of the
# softmax cross-entropy plus the penalty.

# %%
zs, activations = mlp.forward(params, x, activation=ACTIVATION)
logits = zs[-1]


def total_loss(params):
    return (losses.softmax_cross_entropy(mlp.apply(params, x, activation=ACTIVATION), onehot)
            + losses.l2_penalty(params, LAMBDA))


print("loss", float(total_loss(params)))
print("shapes:", [tuple(z.shape) for z in zs])

# %% [markdown]
# ## 2. The output delta: δᴴ = (ŷ − y) / B
#
# For softmax followed by cross-entropy the Jacobians telescope: ∂L/∂zᴴ = (softmax(zᴴ) − y) / B.
# Autodiff gets the same by differentiating the loss as a function of the logits. `jaxnet.losses`
# keeps this hand-derived delta beside the loss itself: `losses.SOFTMAX_CROSS_ENTROPY.delta`.

# %%
y_hat = jax.nn.softmax(logits)
delta_out = (y_hat - onehot) / BATCH  # δᴴ = (ŷ − y) / B
delta_out_autodiff = jax.grad(lambda z: losses.softmax_cross_entropy(z, onehot))(logits)


def max_rel(a, b) -> float:
    """max |a − b| / max(|b|, tiny): the largest relative difference."""
    return float(jnp.max(jnp.abs(a - b)) / jnp.maximum(jnp.max(jnp.abs(b)), 1e-300))


print("δᴴ by hand vs autodiff:                          ", max_rel(delta_out, delta_out_autodiff))
print("δᴴ by hand vs losses.SOFTMAX_CROSS_ENTROPY.delta:",
      max_rel(delta_out, losses.SOFTMAX_CROSS_ENTROPY.delta(logits, onehot)))
assert max_rel(delta_out, delta_out_autodiff) < 1e-12

# %% [markdown]
# ## 3. Hidden deltas: δˡ⁻¹ = h′(zˡ⁻¹) ⊙ (δˡ Wˡᵀ)
#
# Each delta is carried one layer back through the transposed weights and the activation's
# derivative; for the sigmoid, h′(z) = σ(z)(1 − σ(z)) = a(1 − a).
#
# To get δˡ from autodiff, add a zero offset εˡ to every zˡ and differentiate with respect to
# it: ∂L/∂εˡ at ε = 0 is exactly ∂L/∂zˡ.

# %%
hand = [delta_out]
for l in reversed(range(1, len(params))):
    a = activations[l]  # aˡ = h(zˡ) of hidden layer l (activations[0] is x)
    h_prime = a * (1 - a)  # σ′(z) = σ(z)(1 − σ(z))
    hand.insert(0, h_prime * (hand[0] @ params[l]["w"].T))  # δˡ⁻¹ = h′(zˡ⁻¹) ⊙ (δˡ Wˡᵀ)


def loss_of_offsets(offsets):
    a = x
    for l, layer in enumerate(params):
        z = a @ layer["w"] + layer["b"] + offsets[l]
        a = z if l == len(params) - 1 else jax.nn.sigmoid(z)
    return losses.softmax_cross_entropy(a, onehot)


autodiff = jax.grad(loss_of_offsets)([jnp.zeros_like(z) for z in zs])
library = backprop.deltas(params, x, y, activation=ACTIVATION).deltas
for l, (d_hand, d_auto, d_lib) in enumerate(zip(hand, autodiff, library), start=1):
    print(f"δ{l}: shape {tuple(d_hand.shape)}  vs autodiff {max_rel(d_hand, d_auto):.1e}  "
          f"vs jaxnet.backprop {max_rel(d_hand, d_lib):.1e}")
    assert max_rel(d_hand, d_auto) < 1e-10

# %% [markdown]
# ## 4. Parameter gradients: ∂L/∂Wˡ = aˡ⁻¹ᵀ δˡ + 2λWˡ, ∂L/∂bˡ = Σₙ δˡₙ
#
# The weight gradient is the outer product of each layer's input with its delta, summed over
# the batch (the 1/B is already in δ), plus the penalty's 2λW. Biases are not penalised.

# %%
hand_grads = [{"w": activations[l].T @ hand[l] + 2 * LAMBDA * params[l]["w"],  # aˡ⁻¹ᵀ δˡ + 2λWˡ
               "b": hand[l].sum(axis=0)}  # Σₙ δˡₙ
              for l in range(len(params))]
auto_grads = jax.grad(total_loss)(params)
library_grads = backprop.grads(params, x, y, activation=ACTIVATION, l2=LAMBDA)

print(f"{'param':<6} {'shape':<11} {'|grad|max':>10} {'hand vs jax.grad':>17} {'jaxnet.backprop vs jax.grad':>28}")
worst = 0.0
for l in range(len(params)):
    for name in ("w", "b"):
        h, g, lib = hand_grads[l][name], auto_grads[l][name], library_grads[l][name]
        worst = max(worst, max_rel(h, g), max_rel(lib, g))
        print(f"{name}{l + 1:<5} {str(tuple(g.shape)):<11} {float(jnp.max(jnp.abs(g))):>10.2e} "
              f"{max_rel(h, g):>17.1e} {max_rel(lib, g):>28.1e}")
print("largest relative difference:", f"{worst:.1e}")
assert worst < 1e-10

# %% [markdown]
# ## 5. And both against finite differences
#
# A central difference (L(θ + h) − L(θ − h)) / 2h along a few random coordinates: an
# independent check that needs no calculus at all (its error is O(h²), so ~1e-9 here).

# %%
flat, unravel = jax.flatten_util.ravel_pytree(params)
grad_flat = jax.flatten_util.ravel_pytree(hand_grads)[0]
rng = np.random.default_rng(0)
step = 1e-5
for i in rng.choice(flat.size, size=4 if QUICK else 8, replace=False):
    e = jnp.zeros_like(flat).at[i].set(step)
    numeric = (total_loss(unravel(flat + e)) - total_loss(unravel(flat - e))) / (2 * step)
    print(f"θ[{i:>6}]  hand {float(grad_flat[i]): .10f}  finite difference {float(numeric): .10f}")
    assert abs(float(numeric) - float(grad_flat[i])) < 1e-7 + 1e-5 * abs(float(numeric))

# %% [markdown]
# The test suite (`tests/test_backprop.py`) repeats this for every hidden activation, depth,
# loss and λ — 108 networks — and also checks training with either gradient source ends at
# the same float64 parameters.
