"""Samplers by name, for the command line and config files: ``default``, ``ddim-10``, ``ode``,
``unipc-10[order=3,grid=time]``, ``ddim-20[eta=1]``, ...

A name is a kind, an optional step count and optional options, ``<kind>[-<steps>][[k=v,...]]``.
Without a count a sampler takes every level of a discrete schedule (DDPM, NCSN) and
``CONTINUOUS_STEPS`` grid times of a continuous SDE (``CONTINUOUS_LEVELS`` for annealed
Langevin), so one name means the natural sampler of every family. The options are the keyword
arguments of the kind's class (``OPTIONS``), each converted to the type of its default and
checked by the class itself. A name that cannot apply to a family's process resolves to a
stated reason, which becomes the row's status.
"""

from __future__ import annotations

import dataclasses
import re

import diffrax

from zoo import multistep, presets, samplers
from zoo._checks import INT32_MAX
from zoo.sdes import SDE

__all__ = [
    "KINDS",
    "OPTIONS",
    "CONTINUOUS_STEPS",
    "SWEEP_KINDS",
    "PROFILE_SWEEP",
    "check",
    "kind",
    "resolve",
    "split",
    "sweep",
]

CONTINUOUS_STEPS = 1000
CONTINUOUS_LEVELS = 100
# Annealed Langevin for any variance-exploding process: the toys' NCSN sampler (see there).
_TOY_LANGEVIN = presets.FAMILY_TABLE["ncsn"].toy_sampler
LANGEVIN_STEPS_PER_LEVEL = _TOY_LANGEVIN.steps_per_level
LANGEVIN_STEP_SIZE = _TOY_LANGEVIN.step_size

KINDS = {
    "default": "the preset's own sampler (zoo.presets.toy or case_study)",
    "ancestral": "ancestral sampling of the Gaussian posterior",
    "ddim": "DDIM, deterministic by default (ddim-N[eta=1]: ancestral)",
    "em": "reverse-time SDE, Euler-Maruyama in a lax.scan",
    "sde": "reverse-time SDE, Diffrax Euler with an UnsafeBrownianPath",
    "pc": "predictor-corrector: Euler-Maruyama + one Langevin step (snr 0.16)",
    "ode": "probability-flow ODE, adaptive Tsit5 (rtol=atol=1e-5); ode-N: Tsit5 on N times",
    "ode-heun": "probability-flow ODE, Heun on a fixed grid",
    "langevin": f"annealed Langevin, {LANGEVIN_STEPS_PER_LEVEL} steps per level "
    "(variance-exploding processes)",
    "dpm": "DPM-Solver++ multistep (dpm-N: N NFE; order 2 by default, 3 with [order=3])",
    "dpm-sde": "DPM-Solver++(2M) SDE (dpm-sde-N: N NFE)",
    "unipc": "UniPC, UniP-2 with the UniC corrector (unipc-N: N NFE)",
    "ipndm": "iPNDM, Adams-Bashforth up to order 4 in sigma/alpha (ipndm-N: N NFE)",
    "edm": "EDM's Heun sampler on the Karras grid, rho=7 (edm-N: N times, 2N-1 NFE)",
}
#: kind -> the class whose keyword arguments are its options
CLASSES = {
    "ancestral": samplers.Ancestral,
    "ddim": samplers.DDIM,
    "em": samplers.EulerMaruyama,
    "sde": samplers.ReverseSDE,
    "pc": samplers.PredictorCorrector,
    "ode": samplers.ProbabilityFlow,
    "ode-heun": samplers.ProbabilityFlow,
    "langevin": samplers.AnnealedLangevin,
    "dpm": multistep.DPMSolverPP,
    "dpm-sde": multistep.DPMSolverPPSDE,
    "unipc": multistep.UniPC,
    "ipndm": multistep.IPNDM,
    "edm": samplers.EDMHeun,
}
_SIMPLE = {"bool": bool, "int": int, "float": float, "str": str}


