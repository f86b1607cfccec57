"""Linear algebra and shape ops: matmul, outer, transpose, reshape, broadcast_to, diag, take."""

from __future__ import annotations

from .. import functions as F
from .._lazy import sympy
from ..errors import ShapeError
from ..expr import as_check_set
from ..shapes import Check, broadcast, fit_pairs, fmt_shape, not_bigger, same_dim, size_of
from .base import (
    P_ATOM,
    P_MUL,
    P_POW,
    Op,
    broadcast_code,
    jux,
    make_node,
    pad_batched,
    par,
    register,
    rule,
    shape_error,
)
from .leaves import tex_shape
from .reduce import SUM


def _swap_last(x):
    """x with its last two axes swapped (a matrix transpose that keeps leading axes)."""
    nd = x.ndim
    perm = tuple(range(nd - 2)) + (nd - 1, nd - 2)
    return F.transpose(x, perm)


def _is_matrix_transpose(e) -> bool:
    return e.op.name == "transpose" and e.ndim == 2


# Below this many entries a matrix product costs its call, not its arithmetic.
_WIDE_MIN = 2048


def wide_products(order, out_ids) -> set[int]:
    """The matrix products among the outputs (used by no other node) that have fewer rows than
    columns, each at least ``_WIDE_MIN`` entries: numpy computes them as ``(b.T @ a.T).T``.

    OpenBLAS, numpy's usual BLAS, is up to a third faster at a product with more rows than
    columns than at its transpose (the same arithmetic, other blocking: benchmarks/
    wide_products.py); a weight's gradient ``delta.T @ X`` is typically wide. The result is
    then a transposed (Fortran-ordered) array, which only an output can be without slowing a
    later elementwise op.
    """
    wide = {id(n) for n in order
            if n.op.name == "matmul" and id(n) in out_ids
            and n.ndim == 2 and n.args[0].ndim == 2 and n.args[1].ndim == 2
            and all(isinstance(d, int) for d in n.shape)
            and n.shape[0] < n.shape[1] and n.shape[0] * n.shape[1] >= _WIDE_MIN}
    if wide:  # (rare: the pass over every operand only then)
        wide -= {id(a) for n in order for a in n.args}
    return wide


def _transposed(code: str) -> str:
    return f"{code}.T" if code.isidentifier() else f"({code}).T"


class MatMul(Op):
    name = "matmul"
    nargs = 2

    def infer(self, args, attrs):
        a, b = args
        sa, sb = a.shape, b.shape
        if not sa or not sb:
            raise ShapeError(f"matmul: shapes {fmt_shape(sa)} and {fmt_shape(sb)}: "
                             "operands must have at least one axis (use * for scalars)")
        pa = (1,) + sa if len(sa) == 1 else sa
        pb = sb + (1,) if len(sb) == 1 else sb
        k, checks = _inner(pa[-1], pb[-2], sa, sb)
        batch, c2 = broadcast("matmul", [pa[:-2], pb[:-2]]) if (len(pa) > 2 or len(pb) > 2) \
            else ((), ())
        out = batch + ((pa[-2],) if len(sa) > 1 else ()) + ((pb[-1],) if len(sb) > 1 else ())
        return out, checks + c2

    def code(self, a, n, g):
        if id(n) in g.wide:  # see wide_products
            return f"({_transposed(a[1])} @ {_transposed(a[0])}).T"
        return f"{a[0]} @ {a[1]}"

    def sympy(self, a, n, ctx):
        return ctx.matmul(a[0], a[1], n)

    def vjp(self, n, ct, nb, wants):
        x, y = n.args
        gx = gy = None
        if x.ndim == 1 and y.ndim == 1:
            c = F.expand_dims(ct, -1) if nb else ct
            gx = F.mul(c, y) if wants[0] else None
            gy = F.mul(c, x) if wants[1] else None
            return [gx, gy]
        if wants[0]:
            if y.ndim == 1:  # (..., m, k) @ (k,) -> (..., m)
                gx = F.outer(ct, y)
            elif x.ndim == 1 and y.ndim > 2:  # (k,) @ (..., k, n): ct is (B..., ..., n)
                g = F.matmul(F.expand_dims(ct, -2), _swap_last(y))
                gx = F.reshape(g, g.shape[:-2] + g.shape[-1:])
            else:
                gx = F.matmul(ct, _swap_last(y))
            gx = F.unbroadcast(gx, nb, x.shape)
        if wants[1]:
            if x.ndim == 1:  # (k,) @ (..., k, n) -> (..., n)
                gy = F.outer(x, ct)
            elif y.ndim == 1:  # (..., m, k) @ (k,): ct is (B..., ..., m)
                if x.ndim == 2:
                    gy = F.matmul(ct, x)
                else:
                    g = F.matmul(F.expand_dims(ct, -2), x)
                    gy = F.reshape(g, g.shape[:-2] + g.shape[-1:])
            else:
                gy = F.matmul(_swap_last(x), ct)
            gy = F.unbroadcast(gy, nb, y.shape)
        return [gx, gy]

    def batch(self, n, args, batched):
        x, y = n.args  # the operands' shapes for one sample
        if x.ndim > 2 or y.ndim > 2:
            return None
        bx, by = args
        if batched[0] and batched[1]:
            if x.ndim == 1 and y.ndim == 1:  # one dot product per sample
                return F.sum(F.mul(bx, by), 1)
            if x.ndim == 1:  # (B, k) @ (B, k, n): one row times each matrix
                p = F.matmul(F.expand_dims(bx, 1), by)
                return F.reshape(p, p.shape[:1] + p.shape[2:])
            if y.ndim == 1:  # (B, m, k) @ (B, k): each matrix times one column
                p = F.matmul(bx, F.expand_dims(by, -1))
                return F.reshape(p, p.shape[:-1])
            return F.matmul(bx, by)
        if batched[1] and y.ndim == 1:  # x @ v for each row v of (B, k): (B, k) @ x^T
            return F.matmul(by, x if x.ndim == 1 else F.transpose(x))
        # numpy's matmul broadcasts a stack of matrices (or of rows) against the other
        return F.matmul(bx, by)

    def text(self, a, n):
        x, y = n.args
        if x.ndim == 1 and y.ndim == 2:
            # a row vector times a matrix, written for column vectors: y^T x
            if _is_matrix_transpose(y):
                return f"{jux(a[1])} {par(a[0], P_MUL, strict=True)}", P_MUL
            return f"{par(a[1], P_POW, strict=True)}^T {par(a[0], P_MUL, strict=True)}", P_MUL
        if x.ndim == 1 and y.ndim == 1:
            return f"{par(a[0], P_POW, strict=True)}^T {par(a[1], P_MUL, strict=True)}", P_MUL
        return f"{jux(a[0])} {par(a[1], P_MUL, strict=True)}", P_MUL

    def tex(self, a, n):
        x, y = n.args
        if x.ndim == 1 and y.ndim == 2:
            if _is_matrix_transpose(y):
                return f"{par(a[1], P_MUL, True)} {par(a[0], P_MUL, True, True)}", P_MUL
            return f"{par(a[1], P_POW, True, True)}^{{T}} {par(a[0], P_MUL, True, True)}", P_MUL
        if x.ndim == 1 and y.ndim == 1:
            return f"{par(a[0], P_POW, True, True)}^{{T}} {par(a[1], P_MUL, True, True)}", P_MUL
        return f"{par(a[0], P_MUL, True)} {par(a[1], P_MUL, True, True)}", P_MUL


