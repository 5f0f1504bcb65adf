"""Your data, your network, and rerunning a result from its folder: ``zoo-bench --data``,
``--net``, ``--lr``/``--batch-size``/``--width`` and ``--config <folder>/config.toml``, on a
tiny budget."""

import dataclasses
import json
import math
import shutil
import tomllib

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import zoo
from zoo.bench.commands.compare import main
from zoo.bench.plan import cli, config_file, matrix, networks, points
from zoo.bench.report import files

TIMINGS = ["train_s", "sample_s"]  # wall times: all that may differ between two runs
NET = "tests.user_net:factory"


def _points(path, n=120, d=3):
    """``n`` points in ``d`` dimensions, far from unit scale (the harness standardises them)."""
    rng = np.random.default_rng(0)
    x = 40.0 + 25.0 * np.concatenate(
        [rng.normal(-1, 0.2, (n // 2, d)), rng.normal(1, 0.2, (n - n // 2, d))]
    )
    np.save(path, x)
    return path


def _tiny(data, out, *extra):
    return [
        f"--data={data}",
        f"--net={NET}",
        "--families=ddpm",
        "--seeds=0",
        "--steps=200",
        "--samplers=ddim-5",
        "--samples=16",
        "--lr=3e-3",
        "--batch-size=16",
        "--no-figures",
        f"--out={out}",
        *extra,
    ]


def _summary(out):
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny benchmark of a user net on user points."""
    folder = tmp_path_factory.mktemp("user")
    data = _points(folder / "blobs.npy")
    assert main(_tiny(data, folder / "out")) == 0
    return folder / "out"


def test_user_points_are_a_dataset_scored_against_held_out_points(finished):
    results = pd.read_csv(finished / "results.csv")
    assert list(results.dataset) == ["blobs"] and list(results.status) == ["ok"]
    # Only sample metrics: nothing that needs the data's density, entropy or modes.
    assert not set(points.NEEDS_DISTRIBUTION) & set(results.columns)
    assert results.nll_status[0] == points.NO_LIKELIHOOD
    assert results[list(points.METRICS)].notna().all().all()
    floor = pd.read_csv(finished / "noise_floor.csv")
    assert len(floor) == 1 and floor.w2[0] > 0  # two halves of 24 held-out points, 12 each
    assert "12 each (24 held out of 120)" in (finished / "results.md").read_text()
    assert list(results.n) == [12]  # of the 16 samples drawn, those scored against 12 points


def test_the_user_net_is_the_network_trained(finished):
    run = next((finished / "cache" / "runs" / "ddpm" / "blobs").glob("*.npz"))
    names = list(np.load(run).keys())
    assert any("user_mlp" in n for n in names), names
    assert not any("x_in" in n for n in names)  # the zoo's ScoreNet is not there


def test_config_toml_holds_the_whole_config(finished):
    settings = tomllib.loads((finished / config_file.NAME).read_text())
    assert settings["data"].endswith("blobs.npy") and settings["net"] == NET
    assert (settings["learning_rate"], settings["batch_size"]) == (3e-3, 16)
    assert settings["datasets"] == ["blobs"] and settings["steps"] == 200
    assert "width" not in settings  # not set: the preset's, said in a comment
    assert "# width is not set" in (finished / config_file.NAME).read_text()
    assert {"python", "zoo", "jax", "dm-haiku", "optax", "diffrax"} <= set(settings["versions"])


def test_a_rerun_from_config_toml_reuses_its_folder_and_recomputes_the_same_table(
    finished, tmp_path
):
    here = tmp_path / "here"
    shutil.copytree(finished, here)
    assert main([f"--config={here / config_file.NAME}"]) == 0
    summary = _summary(here)
    assert (summary["runs_trained"], summary["cells_computed"], summary["cells_reused"]) == (
        0,
        0,
        1,
    )

    elsewhere = tmp_path / "elsewhere"
    assert main([f"--config={finished / config_file.NAME}", f"--out={elsewhere}"]) == 0
    assert _summary(elsewhere)["cells_computed"] == 1
    first, again = (
        pd.read_csv(p / "results.csv").drop(columns=TIMINGS) for p in (finished, elsewhere)
    )
    pd.testing.assert_frame_equal(first, again)


def test_lr_batch_size_and_width_change_the_run_keys(tmp_path):
    data = _points(tmp_path / "blobs.npy")
    base = cli.parse([f"--data={data}", "--families=vp", "--seeds=0"])
    keys = {}
    for flags in ([], ["--lr=1e-4"], ["--batch-size=32"], ["--width=64"], [f"--net={NET}"]):
        config = cli.parse([f"--data={data}", "--families=vp", "--seeds=0", *flags])
        keys[tuple(flags)] = (
            matrix.make(config).run_keys[("vp", "blobs", 0)],
            files.config_id(config),
        )
    assert len({k for k, _ in keys.values()}) == len(keys)  # every change trains again
    assert len({c for _, c in keys.values()}) == len(keys)
    preset = matrix.make(
        cli.parse([f"--data={data}", "--families=vp", "--lr=1e-4", "--batch-size=32"])
    )
    used = preset.presets["vp"]["blobs"]
    assert (used.learning_rate, used.batch_size) == (1e-4, 32)
    assert base.learning_rate is None and base.width is None  # None: the preset's own


def test_every_setting_reads_back_from_config_toml(tmp_path):
    flags = ["--profile=standard", "--families=vp,ncsn", "--datasets=moons,digits",
             "--seeds=3,1", "--steps=4000", "--samplers=default,ode", "--sweep=ddim",
             "--nfe=5,10", "--samples=50", "--nll-points=20", "--nll-images=0",
             "--nll-tol=1e-4", "--channels=24", "--width=64", "--lr=1e-4", "--batch-size=32",
             "--keep-steps=1000,2000", "--oracle", "--no-figures"]  # fmt: skip
    config = cli.parse(flags)
    path = config_file.write(config, tmp_path)
    assert cli.parse([f"--config={path}"]) == dataclasses.replace(config, out=str(tmp_path))
    overridden = cli.parse([f"--config={path}", "--steps=5000", "--out=elsewhere"])
    assert (overridden.steps, overridden.out, overridden.width) == (5000, "elsewhere", 64)


def test_config_toml_round_trips_through_tomllib():
    top = {
        "text": 'a "quoted" path\\ with ünïcode',
        "count": 3,
        "rate": 1e-05,
        "big": 128000.0,
        "flag": False,
        "names": ["ddpm", "vp"],
        "empty": [],
        "seeds": [0, 1],
        "infinite": math.inf,
    }
    tables = {"versions": {"jax": "0.10.2", "python": "3.11.7"}}
    assert tomllib.loads(config_file.dumps(top, tables)) == {**top, **tables}


def _one_line_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("zoo-bench: error:"), err
    return err


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.npy", None, "does not exist"),
        ("points.txt", "1,2\n", "expected a .npy, .npz, .csv file"),
        ("flat.npy", np.arange(200.0), "expected N x d points (a 2-D array)"),
        ("cube.npy", np.zeros((200, 2, 2)), "expected N x d points (a 2-D array)"),
        (
            "holes.npy",
            np.where(np.arange(400).reshape(200, 2) == 7, np.nan, 1.0),
            "NaN or inf in 1 of 200",
        ),
        ("few.npy", np.zeros((50, 2)), f"at least {points.MIN_POINTS} points, got 50"),
        # finite in float64, but standardising it overflows: not a model that diverged
        ("huge.npy", np.arange(400.0).reshape(200, 2) * 1e300, "variance overflows"),
        ("words.csv", "x,y\n1,a\n", "cannot read N x d numbers"),
        ("moons.npy", np.zeros((200, 2)), "stem 'moons' names a built-in dataset"),
        # a dataset name with a comma: config.toml's rerun would read two datasets
        ("my,data.npy", np.zeros((200, 2)), "expected a stem without commas"),
    ],
)
def test_a_bad_data_file_is_one_line_naming_data(name, content, message, tmp_path, capsys):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        np.save(path, content)
    err = _one_line_error([f"--data={path}"], capsys)
    assert "--data" in err and message in err


def test_config_toml_of_user_points_runs_again(tmp_path):
    data = _points(tmp_path / "my data.npy")
    config = cli.parse([f"--data={data}", "--families=vp", "--seeds=0"])
    path = config_file.write(config, tmp_path)
    assert cli.parse([f"--config={path}"]) == dataclasses.replace(config, out=str(tmp_path))


def test_a_csv_with_a_header_reads_as_points(tmp_path):
    x = np.random.default_rng(1).normal(size=(100, 2))
    np.savetxt(tmp_path / "pts.csv", x, delimiter=",", header="a,b", comments="")
    np.testing.assert_allclose(points.read(tmp_path / "pts.csv"), x)
    np.savez(tmp_path / "pts.npz", x=x)
    np.testing.assert_array_equal(points.read(tmp_path / "pts.npz"), x)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("tests.user_net", "expected package.module:factory"),
        ("tests.no_such_module:factory", "cannot import module 'tests.no_such_module'"),
        ("tests.user_net:missing", "has no attribute 'missing'"),
        ("tests.user_net:NOT_A_FACTORY", "is a int, not callable; expected a factory"),
    ],
)
def test_a_bad_net_spec_is_one_line_naming_net(spec, message, capsys):
    err = _one_line_error([f"--net={spec}"], capsys)
    assert "--net" in err and message in err


@pytest.mark.parametrize(
    "factory, message, cause",
    [
        ("raising_factory", "factory() raised RuntimeError: no weights file here", "RuntimeError"),
        ("none_factory", "factory() returned None; expected a module or function", None),
        ("needs_width_factory", "factory() cannot be called without arguments", None),
        ("raising_net_factory", "net(x, t, is_training) raised KeyError", "KeyError"),
        ("wrong_shape_factory", r"maps x of shape (2, 2) to (2, 3); expected an array", None),
    ],
)
def test_a_net_that_breaks_the_contract_is_one_message_naming_it(factory, message, cause, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([f"--net=tests.user_net:{factory}", "--datasets=moons"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    first, *below = err.splitlines()
    assert first.startswith(f"zoo-bench: error: --net: tests.user_net:{factory}: "), err
    assert message in first, err
    assert "haiku" not in err and "jax" not in err  # no frame from deep inside
    if cause is None:
        assert not below, err
    else:  # the user's own exception, with the frame of their file that raised it
        assert below[-1].startswith(cause) and "user_net.py" in err, err


def test_a_net_module_that_fails_to_import_is_named_with_its_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "broken_net.py").write_text("import math\n\nmath.sqrt(-1)\n")
    monkeypatch.syspath_prepend(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["--net=broken_net:factory"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith("zoo-bench: error: --net: cannot import module 'broken_net'"), err
    assert "it raised ValueError: math domain error" in first
    assert err.splitlines()[-1] == "ValueError: math domain error"
    assert 'broken_net.py", line 3' in err and "importlib" not in err


def test_a_bad_config_file_is_one_line_naming_config(tmp_path, capsys):
    (tmp_path / "config.toml").write_text('profile = "quick"\nsteps = 0\n')
    err = _one_line_error([f"--config={tmp_path / 'config.toml'}"], capsys)
    assert "--config" in err and "steps: expected an integer >= 1, got 0" in err
    (tmp_path / "config.toml").write_text("learning_rat = 0.1\n")
    err = _one_line_error([f"--config={tmp_path / 'config.toml'}"], capsys)
    assert "unknown settings learning_rat" in err
    assert "--width sets the zoo's ScoreNet" in _one_line_error(
        [f"--net={NET}", "--width=8"], capsys
    )


def test_a_network_that_breaks_the_contract_is_named():
    # Loaded as --net loads it (the repository's root on sys.path, whatever runs pytest).
    wrong = networks.load("tests.user_net:wrong_shape_factory")
    model = zoo.transform(zoo.DDPM, schedule=zoo.sdes.ddpm_linear(1e-4, 0.02, 10), net=wrong)
    with pytest.raises(ValueError, match=r"net: the network maps x of shape \(4, 2\) to \(4, 3\)"):
        model.init(jnp.zeros(2, jnp.uint32), jnp.zeros((4, 2)))


@pytest.mark.filterwarnings("error::UserWarning")  # a warning would be a second line
def test_an_empty_csv_is_one_line_saying_it_has_no_points(tmp_path, capsys):
    path = tmp_path / "empty.csv"
    path.write_text("")
    err = _one_line_error([f"--data={path}"], capsys)
    assert f"at least {points.MIN_POINTS} points, got 0" in err
