"""Mobile immune cells on the lattice: migration, entry at vessels or beside a parent, death.

An immune population (T cells, suppressive cells) is a set of agent arrays — ``sites[a]``
(flat padded index) plus per-population attributes — while the lattice holds the cell's
kind at that site. Kernels here serve any population; ``kernels.t_cells`` adds killing.

Migration: one move substep is two conflict-free passes (propose/resolve):

1. :func:`migrate_propose` (agent-parallel; reads the lattice, writes only the agent's own
   site of ``proposal``): a mobile agent with at least one EMPTY Moore neighbour draws one
   uniform ``u`` keyed by (step key, substep, its site). With ``u < bias`` it heads for the
   empty neighbour with the steepest rise of the attractant field, ``(c_j - c_i) / |j - i|``
   (first in neighbour order on a tie), if any rises; otherwise (and for ``u >= bias``) it
   picks an empty neighbour uniformly, using the rest of the same draw. The proposal is
   written as ``tag * TAG_UNIT + direction + 1``: a fresh ``tag`` per substep makes every
   older entry stale without clearing the array.
2. :func:`migrate_resolve` (agent-parallel): an agent wins its target iff its hash priority
   (keyed by its site) is the highest among all agents proposing that target this substep
   (ties by the larger site index); each agent checks the target's neighbours itself, so no
   agent needs another's result. Winners write only their own source (EMPTY) and target
   (their kind); targets of distinct winners are distinct and were empty, so there are no
   write conflicts. Losers stay.

Entry of new cells (:func:`place_beside`) is serial in a fixed order (parents sorted by
site): each parent draws ``u`` keyed by its site and, with ``u < p[parent]``, places one new
cell on a uniformly chosen EMPTY neighbour (using the rest of the same draw). Counts are
small (hundreds per step), so the serial pass costs little and needs no conflict rule.
"""
import numpy as np

from kernels.jit import jit, parallel_jit, prange
from kernels.lattice import EMPTY
from kernels.rng import hash_index, step_key, uniform

TAG_UNIT = 32        # proposal = tag * TAG_UNIT + code; code 1..26 (Moore neighbour + 1)
MAX_TAG = 2 ** 25    # int32 proposals: callers clear the array and restart tags below this

# ``mobility`` codes per agent
IMMOBILE = 0         # engaged (handling a kill): does not move this substep
MOBILE = 1           # moves
STOP_NEAR = 2        # moves unless a neighbour has ``stop_kind`` (a T cell next to a target)


@parallel_jit
def migrate_propose(kind, attractant, proposal, sites, order, mobility, stop_kind, offsets,
                    inv_length, bias, tag, move_key):
    """Each mobile agent writes one move proposal at its own site (see module docstring).

    attractant  float64 per site (the chemokine field, flat padded) or an empty array for
                an unbiased walk
    mobility    uint8 per agent: IMMOBILE, MOBILE or STOP_NEAR (stop next to ``stop_kind``)
    inv_length  float64 per Moore direction: 1 / length of the offset in sites
    bias        probability that a move follows the attractant gradient
    move_key    key of this substep (stream, step, substep already mixed in)
    order       the agents to visit, in this order (see :func:`migrate`)
    """
    n_neighbours = offsets.shape[0]
    use_field = attractant.shape[0] > 0
    base = tag * TAG_UNIT
    for k in prange(order.shape[0]):
        a = order[k]
        m = mobility[a]
        if m == IMMOBILE:
            continue
        i = sites[a]
        n_free = 0
        stop = False
        best = -1
        best_rise = 0.0
        here = attractant[i] if use_field else 0.0
        for d in range(n_neighbours):
            k = kind[i + offsets[d]]
            if k == EMPTY:
                n_free += 1
                if use_field:
                    rise = (attractant[i + offsets[d]] - here) * inv_length[d]
                    if rise > best_rise:
                        best_rise = rise
                        best = d
            elif m == STOP_NEAR and k == stop_kind:
                stop = True
        if stop or n_free == 0:
            continue
        u = uniform(move_key, i)
        if u < bias and best >= 0:
            proposal[i] = base + best + 1
            continue
        r = (u - bias) / (1.0 - bias) if u >= bias else u / bias
        pick = min(int(r * n_free), n_free - 1)
        for d in range(n_neighbours):
            if kind[i + offsets[d]] == EMPTY:
                if pick == 0:
                    proposal[i] = base + d + 1
                    break
                pick -= 1


