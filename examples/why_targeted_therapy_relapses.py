"""Why targeted therapy relapses: clonal composition under continuous, intermittent and
adaptive dosing.

A student example for tumorsim. It runs four arms of the melanoma-like scenario library
side by side, with common random numbers (replicate r of every arm starts from the very same
pre-treatment tumour, so arms differ only where the drug acts):

    untreated               the natural history (the reference arm)
    targeted_continuous     BRAF inhibitor twice daily from the treatment start
    targeted_intermittent   4 weeks on / 4 weeks off
    targeted_adaptive       pause below half the baseline burden, resume at the baseline

and draws two figures into OUTDIR:

    clonal_dynamics.png   sensitive and resistant tumour cells over time per arm (median,
                          interquartile band and each replicate faintly), with the dose
                          days, and the resistant share of the tumour over time
    relapse_lattice.png   one replicate's lattice at baseline, at the nadir and at the end
                          of follow-up, under continuous and under adaptive dosing, with
                          every resistant tumour cell circled

Run it from the repository root (after ``pip install -e .``)::

    python examples/why_targeted_therapy_relapses.py                       # ~5 min on 2 cores
    python examples/why_targeted_therapy_relapses.py --quick               # ~1 min: tiny lattice
    python examples/why_targeted_therapy_relapses.py --replicates 40 --workers 4

Every patient is followed for two years after the treatment start, past progression
(``endpoints.off_study_at_progression = false``): the lessons are about what the clones do
after progression too. No tumour reaches the edge of its 5 mm box in that time.

Parameters: the library's (``scenarios/melanoma.toml``, calibrated to the monotherapy
trials in clinical time): a few resistant cells in a thousand at the treatment start (at
least 23), a 5% fitness cost of resistance. Measured at the defaults (20 replicates, seed
1): 18 of 18 continuous-dosing progressions had a resistant majority at the progression
scan (p < 0.0001); adaptive dosing kept the resistant clone a minority for longer (net
benefit +0.40, 95% CI +0.11 to +0.62, p = 0.02); and RECIST progression came sooner under
adaptive dosing (-0.45, -0.68 to -0.11), the caveat below. At 10 replicates the second
lesson was not significant (+0.50, p = 0.125), hence 20: a sign test needs 15 of 20
differing pairs on one side. Run time: about 5 minutes on a quiet 2-core machine (2 worker
processes) once the Numba kernels are compiled (the very first tumorsim run of a checkout
compiles them: add about a minute). ``--quick`` swaps in an 80 x 80 lattice, for tests and
a first look; its numbers are not meant to be read, but the lessons point the same way.

The runs are kept in OUTDIR/study (the layout of ``tumorsim compare``), so re-running the
script only redraws the figures, and ``tumorsim plot OUTDIR/study`` draws the standard study
figures from the same runs. Changing the scenario files or the options starts the study
afresh.

What to look for is written out in the comments below; the numbers depend on the
calibration of ``scenarios/melanoma.toml``, so read them off the figures and off the
"Lessons" lines the script prints: each gives the lesson's number with its 95% interval and
an exact test, says whether the model supports the lesson at these parameters, and if not,
which parameters the mechanism needs.
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
from matplotlib.collections import PatchCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Patch

from simulator.output import plotting
from simulator import scenario as scenario_mod
from simulator.schema import ScenarioError
from simulator.study import claims
from simulator.study.comparison import compare, load_arms

NAME = "why_targeted_therapy_relapses"

# ---------------------------------------------------------------------------------------
# The biology, in four ideas (Liu et al. 2017 Oncotarget 8:86969; Gatenby et al. 2009
# Cancer Res 69:4894; Bozic et al. 2013 eLife 2:e00747):
#
# 1. PRE-EXISTING RESISTANT CLONES. By the time a tumour is detected it holds billions of
#    cells, so a few of them already carry a mutation that makes the drug useless against
#    them (Bozic 2013). In the scenario this is `initial.resistant_fraction`; more resistant
#    cells appear at division with probability `tumor.mutation_rate_per_division`.
#
# 2. SELECTION UNDER CONTINUOUS THERAPY. The BRAF inhibitor kills and arrests the sensitive
#    cells only. The tumour shrinks fast (most cells are sensitive) but the few resistant
#    cells are untouched, and they now have room and oxygen to grow: the drug has selected
#    for them. The relapse that follows is made of resistant cells, and more of the same drug
#    cannot stop it. In the figure: the blue (sensitive) curve collapses, the orange
#    (resistant) curve keeps rising, and the resistant share climbs towards 1.
#
# 3. COMPETITION UNDER ADAPTIVE THERAPY (Gatenby 2009). Sensitive and resistant cells
#    compete for the same space (a cell divides only into a free neighbouring site) and
#    oxygen. Adaptive therapy does not try to kill every sensitive cell: it pauses the drug
#    once the tumour has halved and resumes it when the tumour is back at its baseline size.
#    The surviving sensitive cells keep the space occupied and hold the resistant clone
#    back, so the tumour stays controlled for longer. Intermittent dosing (fixed weeks on
#    and off) is the schedule-driven cousin: it also spares sensitive cells, but its pauses
#    do not follow the tumour.
#    That is the theory. In this model the competition is real: sparing the sensitive cells
#    keeps the resistant clone a minority for longer (the second lesson). What does not
#    follow is the clinical payoff: progression-free time (RECIST: +20% from the nadir) is
#    shorter, because adaptive dosing lets the tumour regrow towards its baseline by design
#    and RECIST counts that as progression (the caveat line after the lessons measures it).
#    Read the clonal_dynamics figure for what adaptive dosing does to the resistant share.
#
# 4. COST OF RESISTANCE. Resistance is not free: a resistant cell divides more slowly
#    (`tumor.resistance_fitness_cost`, a fractional loss of division rate). Without the
#    drug, sensitive cells out-grow resistant ones; that is what adaptive therapy relies
#    on. Try it: `--override tumor.resistance_fitness_cost=0` removes the cost, and see
#    whether adaptive dosing still delays the resistant takeover.
# ---------------------------------------------------------------------------------------

ARMS = ["untreated", "targeted_continuous", "targeted_intermittent", "targeted_adaptive"]
#: Arms drawn in the lattice figure (one row each).
LATTICE_ARMS = ["targeted_continuous", "targeted_adaptive"]

#: Every run: patients followed past progression, for two years after the treatment start
#: (the library's five would cost minutes a run once an untreated tumour fills its box).
FOLLOW_UP = ["endpoints.off_study_at_progression=false", "simulation.duration_days=790"]
#: --quick: a tiny lattice, so a test runs the whole script in about a minute.
QUICK_OVERRIDES = [
    "simulation.dimensions=[80,80]",
]
DEFAULT_REPLICATES, QUICK_REPLICATES = 20, 4

#: The lessons as tested statements (the same statistics as docs/calibration.md's claims):
#: paired replicates of two arms, or one arm against one half; a lesson is supported only
#: when its exact test gives p < 0.05 with the effect pointing the stated way.
LESSONS = (
    claims.Claim("Continuous dosing relapses with resistant cells", (
        claims.Comparison("continuous-dosing progressions with a resistant majority at the "
                          "progression scan (vs 1/2)", "one_arm", "targeted_continuous",
                          "resistant_at_progression", +1),)),
    claims.Claim("Adaptive dosing delays the resistant takeover", (
        claims.Comparison("time until resistant cells are the majority, adaptive vs "
                          "continuous dosing", "times", "targeted_adaptive",
                          "resistant_takeover", +1, "targeted_continuous"),)),
)
#: What the lessons do not imply, measured on the same replicates (printed, not asserted).
CAVEATS = (
    claims.Claim("... but not RECIST progression-free time", (
        claims.Comparison("progression-free time, adaptive vs continuous dosing",
                          "times", "targeted_adaptive", "progression_free", +1,
                          "targeted_continuous"),)),
)
#: What to try when the model does not support a lesson at the defaults (the mechanism).
HINTS = {
    "Continuous dosing relapses with resistant cells":
        "relapse needs resistant cells to start from: raise initial.resistant_fraction or "
        "tumor.mutation_rate_per_division, or follow up longer (simulation.duration_days)",
    "Adaptive dosing delays the resistant takeover":
        "competition that the spared sensitive cells win, and enough patients to see it: at "
        "the defaults (20 replicates) later in more pairs than earlier (net +0.40, p = 0.02); "
        "at 10 replicates +0.50 was not significant (p = 0.125). A costlier resistance "
        "(tumor.resistance_fitness_cost) strengthens the competition, but at 0.3 the "
        "resistant remnant barely grows and the T cells clear it (--quick, 4 replicates: "
        "all 4 continuous-dosing lesions gone), so there is no takeover to delay",
    "... but not RECIST progression-free time":
        "RECIST calls progression at +20% from the nadir, and adaptive dosing lets the "
        "tumour regrow towards its baseline by design, so its pauses count as progression; "
        "its own trials judge it by the burden against the baseline (Zhang 2017 Nat Commun "
        "8:1816)",
}

SENSITIVE_COLOUR = plotting.KIND_COLOURS["tumor"]
RESISTANT_COLOUR = plotting.KIND_COLOURS["tumor_resistant"]
ARM_COLOURS = {"untreated": "0.35", "targeted_continuous": "#d62728",
               "targeted_intermittent": "#9467bd", "targeted_adaptive": "#2ca02c"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python examples/{NAME}.py",
        description="Why targeted therapy relapses: sensitive and resistant clones under "
                    "continuous, intermittent and adaptive BRAF inhibition.")
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
                             "(repeatable), e.g. tumor.resistance_fitness_cost=0")
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
    """The paired comparison (``tumorsim compare`` from Python). Runs already on disk are
    reused; a study made from other scenario files or options is started afresh."""
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


def _shifted_doses(tables, start):
    """Dose tables with days counted from the treatment start (our time axis)."""
    out = []
    for table in tables:
        table = table.copy()
        table["day"] = table["day"] - start
        out.append(table)
    return out


# ------------------------------------------------------------ figure 1: the clones
def plot_clonal_dynamics(study, *, ax=None) -> Figure:
    """Top row: sensitive and resistant cells per arm (median line, interquartile band;
    symmetric-log axis so a handful of resistant cells is visible next to thousands of
    sensitive ones). Bottom: the resistant share of the tumour per arm."""
    n = len(study.arms)
    if ax is None:
        fig = Figure(figsize=(3.0 * n, 6.4), layout="constrained")
        grid = fig.add_gridspec(2, n, height_ratios=(1.15, 1.0))
        top = [fig.add_subplot(grid[0, 0])]
        top += [fig.add_subplot(grid[0, k], sharex=top[0], sharey=top[0]) for k in range(1, n)]
        bottom = fig.add_subplot(grid[1, :])
    else:
        *top, bottom = list(np.ravel(ax))
        fig = bottom.figure
    start = study.treatment_start_day
    t = study.time_days - start                       # days since the treatment start
    sens = study.series["tumor_sensitive"]            # arm x replicate x time
    res = study.series["tumor_resistant"]
    doses = study.doses()
    for a, (arm, axis) in enumerate(zip(study.arms, top)):
        for data, colour, label in ((sens[a], SENSITIVE_COLOUR, "sensitive"),
                                    (res[a], RESISTANT_COLOUR, "resistant")):
            q25, q50, q75 = _quantiles(data)
            axis.fill_between(t, q25, q75, color=colour, alpha=0.25, lw=0)
            axis.plot(t, q50, color=colour, lw=1.8, label=f"{label} (median, IQR)")
            # each replicate faintly: outcomes can split (some tumours cured, some relapse),
            # and a median alone hides that
            axis.plot(t, data.T, color=colour, lw=0.4, alpha=0.35)
        axis.set_yscale("symlog", linthresh=10)
        axis.axvline(0, color="0.4", ls="--", lw=0.8)
        # one marker per dose day along the top; faint where only some replicates were
        # dosed (adaptive dosing follows each tumour, so replicates differ)
        plotting.mark_doses(axis, _shifted_doses(doses[arm], start), colour=ARM_COLOURS[arm])
        axis.set_title(arm, color=ARM_COLOURS[arm])
        axis.set_xlabel("days since treatment start")
    top[0].set_ylabel("tumour cells")
    top[0].set_ylim(bottom=0)
    top[0].set_xlim(t[0], t[-1])
    top[0].legend(loc="lower left", fontsize=7)

    # The resistant share: selection in one number. Under continuous therapy it runs to 1;
    # sparing sensitive cells (intermittent, adaptive) holds it lower for longer.
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(study.series["tumor_cells"] > 0,
                         res / study.series["tumor_cells"], np.nan)
    after = t >= 0
    for a, arm in enumerate(study.arms):
        q25, q50, q75 = _quantiles(share[a][:, after])
        bottom.fill_between(t[after], q25, q75, color=ARM_COLOURS[arm], alpha=0.15, lw=0)
        bottom.plot(t[after], q50, color=ARM_COLOURS[arm], lw=1.8, label=arm)
    bottom.set_ylim(-0.02, 1.02)
    bottom.set_xlim(0, t[-1])
    bottom.set_xlabel("days since treatment start")
    bottom.set_ylabel("resistant share of the tumour\n(median, IQR)")
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bottom.set_title("Selection: the resistant share of the tumour")
    fig.suptitle("Why targeted therapy relapses: sensitive (blue) and resistant (orange) "
                 f"cells, {study.replicates} paired replicates per arm")
    return fig


# ------------------------------------------------------------- figure 2: the lattice
def _pick_replicate(study, arm: str) -> int:
    """A replicate that relapsed under ``arm`` if there is one (the story to tell), else
    the first."""
    ep = study.endpoints
    for i in study.rows(arm):
        if bool(ep["progression_observed"][i]):
            return int(ep["replicate"][i])
    return int(ep["replicate"][study.rows(arm)[0]])


def _key_snapshots(path, start: float) -> dict[str, int]:
    """Indices of three lattice snapshots (taken every ``output.snapshot_every_days``):
    baseline (the last one before treatment), nadir (the one with the fewest tumour cells
    after the treatment start) and the end of follow-up."""
    with h5py.File(path, "r") as f:
        snaps = f["snapshots"]
        days = snaps["time_days"][()]
        ct = snaps["cell_type"]
        meanings = _text(ct.attrs["flag_meanings"]).split()
        tumour = int(np.asarray(ct.attrs["flag_values"])[meanings.index("tumor")])
        after = np.nonzero(days >= start)[0]
        counts = [int(np.count_nonzero(ct[i] == tumour)) for i in after]
    before = np.nonzero(days <= start + 1e-9)[0]
    return {"baseline": int(before[-1]) if len(before) else 0,
            "nadir": int(after[int(np.argmin(counts))]),
            "end": len(days) - 1}


def _tumour_box(snaps, pad: int = 6):
    """Index bounds covering every tumour cell in ``snaps`` (the frames are zoomed to the
    tumour; the lattice is much bigger than it)."""
    lo, hi = None, None
    for snap in snaps:
        meanings = str(_text(snap["flag_meanings"])).split()
        code = int(np.asarray(snap["flag_values"])[meanings.index("tumor")])
        where = np.argwhere(snap["cell_type"] == code)
        if len(where):
            lo = where.min(0) if lo is None else np.minimum(lo, where.min(0))
            hi = where.max(0) if hi is None else np.maximum(hi, where.max(0))
    shape = np.array(snaps[0]["cell_type"].shape)
    if lo is None:
        return np.zeros(2, int), shape
    return np.maximum(lo - pad, 0), np.minimum(hi + pad + 1, shape)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def plot_relapse_lattice(study, *, arms=LATTICE_ARMS, ax=None) -> Figure:
    """One row per arm (the same replicate in every row: the same starting tumour), columns
    at baseline, nadir and the end of follow-up; resistant cells orange and circled."""
    if ax is None:
        fig = Figure(figsize=(9.6, 3.2 * len(arms) + 0.4), layout="constrained")
        grid = fig.subplots(len(arms), 3, squeeze=False)
    else:
        grid = np.asarray(ax, dtype=object).reshape(len(arms), 3)
        fig = grid[0, 0].figure
    start = study.treatment_start_day
    replicate = _pick_replicate(study, arms[0])
    present = set()
    for row, arm in enumerate(arms):
        path = study.run_paths[(arm, replicate)]
        key = _key_snapshots(path, start)
        snaps = [plotting.read_snapshot(path, i) for i in key.values()]
        (x0, y0), (x1, y1) = _tumour_box(snaps)
        with h5py.File(path, "r") as f:
            spacing = float(f.attrs["spacing_um"])
        for col, (label, snap) in enumerate(zip(key, snaps)):
            axis = grid[row, col]
            meanings = _text(snap["flag_meanings"]).split()
            tumour = int(np.asarray(snap["flag_values"])[meanings.index("tumor")])
            cell_type = snap["cell_type"][x0:x1, y0:y1]
            clone = None if snap["clone"] is None else snap["clone"][x0:x1, y0:y1]
            rgb, kinds = plotting.lattice_rgb(cell_type, clone, snap["flag_values"],
                                              snap["flag_meanings"])
            present.update(kinds)
            axis.imshow(np.swapaxes(rgb, 0, 1), origin="lower", interpolation="nearest",
                        extent=(x0 * spacing / 1000, x1 * spacing / 1000,
                                y0 * spacing / 1000, y1 * spacing / 1000))
            is_tumour = cell_type == tumour
            resistant = is_tumour & (clone > 0) if clone is not None else np.zeros_like(is_tumour)
            # Circle the resistant cells: a single cell is one pixel, too small to see.
            # (A few hundred circles at most; beyond that the orange mass speaks for itself.)
            ij = np.argwhere(resistant)
            if 0 < len(ij) <= 300:
                mm = spacing / 1000
                axis.add_collection(PatchCollection(
                    [Circle(((x0 + i + 0.5) * mm, (y0 + j + 0.5) * mm), 2.0 * mm) for i, j in ij],
                    facecolors="none", edgecolors="k", linewidths=0.8))
            axis.set_title(f"{label}: day {snap['day'] - start:+g}\n"
                           f"{int(is_tumour.sum() - resistant.sum())} sensitive, "
                           f"{int(resistant.sum())} resistant", fontsize=8)
            axis.set_xticks([])
            axis.set_yticks([])
        grid[row, 0].set_ylabel(arm, color=ARM_COLOURS.get(arm, "k"), fontsize=9)
    handles = [Patch(facecolor=plotting.KIND_COLOURS[k], edgecolor="0.6", lw=0.4,
                     label=plotting.KIND_LABELS[k])
               for k in plotting.KIND_COLOURS if k in present and k != "empty"]
    handles.append(Line2D([], [], ls="none", marker="o", mfc="none", mec="k",
                          label="resistant cell (circled)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=7,
               frameon=False)
    fig.suptitle(f"Replicate {replicate} (the same starting tumour in both rows), zoomed to "
                 "the tumour;\ndays since treatment start")
    return fig


# ---------------------------------------------------------------------- the numbers
def print_summary(study_dir: Path):
    """Per arm, from DIR/arms.csv and DIR/summary.csv: response rate, median time to
    progression and the resistant share at the end."""
    with open(study_dir / "arms.csv", newline="") as fh:
        arms = list(csv.DictReader(fh))
    with open(study_dir / "summary.csv", newline="") as fh:
        runs = list(csv.DictReader(fh))
    print(f"{'arm':24s} {'response':>9s} {'median TTP (d)':>15s} {'resistant share, end':>21s}")
    for row in arms:
        final = [float(r["resistant_fraction_final"]) for r in runs if r["arm"] == row["arm"]]
        final = [f for f in final if math.isfinite(f)]
        share = f"{np.median(final):.2f}" if final else "no tumour"
        ttp = float(row["median_ttp_days"])
        ttp_text = "not reached" if not math.isfinite(ttp) else f"{ttp:.0f}"
        print(f"{row['arm']:24s} {float(row['response_rate']):9.0%} {ttp_text:>15s} "
              f"{share:>21s}")


def lessons(study_dir: Path) -> list:
    """The lessons' comparisons over the study's replicates (``claims.Result`` objects)."""
    return claims.evaluate_study(study_dir, LESSONS)


def main(argv=None) -> list[Path]:
    args = parse_args(argv)
    overrides = FOLLOW_UP + (QUICK_OVERRIDES if args.quick else []) + list(args.override)
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
    print_summary(study_dir)
    claims.print_lessons(lessons(study_dir), HINTS)
    print("What the lessons do not imply (same replicates):")
    for r in claims.evaluate_study(study_dir, CAVEATS):
        print(f"  {r.claim}\n    {claims.describe(r)}\n    why: {HINTS[r.claim]}")
    figures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN medians after a cure
        for stem, draw in (("clonal_dynamics", plot_clonal_dynamics),
                           ("relapse_lattice", plot_relapse_lattice)):
            path = outdir / f"{stem}.png"
            draw(study).savefig(path, dpi=150, bbox_inches="tight")
            figures.append(path)
    print("Figures:")
    for path in figures:
        print(f"  {path}")
    return figures


if __name__ == "__main__":
    main()