def _inner(ka, kb, sa, sb):
    try:
        return same_dim("matmul", ka, kb, (sa, sb))
    except ShapeError:
        raise shape_error("matmul", sa, sb) from None


MATMUL = register(MatMul())


@rule(MATMUL)
def _matmul_rules(args, attrs, shape):
    x, y = args
    # identities from vectorised reverse mode: I @ A = A, A @ I = A
    if x.op.name == "eye" and len(x.attrs["dims"]) == 1 and y.shape == shape:
        return y
    if y.op.name == "eye" and len(y.attrs["dims"]) == 1 and x.shape == shape:
        return x
    # and with a number: (c I) @ A = c A (the Hessian of least squares, 2 X^T X, read 2 I X^T X)
    for s, o in ((x, y), (y, x)):
        if s.op.name == "mul" and o.shape == shape:
            c, e = s.args
            if c.ndim == 0 and c.op.name == "const" and e.op.name == "eye" \
                    and len(e.attrs["dims"]) == 1:
                return F.mul(c, o)
    if x.op.name == "neg":
        return F.neg(F.matmul(x.args[0], y))
    if y.op.name == "neg":
        return F.neg(F.matmul(x, y.args[0]))
    if F.is_const(x, 0.0) or F.is_const(y, 0.0):
        return F.zeros(shape)
    # a product with a scalar c's broadcast (sum(M @ v)'s derivative in v) is c times sums of
    # the other operand: not a float64 constant array, which would promote float32 work
    if x.ndim <= 2 and y.ndim <= 2:
        if _scalar_broadcast(x):  # 1 @ Y: Y's column sums, for each row of the result
            r = F.mul(x.args[0], F.sum(y, axis=0 if y.ndim == 2 else None))
            return F.broadcast_to(r, shape)
        if _scalar_broadcast(y):  # X @ 1: X's row sums, for each column of the result
            r = F.mul(y.args[0], F.sum(x, axis=-1 if x.ndim == 2 else None))
            if x.ndim == 2 and y.ndim == 2:
                r = F.reshape(r, (x.shape[0], 1))
            return F.broadcast_to(r, shape)
    return None


