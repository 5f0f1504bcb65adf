r"""Classifier-free guidance (Ho & Salimans 2022, arXiv 2207.12598), once for every family.

A conditional model (``num_classes=K`` in :func:`zoo.transform`) trains one network on
:math:`\epsilon_\theta(x_t, t, c)` for the classes :math:`c \in \{0..K-1\}` and, with the label
replaced by the null class :math:`\varnothing = K` at a rate ``p_uncond``, on the unconditional
:math:`\epsilon_\theta(x_t, t, \varnothing)`. With guidance scale :math:`w \ge 0` sampling uses

.. math::
    \tilde\epsilon(x_t, t, c) = (1 + w)\, \epsilon_\theta(x_t, t, c) - w\, \epsilon_\theta(x_t,
    t, \varnothing)

(the paper's eq. 6). Since every family's score is :math:`s = -\epsilon/\sigma_t` at the same
:math:`x_t, t`, the same mix of scores is the guided score,
:math:`\tilde s = (1 + w)\, s_c - w\, s_\varnothing`: :func:`guided_score` wraps the model's
score function once, and every sampler of :mod:`zoo.samplers` reads the wrapped one.
:math:`w = 0` is the conditional model; larger :math:`w` trades diversity (Frechet
distance) for samples that a classifier reads as the asked class.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from zoo._checks import is_concrete

__all__ = ["check_labels", "check_scale", "guide", "guided_score", "is_unguided", "one_hot_labels"]

#: ``score_fn(x, t, labels)``: a conditional model's score of a batch ``x`` at a scalar or
#: per-example time ``t`` for integer ``labels: [B]`` (the null class ``K`` included)
LabelledScoreFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def guide(conditional: jax.Array, unconditional: jax.Array, scale) -> jax.Array:
    r""":math:`(1 + w)\, c - w\, u`: the guided prediction from the conditional ``c`` and
    unconditional ``u`` ones (noise or score alike) with guidance scale ``w = scale``."""
    return (1.0 + scale) * conditional - scale * unconditional


def check_scale(scale) -> None:
    """``ValueError`` for a concrete guidance scale that is negative or not finite (under jit
    a traced scale is not checked)."""
    if is_concrete(scale):
        value = np.asarray(scale)
        if value.ndim or not math.isfinite(float(value)) or float(value) < 0:
            raise ValueError(f"guidance must be a finite scalar >= 0 (w = 0: the conditional "
                             f"model), got {scale!r}")  # fmt: skip


def check_labels(labels, num_classes: int, name: str = "labels") -> None:
    """``ValueError`` for concrete ``labels`` outside ``0..num_classes`` (``num_classes``: the
    null class); traced labels are not checked."""
    if is_concrete(labels):
        values = np.asarray(labels)
        bad = values[(values < 0) | (values > num_classes)]
        if bad.size:
            raise ValueError(
                f"{name} must lie in 0..{num_classes} ({num_classes}: the null class), got "
                f"{sorted(set(bad.tolist()))[:5]}"
            )


def is_unguided(scale) -> bool:
    """Whether ``scale`` is a Python ``0``: the conditional model, one network call per score
    (a traced or array zero takes the guided path, with the same result at twice the cost)."""
    return isinstance(scale, (int, float)) and scale == 0


def guided_score(
    score_fn: LabelledScoreFn, labels: jax.Array, scale, null_label: int
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    r"""The sampler-facing ``score_fn(x, t)`` of a conditional model with guidance ``scale``:
    :math:`(1 + w)\, s(x, t, c) - w\, s(x, t, \varnothing)` for the per-example ``labels: [B]``
    and ``null_label`` :math:`\varnothing`.

    Both scores come from one network call on the batch doubled (``[x, x]`` with
    ``[labels, null]``), so a guided score evaluation costs one call of twice the batch.
    A scale that is a Python ``0`` skips the unconditional half: the conditional model.
    """
    check_scale(scale)

    def fn(x: jax.Array, t: jax.Array) -> jax.Array:
        if is_unguided(scale):
            return score_fn(x, t, labels)
        n = x.shape[0]
        both_t = t if jnp.ndim(t) == 0 else jnp.concatenate([t, t])
        null = jnp.full_like(labels, null_label)
        both = score_fn(jnp.concatenate([x, x]), both_t, jnp.concatenate([labels, null]))
        return guide(both[:n], both[n:], scale)

    return fn


def one_hot_labels(labels: jax.Array, num_classes: int) -> jax.Array:
    """Integer labels ``[B]`` in ``0..num_classes`` (``num_classes``: the null class) as the
    one-hot ``[B, num_classes + 1]`` that a conditional network takes as ``label=``."""
    return jax.nn.one_hot(labels, num_classes + 1, dtype=jnp.float32)
