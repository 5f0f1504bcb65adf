"""Train a family on every dataset x seed in one fused, vmapped ``zoo.train.fit`` call, or load
the runs a previous benchmark already trained."""

from __future__ import annotations

import dataclasses
import itertools
import time

import jax
import numpy as np

import zoo
from benchmarks import cache
from zoo import presets

__all__ = ["Run", "model_key", "run_key", "train_family"]

NUM_TRAIN = 10_000  # training points per dataset (zoo.train.fit's default, stated for the key)
LOG_EVERY = 100


@dataclasses.dataclass(frozen=True)
class Run:
    """One trained run: its EMA parameters, the wall time of the fused fit call that trained
    it with ``train_runs`` runs (jit included), ``status``: ``"ok"`` or why it is not, and
    ``fresh``: trained by this call rather than loaded from the cache."""

    family: str
    dataset: str
    seed: int
    key: str
    params: dict
    train_s: float
    train_runs: int
    status: str
    fresh: bool


def model_key(model: zoo.Model) -> str:
    """Hash of what a model means: its family and the repr of its config (process, network
    factory and its arguments, prediction, weighting), so two equal configs built by separate
    calls (e.g. two ``functools.partial(ScoreNet, dropout=0.0)``) are the same model."""
    return cache.digest({"family": model.family.__name__, "config": model.config})


def run_key(preset: presets.Preset, dataset: str, seed: int, steps: int) -> str:
    """Hash of what a run's parameters depend on. Runs in one fit call are independent, so a
    run is found again whichever other runs it was trained with."""
    return cache.digest(
        {
            "zoo": zoo.__version__,
            "model": model_key(preset.model),
            "dataset": (dataset, preset.data),
            "seed": seed,
            "steps": steps,
            "batch_size": preset.batch_size,
            "learning_rate": preset.learning_rate,
            "num_train": NUM_TRAIN,
        }
    )


def train_family(
    family: str,
    datasets: dict[str, presets.Preset],
    seeds: tuple[int, ...],
    steps: int,
    store: cache.Cache,
) -> dict[tuple[str, int], Run]:
    """Every ``(dataset, seed)`` run of ``family`` (``datasets``: its preset per dataset),
    training in one call those not in ``store``."""
    keys = {(d, s): run_key(p, d, s, steps) for d, p in datasets.items() for s in seeds}
    paths = {ds: store.run(family, *ds, key) for ds, key in keys.items()}
    missing = [ds for ds, path in paths.items() if not cache.has_run(path)]
    if missing:
        # fit trains a product of datasets x seeds; a run already saved is recomputed identically.
        todo_data = [d for d in datasets if any(m[0] == d for m in missing)]
        todo_seeds = [s for s in seeds if any(m[1] == s for m in missing)]
        preset = datasets[todo_data[0]]
        if len({model_key(datasets[d].model) for d in todo_data}) > 1:
            raise ValueError(f"{family}: the presets differ between datasets; train them apart")
        start = time.perf_counter()
        state, curve = zoo.train.fit(
            preset.model,
            [datasets[d].data for d in todo_data],
            steps=steps,
            seeds=todo_seeds,
            batch_size=preset.batch_size,
            optimizer=preset.optimizer(),
            num_train=NUM_TRAIN,
            log_every=LOG_EVERY,
            progress=True,
        )
        state = jax.block_until_ready(state)
        seconds = time.perf_counter() - start
        for r, ds in enumerate(itertools.product(todo_data, todo_seeds)):
            if ds in missing:
                one = jax.tree_util.tree_map(lambda a, r=r: a[r], state)
                cache.save_run(
                    paths[ds],
                    one,
                    preset.model,
                    curve=curve[r].tolist(),  # one mean loss per LOG_EVERY steps
                    train_s=seconds,
                    train_runs=len(todo_data) * len(todo_seeds),
                )
    return {ds: _load(family, *ds, keys[ds], paths[ds], ds in missing) for ds in keys}


def _load(family, dataset, seed, key, path, fresh) -> Run:
    metadata = cache.run_metadata(path)
    params = zoo.train.load(path).ema_params
    curve = np.asarray(metadata["curve"], dtype=np.float64)
    finite = np.all(np.isfinite(curve)) and all(
        np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(params)
    )
    return Run(
        family=family,
        dataset=dataset,
        seed=seed,
        key=key,
        params=params,
        train_s=float(metadata["train_s"]),
        train_runs=int(metadata["train_runs"]),
        status="ok" if finite else "diverged: NaN loss",
        fresh=fresh,
    )
