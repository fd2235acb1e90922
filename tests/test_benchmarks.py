"""The throughput benchmark: --quick trains every variant to a sane accuracy, the JSON carries
the documented keys, the FLOP count is the executed one, bad output paths are refused before
anything runs, and the README tables are what the generator makes of the committed JSON.
No timing assertions (timings of --quick are meaningless)."""
import json
import os
import subprocess
import sys

import pytest

from benchmarks import peers, tables, train_throughput

REPORT_KEYS = ("command", "date", "quick", "rounds", "batch_size", "flop_rule", "device", "platform", "versions",
               "threads", "load_average_start", "load_average_end", "notes", "workloads", "peak_gflops", "results",
               "ratios", "targets")
RESULT_KEYS = ("title", "seconds_per_epoch", "first_epoch_seconds", "compile_seconds", "gflops",
               "fraction_of_peak", "fraction_of_shapes_peak", "accuracy")
DEVICE_KEYS = {"platform", "device_kind", "count", "host_cpu", "host_cores"}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory, mnist_dir):
    path = tmp_path_factory.mktemp("bench") / "quick.json"
    markdown = path.with_suffix(".md")
    train_throughput.main(["--quick", "--quiet", "--manual-dir", str(mnist_dir), "--json", str(path),
                           "--markdown", str(markdown)])
    return json.loads(path.read_text()), markdown.read_text()


def test_quick_json_has_the_documented_keys(quick_report):
    report, _ = quick_report
    for key in REPORT_KEYS:
        assert key in report, key
    assert report["quick"] is True
    assert report["versions"]["jax"] and report["threads"]["os.cpu_count"]
    assert set(report["device"]) == DEVICE_KEYS
    assert report["device"]["platform"] == train_throughput.jax.devices()[0].platform
    assert report["device"]["count"] == train_throughput.jax.device_count()
    for key in ("square", "square_size", "network_shapes", "per_round"):
        assert key in report["peak_gflops"]
    for stats in report["peak_gflops"]["network_shapes"].values():
        assert stats["median"] > 0
    for variants in report["results"].values():
        for entry in variants.values():
            for key in RESULT_KEYS:
                assert key in entry, key
            for key in ("median", "min", "max", "per_round"):
                assert key in entry["seconds_per_epoch"]
    for target in report["targets"]:
        assert set(target) == {"target", "value", "threshold", "met"}
    for name in ("manual_over_autodiff_seconds", "fit_over_scan_minimal_seconds", "fit_over_numpy_seconds",
                 "s8_member_over_w1_fit"):
        assert name in report["ratios"], name
    # on a CPU the GPU targets are reported as not measured, never as met
    gpu = [t for t in report["targets"] if t["target"].startswith("GPU")]
    assert len(gpu) == 3 and all(t["value"] is None and t["met"] is None for t in gpu)


def test_quick_runs_every_variant_to_a_sane_accuracy(quick_report):
    report, _ = quick_report
    torch_ok = peers.torch_or_none()[0] is not None
    expected = {(w, v) for w in train_throughput.CPU_WORKLOADS for v in train_throughput.WORKLOADS[w]["variants"]
                if (torch_ok or v not in train_throughput.TORCH_VARIANTS) and (v != "torch_compile" or w == "W1")}
    ran = {(w, v) for w, variants in report["results"].items() for v in variants}
    assert ran == expected
    assert {v for _, v in ran} == {v for v in train_throughput.VARIANTS
                                   if torch_ok or v not in train_throughput.TORCH_VARIANTS}
    if not torch_ok:
        assert any("PyTorch" in note for note in report["notes"])
    for workload, variants in report["results"].items():
        for variant, entry in variants.items():
            assert entry["accuracy"] > train_throughput.SANE_ACCURACY, (workload, variant, entry["accuracy"])
    assert len(report["results"]["S8"]["jaxnet_sweep"]["member_accuracy"]) == 8
    # the speedups of one round are reciprocal
    speed = report["ratios"]["speedup"]["W1"]
    assert speed["jaxnet_fit"]["jax_loop"]["median"] * speed["jax_loop"]["jaxnet_fit"]["median"] == pytest.approx(1)


def test_quick_markdown_is_the_generated_report(quick_report):
    report, markdown = quick_report
    assert markdown == tables.full(report)
    assert "| W1 | `jaxnet_fit` |" in markdown and "| target |" in markdown and "--quick" in markdown


