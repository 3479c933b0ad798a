"""Cytotoxic T cells in continuous time within a step: attack, kill credit, handling,
exhaustion, death, IFN-gamma secretion.

Agent arrays (one entry per T cell, kept by ``simulator.model.immune``): ``sites`` (flat
padded index), ``kills_left`` (int32), ``busy_hours`` (float64: handling of a kill still to
run at the start of the step), ``exhaustion`` (float64, exhausted at >= 1), ``flags``
(uint8 bits below), ``engaged_hours`` (float64: hours of the last step spent attacking or
handling, for the IFN-gamma source) and ``entry_hours`` (float64: when in the step a new
cell entered; 0 otherwise).

Every process follows its continuous-time rate, so the step length dt changes only how
the step is cut, not the rates (``docs/model.md``, "dt convergence"). After migration each
T cell runs a timeline over the step ``[0, dt)`` hours (Kather et al. 2017 Cancer Res
77:6442; Gong et al. 2017 J R Soc Interface 14:20170320):

* It is *present* from ``entry_hours``, *handling* until ``busy_hours``, and *in contact*
  from the time it arrived beside a tumour cell (the caller passes ``ready_hours`` =
  max(entry, arrival after its last move)); it attacks from max(handling end, ready).
* An attack picks uniformly a tumour neighbour the cell recognises (``seen[clone]``, one
  flag per clone: antigenicity above ``t_cells.recognition_threshold``) and kills it at
  the first event of a Poisson process of rate ``lambda = k q (1 - S)`` per hour,
  S = 1 - (1 - S_pd)(1 - S_sup), S_pd = s_pd_max P / (P + K_pd) (1 - blockade) for the
  target's PD-L1 P, S_sup = s_sup_max C / (C + K_sup) for the suppressive cytokine C at
  the T cell: the kill time is
  ``start - log(1 - u) / lambda`` for one uniform u, and the attack succeeds if that falls
  before the attack window ends (step end, exhaustion or death).
* A kill costs one of ``kills_left`` and starts ``handling_hours`` of handling; if handling
  ends within the step the cell attacks again (a new *round*). Several T cells killing one
  target in the same round: the earliest kill time wins (ties: hash priority keyed by the
  attacker's site, then the larger site); the others resume from that time with the tumour
  neighbours left.
* Exhaustion grows at ``e_sup S_sup`` per hour while present, plus ``e_pd P`` while
  attacking (times 1 - relief); the cell is exhausted once it reaches 1 (at that time) or
  when it has no kills left (at its last kill).
* Death is one event of hazard d (active) or d_exhausted (from the exhaustion time on):
  the cell dies at the time its cumulative hazard reaches ``-log(1 - u_fate)``; an attack
  window ends there. The death is applied at the end of the step.

One draw per decision, keyed by (stream, step, round, site). The rounds are propose /
resolve passes: :func:`attack_round` (agent-parallel, each cell writes only its own
entries; the first round also opens each cell's timeline) and :func:`resolve_kills`
(serial over the few cells that proposed a kill), so the result does not depend on the
number of threads, nor on the order of the cells, which the rounds take in site order
(to buckets of a few hundred sites: ``kernels.immune.by_site_bucket``) for the caches'
sake.
"""
import math

import numpy as np

from .jit import PARALLEL_CHUNKS, inline_jit, jit, nrt_free_jit, parallel_jit, prange
from .immune import by_site_bucket
from .lattice import DEAD, TUMOR
from .rng import hash_index, step_key, uniform

EXHAUSTED = 1   # cannot kill or secrete; dies at the exhausted rate
CONTACT = 2     # attacked a tumour cell or handled a kill this step
KILLED = 4      # killed at least once this step (may expand)

# Columns of the per-step ``timeline`` (float64, one row per T cell).
CLOCK = 0            # hours: the cell's timeline is settled up to here
EXHAUSTION = 1       # exhaustion at CLOCK
HAZARD = 2           # cumulative death hazard at CLOCK
DEATH_HAZARD = 3     # the cell dies when HAZARD reaches this (-log(1 - u_fate))
BUSY_UNTIL = 4       # handling ends (hours from the start of the step)
READY = 5            # earliest attack: present and beside its place after migration
SUPPRESSION = 6      # S_sup at the cell's site
KILL_TIME = 7        # proposed kill time (status PROPOSING)
ATTACK_START = 8     # start of the proposed attack
ATTACK_RATE = 9      # exhaustion rate during that attack (per hour)
ENGAGED = 10         # hours attacking or handling so far
N_COLUMNS = 11

