"""``tumorsim calibrate``: fit scenario keys (patient heterogeneity included) to clinical
targets by history matching with Gaussian-process emulators (docs/calibration.md, "Method").

    spec        the calibration file: base scenario, arms, targets, fitted keys and ranges
    design      unit cube, Latin hypercubes, maximin picks (seeded, pure)
    simulate    one task = a parameter set x a replicate, every arm (common random numbers);
                local pool or Dask; each finished task appended to the store
    store       append-only JSON lines keyed by the scenario text: resume = rerun
    emulator    one GP per fitted target (scikit-learn), leave-one-out diagnostics
    waves       implausibility, waves, accepted sets and the best fit
    check       predictive check of the best fit: fitted and held-out targets

Output directory::

    DIR/store.jsonl        every simulation (the calibration resumes from it)
    DIR/calibration.toml   the calibration as run (seed and overrides resolved)
    DIR/waves.csv          per wave: points, candidates, not-ruled-out fraction, emulator LOO
    DIR/simulations.csv    every parameter set: values, fitted statistics, implausibility
    DIR/accepted.csv       the parameter sets consistent with every fitted target
    DIR/best_fit.toml      the best fit as a scenario (base + fitted keys): `tumorsim run` it
    DIR/check.csv|md|png   predictive check of the best fit
"""
from __future__ import annotations

import csv
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from simulator.study.calibration.check import predictive_check
from simulator.study.calibration.spec import (COHORT_KEY, Calibration, load, scenario_values,
                                              set_value)
from simulator.study.calibration.store import Store
from simulator.study.calibration.waves import PointResult, best_and_accepted, run_waves

__all__ = ["CalibrationResult", "calibrate", "load"]


@dataclass
class CalibrationResult:
    directory: Path
    results: list[PointResult]
    accepted: list[PointResult]
    best: PointResult | None
    check: list[dict]


def calibrate(calibration: Calibration, directory, *, workers: int = 1,
              scheduler: str | None = None, keep_runs: bool = False,
              log=print) -> CalibrationResult:
    """Run (or resume) the calibration into ``directory``; a pure function of the
    calibration file, its seed and the software version."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "calibration.toml").write_text(_provenance(calibration))
    store = Store(directory / "store.jsonl")
    results, wave_rows = run_waves(calibration, store, directory, workers=workers,
                                   scheduler=scheduler, keep_runs=keep_runs, log=log)
    best, accepted = best_and_accepted(calibration, results)
    _write_rows(directory / "waves.csv", wave_rows)
    rows = [_point_row(calibration, r) for r in results]
    _write_rows(directory / "simulations.csv", rows)
    _write_rows(directory / "accepted.csv", [row for row, r in zip(rows, results)
                                              if r in accepted])
    check = []
    if best is not None:
        write_best_fit(calibration, best, directory / "best_fit.toml", len(accepted))
        log(f"best fit: wave {best.wave} point {best.point}, largest implausibility "
            f"{best.max_implausibility:.2f} ({len(accepted)} of {len(results)} parameter sets "
            f"accepted at {calibration.spec.implausibility_cut:g})")
        check = predictive_check(calibration, best.values, store, directory, workers=workers,
                                 scheduler=scheduler, keep_runs=keep_runs, log=log)
    return CalibrationResult(directory, results, accepted, best, check)


def _provenance(calibration: Calibration) -> str:
    from simulator.output.runfile import software_version
    from simulator.scenario.toml_writer import dumps_toml
    from simulator.schema import to_table
    return (f"# as run by tumorsim {software_version()} from {calibration.source}\n"
            + dumps_toml(to_table(calibration.spec)))


def _point_row(calibration: Calibration, r: PointResult) -> dict:
    row = dict(wave=r.wave, point=r.point, complete=r.complete, **r.values)
    for target in calibration.fit:
        est = r.estimates.get(target.id)
        row[f"{target.id}"] = est.value if est else math.nan
        row[f"{target.id}:sd"] = math.sqrt(r.variance[target.id]) if est else math.nan
        row[f"{target.id}:implausibility"] = r.implausibility.get(target.id, math.nan)
    row["max_implausibility"] = r.max_implausibility
    return row


def _write_rows(path: Path, rows: list[dict]):
    columns = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns or ["wave"])
        writer.writeheader()
        writer.writerows(rows)


def write_best_fit(calibration: Calibration, best: PointResult, path: Path, accepted: int):
    """A scenario that inherits the base scenario and sets the fitted keys (and the
    calibration's overrides, if any); loaded back to prove `tumorsim run` accepts it."""
    from simulator import scenario as scenario_mod
    from simulator.scenario.overrides import apply_overrides
    from simulator.scenario.toml_writer import dumps_toml, toml_value
    library = scenario_mod.library_dir().resolve()
    base = calibration.base_path
    base_ref = str(base.relative_to(library)) if base.is_relative_to(library) else str(base)
    table = apply_overrides({}, list(calibration.spec.overrides))
    resolved = tomllib.loads(calibration.base_toml)
    fitted = scenario_values(calibration.parameters,
                             [best.values[p.label] for p in calibration.parameters])
    for key, value in fitted.items():
        if COHORT_KEY.match(key):
            resolved = set_value(resolved, key, value)
            table["cohort"] = resolved["cohort"]
        else:
            table = set_value(table, key, value)
    header = (f"# Best fit of `tumorsim calibrate {calibration.source}` (seed "
              f"{calibration.spec.seed}): wave {best.wave}, point {best.point}; largest "
              f"implausibility {best.max_implausibility:.2f}; {accepted} parameter set(s) "
              "accepted.\n# Targets: " + ", ".join(t.id for t in calibration.fit) + "\n")
    path.write_text(header + f"base = {toml_value(base_ref)}\n" + dumps_toml(table))
    scenario_mod.load(path)
    return path
