"""Parameter sweeps: a grid over scenario keys, or a Sobol design (SALib), with replicates.

Every point x replicate is an independent run written to ``DIR/runs/point-PPP/replicate-RRR.h5``
(a finished file is kept and skipped on a rerun of the same command; one made by another
command stops the sweep with one line, see ``study.layout``). Replicate r uses the same random key at
every point (common random numbers), so differences between points come from the swept
values. Results: ``DIR/sweep.csv`` (one tidy row per point x replicate: swept values and
endpoints), for a grid a heatmap of the mean of one endpoint over the first two keys, and
for a Sobol design ``DIR/sobol.csv`` with first-order and total indices (Saltelli 2010).
"""
from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator import scenario as scenario_mod
from simulator.output import catalog
from simulator.scenario import bounds
from simulator.schema import ScenarioError
from simulator.study import layout


@dataclass(frozen=True)
class Point:
    index: int
    values: dict


def parse_grid(specs) -> dict[str, list]:
    """``["a.b=1,2,3", "c.d=[1,2],[3,4]"]`` -> {"a.b": [1, 2, 3], ...} (TOML values)."""
    import tomllib
    grid = {}
    for spec in specs:
        if "=" not in spec:
            raise ScenarioError(f"expected key.path=v1,v2,..., got {spec!r}", source="--grid")
        key, raw = spec.split("=", 1)
        try:
            values = tomllib.loads(f"v = [{raw}]")["v"]
        except tomllib.TOMLDecodeError:
            raise ScenarioError(f"values must be TOML, comma-separated: {raw!r}",
                                key.strip(), "--grid") from None
        if not values:
            raise ScenarioError("needs at least one value", key.strip(), "--grid")
        grid[key.strip()] = values
    return grid


def grid_points(grid: dict[str, list]) -> list[Point]:
    keys = list(grid)
    return [Point(i, dict(zip(keys, combo)))
            for i, combo in enumerate(itertools.product(*(grid[k] for k in keys)))]


def parse_ranges(specs) -> dict[str, tuple[float, float]]:
    """``["tumor.antigenicity=0.5:2"]`` -> {"tumor.antigenicity": (0.5, 2.0)}."""
    ranges = {}
    for spec in specs:
        try:
            key, raw = spec.split("=", 1)
            low, high = (float(v) for v in raw.split(":"))
        except ValueError:
            raise ScenarioError(f"expected key.path=low:high, got {spec!r}", source="--sobol") from None
        if not low < high:
            raise ScenarioError(f"low must be below high, got {spec!r}", key, "--sobol")
        ranges[key.strip()] = (low, high)
    return ranges


def sobol_problem(ranges):
    return {"num_vars": len(ranges), "names": list(ranges), "bounds": [list(b) for b in ranges.values()]}


def sobol_points(ranges, base_samples: int) -> list[Point]:
    try:
        from SALib.sample import sobol as sobol_sample
    except ImportError:
        raise ScenarioError("needs SALib: pip install 'tumorsim[analysis]'", source="--sobol") from None
    design = sobol_sample.sample(sobol_problem(ranges), base_samples, calc_second_order=False,
                                 seed=12345)
    return [Point(i, dict(zip(ranges, map(float, row)))) for i, row in enumerate(design)]


def _point_path(directory, point: int, replicate: int) -> Path:
    return Path(directory) / "runs" / f"point-{point:04d}" / f"replicate-{replicate:03d}.h5"


def _point_scenario(scenario_path, overrides, point: Point, replicate: int):
    """The scenario of one point x replicate, as its run file records it."""
    sets = list(overrides) + [f"simulation.replicate={replicate}"]
    sets += [f"{k}={_toml(v)}" for k, v in point.values.items()]
    return scenario_mod.load(scenario_path, sets, check_memory=False)


