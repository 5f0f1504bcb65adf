r"""``zoo-bench nll-split <results folder>``: at which noise levels a trained
model's excess NLL arises, measured by substituting the exact score (Gaussian mixtures only).

The probability-flow ODE's likelihood reads the score at every noise level. For a cut
:math:`c`, let :math:`L(c)` be the NLL of the held-out points with the exact score
:math:`\nabla\log p_t` wherever :math:`\sigma_t/\alpha_t < c` and the learned score
elsewhere: :math:`L(0)` is the model's NLL, :math:`L(\infty)` the exact score's. Over cuts
:math:`0 = c_0 < c_1 < \dots < c_K = \infty` the differences telescope,

.. math:: L(0) - L(\infty) = \sum_k \big(L(c_k) - L(c_{k+1})\big),

so the band :math:`[c_k, c_{k+1})` of noise-to-signal ratio is charged
:math:`L(c_k) - L(c_{k+1})` nats: what the learned score in that band adds once the score
below it is exact. Its sign is not fixed (an error in one band can offset one in another);
the sum is exact. The bands of one model sum to its excess NLL less that of the exact score,
whose own excess is the same for every model of a process and dataset: mostly the held-out
sample's own distance from the entropy (its NLL under the data's density, the ``data`` row,
about ±0.03 nats for 1,000 points), plus the ODE's tolerance and the blur at ``t_min``. So
``paired``, the model's NLL less the data's own NLL of the same points (the bands plus exact
less data), estimates :math:`KL(p_{data} \| p_\theta)` without the sample's offset.

It reads the trained runs from the folder's ``cache/runs`` (kept by ``zoo-bench``), so it
runs only beside the cache of the command that made the folder, and writes
``nll_split.csv`` and ``nll_split.md`` into it.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import zoo
from zoo import data as data_lib
from zoo import presets
from zoo.bench import cache
from zoo.bench.commands import entry
from zoo.bench.judge import evaluation, oracle
from zoo.bench.plan import config_file, limits, parsing
from zoo.bench.plan.cli import at_least, names, tolerance
from zoo.bench.plan.parsing import UsageError
from zoo.bench.report import output

__all__ = ["likelihood_fn", "main", "parser", "report", "split", "table"]

#: the default band edges of sigma_t / alpha_t (0 and infinity are added)
CUTS = (0.1, 1.0, 10.0)


def _bands(cuts) -> list[tuple[float, float]]:
    edges = [0.0, *sorted(cuts), math.inf]
    return list(zip(edges[:-1], edges[1:], strict=True))


def likelihood_fn(model, toy: data_lib.Toy, tol: float):
    """``fn(params, x, cut) -> mean NLL`` of ``x`` with the exact score where
    sigma/alpha < ``cut`` and ``model.score(params, ...)`` elsewhere: ``cut`` 0 is the model's
    NLL, infinity the exact score's. Jitted once, for every run and cut of ``model``."""
    sde = model.sde

    def nll(params, x, cut):
        def score(y, t):
            ratio = jnp.sqrt(sde.variance(t)) * jnp.exp(-sde.log_alpha(t))
            return jnp.where(ratio < cut, toy.score(y, t, sde), model.score(params, y, t))

        return zoo.log_likelihood(sde, score, x, rtol=tol, atol=tol).log_prob

    fn = jax.jit(nll)
    return lambda params, x, cut: float(-np.mean(np.asarray(fn(params, x, cut), np.float64)))


def _run_paths(runs: Path, family: str, dataset: str) -> dict[int, Path]:
    """``{seed: run stem}`` of one family and dataset; an error if a seed has two runs."""
    found: dict[int, list[Path]] = {}
    for path in sorted((runs / family / dataset).glob("seed*-*.json")):
        match = re.fullmatch(r"seed(-?\d+)-\w+", path.stem)
        if match:
            found.setdefault(int(match.group(1)), []).append(path.with_suffix(""))
    twice = {s: p for s, p in found.items() if len(p) > 1}
    if twice:
        raise SystemExit(
            f"nll_split: {runs / family / dataset} holds runs of several configurations for "
            f"seeds {sorted(twice)}; use the folder of one zoo-bench command"
        )
    return {s: p[0] for s, p in found.items()}


