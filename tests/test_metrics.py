"""Sample-quality metrics against closed forms, exact identities and brute-force references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, special, stats
from scipy.spatial.distance import cdist

from zoo import metrics

KEY = jax.random.PRNGKey(0)
GRID = np.array([[i, j] for i in (-2.0, 0.0, 2.0) for j in (-2.0, 0.0, 2.0)])  # 9 modes
WEIGHTS = np.arange(1.0, 10.0) / 45.0  # unequal, so the mode metrics must weigh modes


def _mean_and_se(values):
    values = np.asarray(values, np.float64)
    return values.mean(), values.std(ddof=1) / math.sqrt(len(values))


@pytest.fixture
def small_blocks(monkeypatch):
    """Force many blocks with a remainder, so the blockwise code paths are the ones tested."""
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", 7 * 97)


# --- brute-force references (dense numpy/scipy, float64) -----------------------------------------


def _u_statistic(x, y, kernel):
    n, m = len(x), len(y)
    kxx, kyy, kxy = kernel(cdist(x, x)), kernel(cdist(y, y)), kernel(cdist(x, y))
    xx = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return xx + yy - 2 * kxy.mean()


def _gaussian_kernels(r, bandwidths=metrics.DEFAULT_BANDWIDTHS):
    return sum(np.exp(-(r**2) / (2 * h**2)) for h in bandwidths)


def _precision_recall(real, fake, k):
    def radii(a):
        d = cdist(a, a)
        np.fill_diagonal(d, np.inf)
        return np.sort(d, axis=1)[:, k - 1]

    precision = np.mean((cdist(fake, real) <= radii(real)[None]).any(axis=1))
    recall = np.mean((cdist(real, fake) <= radii(fake)[None]).any(axis=1))
    return precision, recall


def test_kernel_statistics_match_brute_force(small_blocks):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(53, 3)), 0.7 * rng.normal(size=(41, 3)) + 0.3
    np.testing.assert_allclose(
        metrics.mmd2(x, y), _u_statistic(x, y, _gaussian_kernels), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        metrics.mmd2(x, y, bandwidths=(0.3,)),
        _u_statistic(x, y, lambda r: _gaussian_kernels(r, (0.3,))),
        rtol=1e-4,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        metrics.energy_distance(x, y, unbiased=True),
        _u_statistic(x, y, lambda r: -r),
        rtol=1e-4,
        atol=1e-6,
    )
    v_statistic = 2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean()
    np.testing.assert_allclose(metrics.energy_distance(x, y), v_statistic, rtol=1e-4, atol=1e-6)
    statistic, _ = metrics.mmd_test(x, y, KEY, num_permutations=20)
    np.testing.assert_allclose(statistic, metrics.mmd2(x, y), rtol=1e-4, atol=1e-6)


def test_precision_recall_matches_brute_force(small_blocks):
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(61, 2)), 1.3 * rng.normal(size=(47, 2)) + 0.4
    for k in (1, 4):
        np.testing.assert_allclose(
            metrics.precision_recall(real, fake, k), _precision_recall(real, fake, k), atol=1e-6
        )


# --- MMD -----------------------------------------------------------------------------------------


def _mmd2_gaussians(mu, s, bandwidths=metrics.DEFAULT_BANDWIDTHS):
    """MMD^2 between N(0, s^2 I) and N(mu, s^2 I): with Z ~ N(m, S I) in d dims,
    E exp(-|Z|^2 / 2h^2) = (h^2 / (h^2 + S))^(d/2) exp(-|m|^2 / (2 (h^2 + S))), S = 2 s^2."""
    d, mu2 = len(mu), float(np.sum(np.square(mu)))
    total = 0.0
    for h in bandwidths:
        c = (h**2 / (h**2 + 2 * s**2)) ** (d / 2)
        total += 2 * c * (1 - math.exp(-mu2 / (2 * (h**2 + 2 * s**2))))
    return total


@pytest.mark.parametrize("mu", [(0.0, 0.0), (0.3, -0.2)])
def test_mmd2_is_unbiased_against_the_gaussian_closed_form(mu):
    s, n, m, repeats = 0.5, 300, 200, 40
    values = []
    for r in range(repeats):
        kx, ky = jax.random.split(jax.random.fold_in(KEY, r))
        x = s * jax.random.normal(kx, (n, 2))
        y = s * jax.random.normal(ky, (m, 2)) + jnp.asarray(mu)
        values.append(float(metrics.mmd2(x, y)))
    mean, se = _mean_and_se(values)
    assert abs(mean - _mmd2_gaussians(mu, s)) < 4 * se


def test_mmd_test_rejects_a_shift_and_not_the_null():
    num_permutations = 100
    x = jax.random.normal(jax.random.PRNGKey(1), (100, 2))
    y = jax.random.normal(jax.random.PRNGKey(2), (80, 2)) + jnp.array([1.0, 0.0])
    _, p = metrics.mmd_test(x, y, KEY, num_permutations)
    assert float(p) == pytest.approx(1 / (num_permutations + 1))  # the smallest possible
    p_null = []
    for r in range(20):
        kx, ky, kp = jax.random.split(jax.random.fold_in(KEY, r), 3)
        x, y = jax.random.normal(kx, (100, 2)), jax.random.normal(ky, (80, 2))
        p_null.append(float(metrics.mmd_test(x, y, kp, num_permutations)[1]))
    # Valid p-values are uniform under the null: mean 1/2 (s.e. 0.065 over 20), few below 5%.
    assert abs(np.mean(p_null) - 0.5) < 0.2
    assert sum(p <= 0.05 for p in p_null) <= 4


# --- energy distance -----------------------------------------------------------------------------


def test_energy_distance_of_point_masses_is_twice_their_distance():
    x, y = np.full((5, 1), -1.0), np.full((7, 1), 2.5)
    np.testing.assert_allclose(metrics.energy_distance(x, y), 2 * 3.5, rtol=1e-6)
    x, y = np.tile([[1.0, 2.0]], (4, 1)), np.tile([[4.0, -2.0]], (3, 1))
    np.testing.assert_allclose(metrics.energy_distance(x, y), 2 * 5.0, rtol=1e-6)


def _abs_normal_mean(mu, sigma):
    """E|Z| for Z ~ N(mu, sigma^2) (folded normal)."""
    return sigma * math.sqrt(2 / math.pi) * math.exp(-(mu**2) / (2 * sigma**2)) + mu * (
        1 - 2 * special.ndtr(-mu / sigma)
    )


@pytest.mark.parametrize("delta", [0.0, 0.5])
@pytest.mark.parametrize("unbiased", [True, False])
def test_energy_distance_expectation_for_1d_gaussians(delta, unbiased):
    """N(0,1) vs N(delta,1): 2 E|X-Y| - E|X-X'| - E|Y-Y'| with X-Y ~ N(-delta, 2), X-X' ~ N(0, 2);
    zero iff delta = 0 (the unbiased estimate itself straddles 0 then). The V-statistic's mean
    is that plus E|X-X'| (1/n + 1/m)."""
    n, m = 300, 250
    within = _abs_normal_mean(0.0, math.sqrt(2))
    exact = 2 * _abs_normal_mean(delta, math.sqrt(2)) - 2 * within
    assert exact >= 0
    expected = exact if unbiased else exact + within * (1 / n + 1 / m)
    values = []
    for r in range(40):
        kx, ky = jax.random.split(jax.random.fold_in(KEY, r))
        x, y = jax.random.normal(kx, (n, 1)), jax.random.normal(ky, (m, 1)) + delta
        values.append(float(metrics.energy_distance(x, y, unbiased=unbiased)))
    mean, se = _mean_and_se(values)
    assert abs(mean - expected) < 4 * se
    if delta > 0 or not unbiased:
        assert min(values) > 0


