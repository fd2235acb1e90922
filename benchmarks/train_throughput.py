"""Training throughput: jaxnet's engine against the leanest JAX epoch, a plain jitted-step
loop, PyTorch (eager and ``torch.compile``) and NumPy.

    python -m benchmarks.train_throughput --json bench.json --markdown bench.md
    python -m benchmarks.train_throughput --quick          # every variant, small data
    python -m benchmarks.tables bench.json                 # the README tables from the JSON

Every (workload, variant) pair is a *run* that trains for 1 + ``--rounds`` epochs. All runs
do their first epoch (warm-up: compilation, one-time setup) one after the other, then the
timed epochs are interleaved in rounds, A B C … A B C …, so that machine drift hits every
variant alike. Each round also re-measures the machine's float32 matmul rate (a 2048² square
product and the network's own matmul shapes). Ratios (speedups, fractions of peak) are
computed within a round, then summarised by their median (and min–max) over rounds.

An epoch is one pass over the training set at batch 128 (60,000 MNIST images: 468 steps,
the remainder dropped), wall-clock, with every result ready (``jax.block_until_ready``,
synchronous PyTorch/NumPy). ``jaxnet_fit`` times :func:`jaxnet.engine.run_epoch` (the epoch
:func:`jaxnet.engine.fit` runs, here with ``eval_train=False``, ``log=None`` and no
validation set); ``jax_scan_minimal`` times :mod:`benchmarks.scan_minimal`'s epoch.

FLOPs are the matrix-product FLOPs a step executes, per example: the forward product
2·Wₗ for every layer, the weight gradient 2·Wₗ for every layer and the input gradient 2·Wₗ
for every layer but the first (nobody needs the gradient of the input), Wₗ = fan_in × fan_out.
Biases, activations, the loss and the optimizer are not counted. The older, nominal
6·W·N count (which includes the first layer's input gradient) is kept in the JSON as
``gflop_per_epoch_nominal_6wn`` only.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import peers, scan_minimal
from jaxnet import cnn, data, engine, losses, mlp, train

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("JAXNET_SHARED", REPO.parent / "shared"))
BATCH = 128
MOMENTUM = 0.9
CNN_CHANNELS, CNN_DENSE = (16, 32), 128

FIT_VARIANTS = ("jaxnet_fit", "jaxnet_fit_manual", "jax_scan_minimal", "jax_loop", "torch_idiomatic",
                "torch_tuned", "torch_compile", "numpy")
SWEEP_VARIANTS = ("jaxnet_sweep",)
VARIANTS = FIT_VARIANTS + SWEEP_VARIANTS
TORCH_VARIANTS = ("torch_idiomatic", "torch_tuned", "torch_compile")

_W1 = dict(sizes=(784, 128, 64, 10), hidden="relu", loss="softmax_cross_entropy", learning_rate=0.01)
WORKLOADS: dict[str, dict[str, Any]] = {
    "W1": dict(_W1, variants=FIT_VARIANTS,
               title="784-128-64-10 ReLU, softmax cross-entropy (the PyTorch-tutorial network)"),
    "W2": dict(sizes=(784, 20, 10), hidden="sigmoid", loss="sigmoid_cross_entropy", learning_rate=0.1,
               variants=FIT_VARIANTS, title="784-20-10, sigmoid hidden and outputs, summed sigmoid cross-entropy"),
    "W3": dict(sizes=(784, 1024, 1024, 10), hidden="relu", loss="softmax_cross_entropy", learning_rate=0.01,
               variants=FIT_VARIANTS, title="784-1024-1024-10 ReLU (compute-bound)"),
    "S8": dict(_W1, variants=SWEEP_VARIANTS, members=8,
               title="W1 as one sweep of 8 members (learning rates, seeds) in one program"),
    "S64": dict(_W1, variants=SWEEP_VARIANTS, members=64,
                title="W1 as one sweep of 64 members in one program (a GPU target; default on GPUs only)"),
    "C1": dict(sizes=None, hidden="relu", loss="softmax_cross_entropy", learning_rate=0.01, model="cnn",
               variants=("jaxnet_fit",),
               title=f"jaxnet.cnn {cnn.describe(CNN_CHANNELS, CNN_DENSE)} (a GPU target; default on GPUs only)"),
    # Nielsen's network2.py setting (experiments.nielsen): plain SGD at batch 10, per step and per member of the
    # study's 45-member more-data sweep; opt-in (--workloads N1)
    "N1": dict(sizes=(784, 30, 10), hidden="sigmoid", loss="sigmoid_cross_entropy", learning_rate=0.5, momentum=0.0,
               batch_size=10, sweep_members=45,
               variants=("jaxnet_fit", "jaxnet_sweep", "numpy", "torch_idiomatic", "torch_tuned"),
               title="784-30-10 sigmoid, summed sigmoid cross-entropy, plain SGD η = 0.5 at batch 10 (Nielsen's "
                     "network2 setting); jaxnet_sweep: 45 members in one program (the nielsen study's more-data row)"),
}
CPU_WORKLOADS = ("W1", "W2", "W3", "S8")
GPU_WORKLOADS = CPU_WORKLOADS + ("S64", "C1")
VARIANT_TITLES = {
    "jaxnet_fit": "jaxnet `engine.run_epoch` (the epoch of `fit`), autodiff gradients",
    "jaxnet_fit_manual": "the same, hand-derived gradients (`grad_source=\"manual\"`)",
    "jax_scan_minimal": "`benchmarks/scan_minimal.py`: the leanest correct JAX epoch (one jitted `lax.scan`)",
    "jax_loop": "plain JAX: a jitted step fed NumPy batches from a Python loop",
    "torch_idiomatic": "PyTorch eager, `DataLoader(shuffle=True)`",
    "torch_tuned": "PyTorch eager, pre-shuffled tensors sliced per step, fused SGD",
    "torch_compile": "the tuned PyTorch loop with `torch.compile` (model + loss, and the optimizer step)",
    "numpy": "NumPy float32, hand-written backprop",
    "jaxnet_sweep": "jaxnet `sweep`: every member vmapped in one program",
}
# quick mode: training examples per epoch (steps × 128) per workload, and a test subset
QUICK_TRAIN = {"W1": 50 * BATCH, "W2": 50 * BATCH, "W3": 10 * BATCH, "S8": 50 * BATCH, "S64": 10 * BATCH,
               "C1": 10 * BATCH, "N1": 50 * BATCH}
QUICK_TEST = 2000
SANE_ACCURACY = 0.5  # after the quick mode's training, every variant must beat this on MNIST
HIDDEN = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid}
SCAN_MINIMAL_LOSS = {"softmax_cross_entropy": scan_minimal.softmax_ce, "sigmoid_cross_entropy": scan_minimal.sigmoid_ce}


# --- helpers ------------------------------------------------------------------------------


def members_of(workload: str) -> int:
    return WORKLOADS[workload].get("members", 1)


def batch_of(workload: str) -> int:
    """The workload's mini-batch size (every workload but N1: ``BATCH``)."""
    return WORKLOADS[workload].get("batch_size", BATCH)


