"""numpy's functions called on expressions (NEP 18's ``__array_function__``).

``np.sum(e)``, ``np.dot(w, v)`` or ``np.transpose(A)`` with a symgrad expression among the
arguments build the symgrad node. Without this, numpy took the expression for one opaque
object: ``np.dot(np.ones(3), v)`` gave an object array of three copies of ``v`` (no error, a
wrong answer), and ``np.sum(v)`` failed inside ``Expr.sum``. A numpy function symgrad does not
know raises a TypeError that names it. numpy's ufuncs (``np.exp``, ``np.matmul``) stay refused
by numpy itself (``Expr.__array_ufunc__ = None``): use ``sg.exp``, ``@``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import functions as F
from .shapes import fmt_shape

_HANDLERS: dict[Callable, Callable] = {}


def _handles(*funcs: Callable):
    def deco(f):
        for fn in funcs:
            _HANDLERS[fn] = f
        return f

    return deco


def _no(what: str, **given: Any) -> None:
    """Refuse numpy arguments symgrad has no meaning for (a dtype, an out= array, ...)."""
    for key, v in given.items():
        if v is not None:
            raise TypeError(f"numpy.{what}: {key}= is not supported on symgrad expressions")


@_handles(np.sum)
def _sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    _no("sum", dtype=dtype, out=out, initial=initial, where=where)
    return F.sum(a, axis=axis, keepdims=bool(keepdims))


@_handles(np.mean)
def _mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    _no("mean", dtype=dtype, out=out, where=where)
    return F.mean(a, axis=axis, keepdims=bool(keepdims))


@_handles(np.dot)
def _dot(a, b, out=None):
    _no("dot", out=out)
    return F.dot(a, b)


@_handles(np.outer)
def _outer(a, b, out=None):
    _no("outer", out=out)
    a, b = F.lift(a, "outer"), F.lift(b, "outer")
    if a.ndim != 1 or b.ndim != 1:  # numpy flattens them first; symgrad does not guess
        raise TypeError(f"numpy.outer: symgrad takes two vectors, got shapes {fmt_shape(a.shape)} "
                        f"and {fmt_shape(b.shape)} (numpy would flatten them)")
    return F.outer(a, b)


@_handles(np.transpose)
def _transpose(a, axes=None):
    return F.transpose(a, axes)


@_handles(np.reshape)
def _reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    if order != "C":
        raise TypeError("numpy.reshape: symgrad reshapes in C order only")
    return F.reshape(a, shape if shape is not None else newshape)


@_handles(np.diag)
def _diag(v, k=0):
    v = F.lift(v, "diag")
    if k != 0 or v.ndim not in (1, 2):
        raise TypeError("numpy.diag: symgrad takes a vector (diag) or a square matrix "
                        "(diagonal), with k=0")
    return F.diag(v) if v.ndim == 1 else F.diagonal(v)


@_handles(np.trace)
def _trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _no("trace", dtype=dtype, out=out)
    if (offset, axis1, axis2) != (0, 0, 1):
        raise TypeError("numpy.trace: symgrad takes the trace of a matrix (offset=0)")
    return F.trace(a)


@_handles(np.shape)
def _shape(a):
    return F.lift(a, "shape").shape


@_handles(np.ndim)
def _ndim(a):
    return F.lift(a, "ndim").ndim


def array_function(func: Callable, args: tuple, kwargs: dict) -> Any:
    """``func(*args, **kwargs)`` for the numpy function ``func`` with an expression among the
    arguments: the symgrad node, or a TypeError naming ``func``."""
    handler = _HANDLERS.get(func)
    if handler is None:
        import symgrad

        name = getattr(func, "__name__", repr(func))
        ours = f"sg.{name}" if callable(getattr(symgrad, name, None)) else "symgrad's functions"
        raise TypeError(
            f"{getattr(func, '__module__', 'numpy')}.{name} does not work on symgrad "
            f"expressions (numpy would take the expression for one opaque object): use "
            f"{ours}, or evaluate or compile the expression first")
    return handler(*args, **kwargs)
