"""Scenario sections of the engine core: simulation, initial tumour, tumour biology, output.

Every key carries its physical unit in its name and its default, range, meaning and source
in :func:`~simulator.schema.param`. Rates are per day or per hour as named; the engine turns a
rate k into a per-step probability ``1 - exp(-k dt)`` once (``simulator.rates``).
"""
from __future__ import annotations

from dataclasses import dataclass

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
    threads: int = param(0, low=0, doc="Numba threads; 0 = Numba's default (all cores)")

    def check(self):
        if len(self.dimensions) not in (2, 3):
            raise ScenarioError(f"needs 2 or 3 entries, got {len(self.dimensions)}",
                                "dimensions")
        if self.treatment_start_day > self.duration_days:
            raise ScenarioError("is after the end of the run (simulation.duration_days = "
                                f"{self.duration_days:g})", "treatment_start_day")

    @property
    def ndim(self) -> int:
        return len(self.dimensions)

    @property
    def steps(self) -> int:
        return int(round(self.duration_days * 24.0 / self.dt_hours))


@dataclass(frozen=True)
class Initial:
    tumor_radius_sites: int = param(10, unit="site", low=0,
                                    doc="radius of the initial disc/ball; 0 = one founder "
                                        "cell at the centre")
    resistant_fraction: float = param(0.001, low=0.0, high=1.0,
                                      doc="pre-existing fraction resistant to every "
                                          "target, placed at random",
                                      source="Bozic 2013 eLife 2:e00747: resistant cells "
                                             "pre-exist at detection")

    def check(self):
        pass


@dataclass(frozen=True)
class Tumor:
    division_rate_per_day: float = param(0.5, unit="1/day", low=0.0,
                                         doc="division rate of a cell with a free neighbour "
                                             "under normoxia",
                                         source="Kather 2017 Cancer Res 77:6442 (one "
                                                "division per ~1-2 days)")
    death_rate_per_day: float = param(0.05, unit="1/day", low=0.0,
                                      doc="base (apoptotic) death rate",
                                      source="Bozic 2013: d/b ~ 0.9 in vivo; lower here so "
                                             "boundary-limited lattice growth is visible")
    mutation_rate_per_division: float = param(1e-5, low=0.0, high=1.0,
                                              doc="probability that a daughter gains "
                                                  "resistance to one more target",
                                              source="Bozic 2013: 50 x 1e-9 per base per "
                                                     "division; raised for lattice scale")
    resistance_targets: list[str] = param(["BRAF"],
                                          doc="targets a targeted drug can hit; a clone's "
                                              "resistance mask has one bit per target (<= 7)")
    resistance_fitness_cost: float = param(0.1, low=0.0, high=1.0,
                                           doc="fractional loss of division rate per "
                                               "resistance acquired",
                                           source="Gatenby 2009 Cancer Res 69:4894 "
                                                  "(cost of resistance, adaptive therapy)")
    antigenicity: float = param(1.0, low=0.0,
                                doc="relative antigenicity of untreated tumour cells; "
                                    "scales T-cell kill probability")
    dead_clearance_rate_per_day: float = param(1.0, unit="1/day", low=0.0,
                                               doc="rate at which dead-cell debris is "
                                                   "removed, freeing the site")

    def check(self):
        if not 1 <= len(self.resistance_targets) <= 7:
            raise ScenarioError("needs 1 to 7 target names", "resistance_targets")
        if len(set(self.resistance_targets)) != len(self.resistance_targets):
            raise ScenarioError("target names must be distinct", "resistance_targets")


@dataclass(frozen=True)
class Output:
    record_every_steps: int = param(1, low=1, doc="time-series record interval")
    snapshot_every_days: float = param(7.0, unit="day", low=0.0,
                                       doc="lattice snapshot interval; 0 = first and last only")
    snapshot_fields: list[str] = param([], doc="fields saved with each snapshot "
                                               "(names from the [fields] table)")
    compression: int = param(4, low=0, high=9, doc="gzip level of snapshots")
    margin_width_um: float = param(100.0, unit="um", low=0.0, low_open=True,
                                   doc="half-width of the invasive-margin band around the "
                                       "tumour's equivalent radius, for the T-cell density "
                                       "series (core = inside the band)",
                                   source="Immunoscore core / invasive margin (Galon 2006 "
                                          "Science 313:1960); narrower on a 2D slice")

    def check(self):
        pass


@dataclass(frozen=True)
class EndpointSettings:
    """RECIST-like assessment of the simulated tumour (see ``simulator.endpoints``)."""
    scan_interval_days: float = param(28.0, unit="day", low=0.0, low_open=True,
                                      doc="assessments at treatment start + k x interval")
    real_cells_per_site: float = param(1.0, low=0.0, low_open=True,
                                       doc="real cells one simulated cell stands for; sets "
                                           "the mm scale of the equivalent diameter")
    partial_response_drop: float = param(0.30, low=0.0, high=1.0,
                                         doc="PR: diameter decrease from baseline",
                                         source="RECIST 1.1, Eisenhauer 2009 EJC 45:228")
    progression_rise: float = param(0.20, low=0.0, doc="PD: diameter increase over the nadir",
                                    source="RECIST 1.1")
    progression_min_mm: float = param(1.0, unit="mm", low=0.0,
                                      doc="PD also needs this absolute increase (RECIST: 5 mm "
                                          "on real lesions; a 2D slice of 20 um cells is a few "
                                          "mm across, hence 1 mm by default)",
                                      source="RECIST 1.1 (5 mm)")
    durable_min_days: float = param(180.0, unit="day", low=0.0,
                                    doc="a response lasting at least this long is durable",
                                    source="Andtbacka 2015 JCO 33:2780 (>= 6 months)")
    resistance_share_threshold: float = param(0.5, low=0.0, high=1.0,
                                              doc="time to resistance: resistant share "
                                                  "passes this")

    def criteria(self, dimensions: int, spacing_um: float):
        from simulator.endpoints import ResponseCriteria
        return ResponseCriteria(dimensions=dimensions, spacing_um=spacing_um,
                                **{k: getattr(self, k) for k in self.__dataclass_fields__})


@dataclass(frozen=True)
class RegimenSettings:
    scan_interval_days: float = param(7.0, unit="day", low=0.0,
                                      doc="how often regimen rules (progression, adaptive "
                                          "pause/resume, stop in response) look at the "
                                          "tumour; 0 = every step",
                                      source="Zhang 2017 Nat Commun 8:1816 (adaptive "
                                             "abiraterone: PSA every 4 weeks); weekly here")
