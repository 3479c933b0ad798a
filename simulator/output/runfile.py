"""One self-describing HDF5 file per run: its layout, writing it, reading it.

Layout (the contract in DESIGN.md; netCDF-4 compatible through HDF5 dimension scales, so
``xarray.open_dataset(path, engine="h5netcdf", group="timeseries")`` works):

- root attributes: software_version, seed, replicate, arm, scenario_sha256, created,
  status ("complete" in a finished run file; "incomplete" in one recovered from an
  interrupted run, "running" while a partial run is read as it goes), steps_completed,
  git_commit, command_line and library versions; ``/provenance/scenario_toml``. With
  checkpoint/restart also ``resumed_at_steps`` (int64 array; only in a run continued from
  a checkpoint: the steps it was resumed at — ``created`` and ``command_line`` stay those
  of the first start). ``edge_contact_day`` (first record with tumour on the lattice's
  faces), ``off_study_day`` (the run ended there, at progression, before its horizon:
  ``endpoints.off_study_at_progression``) and ``eradicated_day`` (the run ended there with
  no live tumour cell: ``endpoints.end_at_eradication``), each NaN when it did not happen.
- ``/timeseries``: ``time_days`` (the time dimension) and one 1-D series per counter,
  ``tumor_by_clone`` (time x clone); ``/timeseries/drug/<name>`` per drug (plasma) and
  ``/timeseries/drug_tissue/<name>`` per drug with spatial penetration (mean tissue
  concentration over the tumour cells).
- ``/snapshots``: ``time_days`` (the snapshot dimension), ``x``/``y``/``z`` coordinates in
  um, ``cell_type`` (snapshot x lattice, uint8, gzip, one frame per chunk) with
  ``flag_values``/``flag_meanings``, ``clone`` (resistance mask of tumour cells), and
  ``fields/<name>`` (snapshot x lattice, float32) for each name in
  ``output.snapshot_fields`` (NaN in frames that did not record it: a compare arm's
  frames from before the fork; 0 for a drug's field there, as no drug was given).
- ``/doses/table``, ``/cohort`` attributes, ``/summary`` attributes: endpoints of the run.

A run file is written once, complete: while the run goes, its records live in the journal
of its partial directory (``OUT.h5.partial-<pid>-<n>/``, :mod:`simulator.output.partial`;
why: :mod:`simulator.output.journal`), and :class:`RunContents` turns a journal into this
layout — at the end of the run (then renamed onto ``OUT.h5``), for ``tumorsim recover``, and
for :func:`open_run` of a partial run (in memory). The recorder that writes the journal is
:mod:`simulator.output.recorder`.
"""
from __future__ import annotations

import math
import subprocess
import sys
import uuid
from pathlib import Path

import h5py
import numpy as np

from kernels.lattice import KIND_NAMES
from simulator.analysis.endpoints import edge_contact_day
from simulator.model.penetration import FIELD_PREFIX as PENETRATION_FIELD_PREFIX
from simulator.output import atomic, checkpoint, partial
from simulator.output.atomic import OutputError
from simulator.output.journal import Journal, JournalError

__all__ = ["OutputError", "RunContents", "open_run", "timeseries_of", "read_timeseries",
           "read_run", "describe_run", "is_run_file", "recover", "software_version",
           "git_commit"]

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


TITLE = "tumorsim run"


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


def library_versions() -> str:
    import numba
    import scipy
    return (f"python {sys.version.split()[0]}; numpy {np.__version__}; numba {numba.__version__}; "
            f"scipy {scipy.__version__}; h5py {h5py.__version__}; hdf5 {h5py.version.hdf5_version}")


def _string_dataset(group, name, text):
    group.create_dataset(name, data=text, dtype=h5py.string_dtype("utf-8"))


def _series_dataset(group, name, data, units, long_name, scales):
    data = np.asarray(data)
    ds = group.create_dataset(name, data=data, maxshape=(None, *data.shape[1:]),
                              chunks=(1024,) if data.ndim == 1 else (256, *data.shape[1:]))
    ds.attrs.update(units=units, long_name=long_name)
    for axis, scale in enumerate(scales):
        ds.dims[axis].attach_scale(scale)
    return ds


