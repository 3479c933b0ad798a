"""Tissue fields: the quasi-steady diffusion-decay-uptake problem, by geometric multigrid.

Equation, per site x of the lattice and per step (everything in per-step units: alpha =
D dt / dx^2, k = (decay + uptake) dt, s = source dt)::

    alpha lap c - k(x) c + s(x) = 0

the steady state of dc/dt = D lap c - (decay + uptake) c + source for the lattice of one
step. Backward Euler is the same problem with 1 added to k and c_old added to s, so the
solver also steps transients.

Storage
-------
A field is a flat float32 array over the padded lattice (kernels/lattice.py): shape
(nx+2, ny+2[, nz+2]) with ONE ghost layer on every face, interior [1:-1, ...]. The
right-hand side s and the reaction k live in float32 buffers ``bb`` and ``kk`` that hold
every level, the fine one first (same flat indexing), built from per-kind tables by
:func:`fine_tables` (any other source is added to ``bb`` afterwards) and
:func:`restrict_levels`; ``bx`` holds the coarse levels' corrections. Arithmetic is
float64 where it matters (residuals); the smoother computes in float32. float32 keeps a
field at 4 B per site; its rounding (6e-8 relative) is far below every tolerance used.
A field whose reaction is one value everywhere may instead read it from a single row of
that value (:func:`uniform_reaction`: level-table columns ``G_KOFF`` / ``G_KROW`` place a
row's reaction in ``kk``), with the same numbers.

Boundary conditions
-------------------
One per face, in the order (-x, +x, -y, +y, -z, +z): ``bc_kind`` 0 (BC_NO_FLUX) or 1
(BC_FIXED_VALUE), ``bc_value``.

* no flux: zero normal gradient, the wall on the FACE halfway between the ghost and the
  first interior site (cell-centred Neumann; the ghost mirrors its interior neighbour);
* fixed value: Dirichlet at the GHOST-SITE CENTRE, one spacing outside the first interior
  site (for a fixed -x face, interior site i, padded index, lies i * dx from it).

The solver writes the ghost layer on exit (faces, then edges and corners by applying the
faces in axis order: the later axis wins), so Moore-neighbourhood readers see defined
values. A fixed value inside the lattice (a vessel) is a strong exchange term: k = K,
s = K c_blood; any K works (the solver has no stiffness limit).

Method
------
V(1, 1) cycles of geometric multigrid, warm-started from the field's previous values:

* levels: cell-centred coarsening by 2 along every axis with more than one cell, while
  some axis has more than MIN_COARSE cells; an odd count leaves a narrower last cell, so
  any lattice size coarsens. Each level is a finite-volume discretisation on its own
  cells (flux alpha (difference) / (distance between centres) per unit face; the fixed
  value, zero for a coarse correction, at the fine ghost centre), with the reaction the
  volume average of its children's;
* smoother: red-black Gauss-Seidel, one sweep before and one after the coarse
  correction. Within a colour the order of sites does not matter, so the sweeps run in
  parallel over lines (2D rows, 3D planes) and give the same bits for any thread count
  and chunking;
* restriction: the volume average of the residual over a coarse cell's children;
  prolongation: tensor-product linear interpolation from the parent cell and its
  neighbour on the child's side (ghosts: mirror at a no-flux face, zero at the fixed
  value's position); the coarsest level (at most MIN_COARSE cells per axis) is solved
  by Gaussian elimination;
* each pass over a level is one lagged sweep through its lines (red on line u, black on
  u - 1, the residual of the coarse line whose children end at u - 2; or: correct u,
  red on u - 1, black on u - 2), so a line is read once per pass; chunks of lines (one
  per thread) finish the lines at their ends in two short extra phases.

A cycle costs about two streaming passes over the fine level (plus a third for the
coarse levels together) and contracts the error by ~0.1 in 2D, ~0.15-0.2 in 3D, for any
reaction: O(N) work whatever k dt / alpha. Very stiff sites (a pinned site's k many
times alpha) slow this to ~0.3-0.4 per cycle (the coarse levels, which average the
reaction, see a cell with one pinned child as half pinned); the fixed point is the exact
discrete steady state regardless.

Stopping: after the cycle whose coarse-grid correction is at most ``tol`` times max |c|
(the correction bounds the change of the cycle's interpolation, whose weights are
non-negative and sum to at most 1). With error contraction ~0.1, what is left is about a
tenth of that.

Parallelism and determinism
---------------------------
Chunks of lines, one per thread on levels of PARALLEL_MIN_SITES sites or more; the
results do not depend on the chunks (red-black Gauss-Seidel and the residual are the
same whatever order), and the only reductions are exact maxima. The restriction of
per-level values (:func:`restrict_levels`: the oxygen reaction, every step) works in
RESTRICT_CHUNKS chunks of coarse units on the same levels, each unit computed alone.
Bit-identical for any number of threads.

Fields on a coarser grid
------------------------
A field may live on level k of its hierarchy (``hierarchy(..., first=k)``: that level's
boundary cells couple to the fixed values): its sources and reactions are the volume
averages of the lattice's (:func:`restrict_levels`), the cycles run on levels k and
coarser (``solve(..., first=k)``, warm-started from the field's values there), and
:func:`prolong_solution` interpolates it to the lattice level by level with the
prolongation's weights.

Compile time: every row kernel has one call site (the compiler inlines a callee into each
call site) and no literal arguments (a literal compiles another specialisation); 2D and 3D
are separate specialisations of one code (the dimension is a literal there), so a run
compiles only the one it uses. The row kernels and their helpers are inlined in Numba's IR
(``inline_jit``): a compiled call passes each of its seven arrays as a struct and counts
its references, ~0.2 us per row of a level across a cycle's operations, which on the
coarse levels is most of their cost (1000x1000 fields phase 29.6-31.4 -> 27.9-28.2 ms at
1 thread, 3D 200^3 396 -> 332 ms; the 2D solve compiles in ~10 s instead of ~7). The
function that runs a chunk's row operations (:func:`_run`) is compiled without reference
counting (``kernels.jit.nrt_free_jit``; :func:`_pass` allocates its scratch): each slice
a row operation takes still counted a reference to its array, an atomic increment and
decrement per view, ~10 per row (fields phase 28.3 -> 24.7 ms, same bits).
"""
import numba
import numpy as np

from .jit import SERIAL, inline_jit, jit, nrt_free_jit, parallel_jit, prange
from .lattice import by_kind

BC_NO_FLUX = 0
BC_FIXED_VALUE = 1
# coarsen while some axis has more cells than this; the coarsest level is solved directly
MIN_COARSE = 2
MAX_LEVELS = 40
# levels with fewer sites run serially: a parallel region costs a thread wake-up and a
# barrier, which stall for a scheduler slice when another process holds a core (a busy
# machine runs one thread anyway, kernels.jit.AdaptiveThreads; 65536 until 2026-12-05,
# when the 250x250 level of a 1000x1000 field went parallel: -0.9 ms at 2 threads)
PARALLEL_MIN_SITES = 16384
TABLE_BLOCK = 65536  # sites per parallel chunk of fine_tables
RESTRICT_CHUNKS = 16  # parallel chunks of a level's restriction (any count: same result)
# level table columns
(G_N0, G_N1, G_N2, G_OFF, G_C0, G_C1, G_C2, G_T0, G_T1, G_T2,
 G_LO0, G_HI0, G_LO1, G_HI1, G_LO2, G_HI2, G_PLO, G_PHI, G_KOFF, G_KROW) = range(20)
