"""Flow matching: the straight path's closed forms, its velocity target, its Euler sampler's
order, minibatch OT coupling, and its options' errors."""

import itertools

import diffrax
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo import models, samplers, sdes

PATH = sdes.FlowPath()
MU, S = 0.7, 0.5  # 1-D Gaussian data N(MU, S^2)


def _moments(t):
    """Mean and variance of x_t = (1 - t) x_0 + t eps for x_0 ~ N(MU, S^2)."""
    a = 1.0 - t
    return a * MU, a**2 * S**2 + t**2


def _posterior(x, t):
    """E[x_0 | x_t], E[eps | x_t] of the Gaussian data, and the exact score."""
    m, v = _moments(t)
    return MU + (1.0 - t) * S**2 / v * (x - m), t / v * (x - m), -(x - m) / v


@pytest.mark.parametrize("t", [1e-3, 0.3, 0.9, 1.0 - 1e-3])
def test_path_marginal_mean_and_variance(t):
    x0 = MU + S * jax.random.normal(jax.random.PRNGKey(0), (200_000, 1))
    xt, _ = PATH.perturb(jax.random.PRNGKey(1), x0, jnp.float32(t))
    m, v = _moments(t)
    se = np.sqrt(v / x0.shape[0])
    assert abs(float(xt.mean()) - m) < 5 * se
    assert abs(float(xt.var()) / v - 1) < 5 * np.sqrt(2 / x0.shape[0])


@pytest.mark.parametrize("t", [0.01, 0.5, 0.99])
def test_velocity_score_and_noise_conversions_are_exact_for_a_gaussian(t):
    x = jnp.linspace(-3.0, 3.0, 7)
    x0_mean, eps_mean, score = _posterior(x, t)
    exact_velocity = eps_mean - x0_mean  # E[u | x_t], the flow's drift
    eps = PATH.eps_from_score(score, t)
    np.testing.assert_allclose(eps, eps_mean, rtol=1e-5, atol=1e-6)
    # x_0 = (x - t eps)/(1 - t) amplifies float32 rounding by 1/(1 - t): 100x at t = 0.99
    tol = 1e-6 / (1.0 - t)
    np.testing.assert_allclose(PATH.velocity_from_eps(x, eps, t), exact_velocity, atol=4 * tol)
    np.testing.assert_allclose(PATH.eps_from_velocity(x, exact_velocity, t), eps_mean, atol=tol)
    # The probability-flow drift of the path is that velocity.
    np.testing.assert_allclose(PATH.probability_flow(x, t, score), exact_velocity, atol=1e-4)


class _ExactVelocity(hk.Module):
    """A 'network' that outputs the exact E[u | x_t] of the Gaussian data."""

    def __call__(self, x, t, is_training):
        x0_mean, eps_mean, _ = _posterior(x, t[:, None])
        return eps_mean - x0_mean


def test_loss_at_the_exact_velocity_is_its_irreducible_part():
    """E||u - E[u|x_t]||^2 = E_t Var(eps - x_0 | x_t), in closed form for Gaussian data:
    Var(w) - Cov(w, x)^2 / Var(x), w = eps - x_0, x = (1 - t) x_0 + t eps."""
    model = zoo.transform(zoo.FlowMatching, event_shape=(1,), net=_ExactVelocity)
    x0 = MU + S * jax.random.normal(jax.random.PRNGKey(0), (400_000, 1))
    losses = np.asarray(model.loss({}, jax.random.PRNGKey(1), x0))
    t = np.linspace(PATH.t_min, PATH.T, 100_001)
    a = 1.0 - t
    irreducible = 1 + S**2 - (t - a * S**2) ** 2 / (a**2 * S**2 + t**2)
    expected = np.trapezoid(irreducible, t) / (PATH.T - PATH.t_min)
    se = losses.std() / np.sqrt(losses.size)
    assert abs(losses.mean() - expected) < 5 * se, (losses.mean(), expected, se)


