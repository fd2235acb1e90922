"""One source for every setting: a study's frozen dataclass, its command line and its record.

A study subclasses :class:`StudyConfig` with its own fields (network sizes, learning rates, λ
grid, epochs, seeds, …) and a :meth:`StudyConfig.quick` variant. :func:`parse` builds the
command line from the dataclass with tyro (typed parsing, ``--help`` from the field
docstrings), so every field is a flag: ``--learning-rate 0.05``, ``--lambdas 0 0.01 0.1``.
Precedence, lowest first: the dataclass defaults, ``--quick``, ``--config FILE`` (TOML),
the flags. The resolved config is what runs *and* what ``results.json`` records, with
:func:`config_hash` of its science fields (those that change a number).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal, Optional, Sequence, TypeVar

from experiments.lib.errors import UsageError

C = TypeVar("C", bound="StudyConfig")
REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("JAXNET_SHARED", REPO.parent / "shared"))
SEED_MAX = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """The options every study shares. The run-control ones (:data:`RUN_FIELDS`) say where
    and how to run; they never change a number, so they are left out of the config hash."""

    seed: int = 0
    """random seed (initialisation and data order)"""
    out: Optional[Path] = None
    """output folder (default: runs/<study>)"""
    quick: bool = False
    """small, fast variant (what the tests run): fewer images and epochs"""
    config: Optional[Path] = None
    """a TOML file of settings (a saved setup); flags given beside it win"""
    resume: bool = False
    """reuse finished runs of an earlier results.json made with the same config (else retrain)"""
    report_only: bool = False
    """rebuild report.md and the figures from <out>/results.json without training"""
    progress: Literal["auto", "bar", "lines", "none"] = "auto"
    """progress display: a bar on a terminal, else a line every few seconds (auto)"""
    quiet: bool = False
    """no progress output (same as --progress none)"""
    tensorboard: bool = False
    """also write TensorBoard event files under <out>/tb"""
    debug: bool = False
    """show the Python traceback on errors (or set JAXNET_DEBUG=1)"""
    manual_dir: Optional[Path] = None
    """folder with the four MNIST .gz files (default: $JAXNET_MANUAL_DIR, else ../shared/data/mnist)"""
    data_dir: Optional[Path] = None
    """tensorflow-datasets data folder for downloads and the cache (default: $JAXNET_DATA_DIR)"""
    gurmukhi: Optional[Path] = None
    """the Gurmukhi digits .npz or folder (default: $JAXNET_GURMUKHI, else ../shared/data/gurmukhi)"""

    def quick_variant(self: C) -> C:
        """The ``--quick`` settings: override in a study (``dataclasses.replace(self, …)``)."""
        return self

    def problems(self) -> list[tuple[str, str, str]]:
        """The study's own checks: ``(flag, problem, fix)`` for each setting that cannot run."""
        return []


RUN_FIELDS = frozenset(f.name for f in dataclasses.fields(StudyConfig)) - {"seed"}
"""Fields that say where and how to run, not what: excluded from :func:`config_hash`."""


def science(config: StudyConfig) -> dict[str, Any]:
    """The fields that change a number (and ``quick``), as plain JSON values."""
    from experiments.lib.results import to_jsonable

    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
              if f.name not in RUN_FIELDS or f.name == "quick"}
    return to_jsonable(values)