# ``status`` per T cell
RUNNING = 0          # timeline continues in the next round
PROPOSING = 1        # proposes a kill (``target``, KILL_TIME): resolve_kills decides
DONE = 2             # settled up to the end of the step (or its death)
DIED = 3             # died within the step (at CLOCK)

# Entries of the ``params`` array (float64): rates per hour, times in hours.
P_DT = 0
P_KILL_RATE = 1
P_HANDLING = 2
P_EXHAUSTION_PDL1 = 3
P_EXHAUSTION_SUPPRESSION = 4
P_DEATH = 5
P_DEATH_EXHAUSTED = 6
P_PD1_MAX = 7
P_PD1_HALF = 8
P_PD1_BLOCKADE = 9
P_SUPPRESSION_MAX = 10
P_SUPPRESSION_HALF = 11
P_EXHAUSTION_RELIEF = 12
N_PARAMS = 13


@inline_jit
def suppression_at(cytokine, i, suppression_max, half_saturation):
    """S_sup at site i (0 when there is no suppressive-cytokine field)."""
    if cytokine.shape[0] == 0:
        return 0.0
    c = cytokine[i]
    if c <= 0.0:
        return 0.0
    return suppression_max * c / (c + half_saturation)


@jit
def exhaustion_time(clock, exhaustion, rate):
    """When exhaustion, growing at ``rate`` per hour from ``clock``, reaches 1 (inf: never)."""
    if exhaustion >= 1.0:
        return clock
    if rate <= 0.0:
        return math.inf
    return clock + (1.0 - exhaustion) / rate


@jit
def death_time(clock, hazard, death_hazard, t_exhausted, rate, rate_exhausted):
    """When the cumulative hazard, ``hazard`` at ``clock`` and growing at ``rate`` per hour
    until ``t_exhausted`` and at ``rate_exhausted`` after, reaches ``death_hazard``."""
    left = death_hazard - hazard
    if t_exhausted > clock:
        if rate > 0.0:
            reach = clock + left / rate
            if reach <= t_exhausted:
                return reach
            left -= rate * (t_exhausted - clock)
        if t_exhausted == math.inf:
            return math.inf
        clock = t_exhausted
    return clock + left / rate_exhausted if rate_exhausted > 0.0 else math.inf


@jit
def advance(timeline, a, until, rate, params, exhausted):
    """Settle T cell a's timeline from CLOCK to ``until`` (at the latest its death) with
    exhaustion growing at ``rate`` per hour. Returns (exhausted, died).

    A compiled call, not inlined: it has six call sites, and inlining them all made the
    attack kernel compile in 5.4 s instead of 3.8 for ~0.2-0.4 ms per step of 14k T cells."""
    clock = timeline[a, CLOCK]
    if until <= clock:
        return exhausted, False
    d1 = params[P_DEATH]
    d2 = params[P_DEATH_EXHAUSTED]
    e = timeline[a, EXHAUSTION]
    t_x = clock if exhausted else exhaustion_time(clock, e, rate)
    t_d = death_time(clock, timeline[a, HAZARD], timeline[a, DEATH_HAZARD], t_x, d1, d2)
    end = min(until, t_d)
    if t_x < end:
        first = max(t_x - clock, 0.0)
        hazard = timeline[a, HAZARD] + d1 * first + d2 * (end - clock - first)
        exhausted = True
    else:
        hazard = timeline[a, HAZARD] + d1 * (end - clock)
    timeline[a, EXHAUSTION] = e + rate * (end - clock)
    timeline[a, HAZARD] = hazard
    timeline[a, CLOCK] = end
    return exhausted, t_d <= until


@inline_jit
def nth_seen_tumour_cell(kind, clone, seen, i, offsets, pick):
    """The ``pick``-th (from 0, in ``offsets`` order) tumour neighbour of site ``i`` that a
    T cell recognises (``seen[clone]``); -1 if there are not that many."""
    for d in range(offsets.shape[0]):
        j = i + offsets[d]
        if kind[j] == TUMOR and seen[clone[j]] != 0:
            if pick == 0:
                return j
            pick -= 1
    return -1


