"""Study statistics over replicates: binomial intervals, Kaplan-Meier medians and landmarks,
and paired comparisons of two arms that share their replicates (common random numbers).

Pure numpy/scipy. Every interval is a 95% interval unless ``z`` says otherwise, and every
interval of a proportion or of a difference of proportions stays inside [0, 1] or [-1, 1].

- Proportions: Wilson score interval (Wilson 1927); exact binomial test (Clopper-Pearson
  interval beside it where the test is exact).
- Kaplan-Meier with Greenwood's variance; confidence bands on the log(-log S) scale
  (Kalbfleisch & Prentice 2002); the median's interval is where the bands cross 1/2
  (Brookmeyer & Crowley 1982), as lifelines and R's survival package report it. A median
  the curve never reaches is ``inf`` ("not reached"); NaN means "no data".
- Paired binary endpoints (replicate r of arm X against replicate r of arm Y): difference
  of proportions with Newcombe's square-and-add interval (Newcombe 1998 Stat Med 17:2635,
  method 10; Fagerland, Lydersen & Laake 2014 Stat Med 33:2850 recommend it) and the exact
  conditional McNemar test (a binomial test on the discordant pairs).
- Paired times with censoring (progression-free time, time to response): each pair is a
  win, a loss or neither, as in generalized pairwise comparisons (Buyse 2010 Stat Med
  29:3245): X's time is certainly longer only if Y's event was observed before X's time.
  The net benefit (wins - losses) / pairs is a difference of paired proportions (win and
  loss indicators), so it gets the same Newcombe interval in [-1, 1]; the exact McNemar
  test on wins vs losses is the sign test.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: z for two-sided 95% intervals
Z95 = 1.959963984540054
#: months are calendar-average months: 365.25 / 12 days
DAYS_PER_MONTH = 30.4375


# --------------------------------------------------------------------------- proportions
def wilson_interval(successes: int, n: int, z: float = Z95):
    """Wilson score interval of a binomial proportion (Wilson 1927); (NaN, NaN) if n = 0."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson_interval(successes: int, n: int, level: float = 0.95):
    """Exact (Clopper-Pearson 1934) interval of a binomial proportion."""
    from scipy.stats import beta
    if n == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2
    low = 0.0 if successes == 0 else float(beta.ppf(tail, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - tail, successes + 1, n - successes))
    return low, high


def binomial_test_p(successes: int, n: int, p0: float = 0.5) -> float:
    """Two-sided exact binomial test of H0: p = p0 (scipy's minlike method); 1 if n = 0."""
    from scipy.stats import binomtest
    return 1.0 if n == 0 else float(binomtest(successes, n, p0).pvalue)


