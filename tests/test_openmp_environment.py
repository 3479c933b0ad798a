"""The OpenMP environment ``kernels.jit.configure_openmp`` sets before Numba starts its
thread pool: idle threads sleep (passive) after a short spin, and a value the user set
wins. Why these values: ``kernels.jit.configure_openmp`` and benchmarks/README.md
(``bench_threads.py``, ``bench_full_step.py``)."""
import os

from kernels import jit as kernel_jit


def test_defaults_are_passive_with_a_short_spin(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    kernel_jit.configure_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "passive"
    assert os.environ["GOMP_SPINCOUNT"] == str(kernel_jit.SPIN_COUNT) == "30000"


def test_the_users_values_win(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    monkeypatch.setenv("GOMP_SPINCOUNT", "infinite")
    kernel_jit.configure_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "active"
    assert os.environ["GOMP_SPINCOUNT"] == "infinite"
