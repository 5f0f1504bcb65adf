"""Log-likelihood by the probability-flow ODE against exact log densities."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm

from zoo import data, sdes
from zoo.likelihood import bits_per_dim, log_likelihood

# Zero-mean data: the prior is then the exact marginal at T (up to alpha_T^2 ~ 1e-9 for VP).
SCALE = jnp.array([0.5, 2.0])
PROCESSES = {
    "vp": sdes.VP(0.1, 20.0, t_min=1e-5),
    "subvp": sdes.SubVP(0.1, 20.0, t_min=1e-5),
    "ve": sdes.VE(0.01, 100.0),
    "flow": sdes.FlowPath(t_min=1e-5),
}


def _gaussian_score(sde, x, t):
    alpha, var = jnp.exp(sde.log_alpha(t)), sde.variance(t)
    return -x / (alpha**2 * SCALE**2 + var)


def _exact_log_prob(sde, x):
    alpha, sigma = sde.marginal(sde.t_min)
    return jnp.sum(norm.logpdf(x, 0.0, jnp.sqrt(alpha**2 * SCALE**2 + sigma**2)), axis=-1)


@pytest.mark.parametrize("name", list(PROCESSES))
def test_gaussian_log_likelihood_is_exact(name):
    sde = PROCESSES[name]
    x = SCALE * jax.random.normal(jax.random.PRNGKey(0), (16, 2))
    result = log_likelihood(sde, functools.partial(_gaussian_score, sde), x)
    np.testing.assert_allclose(result.log_prob, _exact_log_prob(sde, x), atol=2e-3)


COV = jnp.array([[1.0, 0.9], [0.9, 1.5]])


def _correlated_score(sde, x, t):
    alpha, var = jnp.exp(sde.log_alpha(t)), sde.variance(t)
    return -jnp.linalg.solve(alpha**2 * COV + var * jnp.eye(2), x.T).T


@pytest.mark.parametrize("divergence, atol", [("exact", 2e-3), ("hutchinson", 0.15)])
def test_correlated_gaussian(divergence, atol):
    """A full covariance makes the flow's Jacobian non-diagonal, so Hutchinson's estimate is
    noisy (Rademacher probes: variance 4 J_12^2 / probes per evaluation), but unbiased: its
    error averaged over the examples is small."""
    sde = PROCESSES["vp"]
    x = jax.random.multivariate_normal(jax.random.PRNGKey(0), jnp.zeros(2), COV, (8,))
    result = log_likelihood(
        sde, functools.partial(_correlated_score, sde), x,
        key=jax.random.PRNGKey(1), divergence=divergence, num_probes=256,
    )  # fmt: skip
    alpha, sigma = sde.marginal(sde.t_min)
    cov = alpha**2 * COV + sigma**2 * jnp.eye(2)
    exact = jax.scipy.stats.multivariate_normal.logpdf(x, jnp.zeros(2), cov)
    np.testing.assert_allclose(result.log_prob, exact, atol=atol)
    if divergence == "hutchinson":
        assert float(jnp.mean(result.log_prob - exact)) == pytest.approx(0.0, abs=atol / 3)


def test_mixture_log_likelihood_with_the_oracle_score():
    """With the exact score of the diffused nine-Gaussians mixture, the ODE likelihood is the
    mixture's log density at t_min (which differs from the data's by a blur of sigma_min)."""
    nine, sde = data.nine_gaussians(), sdes.VP(0.1, 20.0, t_min=1e-4)
    x = nine.sample(jax.random.PRNGKey(0), (32,))
    result = log_likelihood(sde, functools.partial(nine.score, sde=sde), x, rtol=1e-6, atol=1e-6)
    exact = nine.diffused(sde, sde.t_min).log_prob(x)
    np.testing.assert_allclose(result.log_prob, exact, atol=2e-2)
    assert int(result.nfe) > 0


def test_bits_per_dim():
    assert float(bits_per_dim(jnp.asarray(-2 * np.log(2.0) * 64), (8, 8))) == pytest.approx(2.0)


def test_bad_arguments_are_named():
    sde = PROCESSES["vp"]
    score = functools.partial(_gaussian_score, sde)
    x = jnp.zeros((4, 2))
    with pytest.raises(ValueError, match="divergence must be"):
        log_likelihood(sde, score, x, divergence="magic")
    with pytest.raises(ValueError, match="key is required"):
        log_likelihood(sde, score, x, divergence="hutchinson")
    with pytest.raises(ValueError, match=r"x must have shape \[batch"):
        log_likelihood(sde, score, jnp.zeros(2))