def sweep_members_of(workload: str) -> int:
    """Members of the workload's ``jaxnet_sweep`` variant: ``sweep_members`` where a workload also has single-model
    variants (N1), else its ``members``."""
    return WORKLOADS[workload].get("sweep_members") or members_of(workload)


def sweep_learning_rates(members: int) -> tuple[float, ...]:
    return tuple(float(v) for v in np.geomspace(0.002, 0.05, members).round(4))


def weight_count(sizes) -> int:
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def executed_flops_per_example(sizes) -> float:
    """Matrix-product FLOPs of one training example: forward 2·Wₗ and weight gradient 2·Wₗ
    for every layer, input gradient 2·Wₗ for every layer but the first."""
    weights = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 4.0 * sum(weights) + 2.0 * sum(weights[1:])


def epoch_flops(sizes, examples: int, members: int = 1) -> float:
    """Executed matrix-product FLOPs of one epoch (see the module docstring)."""
    return executed_flops_per_example(sizes) * examples * members


def summary(values) -> dict[str, float]:
    values = [float(v) for v in values]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def mlp_accuracy(params, test, hidden: str) -> float:
    logits = mlp.apply(params, jnp.asarray(test[0]), activation=mlp.activation(hidden))
    return float(jnp.mean(jnp.argmax(logits, axis=-1) == jnp.asarray(test[1])))


def mlp_model(sizes, hidden: str) -> mlp.Model:
    """The workload's MLP: ``hidden`` activation, U(±1/√fan_in) init (PyTorch's ``nn.Linear``)."""
    return mlp.model(sizes, activation=mlp.activation(hidden), scheme="uniform")


# --- the JAX variants ---------------------------------------------------------------------


def _optimizer(learning_rate: float, momentum: float):
    """SGD with heavy-ball momentum, or plain SGD when ``momentum`` is 0 (N1, as the book)."""
    if momentum == 0:
        return train.make_optimizer("sgd", learning_rate=learning_rate)
    return train.make_optimizer("momentum", learning_rate=learning_rate, momentum=momentum)


def jaxnet_fit_epochs(x, y, test, *, sizes, hidden, loss, learning_rate, epochs, seed, grad_source="autodiff",
                      model="mlp", batch_size=BATCH, momentum=MOMENTUM) -> Iterator[None]:
    """``engine.start`` once (untimed), then one ``engine.run_epoch`` per yielded epoch."""
    network = cnn.model(CNN_CHANNELS, CNN_DENSE) if model == "cnn" else mlp_model(sizes, hidden)
    params = network.init(jax.random.PRNGKey(seed))
    optimizer = _optimizer(learning_rate, momentum)
    run, state = engine.start(network, params, optimizer, (x, y), seed=seed, epochs=epochs, batch_size=batch_size,
                              loss=losses.get(loss), grad_source=grad_source, eval_train=False, log=None)
    for _ in range(epochs):
        state = engine.run_epoch(run, state)
        jax.block_until_ready(state.params)
        yield
    params = state.params
    if model == "cnn":
        logits = jnp.concatenate([network.apply(params, jnp.asarray(test[0][i:i + 2000]))
                                  for i in range(0, len(test[0]), 2000)])
        return float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(test[1])))
    return mlp_accuracy(params, test, hidden)


