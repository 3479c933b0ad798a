"""A team of Numba threads that stays together through many short stages.

A parallel kernel whose work is a sequence of short stages, each needing the one before it
finished everywhere (immune-cell migration: two stages per move substep, 72 substeps a
step for T cells), pays Numba's fork and join at every stage when each is a parallel
region of its own: ~1.35 us at 2 threads on this 2-core machine, against ~0.2 us for the
barrier here (`benchmarks/README.md`, "Migration in one parallel region"). So such a
kernel starts one region of ``team`` iterations, one per thread (:func:`team_size`), and
its members meet at :func:`arrive` / :func:`release` / :func:`wait_for` between stages:
the last member to arrive runs the serial work between two stages (deciding the next
stage, compacting a list) while the others wait, then releases them.

This needs every member to run at the same time. Numba's ``omp`` and ``workqueue``
layers run a region of as many iterations as threads on that many threads; ``tbb`` may run
two on one thread, so the caller asks for a team only under the first two
(:func:`team_size`). The members still meet first (:func:`form`): should one of them not
have started within ``FORM_SPINS`` waits, a waiting member claims the whole work for
itself and the others leave when they start, so a runtime that serialises the iterations
costs a delay, never a hang. A member that waits spins with the CPU's pause hint and
yields its core every ``YIELD_SPINS`` waits (another process, or a descheduled member, may
need it).

The sync array (int64, ``SYNC_SIZE``) holds the counters on separate cache lines. Atomics
are LLVM's (``atomicrmw``, acquire loads, release stores, ``cmpxchg``); plain Python
definitions serve NUMBA_DISABLE_JIT, where a team is never formed (:func:`team_size`).
"""
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .jit import inline_jit, jit

# sync array entries, a cache line (8 int64) apart
ARRIVED = 0          # members at the current barrier
GENERATION = 8       # barriers completed
FORMED = 16          # members that have started
STATE = 24           # FORMING, TOGETHER or ALONE
SYNC_SIZE = 32

FORMING = 0
TOGETHER = 1         # every member started: work is split between them
ALONE = 2            # one member does all the work; the others leave

YIELD_SPINS = 2000   # pause hints (~0.1 ms) before a waiting member yields its core
FORM_SPINS = 200000  # waits (~15 ms) before a waiting member takes all the work


def team_size() -> int:
    """The members a team kernel may start: the calling thread's Numba threads where the
    threading layer runs them all at once (``omp``, ``workqueue``), else 1 (``tbb``, an
    uninitialised layer, NUMBA_DISABLE_JIT)."""
    if numba.config.DISABLE_JIT:
        return 1
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet: the layer is not chosen
        return 1
    return numba.get_num_threads() if layer in ("omp", "workqueue") else 1


def new_sync() -> np.ndarray:
    return np.zeros(SYNC_SIZE, np.int64)


# ----------------------------------------------------------------------------- atomics
def _element_pointer(context, builder, array_type, array, index):
    ary = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [index])


def atomic_add(array, index, value):
    """array[index] += value; returns the value before (atomic, sequentially consistent,
    in compiled code)."""
    old = int(array[index])
    array[index] = old + value
    return old


@intrinsic
def _atomic_add(typingctx, array, index, value):
    def codegen(context, builder, sig, args):
        pointer = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.atomic_rmw("add", pointer, args[2], "seq_cst")
    return types.int64(array, types.int64, types.int64), codegen


@overload(atomic_add, jit_options=dict(cache=True))
def _atomic_add_compiled(array, index, value):
    return lambda array, index, value: _atomic_add(array, np.int64(index), np.int64(value))


def atomic_load(array, index):
    """array[index], read with acquire ordering in compiled code."""
    return int(array[index])


@intrinsic
def _atomic_load(typingctx, array, index):
    def codegen(context, builder, sig, args):
        pointer = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(pointer, "acquire", 8)
    return types.int64(array, types.int64), codegen


@overload(atomic_load, jit_options=dict(cache=True))
def _atomic_load_compiled(array, index):
    return lambda array, index: _atomic_load(array, np.int64(index))