# ------------------------------------------------------------------ journal -> run file
class RunContents:
    """What a run's journal says, in the run-file layout.

    Journal entries (``simulator.output.recorder`` writes them): ``header`` (root ``attrs``,
    ``scenario_toml``, ``layout``), ``records`` (a batch of rows: one blob per series,
    ``drug/<name>`` and ``drug_tissue/<name>`` per drug), ``snapshot`` (``time_days``; one
    compressed frame per dataset), ``fork`` (a compare arm continues a pre-treatment
    history: new ``attrs``, ``scenario_toml``, ``layout``), ``cohort``, ``doses``,
    ``summary``, ``resumed`` (a run continued from its checkpoint), ``off_study`` (the run
    ended at progression, ``endpoints.off_study_at_progression``, or, with ``reason`` =
    "eradication", on an eradicated tumour, ``endpoints.end_at_eradication``), ``stopped`` (why it
    stopped early) and ``finished`` (everything recorded; only the run file is left to
    write).
    """

    def __init__(self, journal: Journal):
        self.journal = journal
        self.attrs: dict = {}
        self.scenario_toml = ""
        self.layout: dict = {}
        self.columns: dict[str, list[tuple[int, np.ndarray]]] = {}
        self.n_records = 0
        self.last_time_days = math.nan
        self.frames: list[tuple[float, dict]] = []   # (time, name -> Blob)
        self.cohort: dict = {}
        self.doses: list | None = None
        self.summary: dict = {}
        self.resumed_at_steps: list[int] = []
        self.off_study_day = math.nan
        self.eradicated_day = math.nan
        self.stopped = ""
        self.finished = False
        for entry in journal.entries:
            getattr(self, f"_on_{entry.kind}", self._on_unknown)(entry)
        if not self.attrs:
            raise JournalError(f"{journal.path}: no header (the run stopped before recording)")

    def _on_unknown(self, entry):
        pass  # written by a newer version; what this version knows still reads

    def _on_header(self, entry):
        self.attrs = dict(entry.meta["attrs"])
        self.scenario_toml = entry.meta["scenario_toml"]
        self.layout = entry.meta["layout"]

    def _on_fork(self, entry):
        self.attrs.update(entry.meta["attrs"])
        self.scenario_toml = entry.meta["scenario_toml"]
        self.layout = entry.meta["layout"]
        for name in [n for n in self.columns if n.startswith(("drug/", "drug_tissue/"))]:
            del self.columns[name]  # no drug was given before the treatment start: zeros
        self.stopped = ""

    def _on_records(self, entry):
        first = self.n_records
        for name in entry.blobs:
            self.columns.setdefault(name, []).append((first, self.journal.array(entry, name)))
        self.n_records += entry.meta["n"]
        if entry.meta["n"]:
            self.last_time_days = float(self.columns["time_days"][-1][1][-1])

    def _on_snapshot(self, entry):
        self.frames.append((entry.meta["time_days"], dict(entry.blobs)))

    def _on_cohort(self, entry):
        self.cohort.update(entry.meta["values"])

    def _on_doses(self, entry):
        self.doses = entry.meta["rows"]

    def _on_summary(self, entry):
        self.summary.update(entry.meta["values"])

    def _on_resumed(self, entry):
        self.resumed_at_steps.append(int(entry.meta["step"]))
        self.stopped = ""

    def _on_off_study(self, entry):
        if entry.meta.get("reason", "progression") == "eradication":
            self.eradicated_day = float(entry.meta["day"])
        else:
            self.off_study_day = float(entry.meta["day"])

    def _on_stopped(self, entry):
        self.stopped = entry.meta.get("reason", "")

    def _on_finished(self, entry):
        self.finished = True

    # ------------------------------------------------------------------ derived
    @property
    def steps_completed(self) -> int:
        if not self.n_records:
            return 0
        return int(round(self.last_time_days * 24.0 / self.layout["dt_hours"]))

    @property
    def snapshot_times(self) -> list[float]:
        return [t for t, _ in self.frames]

    def column(self, name: str, dtype, fill=0.0) -> np.ndarray:
        """One series over every record (``fill`` where a record lacks it)."""
        pieces = self.columns.get(name, [])
        shape = pieces[0][1].shape[1:] if pieces else ()
        out = np.full((self.n_records, *shape), fill, dtype=dtype)
        for first, values in pieces:
            out[first:first + len(values)] = values
        return out

    def drug_groups(self) -> list[tuple[str, list[str]]]:
        """(``/timeseries`` group, drug names) of the per-drug series."""
        return [(group, names) for group, names in (
            ("drug", self.layout["drug_names"]),
            ("drug_tissue", self.layout["tissue_drug_names"])) if names]

    def series(self) -> dict:
        """Every record, named as ``/timeseries`` (drug series under "drug" and
        "drug_tissue"), like :func:`timeseries_of` of the finished file."""
        out = {"time_days": self.column("time_days", np.float64),
               "clone": np.arange(self.layout["n_clones"], dtype=np.int64)}
        for name in SCALAR_SERIES:
            out[name] = self.column(name, np.int64, 0)
        for name in FLOAT_SERIES:
            out[name] = self.column(name, np.float64, math.nan)
        out["tumor_by_clone"] = self.column("tumor_by_clone", np.int64, 0).reshape(
            self.n_records, self.layout["n_clones"])
        for group, names in self.drug_groups():
            out[group] = {name: self.column(f"{group}/{name}", np.float64) for name in names}
        return out

    # ------------------------------------------------------------------ writing
    def write(self, f: h5py.File, status: str) -> None:
        """Write the whole run file into the open (empty) HDF5 file ``f``."""
        f.attrs.update(self.attrs)
        f.attrs.update(status=status, steps_completed=self.steps_completed,
                       dimensions=np.array(self.layout["dimensions"], dtype=np.int64))
        if self.resumed_at_steps:
            f.attrs["resumed_at_steps"] = np.array(self.resumed_at_steps, dtype=np.int64)
        f.attrs["edge_contact_day"] = edge_contact_day(
            self.column("time_days", np.float64), self.column("tumor_cells_on_edge", np.int64))
        f.attrs["off_study_day"] = self.off_study_day
        f.attrs["eradicated_day"] = self.eradicated_day
        _string_dataset(f.create_group("provenance"), "scenario_toml", self.scenario_toml)
        self._write_timeseries(f.create_group("timeseries"))
        if self.cohort:
            g = f.create_group("cohort")
            g.attrs["description"] = "per-patient parameters drawn for this replicate ([[cohort]])"
            g.attrs.update(self.cohort)
        self._write_snapshots(f.create_group("snapshots"))
        if self.doses is not None:
            self._write_doses(f)
        if self.summary:
            f.create_group("summary").attrs.update(self.summary)

    def _write_timeseries(self, ts):
        series = self.series()
        time_ds = ts.create_dataset("time_days", data=series["time_days"], maxshape=(None,),
                                    chunks=(1024,))
        time_ds.attrs.update(units="day", long_name="simulated time")
        time_ds.make_scale("time_days")
        clone_ds = ts.create_dataset("clone", data=series["clone"])
        clone_ds.attrs.update(long_name="resistance bit mask (bit t: resistant to target t)",
                              targets=", ".join(self.layout["resistance_targets"]))
        n_targets = len(self.layout["resistance_targets"])
        if self.layout["n_clones"] > 1 << n_targets:
            clone_ds.attrs.update(
                long_name="clone bit mask (bit t < n targets: resistant to target t; bit "
                          f"{n_targets}: immune-escape variant)",
                escape_bit=1 << n_targets)
        clone_ds.make_scale("clone")
        for name, (units, long_name) in SCALAR_SERIES.items():
            _series_dataset(ts, name, series[name], units, long_name, [time_ds])
        density = f"cells/mm^{len(self.layout['dimensions'])}"
        for name, (units, long_name) in FLOAT_SERIES.items():
            _series_dataset(ts, name, series[name], units.format(density=density), long_name,
                            [time_ds])
        _series_dataset(ts, "tumor_by_clone", series["tumor_by_clone"], "cells",
                        "tumour cells per clone", [time_ds, clone_ds])
        for group, names in self.drug_groups():
            g = ts.create_group(group)
            for name in names:
                _series_dataset(g, name, series[group][name], "mg/L",
                                CONCENTRATION_SERIES[group].format(name=name), [time_ds])

    def _write_snapshots(self, snap):
        lay = self.layout
        dims = tuple(lay["dimensions"])
        n = len(self.frames)
        t = snap.create_dataset("time_days", data=np.array(self.snapshot_times, dtype=np.float64),
                                maxshape=(None,), chunks=(64,))
        t.attrs.update(units="day", long_name="time of the snapshot")
        t.make_scale("time_days")
        scales = [t]
        for axis, size in zip("xyz", dims):
            c = snap.create_dataset(axis, data=(np.arange(size) + 0.5) * lay["spacing_um"])
            c.attrs.update(units="um", long_name=f"{axis} of the site centre")
            c.make_scale(axis)
            scales.append(c)
        datasets = {}
        for name, long_name in (("cell_type", "cell kind at each site"),
                                ("clone", "resistance bit mask of the tumour cell at each site")):
            ds = self._frames_dataset(snap, name, n, dims, "u1", False)
            ds.attrs["long_name"] = long_name
            datasets[name] = ds
        snap["cell_type"].attrs.update(flag_values=np.arange(len(KIND_NAMES), dtype=np.uint8),
                                       flag_meanings=" ".join(KIND_NAMES))
        field_names = list(dict.fromkeys(
            [*lay["snapshot_fields"],
             *(k.removeprefix("fields/") for _, blobs in self.frames for k in blobs
               if k.startswith("fields/"))]))
        for name in field_names:
            ds = self._frames_dataset(snap.require_group("fields"), name, n, dims, "f4", True)
            units = ("mg/L" if name.startswith(PENETRATION_FIELD_PREFIX)
                     else FIELD_UNITS.get(name, ""))
            ds.attrs.update(units=units, long_name=f"{name.replace('_', ' ')} at each site "
                                                   "(quasi-steady field of the step that ended here)")
            datasets[f"fields/{name}"] = ds
        for axis_datasets in datasets.values():
            for axis, scale in enumerate(scales):
                axis_datasets.dims[axis].attach_scale(scale)
        for i, (_, blobs) in enumerate(self.frames):
            for key, ds in datasets.items():
                self._write_frame(ds, i, key, blobs.get(key), dims)

    def _frames_dataset(self, group, name, n, dims, dtype, shuffle):
        return group.create_dataset(name, shape=(n, *dims), maxshape=(None, *dims), dtype=dtype,
                                    chunks=(1, *dims), compression="gzip",
                                    compression_opts=self.layout["compression"], shuffle=shuffle)

    def _write_frame(self, ds, i, key, blob, dims):
        if blob is None:  # a field this frame did not record
            fill = 0.0 if key.startswith("fields/" + PENETRATION_FIELD_PREFIX) else np.nan
            ds[i] = np.full(dims, fill, dtype=ds.dtype)
            return
        wanted = "shuffle+deflate" if ds.shuffle and ds.dtype.itemsize > 1 else "deflate"
        if blob.codec == wanted and tuple(blob.shape) == dims \
                and np.dtype(blob.dtype) == ds.dtype:
            ds.id.write_direct_chunk((i,) + (0,) * len(dims), self.journal.raw(blob))
        else:
            ds[i] = self.journal.array(_Single(blob), blob.name).astype(ds.dtype)

    def _write_doses(self, f):
        dtype = np.dtype([("step", "i8"), ("day", "f8"), ("drug", h5py.string_dtype()),
                          ("amount_mg", "f8"), ("reason", h5py.string_dtype())])
        table = np.array([tuple(row) for row in self.doses], dtype=dtype)
        f.create_group("doses").create_dataset("table", data=table)


