"""The vector width ``kernels.jit.prefer_widest_vectors`` lets LLVM use: 512 bits on an
AVX-512 core (LLVM's own tuning prefers 256), what the user set otherwise, and the same
bits either way (fastmath is off, so a wider vector reorders no operation). Each check
runs in a fresh process: Numba fixes its CPU features when its CPU target is first set up.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from kernels import jit as kernel_jit
from conftest import needs_jit

pytestmark = needs_jit


def _host():
    """(CPU name, Numba's host feature string) of this machine."""
    import llvmlite.binding as llvm
    from numba.core import codegen
    return llvm.get_host_cpu_name(), codegen.get_host_cpu_features()


def _widens_here() -> bool:
    name, features = _host()
    return "+avx512f" in features.split(",") and name not in kernel_jit.KEEP_256_BIT_CORES


def _fresh(code: str, **env) -> dict:
    """What ``code`` (which defines ``out``, a dict) gives in a fresh interpreter whose
    environment has no NUMBA_CPU_* settings but ``env``'s."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    clean.update(env)
    script = textwrap.dedent(code) + "\nimport json; print(json.dumps(out))\n"
    done = subprocess.run([sys.executable, "-c", script], env=clean, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


FEATURES_IN_USE = """
import numba
import kernels.jit
from kernels.rng import mix64
mix64(1)
library = mix64.overloads[mix64.signatures[0]].library
out = dict(config=numba.config.CPU_FEATURES, used=library.codegen.magic_tuple()[2])
"""


def test_an_avx512_core_gets_512_bit_vectors_and_others_llvms_choice():
    got = _fresh(FEATURES_IN_USE)
    host = _host()[1]
    if _widens_here():
        assert got["config"] == got["used"] == host + ",-prefer-256-bit"
    else:
        assert got["config"] is None and got["used"] == host


def test_the_users_cpu_features_win():
    host = _host()[1]
    got = _fresh(FEATURES_IN_USE, NUMBA_CPU_FEATURES=host)
    assert got["config"] == got["used"] == host


def test_a_cpu_target_set_up_before_the_kernels_is_left_alone():
    got = _fresh("""
        import numba
        numba.njit(lambda x: x + 1)(1)  # sets up Numba's CPU target: its features are fixed
        import kernels.jit
        out = dict(widened=kernels.jit.prefer_widest_vectors(),
                   config=numba.config.CPU_FEATURES)
        """)
    assert got == dict(widened=False, config=None)


SOLVE_AND_POWERS = """
import hashlib
import numpy as np
import numba
from kernels.powers import power
from simulator.model.tissue import FieldSolver

@numba.njit(cache=False)
def powers(y, h, out):
    for i in range(y.shape[0]):
        out[i] = np.float32(power(np.float64(y[i]), h))

rng = np.random.default_rng(7)
y = rng.uniform(0.0, 50.0, 100_003).astype(np.float32)
hill = np.empty_like(y)
powers(y, 1.7, hill)
padded = (131, 77)
solver = FieldSolver(padded)
kind = rng.integers(0, 4, padded).astype(np.uint8).ravel()
solver.set_tables(kind, np.array([0.01, 0.3, 2.0, 40.0, 0, 0, 0, 0]),
                  np.array([0.0, 1.0, 0.2, 5.0, 0, 0, 0, 0]))
levels = solver.levels(1.5, np.zeros(4, np.int64), np.zeros(4))
field = np.zeros(int(np.prod(padded)), np.float32)
cycles = solver.solve(field, levels, 1e-5, 60, True, "field")
out = dict(features=numba.config.CPU_FEATURES, cycles=int(cycles),
           powers=hashlib.sha256(hill.tobytes()).hexdigest(),
           field=hashlib.sha256(field.tobytes()).hexdigest())
"""


@pytest.mark.skipif(not _widens_here(), reason="LLVM's vector width is kept on this CPU")
def test_512_and_256_bit_vectors_give_the_same_bits(tmp_path):
    """The vectorised kernels the wider vectors sped up (the Hill power loop of the tumour
    response, the multigrid sweeps) give the same bits compiled either way; the 256-bit
    build (the host's features as Numba has them) compiles into a cache of its own."""
    wide = _fresh(SOLVE_AND_POWERS)
    narrow = _fresh(SOLVE_AND_POWERS, NUMBA_CPU_FEATURES=_host()[1],
                    NUMBA_CACHE_DIR=str(tmp_path))
    assert wide["features"].endswith(",-prefer-256-bit")
    assert not narrow["features"].endswith(",-prefer-256-bit")
    assert wide["cycles"] > 3
    assert {k: wide[k] for k in ("cycles", "powers", "field")} == \
        {k: narrow[k] for k in ("cycles", "powers", "field")}
