"""Publication figures of a run file or a study directory (matplotlib, Agg, PNG and SVG).

Entry points::

    plot(target, out_dir=None, formats=("png", "svg"))    a study directory or a run file
    study_figures(directory, formats=...)                 DIR/figures/*.png|svg
    run_figures(path, out_dir=None, formats=...)          beside OUT.h5 (or in out_dir)

Every figure function draws into ``ax`` (a new figure when None) and returns the figure;
functions that draw one panel per arm take ``ax`` as a sequence of Axes, one per arm. Figures
are built on :class:`matplotlib.figure.Figure` directly (no pyplot, so no global figure state
and no interactive backend). Time axes mark the treatment start (dashed line) and dose days
(one row of markers per arm and drug along the top of the axes; for a study, a marker's
opacity is the share of replicates dosed that day, since adaptive regimens dose replicates
differently).

What is read: a study is drawn from ``study.h5`` (series stacked arm x replicate x time and
the endpoint columns) and ``summary.csv`` (the run file of each row); the per-run files are
opened only for the dose tables and for the lattice snapshots. Optional content of a run
file is drawn when present and skipped when absent: ``/timeseries/drug/<name>``,
``/doses/table``, ``t_cells_core`` / ``t_cells_margin``, ``/snapshots/clone`` (resistant
tumour cells get their own colour), ``/snapshots/fields/<name>``.

Response conventions follow :mod:`simulator.endpoints`: the waterfall and spider plots show
the change of the equivalent diameter from baseline (RECIST's measure; D/D0 = (N/N0)^(1/d)
on a d-dimensional lattice), with the partial-response (-30%) and progression (+20%) lines.
The time axis of the spider, swimmer and Kaplan-Meier plots is days since treatment start.
"""
from __future__ import annotations

import csv
import functools
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from kernels.lattice import KIND_NAMES
from simulator.io import OutputError, open_run

__all__ = [
    "KIND_COLOURS", "RESPONSE_COLOURS", "StudyData", "RunData",
    "plot", "study_figures", "run_figures",
    "load_study", "load_run", "read_doses", "read_snapshot", "lattice_rgb", "logrank_pvalues",
    "default_snapshot_days", "STUDY_FIGURES",
    "mark_doses", "mark_treatment_start",
    "plot_burden", "plot_spider", "plot_waterfall", "plot_swimmer", "plot_kaplan_meier",
    "plot_composition", "plot_lattice", "plot_study_snapshots", "plot_run_timecourse",
    "plot_run_snapshots",
]

FORMATS = ("png", "svg")
DPI = 200
#: RECIST 1.1 thresholds on the diameter (as in ResponseCriteria's defaults).
PARTIAL_RESPONSE_DROP = 0.30
PROGRESSION_RISE = 0.20

#: Fixed colours of the cell kinds, keyed by ``flag_meanings`` (never by value, so a file
#: written with other values still reads right). "tumor_resistant" is drawn where
#: ``/snapshots/clone`` marks a tumour cell resistant to at least one target.
KIND_COLOURS = {
    "empty": "#f4f4f4", "tumor": "#2f6db5", "tumor_resistant": "#f28e1c",
    "t_cell": "#2ca02c", "suppressive": "#9b59b6", "dead": "#b3b3b3",
    "necrotic": "#4a4a4a", "vessel": "#d62728", "wall": "#000000",
}
KIND_LABELS = {
    "empty": "empty", "tumor": "tumour (sensitive)", "tumor_resistant": "tumour (resistant)",
    "t_cell": "T cell", "suppressive": "suppressive cell", "dead": "dead cell",
    "necrotic": "necrotic", "vessel": "vessel", "wall": "wall",
}
_UNKNOWN_KIND_COLOUR = "#ff00ff"
RESPONSE_COLOURS = {"CR": "#08519c", "PR": "#6baed6", "SD": "#fdb863", "PD": "#d7301f",
                    "NE": "#bdbdbd"}
RESPONSE_LABELS = {"CR": "complete response", "PR": "partial response",
                   "SD": "stable disease", "PD": "progressive disease", "NE": "not evaluable"}
_DRUG_MARKERS = ("v", "D", "s", "^", "o", "P", "X", "*")
_DRUG_COLOURS = ("#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#1f77b4")
_STYLE = {
    "font.size": 8.5, "axes.titlesize": 9, "axes.labelsize": 8.5, "legend.fontsize": 7.5,
    "xtick.labelsize": 7.5, "ytick.labelsize": 7.5, "axes.spines.top": False,
    "axes.spines.right": False, "legend.frameon": False, "svg.fonttype": "none",
    "savefig.dpi": DPI, "figure.dpi": 100, "image.interpolation": "nearest",
}


