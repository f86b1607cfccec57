"""Reverse mode over the DAG: gradients, Jacobians and Hessians as new graphs.

One pass (:func:`reverse`) walks the nodes in reverse topological order, asks each op's ``vjp``
rule for its operands' cotangents (built from symgrad ops, reusing the forward nodes), and sums
the cotangents of a node over its uses. Cotangents may carry leading batch axes: seeding them
with the identity gives a whole Jacobian in one pass (vectorised reverse mode), so a Hessian is
one matrix expression, not a loop over rows.

A derivative is one of three things, and symgrad says which:

- a graph (possibly one that evaluates to zero somewhere);
- a *known zero*: a ``zero`` node that records why (``sg.zero_reason``): ``zero`` when ``f``
  does not depend on ``x`` (or only through a flat op such as the step inside relu'), and
  ``disconnected`` when ``f`` depends on ``x`` only through ``sg.stop_gradient`` or the hard
  value of ``sg.straight_through``;
- *undefined*: a path from ``x`` to ``f`` passes through a value with no derivative (argmax, the
  index of take, floor, integer casts, samples). That raises :class:`NonDifferentiableError`
  naming the op and the path; symgrad never returns a silent zero there.

Stability rewrites (:func:`symgrad.rewrite.stabilize`) run on ``f`` before the pass and on the
derivatives after it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from . import edge_pushing
from . import functions as F
from .errors import NonDifferentiableError
from .expr import Expr, keep_checks, make, new_node, node_key, unguard
from .graph import as_list, no_gc, topo_order
from .ops.elementwise import as_float
from .ops.leaves import VAR
from .rewrite import has_candidates, stabilize
from .shapes import fit_pairs, fmt_shape, not_bigger, size_of

_ROUTE_MAX = 9  # nodes shown in a path before eliding the middle

# Where each result of grad/jacobian/hessian came from, so that sg.explain can re-derive it and
# sg.draw can tell the forward nodes from those the pass added: every result's ``_origin`` slot
# holds its call's record (kind, f, ids of the results, the variables). One record per call, no
# weak reference per result (fewer objects for the garbage collector to walk).


def _record(kind: str, outs: list, f: Expr, wrts: list) -> None:
    rec = (kind, f, tuple(map(id, outs)), tuple(wrts))
    for g in outs:
        # a gradient keeps its record when a Jacobian or Hessian returns it (the Jacobian of
        # g * b wrt b is g itself): sg.explain takes gradients, and refused it afterwards
        if kind != "grad" and getattr(g, "_origin", None) is not None and \
                g._origin[0] == "grad":
            continue
        _set_origin(g, rec)


# A constant is one node for every graph that has it: messages read a derivative that is one
# (3.0, or 0) as df/dx within the call that made it only (a Hessian's rows). Read after it,
# sg.grad(sg.const(3.0), x) said "df/dy does not depend on x" of an earlier gradient's 3.0
_CALL = threading.local()


def _set_origin(g: Expr, rec: tuple) -> None:
    g._origin = rec
    if g.op.name == "const":
        made = getattr(_CALL, "consts", None)
        if made is not None:
            made.append(g)


@contextmanager
def _one_call():
    """The extent of a public derivative call (see _CALL)."""
    if getattr(_CALL, "consts", None) is not None:  # (nested: the outer call's extent)
        yield
        return
    _CALL.consts = []
    try:
        yield
    finally:
        _CALL.consts = None


def _recorded_now(c: Expr) -> bool:
    """Whether the constant ``c`` was recorded as a derivative in the current call."""
    return any(g is c for g in getattr(_CALL, "consts", None) or ())


def _with_checks(outs: list, f: Expr) -> list:
    """``outs`` with the size checks of f's graph that theirs lack (see expr.keep_checks),
    each keeping its origin record: a derivative is defined only where f is, so a call with
    sizes f's graph refuses fails (d/dw of sum(v + w), w of (3,) and v of (n,), at n = 5)."""
    if not f.checks:
        return outs
    return [_record_moved(o, keep_checks(o, f.checks)) for o in outs]


def _record_moved(o: Expr, g: Expr) -> Expr:
    """``g``, standing for the derivative ``o``, with ``o``'s origin record."""
    rec = getattr(o, "_origin", None)
    if g is not o and rec is not None:
        kind, ff, ids, wrts = rec
        _set_origin(g, (kind, ff, (id(g),), (wrts[len(ids) - 1 - ids[::-1].index(id(o))],)))
    return g


