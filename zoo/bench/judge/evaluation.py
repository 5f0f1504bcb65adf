"""Scores of a cell on the 2-D toys: sample-quality metrics against a fixed true reference
sample, the excess NLL of a trained run, and the noise floor of each (its value for true
samples). With :mod:`zoo.bench.plan.digits` (images) and :mod:`zoo.bench.plan.points` (a
user's points) it is one of the three kinds of data of :mod:`zoo.bench.plan.matrix`, and it
holds what they share: sampling keys, the status of a cell's samples, a solver failure's
status.

Every cell of a dataset is compared with the same reference sample (drawn once per dataset,
:func:`reference`), so differences between cells are paired; the noise floor compares
``FLOOR_REPEATS`` further independent true samples of the same size with that reference.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable

import jax
import numpy as np

import zoo
from zoo import data as data_lib
from zoo import metrics, presets
from zoo._checks import steps_run_out
from zoo.bench.plan import networks
from zoo.bench.plan.profiles import Config
from zoo.bench.train import training

#: what a kind of data's module answers (this one for the 2-D toys, :mod:`zoo.bench.plan.digits`
#: for images; :func:`zoo.bench.plan.matrix.kind` picks one by dataset)
KIND_API = (
    "HEADLINE",
    "METRICS",
    "QUICK_METRICS",
    "describe",
    "likelihood",
    "likelihood_fn",
    "likelihood_settings",
    "load",
    "noise_floor",
    "num_train",
    "preset",
    "quick_quality",
    "quick_settings",
    "reference",
    "sample_quality",
    "settings",
)

__all__ = [
    "FAR",
    "KIND_API",
    *KIND_API,
    "failure",
    "heldout",
    "sample_and_score",
    "sample_key",
    "sample_status",
]

#: column -> (label, which way is better; None: neither)
METRICS = {
    "excess_nll": ("excess NLL", "lower"),
    "excess_nll_se": ("NLL s.e.", None),
    "nll_kl": ("KL", "lower"),
    "nll_kl_se": ("KL s.e.", None),
    "w2": ("W2", "lower"),
    "sliced_w2": ("sliced W2", "lower"),
    "mmd2": ("MMD²", "lower"),
    "mmd_p": ("MMD p", None),
    "energy": ("energy", "lower"),
    "high_quality": ("high quality", "higher"),
    "modes_covered": ("modes", "higher"),
    "mode_kl": ("mode KL", "lower"),
    # each sample's offset from its nearest mode in that mode's sds: 1 is right, so neither way
    "spread": ("spread", None),
    "precision": ("precision", "higher"),
    "recall": ("recall", "higher"),
}

#: the metrics of :func:`quick_quality`: the cheap ones, for the cells beside the main table
QUICK_METRICS = ("sliced_w2", "energy", "high_quality", "modes_covered", "mode_kl", "spread")
#: the metric of the quality-per-NFE tables and figures
HEADLINE = "sliced_w2"

REFERENCE_SEED, HELDOUT_SEED, FLOOR_SEED, METRIC_SEED = 1001, 1002, 1003, 1004
SAMPLE_STREAM = 1  # sampling keys are fold_in(PRNGKey(seed), SAMPLE_STREAM)
FLOOR_REPEATS = 5
W2_POINTS = 2_000  # exact W2 (network simplex, cubic time) on the first points of each sample
PERMUTATIONS = 200
NEIGHBOURS = 3


def load(dataset: str, config: Config | None = None) -> data_lib.Toy:
    """The toy called ``dataset`` (``config``: unused; user points are read from it)."""
    return data_lib.get(dataset)


def preset(config: Config, family: str, toy: data_lib.Toy) -> presets.Preset:
    """``family``'s :func:`zoo.presets.toy` on ``toy`` over the config's network
    (:func:`zoo.bench.plan.networks.vector_net`), or the case study's with ``--presets
    case_study``; ``ValueError`` for a family that has none."""
    if config.presets == "case_study":  # the CLI allows nine Gaussians only
        return dataclasses.replace(presets.case_study(family), steps=config.steps)
    return presets.toy(family, data=toy, steps=config.steps, net=networks.vector_net(config))


def num_train(toy: data_lib.Toy) -> int:
    """Training points per run (``zoo.train.fit``'s ``num_train``)."""
    return training.NUM_TRAIN


def likelihood_settings(config: Config) -> dict:
    """Everything a run's likelihood depends on besides the run: part of its cache key."""
    return {"num_nll": config.num_nll, "nll_tol": config.nll_tol, "seed": HELDOUT_SEED}


def settings(config: Config) -> dict:
    """Everything a cell's scores depend on besides its samples: part of its cache key."""
    return {
        **likelihood_settings(config),
        "num_samples": config.num_samples,
        "floor_repeats": FLOOR_REPEATS,
        "w2_points": W2_POINTS,
        "permutations": PERMUTATIONS,
        "neighbours": NEIGHBOURS,
        "bandwidths": metrics.DEFAULT_BANDWIDTHS,
        "seeds": (REFERENCE_SEED, FLOOR_SEED, METRIC_SEED),
    }


def quick_settings(config: Config) -> dict:
    """Everything :func:`quick_quality`'s scores depend on besides the samples."""
    return {"num_samples": config.num_samples, "seeds": (REFERENCE_SEED, METRIC_SEED)}


def describe(config: Config) -> str:
    """How the numbers were obtained, for ``results.md`` and ``summary.json``."""
    return (
        f"Excess NLL (nats): the model's NLL of {config.num_nll} held-out points by the "
        f"probability-flow ODE (adaptive Tsit5, rtol = atol = {config.nll_tol:g}, exact "
        "divergence; NFE per run in results.csv) minus the data's entropy (zoo.data "
        "Toy.entropy()), with its standard error per run (NLL s.e.); it carries the held-out "
        "points' own distance from the entropy, the same for every family of a dataset. KL: the "
        "model's NLL less the data's own NLL of the same points, which estimates KL(data || "
        "model) without that offset, with its standard error (KL s.e.). Sample metrics compare "
        f"each cell's {config.num_samples} samples with one fixed true reference sample of the "
        f"same size: W2 exact on the first {min(W2_POINTS, config.num_samples)} points, MMD² with "
        f"Gaussian kernels {metrics.DEFAULT_BANDWIDTHS} and a {PERMUTATIONS}-permutation p-value, "
        f"precision/recall with k={NEIGHBOURS}, mode metrics (PacGAN, 3 sd) for Gaussian "
        f"mixtures. The noise floor is each metric for {FLOOR_REPEATS} independent true samples."
    )


def reference(toy: data_lib.Toy, config: Config) -> np.ndarray:
    """The fixed true sample every cell of ``toy`` is compared with (drawn once per dataset
    by :func:`zoo.bench.plan.matrix.make` and passed to every scoring call)."""
    return np.asarray(toy.sample(jax.random.PRNGKey(REFERENCE_SEED), (config.num_samples,)))


def heldout(toy: data_lib.Toy, num_nll: int, replica: int = 0) -> jax.Array:
    """The ``num_nll`` held-out points every family's likelihood of ``toy`` is measured on
    (replica 0; the noise floor's true samples are replicas 1, 2, ...)."""
    key = jax.random.fold_in(jax.random.PRNGKey(HELDOUT_SEED), replica)
    return toy.sample(key, (num_nll,))


def sample_key(seed: int) -> jax.Array:
    """The key every sampler of a seed's cells draws with (learned, exact score, or kept
    during training alike: their differences are paired)."""
    return jax.random.fold_in(jax.random.PRNGKey(seed), SAMPLE_STREAM)


def failure(error: jax.errors.JaxRuntimeError) -> str:
    """A solver's runtime error as a one-line status: the step limit (the zoo's check or
    Diffrax's own), else an error raised inside the program (under ``jit`` its message follows
    a callback's traceback in the text), else the error's first line.

    It also forgets the failed computation (:func:`_forget_failed_computation`), since the
    status is all that is left of it."""
    _forget_failed_computation()
    text = str(error)
    steps = steps_run_out(text)
    if steps is not None or "maximum number of solver steps" in text:
        return "failed: the ODE solver reached max_steps" + (f" ({steps})" if steps else "")
    raised = re.search(r"EquinoxRuntimeError: (.+)", text)
    line = raised[1] if raised else text.strip().splitlines()[0]
    return "failed: " + line.strip()[:200]


try:  # private: where JAX keeps its runtime tokens, read by _forget_failed_computation
    from jax._src import dispatch as _dispatch
except ImportError:
    _dispatch = None


def _forget_failed_computation() -> None:
    """Drop JAX's runtime tokens. JAX keeps, per device, the token of the last computation
    with a host callback (every ``eqx.error_if`` check is one) and waits on it at exit. A
    check that fails after its computation was dispatched, as when its input was still being
    computed, leaves a token holding the error, which JAX's exit handler raises again: a
    traceback printed after a finished benchmark's report. Once the error is a status nothing
    waits on that computation, so the tokens can go (JAX offers no public call for this;
    without it, only that exit traceback comes back)."""
    tokens = getattr(_dispatch, "runtime_tokens", None)
    if tokens is not None:
        tokens.clear()


#: samples this many times the data's radius away from the origin mark a diverged cell
FAR = 100.0


def sample_status(x: np.ndarray, reference: np.ndarray) -> str:
    """``"ok"``, or why samples ``x`` cannot be scored: non-finite values, or points beyond
    ``FAR`` times the largest norm of the true ``reference`` sample (one such point would
    dominate every distance in the table)."""
    flat = x.reshape(len(x), -1)
    bad = int(np.sum(~np.all(np.isfinite(flat), axis=-1)))
    if bad:
        return f"diverged: NaN samples ({bad} of {len(x)})"
    radius = float(np.max(np.linalg.norm(reference.reshape(len(reference), -1), axis=-1)))
    far = int(np.sum(np.linalg.norm(flat, axis=-1) > FAR * radius))
    if far:
        return f"diverged: {far} of {len(x)} samples beyond {FAR:g}x the data's radius"
    return "ok"


def sample_and_score(
    draw: Callable[[jax.Array], zoo.samplers.Samples],
    seed: int,
    reference: np.ndarray,
    quality: Callable[[np.ndarray], dict[str, float]],
) -> dict:
    """A cell beside the main table as one piece: ``draw(key)`` from the seed's sampling key
    (:func:`sample_key`), its ``status`` (:func:`sample_status` against ``reference``, or
    the solver's failure) and, when ``ok``, its ``nfe`` and ``quality(x)``."""
    try:
        out = jax.block_until_ready(draw(sample_key(seed)))
    except jax.errors.JaxRuntimeError as e:
        return {"status": failure(e)}
    x = np.asarray(out.x)
    piece = {"status": sample_status(x, reference)}
    if piece["status"] == "ok":
        piece.update(nfe=int(out.nfe), **quality(x))
    return piece


def sample_quality(
    x: np.ndarray, toy: data_lib.Toy, y: np.ndarray, config: Config
) -> dict[str, float]:
    """Every sample metric of finite samples ``x`` against ``toy``'s reference sample ``y``."""
    _, key_mmd = jax.random.split(jax.random.PRNGKey(METRIC_SEED))
    mmd2, mmd_p = metrics.mmd_test(x, y, key_mmd, PERMUTATIONS)
    precision, recall = metrics.precision_recall(y, x, NEIGHBOURS)
    values = {
        "w2": metrics.wasserstein2(x[:W2_POINTS], y[:W2_POINTS]),
        "mmd2": mmd2,
        "mmd_p": mmd_p,
        "precision": precision,
        "recall": recall,
    }
    return {**quick_quality(x, toy, y, config), **{k: float(v) for k, v in values.items()}}


def quick_quality(
    x: np.ndarray, toy: data_lib.Toy, y: np.ndarray, config: Config
) -> dict[str, float]:
    """The cheap metrics of :func:`sample_quality` (:data:`QUICK_METRICS`; the mode metrics
    for Gaussian mixtures only), the same numbers it gives for ``x``."""
    key_sliced, _ = jax.random.split(jax.random.PRNGKey(METRIC_SEED))
    values = {
        "sliced_w2": metrics.sliced_w2(x, y, key_sliced),
        "energy": metrics.energy_distance(x, y),
    }
    if isinstance(toy, data_lib.GaussianMixture):
        modes = metrics.mode_metrics(x, toy.means, toy.scales, toy.weights)
        values["high_quality"] = modes["high_quality"]
        values["modes_covered"] = modes["modes_covered"]
        values["mode_kl"] = modes["reverse_kl"]
        values["spread"] = modes["spread"]
    return {k: float(v) for k, v in values.items()}


def _excess(negative_log_probs: np.ndarray, toy: data_lib.Toy) -> dict[str, float]:
    """Mean NLL minus the entropy, with the standard error of both terms."""
    nll = np.asarray(negative_log_probs, np.float64)
    se = math.sqrt(nll.var(ddof=1) / nll.size + toy.entropy_stderr**2)
    return {"excess_nll": float(nll.mean() - toy.entropy()), "excess_nll_se": se}


def likelihood_fn(model: zoo.Model, config: Config):
    """``fn(params, x) -> zoo.likelihood.Likelihood``, jitted once per family."""
    return zoo.likelihood.likelihood_fn(model, rtol=config.nll_tol, atol=config.nll_tol)


def _paired(negative_log_probs: np.ndarray, toy: data_lib.Toy, x) -> dict[str, float]:
    """:math:`\\frac1n\\sum_i \\log p(x_i) - \\log q(x_i)`, an unbiased estimate of
    :math:`KL(p \\| q)` for :math:`x_i \\sim p`, with its standard error: paired on the same
    points, it has neither the sample's offset from the entropy nor its variance. None for
    data without a density (moons, rings, ...: their entropy is a nearest-neighbour estimate)."""
    try:
        log_p = np.asarray(toy.log_prob(x), np.float64)
    except NotImplementedError:
        return {}
    gap = np.asarray(negative_log_probs, np.float64) + log_p
    return {"nll_kl": float(gap.mean()), "nll_kl_se": float(gap.std(ddof=1) / math.sqrt(gap.size))}


def likelihood(fn, params, toy: data_lib.Toy, config: Config) -> dict[str, float]:
    """The excess-NLL and KL columns of one trained run (``fn`` from :func:`likelihood_fn`)."""
    x = heldout(toy, config.num_nll)
    out = fn(params, x)
    nll = -np.asarray(out.log_prob)
    values = {**_excess(nll, toy), **_paired(nll, toy, x)}
    return {**values, "nll_nfe": int(out.nfe), "nll_status": "ok"}


def noise_floor(toy: data_lib.Toy, y: np.ndarray, config: Config) -> dict:
    """``note``: the data's entropy (an estimate takes seconds, so it is cached with the
    floor), and ``samples``: each metric for ``FLOOR_REPEATS`` true samples of ``toy``
    against the reference ``y``, with the excess NLL of the true density where it is known."""
    rows = []
    for r in range(FLOOR_REPEATS):
        key = jax.random.fold_in(jax.random.PRNGKey(FLOOR_SEED), r)
        x = np.asarray(toy.sample(key, (config.num_samples,)))
        row = sample_quality(x, toy, y, config)
        try:
            log_p = toy.log_prob(heldout(toy, config.num_nll, replica=1 + r))
        except NotImplementedError:
            pass
        else:
            row.update(_excess(-np.asarray(log_p), toy))
        rows.append(row)
    note = f"Entropy {toy.entropy():.4f} nats ({toy.entropy_method})."
    return {"note": note, "samples": rows}
