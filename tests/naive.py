"""Slow, readable reference versions of every kernel, in plain Python.

Each mirrors one kernel's rules in the most direct form (no extents, no parallel passes,
Python integers for the hash) and shares nothing with it but the published constants, so
a test that finds them equal checks the fast version's bookkeeping, not a copy of it.
"""
from __future__ import annotations

import heapq
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


def local_hazards(c, conc_at_site, drugs, death_hazard, division_hazard, dt_days):
    """(h_die, h_divide) per step of a clone-``c`` cell whose site holds the concentrations
    ``conc_at_site`` (one per penetrating drug; ``drugs`` as in :func:`tumor_events`)."""
    def effect(x, emax, ec50, h):
        return emax * x ** h / (ec50 ** h + x ** h) if x > 0 and emax > 0 else 0.0

    kill_rate, division = 0.0, division_hazard
    for drug, x in zip(drugs, conc_at_site):
        if (c >> drug["target_bit"]) & 1:
            continue
        kill_rate += effect(x, *drug["kill"])
        division *= 1.0 - effect(x, *drug["arrest"])
    return death_hazard + kill_rate * dt_days, division


def uniform_at(key: int, index: int, time: float) -> float:
    """The draw of one site at one event time within a step (kernels.rng.uniform_at)."""
    salt = mix64(int(time * 9007199254740992.0) + GOLDEN)
    return uniform(key ^ salt, index)


def drug_hill(c, emax, ec50, h):
    return emax / (1.0 + (ec50 / c) ** h) if c > 0 and emax != 0 else 0.0


def tumor_events(kind, clone, shape, death_hazard, division_hazard, mutation_probability,
                 n_targets, clear_dead_hazard, clear_necrotic_hazard, keys, oxygen=None,
                 oxygen_threshold=0.0, oxygen_span=1.0, drug_fields=(), drugs=(),
                 dt_days=0.25):
    """One step of the tumour's continuous-time process (kernels.tumor), event by event.

    Grids are padded; hazards per step. ``keys``: step keys 'death', 'attempt', 'clearance',
    'target', 'mutation'. ``drug_fields``: one padded grid per penetrating drug, ``drugs``
    one dict each with target_bit, kill and arrest as (emax, ec50, hill). Returns (births,
    deaths, mutations, mutable_divisions); ``kind``/``clone`` are modified in place.
    """
    flat = lambda c: int(np.ravel_multi_index(c, shape))  # noqa: E731 - index of a site
    coord_of = lambda i: tuple(int(x) for x in np.unravel_index(i, shape))  # noqa: E731

    def hazards(coord, c):
        h_die, h_divide = death_hazard[c], division_hazard[c]
        kill_rate = 0.0
        for drug, field in zip(drugs, drug_fields):
            if (c >> drug["target_bit"]) & 1:
                continue
            kill_rate += drug_hill(field[coord], *drug["kill"])
            h_divide *= 1.0 - drug_hill(field[coord], *drug["arrest"])
        h_die += dt_days * kill_rate
        if oxygen is not None:
            x = (oxygen[coord] - oxygen_threshold) / oxygen_span
            h_divide *= min(max(x, 0.0), 1.0)
        return h_die, h_divide

    def wait(u, h):
        return -math.log1p(-u) / h if h > 0 else math.inf

    def free_neighbours(coord):
        return [n for n in neighbours(shape, coord) if kind[n] == EMPTY]

    queue, active, born = [], set(), {}
    for coord in itertools.product(*(range(n) for n in shape)):
        i, k = flat(coord), int(kind[coord])
        if k == TUMOR:
            h_die, h_divide = hazards(coord, int(clone[coord]))
            u = uniform(keys["death"], i)
            if u < -math.expm1(-h_die):   # dies within the step (kernels.tumor.schedule)
                queue.append((wait(u, h_die), 0, i, 0.0))
            if free_neighbours(coord):
                active.add(i)
                t = wait(uniform(keys["attempt"], i), h_divide)
                if t < 1.0:
                    queue.append((t, 2, i, 0.0))
        elif k in (DEAD, NECROTIC):
            h = clear_dead_hazard if k == DEAD else clear_necrotic_hazard
            t = wait(uniform(keys["clearance"], i), h)
            if t < 1.0:
                queue.append((t, 1, i, 0.0))
    heapq.heapify(queue)
    births = deaths = mutations = mutable = 0
    while queue:
        t, event, i, since = heapq.heappop(queue)
        coord = coord_of(i)
        if event == 0:  # death
            kind[coord] = DEAD
            active.discard(i)
            deaths += 1
            tc = t + wait(uniform_at(keys["clearance"], i, t), clear_dead_hazard)
            if tc < 1.0:
                heapq.heappush(queue, (tc, 1, i, t))
        elif event == 1:  # debris clears
            kind[coord] = EMPTY
            for n in neighbours(shape, coord):
                j = flat(n)
                if kind[n] == TUMOR and j not in active:
                    active.add(j)
                    ta = t + wait(uniform_at(keys["attempt"], j, t),
                                  hazards(n, int(clone[n]))[1])
                    if ta < 1.0:
                        heapq.heappush(queue, (ta, 2, j, t))
        else:  # division attempt
            if kind[coord] != TUMOR or born.get(i, -1.0) > since:
                continue
            free = free_neighbours(coord)
            if not free:
                active.discard(i)
                continue
            pick = min(int(uniform_at(keys["target"], i, t) * len(free)), len(free) - 1)
            target = free[pick]
            z = flat(target)
            daughter = int(clone[coord])
            lacking = [b for b in range(n_targets) if not (daughter >> b) & 1]
            if lacking:
                mutable += 1
                u = uniform_at(keys["mutation"], z, t)
                if u < mutation_probability:
                    choice = min(int(u / mutation_probability * len(lacking)), len(lacking) - 1)
                    daughter |= 1 << lacking[choice]
                    mutations += 1
            kind[target] = TUMOR
            clone[target] = daughter
            active.add(z)
            born[z] = t
            births += 1
            h_die, h_divide = hazards(target, daughter)
            for key, event_kind, h in (("death", 0, h_die), ("attempt", 2, h_divide)):
                tn = t + wait(uniform_at(keys[key], z, t), h)
                if tn < 1.0:
                    heapq.heappush(queue, (tn, event_kind, z, t))
            tn = t + wait(uniform_at(keys["attempt"], i, t), hazards(coord, int(clone[coord]))[1])
            if tn < 1.0:
                heapq.heappush(queue, (tn, 2, i, t))
    return births, deaths, mutations, mutable


