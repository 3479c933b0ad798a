"""dt convergence study: do the library's endpoints depend on the step?

``python -m simulator.study.convergence [--replicates 20] [--workers 2] [--dt 6,3,1.5,0.75]
[--arms untreated,...] [--set KEY=VALUE ...] [-o convergence-study] [--doc docs/convergence.md]
[--tabulate-only]``

Runs the default scenario and a set of melanoma arms at every step length with the same
seeds (replicate r of every dt draws the same patient, vessels and initial tumour), then
tabulates, for each endpoint, the paired difference between successive step lengths (coarse
minus fine) with its 95% interval:

- continuous endpoints (burden and T cells at fixed days, best response, progression-free
  days, resistant share at the end): mean of the paired differences, t interval;
- binary endpoints (objective response, durable response): difference of paired
  proportions, Newcombe's interval (``simulator.analysis.statistics.paired_proportions``).

Which step the library can use is judged per pair of successive steps from the count of
intervals that exclude zero, against its sign-flip permutation distribution
(:func:`pair_tests`), which keeps the correlation between a run's endpoints.

Every study directory is a ``tumorsim compare`` study, so an interrupted run resumes with the
same command; ``--tabulate-only`` runs nothing and tabulates what is there. The markdown it
writes is ``docs/convergence.md``.
"""
from __future__ import annotations

import argparse
import csv
import functools
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from simulator.analysis.statistics import paired_proportions
from simulator.output.runfile import read_timeseries
from simulator.scenario import library_dir
from simulator.study.comparison import compare
from simulator.study.layout import run_path

DTS = (6.0, 3.0, 1.5, 0.75)
GROUPS = {
    "default": ("default",),
    "melanoma": ("untreated", "targeted_continuous", "targeted_intermittent",
                 "targeted_adaptive", "anti_pd1", "combination_concurrent",
                 "anti_pd1_then_targeted"),
}
# box_limited: the share of runs whose tumour reached the lattice edge (issue 10)

# Fewer pairs than this (burden at a late day when most patients went off study) give no
# interval: from 2-4 pairs, often of identical values, a t interval of zero width "excludes
# zero" and says nothing.
MIN_PAIRS = 5

CONTINUOUS = ("best_response", "progression_free_days", "resistant_fraction_final")
BINARY = ("objective_response", "durable_response", "box_limited")


@dataclass
class Difference:
    arm: str
    endpoint: str
    coarse: float
    fine: float
    mean_coarse: float
    mean_fine: float
    difference: float
    low: float
    high: float
    pairs: int

    @property
    def covers_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


def study_dir(root: Path, group: str, dt: float) -> Path:
    return root / f"dt-{dt:g}" / group


def run_group(root: Path, group: str, arms, dt: float, replicates: int, workers: int,
              overrides=()) -> None:
    paths = [str(library_dir() / f"{name}.toml") for name in arms]
    compare(paths, replicates, study_dir(root, group, dt), workers=workers,
            overrides=[*overrides, f"simulation.dt_hours={dt!r}"], figures=False)


def _rows(directory: Path) -> dict[tuple[str, int], dict]:
    with open(directory / "summary.csv", newline="") as f:
        return {(r["arm"], int(r["replicate"])): r for r in csv.DictReader(f)}


def _number(value) -> float:
    if value in ("True", "False", "true", "false"):
        return float(value in ("True", "true"))
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def fixed_days(directory: Path, arm: str, replicate: int, days) -> dict[str, float]:
    """Burden and T cells at the given days (records fall on them: every dt divides 24 h)."""
    series = read_timeseries(run_path(directory, arm, replicate))
    t = series["time_days"]
    out = {}
    eradicated = series["tumor_cells"][-1] == 0  # a run that ended on it stays at zero
    for day in days:
        k = int(np.argmin(np.abs(t - day)))
        ok = abs(t[k] - day) < 1e-6
        later = day > t[-1] and eradicated
        out[f"tumor_cells_day_{day:g}"] = (float(series["tumor_cells"][k]) if ok
                                           else 0.0 if later else math.nan)
        out[f"t_cells_day_{day:g}"] = float(series["t_cells"][k]) if ok else math.nan
    return out


def endpoint_values(directory: Path, arm: str, replicates: int, days) -> dict[str, np.ndarray]:
    rows = _rows(directory)
    values: dict[str, list] = {}
    for r in range(replicates):
        row = rows.get((arm, r), {})
        for name in CONTINUOUS + BINARY:
            values.setdefault(name, []).append(_number(row.get(name)))
        for name, value in fixed_days(directory, arm, r, days).items():
            values.setdefault(name, []).append(value)
    return {k: np.array(v, float) for k, v in values.items()}


@functools.lru_cache(maxsize=None)
def _t975(degrees: int) -> float:
    return float(stats.t.ppf(0.975, degrees))


