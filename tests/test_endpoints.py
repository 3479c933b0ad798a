"""Tests of simulator.analysis.endpoints on synthetic burden series whose class is known by construction.

Thresholds (REFERENCES.md, "Response criteria on a lattice"): PR <=> N/N0 <= 0.49 (2D) or
0.343 (3D); PD <=> N/N_nadir >= 1.44 (2D) or 1.728 (3D), and the absolute rise in equivalent
diameter >= progression_min_mm. Best overall response (RECIST 1.1): PR/CR confirmed by
PR/CR scans up to one >= 28 days later, SD only at a scan >= 56 days after the start.
Unless a test says otherwise scans are every 28 days, so a response is confirmed by the
next scan and SD needs the second scan.
"""
import csv
import io
import math

import numpy as np
import pytest

from simulator.analysis.endpoints import (
    Endpoints,
    ResponseCriteria,
    assess,
    assess_timeseries,
    best_overall_response,
    endpoint_table,
    equivalent_diameter_mm,
)

SCALE_FREE = dict(spacing_um=20.0, progression_min_mm=0.0)


def criteria(dimensions=2, **overrides):
    kwargs = dict(SCALE_FREE, scan_interval_days=28.0)
    kwargs.update(overrides)
    return ResponseCriteria(dimensions=dimensions, **kwargs)


def scan_series(burdens, interval=28.0, start=0.0, resistant=None):
    """Records only at baseline (index 0) and at each scan time."""
    t = start + interval * np.arange(len(burdens), dtype=float)
    n = np.asarray(burdens, dtype=float)
    r = np.zeros_like(n) if resistant is None else np.asarray(resistant, dtype=float)
    return t, n, r


def classes_of(burdens, dimensions=2, **overrides):
    t, n, r = scan_series(burdens)
    return assess(t, n, r, 0.0, criteria(dimensions, **overrides))


# ---------------------------------------------------------------- scale and diameter
def test_equivalent_diameter_of_unit_disc_and_ball():
    a = 0.02
    assert equivalent_diameter_mm(math.pi, 2, a) == pytest.approx(2 * a)
    assert equivalent_diameter_mm(4 * math.pi / 3, 3, a) == pytest.approx(2 * a)
    d = equivalent_diameter_mm([0, 1, 4], 2, 1.0)
    assert d[0] == 0.0 and d[2] == pytest.approx(2 * d[1])  # D ~ sqrt(N) in 2D
    d3 = equivalent_diameter_mm([1, 8], 3, 1.0)
    assert d3[1] == pytest.approx(2 * d3[0])  # D ~ N^(1/3) in 3D


def test_mm_per_site_scales_with_real_cells_per_site():
    assert ResponseCriteria(2, 20.0).mm_per_site == pytest.approx(0.02)
    # 100 real cells of 20 um side by side in a plane: a square 10 cells = 0.2 mm wide
    assert ResponseCriteria(2, 20.0, real_cells_per_site=100).mm_per_site == pytest.approx(0.2)
    assert ResponseCriteria(3, 20.0, real_cells_per_site=1000).mm_per_site == pytest.approx(0.2)


def test_cell_ratio_equivalences_from_references():
    assert criteria(2).partial_response_cell_ratio == pytest.approx(0.49)
    assert criteria(3).partial_response_cell_ratio == pytest.approx(0.343)
    assert criteria(2).progression_cell_ratio == pytest.approx(1.44)
    assert criteria(3).progression_cell_ratio == pytest.approx(1.728)


# ---------------------------------------------------------------- exact boundaries
@pytest.mark.parametrize("dimensions, n0, n, expected", [
    (2, 10000, 4900, "PR"),   # N/N0 = 0.49 exactly: PR (inclusive)
    (2, 10000, 4901, "SD"),   # just above 0.49
    (2, 10000, 4899, "PR"),
    (3, 1000, 343, "PR"),     # 0.343 exactly
    (3, 1000, 344, "SD"),
    (3, 10000, 4900, "SD"),   # the 2D threshold does not apply in 3D
])
def test_partial_response_boundary(dimensions, n0, n, expected):
    e = classes_of([n0, n], dimensions)
    assert e.scan_response_classes == (expected,)


@pytest.mark.parametrize("dimensions, n0, n, expected", [
    (2, 10000, 14400, "PD"),  # N/N_nadir = 1.44 exactly: PD
    (2, 10000, 14399, "SD"),
    (3, 1000, 1728, "PD"),    # 1.728 exactly
    (3, 1000, 1727, "SD"),
    (3, 10000, 14400, "SD"),  # 1.44 is not enough in 3D
])
def test_progression_boundary_over_baseline(dimensions, n0, n, expected):
    e = classes_of([n0, n], dimensions)
    assert e.scan_response_classes == (expected,)


