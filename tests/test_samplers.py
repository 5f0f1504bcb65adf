"""Every sampler, driven by the exact score of a known distribution, recovers it.

With the oracle score the only errors left are the sampler's, so each is judged against the
metric's noise floor (two independent true samples of the same size), and the deterministic
ones by their order of convergence to the exact probability-flow map of a Gaussian.
"""

import functools

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoo import data, metrics, multistep, samplers, sdes

N = 4000
NINE = data.nine_gaussians()
VP, VE = sdes.VP(0.1, 20.0), sdes.VE(0.01, 10.0)
DDPM_1000, NCSN_100 = sdes.ddpm_linear(1e-4, 0.02, 1000), sdes.ncsn_geometric(10.0, 0.01, 100)
FLOW = sdes.FlowPath()

CASES = {
    "vp/ancestral-200": (VP, samplers.Ancestral(steps=200)),
    "vp/ddim-100": (VP, samplers.DDIM(steps=100)),
    "vp/ddim-eta1-200": (VP, samplers.DDIM(steps=200, eta=1.0)),
    "vp/em-1000": (VP, samplers.EulerMaruyama(steps=1000)),
    "vp/pc-200": (VP, samplers.PredictorCorrector(samplers.EulerMaruyama(steps=200))),
    "vp/sde-1000": (VP, samplers.ReverseSDE(steps=1000)),
    "vp/ode-tsit5": (VP, samplers.ProbabilityFlow()),
    "vp/ode-heun-100": (VP, samplers.ProbabilityFlow(diffrax.Heun(), steps=100)),
    "subvp/ode-tsit5": (sdes.SubVP(0.1, 20.0), samplers.ProbabilityFlow()),
    "ve/em-1000": (VE, samplers.EulerMaruyama(steps=1000)),
    "ve/pc-ancestral-300": (VE, samplers.PredictorCorrector(samplers.Ancestral(steps=300))),
    "ddpm/ancestral": (DDPM_1000, samplers.Ancestral()),
    "ddpm/ddim-50": (DDPM_1000, samplers.DDIM(steps=50)),
    "ddpm/ode-tsit5": (DDPM_1000, samplers.ProbabilityFlow(rtol=1e-4, atol=1e-4)),
    "ncsn/langevin": (NCSN_100, samplers.AnnealedLangevin(steps_per_level=20, step_size=5e-5)),
    "ncsn/ancestral": (NCSN_100, samplers.Ancestral()),
    "vp/dpm-solver++-20": (VP, multistep.DPMSolverPP(steps=20)),
    "ve/edm-heun-10": (VE, samplers.EDMHeun(steps=10)),
    "ddpm/dpm-solver++-20": (DDPM_1000, multistep.DPMSolverPP(steps=20)),
    "ncsn/edm-heun-10": (NCSN_100, samplers.EDMHeun(steps=10)),
    "flow/euler-100": (FLOW, samplers.ProbabilityFlow(diffrax.Euler(), steps=101)),
    "flow/em-1000": (FLOW, samplers.EulerMaruyama(steps=1000)),
    "flow/unipc-20": (FLOW, multistep.UniPC(steps=20)),
}


def _quality(x, y, key):
    return metrics.sliced_w2(x, y, key), metrics.energy_distance(x, y)


@functools.cache
def noise_floor():
    """Sliced W2 and energy distance between independent true samples of size N: the bound
    for a sampler is the floor's mean plus 3 of its standard deviations (one draw of a perfect
    sampler lands there or below with probability ~0.99)."""
    floor = metrics.noise_floor(
        _quality, lambda key, n: NINE.sample(key, (n,)), N, jax.random.PRNGKey(100), repeats=8
    )
    return np.asarray(floor.mean) + 3 * np.asarray(floor.sd), np.asarray(floor.mean)


@pytest.mark.parametrize("case", list(CASES))
def test_sampler_with_oracle_score_recovers_nine_gaussians(case):
    sde, sampler = CASES[case]
    score = functools.partial(NINE.score, sde=sde)
    out = jax.jit(lambda key: sampler.sample(sde, score, key, (N, 2)))(jax.random.PRNGKey(1))
    reference = NINE.sample(jax.random.PRNGKey(2), (N,))
    quality = np.asarray(_quality(out.x, reference, jax.random.PRNGKey(7)))
    bound, _ = noise_floor()
    assert np.all(quality < bound), (quality, bound)
    assert int(out.nfe) > 0


