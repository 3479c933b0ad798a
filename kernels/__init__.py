"""Numba kernels: arrays and scalars in, arrays out. No Python objects, no I/O.

Every module here is importable without compiling anything; functions compile on first
call and are cached on disk (``cache=True``).

Two flavours of the same source: ``kernels.<module>`` (``parallel_jit`` kernels run
``prange`` loops on Numba's threads) and ``kernels.serial.<module>`` (the same files
compiled without ``parallel``: no parallel region, ~1/3 less to compile; cached apart,
``kernels.jit.SERIAL``). They give the same results (parallel kernels are conflict-free
and thread-count invariant); a run picks one by its lattice's size
(``simulator.model.state.kernel_flavour``).
"""
import importlib
import pathlib

# the serial flavour's package: the same files loaded a second time (``kernels/serial``)
SERIAL_PACKAGE = f"{__name__}.serial"
# every kernel module of the package (``jit`` comes with them)
MODULES = tuple(sorted(p.stem for p in pathlib.Path(__file__).parent.glob("*.py")
                       if p.stem not in ("__init__", "jit")))
_FLAVOURS = {}


def flavour(serial: bool):
    """The package whose modules a run calls, every kernel module imported (attributes
    ``.tumor``, ``.multigrid``, ...): ``kernels.serial`` or ``kernels`` itself. Importing
    compiles nothing."""
    package = _FLAVOURS.get(serial)
    if package is None:
        package = importlib.import_module(SERIAL_PACKAGE if serial else __name__)
        for name in MODULES:
            importlib.import_module(f"{package.__name__}.{name}")
        _FLAVOURS[serial] = package
    return package
