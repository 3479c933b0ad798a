"""Dose blocks expanded to steps, the first-step-at-or-after rule, rules on synthetic burden
series (switch at progression, adaptive pause/resume, stop in response), validation of the
[drugs] table (every error names its key) and the TOML examples of docs/regimens.md."""
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from simulator import schema
from simulator.treatment.drugs import PRESETS, DoseBlock, Drug, check_drugs
from simulator.treatment.regimen import Observation, Regimen, day_to_step, expand_blocks
from simulator.scenario import dumps_toml
from simulator.schema import ScenarioError

ROOT = Path(__file__).resolve().parents[1]


def drugs_from(text: str) -> dict:
    """Build the drugs of a TOML text whose tables are [<name>] (as schema.build would)."""
    table = tomllib.loads(text)
    return {name: schema.build(Drug, t, f"drugs.{name}") for name, t in table.items()}


def simulate(regimen, burden, n_steps=None):
    """Feed burden(day) at each step start; returns {drug: [steps dosed]}."""
    n_steps = regimen.n_steps if n_steps is None else n_steps
    for s in range(n_steps):
        regimen.doses_for_step(s, Observation(burden(regimen.day_of(s))))
    steps = {name: [] for name in regimen.names}
    for d in regimen.dose_log:
        steps[d.drug].append(d.step)
    return steps


def events(regimen):
    return [(e.step, e.drug, e.action, e.reason) for e in regimen.events]


# ----------------------------------------------------------------------------- blocks
def days(**kw):
    return list(DoseBlock(dose_mg=1.0, **kw).dose_days(1000.0))


def test_single_dose_and_start():
    assert days() == [0.0]
    assert days(start_day=3.5) == [3.5]
    assert days(start_day=3.5, count=1) == [3.5]


def test_every_with_count_or_until_inclusive():
    assert days(start_day=1, every_days=2, count=4) == [1, 3, 5, 7]
    assert days(start_day=1, every_days=2, until_day=7) == [1, 3, 5, 7]
    assert days(start_day=1, every_days=2, until_day=6.9) == [1, 3, 5]
    assert days(every_days=0.1, until_day=0.3) == pytest.approx([0, 0.1, 0.2, 0.3])


def test_without_count_or_until_runs_to_the_horizon():
    got = DoseBlock(dose_mg=1, every_days=7).dose_days(28.0)
    assert list(got) == [0, 7, 14, 21]            # day 28 is the end of the run: not given


def test_on_off_cycles():
    # 3 days on, 4 off, daily: days 0-2, 7-9, 14-16, ...
    assert days(every_days=1, on_days=3, off_days=4, until_day=20) == [0, 1, 2, 7, 8, 9, 14,
                                                                      15, 16]
    # count counts doses given, skipping the off days
    assert days(every_days=1, on_days=3, off_days=4, count=5) == [0, 1, 2, 7, 8]
    # the cycle is counted from start_day
    assert days(start_day=10, every_days=1, on_days=2, off_days=1, count=5) == [10, 11, 13, 14,
                                                                               16]
    # twice daily, 21 on / 7 off (the on part is [0, 21) of each 28-day cycle)
    bid = days(every_days=0.5, on_days=21, off_days=7, until_day=60)
    assert len(bid) == 42 + 42 + 9 and bid[41] == 20.5 and bid[42] == 28.0


def test_blocks_expand_to_step_offsets_once():
    d = Drug(drug_class="anti_pd1", route="iv_bolus", half_life_hours=10, volume_l=5,
             doses=[DoseBlock(dose_mg=5, every_days=1.1, count=3),
                    DoseBlock(dose_mg=7, start_day=2.2)])
    offsets = expand_blocks(d, 6.0, 100)
    # days 0, 1.1, 2.2 (x2) -> steps 0, 5 (1.1 d = 4.4 steps), 9 (8.8 steps)
    assert offsets == {0: [(5.0, 0)], 5: [(5.0, 0)], 9: [(5.0, 0), (7.0, 1)]}


def test_day_to_step_is_the_first_step_at_or_after():
    assert day_to_step(1.1, 6.0) == 5               # the step starting at day 1.25
    assert day_to_step(1.0, 6.0) == 4               # exactly on a boundary
    assert day_to_step(0.1 * 3, 7.2) == 1           # 1.0000000000000002 steps: float noise
    assert day_to_step(0.7, 4.8) == 4               # 3.4999999999999996 steps
    assert day_to_step(0.0, 6.0) == 0


