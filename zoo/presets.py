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
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import optax

from zoo import data as data_lib
from zoo import models, samplers, sdes
from zoo.models import Model, transform
from zoo.nets import ScoreNet, UNet

__all__ = [
    "Preset",
    "FAMILIES",
    "LIKELIHOOD_WEIGHTED",
    "CASE_STUDY_FAMILIES",
    "case_study",
    "toy",
    "intro",
    "mnist_writeup",
    "digits",
]

FAMILIES = ("ddpm", "ncsn", "vp", "subvp", "ve")
CASE_STUDY_FAMILIES = ("ddpm", "ncsn", "subvp")
# The SDE families trained with the likelihood weighting g(t)^2 / sigma_t^2 and t drawn from
# the density proportional to it (Song, Durkan, Murray & Ermon 2021): "<family>-lw".
LIKELIHOOD_WEIGHTED = ("vp-lw", "subvp-lw", "ve-lw")


@dataclasses.dataclass(frozen=True)
class Preset:
    """A model, the data it is trained on, the training budget and the sampler to use."""

    name: str
    model: Model
    data: data_lib.Toy
    steps: int
    batch_size: int
    learning_rate: float
    sampler: samplers.Sampler
    # Optional: an optax optimizer factory of the learning rate (default None: adamw).
    optimizer_fn: Callable[[float], optax.GradientTransformation] | None = None

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


def _check_family(family: str, allowed: tuple[str, ...]) -> None:
    if family not in allowed:
        raise ValueError(f"family must be one of {allowed}, got {family!r}")


def case_study(family: str) -> Preset:
    """The case study's ``"ddpm"``, ``"ncsn"`` or ``"subvp"`` on the nine-Gaussians mixture:
    its schedules, network, samplers and budget (adamw 1e-3, batch 64, 128,000 steps)."""
    _check_family(family, CASE_STUDY_FAMILIES)
    net = ScoreNet  # the case study's network is ScoreNet's default
    if family == "ddpm":
        model = transform(models.DDPM, schedule=sdes.ddpm_linear(1e-3, 0.02, 100), net=net)
        sampler = samplers.Ancestral()
    elif family == "ncsn":
        # The case study's network output is the score itself, weighted by sigma^2 in the loss.
        model = transform(
            models.NCSN, schedule=sdes.ncsn_geometric(1.0, 0.01, 100), net=net, predict="score"
        )
        sampler = samplers.AnnealedLangevin(steps_per_level=100, step_size=2e-5)
    else:
        model = transform(models.ScoreSDE, sde=sdes.SubVP(beta_min=0.1, beta_max=10.0), net=net)
        sampler = samplers.ProbabilityFlow()
    return Preset(
        name=f"case_study/{family}",
        model=model,
        data=data_lib.nine_gaussians(),
        steps=128_000,
        batch_size=64,
        learning_rate=1e-3,
        sampler=sampler,
    )


def toy(family: str, data: data_lib.Toy | str = "nine_gaussians", steps: int = 128_000) -> Preset:
    """The zoo's default configuration of ``family`` (one of ``FAMILIES``) for 2-D toy data;
    ``"vp-lw"``, ``"subvp-lw"`` and ``"ve-lw"`` (``LIKELIHOOD_WEIGHTED``) are the same SDE
    families trained with ``weighting="likelihood", time_sampling="importance"``."""
    _check_family(family, FAMILIES + LIKELIHOOD_WEIGHTED)
    data = data_lib.get(data) if isinstance(data, str) else data
    net = functools.partial(ScoreNet, dropout=0.0)
    process, _, variant = family.partition("-")
    weighting = dict(weighting="likelihood", time_sampling="importance") if variant else {}
    if process == "ddpm":
        model = transform(models.DDPM, schedule=sdes.ddpm_linear(1e-4, 0.02, 1000), net=net)
        sampler = samplers.Ancestral()
    elif process == "ncsn":
        model = transform(models.NCSN, schedule=sdes.ncsn_geometric(10.0, 0.01, 100), net=net)
        # Half the case study's 2e-5: unadjusted Langevin with step h on a Gaussian of variance
        # v settles at variance v / (1 - h / 4v), and here h = step_size * sigma_i^2 / sigma_L^2
        # is 0.1 of each level's noise variance instead of 0.2.
        sampler = samplers.AnnealedLangevin(steps_per_level=100, step_size=1e-5)
    else:
        sde = {"vp": sdes.VP(0.1, 20.0), "subvp": sdes.SubVP(0.1, 20.0), "ve": sdes.VE(0.01, 10.0)}
        model = transform(models.ScoreSDE, sde=sde[process], net=net, **weighting)
        sampler = samplers.EulerMaruyama(steps=1000)
    return Preset(
        name=f"toy/{family}",
        model=model,
        data=data,
        steps=steps,
        batch_size=256,
        learning_rate=1e-3,
        sampler=sampler,
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
        data=data_lib.digits(),
        steps=20_000,
        batch_size=64,
        learning_rate=1e-4,
        sampler=samplers.Ancestral(),
        optimizer_fn=optax.adam,
    )


# Largest distance between two training digits in [-1, 1]^64 is 9.1: NCSN's and VE's largest
# noise must reach it for the prior to cover the data (Song & Ermon 2020, technique 1).
_DIGITS_SIGMA_MAX = 10.0


def digits(family: str, net: Callable | None = None, steps: int = 20_000) -> Preset:
    """The zoo's configuration of ``family`` (one of ``FAMILIES``) for the 8x8 digits
    (dequantised, :func:`zoo.data.digits`), over a UNet (``net``; default
    :class:`zoo.nets.UNet` with 32 channels, mults (1, 2), dropout 0.1), adamw 1e-3 with
    batch 64.

    Samplers are chosen to cost at most ~1000 network evaluations: ancestral on DDPM's 1000
    levels; annealed Langevin with 5 steps on each of 100 levels (step
    :math:`2\\cdot10^{-5}\\sigma_i^2/\\sigma_L^2`, i.e. 0.2 of each level's variance); Euler-
    Maruyama with 500 steps for the SDEs.
    """
    _check_family(family, FAMILIES)
    net = UNet if net is None else net
    common = dict(event_shape=(8, 8, 1), net=net)
    if family == "ddpm":
        model = transform(models.DDPM, schedule=sdes.ddpm_linear(1e-4, 0.02, 1000), **common)
        sampler = samplers.Ancestral()
    elif family == "ncsn":
        schedule = sdes.ncsn_geometric(_DIGITS_SIGMA_MAX, 0.01, 100)
        model = transform(models.NCSN, schedule=schedule, **common)
        sampler = samplers.AnnealedLangevin(steps_per_level=5, step_size=2e-5)
    elif family == "vp":
        model = transform(models.ScoreSDE, sde=sdes.VP(0.1, 20.0), **common)
        sampler = samplers.EulerMaruyama(steps=500)
    elif family == "subvp":
        model = transform(models.ScoreSDE, sde=sdes.SubVP(0.1, 20.0), **common)
        sampler = samplers.EulerMaruyama(steps=500)
    else:
        model = transform(models.ScoreSDE, sde=sdes.VE(0.01, _DIGITS_SIGMA_MAX), **common)
        sampler = samplers.EulerMaruyama(steps=500)
    return Preset(
        name=f"digits/{family}",
        model=model,
        data=data_lib.digits(),
        steps=steps,
        batch_size=64,
        learning_rate=1e-3,
        sampler=sampler,
    )
