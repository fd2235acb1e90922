"""Progress of a study: a tqdm bar per training run on a terminal, else a line every few seconds.

Modes (``--progress``, a field of :class:`~experiments.lib.config.StudyConfig`):

* ``bar``: one tqdm bar per training run (epochs done, elapsed, ETA, the newest train /
  validation loss and accuracy; for a sweep its best and worst member), and in
  ``experiments.all`` an outer bar over the studies. Warnings and study lines are written
  above the bars (``tqdm.write``), so the bars stay whole.
* ``lines``: the engine's one-line check summaries (``jaxnet.engine.events.line``), at most one every
  :data:`LINE_EVERY_SECONDS` (the first, the last and every warning always).
* ``none`` (or ``--quiet``): nothing.
* ``auto`` (the default): ``bar`` when stdout is a terminal, else ``lines``.

Everything here runs on the host between the engine's compiled segments (a hook given the
engine's structured events after each check): nothing enters the compiled scan.
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import IO, Any, Callable, Iterator, Mapping, Sequence

LINE_EVERY_SECONDS = 5.0
MODES = ("auto", "bar", "lines", "none")

_clock = time.monotonic  # the lines mode's clock (tests replace it)
_bars: list[Any] = []  # the live per-run bars (tqdm objects), newest last
_outer: list["StudyProgress"] = []  # the live study bar of experiments.all, if any


def _stream(file: IO[str] | None = None) -> IO[str]:
    return file if file is not None else sys.stdout


def _resolve(progress: str, quiet: bool = False, file: IO[str] | None = None) -> str:
    if progress not in MODES:
        raise ValueError(f"progress must be one of {', '.join(MODES)}, got {progress!r}")
    if quiet or progress == "none":
        return "none"
    if progress != "auto":
        return progress
    stream = _stream(file)
    return "bar" if getattr(stream, "isatty", lambda: False)() else "lines"


def mode(config: Any, file: IO[str] | None = None) -> str:
    """"bar", "lines" or "none" for this config and this stdout.

    Args:
      config: anything with ``progress`` ("auto" / "bar" / "lines" / "none") and optionally ``quiet``.
      file: the stream progress goes to (default ``sys.stdout``); "auto" is "bar" only on a terminal.
    Returns:
      The mode to use.
    """
    return _resolve(getattr(config, "progress", "auto"), getattr(config, "quiet", False), file)


_config_mode = mode  # study_bar's ``mode`` argument shadows the function


def write(config: Any, line: str, *, file: IO[str] | None = None) -> None:
    """A line of progress, unless progress is off; written above any live bar (``tqdm.write``)."""
    if mode(config, file) == "none":
        return
    _emit(line, file)


def _emit(line: str, file: IO[str] | None = None) -> None:
    stream = _stream(file)
    if _bars or _outer:
        from tqdm import tqdm

        tqdm.write(line, file=stream)
        stream.flush()
    else:
        print(line, file=stream, flush=True)


@contextlib.contextmanager
def closing() -> Iterator[None]:
    """Closes every run bar when the block ends, also on an error."""
    try:
        yield
    finally:
        close_bars()


def close_bars() -> None:
    """Closes every live per-run bar (a new run, a finished study, or an error ends them)."""
    while _bars:
        bar = _bars.pop()
        with contextlib.suppress(Exception):
            bar.close()


# ---------------------------------------------------------------- one training run
def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _loss(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if 1e-3 <= abs(value) < 1e3 else f"{value:.2e}"  # fixed width: the bar does not jitter


def _epoch_count(epoch_value: float) -> float | int:
    """The bar's n: whole epochs as an int ("3/10"), a fractional check as a short float ("2.4/10")."""
    value = round(float(epoch_value), 2)
    return int(value) if value == int(value) else value


def fit_postfix(history: Any) -> str:
    """``train 0.1234 96.1% · val 0.2345 93.0%``: the newest losses and accuracies of one run."""
    parts = []
    for split, name in (("train", "train"), ("val", "val"), ("test", "test")):
        loss, acc = history.last(f"{split}_loss"), history.last(f"{split}_accuracy")
        if loss is not None or acc is not None:
            parts.append(f"{name} {_loss(loss)} {_percent(acc)}")
    if getattr(history, "diverged", False):
        parts.append("diverged")
    return " · ".join(parts)


