"""Shapes with numeric or symbolic sizes, and the broadcasting rules between them.

A dimension is an ``int`` (a known size) or a ``str`` (a symbolic size such as ``"n"``, bound to a
number when a compiled function is called). Where a rule cannot be decided at build time because a
symbolic size meets another size, the check is *deferred*: it is recorded as a :class:`Check` and
run when the sizes are known (see :mod:`symgrad.compile`).
"""

from __future__ import annotations

import keyword
import numbers
import operator
from typing import NamedTuple, Union

import numpy as np

from .errors import ShapeError

Dim = Union[int, str]
Shape = tuple  # tuple[Dim, ...]


class Check(NamedTuple):
    """A deferred shape check: sizes ``a`` and ``b`` must be equal once they are known."""

    a: Dim
    b: Dim
    op: str
    shapes: tuple  # the operand shapes, for the message


def fmt_shape(shape) -> str:
    """Format a shape as Python prints a tuple: ``()``, ``(3,)``, ``(m, n)``."""
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def check_identifier(name, what: str = "name") -> str:
    if isinstance(name, str) and keyword.iskeyword(name):
        hint = " (for the Greek letter: lambda_, which prints as \\lambda)" \
            if name == "lambda" else ""
        raise ValueError(f"{what} {name!r} is a Python keyword, not a valid name{hint}")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{what} {name!r} is not a valid Python identifier")
    return name


def as_dim(d, what: str = "size") -> Dim:
    """Validate one size: a non-negative int or an identifier string."""
    if isinstance(d, bool) or (isinstance(d, numbers.Complex) and not isinstance(d, numbers.Real)):
        raise ValueError(f"{what} {d!r} is not a size (an int >= 0 or a name)")
    if isinstance(d, str):
        return check_identifier(d.strip(), what)
    try:  # an integer, as numpy takes one (a float 3.0 was a size here, refused by reshape)
        i = operator.index(d)
    except TypeError:
        raise ValueError(f"{what} {d!r} is not a size (an int >= 0 or a name)") from None
    if i < 0:
        raise ValueError(f"{what} {d!r} is not a size (an int >= 0 or a name)")
    return i


def one_size(x) -> bool:
    """Whether ``x`` is one size rather than a sequence of them: an int of any kind (numpy's,
    sympy's) or a 0-d array."""
    if isinstance(x, np.ndarray):
        return x.ndim == 0
    return isinstance(x, (int, np.integer)) or (
        hasattr(x, "__index__") and not hasattr(x, "__iter__"))


def as_shape(shape, what: str = "shape") -> Shape:
    if shape.__class__ is not tuple:  # (a tuple, the common case, needs none of this)
        if isinstance(shape, str) or one_size(shape):
            shape = (shape,)
        if isinstance(shape, (bytes, bytearray, memoryview, set, frozenset, dict)):
            # (bytes were sizes of their code points, b"x" = (120,); a set's order is arbitrary)
            raise ValueError(f"{what} {shape!r} is not a tuple of sizes")
        try:
            shape = tuple(shape)
        except TypeError:
            raise ValueError(f"{what} {shape!r} is not a tuple of sizes") from None
    return tuple(as_dim(d, what) for d in shape)


def is_known(shape) -> bool:
    return all(isinstance(d, int) for d in shape)


def size_of(shape):
    """The number of elements as an int, or None when a size is symbolic."""
    n = 1
    for d in shape:
        if not isinstance(d, int):
            return None
        n *= d
    return n


def not_bigger(a, b) -> bool:
    """Whether shape ``a`` has at most as many entries as ``b`` (by ndim where sizes are names)."""
    ka, kb = size_of(a), size_of(b)
    if ka is not None and kb is not None:
        return ka <= kb
    return len(a) <= len(b)


def broadcast(op: str, shapes) -> tuple[Shape, tuple]:
    """numpy broadcasting of ``shapes``; returns (shape, deferred checks).

    Raises ShapeError when known sizes clash. A symbolic size broadcasts only against a literal
    1; against any other size it must be equal, which is deferred: the result takes the known
    size (or the first name) and a Check is recorded.
    """
    shapes = [tuple(s) for s in shapes]
    if len(shapes) == 1:
        return shapes[0], ()
    if all(s == shapes[0] for s in shapes):
        return shapes[0], ()
    nd = max(len(s) for s in shapes)
    out = []
    checks = []
    for i in range(nd):
        dims = [s[len(s) - nd + i] for s in shapes if len(s) - nd + i >= 0]
        cand = [d for d in dims if d != 1]
        if not cand:
            out.append(1)
            continue
        first = cand[0]
        known = [d for d in cand if isinstance(d, int)]
        if len(set(known)) > 1:
            a, b = _two(shapes)
            raise ShapeError(f"{op}: shapes {fmt_shape(a)} and {fmt_shape(b)} do not broadcast")
        pick = known[0] if known else first
        for d in cand:
            if d != pick:
                checks.append(Check(d, pick, op, tuple(shapes)))
        out.append(pick)
    return tuple(out), tuple(checks)


def _two(shapes):
    return shapes[0], shapes[1] if len(shapes) > 1 else shapes[0]


def same_dim(op: str, a: Dim, b: Dim, shapes) -> tuple[Dim, tuple]:
    """Two sizes that must be equal; returns (size, deferred checks). ``shapes``: the operand
    shapes they come from (one shape: two sizes of one operand must be equal)."""
    if a == b:
        return a, ()
    if isinstance(a, int) and isinstance(b, int):
        shapes = list(shapes)
        if len(shapes) == 1:  # two sizes of one operand (diagonal's last two)
            raise ShapeError(f"{op}: shape {fmt_shape(shapes[0])} is not square (its last "
                             "two sizes differ)")
        sa, sb = _two(shapes)
        raise ShapeError(f"{op}: shapes {fmt_shape(sa)} and {fmt_shape(sb)} do not fit")
    pick = a if isinstance(a, int) else b
    return pick, (Check(a, b, op, tuple(shapes)),)


def normalize_axis(op: str, axis, ndim: int, shape) -> tuple:
    """``axis`` (None, an int or ints, negative allowed) as a sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    try:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    except TypeError:
        raise ValueError(f"{op}: axis {axis!r} is not an int or a tuple of ints") from None
    out = []
    for a in axes:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
            raise ValueError(f"{op}: axis {a!r} is not an int")
        a = int(a)  # a numpy integer, as numpy's own functions take it
        if not -ndim <= a < ndim:
            raise ShapeError(f"{op}: axis {a} is out of range for shape {fmt_shape(shape)}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def fit_pairs(a: tuple, b: tuple) -> list | None:
    """The sizes of ``a`` and ``b`` (axes of 1 aside) that differ, in pairs, where each pair
    has a symbolic size (equal at run time, or an error); None where they do not pair up."""
    da = [d for d in a if d != 1]
    db = [d for d in b if d != 1]
    if len(da) != len(db):
        return None
    pairs = [(p, q) for p, q in zip(da, db) if p != q]
    if any(isinstance(p, int) and isinstance(q, int) for p, q in pairs):
        return None
    return pairs
