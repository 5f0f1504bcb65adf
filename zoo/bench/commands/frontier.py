r"""``zoo-bench frontier``: the fast samplers on the exact score, where learning plays
no part, at each NFE budget, every process and several data sets.

Each cell drives one sampler (a name of :mod:`zoo.bench.plan.named_samplers`, options included) on
one process with the exact score of one data set, from ``SEEDS`` keys, and judges its ``n``
samples twice:

- **sliced W2 / floor**: the sliced Wasserstein-2 distance to a fixed true sample of the same
  size, over the mean of the same distance for ``FLOOR_REPEATS`` independent true samples
  (1 is the floor; within its noise, about ±25% per sample at n = 4,000, a tie);
- **spread** (Gaussian mixtures): every sample's offset from its nearest component in that
  component's standard deviations (:func:`zoo.metrics.mode_metrics`), 1 for the data; a
  sampler that over-smooths shows below 1, one that is too wide above 1. Sliced W2 cannot see
  a narrow mode's spread off by a factor of 3.

Data sets: the Gaussian mixtures (exact scores), and other toys through a Gaussian mixture
fitted to them, a kernel density estimate of ``KDE_POINTS`` training points with bandwidth
``KDE_BANDWIDTH`` (its diffused score is exact); they are judged against samples of that
mixture, so the target is exact there too.

A sampler name ending in ``+gits`` (``ipndm+gits``) runs on the grid that GITS
(:func:`zoo.grids.optimised_grid`) fits to nine Gaussians' exact score for each process and
budget: judge it on the other data sets.

Writes ``frontier.csv`` (one row per cell and seed), ``frontier.md`` (mean over seeds per
sampler and NFE, one table per process and data set, the best cell per column in bold, and
the worst data set per process, and the NFE at which each process first reaches 1.5x the
floor with spread within 0.9-1.1) and ``frontier_<dataset>.png``; ``--tables`` writes the
last two again from ``frontier.csv``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from zoo import data as data_lib
from zoo import grids, metrics, presets
from zoo.bench import cache
from zoo.bench.commands import entry
from zoo.bench.plan import cli, config_file, limits, named_samplers, parsing
from zoo.bench.plan.parsing import UsageError
from zoo.bench.report import figures, output

__all__ = ["SAMPLERS", "fitted_mixture", "main", "parser", "run", "table"]

NFE = (3, 5, 8, 10, 15, 20, 50)
SEEDS = (0, 1, 2)
FLOOR_REPEATS = 10
REFERENCE_SEED, FLOOR_SEED, METRIC_SEED, KDE_SEED = 2001, 2002, 2003, 2004
KDE_POINTS, KDE_BANDWIDTH = 1000, 0.05
MIXTURES = ("nine_gaussians", "gaussians_25", "8gaussians")
#: every sampler kind with its defaults, then the grids worth reporting beside them:
#: ``dpm[grid=time,end=zero]`` is the widely used schedulers' default schedule (time-uniform
#: steps, the last step to zero noise, lower-order final steps), ``dpm[grid=log_snr,
#: denoise=true]`` DPM-Solver's own grid with a final denoising step
SAMPLERS = (
    "ddim",
    "dpm",
    "dpm[order=3]",
    "unipc",
    "unipc[order=3]",
    "ipndm",
    "edm",
    "dpm[grid=time,end=zero]",
    "dpm[grid=log_snr,denoise=true]",
)
PASS_RATIO, PASS_SPREAD = 1.5, (0.9, 1.1)
#: a sampler name with this suffix runs on a grid fitted (GITS) to GITS_DATA's exact score
GITS_SUFFIX, GITS_DATA, GITS_SEED = "+gits", "nine_gaussians", 2005


def fitted_mixture(name: str) -> data_lib.GaussianMixture:
    """A kernel density estimate of ``KDE_POINTS`` points of toy ``name``: equal weights,
    isotropic bandwidth ``KDE_BANDWIDTH``."""
    points = np.asarray(data_lib.get(name).sample(jax.random.PRNGKey(KDE_SEED), (KDE_POINTS,)))
    scales = np.full_like(points, KDE_BANDWIDTH)
    return data_lib.GaussianMixture(np.ones(len(points)), points, scales, name=f"{name} (KDE)")


def _padded(toy: data_lib.GaussianMixture, components: int):
    """The mixture's arrays padded to ``components`` with weight-0 components, so that mixtures
    of different sizes share one compiled sampler."""
    w, m, s = (np.asarray(v, np.float32) for v in (toy.weights, toy.means, toy.scales))
    pad = components - len(w)
    return (
        np.concatenate([w, np.zeros(pad, np.float32)]),
        np.concatenate([m, np.zeros((pad, 2), np.float32)]),
        np.concatenate([s, np.ones((pad, 2), np.float32)]),
    )


def _sampler_fn(sampler, sde, n: int):
    """``fn(keys, weights, means, scales) -> (samples [len(keys), n, 2], NFE [len(keys)])``,
    jitted: the sampler driven by the exact score of the mixture given as arrays."""

    def one(key, w, m, s):
        toy = data_lib.GaussianMixture(w, m, s)
        out = sampler.sample(sde, lambda x, t: toy.score(x, t, sde), key, (n, 2))
        return out.x, out.nfe

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None)))


def _judge(toy, n: int):
    """``fn(x) -> (sliced W2 / floor, spread)`` against ``toy``, and the floor itself."""
    reference = toy.sample(jax.random.PRNGKey(REFERENCE_SEED), (n,))
    key = jax.random.PRNGKey(METRIC_SEED)
    floor_keys = jax.random.split(jax.random.PRNGKey(FLOOR_SEED), FLOOR_REPEATS)
    floors = [float(metrics.sliced_w2(toy.sample(k, (n,)), reference, key)) for k in floor_keys]
    floor = float(np.mean(floors))
    has_modes = toy.name in MIXTURES
    spread = jax.jit(
        lambda x: metrics.mode_metrics(x, toy.means, toy.scales, toy.weights, check_finite=False)[
            "spread"
        ]
    )

    def judge(x):
        distance = float(metrics.sliced_w2(x, reference, key, check_finite=False)) / floor
        return distance, float(spread(x)) if has_modes else math.nan

    return judge, floor, float(np.std(floors))


def run(processes, datasets, samplers, budgets, n: int, log=print) -> pd.DataFrame:
    """One row per process, data set, sampler, NFE budget and seed: ``ratio`` (sliced W2 over
    the floor), ``spread``, the ``nfe`` the sampler reports and the data set's ``floor``."""
    toys = {d: data_lib.get(d) if d in MIXTURES else fitted_mixture(d) for d in datasets}
    judges = {d: _judge(toy, n) for d, toy in toys.items()}
    groups = {}  # mixtures of similar size share a compiled sampler
    for d, toy in toys.items():
        groups.setdefault(len(toy.weights) > 100, []).append(d)
    keys = jnp.stack([jax.random.PRNGKey(s) for s in SEEDS])
    rows = []
    for process in processes:
        sde = presets.FAMILY_TABLE[process].process
        for name in samplers:
            for budget in budgets:
                started = time.perf_counter()
                full, sampler = _resolve(name, budget, sde)
                if isinstance(sampler, str):  # e.g. more DDIM steps than NCSN has levels
                    log(f"{process} {full}: skipped: {sampler}")
                    continue
                for members in groups.values():
                    size = max(len(toys[d].weights) for d in members)
                    fn = _sampler_fn(sampler, sde, n)
                    for d in members:
                        out, nfe = fn(keys, *_padded(toys[d], size))
                        judge, floor, _ = judges[d]
                        nfe = int(nfe[0])
                        for seed, x in zip(SEEDS, np.asarray(out), strict=True):
                            ratio, spread = judge(x)
                            rows.append(
                                {"process": process, "dataset": d, "sampler": name,
                                 "budget": budget, "nfe": nfe, "seed": seed, "ratio": ratio,
                                 "spread": spread, "floor": floor}
                            )  # fmt: skip
                log(f"{process} {full}: {time.perf_counter() - started:.1f} s")
    return pd.DataFrame(rows)


