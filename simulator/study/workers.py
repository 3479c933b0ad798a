"""Worker processes for studies and sweeps, how they stop, and the one-line report of a
failed run.

Workers are spawned (see :func:`worker_context`) and follow their coordinator:

- a worker ignores Ctrl-C (the terminal sends it to the whole process group; the
  coordinator decides what stops) and dies at SIGTERM (the default action). A worker's
  run is written under a partial name and its scratch files carry its pid, so a stopped
  worker leaves nothing that looks finished: the coordinator removes its scratch files
  (:func:`stop_pool`), and the next command on the directory removes or resumes partial
  runs;
- a watcher thread checks every ``PARENT_POLL_SECONDS`` that the coordinator is still its
  parent; when it is not (the coordinator died, even by SIGKILL), the worker exits at once,
  so no orphan finishes the queue, holds the coordinator's stdout open, or writes into a
  directory a new command is using;
- a worker holds a shared lock on its study directory while it lives
  (``layout.hold_for_worker``), which a new coordinator waits on;
- the coordinator stops at SIGINT / SIGTERM (:func:`raise_on_signal`, installed by the
  command line) and checks again between results, since Python drops an exception raised
  where it cannot propagate (:func:`raise_if_signalled`);
- a worker exits without the interpreter's final garbage collections (as the ``tumorsim``
  program does, :func:`skip_final_collection`): the coordinator waits for its workers to
  exit, and walking what Numba's compilations left took most of the 0.5-0.6 s a pool
  that had compiled ahead took to stop (0.12 s without).
"""
from __future__ import annotations

import atexit
import gc
import os
import signal
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

from simulator.schema import ScenarioError

PARENT_POLL_SECONDS = 0.5
EXIT_TERMINATED = 128 + signal.SIGTERM
SCHEDULER_TIMEOUT_SECONDS = 5


# ------------------------------------------------------------------ the coordinator's signals
class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so the output file is closed as incomplete."""


_received = {"signum": None}


def raise_on_signal(signum, frame):
    """The coordinator's SIGINT / SIGTERM handler: note the signal, raise for it."""
    _received["signum"] = signum
    raise_if_signalled()


def signal_received() -> int | None:
    """The signal :func:`raise_on_signal` last raised for since :func:`forget_signals`."""
    return _received["signum"]


def forget_signals() -> None:
    _received["signum"] = None


def raise_if_signalled() -> None:
    """Raise again for a signal whose exception was lost. The handler runs wherever the
    main thread is, and Python prints and drops an exception raised inside a weak-reference
    callback, a ``__del__`` or a garbage collection ("Exception ignored in ..."): a Ctrl-C
    landing there would be lost and the study would run on to its end."""
    signum = _received["signum"]
    if signum is not None:
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


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


def skip_final_collection() -> None:
    """Let the interpreter exit without its final garbage collections, for a process
    about to end whose files are closed (the ``tumorsim`` program, pool workers). Numba's
    compiler leaves hundreds of thousands of objects behind even when every kernel comes
    from its cache, and walking them at exit took ~0.1 s of a ~1 s warm start
    (benchmarks/README.md, ``bench_startup.py``). ``gc.freeze`` moves every tracked object
    out of the collector's reach; the memory goes back to the system with the process."""
    gc.freeze()