@pytest.mark.parametrize("n, expected", [(1440, "PD"), (1439, "PR")])
def test_progression_is_measured_from_the_nadir_and_wins_over_pr(n, expected):
    # 1000 is the nadir; 1.44 * 1000 = 1440 is PD although still 86% below baseline
    e = classes_of([10000, 1000, n])
    assert e.scan_response_classes == ("PR", expected)


# ---------------------------------------------------------------- series of known class
def test_complete_response():
    t = np.arange(0.0, 365.0)
    n = np.round(1e4 * np.clip(1 - t / 40.0, 0, None))  # all cells gone by day 40
    e = assess(t, n, np.zeros_like(n), 0.0, criteria(scan_interval_days=28.0))
    assert e.scan_response_classes[:2] == ("PR", "CR")  # 0.3 N0 at day 28, 0 at day 56
    assert set(e.scan_response_classes[1:]) == {"CR"}
    # PR at 28 confirmed (as PR) by the CR at 56; the CR at 56 confirmed by the CR at 84
    assert e.response_class == "CR" and e.objective_response
    assert e.best_response == -1.0 and e.best_tumor_cells_change == -1.0
    assert e.nadir_tumor_cells == 0.0 and e.nadir_day == 56.0
    assert e.time_to_response_days == 28.0
    assert not e.progression_observed and math.isnan(e.time_to_progression_days)
    assert e.n_scans == 13 and e.follow_up_days == 364.0  # last record = 13th scan
    assert e.progression_free_days == 364.0
    assert e.response_ongoing and e.duration_of_response_days == 364.0 - 28.0
    assert e.durable_response
    assert math.isnan(e.resistant_fraction_final)  # no tumour left


def targeted_like_run():
    """Sensitive cells die at 0.1/day, pre-existing resistant cells grow at 0.05/day."""
    t = np.arange(0.0, 141.0)
    sensitive = np.round(1e5 * np.exp(-0.1 * t))
    resistant = np.round(100 * np.exp(0.05 * t))
    return t, sensitive + resistant, resistant


def test_targeted_like_fast_response_then_resistant_relapse():
    t, n, r = targeted_like_run()
    crit = ResponseCriteria(2, 20.0, real_cells_per_site=1000, scan_interval_days=28.0)
    e = assess(t, n, r, 0.0, crit)
    # day 28: 6081 + 406 = 6487 (0.064 N0, PR); day 56: 370 + 1644 = 2014 (nadir);
    # day 84: 22 + 6669 = 6691 = 3.3 x nadir (PD), diameter up by ~26 mm > 5 mm
    assert e.scan_response_classes[:3] == ("PR", "PR", "PD")
    assert e.response_class == "PR"
    assert e.nadir_day == 56.0 and e.nadir_tumor_cells == 2014.0
    # best response is on the equivalent diameter, the measure the class uses
    assert e.best_response == pytest.approx(math.sqrt(2014.0 / 100100.0) - 1.0)
    assert e.best_tumor_cells_change == pytest.approx(2014.0 / 100100.0 - 1.0)
    assert e.time_to_response_days == 28.0
    assert e.progression_observed and e.time_to_progression_days == 84.0
    assert e.progression_free_days == 84.0
    assert e.duration_of_response_days == 56.0 and not e.response_ongoing
    assert not e.durable_response
    assert e.resistant_fraction_at_progression == pytest.approx(6669.0 / 6691.0)
    assert e.resistant_fraction_baseline == pytest.approx(100.0 / 100100.0)
    # resistant share reaches 1/2 when 100 e^{0.05 t} = 1e5 e^{-0.1 t}: t = ln(1000)/0.15
    # = 46.05 days, so the first daily record at or past it is day 47
    assert e.time_to_resistance_days == 47.0


def immunotherapy_like_run(days=720.0):
    """Burden falls slowly to a 40% plateau: N/N0 = 1 - 0.6 (1 - exp(-t / 60))."""
    t = np.arange(0.0, days + 1.0)
    n = np.round(1e5 * (1 - 0.6 * (1 - np.exp(-t / 60.0))))
    return t, n, np.zeros_like(n)


def test_immunotherapy_like_slow_durable_response():
    t, n, r = immunotherapy_like_run()
    e = assess(t, n, r, 0.0, criteria(scan_interval_days=56.0))
    # day 56: 0.636 (SD); day 112: 0.4928, just above 0.49 (SD); day 168: 0.436 (PR)
    assert e.scan_response_classes[:3] == ("SD", "SD", "PR")
    assert e.response_class == "PR"
    assert e.time_to_response_days == 168.0
    assert not e.progression_observed
    assert e.follow_up_days == 672.0  # last scan: 12 x 56
    assert e.response_ongoing and e.duration_of_response_days == 672.0 - 168.0
    assert e.durable_response
    assert math.isnan(e.time_to_resistance_days)
    assert e.resistant_fraction_baseline == 0.0


