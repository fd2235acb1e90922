"""Functional-autodiff diagnostics for the MLP: per-example gradients, the gradient noise
scale, Hessian-vector products and the top of the Hessian spectrum (docs/diagnostics.md).
One idea per module: ``objective``, ``gradients``, ``curvature``, ``probe``.

Every function is pure, takes the same ``params`` pytree as :mod:`jaxnet.mlp` and the same
``(x, y)`` as :mod:`jaxnet.backprop`, and is jit-compiled with its string options and
iteration counts static. The objective is always the one training minimises,

    L(θ) = (1/B) Σᵢ ℓ(f(xᵢ; θ), yᵢ) + λ Σₗ ‖Wˡ‖²,

and "per-example" means gᵢ = ∇θ [ℓ(f(xᵢ; θ), yᵢ) + λ Σₗ ‖Wˡ‖²], so that the batch
gradient is G = (1/B) Σᵢ gᵢ. The tests (tests/test_diagnostics.py) prove each quantity
against an independent reference in float64.
"""
from __future__ import annotations

from jaxnet.diagnostics.curvature import hessian_ritz_values, hvp, lanczos, top_hessian_eigenvalue
from jaxnet.diagnostics.gradients import (
    NoiseScale,
    gradient_noise_scale,
    manual_per_example_grads,
    per_example_grad_norms,
    per_example_grads,
)
from jaxnet.diagnostics.objective import objective
from jaxnet.diagnostics.probe import curvature_probe, dead_unit_fraction

__all__ = [
    "NoiseScale", "curvature_probe", "dead_unit_fraction", "gradient_noise_scale", "hessian_ritz_values", "hvp",
    "lanczos", "manual_per_example_grads", "objective", "per_example_grad_norms", "per_example_grads",
    "top_hessian_eigenvalue",
]