def test_euler_on_the_flow_of_a_gaussian_converges_at_order_one():
    """Euler on the probability-flow ODE, driven by the exact score, against the exact flow:
    x_t = m_t + sqrt(v_t) z keeps each point's z."""
    key, shape = jax.random.PRNGKey(0), (256, 1)
    x_T = PATH.prior_sample(key, shape)  # the sampler's own first draw
    m, v = _moments(PATH.T)
    m0, v0 = _moments(PATH.t_min)
    exact = m0 + np.sqrt(v0) * (np.asarray(x_T) - m) / np.sqrt(v)

    def error(steps):
        sampler = samplers.ProbabilityFlow(solver=diffrax.Euler(), steps=steps + 1, denoise=False)
        out = sampler.sample(PATH, lambda x, t: _posterior(x, t)[2], key, shape)
        return float(np.max(np.abs(np.asarray(out.x) - exact)))

    errors = [error(n) for n in (25, 50, 100)]
    orders = np.log2(np.asarray(errors[:-1]) / np.asarray(errors[1:]))
    assert np.all(np.abs(orders - 1.0) < 0.15), (errors, orders)


def _predictions():
    """The Gaussian data's exact score and posterior mean, finite at t = 1 (where E[x_0] = MU)."""
    return samplers.Predictions(lambda x, t: _posterior(x, t)[2], lambda x, t: _posterior(x, t)[0])


def test_euler_from_t_one_converges_at_order_one():
    """From x_1 = eps ~ N(0, 1), where the score is blind to the data, Euler reads the
    posterior mean; against the exact flow x_t = m_t + sqrt(v_t) x_1 it converges at order 1."""
    key, shape = jax.random.PRNGKey(0), (256, 1)
    x_1 = jax.random.normal(key, shape)  # the sampler's own first draw
    m0, v0 = _moments(PATH.t_min)
    exact = m0 + np.sqrt(v0) * np.asarray(x_1)

    def error(steps):
        sampler = samplers.Euler(steps=steps, start="noise", denoise=False)
        out = sampler.sample(PATH, _predictions(), key, shape)
        return float(np.max(np.abs(np.asarray(out.x) - exact)))

    errors = [error(n) for n in (25, 50, 100)]
    orders = np.log2(np.asarray(errors[:-1]) / np.asarray(errors[1:]))
    assert np.all(np.abs(orders - 1.0) < 0.15), (errors, orders)


def test_euler_from_the_paths_T_is_the_probability_flow_euler():
    key, shape = jax.random.PRNGKey(2), (64, 1)
    a = samplers.Euler(steps=10).sample(PATH, _predictions(), key, shape)
    b = samplers.ProbabilityFlow(solver=diffrax.Euler(), steps=11).sample(
        PATH, _predictions(), key, shape
    )
    np.testing.assert_allclose(a.x, b.x, atol=1e-4)
    assert int(a.nfe) == int(b.nfe) == 11


def test_the_default_sampler_starts_at_one_and_draws_the_data():
    """The model's own data prediction at t = 1 (x - t u of the network's u): with the exact
    velocity the default sampler's draws have the data's mean and spread."""
    model = zoo.transform(zoo.FlowMatching, event_shape=(1,), net=_ExactVelocity)
    assert model.family.default_sampler() == samplers.Euler(steps=100, start="noise")
    x = np.asarray(model.sample({}, jax.random.PRNGKey(0), (20_000,)).x)
    assert abs(x.mean() - MU) < 0.02 and abs(x.std() / S - 1) < 0.03, (x.mean(), x.std())


def test_the_mixtures_posterior_mean_is_tweedies_and_at_one_its_mean():
    nine = zoo.data.nine_gaussians()
    oracle = zoo.data.oracle_score(nine, PATH)
    x = nine.sample(jax.random.PRNGKey(0), (16,))
    for t in (0.01, 0.5, 0.99):
        np.testing.assert_allclose(
            oracle.x0(x, t), samplers.denoise(PATH, oracle, x, jnp.float32(t)), atol=2e-4
        )
    mean = np.asarray(nine.weights) @ np.asarray(nine.means)  # sum_k w_k mu_k
    np.testing.assert_allclose(oracle.x0(x, 1.0), np.broadcast_to(mean, x.shape), atol=1e-5)


