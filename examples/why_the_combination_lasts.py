"""Why the combination lasts: targeted therapy + anti-PD-1, with its immune channels switched
off one at a time.

A student example for tumorsim. It runs eight arms of the melanoma-like scenario library
side by side, with common random numbers (replicate r of every arm starts from the very same
pre-treatment tumour, so arms differ only where treatment acts):

    combination_concurrent             BRAF inhibitor + anti-PD-1 from the start (reference)
    targeted_continuous                BRAF inhibitor alone
    anti_pd1                           anti-PD-1 alone
    combination_no_antigenicity        the combination, BRAF inhibitor's antigenicity channel off
    combination_no_infiltration        ... its infiltration channel off
    combination_no_microenvironment    ... its microenvironment channel off
    combination_no_immune_channels     ... all three off: only additive tumour killing is left
    combination_t_cell_toxic           the combination plus a MEK inhibitor that harms T cells

and draws four figures into OUTDIR:

    burden.png              tumour cells over time per arm (median and interquartile band)
    progression_free.png    Kaplan-Meier progression-free curves, log-rank vs the combination
    t_cells_core_margin.png T-cell density in the tumour core and at its invasive margin
    durable_fraction.png    share of replicates with a durable response per arm, and the
                            paired difference from the combination

Run it from the repository root (after ``pip install -e .``)::

    python examples/why_the_combination_lasts.py               # ~6 min on 2 cores
    python examples/why_the_combination_lasts.py --quick       # ~1 min: tiny lattice
    python examples/why_the_combination_lasts.py --replicates 60 --workers 8

Run time: the defaults (20 replicates on the library's own lattice and clinical horizon,
2 worker processes) take about 6 minutes on a quiet 2-core machine once the Numba kernels
are compiled (the very first tumorsim run of a checkout compiles them: add about a
minute). ``--quick`` swaps in an 80 x 80 lattice and two years of follow-up, for tests
and a first look; its numbers are not meant to be read.

What the calibrated library shows (``scenarios/melanoma.toml``, fitted to the monotherapy
trials; measured at the defaults, 20 replicates, seed 1): the combination lasts longer
than either drug alone (net benefit in progression-free time +0.90 against the BRAF
inhibitor, +0.75 against anti-PD-1, p < 0.0001 each; 95% of its patients respond
durably). It does **not** show the last two lessons: switching off the BRAF inhibitor's
three immune channels (+0.20, 95% CI -0.00 to +0.42, p = 0.125) or adding a T-cell-toxic
MEK inhibitor (+0.05, p = 1.0) leaves the combination about as durable, because in the
calibrated model the combination's durability is additive killing: the BRAF inhibitor
clears the sensitive cells and the T cells, released by anti-PD-1, clear the few resistant
ones (a lesion starts with at least 23), with or without the channels' help. Stronger
channels (antigenicity up to 1.5, infiltration 1.0-3.0) do not change that, with T cells
at full strength, weakened to 0.04, 0.03 or 0.015 kills/day, or recruited at a quarter of
the rate (-0.05 to +0.15, none significant; 20 replicates each). Both lessons show under
named parameters (SHOWN_WITH in the script; measured, 20 replicates, seed 1):

- **the channels**, in a suppressive microenvironment (10 times the suppressive-cell
  recruitment, suppression up to 95%, T cells exhausted by it at 1/day): +0.50 (95% CI
  +0.24 to +0.70), p = 0.002. Anti-PD-1 alone then gives 10% responses; without its
  channels the combination keeps 70% of its patients durably, with them 95%, and the
  microenvironment channel carries most of it (without it alone: 70% durable, 60%
  progression-free at five years, against 45% with all three off and 90% with none): the
  BRAF inhibitor's relief of the suppression is what lets the T cells finish the remnant;
- **the T-cell toxicity**, with weak T cells (0.015/day) and a MEK inhibitor that only
  harms them (toxicity 0.9, no kill of resistant cells): +0.55 (+0.29 to +0.74),
  p = 0.001.

The uncalibrated, time-compressed library (before 2026-12-05:
T-cell kill 0.7/day, 5% resistant cells, division 0.5/day) supported both (+0.65 and +0.52
over 60 held-out replicates). The "Lessons" lines print each number with its interval and
test, and the figures show the same.

The runs are kept in OUTDIR/study (the layout of ``tumorsim compare``), so re-running the
script only redraws the figures, and ``tumorsim plot OUTDIR/study`` draws the standard study
figures from the same runs. Changing the scenario files or the options starts the study
afresh.

The numbers depend on the calibration of ``scenarios/melanoma.toml``: read them off the
figures and off the "Lessons" lines the script prints (each lesson's number with its 95%
interval and a sign test; whether the model supports it at these parameters, and if not,
what the mechanism needs).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import shutil
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from simulator.output import plotting
from simulator import scenario as scenario_mod
from simulator.output.runfile import read_timeseries
from simulator.schema import ScenarioError
from simulator.study import claims
from simulator.study.comparison import compare, load_arms

NAME = "why_the_combination_lasts"

# ---------------------------------------------------------------------------------------
# The biology (Liu et al. 2017 Oncotarget 8:86969, "Harness the synergy between targeted
# therapy and immunotherapy"):
#
# * Targeted therapy alone (BRAF inhibitor): fast, deep shrinkage of the drug-sensitive
#   cells, then relapse from resistant clones (see why_targeted_therapy_relapses.py).
# * Checkpoint blockade alone (anti-PD-1): T cells are already there but PD-L1 on the
#   tumour switches them off; anti-PD-1 lifts that brake (`checkpoint_blockade`) and slows
#   exhaustion (`exhaustion_relief`). T cells kill sensitive and resistant cells alike, so
#   a response, when it comes, can last; but it is slower and often partial.
# * The combination can give both: the drug shrinks the tumour fast, and the T cells mop
#   up the resistant cells the drug cannot touch. It does so not only by adding two kinds of
#   killing: the review lists three ways a targeted agent helps the immune response, and
#   each is a separate "channel" of the BRAF inhibitor in scenarios/melanoma.toml:
#
#   1. ANTIGENICITY (`drugs.braf_inhibitor.antigenicity`). MAPK inhibition raises MHC-I and
#      melanocyte-differentiation antigens on sensitive tumour cells (Frederick 2013), so a
#      T cell that meets one kills it more often.
#      -> combination_no_antigenicity sets its emax to 0.
#   2. INFILTRATION (`drugs.braf_inhibitor.infiltration`). Tumours on BRAF inhibitors hold
#      more CD8 T cells (Wilmott 2012): more T cells are recruited and they get into the
#      tumour core, not only its margin. Watch t_cells_core_margin.png.
#      -> combination_no_infiltration sets its emax to 0.
#   3. MICROENVIRONMENT (`drugs.braf_inhibitor.microenvironment`). Fewer regulatory T cells
#      and myeloid suppressor cells, less IL-6 / IL-10 (Khalili 2012): less local
#      suppression of the T cells that are there.
#      -> combination_no_microenvironment sets its emax to 0.
#   combination_no_immune_channels switches all three off: what is left is the drug's own
#   killing of sensitive cells plus what the anti-PD-1-released T cells do unaided, with no
#   help between the two. The gap between it and the full combination is the synergy.
#
# * Not every targeted agent is immune-friendly: MEK inhibitors block T-cell activation
#   (Vella 2014). combination_t_cell_toxic adds a MEK inhibitor whose
#   `t_cell_toxicity` channel kills T cells: it kills tumour cells too, so the early
#   response may be as good or better, but does durability suffer?
#
# "Durable response" follows the clinical definition the endpoints module uses: an objective
# response (>= 30% smaller diameter) lasting at least `endpoints.durable_min_days` (by
# default 180 days, Andtbacka 2015). Arms share their replicates' starting tumours, so the difference between
# two arms is a paired comparison (Newcombe interval and exact McNemar p in DIR/arms.csv).
# ---------------------------------------------------------------------------------------

REFERENCE = "combination_concurrent"
ARMS = [REFERENCE, "targeted_continuous", "anti_pd1",
        "combination_no_antigenicity", "combination_no_infiltration",
        "combination_no_microenvironment", "combination_no_immune_channels",
        "combination_t_cell_toxic"]
#: Colour and line style per arm: the three regimens solid, the ablations dashed.
STYLE = {
    "combination_concurrent": dict(color="k", ls="-", lw=2.2),
    "targeted_continuous": dict(color="#d62728", ls="-", lw=1.5),
    "anti_pd1": dict(color="#2ca02c", ls="-", lw=1.5),
    "combination_no_antigenicity": dict(color="#1f77b4", ls="--", lw=1.4),
    "combination_no_infiltration": dict(color="#17becf", ls="--", lw=1.4),
    "combination_no_microenvironment": dict(color="#9467bd", ls="--", lw=1.4),
    "combination_no_immune_channels": dict(color="#7f7f7f", ls="--", lw=1.4),
    "combination_t_cell_toxic": dict(color="#ff7f0e", ls=":", lw=1.8),
}
REGIMENS = ["targeted_continuous", "anti_pd1", REFERENCE]
ABLATIONS = [REFERENCE, "combination_no_antigenicity", "combination_no_infiltration",
             "combination_no_microenvironment", "combination_no_immune_channels",
             "combination_t_cell_toxic"]

#: --quick: a tiny lattice and two years of follow-up, so a test runs the script in a minute.
QUICK_OVERRIDES = [
    "simulation.dimensions=[80,80]",
    "simulation.duration_days=780",        # two years of follow-up
]
DEFAULT_REPLICATES, QUICK_REPLICATES = 20, 4
#: The lessons as tested statements (the statistics of docs/calibration.md's claims): each
#: a paired comparison of progression-free time (net benefit = (wins - losses) / pairs,
#: sign test); supported only when p < 0.05 with the combination ahead.
LESSONS = tuple(
    claims.Claim(name, (claims.Comparison(f"progression-free time, combination vs {other}",
                                          "times", REFERENCE, "progression_free", +1, other),))
    for name, other in (
        ("The combination lasts longer than targeted therapy alone", "targeted_continuous"),
        ("The combination lasts longer than anti-PD-1 alone", "anti_pd1"),
        ("The targeted drug's immune channels make it last", "combination_no_immune_channels"),
        ("A T-cell-toxic partner costs durability", "combination_t_cell_toxic")))
#: Lessons the calibrated library does not support (measured at the defaults; the slow test
#: checks that they still do not hold, so that this text cannot go stale silently).
NOT_SUPPORTED_AT_DEFAULTS = {
    "The targeted drug's immune channels make it last": "+0.20, p = 0.125 over 20 pairs",
    "A T-cell-toxic partner costs durability": "+0.05, p = 1.0 over 20 pairs",
}
#: Parameters under which the model shows a lesson the calibrated library does not
#: (measured, 20 replicates, seed 1). The channels: a suppressive microenvironment, where the
#: BRAF inhibitor's relief of suppression lets the T cells finish the resistant remnant
#: (+0.50, 95% CI +0.24 to +0.70, p = 0.002). The toxicity: weak T cells (anti-PD-1 alone:
#: 10% responses) and a partner that only harms them (+0.55, +0.29 to +0.74, p = 0.001).
SHOWN_WITH = {
    "The targeted drug's immune channels make it last": [
        "suppressive.recruitment_rate_per_day_per_1000_tumor_cells=100",
        "suppressive.suppression_max=0.95", "t_cells.exhaustion_rate_per_day_suppression=1.0"],
    "A T-cell-toxic partner costs durability": [
        "t_cells.kill_rate_per_day=0.015", "drugs.braf_inhibitor.antigenicity.emax=1.5",
        "drugs.braf_inhibitor.infiltration.emax=1.0",
        "drugs.mek_inhibitor.t_cell_toxicity.emax=0.9",
        "drugs.mek_inhibitor.resistant_response=0"],
}


def _run_with(lesson: str) -> str:
    return " ".join(f"--override {o}" for o in SHOWN_WITH[lesson])


#: What to try when the model does not support a lesson at the defaults (the mechanism).
HINTS = {
    "The combination lasts longer than targeted therapy alone":
        "the T cells must reach and kill the resistant cells the drug spares: raise "
        "t_cells.kill_rate_per_day or lower t_cells.pd1_max_inhibition",
    "The combination lasts longer than anti-PD-1 alone":
        "the drug must shrink the tumour before resistance takes over: raise "
        "drugs.braf_inhibitor.kill.emax or lower initial.resistant_fraction",
    "The targeted drug's immune channels make it last":
        "not at the calibrated library's parameters: there the combination's durability is "
        "additive killing (the drug clears the sensitive cells, the released T cells the few "
        "resistant ones), with or without the channels, and stronger antigenicity and "
        "infiltration channels do not change that. It shows in a suppressive "
        "microenvironment, where the BRAF inhibitor's relief of the suppression lets the T "
        "cells finish the remnant (SHOWN_WITH: +0.50, p = 0.002 over 20 pairs): run with "
        + _run_with("The targeted drug's immune channels make it last"),
    "A T-cell-toxic partner costs durability":
        "not at the calibrated library's parameters: the MEK inhibitor's extra kill of the "
        "resistant cells (drugs.mek_inhibitor.resistant_response) offsets its toxicity, and "
        "a toxicity of 0.5 gave +0.05 too. It shows with weak T cells and a partner that "
        "only harms them (SHOWN_WITH: +0.55, p = 0.001 over 20 pairs): run with "
        + _run_with("A T-cell-toxic partner costs durability"),
}
#: Window (days after the treatment start) over which T-cell densities are averaged: the
#: first eight weeks, while the targeted drug's immune effects are at work and most
#: tumours still have a core and a margin to measure.
#: Core / margin densities are averaged only while the tumour has at least this many cells.
MIN_TUMOUR_CELLS = 100
T_CELL_WINDOW_DAYS = 56.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python examples/{NAME}.py",
        description="Why the combination lasts: targeted therapy + anti-PD-1 and its immune "
                    "channels ablated one at a time.")
    parser.add_argument("--replicates", type=int, default=None,
                        help=f"replicates per arm (default {DEFAULT_REPLICATES}; "
                             f"{QUICK_REPLICATES} with --quick)")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes (default 2, one Numba thread each)")
    parser.add_argument("-o", "--outdir", type=Path, default=None,
                        help=f"output directory (default examples-output/{NAME}, "
                             f"or examples-output/{NAME}-quick with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny lattice and short horizon (seconds; for tests)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="scenario override in TOML syntax, as tumorsim's --set "
                             "(repeatable), e.g. drugs.anti_pd1.checkpoint_blockade.emax=0.5")
    args = parser.parse_args(argv)
    if args.replicates is None:
        args.replicates = QUICK_REPLICATES if args.quick else DEFAULT_REPLICATES
    if args.replicates < 1 or args.workers < 1:
        parser.error("--replicates and --workers must be at least 1")
    if args.outdir is None:
        args.outdir = Path("examples-output") / (NAME + ("-quick" if args.quick else ""))
    return args


# ------------------------------------------------------------------------ the study
def run_study(study_dir: Path, replicates: int, workers: int, overrides: list[str]):
    """The paired comparison (``tumorsim compare`` from Python). The first arm is the
    reference of DIR/arms.csv and of the log-rank tests. Runs already on disk are reused;
    a study made from other scenario files or options is started afresh."""
    arm_paths = [scenario_mod.library_dir() / f"{arm}.toml" for arm in ARMS]
    _start_afresh_if_changed(study_dir, arm_paths, overrides)
    report = compare(arm_paths, replicates, study_dir, workers=workers, overrides=overrides,
                     figures=False)
    if report.failed:
        lines = "\n".join(f"  {o.arm} replicate {o.replicate}: {o.error}" for o in report.failed)
        raise SystemExit(f"{len(report.failed)} run(s) failed:\n{lines}")
    return plotting.load_study(study_dir)


def _start_afresh_if_changed(study_dir: Path, arm_paths, overrides):
    """The study directory resumes finished runs; make sure they were made from the same
    resolved scenarios (a stamp of their text), else remove them."""
    arms = load_arms(arm_paths, overrides)
    stamp = hashlib.sha256(json.dumps([[a.name, a.toml] for a in arms]).encode()).hexdigest()
    stamp_file = study_dir / "example-stamp.txt"
    if study_dir.exists() and (not stamp_file.exists() or stamp_file.read_text() != stamp):
        shutil.rmtree(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(stamp)


def _quantiles(data: np.ndarray, qs=(0.25, 0.5, 0.75)) -> np.ndarray:
    """Quantiles across replicates (axis 0), NaN where no replicate has a value."""
    out = np.full((len(qs), data.shape[-1]), np.nan)
    ok = np.isfinite(data).any(axis=0)
    if ok.any():
        out[:, ok] = np.nanquantile(data[:, ok], qs, axis=0)
    return out


# ------------------------------------------------------------------ figure 1: burden
def plot_burden(study, *, ax=None) -> Figure:
    """Two panels of tumour cells (median, interquartile band) after the treatment start:
    the three regimens, and the combination with each ablation."""
    if ax is None:
        fig = Figure(figsize=(11.0, 3.9), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
    else:
        axes = list(np.ravel(ax))
        fig = axes[0].figure
    start = study.treatment_start_day
    t = study.time_days - start
    after = t >= 0
    cells = study.series["tumor_cells"]
    titles = ("Targeted alone, anti-PD-1 alone, both",
              "The combination with one immune channel switched off")
    for axis, group, title in zip(axes, (REGIMENS, ABLATIONS), titles):
        for arm in group:
            a = study.arms.index(arm)
            q25, q50, q75 = _quantiles(cells[a][:, after])
            axis.fill_between(t[after], q25, q75, color=STYLE[arm]["color"], alpha=0.08, lw=0)
            axis.plot(t[after], q50, label=arm, **STYLE[arm])
            # each replicate faintly: outcomes split (cured or not), which a median hides
            axis.plot(t[after], cells[a][:, after].T, color=STYLE[arm]["color"], lw=0.4,
                      alpha=0.3)
        axis.set_yscale("symlog", linthresh=10)     # a cure (0 cells) stays on the axis
        axis.set_ylim(bottom=0)
        axis.set_xlim(0, t[-1])
        axis.set_xlabel("days since treatment start")
        axis.set_title(title)
        axis.legend(loc="lower left", fontsize=7)
    axes[0].set_ylabel("tumour cells (median, IQR)")
    fig.suptitle(f"Tumour burden, {study.replicates} paired replicates per arm")
    return fig


# ----------------------------------------------------------- figure 2: Kaplan-Meier
def kaplan_meier(durations, progressed):
    """The product-limit estimate: at each day on which some replicates progress, the
    progression-free probability is multiplied by (1 - progressed / still at risk).
    Replicates followed to the end without progression are censored: they leave the risk
    set without an event."""
    durations = np.asarray(durations, float)
    progressed = np.asarray(progressed, bool)
    times, survival, s = [0.0], [1.0], 1.0
    for day in np.unique(durations[progressed]):
        at_risk = np.count_nonzero(durations >= day)
        s *= 1.0 - np.count_nonzero(progressed & (durations == day)) / at_risk
        times.append(float(day))
        survival.append(s)
    return np.array(times), np.array(survival)


def plot_progression_free(study, *, ax=None) -> Figure:
    """Kaplan-Meier progression-free curves per arm (censored replicates ticked), with the
    log-rank p-value of each arm against the combination. Arms share starting tumours, so
    this unpaired test is only a rough screen (see simulator.output.plotting.logrank_pvalues)."""
    if ax is None:
        fig = Figure(figsize=(9.0, 3.9), layout="constrained")
        axis = fig.add_subplot()
    else:
        fig, axis = ax.figure, ax
    ep = study.endpoints
    days = ep["progression_free_days"].astype(float)
    progressed = ep["progression_observed"].astype(bool)
    pvalues = plotting.logrank_pvalues(days, progressed, ep["arm"], study.arms)
    end = float(np.nanmax(days)) if np.isfinite(days).any() else 1.0
    for arm in study.arms:
        rows = study.rows(arm)
        d, e = days[rows], progressed[rows]
        keep = np.isfinite(d)
        if not keep.any():
            continue
        times, survival = kaplan_meier(d[keep], e[keep])
        p = pvalues.get(arm)
        label = (f"{arm} (reference)" if p is None else
                 f"{arm} (log-rank p = {p:.2g})" if math.isfinite(p) else
                 f"{arm} (log-rank p = n/a)")
        axis.step(np.append(times, end), np.append(survival, survival[-1]), where="post",
                  label=label, **STYLE[arm])
        censored = d[keep][~e[keep]]
        at = survival[np.searchsorted(times, censored, side="right") - 1]
        axis.plot(censored, at, ls="none", marker="|", ms=7, color=STYLE[arm]["color"])
    axis.set_xlim(0, end * 1.02)
    axis.set_ylim(-0.02, 1.04)
    axis.set_xlabel("days since treatment start")
    axis.set_ylabel("progression-free probability")
    handles = axis.get_legend_handles_labels()[0] + [
        Line2D([], [], ls="none", marker="|", ms=7, color="0.3", label="censored replicate")]
    axis.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
                title=f"log-rank p vs {REFERENCE}", title_fontsize=7)
    axis.set_title(f"Progression-free survival (Kaplan-Meier), {study.replicates} paired "
                   "replicates per arm; identical curves overlap")
    return fig


# ------------------------------------------------------ figure 3: core vs margin
def t_cell_densities(study, window_days: float = T_CELL_WINDOW_DAYS) -> dict:
    """Per arm, per replicate: mean T-cell density in the tumour core and in its invasive
    margin over the first ``window_days`` of treatment, counting only records where the
    tumour still has at least MIN_TUMOUR_CELLS cells (a vanishing tumour has no core or
    margin worth the name; a replicate cleared sooner is averaged over fewer days, one
    cleared before treatment is left out)."""
    start = study.treatment_start_day
    out = {}
    for arm in study.arms:
        core, margin = [], []
        for (a, _r), path in sorted(study.run_paths.items()):
            if a != arm:
                continue
            ts = read_timeseries(path)
            t = ts["time_days"] - start
            window = (t >= 0) & (t <= window_days) & (ts["tumor_cells"] >= MIN_TUMOUR_CELLS)
            if not window.any():
                continue
            core.append(np.nanmean(ts["t_cell_density_core"][window]))
            margin.append(np.nanmean(ts["t_cell_density_margin"][window]))
        out[arm] = (np.array(core), np.array(margin))
    return out


def plot_core_margin(study, *, ax=None, window_days: float = T_CELL_WINDOW_DAYS) -> Figure:
    """Grouped bars per arm: T-cell density in the core and at the margin (median across
    replicates; dots: replicates). The infiltration channel should matter most for the
    core; T-cell toxicity lowers both."""
    if ax is None:
        fig = Figure(figsize=(9.0, 3.8), layout="constrained")
        axis = fig.add_subplot()
    else:
        fig, axis = ax.figure, ax
    densities = t_cell_densities(study, window_days)
    x = np.arange(len(study.arms))
    width = 0.38
    for offset, k, label, colour in ((-width / 2, 0, "tumour core", "#1b7837"),
                                     (width / 2, 1, "invasive margin", "#a6dba0")):
        medians = [np.nanmedian(densities[arm][k]) if np.isfinite(densities[arm][k]).any()
                   else np.nan for arm in study.arms]
        axis.bar(x + offset, np.nan_to_num(medians), width=width, color=colour, label=label)
        for i, arm in enumerate(study.arms):
            values = densities[arm][k]
            values = values[np.isfinite(values)]
            axis.plot(np.full(len(values), x[i] + offset), values, ls="none", marker="o",
                      ms=2.5, color="k", alpha=0.6)
    axis.set_xticks(x, [arm.replace("combination_", "comb. ").replace("_", " ")
                        for arm in study.arms], rotation=25, ha="right")
    unit = "mm^2" if study.dimensions == 2 else "mm^3"     # density series: cells per area
    axis.set_ylabel(f"T-cell density (cells/{unit})\nmean over treatment days "
                    f"0-{window_days:g}")
    axis.legend(loc="upper right")
    axis.set_title(f"Where are the T cells? Core vs invasive margin, first {window_days:g} "
                   "days of treatment\n(bars: median; dots: replicates; only while the "
                   f"tumour has >= {MIN_TUMOUR_CELLS} cells)", fontsize=8)
    return fig


# ----------------------------------------------------- figure 4: durable responses
def read_arms_csv(study_dir: Path) -> dict[str, dict]:
    """DIR/arms.csv (written by compare): per-arm endpoints with 95% intervals and paired
    differences against the first arm."""
    with open(study_dir / "arms.csv", newline="") as fh:
        return {row["arm"]: {k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)}


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def plot_durable(study, arms_table: dict, *, ax=None) -> Figure:
    """Left: durable-response fraction per arm with its Wilson 95% interval. Right: the
    paired difference from the combination (same replicates, same starting tumours) with
    its 95% interval; bars left of zero: the arm loses durable responses."""
    if ax is None:
        fig = Figure(figsize=(10.0, 3.8), layout="constrained")
        left, right = fig.subplots(1, 2, sharey=True)
    else:
        left, right = list(np.ravel(ax))
        fig = left.figure
    arms = study.arms
    y = np.arange(len(arms))[::-1]
    colours = [STYLE[arm]["color"] for arm in arms]
    frac = np.array([arms_table[a]["durable_fraction"] for a in arms], float)
    lo = np.array([arms_table[a]["durable_fraction_low"] for a in arms], float)
    hi = np.array([arms_table[a]["durable_fraction_high"] for a in arms], float)
    left.barh(y, frac, color=colours, alpha=0.8)
    left.errorbar(frac, y, xerr=[frac - lo, hi - frac], ls="none", color="k", lw=0.9,
                  capsize=2)
    left.set_yticks(y, arms)
    left.set_xlim(0, 1)
    left.set_xlabel("durable-response fraction (Wilson 95% CI)")
    left.set_title("Durable responses per arm")
    prefix = f"vs_{REFERENCE}_durable_response_difference"
    diff = np.array([arms_table[a][prefix] for a in arms], float)
    dlo = np.array([arms_table[a][prefix + "_low"] for a in arms], float)
    dhi = np.array([arms_table[a][prefix + "_high"] for a in arms], float)
    right.barh(y, diff, color=colours, alpha=0.8)
    right.errorbar(diff, y, xerr=[diff - dlo, dhi - diff], ls="none", color="k", lw=0.9,
                   capsize=2)
    right.axvline(0, color="0.3", lw=0.8)
    right.set_xlim(-1.05, 1.05)
    right.set_xlabel(f"paired difference vs {REFERENCE} (95% CI)")
    right.set_title("What each change costs the combination")
    durable_days = _durable_min_days(study)
    fig.suptitle(f"Durable response: an objective response lasting >= {durable_days:g} days "
                 f"({study.replicates} paired replicates per arm)")
    return fig


def _durable_min_days(study) -> float:
    path = next(iter(study.run_paths.values()))
    with h5py.File(path, "r") as f:
        text = f["provenance/scenario_toml"][()].decode()
    return scenario_mod.from_toml(text).endpoints.durable_min_days


# ---------------------------------------------------------------------- the numbers
def print_summary(arms_table: dict):
    print(f"{'arm':34s} {'response':>9s} {'median TTP (d)':>15s} {'durable':>8s} "
          f"{'vs combination':>15s}")
    for arm, row in arms_table.items():
        ttp = row["median_ttp_days"]
        ttp_text = "not reached" if not math.isfinite(ttp) else f"{ttp:.0f}"
        diff = row[f"vs_{REFERENCE}_durable_response_difference"]
        print(f"{arm:34s} {row['response_rate']:9.0%} {ttp_text:>15s} "
              f"{row['durable_fraction']:8.0%} {diff:+15.0%}")


def lessons(study_dir: Path) -> list:
    """The lessons' comparisons over the study's replicates (``claims.Result`` objects)."""
    return claims.evaluate_study(study_dir, LESSONS)


def main(argv=None) -> list[Path]:
    args = parse_args(argv)
    overrides = (QUICK_OVERRIDES if args.quick else []) + list(args.override)
    outdir = args.outdir
    study_dir = outdir / "study"
    print(f"Running {len(ARMS)} arms x {args.replicates} replicates "
          f"({args.workers} workers){' [quick]' if args.quick else ''} into {study_dir} ...",
          flush=True)
    try:
        study = run_study(study_dir, args.replicates, args.workers, overrides)
    except ScenarioError as exc:       # a bad --override or scenario file: one clear line
        print(f"error: {exc.line()}", file=sys.stderr)
        raise SystemExit(2) from None
    arms_table = read_arms_csv(study_dir)
    print_summary(arms_table)
    claims.print_lessons(lessons(study_dir), HINTS)
    figures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN means after a cure
        for stem, fig in (("burden", plot_burden(study)),
                          ("progression_free", plot_progression_free(study)),
                          ("t_cells_core_margin", plot_core_margin(study)),
                          ("durable_fraction", plot_durable(study, arms_table))):
            path = outdir / f"{stem}.png"
            fig.savefig(path, dpi=150, bbox_inches="tight")
            figures.append(path)
    print("Figures:")
    for path in figures:
        print(f"  {path}")
    return figures


if __name__ == "__main__":
    main()
