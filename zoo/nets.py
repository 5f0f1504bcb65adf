"""Score networks: Haiku modules with the contract ``net(x, t, is_training) -> same shape as x``.

A conditional model (``num_classes`` set, :mod:`zoo.guidance`) also passes ``label=``: a
conditioning vector ``[B, L]`` (the model's one-hot class, the null class last). Both networks
here embed it linearly (for a one-hot input, a learned table of class embeddings) and add it
to the time embedding; without ``label`` they create no extra parameters, so an unconditional
network has the parameters of the plain contract.

Every family uses the same network; the family decides whether its output means the noise
:math:`\\epsilon`, the score or :math:`x_0` (see :mod:`zoo.models`). :class:`ScoreNet` is the
MLP for vectors ``[..., d]``; :class:`UNet` the convolutional network for images
``[B, H, W, C]``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import haiku as hk
import jax
import jax.numpy as jnp

from zoo import _checks

__all__ = ["ScoreNet", "UNet", "sinusoidal_embedding"]


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
        for field in ("width", "depth"):
            _checks.check_integer(getattr(self, field), field, maximum=_checks.INT32_MAX)
        _checks.check_fields(self)  # the other options' kinds
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")

    def __call__(
        self,
        x: jax.Array,
        t: jax.Array,
        is_training: bool = False,
        label: jax.Array | None = None,
    ) -> jax.Array:
        t = jnp.broadcast_to(t, x.shape[:-1])
        emb = sinusoidal_embedding(self.time_scale * t, self.embedding_dim, self.max_positions)
        h = hk.Linear(self.width, name="x_in")(x)  # [..., W]
        h = h + self.activation(hk.Linear(self.width, name="t_in")(emb))
        if label is not None:  # [..., L] -> a learned embedding, added like the time's
            h = h + hk.Linear(self.width, with_bias=False, name="label_in")(label)
        for i in range(self.depth - 1):
            h = self.activation(hk.Linear(self.width, name=f"hidden_{i}")(h))
        if self.layer_norm:
            h = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h)
        if is_training and self.dropout > 0:
            h = hk.dropout(hk.next_rng_key(), self.dropout, h)
        return hk.Linear(x.shape[-1], name="out")(h)


# --- UNet for images ---------------------------------------------------------------------------


def _check_positive_ints(values, name: str) -> tuple[int, ...]:
    out = tuple(values)
    if not out or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in out):
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {values!r}")
    return out


class _Conv(hk.Module):
    """A ``k x k`` convolution (SAME padding, optional stride) of ``[B, H, W, C]``.

    ``impl="matmul"`` gathers the ``k * k`` shifted copies of the input along the channels and
    multiplies by the ``[k*k*C, C']`` kernel (im2col). Why: XLA on CPU runs lax convolutions
    inside ``lax.scan`` (the training loop and the grid samplers) ~17x slower than outside
    it (0.83 vs 0.05 s per UNet step, 2-core CPU, jax 0.10.2), while the matmul form runs at
    0.07 s in both. ``impl="lax"`` is :class:`hk.Conv2D` (the better choice on GPU). The
    parameters are the same (``w: [k, k, C, C']``, ``b: [C']``) either way.
    """

    def __init__(self, channels, kernel, stride=1, impl="matmul", name=None):
        super().__init__(name=name)
        self.channels, self.kernel, self.stride, self.impl = channels, kernel, stride, impl

    def __call__(self, x):
        k, c_in = self.kernel, x.shape[-1]
        if self.impl == "lax":
            return hk.Conv2D(self.channels, k, stride=self.stride, name="conv")(x)
        w_init = hk.initializers.VarianceScaling(1.0, "fan_avg", "truncated_normal")
        w = hk.get_parameter("w", (k, k, c_in, self.channels), init=w_init)
        b = hk.get_parameter("b", (self.channels,), init=jnp.zeros)
        if k > 1:
            pad = k // 2
            xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            h, wd = x.shape[1:3]
            x = jnp.concatenate(
                [xp[:, i : i + h, j : j + wd] for i in range(k) for j in range(k)], axis=-1
            )  # [B, H, W, k*k*C]
        y = x @ w.reshape(k * k * c_in, self.channels) + b
        if self.stride == 1:
            return y
        # Pick the outputs that lax's SAME padding centres (its padding puts the extra row
        # after the image, so for even sizes the windows start one row later).
        starts = [k // 2 - max((-(-n // self.stride) - 1) * self.stride + k - n, 0) // 2
                  for n in y.shape[1:3]]  # fmt: skip
        return y[:, starts[0] :: self.stride, starts[1] :: self.stride]


class _ResBlock(hk.Module):
    """``x + F(x, emb)``: GroupNorm -> act -> 3x3 conv, plus a per-channel shift from the time
    embedding, GroupNorm -> act -> dropout -> 3x3 conv; a 1x1 conv on the skip path when the
    channel count changes (Ho et al. 2020, appendix B)."""

    def __init__(self, channels, groups, dropout, activation, conv, name=None):
        super().__init__(name=name)
        self.channels, self.groups = channels, groups
        self.dropout, self.activation, self.conv = dropout, activation, conv

    def __call__(self, x, emb, is_training):
        h = self.activation(hk.GroupNorm(self.groups, name="norm_in")(x))
        h = _Conv(self.channels, 3, impl=self.conv, name="conv_in")(h)  # [B, H, W, C']
        # The time enters every block, so each resolution can react to the noise level.
        h = h + hk.Linear(self.channels, name="time")(emb)[:, None, None, :]
        h = self.activation(hk.GroupNorm(self.groups, name="norm_out")(h))
        if is_training and self.dropout > 0:
            h = hk.dropout(hk.next_rng_key(), self.dropout, h)
        h = _Conv(self.channels, 3, impl=self.conv, name="conv_out")(h)
        if x.shape[-1] != self.channels:
            x = _Conv(self.channels, 1, impl=self.conv, name="skip")(x)
        return x + h


class _Attention(hk.Module):
    """Residual multi-head self-attention over the ``H * W`` positions of a feature map."""

    def __init__(self, groups, num_heads, name=None):
        super().__init__(name=name)
        self.groups, self.num_heads = groups, num_heads

    def __call__(self, x):
        b, h, w, c = x.shape
        seq = hk.GroupNorm(self.groups, name="norm")(x).reshape(b, h * w, c)  # [B, HW, C]
        out = hk.MultiHeadAttention(
            num_heads=self.num_heads,
            key_size=c // self.num_heads,
            w_init=hk.initializers.VarianceScaling(1.0),
            name="mha",
        )(seq, seq, seq)
        return x + out.reshape(b, h, w, c)


@dataclasses.dataclass
class UNet(hk.Module):
    """A small DDPM-style UNet over images ``x: [B, H, W, C]`` and times ``t: [B]`` (or a
    scalar), returning ``[B, H, W, C]``.

    Levels ``i = 0..L-1`` run at resolution :math:`H/2^i` with ``channels * channel_mults[i]``
    channels: ``blocks_per_level`` ResNet blocks (GroupNorm with ``groups`` groups, the time
    embedding added in every block, ``dropout`` when training), then a strided-conv
    downsampling except at the last level. The middle is ResBlock -> self-attention ->
    ResBlock at the lowest resolution; the up path mirrors the down path with
    ``blocks_per_level + 1`` blocks per level, each taking the matching skip connection
    (channel concatenation), and nearest-neighbour upsampling followed by a 3x3 conv.
    Self-attention is also applied after the blocks of every level in ``attention_levels``
    (default: none besides the middle).

    The time embedding is ``sinusoidal(time_scale * t)`` (as in :class:`ScoreNet`) ->
    ``Linear(4 channels)`` -> act -> ``Linear(4 channels)``; a ``label: [B, L]`` (a
    conditional model's one-hot class) adds ``Linear(4 channels, no bias)(label)`` to it.

    ``conv``: ``"matmul"`` (im2col; fast on CPU inside ``lax.scan``) or ``"lax"``
    (:class:`hk.Conv2D`); see :class:`_Conv`.

    The defaults (32 channels, mults ``(1, 2)``, one block per level, 8 groups, attention
    at 4x4) fit 8x8 digits; the DDPM+DDIM MNIST write-up used the same layout at 28x28.
    ``H`` and ``W`` must be divisible by :math:`2^{L-1}` and every level's channel count by
    ``groups``.
    """

    channels: int = 32
    channel_mults: Sequence[int] = (1, 2)
    blocks_per_level: int = 1
    attention_levels: Sequence[int] = ()
    num_heads: int = 1
    groups: int = 8
    dropout: float = 0.1
    embedding_dim: int | None = None
    max_positions: float = 10_000.0
    time_scale: float = 1000.0
    activation: Callable[[jax.Array], jax.Array] = jax.nn.silu
    conv: str = "matmul"
    name: str | None = None

    def __post_init__(self):
        super().__init__(name=self.name)
        _checks.check_fields(self)  # each option's kind; the bounds below
        if self.conv not in ("matmul", "lax"):
            raise ValueError(f"conv must be 'matmul' or 'lax', got {self.conv!r}")
        mults = _check_positive_ints(self.channel_mults, "channel_mults")
        self.channel_mults = mults
        for field in ("channels", "blocks_per_level", "num_heads", "groups"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive int, got {value!r}")
        widths = [self.channels * m for m in mults]
        bad = [w for w in widths if w % self.groups]
        if bad:
            raise ValueError(
                f"every level's channels (channels * channel_mults = {widths}) must be divisible "
                f"by groups={self.groups}; {bad} are not"
            )
        levels = tuple(self.attention_levels)
        if any(not isinstance(i, int) or not 0 <= i < len(mults) for i in levels):
            raise ValueError(
                f"attention_levels must be level indices in [0, {len(mults) - 1}], got {levels}"
            )
        self.attention_levels = levels
        for i in {*levels, len(mults) - 1}:
            if widths[i] % self.num_heads:
                raise ValueError(
                    f"num_heads={self.num_heads} must divide the channels {widths[i]} of "
                    f"attention level {i}"
                )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.embedding_dim is not None and (self.embedding_dim < 2 or self.embedding_dim % 2):
            raise ValueError(f"embedding_dim must be an even int >= 2, got {self.embedding_dim}")

    @property
    def downsampling(self) -> int:
        """The factor :math:`2^{L-1}` by which the lowest level is smaller than the input."""
        return 2 ** (len(self.channel_mults) - 1)

    def _check_input(self, x):
        if x.ndim != 4:
            raise ValueError(f"x must be images [B, H, W, C], got shape {tuple(x.shape)}")
        f = self.downsampling
        if x.shape[1] % f or x.shape[2] % f:
            raise ValueError(
                f"image height and width must be divisible by 2**(len(channel_mults) - 1) = {f} "
                f"(channel_mults={self.channel_mults}), got {x.shape[1]}x{x.shape[2]}"
            )

    def __call__(
        self,
        x: jax.Array,
        t: jax.Array,
        is_training: bool = False,
        label: jax.Array | None = None,
    ) -> jax.Array:
        self._check_input(x)
        act, groups = self.activation, self.groups
        width = 4 * self.channels
        t = jnp.broadcast_to(t, x.shape[:1])
        emb_dim = self.embedding_dim or self.channels
        emb = sinusoidal_embedding(self.time_scale * t, emb_dim, self.max_positions)  # [B, E]
        emb = hk.Linear(width, name="time_in")(emb)
        emb = hk.Linear(width, name="time_hidden")(act(emb))  # [B, 4 ch]
        if label is not None:
            # The class enters where the time does, so every block sees both (Ho & Salimans
            # 2022 condition the same way); [B, L] -> [B, 4 ch].
            emb = emb + hk.Linear(width, with_bias=False, name="label")(label)

        def block(h, channels, name):
            block = _ResBlock(channels, groups, self.dropout, act, self.conv, name=name)
            return block(h, emb, is_training)

        h = _Conv(self.channels, 3, impl=self.conv, name="conv_in")(x)  # [B, H, W, ch]
        skips = [h]
        last = len(self.channel_mults) - 1
        for i, mult in enumerate(self.channel_mults):
            for j in range(self.blocks_per_level):
                h = block(h, self.channels * mult, f"down_{i}_{j}")
                if i in self.attention_levels:
                    h = _Attention(groups, self.num_heads, name=f"down_attention_{i}_{j}")(h)
                skips.append(h)
            if i < last:
                h = _Conv(h.shape[-1], 3, 2, self.conv, name=f"downsample_{i}")(h)  # H / 2
                skips.append(h)

        mid = self.channels * self.channel_mults[-1]
        h = block(h, mid, "middle_0")
        h = _Attention(groups, self.num_heads, name="middle_attention")(h)
        h = block(h, mid, "middle_1")

        for i in reversed(range(len(self.channel_mults))):
            for j in range(self.blocks_per_level + 1):
                h = jnp.concatenate([h, skips.pop()], axis=-1)
                h = block(h, self.channels * self.channel_mults[i], f"up_{i}_{j}")
                if i in self.attention_levels:
                    h = _Attention(groups, self.num_heads, name=f"up_attention_{i}_{j}")(h)
            if i > 0:
                b, hh, ww, c = h.shape
                h = jax.image.resize(h, (b, 2 * hh, 2 * ww, c), method="nearest")
                h = _Conv(c, 3, impl=self.conv, name=f"upsample_{i}")(h)

        h = act(hk.GroupNorm(groups, name="norm_out")(h))
        return _Conv(x.shape[-1], 3, impl=self.conv, name="conv_out")(h)
