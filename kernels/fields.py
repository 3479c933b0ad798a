"""Tissue fields: diffusion, decay, uptake and sources on the cell lattice.

Equation (Carslaw & Jaeger; Crank), per site x of the lattice::

    dc/dt = D lap(c) - (decay + uptake(x)) c + source(x)

Storage
-------
A field is a C-ordered float64 array on the cell lattice with ONE ghost layer on every face:
shape ``(nx+2, ny+2)`` in 2D or ``(nx+2, ny+2, nz+2)`` in 3D; interior sites are
``[1:-1, 1:-1(, 1:-1)]``. ``uptake_dt`` and ``source_dt`` have the same padded shape (their
ghost entries do not affect the result).

Boundary conditions
-------------------
One per face, in the order (-x, +x, -y, +y, -z, +z) (face ``2*axis + side``):
``bc_kind`` int64 (2*ndim,), ``bc_value`` float64 (2*ndim,).

* ``BC_NO_FLUX`` (0): zero normal gradient. The ghost site mirrors its interior neighbour,
  so the wall sits on the FACE halfway between the ghost and the first interior site
  (cell-centred Neumann, second order).
* ``BC_FIXED_VALUE`` (1): Dirichlet. The value sits at the GHOST-SITE CENTRE, one spacing
  outside the first interior site (vertex-centred Dirichlet, second order): for a fixed
  -x face, interior site i (padded index) lies at distance ``i * dx`` from the boundary.
  ``bc_value`` for a no-flux face is ignored.

Ghosts are (re)written by :func:`apply_boundary` on the input on entry and on the output on
exit: faces first, then edges and corners by applying the faces in axis order (so a
Moore-neighbourhood reader gets defined values; where a fixed-value face meets another face
the later axis wins). Fixed-value interior sites (vessels) are modelled with a strong local
exchange term instead: ``uptake_dt = K``, ``source_dt = K * c_vessel`` with ``K >> alpha``
pins the site to ``c_vessel`` (the tests use this to hold the outside of a disc at c0).

Scheme
------
Per step of length dt the caller passes the nondimensional numbers ``alpha = D dt / dx**2``,
``decay_dt = decay * dt``, ``uptake_dt`` (array, rate * dt) and ``source_dt`` (array, amount
added per step). With ``A = A_1 + ... + A_ndim``, ``A_a = alpha delta_a^2 - k(x)/ndim`` and
``k(x) = decay_dt + uptake_dt(x)`` (reaction split evenly over the sweeps, treated
implicitly), one step is Douglas-Gunn ADI with theta = 1 in delta form:

    R          = A c + source_dt                    (the full explicit residual)
    (I - A_1) d_1 = R ;  (I - A_a) d_a = d_(a-1) ;  c_new = c + d_ndim

Each ``(I - A_a)`` is a tridiagonal solve per lattice line (Thomas algorithm; the matrices
are strictly diagonally dominant M-matrices for any alpha >= 0, k >= 0).

Properties (each checked in tests/test_fields.py):

* unconditionally stable: the amplification factor of every Fourier mode lies in (0, 1] for
  any alpha (2D: (1 + a1 a2) / ((1 + a1)(1 + a2)));
* exact fixed point: if c is the discrete steady state (R = 0) then d = 0 and c_new == c
  bit for bit, whatever dt, so a fast field (oxygen, alpha ~ 1.5e4 at dt = 1 h) stepped with
  a large dt is still right at steady state;
* first order in time (theta = 1), second order in space;
* mass-conserving to round-off with no-flux walls, no decay, no uptake and no source.

Caveats:

* A-stable, not L-stable: with alpha >> 1 a single step damps the stiffest modes only by
  about 1 - 1/a per step, so one big step does NOT equilibrate a fast field. For such
  fields call :func:`quasi_steady_state` (pseudo-time ADI with cycled step sizes: for
  oxygen on 1000^2 / 100^3 lattices ~80-100 ADI steps from a uniform start, ~60-90 after
  1% of the consumers moved, at rel tol 1e-6), or split the step with ``n_substeps`` so
  that alpha / n_substeps is O(1) when the transient itself matters.
* Not positivity preserving for rough data in c: a one-site spike in the field itself
  undershoots by up to ~10% (one step) to ~30% (several substeps) of the peak for
  alpha ~ 2-10 per substep (the Douglas correction term). Non-negative sources added to a
  non-negative smooth field, uptake and decay do not cause this (a zero field plus
  non-negative sources stays non-negative for any alpha: every factor is an M-matrix);
  the steady state itself is the M-matrix solution. Callers that need c >= 0 clip.

Parallelism and determinism
---------------------------
Every ``prange`` iteration owns a fixed set of whole lattice lines (or whole planes) and its
own scratch; each line is computed by the same sequence of floating-point operations
whatever the number of threads or the way lines are grouped, and the only reductions
(``min``/``max`` over fixed row chunks in :func:`quasi_steady_state`) are exact. Results are therefore bit-identical for
any ``NUMBA_NUM_THREADS`` (tested across subprocesses).

Memory traffic (what ``benchmarks/bench_fields.py`` counts): every step is two streaming
passes over the lattice, each reading three arrays and writing one, i.e. 8 arrays x 8 B =
64 B per site in both 2D and 3D:

* pass A reads c, uptake, source and writes work: the residual fused with the sweep along
  x, vectorised along the contiguous axis, over blocks of lines that are contiguous in
  memory (2D: BLOCK_WIDTH columns; 3D: whole consecutive y-rows), Thomas coefficients in
  per-block scratch that stays in cache. In 2D a block reads row segments of
  BLOCK_WIDTH sites at the row stride, which the hardware prefetchers do not follow, so
  the segments PREFETCH_ROWS rows ahead are prefetched explicitly; in 3D a block's
  stretch of a plane is a few KB at the plane stride, on which the prefetchers restart
  at every plane, so the reads are prefetched a plane ahead and the writes of the back
  substitution (planes in descending order) a plane ahead too, SEGMENT sites at a time;
* pass B reads work, uptake, c and writes out, fused with c_new = c + d: 2D, the sweep
  along y for LINE_GROUP rows at a time, the rows of work and uptake transposed by 8 x 8
  register transposes into the Thomas scratch (lanes = rows), solved vectorised across
  rows, and the solution transposed back 8 rows at a time; 3D, plane by plane (x =
  const, plane in cache), the sweep along y vectorised along z, then the plane's solution
  and its uptake transposed (8 x 8 tiles) for the sweep along z vectorised along y, and
  the result transposed back; the next plane is prefetched during the z sweep, which
  touches no memory outside the cache.

The transposed copies are not lattice-sized: they live in per-chunk scratch that is
reused for every line group / plane and stays in the caches (2D: the Thomas arrays
themselves, 2 x ny x LINE_GROUP doubles = 1 MB at ny = 1000, plus 8 x ny for the way back;
3D: 5 planes of ny x nz doubles = 0.4 MB at 100^3), so they add no memory traffic to the
count above. The ghost layer of ``work`` is scratch (arbitrary values on exit).
"""
import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from kernels.jit import jit, parallel_jit, prange

