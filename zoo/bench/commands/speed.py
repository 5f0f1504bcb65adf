"""``zoo-bench speed`` (alias ``zoo-bench-speed``): how fast the zoo trains and samples
on this machine.

1. ``zoo.train.fit`` against a minimal fused loop of the same model, loss, batch size and optax
   optimizer (a ``lax.scan`` over steps that draws each minibatch with
   ``jax.random.randint`` from the same training array, takes a gradient and applies the
   update: nothing else), for 1 run and for several runs vmapped; ``fit`` as it is (its EMA
   every 10 steps) and with its EMA every step (``ema_every=1``). Each is timed at N and 3N
   steps and the rate taken from the difference, which cancels compiling and setup; the pairs
   are repeated, interleaved, and the medians reported, in wall time and in the process's CPU
   time (which a shared machine's other jobs disturb less), with the range of the pairs'
   ratios: a median ratio whose range spans 1 is a tie at this machine's noise.
2. The reverse-time SDE by Diffrax (``ReverseSDE``, Euler with an ``UnsafeBrownianPath``)
   against the plain ``lax.scan`` ``EulerMaruyama`` with the same network and steps: each
   compiled once, then the median of repeated calls.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

import zoo
from zoo import data, presets, samplers, train
from zoo.bench import cache
from zoo.bench.plan import config_file, limits, parsing
from zoo.bench.plan.cli import at_least
from zoo.bench.plan.limits import INT32_MAX
from zoo.bench.plan.parsing import UsageError
from zoo.bench.report import output

__all__ = [
    "fused_loop",
    "main",
    "parser",
    "ratio_ranges",
    "sampling_speed",
    "save",
    "training_speed",
]


def _counts(text: str) -> tuple[int, ...]:
    """Run counts like ``1,8``: distinct integers >= 1."""
    try:
        counts = tuple(at_least(1)(v) for v in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected run counts >= 1 like 1,8, got {text!r}"
        ) from None
    if len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"expected distinct run counts like 1,8, got {text!r}")
    return counts


def _check_memory(args: argparse.Namespace) -> None:
    """Refuse run counts whose parameters alone (with the EMA and Adam's two moments), or a
    sample batch whose network activations, exceed the machine's memory, before compiling
    anything."""
    model = presets.case_study(args.train_family).model
    param_bytes, _ = limits.network_bytes(model)
    need, memory = max(args.runs) * limits.TRAINING_COPIES * param_bytes, limits.machine_memory()
    if need > memory:
        raise UsageError(
            f"--runs: {max(args.runs):,} runs hold at least {limits.format_bytes(need)} of "
            f"parameters, EMA and optimizer state; this machine has {limits.format_bytes(memory)}"
        )
    if not args.no_sampling:
        try:
            limits.check_points("--samples", args.samples, presets.toy(args.family).model, memory)
        except limits.TooLarge as e:
            raise UsageError(str(e)) from None


def fused_loop(model: zoo.Model, x, batch_size: int, optimizer, num_runs: int, steps: int):
    """The reference: ``num_runs`` runs (vmapped) of ``steps`` fused steps, each
    ``params <- params + optimizer(grad mean(model.loss(params, key, x[randint])))``.

    Returns a jitted function of the runs' keys ``[R, 2]`` to their parameters and mean loss."""
    x = jnp.asarray(x)

    def step(carry, _):
        params, opt_state, key = carry
        key, batch_key, loss_key = jax.random.split(key, 3)
        batch = x[jax.random.randint(batch_key, (batch_size,), 0, x.shape[0])]
        loss, grads = jax.value_and_grad(lambda p: jnp.mean(model.loss(p, loss_key, batch)))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, key), loss

    def run(key):
        init_key, key = jax.random.split(key)
        params = model.init(init_key, x[:batch_size])
        (params, _, _), losses = jax.lax.scan(
            step, (params, optimizer.init(params), key), None, length=steps
        )
        return params, jnp.mean(losses)

    if num_runs == 1:
        return jax.jit(lambda keys: run(keys[0]))
    return jax.jit(jax.vmap(run))


def _timed(fn) -> tuple[float, float]:
    """Wall and process CPU seconds of ``fn()``, its result ready."""
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn())
    return time.perf_counter() - wall, time.process_time() - cpu