@rule(MATMUL, tensor_only=True)
def _fitted_identity(args, attrs, shape):
    """An identity fitted to sizes equal at run time only (k and n of a Hessian wrt w of (k,)
    through X of (m, n)): I @ A = A in the result's sizes, without the O(n^2 m) product. The
    fit_shape of the result checks the sizes the fitted identity did."""
    for e, o in args, args[::-1]:
        if e.op.name == "fit_shape" and e.args[0].op.name == "eye" and \
                len(e.args[0].attrs["dims"]) == 1 and o.ndim == 2 and \
                fit_pairs(o.shape, shape) is not None:
            return F.fit_shape(o, shape)
    return None


def _scalar_broadcast(e) -> bool:
    return e.op.name == "broadcast_to" and e.args[0].ndim == 0


class Outer(Op):
    """a[..., :, None] * b[..., None, :] (leading axes broadcast): the outer product a b^T."""

    name = "outer"
    nargs = 2
    leading_axes = True

    def infer(self, args, attrs):
        a, b = args
        if a.ndim < 1 or b.ndim < 1:
            raise shape_error("outer", a.shape, b.shape)
        batch, checks = broadcast("outer", [a.shape[:-1], b.shape[:-1]])
        return batch + (a.shape[-1], b.shape[-1]), checks

    def code(self, a, n, g):
        return f"{a[0]}[..., :, None] * {a[1]}[..., None, :]"

    def kernel(self, a, n, g):
        # one entry (i, j) inside a compiled loop, given a[i] and b[j] (see symgrad.fused)
        return f"{a[0]} * {a[1]}"

    def sympy(self, a, n, ctx):
        if n.ndim != 2:
            raise NotImplementedError("sympy has no form for a batch of outer products")
        return a[0] * ctx.transpose(a[1])

    def vjp(self, n, ct, nb, wants):
        x, y = n.args
        gx = F.unbroadcast(F.matmul(ct, y) if y.ndim == 1 else
                           F.reshape(F.matmul(ct, F.expand_dims(y, -1)), ct.shape[:-1]),
                           nb, x.shape) if wants[0] else None
        gy = F.unbroadcast(F.matmul(x, ct) if x.ndim == 1 else
                           F.reshape(F.matmul(F.expand_dims(x, -2), ct),
                                     ct.shape[:-2] + ct.shape[-1:]),
                           nb, y.shape) if wants[1] else None
        return [gx, gy]

    # a b^T only for two vectors: with leading axes (a row of outer products per sample) the
    # matrix product A v^T would mean something else, so the function is written out
    def text(self, a, n):
        if n.ndim != 2:
            return super().text(a, n)
        return f"{jux(a[0])} {par(transposed(a[1], False), P_MUL, strict=True)}", P_MUL

    def tex(self, a, n):
        if n.ndim != 2:
            return super().tex(a, n)
        return f"{par(a[0], P_MUL, True)} {par(transposed(a[1], True), P_MUL, True, True)}", P_MUL


OUTER = register(Outer())


@rule(OUTER)
def _outer_rules(args, attrs, shape):
    a, b = args
    if a.ndim != 1 or b.ndim != 1:
        return None
    # a scalar's broadcast times a vector (the derivative of sum(A @ v) in A): the vector scaled
    # and broadcast, not a float64 constant array that would promote float32 work
    if a.op.name == "broadcast_to" and a.args[0].ndim == 0:
        return F.broadcast_to(F.mul(a.args[0], b), shape)
    if b.op.name == "broadcast_to" and b.args[0].ndim == 0:
        return F.broadcast_to(F.reshape(F.mul(a, b.args[0]), (a.shape[0], 1)), shape)
    return None


class Transpose(Op):
    name = "transpose"
    attr_names = ("axes",)
    nargs = 1

    def infer(self, args, attrs):
        x = args[0]
        return tuple(x.shape[i] for i in attrs["axes"]), ()

    def code(self, a, n, g):
        if n.ndim == 2:
            return f"{a[0]}.T"
        return f"_xp.permute_dims({a[0]}, {n.attrs['axes']})"

    def sympy(self, a, n, ctx):
        return ctx.transpose(a[0])

    def vjp(self, n, ct, nb, wants):
        perm = n.attrs["axes"]
        inv = [0] * len(perm)
        for i, p in enumerate(perm):
            inv[p] = i
        return [F.transpose(ct, tuple(range(nb)) + tuple(nb + i for i in inv))]

    def batch(self, n, args, batched):
        return make_node(self, args, {"axes": (0,) + tuple(p + 1 for p in n.attrs["axes"])})

    def text(self, a, n):
        spread = _spread_text(n, a[0], latex=False)
        if spread is not None:
            return spread
        if n.ndim == 2:
            return transposed(a[0], latex=False)
        return f"transpose({a[0][0]}, {n.attrs['axes']})", P_ATOM

    def tex(self, a, n):
        spread = _spread_text(n, a[0], latex=True)
        if spread is not None:
            return spread
        if n.ndim == 2:
            return transposed(a[0], latex=True)
        return rf"\operatorname{{transpose}}\left({a[0][0]}, {n.attrs['axes']}\right)", P_ATOM


TRANSPOSE = register(Transpose())


