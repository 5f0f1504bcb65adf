"""Kills at moments drawn with a fixed seed, each followed by a rerun: does every rerun give the
uninterrupted run's tables, byte for byte, timing columns aside?

The run is the fault tests' (tests/test_benchmark_faults.py): DDPM on the checkerboard, one
seed, 200 steps, three samplers (three sample pieces and three cells), 50 samples, 4 held-out
points. All runs share one JAX compilation cache, filled by a first run, so that a run's time
is spent training, sampling, scoring and writing rather than compiling. The reference run,
uninterrupted, gives the tables and the time T; each trial starts the same command in a fresh
folder, sends a signal drawn from SIGINT, SIGTERM and SIGKILL at a moment drawn uniformly from
[0.02 T, T] (seed 2026), waits for the process to end, records its exit code, its last line
on stderr and what the cache held, then reruns the command in that folder to the end and
compares results.csv and losses.csv with the reference's.

    python benchmarks/results/cpu-kills/kills.py [TRIALS] > benchmarks/results/cpu-kills/result.md
"""

import io
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RUN = [
    sys.executable, "-m", "zoo.bench", "--families=ddpm", "--datasets=checkerboard",
    "--seeds=0", "--steps=200", "--samplers=default,ddim-10,dpm-10", "--samples=50",
    "--nll-points=4", "--no-figures",
]  # fmt: skip
TIMINGS = ["train_s", "sample_s"]  # wall times: the only columns a rerun may change
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


def run(out: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([*RUN, f"--out={out}"], env=env, capture_output=True, text=True)


def tables(out: Path) -> tuple[str, str]:
    """results.csv without its timing columns, and losses.csv, as text."""
    results = pd.read_csv(out / "results.csv").drop(columns=TIMINGS)
    buffer = io.StringIO()
    results.to_csv(buffer, index=False)
    return buffer.getvalue(), (out / "losses.csv").read_text()


def held(out: Path) -> str:
    """How many finished pieces of each kind the cache holds (a piece: its files' stem)."""
    kinds = sorted(p for p in (out / "cache").iterdir() if p.is_dir())
    counts = {kind.name: len({f.with_suffix("") for f in kind.rglob("*.*")}) for kind in kinds}
    return ", ".join(f"{kind} {n}" for kind, n in counts.items() if n) or "nothing"


def main(trials: int) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="zoo-kills-"))
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(scratch / "jax-cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")  # fmt: skip
    assert run(scratch / "warm", env).returncode == 0
    start = time.perf_counter()
    reference = run(scratch / "reference", env)
    span = time.perf_counter() - start
    assert reference.returncode == 0, reference.stderr
    expected = tables(scratch / "reference")
    rng = np.random.default_rng(2026)
    rows = []
    for trial in range(trials):
        stop = SIGNALS[int(rng.integers(len(SIGNALS)))]
        moment = float(rng.uniform(0.02, 1.0)) * span
        out = scratch / f"trial-{trial}"
        process = subprocess.Popen([*RUN, f"--out={out}"], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(moment)
        sent = process.poll() is None
        if sent:
            process.send_signal(stop)
        _, err = process.communicate()
        lines = [line for line in err.splitlines() if line.strip() and "\r" not in line]
        cache = held(out) if (out / "cache").is_dir() else "no cache"
        rerun = run(out, env)
        same = rerun.returncode == 0 and tables(out) == expected
        rows.append({
            "trial": trial,
            "signal": stop.name if sent else "(finished first)",
            "at s": round(moment, 2),
            "exit": process.returncode,
            "traceback": "Traceback" in err,
            "last line": lines[-1].replace(str(out), "<out>") if lines else "",
            "cache held": cache,
            "rerun": rerun.returncode,
            "tables equal": same,
        })  # fmt: skip
        print(f"trial {trial}: {rows[-1]}", file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    print(f"# {trials} kills at moments drawn with seed 2026, each followed by a rerun\n")
    print(f"Command: `{' '.join(['python', *sys.argv])}`; machine: {platform.platform()}, "
          f"{os.cpu_count()} CPUs; date {time.strftime('%Y-%m-%d', time.gmtime())}. The run: "
          f"`{' '.join(['zoo-bench', *RUN[3:]])}`; the uninterrupted run took T = {span:.1f} s "
          "(compilation cached).\n")  # fmt: skip
    killed = frame[frame.signal != "(finished first)"]
    print(f"- killed: {len(killed)} of {trials} (the others had finished before their moment)")
    print(
        f"- reruns equal to the uninterrupted run (results.csv without {', '.join(TIMINGS)}, "
        f"and losses.csv, byte for byte): {int(frame['tables equal'].sum())} of {trials}"
    )
    print(f"- tracebacks on stderr: {int(frame.traceback.sum())}\n")
    print(frame.to_markdown(index=False))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 24)
