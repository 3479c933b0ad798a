"""When drugs are given: dose blocks expanded to step indices once, rules run on the tumour.

:class:`Regimen` turns every drug's ``[[doses]]`` blocks into integer step offsets at
construction (never float modulo at run time) and, each step, returns the doses of that step
(:meth:`Regimen.doses_for_step`), after applying the drug's ``[[rules]]`` to the observed
tumour. Everything it decides is logged: :attr:`Regimen.dose_log` (for ``/doses``) and
:attr:`Regimen.events` (starts, stops, pauses, resumes).

Time
----
- Step s covers [s dt, (s + 1) dt). A dose due on day d (absolute) is given at the start of
  the first step at or after d, i.e. step ceil(d / dt) (times within 1e-9 of a step of a
  boundary count as on it), before that step's kernels. Example: dt = 6 h, d = 1.1 -> step 5,
  which starts at day 1.25.
- Block days count from the **clock origin** of the drug's course: for a drug given from the
  treatment start, the first step at or after ``simulation.treatment_start_day``; for a drug a
  rule starts, the step the rule fires. Block offsets are mapped to steps relative to that
  origin, so the origin step itself is exact.
- Nothing is given before the treatment start.

Observations
------------
``doses_for_step(step, observation)`` takes the tumour at the start of the step (before its
kernels): an :class:`Observation`, a mapping with ``tumor_cells`` (e.g. the engine's
``observe()`` dict) or a number (tumour cells). Rules read the total burden only, as a
clinician reads a scan; ``observation`` may be None when no drug has rules. With
``residual_half_life_days`` > 0 the burden N below is what the endpoints' scans measure:
the lesion's extent with the regression bed it leaves as it shrinks
(:mod:`simulator.treatment.lesion`), so a rule's progression is the endpoints' progression;
with ``detection_limit_fraction`` f > 0 a lesion measured below f^d times its measure at
the treatment start (d dimensions) reads as gone: the endpoints' detection limit.

Rules (checked at scans)
------------------------
Scans fall at the treatment start and every ``scan_interval_days`` after it (mapped to steps
like doses); ``scan_interval_days = 0`` checks every step. With ``first_scan_days`` > 0 the
first scan after the start falls on that day and the next every interval after it: the
endpoints' schedule (``endpoints.first_scan_days``), which a regimen must share for a
sequence to switch at the scan that calls its first line's progression, and no earlier
(an extra regimen scan, or one more scan in its nadir, can see progression first). At a
scan, with N the burden:

- **Nadir**: the smallest burden at scans since the last therapy change (a drug's first dose
  or any rule action: start, stop, switch, pause, resume), starting from the burden at that
  change. After a change the nadir restarts at the burden then, as for a new line of therapy.
- **Progression** (RECIST 1.1, Eisenhauer 2009: diameter +20% over the nadir; on a lattice
  with the equivalent diameter, N / N_nadir >= 1.2^2 = 1.44 in 2D and 1.2^3 = 1.728 in 3D),
  plus N - N_nadir >= ``progression_min_increase_cells`` (default 0), RECIST's absolute rule
  D - D_nadir >= ``progression_min_mm`` on the equivalent diameter D of ``mm_per_site``
  sites (the endpoints' ``progression_min_mm``; default 0) and N > N_nadir. Boundaries are
  inclusive with a 1e-9 relative slack, as in :mod:`simulator.analysis.endpoints`.
  Progression is not assessed while any drug is paused by adaptive therapy (the regrowth
  is intended).
- **Response**: N <= 0.7^2 = 0.49 (2D) or 0.7^3 = 0.343 (3D) times the burden at the drug's
  start (RECIST partial response or better).

A drug's course is ``waiting`` (a start rule has not fired yet), ``on``, ``paused`` or
``stopped``. At a scan every rule is evaluated against the states at the scan's start, then
the actions are applied in drug order, then this step's doses are collected:

- ``when = "progression"`` (a start rule): fires when progression is seen and the drug is
  waiting; with ``of = X`` only if X is on and has started; starts the drug (clock origin =
  this step) and stops X unless ``switch = false``. With ``restart = true`` the rule instead
  fires when the drug is stopped (it started at the treatment start).
- adaptive (``pause_below_fraction``, ``resume_above_fraction``): an on, started drug pauses
  when N <= pause x B; a paused drug resumes when N >= resume x B, B = the burden when the
  drug's course started (its first dose, or the step its start rule fired). A pause skips the
  scheduled doses that fall in it; it does not postpone them (the block clock runs on).
- ``stop_after_response_days``: an on drug stops at the first scan at which the tumour has
  been in response at every scan for at least that many days (counted from the first scan of
  the current run of responding scans).

Dose reasons: ``"schedule"``; the first dose after a rule action carries the rule's reason:
``"rule:progression"`` (start), ``"rule:restart"``, ``"rule:adaptive-resume"``.
Event reasons: ``"schedule"`` (first scheduled dose), the above, ``"rule:adaptive-pause"``,
``"rule:switch"`` (stopped by another drug's switch rule), ``"rule:response"``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from simulator.schema import ScenarioError, param
from simulator.treatment.drugs import Drug
from simulator.treatment.lesion import (GONE_BELOW_CELLS, equivalent_diameter_mm, gone_below,
                                        measure_step, seen, visible_fraction)

#: Times within this many steps of a step boundary count as on it (float noise only).
STEP_TOLERANCE = 1e-9
#: Relative slack on inclusive response boundaries (as in simulator.analysis.endpoints).
BOUNDARY_RELATIVE_TOLERANCE = 1e-9

WAITING, ON, PAUSED, STOPPED = "waiting", "on", "paused", "stopped"


class Dose(NamedTuple):
    """One dose given: ``tuple(dose)`` is the row ``Recorder.write_doses`` takes."""
    step: int
    day: float          # start of the step, in simulation days (the /timeseries time axis)
    drug: str
    amount_mg: float
    reason: str


class Event(NamedTuple):
    """A change of a drug's course: action is "start", "stop", "pause" or "resume"."""
    step: int
    day: float
    drug: str
    action: str
    reason: str


