"""Faults injected into the benchmark harness: damaged cache pieces, interrupts and kills at
several points, a second run on the same folder, stale reports, diverging training and
samples far from the data. Each must end in the same results as an undisturbed run, or in a
clear one-line message."""

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import zoo
from zoo import presets
from zoo.bench import cache, pipeline
from zoo.bench.commands.compare import main
from zoo.bench.judge import evaluation
from zoo.bench.report import output
from zoo.bench.train import training

ROOT = Path(__file__).parents[1]
# Three samplers: three cells and three sample pieces to damage or stop among; 200 steps: two
# loss blocks, so that a loss that rises is told from one that starts high; few points.
TINY = [
    "--families=ddpm",
    "--datasets=checkerboard",
    "--seeds=0",
    "--steps=200",
    "--samplers=default,ddim-10,dpm-10",
    "--samples=50",
    "--nll-points=4",
    "--nll-tol=1e-3",  # the machinery, not the likelihood's convergence: 1e-5 takes 5x the NFE
]
TIMINGS = ["train_s", "sample_s"]  # wall times: the only columns a resumed run may change


def _run(out, *extra) -> int:
    return main([*TINY, f"--out={out}", *extra])


def _results(out) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv").drop(columns=TIMINGS)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "out"
    assert _run(out) == 0
    return out


