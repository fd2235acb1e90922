"""Where ``python -m experiments.all``'s time goes, study by study.

    python -m benchmarks.study_profile [--out runs/profile] [--only a b] [--quick] [--compile-cache]
                                       [--json FILE] [--markdown FILE]

Runs the studies in full, in this process, one after the other (as ``experiments.all`` does),
and splits each study's wall clock into: XLA compilation (backend compile, plus tracing and
lowering to StableHLO, from ``jax.monitoring``), loading the data, writing the report (figures
and prose), and the rest: training and evaluation on the device, with the engine's host work. The studies'
persistent compilation cache is off unless ``--compile-cache``: a profile of a first run.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import time
from pathlib import Path

TARGET_SECONDS = 8 * 60  # issue 12: every study, in full, under 8 minutes on the 2-core CPU
COMPILE_EVENTS = ("/jax/core/compile/backend_compile_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/jaxpr_trace_duration")


def _timed(totals: collections.Counter, key: str, fn):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - started
    return wrapper


def profile(names: list[str], out: Path, quick: bool = False) -> list[dict]:
    import jax

    from experiments import all as all_studies
    from experiments.lib import study as study_lib

    totals: collections.Counter = collections.Counter()

    def listener(event: str, duration: float, **_: object) -> None:
        if event in COMPILE_EVENTS:
            totals["compile"] += duration

    jax.monitoring.register_event_duration_secs_listener(listener)
    study_lib.write_report = _timed(totals, "report", study_lib.write_report)
    study_lib.Study.load = _timed(totals, "data", study_lib.Study.load)
    rows = []
    for name in names:
        totals.clear()
        started = time.perf_counter()
        status = all_studies.main(["--only", name, "--out", str(out), "--quiet", "--progress", "lines"]
                                  + ["--quick"] * quick)
        wall = time.perf_counter() - started
        parts = {k: totals[k] for k in ("compile", "data", "report")}
        rows.append({"study": name, "ok": status == 0, "wall": wall, **parts,
                     "train": wall - sum(parts.values())})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| Study | Wall clock (s) | XLA compile | Data | Report | Training and the rest |",
             "|---|---:|---:|---:|---:|---:|"]
    total = collections.Counter()
    for r in rows:
        lines.append(f"| {r['study']} | {r['wall']:.0f} | {r['compile']:.1f} | {r['data']:.1f} | {r['report']:.1f} "
                     f"| {r['train']:.0f} |")
        total.update({k: r[k] for k in ("wall", "compile", "data", "report", "train")})
    lines.append(f"| **all** | **{total['wall']:.0f}** | **{total['compile']:.0f}** | **{total['data']:.0f}** "
                 f"| **{total['report']:.0f}** | **{total['train']:.0f}** |")
    share = {k: 100 * total[k] / total["wall"] for k in ("compile", "data", "report", "train")} if total["wall"] else {}
    minutes, seconds = divmod(round(total["wall"]), 60)
    target = TARGET_SECONDS
    lines += ["", f"{len(rows)} studies in {minutes} min {seconds:02d} s: "
              + (f"under the {target // 60}-minute target" if total["wall"] < target else
                 f"{total['wall'] - target:.0f} s over the {target // 60}-minute target")
              + (f"; XLA compilation {share['compile']:.0f}%, data {share['data']:.0f}%, reports "
                 f"{share['report']:.0f}%, training and evaluation {share['train']:.0f}%." if share else ".")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    from experiments import STUDIES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/profile"))
    p.add_argument("--only", nargs="+", default=list(STUDIES))
    p.add_argument("--quick", action="store_true", help="the studies' --quick mode (checks the profiler only)")
    p.add_argument("--compile-cache", action="store_true",
                   help="use the studies' persistent compilation cache (default: off, so that every program "
                        "compiles, as on a first run)")
    p.add_argument("--json", default=None)
    p.add_argument("--markdown", default=None)
    args = p.parse_args(argv)
    unknown = [n for n in args.only if n not in STUDIES]
    if unknown:
        raise SystemExit(f"error: --only: unknown studies {', '.join(unknown)} — choose from {', '.join(STUDIES)}")
    if not args.compile_cache:
        os.environ["JAXNET_COMPILATION_CACHE"] = "off"
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    rows = profile(args.only, args.out, args.quick)
    table = markdown(rows)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"date": started, "cores": os.cpu_count(),
                                               "compile_cache": args.compile_cache,
                                               "load_average_end": os.getloadavg(), "studies": rows}, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(table)
    return rows


if __name__ == "__main__":
    main()
