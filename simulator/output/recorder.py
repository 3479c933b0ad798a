"""Recording a run as it goes: its journal, its checkpoints, and how it stops.

A :class:`Recorder` for ``OUT.h5`` takes ``OUT.h5``'s lock (:mod:`.atomic`), refuses to
replace a file that is not a tumorsim run file (unless ``overwrite``), and records into a
new partial directory ``OUT.h5.partial-<pid>-<n>/`` (:mod:`.partial`):

- records are buffered and appended to the journal every ``FLUSH_SECONDS`` of wall time
  (or ``FLUSH_EVERY`` records), and at every snapshot; a snapshot is appended as frames
  compressed with the run file's filters (:mod:`.journal`);
- every ``output.checkpoint_every_seconds`` of wall time (default 10; 0 = never) the whole
  engine state is written to ``checkpoint.h5`` (:mod:`.checkpoint`): journal fsynced,
  checkpoint written under a unique name, fsynced, renamed over the previous one. A
  checkpoint that took c seconds pushes the next one to at least 10 c later, so
  checkpoints never cost more than ~10% of a run;
- when the run completes, the journal is marked finished, the run file is written from it
  into the partial directory and renamed onto ``OUT.h5`` (an existing run file there is
  replaced only now), and the partial directory goes.

So a SIGKILL at any moment loses at most the records since the last flush (~2 s) for
reading (``tumorsim inspect`` / ``recover``) and the steps since the last checkpoint
(~10 s) for continuing (``tumorsim resume``). SIGINT and SIGTERM lose nothing: under
:func:`stop_on_signals` the run stops at its next record, after a checkpoint of that very
step, and raises :class:`Interrupted` (exit status 130 / 143 in the CLI).

A resumed run (:func:`open_for_resume`) is built fresh from the scenario in its journal,
the checkpoint is restored over it, the journal is cut back to what the checkpoint had
recorded, and recording goes on: the run file it ends with is bit-identical to that of the
uninterrupted run, but for the root attribute ``resumed_at_steps``.
"""
from __future__ import annotations

import datetime
import math
import os
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.model.penetration import penetrating
from simulator.treatment.regimen import day_to_step
from simulator.output import atomic, checkpoint, journal as journal_mod, partial
from simulator.output.atomic import OutputError, TargetLock
from simulator.schema import ScenarioError
from simulator.output.journal import Journal, JournalWriter
from simulator.output.runfile import (FLUSH_EVERY, FLUSH_SECONDS, TITLE, RunContents,
                                      contents_of, find_partial, git_commit, is_run_file,
                                      library_versions, software_version, write_run_file)

CHECKPOINT_COST_SHARE = 0.1   # at most this share of the wall time goes to checkpoints


# ------------------------------------------------------------------ stopping on a signal
class Interrupted(KeyboardInterrupt):
    """The run stopped on SIGINT / SIGTERM; ``exit_status`` 128 + the signal number."""

    def __init__(self, signum: int, where: str = ""):
        super().__init__(signum)
        self.signum = signum
        self.where = where

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


_stop = {"signum": None, "recorders": 0, "raised": None}


def signal_raised() -> int | None:
    """The signal that :func:`stop_on_signals` last raised as :class:`Interrupted` in the
    block last opened (None if none). A C extension's module initialisation turns an exception
    raised inside it into ``ImportError: initialization failed``, so a signal that lands
    during an import can surface as another exception; the caller asks here what it was."""
    return _stop["raised"]


@contextmanager
def stop_on_signals(signums=(signal.SIGINT, signal.SIGTERM)):
    """While recording, SIGINT / SIGTERM stop the run at its next record, after a checkpoint
    (:class:`Interrupted` from :meth:`Recorder.record`); a second signal, or one while no
    run is recording (loading, compiling), raises :class:`Interrupted` at once."""
    def handler(signum, frame):
        if _stop["signum"] is not None or not _stop["recorders"]:
            _stop["raised"] = signum
            raise Interrupted(signum)
        _stop["signum"] = signum

    previous = {s: signal.signal(s, handler) for s in signums}
    _stop["raised"] = None
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _stop["signum"] = None


