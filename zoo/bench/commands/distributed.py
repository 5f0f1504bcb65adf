"""``zoo-bench distributed`` (alias ``zoo-bench-distributed``): one benchmark over several
processes, one per host, joined by ``jax.distributed``.

Every process is started with the same ``zoo-bench`` flags and its place in the job::

    # on host 0 (its address is the coordinator's), and likewise with --process-id 1 on host 1
    zoo-bench-distributed --coordinator host0:1234 --num-processes 2 --process-id 0 \\
        --profile standard --out results/standard

1. Process ``i`` of ``N`` runs the families ``families[i::N]`` exactly as one process would
   (a family's runs are trained together in one fused call whatever else runs, so every
   number is the one a single process computes), each process into its own cache: process
   0 into ``--out``, the others into a scratch folder.
2. Each process packs its cache (a tar archive of content-addressed, checksummed pieces) and
   the archives are gathered to process 0 with ``multihost_utils.process_allgather`` over
   the coordinator; process 0 unpacks the pieces it lacks into its cache.
3. Process 0 runs the whole configuration as ``zoo-bench`` would: it finds every piece,
   computes nothing, and writes the one report (the ``command`` it records is the equivalent
   single-process ``zoo-bench`` command).

Within a process the runs of a family are sharded over its local devices
(:func:`zoo.train.fit`). The hosts need not share a file system.
"""

from __future__ import annotations

import dataclasses
import io
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from zoo.bench import cache
from zoo.bench.plan import cli, parsing
from zoo.bench.plan.parsing import UsageError

__all__ = ["gather_to_first", "main", "pack", "parser", "share", "unpack"]


def share(families: tuple[str, ...], process: int, count: int) -> tuple[str, ...]:
    """The families process ``process`` of ``count`` trains and scores: every ``count``-th
    one, from its index on."""
    return tuple(families[process::count])


def pack(folder: Path) -> bytes:
    """The pieces under ``folder/cache`` as an uncompressed tar archive (the lock file and
    pieces being written, ``*.tmp``, left out)."""
    buffer = io.BytesIO()
    root = Path(folder) / "cache"
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name != ".lock" and not path.name.endswith(".tmp"):
                archive.add(path, arcname=str(path.relative_to(root)))
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> int:
    """Add the pieces of archive ``data`` that ``folder/cache`` lacks; returns how many.
    Pieces are named by the hash of what they depend on, so a piece found is the same."""
    root = Path(folder) / "cache"
    added = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        for member in archive.getmembers():
            if Path(member.name).is_absolute() or ".." in Path(member.name).parts:
                raise ValueError(f"archive piece {member.name!r} lies outside the cache")
            if not member.isfile() or (root / member.name).exists():
                continue
            content = archive.extractfile(member).read()
            cache.write_bytes(root / member.name, content)  # aside, then moved into place
            added += 1
    return added


def gather_to_first(data: bytes) -> list[bytes]:
    """Every process's ``data``, in process order (all processes get them; process 0 uses
    them). Two ``process_allgather`` calls: the lengths, then the padded bytes."""
    from jax.experimental import multihost_utils

    lengths = multihost_utils.process_allgather(np.asarray([len(data)], np.int64))
    lengths = np.asarray(lengths).reshape(-1)
    padded = np.zeros(int(lengths.max()), np.uint8)
    padded[: len(data)] = np.frombuffer(data, np.uint8)
    gathered = np.asarray(multihost_utils.process_allgather(padded))
    return [gathered[i, :n].tobytes() for i, n in enumerate(lengths)]


def parser() -> parsing.Parser:
    """The three flags of a process's place in the job; every other flag is zoo-bench's."""
    p = parsing.command(
        "distributed",
        "Run zoo-bench as several processes (one per host) joined by "
        "jax.distributed: each process trains and scores its share of the families, process 0 "
        "gathers the cached pieces and writes the one report. Every other flag is zoo-bench's "
        "(zoo-bench --help).",
    )
    p.add_argument("--coordinator", required=True, metavar="HOST:PORT",
                   help="address of process 0, where the coordinator listens")  # fmt: skip
    p.add_argument("--num-processes", type=int, required=True, metavar="N")
    p.add_argument("--process-id", type=int, required=True, metavar="I")
    return p


def _check(args) -> None:
    if args.num_processes < 1:
        raise UsageError(f"--num-processes must be >= 1, got {args.num_processes}")
    if not 0 <= args.process_id < args.num_processes:
        raise UsageError(
            f"--process-id must lie in [0, {args.num_processes - 1}], got {args.process_id}"
        )
    host, _, port = args.coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--coordinator must be HOST:PORT, got {args.coordinator!r}")


@parsing.main_of("distributed")
def main(argv: list[str] | None = None) -> int:
    """Run this process's share, gather the pieces to process 0, and there write the
    report; bad input is one line on stderr and exit code 2."""
    from zoo.bench.commands import compare as single

    argv = sys.argv[1:] if argv is None else list(argv)
    args, rest = parser().parse_known_args(argv)
    _check(args)
    config = cli.parse(rest, check_memory=False)  # JAX's backend is not started yet

    import jax

    from zoo.bench import pipeline

    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
    )
    cli.check_memory_of(config)
    first = args.process_id == 0
    with tempfile.TemporaryDirectory(prefix="zoo-bench-share-") as scratch:
        out = Path(config.out) if first else Path(scratch)
        mine = dataclasses.replace(
            config,
            families=share(config.families, args.process_id, args.num_processes),
            out=str(out),
            figures=False,
        )
        if mine.families:
            cache.check_writable(out)
            with cache.lock(out):
                pipeline.run(mine)
        archives = gather_to_first(b"" if first else pack(out))
    if not first:
        return 0
    for data in archives[1:]:
        unpack(data, Path(config.out))
    return single.main(rest)


if __name__ == "__main__":
    from zoo.bench.commands import entry

    entry.finish(entry.run("zoo-bench distributed", "zoo.bench.commands.distributed"))
