r"""The model families: DDPM, NCSN and score SDEs over one score network.

A family is a forward process, a network, what the network's output means and a default
sampler; the loss and the samplers are shared. With :math:`x_t = \alpha_t x_0 + \sigma_t
\epsilon`, the per-example loss is the denoising score-matching loss in noise units,

.. math::
    \ell(x_0) = \lambda(t)\, \frac{1}{D} \| \hat\epsilon(x_t, t) - \epsilon \|^2,
    \qquad \hat\epsilon = -\sigma_t\, s_\theta(x_t, t),

which for :math:`\lambda = 1` is DDPM's simple loss, NCSN's :math:`\sigma^2`-weighted
score-matching loss and the score SDEs' default loss alike (Ho et al. 2020 eq. 14, Song &
Ermon 2019 eq. 6, Song et al. 2021 eq. 7 with :math:`\lambda = \sigma_t^2`). The families
differ in their process (discrete VP levels, discrete VE levels, continuous SDEs), the
times they train on (levels or :math:`t \sim U[t_{min}, T]`) and their default samplers.

The network's output may mean ``"eps"`` (the noise), ``"score"`` or ``"x0"``; it is converted
to noise units by the process (:meth:`zoo.sdes.SDE.eps_from_score` and friends).

Use :func:`transform` to get pure functions::

    model = zoo.transform(zoo.DDPM, schedule=zoo.sdes.ddpm_linear(1e-4, 0.02, 1000))
    params = model.init(key, batch)
    losses = model.loss(params, key, batch)           # [batch]
    samples = model.sample(params, key, (2000,)).x    # default sampler of the family
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from zoo import samplers as samplers_lib
from zoo import sdes
from zoo._checks import is_concrete
from zoo.nets import ScoreNet

__all__ = ["DiffusionModel", "DDPM", "NCSN", "ScoreSDE", "Model", "transform"]

PREDICTIONS = ("eps", "score", "x0")
WEIGHTINGS = ("simple", "likelihood")
TIME_SAMPLINGS = ("uniform", "importance")


class DiffusionModel(hk.Module):
    """A forward process ``sde`` and a network ``net`` (a factory of an hk.Module with the
    contract ``net()(x, t, is_training) -> like x``) over examples of ``event_shape``.

    ``predict``: what the network outputs (``"eps"``, ``"score"`` or ``"x0"``).
    ``weighting``: ``"simple"`` (:math:`\\lambda = 1`) or ``"likelihood"``
    (:math:`\\lambda = g(t)^2/\\sigma_t^2`, Song et al. 2021b: the loss bounds the NLL).
    ``time_sampling``: ``"uniform"`` (the process's training times) or, with the likelihood
    weighting on a continuous-time process, ``"importance"``: :math:`t \\sim p(t) \\propto
    g(t)^2/\\sigma_t^2` (:meth:`zoo.sdes.SDE.sample_time_by_likelihood_weight`) with the
    constant weight :math:`Z/(T - t_{min})`, :math:`Z = \\int g^2/\\sigma^2 dt`. Both are
    unbiased for the same objective,

    .. math:: \\frac{1}{T - t_{min}} \\int_{t_{min}}^T \\frac{g(t)^2}{\\sigma_t^2}\\,
        E\\|\\hat\\epsilon - \\epsilon\\|^2 dt,

    the importance sampler with far less variance: :math:`g^2/\\sigma^2` grows like
    :math:`1/t` near :math:`t = 0` for VP processes.
    """

    default_sampler: Callable[[], samplers_lib.Sampler] = samplers_lib.ProbabilityFlow

    def __init__(
        self,
        sde: sdes.SDE,
        event_shape: tuple[int, ...] = (2,),
        net: Callable[[], hk.Module] = ScoreNet,
        predict: str = "eps",
        weighting: str = "simple",
        time_sampling: str = "uniform",
        name: str | None = None,
    ):
        super().__init__(name=name)
        if not isinstance(sde, sdes.SDE):
            raise TypeError(f"sde must be a zoo.sdes.SDE (VP, SubVP, VE, ...), got {sde!r}")
        if predict not in PREDICTIONS:
            raise ValueError(f"predict must be one of {PREDICTIONS}, got {predict!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if time_sampling not in TIME_SAMPLINGS:
            raise ValueError(
                f"time_sampling must be one of {TIME_SAMPLINGS}, got {time_sampling!r}"
            )
        if time_sampling == "importance" and (
            weighting != "likelihood" or sde.num_levels is not None
        ):
            raise ValueError(
                "time_sampling='importance' samples t for the likelihood weighting of a "
                f"continuous-time process: needs weighting='likelihood' (got {weighting!r}) "
                f"and an SDE such as VP, SubVP or VE (got {type(sde).__name__})"
            )
        self.time_sampling = time_sampling
        self.sde = sde
        self.event_shape = tuple(int(d) for d in event_shape)
        self.predict = predict
        self.weighting = weighting
        self._net = hk.transform(lambda x, t, is_training: net()(x, t, is_training))

    # --- the network as a pure function -----------------------------------------------------

    def _params(self) -> hk.Params:
        # hk.lift keeps the network's parameters inside this module's; loss and sample both
        # come here, so they share them. A pure apply (not a module call) is what Diffrax's
        # solvers can trace without leaking Haiku state.
        x = jnp.zeros((1, *self.event_shape))
        key = hk.next_rng_key() if hk.running_init() else None
        return hk.lift(self._net.init, name="net")(key, x, jnp.zeros((1,)), False)

    def _eps(self, params, x, t, key=None, is_training=False) -> jax.Array:
        """Predicted noise for a batch ``x: [B, *event]`` at times ``t: [B]``."""
        out = self._net.apply(params, key, x, t, is_training)
        if jnp.shape(out) != x.shape:  # static shapes: a user's network fails here, by name
            raise ValueError(
                f"net: the network maps x of shape {x.shape} to {jnp.shape(out)}; it must "
                "return an array shaped like x"
            )
        t = self._expand(t)
        if self.predict == "score":
            return self.sde.eps_from_score(out, t)
        if self.predict == "x0":
            return self.sde.eps_from_x0(x, out, t)
        return out

    def _expand(self, t):
        return jnp.reshape(t, jnp.shape(t) + (1,) * len(self.event_shape))

    def _check_batch(self, x, name):
        if x.ndim != 1 + len(self.event_shape) or tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(
                f"{name} must have shape [batch, {', '.join(map(str, self.event_shape))}] "
                f"(event_shape={self.event_shape}), got {tuple(x.shape)}"
            )
        _check_data(x, name)

    # --- entry points -----------------------------------------------------------------------

    def loss(self, x0: jax.Array) -> jax.Array:
        """Per-example losses ``[B]`` of a batch ``x0: [B, *event_shape]``."""
        self._check_batch(x0, "x0")
        params = self._params()
        t_key, eps_key, dropout_key = jax.random.split(hk.next_rng_key(), 3)
        importance = self.time_sampling == "importance"
        sample_time = (
            self.sde.sample_time_by_likelihood_weight if importance else self.sde.sample_time
        )
        t = sample_time(t_key, x0.shape[:1])  # [B]
        xt, eps = self.sde.perturb(eps_key, x0, self._expand(t))
        eps_hat = self._eps(params, xt, t, dropout_key, is_training=True)
        axes = tuple(range(1, x0.ndim))
        per_example = jnp.mean((eps_hat - eps) ** 2, axis=axes)
        if importance:
            span = self.sde.T - self.sde.t_min
            per_example = per_example * self.sde.likelihood_weight_integral() / span
        elif self.weighting == "likelihood":
            per_example = per_example * self.sde.diffusion(t) ** 2 / self.sde.variance(t)
        return per_example

    def score(self, x: jax.Array, t: jax.Array) -> jax.Array:
        """:math:`s_\\theta(x, t) \\approx \\nabla_x \\log p_t(x)` for a batch ``x`` and a
        scalar or per-example ``t``."""
        params = self._params()
        t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), x.shape[:1])
        return self.sde.score_from_eps(self._eps(params, x, t), self._expand(t))

    def sample(self, sample_shape: tuple[int], sampler: samplers_lib.Sampler | None = None):
        """``sample_shape = (n,)`` samples with ``sampler`` (default: the family's)."""
        sampler = self.default_sampler() if sampler is None else sampler
        if not isinstance(sampler, samplers_lib.Sampler):
            raise TypeError(
                f"sampler must be a zoo.samplers.Sampler (e.g. zoo.samplers.DDIM(steps=10)), "
                f"got {sampler!r}"
            )
        sample_shape = tuple(sample_shape)
        if len(sample_shape) != 1 or sample_shape[0] < 1:
            raise ValueError(f"sample_shape must be (n,) with n >= 1, got {sample_shape}")
        params = self._params()

        def score_fn(x, t):
            t = jnp.broadcast_to(t, x.shape[:1])
            return self.sde.score_from_eps(self._eps(params, x, t), self._expand(t))

        shape = (*sample_shape, *self.event_shape)
        return sampler.sample(self.sde, score_fn, hk.next_rng_key(), shape)


class DDPM(DiffusionModel):
    """Ho et al. 2020: a discrete VP schedule, noise prediction, ancestral sampling."""

    default_sampler = samplers_lib.Ancestral

    def __init__(self, schedule: sdes.DDPMSchedule | None = None, **kwargs: Any):
        schedule = sdes.ddpm_linear(1e-4, 0.02, 1000) if schedule is None else schedule
        if not isinstance(schedule, sdes.DDPMSchedule):
            raise TypeError(
                f"schedule must be a zoo.sdes.DDPMSchedule (e.g. ddpm_linear()), got {schedule!r}"
            )
        super().__init__(schedule, **kwargs)


class NCSN(DiffusionModel):
    """Song & Ermon 2019: discrete noise levels, annealed Langevin sampling.

    The default ``predict="eps"`` is the NCSNv2 parametrisation :math:`s = -\\hat\\epsilon/\\sigma`
    (Song & Ermon 2020, technique 3); ``predict="score"`` is the original unscaled network.
    """

    default_sampler = samplers_lib.AnnealedLangevin

    def __init__(self, schedule: sdes.NCSNSchedule | None = None, **kwargs: Any):
        schedule = sdes.ncsn_geometric(1.0, 0.01, 100) if schedule is None else schedule
        if not isinstance(schedule, sdes.NCSNSchedule):
            raise TypeError(
                "schedule must be a zoo.sdes.NCSNSchedule (e.g. ncsn_geometric()), "
                f"got {schedule!r}"
            )
        super().__init__(schedule, **kwargs)


class ScoreSDE(DiffusionModel):
    """Song et al. 2021: a continuous-time SDE (VP, SubVP or VE), sampled by default with the
    probability-flow ODE (adaptive Tsit5)."""

    default_sampler = samplers_lib.ProbabilityFlow

    def __init__(self, sde: sdes.SDE | None = None, **kwargs: Any):
        super().__init__(sdes.VP() if sde is None else sde, **kwargs)


@dataclasses.dataclass(frozen=True)
class Model:
    """Pure functions of a model family (from :func:`transform`); all jitted.

    - ``init(key, x) -> params``
    - ``loss(params, key, x) -> [B]`` per-example losses
    - ``score(params, x, t) -> like x``, ``t`` in ``[t_min, T]`` (checked when concrete)
    - ``sample(params, key, sample_shape, sampler=None) -> zoo.samplers.Samples``

    ``config`` is what was given to :func:`transform`; ``sde`` and ``event_shape`` are the
    resolved process and example shape.
    """

    family: type
    config: dict
    sde: sdes.SDE
    event_shape: tuple[int, ...]
    init: Callable
    loss: Callable
    score: Callable
    sample: Callable


def _check_data(x, name="x"):
    """NaN/inf check for concrete data (under jit the shapes are still checked by the model)."""
    if is_concrete(x) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} contains NaN or inf values")
    return x


def transform(family: type[DiffusionModel], **config: Any) -> Model:
    """Turn a model family and its configuration into pure, jitted functions.

    ``config`` holds the family's constructor arguments (``schedule=``/``sde=``,
    ``event_shape=``, ``net=``, ``predict=``, ``weighting=``).
    """
    if not (isinstance(family, type) and issubclass(family, DiffusionModel)):
        raise TypeError(f"family must be zoo.DDPM, zoo.NCSN or zoo.ScoreSDE, got {family!r}")
    # Build the module once outside any jit so that a bad config fails here, clearly.
    probe = hk.transform(lambda: (family(**config).sde, family(**config).event_shape))
    sde, event_shape = probe.apply({}, None)

    def fns():
        model = family(**config)
        return model.loss, (model.loss, model.score, model.sample)

    pure = hk.multi_transform(fns)
    loss_apply, score_apply, sample_apply = pure.apply
    init_jit, loss_jit = jax.jit(pure.init), jax.jit(loss_apply)

    # eqx.filter_jit (sample_shape and sampler static): a sampler's eqx.error_if then surfaces
    # as its own message, not as a JaxRuntimeError from inside a host callback.
    @eqx.filter_jit
    def sample_jit(params, key, sample_shape, sampler):
        return sample_apply(params, key, sample_shape, sampler)

    score_jit = jax.jit(lambda params, x, t: score_apply(params, None, x, t))

    def init(key, x):
        return init_jit(key, _check_data(x))

    def loss(params, key, x):
        return loss_jit(params, key, _check_data(x))

    def score(params, x, t):
        sde.check_time(t)  # a concrete t outside [t_min, T] would give inf or NaN scores
        return score_jit(params, x, t)

    def sample(params, key, sample_shape, sampler=None):
        if sampler is not None and not isinstance(sampler, samplers_lib.Sampler):
            raise TypeError(
                "sampler must be a zoo.samplers.Sampler (e.g. zoo.samplers.DDIM(steps=10)), "
                f"got {sampler!r}"
            )
        return sample_jit(params, key, tuple(sample_shape), sampler)

    return Model(
        family=family,
        config=dict(config),
        sde=sde,
        event_shape=event_shape,
        init=init,
        loss=loss,
        score=score,
        sample=sample,
    )
