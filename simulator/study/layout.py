"""The study directory: arms, where each run's file lives, whether a finished run is the one
the command asks for, and the rules that keep the directory truthful.

- A run is written under a partial name unique to the writing process (a journal and
  checkpoint folder ``replicate-000.h5.partial-<pid>-<n>/``, see ``output.atomic``) and
  renamed into place only when complete, so ``runs/<arm>/replicate-NNN.h5`` holds a
  complete run or nothing; an interrupted run is resumed from its checkpoint.
- A finished run is reused only when it :func:`matches` what the command would write now:
  the same resolved scenario (after ``--set`` and the cohort draw, so also the same seed
  and replicate; compared by ``scenario_sha256``) and the same software version.
- One coordinator at a time per directory (:class:`StudyLock`); before it starts, the
  workers of an earlier, killed coordinator must have exited (they stop within seconds of
  their coordinator, see ``study.workers``).
- Study-level files (study.h5, summary.csv, arms.csv, sweep.csv) are written to a
  temporary name and renamed (:func:`atomic_path`).
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import os
import secrets
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from simulator.output.runfile import software_version
from simulator.schema import ScenarioError

LOCK_NAME = ".tumorsim.lock"
WORKERS_LOCK_NAME = ".tumorsim-workers.lock"
# Workers exit within a second of their coordinator's death (study.workers);
# a new coordinator waits a little longer than that for them before giving up.
OLD_WORKERS_WAIT_SECONDS = 20.0
# What a study or sweep writes at the top of its directory (moved aside by --fresh).
STUDY_OUTPUTS = ("runs", "study.h5", "summary.csv", "arms.csv", "figures", "sweep.csv",
                 "sobol.csv")


@dataclass(frozen=True)
class Arm:
    name: str
    source: str
    toml: str          # the resolved scenario, as text (picklable, hashable)


def run_path(directory, arm: str, replicate: int) -> Path:
    return Path(directory) / "runs" / arm / f"replicate-{replicate:03d}.h5"


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary name beside ``path``; rename it to ``path`` if the block succeeds,
    remove it if not. Readers see the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def is_complete(path) -> bool:
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("status") == "complete"
    except (OSError, KeyError):
        return False


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def mismatch(path, scenario) -> str | None:
    """Why the complete run at ``path`` is not what ``scenario`` would give now (None if
    it is): the first differing scenario key, "key: on disk vs now", or the version."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            sha = _text(f.attrs.get("scenario_sha256", ""))
            version = _text(f.attrs.get("software_version", ""))
            toml = _text(f["provenance/scenario_toml"][()]) if sha != scenario.sha256 else ""
    except (OSError, KeyError):
        return "not a readable run file"
    if sha != scenario.sha256:
        return _first_difference(toml, scenario.to_toml())
    if version != software_version():
        return f"software_version {version} on disk vs {software_version()} now"
    return None


def matches(path, scenario) -> bool:
    return is_complete(path) and mismatch(path, scenario) is None


def _first_difference(old: str, new: str) -> str:
    try:
        a, b = tomllib.loads(old), tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        return "the stored scenario differs"
    # a value a [[cohort]] entry draws differs whenever the seed or the entry does: name
    # the cause first
    drawn = {entry.get("key") for table in (a, b) for entry in table.get("cohort", [])
             if isinstance(entry, dict)}
    keys = sorted(differences(a, b), key=lambda k: (k in drawn, k))
    if not keys:
        return "the stored scenario differs"
    key = keys[0]
    more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
    return f"{key} {_lookup(a, key)} on disk vs {_lookup(b, key)} now{more}"


def differences(a, b, prefix=""):
    """Key paths whose values differ between two nested tables."""
    for key in set(a) | set(b):
        va, vb = a.get(key), b.get(key)
        path = f"{prefix}{key}"
        if isinstance(va, dict) and isinstance(vb, dict):
            yield from differences(va, vb, path + ".")
        elif va != vb:
            yield path


