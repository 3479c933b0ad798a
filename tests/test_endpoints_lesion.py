"""The scan's measure and schedule: a regression bed that clears with a half-life
(``endpoints.residual_half_life_days``) and a first scan later than the interval
(``endpoints.first_scan_days``), on series whose values are computed by hand here.

Measure (simulator.treatment.lesion): from M = N at the treatment start,
M_i = max(N_i, M_(i-1) exp(-lambda dt_i)), lambda = ln 2 / h; M < 0.5 is "gone" (CR).
"""
import math

import numpy as np
import pytest

from simulator.analysis.endpoints import ResponseCriteria, assess, assess_timeseries
from simulator.analysis.follow_up import ProgressionWatch
from simulator.scenario import ScenarioError, from_toml
from simulator.treatment.lesion import GONE_BELOW_CELLS, gone_below, measured_cells


def criteria(**overrides):
    kwargs = dict(dimensions=2, spacing_um=20.0, progression_min_mm=0.0,
                  scan_interval_days=28.0)
    kwargs.update(overrides)
    return ResponseCriteria(**kwargs)


def test_measure_by_hand():
    # h = 1 day: the bed halves daily; the live count shows through once it is larger
    m = measured_cells([0.0, 1.0, 2.0, 3.0], [100, 20, 20, 30], 1.0)
    assert list(m) == [100.0, 50.0, 25.0, 30.0]
    # a record spacing of 2 days halves twice
    m = measured_cells([0.0, 2.0], [100, 0], 1.0)
    assert list(m) == [100.0, 25.0]


def test_measure_is_exact_whatever_the_record_spacing():
    daily = measured_cells(np.arange(31.0), [100] + [0] * 30, 7.0)
    sparse = measured_cells([0.0, 1.0, 30.0], [100, 0, 0], 7.0)
    assert sparse[-1] == pytest.approx(daily[-1], rel=1e-12)
    assert daily[-1] == pytest.approx(100 * 2 ** (-30 / 7), rel=1e-12)


def test_no_half_life_is_the_live_count_and_half_a_cell_is_gone():
    n = [100, 3, 0]
    assert list(measured_cells([0.0, 1.0, 2.0], n, 0.0)) == [100.0, 3.0, 0.0]
    m = measured_cells([0.0, 1.0, 2.0], [1, 0, 0], 1.0)     # 1, 0.5, 0.25
    assert list(m) == [1.0, 0.5, 0.0]


def test_ups_and_downs_do_not_accumulate():
    """A lesion flickering between 100 and 94 cells every 6 hours (a small lesion's
    births and deaths) measures at most its largest count: the bed is the extent's memory,
    not a sum of the losses (which would grow by 6 cells a flicker)."""
    t = np.arange(400) * 0.25
    n = np.where(np.arange(400) % 2 == 0, 100.0, 94.0)
    m = measured_cells(t, n, 30.0)
    assert m.max() == 100.0 and np.all(m >= n)


def _cured_on_day_one(days):
    """1000 cells, all dead between day 0 and day 1, then records every day to ``days``."""
    t = np.arange(days + 1.0)
    n = np.zeros(t.size)
    n[0] = 1000
    return t, n, np.zeros(t.size)


def test_a_cured_lesion_is_a_partial_response_until_its_bed_clears():
    h = 14.0
    t, n, r = _cured_on_day_one(200)
    e = assess(t, n, r, 0.0, criteria(residual_half_life_days=h))
    # by hand: M(t) = 1000 x 2^(-t/h) from day 1 on; gone when below 0.5, i.e. after
    # day h log2(2000) ~ 153.5: scans at 28 ... 140 are PR (M(28) = 250 <= 490), 168 and
    # 196 are CR
    assert 140 < h * math.log2(2000) < 168
    assert e.scan_response_classes == ("PR",) * 5 + ("CR",) * 2
    assert e.response_class == "CR"           # confirmed at 196
    assert e.time_to_response_days == 28.0    # the first documented PR
    assert e.first_scan_change == pytest.approx(math.sqrt(0.25) - 1, rel=1e-9)
    # live cells only: CR from the first scan
    live = assess(t, n, r, 0.0, criteria())
    assert live.scan_response_classes == ("CR",) * 7


def test_a_run_ended_at_eradication_decays_its_residual_to_each_later_scan():
    """A series that stops at the cure, followed to day 200, gives what the full series gives."""
    c = criteria(residual_half_life_days=14.0)
    t, n, r = _cured_on_day_one(200)
    full = assess(t, n, r, 0.0, c)
    ended = assess(t[:2], n[:2], r[:2], 0.0, c, followed_to_day=200.0)
    assert ended.scan_days == full.scan_days
    assert ended.scan_response_classes == full.scan_response_classes
    np.testing.assert_allclose(ended.scan_diameter_mm, full.scan_diameter_mm, rtol=1e-12)


