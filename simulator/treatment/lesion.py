"""What a scan measures: the lesion's extent, in cells. A lesion that shrinks under
treatment leaves a regression bed (necrosis, fibrosis, infiltrate) that a scan still sees
and that clears with a half-life h (``endpoints.residual_half_life_days``; docs in
:mod:`simulator.analysis.endpoints`). So the measured size M follows the live cells N up
at once but falls no faster than the bed clears:

    M_0 = N_0 (the treatment start),   M_i = max(N_i, M_(i-1) exp(-lambda dt_i)),
    lambda = ln 2 / h (h = 0: M = N),

and a lesion measured below half a cell is gone (0). A scan has a detection limit, too: with
a visible fraction v > 0 (``endpoints.detection_limit_fraction`` f of the baseline
diameter, v = f^d in d dimensions) a lesion measured below v M_0 is gone. Relative to the
baseline lesion, so that the time a cured lesion's bed takes to vanish, log2(1 / v)
half-lives, does not depend on how many cells the lattice lesion holds (log2(2 M_0)
half-lives at the half-cell rule: a larger simulated lesion would take longer).

The bed is the decaying memory of the lesion's extent, not a sum of every cell lost: a
lesion's random ups and downs (a few cells per step in a small simulated lesion) raise M
by at most the size of one up-swing and never accumulate, and regrowth fills the bed
before it adds to the measure.

Here, below both users, because the regimen's rules (``treatment``) and the endpoints
(``analysis``) must see the same lesion: the rules apply the recursion once per step, the
endpoints once per record (every step by default), from the treatment start; both read
RECIST's absolute rule on the same equivalent diameter (:func:`equivalent_diameter_mm`).
"""
from __future__ import annotations

import math

import numpy as np

#: A lesion measured below this many cells has disappeared (RECIST: CR).
GONE_BELOW_CELLS = 0.5


def equivalent_diameter_mm(cells, dimensions: int, mm_per_site: float) -> np.ndarray:
    """Diameter (mm) of the disc (2D) or ball (3D) holding ``cells`` sites of edge
    ``mm_per_site``: 2D ``2 a sqrt(N/pi)``, 3D ``2 a (3N/(4 pi))^(1/3)``."""
    n = np.asarray(cells, dtype=np.float64)
    if np.any(~np.isfinite(n)) or np.any(n < 0):
        raise ValueError("equivalent_diameter_mm: cell counts must be finite and >= 0")
    if not (math.isfinite(mm_per_site) and mm_per_site > 0):
        raise ValueError(f"equivalent_diameter_mm: mm_per_site must be > 0, got {mm_per_site!r}")
    if dimensions == 2:
        return 2.0 * mm_per_site * np.sqrt(n / math.pi)
    if dimensions == 3:
        return 2.0 * mm_per_site * np.cbrt(3.0 * n / (4.0 * math.pi))
    raise ValueError(f"equivalent_diameter_mm: dimensions must be 2 or 3, got {dimensions!r}")


def measure_step(previous: float, cells: float, decay: float) -> float:
    """One interval of the recursion: max(N, M exp(-lambda dt)); ``decay`` = exp(-lambda dt)."""
    return max(float(cells), previous * decay)


def visible_fraction(detection_limit_fraction: float, dimensions: int) -> float:
    """The detection limit f on the diameter as a share of the baseline measure: f^d."""
    return float(detection_limit_fraction) ** dimensions


def gone_below(baseline: float, visible_fraction: float = 0.0) -> float:
    """The measure under which a lesion reads as gone: half a cell, or the detection limit
    ``visible_fraction`` x the baseline measure if that is larger."""
    return max(GONE_BELOW_CELLS, visible_fraction * float(baseline))


def seen(measure, threshold: float = GONE_BELOW_CELLS):
    """The measure a scan reports: 0 below ``threshold`` (:func:`gone_below`). Arrays or
    floats."""
    m = np.asarray(measure, dtype=np.float64)
    m = np.where(m < threshold, 0.0, m)
    return float(m) if m.ndim == 0 else m


def measured_cells(time_days, tumor_cells, half_life_days: float,
                   visible_fraction: float = 0.0) -> np.ndarray:
    """The measure at each record of a series that starts at the treatment start (the
    first record, whose count is the baseline M_0): :func:`measure_step` per record
    interval, exact for any spacing, then :func:`seen` with the detection limit."""
    t = np.asarray(time_days, dtype=np.float64)
    n = np.asarray(tumor_cells, dtype=np.float64)
    if t.shape[0] == 0:
        return n.copy()
    threshold = gone_below(n[0], visible_fraction)
    if half_life_days == 0:
        return seen(n, threshold)
    m = n.copy()
    rate = math.log(2.0) / half_life_days
    for i in range(1, t.shape[0]):
        m[i] = measure_step(m[i - 1], n[i], math.exp(-rate * (t[i] - t[i - 1])))
    return seen(m, threshold)