def _copy(finished, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    return out


def test_damaged_cache_pieces_are_named_and_recomputed(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    cells = sorted((out / "cache" / "cells").rglob("*.json"))
    cells[0].write_text('{"sha256": "')  # cut short
    cells[1].write_text("{}")  # emptied
    piece = json.loads(cells[2].read_text())
    piece["content"]["sliced_w2"] = 0.0  # edited to look better
    cells[2].write_text(json.dumps(piece))
    samples = next((out / "cache" / "samples").rglob("*.npz"))
    samples.write_bytes(samples.read_bytes()[:100])
    assert _run(out) == 0
    err = capsys.readouterr().err
    assert err.count("is damaged") == 4, err
    pd.testing.assert_frame_equal(_results(out), _results(finished))


def test_a_damaged_trained_run_is_named_and_trained_again(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    run = next((out / "cache" / "runs").rglob("*.npz"))
    run.write_bytes(run.read_bytes()[:100])  # cut short; every cell of the run is cached
    assert _run(out) == 0
    err = capsys.readouterr().err
    assert err.count("is damaged") == 1 and run.name in err, err
    assert cache.read_run(run.with_suffix(".json"))  # in place again, whole
    pd.testing.assert_frame_equal(_results(out), _results(finished))
    for name in ("losses.csv", "noise_floor.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(out / name), pd.read_csv(finished / name))
    assert json.loads((out / "summary.json").read_text())["runs_trained"] == 1


def test_the_damaged_samples_of_a_figure_are_drawn_again(finished, tmp_path, capsys):
    out = _copy(finished, tmp_path)
    first = next((out / "cache" / "samples").rglob("seed0-default-*.npz"))
    x = cache.read_samples(first)["x"]
    first.write_bytes(first.read_bytes()[:100])  # its cell is cached: only samples.png reads it
    assert _run(out) == 0
    assert capsys.readouterr().err.count("is damaged") == 1
    np.testing.assert_array_equal(cache.read_samples(first)["x"], x)  # the same draw again


def test_pieces_of_other_code_or_other_groups_are_never_shared(monkeypatch):
    settings = {"steps": 100}
    key = cache.digest(settings)
    monkeypatch.setattr(cache, "CODE", "changed-code")
    assert cache.digest(settings) != key
    preset = presets.toy("vp", data="moons")
    alone = training.run_key(preset, "moons", 0, 100, (("moons",), (0,)))
    beside = training.run_key(preset, "moons", 0, 100, (("moons",), (0, 1)))
    assert alone != beside


def test_a_second_run_on_a_held_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    held = cache.lock(out)
    try:
        with pytest.raises(SystemExit) as exit_info:
            _run(out)
    finally:
        held.close()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"another zoo-bench (pid {os.getpid()})" in err


def _zoo_commit() -> str:
    """The short HEAD of the checkout that holds the tested ``zoo``, or "unknown" outside one."""
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)  # fmt: skip
    return git.stdout.strip() if git.returncode == 0 else "unknown"


def test_the_commit_is_the_zoo_checkouts_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a git checkout: the user's folder, say
    assert output.commit() == _zoo_commit()


def test_a_zoo_inside_another_repository_has_no_commit(tmp_path, monkeypatch):
    """An install into a virtual environment inside a user's repository must not report that
    repository's HEAD; a zoo at the top of a checkout reports the checkout's."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    for package, expected in [(repo / "venv" / "site" / "zoo", "unknown"), (repo / "zoo", head)]:
        (package / "bench" / "report").mkdir(parents=True)
        monkeypatch.setattr(output, "__file__", str(package / "bench" / "report" / "output.py"))
        assert output.commit() == expected


def test_the_report_is_one_stamped_set_readable_by_all(finished, tmp_path):
    summary = json.loads((finished / "summary.json").read_text())
    for name, checksum in summary["files"].items():
        assert hashlib.sha256((finished / name).read_bytes()).hexdigest() == checksum, name
    assert {"results.csv", "results.md", "samples.png"} <= set(summary["files"])
    assert set(pd.read_csv(finished / "results.csv").config) == {summary["config_id"]}
    assert summary["config_id"] in (finished / "results.md").read_text()
    assert summary["commit"] == _zoo_commit()
    mode = (finished / "results.csv").stat().st_mode & 0o777
    assert mode == 0o666 & ~cache._UMASK

    out = _copy(finished, tmp_path)
    assert _run(out, "--no-figures", "--samplers=ddim-10") == 0
    assert not list(out.glob("*.png"))  # no figure of the earlier config is left behind
    assert list(pd.read_csv(out / "results.csv").sampler) == ["ddim-10"]


def test_a_diverging_run_is_marked_and_never_ranked(finished, tmp_path, monkeypatch):
    toy = presets.toy
    monkeypatch.setattr(
        presets, "toy", lambda *a, **k: dataclasses.replace(toy(*a, **k), learning_rate=1e3)
    )
    out = _copy(finished, tmp_path)
    assert _run(out, "--samplers=default") == 0
    results = pd.read_csv(out / "results.csv")
    assert results.status[0].startswith("diverged: loss rose to"), results.status[0]
    assert results[["sliced_w2", "energy"]].isna().all().all()
    assert "0/1 ok [1]" in (out / "results.md").read_text()


def test_a_likelihood_out_of_steps_is_a_one_line_status():
    # Under jit the zoo's max_steps check fails inside a callback: the error's text starts
    # with the callback's traceback, and the status must be the check's own words.
    sde = presets.toy("ve").model.sde
    fn = jax.jit(lambda x: zoo.log_likelihood(sde, lambda y, t: -y, x, max_steps=2).log_prob)
    with pytest.raises(jax.errors.JaxRuntimeError) as raised:
        fn(np.zeros((3, 2), np.float32))
    assert evaluation.failure(raised.value) == "failed: the ODE solver reached max_steps (2)"


def test_a_check_failing_after_dispatch_leaves_no_error_for_exit():
    # The likelihood's input is still being computed when it is dispatched, so its max_steps
    # check fails later, on a worker thread, and JAX's token of that computation holds the
    # error; at exit JAX waits on the token (jax.effects_barrier), which would raise it again
    # as a traceback after the report.
    sde = presets.toy("ve").model.sde
    busy = jax.jit(lambda a: jax.lax.fori_loop(0, 400, lambda _, b: jnp.tanh(b @ b), a))
    fn = jax.jit(lambda x: zoo.log_likelihood(sde, lambda y, t: -y, x[:3, :2], max_steps=2))
    fn = fn.lower(jnp.eye(256)).compile()  # compiled first, or busy ends while fn compiles
    with pytest.raises(jax.errors.JaxRuntimeError) as raised:
        jax.block_until_ready(fn(busy(jnp.eye(256))))
    assert evaluation.failure(raised.value) == "failed: the ODE solver reached max_steps (2)"
    jax.effects_barrier()  # what JAX's exit handler calls: nothing left to raise


def test_samples_far_from_the_data_are_marked_diverged():
    reference = np.random.default_rng(0).normal(size=(100, 2))
    x = reference.copy()
    assert pipeline.sample_status(x, reference) == "ok"
    x[3] = 1e3
    assert pipeline.sample_status(x, reference).startswith("diverged: 1 of 100 samples beyond")
    x[4] = np.nan
    assert pipeline.sample_status(x, reference) == "diverged: NaN samples (1 of 100)"


def test_ctrl_c_while_starting_is_one_line(tmp_path):
    process = _start(tmp_path / "out")
    time.sleep(0.5)  # importing JAX and the zoo: about 2 s
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    err = err.decode()
    assert process.returncode == 130, err
    assert err.strip() == "zoo-bench: interrupted while starting; nothing was run", err


def _start(out):
    args = [sys.executable, "-m", "zoo.bench", *TINY, f"--out={out}"]
    return subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)


def _wait_for(process, out, pattern, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not list((out / "cache").glob(pattern)):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, f"no {pattern} after {timeout} s"
        time.sleep(0.05)


# Ctrl-C mid-sampling resumes from the three kinds of piece a run has by then (its trained
# run, its likelihood and some samples), a kill mid-metrics from finished cells as well. A
# Ctrl-C right after training resumed from the trained run alone: a subset of the first.
@pytest.mark.parametrize(
    "stop, when",
    [
        (signal.SIGINT, "samples/*/*/*.npz"),  # mid-sampling
        (signal.SIGKILL, "cells/*/*/*.json"),  # mid-metrics
    ],
)
def test_an_interrupted_run_resumes_to_the_same_results(finished, tmp_path, stop, when):
    out = tmp_path / "out"
    process = _start(out)
    _wait_for(process, out, when)
    process.send_signal(stop)
    _, err = process.communicate(timeout=120)
    err = err.decode()
    if stop == signal.SIGINT:
        assert process.returncode == 130, err
        lines = [line for line in err.splitlines() if line.strip() and "\r" not in line]
        assert lines[-1].startswith("zoo-bench: interrupted;") and "saved" in lines[-1], err
        assert "Traceback" not in err
    else:
        assert process.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists()
    assert _run(out) == 0
    pd.testing.assert_frame_equal(_results(out), _results(finished))


def test_a_sampler_the_compiler_fails_on_is_a_failed_row(finished, tmp_path, monkeypatch):
    # XLA's GPU compiler once failed on a sampler that compiled on the CPU: that sampler's rows
    # must say so, not end the whole run in a traceback.
    def refuse(self, *args, **kwargs):
        raise jax.errors.JaxRuntimeError("FAILED_PRECONDITION: injected compiler fault")

    monkeypatch.setattr(jax.stages.Lowered, "compile", refuse)
    out = _copy(finished, tmp_path)  # trained and scored: only the new sampler compiles
    assert _run(out, "--samplers=ddim-7") == 0
    results = pd.read_csv(out / "results.csv")
    assert results.status[0] == "failed: FAILED_PRECONDITION: injected compiler fault"
    assert results[["sliced_w2", "energy"]].isna().all().all()


SPEED = ["-c", "import sys; from zoo.bench.commands.entry import speed; sys.exit(speed())"]
GUIDANCE = [
    "-c",
    "import sys; from zoo.bench.commands.entry import guidance; sys.exit(guidance())",
]
DISTRIBUTED = [
    "-c",
    "import sys; from zoo.bench.commands.entry import distributed; sys.exit(distributed())",
]
# a line after its first configuration (DDIM-3 on DDPM), then NCSN's compiles for seconds
FRONTIER = ["-m", "zoo.bench", "frontier", "--processes=ddpm,ncsn", "--datasets=nine_gaussians",
            "--samplers=ddim", "--nfe=3", "--samples=100", "--out=out"]  # fmt: skip


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_a_stop_in_the_teardown_after_a_command_ends_it_quietly_with_its_status(stop):
    """A stop that lands after the command has returned, while the interpreter tears down
    (here, an exit hook that takes a second): the command's own status and nothing printed,
    where Python printed a KeyboardInterrupt traceback (SIGINT) or died of the signal."""
    code = (
        "import atexit, os, signal, time; from zoo.bench.commands import entry; "
        f"atexit.register(lambda: (os.kill(os.getpid(), signal.{stop}), time.sleep(1))); "
        "entry.finish(3)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (3, "", "")


# The console scripts from their first instant (importing JAX takes seconds), and every
# command once it is computing (after its first line of output).
@pytest.mark.parametrize(
    "command, when",
    [
        (SPEED, "importing"),
        (SPEED, "running"),
        (GUIDANCE, "importing"),
        (DISTRIBUTED, "importing"),
        (FRONTIER, "running"),
    ],
    ids=[
        "speed-importing",
        "speed-running",
        "guidance-importing",
        "distributed-importing",
        "frontier-running",
    ],
)
def test_ctrl_c_in_the_other_commands_is_one_line(command, when, tmp_path):
    process = subprocess.Popen(
        [sys.executable, *command], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    if when == "importing":
        time.sleep(0.3)
    else:
        assert process.stdout.readline(), process.stderr.read().decode()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    lines = [line for line in err.decode().splitlines() if line.strip()]
    assert process.returncode == 130, err.decode()
    assert len(lines) == 1 and lines[0].endswith("interrupted; nothing more is written"), lines
