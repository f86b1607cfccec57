"""``from_sympy``: sympy expressions read back into symgrad graphs.

The inverse of :func:`symgrad.sympy_bridge.to_sympy`: scalar expressions, and the matrix
expressions it writes (MatMul, HadamardProduct, Transpose, Sums over indices, FunctionMatrix
entries, ...). The reading itself is iterative; sympy's own traversals (``atoms``,
``xreplace``) recurse, and an expression too deep for them is a ValueError that says so.
"""

from __future__ import annotations

import fractions
import functools
import importlib
import math
from typing import Any

import numpy as np

from . import functions as F
from ._lazy import sympy
from .expr import Expr
from .rewrite import stabilize
from .shapes import fmt_shape


def _is_mat(x) -> bool:
    return isinstance(x, (sympy.MatrixExpr, sympy.MatrixBase))


_FUNCS: dict = {}  # sympy function -> symgrad constructor, filled on first use


def _funcs() -> dict:
    if not _FUNCS:
        _FUNCS.update({sympy.exp: F.exp, sympy.log: F.log, sympy.tanh: F.tanh,
                       sympy.sin: F.sin, sympy.cos: F.cos, sympy.Abs: F.abs,
                       sympy.floor: F.floor})
    return _FUNCS


def _key_name(k) -> str:
    """The symbol name a key of ``from_sympy``'s ``symbols`` stands for: a sympy symbol's, a
    string, or a symgrad variable's (or named node's) name, the symbol ``to_sympy`` writes."""
    if isinstance(k, str):
        return k
    if isinstance(k, Expr):
        name = k.attrs["vname"] if k.op.name == "var" else k.name
        if name is not None:
            return name
    elif isinstance(k, (sympy.Symbol, sympy.MatrixSymbol)):
        return k.name
    raise TypeError(f"from_sympy: a key of symbols must be a sympy symbol, its name or a "
                    f"symgrad variable, got {k!r:.60} ({type(k).__name__})")


def from_sympy(expr, symbols: dict | None = None) -> Expr:
    """An Expr for a sympy expression.

    ``symbols`` maps sympy symbols (or their names, or symgrad variables) to Exprs; other
    symbols become ``sg.scalar(name)`` (symbols are matched by name, as symgrad's variables
    are: sympy's ``Symbol("x")`` and ``Symbol("x", positive=True)`` are one variable x), and a
    ``MatrixSymbol`` a matrix (a vector when it has one column, as ``to_sympy`` writes
    vectors). Recognises sigmoid ``1/(1 + exp(-x))``, softplus ``log(1 + exp(x))``, relu
    ``Max(0, x)``, the other forms :func:`symgrad.rewrite.stabilize` rewrites
    (``exp(v)/sum(exp(v))`` is ``softmax(v)``), and the matrix expressions ``to_sympy`` writes
    (products, sums, transposes, traces, elementwise products and functions, positive integer
    powers, rows and entries), and formulas in the entries ``A[i, j]`` of matrices: sums over
    indices (``Sum``, nested or not, and the sums of terms sympy writes out for products of
    matrices of known sizes), ``FunctionMatrix``, ``KroneckerDelta``, and ``Piecewise``
    where one branch holds for every index.

    Every sympy matrix of shape (n, 1) becomes a vector of n, so an expression that is an
    (n, 1) matrix in symgrad comes back as a vector: ``sg.reshape`` it where the column
    matters. A construct with no symgrad form is named in a ``ValueError``, and so is a symbol
    declared complex (``Symbol("z", complex=True)``: symgrad's variables are real) unless
    ``symbols`` maps it.

    A string is first read by ``sympy.sympify``, which evaluates it as Python: never pass text
    from an untrusted source; ``sg.parse`` reads formulas without evaluating them.
    """
    if symbols is not None and not isinstance(symbols, dict):
        raise TypeError(f"from_sympy: symbols must be a dict from sympy symbols (or names) to "
                        f"expressions, got {type(symbols).__name__}")
    symbols = dict(symbols or {})
    by_name = {_key_name(k): v for k, v in symbols.items()}
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
    try:
        out = _read(_rolled(expr), by_name, frozenset())
    except RecursionError:  # sympy's own traversals (atoms, xreplace) recurse
        raise ValueError("from_sympy: the expression is too deep for sympy's own traversals "
                         "(they recursed past Python's limit)") from None
    # sympy's forms of the stable functions read back as those functions (exp(v) (1/sum(exp(v)))
    # is softmax(v)), so what is built on the result is stable too (sum(s s) of the sympy
    # form of a softmax s was nan at v = 1000); the expressions of ``symbols`` stay as given
    (out,) = stabilize([out], keep=list(by_name.values()))
    return out


