"""Cold and warm start of the built-in default scenario, and where the cold start goes.

Run: ``python benchmarks/bench_startup.py [--quick] [--opt 3 1] [--json PATH]`` (JSON
``benchmarks/results/startup.json``).

Issue 13 item 4 asks for a cold start (a fresh checkout's first ``tumorsim run``) of at most
12 s and a warm start (every kernel in Numba's cache) of at most 1 s. Each measurement is a
child process from the repository root that imports the engine, builds the default
scenario's engine and runs its first step into a recorder (what ``tumorsim run`` does before
its second step):

* cold: with an empty ``NUMBA_CACHE_DIR``, so every kernel the scenario calls is compiled;
  the child also records Numba's ``numba:compile`` events, so the table gives each
  compiled entry point's compile time (inclusive of the callees compiled for it);
* warm: a second child with the cache the cold one filled;
* ``--opt``: the cold start again at each LLVM optimisation level given (``NUMBA_OPT``;
  Numba's default is 3), to show how much of the compile time LLVM's optimiser is.

The parent's wall time per child is reported (interpreter start included). The cold
figures depend on the machine's load like every other timing: check ``uptime`` first.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
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


def measure(cache_dir: str, opt: int | None = None) -> dict:
    env = {"NUMBA_CACHE_DIR": cache_dir}
    if opt is not None:
        env["NUMBA_OPT"] = str(opt)
    wall, detail = common.run_child(CHILD, env, timeout=1200)
    return dict(wall_s=wall, **detail)


def print_report(res):
    common.print_header(res, "Start-up of the built-in default scenario")
    cold, warm = res["cold"], res["warm"]
    print(f"\n{'':<28}{'wall s':>9}{'import':>9}{'build':>9}{'1st step':>10}")
    for label, r in [("cold (empty Numba cache)", cold), ("warm (cache filled)", warm)] + [
            (f"cold, NUMBA_OPT={o['opt']}", o) for o in res["opt_levels"]]:
        print(f"{label:<28}{r['wall_s']:9.2f}{r['import_s']:9.2f}{r['build_s']:9.2f}"
              f"{r['first_step_s']:10.2f}")
    total = sum(cold["compile_s"].values())
    print(f"\nCold start: compile time per entry point ({cold['entry_points']} the scenario "
          f"calls; inclusive of the callees compiled for it), {total:.1f} s in all")
    for name, s in sorted(cold["compile_s"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<44}{s:7.2f} s  {s / total:6.1%}")
    common.print_targets(res["targets"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="the same measurements (there is nothing to shorten); the JSON "
                         "says 'quick'")
    ap.add_argument("--opt", type=int, nargs="*", default=[1],
                    help="also a cold start at these NUMBA_OPT levels (default: 1)")
    ap.add_argument("--json", type=Path, default=common.default_json("startup"))
    args = ap.parse_args(argv)
    res = common.new_result("startup", "quick" if args.quick else "full",
                            dict(scenario="built-in default", opt_levels=args.opt))
    with tempfile.TemporaryDirectory() as tmp:
        cache = tempfile.mkdtemp(prefix="numba-cold-", dir=tmp)
        log("cold start (compiling every kernel) ...")
        res["cold"] = measure(cache)
        log("warm start ...")
        res["warm"] = measure(cache)
        res["opt_levels"] = []
        for opt in args.opt:
            log(f"cold start at NUMBA_OPT={opt} ...")
            res["opt_levels"].append(dict(opt=opt, **measure(
                tempfile.mkdtemp(prefix=f"numba-opt{opt}-", dir=tmp), opt)))
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
