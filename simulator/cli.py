"""``tumorsim``: a thin command line over the Python API.

Known bad input (scenario, overrides, output files) becomes one line on stderr naming the
file and key, and exit status 2 — never a traceback. ``run`` and ``resume`` stop on SIGINT
(exit 130) or SIGTERM (exit 143) with one line, after a checkpoint: the run is left as a
resumable partial run, marked incomplete.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from simulator.output.runfile import OutputError
from simulator.schema import ScenarioError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_BROKEN_PIPE = 128 + 13


def _signal_behind(exc: BaseException, raised: int | None) -> int | None:
    """The signal an exception stands for: a signal's own exception, or any other one that
    escaped after the handler raised for signal ``raised`` (a C extension's module
    initialisation turns the signal's exception into ``ImportError: initialization
    failed``; a clean-up can raise over it). None when no signal came."""
    from simulator.study.workers import Terminated
    if isinstance(exc, Terminated):
        return signal.SIGTERM
    if isinstance(exc, KeyboardInterrupt):
        return getattr(exc, "signum", signal.SIGINT)
    return raised


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (``tumorsim COMMAND: error: ...``), exit status 2."""

    def error(self, message):
        from simulator.schema import one_line
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {one_line(message)} "
                                  f"(see {self.prog} --help)\n")