class _IndexedSet:
    """A list with O(1) add, remove and uniform choice (swap-remove)."""

    def __init__(self):
        self.items, self.index = [], {}

    def __len__(self):
        return len(self.items)

    def __contains__(self, item):
        return item in self.index

    def add(self, item):
        if item not in self.index:
            self.index[item] = len(self.items)
            self.items.append(item)

    def discard(self, item):
        k = self.index.pop(item, None)
        if k is None:
            return
        last = self.items.pop()
        if k < len(self.items):
            self.items[k] = last
            self.index[last] = k

    def choice(self, rng):
        return self.items[int(rng.integers(len(self.items)))]


def continuous_time_growth(shape, division_rate, death_rate, clearance_rate, days, seed,
                           radius=0, record_every=1.0):
    """An independent continuous-time (Gillespie) simulation of the same tumour process on an
    unpadded lattice with walls — no steps at all. A tumour cell with at least one EMPTY
    Moore neighbour divides at ``division_rate`` into one of them chosen uniformly (cells
    without one cannot divide); every tumour cell dies at ``death_rate``; dead debris clears
    at ``clearance_rate``. Starts from a disc/ball of ``radius`` (0: one cell) at the centre.
    Returns arrays (times, tumour cells, cumulative divisions, cumulative deaths) sampled
    every ``record_every`` days."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    kind = np.zeros(shape, np.uint8)
    deltas = [d for d in itertools.product((-1, 0, 1), repeat=len(shape)) if any(d)]

    def around(c):
        for d in deltas:
            n = tuple(x + y for x, y in zip(c, d))
            if all(0 <= x < m for x, m in zip(n, shape)):
                yield n

    def refresh(c):
        """Put tumour cell c in the frontier iff it has an empty neighbour."""
        if kind[c] == TUMOR and any(kind[n] == EMPTY for n in around(c)):
            frontier.add(c)
        else:
            frontier.discard(c)

    centre = [n // 2 for n in shape]
    cells, frontier, debris = _IndexedSet(), _IndexedSet(), _IndexedSet()
    for d in itertools.product(range(-radius, radius + 1), repeat=len(shape)):
        if sum(x * x for x in d) <= radius * radius:
            c = tuple(x + y for x, y in zip(centre, d))
            kind[c] = TUMOR
            cells.add(c)
    for c in list(cells.items):
        refresh(c)
    t, births, deaths = 0.0, 0, 0
    samples, next_sample = [], 0.0
    while True:
        rates = (len(frontier) * division_rate, len(cells) * death_rate,
                 len(debris) * clearance_rate)
        total = sum(rates)
        wait = rng.exponential(1.0 / total) if total > 0 else math.inf
        while next_sample <= min(t + wait, days):
            samples.append((next_sample, len(cells), births, deaths))
            next_sample += record_every
        t += wait
        if t > days:
            break
        r = rng.random() * total
        if r < rates[0]:
            c = frontier.choice(rng)
            free = [n for n in around(c) if kind[n] == EMPTY]
            n = free[int(rng.integers(len(free)))]
            kind[n] = TUMOR
            cells.add(n)
            births += 1
            changed = n
        elif r < rates[0] + rates[1]:
            c = cells.choice(rng)
            cells.discard(c)
            kind[c] = DEAD
            debris.add(c)
            deaths += 1
            changed = c
        else:
            c = debris.choice(rng)
            debris.discard(c)
            kind[c] = EMPTY
            changed = c
        refresh(changed)
        for n in around(changed):
            refresh(n)
    return tuple(np.array(column) for column in zip(*samples))


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


def coarse_widths(n, first):
    """Widths (in lattice sites) of the cells of an axis of n sites after ``first``
    halvings: neighbours paired from the low end, an odd one out left alone at the end (an
    axis of one site stays one cell)."""
    widths = [1.0] * n
    for _ in range(first):
        if len(widths) > 1:
            widths = [sum(widths[q:q + 2]) for q in range(0, len(widths), 2)]
    return widths


def _centres(widths):
    return np.cumsum(widths) - 0.5 * np.asarray(widths)


def coarse_steady_state(shape, alpha, reaction, source, bc_kind, bc_value, first):
    """The field of :func:`steady_state` solved on a grid 2^first times coarser (cells of
    :func:`coarse_widths` per axis, each with the volume average of its sites' reaction and
    source), finite volumes: flux alpha (difference) / (distance between centres) across a
    face, per unit cell width; a fixed value sits at the lattice's ghost-site centre, half a
    site outside the face; no flux across a no-flux face. Returns the coarse cell values
    (no ghosts) and each axis's widths."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve

    inner = tuple(n - 2 for n in shape)
    widths = [coarse_widths(n, first) for n in inner]
    cells = tuple(len(w) for w in widths)
    k = interior(np.broadcast_to(reaction, shape)).astype(float)
    s = interior(np.broadcast_to(source, shape)).astype(float)
    for axis, w in enumerate(widths):  # block sums, then divide by the volume
        edges = np.concatenate([[0], np.cumsum(w).astype(int)[:-1]])
        k = np.add.reduceat(k, edges, axis=axis)
        s = np.add.reduceat(s, edges, axis=axis)
    volume = np.ones(cells)
    for axis, w in enumerate(widths):
        shape_w = [-1 if a == axis else 1 for a in range(len(cells))]
        volume = volume * np.asarray(w).reshape(shape_w)
    k, s = k / volume, s / volume
    ids = np.arange(int(np.prod(cells))).reshape(cells)
    rhs = s.ravel().copy()
    rows, cols, vals = [], [], []
    for index in np.ndindex(cells):
        row = ids[index]
        diag = k[index]
        for axis, w in enumerate(widths):
            centre = _centres(w)
            i = index[axis]
            for side, step in ((0, -1), (1, +1)):
                j = i + step
                if 0 <= j < cells[axis]:
                    coupling = alpha / (abs(centre[j] - centre[i]) * w[i])
                    nb = list(index)
                    nb[axis] = j
                    rows.append(row)
                    cols.append(ids[tuple(nb)])
                    vals.append(-coupling)
                    diag += coupling
                elif bc_kind[2 * axis + side] == FIXED_VALUE:
                    coupling = alpha / ((0.5 * w[i] + 0.5) * w[i])
                    diag += coupling
                    rhs[row] += coupling * bc_value[2 * axis + side]
        rows.append(row)
        cols.append(row)
        vals.append(diag)
    mat = coo_matrix((vals, (rows, cols)), shape=(rhs.size, rhs.size)).tocsr()
    return spsolve(mat, rhs).reshape(cells), widths


