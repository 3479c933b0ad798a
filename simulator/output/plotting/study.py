"""Figures of a study directory (arms x replicates): tumour burden, clonal composition and
lattice snapshots here, the response and survival figures from :mod:`.response` and
:mod:`.survival`; ``study_figures`` writes them all (``STUDY_FIGURES``).

Outcomes of an arm are often bimodal (some replicates relapse, some are cleared), so no
figure summarises an arm by one median: replicates are drawn individually and grouped by
outcome (:func:`outcome_groups`), medians are taken within a group, shares per replicate
before any summary, and doses sit on their own strip, not on the cell axis."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from simulator.output.runfile import open_run
from simulator.output.plotting.data import StudyData, _snapshot_indices, load_study, read_snapshot
from simulator.output.plotting.lattice import (_kind_legend_handles, _show_rgb,
                                        _snapshot_rgb, _title_day)
from simulator.output.plotting.markers import (_TREATMENT_START_STYLE, _drugs_in,
                                               mark_treatment_start)
from simulator.output.plotting.response import (SWIMMER_ONE_PANEL_ROWS, plot_spider,
                                                plot_study_waterfall, plot_swimmer)
from simulator.output.plotting.style import FORMATS, _STYLE, _check_formats, _save, _styled
from simulator.output.plotting.survival import plot_study_kaplan_meier


#: Outcome groups of a replicate (colour-blind-safe, Okabe & Ito 2008), from its endpoints.
OUTCOME_COLOURS = {"progressed": "#D55E00", "responding": "#0072B2",
                   "no response": "#7f7f7f"}
OUTCOME_LABELS = {"progressed": "progressed (relapse or growth)",
                  "responding": "responded, no progression",
                  "no response": "no objective response, no progression"}
#: A group's median is drawn only with at least this many replicates in the group.
MIN_GROUP_FOR_MEDIAN = 3


def outcome_groups(study: StudyData, arm: str) -> dict[int, str]:
    """Replicate -> outcome group: "progressed" (a PD scan), else "responding" (objective
    response), else "no response". Medians are taken within a group, never across the
    bimodal mix of an arm."""
    ep = study.endpoints
    out = {}
    for i in study.rows(arm):
        r = int(ep["replicate"][i])
        if bool(ep["progression_observed"][i]):
            out[r] = "progressed"
        elif bool(ep["objective_response"][i]):
            out[r] = "responding"
        else:
            out[r] = "no response"
    return out


def _study_drugs(doses: dict) -> list[str]:
    """Every drug dosed in the study (fixes the drug -> marker order across arms)."""
    return _drugs_in([t for tables in doses.values() for t in tables])


def _arm_grid(study: StudyData, ax, *, strips: bool, panel=(3.4, 2.3)):
    """One panel per arm (2 columns), each with a thin dose strip beneath it when
    ``strips``; returns (fig, [(panel axes, strip axes or None)])."""
    n = len(study.arms)
    if ax is not None:
        axes = list(np.ravel(ax))
        fig = axes[0].figure
        step = 2 if strips else 1
        return fig, [(axes[k * step], axes[k * step + 1] if strips else None)
                     for k in range(n)]
    ncols = min(n, 2)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(panel[0] * ncols + 2.4, (panel[1] + (0.55 if strips else 0))
                          * nrows + 0.6), layout="constrained")
    ratios = [5, 1] * nrows if strips else [1] * nrows
    grid = fig.add_gridspec(len(ratios), ncols, height_ratios=ratios)
    out, first = [], None
    for k in range(n):
        r, c = divmod(k, ncols)
        row = r * (2 if strips else 1)
        main = fig.add_subplot(grid[row, c], sharex=first, sharey=first)
        first = first or main
        strip = fig.add_subplot(grid[row + 1, c], sharex=first) if strips else None
        out.append((main, strip))
    return fig, out


def _dose_strip(ax, tables, drugs, colour="0.25"):
    """Dose days on their own thin axes: one lane per drug given (named on the left),
    marker opacity = share of replicates dosed that day."""
    given = [d for d in drugs if any((t["drug"] == d).any() for t in tables if len(t))]
    for spine in ("top", "right", "left"):
        ax.spines[spine].set_visible(False)
    ax.tick_params(axis="y", length=0, labelsize=6.5)
    if not given:
        ax.set_yticks([])
        ax.text(0.01, 0.5, "no doses", transform=ax.transAxes, fontsize=6.5, color="0.45",
                va="center")
        return
    for lane, drug in enumerate(given):
        per_run = [np.unique(np.round(t["day"][t["drug"] == drug], 6)) for t in tables]
        days, counts = np.unique(np.concatenate(per_run), return_counts=True)
        rgba = np.tile(matplotlib.colors.to_rgba(colour), (len(days), 1))
        rgba[:, 3] = 0.25 + 0.75 * counts / max(len(tables), 1)
        ax.scatter(days, np.full(len(days), lane), s=9, marker="|", c=rgba, lw=0.9,
                   gid="dose-markers")
    ax.set_yticks(range(len(given)), [f"{d} dose" for d in given])
    ax.set_ylim(-0.7, len(given) - 0.3)


def _group_median(t, data, members):
    """Median of the group's trajectories, only where every member has a value."""
    rows = data[members]
    ok = np.isfinite(rows).all(axis=0)
    med = np.full(t.shape, np.nan)
    if ok.any():
        med[ok] = np.median(rows[:, ok], axis=0)
    return med


