"""`tumorsim calibrate` and the clinical targets: validation (fast), the pieces (fast), and a
tiny calibration that runs every code path: two waves, the emulators, the accepted sets,
the best-fit scenario, the predictive check, resuming from the store after an interruption,
a local process pool and a Dask client."""
import csv
import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, needs_jit
from simulator.analysis import targets as targets_mod
from simulator.scenario import library_dir, load
from simulator.schema import ScenarioError
from simulator.study import calibration
from simulator.study.calibration import design, simulate, spec as spec_mod
from simulator.study.calibration.store import Store

#: A tiny, fast world on the library's base: its calibrated clinical time (months-long
#: responses, a first scan at week 12) would leave 42 days of follow-up without a scan, so
#: the uncalibrated library's fast growth and T-cell kill, fortnightly scans from the
#: start, no regression bed, and one [[cohort]] entry (the fitted spread's).
TINY_OVERRIDES = ["simulation.dimensions=[30,30]", "simulation.treatment_start_day=8",
                  "simulation.duration_days=50", "initial.tumor_radius_sites=3",
                  "tumor.division_rate_per_day=0.5", "tumor.death_rate_per_day=0.05",
                  "t_cells.kill_rate_per_day=0.7", "endpoints.scan_interval_days=14",
                  "endpoints.first_scan_days=0", "regimen.first_scan_days=0",
                  "endpoints.residual_half_life_days=0",
                  "endpoints.detection_limit_fraction=0",
                  "initial.min_resistant_cells_at_baseline=0",
                  "initial.min_escape_cells_at_baseline=0",
                  "cohort=[{key='tumor.antigenicity', distribution='lognormal', "
                  "median=1.0, sigma=0.8}]"]

TARGETS = """
indication = "test"
description = "a tiny targets file"
[[target]]
id = "t_orr"
arm = "targeted_continuous"
statistic = "response_rate"
value = 0.5
low = 0.4
high = 0.6
[[target]]
id = "p_pfs"
arm = "anti_pd1"
statistic = "median_pfs"
value = 0.6
low = 0.4
high = 0.8
[[target]]
id = "c_orr"
arm = "combination_concurrent"
statistic = "response_rate"
value = 0.7
low = 0.6
high = 0.8
role = "predict"
[[target]]
id = "later_arm"
arm = "targeted_braf_mek"
statistic = "response_rate"
value = 0.64
low = 0.59
high = 0.69
role = "predict"
"""


def write_spec(tmp_path, extra="", cut=100.0, **fields):
    (tmp_path / "targets.toml").write_text(TARGETS)
    lib = library_dir()
    body = dict(base_scenario=f'"{lib / "melanoma.toml"}"',
                arms="[" + ", ".join(f'"{lib / a}.toml"' for a in
                                     ("targeted_continuous", "anti_pd1")) + "]",
                predict_arms=f'["{lib / "combination_concurrent.toml"}"]',
                targets='"targets.toml"', seed=1, check_seed=2, replicates=2, waves=2,
                points_per_wave=3, candidates=50, check_replicates=2,
                implausibility_cut=cut,
                overrides="[" + ", ".join(f'"{o}"' for o in TINY_OVERRIDES) + "]")
    body.update(fields)
    text = "\n".join(f"{k} = {v}" for k, v in body.items())
    text += """
[[parameter]]
key = "drugs.braf_inhibitor.kill.emax"
low = 0.02
high = 0.3
[[parameter]]
key = "cohort[tumor.antigenicity].sigma"
low = 0.2
high = 1.2
scale = "log"
""" + extra
    path = tmp_path / "calibration.toml"
    path.write_text(text)
    return path