def test_the_bed_hides_the_response_and_delays_progression():
    """80% of the lesion dies in the first day, the rest then grows 2%/day. Live cells:
    N(28) = 200 x 1.02^27 ~ 342 <= 0.49 x 1000, a PR and the nadir; N(56) ~ 594.7 >=
    1.44 x 342, PD at day 56. With a 60-day half-life: M(28) = 1000 x 2^(-28/60) ~ 723.5
    (SD, the nadir); M(56) = max(594.7, 523.5) = 594.7 (SD, the new nadir);
    M(84) = N(84) ~ 1033 >= 1.44 x 594.7: PD at day 84."""
    t = np.arange(0.0, 400.0)
    n = np.where(t == 0, 1000.0, np.round(200.0 * 1.02 ** np.maximum(t - 1, 0)))
    live = assess(t, n, np.zeros(t.size), 0.0, criteria())
    bed = assess(t, n, np.zeros(t.size), 0.0, criteria(residual_half_life_days=60.0))
    assert live.scan_response_classes[:2] == ("PR", "PD")
    assert live.time_to_progression_days == 56.0
    assert bed.scan_response_classes[:3] == ("SD", "SD", "PD")
    assert bed.response_class == "SD" and bed.time_to_progression_days == 84.0
    # the best response is the nadir's measure: (D / D0)^2 = M / M0 in 2D
    assert (1 + bed.best_response) ** 2 == pytest.approx(n[56] / 1000, rel=1e-9)


def test_timeseries_assessment_reads_the_residual_from_the_live_count():
    t, n, r = _cured_on_day_one(60)
    series = {"time_days": t, "tumor_cells": n, "tumor_resistant": r}
    e = assess_timeseries(series, 0.0, criteria(residual_half_life_days=5.0))
    assert e == assess(t, n, r, 0.0, criteria(residual_half_life_days=5.0))
    assert e.scan_response_classes[0] == "PR"   # M(28) = 1000 x 2^(-28/5) ~ 21 cells: not gone


# --------------------------------------------------------------------------- first scan
def test_a_later_first_scan_shifts_every_scan_and_the_time_to_response():
    t = np.arange(0.0, 200.0)
    n = np.where(t < 10, 1000.0, 100.0)       # a deep response from day 10 on
    c = criteria(scan_interval_days=42.0, first_scan_days=84.0)
    e = assess(t, n, np.zeros(t.size), 0.0, c)
    assert e.scan_days == (84.0, 126.0, 168.0)
    assert e.time_to_response_days == 84.0
    default = assess(t, n, np.zeros(t.size), 0.0, criteria(scan_interval_days=42.0))
    assert default.scan_days == (42.0, 84.0, 126.0, 168.0)
    assert default.time_to_response_days == 42.0


def test_the_progression_watch_follows_the_first_scan():
    watch = ProgressionWatch(criteria(scan_interval_days=14.0, first_scan_days=30.0), 60.0)
    assert watch.is_scan_record(90.0, 91.0)            # 60 + 30
    assert not watch.is_scan_record(74.0, 75.0)        # the interval alone is no scan now
    assert watch.is_scan_record(103.5, 105.0)          # 60 + 30 + 14, last record before it
    assert not watch.is_scan_record(89.0, 90.0)


@pytest.mark.parametrize("key, value", [("residual_half_life_days", -1.0),
                                        ("first_scan_days", -7.0)])
def test_negative_values_are_refused_naming_the_key(key, value):
    with pytest.raises(ScenarioError, match=f"endpoints.{key}"):
        from_toml(f"[endpoints]\n{key} = {value}\n", "bad.toml")


# ---------------------------------------------------------------- detection limit
def test_detection_limit_is_relative_to_the_baseline():
    """v = 0.04 (f = 0.2 in 2D): gone below 40 of a 1000-cell baseline; half a cell
    stays the floor when v M0 is smaller."""
    t = np.arange(6.0)
    n = np.array([1000, 500, 100, 40, 39, 0])
    np.testing.assert_array_equal(measured_cells(t, n, 0.0, 0.04), [1000, 500, 100, 40, 0, 0])
    np.testing.assert_array_equal(measured_cells(t, n, 0.0), n)
    assert gone_below(10.0, 0.01) == GONE_BELOW_CELLS


def test_a_cured_lesion_vanishes_after_log2_1_over_v_half_lives():
    """A cure at once (0 cells from day 1), bed half-life 28 days, scans every 28 days:
    M = 1000 / 2^k at scan k. With f = 0.2 (v = 0.04, 40 cells) it reads SD at 500 (above
    0.49 M0), PR from 250 to 62.5 (k = 4) and CR from 31.25 (k = 5, day 140): 5 =
    ceil(log2(1 / 0.04)) half-lives; with the half-cell rule alone from 1000 / 2048 (k = 11,
    day 308): log2(2 M0) half-lives."""
    t = 28.0 * np.arange(14)
    n = np.r_[1000.0, np.zeros(13)]
    limited = assess(t, n, np.zeros(t.size), 0.0, criteria(residual_half_life_days=28.0,
                                                           detection_limit_fraction=0.2))
    assert limited.scan_response_classes[:6] == ("SD", "PR", "PR", "PR", "CR", "CR")
    assert limited.time_to_complete_response_days == 140.0
    plain = assess(t, n, np.zeros(t.size), 0.0, criteria(residual_half_life_days=28.0))
    assert plain.time_to_complete_response_days == 308.0


def test_a_lesion_seen_again_after_vanishing_is_progression():
    """Gone below 40 cells (f = 0.2): 30, 30 are CR (nadir 0), 45 is seen again: PD, after
    a confirmed CR."""
    t = 28.0 * np.arange(4)
    e = assess(t, np.array([1000.0, 30, 30, 45]), np.zeros(4), 0.0,
               criteria(detection_limit_fraction=0.2))
    assert e.scan_response_classes == ("CR", "CR", "PD")
    assert e.response_class == "CR" and e.time_to_progression_days == 84.0


def test_detection_limit_must_leave_partial_responses_visible():
    with pytest.raises(ValueError, match="detection_limit_fraction"):
        criteria(detection_limit_fraction=0.7)
