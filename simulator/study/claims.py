"""The review's claims (Liu et al. 2017, DESIGN.md "Scientific basis") as statistics over a
paired study of the scenario library.

``python -m simulator.study.claims [--replicates 60] [--seed 9001] [--workers 2] [-o DIR]``
runs the library's arms as one paired study (common random numbers: replicate r of every
arm is the same virtual patient), tabulates per arm what a clinician would quote, evaluates
each claim and writes the generated part of ``docs/calibration.md`` (the hand-written
"Method" section between its markers is kept).

Only the patients a trial would enrol count (``targets.enrolled``: a tumour at the treatment
start, as in calibration): a replicate whose tumour the immune system cleared before
treatment (baseline 0 cells, best response NE) is left out of every rate, every one-arm
proportion and, unless enrolled in both arms, every paired comparison.

Each claim is one or more comparisons, each an effect size with a 95% interval and a test
(``simulator.analysis.statistics``):

- paired proportions (X vs Y over shared replicates): difference of proportions, Newcombe
  interval, exact McNemar test;
- paired times (progression-free time; time to or duration of response where both arms
  respond): net benefit (wins - losses) / pairs, Newcombe interval, sign test;
- one arm (e.g. "most targeted responses end in progression"): the proportion with its
  Clopper-Pearson interval, exact binomial test against 1/2.

A comparison holds only when its two-sided test is significant at 0.05 *and* its effect
points the stated way; a claim holds only when all its comparisons hold (an intersection-
union test, which needs no multiplicity correction: Berger 1982 Technometrics 24:295).
The claims are several, so the table also gives Holm-adjusted p-values (Holm 1979) for a
reader who wants the family-wise view. Claims are evaluated on a seed not used in
calibration (``tumorsim calibrate`` uses its file's ``seed`` and ``check_seed``).
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.analysis import statistics as stats
from simulator.analysis.targets import enrolled
from simulator.scenario import library_dir

ARMS = ("untreated", "targeted_continuous", "targeted_intermittent", "targeted_adaptive",
        "anti_pd1", "anti_ctla4_anti_pd1", "combination_concurrent", "combination_lead_in",
        "targeted_then_anti_pd1", "anti_pd1_then_targeted", "combination_no_antigenicity",
        "combination_no_infiltration", "combination_no_microenvironment",
        "combination_no_immune_channels", "combination_t_cell_toxic")
HOLDOUT_SEED = 9001
ALPHA = 0.05
#: early tumour shrinkage: the first scan at least RECIST's PR drop below baseline
EARLY_SHRINKAGE = -0.30
METHOD_BEGIN, METHOD_END = "<!-- method: begin -->", "<!-- method: end -->"


@dataclass(frozen=True)
class Comparison:
    """One test. ``kind``: "proportions" (binary endpoint, X vs Y), "times" (censored
    time, X vs Y) or "one_arm" (a proportion within X against 1/2). ``direction`` +1: X
    above Y (or above 1/2); -1: below."""
    label: str
    kind: str
    arm: str
    endpoint: str
    direction: int
    versus: str | None = None


@dataclass(frozen=True)
class Claim:
    name: str
    comparisons: tuple[Comparison, ...]


T, P, C = "targeted_continuous", "anti_pd1", "combination_concurrent"
CLAIMS = (
    Claim("Targeted therapy acts fast", (
        Comparison("early shrinkage (>= 30% smaller diameter at the first scan), targeted "
                   "vs anti-PD-1", "proportions", T, "early_shrinkage", +1, P),)),
    Claim("... but its responses are short", (
        Comparison("targeted responders whose response ends in progression during "
                   "follow-up (vs 1/2)", "one_arm", T, "responder_progresses", +1),)),
    Claim("Resistant clones have taken over at progression", (
        Comparison("targeted progressions with a resistant majority at the progression "
                   "scan (vs 1/2)", "one_arm", T, "resistant_at_progression", +1),)),
    Claim("Immunotherapy gives fewer responses", (
        Comparison("objective response, anti-PD-1 vs targeted", "proportions", P,
                   "objective_response", -1, T),)),
    Claim("... slower ones", (
        Comparison("time to response where both respond, anti-PD-1 vs targeted "
                   "(+: anti-PD-1 sooner)", "times", P, "time_to_response", -1, T),)),
    Claim("... but durable ones", (
        Comparison("duration of response where both respond, anti-PD-1 vs targeted",
                   "times", P, "duration_of_response", +1, T),)),
    Claim("The combination is fast and durable", (
        Comparison("early shrinkage, combination vs anti-PD-1", "proportions", C,
                   "early_shrinkage", +1, P),
        Comparison("progression-free time, combination vs targeted", "times", C,
                   "progression_free", +1, T),
        Comparison("progression-free time, combination vs anti-PD-1", "times", C,
                   "progression_free", +1, P))),
    *(Claim(f"The targeted drug's {channel} contribute{'s' if one else ''}", (
        Comparison(f"progression-free time, combination vs combination without "
                   f"{channel}", "times", C, "progression_free", +1, f"combination_no_{arm}"),))
      for channel, arm, one in (
          ("antigenicity channel", "antigenicity", True),
          ("infiltration channel", "infiltration", True),
          ("microenvironment channel", "microenvironment", True),
          ("three immune channels", "immune_channels", False))),
    Claim("T-cell toxicity of the targeted partner costs durability", (
        Comparison("progression-free time, combination vs T-cell-toxic combination",
                   "times", C, "progression_free", +1, "combination_t_cell_toxic"),)),
)


@dataclass(frozen=True)
class Result:
    claim: str
    comparison: Comparison
    n: int
    effect: float
    low: float
    high: float
    p_value: float
    holds: bool
    p_holm: float = math.nan


# --------------------------------------------------------------------------- endpoints
def _num(row, key) -> float:
    try:
        return float(row[key])
    except (KeyError, TypeError, ValueError):
        return math.nan


def _time(row, endpoint) -> tuple[float, bool]:
    if endpoint == "progression_free":
        return _num(row, "progression_free_days"), stats.is_true(row["progression_observed"])
    if endpoint == "time_to_response":
        return _num(row, "time_to_response_days"), True
    if endpoint == "resistant_takeover":   # censored at the last scan if it never happens
        days = _num(row, "time_to_resistance_days")
        return (days, True) if math.isfinite(days) else (_num(row, "follow_up_days"), False)
    return _num(row, "duration_of_response_days"), not stats.is_true(row["response_ongoing"])


def _binary(row, endpoint) -> bool:
    if endpoint == "early_shrinkage":
        return _num(row, "first_scan_change") <= EARLY_SHRINKAGE
    return stats.is_true(row[endpoint])


def _one_arm(rows, endpoint) -> list[bool]:
    """The outcomes a one-arm proportion counts, over the replicates it applies to."""
    if endpoint == "responder_progresses":
        return [stats.is_true(r["progression_observed"]) for r in rows
                if stats.is_true(r["objective_response"])]
    return [_num(r, "resistant_fraction_at_progression") > 0.5 for r in rows
            if stats.is_true(r["progression_observed"])]


def compare_one(c: Comparison, by_arm: dict[str, dict[int, dict]]) -> tuple:
    """(n, effect, low, high, p) of one comparison; n = 0 when an arm is missing."""
    x = by_arm.get(c.arm, {})
    if c.kind == "one_arm":
        outcomes = _one_arm(list(x.values()), c.endpoint)
        n, k = len(outcomes), sum(outcomes)
        if n == 0:
            return 0, math.nan, math.nan, math.nan, math.nan
        low, high = stats.clopper_pearson_interval(k, n)
        return n, k / n, low, high, stats.binomial_test_p(k, n, 0.5)
    y = by_arm.get(c.versus, {})
    shared = sorted(set(x) & set(y))
    if c.endpoint in ("time_to_response", "duration_of_response"):
        shared = [r for r in shared if stats.is_true(x[r]["objective_response"])
                  and stats.is_true(y[r]["objective_response"])]
    if not shared:
        return 0, math.nan, math.nan, math.nan, math.nan
    if c.kind == "proportions":
        cmp = stats.paired_proportions([_binary(x[r], c.endpoint) for r in shared],
                                       [_binary(y[r], c.endpoint) for r in shared])
    else:
        tx, ex = zip(*(_time(x[r], c.endpoint) for r in shared))
        ty, ey = zip(*(_time(y[r], c.endpoint) for r in shared))
        cmp = stats.paired_times(tx, ex, ty, ey,
                                 longer_is_better=c.endpoint != "time_to_response")
    return cmp.pairs, cmp.difference, cmp.low, cmp.high, cmp.p_value


def evaluate(rows: list[dict], claims=CLAIMS, alpha: float = ALPHA) -> list[Result]:
    """Every comparison of every claim over summary rows (``arm``, ``replicate`` and the
    endpoint columns, as in summary.csv), among the :func:`enrolled` patients: a pair
    counts only when its replicate is enrolled in both arms."""
    by_arm: dict[str, dict[int, dict]] = {}
    for row in enrolled(rows):
        by_arm.setdefault(row["arm"], {})[int(row["replicate"])] = row
    results = []
    for claim in claims:
        for c in claim.comparisons:
            n, effect, low, high, p = compare_one(c, by_arm)
            baseline = 0.5 if c.kind == "one_arm" else 0.0
            holds = (n > 0 and p < alpha and np.sign(effect - baseline) == c.direction)
            results.append(Result(claim.name, c, n, effect, low, high, p, bool(holds)))
    return _with_holm(results)


def _with_holm(results: list[Result]) -> list[Result]:
    """Holm's step-down adjustment over every comparison with a p-value."""
    order = sorted((r.p_value, i) for i, r in enumerate(results) if not math.isnan(r.p_value))
    m, running, adjusted = len(order), 0.0, {}
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return [Result(**{**r.__dict__, "p_holm": adjusted.get(i, math.nan)})
            for i, r in enumerate(results)]


