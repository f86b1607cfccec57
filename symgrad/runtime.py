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
    if hasattr(xp, "diagonal"):
        return xp.diagonal(m, axis1=-2, axis2=-1)
    # a namespace without the linalg extension
    return xp.sum(m * xp.eye(m.shape[-1], dtype=m.dtype), axis=-1)


def _index(xp, i, n):
    try:
        k = int(i)
    except TypeError:
        # a traced value (under jax.jit): no range check is possible, index dynamically
        return xp.astype(i, xp.int32)
    if k != i or not -n <= k < n:
        raise IndexError(f"take: index {i!r} is not an integer in range for size {n}")
    return k


def take(xp, M, i):
    return M[_index(xp, i, M.shape[0]), ...]


def onehot(xp, i, n):
    k = _index(xp, i, n)
    if isinstance(k, int):
        out = xp.zeros(n)
        try:
            out[k] = 1.0
            return out
        except TypeError:  # immutable arrays (jax)
            pass
    return xp.astype(xp.arange(n) == k, xp.float64)
def materialize(xp, x):
    """A fresh, writable array for an output that is a broadcast view or a constant."""
    try:
        return xp.asarray(x, copy=True)
    except TypeError:
        return xp.asarray(x) * 1

