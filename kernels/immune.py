"""Mobile immune cells on the lattice: migration, entry at vessels or beside a parent, death.

An immune population (T cells, suppressive cells) is a set of agent arrays — ``sites[a]``
(flat padded index) plus per-population attributes — while the lattice holds the cell's
kind at that site. Kernels here serve any population; ``kernels.t_cells`` adds killing.

Migration (:func:`migrate`): each move substep has two stages over the *active* agents
only, a compact list of the agents that may still move in this call:

1. Propose and claim. A mobile agent with at least one EMPTY Moore neighbour draws one
   uniform ``u`` keyed by (step key, substep, its site). With ``u < bias`` it heads for the
   empty neighbour with the steepest rise of the attractant field, ``(c_j - c_i) /
   |j - i|`` (first in neighbour order on a tie), if any rises; otherwise (and for
   ``u >= bias``) it picks an empty neighbour uniformly, using the rest of the same draw
   (:func:`_propose`). It then claims its target (:func:`_claim`): the claim left at a
   target is the proposer with the highest hash priority (keyed by its site; ties by the
   larger site index) - a maximum, so independent of the visiting order. It is written as
   ``tag * TAG_UNIT + direction + 1`` at the target: a fresh ``tag`` per substep makes
   every older entry stale without clearing the array. An agent that can never move again
   in this call (it stops next to a target it recognises - ``seen``, one flag per tumour
   clone - or is walled in by cells that do not move) is marked INERT.
2. Move. Each agent whose claim holds moves; winners write only their own source (EMPTY)
   and target (their kind). Losers stay; INERT agents leave the list.

The list is cut into chunks of consecutive entries (in site order), each worked by one
thread; claims of chunks that could reach the same site never run at once
(:func:`migrate`). On several threads with enough movers (:func:`chunks_for`) a call is
one parallel region whose threads meet at a barrier after each of a substep's two stages
(``kernels.team``); otherwise no region at all.

The rule is the synchronous one of ``tests/naive.py::migrate_substep`` (all proposals of a
substep see the lattice as the previous substep left it, then each target goes to its
highest-priority proposer); the active list only skips agents that would propose nothing.

The proposals, claims and moves index the lattice with unsigned sites (``np.uint64``): a
signed index gets a negative-index check at every access, ~20 per agent-substep (1.14x in
2D, 1.15x in 3D at 1 thread, ``benchmarks/README.md``).

Entry of new cells (:func:`place_beside`) is serial in a fixed order (parents sorted by
site): parent p places ``counts[p]`` new cells, the m-th on a uniformly chosen EMPTY
neighbour (draw keyed by the parent's site and m), while free neighbours last. The counts
are drawn separately: Poisson entries per vessel (:func:`entry_counts`, one inverse-CDF
draw; the step's expected entries split by :func:`extravasation_weights`) for
recruitment, one Bernoulli per kill (:func:`bernoulli_counts`) for expansion.
Counts are small (hundreds per step), so the serial pass costs little and needs no
conflict rule.
"""
import math

import numpy as np

from .jit import SERIAL, inline_jit, jit, nrt_free_jit, parallel_jit, prange
from .lattice import (EMPTY, bit_count, moore_masks_2d, nth_set_bit, steepest_free_2d,
                             trailing_zeros)
from .rng import hash_index, step_key, uniform
from .team import SYNC_SIZE, arrive, barrier, form, release, wait_for

TAG_UNIT = 32        # proposal = tag * TAG_UNIT + code; code 1..26 (Moore neighbour + 1)


def max_tag(dtype) -> int:
    """The tags a proposal array of this integer dtype holds: callers keep ``first_tag +
    max(last)`` below it, clearing the array and restarting the tags when a call would not.
    The engine's array is uint16 (2 B per site, 2048 tags: half the cache lines of int32,
    ~0.25 ms of a 1000x1000 step's 11 ms of migration at 1 thread, benchmarks/README.md),
    int32 for a run whose calls have more substeps than that."""
    return (int(np.iinfo(dtype).max) - 26) // TAG_UNIT + 1


# ``direction`` codes written by :func:`_propose` besides a neighbour index 0..25
NO_MOVE = -1         # no proposal this substep (no free neighbour now; one may free up)
INERT = -2           # can never move again in this call: dropped from the active list

# chunks of the active list (chunks_for): at most CHUNKS_PER_THREAD per thread (of 2, 4, 8
# and 16, 4 and 8 were fastest at 1000 x 1000, 2 threads), of at least MIN_CHUNK agents
# (not tuned)
MIN_CHUNK = 256
CHUNKS_PER_THREAD = 4
# the chunks are cut again to equal counts when the largest holds more than this times the
# mean: agents drop out of the list unevenly (T cells that reach the tumour), and a parity
# stage waits for its fullest chunks (1.2, 1.1 and 1.05 took 1000x1000 T-cell migration at
# 2 threads from ~17.0-17.3 to ~16.3-16.6 ms, best of the three 1.05)
REBALANCE = 1.05
BUCKETS = 4096       # at most this many site buckets in the locality sort of :func:`migrate`


