"""Exclusive, atomic writes (simulator.output.atomic): the target always holds the previous
complete file or the new complete one, and a second writer is refused without harm."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT
from simulator.output import atomic

HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from simulator.output.atomic import TargetLock
    lock = TargetLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(60)
""")


def _hold_lock(path):
    """A separate process holding ``path``'s lock (flock locks are per open file, so a
    second lock in this process would not be refused)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(ROOT)), str(path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_is_refused_and_the_lock_dies_with_its_holder(tmp_path):
    target = tmp_path / "o.h5"
    target.write_bytes(b"the first writer's file")
    holder = _hold_lock(target)
    try:
        assert atomic.is_locked(target)
        with pytest.raises(atomic.Busy, match=rf"o.h5: another tumorsim process \(pid {holder.pid}\)"):
            atomic.TargetLock(target).acquire()
        with pytest.raises(atomic.Busy):
            with atomic.writing(target) as work:
                work.tmp.write_bytes(b"second")
        assert target.read_bytes() == b"the first writer's file"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel dropped the dead holder's lock: no stale marker blocks the next writer
    assert not atomic.is_locked(target)
    with atomic.TargetLock(target):
        assert atomic.lock_path(target).read_text().strip() == str(os.getpid())
    assert not atomic.lock_path(target).exists()  # a released lock leaves no file


def test_writing_replaces_only_when_complete(tmp_path):
    target = tmp_path / "summary.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic.writing(target) as work:
            work.tmp.write_text("half")
            raise RuntimeError("the writer failed")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv"]
    with atomic.writing(target) as work:
        assert work.replacing and work.tmp.parent == tmp_path and work.tmp.suffix == ".csv"
        assert target.read_text() == "old\n"  # untouched until the work is complete
        work.tmp.write_text("new\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv"]


def test_foreign_files_and_directories_are_not_replaced(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    ours = lambda p: p.read_text().startswith("tumorsim")  # noqa: E731
    with pytest.raises(atomic.Refused, match="notes.txt: exists and is not a tumorsim output; "
                                             r"refusing to replace it \(--overwrite"):
        with atomic.writing(notes, owned=ours) as work:
            work.tmp.write_text("tumorsim output")
    assert notes.read_text() == "my notes"
    with atomic.writing(notes, owned=ours, overwrite=True) as work:
        work.tmp.write_text("tumorsim output")
    assert notes.read_text() == "tumorsim output"
    with pytest.raises(atomic.Refused, match="is a directory"):
        with atomic.writing(tmp_path, overwrite=True):
            pass


def test_unique_names_never_reuse_a_left_over_name(tmp_path):
    target = tmp_path / "o.h5"
    names = {atomic.unique_sibling(target, "partial", directory=True) for _ in range(5)}
    assert len(names) == 5 and all(p.is_dir() for p in names)
    pid = os.getpid()
    assert all(p.name.startswith(f"o.h5.partial-{pid}-") for p in names)
    # a name a dead process with this pid left behind is skipped, never reused
    taken = tmp_path / f"o.h5.tmp-{pid}-{int(max(p.name.rsplit('-', 1)[1] for p in names)) + 1}"
    taken.write_text("left over")
    fresh = atomic.unique_sibling(target, "tmp")
    assert fresh != taken and taken.read_text() == "left over"