def _loops(preset: presets.Preset, x: np.ndarray, optimizer, num_runs: int, steps: int) -> dict:
    """The two loops compared, each a function of a step count (``steps`` or ``3 * steps``)."""
    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(num_runs)])
    model, batch_size = preset.model, preset.batch_size
    fused = {
        n: fused_loop(model, x, batch_size, optimizer, num_runs, n) for n in (steps, 3 * steps)
    }

    def fit(n, ema_every=10):
        state, _ = train.fit(
            model, x, steps=n, seeds=range(num_runs), num_train=len(x), batch_size=batch_size,
            optimizer=optimizer, ema_every=ema_every,
        )  # fmt: skip
        return state

    every_step = functools.partial(fit, ema_every=1)
    return {"fused": lambda n: fused[n](keys), "fit": fit, "fit, EMA every step": every_step}


def ratio_ranges(rates: dict[tuple[str, str], list[float]]) -> list[dict]:
    """For each loop of ``rates`` (``(loop, clock) -> steps/s`` of each interleaved pair) but
    the fused one, and each clock: the median, smallest and largest of the pairs' ratios to
    the fused loop, and how many pairs measured both (a NaN rate leaves its pair out)."""
    rows = []
    for (name, clock), values in rates.items():
        if name == "fused":
            continue
        ratios = [f / g for f, g in zip(values, rates["fused", clock], strict=True)]
        finite = [r for r in ratios if not math.isnan(r)]
        rows.append({
            "loop": f"{name} / fused", "clock": clock, "median": _median(finite),
            "min": min(finite, default=math.nan), "max": max(finite, default=math.nan),
            "pairs": len(finite),
        })  # fmt: skip
    return rows


