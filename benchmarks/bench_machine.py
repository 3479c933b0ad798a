"""What two threads can give on this machine: a compute-bound and a memory-bound Numba
loop, each at 1 and 2 threads, side by side.

Run: ``python benchmarks/bench_machine.py [--quick] [--json PATH]`` (default JSON:
``benchmarks/results/machine.json``).

- ``compute``: 2,000 sines per element of a 200,000-element array (no memory traffic to
  speak of): the speed-up the cores themselves allow;
- ``stream``: ``b = 1.0001 a + 1`` over 50 M doubles (800 MB read and written per call,
  far beyond the caches): the speed-up memory bandwidth allows;
- ``cached stream``: the same loop over 2 M doubles (32 MB per call), which stays in a
  last-level cache of that size (the header prints this machine's). On the Intel host of
  2026-12-06 the L3 was 300 MB and held the full-step benchmark's whole state (1000x1000:
  43 MB), so its lattice sweeps ran at this bandwidth, ~2.5x the first (33 against 13 GB/s
  at 1 thread; the loop kept that speed up to 48 MB arrays and fell to 17 GB/s at 192 MB);
  a floor for such a sweep is then its bytes at this figure, not at the DRAM stream's. On
  the AMD host of 2026-12-07 on the L3 is 32 MiB, less than that state (61 against 36 GB/s
  at 1 thread, 2026-12-07 23:57), and the floor of a phase lies between the two.

A lattice phase that sweeps arrays of the lattice's size (the fields' smoothing sweeps, the
tumour schedule pass, the census) is bound by the stream figures, not the first. All three
vary from run to run on a shared virtual machine (measured here minutes apart: compute
1.72-2.07x, stream 1.20-1.93x), so quote the full step's 2-thread ratio (bench_full_step.py)
beside these, taken in the same minutes.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402
from common import log  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402


@njit(parallel=True, cache=True)
def compute(n):
    out = np.zeros(n)
    for i in prange(n):
        x = 0.0
        for k in range(2000):
            x += np.sin(i * 1e-3 + k * 1e-4)
        out[i] = x
    return out.sum()


@njit(parallel=True, cache=True)
def stream(a, b):
    for i in prange(a.shape[0]):
        b[i] = a[i] * 1.0001 + 1.0


# doubles per array: far beyond any cache (800 MB a call), and within a large L3 (32 MB,
# timed more often: each call is short)
DRAM_N = 50_000_000
CACHED_N = 2_000_000
CACHED_REPEATS = 20


def stream_bandwidth(threads_list=(1, 2), n: int = DRAM_N, repeats: int = 5) -> dict:
    """GB/s of ``stream`` over ``n`` doubles (16 bytes read and written per element) at each
    thread count, best of ``repeats``: what memory-bound lattice sweeps can reach (for
    ``bench_full_step.py``, measured in the same run as its steps); :func:`cached_bandwidth`
    for arrays that stay in the last-level cache."""
    a = np.ones(n)
    b = np.empty_like(a)
    stream(a[:10], b[:10])
    before = numba.get_num_threads()
    try:
        out = {}
        for t in threads_list:
            numba.set_num_threads(t)
            out[t] = 16 * n / best_of(lambda: stream(a, b), repeats) / 1e9
        return out
    finally:
        numba.set_num_threads(before)


def cached_bandwidth(threads_list=(1, 2)) -> dict:
    """:func:`stream_bandwidth` of arrays that stay in the last-level cache (CACHED_N
    doubles, best of CACHED_REPEATS)."""
    return stream_bandwidth(threads_list, n=CACHED_N, repeats=CACHED_REPEATS)


def best_of(f, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller arrays, 2 repeats")
    ap.add_argument("--json", type=Path, default=common.default_json("machine"))
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    cfg = dict(compute_n=20_000 if args.quick else 200_000,
               stream_n=5_000_000 if args.quick else DRAM_N, cached_n=CACHED_N,
               repeats=2 if args.quick else 5)
    res = common.new_result("machine", mode, cfg)
    threads = [t for t in (1, 2) if t <= numba.config.NUMBA_NUM_THREADS]
    a = np.ones(cfg["stream_n"])
    b = np.empty_like(a)
    ca, cb = a[:cfg["cached_n"]].copy(), b[:cfg["cached_n"]].copy()
    compute(100)
    stream(a[:10], b[:10])
    cases = {"compute": lambda: compute(cfg["compute_n"]), "stream": lambda: stream(a, b),
             "cached stream": lambda: stream(ca, cb)}
    rows = []
    for name, f in cases.items():
        row = {"case": name}
        for t in threads:
            log(f"{name} at {t} thread(s) ...")
            numba.set_num_threads(t)
            row[f"seconds_{t}"] = best_of(f, cfg["repeats"] * (4 if "cached" in name else 1))
        if len(threads) == 2:
            row["speed_up"] = row["seconds_1"] / row["seconds_2"]
        rows.append(row)
    res["rows"] = rows
    common.finish_result(res)
    res["targets"] = []
    common.print_header(res, "tumorsim machine benchmark: what 2 threads can give")
    print(f"\n  {'case':<14}" + "".join(f"{f'{t} thr s':>10}" for t in threads)
          + f"{'speed-up':>10}" + "".join(f"{f'{t} thr GB/s':>13}" for t in threads))
    for row in rows:
        n = {"stream": cfg["stream_n"], "cached stream": cfg["cached_n"]}.get(row["case"])
        if n:
            for t in threads:
                row[f"gb_s_{t}"] = 16 * n / row[f"seconds_{t}"] / 1e9
        print(f"  {row['case']:<14}" + "".join(f"{row[f'seconds_{t}']:>10.4f}" for t in threads)
              + (f"{row['speed_up']:>10.2f}" if "speed_up" in row else f"{'':>10}")
              + "".join(f"{row[f'gb_s_{t}']:>13.1f}" for t in threads if f"gb_s_{t}" in row))
    print("  compute: the cores' own speed-up; stream: memory bandwidth's (the ceiling for "
          "lattice sweeps of arrays beyond the caches); cached stream: the same for arrays "
          "that stay in the last-level cache")
    common.write_json(res, args.json)


if __name__ == "__main__":
    main()
