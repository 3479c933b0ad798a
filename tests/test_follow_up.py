"""Off study at progression (``endpoints.off_study_at_progression``,
``simulator.analysis.follow_up``): the run ends at the record of the scan that calls
progression, everything before it is the full run's, and the endpoints are the same."""
import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from simulator.analysis.follow_up import ProgressionWatch
from simulator.analysis.endpoints import ResponseCriteria
from simulator.scenario import load
from simulator.study.runner import run_to_file
from simulator.treatment.regimen import Event

ROOT = Path(__file__).resolve().parents[1]

# An untreated tumour-only run on a small lattice: it grows, so RECIST calls progression a
# few scans after the baseline on day 10 (scans every 5 days, no absolute mm floor).
SMALL = ["simulation.dimensions=[48,48]", "simulation.duration_days=60",
         "simulation.treatment_start_day=10", "initial.tumor_radius_sites=4",
         "endpoints.scan_interval_days=5", "endpoints.progression_min_mm=0",
         "output.snapshot_every_days=0", "output.checkpoint_every_seconds=0"]

# The same tumour under a drug that does nothing measurable, and a second drug that waits
# for progression under the first: the patient stays on study after the first PD.
WAITS_FOR_A = """
[drugs.b]
preset = "pembrolizumab"
[[drugs.b.doses]]
every_days = 21
dose_mg = 200
[[drugs.b.rules]]
when = "progression"
of = "a"
"""
SWITCH = """
base = "{base}"
[drugs.a]
preset = "pembrolizumab"
[[drugs.a.doses]]
every_days = 21
dose_mg = 200
""" + WAITS_FOR_A


def _run(tmp_path, name, scenario):
    out = tmp_path / f"{name}.h5"
    result = run_to_file(scenario, out, threads=1)
    return result, h5py.File(out, "r")


# A scan schedule with a later first scan, and scans that also see a residual bed: the stop
# and the endpoints still agree.
LATER_SCANS_WITH_RESIDUAL = ["endpoints.first_scan_days=12",
                             "endpoints.residual_half_life_days=10"]
WITH_DETECTION_LIMIT = LATER_SCANS_WITH_RESIDUAL + ["endpoints.detection_limit_fraction=0.2"]


@pytest.mark.parametrize("measure", [[], LATER_SCANS_WITH_RESIDUAL, WITH_DETECTION_LIMIT],
                         ids=["live", "residual", "detection-limit"])
def test_off_study_run_is_the_full_runs_prefix_and_keeps_its_endpoints(tmp_path, measure):
    base = ROOT / "scenarios" / "tumor_only.toml"
    full, f_full = _run(tmp_path, "full", load(base, SMALL + measure))
    off, f_off = _run(tmp_path, "off", load(base, SMALL + measure + [
        "endpoints.off_study_at_progression=true"]))
    e_full, e_off = full.endpoints, off.endpoints
    assert e_full.progression_observed, "the untreated tumour must progress in this setting"
    # ends at the scan that called progression, before the horizon
    pd_day = 10.0 + e_full.time_to_progression_days
    assert f_off.attrs["off_study_day"] == pd_day
    assert math.isnan(f_full.attrs["off_study_day"])
    t_off = f_off["timeseries/time_days"][:]
    assert t_off[-1] == pd_day < f_full["timeseries/time_days"][-1]
    # every series is the full run's up to there
    n = len(t_off)
    for name, ds in f_off["timeseries"].items():
        if isinstance(ds, h5py.Dataset):
            assert np.array_equal(ds[:], f_full["timeseries"][name][:n], equal_nan=True), name
    # the last snapshot is the state at the stop
    assert f_off["snapshots/time_days"][-1] == pd_day
    # the endpoints are the full run's (they use the scans up to the first PD)
    for key in ("time_to_progression_days", "best_response", "response_class",
                "resistant_fraction_at_progression", "nadir_tumor_cells",
                "baseline_tumor_cells"):
        a, b = getattr(e_off, key), getattr(e_full, key)
        assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)), key


def test_a_drug_waiting_for_progression_keeps_the_patient_on_study(tmp_path):
    base = ROOT / "scenarios" / "tumor_only.toml"
    path = tmp_path / "switch.toml"
    path.write_text(SWITCH.format(base=base.as_posix()))
    result, f = _run(tmp_path, "switch", load(path, SMALL + [
        "endpoints.off_study_at_progression=true", "simulation.duration_days=45"]))
    e = result.endpoints
    assert e.progression_observed
    first_pd_day = 10.0 + e.time_to_progression_days
    doses = f["doses/table"][:]
    switched = [row for row in doses if row["drug"].decode() == "b"]
    assert switched, "drug b must start at the first progression"
    # b's line is followed from its start: off study only at its own progression, later
    off_day = f.attrs["off_study_day"]
    assert math.isnan(off_day) or off_day > first_pd_day
    assert f["timeseries/time_days"][-1] > first_pd_day


