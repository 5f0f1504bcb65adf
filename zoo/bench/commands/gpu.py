"""``make bench-gpu`` (``zoo-bench gpu``): the whole comparison at the
``gpu`` profile (every family, the six toy datasets, three seeds), then the speed benchmark
(``zoo-bench speed``), into one results folder named by device and date:
``<root>/gpu-<device kind>-<YYYY-MM-DD>/`` with the comparison's reports (results.csv,
results.md, nfe.md, summary.json, figures; its cache in cache/), the speed benchmark's
output (speed.md, and its tables in speed.csv) and bench_gpu.json (wall times, device).

``--tiny``: the same two steps at a budget that runs in about a minute on a CPU (one
family on one of the datasets, one seed: :data:`TINY_BENCH`), into
``gpu-tiny-<device kind>-<date>/``; the tests run it so that this command cannot rot.
Without ``--tiny`` a machine where JAX finds no GPU is refused: the profile is sized for one.
Run again on the same day, the comparison resumes from the folder's cache.
"""

from __future__ import annotations

import datetime
import importlib.util
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from zoo.bench.commands import entry
from zoo.bench.plan import parsing
from zoo.bench.plan.parsing import UsageError

__all__ = [
    "GPU_SPEED",
    "NEEDED",
    "TINY_BENCH",
    "TINY_DATASETS",
    "TINY_FAMILIES",
    "TINY_SPEED",
    "device_kind",
    "folder_name",
    "main",
    "missing",
]

#: where the results folder goes: the checkout's, run from its root as ``make bench-gpu`` is
ROOT = Path("benchmarks", "results")
#: when the comparison starts no more families, in seconds from the start: a report (~20 s),
#: the speed benchmark (160 s) and the device's start and transfers fit after it in the 15
#: minutes of device time a session is lent, with the whole command under 9 minutes. On an
#: H200 (2026-12-04, benchmarks/results/gpu-nvidia-h200-2026-12-04) a family took up to 144 s
#: with 11 samplers: 17-28 s to train its 18 runs, the rest to compile its samplers and
#: likelihood, draw and score its 198 cells; three families were done at 312 s under the
#: 420 s deadline of then. This deadline would have run two of them (the third began at ~240 s,
#: with 144 s the slowest so far): a slower first family costs a family, never the time limit.
DEADLINE_S = 330.0

#: the comparison's flags for ``--tiny``: one family of the gpu profile on one of its datasets
#: and one seed, trained a few steps and sampled by one cheap sampler, no sweep, a few points
#: per metric: what the command does, not what it measures. Compiling sets its time
#: (training, the sampler and the likelihood, once per family: one family, as the
#: family-by-family loop of :func:`compare` has tests of its own).
TINY_FAMILIES = ("vp",)
TINY_DATASETS = ("nine_gaussians",)
TINY_BENCH = (
    f"--families={','.join(TINY_FAMILIES)}",
    f"--datasets={','.join(TINY_DATASETS)}",
    "--seeds=0",
    "--steps=20",
    "--samplers=ddim-3",
    "--nfe=none",
    "--samples=40",
    "--nll-points=4",
    "--no-figures",
)
#: the speed benchmark's flags on a GPU: N = 5,000 instead of its 20,000, each timed
#: difference (2N steps) still near a second at the 15,200 steps/s of one fused run; on an
#: H200 (2026-12-04) the whole speed benchmark took 160 s with these flags
#: (benchmarks/results/gpu-nvidia-h200-2026-12-04/bench_gpu.json)
GPU_SPEED = ("--train-steps=5000",)
#: the speed benchmark's flags for ``--tiny``
TINY_SPEED = (
    "--runs=1",
    "--train-steps=10",
    "--sample-steps=10",
    "--samples=20",
    "--repeats=1",
)


#: what the run imports (module -> pip name): checked before any work, since a GPU machine
#: without a package index has only what its image and .whl/ bring
NEEDED = {
    "jax": "jax",
    "haiku": "dm-haiku",
    "distrax": "distrax",
    "diffrax": "diffrax",
    "optax": "optax",
    "ot": "pot",
    "tabulate": "tabulate",
    "pandas": "pandas",
    "seaborn": "seaborn",
    "tqdm": "tqdm",
}


def missing(needed: dict[str, str] = NEEDED) -> list[str]:
    """The pip names of the ``needed`` modules that this Python cannot import."""
    return [pip for module, pip in needed.items() if importlib.util.find_spec(module) is None]


def device_kind(devices: list) -> str:
    """A folder-name form of the devices JAX uses: ``nvidia-h200``, ``cpu``, or
    ``8x-nvidia-h100-80gb-hbm3`` for several devices of one kind."""
    kinds = sorted({d.device_kind for d in devices})
    slug = re.sub(r"[^a-z0-9]+", "-", "+".join(kinds).lower()).strip("-")
    return slug if len(devices) == 1 else f"{len(devices)}x-{slug}"


