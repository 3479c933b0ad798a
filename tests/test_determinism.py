"""Bit-identical output for any number of Numba threads (2D and 3D), run as a user would."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import needs_jit

# Attributes that legitimately differ between two runs of the same scenario.
VOLATILE_ATTRS = {"created", "command_line"}


def _run(tmp_path, name, threads, overrides):
    out = tmp_path / f"{name}-{threads}.h5"
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "simulator", "run", "--quiet", "-o", str(out)]
    for o in overrides:
        cmd += ["--set", o]
    subprocess.run(cmd, check=True, env=env, timeout=600)
    return out


def _datasets(path):
    found = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                found[name] = obj[()]
        f.visititems(visit)
        attrs = {k: v for k, v in f.attrs.items() if k not in VOLATILE_ATTRS}
        if "summary" in f:
            attrs.update({f"summary/{k}": v for k, v in f["summary"].attrs.items()})
    return found, attrs


@needs_jit
@pytest.mark.parametrize("name, overrides", [
    ("2d", ["simulation.dimensions=[120,100]", "simulation.duration_days=30",
            "initial.tumor_radius_sites=8", "initial.resistant_fraction=0.05",
            "tumor.mutation_rate_per_division=0.001",
            "initial.min_escape_cells_at_baseline=20"]),
    ("2d-escape", ["simulation.dimensions=[120,100]", "simulation.duration_days=30",
                   "initial.tumor_radius_sites=8", "initial.resistant_fraction=0.05",
                   "initial.escape_fraction=0.2", "tumor.escape_antigenicity=0",
                   "initial.min_resistant_cells_at_baseline=60"]),
    ("2d-coarse-fields", ["simulation.dimensions=[120,100]", "simulation.duration_days=30",
                          "initial.tumor_radius_sites=8", "initial.resistant_fraction=0.05",
                          *(f"fields.{name}.grid_coarsening=2" for name in
                            ("oxygen", "chemokine", "ifn_gamma", "suppressive_cytokine"))]),
    ("3d", ["simulation.dimensions=[30,28,26]", "simulation.duration_days=20",
            "initial.tumor_radius_sites=4", "initial.resistant_fraction=0.05",
            "tumor.mutation_rate_per_division=0.001"]),
])
def test_same_output_for_one_and_two_threads(tmp_path, name, overrides):
    one, attrs_one = _datasets(_run(tmp_path, name, 1, overrides))
    two, attrs_two = _datasets(_run(tmp_path, name, 2, overrides))
    assert one.keys() == two.keys()
    for key in one:
        a, b = one[key], two[key]
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape, key
            assert a.tobytes() == b.tobytes(), key
        else:
            assert a == b, key
    assert attrs_one.keys() == attrs_two.keys()
    for key in attrs_one:
        np.testing.assert_array_equal(attrs_one[key], attrs_two[key], err_msg=key)
    assert one["timeseries/tumor_cells"][-1] > one["timeseries/tumor_cells"][0]