@inline_jit
def _scan_moore_2d(kind, clone, seen, i, offsets, stop_kind, agent_kind, screen):
    """:func:`_propose`'s scan of the 8 neighbours in 2D: their kinds as one vector,
    compared with three kinds at once (``kernels.lattice.moore_masks_2d``). The same
    answers as the loop over ``offsets`` that 3D runs."""
    free, crowded_mask, stops = moore_masks_2d(kind, i, offsets[6], EMPTY, agent_kind,
                                                stop_kind)
    crowded = crowded_mask != 0
    beside_stop = False
    if screen:
        while stops != 0:
            d = trailing_zeros(stops)
            beside_stop |= seen[clone[np.uint64(i + offsets[d])]] != 0
            stops &= stops - 1
    else:
        beside_stop = stops != 0
    return free, bit_count(free), crowded, beside_stop


@inline_jit
def _propose(kind, clone, seen, attractant, i, halt, first, last, substep, stop_kind,
             agent_kind, offsets, inv_length, bias, move_key, use_field, screen):
    """The move of the agent at site i in this substep (see the module docstring): its
    direction, NO_MOVE or INERT.

    halt        it stays put next to a ``stop_kind`` cell it sees
    clone, seen a ``stop_kind`` cell at site j is seen iff ``seen[clone[j]]`` (one uint8 per
                clone: a T cell recognises the cell); ``screen`` False: every one is
    first, last it moves in substeps first <= substep < last (NO_MOVE before, INERT from
                ``last`` on)
    attractant  the chemokine field per site, read when ``use_field``
    inv_length  per Moore direction: 1 / length of the offset in sites
    bias        probability that a move follows the attractant gradient
    move_key    key of this substep (stream, step, substep already mixed in)

    INERT also marks an agent that stops next to ``stop_kind`` and one whose neighbours are
    neither EMPTY nor ``agent_kind``: only a moving ``agent_kind`` cell empties a site during
    a call, so neither can move again in it."""
    if substep >= last:
        return INERT
    if substep < first:
        return NO_MOVE
    n_neighbours = offsets.shape[0]
    # branch-free scan (the neighbours' kinds are unpredictable): the free ones as a bit
    # mask, whether one holds a mover of this kind, whether one holds a stop kind
    if n_neighbours == 8:
        free, n_free, crowded, beside_stop = _scan_moore_2d(kind, clone, seen, i, offsets,
                                                            stop_kind, agent_kind, screen)
    else:
        free = 0
        n_free = 0
        crowded = False
        beside_stop = False
        for d in range(n_neighbours):
            j = np.uint64(i + offsets[d])  # unsigned: no negative-index check per access
            c = kind[j]
            empty = c == EMPTY
            free |= np.int64(empty) << d
            n_free += empty
            crowded |= c == agent_kind
            if screen:
                beside_stop |= (c == stop_kind) & (seen[clone[j]] != 0)
            else:
                beside_stop |= c == stop_kind
    if (halt and beside_stop) or (n_free == 0 and not crowded):
        return INERT
    if n_free == 0:
        return NO_MOVE
    u = uniform(move_key, i)
    follow = u < bias
    # in 2D the gradient's pick (one vector of the eight rises, ``steepest_free_2d``) and
    # the uniform pick are both computed and one is selected: which one applies is a coin
    # flip, and a branch on it mispredicted about every other proposal (~10 ns each;
    # benchmarks/README.md); in 3D the gradient over 26 neighbours costs more than that,
    # so it is computed only when followed
    steepest = -1
    if use_field and n_neighbours == 8:
        steepest = steepest_free_2d(attractant, i, offsets[6], inv_length, free)
    elif use_field and follow:
        # every neighbour's rise is computed; a free one that rises more than the best so
        # far is selected (first in order on a tie)
        here = attractant[i]
        best_rise = 0.0
        for d in range(n_neighbours):
            rise = (attractant[np.uint64(i + offsets[d])] - here) * inv_length[d]
            take = (((free >> d) & 1) != 0) & (rise > best_rise)
            best_rise = rise if take else best_rise
            steepest = d if take else steepest
    # the rest of the draw, rescaled to [0, 1) (error_model "numpy": the unused quotient
    # of a bias of 0 or 1 is inf or NaN, not an exception)
    r = (u - bias) / (1.0 - bias) if u >= bias else u / bias
    anywhere = nth_set_bit(free, min(int(r * n_free), n_free - 1))
    return steepest if follow & (steepest >= 0) else anywhere


@inline_jit
def _claim(proposal, i, d, offsets, base, priority_key):
    """The agent at site i claims its target i + offsets[d]: ``proposal[j] = base + d + 1``
    unless the claim there (of this substep) is a proposer of higher hash priority (ties:
    the larger site)."""
    j = i + offsets[d]
    at = np.uint64(j)  # unsigned index: no negative-index check
    code = proposal[at] - base
    if code < 1:
        proposal[at] = base + d + 1
        return
    rival = j - offsets[code - 1]
    mine = hash_index(priority_key, i)
    other = hash_index(priority_key, rival)
    if mine > other or (mine == other and i > rival):
        proposal[at] = base + d + 1


