"""The benchmark harness end to end on a tiny budget: the files it writes, resuming, cache
keys, a diverging run, and one-line errors for bad input."""

import dataclasses
import functools
import json
import math
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import optax
import pandas as pd
import pytest

from zoo import data, multistep, nets, presets, samplers
from zoo.bench import cache
from zoo.bench.commands.compare import main
from zoo.bench.judge import evaluation
from zoo.bench.plan import cli, digits, limits, named_samplers
from zoo.bench.report import tables
from zoo.bench.train import training

# checkerboard: exact entropy and density (a fast noise floor), and no mode metrics.
TINY = {
    "families": "ddpm",
    "datasets": "checkerboard",
    "seeds": "0",
    "steps": "200",
    "samplers": "default,ddim-10,langevin",
    "samples": "50",
    "nll-points": "4",
    "nll-tol": "1e-3",  # the machinery, not the likelihood's convergence: 1e-5 takes 5x the NFE
}
METRICS = ["excess_nll", "w2", "sliced_w2", "mmd2", "mmd_p", "energy", "precision", "recall"]


def _args(out, **changes) -> list[str]:
    return [f"--{k}={v}" for k, v in {**TINY, **changes, "out": out}.items()]


def _summary(out):
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny benchmark; tests that change it work on a copy."""
    out = tmp_path_factory.mktemp("bench") / "out"
    assert main(_args(out)) == 0
    return out


def _copy(finished, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    return out


def test_the_kl_column_is_the_excess_nll_less_the_held_out_points_own(finished):
    # Both columns read the same held-out points; they differ by those points' NLL under the
    # data's own density (less its entropy), the offset the KL column removes.
    results = pd.read_csv(finished / "results.csv").dropna(subset=["excess_nll"])
    for dataset, rows in results.groupby("dataset"):
        toy = data.get(dataset)
        x = evaluation.heldout(toy, int(TINY["nll-points"]))
        own = -np.mean(np.asarray(toy.log_prob(x), np.float64)) - toy.entropy()
        np.testing.assert_allclose(rows.excess_nll - rows.nll_kl, own, atol=1e-6)


def test_a_tiny_run_writes_every_file(finished):
    names = {p.name for p in finished.iterdir()}
    expected = {"results.csv", "results.md", "summary.json", "noise_floor.csv", "losses.csv"}
    assert expected | {"samples.png", "losses.png", "nfe_quality.png"} <= names
    results = pd.read_csv(finished / "results.csv")
    # The toys' metric columns only: the images' appear where digits are benchmarked.
    assert list(results.columns) == [c for c in tables.COLUMNS if c not in digits.METRICS]
    assert list(results.sampler) == ["default", "ddim-10", "langevin"]
    ok = results[results.status == "ok"]
    assert len(ok) == 2 and ok[METRICS + ["nfe", "sample_s", "train_s"]].notna().all().all()
    assert list(ok.nfe) == [1000, 10]  # DDPM's 1000 levels; DDIM on 10 of them
    # Mode metrics exist only for Gaussian mixtures; annealed Langevin only for VE processes.
    assert results[["high_quality", "modes_covered", "mode_kl"]].isna().all().all()
    assert results.status[2].startswith("skipped: annealed Langevin")
    summary = _summary(finished)
    assert {"config", "command", "machine", "date", "wall_s"} <= set(summary)
    assert summary["cells_computed"] == 2 and summary["runs_trained"] == 1
    markdown = (finished / "results.md").read_text()
    assert "| noise floor" in markdown and "skipped [1]" in markdown


def test_a_resumed_run_recomputes_only_what_is_missing(finished, tmp_path):
    out = _copy(finished, tmp_path)
    cell = next((out / "cache" / "cells").rglob("*ddim-10*.json"))
    samples = next((out / "cache" / "samples").rglob("*ddim-10*.npz"))
    cell.unlink()
    samples.unlink()
    (cell.parent / f".{cell.name}.killed.tmp").write_text("{")  # a write cut short
    assert main([*_args(out), "--no-figures"]) == 0  # the figures are the fixture's test
    summary = _summary(out)
    assert (summary["runs_trained"], summary["cells_computed"], summary["cells_reused"]) == (
        0,
        1,
        1,
    )
    before, after = (pd.read_csv(p / "results.csv") for p in (finished, out))
    pd.testing.assert_frame_equal(before[METRICS + ["nfe"]], after[METRICS + ["nfe"]])


def test_a_changed_config_reuses_nothing(finished, tmp_path):
    out = _copy(finished, tmp_path)
    assert main([*_args(out, steps=100, samplers="ddim-10"), "--no-figures"]) == 0
    summary = _summary(out)
    assert (summary["runs_trained"], summary["cells_computed"], summary["cells_reused"]) == (
        1,
        1,
        0,
    )
    results = pd.read_csv(out / "results.csv")
    assert list(results.steps) == [100]


def test_a_diverging_run_is_reported_not_averaged(finished, tmp_path, monkeypatch):
    toy = presets.toy
    nan = dict(learning_rate=1.25e-3, optimizer_fn=lambda _: optax.adamw(math.nan))  # a new key
    monkeypatch.setattr(presets, "toy", lambda *a, **k: dataclasses.replace(toy(*a, **k), **nan))
    out = _copy(finished, tmp_path)
    assert main([*_args(out, samplers="default"), "--no-figures"]) == 0
    results = pd.read_csv(out / "results.csv")
    assert list(results.status) == ["diverged: NaN loss"]
    assert results[METRICS].isna().all().all()
    assert "0/1 ok [1]" in (out / "results.md").read_text()


def test_two_datasets_train_in_one_call_and_sweep_the_nfe(tmp_path):
    """Six datasets once failed because two equal network partials compared unequal; two
    datasets through the command line show it, with the quality-per-NFE sweep beside."""
    out = tmp_path / "out"
    args = _args(out, families="ve", datasets="nine_gaussians,checkerboard", steps=100)
    assert main([*args, "--samplers=ddim-5", "--sweep=ddim,dpm,edm,ode-heun", "--nfe=5"]) == 0
    results = pd.read_csv(out / "results.csv")
    assert list(results.dataset.unique()) == ["nine_gaussians", "checkerboard"]
    assert (results.status == "ok").all() and (results.train_runs == 2).all()
    assert _summary(out)["runs_trained"] == 2
    nfe = results[results.dataset == "checkerboard"].set_index("sampler").nfe.to_dict()
    assert nfe == {"ddim-5": 5, "dpm-5": 5, "edm-3": 5, "ode-heun-3": 5}
    nfe_table = (out / "nfe.md").read_text()
    assert "### nine_gaussians" in nfe_table and "### checkerboard" in nfe_table
    assert (out / "nfe_nine_gaussians.png").exists() and (out / "nfe_checkerboard.png").exists()


def test_an_infinite_seed_value_is_inf_in_the_table_without_a_warning():
    # A mode KL is inf when no sample lies near any mode (a 5-NFE sampler can do that): the
    # cell is inf, with no sd (inf - inf has none) and no numpy warning on the report's stderr.
    rows = [
        {"family": "vp", "dataset": "nine_gaussians", "seed": seed, "sampler": sampler,
         "status": "ok", "mode_kl": kl}
        for sampler, kls in [("edm-3", [0.5, math.inf, 0.7]), ("default", [0.01, 0.02, 0.03])]
        for seed, kl in enumerate(kls)
    ]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = tables.markdown(rows, [{"dataset": "nine_gaussians", "mode_kl": 0.01}])
    lines = [[cell.strip() for cell in line.split("|")] for line in text.splitlines()]
    header = next(line for line in lines if "mode KL" in line)
    column, sampler = header.index("mode KL"), header.index("sampler")
    cells = {line[sampler]: line[column] for line in lines if line[1:2] == ["vp"]}
    assert cells == {"edm-3": "inf", "default": "**0.02 ± 0.01**"}, text


def test_a_family_whose_model_differs_by_dataset_trains_each_apart(tmp_path):
    # EDM's sigma_data is each dataset's own: the two datasets cannot share one fused call
    # (this was a ValueError), and each dataset's samples and likelihood come from its own
    # model (the sampler and the likelihood were once compiled with the first dataset's).
    out = tmp_path / "out"
    args = _args(out, families="vp-edm", datasets="nine_gaussians,checkerboard", steps=20)
    assert main([*args, "--samplers=ddim-3", "--no-figures"]) == 0
    results = pd.read_csv(out / "results.csv").set_index("dataset")
    assert list(results.index) == ["nine_gaussians", "checkerboard"]
    assert (results.status == "ok").all() and (results.train_runs == 1).all()
    config = cli.parse([*args, "--samplers=ddim-3"], check_memory=False)
    sigma_data = set()
    for dataset in results.index:
        model = presets.toy("vp-edm", data=dataset).model
        sigma_data.add(model.config["sigma_data"])
        (path,) = (out / "cache" / "runs" / "vp-edm" / dataset).glob("seed0-*.json")
        state, _ = cache.read_run(path.with_suffix(""))
        toy = data.get(dataset)
        fn = evaluation.likelihood_fn(model, config)
        nll = evaluation.likelihood(fn, state.ema_params, toy, config)["excess_nll"]
        np.testing.assert_allclose(nll, results.excess_nll[dataset], rtol=1e-4)
        sampler = samplers.DDIM(steps=3)
        x = model.sample(state.ema_params, evaluation.sample_key(0), (50,), sampler).x
        (stored,) = (out / "cache" / "samples" / "vp-edm" / dataset).glob("seed0-ddim-3-*")
        np.testing.assert_allclose(x, cache.read_samples(stored)["x"], rtol=1e-4, atol=1e-5)
    assert len(sigma_data) == 2


def test_equal_model_configs_built_apart_are_one_model():
    # the presets share one TOY_NET: an equal partial made apart stands for a config rebuilt
    apart = functools.partial(nets.ScoreNet, dropout=0.0)
    vp, vp_moons = presets.toy("vp").model, presets.toy("vp", data="moons", net=apart).model
    assert vp.config["net"] is not vp_moons.config["net"]
    assert training.model_key(vp) == training.model_key(vp_moons)
    assert training.model_key(vp) != training.model_key(presets.toy("subvp").model)


def test_a_sampler_name_carries_its_options_to_the_sampler():
    names = named_samplers.split("dpm-10[order=3,grid=time],ddim-20[eta=1],default")
    assert names == ["dpm-10[order=3,grid=time]", "ddim-20[eta=1]", "default"]
    vp = presets.toy("vp").model.sde
    dpm = named_samplers.resolve(names[0], vp, None)
    assert (type(dpm), dpm.steps, dpm.order, dpm.grid) == (multistep.DPMSolverPP, 10, 3, "time")
    ddim = named_samplers.resolve(names[1], presets.toy("ddpm").model.sde, None)
    assert (type(ddim), ddim.steps, ddim.eta) == (samplers.DDIM, 20, 1.0)
    unipc = named_samplers.resolve("unipc-8[corrector=false,variant=bh1]", vp, None)
    assert (unipc.corrector, unipc.variant, unipc.convergence_order) == (False, "bh1", 2)
    assert named_samplers.sweep(("unipc[order=3]",), (5,)) == ("unipc-5[order=3]",)


def test_sweep_names_meet_their_budgets():
    assert named_samplers.sweep(("ddim", "edm"), (5, 20)) == (
        "ddim-5",
        "ddim-20",
        "edm-3",
        "edm-10",
    )
    with pytest.raises(ValueError, match="unknown sweep sampler"):
        named_samplers.sweep(("langevin",), (5,))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--families", "ddpm,foo"], "unknown family 'foo'"),
        (["--datasets", "mnist"], "unknown dataset 'mnist'"),
        (["--samplers", "default,rk4"], "unknown sampler 'rk4'"),
        (["--samplers", "ode-heun"], "needs a step count"),
        (["--steps", "0"], "expected an integer >= 1"),
        (["--seeds", "0,0"], "distinct seeds"),
        (["--seeds", f"0,{2**32}"], f"seeds <= 2**32 - 1 = {2**32 - 1}"),  # 2**32 would rerun 0
        (["--nll-tol", "2"], "expected a tolerance in (0, 1)"),
        (["--nfe", "5,x"], "expected NFE budgets"),
        (["--nfe", "1"], "budgets >= 3"),
        (["--nfe", f"5,{2**31}"], "budgets <= 2,147,483,647"),
        (["--sweep", "ddim,ancestral"], "unknown sweep sampler 'ancestral'"),
        (["--samplers", "unipc-10[order=9]"], "order must be 1, 2 or 3 for UniPC"),
        (["--samplers", "ddim-99999999999"], "step count must lie in [2, 2,147,483,647]"),
        (["--samplers", "dpm-10[grid=uniform]"], "grid must be one of"),
        (["--samplers", "ddim-20[speed=2]"], "option one of eta, grid, end, rho, denoise"),
        (["--samplers", "ddim-20[eta=x]"], "option eta of ddim is a float"),
        (["--samplers", "dpm-10[order=2,order=3]"], "option order is given twice"),
        (["--samplers", "ancestral[eta=1]"], "option one of denoise"),
        (["--sweep", "unipc[variant=bh9]"], "variant must be 'bh1' or 'bh2'"),
        (["--profile", "huge"], "invalid choice"),
        (["--out", ""], "--out must name a folder"),
        (["--presets", "case_study", "--families", "vp"], "--presets case_study has families"),
        (["--presets", "case_study", "--datasets", "moons"], "nine_gaussians only"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("zoo-bench: error:") and message in err


@pytest.mark.parametrize(
    "args",
    [
        ["--train-steps", "-5"],
        ["--train-steps", str(2**30)],
        ["--runs", "1,0"],
        ["--samples", "0"],
        ["--samples", str(2**31)],
        ["--repeats", "x"],
    ],  # fmt: skip
)
def test_the_speed_benchmark_names_a_bad_flag_without_a_traceback(args, capsys):
    from zoo.bench.commands import speed

    status = speed.main(args)
    assert status == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(f"zoo-bench speed: error: argument {args[0]}: expected"), last


@pytest.mark.parametrize(
    "args, message",
    [
        (["--samples", str(10**14)], "--samples: expected an integer <= 2,147,483,647"),
        (["--steps", str(2**31)], "--steps: expected an integer <= 2,147,483,647"),
        (["--samples", "100000000"], "--samples 100,000,000: sampling would hold at least"),
        (["--nll-points", "100000000"], "--nll-points 100,000,000: likelihood would hold"),
        (["--batch-size", "100000000"], "--batch-size 100,000,000: training would hold"),
        (["--seeds", ",".join(map(str, range(4000)))], "--seeds 4,000: training would hold"),
    ],
)
def test_what_cannot_fit_in_memory_is_refused_before_it_runs(args, message, monkeypatch):
    # parse, not main: were the check to let one through, nothing starts to fill the memory
    monkeypatch.setattr(limits, "machine_memory", lambda: 2**30)
    with pytest.raises(cli.UsageError) as error:
        cli.parse(["--families=ddpm", *args])
    assert message in str(error.value) and "\n" not in str(error.value), error.value
    if "would hold" in message:
        assert "more than this machine's 1 GiB of memory; expected at most about" in str(
            error.value
        )


def test_a_long_run_that_fits_is_not_refused(monkeypatch):
    monkeypatch.setattr(limits, "machine_memory", lambda: 16 * 2**30)
    config = cli.parse(["--families=ddpm", "--steps=1000000000", "--samples=1000000"])
    assert (config.steps, config.num_samples) == (10**9, 10**6)


def test_an_unwritable_output_folder_is_one_line_and_exit_code_2(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        main(_args(tmp_path / "file" / "out"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write to output folder" in err


def test_the_command_line_exits_2_without_a_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "zoo.bench", "--families", "foo"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
