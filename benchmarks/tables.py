"""The benchmark's Markdown, generated from its JSON: never typed by hand.

    python -m benchmarks.tables benchmarks/results_cpu.json           # rewrite the README blocks
    python -m benchmarks.tables benchmarks/results_cpu.json --check   # exit 1 when one is stale

The blocks, each between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` lines:

- ``bench`` in README.md: the compact table (seconds per epoch per workload and variant)
  and the headline ratios;
- ``bench-results`` in benchmarks/README.md: the full table, the ratios and the targets;
- ``scan-minimal`` in benchmarks/README.md: the source of ``benchmarks/scan_minimal.py``;
- ``scan-minimal-ab``, ``sweep-cores`` and ``study-profile`` in benchmarks/README.md:
  ``scan_minimal_ab_cpu.json`` (from ``python -m benchmarks.scan_minimal``), ``sweep_cores_cpu.json``
  (``python -m benchmarks.sweep_cores``) and ``study_profile_cpu.json`` (``python -m benchmarks.study_profile``).

Every timing cell is the median over rounds with the min–max beside it, so the noise shows.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_JSON = REPO / "benchmarks" / "results_cpu.json"
SCAN_MINIMAL = REPO / "benchmarks" / "scan_minimal.py"


def _sweep_cores(report: dict) -> str:
    from benchmarks import sweep_cores

    return sweep_cores.markdown(report)


def _study_profile(report: dict) -> str:
    from benchmarks import study_profile

    cache = "on (programs compiled by an earlier run were loaded)" if report.get("compile_cache") else \
        "off (every program compiled, as on a first run)"
    return (f"Measured {report['date']}, {report['cores']} cores, compilation cache {cache}.\n\n"
            + study_profile.markdown(report["studies"]))


def _scan_minimal_ab(report: dict) -> str:
    when = f" on {report['date']}" if report.get("date") else ""
    lines = [f"`python -m benchmarks.scan_minimal --rounds {report['rounds']}`{when}: {report['devices']} CPU devices, "
             f"load average {', '.join(f'{v:.2f}' for v in report['load_average'])} at the end.", "",
             "| run | ms per epoch | CPU ms per epoch |", "|---|---:|---:|"]
    lines += [f"| {name} | {1e3 * seconds:.1f} | {1e3 * report['cpu_seconds'][name]:.1f} |"
              for name, seconds in report["seconds"].items()]
    lines += ["", "| within-round ratio | median (min–max) | CPU-time ratio |", "|---|---|---:|"]
    lines += [f"| {label} | {r['median']:.3f} ({r['min']:.3f}–{r['max']:.3f}) | {r['cpu_median']:.3f} |"
              for label, r in report["ratios"].items()]
    return "\n".join(lines) + "\n"


# the profiles behind the unmet targets, each with its generator: (block, JSON, markdown)
PROFILES = (
    ("scan-minimal-ab", REPO / "benchmarks" / "scan_minimal_ab_cpu.json", _scan_minimal_ab),
    ("sweep-cores", REPO / "benchmarks" / "sweep_cores_cpu.json", _sweep_cores),
    ("study-profile", REPO / "benchmarks" / "study_profile_cpu.json", _study_profile),
)
COMPACT_VARIANTS = {  # column title: variant
    "jaxnet `fit` epoch": "jaxnet_fit",
    "leanest JAX scan": "jax_scan_minimal",
    "plain jitted step": "jax_loop",
    "PyTorch idiomatic": "torch_idiomatic",
    "PyTorch tuned": "torch_tuned",
    "`torch.compile`": "torch_compile",
    "NumPy": "numpy",
}
FIT = "jaxnet_fit"


# --- formatting -----------------------------------------------------------------------------


def num(value: float | None) -> str:
    """A number with 3–4 significant digits; "–" for None."""
    if value is None:
        return "–"
    magnitude = abs(value)
    return f"{value:.0f}" if magnitude >= 100 else f"{value:.1f}" if magnitude >= 10 else (
        f"{value:.2f}" if magnitude >= 1 else f"{value:.3f}")


def stat(entry: dict[str, float] | None, scale: float = 1.0, suffix: str = "") -> str:
    """``median (min–max)``, each times ``scale``; "–" when not measured."""
    if not entry:
        return "–"
    m, lo, hi = (num(entry[k] * scale) for k in ("median", "min", "max"))
    return f"{m}{suffix} ({lo}–{hi}{suffix})"


def percent(entry: dict[str, float] | None) -> str:
    if not entry:
        return "–"
    return f"{100 * entry['median']:.0f}% ({100 * entry['min']:.0f}–{100 * entry['max']:.0f}%)"


def _describe_device(device: Any) -> str:
    if isinstance(device, str):  # older JSON
        return device
    return (f"{device['platform']} ({device['device_kind']}) × {device['count']}; "
            f"host CPU {device['host_cpu']}, {device['host_cores']} cores")


def _loads(values) -> str:
    return "n/a" if not values else " / ".join(f"{v:.2f}" for v in values)


def _speed(report, workload: str, a: str, b: str) -> dict | None:
    """seconds(b) / seconds(a), per round (how many times faster a is than b)."""
    return report["ratios"]["speedup"].get(workload, {}).get(a, {}).get(b)


def _sweeps(report) -> list[str]:
    return [w for w, spec in report["workloads"].items() if spec.get("members", 1) > 1]


def _on_gpu(report) -> bool:
    device = report.get("device")
    return isinstance(device, dict) and device.get("platform") == "gpu"


# --- the tables ---------------------------------------------------------------------------


def full(report: dict[str, Any]) -> str:
    """The whole report: environment, the per-run table, ratios, targets, notes."""
    threads, peak = report["threads"], report["peak_gflops"]
    lines = [
        f"Run `{report['command']}` on {report['date']}"
        + (" (**--quick**: tiny data, one round: the timings mean nothing)" if report["quick"] else ""),
        "",
        f"- device: {_describe_device(report['device'])}; {report['platform']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v),
        f"- threads: os.cpu_count {threads['os.cpu_count']}, torch {threads['torch.get_num_threads']} "
        f"(interop {threads['torch.get_num_interop_threads']}), env "
        + (", ".join(f"{k}={v}" for k, v in threads["env"].items() if v) or "no thread variables set"),
        f"- load average (1/5/15 min) at start {_loads(report.get('load_average_start'))}, "
        f"at end {_loads(report.get('load_average_end'))}",
        f"- {report['rounds']} timed round(s) after one warm-up epoch per run; every cell is the median over "
        "rounds with (min–max) beside it; ratios are taken within a round, then summarised",
        f"- FLOPs: {report['flop_rule']}",
        f"- float32 matmul rate: {stat(peak['square'])} GFLOP/s ({peak['square_size']}² product); "
        "the networks' own step shapes alone: "
        + ", ".join(f"{w} {stat(s)}" for w, s in peak["network_shapes"].items()),
        "",
        "| workload | variant | s / epoch | s / s(`fit`) | CPU s / epoch | first epoch s | GFLOP/s | "
        f"% of {peak['square_size']}² rate | % of own-shapes rate | test acc. |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for workload, variants in report["results"].items():
        for variant, r in variants.items():
            relative = "1" if variant == FIT else stat(_speed(report, workload, FIT, variant))
            accuracy = f"{100 * r['accuracy']:.1f}%" + (
                f" (min of {len(r['member_accuracy'])})" if "member_accuracy" in r else "")
            cells = [workload, f"`{variant}`", stat(r["seconds_per_epoch"]), relative,
                     num(r["cpu_seconds_per_epoch"]["median"]), num(r["first_epoch_seconds"]),
                     stat(r.get("gflops")), percent(r.get("fraction_of_peak")),
                     percent(r.get("fraction_of_shapes_peak")), accuracy]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "`s / s(fit)`: the variant's seconds over `fit`'s in the same round (above 1: `fit` is faster).",
              "", *ratio_table(report), ""]
    for workload in _sweeps(report):
        sweep = report["results"].get(workload, {}).get("jaxnet_sweep")
        if sweep:
            members = report["workloads"][workload]["members"]
            lines.append(f"{workload} ({members} members): {stat(sweep['seconds_per_epoch'])} s per sweep epoch, "
                         f"{stat(sweep['seconds_per_epoch_per_member'])} s per member; per member / W1 `fit` epoch "
                         f"{stat(report['ratios'].get(f'{workload.lower()}_member_over_w1_fit'))}")
            lines.append("")
    lines += ["| target | value | threshold | met |", "|---|---|---|---|"]
    for t in report["targets"]:
        value = "not measured" if t["value"] is None else f"{t['value']:.3f}"
        met = "–" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['target']} | {value} | {'–' if t['threshold'] is None else t['threshold']} | {met} |")
    for note in report["notes"]:
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"


def ratio_table(report: dict[str, Any]) -> list[str]:
    """Named within-round ratios, one column per single-model workload."""
    workloads = [w for w in report["results"] if report["workloads"][w].get("members", 1) == 1]
    ratios = report["ratios"]
    rows = [("`fit` / `scan_minimal` seconds", lambda w: ratios.get("fit_over_scan_minimal_seconds", {}).get(w)),
            ("`fit` / NumPy seconds", lambda w: ratios.get("fit_over_numpy_seconds", {}).get(w)),
            ("hand-derived / autodiff seconds", lambda w: ratios.get("manual_over_autodiff_seconds", {}).get(w))]
    for variant in ("jax_loop", "torch_idiomatic", "torch_tuned", "torch_compile"):
        rows.append((f"`fit` speedup over `{variant}`", lambda w, v=variant: _speed(report, w, FIT, v)))
    lines = ["| within-round ratio | " + " | ".join(workloads) + " |", "|---|" + "---|" * len(workloads)]
    for title, get in rows:
        lines.append(f"| {title} | " + " | ".join(stat(get(w)) for w in workloads) + " |")
    return lines


def compact(report: dict[str, Any], source: str = "benchmarks/results_cpu.json") -> str:
    """The top-level README's table: seconds per epoch, the headline ratios, what is unmeasured."""
    ratios, results = report["ratios"], report["results"]
    lines = [
        f"<!-- generated by `python -m benchmarks.tables {source}`; edit the JSON's run, not this text -->",
        f"Device: {_describe_device(report['device'])}. Seconds per epoch (60,000 MNIST images, batch 128), "
        f"median (min–max) of {report['rounds']} interleaved rounds"
        + (" of a **--quick** run (meaningless timings)" if report["quick"] else "")
        + f" on {report['date'][:10]}; the JSON is `{source}`"
        + (f" (that run's timings, re-analysed on {report['reanalysed']['date'][:10]} by the current FLOP count, "
           "ratios and targets, nothing re-measured; a variant the run did not have shows as not measured)"
           if "reanalysed" in report else "") + ".",
        "",
        "| workload | " + " | ".join(COMPACT_VARIANTS) + " |",
        "|---|" + "---|" * len(COMPACT_VARIANTS),
    ]
    for workload, variants in results.items():
        members = report["workloads"][workload].get("members", 1)
        if members > 1:
            sweep = variants.get("jaxnet_sweep")
            cell = (f"{stat(sweep['seconds_per_epoch'])}; {stat(sweep['seconds_per_epoch_per_member'])} per member"
                    if sweep else "not measured")
            lines.append(f"| {workload}: W1 × {members}, one `sweep` | {cell} |" + " |" * (len(COMPACT_VARIANTS) - 1))
            continue
        cells = [stat(variants[v]["seconds_per_epoch"]) if v in variants else "not measured"
                 for v in COMPACT_VARIANTS.values()]
        lines.append(f"| {workload} {_short_title(report['workloads'][workload])} | " + " | ".join(cells) + " |")
    lines.append("")
    per = lambda name: ", ".join(f"{w} {stat(v)}" for w, v in ratios.get(name, {}).items()) or "not measured"  # noqa: E731
    lines.append(f"- `fit` / `scan_minimal` (the leanest correct JAX epoch) seconds: {per('fit_over_scan_minimal_seconds')}")
    lines.append(f"- `fit` / NumPy seconds: {per('fit_over_numpy_seconds')}")
    lines.append(f"- hand-derived / autodiff gradients, seconds: {per('manual_over_autodiff_seconds')}")
    speeds = [f"{stat(_speed(report, 'W1', FIT, v), suffix='×')} {label}" for v, label in
              (("torch_idiomatic", "idiomatic"), ("torch_tuned", "tuned"), ("torch_compile", "`torch.compile`d"))
              if _speed(report, "W1", FIT, v)]
    lines.append("- W1 `fit` speedup over PyTorch: " + ("; ".join(speeds) if speeds else "not measured")
                 + " (targets 3.5× idiomatic, 2.5× tuned)")
    w1 = results.get("W1", {}).get(FIT)
    if w1 and w1.get("fraction_of_peak"):
        lines.append(f"- W1 `fit`, executed matmul FLOPs: {percent(w1['fraction_of_peak'])} of the "
                     f"{report['peak_gflops']['square_size']}² matmul rate (target 60%), "
                     f"{percent(w1.get('fraction_of_shapes_peak'))} of the rate W1's own step shapes reach alone")
    thresholds = {t["target"].split(" seconds per member")[0]: t["threshold"] for t in report["targets"]
                  if " seconds per member / W1 fit epoch" in t["target"]}
    for workload in _sweeps(report):
        value = ratios.get(f"{workload.lower()}_member_over_w1_fit")
        if value:
            lines.append(f"- {workload} seconds per member / W1 `fit` epoch: {stat(value)}"
                         + (f" (target ≤ {thresholds[workload]:g})" if thresholds.get(workload) else ""))
    unmet = [t["target"] for t in report["targets"] if t["met"] is False]
    lines.append("- targets not met: " + ("; ".join(unmet) if unmet else "none"))
    if not _on_gpu(report):
        lines.append("- **GPU targets not measured** (W1 `fit` < 20 ms per epoch, a 64-member sweep < 4× one "
                     "model's epoch, the CNN epoch): this run had no GPU. On a GPU machine: "
                     "`pip install -e '.[cuda]'`, then `make bench` (it adds the S64 and C1 workloads there).")
    return "\n".join(lines) + "\n"


