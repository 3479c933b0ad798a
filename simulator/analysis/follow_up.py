"""When a run's follow-up ends: at the horizon, "off study" at RECIST progression, or at
the eradication of its tumour.

Trials stop following a patient's tumour for progression-free survival once progression
is called; what the tumour does afterwards is not an endpoint. With
``endpoints.off_study_at_progression = true`` a run does the same: it ends after the
record of the scan at which :func:`simulator.analysis.endpoints.assess` calls progression,
so every endpoint is what it would have been had the run gone on (they are computed from
the scans up to the first PD), and a progressing tumour no longer grows on, at full cost,
into the edge of its lattice, where it would set late burden and resistant share by the
size of the box.

A regimen that switches at progression (a drug waiting for a ``when = "progression"`` rule)
keeps the patient on study until the last such drug has started; from then on the watch
follows the new line of treatment as a trial's second-line follow-up would: scans every
``scan_interval_days`` from the day the line started, progression against its own
baseline and nadir.

The decision is :func:`assess` itself applied to the records so far, at the record that
stands for each scan (the last record at or before the scan day, as ``assess`` picks it),
so the stop and the endpoints cannot disagree.

With ``endpoints.end_at_eradication = true`` a run also ends at the first record from the
treatment start on with no live tumour cell. Nothing can regrow from no cell (divisions
and mutations need a live cell), so every later scan would read zero: ``assess`` given the
horizon (``followed_to_day``) scans on at zero and every endpoint is what the whole run
would give. What the run no longer simulates is the immune compartment after the cure,
which no endpoint reads except the time-averaged immune ratios (averaged over the
simulated follow-up, as for a run off study at progression). In a clinical-time library
most of a responding arm's cost is such years of follow-up of a cured lesion.
"""
from __future__ import annotations

import numpy as np

from simulator.analysis.endpoints import TIME_TOLERANCE_DAYS, ResponseCriteria, assess
from simulator.treatment.regimen import STOPPED, WAITING


class ProgressionWatch:
    """Decides, record by record, whether a run goes off study (see the module docstring).

    ``criteria``: the run's :class:`ResponseCriteria`; ``treatment_start_day``: the first
    line's baseline day; ``regimen``: the run's regimen (or None when no drug is given);
    ``at_progression`` / ``at_eradication``: which ends apply."""

    def __init__(self, criteria: ResponseCriteria, treatment_start_day: float, regimen=None,
                 *, at_progression: bool = True, at_eradication: bool = False):
        self.criteria = criteria
        self.first_line_start = float(treatment_start_day)
        self.regimen = regimen
        self.at_progression = at_progression
        self.at_eradication = at_eradication

    def reason_to_end(self, day: float, next_record_day: float, live_tumor_cells: int,
                      series) -> str:
        """Why the run ends at the record at ``day`` ("eradication", "progression"), or ""
        to go on. ``series``: a callable giving the records so far (named as
        ``/timeseries``), called only at a scan record."""
        if (self.at_eradication and live_tumor_cells == 0
                and day >= self.first_line_start - TIME_TOLERANCE_DAYS):
            return "eradication"
        if (self.at_progression and self.is_scan_record(day, next_record_day)
                and self.progressed(series())):
            return "progression"
        return ""

    # ------------------------------------------------------------------ the line followed
    def _line_start(self) -> float | None:
        """Baseline day of the line of treatment followed now; None while a drug still
        waits for progression (the patient stays on study)."""
        regimen = self.regimen
        if regimen is None:
            return self.first_line_start
        if any(_waits_for_progression(drug, regimen.courses[name].state)
               for name, drug in regimen.drugs.items()):
            return None
        starts = [e.day for e in regimen.events
                  if e.action == "start" and e.reason.startswith("rule:")]
        return max([self.first_line_start, *starts])

    def is_scan_record(self, day: float, next_record_day: float) -> bool:
        """True when the record at ``day`` is the one a scan of the followed line reads:
        the last record at or before a scan day (the next record comes after it)."""
        start = self._line_start()
        if start is None or day < start - TIME_TOLERANCE_DAYS:
            return False
        scan_day = self.criteria.scan_on_or_after(start, day)
        return day <= scan_day + TIME_TOLERANCE_DAYS < next_record_day

    def progressed(self, series) -> bool:
        """Whether the followed line has progressed by the last record of ``series`` (named
        as ``/timeseries``); call it at a scan record."""
        start = self._line_start()
        if start is None:
            return False
        t = np.asarray(series["time_days"], dtype=np.float64)
        if t.size == 0 or t[-1] < start + self.criteria.first_scan - TIME_TOLERANCE_DAYS:
            return False
        return assess(t, series["tumor_cells"], series["tumor_resistant"], start,
                      self.criteria, residual_from_day=self.first_line_start
                      ).progression_observed


def _waits_for_progression(drug, state: str) -> bool:
    """A drug that a progression rule can still start (or re-start)."""
    return any(rule.kind == "progression"
               and state == (STOPPED if rule.restart else WAITING) for rule in drug.rules)


def watch_for(scenario, treatment) -> ProgressionWatch | None:
    """The watch of a run of ``scenario`` (None when it ends only at its horizon)."""
    settings = scenario.endpoints
    if not (settings.off_study_at_progression or settings.end_at_eradication):
        return None
    sim = scenario.simulation
    return ProgressionWatch(settings.criteria(sim.ndim, sim.spacing_um),
                            sim.treatment_start_day,
                            treatment.regimen if treatment.active else None,
                            at_progression=settings.off_study_at_progression,
                            at_eradication=settings.end_at_eradication)
