"""One self-describing HDF5 file per run, written incrementally.

Layout (the contract in DESIGN.md; netCDF-4 compatible through HDF5 dimension scales, so
``xarray.open_dataset(path, engine="h5netcdf", group="timeseries")`` works):

- root attributes: software_version, seed, replicate, arm, scenario_sha256, created,
  status ("running" -> "complete", or "incomplete" after an interruption), steps_completed,
  git_commit, command_line and library versions; ``/provenance/scenario_toml``.
- ``/timeseries``: ``time_days`` (the time dimension) and one 1-D series per counter,
  ``tumor_by_clone`` (time x clone); ``/timeseries/drug/<name>`` per drug (plasma) and
  ``/timeseries/drug_tissue/<name>`` per drug with spatial penetration (mean tissue
  concentration over the tumour cells).
- ``/snapshots``: ``time_days`` (the snapshot dimension), ``x``/``y``/``z`` coordinates in
  um, ``cell_type`` (snapshot x lattice, uint8, gzip, one frame per chunk) with
  ``flag_values``/``flag_meanings``, ``clone`` (resistance mask of tumour cells), and
  ``fields/<name>`` (snapshot x lattice, float32) for each name in
  ``output.snapshot_fields``.
- ``/summary`` attributes: endpoints of the run.

Records are buffered and flushed every ``FLUSH_SECONDS`` of wall time (or ``FLUSH_EVERY``
records), at every snapshot and on close — Ctrl-C and SIGTERM close the file — so only a
hard kill loses records, at most a couple of seconds' worth; each flush rewrites some 20
datasets and the file's metadata, which per record would cost as much as a small step. The
status attribute tells a reader whether the file is finished.
"""
from __future__ import annotations

import datetime
import time
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from kernels.lattice import KIND_NAMES
from simulator.model.penetration import FIELD_PREFIX as PENETRATION_FIELD_PREFIX
from simulator.model.penetration import penetrating

FLUSH_EVERY = 4096
FLUSH_SECONDS = 2.0
SCALAR_SERIES = {
    "tumor_cells": ("cells", "tumour cells"),
    "tumor_sensitive": ("cells", "tumour cells sensitive to every target"),
    "tumor_resistant": ("cells", "tumour cells resistant to at least one target"),
    "t_cells": ("cells", "cytotoxic T cells"),
    "suppressive_cells": ("cells", "suppressive cells (Tregs / MDSCs / M2 macrophages)"),
    "dead_cells": ("sites", "sites holding dead-cell debris"),
    "necrotic_cells": ("sites", "sites holding necrotic tissue"),
    "divisions_total": ("divisions", "cumulative tumour divisions"),
    "deaths_total": ("cells", "cumulative tumour deaths (base rate and drug kill)"),
    "resistance_mutations_total": ("events", "cumulative resistance mutation events"),
    "mutable_divisions_total": ("divisions", "cumulative divisions whose daughter could "
                                "gain a resistance (parent lacks one)"),
    "t_cells_exhausted": ("cells", "exhausted cytotoxic T cells"),
    "tumor_cells_on_edge": ("cells", "tumour cells on the lattice's outer faces (the box "
                            "limits the tumour from the first record where this is > 0)"),
    "kills_total": ("cells", "cumulative tumour cells killed by T cells"),
}
# Float series: (units, long_name); "{density}" becomes cells/mm^2 (2D) or cells/mm^3 (3D).
# NaN where undefined (no tumour cell; no core when the tumour is thinner than the margin).
FLOAT_SERIES = {
    "mean_pdl1": ("1", "mean PD-L1 level of tumour cells (relative units)"),
    "t_cell_density_core": ("{density}", "T-cell density in the tumour core: within the "
                            "equivalent radius less output.margin_width_um of the tumour "
                            "centre of mass"),
    "t_cell_density_margin": ("{density}", "T-cell density in the invasive margin: within "
                              "output.margin_width_um of the equivalent radius"),
}
CONCENTRATION_SERIES = {"drug": "plasma concentration of {name}",
                        "drug_tissue": "mean tissue concentration of {name} over the tumour "
                                       "cells"}
