"""What the figures read from a study directory or a run file.

A study is drawn from ``study.h5`` (series stacked arm x replicate x time and the endpoint
columns) and ``summary.csv`` (the run file of each row); the per-run files are opened only
for the dose tables and for the lattice snapshots. Optional content of a run file is read
when present and skipped when absent: ``/timeseries/drug/<name>``, ``/doses/table``,
``t_cells_core`` / ``t_cells_margin``, ``/snapshots/clone``, ``/snapshots/fields/<name>``.
Unusable files raise :class:`~simulator.output.runfile.OutputError` with a one-line message.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from simulator.output.runfile import OutputError, open_run


@dataclass
class StudyData:
    """What the study figures need, read once (see :func:`load_study`)."""
    directory: Path
    arms: list[str]
    reference_arm: str
    replicates: int
    time_days: np.ndarray
    series: dict[str, np.ndarray]          # name -> arm x replicate x time (NaN padded)
    endpoints: dict[str, np.ndarray]       # column -> one value per finished run
    run_paths: dict[tuple[str, int], Path]
    treatment_start_day: float
    dimensions: int = 2
    _doses: dict | None = field(default=None, repr=False)

    def rows(self, arm: str) -> np.ndarray:
        """Indices of the endpoint rows of ``arm``, by replicate."""
        idx = np.nonzero(self.endpoints["arm"] == arm)[0]
        return idx[np.argsort(self.endpoints["replicate"][idx], kind="stable")]

    def doses(self) -> dict[str, list[np.ndarray]]:
        """Per arm, the dose table of each finished run (read from the run files once)."""
        if self._doses is None:
            self._doses = {arm: [] for arm in self.arms}
            for (arm, _r), path in sorted(self.run_paths.items()):
                try:
                    with h5py.File(path, "r") as f:
                        self._doses[arm].append(read_doses(f))
                except OSError as exc:
                    raise OutputError(f"{path}: not a readable HDF5 file ({exc})") from None
        return self._doses


def _text(value) -> str:
    """An HDF5 string (bytes or str) as str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(values) -> np.ndarray:
    return np.array([_text(v) for v in values], dtype=object)


def _short(exc) -> str:
    return str(exc).split("(")[0].strip() or exc.__class__.__name__


# ------------------------------------------------------------------------- study
def load_study(directory) -> StudyData:
    """Read ``DIR/study.h5`` and ``DIR/summary.csv``; OutputError (one line) if unusable."""
    directory = Path(directory)
    path = directory / "study.h5"
    if not directory.is_dir():
        raise OutputError(f"{directory}: no such study directory")
    if not path.exists():
        raise OutputError(f"{path}: no such file (not a finished tumorsim study; run "
                          "`tumorsim compare` first)")
    try:
        with h5py.File(path, "r") as f:
            arms = [str(a) for a in _decode(f.attrs["arms"])]
            reference = _text(f.attrs.get("reference_arm", arms[0]))
            replicates = int(f.attrs["replicates"])
            ts = f["timeseries"]
            time_days = ts["time_days"][()]
            series = {name: ts[name][()] for name in ts
                      if isinstance(ts[name], h5py.Dataset) and ts[name].ndim == 3}
            ep = f["endpoints"]
            endpoints = {}
            for name in ep:
                values = ep[name][()]
                endpoints[name] = _decode(values) if values.dtype.kind in "OS" else values
    except (OSError, KeyError) as exc:
        raise OutputError(f"{path}: not a readable tumorsim study file ({_short(exc)})") from None
    if "arm" not in endpoints or len(endpoints["arm"]) == 0:
        raise OutputError(f"{path}: no finished runs to plot")
    for name in ("tumor_cells", "tumor_resistant"):
        if name not in series:
            raise OutputError(f"{path}: /timeseries/{name} is missing")
    endpoints["replicate"] = endpoints["replicate"].astype(int)
    run_paths = _run_paths(directory, endpoints)
    start = float(np.nanmedian(endpoints["treatment_start_day"]))
    study = StudyData(directory, arms, reference, replicates, time_days, series, endpoints,
                      run_paths, start)
    study.dimensions = _lattice_ndim(run_paths)
    return study


