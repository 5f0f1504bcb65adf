r"""What the network predicts: each parametrisation maps the network's output to the noise
:math:`\hat\epsilon` that the samplers, the likelihood and guidance read, through the process's
marginal :math:`x_t = \alpha_t x_0 + \sigma_t \epsilon`.

- ``eps``: :math:`\epsilon` itself (Ho et al. 2020);
- ``score``: :math:`\nabla\log p_t = -\epsilon/\sigma_t` (Song & Ermon 2019);
- ``x0``: the clean example :math:`x_0`;
- ``v``: :math:`v = (\alpha_t\epsilon - \sigma_t x_0)/\sqrt{\alpha_t^2 + \sigma_t^2}`, Salimans
  & Ho's (2022) target normalised so that it keeps unit scale on variance-exploding processes
  too (where :math:`\alpha^2 + \sigma^2` grows like :math:`\sigma^2`); on VP it is theirs;
- ``velocity``: the path's time derivative :math:`u = \dot\alpha_t x_0 + \dot\sigma_t \epsilon`
  (flow matching's target, :math:`\epsilon - x_0` on the straight path);
- ``edm``: Karras et al.'s (2022, table 1) preconditioning in the zoo's terms, with
  :math:`\tilde\sigma = \sigma_t/\alpha_t`, the scaled input :math:`\tilde x = x_t/\alpha_t` and
  the data's standard deviation :math:`s_d`: :math:`\hat x_0 = c_{skip}\tilde x + c_{out}
  F(c_{in}\tilde x, t)` with :math:`c_{skip} = s_d^2/(\tilde\sigma^2 + s_d^2)`, :math:`c_{out} =
  \tilde\sigma s_d/\sqrt{\tilde\sigma^2 + s_d^2}`, :math:`c_{in} = 1/\sqrt{\tilde\sigma^2 +
  s_d^2}`. The network sees :math:`c_{in}\tilde x`, of unit scale at every noise level, and the
  process's time :math:`t` (so any network of the zoo's contract serves); its target
  :math:`(x_0 - c_{skip}\tilde x)/c_{out}` has unit variance for data of std :math:`s_d`.
  EDM assumes centred data; with the data's mean :math:`\mu` (``data_mean``) every
  :math:`\tilde x` above reads :math:`\tilde x - \mu` and :math:`\hat x_0` gains
  :math:`\mu`: :math:`\hat x_0 = \mu + c_{skip}(\tilde x - \mu) + c_{out}F(c_{in}(\tilde x
  - \mu), t)`, so that with :math:`F = 0` it is the exact denoiser of :math:`N(\mu, s_d^2 I)`
  at every noise level, not of :math:`N(0, s_d^2 I)`.

The last three are trained in their own units (:attr:`Parametrisation.own_units`): the simple
loss :math:`\|\hat y - y\|^2` of their papers, which is the noise-unit loss reweighted (for
``v`` on VP by :math:`1 + \mathrm{SNR}`, for ``edm`` by EDM's
:math:`\lambda(\tilde\sigma)\tilde\sigma^2 = (\tilde\sigma^2 + s_d^2)/s_d^2`). The first three
keep the families' loss in noise units.

All functions are per example and broadcast; ``t`` is shaped to broadcast against ``x``.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from zoo.sdes import SDE

__all__ = ["NAMES", "Parametrisation", "get"]


@dataclasses.dataclass(frozen=True)
class Parametrisation:
    """What a network's output means (``name``, one of :data:`NAMES`); ``sigma_data``:
    :math:`s_d` of ``edm``, unused by the others; ``data_mean``: :math:`\\mu` of ``edm``, a
    number or a nested tuple of the example's shape (``None``: 0)."""

    name: str = "eps"
    sigma_data: float | None = None
    data_mean: float | tuple | None = None

    def __post_init__(self):
        if self.name not in NAMES:
            raise ValueError(f"predict must be one of {NAMES}, got {self.name!r}")
        s = self.sigma_data
        if self.name == "edm" and s is None:
            raise ValueError(
                "predict='edm' needs sigma_data, the standard deviation of the data (a number "
                "> 0, e.g. float(jnp.std(x)))"
            )
        if s is not None and not (
            isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s > 0
        ):
            raise ValueError(f"sigma_data must be a finite number > 0, got {s!r}")
        if self.data_mean is not None:
            if self.name != "edm":
                raise ValueError(
                    f"data_mean is the data's mean under predict='edm', got predict={self.name!r}"
                )
            try:
                mean = np.asarray(self.data_mean, dtype=np.float64)
            except (TypeError, ValueError):
                mean = np.array(np.nan)
            if mean.size == 0 or not np.all(np.isfinite(mean)):
                raise ValueError(
                    "data_mean must be a finite number or a nested tuple of finite numbers "
                    f"(the example's shape), got {self.data_mean!r}"
                )

    def _mean(self, x: jax.Array) -> jax.Array | float:
        return 0.0 if self.data_mean is None else jnp.asarray(self.data_mean, x.dtype)

    @property
    def x0_without_signal(self) -> bool:
        """Whether :meth:`to_x0` stays finite where :math:`\\alpha_t = 0` (``x0``, ``v``,
        ``velocity``); from the noise or the score it is 0/0 there, as :math:`x_t = \\epsilon`
        carries nothing of :math:`x_0`."""
        return self.name in ("x0", "v", "velocity")

    @property
    def own_units(self) -> bool:
        """Whether the simple loss is taken in the output's own units, not the noise's."""
        return self.name in ("v", "velocity", "edm")

    def edm_coefficients(self, sde: SDE, t: jax.Array):
        """:math:`(1/\\alpha_t, c_{skip}, c_{out}, c_{in})`."""
        inv_alpha = jnp.exp(-sde.log_alpha(t))
        tilde2 = sde.variance(t) * inv_alpha**2
        s2 = self.sigma_data**2
        return (
            inv_alpha,
            s2 / (tilde2 + s2),
            jnp.sqrt(tilde2 * s2 / (tilde2 + s2)),
            jax.lax.rsqrt(tilde2 + s2),
        )

    def network_input(self, sde: SDE, x: jax.Array, t: jax.Array) -> jax.Array:
        """What the network is given in place of ``x``: :math:`c_{in}\\tilde x` for ``edm``."""
        if self.name != "edm":
            return x
        inv_alpha, _, _, c_in = self.edm_coefficients(sde, t)
        return c_in * (inv_alpha * x - self._mean(x))

    def to_eps(self, sde: SDE, x: jax.Array, t: jax.Array, out: jax.Array) -> jax.Array:
        """The noise :math:`\\hat\\epsilon` that the output ``out`` at ``x, t`` means."""
        if self.name == "eps":
            return out
        if self.name == "score":
            return sde.eps_from_score(out, t)
        if self.name == "x0":
            return sde.eps_from_x0(x, out, t)
        if self.name == "velocity":
            return sde.eps_from_velocity(x, out, t)
        if self.name == "v":
            alpha, sigma = jnp.exp(sde.log_alpha(t)), jnp.sqrt(sde.variance(t))
            r2 = alpha**2 + sigma**2
            return (alpha * jnp.sqrt(r2) * out + sigma * x) / r2
        inv_alpha, c_skip, c_out, _ = self.edm_coefficients(sde, t)
        mu = self._mean(x)
        return sde.eps_from_x0(x, mu + c_skip * (inv_alpha * x - mu) + c_out * out, t)

    def to_x0(self, sde: SDE, x: jax.Array, t: jax.Array, out: jax.Array) -> jax.Array:
        """The data :math:`\\hat x_0` that the output ``out`` at ``x, t`` means. From
        ``x0``, ``velocity`` (:math:`\\hat x_0 = (\\dot\\sigma x - \\sigma u)/(\\dot\\sigma
        \\alpha - \\sigma\\dot\\alpha)`, :math:`x - t u` on the straight path) and ``v``
        (:math:`(\\alpha x - \\sigma r v)/r^2`, :math:`r^2 = \\alpha^2 + \\sigma^2`) it is
        finite where :math:`\\alpha_t = 0`; the others pass through
        :math:`(x - \\sigma\\hat\\epsilon)/\\alpha`."""
        if self.name == "x0":
            return out
        alpha, sigma = jnp.exp(sde.log_alpha(t)), jnp.sqrt(sde.variance(t))
        if self.name == "velocity":
            d_alpha, d_sigma = sde.velocity_coefficients(t)
            return (d_sigma * x - sigma * out) / (d_sigma * alpha - sigma * d_alpha)
        if self.name == "v":
            r2 = alpha**2 + sigma**2
            return (alpha * x - sigma * jnp.sqrt(r2) * out) / r2
        return sde.x0_from_eps(x, self.to_eps(sde, x, t, out), t)

    def target(self, sde: SDE, x0: jax.Array, eps: jax.Array, t: jax.Array) -> jax.Array:
        """What the output should be for the example ``x0`` noised by ``eps`` at ``t``."""
        alpha, sigma = jnp.exp(sde.log_alpha(t)), jnp.sqrt(sde.variance(t))
        if self.name == "eps":
            return eps
        if self.name == "score":
            return -eps / sigma
        if self.name == "x0":
            return x0
        if self.name == "velocity":
            d_alpha, d_sigma = sde.velocity_coefficients(t)
            return d_alpha * x0 + d_sigma * eps
        if self.name == "v":
            return (alpha * eps - sigma * x0) * jax.lax.rsqrt(alpha**2 + sigma**2)
        inv_alpha, c_skip, c_out, _ = self.edm_coefficients(sde, t)
        x, mu = alpha * x0 + sigma * eps, self._mean(x0)
        return (x0 - mu - c_skip * (inv_alpha * x - mu)) / c_out


NAMES = ("eps", "score", "x0", "v", "velocity", "edm")


def get(
    name: str, sigma_data: float | None = None, data_mean: float | tuple | None = None
) -> Parametrisation:
    """The parametrisation ``name`` (checked)."""
    return Parametrisation(name, sigma_data, data_mean)
