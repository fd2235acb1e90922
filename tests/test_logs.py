"""experiments.lib.logs: metrics.csv read back, TensorBoard event files read back record by record."""
from __future__ import annotations

import csv
import struct
from pathlib import Path

import numpy as np

from experiments.lib import logs
from jaxnet.history import History


def two_member_results() -> dict:
    """results.json of a two-member λ sweep: member 1 diverged at its third check."""
    runs = []
    for k, l2 in enumerate((0.0, 0.1)):
        h = History()
        for i in range(3):
            loss = float("nan") if (k == 1 and i == 2) else 1.0 / (i + 1) + l2
            h.append(0.5 * (i + 1), 40 * (i + 1), 0.1 * i,
                     {"train_loss": loss, "train_accuracy": 0.5 + 0.1 * i, "val_loss": loss + 0.1,
                      "val_accuracy": 0.4 + 0.1 * i})
        runs.append({"name": f"λ={l2}", "config": {"member": k, "l2": l2, "learning_rate": 0.05, "seed": 0,
                                                   "layers": [8, 4, 3], "hidden": "relu"},
                     "history": h.to_dict(),
                     "final": {"train_accuracy": 0.7, "val_accuracy": 0.6, "test_accuracy": 0.55 + k / 10,
                               "test_loss": None if k else 0.9, "best_val_loss_epoch": 1.5}})
    return {"runs": runs}


def test_metrics_csv_is_tidy_and_complete(tmp_path: Path):
    results = two_member_results()
    path = logs.write_metrics_csv(tmp_path, results)
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == logs.CSV_COLUMNS
    h0 = results["runs"][0]["history"]
    got = {(r["run"], r["member"], float(r["epoch"]), r["split"], r["metric"]): float(r["value"]) for r in rows}
    for epoch, value in zip(h0["epoch"], h0["val_accuracy"]):
        assert got[("λ=0.0", "0", epoch, "val", "accuracy")] == value
    # member 1's NaN check is a missing value, not a row
    assert ("λ=0.1", "1", 1.5, "train", "loss") not in got
    assert ("λ=0.1", "1", 1.0, "train", "loss") in got
    # test: the final evaluation at the last epoch (accuracy for both; loss only where finite)
    assert got[("λ=0.0", "0", 1.5, "test", "accuracy")] == 0.55
    assert got[("λ=0.0", "0", 1.5, "test", "loss")] == 0.9
    assert ("λ=0.1", "1", 1.5, "test", "loss") not in got
    # 4 series × 3 checks for member 0, 4 × 2 for member 1 (the NaN check drops its train/val loss only)
    assert len(rows) == 12 + 3 + 3 + 2 + 2 + 2 + 1


def read_events(folder: Path) -> list:
    """Every Event of every event file under ``folder`` (TFRecord framing: length, its CRC, the
    record, its CRC), parsed with tensorboardX's own protobufs."""
    from tensorboardX.proto import event_pb2

    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            record = data[offset + 12:offset + 12 + length]
            offset += 12 + length + 4
            event = event_pb2.Event()
            event.ParseFromString(record)
            events.append(event)
    return events


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for event in read_events(folder):
        for value in event.summary.value:
            if value.WhichOneof("value") == "simple_value":
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def test_tensorboard_scalars_steps_and_hparams(tmp_path: Path):
    from tensorboardX.proto import plugin_hparams_pb2

    results = two_member_results()
    logdir = logs.write_tensorboard(tmp_path / "tb", results)
    assert sorted(p.name for p in logdir.iterdir()) == ["λ=0.0", "λ=0.1"]
    s0 = scalars(logdir / "λ=0.0")
    h0 = results["runs"][0]["history"]
    assert [step for step, _ in s0["val/accuracy"]] == h0["step"] == [40, 80, 120]
    assert [v for _, v in s0["val/accuracy"]] == [float(np.float32(v)) for v in h0["val_accuracy"]]
    assert s0["epoch"] == [(40, 0.5), (80, 1.0), (120, 1.5)]
    assert set(s0) == {"epoch", "train/loss", "train/accuracy", "val/loss", "val/accuracy"}
    assert [step for step, _ in scalars(logdir / "λ=0.1")["train/loss"]] == [40, 80]  # NaN left out

    hp_events = read_events(logdir / "λ=0.1" / "hparams")
    start = [v for e in hp_events for v in e.summary.value if v.tag == "_hparams_/session_start_info"]
    assert len(start) == 1
    data = plugin_hparams_pb2.HParamsPluginData()
    data.ParseFromString(start[0].metadata.plugin_data.content)
    hp = data.session_start_info.hparams
    assert hp["l2"].number_value == 0.1 and hp["learning_rate"].number_value == 0.05
    assert hp["seed"].number_value == 0 and hp["layers"].string_value == "8-4-3"
    final = scalars(logdir / "λ=0.1" / "hparams")
    assert final["final/test_accuracy"][0][1] == float(np.float32(0.65))
    assert "final/test_loss" not in final  # None in results.json


def test_tensorboard_rerun_replaces_events_and_handles_missing_steps(tmp_path: Path):
    results = two_member_results()
    for run in results["runs"]:
        del run["history"]["step"]  # an older results.json: the check index is the step
    logs.write_tensorboard(tmp_path, results)
    logs.write_tensorboard(tmp_path, results)
    s0 = scalars(tmp_path / "λ=0.0")
    assert [step for step, _ in s0["train/loss"]] == [0, 1, 2]
    assert len(list((tmp_path / "λ=0.0").glob("events.out.tfevents.*"))) == 1
