"""Cold and warm start of the built-in default scenario, and where the cold start goes.

Run: ``python benchmarks/bench_startup.py [--quick] [--opt 3 1] [--floor] [--json PATH]``
(JSON ``benchmarks/results/startup.json``).

Issue 13 item 4 asks for a cold start (a fresh checkout's first ``tumorsim run``) of at most
12 s and a warm start (every kernel in Numba's cache) of at most 1 s. Each measurement is a
child process from the repository root that imports the engine, builds the default
scenario's engine and runs its first step into a recorder (what ``tumorsim run`` does before
its second step):

* cold: with an empty ``NUMBA_CACHE_DIR``, so every kernel the scenario calls is compiled,
  ahead of the build by a pool of processes on the idle cores, as ``tumorsim run`` does
  (``simulator.study.precompile``);
* cold, one process: the same with ``TUMORSIM_COMPILE_WORKERS=1``, so each kernel compiles
  in the run's process when the build or the first step first calls it (as before
  compiling ahead); the child records Numba's ``numba:compile`` events, so the table gives
  each compiled entry point's compile time (inclusive of the callees compiled for it);
* warm: a child with the cache the first cold one filled;
* ``--opt``: the cold start again at each LLVM optimisation level given (``NUMBA_OPT``;
  Numba's default is 3), to show how much of the compile time LLVM's optimiser is;
* ``--floor``: what the compiling itself could shrink to. Each of six compile settings
  in a child of its own, on an empty cache: every recorded signature of the default
  scenario's kernels (``study.precompile``) compiled one after another in one process, as
  the scenario runs them (the serial flavour, ``kernels.serial``: its 300 x 300 lattice is
  below ``simulator.model.state.SERIAL_KERNELS_BELOW``); with the parallel flavour instead
  (what it ran before the serial flavour: the parfor pass and the parallel regions to
  compile); serial with LLVM's optimiser at level 2 and at level 1 (``NUMBA_OPT``; Numba's
  default is 3): how much of the compiling is the optimiser's; serial without inlining in
  Numba's IR; also with LLVM's optimiser off (``NUMBA_OPT=0``). For the last two the
  child patches ``kernels.jit``'s decorators (both flavours') before any kernel module
  imports them. Each child then times STEPS_TIMED steps of the default scenario with the
  kernels it compiled, ROUNDS times from the same state (the best): what each saving costs
  the run (the children run minutes apart, so compare their steps only roughly; a
  difference of a few per cent needs ``bench_full_step.py`` side by side). The floor of
  the cold start at a setting is its compile seconds over the usable cores plus the cold
  start's part that is not compiling (interpreter, imports, build, first step), a bound
  that also ignores the pool's own start-up;
* ``--study``: a small ``tumorsim compare`` on 2 workers (two arms, two replicates, 60x60,
  20 days) on an empty cache, compiled ahead on its workers and with
  ``TUMORSIM_COMPILE_WORKERS=1`` (each worker compiling what its first run calls), in
  alternation, twice each.

The parent's wall time per child is reported (interpreter start and exit included; the
child exits as ``tumorsim`` does, and writes and reads Python's bytecode cache as a default
Python does: ``common.child_env``). The cold
figures depend on the machine's load like every other timing: check ``uptime`` first.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402  (puts the repository root on sys.path)
from common import log  # noqa: E402

TARGETS = dict(cold_s=12.0, warm_s=1.0)

# the compile events of the build and the first step, per entry point the scenario calls
CHILD = common.first_step_child(setup=r"""
from numba.core import event
compile_events = event.RecordingListener()
event.register("numba:compile", compile_events)
""", report=r"""
entry = {f"{k.py_func.__module__}.{k.__name__}" for k in E.kernels_for(scenario)}
starts, seconds = {}, {}
for ts, ev in compile_events.buffer:
    d = ev.data["dispatcher"]
    name = f"{d.py_func.__module__}.{d.__name__}"
    key = (id(d), str(ev.data["args"]))
    if ev.is_start:
        starts[key] = ts
    elif name in entry:
        seconds[name] = seconds.get(name, 0.0) + ts - starts[key]
