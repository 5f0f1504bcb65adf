"""The comparison's command line (a profile and overrides in, a checked
:class:`~zoo.bench.plan.profiles.Config` out) and the flag types every command shares
(:func:`at_least`, :func:`names`, :func:`budgets`, :func:`tolerance`). A bad value is a
:class:`~zoo.bench.plan.parsing.UsageError` naming its flag, printed as one line (exit code 2)."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import zoo
from zoo import data, images
from zoo.bench.plan import config_file, digits, limits, matrix, named_samplers, networks, points
from zoo.bench.plan.parsing import Parser, UsageError, plain
from zoo.bench.plan.profiles import PROFILES, PURPOSES, Config
from zoo.bench.train import training
from zoo.presets import CASE_STUDY_FAMILIES, FAMILIES, LIKELIHOOD_WEIGHTED, PARAMETRISED
from zoo.train import MAX_SEED

__all__ = [
    "Parser",
    "UsageError",
    "at_least",
    "budgets",
    "check_memory_of",
    "parse",
    "parser",
    "plain",
    "tolerance",
]

CASE_STUDY_DATASETS = ("nine_gaussians",)
PRESETS = ("toy", "case_study")


def _split(text: str, what: str) -> tuple[str, ...]:
    # Commas inside brackets separate a sampler's options, not names: dpm-10[order=3,grid=time].
    names = tuple(name for name in named_samplers.split(text) if name)
    if not names:
        raise argparse.ArgumentTypeError(f"name at least one {what}")
    for name in set(names):
        if names.count(name) > 1:
            raise argparse.ArgumentTypeError(f"{what} {name!r} is named twice")
    return names


def names(choices, what: str):
    """The parse of distinct comma-separated names, each one of ``choices``."""

    def parse(text: str) -> tuple[str, ...]:
        given = _split(text, what)
        for name in given:
            if name not in choices:
                raise argparse.ArgumentTypeError(
                    f"unknown {what} {name!r}; choose from {', '.join(choices)}"
                )
        return given

    return parse


def _samplers(text: str) -> tuple[str, ...]:
    try:
        return tuple(named_samplers.check(name) for name in _split(text, "sampler"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _sweep(text: str) -> tuple[str, ...]:
    kinds = _split(text, "sweep sampler")
    try:
        named_samplers.sweep(kinds, (10,))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return kinds


def at_least(minimum: int, maximum: int = limits.INT32_MAX):
    """The parse of a count from ``minimum`` to ``maximum`` (default: the largest int32, as
    steps and sample indices are int32 in JAX)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        if value > maximum:
            why = " (a 32-bit count)" if maximum == limits.INT32_MAX else ""
            raise argparse.ArgumentTypeError(
                f"expected an integer <= {maximum:,}{why}, got {value:,}"
            )
        return value

    return parse


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 0,1,2, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"expected distinct seeds >= 0 like 0,1,2, got {text!r}")
    if max(seeds) > MAX_SEED:  # a PRNG key keeps 32 bits: 2**32 + s would rerun seed s
        raise argparse.ArgumentTypeError(
            f"expected seeds <= 2**32 - 1 = {MAX_SEED} (a PRNG key holds 32 bits of a seed), "
            f"got {max(seeds)}"
        )
    return seeds