N_GEO = 20
# rows of the per-axis float table: couplings to the cell before / after, their sum,
# restriction weight (cell volume / parent volume), prolongation weight of the near parent
T_AM, T_AP, T_DD, T_RW, T_PW = range(5)
# Operations on a unit (row or plane), executed from a schedule so that each row function
# has one call site (the compiler inlines callees into every call site: fewer sites,
# faster compiles)
OP_RED, OP_BLACK, OP_RESTRICT, OP_PROLONG = range(4)

# --------------------------------------------------------------------------- geometry
def _axis_cells(n, width, last):
    """Centres and widths (in fine cells, low face at 0) of n cells of width ``width``, the
    last one ``last`` wide."""
    centre = np.zeros(n + 2)
    size = np.zeros(n + 2)
    for i in range(1, n + 1):
        size[i] = width if i < n else last
        centre[i] = (i - 0.5) * width if i < n else (n - 1) * width + 0.5 * last
    return centre, size


def _first_run(flags, n):
    """(lo, hi) of the run of True starting at the first True in flags[1..n] (hi < lo:
    none)."""
    lo = 1
    while lo <= n and not flags[lo]:
        lo += 1
    hi = lo - 1
    while hi + 1 <= n and flags[hi + 1]:
        hi += 1
    return lo, hi


def hierarchy(padded_shape, alpha, bc_kind, bc_value, first=0):
    """Levels of a padded 2D/3D field: cell-centred coarsening by 2 along every axis with
    more than one cell, while some axis has more than MIN_COARSE cells (an odd count
    leaves a narrower last cell). ``first``: the level the field is solved on (0: the
    lattice; l > 0: a field on a grid 2^l times coarser, see :func:`prolong_solution`),
    the one whose boundary cells couple to a fixed value. Returns (geo int64 (L, N_GEO),
    std float64 (L, 3): interior coupling alpha / h^2 per view axis, gm float64 (L, 6):
    ghost = gm * neighbour (+ gb on the level solved on) per face, gb float64 (6,), axf
    float64 (5, T), axi int64 (2, T): per-axis tables).

    View axes: 3D (x, y, z) = (0, 1, 2); 2D (x, y) = (1, 2), axis 0 a dummy of one cell."""
    ndim = len(padded_shape)
    shift = 3 - ndim
    n = np.ones(3, np.int64)
    for ax in range(ndim):
        n[ax + shift] = padded_shape[ax] - 2
    extent = n.copy()
    geo = np.zeros((MAX_LEVELS, N_GEO), np.int64)
    levels = 0
    while True:
        for v in range(3):
            geo[levels, G_N0 + v] = n[v]
        coarsen = False
        for v in range(shift, 3):
            if n[v] > MIN_COARSE:
                coarsen = True
        if not coarsen or levels + 1 == MAX_LEVELS:
            break
        for v in range(shift, 3):
            if n[v] > 1:
                geo[levels, G_C0 + v] = 1
                n[v] = (n[v] + 1) // 2
        levels += 1
    levels += 1
    geo = geo[:levels].copy()
    std = np.zeros((levels, 3))
    gm = np.zeros((levels, 6))
    gb = np.zeros(6)
    off = 0
    t_len = 0
    for l in range(levels):
        geo[l, G_OFF] = off
        geo[l, G_KOFF] = off  # the reaction lives beside the right-hand side ...
        geo[l, G_KROW] = 1    # ... one entry per site (see uniform_reaction)
        size = 1
        for v in range(3):
            size *= int(geo[l, G_N0 + v]) + (2 if v >= shift else 0)
            geo[l, G_T0 + v] = t_len
            t_len += geo[l, G_N0 + v] + 2
        off += size
    axf = np.zeros((5, t_len))
    axi = np.zeros((2, t_len), np.int64)
    for v in range(3):
        if v < shift:  # the dummy axis: one cell, no coupling, weights 1
            for l in range(levels):
                axf[T_RW, geo[l, G_T0 + v]] = 1.0
                axf[T_PW, geo[l, G_T0 + v]] = 1.0
            continue
        fixed_lo = bc_kind[2 * (v - shift)] == BC_FIXED_VALUE
        fixed_hi = bc_kind[2 * (v - shift) + 1] == BC_FIXED_VALUE
        length = float(extent[v])
        width = 1.0
        last = 1.0
        for l in range(levels):
            nl = geo[l, G_N0 + v]
            a = geo[l, G_T0 + v]
            centre, size = _axis_cells(nl, width, last)
            s = alpha / (width * width)
            std[l, v] = s
            # coarse corrections vanish on a fixed face and mirror on a no-flux one
            gm[l, 2 * v] = 0.0 if fixed_lo else 1.0
            gm[l, 2 * v + 1] = 0.0 if fixed_hi else 1.0
            if l == 0:
                gb[2 * v] = bc_value[2 * (v - shift)] if fixed_lo else 0.0
                gb[2 * v + 1] = bc_value[2 * (v - shift) + 1] if fixed_hi else 0.0
            standard = np.zeros(nl + 2, np.bool_)
            for i in range(1, nl + 1):
                # finite volumes: flux alpha (difference) / (distance between centres) per
                # unit face, per unit cell volume. A fixed value sits at the fine ghost
                # centre, half a fine cell outside the face; only the level the field is
                # solved on reads it (coarser levels carry corrections, zero there).
                am = 0.0
                ap = 0.0
                dd = 0.0
                if i > 1:
                    am = alpha / ((centre[i] - centre[i - 1]) * size[i])
                    dd += am
                elif fixed_lo:
                    dd += alpha / ((0.5 * size[i] + 0.5) * size[i])
                    am = dd if l == first else 0.0
                if i < nl:
                    ap = alpha / ((centre[i + 1] - centre[i]) * size[i])
                    dd += ap
                elif fixed_hi:
                    coef = alpha / ((0.5 * size[i] + 0.5) * size[i])
                    dd += coef
                    ap = coef if l == first else 0.0
                axf[T_AM, a + i] = am
                axf[T_AP, a + i] = ap
                axf[T_DD, a + i] = dd
                standard[i] = am == s and ap == s and dd == 2.0 * s
            geo[l, G_LO0 + 2 * v], geo[l, G_HI0 + 2 * v] = _first_run(standard, nl)
            if l + 1 == levels:
                break
            coarsened = geo[l, G_C0 + v] == 1
            ncl = geo[l + 1, G_N0 + v]
            c_width = 2.0 * width if coarsened else width
            c_last = (width + last if nl % 2 == 0 else last) if coarsened else last
            c_centre, c_size = _axis_cells(ncl, c_width, c_last)
            pair = np.zeros(ncl + 2, np.bool_)
            for i in range(1, nl + 1):
                parent = (i + 1) // 2 if coarsened else i
                axf[T_RW, a + i] = size[i] / c_size[parent]
                axi[0, a + i] = parent
                axi[1, a + i] = parent
                axf[T_PW, a + i] = 1.0
                if centre[i] == c_centre[parent]:
                    continue
                # linear interpolation between the parent and its other neighbour: a
                # coarse cell, or the ghost (a no-flux mirror image, or zero at the fixed
                # value's position)
                if centre[i] < c_centre[parent]:
                    far = parent - 1
                    x_far = (c_centre[far] if far >= 1 else
                             (-0.5 if fixed_lo else -c_centre[parent]))
                else:
                    far = parent + 1
                    x_far = (c_centre[far] if far <= ncl else
                             (length + 0.5 if fixed_hi else 2.0 * length - c_centre[parent]))
                axi[1, a + i] = far
                axf[T_PW, a + i] = (centre[i] - x_far) / (c_centre[parent] - x_far)
            for big in range(1, ncl + 1):
                pair[big] = (coarsened and 2 * big <= nl
                             and axf[T_PW, a + 2 * big - 1] == 0.75
                             and axf[T_PW, a + 2 * big] == 0.75
                             and axi[1, a + 2 * big - 1] == big - 1
                             and axi[1, a + 2 * big] == big + 1)
            if v == 2:
                geo[l, G_PLO], geo[l, G_PHI] = _first_run(pair, ncl)
            width = c_width
            last = c_last
    return geo, std, gm, gb, axf, axi


