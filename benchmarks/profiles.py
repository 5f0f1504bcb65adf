"""What a benchmark run covers: the ``quick`` (CPU, minutes) and ``full`` (GPU) profiles.

A :class:`Config` is a profile with any command-line overrides applied; every setting that
changes a result is in it, and the cache keys are built from it.
"""

from __future__ import annotations

import dataclasses

from zoo.presets import FAMILIES

__all__ = ["Config", "PROFILES", "PURPOSES"]


@dataclasses.dataclass(frozen=True)
class Config:
    """The run matrix (families x datasets x seeds x samplers) and its budgets.

    ``num_samples``: samples per cell, and the size of the true reference sample the metrics
    compare them with. ``num_nll``: held-out points for the likelihood of each trained run,
    integrated with adaptive Tsit5 at ``rtol = atol = nll_tol``. ``presets``: ``"toy"`` (the
    zoo's defaults, :func:`zoo.presets.toy`) or ``"case_study"`` (the write-up's settings,
    :func:`zoo.presets.case_study`: DDPM, NCSN and sub-VP on nine Gaussians only).
    """

    profile: str
    families: tuple[str, ...]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    steps: int
    samplers: tuple[str, ...]
    num_samples: int
    num_nll: int
    nll_tol: float
    out: str
    figures: bool = True
    presets: str = "toy"


PROFILES = {
    # ~75 s on 2 CPU cores (measured 2026-11-24): one dataset, one seed, each family's own sampler.
    "quick": Config(
        profile="quick",
        families=FAMILIES,
        datasets=("nine_gaussians",),
        seeds=(0,),
        steps=3_000,
        samplers=("default",),
        num_samples=1_000,
        num_nll=1_000,
        nll_tol=1e-3,  # ~200 NFE instead of ~900 at 1e-5; moves the NLL by ~0.003 nats
        out="results/quick",
    ),
    # The case study's budget (128,000 steps) on a GPU, every family on six datasets.
    "full": Config(
        profile="full",
        families=FAMILIES,
        datasets=(
            "nine_gaussians",
            "gaussians_25",
            "8gaussians",
            "checkerboard",
            "moons",
            "swissroll",
        ),
        seeds=(0, 1, 2),
        steps=128_000,
        samplers=(
            "default",
            "ancestral",
            "ddim-10",
            "ddim-50",
            "em-1000",
            "sde-1000",
            "ode",
            "ode-heun-50",
            "pc",
            "langevin",
        ),
        num_samples=5_000,
        num_nll=10_000,
        nll_tol=1e-5,
        out="results/full",
    ),
}

PURPOSES = {"quick": "a few minutes on a CPU", "full": "the case-study budget, for a GPU"}
