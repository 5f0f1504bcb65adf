"""The floor test, model comparisons and the quality table, on inputs whose answer is known."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm
from scipy import stats

from zoo import likelihood, metrics, quality, sdes

K = 10  # floor repeats
TRIALS = 4000


def _binomial_band(rate: float, trials: int = TRIALS) -> tuple[float, float]:
    """The share of ``trials`` Bernoulli(rate) calls within 4 standard errors."""
    half = 4 * np.sqrt(rate * (1 - rate) / trials)
    return rate - half, rate + half


@pytest.mark.parametrize("a", [1, 3])
def test_values_from_the_floor_distribution_are_at_the_floor_at_rate_one_minus_alpha(a):
    rng = np.random.default_rng(0)
    floors = rng.normal(0.13, 0.04, (TRIALS, K))
    models = rng.normal(0.13, 0.04, (TRIALS, a))
    verdicts = [quality.floor_test(m, f).verdict for m, f in zip(models, floors, strict=True)]
    calls = np.mean([v != quality.AT_FLOOR for v in verdicts])
    low, high = _binomial_band(quality.ALPHA)
    assert low < calls < high
    # Two-sided: the false calls split evenly between worse and too good.
    worse, better = verdicts.count(quality.WORSE), verdicts.count(quality.BETTER)
    assert abs(worse - better) < 4 * np.sqrt(worse + better)


def test_one_sided_test_calls_worse_at_rate_alpha_and_never_better():
    rng = np.random.default_rng(1)
    floors, models = rng.normal(0, 1, (TRIALS, K)), rng.normal(0, 1, TRIALS)
    verdicts = [
        quality.floor_test(m, f, two_sided=False).verdict
        for m, f in zip(models, floors, strict=True)
    ]
    assert quality.BETTER not in verdicts
    low, high = _binomial_band(quality.ALPHA)
    assert low < verdicts.count(quality.WORSE) / TRIALS < high


def test_single_value_is_the_prediction_interval_of_the_next_floor_value():
    floor = np.random.default_rng(2).normal(0.0, 1.0, K)
    mean, sd = floor.mean(), floor.std(ddof=1)
    edge = stats.t.ppf(1 - quality.ALPHA / 2, K - 1) * sd * np.sqrt(1 + 1 / K)
    assert quality.floor_test(mean + 0.99 * edge, floor).verdict == quality.AT_FLOOR
    assert quality.floor_test(mean + 1.01 * edge, floor).verdict == quality.WORSE
    assert quality.floor_test(mean - 1.01 * edge, floor).verdict == quality.BETTER
    np.testing.assert_allclose(quality.floor_test(mean + edge, floor).p_value, quality.ALPHA)


def test_pooled_test_matches_scipy_student_t():
    rng = np.random.default_rng(3)
    model, floor = rng.normal(0.2, 0.05, 3), rng.normal(0.1, 0.05, K)
    test = quality.floor_test(model, floor)
    np.testing.assert_allclose(test.p_value, stats.ttest_ind(model, floor).pvalue, rtol=1e-10)
    np.testing.assert_allclose(test.ratio, model.mean() / floor.mean())
    # zoo.metrics.noise_floor's summary (mean, sd, repeats) is all the test needs.
    summary = metrics.NoiseFloor(floor.mean(), floor.std(ddof=1), K)
    np.testing.assert_allclose(quality.floor_test(model, summary).p_value, test.p_value)


@pytest.mark.parametrize(
    "shift, better, verdict",
    [
        (+1.0, "lower", quality.WORSE),  # a distance above the floor
        (-1.0, "lower", quality.BETTER),  # a distance below it: too good
        (-1.0, "higher", quality.WORSE),  # a mode share below the data's
        (+1.0, "higher", quality.BETTER),  # above it: mass pulled into the modes
    ],
)
def test_a_shifted_model_is_called_on_the_right_side(shift, better, verdict):
    floor = np.random.default_rng(4).normal(0.5, 0.01, K)
    assert quality.floor_test(0.5 + shift * 0.1, floor, better=better).verdict == verdict


def test_no_spread_means_any_difference_is_certain():
    floor = np.full(K, 9.0)  # every true sample covers the nine modes
    assert quality.floor_test(9.0, floor, better="higher").verdict == quality.AT_FLOOR
    assert quality.floor_test(8.0, floor, better="higher").verdict == quality.WORSE


def test_a_diverged_model_is_failed_not_at_the_floor():
    test = quality.floor_test([0.1, np.nan], np.linspace(0.09, 0.11, K))
    assert test.verdict == quality.FAILED and np.isnan(test.p_value)


def test_bad_input_is_refused_with_its_name():
    with pytest.raises(ValueError, match="better must be 'lower' or 'higher'"):
        quality.floor_test(1.0, [1.0, 2.0], better="up")
    with pytest.raises(ValueError, match="floor_values must be .* >= 2"):
        quality.floor_test(1.0, [1.0])
    with pytest.raises(ValueError, match="floor_values must be finite"):
        quality.floor_test(1.0, [1.0, np.nan])
    with pytest.raises(ValueError, match="alpha must be in"):
        quality.floor_test(1.0, [1.0, 2.0], alpha=1.5)
    with pytest.raises(ValueError, match="floor_values is required"):
        quality.compare(1.0, 2.0)
    with pytest.raises(ValueError, match="one shape"):
        quality.compare([1.0, 2.0], [1.0, 2.0, 3.0], paired=True)


def test_paired_comparison_sees_a_small_shift_that_the_noise_of_the_points_hides():
    rng = np.random.default_rng(5)
    points = rng.normal(2.0, 1.0, 1000)  # per-point NLL of one test set, varying a lot
    a, b = points + 0.05 + rng.normal(0, 0.01, 1000), points
    assert quality.compare(a, b, paired=True).verdict == quality.WORSE
    assert quality.compare(a, b).verdict == quality.TIE  # unpaired: lost in the points' spread
    np.testing.assert_allclose(
        quality.compare(a, b, paired=True).p_value, stats.ttest_rel(a, b).pvalue
    )


def test_welch_comparison_matches_scipy():
    rng = np.random.default_rng(6)
    a, b = rng.normal(1.0, 0.1, 3), rng.normal(1.3, 0.3, 4)
    result = quality.compare(a, b, better="higher")
    np.testing.assert_allclose(result.p_value, stats.ttest_ind(a, b, equal_var=False).pvalue)


def test_leaders_calls_differences_inside_the_noise_ties():
    floor = np.random.default_rng(7).normal(0.1, 0.02, K)
    values = {"vp": 0.100, "ve": 0.105, "ddpm": 0.30}
    best, tied = quality.leaders(values, floor_values=floor)
    assert best == "vp" and tied == ["vp", "ve"]
    best, tied = quality.leaders(values, better="higher", floor_values=floor)
    assert best == "ddpm" and tied == ["ddpm"]


def test_quality_table_puts_the_floor_first_and_a_verdict_beside_every_value():
    rng = np.random.default_rng(8)
    floor = {"energy": rng.normal(0.006, 0.003, K), "high quality": rng.normal(0.988, 0.003, K)}
    values = {"good": {"energy": 0.006, "high quality": 0.988},
              "smeared": {"energy": 0.06, "high quality": 0.87}}  # fmt: skip
    tests = quality.floor_tests(values, floor, {"energy": "lower", "high quality": "higher"})
    assert set(tests.verdict[tests.model == "good"]) == {quality.AT_FLOOR}
    assert set(tests.verdict[tests.model == "smeared"]) == {quality.WORSE}
    table = quality.quality_table(tests)
    assert list(table.index) == ["noise floor", "good", "smeared"]
    assert table.loc["smeared", "high quality"] == "0.87 (worse)"
    assert "±" in table.loc["noise floor", "energy"]
    summary = metrics.NoiseFloor(
        {m: v.mean() for m, v in floor.items()}, {m: v.std(ddof=1) for m, v in floor.items()}, K
    )
    same = quality.floor_tests(values, summary, {"energy": "lower", "high quality": "higher"})
    np.testing.assert_allclose(same.p_value, tests.p_value)
    with pytest.raises(ValueError, match="floor has no values"):
        quality.floor_tests(values, floor, {"mmd2": "lower"})


SCALE = jnp.array([0.5, 2.0])


def _gaussian_score(sde, x, t):
    alpha, var = jnp.exp(sde.log_alpha(t)), sde.variance(t)
    return -x / (alpha**2 * SCALE**2 + var)


def test_likelihood_functions_give_the_exact_log_density_of_a_gaussian():
    sde = sdes.VP(0.1, 20.0, t_min=1e-5)
    # A stand-in for a trained model: its "parameters" scale the exact score.
    model = types.SimpleNamespace(sde=sde, score=lambda p, x, t: p * _gaussian_score(sde, x, t))
    x = SCALE * jax.random.normal(jax.random.PRNGKey(0), (8, 2))
    alpha, sigma = sde.marginal(sde.t_min)
    exact = jnp.sum(norm.logpdf(x, 0.0, jnp.sqrt(alpha**2 * SCALE**2 + sigma**2)), axis=-1)
    fn = likelihood.likelihood_fn(model)
    np.testing.assert_allclose(fn(1.0, x).log_prob, exact, atol=2e-3)
    assert np.max(np.abs(fn(0.5, x).log_prob - exact)) > 0.1  # the parameters are used
    oracle = likelihood.exact_likelihood_fn(sde, lambda y, t: _gaussian_score(sde, y, t))
    np.testing.assert_allclose(oracle(x).log_prob, exact, atol=2e-3)


def test_grouped_floor_tests_test_each_cell_against_its_own_datasets_floor():
    import pandas as pd

    rng = np.random.default_rng(9)
    floors = pd.DataFrame({"dataset": ["a"] * 5 + ["b"] * 5,
                           "energy": np.r_[rng.normal(0.01, 0.001, 5), rng.normal(1.0, 0.1, 5)],
                           "mode_kl": np.r_[rng.normal(0.01, 0.001, 5), [np.nan] * 5]})  # fmt: skip
    # The same values are at the floor of dataset b and far above dataset a's.
    rows = pd.DataFrame({
        "dataset": ["a"] * 3 + ["b"] * 3, "family": "vp", "sampler": "default",
        "energy": [1.0, 1.05, 0.95] * 2, "mode_kl": [0.01, 0.011, 0.009] * 2,
    })  # fmt: skip
    tests = quality.grouped_floor_tests(rows, floors, {"energy": "lower", "mode_kl": "lower"})
    energy = tests[tests.metric == "energy"].set_index("dataset").verdict
    assert energy["a"] == quality.WORSE and energy["b"] == quality.AT_FLOOR
    assert list(tests[tests.metric == "mode_kl"].dataset) == ["a"]  # no floor for b: skipped
    assert set(tests.seeds) == {3}
    with pytest.raises(ValueError, match="rows has no columns"):
        quality.grouped_floor_tests(rows.drop(columns="sampler"), floors, {"energy": "lower"})
