"""Score networks: Haiku modules with the contract ``net(x, t, is_training) -> same shape as x``.

Every family uses the same network; the family decides whether its output means the noise
:math:`\\epsilon`, the score or :math:`x_0` (see :mod:`zoo.models`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import haiku as hk
import jax
import jax.numpy as jnp

__all__ = ["ScoreNet", "sinusoidal_embedding"]


def sinusoidal_embedding(t: jax.Array, dim: int, max_positions: float = 10_000.0) -> jax.Array:
    """Transformer position embedding of a (real) time: ``[..., dim]``.

    .. math:: e_{2k} = \\sin(t\\,\\omega_k),\\; e_{2k+1} = \\cos(t\\,\\omega_k),\\quad
        \\omega_k = \\text{max\\_positions}^{-k/(dim/2 - 1)}.
    """
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    half = dim // 2
    freqs = jnp.exp(-math.log(max_positions) * jnp.arange(half) / max(half - 1, 1))
    angles = jnp.asarray(t, jnp.float32)[..., None] * freqs  # [..., half]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


@dataclasses.dataclass
class ScoreNet(hk.Module):
    """The case-study MLP over vectors ``x: [..., d]`` and times ``t: [...]``.

    ``x -> Linear(width)``; ``t -> sinusoidal(time_scale * t) -> Linear(width) -> act``;
    sum; ``depth - 1`` more ``Linear(width) -> act``; LayerNorm; dropout when training;
    ``Linear(d)``. The defaults are the case study's (width 256, two hidden layers after
    the sum, gelu, embedding 256, dropout 0.1).

    ``time_scale`` maps the model time ``t in [0, T]`` to embedding positions: with 1000 and
    ``max_positions = 10_000`` the slowest frequency spans ~6 times the unit interval and the
    fastest resolves steps of 1e-3 (DDPM's integer timesteps up to 1000 land on the same scale).
    """

    width: int = 256
    depth: int = 3
    embedding_dim: int = 256
    max_positions: float = 10_000.0
    time_scale: float = 1000.0
    activation: Callable[[jax.Array], jax.Array] = jax.nn.gelu
    dropout: float = 0.1
    layer_norm: bool = True
    name: str | None = None

    def __post_init__(self):
        super().__init__(name=self.name)
        if self.depth < 1 or self.width < 1:
            raise ValueError(
                f"depth and width must be >= 1, got depth={self.depth}, width={self.width}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")

    def __call__(self, x: jax.Array, t: jax.Array, is_training: bool = False) -> jax.Array:
        t = jnp.broadcast_to(t, x.shape[:-1])
        emb = sinusoidal_embedding(self.time_scale * t, self.embedding_dim, self.max_positions)
        h = hk.Linear(self.width, name="x_in")(x)  # [..., W]
        h = h + self.activation(hk.Linear(self.width, name="t_in")(emb))
        for i in range(self.depth - 1):
            h = self.activation(hk.Linear(self.width, name=f"hidden_{i}")(h))
        if self.layer_norm:
            h = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h)
        if is_training and self.dropout > 0:
            h = hk.dropout(hk.next_rng_key(), self.dropout, h)
        return hk.Linear(x.shape[-1], name="out")(h)
