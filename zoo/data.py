r"""Toy distributions in 2-D, with what is known about them exactly.

Every dataset here is a :class:`Toy`: ``sample(key, shape)`` draws ``[*shape, 2]`` float32
points in pure JAX (jit- and vmap-friendly), ``train_set(n)`` is the training set of ``n``
points (drawn with the dataset's own fixed seed ``train_seed``; the finite set
:class:`Empirical` repeats its points in order instead), ``log_prob(x)`` is the exact log
density where one exists (it raises otherwise), and ``entropy()`` is the differential entropy
in nats, with ``entropy_method`` saying how it was obtained (exact, Monte Carlo, a
nearest-neighbour estimate, or undefined for a discrete distribution) and ``entropy_stderr``
its standard error. Images (the 8x8 digits) are in :mod:`zoo.images`.

**Gaussian mixtures** (:class:`GaussianMixture`) are the case where everything is exact.
With weights :math:`w_k`, means :math:`\mu_k` and diagonal stds :math:`s_k`,

.. math::
    p_0(x) = \sum_k w_k\, N(x; \mu_k, \mathrm{diag}(s_k^2)),

and a forward process :math:`x_t = \alpha_t x_0 + \sigma_t \epsilon` maps it to another
mixture (``diffused``), component by component,

.. math::
    p_t(x) = \sum_k w_k\, N(x; \alpha_t \mu_k, v_{tk}), \qquad
    v_{tk} = \alpha_t^2 s_k^2 + \sigma_t^2,

whose score (the "oracle" a trained network approximates) is

.. math::
    \nabla_x \log p_t(x) = \sum_k r_k(x)\, \frac{\alpha_t \mu_k - x}{v_{tk}}, \qquad
    r_k(x) = \mathrm{softmax}_k\big(\log w_k + \log N(x; \alpha_t\mu_k, v_{tk})\big).

The mixture's entropy has no closed form and is estimated by Monte Carlo,
:math:`H = -E[\log p(X)]`, drawing chunks of :math:`2^{18}` points until the standard error
is below :math:`10^{-3}` nats (at most 256 chunks; ``entropy_stderr`` is the one reached).

**FFJORD's toy sets** (Grathwohl et al. 2019, ``lib/toy_data.py`` of rtqichen/ffjord:
``8gaussians``, ``checkerboard``, ``moons``, ``rings``, ``swissroll``, ``pinwheel``,
``2spirals``, ``circles``) follow that code's generators with numpy/sklearn randomness replaced
by ``jax.random``: the same distributions, not the same draws. Where the original fixes the
split between parts of a set (``n // 2`` points per moon) the reimplementation draws the part
at random with the same proportions, which is the same distribution. ``8gaussians`` is a
Gaussian mixture; ``checkerboard`` is uniform on 8 squares (exact density and entropy
:math:`\log 32`); the others have no closed-form density and their entropy is the
Kozachenko-Leonenko nearest-neighbour estimate (:func:`knn_entropy`).

**Other references**: ``nine_gaussians`` is the mixture of the Haiku case study "Diffusion
models II" (unequal weights), ``gaussians_25`` the 5x5 grid of VEEGAN / PacGAN, and
``two_circles`` the 20-point training set of the intro notebook (a discrete distribution).

Look a dataset up by name with :func:`get`; :data:`NAMES` lists the 2-D toys, and ``get``
also finds the image sets of :mod:`zoo.images` (``"digits"``).
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from zoo import images
from zoo._checks import check_seed, check_shape, is_concrete

if TYPE_CHECKING:  # distrax and scipy are imported where used: `import zoo.data` stays light
    import distrax

__all__ = [
    "NAMES",
    "Checkerboard",
    "Circles",
    "Empirical",
    "EntropyEstimate",
    "GaussianMixture",
    "Moons",
    "Pinwheel",
    "Rings",
    "SwissRoll",
    "Toy",
    "TwoSpirals",
    "checkerboard",
    "circles",
    "eight_gaussians",
    "gaussians_25",
    "get",
    "knn_entropy",
    "moons",
    "nine_gaussians",
    "oracle_score",
    "pinwheel",
    "rings",
    "swissroll",
    "two_circles",
    "two_spirals",
]

# Entropy estimates draw from this seed, apart from any training set's seed.
_ENTROPY_SEED = 0
# Monte Carlo entropy: draw chunks until the standard error is below this (and at least
# _MC_MIN_CHUNKS chunks, so the standard error itself is well estimated).
_MC_TARGET_STDERR = 1e-3
_MC_CHUNK = 2**18
_MC_MIN_CHUNKS = 4
_MC_MAX_CHUNKS = 256
# Nearest-neighbour entropy: sample size (its standard error is ~0.01 nats).
_KNN_SAMPLES = 50_000


class EntropyEstimate(NamedTuple):
    """A differential entropy in nats, its standard error (0 when exact) and how it was got."""

    value: float
    stderr: float
    method: str


# --- validation ------------------------------------------------------------------------------


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int (the number of training points), got {n!r}")
    return int(n)


def _check_events(x, name: str = "x") -> jax.Array:
    """``x`` as an array of 2-D points ``[..., 2]``."""
    x = jnp.asarray(x)
    if x.ndim == 0 or x.shape[-1] != 2:
        raise ValueError(
            f"{name} must have last dimension 2 (event_shape (2,)), got shape {tuple(x.shape)}"
        )
    return x


# --- the interface ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Toy(abc.ABC):
    """A 2-D toy distribution. Subclasses implement ``_sample`` and, where a closed form
    exists, ``_log_prob`` and ``_estimate_entropy``.

    ``name`` and ``train_seed`` are keyword-only: ``train_set(n)`` is always drawn with
    ``jax.random.PRNGKey(train_seed)``.
    """

    name: str = dataclasses.field(default="toy", kw_only=True)
    train_seed: int = dataclasses.field(default=0, kw_only=True)

    event_shape: ClassVar[tuple[int, ...]] = (2,)

    def __post_init__(self):
        check_seed(self.train_seed, "train_seed")  # when made, not when first drawn

    @abc.abstractmethod
    def _sample(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """``[*shape, 2]`` independent draws."""

    def sample(self, key: jax.Array, shape: int | Sequence[int] = ()) -> jax.Array:
        """Independent draws, float32 ``[*shape, 2]``."""
        return _compiled_sample(self, key, check_shape(shape))

    def train_set(self, n: int = 10_000) -> jax.Array:
        """The training set: ``n`` points drawn with ``PRNGKey(train_seed)``, ``[n, 2]``."""
        key = jax.random.PRNGKey(check_seed(self.train_seed, "train_seed"))
        return self.sample(key, (_check_n(n),))

    def log_prob(self, x: jax.Array) -> jax.Array:
        """Log density of one point ``[2]`` or a batch ``[..., 2]``; returns ``x.shape[:-1]``."""
        return self._log_prob(_check_events(x))

    def _log_prob(self, x: jax.Array) -> jax.Array:
        raise NotImplementedError(
            f"{self.name}: no closed-form density (only its sampler is known); "
            "use samples, e.g. zoo.data.knn_entropy or a kernel density estimate"
        )

    def score(self, x: jax.Array, t: jax.Array, sde) -> jax.Array:
        """:math:`\\nabla_x \\log p_t(x)` of the data diffused by ``sde`` to time ``t``."""
        raise NotImplementedError(
            f"{self.name}: no closed-form diffused score; only Gaussian mixtures have one"
        )

    def posterior_mean(self, x: jax.Array, t: jax.Array, sde) -> jax.Array:
        """:math:`E[x_0 | x_t = x]` for the data diffused by ``sde`` to time ``t``."""
        raise NotImplementedError(
            f"{self.name}: no closed-form posterior mean; only Gaussian mixtures have one"
        )

    def entropy(self) -> float:
        """Differential entropy in nats (computed once per dataset, then cached)."""
        return _entropy(self).value

    @property
    def entropy_method(self) -> str:
        """How :meth:`entropy` was obtained: exact, or an estimate with its sample size."""
        return _entropy(self).method

    @property
    def entropy_stderr(self) -> float:
        """Standard error of :meth:`entropy` (0 when exact)."""
        return _entropy(self).stderr

    def _estimate_entropy(self) -> EntropyEstimate:
        # No closed form: the nearest-neighbour estimate from a fixed sample.
        x = self.sample(jax.random.PRNGKey(_ENTROPY_SEED), (_KNN_SAMPLES,))
        return knn_entropy(x)


# One compilation per (dataset, shape): run eagerly, each small op would compile on its own.
@functools.partial(jax.jit, static_argnums=(0, 2))
def _compiled_sample(toy: Toy, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return toy._sample(key, shape).astype(jnp.float32)


@functools.cache
def _entropy(toy: Toy) -> EntropyEstimate:
    # Keyed by the (frozen, hashable) dataset: estimates cost seconds, lookups nothing.
    return toy._estimate_entropy()


def oracle_score(data: Toy, sde) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``score_fn(x, t)``: the exact score of ``data`` diffused by ``sde``, with its exact
    posterior mean beside it (:class:`zoo.samplers.Predictions`), for samplers."""
    from zoo.samplers import Predictions  # the samplers' Diffrax only when a sampler is used

    return Predictions(
        lambda x, t: data.score(x, t, sde), lambda x, t: data.posterior_mean(x, t, sde)
    )


