"""Scenarios: files, ``base`` inheritance, ``--set`` overrides and cohort draws, assembled
into one validated :class:`Scenario` from the sections each process declares."""
from simulator.scenario.assemble import Scenario
from simulator.scenario.files import (DEFAULT_SCENARIO, from_toml, library_dir, load,
                                      replace)
from simulator.scenario.overrides import apply_overrides, merge, parse_override
from simulator.scenario.toml_writer import dumps_toml
from simulator.schema import ScenarioError

__all__ = ["DEFAULT_SCENARIO", "Scenario", "ScenarioError", "apply_overrides", "dumps_toml",
           "from_toml", "library_dir", "load", "merge", "parse_override", "replace"]
