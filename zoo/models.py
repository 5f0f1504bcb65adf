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

A class-conditional model (``num_classes=K``) takes integer ``labels`` in the loss (each
replaced by the null class ``K`` with probability ``p_uncond``) and, with a guidance scale,
in ``score`` and ``sample`` (classifier-free guidance, :mod:`zoo.guidance`)::

    model = zoo.transform(zoo.DDPM, event_shape=(8, 8, 1), net=zoo.UNet, num_classes=10)
    losses = model.loss(params, key, images, labels)                 # [batch]
    x = model.sample(params, key, (20,), labels=jnp.arange(20) % 10, guidance=2.0).x
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable
from typing import Any

import equinox as eqx
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from zoo import guidance as guidance_lib
from zoo import parametrisations, sdes
from zoo import samplers as samplers_lib
from zoo._checks import check_integer, check_option, is_concrete
from zoo.nets import ScoreNet

__all__ = [
    "Coupling",
    "DDPM",
    "DiffusionModel",
    "FlowMatching",
    "Model",
    "NCSN",
    "ScoreSDE",
    "TimeInput",
    "TimeSampling",
    "Weighting",
    "transform",
]


class Weighting(enum.StrEnum):
    """The loss's weight per noise level: ``simple`` (the eps regression of Ho et al. 2020, or
    the output's own units), ``likelihood`` (g^2 / sigma^2, Song et al. 2021b) or ``edm``
    (Karras et al. 2022's 1 / c_skip)."""

    SIMPLE = "simple"
    LIKELIHOOD = "likelihood"
    EDM = "edm"


class TimeSampling(enum.StrEnum):
    """How training draws t: ``uniform``; ``importance`` (proportional to the likelihood
    weight); ``logit_normal`` (Esser et al. 2024); ``edm`` (log-normal noise, Karras et al.)."""

    UNIFORM = "uniform"
    IMPORTANCE = "importance"
    LOGIT_NORMAL = "logit_normal"
    EDM = "edm"


class TimeInput(enum.StrEnum):
    """What the network is given as its time: ``t``, the process's own time, or ``c_noise``,
    EDM's :math:`\\log(\\tilde\\sigma_t)/4 = -\\lambda_t/4` (Karras et al. 2022, table 1)."""

    T = "t"
    C_NOISE = "c_noise"


class Coupling(enum.StrEnum):
    """How a batch pairs data with noise: ``independent`` or ``ot`` (minibatch optimal
    transport, Tong et al. 2024)."""

    INDEPENDENT = "independent"
    OT = "ot"