def one_drug(**block):
    return {"d": Drug(drug_class="anti_pd1", route="iv_bolus", half_life_hours=10,
                      volume_l=5, doses=[DoseBlock(dose_mg=10, **block)])}


def test_dose_on_day_1_1_lands_in_step_5():
    r = Regimen(one_drug(start_day=1.1), dt_hours=6.0, n_steps=20)
    given = [r.doses_for_step(s) for s in range(20)]
    assert [s for s, g in enumerate(given) if g] == [5]
    (dose,) = given[5]
    assert dose.step == 5 and dose.day == 1.25 and dose.reason == "schedule"
    assert tuple(dose) == (5, 1.25, "d", 10.0, "schedule")


def test_days_count_from_the_treatment_start():
    r = Regimen(one_drug(start_day=1.1, every_days=1, count=2), 6.0, 40,
                treatment_start_day=2.0)
    for s in range(40):
        r.doses_for_step(s)
    assert [d.step for d in r.dose_log] == [8 + 5, 8 + 9]
    # a treatment start between steps: the origin is the first step at or after it
    r = Regimen(one_drug(), 6.0, 40, treatment_start_day=1.1)
    assert r.treatment_start_step == 5
    for s in range(40):
        r.doses_for_step(s)
    assert [d.step for d in r.dose_log] == [5]


def test_schedules_stop_at_the_end_of_the_run_and_preview():
    r = Regimen(one_drug(every_days=1), 24.0, 10)
    assert [d.step for d in r.scheduled_doses()] == list(range(10))
    for s in range(10):
        r.doses_for_step(s)
    assert len(r.dose_log) == 10
    cols = r.dose_log_arrays()
    assert cols["step"].dtype == np.int64 and list(cols["step"]) == list(range(10))
    assert list(cols["drug"]) == ["d"] * 10 and cols["amount_mg"].sum() == 100.0
    assert set(cols) == {"step", "day", "drug", "amount_mg", "reason"}


def test_calls_must_be_in_order_and_rules_need_observations():
    r = Regimen(one_drug(), 6.0, 10, treatment_start_day=1.0)
    with pytest.raises(ValueError):
        r.doses_for_step(5)                          # after the treatment start (step 4)
    r.doses_for_step(0)
    with pytest.raises(ValueError):
        r.doses_for_step(2)
    d = drugs_from(ADAPTIVE)
    r = Regimen(d, 24.0, 10)
    with pytest.raises(ValueError):
        r.doses_for_step(0, None)


def test_engine_observation_dict_and_numbers_are_accepted():
    d = drugs_from(ADAPTIVE)
    r = Regimen(d, 24.0, 10)
    r.doses_for_step(0, {"tumor_cells": 100, "tumor_resistant": 3})
    r.doses_for_step(1, 90)
    assert r.baseline_cells == 100.0


# ----------------------------------------------------------------------------- rules
TARGETED_THEN_IMMUNE = """
[vem]
drug_class = "targeted"
target = "BRAF"
route = "oral"
half_life_hours = 57
volume_l = 106
absorption_rate_per_hour = 1.65
[[vem.doses]]
every_days = 1
dose_mg = 960

[pembro]
preset = "pembrolizumab"
[[pembro.doses]]
every_days = 21
dose_mg = 200
[[pembro.rules]]
when = "progression"
of = "vem"
"""


def response_then_relapse(day):
    """1000 cells falling to a nadir of 200 at day 28, then +2% a day (scans every 7 days see
    1.149, 1.320, 1.516, 1.741 x nadir at days 35, 42, 49, 56)."""
    if day <= 28:
        return 1000 - 800 / 28 * day
    return 200 * 1.02 ** (day - 28)


@pytest.mark.parametrize("ndim, switch_day", [(2, 49), (3, 56)])
def test_switch_at_progression_targeted_first(ndim, switch_day):
    r = Regimen(drugs_from(TARGETED_THEN_IMMUNE), 24.0, 120, ndim=ndim)
    steps = simulate(r, response_then_relapse)
    assert steps["vem"] == list(range(switch_day))
    assert steps["pembro"] == list(range(switch_day, 120, 21))
    assert events(r) == [(0, "vem", "start", "schedule"),
                         (switch_day, "pembro", "start", "rule:progression"),
                         (switch_day, "vem", "stop", "rule:switch")]
    reasons = [d.reason for d in r.dose_log if d.drug == "pembro"]
    assert reasons[0] == "rule:progression" and set(reasons[1:]) == {"schedule"}
    assert r.states == {"vem": "stopped", "pembro": "on"}