class _Drug:
    def __init__(self, rules=()):
        self.rules = list(rules)


class _Rule:
    def __init__(self, restart=False):
        self.kind, self.restart = "progression", restart


class _Course:
    def __init__(self, state):
        self.state = state


class _Regimen:
    def __init__(self, states, rules, events=()):
        self.drugs = {n: _Drug(rules.get(n, ())) for n in states}
        self.courses = {n: _Course(s) for n, s in states.items()}
        self.events = list(events)


CRITERIA = ResponseCriteria(dimensions=2, spacing_um=20.0, scan_interval_days=14.0,
                            progression_min_mm=0.0)


@pytest.mark.parametrize("day, next_day, expected", [
    (74.0, 75.0, True),     # scan day 74 = 60 + 14, next record after it
    (73.0, 74.0, False),    # a record before the scan's own
    (73.5, 74.5, True),     # the last record at or before day 74 (records every 1.5 days)
    (60.0, 61.0, False),    # the baseline is not a scan
    (88.0, 88.25, True),    # the second scan
])
def test_the_scan_record_is_the_last_record_at_or_before_the_scan_day(day, next_day, expected):
    watch = ProgressionWatch(CRITERIA, 60.0)
    assert watch.is_scan_record(day, next_day) is expected


def test_the_followed_line_starts_with_the_last_drug_a_rule_started():
    waiting = _Regimen({"a": "on", "b": "waiting"}, {"b": [_Rule()]},
                       [Event(240, 60.0, "a", "start", "schedule")])
    watch = ProgressionWatch(CRITERIA, 60.0, waiting)
    assert not watch.is_scan_record(74.0, 75.0)   # on study while b waits
    switched = _Regimen({"a": "stopped", "b": "on"}, {"b": [_Rule()]},
                        [Event(240, 60.0, "a", "start", "schedule"),
                         Event(400, 100.0, "b", "start", "rule:progression")])
    watch = ProgressionWatch(CRITERIA, 60.0, switched)
    assert not watch.is_scan_record(102.0, 103.0)
    assert watch.is_scan_record(114.0, 115.0)     # b's first scan: 100 + 14
    restartable = _Regimen({"a": "stopped"}, {"a": [_Rule(restart=True)]})
    assert not ProgressionWatch(CRITERIA, 60.0, restartable).is_scan_record(74.0, 75.0)


def test_a_run_resumed_at_the_scan_that_ends_it_stops_there(tmp_path, monkeypatch):
    """A checkpoint taken at the record of the progression scan: the resumed run ends
    there too, and its file equals the uninterrupted off-study run's."""
    from runfile_compare import assert_same_run_file
    from test_checkpoint import crash
    from simulator.study import runner
    scenario = load(ROOT / "scenarios" / "tumor_only.toml",
                    SMALL + ["endpoints.off_study_at_progression=true"])
    reference = tmp_path / "reference.h5"
    result = runner.run_to_file(scenario, reference, threads=1)
    stop_step = result.steps
    assert stop_step < scenario.simulation.steps
    out = tmp_path / "run.h5"
    with crash(monkeypatch, stop_step, after=0):
        runner.run_to_file(scenario, out, threads=1)
    resumed = runner.resume_to_file(out, threads=1)
    assert resumed.steps == stop_step
    assert_same_run_file(reference, out, [stop_step])


# The same small tumour, all sensitive, under a drug that kills it within a few weeks; a
# second drug waits for a progression that never comes.
CURE = """
base = "{base}"
[initial]
resistant_fraction = 0.0
[tumor]
mutation_rate_per_division = 0.0
[drugs.a]
preset = "vemurafenib"
kill = {{ emax = 0.9, ec50_mg_per_l = 1.0 }}
arrest = {{ emax = 0.9, ec50_mg_per_l = 1.0 }}
[[drugs.a.doses]]
every_days = 0.5
dose_mg = 960
""" + WAITS_FOR_A

ENDPOINT_KEYS = ("response_class", "objective_response", "best_response",
                 "time_to_response_days", "duration_of_response_days", "response_ongoing",
                 "durable_response", "progression_observed", "progression_free_days",
                 "follow_up_days", "n_scans", "nadir_tumor_cells", "nadir_day",
                 "baseline_tumor_cells", "final_tumor_cells", "scan_days", "scan_tumor_cells",
                 "scan_response_classes")


