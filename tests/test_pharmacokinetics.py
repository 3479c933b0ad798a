"""The exact one-compartment stepper against closed forms (bolus, Bateman, infusion,
superposition), the step-average against the integral of the closed form, mass balance, and
label-level exposure of a preset."""
import math

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from simulator.treatment.drugs import Drug
from simulator.treatment.pharmacokinetics import (Pharmacokinetics, bolus_concentration,
                                        infusion_concentration, oral_concentration, superpose)
from simulator.treatment.regimen import Dose

RTOL = 1e-12


def bolus(**kw):
    return Drug(drug_class="anti_pd1", route="iv_bolus", half_life_hours=30.0, volume_l=5.0,
                **kw)


def oral(ka=1.3, f=0.8, half_life=10.0):
    return Drug(drug_class="targeted", target="BRAF", route="oral", half_life_hours=half_life,
                volume_l=50.0, absorption_rate_per_hour=ka, bioavailability=f)


def infusion(hours=0.5):
    return Drug(drug_class="anti_pd1", route="iv_infusion", half_life_hours=500.0,
                volume_l=6.0, infusion_hours=hours)


def run(drugs, dt, n_steps, schedule):
    """schedule: {step: [(drug, mg)]}; returns (instant C at step starts 0..n, step means)."""
    pk = Pharmacokinetics(drugs, dt)
    instant = [pk.concentration_mg_per_l.copy()]
    means = []
    for s in range(n_steps):
        means.append(pk.step([Dose(s, s * dt / 24, d, mg, "schedule")
                              for d, mg in schedule.get(s, [])]))
        instant.append(pk.concentration_mg_per_l.copy())
    return np.array(instant), np.array(means)


def assert_close(actual, expected, rtol=RTOL):
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = np.maximum(np.abs(expected), 1e-300)
    assert np.all(np.abs(actual - expected) <= rtol * scale), (
        np.max(np.abs(actual - expected) / scale))


# ----------------------------------------------------------------------------- closed forms
def ode_reference(drug, dose_mg, t_end, infusion_hours=None):
    """The model's ODE integrated numerically: checks the closed forms themselves."""
    ke = math.log(2) / drug.half_life_hours
    ka = drug.absorption_rate_per_hour or 0.0

    def rhs(t, y):
        rate = dose_mg / infusion_hours if infusion_hours and t < infusion_hours else 0.0
        return [-ka * y[0], ka * y[0] - ke * y[1] + rate]

    if drug.route == "oral":
        y0 = [drug.bioavailability * dose_mg, 0.0]
    else:
        y0 = [0.0, dose_mg if drug.route == "iv_bolus" else 0.0]
    ts = np.linspace(0.0, t_end, 41)[1:]
    sol = solve_ivp(rhs, (0, t_end), y0, t_eval=ts, rtol=1e-12, atol=1e-14, method="DOP853",
                    max_step=(infusion_hours or t_end) / 4)
    return ts, sol.y[1] / drug.volume_l


def test_closed_forms_solve_the_model():
    d = oral()
    ts, ref = ode_reference(d, 100.0, 48.0)
    np.testing.assert_allclose(oral_concentration(ts, 100.0, 50.0, 10.0, 1.3, 0.8), ref,
                               rtol=1e-9)
    d = bolus()
    ts, ref = ode_reference(d, 100.0, 48.0)
    np.testing.assert_allclose(bolus_concentration(ts, 100.0, 5.0, 30.0), ref, rtol=1e-9)
    d = infusion(hours=10.0)
    ts, ref = ode_reference(d, 200.0, 48.0, infusion_hours=10.0)
    np.testing.assert_allclose(infusion_concentration(ts, 200.0, 6.0, 500.0, 10.0), ref,
                               rtol=1e-8)


def test_bolus_halves_every_half_life_and_is_zero_before_the_dose():
    c = bolus_concentration([-1.0, 0.0, 30.0, 60.0], 100.0, 5.0, 30.0)
    np.testing.assert_allclose(c, [0.0, 20.0, 10.0, 5.0], rtol=1e-15)


# ----------------------------------------------------------------------------- stepper
def test_single_bolus_matches_closed_form():
    dt, n = 6.0, 400
    inst, _ = run({"a": bolus()}, dt, n, {0: [("a", 100.0)]})
    t = np.arange(n + 1) * dt
    assert_close(inst[1:, 0], bolus_concentration(t[1:], 100.0, 5.0, 30.0))
    assert inst[0, 0] == 0.0


