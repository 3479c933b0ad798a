"""Helpers shared by the benchmark scripts: machine and version description, machine-load
warnings, timing statistics, subprocess timing and the JSON result file.

Every script builds its result with :func:`new_result` (machine, versions, git state, load
average at the start and a warning when the machine is busy), adds its sections, then calls
:func:`finish_result` (load at the end, CPU used by other processes) and
:func:`write_json`. ``ForeignCpu`` measures how much CPU *other* processes took during a
timed section: the direct evidence that a figure (a 2-thread one above all) was disturbed.
"""
from __future__ import annotations

import datetime
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numba  # noqa: E402
import numpy as np  # noqa: E402

from simulator.output import runfile as io_mod  # noqa: E402

BUSY_LOAD = 0.5            # 1-min load average above which 2-thread figures are suspect
FOREIGN_CPU_LIMIT = 0.2    # cores used by other processes during a timed section
BUSY_MESSAGE = ("the machine is busy and the 2-thread / multi-worker figures are unreliable "
                "(on a 2-core machine a 2-thread Numba region slows down 25-60x while another "
                "process holds a core); rerun on a quiet machine")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


_SIZE_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}  # sysfs cache sizes: "32768K"


def last_level_cache_bytes() -> int | None:
    """Size of the largest cache Linux lists for CPU 0 (``/sys/.../cache/index*``), the
    last level; None where it lists none. Whether a lattice's state fits in it decides
    which stream bandwidth bounds its sweeps (``bench_machine.py``)."""
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        if text[-1:] in _SIZE_UNITS and text[:-1].isdigit():
            sizes.append(int(text[:-1]) * _SIZE_UNITS[text[-1]])
        elif text.isdigit():
            sizes.append(int(text))
    return max(sizes, default=None)


def uptime_text() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def file_at(rev: str, path: str) -> str:
    """The text of ``path`` at git revision ``rev`` of this checkout (``git show``), for
    benchmarks that time an earlier version of a kernel beside today's."""
    return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def write_module(target: Path, text: str) -> None:
    """Write a module's source to ``target`` unless it already holds ``text``, whole or not
    at all: another benchmark run may be importing it."""
    if target.exists() and target.read_text() == text:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(text)
    os.replace(partial, target)


def module_at(rev: str, path: str, name: str):
    """The module ``path`` (e.g. ``kernels/tumor.py``) as it was at git revision ``rev``,
    imported as ``name_<sha>`` from a git-ignored folder of ``results`` (``.at_<sha>``), so
    a benchmark can time it beside today's and Numba's cache finds it again next time. Its
    own imports (``kernels.lattice`` ...) are today's."""
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    folder = RESULTS / f".at_{sha}"
    module = f"{name}_{sha}"
    target = folder / f"{module}.py"
    text = file_at(sha, path)
    write_module(target, text)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(module)


def git_state() -> dict:
    commit = io_mod.git_commit()
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                             cwd=ROOT, capture_output=True, text=True, timeout=5)
        dirty = bool(out.stdout.strip()) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return dict(commit=commit, dirty_tracked_files=dirty)


def versions(optional=("psutil",)) -> dict:
    """Library versions; ``optional`` packages are looked up by distribution name (None
    when not installed)."""
    import h5py
    import llvmlite
    out = dict(python=platform.python_version(), numpy=np.__version__, numba=numba.__version__,
               llvmlite=llvmlite.__version__, h5py=h5py.__version__,
               hdf5=h5py.version.hdf5_version, tumorsim=io_mod.software_version())
    for name in optional:
        try:
            from importlib.metadata import version
            out[name] = version(name)
        except Exception:  # noqa: BLE001 - not installed
            out[name] = None
    return out


def machine_info() -> dict:
    try:
        import psutil
        physical = psutil.cpu_count(logical=False)
        memory = psutil.virtual_memory().total
    except ImportError:
        physical, memory = None, None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return dict(cpu_model=cpu_model(), logical_cpus=os.cpu_count(), physical_cores=physical,
                usable_cpus=usable, memory_bytes=memory,
                last_level_cache_bytes=last_level_cache_bytes(), platform=platform.platform(),
                numba_num_threads=numba.config.NUMBA_NUM_THREADS)


class ForeignCpu:
    """CPU time used by every other process (and the hypervisor: steal) during a phase, in
    cores: (machine busy CPU seconds - this process's CPU seconds) / wall seconds.

    ``include_children=True`` also subtracts the CPU of this process's finished child
    processes (worker pools, subprocesses), so a benchmark that runs its work in children
    does not count its own work as foreign."""

    def __init__(self, include_children: bool = False):
        self.include_children = include_children
        self.cores = None
        try:
            import psutil
            self.psutil = psutil
        except ImportError:
            self.psutil = None

    def _own(self):
        t = self.psutil.Process().cpu_times()
        own = t.user + t.system
        if self.include_children:
            own += t.children_user + t.children_system
        return own

    def __enter__(self):
        if self.psutil:
            self.t0 = time.perf_counter()
            self.machine0 = self.psutil.cpu_times()
            self.own0 = self._own()
        return self

    @staticmethod
    def _busy(t):
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    def __exit__(self, *exc):
        if self.psutil:
            wall = time.perf_counter() - self.t0
            machine = self._busy(self.psutil.cpu_times()) - self._busy(self.machine0)
            own = self._own() - self.own0
            self.cores = max(machine - own, 0.0) / wall if wall > 0 else None
        return False


