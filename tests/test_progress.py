"""experiments.lib.progress: the per-run tqdm bar, the throttled lines, the outer study bar."""
from __future__ import annotations

import inspect
import io
import re
import types

import jax
import numpy as np
import pytest

from experiments.lib import progress
from jaxnet import engine, mlp, train
from jaxnet.engine import events
from jaxnet.history import History


def config(progress_mode: str = "bar", quiet: bool = False) -> types.SimpleNamespace:
    return types.SimpleNamespace(progress=progress_mode, quiet=quiet)


def tiny_data(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8)).astype(np.float32), rng.integers(0, 3, n).astype(np.int32)


def history(*epochs: float, diverged: bool = False) -> History:
    h = History()
    for epoch in epochs:
        h.append(epoch, int(epoch), 0.0, {"train_loss": 1.0 / epoch, "train_accuracy": 0.5})
    h.diverged = diverged
    return h


def check(epoch: float, epochs: int, *histories: History) -> events.Check:
    """The engine's Check event after ``epoch`` (a sweep when given several histories)."""
    metrics = {"train_loss": np.array([h.last("train_loss") or np.nan for h in histories]),
               "train_accuracy": np.array([h.last("train_accuracy") or np.nan for h in histories])}
    return events.Check(float(epoch), epochs, 0.0, metrics, tuple(histories), {}, len(histories) > 1)


def final_screen(text: str) -> str:
    """What a terminal shows last on each line: tqdm redraws a line after '\\r'."""
    return "\n".join(line.split("\r")[-1] for line in text.split("\n"))


@pytest.fixture(autouse=True)
def no_live_bars():
    yield
    progress.close_bars()


def test_modes():
    assert progress.mode(config("none")) == "none"
    assert progress.mode(config("bar", quiet=True)) == "none"
    assert progress.mode(config("lines")) == "lines"
    assert progress.mode(config("bar")) == "bar"
    # auto: a bar only on a terminal; a StringIO (like a pipe or a CI log) is not one
    assert progress.mode(config("auto"), io.StringIO()) == "lines"
    tty = io.StringIO()
    tty.isatty = lambda: True
    assert progress.mode(config("auto"), tty) == "bar"
    assert progress.engine_hooks(config("none"), label="x", epochs=3) == {"log": None, "hooks": []}
    for kind in ("bar", "lines"):  # the engine's own lines are off: the hook says everything
        hooks = progress.engine_hooks(config(kind), label="x", epochs=3, file=io.StringIO())
        assert hooks["log"] is None and len(hooks["hooks"]) == 1 and callable(hooks["hooks"][0])
    with pytest.raises(ValueError, match="progress must be one of"):
        progress.mode(config("fancy"))


def test_fit_bar_reaches_total_and_shows_the_last_loss(capsys):
    out = io.StringIO()
    x, y = tiny_data()
    hooks = progress.engine_hooks(config("bar"), label="demo: tiny", epochs=4, file=out)
    model = mlp.model([8, 16, 3])
    result = engine.fit(model, model.init(jax.random.PRNGKey(0)), train.make_optimizer("sgd", learning_rate=0.1),
                        (x, y), epochs=4, batch_size=16, val=tiny_data(32, 1), **hooks)
    screen = final_screen(out.getvalue())
    last = [line for line in screen.splitlines() if line.strip()][-1]
    assert last.startswith("demo: tiny: 100%"), last
    assert "4/4 epochs" in last
    h = result.history
    assert f"train {h.train_loss[-1]:.3f} {100 * h.train_accuracy[-1]:.1f}%" in last
    assert f"val {h.val_loss[-1]:.3f} {100 * h.val_accuracy[-1]:.1f}%" in last
    assert "epoch   4.00/4" not in out.getvalue()  # the check lines are the bar's job
    assert not progress._bars  # closed at the final check
    assert capsys.readouterr().out == ""  # log=None: the engine printed nothing itself


