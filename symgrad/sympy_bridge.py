"""symgrad <-> sympy: ``to_sympy`` here, ``from_sympy`` in :mod:`symgrad.sympy_read`.

Scalar leaves become ``Symbol(name, real=True)``; vectors become column ``MatrixSymbol``s of
shape (n, 1) and matrices ``MatrixSymbol``s, so tensor expressions become sympy matrix
expressions (MatMul, HadamardProduct, Transpose, elementwise functions, ...). Both directions are
iterative, so deep graphs convert without recursion limits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import functions as F
from ._lazy import sympy
from .expr import Expr, unguard
from .graph import as_list, topo_order
from .ops.elementwise import diag_scaling
from .shapes import fit_pairs, fmt_shape
from .sympy_read import _is_mat, from_sympy

__all__ = ["from_sympy", "to_sympy"]


class _Ctx:
    """How ops build their sympy forms; knows the leaves' symbols and sympy's matrix algebra.

    Every value has one sympy form for its shape: a scalar is a sympy scalar, a vector of n a
    column (n, 1), a matrix (m, k) an (m, k) matrix expression. The methods below keep to it
    (from_sympy reads a column back as a vector, so a matrix (n, 1) comes back as a vector)."""

    def __init__(self, keep_names: bool):
        self.keep_names = keep_names
        self.names: dict[str, Expr] = {}

    def size(self, d):
        return sympy.Integer(d) if isinstance(d, int) else sympy.Symbol(d, integer=True,
                                                                       positive=True)

    def _mshape(self, shape):
        if len(shape) == 1:
            return self.size(shape[0]), sympy.Integer(1)
        if len(shape) == 2:
            return self.size(shape[0]), self.size(shape[1])
        raise NotImplementedError("sympy has no form for tensors of more than two axes")

    def symbol_for(self, name: str, n: Expr):
        prev = self.names.get(name)
        if prev is not None and prev is not n and prev.shape != n.shape:
            raise ValueError(f"to_sympy: two different nodes are named {name}")
        self.names[name] = n
        if n.ndim == 0:
            return sympy.Symbol(name, real=True)
        return sympy.MatrixSymbol(name, *self._mshape(n.shape))

    def claim(self, name: str, n: Expr) -> bool:
        """Whether the named node ``n`` may stand as the symbol ``name``: not if a variable or
        another value has that name already (sympy would merge the two; ``n`` is then written
        as its formula, as ``str`` does)."""
        return self.names.setdefault(name, n) is n

    def symbol(self, n: Expr):
        return self.symbol_for(n.attrs["vname"], n)

    # elementwise algebra with numpy broadcasting, on sympy scalars and matrices
    def _expand(self, x, shape, n_shape):
        """A sympy value of shape ``shape`` broadcast to ``n_shape`` (numpy's rules)."""
        shape, n_shape = tuple(shape), tuple(n_shape)
        if shape == n_shape:
            return x
        if not _is_mat(x):
            return self._lift_scalar(x, n_shape) if n_shape else x
        if len(n_shape) > 2:
            raise NotImplementedError("sympy has no form for tensors of more than two axes")
        # numpy lines shapes up on the right: a vector broadcasts as a row (1, n)
        r, c = (1, shape[0]) if len(shape) == 1 else shape
        m, k = (1, n_shape[0]) if len(n_shape) == 1 else n_shape
        X = sympy.Transpose(x) if len(shape) == 1 else x
        if r == 1 and m != 1:
            X = sympy.OneMatrix(self.size(m), 1) * X
        if c == 1 and k != 1:
            X = X * sympy.OneMatrix(1, self.size(k))
        return sympy.Transpose(X) if len(n_shape) == 1 else X

    def _pair(self, a, b, n, shapes=None):
        if shapes is None:
            if len(n.args) != 2:
                return a, b
            shapes = (n.args[0].shape, n.args[1].shape)
        if not (_is_mat(a) and _is_mat(b)):
            return a, b
        return self._expand(a, shapes[0], n.shape), self._expand(b, shapes[1], n.shape)

    def _lift_scalar(self, s, shape):
        """The scalar ``s`` in every entry of ``shape``."""
        shape = getattr(shape, "shape", shape)
        return sympy.MatMul(s, sympy.OneMatrix(*self._mshape(shape)))

    def add(self, a, b, n, shapes=None):
        a, b = self._pair(a, b, n, shapes)
        if _is_mat(a) != _is_mat(b):
            if _is_mat(a):
                b = self._lift_scalar(b, n)
            else:
                a = self._lift_scalar(a, n)
        return a + b

    def neg(self, a):
        return -a

    def mul(self, a, b, n):
        if _is_mat(a) and _is_mat(b):
            sc = diag_scaling(n)
            if sc is not None:  # a matrix times a broadcast vector: M diag(v) or diag(v) M
                i, side = sc
                m, v = (a, b) if i == 0 else (b, a)
                return m * sympy.DiagMatrix(v) if side == "cols" else sympy.DiagMatrix(v) * m
        a, b = self._pair(a, b, n)
        if _is_mat(a) and _is_mat(b):
            return sympy.HadamardProduct(a, b)
        return a * b

    def div(self, a, b, n, shapes=None):
        a, b = self._pair(a, b, n, shapes)
        if _is_mat(b):
            inv = sympy.HadamardPower(b, -1)
            return sympy.HadamardProduct(a, inv) if _is_mat(a) else a * inv
        if _is_mat(a):  # a matrix over a scalar: MatMul as is (a * would expand a Sum in b)
            return sympy.MatMul(sympy.Pow(b, -1), a)
        return a / b

    def apply(self, fn, args, n):
        if len(args) == 2:
            a, b = self._pair(args[0], args[1], n)
            if _is_mat(a) or _is_mat(b):  # entry by entry: bce(mu, y) of vectors
                i, j = sympy.Dummy("i", integer=True), sympy.Dummy("j", integer=True)
                ea, eb = (x[i, j] if _is_mat(x) else x for x in (a, b))
                return sympy.FunctionMatrix(*self._mshape(n.shape), sympy.Lambda((i, j),
                                                                                fn(ea, eb)))
            return fn(a, b)
        (a,) = args
        if _is_mat(a):
            d = sympy.Dummy("d", real=True)
            return a.applyfunc(sympy.Lambda(d, fn(d)))
        return fn(a)

    def reduce_sum(self, a, shape, axes, keepdims=False):
        """The sum of ``a`` (of ``shape``) over ``axes``."""
        if not _is_mat(a):
            return a
        axes = tuple(sorted(axes))
        m, k = self._mshape(shape)
        if len(axes) == len(shape):  # the sum of all entries, as a sympy Sum over an index
            i = sympy.Dummy("i", integer=True)
            if len(shape) == 1:
                total = sympy.Sum(a[i, 0], (i, 0, m - 1))
            else:
                j = sympy.Dummy("j", integer=True)
                total = sympy.Sum(a[i, j], (i, 0, m - 1), (j, 0, k - 1))
            return self._lift_scalar(total, (1,) * len(shape)) if keepdims else total
        if axes == (0,):  # the column sums: a row (1, k), or as a vector a column
            row = sympy.OneMatrix(1, m) * a
            return row if keepdims else sympy.Transpose(row)
        if axes == (1,):  # the row sums: a column (m, 1) either way
            return a * sympy.OneMatrix(k, 1)
        raise NotImplementedError(f"sympy form of a sum over the axes {axes}")

    def sum(self, a, n):
        return self.reduce_sum(a, n.args[0].shape, n.attrs["axis"], n.attrs.get("keepdims"))

    def sum_back(self, a, shape, axes):
        """The sum of ``a`` over ``axes``, broadcast back to ``shape`` (softmax's normaliser):
        a scalar when ``axes`` are all the axes."""
        if len(axes) == len(shape):
            return self.reduce_sum(a, shape, axes)
        kept = tuple(1 if i in axes else d for i, d in enumerate(shape))
        return self._expand(self.reduce_sum(a, shape, axes, keepdims=True), kept, shape)

    def matmul(self, a, b, n):
        x, y = n.args
        if x.ndim == 1 and y.ndim == 2:
            return sympy.Transpose(b) * a
        if x.ndim == 1 and y.ndim == 1:
            return sympy.trace(sympy.Transpose(a) * b)
        if x.ndim > 2 or y.ndim > 2:
            raise NotImplementedError("sympy has no form for a batch of matrix products")
        return a * b

    def transpose(self, a):
        return sympy.Transpose(a) if _is_mat(a) else a

    def reshape(self, a, n):
        src, dst = n.args[0].shape, n.shape
        if [d for d in src if d != 1] == [d for d in dst if d != 1]:  # axes of 1 only
            if not dst:  # (1,) or (1, 1) to a scalar: the entry
                return a[0, 0]
            if not src:
                return self._lift_scalar(a, dst)
            ms, md = self._mshape(src), self._mshape(dst)
            return a if ms == md else sympy.Transpose(a)  # a row for a column
        return self._reshape_entries(a, src, dst)

    def fit_shape(self, a, n):
        """The same matrix: its sizes are equal to the new ones at run time (axes of 1 may
        make a column a row, or a 1 x 1 matrix an entry)."""
        src, dst = n.args[0].shape, n.shape
        for p, q in fit_pairs(src, dst) or ():
            if isinstance(p, int) != isinstance(q, int):
                # a sympy matrix has the sizes it has: a 2 x 1 constant cannot stand for (m,)
                raise NotImplementedError(f"the sizes {p} and {q} are equal only at run time")
        if not dst:
            return a[0, 0] if src else a
        if not src:
            return self._lift_scalar(a, dst)
        column = len(src) == 1 or src[-1] == 1
        return a if column == (len(dst) == 1 or dst[-1] == 1) else sympy.Transpose(a)

    def _reshape_entries(self, a, src, dst):
        """A reshape that moves entries to other rows: a FunctionMatrix whose entry (i, j)
        is the entry of ``a`` at the same place in row-major order."""
        sizes = list(src) + list(dst)
        if not all(isinstance(d, int) for d in sizes) or not src or not dst:
            raise NotImplementedError("sympy form of a reshape of symbolic sizes")
        self._mshape(src)  # (more than two axes: no form)
        rows, cols = self._mshape(dst)
        i, j = sympy.Dummy("i", integer=True), sympy.Dummy("j", integer=True)
        # the entry's place in row-major order (an index of one value is left out: it is 0)
        flat = i if len(dst) == 1 or dst[1] == 1 else j if dst[0] == 1 else i * dst[1] + j
        entry = a[flat, 0] if len(src) == 1 else a[sympy.floor(flat / src[1]),
                                                    sympy.Mod(flat, src[1])]
        return sympy.FunctionMatrix(rows, cols, sympy.Lambda((i, j), entry))

    def broadcast(self, a, n):
        return self._expand(a, n.args[0].shape, n.shape)

    def diag(self, a, n):
        if n.ndim != 2:
            raise NotImplementedError("sympy has no form for a batch of diagonal matrices")
        return sympy.DiagMatrix(a)

    def diagonal(self, a, n):
        if n.ndim != 1:
            raise NotImplementedError("sympy has no form for a batch of diagonals")
        return sympy.DiagonalOf(a)

    def take(self, a, n):
        """Row ``i`` of a matrix (a slice, transposed to the column of a vector) or entry ``i``
        of a vector, for a constant ``i``."""
        M, i = n.args
        if not F.is_scalar_const(i):
            raise NotImplementedError("sympy form of take at a computed index")
        r, rows = int(i.attrs["value"]), M.shape[0]
        if r < 0:
            if not isinstance(rows, int):
                raise NotImplementedError("sympy form of take at a negative index of a "
                                          "symbolic size")
            r += rows
        if M.ndim == 1:
            return a[r, 0]
        if M.ndim == 2:
            return sympy.Transpose(a[r, :])
        raise NotImplementedError("sympy has no form for tensors of more than two axes")


def to_sympy(e: Expr, keep_names: bool = False):
    """A sympy expression for ``e`` (a list gives a list).

    With ``keep_names=True`` named nodes become symbols (``Symbol(name, real=True)``, or a
    ``MatrixSymbol`` for a named tensor) instead of their definitions.
    """
    outs, single = as_list(e, "to_sympy")
    if not isinstance(keep_names, (bool, int, np.bool_)):  # an Expr's truth value raises
        raise TypeError(f"to_sympy: keep_names must be True or False, got {keep_names!r:.60}")
    keep_names = bool(keep_names)
    ctx = _Ctx(keep_names)
    done: dict[int, Any] = {}
    roots = {id(o) for o in outs} | {id(unguard(o)) for o in outs}  # (see ops.Guard)
    order = topo_order(outs)
    if keep_names:  # variables keep their names; a value named like one is written out
        for n in order:
            if n.op.name == "var":
                ctx.names.setdefault(n.attrs["vname"], n)
    for n in order:
        name = n.name if n.name is not None else n.attrs.get("alias") \
            if n.op.name == "alias" else None
        if keep_names and name is not None and id(n) not in roots and ctx.claim(name, n):
            done[id(n)] = ctx.symbol_for(name, n)
            continue
        args = [done[id(a)] for a in n.args]
        try:
            done[id(n)] = n.op.sympy(args, n, ctx)
        except NotImplementedError as err:  # the op (or sympy) has no form for these shapes
            raise NotImplementedError(f"to_sympy: no sympy form for {_op_shapes(n)} ({err})") \
                from None
        except (TypeError, ValueError, AttributeError) as err:  # sympy refused the form
            if str(err).startswith("to_sympy:"):
                raise
            raise NotImplementedError(f"to_sympy: no sympy form for {_op_shapes(n)} "
                                      f"({type(err).__name__}: {err})") from None
        except RecursionError:  # sympy's own algorithms recurse on nested expressions
            raise ValueError(f"to_sympy: the expression is too deep for sympy (it recursed "
                             f"past Python's limit at a {n.op.name} node)") from None
    res = [done[id(o)] for o in outs]
    return res[0] if single else res


def _op_shapes(n: Expr) -> str:
    """``diag of shape (2, 3) -> (2, 3, 3)``, ``matmul of shapes (2, 3) and (3,) -> (2,)``: the
    op, its operands' shapes and its own, as to_sympy's errors name them."""
    if not n.args:
        return f"{n.op.name} of shape {fmt_shape(n.shape)}"
    return (f"{n.op.name} of shape{'s' if len(n.args) > 1 else ''} "
            f"{' and '.join(fmt_shape(a.shape) for a in n.args)} -> {fmt_shape(n.shape)}")
