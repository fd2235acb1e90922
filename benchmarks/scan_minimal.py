"""The leanest correct training epoch: the floor that :func:`jaxnet.engine.run_epoch` is held to.

A plain pytree MLP, optax SGD with momentum, ``lax.scan`` over the minibatches of a
permutation drawn inside the program, jitted, the data passed as arguments, no evaluation:

    epoch = make_epoch(optax.sgd(0.01, momentum=0.9), batch_size=128)
    params, opt_state = epoch(params, opt_state, x, y, key)

``python -m benchmarks.scan_minimal`` times it against the engine's epoch (A/B rounds in one
process; see ``benchmarks/README.md``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def init(key, sizes):
    """A list of ``{"w": (m, n), "b": (n,)}``, uniform ±1/√m (PyTorch's ``nn.Linear``)."""
    keys = jax.random.split(key, len(sizes) - 1)
    return [{"w": jax.random.uniform(k, (m, n), minval=-m ** -0.5, maxval=m ** -0.5), "b": jnp.zeros(n)}
            for k, m, n in zip(keys, sizes[:-1], sizes[1:])]


def apply(params, x, hidden=jax.nn.relu):
    for layer in params[:-1]:
        x = hidden(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def softmax_ce(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def sigmoid_ce(logits, y):  # summed over the outputs, averaged over the batch
    return optax.sigmoid_binary_cross_entropy(logits, jax.nn.one_hot(y, logits.shape[-1])).sum(-1).mean()


def make_epoch(optimizer: optax.GradientTransformation, batch_size: int, hidden=jax.nn.relu, loss=softmax_ce):
    """``epoch(params, opt_state, x, y, key) → (params, opt_state)``, one jitted program."""
    def loss_fn(params, x, y):
        return loss(apply(params, x, hidden), y)

    @jax.jit
    def epoch(params, opt_state, x, y, key):
        steps = x.shape[0] // batch_size
        order = jax.random.permutation(key, x.shape[0])[: steps * batch_size].reshape(steps, batch_size)

        def body(carry, batch):
            params, opt_state = carry
            grads = jax.grad(loss_fn)(params, x[batch], y[batch])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        return jax.lax.scan(body, (params, opt_state), order)[0]

    return epoch


# --- the A/B comparison: python -m benchmarks.scan_minimal [--rounds 7] [--workloads W1,W2,S8] --------


def main(argv=None) -> dict:
    """Times the minimal epoch against :func:`jaxnet.engine.run_epoch` (a ``fit`` epoch with
    ``eval_train=False``, no validation set, ``log=None``) and an 8-member sweep epoch, in
    interleaved rounds in one process; ratios are taken within a round, then their median."""
    import argparse
    import json
    import os
    import statistics
    import time

    import numpy as np

    from jaxnet import data, engine, losses, mlp, train

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--workloads", default="W1,W2,S8")
    p.add_argument("--manual-dir", default=os.environ.get("JAXNET_MANUAL_DIR", "../shared/data/mnist"))
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    mnist = data.load("mnist", manual_dir=args.manual_dir)
    x = jnp.asarray(data.normalize(data.scale(data.flatten(mnist.x_train)), 0.5, 0.5))
    y = jnp.asarray(mnist.y_train)
    specs = {"W1": ([784, 128, 64, 10], mlp.RELU, losses.SOFTMAX_CROSS_ENTROPY, jax.nn.relu, softmax_ce),
             "W2": ([784, 20, 10], mlp.SIGMOID, losses.SIGMOID_CROSS_ENTROPY, jax.nn.sigmoid, sigmoid_ce)}
    workloads = args.workloads.split(",")

    def minimal(name):
        sizes, _, _, hidden, loss = specs[name]
        optimizer = optax.sgd(0.01, momentum=0.9)
        params = mlp.init(jax.random.PRNGKey(0), sizes, scheme="uniform")
        opt_state, epoch, e = optimizer.init(params), make_epoch(optimizer, 128, hidden, loss), 0
        while True:
            params, opt_state = jax.block_until_ready(epoch(params, opt_state, x, y, jax.random.PRNGKey(e)))
            e += 1
            yield

    def fit(name):
        sizes, activation, loss, _, _ = specs[name]
        model = mlp.model(sizes, activation=activation, scheme="uniform")
        run, state = engine.start(model, model.init(jax.random.PRNGKey(0)),
                                  train.make_optimizer("momentum", learning_rate=0.01, momentum=0.9), (x, y),
                                  epochs=10 ** 6, batch_size=128, loss=loss, eval_train=False, log=None)
        while True:
            state = engine.run_epoch(run, state)
            yield

    def sweep8():
        run, state = engine.start_sweep(mlp.model(specs["W1"][0], scheme="uniform"),
                                        train.make_optimizer("momentum", learning_rate=0.01, momentum=0.9), (x, y),
                                        learning_rate=list(np.geomspace(0.002, 0.05, 8)), init_seed=list(range(8)),
                                        data_seed=list(range(8)), epochs=10 ** 6, batch_size=128, eval_train=False,
                                        log=None)
        while True:
            state = engine.run_epoch(run, state)
            yield

    runs = {}
    for name in workloads:
        if name == "S8":
            runs.setdefault("W1 fit", fit("W1"))
            runs["S8 sweep"] = sweep8()
        else:
            runs[f"{name} minimal"], runs[f"{name} fit"] = minimal(name), fit(name)
    for run in runs.values():
        next(run)  # compilation
    wall = {k: [] for k in runs}
    cpu = {k: [] for k in runs}
    for _ in range(args.rounds):
        for key, run in runs.items():
            t, c = time.perf_counter(), time.process_time()
            next(run)
            wall[key].append(time.perf_counter() - t)
            cpu[key].append(time.process_time() - c)
    report = {"date": time.strftime("%Y-%m-%d"), "rounds": args.rounds, "devices": jax.device_count(),
              "load_average": os.getloadavg(),
              "seconds": {k: statistics.median(v) for k, v in wall.items()},
              "cpu_seconds": {k: statistics.median(v) for k, v in cpu.items()}, "per_round": wall, "ratios": {}}
    pairs = [(f"{n} fit / minimal", f"{n} fit", f"{n} minimal", 1) for n in workloads if n != "S8"]
    pairs += [("S8 per member / W1 fit", "S8 sweep", "W1 fit", 8)] if "S8" in workloads else []
    for label, a, b, divide in pairs:
        ratios = [(u / divide) / v for u, v in zip(wall[a], wall[b])]
        cpu_ratios = [(u / divide) / v for u, v in zip(cpu[a], cpu[b])]
        report["ratios"][label] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
                                   "cpu_median": statistics.median(cpu_ratios)}
    for key in runs:
        print(f"{key:12s} {1e3 * report['seconds'][key]:8.1f} ms/epoch  (CPU {1e3 * report['cpu_seconds'][key]:8.1f} ms)")
    for label, r in report["ratios"].items():
        print(f"{label:24s} {r['median']:.3f} [{r['min']:.3f}–{r['max']:.3f}]  (CPU-time ratio {r['cpu_median']:.3f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
