"""Helpers that generated code calls for ops with more than one line of array code.

Each takes the array namespace ``xp`` first, so the same helper serves numpy and the other
array libraries.
"""

from __future__ import annotations

import math
import threading

import numpy as np

# set while symgrad's jax wrapper traces a function under checkify (see backends._compile_jax):
# then an index that is only known inside jax.jit is checked there
CHECKING = threading.local()


def step(xp, x):
    """1 where x > 0 else 0, in x's floating dtype."""
    if isinstance(x, (int, float)):
        return 1.0 if x > 0 else 0.0
    if getattr(getattr(x, "aval", None), "weak_type", False):
        # a Python-float input under jax.jit is a weak tracer: astype would make it a strong
        # float64, which turns float32 data into float64; where() of Python numbers stays weak
        return xp.where(x > 0, 1.0, 0.0)
    return xp.astype(x > 0, x.dtype) if hasattr(xp, "astype") else (x > 0).astype(x.dtype)


def gate(xp, c, x, out=None):
    """c where x > 0, else 0 (relu's derivative applied to c, 0 even where c is inf or nan).
    ``out``: a buffer for the result, which may be c's own (numpy arrays only)."""
    if isinstance(x, (int, float)):
        if x > 0:
            return c
        return 0.0 if isinstance(c, (int, float)) else xp.zeros_like(c)
    on = x > 0
    if isinstance(c, np.ndarray) and isinstance(x, np.ndarray) and np.isfinite(c).all():
        # c * (x > 0): a sixth of numpy's where, with a mask it cannot predict (10 ms per
        # million float64 entries); an infinite or nan c (where c * 0 is nan) takes the where
        return np.multiply(c, on, out=out) if out is not None else c * on
    if isinstance(c, (int, float)):
        zeros = xp.zeros_like(x)
        return xp.where(on, zeros + c, zeros)
    r = xp.where(on, c, xp.zeros_like(c))
    if out is not None:  # the buffer holds the result, as the caller's plan says
        out[...] = r
        return out
    return r


def zero_as_one(xp, x):
    """x with 1 where it is 0 (the base of a power, in the log of its derivative): x + (x == 0)
    is exact, and a pass cheaper than a where."""
    if isinstance(x, (int, float)):
        return x or 1.0
    if isinstance(x, (np.ndarray, np.generic)):
        return x + (x == 0)
    # the array API adds no bool to a float (array_api_strict refuses it); where() keeps a
    # jax weak type as it is
    return xp.where(x == 0, xp.ones_like(x), x)


def div(xp, a, b):
    """``a / b`` for a scalar node: what numpy gives (inf or nan, with numpy's warning) where
    Python numbers would raise ZeroDivisionError; the result stays a Python number (a weak
    scalar, which keeps a float32 batch float32)."""
    try:
        return a / b
    except ZeroDivisionError:
        return _numpy_number(np.divide, a, b)


def power(xp, a, b):
    """``a ** b`` for a scalar node: what numpy gives (nan, inf, with numpy's warning) where
    Python numbers would raise or turn complex (a negative base, a fractional exponent)."""
    try:
        r = a ** b
    except (ZeroDivisionError, OverflowError):
        return _numpy_number(np.power, a, b)
    if r.__class__ is complex and a.__class__ is not complex and b.__class__ is not complex:
        return _numpy_number(np.power, a, b)
    return r


def float_of(a):
    """``a`` in floats where it is an integer or bool array (numpy's ``a * 1.0``)."""
    kind = getattr(getattr(a, "dtype", None), "kind", "f")
    return a * 1.0 if kind in "iub" else a


def power_arrays(a, b):
    """``a ** b`` of two arrays, an integer base taken in floats where the exponent is an
    integer array too: numpy refused a negative integer power (naming neither the op nor an
    input), jax wrapped it around (2**-1 gave -9223372036854775808). (Inputs are floats: the
    integer arrays here are values of to_int, argmax and sampling, whose power is a float
    array.)"""
    if getattr(getattr(b, "dtype", None), "kind", "f") in "iub":
        a = float_of(a)
    return a ** b


def _on_host(a) -> bool:
    return a.__class__ in (float, int, bool, complex) or isinstance(a, (np.generic, np.ndarray))


