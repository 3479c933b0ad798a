"""The :class:`Scenario`: every process's section, assembled and cross-checked.

Each process declares its own section beside its code (the tumour in ``model.tumor``, the
T cells in ``model.immune``, drugs in ``treatment.drugs`` ...); this module only puts them
together, checks the rules that span sections, and gives the resolved text and its hash.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from simulator import schema
from simulator.analysis.criteria import EndpointSettings
from simulator.model.immune import PdL1, SuppressiveCells, TCells, check_scenario as check_immune
from simulator.model.penetration import FIELD_PREFIX as PENETRATION_FIELD_PREFIX
from simulator.model.penetration import penetrating
from simulator.model.tissue import FIELD_NAMES, Fields, Hypoxia, Vessels
from simulator.model.tumor import Initial, Tumor
from simulator.scenario import bounds
from simulator.scenario.cohort import CohortParameter, check_keys as check_cohort_keys
from simulator.scenario.sections import Output, Simulation
from simulator.scenario.toml_writer import dumps_toml
from simulator.schema import ScenarioError, param
from simulator.treatment.drugs import Drug, check_drugs
from simulator.treatment.regimen import RegimenSettings


@dataclass(frozen=True)
class Scenario:
    description: str = param("", doc="one line saying what this scenario asks")
    simulation: Simulation = param(Simulation())
    initial: Initial = param(Initial())
    tumor: Tumor = param(Tumor())
    drugs: dict[str, Drug] = param({})
    regimen: RegimenSettings = param(RegimenSettings())
    endpoints: EndpointSettings = param(EndpointSettings())
    output: Output = param(Output())
    vessels: Vessels = param(Vessels())
    fields: Fields = param(Fields())
    hypoxia: Hypoxia = param(Hypoxia())
    pd_l1: PdL1 = param(PdL1())
    t_cells: TCells = param(TCells())
    suppressive: SuppressiveCells = param(SuppressiveCells())
    cohort: list[CohortParameter] = param([])

    def check(self):
        sim = self.simulation
        check_drugs(self.drugs, self.tumor.resistance_targets, sim.duration_days,
                    sim.treatment_start_day)
        drug_fields = {PENETRATION_FIELD_PREFIX + n for n in penetrating(self.drugs)}
        known_fields = set(FIELD_NAMES) | drug_fields
        for name in self.output.snapshot_fields:
            if name not in known_fields:
                raise ScenarioError(f"unknown field {name!r}; known: "
                                    f"{', '.join(sorted(known_fields))}",
                                    "output.snapshot_fields")
            if name not in drug_fields and not self.fields.settings(name).enabled:
                raise ScenarioError(f"field {name!r} is disabled (fields.{name}.enabled)",
                                    "output.snapshot_fields")
        if drug_fields and not (self.vessels.density > 0 or self.vessels.positions):
            name = penetrating(self.drugs)[0]
            raise ScenarioError("a drug that penetrates from vessels needs vessels "
                                "(vessels.density > 0 or vessels.positions)",
                                f"drugs.{name}.penetration")
        check_immune(self)
        bounds.check_scenario(self)
        check_cohort_keys(self)

    def to_toml(self) -> str:
        """The resolved scenario as TOML text (stored in every output file)."""
        return dumps_toml(schema.to_table(self))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_toml().encode()).hexdigest()
