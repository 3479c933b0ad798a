"""simulator.analysis.statistics against published worked examples and hand computations."""
import math

import numpy as np
import pytest

from simulator.analysis.statistics import (
    DAYS_PER_MONTH,
    Z95,
    arm_summary,
    binomial_test_p,
    clopper_pearson_interval,
    format_estimate,
    format_time,
    kaplan_meier,
    km_landmark,
    km_median,
    mcnemar_exact_p,
    median_interval,
    newcombe_paired_interval,
    paired_differences,
    paired_proportions,
    paired_times,
    wilson_interval,
)

# Wilson upper bound for 0 of 10: z^2 / (n + z^2)
WILSON_0_OF_10 = Z95 ** 2 / (10 + Z95 ** 2)


# ------------------------------------------------------------------ paired proportions
def test_newcombe_and_mcnemar_on_the_published_cavo_example():
    """Cavo et al. 2012 complete response before/after consolidation, [[59, 6], [16, 80]],
    worked in Fagerland, Lydersen & Laake 2017 (Statistical Analysis of Contingency Tables,
    ch. 8): Newcombe square-and-add -0.0621 (-0.1186 to -0.0046); exact conditional
    McNemar P = 0.052479."""
    low, high = newcombe_paired_interval(59, 6, 16, 80)
    assert (6 - 16) / 161 == pytest.approx(-0.0621, abs=5e-5)
    assert low == pytest.approx(-0.1186, abs=5e-5)
    assert high == pytest.approx(-0.0046, abs=5e-5)
    assert mcnemar_exact_p(6, 16) == pytest.approx(0.052479, abs=5e-7)


def test_newcombe_all_concordant_has_width_from_the_wilson_bounds():
    # 10 pairs, none responding in either arm: p1 = p2 = 0, phi = 0 (a zero margin), so the
    # interval is -/+ the Wilson upper bound of 0/10. A Wald interval would have zero width.
    low, high = newcombe_paired_interval(0, 0, 0, 10)
    assert low == pytest.approx(-WILSON_0_OF_10) and high == pytest.approx(WILSON_0_OF_10)
    assert WILSON_0_OF_10 == pytest.approx(0.27753, abs=1e-5)


def test_newcombe_stays_inside_minus_one_one_at_the_extremes():
    # every pair favours X: p1 = 1, p2 = 0. low = 1 - sqrt(2) * 0.27753; high = 1 exactly
    low, high = newcombe_paired_interval(0, 10, 0, 0)
    assert low == pytest.approx(1 - math.sqrt(2) * WILSON_0_OF_10)
    assert high == 1.0
    low, high = newcombe_paired_interval(0, 0, 10, 0)
    assert low == -1.0 and high == pytest.approx(-1 + math.sqrt(2) * WILSON_0_OF_10)


@pytest.mark.parametrize("b, c, p", [(5, 0, 2 * 0.5 ** 5), (6, 0, 2 * 0.5 ** 6),
                                     (0, 0, 1.0), (3, 3, 1.0),
                                     # b=1, c=4: 2 * P(X <= 1 | n=5) = 2 * 6/32
                                     (1, 4, 2 * 6 / 32)])
def test_mcnemar_exact_by_hand(b, c, p):
    assert mcnemar_exact_p(b, c) == pytest.approx(p)


def test_paired_proportions_counts_the_discordant_pairs():
    x = [1, 1, 1, 1, 0, 0, 1, 0]
    y = [1, 0, 0, 0, 0, 0, 1, 1]
    cmp = paired_proportions(x, y)
    # a = 2 (pairs 0, 6), b = 3 (1, 2, 3), c = 1 (7), d = 2
    assert (cmp.pairs, cmp.favour_x, cmp.favour_y) == (8, 3, 1)
    assert cmp.difference == pytest.approx(2 / 8)
    assert (cmp.low, cmp.high) == pytest.approx(newcombe_paired_interval(2, 3, 1, 2))
    assert cmp.p_value == pytest.approx(mcnemar_exact_p(3, 1))  # = 2 * 5/16 = 0.625
    assert cmp.p_value == pytest.approx(0.625)
    assert not cmp.holds(+1)


