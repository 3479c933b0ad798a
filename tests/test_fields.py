"""Tests of the tissue-field solver (kernels/fields.py).

Units: lengths in um, times in min, concentrations relative (c0 = 1); lattice spacing
DX = 20 um (one cell). Parameters:

* chemokine-like protein: D = 600 um^2/min (~1e-7 cm^2/s, a small protein in tissue),
  decay 0.02/min (half-life ~35 min) for the pulse, 0.01/min for the wall;
* oxygen: D = 1e5 um^2/min (PhysiCell default), uptake 1/min inside the tumour
  (diffusion length L = sqrt(D / uptake) ~ 316 um), pinned to c0 outside.

Conventions under test (see the kernels/fields.py docstring): one ghost layer per face;
no-flux walls sit on the face (ghost mirrors the interior); a fixed value sits at the
ghost-site centre, so with a fixed -x face interior site i (padded index) is at x = i * DX.

``python tests/test_fields.py`` prints the error table of the analytic cases and the
observed convergence orders. Analytic tests are skipped when NUMBA_DISABLE_JIT=1 (too slow
in pure Python); every kernel keeps a small-lattice test that runs without JIT.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erfc, erfcx, i0

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT), str(ROOT / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import naive  # noqa: E402
from kernels import fields  # noqa: E402
from kernels.fields import (BC_FIXED_VALUE, BC_NO_FLUX, apply_boundary,  # noqa: E402
                            diffuse_step, quasi_steady_state)

NO_JIT = os.environ.get("NUMBA_DISABLE_JIT") == "1"
jit_only = pytest.mark.skipif(NO_JIT, reason="analytic / large-lattice check: needs JIT")

DX = 20.0                 # um
D_PROTEIN = 600.0         # um^2/min
D_OXYGEN = 1e5            # um^2/min
TOLERANCE = 0.02          # relative error allowed against analytic solutions


def bc_arrays(kinds, values=None):
    kinds = np.asarray(kinds, dtype=np.int64)
    values = np.zeros(len(kinds)) if values is None else np.asarray(values, dtype=float)
    return kinds, values


def random_case(shape, seed, uptake_scale=0.5, source_scale=0.1):
    rng = np.random.default_rng(seed)
    c = rng.random(shape)
    uptake = rng.random(shape) * uptake_scale
    uptake[rng.random(shape) < 0.3] = 0.0  # sites without consumers
    source = rng.random(shape) * source_scale
    return c, uptake, source


def step(c, alpha, decay_dt, uptake, source, kinds, values, n_substeps=1):
    """diffuse_step into a new array (c itself is left unchanged apart from its ghosts)."""
    out = np.empty_like(c)
    diffuse_step(c, out, np.empty_like(c), alpha, decay_dt, uptake, source, kinds, values,
                 n_substeps)
    return out


def interior(a):
    return a[(slice(1, -1),) * a.ndim]


# --------------------------------------------------------------------------------------
# Against the naive reference (small lattices: also run without JIT)
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, kinds", [((7, 9), [0, 1, 1, 0]),
                                          ((6, 7, 8), [1, 0, 0, 1, 1, 0])])
def test_apply_boundary_matches_naive(shape, kinds):
    c, _, _ = random_case(shape, 1)
    kinds, values = bc_arrays(kinds, np.arange(1.0, len(kinds) + 1.0))
    mine = c.copy()
    apply_boundary(mine, kinds, values)
    ref = naive.apply_boundary(c.copy(), kinds, values)
    np.testing.assert_array_equal(mine, ref)


SMALL_CASES = [((9, 12), [0, 1, 1, 0]), ((12, 9), [1, 1, 1, 1]),
               ((7, 8, 10), [1, 0, 0, 1, 1, 0]), ((8, 6, 7), [0, 0, 0, 0, 0, 0])]


@pytest.mark.parametrize("shape, kinds", SMALL_CASES)
@pytest.mark.parametrize("alpha, n_substeps", [(0.3, 1), (50.0, 3), (1.5e4, 1)])
def test_step_matches_naive(shape, kinds, alpha, n_substeps):
    c, uptake, source = random_case(shape, 2)
    kinds, values = bc_arrays(kinds, np.linspace(0.5, 1.5, len(kinds)))
    mine = step(c.copy(), alpha, 0.2, uptake, source, kinds, values, n_substeps)
    ref = naive.diffuse_step(c, alpha, 0.2, uptake, source, kinds, values, n_substeps)
    # 1e-12, widened for large alpha: the solves amplify rounding by up to ~ alpha / k
    tol = 1e-12 * max(1.0, alpha / 100.0)
    np.testing.assert_allclose(mine, ref, rtol=tol, atol=tol * np.abs(ref).max())


@jit_only
@pytest.mark.parametrize("shape, kinds", [((70, 45), [1, 0, 0, 1]),
                                          ((9, 21, 37), [0, 1, 1, 0, 0, 1])])
def test_step_matches_naive_many_blocks(shape, kinds):
    """Lattices with several line groups / blocks / chunks, partial groups included."""
    c, uptake, source = random_case(shape, 3)
    kinds, values = bc_arrays(kinds, np.linspace(0.2, 2.0, len(kinds)))
    for alpha in (0.7, 300.0):
        mine = step(c.copy(), alpha, 0.05, uptake, source, kinds, values, 2)
        ref = naive.diffuse_step(c, alpha, 0.05, uptake, source, kinds, values, 2)
        tol = 1e-12 * max(1.0, alpha / 100.0)
        np.testing.assert_allclose(mine, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("n, nw", [(1, 1), (7, 9), (8, 8), (16, 24), (21, 13)])
def test_transposes_between_parity_split_layouts(n, nw):
    """The 8 x 8 register transposes (whole tiles) and the element-wise edges together move
    every (m, w) to (w + 1, m - 1): from a row-major block to parity-split scratch and
    back."""
    rng = np.random.default_rng(n * 100 + nw)
    src = rng.random((n + 1, nw + 3))  # rows m = 1..n, the block starting at column 2
    row = src.shape[1]
    d0, d1, _, _ = fields._split_scratch(nw, n)  # rows k = 1..nw, lanes m - 1
    fields._transpose_split(src, 2, src, row + 2, 2 * row, d0, 0, d1, 0, n, n, nw)
    for k in range(1, nw + 1):
        got = d1[k >> 1] if k & 1 else d0[k >> 1]
        np.testing.assert_array_equal(got, src[1:, 1 + k])
    back = np.zeros((n + 1, nw))  # row m = line m (row 0 unused)
    fields._transpose_split(d0, 0, d1, 0, n, back, 0, back, nw, 2 * nw, nw, n)
    np.testing.assert_array_equal(back[1:], src[1:, 2:2 + nw])


@pytest.mark.parametrize("shape", [(10, 13), (6, 9, 7)])
def test_in_place_equals_out_of_place(shape):
    c, uptake, source = random_case(shape, 4)
    kinds, values = bc_arrays([1, 0] * len(shape), [2.0, 0.0] * len(shape))
    out = step(c.copy(), 2.0, 0.1, uptake, source, kinds, values, 2)
    inplace = c.copy()
    diffuse_step(inplace, inplace, np.empty_like(c), 2.0, 0.1, uptake, source, kinds, values,
                 2)
    np.testing.assert_array_equal(inplace, out)


@pytest.mark.parametrize("shape, kinds", [((8, 11), [1, 0, 0, 1]),
                                          ((5, 6, 7), [1, 1, 0, 0, 0, 1])])
def test_quasi_steady_state_matches_direct_solve(shape, kinds):
    """The pseudo-time iteration converges to the exact discrete steady state (dense
    direct solve), including for oxygen-like alpha."""
    _, uptake, source = random_case(shape, 5)
    kinds, values = bc_arrays(kinds, np.linspace(1.0, 3.0, len(kinds)))
    for alpha in (5.0, 1.5e4):
        c = np.zeros(shape)
        steps, rel = quasi_steady_state(c, np.empty(shape), alpha, 0.1, uptake, source,
                                        kinds, values, 1e-12, 10000)
        assert rel <= 1e-12
        ref = naive.steady_state(shape, alpha, 0.1, uptake, source, kinds, values)
        np.testing.assert_allclose(c, ref, rtol=1e-9)


@pytest.mark.parametrize("shape", [(8, 11), (5, 6, 7)])
def test_fixed_point_is_exact_discrete_steady_state(shape):
    """Stepping the exact discrete steady state with an oxygen-sized step (alpha = D dt /
    dx^2 = 1e5 * 60 / 400 = 1.5e4, uptake 10/min * 60 min) leaves it unchanged to
    round-off: a fast field stepped with large dt stays right at steady state."""
    rng = np.random.default_rng(6)
    uptake = np.where(rng.random(shape) < 0.5, 600.0, 0.0)
    source = np.zeros(shape)
    kinds, values = bc_arrays([1, 1] + [0] * (2 * len(shape) - 2),
                              [38.0, 38.0] + [0.0] * (2 * len(shape) - 2))
    alpha, decay_dt = 1.5e4, 6.0
    steady = naive.steady_state(shape, alpha, decay_dt, uptake, source, kinds, values)
    after = step(steady.copy(), alpha, decay_dt, uptake, source, kinds, values)
    change = np.abs(after - steady).max() / np.abs(steady).max()
    assert change < 1e-11
    # and the kernel's own quasi-steady state is a fixed point of the time step
    c = np.full(shape, 38.0)
    quasi_steady_state(c, np.empty(shape), alpha, decay_dt, uptake, source, kinds, values,
                       1e-13, 10000)
    after = step(c.copy(), alpha, decay_dt, uptake, source, kinds, values)
    assert np.abs(after - c).max() / np.abs(c).max() < 1e-11


@pytest.mark.parametrize("shape", [(12, 17), (6, 7, 9)])
@pytest.mark.parametrize("alpha", [0.5, 1e4])
def test_mass_conserved_with_no_flux_walls(shape, alpha):
    """Conserved to round-off: the residual alpha * (sum of neighbours - 2d c) carries
    rounding of relative size eps * alpha, so the bound is ~ eps * alpha per step
    (observed: 4e-16 at alpha = 0.5, 3e-12 at alpha = 1e4 after 10 steps)."""
    c, _, _ = random_case(shape, 7)
    kinds, values = bc_arrays([BC_NO_FLUX] * (2 * len(shape)))
    zeros = np.zeros(shape)
    mass0 = interior(c).sum()
    n_steps = 10
    for _ in range(n_steps):
        c = step(c, alpha, 0.0, zeros, zeros, kinds, values)
    assert abs(interior(c).sum() - mass0) / mass0 < 1e-15 * max(1.0, alpha) * n_steps


@pytest.mark.parametrize("shape", [(12, 10), (6, 5, 7)])
def test_stable_for_huge_alpha(shape):
    """Unconditional stability: random data, alpha = 1e6, fixed zero faces, uniform decay:
    the L2 norm never grows; with random uptake the field stays bounded by its start."""
    c, uptake, _ = random_case(shape, 8)
    kinds, values = bc_arrays([BC_FIXED_VALUE] * (2 * len(shape)))
    zeros = np.zeros(shape)
    norm = np.linalg.norm(interior(c))
    for _ in range(20):
        c = step(c, 1e6, 0.01, zeros, zeros, kinds, values)
        new = np.linalg.norm(interior(c))
        assert new <= norm * (1 + 1e-12)
        norm = new
    c, _, _ = random_case(shape, 9)
    for _ in range(20):
        c = step(c, 1e6, 0.01, uptake * 1e3, zeros, kinds, values)
    assert np.all(np.isfinite(c)) and np.abs(interior(c)).max() <= 1.0


@pytest.mark.parametrize("shape", [(12, 10), (6, 5, 7)])
@pytest.mark.parametrize("alpha", [0.5, 10.0, 1.5e4])
def test_sources_into_empty_tissue_stay_non_negative(shape, alpha):
    """From a zero field, non-negative point sources and uptake give a non-negative field
    at any alpha (each ADI factor is an M-matrix). (A spike in c itself can undershoot:
    see the kernels/fields.py docstring.)"""
    rng = np.random.default_rng(13)
    source = np.where(rng.random(shape) < 0.05, 1.0, 0.0)
    uptake = np.where(rng.random(shape) < 0.3, 50.0, 0.0)
    kinds, values = bc_arrays([BC_FIXED_VALUE, BC_NO_FLUX] * len(shape))
    c = step(np.zeros(shape), alpha, 0.01, uptake, source, kinds, values)
    assert interior(c).min() >= 0.0 and interior(c).max() > 0.0


def test_ghost_layer_written_on_output():
    c, uptake, source = random_case((6, 8), 10)
    kinds, values = bc_arrays([BC_FIXED_VALUE, BC_NO_FLUX, BC_NO_FLUX, BC_FIXED_VALUE],
                              [3.0, 0.0, 0.0, 4.0])
    out = step(c, 1.0, 0.0, uptake, source, kinds, values)
    np.testing.assert_array_equal(out[0, 1:-1], 3.0)
    np.testing.assert_array_equal(out[-1, 1:-1], out[-2, 1:-1])
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    np.testing.assert_array_equal(out[:, -1], 4.0)


def test_bad_arguments_raise():
    c = np.zeros((5, 6))
    kinds, values = bc_arrays([0, 0, 0, 0])
    with pytest.raises(ValueError):
        diffuse_step(c, np.zeros((5, 7)), np.zeros((5, 6)), 1.0, 0.0, c, c, kinds, values, 1)
    with pytest.raises(ValueError):
        diffuse_step(c, c, np.zeros((5, 6)), 1.0, 0.0, c, c, kinds[:3], values[:3], 1)
    with pytest.raises(ValueError):
        diffuse_step(c, c, np.zeros((5, 6)), 1.0, 0.0, c, c, np.array([0, 2, 0, 0]),
                     values, 1)
    with pytest.raises(ValueError):
        diffuse_step(c, c, np.zeros((5, 6)), 1.0, 0.0, c, c, kinds, values, 0)
    with pytest.raises(ValueError):
        diffuse_step(c, np.zeros((5, 6)), c, 1.0, 0.0, c, c, kinds, values, 1)
    with pytest.raises(ValueError):
        diffuse_step(c, c, np.zeros((5, 6)), -1.0, 0.0, c, c, kinds, values, 1)


@pytest.mark.parametrize("shape, kinds", [((70, 45), [1, 0, 0, 1]),
                                          ((9, 21, 37), [0, 1, 1, 0, 0, 1])])
def test_parallel_and_serial_paths_agree_bitwise(shape, kinds):
    """diffuse_step picks the prange drivers only on large lattices; both paths must give
    the same bits (same per-line arithmetic, different chunking)."""
    if NO_JIT and len(shape) == 3:
        shape = (5, 6, 7)
    c, uptake, source = random_case(shape, 12)
    kinds, values = bc_arrays(kinds, np.linspace(0.2, 2.0, len(kinds)))
    substep = fields._substep_2d if len(shape) == 2 else fields._substep_3d
    apply_boundary(c, kinds, values)
    results = []
    for parallel in (False, True):
        out, work = np.empty(shape), np.empty(shape)
        substep(c, out, work, 30.0, 0.05, uptake, source, kinds, 0.5, True, parallel)
        results.append((interior(out).copy(), interior(work).copy()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


# --------------------------------------------------------------------------------------
# Determinism across thread counts (separate processes)
# --------------------------------------------------------------------------------------
_DETERMINISM_SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from kernels.fields import diffuse_step, quasi_steady_state
    digest = hashlib.sha256()
    for shape, kinds in (({s2}, [1, 0, 0, 1]), ({s3}, [0, 1, 1, 0, 1, 0])):
        rng = np.random.default_rng(11)
        c = rng.random(shape)
        uptake = rng.random(shape) * (rng.random(shape) < 0.6)
        source = rng.random(shape) * 0.1
        kinds = np.array(kinds, dtype=np.int64)
        values = np.linspace(0.5, 2.0, len(kinds))
        out = np.empty(shape); work = np.empty(shape)
        for alpha in (0.8, 4000.0):
            diffuse_step(c, out, work, alpha, 0.05, uptake, source, kinds, values, 2)
            digest.update(out.tobytes())
        steps, rel = quasi_steady_state(out, work, 4000.0, 0.05, uptake, source, kinds,
                                        values, 1e-8, 60)
        digest.update(out.tobytes()); digest.update(np.float64(rel).tobytes())
    print(digest.hexdigest())
""")


