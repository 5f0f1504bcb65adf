"""``make bench-gpu`` (``zoo-bench gpu``): its tiny budget end to end on the CPU, the
folder it names, and its refusal to run the GPU-sized profile on a CPU."""

import datetime
import itertools
import json
import math
import time
import types

import jax
import numpy as np
import pandas as pd
import pytest

from zoo import presets
from zoo.bench.commands import gpu, speed
from zoo.bench.plan import profiles


def _today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def test_the_gpu_profile_is_the_whole_comparison():
    profile = profiles.PROFILES["gpu"]
    assert profile.families == presets.FAMILIES
    assert profile.datasets == profiles.TOY_DATASETS and len(profile.datasets) == 6
    assert len(profile.seeds) == 3
    assert "default" in profile.samplers


def test_tiny_run_writes_one_folder_named_by_device_and_date(tmp_path, capsys):
    before = _today()
    assert gpu.main(["--tiny", "--root", str(tmp_path)]) == 0
    dates = {before, _today()}  # a run across midnight may carry either date

    (out,) = tmp_path.iterdir()
    kind = jax.devices()[0].device_kind.lower()
    assert out.name in {f"gpu-tiny-{kind}-{d.isoformat()}" for d in dates}

    # the gpu profile's families on the tiny budget's datasets (some of the profile's) and seed
    profile = profiles.PROFILES["gpu"]
    assert set(gpu.TINY_DATASETS) < set(profile.datasets)
    assert set(gpu.TINY_FAMILIES) < set(profile.families)
    results = pd.read_csv(out / "results.csv")
    runs = list(zip(results.family, results.dataset, results.seed, strict=True))
    assert sorted(runs) == sorted(itertools.product(gpu.TINY_FAMILIES, gpu.TINY_DATASETS, [0]))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["profile"] == "gpu"

    # the speed benchmark's output as it printed it, and its tables as rows
    speed_md = (out / "speed.md").read_text()
    assert speed_md in capsys.readouterr().out
    speed = pd.read_csv(out / "speed.csv")
    (repeats,) = [int(f.split("=")[1]) for f in gpu.TINY_SPEED if f.startswith("--repeats=")]
    assert speed.table.nunique() >= 2  # training and sampling
    for _, table in speed.groupby("table"):
        # At the tiny budget a pair's 20 steps can drown in the machine's noise: the command
        # then leaves that pair out (its ratio NaN, its count of pairs 0), never a rate <= 0.
        numbers = table.drop(columns="pairs", errors="ignore").select_dtypes("number")
        values = numbers.to_numpy()
        measured = values[~np.isnan(values)]
        assert measured.size > 0 and (measured > 0).all()
        if "pairs" in table:
            assert table.pairs.dropna().between(0, repeats).all()

    record = json.loads((out / "bench_gpu.json").read_text())
    assert record["tiny"] is True and record["device_kind"] == jax.devices()[0].device_kind
    assert 0 < record["comparison_s"] <= record["total_s"]


def test_the_gpu_profile_is_refused_on_a_cpu(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")  # on any machine
    assert gpu.main(["--root", str(tmp_path)]) == 2
    assert "--tiny" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_missing_package_is_named_before_any_work(tmp_path, capsys, monkeypatch):
    assert gpu.missing({"json": "json", "no_such_module_zoo": "no-such-pkg"}) == ["no-such-pkg"]
    monkeypatch.setitem(gpu.NEEDED, "no_such_module_zoo", "no-such-pkg")
    assert gpu.main(["--tiny", "--root", str(tmp_path)]) == 2
    assert "no-such-pkg" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kinds, expected",
    [
        (["cpu"], "cpu"),
        (["NVIDIA H200"], "nvidia-h200"),
        (["NVIDIA H100 80GB HBM3"] * 8, "8x-nvidia-h100-80gb-hbm3"),
    ],
)
def test_device_kind_is_a_folder_name(kinds, expected):
    devices = [types.SimpleNamespace(device_kind=k) for k in kinds]
    assert gpu.device_kind(devices) == expected


