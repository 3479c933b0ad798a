"""Work that runs on a helper thread beside the caller's, each with one Numba thread.

At two threads most of a step splits well between the cores, but the tumour's event loop
runs in time order on one of them (``kernels.tumor``), and the other waits. Fields that the
tumour phase does not read can be solved in that time instead: the caller and a helper
thread each run their kernels with one Numba thread (Numba's thread count is per thread),
and both cores stay busy. The kernels release the GIL (``nogil=True``), and the two sides
touch disjoint arrays, so the output is the same as running one after the other, bit for
bit (tests/test_fields.py).

It pays only when the two sides take about as long: the work moved to one thread gives up
its own 2-thread speed-up, and handing it over costs ~0.3 ms. On the 1000 x 1000 benchmark
step (a large tumour with a necrotic core, many immune cells) it saved ~1 ms of ~30, and
~0.3 ms of ~20 since the tumour phase got 1.4x faster (2026-12-07: the two solves now
take longer than the tumour's kernels beside them, 2 x 3.4 against 5.3 ms); on a
young tumour, whose event loop is short, and on lattices of 250^2-800^2 it cost 0.6-1.5 ms
(benchmarks/bench_alongside.py). So :class:`Choice` decides by timing, step by step, as
``kernels.jit.AdaptiveThreads`` does for the thread count, and lattices below ``MIN_SITES``
sites never try. While the helper works, a copy of the lattice's kinds (one byte per site)
exists; nothing is kept between steps.

The fields phase uses the same helper for its two lanes (``TissueFields.LANES``), and the
tumour response may follow the tumour's kernels inside the same ``with`` block, beside
the helper's last solve (``Engine._tumor_phase``). The helper then joins the response when
its solves are done, the two taking its lines in blocks (:class:`SharedLines`): on the
1000 x 1000 benchmark step the helper's solves ended ~1 ms before the caller's tumour
kernels and response, and it waited.
"""
import contextlib
import os
import statistics
import threading
from concurrent.futures import ThreadPoolExecutor

import numba

MIN_SITES = 2 ** 18

_helper = None  # (process id, executor): a forked child makes its own


def _executor() -> ThreadPoolExecutor:
    global _helper
    if _helper is None or _helper[0] != os.getpid():
        _helper = (os.getpid(), ThreadPoolExecutor(
            1, thread_name_prefix="tumorsim-alongside",
            initializer=numba.set_num_threads, initargs=(1,)))
    return _helper[1]


def possible() -> bool:
    """Whether the calling thread has the two Numba threads that work alongside takes."""
    return numba.get_num_threads() >= 2


def worthwhile(n_sites: int) -> bool:
    """Whether a step on ``n_sites`` sites should consider working alongside: possible, and
    a lattice of at least ``MIN_SITES`` sites."""
    return possible() and n_sites >= MIN_SITES


@contextlib.contextmanager
def alongside(work):
    """Run ``work()`` on the helper thread while the ``with`` block runs, both with one
    Numba thread; on leaving, wait for it (its exception, if any, is raised then) and
    restore the caller's thread count. ``work`` None: the block runs as it is."""
    if work is None:
        yield
        return
    threads = numba.get_num_threads()
    future = _executor().submit(work)
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)
        error = future.exception()  # waits for the helper, also when the block raised
    if error is not None:
        raise error


class Choice:
    """Which of several ways to run the part of a step they differ in, chosen by timing:
    by default whether to solve alongside (:func:`alongside`) or not (``ways`` True,
    False); the engine also chooses whether the fields phase uses two lanes, so its ways
    are (beside, lanes) pairs (``Engine._field_ways``).

    Protocol: ``use()`` before the step's fields phase, ``record(used, seconds)`` with the
    wall time of the part of the step that differs between the ways (from the start of
    the fields phase to the end of the tumour response, which may run inside the tumour
    phase). A comparison runs the ways in turn, one step each, for ``PROBE`` rounds, and
    keeps the way whose median over the rounds of its time less the round's mean is
    lowest (a drift of the machine's speed cancels within a round; with two ways this is
    the median of the paired differences); a tie goes to the way listed last. The choice
    then holds for ``FIRST_HOLD`` steps, doubled (up to ``MAX_HOLD``) each time the same
    way wins again, so the probes cost a few per cent at most. Every way gives the same
    output, so the choice may change between any two steps.
    """

    PROBE = 6
    FIRST_HOLD = 32
    MAX_HOLD = 1024

    def __init__(self, ways=(True, False)):
        self.ways = tuple(ways)
        self.chosen = self.ways[-1]  # the way the last comparison chose
        self._won_before = None      # and the one before it
        self.history = []            # (used, seconds) of every recorded step
        self._rounds = []            # the comparison's times so far, way by way in turn
        self._hold_left = 0          # steps left to hold ``chosen``; 0: comparing
        self._hold = self.FIRST_HOLD

    def use(self):
        if self._hold_left > 0:
            return self.chosen
        return self.ways[len(self._rounds) % len(self.ways)]

    def record(self, used, seconds: float) -> None:
        self.history.append((used, seconds))
        if self._hold_left > 0:
            self._hold_left -= 1
            return
        if used != self.use():   # not the way the comparison asked for: left out
            return
        self._rounds.append(seconds)
        n = len(self.ways)
        if len(self._rounds) < n * self.PROBE:
            return
        rounds = [self._rounds[r * n:(r + 1) * n] for r in range(self.PROBE)]
        excess = [statistics.median(times[w] - statistics.fmean(times) for times in rounds)
                  for w in range(n)]
        best = min(excess)
        winner = self.ways[max(w for w in range(n) if excess[w] == best)]
        self._hold = min(2 * self._hold, self.MAX_HOLD) if winner == self._won_before \
            else self.FIRST_HOLD
        self.chosen = self._won_before = winner
        self._hold_left = self._hold
        self._rounds = []


class SharedLines:
    """Lines ``0 .. n_lines - 1`` worked by ``work(line_lo, line_hi)`` on two threads: the
    caller (:meth:`run`, which opens them) and the helper (:meth:`help`, which waits until
    they are opened, so it can be called before their inputs are ready). Each takes the next
    block when done with its last, a third of the lines left (at least ``MIN_BLOCK``), so
    the one that starts later takes less and both finish about together; the blocks shrink
    so the last one is short. For work whose lines are independent (each writes only its
    own sites and entries), the result does not depend on who worked which block."""

    MIN_BLOCK = 32

    def __init__(self, n_lines: int, work):
        self._work = work
        self._n_lines = n_lines
        self._next = 0
        self._lock = threading.Lock()
        self._opened = threading.Event()
        self._cancelled = False

    def _take(self):
        with self._lock:
            left = self._n_lines - self._next
            if self._cancelled or left <= 0:
                return None
            size = min(left, max(self.MIN_BLOCK, left // 3))
            block = (self._next, self._next + size)
            self._next += size
            return block

    def _work_blocks(self):
        while (block := self._take()) is not None:
            self._work(*block)

    def run(self):
        """Open the lines and work blocks until none is left (the caller)."""
        self._opened.set()
        self._work_blocks()

    def help(self):
        """Once the lines are opened, work blocks until none is left (the helper)."""
        self._opened.wait()
        self._work_blocks()

    def cancel(self):
        """No more blocks are handed out (the caller failed or was interrupted): a helper
        waiting in :meth:`help` returns, one at work stops after its block."""
        self._cancelled = True
        self._opened.set()