def _run_one(scenario_path, overrides, point: Point, replicate: int, directory: str, threads: int):
    from simulator import engine as engine_mod
    from simulator.study.runner import run_or_resume
    from simulator.study.workers import error_line
    engine_mod.set_threads(threads)
    path = _point_path(directory, point.index, replicate)
    try:
        scenario = _point_scenario(scenario_path, overrides, point, replicate)
        if layout.matches(path, scenario):
            return point.index, replicate, str(path), "skipped", ""
        path.parent.mkdir(parents=True, exist_ok=True)
        # an interrupted run of this very point continues from its checkpoint; any other
        # partial run there is superseded when this one completes
        run_or_resume(scenario, path, threads=threads, restart=True)
        return point.index, replicate, str(path), "complete", ""
    except Exception as exc:  # noqa: BLE001 - reported, the sweep goes on
        return point.index, replicate, str(path), "failed", error_line(exc)


def _toml(value) -> str:
    from simulator.scenario.toml_writer import toml_value
    return toml_value(value)


def run_points(scenario_path, points, replicates, directory, overrides=(), workers=1):
    from simulator.study.precompile import compile_ahead_for
    from simulator.study.workers import execute, threads_per_worker
    threads = threads_per_worker(workers)
    jobs = [(scenario_path, tuple(overrides), p, r, str(directory), threads)
            for p in points for r in range(replicates)]
    outcomes = []
    if points:  # points differ in values, not in the kernels they call
        try:
            first = [_point_scenario(scenario_path, overrides, points[0], 0)]
        except ScenarioError:  # that point's run reports it
            first = []
        compile_ahead_for(first, min(workers, len(jobs)))
    execute(_run_one, jobs, lambda result: outcomes.append(result), workers, None, directory)
    order = {(p.index, r): i for i, (_, _, p, r, _, _) in enumerate(jobs)}
    return sorted(outcomes, key=lambda o: order[(o[0], o[1])])


def numeric_endpoints() -> list[str]:
    """Endpoints a heatmap or Sobol analysis can average (numbers and flags)."""
    import dataclasses
    import typing
    from simulator.analysis.endpoints import SCAN_FIELDS, Endpoints
    hints = typing.get_type_hints(Endpoints)
    return [f.name for f in dataclasses.fields(Endpoints)
            if f.name not in SCAN_FIELDS and hints[f.name] in (float, int, bool)]


