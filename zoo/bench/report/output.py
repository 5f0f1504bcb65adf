"""Every file of a results folder written whole (aside, then moved into place, so that a
stopped command leaves the old file or the new one, never half of one): a table as CSV with
its Markdown beside it, a text, a JSON record."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from zoo.bench import cache

__all__ = ["commit", "record", "run_summary", "table", "text"]


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


def commit() -> str:
    """The short hash of ``HEAD`` of the zoo's own git checkout (the one whose top folder
    holds the running ``zoo`` package), whatever the working directory; ``"unknown"`` for a
    copy outside one (a ``git archive``, or an install into a virtual environment that may
    itself sit inside some other repository)."""
    package = Path(__file__).resolve().parents[2]
    try:
        top, head = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "--short", "HEAD"],
            capture_output=True, text=True, check=True, cwd=package,
        ).stdout.split()  # fmt: skip
    except (OSError, subprocess.CalledProcessError, ValueError):
        return "unknown"
    return head if Path(top).resolve() == package.parent else "unknown"


def run_summary(command: str, argv: list[str] | None, started: float, **extra) -> dict:
    """What ``summary.json`` says of a command's run: its command line (``zoo-bench
    <command>`` and ``argv``, ``sys.argv[1:]`` when ``None``), the checkout's commit, the
    machine, the date it started (``started``, ``time.time()``), its wall time, and
    ``extra``."""
    import jax

    import zoo

    given = sys.argv[1:] if argv is None else argv
    return {
        "command": " ".join([f"zoo-bench {command}", *given]),
        "commit": commit(),
        "machine": {
            "backend": jax.default_backend(),
            "platform": platform.platform(),
            "devices": [str(d) for d in jax.devices()],
            "zoo": zoo.__version__,
        },
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_s": round(time.time() - started, 1),
        **extra,
    }