result.update(entry_points=len(entry), compile_s=seconds)
""")


def measure(cache_dir: str, opt: int | None = None, workers: int | None = None) -> dict:
    env = {"NUMBA_CACHE_DIR": cache_dir}
    if workers is not None:
        env["TUMORSIM_COMPILE_WORKERS"] = str(workers)
    if opt is not None:
        env["NUMBA_OPT"] = str(opt)
    wall, detail = common.run_child(CHILD, env, timeout=1200)
    return dict(wall_s=wall, **detail)


# compile settings of --floor: (label, kernel flavour, IR inlining off, NUMBA_OPT)
FLOOR_SETTINGS = [("as run (serial kernels)", "serial", False, None),
                  ("parallel kernels", "parallel", False, None),
                  ("serial, NUMBA_OPT=2", "serial", False, 2),
                  ("serial, NUMBA_OPT=1", "serial", False, 1),
                  ("serial, no IR inlining", "serial", True, None),
                  ("serial, no inlining, NUMBA_OPT=0", "serial", True, 0)]
STEPS_TIMED = 40  # steps of the default scenario each --floor child times ...
ROUNDS = 3        # ... this many times from the same state; the best is reported
FLOOR_CHILD = r"""
import copy, json, sys, time
import kernels.jit
import kernels.serial.jit
flavour, no_inline = sys.argv[1], sys.argv[2] == "1"
if no_inline:  # a compiled call instead (each flavour's own jit: its cache names)
    for module in (kernels.jit, kernels.serial.jit):
        module.inline_jit = module.jit
from simulator.model import state
if flavour == "parallel":
    state.SERIAL_KERNELS_BELOW = 0
from simulator import engine as E
from simulator.scenario import load
from simulator.study import precompile
scenario = load(None)
seconds = {}
for s in precompile.pending(E.kernels_for(scenario)):  # the cache is empty: every signature
    name, took = precompile.compile_signature(s.kernel, s.args)
    seconds[name] = seconds.get(name, 0.0) + (took if took is not None else float("nan"))
start = E.Engine(scenario)
start.step()  # anything compiled at a first call (nothing, when the signatures are current)
rounds = []
for _ in range(int(sys.argv[4])):  # the same steps from the same state each round
    engine = copy.deepcopy(start)
    t0 = time.perf_counter()
    for _ in range(int(sys.argv[3])):
        engine.step()
    rounds.append((time.perf_counter() - t0) * 1e3 / int(sys.argv[3]))
print(json.dumps(dict(compile_s=seconds, step_ms=min(rounds), rounds_ms=rounds)))
"""

STUDY = ["compare", "scenarios/targeted_continuous.toml", "scenarios/anti_pd1.toml",
         "--replicates", "2", "--workers", "2", "--no-figures",
         "--set", "simulation.dimensions=[60,60]", "--set", "initial.tumor_radius_sites=5",
         "--set", "simulation.duration_days=20", "--set", "simulation.treatment_start_day=5"]


def measure_floor(tmp: str) -> list[dict]:
    """The --floor rows: compile seconds and the run's ms per step at each setting."""
    rows = []
    for label, flavour, no_inline, opt in FLOOR_SETTINGS:
        log(f"compiling the default scenario's kernels: {label} ...")
        env = {"NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="numba-floor-", dir=tmp)}
        if opt is not None:
            env["NUMBA_OPT"] = str(opt)
        _, detail = common.run_child(FLOOR_CHILD, env, args=(flavour,
                                     str(int(no_inline)), str(STEPS_TIMED),
                                     str(ROUNDS)), timeout=1200)
        rows.append(dict(setting=label, flavour=flavour, no_inline=no_inline, opt=opt,
                         compile_total_s=sum(detail["compile_s"].values()), **detail))
    return rows


def measure_study(tmp: str, ahead: bool) -> float:
    """Wall seconds of the small 2-worker study on an empty cache."""
    env = {"NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="numba-study-", dir=tmp)}
    if not ahead:
        env["TUMORSIM_COMPILE_WORKERS"] = "1"
    out = tempfile.mkdtemp(prefix="study-", dir=tmp)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "simulator", *STUDY, "-o", os.path.join(out, "s")],
                   cwd=common.ROOT, env=common.child_env(env), check=True,
                   capture_output=True, timeout=1200)
    return time.perf_counter() - t0