def claim_holds(results: list[Result], name: str) -> bool:
    mine = [r for r in results if r.claim == name]
    return bool(mine) and all(r.holds for r in mine)


# --------------------------------------------------------------------------- report
_KINDS = {"proportions": ("difference", "exact McNemar test", "pairs"),
          "times": ("net benefit", "sign test", "pairs"),
          "one_arm": ("proportion", "exact binomial test vs 1/2", "patients")}


def effect_text(r: Result) -> str:
    kind = _KINDS[r.comparison.kind][0]
    if r.n == 0:
        return f"{kind} -"
    signed = r.comparison.kind != "one_arm"
    number = (lambda v: f"{v:+.2f}") if signed else (lambda v: f"{v:.2f}")
    return f"{kind} {number(r.effect)} ({number(r.low)} to {number(r.high)})"


def describe(r: Result) -> str:
    """One line a student can read: the comparison, its effect with the 95% interval, the
    test, and whether the model supports the statement."""
    _, test, unit = _KINDS[r.comparison.kind]
    if r.n == 0:
        verdict = "not testable: no replicate qualifies"
    elif r.holds:
        verdict = "SUPPORTED"
    elif r.p_value < ALPHA:
        verdict = "NOT SUPPORTED: significant, but the effect points the other way"
    else:
        verdict = f"NOT SUPPORTED by the model here (p >= {ALPHA})"
    return (f"{r.comparison.label}: {effect_text(r)}, {test} p = {_p(r.p_value)} over "
            f"{r.n} {unit} -> {verdict}")