def _interpolate_axis(values, axis, coarse_w, fine_w, kind_lo, kind_hi, value_lo, value_hi):
    """Values on the cells of ``coarse_w`` along ``axis`` brought to the cells of
    ``fine_w`` (one halving finer): each fine cell takes the linear interpolation, at its
    centre, between its parent and the parent's neighbour on its side; beyond a fixed face
    that neighbour is the fixed value half a site outside the face, beyond a no-flux face
    the parent's mirror image (the same value)."""
    cc, fc = _centres(coarse_w), _centres(fine_w)
    length = float(np.sum(fine_w))
    values = np.moveaxis(values, axis, 0)
    out = np.empty((len(fine_w),) + values.shape[1:])
    for i in range(len(fine_w)):
        parent = i // 2 if len(coarse_w) < len(fine_w) else i
        x, xp = fc[i], cc[parent]
        if x == xp:
            out[i] = values[parent]
            continue
        far = parent - 1 if x < xp else parent + 1
        if 0 <= far < len(coarse_w):
            x_far, v_far = cc[far], values[far]
        elif far < 0:
            fixed = kind_lo == FIXED_VALUE
            x_far = -0.5 if fixed else -xp
            v_far = value_lo if fixed else values[parent]
        else:
            fixed = kind_hi == FIXED_VALUE
            x_far = length + 0.5 if fixed else 2.0 * length - xp
            v_far = value_hi if fixed else values[parent]
        w = (x - x_far) / (xp - x_far)
        out[i] = w * values[parent] + (1.0 - w) * v_far
    return np.moveaxis(out, 0, axis)


