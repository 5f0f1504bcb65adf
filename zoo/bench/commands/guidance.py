r"""Classifier-free guidance on the digits, for every family: ``zoo-bench guidance``
(console script ``zoo-bench-guidance``).

Each family's digits preset (:func:`zoo.presets.digits`, a UNet) is made class-conditional
(``num_classes=10``, labels dropped to the null class at rate ``p_uncond``) and trained on the
labelled training digits. Then for each guidance scale :math:`w` it draws ``per_class``
samples of every class with

.. math:: \tilde s = (1 + w)\, s(x, t, c) - w\, s(x, t, \varnothing)

(Ho & Salimans 2022, :mod:`zoo.guidance`) and scores them with the digit classifier of
:mod:`zoo.image_metrics`:

- ``accuracy``: the fraction of samples the classifier assigns to the asked class (chance 0.1);
- ``asked_prob``: the classifier's mean probability of the asked class;
- ``frechet``: the Frechet distance of the classifier's features of all the samples (every
  class equally often) to the training digits' (lower: closer to the data, and more diverse);
- ``confidence``, ``class_kl``, ``nearest_train`` as in :mod:`zoo.bench.plan.digits`.

The floor row is as many held-out real digits (each with its true class as the asked one)
scored the same way. Writes ``results.csv``, ``results.md``, ``guidance.png`` (accuracy and
Frechet against :math:`w`, one line per family) and ``samples.png`` (rows: the classes, one
panel per family at the smallest and the largest :math:`w`). Trained parameters are kept in
``<out>/cache/`` so a rerun with the same settings only samples.

This is a module of its own rather than a flag of ``zoo-bench``: its rows are (family, guidance
scale), not the harness's (family, dataset, seed, sampler) cells.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import zoo
from zoo import image_metrics, images, presets
from zoo.bench import cache
from zoo.bench.plan import config_file, limits, named_samplers, parsing
from zoo.bench.plan.cli import at_least, names
from zoo.bench.plan.digits import PASSES
from zoo.bench.plan.parsing import UsageError
from zoo.bench.report import output
from zoo.nets import UNet
from zoo.train import MAX_SEED

__all__ = ["main", "parse", "run"]

NUM_CLASSES = 10
SAMPLE_SEED = 1000  # samples are drawn with PRNGKey(SAMPLE_SEED + --seed)
#: columns of the table: column -> (label, which way is better)
COLUMNS = {
    "accuracy": ("accuracy on asked class", "higher"),
    "asked_prob": ("p(asked class)", "higher"),
    "frechet": ("Frechet", "lower"),
    "confidence": ("confidence", "higher"),
    "class_kl": ("class KL", "lower"),
    "nearest_train": ("nearest train", None),
}


def _scales(text: str) -> tuple[float, ...]:
    try:
        scales = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        scales = ()
    if not scales or any(not math.isfinite(w) or w < 0 for w in scales):
        raise argparse.ArgumentTypeError(
            f"expected guidance scales >= 0 like 0,0.5,1,2,4, got {text!r}"
        )
    if len(set(scales)) != len(scales):
        raise argparse.ArgumentTypeError(f"expected distinct guidance scales, got {text!r}")
    return scales


def _dataset(text: str) -> str:
    if text not in images.NAMES:
        raise argparse.ArgumentTypeError(
            f"expected a labelled image dataset ({', '.join(images.NAMES)}): guidance needs "
            f"classes, got {text!r}"
        )
    return text


def _sampler(text: str) -> str:
    try:
        return named_samplers.check(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _p_uncond(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a rate in (0, 1) like 0.2, got {text!r}")
    return value


def parser() -> parsing.Parser:
    p = parsing.command(
        "guidance",
        "Train every family class-conditionally on the digits and sweep the "
        "classifier-free guidance scale against the classifier's accuracy on the asked class "
        "and the Frechet distance.",
        rerun=True,
    )
    p.add_argument("--families", type=names(presets.FAMILIES, "family"),
                   default=presets.FAMILIES, metavar="LIST")  # fmt: skip
    p.add_argument("--dataset", type=_dataset, default="digits", help="a labelled image dataset")
    p.add_argument(
        "--guidance", type=_scales, default=(0.0, 0.5, 1.0, 2.0, 4.0), metavar="LIST",
        help="guidance scales w >= 0 (0: the conditional model)",
    )  # fmt: skip
    p.add_argument("--steps", type=at_least(1), default=4000, help="training steps per family")
    p.add_argument("--channels", type=at_least(8), default=16, help="the UNet's base channels")
    p.add_argument("--p-uncond", type=_p_uncond, default=0.2, help="label dropout rate")
    p.add_argument("--per-class", type=at_least(2), default=20, help="samples per class and w")
    p.add_argument("--sampler", type=_sampler, default="ddim-20", help="e.g. ddim-20, default")
    p.add_argument(
        "--seed", type=at_least(0, MAX_SEED - SAMPLE_SEED), default=0,
        help="training seed s; the samples are drawn with seed s + 1000",
    )  # fmt: skip
    p.add_argument("--out", default="results/digits-guidance", help="output folder")
    return p


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The checked settings; a bad value is a :class:`UsageError` naming its flag."""
    args = parser().parse_args(argv)
    if args.channels % 8:
        raise UsageError(f"argument --channels: expected a multiple of 8, got {args.channels}")
    for family in args.families:  # before any training, not after the first family's
        model = conditional_preset(family, args).model
        sampler = named_samplers.resolve(args.sampler, model.sde, None)
        if isinstance(sampler, str):
            raise UsageError(f"argument --sampler: {family}: {sampler}")
        try:  # one call draws per_class samples of each of the ten classes
            limits.check_points("--per-class", args.per_class, model, per=NUM_CLASSES)
        except limits.TooLarge as e:
            raise UsageError(f"argument {e} (samples per class, all classes at once)") from None
    return args