class _Single:
    """An entry-like holder of one blob (for :meth:`Journal.array`)."""

    def __init__(self, blob):
        self.blobs = {blob.name: blob}


def contents_of(partial_dir) -> tuple[Journal, RunContents]:
    """The journal (open: close it) and contents of a partial run; OutputError if none."""
    path = partial.journal_path(partial_dir)
    try:
        journal = Journal(path)
    except JournalError as exc:
        raise OutputError(str(exc)) from None
    try:
        return journal, RunContents(journal)
    except (JournalError, KeyError) as exc:
        journal.close()
        raise OutputError(f"{partial_dir}: unreadable journal ({exc})") from None


def write_run_file(contents: RunContents, path, status: str) -> None:
    with h5py.File(path, "w", libver="latest") as f:
        contents.write(f, status)


def is_run_file(path) -> bool:
    """A tumorsim run file (HDF5 with /provenance and /timeseries)?"""
    try:
        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r") as f:
            return "provenance" in f and "timeseries" in f
    except OSError:
        return False


def recover(source, out=None, *, overwrite: bool = False) -> tuple[Path, RunContents, bool]:
    """``tumorsim recover``: write the run file of an interrupted run (status
    "incomplete"): ``source`` is its partial directory or its target (with one partial run
    beside it). Default ``out``: the target's name with ``.incomplete.h5``. Returns the
    path written, the contents and whether an existing run file was replaced."""
    part = find_partial(source)
    target = partial.target_of(part)
    out = Path(out) if out else target.with_name(target.stem + ".incomplete.h5")
    journal, contents = contents_of(part)
    with journal:
        with atomic.writing(out, owned=is_run_file, overwrite=overwrite,
                            what="tumorsim run file") as work:
            write_run_file(contents, work.tmp, "running" if partial.running(part)
                           else "incomplete")
    return out, contents, work.replacing


