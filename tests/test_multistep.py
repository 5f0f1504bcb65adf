"""The multistep samplers and their time grids, on Gaussians whose probability-flow map is known.

For data N(mu, diag(s^2)) the marginal is N(alpha_t mu, alpha_t^2 s^2 + sigma_t^2) and the
probability-flow ODE moves each point along its standardised coordinate, so every point of an
exact trajectory, and every prediction along it, is known in closed form: a step's local error
and a sampler's global error are measured against them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoo import data, grids, metrics, multistep, sdes

MU, S = jnp.array([0.5, -1.0]), jnp.array([0.3, 0.8])
VP, VE = sdes.VP(0.1, 20.0), sdes.VE(0.01, 10.0)
DDPM_1000, NCSN_100 = sdes.ddpm_linear(1e-4, 0.02, 1000), sdes.ncsn_geometric(10.0, 0.01, 100)
PROCESSES = {"vp": VP, "ve": VE, "ddpm": DDPM_1000, "ncsn": NCSN_100}


def gaussian_score(sde):
    def score(x, t):
        alpha, var = jnp.exp(sde.log_alpha(t)), sde.variance(t)
        return -(x - alpha * MU) / (alpha**2 * S**2 + var)

    return score


def exact_point(sde, z, t):
    """The point at time t of the flow line with standardised coordinate z."""
    alpha = jnp.exp(sde.log_alpha(t))
    return alpha * MU + jnp.sqrt(alpha**2 * S**2 + sde.variance(t)) * z


def global_errors(make, sde, steps):
    """Max error at the last grid time over 16 flow lines, for each of ``steps``."""
    score, key = gaussian_score(sde), jax.random.PRNGKey(0)
    out = []
    for n in steps:
        sampler = make(n)
        x = sampler.sample(sde, score, key, (16, 2)).x
        x_T = sde.prior_sample(jax.random.split(key)[0], (16, 2))
        z = (x_T - jnp.exp(sde.log_alpha(sde.T)) * MU) / jnp.sqrt(
            jnp.exp(2 * sde.log_alpha(sde.T)) * S**2 + sde.variance(sde.T)
        )
        out.append(float(jnp.max(jnp.abs(x - exact_point(sde, z, sampler.times(sde)[-1])))))
    return np.asarray(out)


def slope(sizes, errors):
    """The fitted power of ``errors`` in ``sizes`` (negative against step counts)."""
    return np.polyfit(np.log(sizes), np.log(errors), 1)[0]


def local_error(sampler, sde, h, row):
    """The error of the table's step ``row`` from exact points and exact predictions, on a
    grid uniform in log-SNR with spacing ``h`` around the middle of the process."""
    lam0 = float(sde.log_snr(0.5 * (sde.T + sde.t_min)))
    lams = lam0 + h * np.arange(row + 2) - h * (row + 1)
    times = np.asarray(sde.time_at_log_snr(jnp.asarray(lams, jnp.float32)), np.float64)
    s = multistep.schedule(sde, times)
    table = sampler.table(s)
    z = jnp.array([[0.7, -1.3]])
    score = gaussian_score(sde)
    points = [exact_point(sde, z, t) for t in s.t]

    def q(x, t):
        eps = sde.eps_from_score(score(x, t), t)
        return sde.x0_from_eps(x, eps, t) if sampler.predicts == "x0" else eps

    history = [q(points[i], s.t[i]) for i in range(row, -1, -1)]
    history += [jnp.zeros_like(z)] * (multistep.HISTORY - len(history))
    x = table.a[row] * points[row] + sum(c * m for c, m in zip(table.c[row], history, strict=True))
    return float(jnp.max(jnp.abs(x - points[row + 1])))


# Within the float64 table and float32 points, steps of 0.4 down to 0.1 in log-SNR stay above
# rounding for every method below.
LOCAL_H = (0.4, 0.2, 0.1)


@pytest.mark.parametrize(
    "sampler, order",
    [
        (multistep.DPMSolverPP(8, order=1, lower_order_final=False), 1),
        (multistep.DPMSolverPP(8, order=2, lower_order_final=False), 2),
        (multistep.DPMSolverPP(8, order=3, lower_order_final=False), 3),
        (multistep.UniPC(8, order=1, corrector=False, lower_order_final=False), 1),
        (multistep.UniPC(8, order=2, corrector=False, lower_order_final=False), 2),
        (multistep.UniPC(8, order=3, corrector=False, lower_order_final=False), 3),
        (multistep.DPMSolverPPSDE(8, eta=0.0, lower_order_final=False), 2),
    ],
    ids=lambda v: repr(v) if isinstance(v, int) else type(v).__name__ + str(v.order),
)
def test_one_step_from_the_exact_history_has_local_error_of_order_p_plus_one(sampler, order):
    """On a grid uniform in log-SNR, a step of order p errs by O(h^(p+1))."""
    errors = [local_error(sampler, VP, h, row=order - 1) for h in LOCAL_H]
    assert abs(slope(LOCAL_H, errors) - (order + 1)) < 0.4, errors


def test_ipndm_is_adams_bashforth_of_order_four_on_a_uniform_noise_grid():
    """iPNDM's constant coefficients are those of Adams-Bashforth in sigma/alpha: with the
    exact history on a grid uniform in sigma (VE, alpha = 1) its fourth-order step errs by
    O(h^5). In float64 numpy: the flow line x(sigma) = mu + sqrt(s^2 + sigma^2) z and its
    noise prediction sigma (x - mu) / (s^2 + sigma^2) are closed forms."""
    sampler, sde, errors, spacings = multistep.IPNDM(8, order=4), VE, [], (0.1, 0.05, 0.025)
    mu, s2, z = np.asarray(MU, np.float64), np.asarray(S, np.float64) ** 2, np.array([0.7, -1.3])
    for d in spacings:
        sigma = 2.0 + d * np.arange(5)[::-1]  # decreasing, uniform
        times = (np.log(sigma) - np.log(sde.sigma_min)) / np.log(sde.sigma_max / sde.sigma_min)
        schedule = multistep.Schedule(times, np.ones(5), sigma, -np.log(sigma))
        table = sampler.table(schedule)
        points = [mu + np.sqrt(s2 + v**2) * z for v in sigma]
        eps = [v * (p - mu) / (s2 + v**2) for p, v in zip(points, sigma, strict=True)]
        x = table.a[3] * points[3] + sum(c * e for c, e in zip(table.c[3], eps[3::-1], strict=True))
        errors.append(float(np.max(np.abs(x - points[4]))))
    assert abs(slope(spacings, errors) - 5) < 0.4, errors


GLOBAL = {
    "dpm++1": (lambda n: multistep.DPMSolverPP(n, order=1), 1),
    "dpm++2m": (lambda n: multistep.DPMSolverPP(n, order=2), 2),
    "unipc1": (lambda n: multistep.UniPC(n, order=1), 2),
    "unipc2": (lambda n: multistep.UniPC(n, order=2), 3),
}


# DPM-Solver++(2M) on every process (each on its default grid), the others on one of each kind.
@pytest.mark.parametrize(
    "method, name",
    [
        *(("dpm++2m", p) for p in PROCESSES),
        *((m, p) for m in GLOBAL if m != "dpm++2m" for p in ("vp", "ncsn")),
    ],
)
def test_global_error_falls_at_the_declared_order(method, name):
    """Over the whole path (the discrete processes through their interpolated marginals),
    DDIM-like order 1, DPM-Solver++(2M) order 2, and UniPC's corrector one order above its
    predictor."""
    make, order = GLOBAL[method]
    steps = (20, 40, 80)
    errors = global_errors(make, PROCESSES[name], steps)
    assert abs(-slope(steps, errors) - order) < 0.4, errors
    assert make(10).convergence_order == order


@pytest.mark.parametrize(
    "sampler",
    [
        multistep.DPMSolverPP(7),
        multistep.DPMSolverPP(7, order=3, denoise=False),
        multistep.DPMSolverPPSDE(7),
        multistep.UniPC(7, order=3),
        multistep.UniPC(7, denoise=False),
        multistep.IPNDM(7, grid="time", end="zero"),
    ],
    ids=lambda s: type(s).__name__,
)
def test_nfe_is_steps_exactly(sampler):
    calls = []

    def score(x, t):
        jax.debug.callback(lambda: calls.append(1))
        return -x

    out = sampler.sample(VP, score, jax.random.PRNGKey(0), (3, 2))
    jax.block_until_ready(out.x)
    assert int(out.nfe) == len(calls) == 7


def test_error_on_the_mixture_falls_with_nfe_to_the_floor():
    """With the exact score of nine Gaussians, each default fast sampler is far from the data
    at 2 NFE, nearer at 4 and at the metric's noise floor by 16."""
    toy, sde, n = data.nine_gaussians(), DDPM_1000, 2000
    ref = toy.sample(jax.random.PRNGKey(1), (n,))
    distance = lambda x: float(metrics.sliced_w2(x, ref, jax.random.PRNGKey(2)))
    floor = distance(toy.sample(jax.random.PRNGKey(3), (n,)))
    for sampler_at in (multistep.DPMSolverPP, multistep.UniPC, multistep.IPNDM):
        dist = [
            distance(
                sampler_at(steps).sample(sde, lambda x, t: toy.score(x, t, sde), key, (n, 2)).x
            )
            for steps, key in zip(
                (2, 4, 16), jax.random.split(jax.random.PRNGKey(0), 3), strict=True
            )
        ]
        assert dist[0] > 2 * floor and dist[0] > dist[1] and dist[2] < 1.5 * floor, (
            sampler_at.__name__, dist, floor,
        )  # fmt: skip


