"""The output folder's cache: trained runs, samples and finished cells, each written atomically.

Every piece is written to a temporary file and moved into place with ``os.replace``, so a
killed benchmark leaves either the whole piece or none of it, and a run started again picks
up where it stopped. A piece's file name holds a hash of every setting it depends on: a
changed setting finds no old piece to reuse, and nothing from another configuration is mixed
in, while switching back to an earlier configuration finds its pieces again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

import zoo

__all__ = [
    "Cache",
    "check_writable",
    "digest",
    "has_run",
    "read_json",
    "read_npz",
    "run_metadata",
    "save_run",
    "write_bytes",
    "write_json",
    "write_npz",
]


def digest(settings: dict) -> str:
    """A short hash of ``settings`` (values by ``repr``: configs of frozen dataclasses)."""
    text = json.dumps(settings, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    _atomic(path, lambda f: f.write(data))


def write_json(path: Path, obj) -> None:
    _atomic(path, lambda f: f.write(json.dumps(obj, indent=1).encode()))


def read_json(path: Path):
    with open(path) as f:
        return json.load(f)


def write_npz(path: Path, **arrays) -> None:
    _atomic(path, lambda f: np.savez(f, **arrays))


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return dict(f)


def check_writable(folder: Path) -> None:
    """Raise ``OSError`` naming ``folder`` unless files can be created in it."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


class Cache:
    """Paths of the cached pieces under ``<out>/cache``, by what they are and their hash."""

    def __init__(self, out: Path):
        self.root = Path(out) / "cache"

    def run(self, family: str, dataset: str, seed: int, key: str) -> Path:
        """A trained run, as :func:`zoo.train.save` writes it (``.npz`` + ``.json``)."""
        return self.root / "runs" / family / dataset / f"seed{seed}-{key}"

    def likelihood(self, family: str, dataset: str, seed: int, key: str) -> Path:
        return self.root / "likelihood" / family / dataset / f"seed{seed}-{key}.json"

    def samples(self, stem: str) -> Path:
        """A cell's samples (``x``, ``nfe``, ``seconds``); ``stem`` names the cell and hash."""
        return self.root / "samples" / f"{stem}.npz"

    def cell(self, stem: str) -> Path:
        """A finished cell: its row of results."""
        return self.root / "cells" / f"{stem}.json"

    def noise_floor(self, dataset: str, key: str) -> Path:
        return self.root / "noise_floor" / f"{dataset}-{key}.json"


def save_run(path: Path, state: zoo.train.TrainState, model: zoo.Model, **metadata) -> None:
    """:func:`zoo.train.save`, made atomic: both files are written aside and moved in, the
    ``.json`` last, so a ``.json`` in place means the run is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=".run-"))
    try:
        zoo.train.save(tmp / "run", state, model, **metadata)
        os.replace(tmp / "run.npz", path.with_name(path.name + ".npz"))
        os.replace(tmp / "run.json", path.with_name(path.name + ".json"))
    finally:
        for leftover in tmp.iterdir():
            leftover.unlink()
        tmp.rmdir()


def has_run(path: Path) -> bool:
    return path.with_name(path.name + ".json").exists()


def run_metadata(path: Path) -> dict:
    """What :func:`save_run` stored beside a run's parameters."""
    return read_json(path.with_name(path.name + ".json"))["metadata"]
