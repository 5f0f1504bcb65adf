"""Quality per training step (--keep-steps) and the error split with the exact score
(--oracle) through the benchmark's command line, on a tiny budget."""

import dataclasses
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from zoo import data, presets, samplers
from zoo.bench.commands import nll_split
from zoo.bench.commands.compare import main
from zoo.bench.judge import evaluation, oracle
from zoo.bench.plan import cli, limits, profiles

NINE = data.nine_gaussians()
# A VP process: with the exact score DPM-Solver++ reaches the floor on it (a VE process with
# sigma_max = 10 stays a little above: its prior is not quite the noised data's marginal).
TINY = [
    "--families=vp",
    "--datasets=nine_gaussians,checkerboard",
    "--seeds=0",
    "--steps=200",
    "--samplers=default",
    "--sweep=dpm",
    "--nfe=20",
    "--samples=500",
    "--nll-points=100",
    "--nll-tol=1e-3",  # the machinery, not the likelihood's convergence: 1e-5 takes 5x the NFE
    "--oracle",
    "--keep-steps=100,200",
]
TIMINGS = ["train_s", "sample_s"]


def _run(out, *extra) -> int:
    return main([*TINY, f"--out={out}", *extra])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle") / "out"
    assert _run(out) == 0
    return out


def test_oracle_columns_only_where_there_is_an_exact_score(finished):
    results = pd.read_csv(finished / "results.csv")
    columns = ["oracle_sliced_w2", "oracle_energy", "oracle_mode_kl"]
    mixture = results[results.dataset == "nine_gaussians"]
    board = results[results.dataset == "checkerboard"]
    assert (mixture.oracle_status == "ok").all() and mixture[columns].notna().all().all()
    assert board[[*columns, "oracle_status"]].isna().all().all()
    assert "exact-score sliced W2" in (finished / "results.md").read_text()
    nfe = (finished / "nfe.md").read_text()
    assert "| dpm, exact score" in nfe and "| default, exact score" in nfe
    errors = pd.read_csv(finished / "score_error.csv")
    assert set(errors.dataset) == {"nine_gaussians"} and len(errors) == len(oracle.NOISE_LEVELS)
    assert (errors.score_error > 0).all()
    names = {p.name for p in finished.iterdir()}
    assert {"score_error_nine_gaussians.png", "nfe_nine_gaussians.png"} <= names
    assert "score_error_checkerboard.png" not in names


def test_dpm_solver_with_the_exact_score_is_at_the_noise_floor(finished):
    floor = pd.read_csv(finished / "noise_floor.csv")
    floor = floor[floor.dataset == "nine_gaussians"].sliced_w2
    results = pd.read_csv(finished / "results.csv").set_index(["dataset", "sampler"])
    exact = results.loc[("nine_gaussians", "dpm-20"), "oracle_sliced_w2"]
    assert exact < floor.mean() + 3 * floor.std(), (exact, floor.mean(), floor.std())


def test_the_last_kept_step_is_the_final_model(finished):
    kept = pd.read_csv(finished / "steps.csv")
    assert sorted(kept.step.unique()) == [100, 200] and (kept.status == "ok").all()
    assert kept.groupby("dataset").step.count().to_dict() == {
        "checkerboard": 2,
        "nine_gaussians": 2,
    }
    final = kept[kept.step == 200].set_index("dataset").sliced_w2
    results = pd.read_csv(finished / "results.csv")
    default = results[results.sampler == "default"].set_index("dataset").sliced_w2
    pd.testing.assert_series_equal(final.sort_index(), default.sort_index(), rtol=1e-6)
    assert "### nine_gaussians: sliced W2 / floor" in (finished / "steps.md").read_text()
    assert (finished / "steps_nine_gaussians.png").exists()


