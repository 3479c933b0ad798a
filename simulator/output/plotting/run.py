"""Figures of one run file: the tumour / immune time course with drug concentrations and
dose days, and the lattice snapshots with any recorded fields; ``run_figures`` writes both."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from simulator.output.plotting.data import RunData, _snapshot_indices, _text, load_run, read_snapshot
from simulator.output.plotting.lattice import (KIND_COLOURS, _kind_legend_handles, _show_frame,
                                        _show_rgb, _snapshot_rgb, _title_day)
from simulator.output.plotting.markers import _TREATMENT_START_STYLE, mark_treatment_start
from simulator.output.plotting.style import (FORMATS, _STYLE, _check_formats, _new_axes, _save,
                                      _styled)

_DRUG_COLOURS = ("#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#1f77b4")


def run_drug_colours(run: RunData):
    """The run's drug names (sorted) and a fixed colour per drug."""
    names = sorted(set(run.drugs) | set(run.doses["drug"]))
    return names, {name: _DRUG_COLOURS[k % len(_DRUG_COLOURS)] for k, name in enumerate(names)}


def given_drugs(run: RunData) -> list[str]:
    """Drugs actually given in the run: dosed (``/doses``) or with a non-zero plasma level.
    A scenario may declare drugs an arm never gives; those are not drawn."""
    dosed = set(run.doses["drug"]) if len(run.doses) else set()
    present = {n for n, c in run.drugs.items() if np.nanmax(np.abs(c), initial=0.0) > 0}
    return sorted(dosed | present)


def _daily_envelope(t, conc):
    """Per simulated day: mean, min and max of a concentration (a twice-daily oscillation
    over months would otherwise fill the panel as a solid band)."""
    day = np.floor(t[:len(conc)] + 1e-9)
    days, index = np.unique(day, return_inverse=True)
    counts = np.bincount(index)
    mean = np.bincount(index, weights=conc) / counts
    low = np.full(len(days), np.inf)
    high = np.full(len(days), -np.inf)
    np.minimum.at(low, index, conc)
    np.maximum.at(high, index, conc)
    return days + 0.5, mean, low, high


