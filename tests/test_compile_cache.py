"""The studies' persistent compilation cache: where it goes, how it is turned off, that a second
run loads its programs from it, and that it changes no number."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.lib import compile_cache

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("environ, expected", [
    ({"HOME": "/h"}, None),  # filled in below: ~/.cache/jaxnet/xla
    ({"XDG_CACHE_HOME": "/x"}, Path("/x/jaxnet/xla")),
    ({"JAXNET_COMPILATION_CACHE": "/c/d"}, Path("/c/d")),
    ({"JAXNET_COMPILATION_CACHE": "off"}, None),
    ({"JAXNET_COMPILATION_CACHE": "/c/d", "JAX_COMPILATION_CACHE_DIR": "/j"}, None),  # jax's own setting wins
])
def test_cache_dir(environ, expected):
    if environ == {"HOME": "/h"}:
        expected = Path.home() / ".cache" / "jaxnet" / "xla"
    assert compile_cache.cache_dir(environ) == expected


def test_an_uncreatable_folder_costs_only_the_cache(tmp_path, monkeypatch):
    import jax

    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("JAXNET_COMPILATION_CACHE", str(blocker / "cache"))
    tests_cache = jax.config.jax_compilation_cache_dir  # conftest's, for the rest of the suite
    jax.config.update("jax_compilation_cache_dir", None)
    try:
        lines = []
        assert compile_cache.enable(lines.append) is None
        assert jax.config.jax_compilation_cache_dir is None  # nothing was switched on
    finally:
        jax.config.update("jax_compilation_cache_dir", tests_cache)
    assert len(lines) == 1 and str(blocker / "cache") in lines[0] and "JAXNET_COMPILATION_CACHE" in lines[0]


RUN = """
import sys, jax, jax.monitoring
hits = []
jax.monitoring.register_event_listener(lambda event, **kw: hits.append(event) if event.endswith("cache_hits") else None)
from experiments import logistic_regression
logistic_regression.main(["--quick", "--epochs", "3", "--quiet", "--out", sys.argv[1]])
print("HITS", len(hits))
"""


def _run_study(out: Path, cache: Path) -> int:
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    done = subprocess.run([sys.executable, "-c", RUN, str(out)], capture_output=True, text=True, cwd=REPO,
                          env=env | {"JAXNET_COMPILATION_CACHE": str(cache)}, timeout=300)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split("HITS")[-1])


def test_a_second_run_loads_its_programs_and_gets_the_same_numbers(tmp_path):
    cache = tmp_path / "xla"
    first_hits = _run_study(tmp_path / "first", cache)
    assert any(cache.iterdir())  # the first run wrote its programs
    assert _run_study(tmp_path / "second", cache) > first_hits  # the second loaded them

    def histories(folder):
        return [run["history"] | {"seconds": None} for run in json.loads((folder / "results.json").read_text())["runs"]]

    assert histories(tmp_path / "second") == histories(tmp_path / "first")
