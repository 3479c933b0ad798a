"""The ``[endpoints]`` section: how a run's tumour burden is assessed (RECIST-like)."""
from __future__ import annotations

from dataclasses import dataclass

from simulator.analysis.endpoints import ResponseCriteria
from simulator.schema import ScenarioError, param


@dataclass(frozen=True)
class EndpointSettings:
    """RECIST-like assessment of the simulated tumour (see ``simulator.analysis.endpoints``)."""
    scan_interval_days: float = param(28.0, unit="day", low=0.0, low_open=True,
                                      doc="assessments at treatment start + k x interval "
                                          "(after the first, see first_scan_days)")
    first_scan_days: float = param(0.0, unit="day", low=0.0,
                                   doc="first assessment this long after treatment start, "
                                       "then every scan_interval_days (0: one interval); "
                                       "trials often scan first later, e.g. week 12",
                                   source="CheckMate 067 protocol: week 12, then every 6 "
                                          "weeks (Larkin 2015 NEJM 373:23)")
    residual_half_life_days: float = param(
        0.0, unit="day", low=0.0,
        doc="scans see the regression bed (necrosis, fibrosis, infiltrate) a shrinking "
            "lesion leaves, which clears with this half-life: the measured size follows the "
            "live cells up at once but falls no faster; 0: live cells only "
            "(simulator.treatment.lesion)",
        source="RECIST 1.1 measures the whole lesion; regression beds of necrosis and "
               "proliferative fibrosis after anti-PD-1, half of stable lesions with immune-related "
               "pathologic response (Stein 2019 Ann Oncol 30:589)")
    detection_limit_fraction: float = param(
        0.0, low=0.0, high=1.0,
        doc="scans do not see a lesion whose equivalent diameter is below this fraction of "
            "its baseline diameter (CR; seen again: PD); relative to the baseline so that a "
            "cured lesion's bed vanishes after the same number of half-lives whatever the "
            "lattice lesion's cell count; 0: gone only below half a cell; must be below "
            "1 - partial_response_drop",
        source="RECIST 1.1: CR = disappearance; lesions under ~5-10 mm are at or below CT's "
               "measurable size (Eisenhauer 2009); a 20-30 mm lesion gone from view is "
               "f ~ 0.2")
    real_cells_per_site: float = param(1.0, low=0.0, low_open=True,
                                       doc="real cells one simulated cell stands for; sets "
                                           "the mm scale of the equivalent diameter")
    partial_response_drop: float = param(0.30, low=0.0, high=1.0,
                                         doc="PR: diameter decrease from baseline",
                                         source="RECIST 1.1, Eisenhauer 2009 EJC 45:228")
    progression_rise: float = param(0.20, low=0.0, doc="PD: diameter increase over the nadir",
                                    source="RECIST 1.1")
    progression_min_mm: float = param(1.0, unit="mm", low=0.0,
                                      doc="PD also needs this absolute increase (RECIST: 5 mm "
                                          "on real lesions; a 2D slice of 20 um cells is a few "
                                          "mm across, hence 1 mm by default)",
                                      source="RECIST 1.1 (5 mm)")
    durable_min_days: float = param(180.0, unit="day", low=0.0,
                                    doc="a response lasting at least this long is durable",
                                    source="Andtbacka 2015 JCO 33:2780 (>= 6 months)")
    resistance_share_threshold: float = param(0.5, low=0.0, high=1.0,
                                              doc="time to resistance: resistant share "
                                                  "passes this")
    stable_disease_min_days: float = param(56.0, unit="day", low=0.0,
                                           doc="SD counts as best response only at a scan at "
                                               "least this long after treatment start (8 "
                                               "weeks: a trial's usual first scan)",
                                           source="RECIST 1.1: in general not less than 6-8 "
                                                  "weeks (Eisenhauer 2009)")
    confirmation_min_days: float = param(28.0, unit="day", low=0.0,
                                         doc="a PR/CR is confirmed by PR/CR scans up to one at "
                                             "least this long later (0: the next scan)",
                                         source="RECIST 1.1: no less than 4 weeks")
    confirm_responses: bool = param(True, doc="best overall response counts only confirmed "
                                              "PR/CR (RECIST 1.1 for non-randomised trials)")
    off_study_at_progression: bool = param(
        False, doc="the run ends at the scan that calls RECIST progression (as trials stop "
                   "following PFS there), or, with a drug waiting for a progression rule, at "
                   "the first progression after the last such drug started; endpoints are "
                   "unchanged, later burden is not simulated (simulator.analysis.follow_up)")
    end_at_eradication: bool = param(
        False, doc="the run ends at the first record from the treatment start on with no "
                   "live tumour cell (none can regrow); endpoints are computed as if it "
                   "were followed to its horizon, every later scan a CR; the immune "
                   "compartment after the cure is not simulated (simulator.analysis."
                   "follow_up)")
    landmark_months: list[float] = param([12.0, 24.0], unit="month", low=0.0, low_open=True,
                                         doc="landmark PFS reported per arm (Kaplan-Meier, "
                                             "1 month = 30.4375 days)")

    def check(self):
        """The rules of ResponseCriteria itself (open intervals the declarations above
        cannot say), so that validate refuses what the endpoints would."""
        try:
            self.criteria(2, 1.0)
        except ValueError as exc:
            key, _, rest = str(exc).removeprefix("endpoints.").partition(" ")
            raise ScenarioError(rest, key) from None

    def criteria(self, dimensions: int, spacing_um: float):
        return ResponseCriteria(dimensions=dimensions, spacing_um=spacing_um,
                                **{k: getattr(self, k) for k in ResponseCriteria.TABLE_KEYS})
