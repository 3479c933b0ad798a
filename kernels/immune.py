"""Mobile immune cells on the lattice: migration, entry at vessels or beside a parent, death.

An immune population (T cells, suppressive cells) is a set of agent arrays — ``sites[a]``
(flat padded index) plus per-population attributes — while the lattice holds the cell's
kind at that site. Kernels here serve any population; ``kernels.t_cells`` adds killing.

Migration (:func:`migrate`): each move substep is two passes over the *active* agents
only, a compact list of the agents that may still move in this call:

1. :func:`migrate_propose` (agent-parallel; reads the lattice, writes only the agent's own
   list entry): a mobile agent with at least one EMPTY Moore neighbour draws one uniform
   ``u`` keyed by (step key, substep, its site). With ``u < bias`` it heads for the empty
   neighbour with the steepest rise of the attractant field, ``(c_j - c_i) / |j - i|``
   (first in neighbour order on a tie), if any rises; otherwise (and for ``u >= bias``) it
   picks an empty neighbour uniformly, using the rest of the same draw. An agent that can
   never move again in this call (it stops next to a target it recognises - ``seen``, one
   flag per tumour clone - or is walled in by cells that do not move) is marked INERT and
   dropped from the list.
2. :func:`migrate_resolve` (serial, cheap: a load and a store per proposal; the same pass
   drops the INERT agents from the list): every
   proposal claims its target; the claim left at a target is the proposer with the highest
   hash priority (keyed by its site; ties by the larger site index) - a maximum, so
   independent of the visiting order. It is written as ``tag * TAG_UNIT + direction + 1``
   at the target: a fresh ``tag`` per substep makes every older entry stale without
   clearing the array. Then each agent whose claim holds moves; winners write only their
   own source (EMPTY) and target (their kind). Losers stay.

One parallel region per substep.

The rule is the synchronous one of ``tests/naive.py::migrate_substep`` (all proposals of a
substep see the lattice as the previous substep left it, then each target goes to its
highest-priority proposer); the active list only skips agents that would propose nothing.

Entry of new cells (:func:`place_beside`) is serial in a fixed order (parents sorted by
site): parent p places ``counts[p]`` new cells, the m-th on a uniformly chosen EMPTY
neighbour (draw keyed by the parent's site and m), while free neighbours last. The counts
are drawn separately: Poisson entries per vessel (:func:`entry_counts`, one inverse-CDF
draw) for recruitment, one Bernoulli per kill (:func:`bernoulli_counts`) for expansion.
Counts are small (hundreds per step), so the serial pass costs little and needs no
conflict rule.
"""
import math

import numpy as np

from kernels.jit import inline_jit, jit, parallel_jit, prange
from kernels.lattice import EMPTY, nth_set_bit
from kernels.rng import hash_index, step_key, uniform

TAG_UNIT = 32        # proposal = tag * TAG_UNIT + code; code 1..26 (Moore neighbour + 1)
MAX_TAG = 2 ** 25    # int32 proposals: callers clear the array and restart tags below this

# ``direction`` codes written by :func:`migrate_propose` besides a neighbour index 0..25
NO_MOVE = -1         # no proposal this substep (no free neighbour now; one may free up)
INERT = -2           # can never move again in this call: dropped from the active list

BUCKETS = 4096       # at most this many site buckets in the locality sort of :func:`migrate`