@_styled
def plot_burden(study: StudyData, *, series: str = "tumor_cells", ax=None):
    """Tumour burden per arm (one panel each, shared axes): every replicate's trajectory
    (thin), coloured by its outcome group (progressed / responded / neither), and each
    group's median (bold) where the group has >= MIN_GROUP_FOR_MEDIAN replicates — never a
    median across the mix of outcomes, which no replicate follows. Dose days on a strip
    beneath each panel, the treatment start dashed."""
    fig, panels = _arm_grid(study, ax, strips=True)
    t, data = study.time_days, study.series[series]
    doses = study.doses()
    drugs = _study_drugs(doses)
    seen = {}
    for a, (arm, (axis, strip)) in enumerate(zip(study.arms, panels)):
        groups = outcome_groups(study, arm)
        counts = {g: sum(1 for v in groups.values() if v == g) for g in OUTCOME_COLOURS}
        for r, g in sorted(groups.items()):
            axis.plot(t, data[a, r], color=OUTCOME_COLOURS[g], lw=0.6, alpha=0.45,
                      gid="replicate-trajectory")
            seen.setdefault(g, False)
        for g, n in counts.items():
            if n >= MIN_GROUP_FOR_MEDIAN:
                members = [r for r, v in groups.items() if v == g]
                axis.plot(t, _group_median(t, data[a], members), color=OUTCOME_COLOURS[g],
                          lw=2.0, gid="group-median")
                seen[g] = True
        mark_treatment_start(axis, study.treatment_start_day, label=None)
        summary = ", ".join(f"{n} {g}" for g, n in counts.items() if n)
        axis.set_title(f"{arm} (n={len(groups)}: {summary})", fontsize=7.5)
        axis.set_ylabel("tumour cells" if series == "tumor_cells"
                        else f"{series.replace('_', ' ')} (cells)")
        axis.set_ylim(bottom=0)
        axis.tick_params(labelbottom=False)
        _dose_strip(strip, doses[arm], drugs)
        strip.set_xlabel("time (days)")
        if len(t):
            axis.set_xlim(t[0], t[-1])
    handles = [Line2D([], [], color=OUTCOME_COLOURS[g], lw=0.8, alpha=0.6,
                      label=f"{OUTCOME_LABELS[g]}: replicates")
               for g in OUTCOME_COLOURS if g in seen]
    handles += [Line2D([], [], color=OUTCOME_COLOURS[g], lw=2.0,
                       label=f"{OUTCOME_LABELS[g]}: median (groups of >= "
                             f"{MIN_GROUP_FOR_MEDIAN})")
                for g in OUTCOME_COLOURS if seen.get(g)]
    handles.append(Line2D([], [], **_TREATMENT_START_STYLE, label="treatment start"))
    fig.legend(handles=handles, loc="outside lower center", ncols=2, title="outcome group")
    fig.suptitle("Tumour burden per replicate, by outcome group")
    return fig


