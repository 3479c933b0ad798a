"""Study benchmark: a regimen comparison (arms x replicates, common random numbers) run with
1 and with 2 workers, then opening the finished study and drawing every study figure.

Run: ``python benchmarks/bench_study.py [--quick] [--json PATH]`` (default JSON:
``benchmarks/results/study.json``). See ``benchmarks/README.md``.

Study: the library arms ``untreated``, ``targeted_continuous``, ``anti_pd1`` and
``combination_concurrent`` (all inherit ``melanoma.toml``: 200x200, 60 days untreated, then
240 days of follow-up) x 20 replicates. ``--arms`` and ``--replicates`` change them,
``--set key=value`` adds scenario overrides (applied to every arm); ``--quick`` is 2 arms x 2
replicates with a short horizon (treatment from day 10, 20 days in all).

Timed, per worker count (default 1 then 2): ``simulator.study.comparison.compare(arms, replicates,
DIR, workers=N, overrides=..., figures=False)`` into a fresh temporary directory, called in
a fresh Python child process (the same cold start for every worker count, as with
``tumorsim compare``): the wall time of the ``compare`` call inside the child, and of the
child as a whole from the parent. ``compare`` runs each worker with
``simulator.study.workers.threads_per_worker(N)`` Numba threads: on a 2-core machine ``--workers 1``
is one process at 2 threads and ``--workers 2`` two processes at 1 thread (``--workers
1x1`` adds one process at 1 thread, through ``NUMBA_NUM_THREADS=1``). Before timing, a
tiny compare fills the Numba cache so no timed child compiles. The studies' ``summary.csv``
files are compared (the paths column aside): results must not depend on the worker count.

Figures, in this process after ``import simulator.output.plotting`` (timed separately):
``simulator.output.plotting.study_figures(DIR)`` (opens ``study.h5`` / ``summary.csv`` and the run
files it needs, draws and saves every figure of ``STUDY_FIGURES`` as PNG and SVG), the
headline; ``load_study(DIR)`` alone; and, for information, each figure's draw and save
(to memory) separately.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402  (puts the repository root on sys.path)
from common import ForeignCpu, log  # noqa: E402

from simulator import scenario as scenario_mod  # noqa: E402
from simulator import study as study_mod  # noqa: E402

TARGETS = dict(two_workers_s=15 * 60.0, speedup=1.8, figures_s=30.0)
DEFAULT_ARMS = ("untreated.toml", "targeted_continuous.toml", "anti_pd1.toml",
                "combination_concurrent.toml")
QUICK_OVERRIDES = ("simulation.treatment_start_day=10", "simulation.duration_days=20")
WARMUP_OVERRIDES = ("simulation.treatment_start_day=1", "simulation.duration_days=2")
MODES = dict(
    full=dict(arms=list(DEFAULT_ARMS), replicates=20, overrides=[]),
    quick=dict(arms=list(DEFAULT_ARMS[:2]), replicates=2, overrides=list(QUICK_OVERRIDES)),
)

CHILD_COMPARE = r"""
import json, sys, time
t0 = time.perf_counter()
from simulator import study
t_import = time.perf_counter()
a = json.loads(sys.argv[1])
report = study.compare(a["arms"], a["replicates"], a["directory"], workers=a["workers"],
                       overrides=a["overrides"], figures=False)
t_done = time.perf_counter()
import numba
statuses = {}
for o in report.outcomes:
    statuses[o.status] = statuses.get(o.status, 0) + 1
print(json.dumps(dict(import_s=t_import - t0, compare_s=t_done - t_import,
                      runs=len(report.outcomes), statuses=statuses,
                      threads_per_worker=min(study.threads_per_worker(a["workers"]),
                                             numba.config.NUMBA_NUM_THREADS),
                      failed=[f"{o.arm}/{o.replicate}: {o.error}" for o in report.failed])))
