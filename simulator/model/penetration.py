"""Spatial drug penetration: a targeted drug's tissue concentration as a field fed at vessels.

Off by default: a drug acts everywhere at its plasma concentration. Giving a targeted drug a
``penetration`` table makes its ``kill`` and ``arrest`` channels act at each tumour cell's own
tissue concentration C(x), the quasi-steady solution of (same solver and conventions as the
other tissue fields, :mod:`simulator.model.tissue`, no-flux domain faces)::

    D lap C - (decay + uptake(x)) C + k_v (C_plasma - C) [x a vessel site] = 0

with uptake(x) = ``tumor_uptake_per_min`` at tumour sites (binding, metabolism and
sequestration by the cells the drug passes, the main limit on penetration: Minchinton &
Tannock 2006 Nat Rev Cancer 6:583) and C_plasma the drug's step-average plasma
concentration. Far from vessels C(x) falls off over the penetration length
sqrt(D / (decay + uptake)), so poorly perfused tumour regions get less drug — the sanctuary
effect. The field is in mg/L, so the channels' EC50 applies to it directly.

The other channels of the drug (antigenicity, infiltration, microenvironment, T-cell
toxicity) still act at the plasma concentration: they act on the whole tumour through T-cell
recruitment at vessels, the cytokine field and the clone-wide antigenicity, which the model
keeps spatially uniform.

Phase: ``drug_penetration``, after ``fields`` (or after ``doses`` without the immune model)
and before ``tumor``: uptake and the vessel source are built from the lattice as the previous
step left it and this step's mean plasma level, the field is solved (multigrid V-cycles,
warm-started from the previous step's field scaled by the change of the plasma level: the
steady state is proportional to it on a fixed lattice), then
:func:`kernels.drug_response.local_hazards` gives every tumour cell its death and division
hazards at its own site, inside the tumour kernel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import multigrid as field_kernels
from kernels import lattice
from simulator.schema import param
from simulator.model.tissue import FieldSolver

TOLERANCE = 1e-4          # quasi-steady solve: coarse-grid correction / max of the field
FIELD_PREFIX = "drug_"    # the field of drug X is called "drug_X" (output.snapshot_fields)


@dataclass(frozen=True)
class Penetration:
    """``[drugs.<name>.penetration]``: how a targeted drug spreads from vessels into tissue."""
    diffusion_um2_per_min: float = param(
        6000.0, unit="um^2/min", low=0.0, low_open=True,
        doc="diffusion coefficient of the drug in tumour tissue",
        source="small molecules in tumour tissue ~1e-6 cm^2/s = 6000 um^2/min (Minchinton "
               "& Tannock 2006 Nat Rev Cancer 6:583); antibodies ~10x slower (Thurber 2008 "
               "Adv Drug Deliv Rev 60:1421)")
    tumor_uptake_per_min: float = param(
        0.02, unit="1/min", low=0.0,
        doc="uptake (binding, metabolism, sequestration) at each tumour cell's site",
        source="illustrative: with the default diffusion and decay the penetration length "
               "sqrt(D / (decay + uptake)) is ~450 um, so a tumour region that far from "
               "vessels gets markedly less drug (Minchinton & Tannock 2006: many agents reach "
               "only 40-150 um; raise the uptake to model such an agent)")
    decay_per_min: float = param(
        0.01, unit="1/min", low=0.0, low_open=True,
        doc="first-order loss everywhere (clearance back to blood and lymph)",
        source="illustrative: ~1.5 h residence in tissue outside tumour cells")
    vessel_exchange_per_min: float = param(
        1.0, unit="1/min", low=0.0, low_open=True,
        doc="exchange rate between a vessel site and plasma (uptake k, source k * C_plasma): "
            "the vessel wall's permeability-surface product per site volume",
        source="order of magnitude: P S / V with a small-molecule vessel-wall permeability "
               "P ~ 1e-5 cm/s and S / V = 4 / (20 um) for a vessel site gives ~1.2/min "
               "(check P for the agent modelled)")

    max_cycles_per_step: int = param(
        1, low=1,
        doc="at most this many multigrid V-cycles per step (warm-started; stops early once "
            "a cycle's coarse-grid correction is below 1e-4 of the field's maximum)",
        source="measured on targeted_continuous_penetration, seed 1, to day 182: one "
               "cycle leaves the field at most 3.7e-4 of its maximum off its converged "
               "steady state (docs/model.md)")

    def check(self):
        pass


def penetrating(drugs) -> list[str]:
    """Names of the drugs with spatial penetration, in scenario order."""
    return [name for name, drug in drugs.items() if drug.penetration is not None]


class DrugPenetration:
    """The tissue fields of a run's penetrating drugs.

    ``concentration[d]`` is drug d's field as a flat array indexed by lattice site (the
    padded lattice's indexing, ghosts included); with ``target_bit``, ``kill``, ``arrest``
    and ``dt_days`` it is what the tumour kernel needs to evaluate each cell's local
    hazards (:func:`kernels.drug_response.local_hazards`).
    """

    def __init__(self, scenario, state):
        sim = scenario.simulation
        geo = state.geometry
        self.names = penetrating(scenario.drugs)
        self.drug_index = [list(scenario.drugs).index(name) for name in self.names]
        self.padded = geo.padded
        self.line_length = geo.line_length
        self.dt_days = sim.dt_hours / 24.0
        dt_min = sim.dt_hours * 60.0
        targets = list(scenario.tumor.resistance_targets)
        n = len(self.names)
        self.alpha = np.empty(n)
        self.decay_dt = np.empty(n)
        self.exchange_dt = np.empty(n)
        self.max_cycles = [scenario.drugs[name].penetration.max_cycles_per_step
                           for name in self.names]
        self.uptake_by_kind = np.zeros((n, len(lattice.KIND_NAMES)))
        self.target_bit = np.empty(n, np.int64)
        self.kill = np.zeros((n, 3))
        self.arrest = np.zeros((n, 3))
        for d, name in enumerate(self.names):
            drug = scenario.drugs[name]
            p = drug.penetration
            self.alpha[d] = p.diffusion_um2_per_min * dt_min / sim.spacing_um ** 2
            self.decay_dt[d] = p.decay_per_min * dt_min
            self.exchange_dt[d] = p.vessel_exchange_per_min * dt_min
            self.uptake_by_kind[d, lattice.TUMOR] = p.tumor_uptake_per_min * dt_min
            self.uptake_by_kind[d, lattice.VESSEL] = self.exchange_dt[d]
            self.target_bit[d] = targets.index(drug.target)
            for channel, table in (("kill", self.kill), ("arrest", self.arrest)):
                effect = getattr(drug, channel)
                if effect is not None and effect.is_on:
                    table[d] = (effect.emax, effect.ec50_mg_per_l, effect.hill)
        self.bc_kind = np.full(2 * sim.ndim, field_kernels.BC_NO_FLUX, np.int64)
        self.bc_value = np.zeros(2 * sim.ndim)
        self.solver = FieldSolver(geo.padded)
        self.levels = [self.solver.levels(a, self.bc_kind, self.bc_value) for a in self.alpha]
        self.reaction_by_kind = (self.decay_dt[:, None] + self.uptake_by_kind).astype(np.float32)
        self.concentration = np.zeros((n, geo.n_sites), np.float32)
        self._level = np.zeros(n)   # the plasma level each field was last solved for
        self._cold = np.ones(n, bool)

    @property
    def active(self) -> bool:
        """True when some penetrating drug is in the tissue this step."""
        return not self._cold.all()

    def field(self, name: str) -> np.ndarray:
        """Flat view of drug ``name``'s tissue concentration (KeyError if it has none)."""
        return self.concentration[self.names.index(name)]

    def solve(self, kind, plasma_mean):
        """Quasi-steady tissue concentration of every penetrating drug, for this step's mean
        plasma concentrations (``plasma_mean``: one per scenario drug, mg/L)."""
        source = np.zeros(len(lattice.KIND_NAMES), np.float32)
        for d, drug in enumerate(self.drug_index):
            c = self.concentration[d].reshape(self.padded)
            level = float(plasma_mean[drug]) if plasma_mean is not None else 0.0
            if level <= 0.0:
                c.fill(0.0)  # no drug in plasma: the steady state is exactly zero
                self._cold[d] = True
                continue
            if not self._cold[d] and level != self._level[d]:
                c *= np.float32(level / self._level[d])  # exact if the lattice had not changed
            source[lattice.VESSEL] = self.exchange_dt[d] * level
            self.solver.set_tables(kind, self.reaction_by_kind[d], source)
            self.solver.solve(c, self.levels[d], TOLERANCE, self.max_cycles[d], self._cold[d],
                              f"drugs.{self.names[d]}.penetration")
            self._level[d] = level
            self._cold[d] = False

    def tumor_means(self, kind) -> dict[str, float]:
        """Mean tissue concentration over the tumour cells, per penetrating drug (mg/L)."""
        tumour = kind == lattice.TUMOR
        n = int(tumour.sum())
        return {name: float(self.concentration[d][tumour].sum() / n) if n else 0.0
                for d, name in enumerate(self.names)}