def host_dtype(a):
    """numpy's dtype for a dtype object of any library (torch.int64, array_api_strict's
    int64; numpy's own), or None where ``a`` is not one."""
    if isinstance(a, np.dtype):
        return a
    if isinstance(a, type):
        return np.dtype(a) if issubclass(a, np.generic) else None
    if "dtype" not in type(a).__name__.lower():
        return None
    try:
        return np.dtype(str(a).rsplit(".", 1)[-1])
    except TypeError:
        return None


class HostOr:
    """The namespace of scalars computed from scalar inputs alone on a backend other than
    numpy (see symgrad._emit.hosted_code): a function of Python numbers (or numpy values) is
    numpy's, on the host; of anything else (a 0-d tensor the caller passed, which may live on
    a device or carry an autograd graph) the backend's."""

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        host, other = getattr(np, name, None), getattr(self._xp, name)
        if isinstance(other, type) or not callable(other):  # a dtype (int64), a constant
            setattr(self, name, other)
            return other

        def f(*args, **kw):
            if host is not None and all(_on_host(a) for a in args):
                return host(*args, **kw)
            if host is not None and args and _on_host(args[0]):
                # numbers and a dtype of the backend (astype(x, int64)): numpy's dtype
                dts = [None if _on_host(a) else host_dtype(a) for a in args]
                kdts = {k: host_dtype(v) for k, v in kw.items()}
                if all(_on_host(a) or d is not None for a, d in zip(args, dts)) and \
                        all(d is not None for d in kdts.values()):
                    return host(*[a if d is None else d for a, d in zip(args, dts)], **kdts)
            return other(*args, **kw)

        f.__name__ = name
        setattr(self, name, f)  # looked up once per name
        return f


_PY_NUMBERS = (float, int, bool)
_MAKES_ARRAYS = frozenset(("asarray", "zeros_like", "ones_like", "full_like", "empty_like",
                           "broadcast_to", "reshape", "zeros", "ones", "full", "empty"))


def scalar_widens(scalars: tuple, arrays: tuple) -> bool:
    """Whether a numpy number among ``scalars`` has a wider floating dtype than one of
    ``arrays`` (which numpy promotes to it: np.float64(2) * a float32 array is float64)."""
    wide = max((s.dtype.itemsize for s in scalars
                if s.__class__ is not float and isinstance(s, np.floating)), default=0)
    return any(getattr(getattr(a, "dtype", None), "itemsize", wide) < wide for a in arrays)


class Weak:
    """The namespace of a graph of scalars' array version (see symgrad._emit.hosted_code):
    a function of Python numbers alone is numpy's, of floats (numpy computes tanh of a bool
    in float16), and returns a Python number, weak as its operands were (np.tanh(0.3) is a
    strong float64 that made a float32 batch float64); of anything else (arrays of samples,
    numpy scalars, which stay strong), ``inner``'s: numpy, or runtime.HostOr."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        other = getattr(self._inner, name)
        host = getattr(np, name, None)
        if isinstance(other, type) or not callable(other) or host is None or \
                name in _MAKES_ARRAYS:  # (a helper that asks for an array gets one)
            setattr(self, name, other)
            return other

        cast = name == "astype" and not isinstance(self._inner, HostOr)  # (numpy)

        def f(*args, **kw):
            if all(a.__class__ in _PY_NUMBERS for a in args):
                r = host(*[a if a.__class__ is float else float(a) for a in args], **kw)
                return r.item() if isinstance(r, np.generic) or (
                    r.__class__ is np.ndarray and r.ndim == 0) else r
            if cast and args[0].__class__ in _PY_NUMBERS:  # astype(number, int64): its type
                return other(np.float64(args[0]), *args[1:], **kw)  # is the one asked for
            return other(*args, **kw)

        f.__name__ = name
        setattr(self, name, f)  # looked up once per name
        return f


def widened(xp, c, like):
    """The constant array ``c`` in ``like``'s floating dtype where that is wider (a float32
    constant beside float64 inputs, on a library that refuses mixed matrix products)."""
    dtype = getattr(like, "dtype", None)
    if dtype is None:
        return c
    if like.__class__ is np.ndarray and c.__class__ is not np.ndarray:
        # numpy data whose values the code never reads (so never converted): its dtype in
        # the library's (torch's result_type refused a numpy array)
        like = xp.asarray(np.empty(0, dtype))
        dtype = like.dtype
    if c.dtype == dtype or not _is_floating(xp, dtype):
        return c
    return xp.astype(c, dtype) if xp.result_type(c, like) == dtype else c


def zero_index(xp, x):
    """argmax of a scalar: 0, or 0 for each of its samples."""
    shape = getattr(x, "shape", ())
    if not shape:
        return 0
    return xp.zeros(shape, dtype=xp.argmax(xp.zeros(1)).dtype)  # (the library's index type)


def argmax(xp, x, axis=None):
    """``xp.argmax``, refusing an empty axis with numpy's message on every library (which the
    compiled function's diagnosis names; torch raised its own IndexError, dask failed only
    when computed)."""
    shape = x.shape
    if (math.prod(shape) if axis is None else shape[axis]) == 0:
        raise ValueError("attempt to get argmax of an empty sequence")
    return xp.argmax(x) if axis is None else xp.argmax(x, axis=axis)


def maximum_number(a, b):
    """numpy's maximum of two Python numbers: nan if either is nan (Python's ``max(1.0,
    nan)`` is 1.0)."""
    return a if a > b or a != a else b


def minimum_number(a, b):
    """numpy's minimum of two Python numbers: nan if either is nan."""
    return a if a < b or a != a else b