def test_holds_needs_significance_and_the_stated_direction():
    strong = paired_proportions([1] * 12 + [0] * 8, [0] * 12 + [0] * 8)  # b = 12, c = 0
    assert strong.p_value == pytest.approx(2 * 0.5 ** 12)
    assert strong.holds(+1) and not strong.holds(-1)
    assert strong.low > 0


# ------------------------------------------------------------------ paired times
def test_paired_times_wins_respect_censoring():
    # pair: (x time, x event, y time, y event)
    pairs = [(10, True, 5, True),    # both progress, x later: x wins
             (10, False, 5, True),   # x censored after y's event: x certainly later: win
             (5, True, 10, False),   # x progresses before y's censoring: y wins
             (5, False, 10, True),   # x censored before y's event: unknown
             (10, False, 10, False),  # both censored at the end (common follow-up): tie
             (7, True, 7, True)]     # same time: tie
    tx, ex, ty, ey = map(list, zip(*pairs))
    cmp = paired_times(tx, ex, ty, ey)
    assert (cmp.favour_x, cmp.favour_y, cmp.pairs) == (2, 1, 6)
    assert cmp.difference == pytest.approx(1 / 6)
    assert (cmp.low, cmp.high) == pytest.approx(newcombe_paired_interval(0, 2, 1, 3))
    # shorter is better (time to response): x responds at 5 before y's censoring at 10
    faster = paired_times([5, 20], [True, False], [10, 8], [False, True],
                          longer_is_better=False)
    assert (faster.favour_x, faster.favour_y) == (1, 1)


# ------------------------------------------------------------------ Kaplan-Meier
DURATIONS = [1.0, 2.0, 2.0, 3.0, 4.0]
EVENTS = [True, True, False, True, False]


def test_kaplan_meier_by_hand():
    # t=1: 5 at risk, 1 event -> 0.8; t=2: 4 at risk (the censoring at 2 still counts),
    # 1 event -> 0.6; t=3: 2 at risk, 1 event -> 0.3. Greenwood: 1/20 + 1/12 + 1/2
    km = kaplan_meier(DURATIONS, EVENTS)
    assert km.times.tolist() == [1.0, 2.0, 3.0]
    assert km.survival == pytest.approx([0.8, 0.6, 0.3])
    assert km.greenwood[-1] == pytest.approx(1 / 20 + 1 / 12 + 1 / 2)
    assert km_median(DURATIONS, EVENTS)[0] == 3.0
    assert km_landmark(DURATIONS, EVENTS, 2.5)[0] == pytest.approx(0.6)
    # the log-log interval at t = 2.5 written out
    se = math.sqrt(1 / 20 + 1 / 12) / abs(math.log(0.6))
    _, low, high = km_landmark(DURATIONS, EVENTS, 2.5)
    assert low == pytest.approx(0.6 ** math.exp(Z95 * se))
    assert high == pytest.approx(0.6 ** math.exp(-Z95 * se))


def test_kaplan_meier_matches_lifelines():
    lifelines = pytest.importorskip("lifelines")
    from lifelines.utils import median_survival_times
    rng = np.random.default_rng(7)
    t = np.round(rng.exponential(200.0, 60) / 14.0) * 14.0 + 14.0  # scan-quantised ties
    e = rng.random(60) < 0.7
    fit = lifelines.KaplanMeierFitter().fit(t, e)
    median, low, high = km_median(t, e)
    ci = median_survival_times(fit.confidence_interval_).to_numpy()[0]
    assert (median, low, high) == pytest.approx((fit.median_survival_time_, *ci))
    bands = fit.confidence_interval_
    at = 150.0
    s, lo, hi = km_landmark(t, e, at)
    assert s == pytest.approx(float(fit.survival_function_at_times(at).iloc[0]))
    assert (lo, hi) == pytest.approx(tuple(bands[bands.index <= at].iloc[-1]))


