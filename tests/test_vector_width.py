"""The vector width the package asks LLVM for (``kernels.jit.use_wide_vectors``): 512-bit
registers on the CPUs listed, Numba's default elsewhere and whenever the user chose. That
either width gives the same bits: ``tests/test_fields.py`` (the multigrid solve compiled
both ways) and benchmarks/README.md (the full step)."""
import numba
import pytest

from kernels import jit as kernel_jit

HOST_LIKE = "+sse2,+avx,+avx2,+fma,+avx512f,+avx512dq,+avx512vl,-amx-fp8"


def test_wide_on_the_listed_cpus_with_avx512():
    for cpu in sorted(kernel_jit.WIDE_VECTOR_CPUS):
        assert kernel_jit.wide_vector_features(cpu, HOST_LIKE, {}) == \
            HOST_LIKE + ",-prefer-256-bit"


@pytest.mark.parametrize("cpu, features, environ", [
    ("skylake-avx512", HOST_LIKE, {}),          # its clock drops under 512-bit code
    ("znver3", "+sse2,+avx2", {}),
    ("emeraldrapids", HOST_LIKE.replace("+avx512f", "-avx512f"), {}),
    ("emeraldrapids", HOST_LIKE, {"TUMORSIM_WIDE_VECTORS": "0"}),
    ("emeraldrapids", HOST_LIKE, {"NUMBA_CPU_FEATURES": "+sse2"}),
    ("emeraldrapids", HOST_LIKE, {"NUMBA_CPU_NAME": "generic"}),
], ids=["skylake", "no-avx512-cpu", "avx512-off", "switched-off", "user-features",
        "user-cpu"])
def test_numbas_default_otherwise(cpu, features, environ):
    assert kernel_jit.wide_vector_features(cpu, features, environ) is None


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="no code generator without JIT")
def test_this_process_follows_the_rule(monkeypatch):
    """The test session imports kernels.jit before anything compiles (conftest.py), so its
    code generator has the features the rule gives this host."""
    monkeypatch.setenv(kernel_jit.WIDE_VECTORS_SWITCH, "1")  # restored after the test
    import llvmlite.binding as llvm
    from numba.core.registry import cpu_target
    expected = kernel_jit.wide_vector_features(llvm.get_host_cpu_name(),
                                               llvm.get_host_cpu_features().flatten(), {})
    features = cpu_target.target_context.codegen().magic_tuple()[2]
    assert ("-prefer-256-bit" in features) == (expected is not None)
    # once the code generator exists, the features can no longer change; processes started
    # from here are told to compile what this one runs
    assert kernel_jit.use_wide_vectors() is False
    assert kernel_jit.wide_vector_features(
        llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()) is None