@pytest.mark.parametrize("measure", [[], LATER_SCANS_WITH_RESIDUAL, WITH_DETECTION_LIMIT],
                         ids=["live", "residual", "detection-limit"])
def test_a_run_ended_at_eradication_keeps_every_endpoint_of_the_full_run(tmp_path, measure):
    """Zero live cells is absorbing, so the run may end there: the endpoints (scans on to
    the horizon at zero, a residual decaying on to each) are the full run's, the series its
    prefix, the tumour series zero in the study table after the end."""
    scenario_file = tmp_path / "cure.toml"
    scenario_file.write_text(CURE.format(base=ROOT / "scenarios" / "tumor_only.toml"))
    sets = SMALL + ["simulation.duration_days=120"] + measure
    full, f_full = _run(tmp_path, "full", load(scenario_file, sets))
    ended, f_end = _run(tmp_path, "ended", load(scenario_file, sets + [
        "endpoints.end_at_eradication=true", "endpoints.off_study_at_progression=true"]))
    e_full, e_end = full.endpoints, ended.endpoints
    t_full = f_full["timeseries/time_days"][:]
    n_full = f_full["timeseries/tumor_cells"][:]
    gone = int(np.argmax((n_full == 0) & (t_full >= 10.0)))
    assert n_full[gone] == 0 and t_full[gone] < 60, "the drug must eradicate the tumour early"
    # (with the residual the cured lesion's bed still shows at the last scan: a PR; with
    # the detection limit too it drops out of view within the run: a CR)
    assert e_full.response_class == ("PR" if measure == LATER_SCANS_WITH_RESIDUAL else "CR")
    assert e_full.follow_up_days > 100
    # ends at the first record with no cell, and says so
    t_end = f_end["timeseries/time_days"][:]
    assert t_end[-1] == t_full[gone] == f_end.attrs["eradicated_day"]
    assert math.isnan(f_end.attrs["off_study_day"]) and math.isnan(f_full.attrs["eradicated_day"])
    n = len(t_end)
    for name, ds in f_end["timeseries"].items():
        if isinstance(ds, h5py.Dataset):
            assert np.array_equal(ds[:], f_full["timeseries"][name][:n], equal_nan=True), name
    for key in ENDPOINT_KEYS:
        assert getattr(e_end, key) == getattr(e_full, key), key
    assert "tumour eradicated by day" in ended.summary_text()


def test_scans_go_on_at_zero_only_after_a_series_that_ends_with_no_cell():
    from simulator.analysis.endpoints import assess
    t = np.array([0.0, 14.0, 28.0])
    cured = assess(t, [100.0, 10.0, 0.0], [0.0, 0.0, 0.0], 0.0, CRITERIA, followed_to_day=70.0)
    assert cured.scan_days == (14.0, 28.0, 42.0, 56.0, 70.0)
    assert cured.scan_tumor_cells[-3:] == (0.0, 0.0, 0.0) and cured.follow_up_days == 70.0
    alive = assess(t, [100.0, 10.0, 1.0], [0.0, 0.0, 0.0], 0.0, CRITERIA, followed_to_day=70.0)
    assert alive.scan_days == (14.0, 28.0) and alive.follow_up_days == 28.0


def test_study_table_carries_an_eradicated_tumour_on_at_zero(tmp_path):
    from types import SimpleNamespace
    from simulator.study.outputs import _write_study_h5
    long = {"time_days": np.arange(4.0), "tumor_cells": np.array([5, 3, 2, 1]),
            "t_cells": np.array([1, 2, 3, 4])}
    cured = {"time_days": np.arange(2.0), "tumor_cells": np.array([5, 0]),
             "t_cells": np.array([1, 2])}
    off = {"time_days": np.arange(2.0), "tumor_cells": np.array([5, 6]),
           "t_cells": np.array([1, 2])}
    path = tmp_path / "study.h5"
    _write_study_h5(path, [SimpleNamespace(name="a")], 3,
                    {(0, 0): long, (0, 1): cured, (0, 2): off}, long["time_days"], [])
    with h5py.File(path) as f:
        tumour, t_cells = f["timeseries/tumor_cells"][0], f["timeseries/t_cells"][0]
    assert np.array_equal(tumour[1], [5, 0, 0, 0])            # no cell comes back
    assert np.array_equal(tumour[2], [5, 6, np.nan, np.nan], equal_nan=True)  # off study
    assert np.array_equal(t_cells[1], [1, 2, np.nan, np.nan], equal_nan=True)  # not simulated