def worker_init(parent_pid: int, directory: str | None = None):
    """Initializer of every pool worker. It does not touch NUMBA_NUM_THREADS: Numba reads
    that variable again at every compilation, and changing it once Numba's threads exist
    fails every run that compiles a kernel (an empty cache); the thread count is set per
    task with ``numba.set_num_threads`` (``engine.set_threads``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    atexit.register(skip_final_collection)  # runs before the interpreter's final collections
    if directory is not None:
        from simulator.study.layout import hold_for_worker
        hold_for_worker(directory)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True,
                     name="tumorsim-parent-watch").start()


def _watch_parent(parent_pid: int):
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(EXIT_TERMINATED)


def start_pool(workers: int, directory=None):
    from concurrent.futures import ProcessPoolExecutor
    return ProcessPoolExecutor(max_workers=workers, mp_context=worker_context(),
                               initializer=worker_init,
                               initargs=(os.getpid(), None if directory is None
                                         else str(directory)))


def stop_pool(pool, directory=None, timeout: float = 5.0):
    """Stop a pool now: cancel queued tasks, SIGTERM the workers, SIGKILL any still alive
    after ``timeout``, then remove the scratch files they leave (``*-<pid>.h5``)."""
    # the executor keeps its processes in a private dict (stable since Python 3.2) and its
    # manager thread in a private attribute (since 3.9), both dropped by shutdown()
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + timeout
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)
    # the manager thread closes its wake-up pipe once the workers are gone; an exit while
    # it does so can race Python's own exit hook, which writes to that pipe (CPython 3.11:
    # "OSError: Bad file descriptor" and a traceback at a SIGTERMed compare)
    if manager is not None:
        manager.join(max(1.0, deadline - time.monotonic()))
    if directory is not None:
        for p in processes:
            for scratch in (Path(directory) / "runs").glob(f".*-{p.pid}.h5"):
                scratch.unlink(missing_ok=True)


def spawned_processes_can_start() -> bool:
    """A spawned process first re-runs the parent's main script from its path; a script read
    from standard input (``python - < script``) has no such file, and every worker would die
    at start with a traceback. ``python -c``, ``-m``, a file and a notebook are fine."""
    import sys
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    return path is None or os.path.exists(path)


def execute(fn, jobs, collect, workers: int, scheduler: str | None, directory):
    """Run ``fn(*job)`` for every job: here (one worker), on a local pool of spawned
    workers, or on a Dask cluster; ``collect`` gets each result as it arrives. An
    interruption (Ctrl-C, SIGTERM) stops the workers before it propagates. Where spawned
    workers cannot start (a script read from standard input), the jobs run here, with a
    warning: the results do not depend on the number of workers."""
    if workers > 1 and not scheduler and not spawned_processes_can_start():
        import warnings
        warnings.warn(f"{workers} worker processes cannot start from a script read from "
                      "standard input (they re-run the main script from its file): running "
                      "in this process instead; save the script to a file for the workers",
                      RuntimeWarning, stacklevel=2)
        workers = 1
    if scheduler:
        _execute_dask(fn, jobs, collect, scheduler, directory)
    elif workers <= 1:
        for job in jobs:
            raise_if_signalled()
            collect(fn(*job))
    else:
        pool = start_pool(workers, directory)
        try:
            pending = {pool.submit(fn, *job) for job in jobs}
            while pending:
                done, pending = wait(pending, PARENT_POLL_SECONDS, FIRST_COMPLETED)
                raise_if_signalled()
                for future in done:
                    collect(future.result())
        except BaseException:
            stop_pool(pool, directory)
            raise
        pool.shutdown()


def _execute_dask(fn, jobs, collect, scheduler: str, directory):
    from distributed import Client, as_completed as dask_completed
    try:
        client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_SECONDS}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ScenarioError(f"cannot reach the Dask scheduler {scheduler!r} "
                            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
                            source="--scheduler") from None
    with client:
        futures = [client.submit(fn, *job, pure=False,
                                 key=f"tumorsim-{Path(directory).name}-{i}-{os.getpid()}")
                   for i, job in enumerate(jobs)]
        try:
            for future in dask_completed(futures):
                raise_if_signalled()
                collect(future.result())
        except BaseException:
            client.cancel(futures)
            raise


def check_scheduler(address: str) -> str:
    """A Dask scheduler address ``PROTOCOL://HOST:PORT`` that accepts a connection, or
    one line (within SCHEDULER_TIMEOUT_SECONDS) saying why not."""
    import socket
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
        parts = None
    if parts is None or parts.scheme not in ("tcp", "tls") or not host or not port:
        raise ScenarioError(f"expected tcp://HOST:PORT, got {address!r}", source="--scheduler")
    try:
        socket.create_connection((host, port), timeout=SCHEDULER_TIMEOUT_SECONDS).close()
    except OSError as exc:
        raise ScenarioError(f"cannot reach the Dask scheduler at {address} "
                            f"({exc.strerror or exc})", source="--scheduler") from None
    return address


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))
