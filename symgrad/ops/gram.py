"""The weighted Gram matrix ``X^T diag(d) X``, and the sign analysis that picks its lowering.

Every Hessian of a sum of per-sample losses of linear predictions, ``sum(l(X w))``, is
``X^T diag(l'') X``. Vectorised reverse mode builds it as ``(X^T ⊙ d) X``; a build-time rule
turns that product into one ``gram`` node, which prints as ``X^T diag(d) X`` and lowers to the
fastest numpy form: where ``d`` is provably non-negative, ``Z^T Z`` with ``Z = sqrt(d) X``,
which numpy hands to BLAS as one symmetric rank-k update (about half the work of a general
product); elsewhere the closed form ``X^T (d[:, None] X)``.
"""

from __future__ import annotations

import numpy as np

from .. import functions as F
from ..errors import ShapeError
from ..shapes import fmt_shape, same_dim
from .base import P_MUL, P_POW, Op, par, register, rule
from .linalg import MATMUL, TRANSPOSE, _swap_last


class Gram(Op):
    """``X^T diag(d) X`` for a matrix X of shape (m, n) and a vector d of shape (m,)."""

    name = "gram"
    nargs = 2

    def infer(self, args, attrs):
        if len(args) != 2:
            raise ValueError(f"gram takes 2 operands, got {len(args)}")
        X, d = args
        if X.ndim != 2 or d.ndim != 1:
            raise ShapeError(f"gram: shapes {fmt_shape(X.shape)} and {fmt_shape(d.shape)}: "
                             "needs a matrix (m, n) and a vector (m,)")
        try:
            _, checks = same_dim("gram", X.shape[0], d.shape[0], (X.shape, d.shape))
        except ShapeError:
            raise ShapeError(f"gram: shapes {fmt_shape(X.shape)} and {fmt_shape(d.shape)} do "
                             "not fit (the vector needs one entry per row)") from None
        return (X.shape[1], X.shape[1]), checks

    def code(self, a, n, g):
        X, d = a
        if nonneg(n.args[1]):
            # Z^T Z on one buffer: numpy calls BLAS syrk (a symmetric rank-k update)
            return f"(_z := {X} * _xp.sqrt({d})[:, None]).T @ _z"
        return f"{X}.T @ ({d}[:, None] * {X})"

    def sympy(self, a, n, ctx):
        from sympy import Transpose
        from sympy.matrices.expressions.diagonal import DiagMatrix

        X, d = a
        return Transpose(X) * DiagMatrix(d) * X

    def vjp(self, n, ct, nb, wants):
        # d(X^T D X) = dX^T D X + X^T D dX + X^T diag(dd) X; ct has nb batch axes + (n, n)
        X, d = n.args
        gX = gd = None
        if wants[0]:
            sym = F.add(ct, _swap_last(ct))
            gX = F.mul(F.expand_dims(d, -1), F.matmul(X, sym))
        if wants[1]:
            gd = F.sum(F.mul(F.matmul(X, ct), X), -1)
        return [gX, gd]

    def batch(self, n, args, batched):
        X, d = args  # X^T (d[:, None] X) for each sample: leading axes broadcast in matmul
        return F.matmul(_swap_last(X), F.mul(F.expand_dims(d, -1), X))

    def text(self, a, n):
        X, d = a
        return f"{par(X, P_POW, strict=True)}^T diag({d[0]}) {par(X, P_MUL, strict=True)}", P_MUL

    def tex(self, a, n):
        X, d = a
        x1, x2 = par(X, P_POW, True, True), par(X, P_MUL, True, True)
        return rf"{x1}^{{T}} \operatorname{{diag}}\left({d[0]}\right) {x2}", P_MUL


GRAM = register(Gram())


# ---------------------------------------------------------------------------- sign analysis
_NONNEG = {"exp", "sigmoid", "softplus", "relu", "abs", "sqrt", "step", "softmax", "eye",
           "onehot", "dimsize"}
_SAME_SIGN = {"transpose", "reshape", "broadcast_to", "sum", "diag", "diagonal", "alias",
              "stop_gradient"}


def nonneg(e, depth: int = 0) -> bool:
    """Whether every entry of ``e`` is provably >= 0 (or NaN): a conservative analysis.

    Knows the functions with non-negative values, sigmoid's and tanh's local derivatives, even
    powers, sums and quotients of non-negatives, and products in which every factor that is
    not known to be non-negative appears an even number of times (``y ⊙ s ⊙ y``).
    """
    if depth > 60:
        return False
    op = e.op.name
    if op == "const":
        return bool(np.all(np.asarray(e.attrs["value"]) >= 0))
    if op in _NONNEG:
        return True
    if op == "sigmoid_deriv":  # s (1 - s) >= 0 for s in [0, 1]
        return e.args[0].op.name == "sigmoid"
    if op == "tanh_deriv":  # 1 - t^2 >= 0 for t in [-1, 1]
        return e.args[0].op.name == "tanh"
    if op in _SAME_SIGN:
        return nonneg(e.args[0], depth + 1)
    if op in ("add", "div", "outer", "minimum"):
        return all(nonneg(a, depth + 1) for a in e.args)
    if op == "maximum":
        return any(nonneg(a, depth + 1) for a in e.args)
    if op == "pow":
        c = F.value_of(e.args[1])
        even = c is not None and np.ndim(c) == 0 and float(c) % 2 == 0
        return even or nonneg(e.args[0], depth + 1)
    if op == "mul":
        counts: dict[int, list] = {}
        stack = [e]
        while stack:
            m = stack.pop()
            if m.op.name == "mul":
                stack.extend(m.args)
            else:
                counts.setdefault(id(m), [m, 0])[1] += 1
        return all(k % 2 == 0 or nonneg(f, depth + 1) for f, k in counts.values())
    return False


# ---------------------------------------------------------------------------- rules
def _scaled_transpose(e):
    """(X, d) when ``e`` is X^T ⊙ d with d of shape (m,) for X of shape (m, n), else None."""
    if e.op.name != "mul" or e.ndim != 2:
        return None
    for t, d in (e.args, e.args[::-1]):
        if t.op is TRANSPOSE and t.ndim == 2 and d.shape == (t.shape[1],):
            return t.args[0], d
    return None


@rule(MATMUL)
def _matmul_to_gram(args, attrs, shape):
    """(X^T ⊙ d) X and X^T (d[:, None] ⊙ X) -> gram(X, d)."""
    L, R = args
    if L.ndim != 2 or R.ndim != 2:
        return None
    hit = _scaled_transpose(L)
    if hit is not None and hit[0] is R:
        return F.gram(R, hit[1])
    if L.op is TRANSPOSE and R.op.name == "mul":
        X = L.args[0]
        for c, M in (R.args, R.args[::-1]):
            if M is X and c.shape == (X.shape[0], 1):
                return F.gram(X, F.reshape(c, (X.shape[0],)))
    return None


@rule(TRANSPOSE)
def _transpose_gram(args, attrs, shape):
    (x,) = args
    return x if x.op is GRAM else None  # symmetric