# ---------------------------------------------------------------------- result file
def new_result(benchmark: str, mode: str, config: dict, optional=("psutil",)) -> dict:
    """The common head of every result: what ran, where, on what, and how busy the machine
    was at the start (a warning is printed and stored when the load is high)."""
    load_start = load_average()
    res = dict(benchmark=benchmark, mode=mode, config=config,
               started=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               command=" ".join([Path(sys.executable).name] + sys.argv),
               machine=machine_info(), versions=versions(optional), git=git_state(),
               load_average_start=load_start, uptime_start=uptime_text(), warnings=[])
    busy = bool(load_start) and load_start[0] > BUSY_LOAD
    res["busy_at_start"] = busy
    if busy:
        warn(res, f"1-min load average {load_start[0]} > {BUSY_LOAD} at start: {BUSY_MESSAGE}")
    return res


def warn(res: dict, message: str) -> None:
    res["warnings"].append(message)
    log(f"WARNING: {message}")


def check_foreign(res: dict, cores, section: str) -> None:
    """Warn when other processes used more than FOREIGN_CPU_LIMIT cores during ``section``."""
    if cores is not None and cores > FOREIGN_CPU_LIMIT:
        warn(res, f"other processes used {cores:.2f} cores on average during {section}: its "
                  "figures (2-thread / multi-worker ones above all) are disturbed")


def time_cases(res: dict, cases: dict, chosen, measure) -> None:
    """``res["cases"][name] = measure(build)`` for each case (name -> a function building its
    start state) named in ``chosen`` (None: every one), in order, logging each; then warns
    if other processes took CPU meanwhile (:func:`check_foreign`)."""
    res["cases"] = {}
    with ForeignCpu() as foreign:
        for name, build in cases.items():
            if chosen is not None and name not in chosen:
                continue
            log(f"  {name} ...")
            res["cases"][name] = measure(build)
    check_foreign(res, foreign.cores, "the timed steps")


def check_loaded_from_cache(res: dict, kernels: dict, section: str) -> None:
    """Warn when a timed kernel (``kernels``: label -> Numba dispatcher) was compiled in this
    process rather than loaded from Numba's cache: the same source ran 15-19% slower
    compiled here than loaded (2026-12-07, migration at 1 and 2 threads, two modules of
    one source side by side; equal once both were cached), so such figures, and ratios
    against a cached kernel above all, are biased until the script is run again."""
    fresh = [label for label, kernel in kernels.items()
             if sum(kernel.stats.cache_misses.values()) > 0]
    if fresh:
        warn(res, f"{', '.join(fresh)} compiled in this process for {section}: code compiled "
                  "in the running process ran 15-19% slower than the same code loaded from "
                  "Numba's cache; run the script again (now cached) for fair figures")


def finish_result(res: dict) -> None:
    res["load_average_end"], res["uptime_end"] = load_average(), uptime_text()


def write_json(res: dict, path: Path) -> None:
    """Write the results to ``path`` whole or not at all (``simulator.output.atomic``): a
    benchmark killed while writing leaves the previous results, not a truncated file, and
    two writing the same file at once are refused rather than interleaved."""
    from simulator.output import atomic
    path = Path(path)
    with atomic.writing(path, overwrite=True, what="benchmark result") as work:
        work.tmp.write_text(json.dumps(res, indent=2, default=_json_default) + "\n")
    try:
        shown = path.resolve().relative_to(ROOT)
    except ValueError:
        shown = path
    print(f"wrote {shown}")


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return float(value)


def print_header(res: dict, title: str, optional=("psutil",)) -> None:
    """Title, commit, machine, versions, load averages and the warnings so far."""
    m, g, v = res["machine"], res["git"], res["versions"]
    print(f"{title} ({res['mode']})  {res['started']}")
    dirty = " (tracked files modified)" if g["dirty_tracked_files"] else ""
    print(f"commit {(g['commit'] or '?')[:12]}{dirty}"
          f"; {m['cpu_model']}, {m['logical_cpus']} logical CPUs ({m['usable_cpus']} usable)"
          + (f", last-level cache {m['last_level_cache_bytes'] / 2**20:g} MiB"
             if m.get("last_level_cache_bytes") else "")
          + f", NUMBA_NUM_THREADS={m['numba_num_threads']}"
          + (f", threading layer {res['threading_layer']}" if res.get("threading_layer") else ""))
    extra = "".join(f", {name} {v.get(name)}" for name in optional)
    print(f"python {v['python']}, numpy {v['numpy']}, numba {v['numba']}, h5py {v['h5py']} "
          f"(HDF5 {v['hdf5']}){extra}")
    print(f"load average at start: {res['load_average_start']}   "
          f"at end: {res.get('load_average_end')}")
    for w in res["warnings"]:
        print(f"WARNING: {w}")