class DiffusionModel(hk.Module):
    """A forward process ``sde`` and a network ``net`` (a factory of an hk.Module with the
    contract ``net()(x, t, is_training) -> like x``) over examples of ``event_shape``.

    ``predict``: what the network outputs (:mod:`zoo.parametrisations`: ``"eps"``,
    ``"score"``, ``"x0"``, ``"v"``, ``"velocity"`` or ``"edm"``, the last with ``sigma_data``,
    the data's std, and optionally ``data_mean``, its mean); ``"v"``, ``"velocity"`` and
    ``"edm"`` take the simple loss in their own units (for ``"velocity"``, conditional flow
    matching's :math:`\\|\\hat u - u\\|^2`).
    ``weighting``: ``"simple"`` (:math:`\\lambda = 1`), ``"edm"`` (:math:`\\lambda =
    (\\tilde\\sigma^2 + s_d^2)/s_d^2` in noise units, EDM's weighting; needs ``sigma_data``)
    or ``"likelihood"``
    (:math:`\\lambda = g(t)^2/\\sigma_t^2`, Song et al. 2021b: the loss bounds the NLL).
    ``time_sampling``: ``"uniform"`` (the process's training times) or, with the likelihood
    weighting on a continuous-time process, ``"importance"``: :math:`t \\sim p(t) \\propto
    g(t)^2/\\sigma_t^2` (:meth:`zoo.sdes.SDE.sample_time_by_likelihood_weight`) with the
    constant weight :math:`Z/(T - t_{min})`, :math:`Z = \\int g^2/\\sigma^2 dt`. Both are
    unbiased for the same objective,

    .. math:: \\frac{1}{T - t_{min}} \\int_{t_{min}}^T \\frac{g(t)^2}{\\sigma_t^2}\\,
        E\\|\\hat\\epsilon - \\epsilon\\|^2 dt,

    the importance sampler with far less variance: :math:`g^2/\\sigma^2` grows like
    :math:`1/t` near :math:`t = 0` for VP processes. ``"logit_normal"`` (continuous-time
    processes): :math:`t` logit-normal on ``[t_min, T]``
    (:meth:`zoo.sdes.SDE.sample_time_logit_normal`, Esser et al. 2024). ``"edm"``
    (continuous-time processes): :math:`\\log\\tilde\\sigma \\sim N(P_{mean}, P_{std}^2)`
    (:meth:`zoo.sdes.SDE.sample_time_log_normal_noise`, Karras et al. 2022; ``p_mean=-1.2,
    p_std=1.2``).

    ``time_input``: what the network gets as its time, ``"t"`` (the process's time, which any
    network of the contract above reads) or ``"c_noise"`` (EDM's :math:`\\log(\\tilde
    \\sigma_t)/4 = -\\lambda_t/4`, the same for every process at the same noise level).

    ``coupling``: ``"independent"`` (each example's own noise) or ``"ot"``: the batch's noise
    paired with its examples by the assignment of least total squared distance, minibatch
    optimal transport (Tong et al. 2024), solved exactly on the host
    (``scipy.optimize.linear_sum_assignment``, :math:`O(B^3)` per step); unconditional
    models only, since it would pair an example with another class's noise path.

    ``num_classes``: ``None`` (unconditional) or the number of classes :math:`K` of a
    conditional model: the network gets ``label=`` the one-hot of an integer class in
    ``0..K``, :math:`K` the null class, and training replaces each label by the null class
    with probability ``p_uncond`` (Ho & Salimans 2022 use 0.1 or 0.2), so one network learns
    both the conditional and the unconditional model that guidance mixes
    (:mod:`zoo.guidance`). An unconditional model is unchanged by these two settings.
    """

    default_sampler: Callable[[], samplers_lib.Sampler] = samplers_lib.ProbabilityFlow

    def __init__(
        self,
        sde: sdes.SDE,
        event_shape: tuple[int, ...] = (2,),
        net: Callable[[], hk.Module] = ScoreNet,
        predict: str = "eps",
        weighting: Weighting | str = Weighting.SIMPLE,
        time_sampling: TimeSampling | str = TimeSampling.UNIFORM,
        num_classes: int | None = None,
        p_uncond: float = 0.1,
        coupling: Coupling | str = Coupling.INDEPENDENT,
        time_input: TimeInput | str = TimeInput.T,
        sigma_data: float | None = None,
        data_mean: float | tuple | None = None,
        p_mean: float = -1.2,
        p_std: float = 1.2,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if num_classes is not None:
            check_integer(num_classes, "num_classes")
        if not 0.0 <= p_uncond <= 1.0:
            raise ValueError(f"p_uncond must lie in [0, 1], got {p_uncond!r}")
        if not isinstance(sde, sdes.SDE):
            raise TypeError(f"sde must be a zoo.sdes.SDE (VP, SubVP, VE, ...), got {sde!r}")
        self.parametrisation = parametrisations.get(predict, sigma_data, data_mean)
        weighting = check_option(Weighting, weighting, "weighting")
        time_sampling = check_option(TimeSampling, time_sampling, "time_sampling")
        coupling = check_option(Coupling, coupling, "coupling")
        self.time_input = check_option(TimeInput, time_input, "time_input")
        if coupling is Coupling.OT and num_classes is not None:
            raise ValueError(
                "coupling='ot' pairs a batch's examples with its noise regardless of class; "
                "it is for unconditional models (num_classes=None), got "
                f"num_classes={num_classes}"
            )
        continuous = time_sampling in (TimeSampling.LOGIT_NORMAL, TimeSampling.EDM)
        if continuous and sde.num_levels is not None:
            raise ValueError(
                f"time_sampling={time_sampling.value!r} draws continuous times: needs an SDE "
                f"such as VP, VE or FlowPath, got {type(sde).__name__} (discrete levels)"
            )
        if weighting is Weighting.EDM and sigma_data is None:
            raise ValueError("weighting='edm' needs sigma_data, the standard deviation of the data")
        for value, what in ((p_mean, "p_mean"), (p_std, "p_std")):
            if not (isinstance(value, (int, float)) and np.isfinite(value)):
                raise ValueError(f"{what} must be a finite number, got {value!r}")
        if p_std <= 0:
            raise ValueError(f"p_std must be > 0, got {p_std!r}")
        self.p_mean, self.p_std = float(p_mean), float(p_std)
        if time_sampling is TimeSampling.IMPORTANCE and (
            weighting is not Weighting.LIKELIHOOD or sde.num_levels is not None
        ):
            raise ValueError(
                "time_sampling='importance' samples t for the likelihood weighting of a "
                f"continuous-time process: needs weighting='likelihood' (got {weighting.value!r}) "
                f"and an SDE such as VP, SubVP or VE (got {type(sde).__name__})"
            )
        self.time_sampling = time_sampling
        self.coupling = coupling
        self.sde = sde
        self.event_shape = tuple(int(d) for d in event_shape)
        try:  # else a broadcasting error from inside the traced loss, naming neither
            fits = np.broadcast_shapes(np.shape(data_mean), self.event_shape) == self.event_shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"data_mean must be a number or shaped like one example {self.event_shape}, "
                f"got shape {np.shape(data_mean)}"
            )
        self.weighting = weighting
        self.num_classes = num_classes
        self.p_uncond = float(p_uncond)
        self._net = hk.transform(_net_fn(net))

    # --- the network as a pure function -----------------------------------------------------

    def _params(self) -> hk.Params:
        # hk.lift keeps the network's parameters inside this module's; loss and sample both
        # come here, so they share them. A pure apply (not a module call) is what Diffrax's
        # solvers can trace without leaking Haiku state.
        x = jnp.zeros((1, *self.event_shape))
        key = hk.next_rng_key() if hk.running_init() else None
        label = self._one_hot(jnp.zeros((1,), jnp.int32))
        return hk.lift(self._net.init, name="net")(key, x, jnp.zeros((1,)), False, label)

    @property
    def conditional(self) -> bool:
        """Whether the network takes a class label (``num_classes`` set)."""
        return self.num_classes is not None

    def _one_hot(self, labels):
        """``[B, K + 1]`` one-hot labels for a conditional network (``None`` for the null
        class), or ``None`` for an unconditional one."""
        if not self.conditional:
            return None
        if labels is None:
            labels = jnp.full((1,), self.num_classes, jnp.int32)
        return guidance_lib.one_hot_labels(labels, self.num_classes)

    def _own_sampler(self) -> samplers_lib.Sampler:
        """The sampler :meth:`sample` takes when given none: the family's default."""
        return self.default_sampler()

    def _eps(self, params, x, t, key=None, is_training=False, labels=None) -> jax.Array:
        """Predicted noise for a batch ``x: [B, *event]`` at times ``t: [B]`` (and, for a
        conditional model, classes ``labels: [B]``; ``None``: the null class)."""
        return self._to_eps(x, t, self._output(params, x, t, key, is_training, labels))

    def _output(self, params, x, t, key=None, is_training=False, labels=None) -> jax.Array:
        """The network's output for a batch, in the units of ``predict``."""
        label = self._one_hot(labels)
        if label is not None:
            label = jnp.broadcast_to(label, (x.shape[0], label.shape[-1]))
        given = self.parametrisation.network_input(self.sde, x, self._expand(t))
        time = t if self.time_input is TimeInput.T else -0.25 * self.sde.log_snr(t)
        out = self._net.apply(params, key, given, time, is_training, label)
        if jnp.shape(out) != x.shape:  # static shapes: a user's network fails here, by name
            raise ValueError(
                f"net: the network maps x of shape {x.shape} to {jnp.shape(out)}; it must "
                "return an array shaped like x"
            )
        return out

    def _to_eps(self, x, t, out):
        """The network's output ``out`` at ``x, t: [B]`` converted to noise units."""
        return self.parametrisation.to_eps(self.sde, x, self._expand(t), out)

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

    def _check_labels(self, labels, n: int, name: str = "labels"):
        """``labels`` as int32 ``[n]`` (a scalar is broadcast), checked when concrete."""
        if not self.conditional:
            raise ValueError(
                f"{name} given to an unconditional model; transform it with num_classes=K "
                "to train and sample by class"
            )
        labels = jnp.asarray(labels)
        if not jnp.issubdtype(labels.dtype, jnp.integer) or labels.ndim > 1:
            raise ValueError(f"{name} must be integer classes [batch], got {labels.dtype} "
                             f"{tuple(labels.shape)}")  # fmt: skip
        if labels.ndim == 1 and labels.shape[0] != n:
            raise ValueError(f"{name} must hold one class per example ({n}), got {labels.shape[0]}")
        guidance_lib.check_labels(labels, self.num_classes, name)
        return jnp.broadcast_to(labels.astype(jnp.int32), (n,))

    def loss(self, x0: jax.Array, labels: jax.Array | None = None) -> jax.Array:
        """Per-example losses ``[B]`` of a batch ``x0: [B, *event_shape]`` (with integer
        classes ``labels: [B]`` for a conditional model; ``None``: all null)."""
        self._check_batch(x0, "x0")
        params = self._params()
        base_key = hk.next_rng_key()
        t_key, eps_key, dropout_key = jax.random.split(base_key, 3)
        if labels is not None:
            labels = self._check_labels(labels, x0.shape[0])
            # Drop each label to the null class at rate p_uncond: the same network then
            # learns the unconditional model (Ho & Salimans 2022, algorithm 1). A key of its
            # own keeps the unconditional path's keys as they were.
            drop = jax.random.bernoulli(
                jax.random.fold_in(base_key, 1), self.p_uncond, labels.shape
            )
            labels = jnp.where(drop, self.num_classes, labels)
        importance = self.time_sampling is TimeSampling.IMPORTANCE
        sample_time = {
            TimeSampling.UNIFORM: self.sde.sample_time,
            TimeSampling.IMPORTANCE: self.sde.sample_time_by_likelihood_weight,
            TimeSampling.LOGIT_NORMAL: self.sde.sample_time_logit_normal,
            TimeSampling.EDM: functools.partial(
                self.sde.sample_time_log_normal_noise, mean=self.p_mean, std=self.p_std
            ),
        }[self.time_sampling]
        t = sample_time(t_key, x0.shape[:1])  # [B]
        eps = jax.random.normal(eps_key, x0.shape, x0.dtype)
        if self.coupling is Coupling.OT:
            eps = eps[_assignment(x0, eps)]
        alpha, sigma = self.sde.marginal(self._expand(t))
        xt = alpha * x0 + sigma * eps
        out = self._output(params, xt, t, dropout_key, is_training=True, labels=labels)
        axes = tuple(range(1, x0.ndim))
        if self.parametrisation.own_units and self.weighting is Weighting.SIMPLE:
            # in the output's units: for "velocity" the conditional flow-matching loss (Lipman
            # et al. 2023, eq. 9), for "v" Salimans & Ho's, for "edm" Karras et al.'s
            target = self.parametrisation.target(self.sde, x0, eps, self._expand(t))
            return jnp.mean((out - target) ** 2, axis=axes)
        eps_hat = self._to_eps(xt, t, out)
        per_example = jnp.mean((eps_hat - eps) ** 2, axis=axes)
        if self.weighting is Weighting.EDM:  # (sigma~^2 + s_d^2) / s_d^2 = 1 / c_skip
            _, c_skip, _, _ = self.parametrisation.edm_coefficients(self.sde, t)
            return per_example / c_skip
        if importance:
            span = self.sde.T - self.sde.t_min
            per_example = per_example * self.sde.likelihood_weight_integral() / span
        elif self.weighting is Weighting.LIKELIHOOD:
            per_example = per_example * self.sde.diffusion(t) ** 2 / self.sde.variance(t)
        return per_example

    def _score_fn(self, params, labels, guidance, n: int):
        """The score ``fn(x, t)`` the samplers read, with the data prediction beside it
        (:class:`zoo.samplers.Predictions`): the model's, or for labels the guided one
        (:func:`zoo.guidance.guided_score`)."""

        def score_fn(x, t, labels=None):
            t = jnp.broadcast_to(t, x.shape[:1])
            eps = self._eps(params, x, t, labels=labels)
            return self.sde.score_from_eps(eps, self._expand(t))

        def x0_fn(x, t, labels=None):
            t = jnp.broadcast_to(t, x.shape[:1])
            out = self._output(params, x, t, labels=labels)
            return self.parametrisation.to_x0(self.sde, x, self._expand(t), out)

        if labels is None:
            if guidance is not None and not guidance_lib.is_unguided(guidance):
                raise ValueError("guidance needs labels: the classes to guide towards")
            score, x0 = score_fn, x0_fn
        else:
            labels = self._check_labels(labels, n)
            scale = 0 if guidance is None else guidance
            # x0 is affine in the score with the same coefficients for every label: guided alike
            score, x0 = (
                guidance_lib.guided_score(f, labels, scale, self.num_classes)
                for f in (score_fn, x0_fn)
            )
        return samplers_lib.Predictions(score, x0, self.parametrisation.x0_without_signal)

    def score(
        self, x: jax.Array, t: jax.Array, labels: jax.Array | None = None, guidance=None
    ) -> jax.Array:
        """:math:`s_\\theta(x, t) \\approx \\nabla_x \\log p_t(x)` for a batch ``x`` and a
        scalar or per-example ``t``; for a conditional model with ``labels``, the guided
        score :math:`(1 + w) s(x, t, c) - w s(x, t, \\varnothing)`, ``w = guidance``."""
        x = jnp.asarray(x)
        self._check_batch(x, "x")  # else the network's first layer fails, inside Haiku
        t = jnp.asarray(t, jnp.float32)
        if t.shape not in ((), x.shape[:1]):
            raise ValueError(
                f"t must be a scalar or one time per example, shape {x.shape[:1]}, got shape "
                f"{t.shape}"
            )
        params = self._params()
        t = jnp.broadcast_to(t, x.shape[:1])
        return self._score_fn(params, labels, guidance, x.shape[0])(x, t)

    def sample(
        self,
        sample_shape: tuple[int],
        sampler: samplers_lib.Sampler | None = None,
        labels: jax.Array | None = None,
        guidance=None,
    ):
        """``sample_shape = (n,)`` samples with ``sampler`` (default: the family's); for a
        conditional model, of the classes ``labels`` (``[n]`` or one for all) with guidance
        scale ``guidance`` (``None`` or 0: the conditional model)."""
        sampler = self._own_sampler() if sampler is None else sampler
        if not isinstance(sampler, samplers_lib.Sampler):
            raise TypeError(
                f"sampler must be a zoo.samplers.Sampler (e.g. zoo.samplers.DDIM(steps=10)), "
                f"got {sampler!r}"
            )
        sample_shape = tuple(sample_shape)
        if len(sample_shape) != 1 or sample_shape[0] < 1:
            raise ValueError(f"sample_shape must be (n,) with n >= 1, got {sample_shape}")
        params = self._params()
        score_fn = self._score_fn(params, labels, guidance, sample_shape[0])
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


