"""Bounds before work: caps on what one run may ask for, checked when a scenario is
validated, before anything is allocated (docs/limits.md lists them with their reasons).

A value inside every key's own range can still ask for a run that never ends or that no
machine holds (``duration_days = 1e12``, ``dt_hours = 1e-12``, a dose every 1e-12 days,
a 10^10-site lattice). These caps bound the work and the output of one run; the memory
estimate (``model.memory``) is compared with the machine's memory by :func:`check_memory`.
"""
from __future__ import annotations

import math
import re

from simulator.model.immune import immune_enabled, moves_per_step
from kernels.multigrid import level_count as field_levels
from simulator.model.tissue import COLD_START_CYCLES
from simulator.model.memory import (PROCESS_BASE_BYTES, available_bytes, estimate_bytes,
                                    format_bytes)
from simulator.schema import INT_HIGH, ScenarioError

# A float32 field snapshot is one HDF5 chunk per frame, and HDF5 chunks are < 4 GiB.
MAX_SITES = 2**30
MAX_STEPS = 10**7            # ~6,800 years at the default 6 h step; 19 years at 1 min
MAX_RECORDS = 5 * 10**6      # time-series records (held in memory for the endpoints)
MAX_SNAPSHOTS = 10**5        # lattice snapshots (each a full frame on disk)
MAX_SNAPSHOT_BYTES = 2**40   # all snapshot frames of a run, uncompressed (1 TiB)
MAX_DOSES = 10**5            # scheduled doses of all drugs in one run
MAX_SCANS = 10**5            # tumour assessments (endpoints, and the regimen's rules)
MAX_MOVES_PER_STEP = 1000    # lattice sites an immune cell may cross in one step
# Drug and arm names become HDF5 group names, directory names and CSV columns.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
NAME_RULE = ("a name: a letter or '_', then up to 63 letters, digits, '_' or '-'")


def check_name(name: str, key: str, source: str = ""):
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ScenarioError(f"{name!r} is not {NAME_RULE}", key, source)


def snapshot_count(scenario) -> int:
    sim, every = scenario.simulation, scenario.output.snapshot_every_days
    if every <= 0:
        return 2
    per = max(1, int(round(every * 24.0 / sim.dt_hours)))
    return sim.steps // per + 2


def dose_count(drug, duration_days: float) -> int:
    """An upper bound on the doses a drug's blocks schedule in a run of this length
    (rule-started drugs count from day 0, the earliest a rule can start them)."""
    total = 0
    for block in drug.doses:
        if block.every_days is None:
            n = 1
        else:
            last = duration_days if block.until_day is None else min(duration_days,
                                                                      block.until_day)
            n = max(0.0, last - block.start_day) / block.every_days + 1
            if block.count is not None:
                n = min(n, block.count)
        total += n
    return total


def check_simulation(sim):
    """Caps that need only ``[simulation]`` (called by ``Simulation.check``)."""
    sites = math.prod(int(n) for n in sim.dimensions)
    if sites > MAX_SITES:
        raise ScenarioError(f"{' x '.join(map(str, sim.dimensions))} is {sites:.3g} sites; "
                            f"at most {MAX_SITES} (2^30) per run", "dimensions")
    steps = sim.duration_days * 24.0 / sim.dt_hours
    if steps > MAX_STEPS:
        raise ScenarioError(f"duration_days / dt_hours gives {steps:.3g} steps; at most "
                            f"{MAX_STEPS:.0e} per run (shorten the run or lengthen the step)",
                            "duration_days")
    if sim.steps < 1:
        raise ScenarioError(f"is shorter than half a step (dt_hours = {sim.dt_hours:g})",
                            "duration_days")