def test_repeated_bolus_is_superposition():
    """The instant after step s is C((s + 1) dt) before step s + 1's doses: the left limit,
    so a bolus due exactly then is not in it yet."""
    dt, n = 4.0, 300
    schedule = {s: [("a", 50.0 + s)] for s in range(0, 200, 6)}
    inst, _ = run({"a": bolus()}, dt, n, schedule)
    times = np.array([s * dt for s in schedule])
    amounts = np.array([v[0][1] for v in schedule.values()])
    for s in range(1, n + 1):
        before = times < s * dt
        expected = superpose(bolus_concentration, times[before], amounts[before], s * dt,
                             volume_l=5.0, half_life_hours=30.0)
        assert_close(inst[s, 0], expected)
    # ... and superpose itself counts a dose at exactly t (right-continuous)
    assert superpose(bolus_concentration, [0.0, 8.0], [100.0, 100.0], 8.0, volume_l=5.0,
                     half_life_hours=30.0) == pytest.approx(20.0 * 2 ** (-8 / 30) + 20.0)


@pytest.mark.parametrize("dt", [1.0, 6.0, 24.0])
def test_oral_twice_daily_matches_bateman_superposition(dt):
    n = int(20 * 24 / dt)
    every = max(1, int(round(12 / dt)))
    schedule = {s: [("o", 960.0)] for s in range(0, n - 10, every)}
    inst, _ = run({"o": oral()}, dt, n, schedule)
    t = np.arange(1, n + 1) * dt
    expected = superpose(oral_concentration, [s * dt for s in schedule],
                         [960.0] * len(schedule), t, volume_l=50.0, half_life_hours=10.0,
                         absorption_rate_per_hour=1.3, bioavailability=0.8)
    assert_close(inst[1:, 0], expected)


def test_oral_with_ka_equal_to_ke_uses_the_limit():
    ke = math.log(2) / 10.0
    d = oral(ka=ke, f=1.0)
    inst, _ = run({"o": d}, 3.0, 40, {0: [("o", 100.0)]})
    t = np.arange(1, 41) * 3.0
    assert_close(inst[1:, 0], 100.0 / 50.0 * ke * t * np.exp(-ke * t))
    assert_close(inst[1:, 0], oral_concentration(t, 100.0, 50.0, 10.0, ke, 1.0))


@pytest.mark.parametrize("hours", [0.5, 6.0, 9.0, 30.0])
def test_infusion_matches_closed_form_during_and_after(hours):
    dt, n = 6.0, 60
    inst, _ = run({"i": infusion(hours)}, dt, n, {2: [("i", 200.0)]})
    t = np.arange(n + 1) * dt - 2 * dt
    assert_close(inst[3:, 0], infusion_concentration(t[3:], 200.0, 6.0, 500.0, hours))
    assert np.all(inst[:3, 0] == 0.0)


def test_overlapping_infusions_superpose():
    dt, n = 6.0, 50
    schedule = {s: [("i", 100.0)] for s in (0, 1, 2, 5)}          # 9 h infusions every 6 h
    inst, _ = run({"i": infusion(9.0)}, dt, n, schedule)
    t = np.arange(1, n + 1) * dt
    expected = superpose(infusion_concentration, [s * dt for s in schedule],
                         [100.0] * 4, t, volume_l=6.0, half_life_hours=500.0,
                         infusion_hours=9.0)
    assert_close(inst[1:, 0], expected)


def test_drugs_advance_independently_in_one_vector():
    dt, n = 6.0, 80
    drugs = {"a": bolus(), "o": oral(), "i": infusion(9.0)}
    schedule = {0: [("a", 100.0), ("o", 300.0)], 3: [("i", 200.0), ("o", 300.0)]}
    inst, _ = run(drugs, dt, n, schedule)
    t = np.arange(1, n + 1) * dt
    assert_close(inst[1:, 0], bolus_concentration(t, 100.0, 5.0, 30.0))
    assert_close(inst[1:, 1], superpose(oral_concentration, [0.0, 3 * dt], [300.0, 300.0], t,
                                        volume_l=50.0, half_life_hours=10.0,
                                        absorption_rate_per_hour=1.3, bioavailability=0.8))
    assert_close(inst[4:, 2], infusion_concentration(t[3:] - 3 * dt, 200.0, 6.0, 500.0, 9.0))