# --- Gaussian mixtures -----------------------------------------------------------------------


def _as_tuple(x, ndim: int):
    a = np.asarray(x, dtype=np.float64)
    return tuple(a.tolist()) if ndim == 1 else tuple(tuple(row) for row in a.tolist())


@dataclasses.dataclass(frozen=True)
class GaussianMixture(Toy):
    """:math:`\\sum_k w_k N(\\mu_k, \\mathrm{diag}(s_k^2))` with ``weights`` [K] (normalised
    here), ``means`` [K, 2] and ``scales`` [K, 2] (stds), stored as tuples so that the
    dataset is hashable. Exact ``log_prob``, ``diffused`` marginals and their ``score``.

    Fields may also hold traced arrays (``diffused`` under jit), which skips validation.
    """

    weights: Any
    means: Any
    scales: Any
    name: str = dataclasses.field(default="gaussian_mixture", kw_only=True)

    def __post_init__(self):
        super().__post_init__()
        if not all(is_concrete(v) for v in (self.weights, self.means, self.scales)):
            return
        w = np.asarray(self.weights, dtype=np.float64)
        m = np.asarray(self.means, dtype=np.float64)
        s = np.asarray(self.scales, dtype=np.float64)
        if w.ndim != 1 or w.size < 1 or np.any(w < 0) or not np.sum(w) > 0:
            raise ValueError(
                f"weights must be a non-empty 1-D sequence of non-negative numbers with a "
                f"positive sum, got {w.tolist()}"
            )
        k = w.size
        if m.shape != (k, 2):
            raise ValueError(f"means must have shape [K, 2] = ({k}, 2), got {m.shape}")
        if s.shape != (k, 2) or not np.all(s > 0):
            raise ValueError(f"scales must be positive with shape [K, 2] = ({k}, 2), got {s}")
        object.__setattr__(self, "weights", _as_tuple(w / w.sum(), 1))
        object.__setattr__(self, "means", _as_tuple(m, 2))
        object.__setattr__(self, "scales", _as_tuple(s, 2))

    def _arrays(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        as32 = lambda v: jnp.asarray(v, jnp.float32)
        return as32(self.weights), as32(self.means), as32(self.scales)

    @property
    def distribution(self) -> distrax.MixtureSameFamily:
        """The mixture as a distrax distribution."""
        return _distribution(*self._arrays())

    def sample(self, key: jax.Array, shape: int | Sequence[int] = ()) -> jax.Array:
        # Keyed by arrays, not by the dataset: diffused mixtures may hold traced fields.
        return _mixture_sample(*self._arrays(), key, check_shape(shape))

    def _sample(self, key, shape):
        return _mixture_sample(*self._arrays(), key, shape)

    def _log_prob(self, x):
        return _mixture_log_prob(*self._arrays(), x)

    def _estimate_entropy(self) -> EntropyEstimate:
        return _monte_carlo_entropy(self)

    def diffused(self, sde, t) -> GaussianMixture:
        """The exact marginal :math:`p_t` of :math:`x_t = \\alpha_t x_0 + \\sigma_t\\epsilon`:
        means :math:`\\alpha_t \\mu_k`, stds :math:`\\sqrt{\\alpha_t^2 s_k^2 + \\sigma_t^2}`.
        ``t`` is a scalar (traced values allowed)."""
        alpha, sigma = sde.marginal(t)
        if jnp.ndim(alpha) != 0:
            raise ValueError(f"t must be a scalar, got shape {jnp.shape(t)}")
        _, m, s = self._arrays()
        means = alpha * m
        scales = jnp.sqrt(alpha**2 * s**2 + sigma**2)
        # Under jit even a Python float t gives traced coefficients: keep them as arrays.
        if not (is_concrete(alpha) and is_concrete(sigma)):
            return GaussianMixture(
                self.weights, means, scales, name=self.name, train_seed=self.train_seed
            )
        name = f"{self.name} at t={float(t):g} of {type(sde).__name__}"
        return GaussianMixture(
            self.weights,
            np.asarray(means),
            np.asarray(scales),
            name=name,
            train_seed=self.train_seed,
        )

    def score(self, x, t, sde):
        """:math:`\\nabla_x \\log p_t(x)` of the mixture diffused by ``sde``, in closed form.

        ``x``: ``[..., 2]``; ``t``: a scalar or an array broadcasting against
        ``x.shape[:-1]``. Works under jit and vmap (traced ``t``).
        """
        x = _check_events(x)
        alpha, sigma = sde.marginal(t)
        w, m, s = self._arrays()
        return _mixture_score(x, jnp.log(w), m, s, alpha, sigma)

    def posterior_mean(self, x, t, sde):
        """:math:`E[x_0 | x_t = x]` of the mixture diffused by ``sde``, in closed form, also at
        ``sde.noise_time`` (where it is the mixture's mean); shapes as in :meth:`score`."""
        x = _check_events(x)
        t = jnp.asarray(t, jnp.result_type(float))
        alpha, sigma = jnp.exp(sde.log_alpha(t)), jnp.sqrt(sde.variance(t))
        w, m, s = self._arrays()
        return _mixture_posterior_mean(x, jnp.log(w), m, s, alpha, sigma)


def _distribution(weights, means, scales) -> distrax.MixtureSameFamily:
    import distrax

    return distrax.MixtureSameFamily(
        mixture_distribution=distrax.Categorical(probs=weights),
        components_distribution=distrax.MultivariateNormalDiag(loc=means, scale_diag=scales),
    )


# Jitted once per shape: distrax run eagerly compiles each of its many small ops instead.
@functools.partial(jax.jit, static_argnames="shape")
def _mixture_sample(weights, means, scales, key, shape):
    # distrax's sampler, so that train_set reproduces the case study's training points.
    return _distribution(weights, means, scales).sample(seed=key, sample_shape=shape)


@jax.jit
def _mixture_log_prob(weights, means, scales, x):
    return _distribution(weights, means, scales).log_prob(x)


def _mixture_posterior(x, log_w, means, scales, alpha, sigma):
    """For :math:`x` drawn from :math:`\\sum_k w_k N(\\alpha\\mu_k, v_k)`,
    :math:`v_k = \\alpha^2 s_k^2 + \\sigma^2`: the components' posterior weights ``[..., K]``,
    :math:`\\alpha\\mu_k - x` and :math:`v_k` (``[..., K, 2]``)."""
    a = jnp.asarray(alpha)[..., None, None]  # [..., 1, 1]
    var = a**2 * scales**2 + jnp.asarray(sigma)[..., None, None] ** 2  # [..., K, 2]
    diff = a * means - x[..., None, :]  # [..., K, 2]
    # Normalising constants shared by all components cancel in the softmax.
    logits = log_w + jnp.sum(-0.5 * diff**2 / var - 0.5 * jnp.log(var), axis=-1)  # [..., K]
    return jax.nn.softmax(logits, axis=-1), diff, var  # max-subtracted: stable far from modes


def _mixture_score(x, log_w, means, scales, alpha, sigma):
    """Closed-form score of :math:`\\sum_k w_k N(\\alpha\\mu_k, \\alpha^2 s_k^2 + \\sigma^2)`."""
    resp, diff, var = _mixture_posterior(x, log_w, means, scales, alpha, sigma)
    return jnp.sum(resp[..., None] * diff / var, axis=-2)


def _mixture_posterior_mean(x, log_w, means, scales, alpha, sigma):
    """:math:`E[x_0 | x] = \\sum_k r_k (\\mu_k + \\alpha s_k^2 (x - \\alpha\\mu_k)/v_k)`:
    finite at :math:`\\alpha = 0`, where it is the mixture's mean."""
    resp, diff, var = _mixture_posterior(x, log_w, means, scales, alpha, sigma)
    a = jnp.asarray(alpha)[..., None, None]
    return jnp.sum(resp[..., None] * (means - a * scales**2 * diff / var), axis=-2)


def _monte_carlo_entropy(toy: Toy) -> EntropyEstimate:
    """:math:`-E[\\log p(X)]` over chunks of a fixed key until the s.e. is below target."""
    chunk = jax.jit(lambda key: toy.log_prob(toy.sample(key, (_MC_CHUNK,))))
    base = jax.random.PRNGKey(_ENTROPY_SEED)
    total = total_sq = 0.0
    n = 0
    for i in range(_MC_MAX_CHUNKS):
        lp = np.asarray(chunk(jax.random.fold_in(base, i)), dtype=np.float64)
        total, total_sq, n = total + lp.sum(), total_sq + (lp**2).sum(), n + lp.size
        var = max(total_sq / n - (total / n) ** 2, 0.0)
        stderr = math.sqrt(var / n)
        if i + 1 >= _MC_MIN_CHUNKS and stderr < _MC_TARGET_STDERR:
            break
    return EntropyEstimate(float(-total / n), stderr, f"Monte Carlo, n={n}, s.e. {stderr:.1e}")


# --- entropy from samples --------------------------------------------------------------------


def knn_entropy(x, k: int = 1) -> EntropyEstimate:
    """Kozachenko-Leonenko k-nearest-neighbour estimate of the differential entropy.

    .. math::
        \\hat H = \\psi(n) - \\psi(k) + \\log V_d + \\frac{d}{n}\\sum_i \\log \\rho_{i,k},

    with :math:`\\rho_{i,k}` the Euclidean distance from :math:`x_i` to its k-th nearest
    neighbour and :math:`V_d` the volume of the unit ball in :math:`d` dimensions
    (Kozachenko & Leonenko 1987; Kraskov et al. 2004, eq. 20). The reported standard error is
    that of the mean of the :math:`d\\log\\rho_i` terms (it ignores their weak dependence
    and the estimator's :math:`O(n^{-1/d})` bias, which is small for smooth densities).
    ``x``: ``[n, d]`` samples of a continuous distribution (no repeated points).
    """
    import scipy.spatial
    import scipy.special

    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] <= k:
        raise ValueError(f"x must be [n, d] with n > k = {k}, got shape {x.shape}")
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    n, d = x.shape
    dist = scipy.spatial.cKDTree(x).query(x, k=k + 1)[0][:, k]  # column 0 is the point itself
    if np.any(dist <= 0):
        raise ValueError("x has repeated points: the nearest-neighbour estimate needs a density")
    log_unit_ball = 0.5 * d * math.log(math.pi) - scipy.special.gammaln(0.5 * d + 1)
    terms = d * np.log(dist)
    value = scipy.special.digamma(n) - scipy.special.digamma(k) + log_unit_ball + terms.mean()
    stderr = float(terms.std() / math.sqrt(n))
    method = f"Kozachenko-Leonenko k={k} nearest-neighbour estimate, n={n}, s.e. {stderr:.1e}"
    return EntropyEstimate(float(value), stderr, method)