def test_targeted_responds_faster_but_immunotherapy_lasts():
    crit = criteria(scan_interval_days=28.0)
    targeted = assess(*targeted_like_run(), 0.0, crit)
    immune = assess(*immunotherapy_like_run(), 0.0, crit)
    assert targeted.time_to_response_days < immune.time_to_response_days
    assert immune.durable_response and not targeted.durable_response


def test_stable_disease():
    e = classes_of([1000, 1100, 900, 1050, 950])
    assert set(e.scan_response_classes) == {"SD"}
    assert e.response_class == "SD" and not e.objective_response
    assert math.isnan(e.time_to_response_days) and math.isnan(e.duration_of_response_days)
    assert not e.durable_response and not e.response_ongoing
    assert not e.progression_observed and e.progression_free_days == 4 * 28.0
    assert e.nadir_tumor_cells == 900.0 and e.nadir_day == 56.0
    assert e.best_response == pytest.approx(math.sqrt(0.9) - 1.0)  # -5.1% in diameter
    assert e.best_tumor_cells_change == pytest.approx(-0.1)


def test_immediate_progression_is_best_response_pd():
    e = classes_of([1000, 1500, 2500])
    assert e.scan_response_classes[0] == "PD"
    assert e.response_class == "PD"
    assert e.time_to_progression_days == 28.0
    # the assessment window ends at the first PD scan, whose diameter is sqrt(1.5) D0
    assert e.best_response == pytest.approx(math.sqrt(1.5) - 1.0)


def test_response_after_progression_does_not_count():
    e = classes_of([1000, 900, 1500, 300])
    assert e.scan_response_classes == ("SD", "PD", "PR")
    # the only scan before PD is at day 28, before the 56-day minimum for SD: PD
    assert e.response_class == "PD"
    assert math.isnan(e.time_to_response_days)
    assert e.time_to_progression_days == 56.0


@pytest.mark.parametrize("classes, days, expected, first", [
    (["SD", "PR", "CR", "CR", "PD"], [28, 56, 84, 112, 140], "CR", 1),  # PR->CR is PR; CR->CR
    (["PR", "SD", "PD", "CR"], [28, 56, 84, 112], "SD", None),  # unconfirmed PR; SD at 56
    (["PR", "PD"], [28, 56], "PD", None),          # unconfirmed, no SD by day 56
    (["PR", "PR"], [28, 56], "PR", 0),             # confirmed 28 days later
    (["CR", "PR"], [28, 56], "PR", 0),             # CR then PR confirms a PR
    (["PR", "CR"], [28, 56], "PR", 0),             # PR then CR is PR (RECIST 1.1 Table 3)
    (["CR"], [28], "NE", None),                    # nothing to confirm it, no SD time
    (["CR"], [56], "SD", None),                    # unconfirmed CR at >= 56 days counts as SD
    (["PD", "CR"], [28, 56], "PD", None),
    ([], [], "NE", None),
    (["PR", "PR", "PR"], [14, 28, 42], "PR", 0),   # 14-day scans: confirmed at day 42
    (["PR", "PR", "SD", "SD"], [14, 28, 42, 56], "SD", None),  # broken before 28 days
])
def test_best_overall_response_confirmation_and_sd_minimum(classes, days, expected, first):
    overall = best_overall_response(classes, days, criteria())
    assert overall.response_class == expected
    assert overall.first_response_scan == first


def test_unconfirmed_responses_count_when_confirmation_is_off():
    loose = criteria(confirm_responses=False)
    assert best_overall_response(["PR", "PD"], [28, 56], loose).response_class == "PR"
    e = classes_of([1000, 400, 2000], confirm_responses=False)
    assert e.response_class == "PR" and e.time_to_response_days == 28.0
    strict = classes_of([1000, 400, 2000])
    assert strict.response_class == "PD" and math.isnan(strict.time_to_response_days)


def test_confirmation_interval_with_frequent_scans():
    # scans every 14 days, confirmation needs 28: PR at 14 is confirmed by day 42
    t, n, r = scan_series([1000, 400, 400, 400], interval=14.0)
    e = assess(t, n, r, 0.0, criteria(scan_interval_days=14.0))
    assert e.response_class == "PR" and e.time_to_response_days == 14.0
    # 550 / 400 = 1.375 x nadir (< 1.44, not PD) and 0.55 N0 (> 0.49, not PR): SD at 42
    t, n, r = scan_series([1000, 400, 400, 550, 550], interval=14.0)
    e = assess(t, n, r, 0.0, criteria(scan_interval_days=14.0))
    assert e.scan_response_classes == ("PR", "PR", "SD", "SD")
    assert e.response_class == "SD" and not e.objective_response


