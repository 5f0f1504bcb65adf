"""One JAX compilation cache for the whole test session, quicker compiles, and the slowest
files first.

The suite spends most of its time compiling, and several processes compile the same
programs: the two xdist workers, the subprocesses of the distributed and speed tests, and the
notebook kernels. A persistent cache in a fresh temporary folder, shared by all of them
through the environment (set before xdist starts its workers), compiles each program once
per session. The folder starts empty, so no run depends on an earlier one, and is removed at
the end. A ``JAX_COMPILATION_CACHE_DIR`` already set is left alone. The zoo's own cache
(``ZOO_CACHE_DIR``: the digit classifier, trained in seconds) is a folder inside it.

The tests also compile with LLVM at optimisation level 1 instead of XLA's default 2
(``--xla_backend_optimization_level``; XLA's own HLO passes are the same): on this project's
2-core CPU that took test_unet (which then also ran every family on a UNet) from 102 to 65 s of
CPU and test_models, which trains for thousands of steps, from 106 to 94 s. And without LLVM's
expensive passes (``--xla_llvm_disable_expensive_passes``): test_unet and test_models together
from 205 to 190 s of CPU (backend compiling 129 to 117 s) on the same machine under a second
job's load; level 0 compiled faster still (80 s) but ran the long trainings slower (224 s in
all). And without XLA's MLIR fusion emitters on the CPU
(``--xla_cpu_use_fusion_emitters=false``: its LLVM IR emitters compile the fusions instead): a
single eager operation compiled in 21 ms instead of 35, and on one core test_multistep,
test_sdes and test_parametrisations took 34 s instead of 47, test_models and test_samplers 118
s instead of 138 (test_unet and test_guidance, whose programs are large, 75 s either way). The
programs compute the same functions; only the machine code differs. An ``XLA_FLAGS`` that sets
any of these already is left alone.

xdist's ``--dist loadfile`` hands out whole files, by default those with the most tests first;
a long file handed out last leaves one worker idle at the end. The files in ``SLOWEST_FIRST``
(a few minutes of the suite between them; the notebooks run in kernels of their own beside
the workers) go first in that order, then the rest as collected.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

_CACHE = "JAX_COMPILATION_CACHE_DIR"
_ZOO_CACHE = "ZOO_CACHE_DIR"
_FLAGS = (
    "--xla_backend_optimization_level=1",
    "--xla_llvm_disable_expensive_passes=true",
    "--xla_cpu_use_fusion_emitters=false",
)
SLOWEST_FIRST = (
    "test_notebooks.py",
    "test_bench_gpu.py",
    "test_digits_benchmark.py",
    "test_benchmark_oracle.py",
    "test_distributed.py",
    "test_benchmarks.py",
    "test_unet.py",
    "test_models.py",
    "test_benchmark_faults.py",
)


def pytest_configure(config):
    if hasattr(config, "workerinput"):
        _own_cpus(config.workerinput)
        return  # an xdist worker: it inherited the environment set below
    # the order of pytest_collection_modifyitems, not xdist's by number of tests
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    flags = os.environ.get("XLA_FLAGS", "")
    for flag in _FLAGS:  # read when JAX starts its CPU backend, after this
        if flag.split("=")[0] not in flags:
            flags = f"{flags} {flag}".strip()
    os.environ["XLA_FLAGS"] = flags
    if os.environ.get(_CACHE):
        return  # a cache chosen by the caller
    folder = tempfile.mkdtemp(prefix="zoo-tests-jax-cache-")
    config.zoo_jax_cache = folder
    os.environ[_CACHE] = folder
    # The digit classifier (zoo.image_metrics), trained once for the session's processes.
    os.environ.setdefault(_ZOO_CACHE, os.path.join(folder, "zoo"))
    # Every program, however quick to compile: most of the suite's are small.
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    if "jax" in sys.modules:  # imported already (a plugin): its flags were read then
        import jax

        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _own_cpus(workerinput: dict) -> None:
    """Worker i of n keeps to every n-th CPU from the i-th (its subprocesses and notebook
    kernels with it), before JAX sizes its thread pool from the CPUs it may use.

    NumPy is imported by then (jaxtyping's pytest plugin imports it), and its OpenBLAS has
    started a thread per CPU of the whole machine; left so, those threads wait on each other on
    the worker's share: the digit classifier's scikit-learn training took 37 s of a test
    instead of 4. So that pool is cut to the share too (threadpoolctl, which scikit-learn
    depends on)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    index, count = int(workerinput["workerid"][2:]), int(workerinput["workercount"])
    if len(cpus) >= count > 1:
        share = cpus[index::count]
        os.sched_setaffinity(0, share)
        import threadpoolctl

        threadpoolctl.threadpool_limits(len(share))


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole


def pytest_unconfigure(config):
    folder = getattr(config, "zoo_jax_cache", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(_CACHE, None)
        if os.environ.get(_ZOO_CACHE, "").startswith(folder):
            os.environ.pop(_ZOO_CACHE)
