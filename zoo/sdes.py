r"""Forward noising processes, all behind one interface.

Every process here is a linear SDE with the Gaussian marginal

.. math::
    x_t = \alpha_t x_0 + \sigma_t \epsilon, \qquad \epsilon \sim N(0, I),

and each is defined by that marginal alone: a subclass gives :math:`\log\alpha_t` and
:math:`\sigma_t^2`; the SDE :math:`dx = f(t)\,x\,dt + g(t)\,dW` is derived from them once,

.. math::
    f(t) = \frac{d \log\alpha_t}{dt}, \qquad g(t)^2 = \frac{d\sigma_t^2}{dt} - 2 f(t) \sigma_t^2,

by forward-mode autodiff (as vdm does), and so are the reverse-time drift
:math:`f x - g^2 \nabla\log p_t` and the probability-flow drift
:math:`f x - \tfrac12 g^2 \nabla\log p_t` (Song et al. 2021, eqs. 6 and 13).

The discrete DDPM (betas) and NCSN (sigmas) schedules are processes of the same kind whose
marginal is known at a finite set of levels and interpolated between them: their continuous
limits are the VP and VE SDEs, so every sampler works for every process.

All functions are per example and broadcast over any shape; batch with ``jax.vmap`` or by
passing arrays.
"""

from __future__ import annotations

import abc
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from zoo._checks import is_concrete

__all__ = [
    "SDE",
    "VP",
    "SubVP",
    "VE",
    "FlowPath",
    "DDPMSchedule",
    "NCSNSchedule",
    "ddpm_linear",
    "ncsn_geometric",
]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _require_finite(process, *names: str) -> None:
    """Each named field of ``process`` a finite real number: an infinite ``T`` or ``beta_max``
    passes every ordering check and gives NaN marginals."""
    for name in names:
        value = getattr(process, name)
        _require(
            isinstance(value, (int, float, np.floating, np.integer))
            and not isinstance(value, bool)
            and math.isfinite(value),
            f"{name} must be a finite number, got {value!r}",
        )


