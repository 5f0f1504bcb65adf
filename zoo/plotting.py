"""Plotting helpers shared by the notebooks and the benchmark: one colour per family, and
2-D sample densities, heatmaps and scatters drawn on a given matplotlib ``Axes``.

Every helper labels its axes (:math:`x_1`, :math:`x_2`), keeps the aspect ratio equal and
takes an optional ``title``, so panels from different notebooks look alike::

    fig, axes = plt.subplots(1, 2)
    zoo.plotting.density(axes[0], reference, family="data", title="data")
    zoo.plotting.density(axes[1], samples, family="ddpm", limits=zoo.plotting.limits(reference))

Colours: ``FAMILY_COLORS`` (each family's ``color`` in :data:`zoo.presets.FAMILY_TABLE`,
Okabe-Ito, colour-blind safe) gives related families related hues: DDPM and its continuous
limit VP are blues, NCSN and its limit VE are oranges, sub-VP green, flow matching reddish
purple, the data dark grey. A density uses a white-to-colour map of its family's colour.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.colors as mcolors
import numpy as np

__all__ = [
    "FAMILY_COLORS",  # noqa: F822 (module __getattr__)
    "FAMILY_LABELS",  # noqa: F822
    "Limits",
    "density",
    "family_cmap",
    "family_color",
    "family_label",
    "grid",
    "heatmap",
    "legend_handles",
    "limits",
    "scatter",
]

DATA_COLOR, DATA_LABEL = "#333333", "data"


def __getattr__(name: str) -> dict[str, str]:
    """``FAMILY_COLORS`` and ``FAMILY_LABELS``: each family's colour and display name, read
    from :data:`zoo.presets.FAMILY_TABLE` (where a family is declared once) on first use, so
    that importing this module does not import the models; ``"data"`` first."""
    if name not in ("FAMILY_COLORS", "FAMILY_LABELS"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from zoo import presets

    families = {n: presets.FAMILY_TABLE[n] for n in presets.FAMILIES}
    colors = {"data": DATA_COLOR, **{n: f.color for n, f in families.items()}}
    labels = {"data": DATA_LABEL, **{n: f.label for n, f in families.items()}}
    globals().update(FAMILY_COLORS=colors, FAMILY_LABELS=labels)
    return globals()[name]


Limits = tuple[tuple[float, float], tuple[float, float]]


def _family(name: str) -> str:
    """``"ddpm"`` from ``"ddpm"``, ``"toy/ddpm"`` or ``"case_study/ddpm"`` (preset names)."""
    key = str(name).rsplit("/", 1)[-1].lower()
    colors = __getattr__("FAMILY_COLORS")
    if key not in colors:
        raise ValueError(
            f"unknown family {name!r}; expected one of {', '.join(colors)} "
            "(optionally prefixed, e.g. 'toy/vp')"
        )
    return key


def family_color(name: str) -> str:
    """The colour of a family (or ``"data"``); preset names like ``"toy/vp"`` work too."""
    return __getattr__("FAMILY_COLORS")[_family(name)]


def family_label(name: str) -> str:
    """The display name of a family (``"vp"`` -> ``"VP SDE"``)."""
    return __getattr__("FAMILY_LABELS")[_family(name)]


def family_cmap(name: str) -> mcolors.Colormap:
    """A sequential colour map from white through the family's colour to a darker shade of it
    (so that light colours, like VP's sky blue, still show their peaks)."""
    color = np.asarray(mcolors.to_rgb(family_color(name)))
    return mcolors.LinearSegmentedColormap.from_list(
        f"zoo_{_family(name)}", ["#ffffff", tuple(color), tuple(0.55 * color)]
    )


def limits(*xs, quantile: float = 0.005, pad: float = 0.1) -> Limits:
    """Square plot limits that hold the central ``1 - 2 quantile`` of all points of ``xs``
    (``[n, 2]`` arrays; non-finite rows ignored), padded by ``pad`` of the width."""
    points = np.concatenate([np.asarray(x, np.float64).reshape(-1, 2) for x in xs])
    points = points[np.all(np.isfinite(points), axis=1)]
    if len(points) == 0:
        return (-1.0, 1.0), (-1.0, 1.0)
    lo, hi = np.quantile(points, [quantile, 1.0 - quantile], axis=0)
    centre, half = (lo + hi) / 2, max(float(np.max(hi - lo)) / 2, 1e-3) * (1 + 2 * pad)
    return (
        (float(centre[0] - half), float(centre[0] + half)),
        (float(centre[1] - half), float(centre[1] + half)),
    )


def grid(lims: Limits, size: int = 100) -> np.ndarray:
    """``[size, size, 2]`` points covering ``lims`` (row ``i`` at the ``i``-th :math:`x_2`),
    to evaluate a density for :func:`heatmap`: ``values = f(points.reshape(-1, 2))``."""
    xs = np.linspace(*lims[0], size)
    ys = np.linspace(*lims[1], size)
    return np.stack(np.meshgrid(xs, ys), axis=-1).astype(np.float32)


def _finish(ax, title: str | None, lims: Limits, ticks: bool):
    ax.set_xlim(*lims[0])
    ax.set_ylim(*lims[1])
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if not ticks:
        ax.set_xticks([])
        ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=10)
    return ax


