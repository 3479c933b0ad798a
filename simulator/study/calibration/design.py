"""Designs over the fitted parameters: the unit cube, Latin hypercubes, space-filling picks.

Points live in the unit cube [0, 1]^d; :func:`to_values` maps them to parameter values
(linearly, or linearly in log(value) for ``scale = "log"``). Every random draw comes from a
generator seeded by (calibration seed, wave, stream), so a design is a pure function of the
calibration file, the seed and the simulations stored before it.
"""
from __future__ import annotations

import math

import numpy as np

STREAM_WAVE_DESIGN = 1
STREAM_CANDIDATES = 2


def generator(seed: int, wave: int, stream: int, batch: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, wave, stream, batch]))


def latin_hypercube(n: int, d: int, rng: np.random.Generator, optimise: bool = True) -> np.ndarray:
    """``n`` points of a Latin hypercube in [0, 1]^d (scipy's LatinHypercube; ``optimise``:
    improved by random coordinate permutations for low discrepancy, worth it for a wave's
    few points, too slow for thousands of candidates)."""
    from scipy.stats import qmc
    return qmc.LatinHypercube(d=d, optimization="random-cd" if optimise else None,
                              seed=rng).random(n)


def to_values(unit: np.ndarray, parameters) -> np.ndarray:
    """Unit-cube points (n x d) -> parameter values (n x d)."""
    unit = np.atleast_2d(unit)
    out = np.empty_like(unit, dtype=float)
    for j, p in enumerate(parameters):
        if p.scale == "log":
            out[:, j] = np.exp(math.log(p.low) + unit[:, j] * (math.log(p.high) - math.log(p.low)))
        else:
            out[:, j] = p.low + unit[:, j] * (p.high - p.low)
        if p.integer:
            out[:, j] = np.round(out[:, j])
    return out


def snap(unit: np.ndarray, parameters) -> np.ndarray:
    """Unit-cube points moved onto the whole numbers of integer parameters (other columns
    untouched), so that an emulator learns at the point that was simulated."""
    integer = [j for j, p in enumerate(parameters) if p.integer]
    if not integer:
        return unit
    unit = np.array(unit, dtype=float)
    unit[:, integer] = to_unit(to_values(unit, parameters), parameters)[:, integer]
    return unit


def to_unit(values: np.ndarray, parameters) -> np.ndarray:
    values = np.atleast_2d(np.asarray(values, float))
    out = np.empty_like(values)
    for j, p in enumerate(parameters):
        if p.scale == "log":
            out[:, j] = (np.log(values[:, j]) - math.log(p.low)) / (math.log(p.high) - math.log(p.low))
        else:
            out[:, j] = (values[:, j] - p.low) / (p.high - p.low)
    return out


def maximin_subset(points: np.ndarray, k: int, start: int, avoid: np.ndarray | None = None) -> list[int]:
    """Greedy maximin choice of ``k`` rows of ``points`` (start at row ``start``): each next
    row is the one farthest from those chosen and from ``avoid`` (points already run)."""
    if len(points) <= k:
        return list(range(len(points)))
    chosen = [start]
    nearest = np.linalg.norm(points - points[start], axis=1)
    if avoid is not None and len(avoid):
        for a in avoid:
            nearest = np.minimum(nearest, np.linalg.norm(points - a, axis=1))
    nearest[start] = -1.0
    while len(chosen) < k:
        nxt = int(np.argmax(nearest))
        chosen.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(points - points[nxt], axis=1))
        nearest[chosen] = -1.0
    return chosen
