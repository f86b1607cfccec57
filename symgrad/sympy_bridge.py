"""symgrad <-> sympy: ``to_sympy`` and ``from_sympy``.

Scalar leaves become ``Symbol(name, real=True)``; vectors become column ``MatrixSymbol``s of
shape (n, 1) and matrices ``MatrixSymbol``s, so tensor expressions become sympy matrix
expressions (MatMul, HadamardProduct, Transpose, elementwise functions, ...). Both directions are
iterative, so deep graphs convert without recursion limits.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import numpy as np

from . import functions as F
from ._lazy import sympy
from .expr import Expr
from .graph import as_list, topo_order
from .ops.elementwise import diag_scaling
from .shapes import fmt_shape


def _is_mat(x) -> bool:
    return isinstance(x, (sympy.MatrixExpr, sympy.MatrixBase))


class _Ctx:
    """How ops build their sympy forms; knows the leaves' symbols and sympy's matrix algebra."""

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

    def symbol(self, n: Expr):
        return self.symbol_for(n.attrs["vname"], n)

    # elementwise algebra with numpy broadcasting, on sympy scalars and matrices
    def _expand(self, x, shape, n_shape):
        """A sympy value of shape ``shape`` broadcast to ``n_shape`` (both at most 2-D)."""
        if tuple(shape) == tuple(n_shape) or not _is_mat(x):
            return x
        m, k = self._mshape(n_shape)
        if len(shape) == 1 and len(n_shape) == 2:  # a row broadcast down the rows
            return sympy.OneMatrix(m, 1) * sympy.Transpose(x)
        if len(shape) == 2 and shape[0] == 1:
            return sympy.OneMatrix(m, 1) * x
        if len(shape) == 2 and shape[1] == 1:
            return x * sympy.OneMatrix(1, k)
        raise NotImplementedError(f"sympy broadcast of {shape} to {n_shape}")

    def _pair(self, a, b, n):
        if not (_is_mat(a) and _is_mat(b)) or len(n.args) != 2:
            return a, b
        sa, sb = n.args[0].shape, n.args[1].shape
        return self._expand(a, sa, n.shape), self._expand(b, sb, n.shape)

    def _lift_scalar(self, s, n):
        m, k = self._mshape(n.shape)
        return s * sympy.OneMatrix(m, k)

    def add(self, a, b, n):
        a, b = self._pair(a, b, n)
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

    def div(self, a, b, n):
        a, b = self._pair(a, b, n)
        if _is_mat(b):
            inv = sympy.HadamardPower(b, -1)
            return sympy.HadamardProduct(a, inv) if _is_mat(a) else a * inv
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

    def sum(self, a, n):
        x = n.args[0]
        if not _is_mat(a):
            return a
        m, k = self._mshape(x.shape)
        axes = n.attrs["axis"]
        if len(axes) == x.ndim:  # the sum of all entries, as a sympy Sum over an index
            i = sympy.Dummy("i", integer=True)
            if x.ndim == 1:
                return sympy.Sum(a[i, 0], (i, 0, m - 1))
            j = sympy.Dummy("j", integer=True)
            return sympy.Sum(a[i, j], (i, 0, m - 1), (j, 0, k - 1))
        if x.ndim == 2 and axes == (0,):
            return sympy.Transpose(sympy.OneMatrix(1, m) * a)
        if x.ndim == 2 and axes == (1,):
            return a * sympy.OneMatrix(k, 1)
        raise NotImplementedError("sympy form of this sum")

    def matmul(self, a, b, n):
        x, y = n.args
        if x.ndim == 1 and y.ndim == 2:
            return sympy.Transpose(b) * a
        if x.ndim == 1 and y.ndim == 1:
            return sympy.trace(sympy.Transpose(a) * b)
        return a * b

    def transpose(self, a):
        return sympy.Transpose(a) if _is_mat(a) else a

    def reshape(self, a, n):
        x = n.args[0]
        if [d for d in x.shape if d != 1] == [d for d in n.shape if d != 1]:
            if len(x.shape) == 1 and n.shape == (1, x.shape[0]):
                return sympy.Transpose(a)
            return a
        raise NotImplementedError("sympy form of this reshape")

    def broadcast(self, a, n):
        if not _is_mat(a):
            if n.ndim == 0:
                return a
            return self._lift_scalar(a, n)
        return self._expand(a, n.args[0].shape, n.shape)

    def diag(self, a, n):
        if n.ndim != 2:
            raise NotImplementedError("sympy has no form for a batch of diagonal matrices")
        return sympy.DiagMatrix(a)

    def diagonal(self, a, n):
        if n.ndim != 1:
            raise NotImplementedError("sympy has no form for a batch of diagonals")
        return sympy.DiagonalOf(a)


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
    roots = {id(o) for o in outs}
    for n in topo_order(outs):
        if keep_names and n.name is not None and id(n) not in roots:
            done[id(n)] = ctx.symbol_for(n.name, n)
            continue
        if keep_names and n.op.name == "alias" and id(n) not in roots:
            done[id(n)] = ctx.symbol_for(n.attrs["alias"], n)
            continue
        args = [done[id(a)] for a in n.args]
        try:
            done[id(n)] = n.op.sympy(args, n, ctx)
        except NotImplementedError as err:
            raise NotImplementedError(f"to_sympy: {err}") from None
        except (TypeError, ValueError, AttributeError) as err:  # sympy refused the form
            if str(err).startswith("to_sympy:"):
                raise
            shapes = " and ".join(fmt_shape(a.shape) for a in n.args)
            raise NotImplementedError(f"to_sympy: no sympy form for {n.op.name} of shapes "
                                      f"{shapes} ({type(err).__name__}: {err})") from None
        except RecursionError:  # sympy's own algorithms recurse on nested expressions
            raise ValueError(f"to_sympy: the expression is too deep for sympy (it recursed "
                             f"past Python's limit at a {n.op.name} node)") from None
    res = [done[id(o)] for o in outs]
    return res[0] if single else res


# ------------------------------------------------------------------ from sympy
_FUNCS: dict = {}  # sympy function -> symgrad constructor, filled on first use


def _funcs() -> dict:
    if not _FUNCS:
        _FUNCS.update({sympy.exp: F.exp, sympy.log: F.log, sympy.tanh: F.tanh,
                       sympy.sin: F.sin, sympy.cos: F.cos, sympy.Abs: F.abs})
    return _FUNCS


def from_sympy(expr, symbols: dict | None = None) -> Expr:
    """An Expr for a sympy expression.

    ``symbols`` maps sympy symbols (or their names) to Exprs; other symbols become
    ``sg.scalar(name)``, and a ``MatrixSymbol`` a matrix (a vector when it has one column,
    as ``to_sympy`` writes vectors). Recognises sigmoid ``1/(1 + exp(-x))``, softplus
    ``log(1 + exp(x))``, relu ``Max(0, x)``, and the matrix expressions ``to_sympy`` writes
    (products, sums, transposes, traces, elementwise products and functions, positive integer
    powers).

    A string is first read by ``sympy.sympify``, which evaluates it as Python: never pass text
    from an untrusted source; ``sg.parse`` reads formulas without evaluating them.
    """
    if symbols is not None and not isinstance(symbols, dict):
        raise TypeError(f"from_sympy: symbols must be a dict from sympy symbols (or names) to "
                        f"expressions, got {type(symbols).__name__}")
    symbols = dict(symbols or {})
    by_name = {(k.name if hasattr(k, "name") else str(k)): v for k, v in symbols.items()}
    for k, v in by_name.items():
        if not isinstance(v, Expr):
            raise TypeError(f"from_sympy: symbols[{k!r}] must be an expression, got "
                            f"{type(v).__name__}")
    if not isinstance(expr, sympy.Basic):
        try:
            expr = sympy.sympify(expr)
        except (sympy.SympifyError, TypeError) as err:
            raise ValueError(f"from_sympy: cannot read {expr!r:.60} as a sympy expression "
                             f"({err})") from None
        if not isinstance(expr, sympy.Basic):  # None, a list, ...: sympify passes them on
            raise ValueError(f"from_sympy: cannot read {expr!r:.60} as a sympy expression")
    return _read(expr, by_name, frozenset())


def _read(expr, by_name: dict, sizes: frozenset) -> Expr:
    """``expr`` read bottom-up; ``sizes``: names of the symbolic sizes of its matrices (and
    of the expression it is part of), which stand for sizes, not scalar variables."""
    sizes = sizes | {str(d) for m in expr.atoms(sympy.MatrixSymbol, sympy.OneMatrix,
                                                sympy.ZeroMatrix) for d in m.shape
                     if d.is_Symbol}
    done: dict = {}
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in done:
            continue
        special = _special(node)
        kids = special[1] if special else node.args
        if not ready and kids and not node.is_Atom and not _matrix_leaf(node):
            if not special:
                _check_readable(node)  # name the construct, not an operand it has
            stack.append((node, True))
            for k in kids:
                if k not in done:
                    stack.append((k, False))
            continue
        done[node] = _convert(node, special, done, by_name, sizes)
    return done[expr]


@functools.cache
def _matrix_element() -> type:
    """sympy's class of an entry ``A[i, j]`` of a matrix expression (not exported by name)."""
    return importlib.import_module("sympy.matrices.expressions.matexpr").MatrixElement


