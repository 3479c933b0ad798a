"""Outputs a scientist can read without the source: every dataset, attribute and column
declared once (simulator/output/catalog.py), documented (docs/outputs.md, generated),
CF-described, readable by xarray, and written as clean numbers; `tumorsim inspect` of a
study; `tumorsim animate` without its extra."""
import csv
import dataclasses
import math
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import ROOT, TINY_STUDY_ARMS, needs_jit
from simulator.analysis.endpoints import SCAN_FIELDS, Endpoints
from simulator.output import catalog
from simulator.study.outputs import csv_number


def _header(path):
    with open(path, newline="") as fh:
        return next(csv.reader(fh))


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _walk(f):
    """Every dataset path and every group path of an open HDF5 file."""
    datasets, groups = [], []
    f.visititems(lambda name, obj: (datasets if isinstance(obj, h5py.Dataset)
                                    else groups).append(name))
    return datasets, groups


def test_outputs_doc_is_up_to_date():
    """Regenerate with `python -m simulator.output.catalog` when this fails."""
    assert catalog.DOCS.read_text() == catalog.outputs_markdown()


def test_every_endpoint_field_is_declared():
    """A new endpoint (a field of Endpoints) is a new summary.csv column: declare it."""
    names = [f.name for f in dataclasses.fields(Endpoints) if f.name not in SCAN_FIELDS]
    message = catalog.undeclared_message(catalog.table("summary-csv"), names)
    assert not message, message
    assert [i.name for i in catalog.ENDPOINTS] == names   # and no stale declaration


def test_undeclared_column_is_named_with_where_to_declare_it():
    message = catalog.undeclared_message(catalog.table("arms-csv"),
                                         ["arm", "vs_untreated_pairs", "ttnt_median_days"])
    assert message.count("\n") == 0
    assert "'ttnt_median_days' is not declared" in message
    assert "simulator/output/catalog.py" in message and "arms-csv" in message


def test_placeholders_match_one_path_segment_only():
    item = catalog.item("timeseries/drug/<name>", "mg/L", "x")
    assert item.matches("timeseries/drug/braf_inhibitor")
    assert not item.matches("timeseries/drug/a/b")
    assert not item.matches("timeseries/drug/")


@pytest.mark.parametrize("value, text", [
    (2.7755575615628914e-17, "0"), (-1.3877787807814457e-17, "0"), (0.1 + 0.2, "0.3"),
    (60.0, "60"), (0.25, "0.25"), (1e-05, "1e-05"), (1234567.125, "1234567.125"),
    (math.nan, "nan"), (math.inf, "inf"), (True, "True"), (np.bool_(False), "False"),
    (np.int64(7), "7"), (-0.3333333333333333, "-0.333333333333"), ("CR", "CR")])
def test_csv_numbers_are_clean(value, text):
    assert csv_number(value) == text


@needs_jit
def test_every_study_column_is_declared_and_every_declared_column_written(tiny_study):
    for name, key in (("summary.csv", "summary-csv"), ("arms.csv", "arms-csv")):
        columns = _header(tiny_study / name)
        table = catalog.table(key)
        message = catalog.undeclared_message(table, columns)
        assert not message, message
        for item in table.items:   # nothing declared that the writer no longer writes
            assert any(item.matches(c) for c in columns), f"{name}: {item.name} not written"


@needs_jit
def test_csv_cells_are_clean_numbers(tiny_study):
    for name in ("summary.csv", "arms.csv"):
        for row in _rows(tiny_study / name):
            for column, cell in row.items():
                assert "e-1" not in cell and "e-2" not in cell, (name, column, cell)
                try:
                    value = float(cell)
                except ValueError:
                    continue
                if math.isfinite(value) and value != 0:   # at most 12 significant digits
                    mantissa = cell.lower().split("e")[0]    # a tiny drawn share: 6.3e-05
                    assert len(mantissa.lstrip("-").replace(".", "").lstrip("0")) <= 12, cell


