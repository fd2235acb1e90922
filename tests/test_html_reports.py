"""Every report is also an HTML page (markdown-it-py, figures inline), and the index of
``experiments.all`` links those pages; checked in a real headless browser when one is here."""
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from experiments import all as all_studies
from experiments import lib
from tests.test_experiments_lib import toy_main


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images, self.links = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src"))
        if tag == "a":
            self.links.append(attrs.get("href"))


def parsed(path: Path) -> _Tags:
    tags = _Tags()
    tags.feed(path.read_text())
    return tags


def test_a_report_is_written_as_markdown_and_as_html_with_its_figures(tmp_path):
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    report = lib.Report("T").what_was_run("An *MLP*.").figure(tmp_path / "figs" / "a.png", "Loss curves.")
    report.table(["run", "accuracy"], [["a", 0.91234]])
    report.write(tmp_path)
    page = parsed(tmp_path / "report.html")
    assert {"h1", "h2", "table", "th", "td", "img", "em"} <= set(page.tags)
    assert page.images == ["figs/a.png"] and (tmp_path / page.images[0]).exists()
    text = (tmp_path / "report.html").read_text()
    assert "<title>T</title>" in text and ">0.912<" in text and "<em>MLP</em>" in text


def test_the_index_links_every_study_to_its_html_page(tmp_path):
    all_studies.main(["--out", str(tmp_path), "--quick", "--quiet"], studies={"good": toy_main, "missing": None})
    links = parsed(tmp_path / "index.html").links
    assert links == ["good/report.html"]
    assert (tmp_path / links[0]).exists()
    study_page = parsed(tmp_path / links[0])
    assert study_page.images and all((tmp_path / "good" / src).exists() for src in study_page.images)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_chromium_renders_a_report_with_its_images(tmp_path):
    all_studies.main(["--out", str(tmp_path), "--quick", "--quiet"], studies={"good": toy_main})
    page = tmp_path / "good" / "report.html"
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(command + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "<h1>" in dom and "<img" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(command + [f"--screenshot={shot}", "--window-size=1000,1400", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
