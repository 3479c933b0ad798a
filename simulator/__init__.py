"""tumorsim: an agent-based tumour-immune lattice simulator.

The Python API mirrors the command line::

    from simulator import load_scenario, run_to_file
    scenario = load_scenario("scenarios/default.toml", ["simulation.seed=3"])
    result = run_to_file(scenario, "out.h5")
"""
from simulator.study.runner import run_to_file
from simulator.scenario import load as load_scenario

__all__ = ["load_scenario", "run_to_file"]