@inline_jit
def cell_round(a, kind, clone, pdl1, sites, offsets, antigenicity, seen, params, kills_left,
               exhausted, timeline, status, target, target_key, kill_key):
    """One round of T cell a's timeline (module docstring): the passive part (entry,
    handling, moving) up to its attack start, then one attack, which ends the step for the
    cell or proposes a kill (status PROPOSING)."""
    dt = params[P_DT]
    relief = 1.0 - params[P_EXHAUSTION_RELIEF]
    passive = params[P_EXHAUSTION_SUPPRESSION] * timeline[a, SUPPRESSION] * relief
    clock = timeline[a, CLOCK]
    can_attack = exhausted[a] == 0 and kills_left[a] > 0
    start = max(clock, timeline[a, BUSY_UNTIL], timeline[a, READY]) if can_attack else dt
    start = min(start, dt)
    handled = min(timeline[a, BUSY_UNTIL], start) - clock
    if handled > 0.0:
        timeline[a, ENGAGED] += handled
    tired, died = advance(timeline, a, start, passive, params, exhausted[a] != 0)
    exhausted[a] = 1 if tired else 0
    if died:
        status[a] = DIED
        return
    if start >= dt or tired:
        tired, died = advance(timeline, a, dt, passive, params, tired)
        exhausted[a] = 1 if tired else 0
        status[a] = DIED if died else DONE
        return
    i = sites[a]
    n_neighbours = offsets.shape[0]
    n_targets = 0
    for d in range(n_neighbours):
        j = i + offsets[d]
        if kind[j] == TUMOR and seen[clone[j]] != 0:
            n_targets += 1
    if n_targets == 0:
        tired, died = advance(timeline, a, dt, passive, params, tired)
        exhausted[a] = 1 if tired else 0
        status[a] = DIED if died else DONE
        return
    j = nth_seen_tumour_cell(kind, clone, seen, i, offsets,
                             min(int(uniform(target_key, i) * n_targets), n_targets - 1))
    level = float(pdl1[j])  # float64 arithmetic from a float32 store, JIT or not
    s_pd = params[P_PD1_MAX] * level / (level + params[P_PD1_HALF]) * (1.0 - params[P_PD1_BLOCKADE])
    s = 1.0 - (1.0 - s_pd) * (1.0 - timeline[a, SUPPRESSION])
    kill_rate = params[P_KILL_RATE] * antigenicity[clone[j]] * (1.0 - s)
    rate = passive + params[P_EXHAUSTION_PDL1] * level * relief
    t_x = exhaustion_time(start, timeline[a, EXHAUSTION], rate)
    t_d = death_time(start, timeline[a, HAZARD], timeline[a, DEATH_HAZARD], t_x,
                     params[P_DEATH], params[P_DEATH_EXHAUSTED])
    window_end = min(dt, t_x, t_d)
    u = uniform(kill_key, i)
    kill_time = start - math.log1p(-u) / kill_rate if kill_rate > 0.0 else math.inf
    if kill_time < window_end:
        target[a] = j
        timeline[a, KILL_TIME] = kill_time
        timeline[a, ATTACK_START] = start
        timeline[a, ATTACK_RATE] = rate
        status[a] = PROPOSING
        return
    timeline[a, ENGAGED] += window_end - start
    tired, died = advance(timeline, a, window_end, rate, params, tired)
    if not died and window_end < dt:  # exhausted at window_end
        tired, died = advance(timeline, a, dt, passive, params, window_end < dt)
    exhausted[a] = 1 if tired else 0
    status[a] = DIED if died else DONE


@inline_jit
def open_timeline(a, sites, busy_hours, exhaustion, flags, entry_hours, ready_hours, cytokine,
                  params, fate_key, timeline, status, exhausted, kills_now):
    """Open T cell a's timeline for this step (columns and params: module constants)."""
    i = sites[a]
    entry = entry_hours[a]
    timeline[a, CLOCK] = entry
    timeline[a, EXHAUSTION] = exhaustion[a]
    timeline[a, HAZARD] = 0.0
    timeline[a, DEATH_HAZARD] = -math.log1p(-uniform(fate_key, i))
    timeline[a, BUSY_UNTIL] = max(busy_hours[a], entry)
    timeline[a, READY] = max(ready_hours[a], entry)
    timeline[a, SUPPRESSION] = suppression_at(cytokine, i, params[P_SUPPRESSION_MAX],
                                              params[P_SUPPRESSION_HALF])
    timeline[a, ENGAGED] = 0.0
    exhausted[a] = flags[a] & EXHAUSTED
    status[a] = RUNNING
    kills_now[a] = 0