def find_partial(source) -> Path:
    """The partial run named by ``source``: a partial directory, or a target with exactly
    one partial run beside it (the most advanced one when several)."""
    source = Path(source)
    if partial.is_partial(source):
        return source
    found = partial.partials_of(source)
    if not found:
        what = "is a finished run file" if source.exists() else "no such file"
        raise OutputError(f"{source}: {what}, and no interrupted run of it "
                          f"({source.name}.partial-*) is beside it")
    return found[-1]


# ---------------------------------------------------------------------- reading
def open_run(path) -> h5py.File:
    """Open a run file for reading, or raise OutputError with one clear line. A partial
    run directory opens too: its run file is built in memory from its journal."""
    path = Path(path)
    if partial.is_partial(path):
        journal, contents = contents_of(path)
        with journal:
            f = h5py.File(f"{path}-{uuid.uuid4().hex}", "w", driver="core",
                          backing_store=False)
            contents.write(f, "running" if partial.running(path) else "incomplete")
        return f
    if not path.exists():
        hint = ""
        if partial.partials_of(path):
            hint = (f" ({partial.partials_of(path)[-1].name} holds a run of it that has not "
                    "finished: tumorsim inspect, resume or recover it)")
        raise OutputError(f"{path}: no such file{hint}")
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
    """A short human summary of a run file or a partial run (``tumorsim inspect``)."""
    path = Path(path)
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
        if "resumed_at_steps" in a:
            lines.append(f"  resumed at steps: {', '.join(map(str, a['resumed_at_steps']))}")
        if n:
            t = ts["time_days"][-1]
            lines.append(f"  last record: day {t:g}: tumour {ts['tumor_cells'][-1]} "
                         f"(resistant {ts['tumor_resistant'][-1]}), T cells {ts['t_cells'][-1]}, "
                         f"suppressive {ts['suppressive_cells'][-1]}")
            lines += _turnover_lines(ts, _scenario_rates(f))
        off = a.get("off_study_day", math.nan)
        if not math.isnan(off):
            lines.append(f"  off study at progression on day {off:g} (the run ends there: "
                         "endpoints.off_study_at_progression)")
        cured = a.get("eradicated_day", math.nan)
        if not math.isnan(cured):
            lines.append(f"  tumour eradicated by day {cured:g}: the run ends there, every "
                         "later scan a CR (endpoints.end_at_eradication)")
        day = a.get("edge_contact_day", math.nan)
        if not math.isnan(day):
            lines.append(f"  the tumour reached the lattice edge on day {day:g}: later burden "
                         "is limited by the box (enlarge simulation.dimensions)")
        if "summary" in f:
            for key, value in f["summary"].attrs.items():
                lines.append(f"  {key}: {value}")
    if partial.is_partial(path):
        lines += _describe_partial(path)
    else:
        lines += [f"  also beside it: {p.name} (a run of it that has not finished)"
                  for p in partial.partials_of(path)]
    return "\n".join(lines)


