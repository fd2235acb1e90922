"""One source for every setting: a study's frozen dataclass, its command line and its record.

A study subclasses :class:`StudyConfig` with its own fields (network sizes, learning rates, λ
grid, epochs, seeds, …) and a :meth:`StudyConfig.quick` variant. :func:`parse` builds the
command line from the dataclass with tyro (typed parsing, ``--help`` from the field
docstrings), so every field is a flag: ``--learning-rate 0.05``, ``--lambdas 0 0.01 0.1``.
Precedence, lowest first: the dataclass defaults, ``--quick``, ``--config FILE`` (TOML),
the flags.

The boundary is typed: every value, from a flag or the TOML file, is brought to its field's
exact type (:func:`coerce`: an ``int`` field takes no ``1.5`` and no ``true``, a list field no
scalar), then checked (:func:`problems`): finite floats, the common ranges by field name
(:data:`RANGES`: learning rates > 0, momentum in [0, 1), λ ≥ 0, epochs ≥ 1, seeds in
[0, 2³¹ − 1], …), distinct values in every sweep grid (as the reports print them, so that no two
runs share a name), then the study's own :meth:`StudyConfig.problems`. The object :func:`parse`
returns is what runs *and* what ``results.json`` records, with :func:`config_hash` of its
science fields and of the data it reads (:func:`data_record`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import math
import os
import re
import sys
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence, TypeVar

from experiments.lib.errors import UsageError
from experiments.lib.jsonable import to_jsonable

C = TypeVar("C", bound="StudyConfig")
REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("JAXNET_SHARED", REPO.parent / "shared"))
SEED_MAX = 2**31 - 1
INT_MAX = 2**31 - 1  # ints become int32 arrays in jax


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """The options every study shares. The run-control ones (:data:`RUN_FIELDS`) say where
    and how to run; they never change a number, so they are left out of the config hash
    (the data paths enter it through :func:`data_record`)."""

    seed: int = 0
    """random seed (initialisation and data order)"""
    out: Optional[Path] = None
    """output folder (default: runs/<study>)"""
    quick: bool = False
    """small, fast variant (what the tests run): fewer images and epochs"""
    config: Optional[Path] = None
    """a TOML file of settings (a saved setup; give one); flags given beside it win"""
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
"""Fields that say where and how to run, not what: excluded from :func:`science` (the data
paths among them enter the hash through :func:`data_record`)."""

DATA_FIELDS = ("manual_dir", "data_dir", "gurmukhi")


# ---------------------------------------------------------------- types
class Mismatch(Exception):
    """A value that is not of its field's type: ``expected`` says what would be."""

    def __init__(self, expected: str, got: Any):
        super().__init__(expected)
        self.expected, self.got = expected, got


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def describe(tp: Any) -> str:
    """What a value of type ``tp`` is, in words: "a whole number", "a list of numbers", …"""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        return " or ".join(describe(a) for a in args if a is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(_toml(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(describe(args[0]))}"
        if len(set(args)) == 1:
            return f"a list of {len(args)} {_plural(describe(args[0]))}"
        return f"a list of {len(args)} values ({', '.join(describe(a) for a in args)})"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "text",
            Path: "a path"}.get(tp, getattr(tp, "__name__", str(tp)))


def _plural(text: str) -> str:
    if text.startswith("a ") or text.startswith("an "):
        return text.split(" ", 1)[1] + "s"
    return f"values that are {text}"


def coerce(tp: Any, value: Any) -> Any:
    """``value`` as exactly type ``tp`` (a field's annotation), or :class:`Mismatch`.

    Accepted: a bool for ``bool`` only; an int (not a bool) for ``int``; an int or float (not a
    bool) for ``float``, made a float; a non-empty string or Path for ``Path``; one of the choices,
    of the same type, for a ``Literal``; a list or tuple of the element type for a tuple (of the
    given length for a fixed tuple), made a tuple. ``Optional[X]``: None or X.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if _is_union(tp):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            with contextlib.suppress(Mismatch):
                return coerce(option, value)
        raise Mismatch(describe(tp), value)
    if origin is Literal:
        for choice in args:
            if type(value) is type(choice) and value == choice:
                return choice
        raise Mismatch(describe(tp), value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise Mismatch(describe(tp), value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_element(args[0], v) for v in value)
        if len(value) != len(args):
            raise Mismatch(describe(tp), value)
        return tuple(_element(a, v) for a, v in zip(args, value))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and issubclass(tp, Path):
        if isinstance(value, (str, Path)) and str(value) not in ("",):
            return Path(value)
    elif isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:
        return value
    raise Mismatch(describe(tp), value)


def _element(tp: Any, value: Any) -> Any:
    try:
        return coerce(tp, value)
    except Mismatch as error:
        raise Mismatch(error.expected, value) from None


@functools.lru_cache(maxsize=None)
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of every field of a config dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _toml(value: Any) -> str:
    """A value as TOML writes it (for messages)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _example(cls: type, name: str) -> str:
    default = getattr(cls(), name)
    if default is None or default == ():
        return ""
    return f", e.g. {name.replace('_', '-')} = {_toml(default)}"


# ---------------------------------------------------------------- ranges, finiteness, grids
def _positive(v: Any) -> str | None:
    return None if v > 0 else f"{_num(v)} is not positive"


def _at_least(low: int, what: str = "") -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v >= low else (f"{v} {what}".strip() if what else f"{_num(v)} is below {low}")
    return check


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else f"{_num(v)} is negative"


def _unit_interval_open(v: Any) -> str | None:
    return None if 0 <= v < 1 else f"{_num(v)} is outside [0, 1)"


def _seed(v: Any) -> str | None:
    return None if 0 <= v <= SEED_MAX else f"{v} is out of range"


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


RANGES: tuple[tuple[str, Callable[[Any], str | None], str], ...] = (
    (r"(.+_)?(learning_rates?|lrs?)", _positive, "use learning rates > 0"),
    (r"(.+_)?momentum", _unit_interval_open, "use a momentum in [0, 1), e.g. 0.9"),
    (r"(.+_)?(lambdas?|l2s?|lambda_per_image|weight_decay)", _non_negative, "use λ ≥ 0"),
    (r"(.+_)?epochs", _at_least(1, "epochs"), "train for at least 1 epoch"),
    (r"(.+_)?batch_size", _at_least(1), "use a batch of at least 1"),
    (r"(.+_)?seeds?", _seed, f"use seeds in [0, {SEED_MAX}]"),
    (r"(.+_)?images", _non_negative, "use counts ≥ 0"),
    (r"(.+_)?(count|steps|iterations|every)|evals_per_epoch", _at_least(1), "use at least 1"),
)
"""``(field-name pattern, check of one value, fix)``: the ranges every study shares, applied to
a field (or each value of a list field) whose name matches. A study adds its own in
:meth:`StudyConfig.problems`."""

REPEATABLE = re.compile(r"(.+_)?(hidden|channels|widths|layers|shape|dense)")
"""List fields whose values may repeat (a network's layer widths); every other list field is a
grid of alternatives (each value a run or a member), whose values must differ. A field can say
so itself with ``dataclasses.field(..., metadata={"repeats": True})``; likewise a list field
with a default may be emptied only if it says ``metadata={"empty": True}`` (e.g. no hidden
layers: softmax regression)."""


def _grid_key(value: Any) -> Any:
    """A value as the reports print it (``:g`` for floats: 6 significant digits), so that two
    values that would give two runs one name count as duplicates."""
    return f"{value:g}" if isinstance(value, float) else value


def _field_problems(f: dataclasses.Field, tp: Any, value: Any) -> list[tuple[str, str, str]]:
    name, flag_ = f.name, flag(f.name)
    out: list[tuple[str, str, str]] = []
    values = list(value) if isinstance(value, tuple) else [value]
    listed = isinstance(value, tuple)
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            out.append((flag_, f"{_toml(v)} is not a finite number", "give finite numbers"))
            return out
        seeds = re.fullmatch(r"(.+_)?seeds?", name)  # checked against SEED_MAX below
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > INT_MAX and not seeds:
            out.append((flag_, f"{v} is too large", f"use values of at most {INT_MAX}"))
            return out
    for pattern, check, fix in RANGES:
        if not re.fullmatch(pattern, name):
            continue
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            problem = check(v)
            if problem:
                if listed and pattern.startswith(r"(.+_)?seeds"):
                    problem = f"seed {problem}"
                out.append((flag_, problem, fix))
                return out
        break
    emptied = listed and not value and f.default not in (dataclasses.MISSING, ()) and f.default
    if emptied and not f.metadata.get("empty"):
        out.append((flag_, "is empty", "give at least one value"))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        inner = [a for a in args if a is not type(None)]
        origin, args = (typing.get_origin(inner[0]), typing.get_args(inner[0])) if len(inner) == 1 else (None, ())
    variable = origin is tuple and len(args) == 2 and args[1] is Ellipsis
    if variable and not REPEATABLE.fullmatch(name) and not f.metadata.get("repeats"):
        seen: dict[Any, Any] = {}
        for v in values:
            key = _grid_key(v)
            if key in seen:
                first = seen[key]
                same = "twice" if first == v else f"and {v!r} print alike ({key}), so their runs would share a name"
                problem = f"{_toml(first) if not isinstance(first, float) else repr(first)} {same}"
                out.append((flag_, problem, "give each value once (values that differ in the first 6 significant "
                                            "digits)" if first != v else "give each value once"))
                return out
            seen[key] = v
    return out


def problems(config: StudyConfig) -> list[tuple[str, str, str]]:
    """``(flag, problem, fix)`` for every setting of ``config`` that cannot run: its type, then
    finiteness, :data:`RANGES`, emptied lists and duplicates in grids, then the study's own."""
    found: list[tuple[str, str, str]] = []
    types_ = field_types(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        try:
            coerce(types_[f.name], value)
        except Mismatch as error:
            found.append((flag(f.name), f"{_toml(error.got)} is not {error.expected}",
                          f"give {error.expected}"))
            continue
        found += _field_problems(f, types_[f.name], value)
    if not found:
        found += config.problems()
    return found


def normalized(config: C) -> C:
    """``config`` with every value brought to its field's exact type (``1`` → ``1.0`` for a float,
    lists → tuples, strings → Paths), so that equal settings hash alike; a value that cannot be
    is left for :func:`problems` to name."""
    types_ = field_types(type(config))
    changes = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        with contextlib.suppress(Mismatch):
            new = coerce(types_[f.name], value)
            if type(new) is not type(value) or new != value:
                changes[f.name] = new
    return dataclasses.replace(config, **changes) if changes else config


def validate(config: StudyConfig) -> None:
    """UsageError for the first setting that cannot run (see :func:`problems`)."""
    found = problems(config)
    if found:
        name, problem, fix = found[0]
        raise UsageError(f"{name}: {problem}", fix)


# ---------------------------------------------------------------- the record and its hash
def _plain(value: Any) -> Any:
    """:func:`~experiments.lib.jsonable.to_jsonable`, but NaN and ±inf kept apart (as text), so
    that they never hash alike."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return to_jsonable(value)


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_record(config: StudyConfig) -> dict[str, Any]:
    """The data a run reads, for the record and the hash: each of :func:`data_paths` as an
    absolute path (None where there is none), and the sha256 of the Gurmukhi file where it is
    one file. (The MNIST-format files are checked against their official sha256 when read, so
    their folder's path stands for them.) A run on other data files hashes differently, so
    ``--resume`` never reuses runs made on other data."""
    record: dict[str, Any] = {}
    for name, path in data_paths(config).items():
        record[name] = None if path is None else str(Path(path).expanduser().absolute())
    gurmukhi = record.get("gurmukhi")
    if gurmukhi and os.path.isfile(gurmukhi):
        try:
            stat = os.stat(gurmukhi)
            record["gurmukhi_sha256"] = _file_digest(gurmukhi, stat.st_size, stat.st_mtime_ns)
        except OSError:
            record["gurmukhi_sha256"] = None
    return record


def science(config: StudyConfig) -> dict[str, Any]:
    """What changes a number: every field but the run-control ones (``quick`` kept), as plain
    JSON values, and the data read (``"data"``: :func:`data_record`)."""
    values = {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)
              if f.name not in RUN_FIELDS or f.name == "quick"}
    return {**values, "data": data_record(config)}


def recorded_science(results: dict[str, Any]) -> dict[str, Any]:
    """:func:`science` as an earlier ``results.json`` recorded it (its config and data)."""
    config = results.get("config") or {}
    values = {k: v for k, v in config.items() if k not in RUN_FIELDS or k == "quick"}
    return {**values, "data": results.get("data")}


def hash_of(science_fields: dict[str, Any]) -> str:
    text = json.dumps(science_fields, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_hash(config: StudyConfig) -> str:
    """sha256 (first 16 hex digits) of :func:`science` as canonical JSON."""
    return hash_of(science(config))


def differences(recorded: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """``"epochs 1 → 2"`` for each science field that differs (``"data.gurmukhi …"`` inside the data)."""
    out = []
    for k in sorted(set(recorded) | set(current)):
        old, new = recorded.get(k), current.get(k)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            out += differences(old, new, f"{prefix}{k}.")
        else:
            out.append(f"{prefix}{k} {json.dumps(old, ensure_ascii=False)} → {json.dumps(new, ensure_ascii=False)}")
    return out


def flag(field: str) -> str:
    """The command-line flag of a field: ``learning_rate`` → ``--learning-rate``."""
    return "--" + field.replace("_", "-")


# ---------------------------------------------------------------- the command line and the file
def _values_after(argv: Sequence[str], name: str) -> list[str]:
    found = []
    for i, arg in enumerate(argv):
        if arg == name:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise UsageError(f"{name} needs a value", f"give it as {name} FILE")
            found.append(argv[i + 1])
        elif arg.startswith(name + "="):
            found.append(arg.split("=", 1)[1])
    return found


def _path_fields(cls: type) -> list[str]:
    out = []
    for name, tp in field_types(cls).items():
        options = typing.get_args(tp) if _is_union(tp) else (tp,)
        if any(isinstance(o, type) and issubclass(o, Path) for o in options):
            out.append(name)
    return out


def _refuse_empty_paths(cls: type, argv: Sequence[str]) -> None:
    """``--out ""`` would be the current folder: a path flag must name something."""
    for name in _path_fields(cls):
        option = flag(name)
        for i, arg in enumerate(argv):
            empty = arg == option + "=" or (arg == option and i + 1 < len(argv) and argv[i + 1].strip() == "")
            if empty:
                raise UsageError(f"{option} is empty", f"give {option} a path")


def load_toml(cls: type[C], path: Path) -> dict[str, Any]:
    """The settings of a TOML file, each brought to its field's type (:func:`coerce`).

    Keys are field names, with ``_`` or ``-``; one setting spelled both ways, an unknown key or a
    value of the wrong type is a UsageError naming the key.
    """
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file", "give the path of a TOML settings file") from None
    except IsADirectoryError:
        raise UsageError(f"--config {path} is a folder", "give the path of a TOML settings file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"--config {path}: not valid TOML ({error})", "fix the file (key = value lines)") from None
    types_ = field_types(cls)
    settable = sorted(set(types_) - {"config"})
    values: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in types_ or name == "config":
            raise UsageError(f"--config {path}: unknown setting {key!r}", f"use one of {', '.join(settable)}")
        if name in spelled:
            raise UsageError(f"--config {path}: {spelled[name]!r} and {key!r} are one setting",
                             "give it once")
        spelled[name] = key
        try:
            values[name] = coerce(types_[name], value)
        except Mismatch as error:
            where = f"{key} = {_toml(value)}" + (f": {_toml(error.got)}" if error.got is not value else "")
            raise UsageError(f"--config {path}: {where} is not {error.expected}",
                             f"write {key} as {describe(types_[name])}{_example(cls, name)}") from None
        field = next(f for f in dataclasses.fields(cls) if f.name == name)
        for _, problem, fix in _field_problems(field, types_[name], values[name])[:1]:
            raise UsageError(f"--config {path}: {key}: {problem}", fix)
    return values


def _tyro_message(text: str) -> str:
    """The message of tyro's error box (boxed on a terminal, ruled with dashes otherwise): the
    lines after its title, up to the next rule, joined into one line."""
    lines = [re.sub(r"^[│╭╰\s]+|[│╮╯\s]+$", "", line) for line in text.splitlines()]
    lines = [line for line in lines if line]
    rule = lambda line: set(line) <= set("─- ")  # noqa: E731
    body, started = [], False
    for line in lines[1:]:
        if rule(line):
            if started:
                break
            continue
        started = True
        body.append(line)
    message = " ".join(body) or (re.sub(r"[─-]+", "", lines[0]).strip() if lines else "") or "invalid arguments"
    return re.sub(r"\s+", " ", message).strip()


def cli(cls: type[C], argv: Sequence[str], *, prog: str, description: str | None = None, default: Any = None) -> C:
    """``tyro.cli`` with its errors as one UsageError line (the whole message, e.g. every valid
    choice), and ``--help`` printed as tyro prints it."""
    import tyro

    argv = list(argv)
    kwargs = {"args": argv, "prog": prog, "description": description}
    if default is not None:
        kwargs["default"] = default
    if "-h" in argv or "--help" in argv:
        return tyro.cli(cls, **kwargs)
    captured = io.StringIO()
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "400"  # one long line per message: nothing cut or wrapped
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            return tyro.cli(cls, **kwargs)
    except SystemExit as exit_:
        if exit_.code in (0, None):
            raise
        raise UsageError(_tyro_message(captured.getvalue()), f"see `{prog} --help` for the options") from None
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved


def parse(cls: type[C], argv: Sequence[str] | None, *, prog: str, description: str | None = None) -> C:
    """The resolved, typed and checked config of study ``cls`` from the command line.

    Args:
      cls: the study's config dataclass.
      argv: the arguments (``sys.argv[1:]`` if None).
      prog: the name shown in ``--help``, e.g. ``python -m experiments.overfitting``.
    Returns:
      The frozen config: defaults, then ``--quick``, then ``--config FILE``, then the flags;
      every value of its field's exact type, checked by :func:`validate`.
    Raises:
      UsageError: a flag or a file that cannot be used; the message names it and the fix.
        ``--config`` given twice is refused (one file holds a setup).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    base = cls()
    if "--quick" in argv:
        base = dataclasses.replace(base, quick=True).quick_variant()
    files = _values_after(argv, "--config")
    if len(files) > 1:
        raise UsageError(f"--config is given {len(files)} times ({', '.join(files)})",
                         "give one settings file (put every setting of the setup in it)")
    _refuse_empty_paths(cls, argv)
    if files:
        if not files[0].strip():
            raise UsageError("--config is empty", "give --config the path of a TOML settings file")
        file_values = load_toml(cls, Path(files[0]))
        if file_values.get("quick") and not base.quick:
            base = dataclasses.replace(base, quick=True).quick_variant()
        base = dataclasses.replace(base, **file_values)
    config = normalized(cli(cls, argv, prog=prog, description=description, default=base))
    validate(config)
    return config


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


def check_data_paths(config: StudyConfig) -> None:
    """UsageError for a data flag that names nothing usable: ``--manual-dir`` must be a folder,
    ``--gurmukhi`` an existing file or folder, ``--data-dir`` a folder where it exists."""
    if config.manual_dir is not None:
        path = Path(config.manual_dir).expanduser()
        if not path.exists():
            raise UsageError(f"--manual-dir {path}: no such folder",
                             "give the folder holding the four MNIST .gz files")
        if not path.is_dir():
            raise UsageError(f"--manual-dir {path} is a file, not a folder",
                             "give the folder holding the four .gz files, not a file")
    if config.data_dir is not None and Path(config.data_dir).expanduser().is_file():
        raise UsageError(f"--data-dir {config.data_dir} is a file, not a folder",
                         "give --data-dir a folder (downloads and the cache go there)")
