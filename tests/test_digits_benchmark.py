"""Digits through the one harness (``zoo-bench --datasets digits``) on a tiny budget: the image
metrics, the write-up's DDPM beside a family without a digits preset, resuming, the plan of a
run with toys and digits together, and command-line errors."""

import dataclasses
import json
import re

import pandas as pd
import pytest

from zoo.bench.commands.compare import main
from zoo.bench.judge import evaluation
from zoo.bench.plan import cli, digits, matrix, points, profiles

TINY = [
    "--datasets=digits",
    "--families=writeup,vp-lw",
    "--seeds=0",
    "--steps=2",
    "--samplers=default,ddim-10",
    "--samples=10",
    "--nll-images=2",
    "--net=tests.user_net:one_level_unet",
]


def test_digits_run_through_the_harness_and_resume_to_the_same_results(tmp_path):
    out = tmp_path / "out"
    assert main([*TINY, f"--out={out}"]) == 0
    first = (out / "results.csv").read_bytes()
    results = pd.read_csv(out / "results.csv")
    # Only the image metrics: no toy column is written for a digits-only run.
    assert {"frechet", "class_kl", "confidence", "nearest_train", "bpd", "bpd_se"} <= set(results)
    assert "w2" not in results and "excess_nll" not in results
    writeup = results[results.family == digits.WRITEUP].set_index("sampler")
    assert list(writeup.status) == ["ok", "ok"]
    # The write-up's ancestral sampler visits its 200 levels (199 steps and the final
    # denoising step); DDIM-10 evaluates the same network 10 times.
    assert writeup.nfe["default"] == 200 and writeup.nfe["ddim-10"] == 10
    assert (writeup.bpd > 0).all() and (writeup.nll_nfe > 0).all()
    assert (writeup.class_kl >= 0).all() and (writeup.confidence <= 1).all()
    # vp-lw has no digits preset: its cells are skipped, not an error.
    lw = results[results.family == "vp-lw"]
    assert len(lw) == 2 and lw.status.str.startswith("skipped: no vp-lw preset").all()
    names = {p.name for p in out.iterdir()}
    assert "samples_digits.png" in names and "samples.png" not in names  # no toy densities
    floor = pd.read_csv(out / "noise_floor.csv")
    assert list(floor.dataset) == ["digits"] and floor.frechet.notna().all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs_trained"] == 1 and summary["cells_computed"] == 2
    assert re.search(r"\| writeup +\| ddim-10 +\| 1/1 ok", (out / "results.md").read_text())

    assert main([*TINY, f"--out={out}"]) == 0  # the same command again computes nothing
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs_trained"] == 0 and summary["cells_computed"] == 0
    assert summary["cells_reused"] == 2
    assert (out / "results.csv").read_bytes() == first


def test_toys_and_digits_train_apart_and_skip_the_other_kinds_families():
    config = dataclasses.replace(
        profiles.PROFILES["quick"],
        families=("ddpm", digits.WRITEUP),
        datasets=("moons", "digits", "checkerboard"),
        seeds=(0, 1),
        samplers=("default",),
        num_samples=10,
    )
    the_plan = matrix.make(config)
    # ddpm: one training call for the two toys (a ScoreNet), one for the digits (a UNet).
    assert the_plan.groups["ddpm"] == [
        {d: the_plan.presets["ddpm"][d] for d in ("moons", "checkerboard")},
        {"digits": the_plan.presets["ddpm"]["digits"]},
    ]
    assert [list(g) for g in the_plan.groups[digits.WRITEUP]] == [["digits"]]
    skipped = {(c.family, c.dataset) for c in the_plan.cells if isinstance(c.resolved, str)}
    assert skipped == {(digits.WRITEUP, "moons"), (digits.WRITEUP, "checkerboard")}
    assert len(the_plan.cells) == 2 * 3 * 2
    # A toy run's key is the one it has without digits beside it: the group is its kind's.
    toys_only = matrix.make(dataclasses.replace(config, datasets=("moons", "checkerboard")))
    assert toys_only.run_keys["ddpm", "moons", 1] == the_plan.run_keys["ddpm", "moons", 1]
    # One reference per dataset: the toy's true sample, the training digits.
    assert the_plan.references["moons"].shape == (10, 2)
    assert the_plan.references["digits"].shape[1:] == (8, 8, 1)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--datasets", "mnist"], "unknown dataset 'mnist'; choose from"),
        (["--families", "gan"], "unknown family 'gan'"),
        (["--channels", "12"], "expected a multiple of 8"),
        (["--nll-images", "-1"], "expected an integer >= 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert message in err


def test_the_digits_flags_reach_the_config():
    config = cli.parse(["--datasets", "digits", "--channels", "24", "--nll-images", "0"])
    assert (config.datasets, config.channels, config.nll_images) == (("digits",), 24, 0)


def test_each_kind_of_data_answers_every_call_of_the_harness():
    for module in (evaluation, digits, points):
        missing = [name for name in evaluation.KIND_API if not hasattr(module, name)]
        assert not missing, (module.__name__, missing)
    assert matrix.kind("digits") is digits and matrix.kind("moons") is evaluation
    # Any other name is a user's points file, which only a --data file of that stem provides.
    config = cli.parse(["--datasets", "moons"])
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        matrix.kind("mnist").load("mnist", config)
