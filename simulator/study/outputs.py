"""Study outputs rebuilt from the run files on disk: study.h5, summary.csv, arms.csv.

Nothing here depends on how the runs were executed, so an interrupted or partly failed
study is summarised from whatever finished. Every column and dataset is declared, with its
unit and meaning, in :mod:`simulator.output.catalog`; study.h5 carries those as CF
``units`` / ``long_name`` attributes, and every group opens with
``xarray.open_dataset(path, engine="h5netcdf", group=...)``. CSV numbers are written
clean (:func:`csv_number`).
"""
from __future__ import annotations

import csv
import datetime
import math
import sys
from pathlib import Path

import h5py
import numpy as np

from simulator import scenario as scenario_mod
from simulator.analysis.statistics import arm_summary, paired_differences
from simulator.output import catalog
from simulator.output.runfile import git_commit, library_versions, read_run, software_version
from simulator.study.layout import atomic_path, is_complete, run_path
from simulator.study.runner import assess_run

STACKED_SERIES = ("tumor_cells", "tumor_sensitive", "tumor_resistant", "t_cells",
                  "suppressive_cells", "necrotic_cells", "divisions_total",
                  "resistance_mutations_total")

#: Series that stay zero after a run ends on an eradicated tumour (endpoints.end_at_eradication)
ERADICATED_STAYS_ZERO = ("tumor_cells", "tumor_sensitive", "tumor_resistant")


def _run_files(directory: Path, arms, replicates: int):
    for a, arm in enumerate(arms):
        for r in range(replicates):
            path = run_path(directory, arm.name, r)
            yield a, arm, r, path, is_complete(path)


def write_study(directory, arms, replicates: int, runs=None, *,
                wall_seconds: float = math.nan) -> Path:
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
    _write_study_h5(directory / "study.h5", arms, replicates, series, time_axis, rows,
                    wall_seconds)
    return directory / "study.h5"


#: Significant digits of CSV floats: far finer than any endpoint's resolution (days in
#: steps of hours, shares of at most millions of runs), coarse enough to drop binary noise.
CSV_DIGITS = 12
#: Magnitudes below this are floating-point residue of a difference (0.1 - 0.1 + ...), 0.
CSV_ZERO = 1e-12


def csv_number(value) -> str:
    """A CSV cell: ints as ints, True/False, floats to ``CSV_DIGITS`` significant digits
    without residue (``2.7755575615628914e-17`` -> ``0``), ``nan`` / ``inf`` spelled so."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if abs(v) < CSV_ZERO:
            return "0"
        text = f"{v:.{CSV_DIGITS}g}"
        return text if "e" in text or "." not in text else text.rstrip("0").rstrip(".")
    return "" if value is None else str(value)


def _write_csv(path: Path, rows: list[dict]):
    columns = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns or ["arm", "replicate"])
        for row in rows:
            writer.writerow([csv_number(row.get(c, "")) for c in columns])


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


def _describe(ds, declared: catalog.Item | None, name: str):
    """CF ``units`` and ``long_name`` of a study.h5 dataset, from its declaration."""
    if declared is None:
        ds.attrs["long_name"] = name.replace("_", " ")
        return
    ds.attrs["long_name"] = declared.meaning
    if declared.units and not declared.units.startswith("("):
        ds.attrs["units"] = declared.units


def _string_scale(group, name, values, long_name):
    ds = group.create_dataset(name, data=np.array(values, dtype=object),
                              dtype=h5py.string_dtype())
    ds.attrs["long_name"] = long_name
    ds.make_scale(name)
    return ds


def _index_scale(group, name, n, long_name):
    ds = group.create_dataset(name, data=np.arange(n, dtype=np.int64))
    ds.attrs["long_name"] = long_name
    ds.make_scale(name)
    return ds


def _write_study_h5(path: Path, arms, replicates, series, time_axis, rows,
                    wall_seconds=math.nan):
    """study.h5 (layout and meaning: ``catalog.STUDY_ATTRIBUTES`` / ``STUDY_DATASETS``)."""
    names_of_arms = [a.name for a in arms]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(
            title="tumorsim study", Conventions=catalog.CONVENTIONS, arms=names_of_arms,
            reference_arm=arms[0].name, replicates=replicates,
            software_version=software_version(), git_commit=git_commit(),
            library_versions=library_versions(),
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            command_line=" ".join(sys.argv), wall_seconds=float(wall_seconds))
        _string_scale(f, "arm", names_of_arms, "arm name")
        _index_scale(f, "replicate", replicates, "replicate index")
        ts = f.create_group("timeseries")
        n_time = 0 if time_axis is None else len(time_axis)
        t = ts.create_dataset("time_days", data=np.zeros(0) if time_axis is None else time_axis)
        t.attrs.update(units="day", long_name="simulated time")
        t.make_scale("time_days")
        a_scale = _string_scale(ts, "arm", names_of_arms, "arm name")
        r_scale = _index_scale(ts, "replicate", replicates, "replicate index")
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
                if name in ERADICATED_STAYS_ZERO and len(values) and s["tumor_cells"][-1] == 0:
                    data[a, r, len(values):] = 0  # ended on an eradicated tumour: no cell returns
            ds = ts.create_dataset(name, data=data, compression="gzip", chunks=True,
                                   fillvalue=np.nan)
            if name.startswith("drug_"):
                ds.attrs.update(units="mg/L",
                                long_name=f"plasma concentration of {name[5:]}")
            else:
                _describe(ds, catalog.run_series(name), name)
            for axis, scale in enumerate((a_scale, r_scale, t)):
                ds.dims[axis].attach_scale(scale)
        ep = f.create_group("endpoints")
        run = _index_scale(ep, "run", len(rows), "row of summary.csv (one finished run)")
        summary = catalog.table("summary-csv")
        columns = [c for c in (rows[0].keys() if rows else []) if c != "path"]
        for column in columns:
            values = [row.get(column) for row in rows]
            if all(isinstance(v, (bool, np.bool_)) for v in values):
                data = np.array(values, dtype=bool)
            elif all(isinstance(v, (int, float, np.integer, np.floating)) for v in values):
                data = np.array(values, dtype=float)
            else:
                data = np.array([str(v) for v in values], dtype=object)
            ds = ep.create_dataset(column.replace(":", "_").replace("/", "_"), data=data,
                                   dtype=h5py.string_dtype() if data.dtype == object else None)
            ds.dims[0].attach_scale(run)
            _describe(ds, summary.find(column), column)
