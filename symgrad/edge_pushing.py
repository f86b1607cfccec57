"""Hessians of scalar graphs in one reverse sweep: edge pushing (Gower and Mello, 2012).

Row by row, a Hessian is one reverse pass over the gradient graph per variable. Edge pushing
instead walks ``f``'s own graph once, in reverse topological order, carrying two things: each
node's adjoint (the first derivative of ``f`` with respect to it) and the symmetric
*second-order adjoints* ``W[a, b]`` between the nodes still to be eliminated (the Hessian of
``f`` seen as a function of them). Eliminating a node ``v = phi(a, b, ...)`` does three things:

- *pushing*: every edge ``W[v, p]`` moves to ``v``'s operands, ``W[a, p] += phi_a W[v, p]``
  (twice that when ``p`` is ``a``), and the diagonal ``W[v, v]`` moves as
  ``W[a, b] += phi_a phi_b W[v, v]``;
- *creating*: ``v``'s own curvature adds ``W[a, b] += adjoint(v) phi_ab``;
- the adjoint moves on, ``adjoint(a) += adjoint(v) phi_a``.

What is left between the variables is the Hessian. Each entry is built once (the matrix is
symmetric), and variables that enter ``f`` through one node (``w`` and ``b`` in ``w h + b``)
share all the work above that node: on the W4 chain the graph is less than half the size of the
row-by-row one. The partial derivatives ``phi_a`` and ``phi_ab`` come from each op's own
derivative rule, applied to placeholder operands once per op (so every op that has a ``vjp``
works here unchanged) and then written in terms of the real operands.
"""

from __future__ import annotations

from . import functions as F
from .expr import Expr, make, new_node
from .ops.elementwise import _gate, _indicator
from .ops.leaves import VAR
from .rewrite import rebuild


def _is_zero(e: Expr | None) -> bool:
    """Whether a derivative rule's result is no term at all (a known zero or the constant 0)."""
    return e is None or e.op.name == "zero" or (e.op.name == "const" and e.attrs["value"] == 0)


def _gated_by(d: Expr) -> Expr | None:
    """The condition of a first partial that is a step, 1 where it is > 0 and 0 elsewhere
    (relu's partial ``step(z)``; maximum's and minimum's, ``step(z)`` or ``1 - step(z)``);
    None for any other partial."""
    if d.op.name == "step":
        return d.args[0]
    return d if _indicator(d) else None


def _times(d: Expr, w: Expr, d_first: bool = True) -> Expr:
    """``d * w`` for a first partial ``d``; a step gates ``w`` instead: 0 where the step is 0
    even where ``w`` is infinite, as the reverse pass does (``relu(x)**1.5`` has an infinite
    second partial at relu = 0, and x < 0 gave ``inf*0 = nan``)."""
    c = _gated_by(d)
    if c is not None:
        return _gate(w, c)
    return F.mul(d, w) if d_first else F.mul(w, d)


_PLACEHOLDERS: list[Expr] = []
_TEMPLATES: dict[tuple, tuple] = {}
_MAX_TEMPLATES = 512


def _placeholders(k: int) -> list[Expr]:
    """k scalar variables that no user can make: outside the hash-consing table, so that
    ``sg.scalar("_edge_push_1")`` is another node (as one of the table, it was this one, and
    an operand replaced by it in a partial was replaced again: a wrong Hessian)."""
    while len(_PLACEHOLDERS) < k:
        _PLACEHOLDERS.append(new_node(VAR, (), {"vname": f"_edge_push_{len(_PLACEHOLDERS)}",
                                                "shape": ()}, ()))
    return _PLACEHOLDERS[:k]


def _template(n: Expr) -> tuple:
    """(placeholders, first partials by slot, second partials by slot pair).

    Computed once per op and attributes: the op's own derivative rule, applied twice to
    placeholder operands. A partial is None where it is zero.
    """
    from .autodiff import reverse

    key = (n.op.tag, len(n.args), n.op.attrs_key(n.attrs) if n.attrs else None)
    t = _TEMPLATES.get(key)
    if t is None:
        ph = _placeholders(len(n.args))
        v = make(n.op, tuple(ph), n.attrs or None)
        first = [None if _is_zero(d) else d for d in reverse(v, F.const(1.0), ph)]
        second = [[None] * len(ph) for _ in ph]
        for s, d in enumerate(first):
            if d is None:
                continue
            row = reverse(d, F.const(1.0), ph)
            for t_, dd in enumerate(row):
                if t_ >= s and not _is_zero(dd):
                    second[s][t_] = dd
        if len(_TEMPLATES) >= _MAX_TEMPLATES:  # attributes vary (an alias's name): bounded
            try:
                _TEMPLATES.pop(next(iter(_TEMPLATES)), None)  # the oldest
            except (RuntimeError, StopIteration):  # (another thread changed it meanwhile)
                pass
        t = _TEMPLATES[key] = (ph, first, second)
    return t


