r"""Exact log-likelihood through the probability-flow ODE (Song et al. 2021, appendix D.2).

Along the probability-flow ODE :math:`dx/dt = \tilde f(x, t) = f x - \tfrac12 g^2
\nabla\log p_t(x)` the log density obeys the instantaneous change of variables
:math:`d\log p_t(x_t)/dt = -\nabla\cdot\tilde f(x_t, t)` (Chen et al. 2018), so

.. math::
    \log p_{t_{min}}(x) = \log p_T(x_T) + \int_{t_{min}}^T \nabla\cdot\tilde f(x_t, t)\,dt,

integrated forward from ``x`` at ``t_min`` with Diffrax, the prior for :math:`p_T`. The
divergence is exact (one forward-mode derivative per dimension: right in low dimension) or
Hutchinson's unbiased estimate :math:`E_v[v^\top J v]` with Rademacher probes held fixed
along the path (FFJORD), right in high dimension.

This is the likelihood of the data blurred by the noise at ``t_min``; with an exact score
and a prior equal to the true marginal at ``T`` it is exact up to the ODE solver's tolerance.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from typing import NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from zoo._checks import check_integer, check_option, check_positive, check_solution, is_concrete
from zoo.samplers import ScoreFn, function_evaluations
from zoo.sdes import SDE

__all__ = [
    "Divergence",
    "Likelihood",
    "bits_per_dim",
    "exact_likelihood_fn",
    "likelihood_fn",
    "log_likelihood",
]


class Likelihood(NamedTuple):
    """``log_prob [B]`` (nats), the prior term ``prior_logp [B]``, and ``nfe``."""

    log_prob: jax.Array
    prior_logp: jax.Array
    nfe: jax.Array


class Divergence(enum.StrEnum):
    """How the probability-flow ODE's divergence is taken: ``exact`` (the Jacobian's trace, D
    network calls per evaluation in D dimensions) or ``hutchinson`` (the unbiased estimate
    E[z^T J z] over Rademacher probes z, Hutchinson 1989; Grathwohl et al. 2019)."""

    EXACT = "exact"
    HUTCHINSON = "hutchinson"


@dataclasses.dataclass(frozen=True)
class _Divergence:
    method: Divergence
    num_probes: int

    def __post_init__(self):
        object.__setattr__(self, "method", check_option(Divergence, self.method, "divergence"))
        if self.num_probes < 1:
            raise ValueError(f"num_probes must be >= 1, got {self.num_probes}")


def _exact_divergence(fn, x):
    """Per-example trace of the Jacobian of a batched, per-example-independent ``fn``."""
    event_shape = x.shape[1:]
    dim = math.prod(event_shape)

    def single(xi):  # one flattened example -> its flattened output
        return fn(xi.reshape((1, *event_shape))).reshape(dim)

    jac = jax.vmap(jax.jacfwd(single))(x.reshape(x.shape[0], dim))  # [B, D, D]
    return jnp.trace(jac, axis1=-2, axis2=-1)


def _hutchinson_divergence(fn, x, probes):
    """:math:`\\frac1K\\sum_k v_k^\\top J v_k` per example, ``probes: [K, *x.shape]``."""

    def one(v):
        _, jv = jax.jvp(fn, (x,), (v,))
        return jnp.sum((v * jv).reshape(x.shape[0], -1), axis=-1)

    return jnp.mean(jax.vmap(one)(probes), axis=0)


def log_likelihood(
    sde: SDE,
    score_fn: ScoreFn,
    x: jax.Array,
    *,
    key: jax.Array | None = None,
    divergence: Divergence | str = Divergence.EXACT,
    num_probes: int = 1,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    steps: int | None = None,
    max_steps: int = 4096,
) -> Likelihood:
    """:math:`\\log p_{t_{min}}(x)` for a batch ``x: [B, *event]`` under the model whose score
    is ``score_fn(x, t)``.

    ``divergence``: ``"exact"`` or ``"hutchinson"`` (needs ``key``; ``num_probes`` Rademacher
    probes). ``solver``: any Diffrax ODE solver (default Tsit5), adaptive with
    ``rtol``/``atol`` unless ``steps`` fixes a uniform grid. ``x`` must be finite; a solve
    that needs more than ``max_steps`` steps raises an error that says so.
    """
    if not isinstance(sde, SDE):  # a Model here fails deep inside as "no attribute t_min"
        raise TypeError(
            f"sde must be a zoo.sdes.SDE (for a model, model.sde), got {type(sde).__name__}"
        )
    div = _Divergence(divergence, num_probes)
    if x.ndim < 2:
        raise ValueError(f"x must have shape [batch, *event_shape], got {tuple(x.shape)}")
    if is_concrete(x):
        finite = np.all(np.isfinite(np.asarray(x)).reshape(x.shape[0], -1), axis=1)
        if not finite.all():
            raise ValueError(
                f"x contains NaN or inf values (rows {np.flatnonzero(~finite)[:5].tolist()}); "
                "log_likelihood needs finite points"
            )
    max_steps = check_integer(max_steps, "max_steps")
    check_positive(rtol, "rtol")
    check_positive(atol, "atol")
    if div.method is Divergence.HUTCHINSON:
        if key is None:
            raise ValueError("key is required when divergence='hutchinson'")
        probes = jax.random.rademacher(key, (num_probes, *x.shape), jnp.float32)
    solver = diffrax.Tsit5() if solver is None else solver

    def vector_field(t, state, args):
        y, _ = state

        def flow(z):
            return sde.probability_flow(z, t, score_fn(z, t))

        if div.method is Divergence.EXACT:
            return flow(y), _exact_divergence(flow, y)
        return flow(y), _hutchinson_divergence(flow, y, probes)

    if steps is None:
        controller, dt0 = diffrax.PIDController(rtol=rtol, atol=atol), None
    else:
        controller, dt0 = diffrax.ConstantStepSize(), (sde.T - sde.t_min) / steps
    state0 = (x.astype(jnp.float32), jnp.zeros(x.shape[:1], jnp.float32))
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field), solver, t0=sde.t_min, t1=sde.T, dt0=dt0, y0=state0,
        stepsize_controller=controller, max_steps=max_steps, adjoint=diffrax.DirectAdjoint(),
        throw=False,
    )  # fmt: skip
    y_T, delta = check_solution(
        sol, (sol.ys[0][-1], sol.ys[1][-1]), who="log_likelihood", max_steps=max_steps
    )
    prior = jax.vmap(sde.prior_logp)(y_T)
    nfe = jnp.asarray(function_evaluations(solver, sol.stats["num_steps"]), jnp.int32)
    return Likelihood(prior + delta, prior, nfe)


def likelihood_fn(model, *, rtol: float = 1e-5, atol: float = 1e-5) -> Callable:
    """``fn(params, x) -> Likelihood``: :func:`log_likelihood` of a trained ``model`` (a
    :class:`zoo.models.Model`), jitted once; new parameters of the same shapes reuse the
    compilation."""
    check_positive(rtol, "rtol")  # here, not at the first call
    check_positive(atol, "atol")

    def fn(params, x):
        score = lambda y, t: model.score(params, y, t)
        return log_likelihood(model.sde, score, x, rtol=rtol, atol=atol)

    return jax.jit(fn)


def exact_likelihood_fn(sde, score_fn, *, rtol: float = 1e-5, atol: float = 1e-5) -> Callable:
    """``fn(x) -> Likelihood`` with a fixed score ``score_fn(x, t)`` (e.g.
    :func:`zoo.data.oracle_score`), jitted: what the ODE alone gives."""
    check_positive(rtol, "rtol")
    check_positive(atol, "atol")
    return jax.jit(lambda x: log_likelihood(sde, score_fn, x, rtol=rtol, atol=atol))


def bits_per_dim(log_prob: jax.Array, event_shape: tuple[int, ...]) -> jax.Array:
    """Negative log-likelihood in bits per dimension, :math:`-\\log p / (D \\ln 2)`."""
    return -log_prob / (math.prod(event_shape) * math.log(2.0))
