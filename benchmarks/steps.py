"""Quality per training step: each run's EMA parameters kept at ``config.keep_steps`` of its
one training call (:func:`zoo.train.fit` with ``keep_at``), sampled with the first of
``config.samplers`` (``default`` in every profile: the family's own sampler) from the key of
the run's other cells, and scored by :func:`benchmarks.evaluation.quick_quality`. The row of
the last step is the run's final parameters, so it repeats the main table's numbers."""

from __future__ import annotations

import jax
import numpy as np
from tqdm.auto import tqdm

from benchmarks import cache, evaluation, named_samplers, training
from benchmarks.evaluation import QUICK_METRICS
from benchmarks.profiles import Config

__all__ = ["COLUMNS", "rows"]

#: the columns of steps.csv, in order
COLUMNS = ("family", "dataset", "seed", "step", "sampler", "status", "nfe", *QUICK_METRICS)


def rows(
    config: Config, family: str, by_dataset: dict, store: cache.Cache, toys: dict, runs
) -> list[dict]:
    """One row per ``(dataset, seed, kept step)`` of ``family``: the sampler's name,
    ``status``, ``nfe`` and the quick metrics, each cached; ``runs()`` trains or loads the
    runs with their kept parameters (called only when a piece is missing)."""
    name = config.samplers[0]
    settings = evaluation.quick_settings(config)
    group = (tuple(config.datasets), tuple(config.seeds))
    todo, found = [], {}
    for dataset, preset in by_dataset.items():
        sampler = named_samplers.resolve(name, preset.model.sde, preset.sampler)
        for seed in config.seeds:
            run_key = training.run_key(preset, dataset, seed, config.steps, group)
            for step in config.keep_steps:
                key = {
                    "snapshot": training.snapshot_key(run_key, step),
                    "sampler": sampler,
                    "n": config.num_samples,
                    "eval": settings,
                }
                path = store.step_cell(family, dataset, seed, step, cache.digest(key))
                where = (dataset, seed, step)
                found[where] = store.fetch(path, cache.read_piece)
                if found[where] is None:
                    todo.append((where, sampler, path, key))
    model, compiled = next(iter(by_dataset.values())).model, None
    for (dataset, seed, step), sampler, path, key in tqdm(
        todo, desc=f"steps {family}", unit="cell", leave=False, disable=None
    ):
        if isinstance(sampler, str):
            piece = {"status": f"skipped: {sampler}"}
        else:
            params = runs()[dataset, seed].kept[step]
            compiled = compiled or jax.jit(
                lambda p, k, s=sampler: model.sample(p, k, (config.num_samples,), s)
            )
            piece = _score(compiled, params, seed, toys[dataset], config)
        cache.write_piece(path, piece, key)
        found[dataset, seed, step] = piece
    return [
        {"family": family, "dataset": d, "seed": s, "step": step, "sampler": name, **piece}
        for (d, s, step), piece in found.items()
    ]


def _score(fn, params, seed: int, toy, config: Config) -> dict:
    try:
        out = jax.block_until_ready(fn(params, evaluation.sample_key(seed)))
    except jax.errors.JaxRuntimeError as e:
        return {"status": evaluation.failure(e)}
    x = np.asarray(out.x)
    piece = {"status": evaluation.sample_status(x, evaluation.reference(toy, config))}
    if piece["status"] == "ok":
        piece.update(nfe=int(out.nfe), **evaluation.quick_quality(x, toy, config))
    return piece
