"""How much memory a run needs, from the arrays the engine allocates — known before any
of them is allocated, so ``validate`` can refuse a scenario the machine cannot hold.

The estimate counts, for the padded lattice of ``simulation.dimensions`` (each axis + 2):

- per site: the lattice (``model.state.SITE_ARRAYS``); the tumour kernel's birth counts
  (uint8 scratch, ``kernels.tumor.run_events``); the oxygen division factor (float64,
  with an oxygen field); the immune compartment's PD-L1 (float32) and move proposals
  (uint16, ``kernels.immune.max_tag``); per enabled tissue field its concentration
  (float32) plus one shared multigrid workspace (``model.tissue.FieldSolver``: right-hand
  side and reaction on every level, the coarse levels' correction, float32; ~12 B per site
  in 2D, ~10 in 3D), and in 2D with two fields or more a second one
  (``TissueFields.LANES``); per penetrating drug its tissue field (float32) plus a
  workspace of its own;
- per line of the lattice (the last axis): extents and per-line counters (int64);
- agents (``ImmuneSystem.T_ATTRIBUTES`` + site, and suppressive sites), room for one immune
  cell per ``SITES_PER_AGENT`` sites, doubled as the arrays grow by doubling;
- transients: the float64 uniform draws that seed the tumour and place vessels, and
  ``TRANSIENT_FLOAT64_PER_SITE`` float64 temporaries a step makes (masks, means, the
  float32 copy of a field snapshot);
- the time series: every record, ~``SERIES_PER_RECORD`` numbers plus one per clone and two
  per drug, which the run holds at its end to compute the endpoints.

It leaves out the interpreter, NumPy / Numba / HDF5 libraries and compiled kernels
(``PROCESS_BASE_BYTES``, added when comparing with the machine's memory) and anything that
does not grow with the lattice or the run. ``tests/test_faults.py`` checks it is within 2x
of the allocation measured (tracemalloc) for a small and a larger lattice.
"""
from __future__ import annotations

import math
import os

import numpy as np

from kernels.lattice import KIND_NAMES
from simulator.model.immune import ImmuneSystem, immune_enabled
from simulator.model.penetration import penetrating
from simulator.model.state import LINE_ARRAYS, SITE_ARRAYS
from simulator.model.tissue import FieldSolver
from simulator.model.tumor import clone_count

F8 = np.dtype(np.float64).itemsize
F4 = np.dtype(np.float32).itemsize
I8 = np.dtype(np.int64).itemsize
SITES_PER_AGENT = 8
TRANSIENT_FLOAT64_PER_SITE = 2
SERIES_PER_RECORD = 24
PROCESS_BASE_BYTES = 400 * 2**20   # Python, NumPy, Numba, h5py and the loaded kernels


def _bytes(dtypes) -> int:
    return sum(np.dtype(d).itemsize for d in dtypes)


def estimate_bytes(scenario) -> dict[str, int]:
    """Bytes one run of ``scenario`` allocates, by part (sum the values for the total)."""
    sim = scenario.simulation
    padded = [int(n) + 2 for n in sim.dimensions]
    sites = math.prod(padded)
    lines = sites // padded[-1]
    n_clones = clone_count(scenario)
    fields = list(scenario.fields.enabled_names())
    drugs = penetrating(scenario.drugs)
    immune = immune_enabled(scenario)

    per_site = _bytes(SITE_ARRAYS.values())
    per_site += 1                                        # engine: tumour birth counts
    per_line = _bytes(LINE_ARRAYS.values()) + I8 * (4 + n_clones + len(KIND_NAMES))
    if "oxygen" in fields:
        per_site += F8                                   # engine: division factor
    if immune:
        per_site += F4 + np.dtype(np.uint16).itemsize   # PD-L1, move proposals
        per_line += I8 * (n_clones + 3 + len(padded) - 1)
    solver = FieldSolver.nbytes(padded)                  # multigrid workspace
    fixed = 0
    if fields:
        per_site += F4 * len(fields)
        fixed += solver
        if len(padded) == 2 and len(fields) > 1:
            fixed += solver                              # the second lane's workspace
    if drugs:
        per_site += F4 * len(drugs)
        fixed += solver
    parts = {"lattice and fields": sites * per_site + lines * per_line + fixed}
    if immune:
        per_agent = _bytes(ImmuneSystem.T_ATTRIBUTES.values()) + 2 * I8  # + T and S sites
        parts["immune cells"] = 2 * (sites // SITES_PER_AGENT) * per_agent
    radius = scenario.initial.tumor_radius_sites
    seeding = sites * F8 + (2 * radius + 1) ** len(padded) * 2 * len(padded) * I8
    parts["transients"] = max(seeding, TRANSIENT_FLOAT64_PER_SITE * F8 * sites)
    records = sim.steps // scenario.output.record_every_steps + 2
    drug_series = 2 * len(scenario.drugs)
    parts["time series"] = records * F8 * (SERIES_PER_RECORD + n_clones + drug_series)
    return parts


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} PiB"


def available_bytes() -> int | None:
    """Memory a new process can have now: Linux MemAvailable, capped by this container's
    cgroup (v2) limit less its use; elsewhere the free physical pages; None if unknown."""
    found = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        with open("/sys/fs/cgroup/memory.current") as fh:
            used = int(fh.read().strip())
        if limit != "max":
            found = min(found, int(limit) - used) if found is not None else int(limit) - used
    except (OSError, ValueError):
        pass
    return found