class FlowMatching(DiffusionModel):
    """Flow matching on the straight path :math:`x_t = (1 - t) x_0 + t\\epsilon`
    (:class:`zoo.sdes.FlowPath`; Lipman et al. 2023, Liu et al. 2023): the network predicts the
    velocity :math:`u = \\epsilon - x_0` (``predict="velocity"``, not the "v" of Salimans & Ho
    2022), trained by :math:`\\|\\hat u(x_t, t) - u\\|^2`, and by default sampled by Euler's
    method on the probability-flow ODE, whose drift on this path is :math:`\\hat u`, from
    :math:`t = 1` (:class:`zoo.samplers.Euler` with ``start="noise"``): 100 steps uniform in
    :math:`t` and a final denoising step (101 evaluations); a network that predicts the noise,
    the score or under EDM's preconditioning gives no :math:`\\hat x_0` at :math:`t = 1`, and its
    Euler starts at the path's ``T``, below 1, as the samplers that read the score do
    (:class:`zoo.sdes.FlowPath`).

    ``time_sampling="logit_normal"`` (Esser et al. 2024) and ``coupling="ot"`` (Tong et al.
    2024) are the common variants (:class:`DiffusionModel`)."""

    @staticmethod
    def default_sampler() -> samplers_lib.Sampler:
        return samplers_lib.Euler(steps=100, start="noise")

    def _own_sampler(self) -> samplers_lib.Sampler:
        # from t = 1 where the output gives x0 there (velocity, x0, v); a noise or score
        # prediction says nothing of x0 at alpha = 0, so its Euler starts at the path's T
        if self.parametrisation.x0_without_signal:
            return self.default_sampler()
        return samplers_lib.Euler(steps=100)

    def __init__(self, sde: sdes.FlowPath | None = None, predict: str = "velocity", **kwargs: Any):
        super().__init__(sdes.FlowPath() if sde is None else sde, predict=predict, **kwargs)


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
    - ``loss(params, key, x, labels=None) -> [B]`` per-example losses
    - ``score(params, x, t, labels=None, guidance=None) -> like x``, ``t`` in ``[t_min, T]``
      (checked when concrete)
    - ``sample(params, key, sample_shape, sampler=None, labels=None, guidance=None) ->
      zoo.samplers.Samples``

    ``labels`` (integer classes, ``num_classes`` the null one) and ``guidance`` (the scale
    :math:`w \\ge 0` of classifier-free guidance, :mod:`zoo.guidance`) are for conditional
    models (``num_classes=K`` in :func:`transform`). A nonzero ``guidance`` doubles the cost of
    each score evaluation (the conditional and the unconditional halves in one call).

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


