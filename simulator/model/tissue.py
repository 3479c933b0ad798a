"""Tissue: vessels, the four diffusing fields, and the tumour's response to oxygen.

Scenario sections ``[vessels]``, ``[fields.oxygen]``, ``[fields.chemokine]``,
``[fields.ifn_gamma]``, ``[fields.suppressive_cytokine]`` and ``[hypoxia]``, and the runtime
:class:`TissueFields` that solves the fields each step with ``kernels.fields``.

Fields are solved quasi-steadily: each field relaxes within minutes to an hour (1 / decay
and L^2 / D are <= ~1 h for every default), far shorter than a step (hours), so each step
takes the steady state of ``D lap c - (decay + uptake) c + source = 0`` for the lattice at
the start of the step (warm-started from the previous step's field; one pseudo-time ADI
cycle per step usually suffices, see ``fields.max_cycles_per_step``). Sources are built from
the lattice and the previous step's fields, then every field is solved, then every reader
in the step sees the new fields (double buffering, as HAL's ``PDEGrid``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kernels import fields as field_kernels
from kernels import lattice
from kernels import microenvironment as micro
from kernels.rng import STREAM_VESSEL, fill_uniform, step_key, stream_key
from simulator.model.rates import per_step_probability
from simulator.schema import ScenarioError, param

FIELD_NAMES = ("oxygen", "chemokine", "ifn_gamma", "suppressive_cytokine")
COLD_START_CYCLES = 200   # a solve from scratch iterates to tolerance, at most this long
BOUNDARY_KINDS = {"no_flux": field_kernels.BC_NO_FLUX,
                  "fixed_value": field_kernels.BC_FIXED_VALUE}
PHYSICELL = "PhysiCell cancer-immune sample (Ghaffarizadeh 2018 PLoS Comput Biol 14:e1005991)"
CYTOKINE_D = ("10-30 kDa proteins in tissue ~ 1e-7 cm^2/s = 600 um^2/min; effective "
              "communication range ~ 250 um (Francis & Palsson 1997 PNAS 94:12258)")


# ----------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class Vessels:
    """Fixed vessel sites: sources of oxygen (and of drug, where spatial penetration is on)
    and the entry points of recruited T cells and suppressive cells."""
    density: float = param(0.01, low=0.0, high=0.5,
                           doc="fraction of lattice sites that are vessels, placed at random "
                               "outside the initial tumour (0 = none)",
                           source="tumour microvessel density 50-200 /mm^2 in hot spots "
                                  "(Weidner 1991 NEJM 324:1); 0.01 = 25 /mm^2 at 20 um")
    positions: list[list[int]] = param([], unit="site",
                                       doc="explicit vessel coordinates [x, y(, z)] "
                                           "(0-based), added to the random ones")

    def check(self):
        pass


@dataclass(frozen=True)
class FieldSettings:
    """Settings shared by every field; each field's section overrides the defaults."""
    enabled: bool = param(True, doc="solve this field (false: it does not exist and its "
                                    "readers see none)")
    diffusion_um2_per_min: float = param(1000.0, unit="um^2/min", low=0.0,
                                         doc="diffusion coefficient", source=CYTOKINE_D)
    decay_per_min: float = param(0.016, unit="1/min", low=0.0, low_open=True,
                                 doc="first-order decay everywhere",
                                 source=f"{PHYSICELL}: immunostimulatory factor 0.016/min")
    tumor_uptake_per_min: float = param(0.0, unit="1/min", low=0.0,
                                        doc="uptake rate at each tumour cell's site")
    immune_uptake_per_min: float = param(0.0, unit="1/min", low=0.0,
                                         doc="uptake rate at each T cell's and suppressive "
                                             "cell's site")
    vessel_level: float = param(0.0, low=0.0,
                                doc="concentration in vessel blood (field units)")
    vessel_exchange_per_min: float = param(0.0, unit="1/min", low=0.0,
                                           doc="exchange rate between a vessel site and "
                                               "blood: uptake k and source k * vessel_level")
    boundary: list[str] = param(["no_flux"],
                                doc="per domain face (-x, +x, -y, +y[, -z, +z]) or one for "
                                    "all: 'no_flux' or 'fixed_value'")
    boundary_value: list[float] = param([0.0],
                                        doc="the fixed value per face (or one for all); "
                                            "ignored on no-flux faces")

    def check(self):
        for name in self.boundary:
            if name not in BOUNDARY_KINDS:
                raise ScenarioError(f"must be 'no_flux' or 'fixed_value', got {name!r}",
                                    "boundary")

    def faces(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        n = 2 * ndim
        kinds = self.boundary * n if len(self.boundary) == 1 else self.boundary
        values = self.boundary_value * n if len(self.boundary_value) == 1 else \
            self.boundary_value
        if len(kinds) != n:
            raise ScenarioError(f"needs 1 or {n} entries for a {ndim}D lattice, got "
                                f"{len(self.boundary)}", "boundary")
        if len(values) != n:
            raise ScenarioError(f"needs 1 or {n} entries for a {ndim}D lattice, got "
                                f"{len(self.boundary_value)}", "boundary_value")
        return (np.array([BOUNDARY_KINDS[k] for k in kinds], dtype=np.int64),
                np.array(values, dtype=np.float64))


@dataclass(frozen=True)
class OxygenField(FieldSettings):
    """Oxygen in mmHg."""
    diffusion_um2_per_min: float = param(1.0e5, unit="um^2/min", low=0.0,
                                         doc="diffusion coefficient", source=PHYSICELL)
    decay_per_min: float = param(0.1, unit="1/min", low=0.0, low_open=True,
                                 doc="first-order decay everywhere", source=PHYSICELL)
    tumor_uptake_per_min: float = param(10.0, unit="1/min", low=0.0,
                                        doc="uptake rate at each tumour cell's site",
                                        source=PHYSICELL)
    immune_uptake_per_min: float = param(1.0, unit="1/min", low=0.0,
                                         doc="uptake rate at each T cell's and suppressive "
                                             "cell's site",
                                         source=f"{PHYSICELL}: immune cells 1/min")
    vessel_level: float = param(38.0, unit="mmHg", low=0.0,
                                doc="oxygen partial pressure in vessel blood",
                                source=f"{PHYSICELL}: 38 mmHg (physioxic tissue)")
    vessel_exchange_per_min: float = param(100.0, unit="1/min", low=0.0,
                                           doc="exchange rate between a vessel site and "
                                               "blood",
                                           source="calibrated: 10 x tumour uptake, so a "
                                                  "vessel site stays near blood level and "
                                                  "the tumour's mean pO2 is ~7-10 mmHg "
                                                  "(Vaupel 2004 Semin Radiat Oncol 14:198: "
                                                  "median tumour pO2 ~10 mmHg)")
    boundary: list[str] = param(["fixed_value"],
                                doc="per domain face (-x, +x, -y, +y[, -z, +z]) or one for "
                                    "all: 'no_flux' or 'fixed_value'",
                                source=f"{PHYSICELL}: Dirichlet on every face")
    boundary_value: list[float] = param([38.0], unit="mmHg",
                                        doc="the fixed value per face (or one for all)",
                                        source=f"{PHYSICELL}: 38 mmHg")


@dataclass(frozen=True)
class ChemokineField(FieldSettings):
    """T-cell-attracting chemokine (CXCL9/10-like) in ng/mL."""
    tumor_secretion_per_min: float = param(0.0, unit="ng/mL/min", low=0.0,
                                           doc="basal secretion at each tumour cell's site")
    tumor_ifn_secretion_per_min: float = param(0.02, unit="ng/mL/min", low=0.0,
                                               doc="extra secretion by a tumour cell at "
                                                   "saturating IFN-gamma (Hill of [pd_l1])",
                                               source="CXCL9/10 are IFN-gamma-induced "
                                                      "(Gong 2017); magnitude calibrated")
    dead_cell_secretion_per_min: float = param(0.02, unit="ng/mL/min", low=0.0,
                                               doc="secretion at each site of dying-cell "
                                                   "debris (DEAD)",
                                               source="dying cells release danger signals "
                                                      "(Kather 2017 chemotaxis map from "
                                                      "tumour cells); calibrated")


@dataclass(frozen=True)
class IfnGammaField(FieldSettings):
    """IFN-gamma in ng/mL."""
    decay_per_min: float = param(0.01, unit="1/min", low=0.0, low_open=True,
                                 doc="first-order decay (and consumption) everywhere",
                                 source="IFN-gamma reaches cells 30-40 diameters from its "
                                        "source (Oyler-Yaniv 2017 Immunity 46:609); "
                                        "L = sqrt(D / decay) ~ 300 um")
    t_cell_secretion_per_min: float = param(0.1, unit="ng/mL/min", low=0.0,
                                            doc="secretion at the site of each engaged T "
                                                "cell (attacking or handling a kill)",
                                            source="calibrated so a cluster of engaged T "
                                                   "cells exceeds the PD-L1 half-max "
                                                   "0.11 ng/mL (Gong 2017)")


@dataclass(frozen=True)
class SuppressiveCytokineField(FieldSettings):
    """Suppressive cytokine (TGF-beta / IL-10-like) in ng/mL."""
    decay_per_min: float = param(0.02, unit="1/min", low=0.0, low_open=True,
                                 doc="first-order decay everywhere; with D it sets the "
                                     "radius of suppression sqrt(D / decay) ~ 220 um",
                                 source=CYTOKINE_D)
    suppressive_cell_secretion_per_min: float = param(0.1, unit="ng/mL/min", low=0.0,
                                                      doc="secretion at each suppressive "
                                                          "cell's site",
                                                      source="calibrated against "
                                                             "suppressive.cytokine_half_"
                                                             "saturation_ng_per_ml")
    tumor_secretion_per_min: float = param(0.0, unit="ng/mL/min", low=0.0,
                                           doc="secretion at each tumour cell's site "
                                               "(tumour-derived TGF-beta)")


@dataclass(frozen=True)
class Fields:
    oxygen: OxygenField = param(OxygenField())
    chemokine: ChemokineField = param(ChemokineField())
    ifn_gamma: IfnGammaField = param(IfnGammaField())
    suppressive_cytokine: SuppressiveCytokineField = param(SuppressiveCytokineField())
    tolerance: float = param(1e-3, low=0.0, low_open=True,
                             doc="quasi-steady solve: stop once a pseudo-time cycle changes "
                                 "the field by at most this fraction of its maximum")
    max_cycles_per_step: int = param(1, low=1,
                                     doc="at most this many pseudo-time ADI cycles per field "
                                         "per step (warm-started; the first solve at t = 0 "
                                         "runs to the tolerance)")

    def check(self):
        pass

    def settings(self, name: str) -> FieldSettings:
        return getattr(self, name)

    def enabled_names(self) -> list[str]:
        return [name for name in FIELD_NAMES if getattr(self, name).enabled]


@dataclass(frozen=True)
class Hypoxia:
    """How tumour cells respond to oxygen (needs fields.oxygen)."""
    proliferation_threshold_mmhg: float = param(5.0, unit="mmHg", low=0.0,
                                                doc="no division at or below this level",
                                                source=f"{PHYSICELL}: 5 mmHg")
    proliferation_saturation_mmhg: float = param(10.0, unit="mmHg", low=0.0,
                                                 doc="full division rate "
                                                     "(tumor.division_rate_per_day) at or "
                                                     "above this level, linear from the "
                                                     "threshold",
                                                 source="calibrated: tumour cells proliferate "
                                                        "at the median tumour pO2 ~10 mmHg "
                                                        "(Vaupel 2004); PhysiCell saturates "
                                                        "at its 38 mmHg reference")
    necrosis_threshold_mmhg: float = param(5.0, unit="mmHg", low=0.0,
                                           doc="cells below this level may turn necrotic",
                                           source=f"{PHYSICELL}: 5 mmHg")
    necrosis_full_mmhg: float = param(2.5, unit="mmHg", low=0.0,
                                      doc="the necrosis rate is maximal at or below this level",
                                      source=f"{PHYSICELL}: 2.5 mmHg")
    necrosis_rate_per_day: float = param(4.0, unit="1/day", low=0.0,
                                         doc="maximal rate of necrotic death under anoxia; the "
                                             "per-step probability ramps linearly from 0 at "
                                             "the threshold to 1 - exp(-rate dt) at full",
                                         source=f"{PHYSICELL}: 1 / (6 h)")
    necrotic_clearance_rate_per_day: float = param(0.05, unit="1/day", low=0.0,
                                                   doc="rate at which necrotic debris is "
                                                       "cleared, freeing the site",
                                                   source="necrotic cores persist for weeks "
                                                          "(check); calibrated")

    def check(self):
        if self.proliferation_saturation_mmhg <= self.proliferation_threshold_mmhg:
            raise ScenarioError("must exceed proliferation_threshold_mmhg",
                                "proliferation_saturation_mmhg")
        if self.necrosis_threshold_mmhg <= self.necrosis_full_mmhg:
            raise ScenarioError("must exceed necrosis_full_mmhg", "necrosis_threshold_mmhg")


# ----------------------------------------------------------------------------- vessels
def place_vessels(state, vessels: Vessels, seed: int, replicate: int) -> None:
    """Turn sites into VESSEL: each EMPTY interior site with a draw below the density
    (stream STREAM_VESSEL, keyed by site), plus the explicit positions (outside the initial
    tumour, checked by the scenario)."""
    geo = state.geometry
    if vessels.density > 0:
        key = np.uint64(step_key(np.uint64(stream_key(seed, replicate, STREAM_VESSEL)), 0))
        draws = fill_uniform(key, np.empty(geo.n_sites))
        state.kind[(draws < vessels.density) & (state.kind == lattice.EMPTY)] = lattice.VESSEL
    if vessels.positions:  # validated by the scenario (inside, not in the tumour)
        sites = geo.flat_index(np.array(vessels.positions, dtype=np.int64))
        state.kind[sites] = lattice.VESSEL


# ----------------------------------------------------------------------------- fields
def relax(c, work, alpha, decay_dt, uptake, source, bc_kind, bc_value, tolerance, cycles,
          cold, key):
    """Quasi-steady solve of one padded field in place: pseudo-time ADI cycles
    (``kernels.fields.quasi_steady_state``) until one changes the field by at most
    ``tolerance`` of its maximum, at most ``cycles`` of them warm-started, or
    COLD_START_CYCLES from scratch (``cold``). A solve from scratch that does not converge
    raises a ScenarioError on ``key`` rather than leaving a wrong field."""
    for _ in range(COLD_START_CYCLES if cold else cycles):
        _, rel = field_kernels.quasi_steady_state(c, work, alpha, decay_dt, uptake, source,
                                                  bc_kind, bc_value, tolerance, 1)
        if rel <= tolerance:
            return
    if cold:
        raise ScenarioError(
            f"the quasi-steady field solve did not converge in {COLD_START_CYCLES} ADI cycles "
            f"(relative change {rel:.2g} per cycle): uptake or vessel exchange is too stiff "
            "for the diffusion over one step (the pseudo-time ADI iteration stalls when a "
            "site's rate x dt exceeds D dt / dx^2 many times over); lower it or shorten "
            "simulation.dt_hours", key)


def fields_enabled(scenario) -> bool:
    return bool(scenario.fields.enabled_names())


class TissueFields:
    """The enabled fields of one run: concentrations (padded float64, flat views share the
    lattice's indexing), per-step uptake / source arrays and the solve.

    ``arrays[name]`` is the padded concentration of a field; ``flat(name)`` its flat view
    (index = lattice site) or an empty array when the field is disabled.
    """

    def __init__(self, scenario, state):
        settings = scenario.fields
        geo = state.geometry
        self.names = settings.enabled_names()
        self.index = {name: f for f, name in enumerate(self.names)}
        self.padded = geo.padded
        self.line_length = geo.line_length
        self.tolerance = settings.tolerance
        self.max_cycles = settings.max_cycles_per_step
        n = len(self.names)
        self.uptake = np.zeros((n, geo.n_sites))
        self.source = np.zeros((n, geo.n_sites))
        self.work = np.zeros(geo.padded)
        self.arrays = {name: np.zeros(geo.padded) for name in self.names}
        self._empty = np.empty(0, np.float64)
        self.configure(scenario)
        self.solved = False

    def configure(self, scenario):
        """Per-step numbers from the scenario (called again when a fork changes it)."""
        sim, settings = scenario.simulation, scenario.fields
        dt_min = sim.dt_hours * 60.0
        dx2 = sim.spacing_um ** 2
        n = len(self.names)
        self.alpha = np.zeros(n)
        self.decay_dt = np.zeros(n)
        self.bc_kind, self.bc_value = [], []
        self.uptake_by_kind = np.zeros((n, len(lattice.KIND_NAMES)))
        self.source_by_kind = np.zeros((n, len(lattice.KIND_NAMES)))
        for f, name in enumerate(self.names):
            s = settings.settings(name)
            self.alpha[f] = s.diffusion_um2_per_min * dt_min / dx2
            self.decay_dt[f] = s.decay_per_min * dt_min
            kinds, values = s.faces(sim.ndim)
            self.bc_kind.append(kinds)
            self.bc_value.append(values)
            up, src = self.uptake_by_kind[f], self.source_by_kind[f]
            up[lattice.TUMOR] = s.tumor_uptake_per_min * dt_min
            up[lattice.T_CELL] = up[lattice.SUPPRESSIVE] = s.immune_uptake_per_min * dt_min
            up[lattice.VESSEL] = s.vessel_exchange_per_min * dt_min
            src[lattice.VESSEL] = s.vessel_exchange_per_min * s.vessel_level * dt_min
            if name == "chemokine":
                src[lattice.TUMOR] = s.tumor_secretion_per_min * dt_min
                src[lattice.DEAD] = s.dead_cell_secretion_per_min * dt_min
            elif name == "suppressive_cytokine":
                src[lattice.TUMOR] = s.tumor_secretion_per_min * dt_min
                src[lattice.SUPPRESSIVE] = s.suppressive_cell_secretion_per_min * dt_min
        self._suppressive_source = (self.source_by_kind[self.index["suppressive_cytokine"],
                                                        lattice.SUPPRESSIVE]
                                    if "suppressive_cytokine" in self.index else 0.0)
        chem = settings.chemokine
        self.induced_rate = chem.tumor_ifn_secretion_per_min * dt_min
        self.pd_l1 = scenario.pd_l1
        self.t_cell_ifn_source = settings.ifn_gamma.t_cell_secretion_per_min * dt_min

    # -------------------------------------------------------------- access
    def has(self, name: str) -> bool:
        return name in self.index

    def flat(self, name: str) -> np.ndarray:
        """Flat view of a field (index = lattice site), or an empty array if disabled."""
        return self.arrays[name].reshape(-1) if name in self.index else self._empty

    def source_of(self, name: str) -> np.ndarray:
        return self.source[self.index[name]]

    # -------------------------------------------------------------- the step
    def build_sources(self, kind, suppressive_cytokine_factor: float = 1.0):
        """Uptake and source of every field from the current lattice and fields."""
        src = self.source_by_kind
        if "suppressive_cytokine" in self.index and suppressive_cytokine_factor != 1.0:
            src = src.copy()
            src[self.index["suppressive_cytokine"], lattice.SUPPRESSIVE] = \
                self._suppressive_source * suppressive_cytokine_factor
        micro.kind_sources(kind, self.uptake, self.source, self.uptake_by_kind, src,
                           self.line_length, self.flat("ifn_gamma"),
                           self.index.get("chemokine", -1), self.induced_rate,
                           self.pd_l1.ifn_half_saturation_ng_per_ml,
                           self.pd_l1.ifn_hill_coefficient)

    def solve(self):
        """Quasi-steady solve of every enabled field (the first call runs to tolerance)."""
        for f, name in enumerate(self.names):
            c = self.arrays[name]
            uptake = self.uptake[f].reshape(self.padded)
            source = self.source[f].reshape(self.padded)
            fixed = self.bc_value[f][self.bc_kind[f] == field_kernels.BC_FIXED_VALUE]
            if not np.any(fixed) and not self.source[f].any():
                c.fill(0.0)  # no source anywhere: the steady state is exactly zero
                continue
            relax(c, self.work, self.alpha[f], self.decay_dt[f], uptake, source,
                  self.bc_kind[f], self.bc_value[f], self.tolerance, self.max_cycles,
                  not self.solved, f"fields.{name}")
        self.solved = True


def necrosis_probability(hypoxia: Hypoxia, dt_hours: float) -> float:
    return float(per_step_probability(hypoxia.necrosis_rate_per_day, dt_hours))


def pdl1_keep_factor(decay_rate_per_hour: float, dt_hours: float) -> float:
    """exp(-k dt): the fraction of a PD-L1 deviation left after one step."""
    return math.exp(-decay_rate_per_hour * dt_hours)