def test_response_then_stable_is_stable_disease():
    e = classes_of([1000, 450, 600, 600])  # 600 / 450 = 1.33 x nadir: SD, not PD
    assert e.scan_response_classes == ("PR", "SD", "SD")
    assert e.response_class == "SD" and math.isnan(e.time_to_response_days)
    assert e.best_response == pytest.approx(math.sqrt(0.45) - 1.0)  # -32.9%, unconfirmed
    assert e.first_scan_change == e.best_response  # the first scan was the best


def test_complete_response_then_regrowth_is_progression():
    # a vanished lesion that reappears has grown by more than 20% over its nadir (0)
    e = classes_of([1000, 0, 10])
    assert e.scan_response_classes == ("CR", "PD")
    assert e.response_class == "PD"  # the CR was never confirmed
    e = classes_of([1000, 400, 0, 0])
    assert e.scan_response_classes == ("PR", "CR", "CR")
    assert e.response_class == "CR" and e.time_to_response_days == 28.0


def test_time_to_complete_response_counts_from_the_confirmed_cr():
    # PR at 28, CR at 56 confirmed at 84: responding from day 28, complete from day 56
    e = classes_of([1000, 400, 0, 0])
    assert e.time_to_response_days == 28.0 and e.time_to_complete_response_days == 56.0
    # CR at 28 confirmed at 56: both from day 28
    e = classes_of([1000, 0, 0])
    assert e.time_to_response_days == e.time_to_complete_response_days == 28.0
    # a CR scan that is not confirmed (the last scan) is no complete response
    e = classes_of([1000, 400, 400, 0])
    assert e.response_class == "PR" and math.isnan(e.time_to_complete_response_days)
    # a PR lasting, no CR at all
    e = classes_of([1000, 400, 400])
    assert e.response_class == "PR" and math.isnan(e.time_to_complete_response_days)


@pytest.mark.parametrize("fold", [4.0, 6.0])
def test_untreated_lattice_growth_is_progression_not_stable_disease(fold):
    """A compact lattice tumour grows with a linear radius (REFERENCES.md, Eden growth), so
    D(t) = D0 (1 + t / T). Growing ``fold``-fold in cells over 240 days gives D(240) =
    sqrt(fold) D0: T = 240 / (sqrt(fold) - 1). Scanned every 14 days, the diameter first
    rises >= 20% at day 56 for fold 4 (D/D0 = 1.175 at 42, 1.233 at 56) and at day 42 for
    fold 6 (1.169 at 28, 1.254 at 42), so no SD scan falls at or after the 56-day minimum:
    best overall response PD. (Without the minimum the first scan, SD, made it SD.)"""
    t = np.arange(0.0, 241.0)
    radius_t = 240.0 / (math.sqrt(fold) - 1.0)
    n = np.round(1e4 * (1.0 + t / radius_t) ** 2)
    e = assess(t, n, np.zeros_like(n), 0.0, criteria(scan_interval_days=14.0))
    assert n[-1] / n[0] == pytest.approx(fold, rel=1e-3)
    assert e.scan_response_classes[0] == "SD"
    assert e.response_class == "PD"
    assert e.best_response > 0.0  # the best the tumour did was grow least


# ---------------------------------------------------------------- absolute mm rule
def test_absolute_rule_blocks_progression_of_a_tiny_tumour():
    burdens = [100, 60, 200]  # 200/60 = 3.3 x nadir, but D grows 0.226 -> 0.319 mm at 20 um
    t, n, r = scan_series(burdens)
    strict = assess(t, n, r, 0.0, ResponseCriteria(2, 20.0, scan_interval_days=28.0))
    assert strict.scan_response_classes == ("SD", "SD")
    assert not strict.progression_observed
    assert strict.progression_scans_blocked_by_min_mm == 1
    relaxed = assess(t, n, r, 0.0, criteria())
    assert relaxed.scan_response_classes == ("SD", "PD")
    assert relaxed.progression_scans_blocked_by_min_mm == 0
    # with 10^4 real cells per site (a = 2 mm) the same rise is 9.3 mm: PD again
    scaled = assess(t, n, r, 0.0, ResponseCriteria(2, 20.0, real_cells_per_site=1e4,
                                                   scan_interval_days=28.0))
    assert scaled.scan_response_classes == ("SD", "PD")