@parallel_jit
def migrate_propose(kind, clone, seen, attractant, active, n_active, stops, first, last,
                    substep, stop_kind, agent_kind, offsets, inv_length, bias, move_key,
                    direction):
    """Each active agent decides its move of this substep (see module docstring) and writes
    its direction, NO_MOVE or INERT at its own entry of ``direction``.

    active      int64 sites of the active agents (entries [0, n_active))
    stops       bool per active agent: stays put next to a ``stop_kind`` cell it sees
    clone, seen a ``stop_kind`` cell at site j is seen iff ``seen[clone[j]]`` (one uint8 per
                clone: a T cell recognises the cell); an empty ``seen``: every one is
    first, last the agent moves in substeps first <= substep < last (NO_MOVE before, INERT
                from ``last`` on)
    attractant  float64 per site (the chemokine field, flat padded) or an empty array for
                an unbiased walk
    inv_length  float64 per Moore direction: 1 / length of the offset in sites
    bias        probability that a move follows the attractant gradient
    move_key    key of this substep (stream, step, substep already mixed in)

    INERT also marks an agent that stops next to ``stop_kind`` and one whose neighbours are
    neither EMPTY nor ``agent_kind``: only a moving ``agent_kind`` cell empties a site during
    a call, so neither can move again in it."""
    n_neighbours = offsets.shape[0]
    use_field = attractant.shape[0] > 0
    screen = seen.shape[0] > 0
    for k in prange(n_active):
        if substep >= last[k]:
            direction[k] = INERT
            continue
        if substep < first[k]:
            direction[k] = NO_MOVE
            continue
        i = active[k]
        halt = stops[k]
        # branch-free scan (the neighbours' kinds are unpredictable): the free ones as a
        # bit mask, whether one holds a mover of this kind, whether one holds a stop kind
        free = 0
        n_free = 0
        crowded = False
        beside_stop = False
        for d in range(n_neighbours):
            j = i + offsets[d]
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
            direction[k] = INERT
            continue
        if n_free == 0:
            direction[k] = NO_MOVE
            continue
        u = uniform(move_key, i)
        best = -1
        if u < bias and use_field:
            # branch-free as the scan above: every neighbour's rise is computed, a free one
            # that rises more than the best so far is selected (first in order on a tie)
            here = attractant[i]
            best_rise = 0.0
            for d in range(n_neighbours):
                rise = (attractant[i + offsets[d]] - here) * inv_length[d]
                take = (((free >> d) & 1) != 0) & (rise > best_rise)
                best_rise = rise if take else best_rise
                best = d if take else best
        if best < 0:
            r = (u - bias) / (1.0 - bias) if u >= bias else u / bias
            best = nth_set_bit(free, min(int(r * n_free), n_free - 1))
        direction[k] = best


@jit
def migrate_resolve(kind, proposal, active, agent, halt, start, stop, moved, n_active,
                    direction, offsets, tag, priority_key, agent_kind, substep, sites,
                    arrived):
    """Serial, two short passes over the proposals. Claims: each proposal claims its target
    site, ``proposal[j] = tag * TAG_UNIT + d + 1`` naming the direction d it came from, and
    a later proposer takes the claim over iff its hash priority is higher (ties: larger
    site), so the claim left at j is the maximum over all proposers of j, whatever the
    visiting order - one load and store per proposal instead of a scan of the target's
    neighbours by every proposer. Moves: an agent whose claim holds moves there and notes
    ``moved[k] = substep + 1``; targets of distinct winners are distinct and were empty.
    The same pass drops the INERT agents from the active list (as :func:`drop_inert`);
    returns the new count."""
    base = tag * TAG_UNIT
    for k in range(n_active):
        d = direction[k]
        if d < 0:
            continue
        i = active[k]
        j = i + offsets[d]
        code = proposal[j] - base
        if code < 1:
            proposal[j] = base + d + 1
            continue
        rival = j - offsets[code - 1]
        mine = hash_index(priority_key, i)
        other = hash_index(priority_key, rival)
        if mine > other or (mine == other and i > rival):
            proposal[j] = base + d + 1
    kept = 0
    for k in range(n_active):
        d = direction[k]
        i = active[k]
        if d == INERT:
            sites[agent[k]] = i
            arrived[agent[k]] = moved[k]
            continue
        if d >= 0:
            j = i + offsets[d]
            if proposal[j] == base + d + 1:
                kind[j] = agent_kind
                kind[i] = EMPTY
                i = j
                moved[k] = substep + 1
        _keep(active, agent, halt, start, stop, moved, k, kept, i)
        kept += 1
    return kept