FIELD_UNITS = {"oxygen": "mmHg", "chemokine": "ng/mL", "ifn_gamma": "ng/mL",
               "suppressive_cytokine": "ng/mL"}


class OutputError(ValueError):
    """A missing, corrupt or foreign output file: one line naming the file."""


def software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("tumorsim")
    except PackageNotFoundError:
        return "0+unknown"


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _library_versions() -> str:
    import numba
    import scipy
    return (f"python {sys.version.split()[0]}; numpy {np.__version__}; numba {numba.__version__}; "
            f"scipy {scipy.__version__}; h5py {h5py.__version__}; hdf5 {h5py.version.hdf5_version}")


def _string_dataset(group, name, text):
    group.create_dataset(name, data=text, dtype=h5py.string_dtype("utf-8"))


class Recorder:
    """Writes one run's HDF5 file as the run goes; use as a context manager."""

    def __init__(self, path, scenario, *, arm: str = "", extra_attrs: dict | None = None,
                 n_clones: int = 2, drug_names=(), snapshot_days=None):
        sim = scenario.simulation
        self._start(path, scenario, n_clones, drug_names,
                    _snapshot_steps(scenario) if snapshot_days is None else
                    {int(round(d * 24.0 / sim.dt_hours)) for d in snapshot_days})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = h5py.File(self.path, "w", libver="latest")
        self._write_header(arm, extra_attrs or {})

    def _start(self, path, scenario, n_clones, drug_names, snapshot_steps):
        self.path = Path(path)
        self.scenario = scenario
        self.n_clones = n_clones
        self.drug_names = list(drug_names)
        self.tissue_drug_names = penetrating(scenario.drugs)
        self._snapshot_steps = snapshot_steps
        self._buffer: list[dict] = []
        self._written = 0
        self._last_flush = time.monotonic()

    @classmethod
    def resume(cls, path, scenario, *, arm: str = "", n_clones: int = 2, drug_names=()):
        """Reopen a run file (e.g. a copy of a pre-treatment history) to continue it under
        ``scenario``: provenance and arm are replaced, records are appended."""
        self = cls.__new__(cls)
        self._start(path, scenario, n_clones, drug_names, _snapshot_steps(scenario))
        self.file = h5py.File(self.path, "r+")
        f = self.file
        f.attrs.update(arm=arm, scenario_sha256=scenario.sha256, status="running",
                       stage="treatment")
        del f["provenance/scenario_toml"]
        _string_dataset(f["provenance"], "scenario_toml", scenario.to_toml())
        ts = f["timeseries"]
        n = ts["time_days"].shape[0]
        for group, names in self._concentration_groups():
            for name in names:  # no drug was given before the treatment start
                if group in ts and name in ts[group]:
                    del ts[group][name]
                ds = self._concentration_series(group, name)
                ds.resize(n, axis=0)
                ds[:] = 0.0
        n_snapshots = f["snapshots/time_days"].shape[0]
        for name in self.scenario.output.snapshot_fields:
            if "fields" in f["snapshots"] and name in f["snapshots/fields"]:
                continue
            # a field the arm saves and the pre-treatment run did not: its earlier frames
            # are NaN (not recorded), or 0 for a drug's field (no drug before the treatment)
            ds = self._field_snapshots(name)
            ds.resize(n_snapshots, axis=0)
            ds[:] = 0.0 if name.startswith(PENETRATION_FIELD_PREFIX) else np.nan
        return self

    def _concentration_groups(self):
        """(``/timeseries`` group, drug names) of the per-drug series; the group name is also
        the key of the observation that carries their values."""
        return [(group, names) for group, names in (("drug", self.drug_names),
                                                    ("drug_tissue", self.tissue_drug_names))
                if names]

    def _concentration_series(self, group, name):
        ts = self.file["timeseries"]
        ds = ts.require_group(group).create_dataset(name, shape=(0,), maxshape=(None,),
                                                    dtype="f8", chunks=(1024,))
        ds.attrs.update(units="mg/L", long_name=CONCENTRATION_SERIES[group].format(name=name))
        ds.dims[0].attach_scale(ts["time_days"])
        return ds

    def write_cohort(self, values: dict):
        g = self.file.require_group("cohort")
        g.attrs["description"] = "per-patient parameters drawn for this replicate ([[cohort]])"
        for key, value in values.items():
            g.attrs[key] = value

    # ------------------------------------------------------------------ layout
    def _write_header(self, arm, extra):
        f, sim = self.file, self.scenario.simulation
        f.attrs.update(dict(
            software_version=software_version(), seed=sim.seed, replicate=sim.replicate,
            arm=arm, scenario_sha256=self.scenario.sha256,
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            status="running", steps_completed=0, git_commit=git_commit(),
            command_line=" ".join(sys.argv), library_versions=_library_versions(),
            dimensions=np.array(sim.dimensions, dtype=np.int64), dt_hours=sim.dt_hours,
            spacing_um=sim.spacing_um, treatment_start_day=sim.treatment_start_day,
            Conventions="CF-1.8",
            title="tumorsim run",
        ))
        for key, value in extra.items():
            f.attrs[key] = value
        prov = f.create_group("provenance")
        _string_dataset(prov, "scenario_toml", self.scenario.to_toml())
        ts = f.create_group("timeseries")
        time_ds = ts.create_dataset("time_days", shape=(0,), maxshape=(None,), dtype="f8",
                                    chunks=(1024,))
        time_ds.attrs.update(units="day", long_name="simulated time")
        time_ds.make_scale("time_days")
        clone_ds = ts.create_dataset("clone", data=np.arange(self.n_clones, dtype=np.int64))
        clone_ds.attrs.update(long_name="resistance bit mask (bit t: resistant to target t)",
                              targets=", ".join(self.scenario.tumor.resistance_targets))
        clone_ds.make_scale("clone")
        for name, (units, long_name) in SCALAR_SERIES.items():
            ds = ts.create_dataset(name, shape=(0,), maxshape=(None,), dtype="i8", chunks=(1024,))
            ds.attrs.update(units=units, long_name=long_name)
            ds.dims[0].attach_scale(time_ds)
        density = f"cells/mm^{len(self.scenario.simulation.dimensions)}"
        for name, (units, long_name) in FLOAT_SERIES.items():
            ds = ts.create_dataset(name, shape=(0,), maxshape=(None,), dtype="f8", chunks=(1024,))
            ds.attrs.update(units=units.format(density=density), long_name=long_name)
            ds.dims[0].attach_scale(time_ds)
        by_clone = ts.create_dataset("tumor_by_clone", shape=(0, self.n_clones),
                                     maxshape=(None, self.n_clones), dtype="i8",
                                     chunks=(256, self.n_clones))
        by_clone.attrs.update(units="cells", long_name="tumour cells per clone")
        by_clone.dims[0].attach_scale(time_ds)
        by_clone.dims[1].attach_scale(clone_ds)
        for group, names in self._concentration_groups():
            for name in names:
                self._concentration_series(group, name)
        self._init_snapshots()

    def _init_snapshots(self):
        sim = self.scenario.simulation
        snap = self.file.create_group("snapshots")
        t = snap.create_dataset("time_days", shape=(0,), maxshape=(None,), dtype="f8", chunks=(64,))
        t.attrs.update(units="day", long_name="time of the snapshot")
        t.make_scale("time_days")
        scales = [t]
        for axis, n in zip("xyz", sim.dimensions):
            c = snap.create_dataset(axis, data=(np.arange(n) + 0.5) * sim.spacing_um)
            c.attrs.update(units="um", long_name=f"{axis} of the site centre")
            c.make_scale(axis)
            scales.append(c)
        level = self.scenario.output.compression
        for name, long_name in (("cell_type", "cell kind at each site"),
                                ("clone", "resistance bit mask of the tumour cell at each site")):
            ds = snap.create_dataset(name, shape=(0, *sim.dimensions),
                                     maxshape=(None, *sim.dimensions), dtype="u1",
                                     chunks=(1, *sim.dimensions), compression="gzip",
                                     compression_opts=level, shuffle=False)
            ds.attrs["long_name"] = long_name
            for axis, scale in enumerate(scales):
                ds.dims[axis].attach_scale(scale)
        snap["cell_type"].attrs.update(
            flag_values=np.arange(len(KIND_NAMES), dtype=np.uint8),
            flag_meanings=" ".join(KIND_NAMES))
        for name in self.scenario.output.snapshot_fields:
            self._field_snapshots(name)

    def _field_snapshots(self, name):
        """The dataset ``/snapshots/fields/<name>`` (snapshot x lattice, float32)."""
        sim, snap = self.scenario.simulation, self.file["snapshots"]
        group = snap.require_group("fields")
        ds = group.create_dataset(name, shape=(0, *sim.dimensions),
                                  maxshape=(None, *sim.dimensions), dtype="f4",
                                  chunks=(1, *sim.dimensions), compression="gzip",
                                  compression_opts=self.scenario.output.compression, shuffle=True)
        units = "mg/L" if name.startswith(PENETRATION_FIELD_PREFIX) else FIELD_UNITS.get(name, "")
        ds.attrs.update(units=units, long_name=f"{name.replace('_', ' ')} at each site (quasi-"
                                               "steady field of the step that ended here)")
        for axis, scale in enumerate(["time_days", *"xyz"[:len(sim.dimensions)]]):
            ds.dims[axis].attach_scale(snap[scale])
        return ds

    # ------------------------------------------------------------------ writing
    def record(self, engine):
        self._buffer.append(engine.observe())
        step = engine.state.step
        if step in self._snapshot_steps or step >= self.scenario.simulation.steps:
            self._flush()
            self._snapshot(engine)
        elif (len(self._buffer) >= FLUSH_EVERY
              or time.monotonic() - self._last_flush >= FLUSH_SECONDS):
            self._flush()

    def _append(self, ds, values):
        n = ds.shape[0]
        ds.resize(n + len(values), axis=0)
        ds[n:] = values

    def _flush(self):
        if not self._buffer:
            return
        ts = self.file["timeseries"]
        rows = self._buffer
        self._append(ts["time_days"], np.array([r["time_days"] for r in rows]))
        for name in SCALAR_SERIES:
            self._append(ts[name], np.array([r[name] for r in rows], dtype=np.int64))
        for name in FLOAT_SERIES:
            self._append(ts[name], np.array([r[name] for r in rows], dtype=np.float64))
        self._append(ts["tumor_by_clone"], np.stack([r["tumor_by_clone"] for r in rows]))
        for group, names in self._concentration_groups():
            for name in names:
                self._append(ts[group][name], np.array([r[group][name] for r in rows]))
        self._written += len(rows)
        self._buffer = []
        self._last_flush = time.monotonic()
        self.file.attrs["steps_completed"] = int(round(rows[-1]["time_days"] * 24.0
                                                       / self.scenario.simulation.dt_hours))
        self.file.flush()

    def series(self) -> dict:
        """Every record so far (buffer flushed), named as ``/timeseries``."""
        self._flush()
        return timeseries_of(self.file)

    def _snapshot(self, engine):
        snap = self.file["snapshots"]
        if snap["time_days"].shape[0] and snap["time_days"][-1] == engine.time_days:
            return
        self._append(snap["time_days"], np.array([engine.time_days]))
        self._append(snap["cell_type"], engine.state.grid()[None])
        self._append(snap["clone"], engine.state.grid(engine.state.clone)[None])
        for name in self.scenario.output.snapshot_fields:
            self._append(snap["fields"][name], engine.field(name).astype(np.float32)[None])
        self.file.flush()

    def write_doses(self, doses):
        """``doses``: the regimen's dose log (step, day, drug, amount_mg, reason): the doses
        actually given, rules included."""
        g = self.file.require_group("doses")
        dtype = np.dtype([("step", "i8"), ("day", "f8"), ("drug", h5py.string_dtype()),
                          ("amount_mg", "f8"), ("reason", h5py.string_dtype())])
        table = np.array([(d.step, d.day, d.drug, d.amount_mg, d.reason) for d in doses],
                         dtype=dtype)
        if "table" in g:
            del g["table"]
        g.create_dataset("table", data=table)

    def write_summary(self, values: dict):
        g = self.file.require_group("summary")
        for key, value in values.items():
            g.attrs[key] = value

    def close(self, status: str):
        if self.file:
            self._flush()
            self.file.attrs["status"] = status
            self.file.close()
            self.file = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.file:
            self.close("complete" if exc_type is None else "incomplete")
        return False