# --------------------------------------------------------------------------- Kaplan-Meier
@dataclass(frozen=True)
class KaplanMeier:
    """The step function S(t) at its event times, with Greenwood sums for the bands."""
    times: np.ndarray        # distinct event times, increasing
    survival: np.ndarray     # S just after each time
    greenwood: np.ndarray    # sum d / (n (n - d)) up to each time
    n: int                   # subjects
    follow_up: np.ndarray    # every subject's time (events and censorings)
    observed: np.ndarray     # every subject's event flag

    def at(self, t: float) -> tuple[float, float]:
        """S(t) and its Greenwood sum (S = 1, sum 0 before the first event)."""
        k = int(np.searchsorted(self.times, t, side="right")) - 1
        return (1.0, 0.0) if k < 0 else (float(self.survival[k]), float(self.greenwood[k]))

    def bands(self, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper pointwise bands at ``times`` on the log(-log S) scale."""
        s, v = self.survival, self.greenwood
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.sqrt(v) / np.abs(np.log(s))
            lower = np.where((s > 0) & (s < 1), s ** np.exp(z * se), s)
            upper = np.where((s > 0) & (s < 1), s ** np.exp(-z * se), s)
        return lower, upper


def kaplan_meier(durations, observed) -> KaplanMeier:
    """Kaplan-Meier estimate; NaN durations are dropped. Events before censorings at a tie."""
    t = np.asarray(durations, float)
    e = np.asarray(observed, bool)
    keep = np.isfinite(t)
    t, e = t[keep], e[keep]
    times, survival, greenwood = [], [], []
    s, v = 1.0, 0.0
    for time in np.unique(t[e]):
        at_risk = int(np.sum(t >= time))
        deaths = int(np.sum((t == time) & e))
        s *= 1.0 - deaths / at_risk
        v += deaths / (at_risk * (at_risk - deaths)) if at_risk > deaths else math.inf
        times.append(time)
        survival.append(s)
        greenwood.append(v)
    return KaplanMeier(np.array(times), np.array(survival), np.array(greenwood), len(t), t, e)


def _first_at_or_below(times, curve, level) -> float:
    below = np.nonzero(curve <= level + 1e-12)[0]
    return float(times[below[0]]) if below.size else math.inf


def km_median(durations, observed, z: float = Z95) -> tuple[float, float, float]:
    """Median and 95% interval (Brookmeyer-Crowley on log-log bands). ``inf`` = not reached;
    (NaN, NaN, NaN) if there is no finite duration."""
    km = kaplan_meier(durations, observed)
    if km.n == 0:
        return math.nan, math.nan, math.nan
    if km.times.size == 0:
        return math.inf, math.inf, math.inf
    lower, upper = km.bands(z)
    return (_first_at_or_below(km.times, km.survival, 0.5),
            _first_at_or_below(km.times, lower, 0.5),
            _first_at_or_below(km.times, upper, 0.5))


def km_landmark(durations, observed, t: float, z: float = Z95) -> tuple[float, float, float]:
    """S(t) with its 95% log-log interval; NaN where the curve is not defined at ``t`` (every
    subject censored before it). Where S(t) is 0 or 1 the log-log interval is degenerate;
    the Wilson interval over the subjects whose status at ``t`` is known stands in."""
    km = kaplan_meier(durations, observed)
    s, v = km.at(t)
    if km.n == 0 or (s > 0 and not np.any(km.follow_up >= t)):
        return math.nan, math.nan, math.nan
    if 0.0 < s < 1.0:
        se = math.sqrt(v) / abs(math.log(s))
        return s, s ** math.exp(z * se), s ** math.exp(-z * se)
    known = int(np.sum(km.follow_up >= t) + np.sum(km.observed & (km.follow_up < t)))
    low, high = wilson_interval(round(s * known), known, z)
    return s, low, high


def median_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Sample median and the distribution-free order-statistic interval (binomial(n, 1/2)
    ranks; conservative). NaN if empty; interval ends NaN when n is too small for one."""
    from scipy.stats import binom
    x = np.sort(np.asarray([v for v in values if np.isfinite(v)], float))
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan
    k = int(binom.ppf((1 - level) / 2, n, 0.5))  # ranks k+1 .. n-k cover >= level
    if k < 1:
        return float(np.median(x)), math.nan, math.nan
    return float(np.median(x)), float(x[k - 1]), float(x[n - k])


# --------------------------------------------------------------------------- paired arms
@dataclass(frozen=True)
class PairedComparison:
    """X against Y over shared replicates: b pairs favour X, c favour Y, ``pairs`` in all."""
    pairs: int
    favour_x: int
    favour_y: int
    difference: float      # (b - c) / pairs: a difference of proportions or a net benefit
    low: float
    high: float
    p_value: float         # exact McNemar / sign test, two-sided

    def holds(self, direction: int, alpha: float = 0.05) -> bool:
        """Significant at ``alpha`` with the difference's sign equal to ``direction``."""
        return self.p_value < alpha and np.sign(self.difference) == direction


def newcombe_paired_interval(a: int, b: int, c: int, d: int, z: float = Z95):
    """Newcombe's square-and-add interval for p1 - p2 = (b - c) / n from the paired table
    [[a, b], [c, d]] (a: both, b: X only, c: Y only, d: neither), with the continuity-
    corrected correlation of the two proportions (Newcombe 1998, method 10)."""
    n = a + b + c + d
    if n == 0:
        return math.nan, math.nan
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, z)
    l2, u2 = wilson_interval(a + c, n, z)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = 0.0
    if margins > 0:
        cross = a * d - b * c
        phi = (cross - n / 2) / math.sqrt(margins) if cross > n / 2 else (
            cross / math.sqrt(margins) if cross < 0 else 0.0)
    diff = p1 - p2
    low = diff - math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)
                               + (u2 - p2) ** 2, 0.0))
    high = diff + math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2)
                                + (p2 - l2) ** 2, 0.0))
    return max(low, -1.0), min(high, 1.0)


def mcnemar_exact_p(b: int, c: int) -> float:
    """Exact conditional McNemar test: two-sided binomial(b + c, 1/2) test of b; 1 if no
    discordant pair."""
    return binomial_test_p(b, b + c, 0.5)


def paired_proportions(x, y, z: float = Z95) -> PairedComparison:
    """Difference P(X) - P(Y) of a binary endpoint over paired replicates."""
    x = np.asarray(x, bool)
    y = np.asarray(y, bool)
    if x.shape != y.shape:
        raise ValueError("paired_proportions: one value per pair in each arm")
    a, b = int(np.sum(x & y)), int(np.sum(x & ~y))
    c, d = int(np.sum(~x & y)), int(np.sum(~x & ~y))
    n = x.size
    low, high = newcombe_paired_interval(a, b, c, d, z)
    return PairedComparison(n, b, c, (b - c) / n if n else math.nan, low, high,
                            mcnemar_exact_p(b, c))