def test_bit_identical_for_any_thread_count():
    """The same case run in processes with NUMBA_NUM_THREADS = 1, 2 and 3 gives the same
    bytes (fields after steps and after the quasi-steady iteration)."""
    # above PARALLEL_MIN_SITES with JIT, so the prange drivers run
    s2, s3 = ((20, 11), (5, 6, 7)) if NO_JIT else ((260, 250), (40, 40, 38))
    script = _DETERMINISM_SCRIPT.format(root=str(ROOT), s2=s2, s3=s3)
    digests = []
    for threads in (1, 2, 3):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        digests.append(result.stdout.strip().splitlines()[-1])
    assert len(set(digests)) == 1, digests


# --------------------------------------------------------------------------------------
# Analytic solutions (Carslaw & Jaeger; Crank); the case functions feed the __main__ table
# --------------------------------------------------------------------------------------
def pulse_case(ndim, dt, D=D_PROTEIN, decay=0.02, t0=10.0, duration=20.0):
    """Decaying point pulse: start from the exact solution at t0 (a point release t0
    earlier, width sqrt(2 D t0) = 110 um), no-flux walls 4 widths away at the end, step to
    t0 + duration; compare c = M / (4 pi D t)^(d/2) exp(-r^2 / (4 D t) - lambda t) and the
    mass M exp(-lambda t)."""
    t1 = t0 + duration
    half = int(np.ceil(4.0 * np.sqrt(2.0 * D * t1) / DX))
    n = 2 * half + 1
    shape = (n + 2,) * ndim
    x = (np.arange(n + 2) - (half + 1)) * DX
    r2 = sum(g ** 2 for g in np.meshgrid(*([x] * ndim), indexing="ij"))
    mass = 1.0

    def exact(t):
        return mass / (4 * np.pi * D * t) ** (ndim / 2) * np.exp(-r2 / (4 * D * t) - decay * t)

    c = exact(t0)
    out, work, zeros = np.empty(shape), np.empty(shape), np.zeros(shape)
    kinds, values = bc_arrays([BC_NO_FLUX] * (2 * ndim))
    alpha = D * dt / DX ** 2
    for _ in range(int(round(duration / dt))):
        diffuse_step(c, out, work, alpha, decay * dt, zeros, zeros, kinds, values, 1)
        c, out = out, c
    ref = interior(exact(t1))
    mass_num = interior(c).sum() * DX ** ndim
    mass_ref = mass * np.exp(-decay * t1)
    return dict(field=interior(c), peak_rel=np.abs(interior(c) - ref).max() / ref.max(),
                mass_rel=abs(mass_num - mass_ref) / mass_ref)


