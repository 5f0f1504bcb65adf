"""``zoo-bench-digits`` (``python -m benchmarks.digits``): every family on the 8x8 handwritten
digits, over a UNet.

Trains each family's :func:`zoo.presets.digits` configuration (vmapped over seeds), and the
MNIST write-up's DDPM (``writeup``: :func:`zoo.presets.mnist_writeup`, T = 200), samples
with the family's default sampler, ancestral sampling, DDIM at 10/20/50 steps and the
probability-flow ODE, and scores the samples with :mod:`zoo.image_metrics` beside the noise
floor (held-out real digits as if they were samples). Writes ``results.csv`` (one row per
family, sampler and seed), ``results.md`` (mean +- sd over seeds, and the floor),
``samples.png`` (an 8x8 grid of default-sampler samples per family, and real test digits) and
``denoising.gif`` (a 4x4 grid of digits along the probability-flow ODE from noise).
"""

from __future__ import annotations

import argparse
import csv
import functools
import math
import sys
import time
from pathlib import Path

import jax
import numpy as np

import zoo
from benchmarks.cli import plain
from zoo import image_metrics, presets, samplers, train
from zoo.nets import UNet

__all__ = ["main", "parser"]

USAGE_ERROR = 2
# The MNIST write-up's DDPM as written (T = 200, adam 1e-4), beside the zoo's five families:
# its ancestral sampler over the 200 levels against DDIM from the same network.
WRITEUP = "writeup"
CHOICES = (*presets.FAMILIES, WRITEUP)
METRICS = ("frechet", "class_kl", "confidence", "nearest_train", "nonfinite")


