"""Training throughput: jaxnet's engine against a plain JAX loop, PyTorch eager and NumPy.

    python -m benchmarks.train_throughput --json bench.json --markdown bench.md
    python -m benchmarks.train_throughput --quick          # every variant, small data, < 1 min

Every (workload, variant) pair is a *run* that trains for 1 + ``--rounds`` epochs. All runs
do their first epoch (warm-up: compilation, one-time setup) one after the other, then the
timed epochs are interleaved in rounds, A B C … A B C …, so that machine drift hits every
variant alike. Each round also re-measures the machine's float32 matmul rate (a 2048² square
product and the network's own matmul shapes). Ratios (speedups, fractions of peak) are
computed within a round, then summarised by their median over rounds.

An epoch is one pass over the training set at batch 128 (60,000 MNIST images: 468 steps,
the remainder dropped), wall-clock, with every result ready (``jax.block_until_ready``,
synchronous PyTorch/NumPy). For ``jaxnet_fit`` / ``jaxnet_sweep`` the timed thing is
:func:`jaxnet.engine.fit` / :func:`~jaxnet.engine.sweep` itself (``eval_train=False``,
``log=None``, no validation set): it runs in a helper thread whose per-epoch ``callback``
hands control back to the scheduler, so one epoch of fit is exactly what fit does per epoch.

FLOPs are counted as 6 × (weight-matrix entries) × (examples) per epoch: 2 for the forward
product, 4 for the two backward products; biases, activations, the loss and the optimizer
are not counted (nor is the first layer's unneeded input gradient subtracted).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import peers
from jaxnet import data, engine, mlp, train

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("JAXNET_SHARED", REPO.parent / "shared"))
BATCH = 128
MOMENTUM = 0.9
MEMBERS = 8

WORKLOADS: dict[str, dict[str, Any]] = {
    "W1": dict(sizes=(784, 128, 64, 10), hidden="relu", loss="softmax_cross_entropy", learning_rate=0.01,
               title="784-128-64-10 ReLU, softmax cross-entropy (the PyTorch-tutorial network)"),
    "W2": dict(sizes=(784, 20, 10), hidden="sigmoid", loss="sigmoid_cross_entropy", learning_rate=0.1,
               title="784-20-10, sigmoid hidden and outputs, summed sigmoid cross-entropy"),
    "W3": dict(sizes=(784, 1024, 1024, 10), hidden="relu", loss="softmax_cross_entropy", learning_rate=0.01,
               title="784-1024-1024-10 ReLU (compute-bound)"),
    "S8": dict(sizes=(784, 128, 64, 10), hidden="relu", loss="softmax_cross_entropy", learning_rate=0.01,
               title=f"W1 as one sweep of {MEMBERS} members (learning rates, seeds) in one program"),
}
SWEEP_LEARNING_RATES = tuple(float(v) for v in np.geomspace(0.002, 0.05, MEMBERS).round(4))
VARIANTS = ("jaxnet_fit", "jaxnet_fit_manual", "jax_loop", "torch_idiomatic", "torch_tuned", "numpy")
SWEEP_VARIANTS = ("jaxnet_sweep",)
VARIANT_TITLES = {
    "jaxnet_fit": "jaxnet `fit`, autodiff gradients",
    "jaxnet_fit_manual": "jaxnet `fit`, hand-derived gradients (`grad_source=\"manual\"`)",
    "jax_loop": "plain JAX: a jitted step fed NumPy batches from a Python loop",
    "torch_idiomatic": "PyTorch eager, `DataLoader(shuffle=True)`",
    "torch_tuned": "PyTorch eager, pre-shuffled tensors sliced per step, fused SGD",
    "numpy": "NumPy float32, hand-written backprop",
    "jaxnet_sweep": f"jaxnet `sweep`, {MEMBERS} members vmapped in one program",
}
TORCH_VARIANTS = ("torch_idiomatic", "torch_tuned")
# quick mode: training examples per epoch (steps × 128) per workload, and a test subset
QUICK_TRAIN = {"W1": 50 * BATCH, "W2": 50 * BATCH, "W3": 10 * BATCH, "S8": 50 * BATCH}
QUICK_TEST = 2000
SANE_ACCURACY = 0.5  # after the quick mode's training, every variant must beat this on MNIST


# --- helpers ------------------------------------------------------------------------------


def weight_count(sizes) -> int:
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def epoch_flops(sizes, examples: int, members: int = 1) -> float:
    """6 × weights × examples (see the module docstring)."""
    return 6.0 * weight_count(sizes) * examples * members


def summary(values) -> dict[str, float]:
    values = [float(v) for v in values]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


class _Stop(Exception):
    """Raised inside a stepped fit/sweep thread to abandon it."""


def stepwise(run: Callable[[Callable], Any]) -> Iterator[None]:
    """Turns ``run(callback)`` (which calls ``callback(...)`` after every epoch) into a
    generator that yields after every epoch and returns ``run``'s result.

    ``run`` executes in a helper thread that blocks in its callback until the generator is
    resumed, so each ``next()`` on the generator times exactly one epoch of ``run``.
    """
    go, done = threading.Semaphore(0), threading.Semaphore(0)
    box: dict[str, Any] = {"finished": False, "stop": False}

    def callback(*_):
        done.release()
        go.acquire()
        if box["stop"]:
            raise _Stop

    def target():
        try:
            box["result"] = run(callback)
        except _Stop:
            pass
        except BaseException as error:  # handed to the generator's caller
            box["error"] = error
        finally:
            box["finished"] = True
            done.release()

    thread = threading.Thread(target=target, daemon=True, name="stepwise")
    thread.start()
    try:
        while True:
            done.acquire()
            if "error" in box:
                raise box["error"]
            if box["finished"]:
                return box.get("result")
            yield
            go.release()
    finally:
        if not box["finished"]:
            box["stop"] = True
            go.release()
            thread.join()


def jax_accuracy(params, test, hidden: str) -> float:
    logits = mlp.apply(params, jnp.asarray(test[0]), hidden=hidden)
    return float(jnp.mean(jnp.argmax(logits, axis=-1) == jnp.asarray(test[1])))


# --- the JAX variants ---------------------------------------------------------------------


def jaxnet_fit_epochs(x, y, test, *, sizes, hidden, loss, learning_rate, epochs, seed, grad_source):
    params = mlp.init(jax.random.PRNGKey(seed), sizes, scheme="uniform")
    optimizer = train.make_optimizer("momentum", learning_rate=learning_rate, momentum=MOMENTUM)
    result = yield from stepwise(lambda callback: engine.fit(
        params, optimizer, (x, y), epochs=epochs, batch_size=BATCH, hidden=hidden, loss=loss,
        grad_source=grad_source, seed=seed, eval_train=False, log=None, callback=callback))
    return jax_accuracy(result.params, test, hidden)


def jaxnet_sweep_epochs(x, y, test, *, sizes, hidden, loss, learning_rate, epochs, seed):
    del learning_rate  # the members' own
    optimizer = train.make_optimizer("momentum", learning_rate=0.01, momentum=MOMENTUM)
    seeds = [seed + k for k in range(MEMBERS)]
    result = yield from stepwise(lambda callback: engine.sweep(
        lambda key: mlp.init(key, sizes, scheme="uniform"), optimizer, (x, y), epochs=epochs,
        batch_size=BATCH, learning_rate=SWEEP_LEARNING_RATES, init_seed=seeds, data_seed=seeds, hidden=hidden,
        loss=loss, eval_train=False, log=None, callback=callback))
    return [jax_accuracy(result.member(k), test, hidden) for k in range(MEMBERS)]


def jax_loop_epochs(x, y, test, *, sizes, hidden, loss, learning_rate, epochs, seed):
    """What most tutorials do: jit one step, shuffle with NumPy, feed host batches."""
    params = mlp.init(jax.random.PRNGKey(seed), sizes, scheme="uniform")
    optimizer = train.make_optimizer("momentum", learning_rate=learning_rate, momentum=MOMENTUM)
    opt_state = optimizer.init(params)
    step = train.make_train_step(optimizer, hidden=hidden, loss=loss)  # jax.jit(step)
    rng = np.random.default_rng(seed)
    steps = len(x) // BATCH
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(steps):
            batch = order[i * BATCH:(i + 1) * BATCH]
            params, opt_state, _ = step(params, opt_state, train.Batch(x[batch], y[batch]))
        jax.block_until_ready(params)
        yield
    return jax_accuracy(params, test, hidden)


def make_run(variant: str, workload: str, arrays: dict, epochs: int, seed: int) -> Iterator[None]:
    spec = WORKLOADS[workload]
    x, y, x_dev, y_dev, test = arrays["x"], arrays["y"], arrays["x_dev"], arrays["y_dev"], arrays["test"]
    common = dict(sizes=spec["sizes"], hidden=spec["hidden"], loss=spec["loss"],
                  learning_rate=spec["learning_rate"], epochs=epochs, seed=seed)
    if variant in ("jaxnet_fit", "jaxnet_fit_manual"):
        return jaxnet_fit_epochs(x_dev, y_dev, test, **common,
                                 grad_source="manual" if variant == "jaxnet_fit_manual" else "autodiff")
    if variant == "jaxnet_sweep":
        return jaxnet_sweep_epochs(x_dev, y_dev, test, **common)
    if variant == "jax_loop":
        return jax_loop_epochs(x, y, test, **common)
    if variant in TORCH_VARIANTS:
        return peers.torch_epochs(x, y, test, **common, momentum=MOMENTUM, batch_size=BATCH,
                                  tuned=variant == "torch_tuned")
    if variant == "numpy":
        return peers.numpy_epochs(x, y, test, **common, momentum=MOMENTUM, batch_size=BATCH)
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
                 target_flops: float = 4e9):
        key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
        self.size, self.reps = size, reps
        self.a = jax.random.normal(key_a, (size, size), jnp.float32)
        self.b = jax.random.normal(key_b, (size, size), jnp.float32)
        self.square = jax.jit(jnp.dot)
        self.square(self.a, self.b).block_until_ready()  # compile
        self.programs = {}
        for name, sizes in networks.items():
            dots = network_dots(sizes)
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


def environment(torch) -> dict[str, Any]:
    import optax
    device = jax.devices()[0]
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
                                                      "KMP_BLOCKTIME", "JAX_PLATFORMS")}}
    try:
        from threadpoolctl import threadpool_info
        threads["numpy_blas"] = [{k: info.get(k) for k in ("internal_api", "num_threads", "version")}
                                 for info in threadpool_info()]
    except ImportError:
        threads["numpy_blas"] = None
    return {"device": f"{device.platform.upper()} ({device.device_kind}): {_cpu_model()}",
            "platform": platform.platform(), "versions": versions, "threads": threads,
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
        for variant in SWEEP_VARIANTS if workload == "S8" else VARIANTS:
            if args.variants and variant not in args.variants:
                continue
            if variant in TORCH_VARIANTS and not torch_ok:
                continue
            runs.append((workload, variant))
    if "S8" in args.workloads and ("W1", "jaxnet_fit") not in runs and any(w == "S8" for w, _ in runs):
        runs.insert(0, ("W1", "jaxnet_fit"))
        notes.append("W1 jaxnet_fit added: S8's per-member ratio needs the single-model epoch in the same rounds.")
    return runs, notes


def benchmark(args) -> dict[str, Any]:
    torch, why = peers.torch_or_none(args.torch_threads or os.cpu_count() or 1)  # every core by default
    report: dict[str, Any] = {"command": "python -m benchmarks.train_throughput " + " ".join(args.argv),
                              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                              "quick": args.quick, "rounds": args.rounds, "batch_size": BATCH,
                              "flop_rule": "6 x weight-matrix entries x examples per epoch (biases, activations, "
                                           "loss and optimizer not counted)",
                              **environment(torch), "notes": []}
    if torch is None:
        report["notes"].append(why)
    runs, notes = plan(args, torch is not None)
    report["notes"] += notes
    if not runs:
        raise SystemExit("nothing to run: check --workloads and --variants")
    x, y, x_test, y_test = load_mnist(args)
    test = (x_test[:QUICK_TEST], y_test[:QUICK_TEST]) if args.quick else (x_test, y_test)
    per_workload = {}
    for workload in dict.fromkeys(w for w, _ in runs):
        n = QUICK_TRAIN[workload] if args.quick else len(x)
        xs, ys = np.ascontiguousarray(x[:n]), np.ascontiguousarray(y[:n])
        per_workload[workload] = {"x": xs, "y": ys, "x_dev": jnp.asarray(xs), "y_dev": jnp.asarray(ys),
                                  "test": test, "examples": (len(xs) // BATCH) * BATCH}
    report["workloads"] = {w: {"title": WORKLOADS[w]["title"], "sizes": list(WORKLOADS[w]["sizes"]),
                               "hidden": WORKLOADS[w]["hidden"], "loss": WORKLOADS[w]["loss"],
                               "learning_rate": (list(SWEEP_LEARNING_RATES) if w == "S8"
                                                 else WORKLOADS[w]["learning_rate"]),
                               "momentum": MOMENTUM, "members": MEMBERS if w == "S8" else 1,
                               "examples_per_epoch": per_workload[w]["examples"],
                               "steps_per_epoch": per_workload[w]["examples"] // BATCH,
                               "weights": weight_count(WORKLOADS[w]["sizes"]),
                               "gflop_per_epoch": epoch_flops(WORKLOADS[w]["sizes"], per_workload[w]["examples"],
                                                              MEMBERS if w == "S8" else 1) / 1e9}
                           for w in per_workload}
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))

    say(f"matmul peak: compiling ({', '.join(sorted(per_workload))} shapes) ...")
    peak = MatmulPeak({w: WORKLOADS[w]["sizes"] for w in per_workload}, size=1024 if args.quick else 2048,
                      reps=2 if args.quick else 3, target_flops=4e8 if args.quick else 4e9)
    for w in per_workload:  # JAX's one-time costs (the init's random-number programs) out of the first run
        jax.block_until_ready(mlp.init(jax.random.PRNGKey(0), WORKLOADS[w]["sizes"], scheme="uniform"))
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
    report.update(analyse(runs, first, times, cpu, peaks, accuracy, report["workloads"], peak.size))
    return report


def analyse(runs, first, times, cpu, peaks, accuracy, workloads, square_size: int) -> dict[str, Any]:
    """Per-run statistics, within-round ratios and the targets."""
    rounds = len(peaks)
    peak = {"square": summary(p["square"] for p in peaks), "square_size": square_size,
            "network_shapes": {w: summary(p[w] for p in peaks) for w in workloads},
            "per_round": peaks}
    results: dict[str, dict[str, Any]] = {}
    for run in runs:
        workload, variant = run
        flops = workloads[workload]["gflop_per_epoch"]
        t = times[run]
        members = workloads[workload]["members"]
        acc = accuracy[run]
        entry = {
            "title": VARIANT_TITLES[variant],
            "seconds_per_epoch": {**summary(t), "per_round": t},
            "cpu_seconds_per_epoch": {**summary(cpu[run]), "per_round": cpu[run]},
            "first_epoch_seconds": first[run],
            "compile_seconds": first[run] - statistics.median(t),
            "gflops": summary(flops / s for s in t),
            "fraction_of_peak": summary(flops / s / p["square"] for s, p in zip(t, peaks)),
            "fraction_of_shapes_peak": summary(flops / s / p[workload] for s, p in zip(t, peaks)),
            "accuracy": acc if not isinstance(acc, list) else min(acc),
        }
        if isinstance(acc, list):
            entry["member_accuracy"] = acc
        if members > 1:
            entry["seconds_per_epoch_per_member"] = summary(s / members for s in t)
        results.setdefault(workload, {})[variant] = entry
    speedups: dict[str, dict[str, dict[str, Any]]] = {}
    for workload, variants in results.items():
        for a in variants:
            for b in variants:
                if a != b:
                    per_round = [times[(workload, b)][r] / times[(workload, a)][r] for r in range(rounds)]
                    speedups.setdefault(workload, {}).setdefault(a, {})[b] = {**summary(per_round),
                                                                               "per_round": per_round}
    ratios: dict[str, Any] = {"speedup": speedups,
                              "speedup_means": "speedup[W][A][B] = seconds(B) / seconds(A), per round: "
                                               "how many times faster A is than B"}
    for workload in results:
        if ("jaxnet_fit_manual" in results[workload]) and ("jaxnet_fit" in results[workload]):
            per_round = [times[(workload, "jaxnet_fit_manual")][r] / times[(workload, "jaxnet_fit")][r]
                         for r in range(rounds)]
            ratios.setdefault("manual_over_autodiff_seconds", {})[workload] = {**summary(per_round),
                                                                                "per_round": per_round}
    if ("S8", "jaxnet_sweep") in times and ("W1", "jaxnet_fit") in times:
        per_round = [times[("S8", "jaxnet_sweep")][r] / MEMBERS / times[("W1", "jaxnet_fit")][r]
                     for r in range(rounds)]
        ratios["s8_member_over_w1_fit"] = {**summary(per_round), "per_round": per_round}
    return {"peak_gflops": peak, "results": results, "ratios": ratios, "targets": targets(results, ratios)}


def targets(results, ratios) -> list[dict[str, Any]]:
    out = []

    def add(name, value, threshold, higher_is_better):
        met = None if value is None else (value >= threshold if higher_is_better else value <= threshold)
        out.append({"target": name, "value": value, "threshold": threshold, "met": met})

    speed = ratios["speedup"].get("W1", {}).get("jaxnet_fit", {})
    add("W1 jaxnet_fit speedup over torch_idiomatic >= 3.5",
        speed.get("torch_idiomatic", {}).get("median"), 3.5, True)
    add("W1 jaxnet_fit speedup over torch_tuned >= 2.5", speed.get("torch_tuned", {}).get("median"), 2.5, True)
    w1 = results.get("W1", {}).get("jaxnet_fit")
    add("W1 jaxnet_fit fraction of the square-matmul peak >= 0.60",
        w1["fraction_of_peak"]["median"] if w1 else None, 0.60, True)
    for workload, value in ratios.get("manual_over_autodiff_seconds", {}).items():
        add(f"{workload} manual/autodiff seconds per epoch <= 1.10", value["median"], 1.10, False)
    s8 = ratios.get("s8_member_over_w1_fit")
    add("S8 seconds per member / W1 fit epoch <= 0.60", s8["median"] if s8 else None, 0.60, False)
    return out


# --- output ---------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    env, threads = report["versions"], report["threads"]
    lines = [
        f"Run `{report['command']}` on {report['date']}"
        + (" (**--quick**: tiny data, timings meaningless)" if report["quick"] else ""),
        "",
        f"- device: {report['device']}; {report['platform']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env.items() if v),
        f"- threads: os.cpu_count {threads['os.cpu_count']}, torch {threads['torch.get_num_threads']} "
        f"(interop {threads['torch.get_num_interop_threads']}), env "
        + (", ".join(f"{k}={v}" for k, v in threads["env"].items() if v) or "no thread variables set"),
        f"- load average at start {_loads(report.get('load_average_start'))}, "
        f"at end {_loads(report.get('load_average_end'))}",
        f"- {report['rounds']} timed round(s) after one warm-up epoch per run; median [min–max] over rounds; "
        f"FLOPs: {report['flop_rule']}",
        f"- float32 matmul peak: {_stat(report['peak_gflops']['square'], '.1f')} GFLOP/s "
        f"({report['peak_gflops']['square_size']}² product); "
        "network shapes: " + ", ".join(f"{w} {_stat(s, '.1f')}" for w, s in
                                        report["peak_gflops"]["network_shapes"].items()),
        "",
        "| workload | variant | s / epoch | CPU s / epoch | first epoch s | GFLOP/s | % of peak | % of shapes peak "
        "| × torch idiomatic | × torch tuned | × plain JAX | test acc. |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    speed = report["ratios"]["speedup"]
    for workload, variants in report["results"].items():
        for variant, r in variants.items():
            vs = speed.get(workload, {}).get(variant, {})
            cells = [workload, variant, _stat(r["seconds_per_epoch"], ".3f"),
                     f"{r['cpu_seconds_per_epoch']['median']:.3f}", f"{r['first_epoch_seconds']:.2f}",
                     f"{r['gflops']['median']:.1f}", f"{100 * r['fraction_of_peak']['median']:.0f}%",
                     f"{100 * r['fraction_of_shapes_peak']['median']:.0f}%"]
            cells += [f"{vs[b]['median']:.2f}×" if b in vs else "–" for b in TORCH_VARIANTS + ("jax_loop",)]
            cells.append(f"{100 * r['accuracy']:.1f}%" + (" (min of 8)" if "member_accuracy" in r else ""))
            lines.append("| " + " | ".join(cells) + " |")
    ratios = report["ratios"]
    lines += ["", "| target | value | threshold | met |", "|---|---|---|---|"]
    for t in report["targets"]:
        value = "not measured" if t["value"] is None else f"{t['value']:.3f}"
        met = "–" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['target']} | {value} | {t['threshold']} | {met} |")
    if "s8_member_over_w1_fit" in ratios:
        s8 = report["results"]["S8"]["jaxnet_sweep"]
        lines += ["", f"S8: {_stat(s8['seconds_per_epoch'], '.3f')} s per sweep epoch, "
                      f"{_stat(s8['seconds_per_epoch_per_member'], '.3f')} s per member; per member / W1 fit "
                      f"epoch {_stat(ratios['s8_member_over_w1_fit'], '.2f')}"]
    for note in report["notes"]:
        lines.append(f"\nNote: {note}")
    return "\n".join(lines) + "\n"


def _stat(s: dict[str, float], fmt: str) -> str:
    return f"{s['median']:{fmt}} [{s['min']:{fmt}}–{s['max']:{fmt}}]"


def _loads(values) -> str:
    return "n/a" if not values else " / ".join(f"{v:.2f}" for v in values)


def _default_manual_dir() -> Path | None:
    if os.environ.get("JAXNET_MANUAL_DIR"):
        return Path(os.environ["JAXNET_MANUAL_DIR"])
    fallback = SHARED / "data" / "mnist"
    return fallback if fallback.exists() else None


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_throughput",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5; 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="small subsets, one round: checks every variant trains (timings meaningless)")
    p.add_argument("--workloads", default="W1,W2,W3,S8", help="comma-separated (default: %(default)s)")
    p.add_argument("--variants", default="",
                   help=f"comma-separated subset of {', '.join(VARIANTS + SWEEP_VARIANTS)} (default: all)")
    p.add_argument("--json", type=Path, default=None, help="write the full results here")
    p.add_argument("--markdown", type=Path, default=None, help="write the table (Markdown) here")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="torch.set_num_threads (default: os.cpu_count(), every core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--manual-dir", type=Path, default=_default_manual_dir(),
                   help="folder with the four MNIST .gz files (env JAXNET_MANUAL_DIR; default: %(default)s)")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ["JAXNET_DATA_DIR"])
                   if os.environ.get("JAXNET_DATA_DIR") else None, help="tfds data dir / cache (env JAXNET_DATA_DIR)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    args.workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for w in args.workloads:
        if w not in WORKLOADS:
            p.error(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    for v in args.variants:
        if v not in VARIANTS + SWEEP_VARIANTS:
            p.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS + SWEEP_VARIANTS)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
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
