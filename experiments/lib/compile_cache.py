"""JAX's persistent compilation cache for the studies: a study run again (another setting, a
resumed run, ``experiments.all`` a second time) loads its compiled XLA programs from disk
instead of compiling them again; compilation is about a fifth of a full run on a 2-core CPU
(``benchmarks/study_profile.py``). The cache stores executables keyed on the program, the jax
version and the device, so a hit runs exactly what a compilation would have produced.

Where: ``JAXNET_COMPILATION_CACHE`` (a folder, or ``off``), else ``$XDG_CACHE_HOME/jaxnet/xla``
(``~/.cache/jaxnet/xla``). A ``JAX_COMPILATION_CACHE_DIR`` already set is left alone.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping

MIN_COMPILE_SECONDS = 0.1  # cache what took longer than this to compile (jax's default, 1 s, skips most of ours)


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The folder the studies cache compiled programs in, or None when it is turned off or
    jax's own ``JAX_COMPILATION_CACHE_DIR`` is set."""
    if environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    setting = environ.get("JAXNET_COMPILATION_CACHE", "").strip()
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    if setting:
        return Path(setting).expanduser()
    base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "jaxnet" / "xla"


def enable(log: Callable[[str], None] = print) -> Path | None:
    """Points jax's persistent compilation cache at :func:`cache_dir` (once per process).
    A folder that cannot be created costs only the cache: one line says so."""
    import jax

    path = cache_dir()
    if path is None or jax.config.jax_compilation_cache_dir:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        log(f"note: compiled programs are not cached ({path}: {error.strerror or error}); "
            "set JAXNET_COMPILATION_CACHE to a writable folder, or to off")
        return None
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    compilation_cache.reset_cache()  # jax decides once per process whether to use a cache: decide again
    return path