def test_absolute_rule_boundary_in_mm():
    # a = 1 mm per site; D(N) = 2 sqrt(N/pi). Pick N so that D rises by exactly 5 mm from D0.
    crit = ResponseCriteria(2, 1000.0, scan_interval_days=28.0, progression_min_mm=5.0)
    n0 = 100.0
    d0 = 2 * math.sqrt(n0 / math.pi)
    n_exact = math.pi * ((d0 + 5.0) / 2) ** 2  # 1.97 x N0, so the relative rule holds
    for n1, expected in ((n_exact, "PD"), (n_exact * 0.999, "SD")):
        t, n, r = scan_series([n0, n1])
        assert assess(t, n, r, 0.0, crit).scan_response_classes == (expected,)


# ---------------------------------------------------------------- scans and baseline
def test_dip_between_scans_is_not_seen():
    t = np.arange(0.0, 57.0)
    n = np.full(t.shape, 1000.0)
    n[20:40] = 300.0  # deep dip entirely between the day-0 baseline and the day-56 scan
    r = np.zeros_like(n)
    coarse = assess(t, n, r, 0.0, criteria(scan_interval_days=56.0))
    assert coarse.scan_response_classes == ("SD",) and coarse.response_class == "SD"
    assert coarse.nadir_tumor_cells == 1000.0
    fine = assess(t, n, r, 0.0, criteria(scan_interval_days=28.0))
    assert fine.scan_response_classes == ("PR", "PD")  # 300 at day 28, back to 1000 at 56


def test_baseline_is_last_record_at_or_before_start_and_scans_from_start():
    t = np.array([0.0, 5.0, 10.5, 20.0, 38.0, 40.0])
    n = np.array([10.0, 1000.0, 50.0, 2000.0, 400.0, 100.0])
    e = assess(t, n, np.zeros_like(n), 10.0, criteria(scan_interval_days=28.0))
    assert e.baseline_day == 5.0 and e.baseline_tumor_cells == 1000.0
    assert e.scan_days == (38.0,)  # 10 + 28; the run ends before 66
    assert e.scan_tumor_cells == (400.0,)  # the record at 38, not the later 100
    assert e.scan_response_classes == ("PR",)
    # one PR scan 28 days in: unconfirmed, and too early for SD: not evaluable
    assert e.response_class == "NE" and math.isnan(e.time_to_response_days)


def test_floating_point_step_times_still_hit_scans():
    dt = 1.0 / 24.0
    t = np.cumsum(np.full(24 * 60, dt)) - dt  # accumulated steps: 28.0 is not exact
    n = np.where(t < 27.99, 1000.0, 400.0)
    e = assess(t, n, np.zeros_like(n), 0.0, criteria(scan_interval_days=28.0))
    assert e.scan_response_classes[0] == "PR"


def test_records_coarser_than_scans_reuse_the_last_record():
    t = np.array([0.0, 50.0, 100.0])
    n = np.array([1000.0, 400.0, 3000.0])
    e = assess(t, n, np.zeros_like(n), 0.0, criteria(scan_interval_days=20.0))
    assert e.scan_days == (20.0, 40.0, 60.0, 80.0, 100.0)
    assert e.scan_tumor_cells == (1000.0, 1000.0, 400.0, 400.0, 3000.0)


# ---------------------------------------------------------------- durability rule
@pytest.mark.parametrize("pd_scan, durable", [(7, True), (6, False)])
def test_durable_means_response_lasting_at_least_durable_min_days(pd_scan, durable):
    burdens = [1000] + [400] * (pd_scan - 1) + [2000]  # PR from scan 1 to the PD scan
    t, n, r = scan_series(burdens, interval=30.0)
    e = assess(t, n, r, 0.0, criteria(scan_interval_days=30.0, durable_min_days=180.0))
    assert e.duration_of_response_days == 30.0 * (pd_scan - 1)
    assert e.durable_response is durable


def test_ongoing_response_with_short_follow_up_is_not_durable():
    e = classes_of([1000, 400, 400])
    assert e.response_ongoing and e.duration_of_response_days == 28.0
    assert not e.durable_response


# ---------------------------------------------------------------- NaN and censoring
def test_no_scan_before_the_end_is_not_evaluable():
    t = np.arange(0.0, 20.0)
    n = np.full(t.shape, 500.0)
    e = assess(t, n, np.zeros_like(n), 0.0, criteria(scan_interval_days=28.0))
    assert e.n_scans == 0 and e.response_class == "NE" and not e.objective_response
    for name in ("nadir_tumor_cells", "nadir_day", "best_response", "best_tumor_cells_change",
                 "first_scan_change",
                 "time_to_progression_days", "follow_up_days", "progression_free_days",
                 "time_to_response_days", "resistant_fraction_at_progression"):
        assert math.isnan(getattr(e, name)), name
    assert not e.progression_observed


