"""``tumorsim inspect SCENARIO``: the resolved scenario and what the engine derives from it,
including the memory a run needs; and the layout check of a run file before it is read."""
from __future__ import annotations

from simulator import scenario as scenario_mod
from simulator.engine import tumor_rates
from simulator.model.memory import (PROCESS_BASE_BYTES, available_bytes, estimate_bytes,
                                    format_bytes)
from simulator.model.tumor import escape_bit
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
    bits = max(len(rates.death_hazard) - 1, 1).bit_length()
    for clone in range(len(rates.death_hazard)):
        rows.append((f"clone {clone:#0{2 + bits}b} death / division hazard per step",
                     f"{rates.death_hazard[clone]:.6g} / {rates.division_hazard[clone]:.6g}"))
    rows.append(("mutation probability per division", f"{rates.mutation_probability:.3g}"))
    if escape_bit(scenario):
        rows.append(("immune-escape variants", f"clone bit {escape_bit(scenario):#b}, "
                     f"{scenario.initial.escape_fraction:.3g} of the initial cells, "
                     f"antigenicity x {scenario.tumor.escape_antigenicity:g}"))
    floor = scenario.initial.min_resistant_cells_at_baseline
    if floor:
        rows.append(("resistance floor at baseline",
                     f"at least {floor} resistant cells from day {sim.treatment_start_day:g} "
                     "(sensitive cells drawn at random gain resistance)"))
    floor = scenario.initial.min_escape_cells_at_baseline
    if floor:
        rows.append(("immune-escape floor at baseline",
                     f"at least {floor} escape variants from day {sim.treatment_start_day:g} "
                     "(other cells drawn at random become variants)"))
    rows.append(("debris clearance hazard per step", f"{rates.clear_dead_hazard:.6g}"))
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


# ------------------------------------------------------------------ studies (inspect DIR)
def is_study(target) -> bool:
    """A `tumorsim compare` directory, or a study.h5 file."""
    from pathlib import Path
    path = Path(target)
    if path.is_dir():
        return True
    if path.suffix not in (".h5", ".hdf5") or not path.exists():
        return False
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("title") == "tumorsim study"
    except OSError:
        return False


def describe_study(target) -> str:
    """A short summary of a study directory or its study.h5 (``tumorsim inspect DIR``):
    arms and runs, provenance, the stacked series with units, the endpoint columns and the
    per-arm table."""
    import csv
    import math
    from pathlib import Path

    import h5py

    from simulator.output.runfile import OutputError
    path = Path(target)
    directory = path if path.is_dir() else path.parent
    study = directory / "study.h5"
    if not study.exists():
        raise OutputError(f"{directory}: not a tumorsim study directory (no study.h5; run "
                          "`tumorsim compare` first)")
    try:
        f = h5py.File(study, "r")
    except OSError as exc:
        raise OutputError(f"{study}: not a readable HDF5 file ({exc})") from None

    def text(v):
        return v.decode() if isinstance(v, bytes) else str(v)

    with f:
        a = f.attrs
        arms = [text(x) for x in a.get("arms", [])]
        ts, ep = f.get("timeseries"), f.get("endpoints")
        t = ts["time_days"][()] if ts is not None and "time_days" in ts else []
        wall = float(a.get("wall_seconds", math.nan))
        lines = [f"{directory}  (tumorsim study)",
                 f"  arms ({len(arms)}; reference {text(a.get('reference_arm', ''))}): "
                 + ", ".join(arms),
                 f"  replicates per arm: {a.get('replicates')}  finished runs: "
                 f"{len(ep['run']) if ep is not None and 'run' in ep else '?'}",
                 f"  software {text(a.get('software_version', '?'))}  commit "
                 f"{text(a.get('git_commit', '')) or '-'}  written {text(a.get('created', '?'))}"
                 + ("" if math.isnan(wall) else f"  wall time {wall:.0f} s"),
                 f"  time axis: {len(t)} records, day {t[0]:g} to {t[-1]:g}" if len(t) else
                 "  time axis: empty"]
        if ts is not None:
            series = [f"{n} ({text(ts[n].attrs.get('units', '-'))})" for n in ts
                      if isinstance(ts[n], h5py.Dataset) and ts[n].ndim == 3]
            lines.append("  series (arm x replicate x time): " + ", ".join(series))
        if ep is not None:
            lines.append(f"  endpoint columns: {len([n for n in ep if n != 'run'])} "
                         "(see summary.csv; meanings in docs/outputs.md)")
    arms_csv = directory / "arms.csv"
    if arms_csv.exists():
        with open(arms_csv, newline="") as fh:
            rows = list(csv.DictReader(fh))

        def pct(v):
            try:
                return f"{100 * float(v):.0f}%"
            except (TypeError, ValueError):
                return "-"

        width = max([len(r["arm"]) for r in rows] + [3])
        lines.append(f"  {'arm':<{width}}  runs  response  durable  median TTP (days)")
        for r in rows:
            lines.append(f"  {r['arm']:<{width}}  {r.get('replicates', ''):>4}  "
                         f"{pct(r.get('response_rate')):>8}  {pct(r.get('durable_fraction')):>7}"
                         f"  {r.get('median_ttp_days', '')}")
    extras = [name for name in ("summary.csv", "arms.csv", "report.html")
              if (directory / name).exists()]
    figures = sorted(p.name for p in (directory / "figures").glob("*.png")) \
        if (directory / "figures").is_dir() else []
    lines.append(f"  files: {', '.join(extras) or '-'}; figures: {', '.join(figures) or '-'}")
    return "\n".join(lines)
