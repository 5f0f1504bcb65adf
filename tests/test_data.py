"""Toy datasets against closed forms: moments, densities, diffused marginals and scores."""

import dataclasses
import functools
import math
import subprocess
import sys

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats

from zoo import data, sdes

N = 200_000  # samples for moment checks: standard errors ~0.3% of a std
Z = 5.0  # tolerance in standard errors (fixed seeds: deterministic, but not tuned)

MIXTURES = {
    "nine_gaussians": data.nine_gaussians(),
    "gaussians_25": data.gaussians_25(),
    "8gaussians": data.eight_gaussians(),
}
KEY = jax.random.PRNGKey(4)
PROCESSES = {
    "vp": sdes.VP(0.1, 20.0),
    "subvp": sdes.SubVP(0.1, 20.0),
    "ve": sdes.VE(0.01, 50.0),
}


@functools.cache
def _draws(name):
    """``N`` draws from a mixture, shared by the tests (sampling all components costs)."""
    return MIXTURES[name].sample(jax.random.PRNGKey(1), (N,))


def _mixture_moments(mixture):
    """Exact mean and covariance: E[x] = sum w mu, Cov = sum w (S + mu mu^T) - E[x] E[x]^T."""
    w, mu, s = (np.asarray(v, np.float64) for v in (mixture.weights, mixture.means, mixture.scales))
    mean = w @ mu
    second = np.einsum("k,ki,kj->ij", w, mu, mu) + np.diag(w @ s**2)
    return mean, second - np.outer(mean, mean)


def _assert_mean_close(values, expected):
    """The sample mean of ``values`` [n, ...] is within Z standard errors of ``expected``."""
    values = np.asarray(values, np.float64)
    stderr = values.std(axis=0) / math.sqrt(len(values))
    np.testing.assert_array_less(np.abs(values.mean(axis=0) - expected), Z * stderr + 1e-12)


def _assert_moments(x, mean, cov):
    x = np.asarray(x, np.float64)
    _assert_mean_close(x, mean)
    centred = x - mean
    _assert_mean_close(np.einsum("ni,nj->nij", centred, centred), cov)


# --- Gaussian mixtures -----------------------------------------------------------------------


def test_nine_gaussians_is_the_case_study_mixture():
    nine = data.nine_gaussians()
    weights = distrax.Uniform().sample(seed=jax.random.PRNGKey(23), sample_shape=(9,))
    np.testing.assert_allclose(nine.weights, weights / weights.sum(), rtol=1e-6)
    assert len(set(nine.weights)) == 9  # unequal: mode metrics must weigh modes
    grid = {(x, y) for x in (-2.0, 0.0, 2.0) for y in (-2.0, 0.0, 2.0)}
    assert set(nine.means) == grid
    np.testing.assert_array_equal(nine.scales, np.full((9, 2), 0.25))  # covariance I/16
    assert nine.name == "nine_gaussians" and nine.train_seed == 12345
    # The training set is the case study's: 10,000 draws with PRNGKey(12345).
    draw = jax.jit(lambda key: nine.distribution.sample(seed=key, sample_shape=(10_000,)))
    expected = draw(jax.random.PRNGKey(12345))
    np.testing.assert_allclose(nine.train_set(), expected, rtol=1e-6, atol=1e-6)


def test_reference_mixtures():
    g25 = data.gaussians_25()
    assert set(g25.means) == {(-4.0 + 2 * i, -4.0 + 2 * j) for i in range(5) for j in range(5)}
    np.testing.assert_allclose(g25.weights, 1 / 25)
    np.testing.assert_allclose(g25.scales, 0.05)
    eight = data.eight_gaussians()
    radii = np.linalg.norm(eight.means, axis=-1)
    np.testing.assert_allclose(radii, 4 / 1.414, rtol=1e-12)
    angles = np.sort(np.mod(np.arctan2(*np.asarray(eight.means).T[::-1]), 2 * np.pi))
    np.testing.assert_allclose(angles, np.arange(8) * np.pi / 4, atol=1e-12)
    np.testing.assert_allclose(eight.scales, 0.5 / 1.414)
    np.testing.assert_allclose(eight.weights, 1 / 8)


