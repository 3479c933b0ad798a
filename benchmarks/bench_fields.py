"""Throughput of the tissue-field solver (kernels/fields.py) against memory bandwidth.

Run: ``python benchmarks/bench_fields.py [--quick]``. Prints a table and writes
``benchmarks/results/fields.json``.

Bytes counted per field step (the solver's own compulsory traffic, see the module docstring
of kernels/fields.py): two streaming passes over the lattice, each reading three float64
arrays and writing one:

    pass A: read c, uptake_dt, source_dt; write work     (residual + sweep along x)
    pass B: read work, uptake_dt, c;      write out      (sweeps along y [and z], c + d)

= 8 arrays x 8 B = 64 B per interior site, in 2D and in 3D. (The transposed copies the
contiguous-axis sweeps work on are per-chunk scratch reused line group after line group /
plane after plane, cache-resident, not lattice-sized arrays. Write-allocate reads of
``work`` and ``out`` are not counted, as the copy below does not count them either; the
theoretical minimum of any one-step solver is 4 arrays = 32 B/site, also reported.)

Bandwidth is measured in the same run: a large numpy array copy (``np.copyto``, 256 MiB
each way; bytes read + written / time), which is single-threaded, and for the 2-thread
rows also a Numba ``prange`` copy of the same arrays at 2 threads. All timings are the best
of N repetitions after warm-up.
"""
import json
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernels.fields import diffuse_step, quasi_steady_state  # noqa: E402
from kernels.jit import parallel_jit, prange  # noqa: E402

BYTES_PER_SITE = 64          # 8 float64 arrays streamed per step (see above)
MIN_BYTES_PER_SITE = 32      # read c, uptake, source; write out


@parallel_jit
def _parallel_copy(dst, src):
    """dst[:] = src with a prange over 64 chunks (slices, so the copy loop vectorises)."""
    n = src.shape[0]
    nchunk = 64
    for chunk in prange(nchunk):
        lo = chunk * n // nchunk
        hi = (chunk + 1) * n // nchunk
        d = dst[lo:hi]
        s = src[lo:hi]
        for q in range(hi - lo):
            d[q] = s[q]


def best_time(fn, repeats):
    fn()  # warm-up
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def copy_bandwidth(n_bytes, repeats, threads):
    n = n_bytes // 8
    src = np.random.default_rng(0).random(n)
    dst = np.empty_like(src)
    if threads is None:
        t = best_time(lambda: np.copyto(dst, src), repeats)
    else:
        numba.set_num_threads(threads)
        t = best_time(lambda: _parallel_copy(dst, src), repeats)
    return 2 * n * 8 / t / 1e9


def make_case(dims, seed=0):
    """An oxygen-like case: D = 1e5 um^2/min, dx = 20 um, dt = 1 s; uptake 10/min on a
    random half of the sites, decay 0.1/min, vessel sources on 2% of the sites."""
    rng = np.random.default_rng(seed)
    shape = tuple(n + 2 for n in dims)
    dt_min = 1.0 / 60.0
    alpha = 1e5 * dt_min / 20.0 ** 2
    c = rng.random(shape) * 38.0
    uptake_dt = np.where(rng.random(shape) < 0.5, 10.0 * dt_min, 0.0)
    source_dt = np.where(rng.random(shape) < 0.02, 50.0 * dt_min, 0.0)
    bc_kind = np.array([1, 1] + [0] * (2 * len(dims) - 2), dtype=np.int64)
    bc_value = np.full(2 * len(dims), 38.0)
    return c, np.empty(shape), np.empty(shape), alpha, 0.1 * dt_min, uptake_dt, source_dt, \
        bc_kind, bc_value


def time_step(dims, threads, repeats, steps_per_rep):
    numba.set_num_threads(threads)
    c, out, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value = make_case(dims)

    def run():
        a, b = c, out
        for _ in range(steps_per_rep):
            diffuse_step(a, b, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind,
                         bc_value, 1)
            a, b = b, a

    return best_time(run, repeats) / steps_per_rep


