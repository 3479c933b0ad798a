"""Lattice frames as rasters for the browser: one packed RGBA ``uint32`` per site.

The explorer never sends one element per cell: a frame is a 2D ``uint32`` array that Bokeh
ships as one binary buffer and draws with a single ``image_rgba`` glyph. Colours are the
figures' (:data:`simulator.output.plotting.KIND_COLOURS`, colour-blind-safe), with resistant
tumour cells and immune-escape variants in their own colours. A field overlay paints the
chosen field (viridis, scaled to its current range) on the empty sites, under the cells.
"""
from __future__ import annotations

import matplotlib
import numpy as np

from kernels.lattice import KIND_NAMES
from simulator.output.plotting import KIND_COLOURS, KIND_LABELS
from simulator.output.plotting.lattice import clone_colour_masks

#: Category of a site: its kind's index in KIND_NAMES, RESISTANT for a resistant tumour cell,
#: ESCAPE for an immune-escape variant that resists nothing.
RESISTANT = len(KIND_NAMES)
ESCAPE = RESISTANT + 1
CATEGORY_NAMES = (*KIND_NAMES, "tumor_resistant", "tumor_escape")
_EMPTY, _TUMOR = KIND_NAMES.index("empty"), KIND_NAMES.index("tumor")


def _pack(rgb, alpha=255) -> np.ndarray:
    """(n, 3) floats in [0, 1] -> packed little-endian RGBA uint32 (Bokeh's image_rgba)."""
    c = np.round(np.asarray(rgb, float) * 255).astype(np.uint32)
    return c[:, 0] | (c[:, 1] << 8) | (c[:, 2] << 16) | (np.uint32(alpha) << 24)


PALETTE = _pack([matplotlib.colors.to_rgb(KIND_COLOURS[n]) for n in CATEGORY_NAMES])
FIELD_PALETTE = _pack(matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3])


def legend() -> list[tuple[str, str]]:
    """(label, hex colour) of every category a frame may show, walls left out."""
    return [(KIND_LABELS[n], KIND_COLOURS[n]) for n in CATEGORY_NAMES if n != "wall"]


def middle_slice(frame: np.ndarray) -> np.ndarray:
    """A 3D frame's middle z-slice; 2D frames unchanged."""
    return frame[..., frame.shape[-1] // 2] if frame.ndim == 3 else frame


def categories(kind: np.ndarray, clone: np.ndarray, escape_bit: int = 0) -> np.ndarray:
    """uint8 category per site (2D, x first): the kind, RESISTANT for tumour cells of a
    resistant clone (a bit other than ``escape_bit``), ESCAPE for escape variants that
    resist nothing. This is what the explorer keeps for replay (1 byte per site)."""
    kind, clone = middle_slice(kind), middle_slice(clone)
    out = kind.astype(np.uint8, copy=True)
    tumour = kind == _TUMOR
    resistant, escape = clone_colour_masks(clone, escape_bit)
    out[tumour & resistant] = RESISTANT
    out[tumour & escape] = ESCAPE
    return out


def rgba(category: np.ndarray, field: np.ndarray | None = None,
         field_range: tuple[float, float] | None = None) -> np.ndarray:
    """Packed RGBA image, rows = y (row 0 at the bottom, as Bokeh draws), columns = x."""
    image = PALETTE[category]
    if field is not None:
        values = middle_slice(field)
        lo, hi = field_range if field_range is not None else (np.nanmin(values),
                                                              np.nanmax(values))
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        index = np.clip(np.nan_to_num((values - lo) * scale), 0, 255).astype(np.uint8)
        empty = category == _EMPTY
        image = np.where(empty, FIELD_PALETTE[index], image)
    return np.ascontiguousarray(image.T)
