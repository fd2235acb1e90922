"""The README and the pages under docs/ say only what the code does: the README's study table
is the generated one, every `python -m experiments.<study> …` command they show parses to a
valid config, every relative link they make points at a file (and heading) that exists, and the
README stays a front door (at most 250 lines)."""
import importlib
import re
import shlex
from pathlib import Path

import pytest

import experiments
from experiments import check
from experiments.lib import config as config_lib

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
COMMAND = re.compile(r"python -m experiments\.(\w+)((?: [^`\n#|]*)?)")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
MAX_README_LINES = 250


def _name(page: Path) -> str:
    return page.relative_to(REPO).as_posix()


def test_the_study_table_is_generated_from_the_reference():
    text = README.read_text()
    assert check.rewrite_readme(text, check.load_reference()) == text, (
        "README's study table is stale: run `python -m experiments.check --readme`")


def test_every_reproduction_quantity_has_a_reference_value():
    reference = check.load_reference()["values"]
    missing = [check.key(q) for q in check.quantities() if check.key(q) not in reference]
    assert not missing, f"no reference value for {missing}: run `python -m experiments.check RUNS --update-reference`"


def test_the_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines (at most {MAX_README_LINES}): move detail into a page under docs/")


def _commands():
    seen = []
    for page in PAGES:
        for name, args in COMMAND.findall(page.read_text()):
            if name in experiments.STUDIES or name == "train":
                seen.append(pytest.param(name, args.replace("\\", " ").strip(),
                                         id=f"{_name(page)}: {name} {args.strip()}".strip()))
    return seen


def test_the_commands_are_found_in_the_docs_pages_too():
    pages = {param.id.split(":")[0] for param in _commands()}
    assert "README.md" in pages and any(p.startswith("docs/") for p in pages), pages


@pytest.mark.parametrize("name, args", _commands())
def test_readme_commands_parse(name, args, tmp_path):
    module = importlib.import_module(f"experiments.{name}")
    argv = [a for a in shlex.split(args) if a not in ("…", "...", "--help") and not a.startswith("<")]
    if "--config" in argv:  # the docs' saved setup: a small one stands in for it
        (tmp_path / "setup.toml").write_text("epochs = 3\n")
        argv[argv.index("--config") + 1] = str(tmp_path / "setup.toml")
    config_lib.parse(module.Config, argv, prog=name)


# --- links ----------------------------------------------------------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces → '-'."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # a '#' in a code block is no heading
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def _links(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        yield target, (page.parent / path).resolve() if path else page, anchor


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_relative_link_points_at_a_file_that_exists(page):
    broken = []
    for target, path, anchor in _links(page):
        if not path.exists():
            broken.append(f"{target} (no file {path})")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target} (no heading #{anchor} in {_name(path)})")
    assert not broken, f"{_name(page)} links to what is not there: {broken}"


def test_the_readme_links_every_docs_page():
    linked = {path for _, path, _ in _links(README) if path.parent == DOCS.resolve()}
    pages = {page.resolve() for page in DOCS.glob("*.md")}
    assert pages <= linked, f"README.md does not link {sorted(_name(p) for p in pages - linked)}"