def _resolve(name: str, budget: int, sde):
    """The sampler ``name`` at about ``budget`` NFE on ``sde`` and its full name; a name ending
    in ``+gits`` takes the grid :func:`zoo.grids.optimised_grid` fits to ``GITS_DATA``'s
    exact score for that process and number of steps."""
    base = name.removesuffix(GITS_SUFFIX)
    (full,) = named_samplers.sweep((base,), (budget,))
    sampler = named_samplers.resolve(full, sde, None)
    if base == name:
        return full, sampler
    toy = data_lib.get(GITS_DATA)
    score = lambda x, t: toy.score(x, t, sde)
    times = grids.optimised_grid(sde, score, jax.random.PRNGKey(GITS_SEED), sampler.steps)
    return full + GITS_SUFFIX, dataclasses.replace(sampler, grid=times)


def _mean(frame: pd.DataFrame) -> pd.DataFrame:
    keys = ["process", "dataset", "sampler", "budget"]
    return frame.groupby(keys, sort=False)[["ratio", "spread", "nfe"]].mean().reset_index()


def passes(ratio: float, spread: float) -> bool:
    """At most ``PASS_RATIO`` times the floor, with the spread within ``PASS_SPREAD`` where
    there is one."""
    low, high = PASS_SPREAD
    return ratio <= PASS_RATIO and (math.isnan(spread) or low <= spread <= high)