def paired_difference(coarse: np.ndarray, fine: np.ndarray, binary: bool):
    """(difference, low, high, pairs) of coarse - fine over replicates where both are finite."""
    keep = np.isfinite(coarse) & np.isfinite(fine)
    x, y = coarse[keep], fine[keep]
    n = int(keep.sum())
    if n < MIN_PAIRS:
        return math.nan, math.nan, math.nan, n
    if binary:
        cmp = paired_proportions(x.astype(bool), y.astype(bool))
        return cmp.difference, cmp.low, cmp.high, n
    d = x - y
    half = _t975(n - 1) * d.std(ddof=1) / math.sqrt(n)
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half), n


def group_values(root: Path, group: str, arms, dts, replicates: int,
                 days) -> dict[tuple[str, float], dict[str, np.ndarray]]:
    """Every endpoint of every arm at every step: ``{(arm, dt): {endpoint: per replicate}}``."""
    return {(arm, dt): endpoint_values(study_dir(root, group, dt), arm, replicates, days)
            for arm in arms for dt in dts}


def differences(values, arms, dts, swap=None) -> list[Difference]:
    """Paired differences coarse - fine of every arm, endpoint and successive pair of steps.
    ``swap`` (bool per replicate) exchanges the two steps' values of those replicates: the
    sign flips of :func:`pair_tests`."""
    out = []
    for arm in arms:
        for coarse, fine in zip(dts[:-1], dts[1:]):
            for name in values[(arm, coarse)]:
                a, b = values[(arm, coarse)][name], values[(arm, fine)][name]
                if not (np.isfinite(a).any() and np.isfinite(b).any()):
                    continue  # a day past this group's horizon
                if swap is not None:
                    a, b = np.where(swap, b, a), np.where(swap, a, b)
                diff, low, high, n = paired_difference(a, b, name in BINARY)
                out.append(Difference(arm, name, coarse, fine, float(np.nanmean(a)),
                                      float(np.nanmean(b)), diff, low, high, n))
    return out


@dataclass
class PairTest:
    """All comparisons of one pair of successive steps, judged together."""
    coarse: float
    fine: float
    comparisons: int
    excluding_zero: int
    null_mean: float     # mean count under the sign-flip null
    p: float             # P(count >= observed) under it


def _excluding(diffs, coarse, fine) -> int:
    return sum(not d.covers_zero for d in diffs
               if (d.coarse, d.fine) == (coarse, fine) and math.isfinite(d.low))


def pair_tests(values_by_group: dict, dts, replicates: int, flips: int = 2000,
               seed: int = 0) -> list[PairTest]:
    """For each pair of successive steps: how many of its 95% intervals exclude zero, and
    how improbable that count is if the step has no effect.

    The endpoints of a run are strongly correlated (burden at days 30, 60 and 90, best
    response and progression-free days all follow one trajectory), so the count is not
    Binomial(m, 0.05): one chance excursion can push five intervals off zero together.
    The null distribution here keeps that correlation. Without an effect of the step, a
    replicate's coarse and fine runs are exchangeable (they share the seed, so the
    patient and the initial state, and are otherwise two independent draws of the same
    process), so swapping the two labels within a replicate - every arm and endpoint of
    it at once - leaves the joint distribution unchanged: a sign-flip permutation test
    (Good, Permutation Tests, 2005, ch. 3). Groups flip independently (their runs are
    independent). ``flips`` random flip patterns from ``seed``; p = (1 + #{count >=
    observed}) / (flips + 1)."""
    observed = {g: differences(v, _arms(v), dts) for g, v in values_by_group.items()}
    pairs = list(zip(dts[:-1], dts[1:]))
    counts = {pair: sum(_excluding(d, *pair) for d in observed.values()) for pair in pairs}
    sizes = {pair: sum(1 for d in observed.values() for x in d
                       if (x.coarse, x.fine) == pair and math.isfinite(x.low))
             for pair in pairs}
    rng = np.random.default_rng(seed)
    null = {pair: np.empty(flips, np.int64) for pair in pairs}
    for f in range(flips):
        flipped = {g: differences(v, _arms(v), dts, swap=rng.random(replicates) < 0.5)
                   for g, v in values_by_group.items()}
        for pair in pairs:
            null[pair][f] = sum(_excluding(d, *pair) for d in flipped.values())
    return [PairTest(c, f, sizes[(c, f)], counts[(c, f)], float(null[(c, f)].mean()),
                     float((1 + np.sum(null[(c, f)] >= counts[(c, f)])) / (flips + 1)))
            for c, f in pairs]