@functools.cache
def _elementwise_apply() -> type:
    """sympy's class of ``A.applyfunc(f)`` for a matrix expression (not exported by name)."""
    return importlib.import_module("sympy.matrices.expressions.applyfunc") \
        .ElementwiseApplyFunction


def _special(node):
    """(kind, operands) for sigmoid and softplus written out in sympy, and for a function
    applied to each entry of a matrix (``Lambda(d, f(d)).(A)``), else None."""
    if isinstance(node, _elementwise_apply()):
        return ("elementwise", (node.expr,))
    if isinstance(node, sympy.Sum):
        return ("index_sum", ())  # read whole (_read_sum): its body holds entries A[_i, 0]
    if isinstance(node, sympy.FunctionMatrix):
        return ("function_matrix", ())  # likewise (_read_function_matrix)
    if isinstance(node, sympy.Pow) and node.exp == -1 and isinstance(node.base, sympy.Add):
        terms = node.base.args
        if len(terms) == 2 and sympy.S.One in terms:
            other = terms[0] if terms[1] == sympy.S.One else terms[1]
            if isinstance(other, sympy.exp):
                return ("sigmoid", (-other.args[0],))
    if isinstance(node, sympy.log) and isinstance(node.args[0], sympy.Add):
        terms = node.args[0].args
        if len(terms) == 2 and sympy.S.One in terms:
            other = terms[0] if terms[1] == sympy.S.One else terms[1]
            if isinstance(other, sympy.exp):
                return ("softplus", (other.args[0],))
    return None


