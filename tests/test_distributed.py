"""The benchmark as two processes joined by jax.distributed (two local CPU processes standing
for two hosts, each with its own folder): process 0's table is the one-process table."""

import io
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from zoo.bench.commands import distributed
from zoo.bench.commands.compare import main

ROOT = Path(__file__).parents[1]
# The smallest run that splits: two families, one per process; one run each, a few steps,
# one cheap sampler, the fewest points each metric takes, no figures.
TINY = [
    "--families=ddpm,vp",
    "--datasets=nine_gaussians",
    "--seeds=0",
    "--steps=20",
    "--samplers=ddim-3",
    "--samples=40",
    "--nll-points=4",
    "--nll-tol=1e-3",  # the machinery, not the likelihood's convergence: 1e-5 takes 5x the NFE
    "--no-figures",
]
TIMINGS = ["train_s", "sample_s"]  # wall times: all that may differ between two runs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_give_the_one_process_table(tmp_path):
    port = _free_port()
    jobs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zoo.bench.commands.distributed",
                f"--coordinator=127.0.0.1:{port}",
                "--num-processes=2",
                f"--process-id={i}",
                *TINY,
                f"--out={tmp_path / f'host{i}'}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for i in (0, 1)
    ]
    try:
        logs = [job.communicate(timeout=900)[0] for job in jobs]
    finally:
        for job in jobs:
            job.kill()
    assert [job.returncode for job in jobs] == [0, 0], logs
    assert "2 rows" in logs[0] and "0 cells computed" in logs[0], logs[0]
    assert not (tmp_path / "host1").exists()  # process 1 kept its share in a scratch folder

    assert main([*TINY, f"--out={tmp_path / 'one'}"]) == 0
    two = pd.read_csv(tmp_path / "host0" / "results.csv").drop(columns=TIMINGS)
    one = pd.read_csv(tmp_path / "one" / "results.csv").drop(columns=TIMINGS)
    pd.testing.assert_frame_equal(two, one)


def test_families_are_shared_out_whole_and_once():
    families = ("ddpm", "ncsn", "vp", "subvp", "ve")
    shares = [distributed.share(families, i, 3) for i in range(3)]
    assert sorted(sum(shares, ())) == sorted(families)
    assert distributed.share(families, 0, 1) == families
    assert distributed.share(("vp",), 1, 2) == ()


def test_pack_and_unpack_add_only_missing_pieces(tmp_path):
    source = tmp_path / "a" / "cache"
    (source / "runs" / "vp").mkdir(parents=True)
    (source / "runs" / "vp" / "seed0-abc.json").write_text("new")
    (source / "cells.json").write_text("theirs")
    (source / ".lock").write_text("123")
    target = tmp_path / "b"
    (target / "cache").mkdir(parents=True)
    (target / "cache" / "cells.json").write_text("mine")
    assert distributed.unpack(distributed.pack(tmp_path / "a"), target) == 1
    assert (target / "cache" / "runs" / "vp" / "seed0-abc.json").read_text() == "new"
    assert (target / "cache" / "cells.json").read_text() == "mine"
    assert not (target / "cache" / ".lock").exists()


def test_an_archive_reaching_outside_the_cache_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("../escaped")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="outside the cache"):
        distributed.unpack(buffer.getvalue(), tmp_path)
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--coordinator=h:1", "--num-processes=2", "--process-id=2"], "--process-id must lie"),
        (["--coordinator=h:1", "--num-processes=0", "--process-id=0"], "--num-processes must"),
        (["--coordinator=nohost", "--num-processes=1", "--process-id=0"], "HOST:PORT"),
        (["--coordinator=h:1", "--num-processes=1", "--process-id=0", "--steps=0"], "--steps"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(flags, message, capsys):
    assert distributed.main(flags) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