def _arms(values) -> list[str]:
    return list(dict.fromkeys(arm for arm, _ in values))


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def markdown(results: dict[str, list[Difference]], dts, replicates, seconds, command,
             tabulated: bool = False) -> str:
    made = (f"Tabulated by `{command}` from runs made earlier" if tabulated
            else f"Made by `{command}` in {seconds / 60:.0f} min")
    lines = ["# dt convergence of the library", "",
             f"{made}. Each cell: mean at the coarser "
             "step, then the paired difference coarse - fine with its 95% interval "
             f"({replicates} replicates; the same seeds at every step, so replicate r has "
             "the same patient, vessels and initial tumour). An interval that excludes 0 "
             "is marked **bold**. Where fewer replicates have the value at both steps "
             "(burden at a day after a patient went off study) the cell says how many "
             f"pairs; below {MIN_PAIRS} pairs there is no interval (n/a).", ""]
    for group, diffs in results.items():
        for arm in dict.fromkeys(d.arm for d in diffs):
            rows = [d for d in diffs if d.arm == arm]
            pairs = list(dict.fromkeys((d.coarse, d.fine) for d in rows))
            lines += [f"## {group}: {arm}", "",
                      "| endpoint | " + " | ".join(f"{c:g} h vs {f:g} h" for c, f in pairs)
                      + " |", "|---|" + "---|" * len(pairs)]
            for name in dict.fromkeys(d.endpoint for d in rows):
                cells = []
                for c, f in pairs:
                    d = next(x for x in rows if x.endpoint == name and (x.coarse, x.fine)
                             == (c, f))
                    text = (f"{_fmt(d.mean_coarse)}: {_fmt(d.difference)} "
                            f"[{_fmt(d.low)}, {_fmt(d.high)}]")
                    if d.pairs < replicates:
                        text += f" ({d.pairs} pairs)"
                    cells.append(text if d.covers_zero or not math.isfinite(d.low)
                                 else f"**{text}**")
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def recommendation(tests: list[PairTest], dts) -> str:
    """Which step the library can use: the coarsest step from which every finer pair of
    successive steps is consistent with no effect of the step (sign-flip p >= 0.05 for the
    count of intervals excluding zero, :func:`pair_tests`)."""
    lines = ["## Which step", "",
             "Each pair of successive steps, all arms and endpoints together: how many 95% "
             "intervals exclude zero, the mean count when the step has no effect, and how "
             "often a count this high arises then (p). The null distribution swaps the two "
             "steps' runs of randomly chosen replicates, all endpoints of a replicate "
             "together, so it keeps their correlation (burden at successive days, best "
             "response and progression-free days follow one trajectory); treating the "
             "endpoints as independent trials (Binomial(m, 0.05)) would overstate the "
             "evidence.", "",
             "| steps | comparisons | excluding zero | expected without an effect | p |",
             "|---|---|---|---|---|"]
    consistent = {}
    for t in tests:
        consistent[t.coarse] = t.comparisons > 0 and t.p >= 0.05
        lines.append(f"| {t.coarse:g} h vs {t.fine:g} h | {t.comparisons} | "
                     f"{t.excluding_zero} | {t.null_mean:.1f} | {t.p:.2g} |")
    lines.append("")
    choice = dts[-1]
    for dt in reversed(dts[:-1]):
        if not consistent.get(dt, False):
            break
        choice = dt
    if choice == dts[-1]:
        lines.append(f"No step coarser than {dts[-1]:g} h is consistent with the finer ones "
                     "here; the finest is the best estimate.")
    else:
        lines.append(f"From {choice:g} h down to {dts[-1]:g} h no pair differs more often than "
                     f"chance: {choice:g} h is the coarsest step whose endpoints agree with the "
                     "finer steps' within Monte Carlo noise at this replicate count.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--dt", default=",".join(f"{d:g}" for d in DTS),
                        help="step lengths in hours, coarse to fine")
    parser.add_argument("--groups", default=",".join(GROUPS))
    parser.add_argument("--arms", help="melanoma arms to run (default: all of GROUPS)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a key of every scenario")
    parser.add_argument("-o", "--output", default="convergence-study")
    parser.add_argument("--tabulate-only", action="store_true",
                        help="run nothing: tabulate the runs already in OUTPUT (e.g. with a "
                             "changed analysis, or runs made by an earlier library)")
    parser.add_argument("--doc", default=str(Path(__file__).resolve().parents[2] / "docs"
                                             / "convergence.md"))
    args = parser.parse_args(argv)
    dts = tuple(float(x) for x in args.dt.split(","))
    root = Path(args.output)
    started = time.perf_counter()
    results, values = {}, {}
    for group in args.groups.split(","):
        arms = GROUPS[group]
        if group == "melanoma" and args.arms:
            arms = tuple(args.arms.split(","))
        for dt in dts:
            if args.tabulate_only:
                summary = study_dir(root, group, dt) / "summary.csv"
                if not summary.is_file():
                    print(f"convergence: {summary}: no study here to tabulate",
                          file=sys.stderr)
                    return 2
                continue
            print(f"convergence: {group} at dt = {dt:g} h", file=sys.stderr, flush=True)
            run_group(root, group, arms, dt, args.replicates, args.workers, args.overrides)
        days = (30, 60, 90, 120) if group == "default" else (60, 88, 116, 172, 228, 300)
        values[group] = group_values(root, group, arms, dts, args.replicates, days)
        results[group] = differences(values[group], arms, dts)
    command = "python -m simulator.study.convergence " + " ".join(argv or sys.argv[1:])
    text = markdown(results, dts, args.replicates, time.perf_counter() - started, command,
                    tabulated=args.tabulate_only)
    text += "\n" + recommendation(pair_tests(values, dts, args.replicates), dts)
    Path(args.doc).write_text(text + "\n")
    print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
