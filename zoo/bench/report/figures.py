"""The figures of every ``zoo-bench`` command: sample densities (2-D toys) and sample grids
(images), loss curves, NFE against quality, quality against training steps, the learned
score's error against the exact score; the frontier's quality per NFE on the exact score; and
the guidance sweep's accuracy and samples."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns

from zoo import plotting
from zoo.bench.plan import matrix
from zoo.bench.report.tables import METRICS

__all__ = [
    "densities",
    "frontier",
    "guidance",
    "guided_samples",
    "images",
    "loss_curves",
    "nfe_quality",
    "nfe_sweep",
    "score_error",
    "steps",
    "tile",
]


def _limits(x: np.ndarray) -> list[tuple[float, float]]:
    lo, hi = np.percentile(x, [0.5, 99.5], axis=0)
    pad = 0.15 * (hi - lo)
    return [(float(a), float(b)) for a, b in zip(lo - pad, hi + pad, strict=True)]


def densities(
    path: Path,
    reference: dict[str, np.ndarray],
    samples: dict[tuple[str, str], np.ndarray],
    families: list[str],
    label: str,
) -> None:
    """A grid of 2-D histograms: the data in the first row, then one row per family
    (``label`` names the sampler and seed); one column per dataset."""
    datasets = list(reference)
    rows = ["data", *families]
    fig, axes = plt.subplots(
        len(rows), len(datasets), figsize=(2.2 * len(datasets), 2.2 * len(rows)), squeeze=False
    )
    for j, dataset in enumerate(datasets):
        limits = _limits(reference[dataset])
        for i, row in enumerate(rows):
            ax = axes[i, j]
            x = reference[dataset] if row == "data" else samples.get((row, dataset))
            if x is not None and np.isfinite(x).all(axis=-1).any():
                bins = int(np.clip(1.5 * np.sqrt(len(x)), 20, 100))
                sns.histplot(x=x[:, 0], y=x[:, 1], bins=bins, binrange=limits, cmap="mako", ax=ax)
            else:
                ax.text(0.5, 0.5, "no samples" if x is None else "NaN", ha="center", va="center",
                        transform=ax.transAxes)  # fmt: skip
            ax.set(xlim=limits[0], ylim=limits[1], xticks=[], yticks=[], xlabel="", ylabel="")
            if i == 0:
                ax.set_title(dataset, fontsize=9)
            if j == 0:
                ax.set_ylabel(row)
    fig.suptitle(f"samples ({label})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tile(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``[rows*cols, h, w, 1]`` -> one ``[rows*(h+1)+1, cols*(w+1)+1]`` image with 1-pixel
    gaps (NaN, drawn blank)."""
    images = np.asarray(images)[: rows * cols, ..., 0]
    h, w = images.shape[1:]
    canvas = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1), np.nan)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        top, left = 1 + (h + 1) * r, 1 + (w + 1) * c
        canvas[top : top + h, left : left + w] = np.clip(img, -1, 1)
    return canvas