# --- FFJORD's toy sets (rtqichen/ffjord, lib/toy_data.py) -------------------------------------


@dataclasses.dataclass(frozen=True)
class Checkerboard(Toy):
    """FFJORD's ``checkerboard``: uniform on the 8 dark squares of a 4x4 board of side-2
    squares on :math:`[-4, 4)^2`; density 1/32 there, entropy :math:`\\log 32`."""

    name: str = dataclasses.field(default="checkerboard", kw_only=True)

    def _sample(self, key, shape):
        k1, k2, k3 = jax.random.split(key, 3)
        x1 = jax.random.uniform(k1, shape) * 4 - 2
        x2_ = jax.random.uniform(k2, shape) - jax.random.randint(k3, shape, 0, 2) * 2
        x2 = x2_ + jnp.mod(jnp.floor(x1), 2)
        return jnp.stack([x1, x2], axis=-1) * 2

    def _log_prob(self, x):
        u = x / 2  # back to FFJORD's unit squares on [-2, 2)^2
        inside = jnp.all((u >= -2) & (u < 2), axis=-1)
        dark = jnp.mod(jnp.sum(jnp.floor(u), axis=-1), 2) == 0
        return jnp.where(inside & dark, -math.log(32.0), -jnp.inf)

    def _estimate_entropy(self):
        return EntropyEstimate(math.log(32.0), 0.0, "exact: log 32 (uniform on area 32)")


