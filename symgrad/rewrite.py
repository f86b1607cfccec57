"""Graph-to-graph passes: rebuild a DAG bottom-up through a rewrite, and the stability rewrites.

The stability rewrites replace forms that overflow or lose precision by equal stable ones
(``log(sigmoid(z))`` -> ``-softplus(-z)``, ``bce(sigmoid(z), y)`` -> ``softplus(z) - y*z``, ...).
They run before the gradient pass (so derivatives are built from the stable forms) and before
code generation, and see through transposes and reshapes.
"""

from __future__ import annotations

from typing import Callable

from . import functions as F
from .expr import Expr, make
from .graph import no_gc, topo_order

Rewrite = Callable[[Expr], Expr | None]


def rebuild(outputs: list[Expr], rewrite: Rewrite | None = None,
            order: list[Expr] | None = None) -> list[Expr]:
    """The outputs rebuilt bottom-up; ``rewrite(node)`` may return a replacement for a node.

    Nodes whose operands did not change are kept as they are; names are carried over.
    ``order``: the outputs' topological order, when the caller has it already.
    """
    with no_gc():
        return _rebuild(outputs, rewrite, order)


def _rebuild(outputs, rewrite, order) -> list[Expr]:
    if order is None:
        order = topo_order(outputs)
    new: dict[int, Expr] = {}
    for n in order:
        args = n.args
        if args:
            nargs = tuple(new[id(a)] for a in args)
            if any(x is not y for x, y in zip(nargs, args)):
                m = make(n.op, nargs, n.attrs)
                if n.name is not None and m.op is n.op and m.name is None:
                    m = m.named(n.name)
                n2 = m
            else:
                n2 = n
        else:
            n2 = n
        if rewrite is not None:
            r = rewrite(n2)
            if r is not None:
                if n2.name is not None and r.name is None and r.shape == n2.shape \
                        and not r.op.leaf:
                    r = r.named(n2.name)
                n2 = r
        new[id(n)] = n2
    return [new[id(o)] for o in outputs]


# ------------------------------------------------------------------ stability
_VIEWS = ("transpose", "reshape", "broadcast_to")


def _is_one(e: Expr) -> bool:
    return F.is_const(e, 1.0) and e.ndim == 0


def _stable_log(x: Expr) -> Expr | None:
    """A stable form of log(x), or None."""
    op = x.op.name
    if op == "sigmoid":  # log(sigmoid(z)) = -softplus(-z)
        return F.neg(F.softplus(F.neg(x.args[0])))
    if op == "sub" and _is_one(x.args[0]) and x.args[1].op.name == "sigmoid":
        return F.neg(F.softplus(x.args[1].args[0]))  # log(1 - sigmoid(z)) = -softplus(z)
    if op == "add":
        a, b = x.args
        if _is_one(a) and b.op.name == "exp" and b.shape == x.shape:
            return F.softplus(b.args[0])  # log(1 + exp(z))
        if _is_one(b) and a.op.name == "exp" and a.shape == x.shape:
            return F.softplus(a.args[0])
    if op == "sum" and x.args[0].op.name == "exp":
        return F.logsumexp(x.args[0].args[0], x.attrs["axis"], x.attrs["keepdims"])
    if op == "softmax":
        return F.log_softmax(x.args[0], x.attrs["axis"])
    if op in _VIEWS:
        inner = _stable_log(x.args[0])
        if inner is not None:
            return make(x.op, (inner,), x.attrs)
    return None


def _stabilize_node(n: Expr) -> Expr | None:
    op = n.op.name
    if op == "log":
        return _stable_log(n.args[0])
    if op == "bce":
        mu, y = n.args
        if mu.op.name == "sigmoid":
            z = mu.args[0]
            return F.broadcast_to(F.sub(F.softplus(z), F.mul(y, z)), n.shape)
    return None


_UNSTABLE = frozenset(("log", "bce"))  # the ops _stabilize_node rewrites


def stabilize(outputs: list[Expr], order: list[Expr] | None = None) -> list[Expr]:
    """The outputs with every unstable pattern replaced by its stable equal.

    ``order``: the outputs' topological order, when the caller has it already.
    """
    if order is None:
        order = topo_order(outputs)
    if not any(n.op.name in _UNSTABLE for n in order):
        return list(outputs)
    return rebuild(outputs, _stabilize_node, order)