@dataclass(frozen=True)
class Observation:
    """The tumour at the start of a step."""
    tumor_cells: float
    resistant_cells: float = 0.0


def day_to_step(day: float, dt_hours: float) -> int:
    """The first step at or after ``day``: ceil(day * 24 / dt) (1e-9-step slack)."""
    return int(math.ceil(day * 24.0 / dt_hours - STEP_TOLERANCE))


def _at_least(value: float, bound: float) -> bool:
    return value >= bound - BOUNDARY_RELATIVE_TOLERANCE * max(abs(bound), abs(value))


def _at_most(value: float, bound: float) -> bool:
    return value <= bound + BOUNDARY_RELATIVE_TOLERANCE * max(abs(bound), abs(value))


def _burden(observation) -> float | None:
    if observation is None:
        return None
    if isinstance(observation, (int, float, np.integer, np.floating)):
        return float(observation)
    if isinstance(observation, Mapping):
        return float(observation["tumor_cells"])
    return float(observation.tumor_cells)


def expand_blocks(drug: Drug, dt_hours: float, horizon_steps: int) -> dict[int, list[tuple]]:
    """A drug's dose blocks as {step offset from the clock origin: [(amount_mg, block)]},
    keeping offsets below ``horizon_steps``. Done once, at load time."""
    horizon_days = horizon_steps * dt_hours / 24.0
    offsets: dict[int, list[tuple]] = {}
    for b, block in enumerate(drug.doses):
        for day in block.dose_days(horizon_days):
            k = day_to_step(float(day), dt_hours)
            if k < horizon_steps:
                offsets.setdefault(k, []).append((float(block.dose_mg), b))
    return dict(sorted(offsets.items()))


class _Course:
    __slots__ = ("state", "origin", "started", "baseline", "response_since", "pending")

    def __init__(self, state: str):
        self.state = state
        self.origin: int | None = None       # clock origin step of the block offsets
        self.started = False                 # first dose given / start rule fired
        self.baseline: float | None = None   # burden when the course started
        self.response_since: int | None = None
        self.pending: str | None = None      # reason for the next dose