def _floats(outs: list) -> list:
    """Derivatives in floats: one that is an integer value (the gradient of ``sum(c * v)`` for
    an int64 array c is c; of ``stop_gradient(argmax(v)) * sum(v)`` the index) came back as
    integers, where numpy computes every derivative in floats (``g *= 0.1`` raised)."""
    res = []
    for o in outs:
        r = as_float(o)  # (o itself, a float constant, or None: an integer value computed)
        res.append(o if r is o else _record_moved(o, r if r is not None else F.mul(o, 1.0)))
    return res


def origin(e: Expr) -> tuple | None:
    """``(kind, f, wrt)`` if ``e`` was returned by ``grad``, ``jacobian`` or ``hessian``, else None.

    ``kind`` is the function's name, ``f`` the expression differentiated and ``wrt`` the variable
    (a pair of variables for a Hessian block). Hash-consing makes an equal node built elsewhere
    the same object, so the record describes the latest derivation that returned this node.
    """
    if not isinstance(e, Expr):
        raise TypeError(f"origin: expected an expression, got {type(e).__name__}")
    rec = getattr(e, "_origin", None)
    if rec is None:
        return None
    kind, f, ids, wrts = rec
    i = len(ids) - 1 - ids[::-1].index(id(e))  # e is alive: its id is the one recorded for it
    return kind, f, wrts[i]


# ------------------------------------------------------------------ descriptions
def _describe(n: Expr) -> str:
    if n.op.name == "var":
        return n.attrs["vname"]
    if n.op.name == "alias":
        return n.attrs["alias"]
    return n.name or n.op.name


def _wrt_text(w: Expr) -> str:
    """How messages call what is differentiated with respect to: its name, or its formula
    when it is a small unnamed expression (``2*x``, not ``mul``)."""
    if w.op.name in ("var", "alias") or w.name:
        return _describe(w)
    text = _short(w)
    if text is None:
        return _describe(w)
    # a value that prints as a name it is not (a broadcast prints as its operand) says its op
    return f"{w.op.name}({text})" if text.isidentifier() else text


_NAMESAKE = "uses another variable of that name"


def _no_use(f: Expr, w: Expr, fname: str | None = None, namesake: Expr | None = None) -> str:
    """Why ``f``'s derivative in ``w`` is zero when ``f``'s graph lacks ``w``: it does not
    depend on a variable; a value (an intermediate node) may have had its uses rewritten away
    while ``f`` was built (trust.md), so that is what is said of it. ``fname``: what to call
    ``f`` (default: _fname's guess); ``namesake``: a variable of f's graph with w's name and
    another shape, the likely mistake ("f does not depend on v" of a sum(v * v) was puzzling)."""
    fname = fname or _fname(f)
    if namesake is not None:
        return (f"{fname} does not depend on {_wrt_text(w)} of shape {fmt_shape(w.shape)}: it "
                f"{_NAMESAKE}, of shape {fmt_shape(namesake.shape)}")
    if f.op.name == "zero" and _NAMESAKE in f.attrs["why"]:  # a derivative of such a zero
        # (the Hessian wrt a namesake said "df/dv does not depend on v", where df/dv said why)
        return f"{fname} is a known zero ({f.attrs['why']})"
    if w.op.leaf or w.op.name == "alias":
        return f"{fname} does not depend on {_wrt_text(w)}"
    return (f"{fname} as built holds no use of the value {_wrt_text(w)} (rules may have "
            "rewritten its uses away: build f on a variable standing for it)")


def _d(f: Expr, w: Expr) -> str:
    """``df/dw`` (``df/d(2 v)`` for a formula)."""
    t = _wrt_text(w)
    return f"d{_fname(f)}/d{t if t.isidentifier() else f'({t})'}"


