"""The run matrix: plan every cell (family x dataset x seed x sampler) with its cache key, then
per family train the runs, compute their likelihoods, sample and score the unfinished cells.

Every finished cell is written to the cache at once and ``results.csv`` is rewritten after
it, so a killed benchmark loses at most the cell in progress.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

import zoo
from benchmarks import cache, evaluation, named_samplers, tables, training
from benchmarks.profiles import Config
from zoo import data as data_lib
from zoo import presets

__all__ = ["Cell", "Outcome", "run"]

SAMPLE_STREAM = 1  # sampling keys are fold_in(PRNGKey(seed), SAMPLE_STREAM)


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
    """What a benchmark produced: rows in matrix order, noise-floor rows, a line on each
    dataset's entropy, loss curves, the sample files for the figures, and how much was
    computed rather than found in the cache."""

    rows: list[dict]
    floors: list[dict]
    entropies: dict[str, str]
    curves: list[dict]
    samples: dict[tuple[str, str], Path]
    trained: int = 0
    computed: int = 0
    reused: int = 0


def _plan(config: Config, toys: dict[str, data_lib.Toy]):
    """Presets per family and dataset, and every cell with its key (nothing is computed)."""
    family_presets, cells = {}, []
    settings = evaluation.settings(config)
    for family in config.families:
        family_presets[family] = {d: _preset(config, family, toys[d]) for d in config.datasets}
        for dataset, preset in family_presets[family].items():
            sde = preset.model.sde
            resolved = {
                s: named_samplers.resolve(s, sde, preset.sampler) for s in config.sampler_names
            }
            for seed in config.seeds:
                run_key = training.run_key(preset, dataset, seed, config.steps)
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


def _failure(error: jax.errors.JaxRuntimeError) -> str:
    """A solver's runtime error (e.g. Diffrax's max_steps) as a one-line status."""
    text = str(error)
    if "maximum number of solver steps" in text:
        return "failed: the ODE solver reached max_steps"
    return "failed: " + text.strip().splitlines()[0][:200]


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
        elif store.cell(cell.row_stem).exists():
            rows[cell] = cache.read_json(store.cell(cell.row_stem))
    outcome = Outcome(rows=[], floors=[], entropies={}, curves=[], samples={})
    outcome.reused = sum(not isinstance(c.resolved, str) for c in rows)
    _noise_floors(config, toys, store, outcome)

    def finish(cell: Cell, row: dict) -> None:
        cache.write_json(store.cell(cell.row_stem), row)
        rows[cell] = row
        outcome.computed += 1
        tables.write_csv(out / "results.csv", [rows[c] for c in cells if c in rows])

    for family, by_dataset in family_presets.items():
        todo = [c for c in cells if c.family == family and c not in rows]
        if todo:
            outcome.trained += _family(config, family, by_dataset, todo, store, toys, finish)
    outcome.rows = [rows[c] for c in cells]
    tables.write_csv(out / "results.csv", outcome.rows)
    outcome.curves = _curves(config, family_presets, store)
    first = [c for c in cells if c.seed == config.seeds[0] and c.sampler == config.sampler_names[0]]
    outcome.samples = {
        (c.family, c.dataset): store.samples(c.samples_stem)
        for c in first
        if store.samples(c.samples_stem).exists()
    }
    return outcome


def _family(config, family, by_dataset, todo, store, toys, finish) -> int:
    """Train (or load) ``family``'s runs and finish its ``todo`` cells; returns the number of
    runs trained."""
    runs = training.train_family(family, by_dataset, config.seeds, config.steps, store)
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
    for cell in tqdm(ready, desc=f"metrics {family}", unit="cell", leave=False):
        run = runs[cell.dataset, cell.seed]
        values = {**_training_values(run), **likelihoods[cell.dataset, cell.seed]}
        if isinstance(sampled.get(cell), str):
            finish(cell, _row(config, cell, sampled[cell], **values))
            continue
        samples = cache.read_npz(store.samples(cell.samples_stem))
        x = samples["x"]
        values.update(nfe=int(samples["nfe"]), sample_s=float(samples["seconds"]))
        bad = int(np.sum(~np.all(np.isfinite(x), axis=-1)))
        if bad:
            status = f"diverged: NaN samples ({bad} of {len(x)})"
        else:
            status = "ok"
            values.update(evaluation.sample_quality(x, toys[cell.dataset], config))
        finish(cell, _row(config, cell, status, **values))
    return sum(run.fresh for run in runs.values())


def _likelihoods(config, family, model, runs, wanted, store, toys) -> dict:
    """The likelihood columns of each wanted ``(dataset, seed)`` run, cached per run."""
    settings = evaluation.likelihood_settings(config)
    results, fn = {}, None
    for dataset, seed in tqdm(wanted, desc=f"likelihood {family}", unit="run", leave=False):
        run = runs[dataset, seed]
        path = store.likelihood(
            family, dataset, seed, cache.digest({"run": run.key, "eval": settings})
        )
        if not path.exists():
            fn = fn or evaluation.likelihood_fn(model, config)
            try:
                values = evaluation.likelihood(fn, run.params, toys[dataset], config)
            except jax.errors.JaxRuntimeError as e:
                values = {"nll_status": _failure(e)}
            cache.write_json(path, values)
        results[dataset, seed] = cache.read_json(path)
    return results


def _sample(config, family, model, runs, cells, store) -> dict:
    """Draw and time the samples of ``cells`` not in the cache. Each sampler is compiled once
    per family (all runs share the parameter shapes) and timed without compilation. Returns
    the failures: cell -> status."""
    compiled, failures = {}, {}
    todo = [c for c in cells if not store.samples(c.samples_stem).exists()]
    for cell in tqdm(todo, desc=f"sample {family}", unit="cell", leave=False):
        params = runs[cell.dataset, cell.seed].params
        key = jax.random.fold_in(jax.random.PRNGKey(cell.seed), SAMPLE_STREAM)
        if cell.sampler not in compiled:
            fn = jax.jit(lambda p, k, s=cell.resolved: model.sample(p, k, (config.num_samples,), s))
            compiled[cell.sampler] = fn.lower(params, key).compile()
        start = time.perf_counter()
        try:
            out = jax.block_until_ready(compiled[cell.sampler](params, key))
        except jax.errors.JaxRuntimeError as e:
            failures[cell] = _failure(e)
            continue
        seconds = time.perf_counter() - start
        cache.write_npz(
            store.samples(cell.samples_stem),
            x=np.asarray(out.x),
            nfe=np.asarray(out.nfe),
            seconds=np.asarray(seconds),
        )
    return failures


def _noise_floors(config, toys, store, outcome) -> None:
    """Each metric for independent true samples of the same size, per dataset, cached."""
    settings = evaluation.settings(config)
    for dataset, toy in tqdm(toys.items(), desc="noise floors", unit="dataset", leave=False):
        path = store.noise_floor(dataset, cache.digest({"data": toy, "eval": settings}))
        if not path.exists():
            cache.write_json(path, evaluation.noise_floor(toy, config))
        floor = cache.read_json(path)
        outcome.floors.extend({"dataset": dataset, **r} for r in floor["samples"])
        outcome.entropies[dataset] = (
            f"Entropy {floor['entropy']:.4f} nats ({floor['entropy_method']})."
        )


def _curves(config, family_presets, store) -> list[dict]:
    """Loss curves of every run in the cache (long format, for the figure and losses.csv)."""
    rows = []
    for family, by_dataset in family_presets.items():
        for dataset, preset in by_dataset.items():
            for seed in config.seeds:
                key = training.run_key(preset, dataset, seed, config.steps)
                path = store.run(family, dataset, seed, key)
                if not cache.has_run(path):
                    continue
                for i, loss in enumerate(cache.run_metadata(path)["curve"]):
                    step = min((i + 1) * training.LOG_EVERY, config.steps)
                    rows.append(
                        {"family": family, "dataset": dataset, "seed": seed, "step": step,
                         "loss": loss}
                    )  # fmt: skip
    return rows
