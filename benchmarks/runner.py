"""The run matrix: plan every cell (family x dataset x seed x sampler) with its cache key, then
per family train the runs, compute their likelihoods, sample and score the unfinished cells;
with ``keep_steps``, score the parameters kept during training (:mod:`benchmarks.steps`), and
with ``oracle``, the same samplers driven by the exact score (:mod:`benchmarks.oracle`).

Every finished cell is written to the cache at once and ``results.csv`` is rewritten after
it, so a killed benchmark loses at most the cell in progress.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

import zoo
from benchmarks import cache, evaluation, named_samplers, oracle, steps, tables, training
from benchmarks.evaluation import FAR, SAMPLE_STREAM, failure, sample_status
from benchmarks.profiles import Config
from zoo import data as data_lib
from zoo import presets

__all__ = ["FAR", "SAMPLE_STREAM", "Cell", "Outcome", "run", "sample_status"]


@dataclasses.dataclass(frozen=True)
class Cell:
    """One row of the results: a sampler (``resolved``: the object, or why it does not apply)
    on one trained run. ``sample_key`` hashes what its samples depend on, ``key`` everything
    its row depends on (the samples and how they are scored)."""

    family: str
    dataset: str
    seed: int
    sampler: str
    resolved: zoo.samplers.Sampler | str
    sample_key: str
    key: str

    @property
    def row_stem(self) -> str:
        return f"{self.family}/{self.dataset}/seed{self.seed}-{self.sampler}-{self.key}"

    @property
    def samples_stem(self) -> str:
        return f"{self.family}/{self.dataset}/seed{self.seed}-{self.sampler}-{self.sample_key}"


@dataclasses.dataclass
class Outcome:
    """What a benchmark produced: rows in matrix order (with the oracle columns when asked
    for), noise-floor rows, a line on each dataset's entropy, loss curves, the sample files
    for the figures, the rows of the kept training steps and of the score errors, and how
    much was computed rather than found in the cache."""

    rows: list[dict]
    floors: list[dict]
    entropies: dict[str, str]
    curves: list[dict]
    samples: dict[tuple[str, str], np.ndarray]
    steps: list[dict] = dataclasses.field(default_factory=list)
    score_errors: list[dict] = dataclasses.field(default_factory=list)
    trained: int = 0
    computed: int = 0
    reused: int = 0


def _plan(config: Config, toys: dict[str, data_lib.Toy]):
    """Presets per family and dataset, and every cell with its key (nothing is computed)."""
    family_presets, cells = {}, []
    settings = evaluation.settings(config)
    group = (tuple(config.datasets), tuple(config.seeds))
    for family in config.families:
        family_presets[family] = {d: _preset(config, family, toys[d]) for d in config.datasets}
        for dataset, preset in family_presets[family].items():
            sde = preset.model.sde
            resolved = {
                s: named_samplers.resolve(s, sde, preset.sampler) for s in config.sampler_names
            }
            for seed in config.seeds:
                run_key = training.run_key(preset, dataset, seed, config.steps, group)
                for name, sampler in resolved.items():
                    sample_key = cache.digest(
                        {"run": run_key, "sampler": sampler, "n": config.num_samples}
                    )
                    key = cache.digest({"samples": sample_key, "eval": settings})
                    cells.append(Cell(family, dataset, seed, name, sampler, sample_key, key))
    return family_presets, cells


def _preset(config: Config, family: str, toy: data_lib.Toy) -> presets.Preset:
    if config.presets == "case_study":  # the CLI allows nine Gaussians only
        return dataclasses.replace(presets.case_study(family), steps=config.steps)
    return presets.toy(family, data=toy, steps=config.steps)


def _row(config: Config, cell: Cell, status: str, **values) -> dict:
    sampler = cell.resolved
    return {
        "family": cell.family,
        "dataset": cell.dataset,
        "seed": cell.seed,
        "sampler": cell.sampler,
        "sampler_config": sampler if isinstance(sampler, str) else repr(sampler),
        "status": status,
        "steps": config.steps,
        "n": config.num_samples,
        **values,
    }


def _training_values(run: training.Run) -> dict:
    return {"train_s": run.train_s, "train_runs": run.train_runs}


def run(config: Config) -> Outcome:
    """Compute what is missing from ``config.out``'s cache and return every row."""
    out = Path(config.out)
    store = cache.Cache(out)
    toys = {d: data_lib.get(d) for d in config.datasets}
    family_presets, cells = _plan(config, toys)
    rows: dict[Cell, dict] = {}
    for cell in cells:
        if isinstance(cell.resolved, str):
            rows[cell] = _row(config, cell, f"skipped: {cell.resolved}")
        elif (row := store.fetch(store.cell(cell.row_stem), cache.read_piece)) is not None:
            rows[cell] = row
    outcome = Outcome(rows=[], floors=[], entropies={}, curves=[], samples={})
    outcome.reused = sum(not isinstance(c.resolved, str) for c in rows)
    _noise_floors(config, toys, store, outcome)

    def finish(cell: Cell, row: dict) -> None:
        cache.write_piece(store.cell(cell.row_stem), row, {"cell": cell.key, "row": cell.row_stem})
        rows[cell] = row
        outcome.computed += 1
        # Progress only: the report (results.csv and the rest) is written as one set at the end.
        tables.write_csv(store.root / "progress.csv", [rows[c] for c in cells if c in rows])

    for family, by_dataset in family_presets.items():
        # Trained (or loaded) once, when a piece of this family first needs the parameters.
        runs = functools.cache(
            lambda f=family, b=by_dataset: training.train_family(
                f, b, config.seeds, config.steps, store, keep_at=config.keep_steps
            )
        )
        todo = [c for c in cells if c.family == family and c not in rows]
        if todo:
            _family(config, family, by_dataset, todo, store, toys, finish, runs())
        if config.keep_steps:
            outcome.steps.extend(steps.rows(config, family, by_dataset, store, toys, runs))
        if config.oracle:
            errors = oracle.score_errors(config, family, by_dataset, store, toys, runs)
            outcome.score_errors.extend(errors)
        if runs.cache_info().currsize:
            outcome.trained += sum(run.fresh for run in runs().values())
    columns = oracle.columns(config, cells, toys, family_presets, store) if config.oracle else {}
    outcome.rows = [{**rows[c], **columns.get(c, {})} for c in cells]
    outcome.curves = _curves(config, family_presets, store)
    first = [c for c in cells if c.seed == config.seeds[0] and c.sampler == config.sampler_names[0]]
    outcome.samples = {
        (c.family, c.dataset): samples["x"]
        for c in first
        if (samples := store.fetch(store.samples(c.samples_stem), cache.read_samples)) is not None
    }
    return outcome