def config_hash(config: StudyConfig) -> str:
    """sha256 (first 16 hex digits) of :func:`science` as canonical JSON."""
    text = json.dumps(science(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"epochs 1 → 2"`` for each science field that differs."""
    keys = sorted(set(recorded) | set(current))
    return [f"{k} {json.dumps(recorded.get(k))} → {json.dumps(current.get(k))}"
            for k in keys if recorded.get(k) != current.get(k)]


def flag(field: str) -> str:
    """The command-line flag of a field: ``learning_rate`` → ``--learning-rate``."""
    return "--" + field.replace("_", "-")


def _value_after(argv: Sequence[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise UsageError(f"{name} needs a value", f"give it as {name} FILE")
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def load_toml(cls: type[C], path: Path) -> dict[str, Any]:
    """The settings of a TOML file (keys: field names, with ``_`` or ``-``), checked against ``cls``."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file", "give the path of a TOML settings file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"--config {path}: not valid TOML ({error})", "fix the file (key = value lines)") from None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in fields or name in ("config",):
            raise UsageError(f"--config {path}: unknown setting {key!r}",
                             f"use one of {', '.join(sorted(set(fields) - {'config'}))}")
        default = getattr(cls(), name)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif (default is None or isinstance(default, Path)) and isinstance(value, str) and name in (
                "out", "manual_dir", "data_dir", "gurmukhi"):
            value = Path(value)
        values[name] = value
    return values


def _tyro_message(text: str) -> str:
    lines = [re.sub(r"^[│╭╰─\s]+|[│╮╯─\s]+$", "", line) for line in text.splitlines()]
    lines = [line for line in lines if line and set(line) - set("─-")]
    # tyro's box: a title ("Value error"), then the message, then help text
    return lines[1] if len(lines) > 1 else (lines[0] if lines else "invalid arguments")


def parse(cls: type[C], argv: Sequence[str] | None, *, prog: str, description: str | None = None) -> C:
    """The resolved config of study ``cls`` from the command line.

    Args:
      cls: the study's config dataclass.
      argv: the arguments (``sys.argv[1:]`` if None).
      prog: the name shown in ``--help``, e.g. ``python -m experiments.overfitting``.
    Returns:
      The frozen config: defaults, then ``--quick``, then ``--config FILE``, then the flags.
    Raises:
      UsageError: a flag or a file that cannot be used; the message names it and the fix.
    """
    import tyro

    argv = list(sys.argv[1:] if argv is None else argv)
    base = cls()
    if "--quick" in argv:
        base = dataclasses.replace(base, quick=True).quick_variant()
    config_file = _value_after(argv, "--config")
    if config_file is not None:
        file_values = load_toml(cls, Path(config_file))
        if file_values.get("quick") and not base.quick:
            base = dataclasses.replace(base, quick=True).quick_variant()
        try:
            base = dataclasses.replace(base, **file_values)
        except TypeError as error:
            raise UsageError(f"--config {config_file}: {error}", "check the setting names") from None
    if "-h" in argv or "--help" in argv:
        return tyro.cli(cls, default=base, args=argv, prog=prog, description=description)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            config = tyro.cli(cls, default=base, args=argv, prog=prog, description=description)
    except SystemExit as exit_:
        if exit_.code in (0, None):
            raise
        raise UsageError(_tyro_message(captured.getvalue()), f"see `{prog} --help` for the options") from None
    validate(config)
    return config


def validate(config: StudyConfig) -> None:
    """UsageError for the first setting that cannot run: the common ranges, then the study's own."""
    problems: list[tuple[str, str, str]] = []
    if not 0 <= config.seed <= SEED_MAX:
        problems.append(("--seed", f"{config.seed} is out of range", f"use a seed in [0, {SEED_MAX}]"))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name in ("epochs",) or f.name.endswith("_epochs"):
            if isinstance(value, int) and value < 1:
                problems.append((flag(f.name), f"{value} epochs", "train for at least 1 epoch"))
        if f.name.endswith("seeds") and isinstance(value, tuple):
            bad = [s for s in value if not 0 <= s <= SEED_MAX]
            if bad:
                problems.append((flag(f.name), f"seed {bad[0]} is out of range", f"use seeds in [0, {SEED_MAX}]"))
        if isinstance(value, tuple) and not value and f.default:  # a list that has a default must not be emptied
            problems.append((flag(f.name), "is empty", "give at least one value"))
        if isinstance(value, float) and value != value:
            problems.append((flag(f.name), "is NaN", "give a number"))
    problems += config.problems()
    if problems:
        name, problem, fix = problems[0]
        raise UsageError(f"{name}: {problem}", fix)


def default_path(env: str, fallback: Path | None) -> Path | None:
    """``$env`` if set, else ``fallback`` if it exists, else None."""
    if os.environ.get(env):
        return Path(os.environ[env])
    return fallback if fallback is not None and fallback.exists() else None


def data_paths(config: StudyConfig) -> dict[str, Path | None]:
    """``manual_dir``, ``data_dir`` and ``gurmukhi`` with the defaults filled in."""
    return {
        "manual_dir": config.manual_dir or default_path("JAXNET_MANUAL_DIR", SHARED / "data" / "mnist"),
        "data_dir": config.data_dir or default_path("JAXNET_DATA_DIR", None),
        "gurmukhi": config.gurmukhi or default_path("JAXNET_GURMUKHI",
                                                    SHARED / "data" / "gurmukhi" / "gurmukhi_digits.npz"),
    }