@pytest.mark.parametrize("name", list(MIXTURES))
def test_mixture_samples_have_the_exact_moments(name):
    mixture = MIXTURES[name]
    x = _draws(name)
    assert x.shape == (N, 2) and x.dtype == jnp.float32
    _assert_moments(x, *_mixture_moments(mixture))


@pytest.mark.parametrize("name", list(MIXTURES))
def test_mixture_log_prob_matches_scipy(name):
    mixture = MIXTURES[name]
    x = np.concatenate(
        [
            np.asarray(_draws(name)[:64]),
            np.random.default_rng(0).uniform(-6, 6, (64, 2)),
        ]
    )
    w, mu, s = (np.asarray(v) for v in (mixture.weights, mixture.means, mixture.scales))
    components = [
        scipy.stats.multivariate_normal(mu[k], np.diag(s[k] ** 2)).logpdf(x) for k in range(len(w))
    ]
    reference = scipy.special.logsumexp(np.log(w)[:, None] + np.stack(components), axis=0)
    np.testing.assert_allclose(mixture.log_prob(x), reference, rtol=1e-5, atol=1e-4)
    # One example or any batch shape.
    np.testing.assert_allclose(mixture.log_prob(x[0]), reference[0], rtol=1e-5)
    assert mixture.log_prob(x[:12].reshape(3, 4, 2)).shape == (3, 4)


@pytest.mark.parametrize("process", list(PROCESSES))
@pytest.mark.parametrize("t", [0.1, 0.5])
def test_diffused_mixture_matches_simulation(process, t):
    """x_t = alpha x_0 + sigma eps simulated from the data agrees with the diffused mixture."""
    sde, nine = PROCESSES[process], data.nine_gaussians()
    alpha, sigma = (float(v) for v in sde.marginal(t))
    diffused = nine.diffused(sde, t)
    np.testing.assert_allclose(diffused.means, alpha * np.asarray(nine.means), rtol=1e-6)
    np.testing.assert_allclose(
        diffused.scales, np.sqrt(alpha**2 * np.asarray(nine.scales) ** 2 + sigma**2), rtol=1e-6
    )
    assert diffused.weights == nine.weights

    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    x0 = _draws("nine_gaussians")
    xt = np.asarray(alpha * x0 + sigma * jax.random.normal(k1, (N, 2)), np.float64)
    _assert_moments(xt, *_mixture_moments(diffused))
    direct = np.asarray(diffused.sample(k2, (N,)))
    for axis in range(2):
        assert scipy.stats.ks_2samp(xt[:, axis], direct[:, axis]).pvalue > 1e-3


@jax.jit
def _autodiff_score(x, means, scales):
    """grad log p of the nine-Gaussians mixture with these means and scales, by autodiff."""
    mixture = data.GaussianMixture(data.nine_gaussians().weights, means, scales)
    return jax.vmap(jax.grad(mixture.log_prob))(x)


def _score_points(sde, t):
    """Points where the diffused mixture lives, a uniform spread, and two far away."""
    alpha, sigma = sde.marginal(t)
    near = alpha * _draws("nine_gaussians")[-32:] + sigma * jax.random.normal(KEY, (32, 2))
    spread = jax.random.uniform(KEY, (32, 2), minval=-4, maxval=4)
    return jnp.concatenate([near, spread, jnp.array([[100.0, -100.0], [1e3, 0.0]])])


@pytest.mark.parametrize("process", list(PROCESSES))
@pytest.mark.parametrize("t", [0.01, 0.5])
def test_oracle_score_equals_autodiff_of_the_diffused_density(process, t):
    sde, nine = PROCESSES[process], data.nine_gaussians()
    x = _score_points(sde, t)
    score = nine.score(x, t, sde)
    assert score.shape == x.shape and np.all(np.isfinite(score))
    diffused = nine.diffused(sde, t)
    autodiff = _autodiff_score(x[:64], np.asarray(diffused.means), np.asarray(diffused.scales))
    np.testing.assert_allclose(score[:64], autodiff, rtol=1e-4, atol=1e-4)
    # Far away, the components nearest in x (mean 2 alpha) dominate: s_x = (2 alpha - x)/var.
    alpha, sigma = sde.marginal(t)
    var = alpha**2 * 0.25**2 + sigma**2
    np.testing.assert_allclose(score[64:, 0], (2 * alpha - x[64:, 0]) / var, rtol=1e-3)


