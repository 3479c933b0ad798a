"""``tumorsim``: a thin command line over the Python API.

Known bad input (scenario, overrides, output files) becomes one line on stderr naming the
file and key, and exit status 2 — never a traceback.
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from simulator.output.runfile import OutputError
from simulator.schema import ScenarioError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so the output file is closed as incomplete."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _add_scenario_options(p):
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key, value in TOML syntax "
                        "(e.g. --set simulation.dimensions=[200,200])")
    p.add_argument("--seed", type=int, help="shorthand for --set simulation.seed=N")


def _overrides(args) -> list[str]:
    extra = [] if args.seed is None else [f"simulation.seed={args.seed}"]
    return list(args.overrides) + extra


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tumorsim", description="Agent-based tumour-immune lattice simulator.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run one scenario and write one HDF5 file")
    run.add_argument("scenario", nargs="?", help="scenario TOML (default: the built-in default)")
    run.add_argument("-o", "--output", help="output HDF5 file (default: <scenario>.h5 in the "
                                            "current directory)")
    run.add_argument("--threads", type=int, default=None,
                     help="Numba threads (default: the scenario's simulation.threads, "
                          "else all cores)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    _add_scenario_options(run)

    validate = sub.add_parser("validate", help="check a scenario file; exit 2 if it is bad")
    validate.add_argument("scenario")
    _add_scenario_options(validate)

    inspect = sub.add_parser("inspect", help="print a resolved scenario with its per-step "
                                             "probabilities, or summarise an output file")
    inspect.add_argument("target", nargs="?", help="SCENARIO.toml or OUT.h5 (default: the "
                                                   "built-in scenario)")
    _add_scenario_options(inspect)
    compare = sub.add_parser("compare", help="paired comparison of regimen arms x replicates "
                                              "(common random numbers)")
    compare.add_argument("arms", nargs="+", help="arm scenario files (the first is the "
                                                 "reference arm)")
    compare.add_argument("--replicates", type=int, default=10)
    compare.add_argument("-o", "--output", default="study", help="output directory")
    compare.add_argument("--workers", type=int, default=1,
                         help="local worker processes (one Numba thread each by default)")
    compare.add_argument("--scheduler", help="Dask scheduler address (tcp://host:port): run "
                                             "the study on that cluster")
    compare.add_argument("--no-figures", action="store_true", help="skip the figures")
    _add_scenario_options(compare)

    plot = sub.add_parser("plot", help="figures of a run file (OUT.h5) or a study directory")
    plot.add_argument("target", help="OUT.h5 or a `tumorsim compare` output directory")
    plot.add_argument("-o", "--output", help="figure directory (default: beside the run, or "
                                             "DIR/figures)")
    plot.add_argument("--format", dest="formats", action="append", choices=("png", "svg", "pdf"),
                      help="figure format; repeat for several (default: png and svg)")

    animate = sub.add_parser("animate", help="GIF or MP4 of a run's lattice beside its burden")
    animate.add_argument("run", help="OUT.h5")
    animate.add_argument("-o", "--output", help="movie file (.gif or .mp4; default OUT.gif)")
    animate.add_argument("--fps", type=int, default=8)
    animate.add_argument("--every", type=int, default=1, help="use every Nth snapshot")

    sweep = sub.add_parser("sweep", help="a grid (or Sobol design) over scenario keys with "
                                          "replicates; tidy table + heatmap / Sobol indices")
    sweep.add_argument("scenario")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="values of one key (TOML syntax); repeat for more keys")
    sweep.add_argument("--sobol", action="append", default=[], metavar="KEY=LOW:HIGH",
                       help="a parameter range for a Sobol design (needs SALib)")
    sweep.add_argument("--samples", type=int, default=8,
                       help="Sobol base samples N (runs = N x (keys + 2) x replicates)")
    sweep.add_argument("--endpoint", default="best_response",
                       help="endpoint for the heatmap / Sobol indices")
    sweep.add_argument("--replicates", type=int, default=1)
    sweep.add_argument("--workers", type=int, default=1)
    sweep.add_argument("-o", "--output", default="sweep")
    _add_scenario_options(sweep)
    return parser


def cmd_plot(args) -> int:
    from simulator.output import plotting
    paths = plotting.plot(args.target, args.output, tuple(args.formats or ("png", "svg")))
    print(f"wrote {len(paths)} figures" + (f" to {Path(paths[0]).parent}" if paths else ""))
    return 0


def cmd_animate(args) -> int:
    from simulator.output.animate import animate
    out = Path(args.output) if args.output else Path(args.run).with_suffix(".gif")
    if args.fps < 1 or args.every < 1:
        raise ScenarioError("--fps and --every must be >= 1", source="animate")
    print(f"wrote {animate(args.run, out, fps=args.fps, every=args.every)}")
    return 0


def cmd_sweep(args) -> int:
    from simulator.study import sweep as sweep_mod
    grid = sweep_mod.parse_grid(args.grid) if args.grid else None
    sobol = sweep_mod.parse_ranges(args.sobol) if args.sobol else None
    rows, figures = sweep_mod.sweep(args.scenario, args.output, grid=grid, sobol=sobol,
                                    base_samples=args.samples, replicates=args.replicates,
                                    endpoint=args.endpoint, overrides=_overrides(args),
                                    workers=args.workers)
    failed = [r for r in rows if r["status"] == "failed"]
    print(f"{len(rows) - len(failed)} of {len(rows)} runs done; table: "
          f"{Path(args.output) / 'sweep.csv'}" + "".join(f"; figure: {f}" for f in figures))
    for r in failed:
        print(f"tumorsim: run failed: point {r['point']} replicate {r['replicate']}: {r['error']}",
              file=sys.stderr)
    return 1 if failed else 0


def cmd_compare(args) -> int:
    from simulator import study
    if args.replicates < 1:
        raise ScenarioError(f"must be >= 1, got {args.replicates}", "--replicates")
    if args.workers < 1:
        raise ScenarioError(f"must be >= 1, got {args.workers}", "--workers")
    report = study.compare(args.arms, args.replicates, args.output, workers=args.workers,
                           scheduler=args.scheduler, overrides=_overrides(args),
                           progress=sys.stderr.isatty(), figures=not args.no_figures)
    done = sum(o.status in ("complete", "skipped") for o in report.outcomes)
    skipped = sum(o.status == "skipped" for o in report.outcomes)
    print(f"{done} of {len(report.outcomes)} runs on disk ({skipped} already there) in "
          f"{report.directory}; see {report.directory / 'arms.csv'}")
    print(Path(report.directory / "arms.csv").read_text().strip())
    _note_box_limited(report.directory / "summary.csv")
    for o in report.failed:
        print(f"tumorsim: run failed: arm {o.arm} replicate {o.replicate} seed {o.seed}: "
              f"{o.error}", file=sys.stderr)
    return 1 if report.failed else 0


def _note_box_limited(summary_csv: Path) -> None:
    """One line when some runs' tumours reached the lattice edge before their end."""
    import csv
    if not summary_csv.exists():
        return
    with open(summary_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    limited = [r for r in rows if r.get("box_limited") in ("True", "true", "1")]
    if limited:
        print(f"tumorsim: note: in {len(limited)} of {len(rows)} runs the tumour reached the "
              "lattice edge before the end (summary.csv: edge_contact_day, box_limited); "
              "enlarge simulation.dimensions", file=sys.stderr)


def cmd_run(args) -> int:
    from simulator import scenario as scenario_mod
    from simulator.study import runner
    scenario = scenario_mod.load(args.scenario, _overrides(args))
    output = Path(args.output) if args.output else Path(
        (Path(args.scenario).stem if args.scenario else "default") + ".h5")
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        result = runner.run_to_file(scenario, output, threads=args.threads,
                                    progress=not args.quiet and sys.stderr.isatty())
    except KeyboardInterrupt:
        print(f"tumorsim: interrupted; {output} holds the records so far and is marked "
              "incomplete", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not args.quiet:
        print(result.summary_text())
    return 0


def cmd_validate(args) -> int:
    from simulator import scenario as scenario_mod
    scenario_mod.load(args.scenario, _overrides(args))
    print(f"{args.scenario}: ok")
    return 0


def cmd_inspect(args) -> int:
    from simulator.output import inspect as inspect_mod
    target = args.target
    if target and Path(target).suffix in (".h5", ".hdf5", ".nc"):
        from simulator.output.runfile import describe_run
        print(describe_run(target))
    else:
        print(inspect_mod.describe_scenario(target, _overrides(args)))
    return 0


COMMANDS = {"run": cmd_run, "compare": cmd_compare, "sweep": cmd_sweep,
            "plot": cmd_plot, "animate": cmd_animate, "validate": cmd_validate, "inspect": cmd_inspect}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ScenarioError, OutputError) as exc:
        print(f"tumorsim: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