def _family(config, family, by_dataset, todo, store, toys, finish, runs) -> None:
    """Finish ``family``'s ``todo`` cells with its trained ``runs``."""
    model = next(iter(by_dataset.values())).model
    ready = []
    for cell in todo:
        run = runs[cell.dataset, cell.seed]
        if run.status == "ok":
            ready.append(cell)
        else:
            finish(cell, _row(config, cell, run.status, **_training_values(run)))
    wanted = sorted({(c.dataset, c.seed) for c in ready})
    likelihoods = _likelihoods(config, family, model, runs, wanted, store, toys)
    sampled = _sample(config, family, model, runs, ready, store)
    for cell in tqdm(ready, desc=f"metrics {family}", unit="cell", leave=False, disable=None):
        run = runs[cell.dataset, cell.seed]
        values = {**_training_values(run), **likelihoods[cell.dataset, cell.seed]}
        samples = sampled[cell]
        if isinstance(samples, str):
            finish(cell, _row(config, cell, samples, **values))
            continue
        x, toy = samples["x"], toys[cell.dataset]
        values.update(nfe=int(samples["nfe"]), sample_s=float(samples["seconds"]))
        status = sample_status(x, evaluation.reference(toy, config))
        if status == "ok":
            values.update(evaluation.sample_quality(x, toy, config))
        finish(cell, _row(config, cell, status, **values))