BC_NO_FLUX = 0
BC_FIXED_VALUE = 1

# 2D sweep along the contiguous axis (y): lines solved together, vectorised across lines
# (a multiple of 8, the transpose tile; each Thomas row is then LINE_GROUP lanes long, and
# the fixed cost per row - views, alias checks - is amortised: 32 is ~25% slower, 16 ~2x).
LINE_GROUP = 64
# 2D sweep along x: width (sites along y) of a block of lines solved together; the block's
# Thomas coefficients (2 x nx x width doubles) stay in L2 so memory is streamed once.
BLOCK_WIDTH = 64
# 2D sweep along x: rows ahead whose block segments are prefetched (2 and 8 measured
# slower at 1000^2).
PREFETCH_ROWS = 4
# prange runs over at most this many chunks of whole lines (a fixed number, not the thread
# count: querying the thread count inside a kernel prevents on-disk caching); each chunk
# owns its scratch, so the result does not depend on how chunks map to threads.
MAX_CHUNKS = 64
# Target size (doubles) of one Thomas coefficient array of a block in the 3D x-sweep: the
# block's four parity-split arrays then take about 4 x 8 x SCRATCH_DOUBLES / 2 bytes.
SCRATCH_DOUBLES = 65536
# 3D sweep along x: sites per segment of a block's stretch, the unit in which the next
# plane is prefetched (at 100^3, 256: 2.1 -> 1.75 ns/site for the pass; 96-320 alike).
SEGMENT = 256
# Lattices with fewer (padded) sites run the serial path: a parallel region costs a thread
# wake-up and a barrier, which stall for a scheduler slice when another process holds a
# core (DESIGN.md); below this size the step itself takes well under a millisecond.
PARALLEL_MIN_SITES = 65536


# --------------------------------------------------------------------------------------
# 8 x 8 transpose in registers, cache prefetch (LLVM intrinsics; plain Python without JIT)
# --------------------------------------------------------------------------------------
# Column t of the 8 x 8 block whose row r starts at ``src[start_r]`` is written as a row
# starting at ``dst[start_t]``; even and odd rows (columns) may live in different arrays,
# so the parity-split Thomas scratch can be a source or a destination: row r is read from
# ``src_a`` at ``a0 + (r // 2) * s_step`` if r is even, else from ``src_b`` at
# ``b0 + (r // 2) * s_step``; column t goes to ``dst_a`` at ``c0 + (t // 2) * d_step`` or
# ``dst_b`` at ``d0 + (t // 2) * d_step``. Offsets count float64 elements of the arrays'
# (C-ordered) memory. LLVM does not turn element-wise transposes into shuffles (it emits
# scalar or gather code, ~0.3 ns per element), hence the explicit shuffles.
def _transpose8_python(src_a, a0, src_b, b0, s_step, dst_a, c0, dst_b, d0, d_step):
    flat = [x.reshape(x.size) for x in (src_a, src_b, dst_a, dst_b)]
    rows = [flat[r & 1][(b0 if r & 1 else a0) + (r >> 1) * s_step:][:8] for r in range(8)]
    for t in range(8):
        start = (d0 if t & 1 else c0) + (t >> 1) * d_step
        flat[2 + (t & 1)][start:start + 8] = [rows[r][t] for r in range(8)]


