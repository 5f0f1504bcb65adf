"""``zoo-bench-speed`` (``python -m benchmarks.speed``): how fast the zoo trains and samples
on this machine.

1. Aggregate training steps/s of the fused loop (``lax.scan`` over steps, ``vmap`` over runs)
   for 1, 5 and 25 runs. ``zoo.train.fit`` traces a new step function on every call, so a
   warm-up call fills JAX's persistent compilation cache; then each count is timed at N and
   2N steps (blocks of N) and the rate taken from the difference, which also cancels setup.
2. The reverse-time SDE by Diffrax (``ReverseSDE``, Euler with an ``UnsafeBrownianPath``)
   against the plain ``lax.scan`` ``EulerMaruyama`` with the same network and steps: each
   compiled once, then the median of repeated calls.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import tempfile
import time

import jax
import pandas as pd

import zoo
from benchmarks.cli import plain
from zoo import data, presets, samplers, train

__all__ = ["main", "parser", "sampling_speed", "training_speed"]


def _counts(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def training_speed(family: str, runs: tuple[int, ...], steps: int) -> pd.DataFrame:
    """Aggregate and per-run training steps/s of ``family``'s toy preset, jit excluded."""
    preset = presets.toy(family)

    def seconds(num_runs, total):
        start = time.perf_counter()
        state, _ = train.fit(
            preset.model, preset.data, steps=total, seeds=range(num_runs),
            batch_size=preset.batch_size, optimizer=preset.optimizer(), log_every=steps,
        )  # fmt: skip
        jax.block_until_ready(state)
        return time.perf_counter() - start

    rows = []
    for num_runs in runs:
        seconds(num_runs, steps)  # compiles, and fills the persistent cache
        rate = num_runs * steps / (seconds(num_runs, 2 * steps) - seconds(num_runs, steps))
        rows.append({"runs": num_runs, "steps/s": rate, "steps/s per run": rate / num_runs})
    return pd.DataFrame(rows)


def sampling_speed(family: str, steps: int, n: int, repeats: int) -> pd.DataFrame:
    """Seconds (median of ``repeats``) of ``ReverseSDE`` and ``EulerMaruyama`` at ``steps``
    with one freshly initialised network of ``family``."""
    preset = presets.toy(family)
    model = preset.model
    params = model.init(jax.random.PRNGKey(0), data.get("nine_gaussians").train_set(64))
    rows = []
    for sampler in (samplers.EulerMaruyama(steps=steps), samplers.ReverseSDE(steps=steps)):
        fn = jax.jit(lambda p, k, s=sampler: model.sample(p, k, (n,), s))
        compiled = fn.lower(params, jax.random.PRNGKey(0)).compile()
        seconds, nfe = [], 0
        for r in range(repeats + 1):  # the first call warms up
            start = time.perf_counter()
            out = jax.block_until_ready(compiled(params, jax.random.PRNGKey(r)))
            seconds.append(time.perf_counter() - start)
            nfe = int(out.nfe)
        rows.append(
            {"sampler": repr(sampler), "NFE": nfe, "seconds": statistics.median(seconds[1:])}
        )
    frame = pd.DataFrame(rows)
    frame["ratio"] = frame.seconds / frame.seconds[0]
    return frame


def parser() -> argparse.ArgumentParser:
    """The command line of ``zoo-bench-speed``; its defaults depend on the backend."""
    on_gpu = jax.default_backend() != "cpu"
    p = argparse.ArgumentParser(
        prog="zoo-bench-speed",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keep the numbered list
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {zoo.__version__}")
    p.add_argument("--family", default="vp", choices=presets.FAMILIES, help="model family (vp)")
    p.add_argument("--runs", type=_counts, default=(1, 5, 25), help="run counts (1,5,25)")
    p.add_argument(
        "--train-steps", type=int, default=20_000 if on_gpu else 100,
        help="N: each run count is timed at N and 2N steps (20,000 on a GPU, 100 on a CPU)",
    )  # fmt: skip
    p.add_argument("--sample-steps", type=int, default=1000, help="sampler steps (1000)")
    p.add_argument(
        "--samples", type=int, default=10_000 if on_gpu else 500,
        help="samples per call (10,000 on a GPU, 500 on a CPU)",
    )  # fmt: skip
    p.add_argument(
        "--repeats", type=int, default=5 if on_gpu else 3,
        help="timed calls per sampler (5 on a GPU, 3 on a CPU)",
    )  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    # fit's step function is new on every call: only the persistent cache can skip recompiling.
    jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="zoo-speed-"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    print(f"zoo speed on {', '.join(map(str, jax.devices()))} ({jax.default_backend()}), {date}\n")
    training = training_speed(args.family, args.runs, args.train_steps)
    print(f"Training {args.family} (batch {presets.toy(args.family).batch_size}), jit excluded:\n")
    print(training.to_markdown(index=False, floatfmt=".0f") + "\n")
    sampling = sampling_speed(args.family, args.sample_steps, args.samples, args.repeats)
    print(f"Sampling {args.samples} points, median of {args.repeats}, jit excluded:\n")
    print(sampling.to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    main()