def conditional_preset(family: str, args: argparse.Namespace) -> presets.Preset:
    """``family``'s digits preset over a UNet of ``args.channels``, made class-conditional."""
    net = functools.partial(UNet, channels=args.channels)
    base = presets.digits(family, net=net, steps=args.steps)
    config = {**base.model.config, "num_classes": NUM_CLASSES, "p_uncond": args.p_uncond}
    return presets.Preset(
        name=f"{base.name}/conditional",
        model=zoo.transform(base.model.family, **config),
        data=base.data,
        steps=base.steps,
        batch_size=base.batch_size,
        learning_rate=base.learning_rate,
        sampler=base.sampler,
    )


def _train(preset: presets.Preset, family: str, args, folder: Path):
    """EMA parameters of one run (from the cache when there), and the training seconds."""
    key = cache.digest(
        {"family": family, "model": preset.model.config, "steps": args.steps,
         "seed": args.seed, "lr": preset.learning_rate, "batch": preset.batch_size}
    )  # fmt: skip
    path = folder / f"{family}-{key}"
    if path.with_suffix(".npz").exists():
        return zoo.train.run_params(zoo.train.load(path)), None
    start = time.perf_counter()
    # PASSES whole passes of the training digits, each with its own dequantisation noise, as
    # in the digits benchmark; fit reads the labels from the dataset (train_labels).
    num_train = PASSES * preset.data.num_train
    state, _ = preset.fit(seeds=[args.seed], num_train=num_train, progress=family)
    seconds = time.perf_counter() - start
    folder.mkdir(parents=True, exist_ok=True)
    zoo.train.save(path, jax.tree_util.tree_map(lambda a: a[0], state))
    return zoo.train.run_params(state), seconds


def score(x: np.ndarray, asked: np.ndarray, data: images.Digits) -> dict[str, float]:
    """The classifier's reading of images ``x`` asked to be of the classes ``asked``."""
    probs = image_metrics.digit_classifier(data).probabilities(x)
    values = image_metrics.evaluate_images(x, data)
    return {
        "accuracy": float(np.mean(probs.argmax(1) == asked)),
        "asked_prob": float(np.mean(probs[np.arange(len(x)), asked])),
        **{k: float(values[k]) for k in ("frechet", "confidence", "class_kl", "nearest_train")},
    }


def floor(data: images.Digits, n: int) -> dict[str, float]:
    """:func:`score` of ``n`` held-out real digits (dequantised), asked for their own class."""
    test = np.asarray(data.test_set(jax.random.PRNGKey(0)))[:n]
    return score(test, np.asarray(data.test_labels)[:n], data)


