"""What a benchmark run covers: the ``quick`` (CPU, minutes), ``standard`` (CPU, an hour) and
``full`` (GPU) profiles.

A :class:`Config` is a profile with any command-line overrides applied; every setting that
changes a result is in it, and the cache keys are built from it.
"""

from __future__ import annotations

import dataclasses

from zoo.bench.plan import named_samplers
from zoo.presets import FAMILIES

__all__ = ["Config", "PROFILES", "PURPOSES"]


@dataclasses.dataclass(frozen=True)
class Config:
    """The run matrix (families x datasets x seeds x samplers) and its budgets.

    ``sweep`` and ``nfe``: the quality-per-NFE sweep, each of the ``sweep`` samplers
    (of :data:`~zoo.bench.plan.named_samplers.SWEEP_KINDS`) at about each budget in ``nfe``; the
    cells are ``sampler_names``. ``num_samples``: samples per cell, and the size of the true
    reference sample the metrics compare them with. ``num_nll``: held-out points for the
    likelihood of each trained run, integrated with adaptive Tsit5 at
    ``rtol = atol = nll_tol``. ``presets``: ``"toy"`` (the zoo's defaults,
    :func:`zoo.presets.toy`) or ``"case_study"`` (the write-up's settings,
    :func:`zoo.presets.case_study`: DDPM, NCSN and sub-VP on nine Gaussians only).

    Image data (``digits``): ``channels``, the UNet's base channels (16: CPU-sized; the
    preset's default is 32), and ``nll_images``, the held-out images whose bits/dim each
    trained run is scored on (0: none).

    ``keep_steps``: training steps at which each run's EMA parameters are kept (from the
    same training call) and scored with the first of ``samplers`` (:mod:`zoo.bench.train.steps`).
    ``oracle``: on datasets with an exact score, also run every cell's sampler with the
    exact score and measure each run's score error (:mod:`zoo.bench.judge.oracle`). Both are off
    in every profile.

    Your data and network, and the optimizer (``None``: each family's preset value):
    ``data``, the path of a user's ``N x d`` points (``.npy``, ``.npz`` or ``.csv``), one more
    dataset named by the file's stem (:mod:`zoo.bench.plan.points`); ``net``, a user's network
    factory as ``"package.module:factory"`` under every family (:mod:`zoo.bench.plan.networks`);
    ``width``, the :class:`zoo.nets.ScoreNet` width on vector data (images: ``channels``);
    ``learning_rate`` and ``batch_size`` of every run.
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
    sweep: tuple[str, ...] = ()
    nfe: tuple[int, ...] = ()
    keep_steps: tuple[int, ...] = ()
    oracle: bool = False
    channels: int = 16
    nll_images: int = 32
    data: str | None = None
    net: str | None = None
    width: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None

    @property
    def sampler_names(self) -> tuple[str, ...]:
        """``samplers``, then each ``sweep`` kind at about each ``nfe`` budget."""
        swept = named_samplers.sweep(self.sweep, self.nfe) if self.nfe else ()
        return self.samplers + tuple(s for s in swept if s not in self.samplers)


TOY_DATASETS = (
    "nine_gaussians",
    "gaussians_25",
    "8gaussians",
    "checkerboard",
    "moons",
    "swissroll",
)

# The whole comparison on 2 CPU cores: six datasets x six families x three seeds (108 runs,
# trained 18 at a time per family), each run sampled by its family's default sampler and by the
# five deterministic fast samplers at 5-100 NFE. What sets the size: training the runs at ~560
# aggregate steps/s; 26 cells per run at ~0.7 s of metrics each for n = 1,000; NCSN's default
# (annealed Langevin) costs 10,000 NFE per sample; the likelihood ODE 619-7,177 NFE a run at
# nll_tol below (medians 706 for flow matching to 2,971 for VE). With the six families and
# five sweep kinds (26 cells per run) it took 85 minutes, the machine otherwise idle
# (benchmarks/results/cpu-standard-six, 2026-12-05).
STANDARD = Config(
    profile="standard",
    families=FAMILIES,
    datasets=TOY_DATASETS,
    seeds=(0, 1, 2),
    steps=6_000,
    samplers=("default",),
    sweep=named_samplers.PROFILE_SWEEP,
    nfe=(5, 10, 20, 50, 100),
    num_samples=1_000,
    num_nll=1_000,
    # The likelihood's own default, converged: on networks trained by this profile, 1e-3
    # moved NCSN's NLL on 25 Gaussians by up to 0.26 nats and 1e-4 by 0.007, where 1e-5 is
    # within 0.0006 of 1e-6. It costs ~3,000 NFE (24 s a run on the 2-core CPU) for NCSN's
    # held-out points against ~300 at 1e-3, ~1,200 for DDPM's.
    nll_tol=1e-5,
    out="results/standard",
)

PROFILES = {
    # One dataset, one seed, each family's own sampler: 177 s on the 2-core CPU, otherwise idle
    # (benchmarks/results/cpu-quick, 2026-12-05).
    "quick": dataclasses.replace(
        STANDARD,
        profile="quick",
        datasets=("nine_gaussians",),
        seeds=(0,),
        steps=3_000,
        sweep=(),
        nfe=(),
        out="results/quick",
    ),
    "standard": STANDARD,
    # The case study's budget (128,000 steps) on a GPU, every family on six datasets. Its
    # likelihoods at standard's 1e-5 (never run): a VE run that needs more than the ODE's
    # 4,096 steps there is marked failed in nll_status, not given a number (see gpu below).
    "full": dataclasses.replace(
        STANDARD,
        profile="full",
        steps=128_000,
        samplers=("default", "ancestral", "em-1000", "sde-1000", "ode", "pc", "langevin"),
        nfe=(5, 10, 20, 50, 100, 1000),
        num_samples=5_000,
        num_nll=10_000,
        out="results/full",
    ),
    # `make bench-gpu` (zoo/bench/commands/gpu.py): every family, dataset and seed at 6x
    # standard's steps, one family after another until bench_gpu.DEADLINE_S. Measured on an
    # H200 (2026-12-04) with three budgets (16 samplers): ~150 s a family, 17-33 s of it
    # training 18 vmapped runs at 48,000 steps, the rest compiling the samplers and the
    # likelihood (~2 s each on the host), drawing and scoring 288 cells; 5 families did not
    # fit in 8 minutes. Two budgets (11 samplers) cut what grows with the samplers by a
    # third. n, the NLL and the sweep's kinds stay standard's, so the tables compare with
    # benchmarks/results/cpu-standard-six, but the likelihood's tolerance is looser: trained
    # longer, VE's probability-flow ODE needs far more steps than at 6,000 steps (a 20,000-step
    # VE network on nine Gaussians: 4,651 NFE at 1e-3, 31,819 at 1e-4, past the likelihood's
    # 4,096 steps), so at 1e-5 its runs would fail the limit. At 1e-3 that network's KL is
    # 0.088 nats against 0.047 at 1e-4: these likelihoods are good to a few hundredths.
    "gpu": dataclasses.replace(
        STANDARD,
        profile="gpu",
        steps=48_000,
        nfe=(5, 20),
        nll_tol=1e-3,
        out="results/gpu",
    ),
}

PURPOSES = {
    "quick": "a few minutes on a CPU",
    "standard": "the whole comparison in 1.5 hours or so on a 2-core CPU",
    "full": "the case-study budget, for a GPU",
    "gpu": "the standard comparison at a GPU's budget, family by family (make bench-gpu)",
}
