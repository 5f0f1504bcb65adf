r"""Image data: sklearn's 8x8 handwritten digits, in ``[-1, 1]``, dequantised.

:class:`Digits` is what :func:`zoo.train.fit` and the samplers need of a dataset (``name``,
``event_shape``, ``sample``, ``train_set``; ``train_labels`` for a class-conditional model)
and what :mod:`zoo.image_metrics` needs to score samples against real digits
(``train_images``, ``test_set``, ``labels``, ``test_labels``, ``bin_width``). Unlike the 2-D
toys of :mod:`zoo.data` it has no density, diffused score or entropy: the model's likelihood
of held-out digits is :func:`zoo.image_metrics.bits_per_dim_by_ode`.

Grey values :math:`v \in \{0..K-1\}`, :math:`K` = :data:`DIGITS_LEVELS`, map to ``[-1, 1]`` by
:func:`from_grey_levels`: each value owns a bin of width :math:`w = 2/K`; an image is put at the
bin centres :math:`x = (2v + 1)/K - 1`, or, dequantised, at a uniform point of its bin,
:math:`x = 2(v + u)/K - 1,\ u \sim U[0, 1)` (Uria et al. 2013; Ho et al. 2020 sec. 3.3), so
that a continuous density on ``[-1, 1]`` bounds the discrete likelihood:
:math:`-\log P(v) \le E_u[-\log p(x)] - D \log w`.

``zoo.data.get("digits")`` finds :func:`digits` too, beside the 2-D toys.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from zoo._checks import check_seed, check_shape

__all__ = ["DIGITS_LEVELS", "NAMES", "Digits", "digits", "from_grey_levels", "get"]

DIGITS_LEVELS = 17  # sklearn's digits hold integer grey values 0..16


def from_grey_levels(values, key: jax.Array | None = None) -> jax.Array:
    """Grey values ``0..DIGITS_LEVELS - 1`` (any shape) to float32 in ``[-1, 1]``: the bin
    centres :math:`(2v + 1)/K - 1`, or with ``key`` a uniform point of each value's bin
    :math:`2(v + u)/K - 1` (one independent ``u`` per value)."""
    v = jnp.asarray(values, jnp.float32)
    u = 0.5 if key is None else jax.random.uniform(key, v.shape)
    return (2.0 * (v + u) / DIGITS_LEVELS - 1.0).astype(jnp.float32)


@functools.cache
def _split(test_fraction: float, seed: int):
    """sklearn's 1797 digits, shuffled with ``seed`` and split: ``(train_v, train_y, test_v,
    test_y)`` with integer grey values ``v: [N, 8, 8, 1]`` in 0..16 and labels ``y: [N]``."""
    from sklearn.datasets import load_digits  # bundled with sklearn: no download

    bunch = load_digits()
    values = bunch.images.astype(np.int64)[..., None]  # [1797, 8, 8, 1]
    order = np.random.default_rng(seed).permutation(len(values))
    n_test = int(round(test_fraction * len(values)))
    test, train = order[:n_test], order[n_test:]
    return values[train], bunch.target[train], values[test], bunch.target[test]


@dataclasses.dataclass(frozen=True)
class Digits:
    """sklearn's handwritten digits (UCI optdigits test set): 1797 grey images 8x8 with
    :data:`DIGITS_LEVELS` grey values, as ``[..., 8, 8, 1]`` in ``[-1, 1]`` (module docstring).

    The split (``test_fraction`` of the images held out) is fixed by ``seed``. ``sample`` draws
    training images (never test images) uniformly, dequantised when ``dequantize``;
    ``train_set(n)`` cycles through the training images in a fixed order to length ``n``
    (equal weights when ``n`` is a multiple of :attr:`num_train`), each copy with its own
    dequantisation noise from ``PRNGKey(train_seed)``.
    """

    # name and train_seed first and keyword-only, as in zoo.data.Toy (same repr as there).
    name: str = dataclasses.field(default="digits", kw_only=True)
    train_seed: int = dataclasses.field(default=0, kw_only=True)
    dequantize: bool = True
    test_fraction: float = 0.2
    seed: int = 0

    event_shape: ClassVar[tuple[int, ...]] = (8, 8, 1)

    def __post_init__(self):
        fraction = self.test_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, numbers.Real)
            or not 0 < fraction < 1
        ):
            raise ValueError(f"test_fraction must lie in (0, 1), got {fraction!r}")
        check_seed(self.seed, "seed")
        check_seed(self.train_seed, "train_seed")
        if not isinstance(self.dequantize, bool):
            raise TypeError(f"dequantize must be True or False, got {self.dequantize!r}")

    @property
    def bin_width(self) -> float:
        """Width :math:`2/K` of one grey level in ``[-1, 1]``."""
        return 2.0 / DIGITS_LEVELS

    def _grey(self, part: int) -> np.ndarray:
        return _split(float(self.test_fraction), int(self.seed))[part]

    @property
    def num_train(self) -> int:
        """Number of training images (1797 less the held-out ones)."""
        return len(self._grey(0))

    def _to_unit(self, values, key: jax.Array | None) -> jax.Array:
        return from_grey_levels(values, key if self.dequantize else None)

    def sample(self, key: jax.Array, shape: int | Sequence[int] = ()) -> jax.Array:
        """Training images drawn uniformly with replacement, float32 ``[*shape, 8, 8, 1]``."""
        return _compiled_sample(self, key, check_shape(shape))

    def train_set(self, n: int | None = None) -> jax.Array:
        """``n`` training images ``[n, 8, 8, 1]`` (default: each once), cycling in a fixed
        order, dequantised (when set) with ``PRNGKey(train_seed)``."""
        train = self._grey(0)
        if n is None:
            n = len(train)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive int (the number of training images), got {n!r}")
        values = train[np.arange(n) % len(train)]
        return self._to_unit(values, jax.random.PRNGKey(check_seed(self.train_seed, "train_seed")))

    def train_labels(self, n: int | None = None) -> np.ndarray:
        """The digit classes ``[n]`` of :meth:`train_set`'s ``n`` images, in its order: what
        :func:`zoo.train.fit` trains a class-conditional model on."""
        n = self.num_train if n is None else n
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive int (the number of training images), got {n!r}")
        return self.labels[np.arange(n) % self.num_train]

    def train_images(self, key: jax.Array | None = None) -> jax.Array:
        """Every training image once, in the order of :attr:`labels`, ``[N, 8, 8, 1]``: at the
        bin centres, or with ``key`` (and ``dequantize``) dequantised with that key."""
        return self._to_unit(self._grey(0), key)

    def test_set(self, key: jax.Array | None = None) -> jax.Array:
        """The held-out images ``[M, 8, 8, 1]``: at bin centres, or with ``key`` (and
        ``dequantize``) dequantised with that key."""
        return self._to_unit(self._grey(2), key)

    @property
    def labels(self) -> np.ndarray:
        """Digit classes 0..9 of the training images, ``[N]`` (the order of ``train_images``)."""
        return self._grey(1)

    @property
    def test_labels(self) -> np.ndarray:
        """Digit classes 0..9 of the held-out images, ``[M]``."""
        return self._grey(3)


# One compilation per (dataset, shape); the training images enter as a constant.
@functools.partial(jax.jit, static_argnums=(0, 2))
def _compiled_sample(data: Digits, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    index_key, noise_key = jax.random.split(key)
    train = jnp.asarray(data._grey(0))
    return data._to_unit(train[jax.random.randint(index_key, shape, 0, len(train))], noise_key)


@functools.cache
def digits(dequantize: bool = True, test_fraction: float = 0.2, seed: int = 0) -> Digits:
    """The handwritten digits (:class:`Digits`): a fixed ``seed`` split with ``test_fraction``
    held out (359 of 1797 images by default), uniform dequantisation when ``dequantize``."""
    return Digits(dequantize=dequantize, test_fraction=test_fraction, seed=seed)


NAMES: tuple[str, ...] = ("digits",)


def get(name: str) -> Digits:
    """The image dataset called ``name`` (one of :data:`NAMES`), with its default settings."""
    if name not in NAMES:
        raise ValueError(f"unknown image dataset {name!r}; valid names: {', '.join(NAMES)}")
    return digits()