# sympy writes out the entries of a product of matrices of known sizes as sums of their
# terms: (A*v)[i, 0] is A[i, 0]*v[0, 0] + A[i, 1]*v[1, 0] + A[i, 2]*v[2, 0]. _rolled writes
# such sums back as one Sum over an index, so that they read as one operation on the whole
# matrices instead of one per entry. The indices it makes are these (one per nesting level).
_ROLL: list = []


def _roll_index(level: int):
    while len(_ROLL) <= level:
        _ROLL.append(sympy.Dummy(f"r{len(_ROLL)}", integer=True, nonnegative=True))
    return _ROLL[level]


def _rolled(expr):
    """``expr`` with every sum of terms ``t(0) + t(1) + ... + t(n - 1)``, where ``t(c)`` takes
    entries at index ``c`` of axes of ``n`` entries, written as ``Sum(t(k), (k, 0, n - 1))``.
    The terms are equal to the Sum's, by construction: nothing is assumed."""
    if not any(a.i.is_Integer or a.j.is_Integer for a in expr.atoms(_matrix_element())):
        return expr
    return expr.replace(lambda x: type(x) is sympy.Add, _roll_add)


def _roll_add(add):
    terms = list(add.args)
    while True:
        groups: dict = {}  # (template, n) -> {c: term}
        for t in terms:
            for key, c in _templates(t):
                groups.setdefault(key, {}).setdefault(c, t)
        full = [(key, g) for key, g in groups.items()
                if len(g) == key[1] and set(g) == set(range(key[1]))
                and len(set(map(id, g.values()))) == key[1]]
        if not full:
            return sympy.Add(*terms) if len(terms) != len(add.args) else add
        (template, n, k), g = max(full, key=lambda kg: kg[0][1])
        used = {id(t) for t in g.values()}
        terms = [t for t in terms if id(t) not in used] + \
            [sympy.Sum(template, (k, 0, n - 1))]


def _templates(t):
    """((template, n, k), c) for each constant ``c`` at which ``t`` takes entries of an axis
    of ``n`` entries: ``t`` with those indices replaced by ``k``."""
    element = _matrix_element()
    entries = [a for a in sympy.preorder_traversal(t) if isinstance(a, element)]
    consts = set()
    for m in entries:
        rows, cols = m.parent.shape
        for slot, size in ((m.i, rows), (m.j, cols)):
            size = sympy.sympify(size)  # (an explicit Matrix's shape is Python ints)
            if slot.is_Integer and size.is_Integer and size > 1:
                consts.add((int(slot), int(size)))
    level = sum(1 for d in _ROLL if t.has(d))
    k = _roll_index(level)
    for c, n in consts:
        swap = {}
        for m in entries:
            rows, cols = m.parent.shape
            i = k if m.i == c and rows == n else m.i
            j = k if m.j == c and cols == n else m.j
            if (i, j) != (m.i, m.j):
                swap[m] = element(m.parent, i, j)  # (indexing could evaluate the entry)
        yield (t.xreplace(swap), n, k), c


def _read(expr, by_name: dict, sizes: frozenset, scope: tuple = ()) -> Expr:
    """``expr`` read bottom-up; ``sizes``: names of the symbolic sizes of its matrices (and
    of the expression it is part of), which stand for sizes, not scalar variables.

    ``scope``: the indices ``((i, extent), ...)`` of the sums and FunctionMatrix entries
    ``expr`` is the body of. A body is read as a tensor with one axis per index, in that
    order, of size 1 where it does not depend on the index, leading axes of 1 left out (so
    numpy's broadcasting lines the entries up): ``A[_i, _j]*v[_j, 0]`` over ``(_i, _j)`` is
    ``A ⊙ v``, and ``v`` broadcasts as a row.
    """
    sizes = sizes | {str(d) for m in expr.atoms(sympy.MatrixSymbol, sympy.OneMatrix,
                                                sympy.ZeroMatrix, sympy.Identity)
                     for d in m.shape if d.is_Symbol}
    done: dict = {}
    indices = {s for s, _ in scope}
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in done:
            continue
        if indices and not node.is_Atom and not _is_mat(node) and \
                not node.free_symbols & indices:  # Trace(v.T*w) in a body: a scalar, read whole
            done[node] = _read(node, by_name, sizes)
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
        if scope and _is_mat(node):  # (a matrix is read whole, as the parent of its entries)
            raise ValueError(f"from_sympy: no symgrad form for {node.func.__name__} ({node}) "
                             "inside a sum over an index: only its entries can be read there")
        out = _convert(node, special, done, by_name, sizes, scope)
        done[node] = _canonical(out, node) if _is_mat(node) else out
    return done[expr]


