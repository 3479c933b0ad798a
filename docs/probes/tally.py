"""Best overall response (CR / PR / SD / PD), median PFS and the patients who progressed,
per arm of ``tumorsim compare`` outputs (their ``summary.csv``), one line each:

    python docs/probes/tally.py OUT [OUT ...]"""
import csv
import math
import sys
from pathlib import Path

from simulator.analysis.statistics import km_median


def tally(out: Path) -> list[str]:
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
        lines.append(f"{out.name:10s} {arm:24s} " + " / ".join(
            f"{classes[c]}" for c in classes) + f" (CR/PR/SD/PD of {len(runs)}); median PFS "
            f"{shown}; progressed {sum(progressed)}")
    return lines


if __name__ == "__main__":
    for out in sys.argv[1:]:
        print("\n".join(tally(Path(out))))
