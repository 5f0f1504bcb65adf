r"""Fast multistep samplers of the probability-flow ODE, written once against the process.

With :math:`x_t = \alpha_t x_0 + \sigma_t\epsilon`, :math:`\lambda_t = \log(\alpha_t/\sigma_t)`
and the model's data prediction :math:`\hat x_0(x, t)` (or noise prediction
:math:`\hat\epsilon`), every method here moves from grid time :math:`t_i` to :math:`t_{i+1}`
by a *linear* update of the current point and the last few predictions,

.. math::
    x_{i+1} = a_i\, x_i + \sum_{j \ge 0} c_{ij}\, q_{i-j} \;(+\, n_i z),

whose coefficients depend on the grid alone. Each sampler is therefore a small function that
writes its coefficient table (in float64, from the grid's :math:`\alpha, \sigma, \lambda`);
one ``lax.scan`` applies any table, evaluating the score once per step. UniPC's corrector is a
second table applied after the next evaluation (which it reuses: no extra NFE).

- :class:`DPMSolverPP`: DPM-Solver++ (Lu et al. 2022, arXiv 2211.01095), multistep orders
  1-3 in the data prediction (order 1 is DDIM).
- :class:`DPMSolverPPSDE`: DPM-Solver++(2M) SDE (ibid., appendix; Karras-variable form of
  k-diffusion's ``sample_dpmpp_2m_sde``).
- :class:`UniPC`: UniP-p with the UniC corrector (Zhao et al. 2023, arXiv 2302.04867), B(h)
  ``bh1`` or ``bh2``.
- :class:`IPNDM`: improved pseudo-numerical multistep (Zhang & Chen 2023, arXiv 2204.13902):
  Adams-Bashforth on :math:`dy/d\tilde\sigma = \hat\epsilon` with :math:`y = x/\alpha`,
  :math:`\tilde\sigma = \sigma/\alpha`.

Every one takes ``steps`` = its number of score evaluations (NFE) and a time grid
(:mod:`zoo.grids`: ``grid``, ``end``, ``rho``; by default the process's ``default_grid``).
By default it takes ``steps`` solver steps over ``steps + 1`` times, from ``T`` to ``t_min``,
and returns the last point. With ``denoise=True``, or a grid whose ``end`` is ``"zero"``,
``steps`` grid times are followed by Tweedie's :math:`\hat x_0` at the last one (one of the
``steps`` evaluations; for ``end="zero"`` it is the step into zero noise of the widely used
schedulers).

The default grids were chosen on the exact score of Gaussian mixtures (the repository's
``benchmarks/results/cpu-frontier-grids``): quadratic in time on VP-type processes, where it
is the only grid on which iPNDM passes every data set at 10 NFE, log-SNR-uniform on VE, where
the quadratic grid is the worst. Which sampler to take at which NFE is measured in
``benchmarks/results/cpu-frontier``: iPNDM first reaches 1.5x the sliced-W2 floor with every
mode's spread within 10% at 10 NFE on DDPM and VP.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from zoo import _checks
from zoo.grids import TimeGrid
from zoo.samplers import Sampler, Samples
from zoo.sdes import SDE

__all__ = [
    "DPMSolverPP",
    "DPMSolverPPSDE",
    "UniPC",
    "IPNDM",
    "Schedule",
    "Table",
    "schedule",
    "step_orders",
]

HISTORY = 4  # the most predictions any method here combines (iPNDM's fourth order)


class Schedule(NamedTuple):
    """The grid's process coefficients in float64: times ``t``, ``alpha``, ``sigma``,
    ``lam`` (:math:`\\lambda`) at each grid time, decreasing in ``t``."""

    t: np.ndarray
    alpha: np.ndarray
    sigma: np.ndarray
    lam: np.ndarray


class Table(NamedTuple):
    """Coefficients of each step ``i`` (rows): ``a`` [K], ``c`` [K, HISTORY] on the predictions
    :math:`q_i, q_{i-1}, \\dots`, ``noise`` [K] on a standard normal draw, and for a corrector
    (``None`` without): ``corr_a``, ``corr_c`` on the same history and ``corr_new`` on the
    prediction at the new point."""

    a: np.ndarray
    c: np.ndarray
    noise: np.ndarray
    corr_a: np.ndarray | None = None
    corr_c: np.ndarray | None = None
    corr_new: np.ndarray | None = None


def schedule(sde: SDE, times: jax.Array) -> Schedule:
    """:class:`Schedule` of ``times``, computed now even under ``jit`` (the grid depends on
    the process alone)."""
    with jax.ensure_compile_time_eval():
        t = jnp.asarray(times, jnp.float32)
        log_alpha, variance = sde.log_alpha(t), sde.variance(t)
        t, log_alpha, variance = (np.asarray(v, np.float64) for v in (t, log_alpha, variance))
    sigma = np.sqrt(variance)
    return Schedule(t, np.exp(log_alpha), sigma, log_alpha - np.log(sigma))


def step_orders(steps: int, order: int, lower_order_final: bool, denoise: bool) -> np.ndarray:
    """The order of each of ``steps`` multistep updates: the first ones are limited by the
    predictions available (1, 2, ...), and with ``lower_order_final`` the last ones by the
    steps left (..., 2, 1), as in the reference implementations; a final denoising step
    (``denoise``) is a first-order step of its own, so it counts as the last."""
    i = np.arange(steps)
    orders = np.minimum(order, i + 1)
    if lower_order_final:
        orders = np.minimum(orders, steps + int(denoise) - i)
    return orders


class _Multistep(Sampler):
    """A sampler that applies a coefficient :class:`Table` on a :class:`TimeGrid`."""

    steps: int
    grid: str | tuple[float, ...] | None
    end: str
    rho: float
    denoise: bool
    trajectory: bool
    #: what the model's prediction q is in the table: the data ``"x0"`` or the noise ``"eps"``
    predicts = "x0"

    def _check(self) -> None:
        _checks.check_integer(
            self.steps, "steps", minimum=2 if self.denoises else 1, maximum=_checks.INT32_MAX
        )
        # TimeGrid checks the options; without a grid, end and rho as any spacing takes them.
        TimeGrid("time" if self.grid is None else self.grid, self.end, self.rho)

    @property
    def denoises(self) -> bool:
        """Whether the last evaluation is a final denoising step: asked for, or the step into
        zero noise of a grid that ends there (``end="zero"``)."""
        return self.denoise or self.end == "zero"

    def times(self, sde: SDE) -> jax.Array:
        """The grid (``grid``, or the process's ``default_grid``): ``steps + 1`` times, or
        ``steps`` followed by the final denoising step."""
        grid = TimeGrid(sde.default_grid if self.grid is None else self.grid, self.end, self.rho)
        return grid.times(sde, self.steps if self.denoises else self.steps + 1)

    def table(self, s: Schedule) -> Table:
        """The coefficients of each step between the grid times of ``s``."""
        raise NotImplementedError

    def sample(self, sde, score_fn, key, shape):
        with jax.ensure_compile_time_eval():  # the grid depends on the process alone
            s = schedule(sde, self.times(sde))
        table = self.table(s)
        prior_key, noise_key = jax.random.split(key)
        x = sde.prior_sample(prior_key, shape)

        def predict(x, t):
            eps = sde.eps_from_score(score_fn(x, t), t)
            return sde.x0_from_eps(x, eps, t) if self.predicts == "x0" else eps

        def predict_x0(x, t):
            return sde.x0_from_eps(x, sde.eps_from_score(score_fn(x, t), t), t)

        as32 = lambda v: jnp.asarray(v, jnp.float32)
        f32 = jax.tree_util.tree_map(as32, table)
        ts = as32(s.t)
        corrected = table.corr_a is not None
        stochastic = bool(np.any(table.noise))

        def body(carry, i):
            x, x_prev, history = carry
            q = predict(x, ts[i])
            if corrected:
                # UniC: redo the last step with the prediction just made at its end point.
                fixed = f32.corr_a[i - 1] * x_prev + _combine(f32.corr_c[i - 1], history)
                x = jnp.where(i > 0, fixed + f32.corr_new[i - 1] * q, x)
            history = jnp.concatenate([q[None], history[:-1]])
            x_next = f32.a[i] * x + _combine(f32.c[i], history)
            if stochastic:
                z = jax.random.normal(jax.random.fold_in(noise_key, i), x.shape, x.dtype)
                x_next = x_next + f32.noise[i] * z
            return (x_next, x, history), (x_next if self.trajectory else None)

        history = jnp.zeros((HISTORY, *shape), x.dtype)
        steps = len(table.a)
        x_T = x
        (x, _, _), path = jax.lax.scan(body, (x, x, history), jnp.arange(steps))
        # The trajectory holds the points as predicted: a UniC correction of the last point
        # seen here happens inside the next step.
        trajectory = jnp.concatenate([x_T[None], path]) if self.trajectory else None
        if self.denoises:  # at the grid's last time, which is t_min only for end="t_min"
            x = predict_x0(x, ts[-1])
        nfe = jnp.asarray(steps + int(self.denoises), jnp.int32)
        return Samples(x, nfe, trajectory, ts if self.trajectory else None)


def _combine(weights, history):
    return jnp.tensordot(weights, history, axes=1)


@dataclasses.dataclass(frozen=True)
class DPMSolverPP(_Multistep):
    r"""DPM-Solver++ multistep (Lu et al. 2022, arXiv 2211.01095, algorithm 2 and its
    third-order form in the authors' code) in the data prediction :math:`\hat x_0 = m`:
    from :math:`t` to :math:`s` with :math:`h = \lambda_s - \lambda_t`,

    .. math::
        x_s = \frac{\sigma_s}{\sigma_t} x_t + \alpha_s (1 - e^{-h})\, m_t
              + \alpha_s \Big[(1 - e^{-h})\tfrac12 D_1\Big]_{2M}
              \text{ or } \alpha_s\Big[\varphi_2 D_1 - \varphi_3 D_2\Big]_{3M},

    :math:`\varphi_2 = (e^{-h} - 1)/h + 1`, :math:`\varphi_3 = \varphi_2/h - \tfrac12`, and
    :math:`D_1 \approx h\,m'` and :math:`D_2 \approx h^2 m''` the derivatives of the
    prediction in :math:`\lambda` from the last three predictions (:math:`D_1 = (m_t -
    m_{t'})/r`, :math:`r = h'/h`, for 2M); the terms are those of the Taylor expansion of
    :math:`m` in the exact solution :math:`x_s = (\sigma_s/\sigma_t) x_t + \sigma_s
    \int e^{\lambda} m\,d\lambda`. (The authors' code, and the libraries that copy it,
    weight :math:`D_2` by half of that, a step whose local error is :math:`O(h^3)`, not
    :math:`O(h^4)`; the tests hold the step to the exact integral of a quadratic.) Order 1
    is DDIM. The first steps use the orders their history allows and, with
    ``lower_order_final``, the last ones lower orders too.
    """

    steps: int = 20
    order: int = 2
    grid: str | tuple[float, ...] | None = None
    end: str = "t_min"
    rho: float = 7.0
    lower_order_final: bool = True
    denoise: bool = False
    trajectory: bool = False

    def __post_init__(self):
        self._check()
        if self.order not in (1, 2, 3):
            raise ValueError(f"order must be 1, 2 or 3 for DPMSolverPP, got {self.order!r}")
        super().__post_init__()

    @property
    def convergence_order(self) -> int:
        return self.order

    def table(self, s):
        k = len(s.t) - 1
        orders = step_orders(k, self.order, self.lower_order_final, self.denoises)
        a, c = np.zeros(k), np.zeros((k, HISTORY))
        for i in range(k):
            h = s.lam[i + 1] - s.lam[i]
            a[i] = s.sigma[i + 1] / s.sigma[i]
            c[i, :3] = s.alpha[i + 1] * _dpmpp_weights(h, s.lam[i::-1][:3], orders[i])
        return Table(a, c, np.zeros(k))


def _dpmpp_weights(h: float, lam_history: np.ndarray, order: int) -> np.ndarray:
    """Weights of :math:`m_t, m_{t'}, m_{t''}` in :math:`x_s - (\\sigma_s/\\sigma_t) x_t`,
    divided by :math:`\\alpha_s` (``lam_history``: :math:`\\lambda_t, \\lambda_{t'}, \\dots`)."""
    e = np.eye(3)
    phi1 = -np.expm1(-h)  # 1 - e^{-h}
    if order == 1:
        return phi1 * e[0]
    r0 = (lam_history[0] - lam_history[1]) / h
    d1_0 = (e[0] - e[1]) / r0
    if order == 2:
        return phi1 * (e[0] + 0.5 * d1_0)
    r1 = (lam_history[1] - lam_history[2]) / h
    d1_1 = (e[1] - e[2]) / r1
    d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)  # h m'
    d2 = 2.0 * (d1_0 - d1_1) / (r0 + r1)  # h^2 m''
    phi2 = -phi1 / h + 1.0
    phi3 = phi2 / h - 0.5
    return phi1 * e[0] + phi2 * d1 - phi3 * d2


@dataclasses.dataclass(frozen=True)
class DPMSolverPPSDE(_Multistep):
    r"""DPM-Solver++(2M) SDE (Lu et al. 2022, arXiv 2211.01095, appendix): the stochastic
    solver whose deterministic part changes with the noise it adds,

    .. math::
        x_s = \frac{\sigma_s}{\sigma_t} e^{-\eta h} x_t + \alpha_s (1 - e^{-(1+\eta)h}) D
              + \sigma_s \sqrt{1 - e^{-2\eta h}}\, z,

    with :math:`D` the 2M combination of the last two predictions (midpoint form: weight
    :math:`\tfrac12(1 - e^{-(1+\eta)h})/r` on their difference). ``eta=1`` samples the reverse
    SDE; ``eta=0`` is DPM-Solver++(2M)."""

    steps: int = 20
    order: int = 2
    eta: float = 1.0
    grid: str | tuple[float, ...] | None = None
    end: str = "t_min"
    rho: float = 7.0
    lower_order_final: bool = True
    denoise: bool = False
    trajectory: bool = False
    #: strong order of the stochastic solver is below this; this is its ODE part's (eta=0)
    convergence_order = 2

    def __post_init__(self):
        self._check()
        if self.order not in (1, 2):
            raise ValueError(f"order must be 1 or 2 for DPMSolverPPSDE, got {self.order!r}")
        if not (isinstance(self.eta, (int, float)) and 0.0 <= self.eta <= 1.0):
            raise ValueError(f"eta must lie in [0, 1], got {self.eta!r}")
        super().__post_init__()

    def table(self, s):
        k = len(s.t) - 1
        orders = step_orders(k, self.order, self.lower_order_final, self.denoises)
        a, c, noise = np.zeros(k), np.zeros((k, HISTORY)), np.zeros(k)
        for i in range(k):
            h = s.lam[i + 1] - s.lam[i]
            phi = -np.expm1(-(1.0 + self.eta) * h)
            a[i] = s.sigma[i + 1] / s.sigma[i] * np.exp(-self.eta * h)
            c[i, 0] = phi
            if orders[i] == 2:
                r = (s.lam[i] - s.lam[i - 1]) / h
                c[i, :2] += 0.5 * phi / r * np.array([1.0, -1.0])
            c[i] *= s.alpha[i + 1]
            noise[i] = s.sigma[i + 1] * math.sqrt(-np.expm1(-2.0 * self.eta * h))
        return Table(a, c, noise)


@dataclasses.dataclass(frozen=True)
class UniPC(_Multistep):
    r"""UniPC (Zhao et al. 2023, arXiv 2302.04867, algorithms 2-3) in the data prediction:
    the predictor UniP-p extends the DDIM step with the divided differences of the last
    ``order`` predictions,

    .. math::
        x_s = \frac{\sigma_s}{\sigma_t} x_t + \alpha_s (1 - e^{-h}) m_t
              - \alpha_s B(h) \sum_k \rho_k D_k, \qquad
        D_k = \frac{m_{t_k} - m_t}{r_k},\; r_k = \frac{\lambda_{t_k} - \lambda_t}{h},

    with :math:`\rho` solving :math:`R\rho = g(h)/B(h)` (:math:`R_{ik} = r_k^{i-1}`,
    :math:`g_i = i!\,\varphi_{i+1}(-h)` in the authors' recursion); the corrector UniC
    solves the same system with the prediction at the new point added (:math:`r = 1`),
    which raises the order by one at no extra evaluation. It is skipped after the last step.
    ``variant``: :math:`B(h) = -h` (``"bh1"``) or :math:`e^{-h} - 1` (``"bh2"``).
    """

    steps: int = 20
    order: int = 2
    variant: str = "bh2"
    corrector: bool = True
    grid: str | tuple[float, ...] | None = None
    end: str = "t_min"
    rho: float = 7.0
    lower_order_final: bool = True
    denoise: bool = False
    trajectory: bool = False

    def __post_init__(self):
        self._check()
        if self.order not in (1, 2, 3):
            raise ValueError(f"order must be 1, 2 or 3 for UniPC, got {self.order!r}")
        if self.variant not in ("bh1", "bh2"):
            raise ValueError(f"variant must be 'bh1' or 'bh2', got {self.variant!r}")
        super().__post_init__()

    @property
    def convergence_order(self) -> int:
        """The predictor's order, one more with the corrector."""
        return self.order + int(self.corrector)

    def table(self, s):
        k = len(s.t) - 1
        orders = step_orders(k, self.order, self.lower_order_final, self.denoises)
        a, c = np.zeros(k), np.zeros((k, HISTORY))
        ca, cc, cn = np.zeros(k), np.zeros((k, HISTORY)), np.zeros(k)
        for i in range(k):
            pred, corr, new = _unipc_weights(
                s.lam[i + 1] - s.lam[i], s.lam[i::-1][: orders[i]], self.variant
            )
            a[i] = ca[i] = s.sigma[i + 1] / s.sigma[i]
            c[i, : len(pred)] = s.alpha[i + 1] * pred
            # The corrector of step i runs once q_{i+1} is known, i.e. not after the last step.
            if self.corrector and i < k - 1:
                cc[i, : len(corr)], cn[i] = s.alpha[i + 1] * corr, s.alpha[i + 1] * new
            else:
                ca[i], cc[i], cn[i] = a[i], c[i], 0.0
        return Table(a, c, np.zeros(k), ca, cc, cn)


def _unipc_weights(h: float, lam_history: np.ndarray, variant: str):
    """Weights of the predictions :math:`m_t, m_{t_1}, \\dots` (``lam_history`` their
    :math:`\\lambda`, as many as the step's order) in UniP and UniC, divided by
    :math:`\\alpha_s`, and UniC's weight on the new prediction."""
    order = len(lam_history)
    hh = -h
    h_phi_1 = np.expm1(hh)
    b_h = hh if variant == "bh1" else h_phi_1
    rks = np.append((lam_history[1:] - lam_history[0]) / h, 1.0)
    e = np.eye(order)
    # D_k = (m_{t_k} - m_t) / r_k as weights on the history
    d = [(e[k] - e[0]) / rks[k - 1] for k in range(1, order)]
    r_rows, b, h_phi_k, factorial = [], [], h_phi_1 / hh - 1.0, 1
    for i in range(1, order + 1):
        r_rows.append(rks ** (i - 1))
        b.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1.0 / factorial
    r_mat, b = np.asarray(r_rows), np.asarray(b)
    ddim = -h_phi_1 * e[0]
    if order == 1:
        pred = ddim
        rho_c = np.array([0.5])
    else:
        rho_p = np.array([0.5]) if order == 2 else np.linalg.solve(r_mat[:-1, :-1], b[:-1])
        pred = ddim - b_h * sum(rp * dk for rp, dk in zip(rho_p, d, strict=True))
        rho_c = np.linalg.solve(r_mat, b)
    corr = ddim - b_h * sum((rc * dk for rc, dk in zip(rho_c[:-1], d, strict=True)), 0.0 * e[0])
    # D_t = m_s - m_t: the new prediction's weight, and -1 times it on m_t
    corr = corr + b_h * rho_c[-1] * e[0]
    return pred, corr, -b_h * rho_c[-1]


_ADAMS_BASHFORTH = (
    np.array([1.0]),
    np.array([3.0, -1.0]) / 2.0,
    np.array([23.0, -16.0, 5.0]) / 12.0,
    np.array([55.0, -59.0, 37.0, -9.0]) / 24.0,
)


@dataclasses.dataclass(frozen=True)
class IPNDM(_Multistep):
    r"""iPNDM (Zhang & Chen 2023, arXiv 2204.13902, the improved PNDM of their appendix): in
    the variables :math:`y = x/\alpha`, :math:`\tilde\sigma = \sigma/\alpha` the
    probability-flow ODE reads :math:`dy/d\tilde\sigma = \hat\epsilon(x, t)`; each step is an
    Adams-Bashforth step of order up to ``order`` with the constant-step coefficients

    .. math::
        y_{i+1} = y_i + (\tilde\sigma_{i+1} - \tilde\sigma_i)\sum_j b_j \hat\epsilon_{i-j},
        \quad b = 1;\ (3, -1)/2;\ (23, -16, 5)/12;\ (55, -59, 37, -9)/24,

    the first steps at the orders their history allows (the lower-order warm start that makes
    it "improved")."""

    steps: int = 10
    order: int = 3
    grid: str | tuple[float, ...] | None = None
    end: str = "t_min"
    rho: float = 7.0
    lower_order_final: bool = False
    denoise: bool = False
    trajectory: bool = False
    predicts = "eps"

    def __post_init__(self):
        self._check()
        if self.order not in (1, 2, 3, 4):
            raise ValueError(f"order must be 1, 2, 3 or 4 for IPNDM, got {self.order!r}")
        super().__post_init__()

    @property
    def convergence_order(self) -> int:
        """``order`` on a grid uniform in :math:`\\tilde\\sigma` (``karras`` with ``rho=1``),
        where the constant coefficients are exact; on any other grid the steps change in
        size, which costs the constant coefficients all orders above 2."""
        uniform = self.grid == "karras" and self.rho == 1.0
        return self.order if uniform else min(self.order, 2)

    def table(self, s):
        k = len(s.t) - 1
        orders = step_orders(k, self.order, self.lower_order_final, self.denoises)
        scaled = s.sigma / s.alpha
        a, c = np.zeros(k), np.zeros((k, HISTORY))
        for i in range(k):
            a[i] = s.alpha[i + 1] / s.alpha[i]
            b = _ADAMS_BASHFORTH[orders[i] - 1]
            c[i, : len(b)] = s.alpha[i + 1] * (scaled[i + 1] - scaled[i]) * b
        return Table(a, c, np.zeros(k))
