"""The run matrix of a config, computed before anything runs: the data of each dataset, its true
reference sample (drawn once), each family's preset per dataset, the key of every trained run,
and every cell (family x dataset x seed x sampler) with its cache key.

The harness knows data by kind (:func:`kind`): the 2-D toys of :mod:`zoo.data`, scored by
:mod:`zoo.bench.judge.evaluation` (W2, MMD, energy, modes, exact NLL), images, scored by
:mod:`zoo.bench.plan.digits` (:mod:`zoo.image_metrics`: a classifier's Frechet distance, class
coverage, confidence, nearest training image, bits per dimension), and a user's points
(``--data``), scored by :mod:`zoo.bench.plan.points` (the toys' sample metrics against held-out
points). The modules answer the same calls (``load``, ``preset``, ``num_train``,
``reference``, ``settings``, ``sample_quality``, ``quick_quality``, ``noise_floor``, the
likelihood trio). A family is trained in one call per kind (vectors over a ``ScoreNet``,
images over a ``UNet``, or the user's ``--net`` for all), so a run's group is the datasets
of its kind that the family has a preset for. ``--lr`` and ``--batch-size`` replace every
preset's own.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType

import numpy as np

import zoo
from zoo import data as data_lib
from zoo import presets
from zoo.bench import cache
from zoo.bench.judge import evaluation
from zoo.bench.plan import digits, named_samplers, points
from zoo.bench.plan.profiles import Config
from zoo.bench.train import training

__all__ = ["DATASETS", "Cell", "Plan", "kind", "make"]

#: every dataset name the harness takes: the 2-D toys, then the image data
DATASETS = (*data_lib.NAMES, *digits.DATASETS)


def kind(dataset: str) -> ModuleType:
    """The module that loads, trains and scores ``dataset``: :mod:`zoo.bench.plan.digits` for
    image data, :mod:`zoo.bench.judge.evaluation` for the 2-D toys, and
    :mod:`zoo.bench.plan.points` for any other name: a user's file (``Config.data``) named by
    its stem, which its ``load`` checks."""
    if dataset in digits.DATASETS:
        return digits
    if dataset in data_lib.NAMES:
        return evaluation
    return points


@dataclasses.dataclass(frozen=True)
class Cell:
    """One row of the results: a sampler (``resolved``: the object, or why it does not apply)
    on one trained run. ``sample_key`` hashes what its samples depend on, ``key`` everything
    its row depends on (the samples and how they are scored)."""

    family: str
    dataset: str
    seed: int
    sampler: str
    resolved: zoo.samplers.Sampler | str
    sample_key: str
    key: str

    @property
    def row_stem(self) -> str:
        return f"{self.family}/{self.dataset}/seed{self.seed}-{self.sampler}-{self.key}"

    @property
    def samples_stem(self) -> str:
        return f"{self.family}/{self.dataset}/seed{self.seed}-{self.sampler}-{self.sample_key}"


@dataclasses.dataclass(frozen=True)
class Plan:
    """``data`` and ``references`` per dataset; ``presets[family][dataset]``: the preset, or
    why the family has none for that data (a string); ``groups[family]``: the datasets trained
    together, one dict of presets per kind of data and model; ``run_keys[family, dataset, seed]``:
    :func:`zoo.bench.train.training.run_key` of each run; ``cells`` in table order."""

    data: dict[str, object]
    references: dict[str, np.ndarray]
    presets: dict[str, dict[str, presets.Preset | str]]
    groups: dict[str, list[dict[str, presets.Preset]]]
    run_keys: dict[tuple[str, str, int], str]
    cells: list[Cell]

    def program_key(self, family: str, dataset: str) -> tuple:
        """What a compiled sampler or likelihood of ``family`` on ``dataset`` can be shared
        by: its kind of data and its model (a model that differs by dataset, as EDM's
        ``sigma_data``, is one of its own)."""
        return kind(dataset), training.model_key(self.presets[family][dataset].model)


def _preset(config: Config, family: str, dataset: str, data) -> presets.Preset | str:
    """The family's preset for ``dataset``, or why there is none (a family of one kind only,
    e.g. the digits write-up's DDPM, or the likelihood-weighted families on images)."""
    try:
        preset = kind(dataset).preset(config, family, data)
    except ValueError as e:
        return f"no {family} preset for {dataset}: {e}"
    return with_optimizer(preset, config)


def with_optimizer(preset: presets.Preset, config: Config) -> presets.Preset:
    """``preset`` with ``config``'s learning rate and batch size where they are set."""
    chosen = {"learning_rate": config.learning_rate, "batch_size": config.batch_size}
    return dataclasses.replace(preset, **{k: v for k, v in chosen.items() if v is not None})


def make(config: Config) -> Plan:
    """Every preset, run key and cell of ``config`` (nothing is trained or sampled)."""
    data = {d: kind(d).load(d, config) for d in config.datasets}
    references = {d: kind(d).reference(data[d], config) for d in config.datasets}
    by_family, groups, run_keys, cells = {}, {}, {}, []
    for family in config.families:
        by_family[family] = {d: _preset(config, family, d, data[d]) for d in config.datasets}
        # One fused training call per kind of data and model: a model that differs by dataset
        # (EDM's sigma_data, the data's own) trains apart.
        together: dict[tuple, dict[str, presets.Preset]] = {}
        for d, p in by_family[family].items():
            if not isinstance(p, str):
                together.setdefault((kind(d), training.model_key(p.model)), {})[d] = p
        groups[family] = list(together.values())
        for group in groups[family]:
            trained_with = (tuple(group), tuple(config.seeds))
            for dataset, preset in group.items():
                for seed in config.seeds:
                    run_keys[family, dataset, seed] = training.run_key(
                        preset, dataset, seed, config.steps, trained_with,
                        kind(dataset).num_train(data[dataset]),
                    )  # fmt: skip
        for dataset, preset in by_family[family].items():
            settings = kind(dataset).settings(config)
            resolved = {
                s: preset
                if isinstance(preset, str)
                else named_samplers.resolve(s, preset.model.sde, preset.sampler)
                for s in config.sampler_names
            }
            for seed in config.seeds:
                run_key = run_keys.get((family, dataset, seed))
                for name, sampler in resolved.items():
                    sample_key = cache.digest(
                        {"run": run_key, "sampler": sampler, "n": config.num_samples}
                    )
                    key = cache.digest({"samples": sample_key, "eval": settings})
                    cells.append(Cell(family, dataset, seed, name, sampler, sample_key, key))
    return Plan(data, references, by_family, groups, run_keys, cells)