# The stretch functions below work on entries [lo, hi) of the active list through slices
# and loops from 0 (a loop index that could be negative gets wraparound code at every
# access: 1.5 ms per step at 1000 x 1000) and run without reference counts (kernels.jit).
@nrt_free_jit
def _propose_stretch(kind, clone, seen, attractant, proposal, active, halt, start, stop,
                     direction, lo, hi, substep, stop_kind, agent_kind, offsets, inv_length,
                     bias, move_key, claim, base, priority_key):
    """Each entry's move of this substep into ``direction``; with ``claim`` the moves then
    claim their targets (:func:`_claim_stretch`: a second loop, as claiming within the
    first cost 3D migration 10-15%, its scattered stores interleaved with the scans)."""
    use_field = attractant.shape[0] > 0
    screen = seen.shape[0] > 0
    sites = active[lo:hi]
    halts = halt[lo:hi]
    starts = start[lo:hi]
    stops = stop[lo:hi]
    directions = direction[lo:hi]
    if offsets.shape[0] == 8:
        # 2D: the same loop, in which LLVM knows the neighbour count (this branch implies
        # it), so it keeps only _propose's 2D paths (the vector scan and rise); one loop
        # for any count ran the proposals ~1.5x slower (benchmarks/README.md)
        for k in range(hi - lo):
            directions[k] = _propose(kind, clone, seen, attractant, sites[k], halts[k],
                                     starts[k], stops[k], substep, stop_kind, agent_kind,
                                     offsets, inv_length, bias, move_key, use_field, screen)
    else:
        for k in range(hi - lo):
            directions[k] = _propose(kind, clone, seen, attractant, sites[k], halts[k],
                                     starts[k], stops[k], substep, stop_kind, agent_kind,
                                     offsets, inv_length, bias, move_key, use_field, screen)
    if claim:
        _claim_stretch(proposal, active, direction, lo, hi, offsets, base, priority_key)


@nrt_free_jit
def _claim_stretch(proposal, active, direction, lo, hi, offsets, base, priority_key):
    """The claims of entries [lo, hi), their directions set."""
    sites = active[lo:hi]
    directions = direction[lo:hi]
    for k in range(hi - lo):
        d = directions[k]
        if d >= 0:
            _claim(proposal, sites[k], d, offsets, base, priority_key)


@nrt_free_jit
def _move_stretch(kind, proposal, active, agent, halt, start, stop, moved, direction, lo,
                  hi, offsets, base, agent_kind, substep, sites, arrived, span, c):
    """Entries [lo, hi) whose claim holds move (``moved[k] = substep + 1``); the INERT ones
    leave the list, their site and arrival written back to ``sites`` and ``arrived``; the
    rest close up, in order, from ``lo``. ``span[c]`` = (entries kept, their lowest site,
    their highest site)."""
    positions = active[lo:hi]
    agents = agent[lo:hi]
    halts = halt[lo:hi]
    starts = start[lo:hi]
    stops = stop[lo:hi]
    moves = moved[lo:hi]
    directions = direction[lo:hi]
    kept = 0
    low = np.int64(2 ** 62)
    high = np.int64(-1)
    for k in range(hi - lo):
        d = directions[k]
        i = positions[k]
        if d == INERT:
            sites[agents[k]] = i
            arrived[agents[k]] = moves[k]
            continue
        if d >= 0:
            j = i + offsets[d]
            target = np.uint64(j)  # unsigned indices: no negative-index checks
            if proposal[target] == base + d + 1:
                kind[target] = agent_kind
                kind[np.uint64(i)] = EMPTY
                i = j
                moves[k] = substep + 1
        _keep(positions, agents, halts, starts, stops, moves, k, kept, i)
        kept += 1
        low = min(low, i)
        high = max(high, i)
    span[c, 0] = kept
    span[c, 1] = low
    span[c, 2] = high


@inline_jit
def _keep(active, agent, halt, start, stop, moved, k, kept, site):
    """Entry k of the active list moves to entry kept (<= k), at ``site``."""
    to = np.uint64(kept)  # a counter, not a loop index: unsigned spares the index check
    active[to] = site
    agent[to] = agent[k]
    halt[to] = halt[k]
    start[to] = start[k]
    stop[to] = stop[k]
    moved[to] = moved[k]


# modes of :func:`_in_parallel`
EVEN = 0             # even chunks: their moves of the previous substep, then proposals, claims
ODD = 1              # odd chunks: proposals and claims, then their moves
PROPOSE_ONLY = -1    # proposals of every chunk, no claims
MOVE = 2             # moves of every chunk
MOVE_EVEN = 3        # the even chunks' moves of the previous substep


@nrt_free_jit
def _chunk_stage(mode, c, kind, clone, seen, attractant, proposal, active, agent, halt,
                 start, stop, moved, direction, span, lo, substep, stop_kind, agent_kind,
                 offsets, inv_length, bias, move_key, base, priority_key, sites, arrived,
                 waiting, previous_base):
    """Chunk c's part of one stage of migration (the modes above; its entries start at
    ``lo``); with ``waiting``, EVEN and MOVE_EVEN first move its winners of substep
    ``substep - 1``, whose claims are tagged ``previous_base``."""
    if (mode == EVEN or mode == MOVE_EVEN) and waiting:
        _move_stretch(kind, proposal, active, agent, halt, start, stop, moved, direction,
                      lo, lo + span[c, 0], offsets, previous_base, agent_kind, substep - 1,
                      sites, arrived, span, c)
    hi = lo + span[c, 0]
    if mode != MOVE and mode != MOVE_EVEN:
        _propose_stretch(kind, clone, seen, attractant, proposal, active, halt, start, stop,
                         direction, lo, hi, substep, stop_kind, agent_kind, offsets,
                         inv_length, bias, move_key, mode != PROPOSE_ONLY, base, priority_key)
    if mode == ODD or mode == MOVE:
        _move_stretch(kind, proposal, active, agent, halt, start, stop, moved, direction,
                      lo, hi, offsets, base, agent_kind, substep, sites, arrived, span, c)


