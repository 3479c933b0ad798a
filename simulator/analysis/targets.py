"""Clinical targets as data: one TOML file per indication (``scenarios/targets/<name>.toml``).

Each ``[[target]]`` is one published number: the trial and its arm, the library arm that
models it, the statistic, the value with its 95% interval, the reference, where the number
was confirmed, and its role in a calibration (``fit``: the parameters are chosen to match
it; ``predict``: held out, compared after the fit; ``reference``: shown beside the others,
e.g. a second trial of the same arm). Keys are declared once below with ``param()``, so a
bad file fails like a bad scenario: one line ``FILE: target[3].value: what is wrong``.

Statistics (times in months of 30.4375 days; proportions as fractions), computed from the
endpoint rows of one simulated arm by :func:`estimate`, over the patients with a tumour at
the treatment start (:func:`enrolled`: a trial enrols measurable disease only):

=============================  ===========================================================
``response_rate``              confirmed CR + PR (best overall response), Wilson interval
``complete_response_rate``     best overall response CR, Wilson interval
``median_pfs``                 Kaplan-Meier median progression-free time, log-log interval
``landmark_pfs``               Kaplan-Meier S(landmark_months), log-log interval
``median_time_to_response``    median time to response among responders, order-statistic
                               interval (as trials report it: responders only)
``median_duration_of_response`` Kaplan-Meier median of the responders' durations
=============================  ===========================================================

A trial reports its response rates at a data cut-off, not after a lifetime: a response that
begins (or deepens to CR) later is not in the published number. ``follow_up_months`` on a
response target (the report's median follow-up) counts only responses whose first scan came
by then (``time_to_response_days``; for CR ``time_to_complete_response_days``), so a model
whose complete responses arrive late, as they do when the scans see a slowly clearing
regression bed, is compared with the report at the report's time. Without it the rate is the
best overall response over the whole simulated follow-up.
"""
from __future__ import annotations

import math
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from simulator.analysis import statistics as stats
from simulator.analysis.endpoints import TIME_TOLERANCE_DAYS
from simulator.schema import ScenarioError, build, param

STATISTICS = ("response_rate", "complete_response_rate", "median_pfs", "landmark_pfs",
              "median_time_to_response", "median_duration_of_response")
PROPORTIONS = ("response_rate", "complete_response_rate", "landmark_pfs")
#: Statistics that count responses, and so depend on when the report was cut off.
RESPONSES = ("response_rate", "complete_response_rate", "median_time_to_response",
             "median_duration_of_response")
ROLES = ("fit", "predict", "reference")


@dataclass(frozen=True)
class Target:
    id: str = param("", doc="unique name of the target, e.g. combi_v_vemurafenib_orr")
    arm: str = param("", doc="library arm (scenario file stem) that models the trial arm")
    statistic: str = param("response_rate", choices=STATISTICS, doc="what is compared")
    value: float = param(math.nan, doc="published value (fraction, or months)")
    low: float = param(math.nan, doc="95% interval, lower end")
    high: float = param(math.nan, doc="95% interval, upper end")
    landmark_months: float | None = param(None, unit="month", low=0.0, low_open=True,
                                          doc="landmark_pfs: the landmark time")
    follow_up_months: float | None = param(
        None, unit="month", low=0.0, low_open=True,
        doc="response statistics: the report's follow-up (median, or the data cut-off); only "
            "responses whose first scan came by then count (default: the whole simulated "
            "follow-up)")
    role: str = param("fit", choices=ROLES, doc="fit, predict (held out) or reference")
    trial: str = param("", doc="trial name, e.g. COMBI-v")
    trial_arm: str = param("", doc="the regimen in the trial")
    n_patients: int | None = param(None, low=1, doc="patients in the trial arm")
    reference: str = param("", doc="citation of the source of the number")
    source: str = param("", doc="where the number was read when it was confirmed")
    confirmed: bool = param(False, doc="value checked against the source")
    interval_confirmed: bool = param(False, doc="interval checked against the source "
                                                "(false: derived, see note)")
    note: str = param("", doc="how a derived number was derived; model caveats")

    def check(self):
        if not self.id:
            raise ScenarioError("every target needs an id", "id")
        if not self.arm:
            raise ScenarioError("names the library arm that models the trial arm", "arm")
        for name in ("value", "low", "high"):
            if math.isnan(getattr(self, name)):
                raise ScenarioError("is required (the 95% interval too: derive it and say "
                                    "how in note if the source gives none)", name)
        if not self.low <= self.value <= self.high:
            raise ScenarioError(f"must lie in [low, high] = [{self.low:g}, {self.high:g}]",
                                "value")
        if self.statistic in PROPORTIONS and not 0.0 <= self.low <= self.high <= 1.0:
            raise ScenarioError("a proportion and its interval must lie in [0, 1]", "high")
        if self.statistic not in PROPORTIONS and self.low <= 0.0:
            raise ScenarioError("a time in months must be > 0", "low")
        if (self.statistic == "landmark_pfs") != (self.landmark_months is not None):
            raise ScenarioError("landmark_months goes with statistic = 'landmark_pfs' (and "
                                "only with it)", "landmark_months")
        if self.follow_up_months is not None and self.statistic not in RESPONSES:
            raise ScenarioError(f"goes with a response statistic ({', '.join(RESPONSES)}); "
                                "Kaplan-Meier statistics censor at follow-up themselves",
                                "follow_up_months")

    @property
    def what(self) -> str:
        """The statistic in words, e.g. "landmark PFS at 36 months"."""
        if self.statistic == "landmark_pfs":
            return f"PFS at {self.landmark_months:g} months"
        words = self.statistic.replace("_", " ").replace("pfs", "PFS")
        if self.follow_up_months is not None:
            words += f" by {self.follow_up_months:g} months"
        return words

    @property
    def sd(self) -> float:
        """Standard deviation of the published value implied by its 95% interval."""
        return (self.high - self.low) / (2 * stats.Z95)


