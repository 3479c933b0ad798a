"""The one home for Numba compilation flags.

Why each flag:
- ``cache=True``: compiled kernels are written beside the source so a second process starts
  in about a second instead of recompiling.
- ``nogil=True``: lets a thread pool (or Dask's threads) run kernels concurrently.
- ``fastmath`` stays off everywhere: kernels draw random decisions as ``u < p`` and a
  reassociated rounding can flip one, breaking bit-identical results across builds.
- ``parallel=True`` only on kernels written conflict-free (gather or propose/resolve), so
  their results do not depend on the number of threads. Loaded as ``kernels.serial.jit``
  (the serial flavour, ``kernels.flavour``) this module compiles them without it, and
  gives every kernel a cache entry of its own (``SERIAL``).
- ``error_model="numpy"``: division by zero gives inf/NaN instead of raising, and avoids the
  zero-check branch in inner loops.
- ``inline="always"`` (``inline_jit``) for small helpers that take arrays and run once per
  site or per event: a compiled call passes every array as a struct of seven fields and
  increments and decrements its reference count around the call, which cost more than the
  helper's work (the tumour kernel's per-cell hazard lookup took 28 ns per call that way);
  inlined in Numba's IR the refcounts go and LLVM sees the whole loop.
- ``_nrt=False`` (``nrt_free_jit``) for plain (not parallel) loops that allocate nothing:
  Numba's runtime then counts no references at all. Inlined helpers do not always shed
  them: a view taken from an array (a row's slice), or an array passed through a helper
  on one side of a branch, leaves an atomic increment and decrement that LLVM cannot pair
  up, per row or per event. Without them the multigrid passes' fixed cost per row fell
  from ~0.8 to ~0.3 us and the tumour phase took an eighth less (benchmarks/README.md).
  The caller allocates the scratch such a function needs. A prange body is compiled with
  the counts too: where they stayed in its loop (the T cells' attack round), the
  parallel kernel runs ``PARALLEL_CHUNKS`` stretches of its work, each one call of an
  NRT-free function.
"""
import hashlib
import os
import pathlib
import time

import numba

import kernels

# ----------------------------------------------------------------------------- codegen
# Intel cores whose 512-bit vector work lowers the clock enough that LLVM's preference for
# 256-bit vectors on AVX-512 hardware pays (the first AVX-512 server cores and the Xeon Phi)
KEEP_256_BIT_CORES = ("skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "knl",
                      "knm")


def prefer_widest_vectors() -> bool:
    """Let LLVM vectorise loops to the full 512 bits of an AVX-512 core (Numba's
    ``CPU_FEATURES`` gets the host's features plus ``-prefer-256-bit``, what clang's
    ``-mprefer-vector-width=512`` does); returns whether it did.

    LLVM tunes every Intel AVX-512 core to prefer 256-bit vectors, for the older cores'
    clock drop under 512-bit work, so a float32 loop ran 8 lanes wide in registers of 16.
    On this project's Emerald Rapids machine the 1000x1000 full step took 33.2-33.4 against
    33.8-35.8 ms at 1 thread (the fields' sweeps and the tumour response's vectorised
    powers; benchmarks/README.md, 2026-12-07). fastmath stays off, so no operation is
    reordered: the wider vectors give the same bits. Left as Numba has it where the user
    set ``NUMBA_CPU_NAME`` or ``NUMBA_CPU_FEATURES`` (portable caches), on the cores of
    KEEP_256_BIT_CORES, without AVX-512, and when Numba's CPU target was already set up in
    this process (its features are fixed then). Numba keys its cache by the features, so
    kernels compiled either way never mix."""
    config = numba.config
    if config.DISABLE_JIT or config.CPU_NAME is not None or config.CPU_FEATURES is not None:
        return False
    from numba.core import codegen, registry
    if "_toplevel_target_context" in vars(registry.cpu_target):
        return False
    try:
        import llvmlite.binding as llvm
        name = llvm.get_host_cpu_name()
        features = codegen.get_host_cpu_features()
    except Exception:  # noqa: BLE001 - no host information: Numba's own choice
        return False
    if "+avx512f" not in features.split(",") or name in KEEP_256_BIT_CORES:
        return False
    config.CPU_FEATURES = features + ",-prefer-256-bit"
    return True