def _fname(f: Expr) -> str:
    """How messages call the differentiated output: its name, ``df/dx`` for a gradient (the
    rows of a Hessian differentiate one), else ``f``."""
    if f.op.name in ("var", "alias") or f.name:
        return _describe(f)
    if f.op.name == "const" and not _recorded_now(f):  # (see _CALL)
        return "f"
    rec = origin(f)
    if f.op.name == "guard" and rec is None:  # (a guard prints as its operand)
        return _fname(f.args[0])
    # (the gradient of exp(x) is exp(x) itself: its record names the node as its own f)
    if rec is not None and rec[0] == "grad" and rec[1] is not f and origin(rec[1]) is None:
        return _d(rec[1], rec[2])
    return "f"


def _short(e: Expr, limit: int = 12) -> str | None:
    """``str(e)`` when ``e`` has at most ``limit`` nodes, else None (never walks a big graph)."""
    seen: set[int] = set()
    stack = [e]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if len(seen) > limit:
            return None
        stack.extend(n.args)
    s = str(e)
    return s if len(s) <= 60 and "\n" not in s else None


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


def _route(nodes: list[Expr]) -> str:
    names = [_describe(p) for p in nodes if p.op.name != "guard"]  # (a guard computes nothing)
    if len(names) > _ROUTE_MAX:
        k = _ROUTE_MAX // 2
        names = names[:k] + [f"... ({len(names) - 2 * k} more) ..."] + names[-k:]
    return " -> ".join(names)


def _path_up(n: Expr, f: Expr, order: list[Expr], live: set) -> list[Expr]:
    """A path from ``n`` up to ``f`` through live nodes (``n`` excluded)."""
    users: dict[int, Expr] = {}
    for m in order:
        if id(m) in live:
            for a in m.args:
                users.setdefault(id(a), m)
    path = []
    while n is not f and id(n) in users:
        n = users[id(n)]
        path.append(n)
    return path


def _undefined(f: Expr, sites: list, dep: set, wset: set, order: list[Expr],
               live: set) -> NonDifferentiableError:
    """The error for the non-differentiable operands ``sites`` ((node, position) pairs)."""
    n, i = sites[0]
    bad = n.args[i]
    path = _path(bad, dep, wset)
    var = _wrt_text(path[-1]) if id(path[-1]) in wset else "the variable"
    s = _short(bad)
    route = _route(list(reversed(path)) + [n] + _path_up(n, f, order, live))
    if len(path) == 1:
        where = f"its operand {i + 1}, which is {var} itself"
    else:
        where = f"its operand {i + 1}" + (f", {s}," if s else "") + f" which depends on {var}"
    others = sorted({f"{m.op.name} (operand {j + 1})" for m, j in sites[1:]})
    more = f" Further on, {', '.join(others)} has no derivative either." if others else ""
    # wrap the op's value when no operand has a derivative (argmax, floor, ...), else the operand
    whole = all(j in n.op.nondiff for j in range(len(n.args)))
    s_wrap = _short(n) if whole else s
    example = f"sg.stop_gradient({s_wrap})" if s_wrap else "sg.stop_gradient(...)"
    return NonDifferentiableError(
        f"the derivative of {_fname(f)} with respect to {var} is undefined: {n.op.name} has no "
        f"derivative with respect to {where}; the path is {route}.{more} symgrad does not "
        f"return a silent zero here; if this path should count as a constant, wrap it in "
        f"sg.stop_gradient (e.g. {example}).")


# ------------------------------------------------------------------ known zeros
def known_zero(shape, kind: str, why: str) -> Expr:
    """A zero of ``shape`` that records why it is zero (``kind``: "zero" or "disconnected")."""
    return make(_zero_op(), (), {"shape": tuple(shape), "kind": kind, "why": why})


def _zero_op():
    from .ops import REGISTRY

    return REGISTRY["zero"]


def zero_reason(e: Expr) -> str | None:
    """Why ``e`` is a known zero ("zero: f does not depend on x", "disconnected: ..."), or None.

    Derivatives that are zero for a structural reason carry it; any other expression gives None.
    """
    if not isinstance(e, Expr):
        raise TypeError(f"zero_reason: expected an expression, got {type(e).__name__}")
    while e.op.name in ("broadcast_to", "reshape", "transpose", "neg", "guard"):
        e = e.args[0]
    if e.op.name != "zero":
        return None
    return f"{e.attrs['kind']}: {e.attrs['why']}"


