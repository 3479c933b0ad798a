"""Paired regimen comparison: arms x replicates with common random numbers.

For each replicate r, one task grows the pre-treatment tumour once (the first arm's
scenario up to ``simulation.treatment_start_day``), writes it to a scratch file, and forks
it into every arm: the arm's file starts as a copy of that history and the arm's engine as a
copy of that state. Replicate r of every arm uses the same random key (seed, r), so arms
differ only where treatment acts. Tasks run on a local process pool (one Numba thread per
worker by default) or on a Dask cluster (``scheduler=ADDRESS``); each writes its own files
and the coordinator only reads them. A finished run is reused only if the command would
write the same run now (``study.layout``: same resolved scenario, seed, replicate and
software version), so an interrupted study resumes with the same command, and any other
command on a directory with results stops with one line (``--fresh`` moves them aside).

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

import time
from dataclasses import dataclass, field
from pathlib import Path

from simulator import scenario as scenario_mod
from simulator.scenario import bounds
from simulator.scenario import cohort as cohort_mod
from simulator.schema import ScenarioError
from simulator.study import layout
from simulator.study.layout import Arm, run_path
from simulator.study.precompile import compile_ahead_for
from simulator.study.workers import (check_scheduler, error_line, execute,
                                     threads_per_worker)


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
    moved_to: Path | None = None    # where --fresh moved the earlier outputs

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
        cohort_mod.check_not_overridden(scenario, overrides, str(path))
        name = Path(path).stem
        bounds.check_name(name, "arm name (the file name without .toml)", str(path))
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
    for key in ("description", "drugs", "output", "endpoints", "regimen"):
        table.pop(key, None)
    table["simulation"].pop("duration_days", None)
    table["simulation"].pop("threads", None)
    return table


def _check_forkable(first, other, source: str):
    """Arms share one pre-treatment tumour, so they may differ only in what happens from
    the treatment start on: drugs, duration, output, endpoint and regimen settings (the
    rules first look at the tumour at the treatment start)."""
    a, b = _pretreatment_part(first), _pretreatment_part(other)
    if a != b:
        keys = sorted(layout.differences(a, b))
        raise ScenarioError("differs from the first arm before treatment starts (arms share "
                            f"one pre-treatment tumour): {', '.join(keys[:5])}", source=source)


def resolve_replicate(arms: list[Arm], replicate: int):
    """Replicate ``replicate``'s scenario of every arm — after ``--set`` and the cohort draw,
    exactly what its run file records — and the drawn cohort values."""
    shared = cohort_mod.draw(scenario_mod.from_toml(arms[0].toml), replicate)
    scenarios = {arm.name: cohort_mod.apply(scenario_mod.from_toml(arm.toml, arm.source),
                                            replicate, shared) for arm in arms}
    return scenarios, shared


def check_existing(arms: list[Arm], replicates: int, directory):
    """Stop (one line) at the first finished run on disk that another command made."""
    for r in range(replicates):
        paths = [run_path(directory, arm.name, r) for arm in arms]
        if not any(p.exists() for p in paths):
            continue
        try:
            scenarios, _ = resolve_replicate(arms, r)
        except ScenarioError:
            continue        # this replicate's draw fails; its runs are reported as failed
        for arm, path in zip(arms, paths):
            layout.check_reusable(path, scenarios[arm.name],
                                  f"arm {arm.name} replicate {r}")


def run_replicate(arms: list[Arm], replicate: int, directory: str, threads: int = 1) -> list[RunOutcome]:
    """One task: grow replicate ``replicate``'s pre-treatment tumour once and run every arm
    from it. Runs already complete on disk and made by this command are skipped. Never
    raises for a failed run: failures come back as outcomes with the arm, replicate, seed
    and the error line (an interruption does raise; an interrupted arm's partial run is
    resumed from its checkpoint by the next command, ``runner.run_arm``)."""
    from simulator import engine as engine_mod
    from simulator.study import runner

    engine_mod.set_threads(threads)
    try:
        scenarios, shared = resolve_replicate(arms, replicate)
    except Exception as exc:  # noqa: BLE001 - reported per run, the study goes on
        seed = scenario_mod.from_toml(arms[0].toml).simulation.seed
        return [RunOutcome(a.name, replicate, seed, str(run_path(directory, a.name, replicate)),
                           "failed", error_line(exc)) for a in arms]
    outcomes, todo = [], []
    for arm in arms:
        path = run_path(directory, arm.name, replicate)
        scenario = scenarios[arm.name]
        if layout.matches(path, scenario):
            outcomes.append(RunOutcome(arm.name, replicate, scenario.simulation.seed, str(path),
                                       "skipped"))
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
            figures: bool = True, fresh: bool = False) -> StudyReport:
    """Run every arm x replicate (resuming what matches), then rebuild the study outputs
    from disk. ``fresh``: move the outputs of earlier commands aside first (else a finished
    run made by another command stops the study with one line)."""
    from simulator.study import outputs as study_outputs

    started = time.perf_counter()
    arms = load_arms(arm_paths, overrides)
    concurrent = 1 if scheduler else min(workers, replicates)
    scenarios = [scenario_mod.from_toml(arm.toml) for arm in arms]
    for arm, scenario in zip(arms, scenarios):
        # each worker holds a pre-treatment engine and one arm's copy
        bounds.check_memory(scenario, copies=2 * concurrent, source=arm.source)
    if scheduler:
        scheduler = check_scheduler(scheduler)
    directory = layout.prepare(directory)
    report = StudyReport(directory)
    with layout.StudyLock(directory):
        if fresh:
            report.moved_to = layout.move_aside(directory)
        layout.remove_scratch(directory)
        check_existing(arms, replicates, directory)
        (directory / "runs").mkdir(exist_ok=True)
        from simulator.engine import progress_bar
        bar = progress_bar(progress, replicates * len(arms), "run")

        def collect(results):
            for outcome in results:
                report.outcomes.append(outcome)
                if bar is not None:
                    bar.update(1)

        jobs = [(arms, r, str(directory), threads_per_worker(workers)) for r in range(replicates)]
        try:
            if not scheduler:
                compile_ahead_for(scenarios, concurrent)
            execute(run_replicate, jobs, collect, workers, scheduler, directory)
        finally:
            if bar is not None:
                bar.close()
        names = [a.name for a in arms]
        report.outcomes.sort(key=lambda o: (o.replicate, names.index(o.arm)))
        study_outputs.write_study(directory, arms, replicates,
                                  runs={(o.arm, o.replicate) for o in report.outcomes
                                        if o.status != "failed"},
                                  wall_seconds=time.perf_counter() - started)
        if figures and any(o.status != "failed" for o in report.outcomes):
            from simulator.output import plotting
            plotting.study_figures(directory)
        from simulator.output import report as report_mod
        report_mod.write_report(directory)
    return report