@_styled
def plot_run_timecourse(run: RunData, *, ax=None):
    """Stacked panels sharing time: tumour cells (total, sensitive, resistant); immune
    cells; plasma concentrations of the drugs given (own axis, mg/L: daily mean, band =
    daily trough to peak; log scale when they span more than two decades); dose days on
    their own strip. Treatment start dashed on every panel."""
    drugs = given_drugs(run)
    n_panels = 2 + bool(drugs)
    if ax is None:
        fig = Figure(figsize=(7.2, 2.0 + 1.6 * n_panels), layout="constrained")
        ratios = [3, 2] + ([2] if drugs else []) + [0.6 + 0.25 * max(len(drugs), 1)]
        axes = list(fig.subplots(len(ratios), 1, sharex=True, height_ratios=ratios))
    else:
        axes = list(np.ravel(ax))
        fig = axes[0].figure
    top, bottom, strip = axes[0], axes[1], axes[-1]
    conc_ax = axes[2] if drugs else None
    t, s = run.time_days, run.series
    top.plot(t, s["tumor_cells"], color="k", lw=2.0, label="all tumour cells")
    if "tumor_sensitive" in s:
        top.plot(t, s["tumor_sensitive"], color=KIND_COLOURS["tumor"], lw=1.2, label="sensitive")
    if "tumor_resistant" in s:
        top.plot(t, s["tumor_resistant"], color=KIND_COLOURS["tumor_resistant"], lw=1.2,
                 label="resistant")
    top.set_ylabel("tumour cells")
    top.set_ylim(bottom=0)
    immune = [("t_cells", "T cells", KIND_COLOURS["t_cell"], "-"),
              ("t_cells_core", "T cells (core)", KIND_COLOURS["t_cell"], "--"),
              ("t_cells_margin", "T cells (margin)", KIND_COLOURS["t_cell"], ":"),
              ("suppressive_cells", "suppressive cells", KIND_COLOURS["suppressive"], "-")]
    for name, label, colour, ls in immune:
        if name in s:
            bottom.plot(t, s[name], color=colour, ls=ls, lw=1.2, label=label)
    bottom.set_ylabel("immune cells")
    if not any(np.any(line.get_ydata()) for line in bottom.lines):
        bottom.text(0.5, 0.5, "no T cells or suppressive cells in this run", ha="center",
                    va="center", transform=bottom.transAxes, color="0.4")
        bottom.set_ylim(0, 1)
    bottom.set_ylim(bottom=0)
    _, drug_colours = run_drug_colours(run)
    if conc_ax is not None:
        peaks = []
        for name in drugs:
            conc = run.drugs.get(name)
            if conc is None:
                continue
            mid, mean, low, high = _daily_envelope(t, conc)
            colour = drug_colours[name]
            conc_ax.fill_between(mid, low, high, color=colour, alpha=0.25, lw=0)
            conc_ax.plot(mid, mean, color=colour, lw=1.1, label=name)
            peaks.append(float(np.nanmax(high)) if len(high) else 0.0)
        positive = [p for p in peaks if p > 0]
        if len(positive) > 1 and max(positive) / min(positive) > 100:
            conc_ax.set_yscale("log")
        else:
            conc_ax.set_ylim(bottom=0)
        conc_ax.set_ylabel("plasma (mg/L)")
        conc_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0),
                       title="daily mean;\nband: trough-peak", title_fontsize=7)
    tables = [run.doses] if len(run.doses) else []
    _dose_lanes(strip, tables, drugs, drug_colours)
    strip.set_xlabel("time (days)")
    for axis in axes[:-1]:
        mark_treatment_start(axis, run.treatment_start_day, label=None)
    if len(t):
        top.set_xlim(t[0], t[-1])
    extra = [Line2D([], [], **_TREATMENT_START_STYLE, label="treatment start")] \
        if run.treatment_start_day is not None else []
    top.legend(handles=top.get_legend_handles_labels()[0] + extra, loc="upper left",
               bbox_to_anchor=(1.01, 1.0))
    if bottom.lines:
        bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    name = f"{run.arm} replicate {run.replicate}" if run.arm else run.path.name
    top.set_title(f"Tumour and immune cells over time: {name}")
    return fig


def _dose_lanes(ax, tables, drugs, colours):
    """Dose days on their own axes: one lane per drug given."""
    for spine in ("top", "right", "left"):
        ax.spines[spine].set_visible(False)
    ax.tick_params(axis="y", length=0, labelsize=6.5)
    if not drugs or not tables:
        ax.set_yticks([])
        ax.text(0.01, 0.5, "no doses given", transform=ax.transAxes, fontsize=7,
                color="0.45", va="center")
        return
    for lane, drug in enumerate(drugs):
        days = np.unique(np.concatenate([t["day"][t["drug"] == drug] for t in tables]))
        ax.scatter(days, np.full(len(days), lane), s=10, marker="|", lw=0.9,
                   color=colours.get(drug, "0.25"), gid="dose-markers", label=f"{drug} dose")
    ax.set_yticks(range(len(drugs)), [f"{d} dose" for d in drugs])
    ax.set_ylim(-0.7, len(drugs) - 0.3)


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
    idx = list(dict.fromkeys(_snapshot_indices(run.snapshot_days, days,
                                               run.treatment_start_day)))
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
        rgb, kinds = _snapshot_rgb(snap)
        present.update(kinds)
        _show_rgb(grid[0, j], rgb, run.spacing_um)
        _title_day(grid[0, j], snap["day"], start)
        for k, name in enumerate(field_names):
            axis = grid[1 + k, j]
            if name not in snap["fields"]:
                axis.set_visible(False)
                continue
            values, units = snap["fields"][name]
            vmin, vmax = limits[name]
            images[name] = (_show_frame(axis, values, run.spacing_um, snap["cell_type"].shape,
                                        cmap="viridis", vmin=vmin, vmax=vmax),
                            _text(units))
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