def test_grids_are_uniform_in_their_variable_and_end_where_asked():
    n = 6
    t = np.asarray(grids.TimeGrid("time").times(VP, n))
    np.testing.assert_allclose(t, np.linspace(VP.T, VP.t_min, n), rtol=1e-6)
    t = np.asarray(grids.TimeGrid("time", end="zero").times(DDPM_1000, n))
    np.testing.assert_allclose(t, np.linspace(1.0, 0.0, n + 1)[:-1], rtol=1e-6)
    t = np.asarray(grids.TimeGrid("quadratic", end="zero").times(VP, n))
    np.testing.assert_allclose(np.sqrt(t), np.linspace(1.0, 0.0, n + 1)[:-1], rtol=1e-5)
    lam = np.asarray(VP.log_snr(grids.TimeGrid("log_snr").times(VP, n)))
    np.testing.assert_allclose(np.diff(lam), (lam[-1] - lam[0]) / (n - 1), rtol=1e-3)
    rho = 7.0
    sigma = np.exp(-np.asarray(VP.log_snr(grids.TimeGrid("karras", rho=rho).times(VP, n))))
    roots = sigma ** (1 / rho)
    np.testing.assert_allclose(np.diff(roots), (roots[-1] - roots[0]) / (n - 1), rtol=1e-3)
    with pytest.raises(ValueError, match="do not all lie above t_min = 0.001"):
        grids.TimeGrid("quadratic", end="zero").times(DDPM_1000, 200)  # (2/200)^2 < t_min


