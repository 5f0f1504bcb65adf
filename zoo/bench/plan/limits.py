"""Upper bounds of a benchmark's counts, checked before anything runs: what their types hold
and what the machine's memory holds.

A count above ``2**31 - 1`` (:data:`INT32_MAX`) cannot be a training step (``zoo.train.fit``
counts steps in int32) nor an index of a sample or batch (JAX indexes in int32). Below that,
:func:`check` estimates the memory of each phase of the run and refuses a config whose
estimate exceeds the machine's (:func:`machine_memory`), naming the flag, the estimate and the
memory, so that it ends in one line rather than in a ``MemoryError``, an out-of-memory
traceback or an abort inside XLA.

The estimates are meant as lower bounds, so that a long run that fits is not refused: the
arrays a phase must hold at once, counted from shapes (the network is traced, never run).
The network's share is its largest single intermediate per example, read from the traced
program of a batch (:func:`_largest_per_example`); XLA holds at least that, and usually
several. Building a dataset may compute its fixed parameters (nine Gaussians' weights), which
starts JAX's backend: ``zoo-bench distributed`` checks after initialising it. The memory
compared with is the host's; a GPU's own memory is not read.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp

from zoo._checks import INT32_MAX
from zoo.bench.plan.profiles import Config
from zoo.bench.train import training

__all__ = [
    "INT32_MAX",
    "TooLarge",
    "check",
    "check_points",
    "estimate",
    "format_bytes",
    "network_bytes",
    "machine_memory",
]

FLOAT = 4  # bytes of a float32
#: copies of the parameters each run holds while training: parameters, EMA, Adam's two moments
TRAINING_COPIES = 4
#: host bytes per logged block of training (one small device array per block, held in a
#: Python list until the curve is stacked): below the 2 KB each that a CPU backend takes
BLOCK_BYTES = 1000


class TooLarge(ValueError):
    """A count whose run cannot fit; the message names the flag, the estimate and the memory."""


def machine_memory() -> int:
    """Bytes of memory this process may use: the physical memory, or a smaller cgroup limit."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        total = min(total, int(limit))
    except (OSError, ValueError):  # no cgroup v2 limit ("max", or no such file)
        pass
    return total


def _size(aval) -> int:
    shape = getattr(aval, "shape", None)
    if shape is None:
        return 0
    return math.prod(shape) * getattr(aval.dtype, "itemsize", 8)  # a PRNG key: 8 bytes


def _sizes(jaxpr, found: list[int]) -> list[int]:
    """The byte size of every intermediate of ``jaxpr`` and of the programs inside it, in
    program order."""
    for eqn in jaxpr.eqns:
        found.extend(_size(v.aval) for v in eqn.outvars)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr holds its Jaxpr
                if hasattr(inner, "eqns"):
                    _sizes(inner, found)
    return found