def wall_case(decay, dt, D=D_PROTEIN, duration=120.0, c0=1.0, length=4000.0):
    """Fixed value c0 at x = 0 (the -x ghost centre), empty tissue, no-flux elsewhere (the
    far wall at 4 mm is out of reach): c0 erfc(x / (2 sqrt(D t))) without decay, and with
    decay c0/2 [e^(-x/L) erfc(x/(2 sqrt(Dt)) - sqrt(lambda t)) + e^(x/L) erfc(x/(2
    sqrt(Dt)) + sqrt(lambda t))], L = sqrt(D / lambda)."""
    n = int(round(length / DX))
    shape = (n + 2, 4 + 2)
    c, out, work, zeros = np.zeros(shape), np.empty(shape), np.empty(shape), np.zeros(shape)
    kinds, values = bc_arrays([BC_FIXED_VALUE, BC_NO_FLUX, BC_NO_FLUX, BC_NO_FLUX],
                              [c0, 0, 0, 0])
    alpha = D * dt / DX ** 2
    for _ in range(int(round(duration / dt))):
        diffuse_step(c, out, work, alpha, decay * dt, zeros, zeros, kinds, values, 1)
        c, out = out, c
    x = np.arange(1, n + 1) * DX
    z = x / (2 * np.sqrt(D * duration))
    if decay == 0.0:
        ref = c0 * erfc(z)
    else:
        length_scale, q = np.sqrt(D / decay), np.sqrt(decay * duration)
        ref = 0.5 * c0 * (np.exp(-x / length_scale) * erfc(z - q)
                          + np.exp(x / length_scale - (z + q) ** 2) * erfcx(z + q))
    num = c[1:-1, 1:-1]
    return dict(max_rel=np.abs(num - ref[:, None]).max() / c0)


