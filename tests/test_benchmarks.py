"""The throughput benchmark's --quick mode: every variant trains to a sane accuracy and the
JSON carries the documented keys. No timing assertions (timings of --quick are meaningless)."""
import json

import pytest

from benchmarks import peers, train_throughput

REPORT_KEYS = ("command", "date", "quick", "rounds", "batch_size", "flop_rule", "device", "platform", "versions",
               "threads", "load_average_start", "load_average_end", "notes", "workloads", "peak_gflops", "results",
               "ratios", "targets")
RESULT_KEYS = ("title", "seconds_per_epoch", "first_epoch_seconds", "compile_seconds", "gflops",
               "fraction_of_peak", "fraction_of_shapes_peak", "accuracy")


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
    assert "manual_over_autodiff_seconds" in report["ratios"]
    assert "s8_member_over_w1_fit" in report["ratios"]


def test_quick_runs_every_variant_to_a_sane_accuracy(quick_report):
    report, _ = quick_report
    torch_ok = peers.torch_or_none()[0] is not None
    expected = {(w, v) for w in ("W1", "W2", "W3") for v in train_throughput.VARIANTS
                if torch_ok or v not in train_throughput.TORCH_VARIANTS} | {("S8", "jaxnet_sweep")}
    ran = {(w, v) for w, variants in report["results"].items() for v in variants}
    assert ran == expected
    if not torch_ok:
        assert any("PyTorch" in note for note in report["notes"])
    for workload, variants in report["results"].items():
        for variant, entry in variants.items():
            assert entry["accuracy"] > train_throughput.SANE_ACCURACY, (workload, variant, entry["accuracy"])
    assert len(report["results"]["S8"]["jaxnet_sweep"]["member_accuracy"]) == train_throughput.MEMBERS
    # the speedups of one round are reciprocal
    speed = report["ratios"]["speedup"]["W1"]
    assert speed["jaxnet_fit"]["jax_loop"]["median"] * speed["jax_loop"]["jaxnet_fit"]["median"] == pytest.approx(1)


def test_quick_markdown_table(quick_report):
    _, markdown = quick_report
    assert "| workload | variant |" in markdown and "| W1 | jaxnet_fit |" in markdown
    assert "| target |" in markdown


def test_numpy_gradients_match_jaxnet_backprop():
    import jax
    import numpy as np

    from jaxnet import backprop
    for hidden, loss in (("relu", "softmax_cross_entropy"), ("sigmoid", "sigmoid_cross_entropy")):
        params = peers.numpy_init((6, 5, 4, 3), seed=0)
        rng = np.random.default_rng(1)
        x, y = rng.normal(size=(7, 6)).astype(np.float32), rng.integers(0, 3, 7).astype(np.int32)
        value, grads = peers.numpy_loss_and_grads(params, x, y, hidden=hidden, loss=loss)
        ref_value, _, ref_grads = backprop.loss_and_grads(jax.tree.map(jax.numpy.asarray, params), x, y,
                                                           hidden=hidden, loss=loss)
        np.testing.assert_allclose(value, ref_value, rtol=1e-5)
        for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_stepwise_yields_once_per_callback_and_returns_the_result():
    def run(callback):
        for epoch in range(3):
            callback(epoch)
        return "done"
    gen = train_throughput.stepwise(run)
    assert [None for _ in range(3)] == [next(gen) for _ in range(3)]
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"
    abandoned = train_throughput.stepwise(run)  # closing mid-run stops the helper thread
    next(abandoned)
    abandoned.close()
