"""Tissue: vessels, the four diffusing fields, and the tumour's response to oxygen.

Scenario sections ``[vessels]``, ``[fields.oxygen]``, ``[fields.chemokine]``,
``[fields.ifn_gamma]``, ``[fields.suppressive_cytokine]`` and ``[hypoxia]``, and the runtime
:class:`TissueFields` that solves the fields each step with ``kernels.multigrid``.

Fields are solved quasi-steadily: each field relaxes within minutes to an hour (1 / decay
and L^2 / D are <= ~1 h for every default), far shorter than a step (hours), so each step
takes the steady state of ``D lap c - (decay + uptake) c + source = 0`` for the lattice at
the start of the step, by multigrid V-cycles warm-started from the previous step's field
(``fields.max_cycles_per_step``, default one: it leaves the field nearer its steady state
than the pseudo-time ADI cycle that preceded it; see docs/model.md). Sources are built from
the lattice and the previous step's fields (the chemokine's IFN-gamma-induced secretion
reads IFN-gamma before it is solved), then every reader in the step sees the new fields
(double buffering, as HAL's ``PDEGrid``). At two threads the fields the tumour phase does
not read may be solved while it runs, from the lattice as it was at the start of the step
(``TissueFields.DEFERRABLE``, ``simulator.model.alongside``): the same fields. On 2D
lattices the fields solved together are also split into two lanes that run at once
(``TissueFields.LANES``): the same fields again.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numba
import numpy as np

from kernels import multigrid as field_kernels
from kernels import lattice
from kernels.rng import STREAM_VESSEL, fill_uniform, step_key, stream_key
from simulator.model.alongside import alongside, possible as alongside_possible
from simulator.model.rates import per_step_probability
from simulator.model.state import kernel_flavour
from simulator.schema import ScenarioError, param

FIELD_NAMES = ("oxygen", "chemokine", "ifn_gamma", "suppressive_cytokine")
COLD_START_CYCLES = 50    # a solve from scratch iterates to tolerance, at most this long
MAX_GRID_COARSENING = 8
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
                               "outside the initial tumour (and under it with "
                               "inside_initial_tumor; 0 = none)",
                           source="tumour microvessel density 50-200 /mm^2 in hot spots "
                                  "(Weidner 1991 NEJM 324:1); 0.01 = 25 /mm^2 at 20 um")
    positions: list[list[int]] = param([], unit="site",
                                       doc="explicit vessel coordinates [x, y(, z)] "
                                           "(0-based), added to the random ones")
    inside_initial_tumor: bool = param(False, doc="place the random vessels under the "
                                                  "initial tumour too (the tumour cells "
                                                  "drawn there become vessels): a lesion "
                                                  "vascularised from the start, so the "
                                                  "cells a treatment leaves there have "
                                                  "oxygen; false: the lesion starts "
                                                  "avascular",
                                       source="intratumoural microvessels, Weidner 1991 "
                                              "NEJM 324:1")

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
    grid_coarsening: int = param(1, low=1, high=MAX_GRID_COARSENING,
                                 doc="solve the field on a grid this many times coarser "
                                     "per axis (1, 2, 4 or 8; cells average the sites' "
                                     "uptake and sources) and interpolate it to the sites: "
                                     "4^k (2D) or 8^k (3D) times fewer unknowns at the cost "
                                     "of the errors measured in docs/model.md ('Fields on a "
                                     "coarser grid'); 1 = on the lattice itself")

    def check(self):
        for name in self.boundary:
            if name not in BOUNDARY_KINDS:
                raise ScenarioError(f"must be 'no_flux' or 'fixed_value', got {name!r}",
                                    "boundary")
        if self.grid_coarsening & (self.grid_coarsening - 1):
            raise ScenarioError(f"must be 1, 2, 4 or 8 (the multigrid coarsens by 2), got "
                                f"{self.grid_coarsening}", "grid_coarsening")

    @property
    def coarse_level(self) -> int:
        """The multigrid level the field is solved on (grid_coarsening = 2^level)."""
        return int(self.grid_coarsening).bit_length() - 1

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
    tolerance: float = param(1e-3, low=1e-6,
                             doc="quasi-steady solve: stop after the multigrid V-cycle whose "
                                 "coarse-grid correction is at most this fraction of the "
                                 "field's maximum (what is left is about a tenth of that; "
                                 "fields are float32, so below ~1e-6 the change is rounding)")
    max_cycles_per_step: int = param(1, low=1,
                                     doc="at most this many multigrid V-cycles per field per "
                                         "step, warm-started from the previous step (the "
                                         "first solve, at t = 0, iterates to the tolerance)",
                                     source="measured at 1000x1000 (docs/model.md): one "
                                            "V-cycle leaves each field 2.8-4x nearer its "
                                            "steady state than the pseudo-time ADI cycle it "
                                            "replaces")

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
    (stream STREAM_VESSEL, keyed by site; with ``inside_initial_tumor`` each such TUMOR site
    too, the same draws), plus the explicit positions (outside the initial tumour, checked
    by the scenario)."""
    geo = state.geometry
    if vessels.density > 0:
        key = np.uint64(step_key(np.uint64(stream_key(seed, replicate, STREAM_VESSEL)), 0))
        draws = fill_uniform(key, np.empty(geo.n_sites))
        open_sites = state.kind == lattice.EMPTY
        if vessels.inside_initial_tumor:
            open_sites |= state.kind == lattice.TUMOR
        vessel = (draws < vessels.density) & open_sites
        state.kind[vessel] = lattice.VESSEL
        if vessels.inside_initial_tumor:  # tumour cells became vessels
            state.clone[vessel] = 0
            state.refresh_extents()
    if vessels.positions:  # validated by the scenario (inside, not in the tumour)
        sites = geo.flat_index(np.array(vessels.positions, dtype=np.int64))
        state.kind[sites] = lattice.VESSEL


