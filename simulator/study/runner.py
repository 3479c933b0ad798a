"""Run one scenario to one HDF5 file: the engine, the recorder and the endpoints together."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


from simulator.analysis import endpoints as endpoints_mod
from simulator import engine as engine_mod
from simulator.output.runfile import OutputError, Recorder
from simulator.treatment.regimen import day_to_step
from simulator.scenario import Scenario


@dataclass
class RunResult:
    path: Path
    scenario: Scenario
    endpoints: endpoints_mod.Endpoints
    wall_seconds: float
    steps: int

    def summary_text(self) -> str:
        e = self.endpoints
        ttp = ("none" if math.isnan(e.time_to_progression_days)
               else f"day {e.time_to_progression_days:g} after treatment start")
        best = "n/a" if math.isnan(e.best_response) else f"{e.best_response:+.1%}"
        return "\n".join([
            f"wrote {self.path}  ({self.steps} steps in {self.wall_seconds:.1f} s)",
            f"  final tumour burden: {e.final_tumor_cells:.0f} cells "
            f"(baseline {e.baseline_tumor_cells:.0f}, resistant share at end "
            f"{e.resistant_fraction_final:.1%})",
            f"  best response: {best}  ({e.response_class})",
            f"  time to progression: {ttp}"
            + (f" ({e.progression_scans_blocked_by_min_mm} scan(s) rose >= "
               f"{self.scenario.endpoints.progression_rise:.0%} over the nadir but by less than "
               f"endpoints.progression_min_mm = {self.scenario.endpoints.progression_min_mm:g} mm)"
               if math.isnan(e.time_to_progression_days)
               and e.progression_scans_blocked_by_min_mm else ""),
            f"  durable response: {'yes' if e.durable_response else 'no'}",
        ] + ([f"  note: the tumour reached the lattice edge on day {e.edge_contact_day:g}; "
              "later burden and progression are limited by the box (enlarge "
              "simulation.dimensions)"] if e.box_limited else []))


def assess_run(scenario: Scenario, series: dict) -> endpoints_mod.Endpoints:
    sim = scenario.simulation
    criteria = scenario.endpoints.criteria(sim.ndim, sim.spacing_um)
    return endpoints_mod.assess_timeseries(series, sim.treatment_start_day, criteria)


SUMMARY_KEYS = ("best_response", "response_class", "time_to_progression_days",
                "durable_response")


def run_to_file(scenario: Scenario, output, *, threads: int | None = None,
                progress: bool = False, arm: str = "", extra_attrs: dict | None = None,
                engine: engine_mod.Engine | None = None) -> RunResult:
    """Run ``scenario`` (or continue ``engine``) and write ``output``; the file says
    "complete" only if the run finished, "incomplete" if anything interrupted it."""
    engine_mod.set_threads(scenario.simulation.threads if threads is None else threads)
    engine_mod.announce_compilation()
    engine = engine or engine_mod.Engine(scenario)
    output = Path(output)
    try:
        recorder = Recorder(output, scenario, arm=arm, extra_attrs=extra_attrs,
                            n_clones=1 << engine.n_targets,
                            drug_names=engine.treatment.drug_names)
    except OSError as exc:
        raise OutputError(f"{output}: cannot write ({exc.strerror or exc})") from None
    with recorder:
        engine_mod.run(scenario, recorder, progress=progress, engine=engine)
        result = _finish(recorder, engine, scenario)
    return RunResult(output, scenario, result, engine.wall_seconds, engine.state.step)


def _finish(recorder: Recorder, engine, scenario: Scenario) -> endpoints_mod.Endpoints:
    """The doses actually given and the run's endpoints, into its file."""
    recorder.write_doses(engine.treatment.dose_log)
    result = assess_run(scenario, recorder.series())
    recorder.write_summary({k: "none" if v is None else v for k, v in result.to_dict().items()})
    return result


def treatment_start_step(scenario: Scenario) -> int:
    """The first step at or after the treatment start (doses' convention)."""
    sim = scenario.simulation
    return day_to_step(sim.treatment_start_day, sim.dt_hours)


def grow_pretreatment(scenario: Scenario, scratch):
    """Run ``scenario`` to its treatment start, recording into ``scratch``; returns the
    engine there, ready to fork into arms (``continue_fork``)."""
    engine = engine_mod.Engine(scenario)
    with Recorder(scratch, scenario, n_clones=1 << engine.n_targets,
                  extra_attrs={"stage": "pretreatment"}) as recorder:
        engine_mod.run(scenario, recorder, engine=engine,
                       until_step=treatment_start_step(scenario))
        recorder.close("pretreatment")
    return engine


def continue_fork(base: engine_mod.Engine, scenario: Scenario, path, *, arm: str = "",
                  cohort: dict | None = None) -> RunResult:
    """Copy ``base`` into ``scenario`` (an arm) and run it to the end, appending to
    ``path`` — a copy of the pre-treatment file."""
    engine = engine_mod.fork(base, scenario)
    recorder = Recorder.resume(path, scenario, arm=arm, n_clones=1 << engine.n_targets,
                               drug_names=engine.treatment.drug_names)
    if cohort:
        recorder.write_cohort(cohort)
    with recorder:
        engine_mod.run(scenario, recorder, engine=engine)
        result = _finish(recorder, engine, scenario)
    return RunResult(Path(path), scenario, result, engine.wall_seconds, engine.state.step)
