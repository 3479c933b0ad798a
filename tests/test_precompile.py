"""Compiling ahead (``simulator.study.precompile``): the recorded argument types round-trip
to the types Numba dispatches on, the work list is the uncached kernels' signatures longest
first, and the pool size follows the idle cores or the user's setting. The end-to-end
check (an empty cache, a pool of two, then a first step that compiles nothing) and the
check that the recorded file matches the library are in ``tests/test_startup.py``."""
import json

import numba
import numpy as np
import pytest

from simulator.study import precompile
from simulator.study.precompile import Signature, decode_type, encode_type


@pytest.mark.parametrize("value", [
    np.zeros(3, np.uint8), np.zeros(3, np.int64), np.zeros((2, 2), np.float32),
    np.zeros(3, np.bool_), np.zeros((4, 4))[:, 1], np.int64(3), np.uint64(7), 2.5, True,
    (1, 2), (np.int64(1), 2.0),
])
def test_argument_types_round_trip(value):
    """What Numba types an argument as survives encoding to JSON and back unchanged."""
    numba_type = numba.typeof(value)
    code = json.loads(json.dumps(encode_type(numba_type)))
    assert decode_type(code) == numba_type


def test_readonly_arrays_round_trip():
    array = np.zeros(3)
    array.setflags(write=False)
    numba_type = numba.typeof(array)
    assert not numba_type.mutable
    assert decode_type(encode_type(numba_type)) == numba_type


def test_an_unrecordable_type_says_so():
    with pytest.raises(TypeError, match="cannot record"):
        encode_type(numba.typeof("text"))


def test_signatures_file_round_trips(tmp_path):
    path = tmp_path / "signatures.json"
    signatures = {"kernels.lattice.count_kinds": [
        Signature("kernels.lattice.count_kinds", (["uint8", 1, "C"], "int64"), 1.234)]}
    precompile.write_signatures(signatures, "a test", path)
    loaded = precompile.load_signatures(path)
    assert loaded["kernels.lattice.count_kinds"][0].args == (["uint8", 1, "C"], "int64")
    assert loaded["kernels.lattice.count_kinds"][0].seconds == pytest.approx(1.23)


def test_a_missing_or_broken_file_means_nothing_ahead(tmp_path):
    assert precompile.load_signatures(tmp_path / "absent.json") == {}
    (tmp_path / "broken.json").write_text("{not json")
    assert precompile.load_signatures(tmp_path / "broken.json") == {}


def test_pending_lists_uncached_kernels_longest_first(monkeypatch):
    """Only kernels with nothing cached are listed; all their signatures, the slowest
    compilation first so the pool's last task is a short one."""
    from kernels import lattice, tumor
    import kernels.jit
    signatures = {
        "kernels.tumor.schedule": [Signature("kernels.tumor.schedule", ("int64",), 6.0)],
        "kernels.tumor.run_events": [Signature("kernels.tumor.run_events", ("int64",), 11.0),
                                     Signature("kernels.tumor.run_events", ("float64",), 2.0)],
        "kernels.lattice.count_kinds": [Signature("kernels.lattice.count_kinds", (), 1.0)],
    }
    monkeypatch.setattr(kernels.jit, "needs_compiling",
                        lambda ks: [k.__name__ for k in ks if k.__name__ != "count_kinds"])
    todo = precompile.pending((tumor.schedule, tumor.run_events, lattice.count_kinds),
                              signatures)
    assert [(s.kernel.rsplit(".", 1)[1], s.seconds) for s in todo] == [
        ("run_events", 11.0), ("schedule", 6.0), ("run_events", 2.0)]


def test_a_stale_signature_is_skipped_not_raised():
    """A recorded signature the kernel no longer accepts compiles nothing and reports
    None: the run then compiles the kernel at its first call."""
    assert precompile.compile_signature("kernels.lattice.count_kinds",
                                        ("float64", "float64", "float64", "float64",
                                         "float64", "float64", "float64")) == (
        "kernels.lattice.count_kinds", None)
    assert precompile.compile_signature("kernels.no_such_module.kernel", ()) == (
        "kernels.no_such_module.kernel", None)