"""


def arm_paths(names) -> list[str]:
    """Library names (``untreated`` or ``untreated.toml``) or paths to scenario files."""
    out = []
    for name in names:
        path = Path(name)
        if not path.exists():
            path = scenario_mod.library_dir() / (name if name.endswith(".toml")
                                                 else f"{name}.toml")
        out.append(str(path))
    return out


def parse_workers(text: str) -> list[tuple[int, int | None]]:
    """``"1,2,1x1"`` -> [(1, None), (2, None), (1, 1)]: worker count and, after ``x``, a
    forced Numba thread count per worker (``NUMBA_NUM_THREADS`` in the child)."""
    out = []
    for item in text.split(","):
        item = item.strip().lower()
        if not item:
            continue
        workers, _, threads = item.partition("x")
        out.append((int(workers), int(threads) if threads else None))
    return out


def spec_name(workers: int, threads: int | None) -> str:
    return f"{workers}" if threads is None else f"{workers}x{threads}"


def run_compare(arms, replicates, directory, workers, overrides, threads=None) -> dict:
    args = json.dumps(dict(arms=arms, replicates=replicates, directory=str(directory),
                           workers=workers, overrides=list(overrides)))
    env = {"NUMBA_NUM_THREADS": str(threads)} if threads else None
    with ForeignCpu(include_children=True) as foreign:
        wall, detail = common.run_child(CHILD_COMPARE, env_extra=env, args=[args],
                                        timeout=24 * 3600)
    return dict(workers=workers, forced_threads=threads, spec=spec_name(workers, threads),
                child_wall_s=wall, foreign_cpu_cores=foreign.cores, **detail)


def summary_rows(directory: Path) -> list[dict]:
    """summary.csv without the columns that name files (they differ between directories)."""
    with open(directory / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in row.items() if "path" not in k and "file" not in k}
            for row in rows]


def time_figures(directory: Path) -> dict:
    """Import, load_study, study_figures, and each figure's draw / save (informational)."""
    out = {}
    t0 = time.perf_counter()
    import matplotlib
    from simulator.output import plotting
    out["import_plotting_s"] = time.perf_counter() - t0
    out["formats"] = list(plotting.FORMATS)
    t0 = time.perf_counter()
    study = plotting.load_study(directory)
    out["load_study_s"] = time.perf_counter() - t0
    figures_dir = directory / "figures-bench"
    t0 = time.perf_counter()
    written = plotting.study_figures(directory, out_dir=figures_dir)
    out["study_figures_s"] = time.perf_counter() - t0
    out["files_written"] = len(written)
    out["bytes_written"] = sum(p.stat().st_size for p in written)
    per_figure = {}
    for stem, draw in plotting.STUDY_FIGURES.items():
        with matplotlib.rc_context(plotting._STYLE):
            t0 = time.perf_counter()
            fig = draw(study)
            t_draw = time.perf_counter() - t0
            saves = {}
            for fmt in plotting.FORMATS:
                t0 = time.perf_counter()
                fig.savefig(io.BytesIO(), format=fmt, dpi=plotting.DPI, bbox_inches="tight")
                saves[fmt] = time.perf_counter() - t0
        per_figure[stem] = dict(draw_s=t_draw, save_s=saves)
    out["per_figure"] = per_figure
    return out


# ---------------------------------------------------------------------- report
def build_targets(res):
    out = []
    by_w = {r["spec"]: r for r in res["studies"]}
    if "2" in by_w:
        out.append(common.target_row(
            f"study with 2 workers, wall s ({res['config']['study']})", by_w["2"]["compare_s"],
            TARGETS["two_workers_s"], f"<= {TARGETS['two_workers_s'] / 60:.0f} min", False))
    if res.get("speedup") is not None:
        out.append(common.target_row("2 workers vs 1 worker, speed-up", res["speedup"],
                                     TARGETS["speedup"], f">= {TARGETS['speedup']}x"))
    fig = res.get("figures")
    if fig and "study_figures_s" in fig:
        out.append(common.target_row("open study + draw every figure (s)",
                                     fig["study_figures_s"], TARGETS["figures_s"],
                                     f"<= {TARGETS['figures_s']:.0f} s", False))
    return out


