"""The full model's tumour phase with today's ``kernels.tumor`` and an earlier one, side by side.

Run: ``python benchmarks/tumor_phase_against.py [--quick] [--against REV] [--threads N]
[--repeats R] [--json PATH]`` (default JSON ``benchmarks/results/tumor_phase_against.json``; ~40 s).

``bench_tumor_kernel.py`` times the tumour kernel in the tumour-only model (no oxygen, no
drug fields: the "plain" path). In the full model oxygen scales each cell's division
hazard, which takes other branches. This script builds ``bench_full_step.py``'s start
engine at radius 420 (1000 x 1000, ~225k tumour cells, oxygen and the other fields on) and
runs ``Engine._tumor_phase`` (``schedule`` + ``run_events``) for 4 steps from deep copies
of it, once with ``kernels/tumor.py`` as it was at ``--against`` (loaded from git history by
``common.module_at``) and once with today's, alternating, ``--repeats`` times (the first
dropped as warm-up). It checks that both leave the same lattice, clones, flags, birth
counts, per-line counts and event totals: a speed-up may not change an event.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_full_step  # noqa: E402
import common  # noqa: E402
from common import log  # noqa: E402

STEPS = 4


def run_version(module, start):
    """Seconds per tumour phase over STEPS steps from a copy of ``start``, and what the
    phase leaves behind."""
    import simulator.engine as engine_mod
    engine = copy.deepcopy(start)
    engine_mod.tumor = module   # the name Engine._tumor_phase calls
    t0 = time.perf_counter()
    for _ in range(STEPS):
        engine._tumor_phase()
        engine.state.step += 1
    seconds = (time.perf_counter() - t0) / STEPS
    s = engine.state
    left = [s.kind, s.clone, s.proposal, engine._births, engine._tumor_by_clone,
            engine._tumor_events, s.lo, s.hi]
    return seconds, [a.copy() for a in left]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", default="cea5430")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 400x400 (bench_full_step's quick state), one repeat")
    ap.add_argument("--json", type=Path, default=common.default_json("tumor_phase_against"))
    args = ap.parse_args(argv)
    cfg = bench_full_step.side_by_side_start(args.quick)
    repeats = 1 if args.quick else args.repeats
    import kernels.tumor as today
    import simulator.engine as engine_mod
    res = common.new_result("tumor_phase_against", "quick" if args.quick else "full",
                            dict(against=args.against, threads=args.threads,
                                 repeats=repeats, steps=STEPS,
                                 dimensions=cfg["dimensions"], radius=cfg["radius"]))
    before = common.module_at(args.against, "kernels/tumor.py", "tumor_before")
    log("building the start state ...")
    start, _ = bench_full_step.build_start_engine(cfg, "throughout")
    engine_mod.set_threads(args.threads)
    times = {args.against: [], "today": []}
    left = {}
    try:
        for repeat in range(repeats + 1):
            for name, module in ((args.against, before), ("today", today)):
                seconds, left[name] = run_version(module, start)
                if repeat:
                    times[name].append(seconds)
    finally:
        engine_mod.tumor = today
    identical = all(np.array_equal(a, b) for a, b in zip(left[args.against], left["today"]))
    rows = {name: dict(ms_best=1e3 * min(v), ms_median=1e3 * float(np.median(v)))
            for name, v in times.items()}
    res.update(rows=rows, identical=identical,
               tumor_cells=int(start._tumor_by_clone.sum()),
               ratio_best=rows[args.against]["ms_best"] / rows["today"]["ms_best"],
               ratio_median=rows[args.against]["ms_median"] / rows["today"]["ms_median"])
    common.finish_result(res)
    common.print_header(res, "tumorsim tumour phase of the full model, side by side")
    print(f"\n~{res['tumor_cells']} tumour cells, oxygen on, {args.threads} thread(s), "
          f"{STEPS} steps per repeat, {repeats} repeats")
    for name, r in rows.items():
        print(f"  kernels/tumor.py at {name:<10} {r['ms_best']:7.2f} ms best "
              f"{r['ms_median']:7.2f} ms median per step")
    print(f"  {args.against} / today: {res['ratio_best']:.2f}x best, "
          f"{res['ratio_median']:.2f}x median; same events: {'yes' if identical else 'NO'}")
    common.write_json(res, args.json)
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    main()
