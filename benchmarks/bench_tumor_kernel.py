"""The continuous-time tumour kernel against the synchronous step it replaced, side by side.

Run: ``python benchmarks/bench_tumor_kernel.py [--quick] [--threads 1,2] [--json PATH]``
(default JSON: ``benchmarks/results/tumor_kernel.json``).

Measures the cost per *simulated day* of the tumour phase (tumour-only model, the default
tumour biology: b = 0.5/day, d = 0.05/day) on the same lattice state:

- ``continuous``: ``Engine.step()`` (doses + the ``kernels.tumor`` schedule / event-queue
  pass) — what every run now pays;
- ``legacy``: the synchronous propose / resolve step (``benchmarks/legacy_tumor.py``, a copy
  of the kernel before the change) with the same per-step probabilities, on a copy of the
  same state.

Repeats interleave the two so drifting background load hits both alike; each repeat starts
from the same warmed-up state. The issue's budget: the continuous kernel may cost at most 2x
the legacy step per simulated day at the default dt (6 h). A second table gives the
continuous kernel's cost per simulated day at dt = 0.25, 1, 6 and 12 h (the legacy step's
growth depends on dt, so only its 6 h figure is a fair baseline).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402,F401  (puts the repository root on sys.path)
from common import (default_json, finish_result, log, new_result, print_header,  # noqa: E402
                    write_json)

import numba  # noqa: E402
import numpy as np  # noqa: E402

import legacy_tumor  # noqa: E402
from kernels import rng  # noqa: E402
from simulator.engine import Engine  # noqa: E402
from simulator.scenario import library_dir, load  # noqa: E402

CASES = [("2D 1000x1000", [1000, 1000], 309), ("3D 100^3", [100, 100, 100], 41)]
QUICK_CASES = [("2D 400x400", [400, 400], 120), ("3D 60^3", [60, 60, 60], 24)]


def scenario_for(dimensions, radius, dt_hours):
    return load(library_dir() / "tumor_only.toml", [
        f"simulation.dimensions={dimensions}", f"initial.tumor_radius_sites={radius}",
        f"simulation.dt_hours={dt_hours}", "simulation.duration_days=10000",
        "output.snapshot_every_days=0"])


def warmed(dimensions, radius, dt_hours, warm_steps):
    engine = Engine(scenario_for(dimensions, radius, dt_hours))
    for _ in range(warm_steps):
        engine.step()
    return engine


def time_continuous(base, steps):
    engine = _copy(base)
    start = time.perf_counter()
    for _ in range(steps):
        engine.step()
    return time.perf_counter() - start


def time_legacy(base, steps):
    engine = _copy(base)
    s, geo, r = engine.state, engine.state.geometry, engine.rates
    n_lines = geo.n_lines
    scratch = {k: np.empty(n_lines, np.int64) for k in
               ("tlo", "thi", "plo", "phi", "births", "deaths", "mut", "mutable")}
    by_clone = np.zeros((n_lines, len(r.death_hazard)), np.int64)
    p_die, p_divide = r.p_die, r.p_divide
    p_clear_dead = float(-np.expm1(-r.clear_dead_hazard))
    p_clear_necrotic = float(-np.expm1(-r.clear_necrotic_hazard))
    sim = engine.scenario.simulation
    keys = {st: np.uint64(rng.stream_key(sim.seed, sim.replicate, st)) for st in (
        rng.STREAM_TUMOR_EVENT, rng.STREAM_DIVISION_TARGET, rng.STREAM_DIVISION_PRIORITY,
        rng.STREAM_MUTATION, rng.STREAM_CLEARANCE)}
    none = np.empty(0, np.float64)
    start = time.perf_counter()
    for step in range(s.step, s.step + steps):
        k = {st: np.uint64(rng.step_key(key, step)) for st, key in keys.items()}
        legacy_tumor.propose(s.kind, s.clone, s.proposal, s.lo, s.hi, geo.line_length,
                             geo.offsets, p_die, p_divide, none, none, none,
                             k[rng.STREAM_TUMOR_EVENT], k[rng.STREAM_DIVISION_TARGET],
                             scratch["tlo"], scratch["thi"], scratch["plo"], scratch["phi"])
        legacy_tumor.resolve(s.kind, s.clone, s.proposal, s.lo, s.hi, geo.line_length,
                             geo.offsets, geo.line_offsets, scratch["tlo"], scratch["thi"],
                             scratch["plo"], scratch["phi"], r.mutation_probability, 1,
                             p_clear_dead, p_clear_necrotic, k[rng.STREAM_DIVISION_PRIORITY],
                             k[rng.STREAM_MUTATION], k[rng.STREAM_CLEARANCE],
                             scratch["births"], scratch["deaths"], scratch["mut"],
                             scratch["mutable"], by_clone)
    return time.perf_counter() - start


def _copy(engine):
    import copy
    return copy.deepcopy(engine)


def bench_side_by_side(cases, threads_list, repeats, steps):
    rows = []
    for name, dims, radius in cases:
        base = warmed(dims, radius, 6.0, 8)
        cells = base.observe()["tumor_cells"]
        for threads in threads_list:
            numba.set_num_threads(threads)
            time_continuous(base, 1), time_legacy(base, 1)   # compile / warm caches
            cont, leg = [], []
            for _ in range(repeats):
                cont.append(time_continuous(base, steps))
                leg.append(time_legacy(base, steps))
            per_day = 24.0 / 6.0 / steps * 1000.0
            row = dict(case=name, threads=threads, cells=cells, steps=steps,
                       continuous_ms_per_day=statistics.median(cont) * per_day,
                       legacy_ms_per_day=statistics.median(leg) * per_day)
            row["ratio"] = row["continuous_ms_per_day"] / row["legacy_ms_per_day"]
            rows.append(row)
            log(f"  {name} {threads} thr: continuous {row['continuous_ms_per_day']:.1f} "
                f"ms/day, legacy {row['legacy_ms_per_day']:.1f} ms/day, ratio "
                f"{row['ratio']:.2f}")
    return rows


def bench_dt(cases, repeats, days):
    rows = []
    numba.set_num_threads(1)
    for name, dims, radius in cases:
        for dt in (0.25, 1.0, 6.0, 12.0):
            base = warmed(dims, radius, dt, 2)
            steps = max(1, round(days * 24.0 / dt))
            time_continuous(base, 1)
            walls = [time_continuous(base, steps) for _ in range(repeats)]
            rows.append(dict(case=name, dt_hours=dt, threads=1,
                             ms_per_day=statistics.median(walls) / days * 1000.0))
            log(f"  {name} dt {dt:g} h: {rows[-1]['ms_per_day']:.1f} ms per simulated day")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small lattices, few repeats")
    parser.add_argument("--threads", default="1", help="thread counts, e.g. 1,2")
    parser.add_argument("--json", type=Path, default=default_json("tumor_kernel"))
    args = parser.parse_args(argv)
    cases = QUICK_CASES if args.quick else CASES
    threads = [int(t) for t in args.threads.split(",")]
    res = new_result("bench_tumor_kernel", "quick" if args.quick else "full",
                     dict(threads=threads, cases=cases))
    print_header(res, "tumour kernel: continuous time vs the synchronous step")
    res["side_by_side"] = bench_side_by_side(cases, threads, 3 if args.quick else 5,
                                             8 if args.quick else 16)
    res["per_dt"] = bench_dt(cases, 3, 1.0 if args.quick else 2.0)
    finish_result(res)
    print(f"\n{'case':<14} {'thr':>3} {'cells':>8} {'continuous':>12} {'legacy':>10} "
          f"{'ratio':>6}   (ms per simulated day, dt 6 h; budget ratio <= 2)")
    for r in res["side_by_side"]:
        print(f"{r['case']:<14} {r['threads']:>3} {r['cells']:>8} "
              f"{r['continuous_ms_per_day']:>12.1f} {r['legacy_ms_per_day']:>10.1f} "
              f"{r['ratio']:>6.2f}")
    print(f"\n{'case':<14} {'dt (h)':>6} {'ms per simulated day':>22}   (1 thread)")
    for r in res["per_dt"]:
        print(f"{r['case']:<14} {r['dt_hours']:>6g} {r['ms_per_day']:>22.1f}")
    write_json(res, args.json)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