@_styled
def plot_composition(study: StudyData, *, ax=None):
    """Clonal composition from per-replicate fractions: the resistant share of each
    replicate's tumour (resistant / all tumour cells; undefined once the tumour is gone),
    thin and coloured by outcome group, and the median share over the replicates that
    still have a tumour, drawn while at least half of them do."""
    fig, panels = _arm_grid(study, ax, strips=False)
    t = study.time_days
    total, res = study.series["tumor_cells"], study.series["tumor_resistant"]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, res / total, np.nan)
    seen = set()
    for a, (arm, (axis, _)) in enumerate(zip(study.arms, panels)):
        groups = outcome_groups(study, arm)
        reps = sorted(groups)
        for r in reps:
            axis.plot(t, share[a, r], color=OUTCOME_COLOURS[groups[r]], lw=0.6, alpha=0.5)
            seen.add(groups[r])
        if reps:
            block = share[a, reps]
            alive = np.isfinite(block).sum(axis=0)
            med = np.full(t.shape, np.nan)
            enough = alive >= max(1, len(reps) / 2)
            if enough.any():
                med[enough] = np.nanmedian(block[:, enough], axis=0)
            axis.plot(t, med, color="k", lw=1.8, gid="median-share")
        mark_treatment_start(axis, study.treatment_start_day, label=None)
        axis.set_title(f"{arm} (n={len(reps)})", fontsize=7.5)
        axis.set_ylim(-0.02, 1.02)
        axis.set_xlabel("time (days)")
        axis.set_ylabel("resistant share of tumour (1)")
        if len(t):
            axis.set_xlim(t[0], t[-1])
    handles = [Line2D([], [], color=OUTCOME_COLOURS[g], lw=0.8, label=OUTCOME_LABELS[g])
               for g in OUTCOME_COLOURS if g in seen]
    handles += [Line2D([], [], color="k", lw=1.8, label="median over replicates with a "
                                                         "tumour (>= half of them)"),
                Line2D([], [], **_TREATMENT_START_STYLE, label="treatment start")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, title="replicates")
    fig.suptitle("Clonal composition: resistant share of each replicate's tumour")
    return fig


