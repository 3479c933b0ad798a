"""The kernels compiled serial: ``kernels.serial.<module>`` is ``kernels/<module>.py`` loaded
a second time, with ``kernels.jit.parallel_jit`` compiling without ``parallel`` (a
``prange`` runs as ``range``) and every kernel's cache entries apart from the parallel
ones (``kernels.jit.SERIAL``). Same source, same results; see ``kernels.flavour``."""
import pathlib

# this package's modules are the files of the folder above (their imports are relative)
__path__ = [str(pathlib.Path(__file__).resolve().parent.parent)]