@functools.cache
def _readable() -> tuple:
    """The sympy classes _convert reads besides its function table (sympy is imported late)."""
    return (sympy.Add, sympy.Mul, sympy.Pow, sympy.Max, sympy.Min, sympy.Heaviside,
            sympy.Transpose, sympy.HadamardProduct, sympy.MatMul, sympy.MatAdd, sympy.MatPow,
            sympy.Trace, sympy.DiagMatrix, sympy.DiagonalOf, sympy.HadamardPower)


def _check_readable(node) -> None:
    if not isinstance(node, _readable()) and node.func not in _funcs():
        raise ValueError(f"from_sympy: no symgrad form for {node.func.__name__} ({node})")


def _read_sum(node, by_name: dict, sizes: frozenset) -> Expr:
    """``Sum(f(v[_i, 0], ...), (_i, 0, n - 1))``, as to_sympy writes ``sum(f(v))``: the sum of
    ``f`` applied to whole vectors (or, with two indices ``M[_i, _j]``, whole matrices)."""
    if any(lo != 0 for _, lo, _ in node.limits):
        raise ValueError(f"from_sympy: no symgrad form for Sum ({node}): its indices must "
                         "start at 0")
    idx = [lim[0] for lim in node.limits]
    return F.sum(_entrywise(node, node.function, idx, [hi + 1 for _, _, hi in node.limits],
                            by_name, sizes))


def _read_function_matrix(node, by_name: dict, sizes: frozenset) -> Expr:
    """``FunctionMatrix(m, k, Lambda((i, j), f(A[i, j], ...)))``, as to_sympy writes a function
    of two vectors or matrices: ``f`` applied to the whole operands."""
    fn = node.lamda
    return _entrywise(node, fn.expr, list(fn.variables), list(node.shape), by_name, sizes)