# ----------------------------------------------------------------------------- fields
class FieldSolver:
    """Multigrid workspace for the quasi-steady fields of one lattice
    (``kernels.multigrid``): the right-hand-side, reaction and correction buffers, shared by
    fields solved one after another. Per field: :meth:`levels` once per configuration,
    then each step :meth:`set_tables`, extra sources added to :attr:`source`, and
    :meth:`solve`."""

    def __init__(self, padded):
        self.padded = tuple(int(n) for n in padded)
        self.three = len(self.padded) == 3
        self.n_sites = int(np.prod(self.padded))
        n_levels, n_coarse = self.buffer_sizes(self.padded)
        self.rhs = np.zeros(n_levels, np.float32)
        self.reaction = np.zeros(n_levels, np.float32)
        self.correction = np.zeros(n_coarse, np.float32)

    @staticmethod
    def buffer_sizes(padded) -> tuple[int, int]:
        """(entries of the right-hand-side and reaction buffers: every level; entries of
        the correction buffer: the coarse levels) for a padded lattice shape."""
        bc = np.zeros(2 * len(padded))
        geo = field_kernels.hierarchy(np.array(padded, np.int64), 1.0, bc.astype(np.int64),
                                      bc)[0]
        return field_kernels.buffer_sizes(geo, len(padded) == 3)

    @staticmethod
    def nbytes(padded) -> int:
        """Bytes of a solver's buffers (float32) for a padded lattice shape."""
        n_levels, n_coarse = FieldSolver.buffer_sizes(padded)
        return 4 * (2 * int(n_levels) + int(n_coarse))

    def levels(self, alpha, bc_kind, bc_value, first=0):
        """The level tables of a field with diffusion number alpha and these faces, solved
        on level ``first`` (the scenario checks that the lattice has it)."""
        return field_kernels.hierarchy(np.array(self.padded, np.int64), float(alpha),
                                       bc_kind, bc_value, first)

    def coarse_array(self, levels, first) -> np.ndarray:
        """A zero field on level ``first`` (flat float32, padded), for a field solved there."""
        return np.zeros(field_kernels.level_size(levels[0], first, self.three), np.float32)

    @property
    def source(self) -> np.ndarray:
        """The fine level's source per site and step (flat, lattice indexing)."""
        return self.rhs[:self.n_sites]

    @property
    def kernels(self):
        """The kernel package of this lattice (``model.state.kernel_flavour``)."""
        return kernel_flavour(tuple(n - 2 for n in self.padded))

    def set_tables(self, kind, reaction_by_kind, source_by_kind, uniform=False):
        """Reaction (decay + uptake, per step) and source from per-kind tables; with
        ``uniform`` (a field solved with a reaction row,
        ``kernels.multigrid.uniform_reaction``) the source only."""
        self.kernels.multigrid.fine_tables(kind, reaction_by_kind, source_by_kind, self.rhs,
                                           self.reaction[:0] if uniform else self.reaction)

    def solve(self, c, levels, tolerance, max_cycles, cold, key, first=0, coarse=None,
              reaction_row=None):
        """Multigrid V-cycles on the padded float32 field ``c`` in place: until one's
        coarse-grid correction is at most ``tolerance`` of max |c|, at most ``max_cycles``
        warm-started or COLD_START_CYCLES from scratch (``cold``). Returns the cycles run.
        A solve from scratch that does not converge (only non-finite or float32-overflowing
        rates or levels can do that) raises a ScenarioError on ``key``.

        ``first`` > 0: the field lives on level ``first`` (``coarse``, from
        :meth:`coarse_array`, warm-started there): the sources and reactions are averaged
        onto it, the cycles run there, and ``c`` is its interpolation to the lattice.

        ``reaction_row``: the field's reaction is uniform, read from this row (levels and
        row from ``kernels.multigrid.uniform_reaction``; tables set with ``uniform``)."""
        geo, std, gm, gb, axf, axi = levels
        # the compiled entry points, looked up per call (an object holding a function
        # would not checkpoint)
        k = self.kernels
        if self.three:
            restrict, solve = k.multigrid.restrict_levels_3d, k.multigrid.solve_3d
        else:
            restrict, solve = k.multigrid.restrict_levels_2d, k.multigrid.solve_2d
        if first > 0:
            restrict(self.rhs, geo, std, axf, 0, first)
        if reaction_row is None:
            restrict(self.reaction, geo, std, axf, 0, geo.shape[0] - 1)
        stats = np.zeros(2)
        solve(c.reshape(-1) if first == 0 else coarse, self.rhs,
              self.reaction if reaction_row is None else reaction_row,
              self.correction, *levels, tolerance,
              COLD_START_CYCLES if cold else max_cycles, numba.get_num_threads(), stats,
              first)
        if first > 0:
            prolong = (k.multigrid.prolong_solution_3d if self.three
                       else k.multigrid.prolong_solution_2d)
            prolong(c.reshape(-1), coarse, geo, gm, gb, axf, axi, first)
        if cold and not stats[1] <= tolerance:
            raise ScenarioError(
                f"the quasi-steady field solve did not converge in {COLD_START_CYCLES} "
                f"multigrid cycles (relative change {stats[1]:.2g}): rates and levels must be "
                "finite and, times simulation.dt_hours, below ~1e30 (fields are float32)", key)
        return int(stats[0])


