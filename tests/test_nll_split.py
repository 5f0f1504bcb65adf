"""The NLL split reads each cached run as the model it was trained as."""

import functools

import jax
import pytest

import zoo
from zoo import nets, presets
from zoo.bench import cache
from zoo.bench.commands import nll_split


def test_each_model_is_rebuilt_from_its_runs_recorded_config(tmp_path):
    """A run trained at another network width (zoo-bench --width) is read as that model, not
    as the family's preset, whose parameters would not fit it."""
    model = presets.toy("vp").model
    narrow = zoo.transform(
        model.family, **{**model.config, "net": functools.partial(nets.ScoreNet, width=16)}
    )
    state, _ = zoo.train.fit(narrow, zoo.data.nine_gaussians(), steps=2, seeds=[0], progress=False)
    stem = tmp_path / "cache" / "runs" / "vp" / "nine_gaussians" / "seed0-0123456789ab"
    cache.save_run(stem, jax.tree_util.tree_map(lambda a: a[0], state), narrow)
    assert repr(nll_split._model(stem).config) == repr(narrow.config)  # partials: by value
    (stem.parent / "seed1-0123456789ab.json").write_text("{}")
    with pytest.raises(SystemExit, match="cannot rebuild the model of the cached run"):
        nll_split._model(stem.parent / "seed1-0123456789ab")
