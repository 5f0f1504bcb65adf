"""One JAX compilation cache for the whole test session, and quicker compiles.

The suite spends most of its time compiling, and several processes compile the same
programs: the two xdist workers, the subprocesses of the distributed and speed tests, and the
notebook kernels. A persistent cache in a fresh temporary folder, shared by all of them
through the environment (set before xdist starts its workers), compiles each program once
per session. The folder starts empty, so no run depends on an earlier one, and is removed at
the end. A ``JAX_COMPILATION_CACHE_DIR`` already set is left alone.

The tests also compile with LLVM at optimisation level 1 instead of XLA's default 2
(``--xla_backend_optimization_level``; XLA's own HLO passes are the same): on this project's
2-core CPU that took test_unet from 102 to 65 s of CPU and test_models, which trains for
thousands of steps, from 106 to 94 s. The programs compute the same functions; only the
machine code differs. An ``XLA_FLAGS`` that sets the level already is left alone.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

_CACHE = "JAX_COMPILATION_CACHE_DIR"
_LEVEL = "--xla_backend_optimization_level"


def pytest_configure(config):
    if hasattr(config, "workerinput"):
        return  # an xdist worker: it inherited the environment set below
    flags = os.environ.get("XLA_FLAGS", "")
    if _LEVEL not in flags:  # read when JAX starts its CPU backend, after this
        os.environ["XLA_FLAGS"] = f"{flags} {_LEVEL}=1".strip()
    if os.environ.get(_CACHE):
        return  # a cache chosen by the caller
    folder = tempfile.mkdtemp(prefix="zoo-tests-jax-cache-")
    config.zoo_jax_cache = folder
    os.environ[_CACHE] = folder
    # Every program, however quick to compile: most of the suite's are small.
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    if "jax" in sys.modules:  # imported already (a plugin): its flags were read then
        import jax

        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_unconfigure(config):
    folder = getattr(config, "zoo_jax_cache", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(_CACHE, None)
