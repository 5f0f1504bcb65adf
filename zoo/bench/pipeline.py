"""The run matrix: plan every cell (family x dataset x seed x sampler) with its cache key
(:mod:`zoo.bench.plan.matrix`), then per family train the runs, compute their likelihoods, sample
and score the unfinished cells; with ``keep_steps``, score the parameters kept during
training (:mod:`zoo.bench.train.steps`), and with ``oracle``, the same samplers driven by the
exact score (:mod:`zoo.bench.judge.oracle`).

Every finished cell is written to the cache at once (and ``cache/progress.csv`` rewritten
after it), so a killed benchmark loses at most the cell in progress.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from zoo.bench import cache
from zoo.bench.judge import oracle
from zoo.bench.judge.evaluation import FAR, SAMPLE_STREAM, failure, sample_key, sample_status
from zoo.bench.plan import matrix
from zoo.bench.plan.matrix import Cell, Plan, kind
from zoo.bench.plan.profiles import Config
from zoo.bench.report import tables
from zoo.bench.train import steps, training

__all__ = ["FAR", "SAMPLE_STREAM", "Cell", "Outcome", "run", "sample_status"]


@dataclasses.dataclass
class Outcome:
    """What a benchmark produced: rows in matrix order (with the oracle columns when asked
    for), noise-floor rows, a note on each dataset's floor (a toy's entropy), loss curves,
    each dataset's reference sample and the sample files for the figures, the rows of the
    kept training steps and of the score errors, and how much was computed rather than
    found in the cache."""

    rows: list[dict]
    floors: list[dict]
    notes: dict[str, str]
    curves: list[dict]
    references: dict[str, np.ndarray]
    samples: dict[tuple[str, str], np.ndarray]
    steps: list[dict] = dataclasses.field(default_factory=list)
    score_errors: list[dict] = dataclasses.field(default_factory=list)
    trained: int = 0
    computed: int = 0
    reused: int = 0


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


def _trainer(config: Config, the_plan: Plan, family: str, store: cache.Cache):
    """``runs()``: every run of ``family``, trained (one call per kind of data) or loaded when
    first called, then remembered."""

    @functools.cache
    def runs() -> dict[tuple[str, int], training.Run]:
        found = {}
        for group in the_plan.groups[family]:
            first = next(iter(group))
            found |= training.train_family(
                family, group, config.seeds, config.steps, store, keep_at=config.keep_steps,
                num_train=kind(first).num_train(the_plan.data[first]),
            )  # fmt: skip
        return found

    return runs


def run(config: Config) -> Outcome:
    """Compute what is missing from ``config.out``'s cache and return every row."""
    out = Path(config.out)
    store = cache.Cache(out)
    the_plan = matrix.make(config)
    cells = the_plan.cells
    rows: dict[Cell, dict] = {}
    for cell in cells:
        if isinstance(cell.resolved, str):
            rows[cell] = _row(config, cell, f"skipped: {cell.resolved}")
        elif (row := store.fetch(store.cell(cell.row_stem), cache.read_piece)) is not None:
            rows[cell] = row
    outcome = Outcome(
        rows=[], floors=[], notes={}, curves=[], references=the_plan.references, samples={}
    )
    outcome.reused = sum(not isinstance(c.resolved, str) for c in rows)
    _noise_floors(config, the_plan, store, outcome)

    def finish(cell: Cell, row: dict) -> None:
        cache.write_piece(store.cell(cell.row_stem), row, {"cell": cell.key, "row": cell.row_stem})
        rows[cell] = row
        outcome.computed += 1
        # Progress only: the report (results.csv and the rest) is written as one set at the end.
        tables.write_csv(store.root / "progress.csv", [rows[c] for c in cells if c in rows])

    trainers = {}
    for family in config.families:
        runs = trainers[family] = _trainer(config, the_plan, family, store)
        todo = [c for c in cells if c.family == family and c not in rows]
        if todo:
            _family(config, the_plan, family, todo, store, finish, runs())
        if config.keep_steps:
            outcome.steps.extend(steps.rows(config, the_plan, family, store, runs))
        if config.oracle:
            outcome.score_errors.extend(oracle.score_errors(config, the_plan, family, store, runs))
    columns = oracle.columns(config, the_plan, store) if config.oracle else {}
    outcome.rows = [{**rows[c], **columns.get(c, {})} for c in cells]
    outcome.curves = _curves(config, the_plan, store, trainers)
    first = [c for c in cells if c.seed == config.seeds[0] and c.sampler == config.sampler_names[0]]
    for c in first:  # the samples of the figures
        samples = store.fetch(store.samples(c.samples_stem), cache.read_samples)
        if samples is None and rows[c].get("nfe") is not None:  # drawn once, lost since
            samples = _sample(config, the_plan, c.family, trainers[c.family](), [c], store)[c]
        if samples is not None and not isinstance(samples, str):
            outcome.samples[c.family, c.dataset] = samples["x"]
    for runs in trainers.values():
        if runs.cache_info().currsize:
            outcome.trained += sum(run.fresh for run in runs().values())
    return outcome


