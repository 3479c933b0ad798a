"""Serial against parallel kernels by lattice size: where a run should call which flavour
(``kernels.flavour``; the engine's rule is ``simulator.model.state.kernel_flavour``).

Run: ``python benchmarks/bench_flavours.py [--quick] [--rounds N] [--json PATH]`` (default
JSON: ``benchmarks/results/flavours.json``). See ``benchmarks/README.md``, "Serial kernels
for small lattices".

For each case, four copies of one engine step side by side, BLOCK steps each in turn,
for several rounds (so a slow spell of the machine falls on all four): the serial kernels
(``kernels.serial``) and the parallel ones (``kernels``), each at 1 and 2 Numba threads
(pinned). The figure is the median over the rounds of the ms per ``Engine.step``; the four
end bit-identical (checked). Cases: the built-in
default scenario grown for 100 days on square lattices of 300 to 512 sites a side (the
default is 300; the rule's threshold, 2^17 sites, lies near 362), and the library's
melanoma_3d at 40^3 and 50^3.

The serial kernels also compile faster (no parfor pass, no parallel region to lower):
``bench_startup.py --floor`` gives the compile seconds of each flavour and the cold start.
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

import kernels  # noqa: E402
from simulator import engine as engine_mod  # noqa: E402
from simulator.model import state as state_mod  # noqa: E402
from simulator.scenario import load  # noqa: E402

# way: (serial kernels, threads)
WAYS = {"serial 1": (True, 1), "parallel 1": (False, 1), "serial 2": (True, 2),
        "parallel 2": (False, 2)}
FORCE = {True: 2 ** 62, False: 0}  # state.SERIAL_KERNELS_BELOW that forces each flavour
# steps of one way in a row: a run keeps its thread count for long stretches, and a step at
# another count in between (an OpenMP pool gone to sleep, the fields' second workspace
# cold) would charge each way for the others
BLOCK = 10


def case(path, dimensions, days):
    overrides = [f"simulation.dimensions={list(dimensions)}"]

    def build():
        engine = engine_mod.Engine(load(path, overrides))
        while engine.time_days < days:
            engine.step()
        return engine
    return build


CASES = {
    "default 300x300, day 100": case(None, (300, 300), 100),
    "default 360x360, day 100": case(None, (360, 360), 100),
    "default 400x400, day 100": case(None, (400, 400), 100),
    "default 512x512, day 100": case(None, (512, 512), 100),
    "melanoma_3d 40^3, day 60": case("scenarios/melanoma_3d.toml", (40, 40, 40), 60),
    "melanoma_3d 50^3, day 60": case("scenarios/melanoma_3d.toml", (50, 50, 50), 60),
}
QUICK = ("default 300x300, day 100", "default 400x400, day 100")


def state_arrays(engine) -> list[np.ndarray]:
    arrays = [engine.state.kind, engine.state.clone]
    if engine.tissue is not None:
        arrays += [engine.tissue.arrays[k] for k in sorted(engine.tissue.arrays)]
    if engine.immune is not None:
        arrays += [engine.immune.pdl1, engine.immune.t.live("sites"),
                   engine.immune.s.live("sites")]
    return arrays


def time_case(build, rounds: int) -> dict:
    saved = state_mod.SERIAL_KERNELS_BELOW
    try:
        engine_mod.set_threads(1)
        start = build()
        chosen = start.state.geometry.kernels is kernels.flavour(True)
        engines = {way: copy.deepcopy(start) for way in WAYS}
        for way, (serial, threads) in WAYS.items():  # a first step each: pools, workspaces
            state_mod.SERIAL_KERNELS_BELOW = FORCE[serial]
            engine_mod.set_threads(threads)
            engines[way].step()
        walls = {way: [] for way in WAYS}
        for _ in range(rounds):
            for way, (serial, threads) in WAYS.items():
                state_mod.SERIAL_KERNELS_BELOW = FORCE[serial]
                engine_mod.set_threads(threads)
                t0 = time.perf_counter()
                for _ in range(BLOCK):
                    engines[way].step()
                walls[way].append((time.perf_counter() - t0) / BLOCK)
    finally:
        state_mod.SERIAL_KERNELS_BELOW = saved
    first = state_arrays(engines["serial 1"])
    identical = all(all(a.tobytes() == b.tobytes() for a, b in zip(first, state_arrays(e)))
                    for e in engines.values())
    return dict(dimensions=list(start.state.geometry.dimensions),
                sites=int(np.prod(start.state.geometry.dimensions)), rounds=rounds,
                steps_per_round=BLOCK,
                engine_calls_serial=chosen,
                ms_per_step_median={w: 1e3 * float(np.median(v)) for w, v in walls.items()},
                identical=identical)


def print_report(res: dict) -> None:
    common.print_header(res, "tumorsim serial against parallel kernels")
    print(f"\nms per Engine.step (median over {res['config']['rounds']} rounds of {BLOCK} steps "
          "of each way in turn); 'engine': the flavour the engine's rule calls")
    print(f"  {'case':<28}{'sites':>9}{'serial 1':>10}{'parallel 1':>12}{'serial 2':>10}"
          f"{'parallel 2':>12}{'par/ser 2 thr':>15}  engine    identical")
    for name, r in res["cases"].items():
        m = r["ms_per_step_median"]
        print(f"  {name:<28}{r['sites']:>9}{m['serial 1']:>10.3f}{m['parallel 1']:>12.3f}"
              f"{m['serial 2']:>10.3f}{m['parallel 2']:>12.3f}"
              f"{m['parallel 2'] / m['serial 2']:>14.2f}x  "
              f"{'serial  ' if r['engine_calls_serial'] else 'parallel'}  "
              f"{'yes' if r['identical'] else 'NO'}")
    print(f"  (the rule: serial below {state_mod.SERIAL_KERNELS_BELOW} sites in 2D, parallel "
          "in 3D; par/ser < 1: the parallel kernels are faster at 2 threads)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="two 2D cases, 2 rounds")
    ap.add_argument("--rounds", type=int, help="rounds per case (default 6)")
    ap.add_argument("--json", type=Path, help="default benchmarks/results/flavours.json")
    args = ap.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 6)
    res = common.new_result("flavours", "quick" if args.quick else "full",
                            dict(rounds=rounds, steps_per_round=BLOCK))
    if numba.config.NUMBA_NUM_THREADS < 2:
        common.warn(res, "only 1 Numba thread available: the 2-thread ways run on 1")
    common.time_cases(res, CASES, QUICK if args.quick else None,
                      lambda build: time_case(build, rounds))
    common.check_loaded_from_cache(res, {
        f"{'serial' if serial else 'parallel'} {name}": getattr(
            kernels.flavour(serial).multigrid if name == "solve_2d"
            else kernels.flavour(serial).immune, name)
        for serial in (True, False) for name in ("solve_2d", "migrate")}, "the timed steps")
    common.finish_result(res)
    print_report(res)
    common.write_json(res, args.json or common.default_json("flavours"))


if __name__ == "__main__":
    main()
