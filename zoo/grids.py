r"""Time grids of the fast samplers: where a sampler with a budget of N score evaluations asks.

A grid is uniform in one variable :math:`u(t)` of the process, decreasing from ``T`` to its
last time :math:`t_{end}`:

- ``"time"``: :math:`u = t` (DDIM's uniform skip; the linspace of the widely used schedulers);
- ``"log_snr"``: :math:`u = \lambda_t = \log(\alpha_t/\sigma_t)` (DPM-Solver, Lu et al. 2022);
- ``"karras"``: :math:`u = \tilde\sigma_t^{1/\rho}`, :math:`\tilde\sigma = \sigma_t/\alpha_t`
  (Karras et al. 2022, eq. 5; ``rho = 7``);
- ``"quadratic"``: :math:`u = \sqrt t` (DDIM's quadratic skip, Song, Meng & Ermon 2021).

Where it ends (``end``):

- ``"t_min"``: :math:`t_{end}` is the process's ``t_min``;
- ``"zero"``: the grid is built with one more point, at zero noise (:math:`u(0)`: ``t = 0``,
  :math:`\tilde\sigma = 0`), and that point dropped: the sampler's last step into zero noise
  is its final denoising step :math:`\hat x_0`. ``"log_snr"`` has no zero-noise point
  (:math:`\lambda = \infty`) and refuses it.

Each is a frozen :class:`TimeGrid`; ``TimeGrid(...).times(sde, n)`` gives the ``n`` times.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from zoo import _checks
from zoo.sdes import SDE

__all__ = ["SPACINGS", "ENDS", "TimeGrid"]

SPACINGS = ("time", "log_snr", "karras", "quadratic")
ENDS = ("t_min", "zero")


@dataclasses.dataclass(frozen=True)
class TimeGrid:
    """Times uniform in the ``spacing`` variable from ``T`` to the grid's ``end``."""

    spacing: str = "log_snr"
    end: str = "t_min"
    rho: float = 7.0

    def __post_init__(self):
        if self.spacing not in SPACINGS:
            raise ValueError(f"grid must be one of {', '.join(SPACINGS)}; got {self.spacing!r}")
        if self.end not in ENDS:
            raise ValueError(f"end must be one of {', '.join(ENDS)}; got {self.end!r}")
        if self.end == "zero" and self.spacing not in ("time", "quadratic"):
            raise ValueError(
                f"end='zero' is for the grids that reach t = 0 (time, quadratic), "
                f"not {self.spacing!r}"
            )
        _checks.check_positive(self.rho, "rho")

    def times(self, sde: SDE, n: int) -> jax.Array:
        """``n`` decreasing times, the first ``T``, the last ``t_min`` (``end="t_min"``) or
        one grid step above zero noise (``end="zero"``)."""
        n = _checks.check_integer(n, "steps", minimum=2)
        ends = jnp.asarray([sde.T, sde.t_min], jnp.float32)
        points = n if self.end == "t_min" else n + 1
        fraction = jnp.linspace(0.0, 1.0, points)
        if self.spacing == "time":
            end = ends[1] if self.end == "t_min" else 0.0
            times = ends[0] + fraction * (end - ends[0])
        elif self.spacing == "quadratic":
            end = jnp.sqrt(ends[1]) if self.end == "t_min" else 0.0
            times = (jnp.sqrt(ends[0]) + fraction * (end - jnp.sqrt(ends[0]))) ** 2
        elif self.spacing == "log_snr":
            lam = sde.log_snr(ends)
            times = sde.time_at_log_snr(lam[0] + fraction * (lam[1] - lam[0]))
        else:  # karras
            root_max, root_min = jnp.exp(-sde.log_snr(ends) / self.rho)
            sigma = (root_max + fraction * (root_min - root_max)) ** self.rho
            times = sde.time_at_log_snr(-jnp.log(sigma))
        times = times[:n]
        # The maps back to time are exact to float32 rounding; the first time is T exactly.
        times = times.at[0].set(sde.T)
        if self.end == "t_min":
            times = times.at[-1].set(sde.t_min)
        return jnp.maximum(times, sde.t_min)