def _numpy_number(ufunc, a, b):
    """numpy's result of ``ufunc(a, b)`` for Python numbers, as a Python number."""
    dtype = complex if complex in (a.__class__, b.__class__) else np.float64
    return ufunc(np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype)).item()


def _quiet(xp):
    """A context where exp's underflow to 0 is silent (it is the correct rounding): numpy's
    for a namespace without one of its own that computes with numpy underneath
    (array_api_strict raised under np.errstate(all="raise")); harmless for the others."""
    errstate = getattr(xp, "errstate", None)
    return errstate(under="ignore") if errstate is not None else np.errstate(under="ignore")


def _exp_small(xp, z):
    """exp(z) for z <= 0. An underflow to 0 is the correctly rounded value: when the caller
    makes numpy raise on it (np.errstate(all="raise")), it is recomputed with underflow
    silenced. The try costs nothing when nothing is raised. (dask computes later, outside the
    try: its blocks are computed with underflow silenced.)"""
    if getattr(xp, "errstate", None) is None and hasattr(z, "map_blocks"):
        return z.map_blocks(_quiet_exp)
    try:
        return xp.exp(z)
    except (FloatingPointError, RuntimeWarning):
        with _quiet(xp):
            return xp.exp(z)


def exp_nonpositive(xp, z, out=None):
    """exp(z) for z <= 0 (a log-probability): as _exp_small, its underflow to 0 not signalled;
    ``out``: a buffer for the result (numpy)."""
    if out is None:
        return _exp_small(xp, z)
    with _quiet(xp):  # (not a try: a raise leaves exp(z) written into z, which out may be)
        return xp.exp(z, out=out)


def _quiet_exp(block):
    """numpy's exp of a dask block, its underflow silenced (a plain function: dask's
    distributed scheduler pickles it by name to send it to the workers)."""
    with np.errstate(under="ignore"):
        return np.exp(block)


def _shifted(xp, x, m):
    """``x - m`` (m the largest entry): entries more than the largest double below it
    (-1.7e308 beside 1.7e308) overflow to -inf, whose exp is the correctly rounded 0."""
    try:
        return x - m
    except (FloatingPointError, RuntimeWarning):
        # (numpy's errstate for a namespace without one that computes with numpy underneath:
        # array_api_strict warned here, as _quiet says)
        errstate = getattr(xp, "errstate", None) or np.errstate
        with errstate(over="ignore"):
            return x - m


def _finite_max(xp, x, axis):
    if any(d == 0 for d in x.shape):
        # an axis of length 0 has no max: no shift (logsumexp is -inf; an empty array needs
        # none). Asked first: torch raises its own errors, and dask only at compute time
        return xp.sum(x, axis=axis, keepdims=True)
    m = xp.max(x, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(m), m, xp.zeros_like(m))


