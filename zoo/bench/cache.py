"""The output folder's cache: trained runs, samples and finished cells, each written atomically
and checked when read.

Every piece is written to a temporary file and moved into place with ``os.replace``, so a
killed benchmark leaves either the whole piece or none of it, and a run started again picks
up where it stopped. A piece's file name holds a hash of every setting it depends on and of
the code (:data:`CODE`, every ``.py`` file of ``zoo``, the harness included): a changed setting
or changed code finds no old piece to reuse, while switching back to an earlier configuration
finds its pieces again. Each piece also carries a SHA-256 checksum of its content and the
settings it was made from; a piece that fails its check (cut short, edited, emptied) is named
in one line, removed and computed again (:meth:`Cache.fetch`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

import zoo
from zoo._files import UMASK as _UMASK
from zoo._files import write_atomic as _atomic

__all__ = [
    "CODE",
    "Busy",
    "Cache",
    "Damaged",
    "check_writable",
    "digest",
    "lock",
    "read_json",
    "read_npz",
    "read_params",
    "read_piece",
    "read_run",
    "save_run",
    "write_bytes",
    "write_json",
    "write_npz",
    "write_params",
    "write_piece",
]


class Damaged(Exception):
    """A cached piece that cannot be trusted; the message says why, and ``file``, when given,
    names the file of a two-file piece (a run's ``.npz``) that failed."""

    def __init__(self, message: str, file: Path | None = None):
        super().__init__(message)
        self.file = file


class Busy(Exception):
    """Another benchmark holds the output folder."""


def _code_hash() -> str:
    h = hashlib.sha256()
    package = Path(zoo.__file__).parent
    for path in sorted(package.rglob("*.py")):
        h.update(f"{package.name}/{path.relative_to(package)}".encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


#: Hash of the source of ``zoo`` (the library and this harness): part of every key.
CODE = _code_hash()


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=repr)


def digest(settings: dict) -> str:
    """A short hash of ``settings`` (values by ``repr``: configs of frozen dataclasses) and of
    the code (:data:`CODE`)."""
    text = _canonical({"settings": settings, "code": CODE})
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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


def _checksum(content) -> str:
    return hashlib.sha256(_canonical(content).encode()).hexdigest()


def write_piece(path: Path, content: dict, settings: dict) -> None:
    """A JSON piece: ``content`` with its checksum, the ``settings`` it was made from and the
    code hash."""
    piece = {"sha256": _checksum(content), "code": CODE, "settings": settings, "content": content}
    write_json(path, json.loads(_canonical(piece)))


def read_piece(path: Path) -> dict:
    """The content of a piece written by :func:`write_piece`; :class:`Damaged` unless its
    checksum holds."""
    try:
        piece = read_json(path)
        content, checksum = piece["content"], piece["sha256"]
    except (ValueError, KeyError, TypeError) as e:
        raise Damaged(f"unreadable ({type(e).__name__})") from None
    if _checksum(content) != checksum:
        raise Damaged("its checksum does not match its content")
    return content


def _array_checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_samples(path: Path, **arrays) -> None:
    """An ``.npz`` piece with the checksum of its arrays."""
    write_npz(path, **arrays, sha256=np.asarray(_array_checksum(arrays)))


def read_samples(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a piece from :func:`write_samples`; :class:`Damaged` unless they match
    their checksum."""
    try:
        arrays = read_npz(path)
        checksum = str(arrays.pop("sha256"))
    except Exception as e:  # whatever a damaged .npz raises (BadZipFile, ValueError, ...)
        raise Damaged(f"unreadable ({type(e).__name__})") from None
    if _array_checksum(arrays) != checksum:
        raise Damaged("its checksum does not match its arrays")
    return arrays


_PARAM_SEP = "/"


def write_params(path: Path, params: dict) -> None:
    """Haiku parameters ``{module: {name: array}}`` as a checked ``.npz`` piece
    (:func:`write_samples`), one array per ``module/name``."""
    arrays = {
        f"{module}{_PARAM_SEP}{name}": np.asarray(value)
        for module, leaves in params.items()
        for name, value in leaves.items()
    }
    write_samples(path, **arrays)


def read_params(path: Path) -> dict:
    """The parameters of a piece from :func:`write_params`; :class:`Damaged` unless they
    match their checksum."""
    params: dict = {}
    for key, value in read_samples(path).items():
        module, name = key.rsplit(_PARAM_SEP, 1)  # module names hold "/" themselves
        params.setdefault(module, {})[name] = value
    return params


def lock(folder: Path):
    """Hold ``folder`` for this process (an exclusive ``flock`` on ``folder/.lock``, released
    when the returned file is closed or the process ends, however it ends); :class:`Busy`,
    naming the holder, if another process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    f = open(folder / ".lock", "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise Busy(f"another zoo-bench (pid {holder}) is writing to {folder}") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


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

    def snapshot(self, family: str, dataset: str, seed: int, step: int, key: str) -> Path:
        """The EMA parameters of a run kept at ``step`` of its training call."""
        return self.root / "snapshots" / family / dataset / f"seed{seed}-step{step}-{key}.npz"

    def step_cell(self, family: str, dataset: str, seed: int, step: int, key: str) -> Path:
        """The scores of the samples of a snapshot."""
        return self.root / "steps" / family / dataset / f"seed{seed}-step{step}-{key}.json"

    def oracle(self, dataset: str, seed: int, sampler: str, key: str) -> Path:
        """The scores of a sampler driven by the exact score: no family in the path, as the
        cell depends on the process, not on training (``key`` holds the process)."""
        return self.root / "oracle" / dataset / f"seed{seed}-{sampler}-{key}.json"

    def score_error(self, family: str, dataset: str, seed: int, key: str) -> Path:
        """A trained run's score error against the exact score, per noise level."""
        return self.root / "score_error" / family / dataset / f"seed{seed}-{key}.json"

    def fetch(self, path: Path, reader: Callable[[Path], object]):
        """``reader(path)``, or ``None`` when the piece is missing or fails its check; a
        damaged piece is named in one line on stderr and removed, so it is computed again."""
        if not path.exists():
            return None
        try:
            return reader(path)
        except Damaged as e:
            print(
                f"zoo-bench: note: cached piece {(e.file or path).relative_to(self.root)} is "
                f"damaged ({e}); computing it again",
                file=sys.stderr,
            )
            for damaged in {path, path.with_suffix(".npz")}:  # a run is .json + .npz
                damaged.unlink(missing_ok=True)
            return None

    def count(self) -> int:
        """How many finished pieces the cache holds."""
        if not self.root.exists():
            return 0
        return sum(1 for p in self.root.rglob("*") if p.is_file() and not p.name.startswith("."))


def save_run(path: Path, state: zoo.train.TrainState, model: zoo.Model, **metadata) -> None:
    """:func:`zoo.train.save`, made atomic and checked: both files are written aside, the
    ``.json`` gets the checksum of the ``.npz``, and both are moved in, the ``.json`` last, so
    a ``.json`` in place means the run is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=".run-"))
    try:
        try:
            zoo.train.save(tmp / "run", state, model, **metadata)
        except ValueError:  # a user's network (--net) is no zoo object load_model can rebuild;
            # the run is still its parameters, and its cache key names the network
            zoo.train.save(tmp / "run", state, None, **metadata)
        arrays = read_npz(tmp / "run.npz")
        config = read_json(tmp / "run.json")
        config["metadata"]["npz_sha256"] = _array_checksum(arrays)
        write_json(tmp / "run.json", config)
        for name in ("run.npz", "run.json"):
            os.chmod(tmp / name, 0o666 & ~_UMASK)
        os.replace(tmp / "run.npz", path.with_name(path.name + ".npz"))
        os.replace(tmp / "run.json", path.with_name(path.name + ".json"))
    finally:
        for leftover in tmp.iterdir():
            leftover.unlink()
        tmp.rmdir()


def read_run(path: Path) -> tuple[zoo.train.TrainState, dict]:
    """A run from :func:`save_run` and its metadata; :class:`Damaged` unless its parameters
    match their checksum. ``path`` is the run's stem; the piece to :meth:`Cache.fetch` is its
    ``.json``."""
    path = path.with_suffix("") if path.suffix == ".json" else path
    npz = path.with_name(path.name + ".npz")
    try:
        metadata = read_json(path.with_name(path.name + ".json"))["metadata"]
        checksum = metadata["npz_sha256"]
    except Exception as e:  # whatever a damaged .json raises
        raise Damaged(f"unreadable ({type(e).__name__})") from None
    try:
        arrays = read_npz(npz)
    except Exception as e:  # whatever a damaged .npz raises (BadZipFile, EOFError, ...)
        raise Damaged(f"unreadable ({type(e).__name__})", file=npz) from None
    if _array_checksum(arrays) != checksum:
        raise Damaged("its parameters do not match their checksum", file=npz)
    return zoo.train.load(path), metadata