@inline_jit
def _stage_chunks(mode, n_chunks):
    """(first chunk, step between chunks, how many) of a stage: every other chunk from 0
    (EVEN, MOVE_EVEN) or 1 (ODD), or every chunk."""
    step = 2 if mode != PROPOSE_ONLY and mode != MOVE else 1
    first = 1 if mode == ODD else 0
    return first, step, (n_chunks - first + step - 1) // step


@parallel_jit
def _in_parallel(mode, kind, clone, seen, attractant, proposal, active, agent, halt, start,
                 stop, moved, direction, bounds, span, substep, stop_kind, agent_kind, offsets,
                 inv_length, bias, move_key, base, priority_key, sites, arrived, waiting,
                 previous_base):
    """One stage of migration on its chunks as a parallel region of its own
    (:func:`_chunk_stage`): ``benchmarks/profile_migration.py`` times the stages this way;
    :func:`migrate` runs them all in one region (:func:`_team_substeps`)."""
    first, step, count = _stage_chunks(mode, bounds.shape[0] - 1)
    for q in prange(count):
        c = np.int64(first + q * step)  # (a prange index is unsigned: another copy)
        _chunk_stage(mode, c, kind, clone, seen, attractant, proposal, active, agent, halt,
                     start, stop, moved, direction, span, bounds[c], substep, stop_kind,
                     agent_kind, offsets, inv_length, bias, move_key, base, priority_key,
                     sites, arrived, waiting, previous_base)


@jit
def _parities_apart(span, gap):
    """True when, among the chunks of each parity (even, odd), the non-empty ones lie in
    order more than ``gap`` sites apart: each one's highest site + gap lies below the next
    one's lowest site. (With a gap of 2 * reach, no two chunks of one parity can claim the
    same site; :func:`migrate` asks for more.)"""
    for parity in range(2):
        previous = -1
        for c in range(parity, span.shape[0], 2):
            if span[c, 0] == 0:
                continue
            if previous >= 0 and span[previous, 2] + gap >= span[c, 1]:
                return False
            previous = c
    return True


@jit
def by_site_bucket(sites, n, n_sites):
    """Agent indices [0, n) ordered by site bucket (a stable counting sort on
    ``site >> shift``, at most BUCKETS buckets): each thread then works on its own stretch
    of the lattice in memory order. The order is a pure function of ``sites``."""
    shift = 0
    while (n_sites - 1) >> shift >= BUCKETS:
        shift += 1
    counts = np.zeros(BUCKETS + 1, np.int64)
    for a in range(n):
        counts[(sites[a] >> shift) + 1] += 1
    for b in range(BUCKETS):
        counts[b + 1] += counts[b]
    order = np.empty(n, np.int64)
    for a in range(n):
        b = sites[a] >> shift
        order[counts[b]] = a
        counts[b] += 1
    return order


