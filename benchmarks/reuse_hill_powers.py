"""The full step with the tumour response's Hill powers reused by the next fields phase,
against computing them again, side by side in one process.

Run: ``python benchmarks/reuse_hill_powers.py [--quick] [--repeats N] [--json PATH]`` (JSON
``benchmarks/results/reuse_hill_powers.json``; ~1 min).

The chemokine's IFN-gamma-induced secretion takes the Hill function of the last step's
IFN-gamma at every tumour cell, which that step's tumour response took too; with
``TissueFields.REUSE_HILL_POWERS`` (the default) the tumour response leaves its powers in the
field solver's source buffer and the next fields phase reads them
(``kernels.microenvironment.induced_secretion_from_powers``), with False it computes them
again (``induced_secretion``), as before 2026-12-06. Both give the same bits; this script
checks that too.

On ``bench_full_step.py``'s side-by-side start engine (``--radius 420``: 1000x1000, ~226k
tumour cells): ``Engine.step()`` over 16 steps from a copy of the start engine (after one
untimed step, so the first timed one already has powers to reuse), the two settings
alternating within each repeat (their order alternating too), at 1 thread and then at 2;
the paired ratios' median and its distribution-free 95% interval
(``median_interval``, as ``bench_full_step.py``). Last, the chemokine's source alone:
its per-kind table and induced secretion computed, against the same from the powers.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numba
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_full_step  # noqa: E402
import common  # noqa: E402  (puts the repository root on sys.path)
from common import log  # noqa: E402

from kernels import lattice  # noqa: E402
from kernels import microenvironment as micro  # noqa: E402
from simulator import engine as engine_mod  # noqa: E402
from simulator.analysis.statistics import median_interval  # noqa: E402
from simulator.model.tissue import TissueFields  # noqa: E402

STEPS = 16
SETTINGS = (("computed", False), ("reused", True))


def timed_steps(start, reuse: bool, steps: int):
    """ms per ``Engine.step()`` over ``steps`` steps after one untimed step, and the final
    engine."""
    TissueFields.REUSE_HILL_POWERS = reuse
    engine = copy.deepcopy(start)
    engine.step()
    engine.observe()
    seconds = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        engine.step()
        seconds += time.perf_counter() - t0
        engine.observe()
    return 1e3 * seconds / steps, engine


def same_state(a, b) -> bool:
    """``bench_full_step``'s fingerprints agree but for scratch: the solver's source buffer
    ends holding the powers in one run and the last field's source in the other."""
    diff = bench_full_step.differences(bench_full_step.fingerprint(a),
                                       bench_full_step.fingerprint(b))
    return not [d for d in diff if d not in bench_full_step.SCRATCH + ("tissue.rhs",)]


def chemokine_source_ms(engine, repeats: int) -> dict:
    """Best ms of the chemokine's source built both ways on the engine's lattice."""
    st, tissue, p = engine.state, engine.tissue, engine.scenario.pd_l1
    f = tissue.index["chemokine"]
    table = tissue.source_by_kind[f].astype(np.float32)
    source = tissue.solver.source
    kind, line = st.kind, st.geometry.line_length
    ifn = tissue.flat("ifn_gamma")
    tumour = np.flatnonzero(kind == lattice.TUMOR)
    powers = np.array([micro.hill_power(x, p.ifn_half_saturation_ng_per_ml,
                                        p.ifn_hill_coefficient) for x in ifn[tumour]],
                      np.float32)
    best = dict(computed=np.inf, reused=np.inf)
    results = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        tissue.solver.set_tables(kind, tissue.reaction_by_kind[f], table, uniform=True)
        micro.induced_secretion(kind, ifn, st.lo, st.hi, line, tissue.induced_rate,
                                p.ifn_half_saturation_ng_per_ml, p.ifn_hill_coefficient,
                                source)
        best["computed"] = min(best["computed"], time.perf_counter() - t0)
        results["computed"] = source.copy()
        source[tumour] = powers
        t0 = time.perf_counter()
        micro.induced_secretion_from_powers(kind, st.lo, st.hi, line, table,
                                            tissue.induced_rate, source)
        best["reused"] = min(best["reused"], time.perf_counter() - t0)
        results["reused"] = source.copy()
    return dict({k: 1e3 * v for k, v in best.items()},
                identical=bool(np.array_equal(results["computed"], results["reused"])))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 400x400 (bench_full_step's quick state), 2 repeats")
    ap.add_argument("--json", type=Path, default=common.default_json("reuse_hill_powers"))
    args = ap.parse_args(argv)
    cfg = bench_full_step.side_by_side_start(args.quick)
    repeats = 2 if args.quick else args.repeats
    res = common.new_result("reuse_hill_powers", "quick" if args.quick else "full",
                            dict(repeats=repeats, steps=STEPS, dimensions=cfg["dimensions"],
                                 radius=cfg["radius"]))
    log("building the start state ...")
    start, _ = bench_full_step.build_start_engine(cfg, "throughout")
    threads_list = [t for t in (1, 2) if t <= numba.config.NUMBA_NUM_THREADS]
    rows, identical = {}, True
    try:
        for threads in threads_list:
            engine_mod.set_threads(threads)
            walls = {name: [] for name, _ in SETTINGS}
            for r in range(repeats):
                order = SETTINGS if r % 2 == 0 else SETTINGS[::-1]
                finals = {}
                for name, reuse in order:
                    log(f"  {threads} thread(s), repeat {r + 1}/{repeats}, {name} ...")
                    ms, finals[name] = timed_steps(start, reuse, STEPS)
                    walls[name].append(ms)
                identical = identical and same_state(finals["computed"], finals["reused"])
            paired = [c / u for c, u in zip(walls["computed"], walls["reused"])]
            median, low, high = median_interval(paired)
            rows[threads] = dict(walls_ms=walls, paired=paired, paired_median=median,
                                 paired_low=low, paired_high=high,
                                 **{f"{k}_ms_best": min(v) for k, v in walls.items()})
        engine_mod.set_threads(1)
        TissueFields.REUSE_HILL_POWERS = True
        source = chemokine_source_ms(timed_steps(start, True, 1)[1], 3 if args.quick else 20)
    finally:
        TissueFields.REUSE_HILL_POWERS = True
    res.update(rows=rows, identical=identical, chemokine_source_1_thread=source)
    common.finish_result(res)
    common.print_header(res, "tumorsim: Hill powers reused by the next fields phase")
    print(f"\nEngine.step(), {STEPS} steps x {repeats} repeats, ms per step (best); "
          "computed / reused per repeat pair")
    for threads, row in rows.items():
        interval = ("no interval below 6 repeats" if np.isnan(row["paired_low"]) else
                    f"95% interval {row['paired_low']:.3f}-{row['paired_high']:.3f}")
        print(f"  {threads} thr: computed {row['computed_ms_best']:.2f}, reused "
              f"{row['reused_ms_best']:.2f}; paired median {row['paired_median']:.3f}, "
              f"{interval}")
    print(f"  same state both ways: {'yes' if identical else 'NO'}")
    print(f"\nThe chemokine's source (per-kind table + induced secretion), 1 thread, best: "
          f"computed {source['computed']:.2f} ms, from the powers {source['reused']:.2f} ms; "
          f"same bits: {'yes' if source['identical'] else 'NO'}")
    common.write_json(res, args.json)
    return 0 if identical and source["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