def test_worker_count_follows_the_setting_then_the_cores(monkeypatch):
    monkeypatch.setenv(precompile.WORKERS_VARIABLE, "3")
    assert precompile.worker_count(10) == 3
    assert precompile.worker_count(2) == 2
    monkeypatch.setenv(precompile.WORKERS_VARIABLE, "1")
    assert precompile.worker_count(10) == 1
    monkeypatch.delenv(precompile.WORKERS_VARIABLE)
    for cores, todo, expected in [(2, 10, 2), (1, 10, 1), (16, 10, precompile.MOST_WORKERS),
                                  (16, 3, 3), (2, 0, 1)]:
        monkeypatch.setattr(precompile.os, "sched_getaffinity", lambda pid: set(range(cores)),
                            raising=False)
        assert precompile.worker_count(todo) == expected, (cores, todo)
    assert precompile.worker_count(10, asked=6) == 6     # a study's workers
    assert precompile.worker_count(3, asked=6) == 3
    monkeypatch.setenv(precompile.WORKERS_VARIABLE, "1")
    assert precompile.worker_count(10, asked=6) == 1     # the setting wins


def test_one_worker_compiles_nothing_ahead(monkeypatch):
    """With one worker the pool is skipped: the run compiles as it goes, as before."""
    from kernels import lattice
    monkeypatch.setattr(precompile, "pending", lambda kernels: [
        Signature("kernels.lattice.count_kinds", (), 1.0)] * 3)
    monkeypatch.setattr(precompile, "compile_signature",
                        lambda *a: pytest.fail("compiled with one worker"))
    assert precompile.compile_ahead((lattice.count_kinds,), workers=1) == (0, 1)


def test_a_pool_that_cannot_start_leaves_the_run_to_compile_as_it_goes(monkeypatch):
    """Compiling ahead is an optimisation: where no process pool can start (a sandbox
    without /dev/shm, say), the run goes on and compiles at first use."""
    from kernels import lattice
    from simulator.study import workers
    monkeypatch.setattr(precompile, "pending", lambda kernels: [
        Signature("kernels.lattice.count_kinds", (), 1.0)] * 3)

    def no_pool(*args, **kwargs):
        raise OSError(38, "Function not implemented")
    monkeypatch.setattr(workers, "execute", no_pool)
    assert precompile.compile_ahead((lattice.count_kinds,), workers=2) == (0, 1)


def test_a_script_read_from_stdin_compiles_as_it_goes(monkeypatch):
    """``python - < script``: a spawned worker could not re-run the script (its path is
    '<stdin>'), so no pool is started (before, each worker died with a traceback on stderr)."""
    import sys
    from kernels import lattice
    from simulator.study import workers
    monkeypatch.setattr(precompile, "pending", lambda kernels: [
        Signature("kernels.lattice.count_kinds", (), 1.0)] * 3)
    monkeypatch.setattr(workers, "execute", lambda *a, **k: pytest.fail("started a pool"))
    monkeypatch.setattr(sys.modules["__main__"], "__file__", "<stdin>", raising=False)
    assert not workers.spawned_processes_can_start()
    assert precompile.compile_ahead((lattice.count_kinds,), workers=2) == (0, 1)
    monkeypatch.setattr(sys.modules["__main__"], "__file__", __file__)
    assert workers.spawned_processes_can_start()


def _square(x):
    return x * x


def test_a_study_from_stdin_runs_its_jobs_here(monkeypatch, tmp_path):
    """The same for a study's pool: one warning, and the jobs run in this process (the
    results do not depend on the workers) instead of a BrokenProcessPool."""
    import sys
    from simulator.study import workers
    monkeypatch.setattr(workers, "start_pool", lambda *a: pytest.fail("started a pool"))
    monkeypatch.setattr(sys.modules["__main__"], "__file__", "<stdin>", raising=False)
    got = []
    with pytest.warns(RuntimeWarning, match="standard input"):
        workers.execute(_square, [(2,), (3,)], got.append, 2, None, tmp_path)
    assert got == [4, 9]


class _Terminal:
    """A stream that says it is a terminal, and keeps what is written to it."""

    def __init__(self, terminal: bool):
        self.terminal = terminal
        self.text = ""

    def isatty(self):
        return self.terminal

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_progress_rewrites_one_line_on_a_terminal():
    stream = _Terminal(True)
    progress = precompile.Progress(2, stream)
    progress.advance()
    progress.advance()
    progress.close()
    assert stream.text == "\r  compiled 1 of 2\r  compiled 2 of 2\n"


@pytest.mark.parametrize("terminal, total", [(False, 2), (True, 0)])
def test_progress_is_silent_off_a_terminal_or_with_nothing_to_compile(terminal, total):
    stream = _Terminal(terminal)
    progress = precompile.Progress(total, stream)
    for _ in range(total):
        progress.advance()
    progress.close()
    assert stream.text == ""