def images(
    path: Path,
    real: np.ndarray,
    samples: dict[tuple[str, str], np.ndarray],
    families: list[str],
    dataset: str,
    label: str,
) -> None:
    """An 8x8 grid of samples per family of image ``dataset`` (``label`` names the sampler
    and seed), and one of the ``real`` images, in ``[-1, 1]``."""
    panels = {f: samples[f, dataset] for f in families if (f, dataset) in samples}
    panels["real"] = real
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.9), squeeze=False)
    for ax, (name, x) in zip(axes[0], panels.items(), strict=True):
        side = max(1, min(8, int(np.sqrt(len(x)))))
        ax.imshow(tile(x, side, side), cmap="gray_r", vmin=-1, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{dataset} ({label})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def loss_curves(path: Path, curves: list[dict]) -> None:
    """Training loss against step, per dataset, one line per family (band: sd over seeds);
    diverged runs (NaN losses) leave gaps."""
    frame = pd.DataFrame(curves).dropna()
    if frame.empty:
        return
    grid = sns.relplot(
        data=frame, x="step", y="loss", hue="family", col="dataset", kind="line",
        errorbar="sd", col_wrap=min(3, frame.dataset.nunique()), height=2.8,
        facet_kws={"sharey": False},
    )  # fmt: skip
    grid.set(yscale="log")
    grid.savefig(path, dpi=110)
    plt.close(grid.figure)


def nfe_quality(path: Path, rows: list[dict], floors: list[dict]) -> None:
    """Each dataset's headline metric (its kind's ``HEADLINE``) against NFE for every ``ok``
    cell; the dashed line is the metric's noise floor."""
    frame = pd.DataFrame(rows)
    if frame.empty or "status" not in frame:
        return
    frame = frame[frame.status == "ok"].copy()
    if frame.empty:
        return
    headline = {d: matrix.kind(d).HEADLINE for d in frame.dataset.unique()}
    frame["value"] = [float(frame.at[i, headline[dataset]]) for i, dataset in frame.dataset.items()]
    grid = sns.relplot(
        data=frame, x="nfe", y="value", hue="sampler", style="family", col="dataset",
        col_wrap=min(3, frame.dataset.nunique()), height=2.8, s=40,
        facet_kws={"sharey": False},
    )  # fmt: skip
    floor_frame = pd.DataFrame(floors)
    grid.set(xscale="log")
    for dataset, ax in grid.axes_dict.items():
        metric = headline[dataset]
        floor = floor_frame[floor_frame.dataset == dataset][metric].astype(float).mean()
        if np.isfinite(floor):
            ax.axhline(floor, color="gray", linestyle="--", linewidth=1)
        ax.set_ylabel(METRICS[metric][0])
    grid.savefig(path, dpi=110)
    plt.close(grid.figure)


def nfe_sweep(path: Path, frame: pd.DataFrame, dataset: str, label: str) -> None:
    """Quality per NFE on one dataset: ``ratio`` (a metric over its noise floor, named by
    ``label``) against NFE on a log axis, one panel per family, one line per sampler kind
    (mean and sd over seeds); the gray dashed line at 1 is the floor. ``frame``: the ``ok``
    rows of the dataset with columns family, kind, nfe, ratio and, optionally,
    ``oracle_ratio``: the same sampler with the exact score, drawn dashed with open markers
    in the kind's colour (mean over seeds)."""
    if frame.empty:
        return
    kinds = list(dict.fromkeys(frame.kind))
    palette = dict(zip(kinds, sns.color_palette(n_colors=len(kinds)), strict=True))
    grid = sns.relplot(
        data=frame, x="nfe", y="ratio", hue="kind", style="kind", col="family", kind="line",
        markers=True, dashes=False, errorbar="sd", height=2.6, aspect=1.0, palette=palette,
        col_wrap=min(5, frame.family.nunique()), facet_kws={"sharey": True},
    )  # fmt: skip
    for ax in grid.axes.flat:
        ax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
    exact = frame.dropna(subset=["oracle_ratio"]) if "oracle_ratio" in frame else frame[:0]
    for (family, kind), group in exact.groupby(["family", "kind"], sort=False):
        means = group.groupby("nfe").oracle_ratio.mean()
        grid.axes_dict[family].plot(
            means.index, means.values, color=palette[kind], linestyle="--", marker="o",
            fillstyle="none", markersize=5, linewidth=1,
        )  # fmt: skip
    grid.set(xscale="log", yscale="log", xlabel="NFE", ylabel=label)
    note = "\ndashed, open markers: the same sampler with the exact score" if len(exact) else ""
    grid.figure.suptitle(dataset + note, y=1.02)
    grid.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(grid.figure)


def _per_family(path: Path, frame: pd.DataFrame, x: str, y: str, title: str, **axes) -> None:
    """``y`` against ``x`` on log axes, one line per family (mean and sd over seeds);
    ``axes``: the axis labels and lines (``floor``: a dashed line at that height)."""
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    sns.lineplot(
        data=frame, x=x, y=y, hue="family", style="family", markers=True, dashes=False,
        errorbar="sd", ax=ax,
    )  # fmt: skip
    if (floor := axes.pop("floor", None)) is not None:
        ax.axhline(floor, color="gray", linestyle="--", linewidth=1)
    ax.set(xscale="log", yscale="log", **axes)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def steps(path: Path, frame: pd.DataFrame, dataset: str, label: str, sampler: str) -> None:
    """Quality against training steps on one dataset: ``ratio`` (a metric over its noise
    floor, named by ``label``) against the step on a log axis, one line per family (mean and
    sd over seeds); the dashed line at 1 is the floor. ``frame``: the ``ok`` rows of the
    dataset with columns family, step, ratio; ``sampler`` names the sampler scored."""
    if frame.empty:
        return
    title = f"{dataset}: quality per training step ({sampler})"
    _per_family(
        path, frame, "step", "ratio", title, floor=1.0, xlabel="training steps", ylabel=label
    )


def score_error(path: Path, frame: pd.DataFrame, dataset: str) -> None:
    """The learned score's error against the exact score on one dataset (a Gaussian
    mixture: no other dataset has an exact score), against the scaled noise level
    sigma_t / alpha_t on log axes, one line per family (mean and sd over seeds). ``frame``:
    the rows of :func:`zoo.bench.judge.oracle.score_errors` for the dataset."""
    if frame.empty:
        return
    title = f"{dataset}: the learned score's error\n(an exact score: Gaussian mixtures only)"
    _per_family(
        path, frame, "noise", "score_error", title,
        xlabel=r"scaled noise level $\sigma_t / \alpha_t$",
        ylabel=r"$\sigma_t^2\, E\|s_\theta - \nabla \log p_t\|^2$",
    )  # fmt: skip


def frontier(
    path: Path,
    means: pd.DataFrame,
    dataset: str,
    pass_ratio: float,
    pass_spread: tuple[float, float],
) -> None:
    """``zoo-bench frontier``'s sliced W2 / floor and spread against NFE for one data set
    (``means``: a row per process, sampler and budget, over seeds): a column per process, a line
    per sampler, the pass levels dotted."""
    processes = list(dict.fromkeys(means.process))
    has_spread = means.spread.notna().any()
    rows = 2 if has_spread else 1
    fig, axes = plt.subplots(rows, len(processes), figsize=(3.2 * len(processes), 2.8 * rows),
                             squeeze=False, sharex=True)  # fmt: skip
    for j, process in enumerate(processes):
        block = means[means.process == process]
        for sampler, line in block.groupby("sampler", sort=False):
            style = "--" if "[" in sampler else "-"
            axes[0, j].plot(line.nfe, line.ratio, style, marker="o", markersize=3, label=sampler)
            if has_spread:
                axes[1, j].plot(line.nfe, line.spread, style, marker="o", markersize=3)
        axes[0, j].axhline(1.0, color="gray", linewidth=1)
        axes[0, j].axhline(pass_ratio, color="gray", linestyle=":", linewidth=1)
        axes[0, j].set(xscale="log", yscale="log", title=process)
        if has_spread:
            for level in (1.0, *pass_spread):
                axes[1, j].axhline(level, color="gray", linestyle="-" if level == 1 else ":")
            axes[1, j].set(xscale="log", yscale="log", xlabel="NFE")
    budgets = sorted(means.budget.unique())
    for ax in axes[-1]:  # NFE as plain numbers at the budgets, not 3x10^0 on top of each other
        ax.set_xticks(budgets, [f"{b:g}" for b in budgets], fontsize=7)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axes[0, 0].set_ylabel("sliced W2 / floor")
    if has_spread:
        axes[1, 0].set_ylabel("spread")
    axes[0, -1].legend(fontsize=6, loc="upper right")
    fig.suptitle(f"{dataset}: exact score", y=1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def guidance(
    path: Path, frame: pd.DataFrame, floor: dict, labels: dict[str, str], dataset: str
) -> None:
    """``zoo-bench guidance``'s class accuracy and Frechet distance against the guidance scale,
    a line per family; dashed: held-out digits (``floor``), dotted: chance."""
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4))
    for family, part in frame.groupby("family", sort=False):
        for ax, column in zip(axes, labels, strict=True):
            ax.plot(part.guidance, part[column], marker="o", label=plotting.family_label(family),
                    color=plotting.family_color(family))  # fmt: skip
    for ax, (column, label) in zip(axes, labels.items(), strict=True):
        ax.axhline(floor[column], color="gray", linestyle="--", linewidth=1)
        ax.set(xlabel="guidance scale w", ylabel=label)
    axes[0].axhline(0.1, color="gray", linestyle=":", linewidth=1)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{dataset}: guidance against class accuracy and Frechet "
                 "(dashed: held-out digits; dotted: chance)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def guided_samples(
    path: Path,
    samples: dict[tuple[str, float], np.ndarray],
    families: list[str],
    scales: list[float],
    num_classes: int,
    per_class: int,
) -> None:
    """A grid of guided 8x8 digits per family (columns) and guidance scale (rows), each a
    tile with a row per asked class."""
    cols = min(per_class, 8)
    fig, axes = plt.subplots(len(scales), len(families), squeeze=False,
                             figsize=(1.9 * len(families), 2.3 * len(scales)))  # fmt: skip
    for i, w in enumerate(scales):
        for j, family in enumerate(families):
            x = samples[family, w].reshape(num_classes, per_class, 8, 8, 1)[:, :cols]
            axes[i, j].imshow(tile(x.reshape(-1, 8, 8, 1), num_classes, cols), cmap="gray_r",
                              vmin=-1, vmax=1)  # fmt: skip
            axes[i, j].set_title(f"{plotting.family_label(family)}, w = {w:g}", fontsize=8)
            axes[i, j].axis("off")
    fig.suptitle(f"rows: the asked class 0-{num_classes - 1}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