# ------------------------------------------------------------------ targets
def test_melanoma_targets_load_and_every_number_has_a_source():
    targets = targets_mod.load(library_dir() / "targets" / "melanoma.toml")
    assert len(targets.target) >= 20
    for t in targets.target:
        assert t.trial and t.reference and t.source, t.id
        assert t.low <= t.value <= t.high
        if not (t.confirmed and t.interval_confirmed):
            assert t.note or "not confirmed" in t.source, t.id  # says what is derived
    roles = {t.role for t in targets.target}
    assert roles == {"fit", "predict", "reference"}
    fit_arms = {t.arm for t in targets.target if t.role == "fit"}
    # monotherapies, and no treatment (the natural history: no spontaneous regression)
    assert fit_arms == {"untreated", "targeted_continuous", "targeted_braf_mek", "anti_pd1"}


@pytest.mark.parametrize("old, new, message", [
    ('value = 0.5', 'value = 0.5', None),
    ('value = 0.5', 'value = 0.7', "target[0].value: must lie in [low, high]"),
    ('statistic = "response_rate"', 'statistic = "overall_survival"',
     "target[0].statistic: must be one of"),
    ('value = 0.5', 'valu = 0.5', "target[0].valu: unknown key (did you mean 'value'?)"),
    ('value = 0.5', 'value = 0.5\nlandmark_months = 12',
     "target[0].landmark_months: landmark_months goes with"),
])
def test_targets_file_errors_are_one_line(tmp_path, old, new, message):
    text = TARGETS.replace(old, new, 1)
    path = tmp_path / "t.toml"
    path.write_text(text)
    if message is None:
        assert targets_mod.load(path).target[0].value == 0.5
        return
    with pytest.raises(ScenarioError) as exc:
        targets_mod.load(path)
    assert exc.value.line().startswith(f"{path}: ") and message in exc.value.line()
    assert "\n" not in exc.value.line()