def test_a_resumed_run_with_the_oracle_gives_the_same_results(finished, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    cache = out / "cache"
    for kind in ("oracle", "steps", "score_error", "cells"):
        next(cache.joinpath(kind).rglob("*.json")).unlink()
    assert _run(out) == 0
    for name in ("results.csv", "steps.csv", "score_error.csv"):
        before, after = (pd.read_csv(p / name) for p in (finished, out))
        drop = [c for c in TIMINGS if c in before]
        pd.testing.assert_frame_equal(before.drop(columns=drop), after.drop(columns=drop))


def test_the_exact_score_has_no_error_and_an_offset_its_own():
    sde = presets.toy("vp").model.sde
    exact = lambda x, t: NINE.score(x, t, sde)
    rows = oracle.score_error(exact, NINE, sde, points=200)
    np.testing.assert_allclose([r["noise"] for r in rows], oracle.NOISE_LEVELS, rtol=1e-4)
    assert max(r["score_error"] for r in rows) < 1e-10
    # s + d / sigma_t is off by |d|^2 at every level once weighted by sigma_t^2.
    d = jnp.array([0.3, -0.4])
    offset = lambda x, t: exact(x, t) + d / sde.marginal(t)[1]
    errors = [r["score_error"] for r in oracle.score_error(offset, NINE, sde, points=200)]
    np.testing.assert_allclose(errors, 0.25, rtol=1e-4)


def test_the_nll_split_reproduces_the_benchmark_and_sums_to_the_excess(finished):
    nll_split.main([str(finished), "--families=vp", "--datasets=nine_gaussians",
                    "--nll-points=100", "--cuts=1"])  # fmt: skip
    split = pd.read_csv(finished / "nll_split.csv")
    bands = split[~split.band.isin(["exact", "data"])]
    exact, data = (split[split.band == name].nats.item() for name in ("exact", "data"))
    assert list(bands.band) == ["0-1", "1+"]
    row = pd.read_csv(finished / "results.csv").query("family == 'vp' and sampler == 'default'")
    # L(0) is the benchmark's likelihood of the same held-out points; the bands telescope.
    learned = row.query("dataset == 'nine_gaussians'").excess_nll.item()
    np.testing.assert_allclose(bands.nats.sum() + exact, learned, atol=1e-5)
    # The exact score's NLL is the data's own NLL of the points, up to the ODE and t_min.
    assert abs(exact - data) < 0.01


@pytest.mark.parametrize(
    "bad, named",
    [(["--families=vpx"], "--families"), (["--families=vp", "--datasets=moonz"], "--datasets"),
     (["--families=vp", "--cuts=a"], "--cuts"), (["--families=vp", "--cuts=0,1"], "--cuts")],
)  # fmt: skip
def test_the_nll_split_names_a_bad_argument(finished, bad, named, capsys):
    status = nll_split.main([str(finished), *bad])
    last = capsys.readouterr().err.splitlines()[-1]
    assert status == 2 and named in last, last


def test_the_nll_split_names_a_damaged_run(finished, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    run = next((out / "cache" / "runs" / "vp" / "nine_gaussians").glob("*.npz"))
    run.write_bytes(run.read_bytes()[:100])
    with pytest.raises(SystemExit, match=f"the cached run {run} is damaged"):
        nll_split.main([str(out), "--families=vp", "--datasets=nine_gaussians"])


def test_the_nll_split_refuses_more_points_than_memory_holds(tmp_path, capsys, monkeypatch):
    (tmp_path / "cache" / "runs").mkdir(parents=True)
    monkeypatch.setattr(limits, "machine_memory", lambda: 2**30)
    status = nll_split.main([str(tmp_path), "--families=vp", "--nll-points=100000000"])
    last = capsys.readouterr().err.splitlines()[-1]
    assert status == 2 and "--nll-points 100,000,000: would hold at least" in last


@pytest.mark.parametrize(
    "bad, named",
    [(["--nll-tol=-1"], "--nll-tol"), (["--nll-tol=1"], "--nll-tol"),
     (["--nll-points=0"], "--nll-points"), (["--nll-points=1.5"], "--nll-points")],
)  # fmt: skip
def test_the_nll_split_refuses_settings_that_give_a_wrong_table(tmp_path, bad, named, capsys):
    (tmp_path / "cache" / "runs").mkdir(parents=True)  # a folder it reads, holding no runs
    status = nll_split.main([str(tmp_path), "--families=vp", *bad])
    last = capsys.readouterr().err.splitlines()[-1]
    assert status == 2 and f"argument {named}: expected" in last, last


def test_the_nll_split_reads_the_folders_tolerance_or_says_it_needs_one(tmp_path, capsys):
    (tmp_path / "cache" / "runs").mkdir(parents=True)
    (tmp_path / "config.toml").write_text('profile = "quick"\nnll_tol = 1e-05\n')
    assert nll_split.folder_tolerance(tmp_path) == 1e-5
    for text, said in [('profile = "quick"\n', "gives no nll_tol; pass --nll-tol"),
                       ("nll_tol = 2.0\n", "nll_tol: expected a tolerance in (0, 1)"),
                       ("nll_tol = [\n", "is not valid TOML")]:  # fmt: skip
        (tmp_path / "config.toml").write_text(text)
        assert nll_split.main([str(tmp_path), "--families=vp"]) == 2
        last = capsys.readouterr().err.splitlines()[-1]
        assert said in last, last
    (tmp_path / "config.toml").unlink()  # a folder without one, and no --nll-tol
    assert nll_split.main([str(tmp_path), "--families=vp"]) == 2
    assert "cannot read" in capsys.readouterr().err.splitlines()[-1]


class _WrongAboveOne:
    """The exact score of nine Gaussians under VP, 20% too large where sigma/alpha >= 1."""

    sde = presets.toy("vp").model.sde

    def score(self, params, x, t):
        ratio = jnp.sqrt(self.sde.variance(t)) * jnp.exp(-self.sde.log_alpha(t))
        return jnp.where(ratio < 1.0, 1.0, 1.2) * NINE.score(x, t, self.sde)


def test_the_nll_split_charges_the_band_where_the_score_is_wrong():
    x = evaluation.heldout(NINE, 50)
    fn = nll_split.likelihood_fn(_WrongAboveOne(), NINE, 1e-3)
    nll = [fn(None, x, c) for c in (0.0, 1.0, np.inf)]
    below, above = nll[0] - nll[1], nll[1] - nll[2]
    assert abs(below) < 1e-3 < 0.05 < abs(above)


def test_levels_beyond_a_process_are_left_out():
    ncsn = presets.toy("ncsn").model.sde  # sigma from 0.01 to 10
    rows = oracle.score_error(lambda x, t: NINE.score(x, t, ncsn), NINE, ncsn, (0.001, 1.0, 50.0))
    assert len(rows) == 1


def test_a_discrete_schedule_is_measured_at_its_nearest_trained_level():
    ncsn = presets.toy("ncsn").model.sde  # 100 levels, sigma 10 to 0.01 (~3 per tenth of a decade)
    rows = oracle.score_error(lambda x, t: NINE.score(x, t, ncsn), NINE, ncsn, points=10)
    log_sigmas = np.log(np.asarray(ncsn.sigmas))
    half_spacing = np.log(10.0) * 3 / 99 / 2
    for row, asked in zip(rows, oracle.NOISE_LEVELS, strict=True):
        assert row["t"] in set(np.asarray(ncsn.level_times).tolist())
        # a level's own sigma, and the nearest one (two can tie to float32 rounding)
        assert np.min(np.abs(log_sigmas - np.log(row["noise"]))) < 1e-5
        assert abs(np.log(row["noise"] / asked)) <= half_spacing + 1e-5


@dataclasses.dataclass(frozen=True)
class _Noise(samplers.Sampler):
    """Returns the standard normal draw of the key it is given: shows which key that is."""

    denoise: bool = False

    def sample(self, sde, score_fn, key, shape):
        return samplers.Samples(jax.random.normal(key, shape), jnp.asarray(0))


def test_the_exact_score_draws_the_noise_the_model_draws():
    model, key = presets.toy("vp").model, jax.random.PRNGKey(4)
    params = model.init(key, np.zeros((8, 2), np.float32))
    learned = model.sample(params, key, (16,), _Noise()).x
    exact = oracle.sample(NINE, model.sde, _Noise(), key, 16).x
    np.testing.assert_array_equal(learned, exact)


def test_keep_steps_on_the_command_line():
    assert cli.parse(["--steps=6000", "--keep-steps=geometric"]).keep_steps == (
        1000,
        2000,
        4000,
        6000,
    )
    assert cli.parse(["--steps=4000", "--keep-steps=geometric"]).keep_steps == (1000, 2000, 4000)
    assert cli.parse(["--steps=300", "--keep-steps=300,100"]).keep_steps == (100, 300)
    assert all(not p.keep_steps and not p.oracle for p in profiles.PROFILES.values())
    for flag, message in [
        ("--keep-steps=150", "multiples of 100"),
        ("--keep-steps=400", "multiples of 100"),
        ("--keep-steps=often", "expected 'geometric'"),
    ]:
        with pytest.raises(cli.UsageError, match=message):
            cli.parse(["--steps=300", flag])