@dataclasses.dataclass(frozen=True)
class Moons(Toy):
    """FFJORD's ``moons``: sklearn ``make_moons(noise=0.1)`` then ``* 2 + [-1, -0.2]``.

    Half the points on the upper arc :math:`(\\cos\\theta, \\sin\\theta)`, half on the lower
    :math:`(1 - \\cos\\theta, 1/2 - \\sin\\theta)`, :math:`\\theta \\in [0, \\pi]` (sklearn's
    evenly spaced angles become uniform draws), plus :math:`N(0, 0.1^2 I)` before scaling.
    """

    name: str = dataclasses.field(default="moons", kw_only=True)

    def _sample(self, key, shape):
        k_arc, k_angle, k_noise = jax.random.split(key, 3)
        lower = jax.random.bernoulli(k_arc, 0.5, shape)
        theta = jnp.pi * jax.random.uniform(k_angle, shape)
        upper_arc = jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=-1)
        lower_arc = jnp.stack([1 - jnp.cos(theta), 1 - jnp.sin(theta) - 0.5], axis=-1)
        x = jnp.where(lower[..., None], lower_arc, upper_arc)
        x = x + 0.1 * jax.random.normal(k_noise, (*shape, 2))
        return x * 2 + jnp.array([-1.0, -0.2])


