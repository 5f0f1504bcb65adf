r"""Samplers: small frozen config objects with ``sample(sde, score_fn, key, shape) -> Samples``.

``score_fn(x, t)`` takes a batch ``x`` of ``shape`` and a scalar time and returns
:math:`\nabla_x \log p_t(x)`; it may be a trained model's or the exact ("oracle") score of a
known distribution, so every sampler can be checked on its own. Every sampler integrates
from the prior at ``T`` down to ``t_min`` on the process's grid and then, by default, takes
the denoising step :math:`\hat x_0 = (x + \sigma^2 \nabla\log p)/\alpha` at ``t_min``
(Tweedie's formula; for DDPM this *is* the last ancestral step). Every result reports its
number of score evaluations (NFE).

Grid samplers (one update per pair of grid times, a plain ``lax.scan``):

- :class:`Ancestral`: the exact posterior :math:`q(x_s | x_t, \hat x_0)` (DDPM; for VE
  processes the SMLD ancestral sampler of Song et al. 2021, appendix F).
- :class:`DDIM` with ``eta`` (Song, Meng & Ermon 2021); ``eta=0`` is deterministic and
  ``eta=1`` is ancestral sampling.
- :class:`EulerMaruyama`: the reverse-time SDE, one Euler-Maruyama step per grid interval.
- :class:`PredictorCorrector`: any grid sampler followed at each time by Langevin corrector
  steps with a signal-to-noise ratio ``snr`` (Song et al. 2021, algorithms 2-3).
- :class:`AnnealedLangevin`: NCSN's annealed Langevin dynamics (Song & Ermon 2019, alg. 1).

- :class:`Euler`: Euler's method on the probability-flow ODE written with the data
  prediction, which on flow matching's path can start at :math:`t = 1`.
- :class:`EDMHeun`: EDM's Heun sampler on the Karras noise grid (Karras et al. 2022); the
  multistep samplers (DPM-Solver++, UniPC, iPNDM) are in :mod:`zoo.multistep`, and the time
  grids of every fast sampler in :mod:`zoo.grids`.

Diffrax samplers:

- :class:`ReverseSDE`: the reverse-time SDE with any Diffrax SDE solver, fixed steps.
- :class:`ProbabilityFlow`: the probability-flow ODE with any Diffrax ODE solver, fixed or
  adaptive steps.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import lineax

from zoo import _checks
from zoo.grids import TimeGrid
from zoo.sdes import SDE

__all__ = [
    "Samples",
    "Predictions",
    "Sampler",
    "GridSampler",
    "Ancestral",
    "DDIM",
    "EulerMaruyama",
    "PredictorCorrector",
    "AnnealedLangevin",
    "ReverseSDE",
    "ProbabilityFlow",
    "EDMHeun",
    "Euler",
    "denoise",
    "function_evaluations",
]

ScoreFn = Callable[[jax.Array, jax.Array], jax.Array]


class Samples(NamedTuple):
    """What a sampler returns: samples ``x``, the number of score evaluations ``nfe``, and
    (when asked for) the ``trajectory`` at ``times``, decreasing from ``T``."""

    x: jax.Array
    nfe: jax.Array
    trajectory: jax.Array | None = None
    times: jax.Array | None = None


@dataclasses.dataclass(frozen=True)
class Predictions:
    """A score function that also gives the data prediction ``x0(x, t)`` of the same model:
    samplers call it as the score; :class:`Euler` reads ``x0``, which stays finite where the
    score no longer carries the data (:math:`\\alpha_t = 0`, flow matching's :math:`t = 1`,
    where :math:`\\hat x_0 = (x + \\sigma^2\\nabla\\log p)/\\alpha` is 0/0). A model's
    sampler gets one (:meth:`zoo.DiffusionModel.sample`), as does a Gaussian mixture's exact
    score (:func:`zoo.data.oracle_score`). ``x0_without_signal``: whether ``x0`` is finite
    where :math:`\\alpha_t = 0` (false for a network that predicts the noise or the score)."""

    score: ScoreFn
    x0: ScoreFn
    x0_without_signal: bool = True

    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        return self.score(x, t)


def denoise(sde: SDE, score_fn: ScoreFn, x: jax.Array, t: jax.Array) -> jax.Array:
    """Tweedie's formula: :math:`E[x_0 | x_t] = (x_t + \\sigma_t^2 \\nabla\\log p_t(x_t))
    / \\alpha_t`."""
    eps = sde.eps_from_score(score_fn(x, t), t)
    return sde.x0_from_eps(x, eps, t)


class Sampler(abc.ABC):
    """Base of all samplers. ``denoise``: finish with Tweedie's denoising step at ``t_min``."""

    denoise: bool

    def __post_init__(self):
        # every option of its annotated kind (a subclass checks its own bounds, then calls this)
        _checks.check_fields(self)

    @abc.abstractmethod
    def sample(
        self, sde: SDE, score_fn: ScoreFn, key: jax.Array, shape: tuple[int, ...]
    ) -> Samples:
        """Draw samples of the given batch ``shape`` (e.g. ``(n, d)``)."""

    def _finish(self, sde, score_fn, x, nfe, trajectory=None, times=None, t_end=None) -> Samples:
        """Tweedie's step at ``t_end`` (the last time integrated to; ``t_min`` by default)."""
        if self.denoise:
            t_end = sde.t_min if t_end is None else t_end
            x = denoise(sde, score_fn, x, jnp.asarray(t_end, jnp.float32))
            nfe = nfe + 1
        return Samples(x, jnp.asarray(nfe, jnp.int32), trajectory, times)


class GridSampler(Sampler):
    """A sampler that moves from each grid time ``t`` to the next, smaller one ``s`` by
    :meth:`step`. ``steps=None`` uses every level of a discrete schedule."""

    steps: int | None
    evaluations_per_step: int = 1

    @abc.abstractmethod
    def step(self, sde: SDE, score_fn: ScoreFn, key, x, t, s) -> jax.Array:
        """One update from time ``t`` to the earlier time ``s < t``."""

    def times(self, sde: SDE) -> jax.Array:
        """The grid, decreasing from ``T``: the process's own (every level of a discrete
        schedule, or a subsequence of them; uniform in time for a continuous SDE)."""
        return sde.grid(self.steps)

    def sample(self, sde, score_fn, key, shape):
        grid = self.times(sde)
        prior_key, key = jax.random.split(key)
        x = sde.prior_sample(prior_key, shape)

        def body(x, inputs):
            i, t, s = inputs
            return self.step(sde, score_fn, jax.random.fold_in(key, i), x, t, s), None

        index = jnp.arange(len(grid) - 1)
        x, _ = jax.lax.scan(body, x, (index, grid[:-1], grid[1:]))
        nfe = (len(grid) - 1) * self.evaluations_per_step
        return self._finish(sde, score_fn, x, nfe, t_end=grid[-1])


@dataclasses.dataclass(frozen=True)
class Ancestral(GridSampler):
    """Sample the Gaussian posterior :math:`q(x_s | x_t, x_0 = \\hat x_0(x_t))`:

    .. math::
        \\mu = \\frac{\\alpha_{t|s}\\sigma_s^2}{\\sigma_t^2} x_t
             + \\frac{\\alpha_s \\sigma_{t|s}^2}{\\sigma_t^2} \\hat x_0, \\qquad
        \\mathrm{var} = \\frac{\\sigma_{t|s}^2 \\sigma_s^2}{\\sigma_t^2}.

    On DDPM's own grid this is Ho et al.'s algorithm 2 with :math:`\\sigma_t^2 = \\tilde\\beta_t`.
    """

    steps: int | None = None
    denoise: bool = True

    def step(self, sde, score_fn, key, x, t, s):
        x0 = denoise(sde, score_fn, x, t)
        a_ts, s_ts = sde.transition(s, t)
        a_s, sig_s = jnp.exp(sde.log_alpha(s)), jnp.sqrt(sde.variance(s))
        var_t = sde.variance(t)
        mean = (a_ts * sig_s**2 / var_t) * x + (a_s * s_ts**2 / var_t) * x0
        std = s_ts * sig_s / jnp.sqrt(var_t)
        return mean + std * jax.random.normal(key, x.shape, x.dtype)


@dataclasses.dataclass(frozen=True)
class DDIM(GridSampler):
    """DDIM (Song, Meng & Ermon 2021, eq. 12) on any process:

    .. math::
        x_s = \\alpha_s \\hat x_0 + \\sqrt{\\sigma_s^2 - c^2}\\,\\hat\\epsilon + c z,\\quad
        c^2 = \\eta^2 \\frac{\\sigma_s^2}{\\sigma_t^2} \\sigma_{t|s}^2
            = \\eta^2 \\frac{\\sigma_s^2}{\\sigma_t^2}(\\sigma_t^2 - \\alpha_{t|s}^2 \\sigma_s^2),

    which for DDPM is the paper's :math:`\\sigma_t(\\eta)^2 = \\eta^2 \\frac{1-\\bar\\alpha_{t-1}}
    {1-\\bar\\alpha_t}(1 - \\bar\\alpha_t/\\bar\\alpha_{t-1})`.

    ``eta=0`` is deterministic (a first-order solver of the probability-flow ODE in the
    ``(x/alpha, sigma/alpha)`` variables); ``eta=1`` samples the same posterior as
    :class:`Ancestral`. ``grid=None`` steps on the process's own grid (for DDPM and NCSN a
    subsequence of their levels); a grid name (:mod:`zoo.grids`, with ``end`` and ``rho``)
    steps between the times of that grid instead, as the other fast samplers do.
    """

    steps: int | None = None
    eta: float = 0.0
    grid: str | None = None
    end: str = "t_min"
    rho: float = 7.0
    denoise: bool = True
    convergence_order = 1

    def __post_init__(self):
        if self.steps is not None:
            _checks.check_integer(self.steps, "steps", minimum=2, maximum=_checks.INT32_MAX)
        if isinstance(self.eta, bool) or not (
            isinstance(self.eta, (int, float)) and 0.0 <= self.eta <= 1.0
        ):
            raise ValueError(f"eta must lie in [0, 1], got {self.eta!r}")
        _checks.check_positive(self.rho, "rho")
        if self.grid is not None:
            TimeGrid(self.grid, self.end, self.rho)  # checks the options
            if self.steps is None:
                raise ValueError(f"DDIM(grid={self.grid!r}) needs steps, an integer >= 2")
        super().__post_init__()

    def times(self, sde):
        if self.grid is None:
            return sde.grid(self.steps)
        with jax.ensure_compile_time_eval():
            return TimeGrid(self.grid, self.end, self.rho).times(sde, self.steps)

    def step(self, sde, score_fn, key, x, t, s):
        eps = sde.eps_from_score(score_fn(x, t), t)
        x0 = sde.x0_from_eps(x, eps, t)
        _, s_ts = sde.transition(s, t)
        a_s, var_t, var_s = jnp.exp(sde.log_alpha(s)), sde.variance(t), sde.variance(s)
        c2 = jnp.clip(self.eta**2 * (var_s / var_t) * s_ts**2, 0.0, var_s)
        z = jax.random.normal(key, x.shape, x.dtype)
        return a_s * x0 + jnp.sqrt(var_s - c2) * eps + jnp.sqrt(c2) * z


@dataclasses.dataclass(frozen=True)
class EulerMaruyama(GridSampler):
    """Reverse-time SDE :math:`dx = [f x - g^2 \\nabla\\log p_t]dt + g\\,d\\bar W`, one
    Euler-Maruyama step per grid interval (a plain ``lax.scan``; see :class:`ReverseSDE`
    for the Diffrax version)."""

    steps: int | None = None
    denoise: bool = True

    def step(self, sde, score_fn, key, x, t, s):
        dt = t - s
        drift = sde.reverse_drift(x, t, score_fn(x, t))
        noise = jax.random.normal(key, x.shape, x.dtype)
        return x - drift * dt + sde.diffusion(t) * jnp.sqrt(dt) * noise


def langevin_step(score_fn, key, x, t, step_size):
    """:math:`x + \\tfrac{\\epsilon}{2}\\nabla\\log p_t(x) + \\sqrt{\\epsilon} z`."""
    noise = jax.random.normal(key, x.shape, x.dtype)
    return x + 0.5 * step_size * score_fn(x, t) + jnp.sqrt(step_size) * noise


@dataclasses.dataclass(frozen=True)
class PredictorCorrector(GridSampler):
    """Predictor-corrector sampling (Song et al. 2021, algorithms 2 and 3): after each
    predictor step to time ``s``, ``corrector_steps`` Langevin steps at ``s`` with the step
    size set by the signal-to-noise ratio,

    .. math:: \\epsilon = 2 \\alpha_{t|s}^2 (r \\|z\\| / \\|\\nabla\\log p_s\\|)^2,

    norms per example, averaged over the batch as in the reference code (:math:`\\alpha_{t|s}^2
    = 1 - \\beta_i` for VP, 1 for VE)."""

    predictor: GridSampler = dataclasses.field(default_factory=lambda: EulerMaruyama())
    snr: float = 0.16
    corrector_steps: int = 1
    denoise: bool = True

    def __post_init__(self):
        if not isinstance(self.predictor, GridSampler) or isinstance(
            self.predictor, PredictorCorrector
        ):
            raise TypeError(
                "predictor must be a grid sampler (Ancestral, DDIM, EulerMaruyama), "
                f"got {self.predictor!r}"
            )
        _checks.check_positive(self.snr, "snr")
        _checks.check_integer(self.corrector_steps, "corrector_steps")
        super().__post_init__()

    @property
    def steps(self):
        return self.predictor.steps

    @property
    def evaluations_per_step(self):
        return self.predictor.evaluations_per_step + self.corrector_steps

    def times(self, sde):
        return self.predictor.times(sde)

    def step(self, sde, score_fn, key, x, t, s):
        predictor_key, *corrector_keys = jax.random.split(key, 1 + self.corrector_steps)
        x = self.predictor.step(sde, score_fn, predictor_key, x, t, s)
        a_ts, _ = sde.transition(s, t)
        for noise_key in corrector_keys:
            grad = score_fn(x, s)
            noise = jax.random.normal(noise_key, x.shape, x.dtype)
            grad_norm = jnp.mean(_per_example_norm(grad))
            noise_norm = jnp.mean(_per_example_norm(noise))
            step_size = 2.0 * a_ts**2 * (self.snr * noise_norm / grad_norm) ** 2
            x = x + step_size * grad + jnp.sqrt(2.0 * step_size) * noise
        return x


def _per_example_norm(x):
    return jnp.sqrt(jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=-1))


@dataclasses.dataclass(frozen=True)
class AnnealedLangevin(Sampler):
    """NCSN's annealed Langevin dynamics (Song & Ermon 2019, algorithm 1).

    Starting from the prior (:math:`N(0, (1+\\sigma_1^2) I)` for NCSN), at each level
    :math:`\\sigma_i` from the largest down run ``steps_per_level`` Langevin steps with
    :math:`\\alpha_i = \\epsilon\\,\\sigma_i^2/\\sigma_L^2`. ``levels=None`` uses every level of a
    discrete schedule.
    """

    levels: int | None = None
    steps_per_level: int = 100
    step_size: float = 2e-5
    denoise: bool = True

    def __post_init__(self):
        if self.levels is not None:
            _checks.check_integer(self.levels, "levels", minimum=2)
        _checks.check_integer(self.steps_per_level, "steps_per_level", maximum=_checks.INT32_MAX)
        _checks.check_positive(self.step_size, "step_size")
        super().__post_init__()

    def sample(self, sde, score_fn, key, shape):
        grid = sde.grid(self.levels)
        prior_key, key = jax.random.split(key)
        x = sde.prior_sample(prior_key, shape)
        var_min = sde.variance(jnp.asarray(sde.t_min, jnp.float32))

        def level(x, inputs):
            i, t = inputs
            alpha = self.step_size * sde.variance(t) / var_min
            level_key = jax.random.fold_in(key, i)

            def inner(x, j):
                return langevin_step(score_fn, jax.random.fold_in(level_key, j), x, t, alpha), None

            x, _ = jax.lax.scan(inner, x, jnp.arange(self.steps_per_level))
            return x, None

        x, _ = jax.lax.scan(level, x, (jnp.arange(len(grid)), grid))
        return self._finish(sde, score_fn, x, len(grid) * self.steps_per_level)


# --- EDM's Heun sampler --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EDMHeun(Sampler):
    r"""EDM's deterministic sampler (Karras et al. 2022, arXiv 2206.00364, algorithm 1) on any
    process: in the scaled variables :math:`y = x/\alpha_t` and
    :math:`\tilde\sigma = \sigma_t/\alpha_t` the probability-flow ODE reads
    :math:`dy/d\tilde\sigma = (y - \hat x_0)/\tilde\sigma`; each step from
    :math:`\tilde\sigma_i` to :math:`\tilde\sigma_{i+1}` is an Euler step corrected by the
    average of the two slopes (Heun), on the Karras grid (``rho``; or any grid of
    :mod:`zoo.grids`).

    ``steps`` grid times cost :math:`2(N-1)` score evaluations; the final denoising step is
    the algorithm's last Euler step to :math:`\tilde\sigma = 0`
    (:math:`y + (0 - \tilde\sigma)(y - \hat x_0)/\tilde\sigma = \hat x_0`), so the total is
    Karras's :math:`2N - 1`.
    """

    steps: int = 18
    rho: float = 7.0
    grid: str = "karras"
    end: str = "t_min"
    denoise: bool = True
    convergence_order = 2

    def __post_init__(self):
        _checks.check_integer(self.steps, "steps", minimum=2, maximum=_checks.INT32_MAX)
        TimeGrid(self.grid, self.end, self.rho)  # checks the options
        if self.end == "zero" and not self.denoise:
            raise ValueError("end='zero' ends with the denoising step: it needs denoise=True")
        super().__post_init__()

    def times(self, sde: SDE) -> jax.Array:
        with jax.ensure_compile_time_eval():
            return TimeGrid(self.grid, self.end, self.rho).times(sde, self.steps)

    def sample(self, sde, score_fn, key, shape):
        times = self.times(sde)
        x = sde.prior_sample(key, shape)

        def scaled(t):
            return jnp.exp(-sde.log_snr(t)), jnp.exp(sde.log_alpha(t))  # sigma/alpha, alpha

        def slope(y, t, sigma, alpha):
            return (y - denoise(sde, score_fn, alpha * y, t)) / sigma

        def body(y, inputs):
            t, s = inputs
            (sigma_t, alpha_t), (sigma_s, alpha_s) = scaled(t), scaled(s)
            d = slope(y, t, sigma_t, alpha_t)
            euler = y + (sigma_s - sigma_t) * d
            return y + (sigma_s - sigma_t) * 0.5 * (d + slope(euler, s, sigma_s, alpha_s)), None

        _, alpha_T = scaled(times[0])
        y, _ = jax.lax.scan(body, x / alpha_T, (times[:-1], times[1:]))
        _, alpha_end = scaled(times[-1])
        nfe = 2 * (self.steps - 1)
        return self._finish(sde, score_fn, alpha_end * y, nfe, t_end=times[-1])


# --- Diffrax samplers -------------------------------------------------------------------------


def function_evaluations(solver: diffrax.AbstractSolver, num_steps):
    """Score evaluations of ``num_steps`` steps of a Diffrax Runge-Kutta ``solver``, from its
    Butcher tableau: :math:`s` stages per step, :math:`s n`, or :math:`1 + (s - 1) n` when the
    last stage of a step is the first of the next (first-same-as-last: Tsit5 and Dopri5,
    :math:`s = 7`). A solver without a tableau (Euler) evaluates once per step: :math:`n`.
    ``num_steps`` may be traced (Diffrax's ``sol.stats["num_steps"]``)."""
    tableau = getattr(solver, "tableau", None)
    if tableau is None or not hasattr(tableau, "c"):
        return num_steps  # Euler and other one-evaluation solvers
    stages = len(tableau.c) + 1
    if tableau.fsal:
        return 1 + num_steps * (stages - 1)
    return num_steps * stages


def _saveat(sde, trajectory_points):
    if trajectory_points:
        return diffrax.SaveAt(ts=jnp.linspace(sde.T, sde.t_min, trajectory_points)), jnp.linspace(
            sde.T, sde.t_min, trajectory_points
        )
    return diffrax.SaveAt(t1=True), None


@dataclasses.dataclass(frozen=True)
class Euler(Sampler):
    """Euler's method on the probability-flow ODE written with the data prediction
    (:meth:`zoo.sdes.SDE.probability_flow_from_x0`),

    .. math:: x_s = x_t + (s - t)\\Big[\\frac{\\dot\\sigma_t}{\\sigma_t} x_t
        + \\Big(\\dot\\alpha_t - \\frac{\\dot\\sigma_t}{\\sigma_t}\\alpha_t\\Big)
        \\hat x_0(x_t, t)\\Big],

    ``steps`` steps uniform in :math:`t` down to ``t_min``, then Tweedie's step (``steps + 1``
    evaluations). On flow matching's straight path the bracket is the velocity
    :math:`(x_t - \\hat x_0)/t` and the step is DDIM's.

    ``start="T"``: from the process's ``T`` and prior, as every sampler. ``start="noise"``:
    from the time where the data is gone (``sde.noise_time``; :math:`t = 1` on
    :class:`zoo.sdes.FlowPath`, whose ``T`` is below it) and the exact marginal there,
    :math:`N(0, I)`. There the first step moves every point by the network's
    :math:`\\hat x_0(x, 1)`, its estimate of the data's mean, which the score cannot give
    (:class:`Predictions`): a plain score function is refused.
    """

    steps: int = 100
    start: str = "T"
    denoise: bool = True

    def __post_init__(self):
        _checks.check_integer(self.steps, "steps", minimum=1, maximum=_checks.INT32_MAX)
        if self.start not in ("T", "noise"):
            raise ValueError(f'start must be "T" or "noise", got {self.start!r}')
        super().__post_init__()

    def times(self, sde: SDE) -> jax.Array:
        """``steps + 1`` times uniform from the start down to ``t_min``."""
        if self.start == "T":
            return jnp.linspace(sde.T, sde.t_min, self.steps + 1)
        if sde.noise_time is None:
            raise ValueError(
                f'Euler(start="noise") needs a process whose data is gone at a finite time '
                f'(FlowPath: t = 1); {type(sde).__name__} has none: use start="T"'
            )
        return jnp.linspace(sde.noise_time, sde.t_min, self.steps + 1)

    def sample(self, sde, score_fn, key, shape):
        if self.start == "noise" and not isinstance(score_fn, Predictions):
            raise TypeError(
                'Euler(start="noise") reads the data prediction x0(x, t) where the score is '
                "blind to the data (alpha = 0): give a zoo.samplers.Predictions (a model's "
                'sampler gets one), or use start="T"'
            )
        if self.start == "noise" and not score_fn.x0_without_signal:
            raise ValueError(
                'Euler(start="noise") needs x0 where alpha = 0, which a network predicting the '
                'noise or the score cannot give (0/0): predict "velocity", "x0" or "v", or use '
                'start="T"'
            )
        grid = self.times(sde)
        if self.start == "T":
            x = sde.prior_sample(key, shape)
        else:  # x_1 = eps exactly
            x = jnp.sqrt(sde.variance(grid[0])) * jax.random.normal(key, shape)

        def x0_of(x, t):
            if isinstance(score_fn, Predictions):
                return score_fn.x0(x, t)
            return denoise(sde, score_fn, x, t)

        def body(x, ts):
            t, s = ts
            return x + (s - t) * sde.probability_flow_from_x0(x, x0_of(x, t), t), None

        x, _ = jax.lax.scan(body, x, (grid[:-1], grid[1:]))
        return self._finish(sde, score_fn, x, self.steps)


@dataclasses.dataclass(frozen=True)
class ProbabilityFlow(Sampler):
    """Integrate the probability-flow ODE :math:`dx/dt = f x - \\tfrac12 g^2 \\nabla\\log p_t`
    from ``T`` to ``t_min`` with a Diffrax ``solver``.

    ``steps=None``: adaptive steps (PID controller with ``rtol``/``atol``; the solver must
    have an error estimate, e.g. Tsit5, Dopri5, Heun); ``steps=n``: the process's grid of
    ``n`` times (every level of a discrete schedule when ``n`` equals their number).
    ``trajectory_points`` > 0 also returns the state at that many evenly spaced times.
    """

    solver: diffrax.AbstractSolver = dataclasses.field(default_factory=diffrax.Tsit5)
    steps: int | None = None
    rtol: float = 1e-5
    atol: float = 1e-5
    max_steps: int = 4096
    trajectory_points: int = 0
    denoise: bool = True

    def __post_init__(self):
        if not isinstance(self.solver, diffrax.AbstractSolver):
            raise TypeError(f"solver must be a Diffrax solver (e.g. Tsit5()), got {self.solver!r}")
        if self.steps is not None:
            _checks.check_integer(self.steps, "steps", minimum=2, maximum=_checks.INT32_MAX)
        _checks.check_positive(self.rtol, "rtol")
        _checks.check_positive(self.atol, "atol")
        _checks.check_integer(self.max_steps, "max_steps")
        _checks.check_integer(self.trajectory_points, "trajectory_points", minimum=0)
        super().__post_init__()

    def sample(self, sde, score_fn, key, shape):
        x = sde.prior_sample(key, shape)
        if self.steps is None:
            controller = diffrax.PIDController(rtol=self.rtol, atol=self.atol)
        else:
            grid = sde.grid(self.steps)
            if len(grid) - 1 > self.max_steps:
                raise ValueError(
                    f"ProbabilityFlow(steps={self.steps}) takes {len(grid) - 1} solver steps, "
                    f"more than max_steps={self.max_steps}: raise max_steps to {len(grid) - 1}"
                )
            controller = diffrax.StepTo(grid)
        term = diffrax.ODETerm(lambda t, y, args: sde.probability_flow(y, t, score_fn(y, t)))
        saveat, times = _saveat(sde, self.trajectory_points)
        sol = diffrax.diffeqsolve(
            term, self.solver, t0=sde.T, t1=sde.t_min, dt0=None, y0=x, saveat=saveat,
            stepsize_controller=controller, max_steps=self.max_steps,
            adjoint=diffrax.DirectAdjoint(), throw=False,
        )  # fmt: skip
        ys = _checks.check_solution(sol, sol.ys, who="ProbabilityFlow", max_steps=self.max_steps)
        nfe = function_evaluations(self.solver, sol.stats["num_steps"])
        trajectory = ys if self.trajectory_points else None
        return self._finish(sde, score_fn, ys[-1], nfe, trajectory, times)


@dataclasses.dataclass(frozen=True)
class ReverseSDE(Sampler):
    """Integrate the reverse-time SDE with a Diffrax SDE ``solver`` on the process's grid of
    ``steps`` times, in the reversed time :math:`u = T - t`, where it reads

    .. math:: dy = -[f y - g^2 \\nabla\\log p_{T-u}(y)]\\,du + g(T-u)\\,dW_u.

    The Brownian motion is a :class:`diffrax.UnsafeBrownianPath`, which draws each increment
    afresh: enough for fixed steps without gradients through the solve, as here (a
    ``VirtualBrownianTree``, needed for adaptive steps or backpropagation, answers any interval
    of one fixed path at the cost of a tree descent per increment). Measured on this project's
    CPU (``benchmarks/results/speed-cpu``, ``zoo-bench speed``: 500 points, 1000 Euler steps,
    median of 5), it took 1.06x the time of :class:`EulerMaruyama`'s ``lax.scan``.
    """

    solver: diffrax.AbstractSolver = dataclasses.field(default_factory=diffrax.Euler)
    steps: int | None = None
    trajectory_points: int = 0
    denoise: bool = True

    def __post_init__(self):
        if self.steps is not None:
            _checks.check_integer(self.steps, "steps", minimum=2, maximum=_checks.INT32_MAX)
        _checks.check_integer(self.trajectory_points, "trajectory_points", minimum=0)
        super().__post_init__()

    def sample(self, sde, score_fn, key, shape):
        prior_key, noise_key = jax.random.split(key)
        x = sde.prior_sample(prior_key, shape)
        ts = sde.T - sde.grid(self.steps)  # increasing from 0 to T - t_min

        def drift(u, y, args):
            t = sde.T - u
            return -sde.reverse_drift(y, t, score_fn(y, t))

        def diffusion(u, y, args):
            return lineax.DiagonalLinearOperator(sde.diffusion(sde.T - u) * jnp.ones_like(y))

        brownian = diffrax.UnsafeBrownianPath(shape=shape, key=noise_key)
        terms = diffrax.MultiTerm(diffrax.ODETerm(drift), diffrax.ControlTerm(diffusion, brownian))
        saveat, times = _saveat(sde, self.trajectory_points)
        if self.trajectory_points:
            saveat = diffrax.SaveAt(ts=sde.T - times)
        sol = diffrax.diffeqsolve(
            terms, self.solver, t0=ts[0], t1=ts[-1], dt0=None, y0=x, saveat=saveat,
            stepsize_controller=diffrax.StepTo(ts), max_steps=len(ts),
            adjoint=diffrax.DirectAdjoint(),
        )  # fmt: skip
        nfe = function_evaluations(self.solver, sol.stats["num_steps"])
        trajectory = sol.ys if self.trajectory_points else None
        return self._finish(sde, score_fn, sol.ys[-1], nfe, trajectory, times)