def _likelihoods(config, family, model, runs, wanted, store, toys) -> dict:
    """The likelihood columns of each wanted ``(dataset, seed)`` run, cached per run."""
    settings = evaluation.likelihood_settings(config)
    results, fn = {}, None
    for dataset, seed in tqdm(
        wanted, desc=f"likelihood {family}", unit="run", leave=False, disable=None
    ):
        run = runs[dataset, seed]
        key = {"run": run.key, "eval": settings}
        path = store.likelihood(family, dataset, seed, cache.digest(key))
        values = store.fetch(path, cache.read_piece)
        if values is None:
            fn = fn or evaluation.likelihood_fn(model, config)
            try:
                values = evaluation.likelihood(fn, run.params, toys[dataset], config)
            except jax.errors.JaxRuntimeError as e:
                values = {"nll_status": failure(e)}
            cache.write_piece(path, values, key)
        results[dataset, seed] = values
    return results


def _sample(config, family, model, runs, cells, store) -> dict:
    """Draw and time the samples of ``cells`` not in the cache. Each sampler is compiled once
    per family (all runs share the parameter shapes) and timed without compilation. Returns
    cell -> its samples (``x``, ``nfe``, ``seconds``), or why there are none (a string)."""
    compiled, found = {}, {}
    for cell in cells:
        found[cell] = store.fetch(store.samples(cell.samples_stem), cache.read_samples)
    todo = [c for c in cells if found[c] is None]
    for cell in tqdm(todo, desc=f"sample {family}", unit="cell", leave=False, disable=None):
        params = runs[cell.dataset, cell.seed].params
        key = evaluation.sample_key(cell.seed)
        if cell.sampler not in compiled:
            fn = jax.jit(lambda p, k, s=cell.resolved: model.sample(p, k, (config.num_samples,), s))
            compiled[cell.sampler] = fn.lower(params, key).compile()
        start = time.perf_counter()
        try:
            out = jax.block_until_ready(compiled[cell.sampler](params, key))
        except jax.errors.JaxRuntimeError as e:
            found[cell] = failure(e)
            continue
        seconds = time.perf_counter() - start
        arrays = {
            "x": np.asarray(out.x),
            "nfe": np.asarray(out.nfe),
            "seconds": np.asarray(seconds),
        }
        cache.write_samples(store.samples(cell.samples_stem), **arrays)
        found[cell] = arrays
    return found


def _noise_floors(config, toys, store, outcome) -> None:
    """Each metric for independent true samples of the same size, per dataset, cached."""
    settings = evaluation.settings(config)
    for dataset, toy in tqdm(
        toys.items(), desc="noise floors", unit="dataset", leave=False, disable=None
    ):
        key = {"data": toy, "eval": settings}
        path = store.noise_floor(dataset, cache.digest(key))
        floor = store.fetch(path, cache.read_piece)
        if floor is None:
            floor = evaluation.noise_floor(toy, config)
            cache.write_piece(path, floor, key)
        outcome.floors.extend({"dataset": dataset, **r} for r in floor["samples"])
        outcome.entropies[dataset] = (
            f"Entropy {floor['entropy']:.4f} nats ({floor['entropy_method']})."
        )


def _curves(config, family_presets, store) -> list[dict]:
    """Loss curves of every run in the cache (long format, for the figure and losses.csv)."""
    rows, group = [], (tuple(config.datasets), tuple(config.seeds))
    for family, by_dataset in family_presets.items():
        for dataset, preset in by_dataset.items():
            for seed in config.seeds:
                key = training.run_key(preset, dataset, seed, config.steps, group)
                path = store.run(family, dataset, seed, key)
                found = store.fetch(path.with_name(path.name + ".json"), cache.read_run)
                if found is None:
                    continue
                for i, loss in enumerate(found[1]["curve"]):
                    step = min((i + 1) * training.LOG_EVERY, config.steps)
                    rows.append(
                        {"family": family, "dataset": dataset, "seed": seed, "step": step,
                         "loss": loss}
                    )  # fmt: skip
    return rows