def _why_no_cotangent(f: Expr, w: Expr, order: list[Expr], live: set,
                      flat: set) -> tuple[str, str]:
    """(kind, sentence) for a variable of f's graph that no cotangent reached.

    ``flat``: ids of the nodes whose derivative rule gave no cotangent to a wanted operand.
    """
    dep_w: set[int] = set()
    for n in order:
        if n is w or any(id(a) in dep_w for a in n.args):
            dep_w.add(id(n))
    fn, var = _fname(f), _wrt_text(w)
    cuts, flats = set(), set()
    for n in order:
        if id(n) not in live:
            continue
        for i, a in enumerate(n.args):
            if id(a) in dep_w:
                if i in n.op.zero_grad:
                    cuts.add(n.op.name)
                elif id(n) in flat:  # (an op may be called otherwise, as it is printed)
                    flats.add(getattr(n.op, "said_as", n.op.name))
    if cuts and not flats:
        return "disconnected", f"{fn} depends on {var} only through {' and '.join(sorted(cuts))}"
    if flats:
        through = " and ".join(sorted(flats | cuts))
        return "zero", f"{fn} depends on {var} only through {through}, whose derivative is zero"
    return "zero", f"the derivative of {fn} with respect to {var} is identically zero"


# ------------------------------------------------------------------ the reverse pass
def reverse(f: Expr, seed: Expr, ws: list[Expr], shared: list[Expr] | None = None,
            shared_ids: set[int] | None = None) -> list[Expr]:
    """Cotangents of ``ws`` for the cotangent ``seed`` of ``f`` (seed: batch axes + f.shape).

    ``shared``: a topological order of a graph that contains ``f``'s and has no unstable
    pattern (the gradient graph, when a Hessian derives each of its rows): the pass then
    neither walks nor stabilizes ``f`` again. ``shared_ids``: the ids of nodes known to hold
    no unstable pattern (those of ``shared`` at least); the pass adds those it creates.
    """
    with no_gc():
        return _reverse(f, seed, ws, shared, shared_ids)


def _reverse(f: Expr, seed: Expr, ws: list[Expr], shared: list[Expr] | None,
             shared_ids: set[int] | None = None) -> list[Expr]:
    wset = {id(w) for w in ws}
    if shared is not None:
        order = shared  # nodes f does not reach are not live: they get no cotangent
    else:
        f, order = _stabilized(f, ws)
    dep, nondiff = _dependents(order, wset)
    live: set[int] | None = None  # computed when needed: only errors and zeros need it
    if nondiff:
        live = _live(f, order)
        sites = [(n, i) for n in nondiff if id(n) in live
                 for i in n.op.nondiff if i < len(n.args) and id(n.args[i]) in dep]
        if sites:
            raise _undefined(f, sites, dep, wset, order, live)
    nb = seed.ndim - f.ndim
    flat: set[int] = set()
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
        except NonDifferentiableError:
            i = next((i for i in n.op.nondiff if i < len(n.args) and wants[i]), 0)
            raise _undefined(f, [(n, i)], dep, wset, order, live or _live(f, order)) from None
        for a, want, c in zip(n.args, wants, cts):
            if c is None or not want:
                if want:
                    flat.add(id(n))
                continue
            target = a
            if isinstance(c, tuple):
                target, c = c
            if c.shape != target.shape and (nb == 0 or c.shape[nb:] != target.shape):
                c = fit_cotangent(c, nb, target)
            prev = adj.get(id(target))
            adj[id(target)] = c if prev is None else F.add(prev, c)
    out = []
    batch = seed.shape[:nb]
    in_graph: set[int] | None = None
    for w in ws:
        g = adj.get(id(w))
        if g is None:
            if in_graph is None:
                nodes = order if shared is None else topo_order([f])
                in_graph = {id(n) for n in nodes}
                named = {n.attrs["vname"]: n for n in nodes if n.op.name == "var"}
            if id(w) not in in_graph:
                kind, why = "zero", _no_use(f, w, namesake=named.get(w.attrs.get("vname")))
            else:
                kind, why = _why_no_cotangent(f, w, order, live or _live(f, order), flat)
            g = known_zero(batch + w.shape, kind, why)
        out.append(g)
    known = {id(n) for n in order} if shared is None else shared_ids
    new = _new_nodes(out, known)
    if all(w.op.leaf for w in ws) and not has_candidates(new):
        return out  # f was stabilized whole above, and the pass added no pattern root
    known.difference_update(map(id, new))  # not known to be stable after all
    return stabilize(out)