def _net_fn(net: Callable[[], hk.Module]):
    """The network as ``fn(x, t, is_training, label)``; ``label`` is passed only when given,
    so a user's network with the plain ``(x, t, is_training)`` contract serves unconditional
    models."""

    def fn(x, t, is_training, label=None):
        if label is None:
            return net()(x, t, is_training)
        return net()(x, t, is_training, label=label)

    return fn


def _assignment(x0: jax.Array, eps: jax.Array) -> jax.Array:
    """The permutation ``p`` minimising :math:`\\sum_i \\|x_{0,i} - \\epsilon_{p_i}\\|^2`
    over a batch: exact minibatch optimal transport between equal-size batches, an assignment
    problem (Hungarian algorithm, on the host; one call per example under ``vmap``)."""
    from scipy.optimize import linear_sum_assignment

    def solve(cost):
        return linear_sum_assignment(cost)[1].astype(np.int32)

    flat = x0.reshape(x0.shape[0], -1), eps.reshape(eps.shape[0], -1)
    cost = jnp.sum((flat[0][:, None, :] - flat[1][None, :, :]) ** 2, axis=-1)
    out = jax.ShapeDtypeStruct(x0.shape[:1], jnp.int32)
    return jax.pure_callback(solve, out, cost, vmap_method="sequential")