def _count(low: int):
    """An argparse type: an integer >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    return parse


def _add_scenario_options(p):
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario key, value in TOML syntax "
                        "(e.g. --set simulation.dimensions=[200,200])")
    p.add_argument("--seed", type=int, help="shorthand for --set simulation.seed=N")


def _add_fresh_option(p):
    p.add_argument("--fresh", action="store_true",
                   help="move the results of earlier commands in the output directory to "
                        "DIR/previous-<time>/ and start afresh (without it, finished runs are "
                        "reused only if this command would write exactly the same run, and "
                        "any other finished run stops the command)")


def _interruptible(work, what: str) -> int:
    """Run ``work()``; Ctrl-C -> one line and exit 130, SIGTERM -> one line and 143 (the
    workers are stopped and scratch files removed on the way out). SIGINT is handled
    explicitly, as ``run`` does: a process started in the background by a shell inherits
    SIGINT ignored, and Python then never raises KeyboardInterrupt, so a `kill -INT` of a
    background study would go unheeded. A signal whose exception Python dropped (see
    ``study.workers.raise_if_signalled``) still ends the command as interrupted."""
    from simulator.study.workers import forget_signals, raise_on_signal, signal_received
    forget_signals()
    previous = {sig: signal.signal(sig, raise_on_signal)
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = work()
        signum = signal_received()
    except BaseException as exc:
        signum = _signal_behind(exc, signal_received())
        if signum is None or isinstance(exc, SystemExit):
            raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        forget_signals()  # a later study in this process must not stop for this one
    if signum is None:
        return code
    if signum == signal.SIGTERM:
        print(f"tumorsim: terminated; {what}", file=sys.stderr)
        return EXIT_TERMINATED
    print(f"tumorsim: interrupted; {what}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _overrides(args) -> list[str]:
    extra = [] if args.seed is None else [f"simulation.seed={args.seed}"]
    return list(args.overrides) + extra


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tumorsim", description="Agent-based tumour-immune lattice simulator.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    run = sub.add_parser("run", help="run one scenario and write one HDF5 file")
    run.add_argument("scenario", nargs="?", help="scenario TOML (default: the built-in default)")
    run.add_argument("-o", "--output", help="output HDF5 file (default: <scenario>.h5 in the "
                                            "current directory)")
    run.add_argument("--threads", type=_count(0), default=None,
                     help="Numba threads; 0 = automatic, chosen step by step by timing "
                          "one vs all cores (default: the scenario's simulation.threads, "
                          "itself 0 by default)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    run.add_argument("--resume", action="store_true",
                     help="continue the interrupted run of this output from its checkpoint "
                          "if it ran exactly this scenario (else start it)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the output even if it is not a tumorsim run file")
    _add_scenario_options(run)

    resume = sub.add_parser("resume", help="continue an interrupted run from its checkpoint "
                                            "(bit-identical to an uninterrupted run)")
    resume.add_argument("run", help="OUT.h5 (its unfinished OUT.h5.partial-* beside it) or "
                                    "the partial directory")
    resume.add_argument("--threads", type=_count(0), default=None,
                        help="Numba threads (0 = automatic; default: the run's scenario's)")
    resume.add_argument("--quiet", action="store_true", help="no progress bar or summary")

    recover = sub.add_parser("recover", help="write the run file of an interrupted run as it "
                                              "stands (status incomplete)")
    recover.add_argument("run", help="OUT.h5 (its unfinished OUT.h5.partial-* beside it) or "
                                     "the partial directory")
    recover.add_argument("-o", "--output", help="file to write (default OUT.incomplete.h5)")
    recover.add_argument("--overwrite", action="store_true",
                         help="replace the output even if it is not a tumorsim run file")

    validate = sub.add_parser("validate", help="check a scenario file; exit 2 if it is bad")
    validate.add_argument("scenario")
    _add_scenario_options(validate)

    inspect = sub.add_parser("inspect", help="print a resolved scenario with its per-step "
                                             "probabilities, or summarise an output file")
    inspect.add_argument("target", nargs="?", help="SCENARIO.toml, OUT.h5, a study directory "
                                                   "or its study.h5 (default: the built-in "
                                                   "scenario)")
    _add_scenario_options(inspect)
    compare = sub.add_parser("compare", help="paired comparison of regimen arms x replicates "
                                              "(common random numbers)")
    compare.add_argument("arms", nargs="+", help="arm scenario files (the first is the "
                                                 "reference arm)")
    compare.add_argument("--replicates", type=_count(1), default=10)
    compare.add_argument("-o", "--output", default="study", help="output directory")
    compare.add_argument("--workers", type=_count(1), default=1,
                         help="local worker processes (one Numba thread each by default)")
    compare.add_argument("--scheduler", help="Dask scheduler address (tcp://host:port): run "
                                             "the study on that cluster")
    compare.add_argument("--no-figures", action="store_true", help="skip the figures")
    _add_fresh_option(compare)
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
    animate.add_argument("--fps", type=_count(1), default=8)
    animate.add_argument("--every", type=_count(1), default=1, help="use every Nth snapshot")

    sweep = sub.add_parser("sweep", help="a grid (or Sobol design) over scenario keys with "
                                          "replicates; tidy table + heatmap / Sobol indices")
    sweep.add_argument("scenario")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="values of one key (TOML syntax); repeat for more keys")
    sweep.add_argument("--sobol", action="append", default=[], metavar="KEY=LOW:HIGH",
                       help="a parameter range for a Sobol design (needs SALib)")
    sweep.add_argument("--samples", type=_count(1), default=8,
                       help="Sobol base samples N (runs = N x (keys + 2) x replicates)")
    sweep.add_argument("--endpoint", default="best_response",
                       help="endpoint for the heatmap / Sobol indices")
    sweep.add_argument("--replicates", type=_count(1), default=1)
    sweep.add_argument("--workers", type=_count(1), default=1)
    sweep.add_argument("-o", "--output", default="sweep")
    _add_fresh_option(sweep)
    _add_scenario_options(sweep)

    calibrate = sub.add_parser("calibrate", help="fit scenario keys to clinical targets "
                                                  "(history matching with GP emulators); "
                                                  "rerun the same command to resume")
    calibrate.add_argument("calibration", help="calibration file, e.g. "
                                               "scenarios/calibration/melanoma.toml")
    calibrate.add_argument("-o", "--output", default="calibration", help="output directory")
    calibrate.add_argument("--workers", type=int, default=1,
                           help="local worker processes (one Numba thread each by default)")
    calibrate.add_argument("--scheduler", help="Dask scheduler address (tcp://host:port)")
    calibrate.add_argument("--keep-runs", action="store_true",
                           help="keep every run file (default: only the store's endpoints)")
    _add_scenario_options(calibrate)

    explore = sub.add_parser("explore", help="the browser explorer (a local web app on "
                                              "127.0.0.1; needs the 'explore' extra)")
    explore.add_argument("--port", type=int, default=None,
                         help="port on 127.0.0.1 (default 5006; 0 = any free port)")
    explore.add_argument("--save-dir", default=".",
                         help="where 'save scenario' and 'save run' write (default: here)")
    explore.add_argument("--threads", type=int, default=1,
                         help="Numba threads stepping the runs (default 1)")
    explore.add_argument("--open", action="store_true", help="open it in the web browser")

    report = sub.add_parser("report", help="write DIR/report.html: one self-contained page "
                                            "of a study (tables, figures, provenance)")
    report.add_argument("study", help="a `tumorsim compare` output directory (or its study.h5)")
    return parser


def cmd_plot(args) -> int:
    from simulator.output import plotting
    from simulator.output.inspect import check_run_file
    target = Path(args.target)
    if target.is_file() and not plotting._is_study_file(target):
        check_run_file(target)
    try:
        paths = plotting.plot(args.target, args.output, tuple(args.formats or ("png", "svg")))
    except OSError as exc:
        if exc.errno is None:
            raise
        where = exc.filename or args.output or args.target
        raise OutputError(f"{where}: cannot write figures ({exc.strerror})") from None
    print(f"wrote {len(paths)} figures" + (f" to {Path(paths[0]).parent}" if paths else ""))
    return 0


def cmd_explore(args) -> int:
    from simulator.app import server
    server.check_extra()
    port = server.DEFAULT_PORT if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise ScenarioError(f"must be 0-65535, got {port}", "--port")
    if args.threads < 1:
        raise ScenarioError(f"must be >= 1, got {args.threads}", "--threads")
    return server.serve(port, open_browser=args.open, save_dir=args.save_dir,
                        threads=args.threads)


def cmd_report(args) -> int:
    from simulator.output.report import write_report
    target = Path(args.study)
    directory = target.parent if target.suffix in (".h5", ".hdf5") else target
    print(f"wrote {write_report(directory, draw_missing_figures=True)}")
    return 0


def cmd_animate(args) -> int:
    from simulator.output.animate import animate
    out = Path(args.output) if args.output else Path(args.run).with_suffix(".gif")
    print(f"wrote {animate(args.run, out, fps=args.fps, every=args.every)}")
    return 0


def cmd_sweep(args) -> int:
    return _interruptible(lambda: _sweep(args), "finished runs are kept; the same command "
                                                "resumes the sweep")


def _sweep(args) -> int:
    from simulator.study import sweep as sweep_mod
    grid = sweep_mod.parse_grid(args.grid) if args.grid else None
    sobol = sweep_mod.parse_ranges(args.sobol) if args.sobol else None
    rows, figures = sweep_mod.sweep(args.scenario, args.output, grid=grid, sobol=sobol,
                                    base_samples=args.samples, replicates=args.replicates,
                                    endpoint=args.endpoint, overrides=_overrides(args),
                                    workers=args.workers, fresh=args.fresh)
    failed = [r for r in rows if r["status"] == "failed"]
    print(f"{len(rows) - len(failed)} of {len(rows)} runs done; table: "
          f"{Path(args.output) / 'sweep.csv'}" + "".join(f"; figure: {f}" for f in figures))
    for r in failed:
        print(f"tumorsim: run failed: point {r['point']} replicate {r['replicate']}: {r['error']}",
              file=sys.stderr)
    return 1 if failed else 0


def cmd_compare(args) -> int:
    return _interruptible(lambda: _compare(args), "finished runs are kept; the same command "
                                                  "resumes the study")


def _compare(args) -> int:
    from simulator import study
    report = study.compare(args.arms, args.replicates, args.output, workers=args.workers,
                           scheduler=args.scheduler, overrides=_overrides(args),
                           progress=sys.stderr.isatty(), figures=not args.no_figures,
                           fresh=args.fresh)
    done = sum(o.status in ("complete", "skipped") for o in report.outcomes)
    skipped = sum(o.status == "skipped" for o in report.outcomes)
    if report.moved_to is not None:
        print(f"moved the earlier results to {report.moved_to}")
    print(f"{done} of {len(report.outcomes)} runs on disk ({skipped} made by this same "
          f"command before) in {report.directory}; see {report.directory / 'arms.csv'}")
    print(Path(report.directory / "arms.csv").read_text().strip())
    _note_box_limited(report.directory / "summary.csv")
    for o in report.failed:
        print(f"tumorsim: run failed: arm {o.arm} replicate {o.replicate} seed {o.seed}: "
              f"{o.error}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_calibrate(args) -> int:
    return _interruptible(lambda: _calibrate(args), "finished simulations are kept in "
                          f"{Path(args.output) / 'store.jsonl'}; the same command resumes "
                          "the calibration")


def _calibrate(args) -> int:
    from simulator.study import calibration
    if args.workers < 1:
        raise ScenarioError(f"must be >= 1, got {args.workers}", "--workers")
    spec = calibration.load(args.calibration, seed=args.seed, overrides=args.overrides)
    result = calibration.calibrate(spec, args.output, workers=args.workers,
                                   scheduler=args.scheduler, keep_runs=args.keep_runs)
    if result.best is None:
        print("tumorsim: no parameter set completed; see", Path(args.output) / "store.jsonl",
              file=sys.stderr)
        return 1
    print(f"best fit: {Path(args.output) / 'best_fit.toml'}; accepted sets: "
          f"{Path(args.output) / 'accepted.csv'} ({len(result.accepted)})")
    print((Path(args.output) / "check.md").read_text().strip())
    return 0


def _notify(line: str) -> None:
    print(f"tumorsim: note: {line}", file=sys.stderr)


def _check_threads(threads):
    if threads is not None and threads < 0:
        raise ScenarioError(f"must be >= 0, got {threads}", "--threads")


def _interrupted(exc, output) -> int:
    from simulator.output import partial
    where = f" at {exc.where}" if getattr(exc, "where", "") else ""
    held = partial.partials_of(output)
    kept = (f"{held[-1]} holds the run so far (incomplete); `tumorsim resume {output}` "
            "continues it" if held else "nothing was recorded")
    print(f"tumorsim: interrupted ({getattr(exc, 'signal_name', 'SIGINT')}){where}; {kept}",
          file=sys.stderr)
    return getattr(exc, "exit_status", EXIT_INTERRUPTED)


def _stoppable(work, output, quiet: bool) -> int:
    """Run ``work()`` (a run or a resume) so that SIGINT / SIGTERM stop it with one line
    and exit 130 / 143; print its summary unless ``quiet``."""
    from simulator.output.recorder import Interrupted, signal_raised, stop_on_signals
    try:
        with stop_on_signals():
            result = work()
    except KeyboardInterrupt as exc:
        return _interrupted(exc, output)
    except Exception as exc:
        signum = _signal_behind(exc, signal_raised())
        if signum is None:
            raise
        return _interrupted(Interrupted(signum), output)
    if not quiet:
        print(result.summary_text())
    return 0


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
    _check_threads(args.threads)
    output = Path(args.output) if args.output else Path(
        (Path(args.scenario).stem if args.scenario else "default") + ".h5")
    progress = not args.quiet and sys.stderr.isatty()

    def work():
        scenario = scenario_mod.load(args.scenario, _overrides(args))
        start = runner.run_or_resume if args.resume else runner.run_to_file
        return start(scenario, output, threads=args.threads, progress=progress,
                     overwrite=args.overwrite, notify=_notify, compile_ahead=True)

    return _stoppable(work, output, args.quiet)


def cmd_resume(args) -> int:
    from simulator.output.recorder import locate
    from simulator.study import runner
    _check_threads(args.threads)
    target, _ = locate(args.run)
    return _stoppable(lambda: runner.resume_to_file(
        args.run, threads=args.threads, progress=not args.quiet and sys.stderr.isatty(),
        notify=_notify, compile_ahead=True), target, args.quiet)


def cmd_recover(args) -> int:
    from simulator.output.runfile import recover
    out, contents, replaced = recover(args.run, args.output, overwrite=args.overwrite)
    print(f"wrote {out}{' (replacing the run file there)' if replaced else ''}: "
          f"{contents.n_records} records"
          + (f" to day {contents.last_time_days:g}" if contents.n_records else "") + ", "
          f"{len(contents.frames)} snapshots, status incomplete")
    return 0


def cmd_validate(args) -> int:
    from simulator import scenario as scenario_mod
    scenario_mod.load(args.scenario, _overrides(args))
    print(f"{args.scenario}: ok")
    return 0


def cmd_inspect(args) -> int:
    from simulator.output import inspect as inspect_mod
    from simulator.output import partial
    target = args.target
    if target and inspect_mod.is_study(target):
        print(inspect_mod.describe_study(target))
    elif target and (Path(target).suffix in (".h5", ".hdf5", ".nc") or partial.is_partial(target)):
        from simulator.output.runfile import describe_run, find_partial
        shown = target
        if not Path(target).exists() and partial.partials_of(target):
            shown = find_partial(target)  # not finished yet: show the run so far
        elif not partial.is_partial(target):
            inspect_mod.check_run_file(target)
        print(describe_run(shown))
    else:
        print(inspect_mod.describe_scenario(target, _overrides(args)))
    return 0


COMMANDS = {"run": cmd_run, "resume": cmd_resume, "recover": cmd_recover, "compare": cmd_compare,
            "sweep": cmd_sweep, "calibrate": cmd_calibrate, "plot": cmd_plot,
            "animate": cmd_animate,
            "validate": cmd_validate, "inspect": cmd_inspect,
            "explore": cmd_explore, "report": cmd_report}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ScenarioError, OutputError) as exc:
        from simulator.schema import one_line
        print(f"tumorsim: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("tumorsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of our output went away (`| head`): say nothing more, like `cat`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def console_main(argv=None) -> int:
    """The ``tumorsim`` program: :func:`main`, then
    ``study.workers.skip_final_collection``, since the process exits next, and
    :func:`_forget_handled_interrupts`."""
    from simulator.study.workers import skip_final_collection
    code = main(argv)
    skip_final_collection()
    _forget_handled_interrupts()
    return code


def _forget_handled_interrupts() -> None:
    """Keep an interrupted command's exit status. CPython ends a process by SIGINT,
    whatever its exit status, after a KeyboardInterrupt went unhandled (bpo-1054041), and
    it counts one as unhandled when it leaves any ``exec`` or ``eval`` of a string, such
    as a named tuple or dataclass being made by a lazy import, even if the command catches
    it further out. Under ``python -m`` that mark lasts to the exit, and a Ctrl-C reported
    with status 130 became death by SIGINT. Each ``exec`` of a string clears the mark;
    :func:`main` has returned, so every interrupt was handled."""
    exec("None")


if __name__ == "__main__":
    sys.exit(console_main())