def level_count(dimensions) -> int:
    """Levels of :func:`hierarchy` for a lattice of these dimensions (sites per axis)."""
    faces = np.zeros(2 * len(dimensions), np.int64)
    padded = np.array([int(n) + 2 for n in dimensions], np.int64)
    return int(hierarchy(padded, 1.0, faces, faces.astype(np.float64))[0].shape[0])


def buffer_sizes(geo, three):
    """(length of the right-hand-side / reaction buffers: every level, the fine one
    first; length of the correction buffer: the coarse levels)."""
    last = geo.shape[0] - 1
    size = geo[last, G_N0] + 2 if three else 1
    size *= (geo[last, G_N1] + 2) * (geo[last, G_N2] + 2)
    total = geo[last, G_OFF] + size
    return total, max(total - geo[min(1, last), G_OFF], 1)


# --------------------------------------------------------------------------- rows
# A row is a line of sites along view axis 2 (contiguous) at plane p (always 0 in 2D) and
# row r of level l. Row functions take the level tables (geo, std, axf, axi), l and
# ``three`` (a 3D field).
@inline_jit
def _extents(geo, l, three):
    """Padded extents (e0, e1, e2) of level l."""
    e0 = geo[l, G_N0] + 2 if three else 1
    return e0, geo[l, G_N1] + 2, geo[l, G_N2] + 2


@inline_jit
def _standard_row(geo, l, p, r):
    return (geo[l, G_LO0] <= p <= geo[l, G_HI0] and geo[l, G_LO1] <= r <= geo[l, G_HI1]
            and geo[l, G_LO2] <= geo[l, G_HI2])


@inline_jit
def _general_site(x, i, bb, kk, q, qk, axf, t2j, cu, cd, cf, cb, d01, e2, s0, three):
    """(b + sum of coupling * neighbour, diagonal + k) at site i (b at q, k at qk) with its
    own couplings (boundaries, narrow cells). A coupling of zero multiplies a ghost, whose
    value is always finite."""
    v = (np.float64(bb[q]) + axf[T_AM, t2j] * np.float64(x[i - 1])
         + axf[T_AP, t2j] * np.float64(x[i + 1]) + cu * np.float64(x[i - e2])
         + cd * np.float64(x[i + e2]))
    if three:
        v += cf * np.float64(x[i - s0]) + cb * np.float64(x[i + s0])
    return v, d01 + axf[T_DD, t2j] + np.float64(kk[qk])


@inline_jit
def _row_couplings(geo, axf, l, p, r):
    """(up, down, front, back, their diagonal part) of row (p, r) of level l."""
    t0 = geo[l, G_T0] + p
    t1 = geo[l, G_T1] + r
    return (axf[T_AM, t1], axf[T_AP, t1], axf[T_AM, t0], axf[T_AP, t0],
            axf[T_DD, t1] + axf[T_DD, t0])


@inline_jit
def _smooth_row(x, xo, bb, kk, geo, std, axf, l, three, p, r, colour, t):
    """Gauss-Seidel on the sites of one colour ((p + r + j) % 2 == colour) of a row: the
    new values of the whole row are computed (vectorised; they depend on the other colour
    only) and this colour's written back by a contiguous blend."""
    _, e1, e2 = _extents(geo, l, three)
    s0 = e1 * e2
    n2 = geo[l, G_N2]
    base = (p * e1 + r) * e2
    xb = xo + base
    kb = geo[l, G_OFF] + base
    kq = geo[l, G_KOFF] + base * geo[l, G_KROW]
    j_lo = n2 + 1
    j_hi = n2 + 1
    if _standard_row(geo, l, p, r):
        # the uniform stretch j = lo..hi; loops run from 0 over slices starting at lo - 1,
        # so no index can be negative (wraparound code would make them gathers/scatters)
        lo = geo[l, G_LO2]
        m = geo[l, G_HI2] - lo + 1
        c0 = xb + lo
        a0 = np.float32(std[l, 0])
        a1 = np.float32(std[l, 1])
        a2 = np.float32(std[l, 2])
        d0 = np.float32(2.0 * (std[l, 0] + std[l, 1] + std[l, 2]))
        xr = x[c0 - 1:c0 + m + 1]
        up = x[c0 - e2:c0 - e2 + m]
        dn = x[c0 + e2:c0 + e2 + m]
        br = bb[kb + lo:kb + lo + m]
        kr = kk[kq + lo:kq + lo + m]
        tr = t[lo:lo + m]
        if three:
            fr = x[c0 - s0:c0 - s0 + m]
            bk = x[c0 + s0:c0 + s0 + m]
            for q in range(m):
                tr[q] = (br[q] + a2 * (xr[q] + xr[q + 2]) + a1 * (up[q] + dn[q])
                         + a0 * (fr[q] + bk[q])) / (d0 + kr[q])
        else:
            for q in range(m):
                tr[q] = (br[q] + a2 * (xr[q] + xr[q + 2])
                         + a1 * (up[q] + dn[q])) / (d0 + kr[q])
        j_lo = lo
        j_hi = lo + m
    cu, cd, cf, cb, d01 = _row_couplings(geo, axf, l, p, r)
    j = 1
    while j <= n2:
        if j == j_lo:  # skip the uniform stretch
            j = j_hi
            if j > n2:
                break
        v, diag = _general_site(x, xb + j, bb, kk, kb + j, kq + j, axf, geo[l, G_T2] + j,
                                cu, cd, cf, cb, d01, e2, s0, three)
        t[j] = v / diag
        j += 1
    keep = (p + r + 1 + colour) & 1  # q = j - 1 of this colour: q % 2 == keep
    xs = x[xb + 1:xb + n2 + 1]
    ts = t[1:n2 + 1]
    for q in range(n2):
        if (q & 1) == keep:
            xs[q] = ts[q]