def _grid(block: pd.DataFrame) -> list[str]:
    """A markdown table of ``block``: a row per sampler, a column per budget, each cell
    "ratio / spread" (bold where it :func:`passes`; "-" where the sampler does not apply)."""
    budgets = sorted(block.budget.unique())
    lines = ["| sampler | " + " | ".join(f"{b} NFE" for b in budgets) + " |"]
    lines.append("|:--|" + "--:|" * len(budgets))
    for sampler, rows in block.groupby("sampler", sort=False):
        cells = []
        for b in budgets:
            if not (rows.budget == b).any():  # a sampler that does not apply at this budget
                cells.append("-")
                continue
            row = rows[rows.budget == b].iloc[0]
            text = f"{row.ratio:.2f}" + ("" if math.isnan(row.spread) else f" / {row.spread:.2f}")
            cells.append(f"**{text}**" if passes(row.ratio, row.spread) else text)
        lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _worst(means: pd.DataFrame) -> pd.DataFrame:
    """Per process, sampler and budget, the largest ratio over the data sets and the spread
    farthest from 1 (by its factor: 0.5 is as far as 2)."""

    def worst(group: pd.DataFrame) -> pd.Series:
        spreads = group.spread.dropna()
        far = spreads.iloc[np.argmax(np.abs(np.log(spreads)))] if len(spreads) else np.nan
        return pd.Series({"ratio": group.ratio.max(), "spread": far})

    keys = ["process", "sampler", "budget"]
    return means.groupby(keys, sort=False)[["ratio", "spread"]].apply(worst).reset_index()