def test_bad_options_are_named_at_construction():
    cases = [
        (dict(steps=2.5), TypeError, "steps must be an integer"),
        (dict(steps=None), TypeError, "steps must be an integer"),
        (dict(steps=0), ValueError, "steps must be an integer >= 1"),
        (dict(steps=1, denoise=True), ValueError, "steps must be an integer >= 2"),
        (dict(grid="uniform"), ValueError, "grid must be one of time, log_snr, karras"),
        (dict(end="never"), ValueError, "end must be one of t_min, zero"),
        (dict(grid="log_snr", end="zero"), ValueError, "end='zero' is for the grids"),
        (dict(rho=0.0), ValueError, "rho must be a finite number > 0"),
        (dict(order=4), ValueError, "order must be 1, 2 or 3 for DPMSolverPP"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            multistep.DPMSolverPP(**kwargs)
    with pytest.raises(ValueError, match="order must be 1, 2 or 3 for UniPC"):
        multistep.UniPC(order=0)
    with pytest.raises(ValueError, match="variant must be 'bh1' or 'bh2'"):
        multistep.UniPC(variant="bh3")
    with pytest.raises(ValueError, match="order must be 1, 2, 3 or 4 for IPNDM"):
        multistep.IPNDM(order=5)
    with pytest.raises(ValueError, match="eta must lie in"):
        multistep.DPMSolverPPSDE(eta=1.5)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(steps=2.5), TypeError, "steps must be an integer >= 1, got 2.5"),
        (dict(steps=50, fine=40), ValueError, r"steps must lie in \[1, 40\] .* got 50"),
        (dict(steps=4, fine=1), ValueError, "fine must be an integer >= 2, got 1"),
        (dict(steps=4, samples=0), ValueError, "samples must be an integer >= 1, got 0"),
    ],
)
def test_gits_refuses_bad_counts_before_its_teacher_runs(kwargs, error, message):
    def score(x, t):
        raise AssertionError("the teacher ran")

    with pytest.raises(error, match=message):
        grids.optimised_grid(DDPM_1000, score, jax.random.PRNGKey(0), **kwargs)