# --- sliced and exact W2 -------------------------------------------------------------------------


def test_sliced_w2_of_a_translate_is_the_shift_over_root_d():
    """Projections of x and x + v differ by theta.v, so SW2^2 = mean over directions of
    (theta.v)^2, whose expectation is |v|^2 / d and whose variance per direction is
    |v|^4 * 2 (d - 1) / (d^2 (d + 2)) ((theta.v)^2 / |v|^2 ~ Beta(1/2, (d-1)/2))."""
    d, num_projections = 3, 4000
    v = jnp.array([1.0, -2.0, 0.5])
    x = jax.random.normal(KEY, (200, d))
    y = jax.random.permutation(jax.random.PRNGKey(3), x + v)
    sw2 = float(metrics.sliced_w2(x, y, jax.random.PRNGKey(4), num_projections)) ** 2
    v2 = float(jnp.sum(v**2))
    se = v2 * math.sqrt(2 * (d - 1) / (d**2 * (d + 2)) / num_projections)
    assert abs(sw2 - v2 / d) < 4 * se


def test_sliced_w2_is_exact_in_one_dimension():
    """Quantile functions of {0, 1} and {0, 1/2, 1} differ by 1/2 on (1/3, 2/3): W2^2 = 1/12."""
    np.testing.assert_allclose(
        metrics.sliced_w2([[0.0], [1.0]], [[0.0], [0.5], [1.0]], KEY), math.sqrt(1 / 12), rtol=1e-6
    )
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 1))
    for y in (rng.exponential(size=(37, 1)), rng.exponential(size=(50, 1))):  # n != m, n == m
        np.testing.assert_allclose(
            metrics.sliced_w2(x, y, KEY, num_projections=3), metrics.wasserstein2(x, y), rtol=1e-5
        )