def _snapshot_steps(scenario) -> set[int]:
    sim, every = scenario.simulation, scenario.output.snapshot_every_days
    steps = {0, sim.steps}
    if every > 0:
        per = max(1, int(round(every * 24.0 / sim.dt_hours)))
        steps.update(range(0, sim.steps + 1, per))
    return steps


# ---------------------------------------------------------------------- reading
def open_run(path) -> h5py.File:
    """Open a run file for reading, or raise OutputError with one clear line."""
    path = Path(path)
    if not path.exists():
        raise OutputError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise OutputError(f"{path}: not a readable HDF5 file ({str(exc).split('(')[0].strip()})") from None
    if "timeseries" not in f or "provenance" not in f:
        f.close()
        raise OutputError(f"{path}: not a tumorsim run file (no /timeseries or /provenance)")
    return f


def timeseries_of(f: h5py.File) -> dict:
    """``/timeseries`` of an open run file as arrays (drug series under ``"drug"`` and
    ``"drug_tissue"``)."""
    ts = f["timeseries"]
    out = {name: ts[name][()] for name in ts if isinstance(ts[name], h5py.Dataset)}
    for group in ("drug", "drug_tissue"):
        if group in ts:
            out[group] = {name: ts[group][name][()] for name in ts[group]}
    return out


