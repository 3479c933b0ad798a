"""The catalogue of faults of issue 9, shared by tests/test_faults.py (pytest) and
tests/fault_table.py (docs/fault_table.md): bad scenario values of every type, bad files,
overrides and options, stale resumes, concurrent writers, killed coordinators and runs,
corrupt or incomplete HDF5 files.

A case runs ``tumorsim ARGS`` in a fresh directory (after optional files and a setup) and
is judged by :func:`judge`: the exit status must be one of ``case.exit``, nothing may
print a traceback, an exit 2 must be exactly one stderr line containing ``case.words``,
no output that looks complete (a run file with status "complete", a study.h5 or CSV) may
appear unless the case expects one, and a custom ``check`` may add conditions.

Fault classes (issue 9): 1 stale resume, 2 concurrent writers / atomic writes, 3 SIGKILL of
a run, 4 killed coordinator (process hygiene), 5 first study on a new machine, 6 values
validate accepts but run cannot survive (bounds), 7 tracebacks instead of one line,
8 silent overwrites. ``owner`` names the branch that closes a case (``runfile``:
run-file writes, recover, resume, run's exit codes; ``explorer``: inspect of a study,
animate without the movie extra); cases whose command does not exist yet are reported as
"not yet available".
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "scenarios"
TINY = ["--set", "simulation.dimensions=[24,24]", "--set", "simulation.duration_days=4",
        "--set", "simulation.treatment_start_day=2", "--set", "initial.tumor_radius_sites=2",
        "--set", "endpoints.scan_interval_days=1"]
# long enough to be interrupted mid-study, short enough to finish in a test
MEDIUM = ["--set", "simulation.dimensions=[80,80]", "--set", "simulation.duration_days=40",
          "--set", "simulation.treatment_start_day=4", "--set", "initial.tumor_radius_sites=4",
          "--set", "endpoints.scan_interval_days=4"]
ARMS = [str(LIB / "untreated.toml"), str(LIB / "targeted_continuous.toml")]
CLASSES = {1: "stale resume", 2: "concurrent writers", 3: "SIGKILL of a run",
           4: "killed coordinator", 5: "first study", 6: "bounds and values",
           7: "one line per error", 8: "silent overwrites"}


@dataclass
class Result:
    exit: int | None
    stderr: str
    stdout: str = ""
    complete_outputs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # from a case's own checks
    seconds: float = 0.0

    @property
    def first_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[0] if lines else ""

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr


@dataclass
class Case:
    fault_class: int
    name: str
    args: list[str] = field(default_factory=list)      # "{tmp}", "{lib}" are filled in
    files: dict[str, str | bytes] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None
    exit: tuple[int, ...] = (2,)
    words: str = ""
    complete_ok: bool = False       # the case should leave complete outputs
    owner: str = "hygiene"
    needs: str | None = None        # a subcommand that must exist
    action: Callable[[Path], Result] | None = None   # a driver other than one command
    check: Callable[[Path, Result], list[str]] | None = None
    timeout: float = 300.0
    slow: bool = False              # runs simulations (not only validation)

    @property
    def id(self) -> str:
        return f"c{self.fault_class}-{self.name}"


def env(**extra) -> dict:
    """The environment of a tumorsim subprocess: this checkout's package first."""
    return dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", **extra)


def fill(args, tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)).replace("{lib}", str(LIB)) for a in args]


def tumorsim(args, tmp: Path, timeout: float = 300.0, **kw) -> Result:
    started = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "simulator", *fill(args, tmp)], cwd=tmp,
                       env=kw.pop("environ", None) or env(), capture_output=True, text=True,
                       timeout=timeout, **kw)
    return Result(p.returncode, p.stderr, p.stdout, seconds=time.monotonic() - started)


def start(args, tmp: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "simulator", *fill(args, tmp)], cwd=tmp,
                            env=kw.pop("environ", None) or env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


# ---------------------------------------------------------------- what the outputs say
def looks_complete(path: Path) -> bool:
    """A file a reader would take for a finished result."""
    if path.name in ("study.h5", "summary.csv", "arms.csv", "sweep.csv", "sobol.csv"):
        return True
    if path.suffix in (".h5", ".hdf5") and not path.name.startswith("."):
        import h5py
        try:
            with h5py.File(path, "r") as f:
                return f.attrs.get("status") == "complete"
        except (OSError, KeyError):
            return False
    return False


def snapshot(tmp: Path) -> dict[Path, tuple]:
    out = {}
    for p in tmp.rglob("*"):
        try:
            if p.is_file():
                st = p.stat()
                out[p] = (st.st_size, st.st_mtime_ns)
        except OSError:
            pass
    return out


def new_complete(tmp: Path, before: dict) -> list[str]:
    after = snapshot(tmp)
    return sorted(str(p.relative_to(tmp)) for p, sig in after.items()
                  if before.get(p) != sig and "previous-" not in str(p) and looks_complete(p))


def prepare(case: Case, tmp: Path):
    """The case's files and setup in ``tmp``."""
    tmp.mkdir(parents=True, exist_ok=True)
    for name, content in case.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace("{lib}", str(LIB)).replace("{tmp}", str(tmp)))
    if case.setup is not None:
        case.setup(tmp)


