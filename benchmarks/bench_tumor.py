"""Engine-core benchmark: tumour-step throughput, compile / start-up time, memory per site,
and the same growth rule in Mesa 3.

Run: ``python benchmarks/bench_tumor.py [--quick] [--json PATH]`` (default JSON:
``benchmarks/results/tumor.json``). Prints a table and writes the JSON; see
``benchmarks/README.md`` for what each number means.

The tumour-only model (``scenarios/tumor_only.toml``: the default tumour biology with the
immune compartment, vessels and fields off) is what sections 1, 3 and 4 measure; the full
step with the immune compartment and fields is ``bench_full_step.py``'s.

1. Throughput, in cell-updates per second = (live tumour cells at the start of each timed
   step, summed over the timed steps) / wall seconds. Cases: 2D 1000x1000 with a disc of
   radius 309 (~300k cells) and 3D 100^3 with a ball of radius 41 (~289k cells), at 1 and
   2 Numba threads (``numba.set_num_threads``). The timed region of one repeat is exactly::

       simulator.engine.run(scenario, recorder, engine=engine, until_step=start + STEPS)
       recorder.close("complete")

   with a real ``simulator.output.recorder.Recorder`` writing an HDF5 file in a temporary directory:
   every step is recorded (``Engine.observe`` + the buffered time-series append, flushed
   every ``simulator.output.runfile.FLUSH_EVERY`` = 64 records and at close); no lattice snapshot falls
   inside the timed region (``output.snapshot_every_days = 0`` and the scenario's last step
   lies beyond it). Outside it: building the engine from a copy of a warmed-up state and
   creating the recorder (file header). Every repeat starts from the same state, so every
   repeat does the same work; thread counts are interleaved repeat by repeat so drifting
   background load hits both alike. Kernels are compiled (or loaded from cache) and the
   thread pool started before timing. A second set of rows times ``Engine.step()`` alone
   (no observe, no recorder) to show what recording costs.
2. Start-up, timed in the parent with ``time.perf_counter`` around ``subprocess.run``:
   ``python -c pass``; importing ``simulator.engine`` + ``simulator.output.runfile``; cold start (fresh
   empty ``NUMBA_CACHE_DIR``: import, build the built-in default scenario's engine, with
   the immune compartment and fields on, as ``tumorsim run`` does, record step 0 and run +
   record the first step: every kernel the engine uses is compiled); warm start
   (the same with the cache the cold run filled).
3. Memory: ``LatticeState.bytes_per_site`` (tumour-only state), and the peak RSS increase of
   a subprocess that builds the 2D 1000x1000 tumour-only engine and runs it with a recorder,
   per site.
4. Mesa: ``benchmarks/mesa_growth.py`` (the same rule with the same per-step probabilities)
   against tumorsim at 1 thread on a 200x200 lattice grown from a disc of radius 60.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402  (puts the repository root on sys.path)
from common import (FOREIGN_CPU_LIMIT, ForeignCpu, log, run_child, summarise,  # noqa: E402
                    verdict)

import numba  # noqa: E402
import numpy as np  # noqa: E402

from simulator import engine as engine_mod  # noqa: E402
from simulator.output import recorder as recorder_mod  # noqa: E402
from simulator.output import runfile as io_mod  # noqa: E402
from simulator.scenario import library_dir, load  # noqa: E402
from simulator.model.state import LatticeState  # noqa: E402

# The tumour-only model (no immune cells, vessels or fields): what this benchmark measures.
# The built-in default scenario has the immune compartment and fields on; its full step is
# measured by bench_full_step.py.
TUMOR_ONLY = library_dir() / "tumor_only.toml"
TARGETS = dict(per_thread_2d=40e6, thread_ratio_2d=1.7, cold_start_s=30.0, warm_start_s=2.0,
               state_bytes_per_site=16.0, mesa_ratio=100.0)
CASES = [  # name, dimensions, initial radius
    ("2D 1000x1000", [1000, 1000], 309),
    ("3D 100^3", [100, 100, 100], 41),
]
OPTIONAL = ("psutil", "mesa")   # optional packages whose versions the result records
MESA_CASE = dict(dimensions=[200, 200], radius=60)
# Debris clears with p = 1 - exp(-1000 * 0.25) = 1 in the step after death, the closest
# tumorsim gets to Mesa's immediate removal of a dead agent.
MESA_TUMORSIM_OVERRIDES = ["tumor.dead_clearance_rate_per_day=1000.0"]

MODES = dict(
    quick=dict(steps=8, repeats=2, warm_steps=2, mesa_steps=5, mesa_repeats=1, cold_runs=1,
               warm_runs=1, import_runs=1, memory_steps=3),
    # 256 Mesa-case steps: a real run records thousands of steps, and a 64-step window
    # charged the file's final flush and close to too few steps (71x then, 135x now)
    full=dict(steps=64, repeats=5, warm_steps=3, mesa_steps=256, mesa_repeats=3, cold_runs=2,
              warm_runs=3, import_runs=3, memory_steps=20),
)


# ---------------------------------------------------------------------- throughput
def bench_scenario(dimensions, radius, extra=()):
    """The tumour-only model (``scenarios/tumor_only.toml``: the default tumour biology
    without immune cells, vessels or fields) on the given lattice; snapshots only at step 0
    and at the end of a 1000-day run (far beyond any timed step), every step recorded."""
    return load(TUMOR_ONLY, [f"simulation.dimensions={list(dimensions)}",
                             f"initial.tumor_radius_sites={radius}",
                             "simulation.duration_days=1000", "output.snapshot_every_days=0",
                         "output.record_every_steps=1", *extra])


def warmed_state(scenario, warm_steps):
    engine_mod.set_threads(1)
    engine = engine_mod.Engine(scenario)
    for _ in range(warm_steps):      # compiles (or loads) every kernel; cells leave the
        engine.step()                # perfectly packed start so holes and debris exist
        engine.observe()
    return engine.state


def timed_recorded(scenario, state, steps, path):
    """One repeat: wall seconds and cell-updates of ``steps`` recorded steps."""
    engine = engine_mod.Engine(scenario, state=state.copy())
    start_cells = engine.observe()["tumor_cells"]
    start_step = engine.state.step
    recorder = recorder_mod.Recorder(path, scenario, n_clones=1 << engine.n_targets)
    gc.collect()
    t0 = time.perf_counter()
    engine_mod.run(scenario, recorder, engine=engine, until_step=start_step + steps)
    recorder.close("complete")
    wall = time.perf_counter() - t0
    series = io_mod.read_timeseries(path)["tumor_cells"]
    Path(path).unlink()
    if len(series) != steps:
        raise RuntimeError(f"expected {steps} records, found {len(series)}")
    updates = int(start_cells + series[:-1].sum())
    return wall, updates, int(series[-1])


def timed_step_only(scenario, state, steps):
    engine = engine_mod.Engine(scenario, state=state.copy())
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(steps):
        engine.step()
    wall = time.perf_counter() - t0
    return wall


def bench_throughput(cfg, threads_list, tmp: Path):
    rows, checks = [], {}
    for name, dims, radius in CASES:
        log(f"throughput: {name} (radius {radius}) ...")
        scenario = bench_scenario(dims, radius)
        state = warmed_state(scenario, cfg["warm_steps"])
        walls = {t: [] for t in threads_list}
        step_walls = {t: [] for t in threads_list}
        results = {}
        for t in threads_list:              # start the thread pool at this count
            engine_mod.set_threads(t)
            timed_step_only(scenario, state, 1)
        for r in range(cfg["repeats"]):
            for t in threads_list:
                engine_mod.set_threads(t)
                wall, updates, final = timed_recorded(scenario, state, cfg["steps"],
                                                      tmp / f"tp-{t}-{r}.h5")
                walls[t].append(wall)
                results.setdefault(t, []).append((updates, final))
                step_walls[t].append(timed_step_only(scenario, state, cfg["steps"]))
        start_cells = int(np.count_nonzero(state.kind == 1))
        for t in threads_list:
            updates, final = results[t][0]   # every repeat does the same work (checked)
            row = dict(case=name, dimensions=dims, radius_sites=radius, threads=t,
                       identical_across_repeats=len(set(results[t])) == 1,
                       steps=cfg["steps"], repeats=cfg["repeats"], start_step=state.step,
                       cells_at_start=start_cells, cells_at_end=final, cell_updates=updates,
                       recorded=summarise(walls[t], updates, cfg["steps"]),
                       step_only=summarise(step_walls[t], updates, cfg["steps"]))
            row["updates_per_s_per_thread_best"] = row["recorded"]["updates_per_s_best"] / t
            rows.append(row)
        checks[name] = len({outcome for t in threads_list for outcome in results[t]}) == 1
    engine_mod.set_threads(1)
    return rows, checks


def thread_ratios(rows):
    out = {}
    for name, _, _ in CASES:
        by_t = {r["threads"]: r for r in rows if r["case"] == name}
        if 1 in by_t and 2 in by_t:
            out[name] = {kind: {stat: by_t[2][kind][f"updates_per_s_{stat}"]
                                / by_t[1][kind][f"updates_per_s_{stat}"]
                                for stat in ("best", "median")}
                         for kind in ("recorded", "step_only")}
    return out


# ---------------------------------------------------------------------- start-up
CHILD_FIRST_STEP = common.first_step_child()

CHILD_IMPORT = "import simulator.engine, simulator.output.runfile"


def bench_startup(cfg, tmp: Path):
    log("start-up: interpreter, import, cold and warm first step ...")
    out = {}
    out["python_pass_s"] = [run_child("pass")[0] for _ in range(cfg["import_runs"])]
    warm_dir = None
    cold = []
    for i in range(cfg["cold_runs"]):
        cache = tempfile.mkdtemp(prefix=f"numba-cold-{i}-", dir=tmp)
        wall, detail = run_child(CHILD_FIRST_STEP, {"NUMBA_CACHE_DIR": cache})
        cold.append(dict(wall_s=wall, **detail))
        warm_dir = warm_dir or cache
    out["cold"] = cold
    out["warm"] = [dict(zip(("wall_s",), (w,)), **d) for w, d in
                   (run_child(CHILD_FIRST_STEP, {"NUMBA_CACHE_DIR": warm_dir})
                    for _ in range(cfg["warm_runs"]))]
    out["import_s"] = [run_child(CHILD_IMPORT, {"NUMBA_CACHE_DIR": warm_dir})[0]
                       for _ in range(cfg["import_runs"])]
    out["cold_best_s"] = min(c["wall_s"] for c in cold)
    out["warm_best_s"] = min(w["wall_s"] for w in out["warm"])
    out["warm_median_s"] = statistics.median(w["wall_s"] for w in out["warm"])
    out["import_best_s"] = min(out["import_s"])
    out["python_pass_best_s"] = min(out["python_pass_s"])
    return out


# ---------------------------------------------------------------------- memory
CHILD_MEMORY = r"""
import json, resource, sys, tempfile
from pathlib import Path
from simulator import engine as E
from simulator.output.recorder import Recorder
from simulator.scenario import library_dir, load