@needs_jit
def test_study_h5_is_declared_cf_described_and_opens_in_xarray(tiny_study):
    xr = pytest.importorskip("xarray")
    path = tiny_study / "study.h5"
    summary = catalog.table("summary-csv")
    with h5py.File(path, "r") as f:
        assert f.attrs["Conventions"] == catalog.CONVENTIONS
        undeclared = catalog.table("study-attributes").undeclared(list(f.attrs))
        assert not undeclared, undeclared
        datasets, groups = _walk(f)
        assert sorted(groups) == ["endpoints", "timeseries"]
        message = catalog.undeclared_message(catalog.table("study-datasets"), datasets)
        assert not message, message
        for name in datasets:
            ds = f[name]
            assert ds.attrs.get("long_name"), f"{name} has no long_name"
            if name.startswith("timeseries/") and ds.ndim == 3:
                series = name.split("/")[1]
                declared = (catalog.run_series(series) if not series.startswith("drug_")
                            else catalog.Item(name, "mg/L", ""))
                assert ds.attrs["units"] == declared.units, name
            if name.startswith("endpoints/") and name != "endpoints/run":
                column = name.split("/")[1]
                declared = summary.find(column.replace("cohort_", "cohort:", 1)
                                        if column.startswith("cohort_") else column)
                if declared.units and not declared.units.startswith("("):
                    assert ds.attrs["units"] == declared.units, name
        n_runs = len(f["endpoints/run"])
    assert n_runs == 2 * len(TINY_STUDY_ARMS)
    for group in (None, "timeseries", "endpoints"):
        ds = xr.open_dataset(path, engine="h5netcdf", group=group)
        ds.load()
        ds.close()
    ts = xr.open_dataset(path, engine="h5netcdf", group="timeseries")
    assert ts["tumor_cells"].dims == ("arm", "replicate", "time_days")
    assert ts["tumor_cells"].attrs["units"] == "cells"
    assert list(ts["arm"].values) == list(TINY_STUDY_ARMS)
    ep = xr.open_dataset(path, engine="h5netcdf", group="endpoints")
    assert ep["best_response"].dims == ("run",) and ep["best_response"].attrs["units"] == "1"
    assert ep.sizes["run"] == n_runs
    rows = _rows(tiny_study / "summary.csv")
    assert [str(a) for a in ep["arm"].values] == [r["arm"] for r in rows]


@needs_jit
def test_run_file_is_declared(tiny_study):
    path = tiny_study / "runs" / "targeted_continuous_penetration" / "replicate-000.h5"
    with h5py.File(path, "r") as f:
        undeclared = catalog.table("run-attributes").undeclared(list(f.attrs))
        assert not undeclared, undeclared
        datasets, _ = _walk(f)
        assert "timeseries/drug_tissue/braf_inhibitor" in datasets
        assert "snapshots/fields/drug_braf_inhibitor" in datasets
        message = catalog.undeclared_message(catalog.table("run-datasets"), datasets)
        assert not message, message
        for key in f["summary"].attrs:
            assert catalog.endpoint(key) is not None, f"/summary attribute {key} undeclared"
        for key in f["cohort"].attrs:
            assert key == "description" or catalog.RUN_DATASETS.find(f"cohort/{key}")
        for name in datasets:
            declared = catalog.RUN_DATASETS.find(name)
            units = f[name].attrs.get("units")
            if units is not None and declared.units and "," not in declared.units \
                    and "(" not in declared.units:
                assert units == declared.units, name
        # the treatment start is a snapshot: figures show each arm from the day it forks
        assert 12.0 in f["snapshots/time_days"][()]


def _tumorsim(*args):
    return subprocess.run(cwd=ROOT, args=[sys.executable, "-m", "simulator", *args], capture_output=True,
                          text=True, timeout=300)


@needs_jit
def test_inspect_summarises_a_study_directory_and_its_study_h5(tiny_study):
    for target in (tiny_study, tiny_study / "study.h5"):
        result = _tumorsim("inspect", str(target))
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "tumorsim study" in out and "reference targeted_continuous" in out
        for arm in TINY_STUDY_ARMS:
            assert arm in out
        assert "tumor_cells (cells)" in out and "report.html" in out


def test_inspect_of_a_directory_without_a_study_is_one_line(tmp_path):
    result = _tumorsim("inspect", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no study.h5" in result.stderr


def test_animate_without_imageio_names_the_extra_before_rendering(tmp_path):
    """imageio hidden from the child process: the one-line message names the extra, and
    nothing is read or drawn first (the run file does not even exist)."""
    code = ("import sys; sys.modules['imageio'] = None\n"
            "import importlib.util, simulator.cli as c\n"
            "real = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda n, *a: None if n == 'imageio' else real(n, *a)\n"
            f"sys.exit(c.main(['animate', {str(tmp_path / 'missing.h5')!r}]))")
    result = subprocess.run(cwd=ROOT, args=[sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("tumorsim: error: tumorsim animate needs the 'movies' "
                                     "extra (imageio): pip install 'tumorsim[movies]'")