def fit_cotangent(c: Expr, nb: int, target: Expr) -> Expr:
    """The cotangent ``c`` in ``target``'s shape where the two differ only in sizes that the
    forward graph checks equal at run time: ``w @ v`` with w (n,) and v (m,) gives w the
    cotangent v of shape (m,), which becomes (n,), checked (and ``sum(X, 1) * c`` with a (2,)
    constant c gives the (m,) sum a (2,) cotangent). Other differences are the vjp's own."""
    want = target.shape
    if not any(isinstance(d, str) for d in (*c.shape[nb:], *want)) or \
            fit_pairs(c.shape[nb:], want) is None:
        return c
    return F.fit_shape(c, c.shape[:nb] + want)


def _stabilized(f: Expr, ws: list[Expr]) -> tuple[Expr, list[Expr]]:
    """``f`` with its unstable patterns rewritten (the variables ``ws`` kept), and its
    topological order."""
    order = topo_order([f])
    (g,) = stabilize([f], keep=ws, order=order)
    return (f, order) if g is f else (g, topo_order([g]))


def _dependents(order: list[Expr], wset: set[int]) -> tuple[set[int], list[Expr]]:
    """(ids of the nodes that depend on a variable through operands with a derivative, the
    nodes among them with an operand that has no derivative).

    A node with a non-differentiable operand in the set is in it too (no op cuts such an
    operand); edges an op cuts (``zero_grad``, as stop_gradient's) do not count.
    """
    dep: set[int] = set()
    nondiff: list[Expr] = []
    for n in order:
        k = id(n)
        if k in wset:
            dep.add(k)
            continue
        op = n.op
        zg = op.zero_grad
        if not zg:  # the common case, as a plain loop
            for a in n.args:
                if id(a) in dep:
                    dep.add(k)
                    break
            else:
                continue
        elif any(id(a) in dep for i, a in enumerate(n.args) if i not in zg):
            dep.add(k)
        else:
            continue
        if op.nondiff:
            nondiff.append(n)
    return dep, nondiff


def _live(f: Expr, order: list[Expr]) -> set[int]:
    """ids of the nodes whose cotangent can reach ``f`` (edges through operands an op cuts,
    as stop_gradient does, are cut)."""
    live: set[int] = {id(f)}
    for n in reversed(order):
        if id(n) in live and n.args:
            zg = n.op.zero_grad
            if zg:
                live.update(id(a) for i, a in enumerate(n.args) if i not in zg)
            else:
                live.update(map(id, n.args))
    return live


def _new_nodes(outs: list[Expr], seen: set[int]) -> list[Expr]:
    """The nodes of the outputs' graph whose ids are not in ``seen`` (not walking into those),
    which ``seen`` then holds as well."""
    stack = [o for o in outs if id(o) not in seen]
    seen.update(id(o) for o in stack)
    new = []
    while stack:
        n = stack.pop()
        new.append(n)
        for a in n.args:
            if id(a) not in seen:
                seen.add(id(a))
                stack.append(a)
    return new


def _check_wrt(ws: list[Expr], what: str) -> list[Expr]:
    """``ws``, checked, with each guarded value as the value (what f is built on)."""
    for w in ws:
        if not isinstance(w, Expr):
            raise TypeError(f"{what}: cannot differentiate with respect to {w!r}")
    return [unguard(w) for w in ws]


def _check_f(f, what: str, scalar: bool) -> None:
    if not isinstance(f, Expr):
        raise TypeError(f"{what}: f must be an expression, got {type(f).__name__}")
    if scalar and f.shape != ():
        hint = {"grad": "; use sg.jacobian for a non-scalar f, or sum it first",
                "hessian": "; sum it first, or take the Hessian of each entry, sg.take(f, i)",
                }.get(what, "")
        if all(d == 1 for d in f.shape):  # one entry: (1, 1) from a product of a row and a column
            hint = "; it has one entry: sg.reshape(f, ()) is the scalar"
        raise ValueError(f"{what}: f must be a scalar (shape ()), got shape "
                         f"{fmt_shape(f.shape)}{hint}")