def _canonical(e: Expr, node) -> Expr:
    """``e``, read from the sympy matrix ``node``, in the one shape symgrad gives each sympy
    shape: (n, 1) is a vector of n (as to_sympy writes vectors), (m, k) with k > 1 a matrix.
    Products and transposes of columns and rows can read as either (``v.T`` is a row, and
    symgrad's transpose of a vector is the vector): every node is put in the one form, so that
    entry-by-entry operations meet equal shapes."""
    rows, cols = node.shape
    want = (_dim(rows),) if cols == 1 else (_dim(rows), _dim(cols))
    if e.shape == want:
        return e
    if [d for d in e.shape if d != 1] != [d for d in want if d != 1]:
        raise ValueError(f"from_sympy: read {node.func.__name__} ({node}) as shape "
                         f"{fmt_shape(e.shape)}, but sympy's shape is ({rows}, {cols})")
    return F.reshape(e, want)


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
    applied to each entry of a matrix (``Lambda(d, f(d)).(A)``), else None. Sums over an
    index, FunctionMatrix and entries ``A[i, j]`` are read whole (no operands here)."""
    if isinstance(node, _elementwise_apply()):
        return ("elementwise", (node.expr,))
    if isinstance(node, sympy.Sum):
        return ("index_sum", ())  # its body holds entries A[_i, 0] (_read_sum)
    if isinstance(node, sympy.FunctionMatrix):
        return ("function_matrix", ())  # likewise (_read_function_matrix)
    if isinstance(node, _matrix_element()):
        return ("element", ())  # its parent is read whole, its indices are not values
    if isinstance(node, sympy.MatrixSlice):
        return ("slice", (node.parent,))
    if isinstance(node, sympy.Piecewise):
        return ("piecewise", ())  # the branch whose condition holds for every index value
    if isinstance(node, sympy.KroneckerDelta):
        return ("delta", ())  # an identity matrix (or a one-hot row) over its indices
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


def _no_form(node, why: str) -> ValueError:
    return ValueError(f"from_sympy: no symgrad form for {node.func.__name__} ({node}): {why}")


def _extent(node, hi, known) -> Any:
    """The number of values of an index running from 0 to ``hi``: an int or a size name."""
    n = hi + 1
    if n.free_symbols & known:
        raise _no_form(node, "its limits depend on another index")
    if not (n.is_Integer and n > 0) and not n.is_Symbol:
        raise _no_form(node, f"its index runs over {n} values, which is not a size")
    return n


def _read_sum(node, by_name: dict, sizes: frozenset, scope: tuple) -> Expr:
    """``Sum(body, (_i, 0, n - 1), ...)``: the body read as a tensor over the outer indices
    and ``_i``, ..., summed over the axes of its own indices (``Sum(v[_i, 0]**2, (_i, 0, n -
    1))``, how to_sympy writes ``sum(v * v)``, is ``sum(v**2)``; ``Sum(A[_i, _k]*v[_k, 0],
    (_k, 0, n - 1))`` is the row sums of ``A ⊙ v``, that is ``A @ v``)."""
    known = {s for s, _ in scope}
    new = []
    for idx, lo, hi in node.limits:
        if lo != 0:
            raise _no_form(node, "its indices must start at 0")
        new.append((idx, _extent(node, hi, known | {s for s, _ in new})))
    # the sum is the same in any order of its indices: the order they index the entries in
    # (A[_i, _k] over (_i, _k), not (_k, _i)) keeps the matrices untransposed
    seen = [s for m in sympy.preorder_traversal(node.function) if isinstance(m, _matrix_element())
            for s in (m.i, m.j)]
    new.sort(key=lambda sn: seen.index(sn[0]) if sn[0] in seen else len(seen))
    layout = scope + tuple(new)
    body = _read(node.function, by_name, sizes | _size_names(new), layout)
    _check_lined_up(node, body, layout)
    lined = (1,) * (len(layout) - body.ndim) + body.shape
    body = F.broadcast_to(body, lined[:len(scope)] + tuple(_dim(n) for _, n in new))
    return F.sum(body, tuple(range(len(scope), len(layout))))


def _read_function_matrix(node, by_name: dict, sizes: frozenset) -> Expr:
    """``FunctionMatrix(m, k, Lambda((i, j), f(A[i, j], v[j, 0], ...)))``, as to_sympy writes a
    function of two vectors or matrices: ``f`` of the operands lined up along ``i`` and ``j``
    (``v`` as a row), broadcast to (m, k)."""
    fn = node.lamda
    if len(fn.variables) != 2:
        raise _no_form(node, "its function must take two indices")
    rows, cols = node.shape
    layout = tuple(zip(fn.variables, (rows, cols)))
    body = _read(fn.expr, by_name, sizes, layout)
    _check_lined_up(node, body, layout)
    return F.broadcast_to(body, (_dim(rows), _dim(cols)))


def _check_lined_up(node, body: Expr, layout: tuple) -> None:
    """A body read over ``layout`` has at most one axis per index (what every reader of
    entries returns, lined up on the right): more would broadcast against the wrong axes."""
    if body.ndim > len(layout):
        raise _no_form(node, f"its body read as shape {fmt_shape(body.shape)}, more axes than "
                             "its indices")


def _size_names(scope) -> frozenset:
    return frozenset(str(n) for _, n in scope if n.is_Symbol)


def _read_element(node, by_name: dict, sizes: frozenset, scope: tuple) -> Expr:
    """An entry ``X[i, j]`` of a matrix expression ``X`` (read whole), as a tensor over the
    indices of ``scope``: ``X`` itself over ``(i, j)``, its transpose over ``(j, i)``, its
    diagonal for ``X[i, i]``, a row or an entry (take) for constant indices, and a reshape of
    ``X`` where the indices step through its entries in row-major order (``v[3*_i + _j, 0]``,
    ``A[floor(_i/3), Mod(_i, 3)]``, as to_sympy writes a reshape)."""
    X = node.parent
    if X.free_symbols & {s for s, _ in scope}:
        raise _no_form(node, "a matrix that depends on the index is not read")
    T = _read(X, by_name, sizes)
    rows, cols = X.shape
    slots = [(node.i, rows), (node.j, cols)]
    indices = {s: n for s, n in scope}
    # an index with one value is 0 (the column index of a FunctionMatrix of one column)
    zero = {s: sympy.S.Zero for s, n in scope if n == 1}
    slots = [(s.xreplace(zero), n) for s, n in slots]
    free = set().union(*(sl.free_symbols for sl, _ in slots)) - set(indices)
    if free:
        raise ValueError(f"from_sympy: no symgrad form for the free index {min(free, key=str)}"
                         f" of {node}: an index must belong to a Sum or a FunctionMatrix")
    if T.ndim == 1:  # a column: its column index is 0
        if slots[1][0] != 0:
            raise _no_form(node, "an entry outside the column")
        slots = slots[:1]
    if not all(s.is_Integer or s in indices for s, _ in slots):
        try:
            return _align(*_reshaped_entries(node, T, slots, scope), scope)
        except ValueError:  # not a reshape: the entries gathered by a 0/1 matrix
            return _gathered(node, T, slots, scope)
    for s, size in slots:
        if s.is_Integer:
            if s < 0 or (size.is_Integer and s >= size):
                raise _no_form(node, f"index {s} is out of range for size {size}")
        elif sympy.simplify(size - indices[s]) != 0:  # a part of the axis: no symgrad form
            raise _no_form(node, f"its index {s} runs over {indices[s]} values, the axis has "
                                 f"{size}")
    labels = [s for s, _ in slots]
    if len(labels) == 2 and labels[1].is_Integer:  # column j: row j of the transpose
        T, labels = F.take(F.transpose(T), int(labels[1])), labels[:1]
    if labels and labels[0].is_Integer:
        T, labels = F.take(T, int(labels[0])), labels[1:]
    if len(labels) == 2 and labels[0] == labels[1]:
        if sympy.simplify(rows - cols) != 0:
            raise _no_form(node, "a diagonal of a matrix that is not square")
        T, labels = F.diagonal(T), labels[:1]
    return _align(T, labels, scope)


def _reshaped_entries(node, T: Expr, slots: list, scope: tuple) -> tuple:
    """(tensor, indices) for an entry whose indices are formulas: its place in ``T``'s
    row-major order must step through all of ``T`` once as the indices run, in their order
    (a reshape of ``T``), and the column index must stay in its range on the way."""
    indices = {s: n for s, n in scope}
    if not all(n.is_Integer for s, n in indices.items() if any(sl.has(s) for sl, _ in slots)) \
            or not all(sz.is_Integer for _, sz in slots):
        raise _no_form(node, "an index formula over symbolic sizes")
    if len(slots) == 2:
        (r, _), (c, cols) = slots
        if not (isinstance(c, sympy.Mod) and c.args[1] == cols):
            lo_hi = _bounds(sympy.expand(c), indices)
            if lo_hi is None or lo_hi[0] < 0 or lo_hi[1] >= cols:
                raise _no_form(node, "its column index may leave the matrix")
        place = r * cols + c
    else:
        place = slots[0][0]
    place = sympy.expand(place.replace(sympy.Mod, lambda a, b: a - b * sympy.floor(a / b)))
    coeff = _affine(node, place, indices)
    if coeff.pop(None) != 0:
        raise _no_form(node, "its entries do not start at the first")
    used = [s for s, _ in scope if coeff.get(s, 0) != 0]
    step = 1
    for s in reversed(used):  # row-major: the last index steps by 1, each one by the rest
        if coeff[s] != step:
            raise _no_form(node, "its indices do not step through the entries in order")
        step *= int(indices[s])
    total = 1
    for _, sz in slots:
        total *= int(sz)
    if step != total:
        raise _no_form(node, "its indices do not reach every entry once")
    flat = F.reshape(T, (total,))
    return F.reshape(flat, tuple(int(indices[s]) for s in used)), used


def _gathered(node, T: Expr, slots: list, scope: tuple) -> Expr:
    """The entries of ``T`` at index formulas of integer arithmetic (``floor``, ``Mod``: what
    sympy writes for the entries of a product with a reshaped matrix), for sizes that are
    numbers: the formulas are evaluated at every value of the indices they use, and the
    entries picked by a constant 0/1 matrix times ``T``'s entries, in a row."""
    where = _index_values([sl for sl, _ in slots], scope)
    at = [] if where is None else [_as_index(values) for values in where[1]]
    if where is None or any(a is None for a in at) or not all(sz.is_Integer for _, sz in slots):
        raise _no_form(node, "its indices are not integer arithmetic on indices of numbers "
                             "of values")
    used = where[0]
    box = at[0].shape
    total = int(np.prod([int(sz) for _, sz in slots]))
    if int(np.prod(box, dtype=np.int64)) * total > GATHER_MAX:
        raise _no_form(node, f"gathering its entries takes a 0/1 matrix of more than "
                             f"{GATHER_MAX} entries")
    place = np.zeros(box, dtype=np.int64)
    for values, (_, sz) in zip(at, slots):
        if np.any(values < 0) or np.any(values >= int(sz)):
            raise _no_form(node, "its index leaves the matrix")
        place = place * int(sz) + values
    pick = np.zeros((place.size, total))
    pick[np.arange(place.size), place.reshape(-1)] = 1.0
    out = F.reshape(F.matmul(F.const(pick), F.reshape(T, (total,))), box)
    return _align(out, used, scope)


