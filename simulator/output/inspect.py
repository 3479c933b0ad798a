"""``tumorsim inspect SCENARIO``: the resolved scenario and what the engine derives from it,
including the memory a run needs; and the layout check of a run file before it is read."""
from __future__ import annotations

from simulator import scenario as scenario_mod
from simulator.engine import tumor_rates
from simulator.model.memory import (PROCESS_BASE_BYTES, available_bytes, estimate_bytes,
                                    format_bytes)
from simulator.output.runfile import OutputError, open_run

# What `inspect` and `plot` read from every run file (the DESIGN.md contract).
RUN_ATTRIBUTES = ("software_version", "seed", "replicate", "arm", "scenario_sha256", "created",
                  "status", "steps_completed", "dimensions", "dt_hours")
RUN_DATASETS = ("provenance/scenario_toml", "timeseries/time_days", "timeseries/tumor_cells",
                "timeseries/tumor_resistant", "timeseries/t_cells",
                "timeseries/suppressive_cells", "timeseries/divisions_total",
                "timeseries/resistance_mutations_total", "snapshots/time_days",
                "snapshots/cell_type")


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
    for clone in range(len(rates.p_die)):
        rows.append((f"clone {clone:#0{2 + len(scenario.tumor.resistance_targets)}b} "
                     "p_die / p_divide per step",
                     f"{rates.p_die[clone]:.6g} / {rates.p_divide[clone]:.6g}"))
    rows.append(("mutation probability per division", f"{rates.mutation_probability:.3g}"))
    rows.append(("debris clearance probability per step", f"{rates.p_clear_dead:.6g}"))
    return rows + memory_rows(scenario)


def memory_rows(scenario) -> list[tuple[str, str]]:
    """The memory estimate of one run (``model.memory``), by part, and what is free."""
    parts = estimate_bytes(scenario)
    total = sum(parts.values())
    have = available_bytes()
    rows = [("memory estimate of one run",
             f"{format_bytes(total)} + {format_bytes(PROCESS_BASE_BYTES)} for the process "
             f"({format_bytes(have) if have is not None else 'unknown'} available)")]
    rows += [(f"  {name}", format_bytes(n)) for name, n in parts.items()]
    if have is not None and total + PROCESS_BASE_BYTES > have:
        rows.append(("  DOES NOT FIT", "validate, run and compare refuse this scenario here"))
    return rows


def check_run_file(path):
    """OutputError naming the first attribute or dataset of the run-file contract that
    ``path`` lacks, or a time series whose length differs from ``time_days``."""
    import h5py
    with open_run(path) as f:
        for name in RUN_ATTRIBUTES:
            if name not in f.attrs:
                raise OutputError(f"{path}: incomplete run file: root attribute {name!r} "
                                  "is missing")
        for name in RUN_DATASETS:
            if name not in f or not isinstance(f[name], h5py.Dataset):
                raise OutputError(f"{path}: incomplete run file: dataset /{name} is missing")
        ts = f["timeseries"]
        n = ts["time_days"].shape[0]
        for name, ds in ts.items():
            if (isinstance(ds, h5py.Dataset) and ds.ndim and name != "clone"
                    and ds.shape[0] != n):
                raise OutputError(f"{path}: inconsistent run file: /timeseries/{name} has "
                                  f"{ds.shape[0]} records, time_days {n}")


def describe_scenario(path, overrides=()) -> str:
    scenario = scenario_mod.load(path, overrides, check_memory=False)
    name = path or f"{scenario_mod.DEFAULT_SCENARIO} (built-in)"
    lines = [f"# {name}", f"# sha256 {scenario.sha256}", scenario.to_toml().rstrip(), "",
             "# derived per-step quantities"]
    width = max(len(k) for k, _ in derived_quantities(scenario))
    lines += [f"#   {k:<{width}}  {v}" for k, v in derived_quantities(scenario)]
    return "\n".join(lines)
