"""Run one scenario to one HDF5 file: the engine, the recorder and the endpoints together.

The API the CLI and the studies call:

- :func:`run_to_file` — a fresh run of a scenario to ``OUT.h5`` (atomic, exclusive:
  :mod:`simulator.output.recorder`);
- :func:`resume_to_file` — continue the interrupted run of ``OUT.h5`` (or of a named
  partial directory) from its checkpoint (``tumorsim resume``); with ``expect`` it refuses
  a partial run of another scenario;
- :func:`run_or_resume` — resume a matching interrupted run, else start it (``tumorsim
  run --resume``; ``restart=True``: a non-matching one is superseded, for sweeps);
- :class:`Pretreatment` and :func:`run_arm` — a compare arm: resume the arm's partial run
  if it matches the arm exactly (scenario sha256 — the resolved arm after ``--set`` and the
  cohort draw, so seed and replicate too — and software version), else fork the
  replicate's pre-treatment tumour (grown on first use, once per replicate) and run it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from simulator.analysis import endpoints as endpoints_mod
from simulator import engine as engine_mod
from simulator.output import recorder as recorder_mod
from simulator.output.atomic import OutputError, TargetLock, check_replaceable, unique_sibling
from simulator.output.recorder import CannotResume, Recorder
from simulator.output.runfile import is_run_file, read_run
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
        e, settings = self.endpoints, self.scenario.endpoints
        best = "n/a" if math.isnan(e.best_response) else f"{e.best_response:+.1%}"
        if e.progression_observed:
            pfs = f"{e.time_to_progression_days:g} days (progression)"
        elif math.isnan(e.follow_up_days):
            pfs = "not evaluable (no scan)"
        else:
            pfs = f"not reached (no progression in {e.follow_up_days:g} days of scans)"
            if e.progression_scans_blocked_by_min_mm:
                pfs += (f"; {e.progression_scans_blocked_by_min_mm} scan(s) rose >= "
                        f"{settings.progression_rise:.0%} over the nadir but by less than "
                        f"endpoints.progression_min_mm = {settings.progression_min_mm:g} mm")
        lines = [
            f"wrote {self.path}  ({self.steps} steps in {self.wall_seconds:.2f} s)",
            f"  final tumour burden: {e.final_tumor_cells:.0f} cells "
            f"(baseline {e.baseline_tumor_cells:.0f}, resistant share at end "
            f"{e.resistant_fraction_final:.1%})",
            f"  best response: {best} in equivalent diameter; best overall response "
            f"{e.response_class} (RECIST 1.1" + (", PR/CR confirmed" if
                                                  settings.confirm_responses else "") + ")",
            f"  progression-free: {pfs}",
        ]
        if self.steps < self.scenario.simulation.steps:
            day = self.steps * self.scenario.simulation.dt_hours / 24.0
            lines.append(f"  tumour eradicated by day {day:g}: the run ends there, every later "
                         "scan a CR (endpoints.end_at_eradication)" if e.final_tumor_cells == 0
                         else f"  off study at progression on day {day:g}: the run ends there "
                         "(endpoints.off_study_at_progression)")
        if e.objective_response:
            lines.append(f"  time to response: {e.time_to_response_days:g} days; duration of "
                         f"response: {e.duration_of_response_days:g} days"
                         + (" (ongoing)" if e.response_ongoing else "")
                         + ("; durable" if e.durable_response else ""))
        if e.box_limited:
            lines.append(f"  note: the tumour reached the lattice edge on day "
                         f"{e.edge_contact_day:g}; later burden and progression are limited "
                         "by the box (enlarge simulation.dimensions)")
        return "\n".join(lines)


def assess_run(scenario: Scenario, series: dict) -> endpoints_mod.Endpoints:
    sim = scenario.simulation
    criteria = scenario.endpoints.criteria(sim.ndim, sim.spacing_um)
    return endpoints_mod.assess_timeseries(series, sim.treatment_start_day, criteria,
                                           followed_to_day=sim.duration_days)


SUMMARY_KEYS = ("best_response", "response_class", "time_to_progression_days",
                "durable_response")


def run_to_file(scenario: Scenario, output, *, threads: int | None = None,
                progress: bool = False, arm: str = "", extra_attrs: dict | None = None,
                engine: engine_mod.Engine | None = None, overwrite: bool = False,
                notify=None, lock: TargetLock | None = None,
                compile_ahead: bool = False) -> RunResult:
    """Run ``scenario`` (or continue ``engine``) and write ``output`` when it completes;
    until then the run lives in ``output``'s partial directory (resumable). ``overwrite``:
    replace a file that is not a tumorsim run file; ``notify``: gets one line when an
    existing run file will be replaced; ``lock``: ``output``'s lock if the caller holds it
    (the run takes it over); ``compile_ahead``: compile the kernels the cache lacks on
    several cores before the first step (``study.precompile``; a lone run's choice, not a
    study worker's)."""
    output = Path(output)
    try:
        lock = lock if lock is not None else TargetLock(output).acquire()
    except OSError as exc:
        raise OutputError(f"{output}: cannot write ({exc.strerror or exc})") from None
    try:
        check_replaceable(output, is_run_file, overwrite, "tumorsim run file")  # before work
        threads = scenario.simulation.threads if threads is None else threads
        engine_mod.set_threads(threads)
        prepare_kernels(scenario, compile_ahead)
        engine = engine or engine_mod.Engine(scenario)
        recorder = Recorder(output, scenario, arm=arm, extra_attrs=extra_attrs,
                            n_clones=engine.n_clones,
                            drug_names=engine.treatment.drug_names, overwrite=overwrite,
                            notify=notify, lock=lock)
    except OSError as exc:
        lock.release()
        raise OutputError(f"{output}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        lock.release()
        raise
    return _run(recorder, engine, scenario, output, progress, threads=threads)


def resume_to_file(source, *, threads: int | None = None, progress: bool = False,
                   expect: Scenario | None = None, notify=None,
                   lock: TargetLock | None = None, compile_ahead: bool = False) -> RunResult:
    """Continue the interrupted run named by ``source`` (``OUT.h5`` or its partial
    directory) from its checkpoint to the end; the run file is bit-identical to the
    uninterrupted run's (but for its ``resumed_at_steps`` attribute). CannotResume (one
    line) when it cannot be continued."""
    if threads is not None:
        engine_mod.set_threads(threads)
    resumption = recorder_mod.open_for_resume(source, expect=expect, notify=notify, lock=lock)
    scenario = resumption.scenario
    if resumption.finished:
        series, _, _ = read_run(resumption.target)
        return RunResult(resumption.target, scenario, assess_run(scenario, series), 0.0,
                         resumption.step)
    if threads is None:
        threads = scenario.simulation.threads
        engine_mod.set_threads(threads)
    prepare_kernels(scenario, compile_ahead)
    return _run(resumption.recorder, resumption.engine, scenario, resumption.target, progress,
                threads=threads)


def run_or_resume(scenario: Scenario, output, *, threads: int | None = None,
                  progress: bool = False, notify=None, overwrite: bool = False,
                  restart: bool = False, compile_ahead: bool = False) -> RunResult:
    """``tumorsim run --resume``: continue ``output``'s interrupted run if it is a run of
    exactly ``scenario`` (same resolved scenario, so same seed and replicate, and same
    software version), or start it when there is none. A partial run that does not match
    is refused (CannotResume), or with ``restart`` superseded: the run starts afresh and
    the stale partial run goes when it completes (what studies of single runs, such as
    sweeps, want)."""
    lock = TargetLock(output).acquire()
    if recorder_mod.partial.partials_of(output):
        try:
            return resume_to_file(output, threads=threads, progress=progress, expect=scenario,
                                  notify=notify, lock=lock, compile_ahead=compile_ahead)
        except CannotResume:
            if not restart:
                lock.release()
                raise
    return run_to_file(scenario, output, threads=threads, progress=progress,
                       overwrite=overwrite, notify=notify, lock=lock,
                       compile_ahead=compile_ahead)


def prepare_kernels(scenario: Scenario, compile_ahead: bool = False) -> tuple[int, int]:
    """Say "compiling" when the scenario's kernels are not all cached and, with
    ``compile_ahead``, compile them now on a pool of processes (``study.precompile``)
    rather than one by one as the first step reaches them; returns (signatures compiled
    ahead, processes)."""
    engine_mod.announce_compilation(scenario)
    if not compile_ahead:
        return 0, 1
    from simulator.study.precompile import compile_ahead_for
    return compile_ahead_for([scenario])


def _run(recorder: Recorder, engine, scenario: Scenario, output: Path, progress: bool,
         cohort: dict | None = None, threads: int | None = None) -> RunResult:
    """``threads``: as ``engine.run`` (None keeps the current count, 0 chooses step by
    step)."""
    try:
        with recorder:
            if cohort:
                recorder.write_cohort(cohort)
            engine_mod.run(scenario, recorder, progress=progress, engine=engine,
                           threads=threads)
            result = _finish(recorder, engine, scenario)
    except OSError as exc:  # a full disk, a vanished directory: the partial run stays
        raise OutputError(f"{output}: cannot write ({exc.strerror or exc})") from None
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


class Pretreatment:
    """One replicate's pre-treatment tumour, grown on first use (``engine``) and shared by
    its arms: the first arm's scenario run to the treatment start, its records kept in a
    scratch journal beside the arms' files (``history``). Call :meth:`discard` when the
    replicate is done (it removes the scratch journal)."""

    def __init__(self, scenario: Scenario, directory):
        self.scenario = scenario
        self.directory = Path(directory)
        self._engine: engine_mod.Engine | None = None
        self._error: Exception | None = None
        self.history: Path | None = None

    @property
    def engine(self) -> engine_mod.Engine:
        """The engine at the treatment start (a failure to grow it is raised again for
        every arm that asks, without growing it again)."""
        if self._error is not None:
            raise self._error
        if self._engine is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.history = unique_sibling(self.directory / "pretreatment", "journal",
                                          hidden=True)
            try:
                self._engine = grow_pretreatment(self.scenario, self.history)
            except Exception as exc:
                self._error = exc
                raise
        return self._engine

    def discard(self) -> None:
        if self.history is not None:
            self.history.unlink(missing_ok=True)


def grow_pretreatment(scenario: Scenario, history) -> engine_mod.Engine:
    """Run ``scenario`` to its treatment start, recording into the journal ``history``;
    returns the engine there, ready to fork into arms."""
    engine = engine_mod.Engine(scenario)
    recorder = Recorder.scratch(history, scenario, n_clones=engine.n_clones,
                                extra_attrs={"stage": "pretreatment"})
    try:
        engine_mod.run(scenario, recorder, engine=engine,
                       until_step=treatment_start_step(scenario))
    finally:
        recorder.close("pretreatment")
    return engine


def run_arm(pretreatment: Pretreatment, scenario: Scenario, path, *, arm: str = "",
            cohort: dict | None = None) -> RunResult:
    """Write the compare arm ``arm`` (scenario ``scenario``, cohort already applied) to
    ``path``. An interrupted run of it beside ``path`` is resumed from its checkpoint when
    it matches exactly (scenario sha256 and software version); otherwise the arm starts
    from ``pretreatment`` (grown now if no arm needed it yet), and the stale partial run is
    removed when it completes. Raises what the run raises (the caller reports it)."""
    path = Path(path)
    lock = TargetLock(path).acquire()
    if recorder_mod.partial.partials_of(path):
        try:
            return resume_to_file(path, threads=0, expect=scenario, lock=lock)
        except CannotResume:
            pass  # not this arm, or nothing to continue from: start afresh under the lock
    try:
        base = pretreatment.engine
        engine = engine_mod.fork(base, scenario)
        recorder = Recorder.fork(pretreatment.history, path, scenario, arm=arm,
                                 n_clones=engine.n_clones,
                                 drug_names=engine.treatment.drug_names, overwrite=False,
                                 lock=lock)
    except BaseException:
        lock.release()
        raise
    return _run(recorder, engine, scenario, path, False, cohort)