def print_report(res):
    common.print_header(res, "tumorsim study benchmark")
    cfg = res["config"]
    print("")
    print(f"Study: {cfg['study']}; arms {', '.join(Path(a).name for a in cfg['arm_paths'])}; "
          f"overrides {cfg['overrides'] or 'none'}")
    head = (f"  {'workers':>7}{'threads/w':>10}{'runs':>6}{'failed':>8}{'compare s':>11}"
            f"{'min':>7}{'child s':>9}{'import s':>10}{'others CPU':>13}")
    print(head)
    print("  " + "-" * (len(head) - 2))
    for r in res["studies"]:
        fc = r.get("foreign_cpu_cores")
        print(f"  {r['spec']:>7}{r['threads_per_worker']:>10}{r['runs']:>6}"
              f"{len(r['failed']):>8}{r['compare_s']:>11.1f}{r['compare_s'] / 60:>7.1f}"
              f"{r['child_wall_s']:>9.1f}{r['import_s']:>10.2f}"
              + (f"{fc:>12.2f}c" if fc is not None else f"{'-':>13}"))
        for line in r["failed"][:5]:
            print(f"      failed: {line}")
    if res.get("speedup") is not None:
        print(f"  speed-up 2 workers / 1 worker (compare wall): {res['speedup']:.2f}x")
    if res.get("speedup_vs_1x1") is not None:
        print(f"  speed-up 2 workers / 1 worker at 1 thread (1x1): "
              f"{res['speedup_vs_1x1']:.2f}x")
    if res.get("same_summary") is not None:
        print(f"  summary.csv identical for every worker count (paths aside): "
              f"{'yes' if res['same_summary'] else 'NO'}")
    fig = res.get("figures", {})
    print("")
    if "error" in fig:
        print(f"Figures: failed: {fig['error']}")
    elif fig:
        print(f"Figures ({', '.join(fig['formats'])}): import simulator.output.plotting "
              f"{fig['import_plotting_s']:.2f} s; load_study {fig['load_study_s']:.2f} s; "
              f"study_figures {fig['study_figures_s']:.2f} s ({fig['files_written']} files, "
              f"{fig['bytes_written'] / 1e6:.1f} MB)")
        print(f"  {'figure':<14}{'draw s':>8}" + "".join(f"{fmt + ' s':>8}"
                                                         for fmt in fig["formats"]))
        for stem, t in fig["per_figure"].items():
            print(f"  {stem:<14}{t['draw_s']:>8.2f}"
                  + "".join(f"{t['save_s'][fmt]:>8.2f}" for fmt in fig["formats"]))
    common.print_targets(res["targets"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2 arms x 2 replicates, 20-day horizon")
    ap.add_argument("--json", type=Path, default=common.default_json("study"),
                    help="where to write the results (default benchmarks/results/study.json)")
    ap.add_argument("--replicates", type=int, help="replicates per arm")
    ap.add_argument("--arms", help="comma-separated arm files (library names or paths)")
    ap.add_argument("--workers", default="1,2",
                    help="comma-separated worker counts to time (default 1,2); NxT forces T "
                         "Numba threads per worker (e.g. 1x1: one worker at one thread)")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    metavar="KEY=VALUE", help="scenario override for every arm (repeatable)")
    ap.add_argument("--keep", type=Path, metavar="DIR",
                    help="keep the study directories under DIR (default: temporary)")
    ap.add_argument("--no-figures", action="store_true", help="skip the figure timing")
    args = ap.parse_args(argv)

    mode = "quick" if args.quick else "full"
    cfg = dict(MODES[mode])
    if args.arms:
        cfg["arms"] = [a.strip() for a in args.arms.split(",") if a.strip()]
    if args.replicates:
        cfg["replicates"] = args.replicates
    cfg["overrides"] = list(cfg["overrides"]) + list(args.overrides)
    specs = parse_workers(args.workers)
    cfg["workers"] = [spec_name(*spec) for spec in specs]
    cfg["arm_paths"] = arm_paths(cfg["arms"])
    cfg["study"] = f"{len(cfg['arms'])} arms x {cfg['replicates']} replicates"
    study_mod.load_arms(cfg["arm_paths"], cfg["overrides"])    # fail early on bad input

    res = common.new_result("study", mode, cfg, optional=("psutil", "matplotlib", "lifelines"))
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="bench-study-", dir=args.keep)) if args.keep \
        else Path(tempfile.mkdtemp(prefix="bench-study-"))
    try:
        log("filling the Numba cache (tiny compare) ...")
        run_compare(cfg["arm_paths"][:1], 1, base / "warmup", 1, list(WARMUP_OVERRIDES),
                    threads=1)
        res["studies"], dirs = [], {}
        for workers, threads in specs:
            name = spec_name(workers, threads)
            dirs[name] = base / f"workers-{name}"
            log(f"compare: {cfg['study']}, workers {name} ...")
            row = run_compare(cfg["arm_paths"], cfg["replicates"], dirs[name], workers,
                              cfg["overrides"], threads)
            res["studies"].append(row)
            common.check_foreign(res, row["foreign_cpu_cores"], f"the study with workers {name}")
            if row["failed"]:
                common.warn(res, f"{len(row['failed'])} runs failed with workers {name}: "
                                 f"{row['failed'][0]}")
        by_w = {r["spec"]: r for r in res["studies"]}
        res["speedup"] = (by_w["1"]["compare_s"] / by_w["2"]["compare_s"]
                          if "1" in by_w and "2" in by_w else None)
        res["speedup_vs_1x1"] = (by_w["1x1"]["compare_s"] / by_w["2"]["compare_s"]
                                 if "1x1" in by_w and "2" in by_w else None)
        summaries = [summary_rows(d) for d in dirs.values()]
        res["same_summary"] = all(s == summaries[0] for s in summaries) \
            if len(summaries) > 1 else None
        if not args.no_figures:
            log("figures ...")
            try:
                res["figures"] = time_figures(dirs[spec_name(*specs[-1])])
            except Exception as exc:  # noqa: BLE001 - report, do not lose the study timings
                res["figures"] = dict(error=f"{type(exc).__name__}: {exc}")
    finally:
        if args.keep:
            log(f"study directories kept under {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    common.finish_result(res)
    res["targets"] = build_targets(res)
    print_report(res)
    common.write_json(res, args.json)


if __name__ == "__main__":
    main()
