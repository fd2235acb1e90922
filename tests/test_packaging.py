"""The installable package: pyproject's contents, the ``jaxnet`` command, and (slow) the built
wheel installed into a fresh virtual environment and run from outside the checkout."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from experiments import STUDIES, cli

REPO = Path(__file__).resolve().parents[1]


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_pyproject_ships_every_package_the_command_and_the_license():
    project = pyproject()
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert set(include) == {"jaxnet*", "experiments*", "benchmarks*"}
    # every folder of code is a package (else setuptools' find would leave it out of the wheel)
    for top in ("jaxnet", "experiments", "benchmarks"):
        for folder in [REPO / top, *(p for p in (REPO / top).rglob("*") if p.is_dir())]:
            if folder.name != "__pycache__" and any(folder.glob("*.py")):
                assert (folder / "__init__.py").exists(), f"{folder} has modules but no __init__.py"
    assert project["project"]["scripts"] == {"jaxnet": "experiments.cli:main"}
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["jaxnet"]
    assert (REPO / "jaxnet" / "py.typed").exists()
    assert project["project"]["license"] == "MIT" and "the jaxnet authors" in (REPO / "LICENSE").read_text()
    deps = " ".join(project["project"]["dependencies"])
    for needed in ("tyro", "tqdm", "tensorboardX", "tensorflow-datasets>=4.9,<5"):
        assert needed in deps
    extras = project["project"]["optional-dependencies"]
    assert any(d.startswith("jax[cuda12]") for d in extras["cuda"])
    assert any(d.startswith("tensorboard") for d in extras["tensorboard"])
    assert {"hypothesis", "jupytext", "scikit-learn"} <= {d.split(">")[0].split("=")[0] for d in extras["dev"]}


def test_console_command_lists_the_studies():
    done = subprocess.run([sys.executable, "-m", "experiments.cli", "list"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in STUDIES:
        assert f"  {name} " in done.stdout


def test_console_command_errors_are_one_line(capsys):
    for argv, message in (([], "error: no command given — "), (["frob"], "error: unknown command 'frob' — "),
                          (["run", "nope"], "error: unknown study 'nope' — use one of overfitting"),
                          (["run"], "error: jaxnet run needs a study name — "),
                          (["list", "x"], "error: jaxnet list takes no arguments")):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(message), (argv, errors)


def test_run_hands_the_options_to_the_study(capsys):
    # the study's own parser answers: its one-line error, before any data is read
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "overfitting", "--quick", "--epochs", "0"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == "error: --epochs: 0 epochs — train for at least 1 epoch"
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("jaxnet ")


def test_check_is_a_jaxnet_command(tmp_path, capsys):
    # = python -m experiments.check RUNS: a folder without results is no reproduction (exit 1)
    assert cli.main(["check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("| Study | Quantity |") and "**FAIL** (no results.json)" in out
    assert "\n0 of " in out and "quantities within tolerance" in out


def _source_copy(destination: Path) -> Path:
    """The checkout without its virtual environment, build folders and outputs (a stale
    ``build/`` would otherwise leak into the wheel)."""
    ignore = shutil.ignore_patterns(".venv", ".git", "build", "dist", "runs", "__pycache__", "*.egg-info",
                                    ".pytest_cache", "notebooks", "docs")
    shutil.copytree(REPO, destination, ignore=ignore)
    return destination


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path, mnist_dir: Path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(_source_copy(tmp_path / "src"))], check=True, timeout=600)
    (wheel,) = wheels.glob("jaxnet-*.whl")

    # a fresh venv that sees this venv's packages through a .pth file (no download), with the wheel on top
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "dev_site_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", str(wheel)],
                   check=True, timeout=600)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(MPLBACKEND="Agg", JAXNET_MANUAL_DIR=str(mnist_dir))
    where = subprocess.run([python, "-c", "import experiments, jaxnet, benchmarks; print(experiments.__file__); "
                                          "print(jaxnet.__file__); print(benchmarks.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(path.startswith(site) for path in where), where  # the installed copies, not the checkout
    assert Path(site, "jaxnet", "py.typed").exists()

    listed = subprocess.run([venv / "bin" / "jaxnet", "list"], cwd=elsewhere, env=env, capture_output=True,
                            text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert "overfitting" in listed.stdout

    out = elsewhere / "overfitting"
    done = subprocess.run([python, "-m", "experiments.overfitting", "--quick", "--epochs", "1", "--out", str(out)],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("results.json", "report.md", "metrics.csv"):
        assert (out / name).exists(), name