@dataclasses.dataclass(frozen=True)
class Rings(Toy):
    """FFJORD's ``rings``: 4 concentric circles of radii 3, 2.25, 1.5, 0.75 (``[1, 0.75,
    0.5, 0.25] * 3``), a quarter of the points each, at uniform angles, plus
    :math:`N(0, 0.08^2 I)` (added after scaling)."""

    name: str = dataclasses.field(default="rings", kw_only=True)

    def _sample(self, key, shape):
        k_ring, k_angle, k_noise = jax.random.split(key, 3)
        radius = jnp.array([1.0, 0.75, 0.5, 0.25])[jax.random.randint(k_ring, shape, 0, 4)]
        theta = 2 * jnp.pi * jax.random.uniform(k_angle, shape)
        x = 3.0 * radius[..., None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=-1)
        return x + 0.08 * jax.random.normal(k_noise, (*shape, 2))


@dataclasses.dataclass(frozen=True)
class SwissRoll(Toy):
    """FFJORD's ``swissroll``: sklearn ``make_swiss_roll(noise=1.0)``, coordinates (x, z),
    divided by 5: :math:`t = \\tfrac{3\\pi}{2}(1 + 2U)`, point
    :math:`(t\\cos t, t\\sin t) + N(0, I)`, then ``/ 5``."""

    name: str = dataclasses.field(default="swissroll", kw_only=True)

    def _sample(self, key, shape):
        k_t, k_noise = jax.random.split(key)
        t = 1.5 * jnp.pi * (1 + 2 * jax.random.uniform(k_t, shape))
        x = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], axis=-1)
        return (x + jax.random.normal(k_noise, (*shape, 2))) / 5


