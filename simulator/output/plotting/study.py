"""Figures of a study directory (arms x replicates): tumour burden, clonal composition and
lattice snapshots here, the response and survival figures from :mod:`.response` and
:mod:`.survival`; ``study_figures`` writes them all (``STUDY_FIGURES``)."""
from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from simulator.output.runfile import open_run
from simulator.output.plotting.data import StudyData, _snapshot_indices, load_study, read_snapshot
from simulator.output.plotting.lattice import (KIND_COLOURS, _kind_legend_handles, _show_rgb,
                                        _snapshot_rgb, _title_day)
from simulator.output.plotting.markers import (_drugs_in, _headroom, _headroom_fraction, mark_doses,
                                        mark_treatment_start)
from simulator.output.plotting.response import plot_spider, plot_study_waterfall, plot_swimmer
from simulator.output.plotting.style import (FORMATS, _STYLE, _arm_colours, _check_formats,
                                      _new_axes, _panel_axes, _save, _styled)
from simulator.output.plotting.survival import plot_study_kaplan_meier


def _nan_quantiles(data, qs):
    """Quantiles over axis 0 ignoring NaN, NaN (without warnings) where no value exists."""
    out = np.full((len(qs), data.shape[-1]), np.nan)
    ok = np.isfinite(data).any(axis=0)
    if ok.any():
        out[:, ok] = np.nanquantile(data[:, ok], qs, axis=0)
    return out


def _study_drugs(doses: dict) -> list[str]:
    """Every drug dosed in the study (fixes the drug -> marker order across arms)."""
    return _drugs_in([t for tables in doses.values() for t in tables])


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
    drugs = _study_drugs(doses)
    rows = 0
    for arm in study.arms:
        rows += mark_doses(ax, doses[arm], arm=arm, colour=colours[arm], drugs=drugs,
                           first_row=rows)
    _headroom(ax, rows)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Tumour burden by arm")
    return fig


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
    drugs = _study_drugs(doses)
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
    headroom = _headroom_fraction(max(dose_rows)) if max(dose_rows) else 0.0
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
                row = [read_snapshot(path, i) for i in
                       _snapshot_indices(available, days, study.treatment_start_day)]
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
            rgb, kinds = _snapshot_rgb(snap)
            present.update(kinds)
            clones |= snap["clone"] is not None
            _show_rgb(axis, rgb, spacing)
            _title_day(axis, snap["day"], study.treatment_start_day)
            if j == 0:
                axis.set_ylabel(f"{arm}\ny (mm)")
            if i == n_rows - 1:
                axis.set_xlabel("x (mm)")
    fig.legend(handles=_kind_legend_handles(present, clones), loc="outside right upper",
               title="cell kind")
    rep = "" if replicate is None else f" (replicate {replicate})"
    fig.suptitle(f"Lattice snapshots per arm{rep}; days relative to treatment start")
    return fig


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
