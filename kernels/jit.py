"""The one home for Numba compilation flags.

Why each flag:
- ``cache=True``: compiled kernels are written beside the source so a second process starts
  in about a second instead of recompiling.
- ``nogil=True``: lets a thread pool (or Dask's threads) run kernels concurrently.
- ``fastmath`` stays off everywhere: kernels draw random decisions as ``u < p`` and a
  reassociated rounding can flip one, breaking bit-identical results across builds.
- ``parallel=True`` only on kernels written conflict-free (gather or propose/resolve), so
  their results do not depend on the number of threads.
- ``error_model="numpy"``: division by zero gives inf/NaN instead of raising, and avoids the
  zero-check branch in inner loops.
"""
import numba

_COMMON = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

jit = numba.njit(**_COMMON)
parallel_jit = numba.njit(parallel=True, **_COMMON)
prange = numba.prange


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
