"""zoo.bench.commands.frontier: samplers on the exact score. The judge is checked on samples of the
data itself, the tables on a frame whose answers are known, and the command end to end on a
small budget, with a sampler that does not apply."""

import json
import math

import jax
import numpy as np
import pandas as pd
import pytest

from zoo import data as data_lib
from zoo.bench.commands import frontier


def test_true_samples_sit_at_the_floor_with_unit_spread():
    toy = data_lib.get("nine_gaussians")
    judge, floor, reference = frontier._judge(toy, 2000)
    x = np.asarray(toy.sample(jax.random.PRNGKey(7), (2000,)))
    ratio, spread = judge(x)
    assert 0.6 < ratio < 1.5  # one true sample: within the floor's noise
    assert spread == pytest.approx(1.0, abs=0.05)
    ratio_wide, spread_wide = judge(x * 1.5)
    assert ratio_wide > 3 and spread_wide > 1.2  # too wide: both see it


def _frame(rows):
    keys = ["process", "dataset", "sampler", "budget", "ratio", "spread"]
    frame = pd.DataFrame([dict(zip(keys, r, strict=True)) for r in rows])
    return frame.assign(nfe=frame.budget, seed=0, floor=1.0)


def test_the_worst_data_set_and_the_first_passing_budget():
    frame = _frame([
        ("vp", "a", "s", 5, 1.2, 0.5), ("vp", "b", "s", 5, 2.0, 1.05),
        ("vp", "a", "s", 10, 1.1, 1.02), ("vp", "b", "s", 10, 1.4, 0.95),
    ])  # fmt: skip
    worst = frontier._worst(frontier._mean(frame)).set_index("budget")
    assert worst.loc[5, "ratio"] == 2.0 and worst.loc[5, "spread"] == 0.5
    assert worst.loc[10, "ratio"] == 1.4 and worst.loc[10, "spread"] == 0.95
    text = frontier.table(frame)
    assert "| s | 2.00 / 0.50 | **1.40 / 0.95** |" in text  # the worst data set's row
    assert text.rstrip().endswith("| s | 10 |")  # first budget passing on every data set
    assert frontier.passes(1.5, math.nan) and not frontier.passes(1.4, 1.2)


def test_a_run_skips_what_does_not_apply_and_its_tables_are_written_again(tmp_path, capsys):
    # NCSN has 100 levels: DDIM cannot take 200 steps on it, and says why
    out = tmp_path / "frontier"
    argv = ["--out", str(out), "--processes", "ncsn", "--datasets", "nine_gaussians",
            "--samplers", "ddim,ipndm", "--nfe", "10,200", "--samples", "200"]  # fmt: skip
    frontier.main(argv)
    assert "ncsn ddim-200: skipped: ddim-200 needs 200 grid times" in capsys.readouterr().out
    frame = pd.read_csv(out / "frontier.csv")
    assert set(zip(frame.sampler, frame.budget, strict=True)) == {
        ("ddim", 10),
        ("ipndm", 10),
        ("ipndm", 200),
    }
    table = (out / "frontier.md").read_text()
    assert "| ddim |" in table and " | - |" in table
    (out / "frontier.md").unlink()
    frontier.main(["--out", str(out), "--tables"])
    assert (out / "frontier.md").read_text() == table
    # config.toml reruns the folder: the same cells, value for value
    first = (out / "frontier.csv").read_bytes()
    assert json.loads((out / "summary.json").read_text())["command"].startswith(
        "zoo-bench frontier --out"
    )
    assert frontier.main(["--config", str(out / "config.toml")]) == 0
    assert (out / "frontier.csv").read_bytes() == first


def test_tables_without_a_csv_is_one_line(tmp_path, capsys):
    assert frontier.main(["--out", str(tmp_path), "--tables"]) == 2
    assert "--tables: no " in capsys.readouterr().err


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--samples=20000000", "--samples: 20,000,000 samples need at least"),  # not a crash
        ("--nfe=none", "--nfe: the frontier needs at least one budget"),
        ("--nfe=0", "argument --nfe: expected NFE budgets >= 3"),
    ],
)
def test_a_run_that_cannot_be_is_refused_before_it_starts(flag, message, tmp_path, capsys):
    status = frontier.main(["--out", str(tmp_path), flag])
    assert status == 2
    assert message in capsys.readouterr().err
