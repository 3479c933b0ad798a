"""Slow, readable reference versions of every kernel, in plain Python.

Each mirrors one kernel's rules in the most direct form (no extents, no parallel passes,
Python integers for the hash) and shares nothing with it but the published constants, so
a test that finds them equal checks the fast version's bookkeeping, not a copy of it.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15

EMPTY, TUMOR, T_CELL, SUPPRESSIVE, DEAD, NECROTIC, VESSEL, WALL = range(8)


# --------------------------------------------------------------------------- random numbers
def mix64(z: int) -> int:
    z &= MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def stream_key(seed: int, replicate: int, stream: int) -> int:
    z = mix64(seed + GOLDEN)
    z = mix64(z ^ ((replicate * 0xBF58476D1CE4E5B9) & MASK64))
    return mix64(z ^ ((stream * 0x94D049BB133111EB) & MASK64))


def step_key(key: int, step: int) -> int:
    return mix64(key ^ ((step * GOLDEN + 0x94D049BB133111EB) & MASK64))


def hash_index(key: int, index: int) -> int:
    return mix64(key + (index + 1) * GOLDEN)


def uniform(key: int, index: int) -> float:
    return (hash_index(key, index) >> 11) / 2.0 ** 53


# --------------------------------------------------------------------------- lattice
def neighbours(shape, coord):
    """Moore neighbours of a padded-grid coordinate, in the kernels' fixed order."""
    for delta in itertools.product((-1, 0, 1), repeat=len(shape)):
        if any(delta):
            yield tuple(c + d for c, d in zip(coord, delta))


def tumor_step(kind, clone, shape, p_die, p_divide, mutation_probability, n_targets,
               p_clear_dead, p_clear_necrotic, keys, division_factor=None, site_p_die=None,
               site_p_divide=None):
    """One tumour step on padded grids ``kind``/``clone`` (modified in place).

    ``site_p_die`` / ``site_p_divide`` (padded grids), when given, replace the clone's
    probabilities at each site (drugs with spatial penetration).

    ``keys``: dict of step keys 'event', 'target', 'priority', 'mutation', 'clearance'.
    Returns (births, deaths, mutations, mutable_divisions).
    """
    flat = lambda c: int(np.ravel_multi_index(c, shape))  # noqa: E731 - index of a site
    before = kind.copy()
    targets = {}   # empty site -> list of parent coordinates proposing it
    dying = []
    for coord in itertools.product(*(range(n) for n in shape)):
        if before[coord] != TUMOR:
            continue
        i = flat(coord)
        c = int(clone[coord])
        u = uniform(keys["event"], i)
        die = p_die[c] if site_p_die is None else site_p_die[coord]
        if u < die:
            dying.append(coord)
            continue
        divide = p_divide[c] if site_p_divide is None else site_p_divide[coord]
        divide *= 1.0 if division_factor is None else division_factor[coord]
        if u < die + (1.0 - die) * divide:
            free = [n for n in neighbours(shape, coord) if before[n] == EMPTY]
            if free:
                target = free[int(uniform(keys["target"], i) * len(free))]
                targets.setdefault(target, []).append(coord)
    births = mutations = mutable = 0
    for target, parents in targets.items():
        parent = max(parents, key=lambda p: (hash_index(keys["priority"], flat(p)), -flat(p)))
        daughter = int(clone[parent])
        lacking = [t for t in range(n_targets) if not (daughter >> t) & 1]
        if lacking:
            mutable += 1
            u = uniform(keys["mutation"], flat(target))
            if u < mutation_probability:
                pick = min(int(u / mutation_probability * len(lacking)), len(lacking) - 1)
                daughter |= 1 << lacking[pick]
                mutations += 1
        kind[target] = TUMOR
        clone[target] = daughter
        births += 1
    for coord in dying:
        kind[coord] = DEAD
    for coord in itertools.product(*(range(n) for n in shape)):
        rate = {DEAD: p_clear_dead, NECROTIC: p_clear_necrotic}.get(int(before[coord]))
        if rate is not None and uniform(keys["clearance"], flat(coord)) < rate:
            kind[coord] = EMPTY
    return births, len(dying), mutations, mutable