def _as_guidance(guidance):
    """``None`` for no guidance (``None`` or a Python 0: one network call per score), else the
    checked scale as a float32 array, so that every scale shares one compilation."""
    if guidance is None or guidance_lib.is_unguided(guidance):
        return None
    guidance_lib.check_scale(guidance)
    return jnp.asarray(guidance, jnp.float32)


def _check_data(x, name="x"):
    """NaN/inf check for concrete data (under jit the shapes are still checked by the model)."""
    if is_concrete(x) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} contains NaN or inf values")
    return x


def _check_params(params, expected) -> None:
    """``ValueError`` naming the first parameter of ``params`` missing, extra or of another
    shape than in ``expected`` (a model's ``init`` traced)."""
    path = jax.tree_util.keystr
    given = {path(k): np.shape(v) for k, v in jax.tree_util.tree_leaves_with_path(params)}
    wanted = {path(k): v.shape for k, v in jax.tree_util.tree_leaves_with_path(expected)}
    hint = "params of another model or config? (this model's are from its init)"
    for name, shape in wanted.items():
        if name not in given:
            raise ValueError(f"params has no {name} (shape {shape}): {hint}")
        if given[name] != shape:
            raise ValueError(
                f"params{name} has shape {given[name]}, this model expects {shape}: {hint}"
            )
    extra = sorted(set(given) - set(wanted))
    if extra:
        raise ValueError(f"params has {extra[0]}, which this model has not: {hint}")