def grad(f: Expr, wrt):
    """The gradient of the scalar ``f`` with respect to ``wrt`` (one Expr, or a list of them).

    Each gradient has the layout of its variable: ``grad(f, U)`` has ``U``'s shape. A gradient
    that is zero for a structural reason says why (``sg.zero_reason``); one through a value
    with no derivative raises ``sg.NonDifferentiableError``.
    """
    _check_f(f, "grad", scalar=True)
    ws, single = as_list(wrt, "grad")
    ws = _check_wrt(ws, "grad")
    with _one_call():
        out = _reverse_each_inner(f, F.const(1.0), ws)
        _record("grad", out, f, ws)
        out = _with_checks(_floats(out), f)
    return out[0] if single else out


def jacobian(f: Expr, wrt):
    """The Jacobian of ``f`` wrt ``wrt``: shape ``f.shape + x.shape``, one expression.

    A list ``wrt`` gives a list. Computed by one vectorised reverse pass seeded with the
    identity of ``f``'s entries, or, for a variable with fewer entries than ``f``, with that
    variable's (the transpose of reverse mode; see docs/matrix-calculus.md).
    """
    _check_f(f, "jacobian", scalar=False)
    ws, single = as_list(wrt, "jacobian")
    ws = _check_wrt(ws, "jacobian")
    with _one_call():
        out = _jacobian(f, ws)
    return out[0] if single else out


def _jacobian(f: Expr, ws: list[Expr]) -> list[Expr]:
    out: list = [None] * len(ws)
    narrow = [i for i, w in enumerate(ws) if _narrower(w, f)]
    for i, j in zip(narrow, _transposed_jacobians(f, [ws[i] for i in narrow])):
        out[i] = j
    rest = [i for i, j in enumerate(out) if j is None]
    if rest:
        seed = F.const(1.0) if f.shape == () else F.eye(f.shape)
        for i, j in zip(rest, _reverse_each_inner(f, seed, [ws[i] for i in rest])):
            out[i] = j
    _record("jacobian", out, f, ws)
    return _with_checks(_floats(out), f)


def _narrower(w: Expr, f: Expr) -> bool:
    """Whether ``w`` has fewer entries than ``f`` (with symbolic sizes: fewer axes), so that
    a pass seeded by ``w``'s identity costs less than one seeded by ``f``'s."""
    return not not_bigger(f.shape, w.shape)


def _transposed_jacobians(f: Expr, ws: list[Expr]) -> list[Expr | None]:
    """Jacobians of ``f`` wrt variables with fewer entries than ``f``, by the transpose of
    reverse mode: ``g(u) = grad(sum(f * u), w)`` is linear in a dummy ``u`` shaped like ``f``,
    and ``jacobian(g, u)`` is the Jacobian, its axes ``w.shape + f.shape``. Its pass is seeded
    by ``w``'s identity, not ``f``'s: the Jacobian of ``tanh(b U)`` wrt a scalar ``b``, for
    ``U`` of 100 x 100, was an identity of 10^8 entries summed away (3.7 s, and MemoryError at
    300 x 300); it is ``U (1 - tanh(b U)**2)``. None where the result is a known zero or
    still holds ``u`` (the direct pass then gives it)."""
    # outside the hash-consing table: no user's variable can be this one
    u = new_node(VAR, (), {"vname": "_jacobian_u", "shape": f.shape}, f.shape)
    try:
        gs = _reverse_each_inner(F.sum(F.mul(f, u)), F.const(1.0), ws)
    except NonDifferentiableError:  # the direct pass raises it, naming f (not sum(f u))
        return [None] * len(ws)
    out: list[Expr | None] = []
    for w, g in zip(ws, gs):
        if g.op.leaf:  # a known zero (or a variable): its reasons are the direct pass's
            out.append(None)
            continue
        seed = F.const(1.0) if g.shape == () else F.eye(g.shape)
        try:
            (jt,) = reverse(g, seed, [u])
        except NonDifferentiableError:
            out.append(None)
            continue
        if any(n is u for n in topo_order([jt])):
            out.append(None)
            continue
        k = w.ndim  # jt's axes: w's, then f's
        out.append(jt if k == 0 else
                   F.transpose(jt, tuple(range(k, k + f.ndim)) + tuple(range(k))))
    return out