def time_quasi_steady(dims, threads):
    """Steps and seconds to bring an oxygen field to steady state (rel tol 1e-6) from a
    uniform 38 mmHg start, with the numbers of a 1-hour cell step (alpha ~ 1.5e4); then
    from that state after 1% of the consumers moved (warm start, as between cell steps)."""
    numba.set_num_threads(threads)
    c, out, work, alpha, decay_dt, uptake_dt, source_dt, bc_kind, bc_value = make_case(dims)
    scale = 3600.0  # dt = 1 h instead of 1 s
    args = (alpha * scale, decay_dt * scale, uptake_dt * scale, source_dt * scale, bc_kind,
            bc_value)
    c[...] = 38.0
    quasi_steady_state(c.copy(), work, *args, 1e-2, 1)  # compile
    t0 = time.perf_counter()
    steps, rel = quasi_steady_state(c, work, *args, 1e-6, 2000)
    cold = (steps, rel, time.perf_counter() - t0)
    rng = np.random.default_rng(1)
    moved = uptake_dt * scale
    flip = rng.random(moved.shape) < 0.01
    per_hour = 10.0 * 60.0  # uptake 10/min over one hour
    moved[flip] = per_hour - moved[flip]  # consumers appear / vanish
    t0 = time.perf_counter()
    steps, rel = quasi_steady_state(c, work, args[0], args[1], moved, args[3], bc_kind,
                                    bc_value, 1e-6, 2000)
    return cold, (steps, rel, time.perf_counter() - t0)


def main():
    quick = "--quick" in sys.argv
    repeats = 3 if quick else 10
    max_threads = numba.config.NUMBA_NUM_THREADS
    thread_list = [t for t in (1, 2) if t <= max_threads]
    bw_numpy = copy_bandwidth(256 * 2 ** 20, repeats, None)
    bw_numba = {t: copy_bandwidth(256 * 2 ** 20, repeats, t) for t in thread_list}
    cases = [("2D 1000x1000", (1000, 1000)), ("3D 100^3", (100, 100, 100))]
    rows = []
    for name, dims in cases:
        n_sites = int(np.prod(dims))
        for threads in thread_list:
            t = time_step(dims, threads, repeats, 2 if quick else 5)
            gbs = BYTES_PER_SITE * n_sites / t / 1e9
            bw = max(bw_numpy, bw_numba[threads])
            rows.append(dict(case=name, dims=list(dims), threads=threads, seconds_per_step=t,
                             msites_per_s=n_sites / t / 1e6, bytes_per_site=BYTES_PER_SITE,
                             achieved_gb_per_s=gbs, bandwidth_gb_per_s=bw,
                             fraction_of_bandwidth=gbs / bw,
                             min_traffic_gb_per_s=MIN_BYTES_PER_SITE * n_sites / t / 1e9))
    qss = []
    for name, dims in cases:
        for threads in thread_list:
            cold, warm = time_quasi_steady(dims, threads)
            for start, (steps, rel, secs) in (("uniform", cold), ("warm, 1% moved", warm)):
                qss.append(dict(case=name, threads=threads, start=start, steps=int(steps),
                                rel_change=float(rel), seconds=secs))

    print(f"copy bandwidth (read+write): numpy 1 thread {bw_numpy:.2f} GB/s; "
          + "; ".join(f"numba prange {t} thread(s) {bw_numba[t]:.2f} GB/s"
                      for t in thread_list))
    print(f"bytes counted per site and step: {BYTES_PER_SITE} (minimum possible "
          f"{MIN_BYTES_PER_SITE})")
    head = (f"{'case':<14}{'thr':>4}{'ms/step':>10}{'Msite/s':>10}{'GB/s':>8}"
            f"{'bound':>8}{'% bound':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['case']:<14}{r['threads']:>4}{1e3 * r['seconds_per_step']:>10.2f}"
              f"{r['msites_per_s']:>10.1f}{r['achieved_gb_per_s']:>8.2f}"
              f"{r['bandwidth_gb_per_s']:>8.2f}{100 * r['fraction_of_bandwidth']:>8.0f}%")
    print("quasi_steady_state, oxygen with the numbers of a 1-hour step (alpha ~ 1.5e4), "
          "rel tol 1e-6:")
    for q in qss:
        print(f"  {q['case']:<14}{q['threads']:>2} thr, start {q['start']:<16}"
              f"{q['steps']:>5} ADI steps, rel change {q['rel_change']:.1e}, "
              f"{q['seconds']:.3f} s")
    load = os.getloadavg()[0]
    print(f"load average during the run: {load:.2f}")
    if load > 0.5:
        print("WARNING: the machine is busy; with another process on a core a 2-thread "
              "region stalls, so the 2-thread rows (and the bandwidth) are not meaningful")
    result = dict(machine=platform.processor() or platform.machine(),
                  cpu_count=os.cpu_count(), numba=numba.__version__, numpy=np.__version__,
                  bandwidth_numpy_copy_gb_per_s=bw_numpy,
                  bandwidth_numba_copy_gb_per_s={str(t): v for t, v in bw_numba.items()},
                  bytes_per_site=BYTES_PER_SITE, min_bytes_per_site=MIN_BYTES_PER_SITE,
                  repeats=repeats, rows=rows, quasi_steady=qss,
                  load_average=os.getloadavg()[0])
    out = ROOT / "benchmarks" / "results" / "fields.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