def default_json(name: str) -> Path:
    return RESULTS / f"{name}.json"


# ---------------------------------------------------------------------- statistics
def summarise(walls, updates, steps) -> dict:
    """Best / median wall seconds of repeats of ``steps`` steps doing ``updates`` cell
    updates each, as ms per step and updates per second."""
    best, median = min(walls), statistics.median(walls)
    return dict(walls_s=list(walls), best_s=best, median_s=median,
                ms_per_step_best=1e3 * best / steps, ms_per_step_median=1e3 * median / steps,
                updates_per_s_best=updates / best, updates_per_s_median=updates / median)


def verdict(value, target, higher_is_better=True) -> str:
    if value is None:
        return "n/a"
    return "PASS" if (value >= target if higher_is_better else value <= target) else "FAIL"


def target_row(name: str, value, target: float, text: str, higher_is_better=True) -> dict:
    return dict(name=name, value=value, target=text,
                verdict=verdict(value, target, higher_is_better))


def print_targets(targets, note=lambda t: "") -> None:
    print("")
    print("Targets")
    for t in targets:
        print(f"  {t['name']:<56}{fmt_value(t['value']):>10}  {t['target']:<11}"
              f"{t['verdict']}{note(t)}")


def fmt_value(v) -> str:
    if v is None:
        return "-"
    if v >= 1e5:
        return f"{v / 1e6:.1f} M"
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


# ---------------------------------------------------------------------- subprocesses
def child_env(env_extra=None) -> dict:
    """The environment of a measured child: this one, with the repository on the path and
    Python's bytecode cache on, as a default Python has it. (This machine's environment
    sets PYTHONDONTWRITEBYTECODE=1; a child would then compile the package's sources on
    every start, ~0.09 s that no user's warm start pays.)"""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    env.update(env_extra or {})
    return env


# Child-process code for start-up measurements, in three parts (see first_step_child)
_FIRST_STEP_IMPORTS = r"""
import time
t0 = time.perf_counter()
import json, sys, tempfile
from pathlib import Path
from simulator import engine as E
from simulator.output.recorder import Recorder
from simulator.scenario import load
from simulator.study.workers import skip_final_collection
t_import = time.perf_counter()
"""
_FIRST_STEP_RUN = r"""
scenario = load(None)   # the built-in default (immune + fields): what `tumorsim run` starts
from simulator.study.runner import prepare_kernels
# as `tumorsim run`: compile what the cache lacks on several processes first
compiled_ahead, compile_workers = prepare_kernels(scenario, compile_ahead=True)
t_ahead = time.perf_counter()
engine = E.Engine(scenario)
t_build = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    recorder = Recorder(Path(tmp) / "first.h5", scenario, n_clones=1 << engine.n_targets)
    E.run(scenario, recorder, engine=engine, until_step=1)
    recorder.close("complete")
t_step = time.perf_counter()
import numba.core.registry as registry
compiled = sorted({f"{obj.py_func.__module__}.{obj.py_func.__name__}"
                   for mod, m in list(sys.modules.items()) if mod.startswith("kernels.")
                   for obj in vars(m).values()
                   if isinstance(obj, registry.CPUDispatcher) and obj.signatures})
result = dict(import_s=t_import - t0, ahead_s=t_ahead - t_import, build_s=t_build - t_ahead,
              first_step_s=t_step - t_build, in_process_s=t_step - t0,
              dimensions=list(scenario.simulation.dimensions), compiled_kernels=compiled,
              compiled_ahead=compiled_ahead, compile_workers=compile_workers)
"""


def first_step_child(setup: str = "", report: str = "") -> str:
    """Python code for a child process that imports the engine, compiles ahead what the
    cache lacks (``study.precompile``, as ``tumorsim run`` does; ``TUMORSIM_COMPILE_WORKERS=1``
    in the child's environment turns it off), builds the built-in default scenario's engine
    and records its first step (what ``tumorsim run`` does before its second step), then
    prints ``result`` (import_s, ahead_s, build_s, first_step_s, in_process_s,
    dimensions, compiled_kernels, compiled_ahead, compile_workers) as one JSON line for
    :func:`run_child`, and exits as ``tumorsim`` does (``study.workers.skip_final_collection``).
    ``setup`` runs after the timed imports, before the build; ``report`` after the step,
    and may add keys to ``result``."""
    return (_FIRST_STEP_IMPORTS + setup + _FIRST_STEP_RUN + report
            + "\nprint(json.dumps(result))\nskip_final_collection()   # as `tumorsim` exits\n")


def run_child(code, env_extra=None, args=(), timeout=600):
    """Run ``python -c code args`` from the repository root; returns (wall seconds from the
    parent, the JSON object the child printed on its last line, or {})."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT,
                          env=child_env(env_extra), capture_output=True, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    lines = proc.stdout.strip().splitlines()
    detail = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return wall, detail
