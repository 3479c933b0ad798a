"""Work beside the tumour phase (``simulator.model.alongside``): the helper's errors and
thread counts, the lines the caller and the helper share, and the timed choice of whether
to use it. That the engine's output is the same either way:
tests/test_fields.py::test_fields_solved_beside_the_tumour_give_the_same_run.
"""
import threading
import time

import numba
import pytest

from simulator.model import alongside
from simulator.model.alongside import Choice, SharedLines


def test_work_alongside_raises_its_error_and_restores_threads():
    """An error on the helper thread reaches the caller when the block ends; the block runs
    with one Numba thread and the caller's count is back afterwards; an error in the block
    is not hidden by waiting for the helper."""
    threads = numba.get_num_threads()

    def fail():
        raise ValueError("helper failed")
    seen = []
    with pytest.raises(ValueError, match="helper failed"):
        with alongside.alongside(fail):
            seen.append(numba.get_num_threads())
    assert seen == [1] and numba.get_num_threads() == threads
    ran = []
    with pytest.raises(KeyError):
        with alongside.alongside(lambda: ran.append(numba.get_num_threads())):
            raise KeyError("block")
    assert ran == [1] and numba.get_num_threads() == threads
    with alongside.alongside(None):
        assert numba.get_num_threads() == threads


def _share(n_lines, helper_waits_s=0.0, cancel=False):
    """(the blocks worked, by which thread) of ``n_lines`` lines shared by this thread and
    a helper that asks for them first (and, after ``helper_waits_s``, again); each block
    takes 2 ms, so both threads work some."""
    worked = []

    def work(first, last):
        worked.append((first, last, threading.current_thread().name))
        time.sleep(0.002)
    shared = SharedLines(n_lines, work)

    def helper():
        time.sleep(helper_waits_s)
        shared.help()
    thread = threading.Thread(target=helper, name="helper")
    thread.start()
    time.sleep(0.01)  # the helper waits until the lines are opened
    assert worked == []
    if cancel:
        shared.cancel()
    else:
        shared.run()
    thread.join(5.0)
    assert not thread.is_alive()
    return sorted(worked)


def test_shared_lines_are_each_worked_once_by_one_of_two_threads():
    blocks = _share(1000)
    assert blocks[0][0] == 0 and blocks[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))  # no gap, no overlap
    assert {name for *_, name in blocks} == {"helper", threading.current_thread().name}
    # a third of what is left, at least MIN_BLOCK: the blocks shrink to the last
    sizes = [last - first for first, last, _ in sorted(blocks)]
    assert sizes[0] == 333 and min(sizes) >= min(SharedLines.MIN_BLOCK, sizes[-1])
    assert sizes == sorted(sizes, reverse=True)


def test_a_late_helper_takes_what_is_left_and_a_cancelled_share_none():
    blocks = _share(100, helper_waits_s=1.0)  # the caller is done before the helper asks
    assert [name for *_, name in blocks] == [threading.current_thread().name] * len(blocks)
    assert _share(100, cancel=True) == []


def run_choice(choice, beside_ms, before_ms, steps):
    used = []
    for _ in range(steps):
        way = choice.use()
        used.append(way)
        choice.record(way, 1e-3 * (beside_ms if way else before_ms))
    return used


@pytest.mark.parametrize("faster_beside", [True, False])
def test_choice_compares_both_ways_then_holds_the_faster(faster_beside):
    """The first 2 * PROBE steps alternate the two ways; the faster then holds for
    FIRST_HOLD steps, then twice as long each time it wins again."""
    choice = Choice()
    beside, before = (9.0, 10.0) if faster_beside else (10.0, 9.0)
    probe = 2 * Choice.PROBE
    used = run_choice(choice, beside, before, probe)
    assert used == [True, False] * Choice.PROBE
    held = run_choice(choice, beside, before, Choice.FIRST_HOLD)
    assert held == [faster_beside] * Choice.FIRST_HOLD
    again = run_choice(choice, beside, before, probe + 2 * Choice.FIRST_HOLD)
    assert again[:probe] == [True, False] * Choice.PROBE
    assert again[probe:] == [faster_beside] * (2 * Choice.FIRST_HOLD)