def switch_and_endpoints(burden, regimen_options, criteria_options):
    """The step at which the rules switch to pembrolizumab, and ``assess``'s endpoints of
    the same daily series, both scanning every 7 days."""
    from simulator.analysis.endpoints import ResponseCriteria, assess
    r = Regimen(drugs_from(TARGETED_THEN_IMMUNE), 24.0, 200, **regimen_options)
    simulate(r, burden)
    switch = [e.step for e in r.events if e.action == "start" and e.drug == "pembro"]
    t = np.arange(200.0)
    n = np.array([burden(d) for d in t])
    return switch, assess(t, n, np.zeros(t.size), 0.0, ResponseCriteria(
        dimensions=2, spacing_um=20.0, scan_interval_days=7.0,
        **(dict(progression_min_mm=0.0) | criteria_options)))


@pytest.mark.parametrize("half_life", [0.0, 10.0, 60.0])
def test_the_rules_see_the_endpoints_lesion(half_life):
    """With a residual bed the rules' progression is the endpoints' (same measure, same
    recursion): scans every 7 days on both sides, and the switch falls on the scan at which
    ``assess`` first calls PD on the same series; a longer half-life delays both."""
    switch, e = switch_and_endpoints(response_then_relapse,
                                     dict(residual_half_life_days=half_life),
                                     dict(residual_half_life_days=half_life))
    assert e.progression_observed
    assert switch == [int(e.time_to_progression_days)]
    if half_life == 0:
        assert switch == [49]
    else:
        assert switch[0] > 49


@pytest.mark.parametrize("regimen_min_mm, switch_day", [(0.1, 56), (0.0, 49)])
def test_the_rules_apply_the_endpoints_absolute_rule(regimen_min_mm, switch_day):
    """20 um sites: the 200-cell nadir is 0.319 mm across; 1.44 x it (day 49, 303 cells)
    is only 0.074 mm more, so endpoints with RECIST's absolute rule at 0.1 mm call PD at day
    56 (348 cells, 0.421 mm). Rules given the same rule switch there; rules without it
    switch a scan early, before the endpoints' progression."""
    switch, e = switch_and_endpoints(response_then_relapse,
                                     dict(progression_min_mm=regimen_min_mm,
                                          mm_per_site=0.02),
                                     dict(progression_min_mm=0.1))
    assert e.progression_observed and e.time_to_progression_days == 56
    assert switch == [switch_day]


def deep_response_then_relapse(day):
    """1000 cells falling to 20 at day 28, then +5% a day: 28.1, 39.6, 55.7 cells at the
    scans of days 35, 42 and 49."""
    if day <= 28:
        return 1000 - 980 / 28 * day
    return 20 * 1.05 ** (day - 28)


@pytest.mark.parametrize("detection, switch_day", [(0.0, 42), (0.2, 49)])
def test_the_rules_see_the_endpoints_detection_limit(detection, switch_day):
    """With a detection limit f = 0.2 (2D: 4% of the baseline, 40 cells) the nadir of 20
    cells is gone (0) and the regrowth is seen, as progression, only from the scan where it
    passes 40 cells (day 49); without it the 20-cell nadir is seen and 1.44 x it is passed
    at day 42. The rules switch where ``assess`` calls PD, in both."""
    switch, e = switch_and_endpoints(deep_response_then_relapse,
                                     dict(detection_limit_fraction=detection),
                                     dict(detection_limit_fraction=detection))
    assert switch == [int(e.time_to_progression_days)] == [switch_day]


def dip_then_regrowth(day):
    """1000 cells falling to 300 at day 7, then +6% a day: 451 at day 14, 678 at day 21,
    1020 at day 28 (1.50 x 678)."""
    if day <= 7:
        return 1000 - 100 * day
    return 300 * 1.06 ** (day - 7)


