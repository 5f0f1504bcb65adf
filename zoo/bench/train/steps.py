"""Quality per training step: each run's EMA parameters kept at ``config.keep_steps`` of its
one training call (:func:`zoo.train.fit` with ``keep_at``), sampled with the first of
``config.samplers`` (``default`` in every profile: the family's own sampler) from the key of
the run's other cells, and scored by its kind of data's ``quick_quality`` (the toys' cheap
metrics, or the digits' image metrics). The row of the last step is the run's final
parameters, so it repeats the main table's numbers."""

from __future__ import annotations

import functools

import jax
from tqdm.auto import tqdm

from zoo.bench import cache
from zoo.bench.judge import evaluation
from zoo.bench.plan import digits, named_samplers
from zoo.bench.plan.matrix import Plan, kind
from zoo.bench.plan.profiles import Config
from zoo.bench.train import training

__all__ = ["COLUMNS", "columns", "rows"]

#: the columns of steps.csv, in order: the quick metrics of the toys, then of images
METRICS = tuple(dict.fromkeys((*evaluation.QUICK_METRICS, *digits.QUICK_METRICS)))
COLUMNS = ("family", "dataset", "seed", "step", "sampler", "status", "nfe", *METRICS)


def columns(rows: list[dict]) -> list[str]:
    """:data:`COLUMNS` less the metrics that no row has (another kind of data's)."""
    present = {k for row in rows for k in row}
    return [c for c in COLUMNS if c not in METRICS or c in present]


def rows(config: Config, the_plan: Plan, family: str, store: cache.Cache, runs) -> list[dict]:
    """One row per ``(dataset, seed, kept step)`` of ``family``: the sampler's name,
    ``status``, ``nfe`` and the quick metrics of the dataset's kind, each cached; ``runs()``
    trains or loads the runs with their kept parameters (called only when a piece is
    missing)."""
    name = config.samplers[0]
    todo, found = [], {}
    for dataset, preset in the_plan.presets[family].items():
        if isinstance(preset, str):
            continue
        settings = kind(dataset).quick_settings(config)
        sampler = named_samplers.resolve(name, preset.model.sde, preset.sampler)
        for seed in config.seeds:
            run_key = the_plan.run_keys[family, dataset, seed]
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
    compiled = {}
    for (dataset, seed, step), sampler, path, key in tqdm(
        todo, desc=f"steps {family}", unit="cell", leave=False, disable=None
    ):
        if isinstance(sampler, str):
            piece = {"status": f"skipped: {sampler}"}
        else:
            params = runs()[dataset, seed].kept[step]
            scorer, model = kind(dataset), the_plan.presets[family][dataset].model
            where = the_plan.program_key(family, dataset)
            if where not in compiled:
                compiled[where] = jax.jit(
                    lambda p, k, s=sampler, m=model: m.sample(p, k, (config.num_samples,), s)
                )
            data, reference = the_plan.data[dataset], the_plan.references[dataset]
            piece = evaluation.sample_and_score(
                functools.partial(compiled[where], params),
                seed,
                reference,
                lambda x, q=scorer.quick_quality, d=data, r=reference: q(x, d, r, config),
            )
        cache.write_piece(path, piece, key)
        found[dataset, seed, step] = piece
    return [
        {"family": family, "dataset": d, "seed": s, "step": step, "sampler": name, **piece}
        for (d, s, step), piece in found.items()
    ]