def local_tumor_probabilities(kind, clone, concentration, drugs, death_hazard,
                              division_hazard, dt_days):
    """Per-site (p_die, p_divide) of every tumour site under penetrating drugs.

    ``concentration``: one padded grid per drug; ``drugs``: one dict per drug with
    ``target_bit``, ``kill`` and ``arrest`` as (emax, ec50, hill). Returns {coord: (p_die,
    p_divide)}.
    """
    def effect(c, emax, ec50, h):
        return emax * c ** h / (ec50 ** h + c ** h) if c > 0 and emax > 0 else 0.0

    out = {}
    for coord in zip(*np.nonzero(kind == TUMOR)):
        c = int(clone[coord])
        kill_rate = 0.0
        division = division_hazard[c]
        for drug, field in zip(drugs, concentration):
            if (c >> drug["target_bit"]) & 1:
                continue
            kill_rate += effect(field[coord], *drug["kill"])
            division *= 1.0 - effect(field[coord], *drug["arrest"])
        out[coord] = (-math.expm1(-(death_hazard[c] + kill_rate * dt_days)),
                      -math.expm1(-division))
    return out


def count_kinds(kind, n_kinds=8):
    return np.bincount(kind.ravel(), minlength=n_kinds)


# ============================================================================= tissue fields
# Conventions of kernels/multigrid.py: padded arrays with one ghost layer, faces ordered
# (-x, +x, -y, +y, -z, +z); bc kind 0 = no flux (ghost mirrors the interior neighbour), 1 = fixed
# value at the ghost-site centre. Nothing here is fast; keep lattices small.

NO_FLUX = 0
FIXED_VALUE = 1


def _face(c, axis, side):
    """Index tuple of the ghost face (side 0: low, 1: high) along ``axis``."""
    idx = [slice(None)] * c.ndim
    idx[axis] = 0 if side == 0 else c.shape[axis] - 1
    return tuple(idx)


def _first_interior(c, axis, side):
    idx = [slice(None)] * c.ndim
    idx[axis] = 1 if side == 0 else c.shape[axis] - 2
    return tuple(idx)


def apply_boundary(c, bc_kind, bc_value):
    """Fill the ghost layer in place: faces of axis 0, then 1 (then 2), over whole faces.

    Applying the faces axis by axis over the whole face (ghost rows included) gives the
    edges and corners the values of the later axis, as in the kernel.
    """
    for axis in range(c.ndim):
        for side in (0, 1):
            f = 2 * axis + side
            # whole face along earlier axes (their ghosts are already filled), interior
            # only along later axes (their ghosts are filled afterwards)
            idx = list(_face(c, axis, side))
            src = list(_first_interior(c, axis, side))
            for later in range(axis + 1, c.ndim):
                idx[later] = slice(1, c.shape[later] - 1)
                src[later] = slice(1, c.shape[later] - 1)
            if bc_kind[f] == FIXED_VALUE:
                c[tuple(idx)] = bc_value[f]
            else:
                c[tuple(idx)] = c[tuple(src)]
    return c


def interior(c):
    return c[(slice(1, -1),) * c.ndim]


