"""Fault injection (issue 9): every case of tests/fault_cases.py, judged the same way as
docs/fault_table.md. Plain command-line cases run in-process through ``cli.main`` (fast);
cases that run simulations, signal coordinators or race writers run the real CLI in
subprocesses. Cases another branch closes are skipped until its owner is listed in
``ENABLED_OWNERS``."""
import io
import os
import subprocess
import sys
import tracemalloc
from contextlib import redirect_stderr, redirect_stdout

import pytest

import fault_cases as fc
from conftest import needs_jit
from simulator.cli import main

ENABLED_OWNERS = {"hygiene", "explorer", "runfile"}


def _run_in_process(case, tmp_path, monkeypatch) -> fc.Result:
    fc.prepare(case, tmp_path)
    monkeypatch.chdir(tmp_path)
    before = fc.snapshot(tmp_path)
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        try:
            code = main(fc.fill(case.args, tmp_path))
        except SystemExit as exc:   # argparse
            code = exc.code
    result = fc.Result(code, err.getvalue(), out.getvalue())
    result.complete_outputs = fc.new_complete(tmp_path, before)
    if case.check is not None:
        result.problems += case.check(tmp_path, result)
    return result


def _params():
    for case in fc.CASES:
        marks = []
        if case.owner not in ENABLED_OWNERS:
            marks.append(pytest.mark.skip(reason=f"closed by the {case.owner} branch"))
        if case.slow:
            marks.append(needs_jit)
            marks.append(pytest.mark.timeout(int(case.timeout) + 600))
        yield pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_fault_is_handled(case, tmp_path, monkeypatch):
    if case.needs and case.needs not in fc.available_commands():
        pytest.skip(f"`tumorsim {case.needs}` is not available yet")
    if case.slow or case.action is not None:
        result = fc.run_case(case, tmp_path)
    else:
        result = _run_in_process(case, tmp_path, monkeypatch)
    wrong = fc.judge(case, result)
    assert not wrong, f"{wrong}; stderr: {result.stderr[-800:]}"


def test_every_fault_class_has_cases():
    counts = {c: sum(case.fault_class == c for case in fc.CASES) for c in fc.CLASSES}
    assert all(counts.values()), counts
    assert len(fc.CASES) >= 120


