"""Input checks shared by the modules: validate eagerly what can be seen outside ``jit``."""

from __future__ import annotations

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