# numpy scalar types -> the x above which exp(-x) does not overflow them, nor 1/(1 + exp(-x))
# become subnormal
_NO_OVERFLOW = {np.float64: -700.0, np.float32: -80.0}
# (numpy's float32 exp of a subnormal signals an underflow, though its result is 1)
_SUBNORMAL = {t: float(np.finfo(t).tiny) for t in _NO_OVERFLOW}


def sigmoid(xp, x, out=None):
    """1/(1 + exp(-x)), accurate for every x (the form 0.5 + 0.5 tanh(x/2), which never
    overflows, cancels below x = -20: it gave 0 for sigmoid(-40) = 4e-18). exp(-x) overflows
    to inf below x = -709 (float64), where 1/(1 + inf) = 0 (the true value is a subnormal
    down to x = -745, and 0, correctly rounded, below);
    numpy's signals for that overflow and for the subnormal results just above it are
    silenced here, for this op only. ``out``: a buffer for the result."""
    t = x.__class__
    if t is np.ndarray and x.ndim == 0:
        t = x.dtype.type
    lim = _NO_OVERFLOW.get(t)
    if lim is not None and out is None and lim < x < -lim and (
            x == 0 or not -_SUBNORMAL[t] < x < _SUBNORMAL[t]):  # one number whose exp(-x)
        # neither overflows nor underflows to a subnormal: no errstate to enter (0.6 µs,
        # twice the sigmoid); under np.errstate(all="raise") exp(-710) raised
        return 1.0 / (1.0 + np.exp(-x))
    if getattr(xp, "errstate", None) is not None:
        return _quiet_sigmoid(xp, x, out)
    if out is None and not hasattr(x, "map_blocks") and \
            getattr(xp, "__name__", "").endswith("dask"):  # (not runtime.HostOr's numbers)
        x = xp.asarray(x)  # a number or numpy samples on dask: computed later, as blocks
    if out is None and hasattr(x, "map_blocks"):  # dask: numpy's blocks, silenced in turn
        return x.map_blocks(_numpy_sigmoid)
    if out is None:
        native = getattr(x, "sigmoid", None)  # a torch tensor's: one kernel, not four passes
        if native is not None:
            return native()
        if x.__class__.__module__.startswith("cupy"):  # (cupy.ndarray)
            from cupyx.scipy.special import expit  # one elementwise kernel

            return expit(x)
    # numpy's signals silenced for a namespace computing with numpy underneath
    # (array_api_strict); harmless elsewhere
    return _quiet_sigmoid(xp, x, out)


def _sigmoid(xp, x, out):
    if out is None:
        return 1.0 / (1.0 + xp.exp(-x))
    e = xp.exp(xp.negative(x, out=out), out=out)
    return xp.divide(1.0, xp.add(e, 1.0, out=e), out=e)


# errstate as a decorator: about 0.5 us a call, where a with-statement's new errstate is 1.2
_quiet_sigmoid = np.errstate(over="ignore", under="ignore")(_sigmoid)


def _numpy_sigmoid(block):
    return sigmoid(np, block)


_SMALL_SOFTPLUS = 256  # entries: below, numpy's one logaddexp call beats six vectorised ones


def softplus(xp, x):
    """log(1 + exp(x)) as max(x, 0) + log1p(exp(-|x|)): no overflow for any finite x.

    A small numpy array takes ``logaddexp(0, x)``, the same formula in one ufunc: 2.5x faster
    at 32 entries, but not vectorised (3 to 10x slower from 1,000 entries on)."""
    if x.__class__ is np.ndarray and x.size < _SMALL_SOFTPLUS:
        try:
            return np.logaddexp(0.0, x)
        except (FloatingPointError, RuntimeWarning):  # exp underflows to 0: np.errstate
            pass
    return xp.maximum(x, 0.0) + xp.log1p(_exp_small(xp, -xp.abs(x)))


