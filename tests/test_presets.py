"""The presets build their models and samplers from the one family table: a toy or digits
preset is its table entry on the kind's network, a variant (``-lw``, ``-v``, ``-edm``) is its
base family with only what its suffix names changed, no two entries share a cache key, and the
case study and the MNIST preset keep the settings of the write-ups they reproduce (compared by
repr, as the benchmark's cache keys hash it)."""

import dataclasses
import functools
import types

import numpy as np
import optax
import pytest

import zoo
from zoo import data, images, models, presets, samplers, sdes
from zoo.bench.plan import named_samplers
from zoo.nets import ScoreNet, UNet

VE = sdes.VE(0.01, 10.0)
NCSN_100 = sdes.ncsn_geometric(10.0, 0.01, 100)
IMAGE = dict(event_shape=(8, 8, 1), net=UNet)
#: the settings of the write-ups the case study and the MNIST preset reproduce, as published
CASE_STUDY = {
    "ddpm": (
        models.DDPM,
        dict(schedule=sdes.ddpm_linear(1e-3, 0.02, 100), net=ScoreNet),
        samplers.Ancestral(),
    ),
    "ncsn": (
        models.NCSN,
        dict(schedule=sdes.ncsn_geometric(1.0, 0.01, 100), net=ScoreNet, predict="score"),
        samplers.AnnealedLangevin(steps_per_level=100, step_size=2e-5),
    ),
    "subvp": (
        models.ScoreSDE,
        dict(sde=sdes.SubVP(0.1, 10.0), net=ScoreNet),
        samplers.ProbabilityFlow(),
    ),
}


def _assert_builds(preset, expected):
    family, config, sampler = expected
    assert preset.model.family is family
    assert repr(preset.model.config) == repr(config)
    assert preset.model.sde == config.get("sde", config.get("schedule"))
    assert preset.sampler == sampler and repr(preset.sampler) == repr(sampler)


def _variant_of(name: str) -> tuple[str, dict]:
    """The base family of a table entry and the config keys its suffix changes."""
    base, *suffixes = name.split("-")
    changes = {
        "lw": {"weighting": "likelihood", "time_sampling": "importance"},
        "v": {"predict": "v"},
        "edm": {"predict": "edm"},
    }
    return base, {k: v for suffix in suffixes for k, v in changes[suffix].items()}


def test_the_family_names():
    assert presets.FAMILIES == ("ddpm", "ncsn", "vp", "subvp", "ve", "flow")
    sdes_ = ("vp", "subvp", "ve")
    assert presets.LIKELIHOOD_WEIGHTED == tuple(f"{f}-lw" for f in sdes_) + tuple(
        f"{f}-{p}-lw" for f in sdes_ for p in ("v", "edm")
    )
    assert presets.CASE_STUDY_FAMILIES == ("ddpm", "ncsn", "subvp")
    assert presets.PARAMETRISED == tuple(
        f"{f}-{p}" for f in ("ddpm", "ncsn", "vp", "subvp", "ve") for p in ("v", "edm")
    )
    lw = presets.LIKELIHOOD_WEIGHTED
    assert tuple(presets.FAMILY_TABLE) == (
        presets.FAMILIES + lw[:3] + presets.PARAMETRISED + lw[3:]
    )
    assert isinstance(presets.FAMILY_TABLE, types.MappingProxyType)  # read-only


def test_every_family_has_its_own_colour_and_label_in_every_figure():
    colors, labels = zoo.plotting.FAMILY_COLORS, zoo.plotting.FAMILY_LABELS
    assert list(colors) == list(labels) == ["data", *presets.FAMILIES]
    assert len(set(colors.values())) == len(colors) and len(set(labels.values())) == len(labels)
    for name in presets.FAMILIES:  # a preset's name finds its family's colour
        assert zoo.plotting.family_color(f"toy/{name}") == presets.FAMILY_TABLE[name].color


def test_parametrised_families_take_sigma_data_and_mean_from_their_data():
    for name, data_name in (("vp-edm", "nine_gaussians"), ("ve-edm", "moons")):
        preset = presets.toy(name, data=data_name)
        x = np.asarray(data.get(data_name).train_set(), np.float64)
        mean = x.mean(axis=0)
        assert preset.model.config["predict"] == "edm"
        np.testing.assert_allclose(preset.model.config["data_mean"], mean, rtol=5e-3)
        expected = np.sqrt(np.mean((x - mean) ** 2))  # about the mean, not about 0
        assert abs(preset.model.config["sigma_data"] / expected - 1) < 5e-3
    digits = presets.digits("vp-edm").model.config  # one mean per pixel
    assert np.shape(digits["data_mean"]) == zoo.images.Digits.event_shape
    assert presets.toy("ddpm-v").model.config["predict"] == "v"
    assert "sigma_data" not in presets.toy("ddpm-v").model.config


@pytest.mark.parametrize("family", list(presets.FAMILY_TABLE))
def test_a_toy_preset_is_its_table_entry_on_the_toy_network(family):
    entry = presets.FAMILY_TABLE[family]
    preset = presets.toy(family)
    assert preset.model.family is entry.model and preset.model.sde == entry.process
    assert preset.sampler == entry.toy_sampler
    assert repr(preset.model.config["net"]) == repr(functools.partial(ScoreNet, dropout=0.0))
    assert preset.name == f"toy/{family}" and preset.data is data.nine_gaussians()
    assert (preset.steps, preset.batch_size, preset.optimizer_fn) == (128_000, 256, None)
    moons = presets.toy(family, data="moons", steps=7)
    assert moons.data is data.moons() and moons.steps == 7
    assert moons.model.family is entry.model and moons.model.sde == entry.process