def test_zero_baseline_is_not_evaluable():
    e = classes_of([0, 0, 0])
    assert e.scan_response_classes == ("NE", "NE") and e.response_class == "NE"
    assert math.isnan(e.best_response) and math.isnan(e.resistant_fraction_baseline)
    assert not e.progression_observed


def test_immune_readouts_nan_when_not_given():
    e = classes_of([1000, 900])
    assert math.isnan(e.infiltration_core_to_margin)
    assert math.isnan(e.cd8_to_suppressive_final) and math.isnan(e.cd8_to_suppressive_mean)


def test_censored_and_observed_runs_feed_kaplan_meier():
    lifelines = pytest.importorskip("lifelines")
    runs = [classes_of([1000, 400, 2000]), classes_of([1000, 900, 950]),
            classes_of([1000, 1600])]
    table = endpoint_table(runs)
    assert list(table["progression_observed"]) == [True, False, True]
    assert list(table["progression_free_days"]) == [56.0, 56.0, 28.0]
    km = lifelines.KaplanMeierFitter().fit(table["progression_free_days"],
                                           table["progression_observed"])
    # one of three progresses at 28; then one of two at 56 (the censored run ties at 56 and,
    # by convention, is still at risk): S(56) = 2/3 * 1/2
    assert km.survival_function_at_times(56.0).iloc[0] == pytest.approx(1 / 3)


# ---------------------------------------------------------------- resistance
def test_time_to_resistance_threshold_is_inclusive_and_from_start():
    t = np.array([0.0, 10.0, 20.0, 30.0, 40.0])
    n = np.full(5, 100.0)
    r = np.array([90.0, 10.0, 40.0, 50.0, 80.0])  # 90% before treatment is ignored
    e = assess(t, n, r, 10.0, criteria(scan_interval_days=10.0))
    assert e.time_to_resistance_days == 20.0  # share 0.5 at day 30
    e0 = assess(t, n, r, 0.0, criteria(scan_interval_days=10.0))
    assert e0.time_to_resistance_days == 0.0  # already resistant at baseline
    e_hi = assess(t, n, r, 10.0, criteria(scan_interval_days=10.0,
                                          resistance_share_threshold=0.9))
    assert math.isnan(e_hi.time_to_resistance_days)


def test_time_to_resistance_skips_records_without_tumour():
    t = np.array([0.0, 10.0, 20.0])
    e = assess(t, np.array([100.0, 0.0, 10.0]), np.array([0.0, 0.0, 6.0]), 0.0,
               criteria(scan_interval_days=10.0))
    assert e.time_to_resistance_days == 20.0


# ---------------------------------------------------------------- immune readouts
def test_infiltration_and_cd8_ratios_are_time_averaged_over_treatment():
    t = np.array([0.0, 10.0, 20.0, 30.0])
    n = np.full(4, 100.0)
    core = np.array([1000.0, 0.0, 4.0, 0.0])  # pre-treatment 1000 must be excluded
    margin = np.array([1.0, 4.0, 4.0, 4.0])
    t_cells = np.array([50.0, 10.0, 20.0, 30.0])
    supp = np.array([1.0, 5.0, 5.0, 10.0])
    e = assess(t, n, np.zeros(4), 10.0, criteria(scan_interval_days=10.0),
               t_cell_density_core=core, t_cell_density_margin=margin, t_cells=t_cells,
               suppressive_cells=supp)
    # trapezoid over days 10..30: core mean = (2*10 + 2*10)/20 = 2; margin mean = 4
    assert e.infiltration_core_to_margin == pytest.approx(0.5)
    assert e.cd8_to_suppressive_final == pytest.approx(3.0)
    # T mean = (15 + 25)/2 = 20; suppressive mean = (5 + 7.5)/2 = 6.25
    assert e.cd8_to_suppressive_mean == pytest.approx(20.0 / 6.25)


def test_time_average_places_the_baseline_record_at_treatment_start():
    t = np.array([0.0, 20.0, 30.0])
    core = np.array([2.0, 6.0, 6.0])
    e = assess(t, np.full(3, 100.0), np.zeros(3), 10.0, criteria(scan_interval_days=10.0),
               t_cell_density_core=core, t_cell_density_margin=np.ones(3))
    # window [10, 20, 30]: (4 * 10 + 6 * 10) / 20 = 5 (over [0, 30] it would be 4.67)
    assert e.infiltration_core_to_margin == pytest.approx(5.0)