@rule(TRANSPOSE)
def _transpose_rules(args, attrs, shape):
    (x,) = args
    perm = attrs["axes"]
    if perm == tuple(range(len(perm))):
        return x
    if x.op is TRANSPOSE:
        inner = x.attrs["axes"]
        return F.transpose(x.args[0], tuple(inner[p] for p in perm))
    if x.op.name == "neg":
        return F.neg(F.transpose(x.args[0], perm))
    if x.op is BROADCAST and x.args[0].ndim == 0:
        # every entry the same number: the broadcast to the new shape, which the rules of
        # sums, products and printing know (sum(transpose(c 1)) printed sum(c), and summed
        # the broadcast only at run time)
        return F.broadcast_to(x.args[0], shape)
    if x.op is MATMUL and x.ndim == 2 and x.args[0].ndim == 2 and x.args[1].ndim == 2 and (
            x.args[0].op is TRANSPOSE or x.args[1].op is TRANSPOSE):
        # (A B)^T = B^T A^T, taken when it cancels a transpose
        a, b = x.args
        return F.matmul(F.transpose(b), F.transpose(a))
    return None


def _same_size(sa, sb) -> bool:
    """Whether the shapes hold as many entries for every value of their symbolic sizes: the
    same named sizes, in the same order, and equal products of the numbers ((N, 2, 3) and
    (N, 6))."""
    def split(shape):
        return ([d for d in shape if isinstance(d, str)],
                size_of([d for d in shape if isinstance(d, int)]))

    return split(sa) == split(sb)


def _moves_sizes(sa, sb) -> bool:
    """Whether a reshape from ``sa`` to ``sb`` needs its sizes checked: not the same sizes
    (but for axes of 1), nor the same entries for every value of the named sizes."""
    return [d for d in sa if d != 1] != [d for d in sb if d != 1] and not _same_size(sa, sb)


def _reshapable(sa, sb) -> bool:
    """Whether ``reshape`` takes ``sa`` to ``sb`` (at once, or with a call-time check)."""
    return not _moves_sizes(sa, sb) or _size_that_fits(sa, sb) is not None


