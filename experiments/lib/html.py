"""A report page in HTML: the study's ``report.md`` rendered by markdown-it-py (tables on),
figures inline, in one small stylesheet; ``experiments.all``'s index links these pages."""
from __future__ import annotations

import html
from pathlib import Path

from experiments.lib.results import write_text_atomic

STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
img { max-width: 100%; height: auto; display: block; margin: 1rem 0 0.25rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; }
th { background: #f4f4f4; }
td[style*="right"] { font-variant-numeric: tabular-nums; }
code { background: #f4f4f4; padding: 0 0.2rem; }
"""


def page(markdown_text: str, title: str) -> str:
    """A whole HTML page from Markdown (relative image links stay relative)."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown_text)
    return (f"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n")


def write(markdown_text: str, title: str, path: Path) -> Path:
    """Writes :func:`page` to ``path`` (atomically); returns it."""
    return write_text_atomic(path, page(markdown_text, title))