@inline_jit
def _residual_row(x, xo, bb, kk, geo, std, axf, l, three, p, r, t):
    """t[j] = residual b + sum(coupling * neighbour) - (diagonal + k) x of a row (float64:
    near convergence it is a small difference of large terms)."""
    _, e1, e2 = _extents(geo, l, three)
    s0 = e1 * e2
    n2 = geo[l, G_N2]
    base = (p * e1 + r) * e2
    xb = xo + base
    kb = geo[l, G_OFF] + base
    kq = geo[l, G_KOFF] + base * geo[l, G_KROW]
    j_lo = n2 + 1
    j_hi = n2 + 1
    if _standard_row(geo, l, p, r):
        lo = geo[l, G_LO2]
        m = geo[l, G_HI2] - lo + 1
        c0 = xb + lo
        a0 = std[l, 0]
        a1 = std[l, 1]
        a2 = std[l, 2]
        d0 = 2.0 * (a0 + a1 + a2)
        xr = x[c0 - 1:c0 + m + 1]
        up = x[c0 - e2:c0 - e2 + m]
        dn = x[c0 + e2:c0 + e2 + m]
        br = bb[kb + lo:kb + lo + m]
        kr = kk[kq + lo:kq + lo + m]
        tr = t[lo:lo + m]
        if three:
            fr = x[c0 - s0:c0 - s0 + m]
            bk = x[c0 + s0:c0 + s0 + m]
            for q in range(m):
                tr[q] = (np.float64(br[q])
                         + a2 * (np.float64(xr[q]) + np.float64(xr[q + 2]))
                         + a1 * (np.float64(up[q]) + np.float64(dn[q]))
                         + a0 * (np.float64(fr[q]) + np.float64(bk[q]))
                         - (d0 + np.float64(kr[q])) * np.float64(xr[q + 1]))
        else:
            for q in range(m):
                tr[q] = (np.float64(br[q])
                         + a2 * (np.float64(xr[q]) + np.float64(xr[q + 2]))
                         + a1 * (np.float64(up[q]) + np.float64(dn[q]))
                         - (d0 + np.float64(kr[q])) * np.float64(xr[q + 1]))
        j_lo = lo
        j_hi = lo + m
    cu, cd, cf, cb, d01 = _row_couplings(geo, axf, l, p, r)
    j = 1
    while j <= n2:
        if j == j_lo:  # skip the uniform stretch
            j = j_hi
            if j > n2:
                break
        v, diag = _general_site(x, xb + j, bb, kk, kb + j, kq + j, axf, geo[l, G_T2] + j,
                                cu, cd, cf, cb, d01, e2, s0, three)
        t[j] = v - diag * np.float64(x[xb + j])
        j += 1


@inline_jit
def _restriction_frame(geo, axf, l, three, pc, rc, work):
    """What coarse row (pc, rc) of level l + 1 takes from level l: the planes p_lo..p_hi
    and rows r_lo..r_hi of its cells' children, level l's restriction weights along a row,
    and the row's accumulator (``work`` after one row of level l, zeroed)."""
    _, _, e2 = _extents(geo, l, three)
    _, _, ce2 = _extents(geo, l + 1, three)
    acc = work[e2:e2 + ce2]
    for jc in range(ce2):
        acc[jc] = 0.0
    f0 = 2 if geo[l, G_C0] else 1
    f1 = 2 if geo[l, G_C1] else 1
    p_lo = (pc - 1) * f0 + 1 if three else 0
    p_hi = min(pc * f0, geo[l, G_N0]) if three else 0
    t2 = geo[l, G_T2]
    return (p_lo, p_hi, (rc - 1) * f1 + 1, min(rc * f1, geo[l, G_N1]),
            axf[T_RW, t2:t2 + e2], acc)


@inline_jit
def _add_children(acc, t, rw, w_row, n2, coarsened):
    """acc[jc] += w_row x the restriction-weighted values t[j] of the children j of each
    coarse cell jc along a row (n2 fine cells; pairs (2 jc - 1, 2 jc) when ``coarsened``)."""
    half = n2 // 2 if coarsened else 0
    # children (2 jc - 1, 2 jc): loads of both members vectorise with shuffles
    ac = acc[1:half + 1]
    for q in range(half):
        ac[q] += w_row * (rw[1 + 2 * q] * t[1 + 2 * q] + rw[2 + 2 * q] * t[2 + 2 * q])
    for j in range(2 * half + 1, n2 + 1):  # an odd last cell, or no coarsening
        jc = (j + 1) // 2 if half > 0 else j
        acc[jc] += w_row * rw[j] * t[j]


@inline_jit
def _store_coarse_row(values, acc, geo, l, three, pc, rc):
    """Coarse row (pc, rc) of level l + 1 of ``values`` = the accumulator's cells."""
    _, ce1, ce2 = _extents(geo, l + 1, three)
    cb = geo[l + 1, G_OFF] + (pc * ce1 + rc) * ce2
    cn2 = geo[l + 1, G_N2]
    # (a loop from 0 over a slice: an index with a runtime offset would get wraparound
    # code, and a slice assignment would compile its error message)
    dest = values[cb + 1:cb + 1 + cn2]
    for jc in range(cn2):
        dest[jc] = acc[1 + jc]


@inline_jit
def _restrict_row(x, xo, bb, kk, geo, std, axf, l, three, pc, rc, work):
    """Coarse row (pc, rc) of level l + 1's right-hand side (in ``bb``) gets the volume
    average over each coarse cell's children of level l's residual."""
    p_lo, p_hi, r_lo, r_hi, rw, acc = _restriction_frame(geo, axf, l, three, pc, rc, work)
    t = work[:rw.shape[0]]
    for p in range(p_lo, p_hi + 1):
        for r in range(r_lo, r_hi + 1):
            _residual_row(x, xo, bb, kk, geo, std, axf, l, three, p, r, t)
            _add_children(acc, t, rw, axf[T_RW, geo[l, G_T0] + p] * axf[T_RW, geo[l, G_T1] + r],
                          geo[l, G_N2], geo[l, G_C2])
    _store_coarse_row(bb, acc, geo, l, three, pc, rc)


@inline_jit
def _average_row(kk, geo, axf, l, three, pc, rc, work):
    """Coarse row (pc, rc) of level l + 1 of ``kk`` (per-level values) gets the volume
    average of level l's over each coarse cell's children: :func:`_restrict_row` reading
    level l's values where they lie instead of a residual (whose code would compile here
    for nothing)."""
    p_lo, p_hi, r_lo, r_hi, rw, acc = _restriction_frame(geo, axf, l, three, pc, rc, work)
    _, e1, e2 = _extents(geo, l, three)
    for p in range(p_lo, p_hi + 1):
        for r in range(r_lo, r_hi + 1):
            kb = geo[l, G_OFF] + (p * e1 + r) * e2
            _add_children(acc, kk[kb:kb + e2], rw,
                          axf[T_RW, geo[l, G_T0] + p] * axf[T_RW, geo[l, G_T1] + r],
                          geo[l, G_N2], geo[l, G_C2])
    _store_coarse_row(kk, acc, geo, l, three, pc, rc)