def read_timeseries(path) -> dict:
    with open_run(path) as f:
        return timeseries_of(f)


def read_run(path) -> tuple[dict, str, dict]:
    """One opening of a run file: its time series, resolved scenario text and the cohort
    values drawn for it ({} without a cohort)."""
    with open_run(path) as f:
        cohort = {k: float(v) for k, v in f["cohort"].attrs.items()
                  if k != "description"} if "cohort" in f else {}
        return timeseries_of(f), f["provenance/scenario_toml"][()].decode(), cohort


def describe_run(path) -> str:
    """A short human summary of a run file (``tumorsim inspect OUT.h5``)."""
    with open_run(path) as f:
        a = f.attrs
        ts = f["timeseries"]
        n = ts["time_days"].shape[0]
        lines = [f"{path}",
                 f"  status: {a.get('status')}  (steps completed: {a.get('steps_completed')})",
                 f"  software {a.get('software_version')}  commit {a.get('git_commit') or '-'}"
                 f"  created {a.get('created')}",
                 f"  seed {a.get('seed')}  replicate {a.get('replicate')}  arm {a.get('arm')!r}"
                 f"  scenario sha256 {str(a.get('scenario_sha256'))[:12]}",
                 f"  lattice {[int(n) for n in a.get('dimensions')]}  dt {a.get('dt_hours')} h",
                 f"  records: {n}  snapshots: {f['snapshots/time_days'].shape[0]}"]
        if n:
            t = ts["time_days"][-1]
            lines.append(f"  last record: day {t:g}: tumour {ts['tumor_cells'][-1]} "
                         f"(resistant {ts['tumor_resistant'][-1]}), T cells {ts['t_cells'][-1]}, "
                         f"suppressive {ts['suppressive_cells'][-1]}")
        if "summary" in f:
            for key, value in f["summary"].attrs.items():
                lines.append(f"  {key}: {value}")
        return "\n".join(lines)