def _entrywise(node, body, idx: list, extents: list, by_name: dict, sizes: frozenset) -> Expr:
    """``body``, a formula in entries of matrices indexed by ``idx`` (spanning ``extents``),
    read as the same formula of the whole matrices: ``v[_i, 0]`` over ``_i < n`` is ``v``."""
    entries = sorted({a for a in sympy.preorder_traversal(body)
                      if isinstance(a, _matrix_element())}, key=sympy.default_sort_key)

    def spans(size, want) -> bool:
        return sympy.simplify(size - want) == 0

    fits = bool(entries)
    for m in entries:
        rows, cols = m.parent.shape
        if len(idx) == 1:
            fits = fits and m.i == idx[0] and m.j == 0 and cols == 1 and spans(rows, extents[0])
        else:
            fits = fits and len(idx) == 2 and (m.i, m.j) == tuple(idx) and \
                spans(rows, extents[0]) and spans(cols, extents[1])
    if not fits:
        raise ValueError(f"from_sympy: no symgrad form for {node.func.__name__} ({node}): only "
                         "formulas in the entries of whole vectors or matrices are read")
    names = {f"_entry_{id(node)}_{k}": _read(m.parent, by_name, sizes)
             for k, m in enumerate(entries)}
    body = body.xreplace({m: sympy.Symbol(nm) for m, nm in zip(entries, names)})
    if body.free_symbols & set(idx):
        raise ValueError(f"from_sympy: no symgrad form for {node.func.__name__} ({node}): its "
                         "index appears outside the entries")
    return _read(body, {**by_name, **names}, sizes)


def _matrix_leaf(node) -> bool:
    """A matrix read whole, not from its arguments (its name or sizes)."""
    return isinstance(node, (sympy.MatrixSymbol, sympy.OneMatrix, sympy.ZeroMatrix))


def _read_matmul(node, args: list[Expr]) -> Expr:
    """A sympy matrix product. Columns (n, 1) are read as vectors, for which ``@`` is a dot
    product: a column times a row, ``v*w.T`` in sympy, is their outer product."""
    out, shape = args[0], _shape_of(node.args[0])
    for a, s in zip(args[1:], node.args[1:]):
        s = _shape_of(s)
        if out.ndim == 0 or a.ndim == 0:
            out = F.mul(out, a)
        elif shape[1:] == (1,) and s[:1] == (1,) and shape[0] != 1:
            out = F.outer(_as_vector(out), _as_vector(a))
        else:
            out = F.matmul(out, a)
        shape = (shape[0], s[1]) if len(shape) == 2 and len(s) == 2 else s
    return out


def _shape_of(x) -> tuple:
    return tuple(x.shape) if hasattr(x, "shape") else ()


def _as_vector(e: Expr) -> Expr:
    """A vector, or a one-column or one-row matrix as the vector of its entries."""
    if e.ndim == 1:
        return e
    return F.reshape(e, (e.shape[0] if e.shape[1] == 1 else e.shape[1],))