@pytest.mark.parametrize("regimen_first_scan, switch_day", [(21.0, 28), (0.0, 14)])
def test_the_rules_scan_when_the_endpoints_do(regimen_first_scan, switch_day):
    """Endpoints that scan first at day 21 (then weekly) never see the day-7 dip: their nadir
    is day 21's 678 cells and PD falls at day 28. Rules on the same schedule
    (``first_scan_days`` = 21) switch there; rules scanning weekly from the start see the dip
    (300) and switch at day 14, before the endpoints' first scan: the trap the key closes."""
    switch, e = switch_and_endpoints(dip_then_regrowth,
                                     dict(first_scan_days=regimen_first_scan),
                                     dict(first_scan_days=21.0))
    assert e.progression_observed and e.time_to_progression_days == 28
    assert switch == [switch_day]


def test_first_scan_days_sets_the_scan_steps():
    r = Regimen(drugs_from(TARGETED_THEN_IMMUNE), 6.0, 4 * 200, treatment_start_day=10.0,
                scan_interval_days=42.0, first_scan_days=84.0)
    start = 40
    assert sorted(r.scan_steps) == [start, start + 4 * 84, start + 4 * 126, start + 4 * 168]
    with pytest.raises(ValueError, match="first_scan_days needs scan_interval_days > 0"):
        Regimen(drugs_from(TARGETED_THEN_IMMUNE), 6.0, 10, scan_interval_days=0.0,
                first_scan_days=3.0)


IMMUNE_THEN_TARGETED = """
[nivo]
preset = "nivolumab"
[[nivo.doses]]
every_days = 14
dose_mg = 240

[dab]
preset = "dabrafenib"
[[dab.doses]]
every_days = 0.5
dose_mg = 150
[[dab.rules]]
when = "progression"
of = "nivo"
"""


def test_switch_at_progression_immune_first():
    r = Regimen(drugs_from(IMMUNE_THEN_TARGETED), 24.0, 80)
    steps = simulate(r, response_then_relapse)
    assert steps["nivo"] == [0, 14, 28, 42]
    # twice daily at dt = 1 day: the dose of day 0.5 after the switch waits for the step at
    # day 1 (first step at or after), so each later step gets two doses
    assert steps["dab"] == [49] + sorted(list(range(50, 80)) * 2)


def test_add_at_progression_keeps_the_first_drug():
    text = TARGETED_THEN_IMMUNE + "switch = false\n"
    r = Regimen(drugs_from(text), 24.0, 80)
    steps = simulate(r, response_then_relapse)
    assert steps["vem"] == list(range(80))
    assert steps["pembro"] == [49, 70]
    assert r.states == {"vem": "on", "pembro": "on"}


def test_start_at_untreated_progression():
    text = """
[pembro]
preset = "pembrolizumab"
[[pembro.doses]]
every_days = 21
dose_mg = 200
[[pembro.rules]]
when = "progression"
"""
    r = Regimen(drugs_from(text), 24.0, 60)
    steps = simulate(r, lambda day: 100 * 1.03 ** day)   # 1.44 x after 12.3 days
    assert steps["pembro"] == [14, 35, 56]                   # the scan at day 14


def test_progression_of_a_drug_counts_from_its_first_dose():
    """B waits for progression under A; A starts on day 14, while the untreated tumour has
    already grown 1.5x: the nadir restarts at A's first dose, so B starts only when the
    tumour is 1.44 x its size then."""
    text = TARGETED_THEN_IMMUNE.replace("every_days = 1\n", "every_days = 1\nstart_day = 14\n")
    r = Regimen(drugs_from(text), 24.0, 60)
    steps = simulate(r, lambda day: 100 * 1.03 ** day)
    first_scan = min(d for d in range(21, 60, 7) if 1.03 ** (d - 14) >= 1.44)
    assert first_scan == 28
    assert steps["pembro"][0] == 28 and steps["vem"] == list(range(14, 28))


def test_switch_there_and_back_with_restart():
    text = TARGETED_THEN_IMMUNE + """
[[vem.rules]]
when = "progression"
of = "pembro"
restart = true
"""
    d = drugs_from(text)
    check_drugs(d, ["BRAF"], 200)

    def burden(day):                  # relapse under vem, response to pembro, second relapse
        if day < 49:
            return response_then_relapse(day)
        if day < 77:
            return 300 - 5 * (day - 49)                   # nadir 160 at day 77
        return 160 * 1.03 ** (day - 77)                   # 1.44 x after 12.3 days -> day 91

    r = Regimen(d, 24.0, 120)
    steps = simulate(r, burden)
    assert events(r)[1:] == [(49, "pembro", "start", "rule:progression"),
                             (49, "vem", "stop", "rule:switch"),
                             (91, "vem", "start", "rule:restart"),
                             (91, "pembro", "stop", "rule:switch")]
    assert steps["vem"] == list(range(49)) + list(range(91, 120))
    assert steps["pembro"] == [49, 70]


