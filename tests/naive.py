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
# Conventions of kernels/fields.py: padded arrays with one ghost layer, faces ordered
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


def laplacian_sum(c):
    """sum over axes of c[+1] - 2 c + c[-1] at interior sites (ghosts must be filled)."""
    inner = interior(c)
    total = np.zeros_like(inner)
    for axis in range(c.ndim):
        lo = [slice(1, -1)] * c.ndim
        hi = [slice(1, -1)] * c.ndim
        lo[axis] = slice(0, -2)
        hi[axis] = slice(2, None)
        total += c[tuple(lo)] - 2.0 * inner + c[tuple(hi)]
    return total


def line_matrix(alpha, reaction, lo_kind, hi_kind):
    """Dense (I - A_a) for one line: -alpha off the diagonal, 1 + 2 alpha + reaction on it,
    less alpha at an end next to a no-flux face (the ghost mirrors that site)."""
    n = reaction.shape[0]
    m = np.zeros((n, n))
    for q in range(n):
        m[q, q] = 1.0 + 2.0 * alpha + reaction[q]
        if q > 0:
            m[q, q - 1] = -alpha
        if q < n - 1:
            m[q, q + 1] = -alpha
    if lo_kind == NO_FLUX:
        m[0, 0] -= alpha
    if hi_kind == NO_FLUX:
        m[n - 1, n - 1] -= alpha
    return m


def solve_lines(rhs, alpha, reaction, axis, lo_kind, hi_kind):
    """Solve (I - A_axis) x = rhs along every line of ``axis`` (interior arrays)."""
    rhs_m = np.moveaxis(rhs, axis, -1)
    reac_m = np.moveaxis(reaction, axis, -1)
    x = np.empty_like(rhs_m)
    for index in np.ndindex(rhs_m.shape[:-1]):
        m = line_matrix(alpha, reac_m[index], lo_kind, hi_kind)
        x[index] = np.linalg.solve(m, rhs_m[index])
    return np.moveaxis(x, -1, axis)


def adi_step(c, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value):
    """One Douglas-Gunn (theta = 1) step in delta form; returns a new padded array."""
    c = apply_boundary(c.copy(), bc_kind, bc_value)
    nd = c.ndim
    k = decay_dt + interior(uptake_dt)
    residual = alpha * laplacian_sum(c) - k * interior(c) + interior(source_dt)
    d = residual
    for axis in range(nd):
        d = solve_lines(d, alpha, k / nd, axis, bc_kind[2 * axis], bc_kind[2 * axis + 1])
    new = c.copy()
    interior(new)[...] = interior(c) + d
    return apply_boundary(new, bc_kind, bc_value)


def diffuse_step(c, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value, n_substeps=1):
    """Reference of kernels.fields.diffuse_step: returns the new padded field."""
    f = 1.0 / n_substeps
    for _ in range(n_substeps):
        c = adi_step(c, alpha * f, decay_dt * f, uptake_dt * f, source_dt * f,
                     bc_kind, bc_value)
    return c


def steady_state(shape, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value):
    """Exact discrete steady state (alpha lap c - k c + s = 0 with the ghost BCs), by a
    dense direct solve over all interior sites: the reference for quasi_steady_state and
    the fixed point of every ADI step. Returns a padded array with ghosts filled."""
    inner_shape = tuple(n - 2 for n in shape)
    n_sites = int(np.prod(inner_shape))
    ids = np.arange(n_sites).reshape(inner_shape)
    k = decay_dt + interior(uptake_dt)
    mat = np.zeros((n_sites, n_sites))
    rhs = -interior(source_dt).ravel().astype(float)
    for index in np.ndindex(inner_shape):
        row = ids[index]
        mat[row, row] -= k[index]
        for axis in range(len(shape)):
            for side, step in ((0, -1), (1, +1)):
                nb = list(index)
                nb[axis] += step
                mat[row, row] -= alpha
                if 0 <= nb[axis] < inner_shape[axis]:
                    mat[row, ids[tuple(nb)]] += alpha
                elif bc_kind[2 * axis + side] == NO_FLUX:
                    mat[row, row] += alpha  # ghost mirrors this site
                else:
                    rhs[row] -= alpha * bc_value[2 * axis + side]
    c = np.zeros(shape)
    interior(c)[...] = np.linalg.solve(mat, rhs).reshape(inner_shape)
    return apply_boundary(c, bc_kind, bc_value)


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


def kind_sources(kind, uptake_by_kind, source_by_kind, ifn, induced_field, induced_rate,
                 half, h):
    """(uptake, source): arrays (n_fields, *shape) per the kind tables, plus IFN-induced
    secretion at tumour sites into ``induced_field``."""
    n_fields = uptake_by_kind.shape[0]
    uptake = np.zeros((n_fields,) + kind.shape)
    source = np.zeros((n_fields,) + kind.shape)
    for c in itertools.product(*(range(n) for n in kind.shape)):
        k = kind[c]
        for f in range(n_fields):
            uptake[(f,) + c] = uptake_by_kind[f, k]
            source[(f,) + c] = source_by_kind[f, k]
        if induced_field >= 0 and ifn is not None and k == TUMOR:
            source[(induced_field,) + c] += induced_rate * hill(ifn[c], half, h)
    return uptake, source


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
           "deaths", "deltas", "division_factor", "hill", "kind_sources", "migrate_substep",
           "place_beside", "poisson_count", "substep_key", "t_cell_step", "tumor_response"]
