"""Ready-made configurations: the public write-ups the zoo reproduces, and the zoo's defaults.

- :func:`case_study` - "Diffusion models II: DDPMs, NCSNs and score SDEs" (Haiku, 2023) on the
  nine-Gaussians mixture, as written but without its defects: ancestral sampling adds
  :math:`\\sigma_t z` (not :math:`\\beta_t z`) and starts at the last valid level, annealed
  Langevin starts from the prior at :math:`\\sigma_1` (not :math:`N(0, I)`), and training draws
  every minibatch from the whole training set (not only the first 64 batches).
- :func:`toy` - the zoo's defaults for 2-D toy data, one per family (``FAMILIES``), with the
  schedules chosen so that the prior matches the noised data at ``T`` (the case study's DDPM
  schedule keeps :math:`\\sqrt{\\bar\\alpha_T} = 0.59` of the signal; its NCSN's largest
  :math:`\\sigma = 1` is below the spread of the data).
- :func:`intro` - the intro notebook's two circles of 20 points and its DDPM schedule.
- :func:`digits` - the zoo's defaults for the 8x8 digits over a UNet, one per family, and
  :func:`mnist_writeup`, a DDPM + DDIM write-up on them as written.

:data:`FAMILY_TABLE` holds each family once (:class:`Family`: model class, process, loss
weighting and default sampler per kind of data); :func:`case_study`, :func:`toy` and
:func:`digits` read it, so a new family is one entry there.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
from collections.abc import Callable, Mapping

import numpy as np
import optax

from zoo import data as data_lib
from zoo import images, models, samplers, sdes
from zoo._checks import INT32_MAX, check_integer, check_positive
from zoo.models import Model, transform
from zoo.nets import ScoreNet, UNet

__all__ = [
    "Preset",
    "Family",
    "CaseStudy",
    "FAMILY_TABLE",
    "FAMILIES",
    "LIKELIHOOD_WEIGHTED",
    "PARAMETRISATIONS",
    "PARAMETRISED",
    "CASE_STUDY_FAMILIES",
    "case_study",
    "toy",
    "TOY_NET",
    "intro",
    "mnist_writeup",
    "digits",
]


@dataclasses.dataclass(frozen=True)
class CaseStudy:
    """A family as the case study wrote it: its process, default sampler and what its network
    outputs."""

    process: sdes.SDE
    sampler: samplers.Sampler
    predict: str | None = None  # None: the model's default (the noise)


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family of the zoo: a model class over a forward ``process`` (passed as the
    class's first argument, ``schedule=`` or ``sde=``), its loss's ``weighting`` and
    ``time_sampling`` (:class:`zoo.models.DiffusionModel`), its display ``label`` and ``color``,
    and its default sampler for each
    kind of data: the 2-D toys (:func:`toy`), the 8x8 digits (:func:`digits`; ``None``: no
    digits preset) and, where the case study has the family, the case study's own version
    (:func:`case_study`)."""

    model: type[models.DiffusionModel]
    process: sdes.SDE
    toy_sampler: samplers.Sampler
    digits_sampler: samplers.Sampler | None
    label: str  # in titles and legends
    color: str  # in every figure (zoo.plotting)
    weighting: models.Weighting = models.Weighting.SIMPLE
    time_sampling: models.TimeSampling = models.TimeSampling.UNIFORM
    predict: str | None = None  # None: the model's own (noise; flow matching's velocity)
    case_study: CaseStudy | None = None

    def transform(
        self,
        net: Callable,
        process: sdes.SDE | None = None,
        event_shape: tuple[int, ...] | None = None,
        predict: str | None = None,
        sigma_data: float | None = None,
        data_mean: float | tuple | None = None,
    ) -> Model:
        """:func:`zoo.transform` of this family over ``net`` (and ``process``, ``predict`` in
        place of the family's; ``sigma_data`` and ``data_mean``, the data's std and mean, for
        ``predict="edm"``). Besides
        the process and ``net``, the config names only the settings that differ from the
        model's defaults, so that equal models have equal configs (the benchmark's cache keys
        hash them)."""
        predict = self.predict if predict is None else predict
        # The first argument of every family's constructor is its process (DDPM and NCSN:
        # schedule, ScoreSDE: sde).
        process_arg = next(iter(inspect.signature(self.model).parameters))
        config: dict = {process_arg: self.process if process is None else process}
        if event_shape is not None:
            config["event_shape"] = event_shape
        config["net"] = net
        if predict is not None:  # None: the model's own (noise, or velocity for flow matching)
            config["predict"] = predict
        if sigma_data is not None:  # predict="edm" without it: the model names what is missing
            config["sigma_data"] = sigma_data
        if data_mean is not None:
            config["data_mean"] = data_mean
        if self.weighting is not models.Weighting.SIMPLE:
            config["weighting"] = self.weighting
        if self.time_sampling is not models.TimeSampling.UNIFORM:
            config["time_sampling"] = self.time_sampling
        return transform(self.model, **config)


