"""A user's points in the harness (``zoo-bench --data points.npy``): an ``N x d`` array from a
``.npy``, ``.npz`` (one array) or ``.csv`` file (an optional header row), one more dataset
named by the file's stem, trained and scored like the 2-D toys but without a known density.

The third kind of data of :mod:`zoo.bench.plan.matrix`, beside
:mod:`zoo.bench.judge.evaluation` (the toys) and :mod:`zoo.bench.plan.digits`; it answers the
same calls and scores with the toys' sample metrics. What differs:

- Split: a fixed permutation (seed :data:`SPLIT_SEED`) holds out a fifth of the points
  (:data:`HELDOUT_FRACTION`); the families train on the rest.
- Scale: the points are standardised per dimension by the training split's mean and standard
  deviation, so every family's process (priors of unit scale) fits them; samples and metrics
  are in those units.
- Reference and floor: the held-out points in two halves. Each cell's samples are compared
  with the first half, cut to its size (at most ``--samples``), and the noise floor is the
  second half scored against the first as if it were a sample: equal sizes on both sides.
- No likelihood: the excess NLL needs the data's entropy and the mode metrics its mixture,
  which a file does not give; those columns stay empty and ``nll_status`` says why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import warnings
from pathlib import Path

import numpy as np

from zoo.bench.judge import evaluation
from zoo.bench.plan.profiles import Config

__all__ = ["MIN_POINTS", "Points", "read", *evaluation.KIND_API]

SUFFIXES = (".npy", ".npz", ".csv")
MIN_POINTS = 100  # a fifth held out: two halves of at least 10 points for the floor
HELDOUT_FRACTION = 0.2
SPLIT_SEED = 1006
#: the toys' metrics that need the true distribution (its density, entropy or modes)
NEEDS_DISTRIBUTION = (
    "excess_nll", "excess_nll_se", "nll_kl", "nll_kl_se", "high_quality", "modes_covered",
    "mode_kl", "spread",
)  # fmt: skip
METRICS = {k: v for k, v in evaluation.METRICS.items() if k not in NEEDS_DISTRIBUTION}
QUICK_METRICS = tuple(m for m in evaluation.QUICK_METRICS if m in METRICS)
HEADLINE = evaluation.HEADLINE
NO_LIKELIHOOD = "none: the data's density and entropy are unknown (user points)"


def _array(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            arrays = list(f.values())
        if len(arrays) != 1:
            raise ValueError(f"expected one array in the .npz file, got {len(arrays)}")
        return arrays[0]
    with open(path) as f:  # .csv: numbers separated by commas, maybe under a header row
        first = f.readline()
    header = any(c.isalpha() and c not in "eE" for c in first) or "nan" in first.lower()
    with warnings.catch_warnings():  # an empty file: the count check below says so, in one line
        warnings.simplefilter("ignore", UserWarning)
        return np.loadtxt(path, delimiter=",", skiprows=int(header), ndmin=2)


def read(path: str | Path) -> np.ndarray:
    """The ``N x d`` points of a ``.npy``, ``.npz`` or ``.csv`` file as float64; ``ValueError``
    saying what was expected (the suffix, a readable 2-D array of finite numbers, at least
    :data:`MIN_POINTS` points)."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ValueError(
            f"expected a {', '.join(SUFFIXES)} file of N x d points, got {str(path)!r}"
        )
    if not path.is_file():
        raise ValueError(f"expected a file of N x d points, but {str(path)!r} does not exist")
    try:
        x = np.asarray(_array(path))
        x = x.astype(np.float64) if x.dtype.kind in "biuf" else x
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"cannot read N x d numbers from {str(path)!r}: {e}") from None
    if x.dtype != np.float64:
        raise ValueError(f"expected N x d numbers in {str(path)!r}, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(
            f"expected N x d points (a 2-D array) in {str(path)!r}, got shape {x.shape}"
        )
    bad = int(np.sum(~np.all(np.isfinite(x), axis=1)))
    if bad:
        raise ValueError(f"expected finite numbers, got NaN or inf in {bad} of {len(x)} points")
    if len(x) < MIN_POINTS:
        raise ValueError(f"expected at least {MIN_POINTS} points, got {len(x)}")
    with np.errstate(over="ignore", under="ignore"):
        sd = x.std(axis=0)
    if not np.all(np.isfinite(sd)) or np.any((sd == 0) & (np.ptp(x, axis=0) > 0)):
        largest = float(np.max(np.abs(x)))
        raise ValueError(
            f"expected points that float64 can standardise, got values up to {largest:.3g} "
            "whose variance overflows or underflows; rescale the file"
        )
    return x


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Points:
    """A user's points split and standardised (module docstring): ``train`` and ``heldout``
    (float32), and the ``mean`` and ``scale`` that mapped the file's points to them. Its repr
    (part of every cache key) names the file's stem and the SHA-256 of its points."""

    name: str
    sha256: str
    train: np.ndarray
    heldout: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    @property
    def event_shape(self) -> tuple[int, ...]:
        return self.train.shape[1:]

    def train_set(self, n: int) -> np.ndarray:
        """The training split (``n``: its size, :func:`num_train`)."""
        if n != len(self.train):
            raise ValueError(
                f"{self.name}: the training split has {len(self.train)} points, not {n}"
            )
        return self.train

    def __repr__(self) -> str:
        return f"Points({self.name!r}, sha256={self.sha256}, shape={self.train.shape[1:]})"