# attack_round's q-th iteration works stretch q * SPREAD % PARALLEL_CHUNKS of the T cells (a
# permutation: SPREAD is odd, PARALLEL_CHUNKS a power of two), so that each thread's block
# of iterations takes stretches from all along the agent list: a round's cost per cell
# varies along it (on the benchmark state the first round's second half cost 858 us
# against 673 us for the first), and with consecutive stretches one thread waited for the
# other (the attack 1.32-1.38 -> 1.18-1.25 ms best at 2 threads, the same results)
SPREAD = 37


@parallel_jit
def attack_round(kind, clone, pdl1, sites, todo, n_todo, offsets, antigenicity, seen, params,
                 kills_left, exhausted, timeline, status, target, target_key, kill_key,
                 opening, busy_hours, exhaustion, flags, entry_hours, ready_hours, cytokine,
                 fate_key, kills_now):
    """One round for the T cells ``todo[:n_todo]`` (each writes only its own entries), in
    PARALLEL_CHUNKS stretches of ``todo``, each run by :func:`_round_stretch`. ``opening``
    (the first round, over every cell): each cell's timeline is opened
    (:func:`open_timeline`) just before its round, in the same pass, since a round reads
    only its own cell's entries."""
    for q in prange(PARALLEL_CHUNKS):
        chunk = np.int64(q) * SPREAD % PARALLEL_CHUNKS
        _round_stretch(kind, clone, pdl1, sites, todo, chunk * n_todo // PARALLEL_CHUNKS,
                       (chunk + 1) * n_todo // PARALLEL_CHUNKS, offsets, antigenicity, seen,
                       params, kills_left, exhausted, timeline, status, target, target_key,
                       kill_key, opening, busy_hours, exhaustion, flags, entry_hours,
                       ready_hours, cytokine, fate_key, kills_now)


@nrt_free_jit
def _round_stretch(kind, clone, pdl1, sites, todo, first, end, offsets, antigenicity, seen,
                   params, kills_left, exhausted, timeline, status, target, target_key,
                   kill_key, opening, busy_hours, exhaustion, flags, entry_hours, ready_hours,
                   cytokine, fate_key, kills_now):
    """:func:`attack_round` for ``todo[first:end]``, without reference counting (the
    per-cell round passes 13 arrays through branches that return early: inlined in a
    prange body it kept an atomic count for each)."""
    for k in range(first, end):
        if opening:
            open_timeline(todo[k], sites, busy_hours, exhaustion, flags, entry_hours,
                          ready_hours, cytokine, params, fate_key, timeline, status, exhausted,
                          kills_now)
        cell_round(todo[k], kind, clone, pdl1, sites, offsets, antigenicity, seen, params,
                   kills_left, exhausted, timeline, status, target, target_key, kill_key)


@jit
def earlier(timeline, a, b, sites, priority_key):
    """True iff T cell a's proposed kill comes before b's (time, then hash priority, then
    the larger site)."""
    ta = timeline[a, KILL_TIME]
    tb = timeline[b, KILL_TIME]
    if ta != tb:
        return ta < tb
    pa = hash_index(priority_key, sites[a])
    pb = hash_index(priority_key, sites[b])
    if pa != pb:
        return pa > pb
    return sites[a] > sites[b]


@jit
def resolve_kills(kind, sites, proposers, target, timeline, status, kills_left, exhausted,
                  kills_now, params, priority_key, killed_sites, n_killed):
    """Serial: every target proposed this round dies once, at the earliest proposed time;
    its killer spends a kill and starts handling, the other proposers resume from that
    time. Appends the killed sites to ``killed_sites`` from ``n_killed``; returns the new
    count."""
    order = proposers.copy()
    m = order.shape[0]
    # an insertion sort by target: the proposers come in site order up to buckets of a
    # few hundred sites (``attack``), and a target is a neighbour of its proposer's site,
    # so they are nearly sorted already
    for k in range(1, m):
        a = order[k]
        q = k - 1
        while q >= 0 and target[order[q]] > target[a]:
            order[q + 1] = order[q]
            q -= 1
        order[q + 1] = a
    k = 0
    while k < m:
        j = target[order[k]]
        winner = order[k]
        e = k + 1
        while e < m and target[order[e]] == j:
            if earlier(timeline, order[e], winner, sites, priority_key):
                winner = order[e]
            e += 1
        t_kill = timeline[winner, KILL_TIME]
        kind[j] = DEAD
        killed_sites[n_killed] = j
        n_killed += 1
        for q in range(k, e):
            a = order[q]
            until = max(t_kill, timeline[a, ATTACK_START])  # its target died at t_kill
            timeline[a, ENGAGED] += until - timeline[a, ATTACK_START]
            timeline[a, CLOCK] = timeline[a, ATTACK_START]
            advance(timeline, a, until, timeline[a, ATTACK_RATE], params, exhausted[a] != 0)
            status[a] = RUNNING
        kills_left[winner] -= 1
        kills_now[winner] += 1
        timeline[winner, BUSY_UNTIL] = t_kill + params[P_HANDLING]
        if kills_left[winner] <= 0:
            exhausted[winner] = 1
        k = e
    return n_killed