def density(
    ax,
    x,
    *,
    family: str = "data",
    limits: Limits | None = None,
    bins: int | None = None,
    gamma: float = 0.5,
    title: str | None = None,
    ticks: bool = True,
):
    """A 2-D histogram of samples ``x`` ``[n, 2]`` as a heatmap in the family's colours.

    ``bins`` defaults to about ``1.5 sqrt(n)`` per axis (20 to 100); ``gamma`` < 1 brightens
    small modes (a power-law colour scale). Rows with NaN or inf are dropped and counted in
    the title. Returns the ``AxesImage``.
    """
    x = np.asarray(x, np.float64).reshape(-1, 2)
    finite = np.all(np.isfinite(x), axis=1)
    lims = limits if limits is not None else _default_limits(x[finite])
    bins = bins or int(np.clip(1.5 * np.sqrt(max(finite.sum(), 1)), 20, 100))
    hist, _, _ = np.histogram2d(x[finite, 0], x[finite, 1], bins=bins, range=lims)
    image = ax.imshow(
        hist.T, origin="lower", extent=(*lims[0], *lims[1]), cmap=family_cmap(family),
        norm=mcolors.PowerNorm(gamma, vmin=0.0, vmax=max(hist.max(), 1.0)),
        interpolation="nearest", aspect="auto",
    )  # fmt: skip
    if not finite.all():
        dropped = f"{(~finite).sum()} of {len(x)} samples not finite"
        title = dropped if title is None else f"{title}\n({dropped})"
    _finish(ax, title, lims, ticks)
    return image


def heatmap(
    ax,
    values,
    lims: Limits,
    *,
    family: str = "data",
    cmap: str | mcolors.Colormap | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    title: str | None = None,
    ticks: bool = True,
):
    """A function on the :func:`grid` of ``lims`` (``values`` ``[size, size]``, e.g. a log
    density) as a heatmap; the colour map defaults to the family's. Returns the image (pass
    it to ``fig.colorbar``)."""
    values = np.asarray(values, np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be [size, size] on zoo.plotting.grid, got {values.shape}")
    image = ax.imshow(
        values, origin="lower", extent=(*lims[0], *lims[1]), cmap=cmap or family_cmap(family),
        vmin=vmin, vmax=vmax, interpolation="bilinear", aspect="auto",
    )  # fmt: skip
    _finish(ax, title, lims, ticks)
    return image


def scatter(
    ax,
    x,
    *,
    family: str = "data",
    color: str | None = None,
    limits: Limits | None = None,
    s: float = 4.0,
    alpha: float = 0.5,
    label: str | None = None,
    title: str | None = None,
    ticks: bool = True,
    **kwargs,
):
    """Points ``x`` ``[n, 2]`` in the family's colour (``color`` overrides it); extra keyword
    arguments go to ``ax.scatter``. Returns the ``PathCollection``."""
    x = np.asarray(x, np.float64).reshape(-1, 2)
    points = ax.scatter(
        x[:, 0], x[:, 1], s=s, alpha=alpha, color=color or family_color(family),
        label=label, linewidths=0, **kwargs,
    )  # fmt: skip
    lims = limits if limits is not None else _default_limits(x[np.all(np.isfinite(x), axis=1)])
    _finish(ax, title, lims, ticks)
    return points


def _default_limits(x: np.ndarray) -> Limits:
    return limits(x) if len(x) else ((-1.0, 1.0), (-1.0, 1.0))


def legend_handles(families: Sequence[str]):
    """Legend patches for ``families`` in their colours (for figures of several panels)."""
    from matplotlib.patches import Patch

    return [Patch(color=family_color(f), label=family_label(f)) for f in families]
