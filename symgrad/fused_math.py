"""Scalar math for the fused numba kernels (``_m`` in their source; see :mod:`symgrad.fused`).

The math module's functions, except ``exp``: libm's exp is a call that stops the compiler from
vectorising a loop, so kernels use this one, written in plain arithmetic (Cody-Waite range
reduction and a degree-13 Taylor polynomial on |r| <= ln(2)/2; within 1 ulp of numpy's exp over
the whole float64 range, inf/0 on overflow/underflow, subnormal results included, NaN kept).
It is compiled without fastmath, so the reduction stays exact when it is inlined into a kernel
that reassociates its sums. Importing this module needs numba.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

cos, log, log1p, pow, sin, sqrt, tanh = (math.cos, math.log, math.log1p, math.pow, math.sin,
                                         math.sqrt, math.tanh)
floor = np.floor  # a float, as numpy's (numba's math.floor is an int: no inf, no nan)

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 in two parts: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_C = tuple(1.0 / math.factorial(i) for i in range(14))


@intrinsic
def _bits_to_float(typingctx, x):
    """The float64 whose bits are the int64 ``x``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@numba.njit(cache=True, error_model="numpy")
def exp(x):
    xc = x if x >= -746.0 else -746.0  # NaN goes to -746 here and is put back at the end
    xc = xc if xc <= 710.0 else 710.0
    kf = math.floor(xc * _LOG2E + 0.5)
    r = (xc - kf * _LN2_HI) - kf * _LN2_LO
    p = _C[13]
    p = _C[12] + r * p
    p = _C[11] + r * p
    p = _C[10] + r * p
    p = _C[9] + r * p
    p = _C[8] + r * p
    p = _C[7] + r * p
    p = _C[6] + r * p
    p = _C[5] + r * p
    p = _C[4] + r * p
    p = _C[3] + r * p
    p = _C[2] + r * p
    p = _C[1] + r * p
    p = _C[0] + r * p
    k = np.int64(kf)
    k1 = k >> 1  # 2**k in two factors, each a normal number, so that subnormals come out
    k2 = k - k1
    y = p * _bits_to_float((k1 + 1023) << 52) * _bits_to_float((k2 + 1023) << 52)
    return y if x == x else x