@jit
def attack(kind, clone, pdl1, cytokine, sites, n, kills_left, busy_hours, exhaustion, flags,
           engaged_hours, entry_hours, ready_hours, offsets, antigenicity, seen, params,
           fate_key, target_step_key, kill_step_key, priority_step_key, alive, kills_now,
           killed_sites):
    """Every T cell's timeline over this step (module docstring); round r draws with the
    keys ``step_key(target_step_key, r)`` / ``step_key(kill_step_key, r)`` /
    ``step_key(priority_step_key, r)``. Updates the agent attributes for the next step and
    writes ``alive[a]`` (0: died within the step; the caller removes it), ``kills_now[a]``
    and the killed sites (``killed_sites[:return value]``)."""
    timeline = np.empty((n, N_COLUMNS))
    status = np.empty(n, np.int8)
    exhausted = np.empty(n, np.uint8)
    target = np.full(n, -1, np.int64)
    # the cells in site order, to buckets of a few hundred sites (the rounds' result does
    # not depend on the order: each cell writes only its own entries, and resolve_kills
    # orders by target and kill time), so that neighbouring cells' lattice reads share
    # cache lines: agents are stored in recruitment order, scattered over the lattice
    # (benchmarks/README.md, "The attack in site order")
    todo = by_site_bucket(sites, n, kind.shape[0])
    n_killed = np.int64(0)
    r = np.int64(0)  # (not the literal 0: a literal compiles step_key again)
    while todo.shape[0] > 0:
        attack_round(kind, clone, pdl1, sites, todo, todo.shape[0], offsets, antigenicity,
                     seen, params, kills_left, exhausted, timeline, status, target,
                     step_key(target_step_key, r), step_key(kill_step_key, r), r == 0,
                     busy_hours, exhaustion, flags, entry_hours, ready_hours, cytokine,
                     fate_key, kills_now)
        proposers = todo[status[todo] == PROPOSING]
        if proposers.shape[0] > 0:
            n_killed = resolve_kills(kind, sites, proposers, target, timeline, status,
                                     kills_left, exhausted, kills_now, params,
                                     step_key(priority_step_key, r), killed_sites, n_killed)
        todo = todo[status[todo] == RUNNING]
        r += 1
    dt = params[P_DT]
    for a in range(n):
        alive[a] = 0 if status[a] == DIED else 1
        f = EXHAUSTED if exhausted[a] != 0 or timeline[a, EXHAUSTION] >= 1.0 else 0
        if timeline[a, ENGAGED] > 0.0:
            f |= CONTACT
        if kills_now[a] > 0:
            f |= KILLED
        flags[a] = f
        exhaustion[a] = timeline[a, EXHAUSTION]
        busy_hours[a] = max(timeline[a, BUSY_UNTIL] - dt, 0.0)
        engaged_hours[a] = timeline[a, ENGAGED]
        entry_hours[a] = 0.0
    return n_killed


@jit
def secretion(sites, n, engaged_hours, flags, rate_per_hour, source):
    """source[site] += rate * (hours attacking or handling in the last step) for every T
    cell that is not exhausted: the step's mean IFN-gamma secretion (rate per hour).
    Returns whether a site it added to holds a nonzero source: where the sources were zero
    before, whether any is now, which the caller needs (an all-zero source skips the
    solve) and would otherwise learn by scanning every site."""
    nonzero = False
    for a in range(n):
        if (flags[a] & EXHAUSTED) == 0 and engaged_hours[a] > 0.0:
            source[sites[a]] += rate_per_hour * engaged_hours[a]
            nonzero |= source[sites[a]] != 0.0
    return nonzero
