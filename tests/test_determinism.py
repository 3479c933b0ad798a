"""Bit-identical output for any number of Numba threads (2D and 3D) and either flavour of the
kernels (``kernels.flavour``), run as a user would."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import needs_jit
from kernels import immune as agents_k

# Attributes that legitimately differ between two runs of the same scenario.
VOLATILE_ATTRS = {"created", "command_line"}


# ``tumorsim`` with the run's kernel flavour forced (``model.state.kernel_flavour``: these
# small 2D lattices would call the serial kernels, whose parallel twins must agree too)
CLI_WITH_FLAVOUR = ("import sys; from simulator.model import state; "
                    "state.SERIAL_KERNELS_BELOW = int(sys.argv[1]); "
                    "from simulator.cli import main; sys.exit(main(sys.argv[2:]))")


def _run(tmp_path, name, threads, overrides, pinned=False, serial=False):
    """``pinned``: ``--threads N`` (no adaptive switching between 1 and N); ``serial``: the
    serial kernels (a 2D lattice), else the parallel ones."""
    out = tmp_path / f"{name}-{threads}{'-serial' if serial else ''}.h5"
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-c", CLI_WITH_FLAVOUR, str(2 ** 62 if serial else 0),
           "run", "--quiet", "-o", str(out)]
    cmd += ["--threads", str(threads)] if pinned else []
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
    one = _same_at_one_and_two_threads(tmp_path, name, overrides)
    assert one["timeseries/tumor_cells"][-1] > one["timeseries/tumor_cells"][0]


@needs_jit
def test_same_output_with_migration_in_chunks(tmp_path):
    """Enough T cells (thousands, recruited fast) that migration cuts its active list into
    several chunks at 2 threads (kernels.immune.chunks_for; pinned, so every step runs on
    2) and runs one at 1."""
    one = _same_at_one_and_two_threads(tmp_path, "2d-crowd", [
        "simulation.dimensions=[120,100]", "simulation.duration_days=20",
        "initial.tumor_radius_sites=15", "t_cells.recruitment_rate_per_day=600",
        "t_cells.basal_recruitment_fraction=1",
        "suppressive.recruitment_rate_per_day_per_1000_tumor_cells=400"], pinned=True)
    assert agents_k.chunks_for(int(one["timeseries/t_cells"].max()), 2) > 2


def _same_at_one_and_two_threads(tmp_path, name, overrides, pinned=False) -> dict:
    """Runs the scenario at 1 and at 2 threads with the parallel kernels, and in 2D at 2
    with the serial ones; asserts every dataset and attribute equal; returns the 1-thread
    datasets."""
    one, attrs_one = _datasets(_run(tmp_path, name, 1, overrides, pinned))
    others = [(2, False)] + ([(2, True)] if not name.startswith("3d") else [])
    for threads, serial in others:
        two, attrs_two = _datasets(_run(tmp_path, name, threads, overrides, pinned, serial))
        _assert_same(one, attrs_one, two, attrs_two)
    return one


def _assert_same(one, attrs_one, two, attrs_two):
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
