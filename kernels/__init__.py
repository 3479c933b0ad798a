"""Numba kernels: arrays and scalars in, arrays out. No Python objects, no I/O.

Every module here is importable without compiling anything; functions compile on first
call and are cached on disk (``cache=True``).
"""
