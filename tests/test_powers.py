"""``kernels.powers``: a power in plain float64 arithmetic, so loops of it vectorise.

Its error bound comes from the two truncated series (the module docstring): the
logarithm's remainder 2 s^17 / 17 < 1.2e-14 (absolute, |s| <= 3 - 2 sqrt 2) times |h|,
the exponential's r^12 / 12! < 6.3e-15, and the rounding of t = h ln y and of the ~30
operations after it, a few units of 2^-53 times max(1, |t|) <= 100. So the relative error
is below 1.2e-14 |h| + 1e-13 for any h ln y in the clamped range.
"""
import math

import numba
import numpy as np
import pytest

from kernels import powers
from kernels.microenvironment import hill_power

JIT_DISABLED = numba.config.DISABLE_JIT


def _bound(h):
    return 1.2e-14 * abs(h) + 1e-13


@numba.njit(error_model="numpy")
def _powers_compiled(y, h, out):
    for q in range(y.shape[0]):
        out[q] = powers.power(y[q], h)


def _cases():
    g = np.random.default_rng(5)
    # y over 60 decades, exact powers of two and the mantissa's split point sqrt(2)
    y = np.concatenate([10.0 ** g.uniform(-30, 30, 20000), 2.0 ** np.arange(-60, 61.0),
                        np.nextafter(math.sqrt(2.0), [0.0, 3.0]), [1.0, 1.5, 0.75]])
    return y


@pytest.mark.parametrize("h", [1.26, 1.0, 0.5, 2.0, 3.7, -1.3])
def test_power_within_its_error_bound(h):
    y = _cases()
    t = h * np.log(y)
    y = y[(t > powers.LOWEST) & (t < powers.HIGHEST)]
    out = np.empty_like(y)
    _powers_compiled(y, h, out)
    exact = y ** h   # NumPy's float64 power, correctly rounded to ~1e-16
    relative = np.abs(out - exact) / exact
    assert relative.max() < _bound(h)


def test_power_clamps_beyond_float32():
    """h ln y beyond [-110, 100]: the results are those of the clamp, 0 and inf in float32."""
    out = np.empty(2)
    _powers_compiled(np.array([1e-60, 1e60]), 2.0, out)
    with np.errstate(over="ignore"):   # the cast of exp(100) to float32 overflows
        assert np.float32(out[0]) == 0.0 and np.isinf(np.float32(out[1]))


def test_compiled_and_plain_python_give_the_same_bits():
    """Every operation is an IEEE double operation and no multiply-add is fused, so the
    compiled loop and the plain-Python definitions (what NUMBA_DISABLE_JIT runs) agree."""
    y = _cases()[::50]
    out = np.empty_like(y)
    _powers_compiled(y, 1.26, out)
    python = powers.power.py_func if not JIT_DISABLED else powers.power
    plain = np.array([python(float(v), 1.26) for v in y])
    np.testing.assert_array_equal(out, plain)


def test_hill_power_rounds_to_the_float32_power():
    """The Hill power in float32: within one unit in the last place of the correctly rounded
    (x / K)^h (a rounding boundary within the error bound above is the only way to differ),
    0 for x <= 0."""
    g = np.random.default_rng(8)
    x = (10.0 ** g.uniform(-6, 3, 20000)).astype(np.float32)
    half, h = 0.11, 1.26
    got = np.array([hill_power(v, half, h) for v in x], np.float32)
    want = ((x.astype(np.float64) / half) ** h).astype(np.float32)
    np.testing.assert_array_max_ulp(got, want, maxulp=1)
    assert (got == want).mean() > 0.999
    assert hill_power(np.float32(0.0), half, h) == 0.0
    assert hill_power(np.float32(-1e-6), half, h) == 0.0