def test_executed_flops_skip_only_the_first_layers_input_gradient():
    # W1: W = 784·128, 128·64, 64·10; forward and weight gradient everywhere, input gradient past layer 1
    weights = [784 * 128, 128 * 64, 64 * 10]
    assert train_throughput.executed_flops_per_example((784, 128, 64, 10)) == (
        2 * sum(weights) + 2 * sum(weights) + 2 * sum(weights[1:]))
    # the same count as the matmuls the peak programme runs for one step, counted independently
    for sizes in ((784, 128, 64, 10), (784, 20, 10), (784, 1024, 1024, 10)):
        step = sum(dot[3] for dot in train_throughput.network_dots(sizes))
        assert step == train_throughput.BATCH * train_throughput.executed_flops_per_example(sizes)
        assert step < train_throughput.BATCH * 6 * train_throughput.weight_count(sizes)  # below the nominal 6·W·N


def test_numpy_gradients_match_jaxnet_backprop():
    import jax
    import numpy as np

    from jaxnet import backprop, losses, mlp
    for hidden, loss in (("relu", "softmax_cross_entropy"), ("sigmoid", "sigmoid_cross_entropy")):
        params = peers.numpy_init((6, 5, 4, 3), seed=0)
        rng = np.random.default_rng(1)
        x, y = rng.normal(size=(7, 6)).astype(np.float32), rng.integers(0, 3, 7).astype(np.int32)
        value, grads = peers.numpy_loss_and_grads(params, x, y, hidden=hidden, loss=loss)
        ref_value, _, ref_grads = backprop.loss_and_grads(jax.tree.map(jax.numpy.asarray, params), x, y,
                                                           activation=mlp.activation(hidden), loss=losses.get(loss))
        np.testing.assert_allclose(value, ref_value, rtol=1e-5)
        for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


# --- output paths -------------------------------------------------------------------------


def _run_benchmark(*args, cwd):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "benchmarks.train_throughput", "--quick", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_bad_output_paths_are_refused_before_anything_runs(tmp_path):
    repo = train_throughput.REPO
    folder = tmp_path / "a_folder"
    folder.mkdir()
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for flag, path in (("--json", folder), ("--markdown", a_file / "sub" / "bench.md")):
        result = _run_benchmark(flag, str(path), cwd=repo)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {flag} {path}: ") and " — " in lines[0], lines
        assert "Traceback" not in result.stderr and result.stdout == ""
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing created


def test_output_path_problem(tmp_path):
    problem = train_throughput.output_path_problem
    assert problem(tmp_path / "new" / "deeper" / "bench.json") is None  # parents are created at write time
    assert not (tmp_path / "new").exists()
    assert "is a directory" in problem(tmp_path)
    (tmp_path / "f").write_text("")
    assert "is a file, not a folder" in problem(tmp_path / "f" / "bench.json")
    if os.geteuid() != 0:  # root writes anywhere, so a read-only folder only stops others
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            assert "cannot write in" in problem(locked / "bench.json")
        finally:
            locked.chmod(0o755)
    assert os.listdir(tmp_path) in (["f"], ["f", "locked"], ["locked", "f"])  # the probe left nothing


# --- the generated README blocks ----------------------------------------------------------


def test_readme_blocks_equal_what_the_committed_json_gives():
    stale = tables.stale(tables.DEFAULT_JSON)
    assert stale == [], f"run: python -m benchmarks.tables {tables.DEFAULT_JSON}"


def test_readme_quotes_scan_minimal_verbatim():
    readme = (train_throughput.REPO / "benchmarks" / "README.md").read_text()
    assert tables.scan_minimal_block(tables.SCAN_MINIMAL.read_text()) in readme


def test_committed_json_records_the_device_and_honest_flops():
    report = json.loads(tables.DEFAULT_JSON.read_text())
    assert set(report["device"]) == DEVICE_KEYS
    assert report["flop_rule"].startswith("executed")
    w1 = report["workloads"]["W1"]
    assert w1["gflop_per_epoch"] == pytest.approx(
        train_throughput.executed_flops_per_example(w1["sizes"]) * w1["examples_per_epoch"] / 1e9)


def test_replace_block():
    text = "a\n<!-- t:begin -->\nold\n<!-- t:end -->\nz\n"
    assert tables.replace_block(text, "t", "new 1\nnew 2\n") == "a\n<!-- t:begin -->\nnew 1\nnew 2\n<!-- t:end -->\nz\n"
    with pytest.raises(ValueError, match="no <!-- u:begin -->"):
        tables.replace_block(text, "u", "x")


