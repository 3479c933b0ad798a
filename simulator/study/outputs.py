"""Study outputs rebuilt from the run files on disk: study.h5, summary.csv, arms.csv.

Nothing here depends on how the runs were executed, so an interrupted or partly failed
study is summarised from whatever finished.
"""
from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np

from simulator import scenario as scenario_mod
from simulator.analysis.statistics import arm_summary, paired_differences
from simulator.output.runfile import read_run
from simulator.study.layout import atomic_path, is_complete, run_path
from simulator.study.runner import assess_run

STACKED_SERIES = ("tumor_cells", "tumor_sensitive", "tumor_resistant", "t_cells",
                  "suppressive_cells", "necrotic_cells", "divisions_total",
                  "resistance_mutations_total")


def _run_files(directory: Path, arms, replicates: int):
    for a, arm in enumerate(arms):
        for r in range(replicates):
            path = run_path(directory, arm.name, r)
            yield a, arm, r, path, is_complete(path)


def write_study(directory, arms, replicates: int, runs=None) -> Path:
    """``runs``: the (arm name, replicate) pairs to include (default: every complete run
    file of the arms and replicates); each file is written whole or not at all."""
    directory = Path(directory)
    rows, series, time_axis = [], {}, None
    for a, arm, r, path, complete in _run_files(directory, arms, replicates):
        if not complete or (runs is not None and (arm.name, r) not in runs):
            continue
        ts, scenario_text, cohort = read_run(path)
        scenario = scenario_mod.from_toml(scenario_text, str(path))
        e = assess_run(scenario, ts)
        if time_axis is None or len(ts["time_days"]) > len(time_axis):
            time_axis = ts["time_days"]
        series[(a, r)] = ts
        rows.append(dict(arm=arm.name, replicate=r, seed=scenario.simulation.seed,
                         path=str(path.relative_to(directory)),
                         **{f"cohort:{k}": v for k, v in cohort.items()}, **e.to_dict()))
    _write_csv(directory / "summary.csv", rows)
    _write_csv(directory / "arms.csv", arm_statistics(arms, rows))
    _write_study_h5(directory / "study.h5", arms, replicates, series, time_axis, rows)
    return directory / "study.h5"


def _write_csv(path: Path, rows: list[dict]):
    columns = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns or ["arm", "replicate"])
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


def arm_statistics(arms, rows) -> list[dict]:
    """Per arm: ``analysis.statistics.arm_summary`` (landmarks from the reference arm's
    ``endpoints.landmark_months``) and paired comparisons with the first (reference) arm
    over shared replicates (``analysis.statistics.paired_differences``)."""
    by_arm = {arm.name: {row["replicate"]: row for row in rows if row["arm"] == arm.name}
              for arm in arms}
    reference = arms[0].name
    landmarks = scenario_mod.from_toml(arms[0].toml).endpoints.landmark_months
    out = []
    for arm in arms:
        runs = by_arm[arm.name]
        row = dict(arm=arm.name, **arm_summary(list(runs.values()), landmarks))
        row.update(paired_differences(by_arm[reference], runs, prefix=f"vs_{reference}_"))
        out.append(row)
    return out


def _write_study_h5(path: Path, arms, replicates, series, time_axis, rows):
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(title="tumorsim study", arms=[a.name for a in arms],
                       reference_arm=arms[0].name, replicates=replicates)
        arm_ds = f.create_dataset("arm", data=np.array([a.name for a in arms], dtype=object),
                                  dtype=h5py.string_dtype())
        arm_ds.make_scale("arm")
        rep_ds = f.create_dataset("replicate", data=np.arange(replicates))
        rep_ds.make_scale("replicate")
        ts = f.create_group("timeseries")
        n_time = 0 if time_axis is None else len(time_axis)
        t = ts.create_dataset("time_days", data=np.zeros(0) if time_axis is None else time_axis)
        t.attrs.update(units="day")
        t.make_scale("time_days")
        a_scale = ts.create_dataset("arm", data=np.array([a.name for a in arms], dtype=object),
                                    dtype=h5py.string_dtype())
        a_scale.make_scale("arm")
        r_scale = ts.create_dataset("replicate", data=np.arange(replicates))
        r_scale.make_scale("replicate")
        names = [n for n in STACKED_SERIES if any(n in s for s in series.values())]
        drug_names = sorted({d for s in series.values() for d in s.get("drug", {})})
        for name in names + [f"drug_{d}" for d in drug_names]:
            data = np.full((len(arms), replicates, n_time), np.nan)
            for (a, r), s in series.items():
                if name.startswith("drug_"):
                    values = s.get("drug", {}).get(name[5:], np.zeros(len(s["time_days"])))
                else:
                    values = s[name]
                data[a, r, :len(values)] = values
            ds = ts.create_dataset(name, data=data, compression="gzip", chunks=True)
            ds.attrs["long_name"] = ("plasma concentration (mg/L) of " + name[5:]
                                     if name.startswith("drug_") else name.replace("_", " "))
            for axis, scale in enumerate((a_scale, r_scale, t)):
                ds.dims[axis].attach_scale(scale)
        ep = f.create_group("endpoints")
        columns = [c for c in (rows[0].keys() if rows else []) if c != "path"]
        for column in columns:
            values = [row.get(column) for row in rows]
            if all(isinstance(v, (bool, np.bool_)) for v in values):
                data = np.array(values, dtype=bool)
            elif all(isinstance(v, (int, float, np.integer, np.floating)) for v in values):
                data = np.array(values, dtype=float)
            else:
                data = np.array([str(v) for v in values], dtype=object)
            ep.create_dataset(column.replace(":", "_").replace("/", "_"), data=data,
                              dtype=h5py.string_dtype() if data.dtype == object else None)
