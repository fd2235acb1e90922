"""jaxnet.history.History: the JSON round trip and its accessors."""
from __future__ import annotations

import json
import math

import pytest

from jaxnet import engine, train
from jaxnet.history import History
from test_engine import small_model, small_net, teacher


@pytest.fixture(scope="module")
def history():
    return engine.fit(small_model(), small_net(), train.make_optimizer("sgd", learning_rate=0.1), teacher(160),
                      epochs=2, batch_size=16, val=teacher(80, seed=1), patience=5, evals_per_epoch=2,
                      log=None).history


def test_a_trained_history_survives_a_json_round_trip(history):
    assert History.from_json(history.to_json()) == history


def test_the_round_trip_through_a_file(history, tmp_path):
    path = tmp_path / "history.json"
    history.to_json(path)
    assert History.from_json(path) == history
    assert History.from_json(str(path)) == history


def test_the_json_is_strict(history):
    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")
    data = json.loads(history.to_json(), parse_constant=refuse)
    assert data["epoch"] == [0.5, 1.0, 1.5, 2.0]


def test_non_finite_values_are_stored_as_none():
    h = History()
    h.append(1.0, 10, 0.5, {"train_loss": math.nan, "val_loss": math.inf, "train_accuracy": 0.5})
    assert h.train_loss == [None] and h.val_loss == [None] and h.train_accuracy == [0.5] and h.test_loss == [None]
    assert History.from_json(h.to_json()) == h


def test_last_and_at_epoch():
    h = History()
    h.append(1.0, 5, 0.1, {"val_loss": 0.9})
    h.append(2.0, 10, 0.2, {"val_loss": 0.7})
    h.append(3.0, 15, 0.3, {})
    assert h.last("val_loss") == 0.7
    assert h.at_epoch("val_loss", 1.0) == 0.9 and h.at_epoch("val_loss", 4.0) is None


def test_unknown_keys_are_ignored_when_reading():
    h = History.from_dict({"epoch": [1.0], "val_loss": [0.5], "written_by_a_newer_version": 1})
    assert h.epoch == [1.0] and h.val_loss == [0.5]


def test_histories_read_from_one_record_do_not_share_lists():
    """A resumed sweep pads its members with copies of one saved history: appending to one
    must not append to the others (it once doubled every epoch after a resume)."""
    record = History(epoch=[1.0], step=[5], val_loss=[0.9], seconds=[0.1]).to_dict()
    a, b = History.from_dict(record), History.from_dict(record)
    a.append(2.0, 10, 0.2, {"val_loss": 0.7})
    assert b.epoch == [1.0] and b.val_loss == [0.9] and record["epoch"] == [1.0]
    assert a.epoch == [1.0, 2.0] and a.val_loss == [0.9, 0.7]