def run_case(case: Case, tmp: Path) -> Result:
    """Prepare ``tmp``, run the case through the real CLI (subprocesses) and collect what
    judge() needs."""
    prepare(case, tmp)
    before = snapshot(tmp)
    if case.action is not None:
        result = case.action(tmp)
    else:
        try:
            result = tumorsim(case.args, tmp, timeout=case.timeout)
        except subprocess.TimeoutExpired:
            result = Result(None, f"(no answer within {case.timeout:g} s)")
    result.complete_outputs = new_complete(tmp, before)
    if case.check is not None:
        result.problems += case.check(tmp, result)
    return result


def judge(case: Case, result: Result) -> list[str]:
    """What is wrong with ``result`` (empty: handled)."""
    wrong = list(result.problems)
    if result.exit not in case.exit:
        wrong.append(f"exit {result.exit}, expected {'/'.join(map(str, case.exit))}")
    if result.traceback:
        wrong.append("traceback")
    if result.exit == 2 and 2 in case.exit:
        lines = result.stderr.strip().splitlines()
        if len(lines) != 1:
            wrong.append(f"{len(lines)} stderr lines")
        if case.words and case.words not in result.stderr:
            wrong.append(f"stderr lacks {case.words!r}")
    if result.complete_outputs and not case.complete_ok:
        wrong.append(f"left complete-looking {', '.join(result.complete_outputs[:3])}")
    return wrong




def available_commands() -> set[str]:
    import argparse
    from simulator.cli import build_parser
    return {name for action in build_parser()._actions
            if isinstance(action, argparse._SubParsersAction) for name in action.choices}


# ---------------------------------------------------------------- scenario files
def scenario(body: str, base: str = "default.toml") -> str:
    return f'base = "{{lib}}/{base}"\n{body}\n'


def validate(fault_class, name, body, words, base="default.toml", extra=(), exit=(2,)):
    return Case(fault_class, name, ["validate", "s.toml", *extra],
                files={"s.toml": scenario(body, base)}, words=words, exit=exit)


def override(fault_class, name, sets, words, exit=(2,)):
    args = ["validate", "{lib}/default.toml"]
    for s in sets:
        args += ["--set", s]
    return Case(fault_class, name, args, words=words, exit=exit)


DRUG = '[drugs.{name}]\npreset = "vemurafenib"\n[[drugs.{name}.doses]]\n' \
       'dose_mg = 960\nevery_days = 0.5\n'


def drug(name: str, extra: str = "") -> str:
    return DRUG.replace("{name}", name) + extra