def _largest_per_example(fn, params, event_shape: tuple[int, ...]) -> int:
    """Bytes per example of the largest intermediate of ``fn(params, x, t)`` that grows with
    the batch: the traced programs of batches of 2 and 4 differ only in their batch axes."""

    def program(b: int) -> list[int]:
        x = jax.ShapeDtypeStruct((b, *event_shape), jnp.float32)
        t = jax.ShapeDtypeStruct((b,), jnp.float32)
        return _sizes(jax.make_jaxpr(fn)(params, x, t).jaxpr, [])

    two, four = program(2), program(4)
    if len(two) != len(four):  # another program per batch size: no estimate
        return 0
    return max([(b - a) // 2 for a, b in zip(two, four, strict=True)] + [0])


_NETWORKS: dict[str, tuple[int, int]] = {}


def network_bytes(model) -> tuple[int, int]:
    """``(parameter bytes, bytes per example)`` of ``model``'s network, from shapes only,
    once per model."""
    key = training.model_key(model)
    if key not in _NETWORKS:
        shape = model.event_shape
        x = jax.ShapeDtypeStruct((1, *shape), jnp.float32)
        params = jax.eval_shape(model.init, jax.ShapeDtypeStruct((2,), jnp.uint32), x)
        param_bytes = sum(_size(a) for a in jax.tree_util.tree_leaves(params))
        per_example = _largest_per_example(model.score, params, shape)
        _NETWORKS[key] = param_bytes, per_example
    return _NETWORKS[key]


@dataclasses.dataclass(frozen=True)
class Phase:
    """A phase of the run on one kind of data: the ``bytes`` it holds at least, the flag whose
    share of them is largest, that flag's ``value`` and the ``largest`` value of it that would
    fit in the memory given to :func:`estimate`."""

    name: str
    bytes: int
    flag: str
    value: int | str
    largest: int | None


def _phase(name: str, memory: int, total: int, terms: dict[str, tuple]) -> Phase:
    """The phase of ``total`` bytes named by the flag of the largest own share: ``terms``
    holds per flag ``(value, own share in bytes, slope)``, the slope being what one more unit
    of the flag adds to ``total`` (with what it multiplies), from which the largest value
    that fits follows (``None``: a network's size, which sets the share otherwise)."""
    flag = max(terms, key=lambda f: terms[f][1])
    value, _, slope = terms[flag]
    if slope is None:  # a network's size: no count to solve for
        return Phase(name, total, flag, value, None)
    rest = total - value * slope
    largest = (memory - rest) // slope if slope > 0 else INT32_MAX
    return Phase(name, total, flag, value, int(min(max(largest, 0), INT32_MAX)))


def estimate(config: Config, memory: int) -> list[Phase]:
    """The phases of ``config``'s run on each kind of data, each with a lower bound of the
    bytes it holds (module docstring): training (the runs of one family's call), sampling
    (one cell's samples beside every run's parameters) and the likelihood."""
    from zoo.bench.judge import evaluation
    from zoo.bench.plan import digits, matrix

    phases = []
    for module in dict.fromkeys(matrix.kind(d) for d in config.datasets):
        datasets = [d for d in config.datasets if matrix.kind(d) is module]
        found = _presets(config, datasets)
        if not found:
            continue
        # The families of a kind of data share its network (the first family's is measured);
        # their batch sizes may differ: the largest is the one that must fit.
        dataset, preset = max(found, key=lambda item: item[1].batch_size)
        num_train = module.num_train(module.load(dataset, config))
        param_bytes, per_example = network_bytes(found[0][1].model)
        example = math.prod(preset.model.event_shape) * FLOAT
        runs = len(datasets) * len(config.seeds)
        # Per run: its parameter copies and kept snapshots, its training set when the
        # datasets differ (one shared copy otherwise), its batch through the network and its
        # loss curve (one float and one small array object per logged block).
        params = (TRAINING_COPIES + len(config.keep_steps)) * param_bytes
        data = num_train * example
        batch = preset.batch_size * (per_example + example)
        curve = math.ceil(config.steps / training.LOG_EVERY) * (FLOAT + BLOCK_BYTES)
        per_run = params + (data if len(datasets) > 1 else 0) + batch + curve
        total = (data if len(datasets) == 1 else 0) + runs * per_run
        # The parameters' share: the seeds' when there are several, else the network's flag
        network = _network_flag(config, module)
        if len(config.seeds) > 1 or network is None:
            share = ("--seeds", (len(config.seeds), runs * params, len(datasets) * per_run))
        else:
            share = (network[0], (network[1], runs * params, None))
        terms = {
            share[0]: share[1],
            "--batch-size": (preset.batch_size, runs * batch, runs * (per_example + example)),
            "--steps": (
                config.steps,
                runs * curve,
                runs * (FLOAT + BLOCK_BYTES) / training.LOG_EVERY,
            ),
        }
        phases.append(_phase("training", memory, total, terms))
        per_sample = _per_point(per_example, example)
        counts = {"--samples": config.num_samples}
        if module is evaluation:
            counts["--nll-points"] = config.num_nll
        elif module is digits:
            counts["--nll-images"] = config.nll_images
        for flag, n in counts.items():
            name = "sampling" if flag == "--samples" else "likelihood"
            total = runs * param_bytes + n * per_sample
            phases.append(_phase(name, memory, total, {flag: (n, n * per_sample, per_sample)}))
    return phases


def _network_flag(config: Config, module) -> tuple[str, int | str] | None:
    """The flag and value that chose the network of ``module``'s data, if one did."""
    if config.net is not None:
        return "--net", config.net
    from zoo.bench.plan import digits

    if module is digits:
        return "--channels", config.channels
    if config.width is not None:
        return "--width", config.width
    return None


def _presets(config: Config, datasets: list[str]) -> list:
    """``(dataset, preset)`` of each family, on the first of ``datasets`` it has a preset for."""
    from zoo.bench.plan import matrix

    found = []
    for family in config.families:
        for dataset in datasets:
            data = matrix.kind(dataset).load(dataset, config)
            try:
                preset = matrix.kind(dataset).preset(config, family, data)
            except ValueError:  # no preset of this family for this data
                continue
            found.append((dataset, matrix.with_optimizer(preset, config)))
            break
    return found


def _per_point(per_example: int, example: int) -> int:
    """Bytes one point holds through a sampler or a likelihood: the network's largest
    intermediate, and ``x``, the noise and the score beside it."""
    return per_example + 3 * example


def check_points(flag: str, n: int, model, memory: int | None = None, per: int = 1) -> None:
    """:class:`TooLarge` naming ``flag`` unless ``n`` points (``n * per``, when the flag
    counts groups of ``per``) through ``model``'s network at once (a likelihood's or a
    sampler's batch) fit in ``memory`` (default: the machine's)."""
    memory = machine_memory() if memory is None else memory
    param_bytes, per_example = network_bytes(model)
    per_point = _per_point(per_example, math.prod(model.event_shape) * FLOAT) * per
    total = param_bytes + n * per_point
    if total > memory:
        raise TooLarge(
            f"{flag} {n:,}: would hold at least {format_bytes(total)}, more than this machine's "
            f"{format_bytes(memory)} of memory; expected at most about "
            f"{max(0, (memory - param_bytes) // per_point):,}"
        )


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit below it: ``1.5 GiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.3g} {unit}" if unit != "bytes" else f"{int(n)} bytes"
        n /= 1024
    raise AssertionError


def check(config: Config, memory: int | None = None) -> None:
    """:class:`TooLarge` naming the flag of the first phase of ``config``'s run whose
    estimate exceeds ``memory`` (default: :func:`machine_memory`)."""
    memory = machine_memory() if memory is None else memory
    for phase in estimate(config, memory):
        if phase.bytes > memory:
            expected = (
                "a smaller network" if phase.largest is None else f"at most about {phase.largest:,}"
            )
            value = f"{phase.value:,}" if isinstance(phase.value, int) else phase.value
            raise TooLarge(
                f"{phase.flag} {value}: {phase.name} would hold at least "
                f"{format_bytes(phase.bytes)}, more than this machine's "
                f"{format_bytes(memory)} of memory; "
                f"expected {expected}"
            )
