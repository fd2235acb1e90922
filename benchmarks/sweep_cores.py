"""Where an 8-member sweep's time goes on a CPU: how many cores one model already uses, and
what one member per core could reach at best.

    python -m benchmarks.sweep_cores [--rounds 5] [--quick] [--json FILE]

Every measurement runs in its own process (the CPU device count and the cores a process may
use are fixed when jax starts), timing ``engine.run_epoch`` on W1 (784-128-64-10, batch 128,
SGD momentum, no evaluation), median of ``--rounds`` epochs after the compiling one:

- ``W1 fit``: one model, every core (jaxnet's default: one CPU device per core).
- ``W1 fit, 1 core``: the same, the process pinned to one core with one device.
- ``S8 sweep``: the 8-member sweep on every core, its members sharded one device per core.
- ``S8 sweep, 1 device``: the same on one CPU device (``JAXNET_HOST_DEVICES=1``): XLA's own
  multi-threading across the cores instead of one device per core.
- ``S4 sweep, 1 core``: 4 members on one pinned core (the vmapped members' own cost).
- ``S8 as pinned halves``: two processes at once, each pinned to its own core and running
  4 members: one member per core with no thread of one device on the other's core.

The ratios say why "per member ≤ 0.5× a W1 fit epoch" needs one model to gain nothing from the
second core and two busy cores not to slow each other: the pinned halves' time per member over
a W1 ``fit`` epoch is exactly 0.5 × (a vmapped member's cost on one core) × (the second core's
gain for one model) × (the slowdown of two cores busy at once).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORKER = "benchmarks.sweep_cores"


def _measure(members: int, rounds: int, manual_dir: str, images: int | None = None) -> dict:
    """Runs in a worker process: seconds (wall, CPU) per epoch of a fit (members=0) or a sweep."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxnet import data, engine, mlp, train

    mnist = data.load("mnist", manual_dir=manual_dir)
    x = jnp.asarray(data.normalize(data.scale(data.flatten(mnist.x_train)), 0.5, 0.5))
    y = jnp.asarray(mnist.y_train)
    x, y = x[:images], y[:images]
    sizes = [784, 128, 64, 10]
    optimizer = train.make_optimizer("momentum", learning_rate=0.01, momentum=0.9)
    model = mlp.model(sizes, scheme="uniform")
    common = dict(epochs=10 ** 6, batch_size=128, eval_train=False, log=None)
    if members == 0:
        run, state = engine.start(model, model.init(jax.random.PRNGKey(0)), optimizer, (x, y), **common)
    else:
        run, state = engine.start_sweep(model, optimizer, (x, y),
                                        learning_rate=list(np.geomspace(0.002, 0.05, members)),
                                        init_seed=list(range(members)), data_seed=list(range(members)), **common)
    state = engine.run_epoch(run, state)  # compiles
    wall, cpu = [], []
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        state = engine.run_epoch(run, state)
        jax.block_until_ready(state.params)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"wall": statistics.median(wall), "cpu": statistics.median(cpu), "devices": jax.device_count(),
            "cores": len(os.sched_getaffinity(0)), "per_round": wall}


def _start(members: int, args: argparse.Namespace, core: int | None, one_device: bool = False) -> subprocess.Popen:
    env = dict(os.environ)
    if core is not None or one_device:
        env["JAXNET_HOST_DEVICES"] = "1"
    command = [sys.executable, "-m", WORKER, "--worker", str(members), "--rounds", str(args.rounds),
               "--manual-dir", args.manual_dir] + ["--quick"] * args.quick
    # pinned before jax starts: jax sizes its thread pool by the cores the process may use
    preexec = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, preexec_fn=preexec)