# The processes are shared by the 2-D toys and the digits. NCSN's and VE's largest noise,
# sigma = 10, exceeds the largest distance between two digits in [-1, 1]^64 (9.06): the prior
# must cover the data (Song & Ermon 2020, technique 1). On the digits each default sampler
# costs at most 1000 network evaluations.
_FAMILIES = {
    "ddpm": Family(
        label="DDPM",
        color="#0072B2",  # blue
        model=models.DDPM,
        process=sdes.ddpm_linear(1e-4, 0.02, 1000),
        toy_sampler=samplers.Ancestral(),
        digits_sampler=samplers.Ancestral(),
        case_study=CaseStudy(sdes.ddpm_linear(1e-3, 0.02, 100), samplers.Ancestral()),
    ),
    "ncsn": Family(
        label="NCSN",
        color="#E69F00",  # orange
        model=models.NCSN,
        process=sdes.ncsn_geometric(10.0, 0.01, 100),
        # Half the case study's 2e-5: unadjusted Langevin with step h on a Gaussian of variance
        # v settles at variance v / (1 - h / 4v), and here h = step_size * sigma_i^2 / sigma_L^2
        # is 0.1 of each level's noise variance instead of 0.2.
        toy_sampler=samplers.AnnealedLangevin(steps_per_level=100, step_size=1e-5),
        # 5 steps on each of the 100 levels, each step 0.2 of the level's variance.
        digits_sampler=samplers.AnnealedLangevin(steps_per_level=5, step_size=2e-5),
        # The case study's network output is the score itself, weighted by sigma^2 in the loss.
        case_study=CaseStudy(
            sdes.ncsn_geometric(1.0, 0.01, 100),
            samplers.AnnealedLangevin(steps_per_level=100, step_size=2e-5),
            predict="score",
        ),
    ),
    "vp": Family(
        label="VP SDE",
        color="#56B4E9",  # sky blue: DDPM's continuous limit
        model=models.ScoreSDE,
        process=sdes.VP(0.1, 20.0),
        toy_sampler=samplers.EulerMaruyama(steps=1000),
        digits_sampler=samplers.EulerMaruyama(steps=500),
    ),
    "subvp": Family(
        label="sub-VP SDE",
        color="#009E73",  # bluish green
        model=models.ScoreSDE,
        process=sdes.SubVP(0.1, 20.0),
        toy_sampler=samplers.EulerMaruyama(steps=1000),
        digits_sampler=samplers.EulerMaruyama(steps=500),
        case_study=CaseStudy(sdes.SubVP(0.1, 10.0), samplers.ProbabilityFlow()),
    ),
    "ve": Family(
        label="VE SDE",
        color="#D55E00",  # vermillion: NCSN's continuous limit
        model=models.ScoreSDE,
        process=sdes.VE(0.01, 10.0),
        toy_sampler=samplers.EulerMaruyama(steps=1000),
        digits_sampler=samplers.EulerMaruyama(steps=500),
    ),
    "flow": Family(
        label="flow matching",
        color="#CC79A7",  # reddish purple
        model=models.FlowMatching,
        process=sdes.FlowPath(),
        toy_sampler=models.FlowMatching.default_sampler(),
        digits_sampler=models.FlowMatching.default_sampler(),
    ),
}