def _styled(func):
    """Draw under the house style without touching the caller's rcParams."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_STYLE):
            return func(*args, **kwargs)
    return wrapper


def _arm_colours(arms) -> dict:
    cycle = matplotlib.colormaps["tab10"].colors
    return {arm: cycle[i % len(cycle)] for i, arm in enumerate(arms)}


def _new_axes(figsize, ax=None):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _panel_axes(n, ax, *, ncols=None, panel_size=(3.2, 2.6), sharex=True, sharey=True,
                extra_height=0.0):
    """One Axes per panel: the caller's sequence, or a new figure's grid."""
    if ax is not None:
        axes = list(np.ravel(ax)) if not hasattr(ax, "figure") else [ax]
        if len(axes) < n:
            raise ValueError(f"need {n} axes (one per arm), got {len(axes)}")
        return axes[0].figure, axes[:n]
    ncols = ncols or min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + extra_height),
                 layout="constrained")
    grid = fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=False)
    for extra in grid.ravel()[n:]:
        extra.set_visible(False)
    return fig, list(grid.ravel()[:n])


def _nan_quantiles(data, qs):
    """Quantiles over axis 0 ignoring NaN, NaN (without warnings) where no value exists."""
    out = np.full((len(qs), data.shape[-1]), np.nan)
    ok = np.isfinite(data).any(axis=0)
    if ok.any():
        out[:, ok] = np.nanquantile(data[:, ok], qs, axis=0)
    return out


# ============================================================================ data
@dataclass
class StudyData:
    """What the study figures need, read once (see :func:`load_study`)."""
    directory: Path
    arms: list[str]
    reference_arm: str
    replicates: int
    time_days: np.ndarray
    series: dict[str, np.ndarray]          # name -> arm x replicate x time (NaN padded)
    endpoints: dict[str, np.ndarray]       # column -> one value per finished run
    run_paths: dict[tuple[str, int], Path]
    treatment_start_day: float
    dimensions: int = 2
    _doses: dict | None = field(default=None, repr=False)

    def rows(self, arm: str) -> np.ndarray:
        """Indices of the endpoint rows of ``arm``, by replicate."""
        idx = np.nonzero(self.endpoints["arm"] == arm)[0]
        return idx[np.argsort(self.endpoints["replicate"][idx], kind="stable")]

    def doses(self) -> dict[str, list[np.ndarray]]:
        """Per arm, the dose table of each finished run (read from the run files once)."""
        if self._doses is None:
            self._doses = {arm: [] for arm in self.arms}
            for (arm, _r), path in sorted(self.run_paths.items()):
                try:
                    with h5py.File(path, "r") as f:
                        self._doses[arm].append(read_doses(f))
                except OSError as exc:
                    raise OutputError(f"{path}: not a readable HDF5 file ({exc})") from None
        return self._doses


def _decode(values) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def load_study(directory) -> StudyData:
    """Read ``DIR/study.h5`` and ``DIR/summary.csv``; OutputError (one line) if unusable."""
    directory = Path(directory)
    path = directory / "study.h5"
    if not directory.is_dir():
        raise OutputError(f"{directory}: no such study directory")
    if not path.exists():
        raise OutputError(f"{path}: no such file (not a finished tumorsim study; run "
                          "`tumorsim compare` first)")
    try:
        with h5py.File(path, "r") as f:
            arms = [str(a) for a in _decode(f.attrs["arms"])]
            reference = f.attrs.get("reference_arm", arms[0])
            reference = reference.decode() if isinstance(reference, bytes) else str(reference)
            replicates = int(f.attrs["replicates"])
            ts = f["timeseries"]
            time_days = ts["time_days"][()]
            series = {name: ts[name][()] for name in ts
                      if isinstance(ts[name], h5py.Dataset) and ts[name].ndim == 3}
            ep = f["endpoints"]
            endpoints = {}
            for name in ep:
                values = ep[name][()]
                endpoints[name] = _decode(values) if values.dtype.kind in "OS" else values
    except (OSError, KeyError) as exc:
        raise OutputError(f"{path}: not a readable tumorsim study file ({_short(exc)})") from None
    if "arm" not in endpoints or len(endpoints["arm"]) == 0:
        raise OutputError(f"{path}: no finished runs to plot")
    for name in ("tumor_cells", "tumor_resistant"):
        if name not in series:
            raise OutputError(f"{path}: /timeseries/{name} is missing")
    endpoints["replicate"] = endpoints["replicate"].astype(int)
    run_paths = _run_paths(directory, endpoints)
    start = float(np.nanmedian(endpoints["treatment_start_day"]))
    study = StudyData(directory, arms, reference, replicates, time_days, series, endpoints,
                      run_paths, start)
    study.dimensions = _lattice_ndim(run_paths)
    return study


def _short(exc) -> str:
    return str(exc).split("(")[0].strip() or exc.__class__.__name__


def _run_paths(directory: Path, endpoints) -> dict:
    """Run file of every endpoint row: from summary.csv's ``path`` column, else the layout."""
    paths = {}
    summary = directory / "summary.csv"
    if summary.exists():
        with open(summary, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("path"):
                    paths[(row["arm"], int(float(row["replicate"])))] = directory / row["path"]
    for arm, r in zip(endpoints["arm"], endpoints["replicate"]):
        paths.setdefault((arm, int(r)), directory / "runs" / arm / f"replicate-{int(r):03d}.h5")
    keep = set(zip(endpoints["arm"], endpoints["replicate"].astype(int)))
    return {key: p for key, p in paths.items() if key in keep}


def _lattice_ndim(run_paths) -> int:
    for path in run_paths.values():
        try:
            with h5py.File(path, "r") as f:
                return len(f.attrs["dimensions"])
        except (OSError, KeyError):
            continue
    return 2


@dataclass
class RunData:
    """One run file's series, doses and snapshot index (frames are read on demand)."""
    path: Path
    arm: str
    replicate: int
    time_days: np.ndarray
    series: dict[str, np.ndarray]
    drugs: dict[str, np.ndarray]
    doses: np.ndarray
    treatment_start_day: float | None
    spacing_um: float
    dimensions: tuple
    snapshot_days: np.ndarray
    field_names: list[str]
    summary: dict


def load_run(path) -> RunData:
    path = Path(path)
    with open_run(path) as f:
        try:
            ts = f["timeseries"]
            series = {n: ts[n][()] for n in ts if isinstance(ts[n], h5py.Dataset)}
            drugs = {n: ts["drug"][n][()] for n in ts["drug"]} if "drug" in ts else {}
            a = f.attrs
            start = a.get("treatment_start_day")
            snap = f["snapshots"] if "snapshots" in f else None
            snapshot_days = (snap["time_days"][()] if snap is not None and "time_days" in snap
                             and "cell_type" in snap else np.zeros(0))
            fields_ = sorted(snap["fields"]) if snap is not None and "fields" in snap else []
            arm = a.get("arm", "")
            return RunData(
                path=path, arm=arm.decode() if isinstance(arm, bytes) else str(arm),
                replicate=int(a.get("replicate", 0)), time_days=series.pop("time_days"),
                series=series, drugs=drugs, doses=read_doses(f),
                treatment_start_day=None if start is None else float(start),
                spacing_um=float(a.get("spacing_um", 20.0)),
                dimensions=tuple(int(n) for n in a.get("dimensions", ())),
                snapshot_days=snapshot_days, field_names=fields_,
                summary=dict(f["summary"].attrs) if "summary" in f else {})
        except (KeyError, OSError) as exc:
            raise OutputError(f"{path}: incomplete or corrupt run file ({_short(exc)})") from None


_DOSE_DTYPE = np.dtype([("day", "f8"), ("drug", object), ("amount_mg", "f8")])


def read_doses(f: h5py.File) -> np.ndarray:
    """``/doses/table`` as a (day, drug, amount_mg) record array; empty when absent."""
    if "doses" not in f or "table" not in f["doses"]:
        return np.zeros(0, dtype=_DOSE_DTYPE)
    table = f["doses/table"][()]
    out = np.zeros(len(table), dtype=_DOSE_DTYPE)
    out["day"] = table["day"]
    out["drug"] = _decode(table["drug"])
    if "amount_mg" in table.dtype.names:
        out["amount_mg"] = table["amount_mg"]
    return out


def read_snapshot(path, index: int) -> dict:
    """One snapshot: ``cell_type``, ``clone`` (or None) and ``fields`` (name -> array), 3D
    reduced to the middle z-slice; plus ``day``, ``flag_values``, ``flag_meanings``."""
    with open_run(path) as f:
        snap = f["snapshots"]
        ct = snap["cell_type"]
        out = {"day": float(snap["time_days"][index]),
               "cell_type": _middle_slice(ct[index]),
               "clone": _middle_slice(snap["clone"][index]) if "clone" in snap else None,
               "flag_values": ct.attrs.get("flag_values"),
               "flag_meanings": ct.attrs.get("flag_meanings"),
               "fields": {}}
        if "fields" in snap:
            for name in snap["fields"]:
                ds = snap["fields"][name]
                if ds.shape[0] > index:
                    out["fields"][name] = (_middle_slice(ds[index]), ds.attrs.get("units", ""))
        return out


def _middle_slice(frame: np.ndarray) -> np.ndarray:
    return frame[..., frame.shape[-1] // 2] if frame.ndim == 3 else frame


def _nearest_indices(available: np.ndarray, days) -> list[int]:
    return [int(np.argmin(np.abs(available - d))) for d in days]


def default_snapshot_days(snapshot_days, treatment_start_day) -> list[float]:
    """Treatment start, midway to the last snapshot, and the last snapshot."""
    if len(snapshot_days) == 0:
        return []
    start = treatment_start_day if treatment_start_day is not None else snapshot_days[0]
    end = float(snapshot_days[-1])
    return [float(start), float(start + (end - start) / 2), end]


# ===================================================================== decorations
def mark_treatment_start(ax, day, *, label: str | None = "treatment start"):
    """A dashed vertical line at the treatment start (skipped when day is None)."""
    if day is None or not np.isfinite(day):
        return None
    return ax.axvline(day, color="0.35", ls="--", lw=0.9, zorder=1, label=label,
                      gid="treatment-start")


def _dose_rows(dose_tables, arm=None, colour="k"):
    """Rows of dose markers from a list of dose tables (one per replicate): per drug, the
    days dosed in any replicate and the share of replicates dosed on each."""
    tables = [t for t in dose_tables if t is not None]
    drugs = sorted({d for t in tables for d in t["drug"]})
    rows = []
    for drug in drugs:
        per_run = [np.unique(np.round(t["day"][t["drug"] == drug], 6)) for t in tables]
        days, counts = np.unique(np.concatenate(per_run), return_counts=True)
        rows.append(dict(arm=arm, drug=drug, days=days, share=counts / max(len(tables), 1),
                         colour=colour))
    return rows


def mark_doses(ax, dose_tables, *, arm: str | None = None, colour="k", drugs=None,
               drug_colours: dict | None = None, first_row: int = 0,
               row_height: float = 0.045):
    """Dose markers along the top of ``ax``: one row per drug (marker shape per drug, colour
    ``colour`` or ``drug_colours[drug]``), at the dose days, opacity = share of
    ``dose_tables`` (one per replicate) dosed that day. ``drugs`` fixes the drug -> marker
    order across calls. Returns the number of rows drawn. The markers are scatter
    collections with ``gid="dose-markers"``."""
    if isinstance(dose_tables, np.ndarray):
        dose_tables = [dose_tables]
    rows = _dose_rows(dose_tables, arm, colour)
    all_drugs = list(drugs) if drugs is not None else [r["drug"] for r in rows]
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    for k, row in enumerate(rows):
        y = 1.0 - row_height * (first_row + k + 0.6)
        c = (drug_colours or {}).get(row["drug"], row["colour"])
        rgba = np.tile(matplotlib.colors.to_rgba(c), (len(row["days"]), 1))
        rgba[:, 3] = 0.25 + 0.75 * row["share"]
        marker = _DRUG_MARKERS[all_drugs.index(row["drug"]) % len(_DRUG_MARKERS)]
        label = f"{row['drug']} dose" if arm is None else f"{arm}: {row['drug']} dose"
        ax.scatter(row["days"], np.full(len(row["days"]), y), s=14, marker=marker, c=rgba,
                   edgecolors="none", transform=transform, clip_on=False, zorder=4,
                   gid="dose-markers", label=label)
    return len(rows)


def _headroom(ax, n_rows: int, row_height: float = 0.045):
    """Raise the y limit so ``n_rows`` marker rows at the top do not cover data."""
    if n_rows == 0:
        return
    lo, hi = ax.get_ylim()
    frac = min(0.6, row_height * (n_rows + 0.3))
    ax.set_ylim(lo, lo + (hi - lo) / (1.0 - frac))


# ================================================================= study figures
def _burden_baseline_index(time_days, start) -> int:
    return max(0, int(np.searchsorted(time_days, start + 1e-6, side="right") - 1))


@_styled
def plot_burden(study: StudyData, *, series: str = "tumor_cells", ax=None):
    """Tumour burden per arm: median (line) and interquartile band across replicates, with
    the treatment start and each arm's dose days."""
    fig, ax = _new_axes((7.0, 3.8), ax)
    t, data = study.time_days, study.series[series]
    colours = _arm_colours(study.arms)
    for a, arm in enumerate(study.arms):
        q25, q50, q75 = _nan_quantiles(data[a], (0.25, 0.5, 0.75))
        n = int(np.isfinite(data[a]).any(axis=1).sum())
        ax.fill_between(t, q25, q75, color=colours[arm], alpha=0.2, lw=0)
        ax.plot(t, q50, color=colours[arm], lw=1.6, label=f"{arm} (n={n})")
    mark_treatment_start(ax, study.treatment_start_day)
    ax.set_xlabel("time (days)")
    ax.set_ylabel("tumour cells (median, IQR)" if series == "tumor_cells"
                  else f"{series.replace('_', ' ')} (median, IQR)")
    ax.set_ylim(bottom=0)
    if len(t):
        ax.set_xlim(t[0], t[-1])
    doses = study.doses()
    drugs = sorted({d for tables in doses.values() for t_ in tables for d in t_["drug"]})
    rows = 0
    for arm in study.arms:
        rows += mark_doses(ax, doses[arm], arm=arm, colour=colours[arm], drugs=drugs,
                           first_row=rows)
    _headroom(ax, rows)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Tumour burden by arm")
    return fig


def _diameter_change(cells, baseline, ndim):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * (np.power(cells / baseline, 1.0 / ndim) - 1.0)


_REFERENCE_STYLE = dict(color="0.3", ls=":", lw=0.8)


def _response_lines(ax, labels: bool = False):
    """RECIST reference lines (PR -30%, PD +20%) and zero; ``labels``: name them at the
    right edge, outside the axes."""
    for y, text in ((-100 * PARTIAL_RESPONSE_DROP, "PR -30%"), (100 * PROGRESSION_RISE, "PD +20%")):
        ax.axhline(y, zorder=1, gid="recist-reference", **_REFERENCE_STYLE)
        if labels:
            ax.annotate(text, xy=(1.0, y), xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", ha="left", va="center", fontsize=6.5,
                        color="0.3", annotation_clip=False)
    ax.axhline(0, color="0.6", lw=0.6, zorder=1)


def _reference_handle():
    return Line2D([], [], label="RECIST: PR -30%, PD +20%", **_REFERENCE_STYLE)


@_styled
def plot_spider(study: StudyData, *, ax=None):
    """Per-replicate change of the equivalent diameter from baseline after the treatment
    start, one panel per arm, each line coloured by the replicate's best overall response."""
    fig, axes = _panel_axes(len(study.arms), ax, panel_size=(3.0, 2.6))
    t, cells = study.time_days, study.series["tumor_cells"]
    start = study.treatment_start_day
    b = _burden_baseline_index(t, start)
    after = t >= t[b]
    classes_seen = set()
    for a, (arm, axis) in enumerate(zip(study.arms, axes)):
        rows = study.rows(arm)
        for i in rows:
            r = int(study.endpoints["replicate"][i])
            cls = str(study.endpoints["response_class"][i])
            classes_seen.add(cls)
            y = _diameter_change(cells[a, r, after], cells[a, r, b], study.dimensions)
            axis.plot(t[after] - start, y, color=RESPONSE_COLOURS.get(cls, "0.5"), lw=0.8,
                      alpha=0.85)
        _response_lines(axis)
        axis.set_title(f"{arm} (n={len(rows)})")
        axis.set_xlabel("days since treatment start")
    axes[0].set_ylabel("change in equivalent diameter (%)")
    handles = [Line2D([], [], color=RESPONSE_COLOURS[c], label=c)
               for c in RESPONSE_COLOURS if c in classes_seen] + [_reference_handle()]
    fig.legend(handles=handles, loc="outside right upper", title="best response")
    fig.suptitle("Spider plot: change from baseline")
    return fig


@_styled
def plot_waterfall(best_change, response_class, *, ax=None, title: str | None = None,
                   ylabel: str = "best change in equivalent diameter (%)",
                   reference_labels: bool = True):
    """Bars of best response (fractions, e.g. -0.4), sorted from largest increase to
    largest decrease, coloured by RECIST class; -30% / +20% reference lines. NaN (not
    evaluable) runs are left out and counted in the title."""
    fig, ax = _new_axes((4.0, 3.0), ax)
    values = 100.0 * np.asarray(best_change, float)
    classes = np.asarray(response_class, dtype=object)
    ok = np.isfinite(values)
    order = np.argsort(-values[ok], kind="stable")
    v, c = values[ok][order], classes[ok][order]
    ax.bar(np.arange(len(v)), v, width=0.8, color=[RESPONSE_COLOURS.get(str(k), "0.5") for k in c],
           edgecolor="none", gid="waterfall-bars")
    _response_lines(ax, labels=reference_labels)
    ax.set_xlim(-0.7, max(len(v), 1) - 0.3)
    ax.set_xticks([])
    ax.set_xlabel("replicates (sorted)")
    ax.set_ylabel(ylabel)
    skipped = int((~ok).sum())
    if title is not None or skipped:
        ax.set_title((title or "") + (f"  [{skipped} not evaluable]" if skipped else ""))
    return fig


@_styled
def plot_study_waterfall(study: StudyData, *, ax=None):
    """One waterfall panel per arm (shared y axis) with a legend of response classes."""
    fig, axes = _panel_axes(len(study.arms), ax, panel_size=(2.8, 2.8), sharex=False)
    ep = study.endpoints
    column = "best_diameter_change" if "best_diameter_change" in ep else "best_response"
    for arm, axis in zip(study.arms, axes):
        rows = study.rows(arm)
        plot_waterfall(ep[column][rows], ep["response_class"][rows], ax=axis,
                       title=f"{arm} (n={len(rows)})", reference_labels=False,
                       ylabel="best change in equivalent diameter (%)"
                       if column == "best_diameter_change" else "best change in tumour cells (%)")
        if axis is not axes[0]:
            axis.set_ylabel("")
    present = set(ep["response_class"])
    fig.legend(handles=[Patch(color=RESPONSE_COLOURS[c], label=f"{c} ({RESPONSE_LABELS[c]})")
                        for c in RESPONSE_COLOURS if c in present] + [_reference_handle()],
               loc="outside right upper", title="best overall response")
    fig.suptitle("Waterfall plot of best response")
    return fig


@_styled
def plot_swimmer(study: StudyData, *, ax=None):
    """Per replicate (grouped by arm): a bar to the end of follow-up coloured by best
    response, markers at the first response and at progression, an arrow when the response
    is ongoing at the end."""
    ep = study.endpoints
    order = [i for arm in study.arms for i in study.rows(arm)]
    n = len(order)
    fig, ax = _new_axes((6.5, min(1.4 + 0.13 * n, 40.0)), ax)
    y = np.arange(n)[::-1]
    follow = np.nan_to_num(ep["follow_up_days"][order].astype(float), nan=0.0)
    classes = [str(ep["response_class"][i]) for i in order]
    ax.barh(y, follow, height=0.75, color=[RESPONSE_COLOURS.get(c, "0.5") for c in classes],
            edgecolor="none", gid="swimmer-bars")
    ttr = ep["time_to_response_days"][order].astype(float)
    ttp = ep["time_to_progression_days"][order].astype(float)
    ongoing = ep["response_ongoing"][order].astype(bool)
    ms = 4.5 if n <= 40 else 3.2
    ax.plot(ttr, y, ls="none", marker="^", ms=ms, mfc="#1b7837", mec="k", mew=0.4,
            label="response (first PR/CR scan)", gid="swimmer-response")
    ax.plot(ttp, y, ls="none", marker="X", ms=ms + 0.5, mfc="k", mec="white", mew=0.3,
            label="progression", gid="swimmer-progression")
    span = float(np.nanmax(follow)) if n and np.nanmax(follow) > 0 else 1.0
    ax.plot(follow[ongoing] + 0.012 * span, y[ongoing], ls="none", marker=">", ms=ms, color="k",
            label="response ongoing", gid="swimmer-ongoing")
    # arm groups: separators and labels
    edges, start = [], 0
    ticks, labels = [], []
    for arm in study.arms:
        k = len(study.rows(arm))
        if k == 0:
            continue
        ticks.append(n - 1 - (start + (k - 1) / 2))
        labels.append(arm)
        start += k
        edges.append(n - start - 0.5)
    for e in edges[:-1]:
        ax.axhline(e, color="0.5", lw=0.6)
    ax.set_yticks(ticks, labels)
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(0, span * 1.05)
    ax.set_xlabel("days since treatment start")
    handles = [Patch(color=RESPONSE_COLOURS[c], label=c) for c in RESPONSE_COLOURS if c in classes]
    handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Swimmer plot: follow-up, response and progression per replicate")
    return fig


def logrank_pvalues(durations, observed, arm_of_row, arms) -> dict[str, float]:
    """Two-sample log-rank p-value of every arm against the first (reference) arm (lifelines
    when installed, else the same test in numpy/scipy). Rows with NaN durations are left
    out. Note: arms of a study share common random numbers, so replicates are paired and the
    (unpaired) log-rank p-value is conservative-to-approximate; it is a screening number."""
    durations = np.asarray(durations, float)
    observed = np.asarray(observed, bool)
    arm_of_row = np.asarray(arm_of_row, dtype=object)
    ref = arms[0]
    out = {}
    for arm in arms[1:]:
        a = (arm_of_row == ref) & np.isfinite(durations)
        b = (arm_of_row == arm) & np.isfinite(durations)
        if not a.any() or not b.any() or not (observed[a].any() or observed[b].any()):
            out[arm] = math.nan
            continue
        out[arm] = _logrank(durations[a], observed[a], durations[b], observed[b])
    return out


def _logrank(t1, e1, t2, e2) -> float:
    try:
        from lifelines.statistics import logrank_test
    except ImportError:
        return _logrank_numpy(t1, e1, t2, e2)
    return float(logrank_test(t1, t2, event_observed_A=e1, event_observed_B=e2).p_value)


def _logrank_numpy(t1, e1, t2, e2) -> float:
    """Mantel-Cox log-rank test (chi-square, 1 degree of freedom)."""
    from scipy.stats import chi2
    t = np.concatenate([t1, t2])
    e = np.concatenate([e1, e2]).astype(bool)
    g = np.concatenate([np.zeros(len(t1), bool), np.ones(len(t2), bool)])
    o_minus_e = var = 0.0
    for time in np.unique(t[e]):
        at_risk = t >= time
        n, n1 = at_risk.sum(), (at_risk & ~g).sum()
        d = (e & (t == time)).sum()
        d1 = (e & (t == time) & ~g).sum()
        o_minus_e += d1 - d * n1 / n
        if n > 1:
            var += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1)
    if var <= 0:
        return math.nan
    return float(chi2.sf(o_minus_e ** 2 / var, 1))


def _km_curve(durations, observed):
    """Kaplan-Meier step function: times (starting at 0) and survival after each."""
    order = np.argsort(durations, kind="stable")
    d, e = durations[order], observed[order]
    times, surv, s = [0.0], [1.0], 1.0
    for time in np.unique(d[e]):
        n_at_risk = (d >= time).sum()
        s *= 1.0 - (e & (d == time)).sum() / n_at_risk
        times.append(float(time))
        surv.append(s)
    return np.array(times), np.array(surv)


@_styled
def plot_kaplan_meier(durations, observed, arm_of_row, arms, *, ax=None):
    """Progression-free Kaplan-Meier curves per arm, censored runs ticked, log-rank p-values
    against the first arm in the legend. The p-values are stored on the returned figure as
    ``fig.logrank_pvalues`` (arm -> p)."""
    fig, ax = _new_axes((7.6, 3.6), ax)
    durations = np.asarray(durations, float)
    observed = np.asarray(observed, bool)
    arm_of_row = np.asarray(arm_of_row, dtype=object)
    pvalues = logrank_pvalues(durations, observed, arm_of_row, arms)
    colours = _arm_colours(arms)
    t_max = float(np.nanmax(durations)) if np.isfinite(durations).any() else 1.0
    for arm in arms:
        keep = (arm_of_row == arm) & np.isfinite(durations)
        d, e = durations[keep], observed[keep]
        if arm == arms[0]:
            label = f"{arm} (n={keep.sum()}, reference)"
        else:
            p = pvalues.get(arm, math.nan)
            ptext = ("p = n/a" if not np.isfinite(p) else
                     f"p = {p:.2g}" if p >= 1e-4 else "p < 0.0001")
            label = f"{arm} (n={keep.sum()}, log-rank {ptext})"
        if not keep.any():
            continue
        times, surv = _km_curve(d, e)
        times = np.append(times, max(t_max, times[-1]))
        surv = np.append(surv, surv[-1])
        ax.step(times, surv, where="post", color=colours[arm], lw=1.5, label=label)
        cens = d[~e]
        if len(cens):
            s_at = surv[np.searchsorted(times, cens, side="right") - 1]
            ax.plot(cens, s_at, ls="none", marker="+", ms=6, mew=1.0, color=colours[arm])
    ax.set_ylim(-0.02, 1.04)
    ax.set_xlim(0, t_max * 1.02 if t_max > 0 else 1)
    ax.set_xlabel("days since treatment start")
    ax.set_ylabel("progression-free probability")
    censored = [Line2D([], [], ls="none", marker="+", color="0.3", label="censored")]
    ax.legend(handles=ax.get_legend_handles_labels()[0]
              + (censored if (np.isfinite(durations) & ~observed).any() else []),
              loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title=f"log-rank test vs {arms[0]}")
    ax.set_title("Progression-free survival (Kaplan-Meier)")
    fig.logrank_pvalues = pvalues
    return fig


def plot_study_kaplan_meier(study: StudyData, *, ax=None):
    ep = study.endpoints
    return plot_kaplan_meier(ep["progression_free_days"], ep["progression_observed"],
                             ep["arm"], study.arms, ax=ax)


@_styled
def plot_composition(study: StudyData, *, ax=None):
    """Sensitive and resistant tumour cells over time (median across replicates, stacked),
    one panel per arm, with treatment start and dose days."""
    fig, axes = _panel_axes(len(study.arms), ax, panel_size=(3.2, 2.6))
    t = study.time_days
    sens = study.series.get("tumor_sensitive")
    res = study.series["tumor_resistant"]
    if sens is None:
        sens = study.series["tumor_cells"] - res
    doses = study.doses()
    drugs = sorted({d for tables in doses.values() for t_ in tables for d in t_["drug"]})
    top, dose_rows = 0.0, [0]
    for a, (arm, axis) in enumerate(zip(study.arms, axes)):
        s = _nan_quantiles(sens[a], (0.5,))[0]
        r = _nan_quantiles(res[a], (0.5,))[0]
        ok = np.isfinite(s) & np.isfinite(r)
        axis.stackplot(t[ok], s[ok], r[ok], colors=[KIND_COLOURS["tumor"],
                                                  KIND_COLOURS["tumor_resistant"]],
                       labels=["sensitive", "resistant"], alpha=0.85, lw=0)
        top = max(top, float(np.max(s[ok] + r[ok])) if ok.any() else 0.0)
        mark_treatment_start(axis, study.treatment_start_day)
        dose_rows.append(mark_doses(axis, doses[arm], drugs=drugs))
        axis.set_title(f"{arm}")
        axis.set_xlabel("time (days)")
    axes[0].set_ylabel("tumour cells (median)")
    headroom = min(0.6, 0.045 * (max(dose_rows) + 0.3)) if max(dose_rows) else 0.0
    for axis in axes:   # the same limits on every panel (idempotent when y is shared)
        axis.set_ylim(0, max(top, 1.0) * 1.02 / (1.0 - headroom))
    handles, labels = axes[0].get_legend_handles_labels()
    seen = set(labels)
    for axis in axes[1:]:
        for h, label in zip(*axis.get_legend_handles_labels()):
            if label not in seen:
                seen.add(label)
                handles.append(h)
                labels.append(label)
    fig.legend(handles, labels, loc="outside right upper")
    fig.suptitle("Sensitive vs resistant tumour cells (median across replicates)")
    return fig


# ========================================================================= lattice
def lattice_rgb(cell_type, clone=None, flag_values=None, flag_meanings=None):
    """RGB image (float, ..., 3) of a cell-type frame with the fixed colours, keyed by the
    ``flag_values``/``flag_meanings`` attributes; resistant tumour cells (clone > 0) get
    their own colour. Returns (rgb, names of the kinds present)."""
    if flag_values is None or flag_meanings is None:
        flag_values, meanings = np.arange(len(KIND_NAMES)), list(KIND_NAMES)
    else:
        meanings = (flag_meanings.decode() if isinstance(flag_meanings, bytes)
                    else str(flag_meanings)).split()
    names = list(meanings) + ["tumor_resistant", "unknown"]
    spare = iter(matplotlib.colormaps["tab20"].colors)
    palette = np.array([matplotlib.colors.to_rgb(KIND_COLOURS.get(n) or
                                                 (_UNKNOWN_KIND_COLOUR if n == "unknown"
                                                  else next(spare)))
                        for n in names])
    lut = np.full(256, len(names) - 1, dtype=np.int64)
    for value, meaning in zip(np.asarray(flag_values, dtype=np.int64), meanings):
        lut[value] = meanings.index(meaning)
    category = lut[np.asarray(cell_type, dtype=np.uint8)]
    if clone is not None and "tumor" in meanings:
        category = np.where((category == meanings.index("tumor")) & (np.asarray(clone) > 0),
                            names.index("tumor_resistant"), category)
    present = [names[i] for i in np.unique(category)]
    return palette[category], present


def _kind_legend_handles(present, with_clones=True):
    order = [n for n in KIND_COLOURS if n in present] + \
            [n for n in present if n not in KIND_COLOURS]
    handles = []
    for name in order:
        label = KIND_LABELS.get(name, name.replace("_", " "))
        if name == "tumor" and not with_clones:
            label = "tumour"
        colour = KIND_COLOURS.get(name, _UNKNOWN_KIND_COLOUR)
        handles.append(Patch(facecolor=colour, edgecolor="0.6", lw=0.4, label=label))
    return handles


def _lattice_extent_mm(shape, spacing_um):
    nx, ny = shape[:2]
    return (0.0, nx * spacing_um / 1000.0, 0.0, ny * spacing_um / 1000.0)


def _show_rgb(ax, rgb, spacing_um):
    """x along the first lattice axis (horizontal), y up; framed on all sides."""
    for spine in ax.spines.values():
        spine.set_visible(True)
    return ax.imshow(np.swapaxes(rgb, 0, 1), origin="lower",
                     extent=_lattice_extent_mm(rgb.shape, spacing_um), interpolation="nearest")


@_styled
def plot_lattice(cell_type, *, clone=None, flag_values=None, flag_meanings=None,
                 spacing_um: float = 20.0, title: str | None = None, legend: bool = True,
                 ax=None):
    """One lattice frame (2D; give a 3D frame's slice) in the fixed cell-kind colours."""
    fig, ax = _new_axes((4.2, 3.6), ax)
    rgb, present = lattice_rgb(cell_type, clone, flag_values, flag_meanings)
    _show_rgb(ax, rgb, spacing_um)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(handles=_kind_legend_handles(present, clone is not None), loc="upper left",
                  bbox_to_anchor=(1.01, 1.0))
    return fig


@_styled
def plot_study_snapshots(study: StudyData, *, days=None, replicate: int | None = None, ax=None):
    """Lattice snapshots of one replicate per arm (rows) at ``days`` (columns; default:
    treatment start, midway, end), with a colour legend of cell kinds. The replicate
    defaults to the lowest one finished in every arm."""
    if replicate is None:
        common = set.intersection(*[{r for (a, r) in study.run_paths if a == arm}
                                    for arm in study.arms])
        replicate = min(common) if common else None
    frames, n_cols = [], 0
    for arm in study.arms:
        path = study.run_paths.get((arm, replicate))
        if path is None:
            path = next((p for (a, _r), p in sorted(study.run_paths.items()) if a == arm), None)
        row, spacing = [], 20.0
        if path is not None:
            with open_run(path) as f:
                available = (f["snapshots/time_days"][()] if "snapshots/cell_type" in f
                             else np.zeros(0))
                spacing = float(f.attrs.get("spacing_um", 20.0))
            if len(available):
                wanted = days if days is not None else default_snapshot_days(
                    available, study.treatment_start_day)
                row = [read_snapshot(path, i) for i in _nearest_indices(available, wanted)]
        frames.append((arm, path, row, spacing))
        n_cols = max(n_cols, len(row))
    n_rows = len(study.arms)
    if ax is None:
        if n_cols == 0:
            fig = Figure(figsize=(4, 2), layout="constrained")
            fig.text(0.5, 0.5, "no lattice snapshots in the run files", ha="center")
            return fig
        fig = Figure(figsize=(2.3 * n_cols + 1.8, 2.3 * n_rows + 0.5), layout="constrained")
        grid = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True, sharey=True)
    else:
        grid = np.asarray(ax, dtype=object).reshape(n_rows, -1)
        fig = grid[0, 0].figure
    present, clones = set(), False
    for i, (arm, path, row, spacing) in enumerate(frames):
        for j, axis in enumerate(grid[i]):
            if j >= len(row):
                axis.set_visible(False)
                continue
            snap = row[j]
            rgb, kinds = lattice_rgb(snap["cell_type"], snap["clone"], snap["flag_values"],
                                     snap["flag_meanings"])
            present.update(kinds)
            clones |= snap["clone"] is not None
            _show_rgb(axis, rgb, spacing)
            day_since = snap["day"] - study.treatment_start_day
            axis.set_title(f"day {snap['day']:g} ({day_since:+g} d)", fontsize=8)
            if j == 0:
                axis.set_ylabel(f"{arm}\ny (mm)")
            if i == n_rows - 1:
                axis.set_xlabel("x (mm)")
    fig.legend(handles=_kind_legend_handles(present, clones), loc="outside right upper",
               title="cell kind")
    rep = "" if replicate is None else f" (replicate {replicate})"
    fig.suptitle(f"Lattice snapshots per arm{rep}; days relative to treatment start")
    return fig


