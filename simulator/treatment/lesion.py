"""What a scan measures: the lesion's extent, in cells. A lesion that shrinks under
treatment leaves a regression bed (necrosis, fibrosis, infiltrate) that a scan still sees
and that clears with a half-life h (``endpoints.residual_half_life_days``; docs in
:mod:`simulator.analysis.endpoints`). So the measured size M follows the live cells N up
at once but falls no faster than the bed clears:

    M_0 = N_0 (the treatment start),   M_i = max(N_i, M_(i-1) exp(-lambda dt_i)),
    lambda = ln 2 / h (h = 0: M = N),

and a lesion measured below half a cell is gone (0). The bed is the decaying memory of the
lesion's extent, not a sum of every cell lost: a lesion's random ups and downs (a few
cells per step in a small simulated lesion) raise M by at most the size of one up-swing
and never accumulate, and regrowth fills the bed before it adds to the measure.

Here, below both users, because the regimen's rules (``treatment``) and the endpoints
(``analysis``) must see the same lesion: the rules apply the recursion once per step, the
endpoints once per record (every step by default), from the treatment start.
"""
from __future__ import annotations

import math

import numpy as np

#: A lesion measured below this many cells has disappeared (RECIST: CR).
GONE_BELOW_CELLS = 0.5


def measure_step(previous: float, cells: float, decay: float) -> float:
    """One interval of the recursion: max(N, M exp(-lambda dt)); ``decay`` = exp(-lambda dt)."""
    return max(float(cells), previous * decay)


def seen(measure):
    """The measure a scan reports: 0 below GONE_BELOW_CELLS. Arrays or floats."""
    m = np.asarray(measure, dtype=np.float64)
    m = np.where(m < GONE_BELOW_CELLS, 0.0, m)
    return float(m) if m.ndim == 0 else m


def measured_cells(time_days, tumor_cells, half_life_days: float) -> np.ndarray:
    """The measure at each record of a series that starts at the treatment start (the
    first record): :func:`measure_step` per record interval, exact for any spacing."""
    t = np.asarray(time_days, dtype=np.float64)
    n = np.asarray(tumor_cells, dtype=np.float64)
    if half_life_days == 0 or t.shape[0] == 0:
        return seen(n)
    m = n.copy()
    rate = math.log(2.0) / half_life_days
    for i in range(1, t.shape[0]):
        m[i] = measure_step(m[i - 1], n[i], math.exp(-rate * (t[i] - t[i - 1])))
    return seen(m)