def _likelihood_weighted(family: Family) -> Family:
    """``family`` trained with the likelihood weighting :math:`g(t)^2/\\sigma_t^2` and t drawn
    from the density proportional to it (Song, Durkan, Murray & Ermon 2021), on the toys only."""
    return dataclasses.replace(
        family,
        weighting=models.Weighting.LIKELIHOOD,
        time_sampling=models.TimeSampling.IMPORTANCE,
        digits_sampler=None,
        case_study=None,
    )


#: The parametrisations offered beside each diffusion family's noise prediction
#: (:mod:`zoo.parametrisations`), as the families ``"<family>-<predict>"``.
PARAMETRISATIONS = ("v", "edm")


def _parametrised(family: Family, predict: str) -> Family:
    return dataclasses.replace(family, predict=predict, case_study=None)


#: Every family by name: the six of ``FAMILIES``; ``"<family>-lw"``, the likelihood-weighted
#: version of each score SDE (importance sampling of t needs a continuum; flow matching's loss
#: is its own); ``"<family>-<predict>"``, each diffusion family with another parametrisation;
#: and ``"<family>-<predict>-lw"``, each score SDE with both.

FAMILY_TABLE: Mapping[str, Family] = types.MappingProxyType(
    {
        **_FAMILIES,
        **{
            f"{name}-lw": _likelihood_weighted(family)
            for name, family in _FAMILIES.items()
            if family.model is models.ScoreSDE
        },
        **{
            f"{name}-{predict}": _parametrised(family, predict)
            for name, family in _FAMILIES.items()
            if family.model is not models.FlowMatching
            for predict in PARAMETRISATIONS
        },
        **{
            f"{name}-{predict}-lw": _likelihood_weighted(_parametrised(family, predict))
            for name, family in _FAMILIES.items()
            if family.model is models.ScoreSDE
            for predict in PARAMETRISATIONS
        },
    }
)
FAMILIES = tuple(_FAMILIES)
#: ``"<family>-lw"`` and ``"<family>-<predict>-lw"``: the score SDEs trained with the
#: likelihood weighting
LIKELIHOOD_WEIGHTED = tuple(name for name in FAMILY_TABLE if name.endswith("-lw"))
#: ``"<family>-v"`` and ``"<family>-edm"``: each diffusion family with the network predicting
#: ``v`` or under EDM's preconditioning (its ``sigma_data`` and ``data_mean`` the training
#: data's)
PARAMETRISED = tuple(
    n for n in FAMILY_TABLE if n.endswith(tuple(f"-{p}" for p in PARAMETRISATIONS))
)
CASE_STUDY_FAMILIES = tuple(n for n, f in FAMILY_TABLE.items() if f.case_study is not None)


@dataclasses.dataclass(frozen=True)
class Preset:
    """A model, the data it is trained on, the training budget and the sampler to use."""

    name: str
    model: Model
    data: data_lib.Toy | images.Digits
    steps: int
    batch_size: int
    learning_rate: float
    sampler: samplers.Sampler
    # Optional: an optax optimizer factory of the learning rate (default None: adamw).
    optimizer_fn: Callable[[float], optax.GradientTransformation] | None = None

    def __post_init__(self):
        # A negative rate climbs the loss, zero never moves: both train "fine" and say nothing.
        check_positive(self.learning_rate, "learning_rate")
        check_integer(
            self.steps, "steps", maximum=INT32_MAX
        )  # else fit refuses it only when called
        check_integer(self.batch_size, "batch_size")

    def optimizer(self) -> optax.GradientTransformation:
        if self.optimizer_fn is not None:
            return self.optimizer_fn(self.learning_rate)
        return optax.adamw(self.learning_rate)

    def fit(self, seeds=(0,), steps: int | None = None, **kwargs):
        """Train with :func:`zoo.train.fit` at this preset's budget (``steps`` overrides it)."""
        from zoo import train

        kwargs.setdefault("batch_size", self.batch_size)
        kwargs.setdefault("optimizer", self.optimizer())
        return train.fit(
            self.model,
            self.data,
            steps=self.steps if steps is None else steps,
            seeds=seeds,
            **kwargs,
        )

    def sample(self, params, key, n: int, sampler: samplers.Sampler | None = None):
        return self.model.sample(params, key, (n,), sampler or self.sampler)