def sweep_postfix(histories: Sequence[Any], members: Sequence[str] | None = None) -> str:
    """``val acc best 97.1% (λ=0) · worst 80.2% (λ=1) · 1 diverged``: the best and worst member
    by their newest validation accuracy (training accuracy without a validation set)."""
    names = list(members) if members is not None and len(members) == len(histories) else [
        f"member {k}" for k in range(len(histories))]
    key = next((k for k in ("val_accuracy", "train_accuracy", "test_accuracy")
                if any(h.last(k) is not None for h in histories)), None)
    parts = []
    if key is not None:
        scored = [(h.last(key), name) for h, name in zip(histories, names)
                  if h.last(key) is not None and not h.diverged]
        if scored:
            best, worst = max(scored), min(scored)
            label = key.replace("_accuracy", " acc")
            parts.append(f"{label} best {_percent(best[0])} ({best[1]})")
            if len(scored) > 1:
                parts.append(f"worst {_percent(worst[0])} ({worst[1]})")
    diverged = sum(bool(h.diverged) for h in histories)
    stopped = sum(h.stopped_epoch is not None for h in histories)
    if diverged:
        parts.append(f"{diverged} diverged")
    if stopped:
        parts.append(f"{stopped} stopped early")
    return " · ".join(parts)


def _finished(histories: Sequence[Any]) -> bool:
    return bool(histories) and all(h.diverged or h.stopped_epoch is not None for h in histories)


def engine_hooks(config: Any, *, label: str, epochs: int, members: Sequence[str] | None = None,
                 file: IO[str] | None = None) -> dict[str, Any]:
    """``log=`` and ``hooks=`` for ``engine.fit`` / ``engine.sweep``: a subscriber to the
    engine's structured events (:mod:`jaxnet.engine.events`), never a parser of its lines.

    Args:
      config: the study's config (its ``progress`` and ``quiet``).
      label: what is training, shown before the bar or each line, e.g. "overfitting: 2,000 images".
      epochs: the run's epochs: the bar's total.
      members: names of a sweep's members for the bar's best / worst (default "member k").
      file: where the bar and lines go (default ``sys.stdout``; tests pass a ``StringIO``).
    Returns:
      ``{"log": None, "hooks": [...]}``. ``bar``: a tqdm bar (n = epochs done, postfix the newest
      metrics), notices (divergence, early stop, resume) written above the bar; ``lines``: the
      check lines, at most one every :data:`LINE_EVERY_SECONDS` (the first and the last always, a
      held-back line before any notice); ``none``: no hook.
    """
    kind = mode(config, file)
    if kind == "none":
        return {"log": None, "hooks": []}
    hook = _bar_hook(label, epochs, members, file) if kind == "bar" else _line_hook(label, epochs, file)
    return {"log": None, "hooks": [hook]}


def _notice(event: Any) -> bool | None:
    """True for a notice (divergence, early stop, resume: shown whatever the throttle), False
    for a check, None for an event this module does not know (ignored, so a newer engine's
    events cannot break a study's progress)."""
    from jaxnet.engine import events

    if isinstance(event, events.Check):
        return False
    return True if isinstance(event, (events.Diverged, events.Stopped, events.Resumed)) else None


def _line_hook(label: str, epochs: int, file: IO[str] | None) -> Callable[[Any], None]:
    from jaxnet.engine import events

    state = {"last": -float("inf"), "pending": None}

    def flush() -> None:
        if state["pending"] is not None:
            _emit(state["pending"], file)
            state["pending"] = None

    def hook(event: Any) -> None:
        notice = _notice(event)
        if notice is None:
            return
        text = f"[{label}] {events.line(event)}"
        if notice:  # divergence, "resumed", "stopped early": always, after any held-back check line
            flush()
            _emit(text, file)
            return
        final = event.epoch >= epochs or _finished(event.histories)
        now = _clock()
        if final or now - state["last"] >= LINE_EVERY_SECONDS:
            state["last"], state["pending"] = now, None
            _emit(text, file)
        else:
            state["pending"] = text

    return hook


def _bar_hook(label: str, epochs: int, members: Sequence[str] | None,
              file: IO[str] | None) -> Callable[[Any], None]:
    from tqdm import tqdm

    from jaxnet.engine import events

    close_bars()  # a new run: the previous run's bar, if still open, is over
    nested = bool(_outer)
    bar = tqdm(total=epochs, desc=label, unit="epoch", file=_stream(file), leave=not nested, dynamic_ncols=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} epochs "
                          "[{elapsed}<{remaining}{postfix}]")
    _bars.append(bar)

    def close() -> None:
        if bar in _bars:
            _bars.remove(bar)
            bar.close()

    def hook(event: Any) -> None:
        notice = _notice(event)
        if notice is None:
            return
        if notice:  # above the bar while it is live, a plain line after it closed
            line = f"[{label}] {events.line(event)}"
            if bar in _bars:
                tqdm.write(line, file=_stream(file))
            else:
                _emit(line, file)
            return
        if bar not in _bars:
            return
        histories = event.histories
        if histories:
            bar.set_postfix_str(fit_postfix(histories[0]) if len(histories) == 1
                                else sweep_postfix(histories, members), refresh=False)
        bar.update(_epoch_count(event.epoch) - bar.n)
        for outer in _outer:
            outer.refresh()
        if event.epoch >= epochs or _finished(histories):
            close()

    return hook