def _model(path: Path) -> zoo.Model:
    """The model a cached run was trained as, rebuilt from the config it recorded (so a folder
    made with another --width or --presets is read right); one line if it cannot be."""
    try:
        return zoo.train.load_model(path)
    except (OSError, ValueError) as e:
        raise SystemExit(
            f"nll_split: cannot rebuild the model of the cached run {path}.json ({e}); a run of "
            "a user's network (--net) records no model to rebuild"
        ) from None


def _read(path: Path):
    """The trained run at ``path`` (its stem); a damaged one ends the split with one line
    naming its file, as the split reads runs and never trains them."""
    try:
        return cache.read_run(path)[0]
    except cache.Damaged as e:
        damaged = e.file or path.with_name(path.name + ".json")
        raise SystemExit(
            f"nll_split: the cached run {damaged} is damaged ({e}); run the zoo-bench command "
            "of the folder again to train it again"
        ) from None


def split(folder: Path, families, datasets, cuts=CUTS, num_nll: int = 1000, tol: float = 1e-3):
    """Rows ``family, dataset, seed, band, nats`` for every cached run and band of ``cuts``,
    and one ``band="exact"`` row per process and dataset (``seed`` -1): the exact score's
    excess NLL."""
    runs, rows, exact = folder / "cache" / "runs", [], {}
    bands = [_band_name(lo, hi) for lo, hi in _bands(cuts)]
    for dataset in datasets:
        toy = data_lib.get(dataset)
        x = evaluation.heldout(toy, num_nll)
        data_nll = float(-np.mean(np.asarray(toy.log_prob(x), np.float64)))
        rows.append(_row("data", dataset, -1, "data", data_nll - toy.entropy()))
        for family in families:
            paths = _run_paths(runs, family, dataset)
            if not paths:
                raise SystemExit(f"nll_split: no runs of {family} on {dataset} in {runs}")
            model = _model(next(iter(paths.values())))
            if not oracle.has_exact_score(toy, model.sde):
                raise SystemExit(f"nll_split: {dataset} has no exact score under {family}")
            fn = likelihood_fn(model, toy, tol)
            runs_params = {s: _read(p).ema_params for s, p in sorted(paths.items())}
            process = (repr(model.sde), dataset)
            if process not in exact:  # shared by the families of one process
                exact[process] = fn(next(iter(runs_params.values())), x, math.inf)
            rows.append(_row(family, dataset, -1, "exact", exact[process] - toy.entropy()))
            for seed, params in runs_params.items():
                nll = [fn(params, x, c) for c in (0.0, *sorted(cuts))]
                parts = -np.diff([*nll, exact[process]])  # L(c_k) - L(c_k+1)
                for band, nats in zip(bands, parts, strict=True):
                    rows.append(_row(family, dataset, seed, band, nats))
                print(f"{dataset} {family} seed {seed}: excess {nll[0] - toy.entropy():.4f}, "
                      f"bands {np.round(parts, 4).tolist()}", flush=True)  # fmt: skip
    return pd.DataFrame(rows)


def _band_name(lo: float, hi: float) -> str:
    return f"{lo:g}+" if math.isinf(hi) else f"{lo:g}-{hi:g}"


def _row(family, dataset, seed, band, nats) -> dict:
    return {"family": family, "dataset": dataset, "seed": seed, "band": band, "nats": nats}


def table(frame: pd.DataFrame) -> str:
    """Markdown: per dataset, each family's mean ± sd over seeds of each band's nats, and of
    their sum (the excess NLL over the exact score's)."""
    out = []
    for dataset, part in frame.groupby("dataset", sort=False):
        bands = part[~part.band.isin(["exact", "data"])]
        by = bands.groupby(["family", "band"], sort=False).nats
        cells = (by.mean().map("{:+.4f}".format) + " ± " + by.std().map("{:.4f}".format)).unstack(
            "band"
        )
        total = bands.groupby(["family", "seed"], sort=False).nats.sum().groupby("family")
        cells["sum"] = total.mean().map("{:+.4f}".format) + " ± " + total.std().map("{:.4f}".format)
        exact = part[part.band == "exact"].set_index("family").nats
        data = part[part.band == "data"].nats.item()
        paired = total.mean() + (exact - data).reindex(total.mean().index)
        cells["paired"] = paired.map("{:+.4f}".format) + " ± " + total.std().map("{:.4f}".format)
        notes = ", ".join(f"{v:+.4f} ({f})" for f, v in exact.items())
        out += [f"### {dataset}", "", f"The held-out points' NLL under the data's density, over "
                f"the entropy: {data:+.4f}. The exact score's: {notes}.", ""]  # fmt: skip
        out += [cells.to_markdown(), ""]
    return "\n".join(out)


