"""One source for every setting: a study's frozen dataclass, its command line and its record.

A study subclasses :class:`StudyConfig` with its own fields (network sizes, learning rates, λ
grid, epochs, seeds, …) and a :meth:`StudyConfig.quick_variant`. :func:`parse` builds the
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


# ---------------------------------------------------------------- types
class Mismatch(Exception):
    """A value that is not of its field's type: ``expected`` says what would be."""

    def __init__(self, expected: str, got: Any):
        super().__init__(expected)
        self.expected, self.got = expected, got


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _variable(args: tuple[Any, ...]) -> bool:
    """Whether these are the arguments of ``tuple[X, ...]`` (a list of any length)."""
    return len(args) == 2 and args[1] is Ellipsis


WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text", Path: "a path"}
SCALARS = {bool: bool, int: int, float: (int, float), str: str}


def describe(tp: Any) -> str:
    """What a value of type ``tp`` is, in words: "a whole number", "a list of numbers", …"""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        return " or ".join(describe(a) for a in args if a is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(map(_toml, args))
    if origin is tuple and _variable(args):
        return f"a list of {_plural(describe(args[0]))}"
    if origin is tuple and len(set(args)) == 1:
        return f"a list of {len(args)} {_plural(describe(args[0]))}"
    if origin is tuple:
        return f"a list of {len(args)} values ({', '.join(map(describe, args))})"
    return WORDS.get(tp, getattr(tp, "__name__", str(tp)))


def _plural(text: str) -> str:
    article, _, rest = text.partition(" ")
    return rest + "s" if article in ("a", "an") else f"values that are {text}"


def coerce(tp: Any, value: Any) -> Any:
    """``value`` as exactly type ``tp`` (a field's annotation), or :class:`Mismatch`.

    Accepted: a bool for ``bool`` only; an int (not a bool) for ``int``; an int or float (not a
    bool) for ``float``, made a float; a non-empty string or Path for ``Path``; one of the choices,
    of the same type, for a ``Literal``; a list or tuple of the element type for a tuple (of the
    given length for a fixed tuple), made a tuple. ``Optional[X]``: None or X.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            with contextlib.suppress(Mismatch):
                return coerce(option, value)
    elif origin is Literal:
        for choice in args:
            if type(value) is type(choice) and value == choice:
                return choice
    elif origin is tuple:
        if isinstance(value, (list, tuple)):
            elements = args[:1] * len(value) if _variable(args) else args
            if len(value) == len(elements):
                return tuple(_element(a, v) for a, v in zip(elements, value))
    elif tp in SCALARS:
        if isinstance(value, SCALARS[tp]) and (tp is bool or not isinstance(value, bool)):
            return float(value) if tp is float else value
    elif isinstance(tp, type) and issubclass(tp, Path):
        if isinstance(value, (str, Path)) and str(value):
            return Path(value)
    elif tp is Any or not isinstance(tp, type) or isinstance(value, tp):
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
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_toml, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float) and not math.isfinite(value):
        return _plain(value)
    if isinstance(value, (bool, str, Path)):
        return json.dumps(value if isinstance(value, bool) else str(value))
    return repr(value)


def _example(cls: type, name: str) -> str:
    default = getattr(cls(), name)
    if default is None or default == ():
        return ""
    return f", e.g. {name.replace('_', '-')} = {_toml(default)}"


# ---------------------------------------------------------------- ranges, finiteness, grids
SEEDS = r"(.+_)?seeds?"
RANGES: tuple[tuple[str, Callable[[Any], bool], str, str], ...] = (
    (r"(.+_)?(learning_rates?|lrs?)", lambda v: v > 0, "{} is not positive", "use learning rates > 0"),
    (r"(.+_)?momentum", lambda v: 0 <= v < 1, "{} is outside [0, 1)", "use a momentum in [0, 1), e.g. 0.9"),
    (r"(.+_)?(lambdas?|l2s?|lambda_per_image|weight_decay)", lambda v: v >= 0, "{} is negative", "use λ ≥ 0"),
    (r"(.+_)?epochs", lambda v: v >= 1, "{} epochs", "train for at least 1 epoch"),
    (r"(.+_)?batch_size", lambda v: v >= 1, "{} is below 1", "use a batch of at least 1"),
    (SEEDS, lambda v: 0 <= v <= SEED_MAX, "{} is out of range", f"use seeds in [0, {SEED_MAX}]"),
    (r"(.+_)?images", lambda v: v >= 0, "{} is negative", "use counts ≥ 0"),
    (r"(.+_)?(count|steps|iterations|every)|evals_per_epoch", lambda v: v >= 1, "{} is below 1", "use at least 1"),
)
"""``(field-name pattern, test of one value, problem, fix)``: the ranges every study shares,
applied to a field (or each value of a list field) whose name matches, by the first pattern that
does. A study adds its own in :meth:`StudyConfig.problems`."""

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


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _is_grid(f: dataclasses.Field, tp: Any) -> bool:
    """Whether field ``f`` (of type ``tp``) is a grid: a list whose values must differ."""
    options = [a for a in typing.get_args(tp) if a is not type(None)] if _is_union(tp) else [tp]
    listed = len(options) == 1 and typing.get_origin(options[0]) is tuple and _variable(typing.get_args(options[0]))
    return listed and not REPEATABLE.fullmatch(f.name) and not f.metadata.get("repeats")


def _check(f: dataclasses.Field, tp: Any, value: Any) -> tuple[str, str] | None:
    """``(problem, fix)`` for the first thing wrong with field ``f``'s well-typed ``value``: a
    number not finite or too large, out of its range, a list emptied, a repeat in a grid."""
    listed = isinstance(value, tuple)
    values = list(value) if listed else [value]
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for v in numbers:
        if isinstance(v, float) and not math.isfinite(v):
            return f"{_toml(v)} is not a finite number", "give finite numbers"
        if isinstance(v, int) and abs(v) > INT_MAX and not re.fullmatch(SEEDS, f.name):  # seeds: in RANGES
            return f"{v} is too large", f"use values of at most {INT_MAX}"
    for pattern, test, problem, fix in RANGES:
        if re.fullmatch(pattern, f.name):
            for v in numbers:
                if not test(v):
                    return ("seed " if listed and pattern == SEEDS else "") + problem.format(_num(v)), fix
            break
    if listed and not value and f.default is not dataclasses.MISSING and f.default and not f.metadata.get("empty"):
        return "is empty", "give at least one value"
    seen: dict[Any, Any] = {}
    for v in values if _is_grid(f, tp) else ():
        key = _grid_key(v)
        if key in seen and seen[key] == v:
            return f"{_toml(seen[key])} twice", "give each value once"
        if key in seen:
            return (f"{_toml(seen[key])} and {v!r} print alike ({key}), so their runs would share a name",
                    "give each value once (values that differ in the first 6 significant digits)")
        seen[key] = v
    return None


def problems(config: StudyConfig) -> list[tuple[str, str, str]]:
    """``(flag, problem, fix)`` for every setting of ``config`` that cannot run: its type, then
    finiteness, :data:`RANGES`, emptied lists and duplicates in grids, then the study's own."""
    found: list[tuple[str, str, str]] = []
    for f in dataclasses.fields(config):
        tp, value = field_types(type(config))[f.name], getattr(config, f.name)
        try:
            coerce(tp, value)
            problem = _check(f, tp, value)
        except Mismatch as error:
            problem = f"{_toml(error.got)} is not {error.expected}", f"give {error.expected}"
        if problem:
            found.append((flag(f.name), *problem))
    return found or list(config.problems())


def normalized(config: C) -> C:
    """``config`` with every value brought to its field's exact type (``1`` → ``1.0`` for a float,
    lists → tuples, strings → Paths), so that equal settings hash alike; a value that cannot be
    is left for :func:`problems` to name."""
    changes = {}
    for name, tp in field_types(type(config)).items():
        value = getattr(config, name)
        with contextlib.suppress(Mismatch):
            new = coerce(tp, value)
            if type(new) is not type(value) or new != value:
                changes[name] = new
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
    """The sha256 of a file, read again when its size or time (the cache key) changes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def data_record(config: StudyConfig) -> dict[str, Any]:
    """The data a run reads, for the record and the hash: each of :func:`data_paths` as an
    absolute path (None where there is none), and the sha256 of the Gurmukhi file where it is
    one file. (The MNIST-format files are checked against their official sha256 when read, so
    their folder's path stands for them.) A run on other data files hashes differently, so
    ``--resume`` never reuses runs made on other data."""
    record: dict[str, Any] = {name: None if path is None else str(Path(path).expanduser().absolute())
                              for name, path in data_paths(config).items()}
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
def _given(argv: Sequence[str], option: str) -> list[str | None]:
    """The values given to ``option`` (``--x V`` or ``--x=V``); None where ``--x`` has none after it."""
    found: list[str | None] = []
    for i, arg in enumerate(argv):
        if arg == option:
            found.append(argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None)
        elif arg.startswith(option + "="):
            found.append(arg.split("=", 1)[1])
    return found


def _path_fields(cls: type) -> list[str]:
    """The fields that hold a path (``Path`` or ``Optional[Path]``)."""
    return [name for name, tp in field_types(cls).items() if any(
        isinstance(o, type) and issubclass(o, Path) for o in (typing.get_args(tp) if _is_union(tp) else (tp,)))]


def load_toml(cls: type[C], path: Path) -> dict[str, Any]:
    """The settings of a TOML file, each brought to its field's type (:func:`coerce`) and checked.

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
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "config"}
    values: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in fields:
            raise UsageError(f"--config {path}: unknown setting {key!r}", f"use one of {', '.join(sorted(fields))}")
        if name in spelled:
            raise UsageError(f"--config {path}: {spelled[name]!r} and {key!r} are one setting", "give it once")
        spelled[name], tp = key, field_types(cls)[name]
        try:
            values[name] = coerce(tp, value)
        except Mismatch as error:
            where = f"{key} = {_toml(value)}" + (f": {_toml(error.got)}" if error.got is not value else "")
            raise UsageError(f"--config {path}: {where} is not {error.expected}",
                             f"write {key} as {describe(tp)}{_example(cls, name)}") from None
        problem = _check(fields[name], tp, values[name])
        if problem:
            raise UsageError(f"--config {path}: {key}: {problem[0]}", problem[1])
    return values


def _tyro_message(text: str) -> str:
    """The message of tyro's error box (boxed on a terminal, ruled with dashes otherwise): the
    lines after its title, up to the next rule, joined into one line."""
    lines = [re.sub(r"^[│╭╰\s]+|[│╮╯\s]+$", "", line) for line in text.splitlines()]
    lines = [line for line in lines if line]
    body: list[str] = []
    for line in lines[1:]:
        if set(line) <= set("─- "):  # a rule
            if body:
                break
            continue
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
        os.environ.pop("COLUMNS", None) if saved is None else os.environ.update(COLUMNS=saved)


def parse(cls: type[C], argv: Sequence[str] | None, *, prog: str, description: str | None = None) -> C:
    """The config of study ``cls`` from ``argv`` (``sys.argv[1:]`` if None; ``prog`` is the name
    ``--help`` shows): the defaults, then ``--quick``, then ``--config FILE``, then the flags, each
    value of its field's exact type and checked (:func:`validate`). A flag or file that cannot be
    used is a UsageError naming it and the fix; so is ``--config`` twice (one file is one setup)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    files = _given(argv, "--config")
    if None in files:
        raise UsageError("--config needs a value", "give it as --config FILE")
    if len(files) > 1:
        raise UsageError(f"--config is given {len(files)} times ({', '.join(files)})",
                         "give one settings file (put every setting of the setup in it)")
    for option in map(flag, _path_fields(cls)):
        if any(value is not None and not value.strip() for value in _given(argv, option)):
            raise UsageError(f"{option} is empty", f"give {option} a path")  # "" would be the current folder
    base = cls()
    if "--quick" in argv:
        base = dataclasses.replace(base, quick=True).quick_variant()
    if files:
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