def coarse_field(shape, alpha, reaction, source, bc_kind, bc_value, first):
    """A field solved on a grid 2^first times coarser (:func:`coarse_steady_state`),
    interpolated back to the lattice one halving at a time (:func:`_interpolate_axis` along
    each axis in turn: tensor-product linear). Returns a padded float64 array with ghosts
    filled, like :func:`steady_state`."""
    values, _ = coarse_steady_state(shape, alpha, reaction, source, bc_kind, bc_value, first)
    inner = tuple(n - 2 for n in shape)
    for level in range(first, 0, -1):
        for axis, n in enumerate(inner):
            coarse_w, fine_w = coarse_widths(n, level), coarse_widths(n, level - 1)
            values = _interpolate_axis(values, axis, coarse_w, fine_w, bc_kind[2 * axis],
                                       bc_kind[2 * axis + 1], bc_value[2 * axis],
                                       bc_value[2 * axis + 1])
    c = np.zeros(shape)
    interior(c)[...] = values
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
def nth_set_bit(mask: int, pick: int) -> int:
    """Index of the ``pick``-th (from 0) set bit of ``mask``, counted from bit 0."""
    return [d for d in range(mask.bit_length()) if mask >> d & 1][pick]


def steepest_free_neighbour(field, coord, free) -> int:
    """Position (in the kernels' Moore order) of the free neighbour of the padded-grid
    coordinate ``coord`` (``free``: a set of positions) over which ``field`` rises most
    steeply, (field[n] - field[coord]) * (1 / |n - coord|) with the difference in the field's
    precision and the product in float64; the first on a tie, -1 if none rises."""
    best, best_rise = -1, 0.0
    for d, n in enumerate(neighbours(field.shape, coord)):
        length = math.sqrt(sum((x - y) ** 2 for x, y in zip(n, coord)))
        rise = float(field[n] - field[coord]) * (1.0 / length)
        if d in free and rise > best_rise:
            best, best_rise = d, rise
    return best