# ----------------------------------------------------------------------------- step average
def closed_form(route):
    return {
        "iv_bolus": lambda t: bolus_concentration(t, 100.0, 5.0, 30.0),
        "oral": lambda t: oral_concentration(t, 100.0, 50.0, 10.0, 1.3, 0.8),
        "iv_infusion": lambda t: infusion_concentration(t, 100.0, 6.0, 500.0, 9.0),
    }[route]


@pytest.mark.parametrize("drug", [bolus(), oral(), infusion(9.0)], ids=lambda d: d.route)
def test_step_average_is_the_exact_mean_over_the_step(drug):
    """Step s reports (1/dt) * integral of C over [s dt, (s + 1) dt), doses of step s
    included (quad of the closed form, split where an infusion ends)."""
    dt, n = 6.0, 30
    _, means = run({"d": drug}, dt, n, {0: [("d", 100.0)]})
    c = closed_form(drug.route)
    for s in range(n):
        a, b = s * dt, (s + 1) * dt
        points = [9.0] if a < 9.0 < b else None
        ref = quad(lambda t: float(c(t)), a, b, points=points, epsabs=0, epsrel=1e-13,
                   limit=200)[0] / dt
        assert means[s, 0] == pytest.approx(ref, rel=1e-11)


def test_a_dose_shows_in_the_mean_of_its_own_step_and_the_instant_after_it():
    _, means = run({"o": oral()}, 6.0, 3, {1: [("o", 100.0)]})
    assert means[0, 0] == 0.0 and means[1, 0] > 0.0


def test_mass_balance_holds_for_any_history():
    """eliminated = ke * V * integral(C dt) = given (bioavailable) - left in the body."""
    drug = oral(ka=0.7)
    pk = Pharmacokinetics({"o": drug}, 6.0)
    rng = np.random.default_rng(3)
    given, auc = 0.0, 0.0
    for s in range(200):
        doses = []
        if rng.random() < 0.3:
            mg = float(rng.uniform(10, 500))
            doses.append(Dose(s, 0.0, "o", mg, "schedule"))
            given += drug.bioavailability * mg
        auc += pk.step(doses)[0] * 6.0
    left = pk.gut_mg[0] + pk.central_mg[0]
    ke = math.log(2) / drug.half_life_hours
    assert ke * drug.volume_l * auc == pytest.approx(given - left, rel=1e-12)


def test_vemurafenib_preset_reaches_label_exposure():
    """960 mg bid for 60 days (25 half-lives): the mean over a dosing interval is
    dose / (CL tau), CL = ke V/F (~ 62 mg/L); the Zelboraf label reports Cmax 62 +- 17 ug/mL
    at day 15, so the preset lands inside the label's band."""
    drug = Drug(preset="vemurafenib")
    pk = Pharmacokinetics({"v": drug}, 6.0)
    means = [pk.step([Dose(s, 0, "v", 960.0, "schedule")] if s % 2 == 0 else [])[0]
             for s in range(4 * 60)]
    cl = math.log(2) / 57.0 * 106.0
    c_avg = (means[-1] + means[-2]) / 2
    assert c_avg == pytest.approx(960 / (cl * 12), rel=1e-6)
    assert 62 - 17 < c_avg < 62 + 17


def test_doses_validate_and_zero_dose_is_a_no_op():
    pk = Pharmacokinetics({"a": bolus()}, 6.0)
    pk.give("a", 0.0)
    assert pk.central_mg[0] == 0.0
    with pytest.raises(ValueError):
        pk.give("a", -1.0)
    with pytest.raises(ValueError):
        Pharmacokinetics({"a": bolus()}, 0.0)


def test_copy_is_independent_and_concentrations_are_named():
    pk = Pharmacokinetics({"a": bolus(), "i": infusion()}, 6.0)
    pk.give("a", 10.0)
    pk.give("i", 10.0)
    twin = pk.copy()
    pk.advance()
    assert twin.central_mg[0] == 10.0 and twin.infusions[0][2] == 0.5
    assert set(pk.concentrations()) == {"a", "i"}
    assert pk.time_hours == 6.0 and twin.time_hours == 0.0


def test_no_drugs_is_fine():
    pk = Pharmacokinetics({}, 6.0)
    assert pk.step([]).shape == (0,)
