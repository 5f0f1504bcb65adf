"""Every file of a results folder written whole (aside, then moved into place, so that a
stopped command leaves the old file or the new one, never half of one): a table as CSV with
its Markdown beside it, a text, a JSON record."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from zoo.bench import cache

__all__ = ["record", "table", "text"]


def table(out: Path, stem: str, frame: pd.DataFrame, markdown: str | None = None) -> None:
    """``<out>/<stem>.csv`` (``frame``, without its index) and, when given,
    ``<out>/<stem>.md`` (``markdown``)."""
    cache.write_bytes(Path(out) / f"{stem}.csv", frame.to_csv(index=False).encode())
    if markdown is not None:
        text(Path(out) / f"{stem}.md", markdown)


def text(path: Path, content: str) -> None:
    """``content`` into ``path``."""
    cache.write_bytes(Path(path), content.encode())


def record(path: Path, obj) -> None:
    """``obj`` as indented JSON into ``path``."""
    text(path, json.dumps(obj, indent=1) + "\n")