VALUE_CASES = [
    # types
    validate(6, "string-for-integer", "[simulation]\nseed = 'one'", "expected an integer"),
    validate(6, "fraction-for-integer", "[simulation]\nseed = 1.5", "expected an integer"),
    validate(6, "bool-for-number", "[tumor]\ndeath_rate_per_day = true", "expected a number"),
    validate(6, "list-for-number", "[tumor]\ndeath_rate_per_day = [1]", "expected a number"),
    validate(6, "table-for-number", "[tumor]\ndeath_rate_per_day = {a = 1}",
             "expected a number"),
    validate(6, "number-for-table", "simulation = 3", "expected a table"),
    validate(6, "number-for-list", "[simulation]\ndimensions = 30", "expected a list"),
    validate(6, "number-for-string", "description = 3", "expected a string"),
    validate(6, "nan", "[tumor]\ndeath_rate_per_day = nan", "nan"),
    validate(6, "inf", "[tumor]\ndeath_rate_per_day = inf", "finite"),
    validate(6, "minus-inf", "[tumor]\ndivision_rate_per_day = -inf", "must be"),
    validate(6, "negative-rate", "[tumor]\ndeath_rate_per_day = -1", ">= 0"),
    validate(6, "fraction-above-1", "[initial]\nresistant_fraction = 1.5", "<= 1.0"),
    validate(6, "seed-negative", "[simulation]\nseed = -1", ">= 0"),
    validate(6, "replicate-above-int32", "[simulation]\nseed = 9223372036854775807\n"
             "replicate = 2147483648", "simulation.replicate: must be <= 2147483647"),
    validate(6, "integer-above-int32", "[t_cells]\nkill_capacity = 10000000000",
             "must be <= 2147483647"),
    validate(6, "compression-10", "[output]\ncompression = 10", "<= 9"),
    validate(6, "record-every-0", "[output]\nrecord_every_steps = 0", ">= 1"),
    validate(6, "unknown-key", "[tumor]\ndeath_rate = 1", "did you mean"),
    validate(6, "unknown-section", "[tumour]\ndeath_rate_per_day = 1", "did you mean"),
    validate(6, "nul-in-description", 'description = "a\\u0000b"', "NUL"),
    validate(6, "nul-in-target", '[tumor]\nresistance_targets = ["BR\\u0000AF"]', "NUL"),
    validate(6, "newline-in-key", '[tumor]\n"death\\nrate" = 1', "unknown key"),
    validate(6, "grid-coarsening-3", "[fields.oxygen]\ngrid_coarsening = 3",
             "fields.oxygen.grid_coarsening: must be 1, 2, 4 or 8"),
    validate(6, "grid-coarsening-16", "[fields.chemokine]\ngrid_coarsening = 16",
             "fields.chemokine.grid_coarsening: must be <= 8"),
    validate(6, "grid-coarsening-beyond-lattice", "[simulation]\ndimensions = [4, 4]\n"
             "[initial]\ntumor_radius_sites = 1\n[fields.ifn_gamma]\ngrid_coarsening = 4",
             "fields.ifn_gamma.grid_coarsening: a 4x coarser grid needs more than 4 sites"),
    # the lattice
    validate(6, "dimensions-1", "[simulation]\ndimensions = [10]", "2 or 3"),
    validate(6, "dimensions-4", "[simulation]\ndimensions = [10,10,10,10]", "2 or 3"),
    validate(6, "dimensions-empty", "[simulation]\ndimensions = []", "2 or 3"),
    validate(6, "dimensions-0", "[simulation]\ndimensions = [0,10]", ">= 3"),
    validate(6, "dimensions-1e20", "[simulation]\ndimensions = [100, 1e20]", "must be <="),
    validate(6, "dimensions-float", "[simulation]\ndimensions = [100.5, 100]",
             "expected an integer"),
    validate(6, "dimensions-100000^2", "[simulation]\ndimensions = [100000, 100000]",
             "at most"),
    validate(6, "dimensions-30000^2-memory", "[simulation]\ndimensions = [30000, 30000]",
             "memory"),
    validate(6, "dimensions-1000^3-memory", "[simulation]\ndimensions = [1000, 1000, 1000]",
             "memory"),
    validate(6, "tumour-larger-than-lattice", "[simulation]\ndimensions = [20,20]\n"
             "[initial]\ntumor_radius_sites = 12", "does not fit"),
    validate(6, "tumour-radius-negative", "[initial]\ntumor_radius_sites = -1", ">= 0"),
    # time
    validate(6, "duration-1e12", "[simulation]\nduration_days = 1e12", "steps"),
    validate(6, "dt-1e-12", "[simulation]\ndt_hours = 1e-12", "steps"),
    validate(6, "dt-0", "[simulation]\ndt_hours = 0", "> 0"),
    validate(6, "dt-100", "[simulation]\ndt_hours = 100", "<= 48"),
    validate(6, "duration-0", "[simulation]\nduration_days = 0", "> 0"),
    validate(6, "duration-below-half-step", "[simulation]\nduration_days = 0.05\n"
             "treatment_start_day = 0", "half a step"),
    validate(6, "treatment-after-end", "[simulation]\ntreatment_start_day = 500",
             "after the end"),
    validate(6, "snapshots-1e-9-days", "[output]\nsnapshot_every_days = 1e-9\n"
             "[simulation]\ndt_hours = 0.01\nduration_days = 120", "snapshots"),
    validate(6, "records-too-many", "[simulation]\ndt_hours = 0.001\nduration_days = 300",
             "records"),
    # drugs and doses
    validate(6, "dose-every-1e-12", drug("braf").replace("every_days = 0.5",
                                                        "every_days = 1e-12"), "doses"),
    validate(6, "dose-every-0", drug("braf").replace("every_days = 0.5", "every_days = 0"),
             "> 0"),
    validate(6, "dose-negative", drug("braf").replace("dose_mg = 960", "dose_mg = -1"), ">= 0"),
    validate(6, "dose-count-0", drug("braf", "count = 0\n"), ">= 1"),
    validate(6, "dose-count-without-every", drug("braf").replace("every_days = 0.5",
                                                                "count = 3"), "every_days"),
    validate(6, "drug-name-slash", '[drugs."a/b"]\npreset = "vemurafenib"',
             "is not a name"),
    validate(6, "drug-name-empty", '[drugs.""]\npreset = "vemurafenib"',
             "is not a name"),
    validate(6, "drug-name-space", '[drugs."a b"]\npreset = "vemurafenib"',
             "is not a name"),
    validate(6, "drug-name-digit", '[drugs."1abc"]\npreset = "vemurafenib"',
             "is not a name"),
    validate(6, "drug-name-long", f'[drugs.{"a" * 80}]\npreset = "vemurafenib"', "is not a name"),
    validate(6, "drug-unknown-class", '[drugs.x]\npreset = "vemurafenib"\ndrug_class = "magic"',
             "must be one of"),
    validate(6, "drug-unknown-target", '[drugs.x]\npreset = "vemurafenib"\ntarget = "KRAS"',
             "KRAS"),
    validate(6, "t-cell-speed-huge", "[t_cells]\nspeed_um_per_min = 1e12", "sites per step"),
    validate(6, "handling-hours-huge", "[t_cells]\nhandling_hours = 1e300", "steps"),
    # cohorts
    validate(6, "cohort-misspelt-key", '[[cohort]]\nkey = "tumor.antigenicty"\n'
             'distribution = "normal"\nmean = 1.0\nsd = 0.1', "did you mean"),
    validate(6, "cohort-unknown-section", '[[cohort]]\nkey = "tumour.antigenicity"\n'
             'distribution = "normal"\nmean = 1.0\nsd = 0.1', "not a scenario key"),
    validate(6, "cohort-integer-key", '[[cohort]]\nkey = "simulation.seed"\n'
             'distribution = "normal"\nmean = 1.0\nsd = 0.1', "does not take a number"),
    validate(6, "cohort-list-key", '[[cohort]]\nkey = "simulation.dimensions"\n'
             'distribution = "normal"\nmean = 1.0\nsd = 0.1', "does not take a number"),
    validate(6, "cohort-undefined-drug", '[[cohort]]\nkey = "drugs.nodrug.kill.emax"\n'
             'distribution = "normal"\nmean = 1.0\nsd = 0.1', "nodrug"),
    validate(6, "cohort-key-twice", '[[cohort]]\nkey = "tumor.antigenicity"\n'
             'distribution = "normal"\nmean = 1.0\nsd = 0.1\n[[cohort]]\n'
             'key = "tumor.antigenicity"\ndistribution = "normal"\nmean = 1.0\nsd = 0.1',
             "twice"),
    validate(6, "cohort-missing-sd", '[[cohort]]\nkey = "tumor.antigenicity"\n'
             'distribution = "normal"\nmean = 1.0', "needs 'sd'"),
    validate(6, "cohort-bad-distribution", '[[cohort]]\nkey = "tumor.antigenicity"\n'
             'distribution = "cauchy"', "must be one of"),
    validate(6, "snapshot-field-unknown", "[output]\nsnapshot_fields = ['nope']",
             "unknown field"),
]

