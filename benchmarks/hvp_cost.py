"""What curvature costs: one Hessian-vector product against one gradient at W1 shapes
(784-128-64-10 ReLU, batch 128, float32), by XLA's FLOP count of each compiled program and by
interleaved wall-clock rounds (median of the within-round ratios).

    python -m benchmarks.hvp_cost [--rounds 7]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import jax

from jaxnet import diagnostics, losses, mlp

LAYERS = [784, 128, 64, 10]
BATCH = 128


def programs() -> tuple[Callable, Callable, tuple, tuple]:
    """The jitted gradient and HVP programs and their arguments."""
    params = mlp.init(jax.random.key(0), LAYERS)
    tangent = mlp.init(jax.random.key(3), LAYERS)
    x = jax.random.normal(jax.random.key(1), (BATCH, LAYERS[0]))
    y = jax.random.randint(jax.random.key(2), (BATCH,), 0, LAYERS[-1])
    kw = dict(activation=mlp.RELU, loss=losses.SOFTMAX_CROSS_ENTROPY)
    grad = jax.jit(lambda p: jax.grad(diagnostics.objective)(p, x, y, **kw))
    hvp = jax.jit(lambda p, t: diagnostics.hvp(p, t, x, y, **kw))
    return grad, hvp, (params,), (params, tangent)


def flops(function: Callable, *args: Any) -> float:
    """XLA's FLOP count of ``function``'s compiled program."""
    analysis = function.lower(*args).compile().cost_analysis()
    return float((analysis[0] if isinstance(analysis, (list, tuple)) else analysis)["flops"])


def seconds(function: Callable, *args: Any, reps: int) -> float:
    jax.block_until_ready(function(*args))
    start = time.perf_counter()
    for _ in range(reps):
        out = function(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / reps


def measure(rounds: int = 7, reps: int = 200) -> dict[str, float]:
    """FLOPs of both programs, median seconds, and the median within-round HVP / gradient ratio."""
    grad, hvp, grad_args, hvp_args = programs()
    times = [(seconds(grad, *grad_args, reps=reps), seconds(hvp, *hvp_args, reps=reps)) for _ in range(rounds)]
    return {"grad_flops": flops(grad, *grad_args), "hvp_flops": flops(hvp, *hvp_args),
            "grad_seconds": statistics.median(g for g, _ in times), "hvp_seconds": statistics.median(h for _, h in times),
            "ratio": statistics.median(h / g for g, h in times)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hvp_cost", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default: %(default)s)")
    args = parser.parse_args(argv)
    m = measure(max(1, args.rounds))
    print(f"FLOPs: gradient {m['grad_flops']:.3e}, HVP {m['hvp_flops']:.3e} ({m['hvp_flops'] / m['grad_flops']:.2f}×)")
    print(f"time: gradient {m['grad_seconds'] * 1e3:.3f} ms, HVP {m['hvp_seconds'] * 1e3:.3f} ms, "
          f"median ratio {m['ratio']:.2f}× (target ≤ 3×)")


if __name__ == "__main__":
    main()
