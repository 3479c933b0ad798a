"""Scenario sections that belong to no single process: the run itself and its output.

Every key carries its physical unit in its name and its default, range, meaning and source
in :func:`~simulator.schema.param`.
"""
from __future__ import annotations

from dataclasses import dataclass

from simulator.scenario.bounds import check_simulation
from simulator.schema import ScenarioError, param


@dataclass(frozen=True)
class Simulation:
    seed: int = param(1, low=0, high=2**63 - 1, doc="key of every random decision")
    replicate: int = param(0, low=0, doc="replicate index; part of the random key")
    duration_days: float = param(120.0, unit="day", low=0.0, low_open=True,
                                 doc="simulated time after day 0")
    dt_hours: float = param(6.0, unit="hour", low=0.0, low_open=True, high=48.0,
                            doc="length of one step")
    dimensions: list[int] = param([600, 600], unit="site", low=3,
                                  doc="lattice size: 2 entries (2D) or 3 (3D)")
    spacing_um: float = param(20.0, unit="um", low=0.0, low_open=True,
                              doc="lattice spacing: one cell diameter",
                              source="PhysiCell default cell diameter ~ 16-20 um")
    treatment_start_day: float = param(0.0, unit="day", low=0.0,
                                       doc="baseline for response endpoints; the day "
                                           "`tumorsim compare` forks each arm")
    threads: int = param(0, low=0, doc="Numba threads; 0 = automatic: one or all cores, "
                                       "chosen step by step by timing (README, \"Threads "
                                       "and performance\")")

    def check(self):
        if len(self.dimensions) not in (2, 3):
            raise ScenarioError(f"needs 2 or 3 entries, got {len(self.dimensions)}",
                                "dimensions")
        if self.treatment_start_day > self.duration_days:
            raise ScenarioError("is after the end of the run (simulation.duration_days = "
                                f"{self.duration_days:g})", "treatment_start_day")
        check_simulation(self)

    @property
    def ndim(self) -> int:
        return len(self.dimensions)

    @property
    def steps(self) -> int:
        return int(round(self.duration_days * 24.0 / self.dt_hours))


@dataclass(frozen=True)
class Output:
    record_every_steps: int = param(1, low=1, doc="time-series record interval")
    snapshot_every_days: float = param(7.0, unit="day", low=0.0,
                                       doc="lattice snapshot interval; 0 = first and last only")
    snapshot_fields: list[str] = param([], doc="fields saved with each snapshot "
                                               "(names from the [fields] table)")
    compression: int = param(4, low=0, high=9,
                             doc="gzip level of snapshots (0 = none; 1-4 skip deflate's "
                                 "match search: fields ~3x faster for ~8% more bytes, cell "
                                 "kinds faster and smaller; 5-9 search)")
    checkpoint_every_seconds: float = param(
        10.0, unit="s", low=0.0,
        doc="wall time between checkpoints of the whole run state, from which `tumorsim "
            "resume` continues a killed run (at most this much work is lost; a checkpoint "
            "that takes c seconds defers the next to >= 10 c); 0 = no checkpoints")
    margin_width_um: float = param(100.0, unit="um", low=0.0, low_open=True,
                                   doc="half-width of the invasive-margin band around the "
                                       "tumour's equivalent radius, for the T-cell density "
                                       "series (core = inside the band)",
                                   source="Immunoscore core / invasive margin (Galon 2006 "
                                          "Science 313:1960); narrower on a 2D slice")

    def check(self):
        pass
