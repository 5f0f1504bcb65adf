"""Likelihood weighting with importance sampling of t (Song, Durkan, Murray & Ermon 2021):
the sampling density against its closed form, and the weighted loss of the exact denoiser of
a Gaussian against the integral it estimates."""

import dataclasses
import functools

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import zoo
from zoo import sdes

PROCESSES = [sdes.VP(0.1, 20.0), sdes.SubVP(0.1, 20.0), sdes.VE(0.01, 10.0)]
IDS = [type(p).__name__ for p in PROCESSES]


def _weights(sde):
    """g(t)^2 / sigma_t^2 from the process's derived diffusion, on a dense log-spaced grid
    (the weight varies like 1/t near 0 for the VP processes)."""
    t = np.geomspace(sde.t_min, sde.T, 200_001)
    tj = jnp.asarray(t, jnp.float32)
    return t, np.asarray(sde.diffusion(tj) ** 2 / sde.variance(tj), np.float64)


@pytest.mark.parametrize("sde", PROCESSES, ids=IDS)
def test_importance_density_integrates_to_one_and_is_sampled(sde):
    z = float(sde.likelihood_weight_integral())
    grid, weights = _weights(sde)
    cdf = integrate.cumulative_trapezoid(weights / z, grid, initial=0.0)
    np.testing.assert_allclose(cdf[-1], 1.0, rtol=2e-3)  # p(t) = g^2 / (sigma^2 Z)

    t = np.asarray(sde.sample_time_by_likelihood_weight(jax.random.PRNGKey(0), (100_000,)))
    assert t.min() >= sde.t_min and t.max() <= sde.T
    for q in np.geomspace(sde.t_min * 10, sde.T * 0.9, 6):
        expected = np.interp(q, grid, cdf)
        # 100,000 draws: the empirical CDF is within 0.005 of the true one (> 3 sd).
        assert abs(np.mean(t <= q) - expected) < 0.005, (q, np.mean(t <= q), expected)


@dataclasses.dataclass
class _ExactEps(hk.Module):
    """The posterior-mean noise of N(0, s2 I) data: eps_hat = sigma_t x / (alpha_t^2 s2 +
    sigma_t^2), the network that minimises the denoising loss at every t."""

    sde: sdes.SDE
    s2: float

    def __call__(self, x, t, is_training):
        t = t[:, None]
        alpha2, var = jnp.exp(2 * self.sde.log_alpha(t)), self.sde.variance(t)
        return jnp.sqrt(var) * x / (alpha2 * self.s2 + var)


@pytest.mark.parametrize("sde", PROCESSES, ids=IDS)
def test_the_weighted_loss_of_the_exact_denoiser_matches_its_closed_form(sde):
    """For x0 ~ N(0, s^2 I) the exact denoiser leaves a residual of alpha^2 s^2 / (alpha^2 s^2
    + sigma^2) = sigmoid(2 lambda + log s^2) per dimension, so the likelihood-weighted loss
    (1 / (T - t_min)) int g^2/sigma^2 r dt = (1 / (T - t_min)) [log(1 + s^2 e^{2 lambda})]
    between lambda_T and lambda_{t_min}. Uniform and importance-sampled t both estimate it;
    the importance sampler with a smaller spread, except for VE, where g^2/sigma^2 is constant
    and the two samplers are one."""
    s2, n = 0.5, 20_000
    lam_min, lam_T = (float(sde.log_snr(jnp.float32(t))) for t in (sde.t_min, sde.T))
    exact = (np.log1p(s2 * np.exp(2 * lam_min)) - np.log1p(s2 * np.exp(2 * lam_T))) / (
        sde.T - sde.t_min
    )
    x0 = np.sqrt(s2) * jax.random.normal(jax.random.PRNGKey(1), (n, 2))
    net = functools.partial(_ExactEps, sde=sde, s2=s2)
    spread = {}
    for sampling in ("uniform", "importance"):
        model = zoo.transform(
            zoo.ScoreSDE, sde=sde, net=net, weighting="likelihood", time_sampling=sampling
        )
        params = model.init(jax.random.PRNGKey(0), x0[:4])
        losses = np.asarray(model.loss(params, jax.random.PRNGKey(2), x0), np.float64)
        se = losses.std() / np.sqrt(n)
        assert abs(losses.mean() - exact) < 4 * se + 1e-3 * exact, (sampling, losses.mean(), exact)
        spread[sampling] = losses.std()
    if isinstance(sde, sdes.VE):
        np.testing.assert_allclose(spread["importance"], spread["uniform"], rtol=0.05)
    else:
        assert spread["importance"] < 0.5 * spread["uniform"], spread


def test_importance_sampling_needs_the_likelihood_weighting_of_an_sde():
    vp = sdes.VP()
    with pytest.raises(ValueError, match="needs weighting='likelihood'"):
        zoo.transform(zoo.ScoreSDE, sde=vp, time_sampling="importance")
    with pytest.raises(ValueError, match="an SDE such as VP"):
        zoo.transform(zoo.DDPM, weighting="likelihood", time_sampling="importance")
    with pytest.raises(ValueError, match="time_sampling must be one of"):
        zoo.transform(zoo.ScoreSDE, sde=vp, time_sampling="stratified")