def _run_paths(directory: Path, endpoints) -> dict:
    """Run file of every endpoint row: from summary.csv's ``path`` column, else the layout."""
    paths = {}
    summary = directory / "summary.csv"
    if summary.exists():
        with open(summary, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("path"):
                    paths[(row["arm"], int(float(row["replicate"])))] = directory / row["path"]
    for arm, r in zip(endpoints["arm"], endpoints["replicate"]):
        paths.setdefault((arm, int(r)), directory / "runs" / arm / f"replicate-{int(r):03d}.h5")
    keep = set(zip(endpoints["arm"], endpoints["replicate"].astype(int)))
    return {key: p for key, p in paths.items() if key in keep}


def _lattice_ndim(run_paths) -> int:
    for path in run_paths.values():
        try:
            with h5py.File(path, "r") as f:
                return len(f.attrs["dimensions"])
        except (OSError, KeyError):
            continue
    return 2


def _is_study_file(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("title") == "tumorsim study"
    except OSError:
        return False


# --------------------------------------------------------------------------- run
@dataclass
class RunData:
    """One run file's series, doses and snapshot index (frames are read on demand)."""
    path: Path
    arm: str
    replicate: int
    time_days: np.ndarray
    series: dict[str, np.ndarray]
    drugs: dict[str, np.ndarray]
    doses: np.ndarray
    treatment_start_day: float | None
    spacing_um: float
    dimensions: tuple
    snapshot_days: np.ndarray
    field_names: list[str]
    summary: dict


def load_run(path) -> RunData:
    path = Path(path)
    with open_run(path) as f:
        try:
            ts = f["timeseries"]
            series = {n: ts[n][()] for n in ts if isinstance(ts[n], h5py.Dataset)}
            drugs = {n: ts["drug"][n][()] for n in ts["drug"]} if "drug" in ts else {}
            a = f.attrs
            start = a.get("treatment_start_day")
            snap = f["snapshots"] if "snapshots" in f else None
            snapshot_days = (snap["time_days"][()] if snap is not None and "time_days" in snap
                             and "cell_type" in snap else np.zeros(0))
            fields_ = sorted(snap["fields"]) if snap is not None and "fields" in snap else []
            return RunData(
                path=path, arm=_text(a.get("arm", "")),
                replicate=int(a.get("replicate", 0)), time_days=series.pop("time_days"),
                series=series, drugs=drugs, doses=read_doses(f),
                treatment_start_day=None if start is None else float(start),
                spacing_um=float(a.get("spacing_um", 20.0)),
                dimensions=tuple(int(n) for n in a.get("dimensions", ())),
                snapshot_days=snapshot_days, field_names=fields_,
                summary=dict(f["summary"].attrs) if "summary" in f else {})
        except (KeyError, OSError) as exc:
            raise OutputError(f"{path}: incomplete or corrupt run file ({_short(exc)})") from None


_DOSE_DTYPE = np.dtype([("day", "f8"), ("drug", object), ("amount_mg", "f8")])


def read_doses(f: h5py.File) -> np.ndarray:
    """``/doses/table`` as a (day, drug, amount_mg) record array; empty when absent."""
    if "doses" not in f or "table" not in f["doses"]:
        return np.zeros(0, dtype=_DOSE_DTYPE)
    table = f["doses/table"][()]
    out = np.zeros(len(table), dtype=_DOSE_DTYPE)
    out["day"] = table["day"]
    out["drug"] = _decode(table["drug"])
    if "amount_mg" in table.dtype.names:
        out["amount_mg"] = table["amount_mg"]
    return out


# --------------------------------------------------------------------- snapshots
def read_snapshot(path, index: int) -> dict:
    """One snapshot: ``cell_type``, ``clone`` (or None) and ``fields`` (name -> array), 3D
    reduced to the middle z-slice; plus ``day``, ``flag_values``, ``flag_meanings`` and
    ``escape_bit`` (the clone bit of immune-escape variants, 0: none)."""
    with open_run(path) as f:
        snap = f["snapshots"]
        ct = snap["cell_type"]
        out = {"day": float(snap["time_days"][index]),
               "cell_type": _middle_slice(ct[index]),
               "clone": _middle_slice(snap["clone"][index]) if "clone" in snap else None,
               "flag_values": ct.attrs.get("flag_values"),
               "flag_meanings": ct.attrs.get("flag_meanings"),
               "escape_bit": int(f["timeseries/clone"].attrs.get("escape_bit", 0))
               if "timeseries/clone" in f else 0,
               "fields": {}}
        if "fields" in snap:
            for name in snap["fields"]:
                ds = snap["fields"][name]
                if ds.shape[0] > index:
                    out["fields"][name] = (_middle_slice(ds[index]), ds.attrs.get("units", ""))
        return out


def _middle_slice(frame: np.ndarray) -> np.ndarray:
    return frame[..., frame.shape[-1] // 2] if frame.ndim == 3 else frame


def default_snapshot_days(snapshot_days, treatment_start_day) -> list[float]:
    """Treatment start, midway to the last snapshot, and the last snapshot."""
    if len(snapshot_days) == 0:
        return []
    start = treatment_start_day if treatment_start_day is not None else snapshot_days[0]
    end = float(snapshot_days[-1])
    return [float(start), float(start + (end - start) / 2), end]


def _snapshot_indices(available: np.ndarray, days, treatment_start_day) -> list[int]:
    """Index of the snapshot nearest each of ``days`` (default: default_snapshot_days)."""
    if days is None:
        days = default_snapshot_days(available, treatment_start_day)
    return [int(np.argmin(np.abs(available - d))) for d in days]