def atomic_store(array, index, value):
    """array[index] = value, with release ordering in compiled code."""
    array[index] = value


@intrinsic
def _atomic_store(typingctx, array, index, value):
    def codegen(context, builder, sig, args):
        pointer = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        builder.store_atomic(args[2], pointer, "release", 8)
        return context.get_dummy_value()
    return types.void(array, types.int64, types.int64), codegen


@overload(atomic_store, jit_options=dict(cache=True))
def _atomic_store_compiled(array, index, value):
    return lambda array, index, value: _atomic_store(array, np.int64(index), np.int64(value))


def compare_exchange(array, index, expected, value):
    """If array[index] == expected, set it to value; returns whether it did (atomic in
    compiled code)."""
    if array[index] != expected:
        return False
    array[index] = value
    return True


@intrinsic
def _compare_exchange(typingctx, array, index, expected, value):
    def codegen(context, builder, sig, args):
        pointer = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        pair = builder.cmpxchg(pointer, args[2], args[3], "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)
    return types.boolean(array, types.int64, types.int64, types.int64), codegen


@overload(compare_exchange, jit_options=dict(cache=True))
def _compare_exchange_compiled(array, index, expected, value):
    return lambda array, index, expected, value: _compare_exchange(
        array, np.int64(index), np.int64(expected), np.int64(value))


def pause_or_yield(spins):
    """One wait of a spinning member: the CPU's pause hint, and every ``YIELD_SPINS``-th
    time ``sched_yield``. (Plain Python: nothing.)"""
    return None


@intrinsic
def _pause(typingctx):
    def codegen(context, builder, sig, args):
        hint = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                              "llvm.x86.sse2.pause")
        builder.call(hint, [])
        return context.get_dummy_value()
    return types.void(), codegen


@intrinsic
def _sched_yield(typingctx):
    def codegen(context, builder, sig, args):
        give_up = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        builder.call(give_up, [])
        return context.get_dummy_value()
    return types.void(), codegen


@overload(pause_or_yield, jit_options=dict(cache=True))
def _pause_or_yield_compiled(spins):
    def wait(spins):
        if spins % YIELD_SPINS == YIELD_SPINS - 1:
            _sched_yield()
        else:
            _pause()
    return wait


# ----------------------------------------------------------------------------- meeting
@jit
def form(sync, team):
    """The first meeting of a team kernel's ``team`` members; returns how many share the
    work: ``team`` (all started: each works as its own member), 1 (the caller does all of
    it, as member 0 of a team of one: some member had not started after FORM_SPINS waits)
    or 0 (the caller leaves: another does it all). ``sync`` must be zero on entry
    (:func:`new_sync`)."""
    if team <= 1:
        return 1
    if atomic_add(sync, FORMED, 1) == team - 1:
        return team if compare_exchange(sync, STATE, FORMING, TOGETHER) else 0
    spins = np.int64(0)
    while atomic_load(sync, STATE) == FORMING:
        if spins >= FORM_SPINS and compare_exchange(sync, STATE, FORMING, ALONE):
            return 1
        pause_or_yield(spins)
        spins += 1
    return team if atomic_load(sync, STATE) == TOGETHER else 0


@inline_jit
def arrive(sync, team):
    """A member reaches a barrier: (whether it is the last of the ``team``, the barrier's
    generation). The last runs whatever must run alone, then :func:`release`; the others
    :func:`wait_for` the generation to pass."""
    generation = atomic_load(sync, GENERATION)
    return atomic_add(sync, ARRIVED, 1) == team - 1, generation


@inline_jit
def release(sync):
    """The last member opens the barrier (its writes before are seen by every member
    after it: release, then acquire in :func:`wait_for`)."""
    atomic_store(sync, ARRIVED, 0)
    atomic_add(sync, GENERATION, 1)


@inline_jit
def wait_for(sync, generation):
    spins = np.int64(0)
    while atomic_load(sync, GENERATION) == generation:
        pause_or_yield(spins)
        spins += 1


@inline_jit
def barrier(sync, team):
    """Every member waits here until all have arrived."""
    last, generation = arrive(sync, team)
    if last:
        release(sync)
    else:
        wait_for(sync, generation)