def _cuts(text: str) -> tuple[float, ...]:
    """Band edges of sigma/alpha: distinct positive finite numbers, in increasing order."""
    try:
        cuts = tuple(float(c) for c in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers like 0.1,1,10, got {text!r}"
        ) from None
    if any(not 0.0 < c < math.inf for c in cuts) or len(set(cuts)) != len(cuts):
        raise argparse.ArgumentTypeError(
            f"expected distinct positive finite noise levels, got {text!r}"
        )
    return tuple(sorted(cuts))


def parser() -> parsing.Parser:
    p = parsing.command("nll-split", __doc__, keep_layout=True)
    p.add_argument("folder", type=Path, help="a zoo-bench results folder with its cache/")
    p.add_argument("--families", type=names(presets.FAMILY_TABLE, "family"), required=True,
                   metavar="LIST", help="comma-separated, e.g. vp,vp-lw,ve")  # fmt: skip
    p.add_argument("--datasets", type=names(data_lib.NAMES, "dataset"), metavar="LIST",
                   default=("nine_gaussians", "gaussians_25"))  # fmt: skip
    p.add_argument("--cuts", type=_cuts, default=CUTS, help="band edges of sigma/alpha")
    p.add_argument("--nll-points", type=at_least(2), default=1000, help="held-out points (1000)")
    p.add_argument("--nll-tol", type=tolerance, default=None,
                   help="ODE rtol = atol (the folder's nll_tol, from its config.toml)")  # fmt: skip
    return p


def folder_tolerance(folder: Path) -> float:
    """The ``nll_tol`` of the folder's ``config.toml``: the tolerance of the benchmark's own
    likelihoods, at which :math:`L(0)` is its excess NLL."""
    path = folder / "config.toml"
    try:
        value = config_file.read(path).get("nll_tol")
    except ValueError as e:
        raise UsageError(f"folder: {e}; pass --nll-tol") from None
    if value is None:
        raise UsageError(f"folder: {path} gives no nll_tol; pass --nll-tol")
    try:
        return tolerance(str(value))
    except argparse.ArgumentTypeError as e:
        raise UsageError(f"folder: {path}: nll_tol: {e}") from None


@parsing.main_of("nll-split")
def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if not (args.folder / "cache" / "runs").is_dir():
        raise UsageError(f"folder: {args.folder} has no cache/runs (run zoo-bench --out there)")
    try:
        cache.check_writable(args.folder)  # nll_split.csv and .md go there, after the work
    except OSError as e:
        raise UsageError(f"folder: cannot write to {args.folder}: {e.strerror or e}") from None
    families, datasets, cuts = list(args.families), list(args.datasets), list(args.cuts)
    try:
        for family in families:
            limits.check_points("--nll-points", args.nll_points, presets.toy(family).model)
    except limits.TooLarge as e:
        raise UsageError(str(e)) from None
    tol = folder_tolerance(args.folder) if args.nll_tol is None else args.nll_tol
    frame = split(args.folder, families, datasets, cuts, args.nll_points, tol)
    print(report(args.folder, frame))


#: the head of nll_split.md
HEAD = """# Excess NLL by band of noise (nats)

L(c) is the NLL of the held-out points by the probability-flow ODE with the exact score
wherever sigma_t/alpha_t < c and the learned score elsewhere. Each band [c_k, c_k+1) of
sigma/alpha is charged L(c_k) - L(c_k+1); the bands add up to the model's NLL less the exact
score's (sum). paired: the model's NLL less the data's own NLL of the same points, an estimate
of KL(data || model). Mean ± sd over seeds; nll_split.csv has every run.
"""


def report(folder: Path, frame: pd.DataFrame) -> str:
    """Write ``nll_split.csv`` (``frame``) and ``nll_split.md`` (:data:`HEAD` and
    :func:`table` of ``frame``) into ``folder``; returns the table."""
    text = table(frame)
    output.table(folder, "nll_split", frame, HEAD + "\n" + text)
    return text


if __name__ == "__main__":
    entry.finish(entry.run("zoo-bench nll-split", "zoo.bench.commands.nll_split"))