def _partials(n: Expr, dep: set[int]):
    """(unique operands in ``dep``, their first partials, second partials by operand pair).

    Operands used in several slots (``x * x``) get the sums over their slots.
    """
    ph, first, second = _template(n)
    uniq: list[Expr] = []
    slot_of: list[int] = []  # slot -> index in uniq, or -1 (not a dependent operand)
    for a in n.args:
        if id(a) not in dep:
            slot_of.append(-1)
            continue
        for j, u in enumerate(uniq):
            if u is a:
                slot_of.append(j)
                break
        else:
            slot_of.append(len(uniq))
            uniq.append(a)
    # the template's partials, on the real operands (in one rebuild: shared parts once; the
    # op's own node comes back by hash-consing, so tanh' = 1 - tanh(x)**2 reuses it)
    terms1 = [(slot_of[s], d) for s, d in enumerate(first) if d is not None and slot_of[s] >= 0]
    terms2 = [(s, t, dd) for s, row in enumerate(second) for t, dd in enumerate(row)
              if dd is not None and slot_of[s] >= 0 and slot_of[t] >= 0]
    mapping = {id(p): a for p, a in zip(ph, n.args)}
    real = iter(rebuild([d for _, d in terms1] + [dd for _, _, dd in terms2],
                        lambda m: mapping.get(id(m))))
    d1: list[Expr | None] = [None] * len(uniq)
    for j, _ in terms1:
        d = next(real)
        d1[j] = d if d1[j] is None else F.add(d1[j], d)
    d2: dict[tuple[int, int], Expr] = {}
    for s, t, _ in terms2:
        dd = next(real)
        i, j = sorted((slot_of[s], slot_of[t]))
        if s != t and i == j:
            dd = F.mul(F.const(2.0), dd)  # both orders of the slot pair (s, t)
        prev = d2.get((i, j))
        d2[i, j] = dd if prev is None else F.add(prev, dd)
    return uniq, d1, d2


def hessian_rows(f: Expr, ws: list[Expr], order: list[Expr], dep: set[int]) -> list:
    """``H[i][j]`` of the scalar ``f`` for scalar variables ``ws``; None where no edge reached.

    ``order``: ``f``'s topological order (already stabilized); ``dep``: ids of the nodes that
    depend on a variable through differentiable operands. The entries left None are zero; the
    caller asks the row-by-row method why.
    """
    adj: dict[int, Expr] = {id(f): F.const(1.0)}
    W: dict[int, dict[int, Expr]] = {}  # symmetric: W[a][b] is W[b][a]
    byid = {id(n): n for n in order}

    def add_edge(a: Expr, b: Expr, val: Expr) -> None:
        ia, ib = id(a), id(b)
        ra = W.get(ia)
        if ra is None:
            ra = W[ia] = {}
        prev = ra.get(ib)
        val = val if prev is None else F.add(prev, val)
        ra[ib] = val
        if ia != ib:
            rb = W.get(ib)
            if rb is None:
                rb = W[ib] = {}
            rb[ia] = val

    for n in reversed(order):
        i = id(n)
        if i not in dep or n.op.leaf:
            continue
        row = W.pop(i, None) or {}
        for p in row:
            if p != i:
                del W[p][i]
        wii = row.pop(i, None)
        vbar = adj.pop(i, None)
        if vbar is None and not row and wii is None:
            continue  # f does not reach this node
        uniq, d1, d2 = _partials(n, dep)
        for p, wip in row.items():
            pn = byid[p]
            for a, da in zip(uniq, d1):
                if da is None:
                    continue
                val = _times(da, wip)
                if a is pn:
                    val = F.mul(F.const(2.0), val)
                add_edge(a, pn, val)
        if wii is not None:
            for x in range(len(uniq)):
                if d1[x] is None:
                    continue
                for y in range(x, len(uniq)):
                    if d1[y] is None:
                        continue
                    dx, dy = d1[x], d1[y]
                    if _gated_by(dx) is None and _gated_by(dy) is None:
                        val = F.mul(F.mul(dx, dy), wii)
                    else:
                        val = _times(dx, _times(dy, wii))
                    add_edge(uniq[x], uniq[y], val)
        if vbar is not None:
            for (x, y), dd in d2.items():
                add_edge(uniq[x], uniq[y], F.mul(vbar, dd))
            for a, da in zip(uniq, d1):
                if da is not None:
                    prev = adj.get(id(a))
                    c = _times(da, vbar, d_first=False)
                    adj[id(a)] = c if prev is None else F.add(prev, c)
    rows = []
    for wi in ws:
        r = W.get(id(wi), {})
        rows.append([r.get(id(wj)) for wj in ws])
    return rows


def supported(order: list[Expr], dep: set[int], nondiff: list[Expr]) -> bool:
    """Whether every node is a scalar and no dependent path passes through a value without a
    derivative (``nondiff``: the nodes of ``dep`` with such an operand; the row method raises
    for them, naming the path). Ops that cut a derivative (stop_gradient) need nothing: the
    nodes above the cut are not in ``dep``."""
    for n in order:
        if n.shape != ():
            return False
    for n in nondiff:
        if n.op.random or any(i < len(n.args) and id(n.args[i]) in dep for i in n.op.nondiff):
            return False
    return True