# ------------------------------------------------------------------ the recorder
def layout_of(scenario, n_clones: int, drug_names) -> dict:
    """What the run file's layout needs from the scenario (kept in the journal, so a run
    file can be written from a journal without reading its scenario)."""
    sim, out = scenario.simulation, scenario.output
    return dict(dimensions=list(sim.dimensions), spacing_um=sim.spacing_um,
                dt_hours=sim.dt_hours, resistance_targets=list(scenario.tumor.resistance_targets),
                n_clones=n_clones, drug_names=list(drug_names),
                tissue_drug_names=list(penetrating(scenario.drugs)),
                snapshot_fields=list(out.snapshot_fields), compression=out.compression)


def header_attrs(scenario, arm: str, extra: dict) -> dict:
    sim = scenario.simulation
    attrs = dict(
        software_version=software_version(), seed=sim.seed, replicate=sim.replicate, arm=arm,
        scenario_sha256=scenario.sha256,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        git_commit=git_commit(), command_line=" ".join(sys.argv),
        library_versions=library_versions(), dimensions=list(sim.dimensions),
        dt_hours=sim.dt_hours, spacing_um=sim.spacing_um,
        treatment_start_day=sim.treatment_start_day, Conventions="CF-1.8", title=TITLE)
    attrs.update(extra)
    return attrs


def snapshot_steps(scenario) -> set[int]:
    sim, every = scenario.simulation, scenario.output.snapshot_every_days
    # the treatment start too: the figures show each arm's lattice from the day it forks
    steps = {0, sim.steps, min(sim.steps, day_to_step(sim.treatment_start_day, sim.dt_hours))}
    if every > 0:
        per = max(1, int(round(every * 24.0 / sim.dt_hours)))
        steps.update(range(0, sim.steps + 1, per))
    return steps


