"""Image data in the harness: the 8x8 handwritten digits (``zoo-bench --datasets digits``),
trained with :func:`zoo.presets.digits` over a UNet and scored with :mod:`zoo.image_metrics`.

The same calls as :mod:`zoo.bench.judge.evaluation` answers for the 2-D toys
(:mod:`zoo.bench.plan.matrix` picks the module by dataset). Each cell's samples are scored by
a small classifier trained on the real training digits (``frechet``: the Frechet distance of
its features, ``class_kl``: the predicted classes' KL to uniform, ``confidence``: the mean top
class probability) and by
``nearest_train``, the mean L2 distance to the nearest training digit (below the floor's
value: memorisation). A run's likelihood is ``bpd``, the NLL bound of held-out dequantised
digits in bits per dimension (probability-flow ODE, one Hutchinson probe). The noise floor is
the same metrics for held-out real digits scored as if they were samples.

Besides the families of ``zoo.presets.FAMILIES``, ``writeup``: the MNIST write-up's DDPM
(:func:`zoo.presets.mnist_writeup`, T = 200, adam 1e-4), whose ancestral sampler can be set
against DDIM from the same network.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from zoo import image_metrics, images, presets
from zoo.bench.judge import evaluation
from zoo.bench.plan import networks
from zoo.bench.plan.profiles import Config
from zoo.nets import UNet

__all__ = ["DATASETS", "WRITEUP", *evaluation.KIND_API]

DATASETS = images.NAMES
WRITEUP = "writeup"
#: column -> (label, which way is better; None: neither)
METRICS = {
    "bpd": ("bits/dim", "lower"),
    "bpd_se": ("bpd s.e.", None),
    "frechet": ("Frechet", "lower"),
    "class_kl": ("class KL", "lower"),
    "confidence": ("confidence", "higher"),
    # below the floor is memorisation, above it is off the data: no direction is better
    "nearest_train": ("nearest train", None),
}
#: the metrics of :func:`quick_quality` (all of :func:`sample_quality`: the classifier is cheap)
QUICK_METRICS = ("frechet", "class_kl", "confidence", "nearest_train")
#: the metric of the quality-per-NFE tables and figures
HEADLINE = "frechet"
PASSES = 7  # a run trains on 7 whole passes of the training digits: every digit weighs the same
HELDOUT_SEED, PROBES = 1002, 1


def load(dataset: str, config: Config | None = None) -> images.Digits:
    """The image dataset called ``dataset`` (the dequantised digits, split into training and
    held-out images; ``config``: unused, user points are read from it)."""
    return images.get(dataset)


def preset(config: Config, family: str, data: images.Digits) -> presets.Preset:
    """``family``'s :func:`zoo.presets.digits` (or the write-up's DDPM for ``writeup``) over a
    UNet of ``config.channels`` base channels, or the user's ``config.net``; ``ValueError``
    for a family that has none."""
    if config.net is not None:
        net = networks.load(config.net)
    else:
        net = functools.partial(UNet, channels=config.channels)
    if family == WRITEUP:
        return presets.mnist_writeup(net=net)
    return presets.digits(family, net=net, steps=config.steps)


def num_train(data: images.Digits) -> int:
    """Training images per run: :data:`PASSES` whole passes over the training digits."""
    return PASSES * data.num_train


def reference(data: images.Digits, config: Config) -> np.ndarray:
    """The training digits at their bin centres: what every metric compares a cell with."""
    return np.asarray(data.train_images())


def _heldout(data: images.Digits, n: int) -> np.ndarray:
    """The first ``n`` held-out digits, dequantised with a fixed key."""
    return np.asarray(data.test_set(jax.random.PRNGKey(0)))[:n]


def likelihood_settings(config: Config) -> dict:
    """Everything a run's bits/dim depend on besides the run: part of its cache key."""
    return {
        "images": config.nll_images,
        "tol": config.nll_tol,
        "probes": PROBES,
        "seed": HELDOUT_SEED,
    }


def settings(config: Config) -> dict:
    """Everything a cell's scores depend on besides its samples: part of its cache key."""
    return {**likelihood_settings(config), **quick_settings(config)}


def quick_settings(config: Config) -> dict:
    """Everything :func:`quick_quality`'s scores depend on besides the samples (the
    classifier is fixed by its seed in :mod:`zoo.image_metrics`)."""
    return {"num_samples": config.num_samples, "metrics": QUICK_METRICS}


def describe(config: Config) -> str:
    """How the numbers were obtained, for ``results.md`` and ``summary.json``."""
    return (
        f"Digits: each cell's {config.num_samples} samples are read by a classifier trained "
        "on the real training digits (zoo.image_metrics): Frechet is the Frechet distance of "
        "its features to the training digits' (biased up by O(1/n): compare at equal n), "
        "class KL the predicted classes' KL to uniform, confidence the mean top class "
        "probability; nearest train is the mean L2 distance to the nearest training digit "
        "(below the floor: memorisation). Bits/dim: the NLL bound of "
        f"{config.nll_images} held-out dequantised digits by the probability-flow ODE "
        f"(rtol = atol = {config.nll_tol:g}, {PROBES} Hutchinson probe; uniform over the 17 "
        "grey levels is 4.09), with its standard error. The noise floor is the held-out "
        "digits scored as if they were samples."
    )


def sample_quality(
    x: np.ndarray, data: images.Digits, reference: np.ndarray, config: Config
) -> dict[str, float]:
    """The image metrics of finite samples ``x`` (``reference``: the training digits,
    which :func:`zoo.image_metrics.evaluate_images` reads from ``data`` itself)."""
    values = image_metrics.evaluate_images(x, data)
    return {k: float(values[k]) for k in QUICK_METRICS}


quick_quality = sample_quality


def noise_floor(data: images.Digits, reference: np.ndarray, config: Config) -> dict:
    """``samples``: one row, the metrics of as many held-out digits as a cell has samples
    (all of them when there are fewer), and a ``note`` that says how many."""
    n = min(config.num_samples, len(data.test_labels))
    values = image_metrics.image_noise_floor(data, n=n)
    note = f"Noise floor: {n} held-out digits scored as if they were samples."
    if n < config.num_samples:
        note += f" (There are only {n}: the Frechet distance of cells is biased up against it.)"
    return {"note": note, "samples": [{k: float(values[k]) for k in QUICK_METRICS}]}


def likelihood_fn(model, config: Config):
    """``fn(params) -> dict`` of the bits/dim columns, or ``None`` when ``config.nll_images``
    is 0."""
    if not config.nll_images:
        return None

    def fn(params, x):
        score = functools.partial(model.score, params)
        return image_metrics.bits_per_dim_by_ode(
            model.sde, score, x, jax.random.PRNGKey(HELDOUT_SEED), num_probes=PROBES,
            rtol=config.nll_tol, atol=config.nll_tol,
        )  # fmt: skip

    return fn


def likelihood(fn, params, data: images.Digits, config: Config) -> dict:
    """The bits/dim columns of one trained run (``fn`` from :func:`likelihood_fn`)."""
    if fn is None:
        return {}
    out = fn(params, _heldout(data, config.nll_images))
    return {
        "bpd": out["bpd"],
        "bpd_se": out["bpd_stderr"],
        "nll_nfe": int(round(out["nfe"])),
        "nll_status": "ok",
    }
