"""notebooks/: each jupytext script runs in quick mode, and its .ipynb is in sync with it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SCRIPTS = sorted(NOTEBOOKS.glob("*.py"))
EXPECTED_OUTPUT = {"gradients": "largest relative difference", "overfitting_l2": "Σ‖W‖²"}


def test_there_are_notebooks():
    assert {p.stem for p in SCRIPTS} == set(EXPECTED_OUTPUT)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_ipynb_is_in_sync_with_its_script(script: Path):
    jupytext = pytest.importorskip("jupytext")
    notebook = script.with_suffix(".ipynb")
    assert notebook.exists(), f"{notebook} is missing: run `jupytext --to ipynb {script.relative_to(REPO)}`"
    from_script, from_notebook = jupytext.read(script), jupytext.read(notebook)
    cells = [(c.cell_type, c.source) for c in from_script.cells]
    assert cells == [(c.cell_type, c.source) for c in from_notebook.cells], (
        f"{notebook.name} differs from {script.name}: run `jupytext --sync {script.relative_to(REPO)}` "
        f"(or `jupytext --to ipynb {script.relative_to(REPO)}`)")
    assert len(cells) > 5


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(script: Path, mnist_dir: Path, tmp_path: Path):
    env = {**os.environ, "JAXNET_NOTEBOOK_QUICK": "1", "MPLBACKEND": "Agg", "JAXNET_MANUAL_DIR": str(mnist_dir),
           "PYTHONPATH": str(REPO)}
    code = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", code, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert EXPECTED_OUTPUT[script.stem] in done.stdout