def chunks_for(movers: int, threads: int) -> int:
    """The chunks :func:`migrate` should cut ``movers`` agents into on ``threads`` threads:
    up to CHUNKS_PER_THREAD per thread of at least MIN_CHUNK agents each, and at least two
    per thread, so that each parity has a chunk for every thread (with two chunks, the
    proposals would run on one thread at a time); else one chunk and no parallel region
    (at one thread, or below 2 * threads * MIN_CHUNK movers)."""
    if threads <= 1 or movers < 2 * threads * MIN_CHUNK:
        return 1
    return min(CHUNKS_PER_THREAD * threads, movers // MIN_CHUNK)


def chunks_for_agents(first, last, threads: int) -> int:
    """:func:`chunks_for` the agents of a :func:`migrate` call (``first``, ``last``: each
    agent's substeps; movers are those with at least one)."""
    return chunks_for(int(np.count_nonzero(first < last)), threads)


@jit
def _chunk_spans(active, n_active, n_chunks):
    """Entries [0, n_active) of the active list cut into ``n_chunks`` (at most n_active,
    at least 1) chunks of consecutive entries: (bounds, n_chunks + 1 start entries; span,
    per chunk (entries, lowest site, highest site), an empty chunk (0, 2 ** 62, -1))."""
    bounds = np.empty(n_chunks + 1, np.int64)
    span = np.empty((n_chunks, 3), np.int64)
    _cut(active, n_active, bounds, span)
    return bounds, span


@jit
def _cut(active, n_active, bounds, span):
    """:func:`_chunk_spans` into the given ``bounds`` and ``span`` (their chunk count)."""
    n_chunks = span.shape[0]
    for c in range(n_chunks + 1):
        bounds[c] = c * n_active // n_chunks
    for c in range(n_chunks):
        span[c, 0] = bounds[c + 1] - bounds[c]
        span[c, 1] = np.int64(2 ** 62)
        span[c, 2] = -1
        for k in range(bounds[c], bounds[c + 1]):
            span[c, 1] = min(span[c, 1], active[k])
            span[c, 2] = max(span[c, 2], active[k])


@jit
def _needs_rebalance(span):
    """Whether, of two or more chunks, the fullest holds more than REBALANCE times the
    mean."""
    n_chunks = span.shape[0]
    n_active = 0
    largest = 0
    for c in range(n_chunks):
        n_active += span[c, 0]
        largest = max(largest, span[c, 0])
    return n_chunks >= 2 and largest * n_chunks > REBALANCE * n_active


@jit
def _rebalance(active, agent, halt, start, stop, moved, bounds, span):
    """(entries in all, whether cut again) of the active list: when
    :func:`_needs_rebalance`, every chunk's kept entries are closed up, in order, to the
    front and cut again, in place, into as many chunks of equal count (:func:`_cut`);
    otherwise the chunks stay as they are."""
    n_chunks = bounds.shape[0] - 1
    n_active = 0
    for c in range(n_chunks):
        n_active += span[c, 0]
    if not _needs_rebalance(span):
        return n_active, False
    kept = 0
    for c in range(n_chunks):
        for k in range(bounds[c], bounds[c] + span[c, 0]):
            _keep(active, agent, halt, start, stop, moved, k, kept, active[k])
            kept += 1
    _cut(active, np.int64(n_active), bounds, span)
    return n_active, True


# the plan of a team's next stage (int64 entries, written by the member that runs the
# serial part between two stages, read by all after the barrier)
PLAN_SUBSTEP = 0        # the substep to run next
PLAN_ACTIVE = 1         # entries in the active list
PLAN_APART = 2          # whether the next substep runs by parity (_parities_apart)
PLAN_WAITING = 3        # whether the even chunks' moves of the last substep wait
PLAN_FLUSH = 4          # whether they are made now, in a stage of their own
PLAN_PREVIOUS_BASE = 5  # the claim tag of the last substep
PLAN_COLOURED = 6       # substeps run by parity so far
PLAN_REBALANCED = 7     # times the chunks were cut again
PLAN_SIZE = 8


@nrt_free_jit
def _member_stage(mode, member, team, kind, clone, seen, attractant, proposal, active, agent,
                  halt, start, stop, moved, direction, bounds, span, substep, stop_kind,
                  agent_kind, offsets, inv_length, bias, move_key, base, priority_key, sites,
                  arrived, waiting, previous_base):
    """A member's share of a stage: a contiguous block of the stage's chunks."""
    first, step, count = _stage_chunks(mode, bounds.shape[0] - 1)
    for q in range(member * count // team, (member + 1) * count // team):
        c = first + q * step
        _chunk_stage(mode, c, kind, clone, seen, attractant, proposal, active, agent, halt,
                     start, stop, moved, direction, span, bounds[c], substep, stop_kind,
                     agent_kind, offsets, inv_length, bias, move_key, base, priority_key,
                     sites, arrived, waiting, previous_base)


@jit
def _settle(plan, active, agent, halt, start, stop, moved, bounds, span, gap):
    """The end of a substep once no moves wait (serial): the chunks cut again if
    :func:`_rebalance` says so, the active count and the next substep's way (by
    parity or not) in ``plan``."""
    if plan[PLAN_WAITING] != 0:
        n_active = 0
        for c in range(span.shape[0]):
            n_active += span[c, 0]
    else:
        n_active, cut = _rebalance(active, agent, halt, start, stop, moved, bounds, span)
        plan[PLAN_REBALANCED] += cut
    plan[PLAN_ACTIVE] = n_active
    plan[PLAN_APART] = _parities_apart(span, gap)


@jit
def _end_substep(plan, base, by_parity, n_substeps, active, agent, halt, start, stop, moved,
                 bounds, span, gap):
    """The serial part after a substep's last stage: the even chunks' moves wait for the
    next substep's first stage unless this was the last substep, the chunks are to be
    cut again, or the next substep cannot run by parity (whose fallback reads every
    chunk): then PLAN_FLUSH asks for a stage that makes them first."""
    plan[PLAN_PREVIOUS_BASE] = base
    plan[PLAN_SUBSTEP] += 1
    plan[PLAN_COLOURED] += by_parity
    plan[PLAN_WAITING] = by_parity
    plan[PLAN_FLUSH] = 0
    if by_parity and (plan[PLAN_SUBSTEP] == n_substeps or _needs_rebalance(span)
                      or not _parities_apart(span, gap)):
        plan[PLAN_FLUSH] = 1
        return
    _settle(plan, active, agent, halt, start, stop, moved, bounds, span, gap)


@nrt_free_jit
def _member(member, team, sync, plan, kind, clone, seen, attractant, proposal, active, agent,
            halt, start, stop, moved, direction, bounds, span, n_substeps, stop_kind,
            agent_kind, offsets, inv_length, bias, first_tag, move_step_key,
            priority_step_key, sites, arrived, gap):
    """One member's run of :func:`migrate`'s substeps (:func:`_team_substeps`): its share
    of every stage, a barrier after each, and, when it arrives last at a barrier, the
    serial part before the next stage (:func:`_end_substep`, the claims of a substep
    that cannot run by parity)."""
    size = form(sync, team)
    if size == 0:
        return
    # the stages' modes as values, not literals (each literal would compile another copy
    # of the stage and of everything it inlines)
    even, odd = np.int64(EVEN), np.int64(ODD)
    propose_only, move, move_even = np.int64(PROPOSE_ONLY), np.int64(MOVE), np.int64(MOVE_EVEN)
    if size < team:  # the others have not started: this member works alone
        member = 0
        team = size
    while plan[PLAN_SUBSTEP] < n_substeps and plan[PLAN_ACTIVE] > 0:
        s = plan[PLAN_SUBSTEP]
        base = (first_tag + s) * TAG_UNIT
        move_key = step_key(move_step_key, s)
        priority_key = step_key(priority_step_key, s)
        waiting = plan[PLAN_WAITING] != 0
        previous_base = plan[PLAN_PREVIOUS_BASE]
        by_parity = plan[PLAN_APART] != 0
        if by_parity:
            _member_stage(even, member, team, kind, clone, seen, attractant, proposal, active,
                          agent, halt, start, stop, moved, direction, bounds, span, s,
                          stop_kind, agent_kind, offsets, inv_length, bias, move_key, base,
                          priority_key, sites, arrived, waiting, previous_base)
            barrier(sync, team)
            _member_stage(odd, member, team, kind, clone, seen, attractant, proposal, active,
                          agent, halt, start, stop, moved, direction, bounds, span, s,
                          stop_kind, agent_kind, offsets, inv_length, bias, move_key, base,
                          priority_key, sites, arrived, waiting, previous_base)
        else:
            _member_stage(propose_only, member, team, kind, clone, seen, attractant,
                          proposal, active, agent, halt, start, stop, moved, direction,
                          bounds, span, s, stop_kind, agent_kind, offsets, inv_length, bias,
                          move_key, base, priority_key, sites, arrived, waiting,
                          previous_base)
            last, generation = arrive(sync, team)
            if last:  # the claims one chunk after another
                for c in range(span.shape[0]):
                    _claim_stretch(proposal, active, direction, bounds[c],
                                   bounds[c] + span[c, 0], offsets, base, priority_key)
                release(sync)
            else:
                wait_for(sync, generation)
            _member_stage(move, member, team, kind, clone, seen, attractant, proposal,
                          active, agent, halt, start, stop, moved, direction, bounds, span, s,
                          stop_kind, agent_kind, offsets, inv_length, bias, move_key, base,
                          priority_key, sites, arrived, waiting, previous_base)
        last, generation = arrive(sync, team)
        if last:
            _end_substep(plan, base, by_parity, n_substeps, active, agent, halt, start, stop,
                         moved, bounds, span, gap)
            release(sync)
        else:
            wait_for(sync, generation)
        if plan[PLAN_FLUSH] != 0:
            _member_stage(move_even, member, team, kind, clone, seen, attractant, proposal,
                          active, agent, halt, start, stop, moved, direction, bounds, span,
                          plan[PLAN_SUBSTEP], stop_kind, agent_kind, offsets, inv_length, bias,
                          move_key, base, priority_key, sites, arrived, plan[PLAN_FLUSH] != 0,
                          plan[PLAN_PREVIOUS_BASE])
            last, generation = arrive(sync, team)
            if last:
                plan[PLAN_WAITING] = 0
                plan[PLAN_FLUSH] = 0
                _settle(plan, active, agent, halt, start, stop, moved, bounds, span, gap)
                release(sync)
            else:
                wait_for(sync, generation)


@parallel_jit
def _team_substeps(team, sync, plan, kind, clone, seen, attractant, proposal, active, agent,
                   halt, start, stop, moved, direction, bounds, span, n_substeps, stop_kind,
                   agent_kind, offsets, inv_length, bias, first_tag, move_step_key,
                   priority_step_key, sites, arrived, gap):
    """:func:`migrate`'s substeps on several chunks: one parallel region of ``team``
    members (``kernels.team``), one per thread, each running :func:`_member`."""
    for m in prange(team):
        _member(np.int64(m), team, sync, plan, kind, clone, seen, attractant, proposal,
                active, agent, halt, start, stop, moved, direction, bounds, span, n_substeps,
                stop_kind, agent_kind, offsets, inv_length, bias, first_tag, move_step_key,
                priority_step_key, sites, arrived, gap)


@jit
def migrate(kind, clone, seen, attractant, proposal, sites, n, stops, first, last, stop_kind,
            offsets, inv_length, bias, first_tag, move_step_key, priority_step_key, agent_kind,
            arrived, n_chunks, team):
    """Move substeps (propose, claim, move) until no agent can move: agent a moves in
    substeps ``first[a] <= s < last[a]``, substep s using tag ``first_tag + s`` and the
    keys ``step_key(move_step_key, s)`` / ``step_key(priority_step_key, s)``. Returns
    (the number of substeps run, how many of them ran their claims in parallel by parity,
    how many times the chunks were cut again);
    ``arrived[a]`` = 1 + the substep of agent a's last move (0 if it did not move).
    ``clone``, ``seen``: which ``stop_kind`` cells an agent stops beside (:func:`_propose`).
    The caller keeps ``first_tag + max(last)`` below ``max_tag(proposal.dtype)`` (clearing
    ``proposal`` and restarting the tags when it would not be) and chooses ``n_chunks``
    (:func:`chunks_for_agents`) and ``team``, the threads that share the chunks (at most
    the calling thread's Numba threads, ``kernels.team.team_size``; more would wait for
    each other until one works alone, ``kernels.team.form``); the result depends on
    neither, and the serial flavour (``kernels.jit.SERIAL``) works one chunk, no team.

    Cost follows the agents that can still move, not the population: agents with no
    substep to move in are left out from the start, and an agent found INERT is dropped
    (a T cell that stops next to a tumour cell stays stopped: tumour cells do not move
    during migration). The active agents are a compact list of sites in site-bucket order
    (:func:`by_site_bucket`; one sort per call serves every substep, agents moving only
    locally), cut into ``n_chunks`` contiguous chunks (each closes up within its own range
    as its agents drop out; all are cut again to equal counts when the fullest holds more
    than REBALANCE times the mean: :func:`_rebalance`). With one chunk the substeps run
    here, one after another. With several, one parallel region runs them all
    (:func:`_team_substeps`: one member per thread, ``kernels.team``), and a substep is,
    when the chunks of each parity lie more than three reaches apart
    (:func:`_parities_apart`; the list is in site order, so they do unless chunks are
    thinner than a few rows), two stages with a barrier after each:

    1. the even chunks: the moves of the substep before, then the proposals and claims;
    2. the odd chunks: the proposals and claims, then the moves.

    A chunk's moves need the claims of both its neighbours, so the even chunks' moves wait
    for the next substep's first stage (one stage fewer per substep than moves of their
    own); each chunk then touches sites within two reaches of its agents at the start of
    the stage, and three reaches keep those apart. The waiting moves are made in a stage of
    their own after the last substep, before the chunks are cut again, and before a
    substep whose chunks are too close: that one runs every chunk's proposals in parallel,
    the claims one chunk after another, then every chunk's moves in parallel (winners'
    targets are distinct and were empty). The serial parts between stages (those claims,
    cutting the chunks again, deciding the next stage) run in the member that reaches the
    barrier last, while the others wait.

    Each agent writes only its own list entries and the target it wins; the claim left at
    a site is a maximum over its proposers, whatever the order they claim in. So neither
    the chunks nor the threads change the result (tests/test_kernels_immune.py runs
    several chunk counts and teams against the naive reference)."""
    order = by_site_bucket(sites, n, kind.shape[0])
    active = np.empty(n, np.int64)
    agent = np.empty(n, np.int64)
    halt = np.empty(n, np.bool_)
    start = np.empty(n, np.int64)
    stop = np.empty(n, np.int64)
    moved = np.zeros(n, np.int64)
    direction = np.full(n, INERT, np.int64)
    n_substeps = np.int64(0)  # (not the literal 0: that would compile the team twice)
    n_active = 0
    for k in range(n):
        a = order[k]
        arrived[a] = 0
        if first[a] < last[a]:  # agents with no substep to move in leave before the first
            active[n_active] = sites[a]
            agent[n_active] = a
            halt[n_active] = stops[a]
            start[n_active] = first[a]
            stop[n_active] = last[a]
            n_active += 1
            n_substeps = max(n_substeps, last[a])
    # one chunk and no team in the serial flavour, whatever the caller asks: ``SERIAL`` is
    # a constant there, so the team's branch below is pruned before typing and never
    # compiled (~3 s of the default scenario's compiling)
    n_chunks = np.int64(1) if SERIAL else max(1, min(n_chunks, n_active))
    bounds, span = _chunk_spans(active, np.int64(n_active), n_chunks)  # (not a literal 0)
    reach = np.int64(0)  # the farthest a claim lands from its proposer, in flat sites
    for d in range(offsets.shape[0]):
        reach = max(reach, abs(offsets[d]))
    if SERIAL or n_chunks == 1:  # no parallel region at all
        s = np.int64(0)
        while s < n_substeps and n_active > 0:
            base = (first_tag + s) * TAG_UNIT
            move_key = step_key(move_step_key, s)
            priority_key = step_key(priority_step_key, s)
            only = n_chunks - 1
            _propose_stretch(kind, clone, seen, attractant, proposal, active, halt, start,
                             stop, direction, bounds[only], bounds[only] + span[only, 0], s,
                             stop_kind, agent_kind, offsets, inv_length, bias, move_key,
                             n_chunks == 1, base, priority_key)
            _move_stretch(kind, proposal, active, agent, halt, start, stop, moved, direction,
                          bounds[only], bounds[only] + span[only, 0], offsets, base,
                          agent_kind, s, sites, arrived, span, only)
            s += 1
            # (one chunk is never cut again: this gives its count; the loop written with
            # this call ran 2-3% faster than without it, a matter of code generation:
            # benchmarks/README.md, "Migration in one parallel region")
            n_active, cut = _rebalance(active, agent, halt, start, stop, moved, bounds, span)
        coloured = 0
        rebalanced = 0
    else:
        # chunks of one parity run at once when more than three reaches apart: one for the
        # waiting move of each agent of an even chunk, two for its proposal and claim
        gap = 3 * reach
        plan = np.zeros(PLAN_SIZE, np.int64)
        plan[PLAN_ACTIVE] = n_active
        plan[PLAN_APART] = _parities_apart(span, gap)
        team = max(1, min(team, n_chunks))
        _team_substeps(team, np.zeros(SYNC_SIZE, np.int64), plan, kind, clone, seen,
                       attractant, proposal, active, agent, halt, start, stop, moved,
                       direction, bounds, span, n_substeps, stop_kind, agent_kind, offsets,
                       inv_length, bias, first_tag, move_step_key, priority_step_key, sites,
                       arrived, gap)
        s = plan[PLAN_SUBSTEP]
        coloured = plan[PLAN_COLOURED]
        rebalanced = plan[PLAN_REBALANCED]
    for c in range(n_chunks):
        for k in range(bounds[c], bounds[c] + span[c, 0]):
            sites[agent[k]] = active[k]
            arrived[agent[k]] = moved[k]
    return s, coloured, rebalanced


@jit
def poisson_count(mean, u, cap):
    """Inverse-CDF Poisson(mean) draw from one uniform ``u``, at most ``cap``."""
    k = 0
    p = math.exp(-mean)
    total = p
    while u >= total and k < cap:
        k += 1
        p *= mean / k
        total += p
    return k


@parallel_jit
def extravasation_weights(field, sites, half_saturation, basal, out):
    """out[p] = basal + C / (C + half_saturation) for the field C at site ``sites[p]``,
    a negative level read as 0 (C = 0 where ``field`` is empty): each vessel's share of a
    step's entries. In the precision of ``half_saturation``, ``basal`` and ``out``, which
    the caller gives the field's dtype (float32 for a solved field: numpy's arithmetic on
    the gathered levels, which recruitment used before this kernel)."""
    with_field = field.shape[0] > 0
    zero = half_saturation - half_saturation  # 0 in the working precision
    for p in prange(sites.shape[0]):
        level = field[sites[p]] if with_field else zero
        level = zero if level < zero else level  # np.maximum(level, 0): NaN stays NaN
        out[p] = basal + level / (level + half_saturation)


@parallel_jit
def entry_counts(weights, expected, total, sites, key, cap, out):
    """out[p] = a Poisson(expected * weights[p] / total) number of entries at site
    ``sites[p]`` (at most cap), one draw keyed by the site; the mean is computed in the
    weights' precision (``expected`` and ``total`` given in it), the draw in float64. Each
    vessel's draw is its own, so any split of the vessels between threads gives the same
    counts."""
    for p in prange(sites.shape[0]):
        mean = np.float64(expected * weights[p] / total)
        out[p] = poisson_count(mean, uniform(key, sites[p]), cap) if mean > 0.0 else 0


@jit
def bernoulli_counts(trials, probability, sites, key, out):
    """out[p] = successes in ``trials[p]`` independent trials of ``probability``, trial t
    keyed by ``step_key(key, t)`` and the site."""
    for p in range(sites.shape[0]):
        n = 0
        for t in range(trials[p]):
            if uniform(step_key(key, t), sites[p]) < probability:
                n += 1
        out[p] = n


@jit
def place_beside(kind, parent_sites, counts, offsets, key, agent_kind, new_sites, new_parent):
    """Serial, parents in the given order: parent p places ``counts[p]`` new ``agent_kind``
    cells, the m-th on a uniformly chosen EMPTY neighbour (draw keyed by
    ``step_key(key, m)`` and the parent's site), while EMPTY neighbours remain. Writes the
    new sites and the index of each new cell's parent; returns how many were placed (at
    most ``new_sites.shape[0]``)."""
    n_neighbours = offsets.shape[0]
    n_new = 0
    for p in range(parent_sites.shape[0]):
        i = parent_sites[p]
        for m in range(counts[p]):
            if n_new >= new_sites.shape[0]:
                return n_new
            n_free = 0
            for d in range(n_neighbours):
                if kind[i + offsets[d]] == EMPTY:
                    n_free += 1
            if n_free == 0:
                break
            pick = min(int(uniform(step_key(key, m), i) * n_free), n_free - 1)
            for d in range(n_neighbours):
                j = i + offsets[d]
                if kind[j] == EMPTY:
                    if pick == 0:
                        kind[j] = agent_kind
                        new_sites[n_new] = j
                        new_parent[n_new] = p
                        n_new += 1
                        break
                    pick -= 1
    return n_new


@jit
def move_counts(sites, n, moves_per_step, key, out):
    """Stochastic rounding of the moves per step: out[a] = floor(m) + 1 with probability
    frac(m) (draw keyed by the agent's site), so E[out] = m exactly at any dt."""
    whole = math.floor(moves_per_step)
    extra = moves_per_step - whole
    for a in range(n):
        out[a] = int(whole) + (1 if uniform(key, sites[a]) < extra else 0)


@jit
def uniform_times(sites, n, key, span, out):
    """out[a] = span * u keyed by the site: entry times uniform within the step."""
    for a in range(n):
        out[a] = span * uniform(key, sites[a])


@jit
def agent_deaths(kind, sites, n, death_rate, dt, entry, fate_key, alive):
    """Agent a, present from ``entry[a]`` (same unit as dt), dies within the step with
    probability 1 - exp(-death_rate (dt - entry[a])) (draw keyed by its site); a dead
    agent's site becomes EMPTY and ``alive[a]`` is 0."""
    for a in range(n):
        i = sites[a]
        if uniform(fate_key, i) < -math.expm1(-death_rate * (dt - entry[a])):
            kind[i] = EMPTY
            alive[a] = 0
        else:
            alive[a] = 1


@jit
def clear_dead(kind, sites, n, alive):
    """The sites of agents with ``alive[a] == 0`` become EMPTY."""
    for a in range(n):
        if alive[a] == 0:
            kind[sites[a]] = EMPTY
