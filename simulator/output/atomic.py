"""Exclusive, atomic writes of output files: nothing on disk is ever half-written.

Every tumorsim output is written under a name no other process or attempt uses, beside its
target (so on the same file system), and renamed onto the target only when it is complete
(``os.replace``, atomic on POSIX): the target holds either the previous complete file or
the new complete one, never a half-written file.

Writers of one target exclude each other with a lock that dies with its process:
``fcntl.flock`` on a hidden lock file beside the target, ``.NAME.lock``, holding the
holder's pid. The kernel drops the lock when the holder exits, however it exits (SIGKILL
and out-of-memory kills included), so a stale marker can never block a later writer. A
second writer of a locked target fails at once with :class:`Busy` (one line naming the
holder's pid); the first writer is untouched. The holder removes the lock file when it
releases the lock; a writer that opened the file just before it was removed notices (the
inode under the name changed) and opens it again.

No writer replaces an existing file that is not its own kind of output (``owned(path)`` is
False) unless asked to (``overwrite=True``, the CLI's ``--overwrite``): :class:`Refused`.

The API (for run files, study outputs, figures)::

    with atomic.writing("study/summary.csv", owned=looks_like_csv) as work:
        write_csv(work.tmp)          # a unique name beside the target, same suffix
        if work.replacing: ...       # an existing file of ours is being replaced
    # returned normally: work.tmp was renamed onto the target (and fsynced);
    # raised: the target is untouched and work.tmp is gone

Lower-level pieces: :class:`TargetLock` (``with TargetLock(path): ...``), :func:`unique_sibling`
(create a file or directory under a fresh name beside a target), :func:`check_replaceable`
and :func:`replace` (fsync, rename, fsync the directory).
"""
from __future__ import annotations

import errno
import fcntl
import itertools
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

_attempts = itertools.count(1)


class OutputError(ValueError):
    """A missing, corrupt, foreign, busy or protected output file: one line naming the file
    (exit status 2 in the CLI). ``simulator.output.runfile`` re-exports it."""


class Busy(OutputError):
    """Another live process holds the target's lock."""


class Refused(OutputError):
    """The target exists and may not be replaced."""


def lock_path(path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


class TargetLock:
    """An exclusive lock on ``path`` (which need not exist) that dies with this process."""

    def __init__(self, path):
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "TargetLock":
        name = lock_path(self.path)
        while True:
            try:
                name.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_pid(fd)
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                who = f" (pid {holder})" if holder else ""
                raise Busy(f"{self.path}: another tumorsim process{who} is writing it; wait "
                           "for it to finish or write elsewhere") from None
            if _same_file(fd, name):
                break
            os.close(fd)  # the previous holder removed this lock file: take the new one
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        name = lock_path(self.path)
        if _same_file(self._fd, name):
            name.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "TargetLock":
        return self if self.held else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(path) -> bool:
    """True while some live process holds ``path``'s lock (a snapshot: it may change)."""
    name = lock_path(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _read_pid(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def _same_file(fd: int, name: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(name)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def unique_sibling(path, tag: str, *, directory: bool = False, hidden: bool = False,
                   keep_suffix: bool = False) -> Path:
    """Create an empty file (or a directory) beside ``path`` under a name used by no other
    process or attempt: ``NAME.<tag>-<pid>-<n>`` (``.STEM.<tag>-<pid>-<n>SUFFIX`` with
    ``hidden`` and ``keep_suffix``). Created exclusively, so a name left by a dead process
    that had the same pid is skipped, never reused."""
    path = Path(path)
    for n in _attempts:
        stem, suffix = (path.stem, path.suffix) if keep_suffix else (path.name, "")
        name = f"{'.' if hidden else ''}{stem}.{tag}-{os.getpid()}-{n}{suffix}"
        candidate = path.with_name(name)
        try:
            if directory:
                os.mkdir(candidate)
            else:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                                 0o644))
        except FileExistsError:
            continue
        return candidate
    raise AssertionError("unreachable")


def check_replaceable(path, owned: Callable[[Path], bool] | None = None,
                      overwrite: bool = False, what: str = "tumorsim output") -> bool:
    """Whether writing ``path`` replaces an existing file (True) or creates it (False);
    :class:`Refused` if it exists and is a directory, or is not ``owned`` (not one of
    ours) and ``overwrite`` is not set."""
    path = Path(path)
    if path.is_dir():
        raise Refused(f"{path}: is a directory")
    if not path.exists():
        return False
    if not overwrite and owned is not None and not owned(path):
        raise Refused(f"{path}: exists and is not a {what}; refusing to replace it "
                      "(--overwrite replaces it)")
    return True


def fsync_directory(directory) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename itself is still atomic
    finally:
        os.close(fd)


def replace(src, dst) -> None:
    """Rename the finished ``src`` onto ``dst``: its data reach the disk first, then the
    rename, then the directory entry — after a power loss ``dst`` is the old file or the
    new one."""
    src, dst = Path(src), Path(dst)
    if src.is_file():
        with open(src, "rb") as f:
            os.fsync(f.fileno())
    os.replace(src, dst)
    fsync_directory(dst.parent)


def remove(path) -> None:
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@dataclass
class Work:
    target: Path
    tmp: Path
    replacing: bool     # an existing (owned) file will be replaced


@contextmanager
def writing(path, *, owned: Callable[[Path], bool] | None = None, overwrite: bool = False,
            what: str = "tumorsim output", lock: TargetLock | None = None):
    """Write ``path`` atomically and exclusively (see the module docstring). ``owned``:
    tells an output of this kind (None: any existing file may be replaced). ``lock``: a
    lock on ``path`` already held by the caller (kept held on exit)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    held = lock if lock is not None else TargetLock(path).acquire()
    try:
        replacing = check_replaceable(path, owned, overwrite, what)
        tmp = unique_sibling(path, "tmp", hidden=True, keep_suffix=True)
        try:
            yield Work(path, tmp, replacing)
            replace(tmp, path)
        finally:
            if tmp.exists():
                remove(tmp)
    finally:
        if lock is None:
            held.release()