def _affine(node, e, indices: dict) -> dict:
    """{index: integer coefficient, None: the constant} of ``e``, a sum of integer multiples
    of the indices."""
    if e.free_symbols - set(indices) or e.has(sympy.floor, sympy.Mod):
        raise _no_form(node, f"its index {e} is not a sum of multiples of the indices")
    coeff: dict = {None: e.subs({s: 0 for s in indices})}
    for s in indices:
        coeff[s] = e.coeff(s)
    rest = e - sum((coeff[s] * s for s in indices), sympy.S.Zero) - coeff[None]
    if sympy.expand(rest) != 0 or not all(c.is_Integer for c in coeff.values()):
        raise _no_form(node, f"its index {e} is not a sum of multiples of the indices")
    return {k: int(c) for k, c in coeff.items()}


def _align(T: Expr, labels: list, scope: tuple) -> Expr:
    """``T``, whose axes belong to ``labels`` (indices of ``scope``), with its axes in the
    scope's order and an axis of 1 for every index it does not depend on."""
    order = [s for s, _ in scope]
    for s in labels:
        if s not in order:
            raise ValueError(f"from_sympy: no symgrad form for the free index {s}: an index "
                             "must belong to a Sum or a FunctionMatrix")
    perm = sorted(range(len(labels)), key=lambda a: order.index(labels[a]))
    if perm != list(range(len(labels))):
        T, labels = F.transpose(T, tuple(perm)), [labels[a] for a in perm]
    shape = tuple(T.shape[labels.index(s)] if s in labels else 1 for s in order)
    while shape and shape[0] == 1:  # leading axes of 1 are numpy's to add: v, not v as a row
        shape = shape[1:]
    return T if T.shape == shape else F.reshape(T, shape)


