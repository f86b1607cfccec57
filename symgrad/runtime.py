"""Helpers that generated code calls for ops with more than one line of array code.

Each takes the array namespace ``xp`` first, so the same helper serves numpy and the other
array libraries.
"""

from __future__ import annotations


def step(xp, x):
    """1 where x > 0 else 0, in x's floating dtype."""
    if isinstance(x, (int, float)):
        return 1.0 if x > 0 else 0.0
    return xp.astype(x > 0, x.dtype) if hasattr(xp, "astype") else (x > 0).astype(x.dtype)


def _finite_max(xp, x, axis):
    m = xp.max(x, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(m), m, xp.zeros_like(m))


def logsumexp(xp, x, axis, keepdims):
    x = xp.asarray(x)
    m = _finite_max(xp, x, axis)
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    if keepdims:
        return out
    if axis is None:
        return xp.reshape(out, ())
    return xp.squeeze(out, axis=axis)


def softmax(xp, x, axis):
    x = xp.asarray(x)
    e = xp.exp(x - _finite_max(xp, x, axis))
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(xp, x, axis):
    x = xp.asarray(x)
    z = x - _finite_max(xp, x, axis)
    return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))


def diag(xp, v):
    v = xp.asarray(v)
    n = v.shape[-1]
    return v[..., :, None] * xp.eye(n, dtype=v.dtype)


def diagonal(xp, m):
    if hasattr(xp, "linalg") and hasattr(xp.linalg, "diagonal"):
        return xp.linalg.diagonal(m)
    return xp.diagonal(m, axis1=-2, axis2=-1)


def _index(i, n):
    k = int(i)
    if k != i or not -n <= k < n:
        raise IndexError(f"take: index {i!r} is not an integer in range for size {n}")
    return k


def take(xp, M, i):
    return M[_index(i, M.shape[0])]


def onehot(xp, i, n):
    out = xp.zeros(n)
    out[_index(i, n)] = 1.0
    return out
def materialize(xp, x):
    """A fresh, writable array for an output that is a broadcast view or a constant."""
    try:
        return xp.asarray(x, copy=True)
    except TypeError:
        return xp.asarray(x) * 1

