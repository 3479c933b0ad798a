"""A probe of issue 13's fields phase: red-black smoothing with each colour stored apart.

Run: ``python benchmarks/split_layout.py [--quick] [--repeats R] [--json PATH]`` (default
JSON ``benchmarks/results/split_layout.json``; ~20 s).

The solver's smoother (``kernels.multigrid._smooth_row``) keeps a field in the lattice's
layout, so a colour's sites alternate along a row: each colour sweep computes the whole
row (vectorised) and keeps one colour by a blend, twice the arithmetic a colour needs (a
sweep over one colour's sites with stride-2 loads was slower, ``README.md``). Stored
*split* - per padded row, the red sites in one array and the black in another - a
colour's sweep reads its four neighbours as unit-stride runs of the other colour and
computes only its own sites. This script times, on one 1000 x 1000 float32 field at 1
thread:

- ``repository``: ``_smooth_row`` on every row, red then black, as a cycle's pass calls it
  (without the pass's lag between the colours);
- ``blend``: the same whole-row-and-blend arithmetic written out on the uniform stretch
  alone (no boundary sites), the form the split one is checked against;
- ``split``: the split form, red then black;
- ``blend, lagged`` and ``split, lagged``: the same in one pass, black one row behind red,
  as the solver's passes order them (a row is still in the caches for its second colour);
- the conversions a solve would need to keep the lattice's layout outside the solver
  (the field into the split layout and back).

The blend and split forms must end with the same bits after every repeat's sweeps
(Gauss-Seidel within a colour does not depend on the order of its sites). Inputs are random
values in [0, 1); the loops have no data-dependent branches, so their cost does not depend
on them. Forms alternate repeat by repeat; best and median of each.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402
from common import log  # noqa: E402

from kernels import multigrid  # noqa: E402
from kernels.jit import inline_jit, jit  # noqa: E402

CALLS = 10  # red + black pairs (or conversions) per timed call


@jit
def repository_sweeps(x, bb, kk, geo, std, axf, t, calls):
    n1 = geo[0, multigrid.G_N1]
    for _ in range(calls):
        for colour in range(2):
            for r in range(1, n1 + 1):
                multigrid._smooth_row(x, 0, bb, kk, geo, std, axf, 0, False, 0, r, colour,
                                      t)


@inline_jit
def _blend_row(x, bb, kk, t, a1, a2, d0, e, r, colour):
    n = e - 2
    c0 = r * e + 1
    xr = x[c0 - 1:c0 + n + 1]
    up = x[c0 - e:c0 - e + n]
    dn = x[c0 + e:c0 + e + n]
    br = bb[c0:c0 + n]
    kr = kk[c0:c0 + n]
    for q in range(n):
        t[q] = (br[q] + a2 * (xr[q] + xr[q + 2]) + a1 * (up[q] + dn[q])) / (d0 + kr[q])
    keep = (r + 1 + colour) & 1
    xs = x[c0:c0 + n]
    for q in range(n):
        if (q & 1) == keep:
            xs[q] = t[q]


@jit
def blend_sweeps(x, bb, kk, t, a1, a2, d0, e, lagged, calls):
    """Red then black over the whole field, or (``lagged``) in one pass: red on row r,
    black on row r - 1, as the solver's passes order them. (The same loops as
    :func:`split_sweeps`, written out in both: with the row order taken from an array the
    split sweeps ran at 0.62x the blend form's speed in a ``--quick`` run, against 1.8-2.2x
    as written.)"""
    for _ in range(calls):
        if lagged:
            for r in range(1, e):
                if r < e - 1:
                    _blend_row(x, bb, kk, t, a1, a2, d0, e, r, 0)
                if r > 1:
                    _blend_row(x, bb, kk, t, a1, a2, d0, e, r - 1, 1)
        else:
            for colour in range(2):
                for r in range(1, e - 1):
                    _blend_row(x, bb, kk, t, a1, a2, d0, e, r, colour)


@inline_jit
def _split_row(own, other, bb, kk, a1, a2, d0, e, r, colour):
    """Row r of one colour: ``own[r * h + k]`` is the site (r, 2k + ((r + colour) & 1))."""
    h = e // 2
    m = (e - 2) // 2
    p = (r + colour) & 1
    o = r * h + 1 - p  # the first interior site of this colour on row r
    mine = own[o:o + m]
    beside = other[o - 1 + p:o + p + m]  # left neighbour beside[q], right beside[q + 1]
    up = other[o - h:o - h + m]
    dn = other[o + h:o + h + m]
    br = bb[o:o + m]
    kr = kk[o:o + m]
    for q in range(m):
        mine[q] = (br[q] + a2 * (beside[q] + beside[q + 1])
                   + a1 * (up[q] + dn[q])) / (d0 + kr[q])


@jit
def split_sweeps(red, black, b_red, b_black, k_red, k_black, a1, a2, d0, e, lagged, calls):
    for _ in range(calls):
        if lagged:
            for r in range(1, e):
                if r < e - 1:
                    _split_row(red, black, b_red, k_red, a1, a2, d0, e, r, 0)
                if r > 1:
                    _split_row(black, red, b_black, k_black, a1, a2, d0, e, r - 1, 1)
        else:
            for r in range(1, e - 1):
                _split_row(red, black, b_red, k_red, a1, a2, d0, e, r, 0)
            for r in range(1, e - 1):
                _split_row(black, red, b_black, k_black, a1, a2, d0, e, r, 1)


@inline_jit
def _row_views(x, red, black, e, r):
    """Padded row r of a field in the lattice's layout and in the split one, and the
    column parity of its red sites."""
    h = e // 2
    return (x[r * e:(r + 1) * e], red[r * h:(r + 1) * h], black[r * h:(r + 1) * h], r & 1)


@jit
def to_split(x, red, black, e, calls):
    for _ in range(calls):
        for r in range(e):
            row, rr, bk, p = _row_views(x, red, black, e, r)
            for k in range(e // 2):
                rr[k] = row[2 * k + p]
                bk[k] = row[2 * k + 1 - p]


@jit
def from_split(x, red, black, e, calls):
    for _ in range(calls):
        for r in range(e):
            row, rr, bk, p = _row_views(x, red, black, e, r)
            for k in range(e // 2):
                row[2 * k + p] = rr[k]
                row[2 * k + 1 - p] = bk[k]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 x 200, 3 repeats")
    ap.add_argument("--json", type=Path, default=common.default_json("split_layout"))
    args = ap.parse_args(argv)
    import numba
    numba.set_num_threads(1)
    n = 200 if args.quick else 1000
    e = n + 2  # padded row length: even, so both colours hold e / 2 entries per row
    repeats = 3 if args.quick else args.repeats
    res = common.new_result("split_layout", "quick" if args.quick else "full",
                            dict(sites=[n, n], repeats=repeats, calls=CALLS, threads=1))
    faces = np.zeros(4, np.int64)
    geo, std, _, _, axf, _ = multigrid.hierarchy(np.array([e, e], np.int64), 1.0, faces,
                                                  faces.astype(np.float64))
    a1, a2 = np.float32(std[0, 1]), np.float32(std[0, 2])
    d0 = np.float32(2.0 * (std[0, 0] + std[0, 1] + std[0, 2]))
    rng = np.random.default_rng(13)
    x, bb, kk = (rng.random(e * e).astype(np.float32) for _ in range(3))
    t = np.empty(e + 32, np.float32)
    # (the repository's tables are the solver's own: its right-hand side and reaction
    # buffers hold every level, the fine one first at offset 0)
    total, _ = multigrid.buffer_sizes(geo, False)
    bb_all = np.zeros(total, np.float32)
    kk_all = np.zeros(total, np.float32)
    bb_all[:e * e], kk_all[:e * e] = bb, kk
    h = e // 2
    x_red, x_black, b_red, b_black, k_red, k_black, scratch_red, scratch_black = (
        np.empty(e * h, np.float32) for _ in range(8))
    x_blend, x_repo = x.copy(), x.copy()
    to_split(x, x_red, x_black, e, 1)
    to_split(bb, b_red, b_black, e, 1)
    to_split(kk, k_red, k_black, e, 1)
    back = np.empty_like(x)
    log("compiling and checking ...")
    forms = {
        "repository": lambda c: repository_sweeps(x_repo, bb_all, kk_all, geo, std, axf, t,
                                                  c),
        "blend": lambda c: blend_sweeps(x_blend, bb, kk, t, a1, a2, d0, e, False, c),
        "blend, lagged": lambda c: blend_sweeps(x_blend, bb, kk, t, a1, a2, d0, e, True, c),
        "split": lambda c: split_sweeps(x_red, x_black, b_red, b_black, k_red, k_black, a1,
                                        a2, d0, e, False, c),
        "split, lagged": lambda c: split_sweeps(x_red, x_black, b_red, b_black, k_red,
                                                k_black, a1, a2, d0, e, True, c),
        "to split": lambda c: to_split(x_blend, scratch_red, scratch_black, e, c),
        "from split": lambda c: from_split(back, x_red, x_black, e, c),
    }
    seconds = {name: [] for name in forms}
    identical = True
    for repeat in range(repeats + 1):
        for name, form in forms.items():
            t0 = time.perf_counter()
            form(CALLS)
            if repeat:
                seconds[name].append((time.perf_counter() - t0) / CALLS)
        from_split(back, x_red, x_black, e, 1)
        interior = (slice(1, -1), slice(1, -1))
        identical &= bool(np.array_equal(back.reshape(e, e)[interior],
                                         x_blend.reshape(e, e)[interior]))
    rows = {}
    for name, s in seconds.items():
        ms = np.array(s) * 1e3
        rows[name] = dict(ms_best=float(ms.min()), ms_median=float(np.median(ms)))
    res["rows"] = rows
    res["split_equals_blend"] = identical
    # a V(1, 1) cycle sweeps the finest level twice (before and after the coarse
    # correction), in passes that lag black one row behind red
    saved = 2 * (rows["blend, lagged"]["ms_median"] - rows["split, lagged"]["ms_median"])
    converting = rows["to split"]["ms_median"] + rows["from split"]["ms_median"]
    res["per_cycle_saved_ms"] = saved
    res["per_solve_conversion_ms"] = converting
    common.finish_result(res)
    common.print_header(res, "tumorsim fields: red-black smoothing, lattice layout against split")
    print(f"\n{n} x {n} float32 field, 1 thread; ms per call (a red and a black sweep, or one "
          f"conversion), best / median of {repeats} repeats of {CALLS} calls")
    for name, r in rows.items():
        print(f"  {name:<15}{r['ms_best']:>8.3f} / {r['ms_median']:.3f}")
    ratio = rows["blend, lagged"]["ms_median"] / rows["split, lagged"]["ms_median"]
    print(f"  split against blend, lagged: {ratio:.2f}x (medians); split ends with the blend "
          f"form's bits: {'IDENTICAL' if identical else 'DIFFERENT'}")
    print(f"  per field and cycle: the finest level's two lagged sweep pairs split would save "
          f"{saved:.3f} ms; keeping the lattice's layout outside the solver costs "
          f"{converting:.3f} ms of conversions")
    common.write_json(res, args.json)


if __name__ == "__main__":
    main()