def _read_piecewise(node, by_name: dict, sizes: frozenset, scope: tuple) -> Expr:
    """``Piecewise((f, cond), ...)`` where one branch holds for every value of the indices
    (sympy's entry of ``A*DiagMatrix(v)``: ``Piecewise((A[i, j]*v[j, 0], (j >= 0) & (j <= 2)),
    (0, True))``): that branch. A choice that differs between entries is not read."""
    for branch, cond in node.args:
        holds = _holds(cond, scope)
        if holds is None:
            break
        if holds:
            return _read(branch, by_name, sizes, scope)
    raise _no_form(node, "its branch is not the same for every entry")


_COMPARISONS = ("GreaterThan", "StrictGreaterThan", "LessThan", "StrictLessThan")


def _holds(cond, scope: tuple):
    """Whether ``cond`` (comparisons of formulas of the indices, joined by & and |) is true
    for every value of the indices in their ranges (True), for none (False), or neither or
    not known (None)."""
    if cond in (sympy.true, sympy.false):
        return bool(cond)
    if isinstance(cond, (sympy.And, sympy.Or)):
        parts = [_holds(c, scope) for c in cond.args]
        if isinstance(cond, sympy.And):
            return False if False in parts else None if None in parts else True
        return True if True in parts else None if None in parts else False
    if type(cond).__name__ not in _COMPARISONS:
        return None
    d = sympy.expand(cond.lhs - cond.rhs)
    lo_hi = _bounds(d, {s: n for s, n in scope})
    if lo_hi is None:  # not a sum of multiples of the indices: its values, where countable
        where = _index_values([d], scope)
        if where is None:
            return None
        lo_hi = (sympy.Float(where[1][0].min()), sympy.Float(where[1][0].max()))
    lo, hi = lo_hi
    rel = type(cond)
    always, never = rel(lo, 0), rel(hi, 0)  # for >: the smallest value; for <: the largest
    if rel in (sympy.LessThan, sympy.StrictLessThan):
        always, never = rel(hi, 0), rel(lo, 0)
    if always == sympy.true:
        return True
    if never == sympy.false:
        return False
    return None


