"""Reverse mode over the DAG: gradients, Jacobians and Hessians as new graphs.

One pass (:func:`reverse`) walks the nodes in reverse topological order, asks each op's ``vjp``
rule for its operands' cotangents (built from symgrad ops, reusing the forward nodes), and sums
the cotangents of a node over its uses. Cotangents may carry leading batch axes: seeding them
with the identity gives a whole Jacobian in one pass (vectorised reverse mode), so a Hessian is
one matrix expression, not a loop over rows.
"""

from __future__ import annotations

import weakref

from . import functions as F
from .errors import NonDifferentiableError
from .expr import Expr
from .graph import as_list, topo_order
from .rewrite import stabilize
from .shapes import fmt_shape

# derivative -> (kind, f, wrt): where each result of grad/jacobian/hessian came from, so that
# sg.explain can re-derive it and sg.draw can tell the forward nodes from those the pass added
_ORIGIN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _record(kind: str, outs: list, f: Expr, wrts: list) -> None:
    for g, w in zip(outs, wrts):
        _ORIGIN[g] = (kind, f, w)


def origin(e: Expr) -> tuple | None:
    """``(kind, f, wrt)`` if ``e`` was returned by ``grad``, ``jacobian`` or ``hessian``, else None.

    ``kind`` is the function's name, ``f`` the expression differentiated and ``wrt`` the variable
    (a pair of variables for a Hessian block). Hash-consing makes an equal node built elsewhere
    the same object, so the record describes the latest derivation that returned this node.
    """
    return _ORIGIN.get(e)


def _describe(n: Expr) -> str:
    if n.op.name == "var":
        return n.attrs["vname"]
    return n.name or n.op.name


def _path(start: Expr, dep: set, targets: set) -> list[Expr]:
    """A path from ``start`` down to one of the ``targets`` through nodes in ``dep``."""
    path = [start]
    n = start
    while id(n) not in targets:
        nxt = [a for a in n.args if id(a) in dep]
        if not nxt:
            break
        n = nxt[0]
        path.append(n)
    return path


def _wrt_name(path: list[Expr], ws: list[Expr]) -> str:
    last = path[-1]
    return _describe(last) if any(last is w for w in ws) else "the variable"


def reverse(f: Expr, seed: Expr, ws: list[Expr]) -> list[Expr]:
    """Cotangents of ``ws`` for the cotangent ``seed`` of ``f`` (seed: batch axes + f.shape)."""
    if all(w.op.leaf for w in ws):
        (f,) = stabilize([f])
    order = topo_order([f])
    wset = {id(w) for w in ws}
    dep: set[int] = set()
    for n in order:
        if id(n) in wset or (not n.op.blocks_gradient and any(id(a) in dep for a in n.args)):
            dep.add(id(n))
    nb = seed.ndim - f.ndim
    adj: dict[int, Expr] = {id(f): seed} if id(f) in dep else {}
    for n in reversed(order):
        ct = adj.get(id(n))
        if ct is None or n.op.leaf:
            continue
        wants = [id(a) in dep for a in n.args]
        if not any(wants):
            continue
        try:
            cts = n.op.vjp(n, ct, nb, wants)
        except NonDifferentiableError as err:
            bad = next((a for i, a in enumerate(n.args) if i in n.op.nondiff and id(a) in dep),
                       n.args[0])
            path = _path(bad, dep, wset)
            route = " -> ".join(_describe(p) for p in reversed(path + [])) + f" -> {n.op.name}"
            var = _wrt_name(path, ws)
            raise NonDifferentiableError(
                f"{err} ({n.op.name} is not differentiable there): the derivative with respect "
                f"to {var} passes through it along {route}. Wrap that path in sg.stop_gradient "
                "if it should count as constant.") from None
        for a, want, c in zip(n.args, wants, cts):
            if c is None or not want:
                continue
            target = a
            if isinstance(c, tuple):
                target, c = c
            prev = adj.get(id(target))
            adj[id(target)] = c if prev is None else F.add(prev, c)
    out = []
    batch = seed.shape[:nb]
    for w in ws:
        g = adj.get(id(w))
        if g is None:
            g = F.zeros(batch + w.shape)
        out.append(g)
    return out


def _check_wrt(ws: list[Expr], what: str) -> None:
    for w in ws:
        if not isinstance(w, Expr):
            raise TypeError(f"{what}: cannot differentiate with respect to {w!r}")


def grad(f: Expr, wrt):
    """The gradient of the scalar ``f`` with respect to ``wrt`` (one Expr, or a list of them).

    Each gradient has the layout of its variable: ``grad(f, U)`` has ``U``'s shape.
    """
    if not isinstance(f, Expr):
        raise TypeError(f"grad: f must be an expression, got {type(f).__name__}")
    if f.shape != ():
        raise ValueError(f"grad: f must be a scalar (shape ()), got shape {fmt_shape(f.shape)}; "
                         "use sg.jacobian for a non-scalar f, or sum it first")
    ws, single = as_list(wrt)
    _check_wrt(ws, "grad")
    out = reverse(f, F.const(1.0), ws)
    _record("grad", out, f, ws)
    return out[0] if single else out


def jacobian(f: Expr, wrt):
    """The Jacobian of ``f`` wrt ``wrt``: shape ``f.shape + x.shape``, one expression.

    A list ``wrt`` gives a list. Computed by one vectorised reverse pass seeded with the identity.
    """
    if not isinstance(f, Expr):
        raise TypeError(f"jacobian: f must be an expression, got {type(f).__name__}")
    ws, single = as_list(wrt)
    _check_wrt(ws, "jacobian")
    seed = F.const(1.0) if f.shape == () else F.eye(f.shape)
    out = reverse(f, seed, ws)
    _record("jacobian", out, f, ws)
    return out[0] if single else out


def hessian(f: Expr, wrt):
    """``jacobian(grad(f, x), x)``, shape ``x.shape + x.shape``; a list gives ``H[i][j]``."""
    if not isinstance(f, Expr):
        raise TypeError(f"hessian: f must be an expression, got {type(f).__name__}")
    if f.shape != ():
        raise ValueError(f"hessian: f must be a scalar (shape ()), got shape "
                         f"{fmt_shape(f.shape)}")
    ws, single = as_list(wrt)
    _check_wrt(ws, "hessian")
    gs = reverse(f, F.const(1.0), ws)
    rows = []
    for wi, g in zip(ws, gs):
        seed = F.const(1.0) if g.shape == () else F.eye(g.shape)
        row = reverse(g, seed, ws)
        _record("hessian", row, f, [(wi, w) for w in ws])
        rows.append(row)
    return rows[0][0] if single else rows
