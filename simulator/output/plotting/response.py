"""Tumour response per replicate: spider, waterfall and swimmer plots.

Response conventions follow :mod:`simulator.analysis.endpoints`: the waterfall and spider plots show
the change of the equivalent diameter from baseline (RECIST's measure; D/D0 = (N/N0)^(1/d)
on a d-dimensional lattice), with the partial-response (-30%) and progression (+20%) lines.
The time axis of the spider and swimmer plots is days since treatment start.
"""
from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from simulator.output.plotting.data import StudyData
from simulator.output.plotting.style import _new_axes, _panel_axes, _styled

#: RECIST 1.1 thresholds on the diameter (as in ResponseCriteria's defaults).
PARTIAL_RESPONSE_DROP = 0.30
PROGRESSION_RISE = 0.20
RESPONSE_COLOURS = {"CR": "#08519c", "PR": "#6baed6", "SD": "#fdb863", "PD": "#d7301f",
                    "NE": "#bdbdbd"}
RESPONSE_LABELS = {"CR": "complete response", "PR": "partial response",
                   "SD": "stable disease", "PD": "progressive disease", "NE": "not evaluable"}
_REFERENCE_STYLE = dict(color="0.3", ls=":", lw=0.8)


def _burden_baseline_index(time_days, start) -> int:
    return max(0, int(np.searchsorted(time_days, start + 1e-6, side="right") - 1))


def _diameter_change(cells, baseline, ndim):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * (np.power(cells / baseline, 1.0 / ndim) - 1.0)


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
    for arm, axis in zip(study.arms, axes):
        rows = study.rows(arm)
        plot_waterfall(ep["best_response"][rows], ep["response_class"][rows], ax=axis,
                       title=f"{arm} (n={len(rows)})", reference_labels=False,
                       ylabel="best change in equivalent diameter (%)")
        if axis is not axes[0]:
            axis.set_ylabel("")
    present = set(ep["response_class"])
    fig.legend(handles=[Patch(color=RESPONSE_COLOURS[c], label=f"{c} ({RESPONSE_LABELS[c]})")
                        for c in RESPONSE_COLOURS if c in present] + [_reference_handle()],
               loc="outside right upper", title="best overall response")
    fig.suptitle("Waterfall plot of best response")
    return fig


# above this many replicates in all, one panel per arm: a single column of 900 bars (a
# 15-arm x 60-replicate study) is unreadable at any figure height
SWIMMER_ONE_PANEL_ROWS = 60


@_styled
def plot_swimmer(study: StudyData, *, ax=None):
    """Per replicate: a bar to the end of follow-up coloured by best response, markers at
    the first response and at progression, an arrow when the response is ongoing at the
    end. Within an arm the bars are sorted by follow-up, longest on top (the clinical
    convention). Up to SWIMMER_ONE_PANEL_ROWS replicates in all (or when the caller gives
    one Axes) the arms are groups of one panel; above it (or given a sequence of Axes, one
    per arm) each arm gets its own panel, the panels sharing the time axis."""
    ep = study.endpoints
    arms = [arm for arm in study.arms if len(study.rows(arm))]
    follow_all = np.nan_to_num(ep["follow_up_days"].astype(float), nan=0.0)
    span = float(follow_all.max()) if follow_all.size and follow_all.max() > 0 else 1.0
    by_arm = [sorted(study.rows(arm), key=lambda i: (-follow_all[i], i)) for arm in arms]
    n = sum(len(rows) for rows in by_arm)
    one_axes = ax is not None and hasattr(ax, "figure")
    if one_axes or (ax is None and n <= SWIMMER_ONE_PANEL_ROWS):
        fig, ax = _new_axes((6.5, min(1.4 + 0.13 * n, 40.0)), ax)
        order = [i for rows in by_arm for i in rows]
        _swimmer_bars(ax, ep, order, follow_all, span, 4.5 if n <= 40 else 3.2)
        edges, start, ticks = [], 0, []
        for rows in by_arm:
            ticks.append(n - 1 - (start + (len(rows) - 1) / 2))
            start += len(rows)
            edges.append(n - start - 0.5)
        for e in edges[:-1]:
            ax.axhline(e, color="0.5", lw=0.6)
        ax.set_yticks(ticks, arms)
        ax.tick_params(axis="y", length=0)
        ax.set_title("Swimmer plot: follow-up, response and progression per replicate")
        legend_ax, axes = ax, [ax]
    else:
        tallest = max(len(rows) for rows in by_arm)
        fig, axes = _panel_axes(len(arms), ax, ncols=min(len(arms), 4),
                                panel_size=(3.4, 0.9 + 0.055 * tallest), sharex=True,
                                sharey=False, extra_height=0.4)
        for arm, rows, axis in zip(arms, by_arm, axes):
            _swimmer_bars(axis, ep, rows, follow_all, span, 2.6)
            axis.set_yticks([])
            axis.set_ylim(-0.7, tallest - 0.3)
            axis.set_title(f"{arm} (n={len(rows)})", fontsize="small")
            axis.set_xlabel("")
        fig.supxlabel("days since treatment start")
        fig.suptitle("Swimmer plot: follow-up, response and progression per replicate "
                     "(each arm sorted by follow-up)")
        legend_ax = axes[0]
    classes = {str(c) for c in ep["response_class"]}
    handles = [Patch(color=RESPONSE_COLOURS[c], label=c) for c in RESPONSE_COLOURS if c in classes]
    handles += legend_ax.get_legend_handles_labels()[0]
    if len(axes) == 1:
        legend_ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        fig.legend(handles=handles, loc="outside right upper")
    return fig


def _swimmer_bars(ax, ep, order, follow_all, span, ms):
    """Bars and markers for the replicates ``order``, top to bottom."""
    n = len(order)
    y = np.arange(n)[::-1]
    follow = follow_all[order]
    classes = [str(ep["response_class"][i]) for i in order]
    ax.barh(y, follow, height=0.75, color=[RESPONSE_COLOURS.get(c, "0.5") for c in classes],
            edgecolor="none", gid="swimmer-bars")
    ttr = ep["time_to_response_days"][order].astype(float)
    ttp = ep["time_to_progression_days"][order].astype(float)
    ongoing = ep["response_ongoing"][order].astype(bool)
    ax.plot(ttr, y, ls="none", marker="^", ms=ms, mfc="#1b7837", mec="k", mew=0.4,
            label="response (first PR/CR scan)", gid="swimmer-response")
    ax.plot(ttp, y, ls="none", marker="X", ms=ms + 0.5, mfc="k", mec="white", mew=0.3,
            label="progression", gid="swimmer-progression")
    ax.plot(follow[ongoing] + 0.012 * span, y[ongoing], ls="none", marker=">", ms=ms,
            color="k", label="response ongoing", gid="swimmer-ongoing")
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(0, span * 1.05)
    ax.set_xlabel("days since treatment start")
