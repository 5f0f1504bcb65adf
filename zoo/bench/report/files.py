"""The files a finished benchmark leaves beside ``results.csv``: ``results.md``,
``noise_floor.csv``, ``losses.csv``, ``summary.json`` and the figures; with kept training
steps ``steps.csv`` and ``steps.md``, with the oracle ``score_error.csv``."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import platform
import time
from pathlib import Path

import jax
import pandas as pd

import zoo
from zoo.bench import cache
from zoo.bench.judge import oracle
from zoo.bench.pipeline import Outcome
from zoo.bench.plan import digits
from zoo.bench.plan.matrix import kind
from zoo.bench.plan.profiles import Config
from zoo.bench.report import figures, output, tables
from zoo.bench.train import steps

__all__ = ["clear", "config_id", "write"]


def _machine() -> dict:
    return {
        "devices": [str(d) for d in jax.devices()],
        "backend": jax.default_backend(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "zoo": zoo.__version__,
    }


REPORTS = (
    "results.csv",
    "results.md",
    "nfe.md",
    "noise_floor.csv",
    "losses.csv",
    "steps.csv",
    "steps.md",
    "score_error.csv",
)
FIGURES = (
    "samples.png",
    "samples_*.png",
    "losses.png",
    "nfe_quality.png",
    "nfe_*.png",
    "steps_*.png",
    "score_error_*.png",
)
#: the metrics of steps.md (ratios to the floor); a dataset's figure shows the first it has
STEP_METRICS = ("sliced_w2", "energy", "mode_kl", "frechet", "class_kl")
ORACLE_NOTE = (
    "Exact-score columns (--oracle; datasets with an exact score of the noised data, the "
    "Gaussian mixtures): the same sampler, key and process driven by the exact score "
    "instead of the network. Their excess over the noise floor is the sampler's "
    "discretisation error; the rest of the learned cell's excess is the score-learning "
    "error. score_error.csv holds each run's sigma_t^2 E||s_theta - grad log p_t||^2 per "
    "scaled noise level sigma_t / alpha_t."
)


#: the header's words for ``config.presets``
PRESETS = {
    "toy": "the zoo's presets (zoo.presets.toy, zoo.presets.digits)",
    "case_study": "the case study's presets",
}


def config_id(config: Config) -> str:
    """A short hash of the config (all but the output folder) and the code: the stamp of
    every file of a report."""
    return cache.digest({**dataclasses.asdict(config), "out": None})


def _report_files(out: Path) -> set[Path]:
    return {p for pattern in REPORTS + FIGURES for p in out.glob(pattern)}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def clear(out: Path) -> None:
    """Remove the report of an earlier run (``summary.json`` first, so a set cut short is
    never taken for a whole one); the cache stays."""
    (out / "summary.json").unlink(missing_ok=True)
    for path in _report_files(out):
        path.unlink(missing_ok=True)


def describe(config: Config) -> str:
    """How the numbers were obtained, for each kind of data in ``config``."""
    return " ".join(k.describe(config) for k in dict.fromkeys(map(kind, config.datasets)))


def write(config: Config, outcome: Outcome, start: float, command: str) -> str:
    """Write every report file into ``config.out`` as one set, replacing an earlier run's:
    each stamped with :func:`config_id`, ``summary.json`` last with the wall time since
    ``start`` (a ``time.perf_counter()``) and the checksum of every other file; returns the
    tables to print (the main columns of ``results.md``)."""
    out = Path(config.out)
    stamp = config_id(config)
    clear(out)
    tables.write_csv(out / "results.csv", outcome.rows, stamp)
    text = tables.markdown(outcome.rows, outcome.floors, intro=outcome.notes)
    header = (
        f"# zoo benchmark: profile {config.profile}, {PRESETS[config.presets]}\n\n"
        f"Config {stamp} (summary.json holds it whole, with the checksum of every file).\n\n"
        f"{config.steps:,} training steps, seeds {', '.join(map(str, config.seeds))}, "
        f"{config.num_samples:,} samples per cell. {describe(config)}\n\n"
        "Each entry is the mean ± sd over the seeds whose status is ok (the status column "
        "counts them; notes say what happened to the others); bold marks the best mean. "
        "NFE: score evaluations per sample; sample s: one compiled call, jit excluded; train s: "
        "the fused fit call that trained all runs of a family together, jit included.\n\n"
        + (f"{ORACLE_NOTE}\n\n" if config.oracle else "")
    )
    output.text(out / "results.md", header + text)
    floors = pd.DataFrame(outcome.floors)
    # In results.csv's order: a floor read back from the cache has its keys sorted, one just
    # computed has them in the order computed, and the file must not depend on which.
    known = [c for c in tables.COLUMNS if c in floors]
    floors = floors[known + sorted(set(floors) - set(known))]
    for stem, frame in (("noise_floor", floors), ("losses", pd.DataFrame(outcome.curves))):
        output.table(out, stem, frame.assign(config=stamp))
    sweep = tables.quality_per_nfe(outcome.rows, outcome.floors, config.sweep, config.nfe)
    if config.nfe:
        nfe_header = (
            f"# Quality per NFE\n\nConfig {stamp}. Each entry is the mean ± sd over "
            "seeds of the cell's metric divided by the mean of the dataset's noise floor "
            "(1 is the floor). "
            "Columns are NFE budgets: ddim-N, dpm-N, dpm-sde-N, unipc-N and ipndm-N take N "
            "score evaluations, edm-N and ode-heun-N 2N - 1 (one fewer than the budget when it "
            "is even). The default column "
            "is each family's own sampler at its own NFE.\n\n"
        )
        output.text(out / "nfe.md", nfe_header + tables.nfe_markdown(sweep))
    if config.keep_steps:
        _steps(config, outcome, out, stamp)
    if config.oracle:
        columns = oracle.SCORE_ERROR_COLUMNS
        frame = pd.DataFrame(outcome.score_errors, columns=columns).assign(config=stamp)
        output.table(out, "score_error", frame)
    if config.figures:
        _figures(config, outcome, out)
        if config.nfe:
            for dataset, frame in sweep.groupby("dataset", sort=False):
                label = tables.headline_label(dataset)
                figures.nfe_sweep(out / f"nfe_{dataset}.png", frame, dataset, label)
        if config.oracle and outcome.score_errors:
            errors = pd.DataFrame(outcome.score_errors)
            for dataset, frame in errors.groupby("dataset", sort=False):
                figures.score_error(out / f"score_error_{dataset}.png", frame, dataset)
    summary = {
        "config": dataclasses.asdict(config),
        "config_id": stamp,
        "command": command,
        "commit": output.commit(),
        "machine": _machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - start, 1),
        "runs_trained": outcome.trained,
        "cells_computed": outcome.computed,
        "cells_reused": outcome.reused,
        "rows": tables.summary_numbers(outcome.rows),
        "metrics": describe(config),
        "files": {p.name: _sha256(p) for p in sorted(_report_files(out))},
    }
    output.record(out / "summary.json", summary)  # last: its presence says the set is whole
    return tables.markdown(outcome.rows, outcome.floors, tables.PRINTED, outcome.notes)


def _steps(config: Config, outcome: Outcome, out: Path, stamp: str) -> None:
    """steps.csv (every kept step's row), steps.md (each metric over its floor per family and
    step) and one figure per dataset."""
    frame = pd.DataFrame(outcome.steps, columns=steps.columns(outcome.steps)).assign(config=stamp)
    per_step = {
        f"{tables.METRICS[m][0]} / floor": tables.quality_per_step(outcome.steps, outcome.floors, m)
        for m in STEP_METRICS
    }
    sampler, last = config.samplers[0], config.steps in config.keep_steps
    header = (
        f"# Quality per training step\n\nConfig {stamp}. Each run's EMA parameters kept at "
        f"steps {', '.join(f'{k:,}' for k in config.keep_steps)} of its one training call, "
        f"sampled with {sampler!r} from the key of its other cells ({config.num_samples:,} "
        "samples). Each entry is the mean ± sd over seeds of the metric divided by the mean "
        "of the dataset's noise floor (1 is the floor; mode KL for Gaussian mixtures only)."
        + (" The last step is the final model of results.md." if last else "")
        + "\n\n"
    )
    output.table(out, "steps", frame, header + tables.steps_markdown(per_step))
    if config.figures:
        for dataset in config.datasets:
            shown = [
                (label, group)
                for label, frame in per_step.items()
                if not (group := frame[frame.dataset == dataset].dropna(subset=["ratio"])).empty
            ]
            if shown:
                label, group = shown[0]
                figures.steps(out / f"steps_{dataset}.png", group, dataset, label, sampler)


def _figures(config: Config, outcome: Outcome, out: Path) -> None:
    """samples.png (2-D toys and user points: densities of the first two coordinates),
    samples_<dataset>.png (images: grids of samples
    beside real held-out images), losses.png and nfe_quality.png."""
    samples, families = outcome.samples, list(config.families)
    label = f"{config.sampler_names[0]}, seed {config.seeds[0]}"
    # Vectors (toys and user points) as densities of their first two coordinates.
    vectors = {
        d: x[:, :2]
        for d, x in outcome.references.items()
        if kind(d) is not digits and x.shape[1] >= 2
    }
    if vectors:
        shown = {(f, d): x[:, :2] for (f, d), x in samples.items() if d in vectors}
        figures.densities(out / "samples.png", vectors, shown, families, label)
    for dataset in config.datasets:
        if kind(dataset) is digits:
            real = digits.load(dataset).test_set()[:64]
            figures.images(out / f"samples_{dataset}.png", real, samples, families, dataset, label)
    figures.loss_curves(out / "losses.png", outcome.curves)
    figures.nfe_quality(out / "nfe_quality.png", outcome.rows, outcome.floors)
