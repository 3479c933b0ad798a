"""``tumorsim inspect SCENARIO``: the resolved scenario and what the engine derives from it."""
from __future__ import annotations

from simulator import scenario as scenario_mod
from simulator.engine import tumor_rates


def derived_quantities(scenario) -> list[tuple[str, str]]:
    """(name, value) pairs of the per-step quantities the engine uses."""
    sim = scenario.simulation
    rates = tumor_rates(scenario)
    n_sites = 1
    for n in sim.dimensions:
        n_sites *= n
    rows = [
        ("steps", f"{sim.steps} of {sim.dt_hours:g} h"),
        ("lattice sites", f"{n_sites} ({len(sim.dimensions)}D, "
                          f"{' x '.join(f'{n * sim.spacing_um / 1000:g}' for n in sim.dimensions)} mm)"),
    ]
    for clone in range(len(rates.death_hazard)):
        rows.append((f"clone {clone:#0{2 + len(scenario.tumor.resistance_targets)}b} "
                     "death / division hazard per step",
                     f"{rates.death_hazard[clone]:.6g} / {rates.division_hazard[clone]:.6g}"))
    rows.append(("mutation probability per division", f"{rates.mutation_probability:.3g}"))
    rows.append(("debris clearance hazard per step", f"{rates.clear_dead_hazard:.6g}"))
    return rows


def describe_scenario(path, overrides=()) -> str:
    scenario = scenario_mod.load(path, overrides)
    name = path or f"{scenario_mod.DEFAULT_SCENARIO} (built-in)"
    lines = [f"# {name}", f"# sha256 {scenario.sha256}", scenario.to_toml().rstrip(), "",
             "# derived per-step quantities"]
    width = max(len(k) for k, _ in derived_quantities(scenario))
    lines += [f"#   {k:<{width}}  {v}" for k, v in derived_quantities(scenario)]
    return "\n".join(lines)