def representatives(study: StudyData, arm: str) -> list[tuple[int, str]]:
    """Up to two replicates that show the arm's outcomes: one that progresses (the median
    time to progression among those that do) and one that responds without progressing
    (the deepest best response), else the one with the best response."""
    ep = study.endpoints
    rows = study.rows(arm)
    groups = outcome_groups(study, arm)
    out = []
    prog = [i for i in rows if groups[int(ep["replicate"][i])] == "progressed"]
    if prog:
        prog.sort(key=lambda i: float(ep["time_to_progression_days"][i]))
        out.append((int(ep["replicate"][prog[(len(prog) - 1) // 2]]), "progresses"))
    resp = [i for i in rows if groups[int(ep["replicate"][i])] == "responding"]
    if resp:
        best = min(resp, key=lambda i: float(np.nan_to_num(ep["best_response"][i], nan=9)))
        out.append((int(ep["replicate"][best]), "responds"))
    if not out and len(rows):
        rest = min(rows, key=lambda i: float(np.nan_to_num(ep["best_response"][i], nan=9)))
        out.append((int(ep["replicate"][rest]), "neither responds nor progresses"))
    return out


def _snapshot_days_from_start(available, start, nadir_day=math.nan) -> list[float]:
    """Treatment start (or the last snapshot before it), the replicate's nadir (midway
    when it has none after the start), the last snapshot."""
    at = available[available <= start + 1e-6]
    first = float(at[-1]) if len(at) else float(available[0])
    end = float(available[-1])
    middle = nadir_day if first < nadir_day < end else first + (end - first) / 2
    return [first, float(middle), end]


def _nadir_day(study: StudyData, arm: str, replicate: int) -> float:
    ep = study.endpoints
    for i in study.rows(arm):
        if int(ep["replicate"][i]) == replicate and "nadir_day" in ep:
            return float(ep["nadir_day"][i])
    return math.nan


@_styled
def plot_study_snapshots(study: StudyData, *, days=None, replicate: int | None = None, ax=None):
    """Lattice snapshots of representative replicates (rows: per arm, one that progresses
    and one that responds, see :func:`representatives`; or ``replicate`` in every arm) at
    ``days`` (columns; default per row: the treatment start, the replicate's nadir, the
    end)."""
    picks = []
    for arm in study.arms:
        chosen = ([(replicate, f"replicate {replicate}")] if replicate is not None
                  else representatives(study, arm))
        picks += [(arm, r, why) for r, why in chosen]
    frames, n_cols = [], 0
    for arm, r, why in picks:
        path = study.run_paths.get((arm, r))
        row, spacing = [], 20.0
        if path is not None:
            with open_run(path) as f:
                available = (f["snapshots/time_days"][()] if "snapshots/cell_type" in f
                             else np.zeros(0))
                spacing = float(f.attrs.get("spacing_um", 20.0))
            if len(available):
                wanted = days if days is not None else _snapshot_days_from_start(
                    available, study.treatment_start_day, _nadir_day(study, arm, r))
                row = [read_snapshot(path, i) for i in
                       _snapshot_indices(available, wanted, study.treatment_start_day)]
        frames.append((arm, r, why, row, spacing))
        n_cols = max(n_cols, len(row))
    n_rows = len(frames)
    if ax is None:
        if n_cols == 0:
            fig = Figure(figsize=(4, 2), layout="constrained")
            fig.text(0.5, 0.5, "no lattice snapshots in the run files", ha="center")
            return fig
        fig = Figure(figsize=(2.2 * n_cols + 2.6, 2.2 * n_rows + 0.6), layout="constrained")
        grid = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True, sharey=True)
    else:
        grid = np.asarray(ax, dtype=object).reshape(n_rows, -1)
        fig = grid[0, 0].figure
    present, clones = set(), False
    for i, (arm, r, why, row, spacing) in enumerate(frames):
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
                axis.set_ylabel(f"{arm}\nrep. {r}: {why}\ny (mm)", fontsize=7)
            if i == n_rows - 1:
                axis.set_xlabel("x (mm)")
    fig.legend(handles=_kind_legend_handles(present, clones), loc="outside right upper",
               title="cell kind")
    fig.suptitle("Representative replicates per arm (days from the treatment start)")
    return fig


#: One line per study figure, for the report.
STUDY_FIGURE_CAPTIONS = {
    "burden": "tumour cells over time, every replicate, coloured by outcome group; group "
              "medians; doses beneath each panel",
    "spider": "change of the equivalent diameter from baseline per replicate, by best "
              "response (RECIST lines at -30% and +20%)",
    "waterfall": "best change of the equivalent diameter per replicate, sorted",
    "swimmer": ("follow-up per replicate (each arm sorted by it; a panel per arm above "
                f"{SWIMMER_ONE_PANEL_ROWS} replicates) with response and progression times"),
    "kaplan_meier": "progression-free survival per arm, log-rank tests against the reference "
                    "arm",
    "composition": "resistant share of the tumour per replicate and its median",
    "snapshots": "lattices of a replicate that progresses and one that responds, per arm: "
                 "at the treatment start, at the replicate's nadir and at the end",
}


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