def test_ratio_with_no_suppressive_cells_is_inf_and_zero_over_zero_is_nan():
    t = np.array([0.0, 10.0])
    n = np.full(2, 100.0)
    e = assess(t, n, np.zeros(2), 0.0, criteria(scan_interval_days=10.0),
               t_cells=[5.0, 5.0], suppressive_cells=[0.0, 0.0],
               t_cell_density_core=[0.0, 0.0], t_cell_density_margin=[0.0, 0.0])
    assert e.cd8_to_suppressive_final == math.inf and e.cd8_to_suppressive_mean == math.inf
    assert math.isnan(e.infiltration_core_to_margin)


def test_infiltration_skips_records_where_a_density_is_undefined():
    # the recorder writes NaN density when there is no tumour or no core yet
    t = np.array([0.0, 10.0, 20.0, 30.0])
    core = np.array([np.nan, 2.0, np.nan, 4.0])
    margin = np.array([1.0, 4.0, 4.0, 4.0])
    e = assess(t, np.full(4, 100.0), np.zeros(4), 0.0, criteria(scan_interval_days=10.0),
               t_cell_density_core=core, t_cell_density_margin=margin)
    # defined records at days 10 and 30: core mean 3, margin mean 4
    assert e.infiltration_core_to_margin == pytest.approx(0.75)
    none = assess(t, np.full(4, 100.0), np.zeros(4), 0.0, criteria(scan_interval_days=10.0),
                  t_cell_density_core=np.full(4, np.nan), t_cell_density_margin=margin)
    assert math.isnan(none.infiltration_core_to_margin)


# ---------------------------------------------------------------- validation
def test_mismatched_lengths_raise_with_names():
    with pytest.raises(ValueError, match="tumor_resistant has 2 records but time_days has 3"):
        assess([0.0, 1.0, 2.0], [1.0, 1.0, 1.0], [0.0, 0.0], 0.0, criteria())
    with pytest.raises(ValueError, match="t_cell_density_core has 1 records"):
        assess([0.0, 1.0], [1.0, 1.0], [0.0, 0.0], 0.0, criteria(),
               t_cell_density_core=[1.0], t_cell_density_margin=[1.0, 1.0])


@pytest.mark.parametrize("time, n, r, start, message", [
    ([0.0, 2.0, 1.0], [1, 1, 1], [0, 0, 0], 0.0, "strictly increasing"),
    ([0.0, 1.0], [1, -1], [0, 0], 0.0, ">= 0"),
    ([0.0, 1.0], [1, 1], [0, 2], 0.0, "exceeds tumor_cells"),
    ([0.0, 1.0], [1, np.nan], [0, 0], 0.0, "NaN or inf"),
    ([5.0, 6.0], [1, 1], [0, 0], 0.0, "before the first record"),
    ([], [], [], 0.0, "empty"),
    ([[0.0, 1.0]], [[1, 1]], [[0, 0]], 0.0, "one-dimensional"),
    ([0.0, 1.0], [1, 1], [0, 0], math.nan, "must be finite"),
])
def test_bad_series_raise_value_error(time, n, r, start, message):
    with pytest.raises(ValueError, match=message):
        assess(time, n, r, start, criteria())


def test_immune_series_must_come_in_pairs():
    with pytest.raises(ValueError, match="together"):
        assess([0.0, 1.0], [1, 1], [0, 0], 0.0, criteria(), t_cell_density_core=[1, 1])
    with pytest.raises(ValueError, match="together"):
        assess([0.0, 1.0], [1, 1], [0, 0], 0.0, criteria(), t_cells=[1, 1])


@pytest.mark.parametrize("overrides, message", [
    (dict(dimensions=4), "dimensions must be 2 or 3"),
    (dict(spacing_um=0.0), "spacing_um must be > 0"),
    (dict(partial_response_drop=1.2), r"partial_response_drop must be in \(0, 1\)"),
    (dict(progression_rise=0.0), "progression_rise must be > 0"),
    (dict(progression_min_mm=-1.0), "progression_min_mm must be >= 0"),
    (dict(scan_interval_days=math.inf), "scan_interval_days must be > 0"),
    (dict(resistance_share_threshold=0.0), "resistance_share_threshold"),
    (dict(durable_min_days="long"), "durable_min_days must be a number"),
    (dict(stable_disease_min_days=-1.0), "stable_disease_min_days must be >= 0"),
    (dict(confirm_responses="yes"), "confirm_responses must be true or false"),
])
def test_bad_criteria_raise(overrides, message):
    kwargs = dict(dimensions=2, spacing_um=20.0)
    kwargs.update(overrides)
    with pytest.raises(ValueError, match=message):
        ResponseCriteria(**kwargs)