@jit
def wins_target(proposal, i, j, base, offsets, priority_key):
    """True iff site i's proposal for target j has the highest hash priority among all
    proposals for j carrying this tag (``base`` = tag * TAG_UNIT); ties: larger site."""
    n_neighbours = offsets.shape[0]
    mine = hash_index(priority_key, i)
    for d in range(n_neighbours):
        m = j + offsets[d]
        if m == i:
            continue
        code = proposal[m] - base
        if code < 1 or code > n_neighbours:
            continue
        if m + offsets[code - 1] != j:
            continue
        other = hash_index(priority_key, m)
        if other > mine or (other == mine and m > i):
            return False
    return True


@parallel_jit
def migrate_resolve(kind, proposal, sites, order, offsets, tag, priority_key, agent_kind):
    """Apply this substep's proposals: each target goes to its highest-priority proposer."""
    n_neighbours = offsets.shape[0]
    base = tag * TAG_UNIT
    for k in prange(order.shape[0]):
        a = order[k]
        i = sites[a]
        code = proposal[i] - base
        if code < 1 or code > n_neighbours:
            continue
        j = i + offsets[code - 1]
        if wins_target(proposal, i, j, base, offsets, priority_key):
            kind[j] = agent_kind
            kind[i] = EMPTY
            sites[a] = j


@jit
def migrate(kind, attractant, proposal, sites, n, mobility, stop_kind, offsets, inv_length,
            bias, first_tag, n_substeps, move_step_key, priority_step_key, agent_kind):
    """``n_substeps`` move substeps (propose, then resolve), substep s using tag
    ``first_tag + s`` and the keys ``step_key(move_step_key, s)`` /
    ``step_key(priority_step_key, s)``. The caller keeps ``first_tag + n_substeps`` below
    MAX_TAG (clearing ``proposal`` and restarting the tags when it would not be).

    Agents are visited in site order (agents move only locally, so one sort per call
    serves every substep): each thread then works on its own stretch of the lattice, in
    memory order, instead of agents in arrival order scattered over the whole lattice
    (measured on bench_full_step.py: 2-thread speed-up of the migration ~1.3x -> ~2x). Each
    agent writes only its own site's proposal and the target it wins, so the visiting order
    does not change the result."""
    order = np.argsort(sites[:n])
    for s in range(n_substeps):
        tag = first_tag + s
        migrate_propose(kind, attractant, proposal, sites, order, mobility, stop_kind,
                        offsets, inv_length, bias, tag, step_key(move_step_key, s))
        migrate_resolve(kind, proposal, sites, order, offsets, tag,
                        step_key(priority_step_key, s), agent_kind)


@jit
def place_beside(kind, parent_sites, probability, offsets, key, agent_kind, new_sites,
                 new_parent):
    """Serial: parent p (in the given order) places one new ``agent_kind`` cell on an EMPTY
    neighbour with probability ``probability[p]``. Writes the new sites and the index of
    each new cell's parent; returns how many were placed (at most ``new_sites.shape[0]``).
    """
    n_neighbours = offsets.shape[0]
    n_new = 0
    for p in range(parent_sites.shape[0]):
        if n_new >= new_sites.shape[0]:
            break
        i = parent_sites[p]
        prob = probability[p]
        if prob <= 0.0:
            continue
        u = uniform(key, i)
        if u >= prob:
            continue
        n_free = 0
        for d in range(n_neighbours):
            if kind[i + offsets[d]] == EMPTY:
                n_free += 1
        if n_free == 0:
            continue
        pick = min(int(u / prob * n_free), n_free - 1)
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


@parallel_jit
def agent_deaths(kind, sites, n, p_death, fate_key, alive):
    """Each agent dies with probability ``p_death`` (draw keyed by its site); a dead agent's
    site becomes EMPTY and ``alive[a]`` is 0."""
    for a in prange(n):
        i = sites[a]
        if uniform(fate_key, i) < p_death:
            kind[i] = EMPTY
            alive[a] = 0
        else:
            alive[a] = 1


@parallel_jit
def gather(values, sites, n, out):
    """out[a] = values[sites[a]] (a field or attribute read at each agent's site)."""
    for a in prange(n):
        out[a] = values[sites[a]]


def substep_key(key_of_step, substep):
    """Key of one substep (or one sub-decision) of a step's stream: the step key mixed
    once more with the substep number, like every key a pure function of its coordinates."""
    return np.uint64(step_key(np.uint64(key_of_step), substep))