def exponential_steady_case(dx, D=D_PROTEIN, decay=0.01, length=4000.0, c0=1.0):
    """Steady state of the decaying wall: c0 e^(-x/L), L = sqrt(D / lambda) = 245 um
    (quasi_steady_state; the far no-flux wall at 4 mm = 16 L is out of reach)."""
    n = int(round(length / dx))
    shape = (n + 2, 1 + 2)
    c, zeros = np.zeros(shape), np.zeros(shape)
    kinds, values = bc_arrays([BC_FIXED_VALUE, BC_NO_FLUX, BC_NO_FLUX, BC_NO_FLUX],
                              [c0, 0, 0, 0])
    steps, rel = quasi_steady_state(c, np.empty(shape), D / dx ** 2, decay, zeros, zeros,
                                    kinds, values, 1e-13, 100000)
    x = np.arange(1, n + 1) * dx
    ref = c0 * np.exp(-x / np.sqrt(D / decay))
    return dict(max_rel=np.abs(c[1:-1, 1] - ref).max() / c0, steps=steps, rel_change=rel)


def uptake_sphere_case(ndim, radius=600.0, uptake=1.0, D=D_OXYGEN, c0=1.0, margin=3):
    """Steady oxygen with uniform uptake inside a disc / ball of radius R (sites with
    r <= R), held at c0 outside by a strong exchange term (uptake K, source K c0, K = 1e12
    >> alpha). Compared with 2D c0 I0(r/L) / I0(R'/L) and 3D c0 (R'/r) sinh(r/L) /
    sinh(R'/L), L = sqrt(D / uptake). The lattice boundary is a staircase: the fixed
    values sit at the centres of the pinned sites (as at a fixed face), so R' is the mean
    radius of the pinned sites next to an uptake site; the error against the nominal R is
    reported as well."""
    big_k = 1e12
    nr = int(np.ceil(radius / DX)) + margin
    n = 2 * nr + 1
    shape = (n + 2,) * ndim
    x = (np.arange(n + 2) - (nr + 1)) * DX
    r = np.sqrt(sum(g ** 2 for g in np.meshgrid(*([x] * ndim), indexing="ij")))
    inside = r <= radius
    dt = 1.0  # min; the steady state does not depend on it
    uptake_dt = np.where(inside, uptake * dt, big_k)
    source_dt = np.where(inside, 0.0, big_k * c0)
    c = np.full(shape, c0)
    kinds, values = bc_arrays([BC_FIXED_VALUE] * (2 * ndim), [c0] * (2 * ndim))
    steps, rel = quasi_steady_state(c, np.empty(shape), D * dt / DX ** 2, 0.0, uptake_dt,
                                    source_dt, kinds, values, 1e-11, 100000)
    next_to_uptake = np.zeros(shape, dtype=bool)
    for axis in range(ndim):
        for shift in (1, -1):
            next_to_uptake |= np.roll(inside, shift, axis=axis)
    r_eff = r[~inside & next_to_uptake].mean()
    length_scale = np.sqrt(D / uptake)
    rin, cin = r[inside], c[inside]

    def exact(big_r):
        if ndim == 2:
            return c0 * i0(rin / length_scale) / i0(big_r / length_scale)
        safe = np.where(rin > 0, rin, 1.0)
        return np.where(rin > 0,
                        c0 * (big_r / safe) * np.sinh(rin / length_scale)
                        / np.sinh(big_r / length_scale),
                        c0 * (big_r / length_scale) / np.sinh(big_r / length_scale))

    ref, ref_nominal = exact(r_eff), exact(radius)
    centre = rin.argmin()
    return dict(max_rel=np.abs(cin - ref).max() / c0,
                centre_rel=abs(cin[centre] - ref[centre]) / ref[centre],
                max_rel_nominal_r=np.abs(cin - ref_nominal).max() / c0,
                r_eff=r_eff, steps=steps, rel_change=rel)