FILE_CASES = [
    Case(6, "file-missing", ["validate", "nope.toml"], words="no such file"),
    Case(6, "file-directory", ["validate", "d"], setup=lambda t: (t / "d").mkdir(),
         words="is a directory"),
    Case(6, "file-dev-zero", ["validate", "/dev/zero"], words="not a regular file",
         timeout=30),
    Case(6, "base-dev-zero", ["validate", "s.toml"], files={"s.toml": 'base = "/dev/zero"\n'},
         words="not a regular file", timeout=30),
    Case(6, "base-fifo", ["validate", "s.toml"], files={"s.toml": 'base = "pipe"\n'},
         setup=lambda t: os.mkfifo(t / "pipe"), words="not a regular file", timeout=30),
    Case(6, "file-2MiB", ["validate", "big.toml"],
         files={"big.toml": "# " + "x" * (2 << 20) + "\n"}, words="larger than"),
    Case(6, "file-binary", ["validate", "bin.toml"], files={"bin.toml": b"\xff\xfe\x00\x01"},
         words="not UTF-8"),
    Case(6, "file-invalid-toml", ["validate", "bad.toml"], files={"bad.toml": "[simulation\n"},
         words="invalid TOML"),
    Case(6, "file-empty-is-the-default", ["validate", "e.toml"], files={"e.toml": ""},
         exit=(0,)),
    Case(6, "base-missing", ["validate", "s.toml"], files={"s.toml": 'base = "none.toml"\n'},
         words="not found"),
    Case(6, "base-circular", ["validate", "a.toml"],
         files={"a.toml": 'base = "b.toml"\n', "b.toml": 'base = "a.toml"\n'},
         words="circular"),
    Case(6, "base-self", ["validate", "a.toml"], files={"a.toml": 'base = "a.toml"\n'},
         words="circular"),
    Case(6, "base-chain-40-deep", ["validate", "f0.toml"],
         files={f"f{i}.toml": f'base = "f{i + 1}.toml"\n' for i in range(40)} | {
             "f40.toml": ""}, words="deeper than"),
    Case(6, "base-not-a-string", ["validate", "s.toml"], files={"s.toml": "base = 3\n"},
         words="expected a file name"),
    Case(6, "base-empty", ["validate", "s.toml"], files={"s.toml": 'base = ""\n'},
         words="expected a file name"),
    Case(6, "symlink-loop", ["validate", "loop.toml"],
         setup=lambda t: os.symlink("loop.toml", t / "loop.toml"), words="loop.toml"),
]

OVERRIDE_CASES = [
    override(6, "set-without-equals", ["simulation.seed"], "expected key.path=value"),
    override(6, "set-empty-key", ["=1"], "bad key path"),
    override(6, "set-empty-part", ["simulation..seed=1"], "bad key path"),
    override(6, "set-empty-value", ["simulation.seed="], "expected an integer"),
    override(6, "set-text-for-number", ["tumor.death_rate_per_day=abc"], "expected a number"),
    override(6, "set-section-scalar", ["simulation=5"], "expected a table"),
    override(6, "set-broken-list", ["simulation.dimensions=[10"], "expected a list"),
    override(6, "set-unknown", ["x.y=1"], "unknown key"),
    override(6, "set-newline-key", ["tumor.death\nrate=1"], "unknown key"),
    override(6, "set-newline-value", ["description=a\nb"], "", exit=(0,)),
    override(6, "set-huge-number", ["tumor.death_rate_per_day=1e400"], "finite"),
    override(6, "set-unicode-key", ["tumör.x=1"], "unknown key"),
    override(6, "set-dimensions-1e20", ["simulation.dimensions=[100,1e20]"], "must be <="),
    override(6, "set-drug-name-slash", ['drugs."a/b".preset="vemurafenib"'], "is not a name"),
    Case(6, "seed-flag-negative", ["validate", "{lib}/default.toml", "--seed", "-5"],
         words=">= 0"),
]


def _write_run_file(tmp: Path, name="r.h5", drop: str | None = None, attr: str | None = None,
                    truncate: str | None = None):
    """A small finished run file (shared template), optionally with a dataset or
    attribute removed or a series shortened."""
    import h5py
    template = _template_run()
    shutil.copy(template, tmp / name)
    with h5py.File(tmp / name, "r+") as f:
        if drop:
            del f[drop]
        if attr:
            del f.attrs[attr]
        if truncate:
            ds = f[truncate]
            ds.resize(ds.shape[0] - 1, axis=0)


_TEMPLATES: dict[str, Path] = {}


def _template_dir() -> Path:
    import tempfile
    if "dir" not in _TEMPLATES:
        _TEMPLATES["dir"] = Path(tempfile.mkdtemp(prefix="tumorsim-faults-"))
    return _TEMPLATES["dir"]