def folder_name(kind: str, date: datetime.date, tiny: bool) -> str:
    """``gpu-<kind>-<YYYY-MM-DD>`` (``gpu-tiny-...`` for the tiny budget)."""
    return f"gpu-{'tiny-' if tiny else ''}{kind}-{date.isoformat()}"


def _speed(out: Path, tiny: bool) -> float:
    """Run the speed benchmark in a process of its own (its timings untouched by what the
    comparison left in memory), echo its output; it writes speed.md and speed.csv in ``out``."""
    start = time.perf_counter()
    flags = [*(TINY_SPEED if tiny else GPU_SPEED), f"--out={out}"]
    done = subprocess.run(
        [sys.executable, "-m", "zoo.bench.commands.speed", *flags], capture_output=True, text=True
    )
    print(done.stdout, end="")
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"zoo-bench gpu: the speed benchmark failed (exit code {done.returncode})")
    return time.perf_counter() - start


def compare(
    bench: Callable[[list[str]], int],
    flags: list[str],
    families: tuple[str, ...],
    deadline_s: float,
    start: float,
) -> tuple[str, ...] | int:
    """Run the comparison (``bench(flags)``) one family at a time, in ``families``' order,
    starting the next only while the slowest family so far would still end before
    ``deadline_s`` after ``start`` (``time.perf_counter()``); then write the report of the
    families done, from the cache. A device lent for minutes thus always returns a report:
    of every family, or of the first ones. Returns the families done, or bench's nonzero
    exit status."""
    done, slowest = [], 0.0
    for family in families:
        began = time.perf_counter()
        if done and began - start + slowest > deadline_s:
            left = families[len(done) :]
            print(
                f"zoo-bench gpu: {', '.join(left)} left out: the slowest family took "
                f"{slowest:.0f} s, and {deadline_s - (began - start):.0f} s of the "
                f"{deadline_s:.0f} s deadline are left",
                flush=True,
            )
            break
        status = bench([*flags, f"--families={family}", "--no-figures"])
        if status != 0:
            return status
        done.append(family)
        slowest = max(slowest, time.perf_counter() - began)
    status = bench([*flags, f"--families={','.join(done)}"])  # the cache's: no new work
    return status if status != 0 else tuple(done)


def parser() -> parsing.Parser:
    p = parsing.command("gpu", __doc__.split("\n\n")[0])
    p.add_argument(
        "--tiny", action="store_true", help="a budget of about a minute on a CPU (the tests)"
    )
    p.add_argument(
        "--root", type=Path, default=ROOT, help=f"where the results folder goes ({ROOT})"
    )
    p.add_argument(
        "--deadline",
        type=float,
        default=DEADLINE_S,
        metavar="SECONDS",
        help="start no family that would end after this many seconds (default %(default)s)",
    )
    return p


@parsing.main_of("gpu")
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    start = time.perf_counter()
    date = datetime.datetime.now(datetime.timezone.utc).date()

    absent = missing()
    if absent:
        raise UsageError(
            f"cannot import {', '.join(absent)}; install them (on a machine "
            f"without a package index: ../shared/tools/gpu-wheels {' '.join(absent)})"
        )
    import jax

    from zoo.bench.commands.compare import main as bench
    from zoo.bench.plan import profiles
    from zoo.bench.report import output

    devices = jax.devices()
    if not args.tiny and jax.default_backend() == "cpu":
        raise UsageError(
            "JAX finds no GPU (backend cpu), and the gpu profile is sized for "
            "one (hours on a CPU); --tiny (make bench-gpu TINY=1) checks the path on a CPU"
        )
    out = args.root / folder_name(device_kind(devices), date, args.tiny)
    flags = ["--profile=gpu", f"--out={out}", *(TINY_BENCH if args.tiny else ())]
    print(f"zoo-bench gpu: {' '.join(flags)} on {', '.join(map(str, devices))}", flush=True)
    families = TINY_FAMILIES if args.tiny else profiles.PROFILES["gpu"].families
    done = compare(bench, flags, families, args.deadline, start)
    if isinstance(done, int):
        return done
    comparison_s = time.perf_counter() - start
    speed_s = _speed(out, args.tiny)
    total_s = time.perf_counter() - start
    record = {
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind,
        "date": date.isoformat(),
        "tiny": args.tiny,
        "families": list(done),
        "families_left": [f for f in families if f not in done],
        "deadline_s": args.deadline,
        "comparison_s": round(comparison_s, 1),
        "speed_s": round(speed_s, 1),
        "total_s": round(total_s, 1),
    }
    output.record(out / "bench_gpu.json", record)
    print(
        f"zoo-bench gpu: comparison of {len(done)}/{len(families)} families {comparison_s:.0f} s, "
        f"speed {speed_s:.0f} s, total {total_s:.0f} s -> {out}"
    )
    return 0


if __name__ == "__main__":
    entry.finish(entry.run("zoo-bench gpu", "zoo.bench.commands.gpu"))