def log_softplus(xp, x):
    """log(softplus(x)), finite for every finite x: softplus underflows to 0 below x = -745
    (log(sigmoid(z) softplus(z)) was -inf at z = -1000, for about -2000). Below x = -30,
    softplus(x) = e^x (1 - e^x/2 + ...), and its log is x - e^x/2 to the last digit."""
    # (float16's softplus underflows from -17: its tail starts at -8, where e^x/2 < its eps)
    small = x < (-8.0 if getattr(x, "dtype", None) == np.float16 else -30.0)
    if x.__class__ is np.ndarray and x.ndim and not small.any():
        # (most arrays: no tail to patch in, so neither the tail nor the wheres are computed;
        # they had made this op 1.45x numpy's log(softplus(x)) on a vector)
        r = softplus(np, x)
        return np.log(r, out=r)
    tail = x - _exp_small(xp, xp.minimum(x, 0.0) - _LOG2)  # (0.5 * a subnormal underflowed)
    r = xp.where(small, tail, xp.log(xp.where(small, 1.0, softplus(xp, x))))
    return r[()] if r.__class__ is np.ndarray and not r.ndim else r  # (a number: as softplus)


_LOG2 = 0.6931471805599453  # log(2)


def logsumexp(xp, x, axis, keepdims, memo=None):
    """log(sum(exp(x))) over ``axis``, max-shifted. ``memo``: a dict of one compiled call's
    own, where a softmax of the same array and axes takes (or left) the shifted exps and
    their sum: computed once, as handwritten code does (the pair is the loss and gradient of
    a logsumexp)."""
    x = xp.asarray(x)
    hit = _take(memo, x, axis)
    if hit is not None:
        _, s, m = hit
    else:
        m = _finite_max(xp, x, axis)
        e = _exp_small(xp, _shifted(xp, x, m))
        s = xp.sum(e, axis=axis, keepdims=True)
        if memo is not None:
            memo[id(x), axis] = (x, e, s, m)
    if any(d == 0 for d in x.shape):  # sums of nothing: log(0) = -inf, without numpy's
        out = xp.full_like(s, -math.inf)  # divide-by-zero warning (m is 0 there)
    else:
        out = xp.log(s) + m
    if keepdims:
        return out
    if axis is None:
        return xp.reshape(out, ())
    return xp.squeeze(out, axis=axis)


def _take(memo, x, axis):
    """(exps or None, their sum, the shift) that the partner of this logsumexp or softmax left
    for the array ``x`` itself (an entry holds its array, so no other takes its id meanwhile)."""
    if memo is None:
        return None
    hit = memo.get((id(x), axis))
    if hit is None or hit[0] is not x:
        return None
    del memo[id(x), axis]
    return hit[1:]


def softmax(xp, x, axis, memo=None):
    """exp(x) / sum(exp(x)) over ``axis``, max-shifted; ``memo``: see logsumexp."""
    x = xp.asarray(x)
    hit = _take(memo, x, axis)
    if hit is not None and hit[0] is not None:
        e, total, _ = hit  # (the logsumexp's own exps: nothing else holds them)
    else:
        m = _finite_max(xp, x, axis)
        e = _exp_small(xp, _shifted(xp, x, m))
        total = xp.sum(e, axis=axis, keepdims=True)  # at least 1: the largest entry is exp(0)
        if memo is not None and hit is None:
            memo[id(x), axis] = (x, None, total, m)
    try:
        return e / total
    except (FloatingPointError, RuntimeWarning):  # a tiny share underflows to 0, correctly
        with _quiet(xp):
            return e / total


def log_softmax(xp, x, axis):
    x = xp.asarray(x)
    z = _shifted(xp, x, _finite_max(xp, x, axis))
    if any(d == 0 for d in x.shape):  # no entries: no log of an empty sum (numpy warned)
        return z
    return z - xp.log(xp.sum(_exp_small(xp, z), axis=axis, keepdims=True))


def diag(xp, v):
    """The matrix with ``v`` on its diagonal (a batch of them for leading axes), zeros
    elsewhere: chosen, not multiplied by an identity, whose 0 * inf had made the rest of an
    infinite entry's row nan (Hessians of exp(-v) at v = -800: nan where they are 0)."""
    v = xp.asarray(v)
    n = v.shape[-1]
    if v.__class__ is np.ndarray:
        out = np.zeros(v.shape + (n,), dtype=v.dtype)
        idx = np.arange(n)
        out[..., idx, idx] = v
        return out
    eye = xp.eye(n, dtype=v.dtype)
    return xp.where(eye != 0, v[..., :, None], xp.zeros_like(eye))