def test_cells_show_the_median_and_the_range():
    assert tables.stat({"median": 0.3714, "min": 0.3431, "max": 0.6506}) == "0.371 (0.343–0.651)"
    assert tables.stat(None) == "–"
    assert tables.percent({"median": 0.57, "min": 0.32, "max": 0.616}) == "57% (32–62%)"


def test_hvp_cost_measures_both_programs():
    from benchmarks import hvp_cost

    m = hvp_cost.measure(rounds=1, reps=2)
    # forward-over-reverse does more work than one gradient, and the count must say so
    assert m["hvp_flops"] > m["grad_flops"] > 0 and m["grad_seconds"] > 0 and m["hvp_seconds"] > 0


def test_checkpoint_save_times_every_save_and_every_save_lands():
    from benchmarks import checkpoint_save

    m = checkpoint_save.measure(saves=4, epoch_seconds=0.0)  # back to back: each waits for the previous write
    assert (m["saves"], m["newest_step"], m["leaves"]) == (3, 3, 20) and 0 < m["median_ms"] <= m["max_ms"]


# --- benchmarks.study_profile and benchmarks.sweep_cores ------------------------------------


def test_study_profile_splits_a_study_into_its_parts(tmp_path):
    from benchmarks import study_profile

    path = tmp_path / "profile.json"
    rows = study_profile.main(["--only", "logistic_regression", "--quick", "--out", str(tmp_path / "runs"),
                               "--json", str(path), "--markdown", str(tmp_path / "profile.md")])
    (row,) = rows
    assert row["study"] == "logistic_regression" and row["ok"]
    assert (tmp_path / "runs" / "logistic_regression" / "report.md").exists()
    # every part was observed: the study compiled programs, read MNIST, drew its figures, trained
    assert all(row[part] > 0 for part in ("compile", "data", "report", "train"))
    assert row["compile"] + row["data"] + row["report"] < row["wall"]
    assert json.loads(path.read_text())["studies"] == rows
    assert "| logistic_regression |" in (tmp_path / "profile.md").read_text()


@pytest.mark.slow  # six measuring processes on full MNIST: about a minute
def test_sweep_cores_measures_every_arrangement(tmp_path, mnist_dir):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("sweep_cores compares one core with two; this process may use one")
    from benchmarks import sweep_cores

    path = tmp_path / "cores.json"
    report = sweep_cores.main(["--quick", "--manual-dir", str(mnist_dir), "--json", str(path)])
    assert json.loads(path.read_text())["ratios"] == pytest.approx(report["ratios"])
    seconds = report["seconds"]
    assert set(seconds) == {"W1 fit", "W1 fit, 1 core", "S8 sweep", "S8 sweep, 1 device", "S4 sweep, 1 core",
                            "S8 as pinned halves"}
    # the pinned processes really ran on one core, on one device; the default ones on one per core
    assert seconds["W1 fit, 1 core"]["devices"] == seconds["S4 sweep, 1 core"]["devices"] == 1
    assert seconds["S8 sweep, 1 device"]["devices"] == 1
    assert seconds["W1 fit"]["devices"] == seconds["S8 sweep"]["devices"] == len(os.sched_getaffinity(0))
    assert seconds["W1 fit, 1 core"]["cores"] == seconds["S4 sweep, 1 core"]["cores"] == 1  # pinned
    assert seconds["S8 as pinned halves"]["cores"] == 2 and seconds["W1 fit"]["cores"] == len(os.sched_getaffinity(0))
    assert report["ratios"]["S8 per member / W1 fit"] == pytest.approx(
        seconds["S8 sweep"]["wall"] / 8 / seconds["W1 fit"]["wall"])


def test_the_generated_profile_sentences_follow_the_numbers():
    from benchmarks import study_profile, sweep_cores

    cores = json.loads((tables.REPO / "benchmarks" / "sweep_cores_cpu.json").read_text())
    for pinned, sharded, words in ((0.79, 0.74, ("above the target", "less than the pinned halves")),
                                   (0.45, 0.60, ("at or below the target", "more than the pinned halves"))):
        report = json.loads(json.dumps(cores))
        report["ratios"]["S8 pinned halves per member / W1 fit"] = pinned
        report["ratios"]["S8 per member / W1 fit"] = sharded
        text = sweep_cores.markdown(report)
        assert all(w in text for w in words), text
    row = {"study": "a", "ok": True, "compile": 10.0, "data": 1.0, "report": 2.0}
    assert "over the 8-minute target" in study_profile.markdown([row | {"wall": 600.0, "train": 587.0}])
    assert "under the 8-minute target" in study_profile.markdown([row | {"wall": 300.0, "train": 287.0}])