def check_endpoint(endpoint: str):
    names = numeric_endpoints()
    if endpoint not in names:
        import difflib
        close = difflib.get_close_matches(endpoint, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ScenarioError(f"unknown endpoint {endpoint!r}{hint}; valid: {', '.join(names)}",
                            source="--endpoint")


def sweep(scenario_path, directory, *, grid=None, sobol=None, base_samples=8, replicates=1,
          endpoint="best_response", overrides=(), workers=1, fresh=False):
    """Validate first (the endpoint, every point's scenario, finished runs on disk), then
    run, tabulate and plot. ``fresh``: move earlier outputs aside (see ``study.layout``)."""
    from simulator.study.runner import assess_run
    from simulator.output.runfile import read_run
    if bool(grid) == bool(sobol):
        raise ScenarioError("give either --grid or --sobol", source="sweep")
    check_endpoint(endpoint)
    if replicates < 1:
        raise ScenarioError(f"must be >= 1, got {replicates}", source="--replicates")
    points = grid_points(grid) if grid else sobol_points(sobol, base_samples)
    for point in points:  # every bad value is reported before anything runs
        scenario = scenario_mod.load(scenario_path, list(overrides) +
                                     [f"{k}={_toml(v)}" for k, v in point.values.items()])
        bounds.check_memory(scenario, copies=min(workers, len(points) * replicates),
                            source=str(scenario_path))
    directory = layout.prepare(directory)
    with layout.StudyLock(directory):
        if fresh:
            layout.move_aside(directory)
        layout.remove_scratch(directory)
        for point in points:
            for r in range(replicates):
                path = _point_path(directory, point.index, r)
                if path.exists():
                    layout.check_reusable(path, _point_scenario(scenario_path, overrides,
                                                                point, r),
                                          f"point {point.index} replicate {r}")
        outcomes = run_points(scenario_path, points, replicates, directory, overrides, workers)
        rows = []
        for index, replicate, path, status, error in outcomes:
            row = dict(point=index, replicate=replicate, **points[index].values, status=status,
                       error=error)
            if status != "failed":
                series, scenario_text, _ = read_run(path)
                row.update(assess_run(scenario_mod.from_toml(scenario_text, path),
                                      series).to_dict())
            rows.append(row)
        _write_rows(directory / "sweep.csv", rows)
        figures = []
        if grid:
            figures.append(heatmap(rows, list(grid), endpoint,
                                   directory / f"heatmap_{endpoint}.png"))
        else:
            _write_rows(directory / "sobol.csv", sobol_indices(sobol, points, rows, endpoint))
    return rows, figures


def _write_rows(path, rows):
    columns = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with layout.atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _numeric(value) -> float:
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def sobol_indices(ranges, points, rows, endpoint):
    """First-order and total Sobol indices of the replicate-mean endpoint (SALib)."""
    from SALib.analyze import sobol as sobol_analyze
    y = np.full(len(points), np.nan)
    for p in points:
        values = [_numeric(r.get(endpoint)) for r in rows if r["point"] == p.index]
        values = [v for v in values if np.isfinite(v)]
        y[p.index] = np.mean(values) if values else np.nan
    if not np.all(np.isfinite(y)):
        raise ScenarioError(f"endpoint {endpoint!r} is undefined (NaN) at some points; "
                            "choose another endpoint or longer runs", source="--sobol")
    si = sobol_analyze.analyze(sobol_problem(ranges), y, calc_second_order=False, seed=12345)
    return [dict(parameter=name, endpoint=endpoint, S1=si["S1"][i], S1_conf=si["S1_conf"][i],
                 ST=si["ST"][i], ST_conf=si["ST_conf"][i]) for i, name in enumerate(ranges)]


def heatmap(rows, keys, endpoint, path, ax=None):
    """Mean of ``endpoint`` over replicates on the first two swept keys (one key: a strip)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    xs = sorted({str(r[keys[0]]) for r in rows}, key=_sort_key)
    ys = sorted({str(r[keys[1]]) for r in rows}, key=_sort_key) if len(keys) > 1 else [""]
    grid = np.full((len(ys), len(xs)), np.nan)
    for j, yv in enumerate(ys):
        for i, xv in enumerate(xs):
            values = [_numeric(r.get(endpoint)) for r in rows if str(r[keys[0]]) == xv
                      and (len(keys) == 1 or str(r[keys[1]]) == yv)]
            values = [v for v in values if np.isfinite(v)]
            if values:
                grid[j, i] = np.mean(values)
    fig, ax = (plt.subplots(figsize=(1.2 * len(xs) + 3, 0.8 * len(ys) + 2.5)) if ax is None
               else (ax.figure, ax))
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(_with_unit(keys[0]))
    ax.set_ylabel(_with_unit(keys[1]) if len(keys) > 1 else "")
    middle = np.nanmean([np.nanmin(grid), np.nanmax(grid)]) if np.isfinite(grid).any() else 0
    for j in range(len(ys)):
        for i in range(len(xs)):
            if np.isfinite(grid[j, i]):
                ax.text(i, j, f"{grid[j, i]:.3g}", ha="center", va="center", fontsize=8,
                        color="k" if grid[j, i] > middle else "w")
    declared = catalog.endpoint(endpoint)
    unit = "" if declared is None or not declared.units else (
        " (fraction)" if declared.units == "1" else f" ({declared.units})")
    fig.colorbar(image, ax=ax, label=f"mean {endpoint}{unit}")
    ax.set_title(f"{endpoint}{unit}, mean over replicates"
                 + (f"\n{declared.meaning}" if declared is not None else ""), fontsize=9)
    fig.tight_layout()
    with layout.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, format="png")
    plt.close(fig)
    return path


def _with_unit(key: str) -> str:
    """A swept scenario key with its unit from the schema: ``tumor.antigenicity`` or
    ``t_cells.recruitment_rate_per_day (cells/day)``."""
    from simulator.schema import describe
    units = {k: u for k, _d, u, _doc, _s in describe(scenario_mod.Scenario)}
    return f"{key} ({units[key]})" if units.get(key) else key


def _sort_key(text: str):
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)
