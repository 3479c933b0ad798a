"""Compile a scenario's Numba kernels ahead of its first step, on several cores at once.

A first run on an empty Numba cache spends ~40 s compiling about twenty entry kernels, one
after another as the first step reaches each (Numba's typing and lowering hold the
interpreter, so threads do not help). The kernels are independent compilation units, and
each is written to the on-disk cache when it is compiled; so a pool of spawned processes
can compile them side by side before the run, and the run then loads every one from the
cache. Only the argument types are needed to compile a kernel without calling it, and a
kernel's argument types do not depend on the scenario's sizes or values: they are recorded
once, from the library scenarios, in ``kernel_signatures.json`` beside this module
(``python tests/test_startup.py --write-signatures``; ``tests/test_startup.py`` fails when
the file no longer matches what the library compiles), with each kernel's compile time on
the machine that recorded it, so the longest go first.

What goes ahead: every recorded signature of the scenario's kernels (``engine.kernels_for``)
that have nothing in the cache. The pool has one process per usable core, at most four
(``TUMORSIM_COMPILE_WORKERS`` sets the count; 1 = no pool: the run compiles each kernel at
its first call, as before). A busy core costs little here: compiling is independent work
with no barrier to wait at (unlike a parallel region, DESIGN.md), so two compilations
sharing a core take about as long as one after the other. A kernel whose recorded
signature no longer compiles (a stale file) is skipped and compiles at its first call; the
results never depend on any of this. On a terminal one line counts the compilations as
they finish (:class:`Progress`).
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SIGNATURES_FILE = Path(__file__).with_name("kernel_signatures.json")
WORKERS_VARIABLE = "TUMORSIM_COMPILE_WORKERS"
# The longest single compilation (the tumour kernel's event loop, the 2D multigrid solve:
# ~10 s each here) bounds the wall time from about four processes on.
MOST_WORKERS = 4


@dataclass(frozen=True)
class Signature:
    """One compilation of one kernel: its dotted name, argument types (as
    :func:`encode_type` writes them) and the seconds it took when recorded."""
    kernel: str
    args: tuple
    seconds: float


# ----------------------------------------------------------------------------- types
def encode_type(numba_type) -> str | list:
    """A JSON form of an argument type: an array as ``[dtype, ndim, layout]`` (+
    ``"readonly"``), a number or boolean by its NumPy dtype name, a tuple as
    ``{"tuple": [...]}``. Anything else raises TypeError (``tests/test_startup.py`` then
    says which kernel takes it)."""
    from numba.core import types
    from numba.np.numpy_support import as_dtype
    if isinstance(numba_type, types.Array):
        code = [as_dtype(numba_type.dtype).name, numba_type.ndim, numba_type.layout]
        return code + ["readonly"] if not numba_type.mutable else code
    if isinstance(numba_type, (types.Integer, types.Float, types.Boolean)):
        return as_dtype(numba_type).name
    if isinstance(numba_type, types.BaseTuple):
        return {"tuple": [encode_type(t) for t in numba_type.types]}
    raise TypeError(f"cannot record argument type {numba_type}")


def decode_type(code):
    """The numba type :func:`encode_type` wrote as ``code``."""
    import numpy as np
    from numba import from_dtype
    from numba.core import types
    if isinstance(code, dict):
        return types.Tuple.from_types([decode_type(c) for c in code["tuple"]])
    if isinstance(code, list):
        dtype, ndim, layout, *flags = code
        return types.Array(from_dtype(np.dtype(dtype)), ndim, layout,
                           readonly="readonly" in flags)
    return from_dtype(np.dtype(code))


def kernel_name(dispatcher) -> str:
    """The dotted name a kernel is imported by: ``kernels.<module>.<function>``, or
    ``kernels.serial.<module>.<function>`` in the serial flavour (``kernels.flavour``)."""
    return f"{dispatcher.py_func.__module__}.{dispatcher.__name__}"


def recorded_name(name: str) -> str:
    """The name a kernel's signatures are recorded under, the same for both flavours: their
    source, and so the argument types the model passes, are the same."""
    import kernels
    serial = kernels.SERIAL_PACKAGE + "."
    return f"{kernels.__name__}.{name[len(serial):]}" if name.startswith(serial) else name


def _dispatcher(name: str):
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


# ----------------------------------------------------------------------------- the file
def load_signatures(path: Path = SIGNATURES_FILE) -> dict[str, list[Signature]]:
    """Kernel name -> its recorded signatures; empty when the file is missing or unreadable
    (then nothing is compiled ahead)."""
    try:
        recorded = json.loads(Path(path).read_text())["kernels"]
        return {name: [Signature(name, tuple(s["args"]), float(s["seconds"])) for s in sigs]
                for name, sigs in recorded.items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_signatures(signatures: dict[str, list[Signature]], source: str,
                     path: Path = SIGNATURES_FILE) -> None:
    about = ("argument types of the kernels the library scenarios call, and their compile "
             "seconds; written by " + source)
    # one signature per line, so a changed kernel shows as one changed line in a diff
    kernels = ",\n".join(
        f"  {json.dumps(name)}: [\n" + ",\n".join(
            "   " + json.dumps({"args": list(s.args), "seconds": round(s.seconds, 2)})
            for s in sigs) + "\n  ]"
        for name, sigs in sorted(signatures.items()))
    Path(path).write_text(f'{{\n "about": {json.dumps(about)},\n "kernels": {{\n'
                          f"{kernels}\n }}\n}}\n")


def pending(kernels, signatures: dict[str, list[Signature]] | None = None) -> list[Signature]:
    """The recorded signatures of those ``kernels`` that have nothing compiled in this
    process or in the cache, longest first."""
    from kernels.jit import needs_compiling
    signatures = load_signatures() if signatures is None else signatures
    todo = [Signature(kernel_name(k), s.args, s.seconds) for k in kernels
            if needs_compiling((k,))
            for s in signatures.get(recorded_name(kernel_name(k)), ())]
    return sorted(todo, key=lambda s: (-s.seconds, s.kernel))


# ----------------------------------------------------------------------------- compiling
def compile_signature(kernel: str, args: tuple) -> tuple[str, float | None]:
    """Compile (and so cache) one signature; the seconds it took, None if it does not
    compile (the kernel then compiles at its first call). A pool task."""
    started = time.perf_counter()
    try:
        _dispatcher(kernel).compile(tuple(decode_type(a) for a in args))
    except Exception:  # noqa: BLE001 - a stale signature: the first call compiles instead
        return kernel, None
    return kernel, time.perf_counter() - started


def worker_count(todo: int, asked: int | None = None) -> int:
    """Processes for ``todo`` compilations: ``TUMORSIM_COMPILE_WORKERS`` if set, else
    ``asked`` (a study's workers), else one per usable core up to ``MOST_WORKERS``; never
    more than ``todo``."""
    setting = os.environ.get(WORKERS_VARIABLE, "").strip()
    if setting.isdigit():
        wanted = int(setting)
    elif asked is not None:
        wanted = asked
    else:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
        wanted = min(cores, MOST_WORKERS)
    return max(1, min(wanted, todo))


def compile_ahead(kernels, *, workers: int | None = None) -> tuple[int, int]:
    """Compile the pending signatures of ``kernels`` on a pool of spawned processes (as many
    as :func:`worker_count` gives) that follow this one (``study.workers``: they exit if it
    dies, and stop with it on Ctrl-C or SIGTERM); returns (signatures compiled, processes
    used). With one process nothing is done here: (0, 1). Call it from a coordinator (a
    lone run, a study before its pool starts), never from a pool worker."""
    from simulator.study import workers as workers_mod
    todo = pending(kernels)
    workers = worker_count(len(todo), workers)
    if workers <= 1 or not workers_mod.spawned_processes_can_start():
        return 0, 1
    done = []
    progress = Progress(len(todo))

    def collect(result):
        done.append(result[1] is not None)
        progress.advance()

    try:
        workers_mod.execute(compile_signature, [(s.kernel, s.args) for s in todo], collect,
                            workers, None, None)
    except Exception:  # noqa: BLE001 - no pool here (no /dev/shm, a sandbox): compile as we go
        return sum(done), 1
    finally:
        progress.close()
    return sum(done), workers


class Progress:
    """One terminal line, "compiled k of n", rewritten as each compilation ends: the
    compiling ahead of a first run takes ~20 s here, with nothing else to show meanwhile.
    Silent where the stream is not a terminal (a log, a pipe, a test's capture)."""

    def __init__(self, total: int, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.total = total
        self.done = 0
        try:
            self.shown = total > 0 and self.stream.isatty()
        except (AttributeError, ValueError):  # no isatty, or a closed stream
            self.shown = False

    def advance(self):
        self.done += 1
        if self.shown:
            self.stream.write(f"\r  compiled {self.done} of {self.total}")
            self.stream.flush()

    def close(self):
        if self.shown and self.done:
            self.stream.write("\n")
            self.stream.flush()


def compile_ahead_for(scenarios, workers: int | None = None) -> tuple[int, int]:
    """:func:`compile_ahead` of the kernels of all ``scenarios``. A study passes its
    ``workers`` before its pool starts, so the kernels compile once on that many processes
    instead of in every worker at its first run, side by side (on one worker, or on Dask,
    a study compiles as it goes)."""
    from simulator import engine
    kernels = tuple(dict.fromkeys(k for s in scenarios for k in engine.kernels_for(s)))
    return compile_ahead(kernels, workers=workers)