def jaxnet_sweep_epochs(x, y, test, *, sizes, hidden, loss, learning_rate, epochs, seed,
                        members: int, batch_size=BATCH, momentum=MOMENTUM,
                        shared_rate: bool = False) -> Iterator[None]:
    """``shared_rate``: every member at ``learning_rate`` (N1: seeds only, as the study's sweeps); else each member
    its own rate from :func:`sweep_learning_rates`."""
    optimizer = _optimizer(learning_rate if shared_rate else 0.01, momentum)
    seeds = [seed + k for k in range(members)]
    rates = [learning_rate] * members if shared_rate else list(sweep_learning_rates(members))
    run, state = engine.start_sweep(mlp_model(sizes, hidden), optimizer, (x, y),
                                    learning_rate=rates, init_seed=seeds,
                                    data_seed=seeds, epochs=epochs, batch_size=batch_size, loss=losses.get(loss),
                                    eval_train=False, log=None)
    for _ in range(epochs):
        state = engine.run_epoch(run, state)
        jax.block_until_ready(state.params)
        yield
    params = state.params
    return [mlp_accuracy(jax.tree.map(lambda leaf: leaf[k], params), test, hidden) for k in range(members)]


def scan_minimal_epochs(x, y, test, *, sizes, hidden, loss, learning_rate, epochs, seed) -> Iterator[None]:
    """``benchmarks/scan_minimal.py``: one jitted ``lax.scan`` epoch, optax SGD with momentum."""
    params = scan_minimal.init(jax.random.PRNGKey(seed), sizes)
    optimizer = optax.sgd(learning_rate, momentum=MOMENTUM)
    opt_state = optimizer.init(params)
    epoch_fn = scan_minimal.make_epoch(optimizer, BATCH, hidden=HIDDEN[hidden], loss=SCAN_MINIMAL_LOSS[loss])
    key = jax.random.PRNGKey(seed)
    for epoch in range(epochs):
        params, opt_state = epoch_fn(params, opt_state, x, y, jax.random.fold_in(key, epoch))
        jax.block_until_ready(params)
        yield
    logits = scan_minimal.apply(params, jnp.asarray(test[0]), HIDDEN[hidden])
    return float(jnp.mean(jnp.argmax(logits, axis=-1) == jnp.asarray(test[1])))


def jax_loop_epochs(x, y, test, *, sizes, hidden, loss, learning_rate, epochs, seed) -> Iterator[None]:
    """What most tutorials do: jit one step, shuffle with NumPy, feed host batches."""
    model = mlp_model(sizes, hidden)
    params = model.init(jax.random.PRNGKey(seed))
    optimizer = train.make_optimizer("momentum", learning_rate=learning_rate, momentum=MOMENTUM)
    opt_state = optimizer.init(params)
    step = train.make_train_step(model, optimizer, loss=losses.get(loss))  # jax.jit(step), λ Σ‖W‖² included
    l2 = jnp.zeros((), jnp.float32)  # λ = 0, a traced argument of the step
    rng = np.random.default_rng(seed)
    steps = len(x) // BATCH
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(steps):
            batch = order[i * BATCH:(i + 1) * BATCH]
            params, opt_state, _ = step(params, opt_state, train.Batch(x[batch], y[batch]), l2)
        jax.block_until_ready(params)
        yield
    return mlp_accuracy(params, test, hidden)


def make_run(variant: str, workload: str, arrays: dict, epochs: int, seed: int) -> Iterator[None]:
    spec = WORKLOADS[workload]
    x, y, x_dev, y_dev, test = arrays["x"], arrays["y"], arrays["x_dev"], arrays["y_dev"], arrays["test"]
    common = dict(sizes=spec["sizes"], hidden=spec["hidden"], loss=spec["loss"],
                  learning_rate=spec["learning_rate"], epochs=epochs, seed=seed)
    batch, momentum = batch_of(workload), spec.get("momentum", MOMENTUM)
    if variant in ("jaxnet_fit", "jaxnet_fit_manual"):
        return jaxnet_fit_epochs(x_dev, y_dev, test, **common, model=spec.get("model", "mlp"),
                                 grad_source="manual" if variant == "jaxnet_fit_manual" else "autodiff",
                                 batch_size=batch, momentum=momentum)
    if variant == "jaxnet_sweep":
        return jaxnet_sweep_epochs(x_dev, y_dev, test, **common, members=sweep_members_of(workload),
                                   batch_size=batch, momentum=momentum, shared_rate="sweep_members" in spec)
    if variant == "jax_scan_minimal":
        return scan_minimal_epochs(x_dev, y_dev, test, **common)
    if variant == "jax_loop":
        return jax_loop_epochs(x, y, test, **common)
    if variant in TORCH_VARIANTS:
        return peers.torch_epochs(x, y, test, **common, momentum=momentum, batch_size=batch,
                                  style=variant.removeprefix("torch_"))
    if variant == "numpy":
        return peers.numpy_epochs(x, y, test, **common, momentum=momentum, batch_size=batch)
    raise ValueError(f"unknown variant {variant!r}")