@nrt_free_jit
def _restrict_units(kk, geo, axf, three, l, cu_lo, cu_hi, work):
    """Units cu_lo .. cu_hi - 1 of level l + 1 of ``kk`` (per-level values: reactions, or
    sources of a field solved on a coarser level) set to the volume average of level l's
    over each cell's children. Scratch ``work``: two rows of level l (compiled without
    reference counting, as :func:`_run`)."""
    _, crpu = _units(geo, l + 1, three)
    for cu in range(cu_lo, cu_hi):
        for k in range(crpu):
            p = cu if three else 0
            r = k + 1 if three else cu
            _average_row(kk, geo, axf, l, three, p, r, work)


@parallel_jit
def _restrict_in_parallel(kk, geo, axf, three, l, n_chunks, work):
    """:func:`_restrict_units` over all units of level l + 1, in ``n_chunks`` chunks of
    consecutive units (one scratch row of ``work`` each); every unit is computed alone, so
    the result does not depend on the chunks."""
    n_units, _ = _units(geo, l + 1, three)
    for q in prange(n_chunks):
        c = np.int64(q)  # (a prange index is unsigned: another copy)
        _restrict_units(kk, geo, axf, three, l, 1 + c * n_units // n_chunks,
                        1 + (c + 1) * n_units // n_chunks, work[c])


@jit
def _restrict_levels(kk, geo, axf, three, l_from, l_to):
    """Levels l_from + 1 .. l_to of ``kk`` from level l_from's (:func:`_restrict_units`);
    from levels of PARALLEL_MIN_SITES sites or more in RESTRICT_CHUNKS parallel chunks
    (the oxygen reaction changes every step: serial, its restriction took ~1 ms of a
    1000x1000 step at any thread count)."""
    # each chunk's scratch ends with at least 64 unused bytes (no cache line shared)
    width = (2 * (geo[0, G_N2] + 2) + 15) // 8 * 8
    work = np.empty((RESTRICT_CHUNKS, width))
    one = l_from - l_from + 1  # (not a literal: see _restrict_units)
    for l in range(l_from, l_to):
        n_units, _ = _units(geo, l + 1, three)
        # (``SERIAL`` is a constant: the serial flavour never compiles the parallel branch)
        if SERIAL or geo[l, G_N0] * geo[l, G_N1] * geo[l, G_N2] < PARALLEL_MIN_SITES:
            _restrict_units(kk, geo, axf, three, l, one, n_units + 1, work[0])
        else:
            _restrict_in_parallel(kk, geo, axf, three, l, min(RESTRICT_CHUNKS, n_units), work)


@inline_jit
def _prolong_row(x, xo, xc, xco, geo, axf, axi, l, three, p, r, t):
    """Row (p, r) of level l += the interpolated correction of level l + 1 (``xc`` at
    offset ``xco``, ghosts filled): tensor-product linear interpolation between each
    cell's parent and the parent's neighbour on its side."""
    _, e1, e2 = _extents(geo, l, three)
    _, ce1, ce2 = _extents(geo, l + 1, three)
    t0 = geo[l, G_T0] + p
    t1 = geo[l, G_T1] + r
    t2 = geo[l, G_T2]
    pn = axi[0, t0]
    pf = axi[1, t0]
    wp = axf[T_PW, t0]
    rn = axi[0, t1]
    rf = axi[1, t1]
    wr = axf[T_PW, t1]
    w_nn = np.float32(wp * wr)
    w_nf = np.float32(wp * (1.0 - wr))
    w_fn = np.float32((1.0 - wp) * wr)
    w_ff = np.float32((1.0 - wp) * (1.0 - wr))
    c_nn = xc[xco + (pn * ce1 + rn) * ce2:xco + (pn * ce1 + rn + 1) * ce2]
    c_nf = xc[xco + (pn * ce1 + rf) * ce2:xco + (pn * ce1 + rf + 1) * ce2]
    c_fn = xc[xco + (pf * ce1 + rn) * ce2:xco + (pf * ce1 + rn + 1) * ce2]
    c_ff = xc[xco + (pf * ce1 + rf) * ce2:xco + (pf * ce1 + rf + 1) * ce2]
    tc = t[:ce2]
    for q in range(ce2):
        tc[q] = w_nn * c_nn[q] + w_nf * c_nf[q] + w_fn * c_fn[q] + w_ff * c_ff[q]
    xb = xo + (p * e1 + r) * e2
    xr = x[xb:xb + e2]
    plo = geo[l, G_PLO]
    m = geo[l, G_PHI] - plo + 1
    j_lo = geo[l, G_N2] + 1
    j_hi = j_lo
    if m > 0:
        # fine pairs (2J - 1, 2J) of the standard coarse stretch: 3/4 of J plus 1/4 of
        # J -+ 1 (both members of each pair stored: the loop vectorises with shuffles)
        pr = xr[2 * plo - 1:2 * plo - 1 + 2 * m]
        tm = t[plo - 1:plo - 1 + m]
        tj = t[plo:plo + m]
        tp = t[plo + 1:plo + 1 + m]
        three_q = np.float32(0.75)
        quarter = np.float32(0.25)
        for q in range(m):
            pr[2 * q] += three_q * tj[q] + quarter * tm[q]
            pr[2 * q + 1] += three_q * tj[q] + quarter * tp[q]
        j_lo = 2 * plo - 1
        j_hi = j_lo + 2 * m
    j = 1
    while j <= geo[l, G_N2]:
        if j == j_lo:
            j = j_hi
            if j > geo[l, G_N2]:
                break
        w = np.float32(axf[T_PW, t2 + j])
        xr[j] += w * t[axi[0, t2 + j]] + (np.float32(1.0) - w) * t[axi[1, t2 + j]]
        j += 1


@jit
def _max_abs(x):
    """max |x| of a float32 array, exactly: the maximum is taken over the bit patterns
    with the sign cleared, which order like the values (an integer maximum vectorises; a
    float one does not without fastmath), and the winning pattern read back as a float."""
    bits = x.view(np.uint32)
    top = np.uint32(0)
    for q in range(bits.shape[0]):
        top = max(top, bits[q] & np.uint32(0x7FFFFFFF))
    pattern = np.full(1, top, np.uint32)
    return np.float64(pattern.view(np.float32)[0])


# --------------------------------------------------------------------------- units
# A unit is a plane (3D) or a row (2D): the lagged sweeps below move unit by unit, and a
# site's neighbours lie in its own unit and the units before and after it.
@jit
def _units(geo, l, three):
    """(units, rows per unit) of level l."""
    if three:
        return geo[l, G_N0], geo[l, G_N1]
    return geo[l, G_N1], 1


@jit
def _children(geo, l, three, cu):
    """First and last unit of level l whose parent is unit cu of level l + 1."""
    f = (2 if geo[l, G_C0] else 1) if three else (2 if geo[l, G_C1] else 1)
    n, _ = _units(geo, l, three)
    return (cu - 1) * f + 1, min(cu * f, n)


# --------------------------------------------------------------------------- passes


@jit
def _in_chunk_residual(geo, l, three, cu, s, e):
    """True when coarse unit cu's residual can be taken within its chunk [s, e): its
    children and their neighbours are smoothed by the chunk itself."""
    first, last = _children(geo, l, three, cu)
    return first >= s + 2 and last <= e - 3


@jit
def _schedule(geo, l, three, down, cs, ce, phase, ops):
    """The operations of one chunk (coarse units [cs, ce), fine units [s, e)) in one phase
    of a pass; returns how many were written to ops (rows: op, unit).

    Down (pre-smoothing and restriction), lagged: red on unit u, black on u - 1, the
    residual of each coarse unit whose children end at u - 2; phase 1: black at the
    chunk's ends; phase 2: the coarse units next to them.
    Up (prolongation and post-smoothing): correct unit u, red on u - 1, black on u - 2;
    phase 1: red at the chunk's ends; phase 2: the black units left.
    Whatever the chunks, the result is a plain red-black sweep (Gauss-Seidel within one
    colour does not depend on the order of its sites) with the exact residual after it
    (down), or after the correction (up)."""
    s, _ = _children(geo, l, three, cs)
    _, e = _children(geo, l, three, ce - 1)
    e += 1
    n = 0
    if phase == 0:
        cu = cs
        for u in range(s, e):
            ops[n, 0] = OP_RED if down else OP_PROLONG
            ops[n, 1] = u
            n += 1
            if s + 1 <= u - 1 <= e - 2:
                ops[n, 0] = OP_BLACK if down else OP_RED
                ops[n, 1] = u - 1
                n += 1
            if down:
                while cu < ce:
                    first, last = _children(geo, l, three, cu)
                    if last > u - 2:
                        break
                    if _in_chunk_residual(geo, l, three, cu, s, e):
                        ops[n, 0] = OP_RESTRICT
                        ops[n, 1] = cu
                        n += 1
                    cu += 1
            elif s + 2 <= u - 2 <= e - 3:
                ops[n, 0] = OP_BLACK
                ops[n, 1] = u - 2
                n += 1
    elif phase == 1:
        for u in (s, e - 1):
            if u == e - 1 and e - 1 == s:
                break
            ops[n, 0] = OP_BLACK if down else OP_RED
            ops[n, 1] = u
            n += 1
    elif down:
        for cu in range(cs, ce):
            if not _in_chunk_residual(geo, l, three, cu, s, e):
                ops[n, 0] = OP_RESTRICT
                ops[n, 1] = cu
                n += 1
    else:
        for u in range(s, e):
            if not (s + 2 <= u <= e - 3):
                ops[n, 0] = OP_BLACK
                ops[n, 1] = u
                n += 1
    return n


@nrt_free_jit
def _run(x, xo, bb, kk, xc, xco, geo, std, axf, axi, l, three, down, chunk, nchunk,
         phase, ops, t, work):
    """Execute the schedule of chunk ``chunk`` of ``nchunk`` for one phase (scratch: ``ops``
    at least 3 (level l's units + 1) + 2 rows, ``t`` one row of level l, ``work`` two)."""
    n_coarse, _ = _units(geo, l + 1, three)
    cs = 1 + chunk * n_coarse // nchunk
    ce = 1 + (chunk + 1) * n_coarse // nchunk
    s, _ = _children(geo, l, three, cs)
    _, e = _children(geo, l, three, ce - 1)
    n = _schedule(geo, l, three, down, cs, ce, phase, ops)
    _, rpu = _units(geo, l, three)
    _, crpu = _units(geo, l + 1, three)
    for q in range(n):
        op = ops[q, 0]
        u = ops[q, 1]
        rows = crpu if op == OP_RESTRICT else rpu
        for k in range(rows):
            p = u if three else 0
            r = k + 1 if three else u
            if op == OP_RESTRICT:
                _restrict_row(x, xo, bb, kk, geo, std, axf, l, three, p, r, work)
            elif op == OP_PROLONG:
                _prolong_row(x, xo, xc, xco, geo, axf, axi, l, three, p, r, t)
            else:
                _smooth_row(x, xo, bb, kk, geo, std, axf, l, three, p, r,
                            0 if op == OP_RED else 1, t)


@parallel_jit
def _run_parallel(x, xo, bb, kk, xc, xco, geo, std, axf, axi, l, three, down, nchunk, ops, t,
                  work):
    for phase in range(3):
        for chunk in prange(nchunk):
            _run(x, xo, bb, kk, xc, xco, geo, std, axf, axi, l, three, down, np.int64(chunk),
                 nchunk, phase, ops[chunk], t[chunk], work[chunk])


@jit
def _pass(x, xo, bb, kk, xc, xco, geo, std, axf, axi, l, three, down, threads):
    """One pass over level l: down (pre-smoothing, restriction) or up (prolongation of
    level l + 1's correction, post-smoothing). Chunks of coarse units: one per thread on
    large levels, else one, and one in the serial flavour (the result does not depend on
    the chunks)."""
    n, _ = _units(geo, l + 1, three)
    sites = geo[l, G_N0] * geo[l, G_N1] * geo[l, G_N2]
    nchunk = 1 if SERIAL or threads <= 1 or sites < PARALLEL_MIN_SITES else min(threads, n)
    # each chunk's scratch row ends with at least 64 unused bytes, so no cache line holds
    # two threads' scratch (they would pass it back and forth at every row operation)
    units, _ = _units(geo, l, three)
    e2 = geo[l, G_N2] + 2
    ops = np.empty((nchunk, 3 * (units + 1) + 2 + 4, 2), np.int64)
    t = np.empty((nchunk, (e2 + 31) // 16 * 16), np.float32)
    work = np.empty((nchunk, (2 * e2 + 15) // 8 * 8))
    # (``SERIAL`` is a constant: the serial flavour never compiles the parallel branch)
    if SERIAL or nchunk == 1:
        # (a loop, not literal arguments: a literal would compile another specialisation)
        for phase in range(3):
            for chunk in range(nchunk):
                _run(x, xo, bb, kk, xc, xco, geo, std, axf, axi, l, three, down, chunk,
                     nchunk, phase, ops[chunk], t[chunk], work[chunk])
    else:
        _run_parallel(x, xo, bb, kk, xc, xco, geo, std, axf, axi, l, three, down, nchunk, ops,
                      t, work)


# --------------------------------------------------------------------------- ghosts
@jit
def ghosts(x, xo, geo, l, three, gm, gb):
    """Ghost layer of level l: ghost = gm * its interior neighbour + gb, faces in
    view-axis order over the whole face (earlier axes' ghosts included), so edges and
    corners hold the tensor-product values the prolongation reads (on the fine level:
    what apply_boundary writes)."""
    e0, e1, e2 = _extents(geo, l, three)
    if three:
        for r in range(1, e1 - 1):
            for j in range(1, e2 - 1):
                x[xo + r * e2 + j] = gm[0] * x[xo + (e1 + r) * e2 + j] + gb[0]
                x[xo + ((e0 - 1) * e1 + r) * e2 + j] = \
                    gm[1] * x[xo + ((e0 - 2) * e1 + r) * e2 + j] + gb[1]
    for p in range(e0):
        for j in range(1, e2 - 1):
            x[xo + p * e1 * e2 + j] = gm[2] * x[xo + (p * e1 + 1) * e2 + j] + gb[2]
            x[xo + (p * e1 + e1 - 1) * e2 + j] = \
                gm[3] * x[xo + (p * e1 + e1 - 2) * e2 + j] + gb[3]
    for p in range(e0):
        for r in range(e1):
            b = xo + (p * e1 + r) * e2
            x[b] = gm[4] * x[b + 1] + gb[4]
            x[b + e2 - 1] = gm[5] * x[b + e2 - 2] + gb[5]


# --------------------------------------------------------------------------- coarsest
@jit
def _coarsest_solve(x, xo, bb, kk, geo, axf, l, three):
    """Gaussian elimination on a level of at most MIN_COARSE cells per axis (a
    diagonally dominant M-matrix: no pivoting). A coupling to a ghost adds its value
    (fixed values on the fine level; zero on coarse levels)."""
    _, e1, e2 = _extents(geo, l, three)
    n0 = geo[l, G_N0]
    n1 = geo[l, G_N1]
    n2 = geo[l, G_N2]
    m = n0 * n1 * n2
    mat = np.zeros((m, m))
    rhs = np.zeros(m)
    site = np.zeros(m, np.int64)
    steps = (e1 * e2, e2, 1)
    strides = (n1 * n2, n2, 1)
    for q in range(m):
        idx = (q // (n1 * n2), (q // n2) % n1, q % n2)
        p = idx[0] + 1 if three else 0
        i = (p * e1 + idx[1] + 1) * e2 + idx[2] + 1
        site[q] = i
        rhs[q] = bb[geo[l, G_OFF] + i]
        mat[q, q] = kk[geo[l, G_KOFF] + i * geo[l, G_KROW]]
        for v in range(3):
            a = geo[l, G_T0 + v] + (p if v == 0 else idx[v] + 1)
            mat[q, q] += axf[T_DD, a]
            size = (n0, n1, n2)[v]
            for side in range(2):
                coef = axf[T_AP if side else T_AM, a]
                inside = idx[v] < size - 1 if side else idx[v] > 0
                sign = 1 if side else -1
                if inside:
                    mat[q, q + sign * strides[v]] -= coef
                elif coef != 0.0:
                    rhs[q] += coef * x[xo + i + sign * steps[v]]
    for k in range(m):
        for q in range(k + 1, m):
            f = mat[q, k] / mat[k, k]
            if f != 0.0:
                for c in range(k, m):
                    mat[q, c] -= f * mat[k, c]
                rhs[q] -= f * rhs[k]
    for k in range(m - 1, -1, -1):
        acc = rhs[k]
        for c in range(k + 1, m):
            acc -= mat[k, c] * rhs[c]
        rhs[k] = acc / mat[k, k]
    for q in range(m):
        x[xo + site[q]] = rhs[q]


# --------------------------------------------------------------------------- fine level
@parallel_jit
def fine_tables(kind, k_tab, s_tab, bb, kk):
    """The fine level's right-hand side and reaction from per-kind tables of the 8 cell
    kinds (source and decay + uptake per step): bb[i] = s_tab[kind[i]], kk[i] =
    k_tab[kind[i]] for every padded site i (ghost entries are never read). An empty
    ``kk``: the right-hand side only (a field with a uniform reaction reads its own row of
    it, :func:`uniform_reaction`)."""
    k_by_kind = (np.float32(k_tab[0]), np.float32(k_tab[1]), np.float32(k_tab[2]),
                 np.float32(k_tab[3]), np.float32(k_tab[4]), np.float32(k_tab[5]),
                 np.float32(k_tab[6]), np.float32(k_tab[7]))
    s_by_kind = (np.float32(s_tab[0]), np.float32(s_tab[1]), np.float32(s_tab[2]),
                 np.float32(s_tab[3]), np.float32(s_tab[4]), np.float32(s_tab[5]),
                 np.float32(s_tab[6]), np.float32(s_tab[7]))
    n = kind.shape[0]
    blocks = (n + TABLE_BLOCK - 1) // TABLE_BLOCK
    with_reaction = kk.shape[0] > 0
    for b in prange(blocks):
        lo = b * TABLE_BLOCK
        hi = min(lo + TABLE_BLOCK, n)
        bs = bb[lo:hi]
        kd = kind[lo:hi]
        if with_reaction:
            ks = kk[lo:hi]
            for q in range(hi - lo):
                c = kd[q]
                ks[q] = by_kind(c, k_by_kind)
                bs[q] = by_kind(c, s_by_kind)
        else:
            for q in range(hi - lo):
                bs[q] = by_kind(kd[q], s_by_kind)


@jit
def restrict_levels_2d(kk, geo, std, axf, l_from, l_to):
    """Levels l_from + 1 .. l_to of a 2D field's per-level values (``kk``: reactions, or
    ``bb``: sources) from level l_from's, by volume averages (set level l_from first)."""
    _restrict_levels(kk, geo, axf, False, l_from, l_to)


@jit
def restrict_levels_3d(kk, geo, std, axf, l_from, l_to):
    """As :func:`restrict_levels_2d`, 3D."""
    _restrict_levels(kk, geo, axf, True, l_from, l_to)


def restrict_levels(values, geo, std, axf, three, l_from=0, l_to=None):
    """Levels l_from + 1 .. l_to (default: the coarsest) of per-level values from level
    l_from's, by volume averages over each cell's children."""
    last = geo.shape[0] - 1 if l_to is None else l_to
    (restrict_levels_3d if three else restrict_levels_2d)(values, geo, std, axf, l_from, last)


# --------------------------------------------------------------------------- cycle
@jit
def _solve(c, bb, kk, bx, geo, std, gm, gb, axf, axi, three, tol, max_cycles, threads,
           stats, first):
    """V(1, 1) cycles on c (flat float32 padded, level ``first``) until one changes c by at
    most tol * max |c|, or max_cycles; stats = (cycles, last change / max |c|; NaN when
    max_cycles is 1: a cycle that ends the solve whatever it changed is not measured).

    (Every kernel below has one call site and no literal arguments: each call site or
    literal would compile another copy.)"""
    n_levels = geo.shape[0]
    zero = np.zeros(6)
    origin = n_levels - n_levels  # (not a literal 0: see above)
    single = first == n_levels - 1
    base = geo[min(first + 1, n_levels - 1), G_OFF]
    ghosts(c, origin, geo, first, three, gm[first], gb)
    cycles = 0
    rel = np.inf
    while cycles < max_cycles and rel > tol:
        cycles += 1
        before = c.copy() if single else c[:0]
        # stages: levels first..L-1 down (the coarsest solved directly), then L-2..first up
        for stage in range(2 * (n_levels - first) - 1):
            down = stage < n_levels - first
            l = first + stage if down else 2 * n_levels - 2 - stage - first
            x = c if l == first else bx
            xo = 0 if l == first else geo[l, G_OFF] - base
            if down and l > first:
                e0, e1, e2 = _extents(geo, l, three)
                bx[xo:xo + e0 * e1 * e2] = 0.0
            if down and l == n_levels - 1:
                _coarsest_solve(x, xo, bb, kk, geo, axf, l, three)
                continue
            xco = geo[l + 1, G_OFF] - base
            if not down:
                ghosts(bx, xco, geo, l + 1, three, gm[l + 1], zero)
            _pass(x, xo, bb, kk, bx, xco, geo, std, axf, axi, l, three, down, threads)
        if cycles == max_cycles == 1:
            rel = np.nan  # one cycle asked for (the warm default) tests nothing: not measured
            break  # (the ghosts are written once, below)
        # the change of the cycle: at most the largest coarse correction (the
        # interpolation weights are non-negative and sum to at most 1)
        ghosts(c, origin, geo, first, three, gm[first], gb)
        x_max = _max_abs(c)
        if single:
            change = _max_abs(c - before)
        else:
            e0, e1, e2 = _extents(geo, first + 1, three)
            change = _max_abs(bx[:e0 * e1 * e2])
        rel = change / x_max if x_max > 0 else 0.0
    ghosts(c, origin, geo, first, three, gm[first], gb)
    stats[0] = cycles
    stats[1] = rel


# 2D and 3D compile separately (``three`` a literal): the other dimension's loops drop
# out, and a runtime flag in the row loops costs ~30%
@jit
def solve_2d(c, bb, kk, bx, geo, std, gm, gb, axf, axi, tol, max_cycles, threads, stats,
             first):
    """:func:`solve` of a 2D field (``threads``: chunks per parallel pass)."""
    _solve(c, bb, kk, bx, geo, std, gm, gb, axf, axi, False, tol, max_cycles, threads, stats,
           first)


@jit
def solve_3d(c, bb, kk, bx, geo, std, gm, gb, axf, axi, tol, max_cycles, threads, stats,
             first):
    """:func:`solve` of a 3D field."""
    _solve(c, bb, kk, bx, geo, std, gm, gb, axf, axi, True, tol, max_cycles, threads, stats,
           first)


# --------------------------------------------------------------------------- coarse fields
@jit
def _prolong_solution(c, xc, geo, gm, gb, axf, axi, first, three):
    """c (level 0) = the field xc of level ``first`` interpolated level by level with the
    prolongation's weights (its ghosts first: the fixed value at its position, or the
    no-flux mirror), ghosts written."""
    origin = first - first  # (not a literal 0: a literal compiles another copy)
    src = xc
    for l in range(first - 1, -1, -1):
        e0, e1, e2 = _extents(geo, l, three)
        dst = c if l == 0 else np.empty(e0 * e1 * e2, np.float32)
        dst[:] = 0.0
        ghosts(src, origin, geo, l + 1, three, gm[l + 1], gb)
        t = np.empty(e2, np.float32)
        n_units, rpu = _units(geo, l, three)
        for u in range(1, n_units + 1):
            for k in range(rpu):
                p = u if three else 0
                r = k + 1 if three else u
                _prolong_row(dst, origin, src, origin, geo, axf, axi, l, three, p, r, t)
        src = dst
    ghosts(c, origin, geo, origin, three, gm[0], gb)


@jit
def prolong_solution_2d(c, xc, geo, gm, gb, axf, axi, first):
    """The lattice's values (c, flat padded level 0) of a 2D field solved on level
    ``first`` (xc): :func:`prolong_solution`."""
    _prolong_solution(c, xc, geo, gm, gb, axf, axi, first, False)


@jit
def prolong_solution_3d(c, xc, geo, gm, gb, axf, axi, first):
    """As :func:`prolong_solution_2d`, 3D."""
    _prolong_solution(c, xc, geo, gm, gb, axf, axi, first, True)


def prolong_solution(c, xc, geo, gm, gb, axf, axi, three, first):
    """A field solved on a grid 2^first times coarser than the lattice (level ``first`` of
    its :func:`hierarchy`, built with that ``first``), brought to every lattice site:
    tensor-product linear interpolation, level by level, between each cell's parent and
    the parent's neighbour on its side (at a fixed face the fixed value at its position,
    at a no-flux face the mirror image), as the multigrid prolongation interpolates a
    correction. ``c``: flat float32 padded lattice, ghosts written on exit."""
    (prolong_solution_3d if three else prolong_solution_2d)(c, xc, geo, gm, gb, axf, axi,
                                                            first)


def level_size(geo, l, three) -> int:
    """Entries of level l's padded array."""
    e0 = int(geo[l, G_N0]) + 2 if three else 1
    return e0 * (int(geo[l, G_N1]) + 2) * (int(geo[l, G_N2]) + 2)


def uniform_reaction(levels, k):
    """A field whose reaction is the same ``k`` at every site: (its level tables with the
    reaction read from one row, that row). Its solve takes the row as ``kk`` and reads
    k from it at every site of every level (``G_KOFF`` = 0, ``G_KROW`` = 0) instead of
    the every-level buffer, which :func:`fine_tables` then leaves alone and which needs
    no restriction: one stream fewer per pass and no reaction restriction per step.

    The numbers are those of the every-level buffer bit for bit: the restriction of a
    uniform k is a float64 volume average of equal float32 values, within ~1e-16 of k,
    which rounds back to k when stored as float32 (``tests/test_fields.py`` checks it)."""
    geo = levels[0].copy()
    geo[:, G_KOFF] = 0
    geo[:, G_KROW] = 0
    row = np.full(int(geo[0, G_N2]) + 2, np.float32(k), np.float32)
    return (geo,) + tuple(levels[1:]), row


def solver_kernels(ndim):
    """The compiled entry points a field solve of this dimension calls (what a run
    announces and caches)."""
    return (solve_3d, restrict_levels_3d) if ndim == 3 else (solve_2d, restrict_levels_2d)


def coarse_field_kernels(ndim):
    """The extra entry point of fields solved on a coarser grid."""
    return (prolong_solution_3d,) if ndim == 3 else (prolong_solution_2d,)


def solve(c, bb, kk, bx, geo, std, gm, gb, axf, axi, three, tol, max_cycles, stats,
          threads=None, first=0):
    """V(1, 1) cycles on ``c`` (flat float32, padded lattice) until one's coarse-grid
    correction is at most tol * max |c|, or ``max_cycles`` of them; stats = (cycles,
    correction / max |c| of the last; NaN with ``max_cycles`` 1). ``bb`` / ``kk``:
    right-hand side and reaction of every level (:func:`fine_tables`,
    :func:`restrict_levels`), ``bx`` the coarse corrections' buffer (:func:`buffer_sizes`);
    geo ... axi: :func:`hierarchy`. Threads: Numba's current count unless given (the result
    does not depend on it). ``first`` > 0: ``c`` is level ``first`` of a field solved there
    (:func:`prolong_solution`), whose ``bb`` and ``kk`` levels up to it are restricted from
    the lattice's (:func:`restrict_levels`)."""
    entry = solve_3d if three else solve_2d
    entry(c, bb, kk, bx, geo, std, gm, gb, axf, axi, tol, max_cycles,
          numba.get_num_threads() if threads is None else threads, stats, first)