def _reverse_each_inner(f: Expr, seed: Expr, ws: list[Expr]) -> list[Expr]:
    """``reverse(f, seed, ws)``, with each node of ``ws`` that is not a variable (an
    intermediate value, such as a named hidden unit) in a pass of its own.

    A pass keeps the nodes it differentiates with respect to as they are, so no stable
    rewrite may look through them: with ``mu = sigmoid(z)`` among them, ``bce(mu, y)`` keeps
    its ``(mu - y)/(mu (1 - mu))``. A pass of its own gives that form to ``df/dmu`` alone,
    and the variables' gradients stay the stable ones they are when asked for alone.
    """
    inner = [i for i, w in enumerate(ws) if not w.op.leaf]
    if inner:
        ws = _twins_in(f, ws)
    if not inner or len(ws) == 1:
        return reverse(f, seed, ws)
    leaves = [i for i, w in enumerate(ws) if w.op.leaf]
    out: list = [None] * len(ws)
    if leaves:
        for i, g in zip(leaves, reverse(f, seed, [ws[i] for i in leaves])):
            out[i] = g
    for i in inner:
        out[i] = reverse(f, seed, [ws[i]])[0]
    return out


def _twins_in(f: Expr, ws: list[Expr]) -> list[Expr]:
    """``ws`` with each value that ``f``'s graph lacks replaced by the equal node it has.

    ``h.named("h")`` after ``f = h*h`` was built is a named twin of ``h`` (later constructions
    return it), while ``f`` holds ``h``: the gradient with respect to the twin is the one with
    respect to ``h``, where it was a zero that said f does not depend on h. And the other way
    round: ``f`` built after the naming holds the twin, and ``h`` stands for it."""
    nodes = topo_order([f])
    have = {id(n) for n in nodes}
    out = []
    for w in ws:
        if not w.op.leaf and id(w) not in have:
            key = node_key(w.op, w.args, w.attrs)  # the hash-consing key: the same value
            twin = next((n for n in nodes if node_key(n.op, n.args, n.attrs) == key), w)
            if twin is w and w.op.name == "alias" and id(w.args[0]) in have:
                twin = w.args[0]  # x.named("xx") for f built on x is x (it was a zero)
            w = twin
        out.append(w)
    return out


def hessian(f: Expr, wrt):
    """``jacobian(grad(f, x), x)``, shape ``x.shape + x.shape``; a list gives ``H[i][j]``."""
    _check_f(f, "hessian", scalar=True)
    ws, single = as_list(wrt, "hessian")
    ws = _check_wrt(ws, "hessian")
    with no_gc(), _one_call():  # one pause for all the rows' passes (see no_gc)
        rows = [_with_checks(_floats(row), f) for row in _hessian_rows(f, ws)]
    return rows[0][0] if single else rows


def _hessian_rows(f: Expr, ws: list[Expr]) -> list[list[Expr]]:
    inner = any(not w.op.leaf for w in ws)
    if inner:
        ws = _twins_in(f, ws)
    if len(ws) > 1 and all(w.shape == () for w in ws) and not inner:
        rows = _edge_pushed(f, ws)
        if rows is not None:
            return rows
    # the rows of the variables with fewer entries first: a block left of the diagonal is the
    # mirror of one above it, so d2f/dU db of a matrix U and a scalar b comes from b's row (a
    # pass seeded by 1), not from U's (seeded by U's identity, a tensor of U.size**2 entries)
    # (not with an intermediate value among ws: its row would come first, from df/dvalue in
    # the unstable form that value's pass keeps, (mu - y)/(mu (1 - mu)), nan at 20)
    by_size = sorted(range(len(ws)), key=lambda i: _size_key(ws[i]))
    if not inner and by_size != list(range(len(ws))):
        rows_p = _hessian_rows_in_order(f, [ws[i] for i in by_size], inner)
        at = {i: k for k, i in enumerate(by_size)}
        rows = [[rows_p[at[i]][at[j]] for j in range(len(ws))] for i in range(len(ws))]
    else:
        rows = _hessian_rows_in_order(f, ws, inner)
    _record_rows(rows, f, ws)  # once, in the list's order
    return rows


def _size_key(w: Expr) -> tuple:
    """Sorts variables by their number of entries (those of symbolic sizes after, by axes)."""
    n = size_of(w.shape)
    return (0, n) if n is not None else (1, w.ndim)


