"""Markdown output: tables, whole reports and dated sections appended to a running log."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

log = logging.getLogger("benchmarks")


def cell(text: object) -> str:
    """``text`` fit for one Markdown table cell (one line, no pipes)."""
    return " ".join(("" if text is None else str(text)).split()).replace("|", "/")


def row(*cells: object) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table's lines: header, separator, one line per row."""
    return [row(*header), "|" + "---|" * len(header), *(row(*r) for r in rows)]


def write_report(path: Path, lines: Iterable[str]) -> Path:
    """Write a whole report (replacing the previous one); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log.info("wrote %s", path)
    return path


def append_section(path: Path, text: str, preamble: str = "") -> Path:
    """Append ``text`` to a running log of results, newest last; a new file starts with
    ``preamble``. Returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if preamble and not path.exists():
        path.write_text(preamble, encoding="utf-8")
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text + "\n")
    log.info("appended to %s", path)
    return path