# ---------------------------------------------------------------- class 5 mechanism
def test_worker_setup_leaves_numba_thread_count_alone():
    """The first study on a new machine failed every run: the worker initializer set
    NUMBA_NUM_THREADS after Numba's threads existed, and the next compilation (an empty
    cache compiles) re-read it and refused. A worker set up like a pool worker, with its
    threads launched, must still compile a new kernel."""
    code = (
        "import os, numba\n"
        "from simulator.study.workers import worker_init\n"
        "worker_init(os.getppid(), None)\n"
        "numba.set_num_threads(1)\n"
        "from simulator.engine import set_threads\n"
        "set_threads(1)\n"
        "f = numba.njit(lambda x: x + 1)\n"
        "assert f(1) == 2\n"
        "assert 'NUMBA_NUM_THREADS' not in os.environ or os.environ['NUMBA_NUM_THREADS'] == "
        "os.environ.get('PARENT_NUMBA_NUM_THREADS')\n"
        "print('ok')\n")
    environ = fc.env()
    environ.pop("NUMBA_NUM_THREADS", None)
    # two Numba threads by default, so that a worker setting one would differ
    environ["NUMBA_NUM_THREADS"] = "2"
    environ["PARENT_NUMBA_NUM_THREADS"] = "2"
    p = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_a_worker_exits_without_the_final_collections():
    """The coordinator waits for its workers to exit (0.5-0.6 s after compiling ahead, most
    of it the interpreter's final garbage collections over what Numba left): a worker set
    up like a pool worker has the collector frozen by the time its exit handlers have run.
    (A handler registered before ``worker_init`` runs after its own.)"""
    code = ("import atexit, gc, os\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
            "from simulator.study.workers import worker_init\n"
            "worker_init(os.getppid(), None)\n")
    p = subprocess.run([sys.executable, "-c", code], env=fc.env(), capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.strip() == "frozen True", (p.stdout, p.stderr)


def test_worker_exits_when_its_coordinator_dies(tmp_path):
    """The watcher thread: a worker whose parent is gone exits within a second or two."""
    code = ("import os, sys, time\n"
            "from simulator.study.workers import worker_init\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    worker_init(os.getppid(), None)\n"
            "    sys.stdout.write(f'{os.getpid()}\\n'); sys.stdout.flush()\n"
            "    time.sleep(60)\n"
            "    os._exit(0)\n"
            "time.sleep(0.5)\n"
            "os._exit(0)\n")
    p = subprocess.Popen([sys.executable, "-c", code], env=fc.env(), stdout=subprocess.PIPE,
                         text=True)
    child = int(p.stdout.readline())
    p.wait(timeout=30)
    assert fc._wait_for(lambda: not _alive(child), 5.0), "the orphaned worker lives on"
    p.stdout.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# ---------------------------------------------------------------- the memory estimate
def _measured_bytes(scenario, steps: int = 3) -> int:
    """Peak bytes traced while building an engine and stepping it (NumPy reports its
    array allocations to tracemalloc)."""
    from simulator.engine import Engine
    tracemalloc.start()
    try:
        engine = Engine(scenario)
        for _ in range(steps):
            engine.step()
            engine.observe()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@needs_jit
@pytest.mark.parametrize("path, dims", [
    ("default.toml", "[60,60]"), ("default.toml", "[300,300]"), ("default.toml", "[40,40,40]"),
    ("tumor_only.toml", "[300,300]"), ("targeted_continuous_penetration.toml", "[300,300]"),
])
def test_memory_estimate_is_within_2x_of_the_allocation(path, dims):
    from simulator import scenario as scenario_mod
    from simulator.model.memory import estimate_bytes
    scenario = scenario_mod.load(fc.LIB / path, [f"simulation.dimensions={dims}",
                                                 "initial.tumor_radius_sites=8"])
    _measured_bytes(scenario, 1)    # compile / load kernels outside the measurement
    parts = estimate_bytes(scenario)
    engine_part = sum(v for k, v in parts.items() if k != "time series")
    measured = _measured_bytes(scenario)
    assert measured / 2 <= engine_part <= 2 * measured, (engine_part, measured, parts)


def test_memory_estimate_grows_with_the_lattice_and_fields():
    from simulator import scenario as scenario_mod
    from simulator.model.memory import estimate_bytes
    small = scenario_mod.load(fc.LIB / "default.toml", ["simulation.dimensions=[100,100]"])
    big = scenario_mod.load(fc.LIB / "default.toml", ["simulation.dimensions=[200,200]"])
    bare = scenario_mod.load(fc.LIB / "tumor_only.toml", ["simulation.dimensions=[200,200]"])
    lattice = "lattice and fields"
    ratio = estimate_bytes(big)[lattice] / estimate_bytes(small)[lattice]
    assert 3.5 < ratio < 4.1      # padded sites: 202^2 / 102^2 = 3.92
    assert estimate_bytes(bare)[lattice] < estimate_bytes(big)[lattice] / 4


# ---------------------------------------------------------------- study rules in-process
def test_study_lock_refuses_a_second_coordinator(tmp_path):
    from simulator.schema import ScenarioError
    from simulator.study.layout import StudyLock
    with StudyLock(tmp_path):
        with pytest.raises(ScenarioError, match=f"in use by another tumorsim command "
                                                f"\\(pid {os.getpid()}\\)"):
            StudyLock(tmp_path).__enter__()
    with StudyLock(tmp_path):   # released on exit
        pass


def test_study_lock_waits_for_the_workers_of_a_killed_coordinator(tmp_path, monkeypatch):
    """A process holding the workers' shared lock delays a new coordinator until it exits;
    if it does not, the coordinator gives up with one line."""
    from simulator.schema import ScenarioError
    from simulator.study import layout
    code = ("import sys, time\nfrom simulator.study.layout import hold_for_worker\n"
            f"hold_for_worker({str(tmp_path)!r})\nprint('held', flush=True)\n"
            "time.sleep(float(sys.argv[1]))\n")
    holder = subprocess.Popen([sys.executable, "-c", code, "2"], env=fc.env(),
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with layout.StudyLock(tmp_path):
        assert holder.poll() is not None    # the lock came only after the holder exited
    holder.stdout.close()
    monkeypatch.setattr(layout, "OLD_WORKERS_WAIT_SECONDS", 0.5)
    stuck = subprocess.Popen([sys.executable, "-c", code, "30"], env=fc.env(),
                             stdout=subprocess.PIPE, text=True)
    try:
        assert stuck.stdout.readline().strip() == "held"
        with pytest.raises(ScenarioError, match="worker processes of an earlier command"):
            layout.StudyLock(tmp_path).__enter__()
    finally:
        stuck.kill()
        stuck.wait()
        stuck.stdout.close()


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    from simulator.study.layout import atomic_path
    target = tmp_path / "summary.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old\n" and list(tmp_path.iterdir()) == [target]
    with atomic_path(target) as tmp:
        tmp.write_text("new\n")
    assert target.read_text() == "new\n" and list(tmp_path.iterdir()) == [target]


def test_one_line_escapes_control_characters():
    from simulator.schema import ScenarioError
    line = ScenarioError("unknown key", "tumor.a\nb\x00c", "f\r.toml").line()
    assert "\n" not in line and "\r" not in line and "\x00" not in line
    assert "a\\nb\\x00c" in line
