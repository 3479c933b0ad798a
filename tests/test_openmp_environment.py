"""The OpenMP environment ``kernels.jit.configure_openmp`` sets before Numba starts its
thread pool: idle threads sleep (passive) after a short spin, and a value the user set
wins; and the automatic thread count (``kernels.jit.AdaptiveThreads``), fed step times.
Why these values: ``kernels.jit.configure_openmp`` and benchmarks/README.md
(``bench_threads.py``, ``bench_full_step.py``, ``bench_alongside.py``)."""
import os

from kernels import jit as kernel_jit


def test_defaults_are_passive_with_a_short_spin(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    kernel_jit.configure_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "passive"
    assert os.environ["GOMP_SPINCOUNT"] == str(kernel_jit.SPIN_COUNT) == "30000"


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


def test_a_busy_machine_keeps_one_thread_and_compares_again_later():
    """Two threads 5x slower (a busy machine): one thread wins and holds for at least
    MIN_HOLD_S of steps; the next comparison starts at one thread, with no settling step
    (no change of count), and probes two threads again."""
    A = kernel_jit.AdaptiveThreads
    chooser = _feed(A(2), lambda threads, since: 1e-3 if threads == 1 else 5e-3,
                    A.WARMUP + 2 * A.PROBE + A.SETTLE)
    assert chooser.threads_for_next_step() == 1 and chooser._probing is None
    held = int(A.MIN_HOLD_S / 1e-3)  # steps of 1 ms that use up the hold (to rounding)
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