# before any kernel is decorated (a dispatcher sets up Numba's CPU target)
prefer_widest_vectors()

_COMMON = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

# this module loaded as ``kernels.serial.jit``: the serial flavour (``kernels.serial``).
# A constant to compiled code: a branch on it is pruned before typing, so the serial
# flavour never compiles what only a parallel run takes (``if SERIAL or <one chunk>:``).
SERIAL = __name__.rsplit(".", 1)[0] == kernels.SERIAL_PACKAGE
SERIAL_QUALNAME_PREFIX = "serial."


def _decorator(**options):
    """``numba.njit(**options)``; in the serial flavour, without ``parallel``, and with
    each function's qualified name prefixed, which Numba's cache files are named by (with
    the source file's name, the same for both flavours; the cache key holds neither the
    module nor the parallel flag), so the two flavours' entries never replace each
    other's."""
    if not SERIAL:
        return numba.njit(**options)
    options.pop("parallel", None)
    compile_serial = numba.njit(**options)

    def decorate(function):
        function.__qualname__ = SERIAL_QUALNAME_PREFIX + function.__qualname__
        return compile_serial(function)
    return decorate


jit = _decorator(**_COMMON)
parallel_jit = _decorator(parallel=True, **_COMMON)
inline_jit = _decorator(inline="always", **_COMMON)
# may not allocate (np.empty would not compile): see the module docstring
nrt_free_jit = _decorator(_nrt=False, **_COMMON)
prange = numba.prange
# a parallel kernel whose body runs in an NRT-free function calls it on this many
# contiguous stretches of its work (one call each: at least one per thread)
PARALLEL_CHUNKS = 64


# ----------------------------------------------------------------------------- cache
# Numba checks a cached kernel only against its own source file: a kernel that calls or
# inlines a helper from another file of this package (every kernel uses ``kernels.rng``,
# most ``kernels.lattice``) would keep running the helper's old code from its cache after
# that file changed - a silently different simulation. So the cache is tied to all the
# package's sources together: a digest of them is kept beside the cache files, and when
# it no longer matches, the package's cache files are removed before any is loaded.
SOURCES_STAMP = "tumorsim-kernel-sources.sha256"
CACHE_SUFFIXES = (".nbi", ".nbc")