def test_prior_samples_are_far_from_the_data():
    """The bound above is meaningful: samples from the prior fail it by a wide margin."""
    x = VP.prior_sample(jax.random.PRNGKey(1), (N, 2))
    quality = _quality(x, NINE.sample(jax.random.PRNGKey(2), (N,)), jax.random.PRNGKey(7))
    bound, _ = noise_floor()
    assert np.all(np.asarray(quality) > 5 * bound), (quality, bound)


def test_ddim_with_eta_one_is_ancestral_sampling():
    """Two independent formulas of the same posterior step agree path by path."""
    score = functools.partial(NINE.score, sde=VP)
    key = jax.random.PRNGKey(3)
    a = samplers.Ancestral(steps=50).sample(VP, score, key, (256, 2))
    b = samplers.DDIM(steps=50, eta=1.0).sample(VP, score, key, (256, 2))
    np.testing.assert_allclose(a.x, b.x, atol=2e-4)


def test_function_evaluation_counts():
    score = functools.partial(NINE.score, sde=VP)
    key, shape = jax.random.PRNGKey(0), (8, 2)
    ddpm = sdes.ddpm_linear(1e-4, 0.02, 100)
    ddpm_score = functools.partial(NINE.score, sde=ddpm)
    # Ho et al.: N network evaluations for N levels (the last is the denoising step).
    assert int(samplers.Ancestral().sample(ddpm, ddpm_score, key, shape).nfe) == 100
    assert int(samplers.DDIM(steps=10).sample(ddpm, ddpm_score, key, shape).nfe) == 10
    heun = samplers.ProbabilityFlow(diffrax.Heun(), steps=51).sample(VP, score, key, shape)
    assert int(heun.nfe) == 50 * 2 + 1
    # One evaluation per DPM-Solver++ step; Karras et al.'s 2N - 1 for EDM Heun on N times.
    assert int(multistep.DPMSolverPP(steps=10).sample(VP, score, key, shape).nfe) == 10
    assert int(samplers.EDMHeun(steps=10).sample(VP, score, key, shape).nfe) == 19
    pc = samplers.PredictorCorrector(samplers.EulerMaruyama(steps=11), corrector_steps=2)
    assert int(pc.sample(VP, score, key, shape).nfe) == 10 * 3 + 1
    langevin = samplers.AnnealedLangevin(steps_per_level=5)
    assert (
        int(langevin.sample(NCSN_100, functools.partial(NINE.score, sde=NCSN_100), key, shape).nfe)
        == 501
    )


@pytest.mark.parametrize(
    "solver, first, per_step",
    [
        (diffrax.Euler(), 0, 1),
        (diffrax.Heun(), 0, 2),
        (diffrax.Tsit5(), 1, 6),
        (diffrax.Dopri5(), 1, 6),
    ],
)
def test_function_evaluations_counts_the_score_calls_of_a_diffrax_solve(solver, first, per_step):
    """From the solver's tableau: s stages a step, or 1 + (s - 1) per step when the last stage
    is the next step's first (Tsit5, Dopri5: s = 7); checked against the calls made."""
    calls = []

    def score(x, t):
        jax.debug.callback(lambda: calls.append(1))
        return -x

    flow = samplers.ProbabilityFlow(solver, steps=11, denoise=False)
    out = flow.sample(VP, score, jax.random.PRNGKey(0), (4, 2))
    jax.block_until_ready(out.x)
    jax.effects_barrier()
    assert samplers.function_evaluations(solver, 10) == first + 10 * per_step
    assert len(calls) == int(out.nfe) == first + 10 * per_step


MU, S = jnp.array([1.0, -0.5]), jnp.array([0.5, 1.5])
# Grid sizes of the order fits: each doubling halves the step, inside the asymptotic range.
PF_STEPS, FAST_STEPS = [41, 81, 161], [21, 41, 81]


