"""What a scan measures: the lesion's live tumour cells plus the regression bed it leaves as
it shrinks (necrosis, fibrosis, infiltrate), which clears with a half-life
(``endpoints.residual_half_life_days``; docs in :mod:`simulator.analysis.endpoints`).

Here, below both users, because the regimen's rules (``treatment``) and the endpoints
(``analysis``) must see the same lesion: the rules step the recursion once per step, the
endpoints once per record (every step by default), from zero at the treatment start.
"""
from __future__ import annotations

import math

import numpy as np


def residual_step(residual: float, lost: float, rate_times_dt: float) -> float:
    """One interval of the residual bed: what was there decays by exp(-lambda dt); ``lost``
    cells, given up evenly over the interval, enter it and decay from when they came:
    R' = R q + L (1 - q) / (lambda dt), q = exp(-lambda dt)."""
    return (residual * math.exp(-rate_times_dt)
            + lost * -math.expm1(-rate_times_dt) / rate_times_dt)


def residual_cells(time_days, tumor_cells, half_life_days: float) -> np.ndarray:
    """Residual bed (in cells) at each record, zero at the first: the volume a shrinking
    lesion gives up (the fall in live cells from one record to the next) stays in it and
    clears with ``half_life_days`` (0: at once, no residual); :func:`residual_step` per
    record interval. A cell that dies and is replaced by a daughter leaves no bed, so
    turnover alone adds none, and growth takes none away."""
    t = np.asarray(time_days, dtype=np.float64)
    n = np.asarray(tumor_cells, dtype=np.float64)
    residual = np.zeros(t.shape[0])
    if half_life_days == 0:
        return residual
    rate = math.log(2.0) / half_life_days
    for i in range(1, t.shape[0]):
        residual[i] = residual_step(residual[i - 1], max(n[i - 1] - n[i], 0.0),
                                    rate * (t[i] - t[i - 1]))
    return residual


def lesion_cells(tumor_cells, residual):
    """What a scan measures, in cells: live tumour cells plus the residual bed; a lesion
    with no live cell and less than half a cell of bed is gone (0). Arrays or floats."""
    m = np.asarray(tumor_cells, dtype=np.float64) + np.asarray(residual, dtype=np.float64)
    m = np.where(m < 0.5, 0.0, m)
    return float(m) if m.ndim == 0 else m