# ================================================================== run figures
def run_drug_colours(run: RunData):
    """The run's drug names (sorted) and a fixed colour per drug."""
    names = sorted(set(run.drugs) | set(run.doses["drug"]))
    return names, {name: _DRUG_COLOURS[k % len(_DRUG_COLOURS)] for k, name in enumerate(names)}


@_styled
def plot_run_timecourse(run: RunData, *, ax=None):
    """Two stacked panels sharing time: tumour cells (total, sensitive, resistant) with the
    drug concentrations on a twin axis; immune cells (T cells, suppressive cells, core /
    margin T cells when recorded). Treatment start and dose days on both."""
    if ax is None:
        fig = Figure(figsize=(7.0, 5.2), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    else:
        top, bottom = list(np.ravel(ax))[:2]
        fig = top.figure
    t, s = run.time_days, run.series
    top.plot(t, s["tumor_cells"], color="k", lw=2.2, label="tumour cells (total)")
    if "tumor_sensitive" in s:
        top.plot(t, s["tumor_sensitive"], color=KIND_COLOURS["tumor"], lw=1.2, label="sensitive")
    if "tumor_resistant" in s:
        top.plot(t, s["tumor_resistant"], color=KIND_COLOURS["tumor_resistant"], lw=1.2,
                 label="resistant")
    top.set_ylabel("tumour cells")
    top.set_ylim(bottom=0)
    handles, labels = top.get_legend_handles_labels()
    drug_names, drug_colours = run_drug_colours(run)
    if run.drugs:
        twin = top.twinx()
        twin.spines["right"].set_visible(True)
        for name, conc in sorted(run.drugs.items()):
            twin.plot(t[:len(conc)], conc, lw=0.7, alpha=0.6, color=drug_colours[name],
                      label=f"{name} (plasma)")
        twin.set_ylabel("drug concentration (mg/L)")
        twin.set_ylim(bottom=0)
        top.set_zorder(twin.get_zorder() + 1)  # cell counts in front of concentrations
        top.patch.set_visible(False)
        h2, l2 = twin.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    immune = [("t_cells", "T cells", KIND_COLOURS["t_cell"], "-"),
              ("t_cells_core", "T cells (core)", KIND_COLOURS["t_cell"], "--"),
              ("t_cells_margin", "T cells (margin)", KIND_COLOURS["t_cell"], ":"),
              ("suppressive_cells", "suppressive cells", KIND_COLOURS["suppressive"], "-")]
    for name, label, colour, ls in immune:
        if name in s:
            bottom.plot(t, s[name], color=colour, ls=ls, lw=1.2, label=label)
    bottom.set_ylabel("immune cells")
    bottom.set_xlabel("time (days)")
    if not any(np.any(line.get_ydata()) for line in bottom.lines):
        bottom.text(0.5, 0.5, "no T cells or suppressive cells in this run", ha="center",
                    va="center", transform=bottom.transAxes, color="0.4")
        bottom.set_ylim(0, 1)
    bottom.set_ylim(bottom=0)
    for axis in (top, bottom):
        mark_treatment_start(axis, run.treatment_start_day, label=None)
        rows = mark_doses(axis, run.doses, drugs=drug_names, drug_colours=drug_colours)
        _headroom(axis, rows)
        if len(t):
            axis.set_xlim(t[0], t[-1])
    dose_handles = [h for h in top.collections if h.get_gid() == "dose-markers"]
    extra = [Line2D([], [], color="0.35", ls="--", lw=0.9, label="treatment start")] \
        if run.treatment_start_day is not None else []
    gap = 1.12 if run.drugs else 1.01   # clear of the twin axis' labels
    top.legend(handles=handles + extra + dose_handles, loc="upper left", bbox_to_anchor=(gap, 1.0))
    if bottom.lines:
        bottom.legend(loc="upper left", bbox_to_anchor=(gap, 1.0))
    name = f"{run.arm} replicate {run.replicate}" if run.arm else run.path.name
    top.set_title(f"Tumour and immune cells over time: {name}")
    return fig


@_styled
def plot_run_snapshots(run: RunData, *, days=None, ax=None):
    """Lattice snapshots of one run at ``days`` (default: treatment start, midway, end):
    one column per day; further rows for each recorded field (``/snapshots/fields``)."""
    if len(run.snapshot_days) == 0:
        fig, ax_ = _new_axes((4, 2), ax)
        ax_.text(0.5, 0.5, "no lattice snapshots in this run file", ha="center",
                 transform=ax_.transAxes)
        ax_.set_axis_off()
        return fig
    wanted = days if days is not None else default_snapshot_days(run.snapshot_days,
                                                                  run.treatment_start_day)
    idx = list(dict.fromkeys(_nearest_indices(run.snapshot_days, wanted)))
    snaps = [read_snapshot(run.path, i) for i in idx]
    field_names = sorted({n for s in snaps for n in s["fields"]})
    n_rows, n_cols = 1 + len(field_names), len(snaps)
    if ax is None:
        fig = Figure(figsize=(2.5 * n_cols + 2.0, 2.4 * n_rows + 0.4), layout="constrained")
        grid = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True, sharey=True)
    else:
        grid = np.asarray(ax, dtype=object).reshape(n_rows, n_cols)
        fig = grid[0, 0].figure
    present, start = set(), run.treatment_start_day or 0.0
    limits = {}
    for name in field_names:
        values = [np.asarray(s["fields"][name][0], float) for s in snaps if name in s["fields"]]
        limits[name] = (min(float(np.nanmin(v)) for v in values),
                        max(float(np.nanmax(v)) for v in values))
    images = {}
    for j, snap in enumerate(snaps):
        rgb, kinds = lattice_rgb(snap["cell_type"], snap["clone"], snap["flag_values"],
                                 snap["flag_meanings"])
        present.update(kinds)
        _show_rgb(grid[0, j], rgb, run.spacing_um)
        grid[0, j].set_title(f"day {snap['day']:g} ({snap['day'] - start:+g} d)", fontsize=8)
        for k, name in enumerate(field_names):
            axis = grid[1 + k, j]
            if name not in snap["fields"]:
                axis.set_visible(False)
                continue
            values, units = snap["fields"][name]
            units = units.decode() if isinstance(units, bytes) else str(units)
            shape = snap["cell_type"].shape
            vmin, vmax = limits[name]
            images[name] = (axis.imshow(np.swapaxes(values, 0, 1), origin="lower",
                                        cmap="viridis", vmin=vmin, vmax=vmax,
                                        extent=_lattice_extent_mm(shape, run.spacing_um)),
                            units)
            for spine in axis.spines.values():
                spine.set_visible(True)
    for name, (im, units) in images.items():
        cb = fig.colorbar(im, ax=list(grid[1 + field_names.index(name)]), shrink=0.9)
        cb.set_label(f"{name} ({units})" if units else name)
    for i in range(n_rows):
        grid[i, 0].set_ylabel("y (mm)" if i == 0 else f"{field_names[i - 1]}\ny (mm)")
    for j in range(n_cols):
        grid[-1, j].set_xlabel("x (mm)")
    fig.legend(handles=_kind_legend_handles(present, snaps[0]["clone"] is not None),
               loc="outside right upper", title="cell kind")
    nd = len(run.dimensions)
    fig.suptitle("Lattice snapshots" + (" (middle z-slice)" if nd == 3 else "")
                 + "; days relative to treatment start")
    return fig