def test_oracle_score_under_jit_and_vmap():
    """A traced time, per-example times, and the oracle_score closure give the same score."""
    sde, nine, t = PROCESSES["vp"], data.nine_gaussians(), 0.3
    x = _score_points(sde, t)
    score = nine.score(x, t, sde)
    jitted = jax.jit(data.oracle_score(nine, sde))(x, jnp.float32(t))
    np.testing.assert_allclose(jitted, score, rtol=1e-5, atol=1e-5)
    per_example = jax.vmap(lambda xi, ti: nine.score(xi, ti, sde))(x, jnp.full(len(x), t))
    np.testing.assert_allclose(per_example, score, rtol=1e-5, atol=1e-5)
    batched_times = nine.score(x, jnp.full(len(x), t), sde)
    np.testing.assert_allclose(batched_times, score, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("process", list(PROCESSES))
def test_single_gaussian_score(process):
    sde = PROCESSES[process]
    mu, s = np.array([0.5, -1.0]), np.array([0.3, 0.7])
    gaussian = data.GaussianMixture((1.0,), (tuple(mu),), (tuple(s),))
    x = jax.random.normal(jax.random.PRNGKey(6), (16, 2)) * 3
    for t in (0.05, 0.5, 1.0):
        alpha, sigma = (float(v) for v in sde.marginal(t))
        expected = -(np.asarray(x) - alpha * mu) / (alpha**2 * s**2 + sigma**2)
        np.testing.assert_allclose(gaussian.score(x, t, sde), expected, rtol=1e-5, atol=1e-5)


def test_diffused_under_jit():
    nine, vp = data.nine_gaussians(), PROCESSES["vp"]
    x = _draws("nine_gaussians")[:8]
    jitted = jax.jit(lambda t: nine.diffused(vp, t).log_prob(x))(0.3)
    np.testing.assert_allclose(jitted, nine.diffused(vp, 0.3).log_prob(x), rtol=1e-6)


# --- FFJORD's sets ---------------------------------------------------------------------------


def test_checkerboard_is_uniform_on_eight_squares():
    board = data.checkerboard()
    n = N
    x = np.asarray(board.sample(jax.random.PRNGKey(8), (n,)), np.float64)
    np.testing.assert_allclose(board.log_prob(x), -math.log(32.0), rtol=1e-7)  # dark squares
    cells = np.floor(x / 2).astype(int)  # square indices in -2..1
    assert np.all(np.mod(cells.sum(axis=-1), 2) == 0)
    counts = np.bincount(4 * (cells[:, 0] + 2) + cells[:, 1] + 2, minlength=16)
    counts = counts[counts > 0]
    assert len(counts) == 8
    stderr = math.sqrt(n * (1 / 8) * (7 / 8))
    np.testing.assert_array_less(np.abs(counts - n / 8), Z * stderr)
    # Uniform inside a square: offsets within squares have mean 1 and variance 4/12.
    offset = x - 2 * cells
    _assert_mean_close(offset, [1.0, 1.0])
    _assert_mean_close((offset - 1.0) ** 2, [1 / 3, 1 / 3])
    light = np.array([[1.0, -1.0], [-3.0, 3.0], [5.0, 0.0]])
    assert np.all(np.isneginf(board.log_prob(light)))
    assert board.entropy() == pytest.approx(math.log(32.0)) and board.entropy_stderr == 0.0
    assert board.entropy_method.startswith("exact")


def _moons_arcs(x):
    """Moons lie within noise of the unit circles centred at (0, 0) and (1, 0.5) (before
    FFJORD's affine map), half on each arc."""
    u = (x - [-1.0, -0.2]) / 2
    gaps = np.abs(np.stack([np.linalg.norm(u, axis=1), np.linalg.norm(u - [1, 0.5], axis=1)]) - 1)
    assert np.quantile(gaps.min(axis=0), 0.99) < 4 * 0.1
    # The line through the arcs' centres' midpoint (1/2, 1/4) with slope 1/2 separates them.
    assert np.mean(u[:, 1] - 0.25 > 0.5 * (u[:, 0] - 0.5)) == pytest.approx(0.5, abs=0.01)


def _on_rings(radii, noise):
    def check(x):
        r = np.linalg.norm(x, axis=1)
        gaps = np.abs(r[:, None] - np.asarray(radii)[None])
        assert np.quantile(gaps.min(axis=1), 0.99) < 4 * noise
        fractions = np.bincount(gaps.argmin(axis=1), minlength=len(radii)) / len(r)
        np.testing.assert_allclose(fractions, 1 / len(radii), atol=0.01)

    return check


def _pinwheel_arms(x):
    """The radius is the radial feature 2 (1 + 0.3 z) (rotations keep norms): median 2."""
    assert np.median(np.linalg.norm(x, axis=1)) == pytest.approx(2.0, abs=0.01)


def _spirals_symmetric(x):
    """Half the points are the other arm negated."""
    assert np.mean(x[:, 0] > 0) == pytest.approx(0.5, abs=0.01)


def _swissroll_radii(x):
    """t cos t, t sin t with t in [1.5 pi, 4.5 pi], noise N(0, I), all / 5."""
    r = np.linalg.norm(x, axis=1)
    assert np.quantile(r, 0.001) > (1.5 * np.pi - 4) / 5
    assert np.quantile(r, 0.999) < (4.5 * np.pi + 4) / 5


def _two_spirals_mean_square_norm():
    """E|x|^2 of 2spirals: x = +-arm/3 + 0.1 N, arm = (-n cos n + j1, n sin n + j2),
    n = 3 pi sqrt(U) (density 2n/c^2 on [0, c]), j ~ U[0, 0.5]."""
    c = 3 * np.pi
    cross, _ = scipy.integrate.quad(lambda n: 2 * n**2 * (np.sin(n) - np.cos(n)) / c**2, 0, c)
    arm = c**2 / 2 + 2 * 0.25 * cross + 2 * (0.25 / 3)
    return arm / 9 + 2 * 0.1**2


# For each set: closed forms of E[x] and E|x|^2 from its generator, and a check of its shape.
FFJORD_CASES = {
    # Upper arc mean (0, 2/pi), lower (1, 1/2 - 2/pi); average (1/2, 1/4), then *2 + (-1, -0.2).
    "moons": ([0.0, 0.3], None, _moons_arcs),
    "rings": (
        [0.0, 0.0],
        9 * (1 + 0.75**2 + 0.5**2 + 0.25**2) / 4 + 2 * 0.08**2,
        _on_rings([0.75, 1.5, 2.25, 3.0], 0.08),
    ),
    # t uniform on [a, b] = [1.5 pi, 4.5 pi]: E t^2 = (a^2 + ab + b^2)/3; noise N(0, I); / 5.
    "swissroll": (
        None,
        ((1.5**2 + 1.5 * 4.5 + 4.5**2) * np.pi**2 / 3 + 2) / 25,
        _swissroll_radii,
    ),
    # Rotations keep |f|^2 = (1 + 0.3 z)^2 + (0.1 z')^2; five arms sum to zero.
    "pinwheel": ([0.0, 0.0], 4 * (1 + 0.3**2 + 0.1**2), _pinwheel_arms),
    "2spirals": ([0.0, 0.0], _two_spirals_mean_square_norm(), _spirals_symmetric),
    "circles": ([0.0, 0.0], 9 * ((1 + 0.5**2) / 2 + 2 * 0.08**2), _on_rings([1.5, 3.0], 0.24)),
    "checkerboard": ([0.0, 0.0], 2 * 16 / 3, None),  # uniform coordinates on [-4, 4)
}


@pytest.mark.parametrize("name", list(FFJORD_CASES))
def test_ffjord_sets_follow_their_generators(name):
    toy = data.get(name)
    x = toy.sample(jax.random.PRNGKey(9), (N,))
    assert x.shape == (N, 2) and x.dtype == jnp.float32
    assert np.all(np.isfinite(x))
    mean, mean_square_norm, check_shape = FFJORD_CASES[name]
    x = np.asarray(x, np.float64)
    if mean is not None:
        _assert_mean_close(x, mean)
    if mean_square_norm is not None:
        _assert_mean_close(np.sum(x**2, axis=-1), mean_square_norm)
    if check_shape is not None:
        check_shape(x)


# An FFJORD generator and a finite set. (Every call already runs under jit; the mixtures
# sample with distrax, which is built for vmap; compiling each vmapped sampler costs seconds.)
@pytest.mark.parametrize("name", ["2spirals", "two_circles"])
def test_sampling_is_pure_jax(name):
    """Draws trace under jit and vmap, with any sample shape."""
    toy = data.get(name)
    keys = jax.random.split(jax.random.PRNGKey(11), 2)
    x = jax.jit(jax.vmap(lambda k: toy.sample(k, (4, 3))))(keys)
    assert x.shape == (2, 4, 3, 2) and x.dtype == jnp.float32
    assert np.all(np.isfinite(x)) and not np.array_equal(x[0], x[1])


def test_sample_shapes_and_train_set():
    moons = data.moons()
    assert moons.sample(jax.random.PRNGKey(0)).shape == (2,)
    train = moons.train_set(100)
    assert train.shape == (100, 2)
    np.testing.assert_array_equal(train, moons.sample(jax.random.PRNGKey(moons.train_seed), 100))


# --- the intro notebook's points -------------------------------------------------------------


def test_two_circles():
    toy = data.two_circles()
    points = np.asarray(toy.points)
    assert points.shape == (20, 2)
    for centre, part in (((0.7, 0.7), points[:10]), ((-0.7, -0.7), points[10:])):
        offset = part - centre
        np.testing.assert_allclose(np.linalg.norm(offset, axis=1), 0.5, rtol=1e-12)
        angles = np.sort(np.mod(np.arctan2(offset[:, 1], offset[:, 0]), 2 * np.pi))
        np.testing.assert_allclose(np.diff(angles), 2 * np.pi / 10, rtol=1e-9)
    np.testing.assert_allclose(toy.train_set(20), points, rtol=1e-6)
    np.testing.assert_allclose(toy.train_set(50)[20:40], points, rtol=1e-6)
    x = np.asarray(toy.sample(jax.random.PRNGKey(12), (4000,)))
    distances = np.linalg.norm(x[:, None] - points[None].astype(np.float32), axis=-1)
    assert np.all(distances.min(axis=1) < 1e-6)
    counts = np.bincount(distances.argmin(axis=1), minlength=20)
    assert counts.min() > 0
    assert math.isnan(toy.entropy()) and toy.entropy_method.startswith("undefined")
    with pytest.raises(NotImplementedError, match="two_circles"):
        toy.log_prob(points)


# --- entropy ---------------------------------------------------------------------------------


def test_monte_carlo_entropy_of_one_gaussian():
    cov = np.array([0.3, 1.7]) ** 2
    gaussian = data.GaussianMixture((1.0,), ((1.0, -2.0),), ((0.3, 1.7),), name="one")
    exact = 0.5 * np.log(np.prod(2 * np.pi * np.e * cov))
    assert 0 < gaussian.entropy_stderr < 1e-3
    assert abs(gaussian.entropy() - exact) < 3 * gaussian.entropy_stderr
    assert gaussian.entropy_method.startswith("Monte Carlo, n=")


def test_entropy_is_estimated_once_per_dataset():
    """``entropy``, ``entropy_stderr`` and ``entropy_method`` of equal datasets share one
    estimate (they cost seconds each)."""
    calls = []

    @dataclasses.dataclass(frozen=True)
    class Counted(data.Toy):
        scale: float = 1.0

        def _sample(self, key, shape):
            return self.scale * jax.random.normal(key, (*shape, 2))

        def _estimate_entropy(self):
            calls.append(self)
            return data.EntropyEstimate(float(len(calls)), 0.5, "counted")

    toy = Counted(name="counted")
    assert (toy.entropy(), toy.entropy_stderr, toy.entropy_method) == (1.0, 0.5, "counted")
    assert Counted(name="counted").entropy() == 1.0 and len(calls) == 1
    assert Counted(scale=2.0, name="counted").entropy() == 2.0 and len(calls) == 2


def test_knn_entropy_of_a_standard_normal():
    """Tolerance 0.03 nats: about 4 standard errors at n = 50,000; the bias is far smaller."""
    x = jax.random.normal(jax.random.PRNGKey(13), (50_000, 2))
    estimate = data.knn_entropy(x)
    assert estimate.stderr < 0.01
    assert estimate.value == pytest.approx(math.log(2 * math.pi * math.e), abs=0.03)
    assert "Kozachenko-Leonenko" in estimate.method
    with pytest.raises(ValueError, match="repeated points"):
        data.knn_entropy(np.zeros((10, 2)))


def test_knn_entropy_of_ffjord_sets_is_reported():
    circles = data.circles()
    assert np.isfinite(circles.entropy())
    assert circles.entropy_method.startswith("Kozachenko-Leonenko k=1")
    assert "n=50000" in circles.entropy_method


# --- names and bad input ---------------------------------------------------------------------


def test_names():
    assert set(data.NAMES) == {
        "nine_gaussians",
        "gaussians_25",
        "8gaussians",
        "checkerboard",
        "moons",
        "rings",
        "swissroll",
        "pinwheel",
        "2spirals",
        "circles",
        "two_circles",
    }
    for name in data.NAMES:
        assert data.get(name).name == name
        assert data.get(name) is data.get(name)
    with pytest.raises(ValueError, match="valid names: nine_gaussians, gaussians_25"):
        data.get("swiss_roll")


def test_get_finds_the_digits_in_zoo_images():
    from zoo import images

    assert data.get("digits") is images.digits()
    with pytest.raises(ValueError, match="valid names: nine_gaussians.*two_circles, digits"):
        data.get("mnist")


def test_importing_data_does_not_load_distrax():
    """distrax (and its TensorFlow Probability) loads on the first use of a mixture only."""
    code = (
        "import sys, zoo.data\n"
        "assert 'distrax' not in sys.modules, 'loaded by import zoo.data'\n"
        "zoo.data.nine_gaussians()\n"
        "assert 'distrax' in sys.modules, 'not loaded by a mixture'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def test_bad_input():
    nine, vp = data.nine_gaussians(), PROCESSES["vp"]
    with pytest.raises(ValueError, match=r"x must have last dimension 2.*\(4, 3\)"):
        nine.log_prob(jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="x must have last dimension 2"):
        nine.score(jnp.zeros(3), 0.5, vp)
    for n in (-1, 0, 2.5):
        with pytest.raises(ValueError, match="n must be a positive int"):
            nine.train_set(n)
    with pytest.raises(ValueError, match="shape must be a tuple of non-negative ints"):
        nine.sample(jax.random.PRNGKey(0), (-1,))
    with pytest.raises(ValueError, match=r"t must lie in \[t_min, T\]"):
        nine.diffused(vp, 2.0)
    with pytest.raises(ValueError, match=r"means must have shape \[K, 2\] = \(2, 2\)"):
        data.GaussianMixture((0.5, 0.5), ((0.0, 0.0),), ((1.0, 1.0), (1.0, 1.0)))
    with pytest.raises(ValueError, match="scales must be positive"):
        data.GaussianMixture((1.0,), ((0.0, 0.0),), ((1.0, 0.0),))
    with pytest.raises(NotImplementedError, match="moons: no closed-form density"):
        data.moons().log_prob(jnp.zeros(2))
    with pytest.raises(NotImplementedError, match="checkerboard: no closed-form diffused score"):
        data.checkerboard().score(jnp.zeros(2), 0.5, vp)