def test_choice_compares_pairs_of_steps():
    """The comparison is the median of each pair's difference: a slow spell of the machine
    over steps 0-4 (+5 ms) hits three steps beside and two before, which would make the
    medians of each way's times pick the slower way; the pairs see beside 0.5 ms faster in
    five of six. A tie goes to not using the helper."""
    assert Choice.PROBE == 6
    choice = Choice()
    for k in range(12):
        way = choice.use()
        assert way == (k % 2 == 0)
        choice.record(way, 1e-3 * ((9.5 if way else 10.0) + (5.0 if k <= 4 else 0.0)))
    assert choice.use() is True
    tie = Choice()
    run_choice(tie, 10.0, 10.0, 2 * Choice.PROBE)
    assert tie.use() is False


def test_choice_follows_a_change():
    """When the other way wins a later comparison, the choice switches and its hold starts
    again from FIRST_HOLD."""
    choice = Choice()
    probe = 2 * Choice.PROBE
    run_choice(choice, 9.0, 10.0, probe + Choice.FIRST_HOLD)
    used = run_choice(choice, 11.0, 10.0, probe + Choice.FIRST_HOLD + 1)
    assert used[probe:probe + Choice.FIRST_HOLD] == [False] * Choice.FIRST_HOLD
    assert used[-1] is True  # comparing again: the first probe step runs beside


def test_choice_among_several_ways():
    """With more than two ways a comparison runs them in turn, PROBE rounds, and keeps the
    one whose time less its round's mean has the lowest median, so a slow spell over a
    whole round cancels; a tie goes to the way listed last; a step recorded as another
    way than the one asked (the engine's solve from scratch, which leaves no fields for
    the tumour phase) is left out of the comparison."""
    ways = ("a", "b", "c", "d")
    times = dict(a=10.0, b=9.0, c=9.5, d=10.0)
    choice = Choice(ways)
    assert choice.use() == "a"
    choice.record("z", 1.0)                      # not the way asked: left out
    asked = []
    for k in range(len(ways) * Choice.PROBE):
        way = choice.use()
        asked.append(way)
        slow = 50.0 if k // len(ways) == 2 else 0.0   # the third round all slow
        choice.record(way, 1e-3 * (times[way] + slow))
    assert asked == list(ways) * Choice.PROBE
    assert choice.chosen == "b"
    assert [choice.use() for _ in range(3)] == ["b"] * 3
    tie = Choice(ways)
    for _ in range(len(ways) * Choice.PROBE):
        way = tie.use()
        tie.record(way, 1e-3 * (9.0 if way in ("b", "c") else 10.0))
    assert tie.chosen == "c"


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_engine_times_its_ways_only_on_large_lattices(monkeypatch):
    """By default (``Engine.FIELDS_ALONGSIDE`` and ``TissueFields.LANES`` None) a lattice
    below ``MIN_SITES`` sites never solves beside the tumour phase and always uses the
    lanes; at or above it, the engine times the four ways (beside or not, two lanes or
    one), one step each in turn; with one of the two fixed, or in 3D (no lanes), it times
    the other's two ways."""
    from simulator import engine as E
    from simulator.model.tissue import TissueFields
    from simulator.scenario import load
    scenario = load(None, ["simulation.dimensions=[40,40]", "initial.tumor_radius_sites=8"])
    threads = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        small = E.Engine(scenario)
        for _ in range(4):
            small.step()
        assert small._alongside_choice is None
        assert small._step_way == (False, True)
        monkeypatch.setattr(alongside, "MIN_SITES", 0)
        large = E.Engine(scenario)
        ways = ((True, True), (True, False), (False, True), (False, False))
        for _ in range(len(ways) * Choice.PROBE):
            large.step()
        choice = large._alongside_choice
        assert choice.ways == ways
        assert [used for used, _ in choice.history] == list(ways) * Choice.PROBE
        assert all(seconds > 0 for _, seconds in choice.history)
        assert choice.chosen in ways
        monkeypatch.setattr(TissueFields, "LANES", False)
        one_lane = E.Engine(scenario)
        for _ in range(3):
            one_lane.step()
        assert one_lane._alongside_choice.ways == ((True, False), (False, False))
        assert one_lane.tissue._second_workspace is None
        monkeypatch.setattr(TissueFields, "LANES", None)
        three = E.Engine(load(None, ["simulation.dimensions=[12,12,12]",
                                     "initial.tumor_radius_sites=3"]))
        three.step()
        assert three._alongside_choice.ways == ((True, False), (False, False))  # no lanes
    finally:
        numba.set_num_threads(threads)
