"""The scan's measure and schedule: a residual mass that clears with a half-life
(``endpoints.residual_half_life_days``) and a first scan later than the interval
(``endpoints.first_scan_days``), on series whose values are computed by hand here.

Residual (simulator.analysis.endpoints.residual_cells): losses L_i = max(0, N_(i-1) - N_i)
in each record interval (the volume the lesion gives up), spread evenly over it, cleared at rate
lambda = ln 2 / h: R_i = R_(i-1) q + L_i (1 - q) / (lambda dt), q = exp(-lambda dt). A scan
measures N + R; no live cell and R < 0.5 is "gone" (CR).
"""
import math

import numpy as np
import pytest

from simulator.analysis.endpoints import (
    ResponseCriteria,
    assess,
    assess_timeseries,
    lesion_cells,
    residual_cells,
)
from simulator.analysis.follow_up import ProgressionWatch
from simulator.scenario import ScenarioError
from simulator.scenario import from_toml


def criteria(**overrides):
    kwargs = dict(dimensions=2, spacing_um=20.0, progression_min_mm=0.0,
                  scan_interval_days=28.0)
    kwargs.update(overrides)
    return ResponseCriteria(**kwargs)


def test_residual_by_hand():
    # 50 cells lost in day 0-1, none after; h = 1 day
    r = residual_cells([0.0, 1.0, 2.0], [100, 50, 50], 1.0)
    first = 50 * 0.5 / math.log(2.0)          # L (1 - q) / (lambda dt), q = 1/2
    assert r[0] == 0.0
    assert r[1] == pytest.approx(first, rel=1e-12)
    assert r[2] == pytest.approx(first * 0.5, rel=1e-12)
    # growth adds no bed and takes none away: up 10, then down 30
    r = residual_cells([0.0, 2.0, 4.0], [100, 110, 80], 2.0)
    assert r[1] == 0.0
    assert r[2] == pytest.approx(30 * 0.5 / math.log(2.0), rel=1e-12)


def test_residual_is_exact_whatever_the_record_spacing():
    """One loss interval then pure decay: the same value at day 30 from records every day
    or one record at day 30 (the decay is exact, not stepped)."""
    daily = residual_cells(np.arange(31.0), [100] + [0] * 30, 7.0)
    sparse = residual_cells([0.0, 1.0, 30.0], [100, 0, 0], 7.0)
    assert sparse[-1] == pytest.approx(daily[-1], rel=1e-12)


def test_no_half_life_no_residual_and_the_measure_is_the_live_count():
    t, n = [0.0, 1.0, 2.0], [100, 3, 0]
    r = residual_cells(t, n, 0.0)
    assert np.all(r == 0.0)
    assert np.array_equal(lesion_cells(n, r), np.asarray(n, dtype=float))
    assert np.array_equal(lesion_cells([0, 0, 2], [0.49, 0.5, 0.0]), [0.0, 0.5, 2.0])


def _cured_on_day_one(days):
    """1000 cells, all dead between day 0 and day 1, then records every day to ``days``."""
    t = np.arange(days + 1.0)
    n = np.zeros(t.size)
    n[0] = 1000
    return t, n, np.zeros(t.size)


def test_a_cured_lesion_is_a_partial_response_until_its_residual_clears():
    h = 14.0
    t, n, r = _cured_on_day_one(200)
    e = assess(t, n, r, 0.0, criteria(residual_half_life_days=h))
    # by hand: R(1) = 1000 (1 - 2^(-1/h)) / (ln 2 / h), then halving every h days; the
    # lesion is gone when R < 0.5, i.e. at day 1 + h log2(2 R(1)) ~ 154: scans at
    # 28 ... 140 are PR (R(28)/1000 ~ 0.26 <= 0.49), 168 and 196 are CR
    r1 = 1000 * (1 - 2 ** (-1 / h)) / (math.log(2.0) / h)
    gone = 1 + h * math.log2(2 * r1)
    assert 140 < gone < 168
    assert e.scan_response_classes == ("PR",) * 5 + ("CR",) * 2
    assert e.response_class == "CR"           # confirmed at 196
    assert e.time_to_response_days == 28.0    # the first documented PR
    measured_28 = r1 * 2 ** (-27 / h)
    assert e.first_scan_change == pytest.approx(math.sqrt(measured_28 / 1000) - 1, rel=1e-9)
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


def test_the_residual_hides_the_response_and_delays_progression():
    """80% of the lesion dies in the first day, the rest then grows 2%/day (no other
    death). Live cells: N(28) = 200 x 1.02^27 ~ 342 <= 0.49 x 1000, a PR and the nadir;
    N(56) ~ 592 >= 1.44 x 342, PD at day 56. With a 60-day half-life the scan also sees
    R(1) ~ 795 halving every 60 days: M(28) ~ 342 + 582 = 924 (SD, the nadir) and
    M(56) ~ 592 + 422 = 1014 < 1.44 x 924: no PD at day 56."""
    t = np.arange(0.0, 400.0)
    n = np.where(t == 0, 1000.0, np.round(200.0 * 1.02 ** np.maximum(t - 1, 0)))
    live = assess(t, n, np.zeros(t.size), 0.0, criteria())
    mass = assess(t, n, np.zeros(t.size), 0.0, criteria(residual_half_life_days=60.0))
    assert live.scan_response_classes[:2] == ("PR", "PD")
    assert live.time_to_progression_days == 56.0
    assert mass.scan_response_classes[:2] == ("SD", "SD")
    assert mass.response_class == "SD"
    assert mass.progression_observed and mass.time_to_progression_days > 56.0
    # the best response is the nadir's measure: (D / D0)^2 = M / M0 in 2D
    r = residual_cells(t, n, 60.0)
    assert (n[28] + r[28]) / 1000 == pytest.approx((1 + mass.best_response) ** 2, rel=1e-9)


def test_timeseries_assessment_reads_the_residual_from_the_live_count():
    t, n, r = _cured_on_day_one(60)
    series = {"time_days": t, "tumor_cells": n, "tumor_resistant": r}
    e = assess_timeseries(series, 0.0, criteria(residual_half_life_days=5.0))
    assert e == assess(t, n, r, 0.0, criteria(residual_half_life_days=5.0))
    assert e.scan_response_classes[0] == "PR"   # R(28) = 934 x 2^(-27/5) ~ 22 cells: not gone


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