def split(x: np.ndarray, name: str) -> Points:
    """``x`` split into training and held-out points by a fixed permutation and standardised
    by the training split's mean and standard deviation (1 for a constant column)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    heldout = max(2, math.ceil(HELDOUT_FRACTION * len(x)))
    test, train = x[order[:heldout]], x[order[heldout:]]
    mean, sd = train.mean(axis=0), train.std(axis=0)
    scale = np.where(sd > 0, sd, 1.0)
    standard = lambda a: ((a - mean) / scale).astype(np.float32)
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes() + str(x.shape).encode()).hexdigest()
    return Points(name, digest, standard(train), standard(test), mean, scale)


def load(dataset: str, config: Config) -> Points:
    """The points of ``config.data``, whose stem is ``dataset``; ``ValueError`` for any other
    name (it is no dataset of the harness)."""
    if config.data is None or Path(config.data).stem != dataset:
        raise ValueError(f"unknown dataset {dataset!r}: neither built in nor a --data file's stem")
    return split(read(config.data), dataset)


preset = evaluation.preset


def num_train(data: Points) -> int:
    """Training points per run: the whole training split."""
    return len(data.train)


def _halves(data: Points, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The two halves of the held-out points, each cut to at most ``config.num_samples``."""
    half = min(len(data.heldout) // 2, config.num_samples)
    return data.heldout[:half], data.heldout[-half:]


def reference(data: Points, config: Config) -> np.ndarray:
    """The first half of the held-out points: what every cell is compared with."""
    return _halves(data, config)[0]


def likelihood_settings(config: Config) -> dict:
    """No likelihood, so nothing it depends on."""
    return {}


def settings(config: Config) -> dict:
    """Everything a cell's scores depend on besides its samples and the data (the toys'
    sample-metric settings and the split)."""
    toys = evaluation.settings(config)
    sample_only = {k: v for k, v in toys.items() if k not in evaluation.likelihood_settings(config)}
    return {**sample_only, "split": (HELDOUT_FRACTION, SPLIT_SEED)}


def quick_settings(config: Config) -> dict:
    """Everything :func:`quick_quality`'s scores depend on besides the samples and the data."""
    return {**evaluation.quick_settings(config), "split": (HELDOUT_FRACTION, SPLIT_SEED)}


def describe(config: Config) -> str:
    """How the numbers on user points were obtained, for ``results.md`` and ``summary.json``."""
    return (
        f"User points (--data {config.data}): {1 - HELDOUT_FRACTION:.0%} train the models and "
        f"{HELDOUT_FRACTION:.0%} are held out (fixed permutation, seed {SPLIT_SEED}), all "
        "standardised per dimension by the training split's mean and sd (metrics in those "
        "units). Each cell's samples, cut to the size of the reference, are compared with the "
        "first half of the held-out points by the toys' sample metrics; the noise floor is the "
        "second half against the first. No excess NLL or mode metrics: the data's density, "
        "entropy and modes are unknown."
    )


def sample_quality(x: np.ndarray, data: Points, y: np.ndarray, config: Config) -> dict[str, float]:
    """The toys' sample metrics of the first ``len(y)`` samples ``x`` against ``y``, and
    ``n``: how many samples they scored (the row's ``n``, at most ``--samples``)."""
    n = min(len(x), len(y))
    return {**evaluation.sample_quality(x[:n], data, y, config), "n": n}


def quick_quality(x: np.ndarray, data: Points, y: np.ndarray, config: Config) -> dict[str, float]:
    """The cheap metrics of :func:`sample_quality`, the same numbers it gives for ``x``."""
    return evaluation.quick_quality(x[: len(y)], data, y, config)


def noise_floor(data: Points, y: np.ndarray, config: Config) -> dict:
    """``samples``: one row, the second half of the held-out points scored against the first
    (``y``) as if it were a sample; ``note`` says how many points each half has."""
    second = _halves(data, config)[1]
    note = (
        f"Noise floor: two halves of the held-out points, {len(second)} each "
        f"({len(data.heldout)} held out of {len(data.train) + len(data.heldout)})."
    )
    return {"note": note, "samples": [evaluation.sample_quality(second, data, y, config)]}


def likelihood_fn(model, config: Config) -> None:
    """No likelihood on user points (module docstring)."""
    return None


def likelihood(fn, params, data: Points, config: Config) -> dict:
    """The status that says why the likelihood columns are empty."""
    return {"nll_status": NO_LIKELIHOOD}
