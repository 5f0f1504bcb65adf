"""zoo: DDPM, NCSN and score SDEs (VP, sub-VP, VE) side by side over one score network.

The public API; everything a user needs is reachable from here.
"""

from zoo import (
    data,
    image_metrics,
    likelihood,
    metrics,
    nets,
    plotting,
    presets,
    samplers,
    sdes,
    train,
)
from zoo.likelihood import log_likelihood
from zoo.models import DDPM, NCSN, DiffusionModel, Model, ScoreSDE, transform
from zoo.nets import ScoreNet, UNet
from zoo.samplers import (
    DDIM,
    Ancestral,
    AnnealedLangevin,
    DPMSolverPP,
    EDMHeun,
    EulerMaruyama,
    PredictorCorrector,
    ProbabilityFlow,
    ReverseSDE,
    Samples,
)
from zoo.sdes import VE, VP, SubVP

__version__ = "0.1.0"

__all__ = [
    "DDIM",
    "DDPM",
    "NCSN",
    "VE",
    "VP",
    "Ancestral",
    "AnnealedLangevin",
    "DPMSolverPP",
    "EDMHeun",
    "DiffusionModel",
    "EulerMaruyama",
    "Model",
    "PredictorCorrector",
    "ProbabilityFlow",
    "ReverseSDE",
    "Samples",
    "ScoreNet",
    "ScoreSDE",
    "SubVP",
    "UNet",
    "data",
    "image_metrics",
    "likelihood",
    "log_likelihood",
    "metrics",
    "nets",
    "plotting",
    "presets",
    "samplers",
    "sdes",
    "train",
    "transform",
]
