"""The house style and the axes every figure is drawn in; saving figures to files.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot, so no global
figure state and no interactive backend) and drawn under ``_STYLE`` without touching the
caller's rcParams.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

FORMATS = ("png", "svg")
DPI = 200
_STYLE = {
    "font.size": 8.5, "axes.titlesize": 9, "axes.labelsize": 8.5, "legend.fontsize": 7.5,
    "xtick.labelsize": 7.5, "ytick.labelsize": 7.5, "axes.spines.top": False,
    "axes.spines.right": False, "legend.frameon": False, "svg.fonttype": "none",
    "savefig.dpi": DPI, "figure.dpi": 100, "image.interpolation": "nearest",
}


def _styled(func):
    """Draw under the house style without touching the caller's rcParams."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_STYLE):
            return func(*args, **kwargs)
    return wrapper


def _arm_colours(arms) -> dict:
    cycle = matplotlib.colormaps["tab10"].colors
    return {arm: cycle[i % len(cycle)] for i, arm in enumerate(arms)}


def _new_axes(figsize, ax=None):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _panel_axes(n, ax, *, ncols=None, panel_size=(3.2, 2.6), sharex=True, sharey=True,
                extra_height=0.0):
    """One Axes per panel: the caller's sequence, or a new figure's grid."""
    if ax is not None:
        axes = list(np.ravel(ax)) if not hasattr(ax, "figure") else [ax]
        if len(axes) < n:
            raise ValueError(f"need {n} axes (one per arm), got {len(axes)}")
        return axes[0].figure, axes[:n]
    ncols = ncols or min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + extra_height),
                 layout="constrained")
    grid = fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=False)
    for extra in grid.ravel()[n:]:
        extra.set_visible(False)
    return fig, list(grid.ravel()[:n])


def _save(fig, out_dir: Path, stem: str, formats) -> list[Path]:
    out = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        tmp = path.with_name(path.name + ".partial")
        fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches="tight")
        tmp.replace(path)
        out.append(path)
    return out


def _check_formats(formats):
    formats = tuple(f.lower().lstrip(".") for f in formats)
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad:
        raise ValueError(f"figure formats must be png, svg or pdf, got {', '.join(bad)}")
    return formats