class Recorder:
    """Records one run to ``path`` (see the module docstring); use as a context manager:
    leaving it normally completes the run file, leaving it by an exception keeps the
    partial run (resumable).

    ``notify``: called with one line when an existing run file will be replaced, or a
    partial run of the same target is superseded. ``lock``: ``path``'s lock, if the caller
    holds it already (it passes to the recorder)."""

    def __init__(self, path, scenario, *, arm: str = "", extra_attrs: dict | None = None,
                 n_clones: int = 2, drug_names=(), overwrite: bool = False, notify=None,
                 lock: TargetLock | None = None, _journal_from=None):
        self._setup(scenario)
        self.target = Path(path)
        self.partial = None
        self.lock = lock if lock is not None else TargetLock(self.target).acquire()
        try:
            replacing = atomic.check_replaceable(self.target, is_run_file, overwrite,
                                                 "tumorsim run file")
            self._superseded = partial.partials_of(self.target)
            partial.remove_debris(self.target)
            self.partial = partial.new_partial(self.target)
            journal = partial.journal_path(self.partial)
            layout = layout_of(scenario, n_clones, drug_names)
            if _journal_from is None:
                self.journal = JournalWriter(journal, header=("header", dict(
                    attrs=header_attrs(scenario, arm, extra_attrs or {}),
                    scenario_toml=scenario.to_toml(), layout=layout)))
            else:  # a compare arm: the pre-treatment history, then the fork
                copy = journal.with_name(journal.name + ".new")
                shutil.copyfile(_journal_from, copy)
                os.replace(copy, journal)
                self.journal = JournalWriter(journal, append_at=journal.stat().st_size)
                with Journal(journal) as history:
                    before = RunContents(history)
                self._last_record_day = before.last_time_days
                self._last_snapshot_day = (before.snapshot_times or [math.nan])[-1]
                self.journal.append("fork", dict(
                    attrs=dict(arm=arm, scenario_sha256=scenario.sha256, stage="treatment",
                               **(extra_attrs or {})),
                    scenario_toml=scenario.to_toml(), layout=layout))
        except BaseException:
            if self.partial is not None:
                atomic.remove(self.partial)
            self.lock.release()
            raise
        if notify and replacing:
            notify(f"{self.target} is a run file already; this run replaces it when it "
                   "completes")
        for old in self._superseded if notify else ():
            notify(f"{old.name} holds an unfinished run of {self.target.name}; starting "
                   "afresh (tumorsim resume would continue it); it goes when this run completes")
        self._arm()

    @classmethod
    def fork(cls, history, path, scenario, *, arm: str = "", n_clones: int = 2, drug_names=(),
             overwrite: bool = False, notify=None, lock: TargetLock | None = None) -> "Recorder":
        """Record a compare arm that continues ``history`` (the journal of a pre-treatment
        run, :meth:`scratch`) under ``scenario``: its run file holds that history, then the
        arm's own records."""
        return cls(path, scenario, arm=arm, n_clones=n_clones, drug_names=drug_names,
                   overwrite=overwrite, notify=notify, lock=lock, _journal_from=Path(history))

    @classmethod
    def scratch(cls, journal_path, scenario, *, n_clones: int = 2,
                extra_attrs: dict | None = None) -> "Recorder":
        """Record into a bare journal (no target, no checkpoints): a pre-treatment history
        for :meth:`fork`. Closing it leaves the journal."""
        self = cls.__new__(cls)
        self._setup(scenario)
        self.target = self.partial = self.lock = None
        self._superseded = []
        self._checkpoint_every = 0.0
        self.journal = JournalWriter(journal_path, header=("header", dict(
            attrs=header_attrs(scenario, "", extra_attrs or {}),
            scenario_toml=scenario.to_toml(), layout=layout_of(scenario, n_clones, ()))))
        return self

    @classmethod
    def _reopen(cls, part: Path, target: Path, scenario, lock, journal_bytes: int,
                engine) -> "Recorder":
        """Continue recording the partial run ``part`` after its checkpoint (the journal is
        cut back to what the checkpoint had recorded)."""
        self = cls.__new__(cls)
        self._setup(scenario)
        self.target, self.partial, self.lock = target, part, lock
        self._superseded = [p for p in partial.partials_of(target) if p != part]
        self.journal = JournalWriter(partial.journal_path(part), append_at=journal_bytes)
        with Journal(self.journal.path) as j:
            before = RunContents(j)
        self._last_snapshot_day = (before.snapshot_times or [math.nan])[-1]
        self._last_record_day = before.last_time_days
        self.journal.append("resumed", {"step": engine.state.step, "command_line": " ".join(sys.argv)})
        self._arm()
        return self

    def _setup(self, scenario):
        self.scenario = scenario
        self._snapshot_steps = snapshot_steps(scenario)
        self._buffer: list[dict] = []
        self._last_flush = time.monotonic()
        self._last_snapshot_day = math.nan
        self._last_record_day = math.nan
        self._checkpoint_every = float(scenario.output.checkpoint_every_seconds)
        self._next_checkpoint = time.monotonic() + self._checkpoint_every
        self._armed = False
        self.file = True   # open until closed (the name older callers test)

    def _arm(self):
        self._armed = True
        _stop["recorders"] += 1

    def _disarm(self):
        if self._armed:
            self._armed = False
            _stop["recorders"] -= 1

    @property
    def journal_path(self) -> Path:
        return self.journal.path

    # ------------------------------------------------------------------ recording
    def record(self, engine):
        if engine.time_days == self._last_record_day:
            return  # already recorded (a compare arm forked at step 0 starts where its history ends)
        self._buffer.append(engine.observe())
        self._last_record_day = engine.time_days
        step = engine.state.step
        if step in self._snapshot_steps or step >= self.scenario.simulation.steps:
            self._flush()
            self._snapshot(engine)
        elif (len(self._buffer) >= FLUSH_EVERY
              or time.monotonic() - self._last_flush >= FLUSH_SECONDS):
            self._flush()
        stop = _stop["signum"] if self._armed else None
        if 0 < step < self.scenario.simulation.steps and (
                stop is not None or (self._checkpoint_every > 0
                                     and time.monotonic() >= self._next_checkpoint)):
            self.checkpoint(engine)
        if stop is not None:
            raise Interrupted(stop, f"day {engine.time_days:g}")

    def record_final(self, engine, reason: str = "progression"):
        """The run ends here, before its horizon (off study at progression, or its tumour
        eradicated): the last snapshot, as :meth:`record` writes at the horizon."""
        self._flush()
        self._snapshot(engine)
        self.journal.append("off_study", {"day": float(engine.time_days), "reason": reason})

    def _flush(self):
        if not self._buffer:
            return
        rows = self._buffer
        blobs = {}
        for name, value in rows[0].items():
            if isinstance(value, dict):
                for key in value:
                    blobs[f"{name}/{key}"] = np.array([r[name][key] for r in rows],
                                                      dtype=np.float64)
            else:
                blobs[name] = np.array([r[name] for r in rows])
        self.journal.append("records", {"n": len(rows)},
                            {k: (v, "raw", 0) for k, v in blobs.items()})
        self._buffer = []
        self._last_flush = time.monotonic()

    def _snapshot(self, engine):
        if engine.time_days == self._last_snapshot_day:
            return
        level = self.scenario.output.compression
        s = engine.state
        frames = {"cell_type": (s.grid(), "deflate", level),
                  "clone": (s.grid(s.clone), "deflate", level)}
        for name in self.scenario.output.snapshot_fields:
            frames[f"fields/{name}"] = (engine.field(name).astype(np.float32),
                                        "shuffle+deflate", level)
        self.journal.append("snapshot", {"time_days": engine.time_days,
                                         "step": engine.state.step}, frames)
        self._last_snapshot_day = engine.time_days

    def checkpoint(self, engine):
        """Write the engine's whole state now (records flushed first)."""
        if self.partial is None:
            return
        started = time.monotonic()
        self._flush()
        self.journal.sync()
        tmp = atomic.unique_sibling(partial.checkpoint_path(self.partial), "tmp")
        try:
            checkpoint.save(engine, tmp, dict(
                step=engine.state.step, time_days=engine.time_days,
                journal_bytes=self.journal.size, software_version=software_version(),
                git_commit=git_commit_cached(), scenario_sha256=self.scenario.sha256,
                seed=self.scenario.simulation.seed,
                replicate=self.scenario.simulation.replicate,
                created=datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds")))
            if journal_mod.write_hook is not None:
                journal_mod.write_hook("checkpoint")
            atomic.replace(tmp, partial.checkpoint_path(self.partial))
        finally:
            tmp.unlink(missing_ok=True)
        cost = time.monotonic() - started
        self._next_checkpoint = time.monotonic() + max(self._checkpoint_every,
                                                       cost / CHECKPOINT_COST_SHARE)

    def series(self) -> dict:
        """Every record so far, named as ``/timeseries``."""
        self._flush()
        with Journal(self.journal.path) as j:
            return RunContents(j).series()

    def write_doses(self, doses):
        """``doses``: the regimen's dose log (step, day, drug, amount_mg, reason): the doses
        actually given, rules included."""
        self.journal.append("doses", {"rows": [[int(d.step), float(d.day), str(d.drug),
                                                float(d.amount_mg), str(d.reason)]
                                               for d in doses]})

    def write_summary(self, values: dict):
        self.journal.append("summary", {"values": values})

    def write_cohort(self, values: dict):
        self.journal.append("cohort", {"values": values})

    # ------------------------------------------------------------------ closing
    def close(self, status: str, reason: str = ""):
        """"complete": write the run file and rename it onto the target; "failed": the run
        stopped on an error of the scenario's values that a resume would meet again (a
        ScenarioError raised mid-run): its partial run goes; anything else: keep the
        partial run (``reason`` says why it stopped)."""
        if not self.file:
            return
        try:
            if status == "complete":
                self._flush()
            else:
                try:
                    self._flush()
                except OSError:
                    pass
            if self.target is None:
                return
            if status == "failed":
                self.journal.close()
                shutil.rmtree(self.partial, ignore_errors=True)
                return
            if status != "complete":
                try:
                    self.journal.append("stopped", {"reason": reason or status})
                except OSError:
                    pass  # (a full disk) the journal is whole without this note
                return
            self.journal.append("finished")
            self.journal.sync()
            self.journal.close()
            finish(self.partial, self.target)
            for old in self._superseded:
                atomic.remove(old)
        finally:
            self.journal.close()
            self._disarm()
            if self.lock is not None:
                self.lock.release()
            self.file = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.file:
            if exc_type is None:
                self.close("complete")
            elif isinstance(exc, ScenarioError):
                self.close("failed")
            else:
                reason = (exc.signal_name if isinstance(exc, Interrupted)
                          else "interrupted" if isinstance(exc, KeyboardInterrupt)
                          else f"{exc_type.__name__}: {exc}")
                self.close("incomplete", reason)
        return False


_commit = []


def git_commit_cached() -> str:
    if not _commit:
        _commit.append(git_commit())
    return _commit[0]


def finish(partial_dir: Path, target: Path) -> None:
    """Write a finished journal's run file and rename it onto ``target`` (whose lock the
    caller holds); the partial directory goes."""
    journal, contents = contents_of(partial_dir)
    build = Path(partial_dir) / partial.BUILD
    with journal:
        write_run_file(contents, build, "complete")
    if journal_mod.write_hook is not None:
        journal_mod.write_hook("build")
    atomic.replace(build, target)
    atomic.remove(partial_dir)


# ------------------------------------------------------------------ resuming
class CannotResume(OutputError):
    """The partial run cannot be continued (one line saying why)."""


@dataclass
class Resumption:
    """A partial run opened to continue: ``engine`` restored at its checkpoint, recording
    into ``recorder``; or (``engine`` None) a finished journal whose run file was only
    left to write, now written (``finished`` True)."""
    target: Path
    scenario: object
    engine: object = None
    recorder: Recorder | None = None
    finished: bool = False
    step: int = 0


def locate(source) -> tuple[Path, Path]:
    """(target, partial directory) of ``source``: a partial directory, or a target with a
    partial run beside it (the most recent one)."""
    part = find_partial(source)
    return partial.target_of(part), part


def open_for_resume(source, *, expect=None, notify=None, lock: TargetLock | None = None) -> Resumption:
    """Continue the partial run named by ``source`` from its checkpoint. ``expect``: the
    scenario the caller wants (refused unless the partial run's matches it exactly).

    :class:`CannotResume` (nothing is changed on disk) when it has no checkpoint, was
    written by another software version, by another scenario than ``expect``, or when the
    checkpoint does not fit this software's engine. A journal already marked finished
    only has its run file written.

    ``lock``: the target's lock, if the caller holds it. It passes to the returned
    recorder (or is released once a finished journal's run file is written); after
    :class:`CannotResume` it stays with the caller (who may start afresh under it)."""
    from simulator import scenario as scenario_mod
    from simulator.engine import Engine

    target, part = locate(source)
    own = lock is None
    lock = lock if lock is not None else TargetLock(target).acquire()
    try:
        journal, contents = contents_of(part)
        journal.close()
        scenario = scenario_mod.from_toml(contents.scenario_toml, str(part))
        if expect is not None and expect.sha256 != scenario.sha256:
            raise CannotResume(f"{part}: holds a run of another scenario (sha256 "
                               f"{scenario.sha256[:12]}, this command's {expect.sha256[:12]})")
        version = contents.attrs.get("software_version")
        if version != software_version():
            raise CannotResume(f"{part}: written by tumorsim {version}, this is "
                               f"{software_version()}")
        if contents.finished:
            finish(part, target)
            lock.release()
            return Resumption(target, scenario, finished=True, step=contents.steps_completed)
        ckpt = partial.checkpoint_path(part)
        if not ckpt.exists():
            raise CannotResume(f"{part}: stopped before its first checkpoint; nothing to "
                               "continue from (run it again)")
        attrs = checkpoint.read_attrs(ckpt)
        if attrs.get("scenario_sha256") != scenario.sha256 \
                or attrs.get("software_version") != software_version():
            raise CannotResume(f"{ckpt}: does not belong to this partial run's scenario and "
                               "software")
        if attrs["journal_bytes"] > journal_size(part):
            raise CannotResume(f"{ckpt}: refers to records its journal lacks")
        engine = Engine(scenario)
        try:
            checkpoint.restore(engine, ckpt)
        except checkpoint.CheckpointError as exc:
            raise CannotResume(f"{ckpt}: {exc}") from None
        moved = partial.new_partial(target)   # the run continues under this process's name
        os.replace(part, moved)
        for stale in moved.glob(f"{partial.CHECKPOINT}.tmp-*"):
            stale.unlink(missing_ok=True)
        recorder = Recorder._reopen(moved, target, scenario, lock, attrs["journal_bytes"],
                                    engine)
    except CannotResume:
        if own:
            lock.release()
        raise
    except BaseException:
        lock.release()
        raise
    if notify and contents.stopped:
        notify(f"{part.name} stopped ({contents.stopped}); continuing from step "
               f"{engine.state.step}")
    return Resumption(target, scenario, engine, recorder, step=engine.state.step)


def journal_size(part) -> int:
    with Journal(partial.journal_path(part)) as j:
        return j.valid_end