def _options(cls) -> dict[str, type]:
    """The fields of ``cls`` whose type is first a plain one (``str | tuple | None`` is a
    string on the command line), less the step count: option -> type."""
    found = {}
    for f in dataclasses.fields(cls):
        base = str(f.type).split(" | ")[0]
        if base in _SIMPLE and f.name not in ("steps", "levels"):
            found[f.name] = _SIMPLE[base]
    return found


#: kind -> its options
OPTIONS = {kind: _options(cls) for kind, cls in CLASSES.items()}
_NEEDS_COUNT = ("ode-heun", "dpm", "dpm-sde", "unipc", "ipndm", "edm")
_TAKES_NO_COUNT = ("default",)
#: kind -> the step count whose NFE is closest to a budget (without going over, for Heun's 2N-1)
_STEPS_FOR_BUDGET = {
    "ddim": lambda nfe: nfe,
    "dpm": lambda nfe: nfe,
    "dpm-sde": lambda nfe: nfe,
    "unipc": lambda nfe: nfe,
    "ipndm": lambda nfe: nfe,
    "edm": lambda nfe: (nfe + 1) // 2,
    "ode-heun": lambda nfe: (nfe + 1) // 2,
}
SWEEP_KINDS = tuple(_STEPS_FOR_BUDGET)
#: the profiles' sweep: the deterministic kinds with their own grids (Diffrax's Heun, the
#: same method as EDM's on a time grid, and DPM-Solver++(2M) SDE on request)
PROFILE_SWEEP = ("ddim", "dpm", "unipc", "ipndm", "edm")
# kinds whose grid need not be a subsequence of a schedule's levels
CONTINUOUS = ("dpm", "dpm-sde", "unipc", "ipndm", "edm")
_NAME = re.compile(
    r"^(?P<kind>[a-z]+(?:-heun|-sde)?)(?:-(?P<steps>\d+))?(?:\[(?P<options>[^\[\]]*)\])?$"
)
_SYNTAX = "<kind>[-<steps>][[option=value,...]]"


def split(text: str) -> list[str]:
    """``text`` split at the commas outside brackets: ``"dpm-10[order=3,grid=time],ode"`` is
    two names."""
    names, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            names.append(text[start:i])
            start = i + 1
    names.append(text[start:])
    return [name.strip() for name in names]


def _value(kind: str, option: str, text: str):
    wanted = OPTIONS[kind][option]
    if wanted is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"option {option} of {kind} is true or false, got {text!r}")
        return text.lower() in ("true", "1")
    try:
        return wanted(text)
    except ValueError:
        raise ValueError(
            f"option {option} of {kind} is a {wanted.__name__}, got {text!r}"
        ) from None


def _parse(name: str) -> tuple[str, int | None, dict]:
    match = _NAME.match(name)
    if match is None or match["kind"] not in KINDS:
        raise ValueError(
            f"unknown sampler {name!r}; use {_SYNTAX} with kind one of {', '.join(KINDS)}"
        )
    kind, steps = match["kind"], match["steps"] and int(match["steps"])
    if kind in _TAKES_NO_COUNT and steps is not None:
        raise ValueError(f"sampler {kind!r} takes no step count, got {name!r}")
    if kind in _NEEDS_COUNT and steps is None:
        raise ValueError(f"sampler {kind!r} needs a step count, e.g. {kind}-50; got {name!r}")
    if steps is not None and not 2 <= steps <= INT32_MAX:
        raise ValueError(
            f"a sampler's step count must lie in [2, {INT32_MAX:,}] (a 32-bit count), got {name!r}"
        )
    options = {}
    if match["options"] is not None:
        if kind not in OPTIONS:
            raise ValueError(f"sampler {kind!r} takes no options, got {name!r}")
        for item in match["options"].split(","):
            option, equals, text = (part.strip() for part in item.partition("="))
            if option not in OPTIONS[kind] or not equals:
                raise ValueError(
                    f"{name!r}: options of {kind} are option=value with option one of "
                    f"{', '.join(OPTIONS[kind])}; got {item.strip()!r}"
                )
            if option in options:
                raise ValueError(f"{name!r}: option {option} is given twice")
            options[option] = _value(kind, option, text)
    return kind, steps, options