@pytest.mark.parametrize("predict", ["eps", "score", "edm"])
def test_a_network_blind_to_x0_at_one_starts_at_T_and_is_refused_from_one(predict):
    """From the noise or the score x0 is 0/0 at alpha = 0: flow matching's own sampler then
    starts at the path's T (finite draws), and Euler from t = 1 refuses it by name."""
    extra = {"sigma_data": 0.5} if predict == "edm" else {}
    model = zoo.transform(zoo.FlowMatching, predict=predict, **extra)
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((4, 2)))
    out = model.sample(params, jax.random.PRNGKey(1), (8,))
    assert np.all(np.isfinite(out.x)) and int(out.nfe) == 101
    with pytest.raises(ValueError, match='predict "velocity", "x0" or "v"'):
        model.sample(params, jax.random.PRNGKey(1), (8,), samplers.Euler(start="noise"))


def test_euler_from_one_needs_the_data_prediction_and_a_time_without_data():
    score = lambda x, t: _posterior(x, t)[2]  # noqa: E731
    with pytest.raises(TypeError, match="Predictions"):
        samplers.Euler(start="noise").sample(PATH, score, jax.random.PRNGKey(0), (4, 1))
    with pytest.raises(ValueError, match="VP has none"):
        samplers.Euler(start="noise").sample(
            sdes.VP(), _predictions(), jax.random.PRNGKey(0), (4, 1)
        )
    with pytest.raises(ValueError, match="start must be"):
        samplers.Euler(start="one")
    with pytest.raises(ValueError, match="steps"):
        samplers.Euler(steps=0)


def test_ddim_on_the_straight_path_is_euler():
    """On alpha = 1 - t, sigma = t the DDIM step x_s = alpha_s x0 + sigma_s eps equals the Euler
    step x_t + (s - t) u: with the same times both samplers give the same points."""
    key, shape = jax.random.PRNGKey(3), (64, 1)

    def score(x, t):
        return _posterior(x, t)[2]

    ddim = samplers.DDIM(steps=11, denoise=False).sample(PATH, score, key, shape)
    prior_key = jax.random.split(key)[0]  # DDIM's draw of its starting points
    euler = samplers.ProbabilityFlow(solver=diffrax.Euler(), steps=11, denoise=False)
    euler = euler.sample(PATH, score, prior_key, shape)
    np.testing.assert_allclose(ddim.x, euler.x, atol=1e-4)


def test_ot_coupling_is_the_cheapest_pairing():
    key = jax.random.PRNGKey(0)
    for i in range(5):
        x0, eps = jax.random.normal(jax.random.fold_in(key, i), (2, 6, 2))
        perm = np.asarray(models._assignment(x0, eps))
        cost = np.sum((np.asarray(x0)[:, None] - np.asarray(eps)[None]) ** 2, axis=-1)
        total = cost[np.arange(6), perm].sum()
        best = min(cost[np.arange(6), list(p)].sum() for p in itertools.permutations(range(6)))
        assert sorted(perm) == list(range(6))
        np.testing.assert_allclose(total, best, rtol=1e-6)
        assert total <= cost[np.arange(6), np.arange(6)].sum() + 1e-6  # the random pairing


def test_ot_coupling_under_vmap_pairs_each_batch_on_its_own():
    x0, eps = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 5, 2))
    batched = jax.vmap(models._assignment)(x0, eps)
    one_by_one = [models._assignment(x0[i], eps[i]) for i in range(3)]
    np.testing.assert_array_equal(batched, np.stack(one_by_one))


