"""``sg.simplify``: own rewrites first, sympy where it helps, never a larger graph."""

from __future__ import annotations

from . import functions as F
from ._lazy import sympy
from .expr import Expr, canonical
from .graph import as_list, count_nodes, larger_than, no_gc, walk_upto
from .rewrite import rebuild

SYMPY_MAX_NODES = 120  # scalar graphs up to this size are also tried in sympy


def _factor_matmul(n: Expr) -> Expr | None:
    """P v ± Q v -> (P ± Q) v and v P ± v Q -> v (P ± Q): one product fewer."""
    if n.op.name not in ("add", "sub"):
        return None
    x, y = n.args
    if x.op.name != "matmul" or y.op.name != "matmul":
        return None
    combine = F.add if n.op.name == "add" else F.sub
    (p, v), (q, u) = x.args, y.args
    if v is u and p.shape == q.shape:
        if n.op.name == "add" and p.op.name == "transpose" and p.args[0] is q:
            p, q = q, p  # A + A^T, as the books write it
        r = F.matmul(combine(p, q), v)
    elif p is q and v.shape == u.shape:
        r = F.matmul(p, combine(v, u))
    else:
        return None
    return r if r.shape == n.shape else None


def _own_rewrite(n: Expr) -> Expr:
    c = canonical(n)
    r = _factor_matmul(c)
    return c if r is None else r


def _own(outs: list[Expr]) -> list[Expr]:
    # rebuilding re-runs every op's build-time rules on the new operands, and canonical()
    # replaces a node by its named twin, so names reach every place their value is used
    return rebuild(outs, _own_rewrite)


def _via_sympy(e: Expr) -> Expr | None:
    from .sympy_bridge import from_sympy, to_sympy

    order = walk_upto([e], SYMPY_MAX_NODES)  # stops early on big graphs: linear in outputs
    if order is None or any(n.ndim for n in order):
        return None
    try:
        s = to_sympy(e, keep_names=True)
    except (NotImplementedError, ValueError):
        return None
    symbols = {}
    for n in order:
        if n.name is not None and n is not e:
            symbols[n.name] = n
        elif n.op.name == "alias" and n is not e:
            symbols[n.attrs["alias"]] = n
        elif n.op.name == "var":
            symbols[n.attrs["vname"]] = n
    best = None
    for cand in _candidates(s):
        try:
            r = from_sympy(cand, symbols)
        except ValueError:
            continue
        if best is None or count_nodes(r) < count_nodes(best):
            best = r
    return best


def _candidates(s):
    out = []
    try:
        out.append(sympy.factor_terms(sympy.cancel(s)))
    except (sympy.PolynomialError, TypeError, ValueError):
        pass
    try:
        out.append(sympy.factor(s))
    except (sympy.PolynomialError, TypeError, ValueError):
        pass
    return out


def simplify(e):
    """An equivalent expression (a list gives a list), never larger in node count."""
    with no_gc():
        return _simplify(e)


def _simplify(e):
    outs, single = as_list(e, "simplify")
    res = []
    own = _own(outs)
    big = larger_than(own, SYMPY_MAX_NODES)  # one pass, however many outputs share the graph
    for o in own:
        best = o
        alt = None if id(o) in big else _via_sympy(o)
        if alt is not None and count_nodes(alt) < count_nodes(best):
            best = alt
        res.append(best)
    # guard: never larger than what was given
    res = [r if r is o or count_nodes(r) <= count_nodes(o) else o for r, o in zip(res, outs)]
    return res[0] if single else res