def test_folder_name_has_the_kind_and_the_date():
    date = datetime.date(2026, 12, 1)
    assert gpu.folder_name("nvidia-h200", date, tiny=False) == "gpu-nvidia-h200-2026-12-01"
    assert gpu.folder_name("cpu", date, tiny=True) == "gpu-tiny-cpu-2026-12-01"


def test_speed_tables_are_written_as_rows_named_by_their_table(tmp_path):
    tables = {
        "Training vp": pd.DataFrame({"runs": [1, 8], "steps/s": [1490.0, 703.5]}),
        "Sampling": pd.DataFrame({"sampler": ["EM(steps=3)"], "NFE": [3]}),
    }
    speed.save(tmp_path, "as printed\n", tables)
    rows = pd.read_csv(tmp_path / "speed.csv")
    assert rows.columns[0] == "table"
    assert list(rows.table) == ["Training vp", "Training vp", "Sampling"]
    assert rows["steps/s"].tolist()[:2] == [1490.0, 703.5] and rows.NFE.tolist()[2] == 3
    assert (tmp_path / "speed.md").read_text() == "as printed\n"


def test_a_timed_difference_that_is_not_positive_is_no_speed():
    # At tiny budgets the machine's noise can exceed the 2N-step difference: no negative or
    # infinite steps/s, and medians over the pairs that measured something.
    assert math.isnan(speed._rate(100, -0.01)) and math.isnan(speed._rate(100, 0.0))
    assert speed._median([math.nan, 2.0, 4.0]) == 3.0 and math.isnan(speed._median([math.nan]))


def test_the_pairs_ratios_give_the_median_and_its_range():
    # fit against the fused loop pair by pair: 1.1 and 0.9, the third pair's fused rate lost
    # to noise (NaN), so two pairs, median 1.0; a loop with no measured pair is all NaN
    nan = math.nan
    rates = {
        ("fused", "wall"): [100.0, 200.0, nan],
        ("fit", "wall"): [110.0, 180.0, 50.0],
        ("fit, EMA every step", "wall"): [nan, nan, nan],
    }
    fit, every_step = speed.ratio_ranges(rates)
    assert fit == {
        "loop": "fit / fused", "clock": "wall", "median": 1.0, "min": 0.9, "max": 1.1, "pairs": 2
    }  # fmt: skip
    assert every_step["pairs"] == 0 and math.isnan(every_step["median"])
    assert math.isnan(every_step["min"]) and math.isnan(every_step["max"])


@pytest.mark.parametrize("deadline, expected", [(0.0, ("a",)), (1e9, ("a", "b", "c"))])
def test_families_run_in_order_until_the_deadline_then_one_report(deadline, expected):
    calls = []
    bench = lambda flags: calls.append(flags) or 0
    start = time.perf_counter()
    assert gpu.compare(bench, ["--x"], ("a", "b", "c"), deadline, start) == expected
    each = [["--x", f"--families={f}", "--no-figures"] for f in expected]
    assert calls == [*each, ["--x", f"--families={','.join(expected)}"]]


def test_a_failing_family_ends_the_comparison_with_its_status():
    calls = []
    bench = lambda flags: calls.append(flags) or (3 if "--families=b" in flags else 0)
    assert gpu.compare(bench, [], ("a", "b", "c"), 1e9, time.perf_counter()) == 3
    assert len(calls) == 2


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--runs=99999999", "--runs: 99,999,999 runs hold at least"),
        ("--samples=2000000000", "--samples 2,000,000,000: would hold at least"),
        ("--runs=1,1", "expected distinct run counts"),
        ("--sample-steps=1", "expected an integer >= 2"),
    ],
)
def test_the_speed_benchmark_refuses_what_cannot_run_before_compiling(flag, message, capsys):
    status = speed.main([flag])
    assert status == 2
    assert message in capsys.readouterr().err
