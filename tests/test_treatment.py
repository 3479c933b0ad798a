"""Drugs inside the engine: when a dose acts, resistant clones escape, arms fork cleanly."""
import h5py
import numpy as np

from conftest import needs_jit
from simulator import study
from simulator.engine import Engine
from simulator.scenario import library_dir, load

DRUG = """
[drugs.blocker]
drug_class = "targeted"
target = "BRAF"
route = "iv_bolus"
half_life_hours = 1000.0
volume_l = 1.0
kill = {{ emax = {emax}, ec50_mg_per_l = 1.0 }}

[[drugs.blocker.doses]]
start_day = {start}
count = 1
dose_mg = 1000.0
"""


def _scenario(tmp_path, start=1.1, emax=50.0, extra=()):
    path = tmp_path / "drug.toml"
    path.write_text(f'base = "{library_dir() / "default.toml"}"\n' + DRUG.format(start=start, emax=emax))
    return load(path, ["simulation.dimensions=[40,40]", "simulation.duration_days=4",
                       "initial.tumor_radius_sites=6", "tumor.death_rate_per_day=0",
                       *extra])


@needs_jit
def test_dose_acts_from_the_first_step_at_or_after_its_day(tmp_path):
    """A dose at day 1.1 with dt = 6 h lands at the start of step 5 (day 1.25), before that
    step's kernels: no drug-caused death before step 5; with kill rate 50/day nearly every
    sensitive cell dies in step 5 itself."""
    engine = Engine(_scenario(tmp_path))
    deaths = []
    for _ in range(7):
        before = engine.state.totals["deaths"]
        engine.step()
        deaths.append(engine.state.totals["deaths"] - before)
    assert deaths[:5] == [0, 0, 0, 0, 0]
    assert deaths[5] > 0.9 * 113  # a radius-6 disc holds 113 cells
    assert engine.treatment.dose_log[0].step == 5


@needs_jit
def test_resistant_clone_escapes_the_targeted_drug(tmp_path):
    engine = Engine(_scenario(tmp_path, start=0.0, extra=["initial.resistant_fraction=0.3"]))
    resistant_before = engine.observe()["tumor_resistant"]
    for _ in range(8):
        engine.step()
    seen = engine.observe()
    assert seen["tumor_sensitive"] == 0
    assert seen["tumor_resistant"] >= resistant_before > 0


@needs_jit
def test_resistant_response_reaches_resistant_cells_in_the_engine(tmp_path):
    """Every cell resistant, no natural death: without a resistant_response the drug kills
    none of them; with 0.5 of its 50/day kill (25/day for 2 days) each survives with
    probability exp(-50) ~ 2e-22, so none is left."""
    extra = ["initial.resistant_fraction=1.0"]
    untouched = Engine(_scenario(tmp_path, start=0.0, extra=extra))
    shared = Engine(_scenario(tmp_path, start=0.0,
                              extra=[*extra, "drugs.blocker.resistant_response=0.5"]))
    for engine in (untouched, shared):
        for _ in range(8):
            engine.step()
    assert untouched.state.totals["deaths"] == 0
    assert untouched.observe()["tumor_resistant"] > 0
    assert shared.observe()["tumor_cells"] == 0


@needs_jit
def test_arms_are_identical_until_the_first_dose(tmp_path):
    untreated = tmp_path / "untreated.toml"
    untreated.write_text(f'base = "{library_dir() / "default.toml"}"\n')
    treated = tmp_path / "treated.toml"
    treated.write_text(f'base = "{library_dir() / "default.toml"}"\n'
                       + DRUG.format(start=3.0, emax=2.0))
    overrides = ["simulation.dimensions=[50,50]", "simulation.duration_days=10",
                 "simulation.treatment_start_day=2", "initial.tumor_radius_sites=6",
                 "endpoints.scan_interval_days=2"]
    study.compare([untreated, treated], 2, tmp_path / "s", overrides=overrides, figures=False)
    for r in range(2):
        with h5py.File(study.run_path(tmp_path / "s", "untreated", r)) as a, \
                h5py.File(study.run_path(tmp_path / "s", "treated", r)) as b:
            t = a["timeseries/time_days"][()]
            na, nb = a["timeseries/deaths_total"][()], b["timeseries/deaths_total"][()]
            first_dose_day = 2 + 3.0
            before = t <= first_dose_day  # records up to the start of the dosed step
            assert np.array_equal(na[before], nb[before])
            assert not np.array_equal(na, nb)
            assert b["doses/table"]["day"][0] == first_dose_day
            assert np.all(b["timeseries/drug/blocker"][()][before] == 0)