def test_two_fit_targets_for_one_statistic_are_refused(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(TARGETS.replace('id = "c_orr"\narm = "combination_concurrent"',
                                    'id = "c_orr"\narm = "targeted_continuous"')
                    .replace('role = "predict"', 'role = "fit"', 1))
    with pytest.raises(ScenarioError, match="one fit target per arm and statistic"):
        targets_mod.load(path)


def test_estimates_from_endpoint_rows():
    t = targets_mod.Target(id="x", arm="a", statistic="median_pfs", value=1, low=0.5, high=2)
    month = 30.4375
    rows = [dict(progression_free_days=d * month, progression_observed=o)
            for d, o in ((1, True), (2, True), (3, False), (4, True))]
    est = targets_mod.estimate(t, rows)
    assert est.value == 2.0 and est.n == 4  # S: 3/4 at 1, 1/2 at 2 (in months)
    r = targets_mod.Target(id="y", arm="a", statistic="median_time_to_response", value=2,
                           low=1, high=3)
    rows = [dict(objective_response=True, time_to_response_days=k * month) for k in (1, 2, 9)]
    rows.append(dict(objective_response=False, time_to_response_days=math.nan))
    assert targets_mod.estimate(r, rows).value == 2.0  # responders only


def test_response_rates_at_the_report_cut_off():
    """Four patients (months): a CR from month 2, a PR from 3 that deepens to CR at 14, a
    PR from 8 that progresses at 10, a late PR from 20. Cut off at 12 months: 3 responders
    (the late one not yet), 1 complete (the CR at 14 still a PR); the PR that progressed
    lasted 2 months, the others are censored at the cut-off."""
    month = 30.4375
    nan = math.nan
    rows = [dict(objective_response=True, response_class="CR", time_to_response_days=2 * month,
                 time_to_complete_response_days=2 * month, duration_of_response_days=58 * month,
                 response_ongoing=True),
            dict(objective_response=True, response_class="CR", time_to_response_days=3 * month,
                 time_to_complete_response_days=14 * month,
                 duration_of_response_days=57 * month, response_ongoing=True),
            dict(objective_response=True, response_class="PR", time_to_response_days=8 * month,
                 time_to_complete_response_days=nan, duration_of_response_days=2 * month,
                 response_ongoing=False),
            dict(objective_response=True, response_class="PR", time_to_response_days=20 * month,
                 time_to_complete_response_days=nan, duration_of_response_days=40 * month,
                 response_ongoing=True)]

    def at(statistic, cut_off):
        target = targets_mod.Target(id="x", arm="a", statistic=statistic, value=1.0, low=0.1,
                                    high=2.0, follow_up_months=cut_off)
        return targets_mod.estimate(target, rows).value

    assert at("response_rate", 12) == 0.75 and at("complete_response_rate", 12) == 0.25
    assert at("response_rate", None) == 1.0 and at("complete_response_rate", None) == 0.5
    assert at("complete_response_rate", 14) == 0.5     # a scan at the cut-off counts
    assert at("median_time_to_response", 12) == 3.0    # months 2, 3, 8
    # durations at 12 months: 10 and 9 censored, 2 observed; KM median: S = 2/3 after 2,
    # then censored at 9 and 10: never <= 1/2, not reached
    assert at("median_duration_of_response", 12) == math.inf
    old = [{k: v for k, v in r.items() if k != "time_to_complete_response_days"} for r in rows]
    target = targets_mod.Target(id="x", arm="a", statistic="response_rate", value=0.5, low=0.1,
                                high=0.9, follow_up_months=12)
    with pytest.raises(ScenarioError, match="simulate them again"):
        targets_mod.estimate(target, old)


def test_follow_up_goes_with_response_statistics_only():
    with pytest.raises(ScenarioError, match="response statistic"):
        targets_mod.Target(id="x", arm="a", statistic="median_pfs", value=1.0, low=0.5,
                           high=2.0, follow_up_months=12).check()


def test_estimates_leave_out_patients_without_a_tumour_at_baseline():
    """A tumour cleared before the treatment start is not a trial patient (no measurable
    disease): 1 responder of 2 enrolled, not of 3."""
    t = targets_mod.Target(id="x", arm="a", statistic="response_rate", value=0.5, low=0.4,
                           high=0.6)
    rows = [dict(objective_response=True, response_class="CR", baseline_tumor_cells=900.0),
            dict(objective_response=False, response_class="PD", baseline_tumor_cells=700.0),
            dict(objective_response=False, response_class="NE", baseline_tumor_cells=0.0)]
    est = targets_mod.estimate(t, rows)
    assert est.value == 0.5 and est.n == 2
    pfs = targets_mod.Target(id="p", arm="a", statistic="median_pfs", value=1, low=0.5, high=2)
    cleared = dict(baseline_tumor_cells=0.0, progression_free_days=math.nan,
                   progression_observed=False)
    assert targets_mod.estimate(pfs, [cleared]).n == 0


# ------------------------------------------------------------------ calibration file
def test_library_calibration_file_resolves():
    c = calibration.load(library_dir() / "calibration" / "melanoma.toml")
    assert {t.arm for t in c.fit} == {"untreated", "targeted_continuous", "targeted_braf_mek",
                                      "anti_pd1"}
    assert all(t.role == "fit" for t in c.fit)
    predicted = {t.arm for t in c.predict if t.role == "predict"}
    assert predicted == {"anti_ctla4_anti_pd1", "combination_braf_mek_anti_pd1",
                         "anti_ctla4_anti_pd1_then_braf_mek",
                         "braf_mek_then_anti_ctla4_anti_pd1"}
    assert not c.not_simulated  # clinical time: every landmark inside the follow-up
    assert c.spec.check_seed != c.spec.seed


@pytest.mark.parametrize("extra, fields, message", [
    ('\n[[parameter]]\nkey = "tumor.divison_rate_per_day"\nlow = 0.1\nhigh = 0.5\n', {},
     "parameter[2].key: tumor.divison_rate_per_day = 0.1: unknown key"),
    ('\n[[parameter]]\nkey = "cohort[tumor.death_rate_per_day].sigma"\nlow = 0.1\nhigh = 0.5\n',
     {}, "no [[cohort]] entry with key = 'tumor.death_rate_per_day'"),
    ('\n[[parameter]]\nkey = "tumor.death_rate_per_day"\nlow = -1\nhigh = 0.5\n', {},
     "tumor.death_rate_per_day = -1"),
    ('\n[[parameter]]\nkey = "tumor.death_rate_per_day"\ntimes = "tumor.division_rate_per_day"'
     '\nlow = 0.5\nhigh = 0.9\n', {},
     "parameter[2].times: times = 'tumor.division_rate_per_day' must name the key of a "
     "parameter listed before this one"),
    ('\n[[parameter]]\nkey = "tumor.division_rate_per_day"\nlow = 0.1\nhigh = 0.5\n'
     '[[parameter]]\nkey = "tumor.death_rate_per_day"\ntimes = "tumor.division_rate_per_day"'
     '\nlow = -0.5\nhigh = 0.9\n', {}, "parameter[3].key: tumor.death_rate_per_day = -0.05"),
    ('', {"check_seed": 1}, "check_seed: must differ from seed"),
    ('', {"replicates": 1}, "replicates: must be >= 2"),
    ('', {"exclude_targets": '["nope"]'}, "exclude_targets: no such target: nope"),
    ('', {"arms": f'["{library_dir() / "targeted_continuous.toml"}", '
                  f'"{library_dir() / "anti_pd1.toml"}", '
                  f'"{library_dir() / "combination_concurrent.toml"}"]', "predict_arms": "[]"},
     "arms: combination_concurrent has no fit target: list it in predict_arms"),
])
def test_calibration_file_errors_are_one_line(tmp_path, extra, fields, message):
    path = write_spec(tmp_path, extra, **fields)
    with pytest.raises(ScenarioError) as exc:
        calibration.load(path)
    assert message in exc.value.line() and str(path) in exc.value.line()


def test_an_arm_that_sets_a_fitted_key_itself_is_refused(tmp_path):
    arm = tmp_path / "targeted_continuous.toml"
    arm.write_text(f'base = "{library_dir() / "targeted_continuous.toml"}"\n'
                   "[drugs.braf_inhibitor.kill]\nemax = 0.5\n")
    path = write_spec(tmp_path, arms=f'["{arm}", "{library_dir() / "anti_pd1.toml"}"]')
    with pytest.raises(ScenarioError, match="arm targeted_continuous sets "
                                            "drugs.braf_inhibitor.kill.emax itself"):
        calibration.load(path)


def test_a_fit_landmark_beyond_the_follow_up_is_refused(tmp_path):
    path = write_spec(tmp_path)
    (tmp_path / "targets.toml").write_text(TARGETS.replace(
        'statistic = "response_rate"\nvalue = 0.5\nlow = 0.4\nhigh = 0.6',
        'statistic = "landmark_pfs"\nlandmark_months = 12\nvalue = 0.5\nlow = 0.4\nhigh = 0.6',
        1))
    with pytest.raises(ScenarioError, match="t_orr needs 12 months of follow-up"):
        calibration.load(path)


def test_cli_calibrate_bad_file_exits_2_with_one_line(tmp_path):
    path = write_spec(tmp_path, check_seed=1)
    result = subprocess.run([sys.executable, "-m", "simulator", "calibrate", str(path),
                             "-o", str(tmp_path / "out")], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "check_seed: must differ" in result.stderr
    assert not (tmp_path / "out").exists()


@needs_jit
@pytest.mark.timeout(600)
def test_cli_calibrate_sigterm_stops_with_one_line_keeping_the_store(tmp_path):
    """SIGTERM while the workers run: exit 143 with one line saying what is kept, the
    workers stopped, and every stored simulation a whole record (the command resumes)."""
    path = write_spec(tmp_path, replicates=12)
    out = tmp_path / "out"
    store = out / "store.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "calibrate", str(path), "-o",
                             str(out), "--workers", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 300
    while (proc.poll() is None and time.monotonic() < deadline
           and not (store.exists() and store.read_text().count("\n") >= 2)):
        time.sleep(0.05)
    assert proc.poll() is None, "the calibration ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == [
        f"tumorsim: terminated; finished simulations are kept in {store}; the same command "
        "resumes the calibration"]
    assert len(Store(store).records) >= 2


# ------------------------------------------------------------------ pieces
def test_unit_cube_round_trip_and_log_scale():
    params = [spec_mod.FitParameter("a", 0.1, 10.0, "log"),
              spec_mod.FitParameter("b", -1.0, 1.0, "linear")]
    unit = np.array([[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    values = design.to_values(unit, params)
    assert values[:, 0] == pytest.approx([0.1, 1.0, 10.0])  # geometric midpoint
    assert values[:, 1] == pytest.approx([-1.0, 0.0, 1.0])
    assert design.to_unit(values, params) == pytest.approx(unit)


def test_integer_parameters_are_rounded_and_set_as_integers():
    radius = spec_mod.FitParameter("initial.tumor_radius_sites", 8.0, 30.0, "linear", True)
    other = spec_mod.FitParameter("tumor.death_rate_per_day", 0.02, 0.5, "log")
    unit = np.array([[0.3, 0.3], [0.51, 0.7]])
    snapped = design.snap(unit, [radius, other])
    values = design.to_values(snapped, [radius, other])
    assert list(values[:, 0]) == [15.0, 19.0]                 # 8 + 0.3 x 22 = 14.6, 19.22
    assert np.array_equal(snapped[:, 1], unit[:, 1])          # other columns untouched
    assert design.to_unit(values, [radius, other])[:, 0] == pytest.approx(snapped[:, 0])
    scenario = spec_mod.with_values(load(library_dir() / "melanoma.toml").to_toml(),
                                    [radius, other], values[0])
    assert scenario.initial.tumor_radius_sites == 15
    assert isinstance(scenario.initial.tumor_radius_sites, int)


def test_a_ratio_parameter_sets_its_key_to_the_product():
    division = spec_mod.FitParameter("tumor.division_rate_per_day", 0.05, 0.4, "log")
    ratio = spec_mod.FitParameter("tumor.death_rate_per_day", 0.5, 0.95,
                                  times="tumor.division_rate_per_day")
    assert ratio.label == "tumor.death_rate_per_day/tumor.division_rate_per_day"
    assert spec_mod.scenario_values([division, ratio], [0.2, 0.75]) == {
        "tumor.division_rate_per_day": 0.2, "tumor.death_rate_per_day": 0.2 * 0.75}
    scenario = spec_mod.with_values(load(library_dir() / "melanoma.toml").to_toml(),
                                    [division, ratio], [0.2, 0.75])
    assert scenario.tumor.division_rate_per_day == 0.2
    assert scenario.tumor.death_rate_per_day == 0.2 * 0.75


def test_latin_hypercube_is_seeded_and_stratified():
    a = design.latin_hypercube(8, 3, design.generator(1, 1, 1))
    b = design.latin_hypercube(8, 3, design.generator(1, 1, 1))
    assert np.array_equal(a, b)
    for j in range(3):  # one point in each of the 8 strata of every coordinate
        assert sorted(np.floor(a[:, j] * 8).astype(int)) == list(range(8))


def test_maximin_picks_spread_points():
    points = np.array([[0.0, 0.0], [0.01, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.5]])
    assert design.maximin_subset(points, 3, start=0) == [0, 2, 3]
    assert design.maximin_subset(points, 2, start=0, avoid=np.array([[1.0, 1.0]])) == [0, 3]


def test_cohort_keys_set_the_named_entry():
    table = {"cohort": [{"key": "tumor.antigenicity", "sigma": 0.8}, {"key": "x.y", "sd": 1}]}
    out = spec_mod.set_value(table, "cohort[x.y].sd", 2.0)
    assert out["cohort"][1]["sd"] == 2.0 and table["cohort"][1]["sd"] == 1  # a copy
    assert spec_mod.get_value(out, "cohort[tumor.antigenicity].sigma") == 0.8


def test_progress_lines_every_tenth_with_an_estimate():
    from simulator.study.calibration.simulate import Progress
    lines, now = [], [0.0]
    progress = Progress("wave 1", 25, lines.append, clock=lambda: now[0])
    for k in range(25):
        now[0] += 60.0  # a minute per task
        progress(dict(status="failed" if k == 3 else "complete"))
    # ceil(25 / 10) = 3 tasks per report: after 3, 6, ..., 24, and the last
    assert len(lines) == 9
    assert lines[0] == "wave 1: 3 of 25 tasks done, 3.0 min, ~22 min left"
    assert lines[1] == "wave 1: 6 of 25 tasks done, 1 failed, 6.0 min, ~19 min left"
    assert lines[-1] == "wave 1: 25 of 25 tasks done, 1 failed, 25.0 min"


def test_store_survives_a_torn_last_line(tmp_path):
    store = Store(tmp_path / "s.jsonl")
    store.append(dict(key="a", value=math.inf, nested={"x": math.nan}))
    with open(tmp_path / "s.jsonl", "a") as fh:
        fh.write('{"key": "b", "val')  # killed mid-write
    again = Store(tmp_path / "s.jsonl")
    assert "a" in again and "b" not in again
    assert again.get("a")["value"] == math.inf and math.isnan(again.get("a")["nested"]["x"])
    again.append(dict(key="c"))
    assert set(Store(tmp_path / "s.jsonl").records) == {"a", "c"}


def test_emulator_recovers_a_smooth_function():
    from simulator.study.calibration import emulator
    x = design.latin_hypercube(20, 2, design.generator(3, 1, 1))
    y = np.sin(3 * x[:, 0]) + x[:, 1] ** 2
    fit = emulator.fit(x, y, np.full(20, 1e-4), seed=1)
    test = design.latin_hypercube(10, 2, design.generator(4, 1, 1))
    mean, var = fit.predict(test)
    truth = np.sin(3 * test[:, 0]) + test[:, 1] ** 2
    # the truth lies within 3 predictive sd (a Gaussian check at 99.7% per point)
    assert np.all(np.abs(mean - truth) <= 3 * np.sqrt(var) + 1e-3)
    loo = emulator.leave_one_out(fit, x, y, np.full(20, 1e-4))
    assert np.mean(np.abs(loo) > 2) <= 0.2


# ------------------------------------------------------------------ the whole loop
def _text(records):
    from simulator.study.calibration.store import jsonable
    return [json.dumps(jsonable(r), sort_keys=True) for r in records]


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


RATIO_PARAMETERS = """
[[parameter]]
key = "tumor.division_rate_per_day"
low = 0.3
high = 0.6
[[parameter]]
key = "tumor.death_rate_per_day"
times = "tumor.division_rate_per_day"
low = 0.05
high = 0.2
"""


@needs_jit
@pytest.mark.timeout(900)
def test_tiny_calibration_end_to_end_and_resume(tmp_path):
    path = write_spec(tmp_path, RATIO_PARAMETERS)
    c = calibration.load(path)
    out = tmp_path / "out"
    messages = []
    result = calibration.calibrate(c, out, log=messages.append)
    assert "wave 1: 6 of 6 tasks done" in " ".join(messages)  # progress lines in the log
    for name in ("store.jsonl", "calibration.toml", "waves.csv", "simulations.csv",
                 "accepted.csv", "best_fit.toml", "check.csv", "check.md", "check.png"):
        assert (out / name).exists(), name
    waves = _rows(out / "waves.csv")
    assert [w["wave"] for w in waves] == ["1", "2"] and waves[1]["points"] == "3"
    sims = _rows(out / "simulations.csv")
    assert len(sims) == 6 and len(result.accepted) == 6  # the cut of 100 accepts all
    # every simulation is in the store: 2 waves x 3 points x 2 replicates + 2 check tasks
    assert len(Store(out / "store.jsonl").records) == 14
    best = load(out / "best_fit.toml")  # `tumorsim run` accepts it
    assert best.drugs["braf_inhibitor"].kill.emax == pytest.approx(
        result.best.values["drugs.braf_inhibitor.kill.emax"])
    assert best.cohort[0].sigma == pytest.approx(
        result.best.values["cohort[tumor.antigenicity].sigma"])
    division = result.best.values["tumor.division_rate_per_day"]
    assert best.tumor.division_rate_per_day == pytest.approx(division)
    assert best.tumor.death_rate_per_day == pytest.approx(  # the ratio times the division
        result.best.values["tumor.death_rate_per_day/tumor.division_rate_per_day"] * division)
    check = _rows(out / "check.csv")
    assert [(r["id"], r["role"]) for r in check] == [("t_orr", "fit"), ("p_pfs", "fit"),
                                                    ("c_orr", "predict")]
    assert "later_arm (targeted_braf_mek)" in (out / "check.md").read_text()

    # resume: the same command reruns nothing and writes the same tables
    rerun = []
    again = calibration.calibrate(calibration.load(path), out, log=rerun.append)
    planned = [m for m in rerun if "tasks to run" in m]
    assert len(planned) == 2 and all("(0 tasks to run)" in m for m in planned)
    assert _rows(out / "simulations.csv") == sims
    assert again.best.values == result.best.values

    # an interruption: keep the first 5 records and half of the 6th, then rerun the command
    # (keeping the run files of what it reruns)
    cut = tmp_path / "cut"
    cut.mkdir()
    lines = (out / "store.jsonl").read_text().splitlines(keepends=True)
    (cut / "store.jsonl").write_text("".join(lines[:5]) + lines[5][:40])
    cli = subprocess.run([sys.executable, "-m", "simulator", "calibrate", str(path), "-o",
                          str(cut), "--keep-runs"], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    assert cli.returncode == 0, cli.stderr
    assert "best fit:" in cli.stdout and "| fit | targeted_continuous |" in cli.stdout
    assert _rows(cut / "simulations.csv") == sims
    assert _rows(cut / "check.csv") == check
    # 7 wave tasks x 2 fitting arms + 2 check tasks x 3 arms (the predict arm only there)
    assert len(list((cut / "runs").rglob("replicate-*.h5"))) == 7 * 2 + 2 * 3

    # a cut that rules everything out stops after wave 1 (reusing the stored wave 1)
    (tmp_path / "strict").mkdir()
    strict = write_spec(tmp_path / "strict", RATIO_PARAMETERS, cut=0.01)
    stopped_log = []
    stopped = calibration.calibrate(calibration.load(strict), out, log=stopped_log.append)
    assert any("every candidate is ruled out" in m for m in stopped_log)
    assert len(stopped.results) == 3 and stopped.accepted == []
    assert (out / "best_fit.toml").exists()  # the closest set is still written, flagged


@needs_jit
@pytest.mark.timeout(900)
def test_tasks_give_the_same_records_serially_on_a_pool_and_on_dask(tmp_path):
    c = calibration.load(write_spec(tmp_path))
    from simulator.study.calibration.waves import arms_at
    arms = arms_at(c, [0.1, 0.5])
    tasks = [simulate.Task.make(1, 0, r, {"k": 1.0}, arms) for r in range(2)]
    serial = simulate.execute(tasks, Store(tmp_path / "a.jsonl"), tmp_path / "a")
    pooled = simulate.execute(tasks, Store(tmp_path / "b.jsonl"), tmp_path / "b", workers=2)
    assert _text(pooled) == _text(serial)  # as stored (NaN != NaN in a plain comparison)
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        on_dask = simulate.execute(tasks, Store(tmp_path / "c.jsonl"), tmp_path / "c",
                                   scheduler=cluster.scheduler_address)
    assert _text(on_dask) == _text(serial)
    assert not (tmp_path / "a" / "runs").exists()  # run files removed after reading