def _convert(node, special, done, by_name, sizes):
    if special:
        kind, kids = special
        if kind == "index_sum":
            return _read_sum(node, by_name, sizes)
        if kind == "function_matrix":
            return _read_function_matrix(node, by_name, sizes)
        (arg,) = kids
        if kind == "elementwise":  # the function's body, read with its variable as the matrix
            fn = node.function
            (d,) = fn.variables
            entry = sympy.Symbol(f"_entry_{id(node)}")  # a name no user symbol has
            return _read(fn.expr.xreplace({d: entry}), {**by_name, entry.name: done[arg]},
                         sizes)
        return getattr(F, kind)(done[arg])
    if node.is_Symbol or isinstance(node, sympy.MatrixSymbol):
        hit = by_name.get(node.name)
        if hit is not None:
            return hit
        if node.is_Symbol and node.name in sizes and node.is_integer:
            return F.dimsize(node.name)  # a size of a matrix here (a mean's n), not a variable
        try:
            if isinstance(node, sympy.MatrixSymbol):
                r, c = node.shape
                if c == 1:  # how to_sympy writes a vector: a column
                    return F.vector(node.name, _dim(r))
                return F.matrix(node.name, (_dim(r), _dim(c)))
            return F.scalar(node.name)
        except ValueError as err:  # a name or a size symgrad cannot take
            raise ValueError(f"from_sympy: symbol {node.name!r}: {err}") from None
    if node.is_Number or node in (sympy.pi, sympy.E):
        return F.const(float(node))
    if isinstance(node, (sympy.OneMatrix, sympy.ZeroMatrix)):  # to_sympy's broadcasts
        r, c = (_dim(d) for d in node.shape)
        value = 1.0 if isinstance(node, sympy.OneMatrix) else 0.0
        # a column or a row is a vector, as a MatrixSymbol column (or its transpose) is
        shape = (r, c) if r != 1 and c != 1 else (c,) if r == 1 and c != 1 else (r,)
        return F.broadcast_to(F.const(value), shape)
    args = [done[a] for a in node.args]
    # matrix expressions first: sympy's MatMul is a Mul and its MatAdd an Add
    if isinstance(node, sympy.Transpose):
        return F.transpose(args[0])
    if isinstance(node, sympy.HadamardProduct):
        return functools.reduce(F.mul, args)
    if isinstance(node, sympy.MatMul):
        return _read_matmul(node, args)
    if isinstance(node, sympy.DiagMatrix):  # M diag(v): a broadcast product, in sympy
        return F.diag(_as_vector(args[0]))
    if isinstance(node, sympy.DiagonalOf):
        return F.diagonal(args[0])
    if isinstance(node, sympy.HadamardPower):
        return F.power(args[0], args[1])
    if isinstance(node, sympy.Trace):  # to_sympy's form of a scalar x^T A y: a 1 x 1 trace
        return args[0] if args[0].ndim == 0 else F.trace(args[0])
    if isinstance(node, sympy.MatPow) and node.exp.is_Integer and node.exp > 0:
        return functools.reduce(F.matmul, [args[0]] * int(node.exp))
    if isinstance(node, sympy.MatAdd):
        return functools.reduce(F.add, args)
    if isinstance(node, sympy.Add):
        pos = [a for a, s in zip(args, node.args) if not _is_negative(s)]
        neg = [a for a, s in zip(args, node.args) if _is_negative(s)]
        out = pos[0] if pos else None
        for a in pos[1:]:
            out = F.add(out, a)
        for a in neg:
            a = a.args[0] if a.op.name == "neg" else F.neg(a)
            out = F.neg(a) if out is None else F.sub(out, a)
        return out
    if isinstance(node, sympy.Mul):
        num, den = [], []
        sign = 1.0
        for a, s in zip(args, node.args):
            if s.is_Number and s < 0:
                sign = -sign
                if s != -1:
                    num.append(F.const(float(-s)))
            elif isinstance(s, sympy.Pow) and s.exp.is_Number and s.exp < 0 and s.base in done:
                # (a special form such as sigmoid's 1/(1 + exp(-x)) is a factor of its own)
                den.append(F.power(done[s.base], float(-s.exp)) if s.exp != -1 else done[s.base])
            else:
                num.append(a)
        out = num[0] if num else F.const(1.0)
        for a in num[1:]:
            out = F.mul(out, a)
        for a in den:
            out = F.div(out, a)
        return F.neg(out) if sign < 0 else out
    if isinstance(node, sympy.Pow):
        base, ex = args
        if node.exp == sympy.Rational(1, 2):
            return F.sqrt(base)
        if node.exp == -1:
            return F.div(1.0, base)
        return F.power(base, ex)
    if isinstance(node, sympy.Max):
        if len(args) == 2 and sympy.S.Zero in node.args:
            other = args[1] if node.args[0] == sympy.S.Zero else args[0]
            return F.relu(other)
        return functools.reduce(F.maximum, args)
    if isinstance(node, sympy.Min):
        return functools.reduce(F.minimum, args)
    if isinstance(node, sympy.Heaviside):
        return F.step(args[0])
    fn = _funcs().get(node.func)
    if fn is not None:
        return fn(*args)
    raise ValueError(f"from_sympy: no symgrad form for {node.func.__name__} ({node})")


def _is_negative(s) -> bool:
    c, _ = s.as_coeff_Mul()
    return c.is_Number and c < 0


def _dim(d):
    return int(d) if d.is_Integer else str(d)
