"""Worker processes for studies and sweeps, and the one-line report of a failed run."""
from __future__ import annotations

import os
import traceback
from pathlib import Path

from simulator.schema import ScenarioError


def error_line(exc: BaseException) -> str:
    if isinstance(exc, ScenarioError):
        return exc.line()
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return f"{exc.__class__.__name__}: {exc}{where}"


def worker_context():
    """Spawned, not forked, workers: a process whose OpenMP runtime (Numba's parallel
    layer) has started cannot safely fork, and a forked worker dies at its first parallel
    kernel. Chosen per pool, not globally, so importing tumorsim changes nothing."""
    import multiprocessing
    return multiprocessing.get_context("spawn")


def worker_init(threads: int):
    os.environ["NUMBA_NUM_THREADS"] = str(threads)


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))
