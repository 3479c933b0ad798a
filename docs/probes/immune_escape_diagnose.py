"""Step one cured anti-PD-1 patient of the escape probe (docs/probes/immune_escape.py: 5%
unseen cells, no oxygen field) and follow the unseen cells every 5 days: how many, how many
have an EMPTY neighbour (only those can divide), and the mean number of T-cell, debris,
tumour and EMPTY neighbours of one.

    python docs/probes/immune_escape_diagnose.py PROBE_OUT [REPLICATE]

PROBE_OUT: the escape probe's output directory (its anti_pd1 run files hold each patient's
resolved scenario)."""
import os
import sys
os.environ.setdefault("ESCAPE_FRACTION", "0.05")
os.environ.setdefault("ESCAPE_ANTIGENICITY", "0.0")
import immune_escape  # noqa: E402,F401 - its import patches the engine (this folder is on sys.path)
import h5py
import numpy as np
from simulator import scenario as scenario_mod
from simulator.engine import Engine
from kernels.lattice import DEAD, EMPTY, T_CELL, TUMOR

out = sys.argv[1]
rep = int(sys.argv[2]) if len(sys.argv) > 2 else 0
f = h5py.File(f"{out}/runs/anti_pd1/replicate-{rep:03d}.h5", "r")
toml = f["provenance/scenario_toml"][()].decode()
sc = scenario_mod.from_toml(toml)
e = Engine(sc)
geo = e.state.geometry
shape = tuple(n + 2 for n in geo.dimensions)
def neighbours(mask2d, k2d, what):
    out = np.zeros(mask2d.shape, int)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx or dy:
                out += (np.roll(np.roll(k2d, dx, 0), dy, 1) == what)
    return out[mask2d]
print("day  escape  with_empty  T_nb  dead_nb  tumour_nb  empty_nb  visible  tcells")
steps_per_day = int(round(24 / sc.simulation.dt_hours))
for day in range(0, 400):
    k = e.state.kind.reshape(shape)
    c = e.state.clone.reshape(shape)
    esc = (k == TUMOR) & ((c & 2) > 0)
    n = int(esc.sum())
    if day % 5 == 0 or n == 0:
        emp = neighbours(esc, k, EMPTY)
        vis = int(((k == TUMOR) & ((c & 2) == 0)).sum())
        print(f"{day:4d} {n:7d} {int((emp > 0).sum()):10d} {neighbours(esc, k, T_CELL).mean() if n else 0:5.2f} "
              f"{neighbours(esc, k, DEAD).mean() if n else 0:8.2f} {neighbours(esc, k, TUMOR).mean() if n else 0:9.2f} "
              f"{emp.mean() if n else 0:8.2f} {vis:8d} {int((k == T_CELL).sum()):7d}")
    if n == 0 or e.state.step * sc.simulation.dt_hours / 24 > 400:
        break
    for _ in range(steps_per_day):
        e.step()