def run(args: argparse.Namespace) -> tuple[list[dict], dict[tuple[str, float], np.ndarray]]:
    """Train and sweep: the rows of the table and the samples per (family, scale), sorted by
    class."""
    out = Path(args.out)
    data = images.get(args.dataset)
    asked = np.repeat(np.arange(NUM_CLASSES), args.per_class)  # class-major: rows of a figure
    rows, samples = [], {}
    for family in args.families:
        preset = conditional_preset(family, args)
        params, train_seconds = _train(preset, family, args, out / "cache")
        sampler = named_samplers.resolve(args.sampler, preset.model.sde, preset.sampler)
        for w in args.guidance:
            start = time.perf_counter()
            # An array scale: every w > 0 shares one compiled sampler (w = 0 too: same values).
            result = preset.model.sample(
                params, jax.random.PRNGKey(SAMPLE_SEED + args.seed), (len(asked),), sampler,
                labels=jnp.asarray(asked), guidance=jnp.float32(w),
            )  # fmt: skip
            x = np.asarray(jax.block_until_ready(result.x))
            seconds = time.perf_counter() - start
            samples[family, w] = x
            finite = np.all(np.isfinite(x.reshape(len(x), -1)), axis=1)
            rows.append({
                "family": family, "guidance": w, "sampler": args.sampler,
                "nfe": int(result.nfe), "network_calls_per_nfe": 2,
                **score(x[finite], asked[finite], data),
                "nonfinite": float(1 - finite.mean()), "sample_seconds": seconds,
                "train_seconds": train_seconds,
            })  # fmt: skip
            print(f"{family} w={w:g}: accuracy {rows[-1]['accuracy']:.3f}, Frechet "
                  f"{rows[-1]['frechet']:.2f} ({seconds:.1f} s)", flush=True)  # fmt: skip
    return rows, samples


def _markdown(rows: list[dict], floor_row: dict, args) -> str:
    import pandas as pd

    frame = pd.DataFrame(rows)
    columns = ["family", "guidance", *COLUMNS]
    table = frame[columns].copy()
    table.loc[len(table)] = {"family": "floor (held-out digits)", "guidance": float("nan"),
                             **{k: floor_row[k] for k in COLUMNS}}  # fmt: skip
    header = {k: f"{label} ({'up' if way == 'higher' else 'down'})" if way else label
              for k, (label, way) in COLUMNS.items()}  # fmt: skip
    text = table.rename(columns=header).to_markdown(index=False, floatfmt=".3f")
    return (
        f"# Classifier-free guidance on {args.dataset}\n\n"
        f"{len(args.families)} families, {args.steps:,} training steps each (UNet, "
        f"{args.channels} base channels, label dropout {args.p_uncond}), seed {args.seed}; "
        f"{args.per_class} samples per class and guidance scale w by {args.sampler} "
        f"(each guided score evaluation is one network call on twice the batch). Accuracy: "
        "the fraction the digit classifier assigns to the asked class (chance 0.100); "
        "Frechet: of all the samples (classes balanced) to the training digits. The floor is "
        f"{floor_row['n']} held-out real digits scored the same way.\n\n{text}\n"
    )


def _figures(out: Path, rows: list[dict], samples: dict, floor_row: dict, args) -> None:
    import pandas as pd

    from zoo.bench.report import figures

    labels = {column: COLUMNS[column][0] for column in ("accuracy", "frechet")}
    figures.guidance(out / "guidance.png", pd.DataFrame(rows), floor_row, labels, args.dataset)
    shown = sorted({min(args.guidance), max(args.guidance)})
    figures.guided_samples(
        out / "samples.png", samples, args.families, shown, NUM_CLASSES, args.per_class
    )


@parsing.main_of("guidance")
def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the sweep, write the reports; bad input is one line, exit code 2."""
    start, started = time.perf_counter(), time.time()
    args = parse(argv)
    out = Path(args.out)
    try:
        cache.check_writable(out)
    except OSError as e:
        raise UsageError(f"--out: cannot write to {out}: {e.strerror or e}") from None
    import pandas as pd

    rows, samples = run(args)
    data = images.get(args.dataset)
    n = min(len(data.test_labels), NUM_CLASSES * args.per_class)
    floor_row = {**floor(data, n), "n": n}
    text = _markdown(rows, floor_row, args)
    output.table(out, "results", pd.DataFrame(rows), text)
    _figures(out, rows, samples, floor_row, args)
    given = sys.argv[1:] if argv is None else argv
    if config_file.write_settings(out, "guidance", parsing.settings(parser(), given)):
        output.record(out / "summary.json", output.run_summary("guidance", given, started))
    print(text)
    print(f"zoo-bench guidance: {len(rows)} rows in {time.perf_counter() - start:.1f} s -> {out}")
    return 0


if __name__ == "__main__":
    from zoo.bench.commands import entry

    entry.finish(entry.run("zoo-bench guidance", "zoo.bench.commands.guidance"))
