"""The command line as a user meets it: outputs, one-line errors, interruption."""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from conftest import ROOT, needs_jit
from simulator.cli import main

SMALL = ["--set", "simulation.dimensions=[60,50]", "--set", "simulation.duration_days=10",
         "--set", "initial.tumor_radius_sites=3"]


def _tumorsim(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True,
                          text=True, timeout=timeout)


@needs_jit
def test_run_writes_complete_self_describing_file(tmp_path, capsys):
    out = tmp_path / "run.h5"
    assert main(["run", "-o", str(out), "--seed", "4", *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "final tumour burden" in printed and "best response" in printed
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "complete"
        assert f.attrs["seed"] == 4
        for key in ("software_version", "replicate", "arm", "scenario_sha256", "created"):
            assert key in f.attrs
        toml = f["provenance/scenario_toml"][()].decode()
        assert "seed = 4" in toml
        ts = f["timeseries"]
        n = ts["time_days"].shape[0]
        assert n == 41  # initial record + 40 steps of 6 h
        for name in ("tumor_cells", "tumor_resistant", "t_cells", "suppressive_cells",
                     "divisions_total", "resistance_mutations_total"):
            assert ts[name].shape == (n,), name
        assert np.all(np.diff(ts["divisions_total"][()]) >= 0)
        cells = f["snapshots/cell_type"]
        assert cells.dtype == np.uint8 and cells.chunks == (1, 60, 50)
        assert cells.compression == "gzip"
        assert "tumor" in cells.attrs["flag_meanings"].split()
        assert len(cells.attrs["flag_values"]) == len(cells.attrs["flag_meanings"].split())
        assert cells.shape[0] == f["snapshots/time_days"].shape[0] >= 2
        for key in ("best_response", "response_class", "time_to_progression_days",
                    "durable_response"):
            assert key in f["summary"].attrs


@needs_jit
def test_xarray_reads_the_timeseries(tmp_path):
    xr = pytest.importorskip("xarray")
    out = tmp_path / "run.h5"
    assert main(["run", "-o", str(out), "--quiet", *SMALL]) == 0
    ds = xr.open_dataset(out, engine="h5netcdf", group="timeseries")
    assert ds["tumor_cells"].dims == ("time_days",)
    assert ds["tumor_by_clone"].dims == ("time_days", "clone")
    assert float(ds["time_days"][-1]) == pytest.approx(10.0)
    snaps = xr.open_dataset(out, engine="h5netcdf", group="snapshots")
    assert snaps["cell_type"].dims == ("time_days", "x", "y")
    assert snaps["cell_type"].shape[0] == snaps["time_days"].shape[0]


@pytest.mark.parametrize("args, words", [
    (["run", "nope.toml"], "nope.toml: no such file"),
    (["run", "--set", "simulation.dimensions=[10]"], "simulation.dimensions: needs 2 or 3"),
    (["run", "--set", "tumor.division_rate=1"], "did you mean 'division_rate_per_day'"),
    (["validate", "--set", "simulation.seed=-1", "DEFAULT"], "simulation.seed: must be >= 0"),
    (["inspect", "missing.h5"], "missing.h5: no such file"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, args, words):
    from simulator.scenario import library_dir
    args = [str(library_dir() / "default.toml") if a == "DEFAULT" else a for a in args]
    monkeypatch.chdir(tmp_path)
    result = _tumorsim(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert words in lines[0], lines[0]
    assert list(tmp_path.glob("*.h5")) == []  # nothing half-written


@needs_jit
def test_a_scenario_error_raised_mid_run_leaves_nothing_behind(tmp_path, monkeypatch):
    """Values that validate but fail in the first step (more births at a site than the
    per-site count holds): one line, exit 2, and no partial run left (a resume would fail
    the same way)."""
    from simulator.scenario import library_dir
    monkeypatch.chdir(tmp_path)
    result = _tumorsim("run", str(library_dir() / "tumor_only.toml"), "-o", "out.h5",
                       "--set", "simulation.dimensions=[8,8]", "--set",
                       "initial.tumor_radius_sites=2", "--set", "simulation.dt_hours=12",
                       "--set", "tumor.division_rate_per_day=5000", "--set",
                       "tumor.death_rate_per_day=1000", "--set",
                       "tumor.dead_clearance_rate_per_day=20000")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "simulation.dt_hours" in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_corrupt_output_file_is_one_line(tmp_path):
    bad = tmp_path / "corrupt.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    result = _tumorsim("inspect", str(bad))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "corrupt.h5: not a readable HDF5 file" in result.stderr
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    result = _tumorsim("inspect", str(foreign))
    assert result.returncode == 2 and "not a tumorsim run file" in result.stderr


@needs_jit
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_run_after_a_checkpoint(tmp_path, signum, status):
    """SIGTERM / Ctrl-C: one line, exit 128 + the signal; the run is left as a partial run
    marked incomplete, with a checkpoint of the very step it stopped at (nothing lost), and
    the target is not touched."""
    from simulator.output import checkpoint, partial
    from simulator.output.runfile import describe_run, find_partial
    out = tmp_path / "long.h5"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "run", "--quiet", "-o", str(out),
         "--set", "simulation.dimensions=[200,200]", "--set", "simulation.duration_days=100000",
         "--set", "simulation.dt_hours=1"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not partial.partials_of(out) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)
    live = describe_run(find_partial(out))   # read while the run writes it
    assert "status: running" in live and "its process is running" in live, live
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1, err
    name = signal.Signals(signum).name
    assert lines[0].startswith(f"tumorsim: interrupted ({name}) at day ") and \
        f"(incomplete); `tumorsim resume {out}` continues it" in lines[0], lines[0]
    assert not out.exists()
    part, = partial.partials_of(out)
    with h5py.File(_recovered(part, tmp_path), "r") as f:
        assert f.attrs["status"] == "incomplete"
        ts = f["timeseries"]
        n = ts["time_days"].shape[0]
        assert n > 1 and ts["tumor_cells"].shape == (n,)
        assert f.attrs["steps_completed"] == round(ts["time_days"][-1] * 24) == n - 1
    assert checkpoint.read_attrs(partial.checkpoint_path(part))["step"] == n - 1
    shown = _tumorsim("inspect", str(out)).stdout
    assert shown.count("status: incomplete") == 1 and f"checkpoint: step {n - 1}" in shown


def _recovered(part, tmp_path):
    result = _tumorsim("recover", str(part), "-o", str(tmp_path / "recovered.h5"))
    assert result.returncode == 0 and "status incomplete" in result.stdout, result.stderr
    return tmp_path / "recovered.h5"


def _signal_lands_in_an_import(signum):
    """What a C extension's module initialisation does with a signal's exception: it
    becomes ``ImportError: initialization failed`` (seen in CI: SIGTERM while matplotlib
    imported ``_image``)."""
    def work():
        try:
            signal.raise_signal(signum)
        except KeyboardInterrupt:
            raise ImportError("initialization failed") from None
        raise AssertionError("the signal's handler did not raise")
    return work


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_turned_into_another_exception_still_stops_a_study(signum, status, capsys):
    from simulator import cli
    assert cli._interruptible(_signal_lands_in_an_import(signum), "kept") == status
    err = capsys.readouterr().err
    assert err.startswith("tumorsim: terminated; kept" if signum == signal.SIGTERM
                          else "tumorsim: interrupted; kept"), err


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_turned_into_another_exception_still_stops_a_run(signum, status, tmp_path,
                                                                   capsys):
    from simulator import cli
    assert cli._stoppable(_signal_lands_in_an_import(signum), tmp_path / "x.h5", False) == status
    err = capsys.readouterr().err
    assert err.startswith(f"tumorsim: interrupted ({signal.Signals(signum).name})"), err


def test_an_error_without_a_signal_is_not_taken_for_one():
    from simulator import cli

    def work():
        raise ImportError("a real one")
    cli._interruptible(_signal_lands_in_an_import(signal.SIGTERM), "kept")
    with pytest.raises(ImportError, match="a real one"):
        cli._interruptible(work, "kept")
    with pytest.raises(ImportError, match="a real one"):
        cli._stoppable(work, "x.h5", False)


def _signal_lost_in_a_weakref_callback(signum):
    """The handler's exception raised where Python drops it ("Exception ignored in"),
    as seen in CI: Ctrl-C while a WeakValueDictionary's callback ran."""
    import weakref

    class Thing:
        pass

    thing = Thing()
    ref = weakref.ref(thing, lambda _: signal.raise_signal(signum))
    del thing
    return ref


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the point
def test_a_lost_signal_still_stops_a_study_between_runs(capsys):
    """Runs in this process (one worker): the runs after the lost Ctrl-C are not started,
    and the command still ends as interrupted."""
    from simulator import cli
    from simulator.study.workers import execute
    collected = []

    def run(i):
        if i == 1:
            _signal_lost_in_a_weakref_callback(signal.SIGINT)
        return i

    status = cli._interruptible(lambda: execute(run, [(i,) for i in range(4)],
                                                collected.append, 1, None, None), "kept")
    assert (status, collected) == (130, [0, 1])
    assert "tumorsim: interrupted; kept" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the point
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_lost_signal_still_ends_the_command_as_interrupted(signum, status):
    from simulator import cli

    def work():
        _signal_lost_in_a_weakref_callback(signum)
        return 0
    assert cli._interruptible(work, "kept") == status
    # forgotten once the command has ended: a later study in this process runs (CI once
    # stopped pytest itself here)
    from simulator.study.workers import execute
    collected = []
    try:
        execute(lambda i: i, [(0,), (1,)], collected.append, 1, None, None)
    except KeyboardInterrupt:
        pytest.fail("a study after the interrupted command stopped for its signal")
    assert collected == [0, 1]


_MAIN_CATCHING_AN_INTERRUPT_IN_EXEC = """
import os, signal, sys, time
from simulator import cli

signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in the background


def main(argv=None):
    try:
        exec("os.kill(os.getpid(), signal.SIGINT); time.sleep(60)")
    except KeyboardInterrupt:
        return cli.EXIT_INTERRUPTED
    raise AssertionError("no KeyboardInterrupt")

cli.main = main
sys.exit(cli.console_main() if sys.argv[1] == "program" else main())
"""


@pytest.mark.parametrize("entry, status", [("main", -signal.SIGINT), ("program", 130)])
def test_an_interrupt_handled_after_an_exec_keeps_the_exit_status(tmp_path, entry, status):
    """CPython marks a KeyboardInterrupt leaving an exec() of a string as unhandled even
    when it is caught, and under ``python -m`` then dies by SIGINT at exit (``main``: the
    premise); ``console_main`` clears the mark, so 130 stays 130."""
    (tmp_path / "interrupted_main.py").write_text(_MAIN_CATCHING_AN_INTERRUPT_IN_EXEC)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    result = subprocess.run([sys.executable, "-m", "interrupted_main", entry], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == status, result.stderr


def test_the_program_hands_its_objects_to_the_exit_uncollected(tmp_path):
    """``tumorsim`` (``console_main``) returns main's status and freezes the collector, so
    the interpreter's exit does not walk Numba's objects; a bad-input status passes
    through unchanged."""
    import gc

    from simulator.cli import console_main
    try:
        assert console_main(["validate", str(ROOT / "scenarios" / "default.toml")]) == 0
        assert gc.get_freeze_count() > 0
        assert console_main(["validate", str(tmp_path / "missing.toml")]) == 2
    finally:
        gc.unfreeze()


def test_output_that_is_not_a_run_file_is_not_replaced(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    result = _tumorsim("run", "-o", str(notes), "--set", "simulation.dimensions=[24,24]",
                       "--set", "simulation.duration_days=1")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "notes.txt: exists and is not a tumorsim run file; refusing to replace it " \
           "(--overwrite replaces it)" in result.stderr
    assert notes.read_text() == "my notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_inspect_scenario_shows_step_probabilities(capsys):
    assert main(["inspect"]) == 0
    out = capsys.readouterr().out
    assert "[simulation]" in out and "death / division hazard per step" in out
    assert "resistance floor" not in out
    assert main(["inspect", "--set", "initial.min_resistant_cells_at_baseline=12"]) == 0
    assert "at least 12 resistant cells from day" in capsys.readouterr().out
    assert "escape floor" not in out
    assert main(["inspect", "--set", "initial.min_escape_cells_at_baseline=4"]) == 0
    out = capsys.readouterr().out
    assert "at least 4 escape variants from day" in out and "immune-escape variants" in out


def test_inspect_run_reports_turnover_and_edge_contact(tmp_path, capsys):
    """The root attribute edge_contact_day is the first record with tumour cells on the
    lattice's faces, and inspect reports it with the realised deaths / divisions."""
    out = tmp_path / "t.h5"
    assert main(["run", "--quiet", "-o", str(out), str(ROOT / "scenarios" / "tumor_only.toml"),
                 "--set", "simulation.dimensions=[30,30]",
                 "--set", "simulation.duration_days=30",
                 "--set", "initial.tumor_radius_sites=5"]) == 0
    with h5py.File(out) as f:
        t = f["timeseries/time_days"][:]
        on_edge = f["timeseries/tumor_cells_on_edge"][:]
        day = f.attrs["edge_contact_day"]
        divisions = f["timeseries/divisions_total"][-1]
        deaths = f["timeseries/deaths_total"][-1]
    assert on_edge.any() and day == t[np.flatnonzero(on_edge)[0]]
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"deaths / divisions = {deaths / divisions:.3f} (parameters: d / b = 0.100)" in text
    assert f"reached the lattice edge on day {day:g}" in text