def _short_title(spec: dict[str, Any]) -> str:
    sizes = spec.get("sizes")
    return ("-".join(str(s) for s in sizes) + f" {spec['hidden']}") if sizes else spec["title"].split(" (")[0]


def scan_minimal_block(source: str) -> str:
    return "```python\n" + source.rstrip("\n") + "\n```\n"


# --- the README blocks ------------------------------------------------------------------------


def replace_block(text: str, name: str, content: str, where: str = "the file") -> str:
    """``text`` with the lines between ``<!-- name:begin -->`` and ``<!-- name:end -->``
    replaced by ``content``.

    Raises:
      ValueError: when the markers are missing or out of order.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"{where} has no {begin} … {end} block; add those two lines where the generated text goes")
    return text[: i + len(begin)] + "\n" + content.rstrip("\n") + "\n" + text[j:]


def render(report: dict[str, Any], repo: Path = REPO, source: str = "benchmarks/results_cpu.json") -> dict[Path, str]:
    """Every README that holds a block, with its blocks regenerated: ``{path: new text}``."""
    top, bench = repo / "README.md", repo / "benchmarks" / "README.md"
    bench_text = replace_block(bench.read_text(), "bench-results", full(report), str(bench))
    bench_text = replace_block(bench_text, "scan-minimal", scan_minimal_block((repo / "benchmarks" / "scan_minimal.py")
                                                                              .read_text()), str(bench))
    for block, json_path, generate in PROFILES:
        path = repo / json_path.relative_to(REPO)
        if path.is_file():
            bench_text = replace_block(bench_text, block, generate(json.loads(path.read_text())), str(bench))
    return {top: replace_block(top.read_text(), "bench", compact(report, source), str(top)), bench: bench_text}


def stale(json_path: Path = DEFAULT_JSON, repo: Path = REPO) -> list[Path]:
    """The READMEs whose generated blocks differ from what ``json_path`` gives."""
    report = json.loads(Path(json_path).read_text())
    return [path for path, text in render(report, repo, _relative(json_path, repo)).items() if path.read_text() != text]


def _relative(path: Path, repo: Path) -> str:
    try:
        return Path(path).resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tables", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("json", type=Path, nargs="?", default=DEFAULT_JSON, help="a train_throughput --json file")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a README block is stale")
    args = p.parse_args(argv)
    if not args.json.is_file():
        print(f"error: {args.json}: no such file — run python -m benchmarks.train_throughput --json {args.json}",
              file=sys.stderr)
        return 2
    if args.check:
        paths = stale(args.json)
        for path in paths:
            print(f"stale: {_relative(path, REPO)} (run python -m benchmarks.tables {args.json})", file=sys.stderr)
        return 1 if paths else 0
    report = json.loads(args.json.read_text())
    for path, text in render(report, REPO, _relative(args.json, REPO)).items():
        if path.read_text() != text:
            path.write_text(text)
            print(f"updated {_relative(path, REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