def kind(name: str) -> str:
    """The kind of a sampler name: ``"dpm"`` for ``"dpm-20[order=3]"``."""
    return _parse(name)[0]


def sweep(kinds: tuple[str, ...], budgets: tuple[int, ...]) -> tuple[str, ...]:
    """Sampler names of each of ``kinds`` (a kind of ``SWEEP_KINDS``, optionally with options:
    ``unipc[order=3]``) at about each NFE budget: ``ddim-N``, ``dpm-N``, ``unipc-N``... cost N
    evaluations, ``edm-N`` and ``ode-heun-N`` 2N - 1."""
    names = []
    for k in kinds:
        base, _, options = k.partition("[")
        if base not in _STEPS_FOR_BUDGET:
            raise ValueError(f"unknown sweep sampler {k!r}; choose from {', '.join(SWEEP_KINDS)}")
        for b in sorted(set(budgets)):
            names.append(
                f"{base}-{max(2, _STEPS_FOR_BUDGET[base](b))}" + (options and "[" + options)
            )
    for name in names:
        check(name)
    return tuple(names)


def check(name: str) -> str:
    """``name`` if it is well formed and its options are valid for its kind; ``ValueError``
    saying what is expected otherwise."""
    kind, steps, options = _parse(name)
    if kind in ("default", "langevin", "pc"):
        return name
    probe = {"steps": steps} if steps is not None and "steps" in _field_names(kind) else {}
    try:
        CLASSES[kind](**probe, **options)
    except (TypeError, ValueError) as e:
        raise ValueError(f"sampler {name!r}: {e}") from None
    return name


def _field_names(kind: str) -> set[str]:
    return {f.name for f in dataclasses.fields(CLASSES[kind])}


def resolve(name: str, sde: SDE, default: samplers.Sampler) -> samplers.Sampler | str:
    """The sampler ``name`` means for a family with process ``sde`` and sampler ``default``,
    or the reason it does not apply (a string)."""
    kind, steps, options = _parse(name)
    if kind == "default":
        return default
    levels = sde.num_levels
    # The multistep and EDM samplers step between levels through the interpolated marginal,
    # as Lu et al. do for discrete-time models; the other kinds move along the levels themselves.
    if levels is not None and steps is not None and steps > levels and kind not in CONTINUOUS:
        return f"{name} needs {steps} grid times; the process has {levels} levels"
    if kind == "langevin":
        # Song & Ermon's step rule eps * sigma_i^2 / sigma_L^2 assumes x_t = x_0 + noise.
        if float(sde.log_alpha(sde.T)) != 0.0:
            return "annealed Langevin's step rule is for variance-exploding processes"
        return samplers.AnnealedLangevin(
            levels=steps if steps is not None or levels is not None else CONTINUOUS_LEVELS,
            **{"steps_per_level": LANGEVIN_STEPS_PER_LEVEL, "step_size": LANGEVIN_STEP_SIZE}
            | options,
        )
    if kind == "ode":
        return samplers.ProbabilityFlow(steps=steps, **options)
    if kind == "ode-heun":
        return samplers.ProbabilityFlow(diffrax.Heun(), steps=steps, **options)
    if kind in CONTINUOUS:
        return CLASSES[kind](steps=steps, **options)
    grid = steps if steps is not None or levels is not None else CONTINUOUS_STEPS
    if kind == "pc":
        return samplers.PredictorCorrector(samplers.EulerMaruyama(steps=grid), **options)
    return CLASSES[kind](steps=grid, **options)