@dataclass(frozen=True)
class TargetsFile:
    indication: str = param("", doc="indication, e.g. BRAF V600-mutant melanoma")
    description: str = param("", doc="what the file holds")
    target: list[Target] = param([], doc="the targets")

    def check(self):
        if not self.target:
            raise ScenarioError("holds no [[target]]", "target")
        ids = Counter(t.id for t in self.target)
        twice = [i for i, count in ids.items() if count > 1]
        if twice:
            raise ScenarioError(f"ids must be unique: {', '.join(twice)}", "target")
        fitted = Counter((t.arm, t.statistic, t.landmark_months) for t in self.target
                         if t.role == "fit")
        clash = [f"{arm} {stat}" for (arm, stat, _), count in fitted.items() if count > 1]
        if clash:
            raise ScenarioError("one fit target per arm and statistic (make the others "
                                f"'reference'): {', '.join(clash)}", "target")

    def select(self, roles=ROLES, arms=None) -> list[Target]:
        return [t for t in self.target if t.role in roles and (arms is None or t.arm in arms)]


def load(path) -> TargetsFile:
    """Read and validate a targets file; bad input raises ScenarioError naming the file."""
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError("no such file", source=str(path)) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read: {exc.__class__.__name__}", source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"invalid TOML: {exc}", source=str(path)) from None
    try:
        return build(TargetsFile, table)
    except ScenarioError as exc:
        raise exc.located(str(path)) from None


# --------------------------------------------------------------------------- simulation
@dataclass(frozen=True)
class Estimate:
    """A simulated statistic with its 95% interval over ``n`` replicates. Times are in
    months; ``inf`` is "not reached", NaN "not evaluable" (e.g. follow-up too short)."""
    value: float
    low: float
    high: float
    n: int


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def enrolled(rows: list[dict]) -> list[dict]:
    """The patients a trial would have enrolled: those with a tumour at baseline (measurable
    disease). A virtual patient whose immune system cleared the tumour before the treatment
    start (best response NE, no baseline) is not a trial patient: counting it as a
    non-responder would dilute every rate with cures that no trial sees."""
    return [r for r in rows if _number(r.get("baseline_tumor_cells", 1.0)) > 0]


def estimate(target: Target, rows: list[dict]) -> Estimate:
    """The target's statistic over one arm's endpoint rows (``Endpoints.to_dict()`` or the
    same columns read back from summary.csv), among the :func:`enrolled` patients."""
    rows = enrolled(rows)
    n = len(rows)
    month = stats.DAYS_PER_MONTH
    if target.follow_up_months is not None:
        rows = [at_cut_off(r, target.follow_up_months * month) for r in rows]
    if target.statistic in ("response_rate", "complete_response_rate"):
        if target.statistic == "response_rate":
            k = sum(stats.is_true(r["objective_response"]) for r in rows)
        else:
            k = sum(r["response_class"] == "CR" for r in rows)
        low, high = stats.wilson_interval(k, n)
        return Estimate(k / n if n else math.nan, low, high, n)
    if target.statistic in ("median_pfs", "landmark_pfs"):
        times = [_number(r["progression_free_days"]) / month for r in rows]
        events = [stats.is_true(r["progression_observed"]) for r in rows]
        if target.statistic == "median_pfs":
            return Estimate(*stats.km_median(times, events), n)
        return Estimate(*stats.km_landmark(times, events, target.landmark_months), n)
    responders = [r for r in rows if stats.is_true(r["objective_response"])]
    if target.statistic == "median_time_to_response":
        times = [_number(r["time_to_response_days"]) / month for r in responders]
        return Estimate(*stats.median_interval(times), len(responders))
    times = [_number(r["duration_of_response_days"]) / month for r in responders]
    events = [not stats.is_true(r["response_ongoing"]) for r in responders]
    return Estimate(*stats.km_median(times, events), len(responders))


def at_cut_off(row: dict, cut_off_days: float) -> dict:
    """The row as a report cut off ``cut_off_days`` after the treatment start would read its
    response: a response or complete response whose first scan comes later is not yet one
    (the later CR of a responder leaves it a PR), and a duration of response is censored at
    the cut-off. Scans count up to the cut-off inclusive (a scan at the cut-off was read)."""
    if "time_to_complete_response_days" not in row:
        raise ScenarioError("follow_up_months needs time_to_complete_response_days, which "
                            "these simulations do not record (made by an earlier version: "
                            "simulate them again into a new directory)", "follow_up_months")
    limit = cut_off_days + TIME_TOLERANCE_DAYS
    responding = (stats.is_true(row["objective_response"])
                  and _number(row["time_to_response_days"]) <= limit)
    complete = responding and _number(row["time_to_complete_response_days"]) <= limit
    # a later responder had no progression before its response: stable at the cut-off
    cls = row["response_class"]
    if not responding and cls in ("CR", "PR"):
        cls = "SD"
    out = dict(row, objective_response=responding,
               response_class="CR" if complete else "PR" if responding else cls)
    if responding:
        start = _number(row["time_to_response_days"])
        duration = _number(row["duration_of_response_days"])
        if start + duration > limit:
            out.update(duration_of_response_days=cut_off_days - start, response_ongoing=True)
    return out
