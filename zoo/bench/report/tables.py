"""Result tables: ``results.csv`` (one row per cell) and the markdown summary (mean +- sd over
seeds per dataset, the best value in bold, the noise floor beneath).

Only rows with status ``ok`` enter a mean; a group with diverged or failed seeds says so in
its status column, so a bad run is never averaged in silently.

The oracle columns (:mod:`zoo.bench.judge.oracle`) and the tables of quality per training step
(:mod:`zoo.bench.train.steps`) appear only in runs that ask for them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from zoo.bench.judge import evaluation, oracle
from zoo.bench.plan import digits, matrix, named_samplers
from zoo.bench.report import output

__all__ = [
    "COLUMNS",
    "PRINTED",
    "markdown",
    "nfe_markdown",
    "quality_per_nfe",
    "quality_per_step",
    "headline_label",
    "steps_markdown",
    "summary_numbers",
    "write_csv",
]

KEYS = ["family", "dataset", "seed", "sampler"]
#: column -> (label, which way is better): the toys' metrics, then the images'
METRICS = {**evaluation.METRICS, **digits.METRICS}
COLUMNS = [
    *KEYS,
    "status",
    *METRICS,
    "nll_nfe",
    "nll_status",
    "nfe",
    "train_s",
    "train_runs",
    "sample_s",
    "steps",
    "n",
    "sampler_config",
    "config",
]
#: the oracle columns: not ranked (the exact score is no competitor), labelled after the metric
ORACLE = {f"oracle_{m}": (f"exact-score {METRICS[m][0]}", None) for m in oracle.METRICS}
LABELS = {**METRICS, **ORACLE}
COSTS = {"nfe": ("NFE", ".0f"), "sample_s": ("sample s", ".3g"), "train_s": ("train s", ".3g")}
INTEGERS = ["seed", "modes_covered", "nll_nfe", "nfe", "train_runs", "steps", "n"]
#: the columns printed at the end of a run (results.md has them all)
PRINTED = [
    "excess_nll",
    "excess_nll_se",
    "nll_kl",
    "w2",
    "sliced_w2",
    "mmd2",
    "modes_covered",
    "precision",
    "recall",
    "bpd",
    "frechet",
    "class_kl",
    "confidence",
    "nearest_train",
]


def _metrics(datasets) -> list[str]:
    """The metric columns of the kinds of data among ``datasets``."""
    kinds = {matrix.kind(d) for d in datasets}
    return [c for c in METRICS if any(c in k.METRICS for k in kinds)]


def _columns(rows: list[dict]) -> list[str]:
    """:data:`COLUMNS` with the metrics of the rows' kinds of data only, and the oracle
    columns after them when a row has them."""
    metrics = _metrics(r["dataset"] for r in rows)
    columns = [c for c in COLUMNS if c not in METRICS or c in metrics]
    if not any("oracle_status" in row for row in rows):
        return columns
    at = columns.index(metrics[-1]) + 1
    return [*columns[:at], *oracle.COLUMNS, *columns[at:]]


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=_columns(rows))
    return frame.astype({c: "Int64" for c in INTEGERS if c in frame})  # modes: toys only


def write_csv(path: Path, rows: list[dict], stamp: str | None = None) -> None:
    """``rows`` in :data:`COLUMNS` order (with the oracle columns when the rows have them);
    ``stamp`` (the config's id) fills its column."""
    output.text(path, _frame(rows).assign(config=stamp).to_csv(index=False))


def _cell(values: pd.Series, spec: str = ".3g") -> str:
    """``mean ± sd`` of the seeds' values; ``inf`` alone where a seed's value is infinite (a
    mode KL with no sample near any mode), whose sd is undefined."""
    values = values.dropna().astype(float)
    if values.empty:
        return ""
    text = format(values.mean(), spec)
    spread = len(values) > 1 and np.isfinite(values).all()
    return text + (f" ± {values.std():.2g}" if spread else "")


def _status(group: pd.DataFrame, label: str, notes: list[str]) -> str:
    """``ok/total``; anything else becomes a numbered note under the table."""
    ok, problems = int((group.status == "ok").sum()), group[group.status != "ok"]
    if problems.empty:
        return f"{ok}/{len(group)} ok"
    if problems.status.nunique() == 1 and len(problems) == len(group):
        notes.append(f"{label}: {problems.status.iloc[0]}")
    else:
        notes.append(
            f"{label}: "
            + "; ".join(f"seed {s}: {t}" for s, t in problems[["seed", "status"]].values)
        )
    short = (
        "skipped"
        if problems.status.str.startswith("skipped").all() and not ok
        else f"{ok}/{len(group)} ok"
    )
    return f"{short} [{len(notes)}]"


def _best(means: pd.DataFrame, column: str) -> float | None:
    better = LABELS[column][1]
    values = means[column].dropna()
    if better is None or values.empty:
        return None
    return values.min() if better == "lower" else values.max()


def markdown(
    rows: list[dict],
    floors: list[dict],
    columns: list[str] | None = None,
    intro: dict[str, str] | None = None,
) -> str:
    """One table per dataset: a row per family and sampler (mean +- sd over the ``ok`` seeds;
    the best mean of each metric in bold), the noise-floor row, and notes on every row that
    is not ``ok``. ``intro``: a line to print under each dataset's heading. ``columns``:
    those to show where the dataset's kind has them; by default every metric of its kind, and
    the oracle columns that hold a value."""
    frame, floor_frame = _frame(rows), pd.DataFrame(floors)
    wanted = columns
    out = io.StringIO()
    for dataset, by_dataset in frame.groupby("dataset", sort=False):
        own = _metrics([dataset])
        if wanted is None:
            present = [c for c in ORACLE if c in frame and by_dataset[c].notna().any()]
            columns = [*own, *present]
        else:
            columns = [c for c in wanted if c in own]
        ok = by_dataset[by_dataset.status == "ok"]
        best = {c: _best(ok.groupby(["family", "sampler"])[columns].mean(), c) for c in columns}
        table, notes = [], []
        for (family, sampler), group in by_dataset.groupby(["family", "sampler"], sort=False):
            good = group[group.status == "ok"]
            entry = {"family": family, "sampler": sampler}
            entry["status"] = _status(group, f"{family} · {sampler}", notes)
            for c in columns:
                text = _cell(good[c])
                bold = text and best[c] is not None and good[c].mean() == best[c]
                entry[LABELS[c][0]] = f"**{text}**" if bold else text
            for c, (label, spec) in COSTS.items():
                entry[label] = _cell(group[c], spec)
            table.append(entry)
        if not floor_frame.empty:
            floor = floor_frame[floor_frame.dataset == dataset]
            entry = {"family": "noise floor", "sampler": "true samples"}
            entry["status"] = f"{len(floor)} samples"
            entry.update({METRICS[c][0]: _cell(floor[c]) for c in columns if c in floor})
            table.append(entry)
        markdown_table = (
            pd.DataFrame(table).fillna("").to_markdown(index=False, disable_numparse=True)
        )
        out.write(f"### {dataset}\n\n")
        if intro and dataset in intro:
            out.write(f"{intro[dataset]}\n\n")
        out.write(markdown_table + "\n\n")
        out.writelines(f"[{i}] {note}  \n" for i, note in enumerate(notes, 1))
        out.write("\n" if notes else "")
    return out.getvalue()


def summary_numbers(rows: list[dict]) -> dict[str, int]:
    """How many rows are ok, skipped, diverged or failed."""
    statuses = [r["status"] for r in rows]
    counts = {
        kind: sum(s.startswith(kind) for s in statuses)
        for kind in ("skipped", "diverged", "failed")
    }
    return {"rows": len(rows), "ok": statuses.count("ok"), **counts}


def quality_per_nfe(
    rows: list[dict], floors: list[dict], sweep: tuple[str, ...], budgets
) -> pd.DataFrame:
    """The ``ok`` cells of the NFE sweep and of each family's default sampler in long form:
    dataset, family, kind, budget (``None`` for the default), seed, nfe and ``ratio``, the
    cell's headline metric (its kind of data's ``HEADLINE``) over the mean of its noise floor
    on that dataset, and ``oracle_ratio``, the same for the sampler with the exact score
    (NaN without one)."""
    names = {"default": ("default", None)}
    for kind in sweep:
        for budget in budgets:
            names[named_samplers.sweep((kind,), (budget,))[0]] = (kind, budget)
    frame = _frame(rows)
    frame = frame[(frame.status == "ok") & frame.sampler.isin(list(names))].copy()
    frame["kind"] = [names[s][0] for s in frame.sampler]
    frame["budget"] = [names[s][1] for s in frame.sampler]
    floor_frame = pd.DataFrame(floors)
    frame["ratio"] = frame["oracle_ratio"] = float("nan")
    for dataset, at in frame.groupby("dataset", sort=False).groups.items():
        metric = matrix.kind(dataset).HEADLINE
        floor = floor_frame[floor_frame.dataset == dataset][metric].astype(float).mean()
        frame.loc[at, "ratio"] = frame.loc[at, metric].astype(float) / floor
        if f"oracle_{metric}" in frame:
            frame.loc[at, "oracle_ratio"] = frame.loc[at, f"oracle_{metric}"].astype(float) / floor
    return frame[["dataset", "family", "kind", "budget", "seed", "nfe", "ratio", "oracle_ratio"]]


def headline_label(dataset: str) -> str:
    """The label of :func:`quality_per_nfe`'s ratio on ``dataset``, e.g. "sliced W2 / floor"."""
    return f"{METRICS[matrix.kind(dataset).HEADLINE][0]} / floor"


def nfe_markdown(frame: pd.DataFrame) -> str:
    """One table per dataset from :func:`quality_per_nfe`: a row per family and sampler, a
    column per NFE budget, each entry the mean ± sd over seeds of the ratio to the floor
    (:func:`headline_label`; 1 is the floor); the default sampler's entry names its NFE.
    Where the frame has the exact score's ratios, each sampler's row is followed by theirs
    ("exact score")."""
    out = io.StringIO()
    budgets = sorted(b for b in frame.budget.dropna().unique())
    for dataset, by_dataset in frame.groupby("dataset", sort=False):
        table = []
        for (family, kind), group in by_dataset.groupby(["family", "kind"], sort=False):
            entry = {"family": family, "sampler": kind}
            if kind == "default":
                nfe = int(group.nfe.median())
                entry["default"] = f"{_cell(group.ratio, '.2f')} ({nfe:,} NFE)"
            for budget in budgets:
                entry[f"~{budget:g}"] = _cell(group[group.budget == budget].ratio, ".2f")
            table.append(entry)
            if group.oracle_ratio.notna().any():
                exact = {"family": family, "sampler": f"{kind}, exact score"}
                if kind == "default":
                    exact["default"] = _cell(group.oracle_ratio, ".2f")
                for budget in budgets:
                    values = group[group.budget == budget].oracle_ratio
                    exact[f"~{budget:g}"] = _cell(values, ".2f")
                table.append(exact)
        text = pd.DataFrame(table).fillna("").to_markdown(index=False, disable_numparse=True)
        out.write(f"### {dataset}: {headline_label(dataset)}\n\n{text}\n\n")
    return out.getvalue()


def quality_per_step(rows: list[dict], floors: list[dict], metric: str) -> pd.DataFrame:
    """The ``ok`` rows of the kept training steps (:func:`zoo.bench.train.steps.rows`) in long
    form: dataset, family, step, seed and ``ratio``, the row's ``metric`` over the mean of
    its noise floor on that dataset."""
    frame = pd.DataFrame(rows)
    if frame.empty or metric not in frame:
        return pd.DataFrame(columns=["dataset", "family", "step", "seed", "ratio"])
    frame = frame[frame.status == "ok"].copy()
    floor = pd.DataFrame(floors).groupby("dataset")[metric].mean()
    frame["ratio"] = frame[metric].astype(float) / frame.dataset.map(floor).astype(float)
    return frame[["dataset", "family", "step", "seed", "ratio"]]


def steps_markdown(frames: dict[str, pd.DataFrame]) -> str:
    """One table per dataset and metric from :func:`quality_per_step` frames (``label ->
    frame``): a row per family, a column per kept step, each entry the mean ± sd over seeds
    of the ratio to the floor."""
    out = io.StringIO()
    datasets = list(dict.fromkeys(d for f in frames.values() for d in f.dataset))
    for dataset in datasets:
        for label, frame in frames.items():
            by_dataset = frame[frame.dataset == dataset].dropna(subset=["ratio"])
            if by_dataset.empty:  # e.g. mode KL on a dataset that has no modes
                continue
            table, kept = [], sorted(by_dataset.step.unique())
            for family, group in by_dataset.groupby("family", sort=False):
                entry = {"family": family}
                for step in kept:
                    entry[f"{step:,}"] = _cell(group[group.step == step].ratio, ".2f")
                table.append(entry)
            text = pd.DataFrame(table).fillna("").to_markdown(index=False, disable_numparse=True)
            out.write(f"### {dataset}: {label}\n\n{text}\n\n")
    return out.getvalue()