def diagonal(xp, m):
    if hasattr(xp, "linalg") and hasattr(xp.linalg, "diagonal"):
        return xp.linalg.diagonal(m)
    if hasattr(xp, "diagonal"):
        return xp.diagonal(m, axis1=-2, axis2=-1)
    # a namespace without the linalg extension (chosen, not multiplied: see diag)
    eye = xp.eye(m.shape[-1], dtype=m.dtype)
    return xp.sum(xp.where(eye != 0, m, xp.zeros_like(eye)), axis=-1)


def _index(xp, i, n):
    try:
        k = int(i)
    except TypeError:
        # a traced value (under jax.jit): jax would clamp a bad index to a valid row, so
        # symgrad's wrapper checks it with checkify; a caller's own jit of .unjitted does not
        if getattr(CHECKING, "on", False):
            from jax.experimental import checkify

            checkify.check(xp.all((i == xp.floor(i)) & (i >= -n) & (i < n)),
                           "take: index {i} is not an integer in range for size " + str(n), i=i)
        return xp.astype(i, xp.int32)
    except (ValueError, OverflowError):  # nan, inf
        raise IndexError(f"take: index {i!r} is not an integer in range for size {n}") from None
    if k != i or not -n <= k < n:
        raise IndexError(f"take: index {i!r} is not an integer in range for size {n}")
    return k


def take(xp, M, i):
    return M[_index(xp, i, M.shape[0]), ...]


def eye(xp, n, like):
    """The n x n identity in ``like``'s floating dtype (the library's default otherwise)."""
    dtype = _float_dtype_of(xp, like, None)
    return xp.eye(n) if dtype is None else xp.eye(n, dtype=dtype)


def onehot(xp, i, n, like=None):
    """e_i of length n: in ``like``'s dtype when it is a floating array, else float64."""
    k = _index(xp, i, n) % n  # a negative index counts from the end (arange(n) == k misses it)
    dtype = _float_dtype_of(xp, like, xp.float64)
    if isinstance(k, int):
        out = xp.zeros(n, dtype=dtype)
        try:
            out[k] = 1.0
            return out
        except TypeError:  # immutable arrays (jax)
            pass
    return xp.astype(xp.arange(n) == k, dtype)


def broadcast_number(xp, x, shape, like):
    """``x`` broadcast to ``shape``. A Python number (a weak scalar: a constant, a size, a
    Python-float input) is made in ``like``'s floating dtype, as numpy computes float32 data
    times 2.0 in float32 (the library's default where ``like`` is not floating); anything else
    (a numpy scalar, a 0-d array: strong) keeps its dtype."""
    c = x.__class__
    # (under jax.jit a Python-float input is a tracer that jax itself marks weak)
    if c is float or c is int or getattr(getattr(x, "aval", None), "weak_type", False):
        dtype = _float_dtype_of(xp, like, None)
        if dtype is not None:
            if like.__class__ is np.ndarray and isinstance(dtype, np.dtype):
                # the read-only view np.broadcast_to makes, built directly: 0.8 us, not 3 us
                # (only in numpy's dtype: a numpy input to torch asks for torch's)
                out = np.ndarray(shape, dtype, np.asarray(x, dtype), 0, (0,) * len(shape))
                out.flags.writeable = False
                return out
            return xp.broadcast_to(xp.asarray(x, dtype=dtype), shape)
    return xp.broadcast_to(x, shape)


def zeros(xp, shape, like):
    """Zeros of ``shape`` in ``like``'s floating dtype (the library's default otherwise)."""
    dtype = _float_dtype_of(xp, like, None)
    return xp.zeros(shape) if dtype is None else xp.zeros(shape, dtype=dtype)


def _float_dtype_of(xp, like, default):
    """``like``'s dtype if it is a floating array, else ``default``: the dtype of an array
    symgrad creates (an identity, a one-hot vector, a broadcast number, zeros) next to
    ``like``."""
    dtype = getattr(like, "dtype", None)
    if dtype is None:
        return default
    if like.__class__ is np.ndarray and getattr(xp, "ndarray", None) is not np.ndarray:
        # a numpy array given to another library (read as the input only where it is used):
        # that library's dtype of the same name (torch.zeros refused numpy's float64)
        return getattr(xp, dtype.name, dtype) if dtype.kind == "f" else default
    return dtype if _is_floating(xp, dtype) else default