@dataclasses.dataclass(frozen=True)
class Pinwheel(Toy):
    """FFJORD's ``pinwheel``: 5 arms. Features :math:`f = (1 + 0.3 z_1, 0.1 z_2)` rotated by
    :math:`2\\pi c/5 + 0.25 e^{f_1}` for a uniform arm :math:`c`, then times 2."""

    name: str = dataclasses.field(default="pinwheel", kw_only=True)

    def _sample(self, key, shape):
        k_arm, k_features = jax.random.split(key)
        radial_std, tangential_std, num_classes, rate = 0.3, 0.1, 5, 0.25
        f = jax.random.normal(k_features, (*shape, 2)) * jnp.array([radial_std, tangential_std])
        f = f.at[..., 0].add(1.0)
        arm = jax.random.randint(k_arm, shape, 0, num_classes)
        angle = 2 * jnp.pi * arm / num_classes + rate * jnp.exp(f[..., 0])
        c, s = jnp.cos(angle), jnp.sin(angle)
        # FFJORD's einsum("ti,tij->tj", f, [[c, -s], [s, c]]): the row vector f times R.
        x = jnp.stack([f[..., 0] * c + f[..., 1] * s, -f[..., 0] * s + f[..., 1] * c], axis=-1)
        return 2 * x


@dataclasses.dataclass(frozen=True)
class TwoSpirals(Toy):
    """FFJORD's ``2spirals``: :math:`n = 3\\pi\\sqrt{U}`, point
    :math:`(-n\\cos n + U'/2,\\; n\\sin n + U''/2)`, negated for half the points (uniform
    sign), divided by 3, plus :math:`N(0, 0.1^2 I)`."""

    name: str = dataclasses.field(default="2spirals", kw_only=True)

    def _sample(self, key, shape):
        k_n, k_jitter, k_sign, k_noise = jax.random.split(key, 4)
        n = jnp.sqrt(jax.random.uniform(k_n, shape)) * 540 * (2 * jnp.pi) / 360
        jitter = 0.5 * jax.random.uniform(k_jitter, (*shape, 2))
        arm = jnp.stack([-jnp.cos(n) * n, jnp.sin(n) * n], axis=-1) + jitter
        sign = jnp.where(jax.random.bernoulli(k_sign, 0.5, shape), -1.0, 1.0)
        return sign[..., None] * arm / 3 + 0.1 * jax.random.normal(k_noise, (*shape, 2))