@pytest.fixture
def one_thread():
    """Analytic checks test the mathematics, not threading: run them on one Numba thread so
    they stay fast when another process holds a core (a parallel region then stalls)."""
    import numba
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


def observed_order(errors, ratio=2.0):
    return [float(np.log(errors[q] / errors[q + 1]) / np.log(ratio))
            for q in range(len(errors) - 1)]


def dt_order_case():
    """Order in dt of the 2D pulse by successive refinement (dt = 1, 0.5, 0.25 min):
    ||u_dt - u_dt/2|| / ||u_dt/2 - u_dt/4|| = 2^p, expected p = 1 (theta = 1)."""
    fields = [pulse_case(2, dt)["field"] for dt in (1.0, 0.5, 0.25)]
    diffs = [np.abs(fields[q] - fields[q + 1]).max() for q in range(2)]
    return dict(orders=observed_order(diffs))


def dx_order_case():
    """Order in dx of the steady decaying wall against c0 e^(-x/L) (dx = 40, 20, 10, 5 um),
    expected p = 2."""
    errors = [exponential_steady_case(dx)["max_rel"] for dx in (40.0, 20.0, 10.0, 5.0)]
    return dict(errors=errors, orders=observed_order(errors))


@jit_only
@pytest.mark.parametrize("ndim, dt", [(2, 0.25), (3, 0.125)])
def test_decaying_pulse_matches_gaussian(ndim, dt, one_thread):
    result = pulse_case(ndim, dt)
    assert result["peak_rel"] < TOLERANCE
    assert result["mass_rel"] < TOLERANCE


