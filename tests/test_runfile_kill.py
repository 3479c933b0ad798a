"""SIGKILL at any moment: what is left reads as an incomplete run holding every record up to
its last flush, and resumes to the file the uninterrupted run writes.

Each case starts ``tumorsim run`` in a child process and kills it with SIGKILL: at fixed
wall times (during interpreter start-up, and twice while it steps — the child then
steps no faster than 10 ms a step, so that it is still going), or at an exact point,
paused there by a hook (``simulator.output.journal.write_hook``): half-way through writing
the journal's header, its first and a later batch of records, its first and a later
snapshot (fields included), with a second checkpoint written but not yet renamed over the
first (again at no more than a step per 10 ms: checkpoints are deferred to cost <= 10%),
half-way through the final "finished" entry, and with the run file written but not yet
renamed onto its target. The child reports how many records it had appended before the
pause, so "every record up to the last flush" is checked exactly there.

After each kill: the target does not exist; ``tumorsim inspect`` reads the partial run
(status incomplete); its records and snapshots equal the first records and snapshots of the
uninterrupted run, bit for bit; ``tumorsim recover`` writes an HDF5 file h5py reads with the
same contents. Then the run is resumed (``tumorsim resume``) — or, killed before its first
checkpoint, run again — and must end bit-identical to the uninterrupted run.
"""
import queue
import subprocess
import sys
import threading
import textwrap
import time

import h5py
import pytest

from conftest import ROOT, needs_jit
from runfile_compare import assert_same_run_file
from simulator import scenario as scenario_mod
from simulator.cli import main
from simulator.output import partial
from simulator.output.runfile import open_run
from simulator.study import runner

OVERRIDES = ["simulation.dimensions=[40,40]", "simulation.duration_days=50",
             "initial.tumor_radius_sites=4", "output.snapshot_every_days=5",
             "output.checkpoint_every_seconds=0.2"]

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from simulator.output import journal
    from simulator.output.journal import JournalWriter
    kind, count = sys.argv[1], float(sys.argv[2])
    seen, rows = {{}}, [0]
    append = JournalWriter.append

    def counting_append(self, entry_kind, meta=None, blobs=None):
        size = append(self, entry_kind, meta, blobs)
        if entry_kind == "records":
            rows[0] += meta["n"]
        return size

    def hook(entry_kind):
        seen[entry_kind] = seen.get(entry_kind, 0) + 1
        if entry_kind == "header" and seen[entry_kind] == 1:
            print("started", flush=True)
        if entry_kind == kind and seen[entry_kind] == count:
            print("paused", rows[0], flush=True)
            time.sleep(300)

    JournalWriter.append = counting_append
    journal.write_hook = hook
    if kind in ("None", "checkpoint"):  # at most a step per 10 ms: still going at the moment
        from simulator.engine import Engine
        step = Engine.step
        Engine.step = lambda self: (time.sleep(0.01), step(self))
    from simulator.cli import main
    sys.exit(main(["run", "-o", sys.argv[3], "--quiet", "--threads", "1", *sys.argv[4:]]))
""")

# (pause at: entry kind, its n-th occurrence) or (None, seconds after the start)
MOMENTS = {
    "during start-up": (None, -1.0),
    "header half-written": ("header", 1),
    "first records half-written": ("records", 1),
    "first snapshot half-written": ("snapshot", 1),
    "after 0.5 s": (None, 0.5),
    "third records half-written": ("records", 3),
    "fifth snapshot half-written": ("snapshot", 5),
    "new checkpoint not yet in place": ("checkpoint", 2),
    "after 1.5 s": (None, 1.5),
    "finished entry half-written": ("finished", 1),
    "run file written, not renamed": ("build", 1),
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("reference") / "reference.h5"
    runner.run_to_file(scenario_mod.load(None, OVERRIDES), path, threads=1)
    with h5py.File(path) as f:
        series = {name: f["timeseries"][name][()] for name in f["timeseries"]
                  if isinstance(f["timeseries"][name], h5py.Dataset)}
        snapshots = {name: f["snapshots"][name][()] for name in ("time_days", "cell_type", "clone")}
        snapshots.update({f"fields/{n}": f["snapshots/fields"][n][()]
                          for n in f["snapshots/fields"]})
    return path, series, snapshots


def _line(lines, word, timeout=120):
    """The child's next output line starting with ``word`` (None at its exit or timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None
        if line is None:
            return None
        if line.startswith(word):
            return line.split()


def _lines(child) -> queue.Queue:
    lines = queue.Queue()

    def read():
        for line in child.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _kill_at(out, kind, when):
    """Start a run and SIGKILL it; returns the records it had appended (paused kills)."""
    args = sum((["--set", o] for o in OVERRIDES), [])
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT)), str(kind), str(when), str(out),
         *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rows, line = None, ["skipped"]
    lines = _lines(child)
    try:
        if kind is None and when < 0:
            time.sleep(0.2)                            # still starting Python
        elif kind is None:
            line = _line(lines, "started")
            time.sleep(when)
        else:
            line = _line(lines, "paused")
            rows = int(line[1]) if line else None
    finally:
        child.kill()
        _, err = child.communicate(timeout=30)
    assert line, f"the run ended before the moment to kill it: {err}"
    return rows


@needs_jit
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigkill_leaves_a_readable_incomplete_run(tmp_path, reference, moment, capsys):
    ref_path, ref_series, ref_snapshots = reference
    out = tmp_path / "run.h5"
    kind, when = MOMENTS[moment]
    appended = _kill_at(out, kind, when)
    assert not out.exists()
    found = partial.partials_of(out)
    if not found:   # killed before its journal existed: nothing recorded, nothing to read
        assert kind in (None, "header") and (kind == "header" or when < 0)
        assert main(["run", "-o", str(out), "--quiet", "--threads", "1",
                     *sum((["--set", o] for o in OVERRIDES), [])]) == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]  # debris removed
        assert_same_run_file(ref_path, out, [])
        return
    part, = found
    with open_run(part) as f:
        assert f.attrs["status"] == "incomplete"
        n = f["timeseries/time_days"].shape[0]
        if appended is not None:
            assert n == appended, "records flushed before the kill are missing"
        assert f.attrs["steps_completed"] == max(n - 1, 0)
        for name, values in ref_series.items():
            got = f["timeseries"][name][()]
            expected = values if name == "clone" else values[:n]
            assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes(), name
        k = f["snapshots/time_days"].shape[0]
        if kind == "snapshot":
            assert k == when - 1   # the snapshot being written is not there, the others are
        for name, values in ref_snapshots.items():
            assert f["snapshots"][name][()].tobytes() == values[:k].tobytes(), name
    assert main(["inspect", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "status: incomplete" in shown and f"records: {n}" in shown
    assert main(["recover", str(out), "-o", str(tmp_path / "recovered.h5")]) == 0
    with h5py.File(tmp_path / "recovered.h5") as f:
        assert f.attrs["status"] == "incomplete" and f["timeseries/time_days"].shape == (n,)
    has_checkpoint = partial.checkpoint_path(part).exists()
    finished = kind == "build"
    status = main(["resume", str(out), "--quiet", "--threads", "1"])
    if not has_checkpoint and not finished:
        assert status == 2 and "before its first checkpoint" in capsys.readouterr().err
        assert main(["run", "-o", str(out), "--quiet", "--threads", "1",
                     *sum((["--set", o] for o in OVERRIDES), [])]) == 0
    else:
        assert status == 0
    assert_same_run_file(ref_path, out, ... if has_checkpoint and not finished else [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recovered.h5", "run.h5"]