def test_third_order_step_integrates_a_quadratic_prediction_exactly():
    """DPM-Solver++(3M) on a prediction quadratic in log-SNR, m = 1 + 2 l - 3 l^2, on uneven
    steps: its step equals the exact solution sigma_s int e^l m dl (the reference codes'
    half weight on the second difference misses it by half the quadratic term)."""
    lam = np.array([0.0, -0.7, -1.1])  # lambda_t, lambda_t', lambda_t'' (decreasing back)
    h = 0.9
    m = lambda x: 1 + 2 * x - 3 * x**2
    weights = multistep._dpmpp_weights(h, lam, 3)
    grid = np.linspace(lam[0], lam[0] + h, 200_001)
    values = np.exp(grid - (lam[0] + h)) * m(grid)
    exact = np.sum((values[1:] + values[:-1]) / 2 * np.diff(grid))  # alpha_s = sigma_s e^l_s
    np.testing.assert_allclose(weights @ m(lam), exact, rtol=1e-8)


def test_optimal_steps_is_the_cheapest_path():
    """The dynamic programme against every path of 3 steps through 8 fine steps."""
    import itertools

    cost = np.random.default_rng(0).uniform(size=(9, 9))
    path = grids.optimal_steps(cost, 3)
    total = lambda p: sum(cost[i, j] for i, j in itertools.pairwise(p))
    best = min(([0, *mid, 8] for mid in itertools.combinations(range(1, 8), 2)), key=total)
    assert path[0] == 0 and path[-1] == 8 and len(path) == 4
    assert total(path) == pytest.approx(total(best))


def test_a_fitted_grid_beats_the_default_on_fresh_draws():
    """GITS fitted to nine Gaussians' exact score brings DDIM's 4 steps nearer the exact ODE
    solution than the default grid does, on prior draws it was not fitted to (the default
    quadratic grid is one of the paths it chose from)."""
    toy, sde = data.nine_gaussians(), DDPM_1000
    score = lambda x, t: toy.score(x, t, sde)
    fitted = grids.optimised_grid(sde, score, jax.random.PRNGKey(0), 4, samples=200, fine=40)
    key = jax.random.PRNGKey(1)
    exact = multistep.UniPC(200, order=3).sample(sde, score, key, (500, 2)).x
    errors = []
    for grid in (None, fitted):
        x = multistep.DPMSolverPP(4, order=1, grid=grid).sample(sde, score, key, (500, 2)).x
        errors.append(float(jnp.sqrt(jnp.mean(jnp.sum((x - exact) ** 2, -1)))))
    assert errors[1] < 0.9 * errors[0], errors


def test_the_trajectory_holds_every_grid_point_and_ends_at_the_sample():
    sampler = multistep.UniPC(5, trajectory=True)
    out = sampler.sample(VP, gaussian_score(VP), jax.random.PRNGKey(0), (3, 2))
    assert out.trajectory.shape == (6, 3, 2)
    np.testing.assert_allclose(out.times, sampler.times(VP))
    prior = VP.prior_sample(jax.random.split(jax.random.PRNGKey(0))[0], (3, 2))
    np.testing.assert_allclose(out.trajectory[0], prior)
    np.testing.assert_allclose(out.trajectory[-1], out.x)