def print_report(res):
    common.print_header(res, "Start-up of the built-in default scenario")
    cold, serial, warm = res["cold"], res["cold_one_process"], res["warm"]
    print(f"\n{'':<36}{'wall s':>9}{'import':>9}{'ahead':>9}{'build':>9}{'1st step':>10}")
    for label, r in [("cold (empty cache, compiled ahead)", cold),
                     ("cold, one process", serial), ("warm (cache filled)", warm)] + [
            (f"cold, one process, NUMBA_OPT={o['opt']}", o) for o in res["opt_levels"]]:
        print(f"{label:<36}{r['wall_s']:9.2f}{r['import_s']:9.2f}{r['ahead_s']:9.2f}"
              f"{r['build_s']:9.2f}{r['first_step_s']:10.2f}")
    print(f"\n{cold['compiled_ahead']} signatures compiled ahead by {cold['compile_workers']} "
          f"processes; cold start in one process / ahead: "
          f"{serial['wall_s'] / cold['wall_s']:.2f}x")
    if res.get("study"):
        study = res["study"]
        print(f"\n2-worker study on an empty cache (tumorsim {' '.join(STUDY[:7])} ...): "
              f"compiled ahead {', '.join(f'{w:.1f}' for w in study['ahead_s'])} s; each "
              f"worker compiling {', '.join(f'{w:.1f}' for w in study['one_process_s'])} s")
    total = sum(serial["compile_s"].values())
    print(f"\nCold start in one process: compile time per entry point "
          f"({serial['entry_points']} the scenario calls; inclusive of the callees compiled "
          f"for it), {total:.1f} s in all")
    for name, s in sorted(serial["compile_s"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<44}{s:7.2f} s  {s / total:6.1%}")
    if res.get("floor"):
        print_floor(res)
    common.print_targets(res["targets"])


def print_floor(res):
    cores = res["machine"]["usable_cpus"]
    cold = res["cold"]
    rest = cold["wall_s"] - cold["ahead_s"]
    print(f"\nWhat the compiling could shrink to: every signature of the scenario's kernels "
          f"compiled in one process, then {STEPS_TIMED} steps of the default scenario timed "
          f"with those kernels (best of {ROUNDS} rounds from the same state); floor = "
          f"compile s / {cores} usable cores + the cold start's {rest:.2f} s that is not "
          f"compiling")
    print(f"{'setting':<36}{'compile s':>11}{'floor s':>9}{'ms/step':>9}{'x step':>8}")
    base = res["floor"][0]["step_ms"]
    for row in res["floor"]:
        print(f"{row['setting']:<36}{row['compile_total_s']:11.2f}"
              f"{row['compile_total_s'] / cores + rest:9.2f}{row['step_ms']:9.2f}"
              f"{row['step_ms'] / base:7.2f}x")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="the same measurements (there is nothing to shorten); the JSON "
                         "says 'quick'")
    ap.add_argument("--opt", type=int, nargs="*", default=[],
                    help="also a cold start in one process at these NUMBA_OPT levels")
    ap.add_argument("--floor", action="store_true",
                    help="also compile the scenario's kernels at four compile settings, "
                         "each cheaper to compile, and time the run with each")
    ap.add_argument("--study", action="store_true",
                    help="also time a small 2-worker study's cold start, ahead and not")
    ap.add_argument("--json", type=Path, default=common.default_json("startup"))
    args = ap.parse_args(argv)
    res = common.new_result("startup", "quick" if args.quick else "full",
                            dict(scenario="built-in default", opt_levels=args.opt,
                                 study=args.study, floor=args.floor))
    with tempfile.TemporaryDirectory() as tmp:
        cache = tempfile.mkdtemp(prefix="numba-cold-", dir=tmp)
        log("cold start (compiling every kernel ahead) ...")
        res["cold"] = measure(cache)
        log("cold start in one process ...")
        res["cold_one_process"] = measure(tempfile.mkdtemp(prefix="numba-serial-", dir=tmp),
                                          workers=1)
        log("warm start ...")
        res["warm"] = measure(cache)
        res["opt_levels"] = []
        for opt in args.opt:
            log(f"cold start at NUMBA_OPT={opt} ...")
            res["opt_levels"].append(dict(opt=opt, **measure(
                tempfile.mkdtemp(prefix=f"numba-opt{opt}-", dir=tmp), opt, workers=1)))
        if args.floor:
            res["floor"] = measure_floor(tmp)
        if args.study:
            res["study"] = dict(ahead_s=[], one_process_s=[])
            for _ in range(2):
                log("2-worker study, compiled ahead / each worker compiling ...")
                res["study"]["ahead_s"].append(measure_study(tmp, True))
                res["study"]["one_process_s"].append(measure_study(tmp, False))
    common.finish_result(res)
    res["targets"] = [
        common.target_row("cold start, default scenario (s)", res["cold"]["wall_s"],
                          TARGETS["cold_s"], f"<= {TARGETS['cold_s']:g} s", False),
        common.target_row("warm start, default scenario (s)", res["warm"]["wall_s"],
                          TARGETS["warm_s"], f"<= {TARGETS['warm_s']:g} s", False)]
    print_report(res)
    common.write_json(res, args.json)


if __name__ == "__main__":
    main()