def fields_enabled(scenario) -> bool:
    return bool(scenario.fields.enabled_names())


def reaction_by_kind(settings, dt_min: float) -> np.ndarray:
    """A field's reaction per step by cell kind: decay plus the kind's uptake (float32)."""
    up = np.zeros(len(lattice.KIND_NAMES))
    up[lattice.TUMOR] = settings.tumor_uptake_per_min * dt_min
    up[lattice.T_CELL] = up[lattice.SUPPRESSIVE] = settings.immune_uptake_per_min * dt_min
    up[lattice.VESSEL] = settings.vessel_exchange_per_min * dt_min
    return (settings.decay_per_min * dt_min + up).astype(np.float32)


def _reads_hill_powers(scenario) -> bool:
    """Whether the induced chemokine secretion can read the tumour response's Hill powers:
    it is on, and the chemokine's reaction is the same for every kind (else its tables
    rewrite the source buffer first)."""
    names = scenario.fields.enabled_names()
    if not ("chemokine" in names and "ifn_gamma" in names):
        return False
    chem = scenario.fields.chemokine
    k = reaction_by_kind(chem, scenario.simulation.dt_hours * 60.0)
    return chem.tumor_ifn_secretion_per_min > 0 and bool(np.all(k == k[0]))


def reuses_hill_powers(scenario) -> bool:
    """Whether the tumour response hands its IFN-gamma Hill powers to the next step's
    induced chemokine secretion (:meth:`TissueFields.hill_powers_buffer`; the tumour
    response runs with the immune compartment)."""
    return TissueFields.REUSE_HILL_POWERS and _reads_hill_powers(scenario)