def steady_state(shape, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value):
    """Exact discrete steady state of alpha lap c - (decay + uptake) c + source = 0 with the
    ghost boundary conditions, by a sparse direct solve over all interior sites: the
    reference for kernels.multigrid. One equation per interior site; a neighbour across a
    no-flux face is the site itself (so the coupling drops out), across a fixed face the
    fixed value. ``uptake_dt`` and ``source_dt``: padded arrays (or scalars). Returns a
    padded float64 array with ghosts filled."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    inner_shape = tuple(n - 2 for n in shape)
    n_sites = int(np.prod(inner_shape))
    ids = np.arange(n_sites).reshape(inner_shape)
    k = decay_dt + interior(np.broadcast_to(uptake_dt, shape))
    rhs = interior(np.broadcast_to(source_dt, shape)).astype(float).ravel().copy()
    rows, cols, vals = [], [], []
    for index in np.ndindex(inner_shape):
        row = ids[index]
        diag = k[index]
        for axis in range(len(shape)):
            for side, step in ((0, -1), (1, +1)):
                nb = list(index)
                nb[axis] += step
                if 0 <= nb[axis] < inner_shape[axis]:
                    diag += alpha
                    rows.append(row)
                    cols.append(ids[tuple(nb)])
                    vals.append(-alpha)
                elif bc_kind[2 * axis + side] == FIXED_VALUE:
                    diag += alpha
                    rhs[row] += alpha * bc_value[2 * axis + side]
        rows.append(row)
        cols.append(row)
        vals.append(diag)
    mat = coo_matrix((vals, (rows, cols)), shape=(n_sites, n_sites)).tocsr()
    c = np.zeros(shape)
    interior(c)[...] = spsolve(mat, rhs).reshape(inner_shape)
    return apply_boundary(c, bc_kind, bc_value)


def implicit_step(c, dt, alpha_per_time, decay, uptake, source, bc_kind, bc_value):
    """One backward-Euler step of dc/dt = alpha lap c - (decay + uptake) c + source (rates
    per unit time): (c_new - c) / dt = ..., i.e. the steady problem with reaction
    (decay + uptake) dt + 1 and source (source dt + c), diffusion alpha dt."""
    return steady_state(c.shape, alpha_per_time * dt, decay * dt + 1.0,
                        np.broadcast_to(uptake, c.shape) * dt,
                        np.broadcast_to(source, c.shape) * dt + c, bc_kind, bc_value)


# ============================================================================= immune and microenvironment
# Padded grids indexed by coordinate tuples, the kernels' Moore neighbour order; each function
# states a rule directly (proposals grouped by target, one loop over agents or sites).

EXHAUSTED, CONTACT, KILLED = 1, 2, 4


def deltas(ndim):
    return [d for d in itertools.product((-1, 0, 1), repeat=ndim) if any(d)]


def substep_key(key, substep):
    return step_key(key, substep)


def _coord(shape, i):
    return tuple(int(x) for x in np.unravel_index(i, shape))


def _flat(shape, c):
    return int(np.ravel_multi_index(c, shape))


# --------------------------------------------------------------------------- migration
def migrate_substep(kind, sites, mobility, attractant, stop_kind, bias, move_key,
                    priority_key, agent_kind):
    """One move substep of one population on the padded grid ``kind`` (changed in place).

    ``sites``: list of flat indices (returned updated), ``mobility``: 0 immobile, 1 mobile,
    2 mobile unless a neighbour has ``stop_kind``; ``attractant``: padded grid or None.
    """
    shape = kind.shape
    before = kind.copy()
    wanted = {}  # source site -> target site
    sites = [int(i) for i in sites]
    for a, i in enumerate(sites):
        if mobility[a] == 0:
            continue
        c = _coord(shape, i)
        nbrs = list(neighbours(shape, c))
        if mobility[a] == 2 and any(before[n] == stop_kind for n in nbrs):
            continue
        free = [n for n in nbrs if before[n] == EMPTY]
        if not free:
            continue
        best, best_rise = None, 0.0
        if attractant is not None:
            for n in free:
                length = math.sqrt(sum((x - y) ** 2 for x, y in zip(n, c)))
                rise = (attractant[n] - attractant[c]) * (1.0 / length)
                if rise > best_rise:
                    best, best_rise = n, rise
        u = uniform(move_key, i)
        if u < bias and best is not None:
            target = best
        else:
            r = (u - bias) / (1.0 - bias) if u >= bias else u / bias
            target = free[min(int(r * len(free)), len(free) - 1)]
        wanted[i] = _flat(shape, target)
    by_target = {}
    for i, j in wanted.items():
        by_target.setdefault(j, []).append(i)
    moved = {}
    for j, sources in by_target.items():
        winner = max(sources, key=lambda s: (hash_index(priority_key, s), s))
        moved[winner] = j
        kind[_coord(shape, j)] = agent_kind
        kind[_coord(shape, winner)] = EMPTY
    return [moved.get(i, i) for i in sites]


# --------------------------------------------------------------------------- entry
def poisson_count(mean, u, cap):
    """The smallest k with P(N <= k) > u for N ~ Poisson(mean), at most cap."""
    k, term = 0, math.exp(-mean)
    total = term
    while u >= total and k < cap:
        k += 1
        term *= mean / k
        total += term
    return k


def place_beside(kind, parents, counts, key, agent_kind):
    """Serial entry of new cells beside ``parents`` (flat sites) in the given order: parent
    p places up to counts[p] cells, the m-th on a uniform free neighbour drawn with
    ``step_key(key, m)``."""
    shape = kind.shape
    new, which = [], []
    for p, i in enumerate(int(i) for i in parents):
        for m in range(int(counts[p])):
            free = [n for n in neighbours(shape, _coord(shape, i)) if kind[n] == EMPTY]
            if not free:
                break
            target = free[min(int(uniform(step_key(key, m), i) * len(free)), len(free) - 1)]
            kind[target] = agent_kind
            new.append(_flat(shape, target))
            which.append(p)
    return new, which


# --------------------------------------------------------------------------- T cells
class _Timeline:
    """One T cell's step, settled piece by piece: exhaustion grows linearly, the death
    hazard at ``death`` (``death_exhausted`` once exhausted); the cell dies when the hazard
    reaches ``-log(1 - u_fate)``."""

    def __init__(self, entry, exhaustion, exhausted, death_hazard, busy, ready, s_sup,
                 kills_left):
        self.clock, self.e, self.h, self.hd = entry, exhaustion, 0.0, death_hazard
        self.exhausted, self.dead = exhausted, False
        self.busy, self.ready, self.s_sup = max(busy, entry), max(ready, entry), s_sup
        self.kills_left, self.kills_now, self.engaged = kills_left, 0, 0.0

    def settle(self, until, rate, p):
        while self.clock < until and not self.dead:
            d = p["death_exhausted"] if self.exhausted else p["death"]
            if self.exhausted:
                t_x = math.inf
            elif self.e >= 1.0:
                t_x = self.clock
            else:
                t_x = self.clock + (1.0 - self.e) / rate if rate > 0 else math.inf
            end = min(until, t_x)
            t_d = self.clock + (self.hd - self.h) / d if d > 0 else math.inf
            if t_d <= end:
                self.e += rate * (t_d - self.clock)
                self.h, self.clock, self.dead = self.hd, t_d, True
                return
            self.e += rate * (end - self.clock)
            self.h += d * (end - self.clock)
            self.clock = end
            if end == t_x:
                self.exhausted = True

    def death_time(self, rate, p):
        """When the cell would die if it went on at exhaustion rate ``rate``."""
        probe = _Timeline(self.clock, self.e, self.exhausted, self.hd, 0.0, 0.0, 0.0, 0)
        probe.h = self.h
        probe.settle(math.inf, rate, p)
        return probe.clock


def t_cell_step(kind, clone, pdl1, cytokine, t, p, keys):
    """Every T cell's timeline over one step, stated event by event (``kernels.t_cells``).

    ``t``: dict of per-agent lists ``sites``, ``kills_left``, ``busy_hours``, ``exhaustion``,
    ``flags``, ``engaged_hours``, ``entry_hours`` (updated in place) and ``ready_hours``;
    padded grids ``kind`` (changed), ``clone``, ``pdl1``, ``cytokine`` (or None); ``p``:
    rates per hour and times in hours (``dt``, ``kill_rate``, ``handling``, ``e_pd``,
    ``e_sup``, ``death``, ``death_exhausted``, ``pd1_max``, ``pd1_half``, ``blockade``,
    ``sup_max``, ``sup_half``, ``relief``, ``antigenicity``); ``keys``: step keys ``fate``,
    ``target``, ``kill``, ``priority``. Returns (alive, kills this step, killed sites)."""
    shape, dt = kind.shape, p["dt"]
    cells = []
    sites = [int(i) for i in t["sites"]]
    for a, i in enumerate(sites):
        c = _coord(shape, i)
        s_sup = 0.0
        if cytokine is not None and cytokine[c] > 0.0:
            s_sup = p["sup_max"] * cytokine[c] / (cytokine[c] + p["sup_half"])
        cells.append(_Timeline(t["entry_hours"][a], t["exhaustion"][a],
                               bool(t["flags"][a] & EXHAUSTED),
                               -math.log1p(-uniform(keys["fate"], i)), t["busy_hours"][a],
                               t["ready_hours"][a], s_sup, t["kills_left"][a]))
    killed = []
    running = list(range(len(cells)))
    r = 0
    while running:
        proposals = {}   # target site -> [(kill time, -priority, -site, a, start, rate)]
        for a in running:
            x, i = cells[a], sites[a]
            passive = p["e_sup"] * x.s_sup * (1.0 - p["relief"])
            can = not x.exhausted and x.kills_left > 0
            start = min(max(x.clock, x.busy, x.ready) if can else dt, dt)
            x.engaged += max(min(x.busy, start) - x.clock, 0.0)
            x.settle(start, passive, p)
            if x.dead:
                continue
            if start >= dt or x.exhausted:
                x.settle(dt, passive, p)
                continue
            targets = [n for n in neighbours(shape, _coord(shape, i)) if kind[n] == TUMOR]
            if not targets:
                x.settle(dt, passive, p)
                continue
            j = targets[min(int(uniform(step_key(keys["target"], r), i) * len(targets)),
                            len(targets) - 1)]
            level = pdl1[j]
            s_pd = p["pd1_max"] * level / (level + p["pd1_half"]) * (1.0 - p["blockade"])
            s = 1.0 - (1.0 - s_pd) * (1.0 - x.s_sup)
            kill_rate = p["kill_rate"] * p["antigenicity"][clone[j]] * (1.0 - s)
            rate = passive + p["e_pd"] * level * (1.0 - p["relief"])
            if x.e >= 1.0:
                t_x = start
            else:
                t_x = start + (1.0 - x.e) / rate if rate > 0 else math.inf
            window_end = min(dt, t_x, x.death_time(rate, p))
            u = uniform(step_key(keys["kill"], r), i)
            kill_time = start - math.log1p(-u) / kill_rate if kill_rate > 0 else math.inf
            if kill_time < window_end:
                priority = hash_index(step_key(keys["priority"], r), i)
                proposals.setdefault(_flat(shape, j), []).append(
                    (kill_time, -priority, -i, a, start, rate))
                continue
            x.engaged += window_end - start
            x.settle(window_end, rate, p)
            if not x.dead:
                x.settle(dt, passive, p)
        nxt = []
        for j, attackers in proposals.items():
            attackers.sort()
            t_kill, winner = attackers[0][0], attackers[0][3]
            kind[_coord(shape, j)] = DEAD
            killed.append(j)
            for _, _, _, a, start, rate in attackers:
                x = cells[a]
                until = max(t_kill, start)
                x.engaged += until - start
                x.clock = start
                x.settle(until, rate, p)
                nxt.append(a)
            w = cells[winner]
            w.kills_left -= 1
            w.kills_now += 1
            w.busy = t_kill + p["handling"]
            if w.kills_left <= 0:
                w.exhausted = True
        running = sorted(nxt)
        r += 1
    alive = []
    for a, x in enumerate(cells):
        alive.append(not x.dead)
        f = EXHAUSTED if x.exhausted or x.e >= 1.0 else 0
        if x.engaged > 0:
            f |= CONTACT
        if x.kills_now:
            f |= KILLED
        t["flags"][a] = f
        t["kills_left"][a] = x.kills_left
        t["exhaustion"][a] = x.e
        t["busy_hours"][a] = max(x.busy - dt, 0.0)
        t["engaged_hours"][a] = x.engaged
        t["entry_hours"][a] = 0.0
    return alive, [x.kills_now for x in cells], killed


def deaths(kind, sites, death_rate, dt, entry, fate_key):
    """Agents present from entry[a] die within the step with probability
    1 - exp(-death_rate (dt - entry[a]))."""
    shape = kind.shape
    alive = []
    for a, i in enumerate(int(i) for i in sites):
        dies = uniform(fate_key, i) < -math.expm1(-death_rate * (dt - entry[a]))
        if dies:
            kind[_coord(shape, i)] = EMPTY
        alive.append(not dies)
    return alive


# --------------------------------------------------------------------------- tissue
def hill(x, half, h):
    if x <= 0.0:
        return 0.0
    r = (x / half) ** h
    return r / (1.0 + r)


def induced_secretion(kind, ifn, rate, half, h):
    """The IFN-gamma-induced chemokine secretion per site: rate * Hill(ifn) at tumour
    sites, 0 elsewhere."""
    out = np.zeros(kind.shape)
    for c in itertools.product(*(range(n) for n in kind.shape)):
        if kind[c] == TUMOR:
            out[c] = rate * hill(ifn[c], half, h)
    return out


def division_factor(kind, oxygen, threshold, saturation):
    """Per tumour site: clip((O - threshold) / (saturation - threshold), 0, 1)."""
    out = {}
    for c in zip(*np.nonzero(kind == TUMOR)):
        x = (oxygen[c] - threshold) / (saturation - threshold)
        out[tuple(int(v) for v in c)] = min(max(x, 0.0), 1.0)
    return out


def tumor_response(kind, clone, pdl1, oxygen, ifn, params, necrosis_key, visit):
    """Necrosis and PD-L1 at the sites in ``visit`` (coordinate tuples); returns a dict
    clone -> cells turned necrotic."""
    shape = kind.shape
    necrotic = {}
    for c in visit:
        if kind[c] != TUMOR:
            pdl1[c] = np.nan
            continue
        i = _flat(shape, c)
        if oxygen is not None and oxygen[c] < params["necrosis_threshold"]:
            x = (params["necrosis_threshold"] - oxygen[c]) / (
                params["necrosis_threshold"] - params["necrosis_full"])
            p = -math.expm1(-params["necrosis_hazard"] * min(x, 1.0))  # the rate ramps
            if uniform(necrosis_key, i) < p:
                kind[c] = NECROTIC
                pdl1[c] = np.nan
                necrotic[int(clone[c])] = necrotic.get(int(clone[c]), 0) + 1
                continue
        target = params["baseline"]
        if ifn is not None:
            target += params["induced"] * hill(ifn[c], params["half"], params["hill"])
        if math.isnan(pdl1[c]):
            pdl1[c] = target
        else:
            pdl1[c] = target + (pdl1[c] - target) * params["keep"]
    return necrotic


__all__ = ["CONTACT", "DEAD", "EXHAUSTED", "KILLED", "SUPPRESSIVE", "T_CELL", "VESSEL",
           "deaths", "deltas", "division_factor", "hill", "induced_secretion", "migrate_substep",
           "place_beside", "poisson_count", "substep_key", "t_cell_step", "tumor_response"]
