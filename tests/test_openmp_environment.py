"""The OpenMP environment ``kernels.jit.configure_openmp`` sets before Numba starts its
thread pool: idle threads sleep (passive) after a short spin, and a value the user set
wins; and the automatic thread count (``kernels.jit.AdaptiveThreads``), fed step times.
Why these values: ``kernels.jit.configure_openmp`` and benchmarks/README.md
(``bench_threads.py``, ``bench_full_step.py``, ``bench_alongside.py``)."""
import os

import pytest

from kernels import jit as kernel_jit


def test_defaults_are_passive_with_a_short_spin(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    kernel_jit.configure_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "passive"
    assert os.environ["GOMP_SPINCOUNT"] == str(kernel_jit.SPIN_COUNT) == "3000"


def test_the_users_values_win(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    monkeypatch.setenv("GOMP_SPINCOUNT", "infinite")
    kernel_jit.configure_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "active"
    assert os.environ["GOMP_SPINCOUNT"] == "infinite"


def _feed(chooser, seconds_by_threads, steps):
    """Step ``chooser`` ``steps`` times, each step taking ``seconds_by_threads(threads,
    index of the step at that count since the count last changed)``."""
    since, last = 0, None
    for _ in range(steps):
        threads = chooser.threads_for_next_step()
        since = since + 1 if threads == last else 0
        last = threads
        chooser.record(seconds_by_threads(threads, since))
    return chooser


def test_the_first_step_at_a_new_count_is_not_compared(monkeypatch):
    """Started at one thread (a busy-looking machine), the probe of two threads begins with
    a step that starts the pool and the helper (here 3x slower than the next ones): it is
    not timed, so two threads, 20% faster after it, win; timing it lost them."""
    def step(threads, since):
        if threads == 1:
            return 2.0e-3
        return 6.0e-3 if since == 0 else 1.6e-3

    A = kernel_jit.AdaptiveThreads
    settled = _feed(A(2, start=1), step, A.WARMUP + 2 * A.PROBE + A.SETTLE)
    assert settled.threads_for_next_step() == 2 and settled._probing is None
    monkeypatch.setattr(A, "SETTLE", 0)
    unsettled = _feed(A(2, start=1), step, A.WARMUP + 2 * A.PROBE)
    assert unsettled.threads_for_next_step() == 1 and unsettled._probing is None


def test_a_count_is_judged_by_the_mean_of_its_probe_steps():
    """What a run at a count costs is its steps' mean: two threads whose probe steps take
    1.5 ms but one 6 ms (a busy machine: a thread lost its core) lose against one thread's
    2 ms, though their median and best won; at 1.5 ms throughout they win."""
    A = kernel_jit.AdaptiveThreads
    steps = A.WARMUP + 2 * A.PROBE + A.SETTLE

    def two_threads(odd):
        return lambda threads, since: (2.0e-3 if threads == 1
                                       else odd if since == A.WARMUP + 1 else 1.5e-3)

    assert A.PROBE >= 3  # a median of the steps would be 1.5 ms
    assert _feed(A(2), two_threads(6.0e-3), steps).threads_for_next_step() == 1
    assert _feed(A(2), two_threads(1.5e-3), steps).threads_for_next_step() == 2


def test_a_short_run_revisits_a_choice_made_while_its_tumour_was_small():
    """Two threads 5% faster in the first steps (one thread wins: less than MARGIN), 40%
    later (a grown tumour): the hold after a cheap probe is MIN_HOLD_S, so the run compares
    again within a fraction of a second and takes two threads."""
    A = kernel_jit.AdaptiveThreads
    done = []

    def step(threads, since):
        done.append(threads)
        grown = len(done) > 20
        return 2.0e-3 if threads == 1 else (1.43e-3 if grown else 1.9e-3)

    chooser = _feed(A(2), step, A.WARMUP + 2 * A.PROBE + A.SETTLE)
    assert chooser.threads_for_next_step() == 1 and chooser._probing is None
    steps = int(1.5 * A.MIN_HOLD_S / 2.0e-3)  # enough for the hold and a comparison
    _feed(chooser, step, steps)
    assert chooser.threads_for_next_step() == 2 and chooser._probing is None
    assert done.count(1) < steps


def test_runnable_elsewhere_reads_the_kernels_count_of_runnable_tasks(tmp_path, monkeypatch):
    """/proc/loadavg's fourth field counts the reading thread too; the least of the
    readings counts; an unreadable file gives None (the load average decides then)."""
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr(kernel_jit, "LOADAVG", str(loadavg))
    loadavg.write_text("2.10 1.50 1.20 3/412 98765\n")
    assert kernel_jit.runnable_elsewhere(gap_s=0.0) == 2
    loadavg.write_text("2.10 1.50 1.20 1/412 98765\n")
    assert kernel_jit.runnable_elsewhere(gap_s=0.0) == 0
    loadavg.write_text("garbled\n")
    assert kernel_jit.runnable_elsewhere(gap_s=0.0) is None
    loadavg.unlink()
    assert kernel_jit.runnable_elsewhere(gap_s=0.0) is None


def test_the_automatic_choice_starts_at_one_thread_beside_runnable_work(monkeypatch):
    """Another task ready to run: start at one thread; none: all cores, even when the
    1-minute load average is still high from work that has stopped; the count unreadable:
    the load average decides, as before."""
    import numba

    from simulator import engine as engine_mod
    most = numba.config.NUMBA_NUM_THREADS
    if most < 2:
        pytest.skip("one Numba thread: nothing to choose")
    monkeypatch.setattr(engine_mod.os, "getloadavg", lambda: (float(most), 1.0, 1.0))
    monkeypatch.setattr(kernel_jit, "runnable_elsewhere", lambda: 1)
    assert engine_mod.adaptive_threads().threads_for_next_step() == 1
    monkeypatch.setattr(kernel_jit, "runnable_elsewhere", lambda: 0)
    assert engine_mod.adaptive_threads().threads_for_next_step() == most
    monkeypatch.setattr(kernel_jit, "runnable_elsewhere", lambda: None)
    assert engine_mod.adaptive_threads().threads_for_next_step() == 1
    monkeypatch.setattr(engine_mod.os, "getloadavg", lambda: (0.2, 1.0, 1.0))
    assert engine_mod.adaptive_threads().threads_for_next_step() == most


def test_importing_the_kernels_sets_the_openmp_environment():
    """Before any kernel can start the pool: an engine built before the first thread count
    is set (``simulator.engine.run(..., threads=0)``) ran on libgomp's own settings."""
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c",
                          "import os, kernels.jit; print(os.environ['OMP_WAIT_POLICY'], "
                          "os.environ['GOMP_SPINCOUNT'])"],
                         env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["passive", str(kernel_jit.SPIN_COUNT)]


def test_a_busy_machine_keeps_one_thread_and_compares_again_later():
    """Two threads 5x slower (a busy machine): one thread wins and holds for HOLD_FACTOR
    times what the losing probe cost (at least MIN_HOLD_S) of steps; the next comparison
    starts at one thread, with no settling step (no change of count), and probes two
    threads again."""
    A = kernel_jit.AdaptiveThreads
    chooser = _feed(A(2), lambda threads, since: 1e-3 if threads == 1 else 5e-3,
                    A.WARMUP + 2 * A.PROBE + A.SETTLE)
    assert chooser.threads_for_next_step() == 1 and chooser._probing is None
    # the probe started at two threads: no settling step of theirs counts
    hold = max(A.MIN_HOLD_S, A.HOLD_FACTOR * A.PROBE * 5e-3)
    held = int(hold / 1e-3)  # steps of 1 ms that use up the hold (to rounding)
    _feed(chooser, lambda threads, since: 1e-3, held - 1)
    assert chooser._probing is None
    # the hold's last step (or two, as the sum rounds), then PROBE steps at one thread
    for _ in range(2 + A.PROBE):
        _feed(chooser, lambda threads, since: 1e-3, 1)
        if chooser._probing == 2:
            break
    assert chooser._probing == 2 and chooser.threads_for_next_step() == 2
    counts = [threads for threads, _ in chooser.history]
    assert counts.count(2) == A.WARMUP + A.PROBE


def test_the_hold_counts_what_the_losing_probe_cost_with_its_settling_step():
    """Started at one thread, two threads lose (0.1 s steps after a 0.3 s first one): the
    hold is HOLD_FACTOR times all the losing probe cost, 20 x (0.3 + 2 x 0.1) s."""
    A = kernel_jit.AdaptiveThreads
    chooser = _feed(A(2, start=1),
                    lambda threads, since: 0.01 if threads == 1 else (0.3 if since == 0 else 0.1),
                    A.WARMUP + 2 * A.PROBE + A.SETTLE)
    assert chooser.threads_for_next_step() == 1 and chooser._probing is None
    assert abs(chooser._hold_left - A.HOLD_FACTOR * (0.3 + A.PROBE * 0.1)) < 1e-12
