"""``zoo-bench summarize``: the decision table reproduces from the committed folders byte for
byte (and the README carries it), its calls follow the seeds, and a missing folder is one line."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoo.bench.__main__ import main as zoo_bench
from zoo.bench.commands import summarize

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATASETS = ("nine_gaussians", "moons")


def test_the_committed_table_is_what_the_committed_folders_give():
    text = summarize.table(summarize.answers(RESULTS))
    assert (RESULTS / "decision.md").read_text() == text
    readme = (ROOT / "README.md").read_text()
    assert f"{summarize.BEGIN}\n{text}{summarize.END}" in readme


def _folders(
    root: Path,
    vp: float,
    ve: float,
    seeds=(0, 1, 2),
    diverged: bool = False,
    edm=None,
    edm_tol: float = 1e-5,
) -> Path:
    """Toy folders: VP and VE with sliced W2 = ``vp`` and ``ve`` times the floor (a small
    seed-to-seed spread), a DDIM and the own sampler each, and in the second comparison
    folder VE under EDM's preconditioning at ``edm`` (default: ``ve + 1``); VE's steps reach
    the floor first. Its likelihoods are integrated at ``edm_tol``, the others' at 1e-5."""
    rng = np.random.default_rng(0)
    rows, steps = [], []
    levels = (("vp", vp), ("ve", ve), ("ve-edm", ve + 1 if edm is None else edm))
    for family, level in levels:
        for dataset in DATASETS:
            for seed in seeds:
                for sampler, nfe in (("default", 1000), ("ddim-10", 10)):
                    rows.append({
                        "family": family, "dataset": dataset, "seed": seed, "sampler": sampler,
                        "status": "ok", "sliced_w2": level * (1 + 0.01 * rng.standard_normal()),
                        "excess_nll": level / 10, "nfe": nfe, "train_s": 60.0, "train_runs": 6,
                        "sample_s": 0.5,
                    })  # fmt: skip
                for step in (1000, 2000) if family != "ve-edm" else ():
                    ratio = 1.2 if (family == "ve" or step == 2000) else 3.0
                    steps.append({"family": family, "dataset": dataset, "seed": seed, "step": step,
                                  "status": "ok", "sliced_w2": ratio})  # fmt: skip
    if diverged:
        rows[0]["status"] = "diverged: NaN loss"  # vp's own sampler, one seed of one dataset
    floor = pd.DataFrame({"dataset": list(DATASETS) * 2, "sliced_w2": 1.0})
    results = root / "results"
    machine = '{"machine": {"backend": "cpu", "jax": "0"}, "config": {"nll_tol": %g}}'
    rows = pd.DataFrame(rows)
    edm_rows = rows.family == "ve-edm"
    for folder, frames in {
        summarize.SAMPLES[0]: {"results.csv": rows[~edm_rows], "noise_floor.csv": floor},
        summarize.SAMPLES[1]: {"results.csv": rows[edm_rows], "noise_floor.csv": floor},
        summarize.STEPS[0]: {"steps.csv": pd.DataFrame(steps), "noise_floor.csv": floor},
        summarize.STEPS[1]: {"steps.csv": pd.DataFrame(steps[:0], columns=list(steps[0]))},
        summarize.DIGITS: {
            "results.csv": pd.DataFrame({"family": ["vp", "ve"], "sampler": "default",
                                         "status": "ok", "frechet": [3.0, 2.0]}),
            "noise_floor.csv": pd.DataFrame({"dataset": ["digits"], "frechet": [1.5]}),
        },
    }.items():  # fmt: skip
        (results / folder).mkdir(parents=True)
        tol = edm_tol if folder == summarize.SAMPLES[1] else 1e-5
        (results / folder / "summary.json").write_text(machine % tol)
        for name, frame in frames.items():
            frame.to_csv(results / folder / name, index=False)
    return results


def _rows(results: Path) -> dict[str, summarize.Answer]:
    return {a.question: a for a in summarize.answers(results)}


def test_a_lead_beyond_the_seeds_noise_is_ahead_and_one_inside_it_a_tie(tmp_path):
    clear = _rows(_folders(tmp_path / "clear", vp=1.5, ve=1.1))
    row = clear["best samples at any NFE"]
    assert row.winner.startswith("VE SDE") and row.call == "ahead"
    assert row.runner_up.startswith("VP SDE")
    assert float(row.margin.split()[0]) == pytest.approx(0.4, abs=0.03)
    assert clear["best likelihood"].winner.startswith("VE SDE")
    assert "10 NFE" in clear["best samples at <= 10 NFE"].winner  # only the DDIM cells count
    steps = clear["fewest training steps to 1.5x the floor"]
    assert steps.winner.startswith("VE SDE") and steps.value.startswith("1,000 steps")
    assert steps.runner_up == "VP SDE: 2,000" and steps.margin == "1,000 steps"
    assert clear["best images (8x8 digits)"].winner.startswith("VE SDE")
    close = _rows(_folders(tmp_path / "close", vp=1.101, ve=1.1))
    assert close["best samples at any NFE"].call == "tie"


