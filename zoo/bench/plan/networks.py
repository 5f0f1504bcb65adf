"""The network under every family: the presets' own, a :class:`zoo.nets.ScoreNet` of another
width (``zoo-bench --width``), or a user's Haiku network (``zoo-bench --net
package.module:factory``).

A user's factory has the contract of the zoo's networks: ``factory()``, called with no
arguments inside the model's ``hk.transform``, returns a module or function ``net`` with
``net(x, t, is_training) -> array shaped like x`` (``x: [B, *event]``, ``t: [B]``;
``is_training`` is True in the loss, where dropout may apply). The module is imported from
``sys.path`` with the current folder first, as ``python -m`` would.

The factory enters the cache keys as its spec and the SHA-256 of its module's source file
(:class:`UserNet`), so editing the network trains it again while an unchanged one is reused.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType

import haiku as hk
import jax
import jax.numpy as jnp

from zoo import presets
from zoo.bench.plan.profiles import Config

__all__ = ["UserNet", "check", "load", "vector_net"]


@dataclasses.dataclass(frozen=True)
class UserNet:
    """A user's network factory named by ``spec`` (``"package.module:factory"``), with the
    ``source_sha256`` of its module's file: a factory that hashes and prints the same in every
    process, so cache keys built from a model's config are stable."""

    spec: str
    source_sha256: str

    def __call__(self):
        return _factory(self.spec)[1]()


def _factory(spec: str) -> tuple[ModuleType, Callable]:
    """The module and factory named by ``spec``; ``ValueError`` saying what was expected."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"expected package.module:factory, got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # `zoo-bench` (a script) does not search it itself
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is None or not f"{module_name}.".startswith(f"{e.name}."):
            # a missing module that the user's module imports, not the one named
            raise ValueError(f"cannot import module {module_name!r} of {spec!r}: {e}") from e
        raise ValueError(f"cannot import module {module_name!r} of {spec!r}: {e}") from None
    except Exception as e:  # whatever the module's own code raises on import
        raise ValueError(
            f"cannot import module {module_name!r} of {spec!r}: it raised {type(e).__name__}: {e}"
        ) from e
    factory = getattr(module, attribute, None)
    if factory is None:
        raise ValueError(f"module {module_name!r} has no attribute {attribute!r}")
    if not callable(factory):
        raise ValueError(
            f"{spec!r} is a {type(factory).__name__}, not callable; expected a factory"
        )
    return module, factory


def load(spec: str) -> UserNet:
    """The user's network factory named by ``spec`` (checked: the module imports and holds
    a callable of that name); ``ValueError`` saying what was expected."""
    module, _ = _factory(spec)
    source = getattr(module, "__file__", None)  # the module named, whatever the factory is
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest() if source else "unknown"
    return UserNet(spec, digest)


class _Failed(Exception):
    """The contract check's own stop: which call failed (the user's exception is its
    ``__cause__``)."""


def check(spec: str, event_shapes: Iterable[tuple[int, ...]]) -> UserNet:
    """:func:`load`, and the contract of the module docstring checked on a batch of two
    examples of each of ``event_shapes`` (traced by ``jax.eval_shape``, so nothing is
    computed): ``factory()`` takes no arguments and returns a callable ``net`` whose
    ``net(x, t, is_training)`` is shaped like ``x``. ``ValueError`` naming ``spec`` and what
    was wrong, with the user's own exception as its ``__cause__``: the check runs before
    training so that a broken network is not reported from deep inside Haiku."""
    user = load(spec)
    _, factory = _factory(spec)
    try:
        inspect.signature(factory).bind()
    except TypeError as e:
        raise ValueError(
            f"{spec}: factory() cannot be called without arguments ({e}); expected a factory "
            "that takes none (bind yours with a wrapper or functools.partial)"
        ) from None
    except ValueError:  # no signature to read (some builtins): the call below tells
        pass

    def net_fn(x, t):
        try:
            net = factory()
        except Exception as e:
            raise _Failed(f"factory() raised {type(e).__name__}: {e}") from e
        if not callable(net):
            raise _Failed(
                f"factory() returned {net!r}; expected a module or function net(x, t, is_training)"
            )
        try:
            return net(x, t, True)
        except Exception as e:
            raise _Failed(f"net(x, t, is_training) raised {type(e).__name__}: {e}") from e

    transformed = hk.transform(net_fn)

    def output(x, t):
        key = jax.random.PRNGKey(0)  # traced too: no backend starts (zoo-bench distributed)
        return transformed.apply(transformed.init(key, x, t), key, x, t)

    for shape in dict.fromkeys(tuple(s) for s in event_shapes):
        x = jax.ShapeDtypeStruct((2, *shape), jnp.float32)
        try:
            out = jax.eval_shape(output, x, jax.ShapeDtypeStruct((2,), jnp.float32))
        except _Failed as e:
            raise ValueError(f"{spec}: on x of shape {x.shape}, {e}") from e.__cause__
        if getattr(out, "shape", None) != x.shape:
            got = getattr(out, "shape", type(out).__name__)
            raise ValueError(
                f"{spec}: net(x, t, is_training) maps x of shape {x.shape} to {got}; "
                "expected an array shaped like x"
            )
    return user


def vector_net(config: Config) -> Callable | None:
    """The network of vector data (2-D toys and user points): the user's (``config.net``), a
    :data:`zoo.presets.TOY_NET` of ``config.width``, or ``None``: the preset's own."""
    if config.net is not None:
        return load(config.net)
    if config.width is not None:
        return functools.partial(presets.TOY_NET, width=config.width)
    return None
