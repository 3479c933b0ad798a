"""The IFN-gamma Hill kernels with an earlier revision's power and today's, side by side.

Run: ``python benchmarks/hill_power.py [--quick] [--threads N] [--repeats R] [--against REV]
[--json PATH]`` (default JSON ``benchmarks/results/hill_power.json``; ~30 s).

``kernels.microenvironment.induced_secretion`` (the chemokine's IFN-gamma-induced source,
in the fields phase) and ``tumor_response`` (necrosis and PD-L1) each evaluate a Hill
function of the local IFN-gamma once per tumour cell. Until 2026-12-05 its power was the
maths library's float64 ``pow``, then float32's ``powf``, and since 2026-12-07 it is
``kernels.powers.power`` (float64 arithmetic without a library call, so the loop over a
line's tumour cells vectorises), rounded to float32. Both versions - the module at
``--against`` (default c3bf733, the float64 ``pow``; 664c3f3 for ``powf``) loaded from git
history (``common.module_at``), and today's -
run on the same inputs: ``bench_full_step.py``'s start engine at radius 420 (1000 x 1000,
~225k tumour cells), its IFN-gamma and oxygen fields, alternating version by version,
``--repeats`` times (the first dropped as warm-up), 5 calls each. ``tumor_response`` runs on
fresh copies of the lattice and PD-L1 (the copies are inside its time). Also reported: the
largest relative difference of the two versions' PD-L1 after one call (float32 rounding).
"""
from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_full_step  # noqa: E402
import common  # noqa: E402
from common import log  # noqa: E402

CALLS = 5


def run_version(module, engine, calls: int):
    """Seconds per call of each kernel, and the PD-L1 one call leaves."""
    st, tissue, p = engine.state, engine.tissue, engine.scenario.pd_l1
    kind, line = st.kind, st.geometry.line_length
    ifn, oxygen = tissue.flat("ifn_gamma"), tissue.flat("oxygen")
    source = np.zeros(kind.size, np.float32)
    t0 = time.perf_counter()
    for _ in range(calls):
        module.induced_secretion(kind, ifn, st.lo, st.hi, line, 0.01,
                                 p.ifn_half_saturation_ng_per_ml, p.ifn_hill_coefficient,
                                 source)
    t1 = time.perf_counter()
    # (since 2026-12-06 the tumour response can keep each cell's Hill power: not here)
    keeps_powers = "powers" in inspect.signature(module.tumor_response.py_func).parameters
    no_powers = (np.empty(0, np.float32),) if keeps_powers else ()
    # (since 2026-12-07 it works a range of lines: all of them here)
    if "line_lo" in inspect.signature(module.tumor_response.py_func).parameters:
        no_powers += (0, st.lo.size)
    for _ in range(calls):
        pdl1, lattice = engine.immune.pdl1.copy(), kind.copy()
        necrotic = np.zeros((st.lo.size, engine._tumor_by_clone.shape[1]), np.int64)
        module.tumor_response(lattice, st.clone, pdl1, oxygen, ifn, st.lo, st.hi, st.lo,
                              st.hi, line, 0.0, -1.0, 0.0, np.uint64(1), p.baseline, 1.0,
                              p.ifn_half_saturation_ng_per_ml, p.ifn_hill_coefficient, 0.9,
                              necrotic, *no_powers)
    t2 = time.perf_counter()
    return (t1 - t0) / calls, (t2 - t1) / calls, pdl1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--against", default="c3bf733")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 400x400 (bench_full_step's quick state), one repeat")
    ap.add_argument("--json", type=Path, default=common.default_json("hill_power"))
    args = ap.parse_args(argv)
    cfg = bench_full_step.side_by_side_start(args.quick)
    repeats = 1 if args.quick else args.repeats
    import kernels.microenvironment as today
    from simulator import engine as engine_mod
    res = common.new_result("hill_power", "quick" if args.quick else "full",
                            dict(threads=args.threads, repeats=repeats, calls=CALLS,
                                 against=args.against, dimensions=cfg["dimensions"],
                                 radius=cfg["radius"]))
    before = common.module_at(args.against, "kernels/microenvironment.py", "micro_before")
    log("building the start state ...")
    engine, _ = bench_full_step.build_start_engine(cfg, "throughout")
    engine_mod.set_threads(args.threads)
    then, now = f"at {args.against}", "today"
    times = {then: [], now: []}
    last = {}
    for repeat in range(repeats + 1):
        for name, module in ((then, before), (now, today)):
            secretion, response, pdl1 = run_version(module, engine, CALLS)
            last[name] = pdl1
            if repeat:
                times[name].append((secretion, response))
    a, b = last[then], last[now]
    tumour = ~np.isnan(a)
    rows = {}
    for name, pairs in times.items():
        ms = np.array(pairs) * 1e3
        rows[name] = dict(induced_secretion_ms_best=float(ms[:, 0].min()),
                          induced_secretion_ms_median=float(np.median(ms[:, 0])),
                          tumor_response_ms_best=float(ms[:, 1].min()),
                          tumor_response_ms_median=float(np.median(ms[:, 1])))
    res["rows"] = rows
    res["tumor_cells"] = int(tumour.sum())
    res["pdl1_max_relative_difference"] = float(np.max(np.abs(a[tumour] - b[tumour])
                                                       / np.abs(a[tumour])))
    common.finish_result(res)
    common.print_header(res, f"tumorsim Hill power: {args.against} against today")
    print(f"\n{res['tumor_cells']} tumour cells, {args.threads} thread(s), best / median ms per "
          f"call over {repeats} repeats of {CALLS} calls")
    print(f"  {'power':<18}{'induced_secretion':>22}{'tumor_response':>22}")
    for name, r in rows.items():
        print(f"  {name:<18}{r['induced_secretion_ms_best']:>12.2f} / "
              f"{r['induced_secretion_ms_median']:<7.2f}{r['tumor_response_ms_best']:>12.2f} / "
              f"{r['tumor_response_ms_median']:<7.2f}")
    saved = sum(rows[then][k] - rows[now][k]
                for k in ("induced_secretion_ms_best", "tumor_response_ms_best"))
    res["saved_ms_per_step_best"] = saved
    print(f"  saved per step (best): {saved:.2f} ms; PD-L1 largest relative difference "
          f"{res['pdl1_max_relative_difference']:.1e}")
    common.write_json(res, args.json)


if __name__ == "__main__":
    main()