def _edm_statistics(family: Family, data) -> dict:
    """``{"sigma_data": s, "data_mean": mu}`` for an ``edm`` family: the mean of ``data``'s
    training set per coordinate (a nested tuple of the example's shape) and its std about
    that mean over every coordinate, :math:`s^2` the mean of the coordinates' variances,
    each to 3 significant digits (a stable config key); else ``{}``."""
    if family.predict != "edm":
        return {}
    x = np.asarray(data.train_set(), dtype=np.float64)
    mean = np.vectorize(lambda v: float(f"{v:.3g}"))(x.mean(axis=0))
    sigma = float(f"{float(np.sqrt(np.mean(x.var(axis=0)))):.3g}")
    return {"sigma_data": sigma, "data_mean": _nested_tuple(mean)}


def _nested_tuple(a: np.ndarray) -> tuple:
    return tuple(_nested_tuple(row) if row.ndim else float(row) for row in a)


def _check_family(family: str, allowed: tuple[str, ...]) -> Family:
    if family not in allowed:
        raise ValueError(f"family must be one of {allowed}, got {family!r}")
    return FAMILY_TABLE[family]


def case_study(family: str) -> Preset:
    """The case study's ``"ddpm"``, ``"ncsn"`` or ``"subvp"`` on the nine-Gaussians mixture:
    its schedules, network, samplers and budget (adamw 1e-3, batch 64, 128,000 steps)."""
    written = _check_family(family, CASE_STUDY_FAMILIES).case_study
    model = FAMILY_TABLE[family].transform(
        ScoreNet,  # the case study's network is ScoreNet's default
        process=written.process,
        predict=written.predict,
    )
    return Preset(
        name=f"case_study/{family}",
        model=model,
        data=data_lib.nine_gaussians(),
        steps=128_000,
        batch_size=64,
        learning_rate=1e-3,
        sampler=written.sampler,
    )


#: the network of :func:`toy`: the case study's MLP without dropout
TOY_NET = functools.partial(ScoreNet, dropout=0.0)


def toy(
    family: str,
    data: data_lib.Toy | str = "nine_gaussians",
    steps: int = 128_000,
    net: Callable | None = None,
) -> Preset:
    """The zoo's default configuration of ``family`` (one of ``FAMILIES``) for 2-D toy data;
    ``"vp-lw"``, ``"subvp-lw"`` and ``"ve-lw"`` (``LIKELIHOOD_WEIGHTED``) are the same SDE
    families trained with ``weighting="likelihood", time_sampling="importance"``, and
    ``"<family>-v"``, ``"<family>-edm"`` (``PARAMETRISED``) the diffusion families with the
    network predicting ``v`` or under EDM's preconditioning, ``sigma_data`` the data's std.

    ``data`` may also be other vectors of unit scale (``event_shape (d,)`` and a
    ``train_set(n)``, e.g. a user's standardised points); ``net`` is a network factory with
    the contract of :class:`zoo.nets.ScoreNet` (default :data:`TOY_NET`)."""
    entry = _check_family(family, FAMILIES + LIKELIHOOD_WEIGHTED + PARAMETRISED)
    data = data_lib.get(data) if isinstance(data, str) else data
    event_shape = tuple(data.event_shape)
    if len(event_shape) != 1:
        raise ValueError(
            f"data must be a 2-D toy or other vectors (event_shape (d,)), got {data.name!r} "
            f"with event_shape {event_shape}; zoo.presets.digits configures the digits"
        )
    # The default event shape is left out of the config: equal models keep equal configs.
    shape = {} if event_shape == (2,) else {"event_shape": event_shape}
    return Preset(
        name=f"toy/{family}",
        model=entry.transform(
            TOY_NET if net is None else net, **shape, **_edm_statistics(entry, data)
        ),
        data=data,
        steps=steps,
        batch_size=256,
        learning_rate=1e-3,
        sampler=entry.toy_sampler,
    )


