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
- ``"zero"`` (``"time"`` and ``"quadratic"``): the grid is built with one more point, at
  ``t = 0``, and that point dropped; the sampler's last step, to ``t = 0``, is its final
  denoising step :math:`\hat x_0` (zero noise for DDPM, VP and sub-VP; for NCSN and VE,
  whose noise at ``t = 0`` is their smallest, it is the step the widely used schedulers
  take there).

Each is a frozen :class:`TimeGrid`; ``TimeGrid(...).times(sde, n)`` gives the ``n`` times.
A sampler also takes the times themselves (a tuple, decreasing from ``T``), such as those
:func:`optimised_grid` fits to a score.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from zoo import _checks
from zoo.sdes import SDE

__all__ = ["SPACINGS", "ENDS", "TimeGrid", "optimal_steps", "optimised_grid"]

SPACINGS = ("time", "log_snr", "karras", "quadratic")
ENDS = ("t_min", "zero")


@dataclasses.dataclass(frozen=True)
class TimeGrid:
    """Times uniform in the ``spacing`` variable from ``T`` to the grid's ``end``."""

    spacing: str | tuple[float, ...] = "log_snr"
    end: str = "t_min"
    rho: float = 7.0

    def __post_init__(self):
        if isinstance(self.spacing, tuple):
            given = np.asarray(self.spacing, np.float64)
            if given.ndim != 1 or given.size < 2 or not np.all(np.diff(given) < 0):
                raise ValueError(
                    f"grid given as times must be a tuple of >= 2 decreasing numbers, "
                    f"got {self.spacing!r}"
                )
            return
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
        n = _checks.check_integer(n, "steps", minimum=2, maximum=_checks.INT32_MAX)
        if isinstance(self.spacing, tuple):
            return self._given(sde, n)
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
        times = jnp.maximum(times, sde.t_min)
        if _checks.is_concrete(times) and not np.all(np.diff(np.asarray(times)) < 0):
            raise ValueError(
                f"{n} times of the {self.spacing} grid ending at {self.end} do not all lie "
                f"above t_min = {sde.t_min:g} of {type(sde).__name__}: take fewer steps or "
                "end='t_min'"
            )
        return times

    def _given(self, sde: SDE, n: int) -> jax.Array:
        times = np.asarray(self.spacing, np.float64)
        if len(times) != n:
            raise ValueError(f"the grid given has {len(times)} times; this sampler needs {n}")
        sde.check_time(times, "grid")
        return jnp.asarray(times, jnp.float32)


def optimal_steps(cost: np.ndarray, steps: int) -> list[int]:
    """The path ``0 = i_0 < i_1 < ... < i_steps = M`` through the points of a fine grid that
    minimises the summed ``cost[i_k, i_k+1]`` ([M+1, M+1], only ``i < j`` read), by dynamic
    programming over (steps taken, point reached): :math:`O(N M^2)`."""
    m = cost.shape[0] - 1
    if not 1 <= steps <= m:
        raise ValueError(f"steps must lie in [1, {m}] for a fine grid of {m} steps, got {steps}")
    best = np.full((steps + 1, m + 1), np.inf)
    came = np.zeros((steps + 1, m + 1), int)
    best[0, 0] = 0.0
    upper = np.triu(cost, 1) + np.tril(np.full_like(cost, np.inf))  # i < j only
    for k in range(1, steps + 1):
        total = best[k - 1][:, None] + upper  # [from, to]
        came[k] = np.argmin(total, axis=0)
        best[k] = total[came[k], np.arange(m + 1)]
    path = [m]
    for k in range(steps, 0, -1):
        path.append(int(came[k, path[-1]]))
    return path[::-1]


def optimised_grid(
    sde: SDE,
    score_fn,
    key: jax.Array,
    steps: int,
    *,
    samples: int = 1000,
    fine: int = 100,
    event_shape: tuple[int, ...] = (2,),
) -> tuple[float, ...]:
    r"""A grid of ``steps + 1`` times fitted to one score by GITS (Chen et al. 2024, arXiv
    2405.11326): a teacher solves the probability-flow ODE on a ``fine`` grid (UniPC of order
    3 on the process's default grid) from ``samples`` prior draws; the cost of going from fine
    point :math:`i` to :math:`j` in one DDIM step is the mean squared distance of that step's
    end from the teacher's point :math:`j`; :func:`optimal_steps` picks the cheapest path of
    ``steps`` steps. The grid suits the data ``score_fn`` describes: judge it on other data.
    Pass it to a sampler as ``grid=`` with ``steps`` steps and ``denoise=False``."""
    from zoo import multistep

    fine = _checks.check_integer(fine, "fine", minimum=2)
    steps = _checks.check_integer(steps, "steps")
    _checks.check_integer(samples, "samples")
    if steps > fine:  # before the teacher's solve, not after it
        raise ValueError(
            f"steps must lie in [1, {fine}] for a fine grid of {fine} steps, got {steps}"
        )
    teacher = multistep.UniPC(fine, order=3, trajectory=True)
    with jax.ensure_compile_time_eval():
        times = np.asarray(teacher.times(sde), np.float64)
    run = jax.jit(lambda k: teacher.sample(sde, score_fn, k, (samples, *event_shape)))
    path = run(key).trajectory  # [fine + 1, samples, ...]
    s = multistep.schedule(sde, times)

    def x0(x, t):
        return sde.x0_from_eps(x, sde.eps_from_score(score_fn(x, t), t), t)

    predictions = jax.jit(jax.vmap(x0))(path, jnp.asarray(times, jnp.float32))
    path, predictions = np.asarray(path, np.float64), np.asarray(predictions, np.float64)
    cost = np.full((fine + 1, fine + 1), np.inf)
    for i in range(fine):
        h = s.lam[i + 1 :] - s.lam[i]
        a = (s.sigma[i + 1 :] / s.sigma[i]).reshape(-1, *[1] * path[i].ndim)
        c = (s.alpha[i + 1 :] * -np.expm1(-h)).reshape(a.shape)
        ddim = a * path[i] + c * predictions[i]  # [fine - i, samples, ...]
        error = (ddim - path[i + 1 :]).reshape(fine - i, samples, -1)
        cost[i, i + 1 :] = np.mean(np.sum(error**2, axis=-1), axis=-1)
    return tuple(float(times[i]) for i in optimal_steps(cost, steps))
