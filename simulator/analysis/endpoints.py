"""Clinical-style endpoints of one run, computed from its recorded time series.

Pure numpy; no Numba, no files, no pandas. ``assess`` takes the series the recorder writes
under ``/timeseries`` and returns a frozen :class:`Endpoints`; ``endpoint_table`` turns many
of them into columns (a dict of numpy arrays) that the study layer writes as CSV.

Definitions (RECIST 1.1, Eisenhauer et al. 2009 Eur J Cancer 45:228, applied to one lesion)
------------------------------------------------------------------------------------------
Measure. The modelled lesion is one target lesion; its "sum of diameters" is its equivalent
diameter: the diameter of the disc (2D) or ball (3D) holding its M cells, sites of edge
a = ``mm_per_site``: 2D ``D = 2 a sqrt(M / pi)``; 3D ``D = 2 a (3 M / (4 pi)) ** (1/3)``.
By default M = N, the live tumour cells. A scan sees the whole lesion, though (RECIST 1.1
does not subtract necrosis), and a lesion that shrinks under treatment leaves a regression
bed of necrosis, fibrosis and infiltrate that is remodelled over months (Stein 2019 Ann
Oncol 30:589: half of anti-PD-1 "stable" lesions held immune-related pathologic regression).
With ``residual_half_life_days`` h > 0 the measure follows N up at once but falls no faster
than the bed clears: from M = N at the baseline record, M_i = max(N_i, M_(i-1)
exp(-lambda dt_i)), lambda = ln 2 / h, exact for any record spacing
(:mod:`simulator.treatment.lesion`; the regimen's rules apply the same recursion step by
step, so their scans and these agree). The bed is the decaying memory of the lesion's
extent: the ups and downs of a small lesion's cell count do not accumulate in it, and
regrowth fills it before adding to the measure. M < 1/2 is a lesion gone: CR. h = 0 is
M = N exactly. ``detection_limit_fraction`` f > 0 gives the scans a detection limit: a
lesion whose equivalent diameter is below f D0 (M < f^d M0 in d dimensions) is gone too
(CR), and a later scan that sees it again calls PD (its nadir was 0). Relative to the
baseline, because the lattice lesion is a miniature: the half-cell rule alone makes a
cured lesion's bed vanish after log2(2 M0) half-lives, longer for a lesion of more cells;
with f it vanishes after log2(1 / f^d) half-lives, whatever the lesion's cell count.
Every response figure (per-scan class, best overall response, best response percent) uses
this one measure. Hence PR (D/D0 <= 0.70) is M/M0 <= 0.49 in 2D and <= 0.343 in 3D; PD
(D/D_nadir >= 1.20) is M/M_nadir >= 1.44 in 2D and >= 1.728 in 3D. Boundaries are
inclusive; comparisons allow a relative rounding slack of ``BOUNDARY_RELATIVE_TOLERANCE``
so that exact boundaries (M = 0.49 M0) classify as RECIST intends despite sqrt/cbrt rounding.

Scale. A simulated cell may stand for ``real_cells_per_site`` real cells (default 1); the
site then covers that many real cells' area (2D) or volume (3D), so its real edge is
``mm_per_site = spacing_um / 1000 * real_cells_per_site ** (1 / dimensions)``. The scale only
matters for the absolute progression rule (``progression_min_mm``); every relative rule is
scale-free. At the default scale a 200 x 200 lattice of 20 um cells is at most ~4.5 mm
across, so the 5 mm rule can never be met: either state a scale or lower
``progression_min_mm``. ``Endpoints.progression_scans_blocked_by_min_mm`` counts the scans
where only the absolute rule stopped a PD call, so the problem is visible.

Baseline: the last record at or before the treatment start.
Scans: at ``treatment_start_day + first_scan_days + k * scan_interval_days`` for k = 0, 1,
... (``first_scan_days`` 0: one interval, i.e. start + k * interval for k >= 1; trials
often scan first later, CheckMate 067 at week 12 then every 6 weeks) while a record exists
at or after the scan time; each scan reads the last record at or before its time (a dip
between scans is not seen, as in a trial). Slack ``TIME_TOLERANCE_DAYS`` absorbs
floating-point step times.

Time-point response of each scan, checked in this order:
- CR: no tumour cells at the scan (the lesion has disappeared).
- PD: D >= (1 + progression_rise) * D_nadir and D - D_nadir >= progression_min_mm, where
  D_nadir is the smallest diameter at baseline and at all earlier scans. PD wins over PR: a
  tumour still 40% below baseline but 20% above its nadir has progressed.
- PR: D <= (1 - partial_response_drop) * D0.
- SD otherwise.

Best overall response (``response_class``), from the scans before the first PD:
- A PR or CR at scan k is *confirmed* when every scan from k up to a later scan j is PR or
  CR and scan j is at least ``confirmation_min_days`` after scan k (RECIST 1.1: repeat
  assessment no less than 4 weeks later; with scans >= 4 weeks apart this is the next
  scan). The confirmed class is CR only if all those scans are CR, else PR (PR then CR is
  PR, as in RECIST 1.1 Table 3). The response must be confirmed before the first PD.
  With ``confirm_responses = false`` a single PR/CR scan counts.
- The best overall response is the best confirmed response (CR > PR); else SD if some scan
  before the first PD (unconfirmed PR/CR included) is at least ``stable_disease_min_days``
  after the treatment start (RECIST 1.1: "in general not less than 6-8 weeks"); else PD if
  a PD scan exists; else ``"NE"`` (not evaluable: follow-up too short). A tumour that grows
  into PD before the minimum SD time is PD, never SD. Zero baseline burden: NE, and every
  scan is NE.

Best response percent (``best_response``): the smallest D / D0 - 1 over the assessment
window, i.e. the scans up to and including the first PD (the waterfall plot's "best change
from baseline in the sum of diameters"); the same window gives the nadir.
``best_tumor_cells_change`` is the smallest N / N0 - 1 over the same scans (with a residual,
the live cells can fall further than the measure); ``nadir_tumor_cells`` is N at the
measure's nadir; ``first_scan_change`` is D / D0 - 1
at the first scan (early tumour shrinkage).

Time to response: the first scan of the first confirmed response (RECIST: first documented
PR/CR), from treatment start; time to complete response: the first scan of a response
confirmed as CR (a PR that deepens to CR counts from the CR), so that a rate at a report's
cut-off can be read off the endpoints (:mod:`simulator.analysis.targets`). Duration of
response: from that scan to the first PD scan, or to the last scan if there is none (then
``response_ongoing`` is True and the duration is censored). Durable response: a confirmed
objective response whose duration (censored or not) is at least ``durable_min_days``
(default 180 days, the "objective response lasting continuously >= 6 months" of Andtbacka
et al. 2015 JCO 33:2780).
Progression-free survival: the model has no deaths, so PFS is time to the first PD scan
(``time_to_progression_days``); Kaplan-Meier inputs ``progression_observed`` (event) and
``progression_free_days`` (TTP if observed, else the follow-up to the last scan: censored).
Arm-level medians and landmark PFS are in :mod:`simulator.analysis.statistics`.
Resistance: resistant share = tumor_resistant / tumor_cells (undefined where there are no
tumour cells). Time to resistance: first record from baseline on whose share is >= the
threshold, measured from treatment start (0 if already so at baseline).
Immune readouts: trapezoidal time averages over the records from baseline to the end (the
baseline record placed at the treatment start); ratios are ratios of those averages (robust
when a count touches zero at one record). Infiltration uses the recorded densities
``t_cell_density_core`` / ``t_cell_density_margin`` (per mm^2 or mm^3); records where a
density is undefined (NaN: no tumour, or no core yet) are left out of both averages.
x / 0 is inf for x > 0 and NaN for 0 / 0.

NaN meanings: a NaN float endpoint means "undefined for this run" (no scan, no response, no
progression, no resistant takeover, no immune series given, or zero baseline burden), never a
missing computation.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields, replace
from typing import Mapping, Sequence

import numpy as np

from simulator.treatment.lesion import (equivalent_diameter_mm, measured_cells, seen,
                                        visible_fraction)

__all__ = [
    "BOUNDARY_RELATIVE_TOLERANCE",
    "RESPONSE_CLASSES",
    "TIME_TOLERANCE_DAYS",
    "Endpoints",
    "OverallResponse",
    "ResponseCriteria",
    "assess",
    "assess_timeseries",
    "best_overall_response",
    "classify_scans",
    "endpoint_table",
    "equivalent_diameter_mm",
]

#: Per-scan and best-overall classes; "NE" = not evaluable.
RESPONSE_CLASSES = ("CR", "PR", "SD", "PD", "NE")
_RANK = {"CR": 0, "PR": 1, "SD": 2}

#: Records within this many days of a scan/treatment time count as "at" it.
TIME_TOLERANCE_DAYS = 1e-6
#: Relative slack on inclusive RECIST boundaries (absorbs sqrt/cbrt rounding only).
BOUNDARY_RELATIVE_TOLERANCE = 1e-9


def _at_least(value: float, bound: float) -> bool:
    return value >= bound - BOUNDARY_RELATIVE_TOLERANCE * max(abs(bound), abs(value))


def _at_most(value: float, bound: float) -> bool:
    return value <= bound + BOUNDARY_RELATIVE_TOLERANCE * max(abs(bound), abs(value))


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator with x/0 = inf (x > 0) and 0/0 = NaN, without warnings."""
    if denominator == 0.0:
        return math.inf if numerator > 0.0 else math.nan
    return float(numerator) / float(denominator)