@jit_only
@pytest.mark.parametrize("decay", [0.0, 0.01])
def test_fixed_wall_matches_erfc(decay, one_thread):
    assert wall_case(decay, 0.5)["max_rel"] < TOLERANCE


@jit_only
def test_decaying_wall_steady_state_is_exponential(one_thread):
    result = exponential_steady_case(DX)
    assert result["rel_change"] <= 1e-13
    assert result["max_rel"] < TOLERANCE


@jit_only
@pytest.mark.parametrize("ndim", [2, 3])
def test_uptake_disc_and_ball_steady_states(ndim, one_thread):
    result = uptake_sphere_case(ndim)
    assert result["rel_change"] <= 1e-11
    assert result["max_rel"] < TOLERANCE
    assert result["centre_rel"] < TOLERANCE


@jit_only
def test_convergence_order_in_dt_is_one(one_thread):
    orders = dt_order_case()["orders"]
    print(f"observed order in dt (2D pulse): {orders}")
    assert all(0.85 < p < 1.15 for p in orders)


@jit_only
def test_convergence_order_in_dx_is_two(one_thread):
    result = dx_order_case()
    print(f"observed order in dx (steady exponential): {result['orders']}")
    assert all(1.85 < p < 2.15 for p in result["orders"])


def main():
    rows = []
    for ndim, dt in ((2, 0.25), (3, 0.125)):
        r = pulse_case(ndim, dt)
        rows.append((f"{ndim}D decaying pulse, D={D_PROTEIN:g}, decay 0.02/min, dt={dt} min,"
                     " t=10->30 min", "peak-normalised max |err|", r["peak_rel"]))
        rows.append((f"{ndim}D decaying pulse (same)", "total mass", r["mass_rel"]))
    for decay in (0.0, 0.01):
        r = wall_case(decay, 0.5)
        rows.append((f"fixed wall, decay {decay}/min, dt=0.5 min, t=120 min",
                     "max |err| / c0", r["max_rel"]))
    r = exponential_steady_case(DX)
    rows.append(("steady decaying wall vs c0 exp(-x/L), L=245 um", "max |err| / c0",
                 r["max_rel"]))
    for ndim in (2, 3):
        r = uptake_sphere_case(ndim)
        name = "disc, I0" if ndim == 2 else "ball, sinh"
        rows.append((f"{ndim}D oxygen uptake {name}, R=600 um, L=316 um (R'={r['r_eff']:.1f})",
                     "max |err| / c0", r["max_rel"]))
        rows.append((f"{ndim}D (same)", "centre, relative", r["centre_rel"]))
        rows.append((f"{ndim}D (same, against nominal R)", "max |err| / c0",
                     r["max_rel_nominal_r"]))
    width = max(len(row[0]) for row in rows)
    print(f"{'case':<{width}}  {'measure':<26} {'error':>9}")
    for case, measure, err in rows:
        print(f"{case:<{width}}  {measure:<26} {err:9.2e}")
    print(f"observed order in dt (2D pulse, dt = 1, 0.5, 0.25 min): "
          f"{', '.join(f'{p:.3f}' for p in dt_order_case()['orders'])}")
    dxo = dx_order_case()
    print("observed order in dx (steady exponential, dx = 40, 20, 10, 5 um): "
          f"{', '.join(f'{p:.3f}' for p in dxo['orders'])} "
          f"(errors {', '.join(f'{e:.2e}' for e in dxo['errors'])})")


if __name__ == "__main__":
    main()