def intro() -> Preset:
    """The intro notebook: DDPM on two circles of 20 points, betas from beta_min/N to
    beta_max/N (beta 0.1..20, N = 100)."""
    n, beta_min, beta_max = 100, 0.1, 20.0
    model = transform(
        models.DDPM, schedule=sdes.ddpm_linear(beta_min / n, beta_max / n, n), net=ScoreNet
    )
    return Preset(
        name="intro",
        model=model,
        data=data_lib.two_circles(),
        steps=20_000,
        batch_size=20,
        learning_rate=1e-3,
        sampler=samplers.Ancestral(),
    )


# --- images: handwritten digits 8x8 -----------------------------------------------------------


def mnist_writeup(net: Callable | None = None) -> Preset:
    """The DDPM + DDIM MNIST write-up (flax UNet, 2022) on the 8x8 digits: T = 200 betas
    linear 1e-4..0.02, eps-prediction, a UNet (ResNet blocks, GroupNorm(8), attention,
    sinusoidal time embedding), plain adam 1e-4, batch 64; ancestral sampling, and DDIM with
    10 steps (``samplers.DDIM(steps=10)``, :math:`\\eta = 0`) from the same network.

    As written, 200 steps of these betas leave :math:`\\sqrt{\\bar\\alpha_T} = 0.36` of the
    signal at ``T``, so the prior :math:`N(0, I)` is not the noised data (:func:`digits`'s
    ``"ddpm"`` uses 1000 steps: 0.006). ``net`` (a UNet factory) defaults to
    :class:`zoo.nets.UNet`'s defaults; the budget (20,000 steps) is ours.
    """
    net = UNet if net is None else net
    model = transform(
        models.DDPM, schedule=sdes.ddpm_linear(1e-4, 0.02, 200), event_shape=(8, 8, 1), net=net
    )
    return Preset(
        name="mnist_writeup",
        model=model,
        data=images.digits(),
        steps=20_000,
        batch_size=64,
        learning_rate=1e-4,
        sampler=samplers.Ancestral(),
        optimizer_fn=optax.adam,
    )


def digits(family: str, net: Callable | None = None, steps: int = 20_000) -> Preset:
    """The zoo's configuration of ``family`` (one of ``FAMILIES``) for the 8x8 digits
    (dequantised, :func:`zoo.images.digits`), over a UNet (``net``; default
    :class:`zoo.nets.UNet` with 32 channels, mults (1, 2), dropout 0.1), adamw 1e-3 with
    batch 64.

    The sampler is the family's ``digits_sampler`` in :data:`FAMILY_TABLE` (ancestral on
    DDPM's 1000 levels, annealed Langevin with 5 steps on each of NCSN's 100 levels,
    Euler-Maruyama with 500 steps for the SDEs: at most 1000 network evaluations each).
    """
    allowed = tuple(n for n, f in FAMILY_TABLE.items() if f.digits_sampler is not None)
    entry = _check_family(family, allowed)
    return Preset(
        name=f"digits/{family}",
        model=entry.transform(
            UNet if net is None else net,
            event_shape=images.Digits.event_shape,
            **_edm_statistics(entry, images.digits()),
        ),
        data=images.digits(),
        steps=steps,
        batch_size=64,
        learning_rate=1e-3,
        sampler=entry.digits_sampler,
    )