class UsageError(Exception):
    """A bad command-line value (printed as one line, exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage too; keep it to one line
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def _families(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in CHOICES]
    if not names or bad:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated families from {', '.join(CHOICES)}, got {text!r}"
        )
    return names


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None
    return seeds


def parser() -> argparse.ArgumentParser:
    """The command line of ``zoo-bench-digits``."""
    p = _Parser(prog="zoo-bench-digits", description=plain(__doc__.split("\n\n")[1]))
    p.add_argument("--version", action="version", version=f"%(prog)s {zoo.__version__}")
    p.add_argument(
        "--families",
        type=_families,
        default=CHOICES,
        help=f"comma-separated families to train, from {', '.join(CHOICES)}; {WRITEUP} is "
        "zoo.presets.mnist_writeup, the write-up's T=200 DDPM (default: all)",
    )
    p.add_argument(
        "--steps", type=_positive_int, default=2000, help="training steps per run (default 2000)"
    )
    p.add_argument(
        "--seeds",
        type=_seeds,
        default=(0,),
        help="comma-separated training seeds, trained at once (vmapped); results are mean +- "
        "sd over them (default 0)",
    )
    p.add_argument(
        "--samples",
        type=_positive_int,
        default=256,
        help="samples per family, sampler and seed; the floor uses as many held-out digits "
        "(at most all 359), as the Frechet distance depends on the sample size (default 256)",
    )
    p.add_argument(
        "--channels",
        type=_positive_int,
        default=16,
        help="UNet base channels, a multiple of 8 (default 16: CPU-sized; the preset uses 32)",
    )
    p.add_argument(
        "--bpd-images",
        type=int,
        default=64,
        help="held-out digits whose NLL (bits/dim, probability-flow ODE, 1 Hutchinson probe) is "
        "estimated per family and seed; 0 skips it (default 64)",
    )
    p.add_argument(
        "--out",
        default="results/digits",
        help="output folder for results.csv, results.md, samples.png, denoising.gif "
        "(default results/digits)",
    )
    return p


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    if args.channels % 8:
        p.error(f"--channels must be a multiple of 8 (GroupNorm groups), got {args.channels}")
    if args.samples < 2:
        p.error(f"--samples must be >= 2, got {args.samples}")
    if args.bpd_images < 0:
        p.error(f"--bpd-images must be >= 0, got {args.bpd_images}")
    return args


def _samplers(preset) -> dict[str, samplers.Sampler]:
    """The family's default sampler, ancestral (a discrete schedule's own levels; 200 steps
    otherwise), DDIM at 10/20/50 steps (eta = 0) and the adaptive probability-flow ODE."""
    out = {"default": preset.sampler}
    if not isinstance(preset.sampler, samplers.Ancestral):
        levels = preset.model.sde.num_levels
        out["ancestral"] = samplers.Ancestral(steps=None if levels else 200)
    for steps in (10, 20, 50):
        out[f"ddim-{steps}"] = samplers.DDIM(steps=steps)
    out["ode"] = samplers.ProbabilityFlow(rtol=1e-3, atol=1e-3)
    return out


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _preset(family: str, channels: int) -> presets.Preset:
    net = functools.partial(UNet, channels=channels)
    if family == WRITEUP:
        return presets.mnist_writeup(net=net)
    return presets.digits(family, net=net)


def _evaluate_family(family, args, data, test_for_bpd):
    preset = _preset(family, args.channels)
    model = preset.model
    start = time.perf_counter()
    # Whole passes over the training set: every training digit has the same weight.
    state, curve = train.fit(
        model, data, steps=args.steps, seeds=args.seeds, batch_size=preset.batch_size,
        optimizer=preset.optimizer(), num_train=7 * data.num_train, log_every=100,
    )  # fmt: skip
    train_seconds = time.perf_counter() - start
    _log(f"{family}: trained {len(args.seeds)} run(s) x {args.steps} steps in {train_seconds:.0f}s")
    rows, grids = [], {}
    for name, sampler in _samplers(preset).items():
        for run, seed in enumerate(args.seeds):
            params = train.run_params(state, run)
            key = jax.random.PRNGKey(1000 + seed)
            if run == 0:  # compile once per sampler, outside the timing
                jax.block_until_ready(model.sample(params, key, (args.samples,), sampler).x)
            start = time.perf_counter()
            out = model.sample(params, key, (args.samples,), sampler)
            x = np.asarray(jax.block_until_ready(out.x))
            seconds = time.perf_counter() - start
            row = {"family": family, "sampler": name, "seed": seed, "nfe": int(out.nfe)}
            row |= {"sample_seconds": seconds, "samples_per_s": args.samples / seconds}
            row |= image_metrics.evaluate_images(x, data)
            row |= {"final_loss": float(curve[run, -1]), "train_seconds": train_seconds}
            rows.append(row)
            if name == "default" and run == 0:
                grids[family] = x[:64]
        _log(f"{family}/{name}: " + ", ".join(f"{k}={rows[-1][k]:.3g}" for k in METRICS))
    if args.bpd_images:
        for run, seed in enumerate(args.seeds):
            params = train.run_params(state, run)
            score_fn = functools.partial(model.score, params)
            bpd = image_metrics.bits_per_dim_by_ode(
                model.sde, score_fn, test_for_bpd, jax.random.PRNGKey(seed)
            )
            _log(f"{family}: seed {seed} bpd={bpd['bpd']:.3f} (nfe {bpd['nfe']:.0f})")
            for row in rows:
                if row["seed"] == seed:
                    row |= {"bpd": bpd["bpd"], "bpd_stderr": bpd["bpd_stderr"]}
    return rows, grids, (preset, state)


def _mean_sd(values) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{np.mean(values):.3g} ± {np.std(values, ddof=1):.2g}"


def _write_markdown(path: Path, rows, floor, args, floor_n) -> None:
    columns = ("nfe", "samples_per_s", *METRICS[:-1], "nonfinite", "bpd")
    lines = [
        f"# Digits 8x8: {len(args.seeds)} seed(s) x {args.steps} steps, UNet channels "
        f"{args.channels}, {args.samples} samples per cell",
        "",
        "Mean ± sd over seeds. frechet: Frechet distance in the digit classifier's feature "
        "space (lower is better); class_kl: KL of predicted classes to uniform (lower); "
        "confidence: mean top class probability (higher); nearest_train: mean L2 to the "
        "nearest training digit (below the floor = memorisation); bpd: NLL bound of held-out "
        f"digits in bits/dim ({args.bpd_images} images, probability-flow ODE, 1 Hutchinson "
        "probe; uniform over 17 levels = 4.09).",
        "",
        "| family | sampler | " + " | ".join(columns) + " |",
        "|" + "---|" * (len(columns) + 2),
    ]
    keys = list(dict.fromkeys((r["family"], r["sampler"]) for r in rows))
    for family, sampler in keys:
        group = [r for r in rows if r["family"] == family and r["sampler"] == sampler]
        cells = [_mean_sd([r.get(c, math.nan) for r in group]) for c in columns]
        lines.append(f"| {family} | {sampler} | " + " | ".join(cells) + " |")
    floor_cells = ["", ""] + [f"{floor[c]:.3g}" for c in METRICS] + ["n/a"]
    lines.append(f"| floor ({floor_n} test digits) | real | " + " | ".join(floor_cells) + " |")
    path.write_text("\n".join(lines) + "\n")


def _tile(images, rows, cols) -> np.ndarray:
    """``[rows*cols, 8, 8, 1]`` -> one ``[rows*9, cols*9]`` image with 1-pixel gaps."""
    canvas = np.full((rows * 9 + 1, cols * 9 + 1), np.nan)
    for i, img in enumerate(np.asarray(images)[: rows * cols, ..., 0]):
        r, c = divmod(i, cols)
        canvas[1 + 9 * r : 9 + 9 * r, 1 + 9 * c : 9 + 9 * c] = np.clip(img, -1, 1)
    return canvas


def _write_grid(path: Path, grids: dict, real) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {**grids, "real test digits": real[:64]}
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.3))
    for ax, (name, images) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        ax.imshow(_tile(images, 8, 8), cmap="gray_r", vmin=-1, vmax=1)
        ax.set_title(name)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_gif(path: Path, preset, params, frames: int = 24) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    sampler = samplers.ProbabilityFlow(rtol=1e-3, atol=1e-3, trajectory_points=frames)
    out = preset.model.sample(params, jax.random.PRNGKey(7), (16,), sampler)
    images = [np.asarray(x) for x in out.trajectory] + [np.asarray(out.x)]
    times = [float(t) for t in out.times] + [0.0]
    fig, ax = plt.subplots(figsize=(3, 3.3))
    shown = ax.imshow(_tile(images[0], 4, 4), cmap="gray_r", vmin=-1, vmax=1)
    ax.axis("off")

    def update(i):
        shown.set_data(_tile(images[i], 4, 4))
        ax.set_title(f"{preset.name}  t = {times[i]:.3f}")
        return (shown,)

    animation = FuncAnimation(fig, update, frames=len(images))
    animation.save(path, writer=PillowWriter(fps=6))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(argv)
    except UsageError as e:
        print(f"zoo-bench-digits: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    from zoo import data as data_lib

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = data_lib.digits()
    test = np.asarray(data.test_set(jax.random.PRNGKey(0)))  # dequantised held-out digits
    floor_n = min(args.samples, len(test))
    floor = image_metrics.image_noise_floor(data, n=floor_n)
    _log("floor: " + ", ".join(f"{k}={floor[k]:.3g}" for k in METRICS))
    rows, grids, first = [], {}, None
    for family in args.families:
        family_rows, family_grids, trained = _evaluate_family(
            family, args, data, test[: args.bpd_images]
        )
        rows += family_rows
        grids |= family_grids
        first = first or trained
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        writer.writerow({"family": "floor", "sampler": f"real ({floor_n} test digits)", **floor})
    _write_markdown(out / "results.md", rows, floor, args, floor_n)
    _write_grid(out / "samples.png", grids, test)
    preset, state = first
    _write_gif(out / "denoising.gif", preset, train.run_params(state, 0))
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