def _bounds(d, indices: dict):
    """(the smallest, the largest value) of ``d``, a sum of integer multiples of the indices
    (sizes may be symbolic), over their ranges; None for another formula."""
    sizes = {n for n in indices.values() if n.is_Symbol}
    if d.free_symbols - set(indices) - sizes:
        return None
    const = d.subs({s: 0 for s in indices})
    lo = hi = const
    for s in indices:
        a = d.coeff(s)
        if not a.is_Integer:
            return None
        span = a * (indices[s] - 1)
        lo, hi = (lo + span, hi) if a < 0 else (lo, hi + span)
    if sympy.expand(d - sum((d.coeff(s) * s for s in indices), sympy.S.Zero) - const) != 0:
        return None
    return lo, hi


def _read_delta(node, scope: tuple) -> Expr:
    """``KroneckerDelta(i, j)`` over two indices of one range: the identity matrix; with a
    constant ``KroneckerDelta(i, 2)``: the one-hot vector; both along their indices."""
    indices = {s: n for s, n in scope}
    a, b = node.args[:2]
    if a.is_Integer:
        a, b = b, a
    if a in indices and b in indices and sympy.simplify(indices[a] - indices[b]) == 0:
        return _align(F.eye((_dim(indices[a]),)), [a, b], scope)
    if a in indices and b.is_Integer and b >= 0 and not (indices[a].is_Integer and
                                                          b >= indices[a]):
        return _align(F.onehot(int(b), _dim(indices[a])), [a], scope)
    where = _index_values([a, b], scope)  # formulas of the indices: the 0/1 tensor
    if where is None:
        raise _no_form(node, "only a delta of indices of numbers of values, or of an index "
                             "and a number, is read")
    used, (at_a, at_b) = where
    return _align(F.const((at_a == at_b).astype(float)), used, scope)


# the most index values _index_values evaluates, and entries of the 0/1 matrix _gathered builds
GATHER_MAX = 10**6