def _result(process: subprocess.Popen) -> dict:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"error: a measurement process failed (exit {process.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def markdown(report: dict) -> str:
    """The benchmarks/README block: the table, the ratios, and what they say about the target."""
    lines = [f"{report['cores']} cores, median of {report['rounds']} epochs after the compiling one; load average "
             f"{', '.join(f'{v:.2f}' for v in report['load_average'])} at the end.", "",
             "| Arrangement | ms per epoch | CPU ms per epoch | Devices |", "|---|---:|---:|---:|"]
    for name, s in report["seconds"].items():
        lines.append(f"| {name} | {1e3 * s['wall']:.0f} | {1e3 * s['cpu']:.0f} | {s['devices']} |")
    lines.append("")
    lines += [f"- {name}: {value:.3f}" for name, value in report["ratios"].items()]
    r, sec = report["ratios"], report["seconds"]
    gain, member = r["W1 speed-up from the second core"], r["S4 member / W1 fit, both on 1 core"]
    slowdown = sec["S8 as pinned halves"]["wall"] / sec["S4 sweep, 1 core"]["wall"]
    pinned, sharded = r["S8 pinned halves per member / W1 fit"], r["S8 per member / W1 fit"]
    lines += ["", "The 0.5× target holds if one model gained nothing from the second core and two busy cores "
              f"did not slow each other. Here one model runs {gain:.2f}× faster with the second core (keeping "
              f"{r['W1 cores busy (CPU / wall)']:.2f} cores busy), two pinned processes at once each take "
              f"{slowdown:.2f}× as long as one alone, and a vmapped member costs {member:.2f}× a single model on "
              f"one core. One member per core, the pinned halves, took {pinned:.2f}× a W1 `fit` epoch per member "
              f"= 0.5 × {member:.2f} × {gain:.2f} × {slowdown:.2f}: "
              + ("above" if pinned > 0.5 else "at or below") + " the target. The sharded sweep "
              f"took {sharded:.2f}×, " + ("less than the pinned halves (each device's products may also use the other "
                                          "core)" if sharded < pinned else "more than the pinned halves")
              + ", and one device with "
              f"XLA's own threads {r['S8 on 1 device / S8 sharded one device per core']:.2f}× as long as the "
              "sharded sweep."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--manual-dir", default=os.environ.get("JAXNET_MANUAL_DIR", "../shared/data/mnist"))
    p.add_argument("--quick", action="store_true", help="2,560 images, one round: checks the script only")
    p.add_argument("--json", default=None)
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds = 1
    if args.worker is not None:
        print(json.dumps(_measure(args.worker, args.rounds, args.manual_dir, 2560 if args.quick else None)))
        return {}
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("error: this process may use one core only — sweep_cores compares one core with several")
    run = lambda members, core=None, one=False: _result(_start(members, args, core, one))  # noqa: E731
    seconds = {"W1 fit": run(0), "W1 fit, 1 core": run(0, cores[0]), "S8 sweep": run(8),
               "S8 sweep, 1 device": run(8, one=True), "S4 sweep, 1 core": run(4, cores[0])}
    halves = [_start(4, args, core) for core in cores[:2]]
    pair = [_result(h) for h in halves]
    seconds["S8 as pinned halves"] = {"wall": max(r["wall"] for r in pair), "cpu": sum(r["cpu"] for r in pair),
                                      "devices": 2, "cores": sum(r["cores"] for r in pair), "per_round": [max(w) for w in zip(*(r["per_round"] for r in pair))]}
    w1 = seconds["W1 fit"]["wall"]
    ratios = {
        "W1 speed-up from the second core": seconds["W1 fit, 1 core"]["wall"] / w1,
        "W1 cores busy (CPU / wall)": seconds["W1 fit"]["cpu"] / w1,
        "S4 member / W1 fit, both on 1 core": seconds["S4 sweep, 1 core"]["wall"] / 4 / seconds["W1 fit, 1 core"]["wall"],
        "S8 per member / W1 fit": seconds["S8 sweep"]["wall"] / 8 / w1,
        "S8 pinned halves per member / W1 fit": seconds["S8 as pinned halves"]["wall"] / 8 / w1,
        "S8 sweep / pinned halves": seconds["S8 sweep"]["wall"] / seconds["S8 as pinned halves"]["wall"],
        "S8 on 1 device / S8 sharded one device per core": seconds["S8 sweep, 1 device"]["wall"] / seconds["S8 sweep"]["wall"],
    }
    report = {"quick": args.quick, "rounds": args.rounds, "cores": len(cores), "load_average": os.getloadavg(),
              "seconds": seconds, "ratios": ratios}
    print(markdown(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
