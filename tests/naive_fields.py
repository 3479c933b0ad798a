"""Slow, readable pure-numpy references for kernels/fields.py (to be merged into naive.py).

Same conventions as the kernels: padded arrays with one ghost layer, faces ordered
(-x, +x, -y, +y, -z, +z), bc kind 0 = no flux (ghost mirrors the interior neighbour),
1 = fixed value at the ghost-site centre. Nothing here is fast; keep lattices small.
"""
import numpy as np

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
