r"""The error split with the exact score, for datasets that have one (the Gaussian mixtures).

A cell's distance to the data has two sources: the sampler's discretisation and the learned
score's error. Driving the same sampler with the exact score of the noised data,
:math:`\nabla\log p_t`, from the same key on the same process leaves the discretisation
alone: the **oracle** cell. Its metric over the noise floor is the discretisation error; the
learned cell's excess over the oracle is the score-learning error. An oracle cell depends on
the dataset, process, sampler, seed and sample size, never on training, so it is cached by
those alone (:func:`cell_key`) and shared by every family with the same process.

The learned score's error itself, per noise level,

.. math::
    e(t) = \sigma_t^2\, E_{x_t \sim p_t} \|s_\theta(x_t, t) - \nabla\log p_t(x_t)\|^2
         = E \|\hat\epsilon_\theta - \hat\epsilon^*\|^2,

the excess of the denoising loss over its minimum (in noise units, summed over dimensions),
is measured at scaled noise levels :math:`\sigma_t/\alpha_t = e^{-\lambda_t}` rather than at
times, so that processes with different clocks are compared at the same noise: at a level
every process sees the same points :math:`x_t/\alpha_t = x_0 + (\sigma_t/\alpha_t)\epsilon`.
"""

from __future__ import annotations

import math

import haiku as hk
import jax
import jax.numpy as jnp
from tqdm.auto import tqdm

from zoo import data as data_lib
from zoo import samplers as samplers_lib
from zoo.bench import cache
from zoo.bench.judge import evaluation
from zoo.bench.judge.evaluation import SAMPLE_STREAM
from zoo.bench.plan.matrix import Plan
from zoo.bench.plan.profiles import Config
from zoo.sdes import SDE

__all__ = [
    "COLUMNS",
    "METRICS",
    "SCORE_ERROR_COLUMNS",
    "NOISE_LEVELS",
    "cell_key",
    "columns",
    "has_exact_score",
    "sample",
    "score_error",
    "score_errors",
]

#: the metrics of an oracle cell, each a column ``oracle_<metric>`` of results.csv
METRICS = ("sliced_w2", "energy", "mode_kl", "spread")
COLUMNS = (*(f"oracle_{m}" for m in METRICS), "oracle_status")
#: the columns of score_error.csv, in order
SCORE_ERROR_COLUMNS = ("family", "dataset", "seed", "status", "noise", "t", "score_error")
#: scaled noise levels sigma_t / alpha_t of the score error: quarter decades, 0.018 to 10,
#: inside the range of every preset's process (the smallest starts at 0.0105)
NOISE_LEVELS = tuple(10.0 ** (k / 4) for k in range(-7, 5))
SCORE_ERROR_POINTS = 500
SCORE_ERROR_SEED = 1005


def has_exact_score(toy: data_lib.Toy, sde: SDE) -> bool:
    """Whether ``toy`` knows the exact score of its data noised by ``sde`` (traced, not run)."""
    if not isinstance(toy, data_lib.Toy):  # image data: no density, no score
        return False
    x = jax.ShapeDtypeStruct((1, *toy.event_shape), jnp.float32)
    try:
        jax.eval_shape(lambda x: toy.score(x, sde.T, sde), x)
    except NotImplementedError:
        return False
    return True


def sample(
    toy: data_lib.Toy, sde: SDE, sampler: samplers_lib.Sampler, key: jax.Array, n: int
) -> samplers_lib.Samples:
    """``n`` samples of ``sampler`` on ``sde`` driven by ``toy``'s exact score, with the
    very noise that ``model.sample(params, key, (n,), sampler)`` draws: the key passes
    through Haiku's key sequence as it does there (tested)."""

    def draw():
        score = data_lib.oracle_score(toy, sde)
        return sampler.sample(sde, score, hk.next_rng_key(), (n, *toy.event_shape))

    return hk.transform(draw).apply({}, key)


def cell_key(toy: data_lib.Toy, sde: SDE, sampler, seed: int, config: Config) -> dict:
    """Everything an oracle cell depends on: no family, no training."""
    return {
        "data": toy,
        "process": sde,
        "sampler": sampler,
        "seed": seed,
        "stream": SAMPLE_STREAM,
        "n": config.num_samples,
        "eval": evaluation.quick_settings(config),
    }