def _template_run() -> Path:
    if "run" not in _TEMPLATES:
        out = _template_dir() / "run.h5"
        r = tumorsim(["run", "--quiet", "-o", str(out), *TINY], _template_dir())
        assert r.exit == 0, r.stderr
        _TEMPLATES["run"] = out
    return _TEMPLATES["run"]


def _template_study() -> Path:
    """A finished study of the two library arms (TINY, 2 replicates)."""
    if "study" not in _TEMPLATES:
        out = _template_dir() / "study"
        r = tumorsim(["compare", *ARMS, "--replicates", "2", "--no-figures", "-o", str(out),
                      *TINY], _template_dir())
        assert r.exit == 0, r.stderr
        _TEMPLATES["study"] = out
    return _TEMPLATES["study"]


def _copy_study(tmp: Path):
    shutil.copytree(_template_study(), tmp / "s")


def _plot_case(name, words, **kw):
    return Case(7, f"plot-{name}", ["plot", "r.h5", "-o", "figs"], words=words,
                setup=lambda t: _write_run_file(t, **kw), slow=True)


def _inspect_case(name, words, **kw):
    return Case(7, f"inspect-{name}", ["inspect", "r.h5"], words=words,
                setup=lambda t: _write_run_file(t, **kw), slow=True)


OPTION_CASES = [
    Case(7, "threads-negative", ["run", "--threads", "-1", *TINY], words="--threads"),
    Case(7, "threads-text", ["run", "--threads", "two"], words="--threads"),
    Case(7, "replicates-0", ["compare", *ARMS, "--replicates", "0"], words="--replicates"),
    Case(7, "workers-0", ["compare", *ARMS, "--workers", "0"], words="--workers"),
    Case(7, "workers-negative", ["sweep", "{lib}/default.toml", "--grid", "simulation.seed=1",
                                 "--workers", "-2"], words="--workers"),
    Case(7, "samples-0", ["sweep", "{lib}/default.toml", "--sobol", "tumor.antigenicity=1:2",
                          "--samples", "0"], words="--samples"),
    Case(7, "fps-0", ["animate", "r.h5", "--fps", "0"], words="--fps"),
    Case(7, "no-command", [], words="required"),
    Case(7, "unknown-command", ["frobnicate"], words="invalid choice"),
    Case(7, "scheduler-closed-port", ["compare", *ARMS, "--scheduler", "tcp://127.0.0.1:1",
                                      "-o", "s", *TINY], words="cannot reach", timeout=10),
    Case(7, "scheduler-not-a-url", ["compare", *ARMS, "--scheduler", "not a url", "-o", "s",
                                    *TINY], words="expected tcp://HOST:PORT", timeout=10),
    Case(7, "scheduler-unknown-host", ["compare", *ARMS, "--scheduler",
                                       "tcp://no-such-host.invalid:8786", "-o", "s", *TINY],
         words="cannot reach", timeout=15),
    Case(7, "sweep-endpoint-nonsense", ["sweep", "{lib}/default.toml", "--grid",
                                        "tumor.antigenicity=1,2", "--endpoint", "nonsense",
                                        "-o", "sw", *TINY], words="valid:"),
    Case(7, "sweep-endpoint-text", ["sweep", "{lib}/default.toml", "--grid",
                                    "tumor.antigenicity=1,2", "--endpoint", "response_class",
                                    "-o", "sw", *TINY], words="unknown endpoint"),
    Case(7, "sweep-no-design", ["sweep", "{lib}/default.toml", "-o", "sw"],
         words="--grid or --sobol"),
    Case(7, "sweep-grid-no-values", ["sweep", "{lib}/default.toml", "--grid",
                                     "tumor.antigenicity", "-o", "sw"], words="--grid"),
    Case(7, "sweep-grid-bad-value", ["sweep", "{lib}/default.toml", "--grid",
                                     "tumor.death_rate_per_day=0.1,-1", "-o", "sw", *TINY],
         words="must be >= 0"),
    Case(7, "sweep-sobol-bad-range", ["sweep", "{lib}/default.toml", "--sobol",
                                      "tumor.antigenicity=2:1", "-o", "sw"], words="low"),
    Case(7, "compare-same-arm-twice", ["compare", ARMS[0], ARMS[0], "-o", "s", *TINY],
         words="two arms"),
    Case(7, "compare-arm-name-not-a-name", ["compare", "a b.toml", "-o", "s", *TINY],
         files={"a b.toml": scenario("")}, words="is not a name"),
    Case(7, "compare-arms-differ-before-treatment", ["compare", ARMS[0], "x.toml", "-o", "s",
                                                     *TINY],
         files={"x.toml": scenario("[tumor]\ndeath_rate_per_day = 0.3", "untreated.toml")},
         words="differs from the first arm"),
    Case(7, "inspect-missing-file", ["inspect", "missing.h5"], words="no such file"),
    Case(7, "inspect-not-hdf5", ["inspect", "x.h5"], files={"x.h5": "not hdf5"},
         words="not a readable HDF5 file"),
    Case(7, "inspect-foreign-hdf5", ["inspect", "x.h5"],
         setup=lambda t: __import__("h5py").File(t / "x.h5", "w").close(),
         words="not a tumorsim run file"),
    Case(7, "inspect-study-directory", ["inspect", "s"], setup=_copy_study, exit=(0, 2),
         owner="explorer", slow=True),
    _inspect_case("missing-dataset", "tumor_cells", drop="timeseries/tumor_cells"),
    _inspect_case("missing-attribute", "dimensions", attr="dimensions"),
    _inspect_case("short-series", "records", truncate="timeseries/t_cells"),
    _plot_case("missing-dataset", "tumor_cells", drop="timeseries/tumor_cells"),
    _plot_case("missing-attribute", "dt_hours", attr="dt_hours"),
    _plot_case("missing-snapshots", "snapshots/cell_type", drop="snapshots/cell_type"),
    Case(7, "plot-missing-file", ["plot", "none.h5"], words="no such file"),
    Case(7, "plot-unwritable-directory", ["plot", "r.h5", "-o", "/proc/tumorsim-figures"],
         setup=lambda t: _write_run_file(t), words="cannot write figures", slow=True),
    Case(7, "plot-study-without-runs", ["plot", "s"], setup=lambda t: (t / "s").mkdir(),
         words="no such file"),
    Case(7, "animate-not-a-run", ["animate", "x.h5"], files={"x.h5": "text"},
         words="not a readable HDF5 file"),
]


