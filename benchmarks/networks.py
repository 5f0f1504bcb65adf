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
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from benchmarks.profiles import Config
from zoo import presets

__all__ = ["UserNet", "load", "vector_net"]


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
    except ImportError as e:
        raise ValueError(f"cannot import module {module_name!r} of {spec!r}: {e}") from None
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


def vector_net(config: Config) -> Callable | None:
    """The network of vector data (2-D toys and user points): the user's (``config.net``), a
    :data:`zoo.presets.TOY_NET` of ``config.width``, or ``None``: the preset's own."""
    if config.net is not None:
        return load(config.net)
    if config.width is not None:
        return functools.partial(presets.TOY_NET, width=config.width)
    return None