@dataclasses.dataclass(frozen=True)
class Circles(Toy):
    """FFJORD's ``circles``: sklearn ``make_circles(factor=0.5, noise=0.08)`` times 3: half
    the points on the unit circle, half on radius 0.5, uniform angles, plus
    :math:`N(0, 0.08^2 I)` before scaling (so radii 3 and 1.5, noise std 0.24)."""

    name: str = dataclasses.field(default="circles", kw_only=True)

    def _sample(self, key, shape):
        k_circle, k_angle, k_noise = jax.random.split(key, 3)
        radius = jnp.where(jax.random.bernoulli(k_circle, 0.5, shape), 0.5, 1.0)
        theta = 2 * jnp.pi * jax.random.uniform(k_angle, shape)
        x = radius[..., None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=-1)
        return 3 * (x + 0.08 * jax.random.normal(k_noise, (*shape, 2)))


# --- a finite set of points ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Empirical(Toy):
    """The uniform distribution on a finite set of ``points`` [K, 2] (a discrete distribution).

    It has no density: ``log_prob`` raises, and ``entropy()`` is ``nan`` with
    ``entropy_method`` saying why (its Shannon entropy is :math:`\\log K`, a different
    quantity). ``train_set(n)`` is the points repeated in order to length ``n`` (exactly the
    points when ``n == K``), so minibatches drawn from it sample the points uniformly.
    """

    points: Any
    name: str = dataclasses.field(default="empirical", kw_only=True)

    def __post_init__(self):
        super().__post_init__()
        p = np.asarray(self.points, dtype=np.float64)
        if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] != 2:
            raise ValueError(f"points must have shape [K, 2] with K >= 1, got {p.shape}")
        object.__setattr__(self, "points", _as_tuple(p, 2))

    def _sample(self, key, shape):
        points = jnp.asarray(self.points, jnp.float32)
        return points[jax.random.randint(key, shape, 0, len(self.points))]

    def train_set(self, n: int = 10_000) -> jax.Array:
        points = jnp.asarray(self.points, jnp.float32)
        return points[jnp.arange(_check_n(n)) % len(self.points)]

    def _log_prob(self, x):
        raise NotImplementedError(
            f"{self.name}: a discrete distribution on {len(self.points)} points has no density"
        )

    def _estimate_entropy(self):
        k = len(self.points)
        return EntropyEstimate(
            math.nan,
            math.nan,
            f"undefined: discrete distribution ({k} equally likely points; its Shannon "
            f"entropy is log {k} nats, not a differential entropy)",
        )


# --- the named datasets ----------------------------------------------------------------------