# ---------------------------------------------------------------- studies
def _stale(name, extra_args, words, setup_extra=None, files=None):
    def setup(tmp):
        _copy_study(tmp)
        if setup_extra:
            setup_extra(tmp)
    return Case(1, name, ["compare", *ARMS, "--replicates", "2", "--no-figures", "-o", "s",
                          *TINY, *extra_args], setup=setup, words=words, files=files or {},
                slow=True)


def _edit_sha(tmp):
    import h5py
    with h5py.File(tmp / "s/runs/untreated/replicate-001.h5", "r+") as f:
        f.attrs["software_version"] = "0.0.1"


def _check_reused(tmp, result):
    return [] if "4 made by this same command" in result.stdout else [
        "the same command did not reuse the 4 runs"]


def _check_fresh(tmp, result):
    moved = list((tmp / "s").glob("previous-*/runs/untreated/replicate-000.h5"))
    problems = [] if moved else ["--fresh did not keep the old runs in previous-*/"]
    import h5py
    with h5py.File(tmp / "s/runs/untreated/replicate-000.h5", "r") as f:
        if int(f.attrs["seed"]) != 99:
            problems.append("the new run does not have seed 99")
    return problems


STUDY_CASES = [
    _stale("seed-changed", ["--seed", "99"], "simulation.seed 1 on disk vs 99 now"),
    _stale("set-changed", ["--set", "tumor.death_rate_per_day=0.031"],
           "tumor.death_rate_per_day"),
    _stale("dose-edited", [], "on disk vs", files={}),   # args replaced below
    _stale("version-changed", [], "software_version 0.0.1 on disk", setup_extra=_edit_sha),
    _stale("cohort-changed", ["--set", "cohort=[]"], "on disk vs"),
    Case(1, "same-command-reuses", ["compare", *ARMS, "--replicates", "2", "--no-figures",
                                    "-o", "s", *TINY], setup=_copy_study, exit=(0,),
         complete_ok=True, check=_check_reused, slow=True),
    Case(1, "more-replicates-extends", ["compare", *ARMS, "--replicates", "3", "--no-figures",
                                        "-o", "s", *TINY], setup=_copy_study, exit=(0,),
         complete_ok=True, slow=True),
    Case(1, "fresh-moves-aside", ["compare", *ARMS, "--replicates", "2", "--no-figures",
                                  "-o", "s", "--fresh", "--seed", "99", *TINY],
         setup=_copy_study, exit=(0,), complete_ok=True, check=_check_fresh, slow=True),
    Case(1, "sweep-override-changed", ["sweep", "{lib}/tumor_only.toml", "--grid",
                                       "tumor.death_rate_per_day=0,0.1", "-o", "sw", *TINY,
                                       "--set", "tumor.division_rate_per_day=0.9"],
         setup=lambda t: tumorsim(["sweep", "{lib}/tumor_only.toml", "--grid",
                                   "tumor.death_rate_per_day=0,0.1", "-o", "sw", *TINY], t),
         words="on disk vs", slow=True),
    Case(8, "compare-onto-text-file", ["compare", *ARMS, "-o", "notes.txt", *TINY],
         files={"notes.txt": "my notes\n"}, words="not a directory",
         check=lambda t, r: [] if (t / "notes.txt").read_text() == "my notes\n" else [
             "notes.txt changed"]),
    Case(8, "sweep-onto-text-file", ["sweep", "{lib}/default.toml", "--grid",
                                     "tumor.antigenicity=1,2", "-o", "notes.txt", *TINY],
         files={"notes.txt": "my notes\n"}, words="not a directory"),
    Case(8, "compare-into-foreign-directory", ["compare", *ARMS, "-o", "mine", *TINY],
         files={"mine/summary.csv": "keep me\n"}, words="that no tumorsim study wrote",
         check=lambda t, r: [] if (t / "mine/summary.csv").read_text() == "keep me\n" else [
             "the user's summary.csv changed"]),
    Case(6, "failed-runs-reported-with-figures", ["compare", "c.toml", "--replicates", "2",
                                                  "-o", "s", *TINY],
         files={"c.toml": scenario('[[cohort]]\nkey = "tumor.death_rate_per_day"\n'
                                   'distribution = "normal"\nmean = -5.0\nsd = 0.01')},
         exit=(1,), complete_ok=True, slow=True,
         check=lambda t, r: [] if r.stderr.count("tumorsim: run failed") == 2 else [
             "the failed runs are not each reported"]),
]
# an arm file edited to another dose: same file name, other content
STUDY_CASES[2].args = ["compare", ARMS[0], "targeted_continuous.toml", "--replicates", "2",
                       "--no-figures", "-o", "s", *TINY]