def evaluate_study(study_dir, claims=CLAIMS) -> list[Result]:
    """``evaluate`` over a study directory's summary.csv."""
    with open(Path(study_dir) / "summary.csv", newline="") as fh:
        return evaluate(list(csv.DictReader(fh)), claims)


def print_lessons(results: list[Result], hints: dict[str, str]) -> None:
    """The examples' "Lessons" block: one line per comparison, and where the model does not
    support it, what the mechanism needs (``hints`` by claim name)."""
    print("Lessons (95% intervals; exact tests over the paired replicates):")
    for r in results:
        print(f"  {r.claim}\n    {describe(r)}")
        if not r.holds and r.claim in hints:
            print(f"    what it needs: {hints[r.claim]}")


def _pct(v):
    return "-" if math.isnan(v) else f"{v:+.0%}" if v < 0 else f"{v:.0%}"


def claims_markdown(results: list[Result]) -> str:
    lines = ["| claim | comparison | n | effect (95% CI) | p | p (Holm) | holds |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.claim} | {r.comparison.label} | {r.n} | {effect_text(r)} | "
                     f"{_p(r.p_value)} | {_p(r.p_holm)} | {'yes' if r.holds else '**no**'} |")
    failing = [c.name for c in CLAIMS if not claim_holds(results, c.name)
               and any(r.claim == c.name for r in results)]
    lines += ["", "Claims that do not hold: " + ("; ".join(failing) if failing else "none") + "."]
    return "\n".join(lines)


def _p(p: float) -> str:
    if math.isnan(p):
        return "-"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def arms_markdown(rows: list[dict], landmark_months) -> str:
    """One line per arm; every rate, median and count is over the arm's :func:`enrolled`
    patients, and the second column says how many of the arm's replicates those are."""
    by_arm: dict[str, list] = {}
    for row in rows:
        by_arm.setdefault(row["arm"], []).append({k: _cast(v) for k, v in row.items()})
    names = [f"PFS at {m:g} months" for m in landmark_months]
    lines = ["| arm | n enrolled of N | response (95% CI) | CR | median PFS, days (95% CI) | "
             + " | ".join(names) + " | median time to response, days | durable | "
             "reached the edge |",
             "|---|---|---|---|---|" + "---|" * len(names) + "---|---|---|"]
    for arm, everyone in by_arm.items():
        runs = enrolled(everyone)
        s = stats.arm_summary(runs, landmark_months)
        landmarks = [stats.format_estimate(s[f"pfs_{m:g}_months"], s[f"pfs_{m:g}_months_low"],
                                           s[f"pfs_{m:g}_months_high"], percent=True, digits=0)
                     for m in landmark_months]
        lines.append(
            f"| {arm} | {s['replicates']} of {len(everyone)} | "
            + stats.format_estimate(s["response_rate"], s["response_rate_low"],
                                    s["response_rate_high"], percent=True, digits=0)
            + f" | {_pct(s['complete_response_rate'])} | "
            + stats.format_estimate(s["median_ttp_days"], s["median_ttp_low"],
                                    s["median_ttp_high"], digits=0)
            + " | " + " | ".join(landmarks) + " | "
            + stats.format_time(s["median_time_to_response_days"], "", 0).strip()
            + f" | {_pct(s['durable_fraction'])} | {_edge_share(runs)} |")
    return "\n".join(lines)