TUMOR_ONLY = library_dir() / "tumor_only.toml"

def status_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

def peak_kb():
    hwm = status_kb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

STEPS = int(sys.argv[1])
E.set_threads(1)
tiny = load(TUMOR_ONLY, ["simulation.dimensions=[20,20]", "initial.tumor_radius_sites=3"])
e = E.Engine(tiny); e.step(); e.observe()       # load every kernel before measuring
del e
scenario = load(TUMOR_ONLY, ["simulation.dimensions=[1000,1000]",
                             "initial.tumor_radius_sites=309",
                             f"simulation.duration_days={STEPS * 0.25}",
                             "output.snapshot_every_days=0"])
base = status_kb("VmRSS")
resettable = reset_peak()
engine = E.Engine(scenario)
build_peak = peak_kb()
after_build = status_kb("VmRSS")
reset_peak()
with tempfile.TemporaryDirectory() as tmp:
    recorder = Recorder(Path(tmp) / "mem.h5", scenario, n_clones=1 << engine.n_targets)
    E.run(scenario, recorder, engine=engine)
    recorder.close("complete")
    run_peak = peak_kb()
print(json.dumps(dict(base_rss_kb=base, build_peak_kb=build_peak, after_build_rss_kb=after_build,
                      run_peak_kb=run_peak, peak_resettable=resettable,
                      lifetime_peak_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      steps=engine.state.step, state_bytes_per_site=engine.state.bytes_per_site,
                      cells=int((engine.state.kind == 1).sum()))))