@inline_jit
def _keep(active, agent, halt, start, stop, moved, k, kept, site):
    """Entry k of the active list moves to entry kept (<= k), at ``site``."""
    active[kept] = site
    agent[kept] = agent[k]
    halt[kept] = halt[k]
    start[kept] = start[k]
    stop[kept] = stop[k]
    moved[kept] = moved[k]


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


@jit
def drop_inert(active, agent, halt, start, stop, moved, direction, n_active, sites, arrived):
    """Remove the INERT entries from the active list (writing their final site and arrival
    back to the agent arrays), keeping the order; returns the new count."""
    kept = 0
    for k in range(n_active):
        if direction[k] == INERT:
            sites[agent[k]] = active[k]
            arrived[agent[k]] = moved[k]
        else:
            _keep(active, agent, halt, start, stop, moved, k, kept, active[k])
            kept += 1
    return kept


@jit
def migrate(kind, clone, seen, attractant, proposal, sites, n, stops, first, last, stop_kind,
            offsets, inv_length, bias, first_tag, move_step_key, priority_step_key, agent_kind,
            arrived):
    """Move substeps (propose, claim, resolve) until no agent can move: agent a moves in
    substeps ``first[a] <= s < last[a]``, substep s using tag ``first_tag + s`` and the
    keys ``step_key(move_step_key, s)`` / ``step_key(priority_step_key, s)``. Returns the
    number of substeps run (``clone``, ``seen``: which ``stop_kind`` cells an agent stops
    beside, :func:`migrate_propose`); ``arrived[a]`` = 1 + the substep of agent a's last
    move (0 if it did not move). The caller keeps ``first_tag + max(last)`` below MAX_TAG (clearing
    ``proposal`` and restarting the tags when it would not be).

    Cost follows the agents that can still move, not the population: agents with no
    substep to move in are left out from the start, and an agent found INERT is dropped
    (a T cell that stops next to a tumour cell stays stopped: tumour cells do not move
    during migration). The active agents are a compact list of sites, visited in
    site-bucket order (:func:`by_site_bucket`; one sort per call serves every substep,
    agents moving only locally). Each agent writes only its own list entries and the
    target it wins; the claims are a maximum over proposers, so neither the visiting
    order nor the thread count changes the result."""
    order = by_site_bucket(sites, n, kind.shape[0])
    active = np.empty(n, np.int64)
    agent = np.empty(n, np.int64)
    halt = np.empty(n, np.bool_)
    start = np.empty(n, np.int64)
    stop = np.empty(n, np.int64)
    moved = np.zeros(n, np.int64)
    direction = np.full(n, INERT, np.int64)
    n_substeps = 0
    for k in range(n):
        a = order[k]
        arrived[a] = 0
        active[k] = sites[a]
        agent[k] = a
        halt[k] = stops[a]
        start[k] = first[a]
        stop[k] = last[a]
        if first[a] < last[a]:
            direction[k] = NO_MOVE
            n_substeps = max(n_substeps, last[a])
    # agents with no substep to move in leave before the first
    n_active = drop_inert(active, agent, halt, start, stop, moved, direction, n, sites, arrived)
    s = np.int64(0)  # not the literal 0: that would compile both substep kernels twice
    while s < n_substeps and n_active > 0:
        tag = first_tag + s
        migrate_propose(kind, clone, seen, attractant, active, n_active, halt, start, stop, s,
                        stop_kind, agent_kind, offsets, inv_length, bias,
                        step_key(move_step_key, s), direction)
        n_active = migrate_resolve(kind, proposal, active, agent, halt, start, stop, moved,
                                   n_active, direction, offsets, tag,
                                   step_key(priority_step_key, s), agent_kind, s, sites,
                                   arrived)
        s += 1
    for k in range(n_active):
        sites[agent[k]] = active[k]
        arrived[agent[k]] = moved[k]
    return s


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


@jit
def entry_counts(means, sites, key, cap, out):
    """out[p] = a Poisson(means[p]) number of entries at site ``sites[p]`` (at most cap),
    one draw keyed by the site."""
    for p in range(sites.shape[0]):
        out[p] = poisson_count(means[p], uniform(key, sites[p]), cap) if means[p] > 0.0 else 0


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
