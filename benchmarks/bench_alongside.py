"""Fields beside the tumour phase: when solving IFN-gamma and the suppressive cytokine on a
helper thread while the tumour phase runs (``simulator.model.alongside``) pays, and whether
the engine's timed choice finds it.

Run: ``python benchmarks/bench_alongside.py [--quick] [--steps N] [--json PATH]`` (default
JSON: ``benchmarks/results/alongside.json``). See ``benchmarks/README.md``.

For each case, five copies of one engine step side by side at 2 Numba threads, one step
each in turn (so a slow spell of the machine falls on all five): ``never``
(``Engine.FIELDS_ALONGSIDE = False``: every field before the tumour phase; two lanes),
``chosen`` (the default, ``FIELDS_ALONGSIDE`` and ``TissueFields.LANES`` None: on
lattices of ``MIN_SITES`` or more ``alongside.Choice`` times the four ways, beside or not,
two lanes or one, and keeps the fastest; below, never beside and two lanes), ``always``
(True, at any lattice size; two lanes), ``two lanes`` (beside as ``chosen``,
``TissueFields.LANES = True``: the fields one call solves in two lanes at once, the
engine's way before 2026-12-07 on every lattice) and ``one lane`` (beside as ``chosen``,
``LANES = False``: one after another). The figure is the median ms per ``Engine.step``.
The five end bit-identical (checked).

Cases: the built-in default scenario (300 x 300) and the library's melanoma slice (250 x
250) partway through their runs; the default scenario on 600 x 600 and 800 x 800 with a
young tumour (a disc of 35% of the side, few events per step); and the 1000 x 1000 start
state of ``bench_full_step.py --radius 420`` (a large tumour with a necrotic core, 14k T
cells), where the tumour's event loop is long.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402  (puts the repository root on sys.path)

import numba  # noqa: E402
import numpy as np  # noqa: E402

from simulator import engine as engine_mod  # noqa: E402
from simulator.model import alongside  # noqa: E402
from simulator.scenario import load  # noqa: E402

# way: (Engine.FIELDS_ALONGSIDE, TissueFields.LANES)
WAYS = {"never": (False, True), "chosen": (None, None), "always": (True, True),
        "two lanes": (None, True), "one lane": (None, False)}


def library_case(path, overrides, warm_steps):
    def build():
        engine = engine_mod.Engine(load(path, overrides))
        for _ in range(warm_steps):
            engine.step()
        return engine
    return build


def full_step_case(radius):
    def build():
        import bench_full_step
        cfg = dict(bench_full_step.MODES["full"], radius=radius, vessels="throughout")
        return bench_full_step.build_start_engine(cfg, "throughout")[0]
    return build


CASES = {
    "default 300x300, day 60": library_case(None, [], 240),
    "melanoma 250x250, day 25": library_case("scenarios/melanoma.toml", [], 100),
    "default 600x600, young disc": library_case(
        None, ["simulation.dimensions=[600,600]", "initial.tumor_radius_sites=210"], 40),
    "default 800x800, young disc": library_case(
        None, ["simulation.dimensions=[800,800]", "initial.tumor_radius_sites=280"], 40),
    "full step 1000x1000, radius 420": full_step_case(420),
}
QUICK = ("default 300x300, day 60", "default 600x600, young disc")


def same_state(a, b) -> bool:
    if not np.array_equal(a.state.kind, b.state.kind):
        return False
    return all(np.array_equal(a.tissue.arrays[k], b.tissue.arrays[k]) for k in a.tissue.arrays)


def time_case(build, steps: int, threads: int) -> dict:
    engine_mod.set_threads(1)
    start = build()
    engine_mod.set_threads(threads)
    engines = {}
    for way, (beside, lanes) in WAYS.items():
        engines[way] = copy.deepcopy(start)
        engines[way].FIELDS_ALONGSIDE = beside
        engines[way].tissue.LANES = lanes
    walls = {way: [] for way in WAYS}
    for _ in range(steps):
        for way, engine in engines.items():
            t0 = time.perf_counter()
            engine.step()
            walls[way].append(time.perf_counter() - t0)
    choice = engines["chosen"]._alongside_choice
    history = choice.history if choice is not None else []
    return dict(sites=int(start.state.kind.size), steps=steps,
                ms_per_step_median={w: 1e3 * float(np.median(v)) for w, v in walls.items()},
                chosen_steps_beside=sum(beside for (beside, _), _ in history),
                chosen_steps_two_lanes=sum(lanes for (_, lanes), _ in history),
                chosen_steps_recorded=len(history),
                identical=all(same_state(engines["never"], e) for e in engines.values()))


def print_report(res: dict) -> None:
    common.print_header(res, "tumorsim fields-beside-the-tumour benchmark")
    print(f"\nms per Engine.step at {res['threads']} threads (median of {res['config']['steps']} "
          "steps, the five ways in turn)")
    print(f"  {'case':<34}{'sites':>9}{'never':>9}{'chosen':>9}{'always':>9}{'2 lanes':>9}"
          f"{'1 lane':>9}{'always/never':>14}{'chosen/faster lanes':>21}"
          "  chosen beside / 2 lanes  identical")
    for name, r in res["cases"].items():
        m = r["ms_per_step_median"]
        lanes = min(m["two lanes"], m["one lane"])
        print(f"  {name:<34}{r['sites']:>9}{m['never']:>9.2f}{m['chosen']:>9.2f}"
              f"{m['always']:>9.2f}{m['two lanes']:>9.2f}{m['one lane']:>9.2f}"
              f"{m['always'] / m['never']:>13.2f}x{m['chosen'] / lanes:>20.2f}x"
              f"  {r['chosen_steps_beside']:>4} / {r['chosen_steps_two_lanes']:>4} "
              f"of {r['chosen_steps_recorded']:<4}  {'yes' if r['identical'] else 'NO'}")
    print(f"  ('chosen' times its ways only from {alongside.MIN_SITES} sites; 'chosen beside "
          "/ 2 lanes': its steps run beside / in two lanes, of those it timed)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="two small cases, 24 steps")
    ap.add_argument("--steps", type=int, help="steps per way and case (default 60)")
    ap.add_argument("--json", type=Path, help="default benchmarks/results/alongside.json")
    args = ap.parse_args(argv)
    steps = args.steps or (24 if args.quick else 60)
    res = common.new_result("alongside", "quick" if args.quick else "full", dict(steps=steps))
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    res["threads"] = threads
    if threads < 2:
        common.warn(res, "only 1 Numba thread available: nothing runs alongside")
    common.time_cases(res, CASES, QUICK if args.quick else None,
                      lambda build: time_case(build, steps, threads))
    common.finish_result(res)
    print_report(res)
    common.write_json(res, args.json or common.default_json("alongside"))


if __name__ == "__main__":
    main()