@pytest.mark.parametrize("family", list(presets.FAMILY_TABLE))
def test_a_variant_is_its_base_family_with_only_its_suffix_changed(family):
    base, changes = _variant_of(family)
    model, reference = presets.toy(family).model, presets.toy(base).model
    assert model.family is reference.family and model.sde == reference.sde
    config = {k: v for k, v in model.config.items() if k not in ("sigma_data", "data_mean")}
    assert config == {**reference.config, **changes}


def test_every_table_entry_is_a_model_of_its_own():
    # the cache keys a run by family and config: two entries alike would share their runs
    keys = {(presets.toy(f).model.family, repr(presets.toy(f).model.config))
            for f in presets.FAMILY_TABLE}  # fmt: skip
    assert len(keys) == len(presets.FAMILY_TABLE)


@pytest.mark.parametrize("family", presets.FAMILIES)
def test_a_digits_preset_is_its_table_entry_on_the_unet(family):
    entry = presets.FAMILY_TABLE[family]
    preset = presets.digits(family)
    assert preset.model.family is entry.model and preset.model.sde == entry.process
    assert preset.sampler == entry.digits_sampler
    assert preset.model.config["net"] is UNet and preset.model.event_shape == (8, 8, 1)
    assert preset.name == f"digits/{family}" and preset.data is images.digits()
    net = functools.partial(UNet, channels=8)
    small = presets.digits(family, net=net, steps=9)
    assert small.model.config["net"] is net and small.steps == 9


@pytest.mark.parametrize("family", list(CASE_STUDY))
def test_case_study_presets(family):
    preset = presets.case_study(family)
    _assert_builds(preset, CASE_STUDY[family])
    assert preset.name == f"case_study/{family}" and preset.data is data.nine_gaussians()
    assert (preset.steps, preset.batch_size, preset.learning_rate) == (128_000, 64, 1e-3)


def test_intro_and_the_mnist_writeup():
    intro = presets.intro()
    _assert_builds(
        intro,
        (
            models.DDPM,
            dict(schedule=sdes.ddpm_linear(0.1 / 100, 20.0 / 100, 100), net=ScoreNet),
            samplers.Ancestral(),
        ),
    )
    assert intro.data is data.two_circles() and intro.batch_size == 20
    writeup = presets.mnist_writeup()
    schedule = sdes.ddpm_linear(1e-4, 0.02, 200)
    _assert_builds(writeup, (models.DDPM, dict(schedule=schedule, **IMAGE), samplers.Ancestral()))
    assert writeup.optimizer_fn is optax.adam and writeup.learning_rate == 1e-4


def test_every_preset_reads_the_table(monkeypatch):
    """Change an entry of the table and every preset of that family follows."""
    ncsn = presets.FAMILY_TABLE["ncsn"]
    toy, image = samplers.AnnealedLangevin(steps_per_level=3), samplers.Ancestral(steps=7)
    written = dataclasses.replace(ncsn.case_study, sampler=samplers.DDIM(steps=4))
    changed = dataclasses.replace(
        ncsn,
        process=sdes.ncsn_geometric(5.0, 0.02, 10),
        toy_sampler=toy,
        digits_sampler=image,
        case_study=written,
    )
    table = types.MappingProxyType({**presets.FAMILY_TABLE, "ncsn": changed})
    monkeypatch.setattr(presets, "FAMILY_TABLE", table)
    assert presets.toy("ncsn").model.sde == sdes.ncsn_geometric(5.0, 0.02, 10)
    assert presets.toy("ncsn").sampler is toy
    assert presets.digits("ncsn").model.sde == sdes.ncsn_geometric(5.0, 0.02, 10)
    assert presets.digits("ncsn").sampler is image
    assert presets.case_study("ncsn").sampler == samplers.DDIM(steps=4)


def test_named_langevin_is_the_toy_ncsn_sampler():
    """``zoo-bench --samplers langevin`` takes its step rule from the table, not a copy."""
    resolved = named_samplers.resolve("langevin", NCSN_100, samplers.Ancestral())
    assert resolved == presets.FAMILY_TABLE["ncsn"].toy_sampler
    resolved = named_samplers.resolve("langevin-50", VE, samplers.Ancestral())
    assert resolved == dataclasses.replace(presets.FAMILY_TABLE["ncsn"].toy_sampler, levels=50)


def test_unknown_families_and_data_raise():
    with pytest.raises(
        ValueError, match=r"family must be one of \('ddpm', .*'ve-lw', .*'ve-edm'\)"
    ):
        presets.toy("ddim")
    with pytest.raises(ValueError, match=r"family must be one of \('ddpm', 'ncsn', 'vp', "):
        presets.digits("vp-lw")  # the likelihood-weighted families are for the toys only
    with pytest.raises(ValueError, match=r"family must be one of \('ddpm', 'ncsn', 'subvp'\)"):
        presets.case_study("ve")
    with pytest.raises(ValueError, match=r"data must be a 2-D toy .*'digits'.*\(8, 8, 1\)"):
        presets.toy("vp", data="digits")