# --------------------------------------------------------------------------------------
# Criteria
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResponseCriteria:
    """How a run is assessed; the optional keys come from the scenario's ``[endpoints]`` table.

    ``dimensions`` and ``spacing_um`` come from the simulation itself (``simulation.dimensions``
    length, lattice spacing). ``real_cells_per_site`` states how many real cells one simulated
    cell stands for (sets ``mm_per_site``, needed only by the absolute PD rule).
    Defaults: RECIST 1.1 thresholds, scans every 8 weeks (56 days), PR/CR confirmed >= 4
    weeks later, SD only from 8 weeks on, durable = response lasting >= 180 days,
    resistance when the resistant share reaches one half.
    """

    dimensions: int
    spacing_um: float
    real_cells_per_site: float = 1.0
    scan_interval_days: float = 56.0
    first_scan_days: float = 0.0
    residual_half_life_days: float = 0.0
    detection_limit_fraction: float = 0.0
    partial_response_drop: float = 0.30
    progression_rise: float = 0.20
    progression_min_mm: float = 5.0
    durable_min_days: float = 180.0
    resistance_share_threshold: float = 0.5
    stable_disease_min_days: float = 56.0
    confirmation_min_days: float = 28.0
    confirm_responses: bool = True

    #: Keys an ``[endpoints]`` table may set (the rest come from the simulation).
    TABLE_KEYS = (
        "real_cells_per_site",
        "scan_interval_days",
        "first_scan_days",
        "residual_half_life_days",
        "detection_limit_fraction",
        "partial_response_drop",
        "progression_rise",
        "progression_min_mm",
        "durable_min_days",
        "resistance_share_threshold",
        "stable_disease_min_days",
        "confirmation_min_days",
        "confirm_responses",
    )

    def __post_init__(self) -> None:
        if isinstance(self.dimensions, bool) or self.dimensions not in (2, 3):
            raise ValueError(f"endpoints: dimensions must be 2 or 3, got {self.dimensions!r}")
        checks = (
            ("spacing_um", self.spacing_um, lambda v: v > 0, "> 0"),
            ("real_cells_per_site", self.real_cells_per_site, lambda v: v > 0, "> 0"),
            ("scan_interval_days", self.scan_interval_days, lambda v: v > 0, "> 0"),
            ("first_scan_days", self.first_scan_days, lambda v: v >= 0, ">= 0"),
            ("residual_half_life_days", self.residual_half_life_days, lambda v: v >= 0,
             ">= 0"),
            ("partial_response_drop", self.partial_response_drop, lambda v: 0 < v < 1,
             "in (0, 1)"),
            ("detection_limit_fraction", self.detection_limit_fraction,
             lambda v: 0 <= v < 1 - self.partial_response_drop,
             "in [0, 1 - partial_response_drop): a lesion seen shrinking to PR must still be "
             "visible"),
            ("progression_rise", self.progression_rise, lambda v: v > 0, "> 0"),
            ("progression_min_mm", self.progression_min_mm, lambda v: v >= 0, ">= 0"),
            ("durable_min_days", self.durable_min_days, lambda v: v >= 0, ">= 0"),
            ("resistance_share_threshold", self.resistance_share_threshold,
             lambda v: 0 < v <= 1, "in (0, 1]"),
            ("stable_disease_min_days", self.stable_disease_min_days, lambda v: v >= 0, ">= 0"),
            ("confirmation_min_days", self.confirmation_min_days, lambda v: v >= 0, ">= 0"),
        )
        if not isinstance(self.confirm_responses, (bool, np.bool_)):
            raise ValueError(f"endpoints.confirm_responses must be true or false, got "
                             f"{self.confirm_responses!r}")
        for name, value, ok, rule in checks:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise ValueError(f"endpoints.{name} must be a number, got {value!r}")
            if not math.isfinite(value) or not ok(value):
                raise ValueError(f"endpoints.{name} must be {rule}, got {value!r}")

    @property
    def first_scan(self) -> float:
        """Days from a line's start to its first scan (``first_scan_days``, or one interval
        when that is 0)."""
        return self.first_scan_days if self.first_scan_days > 0 else self.scan_interval_days

    def scan_on_or_after(self, start: float, day: float) -> float:
        """The first scan day of a line started on ``start`` at or after ``day`` (the same
        arithmetic as :meth:`scan_days`)."""
        interval, first = self.scan_interval_days, self.first_scan_days
        if first > 0:
            k = max(0, math.ceil((day - TIME_TOLERANCE_DAYS - start - first) / interval))
            return start + (first + interval * k)
        return start + interval * max(1, math.ceil((day - TIME_TOLERANCE_DAYS - start)
                                                   / interval))

    def scan_days(self, start: float, last_day: float) -> np.ndarray:
        """The scan days of a line started on ``start``, up to ``last_day``."""
        interval, first = self.scan_interval_days, self.first_scan_days
        if first > 0:
            count = max(0, int(math.floor((last_day - start - first + TIME_TOLERANCE_DAYS)
                                          / interval)) + 1)
            return start + (first + interval * np.arange(count))
        count = max(0, int(math.floor((last_day - start + TIME_TOLERANCE_DAYS) / interval)))
        return start + interval * np.arange(1, count + 1)

    @property
    def mm_per_site(self) -> float:
        """Real edge length of one lattice site in mm (see the module docstring)."""
        return self.spacing_um * 1e-3 * self.real_cells_per_site ** (1.0 / self.dimensions)

    @property
    def visible_cell_fraction(self) -> float:
        """The detection limit as a share of the baseline measure: f^d (f =
        ``detection_limit_fraction`` of the baseline diameter, d dimensions)."""
        return visible_fraction(self.detection_limit_fraction, self.dimensions)

    @property
    def partial_response_cell_ratio(self) -> float:
        """N/N0 at the PR boundary: 0.49 (2D) or 0.343 (3D) for a 30% drop."""
        return (1.0 - self.partial_response_drop) ** self.dimensions

    @property
    def progression_cell_ratio(self) -> float:
        """N/N_nadir at the relative PD boundary: 1.44 (2D) or 1.728 (3D) for a 20% rise."""
        return (1.0 + self.progression_rise) ** self.dimensions

    @classmethod
    def from_table(cls, table: Mapping[str, object] | None, *, dimensions: int,
                   spacing_um: float) -> "ResponseCriteria":
        """Build from a scenario's ``[endpoints]`` table; unknown keys raise ValueError with a
        suggestion (the scenario layer adds the file name)."""
        table = dict(table or {})
        for key in table:
            if key not in cls.TABLE_KEYS:
                close = difflib.get_close_matches(key, cls.TABLE_KEYS, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else (
                    f"; valid keys: {', '.join(cls.TABLE_KEYS)}")
                raise ValueError(f"endpoints.{key}: unknown key{hint}")
        return cls(dimensions=dimensions, spacing_um=spacing_um, **table)


# --------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------
def classify_scans(baseline_diameter_mm: float, scan_diameter_mm: Sequence[float],
                   criteria: ResponseCriteria) -> tuple[tuple[str, ...], int]:
    """Per-scan RECIST-like classes and the number of scans where only the absolute
    ``progression_min_mm`` rule prevented a PD call. A zero diameter is CR."""
    d0 = float(baseline_diameter_mm)
    if d0 == 0.0:
        return ("NE",) * len(scan_diameter_mm), 0
    pr_bound = (1.0 - criteria.partial_response_drop) * d0
    nadir = d0
    classes: list[str] = []
    blocked = 0
    for d in map(float, scan_diameter_mm):
        if d == 0.0:
            cls = "CR"
        elif _at_least(d, (1.0 + criteria.progression_rise) * nadir):
            if _at_least(d - nadir, criteria.progression_min_mm):
                cls = "PD"
            else:
                blocked += 1
                cls = "PR" if _at_most(d, pr_bound) else "SD"
        elif _at_most(d, pr_bound):
            cls = "PR"
        else:
            cls = "SD"
        classes.append(cls)
        nadir = min(nadir, d)
    return tuple(classes), blocked


@dataclass(frozen=True)
class OverallResponse:
    """Best overall response of one run and where its confirmed response starts."""
    response_class: str          # CR / PR / SD / PD / NE
    first_response_scan: int | None   # index of the first scan of the first confirmed response
    first_progression_scan: int | None
    first_complete_response_scan: int | None = None  # first scan of a response confirmed CR


def _confirmed_response(classes: Sequence[str], days: Sequence[float], k: int,
                        criteria: ResponseCriteria) -> str | None:
    """The class a PR/CR at scan ``k`` is confirmed as (CR only if CR throughout), or None:
    every scan from k to the first one >= confirmation_min_days later must be PR or CR."""
    if not criteria.confirm_responses:
        return classes[k]
    seen = set()
    for j in range(k, len(classes)):
        if classes[j] not in ("CR", "PR"):
            return None
        seen.add(classes[j])
        if j > k and days[j] - days[k] >= criteria.confirmation_min_days - TIME_TOLERANCE_DAYS:
            return "CR" if seen == {"CR"} else "PR"
    return None


def best_overall_response(scan_classes: Sequence[str], scan_days_from_start: Sequence[float],
                          criteria: ResponseCriteria) -> OverallResponse:
    """RECIST 1.1 best overall response with confirmation and a minimum time for SD (see
    the module docstring). ``scan_days_from_start``: each scan's time from treatment start."""
    classes, days = list(scan_classes), [float(d) for d in scan_days_from_start]
    if len(classes) != len(days):
        raise ValueError("best_overall_response: one time per scan class")
    if any(c == "NE" for c in classes):
        return OverallResponse("NE", None, None)
    first_pd = classes.index("PD") if "PD" in classes else None
    window = classes[:first_pd] if first_pd is not None else classes
    best, first_response, first_complete = None, None, None
    for k, cls in enumerate(window):
        if cls not in ("CR", "PR"):
            continue
        confirmed = _confirmed_response(window, days, k, criteria)
        if confirmed is None:
            continue
        if first_response is None:
            first_response = k
        if confirmed == "CR" and first_complete is None:
            first_complete = k
        if best is None or _RANK[confirmed] < _RANK[best]:
            best = confirmed
    if best is not None:
        return OverallResponse(best, first_response, first_pd, first_complete)
    sd_from = criteria.stable_disease_min_days - TIME_TOLERANCE_DAYS
    if any(days[k] >= sd_from for k in range(len(window))):
        return OverallResponse("SD", None, first_pd)
    return OverallResponse("PD" if first_pd is not None else "NE", None, first_pd)


# --------------------------------------------------------------------------------------
# Endpoints
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoints:
    """Endpoints of one run. Times named ``*_day`` are on the simulation clock; durations named
    ``*_days`` are measured from treatment start. NaN = undefined (see module docstring)."""

    treatment_start_day: float
    baseline_day: float                 # time of the baseline record
    baseline_tumor_cells: float
    baseline_diameter_mm: float
    final_tumor_cells: float
    n_scans: int
    nadir_tumor_cells: float            # live cells at the scan of the smallest measure
    nadir_day: float                    # first scan of that nadir; NaN if no scan
    best_response: float                # best D / D0 - 1 (sum of diameters); NaN if no scan
    best_tumor_cells_change: float      # smallest N / N0 - 1 at those scans (live cells)
    first_scan_change: float            # D / D0 - 1 at the first scan (early shrinkage)
    response_class: str                 # best overall response: CR / PR / SD / PD / NE
    objective_response: bool            # response_class in (CR, PR): a confirmed response
    time_to_response_days: float        # NaN if no (confirmed) response
    time_to_complete_response_days: float  # first scan of a response confirmed CR; NaN if none
    duration_of_response_days: float    # NaN if no response; censored if response_ongoing
    response_ongoing: bool
    durable_response: bool
    progression_observed: bool          # Kaplan-Meier event flag
    time_to_progression_days: float     # NaN if no PD by the last scan
    follow_up_days: float               # treatment start -> last scan; NaN if no scan
    progression_free_days: float        # KM duration: TTP if observed else follow-up
    progression_scans_blocked_by_min_mm: int
    resistant_fraction_baseline: float  # NaN if no tumour at baseline
    resistant_fraction_at_progression: float  # at the first PD scan; NaN if no PD
    resistant_fraction_final: float     # NaN if no tumour at the end
    time_to_resistance_days: float      # NaN if the share never reaches the threshold
    infiltration_core_to_margin: float  # mean core / mean margin T-cell density; NaN if none
    cd8_to_suppressive_final: float     # NaN if not given
    cd8_to_suppressive_mean: float      # mean T / mean suppressive over treatment
    edge_contact_day: float = math.nan  # first record with tumour on the lattice's faces
    box_limited: bool = False           # that contact came before the end of the run: later
    #                                     burden, progression and resistant share feel the box
    scan_days: tuple[float, ...] = ()
    scan_tumor_cells: tuple[float, ...] = ()
    scan_diameter_mm: tuple[float, ...] = ()
    scan_response_classes: tuple[str, ...] = ()

    def to_dict(self, scans: bool = False) -> dict[str, object]:
        """Scalar endpoints as plain Python values (CSV / HDF5-attribute friendly); with
        ``scans=True`` also the per-scan sequences as lists."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SCAN_FIELDS:
                if scans:
                    out[f.name] = list(value)
            else:
                out[f.name] = value
        return out


SCAN_FIELDS = ("scan_days", "scan_tumor_cells", "scan_diameter_mm", "scan_response_classes")
_COLUMN_DTYPES = {"float": np.float64, "int": np.int64, "bool": np.bool_, "str": np.str_}


def _as_series(name: str, values, length: int | None, allow_nan: bool = False) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"endpoints: {name} must be one-dimensional, got shape {a.shape}")
    if length is not None and a.shape[0] != length:
        raise ValueError(f"endpoints: {name} has {a.shape[0]} records but time_days has "
                         f"{length}; every series must share the time axis")
    bad = np.isinf(a) if allow_nan else ~np.isfinite(a)
    if np.any(bad):
        raise ValueError(f"endpoints: {name} contains {'inf' if allow_nan else 'NaN or inf'}")
    return a


def _time_average(values: np.ndarray, times: np.ndarray) -> float:
    if times.shape[0] == 1 or times[-1] <= times[0]:
        return float(values[-1])
    # trapezoid written out: np.trapz / np.trapezoid differ across numpy versions
    widths = np.diff(times)
    return float(np.sum(widths * 0.5 * (values[1:] + values[:-1])) / (times[-1] - times[0]))


def _scan_schedule(t: np.ndarray, start: float, criteria: ResponseCriteria):
    """Scan times and, for each, the index of the last record at or before it."""
    scan_days = criteria.scan_days(start, t[-1])
    return scan_days, np.searchsorted(t, scan_days + TIME_TOLERANCE_DAYS, side="right") - 1


def _followed(t: np.ndarray, n: np.ndarray, r: np.ndarray, followed_to_day, start: float,
              criteria: ResponseCriteria):
    """The records the scans read: those of the run, plus, when the run ended early on an
    eradicated tumour (zero is absorbing), records with no cell at every later scan day and
    at ``followed_to_day``, so that a clearing bed decays on to each scan."""
    if (followed_to_day is None or n[-1] > 0
            or not float(followed_to_day) > t[-1] + TIME_TOLERANCE_DAYS):
        return t, n, r
    later = criteria.scan_days(start, float(followed_to_day))
    later = later[later > t[-1] + TIME_TOLERANCE_DAYS]
    if not later.size or later[-1] < float(followed_to_day) - TIME_TOLERANCE_DAYS:
        later = np.append(later, float(followed_to_day))
    zeros = np.zeros(later.size)
    return np.append(t, later), np.append(n, zeros), np.append(r, zeros)


def assess(time_days, tumor_cells, tumor_resistant, treatment_start_day: float,
           criteria: ResponseCriteria, *, t_cell_density_core=None, t_cell_density_margin=None,
           t_cells=None, suppressive_cells=None, followed_to_day: float | None = None,
           residual_from_day: float | None = None) -> Endpoints:
    """Endpoints of one run from its time series (all on the ``time_days`` axis).

    ``tumor_cells`` counts live tumour cells (sensitive + resistant), ``tumor_resistant`` the
    resistant ones. Immune series are optional; the two T-cell densities go together and may
    hold NaN where undefined. Raises ValueError on mismatched lengths, non-increasing time,
    negative or non-finite counts, resistant > total, or a treatment start before the first
    record.

    ``residual_from_day``: where the measure's recursion starts from M = N (default: the
    baseline record; the regimen's rules start it at the first line's start too).

    ``followed_to_day`` (the run's horizon): a series that ends before it with no live
    tumour cell left (``endpoints.end_at_eradication``) is scanned on to that day at zero
    cells. A tumour with no cell cannot come back, so every later scan would read zero:
    the response, its duration and the progression-free time are those of the whole run.
    """
    if not isinstance(criteria, ResponseCriteria):
        raise TypeError(f"endpoints: criteria must be a ResponseCriteria, got "
                        f"{type(criteria).__name__}")
    t = _as_series("time_days", time_days, None)
    n_records = t.shape[0]
    if n_records == 0:
        raise ValueError("endpoints: time_days is empty; nothing to assess")
    if np.any(np.diff(t) <= 0):
        i = int(np.argmax(np.diff(t) <= 0))
        raise ValueError(f"endpoints: time_days must be strictly increasing (record {i + 1} "
                         f"at {t[i + 1]} follows {t[i]})")
    n = _as_series("tumor_cells", tumor_cells, n_records)
    r = _as_series("tumor_resistant", tumor_resistant, n_records)
    if np.any(n < 0) or np.any(r < 0):
        raise ValueError("endpoints: tumor_cells and tumor_resistant must be >= 0")
    if np.any(r > n):
        i = int(np.argmax(r > n))
        raise ValueError(f"endpoints: tumor_resistant ({r[i]}) exceeds tumor_cells ({n[i]}) "
                         f"at record {i} (day {t[i]})")
    start = float(treatment_start_day)
    if not math.isfinite(start):
        raise ValueError(f"endpoints: treatment_start_day must be finite, got {start!r}")
    if start < t[0] - TIME_TOLERANCE_DAYS:
        raise ValueError(f"endpoints: treatment_start_day {start} is before the first record "
                         f"(day {t[0]}); no baseline")
    if (t_cell_density_core is None) != (t_cell_density_margin is None):
        raise ValueError("endpoints: t_cell_density_core and t_cell_density_margin must be "
                         "given together")

    # baseline, scans and the best overall response ------------------------------------
    base_i = int(np.searchsorted(t, start + TIME_TOLERANCE_DAYS, side="right") - 1)
    scan_t, scan_counts, scan_resistant = _followed(t, n, r, followed_to_day, start, criteria)
    bed_from = max(0, base_i if residual_from_day is None else int(np.searchsorted(
        t, float(residual_from_day) + TIME_TOLERANCE_DAYS, side="right") - 1))
    measured = seen(scan_counts)
    measured[bed_from:] = measured_cells(scan_t[bed_from:], scan_counts[bed_from:],
                                         criteria.residual_half_life_days,
                                         criteria.visible_cell_fraction)
    scan_days, scan_i = _scan_schedule(scan_t, start, criteria)
    diam = equivalent_diameter_mm(measured, criteria.dimensions, criteria.mm_per_site)
    n0, d0 = float(n[base_i]), float(diam[base_i])
    scan_n, scan_m, scan_d = scan_counts[scan_i], measured[scan_i], diam[scan_i]
    classes, blocked = classify_scans(d0, scan_d, criteria)
    overall = best_overall_response(classes, scan_days - start, criteria)
    first_pd, first_resp = overall.first_progression_scan, overall.first_response_scan

    # nadir and best response over the assessment window (scans up to the first PD) -------
    nadir_n = nadir_day = best_resp = best_cells = math.nan
    if len(classes) > 0:
        window = len(classes) if first_pd is None else first_pd + 1
        k = int(np.argmin(scan_m[:window]))
        nadir_n, nadir_day = float(scan_n[k]), float(scan_days[k])
        if n0 > 0:
            best_resp = float(scan_d[k]) / d0 - 1.0
            best_cells = float(np.min(scan_n[:window])) / n0 - 1.0

    # response and progression -----------------------------------------------------------
    follow_up = float(scan_days[-1] - start) if len(classes) else math.nan
    ttr = ttcr = dor = math.nan
    ongoing = durable = False
    if overall.first_complete_response_scan is not None:
        ttcr = float(scan_days[overall.first_complete_response_scan] - start)
    if first_resp is not None:
        ttr = float(scan_days[first_resp] - start)
        end_day = scan_days[first_pd] if first_pd is not None else scan_days[-1]
        dor = float(end_day - scan_days[first_resp])
        ongoing = first_pd is None
        durable = _at_least(dor, criteria.durable_min_days)
    ttp = res_at_pd = math.nan
    if first_pd is not None:
        ttp = float(scan_days[first_pd] - start)
        res_at_pd = _ratio(scan_resistant[scan_i[first_pd]], scan_counts[scan_i[first_pd]])

    # resistance -------------------------------------------------------------------------
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n > 0, r / np.where(n > 0, n, 1.0), np.nan)
    reached = np.nonzero(share[base_i:] >= criteria.resistance_share_threshold)[0]
    ttres = math.nan
    if reached.size:
        ttres = max(float(t[base_i + reached[0]] - start), 0.0)

    # immune readouts --------------------------------------------------------------------
    window_t = t[base_i:].copy()
    window_t[0] = max(window_t[0], start)  # the baseline record stands for the start

    def treatment_series(name, series, allow_nan=False):
        a = _as_series(name, series, n_records, allow_nan)
        if np.any(a < 0):
            raise ValueError(f"endpoints: {name} must be >= 0")
        return a[base_i:]

    infiltration = cd8_final = cd8_mean = math.nan
    if t_cell_density_core is not None:
        core = treatment_series("t_cell_density_core", t_cell_density_core, True)
        margin = treatment_series("t_cell_density_margin", t_cell_density_margin, True)
        defined = np.isfinite(core) & np.isfinite(margin)
        if defined.any():
            infiltration = _ratio(_time_average(core[defined], window_t[defined]),
                                  _time_average(margin[defined], window_t[defined]))
    if t_cells is not None and suppressive_cells is not None:
        t_series = treatment_series("t_cells", t_cells)
        s_series = treatment_series("suppressive_cells", suppressive_cells)
        cd8_final = _ratio(t_series[-1], s_series[-1])
        cd8_mean = _ratio(_time_average(t_series, window_t), _time_average(s_series, window_t))
    elif (t_cells is None) != (suppressive_cells is None):
        raise ValueError("endpoints: t_cells and suppressive_cells must be given together")

    progressed = first_pd is not None
    return Endpoints(
        treatment_start_day=start,
        baseline_day=float(t[base_i]),
        baseline_tumor_cells=n0,
        baseline_diameter_mm=d0,
        final_tumor_cells=float(n[-1]),
        n_scans=len(classes),
        nadir_tumor_cells=nadir_n,
        nadir_day=nadir_day,
        best_response=best_resp,
        best_tumor_cells_change=best_cells,
        first_scan_change=float(scan_d[0]) / d0 - 1.0 if len(classes) and d0 > 0 else math.nan,
        response_class=overall.response_class,
        objective_response=overall.response_class in ("CR", "PR"),
        time_to_response_days=ttr,
        time_to_complete_response_days=ttcr,
        duration_of_response_days=dor,
        response_ongoing=ongoing,
        durable_response=durable,
        progression_observed=progressed,
        time_to_progression_days=ttp,
        follow_up_days=follow_up,
        progression_free_days=ttp if progressed else follow_up,
        progression_scans_blocked_by_min_mm=blocked,
        resistant_fraction_baseline=_ratio(r[base_i], n0) if n0 > 0 else math.nan,
        resistant_fraction_at_progression=res_at_pd,
        resistant_fraction_final=_ratio(r[-1], n[-1]) if n[-1] > 0 else math.nan,
        time_to_resistance_days=ttres,
        infiltration_core_to_margin=infiltration,
        cd8_to_suppressive_final=cd8_final,
        cd8_to_suppressive_mean=cd8_mean,
        scan_days=tuple(float(x) for x in scan_days),
        scan_tumor_cells=tuple(float(x) for x in scan_n),
        scan_diameter_mm=tuple(float(x) for x in scan_d),
        scan_response_classes=classes,
    )


#: ``/timeseries`` names read by ``assess_timeseries`` beyond the three required ones, in
#: pairs that go together.
_OPTIONAL_PAIRS = (("t_cell_density_core", "t_cell_density_margin"),
                   ("t_cells", "suppressive_cells"))


def assess_timeseries(series: Mapping[str, object], treatment_start_day: float,
                      criteria: ResponseCriteria, followed_to_day: float | None = None
                      ) -> Endpoints:
    """``assess`` on a mapping named as the HDF5 ``/timeseries`` group (``time_days``,
    ``tumor_cells``, ``tumor_resistant``; immune series used when both of a pair are
    present); ``followed_to_day`` as for ``assess``."""
    missing = [k for k in ("time_days", "tumor_cells", "tumor_resistant") if k not in series]
    if missing:
        raise ValueError(f"endpoints: timeseries lacks {', '.join(missing)}")
    extra = {k: np.asarray(series[k]) for pair in _OPTIONAL_PAIRS
             if all(name in series for name in pair) for k in pair}
    result = assess(np.asarray(series["time_days"]), np.asarray(series["tumor_cells"]),
                    np.asarray(series["tumor_resistant"]), treatment_start_day, criteria,
                    followed_to_day=followed_to_day, **extra)
    if "tumor_cells_on_edge" in series:
        day = edge_contact_day(series["time_days"], series["tumor_cells_on_edge"])
        result = replace(result, edge_contact_day=day,
                         box_limited=bool(day < float(np.asarray(series["time_days"])[-1])))
    return result


def edge_contact_day(time_days, tumor_cells_on_edge) -> float:
    """Day of the first record with tumour cells on the lattice's faces (NaN if none)."""
    touching = np.flatnonzero(np.asarray(tumor_cells_on_edge) > 0)
    return float(np.asarray(time_days)[touching[0]]) if touching.size else math.nan


def endpoint_table(endpoints: Sequence[Endpoints],
                   extra_columns: Mapping[str, Sequence] | None = None) -> dict[str, np.ndarray]:
    """Column table of the scalar endpoints: ``{name: 1-D numpy array}``, one row per run, in
    field order, preceded by ``extra_columns`` (e.g. arm, replicate). Write it with
    ``csv.writer`` or ``pandas.DataFrame(table)``; per-scan sequences are left out (use
    ``Endpoints.to_dict(scans=True)``)."""
    rows = list(endpoints)
    for e in rows:
        if not isinstance(e, Endpoints):
            raise TypeError(f"endpoint_table: expected Endpoints, got {type(e).__name__}")
    table: dict[str, np.ndarray] = {}
    for name, values in (extra_columns or {}).items():
        column = np.asarray(values)
        if column.ndim != 1 or column.shape[0] != len(rows):
            raise ValueError(f"endpoint_table: extra column {name!r} has {column.shape} "
                             f"values for {len(rows)} runs")
        table[name] = column
    for f in fields(Endpoints):
        if f.name in SCAN_FIELDS:
            continue
        if f.name in table:
            raise ValueError(f"endpoint_table: extra column {f.name!r} shadows an endpoint")
        dtype = _COLUMN_DTYPES[str(f.type)]
        table[f.name] = np.array([getattr(e, f.name) for e in rows], dtype=dtype)
    return table
