"""A real power ``y ** h`` that LLVM can vectorise (no call into the maths library).

A loop that calls ``pow`` (or ``powf``) runs one call per element: the float32 ``powf``
costs ~7 ns per element here, and without a vector maths library Numba's LLVM cannot
vectorise it. :func:`power` computes ``exp(h log y)`` with plain float64 arithmetic - the
exponent and mantissa of y from its bits, ``log`` of the mantissa by the atanh series,
``exp`` by range reduction to ``|r| <= ln 2 / 2`` and a Taylor polynomial, the scale
``2^n`` put into the bits - so a loop of it vectorises (~2.9 ns per element at 8 lanes,
``benchmarks/README.md``, "A power that vectorises").

Accuracy: the two series are truncated where their remainders are small against float32's
rounding (``log``: the first term left out of ``2 atanh s``, 2 s^17 / 17 < 1.2e-14 for
``|s| <= 3 - 2 sqrt(2)``; ``exp``: r^12 / 12! < 1e-14 for ``|r| <= ln 2 / 2``), and
``ln 2`` is split in two so ``n ln 2`` is exact: the result is within 1.2e-14 |h| + 1e-13 of
``y ** h`` relative, for ``h log y`` in [-110, 100] (outside, clamped: the result under-
or overflows float32 anyway). Rounded to float32 it is the correctly rounded value except
when ``y ** h`` lies within that distance of a rounding boundary, and never more than
one float32 unit in the last place away (``tests/test_powers.py``).

Every operation is an IEEE double operation (no fused multiply-add: ``fastmath`` is off),
so compiled code and the plain-Python definitions (NUMBA_DISABLE_JIT) give the same bits.
"""
import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from .jit import inline_jit

LN2_HI = 6.93147180369123816490e-01   # ln 2 in 32 significant bits: n * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10   # ln 2 - LN2_HI
INV_LN2 = 1.4426950408889634
SQRT2 = 1.4142135623730951
MANTISSA = (1 << 52) - 1
EXPONENT_ONE = 1023 << 52
LOWEST = -110.0      # h log y clamped to [LOWEST, HIGHEST]: exp(-110) and exp(100)
HIGHEST = 100.0      # round to 0 and inf in float32
# the series' coefficients, highest power first: ln m = s (2 + 2/3 z + ... + 2/15 z^7) with
# z = s^2, and e^r = 1 + r + r^2 / 2 + ... + r^11 / 11!
LOG_SERIES = tuple(2.0 / k for k in range(15, 0, -2))
EXP_SERIES = tuple(1.0 / math.factorial(k) for k in range(11, -1, -1))


def float_bits(y):
    """The IEEE bits of the double y as an int64."""
    return np.float64(y).view(np.int64)


@intrinsic
def _float_bits(typingctx, y):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@overload(float_bits, jit_options=dict(cache=True))
def _float_bits_compiled(y):
    return lambda y: _float_bits(np.float64(y))


def bits_float(bits):
    """The double whose IEEE bits are the int64 ``bits``."""
    return np.int64(bits).view(np.float64)


@intrinsic
def _bits_float(typingctx, bits):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@overload(bits_float, jit_options=dict(cache=True))
def _bits_float_compiled(bits):
    return lambda bits: _bits_float(np.int64(bits))


@inline_jit
def _horner(x, coefficients):
    """The polynomial with ``coefficients`` (highest power first) at x, by Horner's rule."""
    p = coefficients[0]
    for c in coefficients[1:]:
        p = p * x + c
    return p


@inline_jit
def log(y):
    """ln y for a positive normal double y (module docstring)."""
    bits = float_bits(y)
    e = (bits >> 52) - 1023
    m = bits_float((bits & MANTISSA) | EXPONENT_ONE)   # y = m 2^e, m in [1, 2)
    high = m > SQRT2                                    # m in [sqrt(1/2), sqrt(2))
    m = m * 0.5 if high else m
    e = e + 1 if high else e
    s = (m - 1.0) / (m + 1.0)                           # ln m = 2 atanh s, |s| <= 0.1716
    return e * LN2_HI + (s * _horner(s * s, LOG_SERIES) + e * LN2_LO)


@inline_jit
def exp(t):
    """e^t for t in [LOWEST, HIGHEST] (module docstring)."""
    n = math.floor(t * INV_LN2 + 0.5)
    r = (t - n * LN2_HI) - n * LN2_LO                   # |r| <= ln 2 / 2 (to rounding)
    return _horner(r, EXP_SERIES) * bits_float((np.int64(n) + 1023) << 52)


@inline_jit
def power(y, h):
    """y ** h for y > 0 (a normal double) and any real h, to 1.2e-14 |h| + 1e-13 relative
    (module docstring); clamped where the result is beyond float32's range."""
    t = h * log(y)
    return exp(min(max(t, LOWEST), HIGHEST))