def training_speed(
    preset: presets.Preset, runs: tuple[int, ...], steps: int, repeats: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Steps/s (aggregate over runs) of the minimal fused loop and of ``zoo.train.fit`` for
    ``preset``'s model, batch size and optimizer, each from ``3 * steps`` minus ``steps``
    steps; medians of ``repeats`` interleaved pairs, and the median of their ratios, for fit
    as it is (its EMA every 10 steps) and with its EMA updated every step. Returns that table
    and, per run count, the range of the pairs' ratios (:func:`ratio_ranges`)."""
    x = np.asarray(preset.data.train_set(10_000))
    optimizer = preset.optimizer()
    rows, ranges = [], []
    for num_runs in runs:
        loops = _loops(preset, x, optimizer, num_runs, steps)
        for loop in loops.values():  # compiles (fit: fills the persistent cache)
            for n in (steps, 3 * steps):
                _timed(functools.partial(loop, n))
        rates = {(name, clock): [] for name in loops for clock in ("wall", "cpu")}
        for _ in range(repeats):
            for name, loop in loops.items():
                short = _timed(functools.partial(loop, steps))
                long = _timed(functools.partial(loop, 3 * steps))
                for i, clock in enumerate(("wall", "cpu")):
                    rates[name, clock].append(_rate(num_runs * 2 * steps, long[i] - short[i]))
        paired = [{"runs": num_runs, **r} for r in ratio_ranges(rates)]
        row = {"runs": num_runs}
        for clock in ("wall", "cpu"):
            row[f"fused steps/s ({clock})"] = _median(rates["fused", clock])
            row[f"fit steps/s ({clock})"] = _median(rates["fit", clock])
            for r in paired:
                if r["clock"] == clock:
                    row[f"{r['loop']} ({clock})"] = r["median"]
        rows.append(row)
        ranges += paired
        noisy = sum(math.isnan(r) for rs in rates.values() for r in rs)
        if noisy:
            print(
                f"zoo-bench speed: {noisy} of {len(rates) * repeats} timed differences were not "
                f"positive ({num_runs} runs): the machine's noise exceeds {2 * steps} steps; "
                "those pairs are left out (a larger --train-steps measures them)",
                file=sys.stderr,
            )
    return pd.DataFrame(rows), pd.DataFrame(ranges)


def _rate(steps: int, seconds: float) -> float:
    """Steps per second, or NaN when the timed difference is not positive (noise, not speed)."""
    return steps / seconds if seconds > 0 else math.nan


def _median(values) -> float:
    """The median of the finite ``values``; NaN when none is."""
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else math.nan


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


def parser() -> parsing.Parser:
    """The command line of ``zoo-bench speed``; its defaults depend on the backend."""
    on_gpu = jax.default_backend() != "cpu"
    p = parsing.command("speed", __doc__, keep_layout=True, rerun=True)  # the numbered list kept
    p.add_argument(
        "--train-family", default="ddpm", choices=presets.CASE_STUDY_FAMILIES,
        help="the case study's model trained (ddpm: its MLP, batch 64, adamw 1e-3)",
    )  # fmt: skip
    p.add_argument("--runs", type=_counts, default=(1, 8), help="run counts (1,8)")
    p.add_argument(
        "--train-steps", type=at_least(1, INT32_MAX // 3), default=20_000 if on_gpu else 500,
        help="N: each loop is timed at N and 3N steps (20,000 on a GPU, 500 on a CPU; 3N is "
        "an int32 count)",
    )  # fmt: skip
    p.add_argument(
        "--family", default="vp", choices=presets.FAMILIES, help="model family sampled (vp)"
    )
    p.add_argument("--no-sampling", action="store_true", help="time the training only")
    p.add_argument("--sample-steps", type=at_least(2), default=1000, help="sampler steps (1000)")
    p.add_argument(
        "--samples", type=at_least(1), default=10_000 if on_gpu else 500,
        help="samples per call (10,000 on a GPU, 500 on a CPU)",
    )  # fmt: skip
    p.add_argument(
        "--repeats", type=at_least(1), default=5 if on_gpu else 3,
        help="interleaved training pairs and timed calls per sampler (5 on a GPU, 3 on a CPU)",
    )  # fmt: skip
    p.add_argument(
        "--out", type=Path, default=None,
        help="also write what is printed to OUT/speed.md, and every table's rows (a column "
        "'table' naming each) to OUT/speed.csv",
    )  # fmt: skip
    return p


def _section(title: str, table: pd.DataFrame) -> str:
    return f"{title}:\n\n{table.to_markdown(index=False, floatfmt='.3g')}\n"


def save(out: Path, text: str, tables: dict[str, pd.DataFrame]) -> None:
    """``speed.md`` (``text``, as printed) and ``speed.csv`` (the rows of every table, the
    column ``table`` holding its title) in ``out``, each written whole."""
    rows = pd.concat([t.assign(table=title) for title, t in tables.items()], ignore_index=True)
    rows = rows[["table", *(c for c in rows.columns if c != "table")]]
    output.table(out, "speed", rows, text)


@parsing.main_of("speed")
def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    _check_memory(args)
    if args.out is not None:
        try:
            cache.check_writable(args.out)
        except OSError as e:
            why = e.strerror or e
            raise UsageError(f"--out: cannot write to {str(args.out)!r}: {why}") from None
    # fit's step function is new on every call: only the persistent cache can skip recompiling
    # (the caller's, when JAX_COMPILATION_CACHE_DIR names one).
    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="zoo-speed-"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    started = time.time()
    date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    head = f"zoo speed on {', '.join(map(str, jax.devices()))} ({jax.default_backend()}), {date}"
    printed = [head + "\n"]  # each part as soon as it is measured, and all of it to --out
    print(printed[-1])
    preset = presets.case_study(args.train_family)
    tables = {}
    title = (
        f"Training {preset.name} (batch {preset.batch_size}), steps/s over all runs from "
        f"{args.train_steps} and {3 * args.train_steps} steps, median of {args.repeats}"
    )
    tables[title], ranges = training_speed(preset, args.runs, args.train_steps, args.repeats)
    printed.append(_section(title, tables[title]))
    print(printed[-1])
    pairs = f"Training, the ratio to the fused loop over the {args.repeats} interleaved pairs"
    tables[pairs] = ranges
    printed.append(_section(pairs, ranges))
    print(printed[-1])
    if not args.no_sampling:
        title = f"Sampling {args.samples} points, median of {args.repeats}, jit excluded"
        tables[title] = sampling_speed(args.family, args.sample_steps, args.samples, args.repeats)
        printed.append(_section(title, tables[title]))
        print(printed[-1])
    if args.out is not None:
        save(args.out, "\n".join(printed), tables)
        given = sys.argv[1:] if argv is None else argv
        if config_file.write_settings(args.out, "speed", parsing.settings(parser(), given)):
            output.record(args.out / "summary.json", output.run_summary("speed", given, started))


if __name__ == "__main__":
    from zoo.bench.commands import entry

    entry.finish(entry.run("zoo-bench speed", "zoo.bench.commands.speed"))