def _index_values(exprs: list, scope: tuple):
    """(the indices ``exprs`` use, in the scope's order; each formula's values at every value
    of those indices, as arrays over them), where the formulas are arithmetic (+, *, floor,
    Mod) on indices of numbers of values, at most ``GATHER_MAX`` of them; else None."""
    indices = {s: n for s, n in scope}
    used = [s for s, _ in scope if any(e.has(s) for e in exprs)]
    if not all(indices[s].is_Integer for s in used):
        return None
    allowed = (sympy.Add, sympy.Mul, sympy.floor, sympy.Mod, sympy.Integer, sympy.Rational)
    for e in exprs:
        if not all(isinstance(a, allowed) or a in indices for a in sympy.preorder_traversal(e)):
            return None
    box = tuple(int(indices[s]) for s in used)
    if int(np.prod(box, dtype=np.int64)) > GATHER_MAX:
        return None
    grid = dict(zip(used, (g.astype(object) for g in np.meshgrid(
        *[np.arange(n) for n in box], indexing="ij"))))
    return used, [np.broadcast_to(np.asarray(_index_formula(e, grid), dtype=float), box)
                  for e in exprs]


def _index_formula(e, grid: dict):
    """The values of ``e`` (+, *, floor, Mod of numbers and indices) at ``grid``, the indices'
    values, computed exactly: Python ints and fractions (2*_i/3 is not an integer)."""
    if e in grid:
        return grid[e]
    if e.is_Number:
        return fractions.Fraction(int(e.p), int(e.q))
    vals = [_index_formula(a, grid) for a in e.args]
    if isinstance(e, sympy.Add):
        return functools.reduce(np.add, vals)
    if isinstance(e, sympy.Mul):
        return functools.reduce(np.multiply, vals)
    if isinstance(e, sympy.floor):
        return np.floor_divide(vals[0], 1)
    return np.mod(vals[0], vals[1])  # Mod: the only other kind _index_values lets through


def _as_index(values: np.ndarray):
    """Index values as integers, or None where one is not a whole number."""
    return values.astype(np.int64) if np.all(values == np.round(values)) else None


def _read_slice(node, X: Expr) -> Expr:
    """A row ``M[i, :]`` or a column ``M[:, j]`` of a matrix (take), or all of it."""
    rows, cols = node.parent.shape
    (r0, r1, rs), (c0, c1, cs) = node.rowslice, node.colslice

    def whole(a, b, s, n):
        return a == 0 and s == 1 and sympy.simplify(b - n) == 0

    def one(a, b, s):
        return a.is_Integer and s == 1 and b - a == 1

    if whole(r0, r1, rs, rows) and whole(c0, c1, cs, cols):
        return X
    if one(r0, r1, rs) and whole(c0, c1, cs, cols):
        return F.take(X, int(r0))
    if one(c0, c1, cs) and whole(r0, r1, rs, rows):
        return X if X.ndim == 1 else F.take(F.transpose(X), int(c0))
    raise _no_form(node, "only a whole row or column is read")


def _matrix_leaf(node) -> bool:
    """A matrix read whole, not from its arguments (its name or sizes)."""
    return isinstance(node, (sympy.MatrixSymbol, sympy.OneMatrix, sympy.ZeroMatrix,
                             sympy.Identity))


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