def migrate_substep(kind, sites, mobility, attractant, stop_kind, bias, move_key,
                    priority_key, agent_kind, clone=None, seen=None):
    """One move substep of one population on the padded grid ``kind`` (changed in place).

    ``sites``: list of flat indices (returned updated), ``mobility``: 0 immobile, 1 mobile,
    2 mobile unless a neighbour has ``stop_kind`` and (given ``clone`` and ``seen``, one
    flag per clone) ``seen[clone]``; ``attractant``: padded grid or None.
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
        if mobility[a] == 2 and any(before[n] == stop_kind
                                    and (seen is None or seen[clone[n]]) for n in nbrs):
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


def extravasation_weights(field, sites, half, basal):
    """Each vessel's share of a step's entries: basal + C / (C + half) for the field C at
    the vessel, a negative (or missing: empty ``field``) level read as 0."""
    weights = []
    for i in sites:
        level = float(field[i]) if len(field) else 0.0
        level = max(level, 0.0) if not math.isnan(level) else level
        weights.append(basal + level / (level + half))
    return weights


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
    ``sup_max``, ``sup_half``, ``relief``, ``antigenicity``, optional ``seen``: the clones
    a T cell recognises, the only tumour cells it attacks); ``keys``: step keys ``fate``,
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
            seen = p.get("seen")  # one flag per clone: recognised; absent: every clone
            targets = [n for n in neighbours(shape, _coord(shape, i))
                       if kind[n] == TUMOR and (seen is None or seen[clone[n]])]
            if not targets:
                x.settle(dt, passive, p)
                continue
            j = targets[min(int(uniform(step_key(keys["target"], r), i) * len(targets)),
                            len(targets) - 1)]
            level = float(pdl1[j])
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
def hill_power(x, half, h):
    """(x / half)^h, 0 for x <= 0: Python's float64 power, rounded to float32 (the kernel
    is within one float32 unit in the last place of it, ``kernels.powers``)."""
    if x <= 0.0:
        return 0.0
    return float(np.float32((float(x) / half) ** h))


def hill(x, half, h):
    r = hill_power(x, half, h)
    return r / (1.0 + r)


def source_from_powers(kind, source_by_kind, rate, powers):
    """The chemokine's float32 source per site: its kind's table entry, plus at a tumour
    site rate * r / (1 + r) for the Hill power r given there (``powers``, float64)."""
    out = np.zeros(kind.shape, np.float32)
    for c in itertools.product(*(range(n) for n in kind.shape)):
        value = np.float32(source_by_kind[kind[c]])
        if kind[c] == TUMOR:
            r = float(powers[c])
            value = np.float32(float(value) + rate * (r / (1.0 + r)))
        out[c] = value
    return out


def induced_secretion(kind, ifn, rate, half, h):
    """The IFN-gamma-induced chemokine secretion per site: rate * Hill(ifn) at tumour
    sites, 0 elsewhere."""
    out = np.zeros(kind.shape)
    for c in itertools.product(*(range(n) for n in kind.shape)):
        if kind[c] == TUMOR:
            out[c] = rate * hill(ifn[c], half, h)
    return out


def t_cell_secretion(sites, engaged_hours, exhausted, rate_per_hour, source):
    """IFN-gamma secreted by T cells into a copy of the float32 ``source`` (flat): rate x
    hours engaged at the site of each T cell not exhausted. Returns (the sources, whether a
    site added to holds a nonzero value)."""
    out = source.copy()
    nonzero = False
    for site, hours, done in zip(sites, engaged_hours, exhausted):
        if not done and hours > 0.0:
            out[site] = np.float32(float(out[site]) + rate_per_hour * hours)
            nonzero = nonzero or out[site] != 0.0
    return out, nonzero


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
        level = float(pdl1[c])  # in float64, as the kernel computes; stored rounded
        if math.isnan(level):
            pdl1[c] = target
        else:
            pdl1[c] = target + (level - target) * params["keep"]
    return necrotic


__all__ = ["CONTACT", "DEAD", "EXHAUSTED", "KILLED", "SUPPRESSIVE", "T_CELL", "VESSEL", "deaths",
           "deltas", "extravasation_weights", "hill", "hill_power", "induced_secretion",
           "migrate_substep", "place_beside", "poisson_count", "source_from_powers", "substep_key",
           "t_cell_secretion", "t_cell_step", "tumor_response"]