class TissueFields:
    """The enabled fields of one run: concentrations (padded float32; flat views share the
    lattice's indexing), their per-kind reaction and source tables, and the solve.

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
        self.solver = FieldSolver(geo.padded)
        self.arrays = {name: np.zeros(geo.padded, np.float32) for name in self.names}
        # fields solved on a coarser grid: their values there (warm start of the next solve)
        self.coarse = {}
        self._empty = np.empty(0, np.float32)
        self.configure(scenario)
        self.solved = False

    def configure(self, scenario):
        """Per-step numbers from the scenario (called again when a fork changes it)."""
        sim, settings = scenario.simulation, scenario.fields
        dt_min = sim.dt_hours * 60.0
        dx2 = sim.spacing_um ** 2
        n = len(self.names)
        self.tolerance = settings.tolerance
        self.max_cycles = settings.max_cycles_per_step
        self.levels = []
        self.reaction_rows = []   # per field: its uniform reaction's row, or None
        self.first = []
        self.reaction_by_kind = np.zeros((n, len(lattice.KIND_NAMES)), np.float32)
        self.source_by_kind = np.zeros((n, len(lattice.KIND_NAMES)))
        self.fixed_nonzero = np.zeros(n, bool)
        for f, name in enumerate(self.names):
            s = settings.settings(name)
            kinds, values = s.faces(sim.ndim)
            self.first.append(s.coarse_level)
            self.levels.append(self.solver.levels(s.diffusion_um2_per_min * dt_min / dx2,
                                                  kinds, values, s.coarse_level))
            if s.coarse_level and self.coarse.get(name, np.empty(0)).size != \
                    field_kernels.level_size(self.levels[f][0], s.coarse_level,
                                             self.solver.three):
                self.coarse[name] = self.solver.coarse_array(self.levels[f], s.coarse_level)
                self.solved = False  # a new coarse grid starts from scratch
            self.fixed_nonzero[f] = np.any(values[kinds == field_kernels.BC_FIXED_VALUE])
            src = self.source_by_kind[f]
            self.reaction_by_kind[f] = reaction_by_kind(s, dt_min)
            # a reaction the same for every kind (decay only): one row serves every site
            # and level, with the same numbers (kernels.multigrid.uniform_reaction)
            row = None
            if np.all(self.reaction_by_kind[f] == self.reaction_by_kind[f, 0]):
                self.levels[f], row = field_kernels.uniform_reaction(
                    self.levels[f], self.reaction_by_kind[f, 0])
            self.reaction_rows.append(row)
            src[lattice.VESSEL] = s.vessel_exchange_per_min * s.vessel_level * dt_min
            if name == "chemokine":
                src[lattice.TUMOR] = s.tumor_secretion_per_min * dt_min
                src[lattice.DEAD] = s.dead_cell_secretion_per_min * dt_min
            elif name == "suppressive_cytokine":
                src[lattice.TUMOR] = s.tumor_secretion_per_min * dt_min
                src[lattice.SUPPRESSIVE] = s.suppressive_cell_secretion_per_min * dt_min
        chem = settings.chemokine
        self.induced_rate = chem.tumor_ifn_secretion_per_min * dt_min
        self.pd_l1 = scenario.pd_l1
        self.t_cell_ifn_source = settings.ifn_gamma.t_cell_secretion_per_min * dt_min
        # the chemokine first: its induced secretion reads IFN-gamma before this step's
        # solve, and the Hill powers before another field's tables overwrite them
        self.solve_order = sorted(range(n), key=lambda f: self.names[f] != "chemokine")
        self.reads_hill_powers = _reads_hill_powers(scenario)
        # the step whose tumour response left Hill powers in the source buffer
        # (:meth:`hill_powers_buffer`); none after a change of scenario
        self.hill_powers_left = None

    # -------------------------------------------------------------- access
    def has(self, name: str) -> bool:
        return name in self.index

    def flat(self, name: str) -> np.ndarray:
        """Flat view of a field (index = lattice site), or an empty array if disabled."""
        return self.arrays[name].reshape(-1) if name in self.index else self._empty

    # -------------------------------------------------------------- Hill powers
    # The chemokine's IFN-gamma-induced secretion takes, at each tumour cell, the Hill
    # function of the IFN-gamma the last step solved; the tumour response of that step
    # took the same function of the same field at the same cells (no tumour cell appears
    # between the two, and T cells and necrosis only remove some). So the tumour response
    # leaves each power in the solver's source buffer, which nothing uses between two
    # fields phases, and the next solve reads them there, the chemokine's first, before
    # another field's tables overwrite them: the same numbers as computing them again
    # (tests/test_fields.py), one power per tumour cell a step instead of two (~2 ms of a
    # 1000x1000 step at 1 thread, benchmarks/README.md). False: always compute them.
    REUSE_HILL_POWERS = True

    def hill_powers_buffer(self) -> np.ndarray:
        """Where the tumour response should leave each tumour cell's IFN-gamma Hill power
        (``kernels.microenvironment.hill_power``): the fine level of the solver's source,
        or an empty array when the next solve would not read them (``_reads_hill_powers``).
        """
        if self.REUSE_HILL_POWERS and self.reads_hill_powers:
            return self.solver.source
        return self._empty

    def hill_powers_left_at(self, step: int):
        """The tumour response of ``step`` left its powers in :meth:`hill_powers_buffer`
        (with this scenario's Hill function: :meth:`configure` forgets them)."""
        self.hill_powers_left = int(step)

    # -------------------------------------------------------------- the step
    # fields the tumour phase does not read: at 2+ threads they may be solved on a helper
    # thread while it runs (the engine's ``_tumor_phase``, ``simulator.model.alongside``); the
    # chemokine is not one of them, since its sources read the IFN-gamma of the last step
    # and the Hill powers in the source buffer, which the others' tables overwrite
    DEFERRABLE = ("ifn_gamma", "suppressive_cytokine")
    # what solve() left for solve_deferred(), within one step, and when the step's fields
    # phase began (not checkpointed)
    _deferred = None
    _ifn_gamma_solved = None  # set once solve_deferred has solved IFN-gamma (a threading.Event)
    solve_started = None

    # At 2+ threads on a 2D lattice, the fields one call solves go in two lanes that run at
    # once, the caller's and the helper thread's (simulator.model.alongside), each solve
    # with one Numba thread: two solves side by side take less than one after the other at
    # two threads (the 1000x1000 benchmark state: oxygen and chemokine 4.24 against 4.63 ms,
    # IFN-gamma and the suppressive cytokine 3.65 against 4.35), the more so on small
    # lattices, whose solves scale worse (the default scenario's step 2.12 -> 1.81 ms;
    # benchmarks/README.md). The second lane has a workspace of its own
    # (~12 B per site; not in 3D, whose bytes per site are budgeted). The chemokine and
    # IFN-gamma share the first lane, the solver's own: the chemokine's set-up reads
    # IFN-gamma as the last step left it, and the Hill powers the tumour response left in
    # that workspace (hill_powers_buffer). None: as the caller asks (solve's ``lanes``; the
    # engine times both ways on large lattices, Engine._field_ways: on a host whose
    # last-level cache holds less than the step's arrays, 32 MB against the 1000x1000
    # step's 53, the second workspace made that step ~1.8 ms slower at 2 threads);
    # True: whenever possible (2D, 2+ threads); False: never (the benchmarks' "one
    # lane"). The fields are the same either way.
    LANES = None
    _second_workspace = None  # the second lane's FieldSolver (made when needed; not saved)

    def solve(self, state, suppressive_cytokine_factor: float = 1.0, add_ifn_secretions=None,
              defer: bool = False, lanes: bool = True):
        """Quasi-steady solve of every enabled field for the lattice ``state`` (the first
        call iterates to the tolerance). Sources: the per-kind tables (the suppressive
        cells' secretion times ``suppressive_cytokine_factor``), the chemokine's
        IFN-gamma-induced secretion at tumour sites (from IFN-gamma before this step's
        solve: the chemokine is solved first; from the powers the last step's tumour
        response left, when it left them), and for IFN-gamma whatever
        ``add_ifn_secretions(source)`` adds (engaged T cells; it returns whether a site it
        added to holds a nonzero source).

        ``defer`` (not on the first solve): the DEFERRABLE fields are left for
        :meth:`solve_deferred`, the first with its tables set up now, the others with a
        copy of the lattice's kinds as they are now, so they come out the same whatever
        the tumour phase changes in between (:attr:`deferred`: whether some were left).

        ``lanes``: the fields solved together may go in two lanes (:attr:`LANES`, when
        None, decides; the fields are the same either way)."""
        self.solve_started = time.perf_counter()
        kind = state.kind
        reuse = self.hill_powers_left == state.step - 1
        self.hill_powers_left = None  # the source buffer is rewritten below
        args = (state, suppressive_cytokine_factor, add_ifn_secretions, reuse)
        now = [f for f in self.solve_order
               if not (defer and self.solved and self.names[f] in self.DEFERRABLE)]
        later = [f for f in self.solve_order if f not in now]
        self._deferred = None
        lanes = self._lanes(now, lanes)
        # the first field left for the tumour phase is set up now, in the solver's
        # workspace (on every thread, or in the first lane, whose chemokine takes less
        # than the second lane's oxygen); the helper then has less to do beside the
        # tumour phase (benchmarks/README.md)
        if lanes is None:
            self._solve_lane(now, kind, args, self.solver)
            if later:
                self._defer(later, kind, args, self.solver)
        else:
            first, second = lanes
            helper = self._second_workspace
            with alongside(lambda: self._solve_lane(second, kind, args, helper)):
                self._solve_lane(first, kind, args, self.solver)
                if later:
                    self._defer(later, kind, args, helper)
        self.solved = True

    def _defer(self, fields, kind, args, rest_workspace):
        """Leave ``fields`` for :meth:`solve_deferred`: the first set up now in the solver's
        workspace, the others to be set up in ``rest_workspace`` from a copy of the kinds as
        they are now."""
        self._deferred = (fields, self._set_up(fields[0], kind, *args),
                          kind.copy() if len(fields) > 1 else None, args, rest_workspace)
        self._ifn_gamma_solved = threading.Event()
        if self.names[fields[0]] != "ifn_gamma":
            self._ifn_gamma_solved.set()

    def lanes_possible(self) -> bool:
        """Whether a solve could use two lanes now: 2D, at 2+ threads."""
        return not self.solver.three and alongside_possible()

    def _second_lane(self, lanes: bool):
        """The second lane's workspace when this call may use two lanes (:attr:`LANES`;
        when None, ``lanes``), made the first time; None otherwise."""
        wanted = lanes if self.LANES is None else self.LANES
        if not wanted or not self.lanes_possible():
            return None
        if self._second_workspace is None:
            self._second_workspace = FieldSolver(self.padded)
        return self._second_workspace

    def _lanes(self, fields, lanes: bool):
        """The two lanes for solving ``fields`` (in solve order), or None when they should
        be solved one after another (``lanes``: see :meth:`solve`)."""
        if len(fields) < 2:
            return None
        first = [f for f in fields if self.names[f] in ("chemokine", "ifn_gamma")] \
            or fields[:1]
        second = []
        for f in fields:
            if f not in first:
                (second if len(second) < len(first) else first).append(f)
        if not second or self._second_lane(lanes) is None:
            return None
        return first, second

    def _solve_lane(self, fields, kind, args, workspace):
        for f in fields:
            self._solve_set_up(f, self._set_up(f, kind, *args, workspace=workspace),
                               workspace)

    @property
    def deferred(self) -> bool:
        """Whether :meth:`solve` left fields for :meth:`solve_deferred`."""
        return self._deferred is not None

    @property
    def response_may_overlap(self) -> bool:
        """Whether the tumour response may run while :meth:`solve_deferred` is still at
        work, once :meth:`wait_for_ifn_gamma` returns: the fields it solves after the first
        (IFN-gamma) go in the second lane's workspace, so the Hill powers the response
        leaves in the solver's (:meth:`hill_powers_buffer`) overwrite nothing they use."""
        return self._deferred is not None and self._deferred[4] is not self.solver

    def wait_for_ifn_gamma(self):
        """Until :meth:`solve_deferred` has solved IFN-gamma (at once when it was not left
        for it), or failed."""
        self._ifn_gamma_solved.wait()

    def solve_deferred(self):
        """Solve the fields :meth:`solve` left (none: nothing to do): the first in the
        solver's workspace, where it is set up, the others in the one :meth:`_defer` named."""
        if self._deferred is None:
            return
        (first, *rest), sourceless, kind, args, workspace = self._deferred
        self._deferred = None
        try:
            self._solve_set_up(first, sourceless)
        finally:
            self._ifn_gamma_solved.set()
        self._solve_lane(rest, kind, args, workspace)

    def _set_up(self, f, kind, state, suppressive_cytokine_factor, add_ifn_secretions, reuse,
                workspace=None):
        """Tables and extra sources of field ``f`` for the kinds ``kind``, in the buffers of
        ``workspace`` (None: the solver's); returns whether the field has no source
        anywhere."""
        workspace = workspace or self.solver
        source = workspace.source
        p = self.pd_l1
        name = self.names[f]
        src = self.source_by_kind[f].copy()
        if name == "suppressive_cytokine":
            src[lattice.SUPPRESSIVE] *= suppressive_cytokine_factor
        row = self.reaction_rows[f]
        induced = name == "chemokine" and self.induced_rate > 0 and self.has("ifn_gamma")
        if induced and reuse:
            micro = state.geometry.kernels.microenvironment
            micro.induced_secretion_from_powers(kind, state.lo, state.hi,
                                                self.line_length, src.astype(np.float32),
                                                self.induced_rate, source)
        else:
            workspace.set_tables(kind, self.reaction_by_kind[f], src.astype(np.float32),
                                 uniform=row is not None)
            if induced:
                micro = state.geometry.kernels.microenvironment
                micro.induced_secretion(kind, self.flat("ifn_gamma"), state.lo,
                                        state.hi, self.line_length, self.induced_rate,
                                        p.ifn_half_saturation_ng_per_ml,
                                        p.ifn_hill_coefficient, source)
        # no source anywhere (the tables', then each added one's, asked only while
        # none is known: a serial scan of the whole source cost 0.2-0.4 ms of a
        # 1000x1000 step, benchmarks/README.md)
        sourceless = not self.fixed_nonzero[f] and not src.any()
        if induced:
            sourceless = sourceless and not source.any()
        if name == "ifn_gamma" and add_ifn_secretions is not None:
            sourceless = not add_ifn_secretions(source) and sourceless
        return sourceless

    def _solve_set_up(self, f, sourceless, workspace=None):
        """Solve field ``f`` from the tables :meth:`_set_up` left in the buffers of
        ``workspace`` (None: the solver's)."""
        name = self.names[f]
        c = self.arrays[name]
        if sourceless:
            c.fill(0.0)  # no source anywhere: the steady state is exactly zero
            if name in self.coarse:
                self.coarse[name].fill(0.0)
            return
        (workspace or self.solver).solve(c, self.levels[f], self.tolerance, self.max_cycles,
                                         not self.solved, f"fields.{name}", self.first[f],
                                         self.coarse.get(name), self.reaction_rows[f])


def necrosis_probability(hypoxia: Hypoxia, dt_hours: float) -> float:
    return float(per_step_probability(hypoxia.necrosis_rate_per_day, dt_hours))


def pdl1_keep_factor(decay_rate_per_hour: float, dt_hours: float) -> float:
    """exp(-k dt): the fraction of a PD-L1 deviation left after one step."""
    return math.exp(-decay_rate_per_hour * dt_hours)