def test_wasserstein2_of_a_shifted_copy_is_the_shift():
    rng = np.random.default_rng(3)
    x, v = rng.normal(size=(120, 2)), np.array([0.3, -1.1])
    y = rng.permutation(x + v)
    np.testing.assert_allclose(metrics.wasserstein2(x, y), np.linalg.norm(v), rtol=1e-6)


def test_wasserstein2_splits_into_means_and_centred_parts():
    """For any two measures, W2^2 = |mean_x - mean_y|^2 + W2^2 of the centred measures; and for
    n = m it equals the optimal assignment (scipy's linear_sum_assignment)."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(90, 2)), rng.gamma(2.0, size=(70, 2))
    centred = metrics.wasserstein2(x - x.mean(0), y - y.mean(0))
    np.testing.assert_allclose(
        metrics.wasserstein2(x, y) ** 2,
        np.sum((x.mean(0) - y.mean(0)) ** 2) + centred**2,
        rtol=1e-6,
    )
    y = rng.gamma(2.0, size=(90, 2))
    cost = cdist(x, y, "sqeuclidean")
    rows, cols = optimize.linear_sum_assignment(cost)
    np.testing.assert_allclose(
        metrics.wasserstein2(x, y), math.sqrt(cost[rows, cols].mean()), rtol=1e-6
    )


def test_wasserstein2_between_gaussians_is_the_mean_distance_within_the_noise_floor():
    """y = y0 + mu with y0 ~ N(0, I): |W2(x, y) - |mu|| <= W2(x, y0) by the triangle inequality,
    and W2(x, y0) is one draw of the noise floor."""
    n, mu = 300, np.array([1.0, 0.5])
    normal = lambda key, size: jax.random.normal(key, (size, 2))
    floor = metrics.noise_floor(
        lambda x, y, _: metrics.wasserstein2(x, y), normal, n, jax.random.PRNGKey(5)
    )
    x, y = normal(jax.random.PRNGKey(6), n), normal(jax.random.PRNGKey(7), n) + mu
    assert abs(metrics.wasserstein2(x, y) - np.linalg.norm(mu)) < floor.mean + 4 * floor.sd


def test_wasserstein2_raises_when_the_solver_stops_early():
    rng = np.random.default_rng(5)
    with pytest.raises(RuntimeError, match="num_iter_max"):
        metrics.wasserstein2(rng.normal(size=(200, 2)), rng.normal(size=(200, 2)), num_iter_max=5)


# --- noise floors --------------------------------------------------------------------------------


UNIFORM = lambda key, size: jax.random.uniform(key, (size, 2))


def test_sliced_w2_noise_floor_halves_when_n_quadruples():
    """A distance between empirical measures: O(1/sqrt(n)). Uniform data on the square: its
    projections have compact support, so the 1-D W2 rate is exactly 1/sqrt(n) (Gaussian
    tails would add a log log n factor)."""
    sliced = lambda x, y, key: metrics.sliced_w2(x, y, key, 200)
    small, large = (
        metrics.noise_floor(sliced, UNIFORM, size, jax.random.PRNGKey(size), repeats=30)
        for size in (150, 600)
    )
    assert 1.7 < small.mean / large.mean < 2.4


def test_mmd2_noise_floor_is_zero_with_spread_falling_like_one_over_n():
    """The unbiased MMD^2 of two samples of one distribution has mean 0 and, a degenerate
    U-statistic, a spread O(1/n): 4-fold smaller at 4n (exponent 1 +- 0.25 over 150 repeats)."""
    mmd = lambda x, y, key: metrics.mmd2(x, y)
    small, large = (
        metrics.noise_floor(mmd, UNIFORM, size, jax.random.PRNGKey(size), repeats=150)
        for size in (100, 400)
    )
    assert 0.75 < math.log(small.sd / large.sd) / math.log(4) < 1.25
    for floor in (small, large):
        assert abs(floor.mean) < 4 * floor.sd / math.sqrt(floor.repeats)


# --- mode metrics --------------------------------------------------------------------------------


def test_mode_metrics_of_samples_from_the_mixture():
    """Well-separated modes (8 sd apart): a sample is high quality iff it is within 3 sd of its own
    centre, so high_quality ~ P(chi2_2 < 9) = 1 - exp(-9/2) and the histogram is multinomial
    with the true weights: 2 N KL(p_hat || w) ~ chi2_{K-1}."""
    rng, n, scale = np.random.default_rng(6), 20_000, 0.25
    component = rng.choice(9, size=n, p=WEIGHTS)
    z = rng.normal(size=(n, 2))
    out = metrics.mode_metrics(GRID[component] + scale * z, GRID, scale, WEIGHTS)
    p = 1 - math.exp(-4.5)
    assert abs(float(out["high_quality"]) - p) < 4 * math.sqrt(p * (1 - p) / n)
    good = np.sum(z**2, axis=1) < 9
    np.testing.assert_array_equal(out["mode_counts"], np.bincount(component[good], minlength=9))
    assert int(out["modes_covered"]) == 9
    assert float(out["reverse_kl"]) < stats.chi2.ppf(0.999, 8) / (2 * good.sum())


def test_mode_metrics_of_a_collapsed_model_match_the_closed_form():
    rng = np.random.default_rng(7)
    counts = {0: 10, 4: 20, 8: 30}  # 3 of 9 modes
    points = []
    for mode, count in counts.items():
        angle = rng.uniform(0, 2 * np.pi, count)
        radius = 0.25 * rng.uniform(0, 2.9, count)  # inside 3 sd
        points.append(GRID[mode] + radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1))
    points.append(np.full((5, 2), 10.0))  # far from every mode: not high quality
    out = metrics.mode_metrics(np.concatenate(points), GRID, 0.25, WEIGHTS * 7.0)  # unnormalised
    p_hat = np.array([10, 20, 30]) / 60
    w = WEIGHTS[[0, 4, 8]]
    np.testing.assert_allclose(out["high_quality"], 60 / 65, rtol=1e-6)
    assert int(out["modes_covered"]) == 3
    np.testing.assert_allclose(out["reverse_kl"], np.sum(p_hat * np.log(p_hat / w)), rtol=1e-5)
    no_good = metrics.mode_metrics(np.full((3, 2), 10.0), GRID, 0.25, WEIGHTS)
    assert int(no_good["modes_covered"]) == 0 and float(no_good["reverse_kl"]) == np.inf


def test_spread_is_the_rms_offset_in_each_modes_sds():
    """Samples at c times each mode's sd from its centre have spread c: 1 for the mixture, so
    a sampler that narrows (a posterior mean) or widens every mode reads as such. With
    d = 2 the squared offset of a true sample is chi2_2, of mean 2 and variance 4."""
    rng, n, far = np.random.default_rng(8), 20_000, 5 * GRID  # modes 40 sd apart
    component, z = rng.choice(9, size=n, p=WEIGHTS), rng.normal(size=(n, 2))
    for c in (0.5, 1.0, 2.0):
        out = metrics.mode_metrics(far[component] + c * 0.25 * z, far, 0.25, WEIGHTS)
        assert abs(float(out["spread"]) - c) < 4 * c * math.sqrt(4 / n) / (2 * 2), c
    exact = np.array([[0.5, 0.0], [0.0, 2.0]])  # offsets of 2 and 2 sd: spread sqrt(4 / 2)
    out = metrics.mode_metrics(exact, np.zeros((1, 2)), np.array([[0.25, 1.0]]), np.ones(1))
    np.testing.assert_allclose(out["spread"], math.sqrt(2.0), rtol=1e-6)


def test_mode_metrics_use_the_diagonal_mahalanobis_distance():
    means, scales = np.zeros((1, 2)), np.array([[0.2, 1.0]])
    x = np.array([[0.5, 0.0], [0.0, 2.5], [0.7, 0.0], [0.0, 3.2]])  # 2.5, 2.5, 3.5, 3.2 sd
    out = metrics.mode_metrics(x, means, scales, np.ones(1))
    np.testing.assert_allclose(out["high_quality"], 0.5)
    np.testing.assert_allclose(out["reverse_kl"], 0.0, atol=1e-7)


# --- precision and recall ------------------------------------------------------------------------


def test_precision_and_recall_separate_quality_from_coverage():
    n = 1000
    real = jax.random.normal(jax.random.PRNGKey(8), (n, 2))
    fake = jax.random.normal(jax.random.PRNGKey(9), (n, 2))
    precision, recall = metrics.precision_recall(real, fake)
    assert precision > 0.9 and recall > 0.9
    half = fake.at[:, 0].set(jnp.abs(fake[:, 0]))  # only the x1 > 0 half of the support
    precision, recall = metrics.precision_recall(real, half)
    assert precision > 0.9
    assert 0.4 < recall < 0.6


# --- evaluate, jit and bad input -----------------------------------------------------------------


def test_evaluate_collects_the_metrics_and_their_floors():
    normal = lambda key, size: jax.random.normal(key, (size, 2))
    x, y = normal(jax.random.PRNGKey(10), 150), normal(jax.random.PRNGKey(11), 120) + 0.3
    out = metrics.evaluate(x, y, KEY, exact_w2=True)
    assert set(out) == {"mmd2", "energy", "sliced_w2", "precision", "recall", "w2"}
    assert all(isinstance(value, float) for value in out.values())
    np.testing.assert_allclose(out["mmd2"], metrics.mmd2(x, y), rtol=1e-6)
    np.testing.assert_allclose(out["sliced_w2"], metrics.sliced_w2(x, y, KEY), rtol=1e-6)
    np.testing.assert_allclose(out["recall"], metrics.precision_recall(y, x)[1])
    np.testing.assert_allclose(out["w2"], metrics.wasserstein2(x, y), rtol=1e-6)
    floor = metrics.noise_floor(metrics.evaluate, normal, 150, KEY, m=120, repeats=3)
    assert set(floor.mean) == set(out) - {"w2"} and floor.repeats == 3
    assert floor.mean["sliced_w2"] < out["sliced_w2"]


def test_non_finite_samples_raise_or_give_nan():
    x, y = np.random.default_rng(8).normal(size=(2, 50, 2))
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"samples has 1 of 50 points with NaN.*row 3"):
        metrics.evaluate(x, y, KEY)
    out = metrics.evaluate(x, y, KEY, check_finite=False, exact_w2=True)
    assert len(out) == 6 and all(math.isnan(value) for value in out.values())
    assert math.isnan(float(metrics.mmd2(x, y, check_finite=False)))
    assert math.isnan(float(metrics.sliced_w2(x, y, KEY, check_finite=False)))


def test_metrics_run_under_jit():
    x = jax.random.normal(KEY, (64, 2))
    y = jax.random.normal(jax.random.PRNGKey(1), (48, 2))
    f = jax.jit(lambda x, y, key: (metrics.mmd2(x, y), metrics.sliced_w2(x, y, key)))
    np.testing.assert_allclose(f(x, y, KEY), (metrics.mmd2(x, y), metrics.sliced_w2(x, y, KEY)))
    g = jax.jit(lambda x: metrics.mode_metrics(x, GRID, 0.25, WEIGHTS)["high_quality"])
    np.testing.assert_allclose(g(x), metrics.mode_metrics(x, GRID, 0.25, WEIGHTS)["high_quality"])


GOOD = np.random.default_rng(9).normal(size=(10, 2))
PAIRWISE = {
    "mmd2": lambda x, y: metrics.mmd2(x, y),
    "mmd_test": lambda x, y: metrics.mmd_test(x, y, KEY, 5),
    "energy_distance": lambda x, y: metrics.energy_distance(x, y),
    "sliced_w2": lambda x, y: metrics.sliced_w2(x, y, KEY),
    "wasserstein2": lambda x, y: metrics.wasserstein2(x, y),
}


@pytest.mark.parametrize("name", list(PAIRWISE))
@pytest.mark.parametrize(
    "x, y, message",
    [
        (GOOD[:, :, None], GOOD, r"x must be a 2-D array .* got shape \(10, 2, 1\)"),
        (GOOD, GOOD[:, 0], r"y must be a 2-D array"),
        (
            GOOD,
            GOOD[:, :1],
            r"x and y must have the same dimension; got x \[10, 2\] and y \[10, 1\]",
        ),
        (GOOD[:1], GOOD, r"x must have at least 2 points \(rows\); got 1"),
        (GOOD, np.where(np.eye(10, 2) > 0, np.inf, GOOD), r"y has 2 of 10 points with NaN or inf"),
    ],
)
def test_bad_input_is_named(name, x, y, message):
    with pytest.raises(ValueError, match=message):
        PAIRWISE[name](x, y)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: metrics.precision_recall(GOOD, GOOD[:3]),
            r"fake must have more than k = 3 points",
        ),
        (lambda: metrics.precision_recall(GOOD, GOOD, k=0), r"k must be an integer >= 1"),
        (lambda: metrics.evaluate(GOOD, GOOD[:, :1], KEY), r"samples and reference must have"),
        (lambda: metrics.mmd2(GOOD, GOOD, bandwidths=(1.0, 0.0)), r"bandwidths must all be > 0"),
        (lambda: metrics.mmd_test(GOOD, GOOD, KEY, 0), r"num_permutations must be an integer >= 1"),
        # a bool is not a count, and 2**40 projections would be an allocation that cannot succeed
        (
            lambda: metrics.sliced_w2(GOOD, GOOD, KEY, True),
            r"num_projections must be an integer >= 1",
        ),
        (
            lambda: metrics.sliced_w2(GOOD, GOOD, KEY, 2**40),
            r"num_projections must be .* <= 2\*\*31",
        ),
        (lambda: metrics.mode_metrics(GOOD, GRID, np.ones(9), WEIGHTS), r"scales must broadcast"),
        (lambda: metrics.mode_metrics(GOOD, GRID, 0.25, WEIGHTS[:8]), r"weights must have shape"),
        (lambda: metrics.mode_metrics(GOOD, GRID, -1.0, WEIGHTS), r"scales must all be finite"),
        (lambda: metrics.mode_metrics(GOOD, GRID[:, :1], 0.25, WEIGHTS), r"x and means must"),
        (
            lambda: metrics.noise_floor(metrics.evaluate, None, 10, KEY, repeats=1),
            r"repeats must be an integer >= 2",
        ),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