def table(frame: pd.DataFrame) -> str:
    """``frontier.md``'s tables: per process and data set, sliced W2 / floor and spread
    (mean over seeds) per sampler and NFE budget; per process, the worst data set in each
    cell (:func:`_worst`); then the first budget at which each sampler passes
    (:func:`passes`) on every data set, per process."""
    means = _mean(frame)
    lines = []
    for (process, dataset), block in means.groupby(["process", "dataset"], sort=False):
        lines += [f"### {process}, {dataset}", ""]
        lines += _grid(block)
    for process, block in _worst(means).groupby("process", sort=False):
        lines += [f"### {process}, the worst data set in each cell", ""]
        lines += _grid(block)
    lines += ["### First NFE budget that passes on every data set", ""]
    processes = list(dict.fromkeys(means.process))
    lines.append("| sampler | " + " | ".join(processes) + " |")
    lines.append("|:--|" + "--:|" * len(processes))
    for sampler, rows in means.groupby("sampler", sort=False):
        cells = []
        for process in processes:
            block = rows[rows.process == process]
            ok = block.assign(
                ok=[passes(r, s) for r, s in zip(block.ratio, block.spread, strict=True)]
            )
            by_budget = ok.groupby("budget").ok.all()
            passing = [b for b in sorted(by_budget.index) if by_budget[b]]
            cells.append(str(passing[0]) if passing else "-")
        lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parser() -> parsing.Parser:
    p = parsing.command("frontier", __doc__.split("\n\n")[0], rerun=True)
    p.add_argument("--out", type=Path, default=Path("results/frontier"), help="output folder")
    p.add_argument("--processes", type=cli.names(presets.FAMILIES, "process"),
                   default=presets.FAMILIES, help="families whose toy process to use")  # fmt: skip
    p.add_argument(
        "--datasets", type=cli.names(data_lib.NAMES, "dataset"),
        default=("nine_gaussians", "gaussians_25", "8gaussians", "moons"),
        help="Gaussian mixtures, or any other toy through its fitted mixture",
    )  # fmt: skip
    p.add_argument("--samplers", default=",".join(SAMPLERS), help="sampler kinds with options")
    p.add_argument("--nfe", type=cli.budgets, default=NFE, help="NFE budgets, e.g. 5,10,20")
    p.add_argument("--samples", type=cli.at_least(100), default=4000,
                   help="samples per cell and seed")  # fmt: skip
    p.add_argument(
        "--tables", action="store_true",
        help="only write frontier.md and the figures again from --out's frontier.csv",
    )  # fmt: skip
    p.modes = ("tables",)
    return p


@parsing.main_of("frontier")
def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.tables:
        path = args.out / "frontier.csv"
        if not path.is_file():
            raise UsageError(f"--tables: no {path} to read; run the frontier into --out first")
        frame = pd.read_csv(path)
        output.text(args.out / "frontier.md", table(frame))
        _figures(args.out, frame)
        return
    processes, datasets = list(args.processes), list(args.datasets)
    samplers = named_samplers.split(args.samplers)
    budgets = args.nfe
    if not budgets:
        raise UsageError("--nfe: the frontier needs at least one budget, got none")
    try:
        named_samplers.sweep(tuple(s.removesuffix(GITS_SUFFIX) for s in samplers), budgets)
    except ValueError as e:
        raise UsageError(f"--samplers/--nfe: {e}") from None
    need, memory = _memory(args.samples, datasets), limits.machine_memory()
    if need > memory:
        raise UsageError(
            f"--samples: {args.samples:,} samples need at least {limits.format_bytes(need)} "
            f"(each seed's samples against every component of the largest mixture); this "
            f"machine has {limits.format_bytes(memory)}"
        )
    try:
        cache.check_writable(args.out)  # before the run, not after an hour of it
    except OSError as e:
        raise UsageError(f"--out: cannot write to {args.out}: {e.strerror or e}") from None
    started = time.time()
    frame = run(processes, datasets, samplers, budgets, args.samples)
    text = table(frame)
    output.table(args.out, "frontier", frame, text)
    _figures(args.out, frame)
    given = sys.argv[1:] if argv is None else argv
    config_file.write_settings(args.out, "frontier", parsing.settings(parser(), given))
    output.record(args.out / "summary.json", output.run_summary("frontier", given, started))
    print(text)


def _memory(n: int, datasets: list[str]) -> int:
    """A lower bound on the bytes a run holds: the ``[seeds, n, components, 2]`` offsets of
    every sample from every component of the largest mixture, in float32."""
    largest = max(len(data_lib.get(d).weights) if d in MIXTURES else KDE_POINTS for d in datasets)
    return len(SEEDS) * n * largest * 2 * limits.FLOAT


def _figures(out: Path, frame: pd.DataFrame) -> None:
    means = _mean(frame)
    for dataset in dict.fromkeys(frame.dataset):
        figures.frontier(
            out / f"frontier_{dataset}.png", means[means.dataset == dataset], dataset,
            PASS_RATIO, PASS_SPREAD,
        )  # fmt: skip


if __name__ == "__main__":
    entry.finish(entry.run("zoo-bench frontier", "zoo.bench.commands.frontier"))