def test_sweep_bar_shows_best_and_worst_member_and_divergence():
    out = io.StringIO()
    x, y = tiny_data()
    model = mlp.model([8, 16, 3])
    hooks = progress.engine_hooks(config("bar"), label="lr sweep", epochs=3, members=["lr 0.05", "lr 1e9"],
                                  file=out)
    result = engine.sweep(model, train.make_optimizer("sgd", learning_rate=0.05), (x, y),
                          params=model.init(jax.random.PRNGKey(0)), epochs=3, batch_size=16,
                          learning_rate=[0.05, 1e9], val=tiny_data(32, 1), **hooks)
    text = out.getvalue()
    last = [line for line in final_screen(text).splitlines() if line.strip()][-1]
    assert "3/3 epochs" in last
    good = result.histories[0]
    assert f"val acc best {100 * good.val_accuracy[-1]:.1f}% (lr 0.05)" in last
    assert "1 diverged" in last
    # the engine's Diverged event is written above the bar, with the run's label, on a line of its own
    assert re.search(r"^\[lr sweep\] member 1: diverged at epoch [0-9.]+ \(the loss became NaN", final_screen(text),
                     re.M)


def test_postfix_texts():
    a, b, c = History(), History(), History()
    a.append(1, 10, 0.1, {"train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.75})
    b.append(1, 10, 0.1, {"train_loss": 0.4, "train_accuracy": 0.9, "val_loss": 0.5, "val_accuracy": 0.85})
    c.diverged = True
    assert progress.fit_postfix(a) == "train 0.500 80.0% · val 0.600 75.0%"
    big = History()
    big.append(1, 10, 0.1, {"train_loss": 12345.0, "train_accuracy": 0.1})
    assert progress.fit_postfix(big) == "train 1.23e+04 10.0%"
    assert progress.sweep_postfix([a, b, c], ["λ=0", "λ=1", "λ=9"]) == (
        "val acc best 85.0% (λ=1) · worst 75.0% (λ=0) · 1 diverged")
    assert progress.sweep_postfix([a, b]) == "val acc best 85.0% (member 1) · worst 75.0% (member 0)"


def test_lines_mode_throttles_but_keeps_first_last_and_notices(monkeypatch):
    out = io.StringIO()
    clock = iter([0.0, 1.0, 2.0, 3.0, 10.0, 11.0])
    monkeypatch.setattr(progress, "_clock", lambda: next(clock))
    (hook,) = progress.engine_hooks(config("lines"), label="run", epochs=6, file=out)["hooks"]
    good, bad = History(), History()
    for epoch in range(1, 7):
        if epoch == 3:
            bad.diverged, bad.diverged_epoch = True, 3.0
            hook(events.Diverged(1, 3.0, True))
        good.append(epoch, epoch, 0.0, {"train_loss": 1.0 / epoch, "train_accuracy": 0.5})
        if not bad.diverged:
            bad.append(epoch, epoch, 0.0, {"train_loss": 2.0, "train_accuracy": 0.1})
        hook(check(epoch, 6, good, bad))
    lines = out.getvalue().splitlines()
    # t=0: epoch 1 shown; t=1: epoch 2 held back, then shown before the notice; t=2,3: epochs 3, 4 held
    # (epoch 3 replaced by 4); t=10: epoch 5 shown (5 s passed); epoch 6: the last, always
    assert [line.split("  2 members")[0] for line in lines] == [
        "[run] epoch   1.00/6", "[run] epoch   2.00/6",
        "[run] member 1: diverged at epoch 3.00 (the loss became NaN or inf); kept the parameters of the last "
        "finite check. Try a smaller learning rate.",
        "[run] epoch   5.00/6", "[run] epoch   6.00/6"]
    assert "2 members (1 training)  train_accuracy: 50.00% 10.00%" in lines[-1]


def test_notices_are_never_held_back_nor_hidden_by_the_bar(monkeypatch):
    """Divergence, early stopping and resuming: always a line of their own, in lines mode
    whatever the throttle, in bar mode above the live bar (and plainly once it closed)."""
    monkeypatch.setattr(progress, "_clock", lambda: 0.0)  # every check within the throttle window
    out = io.StringIO()
    (hook,) = progress.engine_hooks(config("lines"), label="run", epochs=4, file=out)["hooks"]
    hook(events.Resumed("/tmp/ckpt", 1))
    hook(check(2, 4, history(2)))
    hook(check(3, 4, history(2, 3)))  # held back
    hook(events.Diverged(0, 3.5, False))
    hook(check(3.5, 4, history(2, 3, diverged=True)))  # every member done: the last line
    hook(events.Stopped(3.5))
    expected = ["[run] resumed from /tmp/ckpt after epoch 1", "[run] epoch   2.00/4  train loss 0.5000",
                "[run] epoch   3.00/4  train loss 0.3333",  # held back, then flushed before the notice
                "[run] diverged at epoch 3.50 (the loss became", "[run] epoch   3.50/4  train loss 0.3333",
                "[run] stopped early at epoch 3.50"]
    lines = out.getvalue().splitlines()
    assert len(lines) == len(expected) and all(line.startswith(e) for line, e in zip(lines, expected)), lines

    out = io.StringIO()
    (hook,) = progress.engine_hooks(config("bar"), label="run", epochs=4, file=out)["hooks"]
    hook(check(1, 4, history(1)))
    hook(events.Diverged(0, 1.5, False))
    assert progress._bars  # the notice did not end the bar
    hook(check(1.5, 4, history(1, diverged=True)))
    assert not progress._bars  # the run is over
    hook(events.Stopped(1.5))
    screen = final_screen(out.getvalue())
    assert re.search(r"^\[run\] diverged at epoch 1.50 \(the loss became NaN or inf\)", screen, re.M)
    assert screen.endswith("\n[run] stopped early at epoch 1.50\n")
    assert "1.5/4 epochs" in screen and "diverged" in screen.splitlines()[-2]  # the bar's postfix

    out = io.StringIO()
    (hook,) = progress.engine_hooks(config("bar"), label="run", epochs=4, file=out)["hooks"]
    hook(object())  # an event this module does not know: ignored, never a crash
    hook(types.SimpleNamespace(epoch=4.0))
    assert progress._bars and "[run]" not in out.getvalue()


def test_diverged_fit_in_lines_mode():
    """A real engine run: the Diverged event is one line, then the last check line."""
    out = io.StringIO()
    x, y = tiny_data()
    model = mlp.model([8, 16, 3])
    hooks = progress.engine_hooks(config("lines"), label="hot", epochs=3, file=out)
    result = engine.fit(model, model.init(jax.random.PRNGKey(0)), train.make_optimizer("sgd", learning_rate=1e9),
                        (x, y), epochs=3, batch_size=16, **hooks)
    assert result.history.diverged
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[hot] diverged at epoch 1.00 (the loss became NaN or inf)"), lines
    assert lines[1].startswith("[hot] epoch   1.00/3") and len(lines) == 2


def test_progress_subscribes_to_events_and_parses_no_lines():
    """The hooks read the engine's structured events; nothing here reads the text of a line."""
    source = inspect.getsource(progress)
    for parsing in ('startswith("epoch', "startswith('epoch", '"epoch "', ".split(\"/\")", "re.match", "re.search"):
        assert parsing not in source, parsing
    assert "events.Check" in source and "events.Diverged" in source


def test_study_bar_counts_studies_and_estimates_the_time_left():
    out = io.StringIO()
    now = [100.0]
    with progress.study_bar(["a", "b", "c"], estimates={"a": 10.0, "b": 30.0}, mode="bar", file=out) as bar:
        bar.clock = lambda: now[0]
        bar.started = 100.0
        assert bar.remaining() == pytest.approx(10 + 30 + 20)  # c: the mean of the known estimates
        bar.start("a")
        now[0] = 104.0
        assert bar.remaining() == pytest.approx(6 + 30 + 20)
        (hook,) = progress.engine_hooks(config("bar"), label="a: run", epochs=1, file=out)["hooks"]
        hook(check(1, 1, history(1)))
        bar.done("a")
        bar.start("b")
        now[0] = 150.0  # b overran its estimate: nothing negative
        assert bar.remaining() == pytest.approx(20)
        bar.done("b")
        bar.start("c")
        bar.done("c")
        assert bar.remaining() == 0
    screen = final_screen(out.getvalue())
    assert "studies: 3/3" in screen
    assert not progress._outer and not progress._bars


def test_study_bar_lines_and_none():
    out = io.StringIO()
    with progress.study_bar(["a", "b"], estimates=None, config=config("lines"), file=out) as bar:
        bar.start("a")
        bar.done("a")
        bar.start("b")
        bar.write("== b: ok")
        bar.done("b")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[all] study 1/2: a · 00:00 elapsed") and "left" not in lines[0]
    assert lines[1].startswith("[all] study 2/2: b") and "left" in lines[1]  # the mean of the studies done
    assert lines[2] == "== b: ok"
    quiet = io.StringIO()
    with progress.study_bar(["a"], mode="none", file=quiet) as bar:
        bar.start("a")
        bar.write("x")
        bar.done("a")
    assert quiet.getvalue() == ""