class SDE(abc.ABC):
    """A forward process :math:`x_t = \\alpha_t x_0 + \\sigma_t \\epsilon` on ``[t_min, T]``.

    Subclasses implement :meth:`log_alpha` and :meth:`variance` (of the noise,
    :math:`\\sigma_t^2`) and set ``T`` and ``t_min``; everything else is derived here.
    """

    T: float
    t_min: float
    #: the time grid of the fast samplers when they are given none (:mod:`zoo.grids`): steps
    #: uniform in the log-SNR for variance-exploding processes, whose log-SNR is linear in t
    default_grid: str = "log_snr"
    #: the time at which the marginal is pure noise (:math:`\alpha = 0`), beyond ``T``, where
    #: a sampler that reads the data prediction may start (:class:`zoo.samplers.Euler`);
    #: ``None``: no such time (every process but :class:`FlowPath`)
    noise_time: float | None = None

    # --- what a process defines -------------------------------------------------------------

    @abc.abstractmethod
    def log_alpha(self, t: jax.Array) -> jax.Array:
        """:math:`\\log \\alpha_t`, the log of the signal coefficient."""

    @abc.abstractmethod
    def variance(self, t: jax.Array) -> jax.Array:
        """:math:`\\sigma_t^2`, the variance of the added noise."""

    # --- the marginal and the SDE, derived --------------------------------------------------

    def check_time(self, t: jax.Array, name: str = "t") -> jax.Array:
        """Raise if a concrete ``t`` lies outside ``[t_min, T]``; traced values pass through."""
        if is_concrete(t):
            tv = np.asarray(t, dtype=np.float64)
            tol = 1e-6 * max(1.0, self.T)
            bad = (tv < self.t_min - tol) | (tv > self.T + tol) | ~np.isfinite(tv)
            if np.any(bad):
                raise ValueError(
                    f"{name} must lie in [t_min, T] = [{self.t_min:g}, {self.T:g}] for "
                    f"{type(self).__name__}; got {tv[bad].ravel()[:3].tolist()}"
                )
        return jnp.asarray(t, dtype=jnp.result_type(float))

    def marginal(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """:math:`(\\alpha_t, \\sigma_t)` with :math:`x_t = \\alpha_t x_0 + \\sigma_t \\epsilon`."""
        t = self.check_time(t)
        return jnp.exp(self.log_alpha(t)), jnp.sqrt(self.variance(t))

    def drift_coefficient(self, t: jax.Array) -> jax.Array:
        """:math:`f(t) = d\\log\\alpha_t/dt`."""
        return _derivative(self.log_alpha, t)

    def diffusion(self, t: jax.Array) -> jax.Array:
        """:math:`g(t) = \\sqrt{d\\sigma_t^2/dt - 2 f(t)\\sigma_t^2}`."""
        g2 = _derivative(self.variance, t) - 2.0 * self.drift_coefficient(t) * self.variance(t)
        return jnp.sqrt(jnp.maximum(g2, 0.0))

    def drift(self, x: jax.Array, t: jax.Array) -> jax.Array:
        """Forward drift :math:`f(t)\\,x`."""
        return self.drift_coefficient(t) * x

    def reverse_drift(self, x: jax.Array, t: jax.Array, score: jax.Array) -> jax.Array:
        """Drift of the reverse-time SDE, :math:`f x - g^2 \\nabla_x \\log p_t(x)`
        (integrated from T down to 0)."""
        return self.drift(x, t) - self.diffusion(t) ** 2 * score

    def probability_flow(self, x: jax.Array, t: jax.Array, score: jax.Array) -> jax.Array:
        """Probability-flow ODE drift :math:`f x - \\tfrac12 g^2 \\nabla_x \\log p_t(x)`."""
        return self.drift(x, t) - 0.5 * self.diffusion(t) ** 2 * score

    def probability_flow_from_x0(self, x: jax.Array, x0: jax.Array, t: jax.Array) -> jax.Array:
        """The same drift written with the data prediction :math:`\\hat x_0` in place of the
        score :math:`-(x - \\alpha_t \\hat x_0)/\\sigma_t^2`:

        .. math:: \\frac{dx}{dt} = \\frac{\\dot\\sigma_t}{\\sigma_t} x
            + \\Big(\\dot\\alpha_t - \\frac{\\dot\\sigma_t}{\\sigma_t}\\alpha_t\\Big) \\hat x_0,

        finite wherever :math:`\\sigma_t > 0`, also where :math:`\\alpha_t = 0` (on
        :class:`FlowPath`, :math:`(x - \\hat x_0)/t`: the velocity, at :math:`t = 1` too)."""
        alpha, sigma = jnp.exp(self.log_alpha(t)), jnp.sqrt(self.variance(t))
        d_alpha, d_sigma = self.velocity_coefficients(t)
        return (d_sigma / sigma) * x + (d_alpha - d_sigma * alpha / sigma) * x0

    def transition(self, s: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """:math:`(\\alpha_{t|s}, \\sigma_{t|s})` of :math:`x_t | x_s` for ``s <= t``.

        :math:`\\alpha_{t|s} = \\alpha_t/\\alpha_s`, :math:`\\sigma^2_{t|s} = \\sigma_t^2 -
        \\alpha_{t|s}^2 \\sigma_s^2`.
        """
        log_a = self.log_alpha(t) - self.log_alpha(s)
        var = self.variance(t) - jnp.exp(2.0 * log_a) * self.variance(s)
        return jnp.exp(log_a), jnp.sqrt(jnp.maximum(var, 0.0))

    def perturb(self, key: jax.Array, x0: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Draw :math:`x_t \\sim q(x_t | x_0)`; returns ``(x_t, eps)``."""
        alpha, sigma = self.marginal(t)
        eps = jax.random.normal(key, jnp.shape(x0), jnp.result_type(x0))
        return alpha * x0 + sigma * eps, eps

    def log_snr(self, t: jax.Array) -> jax.Array:
        """Half the log signal-to-noise ratio, :math:`\\lambda_t = \\log(\\alpha_t/\\sigma_t)`,
        decreasing in ``t`` for every process here (DPM-Solver's time variable)."""
        return self.log_alpha(t) - 0.5 * jnp.log(self.variance(t))

    def time_at_log_snr(self, log_snr: jax.Array, iterations: int = 64) -> jax.Array:
        """The time :math:`t \\in [t_{min}, T]` with :math:`\\lambda_t` = ``log_snr``
        (clipped to the process's range), by bisection: :math:`\\lambda` is monotone, and
        bisection needs nothing else of a process, so any process inverts this way. VP,
        sub-VP and VE override it with their closed forms (the importance sampler of the
        likelihood weighting calls it at every training step); the tests hold them to it."""
        target = jnp.asarray(log_snr, jnp.result_type(float))
        lo = jnp.full_like(target, self.t_min)  # lambda(lo) >= target
        hi = jnp.full_like(target, self.T)  # lambda(hi) <= target

        def halve(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            above = self.log_snr(mid) > target
            return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

        lo, hi = jax.lax.fori_loop(0, iterations, halve, (lo, hi))
        return 0.5 * (lo + hi)

    # --- conversions between what a network may predict -------------------------------------

    def score_from_eps(self, eps: jax.Array, t: jax.Array) -> jax.Array:
        """:math:`\\nabla \\log p_t = -\\epsilon/\\sigma_t`."""
        return -eps / jnp.sqrt(self.variance(t))

    def eps_from_score(self, score: jax.Array, t: jax.Array) -> jax.Array:
        return -jnp.sqrt(self.variance(t)) * score

    def x0_from_eps(self, x: jax.Array, eps: jax.Array, t: jax.Array) -> jax.Array:
        """:math:`\\hat x_0 = (x_t - \\sigma_t \\epsilon)/\\alpha_t`
        (Tweedie's mean when eps is the true posterior mean)."""
        return (x - jnp.sqrt(self.variance(t)) * eps) * jnp.exp(-self.log_alpha(t))

    def eps_from_x0(self, x: jax.Array, x0: jax.Array, t: jax.Array) -> jax.Array:
        return (x - jnp.exp(self.log_alpha(t)) * x0) / jnp.sqrt(self.variance(t))

    def velocity_coefficients(self, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        """:math:`(\\dot\\alpha_t, \\dot\\sigma_t)`, the path's time derivatives:
        :math:`\\dot\\alpha = f\\alpha` and :math:`\\dot\\sigma = (d\\sigma^2/dt) / 2\\sigma`."""
        alpha, sigma = jnp.exp(self.log_alpha(t)), jnp.sqrt(self.variance(t))
        return self.drift_coefficient(t) * alpha, _derivative(self.variance, t) / (2.0 * sigma)

    def velocity_from_eps(self, x: jax.Array, eps: jax.Array, t: jax.Array) -> jax.Array:
        """The velocity :math:`u = \\dot\\alpha_t x_0 + \\dot\\sigma_t \\epsilon` of the
        path through ``x`` (:math:`x_0` from :meth:`x0_from_eps`): flow matching's regression
        target, :math:`\\epsilon - x_0` on :class:`FlowPath`."""
        d_alpha, d_sigma = self.velocity_coefficients(t)
        return d_alpha * self.x0_from_eps(x, eps, t) + d_sigma * eps

    def eps_from_velocity(self, x: jax.Array, u: jax.Array, t: jax.Array) -> jax.Array:
        """Inverse of :meth:`velocity_from_eps`: from :math:`x = \\alpha x_0 + \\sigma
        \\epsilon` and :math:`u = \\dot\\alpha x_0 + \\dot\\sigma \\epsilon`,
        :math:`\\epsilon = (\\alpha u - \\dot\\alpha x) / (\\alpha\\dot\\sigma -
        \\dot\\alpha\\sigma)`; on :class:`FlowPath` the denominator is 1 and
        :math:`\\epsilon = x + (1 - t) u`."""
        alpha, sigma = jnp.exp(self.log_alpha(t)), jnp.sqrt(self.variance(t))
        d_alpha, d_sigma = self.velocity_coefficients(t)
        return (alpha * u - d_alpha * x) / (alpha * d_sigma - d_alpha * sigma)

    # --- prior and time grids ---------------------------------------------------------------

    @property
    def prior_std(self) -> float:
        """Std of the prior :math:`N(0, s^2 I)`: :math:`s^2 = \\alpha_T^2 + \\sigma_T^2`.

        That is the marginal variance at ``T`` of data with unit variance: exactly 1 for VP,
        about 1 for sub-VP and :math:`\\sqrt{1+\\sigma_{max}^2}` for VE.
        """
        with jax.ensure_compile_time_eval():  # a Python float even when called under jit
            t = jnp.asarray(self.T, jnp.float32)
            return float(jnp.sqrt(jnp.exp(2.0 * self.log_alpha(t)) + self.variance(t)))

    def prior_sample(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        return self.prior_std * jax.random.normal(key, shape)

    def prior_logp(self, x: jax.Array) -> jax.Array:
        """Log density of one example ``x`` (any shape) under the prior."""
        s2 = self.prior_std**2
        return -0.5 * (jnp.sum(x**2) / s2 + x.size * math.log(2.0 * math.pi * s2))

    @property
    def num_levels(self) -> int | None:
        """Number of discrete noise levels, or ``None`` for a continuous-time process."""
        return None

    def grid(self, steps: int | None) -> jax.Array:
        """``steps`` decreasing times from ``T`` to ``t_min`` (both included)."""
        _require(
            steps is not None and int(steps) >= 2,
            f"steps must be an integer >= 2 for {type(self).__name__}, got {steps!r}",
        )
        return jnp.linspace(self.T, self.t_min, int(steps))

    def sample_time(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Training times: uniform on ``[t_min, T]``."""
        return jax.random.uniform(key, shape, minval=self.t_min, maxval=self.T)

    def sample_time_logit_normal(
        self, key: jax.Array, shape: tuple[int, ...] = (), mean: float = 0.0, std: float = 1.0
    ) -> jax.Array:
        """Training times :math:`t = t_{min} + (T - t_{min})\\,\\mathrm{sigmoid}(n)`,
        :math:`n \\sim N(\\text{mean}, \\text{std}^2)`: the logit-normal sampling of
        rectified flows (Esser et al. 2024, eq. 19), which trains the middle of the path most."""
        n = mean + std * jax.random.normal(key, shape)
        return self.t_min + (self.T - self.t_min) * jax.nn.sigmoid(n)

    def sample_time_log_normal_noise(
        self, key: jax.Array, shape: tuple[int, ...] = (), mean: float = -1.2, std: float = 1.2
    ) -> jax.Array:
        """Training times with :math:`\\log\\tilde\\sigma_t \\sim N(\\text{mean},
        \\text{std}^2)`, :math:`\\tilde\\sigma = \\sigma/\\alpha` (EDM's noise sampling,
        Karras et al. 2022, table 1: -1.2 and 1.2), mapped to :math:`t` through the log-SNR
        :math:`\\lambda = -\\log\\tilde\\sigma`; draws beyond the process's noise range
        are clipped to its ends, ``t_min`` and ``T``."""
        log_sigma = mean + std * jax.random.normal(key, shape)
        return jnp.clip(self.time_at_log_snr(-log_sigma), self.t_min, self.T)

    def likelihood_weight_integral(self) -> jax.Array:
        """:math:`Z = \\int_{t_{min}}^T g(t)^2/\\sigma_t^2\\,dt = 2(\\lambda_{t_{min}} -
        \\lambda_T)`, since :math:`g^2/\\sigma^2 = d\\log\\sigma^2/dt - 2f
        = -2\\,d\\lambda/dt`."""
        ends = jnp.asarray([self.t_min, self.T], jnp.float32)
        lam = self.log_snr(ends)
        return 2.0 * (lam[0] - lam[1])

    def sample_time_by_likelihood_weight(
        self, key: jax.Array, shape: tuple[int, ...] = ()
    ) -> jax.Array:
        """Times with density :math:`p(t) = g(t)^2 / (\\sigma_t^2 Z)` on ``[t_min, T]``: the
        importance sampler of the likelihood weighting (Song, Durkan, Murray & Ermon 2021).
        As :math:`g^2/\\sigma^2 = -2\\,d\\lambda/dt`, that is :math:`\\lambda_t` uniform
        between :math:`\\lambda_T` and :math:`\\lambda_{t_{min}}`, mapped back by
        :meth:`time_at_log_snr`: one rule for every process."""
        ends = jnp.asarray([self.T, self.t_min], jnp.float32)
        low, high = self.log_snr(ends)
        return self.time_at_log_snr(jax.random.uniform(key, shape, minval=low, maxval=high))


def _interp_levels(u, values):
    """Piecewise-linear interpolation of ``values`` given at ``u = 0, 1, ..., n - 1``, constant
    beyond the ends, with ``jnp.interp``'s derivative on ``jnp.arange(n)``: at a level, the
    slope of the segment above it, and at the two ends the slope of the segment inside.
    Indexing the two neighbours directly needs no search: ``jnp.interp``'s searchsorted is a
    ``while`` loop that XLA's GPU compiler (jaxlib 0.11.2, H200) fails to compile inside a
    sampler's ``scan``."""
    values = jnp.asarray(values)
    i = jnp.clip(jnp.floor(u).astype(jnp.int32), 0, values.shape[0] - 2)
    w = u - i
    # Held in [0, 1] by where, not clip: jnp.clip's derivative is 1/2 at its bounds, which
    # halved the drift and diffusion at u = 0 and n - 1 (t = T for DDPM; t = T and t = 0 for
    # NCSN), where the samplers and the likelihood ODE start or stop.
    w = jnp.where(w < 0.0, 0.0, jnp.where(w > 1.0, 1.0, w))
    return (1.0 - w) * values[i] + w * values[i + 1]


def _derivative(fn, t):
    t = jnp.asarray(t, dtype=jnp.result_type(float))
    return jax.jvp(fn, (t,), (jnp.ones_like(t),))[1]


# --- continuous-time SDEs (Song et al. 2021) -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _BetaLinear(SDE):
    beta_min: float = 0.1
    beta_max: float = 20.0
    T: float = 1.0
    t_min: float = 1e-3
    # Steps uniform in sqrt(t) (DDIM's quadratic grid): on the exact score of Gaussian mixtures
    # they reach the floor in fewer steps than log-SNR ones here (benchmarks/results/cpu-frontier).
    default_grid = "quadratic"

    def __post_init__(self):
        _require_finite(self, "beta_min", "beta_max", "T", "t_min")
        _require(self.beta_min > 0, f"beta_min must be > 0, got {self.beta_min}")
        _require(
            self.beta_min < self.beta_max,
            f"beta_min must be < beta_max, got beta_min={self.beta_min}, beta_max={self.beta_max}",
        )
        _require(0 < self.t_min < self.T, f"need 0 < t_min < T, got t_min={self.t_min}, T={self.T}")

    def integrated_beta(self, t):
        """:math:`B(t) = \\int_0^t \\beta(s) ds`
        with :math:`\\beta` linear from beta_min to beta_max on [0, T]."""
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2 / self.T

    def log_alpha(self, t):
        return -0.5 * self.integrated_beta(t)

    def _time_at_integrated_beta(self, b: jax.Array) -> jax.Array:
        """The root :math:`t \\ge 0` of :math:`B(t) = b`, clipped to :math:`[t_{min}, T]`, as
        :math:`t = 2b / (\\beta_{min} + \\sqrt{\\beta_{min}^2 + 2 b (\\beta_{max} -
        \\beta_{min}) / T})`, which loses no digits as :math:`b \\to 0`."""
        slope = (self.beta_max - self.beta_min) / self.T
        t = 2.0 * b / (self.beta_min + jnp.sqrt(self.beta_min**2 + 2.0 * slope * b))
        return jnp.clip(t, self.t_min, self.T)


@dataclasses.dataclass(frozen=True)
class VP(_BetaLinear):
    """Variance preserving: :math:`dx = -\\tfrac12\\beta(t) x dt + \\sqrt{\\beta(t)} dW`,
    :math:`\\sigma_t^2 = 1 - \\alpha_t^2`. The continuous limit of DDPM."""

    def variance(self, t):
        return -jnp.expm1(-self.integrated_beta(t))

    def time_at_log_snr(self, log_snr: jax.Array, iterations: int = 64) -> jax.Array:
        """Closed form: :math:`e^{-2\\lambda} = \\sigma^2/\\alpha^2 = e^{B} - 1`, so
        :math:`B = \\log(1 + e^{-2\\lambda})`. ``iterations`` is unused (bisection's)."""
        log_snr = jnp.asarray(log_snr, jnp.result_type(float))
        return self._time_at_integrated_beta(jax.nn.softplus(-2.0 * log_snr))


@dataclasses.dataclass(frozen=True)
class SubVP(_BetaLinear):
    """Sub-VP: :math:`g^2 = \\beta(t)(1 - e^{-2B(t)})`, :math:`\\sigma_t^2 = (1-\\alpha_t^2)^2`,
    always below the VP variance."""

    def variance(self, t):
        return jnp.expm1(-self.integrated_beta(t)) ** 2

    def time_at_log_snr(self, log_snr: jax.Array, iterations: int = 64) -> jax.Array:
        """Closed form: with :math:`u = e^{-B/2} = \\alpha`, :math:`e^{\\lambda} =
        u/(1 - u^2)`, whose root in (0, 1) is :math:`u = 2e^\\lambda/(1 + w)`,
        :math:`w = \\sqrt{1 + 4e^{2\\lambda}}`; then :math:`B = -2\\log u =
        2\\log\\big(1 + \\tfrac12 e^{-\\lambda}(1 + 1/(w + 2e^\\lambda))\\big)`, the form
        that keeps its digits as :math:`B \\to 0`. ``iterations`` is unused."""
        lam = jnp.asarray(log_snr, jnp.result_type(float))
        w = jnp.sqrt(1.0 + 4.0 * jnp.exp(2.0 * lam))
        b = 2.0 * jnp.log1p(0.5 * jnp.exp(-lam) * (1.0 + 1.0 / (w + 2.0 * jnp.exp(lam))))
        return self._time_at_integrated_beta(b)


@dataclasses.dataclass(frozen=True)
class VE(SDE):
    """Variance exploding: :math:`\\alpha_t = 1`, :math:`\\sigma_t = \\sigma_{min}
    (\\sigma_{max}/\\sigma_{min})^{t/T}`. The continuous limit of NCSN."""

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    T: float = 1.0
    t_min: float = 1e-5

    def __post_init__(self):
        _require_finite(self, "sigma_min", "sigma_max", "T", "t_min")
        _require(self.sigma_min > 0, f"sigma_min must be > 0, got {self.sigma_min}")
        _require(
            self.sigma_min < self.sigma_max,
            f"sigma_min must be < sigma_max, got sigma_min={self.sigma_min}, "
            f"sigma_max={self.sigma_max}",
        )
        _require(
            0 <= self.t_min < self.T, f"need 0 <= t_min < T, got t_min={self.t_min}, T={self.T}"
        )

    def log_alpha(self, t):
        return jnp.zeros_like(t)

    def variance(self, t):
        log_sigma = math.log(self.sigma_min) + (t / self.T) * math.log(
            self.sigma_max / self.sigma_min
        )
        return jnp.exp(2.0 * log_sigma)

    def time_at_log_snr(self, log_snr: jax.Array, iterations: int = 64) -> jax.Array:
        """Closed form: :math:`\\lambda = -\\log\\sigma_t`, linear in ``t``.
        ``iterations`` is unused (bisection's)."""
        log_sigma = -jnp.asarray(log_snr, jnp.result_type(float))
        t = (
            self.T
            * (log_sigma - math.log(self.sigma_min))
            / math.log(self.sigma_max / self.sigma_min)
        )
        return jnp.clip(t, self.t_min, self.T)


@dataclasses.dataclass(frozen=True)
class FlowPath(SDE):
    """The straight path of flow matching and rectified flow: :math:`\\alpha_t = 1 - t`,
    :math:`\\sigma_t = t`, so :math:`x_t = (1 - t) x_0 + t \\epsilon` moves each point in a
    straight line to its noise at the constant velocity :math:`u = \\epsilon - x_0` (Lipman
    et al. 2023; Liu et al. 2023). As every process here it is its marginal, and its SDE,
    :math:`f = -1/(1 - t)`, :math:`g^2 = 2t/(1 - t)`, and probability-flow ODE, whose drift is
    :math:`E[u | x_t]`, follow.

    At :math:`t = 1` the signal is gone (:math:`\\alpha = 0`): :math:`\\lambda_1 = -\\infty`
    and the drift and diffusion diverge, and at :math:`t = 0` the noise is (:math:`\\sigma = 0`):
    the score diverges. The samplers read the score, which at :math:`\\alpha = 0` no longer
    carries :math:`x_0`, so the path is sampled on ``[t_min, T]`` inside ``(0, 1)``; the
    defaults, ``1e-3`` and ``1 - 1e-3`` (:math:`\\lambda = \\pm 6.9`), start from
    :math:`N(0, \\sigma_T^2 + \\alpha_T^2)` where the marginal has the mean
    :math:`10^{-3} x_0` (a shift of one thousandth of the data's scale) and end with noise of
    std :math:`10^{-3}` before the final denoising step.
    """

    T: float = 1.0 - 1e-3
    t_min: float = 1e-3
    # Steps uniform in sqrt(t), as for VP: on the exact score of four Gaussian mixtures the
    # only grid on which the multistep solvers pass on every data set by 20 NFE (UniPC by 10);
    # uniform in t is as close at 5 NFE but, with DPM-Solver++ and UniPC at 10-20 NFE, narrows
    # gaussians_25's modes to 0.4-0.7 of their spread (benchmarks/results/cpu-frontier-flow).
    default_grid = "quadratic"
    noise_time = 1.0

    def __post_init__(self):
        _require_finite(self, "T", "t_min")
        _require(
            0 < self.t_min < self.T < 1,
            f"need 0 < t_min < T < 1 for FlowPath (alpha = 1 - t vanishes at t = 1, sigma = t "
            f"at t = 0), got t_min={self.t_min}, T={self.T}",
        )

    def log_alpha(self, t):
        return jnp.log1p(-t)

    def variance(self, t):
        return jnp.square(t)

    def velocity_coefficients(self, t):
        """:math:`(\\dot\\alpha, \\dot\\sigma) = (-1, 1)`, exact at :math:`t = 1` too."""
        ones = jnp.ones_like(jnp.asarray(t, jnp.result_type(float)))
        return -ones, ones

    def time_at_log_snr(self, log_snr: jax.Array, iterations: int = 64) -> jax.Array:
        """Closed form: :math:`\\lambda = \\log((1 - t)/t)`, so :math:`t =
        1/(1 + e^\\lambda)`. ``iterations`` is unused (bisection's)."""
        t = jax.nn.sigmoid(-jnp.asarray(log_snr, jnp.result_type(float)))
        return jnp.clip(t, self.t_min, self.T)


# --- discrete schedules ----------------------------------------------------------------------


class _Levels(SDE):
    """A process known at ``num_levels`` times (``level_times``, increasing) and
    interpolated between them. Training draws a level uniformly; a sampler's default grid
    is every level, and a coarser grid is a subsequence of the levels (as in DDIM)."""

    @property
    @abc.abstractmethod
    def level_times(self) -> np.ndarray: ...

    @property
    def num_levels(self) -> int:
        return len(self.level_times)

    def grid(self, steps: int | None = None) -> jax.Array:
        n = self.num_levels
        steps = n if steps is None else int(steps)
        _require(
            2 <= steps <= n, f"steps must lie in [2, {n}] for {type(self).__name__}, got {steps}"
        )
        index = np.unique(np.round(np.linspace(n - 1, 0, steps)).astype(int))[::-1]
        return jnp.asarray(self.level_times[index])

    def sample_time(self, key, shape=()):
        index = jax.random.randint(key, shape, 0, self.num_levels)
        return jnp.asarray(self.level_times)[index]


@dataclasses.dataclass(frozen=True)
class DDPMSchedule(_Levels):
    """DDPM (Ho et al. 2020) with ``betas`` :math:`\\beta_1..\\beta_N` at times
    :math:`t_i = i/N`: :math:`\\alpha_{t_i}^2 = \\bar\\alpha_i = \\prod_{j \\le i} (1-\\beta_j)`,
    :math:`\\sigma_t^2 = 1 - \\alpha_t^2`.

    :math:`\\log\\alpha_t` is linear between levels, so this is exactly the VP SDE with the
    piecewise constant :math:`\\beta(t) = -N\\log(1-\\beta_i)` on :math:`(t_{i-1}, t_i]`
    (:math:`\\approx N\\beta_i`): the continuous limit of Song et al. 2021.
    """

    betas: tuple[float, ...]
    T: float = 1.0
    default_grid = "quadratic"  # as for the VP SDE

    def __post_init__(self):
        b = np.asarray(self.betas, dtype=np.float64)
        _require(
            b.ndim == 1 and b.size >= 2,
            f"betas must be a 1-D sequence of >= 2 values, got shape {b.shape}",
        )
        _require(bool(np.all((b > 0) & (b < 1))), "betas must lie in (0, 1)")
        object.__setattr__(self, "betas", tuple(float(v) for v in b))

    @property
    def t_min(self) -> float:
        return self.T / len(self.betas)

    @property
    def level_times(self) -> np.ndarray:
        n = len(self.betas)
        return np.arange(1, n + 1, dtype=np.float32) * (self.T / n)

    def log_alpha(self, t):
        n = len(self.betas)
        log_alpha_bar = np.concatenate([[0.0], np.cumsum(np.log1p(-np.asarray(self.betas)))])
        return 0.5 * _interp_levels(t * (n / self.T), jnp.asarray(log_alpha_bar, jnp.float32))

    def variance(self, t):
        return -jnp.expm1(2.0 * self.log_alpha(t))


@dataclasses.dataclass(frozen=True)
class NCSNSchedule(_Levels):
    """NCSN (Song & Ermon 2019) noise levels ``sigmas`` (any order; stored decreasing, as
    :math:`\\sigma_1 > \\dots > \\sigma_L`): :math:`\\alpha_t = 1`, and
    :math:`\\log\\sigma_t` is linear between the levels placed at :math:`t = 0..1`
    with :math:`\\sigma_{t=0} = \\sigma_L` and :math:`\\sigma_{t=T} = \\sigma_1`.
    For geometric sigmas this is exactly the VE SDE.
    """

    sigmas: tuple[float, ...]
    T: float = 1.0
    t_min: float = 0.0

    def __post_init__(self):
        s = np.asarray(self.sigmas, dtype=np.float64)
        _require(
            s.ndim == 1 and s.size >= 2,
            f"sigmas must be a 1-D sequence of >= 2 values, got shape {s.shape}",
        )
        _require(bool(np.all(s > 0)), f"sigmas must be > 0 (sigma_min <= 0 given: {s.min():g})")
        s = np.sort(s)[::-1]
        _require(bool(np.all(np.diff(s) < 0)), "sigmas must be distinct")
        object.__setattr__(self, "sigmas", tuple(float(v) for v in s))

    @property
    def level_times(self) -> np.ndarray:
        n = len(self.sigmas)
        return np.linspace(0.0, self.T, n, dtype=np.float32)

    def log_alpha(self, t):
        return jnp.zeros_like(t)

    def variance(self, t):
        n = len(self.sigmas)
        log_sigmas = jnp.asarray(np.log(self.sigmas[::-1]), jnp.float32)  # increasing in t
        return jnp.exp(2.0 * _interp_levels(t * ((n - 1) / self.T), log_sigmas))


def ddpm_linear(
    beta_start: float = 1e-4, beta_end: float = 0.02, num_steps: int = 1000
) -> DDPMSchedule:
    """Ho et al.'s linear schedule: ``num_steps`` betas from ``beta_start`` to ``beta_end``."""
    _require(num_steps >= 2, f"num_steps must be >= 2, got {num_steps}")
    _require(
        0 < beta_start < beta_end < 1,
        f"need 0 < beta_start < beta_end < 1, got beta_start={beta_start}, beta_end={beta_end}",
    )
    return DDPMSchedule(tuple(np.linspace(beta_start, beta_end, num_steps).tolist()))


def ncsn_geometric(
    sigma_max: float = 1.0, sigma_min: float = 0.01, num_levels: int = 100
) -> NCSNSchedule:
    """Geometric noise levels from ``sigma_max`` down to ``sigma_min`` (Song & Ermon 2019)."""
    _require(sigma_min > 0, f"sigma_min must be > 0, got {sigma_min}")
    _require(
        sigma_min < sigma_max, f"sigma_min must be < sigma_max, got {sigma_min} >= {sigma_max}"
    )
    _require(num_levels >= 2, f"num_levels must be >= 2, got {num_levels}")
    return NCSNSchedule(tuple(np.geomspace(sigma_max, sigma_min, num_levels).tolist()))