"""


def bench_memory(cfg):
    log("memory: 2D 1000x1000 subprocess ...")
    states = {}
    for name, dims, _ in CASES:
        states[name] = float(LatticeState.empty(dims).bytes_per_site)
    out = dict(state_bytes_per_site=states)
    n_sites = 1000 * 1000
    _, d = run_child(CHILD_MEMORY, args=[str(cfg["memory_steps"])])
    out["subprocess"] = d

    def per_site(kb):
        return (kb - d["base_rss_kb"]) * 1024.0 / n_sites

    out["build_peak_increase_bytes_per_site"] = per_site(d["build_peak_kb"])
    out["resident_after_build_bytes_per_site"] = per_site(d["after_build_rss_kb"])
    out["run_peak_increase_bytes_per_site"] = per_site(d["run_peak_kb"])
    out["peak_increase_bytes_per_site"] = max(out["build_peak_increase_bytes_per_site"],
                                              out["run_peak_increase_bytes_per_site"])
    out["definition"] = ("RSS (VmRSS / VmHWM from /proc/self/status, peak reset through "
                         "/proc/self/clear_refs) above the baseline taken after imports and a "
                         "tiny warm-up run, divided by the 1e6 interior sites; 'build' = "
                         "Engine(scenario) incl. seeding the radius-309 disc; 'run' = "
                         "engine.run with a Recorder for the given steps, snapshots at step 0 "
                         "and at the end")
    return out


# ---------------------------------------------------------------------- mesa
def bench_mesa(cfg, tmp: Path):
    log("mesa: same rule, 200x200 from a disc of radius 60 ...")
    try:
        sys.path.insert(0, str(HERE))
        import mesa_growth
    except ImportError as exc:
        return dict(skipped=f"Mesa not available ({exc}); install with pip install 'mesa>=3'")
    dims, radius = MESA_CASE["dimensions"], MESA_CASE["radius"]
    scenario = bench_scenario(dims, radius, MESA_TUMORSIM_OVERRIDES)
    rates = engine_mod.tumor_rates(scenario)
    p_die, p_divide = float(rates.p_die[0]), float(rates.p_divide[0])
    steps = cfg["mesa_steps"]

    mesa_walls, mesa_updates, mesa_cells = [], None, None
    for _ in range(cfg["mesa_repeats"]):
        model = mesa_growth.GrowthModel(dims[0], dims[1], radius, p_die, p_divide, seed=1)
        model.step()                 # untimed, as tumorsim's state starts one step in
        model.tumor_cells = model.tumor_cells[-1:]
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(steps):
            model.step()
        mesa_walls.append(time.perf_counter() - t0)
        mesa_updates = sum(model.tumor_cells[:-1])
        mesa_cells = (model.tumor_cells[0], model.tumor_cells[-1])

    engine_mod.set_threads(1)
    state = warmed_state(scenario, 1)
    walls, step_walls = [], []
    for r in range(max(cfg["mesa_repeats"], cfg["repeats"])):
        wall, updates, final = timed_recorded(scenario, state, steps, tmp / f"mesa-{r}.h5")
        walls.append(wall)
        step_walls.append(timed_step_only(scenario, state, steps))
    n_sites = dims[0] * dims[1]
    tumorsim = dict(recorded=summarise(walls, updates, steps),
                    step_only=summarise(step_walls, updates, steps),
                    cells_at_start=int(np.count_nonzero(state.kind == 1)), cells_at_end=final,
                    cell_updates=updates, threads=1)
    mesa = dict(summarise(mesa_walls, mesa_updates, steps), cells_at_start=mesa_cells[0],
                cells_at_end=mesa_cells[1], cell_updates=mesa_updates)
    return dict(dimensions=dims, radius_sites=radius, steps=steps, p_die=p_die,
                p_divide=p_divide, fill_at_start=mesa_cells[0] / n_sites,
                tumorsim_overrides=MESA_TUMORSIM_OVERRIDES, mesa=mesa, tumorsim=tumorsim,
                ratio_best=tumorsim["recorded"]["updates_per_s_best"]
                / mesa["updates_per_s_best"],
                ratio_median=tumorsim["recorded"]["updates_per_s_median"]
                / mesa["updates_per_s_median"],
                ratio_step_only_best=tumorsim["step_only"]["updates_per_s_best"]
                / mesa["updates_per_s_best"],
                ratio_step_only_median=tumorsim["step_only"]["updates_per_s_median"]
                / mesa["updates_per_s_median"])


# ---------------------------------------------------------------------- report
def build_targets(res):
    t, out = TARGETS, []
    rows = {(r["case"], r["threads"]): r for r in res["throughput"]["rows"]}
    one = rows.get(("2D 1000x1000", 1))
    if one:
        v = one["recorded"]["updates_per_s_best"]
        out.append(dict(name="2D updates/s per thread (1 thread, recorded, best)", value=v,
                        target=f">= {t['per_thread_2d'] / 1e6:.0f} M/s",
                        verdict=verdict(v, t["per_thread_2d"])))
    two = rows.get(("2D 1000x1000", 2))
    if two:
        v = two["recorded"]["updates_per_s_best"] / 2
        out.append(dict(name="2D updates/s per thread (2 threads, recorded, best)", value=v,
                        target=f">= {t['per_thread_2d'] / 1e6:.0f} M/s",
                        verdict=verdict(v, t["per_thread_2d"])))
    ratio = res["throughput"]["thread_ratios"].get("2D 1000x1000")
    if ratio:
        v = ratio["recorded"]["best"]
        out.append(dict(name="2D 2-thread / 1-thread (recorded, best)", value=v,
                        target=f">= {t['thread_ratio_2d']}x",
                        verdict=verdict(v, t["thread_ratio_2d"])))
    su = res.get("startup")
    if su and "error" not in su:
        out.append(dict(name="cold start to first step (s)", value=su["cold_best_s"],
                        target=f"<= {t['cold_start_s']:.0f} s",
                        verdict=verdict(su["cold_best_s"], t["cold_start_s"], False)))
        out.append(dict(name="warm start to first step (s)", value=su["warm_best_s"],
                        target=f"<= {t['warm_start_s']:.0f} s",
                        verdict=verdict(su["warm_best_s"], t["warm_start_s"], False)))
    mem = res.get("memory")
    if mem:
        v = max(mem["state_bytes_per_site"].values())
        out.append(dict(name="state bytes per site (tumour-only)", value=v,
                        target=f"<= {t['state_bytes_per_site']:.0f} B",
                        verdict=verdict(v, t["state_bytes_per_site"], False)))
    mesa = res.get("mesa")
    if mesa and "ratio_best" in mesa:
        out.append(dict(name="tumorsim (recorded) / Mesa updates/s (200x200, 1 thr)",
                        value=mesa["ratio_best"], target=f">= {t['mesa_ratio']:.0f}x",
                        verdict=verdict(mesa["ratio_best"], t["mesa_ratio"])))
    return out


def two_thread_note(res) -> str:
    """Whether the 2-thread verdicts can be trusted: the CPU other processes used during
    the throughput section is the direct evidence; the load average at start lags (it
    still counts work that finished seconds ago) and is the fallback."""
    foreign = res["throughput"].get("foreign_cpu_cores")
    if foreign is not None and foreign > FOREIGN_CPU_LIMIT:
        return f"  (others used {foreign:.2f} cores meanwhile: unreliable)"
    if res["busy_at_start"]:
        if foreign is None:
            return "  (machine busy at start: unreliable)"
        return f"  (load high at start, but others used only {foreign:.2f} cores meanwhile)"
    return ""


fmt_value = common.fmt_value


def print_report(res):
    cfg = res["config"]
    p = print
    common.print_header(res, "tumorsim engine-core benchmark", optional=OPTIONAL)

    tp = res["throughput"]
    p("")
    p(f"1. Tumour-step throughput: best / median of {cfg['repeats']} repeats x {cfg['steps']} "
      "steps; 'recorded' = engine.run + Recorder (every step recorded, no snapshots) + "
      "recorder.close(); 'step only' = Engine.step() alone")
    head = (f"{'case':<14}{'thr':>4}{'cells':>9}{'ms/step':>9}{'med':>8}"
            f"{'Mupd/s':>9}{'med':>8}{'/thread':>9}{'step-only':>11}{'med':>8}")
    p(head)
    p("-" * len(head))
    for r in tp["rows"]:
        rec, so = r["recorded"], r["step_only"]
        p(f"{r['case']:<14}{r['threads']:>4}{r['cells_at_start']:>9}"
          f"{rec['ms_per_step_best']:>9.2f}{rec['ms_per_step_median']:>8.2f}"
          f"{rec['updates_per_s_best'] / 1e6:>9.1f}{rec['updates_per_s_median'] / 1e6:>8.1f}"
          f"{r['updates_per_s_per_thread_best'] / 1e6:>9.1f}"
          f"{so['updates_per_s_best'] / 1e6:>11.1f}{so['updates_per_s_median'] / 1e6:>8.1f}")
    for name, ratio in tp["thread_ratios"].items():
        p(f"  {name}: 2 threads / 1 thread = {ratio['recorded']['best']:.2f}x best, "
          f"{ratio['recorded']['median']:.2f}x median (step only "
          f"{ratio['step_only']['best']:.2f}x / {ratio['step_only']['median']:.2f}x); "
          f"same cells in every repeat at 1 and 2 threads: "
          f"{'yes' if tp['identical_across_threads'][name] else 'NO'}")
    if tp.get("foreign_cpu_cores") is not None:
        p(f"  CPU used by other processes during this section: "
          f"{tp['foreign_cpu_cores']:.2f} cores on average")

    su = res["startup"]
    p("")
    p("2. Start-up (wall time from the parent around subprocess.run)")
    if "error" in su:
        p(f"  failed: {su['error']}")
    else:
        c = min(su["cold"], key=lambda x: x["wall_s"])
        p(f"  python -c pass                                   {su['python_pass_best_s']:7.2f} s")
        p(f"  import simulator.engine + simulator.output.runfile           {su['import_best_s']:7.2f} s")
        p(f"  cold (empty NUMBA_CACHE_DIR) -> first step done  {su['cold_best_s']:7.2f} s   "
          f"(in child: import {c['import_s']:.2f}, build {c['build_s']:.2f}, "
          f"first step {c['first_step_s']:.2f}; {len(c['compiled_kernels'])} kernels compiled)")
        w = min(su["warm"], key=lambda x: x["wall_s"])
        p(f"  warm (filled cache)          -> first step done  {su['warm_best_s']:7.2f} s   "
          f"(in child: import {w['import_s']:.2f}, build {w['build_s']:.2f}, "
          f"first step {w['first_step_s']:.2f}); median {su['warm_median_s']:.2f} s")
        p(f"  first step = default scenario {c['dimensions']}: build engine, record step 0 "
          "(with its snapshot), step, record step 1, close file")

    mem = res["memory"]
    p("")
    p("3. Memory")
    p("  state bytes per site (LatticeState.bytes_per_site, tumour-only): "
      + ", ".join(f"{k} {v:.2f}" for k, v in mem["state_bytes_per_site"].items()))
    if "subprocess" in mem:
        d = mem["subprocess"]
        p(f"  2D 1000x1000 subprocess, peak RSS increase per site over the post-import "
          f"baseline: {mem['peak_increase_bytes_per_site']:.2f} B"
          + ("" if d["peak_resettable"] else " (peak not resettable: lifetime ru_maxrss)"))
        p(f"    peak while building the engine {mem['build_peak_increase_bytes_per_site']:.2f} B"
          f", resident after building {mem['resident_after_build_bytes_per_site']:.2f} B, "
          f"peak while running {d['steps']} recorded steps (+ final snapshot) "
          f"{mem['run_peak_increase_bytes_per_site']:.2f} B")

    mesa = res["mesa"]
    p("")
    p("4. Mesa 3 comparison (same rule and per-step probabilities, 200x200, 1 thread)")
    if "skipped" in mesa:
        p(f"  skipped: {mesa['skipped']}")
    elif "error" in mesa:
        p(f"  failed: {mesa['error']}")
    else:
        ms, ts = mesa["mesa"], mesa["tumorsim"]
        p(f"  disc radius {mesa['radius_sites']} ({mesa['fill_at_start']:.0%} of sites), "
          f"{mesa['steps']} steps, p_die {mesa['p_die']:.4f}, p_divide {mesa['p_divide']:.4f}")
        p(f"  mesa {res['versions']['mesa']}: {ms['cells_at_start']} -> {ms['cells_at_end']} "
          f"cells, {ms['updates_per_s_best'] / 1e6:.3f} M updates/s best, "
          f"{ms['updates_per_s_median'] / 1e6:.3f} median")
        p(f"  tumorsim:   {ts['cells_at_start']} -> {ts['cells_at_end']} cells, "
          f"{ts['recorded']['updates_per_s_best'] / 1e6:.1f} M updates/s best recorded, "
          f"{ts['recorded']['updates_per_s_median'] / 1e6:.1f} median "
          f"(step only {ts['step_only']['updates_per_s_best'] / 1e6:.1f})")
        p(f"  ratio tumorsim / Mesa: {mesa['ratio_best']:.0f}x best, "
          f"{mesa['ratio_median']:.0f}x median with tumorsim recording to HDF5 (Mesa keeps "
          f"a list of counts); step only {mesa['ratio_step_only_best']:.0f}x best, "
          f"{mesa['ratio_step_only_median']:.0f}x median")

    p("")
    p("Targets")
    for t in res["targets"]:
        note = ""
        if "2 threads" in t["name"] or "2-thread" in t["name"]:
            note = two_thread_note(res)
        p(f"  {t['name']:<52}{fmt_value(t['value']):>10}  {t['target']:<11}{t['verdict']}{note}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: few steps and repeats")
    ap.add_argument("--json", type=Path, default=common.default_json("tumor"),
                    help="where to write the results (default benchmarks/results/tumor.json)")
    ap.add_argument("--repeats", type=int, help="override the number of repeats")
    ap.add_argument("--steps", type=int, help="override the timed steps per repeat")
    ap.add_argument("--no-mesa", action="store_true", help="skip the Mesa comparison")
    args = ap.parse_args(argv)

    mode = "quick" if args.quick else "full"
    cfg = dict(MODES[mode])
    if args.repeats:
        cfg["repeats"] = args.repeats
    if args.steps:
        cfg["steps"] = cfg["mesa_steps"] = args.steps

    res = common.new_result("tumor", mode, cfg, optional=OPTIONAL)
    res["scenario"] = dict(throughput_and_memory=str(TUMOR_ONLY.name),
                           startup="built-in default (load(None))")
    max_threads = numba.config.NUMBA_NUM_THREADS
    threads_list = [t for t in (1, 2) if t <= max_threads]
    if 2 not in threads_list:
        common.warn(res, f"only {max_threads} Numba thread available: no 2-thread rows")

    with tempfile.TemporaryDirectory(prefix="bench-tumor-") as tmpdir:
        tmp = Path(tmpdir)
        with ForeignCpu() as foreign:
            rows, same = bench_throughput(cfg, threads_list, tmp)
        res["threading_layer"] = numba.threading_layer()
        res["throughput"] = dict(
            definition="cell-updates/s = sum over timed steps of the live tumour cells at "
                       "the start of the step / wall seconds",
            timed_region="engine.run(scenario, Recorder, until_step=start+steps) + "
                         "recorder.close(); every step recorded (observe + buffered HDF5 "
                         "append, flushed every 64 records and at close); no snapshots in "
                         "the timed region; step_only: Engine.step() x steps",
            rows=rows, thread_ratios=thread_ratios(rows), identical_across_threads=same,
            foreign_cpu_cores=foreign.cores)
        common.check_foreign(res, foreign.cores, "the throughput section")
        if args.no_mesa:
            res["mesa"] = dict(skipped="--no-mesa given")
        else:
            try:
                with ForeignCpu() as foreign:
                    res["mesa"] = bench_mesa(cfg, tmp)
                res["mesa"]["foreign_cpu_cores"] = foreign.cores
            except Exception as exc:  # noqa: BLE001 - report, do not fail the benchmark
                res["mesa"] = dict(error=f"{type(exc).__name__}: {exc}")
        try:
            res["memory"] = bench_memory(cfg)
        except Exception as exc:  # noqa: BLE001
            res["memory"] = dict(state_bytes_per_site={
                n: float(LatticeState.empty(d).bytes_per_site) for n, d, _ in CASES},
                error=f"{type(exc).__name__}: {exc}")
        try:
            res["startup"] = bench_startup(cfg, tmp)
        except Exception as exc:  # noqa: BLE001
            res["startup"] = dict(error=f"{type(exc).__name__}: {exc}")

    common.finish_result(res)
    res["targets"] = build_targets(res)
    print_report(res)
    common.write_json(res, args.json)


if __name__ == "__main__":
    main()