def test_from_table_reads_keys_and_suggests_misspellings():
    crit = ResponseCriteria.from_table({"scan_interval_days": 42, "progression_min_mm": 0},
                                       dimensions=3, spacing_um=15.0)
    assert crit.scan_interval_days == 42 and crit.dimensions == 3 and crit.spacing_um == 15.0
    assert ResponseCriteria.from_table(None, dimensions=2, spacing_um=20.0) == \
        ResponseCriteria(2, 20.0)
    with pytest.raises(ValueError, match="did you mean 'scan_interval_days'"):
        ResponseCriteria.from_table({"scan_interval_day": 42}, dimensions=2, spacing_um=20.0)
    with pytest.raises(ValueError, match="unknown key"):
        ResponseCriteria.from_table({"dimensions": 2}, dimensions=2, spacing_um=20.0)


def test_equivalent_diameter_rejects_bad_input():
    with pytest.raises(ValueError, match="dimensions"):
        equivalent_diameter_mm([1.0], 1, 0.02)
    with pytest.raises(ValueError, match=">= 0"):
        equivalent_diameter_mm([-1.0], 2, 0.02)


# ---------------------------------------------------------------- output structures
def test_to_dict_scalars_and_optional_scans():
    e = classes_of([1000, 400, 2000])
    d = e.to_dict()
    # the PR at 28 is not confirmed before PD at 56, and 28 days is too early for SD
    assert d["response_class"] == "PD" and d["time_to_progression_days"] == 56.0
    assert "scan_response_classes" not in d
    assert all(not isinstance(v, (list, tuple, np.ndarray)) for v in d.values())
    full = e.to_dict(scans=True)
    assert full["scan_response_classes"] == ["PR", "PD"]
    assert full["scan_days"] == [28.0, 56.0]
    # the HDF5 /summary contract names
    for key in ("best_response", "response_class", "time_to_progression_days",
                "durable_response"):
        assert key in d


def test_endpoint_table_columns_and_csv_without_pandas():
    runs = [classes_of([1000, 400, 2000]), classes_of([1000, 1100, 900])]
    table = endpoint_table(runs, extra_columns={"arm": ["targeted", "immune"],
                                                "replicate": [0, 0]})
    assert list(table)[:2] == ["arm", "replicate"]
    assert all(len(col) == 2 for col in table.values())
    assert table["response_class"].tolist() == ["PD", "SD"]
    assert table["progression_observed"].dtype == np.bool_
    assert table["n_scans"].dtype == np.int64
    assert np.isnan(table["time_to_progression_days"][1])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(table)
    writer.writerows(zip(*table.values()))
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert rows[0]["arm"] == "targeted" and float(rows[0]["time_to_progression_days"]) == 56.0


def test_endpoint_table_empty_and_errors():
    empty = endpoint_table([])
    assert "response_class" in empty and empty["best_response"].shape == (0,)
    e = classes_of([1000, 400])
    with pytest.raises(ValueError, match="extra column 'arm'"):
        endpoint_table([e], extra_columns={"arm": ["a", "b"]})
    with pytest.raises(ValueError, match="shadows"):
        endpoint_table([e], extra_columns={"best_response": [0.0]})
    with pytest.raises(TypeError, match="expected Endpoints"):
        endpoint_table([e.to_dict()])


def test_endpoint_table_loads_into_pandas_when_available():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(endpoint_table([classes_of([1000, 400, 400])]))
    assert frame.loc[0, "response_class"] == "PR"


def test_assess_timeseries_uses_hdf5_names():
    t, n, r = targeted_like_run()
    series = {"time_days": t, "tumor_cells": n, "tumor_resistant": r,
              "t_cells": np.full(t.shape, 4.0), "suppressive_cells": np.full(t.shape, 2.0),
              "t_cell_density_core": np.full(t.shape, 3.0),
              "t_cell_density_margin": np.full(t.shape, 6.0),
              "divisions_total": np.zeros(t.shape)}
    crit = criteria(scan_interval_days=28.0)
    e = assess_timeseries(series, 0.0, crit)
    assert e == assess(t, n, r, 0.0, crit, t_cells=series["t_cells"],
                       suppressive_cells=series["suppressive_cells"],
                       t_cell_density_core=series["t_cell_density_core"],
                       t_cell_density_margin=series["t_cell_density_margin"])
    assert e.cd8_to_suppressive_mean == 2.0
    assert e.infiltration_core_to_margin == 0.5  # read from the recorded density names
    with pytest.raises(ValueError, match="lacks tumor_resistant"):
        assess_timeseries({"time_days": t, "tumor_cells": n}, 0.0, crit)


def test_endpoints_are_frozen():
    e = classes_of([1000, 400])
    assert isinstance(e, Endpoints)
    with pytest.raises(AttributeError):
        e.response_class = "CR"
