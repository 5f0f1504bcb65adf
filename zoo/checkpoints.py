"""Checkpoints of one run: ``path.npz`` holds the arrays :func:`zoo.train.fit` needs to go on
(parameters, EMA parameters, the optimizer state's leaves, step and key) and ``path.json`` the
model's family and config, written as JSON references to library objects (no pickle) that
:func:`load_model` rebuilds, and any metadata."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from zoo.models import Model, transform

if TYPE_CHECKING:
    from zoo.train import TrainState

__all__ = ["save", "load", "load_model"]

_SEP = "/"


def _flatten(tree, prefix):
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    keystr = functools.partial(jax.tree_util.keystr, simple=True, separator=_SEP)
    return {prefix + _SEP + keystr(path): np.asarray(leaf) for path, leaf in leaves}


def _unflatten_dict(flat: dict, prefix: str) -> dict:
    """Rebuild a Haiku params dict ``{module: {name: array}}`` from flattened keys."""
    out: dict = {}
    for key, value in flat.items():
        if not key.startswith(prefix + _SEP):
            continue
        module, name = key[len(prefix) + 1 :].rsplit(_SEP, 1)
        out.setdefault(module, {})[name] = jnp.asarray(value)
    return out


def _encode(obj, where: str):
    """JSON for configs: dataclasses, partials, tuples and references to library objects
    (``module:qualname``, refused unless :func:`_resolve` finds the very same object again)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {
            f.name: _encode(getattr(obj, f.name), f"{where}.{f.name}")
            for f in dataclasses.fields(obj)
            if f.init
        }
        return {"__class__": _encode(type(obj), where), "fields": fields}
    if isinstance(obj, functools.partial):
        return {
            "__partial__": _encode(obj.func, where),
            "args": [_encode(v, f"{where}(arg {i})") for i, v in enumerate(obj.args)],
            "kwargs": {k: _encode(v, f"{where}({k}=)") for k, v in obj.keywords.items()},
        }
    if isinstance(obj, (list, tuple)):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        return {k: _encode(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return obj
    if callable(obj) and hasattr(obj, "__qualname__"):
        ref = f"{obj.__module__}:{obj.__qualname__}"
        try:
            found = _resolve(ref)
        except (ValueError, ImportError, AttributeError):
            found = None
        if found is not obj:
            raise ValueError(
                f"model config {where}={obj!r} cannot be saved so that load_model rebuilds it: "
                f"{ref} is not importable from {_TRUSTED_MODULES} (a lambda or a local function "
                "never is). Use a module-level function or class of those packages, or a "
                "functools.partial of one, or save without model= and rebuild the model yourself"
            )
        return {"__ref__": ref}
    raise ValueError(f"model config {where}={obj!r} cannot be written to a JSON config")


_TRUSTED_MODULES = ("zoo", "jax", "haiku", "optax", "diffrax")


def _resolve(ref: str):
    """The object ``module:qualname`` names, imported only from ``_TRUSTED_MODULES``."""
    module, qualname = ref.split(":")
    if module.split(".")[0] not in _TRUSTED_MODULES:
        raise ValueError(f"config refers to {module}, outside {_TRUSTED_MODULES}")
    value = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


def _decode(obj):
    if isinstance(obj, list):
        return tuple(_decode(v) for v in obj)
    if not isinstance(obj, dict):
        return obj
    if "__ref__" in obj:
        return _resolve(obj["__ref__"])
    if "__class__" in obj:
        return _decode(obj["__class__"])(**{k: _decode(v) for k, v in obj["fields"].items()})
    if "__partial__" in obj:
        return functools.partial(
            _decode(obj["__partial__"]),
            *[_decode(v) for v in obj.get("args", [])],
            **{k: _decode(v) for k, v in obj["kwargs"].items()},
        )
    return {k: _decode(v) for k, v in obj.items()}


def save(
    path: str | os.PathLike, state: TrainState, model: Model | None = None, **metadata
) -> None:
    """Write one run: ``path.npz`` holds everything :func:`fit` needs to go on (parameters, EMA
    parameters, the optimizer state's leaves, step and key) and ``path.json`` the model's
    family and config (when ``model`` is given) and ``metadata``.

    ``state`` is one run, e.g. ``jax.tree_util.tree_map(lambda a: a[r], state)`` of
    :func:`fit`'s. Raises ``ValueError`` (and writes nothing) when the config cannot be written
    so that :func:`load_model` rebuilds it, e.g. a ``net`` that is a lambda or local function.
    """
    path = os.fspath(path)
    config = {"metadata": metadata}
    if model is not None:
        config["family"] = _encode(model.family, "family")
        config["config"] = {k: _encode(v, k) for k, v in model.config.items()}
    text = json.dumps(config, indent=1)
    arrays = {**_flatten(state.params, "params"), **_flatten(state.ema_params, "ema_params")}
    if state.opt_state is not None:
        leaves = jax.tree_util.tree_leaves(state.opt_state)
        arrays["opt_state_leaves"] = np.asarray(len(leaves))
        arrays.update({f"opt_state{_SEP}{i}": np.asarray(a) for i, a in enumerate(leaves)})
    arrays["step"] = np.asarray(state.step)
    arrays["key"] = np.asarray(
        jax.random.key_data(state.key)
        if jnp.issubdtype(state.key.dtype, jax.dtypes.prng_key)
        else state.key
    )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez(path + ".npz", **arrays)
    with open(path + ".json", "w") as f:
        f.write(text)


def load(path: str | os.PathLike) -> TrainState:
    """Read one run written by :func:`save`; ``fit(..., state=load(path))`` continues it.

    ``opt_state`` is a :class:`SavedOptState` (the leaves; :func:`fit` rebuilds the structure
    from its optimizer), or ``None`` for a checkpoint written without one."""
    from zoo.train import SavedOptState, TrainState  # training imports this module

    path = os.fspath(path)
    try:
        with np.load(path + ".npz") as f:
            flat = dict(f)
        opt_state = None
        if "opt_state_leaves" in flat:
            count = int(flat["opt_state_leaves"])
            opt_state = SavedOptState(
                tuple(jnp.asarray(flat[f"opt_state{_SEP}{i}"]) for i in range(count))
            )
        return TrainState(
            params=_unflatten_dict(flat, "params"),
            ema_params=_unflatten_dict(flat, "ema_params"),
            opt_state=opt_state,
            key=jnp.asarray(flat["key"]),
            step=jnp.asarray(flat["step"]),
        )
    except FileNotFoundError:
        raise
    except Exception as e:  # whatever a damaged .npz raises (BadZipFile, EOFError, KeyError)
        raise ValueError(_damaged(path + ".npz", e)) from e


def _damaged(path: str, error: Exception) -> str:
    """The message for a checkpoint file that cannot be read: its path and why."""
    return (
        f"{path} is not a whole checkpoint written by zoo.train.save (cut short or edited?): "
        f"{type(error).__name__}: {error}"
    )


def load_model(path: str | os.PathLike) -> Model:
    """Rebuild the :class:`zoo.Model` a checkpoint was saved with."""
    where = os.fspath(path) + ".json"
    try:
        with open(where) as f:
            config = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:  # edited, or bytes gone bad
        raise ValueError(_damaged(where, e)) from e
    if not isinstance(config, dict) or "family" not in config:
        raise ValueError(f"{where} holds no model config (save was called without model=)")
    try:
        config_kwargs = {k: _decode(v) for k, v in config["config"].items()}
        family = _decode(config["family"])
    except (KeyError, TypeError, AttributeError, ImportError, ValueError) as e:
        raise ValueError(_damaged(where, e)) from e
    if "event_shape" in config_kwargs:
        config_kwargs["event_shape"] = tuple(config_kwargs["event_shape"])
    return transform(family, **config_kwargs)