# ==================================================================== drivers
def _save(fig, out_dir: Path, stem: str, formats) -> list[Path]:
    out = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        tmp = path.with_name(path.name + ".partial")
        fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches="tight")
        tmp.replace(path)
        out.append(path)
    return out


def _check_formats(formats):
    formats = tuple(f.lower().lstrip(".") for f in formats)
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad:
        raise ValueError(f"figure formats must be png, svg or pdf, got {', '.join(bad)}")
    return formats


#: Study figures written by study_figures, in order: file stem -> drawing function.
STUDY_FIGURES = {
    "burden": plot_burden,
    "spider": plot_spider,
    "waterfall": plot_study_waterfall,
    "swimmer": plot_swimmer,
    "kaplan_meier": plot_study_kaplan_meier,
    "composition": plot_composition,
    "snapshots": plot_study_snapshots,
}


def study_figures(directory, formats=FORMATS, *, out_dir=None) -> list[Path]:
    """Every study figure (``STUDY_FIGURES``) into ``DIR/figures/`` (or ``out_dir``), one
    file per figure and format."""
    formats = _check_formats(formats)
    study = load_study(directory)
    out_dir = Path(out_dir) if out_dir is not None else Path(directory) / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        for stem, draw in STUDY_FIGURES.items():
            with matplotlib.rc_context(_STYLE):
                written += _save(draw(study), out_dir, stem, formats)
    return written


def run_figures(path, out_dir=None, formats=FORMATS) -> list[Path]:
    """Per-run figures of OUT.h5: ``<stem>-timecourse`` and ``<stem>-snapshots``, beside
    the run file unless ``out_dir`` is given."""
    formats = _check_formats(formats)
    run = load_run(path)
    out_dir = Path(out_dir) if out_dir is not None else Path(path).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    written = []
    with matplotlib.rc_context(_STYLE):
        written += _save(plot_run_timecourse(run), out_dir, f"{stem}-timecourse", formats)
        written += _save(plot_run_snapshots(run), out_dir, f"{stem}-snapshots", formats)
    return written


def _is_study_file(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("title") == "tumorsim study"
    except OSError:
        return False


def plot(target, out_dir=None, formats=FORMATS) -> list[Path]:
    """``tumorsim plot``: a study directory (or its study.h5) or a run file."""
    target = Path(target)
    if target.is_dir():
        return study_figures(target, formats, out_dir=out_dir)
    if not target.exists():
        raise OutputError(f"{target}: no such file or directory")
    if target.name == "study.h5" or _is_study_file(target):
        return study_figures(target.parent, formats, out_dir=out_dir)
    return run_figures(target, out_dir, formats)
