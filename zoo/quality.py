r"""Is a model at the noise floor? One test for the notebooks and the benchmark.

A sample metric (a distance to a true reference sample, a mode share) is noisy even for a
perfect model: its **noise floor** is its value for independent true samples
(:func:`zoo.metrics.noise_floor` draws ``repeats`` of them). A model is *at the floor* when its
values could have come from the same distribution as the floor's values, which is the null
hypothesis of Student's two-sample t test with pooled variance: with model values
:math:`m_1..m_a` and floor values :math:`f_1..f_k`,

.. math::
    t = \frac{\bar m - \bar f}{s_p \sqrt{1/a + 1/k}}, \qquad
    s_p^2 = \frac{(a-1)s_m^2 + (k-1)s_f^2}{a + k - 2}, \qquad t \sim t_{a+k-2}.

Under the null the variances are equal, so the pooled test is exact for normal values; with a
single model value (``a = 1``) it is the prediction interval of the next floor value,
:math:`|m - \bar f| \le t_{1-\alpha/2,\,k-1}\, s_f \sqrt{1 + 1/k}`. The test is two-sided by
default: a model significantly *better* than true samples is as wrong as a worse one (a mode
share above the data's means mass pulled into the modes' centres; a distance below the floor
means the samples fit the reference more closely than fresh data does). At level
:math:`\alpha` a model that is at the floor is called worse or better with probability
:math:`\alpha` per metric: over many cells, expect that share of false calls.

Two models are compared with the same test (:func:`compare`): Welch's t test when both have
several values, the floor's spread as the noise of a single value otherwise, or a paired t
test on per-point values (e.g. the NLL of the same test points). A difference inside the noise
is a **tie**, and :func:`leaders` names every model tied with the best.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from zoo import metrics as metrics_lib

__all__ = [
    "ALPHA",
    "AT_FLOOR",
    "BETTER",
    "FAILED",
    "TIE",
    "WORSE",
    "Comparison",
    "FloorTest",
    "compare",
    "floor_test",
    "floor_tests",
    "grouped_floor_tests",
    "leaders",
    "quality_table",
]

ALPHA = 0.05
AT_FLOOR, WORSE, BETTER, TIE, FAILED = "at floor", "worse", "better", "tie", "failed"
_DIRECTIONS = ("lower", "higher")


class FloorTest(NamedTuple):
    """``verdict``: :data:`AT_FLOOR`, :data:`WORSE`, :data:`BETTER` (significantly better
    than true samples: too good) or :data:`FAILED` (a non-finite model value); ``p_value`` of
    the t test; ``mean`` of the model's values; ``floor_mean``, ``floor_sd``; ``ratio`` =
    mean / floor_mean."""

    verdict: str
    p_value: float
    mean: float
    floor_mean: float
    floor_sd: float
    ratio: float


class Comparison(NamedTuple):
    """``verdict`` of ``a`` against ``b``: :data:`BETTER`, :data:`WORSE` or :data:`TIE`;
    ``difference`` = mean(a) - mean(b); ``p_value`` of the test."""

    verdict: str
    p_value: float
    difference: float


def _values(x, name: str, minimum: int, finite: bool = True) -> np.ndarray:
    v = np.atleast_1d(np.asarray(x, np.float64))
    if v.ndim != 1 or v.size < minimum:
        raise ValueError(f"{name} must be a number or a 1-D array of >= {minimum}, got {v.shape}")
    if finite and not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {v.tolist()[:5]}")
    return v


def _floor_stats(floor) -> tuple[float, float, int]:
    """(mean, sd, count) of floor values, or of a :class:`zoo.metrics.NoiseFloor` of a scalar
    metric (its mean, sd and repeats are all the test needs)."""
    if all(hasattr(floor, name) for name in ("mean", "sd", "repeats")) and not isinstance(
        floor, np.ndarray
    ):
        mean, sd, k = float(floor.mean), float(floor.sd), int(floor.repeats)
        if k < 2 or not (math.isfinite(mean) and math.isfinite(sd)):
            raise ValueError(f"floor_values must have >= 2 finite repeats, got {floor}")
        return mean, sd, k
    f = _values(floor, "floor_values", 2)
    return float(f.mean()), float(f.std(ddof=1)), f.size


def _check(better: str, alpha: float) -> None:
    if better not in _DIRECTIONS:
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def _t_test(diff: float, se: float, df: float, two_sided: bool, sign: float) -> float:
    """p-value of ``diff`` with standard error ``se``; one-sided against the worse side."""
    if se == 0.0:  # no spread at all: any difference is certain, none is a tie
        return 1.0 if diff == 0.0 or (not two_sided and sign * diff < 0) else 0.0
    t = diff / se
    if two_sided:
        return float(2.0 * stats.t.sf(abs(t), df))
    return float(stats.t.sf(sign * t, df))


def _verdict(p: float, diff: float, better: str, alpha: float, tie: str) -> str:
    if p >= alpha:
        return tie
    worse_side = diff > 0 if better == "lower" else diff < 0
    return WORSE if worse_side else BETTER


def floor_test(
    values,
    floor_values,
    *,
    better: str = "lower",
    alpha: float = ALPHA,
    two_sided: bool = True,
) -> FloorTest:
    """Whether a model's metric ``values`` (one value, or one per seed) sit at the noise floor
    given by ``floor_values`` (the metric for >= 2 independent true samples, or the
    :class:`zoo.metrics.NoiseFloor` of a scalar metric), with Student's
    pooled two-sample t test at level ``alpha`` (module docstring). ``better``: which way the
    metric improves (``"lower"`` for distances and KL, ``"higher"`` for shares). With
    ``two_sided=False`` the test is one-sided towards worse, and nothing is called better.
    """
    _check(better, alpha)
    f_mean, f_sd, k = _floor_stats(floor_values)
    m = _values(values, "values", 1, finite=False)
    if not np.all(np.isfinite(m)):
        return FloorTest(FAILED, math.nan, math.nan, f_mean, f_sd, math.nan)
    a = m.size
    pooled = ((a - 1) * (m.var(ddof=1) if a > 1 else 0.0) + (k - 1) * f_sd**2) / (a + k - 2)
    diff = float(m.mean() - f_mean)
    sign = 1.0 if better == "lower" else -1.0
    p = _t_test(diff, math.sqrt(pooled * (1 / a + 1 / k)), a + k - 2, two_sided, sign)
    ratio = float(m.mean() / f_mean) if f_mean != 0 else math.nan
    return FloorTest(
        _verdict(p, diff, better, alpha, AT_FLOOR), p, float(m.mean()), f_mean, f_sd, ratio
    )


def compare(
    a,
    b,
    *,
    better: str = "lower",
    floor_values=None,
    paired: bool = False,
    alpha: float = ALPHA,
) -> Comparison:
    """Is model ``a`` better, worse or tied with model ``b`` on a metric (two-sided, level
    ``alpha``)? ``a``, ``b``: their values. ``paired=True``: values on the same points
    (per-point NLL of one test set), a paired t test on ``a - b``. Otherwise with >= 2 values
    each, Welch's t test; with a single value on either side the noise of one value is the
    floor's spread, :math:`se = s_f \\sqrt{1/n_a + 1/n_b}` with ``k - 1`` degrees of freedom,
    so ``floor_values`` is then required.
    """
    _check(better, alpha)
    if paired:
        x, y = _values(a, "a", 2), _values(b, "b", 2)
        if x.shape != y.shape:
            raise ValueError(f"paired values must have one shape, got {x.shape} and {y.shape}")
        d = x - y
        diff, se, df = float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size)), d.size - 1
    else:
        x, y = _values(a, "a", 1), _values(b, "b", 1)
        diff = float(x.mean() - y.mean())
        if x.size > 1 and y.size > 1:
            vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
            se = math.sqrt(vx + vy)
            df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1)) if se else 1.0
        else:
            if floor_values is None:
                raise ValueError(
                    "floor_values is required when a or b has a single value: the floor's "
                    "spread is then the noise of one value"
                )
            _, f_sd, k = _floor_stats(floor_values)
            se = f_sd * math.sqrt(1 / x.size + 1 / y.size)
            df = k - 1
    p = _t_test(diff, se, df, True, 1.0)
    return Comparison(_verdict(p, diff, better, alpha, TIE), p, diff)


def leaders(
    values: Mapping[str, object],
    *,
    better: str = "lower",
    floor_values=None,
    paired: bool = False,
    alpha: float = ALPHA,
) -> tuple[str, list[str]]:
    """The model with the best mean in ``values`` (name -> values) and the list of every
    model tied with it by :func:`compare` (the best first). One name alone in the list means
    the best is significantly better than every other."""
    _check(better, alpha)
    if not values:
        raise ValueError("values must name at least one model")
    means = {name: float(np.mean(np.asarray(v, np.float64))) for name, v in values.items()}
    pick = min if better == "lower" else max
    best = pick(means, key=means.get)
    tied = [best] + [
        name
        for name in values
        if name != best
        and compare(
            values[name], values[best], better=better, floor_values=floor_values,
            paired=paired, alpha=alpha,
        ).verdict == TIE
    ]  # fmt: skip
    return best, tied


def floor_tests(
    values: Mapping[str, Mapping[str, object]],
    floor: Mapping[str, object],
    better: Mapping[str, str],
    *,
    alpha: float = ALPHA,
    two_sided: bool = True,
) -> pd.DataFrame:
    """:func:`floor_test` for every model and metric: ``values`` model -> metric -> values,
    ``floor`` metric -> floor values (or a :class:`zoo.metrics.NoiseFloor` of a dict-valued
    metric, e.g. ``noise_floor(evaluate, ...)``), ``better`` metric -> ``"lower"``/``"higher"`` (the
    metrics tested). One row per model and metric: ``model``, ``metric``, and the fields of
    :class:`FloorTest`."""
    if isinstance(floor, metrics_lib.NoiseFloor):
        floor = {
            m: metrics_lib.NoiseFloor(floor.mean[m], floor.sd[m], floor.repeats) for m in floor.mean
        }
    missing = [m for m in better if m not in floor]
    if missing:
        raise ValueError(f"floor has no values for the metrics {missing}")
    rows = []
    for model, by_metric in values.items():
        for metric, direction in better.items():
            if metric not in by_metric:
                raise ValueError(f"values[{model!r}] has no {metric!r}")
            test = floor_test(
                by_metric[metric], floor[metric], better=direction, alpha=alpha,
                two_sided=two_sided,
            )  # fmt: skip
            rows.append({"model": model, "metric": metric, **test._asdict()})
    return pd.DataFrame(rows)


def grouped_floor_tests(
    rows: pd.DataFrame,
    floors: pd.DataFrame,
    better: Mapping[str, str],
    *,
    by: tuple[str, ...] = ("dataset", "family", "sampler"),
    floor_by: str = "dataset",
    alpha: float = ALPHA,
    two_sided: bool = True,
) -> pd.DataFrame:
    """:func:`floor_test` of every cell of a benchmark table: ``rows`` has one row per seed
    (columns ``by`` and the metrics), ``floors`` one row per floor repeat (column ``floor_by``
    and the metrics), e.g. ``results.csv`` and ``noise_floor.csv`` of ``zoo-bench``.
    A cell's seeds are tested against the floor of its ``floor_by`` value. A metric missing
    from either table, or all NaN in the floor (no mode metrics off the mixtures), is skipped;
    NaN in a cell's values is :data:`FAILED`. One row per cell and metric: ``by``, ``metric``,
    ``seeds`` and the fields of :class:`FloorTest`."""
    for name, frame, columns in (("rows", rows, [*by, floor_by]), ("floors", floors, [floor_by])):
        missing = [c for c in columns if c not in frame]
        if missing:
            raise ValueError(f"{name} has no columns {missing}")
    out = []
    for cell, part in rows.groupby(list(by), sort=False):
        floor = floors[floors[floor_by] == part[floor_by].iloc[0]]
        for metric, direction in better.items():
            if metric not in part or metric not in floor or floor[metric].isna().all():
                continue
            test = floor_test(
                part[metric], floor[metric].dropna(), better=direction, alpha=alpha,
                two_sided=two_sided,
            )  # fmt: skip
            out.append(
                {
                    **dict(zip(by, cell, strict=True)),
                    "metric": metric,
                    "seeds": len(part),
                    **test._asdict(),
                }
            )
    return pd.DataFrame(out)


def quality_table(tests: pd.DataFrame, spec: str = ".3g") -> pd.DataFrame:
    """The table to show: the noise-floor row (mean +- sd) first, then each model's mean with
    its verdict beside it (from :func:`floor_tests`), e.g. ``0.132 (at floor)``."""
    metrics = list(dict.fromkeys(tests["metric"]))
    floor = tests.drop_duplicates("metric").set_index("metric")
    rows = {
        "noise floor": {
            m: f"{floor.floor_mean[m]:{spec}} ± {floor.floor_sd[m]:{spec}}" for m in metrics
        }
    }
    for model, part in tests.groupby("model", sort=False):
        part = part.set_index("metric")
        rows[model] = {m: f"{part['mean'][m]:{spec}} ({part.verdict[m]})" for m in metrics}
    return pd.DataFrame.from_dict(rows, orient="index")[metrics]