def _lookup(table, key: str):
    for part in key.split("."):
        if not isinstance(table, dict) or part not in table:
            return "(absent)"
        table = table[part]
    return table


def check_reusable(path, scenario, label: str):
    """Stop the study (ScenarioError, one line) if a complete run at ``path`` was made by
    another command; incomplete or missing runs are simply (re)done."""
    if not is_complete(path):
        return
    why = mismatch(path, scenario)
    if why is not None:
        raise ScenarioError(f"{label} on disk was made by another command: {why}; rerun "
                            "with --fresh to move the old results aside, or choose another "
                            "-o directory", source=str(path))


# ---------------------------------------------------------------------- the directory
def prepare(directory) -> Path:
    """Create (or check) a study directory: refuse a path that is a file, or a directory
    holding files with a study output's name (summary.csv, study.h5, ...) but no study
    (no runs/), which the study would replace; other files are left alone."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ScenarioError("exists and is not a directory (studies write a directory)",
                            source=str(directory))
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScenarioError(f"cannot create the directory ({exc.strerror or exc})",
                            source=str(directory)) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ScenarioError("cannot write into this directory (permission denied)",
                            source=str(directory))
    clash = [n for n in STUDY_OUTPUTS[1:] if (directory / n).exists()]
    if clash and not (directory / "runs").is_dir():
        raise ScenarioError(f"holds a {clash[0]} that no tumorsim study wrote (no runs/ beside "
                            "it); choose another -o directory: a study replaces only its own "
                            "outputs", source=str(directory))
    return directory


def move_aside(directory: Path) -> Path | None:
    """``--fresh``: move the study outputs into ``DIR/previous-<time>/`` (nothing is
    deleted); returns that directory, or None if there was nothing to move."""
    present = [name for name in STUDY_OUTPUTS if (directory / name).exists()]
    present += [p.name for p in directory.glob("heatmap_*.png")]
    if not present:
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = directory / f"previous-{stamp}"
    n = 1
    while target.exists():
        n += 1
        target = directory / f"previous-{stamp}-{n}"
    target.mkdir()
    for name in present:
        os.replace(directory / name, target / name)
    return target


def remove_scratch(directory: Path):
    """Scratch files of killed writers (pre-treatment tumours, temporary study files). Call
    only while holding the StudyLock: then no live writer owns them. Partial runs stay for
    the task that resumes their run (``runner.run_arm``, ``runner.run_or_resume``)."""
    runs = directory / "runs"
    patterns = [(runs, ".pretreatment-*.h5"), (directory, ".*.tmp")]
    for folder, pattern in patterns:
        if folder.is_dir():
            for path in folder.glob(pattern):
                path.unlink(missing_ok=True)


class StudyLock:
    """An exclusive lock on a study directory for one coordinator (``flock``, so the
    kernel drops it when the holder dies, however it dies). Taking it also waits for the
    worker processes of an earlier coordinator on this directory to exit: each holds a
    shared lock on the workers' lock file while it lives (``hold_for_worker``)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.fd = None

    def __enter__(self):
        path = self.directory / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ScenarioError(f"in use by another tumorsim command (pid {holder}); "
                                    "wait for it to finish or choose another -o directory",
                                    source=str(self.directory)) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        try:
            self._wait_for_old_workers()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_for_old_workers(self):
        fd = os.open(self.directory / WORKERS_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + OLD_WORKERS_WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        raise ScenarioError(
                            "worker processes of an earlier command are still running here; "
                            "try again when they have stopped", source=str(self.directory)
                        ) from None
                    time.sleep(0.2)
        finally:
            os.close(fd)

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)   # releases the flock; the file stays (harmless, reused)
            self.fd = None
        return False


_worker_locks: dict[str, int] = {}


def hold_for_worker(directory):
    """A worker process's shared lock on its study directory, held until it exits."""
    key = str(Path(directory).resolve())
    if key in _worker_locks:
        return
    fd = os.open(Path(directory) / WORKERS_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)
    _worker_locks[key] = fd