def _gaussian_flow_errors(make, steps, sde=VP, prior_key=lambda key: key):
    """Max error at t_min of the deterministic sampler ``make(n)`` (``denoise=False``) for each
    ``n`` in ``steps``, with the exact score of N(MU, S^2), against the exact probability-flow
    map of that Gaussian, x_t = alpha_t MU + sqrt(alpha_t^2 S^2 + sigma_t^2) z, from the
    sampler's own x_T (drawn from ``prior_key(key)``). The solves of every step count are
    compiled together, in one jit: compiling dominates, not the 16-point solves."""

    def score(x, t):
        alpha, var = jnp.exp(sde.log_alpha(t)), sde.variance(t)
        return -(x - alpha * MU) / (alpha**2 * S**2 + var)

    def exact_std(t):
        return jnp.sqrt(jnp.exp(2 * sde.log_alpha(t)) * S**2 + sde.variance(t))

    key = jax.random.PRNGKey(0)
    outs = jax.jit(lambda key: [make(n).sample(sde, score, key, (16, 2)).x for n in steps])(key)
    x_T = sde.prior_sample(prior_key(key), (16, 2))
    a_T, a_0 = jnp.exp(sde.log_alpha(sde.T)), jnp.exp(sde.log_alpha(sde.t_min))
    z = (x_T - a_T * MU) / exact_std(sde.T)
    exact = a_0 * MU + exact_std(sde.t_min) * z
    return np.array([float(jnp.max(jnp.abs(x - exact))) for x in outs])


def _order(make, steps, **kwargs):
    """Fitted order of convergence: the slope of log error against log step size."""
    errors = _gaussian_flow_errors(make, steps, **kwargs)
    return -np.polyfit(np.log(np.asarray(steps) - 1), np.log(errors), 1)[0], errors


@pytest.mark.parametrize("solver, order", [(diffrax.Euler(), 1), (diffrax.Heun(), 2)])
def test_probability_flow_converges_at_the_solver_order(solver, order):
    make = lambda n: samplers.ProbabilityFlow(solver, steps=n, denoise=False)
    slope, errors = _order(make, PF_STEPS)
    assert abs(slope - order) < 0.4, (slope, errors)


FAST = {
    # DDIM draws x_T from the first half of its key (GridSampler), the others from the key.
    "ddim": (lambda n: samplers.DDIM(steps=n, denoise=False), 1, lambda k: jax.random.split(k)[0]),
    "edm-heun": (lambda n: samplers.EDMHeun(n, denoise=False), 2, None),
}


@pytest.mark.parametrize("sde", [VP, VE, DDPM_1000, NCSN_100, FLOW], ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("name", list(FAST))
def test_fast_samplers_converge_at_their_order(name, sde):
    """DDIM is first order and EDM's Heun second order, on every process (the discrete
    schedules through their interpolated marginals; the multistep samplers are held to their
    orders in test_multistep.py)."""
    make, order, prior_key = FAST[name]
    slope, errors = _order(make, FAST_STEPS, sde=sde, prior_key=prior_key or (lambda k: k))
    assert abs(slope - order) < 0.4, (slope, errors)
    assert make(10).convergence_order == order


def test_adaptive_probability_flow_meets_its_tolerance():
    make = lambda n: samplers.ProbabilityFlow(diffrax.Tsit5(), denoise=False)
    assert _gaussian_flow_errors(make, [None])[0] < 1e-3


def test_sampler_errors_are_named():
    for bad in (1, 2.5, None):
        with pytest.raises((TypeError, ValueError), match="steps must be an integer >= 2"):
            samplers.EDMHeun(steps=bad)
    with pytest.raises(ValueError, match="rho must be a finite number > 0"):
        samplers.EDMHeun(rho=0.0)
    for bad in (2.5, 0, True):
        with pytest.raises((TypeError, ValueError), match="steps must be an integer >= 2"):
            samplers.DDIM(steps=bad)
    with pytest.raises(ValueError, match="grid must be one of"):
        samplers.DDIM(steps=10, grid="uniform")
    with pytest.raises(ValueError, match="eta must lie in"):
        samplers.DDIM(eta=2.0)
    with pytest.raises(TypeError, match="predictor must be a grid sampler"):
        samplers.PredictorCorrector(samplers.ProbabilityFlow())
    with pytest.raises(ValueError, match="snr must be a finite number > 0"):
        samplers.PredictorCorrector(snr=0.0)
    with pytest.raises(ValueError, match="steps must be an integer >= 2"):
        samplers.Ancestral().sample(VP, lambda x, t: -x, jax.random.PRNGKey(0), (4, 2))
