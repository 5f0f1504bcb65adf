"""zoo: DDPM, NCSN, score SDEs (VP, sub-VP, VE) and flow matching side by side over one score
network.

The public API; everything a user needs is reachable from here.

Nothing is imported with the package itself: each name below is imported from its submodule
on first use (PEP 562's module ``__getattr__``), so ``import zoo`` costs milliseconds and
only the parts a program touches pay for JAX, Haiku, Diffrax, distrax or POT.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (half of this import's time)

__version__ = "0.1.0"

#: public submodules, each imported on first access as ``zoo.<name>``; ``models`` is not in
#: ``__all__`` but was always reachable as ``zoo.models`` and still is
_SUBMODULES = frozenset(
    (
        "checkpoints",
        "data",
        "grids",
        "guidance",
        "image_metrics",
        "images",
        "likelihood",
        "metrics",
        "models",
        "multistep",
        "nets",
        "parametrisations",
        "plotting",
        "presets",
        "quality",
        "samplers",
        "sdes",
        "train",
    )
)

#: public name -> the submodule that defines it
_ATTRIBUTES = {
    "log_likelihood": "likelihood",
    **dict.fromkeys(
        ("DDPM", "NCSN", "DiffusionModel", "FlowMatching", "Model", "ScoreSDE", "transform"),
        "models",
    ),
    **dict.fromkeys(("ScoreNet", "UNet"), "nets"),
    **dict.fromkeys(
        (
            "DDIM",
            "Ancestral",
            "AnnealedLangevin",
            "EDMHeun",
            "Euler",
            "EulerMaruyama",
            "PredictorCorrector",
            "Predictions",
            "ProbabilityFlow",
            "ReverseSDE",
            "Samples",
        ),
        "samplers",
    ),
    **dict.fromkeys(("DPMSolverPP", "DPMSolverPPSDE", "IPNDM", "UniPC"), "multistep"),
    **dict.fromkeys(("VE", "VP", "SubVP", "FlowPath"), "sdes"),
}

__all__ = [
    "DDIM",
    "DDPM",
    "NCSN",
    "VE",
    "VP",
    "Ancestral",
    "AnnealedLangevin",
    "DPMSolverPP",
    "DPMSolverPPSDE",
    "EDMHeun",
    "DiffusionModel",
    "Euler",
    "EulerMaruyama",
    "FlowMatching",
    "FlowPath",
    "IPNDM",
    "Model",
    "PredictorCorrector",
    "Predictions",
    "ProbabilityFlow",
    "ReverseSDE",
    "Samples",
    "ScoreNet",
    "ScoreSDE",
    "SubVP",
    "UNet",
    "UniPC",
    "checkpoints",
    "data",
    "grids",
    "guidance",
    "image_metrics",
    "images",
    "likelihood",
    "log_likelihood",
    "metrics",
    "multistep",
    "nets",
    "parametrisations",
    "plotting",
    "presets",
    "quality",
    "samplers",
    "sdes",
    "train",
    "transform",
]


def __getattr__(name: str) -> Any:
    """``zoo.<name>`` for a name not yet imported: import its submodule, keep the value in the
    package's namespace (so this runs once per name) and return it."""
    if name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _ATTRIBUTES:
        value = getattr(importlib.import_module(f"{__name__}.{_ATTRIBUTES[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what type checkers and IDEs see; never run
    from typing import Any

    from zoo import (
        checkpoints,
        data,
        grids,
        guidance,
        image_metrics,
        likelihood,
        metrics,
        multistep,
        nets,
        parametrisations,
        plotting,
        presets,
        samplers,
        sdes,
        train,
    )
    from zoo import models as models
    from zoo.likelihood import log_likelihood
    from zoo.models import DDPM, NCSN, DiffusionModel, FlowMatching, Model, ScoreSDE, transform
    from zoo.multistep import IPNDM, DPMSolverPP, DPMSolverPPSDE, UniPC
    from zoo.nets import ScoreNet, UNet
    from zoo.samplers import (
        DDIM,
        Ancestral,
        AnnealedLangevin,
        EDMHeun,
        Euler,
        EulerMaruyama,
        Predictions,
        PredictorCorrector,
        ProbabilityFlow,
        ReverseSDE,
        Samples,
    )
    from zoo.sdes import VE, VP, FlowPath, SubVP