@intrinsic
def _transpose8_llvm(typingctx, src_a, a0, src_b, b0, s_step, dst_a, c0, dst_b, d0, d_step):
    sig = types.void(src_a, types.intp, src_b, types.intp, types.intp, dst_a, types.intp,
                     dst_b, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        vec = ir.VectorType(ir.DoubleType(), 8)

        def vec_ptr(k, start, step, r):
            data = context.make_array(signature.args[k])(context, builder, args[k]).data
            off = builder.add(start, builder.mul(step, ir.Constant(start.type, r)))
            return builder.bitcast(builder.gep(data, [off]), vec.as_pointer())

        def shuffle(x, y, mask):
            return builder.shuffle_vector(x, y, ir.Constant(ir.VectorType(ir.IntType(32), 8),
                                                            mask))

        rows = [builder.load(vec_ptr(2 if r & 1 else 0, args[3 if r & 1 else 1], args[4],
                                     r >> 1), align=8) for r in range(8)]
        # three rounds of two-input shuffles: pairs of rows interleaved element-wise, then
        # by pairs of elements, then by quadruples (the classic AVX-512 8 x 8 transpose)
        u = []
        for k in range(0, 8, 2):
            u += [shuffle(rows[k], rows[k + 1], [0, 8, 2, 10, 4, 12, 6, 14]),
                  shuffle(rows[k], rows[k + 1], [1, 9, 3, 11, 5, 13, 7, 15])]
        v = []
        for k in (0, 4):
            v += [shuffle(u[k], u[k + 2], [0, 1, 8, 9, 4, 5, 12, 13]),
                  shuffle(u[k + 1], u[k + 3], [0, 1, 8, 9, 4, 5, 12, 13]),
                  shuffle(u[k], u[k + 2], [2, 3, 10, 11, 6, 7, 14, 15]),
                  shuffle(u[k + 1], u[k + 3], [2, 3, 10, 11, 6, 7, 14, 15])]
        cols = ([shuffle(v[t], v[t + 4], [0, 1, 2, 3, 8, 9, 10, 11]) for t in range(4)]
                + [shuffle(v[t], v[t + 4], [4, 5, 6, 7, 12, 13, 14, 15]) for t in range(4)])
        for t in range(8):
            builder.store(cols[t], vec_ptr(7 if t & 1 else 5, args[8 if t & 1 else 6],
                                           args[9], t >> 1), align=8)
        return context.get_dummy_value()

    return sig, codegen


_transpose8 = _transpose8_python if numba.config.DISABLE_JIT else _transpose8_llvm


# Hint the cache to fetch ``arr``'s (flat, C-ordered) elements [start, stop): one prefetch
# per 8 elements and one for the last, so every 64-byte line of the range is requested.
# The 2D x-sweep reads short row segments at a large stride, a pattern the hardware
# prefetchers do not follow (measured: 3.2 ns/site at 1000^2 against 1.1 in cache).
def _prefetch_python(arr, start, stop):
    pass  # a hint only


def _prefetch_codegen(rw):
    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        start, stop = args[1], args[2]
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic("llvm.prefetch", (), ir.FunctionType(
            ir.VoidType(), [i8p, i32, i32, i32]))
        flags = [i32(rw), i32(3), i32(1)]  # read/write, keep in all cache levels, data
        with cgutils.for_range_slice(builder, start, stop,
                                     ir.Constant(start.type, 8)) as (k, _):
            builder.call(fn, [builder.bitcast(builder.gep(data, [k]), i8p)] + flags)
        last = builder.sub(stop, ir.Constant(stop.type, 1))
        builder.call(fn, [builder.bitcast(builder.gep(data, [last]), i8p)] + flags)
        return context.get_dummy_value()

    return codegen


@intrinsic
def _prefetch_llvm(typingctx, arr, start, stop):
    return types.void(arr, types.intp, types.intp), _prefetch_codegen(0)


# the same for lines about to be written (fetched in a writable state: no second request
# when the store comes)
@intrinsic
def _prefetch_write_llvm(typingctx, arr, start, stop):
    return types.void(arr, types.intp, types.intp), _prefetch_codegen(1)


_prefetch = _prefetch_python if numba.config.DISABLE_JIT else _prefetch_llvm
_prefetch_write = _prefetch_python if numba.config.DISABLE_JIT else _prefetch_write_llvm


# --------------------------------------------------------------------------------------
# Ghost layer
# --------------------------------------------------------------------------------------
@jit
def apply_boundary_2d(c, bc_kind, bc_value):
    """Write the ghost layer of a padded 2D field from its interior and the face BCs."""
    nx = c.shape[0] - 2
    ny = c.shape[1] - 2
    for j in range(1, ny + 1):
        c[0, j] = bc_value[0] if bc_kind[0] == BC_FIXED_VALUE else c[1, j]
        c[nx + 1, j] = bc_value[1] if bc_kind[1] == BC_FIXED_VALUE else c[nx, j]
    for i in range(0, nx + 2):
        c[i, 0] = bc_value[2] if bc_kind[2] == BC_FIXED_VALUE else c[i, 1]
        c[i, ny + 1] = bc_value[3] if bc_kind[3] == BC_FIXED_VALUE else c[i, ny]


@jit
def apply_boundary_3d(c, bc_kind, bc_value):
    """Write the ghost layer of a padded 3D field from its interior and the face BCs."""
    nx = c.shape[0] - 2
    ny = c.shape[1] - 2
    nz = c.shape[2] - 2
    for j in range(1, ny + 1):
        for k in range(1, nz + 1):
            c[0, j, k] = bc_value[0] if bc_kind[0] == BC_FIXED_VALUE else c[1, j, k]
            c[nx + 1, j, k] = bc_value[1] if bc_kind[1] == BC_FIXED_VALUE else c[nx, j, k]
    for i in range(0, nx + 2):
        for k in range(1, nz + 1):
            c[i, 0, k] = bc_value[2] if bc_kind[2] == BC_FIXED_VALUE else c[i, 1, k]
            c[i, ny + 1, k] = bc_value[3] if bc_kind[3] == BC_FIXED_VALUE else c[i, ny, k]
    for i in range(0, nx + 2):
        for j in range(0, ny + 2):
            c[i, j, 0] = bc_value[4] if bc_kind[4] == BC_FIXED_VALUE else c[i, j, 1]
            c[i, j, nz + 1] = bc_value[5] if bc_kind[5] == BC_FIXED_VALUE else c[i, j, nz]


@jit
def apply_boundary(c, bc_kind, bc_value):
    """Write the ghost layer of a padded 2D or 3D field (see the module docstring)."""
    if c.ndim == 2:
        apply_boundary_2d(c, bc_kind, bc_value)
    else:
        apply_boundary_3d(c, bc_kind, bc_value)


# --------------------------------------------------------------------------------------
# One ADI step (scale = 1 / n_substeps, or a pseudo-time factor in quasi_steady_state)
#
# Habits that keep the inner loops vectorised (each measured on this code: 1.5-3x):
# * inner loops run over 1D row views from index 0 (or 1), or index with unsigned ints, so
#   Numba drops the negative-index wraparound check;
# * Thomas rows m and m - 1 never come from the same array: scratch is split by row parity
#   (row m lives in ``odd[m >> 1]`` if m is odd, else ``even[m >> 1]``) and the row loops
#   are unrolled by two, so no select is needed. With both rows in one array LLVM assumes
#   a loop-carried dependence and runs the scalar loop;
# * no helper returns array views inside hot loops (reference counting of the views);
# * a sweep along the contiguous axis runs on transposed copies (lanes = lines), made by
#   8 x 8 register transposes (:func:`_transpose8`): reading column m of row-major lines
#   compiles to the scalar loop, element-wise transposes to scalar or gather code.
# --------------------------------------------------------------------------------------
@jit
def _n_blocks(n, width):
    """Number of blocks of at most ``width`` sites needed to cover n sites."""
    return (n + width - 1) // width


@jit
def _split_scratch(n, width):
    """Parity-split Thomas scratch (e0, e1, p0, p1) for rows 0..n+1, ``width`` lanes; rows
    0 (of e and p) and n+1 (of p) are zero and never written by the sweeps."""
    rows = n // 2 + 2
    e0 = np.empty((rows, width))
    e1 = np.empty((rows, width))
    p0 = np.empty((rows, width))
    p1 = np.empty((rows, width))
    e0[0] = 0.0
    p0[0] = 0.0
    if (n + 1) & 1:
        p1[(n + 1) >> 1] = 0.0
    else:
        p0[(n + 1) >> 1] = 0.0
    return e0, e1, p0, p1


@jit
def _stage_lines_scalar(rhs, uptake, r0, nl, l_lo, l_hi, m_lo, m_hi, e0, e1, p0, p1):
    """Transposed staging of lanes [l_lo, l_hi) x columns [m_lo, m_hi) of the rows r0.. of
    rhs (into p) and uptake (into e), parity-split by column; element by element, for the
    parts that do not fill an 8 x 8 tile. Lanes past ``nl`` repeat the last line."""
    for l in range(l_lo, l_hi):
        lane = np.uint64(l)
        src_r = rhs[r0 + min(l, nl - 1)]
        src_u = uptake[r0 + min(l, nl - 1)]
        for m in range(m_lo, m_hi):
            h = np.uint64(m >> 1)
            if m & 1:
                p1[h, lane] = src_r[m]
                e1[h, lane] = src_u[m]
            else:
                p0[h, lane] = src_r[m]
                e0[h, lane] = src_u[m]


@jit
def _solve_rows(rhs, uptake, c, out, delta, keep_delta, r0, nl, a, kd, scale, share,
                lo, hi, e0, e1, p0, p1, xt):
    """Solve (I - A_last) x = rhs along rows r0..r0+nl-1 of padded 2D arrays; out = c + x.

    The lines run along the contiguous (last) axis, interior columns 1..n; ``nl`` <=
    LINE_GROUP of them are solved together, vectorised across lines, in parity-split
    scratch of shape (n // 2 + 2, LINE_GROUP) from :func:`_split_scratch` (row m = column
    of the lines, lane l = line). The lines are staged into that scratch transposed, rhs
    into p and the uptake into e, by 8 x 8 register transposes (:func:`_transpose8`; a
    recurrence reading column m of row-major staged lines compiles to the scalar loop), 8
    lines at a time so memory is read as 16 sequential streams; the solution goes back the
    same way through ``xt`` (8 x (n + 2)) and out row by row. Idle lanes repeat the last
    line and are not written back. ``share`` is the reaction share of this sweep (1/ndim);
    ``lo``/``hi`` the diagonal reduction at a no-flux end. If ``keep_delta``, x is also
    written to ``delta`` (which may be ``rhs``).
    """
    n = rhs.shape[1] - 2
    row = n + 2
    base = 1.0 + 2.0 * a
    m_tail = 1 + (n & ~7)  # first column not covered by whole 8-column tiles
    for l0 in range(0, LINE_GROUP, 8):
        if l0 + 8 > nl:
            _stage_lines_scalar(rhs, uptake, r0, nl, l0, l0 + 8, 1, n + 1, e0, e1, p0, p1)
            continue
        src = (r0 + l0) * row
        for m0 in range(1, m_tail, 8):
            odd = (m0 >> 1) * LINE_GROUP + l0
            even = odd + LINE_GROUP
            _transpose8(rhs, src + m0, rhs, src + row + m0, 2 * row,
                        p1, odd, p0, even, LINE_GROUP)
            _transpose8(uptake, src + m0, uptake, src + row + m0, 2 * row,
                        e1, odd, e0, even, LINE_GROUP)
        _stage_lines_scalar(rhs, uptake, r0, nl, l0, l0 + 8, m_tail, n + 1, e0, e1, p0, p1)
    # forward elimination: e_m = a / (b_m - a e_(m-1)), p_m = (r_m + a p_(m-1)) e_m / a,
    # b_m = 1 + 2a + share k_m (less lo/hi at a no-flux end); e_m holds the uptake on entry
    for m in range(1, n + 1, 2):
        q = np.uint64(m >> 1)
        b = base
        if m == 1:
            b -= lo
        if m == n:
            b -= hi
        e_row = e1[q]
        p_row = p1[q]
        e_prev = e0[q]
        p_prev = p0[q]
        for l in range(LINE_GROUP):
            inv = 1.0 / (b + share * (kd + scale * e_row[l]) - a * e_prev[l])
            e_row[l] = a * inv
            p_row[l] = (p_row[l] + a * p_prev[l]) * inv
        if m < n:
            m2 = m + 1
            b = base
            if m2 == n:
                b -= hi
            e_row2 = e0[q + np.uint64(1)]
            p_row2 = p0[q + np.uint64(1)]
            for l in range(LINE_GROUP):
                inv = 1.0 / (b + share * (kd + scale * e_row2[l]) - a * e_row[l])
                e_row2[l] = a * inv
                p_row2[l] = (p_row2[l] + a * p_row[l]) * inv
    _back_substitute_inplace(n, LINE_GROUP, e0, e1, p0, p1)
    for l0 in range(0, nl, 8):
        for m0 in range(1, m_tail, 8):
            odd = (m0 >> 1) * LINE_GROUP + l0
            _transpose8(p1, odd, p0, odd + LINE_GROUP, LINE_GROUP, xt, m0, xt, row + m0,
                        2 * row)
        for r in range(min(8, nl - l0)):
            lane = np.uint64(l0 + r)
            x_row = xt[r]
            for m in range(m_tail, n + 1):
                h = np.uint64(m >> 1)
                x_row[m] = p1[h, lane] if m & 1 else p0[h, lane]
            x_row = xt[r, 1:n + 1]
            c_row = c[r0 + l0 + r, 1:n + 1]
            o_row = out[r0 + l0 + r, 1:n + 1]
            for m in range(n):
                o_row[m] = c_row[m] + x_row[m]
            if keep_delta:
                d_row = delta[r0 + l0 + r, 1:n + 1]
                for m in range(n):
                    d_row[m] = x_row[m]


@jit
def _back_substitute_block(flat, off, row_stride, n, nw, e0, e1, p0, p1, pf_write):
    """Back substitution x_i = p_i + e_i x_(i+1), i = n..1, of a block of ``nw`` lines held
    in parity-split scratch (lanes 0..nw-1); x_i is left in p and written to
    ``flat[off + i * row_stride + w]`` (``flat`` a 1D view of a C-ordered array, so each
    destination row is a contiguous slice). If ``pf_write`` (3D: rows a plane apart, a
    pattern the hardware prefetchers restart on at every row), rows go in segments of
    SEGMENT lanes and with each the same segment of the next destination row is
    prefetched for writing (at 100^3 the 3D pass A went 1.72 -> 1.48 ns/site)."""
    if pf_write:
        for i in range(n, 0, -1):
            h = i >> 1
            if i & 1:
                e_row = e1[h]
                p_row = p1[h]
                p_next = p0[h + 1]
            else:
                e_row = e0[h]
                p_row = p0[h]
                p_next = p1[h]
            start = off + i * row_stride
            nxt = off + max(i - 1, 1) * row_stride
            for w0 in range(0, nw, SEGMENT):
                w1 = min(nw, w0 + SEGMENT)
                _prefetch_write(flat, nxt + w0, nxt + w1)
                w_row = flat[start + w0:start + w1]
                e_seg = e_row[w0:w1]
                p_seg = p_row[w0:w1]
                p_nseg = p_next[w0:w1]
                for w in range(w1 - w0):
                    x = p_seg[w] + e_seg[w] * p_nseg[w]
                    p_seg[w] = x
                    w_row[w] = x
        return
    # rows in (odd, even) pairs, no segments: for the short 2D block rows (BLOCK_WIDTH
    # lanes) the loop above measured 20% slower
    i = n
    if (i & 1) == 0:
        h = i >> 1
        e_row = e0[h]
        p_row = p0[h]
        p_next = p1[h]
        start = off + i * row_stride
        w_row = flat[start:start + nw]
        for w in range(nw):
            x = p_row[w] + e_row[w] * p_next[w]
            p_row[w] = x
            w_row[w] = x
        i -= 1
    while i >= 1:  # i odd: rows i (odd) and i - 1 (even)
        h = i >> 1
        e_row = e1[h]
        p_row = p1[h]
        p_next = p0[h + 1]
        start = off + i * row_stride
        w_row = flat[start:start + nw]
        for w in range(nw):
            x = p_row[w] + e_row[w] * p_next[w]
            p_row[w] = x
            w_row[w] = x
        if i > 1:
            e_row2 = e0[h]
            p_row2 = p0[h]
            start -= row_stride
            w_row = flat[start:start + nw]
            for w in range(nw):
                x = p_row2[w] + e_row2[w] * p_row[w]
                p_row2[w] = x
                w_row[w] = x
        i -= 2


@jit
def _back_substitute_inplace(n, nw, e0, e1, p0, p1):
    """Back substitution x_i = p_i + e_i x_(i+1), i = n..1, left in the parity-split p."""
    i = n
    if (i & 1) == 0:
        h = i >> 1
        e_row = e0[h]
        p_row = p0[h]
        p_next = p1[h]
        for w in range(nw):
            p_row[w] = p_row[w] + e_row[w] * p_next[w]
        i -= 1
    while i >= 1:  # i odd: rows i (odd) and i - 1 (even)
        h = i >> 1
        e_row = e1[h]
        p_row = p1[h]
        p_next = p0[h + 1]
        for w in range(nw):
            p_row[w] = p_row[w] + e_row[w] * p_next[w]
        if i > 1:
            e_row2 = e0[h]
            p_row2 = p0[h]
            for w in range(nw):
                p_row2[w] = p_row2[w] + e_row2[w] * p_row[w]
        i -= 2


@jit
def _pass_a_2d(c, work_flat, uptake_dt, source_dt, a, kd, scale, lo_x, hi_x, nblocks,
               first_block, last_block):
    """2D pass A over column blocks [first_block, last_block): the residual R and the solve
    along x (strided), vectorised along y, rows taken in (odd, even) pairs; the block's
    segments PREFETCH_ROWS rows ahead are prefetched."""
    nx = c.shape[0] - 2
    ny = c.shape[1] - 2
    diag0 = 1.0 + 2.0 * a
    e0, e1, p0, p1 = _split_scratch(nx, BLOCK_WIDTH)
    for blk in range(first_block, last_block):
        j0 = 1 + blk * ny // nblocks
        nw = 1 + (blk + 1) * ny // nblocks - j0
        for i in range(1, nx + 1, 2):
            h = i >> 1
            for half in range(2):
                ii = i + half
                if ii > nx:
                    break
                if half == 0:  # odd row i, previous row even
                    e_row = e1[h]
                    p_row = p1[h]
                    e_prev = e0[h]
                    p_prev = p0[h]
                else:  # even row i + 1, previous row odd
                    e_row = e0[h + 1]
                    p_row = p0[h + 1]
                    e_prev = e1[h]
                    p_prev = p1[h]
                bi = diag0
                if ii == 1:
                    bi -= lo_x
                if ii == nx:
                    bi -= hi_x
                ip = min(ii + PREFETCH_ROWS, nx + 1)
                _prefetch(c, ip * (ny + 2) + j0 - 1, ip * (ny + 2) + j0 + nw + 1)
                _prefetch(uptake_dt, ip * (ny + 2) + j0, ip * (ny + 2) + j0 + nw)
                _prefetch(source_dt, ip * (ny + 2) + j0, ip * (ny + 2) + j0 + nw)
                c_up = c[ii - 1, j0:j0 + nw]
                c_dn = c[ii + 1, j0:j0 + nw]
                c_mid = c[ii, j0 - 1:j0 + nw + 1]
                u_row = uptake_dt[ii, j0:j0 + nw]
                s_row = source_dt[ii, j0:j0 + nw]
                for w in range(nw):
                    cc = c_mid[w + 1]
                    kr = kd + scale * u_row[w]
                    r = (a * (c_up[w] + c_dn[w] + c_mid[w] + c_mid[w + 2] - 4.0 * cc)
                         - kr * cc + scale * s_row[w])
                    inv = 1.0 / (bi + 0.5 * kr - a * e_prev[w])
                    e_row[w] = a * inv
                    p_row[w] = (r + a * p_prev[w]) * inv
        _back_substitute_block(work_flat, j0, ny + 2, nx, nw, e0, e1, p0, p1, False)


@jit
def _pass_b_2d(work, uptake_dt, c, out, keep_delta, a, kd, scale, lo_y, hi_y, first_group,
               last_group):
    """2D pass B over groups [first_group, last_group) of LINE_GROUP rows: the solve along y
    (contiguous), fused with out = c + d."""
    nx = c.shape[0] - 2
    ny = c.shape[1] - 2
    e0, e1, p0, p1 = _split_scratch(ny, LINE_GROUP)
    xt = np.empty((8, ny + 2))
    for g in range(first_group, last_group):
        i0 = 1 + g * LINE_GROUP
        _solve_rows(work, uptake_dt, c, out, work, keep_delta, i0,
                    min(LINE_GROUP, nx + 1 - i0), a, kd, scale, 0.5, lo_y, hi_y,
                    e0, e1, p0, p1, xt)


@parallel_jit
def _pass_a_2d_parallel(c, work_flat, uptake_dt, source_dt, a, kd, scale, lo_x, hi_x,
                        nblocks):
    nchunk = min(MAX_CHUNKS, nblocks)
    for chunk in prange(nchunk):
        _pass_a_2d(c, work_flat, uptake_dt, source_dt, a, kd, scale, lo_x, hi_x, nblocks,
                   chunk * nblocks // nchunk, (chunk + 1) * nblocks // nchunk)


@parallel_jit
def _pass_b_2d_parallel(work, uptake_dt, c, out, keep_delta, a, kd, scale, lo_y, hi_y,
                        ngroups):
    nchunk = min(MAX_CHUNKS, ngroups)
    for chunk in prange(nchunk):
        _pass_b_2d(work, uptake_dt, c, out, keep_delta, a, kd, scale, lo_y, hi_y,
                   chunk * ngroups // nchunk, (chunk + 1) * ngroups // nchunk)


@jit
def _substep_2d(c, out, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, scale,
                keep_delta, parallel):
    """Advance a padded 2D field by one Douglas-Gunn step of ``scale`` x the caller's dt.

    ``c`` may be ``out`` (in place); ``work`` must be a distinct array. Ghosts of ``c`` must
    already be filled. If ``keep_delta``, the interior of ``work`` holds c_new - c on exit.
    Sweep order: x, then y (as in 3D: x, y, z). ``parallel`` picks the prange drivers; both
    paths run the same per-line arithmetic, so give the same bits.
    """
    nx = c.shape[0] - 2
    ny = c.shape[1] - 2
    a = alpha * scale
    kd = decay_dt * scale
    # diagonal reduction on a line's end site next to a no-flux face (ghost mirrors it)
    lo_x = a if bc_kind[0] == BC_NO_FLUX else 0.0
    hi_x = a if bc_kind[1] == BC_NO_FLUX else 0.0
    lo_y = a if bc_kind[2] == BC_NO_FLUX else 0.0
    hi_y = a if bc_kind[3] == BC_NO_FLUX else 0.0
    work_flat = work.reshape(work.size)
    nblocks = _n_blocks(ny, BLOCK_WIDTH)
    ngroups = _n_blocks(nx, LINE_GROUP)
    if parallel:
        _pass_a_2d_parallel(c, work_flat, uptake_dt, source_dt, a, kd, scale, lo_x, hi_x,
                            nblocks)
        _pass_b_2d_parallel(work, uptake_dt, c, out, keep_delta, a, kd, scale, lo_y, hi_y,
                            ngroups)
    else:
        _pass_a_2d(c, work_flat, uptake_dt, source_dt, a, kd, scale, lo_x, hi_x, nblocks, 0,
                   nblocks)
        _pass_b_2d(work, uptake_dt, c, out, keep_delta, a, kd, scale, lo_y, hi_y, 0, ngroups)


@jit
def _pass_a_3d(c_flat, work_flat, u_flat, s_flat, nx, ny, nz, a, kd, scale, lo_x, hi_x,
               rows, first_item, last_item):
    """3D pass A over items [first_item, last_item), an item being ``rows`` whole
    consecutive y-rows of the (y, z) plane (one contiguous stretch of memory per x, the
    ghost columns inside it computed along and never used): the residual and the solve
    along x, vectorised along the stretch."""
    third = 1.0 / 3.0
    diag0 = 1.0 + 2.0 * a
    plane_size = (ny + 2) * (nz + 2)
    row = nz + 2
    width = rows * row
    e0, e1, p0, p1 = _split_scratch(nx, width)
    for item in range(first_item, last_item):
        j0 = 1 + item * rows
        j1 = min(ny, j0 + rows - 1)
        first = j0 * row + 1  # (j0, 1) within a plane
        nw = (j1 - j0) * row + nz  # up to (j1, nz)
        for i in range(1, nx + 1, 2):
            h = i >> 1
            for half in range(2):
                ii = i + half
                if ii > nx:
                    break
                if half == 0:
                    e_row = e1[h]
                    p_row = p1[h]
                    e_prev = e0[h]
                    p_prev = p0[h]
                else:
                    e_row = e0[h + 1]
                    p_row = p0[h + 1]
                    e_prev = e1[h]
                    p_prev = p1[h]
                bi = diag0
                if ii == 1:
                    bi -= lo_x
                if ii == nx:
                    bi -= hi_x
                o = ii * plane_size + first
                # the stretch in segments; with each, the same segment of the next plane
                # (u, s; c one plane further) is prefetched, so the requests are spread
                # over the plane's compute (the hardware prefetchers restart at every
                # plane's stretch; prefetching whole planes at once measured no gain)
                # (whole segments of SEGMENT sites, a multiple of 8, so only the last one has
                # a scalar remainder)
                nxt = o + plane_size if ii < nx else o
                for w0 in range(0, nw, SEGMENT):
                    w1 = min(nw, w0 + SEGMENT)
                    q = nxt + w0
                    _prefetch(c_flat, q + plane_size - (row if w0 == 0 else 0),
                              q + plane_size + (w1 - w0) + (row if w1 == nw else 0))
                    _prefetch(u_flat, q, q + w1 - w0)
                    _prefetch(s_flat, q, q + w1 - w0)
                    m = w1 - w0
                    oo = o + w0
                    c_mid = c_flat[oo - 1:oo + m + 1]
                    c_xm = c_flat[oo - plane_size:oo - plane_size + m]
                    c_xp = c_flat[oo + plane_size:oo + plane_size + m]
                    c_ym = c_flat[oo - row:oo - row + m]
                    c_yp = c_flat[oo + row:oo + row + m]
                    u_row = u_flat[oo:oo + m]
                    s_row = s_flat[oo:oo + m]
                    e_seg = e_row[w0:w1]
                    p_seg = p_row[w0:w1]
                    e_pseg = e_prev[w0:w1]
                    p_pseg = p_prev[w0:w1]
                    for w in range(m):
                        cc = c_mid[w + 1]
                        kr = kd + scale * u_row[w]
                        r = (a * (c_xm[w] + c_xp[w] + c_ym[w] + c_yp[w] + c_mid[w]
                                  + c_mid[w + 2] - 6.0 * cc)
                             - kr * cc + scale * s_row[w])
                        inv = 1.0 / (bi + third * kr - a * e_pseg[w])
                        e_seg[w] = a * inv
                        p_seg[w] = (r + a * p_pseg[w]) * inv
        _back_substitute_block(work_flat, first, plane_size, nx, nw, e0, e1, p0, p1, True)


@jit
def _transpose_split(src0, s0, src1, s1, s_step, dst0, d0, dst1, d1, d_step, n, nw):
    """Move element (m, w), m = 1..n, w = 0..nw-1, to (w + 1, m - 1): a transpose between
    parity-split layouts. Row m of the source starts at ``src1[s1 + (m // 2) * s_step]`` if
    m is odd, else at ``src0[s0 + (m // 2) * s_step]`` (flat offsets); rows of the
    destination likewise with (dst0, d0, dst1, d1, d_step). Whole 8 x 8 tiles go through
    registers (:func:`_transpose8`), the edges element by element."""
    m_tail = 1 + (n & ~7)
    w_tail = nw & ~7
    for m0 in range(1, m_tail, 8):
        a = s1 + (m0 >> 1) * s_step
        b = s0 + ((m0 + 1) >> 1) * s_step
        for w0 in range(0, w_tail, 8):
            _transpose8(src1, a + w0, src0, b + w0, s_step,
                        dst1, d1 + ((w0 + 1) >> 1) * d_step + m0 - 1,
                        dst0, d0 + ((w0 + 2) >> 1) * d_step + m0 - 1, d_step)
    src0_flat = src0.reshape(src0.size)
    src1_flat = src1.reshape(src1.size)
    dst0_flat = dst0.reshape(dst0.size)
    dst1_flat = dst1.reshape(dst1.size)
    for m in range(1, n + 1):
        w_lo = 0 if m >= m_tail else w_tail
        if m & 1:
            src = src1_flat[s1 + (m >> 1) * s_step:]
        else:
            src = src0_flat[s0 + (m >> 1) * s_step:]
        for w in range(w_lo, nw):
            k = w + 1
            if k & 1:
                dst1_flat[d1 + (k >> 1) * d_step + m - 1] = src[w]
            else:
                dst0_flat[d0 + (k >> 1) * d_step + m - 1] = src[w]


@jit
def _pass_b_3d(work, uptake_dt, c, out, keep_delta, a, kd, scale, lo_y, hi_y, lo_z, hi_z,
               first_plane, last_plane):
    """3D pass B over planes x in [first_plane, last_plane), each held in cache: solve along
    y vectorised along z; transpose the result and the plane's uptake to (k, j) in
    scratch; solve along z vectorised along y (all ny lines of the plane as lanes);
    transpose back and write out = c + d."""
    ny = c.shape[1] - 2
    nz = c.shape[2] - 2
    third = 1.0 / 3.0
    diag0 = 1.0 + 2.0 * a
    e0, e1, p0, p1 = _split_scratch(ny, nz)  # y sweep: rows j, lanes k - 1
    f0, f1, q0, q1 = _split_scratch(nz, ny)  # z sweep: rows k, lanes j - 1
    xt = np.empty((ny + 1, nz))  # the solution in rows j (row 0 unused)
    plane = (ny + 2) * (nz + 2)
    work_flat = work.reshape(work.size)
    u_flat = uptake_dt.reshape(uptake_dt.size)
    c_flat = c.reshape(c.size)
    for i in range(first_plane, last_plane):
        u_plane = uptake_dt[i]
        w_plane = work[i]
        for j in range(1, ny + 1, 2):
            h = j >> 1
            for half in range(2):
                jj = j + half
                if jj > ny:
                    break
                if half == 0:
                    e_row = e1[h]
                    p_row = p1[h]
                    e_prev = e0[h]
                    p_prev = p0[h]
                else:
                    e_row = e0[h + 1]
                    p_row = p0[h + 1]
                    e_prev = e1[h]
                    p_prev = p1[h]
                bj = diag0
                if jj == 1:
                    bj -= lo_y
                if jj == ny:
                    bj -= hi_y
                u_row = u_plane[jj, 1:nz + 1]
                w_row = w_plane[jj, 1:nz + 1]
                for w in range(nz):
                    inv = 1.0 / (bj + third * (kd + scale * u_row[w]) - a * e_prev[w])
                    e_row[w] = a * inv
                    p_row[w] = (w_row[w] + a * p_prev[w]) * inv
        _back_substitute_inplace(ny, nz, e0, e1, p0, p1)
        # the plane's solution and its uptake, transposed into rows k, lanes j - 1
        _transpose_split(p0, 0, p1, 0, nz, q0, 0, q1, 0, ny, ny, nz)
        u_off = i * plane + 1
        _transpose_split(uptake_dt, u_off, uptake_dt, u_off + nz + 2, 2 * (nz + 2),
                         f0, 0, f1, 0, ny, ny, nz)
        # z sweep across all lines of the plane: f holds the uptake, q the rhs. Meanwhile
        # the next plane's work, uptake and c are prefetched, a slice per row pair, so
        # its memory traffic overlaps this in-cache work instead of following it.
        nxt = min(i + 1, c.shape[0] - 1) * plane
        slab = ((plane + (nz + 1) // 2 - 1) // ((nz + 1) // 2) + 7) & ~7
        for k in range(1, nz + 1, 2):
            h = np.uint64(k >> 1)
            pf = nxt + (k >> 1) * slab
            pf_end = min(pf + slab, nxt + plane)
            if pf < pf_end:
                _prefetch(work_flat, pf, pf_end)
                _prefetch(u_flat, pf, pf_end)
                _prefetch(c_flat, pf, pf_end)
            lo_k = lo_z if k == 1 else 0.0
            hi_k = hi_z if k == nz else 0.0
            e_row = f1[h]
            p_row = q1[h]
            e_prev = f0[h]
            p_prev = q0[h]
            for l in range(ny):
                diag = diag0 + third * (kd + scale * e_row[l]) - lo_k - hi_k
                inv = 1.0 / (diag - a * e_prev[l])
                e_row[l] = a * inv
                p_row[l] = (p_row[l] + a * p_prev[l]) * inv
            if k < nz:
                hi_k = hi_z if k + 1 == nz else 0.0
                e_row2 = f0[h + np.uint64(1)]
                p_row2 = q0[h + np.uint64(1)]
                for l in range(ny):
                    diag = diag0 + third * (kd + scale * e_row2[l]) - hi_k
                    inv = 1.0 / (diag - a * e_row[l])
                    e_row2[l] = a * inv
                    p_row2[l] = (p_row2[l] + a * p_row[l]) * inv
        _back_substitute_inplace(nz, ny, f0, f1, q0, q1)
        # out = c + d, transposing back (xt row j = line j)
        _transpose_split(q0, 0, q1, 0, ny, xt, 0, xt, nz, 2 * nz, nz, ny)
        c_plane = c[i]
        o_plane = out[i]
        for j in range(1, ny + 1):
            x_row = xt[j]
            c_row = c_plane[j, 1:nz + 1]
            o_row = o_plane[j, 1:nz + 1]
            for k in range(nz):
                o_row[k] = c_row[k] + x_row[k]
            if keep_delta:
                d_row = w_plane[j, 1:nz + 1]
                for k in range(nz):
                    d_row[k] = x_row[k]


@parallel_jit
def _pass_a_3d_parallel(c_flat, work_flat, u_flat, s_flat, nx, ny, nz, a, kd, scale, lo_x,
                        hi_x, rows, nitems):
    nchunk = min(MAX_CHUNKS, nitems)
    for chunk in prange(nchunk):
        _pass_a_3d(c_flat, work_flat, u_flat, s_flat, nx, ny, nz, a, kd, scale, lo_x, hi_x,
                   rows, chunk * nitems // nchunk, (chunk + 1) * nitems // nchunk)


@parallel_jit
def _pass_b_3d_parallel(work, uptake_dt, c, out, keep_delta, a, kd, scale, lo_y, hi_y, lo_z,
                        hi_z):
    nx = c.shape[0] - 2
    nchunk = min(MAX_CHUNKS, nx)
    for chunk in prange(nchunk):
        _pass_b_3d(work, uptake_dt, c, out, keep_delta, a, kd, scale, lo_y, hi_y, lo_z, hi_z,
                   1 + chunk * nx // nchunk, 1 + (chunk + 1) * nx // nchunk)


@jit
def _substep_3d(c, out, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, scale,
                keep_delta, parallel):
    """Advance a padded 3D field by one Douglas-Gunn step (see :func:`_substep_2d`)."""
    nx = c.shape[0] - 2
    ny = c.shape[1] - 2
    nz = c.shape[2] - 2
    a = alpha * scale
    kd = decay_dt * scale
    lo_x = a if bc_kind[0] == BC_NO_FLUX else 0.0
    hi_x = a if bc_kind[1] == BC_NO_FLUX else 0.0
    lo_y = a if bc_kind[2] == BC_NO_FLUX else 0.0
    hi_y = a if bc_kind[3] == BC_NO_FLUX else 0.0
    lo_z = a if bc_kind[4] == BC_NO_FLUX else 0.0
    hi_z = a if bc_kind[5] == BC_NO_FLUX else 0.0
    c_flat = c.reshape(c.size)
    work_flat = work.reshape(work.size)
    u_flat = uptake_dt.reshape(uptake_dt.size)
    s_flat = source_dt.reshape(source_dt.size)
    rows = max(1, min(ny, (SCRATCH_DOUBLES // (nx + 2)) // (nz + 2)))
    nitems = _n_blocks(ny, rows)
    if parallel:
        _pass_a_3d_parallel(c_flat, work_flat, u_flat, s_flat, nx, ny, nz, a, kd, scale,
                            lo_x, hi_x, rows, nitems)
        _pass_b_3d_parallel(work, uptake_dt, c, out, keep_delta, a, kd, scale, lo_y, hi_y,
                            lo_z, hi_z)
    else:
        _pass_a_3d(c_flat, work_flat, u_flat, s_flat, nx, ny, nz, a, kd, scale, lo_x, hi_x,
                   rows, 0, nitems)
        _pass_b_3d(work, uptake_dt, c, out, keep_delta, a, kd, scale, lo_y, hi_y, lo_z, hi_z,
                   1, nx + 1)


@jit
def _check_args(c, out, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value):
    if c.ndim != 2 and c.ndim != 3:
        raise ValueError("fields: the field must be a 2D or 3D padded array")
    for ax in range(c.ndim):
        if c.shape[ax] < 3:
            raise ValueError("fields: every axis needs at least one interior site")
        if (out.shape[ax] != c.shape[ax] or work.shape[ax] != c.shape[ax]
                or uptake_dt.shape[ax] != c.shape[ax] or source_dt.shape[ax] != c.shape[ax]):
            raise ValueError("fields: out, work, uptake_dt and source_dt must have the "
                             "field's padded shape")
    if bc_kind.shape[0] != 2 * c.ndim or bc_value.shape[0] != 2 * c.ndim:
        raise ValueError("fields: bc_kind and bc_value need 2 * ndim entries "
                         "(-x, +x, -y, +y[, -z, +z])")
    for f in range(2 * c.ndim):
        if bc_kind[f] != BC_NO_FLUX and bc_kind[f] != BC_FIXED_VALUE:
            raise ValueError("fields: bc_kind entries must be 0 (no flux) or 1 (fixed value)")
    if work.ctypes.data == c.ctypes.data or work.ctypes.data == out.ctypes.data:
        raise ValueError("fields: work must be a separate array (it is overwritten)")
    if not (alpha >= 0.0 and decay_dt >= 0.0):
        raise ValueError("fields: alpha and decay_dt must be finite and >= 0")


@jit
def _substep(c, out, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value,
             scale, keep_delta):
    parallel = c.size >= PARALLEL_MIN_SITES
    if c.ndim == 2:
        _substep_2d(c, out, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, scale,
                    keep_delta, parallel)
        apply_boundary_2d(out, bc_kind, bc_value)
    else:
        _substep_3d(c, out, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, scale,
                    keep_delta, parallel)
        apply_boundary_3d(out, bc_kind, bc_value)


@jit
def diffuse_step(c, out, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value,
                 n_substeps):
    """Advance a padded 2D/3D field by one step dt, as ``n_substeps`` ADI steps of dt/n.

    c           float64 C-ordered padded field at time t (its ghost layer is rewritten on
                entry)
    out         float64 padded array receiving the field at t + dt; may be ``c`` itself
    work        float64 padded scratch array, distinct from c and out (overwritten)
    alpha       D dt / dx**2 for the whole step (scalar >= 0)
    decay_dt    decay rate * dt (scalar >= 0)
    uptake_dt   float64 padded array: per-site uptake rate * dt (>= 0; 0 where nothing
                consumes)
    source_dt   float64 padded array: amount added per site over dt (source rate * dt)
    bc_kind     int64 (2*ndim,): 0 no flux / 1 fixed value, faces (-x, +x, -y, +y, -z, +z)
    bc_value    float64 (2*ndim,): the fixed value (at the ghost-site centre) per face
    n_substeps  int >= 1: the step is split into n_substeps equal ADI steps

    Returns nothing; ``out`` holds the new field with its ghost layer filled.
    """
    _check_args(c, out, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value)
    if n_substeps < 1:
        raise ValueError("fields: n_substeps must be >= 1")
    scale = 1.0 / n_substeps
    apply_boundary(c, bc_kind, bc_value)
    _substep(c, out, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value,
             scale, False)
    for _ in range(1, n_substeps):
        _substep(out, out, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value,
                 scale, False)


@jit
def _min_max_rows(x, first, last):
    """(min, max) over the interior of planes (rows in 2D) [first, last) of a padded array."""
    lo = np.inf
    hi = -np.inf
    for i in range(first, last):
        plane = x[i]
        if x.ndim == 2:
            for j in range(1, x.shape[1] - 1):
                lo = min(lo, plane[j])
                hi = max(hi, plane[j])
        else:
            for j in range(1, x.shape[1] - 1):
                for k in range(1, x.shape[2] - 1):
                    lo = min(lo, plane[j, k])
                    hi = max(hi, plane[j, k])
    return lo, hi


@parallel_jit
def _interior_min_max_parallel(x):
    nx = x.shape[0] - 2
    nchunk = min(MAX_CHUNKS, nx)
    chunk_lo = np.empty(nchunk)
    chunk_hi = np.empty(nchunk)
    for chunk in prange(nchunk):
        chunk_lo[chunk], chunk_hi[chunk] = _min_max_rows(x, 1 + chunk * nx // nchunk,
                                                         1 + (chunk + 1) * nx // nchunk)
    return chunk_lo.min(), chunk_hi.max()


@jit
def _interior_min_max(x):
    """(min, max) of the interior of a padded 2D/3D array (large arrays in parallel)."""
    if x.size >= PARALLEL_MIN_SITES:
        return _interior_min_max_parallel(x)
    return _min_max_rows(x, 1, x.shape[0] - 1)


@jit
def _max_abs_interior(x):
    """max |x| over the interior of a padded 2D/3D array (exact: max(-min, max))."""
    lo, hi = _interior_min_max(x)
    return max(-lo, hi)


@jit
def pseudo_time_scales(alpha, k_min, k_max, n_max, ndim, ratio):
    """Step-size factors of one quasi-steady cycle (geometric, ratio ``ratio`` apart).

    A Douglas step with factor f damps a Fourier mode with per-axis eigenvalues a_1, a_2
    (of -A_a, caller's units) best at f = 1 / sqrt(a_1 a_2), by 2 sqrt(a1 a2) / (sqrt(a1) +
    sqrt(a2))**2 <= 1/2; the cycle spans f from 1 / lambda_max to 1 / lambda_min with
    lambda_max = 4 alpha + k_max / ndim, lambda_min = alpha (pi / (2 n_max))**2 + k_min /
    ndim (the smallest mode with at least one fixed face), so every mode meets a step
    within sqrt(ratio) of its optimum once per cycle (classic ADI parameter cycling).
    """
    lam_hi = 4.0 * alpha + k_max / ndim
    lam_lo = alpha * (math.pi / (2.0 * n_max)) ** 2 + k_min / ndim
    if lam_hi <= 0.0:
        return np.ones(1)
    lam_lo = max(lam_lo, 1e-12 * lam_hi)
    n = max(1, int(math.ceil(math.log(lam_hi / lam_lo) / math.log(ratio))) + 1)
    scales = np.empty(n)
    for m in range(n):
        # geometric from 1/lam_hi up to 1/lam_lo (largest steps last)
        scales[m] = (1.0 / lam_hi) * (lam_hi / lam_lo) ** (m / max(n - 1, 1))
    return scales


@jit
def quasi_steady_state(c, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value,
                       rel_tol, max_steps):
    """Iterate ADI steps in place until ``c`` is at the discrete steady state.

    Arguments as in :func:`diffuse_step` (``c`` is updated in place, ghosts included). The
    steady state of D lap c - k c + s = 0 does not depend on dt, so the iteration uses
    pseudo-time steps: cycles of :func:`pseudo_time_scales` factors times the caller's
    (alpha, decay_dt, uptake_dt, source_dt). Its fixed point is the exact discrete steady
    state (the fixed point of :func:`diffuse_step` for every dt).

    Stops after the first full cycle whose change bound sum_steps max|d| is at most
    ``rel_tol * max|c|`` (max over interior sites), or after ``max_steps`` ADI steps
    (rounded up to whole cycles). Returns ``(steps, rel_change)``: converged iff
    ``rel_change <= rel_tol``. Without decay, uptake or a fixed face the steady state does
    not exist (or is not unique) and the iteration stops at max_steps.
    """
    _check_args(c, c, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value)
    u_lo, u_hi = _interior_min_max(uptake_dt)
    n_max = 1
    for ax in range(c.ndim):
        n_max = max(n_max, c.shape[ax] - 2)
    scales = pseudo_time_scales(alpha, decay_dt + max(u_lo, 0.0), decay_dt + max(u_hi, 0.0),
                                n_max, c.ndim, 4.0)
    apply_boundary(c, bc_kind, bc_value)
    steps = 0
    rel = np.inf
    while steps < max_steps:
        change = 0.0
        for m in range(scales.shape[0]):
            _substep(c, c, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value,
                     scales[m], True)
            change += _max_abs_interior(work)
            steps += 1
        c_max = _max_abs_interior(c)
        if c_max > 0.0:
            rel = change / c_max
        else:
            rel = 0.0 if change == 0.0 else np.inf
        if rel <= rel_tol:
            break
    return steps, rel
