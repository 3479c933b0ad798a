"""Effective tumour turnover under contact inhibition (docs/model.md, "Effective turnover").

Only a cell beside free space divides, while every cell dies at rate d, so a growing
lattice tumour makes many more divisions per net cell gained than the parameters' d / b
suggests, and its mutational supply (divisions) is that much larger. This script grows
tumours from the library's settings (tumour only: no drugs, no immune cells) and prints,
per window of days, deaths / divisions and divisions per cell gained; it writes the table
as JSON beside the other benchmark results.

    python benchmarks/effective_turnover.py [--replicates 3] [--quick]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402,F401  (puts the repository root on sys.path)
from simulator import engine as engine_mod  # noqa: E402
from simulator.scenario import library_dir, load  # noqa: E402

CASES = {
    # name: overrides of tumor_only.toml (the default tumour without immune cells, vessels
    # or fields: the tumour's own turnover; oxygen-limited division would only raise the
    # core's ratio further)
    "2D b=0.5 d=0.05 (library rates)": ["simulation.dimensions=[400,400]",
                                        "simulation.duration_days=200"],
    "2D b=0.5 d=0.15": ["simulation.dimensions=[400,400]", "simulation.duration_days=200",
                        "tumor.death_rate_per_day=0.15"],
    "3D b=0.5 d=0.05": ["simulation.dimensions=[90,90,90]", "simulation.duration_days=60",
                        "initial.tumor_radius_sites=4"],
}


def measure(overrides: list[str], replicate: int) -> list[dict]:
    scenario = load(library_dir() / "tumor_only.toml",
                    overrides + ["output.snapshot_every_days=0",
                                 f"simulation.replicate={replicate}"])
    engine = engine_mod.Engine(scenario)
    steps_per_day = round(24 / scenario.simulation.dt_hours)
    days = int(scenario.simulation.duration_days)
    windows = np.linspace(0, days, 5).round().astype(int)
    rows, previous = [], engine.observe()
    for start, end in zip(windows[:-1], windows[1:]):
        engine_mod.run(scenario, engine=engine, until_step=end * steps_per_day)
        now = engine.observe()
        if now["tumor_cells_on_edge"]:
            break
        divisions = now["divisions_total"] - previous["divisions_total"]
        deaths = now["deaths_total"] - previous["deaths_total"]
        gained = now["tumor_cells"] - previous["tumor_cells"]
        rows.append(dict(days=f"{start}-{end}", cells_end=int(now["tumor_cells"]),
                         deaths_per_division=deaths / divisions,
                         divisions_per_cell_gained=divisions / gained if gained > 0 else
                         float("nan")))
        previous = now
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the 3D case only, one replicate")
    args = parser.parse_args(argv)
    engine_mod.set_threads(1)
    cases = {k: v for k, v in CASES.items() if k.startswith("3D")} if args.quick else CASES
    table = {}
    for name, overrides in cases.items():
        runs = [measure(overrides, r)
                for r in range(1 if args.quick else args.replicates)]
        table[name] = runs
        print(f"\n{name} ({len(runs)} replicates; mean, min-max)")
        print(f"{'days':>9} {'cells':>9} {'deaths/divisions':>18} {'divisions/cell gained':>22}")
        for i in range(min(len(r) for r in runs)):
            row = [r[i] for r in runs]
            ratio = [x["deaths_per_division"] for x in row]
            per = [x["divisions_per_cell_gained"] for x in row]
            print(f"{row[0]['days']:>9} {np.mean([x['cells_end'] for x in row]):9.0f} "
                  f"{np.mean(ratio):8.3f} ({min(ratio):.3f}-{max(ratio):.3f}) "
                  f"{np.mean(per):10.2f} ({min(per):.2f}-{max(per):.2f})")
    out = Path(__file__).parent / "results" / "effective_turnover.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(table, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