def _is_floating(xp, dtype) -> bool:
    if isinstance(dtype, np.dtype) and dtype.kind != "V":  # numpy's (dask's, jax's): at once
        return dtype.kind == "f"  # (kind "V": an extension type such as bfloat16, asked below)
    try:
        return xp.isdtype(dtype, "real floating")
    except (AttributeError, TypeError):  # a namespace without isdtype
        return getattr(dtype, "kind", "") == "f"


def materialize(xp, x):
    """A fresh, writable array for an output that is a broadcast view or a constant."""
    try:
        return xp.asarray(x, copy=True)
    except TypeError:
        return xp.asarray(x) * 1


def own(xp, x):
    """An output that may be an input's array, a view of one or of another output's: copied
    when it is an array (numbers, and numpy's scalars, cannot be written into)."""
    if getattr(x, "shape", None) is None or isinstance(x, np.generic):
        return x
    return materialize(xp, x)



# ------------------------------------------------------------------ integer casts and sampling
_NOT_FINITE = "to_int: cannot convert a NaN or infinite value to an integer"
_TOO_LARGE = "to_int: a value is too large for a 64-bit integer"


def to_int(xp, x):
    """x rounded toward zero as int64 (of a Python number, a Python int: weak, as the number
    was); a clear error for values that have no integer."""
    number = x.__class__ in _PY_NUMBERS
    x = xp.asarray(x)
    finite = xp.all(xp.isfinite(x))
    small = xp.all(xp.abs(x) < 2.0**63)
    try:
        finite, small = bool(finite), bool(small)
    except TypeError:  # traced under jax.jit: checked there by symgrad's wrapper (see _index)
        if getattr(CHECKING, "on", False):
            from jax.experimental import checkify

            checkify.check(finite, _NOT_FINITE)
            checkify.check(small, _TOO_LARGE)
        finite = small = True
    if not finite:
        raise ValueError(_NOT_FINITE)
    if not small:
        raise ValueError(_TOO_LARGE)
    if number:
        return int(np.trunc(float(x)))
    return xp.astype(xp.trunc(x), xp.int64) if hasattr(xp, "astype") else \
        xp.trunc(x).astype("int64")


def sample_bernoulli(xp, rng, p):
    """1.0 where a uniform draw is below p, else 0.0 (draws from ``rng``)."""
    p = np.asarray(p, dtype=float)
    if not bool(np.all((p >= 0.0) & (p <= 1.0))):
        raise ValueError("sample_bernoulli: probabilities must lie in [0, 1] (got "
                         f"{p.min() if p.size else p!r} .. {p.max() if p.size else p!r})")
    u = rng.random(p.shape)
    if p.ndim == 0 and xp.asarray is np.asarray:  # one draw, on numpy: a Python float
        return float(u < p)
    return xp.asarray((u < p).astype(float))


def sample_categorical(xp, rng, logits):
    """Indices drawn with probabilities softmax(logits) along the last axis (draws from rng)."""
    x = np.asarray(logits, dtype=float)
    if x.shape[-1] == 0:
        raise ValueError("sample_categorical: the logits have no categories (last axis 0)")
    if np.isnan(x).any() or np.isposinf(x).any():
        raise ValueError("sample_categorical: the logits contain NaN or +inf")
    if np.isneginf(x).all(axis=-1).any():  # softmax of them all is 0/0: no distribution
        raise ValueError("sample_categorical: a row of logits is -inf throughout (every "
                         "category has probability 0)")
    cdf = np.cumsum(softmax(np, x, -1), axis=-1)
    u = rng.random(x.shape[:-1] + (1,)) * cdf[..., -1:]
    idx = np.minimum(np.sum(cdf <= u, axis=-1), x.shape[-1] - 1)
    if idx.ndim == 0 and xp.asarray is np.asarray:  # one draw, on numpy: a Python int
        return int(idx)
    return xp.asarray(idx.astype(np.int64))