def _grid_mixture(centers, scale: float, weights=None, **kwargs) -> GaussianMixture:
    centers = np.asarray(centers, dtype=np.float64)
    k = len(centers)
    weights = np.full(k, 1.0 / k) if weights is None else weights
    return GaussianMixture(weights, centers, np.full((k, 2), scale), **kwargs)


@functools.cache
def nine_gaussians() -> GaussianMixture:
    """The case study's mixture ("Diffusion models II", Haiku, 2023): means on the grid
    :math:`\\{-2, 0, 2\\}^2`, covariance :math:`I/16`, and unequal weights
    ``distrax.Uniform().sample(seed=PRNGKey(23), sample_shape=(9,))`` normalised. Its
    training set is drawn with ``PRNGKey(12345)``, as there."""
    import distrax

    grid = [(x, y) for x in (-2.0, 0.0, 2.0) for y in (-2.0, 0.0, 2.0)]
    weights = distrax.Uniform().sample(seed=jax.random.PRNGKey(23), sample_shape=(9,))
    return _grid_mixture(grid, 0.25, np.asarray(weights), name="nine_gaussians", train_seed=12345)


@functools.cache
def gaussians_25() -> GaussianMixture:
    """The 5x5 grid of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018): means
    :math:`(-4 + 2i, -4 + 2j)`, :math:`i, j = 0..4`, std 0.05, equal weights."""
    grid = [(-4.0 + 2 * i, -4.0 + 2 * j) for i in range(5) for j in range(5)]
    return _grid_mixture(grid, 0.05, name="gaussians_25")


@functools.cache
def eight_gaussians() -> GaussianMixture:
    """FFJORD's ``8gaussians``: ``(randn * 0.5 + 4 u) / 1.414`` for ``u`` one of 8 unit
    vectors (axes and diagonals, FFJORD's order), so means :math:`4u/1.414`, std
    :math:`0.5/1.414`, equal weights (1.414, not :math:`\\sqrt 2`, as in FFJORD)."""
    r = 1.0 / np.sqrt(2.0)
    units = [(1, 0), (-1, 0), (0, 1), (0, -1), (r, r), (r, -r), (-r, r), (-r, -r)]
    return _grid_mixture(np.asarray(units) * 4.0 / 1.414, 0.5 / 1.414, name="8gaussians")


@functools.cache
def checkerboard() -> Checkerboard:
    return Checkerboard()


@functools.cache
def moons() -> Moons:
    return Moons()


@functools.cache
def rings() -> Rings:
    return Rings()


@functools.cache
def swissroll() -> SwissRoll:
    return SwissRoll()


@functools.cache
def pinwheel() -> Pinwheel:
    return Pinwheel()


@functools.cache
def two_spirals() -> TwoSpirals:
    return TwoSpirals()


@functools.cache
def circles() -> Circles:
    return Circles()


@functools.cache
def two_circles() -> Empirical:
    """The intro notebook's 20 training points: two circles of radius 0.5 centred at
    (0.7, 0.7) and (-0.7, -0.7), 10 points each at angles :math:`2\\pi j/10`."""
    theta = 2 * np.pi * np.arange(10) / 10
    ring = 0.5 * np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    points = np.concatenate([ring + 0.7, ring - 0.7])
    return Empirical(points, name="two_circles")


_FACTORIES: dict[str, Callable[[], Toy]] = {
    "nine_gaussians": nine_gaussians,
    "gaussians_25": gaussians_25,
    "8gaussians": eight_gaussians,
    "checkerboard": checkerboard,
    "moons": moons,
    "rings": rings,
    "swissroll": swissroll,
    "pinwheel": pinwheel,
    "2spirals": two_spirals,
    "circles": circles,
    "two_circles": two_circles,
}

NAMES: tuple[str, ...] = tuple(_FACTORIES)


def get(name: str) -> Toy | images.Digits:
    """The dataset called ``name``: a 2-D toy (one of :data:`NAMES`; FFJORD's names for its
    sets) or an image set of :mod:`zoo.images` (one of ``zoo.images.NAMES``)."""
    if name in _FACTORIES:
        return _FACTORIES[name]()
    if name in images.NAMES:
        return images.get(name)
    raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(NAMES + images.NAMES)}")
