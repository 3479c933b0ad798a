"""Simulating parameter sets: each task is one parameter set x one replicate, every arm from
one shared pre-treatment tumour (``comparison.run_replicate``: common random numbers, the
same virtual patient in every arm and, because every point uses the same seed, at every
parameter set). Tasks run serially, on a local process pool or on Dask, and each finished
task is appended to the store at once.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from simulator import scenario as scenario_mod
from simulator.output.runfile import read_run, software_version
from simulator.study.calibration.store import Store, task_key
from simulator.study.layout import Arm


@dataclass(frozen=True)
class Task:
    wave: int | str               # a wave number, or "check" for the predictive check
    point: int
    replicate: int
    values: dict                  # {parameter key: value}
    arms: tuple[Arm, ...]         # resolved arms with the values (and seed) in place
    key: str = field(default="")

    @classmethod
    def make(cls, wave, point, replicate, values, arms):
        key = task_key([a.toml for a in arms], replicate, software_version())
        return cls(wave, point, replicate, dict(values), tuple(arms), key)


def run_task(task: Task, directory: str, threads: int = 1, keep_runs: bool = False) -> dict:
    """Run one task and return its store record (never raises: a failure is recorded)."""
    from simulator.study.comparison import run_replicate
    from simulator.study.runner import assess_run
    scratch = Path(directory) / "runs" / f"{task.wave}-{task.point:04d}"
    record = dict(key=task.key, wave=task.wave, point=task.point, replicate=task.replicate,
                  values=task.values, status="complete", error="", arms={})
    for outcome in run_replicate(list(task.arms), task.replicate, str(scratch), threads):
        if outcome.status == "failed":
            record.update(status="failed", error=f"arm {outcome.arm}: {outcome.error}")
            continue
        series, text, _ = read_run(outcome.path)
        endpoints = assess_run(scenario_mod.from_toml(text, outcome.path), series)
        record["arms"][outcome.arm] = endpoints.to_dict()
    if not keep_runs:
        for arm in task.arms:
            path = scratch / "runs" / arm.name / f"replicate-{task.replicate:03d}.h5"
            path.unlink(missing_ok=True)
    return record


class Progress:
    """Log lines for a long batch of tasks: after each tenth of them (and the last), how
    many are done, how many failed, the minutes so far and a linear estimate of the rest.
    A calibration runs for an hour in the background; its log should say how far it is."""

    def __init__(self, label: str, total: int, log, clock=time.monotonic):
        self.label, self.total, self.log, self.clock = label, total, log, clock
        self.done = self.failed = 0
        self.start = clock()
        self.every = max(1, -(-total // 10))   # a tenth, rounded up
        self.next_report = self.every

    def __call__(self, record: dict) -> None:
        self.done += 1
        self.failed += record.get("status") != "complete"
        if self.done < self.next_report and self.done < self.total:
            return
        self.next_report += self.every
        minutes = (self.clock() - self.start) / 60.0
        left = minutes * (self.total - self.done) / self.done
        failed = f", {self.failed} failed" if self.failed else ""
        self.log(f"{self.label}: {self.done} of {self.total} tasks done{failed}, "
                 f"{minutes:.1f} min" + (f", ~{left:.0f} min left" if self.done < self.total
                                          else ""))


def execute(tasks: list[Task], store: Store, directory, *, workers: int = 1,
            scheduler: str | None = None, keep_runs: bool = False, progress=None,
            log=print) -> list[dict]:
    """Records of ``tasks`` in task order: stored ones reused, the rest run and appended.
    ``progress``: called with each new record, or a label for :class:`Progress` lines
    through ``log``.
    Each task runs on one Numba thread: many small tasks parallelise across workers, and a
    multi-thread parallel region stalls whenever another process holds a core (DESIGN.md)."""
    from simulator.study.precompile import compile_ahead_for
    from simulator.study.workers import execute as execute_jobs
    todo = [t for t in tasks if t.key not in store]
    if isinstance(progress, str):  # a label: log lines through ``log``
        progress = Progress(progress, len(todo), log) if todo else None
    threads = 1
    directory = str(directory)

    def finished(record):
        store.append(record)
        if progress is not None:
            progress(record)

    Path(directory).mkdir(parents=True, exist_ok=True)
    jobs = [(t, directory, threads, keep_runs) for t in todo]
    if todo and not scheduler:  # tasks differ in values, not in the kernels they call
        compile_ahead_for([scenario_mod.from_toml(a.toml) for a in todo[0].arms],
                          workers if len(todo) > 1 else 1)
    # one path for every executor: workers follow this coordinator, hold the directory
    # and stop with it (``study.workers``)
    execute_jobs(run_task, jobs, finished, workers if len(todo) > 1 else 1, scheduler,
                 directory)
    if not keep_runs:
        shutil.rmtree(Path(directory) / "runs", ignore_errors=True)
    return [store.get(t.key) for t in tasks]
