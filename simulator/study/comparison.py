"""Paired regimen comparison: arms x replicates with common random numbers.

For each replicate r, one task grows the pre-treatment tumour once (the first arm's
scenario up to ``simulation.treatment_start_day``), writes it to a scratch file, and forks
it into every arm: the arm's file starts as a copy of that history and the arm's engine as a
copy of that state. Replicate r of every arm uses the same random key (seed, r), so arms
differ only where treatment acts. Tasks run on a local process pool (one Numba thread per
worker by default) or on a Dask cluster (``scheduler=ADDRESS``); each writes its own files
and the coordinator only reads them. A finished run (status "complete") is never redone,
so an interrupted study resumes with the same command.

Output directory::

    DIR/runs/<arm>/replicate-<r>.h5   one file per run (the run-file contract)
    DIR/study.h5                      series stacked arm x replicate x time + endpoints
    DIR/summary.csv                   one row per arm x replicate
    DIR/arms.csv                      per arm: response rate, median TTP, durable fraction,
                                      paired differences against the reference arm
    DIR/figures/, DIR/report.html     study figures and the self-contained report

What each dataset and column means: :mod:`simulator.output.catalog` (docs/outputs.md).
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from simulator import scenario as scenario_mod
from simulator.scenario import cohort as cohort_mod
from simulator.schema import ScenarioError
from simulator.study.layout import Arm, is_complete, run_path
from simulator.study.workers import (error_line, threads_per_worker, worker_context,
                                     worker_init)


@dataclass
class RunOutcome:
    arm: str
    replicate: int
    seed: int
    path: str
    status: str        # "complete", "skipped" (already complete) or "failed"
    error: str = ""


@dataclass
class StudyReport:
    directory: Path
    outcomes: list[RunOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def load_arms(paths, overrides=()) -> list[Arm]:
    """Validate every arm up front; arm names are the file stems and must be distinct."""
    if not paths:
        raise ScenarioError("give at least one arm scenario", source="compare")
    arms, seen = [], {}
    for path in paths:
        scenario = scenario_mod.load(path, overrides)
        name = Path(path).stem
        if name in seen:
            raise ScenarioError(f"two arms are named {name!r} ({seen[name]} and {path}); "
                                "arm names come from file names", source=str(path))
        seen[name] = path
        arms.append(Arm(name, str(path), scenario.to_toml()))
    first = scenario_mod.from_toml(arms[0].toml)
    for arm in arms[1:]:
        _check_forkable(first, scenario_mod.from_toml(arm.toml), arm.source)
    return arms


def _pretreatment_part(scenario) -> dict:
    from simulator import schema
    table = schema.to_table(scenario)
    for key in ("description", "drugs", "output", "endpoints"):
        table.pop(key, None)
    table["simulation"].pop("duration_days", None)
    table["simulation"].pop("threads", None)
    return table


def _check_forkable(first, other, source: str):
    """Arms share one pre-treatment tumour, so they may differ only in what happens from
    the treatment start on: drugs, duration, output and endpoint settings."""
    a, b = _pretreatment_part(first), _pretreatment_part(other)
    if a != b:
        keys = sorted(_differences(a, b))
        raise ScenarioError("differs from the first arm before treatment starts (arms share "
                            f"one pre-treatment tumour): {', '.join(keys[:5])}", source=source)


def _differences(a, b, prefix=""):
    for key in set(a) | set(b):
        va, vb = a.get(key), b.get(key)
        path = f"{prefix}{key}"
        if isinstance(va, dict) and isinstance(vb, dict):
            yield from _differences(va, vb, path + ".")
        elif va != vb:
            yield path


def run_replicate(arms: list[Arm], replicate: int, directory: str, threads: int = 1) -> list[RunOutcome]:
    """One task: grow replicate ``replicate``'s pre-treatment tumour once and run every arm
    from it. Runs already complete on disk are skipped. Never raises: failures come back
    as outcomes with the arm, replicate, seed and the error line."""
    from simulator import engine as engine_mod
    from simulator.study import runner

    engine_mod.set_threads(threads)
    scenarios = {}
    outcomes = []
    try:
        shared = cohort_mod.draw(scenario_mod.from_toml(arms[0].toml), replicate)
        for arm in arms:
            s = scenario_mod.from_toml(arm.toml, arm.source)
            scenarios[arm.name] = cohort_mod.apply(s, replicate, shared)
    except Exception as exc:  # noqa: BLE001 - reported per run, the study goes on
        seed = scenario_mod.from_toml(arms[0].toml).simulation.seed
        return [RunOutcome(a.name, replicate, seed, str(run_path(directory, a.name, replicate)),
                           "failed", error_line(exc)) for a in arms]
    todo = []
    for arm in arms:
        path = run_path(directory, arm.name, replicate)
        seed = scenarios[arm.name].simulation.seed
        if is_complete(path):
            outcomes.append(RunOutcome(arm.name, replicate, seed, str(path), "skipped"))
        else:
            todo.append(arm)
    if not todo:
        return outcomes
    pretreatment = runner.Pretreatment(scenarios[arms[0].name], Path(directory) / "runs")
    try:
        for arm in todo:
            path = run_path(directory, arm.name, replicate)
            scenario = scenarios[arm.name]
            try:
                runner.run_arm(pretreatment, scenario, path, arm=arm.name, cohort=shared)
                outcomes.append(RunOutcome(arm.name, replicate, scenario.simulation.seed,
                                           str(path), "complete"))
            except Exception as exc:  # noqa: BLE001
                outcomes.append(RunOutcome(arm.name, replicate, scenario.simulation.seed,
                                           str(path), "failed", error_line(exc)))
    finally:
        pretreatment.discard()
    return outcomes


def compare(arm_paths, replicates: int, directory, *, workers: int = 1,
            scheduler: str | None = None, overrides=(), progress: bool = False,
            figures: bool = True) -> StudyReport:
    """Run every arm x replicate (resuming), then rebuild the study outputs from disk."""
    from simulator.study import outputs as study_outputs

    started = time.perf_counter()
    arms = load_arms(arm_paths, overrides)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    report = StudyReport(directory)
    threads = threads_per_worker(workers)
    bar = _progress_bar(progress, replicates * len(arms))
    tasks = range(replicates)

    def collect(results):
        for outcome in results:
            report.outcomes.append(outcome)
            if bar is not None:
                bar.update(1)

    if scheduler:
        from distributed import Client, as_completed as dask_completed
        with Client(scheduler, timeout="30s") as client:
            futures = [client.submit(run_replicate, arms, r, str(directory), threads,
                                     pure=False, key=f"tumorsim-{directory.name}-{r}-{os.getpid()}")
                       for r in tasks]
            for future in dask_completed(futures):
                collect(future.result())
    elif workers <= 1:
        for r in tasks:
            collect(run_replicate(arms, r, str(directory), threads))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=worker_context(),
                                 initializer=worker_init, initargs=(threads,)) as pool:
            futures = [pool.submit(run_replicate, arms, r, str(directory), threads) for r in tasks]
            for future in as_completed(futures):
                collect(future.result())
    if bar is not None:
        bar.close()
    report.outcomes.sort(key=lambda o: (o.replicate, [a.name for a in arms].index(o.arm)))
    study_outputs.write_study(directory, arms, replicates,
                              wall_seconds=time.perf_counter() - started)
    if figures:
        from simulator.output import plotting
        plotting.study_figures(directory)
    from simulator.output import report as report_mod
    report_mod.write_report(directory)
    return report


def _progress_bar(enabled: bool, total: int):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="run", leave=False)