ADAPTIVE = """
[vem]
preset = "vemurafenib"
[[vem.doses]]
every_days = 1
dose_mg = 960
[[vem.rules]]
pause_below_fraction = 0.5
resume_above_fraction = 1.0
"""


def adaptive_series(day):
    """Scans see 1000, 800, 600, 400 (pause), 600, 800, 950 (no resume: hysteresis), 1000
    (resume at day 49), 800, 600, 450 (pause again at day 70), ..."""
    table = {0: 1000, 7: 800, 14: 600, 21: 400, 28: 600, 35: 800, 42: 950, 49: 1000, 56: 800,
             63: 600, 70: 450, 77: 700, 84: 1100}
    return table[7 * (day // 7)]


def test_adaptive_pause_and_resume_with_hysteresis():
    r = Regimen(drugs_from(ADAPTIVE), 24.0, 91)
    steps = simulate(r, adaptive_series)
    assert steps["vem"] == list(range(21)) + list(range(49, 70)) + list(range(84, 91))
    assert events(r) == [(0, "vem", "start", "schedule"),
                         (21, "vem", "pause", "rule:adaptive-pause"),
                         (49, "vem", "resume", "rule:adaptive-resume"),
                         (70, "vem", "pause", "rule:adaptive-pause"),
                         (84, "vem", "resume", "rule:adaptive-resume")]
    by_step = {d.step: d.reason for d in r.dose_log}
    assert by_step[49] == "rule:adaptive-resume" and by_step[50] == "schedule"


def test_a_pause_skips_doses_and_does_not_postpone_them():
    text = ADAPTIVE.replace("every_days = 1", "every_days = 3")
    r = Regimen(drugs_from(text), 24.0, 60)
    steps = simulate(r, adaptive_series)
    assert steps["vem"] == list(range(0, 21, 3)) + list(range(51, 60, 3))
    assert r.dose_log[7].step == 51 and r.dose_log[7].reason == "rule:adaptive-resume"


def test_progression_is_not_assessed_while_paused():
    text = ADAPTIVE + """
[pembro]
preset = "pembrolizumab"
[[pembro.doses]]
every_days = 21
dose_mg = 200
[[pembro.rules]]
when = "progression"
"""
    r = Regimen(drugs_from(text), 24.0, 91)
    steps = simulate(r, adaptive_series)
    # paused from day 21 (regrowth 400 -> 950: 2.4 x, not progression); after the resume at
    # day 49 the nadir restarts at 1000; re-paused at day 70; 1100 at day 84 is a resume
    assert steps["pembro"] == []


STOP_IN_RESPONSE = """
[vem]
preset = "vemurafenib"
[[vem.doses]]
every_days = 1
dose_mg = 960
[[vem.rules]]
stop_after_response_days = 28
"""


def test_stop_after_days_in_response_resets_when_response_is_lost():
    # response (<= 0.49 x 1000) at scans 14, 21; lost at 28; again from 35 on -> stop at 63
    table = {0: 1000, 7: 700, 14: 480, 21: 400, 28: 520, 35: 450, 42: 400, 49: 380, 56: 300,
             63: 290, 70: 280}
    r = Regimen(drugs_from(STOP_IN_RESPONSE), 24.0, 77)
    steps = simulate(r, lambda day: table[7 * (day // 7)])
    assert steps["vem"] == list(range(63))
    assert events(r)[-1] == (63, "vem", "stop", "rule:response")


def test_response_in_3d_uses_0_343():
    table = {0: 1000, 7: 400, 14: 400, 21: 340, 28: 340, 35: 340}
    r = Regimen(drugs_from(STOP_IN_RESPONSE.replace("= 28", "= 14")), 24.0, 42, ndim=3)
    simulate(r, lambda day: table[7 * (day // 7)])
    assert events(r)[-1] == (35, "vem", "stop", "rule:response")


def test_stop_in_response_then_restart_at_progression():
    text = STOP_IN_RESPONSE + """
[[vem.rules]]
when = "progression"
restart = true
"""
    d = drugs_from(text)
    check_drugs(d, ["BRAF"], 200)
    table = {0: 1000, 7: 400, 14: 300, 21: 300, 28: 300, 35: 300, 42: 300, 49: 400, 56: 440,
             63: 450}
    r = Regimen(d, 24.0, 70)
    steps = simulate(r, lambda day: table[7 * (day // 7)])
    # in response from 7, stop at 35; nadir restarts at 300; 440 >= 1.44 x 300 at day 56
    assert events(r)[1:] == [(35, "vem", "stop", "rule:response"),
                             (56, "vem", "start", "rule:restart")]
    assert steps["vem"] == list(range(35)) + list(range(56, 70))


def test_every_step_scanning_and_the_absolute_increase():
    r = Regimen(drugs_from(TARGETED_THEN_IMMUNE), 6.0, 40, scan_interval_days=0)
    simulate(r, lambda day: 100 * 2 ** (day / 2))        # 1.44 x at 1.052 days -> step 5
    assert events(r)[1][0] == 5
    r = Regimen(drugs_from(TARGETED_THEN_IMMUNE), 24.0, 60,
                progression_min_increase_cells=5.0)
    simulate(r, lambda day: 2.0 if day < 30 else 6.0)     # 3 x but only +4 cells
    assert r.states["pembro"] == "waiting"
    r = Regimen(drugs_from(TARGETED_THEN_IMMUNE), 24.0, 60,
                progression_min_increase_cells=4.0)
    simulate(r, lambda day: 2.0 if day < 30 else 6.0)
    assert r.states["pembro"] == "on"


def test_a_cleared_tumour_does_not_progress_until_it_comes_back():
    r = Regimen(drugs_from(TARGETED_THEN_IMMUNE), 24.0, 60)
    simulate(r, lambda day: 100.0 if day < 10 else (0.0 if day < 40 else 1.0))
    assert events(r)[1][0] == 42


# ----------------------------------------------------------------------------- the TOML shape
def test_presets_fill_left_out_keys_and_yield_to_given_ones():
    d = Drug(preset="pembrolizumab")
    assert (d.drug_class, d.route, d.volume_l, d.infusion_hours) == ("anti_pd1", "iv_infusion",
                                                                      6.0, 0.5)
    d = drugs_from('[p]\npreset = "pembrolizumab"\nroute = "iv_bolus"\nhalf_life_hours = 1.0')
    assert d["p"].route == "iv_bolus" and d["p"].infusion_hours is None
    assert d["p"].half_life_hours == 1.0
    v = Drug(preset="vemurafenib")
    assert v.target == "BRAF" and v.absorption_rate_per_hour > 0 and v.bioavailability == 1.0
    for name in PRESETS:
        Drug(preset=name).check()


def test_round_trip_through_toml():
    d = drugs_from(TARGETED_THEN_IMMUNE + ADAPTIVE.replace("[vem", "[ad").replace(
        "[[vem", "[[ad"))
    text = dumps_toml({"drugs": schema.to_table(d)})
    again = {n: schema.build(Drug, t, f"drugs.{n}")
             for n, t in tomllib.loads(text)["drugs"].items()}
    assert again == d


def doc_examples():
    text = (ROOT / "docs" / "regimens.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    examples = []
    for block in blocks:
        if block.lstrip().startswith("[[") and examples:
            examples.append(examples[-1] + "\n" + block)  # continues the one before
        else:
            examples.append(block)
    return examples


@pytest.mark.parametrize("text", doc_examples(),
                         ids=[f"example{i}" for i in range(len(doc_examples()))])
def test_docs_examples_validate(text):
    drugs = tomllib.loads(text)["drugs"]
    built = {n: schema.build(Drug, t, f"drugs.{n}") for n, t in drugs.items()}
    check_drugs(built, ["BRAF"], 365.0)
    r = Regimen(built, 6.0, 4 * 365)
    for s in range(4 * 365):
        r.doses_for_step(s, Observation(1000.0))
    if any(not b.waits_for_rule for b in built.values()):
        assert r.dose_log


# ----------------------------------------------------------------------------- validation
BASE = {"drug_class": "targeted", "target": "BRAF", "route": "iv_bolus",
        "half_life_hours": 10.0, "volume_l": 5.0, "doses": [{"dose_mg": 10.0}]}
PD1 = {"drug_class": "anti_pd1", "route": "iv_bolus", "half_life_hours": 500.0,
       "volume_l": 6.0, "doses": [{"dose_mg": 200.0, "every_days": 21}]}


def with_(base=BASE, **changes):
    out = {k: v for k, v in base.items()}
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def error_key(drugs: dict, targets=("BRAF",), duration=100.0) -> str:
    with pytest.raises(ScenarioError) as info:
        built = {n: schema.build(Drug, t, f"drugs.{n}") for n, t in drugs.items()}
        check_drugs(built, list(targets), duration)
    assert "\n" not in info.value.line()
    return info.value.key


CASES = [
    ("unknown target", {"vem": with_(target="BRAFF")}, "drugs.vem.target"),
    ("negative dose", {"vem": with_(doses=[{"dose_mg": -1.0}])}, "drugs.vem.doses[0].dose_mg"),
    ("missing dose", {"vem": with_(doses=[{"start_day": 1.0}])}, "drugs.vem.doses[0].dose_mg"),
    ("start after the end", {"vem": with_(doses=[{"dose_mg": 1, "start_day": 100}])},
     "drugs.vem.doses[0].start_day"),
    ("count and until", {"vem": with_(doses=[{"dose_mg": 1, "every_days": 1, "count": 3,
                                              "until_day": 9}])},
     "drugs.vem.doses[0].until_day"),
    ("count without every", {"vem": with_(doses=[{"dose_mg": 1, "count": 3}])},
     "drugs.vem.doses[0].count"),
    ("until without every", {"vem": with_(doses=[{"dose_mg": 1, "until_day": 3}])},
     "drugs.vem.doses[0].until_day"),
    ("until before start", {"vem": with_(doses=[{"dose_mg": 1, "every_days": 1,
                                                 "start_day": 5, "until_day": 3}])},
     "drugs.vem.doses[0].until_day"),
    ("on without off", {"vem": with_(doses=[{"dose_mg": 1, "every_days": 1, "on_days": 3}])},
     "drugs.vem.doses[0].off_days"),
    ("misspelt dose key", {"vem": with_(doses=[{"dose_mgs": 1}])},
     "drugs.vem.doses[0].dose_mgs"),
    ("zero interval", {"vem": with_(doses=[{"dose_mg": 1, "every_days": 0}])},
     "drugs.vem.doses[0].every_days"),
    ("pause above resume", {"vem": with_(rules=[{"pause_below_fraction": 0.8,
                                                 "resume_above_fraction": 0.6}])},
     "drugs.vem.rules[0].resume_above_fraction"),
    ("pause at default resume", {"vem": with_(rules=[{"pause_below_fraction": 1.2}])},
     "drugs.vem.rules[0].pause_below_fraction"),
    ("resume without pause", {"vem": with_(rules=[{"resume_above_fraction": 0.6}])},
     "drugs.vem.rules[0].resume_above_fraction"),
    ("unknown switch drug", {"vem": BASE, "pd1": with_(PD1, rules=[
        {"when": "progression", "of": "vemm"}])}, "drugs.pd1.rules[0].of"),
    ("switch to itself", {"vem": with_(rules=[{"when": "progression", "of": "vem"}])},
     "drugs.vem.rules[0].of"),
    ("of without when", {"vem": BASE, "pd1": with_(PD1, rules=[{"of": "vem"}])},
     "drugs.pd1.rules[0].of"),
    ("switch without of", {"vem": with_(rules=[{"when": "progression", "switch": False}])},
     "drugs.vem.rules[0].switch"),
    ("mixed rule", {"vem": with_(rules=[{"when": "progression",
                                         "stop_after_response_days": 9}])},
     "drugs.vem.rules[0].stop_after_response_days"),
    ("empty rule", {"vem": with_(rules=[{}])}, "drugs.vem.rules[0]"),
    ("unknown when", {"vem": with_(rules=[{"when": "response"}])}, "drugs.vem.rules[0].when"),
    ("two adaptive rules", {"vem": with_(rules=[{"pause_below_fraction": 0.5},
                                                {"pause_below_fraction": 0.4}])},
     "drugs.vem.rules[1]"),
    ("rules without doses", {"vem": with_(doses=[], rules=[{"stop_after_response_days": 9}])},
     "drugs.vem.rules"),
    ("never starts", {"a": with_(rules=[{"when": "progression", "of": "b"}]),
                      "b": with_(rules=[{"when": "progression", "of": "a"}])},
     "drugs.a.rules[0].of"),
    ("restart never applies", {"vem": with_(rules=[{"when": "progression", "restart": True}])},
     "drugs.vem.rules[0].restart"),
    ("channel of another class", {"vem": with_(checkpoint_blockade={"emax": 0.5,
                                                                   "ec50_mg_per_l": 1})},
     "drugs.vem.checkpoint_blockade"),
    ("targeted channel on an antibody", {"pd1": with_(PD1, kill={"emax": 0.0})},
     "drugs.pd1.kill"),
    ("fraction above one", {"vem": with_(arrest={"emax": 1.5, "ec50_mg_per_l": 1})},
     "drugs.vem.arrest.emax"),
    ("ec50 missing", {"vem": with_(kill={"emax": 0.5})}, "drugs.vem.kill.ec50_mg_per_l"),
    ("misspelt channel", {"vem": with_(kil={"emax": 0.5})}, "drugs.vem.kil"),
    ("misspelt channel key", {"vem": with_(kill={"emax": 0.5, "ec50": 1})},
     "drugs.vem.kill.ec50"),
    ("no half-life", {"vem": with_(half_life_hours=None)}, "drugs.vem.half_life_hours"),
    ("no class", {"vem": with_(drug_class=None)}, "drugs.vem.drug_class"),
    ("bad class", {"vem": with_(drug_class="antibody")}, "drugs.vem.drug_class"),
    ("unknown preset", {"vem": {"preset": "vemurafenb"}}, "drugs.vem.preset"),
    ("oral without ka", {"vem": with_(route="oral")}, "drugs.vem.absorption_rate_per_hour"),
    ("ka on iv", {"vem": with_(absorption_rate_per_hour=1.0)},
     "drugs.vem.absorption_rate_per_hour"),
    ("infusion without hours", {"vem": with_(route="iv_infusion")}, "drugs.vem.infusion_hours"),
    ("bioavailability above one", {"vem": with_(route="oral", absorption_rate_per_hour=1.0,
                                               bioavailability=1.5)},
     "drugs.vem.bioavailability"),
    ("target on an antibody", {"pd1": with_(PD1, target="BRAF")}, "drugs.pd1.target"),
    ("targeted without target", {"vem": with_(target=None)}, "drugs.vem.target"),
]


@pytest.mark.parametrize("what, drugs, key", CASES, ids=[c[0] for c in CASES])
def test_validation_errors_name_the_key(what, drugs, key):
    assert error_key(drugs) == key


def test_misspelt_keys_get_a_suggestion():
    with pytest.raises(ScenarioError) as info:
        schema.build(Drug, with_(doses=[{"dose_mgs": 1}]), "drugs.vem")
    assert "did you mean 'dose_mg'" in info.value.message
    with pytest.raises(ScenarioError) as info:
        check_drugs({"vem": schema.build(Drug, with_(target="BRAFF"), "drugs.vem")},
                    ["BRAF", "MEK"], 100)
    assert "did you mean 'BRAF'" in info.value.message


def test_check_against_on_directly_built_drugs():
    """Drugs made in Python skip schema.build's checks; check_against runs them all."""
    bad = Drug(drug_class="targeted", target="BRAF", route="iv_bolus", half_life_hours=10,
               volume_l=5, doses=[DoseBlock(dose_mg=-5.0)])
    with pytest.raises(ScenarioError) as info:
        bad.check_against("vem", {"BRAF"}, 100.0)
    assert info.value.key == "drugs.vem.doses[0].dose_mg"
    ok = Drug(drug_class="targeted", target="BRAF", route="iv_bolus", half_life_hours=10,
              volume_l=5, doses=[DoseBlock(dose_mg=5.0, start_day=10)])
    ok.check_against("vem", {"BRAF"}, 100.0)
    with pytest.raises(ScenarioError) as info:       # day 10 after a start on day 95
        ok.check_against("vem", {"BRAF"}, 100.0, treatment_start_day=95.0)
    assert info.value.key == "drugs.vem.doses[0].start_day"


def test_first_scan_days_needs_an_interval():
    from simulator import scenario as scenario_mod
    with pytest.raises(ScenarioError, match="regimen.first_scan_days.*needs scan_interval"):
        scenario_mod.load(None, ["regimen.scan_interval_days=0", "regimen.first_scan_days=84"])
