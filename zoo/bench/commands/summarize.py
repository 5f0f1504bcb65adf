r"""``zoo-bench summarize``: which method for which question, computed from the committed
results folders (never copied by hand), as the Markdown table the README opens with.

Each row answers one question from one folder:

- **samples at <= 10 NFE, at <= 50 NFE, and at any NFE** (``cpu-standard-six``: six families,
  six datasets, three seeds; and ``cpu-standard-edm``: the five diffusion families under EDM's
  preconditioning on the same datasets, seeds, held-out points and floors, sampled by their
  own samplers and UniPC at 10 NFE): the (family, sampler) with the lowest sliced W2 over the
  noise floor. A setting's score for one seed is the mean over the datasets of
  :math:`W_{sliced} / \bar f_d`, with :math:`\bar f_d` the mean of dataset :math:`d`'s floor
  repeats (1 is the floor); a setting enters only with every dataset and seed ``ok``. At
  "any NFE" each family has its own sampler (1,000 evaluations or more), beside the fast ones.
- **likelihood**: the family with the lowest excess NLL (model NLL less the data's entropy,
  nats), averaged over the datasets in the same way; a folder whose likelihood ODE ran at
  another tolerance than ``cpu-standard-six``'s (``nll_tol`` in its ``summary.json``) is left
  out of this row, and the row says so.
- **training steps**: the family that first has its seed mean within 1.5x the floor on every
  dataset of the step-curve folders (``cpu-16k-why`` and ``cpu-16k-why-flow``: parameters kept
  at 1k, 2k, 4k, 8k and 16k steps, each family's own sampler).
- **images**: the lowest Frechet distance of the digit classifier's features on the 8x8 digits
  (``digits-cpu-10k``, one seed, each family's own sampler).

The runner-up is the best setting of another family (another process: ``vp-edm`` is VP's
family, as ``vp`` is). With seeds on both sides, Welch's t test
on the per-seed scores (:func:`zoo.quality.compare`, level 0.05) calls the winner ``ahead`` or
the two a ``tie``; the margin is the runner-up's mean less the winner's, with the standard
error of that difference. The cost is the winner's median training seconds per run (a fused
call's time over the runs it trained) and sampling seconds per cell, on the folder's backend
(its ``summary.json``); the step curves and the digits carry none.

The table is written to ``decision.md`` in the results folder and printed; the README carries
it between the lines ``<!-- decision table -->`` and ``<!-- end of decision table -->``, and
``--readme README.md`` writes it there too.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from zoo import presets, quality
from zoo.bench.plan import parsing
from zoo.bench.plan.parsing import UsageError

__all__ = ["Answer", "answers", "main", "parser", "table"]

SAMPLES = ("cpu-standard-six", "cpu-standard-edm")
STEPS = ("cpu-16k-why", "cpu-16k-why-flow")
DIGITS = "digits-cpu-10k"
#: the step curves' threshold: a seed mean within this factor of the floor's mean
WITHIN = 1.5
BEGIN, END = "<!-- decision table -->", "<!-- end of decision table -->"


@dataclasses.dataclass(frozen=True)
class Answer:
    """One row: a question, its winner and value, the best of another family, the margin
    (runner-up less winner, with its standard error where seeds allow a test), the call, the
    winner's cost and the folder it is read from."""

    question: str
    winner: str
    value: str
    runner_up: str
    margin: str
    call: str
    cost: str
    folder: str


def _read(results: Path, folder: str, name: str) -> pd.DataFrame:
    path = results / folder / name
    if not path.is_file():
        raise UsageError(
            f"results: {path} is missing (the folders the table reads: "
            f"{', '.join([*SAMPLES, *STEPS, DIGITS])})"
        )
    return pd.read_csv(path)