# --- the machine's limit ----------------------------------------------------------------


def network_dots(sizes, batch: int = BATCH) -> list[tuple[tuple, tuple, tuple, float]]:
    """The matmuls of one training step: (lhs shape, rhs shape, dot_general dims, FLOPs)."""
    dots = []
    for index, (k, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        flops = 2.0 * batch * k * n
        dots.append(((batch, k), (k, n), (((1,), (0,)), ((), ())), flops))  # z = a W
        dots.append(((batch, k), (batch, n), (((0,), (0,)), ((), ())), flops))  # ∂W = aᵀ δ
        if index > 0:
            dots.append(((batch, n), (k, n), (((1,), (1,)), ((), ())), flops))  # δ Wᵀ
    return dots


class MatmulPeak:
    """Float32 matmul GFLOP/s: a square ``size``² product and the networks' own shapes.

    The shapes run as a ``fori_loop`` of ``inner`` iterations in one jitted program (no
    per-call dispatch); one element of each left operand is rewritten in place every
    iteration from the accumulators, so XLA cannot hoist the products out of the loop.
    """

    def __init__(self, networks: dict[str, tuple], *, size: int = 2048, reps: int = 3,
                 target_flops: float = 4e9, batches: dict[str, int] | None = None):
        key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
        self.size, self.reps = size, reps
        self.a = jax.random.normal(key_a, (size, size), jnp.float32)
        self.b = jax.random.normal(key_b, (size, size), jnp.float32)
        self.square = jax.jit(jnp.dot)
        self.square(self.a, self.b).block_until_ready()  # compile
        self.programs = {}
        for name, sizes in networks.items():
            dots = network_dots(sizes, (batches or {}).get(name, BATCH))
            step_flops = sum(d[3] for d in dots)
            inner = int(min(1000, max(1, round(target_flops / step_flops))))
            operands = tuple((jnp.ones(lhs, jnp.float32) * 0.01, jnp.ones(rhs, jnp.float32) * 0.01)
                             for lhs, rhs, _, _ in dots)
            program = jax.jit(self._loop(dots, inner))
            jax.block_until_ready(program(operands))  # compile
            self.programs[name] = (program, operands, inner * step_flops)

    @staticmethod
    def _loop(dots, inner):
        def run(operands):
            def body(_, carry):
                ops, accs = carry
                # a loop-carried dependency (one element of each lhs, updated in place from the
                # accumulators) so that XLA cannot hoist the loop-invariant products
                s = sum(acc[(0,) * acc.ndim] for acc in accs) * 0.0
                ops = tuple((jax.lax.dynamic_update_slice(lhs, lhs[:1, :1] + s, (0, 0)), rhs) for lhs, rhs in ops)
                accs = tuple(acc + jax.lax.dot_general(lhs, rhs, dims)
                             for acc, (lhs, rhs), (_, _, dims, _) in zip(accs, ops, dots))
                return ops, accs
            init = tuple(jnp.zeros(jax.eval_shape(lambda l, r, d=dims: jax.lax.dot_general(l, r, d), lhs, rhs).shape,
                                   jnp.float32) for (lhs, rhs), (_, _, dims, _) in zip(operands, dots))
            return jax.lax.fori_loop(0, inner, body, (operands, init))[1]
        return run

    def measure(self) -> dict[str, float]:
        """GFLOP/s now: ``{"square": ..., "<network>": ...}``."""
        times = []
        for _ in range(self.reps):
            start = time.perf_counter()
            self.square(self.a, self.b).block_until_ready()
            times.append(time.perf_counter() - start)
        rates = {"square": 2.0 * self.size ** 3 / statistics.median(times) / 1e9}
        for name, (program, operands, flops) in self.programs.items():
            start = time.perf_counter()
            jax.block_until_ready(program(operands))
            rates[name] = flops / (time.perf_counter() - start) / 1e9
        return rates


# --- environment ----------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info() -> dict[str, Any]:
    """The accelerator JAX runs on and the host CPU: what a figure was measured on."""
    devices = jax.devices()
    return {"platform": devices[0].platform, "device_kind": devices[0].device_kind, "count": len(devices),
            "host_cpu": _cpu_model(), "host_cores": os.cpu_count()}


def describe_device(device: dict[str, Any] | str) -> str:
    """One line, e.g. "cpu (cpu) × 1; host CPU AMD EPYC, 2 cores"."""
    if isinstance(device, str):  # the JSON of older runs
        return device
    return (f"{device['platform']} ({device['device_kind']}) × {device['count']}; "
            f"host CPU {device['host_cpu']}, {device['host_cores']} cores")


def environment(torch) -> dict[str, Any]:
    versions = {"python": platform.python_version(), "jax": jax.__version__,
                "jaxlib": getattr(jax.lib, "__version__", None) or _dist_version("jaxlib"),
                "optax": optax.__version__, "numpy": np.__version__,
                "torch": torch.__version__ if torch is not None else None, "jaxnet": _dist_version("jaxnet")}
    threads = {"os.cpu_count": os.cpu_count(),
               "sched_getaffinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
               "torch.get_num_threads": torch.get_num_threads() if torch is not None else None,
               "torch.get_num_interop_threads": torch.get_num_interop_threads() if torch is not None else None,
               "jax.device_count": jax.device_count(),
               "env": {k: os.environ.get(k) for k in ("XLA_FLAGS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                      "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY",
                                                      "KMP_BLOCKTIME", "JAX_PLATFORMS", "JAX_NUM_CPU_DEVICES",
                                                      "JAXNET_HOST_DEVICES")}}
    try:
        from threadpoolctl import threadpool_info
        threads["numpy_blas"] = [{k: info.get(k) for k in ("internal_api", "num_threads", "version")}
                                 for info in threadpool_info()]
    except ImportError:
        threads["numpy_blas"] = None
    return {"device": device_info(), "platform": platform.platform(), "versions": versions, "threads": threads,
            "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def _dist_version(name: str) -> str | None:
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# --- the benchmark --------------------------------------------------------------------------


def load_mnist(args) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ds = data.load("mnist", manual_dir=args.manual_dir, data_dir=args.data_dir)
    prep = lambda images: data.flatten(data.normalize(data.scale(images), data.MNIST_MEAN, data.MNIST_STD))  # noqa: E731
    return prep(ds.x_train), ds.y_train.astype(np.int32), prep(ds.x_test), ds.y_test.astype(np.int32)


def plan(args, torch_ok: bool) -> tuple[list[tuple[str, str]], list[str]]:
    """The (workload, variant) runs, in round order, and notes about what was left out."""
    notes, runs = [], []
    for workload in args.workloads:
        for variant in WORKLOADS[workload]["variants"]:
            if args.variants and variant not in args.variants:
                continue
            if variant in TORCH_VARIANTS and not torch_ok:
                continue
            if args.quick and variant == "torch_compile" and workload != "W1":
                continue  # compiling costs 0.5–1 min a workload: quick mode checks it once
            runs.append((workload, variant))
    sweeps = [w for w, v in runs if v == "jaxnet_sweep" and (w, "jaxnet_fit") not in runs]
    if sweeps and ("W1", "jaxnet_fit") not in runs:
        runs.insert(0, ("W1", "jaxnet_fit"))
        notes.append(f"W1 jaxnet_fit added: the {'/'.join(sweeps)} per-member ratio needs the single-model "
                     "epoch in the same rounds.")
    return runs, notes


def benchmark(args) -> dict[str, Any]:
    torch, why = peers.torch_or_none(args.torch_threads or os.cpu_count() or 1)  # every core by default
    report: dict[str, Any] = {"command": "python -m benchmarks.train_throughput " + " ".join(args.argv),
                              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                              "quick": args.quick, "rounds": args.rounds, "batch_size": BATCH,
                              "flop_rule": "executed matrix-product FLOPs per example: forward 2·W and weight "
                                           "gradient 2·W for every layer, input gradient 2·W for every layer but "
                                           "the first (W = fan_in × fan_out); biases, activations, loss and "
                                           "optimizer not counted",
                              **environment(torch), "notes": []}
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    say(f"device: {describe_device(report['device'])}")
    if torch is None:
        report["notes"].append(why)
    runs, notes = plan(args, torch is not None)
    report["notes"] += notes
    if not runs:
        raise SystemExit("error: nothing to run — check --workloads and --variants")
    x, y, x_test, y_test = load_mnist(args)
    test = (x_test[:QUICK_TEST], y_test[:QUICK_TEST]) if args.quick else (x_test, y_test)
    per_workload = {}
    for workload in dict.fromkeys(w for w, _ in runs):
        n = QUICK_TRAIN[workload] if args.quick else len(x)
        xs, ys = np.ascontiguousarray(x[:n]), np.ascontiguousarray(y[:n])
        test_w = test
        if WORKLOADS[workload].get("model") == "cnn":
            xs, test_w = xs.reshape(-1, 28, 28, 1), (test[0].reshape(-1, 28, 28, 1), test[1])
        per_workload[workload] = {"x": xs, "y": ys, "x_dev": jnp.asarray(xs), "y_dev": jnp.asarray(ys),
                                  "test": test_w, "examples": (len(xs) // batch_of(workload)) * batch_of(workload)}
    report["workloads"] = {}
    for w in per_workload:
        spec, examples, members = WORKLOADS[w], per_workload[w]["examples"], members_of(w)
        sizes = spec["sizes"]
        report["workloads"][w] = {
            "title": spec["title"], "sizes": list(sizes) if sizes else None, "hidden": spec["hidden"],
            "loss": spec["loss"], "momentum": MOMENTUM, "members": members,
            "learning_rate": list(sweep_learning_rates(members)) if members > 1 else spec["learning_rate"],
            "examples_per_epoch": examples, "steps_per_epoch": examples // batch_of(w),
            "weights": weight_count(sizes) if sizes else None,
            "gflop_per_epoch": epoch_flops(sizes, examples, members) / 1e9 if sizes else None,
            "gflop_per_epoch_nominal_6wn": 6.0 * weight_count(sizes) * examples * members / 1e9 if sizes else None}
        if "batch_size" in spec or "sweep_members" in spec:  # N1: its own batch, and a sweep beside the fits
            report["workloads"][w].update(batch_size=batch_of(w), sweep_members=sweep_members_of(w),
                                          momentum=spec.get("momentum", MOMENTUM))

    networks = {w: WORKLOADS[w]["sizes"] for w in per_workload if WORKLOADS[w]["sizes"]}
    say(f"matmul peak: compiling ({', '.join(sorted(networks))} shapes) ...")
    peak = MatmulPeak(networks, size=1024 if args.quick else 2048,
                      reps=2 if args.quick else 3, target_flops=4e8 if args.quick else 4e9,
                      batches={w: batch_of(w) for w in networks})
    for sizes in networks.values():  # JAX's one-time costs (the init's random-number programs) out of the first run
        jax.block_until_ready(mlp.init(jax.random.PRNGKey(0), sizes, scheme="uniform"))
    epochs = 1 + args.rounds
    generators = {run: make_run(run[1], run[0], per_workload[run[0]], epochs, args.seed) for run in runs}
    first, times, cpu, peaks, accuracy = {}, {run: [] for run in runs}, {run: [] for run in runs}, [], {}
    try:
        for run, gen in generators.items():  # warm-up: compilation and one-time setup
            start = time.perf_counter()
            next(gen)
            first[run] = time.perf_counter() - start
            say(f"warm-up  {run[0]} {run[1]:<18} {first[run]:8.3f} s")
        for r in range(args.rounds):
            peaks.append(peak.measure())
            say(f"round {r + 1}/{args.rounds}  matmul peak {peaks[-1]['square']:.1f} GFLOP/s (square)")
            for run, gen in generators.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                next(gen)
                times[run].append(time.perf_counter() - start)
                cpu[run].append(time.process_time() - start_cpu)
                say(f"round {r + 1}  {run[0]} {run[1]:<18} {times[run][-1]:8.3f} s")
        for run, gen in generators.items():
            try:
                next(gen)
                raise RuntimeError(f"{run} trained more epochs than planned")
            except StopIteration as stop:
                accuracy[run] = stop.value
    finally:
        for gen in generators.values():
            gen.close()
    report["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    report.update(analyse(runs, first, times, cpu, peaks, accuracy, report["workloads"], peak.size,
                          report["device"]))
    return report


def reanalyse(old: dict[str, Any]) -> dict[str, Any]:
    """A report recomputed from another report's raw per-round timings with this module's
    FLOP count, ratios and targets (nothing is re-measured).

    The run's own facts stay: command, date, environment, titles (what was timed then).
    An older ``device`` string ("CPU (cpu): AMD EPYC") is turned into :func:`device_info`'s
    fields from what the report recorded.
    """
    report = {k: v for k, v in old.items() if k not in ("peak_gflops", "results", "ratios", "targets")}
    device = old["device"]
    if isinstance(device, str):
        head, _, cpu_model = device.partition(": ")
        platform_name, _, kind = head.partition(" (")
        device = {"platform": platform_name.lower(), "device_kind": kind.rstrip(")"),
                  "count": old["threads"].get("jax.device_count"), "host_cpu": cpu_model,
                  "host_cores": old["threads"].get("os.cpu_count")}
    report["device"] = device
    report["flop_rule"] = ("executed matrix-product FLOPs per example: forward 2·W and weight gradient 2·W for every "
                           "layer, input gradient 2·W for every layer but the first (W = fan_in × fan_out); biases, "
                           "activations, loss and optimizer not counted")
    workloads = report["workloads"] = {w: dict(spec) for w, spec in old["workloads"].items()}
    for spec in workloads.values():
        if spec.get("sizes"):
            n = spec["examples_per_epoch"] * spec["members"]
            spec["gflop_per_epoch"] = epoch_flops(spec["sizes"], n) / 1e9
            spec["gflop_per_epoch_nominal_6wn"] = 6.0 * weight_count(spec["sizes"]) * n / 1e9
    runs = [(w, v) for w, variants in old["results"].items() for v in variants]
    entries = {(w, v): old["results"][w][v] for w, v in runs}
    times = {run: e["seconds_per_epoch"]["per_round"] for run, e in entries.items()}
    cpu = {run: e["cpu_seconds_per_epoch"]["per_round"] for run, e in entries.items()}
    first = {run: e["first_epoch_seconds"] for run, e in entries.items()}
    accuracy = {run: e.get("member_accuracy", e["accuracy"]) for run, e in entries.items()}
    report.update(analyse(runs, first, times, cpu, old["peak_gflops"]["per_round"], accuracy, workloads,
                          old["peak_gflops"]["square_size"], device))
    for (w, v), entry in entries.items():
        report["results"][w][v]["title"] = entry["title"]
    report["reanalysed"] = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                            "how": "python -m benchmarks.train_throughput --reanalyse <old.json>"}
    return report


def _ratio(times, numerator, denominator, rounds: int, per: float = 1.0) -> dict[str, Any] | None:
    """seconds(numerator) / (per · seconds(denominator)), round by round; None if one is missing."""
    if numerator not in times or denominator not in times:
        return None
    per_round = [times[numerator][r] / per / times[denominator][r] for r in range(rounds)]
    return {**summary(per_round), "per_round": per_round}


def analyse(runs, first, times, cpu, peaks, accuracy, workloads, square_size: int,
            device: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-run statistics, within-round ratios and the targets."""
    rounds = len(peaks)
    peak = {"square": summary(p["square"] for p in peaks), "square_size": square_size,
            "network_shapes": {w: summary(p[w] for p in peaks) for w in workloads if w in peaks[0]},
            "per_round": peaks}
    results: dict[str, dict[str, Any]] = {}
    for run in runs:
        workload, variant = run
        flops = workloads[workload]["gflop_per_epoch"]
        sweep_members = workloads[workload].get("sweep_members") if variant == "jaxnet_sweep" else None
        if flops and sweep_members:  # N1's sweep: the workload's FLOPs are one model's
            flops *= sweep_members
        t = times[run]
        members = workloads[workload]["members"]
        acc = accuracy[run]
        entry = {
            "title": VARIANT_TITLES[variant],
            "seconds_per_epoch": {**summary(t), "per_round": t},
            "cpu_seconds_per_epoch": {**summary(cpu[run]), "per_round": cpu[run]},
            "first_epoch_seconds": first[run],
            "compile_seconds": first[run] - statistics.median(t),
            "gflops": summary(flops / s for s in t) if flops else None,
            "fraction_of_peak": summary(flops / s / p["square"] for s, p in zip(t, peaks)) if flops else None,
            "fraction_of_shapes_peak": (summary(flops / s / p[workload] for s, p in zip(t, peaks))
                                        if flops and workload in peaks[0] else None),
            "accuracy": acc if not isinstance(acc, list) else min(acc),
        }
        if isinstance(acc, list):
            entry["member_accuracy"] = acc
        if members > 1:
            entry["seconds_per_epoch_per_member"] = summary(s / members for s in t)
        steps = workloads[workload].get("steps_per_epoch")
        if "sweep_members" in workloads[workload] and steps:  # N1: per step, and per member-step of the sweep
            entry["seconds_per_step"] = summary(s / steps for s in t)
            if sweep_members:
                entry["seconds_per_member_step"] = summary(s / steps / sweep_members for s in t)
        results.setdefault(workload, {})[variant] = entry
    speedups: dict[str, dict[str, dict[str, Any]]] = {}
    for workload, variants in results.items():
        for a in variants:
            for b in variants:
                if a != b:
                    speedups.setdefault(workload, {}).setdefault(a, {})[b] = _ratio(
                        times, (workload, b), (workload, a), rounds)
    ratios: dict[str, Any] = {"speedup": speedups,
                              "speedup_means": "speedup[W][A][B] = seconds(B) / seconds(A), per round: "
                                               "how many times faster A is than B"}
    named = {"manual_over_autodiff_seconds": ("jaxnet_fit_manual", "jaxnet_fit"),
             "fit_over_scan_minimal_seconds": ("jaxnet_fit", "jax_scan_minimal"),
             "fit_over_numpy_seconds": ("jaxnet_fit", "numpy")}
    for name, (a, b) in named.items():
        for workload in results:
            value = _ratio(times, (workload, a), (workload, b), rounds)
            if value is not None:
                ratios.setdefault(name, {})[workload] = value
    for workload in results:
        if workloads[workload].get("sweep_members"):  # N1: one sweep member-step against one fit step
            value = _ratio(times, (workload, "jaxnet_sweep"), (workload, "jaxnet_fit"), rounds,
                           per=workloads[workload]["sweep_members"])
            if value is not None:
                ratios[f"{workload.lower()}_member_over_fit"] = value
        members = workloads[workload]["members"]
        if members > 1:
            value = _ratio(times, (workload, "jaxnet_sweep"), ("W1", "jaxnet_fit"), rounds, per=members)
            if value is not None:
                ratios[f"{workload.lower()}_member_over_w1_fit"] = value
            value = _ratio(times, (workload, "jaxnet_sweep"), ("W1", "jaxnet_fit"), rounds)
            if value is not None:
                ratios[f"{workload.lower()}_sweep_over_w1_fit"] = value
    return {"peak_gflops": peak, "results": results, "ratios": ratios,
            "targets": targets(results, ratios, device or {})}


def targets(results, ratios, device: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value (None: not measured in this run) and whether it is met."""
    out = []
    on_gpu = isinstance(device, dict) and device.get("platform") == "gpu"

    def add(name, value, threshold, higher_is_better):
        met = None if value is None or threshold is None else (
            value >= threshold if higher_is_better else value <= threshold)
        out.append({"target": name, "value": value, "threshold": threshold, "met": met})

    def median(entry):
        return entry["median"] if entry else None

    speed = ratios["speedup"].get("W1", {}).get("jaxnet_fit", {})
    add("W1 jaxnet_fit speedup over torch_idiomatic >= 3.5", median(speed.get("torch_idiomatic")), 3.5, True)
    add("W1 jaxnet_fit speedup over torch_tuned >= 2.5", median(speed.get("torch_tuned")), 2.5, True)
    w1 = results.get("W1", {}).get("jaxnet_fit")
    add("W1 jaxnet_fit executed FLOPs, fraction of the square-matmul peak >= 0.60",
        median(w1["fraction_of_peak"]) if w1 else None, 0.60, True)
    for workload, value in ratios.get("manual_over_autodiff_seconds", {}).items():
        add(f"{workload} manual/autodiff seconds per epoch <= 1.10", value["median"], 1.10, False)
    for workload in ("W1", "W2"):  # issue 12: no engine overhead
        add(f"{workload} jaxnet_fit / jax_scan_minimal seconds per epoch <= 1.0",
            median(ratios.get("fit_over_scan_minimal_seconds", {}).get(workload)), 1.0, False)
    add("W2 jaxnet_fit / numpy seconds per epoch <= 1.0", median(ratios.get("fit_over_numpy_seconds", {}).get("W2")),
        1.0, False)
    add("S8 seconds per member / W1 fit epoch <= 0.50", median(ratios.get("s8_member_over_w1_fit")), 0.50, False)
    add("GPU: W1 jaxnet_fit seconds per epoch < 0.020",
        median(w1["seconds_per_epoch"]) if (w1 and on_gpu) else None, 0.020, False)
    add("GPU: S64 sweep epoch / W1 fit epoch < 4",
        median(ratios.get("s64_sweep_over_w1_fit")) if on_gpu else None, 4.0, False)
    c1 = results.get("C1", {}).get("jaxnet_fit")
    add("GPU: C1 (CNN) jaxnet_fit seconds per epoch (recorded; no threshold set)",
        median(c1["seconds_per_epoch"]) if (c1 and on_gpu) else None, None, False)
    return out


# --- output ---------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    """The full Markdown report (the same text ``benchmarks.tables`` puts in benchmarks/README.md)."""
    from benchmarks import tables
    return tables.full(report)


def _default_manual_dir() -> Path | None:
    if os.environ.get("JAXNET_MANUAL_DIR"):
        return Path(os.environ["JAXNET_MANUAL_DIR"])
    fallback = SHARED / "data" / "mnist"
    return fallback if fallback.exists() else None


def output_path_problem(path: Path) -> str | None:
    """Why ``path`` cannot be written as an output file ("<problem> — <fix>"), or None.

    Creates nothing: the nearest existing folder is probed with a temporary file that is
    removed at once (``os.access`` alone says yes to root on a read-only mount).
    """
    path = Path(path)
    if path.is_dir():
        return f"is a directory — give a file name inside it, e.g. {path / 'bench.out'}"
    if path.exists() and not os.access(path, os.W_OK):
        return "exists and is not writable — choose another file, or make it writable"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder — choose a path inside a folder"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return (f"cannot write in {folder} ({error.strerror or error}) — choose a writable folder, "
                f"e.g. {Path(tempfile.gettempdir()) / path.name}")
    return None


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_throughput",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5; 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="small subsets, one round: checks every variant trains (timings meaningless)")
    p.add_argument("--workloads", default=None,
                   help=f"comma-separated subset of {', '.join(WORKLOADS)} (default: {','.join(CPU_WORKLOADS)}; "
                        f"on a GPU {','.join(GPU_WORKLOADS)})")
    p.add_argument("--variants", default="", help=f"comma-separated subset of {', '.join(VARIANTS)} (default: all)")
    p.add_argument("--json", type=Path, default=None, help="write the full results here")
    p.add_argument("--markdown", type=Path, default=None, help="write the tables (Markdown) here")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="torch.set_num_threads (default: os.cpu_count(), every core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--manual-dir", type=Path, default=_default_manual_dir(),
                   help="folder with the four MNIST .gz files (env JAXNET_MANUAL_DIR; default: %(default)s)")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ["JAXNET_DATA_DIR"])
                   if os.environ.get("JAXNET_DATA_DIR") else None, help="tfds data dir / cache (env JAXNET_DATA_DIR)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--reanalyse", type=Path, default=None, metavar="JSON",
                   help="measure nothing: recompute FLOPs, ratios and targets from JSON's per-round timings")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.workloads is None:
        args.workloads = ",".join(GPU_WORKLOADS if jax.default_backend() == "gpu" else CPU_WORKLOADS)
    args.workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for w in args.workloads:
        if w not in WORKLOADS:
            p.error(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    for v in args.variants:
        if v not in VARIANTS:
            p.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    for flag, path in (("--json", args.json), ("--markdown", args.markdown)):
        problem = None if path is None else output_path_problem(path)
        if problem:
            print(f"error: {flag} {path}: {problem}", file=sys.stderr)
            raise SystemExit(2)
    if args.reanalyse is not None:
        if not args.reanalyse.is_file():
            print(f"error: --reanalyse {args.reanalyse}: no such file — give a train_throughput --json file",
                  file=sys.stderr)
            raise SystemExit(2)
        report = reanalyse(json.loads(args.reanalyse.read_text()))
    else:
        report = benchmark(args)
    table = markdown(report)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table)
    return report


if __name__ == "__main__":
    main()