def paired_times(time_x, event_x, time_y, event_y, *, longer_is_better: bool = True,
                 z: float = Z95) -> PairedComparison:
    """Net benefit of X over Y on a censored time (wins - losses) / pairs, with its Newcombe
    interval and the sign test. A pair favours the arm whose time is certainly the better
    one: for "longer is better" X wins if Y's event is observed and X's time exceeds it
    (X's own time may be censored); for "shorter is better" X wins if X's event is observed
    before Y's time. Equal times and censored overlaps are neither."""
    tx, ty = np.asarray(time_x, float), np.asarray(time_y, float)
    ex, ey = np.asarray(event_x, bool), np.asarray(event_y, bool)
    if not (tx.shape == ty.shape == ex.shape == ey.shape):
        raise ValueError("paired_times: one time and one event flag per pair in each arm")
    if longer_is_better:
        win, loss = ey & (tx > ty), ex & (ty > tx)
    else:
        win, loss = ex & (tx < ty), ey & (ty < tx)
    n, b, c = tx.size, int(win.sum()), int(loss.sum())
    low, high = newcombe_paired_interval(0, b, c, n - b - c, z)
    return PairedComparison(n, b, c, (b - c) / n if n else math.nan, low, high,
                            mcnemar_exact_p(b, c))


# --------------------------------------------------------------------------- arm tables
def is_true(value) -> bool:
    """A boolean endpoint as stored in memory (bool / numpy bool) or read back from CSV."""
    return value in (True, "True", "true", 1)


def arm_summary(runs: list[dict], landmark_months=(12.0, 24.0)) -> dict:
    """One arm's row: response and complete-response rates (Wilson), median PFS (KM, days),
    landmark PFS (KM with log-log interval), median time to response among responders,
    durable fraction. ``runs``: endpoint dicts, one per replicate."""
    n = len(runs)
    responders = sum(is_true(r["objective_response"]) for r in runs)
    complete = sum(r["response_class"] == "CR" for r in runs)
    durable = sum(is_true(r["durable_response"]) for r in runs)
    pfs = [r["progression_free_days"] for r in runs]
    events = [is_true(r["progression_observed"]) for r in runs]
    median, mlo, mhi = km_median(pfs, events)
    ttr = [r["time_to_response_days"] for r in runs if is_true(r["objective_response"])]
    row = dict(replicates=n, response_rate=responders / n if n else math.nan)
    row["response_rate_low"], row["response_rate_high"] = wilson_interval(responders, n)
    row["complete_response_rate"] = complete / n if n else math.nan
    row["complete_response_rate_low"], row["complete_response_rate_high"] = \
        wilson_interval(complete, n)
    row.update(median_time_to_response_days=median_interval(ttr)[0],
               median_ttp_days=median, median_ttp_low=mlo, median_ttp_high=mhi)
    for months in landmark_months:
        name = f"pfs_{months:g}_months"
        row[name], row[f"{name}_low"], row[f"{name}_high"] = km_landmark(
            pfs, events, months * DAYS_PER_MONTH)
    row["durable_fraction"] = durable / n if n else math.nan
    row["durable_fraction_low"], row["durable_fraction_high"] = wilson_interval(durable, n)
    return row


def paired_differences(reference: dict, runs: dict, prefix: str) -> dict:
    """Paired comparison of an arm with the reference arm over the replicates both have:
    objective and durable response (difference of proportions, Newcombe interval, exact
    McNemar p), progression-free time (net benefit, sign test) and the mean paired
    difference of the best response percent."""
    shared = sorted(set(reference) & set(runs))
    out = {f"{prefix}pairs": len(shared)}
    for name in ("objective_response", "durable_response"):
        cmp = paired_proportions([is_true(runs[r][name]) for r in shared],
                                 [is_true(reference[r][name]) for r in shared])
        out.update(_comparison_columns(f"{prefix}{name}_difference", cmp))
    cmp = paired_times([runs[r]["progression_free_days"] for r in shared],
                       [is_true(runs[r]["progression_observed"]) for r in shared],
                       [reference[r]["progression_free_days"] for r in shared],
                       [is_true(reference[r]["progression_observed"]) for r in shared])
    out.update(_comparison_columns(f"{prefix}progression_free_net_benefit", cmp))
    d = np.array([runs[r]["best_response"] - reference[r]["best_response"] for r in shared],
                 float)
    d = d[np.isfinite(d)]
    out[f"{prefix}best_response_mean_difference"] = float(d.mean()) if len(d) else math.nan
    return out


def _comparison_columns(name: str, cmp: PairedComparison) -> dict:
    if cmp.pairs == 0:
        return {name: math.nan, f"{name}_low": math.nan, f"{name}_high": math.nan,
                f"{name}_p": math.nan}
    return {name: cmp.difference, f"{name}_low": cmp.low, f"{name}_high": cmp.high,
            f"{name}_p": cmp.p_value}


# --------------------------------------------------------------------------- text
def format_time(value: float, unit: str = "days", digits: int = 0) -> str:
    """``inf`` -> "not reached", NaN -> "-", else the number with its unit."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "not reached"
    return f"{value:.{digits}f} {unit}"


def format_estimate(value: float, low: float, high: float, *, percent: bool = False,
                    unit: str = "", digits: int = 1) -> str:
    """"value (low to high)" with "not reached" for infinite times and "-" for NaN."""
    def one(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        if math.isinf(v):
            return "not reached"
        return f"{100 * v:.{digits}f}%" if percent else f"{v:.{digits}f}{unit}"
    return f"{one(value)} ({one(low)} to {one(high)})"
