"""The README says only what the code does: its study table is the generated one, and every
`python -m experiments.<study> …` command it shows parses to a valid config."""
import importlib
import re
import shlex
from pathlib import Path

import pytest

import experiments
from experiments import check
from experiments.lib import config as config_lib

README = Path(__file__).resolve().parents[1] / "README.md"
COMMAND = re.compile(r"python -m experiments\.(\w+)((?: [^`\n#|]*)?)")


def test_the_study_table_is_generated_from_the_reference():
    text = README.read_text()
    assert check.rewrite_readme(text, check.load_reference()) == text, (
        "README's study table is stale: run `python -m experiments.check --readme`")


def test_every_reproduction_quantity_has_a_reference_value():
    reference = check.load_reference()["values"]
    missing = [check.key(q) for q in check.quantities() if check.key(q) not in reference]
    assert not missing, f"no reference value for {missing}: run `python -m experiments.check RUNS --update-reference`"


def _commands():
    seen = []
    for name, args in COMMAND.findall(README.read_text()):
        if name in experiments.STUDIES or name == "train":
            seen.append((name, args.replace("\\", " ").strip()))
    return seen


@pytest.mark.parametrize("name, args", _commands())
def test_readme_commands_parse(name, args, tmp_path):
    module = importlib.import_module(f"experiments.{name}")
    argv = [a for a in shlex.split(args) if a not in ("…", "...", "--help") and not a.startswith("<")]
    if "--config" in argv:  # the README's saved setup: a small one stands in for it
        (tmp_path / "setup.toml").write_text("epochs = 3\n")
        argv[argv.index("--config") + 1] = str(tmp_path / "setup.toml")
    config_lib.parse(module.Config, argv, prog=name)
