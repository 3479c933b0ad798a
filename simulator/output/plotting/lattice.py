"""Lattice frames in the fixed cell-kind colours: ``lattice_rgb``, ``plot_lattice`` and the
helpers the snapshot grids (study, run, animation) share."""
from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.patches import Patch

from kernels.lattice import KIND_NAMES
from simulator.output.plotting.data import _text
from simulator.output.plotting.style import _new_axes, _styled

#: Fixed colours of the cell kinds, keyed by ``flag_meanings`` (never by value, so a file
#: written with other values still reads right). "tumor_resistant" is drawn where
#: ``/snapshots/clone`` marks a tumour cell resistant to at least one target,
#: "tumor_escape" where it marks an immune-escape variant (and no resistance).
KIND_COLOURS = {
    "empty": "#f4f4f4", "tumor": "#2f6db5", "tumor_resistant": "#f28e1c",
    "tumor_escape": "#17becf",
    "t_cell": "#2ca02c", "suppressive": "#9b59b6", "dead": "#b3b3b3",
    "necrotic": "#4a4a4a", "vessel": "#d62728", "wall": "#000000",
}
KIND_LABELS = {
    "empty": "empty", "tumor": "tumour (sensitive)", "tumor_resistant": "tumour (resistant)",
    "tumor_escape": "tumour (immune escape)",
    "t_cell": "T cell", "suppressive": "suppressive cell", "dead": "dead cell",
    "necrotic": "necrotic", "vessel": "vessel", "wall": "wall",
}
_UNKNOWN_KIND_COLOUR = "#ff00ff"


def clone_colour_masks(clone, escape_bit=0):
    """(resistant, escape) masks of a clone frame as the figures colour tumour cells:
    resistant = some bit other than ``escape_bit``; escape = ``escape_bit`` alone (a cell
    both resistant and escaping is drawn resistant)."""
    clone = np.asarray(clone, dtype=np.int64)
    escape = clone == escape_bit if escape_bit else np.zeros(clone.shape, bool)
    return (clone & ~escape_bit) > 0, escape


def lattice_rgb(cell_type, clone=None, flag_values=None, flag_meanings=None, escape_bit=0):
    """RGB image (float, ..., 3) of a cell-type frame with the fixed colours, keyed by the
    ``flag_values``/``flag_meanings`` attributes; resistant tumour cells (a clone bit other
    than ``escape_bit``) get their own colour, and so do immune-escape variants that resist
    nothing (``clone == escape_bit``; the run file's ``timeseries/clone`` attribute
    ``escape_bit``, 0: none). Returns (rgb, names of the kinds present)."""
    if flag_values is None or flag_meanings is None:
        flag_values, meanings = np.arange(len(KIND_NAMES)), list(KIND_NAMES)
    else:
        meanings = _text(flag_meanings).split()
    names = list(meanings) + ["tumor_resistant", "tumor_escape", "unknown"]
    spare = iter(matplotlib.colormaps["tab20"].colors)
    palette = np.array([matplotlib.colors.to_rgb(KIND_COLOURS.get(n) or
                                                 (_UNKNOWN_KIND_COLOUR if n == "unknown"
                                                  else next(spare)))
                        for n in names])
    lut = np.full(256, len(names) - 1, dtype=np.int64)
    for value, meaning in zip(np.asarray(flag_values, dtype=np.int64), meanings):
        lut[value] = meanings.index(meaning)
    category = lut[np.asarray(cell_type, dtype=np.uint8)]
    if clone is not None and "tumor" in meanings:
        tumour = category == meanings.index("tumor")
        resistant, escape = clone_colour_masks(clone, escape_bit)
        category = np.where(tumour & resistant, names.index("tumor_resistant"), category)
        category = np.where(tumour & escape, names.index("tumor_escape"), category)
    present = [names[i] for i in np.unique(category)]
    return palette[category], present


def _snapshot_rgb(snap: dict):
    """``lattice_rgb`` of a snapshot as returned by :func:`~.data.read_snapshot`."""
    return lattice_rgb(snap["cell_type"], snap["clone"], snap["flag_values"],
                       snap["flag_meanings"], snap["escape_bit"])


def _kind_legend_handles(present, with_clones=True):
    order = [n for n in KIND_COLOURS if n in present] + \
            [n for n in present if n not in KIND_COLOURS]
    handles = []
    for name in order:
        label = KIND_LABELS.get(name, name.replace("_", " "))
        if name == "tumor" and not with_clones:
            label = "tumour"
        colour = KIND_COLOURS.get(name, _UNKNOWN_KIND_COLOUR)
        handles.append(Patch(facecolor=colour, edgecolor="0.6", lw=0.4, label=label))
    return handles


def _lattice_extent_mm(shape, spacing_um):
    nx, ny = shape[:2]
    return (0.0, nx * spacing_um / 1000.0, 0.0, ny * spacing_um / 1000.0)


def _show_frame(ax, image, spacing_um, lattice_shape=None, **imshow_kwargs):
    """A lattice frame (RGB, or a field with a colour map): x along the first lattice axis
    (horizontal), y up, in mm over ``lattice_shape`` (default: the image's); framed on all
    sides."""
    for spine in ax.spines.values():
        spine.set_visible(True)
    shape = image.shape if lattice_shape is None else lattice_shape
    return ax.imshow(np.swapaxes(image, 0, 1), origin="lower",
                     extent=_lattice_extent_mm(shape, spacing_um), **imshow_kwargs)


def _show_rgb(ax, rgb, spacing_um):
    """x along the first lattice axis (horizontal), y up; framed on all sides."""
    return _show_frame(ax, rgb, spacing_um, interpolation="nearest")


def _title_day(ax, day, treatment_start_day):
    """A snapshot's title: its day and the days relative to the treatment start."""
    ax.set_title(f"day {day:g} ({day - treatment_start_day:+g} d)", fontsize=8)


@_styled
def plot_lattice(cell_type, *, clone=None, flag_values=None, flag_meanings=None,
                 spacing_um: float = 20.0, title: str | None = None, legend: bool = True,
                 ax=None):
    """One lattice frame (2D; give a 3D frame's slice) in the fixed cell-kind colours."""
    fig, ax = _new_axes((4.2, 3.6), ax)
    rgb, present = lattice_rgb(cell_type, clone, flag_values, flag_meanings)
    _show_rgb(ax, rgb, spacing_um)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(handles=_kind_legend_handles(present, clone is not None), loc="upper left",
                  bbox_to_anchor=(1.01, 1.0))
    return fig
