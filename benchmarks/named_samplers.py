"""Samplers by name, for the command line: ``default``, ``ancestral``, ``ddim-10``, ``ode``, ...

A name is a kind and an optional step count, ``<kind>[-<steps>]``. Without a count a sampler
takes every level of a discrete schedule (DDPM, NCSN) and ``CONTINUOUS_STEPS`` grid times of a
continuous SDE (``CONTINUOUS_LEVELS`` for annealed Langevin), so one name means the natural
sampler of every family. A name that cannot
apply to a family's process resolves to a stated reason, which becomes the row's status.
"""

from __future__ import annotations

import re

import diffrax

from zoo import presets, samplers
from zoo.sdes import SDE

__all__ = ["KINDS", "CONTINUOUS_STEPS", "SWEEP_KINDS", "check", "kind", "resolve", "sweep"]

CONTINUOUS_STEPS = 1000
CONTINUOUS_LEVELS = 100
# Annealed Langevin for any variance-exploding process: the toys' NCSN sampler (see there).
_TOY_LANGEVIN = presets.FAMILY_TABLE["ncsn"].toy_sampler
LANGEVIN_STEPS_PER_LEVEL = _TOY_LANGEVIN.steps_per_level
LANGEVIN_STEP_SIZE = _TOY_LANGEVIN.step_size

KINDS = {
    "default": "the preset's own sampler (zoo.presets.toy or case_study)",
    "ancestral": "ancestral sampling of the Gaussian posterior",
    "ddim": "deterministic DDIM (eta=0)",
    "em": "reverse-time SDE, Euler-Maruyama in a lax.scan",
    "sde": "reverse-time SDE, Diffrax Euler with an UnsafeBrownianPath",
    "pc": "predictor-corrector: Euler-Maruyama + one Langevin step (snr 0.16)",
    "ode": "probability-flow ODE, adaptive Tsit5 (rtol=atol=1e-5); ode-N: Tsit5 on N times",
    "ode-heun": "probability-flow ODE, Heun on a fixed grid",
    "langevin": f"annealed Langevin, {LANGEVIN_STEPS_PER_LEVEL} steps per level "
    "(variance-exploding processes)",
    "dpm": "DPM-Solver++(2M) on the log-SNR grid (dpm-N: N times, N NFE)",
    "edm": "EDM's Heun sampler on the Karras grid, rho=7 (edm-N: N times, 2N-1 NFE)",
}
_NEEDS_COUNT = ("ode-heun", "dpm", "edm")
_TAKES_NO_COUNT = ("default",)
#: kind -> the step count whose NFE is closest to a budget (without going over, for Heun's 2N-1)
_STEPS_FOR_BUDGET = {
    "ddim": lambda nfe: nfe,
    "dpm": lambda nfe: nfe,
    "edm": lambda nfe: (nfe + 1) // 2,
    "ode-heun": lambda nfe: (nfe + 1) // 2,
}
SWEEP_KINDS = tuple(_STEPS_FOR_BUDGET)
CONTINUOUS = ("dpm", "edm")  # kinds whose grid need not be a subsequence of a schedule's levels
_NAME = re.compile(r"^(?P<kind>[a-z]+(?:-heun)?)(?:-(?P<steps>\d+))?$")


def _parse(name: str) -> tuple[str, int | None]:
    match = _NAME.match(name)
    if match is None or match["kind"] not in KINDS:
        raise ValueError(
            f"unknown sampler {name!r}; use <kind>[-<steps>] with kind one of {', '.join(KINDS)}"
        )
    kind, steps = match["kind"], match["steps"] and int(match["steps"])
    if kind in _TAKES_NO_COUNT and steps is not None:
        raise ValueError(f"sampler {kind!r} takes no step count, got {name!r}")
    if kind in _NEEDS_COUNT and steps is None:
        raise ValueError(f"sampler {kind!r} needs a step count, e.g. {kind}-50; got {name!r}")
    if steps is not None and steps < 2:
        raise ValueError(f"a sampler's step count must be >= 2, got {name!r}")
    return kind, steps


def kind(name: str) -> str:
    """The kind of a sampler name: ``"dpm"`` for ``"dpm-20"``."""
    return _parse(name)[0]


def sweep(kinds: tuple[str, ...], budgets: tuple[int, ...]) -> tuple[str, ...]:
    """Sampler names of each of ``kinds`` (from ``SWEEP_KINDS``) at about each NFE budget:
    ``ddim-N`` and ``dpm-N`` cost N evaluations, ``edm-N`` and ``ode-heun-N`` 2N - 1."""
    for k in kinds:
        if k not in _STEPS_FOR_BUDGET:
            raise ValueError(f"unknown sweep sampler {k!r}; choose from {', '.join(SWEEP_KINDS)}")
    return tuple(
        f"{k}-{max(2, _STEPS_FOR_BUDGET[k](b))}" for k in kinds for b in sorted(set(budgets))
    )


def check(name: str) -> str:
    """``name`` if it is well formed; ``ValueError`` saying what is expected otherwise."""
    _parse(name)
    return name


def resolve(name: str, sde: SDE, default: samplers.Sampler) -> samplers.Sampler | str:
    """The sampler ``name`` means for a family with process ``sde`` and sampler ``default``,
    or the reason it does not apply (a string)."""
    kind, steps = _parse(name)
    if kind == "default":
        return default
    levels = sde.num_levels
    # DPM-Solver++ and EDM step between levels through the interpolated marginal, as Lu et
    # al. do for discrete-time models; the other kinds move along the levels themselves.
    if levels is not None and steps is not None and steps > levels and kind not in CONTINUOUS:
        return f"{name} needs {steps} grid times; the process has {levels} levels"
    if kind == "langevin":
        # Song & Ermon's step rule eps * sigma_i^2 / sigma_L^2 assumes x_t = x_0 + noise.
        if float(sde.log_alpha(sde.T)) != 0.0:
            return "annealed Langevin's step rule is for variance-exploding processes"
        return samplers.AnnealedLangevin(
            levels=steps if steps is not None or levels is not None else CONTINUOUS_LEVELS,
            steps_per_level=LANGEVIN_STEPS_PER_LEVEL,
            step_size=LANGEVIN_STEP_SIZE,
        )
    if kind == "ode":
        return samplers.ProbabilityFlow(steps=steps)
    if kind == "ode-heun":
        return samplers.ProbabilityFlow(diffrax.Heun(), steps=steps)
    if kind == "dpm":
        return samplers.DPMSolverPP(steps=steps)
    if kind == "edm":
        return samplers.EDMHeun(steps=steps)
    grid = steps if steps is not None or levels is not None else CONTINUOUS_STEPS
    on_grid = {
        "ancestral": samplers.Ancestral,
        "ddim": samplers.DDIM,
        "em": samplers.EulerMaruyama,
        "sde": samplers.ReverseSDE,
        "pc": lambda steps: samplers.PredictorCorrector(samplers.EulerMaruyama(steps=steps)),
    }
    return on_grid[kind](steps=grid)