def test_median_not_reached_and_landmarks_past_follow_up():
    never = km_median([100.0, 100.0, 100.0], [False, False, True])
    assert never[0] == math.inf                         # S drops to 2/3 only: not reached
    assert format_time(never[0]) == "not reached"
    assert math.isnan(km_landmark([10.0, 20.0], [False, False], 30.0)[0])  # not followed
    everyone = km_landmark([10.0, 20.0], [True, True], 30.0)
    assert everyone[0] == 0.0                           # all progressed: S = 0 is known
    assert everyone[1] == 0.0 and everyone[2] == pytest.approx(wilson_interval(0, 2)[1])
    assert all(math.isnan(v) for v in km_median([], []))


def test_median_interval_uses_binomial_ranks():
    # n = 10: binom(10, 1/2) 2.5% quantile is 2, so ranks 2 and 9 bound the median
    assert median_interval(range(1, 11)) == (5.5, 2.0, 9.0)
    assert math.isnan(median_interval([3.0, 4.0])[1])  # too few values for an interval
    assert all(math.isnan(v) for v in median_interval([]))


def test_binomial_helpers():
    assert binomial_test_p(10, 10, 0.5) == pytest.approx(2 * 0.5 ** 10)
    low, high = clopper_pearson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 10))  # exact, hand
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


# ------------------------------------------------------------------ arm rows
def _run(responds, cr=False, pfs=100.0, progressed=True, ttr=28.0, durable=False):
    return dict(objective_response=responds, response_class="CR" if cr else (
        "PR" if responds else "PD"), durable_response=durable, progression_free_days=pfs,
                progression_observed=progressed,
                time_to_response_days=ttr if responds else math.nan, best_response=-0.5)


def test_arm_summary_columns():
    runs = [_run(True, cr=True, pfs=400.0, progressed=False, durable=True),
            _run(True, pfs=200.0), _run(False, pfs=56.0), _run(False, pfs=28.0)]
    row = arm_summary(runs, landmark_months=(6.0, 24.0))
    assert row["response_rate"] == 0.5 and row["complete_response_rate"] == 0.25
    assert (row["response_rate_low"], row["response_rate_high"]) == wilson_interval(2, 4)
    assert row["median_ttp_days"] == 56.0       # S: 3/4 at 28, 2/4 at 56
    # 6 months = 182.6 days: S = 1/2 (two progressed by 56, then none until 200)
    assert row["pfs_6_months"] == pytest.approx(0.5)
    # 24 months = 730.5 days, beyond every follow-up (the last is censored at 400): NaN
    assert math.isnan(row["pfs_24_months"])
    assert row["median_time_to_response_days"] == 28.0
    assert 24 * DAYS_PER_MONTH == 730.5


def test_paired_differences_intervals_are_proper():
    # all pairs concordant: the old Wald interval had zero width; Newcombe's does not
    ref = {r: _run(False) for r in range(10)}
    same = {r: _run(False) for r in range(10)}
    out = paired_differences(ref, same, "vs_ref_")
    assert out["vs_ref_objective_response_difference"] == 0.0
    assert out["vs_ref_objective_response_difference_high"] == pytest.approx(WILSON_0_OF_10)
    assert out["vs_ref_objective_response_difference_p"] == 1.0
    # every pair favours the arm: the upper bound stays at 1 (the Wald one exceeded it)
    better = {r: _run(True) for r in range(10)}
    out = paired_differences(ref, better, "vs_ref_")
    assert out["vs_ref_objective_response_difference"] == 1.0
    assert out["vs_ref_objective_response_difference_high"] == 1.0
    assert out["vs_ref_objective_response_difference_low"] < 1.0
    assert out["vs_ref_objective_response_difference_p"] == pytest.approx(2 * 0.5 ** 10)


def test_format_estimate():
    assert format_estimate(0.5, 0.3, 0.7, percent=True) == "50.0% (30.0% to 70.0%)"
    assert format_estimate(6.9, 4.3, math.inf, unit=" mo") == "6.9 mo (4.3 mo to not reached)"
    assert format_time(math.nan) == "-"