# ---------------------------------------------------------------- experiments.all
def _interval(seconds: float) -> str:
    from tqdm import tqdm

    return tqdm.format_interval(max(0.0, seconds))


class StudyProgress:
    """The outer progress of ``experiments.all``: which study runs, how many are done, the time
    elapsed and an estimate of the time left. Made by :func:`study_bar`."""

    def __init__(self, names: Sequence[str], estimates: Mapping[str, float] | None, kind: str,
                 file: IO[str] | None = None, clock: Callable[[], float] = time.perf_counter):
        self.names = list(names)
        self.estimates = {k: float(v) for k, v in (estimates or {}).items()
                          if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0}
        self.kind, self.file, self.clock = kind, file, clock
        self.started = clock()
        self.current: str | None = None
        self.current_started = self.started
        self.durations: dict[str, float] = {}
        self.bar = None
        if kind == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=len(self.names), desc="studies", unit="study", file=_stream(file), position=0,
                            leave=True, dynamic_ncols=True,
                            bar_format="{desc}: {n_fmt}/{total_fmt} |{bar}| {elapsed} elapsed{postfix}")

    def remaining(self) -> float | None:
        """Seconds left: the last run's timing of every study not yet done (the mean of the
        known ones, or of this run's finished studies, for a study without one), less the time
        the current study has already run. None when nothing is known yet."""
        known = list(self.estimates.values()) or list(self.durations.values())
        if not known:
            return None
        fallback = sum(known) / len(known)
        left = 0.0
        for name in self.names:
            if name in self.durations:
                continue
            estimate = self.estimates.get(name, fallback)
            if name == self.current:
                estimate = max(estimate - (self.clock() - self.current_started), 0.0)
            left += estimate
        return left

    def status(self) -> str:
        """``now: overfitting · about 05:10 left`` (what the bar's postfix and each line show)."""
        parts = [f"now: {self.current}"] if self.current else []
        left = self.remaining()
        if left is not None:
            source = " (last run's timings)" if self.estimates else ""
            parts.append(f"about {_interval(left)} left{source}")
        return " · ".join(parts)

    def refresh(self) -> None:
        """Redraws the bar with the current elapsed time and estimate (the per-run bars call it)."""
        if self.bar is not None:
            self.bar.set_postfix_str(self.status(), refresh=True)

    def start(self, name: str) -> None:
        """Study ``name`` begins."""
        self.current, self.current_started = name, self.clock()
        if self.kind == "lines":
            parts = [f"[all] study {len(self.durations) + 1}/{len(self.names)}: {name}",
                     f"{_interval(self.clock() - self.started)} elapsed"]
            left = self.remaining()
            if left is not None:
                parts.append(f"about {_interval(left)} left")
            _emit(" · ".join(parts), self.file)
        self.refresh()

    def done(self, name: str) -> None:
        """Study ``name`` ended (passed or failed): its bars close and the count goes up."""
        close_bars()
        self.durations[name] = self.clock() - self.current_started if name == self.current else 0.0
        if name == self.current:
            self.current = None
        if self.bar is not None:
            self.bar.set_postfix_str(self.status(), refresh=False)
            self.bar.update(1)

    def write(self, line: str) -> None:
        """A line above the bars (or plain, without bars); nothing when progress is off."""
        if self.kind != "none":
            _emit(line, self.file)

    def close(self) -> None:
        close_bars()
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def study_bar(names: Sequence[str], *, estimates: Mapping[str, float] | None = None, mode: str | None = None,
              config: Any = None, file: IO[str] | None = None) -> Iterator[StudyProgress]:
    """The outer progress of ``experiments.all``, as a context manager::

        with progress.study_bar(names, estimates={"overfitting": 49.0}, config=config) as bar:
            for name in names:
                bar.start(name)
                ...                      # run the study (its own bars nest under this one)
                bar.done(name)

    Args:
      names: the studies, in the order they will run.
      estimates: study → seconds it took last time (e.g. from the previous ``index.json``): the
        estimate of the time left; without them it is the mean of the studies done so far.
      mode: "auto" / "bar" / "lines" / "none"; default: from ``config`` (its ``progress`` and
        ``quiet``), else "auto".
      config: used when ``mode`` is None.
      file: where it is drawn (default ``sys.stdout``).
    Yields:
      A :class:`StudyProgress` with ``start(name)``, ``done(name)``, ``write(line)``, ``remaining()``.
      ``bar``: a tqdm bar (studies done / total, elapsed, the current study, time left);
      ``lines``: one line as each study starts ("[all] study 3/11: cnn · 04:12 elapsed · about
      02:30 left"); ``none``: nothing.
    """
    if mode is None:
        kind = _config_mode(config, file) if config is not None else _resolve("auto", file=file)
    else:
        kind = _resolve(mode, file=file)
    progress = StudyProgress(names, estimates, kind, file)
    _outer.append(progress)
    try:
        yield progress
    finally:
        _outer.remove(progress)
        progress.close()