class Regimen:
    """The dosing of one run: schedules expanded once, rules applied step by step.

    ``drugs``: name -> :class:`~simulator.treatment.drugs.Drug` (validated); ``dt_hours``: step length;
    ``n_steps``: steps in the run; ``treatment_start_day``: day the treatment starts (block
    days count from it); ``ndim``: 2 or 3 (sets the RECIST cell ratios);
    ``scan_interval_days``: how often rules look at the tumour (0 = every step);
    ``first_scan_days``: the first scan after the start (0: one interval).
    Call :meth:`doses_for_step` once per step, in order, from a step at or before the
    treatment start.
    """

    def __init__(self, drugs: Mapping[str, Drug], dt_hours: float, n_steps: int,
                 treatment_start_day: float = 0.0, ndim: int = 2,
                 scan_interval_days: float = 7.0, first_scan_days: float = 0.0,
                 progression_min_increase_cells: float = 0.0,
                 progression_min_mm: float = 0.0, mm_per_site: float | None = None,
                 progression_rise: float = 0.20, partial_response_drop: float = 0.30,
                 residual_half_life_days: float = 0.0, detection_limit_fraction: float = 0.0):
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
        if not dt_hours > 0:
            raise ValueError(f"dt_hours must be > 0, got {dt_hours!r}")
        if not scan_interval_days >= 0:
            raise ValueError(f"scan_interval_days must be >= 0, got {scan_interval_days!r}")
        if not first_scan_days >= 0:
            raise ValueError(f"first_scan_days must be >= 0, got {first_scan_days!r}")
        if first_scan_days > 0 and scan_interval_days == 0:
            raise ValueError("first_scan_days needs scan_interval_days > 0 (0 scans every "
                             "step)")
        if not progression_min_mm >= 0:
            raise ValueError(f"progression_min_mm must be >= 0, got {progression_min_mm!r}")
        if progression_min_mm > 0 and not (mm_per_site or 0) > 0:
            raise ValueError("progression_min_mm needs mm_per_site > 0")
        if not residual_half_life_days >= 0:
            raise ValueError(f"residual_half_life_days must be >= 0, got "
                             f"{residual_half_life_days!r}")
        self.drugs = dict(drugs)
        self.names = tuple(self.drugs)
        self.dt_hours = float(dt_hours)
        self.n_steps = int(n_steps)
        self.ndim = ndim
        self.treatment_start_day = float(treatment_start_day)
        self.treatment_start_step = day_to_step(self.treatment_start_day, self.dt_hours)
        self.scan_interval_days = float(scan_interval_days)
        self.first_scan_days = float(first_scan_days)
        self.progression_ratio = (1.0 + progression_rise) ** ndim
        self.response_ratio = (1.0 - partial_response_drop) ** ndim
        self.progression_min_increase_cells = float(progression_min_increase_cells)
        self.progression_min_mm = float(progression_min_mm)
        self.mm_per_site = mm_per_site
        self.offsets = {name: expand_blocks(d, self.dt_hours, self.n_steps)
                        for name, d in self.drugs.items()}
        self.scan_steps = self._scan_steps()
        self.has_rules = any(d.rules for d in self.drugs.values())
        self.courses = {name: _Course(WAITING if d.waits_for_rule else ON)
                        for name, d in self.drugs.items()}
        for name, d in self.drugs.items():
            if not d.waits_for_rule:
                self.courses[name].origin = self.treatment_start_step
        # the scan's measure (simulator.treatment.lesion): its decay factor per step
        self.measure_decay = (math.exp(-math.log(2.0) / residual_half_life_days
                                       * self.dt_hours / 24.0)
                              if residual_half_life_days > 0 else 0.0)
        if not 0 <= detection_limit_fraction < 1:
            raise ValueError(f"detection_limit_fraction must be in [0, 1), got "
                             f"{detection_limit_fraction!r}")
        self.visible_fraction = visible_fraction(detection_limit_fraction, ndim)
        self.gone_below = GONE_BELOW_CELLS
        self.measured_cells: float | None = None
        self.baseline_cells: float | None = None
        self.nadir_cells: float | None = None
        self.dose_log: list[Dose] = []
        self.events: list[Event] = []
        self._last_step: int | None = None

    @classmethod
    def from_scenario(cls, scenario, **kwargs) -> "Regimen":
        """The regimen of a scenario with a ``drugs`` table (keyword arguments pass on)."""
        sim = scenario.simulation
        return cls(getattr(scenario, "drugs", {}), sim.dt_hours, sim.steps,
                   sim.treatment_start_day, len(sim.dimensions), **kwargs)

    def _scan_steps(self) -> frozenset[int]:
        start, end = self.treatment_start_step, self.n_steps
        if self.scan_interval_days == 0:
            return frozenset(range(start, max(start, end)))
        interval, first = self.scan_interval_days, self.first_scan_days
        steps, k = {start}, 0 if first > 0 else 1
        while True:   # the day arithmetic of the endpoints' (ResponseCriteria.scan_days)
            day = first + interval * k if first > 0 else interval * k
            s = start + day_to_step(day, self.dt_hours)
            if s >= end:
                break
            steps.add(s)
            k += 1
        return frozenset(steps)

    def day_of(self, step: int) -> float:
        return step * self.dt_hours / 24.0

    @property
    def states(self) -> dict[str, str]:
        """Each drug's course state: waiting, on, paused or stopped."""
        return {name: c.state for name, c in self.courses.items()}

    # ------------------------------------------------------------------ the step
    def doses_for_step(self, step: int, observation=None) -> list[Dose]:
        """The doses to give at the start of ``step`` (rules applied first); logged."""
        step = int(step)
        if self._last_step is None:
            if step > self.treatment_start_step:
                raise ValueError(f"the first call must be at or before the treatment start "
                                 f"(step {self.treatment_start_step}), got step {step}")
        elif step != self._last_step + 1:
            raise ValueError(f"doses_for_step must be called once per step, in order: "
                             f"step {self._last_step} was followed by {step}")
        self._last_step = step
        if step < self.treatment_start_step:
            return []
        n = self._measure(step, _burden(observation))
        if n is None and self.has_rules:
            raise ValueError(f"step {step}: rules need an observation of the tumour")
        if step == self.treatment_start_step:
            self.baseline_cells = n
            self.nadir_cells = n
        changed = False
        if self.has_rules and step in self.scan_steps:
            changed = self._apply_rules(step, n)
        doses = []
        day = self.day_of(step)
        for name in self.names:
            course = self.courses[name]
            if course.state != ON:
                continue
            for amount, _ in self.offsets[name].get(step - course.origin, ()):
                reason = course.pending or "schedule"
                course.pending = None
                doses.append(Dose(step, day, name, amount, reason))
                if not course.started:
                    course.started = True
                    course.baseline = n
                    changed = True
                    self.events.append(Event(step, day, name, "start", "schedule"))
        if n is not None:
            if changed:
                self.nadir_cells = n
            elif step in self.scan_steps:
                self.nadir_cells = min(self.nadir_cells, n)
        self.dose_log.extend(doses)
        return doses

    def _measure(self, step: int, cells: float | None) -> float | None:
        """What the rules' scans see at ``step``: the live cells, or (with a residual
        half-life) the lesion's extent with its clearing bed, by the endpoints' recursion
        from the treatment start, once per step."""
        if cells is None or (self.measure_decay == 0 and self.visible_fraction == 0):
            return cells
        if step == self.treatment_start_step or self.measured_cells is None:
            self.measured_cells = float(cells)
            self.gone_below = gone_below(cells, self.visible_fraction)
        elif self.measure_decay == 0:
            self.measured_cells = float(cells)
        else:
            self.measured_cells = measure_step(self.measured_cells, cells, self.measure_decay)
        return seen(self.measured_cells, self.gone_below)

    def is_progression(self, n: float) -> bool:
        """N against the current nadir (see the module docstring)."""
        nadir = self.nadir_cells
        return (nadir is not None and n > nadir
                and _at_least(n, self.progression_ratio * nadir)
                and _at_least(n - nadir, self.progression_min_increase_cells)
                and (self.progression_min_mm == 0
                     or _at_least(self._diameter_mm(n) - self._diameter_mm(nadir),
                                  self.progression_min_mm)))

    def _diameter_mm(self, cells: float) -> float:
        return float(equivalent_diameter_mm(cells, self.ndim, self.mm_per_site))

    def _apply_rules(self, step: int, n: float) -> bool:
        courses = self.courses
        progressed = (not any(c.state == PAUSED for c in courses.values())
                      and self.is_progression(n))
        actions = []          # (action, drug, reason, stop-this-drug-too or None)
        for name, drug in self.drugs.items():
            c = courses[name]
            for rule in drug.rules:
                kind = rule.kind
                if kind == "progression":
                    if not progressed:
                        continue
                    if c.state != (STOPPED if rule.restart else WAITING):
                        continue
                    if rule.of is not None:
                        other = courses[rule.of]
                        if not (other.state == ON and other.started):
                            continue
                    reason = "rule:restart" if rule.restart else "rule:progression"
                    actions.append(("start", name, reason,
                                    rule.of if rule.switches else None))
                elif kind == "adaptive" and c.started:
                    if c.state == ON and _at_most(n, rule.pause_below_fraction * c.baseline):
                        actions.append(("pause", name, "rule:adaptive-pause", None))
                    elif c.state == PAUSED and _at_least(n, rule.resume_fraction * c.baseline):
                        actions.append(("resume", name, "rule:adaptive-resume", None))
                elif kind == "response" and c.state == ON and c.started:
                    if _at_most(n, self.response_ratio * c.baseline):
                        if c.response_since is None:
                            c.response_since = step
                        held = (step - c.response_since) * self.dt_hours / 24.0
                        if held >= rule.stop_after_response_days - 1e-9:
                            actions.append(("stop", name, "rule:response", None))
                    else:
                        c.response_since = None
        day = self.day_of(step)
        changed = False
        for action, name, reason, also_stop in actions:
            c = courses[name]
            if action == "start":
                if c.state not in (WAITING, STOPPED):
                    continue
                c.state, c.origin, c.started = ON, step, True
                c.baseline, c.response_since, c.pending = n, None, reason
                self.events.append(Event(step, day, name, "start", reason))
                if also_stop is not None and courses[also_stop].state in (ON, PAUSED):
                    self._stop(also_stop, step, "rule:switch")
            elif action == "pause":
                if c.state != ON:
                    continue
                c.state = PAUSED
                self.events.append(Event(step, day, name, "pause", reason))
            elif action == "resume":
                if c.state != PAUSED:
                    continue
                c.state, c.pending = ON, reason
                self.events.append(Event(step, day, name, "resume", reason))
            else:
                if c.state not in (ON, PAUSED):
                    continue
                self._stop(name, step, reason)
            changed = True
        return changed

    def _stop(self, name: str, step: int, reason: str):
        c = self.courses[name]
        c.state, c.pending, c.response_since = STOPPED, None, None
        self.events.append(Event(step, self.day_of(step), name, "stop", reason))

    # ------------------------------------------------------------------ reading
    def dose_log_arrays(self) -> dict[str, np.ndarray]:
        """The dose log as columns: step (int64), day, amount_mg (float64), drug and reason
        (object arrays of str; write with ``h5py.string_dtype()``)."""
        log = self.dose_log
        return dict(
            step=np.array([d.step for d in log], dtype=np.int64),
            day=np.array([d.day for d in log], dtype=np.float64),
            drug=np.array([d.drug for d in log], dtype=object),
            amount_mg=np.array([d.amount_mg for d in log], dtype=np.float64),
            reason=np.array([d.reason for d in log], dtype=object),
        )

    def scheduled_doses(self) -> list[Dose]:
        """The doses the schedules give if no rule ever acts (drugs a rule starts are left
        out): a preview for ``tumorsim inspect`` and for marking dose days on plots."""
        out = []
        for name, d in self.drugs.items():
            if d.waits_for_rule:
                continue
            for k, items in self.offsets[name].items():
                step = self.treatment_start_step + k
                if step >= self.n_steps:
                    break
                out.extend(Dose(step, self.day_of(step), name, amount, "schedule")
                           for amount, _ in items)
        return sorted(out, key=lambda d: (d.step, self.names.index(d.drug)))


__all__ = ["Dose", "Event", "Observation", "Regimen", "day_to_step", "expand_blocks"]


@dataclass(frozen=True)
class RegimenSettings:
    scan_interval_days: float = param(7.0, unit="day", low=0.0,
                                      doc="how often regimen rules (progression, adaptive "
                                          "pause/resume, stop in response) look at the "
                                          "tumour; 0 = every step",
                                      source="Zhang 2017 Nat Commun 8:1816 (adaptive "
                                             "abiraterone: PSA every 4 weeks); weekly here")
    first_scan_days: float = param(0.0, unit="day", low=0.0,
                                   doc="the rules' first scan after the treatment start, "
                                       "then every scan_interval_days (0: one interval); "
                                       "set both to the endpoints' for a sequence to switch "
                                       "at its first line's RECIST progression")

    def check(self):
        if self.first_scan_days > 0 and self.scan_interval_days == 0:
            raise ScenarioError("needs scan_interval_days > 0 (0 scans every step)",
                                "first_scan_days")