def sources_digest(folder: pathlib.Path = pathlib.Path(__file__).parent) -> str:
    """SHA-256 over the names and contents of the package's modules."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_folder() -> pathlib.Path | None:
    """Where Numba caches this package's kernels (the same folder for every module here:
    Numba picks it by source folder and ``NUMBA_CACHE_DIR``); None where Numba has no
    writable place or its internals changed."""
    try:
        from numba.core.caching import FunctionCache
        return pathlib.Path(FunctionCache(sources_digest)._cache_path)
    except Exception:  # noqa: BLE001 - private API: without it, Numba's own checks only
        return None


def drop_stale_caches(folder: pathlib.Path | None, digest: str) -> int:
    """Remove the cached kernels in ``folder`` unless its stamp says they were compiled
    from sources with this ``digest``, then stamp it; returns how many files went.
    Concurrent callers at worst remove each other's fresh entries (compiled again); a
    missing cache file is a miss to Numba, never an error."""
    if folder is None:
        return 0
    stamp = folder / SOURCES_STAMP
    try:
        if stamp.read_text() == digest:
            return 0
    except OSError:
        pass
    removed = 0
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path in folder.iterdir():
            if path.suffix in CACHE_SUFFIXES:
                try:
                    path.unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
        partial = folder / f"{SOURCES_STAMP}.{os.getpid()}"
        partial.write_text(digest)
        os.replace(partial, stamp)
    except OSError:  # a read-only cache: Numba cannot write there either
        pass
    return removed


if not numba.config.DISABLE_JIT:
    drop_stale_caches(cache_folder(), sources_digest())


def needs_compiling(kernels) -> list[str]:
    """Names of the kernels whose on-disk cache is missing or stale, so callers can say
    "compiling" before a long first call. Reads Numba's cache index (a private API, hence
    the broad guard: if it changes, we just stay quiet)."""
    names = []
    for kernel in kernels:
        try:
            if not kernel.signatures and not kernel._cache._cache_file._load_index():
                names.append(kernel.__name__)
        except Exception:  # noqa: BLE001 - jit disabled or Numba internals changed
            pass
    return names


# ----------------------------------------------------------------------------- threads
class AdaptiveThreads:
    """The Numba thread count, chosen step by step by timing (the default, "auto").

    A parallel region waits for its slowest thread: on a machine whose cores are busy with
    other processes, one descheduled thread stalls every region, and a step of a few
    hundred regions ran 5-30x slower with all cores than with one. Results are bit-identical
    for any thread count, so the count may change between any two steps: run a few steps
    with each count, keep the faster, and check again later, rarely when the answer holds.

    Protocol: ``threads_for_next_step()`` before each step, ``record(seconds)`` after it.
    The first ``WARMUP`` steps (compilation, pool start) are not compared. A comparison
    times ``PROBE`` steps with the current count and ``PROBE`` with the other, after
    ``SETTLE`` steps with it that are not compared (the first step at a new count starts
    what it uses the first time, such as Numba's thread pool and the fields' helper thread
    and second workspace: the default scenario's first 2-thread step took 1.91 ms, its
    next 1.65, and that alone kept it at one thread, benchmarks/README.md). Each count is
    judged by the mean of its probe steps, the estimate of what a run at that count costs:
    on a busy machine step times are bimodal (whether a thread lost its core during the
    step), and the best of two steps or the median of three chose the slower count in one
    to three of every four or five runs of the default scenario (benchmarks/README.md).
    All cores must be ``MARGIN`` faster to win (a tie goes to one thread, fairer to the
    machine). The choice then holds for ``hold_factor`` times the wall time the probe of
    the losing count cost, its settling steps included (at least ``MIN_HOLD_S``), doubling
    each time the same count wins again, so on a busy machine the slow probes cost a few
    per cent of the run at most; on a quiet one the short minimum hold lets a run revisit
    a choice made while its tumour was small (the default scenario's two threads gain ~5%
    in its first steps and ~40% by its end; a hold of a second, a whole default run, kept
    the first choice).
    """

    WARMUP = 2
    PROBE = 3
    SETTLE = 1
    MARGIN = 0.9
    MIN_HOLD_S = 0.25
    HOLD_FACTOR = 20.0
    MAX_HOLD_FACTOR = 640.0

    def __init__(self, most: int, start: int | None = None):
        self.most = max(1, most)
        self.current = self.most if start is None else start
        self.history = []          # (threads, seconds) of every step, for reports and tests
        self._warm = 0
        self._settling = 0         # steps at a new count left before its probe is timed
        self._times = {}           # threads -> seconds of the steps of the running comparison
        self._settled = 0.0        # seconds of the steps it did not compare (settling)
        self._probing = None       # the count under probe, or None while holding
        self._hold_left = 0.0
        self._factor = self.HOLD_FACTOR
        self._last_winner = None
        if self.most > 1:
            self._begin_comparison()

    def _begin_comparison(self):
        self._times = {self.current: []}
        self._settled = 0.0
        self._probing = self.current

    def threads_for_next_step(self) -> int:
        return self.current

    def record(self, seconds: float) -> None:
        self.history.append((self.current, seconds))
        if self.most == 1:
            return
        if self._warm < self.WARMUP:
            self._warm += 1
            return
        if self._probing is None:
            self._hold_left -= seconds
            if self._hold_left <= 0.0:
                self._begin_comparison()
            return
        if self._settling > 0:
            self._settling -= 1
            self._settled += seconds
            return
        self._times.setdefault(self.current, []).append(seconds)
        if len(self._times[self.current]) < self.PROBE:
            return
        other = 1 if self.current == self.most else self.most
        if other not in self._times:
            self.current = self._probing = other
            self._times[other] = []
            self._settling = self.SETTLE
            return
        mean = {t: sum(v) / len(v) for t, v in self._times.items()}
        winner = self.most if mean[self.most] < self.MARGIN * mean[1] else 1
        loser = 1 if winner == self.most else self.most
        self._factor = (min(2.0 * self._factor, self.MAX_HOLD_FACTOR)
                        if winner == self._last_winner else self.HOLD_FACTOR)
        self._last_winner = winner
        # what probing the loser cost, its settling step included (only the count probed
        # second settles: the first was running already)
        spent = sum(self._times[loser]) + (self._settled if loser == self.current else 0.0)
        self._hold_left = max(self.MIN_HOLD_S, self._factor * spent)
        self.current = winner
        self._probing = None


LOADAVG = "/proc/loadavg"


def runnable_elsewhere(samples: int = 3, gap_s: float = 0.002) -> int | None:
    """How many tasks besides this one are ready to run right now: the kernel's count of
    runnable tasks (``/proc/loadavg``'s fourth field, Linux; this process's reading thread
    is one of them), the least of ``samples`` readings ``gap_s`` apart so that a task that
    ran for a moment does not count. None where the count cannot be read.

    It answers at once what the 1-minute load average answers a minute late: after the
    machine's other work stops, the average still says busy for minutes (a run started
    then began at one thread and kept it), and a process started seconds ago is not in it
    yet."""
    least = None
    for k in range(samples):
        if k:
            time.sleep(gap_s)
        try:
            with open(LOADAVG) as f:
                running = int(f.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return None
        least = running if least is None else min(least, running)
        if least <= 1:
            break  # this thread alone: no later reading can be less (a quiet start waits 0 ms)
    return max(0, least - 1)


SPIN_COUNT = 3000    # GNU OpenMP's idle spins before a pool thread sleeps (configure_openmp)


def configure_openmp() -> None:
    """Environment for the OpenMP runtime (Numba's ``omp`` threading layer), read once when
    the layer starts, so this must run before the first parallel kernel; a value the user
    set wins. ``OMP_WAIT_POLICY=passive`` (idle pool threads sleep rather than spin
    without end) keeps a pool that :class:`AdaptiveThreads` has parked at one thread from
    taking CPU from the machine's other processes. ``GOMP_SPINCOUNT=3000`` (GNU OpenMP)
    lets a thread that has just finished a region spin ~0.1 ms before it sleeps, so the
    regions of one phase, a fraction of a millisecond apart, do not each wake it. When
    every migration substep was a region of its own, waking a sleeping thread for each
    cost a 2-thread full step 80 ms against 66-68 ms with a spin of 30000 (~1 ms,
    1000x1000, quiet machine). With migration in one region, 3000 and 30000 give the same
    1000x1000 step (19.0-19.1 ms), and the longer spin costs elsewhere: the default
    scenario's command took 1.83-1.88 s against 1.69-1.75 s, and all cores on a busy
    machine 3.2-5.0 s against 1.9-2.7 s (benchmarks/README.md, 2026-12-07)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    os.environ.setdefault("GOMP_SPINCOUNT", str(SPIN_COUNT))


# here, when the first kernel module is imported, not when a caller first sets a thread
# count: building an Engine runs parallel kernels, and a pool started before this ran
# with libgomp's own settings (the default scenario through ``simulator.engine.run`` with
# ``threads=0`` or 2, no count set before: 2 threads no faster than 1, 1.25 against
# 0.88 s; benchmarks/README.md)
configure_openmp()