def check_scenario(scenario):
    """Caps across sections (called by ``Scenario.check``)."""
    sim = scenario.simulation
    records = sim.steps // scenario.output.record_every_steps + 2
    if records > MAX_RECORDS:
        raise ScenarioError(f"gives {records:.3g} time-series records; at most "
                            f"{MAX_RECORDS:.0e} per run", "output.record_every_steps")
    snapshots = snapshot_count(scenario)
    if snapshots > MAX_SNAPSHOTS:
        raise ScenarioError(f"gives {snapshots:.3g} lattice snapshots; at most "
                            f"{MAX_SNAPSHOTS:.0e} per run", "output.snapshot_every_days")
    frame = math.prod(sim.dimensions) * (2 + 4 * len(scenario.output.snapshot_fields))
    if snapshots * frame > MAX_SNAPSHOT_BYTES:
        raise ScenarioError(f"gives {snapshots} snapshots of {frame:.3g} bytes (cell kinds, "
                            f"clones, float32 fields), {snapshots * frame / 2**40:.3g} TiB "
                            "uncompressed; at most 1 TiB per run",
                            "output.snapshot_every_days")
    doses = sum(dose_count(d, sim.duration_days) for d in scenario.drugs.values())
    if doses > MAX_DOSES:
        raise ScenarioError(f"the dose blocks schedule {doses:.3g} doses; at most "
                            f"{MAX_DOSES:.0e} per run", "drugs")
    treated_days = sim.duration_days - sim.treatment_start_day
    for key, interval in (("endpoints.scan_interval_days", scenario.endpoints.scan_interval_days),
                          ("regimen.scan_interval_days", scenario.regimen.scan_interval_days)):
        if interval > 0 and treated_days / interval > MAX_SCANS:
            raise ScenarioError(f"gives {treated_days / interval:.3g} scans; at most "
                                f"{MAX_SCANS:.0e} per run (0 = every step, for the regimen)",
                                key)
    cycles = [("fields.max_cycles_per_step", scenario.fields.max_cycles_per_step)]
    cycles += [(f"drugs.{n}.penetration.max_cycles_per_step", d.penetration.max_cycles_per_step)
               for n, d in scenario.drugs.items() if d.penetration is not None]
    for key, n in cycles:
        if n > COLD_START_CYCLES:   # a warm-started step needs no more than a cold solve
            raise ScenarioError(f"must be <= {COLD_START_CYCLES}, got {n}", key)
    for name in scenario.fields.enabled_names():
        level = scenario.fields.settings(name).coarse_level
        if level and level >= field_levels(sim.dimensions):
            raise ScenarioError(f"a {2 ** level}x coarser grid needs more than {2 ** level} "
                                "sites along some axis of the lattice "
                                f"{' x '.join(map(str, sim.dimensions))}",
                                f"fields.{name}.grid_coarsening")
    for name in scenario.drugs:
        check_name(name, f"drugs.{name}")
    radius, smallest = scenario.initial.tumor_radius_sites, min(sim.dimensions)
    if radius > (smallest - 1) // 2:
        raise ScenarioError(f"{radius} does not fit the {' x '.join(map(str, sim.dimensions))} "
                            f"lattice (at most {(smallest - 1) // 2} around its centre)",
                            "initial.tumor_radius_sites")
    if immune_enabled(scenario):
        for section in ("t_cells", "suppressive"):
            speed = getattr(scenario, section).speed_um_per_min
            moves = moves_per_step(speed, sim.dt_hours, sim.spacing_um)
            if moves > MAX_MOVES_PER_STEP:
                raise ScenarioError(f"gives {moves:.3g} sites per step (speed x dt / "
                                    f"spacing); at most {MAX_MOVES_PER_STEP}",
                                    f"{section}.speed_um_per_min")
        handling = scenario.t_cells.handling_hours / sim.dt_hours
        if handling > INT_HIGH:
            raise ScenarioError(f"is {handling:.3g} steps; at most {INT_HIGH}",
                                "t_cells.handling_hours")


def check_memory(scenario, copies: int = 1, source: str = ""):
    """Refuse a scenario whose ``copies`` concurrent runs (a study's workers, each holding
    a pre-treatment engine and an arm's copy) would not fit in the available memory."""
    need = copies * sum(estimate_bytes(scenario).values()) + PROCESS_BASE_BYTES
    have = available_bytes()
    if have is not None and need > have:
        what = f"{copies} concurrent runs need" if copies > 1 else "needs"
        raise ScenarioError(f"{what} about {format_bytes(need)} of memory "
                            f"({format_bytes(have)} available); shrink "
                            "simulation.dimensions (see `tumorsim inspect`)",
                            "simulation.dimensions", source)