def budgets(text: str) -> tuple[int, ...]:
    """The parse of NFE budgets, ``5,10,20`` (each in [3, 2**31 - 1]) or ``none``."""
    if text.strip() == "none":
        return ()
    try:
        values = tuple(int(b) for b in _split(text, "budget"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected NFE budgets like 5,10,20, got {text!r}"
        ) from None
    if min(values) < 3:
        raise argparse.ArgumentTypeError(f"expected NFE budgets >= 3, got {text!r}")
    if max(values) > limits.INT32_MAX:
        raise argparse.ArgumentTypeError(
            f"expected NFE budgets <= {limits.INT32_MAX:,} (a 32-bit count), got {max(values):,}"
        )
    return values


def _keep_steps(text: str) -> str | tuple[int, ...]:
    if text.strip() == "geometric":
        return "geometric"
    try:
        kept = tuple(int(k) for k in _split(text, "keep step"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'geometric' or training steps like 1000,2000,4000, got {text!r}"
        ) from None
    return kept


def _describe(c: Config) -> str:
    return (
        f"{c.profile} ({PURPOSES[c.profile]}): families {', '.join(c.families)}; datasets "
        f"{', '.join(c.datasets)}; seeds {', '.join(map(str, c.seeds))}; {c.steps:,} steps; "
        f"samplers {', '.join(c.samplers)}"
        + (f"; {', '.join(c.sweep)} at {', '.join(map(str, c.nfe))} NFE" if c.nfe else "")
        + f"; {c.num_samples:,} samples"
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def tolerance(text: str) -> float:
    """An ODE solver's rtol = atol: a number in (0, 1); 1 or more would accept any error."""
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a tolerance in (0, 1) like 1e-3, got {text!r}")
    return value


def _data_file(text: str) -> str:
    """The absolute path of a readable points file (so a rerun from elsewhere finds it)."""
    try:
        points.read(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return str(Path(text).resolve())


def _net_spec(text: str) -> str:
    """``text`` if it has the form ``module:factory``; the network itself is checked once the
    datasets are known (:func:`_check_net`)."""
    module, colon, factory = text.partition(":")
    if not (module and colon and factory):
        raise argparse.ArgumentTypeError(f"expected package.module:factory, got {text!r}")
    return text


def _channels(text: str) -> int:
    value = at_least(8)(text)
    if value % 8:
        raise argparse.ArgumentTypeError(
            f"expected a multiple of 8 (GroupNorm groups), got {value}"
        )
    return value


#: the options that take a value: flag -> (parse, metavar, Config field or None, help)
VALUED = {
    "--families": (
        names(FAMILIES + LIKELIHOOD_WEIGHTED + PARAMETRISED + (digits.WRITEUP,), "family"),
        "LIST",
        None,
        f"comma-separated families from {', '.join(FAMILIES)}; "
        "<family>-lw (vp, subvp, ve): the SDE families trained with the likelihood "
        "weighting and importance-sampled t (toys only); <family>-v, <family>-edm: the "
        "network predicting v or under EDM's preconditioning (e.g. vp-edm); both: "
        "<family>-v-lw, <family>-edm-lw; "
        f"{digits.WRITEUP}: the MNIST "
        "write-up's T=200 DDPM (zoo.presets.mnist_writeup; digits only)",
    ),
    "--datasets": (
        lambda text: _split(text, "dataset"),  # checked in parse(), which knows --data's name
        "LIST",
        None,
        f"comma-separated datasets: 2-D toys from {', '.join(data.NAMES)}, images from "
        f"{', '.join(digits.DATASETS)} (8x8 handwritten digits over a UNet, scored by a "
        "digit classifier), and the --data file's stem",
    ),
    "--data": (
        _data_file,
        "FILE",
        None,
        "your N x d points (.npy, .npz with one array, or .csv) as one more dataset named by "
        "the file's stem (the only one unless --datasets names others): "
        f"{points.HELDOUT_FRACTION:.0%}% held out, sample metrics against held-out points, "
        "no likelihood columns",
    ),
    "--seeds": (_seeds, "LIST", None, "comma-separated training seeds, e.g. 0,1,2"),
    "--steps": (at_least(1), "N", None, "training steps of every run"),
    "--samplers": (
        _samplers,
        "LIST",
        None,
        "comma-separated sampler names, e.g. default,ddim-10,ode",
    ),
    "--sweep": (
        _sweep,
        "LIST",
        None,
        "samplers of the quality-per-NFE sweep, from "
        f"{', '.join(named_samplers.SWEEP_KINDS)}, each with options if wanted "
        "(e.g. dpm,unipc[order=3])",
    ),
    "--nfe": (
        budgets,
        "LIST",
        None,
        "NFE budgets of the sweep, e.g. 5,10,20 (an empty sweep: --nfe none)",
    ),
    "--samples": (
        at_least(10),
        "N",
        "num_samples",
        "samples per cell, and size of the true reference sample they are compared with",
    ),
    "--nll-points": (
        at_least(2),
        "N",
        "num_nll",
        "held-out points for the likelihood of each trained run (2-D toys)",
    ),
    "--nll-images": (
        at_least(0),
        "N",
        "nll_images",
        "held-out images whose bits/dim each trained run is scored on (images; 0: none)",
    ),
    "--nll-tol": (
        tolerance,
        "TOL",
        "nll_tol",
        "rtol = atol of the likelihood's ODE solve",
    ),
    "--channels": (
        _channels,
        "N",
        None,
        "the UNet's base channels on images, a multiple of 8 (16: CPU-sized; the preset's "
        "default is 32)",
    ),
    "--net": (
        _net_spec,
        "MODULE:FACTORY",
        None,
        "your Haiku network under every family: factory() returns a module or function "
        "net(x, t, is_training) -> array shaped like x (imported with the current folder "
        "first on sys.path)",
    ),
    "--width": (
        at_least(1),
        "N",
        None,
        "the ScoreNet's width on vector data (2-D toys, --data); default: the preset's (256)",
    ),
    "--lr": (
        _positive_float,
        "RATE",
        "learning_rate",
        "learning rate of every run; default: each family's preset value",
    ),
    "--batch-size": (
        at_least(1),
        "N",
        None,
        "batch size of every run; default: each family's preset value",
    ),
}


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="zoo-bench",
        description="Train every model family on toy data or digits over several seeds, sample "
        "with each family's samplers, and tabulate sample quality next to the noise floor (the "
        "value of each metric for independent samples of the true distribution). Finished "
        "pieces are cached in the output folder: run the same command again to resume.",
        epilog="samplers are <kind>[-<steps>][[option=value,...]]: "
        + "; ".join(f"{k}: {v}" for k, v in named_samplers.KINDS.items())
        + ". Without a step count a sampler uses every level of a discrete schedule and "
        f"{named_samplers.CONTINUOUS_STEPS} times of a continuous SDE. Options: "
        + "; ".join(f"{k}: {', '.join(o)}" for k, o in named_samplers.OPTIONS.items() if o)
        + " (e.g. unipc-10[order=3,grid=time], ddim-20[eta=1]).",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {zoo.__version__}")
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        help=". ".join(map(_describe, PROFILES.values())) + ". Default: quick.",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help=f"run the settings of a results folder's {config_file.NAME} again, into that "
        "folder (reusing its cache) unless --out says otherwise; flags given beside it "
        "override its settings",
    )
    for flag, (parse, metavar, dest, text) in VALUED.items():
        extra = {"dest": dest} if dest else {}
        p.add_argument(flag, type=parse, metavar=metavar, help=text, **extra)
    p.add_argument(
        "--presets",
        choices=PRESETS,
        help="toy: the zoo's defaults per family (default); case_study: the write-up's "
        "settings (zoo.presets.case_study; families ddpm, ncsn, subvp on nine_gaussians)",
    )
    p.add_argument(
        "--keep-steps",
        type=_keep_steps,
        metavar="LIST",
        help="quality per training step: keep each run's EMA parameters at these steps of its "
        "one training call and score the first of --samplers on each: 'geometric' (1000, "
        "2000, 4000, ... below --steps, and --steps) or a list of multiples of "
        f"{training.LOG_EVERY}; writes steps.csv, steps.md and steps_<dataset>.png",
    )
    p.add_argument(
        "--oracle",
        action="store_true",
        default=None,
        help="the error split, on datasets with an exact score of the noised data (the "
        "Gaussian mixtures): also run every cell's sampler with the exact score (same key "
        "and process; oracle_* columns, dashed lines in nfe_<dataset>.png), and measure each "
        "run's score error against it per noise level (score_error.csv and "
        "score_error_<dataset>.png)",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default: results/<profile>)")
    p.add_argument(
        "--no-figures", dest="figures", action="store_false", default=None, help="skip the figures"
    )
    return p


def _choice(options):
    def parse(text: str) -> str:
        if text not in options:
            raise argparse.ArgumentTypeError(
                f"expected one of {', '.join(sorted(options))}, got {text!r}"
            )
        return text

    return parse


def _file_parsers() -> dict:
    """Config field -> the parse of its flag, for the settings of a ``config.toml``."""
    parsers = {
        dest or flag[2:].replace("-", "_"): parse for flag, (parse, _, dest, _) in VALUED.items()
    }
    return {
        **parsers,
        "profile": _choice(PROFILES),
        "presets": _choice(PRESETS),
        "keep_steps": _keep_steps,
    }


def _from_file(path: str) -> dict:
    """The settings of ``config.toml`` at ``path`` as Config values, each checked by the parse
    of its flag (a list is given to it comma-separated); :class:`UsageError` naming ``--config``
    and the setting otherwise."""
    try:
        saved = config_file.read(path)
    except ValueError as e:
        raise UsageError(f"--config: {e}") from None
    parsers, values = _file_parsers(), {}
    for field, value in saved.items():
        where = f"--config {path}: {field}"
        if field in ("figures", "oracle"):
            if not isinstance(value, bool):
                raise UsageError(f"{where}: expected true or false, got {value!r}")
            values[field] = value
        elif value == [] and field in ("sweep", "nfe", "keep_steps"):  # off
            values[field] = ()
        else:
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            try:
                values[field] = parsers[field](text)
            except argparse.ArgumentTypeError as e:
                raise UsageError(f"{where}: {e}") from None
    return values


def _with_data(overrides: dict) -> dict:
    """``overrides`` with the ``--data`` file's stem among the datasets (the only one unless
    datasets were named), and every dataset name checked."""
    stem = Path(overrides["data"]).stem if "data" in overrides else None
    if stem in matrix.DATASETS:
        raise UsageError(
            f"--data: the file's stem {stem!r} names a built-in dataset; expected another "
            "name (rename the file)"
        )
    if stem is not None and ("," in stem or stem != stem.strip()):
        # the stem is a dataset name: --datasets and config.toml's rerun split names at
        # commas and strip them, so this name could not be given back
        raise UsageError(
            f"--data: the file's stem {stem!r} names the dataset, and dataset names are "
            "comma-separated; expected a stem without commas or outer spaces (rename the file)"
        )
    if stem is not None:
        named = overrides.get("datasets")
        overrides["datasets"] = (stem,) if named is None else tuple(dict.fromkeys((*named, stem)))
    known = matrix.DATASETS + ((stem,) if stem else ())
    for name in overrides.get("datasets", ()):
        if name not in known:
            raise UsageError(
                f"argument --datasets: unknown dataset {name!r}; choose from {', '.join(known)}"
                + ("" if stem else ", or give your points with --data")
            )
    return overrides


def _check_network(overrides: dict) -> None:
    given = [flag for flag, field in (("--net", "net"), ("--width", "width")) if field in overrides]
    if len(given) == 2:
        raise UsageError("--width sets the zoo's ScoreNet; expected it or --net, not both")
    if given and overrides.get("presets") == "case_study":
        raise UsageError(
            f"{given[0]}: --presets case_study runs the write-up's own network; expected "
            "--presets toy"
        )


def _event_shape(dataset: str, config: Config) -> tuple[int, ...]:
    if dataset in digits.DATASETS:
        return images.Digits.event_shape
    if config.data is not None and dataset == Path(config.data).stem:
        return (points.read(config.data).shape[1],)
    return data.Toy.event_shape


def _check_net(config: Config) -> None:
    """The ``--net`` factory imported and its contract checked on the shapes of the
    datasets (:func:`zoo.bench.plan.networks.check`); :class:`UsageError` naming it, with the
    user's own exception, if any, as its ``__cause__``."""
    shapes = [_event_shape(dataset, config) for dataset in config.datasets]
    try:
        networks.check(config.net, shapes)
    except ValueError as e:
        raise UsageError(f"--net: {e}") from e.__cause__


def parse(argv: list[str] | None = None, check_memory: bool = True) -> Config:
    """The profile named in ``argv`` (or the settings of its ``--config`` file) with the flags
    given there applied, and (``check_memory``) its estimated memory checked against the
    machine's (:func:`check_memory_of`; it may start JAX's backend, e.g. to draw a dataset's
    fixed parameters, which ``zoo-bench distributed`` must start itself first)."""
    args = vars(parser().parse_args(argv))
    path = args.pop("config")
    flags = {k: v for k, v in args.items() if v is not None}
    if path is not None and "profile" in flags:
        raise UsageError("--profile: the --config file names its profile; expected one of the two")
    overrides = {**(_from_file(path) if path is not None else {}), **flags}
    if path is not None:
        overrides.setdefault("out", str(Path(path).parent))
    profile = PROFILES[overrides.pop("profile", "quick")]
    keep = overrides.pop("keep_steps", None)
    if "out" in overrides and not overrides["out"].strip():
        raise UsageError("--out must name a folder, got an empty string")
    overrides = _with_data(overrides)
    _check_network(overrides)
    if overrides.get("presets") == "case_study":
        overrides.setdefault("families", CASE_STUDY_FAMILIES)
        overrides.setdefault("datasets", CASE_STUDY_DATASETS)
        if not set(overrides["families"]) <= set(CASE_STUDY_FAMILIES):
            raise UsageError(
                f"--presets case_study has families {', '.join(CASE_STUDY_FAMILIES)}, "
                f"got {', '.join(overrides['families'])}"
            )
        if overrides["datasets"] != CASE_STUDY_DATASETS:
            raise UsageError(
                f"--presets case_study is for {CASE_STUDY_DATASETS[0]} only, "
                f"got {', '.join(overrides['datasets'])}"
            )
    config = dataclasses.replace(profile, **overrides)
    if config.net is not None:
        _check_net(config)
    if keep is not None:
        try:
            config = dataclasses.replace(config, keep_steps=training.keep_steps(keep, config.steps))
        except ValueError as e:
            raise UsageError(f"--keep-steps: {e}") from None
    if check_memory:
        check_memory_of(config)
    return config


def check_memory_of(config: Config) -> None:
    """:class:`UsageError` naming the flag whose run would not fit in the machine's memory
    (:func:`zoo.bench.plan.limits.check`)."""
    try:
        limits.check(config)
    except limits.TooLarge as e:
        raise UsageError(str(e)) from None