def columns(config: Config, the_plan: Plan, store: cache.Cache) -> dict:
    """The oracle columns (:data:`COLUMNS`) of every cell (a :class:`zoo.bench.plan.matrix.Cell`)
    whose sampler applies, on a dataset with an exact score; each oracle cell is sampled and
    scored once and cached."""
    values, compiled, exact = {}, {}, {}
    wanted = []
    for cell in the_plan.cells:
        if isinstance(cell.resolved, str):
            continue
        sde = the_plan.presets[cell.family][cell.dataset].model.sde
        toy = the_plan.data[cell.dataset]
        if (cell.dataset, sde) not in exact:
            exact[cell.dataset, sde] = has_exact_score(toy, sde)
        if exact[cell.dataset, sde]:
            wanted.append((cell, sde))
    for cell, sde in tqdm(wanted, desc="exact score", unit="cell", leave=False, disable=None):
        toy, reference = the_plan.data[cell.dataset], the_plan.references[cell.dataset]
        key = cell_key(toy, sde, cell.resolved, cell.seed, config)
        path = store.oracle(cell.dataset, cell.seed, cell.sampler, cache.digest(key))
        piece = store.fetch(path, cache.read_piece)
        if piece is None:
            where = (cell.family, cell.dataset, cell.sampler)
            if where not in compiled:
                compiled[where] = jax.jit(
                    lambda k, s=cell.resolved, t=toy, p=sde: sample(t, p, s, k, config.num_samples)
                )
            piece = evaluation.sample_and_score(
                compiled[where],
                cell.seed,
                reference,
                lambda x, t=toy, r=reference: evaluation.quick_quality(x, t, r, config),
            )
            cache.write_piece(path, piece, key)
        values[cell] = {
            "oracle_status": piece["status"],
            **{f"oracle_{m}": piece[m] for m in METRICS if m in piece},
        }
    return values


def score_error(
    score_fn,
    toy: data_lib.Toy,
    sde: SDE,
    levels: tuple[float, ...] = NOISE_LEVELS,
    points: int = SCORE_ERROR_POINTS,
    seed: int = SCORE_ERROR_SEED,
) -> list[dict]:
    r""":math:`\sigma_t^2 E\|s(x_t, t) - \nabla\log p_t(x_t)\|^2` of ``score_fn(x, t)``
    against ``toy``'s exact score on ``sde``, by Monte Carlo over ``points`` draws
    :math:`x_t = \alpha_t x_0 + \sigma_t \epsilon` (fixed keys from ``seed``), at each
    scaled noise level :math:`\sigma_t/\alpha_t` of ``levels`` that the process reaches
    (on a discrete schedule, at its nearest level). Returns one ``{"noise", "t",
    "score_error"}`` per such level, ``noise`` the level measured at."""
    data_key, noise_key = jax.random.split(jax.random.PRNGKey(seed))
    x0 = toy.sample(data_key, (points,))
    eps = jax.random.normal(noise_key, x0.shape)
    exact = jax.jit(lambda x, t: toy.score(x, t, sde))
    lowest, highest = float(sde.log_snr(sde.T)), float(sde.log_snr(sde.t_min))
    rows = []
    for level in levels:
        log_snr = -math.log(level)
        if not lowest - 1e-4 <= log_snr <= highest + 1e-4:  # beyond the process's noise
            continue
        t = _trained_time(sde, log_snr)
        alpha, sigma = sde.marginal(t)
        x = alpha * x0 + sigma * eps
        error = sigma**2 * jnp.mean(jnp.sum((score_fn(x, t) - exact(x, t)) ** 2, axis=-1))
        rows.append({"noise": float(sigma / alpha), "t": float(t), "score_error": float(error)})
    return rows


def _trained_time(sde: SDE, log_snr: float) -> jax.Array:
    """The time of log-SNR ``log_snr``; on a discrete schedule (DDPM, NCSN) the nearest of its
    levels instead, the only times its network was trained at and its samplers ask about
    (between levels the error would also measure how the network interpolates)."""
    if sde.num_levels is None:
        return sde.time_at_log_snr(log_snr)
    times = jnp.asarray(sde.level_times)
    return times[jnp.argmin(jnp.abs(sde.log_snr(times) - log_snr))]


def score_errors(
    config: Config, the_plan: Plan, family: str, store: cache.Cache, runs
) -> list[dict]:
    """:func:`score_error` of each trained run of ``family`` on a dataset with an exact
    score, one row per noise level, cached per run; ``runs()`` trains or loads the runs
    (called only when a piece is missing)."""
    settings = {"levels": NOISE_LEVELS, "points": SCORE_ERROR_POINTS, "seed": SCORE_ERROR_SEED}
    rows = []
    for dataset, preset in the_plan.presets[family].items():
        if isinstance(preset, str):
            continue
        model, toy = preset.model, the_plan.data[dataset]
        if not has_exact_score(toy, model.sde):
            continue
        for seed in config.seeds:
            key = {"run": the_plan.run_keys[family, dataset, seed], "score_error": settings}
            path = store.score_error(family, dataset, seed, cache.digest(key))
            piece = store.fetch(path, cache.read_piece)
            if piece is None:
                run = runs()[dataset, seed]
                piece = {"status": run.status, "levels": []}
                if run.status == "ok":
                    score = lambda x, t, p=run.params, m=model: m.score(p, x, t)
                    piece["levels"] = score_error(score, toy, model.sde)
                cache.write_piece(path, piece, key)
            base = {"family": family, "dataset": dataset, "seed": seed, "status": piece["status"]}
            rows.extend({**base, **level} for level in piece["levels"])
    return rows
