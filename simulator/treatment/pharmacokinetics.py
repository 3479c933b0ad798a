"""One-compartment pharmacokinetics, advanced exactly from step to step.

Model, per drug (amounts in mg, time in hours, concentration C = central / V in mg/L)::

    d gut / dt     = -ka gut                          (oral only)
    d central / dt =  ka gut - ke central + R(t)      (R: zero-order infusion rate, mg/h)

with ke = ln 2 / half_life_hours. A dose of D mg adds D to ``central`` (iv_bolus), F D to
``gut`` (oral: F = bioavailability), or starts an infusion of rate D / T for T =
``infusion_hours`` (iv_infusion; overlapping infusions add).

Stepping. The state over all drugs is two small vectors (gut, central) plus the list of
running infusions. :meth:`Pharmacokinetics.advance` moves it over one step of dt hours with
the analytic solution of the linear system (no Euler error), splitting the step where an
infusion ends, so any dose history — including doses a rule adds on the fly — is handled by
superposition and the stepper equals the closed forms below to rounding.

Timing convention (the engine's phase order relies on it):

- A dose given on day d takes effect at the start of the first step at or after d
  (:mod:`simulator.treatment.regimen` maps days to steps); it is added to the state at that step's
  start, before that step's kernels.
- :meth:`Pharmacokinetics.step` (give this step's doses, then advance) returns the
  **step-average** concentration over [t_s, t_s + dt) after the step's doses: the exposure the
  kernels of step s see, exact (analytic integral), so an oral dose shows its absorption within
  the step it is given. Effects use E(mean C) (:mod:`simulator.treatment.effects`).
- :attr:`Pharmacokinetics.concentration_mg_per_l` is the instantaneous concentration at the
  current state time. After step s it is C((s + 1) dt) before step s + 1's doses: the value to
  record with the end-of-step record stamped (s + 1) dt (``/timeseries/drug/<name>``); before
  step 0 it is 0.

Closed forms (used by the tests): :func:`bolus_concentration`, :func:`oral_concentration`
(Bateman), :func:`infusion_concentration`, and :func:`superpose` for repeated doses.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping

import numpy as np

#: An infusion whose remaining time is below this many hours has ended (float noise only).
TIME_TOLERANCE_HOURS = 1e-9


def _absorption_kernel(ka, ke, tau):
    """(e^(-ke tau) - e^(-ka tau)) / (ka - ke), stable for ka ~ ke (limit tau e^(-ke tau))."""
    ka = np.asarray(ka, dtype=np.float64)
    ke = np.asarray(ke, dtype=np.float64)
    d = ka - ke
    safe = np.where(d == 0.0, 1.0, d)
    ratio = np.where(d == 0.0, tau, -np.expm1(-d * tau) / safe)
    return np.exp(-ke * tau) * ratio


def _absorption_integral(ka, ke, tau):
    """Integral over [0, tau] of (e^(-ke t) - e^(-ka t)) / (ka - ke).

    = [(1 - e^(-ke tau)) / ke - (1 - e^(-ka tau)) / ka] / (ka - ke); with ka = ke the limit
    (1 - e^(-k tau) - k tau e^(-k tau)) / k^2. Computed as the difference form where ka and ke
    differ and the limit where they are equal.
    """
    ka = np.asarray(ka, dtype=np.float64)
    ke = np.asarray(ke, dtype=np.float64)
    d = ka - ke
    same = d == 0.0
    safe_d = np.where(same, 1.0, d)
    safe_ka = np.where(ka == 0.0, 1.0, ka)
    general = (-np.expm1(-ke * tau) / ke + np.expm1(-ka * tau) / safe_ka) / safe_d
    limit = (-np.expm1(-ke * tau) - ke * tau * np.exp(-ke * tau)) / ke ** 2
    return np.where(same, limit, general)


def _x_plus_expm1_neg(x):
    """x - (1 - e^(-x)) = x^2/2 - x^3/6 + ..., without cancellation for small x."""
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) < 0.1
    xs = np.where(small, x, 0.0)
    series = np.zeros_like(xs)
    term = np.ones_like(xs)
    for n in range(2, 18):                 # x^n / n! alternating; |x| < 0.1: 1e-16 by n = 17
        term = term * xs / n if n > 2 else xs * xs / 2.0
        series = series + (-1.0) ** n * term
    return np.where(small, series, x + np.expm1(-np.where(small, 0.0, x)))


# ----------------------------------------------------------------------------- closed forms
def bolus_concentration(t_hours, dose_mg, volume_l, half_life_hours):
    """IV bolus at t = 0: C0 2^(-t / t_half), C0 = dose / V; 0 before the dose."""
    t = np.asarray(t_hours, dtype=np.float64)
    c = dose_mg / volume_l * np.exp2(-np.maximum(t, 0.0) / half_life_hours)
    return np.where(t >= 0, c, 0.0)


def oral_concentration(t_hours, dose_mg, volume_l, half_life_hours, absorption_rate_per_hour,
                       bioavailability=1.0):
    """Oral dose at t = 0 (Bateman): F D ka / (V (ka - ke)) (e^(-ke t) - e^(-ka t))."""
    t = np.asarray(t_hours, dtype=np.float64)
    ke = math.log(2.0) / half_life_hours
    ka = absorption_rate_per_hour
    c = bioavailability * dose_mg * ka / volume_l * _absorption_kernel(ka, ke, np.maximum(t, 0))
    return np.where(t >= 0, c, 0.0)


def infusion_concentration(t_hours, dose_mg, volume_l, half_life_hours, infusion_hours):
    """Zero-order infusion of ``dose_mg`` over T hours from t = 0: R / (V ke) (1 - e^(-ke t))
    during it (R = dose / T), then decay from the end-of-infusion value."""
    t = np.asarray(t_hours, dtype=np.float64)
    ke = math.log(2.0) / half_life_hours
    rate = dose_mg / infusion_hours
    during = rate / (volume_l * ke) * -np.expm1(-ke * np.clip(t, 0.0, infusion_hours))
    after = np.exp(-ke * np.maximum(t - infusion_hours, 0.0))
    return np.where(t >= 0, during * after, 0.0)


def superpose(single, dose_times_hours, doses_mg, t_hours, **kwargs):
    """Concentration after several doses: sum of ``single(t - t_i, dose_i, **kwargs)``
    (linear kinetics). ``single`` is one of the closed forms above."""
    t = np.asarray(t_hours, dtype=np.float64)
    total = np.zeros_like(t)
    for ti, di in zip(dose_times_hours, doses_mg):
        total = total + single(t - ti, di, **kwargs)
    return total


# ----------------------------------------------------------------------------- stepper
class Pharmacokinetics:
    """Plasma pharmacokinetics of all drugs of a scenario, one step at a time.

    ``drugs``: name -> :class:`simulator.treatment.drugs.Drug` (order kept: index i of every array is
    the i-th drug). Usage per step s, before the kernels::

        conc = pk.step(regimen.doses_for_step(s, observation))   # step-average, mg/L
        ...kernels of step s use effects at conc...
        record pk.concentration_mg_per_l                          # C at (s + 1) dt
    """

    def __init__(self, drugs: Mapping[str, object], dt_hours: float):
        if not dt_hours > 0:
            raise ValueError(f"dt_hours must be > 0, got {dt_hours!r}")
        self.names: tuple[str, ...] = tuple(drugs)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.dt_hours = float(dt_hours)
        n = len(self.names)
        ds = list(drugs.values())
        self.route = tuple(d.route for d in ds)
        self.volume_l = np.array([d.volume_l for d in ds], dtype=np.float64)
        self.ke = np.array([math.log(2.0) / d.half_life_hours for d in ds], dtype=np.float64)
        self.ka = np.array([d.absorption_rate_per_hour if d.route == "oral" else 0.0
                            for d in ds], dtype=np.float64)
        self.bioavailability = np.array([d.bioavailability if d.route == "oral" else 1.0
                                         for d in ds], dtype=np.float64)
        self.infusion_hours = np.array([d.infusion_hours if d.route == "iv_infusion" else 0.0
                                        for d in ds], dtype=np.float64)
        self.gut_mg = np.zeros(n)
        self.central_mg = np.zeros(n)
        #: running infusions: [drug index, rate mg/h, remaining hours]
        self.infusions: list[list] = []
        self.time_hours = 0.0
        self._by_tau: dict[float, tuple] = {}

    # ------------------------------------------------------------------ doses
    def give(self, drug: str | int, amount_mg: float):
        """Give a dose now (at the current state time, i.e. the start of the coming step)."""
        i = self.index[drug] if isinstance(drug, str) else int(drug)
        if not amount_mg >= 0:
            raise ValueError(f"dose must be >= 0 mg, got {amount_mg!r}")
        if amount_mg == 0:
            return
        route = self.route[i]
        if route == "iv_bolus":
            self.central_mg[i] += amount_mg
        elif route == "oral":
            self.gut_mg[i] += self.bioavailability[i] * amount_mg
        else:
            hours = self.infusion_hours[i]
            self.infusions.append([i, amount_mg / hours, hours])

    def give_doses(self, doses: Iterable):
        """Give every dose of an iterable of ``Dose`` (``.drug``, ``.amount_mg``)."""
        for dose in doses:
            self.give(dose.drug, dose.amount_mg)

    # ------------------------------------------------------------------ time
    def _infusion_rates(self) -> np.ndarray:
        rate = np.zeros(len(self.names))
        for i, r, _ in self.infusions:
            rate[i] += r
        return rate

    def _coefficients(self, tau: float) -> tuple:
        """The exact-solution factors for an interval of tau hours. They depend on tau only,
        and almost every interval is a whole step, so they are kept per tau (the same
        arithmetic on the same numbers: the same bits as computing them afresh)."""
        cached = self._by_tau.get(tau)
        if cached is None:
            ke, ka = self.ke, self.ka
            cached = (np.exp(-ke * tau), -np.expm1(-ke * tau), _absorption_kernel(ka, ke, tau),
                      _absorption_integral(ka, ke, tau), _x_plus_expm1_neg(ke * tau),
                      np.exp(-ka * tau))
            if len(self._by_tau) > 64:  # infusion ends split steps at arbitrary times
                self._by_tau.clear()
            self._by_tau[tau] = cached
        return cached

    def _advance_exactly(self, tau: float) -> np.ndarray:
        """Advance by tau hours at constant infusion rates; returns the integral of the
        central amount over the interval (mg h)."""
        ke, ka = self.ke, self.ka
        decay, one_minus, kernel, absorbed, x_plus, gut_decay = self._coefficients(tau)
        central_new = self.central_mg * decay + self.gut_mg * ka * kernel
        integral = self.central_mg * one_minus / ke + self.gut_mg * ka * absorbed
        if self.infusions:  # without one, the infusion terms are exact zeros
            rate = self._infusion_rates()
            central_new = central_new + rate / ke * one_minus
            integral = integral + rate / ke ** 2 * x_plus
        self.gut_mg = self.gut_mg * gut_decay
        self.central_mg = central_new
        return integral

    def advance(self) -> np.ndarray:
        """Move the state over one step; returns the step-average concentration (mg/L)."""
        left = self.dt_hours
        integral = np.zeros(len(self.names))
        while left > TIME_TOLERANCE_HOURS:
            tau = left
            for inf in self.infusions:
                tau = min(tau, inf[2])
            integral += self._advance_exactly(tau)
            left -= tau
            for inf in self.infusions:
                inf[2] -= tau
            self.infusions = [inf for inf in self.infusions if inf[2] > TIME_TOLERANCE_HOURS]
        self.time_hours += self.dt_hours
        return integral / (self.dt_hours * self.volume_l)

    def step(self, doses: Iterable = ()) -> np.ndarray:
        """Give this step's doses, then advance one step; returns the step-average
        concentration of every drug over the step (mg/L)."""
        self.give_doses(doses)
        return self.advance()

    @property
    def concentration_mg_per_l(self) -> np.ndarray:
        """Instantaneous plasma concentration at the current state time (mg/L)."""
        return self.central_mg / self.volume_l

    def concentrations(self) -> dict[str, float]:
        """Instantaneous concentration by drug name (for the recorder)."""
        return {name: float(c) for name, c in zip(self.names, self.concentration_mg_per_l)}

    def copy(self) -> "Pharmacokinetics":
        """An independent copy (for forking regimen arms)."""
        return copy.deepcopy(self)


__all__ = ["Pharmacokinetics", "bolus_concentration", "infusion_concentration",
           "oral_concentration", "superpose"]