def test_a_parametrisation_competes_and_its_runner_up_is_another_family(tmp_path):
    rows = _rows(_folders(tmp_path, vp=1.5, ve=1.3, edm=1.05))
    best = rows["best samples at any NFE"]
    assert best.winner.startswith("VE SDE (predicts edm), its own sampler")
    assert best.runner_up.startswith("VP SDE (predicts eps)")  # not VE's own eps
    assert best.folder == summarize.SAMPLES[1] and best.call == "ahead"
    # the two folders must judge against the same true samples
    floor = tmp_path / "results" / summarize.SAMPLES[1] / "noise_floor.csv"
    pd.DataFrame({"dataset": list(DATASETS), "sliced_w2": 2.0}).to_csv(floor, index=False)
    with pytest.raises(summarize.UsageError, match="noise floors are not"):
        summarize.answers(tmp_path / "results")


def test_likelihoods_at_another_ode_tolerance_are_left_out_and_named(tmp_path):
    same = _rows(_folders(tmp_path / "same", vp=1.5, ve=1.3, edm=1.05))["best likelihood"]
    assert same.winner.startswith("VE SDE (predicts edm)") and "left out" not in same.folder
    other = _folders(tmp_path / "other", vp=1.5, ve=1.3, edm=1.05, edm_tol=1e-3)
    rows = _rows(other)
    likelihood = rows["best likelihood"]
    assert likelihood.winner.startswith("VE SDE (predicts eps)")  # the EDM run is not ranked
    assert likelihood.folder == (
        f"{summarize.SAMPLES[0]} ({summarize.SAMPLES[1]} left out: its likelihood ODE at "
        "rtol = atol = 0.001, not 1e-05)"
    )
    assert rows["best samples at any NFE"].winner.startswith("VE SDE (predicts edm)")
    (other / summarize.SAMPLES[1] / "summary.json").write_text('{"machine": {}}')
    with pytest.raises(summarize.UsageError, match="no config.nll_tol"):
        summarize.answers(other)
    (other / summarize.SAMPLES[1] / "summary.json").write_text("{damaged")
    with pytest.raises(summarize.UsageError, match="summary.json is not JSON"):
        summarize.answers(other)
    (other / summarize.SAMPLES[1] / "summary.json").unlink()
    with pytest.raises(summarize.UsageError, match="cannot read"):
        summarize.answers(other)


def test_a_setting_with_a_failed_cell_is_not_ranked(tmp_path):
    rows = _rows(_folders(tmp_path, vp=1.0, ve=1.5, diverged=True))
    # VP's own sampler would win; with one cell diverged its DDIM stands for it
    assert rows["best samples at any NFE"].winner.startswith("VP SDE (predicts eps), ddim-10")
    # and VP's likelihood (read from its own sampler's rows) is not ranked at all
    likelihood = rows["best likelihood"]
    assert likelihood.winner.startswith("VE SDE") and likelihood.call == "no other family ranked"


def test_one_seed_is_not_tested(tmp_path):
    rows = _rows(_folders(tmp_path, vp=1.5, ve=1.1, seeds=(0,)))
    assert rows["best samples at any NFE"].call == "one seed: untested"


def test_a_missing_folder_or_readme_marker_is_one_line(tmp_path, capsys):
    assert zoo_bench(["summarize", f"--results={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and summarize.SAMPLES[0] in err
    results = _folders(tmp_path, vp=1.5, ve=1.1)
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert zoo_bench(["summarize", f"--results={results}", f"--readme={readme}"]) == 2
    assert "needs the lines" in capsys.readouterr().err
    assert not (results / "decision.md").exists()  # nothing is written before the check
    readme.write_text(f"{summarize.END}\n{summarize.BEGIN}\n")  # the wrong order
    assert zoo_bench(["summarize", f"--results={results}", f"--readme={readme}"]) == 2
    assert "needs the lines" in capsys.readouterr().err
    readme.write_text(f"a\n{summarize.BEGIN}\nold\n{summarize.END}\nb\n")
    assert zoo_bench(["summarize", f"--results={results}", f"--readme={readme}"]) == 0
    text = (results / "decision.md").read_text()
    assert readme.read_text() == f"a\n{summarize.BEGIN}\n{text}{summarize.END}\nb\n"
    assert zoo_bench(["summarize", "--no-such-flag"]) == 2
    assert "--no-such-flag" in capsys.readouterr().err