def test_ot_coupling_lowers_the_loss_of_the_flow_model():
    """With the network's output 0 the loss is the batch's mean |eps - x_0|^2 over the same
    noise draws, which the OT pairing minimises: it can only be lower."""
    x0 = 2.0 * jax.random.normal(jax.random.PRNGKey(0), (256, 2)) + 3.0
    plain = zoo.transform(zoo.FlowMatching)
    ot = zoo.transform(zoo.FlowMatching, coupling="ot")
    params = plain.init(jax.random.PRNGKey(1), x0)
    zero = jax.tree_util.tree_map(jnp.zeros_like, params)  # network output 0: loss = E|u|^2
    key = jax.random.PRNGKey(2)
    # |eps - x_0|^2 summed over the batch is smallest under the OT pairing
    assert float(ot.loss(zero, key, x0).mean()) < float(plain.loss(zero, key, x0).mean())


def test_the_path_is_refused_at_its_ends():
    with pytest.raises(ValueError, match="T < 1"):
        sdes.FlowPath(T=1.0)
    with pytest.raises(ValueError, match="0 < t_min"):
        sdes.FlowPath(t_min=0.0)
    with pytest.raises(ValueError, match=r"t must lie in \[t_min, T\]"):
        PATH.marginal(jnp.float32(1.0))
    # at both ends of the sampled range everything is finite
    for t in (PATH.t_min, PATH.T):
        t = jnp.float32(t)
        values = [*PATH.marginal(t), PATH.drift_coefficient(t), PATH.diffusion(t),
                  PATH.log_snr(t), *PATH.velocity_coefficients(t)]  # fmt: skip
        assert np.all(np.isfinite(values)), values


def test_logit_normal_times_lie_inside_the_path_and_centre_on_its_middle():
    t = PATH.sample_time_logit_normal(jax.random.PRNGKey(0), (100_000,))
    assert float(t.min()) >= PATH.t_min and float(t.max()) <= PATH.T
    assert abs(float(jnp.median(t)) - 0.5) < 0.01
    # sigmoid of N(0, 1): P(t < 0.25) = Phi(logit(0.25)) = Phi(-1.0986) = 0.136
    assert abs(float(jnp.mean(t < 0.25)) - 0.136) < 0.005


@pytest.mark.parametrize(
    "config, match",
    [
        (dict(coupling="sinkhorn"), "coupling must be one of"),
        (dict(time_sampling="lognormal"), "time_sampling must be one of"),
        (dict(coupling="ot", num_classes=3), "coupling='ot'.*unconditional"),
        (dict(predict="u"), "predict must be one of"),
    ],
)
def test_bad_options_are_named(config, match):
    with pytest.raises(ValueError, match=match):
        zoo.transform(zoo.FlowMatching, **config)


def test_logit_normal_needs_continuous_times():
    with pytest.raises(ValueError, match="logit_normal.*continuous"):
        zoo.transform(zoo.DDPM, time_sampling="logit_normal")


def test_flow_matching_is_class_conditional_and_guided():
    model = zoo.transform(zoo.FlowMatching, num_classes=3)
    x, labels = jnp.zeros((8, 2)), jnp.arange(8) % 3
    params = model.init(jax.random.PRNGKey(0), x)
    assert np.all(np.isfinite(model.loss(params, jax.random.PRNGKey(1), x, labels)))
    out = model.sample(params, jax.random.PRNGKey(2), (6,), labels=jnp.arange(6) % 3, guidance=2.0)
    assert out.x.shape == (6, 2) and np.all(np.isfinite(out.x))
    assert int(out.nfe) == 101  # 100 Euler steps and the final denoising step
    # The guided data prediction is the guided score's: Euler reading either gives one path.
    x0_path, score_path = (
        model.sample(params, jax.random.PRNGKey(3), (6,), sampler, labels=labels[:6], guidance=2.0)
        for sampler in (
            samplers.Euler(steps=10),
            samplers.ProbabilityFlow(diffrax.Euler(), steps=11),
        )
    )
    np.testing.assert_allclose(x0_path.x, score_path.x, atol=1e-4)