def _convert(node, special, done, by_name, sizes, scope=()):
    if special:
        kind, kids = special
        if kind == "index_sum":
            return _read_sum(node, by_name, sizes, scope)
        if kind == "function_matrix":
            return _read_function_matrix(node, by_name, sizes)
        if kind == "element":
            return _read_element(node, by_name, sizes, scope)
        if kind == "slice":
            return _read_slice(node, done[node.parent])
        if kind == "piecewise":
            return _read_piecewise(node, by_name, sizes, scope)
        if kind == "delta":
            return _read_delta(node, scope)
        (arg,) = kids
        if kind == "elementwise":  # the function's body, read with its variable as the matrix
            fn = node.function
            (d,) = fn.variables
            entry = sympy.Symbol(f"_entry_{id(node)}")  # a name no user symbol has
            return _read(fn.expr.xreplace({d: entry}), {**by_name, entry.name: done[arg]},
                         sizes)
        return getattr(F, kind)(done[arg])
    if node.is_Symbol or isinstance(node, sympy.MatrixSymbol):
        if any(node == s for s, _ in scope):
            raise ValueError(f"from_sympy: no symgrad form for the index {node} outside the "
                             "entries of a matrix (an index is not a value)")
        hit = by_name.get(node.name)
        if hit is not None:
            return hit
        if node.is_Symbol and node.name in sizes and node.is_integer:
            return F.dimsize(node.name)  # a size of a matrix here (a mean's n), not a variable
        if node.is_Symbol and (node.is_real is False or node.is_complex and not node.is_real):
            # (Symbol("z", complex=True) was read as a real scalar, its assumption dropped)
            what = "non-commutative" if node.is_commutative is False else \
                "infinite" if node.is_infinite else "complex"
            raise ValueError(f"from_sympy: symbol {node.name!r} is declared {what}, and "
                             "symgrad's variables are real (declare it real=True, or map it "
                             "in symbols=)")
        try:
            if isinstance(node, sympy.MatrixSymbol):
                r, c = node.shape
                if c == 1:  # how to_sympy writes a vector: a column
                    return F.vector(node.name, _dim(r))
                return F.matrix(node.name, (_dim(r), _dim(c)))
            return F.scalar(node.name)
        except ValueError as err:  # a name or a size symgrad cannot take
            raise ValueError(f"from_sympy: symbol {node.name!r}: "
                             f"{str(err).removeprefix('from_sympy: ')}") from None
    if node.is_Number or node in (sympy.pi, sympy.E):
        v = float(node)
        if (v in (0.0, math.inf, -math.inf)) and node.is_finite and not node.is_zero:
            # 10**400 became inf (and inf*x nan at x = 0), 1/10**400 became 0
            raise ValueError(f"from_sympy: the number {sympy.N(node, 4)} does not fit a "
                             "float")
        return F.const(v)
    if isinstance(node, (sympy.OneMatrix, sympy.ZeroMatrix)):  # to_sympy's broadcasts
        value = 1.0 if isinstance(node, sympy.OneMatrix) else 0.0
        return F.broadcast_to(F.const(value), tuple(_dim(d) for d in node.shape))
    if isinstance(node, sympy.Identity):  # I(1): sympy's product of 1 x 1 ones
        return F.eye((_dim(node.rows),))
    if any(a not in done for a in node.args):  # an atom with parts (Indexed, Idx, a unit)
        raise ValueError(f"from_sympy: no symgrad form for {node.func.__name__} ({node})")
    args = [done[a] for a in node.args]
    # matrix expressions first: sympy's MatMul is a Mul and its MatAdd an Add
    if isinstance(node, sympy.Transpose):  # of a row or a column: the same entries (reshape)
        return args[0] if 1 in node.arg.shape else F.transpose(args[0])
    if isinstance(node, sympy.HadamardProduct):
        return functools.reduce(F.mul, args)
    if isinstance(node, sympy.MatMul):
        return _read_matmul(node, args)
    if isinstance(node, sympy.DiagMatrix):  # M diag(v): a broadcast product, in sympy
        return F.diag(_as_vector(args[0]))
    if isinstance(node, sympy.DiagonalOf):  # (of a 1 x 1 matrix, read as a vector: itself)
        return args[0] if node.arg.shape == (1, 1) else F.diagonal(args[0])
    if isinstance(node, sympy.HadamardPower):
        return F.power(args[0], args[1])
    if isinstance(node, sympy.Trace):  # to_sympy's form of a scalar x^T A y: a 1 x 1 trace
        if node.arg.shape == (1, 1):
            return F.reshape(args[0], ())
        return F.trace(args[0])
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
        return _heaviside(node, args[0])
    fn = _funcs().get(node.func)
    if fn is not None:
        return fn(*args)
    raise ValueError(f"from_sympy: no symgrad form for {node.func.__name__} ({node})")


def _heaviside(node, x):
    """sympy's Heaviside(x, H0), whose value at 0 is H0 (1/2 unless given): symgrad's step is
    1[x > 0], so H0 = 0 is step(x), H0 = 1 is 1 - step(-x), and other numbers add H0 1[x = 0]."""
    h0 = node.args[1] if len(node.args) > 1 else sympy.S.Half
    if not h0.is_number:
        raise ValueError(f"from_sympy: {node}: the value at 0 must be a number")
    h0 = float(h0)
    if not math.isfinite(h0):  # h0 * 1[x = 0] would be nan everywhere (nan * 0)
        raise ValueError(f"from_sympy: {node}: the value at 0 must be a finite number")
    if h0 == 0.0:
        return F.step(x)
    if h0 == 1.0:
        return F.sub(1.0, F.step(F.neg(x)))
    at_zero = F.sub(F.sub(1.0, F.step(x)), F.step(F.neg(x)))  # 1[x = 0]
    return F.add(F.step(x), F.mul(h0, at_zero))


def _is_negative(s) -> bool:
    c, _ = s.as_coeff_Mul()
    return c.is_Number and c < 0


def _dim(d):
    if d.is_Integer:
        return int(d)
    if d.is_Symbol:
        return str(d)
    raise ValueError(f"from_sympy: no symgrad form for the size {d}: sizes are numbers or "
                     "names")
