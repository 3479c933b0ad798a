"""Calibration of the scenario library against the review's claims (Liu et al. 2017).

``python -m simulator.study.claims [--replicates 30] [--workers 2] [-o DIR]`` runs every arm
of the library as one paired study (common random numbers), tabulates per arm the figures a
clinician would quote, checks each claim, and writes ``docs/calibration.md``.

The claims (DESIGN.md, "Model"; issue "Drugs and regimens", item 5):
1. targeted alone: >= 70% of replicates drop >= 30% in burden within 8 weeks; most progress
   within the horizon; resistant cells are >= 90% of the tumour at progression;
2. anti-PD-1 alone: fewer responders than targeted and slower responses, but most
   responders are still in response at the end of the horizon;
3. concurrent combination: response rate >= targeted alone, longer median time to
   progression than either monotherapy, a larger fraction in response at the end;
4. switching off each immune channel of the targeted drug (and all three) lowers the
   combination's durable fraction (paired, same seeds): the synergy is mechanistic;
5. a T-cell-toxic targeted partner weakens the combination.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from simulator.scenario import library_dir

ARMS = ("untreated", "targeted_continuous", "targeted_intermittent", "targeted_adaptive",
        "anti_pd1", "anti_ctla4_anti_pd1", "combination_concurrent", "combination_lead_in",
        "targeted_then_anti_pd1", "anti_pd1_then_targeted", "combination_no_antigenicity",
        "combination_no_infiltration", "combination_no_microenvironment",
        "combination_no_immune_channels", "combination_t_cell_toxic")
ABLATIONS = ("combination_no_antigenicity", "combination_no_infiltration",
             "combination_no_microenvironment", "combination_no_immune_channels")
EARLY_RESPONSE_DAYS = 56.0
EARLY_RESPONSE_DROP = 0.30


@dataclass
class ArmFigures:
    arm: str
    replicates: int
    response_rate: float
    early_drop_fraction: float        # >= 30% burden drop within 8 weeks
    median_time_to_response_days: float
    progression_fraction: float
    median_ttp_days: float            # Kaplan-Meier; inf when not reached
    in_response_at_end: float         # fraction of all replicates
    responders_in_response_at_end: float
    durable_fraction: float
    resistant_fraction_at_progression: float   # median over progressing replicates


def _float(row, key):
    value = row.get(key, "nan")
    if value in ("True", "False"):
        return float(value == "True")
    try:
        return float(value)
    except ValueError:
        return math.nan


def figures(directory: Path, arms=ARMS) -> list[ArmFigures]:
    from simulator.analysis.statistics import median_ttp
    rows = list(csv.DictReader(open(directory / "summary.csv")))
    with h5py.File(directory / "study.h5", "r") as f:
        names = [a.decode() if isinstance(a, bytes) else str(a) for a in f["arm"][()]]
        t = f["timeseries/time_days"][()]
        burden = f["timeseries/tumor_cells"][()]
    out = []
    for arm in arms:
        runs = [r for r in rows if r["arm"] == arm]
        n = len(runs)
        if n == 0:
            continue
        a = names.index(arm)
        start = _float(runs[0], "treatment_start_day")
        b0 = np.array([_float(r, "baseline_tumor_cells") for r in runs])
        window = (t > start) & (t <= start + EARLY_RESPONSE_DAYS)
        reps = [int(r["replicate"]) for r in runs]
        early_min = np.nanmin(burden[a][reps][:, window], axis=1)
        early = np.mean(early_min <= (1 - EARLY_RESPONSE_DROP) * b0)
        responders = [r for r in runs if _float(r, "objective_response") == 1]
        ongoing = [r for r in responders if _float(r, "response_ongoing") == 1]
        ttr = [_float(r, "time_to_response_days") for r in responders]
        progressed = [r for r in runs if _float(r, "progression_observed") == 1]
        median, _, _ = median_ttp([_float(r, "progression_free_days") for r in runs],
                                  [_float(r, "progression_observed") == 1 for r in runs])
        resist = [_float(r, "resistant_fraction_at_progression") for r in progressed]
        out.append(ArmFigures(
            arm, n, len(responders) / n, float(early),
            float(np.median(ttr)) if ttr else math.nan, len(progressed) / n, median,
            len(ongoing) / n, len(ongoing) / len(responders) if responders else math.nan,
            np.mean([_float(r, "durable_response") for r in runs]),
            float(np.nanmedian(resist)) if resist else math.nan))
    return out


def check_claims(table: dict[str, ArmFigures]) -> list[tuple[str, bool, str]]:
    """(claim, holds, the numbers behind it) for each claim of the review."""
    t, p, c = table["targeted_continuous"], table["anti_pd1"], table["combination_concurrent"]
    tox = table["combination_t_cell_toxic"]
    checks = [
        ("targeted: >= 30% drop within 8 weeks in >= 70% of replicates",
         t.early_drop_fraction >= 0.7, f"{t.early_drop_fraction:.0%}"),
        ("targeted: most progress within the horizon", t.progression_fraction > 0.5,
         f"{t.progression_fraction:.0%} progress"),
        ("targeted: resistant cells >= 90% of the tumour at progression",
         t.resistant_fraction_at_progression >= 0.9,
         f"median {t.resistant_fraction_at_progression:.0%}"),
        ("anti-PD-1: fewer responders than targeted", p.response_rate < t.response_rate,
         f"{p.response_rate:.0%} vs {t.response_rate:.0%}"),
        ("anti-PD-1: slower responses than targeted",
         _gt(p.median_time_to_response_days, t.median_time_to_response_days),
         f"median {p.median_time_to_response_days:g} vs {t.median_time_to_response_days:g} days"),
        ("anti-PD-1: most responders still in response at the end",
         p.responders_in_response_at_end > 0.5, f"{p.responders_in_response_at_end:.0%}"),
        ("combination: response rate >= targeted", c.response_rate >= t.response_rate,
         f"{c.response_rate:.0%} vs {t.response_rate:.0%}"),
        ("combination: longer median TTP than either monotherapy",
         _gt(c.median_ttp_days, t.median_ttp_days) and _gt(c.median_ttp_days, p.median_ttp_days),
         f"{c.median_ttp_days:g} vs {t.median_ttp_days:g} / {p.median_ttp_days:g} days"),
        ("combination: larger fraction in response at the end than either",
         c.in_response_at_end > max(t.in_response_at_end, p.in_response_at_end),
         f"{c.in_response_at_end:.0%} vs {t.in_response_at_end:.0%} / {p.in_response_at_end:.0%}"),
    ]
    for arm in ABLATIONS:
        a = table[arm]
        checks.append((f"{arm}: lower durable fraction than the combination",
                       a.durable_fraction < c.durable_fraction,
                       f"{a.durable_fraction:.0%} vs {c.durable_fraction:.0%}"))
    checks.append(("T-cell-toxic partner weakens the combination (durable fraction)",
                   tox.durable_fraction < c.durable_fraction,
                   f"{tox.durable_fraction:.0%} vs {c.durable_fraction:.0%}"))
    return checks


def _gt(a: float, b: float) -> bool:
    """a > b where NaN (never reached) counts as infinitely long."""
    a = math.inf if math.isnan(a) else a
    b = math.inf if math.isnan(b) else b
    return a > b


def _fmt(value, kind):
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if kind == "pct":
        return f"{value:.0%}"
    if kind == "days":
        return "not reached" if math.isinf(value) else f"{value:.0f}"
    return str(value)


def markdown(rows: list[ArmFigures], checks, command: str, seconds: float, scenario) -> str:
    head = ("| arm | replicates | response rate | >= 30% drop by week 8 | median time to response "
            "(days) | progressed | median TTP (days) | in response at end | durable | "
            "resistant share at progression |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r.arm} | {r.replicates} | {_fmt(r.response_rate, 'pct')} | "
                     f"{_fmt(r.early_drop_fraction, 'pct')} | "
                     f"{_fmt(r.median_time_to_response_days, 'days')} | "
                     f"{_fmt(r.progression_fraction, 'pct')} | {_fmt(r.median_ttp_days, 'days')} | "
                     f"{_fmt(r.in_response_at_end, 'pct')} | {_fmt(r.durable_fraction, 'pct')} | "
                     f"{_fmt(r.resistant_fraction_at_progression, 'pct')} |")
    claim_lines = [f"| {claim} | {'yes' if ok else '**no**'} | {numbers} |"
                   for claim, ok, numbers in checks]
    sim = scenario.simulation
    return "\n".join([
        "# Calibration against the review's claims", "",
        "Generated by `simulator/calibration.py`; regenerate with:", "",
        f"    {command}", "",
        f"Base scenario `scenarios/melanoma.toml`: {sim.dimensions[0]}x{sim.dimensions[1]} "
        f"lattice, dt {sim.dt_hours:g} h, treatment from day {sim.treatment_start_day:g} to "
        f"day {sim.duration_days:g}, scans every {scenario.endpoints.scan_interval_days:g} days. "
        f"Wall time: {seconds / 60:.1f} min. Response = best overall response PR/CR "
        "(RECIST-like on the equivalent diameter); durable = response lasting >= "
        f"{scenario.endpoints.durable_min_days:g} days; in response at end = a responder "
        "not progressed by the last scan. Arms share one pre-treatment tumour per replicate "
        "(common random numbers).", "",
        *lines, "", "## Claims", "", "| claim | holds | numbers |", "|---|---|---|",
        *claim_lines, ""])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.study.claims")
    parser.add_argument("--replicates", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("-o", "--output", default="calibration-study")
    parser.add_argument("--doc", default=str(Path(__file__).resolve().parents[2] / "docs" /
                                             "calibration.md"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    from simulator import scenario as scenario_mod
    from simulator import study
    paths = [library_dir() / f"{arm}.toml" for arm in ARMS]
    started = time.perf_counter()
    report = study.compare(paths, args.replicates, args.output, workers=args.workers,
                           overrides=args.overrides, progress=sys.stderr.isatty(),
                           figures=True)
    seconds = time.perf_counter() - started
    rows = figures(Path(args.output))
    checks = check_claims({r.arm: r for r in rows})
    command = ("python -m simulator.study.claims " + " ".join(
        [f"--replicates {args.replicates}", f"--workers {args.workers}"] +
        [f"--set {o}" for o in args.overrides]))
    base = scenario_mod.load(library_dir() / "melanoma.toml", args.overrides)
    text = markdown(rows, checks, command, seconds, base)
    Path(args.doc).write_text(text)
    print(text)
    if report.failed:
        print(f"{len(report.failed)} runs failed", file=sys.stderr)
    return 0 if all(ok for _, ok, _ in checks) and not report.failed else 1


if __name__ == "__main__":
    sys.exit(main())
