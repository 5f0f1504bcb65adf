"""The forward processes against closed forms and against simulation of their own SDEs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoo import sdes

PROCESSES = {
    "vp": sdes.VP(0.1, 20.0),
    "subvp": sdes.SubVP(0.1, 20.0),
    "ve": sdes.VE(0.01, 10.0),
    "ddpm": sdes.ddpm_linear(1e-4, 0.02, 1000),
    "ncsn": sdes.ncsn_geometric(10.0, 0.01, 50),
    "flow": sdes.FlowPath(),
}


def _beta(sde, t):
    return sde.beta_min + (sde.beta_max - sde.beta_min) * t / sde.T


@pytest.mark.parametrize("t", [0.01, 0.3, 0.9])
def test_derived_coefficients_match_song_et_al(t):
    """f and g derived by autodiff from the marginal equal the SDEs of Song et al. 2021."""
    vp, subvp, ve = sdes.VP(0.1, 20.0), sdes.SubVP(0.1, 20.0), sdes.VE(0.01, 10.0)
    np.testing.assert_allclose(vp.drift_coefficient(t), -0.5 * _beta(vp, t), rtol=1e-5)
    np.testing.assert_allclose(vp.diffusion(t) ** 2, _beta(vp, t), rtol=1e-5)
    B = subvp.integrated_beta(t)
    np.testing.assert_allclose(subvp.drift_coefficient(t), -0.5 * _beta(subvp, t), rtol=1e-5)
    np.testing.assert_allclose(
        subvp.diffusion(t) ** 2, _beta(subvp, t) * (1 - np.exp(-2 * B)), rtol=1e-4
    )
    sigma = 0.01 * (10.0 / 0.01) ** t
    np.testing.assert_allclose(ve.drift_coefficient(t), 0.0, atol=1e-7)
    np.testing.assert_allclose(ve.diffusion(t), sigma * np.sqrt(2 * np.log(1000.0)), rtol=1e-5)


@pytest.mark.parametrize("name", list(PROCESSES))
def test_marginal_matches_simulation_of_the_forward_sde(name):
    """Euler-Maruyama on dx = f x dt + g dW from a point x0 has mean alpha_t x0 and std sigma_t."""
    sde = PROCESSES[name]
    x0, n, steps = 1.5, 20_000, 1000
    ts = np.linspace(sde.t_min, sde.T, steps + 1)
    if isinstance(sde, sdes.FlowPath):
        # f = -1/(1 - t) is -1000 at T: steps uniform in log(1 - t) keep f dt constant
        ts = 1.0 - np.geomspace(1.0 - sde.t_min, 1.0 - sde.T, steps + 1)
    key = jax.random.PRNGKey(0)
    # Start at t_min from the exact marginal there (the VE/NCSN processes start noised).
    a0, s0 = sde.marginal(ts[0])
    x = a0 * x0 + s0 * jax.random.normal(key, (n,))

    def step(x, inputs):
        i, t, dt = inputs
        noise = jax.random.normal(jax.random.fold_in(key, i), x.shape)
        return x + sde.drift(x, t) * dt + sde.diffusion(t) * jnp.sqrt(dt) * noise, x

    dts = np.diff(ts)
    x, _ = jax.lax.scan(step, x, (jnp.arange(steps), jnp.asarray(ts[:-1]), jnp.asarray(dts)))
    alpha, sigma = sde.marginal(sde.T)
    se = float(sigma) / np.sqrt(n)
    assert abs(float(x.mean()) - float(alpha) * x0) < 5 * se + 2e-3
    assert abs(float(x.std()) / float(sigma) - 1) < 0.03


def test_ddpm_schedule_converges_to_its_vp_limit():
    """betas linear in [b0/N, b1/N] over N steps -> VP(b0, b1): error O(1/N)."""
    t = jnp.linspace(0.05, 1.0, 20)
    vp = sdes.VP(0.1, 20.0)

    def error(n):
        ddpm = sdes.ddpm_linear(0.1 / n, 20.0 / n, n)
        return float(jnp.max(jnp.abs(ddpm.log_alpha(t) - vp.log_alpha(t))))

    e100, e1000 = error(100), error(1000)
    assert e1000 < 0.05  # ~ (sum beta_i^2 / 2 + the half-step offset of the grid) / 2
    assert 5 < e100 / e1000 < 20  # first order in 1/N


def test_ddpm_levels_are_the_cumulative_products():
    betas = np.linspace(1e-3, 0.2, 100)
    ddpm = sdes.DDPMSchedule(tuple(betas))
    alpha_bar = np.cumprod(1 - betas)
    alpha, sigma = ddpm.marginal(ddpm.level_times)
    np.testing.assert_allclose(alpha**2, alpha_bar, rtol=1e-4)
    np.testing.assert_allclose(sigma**2, 1 - alpha_bar, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "levels",
    [sdes.ddpm_linear(1e-3, 0.2, 100), sdes.ncsn_geometric(10.0, 0.01, 50)],
    ids=["ddpm", "ncsn"],
)
def test_levels_are_interpolated_linearly_without_a_loop(levels):
    # log alpha and log sigma are linear between neighbouring levels: a midpoint is the mean
    times = np.asarray(levels.level_times, np.float64)
    mid = jnp.asarray((times[:-1] + times[1:]) / 2, jnp.float32)
    log_var = lambda t: np.log(np.asarray(levels.variance(t), np.float64))
    ends = [np.asarray(levels.log_alpha(t)) for t in (times[:-1], times[1:])]
    np.testing.assert_allclose(levels.log_alpha(mid), (ends[0] + ends[1]) / 2, atol=1e-6)
    if isinstance(levels, sdes.NCSNSchedule):
        np.testing.assert_allclose(
            log_var(mid), (log_var(times[:-1]) + log_var(times[1:])) / 2, rtol=1e-5
        )
    # No search loop: XLA's GPU compiler failed on jnp.interp's searchsorted inside a scan.
    hlo = jax.jit(levels.variance).lower(jnp.float32(0.5)).as_text(dialect="hlo")
    assert " while(" not in hlo


def test_geometric_ncsn_levels_are_the_ve_sde():
    ncsn, ve = sdes.ncsn_geometric(10.0, 0.01, 50), sdes.VE(0.01, 10.0, t_min=0.0)
    t = jnp.linspace(0.0, 1.0, 37)
    np.testing.assert_allclose(ncsn.marginal(t)[1], ve.marginal(t)[1], rtol=1e-4)
    np.testing.assert_allclose(ncsn.marginal(ncsn.level_times)[1], ncsn.sigmas[::-1], rtol=1e-5)
    # the SDE too, at every level and at both ends, where the samplers start and stop (the
    # diffusion there was once 1/sqrt(2) of VE's: a clip's derivative at its bounds)
    t = jnp.concatenate([t, jnp.asarray(ncsn.level_times)])
    np.testing.assert_allclose(ncsn.diffusion(t), ve.diffusion(t), rtol=1e-4)
    x, score = jnp.ones((t.size, 2)), -jnp.ones((t.size, 2))
    flow = jax.vmap(ncsn.probability_flow)(x, t, score)
    np.testing.assert_allclose(flow, jax.vmap(ve.probability_flow)(x, t, score), rtol=1e-4)


def test_level_schedules_keep_their_end_segments_slope_at_the_ends():
    # DDPM's beta(t) = -N log(1 - beta_i) on (t_{i-1}, t_i] (Ho et al.'s chain as a VP SDE):
    # at t = T the last beta, and at the first level the second (the segment above it)
    ddpm = sdes.ddpm_linear(1e-3, 0.2, 100)
    betas, n = np.asarray(ddpm.betas, np.float64), len(ddpm.betas)
    beta = lambda t: float(ddpm.diffusion(jnp.float32(t)) ** 2)
    np.testing.assert_allclose(beta(ddpm.T), -n * np.log1p(-betas[-1]), rtol=1e-4)
    np.testing.assert_allclose(beta(ddpm.level_times[0]), -n * np.log1p(-betas[1]), rtol=1e-4)
    assert beta(ddpm.T + 0.5) == 0.0  # constant beyond the ends


@pytest.mark.parametrize("name", list(PROCESSES))
def test_transitions_compose(name):
    """q(x_t|x_s) composed with q(x_s|x_0) is q(x_t|x_0)."""
    sde = PROCESSES[name]
    s, u, t = 0.2, 0.5, 0.8
    a_ts, s_ts = sde.transition(s, t)
    a_tu, s_tu = sde.transition(u, t)
    a_us, s_us = sde.transition(s, u)
    np.testing.assert_allclose(a_ts, a_tu * a_us, rtol=1e-5)
    np.testing.assert_allclose(s_ts**2, a_tu**2 * s_us**2 + s_tu**2, rtol=1e-4)
    (_, sig_t), (_, sig_s) = sde.marginal(t), sde.marginal(s)
    np.testing.assert_allclose(sig_t**2, a_ts**2 * sig_s**2 + s_ts**2, rtol=1e-4)


def test_conversions_round_trip():
    sde = sdes.VP()
    x, eps, t = jnp.array([0.3, -1.2]), jnp.array([0.5, 2.0]), 0.4
    np.testing.assert_allclose(sde.eps_from_score(sde.score_from_eps(eps, t), t), eps, rtol=1e-5)
    x0 = sde.x0_from_eps(x, eps, t)
    np.testing.assert_allclose(sde.eps_from_x0(x, x0, t), eps, rtol=1e-4)


def test_prior_and_grids():
    assert sdes.VP().prior_std == pytest.approx(1.0, abs=1e-6)
    assert sdes.VE(0.01, 10.0).prior_std == pytest.approx(np.sqrt(101.0), rel=1e-5)
    x = jnp.array([0.5, -1.0, 2.0])
    expected = -0.5 * float(jnp.sum(x**2)) - 1.5 * np.log(2 * np.pi)
    assert float(sdes.VP().prior_logp(x)) == pytest.approx(expected, rel=1e-5)
    ddpm = sdes.ddpm_linear(num_steps=200)
    np.testing.assert_allclose(ddpm.grid(None), ddpm.level_times[::-1])
    coarse = np.asarray(ddpm.grid(10))
    assert len(coarse) == 10 and np.all(np.isin(coarse, ddpm.level_times))
    grid = sdes.VP().grid(11)
    assert grid[0] == pytest.approx(1.0) and grid[-1] == pytest.approx(1e-3)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: sdes.VP(beta_min=20.0, beta_max=0.1), "beta_min must be < beta_max"),
        (lambda: sdes.SubVP(beta_min=1.0, beta_max=1.0), "beta_min must be < beta_max"),
        (lambda: sdes.VE(sigma_min=0.0), "sigma_min must be > 0"),
        (lambda: sdes.VE(sigma_min=-1.0), "sigma_min must be > 0"),
        (lambda: sdes.ncsn_geometric(1.0, 0.0, 10), "sigma_min must be > 0"),
        (lambda: sdes.ddpm_linear(0.02, 1e-4, 10), "beta_start"),
        (lambda: sdes.DDPMSchedule((0.5, 1.5)), "betas must lie in"),
        (lambda: sdes.VP().marginal(1.5), r"t must lie in \[t_min, T\]"),
        (lambda: sdes.VP().marginal(0.0), r"t must lie in \[t_min, T\]"),
        (lambda: sdes.VP().marginal(jnp.nan), r"t must lie in \[t_min, T\]"),
        (lambda: sdes.VP().grid(None), "steps must be an integer >= 2"),
        (lambda: sdes.ddpm_linear(num_steps=10).grid(11), r"steps must lie in \[2, 10\]"),
    ],
)
def test_bad_input_is_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "sde",
    [
        sdes.VP(0.1, 20.0),
        sdes.VP(1.0, 5.0, T=2.0),
        sdes.SubVP(0.1, 20.0),
        sdes.SubVP(0.5, 12.0, t_min=1e-5),
        sdes.VE(0.01, 10.0),
        sdes.VE(0.002, 80.0, T=3.0),
    ],
    ids=repr,
)
def test_closed_form_time_at_log_snr_is_the_bisection(sde):
    """VP, sub-VP and VE invert lambda_t in closed form; the generic bisection of
    SDE.time_at_log_snr is the reference, past both ends of the range (clipped) too."""
    lam_tmin, lam_T = (float(sde.log_snr(jnp.float32(t))) for t in (sde.t_min, sde.T))
    lam = jnp.linspace(lam_T - 1.0, lam_tmin + 1.0, 401)
    closed = sde.time_at_log_snr(lam)
    bisected = sdes.SDE.time_at_log_snr(sde, lam)
    np.testing.assert_allclose(closed, bisected, rtol=1e-5, atol=1e-6 * sde.T)
    inside = (lam > lam_T) & (lam < lam_tmin)
    np.testing.assert_allclose(sde.log_snr(closed)[inside], lam[inside], atol=2e-4)