def _edge_share(runs) -> str:
    """Runs whose tumour touched the lattice edge before their last record (box_limited)."""
    flags = [bool(r.get("box_limited")) for r in runs if "box_limited" in r]
    if not flags:
        return "-"
    return f"{sum(flags)}/{len(flags)}"


def _cast(value):
    if value in ("True", "False"):
        return value == "True"
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def markdown(rows, results, command: str, seconds: float, scenario) -> str:
    sim, ep = scenario.simulation, scenario.endpoints
    return "\n".join([
        "## The library against the review's claims", "",
        "Generated by `simulator/study/claims.py`; regenerate with:", "",
        f"    {command}", "",
        f"Base scenario `scenarios/melanoma.toml`: {'x'.join(map(str, sim.dimensions))} "
        f"lattice, dt {sim.dt_hours:g} h, treatment from day {sim.treatment_start_day:g} to "
        f"day {sim.duration_days:g}, scans "
        + (f"from day {ep.first_scan_days:g} after the treatment start, then "
           if ep.first_scan_days > 0 else "")
        + f"every {ep.scan_interval_days:g} days, seed "
        f"{sim.seed} (held out from calibration). Wall time {seconds / 60:.1f} min. "
        + ("Each run ends at the scan that calls progression, as a trial patient goes off "
           "study (`endpoints.off_study_at_progression`; a regimen that switches at "
           "progression is followed to the next line's progression). "
           if ep.off_study_at_progression else "")
        + "Rates and counts are over the enrolled patients (`n enrolled of N`: a tumour at "
        "the treatment start, as a trial enrols measurable disease; a tumour the immune "
        "system cleared before treatment is not a trial patient), in the claims too. "
        "`reached the edge`: runs whose tumour touched the lattice edge before their last "
        "record (then later burden is the box's). Response "
        "= confirmed best overall response PR/CR (RECIST 1.1 on the equivalent diameter); "
        f"durable = a response lasting >= {ep.durable_min_days:g} days. Arms share one "
        "pre-treatment tumour per replicate (common random numbers).", "",
        arms_markdown(rows, ep.landmark_months), "",
        "### Claims", "",
        f"A comparison holds when its two-sided test gives p < {ALPHA} with the effect in "
        "the stated direction; a claim holds when all its comparisons do.", "",
        claims_markdown(results), ""])


def write_doc(path: Path, generated: str):
    """Replace everything but the hand-written method section of ``path``."""
    text = path.read_text() if path.exists() else ""
    method = ""
    if METHOD_BEGIN in text and METHOD_END in text:
        method = text[text.index(METHOD_BEGIN):text.index(METHOD_END) + len(METHOD_END)]
    path.write_text("# Calibration and the review's claims\n\n"
                    + (method + "\n\n" if method else "") + generated)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.study.claims")
    parser.add_argument("--replicates", type=int, default=60)
    parser.add_argument("--seed", type=int, default=HOLDOUT_SEED,
                        help="simulation.seed; not one used in calibration")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("-o", "--output", default="claims-study")
    parser.add_argument("--doc", default=str(Path(__file__).resolve().parents[2] / "docs" /
                                             "calibration.md"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    from simulator import scenario as scenario_mod
    from simulator import study
    overrides = [f"simulation.seed={args.seed}"] + args.overrides
    started = time.perf_counter()
    report = study.compare([library_dir() / f"{arm}.toml" for arm in ARMS], args.replicates,
                           args.output, workers=args.workers, overrides=overrides,
                           progress=sys.stderr.isatty(), figures=True)
    seconds = time.perf_counter() - started
    with open(Path(args.output) / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    results = evaluate(rows)
    command = " ".join(["python -m simulator.study.claims", f"--replicates {args.replicates}",
                        f"--seed {args.seed}", f"--workers {args.workers}",
                        *(f"--set {o}" for o in args.overrides)])
    base = scenario_mod.load(library_dir() / "melanoma.toml", overrides)
    text = markdown(rows, results, command, seconds, base)
    write_doc(Path(args.doc), text)
    print(text)
    if report.failed:
        print(f"{len(report.failed)} runs failed", file=sys.stderr)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