def transform(family: type[DiffusionModel], **config: Any) -> Model:
    """Turn a model family and its configuration into pure, jitted functions.

    ``config`` holds the family's constructor arguments (``schedule=``/``sde=``,
    ``event_shape=``, ``net=``, ``predict=``, ``weighting=``; ``num_classes=`` and
    ``p_uncond=`` for a class-conditional model).
    """
    if not (isinstance(family, type) and issubclass(family, DiffusionModel)):
        raise TypeError(
            f"family must be zoo.DDPM, zoo.NCSN, zoo.ScoreSDE or zoo.FlowMatching, got {family!r}"
        )
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
    def sample_jit(params, key, sample_shape, sampler, labels, guidance):
        return sample_apply(params, key, sample_shape, sampler, labels, guidance)

    def time_inside(t):
        """``t``, failing when run (``eqx.error_if``) if outside ``[t_min, T]``: the check of
        ``sde.check_time`` for a ``t`` traced under a caller's ``jit``."""
        tol = 1e-6 * max(1.0, sde.T)
        bad = (t < sde.t_min - tol) | (t > sde.T + tol) | ~jnp.isfinite(t)
        return eqx.error_if(
            t,
            jnp.any(bad),
            f"t must lie in [t_min, T] = [{sde.t_min:g}, {sde.T:g}] for {type(sde).__name__} "
            "(a traced t, checked when the score is computed)",
        )

    score_jit = jax.jit(lambda params, x, t, labels, guidance: score_apply(
        params, None, x, time_inside(t), labels, guidance))  # fmt: skip

    @functools.cache
    def expected_params():
        key = jax.ShapeDtypeStruct((2,), jnp.uint32)
        return jax.eval_shape(pure.init, key, jax.ShapeDtypeStruct((1, *event_shape), jnp.float32))

    def check_params(params):
        # Params of another model or config would fail inside Haiku, naming neither.
        _check_params(params, expected_params())
        return params

    def init(key, x):
        return init_jit(key, _check_data(x))

    num_classes = config.get("num_classes")

    def check_labels(labels):
        # Under jit the model sees tracers: the values are checked here, eagerly.
        if labels is not None and num_classes is not None:
            guidance_lib.check_labels(labels, num_classes)
        return labels

    def loss(params, key, x, labels=None):
        return loss_jit(check_params(params), key, _check_data(x), check_labels(labels))

    def score(params, x, t, labels=None, guidance=None):
        sde.check_time(t)  # a concrete t outside [t_min, T] would give inf or NaN scores
        guidance = _as_guidance(guidance)
        return score_jit(check_params(params), x, t, check_labels(labels), guidance)

    def sample(params, key, sample_shape, sampler=None, labels=None, guidance=None):
        if sampler is not None and not isinstance(sampler, samplers_lib.Sampler):
            raise TypeError(
                "sampler must be a zoo.samplers.Sampler (e.g. zoo.samplers.DDIM(steps=10)), "
                f"got {sampler!r}"
            )
        labels, guidance = check_labels(labels), _as_guidance(guidance)
        params = check_params(params)
        return sample_jit(params, key, tuple(sample_shape), sampler, labels, guidance)

    return Model(
        family=family,
        # an option given as its enum member is recorded as its string, so that the config's
        # repr (a cache key of the benchmark) is one for both spellings
        config={k: v.value if isinstance(v, enum.Enum) else v for k, v in config.items()},
        sde=sde,
        event_shape=event_shape,
        init=init,
        loss=loss,
        score=score,
        sample=sample,
    )
