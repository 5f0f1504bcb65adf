"""Input checks shared by the modules: validate eagerly what can be seen outside ``jit``."""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import math
import numbers
import re
import types
import typing

import diffrax
import equinox as eqx
import jax
import numpy as np


def is_concrete(x) -> bool:
    """Whether ``x`` has values now (not a tracer under ``jit``/``vmap``): only then can a
    check on its values raise a clear error instead of failing deep inside JAX."""
    try:
        np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return False
    return True


#: the largest int32: JAX counts steps and indexes samples in int32, so no count may exceed it
INT32_MAX = 2**31 - 1


def check_integer(value, name: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int``; a float, bool or string is refused rather than truncated, and
    so is one below ``minimum`` or above ``maximum`` (``INT32_MAX``: an int32 count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        at_least = "" if minimum is None else f" >= {minimum}"
        raise TypeError(f"{name} must be an integer{at_least}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        bound = "2**31 - 1 (an int32 count)" if maximum == INT32_MAX else f"{maximum:,}"
        raise ValueError(f"{name} must be an integer <= {bound}, got {value}")
    return int(value)


#: the largest seed: ``jax.random.PRNGKey`` keeps a seed's low 32 bits (without x64), so
#: ``2**32 + s`` and ``s - 2**32`` give the key of ``s``
MAX_SEED = 2**32 - 1


def check_seed(value, name: str) -> int:
    """``value`` as an ``int`` seed in ``[0, MAX_SEED]``: a larger or negative seed would give
    the same key as another seed, so two runs said to differ would be the same run."""
    seed = check_integer(value, name, minimum=None)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(
            f"{name} must be an integer in [0, 2**32 - 1] (a PRNG key holds 32 bits of a seed, "
            f"so others repeat a seed in that range), got {seed}"
        )
    return seed


class _RaisedAnyway(logging.Filter):
    """Drops JAX's log of a failed callback (``jax.pure_callback failed`` and its traceback)
    when the failure is an ``eqx.error_if`` check, such as :func:`check_solution`'s under
    ``jit``: that error reaches the caller anyway, raised with the same message, so the log
    would only print a traceback beside it (or above a harness's one-line status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        # equinox raises a private subclass of RuntimeError there, not eqx.EquinoxRuntimeError
        raised_by_equinox = type(error).__module__.split(".")[0] == "equinox"
        return not (isinstance(error, RuntimeError) and raised_by_equinox)


logging.getLogger("jax._src.callback").addFilter(_RaisedAnyway())


#: :func:`check_solution`'s words for a solver out of steps, and the pattern that reads them back
_OUT_OF_STEPS = "the ODE solver took max_steps={} steps"
_OUT_OF_STEPS_READ = re.compile(re.escape(_OUT_OF_STEPS).replace(r"\{\}", r"(\d+)"))


def steps_run_out(text: str) -> int | None:
    """The ``max_steps`` of :func:`check_solution`'s out-of-steps error found in ``text`` (an
    error's text, where under ``jit`` a callback's traceback comes first), else ``None``."""
    found = _OUT_OF_STEPS_READ.search(text)
    return int(found[1]) if found else None


def check_solution(sol: diffrax.Solution, y, *, who: str, max_steps: int):
    """``y``, once ``sol`` (from ``diffeqsolve(..., throw=False)``) is known to have reached its
    end time; else an error, also under ``jit`` (``eqx.error_if``), that names ``max_steps``
    when the solver ran out of steps and Diffrax's own message for any other failure."""
    y = eqx.error_if(
        y,
        sol.result == diffrax.RESULTS.max_steps_reached,
        f"{who}: {_OUT_OF_STEPS.format(max_steps)} without reaching the end "
        f"time; raise max_steps (e.g. to {4 * max_steps}) or loosen rtol/atol. A NaN or inf "
        "in the score or the input also does this.",
    )
    return sol.result.error_if(y, sol.result != diffrax.RESULTS.successful)


@functools.cache
def field_kinds(cls: type) -> dict[str, set]:
    """``{field: kinds}`` of the dataclass ``cls``: the types its annotation names (the members
    of a union ``X | None``), read once per class."""
    hints = typing.get_type_hints(cls)
    return {
        field.name: set(typing.get_args(hint)) if isinstance(hint, types.UnionType) else {hint}
        for field in dataclasses.fields(cls)
        for hint in [hints.get(field.name)]
    }


def check_fields(obj) -> None:
    """Each field of the dataclass ``obj`` of the kind its annotation names: a ``bool`` field
    ``True`` or ``False`` (a truthy string such as ``"False"`` would silently mean true), an
    ``int`` field an integer in ``[0, 2**31 - 1]`` (not a bool or a float), a ``float`` field
    a finite real; ``X | None`` fields may also be ``None``. A class's own, tighter bounds are
    checked by the class; this catches what no class lists."""
    for name, kinds in field_kinds(type(obj)).items():
        value = getattr(obj, name)
        if value is None and type(None) in kinds:
            continue
        if bool in kinds:
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, got {value!r}")
        elif int in kinds:
            check_integer(value, name, minimum=0, maximum=INT32_MAX)
        elif float in kinds and (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
        ):
            raise ValueError(f"{name} must be a finite number, got {value!r}")


def check_positive(value, name: str) -> float:
    """``value`` as a finite ``float`` > 0 (NaN, inf, zero and negatives refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < np.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_shape(shape) -> tuple[int, ...]:
    """``shape`` as a tuple of non-negative ints (an int ``n`` means ``(n,)``)."""
    items = (shape,) if isinstance(shape, (int, np.integer)) else shape
    try:
        out = tuple(int(s) for s in items)
        ok = all(s >= 0 and s == v for s, v in zip(out, items, strict=True))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"shape must be a tuple of non-negative ints, got {shape!r}")
    return out


def check_option(kind: type[enum.StrEnum], value, name: str):
    """``value`` (a member of ``kind`` or its string) as the member, or a ValueError naming
    ``name`` and the choices."""
    try:
        return kind(value)
    except ValueError:
        choices = tuple(member.value for member in kind)
        raise ValueError(f"{name} must be one of {choices}, got {value!r}") from None