def _summary(results: Path, folder: str) -> dict:
    """The folder's ``summary.json``; one line if it is missing or not JSON."""
    path = results / folder / "summary.json"
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise UsageError(f"results: cannot read {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"results: {path} is not JSON: {e}") from None


def _machine(results: Path, folder: str) -> str:
    """The backend the folder was made on, from its ``summary.json``."""
    machine = _summary(results, folder)["machine"]
    return f"{machine['backend']}, jax {machine['jax']}"


def _tolerance(results: Path, folder: str) -> float:
    """The ODE tolerance (rtol = atol) of the folder's likelihoods, from its ``summary.json``."""
    config = _summary(results, folder).get("config", {})
    if "nll_tol" not in config:
        raise UsageError(f"results: {results / folder / 'summary.json'} has no config.nll_tol")
    return float(config["nll_tol"])


def _predicts(family: str) -> str:
    """What the family's network outputs: its declaration's ``predict``, or its model class's
    own default (the noise; flow matching's velocity)."""
    entry = presets.FAMILY_TABLE[family]
    if entry.predict:
        return entry.predict
    parameter = inspect.signature(entry.model).parameters.get("predict")
    return "eps" if parameter is None else parameter.default


def _model(family: str) -> str:
    return f"{presets.FAMILY_TABLE[family].label} (predicts {_predicts(family)})"


def _setting(family: str, sampler: str, nfe: int) -> str:
    own = "its own sampler" if sampler == "default" else sampler
    return f"{_model(family)}, {own}, {nfe:,} NFE"


def _scores(rows: pd.DataFrame, column: str) -> dict[tuple[str, str], np.ndarray]:
    """(family, sampler) -> per-seed mean over the datasets of ``column``; only settings with
    every dataset and seed of the folder ``ok``."""
    datasets, seeds = rows.dataset.nunique(), rows.seed.nunique()
    scores = {}
    for (family, sampler), part in rows.groupby(["family", "sampler"], sort=False):
        ok = part[part.status == "ok"]
        if len(ok) < datasets * seeds or ok[column].isna().any():
            continue
        scores[family, sampler] = ok.groupby("seed")[column].mean().to_numpy()
    return scores


def _best(scores: dict, families: list[str] | None = None):
    """The setting with the lowest mean score (among ``families``), or None if there is none."""
    keys = [k for k in scores if families is None or k[0] in families]
    return min(keys, key=lambda k: scores[k].mean()) if keys else None


def _margin(scores: dict, winner, runner_up, digits: int) -> tuple[str, str]:
    if runner_up is None:
        return "-", "no other family ranked"
    a, b = scores[winner], scores[runner_up]
    diff = b.mean() - a.mean()
    if min(a.size, b.size) < 2:
        return f"{diff:.{digits}f}", "one seed: untested"
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    verdict = quality.compare(a, b).verdict
    call = "ahead" if verdict == quality.BETTER else "tie"
    return f"{diff:.{digits}f} ± {se:.{digits}f}", call


def _cost(rows: pd.DataFrame, family: str, sampler: str) -> tuple[str, str]:
    """The median training seconds per run and sampling seconds per cell of a setting."""
    part = rows[(rows.family == family) & (rows.sampler == sampler)]
    train = (part.train_s / part.train_runs).median()
    return f"train {train:.0f} s/run", f"sample {part.sample_s.median():.2g} s/cell"


def _family(family: str) -> str:
    """The family a table entry belongs to, whatever its network predicts or its weighting:
    its display label (``vp`` and ``vp-edm`` are both the VP SDE)."""
    return presets.FAMILY_TABLE[family].label


def _comparison(results: Path) -> pd.DataFrame:
    """The rows of the :data:`SAMPLES` folders with each cell's ``ratio`` to its floor and the
    ``folder`` it comes from; one line if their floors differ (not the same comparison)."""
    floors = [_read(results, f, "noise_floor.csv").groupby("dataset").sliced_w2.mean()
              for f in SAMPLES]  # fmt: skip
    for folder, floor in zip(SAMPLES[1:], floors[1:], strict=True):
        shared = floor.index.intersection(floors[0].index)
        if len(shared) < len(floor) or not np.allclose(floor[shared], floors[0][shared]):
            raise UsageError(
                f"results: {folder}'s noise floors are not {SAMPLES[0]}'s; the table compares "
                "runs judged against the same true samples only"
            )
    rows = pd.concat(
        [_read(results, f, "results.csv").assign(folder=f) for f in SAMPLES], ignore_index=True
    )
    return rows.assign(ratio=rows.sliced_w2 / rows.dataset.map(floors[0]))


def _sample_answers(results: Path) -> list[Answer]:
    rows = _comparison(results)
    nfe = rows.groupby(["family", "sampler"]).nfe.max()
    where = rows.groupby("family").folder.first()
    machine = _machine(results, SAMPLES[0])
    every = _scores(rows, "ratio")
    out = []
    for question, budget in (
        ("best samples at <= 10 NFE", 10),
        ("best samples at <= 50 NFE", 50),
        ("best samples at any NFE", None),
    ):
        scores = {k: v for k, v in every.items() if budget is None or nfe[k] <= budget}
        winner = _best(scores)
        if winner is None:
            raise UsageError(
                f"results: no setting of {', '.join(SAMPLES)} has every cell ok for {question}"
            )
        others = [f for f in dict.fromkeys(rows.family) if _family(f) != _family(winner[0])]
        runner_up = _best(scores, others)
        margin, call = _margin(scores, winner, runner_up, 2)
        other = "-"
        if runner_up is not None:
            other = f"{_setting(*runner_up, nfe[runner_up])}: {scores[runner_up].mean():.2f}x"
        value = f"sliced W2 {scores[winner].mean():.2f}x the floor"
        cost = ", ".join(_cost(rows, *winner)) + f" on {machine}"
        setting = _setting(*winner, nfe[winner])
        out.append(Answer(question, setting, value, other, margin, call, cost, where[winner[0]]))
    # likelihoods integrated at another tolerance are not the same measurement
    tolerance = {f: _tolerance(results, f) for f in SAMPLES}
    left_out = [f for f in SAMPLES if tolerance[f] != tolerance[SAMPLES[0]]]
    own = rows[(rows.sampler == "default") & ~rows.folder.isin(left_out)]
    scores = _scores(own, "excess_nll")
    winner = _best(scores)
    if winner is None:
        raise UsageError(f"results: no family of {', '.join(SAMPLES)} has every likelihood cell ok")
    runner_up = _best(scores, [f for f, _ in scores if _family(f) != _family(winner[0])])
    margin, call = _margin(scores, winner, runner_up, 3)
    other = "-"
    if runner_up is not None:
        other = f"{_model(runner_up[0])}: {scores[runner_up].mean():.3f}"
    value = f"excess NLL {scores[winner].mean():.3f} nats"
    cost = f"{_cost(rows, *winner)[0]} on {machine}"
    folder = where[winner[0]] + "".join(
        f" ({f} left out: its likelihood ODE at rtol = atol = {tolerance[f]:g}, not "
        f"{tolerance[SAMPLES[0]]:g})"
        for f in left_out
    )
    out.append(
        Answer("best likelihood", _model(winner[0]), value, other, margin, call, cost, folder)
    )
    return out


def _steps_answer(results: Path) -> Answer:
    rows = pd.concat([_read(results, f, "steps.csv") for f in STEPS], ignore_index=True)
    floor = _read(results, STEPS[0], "noise_floor.csv").groupby("dataset").sliced_w2.mean()
    rows = rows[rows.status == "ok"]
    mean = (
        rows.assign(ratio=rows.sliced_w2 / rows.dataset.map(floor))
        .groupby(["family", "dataset", "step"])
        .ratio.mean()
    )
    first = {}
    for family, part in mean.groupby(level="family", sort=False):
        within = (part <= WITHIN).groupby(level="step").all()  # every dataset
        if within.any():
            first[family] = int(within[within].index.min())
    if not first:
        raise UsageError(f"results: no family reaches {WITHIN}x the floor in {', '.join(STEPS)}")
    rank = {f: i for i, f in enumerate(presets.FAMILY_TABLE)}  # ties in the table's order
    order = sorted(first, key=lambda f: (first[f], rank[f]))
    winner, others = order[0], order[1:]
    tied = [f for f in others if first[f] == first[winner]]
    label = presets.FAMILY_TABLE
    runner_up = next((f for f in others if first[f] > first[winner]), None)
    margin = "-" if runner_up is None else f"{first[runner_up] - first[winner]:,} steps"
    kept = sorted(rows.step.unique())
    return Answer(
        f"fewest training steps to {WITHIN}x the floor",
        ", ".join(label[f].label for f in [winner, *tied]) + ", its own sampler",
        f"{first[winner]:,} steps (of {', '.join(f'{s:,}' for s in kept)} kept)",
        "-" if runner_up is None else f"{label[runner_up].label}: {first[runner_up]:,}",
        margin,
        "tie" if tied else "first on the kept steps",
        "-",
        " + ".join(STEPS),
    )


def _digits_answer(results: Path) -> Answer:
    rows = _read(results, DIGITS, "results.csv")
    floor = _read(results, DIGITS, "noise_floor.csv").frechet.mean()
    own = rows[(rows.sampler == "default") & (rows.status == "ok")]
    own = own[own.family.isin(presets.FAMILIES)]
    own = own.set_index("family").frechet.sort_values()
    if own.empty:
        raise UsageError(f"results: no family of {DIGITS} has an ok cell with its own sampler")
    winner = own.index[0]
    runner_up = own.index[1] if len(own) > 1 else None
    label = presets.FAMILY_TABLE
    return Answer(
        "best images (8x8 digits)",
        f"{_model(winner)}, its own sampler",
        f"Frechet {own[winner]:.2f} (real held-out digits {floor:.2f})",
        "-" if runner_up is None else f"{label[runner_up].label}: {own[runner_up]:.2f}",
        "-" if runner_up is None else f"{own[runner_up] - own[winner]:.2f}",
        "one seed: untested",
        "-",
        DIGITS,
    )


def answers(results: Path) -> list[Answer]:
    """Every row of the decision table, read from the folders under ``results``."""
    return [*_sample_answers(results), _steps_answer(results), _digits_answer(results)]


def table(rows: list[Answer]) -> str:
    """The rows as a Markdown table, with the line that says how it was made."""
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows]).rename(
        columns={
            "runner_up": "best of another family",
            "margin": "margin (± s.e.)",
        }
    )
    return (
        "Made by `zoo-bench summarize` from the committed folders under `benchmarks/results/` "
        "(margin: the other family's value less the winner's; call: Welch's t test over the "
        f"seeds at level {quality.ALPHA:g}).\n\n" + frame.to_markdown(index=False) + "\n"
    )


def _with_table(readme: Path, text: str) -> str:
    """The README's text with ``text`` between its marker lines (checked before any write)."""
    if not readme.is_file():
        raise UsageError(f"readme: {readme} is not a file")
    content = readme.read_text()
    if (
        content.count(BEGIN) != 1
        or content.count(END) != 1
        or content.index(BEGIN) > content.index(END)
    ):
        raise UsageError(f"readme: {readme} needs the lines {BEGIN!r} then {END!r}, once each")
    head, rest = content.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{text}{END}{tail}"


def parser() -> parsing.Parser:
    p = parsing.command("summarize", __doc__, keep_layout=True)
    p.add_argument(
        "--results",
        type=Path,
        default=Path("benchmarks/results"),
        help="the folder of results folders (benchmarks/results)",
    )
    p.add_argument(
        "--readme", type=Path, default=None, help="also write the table into this README"
    )
    return p


@parsing.main_of("summarize")
def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if not args.results.is_dir():
        raise UsageError(f"results: {args.results} is not a folder")
    text = table(answers(args.results))
    readme = None if args.readme is None else _with_table(args.readme, text)
    (args.results / "decision.md").write_text(text)
    if readme is not None:
        args.readme.write_text(readme)
    print(text, end="")
