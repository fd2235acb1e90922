"""How long ``jaxnet.checkpoint.save`` blocks training: the W1 network (784-128-64-10) with
momentum — params, best params, momentum, data key and epoch, the state the engine saves —
and a 100-epoch history as metadata, saved once per simulated epoch (a pause long enough for
the previous write to land, so each save's own blocking is what is timed).

    python -m benchmarks.checkpoint_save [--saves 40] [--epoch-seconds 0.2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp

from jaxnet import checkpoint, mlp


def state() -> dict[str, Any]:
    params = mlp.init(jax.random.key(0), [784, 128, 64, 10])
    return {"params": params, "best": params, "momentum": jax.tree.map(jnp.zeros_like, params),
            "data_key": jax.random.PRNGKey(1), "epoch": jnp.int32(0)}


def measure(*, saves: int, epoch_seconds: float) -> dict[str, Any]:
    """Blocking seconds of each save after the first (which pays orbax's set-up), and the steps kept."""
    tree, meta = state(), {"history": {"train_loss": [0.5] * 100, "val_accuracy": [0.9] * 100}}
    with tempfile.TemporaryDirectory() as directory:
        blocked = []
        for epoch in range(saves):
            time.sleep(epoch_seconds)
            start = time.perf_counter()
            checkpoint.save(directory, epoch, tree, meta)
            blocked.append(time.perf_counter() - start)
        checkpoint.close(directory)
        kept = checkpoint.latest_epoch(directory)
    times = blocked[1:]
    return {"saves": len(times), "median_ms": 1000 * statistics.median(times), "max_ms": 1000 * max(times),
            "newest_step": kept, "leaves": len(jax.tree.leaves(tree))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=40)
    parser.add_argument("--epoch-seconds", type=float, default=0.2)
    args = parser.parse_args(argv)
    result = measure(saves=args.saves, epoch_seconds=args.epoch_seconds)
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}))
    return result


if __name__ == "__main__":
    main()