def _hessian_rows_in_order(f: Expr, ws: list[Expr], inner: bool) -> list[list[Expr]]:
    # an intermediate value among ws gets a first pass of its own (as in grad), so that the
    # variables' gradients keep their stable forms: with mu = sigmoid(z) kept opaque in one
    # pass, d/dz of bce(mu, y) was (mu - y)/(mu (1 - mu)) * mu (1 - mu), nan at z = 40
    gs = _reverse_each_inner(f, F.const(1.0), ws) if inner else reverse(f, F.const(1.0), ws)
    _record("grad", gs, f, ws)  # a row's messages call its function df/dw
    # every row's pass walks a part of the gradient graph: walk it once
    shared = topo_order(gs) if len(ws) > 1 else None
    if shared is not None and has_candidates(shared):
        shared = None  # each row stabilizes its own graph first
    stable = None if shared is None else {id(n) for n in shared}
    rows: list[list[Expr]] = []
    for i, (wi, g) in enumerate(zip(ws, gs)):
        seed = F.const(1.0) if g.shape == () else F.eye(g.shape)
        # symmetry: the blocks left of the diagonal are the transposes of those computed in the
        # rows above, so this row's pass only asks for the variables from wi on (a shorter
        # pass, and the two halves share every node)
        row = [_mirror(rows[j][i], ws[j], wi) for j in range(i)] + \
            reverse(g, seed, ws[i:], shared, stable)
        rows.append(row)
    return rows


def _record_rows(rows: list[list[Expr]], f: Expr, ws: list[Expr]) -> None:
    """The Hessian's origin records, the last row first: a symmetric scalar block is one node
    in two places, and the record that wins (the first row's) names its pair in order,
    ``(w0, w1)`` for ``H[0][1]``, where the later row's named it ``(w1, w0)``."""
    for wi, row in reversed(list(zip(ws, rows))):
        _record("hessian", row, f, [(wi, w) for w in ws])


def _edge_pushed(f: Expr, ws: list[Expr]) -> list[list[Expr]] | None:
    """The Hessian of a scalar graph in one sweep (:mod:`symgrad.edge_pushing`), or None where
    that method does not apply (tensor nodes, a path through a value with no derivative)."""
    g, order = _stabilized(f, ws)
    dep, nondiff = _dependents(order, {id(w) for w in ws})
    if nondiff:  # only those whose cotangent can reach f matter (as in the reverse pass)
        live = _live(g, order)
        nondiff = [n for n in nondiff if id(n) in live]
    if not edge_pushing.supported(order, dep, nondiff):
        return None
    rows = edge_pushing.hessian_rows(g, ws, order, dep)
    gs = None
    for i, row in enumerate(rows):
        missing = [j for j in range(i, len(ws)) if row[j] is None]
        if not missing:
            continue
        # known zeros, with the reasons the row method gives (rows below take the transposed
        # block): a variable the gradient's graph lacks says so at once, other zeros ask a pass
        if gs is None:
            gs = reverse(f, F.const(1.0), ws)
            _record("grad", gs, f, ws)
        in_graph = {id(n) for n in topo_order([gs[i]])}
        ask = []
        for j in missing:
            if id(ws[j]) in in_graph:
                ask.append(j)
            else:
                # a constant gradient named by its row: two rows' may be one node (3 for
                # 3x + 3y), whose record names the other
                name = _d(f, ws[i]) if gs[i].op.name == "const" else None
                row[j] = rows[j][i] = known_zero((), "zero", _no_use(gs[i], ws[j], name))
        if ask:
            again = reverse(gs[i], F.const(1.0), [ws[j] for j in ask])
            for j, h in zip(ask, again):
                row[j] = rows[j][i] = h
    flat = [h for row in rows for h in row]
    known = {id(n) for n in order}
    if has_candidates(_new_nodes(flat, known)):
        it = iter(stabilize(flat))
        rows = [[next(it) for _ in ws] for _ in ws]
    _record_rows(rows, f, ws)
    return rows


def _mirror(h: Expr, wj: Expr, wi: Expr) -> Expr:
    """The block d2f/dwi dwj from the block d2f/dwj dwi (shape wj.shape + wi.shape)."""
    p, q = wj.ndim, wi.ndim
    if p == 0 or q == 0:
        return h  # the same layout either way
    return F.transpose(h, tuple(range(p, p + q)) + tuple(range(p)))
