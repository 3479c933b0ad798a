"""Best overall response (CR / PR / SD / PD), median PFS and the patients who progressed
(and how many of them had responded first: relapses), per arm of ``tumorsim compare``
outputs (their ``summary.csv``), one line each, and with ``--by-months M`` also the complete and partial responses a report cut off M months after
the treatment start would count (``simulator.analysis.targets.at_cut_off``):

    python docs/probes/tally.py [--by-months 12] OUT [OUT ...]"""
import csv
import math
import sys
from pathlib import Path

from simulator.analysis.statistics import DAYS_PER_MONTH, km_median
from simulator.analysis.targets import at_cut_off


def tally(out: Path, by_months: float | None = None) -> list[str]:
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    lines = []
    for arm in dict.fromkeys(r["arm"] for r in rows):
        runs = [r for r in rows if r["arm"] == arm]
        classes = {c: sum(r["response_class"] == c for r in runs) for c in ("CR", "PR", "SD", "PD")}
        progressed = [r["progression_observed"] == "True" for r in runs]
        days = [float(r["progression_free_days"]) for r in runs]
        median = km_median(days, progressed)[0]
        shown = "not reached" if math.isinf(median) else f"{median / 30.4375:.1f} mo"
        responders = [p for r, p in zip(runs, progressed) if r["response_class"] in ("CR", "PR")]
        lines.append(f"{out.name:10s} {arm:24s} " + " / ".join(
            f"{classes[c]}" for c in classes) + f" (CR/PR/SD/PD of {len(runs)}); median PFS "
            f"{shown}; progressed {sum(progressed)} (responders: {sum(responders)} of "
            f"{len(responders)})")
        if by_months is not None:
            cut = [at_cut_off(r, by_months * DAYS_PER_MONTH) for r in runs]
            count = {c: sum(r["response_class"] == c for r in cut) for c in ("CR", "PR")}
            lines[-1] += f"; by {by_months:g} mo: CR {count['CR']}, PR {count['PR']}"
    return lines


if __name__ == "__main__":
    args = sys.argv[1:]
    months = None
    if args[:1] == ["--by-months"]:
        months, args = float(args[1]), args[2:]
    for out in args:
        print("\n".join(tally(Path(out), months)))