STUDY_CASES[2].files = {"targeted_continuous.toml": scenario(
    "[[drugs.braf_inhibitor.doses]]\nevery_days = 1.0\ndose_mg = 480", "melanoma.toml")}


# ---------------------------------------------------------------- processes
def _children(pid: int) -> list:
    import psutil
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(procs) -> list:
    import psutil
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def kill_coordinator(sig: int, command: str = "compare", group: bool = False,
                     rerun: bool = False):
    """Start a coordinator with --workers 2, signal it while its workers run, and check
    that no worker is alive 10 s later (and, for Ctrl-C/SIGTERM, that scratch files are
    gone); with ``rerun``, the same command then finishes the study."""
    def action(tmp: Path) -> Result:
        # The study must outlast the wait below (up to ~1.4 s from its first run file to
        # the signal) by a wide margin on a fast, quiet machine, or it ends before the
        # signal and exits 0. Measured 2026-12-06 (quiet): 16 MEDIUM compare runs wrote
        # their files within ~1.3 s of the first, 24 sweep runs within ~1.6 s, which left
        # almost no margin; 72 compare runs and 96 sweep points took 5.4 and 6.7 s.
        if command == "compare":
            args = ["compare", *ARMS, "--replicates", "36", "--workers", "2", "--no-figures",
                    "-o", "s", *MEDIUM]
        else:
            grid = ",".join(f"{0.25 * k:g}" for k in range(2, 98))
            args = ["sweep", "{lib}/untreated.toml", "--grid", f"tumor.antigenicity={grid}",
                    "--workers", "2", "-o", "s", *MEDIUM]
        proc = start(args, tmp, start_new_session=True)
        problems = []
        ready = _wait_for(lambda: len(_children(proc.pid)) >= 2 and any(
            (tmp / "s" / "runs").rglob("*.h5*")), 240)
        if not ready:
            problems.append("the workers never started a run")
        time.sleep(1.0)
        workers = _children(proc.pid)
        sent = time.monotonic()
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            problems.append("the coordinator did not exit within 30 s")
        time.sleep(max(0.0, 10.0 - (time.monotonic() - sent)))
        alive = _alive(workers)
        if alive:
            problems.append(f"{len(alive)} worker(s) alive 10 s after the coordinator")
            for p in alive:
                p.kill()
        if sig != signal.SIGKILL:
            scratch = list((tmp / "s" / "runs").glob(".pretreatment-*"))
            if scratch:
                problems.append(f"scratch left: {scratch[0].name}")
        code = proc.returncode
        if rerun:
            again = tumorsim(args, tmp, timeout=600)
            if again.exit != 0:
                problems.append(f"rerun exit {again.exit}: {again.first_line}")
        return Result(code, err if sig != signal.SIGKILL else "", out, problems=problems)
    return action


def concurrent_coordinators(command: str):
    """Two coordinators on one directory: the second stops with one line and exit 2, the
    first finishes intact."""
    def action(tmp: Path) -> Result:
        # The first must still hold its lock when the second, a new process, gets to it
        # (~0.5 s after the first run file appears). Measured 2026-12-06 (quiet): a 4-run
        # compare study ended ~1.2 s after its first run file, a thin margin; 24 compare
        # runs and 24 sweep points ended 4.4 and 3.9 s after theirs.
        if command == "compare":
            args = ["compare", *ARMS, "--replicates", "12", "--no-figures", "-o", "s", *MEDIUM]
        else:
            grid = ",".join(f"{0.25 * k:g}" for k in range(2, 26))
            args = ["sweep", "{lib}/untreated.toml", "--grid", f"tumor.antigenicity={grid}",
                    "-o", "s", *MEDIUM]
        first = start(args, tmp)
        problems = []
        if not _wait_for(lambda: any((tmp / "s" / "runs").rglob("*.h5*")), 240):
            problems.append("the first coordinator never started a run")
        second = tumorsim(args, tmp, timeout=120)
        out, err = first.communicate(timeout=900)
        if first.returncode != 0:
            problems.append(f"the first coordinator exited {first.returncode}: "
                            f"{err.strip()[-200:]}")
        return Result(second.exit, second.stderr, second.stdout, problems=problems)
    return action


def first_study_on_a_new_machine(tmp: Path) -> Result:
    """An empty kernel cache and straight to `compare --workers 2` (issue 9, class 5)."""
    cache = tmp / "numba-cache"
    r = tumorsim(["compare", str(LIB / "tumor_only.toml"), "--replicates", "2", "--workers",
                  "2", "-o", "s", *TINY], tmp, timeout=1200,
                 environ=env(NUMBA_CACHE_DIR=str(cache)))
    if "2 of 2 runs on disk" not in r.stdout:
        r.problems.append("not every run finished")
    return r