def _family(config, the_plan: Plan, family, todo, store, finish, runs) -> None:
    """Finish ``family``'s ``todo`` cells with its trained ``runs``."""
    ready = []
    for cell in todo:
        run = runs[cell.dataset, cell.seed]
        if run.status == "ok":
            ready.append(cell)
        else:
            finish(cell, _row(config, cell, run.status, **_training_values(run)))
    wanted = sorted({(c.dataset, c.seed) for c in ready})
    likelihoods = _likelihoods(config, the_plan, family, runs, wanted, store)
    sampled = _sample(config, the_plan, family, runs, ready, store)
    for cell in tqdm(ready, desc=f"metrics {family}", unit="cell", leave=False, disable=None):
        run = runs[cell.dataset, cell.seed]
        values = {**_training_values(run), **likelihoods[cell.dataset, cell.seed]}
        samples = sampled[cell]
        if isinstance(samples, str):
            finish(cell, _row(config, cell, samples, **values))
            continue
        x, data = samples["x"], the_plan.data[cell.dataset]
        reference = the_plan.references[cell.dataset]
        values.update(nfe=int(samples["nfe"]), sample_s=float(samples["seconds"]))
        status = sample_status(x, reference)
        if status == "ok":
            values.update(kind(cell.dataset).sample_quality(x, data, reference, config))
        finish(cell, _row(config, cell, status, **values))


def _likelihoods(config, the_plan: Plan, family, runs, wanted, store) -> dict:
    """The likelihood columns of each wanted ``(dataset, seed)`` run, cached per run."""
    results, fns = {}, {}
    for dataset, seed in tqdm(
        wanted, desc=f"likelihood {family}", unit="run", leave=False, disable=None
    ):
        run, scorer = runs[dataset, seed], kind(dataset)
        key = {"run": run.key, "eval": scorer.likelihood_settings(config)}
        path = store.likelihood(family, dataset, seed, cache.digest(key))
        values = store.fetch(path, cache.read_piece)
        if values is None:
            where = the_plan.program_key(family, dataset)
            if where not in fns:
                fns[where] = scorer.likelihood_fn(the_plan.presets[family][dataset].model, config)
            try:
                values = scorer.likelihood(fns[where], run.params, the_plan.data[dataset], config)
            except jax.errors.JaxRuntimeError as e:
                values = {"nll_status": failure(e)}
            cache.write_piece(path, values, key)
        results[dataset, seed] = values
    return results


def _sample(config, the_plan: Plan, family, runs, cells, store) -> dict:
    """Draw and time the samples of ``cells`` not in the cache. Each sampler is compiled once
    per kind of data and model of the family (a model that differs by dataset, as EDM's
    ``sigma_data``, is compiled for each) and timed without compilation. Returns cell -> its
    samples (``x``, ``nfe``, ``seconds``), or why there are none (a string)."""
    compiled, found = {}, {}
    for cell in cells:
        found[cell] = store.fetch(store.samples(cell.samples_stem), cache.read_samples)
    todo = [c for c in cells if found[c] is None]
    for cell in tqdm(todo, desc=f"sample {family}", unit="cell", leave=False, disable=None):
        params = runs[cell.dataset, cell.seed].params
        key = sample_key(cell.seed)
        model = the_plan.presets[family][cell.dataset].model
        where = (cell.sampler, *the_plan.program_key(family, cell.dataset))
        if where not in compiled:
            draw = lambda p, k, s=cell.resolved, m=model: m.sample(p, k, (config.num_samples,), s)
            try:
                compiled[where] = jax.jit(draw).lower(params, key).compile()
            except jax.errors.JaxRuntimeError as e:
                # A compiler's fault names this sampler's rows; the other samplers still run.
                compiled[where] = failure(e)
        if isinstance(compiled[where], str):
            found[cell] = compiled[where]
            continue
        start = time.perf_counter()
        try:
            out = jax.block_until_ready(compiled[where](params, key))
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


def _noise_floors(config, the_plan: Plan, store, outcome) -> None:
    """Each metric for independent true samples of the same size, per dataset, cached."""
    for dataset, data in tqdm(
        the_plan.data.items(), desc="noise floors", unit="dataset", leave=False, disable=None
    ):
        scorer = kind(dataset)
        key = {"data": data, "eval": scorer.settings(config)}
        path = store.noise_floor(dataset, cache.digest(key))
        floor = store.fetch(path, cache.read_piece)
        if floor is None:
            floor = scorer.noise_floor(data, the_plan.references[dataset], config)
            cache.write_piece(path, floor, key)
        outcome.floors.extend({"dataset": dataset, **r} for r in floor["samples"])
        outcome.notes[dataset] = floor["note"]


def _curves(config, the_plan: Plan, store, trainers) -> list[dict]:
    """Loss curves of every run (long format, for the figure and losses.csv). A run missing
    from the cache (removed as damaged) is trained again by its family's ``trainers`` entry:
    its cells may all be cached, and its curve is in no other piece."""
    rows = []
    for (family, dataset, seed), key in the_plan.run_keys.items():
        path = store.run(family, dataset, seed, key)
        path = path.with_name(path.name + ".json")
        found = store.fetch(path, cache.read_run)
        if found is None:
            trainers[family]()  # trains the run's group and writes it to the cache
            found = cache.read_run(path)
        for i, loss in enumerate(found[1]["curve"]):
            step = min((i + 1) * training.LOG_EVERY, config.steps)
            rows.append(
                {"family": family, "dataset": dataset, "seed": seed, "step": step, "loss": loss}
            )
    return rows
