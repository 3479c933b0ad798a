"""Study statistics: binomial intervals, Kaplan-Meier medians, paired differences."""
from __future__ import annotations

import math

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054):
    """95% Wilson score interval of a binomial proportion (Wilson 1927)."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def median_ttp(durations, observed):
    """Kaplan-Meier median progression-free time with its 95% interval (lifelines when
    installed; NaN where the curve never drops to 0.5)."""
    durations = np.asarray(durations, float)
    observed = np.asarray(observed, bool)
    keep = np.isfinite(durations)
    if not keep.any():
        return math.nan, math.nan, math.nan
    try:
        from lifelines import KaplanMeierFitter
        from lifelines.utils import median_survival_times
    except ImportError:
        return _km_median(durations[keep], observed[keep]), math.nan, math.nan
    kmf = KaplanMeierFitter().fit(durations[keep], observed[keep])
    ci = median_survival_times(kmf.confidence_interval_)
    return (float(kmf.median_survival_time_), float(ci.iloc[0, 0]), float(ci.iloc[0, 1]))


def _km_median(durations, observed):
    order = np.argsort(durations, kind="stable")
    at_risk, survival = len(durations), 1.0
    for t, event in zip(durations[order], observed[order]):
        if event:
            survival *= 1 - 1 / at_risk
            if survival <= 0.5:
                return float(t)
        at_risk -= 1
    return math.inf


def paired_differences(reference: dict, runs: dict, prefix: str) -> dict:
    """Paired differences over replicates present in both arms. For a binary endpoint the
    difference of proportions (b - c)/n uses the paired (McNemar) standard error
    sqrt(b + c - (b - c)^2 / n) / n, b and c the discordant pairs (Agresti 2013, 10.1)."""
    shared = sorted(set(reference) & set(runs))
    n = len(shared)
    out = {f"{prefix}pairs": n}
    for name in ("objective_response", "durable_response"):
        x = np.array([bool(runs[r][name]) for r in shared], dtype=bool)
        y = np.array([bool(reference[r][name]) for r in shared], dtype=bool)
        b, c = int(np.sum(x & ~y)), int(np.sum(~x & y))
        diff = (b - c) / n if n else math.nan
        se = math.sqrt(max(b + c - (b - c) ** 2 / n, 0.0)) / n if n else math.nan
        out[f"{prefix}{name}_difference"] = diff
        out[f"{prefix}{name}_difference_low"] = diff - 1.959963984540054 * se
        out[f"{prefix}{name}_difference_high"] = diff + 1.959963984540054 * se
    d = np.array([runs[r]["best_response"] - reference[r]["best_response"] for r in shared])
    d = d[np.isfinite(d)]
    out[f"{prefix}best_response_mean_difference"] = float(d.mean()) if len(d) else math.nan
    return out
