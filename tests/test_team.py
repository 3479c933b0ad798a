"""kernels.team: a parallel region whose members meet at barriers between stages."""
import math

import numba
import numpy as np
import pytest

from conftest import needs_jit
from kernels import team
from kernels.jit import prange

STAGES = 200


# not cached: Numba checks a cached kernel against its own file only, and this one inlines
# kernels.team's barrier (the package's own kernels are tied to its sources, kernels.jit)
@numba.njit(parallel=True, cache=False)
def _stages(size, sync, seen, done, serial, formed):
    """Each member writes its own slot of stage k, then meets the others; after the
    barrier it copies every member's stage-k value (all must be written). Between stages
    the last arriver adds to ``serial[0]`` alone (the stage's serial part); the members
    take turns to dawdle before writing. ``formed[0]``: the members that shared the
    work."""
    for m in prange(size):
        members = team.form(sync, size)
        if members == 0:
            continue
        formed[0] = members
        me = np.int64(m) if members == size else np.int64(0)
        for k in range(STAGES):
            # the members take turns to be slow, so one without a barrier reads too early
            busy = 0.0
            for r in range(20000 * ((k + me) % 2)):
                busy += math.sqrt(r)
            serial[1 + me] += busy > 0.0
            for j in range(me * done.shape[1] // members, (me + 1) * done.shape[1] // members):
                done[k, j] = k + 1
            last, generation = team.arrive(sync, members)
            if last:
                serial[0] += 1
                team.release(sync)
            else:
                team.wait_for(sync, generation)
            for j in range(done.shape[1]):
                seen[me, k, j] = done[k, j]
            team.barrier(sync, members)


def _run(size, slots=8):
    seen = np.zeros((size, STAGES, slots), np.int64)
    done = np.zeros((STAGES, slots), np.int64)
    serial = np.zeros(1 + size, np.int64)
    formed = np.zeros(1, np.int64)
    _stages(size, team.new_sync(), seen, done, serial, formed)
    return seen, done, serial, int(formed[0])


@needs_jit
@pytest.mark.parametrize("threads", [1, 2])
def test_every_member_sees_every_stage_before_the_next(threads):
    """After each barrier every member reads every member's writes of that stage; the
    serial part between stages runs once per stage; one member (a team of one) does all.
    (On a busy machine a member may start too late and leave the work to one: then only
    that one's view is checked, and the run is tried again, up to 5 times, for a team
    of all.)"""
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("needs more Numba threads")
    expected = np.arange(1, STAGES + 1)[:, None] * np.ones(8, np.int64)
    sizes = []
    numba.set_num_threads(threads)
    try:
        while len(sizes) < 5 and threads not in sizes:
            seen, done, serial, formed = _run(threads)
            sizes.append(formed)
            np.testing.assert_array_equal(done, expected)
            for member in range(formed):
                np.testing.assert_array_equal(seen[member], expected)
            assert not seen[formed:].any()
            assert serial[0] == STAGES
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert threads in sizes, sizes


@needs_jit
def test_members_that_cannot_run_together_leave_the_work_to_one():
    """A team larger than the threads (its members run one after another on one thread):
    the first waits FORM_SPINS, then works alone; the others leave. No hang, every stage
    done once."""
    numba.set_num_threads(1)
    try:
        seen, done, serial, formed = _run(2)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    expected = np.arange(1, STAGES + 1)[:, None] * np.ones(done.shape[1], np.int64)
    assert formed == 1
    np.testing.assert_array_equal(done, expected)
    np.testing.assert_array_equal(seen[0], expected)  # the one that worked, as member 0
    assert not seen[1].any()
    assert serial[0] == STAGES


def test_plain_python_definitions():
    """Without the JIT the atomics are plain operations (a team is never formed there:
    team_size is 1 without an initialised omp or workqueue layer)."""
    a = np.zeros(team.SYNC_SIZE, np.int64)
    assert team.atomic_add(a, 3, 5) == 0 and a[3] == 5
    assert team.atomic_load(a, 3) == 5
    team.atomic_store(a, 3, 9)
    assert a[3] == 9
    assert team.compare_exchange(a, 3, 9, 1) and a[3] == 1
    assert not team.compare_exchange(a, 3, 9, 2) and a[3] == 1
    assert team.form(team.new_sync(), 1) == 1
    if numba.config.DISABLE_JIT:
        assert team.team_size() == 1


@needs_jit
def test_team_size_follows_the_threading_layer():
    """Under omp or workqueue: the calling thread's Numba threads; else one."""
    _run(1)  # a parallel region: the layer is chosen
    expected = (numba.get_num_threads() if numba.threading_layer() in ("omp", "workqueue")
                else 1)
    assert team.team_size() == expected