PROCESS_CASES = [
    Case(4, "compare-SIGTERM", action=kill_coordinator(signal.SIGTERM), exit=(143,),
         slow=True, complete_ok=True),
    Case(4, "compare-SIGKILL-then-rerun", action=kill_coordinator(signal.SIGKILL, rerun=True),
         exit=(-9,), slow=True, complete_ok=True),
    Case(4, "compare-ctrl-c", action=kill_coordinator(signal.SIGINT, group=True),
         exit=(130,), slow=True, complete_ok=True),
    Case(4, "sweep-SIGTERM", action=kill_coordinator(signal.SIGTERM, "sweep"), exit=(143,),
         slow=True, complete_ok=True),
    Case(4, "sweep-SIGKILL", action=kill_coordinator(signal.SIGKILL, "sweep"), exit=(-9,),
         slow=True, complete_ok=True),
    Case(2, "two-compare-coordinators", action=concurrent_coordinators("compare"),
         words="in use by another tumorsim command", slow=True, complete_ok=True),
    Case(2, "two-sweep-coordinators", action=concurrent_coordinators("sweep"),
         words="in use by another tumorsim command", slow=True, complete_ok=True),
    Case(5, "first-study-empty-kernel-cache", action=first_study_on_a_new_machine, exit=(0,),
         slow=True, complete_ok=True, timeout=1200),
]


# ---------------------------------------------------------------- run files (runfile)
LONG_RUN = ["run", "--quiet", "-o", "o.h5", "--set", "simulation.dimensions=[200,200]",
            "--set", "simulation.duration_days=100000", "--set", "simulation.dt_hours=1"]


def _killed_run(after_seconds: float, recover: bool):
    def action(tmp: Path) -> Result:
        proc = start(LONG_RUN, tmp)
        # from when the run has started recording (its partial run exists; the lock
        # file .o.h5.lock comes first and holds nothing to recover)
        _wait_for(lambda: any(tmp.glob("o.h5.partial-*")), 120)
        time.sleep(after_seconds)
        proc.kill()
        proc.communicate()
        problems = []
        if recover:
            r = tumorsim(["recover", "o.h5"], tmp, timeout=120)
            if r.exit != 0:
                return r
        r = tumorsim(["inspect", "o.h5"], tmp, timeout=120)
        if r.exit == 0 and "incomplete" not in r.stdout:
            problems.append("inspect does not say incomplete")
        r.problems = problems
        return r
    return action


def _second_writer(tmp: Path) -> Result:
    first = start(LONG_RUN, tmp)
    _wait_for(lambda: any(tmp.glob("*o.h5*")), 120)
    time.sleep(2.0)
    second = tumorsim(["run", "--quiet", "-o", "o.h5", *TINY], tmp, timeout=300)
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=60)
    r = tumorsim(["inspect", "o.h5"], tmp, timeout=120)
    second.problems = [] if r.exit == 0 else [f"the first run's file is unreadable: "
                                              f"{r.first_line}"]
    return second


def _resume(tmp: Path) -> Result:
    # killed once a checkpoint exists (one a second), long before the run could finish:
    # 2000 days take ~5 s here (400 took ~1.4 s, and a run that ended between two polls
    # for its first checkpoint left nothing to resume)
    proc = start(["run", "--quiet", "-o", "o.h5", *MEDIUM, "--set",
                  "simulation.duration_days=2000", "--set", "output.checkpoint_every_seconds=1"],
                 tmp)
    _wait_for(lambda: any(tmp.glob("o.h5.partial-*/checkpoint.h5")), 120)
    proc.kill()
    proc.communicate()
    return tumorsim(["resume", "o.h5"], tmp, timeout=600)


RUNFILE_CASES = [
    Case(8, "run-onto-text-file", ["run", "--quiet", "-o", "notes.txt", *TINY],
         files={"notes.txt": "my notes\n"}, owner="runfile", slow=True,
         check=lambda t, r: [] if (t / "notes.txt").read_text() == "my notes\n" else [
             "notes.txt was replaced"]),
    # a run file is replaced, but only once the new run completes (until then the old one
    # stays whole), and the user is told so
    Case(8, "run-onto-existing-run", ["run", "--quiet", "-o", "r.h5", *TINY],
         setup=lambda t: _write_run_file(t), owner="runfile", slow=True, exit=(0,),
         complete_ok=True, words="replaces it when it completes"),
    Case(2, "second-run-writer", action=_second_writer, owner="runfile", slow=True),
    Case(3, "SIGKILL-run-at-0.5s-recover", action=_killed_run(0.5, True), needs="recover",
         exit=(0,), owner="runfile", slow=True),
    Case(3, "SIGKILL-run-at-3s-recover", action=_killed_run(3.0, True), needs="recover",
         exit=(0,), owner="runfile", slow=True),
    Case(3, "SIGKILL-run-then-inspect", action=_killed_run(3.0, False), exit=(0, 2),
         words="recover", owner="runfile", slow=True),
    Case(3, "resume-killed-run", action=_resume, needs="resume", exit=(0,),
         owner="runfile", slow=True, complete_ok=True),
    Case(7, "run-SIGTERM-exit-143", exit=(143,), owner="runfile", slow=True,
         action=lambda t: _signal_run(t, signal.SIGTERM)),
    Case(7, "animate-without-movie-extra", ["animate", "r.h5", "-o", "m.mp4"],
         setup=lambda t: _write_run_file(t), owner="explorer", exit=(0, 2), slow=True),
]


def _signal_run(tmp: Path, sig) -> Result:
    proc = start(LONG_RUN, tmp)
    _wait_for(lambda: any(tmp.glob("*o.h5*")), 120)
    time.sleep(2.0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return Result(proc.returncode, err, out)


CASES = VALUE_CASES + FILE_CASES + OVERRIDE_CASES + OPTION_CASES + STUDY_CASES + \
    PROCESS_CASES + RUNFILE_CASES
