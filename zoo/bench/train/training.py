"""Train a family on every dataset x seed in one fused, vmapped ``zoo.train.fit`` call, or load
the runs a previous benchmark already trained."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
import warnings

import jax
import numpy as np

import zoo
from zoo import presets
from zoo.bench import cache

__all__ = ["Run", "keep_steps", "model_key", "run_key", "snapshot_key", "train_family"]

NUM_TRAIN = 10_000  # training points per dataset (zoo.train.fit's default, stated for the key)
LOG_EVERY = 100
FIRST_KEPT = 1_000  # the first step of the geometric set of kept steps


def keep_steps(spec: str | tuple[int, ...], steps: int) -> tuple[int, ...]:
    """The training steps whose EMA parameters are kept and scored: ``"geometric"`` means
    1,000, 2,000, 4,000, ... below ``steps``, and ``steps``; a tuple names them (multiples
    of :data:`LOG_EVERY` up to ``steps``, so no training block is cut). ``ValueError`` says
    what is wrong."""
    if spec == "geometric":
        doublings = range(max(0, math.ceil(math.log2(steps / FIRST_KEPT))))
        return tuple(FIRST_KEPT * 2**k for k in doublings) + (steps,)
    kept = tuple(sorted(spec))
    bad = [k for k in kept if k < 1 or k > steps or (k % LOG_EVERY and k != steps)]
    if bad:
        raise ValueError(
            f"keep steps must be multiples of {LOG_EVERY} up to the {steps:,} training steps "
            f"(or {steps} itself), got {', '.join(map(str, bad))}"
        )
    return kept


@dataclasses.dataclass(frozen=True)
class Run:
    """One trained run: its EMA parameters, the wall time of the fused fit call that trained
    it with ``train_runs`` runs (jit included), ``status``: ``"ok"`` or why it is not,
    ``fresh``: trained by this call rather than loaded from the cache, and ``kept``: its EMA
    parameters at each kept step of that call."""

    family: str
    dataset: str
    seed: int
    key: str
    params: dict
    train_s: float
    train_runs: int
    status: str
    fresh: bool
    kept: dict[int, dict] = dataclasses.field(default_factory=dict)


def model_key(model: zoo.Model) -> str:
    """Hash of what a model means: its family and the repr of its config (process, network
    factory and its arguments, prediction, weighting), so two equal configs built by separate
    calls (e.g. two ``functools.partial(ScoreNet, dropout=0.0)``) are the same model."""
    return cache.digest({"family": model.family.__name__, "config": model.config})


def run_key(
    preset: presets.Preset,
    dataset: str,
    seed: int,
    steps: int,
    group: tuple[tuple[str, ...], tuple[int, ...]],
    num_train: int = NUM_TRAIN,
) -> str:
    """Hash of what a run's parameters depend on, including the ``group`` of datasets and
    seeds trained beside it in one vmapped call: the same run trained in another group can
    differ in the last bits (batched reductions), so it is another piece. ``num_train``:
    the size of each dataset's training set (``zoo.train.fit``'s ``num_train``)."""
    return cache.digest(
        {
            "model": model_key(preset.model),
            "dataset": (dataset, preset.data),
            "seed": seed,
            "steps": steps,
            "batch_size": preset.batch_size,
            "learning_rate": preset.learning_rate,
            "num_train": num_train,
            "log_every": LOG_EVERY,
            "group": group,
        }
    )


def snapshot_key(run: str, step: int) -> str:
    """Hash of the EMA parameters kept at ``step`` of the call that trained run ``run`` (its
    :func:`run_key`): keeping changes nothing else of the call, so the run's key is all
    they depend on besides the step."""
    return cache.digest({"run": run, "kept_at": step})


def train_family(
    family: str,
    datasets: dict[str, presets.Preset],
    seeds: tuple[int, ...],
    steps: int,
    store: cache.Cache,
    keep_at: tuple[int, ...] = (),
    num_train: int = NUM_TRAIN,
) -> dict[tuple[str, int], Run]:
    """Every ``(dataset, seed)`` run of ``family`` (``datasets``: its preset per dataset, all
    of one model), with its EMA parameters at each of the steps ``keep_at``, all trained in
    one call on ``num_train`` points per dataset unless every one is in ``store`` (a group
    is trained whole, so a run's numbers never depend on which others were missing)."""
    group = (tuple(datasets), tuple(seeds))
    keys = {
        (d, s): run_key(p, d, s, steps, group, num_train)
        for d, p in datasets.items()
        for s in seeds
    }
    paths = {ds: store.run(family, *ds, key) for ds, key in keys.items()}
    found = {ds: store.fetch(_json(path), cache.read_run) for ds, path in paths.items()}
    snapshots = {
        (ds, step): store.snapshot(family, *ds, step, snapshot_key(key, step))
        for ds, key in keys.items()
        for step in keep_at
    }
    kept = {where: store.fetch(path, cache.read_params) for where, path in snapshots.items()}
    fresh = any(run is None for run in found.values()) or any(p is None for p in kept.values())
    if fresh:
        preset = next(iter(datasets.values()))
        if len({model_key(p.model) for p in datasets.values()}) > 1:
            raise ValueError(f"{family}: the presets differ between datasets; train them apart")
        start = time.perf_counter()
        with warnings.catch_warnings():  # a diverged run is reported in its rows instead
            warnings.simplefilter("ignore", zoo.train.DivergenceWarning)
            state, curve, kept_now = zoo.train.fit(
                preset.model,
                [p.data for p in datasets.values()],
                steps=steps,
                seeds=seeds,
                batch_size=preset.batch_size,
                optimizer=preset.optimizer(),
                num_train=num_train,
                log_every=LOG_EVERY,
                progress=family,  # a bar named by the family (fit draws none into a log file)
                keep_at=keep_at,
            )
        state = jax.block_until_ready(state)
        seconds = time.perf_counter() - start
        # Only missing pieces are written: a run trained again (its kept steps were missing)
        # is the same run, and the cells already scored keep the file they were scored on.
        for r, ds in enumerate(itertools.product(datasets, seeds)):
            if found[ds] is None:
                cache.save_run(
                    paths[ds],
                    jax.tree_util.tree_map(lambda a, r=r: a[r], state),
                    preset.model,
                    curve=curve[r].tolist(),  # one mean loss per LOG_EVERY steps
                    train_s=seconds,
                    train_runs=len(keys),
                )
                found[ds] = cache.read_run(paths[ds])
            for step in keep_at:
                if kept[ds, step] is None:
                    params = jax.tree_util.tree_map(lambda a, r=r: a[r], kept_now[step])
                    cache.write_params(snapshots[ds, step], params)
                    kept[ds, step] = cache.read_params(snapshots[ds, step])
    runs = {ds: _run(family, *ds, keys[ds], *found[ds], fresh) for ds in keys}
    for (ds, step), params in kept.items():
        runs[ds].kept[step] = params
    return runs


def _json(path):
    return path.with_name(path.name + ".json")


def status(curve: np.ndarray, params) -> str:
    """``"ok"``, or why a run counts as diverged (:func:`zoo.train.diverged`: a non-finite
    loss or parameter, or a loss far above the run's own best)."""
    finite = np.all(np.isfinite(curve)) and all(
        np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(params)
    )
    if not finite:
        return "diverged: NaN loss"
    if zoo.train.diverged(curve)[0]:
        return f"diverged: loss rose to {np.max(curve):.3g} (best {np.min(curve):.3g})"
    return "ok"


def _run(family, dataset, seed, key, state, metadata, fresh) -> Run:
    curve = np.asarray(metadata["curve"], dtype=np.float64)
    return Run(
        family=family,
        dataset=dataset,
        seed=seed,
        key=key,
        params=state.ema_params,
        train_s=float(metadata["train_s"]),
        train_runs=int(metadata["train_runs"]),
        status=status(curve, (state.params, state.ema_params)),
        fresh=fresh,
    )
