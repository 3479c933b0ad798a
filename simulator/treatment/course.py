"""Treatment during a run: regimen (when) + pharmacokinetics + effect channels (what).

The engine's ``doses`` phase calls :meth:`Treatment.step` once per step, first thing: the
regimen decides the doses due at the start of the step (rules look at the tumour as the
previous step left it), the pharmacokinetics advance over the step, and the effects are the
Hill functions of each drug's mean concentration over the step. The kill and arrest channels
of a drug with spatial penetration are left out here: they act per site, at the drug's tissue
concentration (:mod:`simulator.model.penetration`).
"""
from __future__ import annotations

import numpy as np

from simulator.treatment.effects import EffectModel, Effects
from simulator.model.penetration import penetrating
from simulator.treatment.pharmacokinetics import Pharmacokinetics
from simulator.treatment.regimen import Observation, Regimen


class Treatment:
    def __init__(self, scenario):
        sim = scenario.simulation
        self.drug_names = list(scenario.drugs)
        targets = scenario.tumor.resistance_targets
        self.none = Effects.none(len(targets))
        self.effects = self.none
        self._last_concentration = None
        self.mean_concentration = None   # step-average plasma level of each drug (mg/L)
        if not self.drug_names:
            self.regimen = self.pk = self.model = None
            return
        criteria = scenario.endpoints
        self.regimen = Regimen(scenario.drugs, sim.dt_hours, sim.steps, sim.treatment_start_day,
                               sim.ndim, scan_interval_days=scenario.regimen.scan_interval_days,
                               first_scan_days=scenario.regimen.first_scan_days,
                               progression_min_mm=criteria.progression_min_mm,
                               mm_per_site=criteria.criteria(sim.ndim,
                                                             sim.spacing_um).mm_per_site,
                               progression_rise=criteria.progression_rise,
                               partial_response_drop=criteria.partial_response_drop,
                               residual_half_life_days=criteria.residual_half_life_days,
                               detection_limit_fraction=criteria.detection_limit_fraction)
        self.pk = Pharmacokinetics(scenario.drugs, sim.dt_hours)
        self.model = EffectModel(scenario.drugs, targets, local=penetrating(scenario.drugs))

    @property
    def active(self) -> bool:
        return self.regimen is not None

    def step(self, step: int, tumor_cells: int, resistant_cells: int) -> bool:
        """Advance one step; True when the effects changed (callers then recompute what
        they derive from them — most steps of an untreated or washed-out arm change
        nothing, and a regimen of three drugs costs a few per cent of a small step)."""
        if self.regimen is None:
            return False
        doses = self.regimen.doses_for_step(step, Observation(tumor_cells, resistant_cells))
        mean_concentration = self.pk.step(doses)
        self.mean_concentration = mean_concentration
        if self._last_concentration is not None and np.array_equal(mean_concentration,
                                                                   self._last_concentration):
            return False
        self._last_concentration = np.array(mean_concentration, copy=True)
        self.effects = self.model.at(mean_concentration)
        return True

    def concentrations(self) -> dict[str, float]:
        return self.pk.concentrations() if self.pk is not None else {}

    @property
    def dose_log(self) -> list:
        return list(self.regimen.dose_log) if self.regimen is not None else []