def _scenario_rates(f) -> tuple[float, float] | None:
    """(death, division) rates per day of the run's scenario, if its text reads."""
    import tomllib
    try:
        text = f["provenance/scenario_toml"][()]
        text = text.decode() if isinstance(text, bytes) else str(text)
        tumor = tomllib.loads(text).get("tumor", {})
        return float(tumor["death_rate_per_day"]), float(tumor["division_rate_per_day"])
    except (KeyError, ValueError, TypeError, tomllib.TOMLDecodeError):
        return None


def _turnover_lines(ts, rates) -> list[str]:
    """The realised tumour turnover: with contact inhibition only cells beside free space
    divide while every cell can die, so deaths / divisions exceeds the parameters' d / b
    (docs/model.md, "Effective turnover")."""
    if "divisions_total" not in ts or "deaths_total" not in ts:
        return []
    divisions, deaths = int(ts["divisions_total"][-1]), int(ts["deaths_total"][-1])
    kills = int(ts["kills_total"][-1]) if "kills_total" in ts else 0
    ratio = f"{deaths / divisions:.3f}" if divisions else "n/a"
    line = (f"  tumour turnover: {divisions} divisions, {deaths} deaths (+ {kills} killed by "
            f"T cells); deaths / divisions = {ratio}")
    if rates is not None and rates[1] > 0:
        line += f" (parameters: d / b = {rates[0] / rates[1]:.3f})"
    return [line]


def _describe_partial(path: Path) -> list[str]:
    target = partial.target_of(path)
    lines = [f"  a run of {target} that has not finished"
             + ("; its process is running" if partial.running(path) else "")]
    ckpt = partial.checkpoint_path(path)
    if ckpt.exists():
        try:
            at = checkpoint.read_attrs(ckpt)
            lines.append(f"  checkpoint: step {at['step']} (day {at['time_days']:g}); "
                         f"`tumorsim resume {target}` continues from there")
        except (OSError, checkpoint.CheckpointError):
            lines.append("  checkpoint: unreadable")
    else:
        lines.append(f"  no checkpoint yet: `tumorsim resume {target}` starts it again")
    return lines