def _size_that_fits(sa, sb) -> Check | None:
    """The call-time check of a reshape between shapes with one symbolic size between them,
    which the numbers fix: (2,) to (1, m) needs m = 2, (n, 3) to (6,) needs n = 2, and (n, n)
    to (n, 2, 3), a Jacobian's, n = 6 (a size on both sides counts on neither). None where no
    value fits, or where the sizes do not fix it."""
    left, right = [d for d in sa if isinstance(d, str)], [d for d in sb if isinstance(d, str)]
    for d in list(left):
        if d in right:
            left.remove(d)
            right.remove(d)
    if len(left) + len(right) != 1:
        return None
    d = (left or right)[0]
    side, other = (sa, sb) if left else (sb, sa)
    known = size_of([k for k in side if isinstance(k, int)])
    total = size_of([k for k in other if isinstance(k, int)])
    if not known or total % known:
        return None
    return Check(d, total // known, "reshape", (tuple(sa), tuple(sb)))


class Reshape(Op):
    name = "reshape"
    attr_names = ("shape",)
    nargs = 1

    def infer(self, args, attrs):
        x, shape = args[0], attrs["shape"]
        if _moves_sizes(x.shape, shape):
            c = _size_that_fits(x.shape, shape)
            if c is None:
                raise ShapeError(f"reshape: cannot reshape {fmt_shape(x.shape)} to "
                                 f"{fmt_shape(shape)}")
            return shape, (c,)
        return shape, ()

    def code(self, a, n, g):
        return f"_xp.reshape({a[0]}, {g.shape(n.shape)})"

    def sympy(self, a, n, ctx):
        return ctx.reshape(a[0], n)

    def vjp(self, n, ct, nb, wants):
        # a product with a concrete operand may have fixed a symbolic size of this reshape's
        # result in the cotangent ((N, 12) times a (5, 12) constant): the same size in x's
        # shape is then that number too
        fixed = {d: c for d, c in zip(n.shape, ct.shape[nb:])
                 if isinstance(d, str) and isinstance(c, int)}
        shape = tuple(fixed.get(d, d) for d in n.args[0].shape)
        return [F.reshape(ct, ct.shape[:nb] + shape)]

    def batch(self, n, args, batched):
        return F.reshape(args[0], args[0].shape[:1] + n.shape)

    # A vector is a column in the text: reshaped to a column it prints as itself, reshaped to
    # a row as its transpose (an outer product reads v w^T, not v w); a reshape that only adds
    # or drops axes of size 1 prints its operand; one that moves entries says so
    # (reshape(A, (3, 2)) B, where "A B" read as a product of shapes that do not fit).
    def text(self, a, n):
        if _vector_to_row(n) or _row_to_vector(n):
            return transposed(a[0], latex=False)
        if _moves_entries(n) or _realigns(n):
            return f"reshape({a[0][0]}, {fmt_shape(n.shape)})", P_ATOM
        return a[0][0], a[0][1]

    def tex(self, a, n):
        if _vector_to_row(n) or _row_to_vector(n):
            return transposed(a[0], latex=True)
        if _moves_entries(n) or _realigns(n):
            return rf"\operatorname{{reshape}}\left({a[0][0]}, {tex_shape(n.shape)}\right)", P_ATOM
        return a[0]


class _Transposed(tuple):
    """A printed ``s^T`` that remembers ``s``: transposed again, it is ``s`` (``c r`` for the
    column c times the row r, built as the outer product of c and r read as a vector)."""

    inner: tuple[str, int]


def transposed(s: tuple[str, int], latex: bool) -> tuple[str, int]:
    """``s^T``: the text printed ``s`` transposed (a matrix, or a vector made a row)."""
    if isinstance(s, _Transposed):
        return s.inner
    if latex:
        t = _Transposed((f"{par(s, P_POW, True, True)}^{{T}}", P_POW))
    else:
        t = _Transposed((f"{par(s, P_POW, strict=True)}^T", P_POW))
    t.inner = s
    return t


def _vector_to_row(n) -> bool:
    return n.ndim == 2 and n.shape[0] == 1 and n.args[0].ndim == 1


def _row_to_vector(n) -> bool:
    """A row (1, k) read as a vector: a column in the text, the row transposed."""
    return n.ndim == 1 and n.args[0].ndim == 2 and n.args[0].shape[0] == 1


def _moves_entries(n) -> bool:
    """Whether a reshape does more than add or drop axes of size 1 (a fit_shape never does:
    (2,) as (m, 1) is a column)."""
    return n.op is not FIT_SHAPE and \
        [d for d in n.shape if d != 1] != [d for d in n.args[0].shape if d != 1]


def _realigns(n) -> bool:
    """Whether a reshape of tensors (3 axes or more) adds or drops axes of size 1 other than
    leading ones: numpy's broadcasting, which aligns trailing axes, would read its operand
    otherwise (reshape(I, (3, 1, 3)) printed as I, next to a (5, 3) operand). Vectors and
    matrices keep the column convention: (k,) and (k, 1) print alike."""
    if max(n.ndim, n.args[0].ndim) <= 2:
        return False

    def core(shape):
        i = 0
        while i < len(shape) and shape[i] == 1:
            i += 1
        return tuple(shape[i:])

    return core(n.shape) != core(n.args[0].shape)


RESHAPE = register(Reshape())


@rule(RESHAPE)
def _reshape_rules(args, attrs, shape):
    (x,) = args
    if x.shape == shape:
        return x
    if x.op is RESHAPE and _reshapable(x.args[0].shape, shape):
        # (not where sizes that cancel in each reshape would not in one: (n, n) to (n, 2, 3)
        # to (6, 6) is two reshapes each with one size to check, n = 6, but (n, n) to (6, 6)
        # has n twice)
        return F.reshape(x.args[0], shape)
    if x.ndim == 0:  # a scalar reshaped to ones is a broadcast
        return F.broadcast_to(x, shape)
    if x.op.name == "broadcast_to" and x.args[0].ndim == 0:
        return F.broadcast_to(x.args[0], shape)
    if x.op.name == "neg":
        return F.neg(F.reshape(x.args[0], shape))
    return None


class FitShape(Reshape):
    """``x`` in a shape that differs from its own only in sizes the graph checks equal at run
    time: (2,) as (m,), (m, n) as (n, n), with axes of 1 added or dropped. The reverse pass
    gives each cotangent its node's shape with it (``w @ v``, w of shape (n,) and v of (m,),
    gives w the cotangent v, which must have w's shape). Unlike ``reshape`` it never moves
    entries: (N, 6) as (6, M) means N = 6 and M = 6, where a reshape means N = M."""

    name = "fit_shape"

    def infer(self, args, attrs):
        x, shape = args[0], attrs["shape"]
        pairs = fit_pairs(x.shape, shape)
        if pairs is None:
            raise ShapeError(f"fit_shape: sizes {fmt_shape(x.shape)} and {fmt_shape(shape)} "
                             "do not pair up")
        return shape, tuple(Check(p, q, "derivative", (x.shape, shape)) for p, q in pairs)

    def vjp(self, n, ct, nb, wants):
        return [F.fit_shape(ct, ct.shape[:nb] + n.args[0].shape)]

    def batch(self, n, args, batched):
        return F.fit_shape(args[0], args[0].shape[:1] + n.shape)

    def sympy(self, a, n, ctx):
        return ctx.fit_shape(a[0], n)


FIT_SHAPE = register(FitShape())


@rule(FIT_SHAPE)
def _fit_shape_rules(args, attrs, shape):
    return args[0] if args[0].shape == shape else None


class Guard(Op):
    """``x`` itself, with size checks left for call time that ``x``'s own graph lacks.

    A rewrite can drop the node that needed a check: ``diag(v) @ u`` with ``v`` of size n and
    ``u`` of (1,) becomes ``v * u``, which broadcasts for any n where the product needed n = 1.
    :func:`symgrad.expr.make` then wraps the result in a guard holding the dropped checks, so a
    call with sizes that do not fit still fails, naming the op the user wrote. It computes
    nothing, prints as ``x`` and passes derivatives through.
    """

    name = "guard"
    nargs = 1
    attr_names = ("checks",)

    def infer(self, args, attrs):
        return args[0].shape, attrs["checks"]

    def code(self, a, n, g):
        return a[0]

    math = kernel = code

    def sympy(self, a, n, ctx):
        return a[0]

    def vjp(self, n, ct, nb, wants):
        return [ct]

    def batch(self, n, args, batched):
        return make_node(self, args, n.attrs)

    def text(self, a, n):
        return a[0]

    tex = text


GUARD = register(Guard())


@rule(GUARD)
def _guard_rules(args, attrs, shape):
    # nothing to add: the operand's graph already checks all of it
    have = as_check_set(args[0].checks)
    return args[0] if have and all(c in have for c in attrs["checks"]) else None


class BroadcastTo(Op):
    name = "broadcast_to"
    attr_names = ("shape",)
    nargs = 1

    def infer(self, args, attrs):
        x, shape = args[0], attrs["shape"]
        out, checks = broadcast("broadcast_to", [x.shape, shape])
        if len(out) != len(shape) or any(isinstance(o, int) and isinstance(s, int) and o != s
                                          for o, s in zip(out, shape)):
            raise ShapeError(f"broadcast_to: cannot broadcast {fmt_shape(x.shape)} to "
                             f"{fmt_shape(shape)}")
        # a named size brought to a 1 must be 1 (broadcasting only ever widens a 1)
        lead = len(shape) - x.ndim
        ones = tuple(Check(d, 1, "broadcast_to", (x.shape, tuple(shape)))
                     for d, s in zip(x.shape, shape[lead:]) if isinstance(d, str) and s == 1)
        return tuple(shape), checks + ones

    def code(self, a, n, g):
        return broadcast_code(a[0], n.args[0], n.shape, g)

    def sympy(self, a, n, ctx):
        return ctx.broadcast(a[0], n)

    def vjp(self, n, ct, nb, wants):
        return [F.unbroadcast(ct, nb, n.args[0].shape)]

    def batch(self, n, args, batched):
        (x,) = pad_batched(args, batched, n.ndim)
        return F.broadcast_to(x, x.shape[:1] + n.shape)

    # A broadcast prints as its operand (numpy's broadcasting reads it back), except a column
    # spread along columns, which a bare operand would spread along the rows: it reads v 1^T.
    def text(self, a, n):
        if _vector_to_row(n):  # (k,) as (1, k) is a row, as a reshape prints it
            return transposed(a[0], latex=False)
        return _spread_text(n, a[0], latex=False) or a[0]

    def tex(self, a, n):
        if _vector_to_row(n):
            return transposed(a[0], latex=True)
        return _spread_text(n, a[0], latex=True) or a[0]


BROADCAST = register(BroadcastTo())


def _spread_text(n, s: tuple[str, int], latex: bool) -> tuple[str, int] | None:
    """``v 1^T`` for a matrix ``n`` whose columns are all the vector printed ``s``: a column
    spread along the columns (``broadcast_to(v[:, None], (k, m))``) or a row broadcast
    transposed (``broadcast_to(v, (m, k))^T``). Printed as its operand (``v``, or ``v^T``
    transposed), a numpy reader would spread it along the wrong axis. ``None`` for other
    nodes. The transpose of a broadcast scalar prints as the scalar."""
    if n.ndim != 2 or n.shape[1] == 1:
        return None
    if n.op is BROADCAST:
        x = n.args[0]
        if x.ndim != 2 or x.shape[1] != 1:
            return None
    elif n.op is TRANSPOSE and n.args[0].op is BROADCAST and n.args[0].name is None:
        x = n.args[0].args[0]
        if x.ndim == 0:
            return s
        if x.ndim == 2 and x.shape[0] == 1:  # a row (1, k): s is the row's text, v^T
            return spread_along_columns(transposed(s, latex), latex)
        if x.ndim != 1:
            return None
    else:
        return None
    return spread_along_columns(s, latex)


def spread_along_columns(s: tuple[str, int], latex: bool) -> tuple[str, int]:
    """``v 1^T``: the vector printed ``s`` as every column of a matrix."""
    if latex:
        return rf"{par(s, P_MUL, latex=True)} \mathbf{{1}}^{{T}}", P_MUL
    return f"{jux(s)} 1^T", P_MUL


@rule(BROADCAST)
def _broadcast_rules(args, attrs, shape):
    (x,) = args
    if x.shape == shape:
        return x
    if x.op is BROADCAST:
        return F.broadcast_to(x.args[0], shape)
    return None


class Diag(Op):
    """The diagonal matrix of a vector (leading axes batch): diag(v)."""

    name = "diag"
    nargs = 1
    leading_axes = True

    def infer(self, args, attrs):
        v = args[0]
        if v.ndim < 1:
            raise ShapeError(f"diag: needs a vector, got shape {fmt_shape(v.shape)}")
        return v.shape + v.shape[-1:], ()

    def code(self, a, n, g):
        return f"_rt.diag(_xp, {a[0]})"

    def sympy(self, a, n, ctx):
        return ctx.diag(a[0], n)

    def vjp(self, n, ct, nb, wants):
        return [F.diagonal(ct)]

    def text(self, a, n):
        return f"diag({a[0][0]})", P_ATOM

    def tex(self, a, n):
        return rf"\operatorname{{diag}}\left({a[0][0]}\right)", P_ATOM


class Diagonal(Op):
    """The diagonal of the last two axes."""

    name = "diagonal"
    nargs = 1
    leading_axes = True

    def infer(self, args, attrs):
        m = args[0]
        if m.ndim < 2:
            raise ShapeError(f"diagonal: needs a matrix, got shape {fmt_shape(m.shape)}")
        d, checks = same_dim("diagonal", m.shape[-2], m.shape[-1], (m.shape,))
        return m.shape[:-2] + (d,), checks

    def code(self, a, n, g):
        return f"_rt.diagonal(_xp, {a[0]})"

    def sympy(self, a, n, ctx):
        return ctx.diagonal(a[0], n)

    def vjp(self, n, ct, nb, wants):
        return [F.diag(ct)]


DIAG = register(Diag())
DIAGONAL = register(Diagonal())


class Take(Op):
    """Row ``i`` of ``M``: differentiable in M, not in the index."""

    name = "take"
    nargs = 2
    nondiff = (1,)

    def infer(self, args, attrs):
        M, i = args
        if M.ndim < 1:
            raise ShapeError(f"take: needs at least one axis, got shape {fmt_shape(M.shape)}")
        if i.ndim != 0:
            raise ShapeError(f"take: the index must be a scalar, got shape {fmt_shape(i.shape)}")
        return M.shape[1:], ()

    def code(self, a, n, g):
        return f"_rt.take(_xp, {a[0]}, {a[1]})"

    def sympy(self, a, n, ctx):
        return ctx.take(a[0], n)

    def vjp(self, n, ct, nb, wants):
        self.check_diff(n, wants)
        M, i = n.args
        oh = F.onehot(i, M.shape[0], like=M)  # M's gradient in M's dtype
        oh = F.reshape(oh, (M.shape[0],) + (1,) * (M.ndim - 1))
        return [F.mul(F.expand_dims(ct, nb), oh), None]

    def batch(self, n, args, batched):
        if batched[1]:
            return None  # an index per sample: computed sample by sample
        M = args[0]  # (B, rows, ...): row i of each sample is row i of M with B second
        return F.take(F.transpose(M, (1, 0) + tuple(range(2, M.ndim))), args[1])

    def text(self, a, n):
        return f"{par(a[0], P_ATOM)}[{a[1][0]}]", P_ATOM

    def tex(self, a, n):
        return f"{par(a[0], P_ATOM, True)}_{{{a[1][0]}}}", P_ATOM


class OneHot(Op):
    """A length-n vector with 1 at index i (the derivative of take, scattered back).

    An optional second operand lends its dtype: take's derivative passes the matrix it takes
    from, so a float32 matrix gets a float32 gradient (a float64 one-hot would promote it).
    Its derivative is zero by construction (``zero_grad``): only its dtype is read.
    """

    name = "onehot"
    attr_names = ("n",)
    nargs = None  # (i,) or (i, like)
    nondiff = (0,)
    zero_grad = (1,)

    def infer(self, args, attrs):
        if not 1 <= len(args) <= 2:
            raise ValueError(f"onehot takes 1 or 2 operands, got {len(args)}")
        return (attrs["n"],), ()

    def code(self, a, n, g):
        like = f", {a[1]}" if len(a) > 1 else ""
        return f"_rt.onehot(_xp, {a[0]}, {g.dim(n.attrs['n'])}{like})"

    def vjp(self, n, ct, nb, wants):
        self.check_diff(n, wants)
        return [None] * len(n.args)

    def batch(self, n, args, batched):
        if batched[0]:
            return None  # an index per sample: computed sample by sample
        # only the dtype-lending operand has samples: the same vector for each of them
        like = args[1]
        return F.broadcast_to(F.onehot(args[0], n.attrs["n"], like=like), like.shape[:1] + n.shape)

    def text(self, a, n):
        return f"e_{a[0][0]}", P_ATOM

    def tex(self, a, n):
        return f"e_{{{a[0][0]}}}", P_ATOM


TAKE = register(Take())
ONEHOT = register(OneHot())

_ = sympy  # sympy forms go through the context (symgrad.sympy_bridge)


# ---------------------------------------------------------------------------- matrix forms
# Build-time rules that keep derivatives in matrix form: the identity tensors and diag(v)
# that vectorised reverse mode introduces become elementwise scalings (O(n^2) instead of an
# O(n^3) product), row vectors become column vectors (v^T M is written M^T v), scalar factors
# come out of products, and outer products are never multiplied out.


@rule(MATMUL)
def _matmul_matrix_forms(args, attrs, shape):
    x, y = args
    if x.ndim == 1 and y.ndim == 2:
        return F.matmul(F.transpose(y), x)  # v^T M -> M^T v (column vectors throughout)
    if x.op is DIAG and x.args[0].ndim == 1:  # diag(v) M -> v[:, None] ⊙ M
        v = x.args[0]
        return F.mul(F.expand_dims(v, -1), y) if y.ndim >= 2 else F.mul(v, y)
    if y.op is DIAG and y.args[0].ndim == 1:  # M diag(v) -> M ⊙ v
        return F.mul(x, y.args[0])
    for i, m in enumerate(args):
        # (s A) B -> s (A B) for a scalar s, when that scales fewer entries
        if m.op.name == "mul" and not_bigger(shape, m.shape):
            for s, a in (m.args, m.args[::-1]):
                if s.ndim == 0 and a.shape == m.shape:
                    return F.mul(s, F.matmul(a, y) if i == 0 else F.matmul(x, a))
    if x.op is OUTER and x.ndim == 2 and x.args[1].ndim == 1:
        a, b = x.args
        if y.ndim == 1:  # (a b^T) v = a (b^T v)
            return F.mul(a, F.matmul(b, y))
        if y.ndim == 2:  # (a b^T) B = a (B^T b)^T
            return F.outer(a, F.matmul(F.transpose(y), b))
    if y.op is OUTER and y.ndim == 2 and x.ndim == 2 and y.args[0].ndim == 1:
        a, b = y.args  # A (a b^T) = (A a) b^T
        return F.outer(F.matmul(x, a), b)
    return None


@rule(TRANSPOSE)
def _transpose_matrix_forms(args, attrs, shape):
    (x,) = args
    if len(shape) != 2:
        return None
    if x.op is DIAG or x.op.name == "eye":  # symmetric
        return x
    if x.op is OUTER and x.args[0].ndim == 1 and x.args[1].ndim == 1:
        return F.outer(x.args[1], x.args[0])  # (a b^T)^T = b a^T
    return None


@rule(DIAG)
def _diag_rules(args, attrs, shape):
    (v,) = args
    if v.ndim != 1:
        return None
    if v.op is BROADCAST and v.args[0].ndim == 0:  # diag(c 1) = c I
        c = v.args[0]
        return F.eye(v.shape) if F.is_const(c, 1.0) else F.mul(c, F.eye(v.shape))
    if v.op.name == "neg":
        return F.neg(F.diag(v.args[0]))
    return None


@rule(DIAGONAL)
def _diagonal_rules(args, attrs, shape):
    (m,) = args
    if m.op.name == "broadcast_to" and m.args[0].ndim == 0:
        # a scalar's broadcast, not a float64 constant array (that would promote float32 work)
        return F.broadcast_to(m.args[0], shape)
    if m.ndim != 2:
        return None
    if m.op is DIAG:
        return m.args[0]
    if m.op.name == "eye":
        return F.ones(shape)
    if m.op is OUTER and m.args[0].ndim == 1 and m.args[1].ndim == 1:
        return F.mul(m.args[0], m.args[1])  # the diagonal of a b^T is a ⊙ b
    if m.op is TRANSPOSE:
        return F.diagonal(m.args[0])
    if m.op.name == "neg":
        return F.neg(F.diagonal(m.args[0]))
    return None


@rule(SUM)
def _sum_of_matrix_forms(args, attrs, shape):
    """Sums of diag(v), I, onehot and outer products, without building them."""
    (x,) = args
    axes = attrs["axis"]
    if x.op is DIAG and x.ndim == 2:
        v = x.args[0]
        return F.reshape(v if len(axes) == 1 else F.sum(v), shape)
    if x.op.name == "eye" and x.ndim == 2:
        if len(axes) == 1:
            return F.ones(shape)
        return F.broadcast_to(F.dimsize(x.shape[0]), shape)
    if x.op is ONEHOT:
        return F.ones(shape)
    if x.op is OUTER and x.ndim == 2 and x.args[0].ndim == 1 and len(axes) == 1:
        a, b = x.args
        r = F.mul(F.sum(a), b) if axes == (0,) else F.mul(a, F.sum(b))
        return F.reshape(r, shape)
    return None


@rule(RESHAPE)
def _reshape_keepdims_sum(args, attrs, shape):
    """A sum with kept axes, reshaped to drop them, is the plain sum."""
    (x,) = args
    if x.op is SUM and x.attrs["keepdims"]:
        inner, axes = x.args[0], x.attrs["axis"]
        if tuple(d for i, d in enumerate(inner.shape) if i not in axes) == shape:
            return F.sum(inner, axes)
    return None
