"""What the network predicts: every parametrisation converts back to the noise exactly, a
network that outputs the exact posterior mean of its target gives the exact score in each,
EDM's target has unit variance, and the options' errors name them."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo import parametrisations, sdes

PROCESSES = {
    "vp": sdes.VP(0.1, 20.0),
    "subvp": sdes.SubVP(0.1, 20.0),
    "ve": sdes.VE(0.01, 10.0),
    "flow": sdes.FlowPath(),
    "ddpm": sdes.ddpm_linear(1e-4, 0.02, 1000),
    "ncsn": sdes.ncsn_geometric(10.0, 0.01, 100),
}
S = 1.5  # the data's std: N(0, S^2 I) in 2-D


def _times(sde):
    return jnp.linspace(sde.t_min, sde.T, 7)[1:-1, None]


@pytest.mark.parametrize("name", parametrisations.NAMES)
@pytest.mark.parametrize("process", list(PROCESSES))
def test_each_target_converts_back_to_its_noise(name, process):
    sde, p = PROCESSES[process], parametrisations.get(name, S)
    t = _times(sde)
    x0 = S * jax.random.normal(jax.random.PRNGKey(0), (t.shape[0], 2))
    eps = jax.random.normal(jax.random.PRNGKey(1), x0.shape)
    alpha, sigma = sde.marginal(t)
    x = alpha * x0 + sigma * eps
    back = p.to_eps(sde, x, t, p.target(sde, x0, eps, t))
    np.testing.assert_allclose(back, eps, atol=2e-4)


def _posterior(sde, x, t):
    """E[x_0 | x_t] and E[eps | x_t] for x_0 ~ N(0, S^2 I)."""
    alpha, var = jnp.exp(sde.log_alpha(t)), sde.variance(t)
    total = alpha**2 * S**2 + var
    return alpha * S**2 / total * x, jnp.sqrt(var) / total * x


def _exact_net(sde, p):
    """A 'network' that outputs the posterior mean of the target ``p`` at the input it is
    given (for ``edm``, c_in x / alpha: undone here with the process's own coefficients)."""

    class Exact(hk.Module):
        def __call__(self, given, t, is_training):
            t = t[:, None]
            x = given
            if p.name == "edm":
                inv_alpha, _, _, c_in = p.edm_coefficients(sde, t)
                x = given / (c_in * inv_alpha)
            x0, eps = _posterior(sde, x, t)
            return p.target(sde, x0, eps, t)  # every target is affine in (x0, eps) given x

    return Exact


@pytest.mark.parametrize("name", parametrisations.NAMES)
@pytest.mark.parametrize("process", ["vp", "ve", "flow"])
def test_the_exact_target_gives_the_exact_score(name, process):
    sde = PROCESSES[process]
    p = parametrisations.get(name, S)
    family = zoo.FlowMatching if process == "flow" else zoo.ScoreSDE
    config = dict(predict=name, sigma_data=S) if name == "edm" else dict(predict=name)
    model = zoo.transform(family, sde=sde, net=_exact_net(sde, p), **config)
    x = 2.0 * jax.random.normal(jax.random.PRNGKey(2), (6, 2))
    for t in np.asarray(_times(sde)).ravel():
        alpha, var = np.exp(float(sde.log_alpha(t))), float(sde.variance(t))
        exact = -x / (alpha**2 * S**2 + var)
        np.testing.assert_allclose(model.score({}, x, t), exact, rtol=2e-3, atol=1e-5)


MU = (2.0, -1.0)  # a mean of the data that EDM's mean term knows


class _Zero(hk.Module):
    """A network that outputs 0: under ``edm`` the model is then its skip connection alone."""

    def __call__(self, x, t, is_training=False):
        return jnp.zeros_like(x) + hk.get_parameter("bias", [], init=jnp.zeros)


@pytest.mark.parametrize("process", ["vp", "ve", "flow", "ddpm"])
def test_edm_with_the_data_mean_is_the_exact_denoiser_of_a_shifted_gaussian(process):
    """With F = 0, mu + c_skip (x/alpha - mu) is E[x_0 | x_t] for x_0 ~ N(mu, S^2 I): the
    model's score is the exact one at every noise level; without the mean term it is not."""
    sde = PROCESSES[process]
    family = {"flow": zoo.FlowMatching, "ddpm": zoo.DDPM}.get(process, zoo.ScoreSDE)
    process_arg = "schedule" if process == "ddpm" else "sde"
    x = jnp.asarray(MU) + 3.0 * jax.random.normal(jax.random.PRNGKey(2), (6, 2))
    worst = {}
    for mean in (MU, None):
        model = zoo.transform(
            family, net=_Zero, predict="edm", sigma_data=S, data_mean=mean, **{process_arg: sde}
        )
        params = model.init(jax.random.PRNGKey(0), x)
        errors = []
        for t in np.asarray(_times(sde)).ravel():
            alpha, var = np.exp(float(sde.log_alpha(t))), float(sde.variance(t))
            exact = -(x - alpha * jnp.asarray(MU)) / (alpha**2 * S**2 + var)
            got = model.score(params, x, jnp.full((6,), t))
            errors.append(float(jnp.max(jnp.abs(got - exact) / (1e-3 + jnp.abs(exact)))))
        worst[mean] = max(errors)
    assert worst[MU] < 2e-3 and worst[None] > 0.1, worst


@pytest.mark.parametrize("process", ["vp", "ve", "flow"])
def test_edm_target_with_the_mean_term_is_standard_for_shifted_data(process):
    sde = PROCESSES[process]
    n, mu = 200_000, jnp.asarray(MU)
    x0 = mu + S * jax.random.normal(jax.random.PRNGKey(0), (n, 2))
    eps = jax.random.normal(jax.random.PRNGKey(1), (n, 2))
    with_mean, without = (parametrisations.get("edm", S, m) for m in (MU, None))
    offset = 0.0  # the largest mean of the target without the mean term
    for t in np.asarray(_times(sde)).ravel():
        t = jnp.float32(t)
        alpha, sigma = sde.marginal(t)
        target = with_mean.target(sde, x0, eps, t)
        np.testing.assert_allclose(jnp.mean(target, 0), 0.0, atol=0.01)
        np.testing.assert_allclose(jnp.var(target, 0), 1.0, atol=0.02)
        given = with_mean.network_input(sde, alpha * x0 + sigma * eps, t)
        np.testing.assert_allclose(jnp.mean(given, 0), 0.0, atol=0.01)
        np.testing.assert_allclose(jnp.var(given, 0), 1.0, atol=0.02)
        offset = max(offset, float(jnp.max(jnp.abs(jnp.mean(without.target(sde, x0, eps, t), 0)))))
    assert offset > 0.5  # without it, the target carries mu (1 - c_skip) / c_out
    back = with_mean.to_eps(sde, alpha * x0 + sigma * eps, t, target)
    np.testing.assert_allclose(back, eps, atol=2e-3)


@pytest.mark.parametrize("process", ["vp", "ve", "flow"])
def test_edm_target_has_unit_variance_at_every_noise_level(process):
    sde, p = PROCESSES[process], parametrisations.get("edm", S)
    n = 200_000
    x0 = S * jax.random.normal(jax.random.PRNGKey(0), (n, 1))
    eps = jax.random.normal(jax.random.PRNGKey(1), (n, 1))
    for t in np.asarray(_times(sde)).ravel():
        target = p.target(sde, x0, eps, jnp.float32(t))
        assert abs(float(jnp.var(target)) - 1.0) < 0.02, (t, float(jnp.var(target)))
        # and so has the network's input c_in x / alpha
        alpha, sigma = sde.marginal(jnp.float32(t))
        given = p.network_input(sde, alpha * x0 + sigma * eps, jnp.float32(t))
        assert abs(float(jnp.var(given)) - 1.0) < 0.02


def test_edm_times_are_log_normal_in_the_noise():
    sde = sdes.VE(0.01, 10.0)  # log sigma in [-4.6, 2.3]: N(-1.2, 1.2^2) is 1% clipped
    t = sde.sample_time_log_normal_noise(jax.random.PRNGKey(0), (50_000,))
    log_sigma = -np.asarray(sde.log_snr(t))
    assert abs(np.median(log_sigma) - (-1.2)) < 0.03
    assert abs(np.percentile(log_sigma, 84.13) - 0.0) < 0.05  # mean + 1 sd
    assert np.all((t >= sde.t_min) & (t <= sde.T))


@pytest.mark.parametrize(
    "config, match",
    [
        (dict(predict="v_pred"), "predict must be one of"),
        (dict(predict="edm"), "predict='edm' needs sigma_data"),
        (dict(predict="edm", sigma_data=0.0), "sigma_data must be a finite number > 0"),
        (dict(predict="edm", sigma_data=float("nan")), "sigma_data must be a finite number > 0"),
        (dict(predict="eps", data_mean=1.0), "data_mean is the data's mean under predict='edm'"),
        (dict(predict="edm", sigma_data=1.0, data_mean=(0.0, float("nan"))), "data_mean must be"),
        (dict(predict="edm", sigma_data=1.0, data_mean="zero"), "data_mean must be"),
        (dict(predict="edm", sigma_data=1.0, data_mean=(0.0, 0.0, 0.0)), r"shaped like one"),
        (dict(weighting="edm"), "weighting='edm' needs sigma_data"),
        (dict(weighting="karras"), "weighting must be one of"),
        (dict(time_sampling="edm", p_std=0.0), "p_std must be > 0"),
        (dict(time_sampling="edm", p_mean=float("inf")), "p_mean must be a finite number"),
    ],
)
def test_bad_options_are_named(config, match):
    with pytest.raises(ValueError, match=match):
        zoo.transform(zoo.ScoreSDE, **config)


def test_edm_times_need_a_continuous_process():
    with pytest.raises(ValueError, match="time_sampling='edm' draws continuous times"):
        zoo.transform(zoo.NCSN, time_sampling="edm")


class _Time(hk.Module):
    """A network whose output is the time it is given, in every coordinate."""

    def __call__(self, x, t, is_training=False, label=None):
        bias = hk.get_parameter("bias", [], init=jnp.zeros)
        return jnp.broadcast_to(t[:, None], x.shape) + bias


@pytest.mark.parametrize("process", list(PROCESSES))
def test_the_network_gets_the_time_or_edm_c_noise(process):
    sde = PROCESSES[process]
    t = jnp.linspace(sde.t_min, sde.T, 6)[1:-1]
    x = jnp.ones((len(t), 2))
    alpha, sigma = sde.marginal(t)
    expected = {"t": t, "c_noise": 0.25 * jnp.log(sigma / alpha)}  # Karras et al., table 1
    for time_input, given in expected.items():
        model = zoo.transform(zoo.ScoreSDE, sde=sde, net=_Time, time_input=time_input)
        params = model.init(jax.random.PRNGKey(0), x)
        eps = -model.score(params, x, t) * sigma[:, None]  # predict="eps": the output is eps
        np.testing.assert_allclose(eps, jnp.broadcast_to(given[:, None], x.shape), rtol=2e-5)
    with pytest.raises(ValueError, match=r"time_input must be one of \('t', 'c_noise'\)"):
        zoo.transform(zoo.ScoreSDE, sde=sde, time_input="sigma")
