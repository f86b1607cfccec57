"""Graph-to-graph passes: rebuild a DAG bottom-up through a rewrite, and the stability rewrites.

The stability rewrites replace forms that overflow or lose precision by equal stable ones
(``log(sigmoid(z))`` -> ``-softplus(-z)``, ``bce(sigmoid(z), y)`` -> ``softplus(z) - y*z``, ...).
They run before the gradient pass (so derivatives are built from the stable forms) and before
code generation, and see through transposes and reshapes.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from . import functions as F
from .expr import Expr, keep_checks, make, new_node, unguard
from .graph import no_gc, topo_order
from .ops.base import REGISTRY
from .ops.gram import nonneg
from .ops.leaves import VAR

Rewrite = Callable[[Expr], Expr | None]


def rebuild(outputs: list[Expr], rewrite: Rewrite | None = None,
            order: list[Expr] | None = None,
            replace: dict[int, Expr] | None = None) -> list[Expr]:
    """The outputs rebuilt bottom-up; ``rewrite(node)`` may return a replacement for a node.

    ``rewrite`` sees each node rebuilt on its new operands; ``replace`` (id of a node of the
    outputs' graph -> its replacement) is looked up with the node as it is in that graph, so
    it also finds a node whose operands change. Nodes whose operands did not change are kept
    as they are; names are carried over. ``order``: the outputs' topological order, when the
    caller has it already.
    """
    with no_gc():
        return _rebuild(outputs, rewrite, order, replace or {})


def _rebuild(outputs, rewrite, order, replace) -> list[Expr]:
    if order is None:
        order = topo_order(outputs)
    new: dict[int, Expr] = {}
    for n in order:
        r = replace.get(id(n)) if replace else None
        if r is not None:
            new[id(n)] = r
            continue
        args = n.args
        if args:
            nargs = tuple([new[id(a)] for a in args])
            if nargs != args:  # element by element, identity first (Expr has no __eq__)
                m = make(n.op, nargs, n.attrs)
                core = unguard(m)  # (see ops.Guard)
                if n.name is not None and core.op is n.op and m.name is None:
                    m = m.named(n.name)
                n2 = m
            else:
                n2 = n
        else:
            n2 = n
        if rewrite is not None:
            core = unguard(n2)  # the rewrite sees the value
            r = rewrite(core)
            if r is not None:
                if core.name is not None and r.name is None and r.shape == core.shape \
                        and not r.op.leaf:
                    r = r.named(core.name)
                n2 = r if core is n2 else keep_checks(r, n2.checks)
        new[id(n)] = n2
    return [new[id(o)] for o in outputs]


# ------------------------------------------------------------------ stability
_VIEWS = ("transpose", "reshape", "broadcast_to")
# ops whose value is > 0 everywhere, so log(a/b) = log(a) - log(b)
_POSITIVE = ("exp", "sigmoid", "softplus", "softmax", "dimsize")


def _unviewed(x: Expr) -> tuple[list[Expr], Expr]:
    """(the views around ``x``, outermost first; what they view)."""
    views = []
    while x.op.name in _VIEWS:
        views.append(x)
        x = x.args[0]
    return views, x


def _viewed(views: list[Expr], z: Expr) -> Expr:
    """``z`` under ``views`` (of _unviewed): an elementwise function commutes with them."""
    for v in reversed(views):
        z = make(v.op, (z,), v.attrs)
    return z


def _peel(x: Expr, name: str) -> Expr | None:
    """``z`` with ``x == name(z)``, seeing through views (``T(f(z)) = f(T(z))``), or None."""
    views, x = _unviewed(x)
    return _viewed(views, x.args[0]) if x.op.name == name else None


def _sigmoid_factors(b: Expr, depth: int = 3) -> list[Expr] | None:
    """[u, w, ...] where ``b`` is a product sigmoid(u) sigmoid(w) ... of sigmoids (or
    ``1 - sigmoid``, as _sigmoid_arg reads them), each of b's shape; else None."""
    u = _sigmoid_arg(b)
    if u is not None:
        return [u]
    if not depth or b.op.name != "mul":  # (factors may broadcast: so does the sum of softplus)
        return None
    p = _sigmoid_factors(b.args[0], depth - 1)
    q = _sigmoid_factors(b.args[1], depth - 1) if p else None
    return p + q if q else None


def _sigmoid_arg(x: Expr) -> Expr | None:
    """``z`` with ``x == sigmoid(z)``: a sigmoid or ``1 - sigmoid(z)``, either through views
    (bce((1 - sigmoid(M)).T, Y) was inf where bce(1 - sigmoid(M), Y.T) is finite)."""
    z = _peel(x, "sigmoid")
    if z is not None:
        return z
    views, x = _unviewed(x)
    if x.op.name == "sub" and F.is_const(x.args[0], 1.0):
        z = _peel(x.args[1], "sigmoid")
        if z is not None and z.shape == x.shape:
            return _viewed(views, F.neg(z))  # 1 - sigmoid(z) = sigmoid(-z)
    return None


def _sum_exp(x: Expr) -> Expr | None:
    """logsumexp(z) when ``x`` is sum(exp(z)) (exp seen through views), else None."""
    if x.op.name != "sum":
        return None
    z = _peel(x.args[0], "exp")
    if z is None:
        return None
    return F.logsumexp(z, x.attrs["axis"], x.attrs["keepdims"])


def _positive(x: Expr) -> bool:
    """Whether every entry of ``x`` is provably > 0: the ops of _POSITIVE, ``1 - sigmoid(z)``,
    positive constants, sums of exp, products and quotients of positives, and sums of
    non-negative terms one of which is positive (``1 + exp(y)``, ``y**2 + 1``)."""
    while x.op.name in _VIEWS:
        x = x.args[0]
    if x.op.name in _POSITIVE or _sigmoid_arg(x) is not None:
        return True
    if F.is_const(x):
        v = F.value_of(x)
        return bool(np.all(np.asarray(v) > 0))
    if x.op.name == "add":
        return all(nonneg(a) for a in x.args) and any(_positive(a) for a in x.args)
    if x.op.name in ("mul", "div"):
        return all(_positive(a) for a in x.args)
    if x.op.name == "pow":  # a positive base to any power (log(exp(z)/(1 + exp(z))**2))
        return _positive(x.args[0])
    return x.op.name == "sum" and _peel(x.args[0], "exp") is not None


def _fit(e: Expr, shape) -> Expr:
    return e if e.shape == tuple(shape) else F.broadcast_to(e, shape)


def _number_apart(x: Expr) -> tuple[Expr | None, Expr]:
    """(c, y) with x = c y for a number c, or (None, x) (the builder puts a number first)."""
    if x.op.name == "mul" and F.is_scalar_const(x.args[0]):
        return x.args[0], x.args[1]
    return None, x


def _stable_log(x: Expr, through_div: bool = True) -> Expr | None:
    """A stable form of log(x), or None (views are peeled off and put back on the result)."""
    views, x = _unviewed(x)  # log(T(x)) = T(log(x))
    r = _stable_log_core(x, through_div)
    return None if r is None else _viewed(views, r)


def _stable_log_core(x: Expr, through_div: bool) -> Expr | None:
    op = x.op.name
    z = _sigmoid_arg(x)
    if z is not None:  # log(sigmoid(z)) = -softplus(-z)
        return _fit(F.neg(F.softplus(F.neg(z))), x.shape)
    z = _peel(x, "exp")
    if z is not None:  # log(exp(z)) = z, also where exp(z) overflows
        return z
    z = _peel(x, "softplus")
    if z is not None:  # where softplus(z) underflows to 0 (z < -745), its log is z
        return _fit(make(REGISTRY["log_softplus"], (z,)), x.shape)
    if op == "add":
        a, b = x.args
        for one, other in ((a, b), (b, a)):
            if F.is_const(one, 1.0):
                z = _peel(other, "exp")
                if z is not None:  # log(1 + exp(z)) = softplus(z)
                    return _fit(F.softplus(z), x.shape)
                c, e = _number_apart(other)  # log(1 + c exp(z)) = softplus(z + log(c)), c > 0
                z = _peel(e, "exp") if c is not None else None
                v = F.value_of(c) if z is not None else None
                if isinstance(v, (int, float)) and v > 0:
                    return _fit(F.softplus(F.add(z, math.log(v))), x.shape)
    if op == "pow" and F.is_const(x.args[1]) and x.args[1].ndim == 0 and _positive(x.args[0]):
        lb = _stable_log(x.args[0], through_div)  # log(a**p) = p log(a) for a > 0: the log of
        if lb is not None:  # softplus(z)**2 was -inf below z = -373, where softplus**2 underflows
            return _fit(F.mul(x.args[1], lb), x.shape)
    if op == "div" and F.is_const(x.args[0], 1.0):
        # log(1/b) = -log(b), b being positive where it has a stable log: log(a (1/b)) as
        # log(a/b) (log(sigmoid(z) (1/exp(z))) was -inf at z = 1000)
        lb = _stable_log(x.args[1], False)
        if lb is not None:
            return _fit(F.neg(lb), x.shape)
    lse = _sum_exp(x)
    if lse is not None:
        return lse
    if op == "softmax":
        return F.log_softmax(x.args[0], x.attrs["axis"])
    if op == "mul":  # log(c a) = log(c) + log(a) for a constant c > 0: the sum of a broadcast
        a, b = x.args  # exp(u) is built as count * sum(exp(u)), whose log is then stable
        for c, other in ((a, b), (b, a)):
            v = F.value_of(c) if F.is_const(c) else None
            if v is not None and not isinstance(v, np.ndarray) and v > 0:
                lo = _stable_log(other, through_div)
                if lo is not None:
                    return _fit(F.add(F.log(c), lo), x.shape)
        # log(a b) = log(a) + log(b) for a, b > 0, one of them a form above: sigmoid(z) exp(y)
        # (a quotient among them too: ((1 - sigmoid(z))/2) exp(-y), what (1 - sigmoid(z)) /
        # (2 exp(y)) becomes)
        la, lb = _stable_log(a), _stable_log(b)
        if (la is not None or lb is not None) and _positive(a) and _positive(b):
            return _fit(F.add(la if la is not None else F.log(a),
                              lb if lb is not None else F.log(b)), x.shape)
    if op == "div" and through_div:  # log(a/b) = log(a) - log(b) for a, b > 0
        a, b = x.args
        la, lb = _stable_log(a, False), _stable_log(b, False)
        if (la is not None or lb is not None) and _positive(a) and _positive(b):
            return _fit(F.sub(la if la is not None else F.log(a),
                              lb if lb is not None else F.log(b)), x.shape)
    return None


def _summed_exp(b: Expr) -> Expr | None:
    """``z`` where ``b`` is sum(exp(z)) (through a reshape and broadcasts), else None."""
    while b.op.name == "broadcast_to":
        b = b.args[0]
    s = b.args[0] if b.op.name == "reshape" else b
    return _peel(s.args[0], "exp") if s.op.name == "sum" else None


def _sum_of_exp_like(b: Expr, z: Expr) -> tuple | None:
    """The axes when ``b`` broadcasts like ``sum(exp(z), axes, keepdims=True)``, else None."""
    while b.op.name == "broadcast_to":
        b = b.args[0]
    s = b.args[0] if b.op.name == "reshape" else b
    if s.op.name != "sum" or _peel(s.args[0], "exp") is not z:
        return None
    axes = s.attrs["axis"]
    kd = tuple(1 if i in axes else d for i, d in enumerate(z.shape))
    if b is not s:  # a reshape: it must lay the sums out as keepdims does (a (1, n) sum
        # reshaped to (n, 1) scales rows, not columns), or hold one sum of everything (a
        # reshape to (n,) is built as the sum without keepdims: below)
        return axes if b.shape == kd or len(axes) == z.ndim else None
    if s.attrs["keepdims"] or len(axes) == z.ndim:
        return axes
    if b is s and axes == tuple(range(len(axes))):
        return axes  # leading axes summed away: numpy broadcasts the rest back in place
    return None


def _affine(e: Expr, depth: int = 4) -> tuple[dict, float] | None:
    """``e`` as a sum of terms times numbers plus a number: ({id: (term, coefficient)}, k),
    reading +, -, negation and products with a number (None past ``depth`` levels)."""
    name = e.op.name
    if F.is_scalar_const(e):
        v = F.value_of(e)
        return ({}, float(v)) if isinstance(v, (int, float)) else None
    if depth > 0 and name in ("add", "sub"):
        p, q = _affine(e.args[0], depth - 1), _affine(e.args[1], depth - 1)
        if p is None or q is None:
            return None
        sign = 1.0 if name == "add" else -1.0
        terms = dict(p[0])
        for k, (t, c) in q[0].items():
            terms[k] = (t, terms.get(k, (t, 0.0))[1] + sign * c)
        return terms, p[1] + sign * q[1]
    if depth > 0 and name == "neg":
        p = _affine(e.args[0], depth - 1)
        return None if p is None else ({k: (t, -c) for k, (t, c) in p[0].items()}, -p[1])
    if depth > 0 and name == "mul":
        for c, x in ((e.args[0], e.args[1]), (e.args[1], e.args[0])):
            if F.is_scalar_const(c) and isinstance(F.value_of(c), (int, float)):
                p = _affine(x, depth - 1)
                if p is None:
                    return None
                v = float(F.value_of(c))
                return {k: (t, v * cf) for k, (t, cf) in p[0].items()}, v * p[1]
    return {id(e): (e, 1.0)}, 0.0


def _constant_apart(w: Expr, u: Expr) -> float | None:
    """k where w = u + k for a number k, read by _affine (exp(2 - z) against exp(-z), whose
    constants the builder folds: 2 - z is no sum with -z in it), else None."""
    pw, pu = _affine(w), _affine(u)
    if pw is None or pu is None:
        return None
    tw = {k: c for k, (_, c) in pw[0].items()}
    tu = {k: c for k, (_, c) in pu[0].items()}
    return pw[1] - pu[1] if tw == tu else None  # (a - a is 0 once built: no zero terms)


def _exp_cofactor(a: Expr, u: Expr, depth: int = 4) -> Expr | None:
    """``c`` with ``a == c exp(u)``, where ``a`` is exp(u), exp(u + k), exp(u - k), exp(w)
    with u = w + k, exp(w) with w - u a number however written (2 - z against -z), or a
    product or negation with such a factor (``c`` is the constant 1 for exp(u)); else None."""
    w = _peel(a, "exp")
    if w is not None:
        if w is u:
            return F.const(1.0)
        if w.shape != u.shape:
            return None
        k = None  # exp(w) = exp(k) exp(u)
        if w.op.name in ("add", "sub"):  # w = u + k
            p, q = w.args
            if p is u:
                k = q if w.op.name == "add" else F.neg(q)
            elif q is u and w.op.name == "add":
                k = p
        if k is None and u.op.name in ("add", "sub"):  # u = w - k
            p, q = u.args
            if p is w:
                k = F.neg(q) if u.op.name == "add" else q
            elif q is w and u.op.name == "add":
                k = F.neg(p)
        if k is None:  # w = u + k, written otherwise (2 - z and -z; -2z and -(2z))
            kc = _constant_apart(w, u)
            k = None if kc is None else F.const(kc)
        if k is None or F.is_scalar_const(k) and abs(float(F.value_of(k))) > 700:
            return None  # (exp(800) sigmoid(u) is inf 0 where exp(u + 800)/(1 + exp(u)) is not)
        return F.exp(k)
    if depth == 0:
        return None
    if a.op.name == "neg":
        c = _exp_cofactor(a.args[0], u, depth - 1)
        return None if c is None else F.neg(c)
    if a.op.name == "mul":
        p, q = a.args
        for f, other in ((p, q), (q, p)):
            c = _exp_cofactor(f, u, depth - 1)
            if c is not None:
                return other if F.is_const(c, 1.0) else F.mul(c, other)
    return None


# a constant factor beyond these is out of float32's range (or its normal numbers) or near it:
# multiplied into a float32 array it is inf (or 0), so it goes into the exponent instead
_SAFE_FACTOR = (1e-30, 1e30)


def _log_abs(c: Expr, depth: int = 3) -> tuple[float, float] | None:
    """(sign, log|c|) for a constant c built of numbers and exps of numbers (exp(100) is not
    folded: 2 exp(100)), else None."""
    if F.is_scalar_const(c):
        v = F.value_of(c)
        if isinstance(v, (int, float)) and v != 0 and math.isfinite(v):
            return math.copysign(1.0, v), math.log(abs(v))
        return None
    if depth == 0:
        return None
    if c.op.name == "exp" and F.is_scalar_const(c.args[0]):
        k = F.value_of(c.args[0])
        return (1.0, float(k)) if isinstance(k, (int, float)) else None
    if c.op.name == "neg":
        r = _log_abs(c.args[0], depth - 1)
        return None if r is None else (-r[0], r[1])
    if c.op.name == "mul":
        p, q = _log_abs(c.args[0], depth - 1), _log_abs(c.args[1], depth - 1)
        return None if p is None or q is None else (p[0] * q[0], p[1] + q[1])
    return None


def _scaled(c: Expr, s: Expr, log_s: Callable[[], Expr]) -> Expr:
    """c s for a cofactor c of _exp_cofactor and a stable form s (a sigmoid, a softmax);
    ``log_s`` gives s's stable log. A constant c beyond _SAFE_FACTOR (exp(100), a shift of
    100: inf in float32, where exp(100) sigmoid(z) at z = -150 is 1.9e-22) is exp(log|c| +
    log s) with c's sign, and so is an exp of a variable shift, n exp(q) s = n exp(q + log s)."""
    if F.is_const(c, 1.0):
        return s
    # a shift that is no number, exp(q) s, is exp(q + log s) (and x exp(q) s is x exp(q +
    # log s)): sigmoid(x)/exp(x + y), as exp(-y) sigmoid(-x), was inf 0 = nan at (800, -800)
    # where it is 1
    e = _exps_into(c, log_s(), only_variable=True)
    if e is not None:
        return e
    r = _log_abs(c)
    if r is not None and not math.log(_SAFE_FACTOR[0]) <= r[1] <= math.log(_SAFE_FACTOR[1]):
        e = F.exp(F.add(log_s(), r[1]))
        return e if r[0] > 0 else F.neg(e)
    return F.mul(c, s)


def _has_exp(a: Expr, depth: int = 4) -> bool:
    """Whether ``a`` may be c exp(u) for _exp_cofactor (cheap: no node is built)."""
    while a.op.name in _VIEWS:
        a = a.args[0]
    name = a.op.name
    if name == "exp":
        return True
    if depth == 0:
        return False
    if name == "neg":
        return _has_exp(a.args[0], depth - 1)
    if name == "mul":
        return _has_exp(a.args[0], depth - 1) or _has_exp(a.args[1], depth - 1)
    return False


def over_one_plus_exp(a: Expr, b: Expr) -> Expr | None:
    """a / b where ``b`` is 1 + exp(u) (either order, exp seen through views), in a stable
    form: c sigmoid(u) for a = c exp(u) (see _exp_cofactor), else a sigmoid(-u); None for
    another ``b``. (Not fitted to the quotient's shape.)"""
    u = _one_plus_exp_arg(b)
    if u is None:
        return None
    # c exp(u) / (1 + exp(u)) is c sigmoid(u): as c exp(u) sigmoid(-u) it was nan at u = 800
    # (inf 0), and its derivative took sigmoid(-u)' as -sigmoid(u) (1 - sigmoid(u)), whose
    # rounding exp(u) made 0.1 at u = 35
    c = _exp_cofactor(a, u)
    if c is None:
        s = F.sigmoid(F.neg(u))
        return s if F.is_const(a, 1.0) else F.mul(a, s)
    return _scaled(c, F.sigmoid(u), lambda u=u: F.neg(F.softplus(F.neg(u))))


def _split_exps(a: Expr, depth: int = 4):
    """Each (c, w) with ``a == c exp(w)``: ``a`` an exp (through views), or a negation or
    product with exp factors (one pair per factor)."""
    w = _peel(a, "exp")
    if w is not None:
        yield F.const(1.0), w
        return
    if depth and a.op.name == "neg":
        for c, w in _split_exps(a.args[0], depth - 1):
            yield F.neg(c), w
    elif depth and a.op.name == "mul":
        for f, other in ((a.args[0], a.args[1]), (a.args[1], a.args[0])):
            for c, w in _split_exps(f, depth - 1):
                yield (other if F.is_const(c, 1.0) else F.mul(c, other)), w


def _exps_into(c: Expr, t: Expr, only_variable: bool = False) -> Expr | None:
    """c exp(t) with every exp factor of c (up to four) taken into the exponent: c' exp(t + w1
    + w2 ...), where c = c' exp(w1) exp(w2) ...; with ``only_variable``, None unless one of
    them has an exponent that is no number (a number's exp is _scaled's business)."""
    found = False
    for _ in range(4):
        split = next(_split_exps(c), None)
        if split is None:
            break
        c, w = split
        found = found or not F.is_scalar_const(w)
        t = F.add(w, t)
    else:
        return None
    if only_variable and not found:
        return None
    e = F.exp(t)
    return e if F.is_const(c, 1.0) else F.mul(c, e)


def _multiple_of(w: Expr, u: Expr) -> tuple[float, float] | None:
    """(j, k) with w = j u + k for numbers j, k (read by _affine), else None."""
    pw, pu = _affine(w), _affine(u)
    if pw is None or pu is None:
        return None
    # (terms that cancel stay with a coefficient 0: (y + x) - y is {y: 0, x: 1})
    tw = {i: c for i, (_, c) in pw[0].items() if c}
    tu = {i: c for i, (_, c) in pu[0].items() if c}
    if not tu or tw.keys() != tu.keys():
        return None
    j = tw[next(iter(tu))] / tu[next(iter(tu))]
    if any(tw[i] != j * c for i, c in tu.items()):
        return None
    return j, pw[1] - j * pu[1]


def _over_one_plus_exp_power(a: Expr, b: Expr, m: int) -> Expr | None:
    """a / (1 + exp(u))**m for m = 2 or 3 as a product of m sigmoids: c exp(j u + k) over it,
    j = 0 ... m, is c exp(k) sigmoid(u)**j sigmoid(-u)**(m - j). sympy writes the derivatives
    of a sigmoid so (exp(-x)/(1 + exp(-x))**2, 2 exp(-2x)/(1 + exp(-x))**3): read back, they
    were inf/inf = nan at x = -800. (Not fitted to the quotient's shape.)"""
    u = _one_plus_exp_arg(b)
    return None if u is None else _over_sigmoid_power(a, u, m)


def _one_plus_exp_arg(b: Expr) -> Expr | None:
    """u where ``b`` is 1 + exp(u) (either order, exp through views), else None."""
    if b.op.name != "add":
        return None
    for one, other in ((b.args[0], b.args[1]), (b.args[1], b.args[0])):
        if F.is_const(one, 1.0):
            return _exp_arg(other)
    return None


def _exp_arg(x: Expr) -> Expr | None:
    """u where ``x`` is exp(u) (through views), or c exp(w) for a number c > 0 (u = w + log c:
    sympy's factor and cancel write exp(z + 2) as exp(2) exp(z), and 1/(1 + exp(2) exp(z))
    was no sigmoid, its gradient nan at z = 800); else None."""
    u = _peel(x, "exp")
    if u is not None or x.op.name != "mul":
        return u
    for c, e in (x.args, x.args[::-1]):
        w = _peel(e, "exp")
        if w is None:
            continue
        if F.is_scalar_const(c) and isinstance(F.value_of(c), float) and \
                0 < F.value_of(c) < math.inf:
            return F.add(w, F.const(math.log(F.value_of(c))))
        k = _peel(c, "exp")  # (exp(2) exp(z), as from_sympy reads sympy's E**2*exp(z))
        if k is not None and F.is_scalar_const(k):
            return F.add(w, k)
    return None


def _over_sigmoid_power(a: Expr, u: Expr, m: int, need_exp: bool = False) -> Expr | None:
    """a / (1 + exp(u))**m = a sigmoid(-u)**m, as _over_one_plus_exp_power writes it; with
    ``need_exp``, None unless ``a`` has an exp factor to combine."""
    c, j, k, seen = a, 0, 0.0, False
    for ce, w in _split_exps(a):  # (the exp factor that is a multiple of u: of exp(y) exp(-x)
        seen = True  # over (1 + exp(-x))**2, exp(-x), whichever comes first)
        jk = _multiple_of(w, u)
        # (j whole from 0 to m; exp(k) beyond float32's range is left to the other rules)
        if jk is not None and jk[0] == round(jk[0]) and 0 <= jk[0] <= m and abs(jk[1]) <= 30:
            c, j, k = ce, int(jk[0]), jk[1]
            break
    else:
        if seen or need_exp:
            return None
    if k:
        c = F.mul(c, F.const(math.exp(k)))
    r = None if F.is_const(c, 1.0) else c
    for f in [F.sigmoid(u)] * j + [F.sigmoid(F.neg(u))] * (m - j):
        r = f if r is None else F.mul(r, f)
    return r


def _stable_div(n: Expr, spread: bool) -> Expr | None:
    """exp(z) / sum(exp(z)) -> softmax(z); a / (1 + exp(-z)) -> a sigmoid(z);
    c exp(z) / (1 + exp(z)) -> c sigmoid(z); exp(u) / sum(exp(z)) -> exp(u - logsumexp(z))
    (``spread``: whether the graph may divide by a summed exp at all; see _spreads)."""
    r = _stable_quotient(n.args[0], n.args[1], n.shape)
    return r if r is not None or not spread else _spread_summed_exp(n)


def _stable_quotient(a: Expr, b: Expr, shape, depth: int = 3) -> Expr | None:
    """A stable form of a / b (of shape ``shape``), or None; ``depth``: how many sums and
    products of ``a`` to look into for a numerator over a summed exp."""
    if a.op.name == "div" and b.op.name == "div" and a.args[1] is b.args[1] and (
            b.args[1].op.name == "dimsize" or F.is_const(b.args[1]) and b.args[1].ndim == 0
            and F.value_of(b.args[1]) != 0):
        # (a/n) / (b/n) = a/b: mean(exp(z) w) / mean(exp(z)) is the weighted mean below
        q = _stable_quotient(a.args[0], b.args[0], shape)
        if q is not None:
            return q
    if depth and b.op.name == "transpose" and b.args[0].op.name == "sum" and \
            b.args[0].attrs["keepdims"] and _peel(b.args[0].args[0], "exp") is not None:
        # a transposed sum of exp that keeps its axes is the sum of the transposed exp
        # (exp(Z) / sum(exp(Z.T), 0, keepdims=True).T was nan where exp overflows)
        s, perm = b.args[0], b.attrs["axes"]
        axes = tuple(i for i, p in enumerate(perm) if p in s.attrs["axis"])
        return _stable_quotient(a, F.sum(F.transpose(s.args[0], perm), axes, keepdims=True),
                                shape, depth - 1)
    z = _summed_exp(b)
    if z is not None and z.shape == shape and z.ndim:
        axes = _sum_of_exp_like(b, z)
        c = _exp_cofactor(a, z) if axes is not None else None
        if c is not None:  # c exp(z) / sum(exp(z)): c softmax(z) (2 exp(z), exp(z + 1))
            return _fit(_scaled(c, F.softmax(z, axes), lambda: F.log_softmax(z, axes)), shape)
    if a.op.name == "sum" and b.op.name == "sum" and a.attrs["axis"] == b.attrs["axis"]:
        # sum(exp(z) w) / sum(exp(z)), a weighted mean (attention) as the builder leaves
        # sum(exp(z) * w * c) / sum(exp(z)): sum(softmax(z) w) (nan where exp(z) overflows)
        z = _peel(b.args[0], "exp")
        m = a.args[0]
        # (keepdims may differ where the sum has one entry: the builder drops a (1, 1) one's)
        same = a.attrs["keepdims"] == b.attrs["keepdims"] or \
            z is not None and len(b.attrs["axis"]) == z.ndim
        if z is not None and z.ndim and same and m.op.name == "mul" and m.shape == z.shape:
            p, q = m.args
            for e, w in ((p, q), (q, p)):
                if _peel(e, "exp") is z:
                    sm = F.softmax(z, b.attrs["axis"])
                    return _fit(F.sum(F.mul(sm, w), b.attrs["axis"], b.attrs["keepdims"]),
                                shape)
    if depth and b.ndim == 0 and a.op.name in ("sum", "mul") and z is not None:
        # sum(x) / s = sum(x / s) and (x y) / s = (x / s) y for a number s, a summed exp: the
        # builder takes a number out of a sum and a product (sum(exp(v) (1/sum(exp(v)))) was
        # sum(exp(v)) / sum(exp(v)), inf/inf; sum((exp(v) @ B) w) / sum(exp(v)) likewise)
        if a.op.name == "sum":
            inner = _stable_quotient(a.args[0], b, a.args[0].shape, depth - 1)
            if inner is not None:
                return _fit(F.sum(inner, a.attrs["axis"], a.attrs["keepdims"]), shape)
        else:
            p, q = a.args
            for x, y in ((p, q), (q, p)):
                inner = _stable_quotient(x, b, x.shape, depth - 1)
                if inner is not None:
                    return _fit(F.mul(inner, y), shape)
    if a.op.name == "matmul" and z is not None and z.ndim in (1, 2) and a.shape == shape:
        # (a.shape: (exp(Z) @ v) / rowsums for a vector v broadcasts to (m, m), no softmax)
        # exp(z) @ B / sum(exp(z)) (rows of z: sum over its last axis, keepdims) is
        # softmax(z) @ B, and A @ exp(z) / sum(exp(z), axis=0) is A @ softmax(z, axis=0):
        # attention written out, nan where exp(z) overflows
        axes = _sum_of_exp_like(b, z)
        p, q = a.args
        if axes == (z.ndim - 1,) and _peel(p, "exp") is z:
            return _fit(F.matmul(F.softmax(z, axes), q), shape)
        if axes == (0,) and _peel(q, "exp") is z:
            return _fit(F.matmul(p, F.softmax(z, axes)), shape)
    us = _sigmoid_factors(b)
    if us:  # a / (sigmoid(u) sigmoid(w) ...) = a exp(softplus(-u) + softplus(-w) + ...): the
        # quotient rule's sigmoid(u)**2 underflowed (the gradient of y/sigmoid(z) was -inf at
        # z = -400), and 1/(sigmoid(z) (1 - sigmoid(z))) was inf at z = 40 for 2.4e17
        t = F.softplus(F.neg(us[0]))
        for w in us[1:]:
            t = F.add(t, F.softplus(F.neg(w)))
        # a's exp factors go into the exponent: exp(x + y) over sigmoid(x) sigmoid(y) is 1 at
        # -360, where exp(-720) exp(720) is 0 inf; so is exp(x) exp(y) over them, each of them
        r = _exps_into(a, t)
        return None if r is None else _fit(r, shape)
    if _peel(b, "exp") is not None:
        # c sigmoid(u) / exp(w) for exp(w) = e exp(u): (c/e) sigmoid(-u), whose log is stable
        # (log(sigmoid(z)/exp(z)) was 0 at z = -200, as -softplus(-z) - z, where -softplus(z)
        # is -1.4e-87)
        c, s = _number_apart(a)
        u = _sigmoid_arg(s)
        e = _exp_cofactor(b, u) if u is not None else None
        if e is not None:
            k = F.const(1.0) if F.is_const(e, 1.0) else F.exp(F.neg(e.args[0]))
            k = k if c is None else F.mul(c, k)
            return _fit(_scaled(k, F.sigmoid(F.neg(u)), lambda: F.neg(F.softplus(u))), shape)
    c, e = _number_apart(b)
    w = _peel(e, "exp")
    if w is not None and (c is None or F.value_of(c) != 0):
        # a / (c exp(w)) = (a/c) exp(-w): the quotient rule's a exp(w)/exp(w)**2 overflowed
        # where exp(-w) does not (the gradient of y/exp(z) was -inf at z = -400, -1e174)
        num = a if c is None else F.div(a, c)
        r = _log_abs(num) if not F.is_const(num, 1.0) else None
        if r is not None:  # a number over exp(w): exp(log|num| - w), whose exp(-w) alone may
            e = F.exp(F.sub(r[1], w))  # be subnormal (1e30/exp(z) at z = 100 in float32 was
            return _fit(e if r[0] > 0 else F.neg(e), shape)  # 2 % off, 3.78e-14 for 3.72e-14)
        return _fit(F.mul(num, F.exp(F.neg(w))), shape)
    if b.op.name == "pow" and F.is_scalar_const(b.args[1]) and \
            F.value_of(b.args[1]) in (2.0, 3.0):
        r = _over_one_plus_exp_power(a, b.args[0], int(F.value_of(b.args[1])))
        if r is not None:
            return _fit(r, shape)
    r = over_one_plus_exp(a, b)
    return None if r is None else _fit(r, shape)


# ops through which a product is linear in each operand it is walked into: a number 1/s
# moves from one factor to another (the numerator of a quotient: x/d is linear in x)
_MULTILINEAR = frozenset(("mul", "matmul", "outer", "neg", "sum", "div") + _VIEWS)


def _summed_exp_power(b: Expr) -> tuple[Expr, int] | None:
    """(z, k) where ``b`` is sum(exp(z))**k, a number (z summed whole), k = 1, 2 or 3."""
    k = 1
    if b.op.name == "pow" and F.is_scalar_const(b.args[1]):
        kv = F.value_of(b.args[1])
        if kv not in (1.0, 2.0, 3.0):
            return None
        k, b = int(kv), b.args[0]
    if b.ndim or b.op.name != "sum":
        return None
    z = _peel(b.args[0], "exp")
    return None if z is None else (z, k)


def _over_summed_exp(n: Expr, depth: int, found: list) -> None:
    """Collect into ``found`` the factors of the product ``n`` that divide by a summed exp
    s = sum(exp(z)) (("s", node, z, k): x/s**k, s**-k) and its exp factors (("exp", node))."""
    op = n.op.name
    if op == "exp":
        found.append(("exp", n))
        return
    if not depth or op not in _MULTILINEAR and op != "pow":
        return
    if op == "pow":
        if F.is_scalar_const(n.args[1]) and F.value_of(n.args[1]) in (-1.0, -2.0, -3.0):
            zk = _summed_exp_power(n.args[0])
            if zk is not None:  # ((s**k)**-p: k p factors 1/s)
                found.append(("s", n, zk[0], -int(F.value_of(n.args[1])) * zk[1]))
        return
    if op == "div":
        zk = _summed_exp_power(n.args[1])
        if zk is not None:
            found.append(("s", n, zk[0], zk[1]))
        _over_summed_exp(n.args[0], depth - 1, found)
        return
    for a in (n.args if op in ("mul", "matmul", "outer") else n.args[:1]):
        _over_summed_exp(a, depth - 1, found)


def _exp_units(u: Expr) -> int:
    """How many factors 1/sum(exp(z)) exp(u) takes in: c for u = c w with c = 2 or 3 (exp(2 z)
    / s**2 is exp(2 (z - lse(z)))), else 1."""
    if u.op.name == "mul" and F.is_scalar_const(u.args[0]) and F.value_of(u.args[0]) in (2.0, 3.0):
        return int(F.value_of(u.args[0]))
    return 1


def _taken(u: Expr, lse: Expr) -> int:
    """How many factors 1/exp(lse) exp(u) has taken in already: 1 for u = w - lse, c for
    u = w - c lse (as _spread_summed_exp writes them), else 0."""
    if u.op.name != "sub":
        return 0
    t = u.args[1]
    if t is lse:
        return 1
    if t.op.name == "mul" and t.args[1] is lse and F.is_scalar_const(t.args[0]):
        return int(F.value_of(t.args[0]))
    return 0


def _as_softmax(u: Expr, z: Expr, take: int) -> Expr | None:
    """exp(u)/sum(exp(z))**take as a softmax of z, where u is z (through views), an entry of
    z, or take z: exact, where exp(u - logsumexp(z)) carries |logsumexp(z)| ulps (2e-4 in
    float32 at logits of 1e4); else None."""
    if not z.ndim:
        return None
    sm = F.softmax(z, tuple(range(z.ndim)))
    if take > 1:
        if u.op.name != "mul" or not F.is_const(u.args[0], float(take)):
            return None
        u = u.args[1]
    views, w = _unviewed(u)
    if w is z:
        r = _viewed(views, sm)
    elif w.op.name == "take" and w.args[0] is z:
        r = _viewed(views, make(w.op, (sm,) + w.args[1:], w.attrs))
    else:
        return None
    return r if take == 1 else F.power(r, float(take))


def _spread_summed_exp(n: Expr) -> Expr | None:
    """A product over powers of a summed exp s = sum(exp(z)) with each 1/s taken into one of
    its exp factors: exp(u)/s is exp(u - logsumexp(z)), exp(u) exp(w)/s**2 is
    exp(u - lse) exp(w - lse). sympy writes softmax(v)[0] as exp(v[0])/sum(exp(v)), its dot
    with w as exp(v)^T w/sum(exp(v)), the Hessian of logsumexp with an exp(v) exp(v)^T/s**2:
    inf/inf = nan at v = 800 read back from sympy. Where u is z, an entry of z or 2 z, the
    factor is the softmax itself (softmax(v)[0], exact). Each exp factor takes one (exp(2u)
    two, each counted where it occurs), and the product is left as written (None) where the
    factors 1/s outnumber what they take."""
    found: list = []
    _over_summed_exp(n, 6, found)
    dens = [f for f in found if f[0] == "s"]
    if not dens or any(f[2] is not dens[0][2] for f in dens):
        return None
    z = dens[0][2]
    units = sum(f[3] for f in dens)
    uses: dict[int, list] = {}
    for f in found:
        if f[0] == "exp":
            uses.setdefault(id(f[1]), [f[1], 0])[1] += 1
    lse = F.logsumexp(z)
    placed: dict[int, int] = {}
    for e, times in uses.values():
        # (an exp this rule has made, exp(u - lse), is full: exp(u)/s * exp(w)/s, rewritten
        # inner quotient first, put both 1/s into exp(u) and gave exp(u - 2 lse) exp(w), 0 inf)
        take = min(_exp_units(e.args[0]) - _taken(e.args[0], lse), units // times)
        if take > 0:
            placed[id(e)] = take
            units -= take * times
    # (not more into one exp than it takes, even a lone one: the graph is rewritten inner
    # products first, and exp(v) exp(v)^T/s**2, written (exp(v)/s**2) exp(v)^T, had put both
    # into the inner exp(v), 0 inf in the outer product)
    if units:
        return None
    repl: dict[int, Expr] = {}
    for e, _ in uses.values():
        take = placed.get(id(e))
        if take:
            r = _as_softmax(e.args[0], z, take)
            repl[id(e)] = r if r is not None else \
                F.exp(F.sub(e.args[0], lse if take == 1 else F.mul(float(take), lse)))
    for f in dens:  # x/s**k is x, s**-k is 1
        repl[id(f[1])] = F.const(1.0) if f[1].op.name == "pow" else None
    return _respread(n, 6, repl)


def _respread(n: Expr, depth: int, repl: dict) -> Expr:
    """``n`` rebuilt along the walk of _over_summed_exp with the nodes of ``repl`` replaced
    where that walk found them (a quotient mapped to None by its numerator)."""
    op = n.op.name
    if op == "exp":
        return repl.get(id(n), n)
    if not depth or op not in _MULTILINEAR and op != "pow":
        return n
    if id(n) in repl:
        r = repl[id(n)]
        return _respread(n.args[0], depth - 1, repl) if r is None else r
    if op == "pow":
        return n
    k = 2 if op in ("mul", "matmul", "outer") else 1
    args = tuple(_respread(a, depth - 1, repl) for a in n.args[:k]) + n.args[k:]
    return n if all(a is b for a, b in zip(args, n.args)) else make(n.op, args, n.attrs)


# the ops a factor of a product _stable_mul rewrites may have at its top (a cheap first look:
# this runs for every product of every graph derived or compiled)
_MUL_FACTORS = frozenset(("div", "pow", "sigmoid", "sub") + _VIEWS)


def _reciprocal(r: Expr) -> tuple[Expr | None, Expr] | None:
    """(c, b) where ``r`` is c/b for a number c (None for 1): 1/b, b**-1, c/b, c b**-1 and
    c (1/b), also under views (the builder folds a number into a reciprocal: 2 exp(v) (1/s)
    is (2/s) exp(v), and 2 exp(v) s**-1 is (2 s**-1) exp(v)); else None."""
    c, r = _number_apart(r)
    # (1/b) viewed is 1/(b viewed): a (1, 1) sum is reshaped to a scalar to scale a matrix
    views, r = _unviewed(r)
    if r.op.name == "div" and F.is_scalar_const(r.args[0]):
        den = r.args[1]
        if not F.is_const(r.args[0], 1.0):  # (c (c'/b) under a view: 2 reshape(3/s))
            c = r.args[0] if c is None else F.mul(c, r.args[0])
    elif r.op.name == "pow" and F.is_const(r.args[1], -1.0) and r.shape == r.args[0].shape:
        den = r.args[0]  # (an array of -1 may broadcast b: its views are no views of b)
    else:
        return None
    return c, _viewed(views, den)


def _stable_mul(n: Expr, spread: bool) -> Expr | None:
    """a * (1/b) (or b**-1, or c/b) as _stable_div's a / b: sympy writes a quotient so, and
    from_sympy(to_sympy(softmax(v))) was exp(v) (1/sum(exp(v))), nan at v = 1000; and
    c exp(u) * sigmoid(-u) -> c sigmoid(u)."""
    a, b = n.args
    # a first look by op names, without a call (this runs for every product): a factor of
    # _MUL_FACTORS, or a constant times one (the builder folds numbers into reciprocals)
    an, bn = a.op.name, b.op.name
    if an not in _MUL_FACTORS and bn not in _MUL_FACTORS and not (
            an == "mul" and a.args[0].op.name == "const" and
            a.args[1].op.name in _MUL_FACTORS) and not (
            bn == "mul" and b.args[0].op.name == "const" and b.args[1].op.name in _MUL_FACTORS) \
            and not (an == "mul" and bn == "exp" or an == "exp" and bn == "mul"):
        # (a product of products may still divide by a summed exp deeper down)
        return _spread_summed_exp(n) if spread and (an in _MULTILINEAR or bn in _MULTILINEAR) \
            else None
    for r, other in ((b, a), (a, b)):
        rp = r
        while rp.op.name == "broadcast_to":  # (an elementwise product: the broadcast is _fit's;
            rp = rp.args[0]  # one the builder hoists out of the product: see _stabilize_node)
        if rp.op.name == "pow" and F.is_scalar_const(rp.args[1]):
            m = F.value_of(rp.args[1])
            q = None
            if m in (-2.0, -3.0):  # a (1 + exp(u))**-m, as sympy writes it
                q = _over_one_plus_exp_power(other, rp.args[0], -int(m))
            elif m in (2.0, 3.0) and rp.args[0].op.name == "sigmoid":  # c exp(j u) sigmoid(-u)**m
                # (what _stable_pow makes of a bare (1 + exp(u))**-m, rewritten first)
                q = _over_sigmoid_power(other, F.neg(rp.args[0].args[0]), int(m), need_exp=True)
            if q is not None:
                return _fit(q, n.shape)
        rc = _reciprocal(r)
        if rc is not None:
            c, den = rc
            num = other
            if c is not None:  # a (c/b) = (c a)/b, built only where a rule may take it
                num = F.mul(c, other) if _summed_exp(den) is not None or \
                    den.op.name == "add" else None
            q = None if num is None else _stable_quotient(num, den, n.shape)
            if q is not None:
                return q
        # c exp(u) sigmoid(-u) = c sigmoid(u): exp(z) * (1/(1 + exp(z))), whose reciprocal
        # is rewritten first (sigmoid(-z)), was inf 0 = nan at z = 1000; so was
        # exp(z) (1 - sigmoid(z)), 1 - sigmoid(z) being sigmoid(-z), and exp(z) (2/(1 + exp(z)))
        # (2 sigmoid(-z) once its quotient is rewritten)
        k, r = _number_apart(r)
        has = _has_exp(other)
        if has and k is not None and r.op.name == "pow" and r.args[0].op.name == "sigmoid" \
                and F.is_scalar_const(r.args[1]) and F.value_of(r.args[1]) in (2.0, 3.0):
            # (3 sigmoid(-u)**2 exp(u): the number hid the power from the look above)
            q = _over_sigmoid_power(other, F.neg(r.args[0].args[0]), int(F.value_of(r.args[1])),
                                    need_exp=True)
            if q is not None:
                return _fit(F.mul(k, q), n.shape)
        w = _sigmoid_arg(r) if has else None
        if w is not None:
            u = w.args[0] if w.op.name == "neg" else F.neg(w)
            c = _exp_cofactor(other, u)
            if c is not None:
                if k is not None:
                    c = F.mul(k, c)
                return _fit(_scaled(c, F.sigmoid(u), lambda u=u: F.neg(F.softplus(F.neg(u)))),
                            n.shape)
        elif has and r.op.name == "mul":
            # the sigmoid a factor of a product: sigmoid(-x) sigmoid(x) exp(x) was
            # (sigmoid(-x) sigmoid(x)) exp(x), 0 inf = nan at x = 800
            for f, rest in _factors_apart(r):
                if f.op.name == "pow" and f.args[0].op.name == "sigmoid" and \
                        F.is_scalar_const(f.args[1]) and F.value_of(f.args[1]) in (2.0, 3.0):
                    q = _over_sigmoid_power(other, F.neg(f.args[0].args[0]),
                                            int(F.value_of(f.args[1])), need_exp=True)
                    if q is not None:  # (y sigmoid(-u)**2 exp(u), grouped (y s**2) exp(u))
                        return _fit(F.mul(rest(), q if k is None else F.mul(k, q)), n.shape)
                    continue
                w = _sigmoid_arg(f)
                if w is None:
                    continue
                u = w.args[0] if w.op.name == "neg" else F.neg(w)
                c = _exp_cofactor(other, u)
                if c is not None:
                    c = F.mul(rest(), c if k is None else F.mul(k, c))
                    return _fit(_scaled(c, F.sigmoid(u),
                                        lambda u=u: F.neg(F.softplus(F.neg(u)))), n.shape)
    return _spread_summed_exp(n) if spread else None


def _factors_apart(r: Expr, depth: int = 3):
    """Each factor f of the product ``r`` (to ``depth`` levels of products) with a function
    that builds the product of the others (built only for the factor taken)."""
    if not depth or r.op.name != "mul":
        return
    p, q = r.args
    for x, y in ((p, q), (q, p)):
        yield x, (lambda y=y: y)
        for f, rest in _factors_apart(x, depth - 1):
            yield f, (lambda rest=rest, y=y: F.mul(rest(), y))


def _stable_pow(n: Expr) -> Expr | None:
    """sigmoid(z)**p -> exp(-p softplus(-z)), softplus(z)**p -> exp(p log_softplus(z)), for an
    exponent that is not a constant natural number: the power rule's s**(p - 1), s**(p - 2)
    overflow where s is tiny (sigmoid(x)**0.3 had an -inf second derivative at x = -500)."""
    a, p = n.args
    if F.is_scalar_const(p) and F.value_of(p) in (-2.0, -3.0):  # (1 + exp(u))**-m is
        u = _one_plus_exp_arg(a)  # sigmoid(-u)**m (a power still: a product's rule below
        if u is not None:  # meets it as one, also under the broadcast where the 1 is wider)
            return _fit(F.power(F.sigmoid(F.neg(u)), F.value_of(p) * -1.0), n.shape)
    if F.is_const(p, -1.0):  # b**-1 is 1/b (sympy writes a sigmoid (1 + exp(-z))**-1)
        q = _stable_quotient(F.const(1.0), a, n.shape)
        if q is not None:  # (else sigmoid(z)**-1 is for the rule below: its derivative
            return q  # overflowed to -inf at z = -400 when it was left to the power rule)
    while a.op.name in _VIEWS:
        a = a.args[0]
    if a.op.name not in ("sigmoid", "softplus", "sub"):
        return None
    if F.is_const(p):
        v = np.asarray(F.value_of(p))
        if np.all((v >= 0) & (v == np.round(v))):
            return None  # (s**2: its derivatives' powers stop at s**0)
    la = _stable_log_core(n.args[0], False)
    return None if la is None else _fit(F.exp(F.mul(p, la)), n.shape)


def _stabilize_node(n: Expr, spread: bool = False) -> Expr | None:
    op = n.op.name
    if op == "pow":
        return _stable_pow(n)
    if op == "log":
        return _stable_log(n.args[0])
    if op == "bce":
        mu, y = n.args
        z = _sigmoid_arg(mu)
        if z is not None:  # bce(sigmoid(z), y) = softplus(z) - y*z
            return _fit(F.sub(F.softplus(z), F.mul(y, z)), n.shape)
    if op == "div":
        return _stable_div(n, spread)
    if op == "mul":
        return _stable_mul(n, spread)
    if (op == "matmul" or op == "outer") and spread:
        return _spread_summed_exp(n)
    if op == "broadcast_to" and n.args[0].op.name in _CANDIDATES:
        # the builder hoists a broadcast out of a product (exp(x) * broadcast_to(s**2) is
        # broadcast_to(exp(x) s**2)): the product under it is new, and seen here
        r = _stabilize_node(n.args[0], spread)
        return None if r is None else _fit(r, n.shape)
    return None


def _by_scalar_sum(n: Expr) -> bool:
    """Whether ``n``, a div or a pow, divides by a scalar sum (or is a power of one): the cheap
    condition for _spread_summed_exp, whose walk through products of products would cost
    every product of every graph."""
    b = n.args[1] if n.op.name == "div" else n.args[0]
    if b.op.name == "pow":
        b = b.args[0]
    return b.op.name == "sum" and not b.shape


def _spreads(nodes) -> bool:
    """Whether a node of ``nodes`` divides by a scalar sum (see _by_scalar_sum)."""
    return any((n.op.name == "div" or n.op.name == "pow") and _by_scalar_sum(n) for n in nodes)


def stabilize(outputs: list[Expr], keep: list[Expr] = (),
              order: list[Expr] | None = None) -> list[Expr]:
    """The outputs with every unstable pattern replaced by its stable equal.

    log(sigmoid(z)), log(1 - sigmoid(z)), log(1 + c exp(z)), log(exp(z)), log(sum(exp(z))),
    log(softmax(z)), bce(sigmoid(z), y), exp(z)/sum(exp(z)), sum(exp(z) w)/sum(exp(z)) (and
    with means), exp(z) @ B / sum(exp(z)), a/(1 + exp(-z)) and c exp(z)/(1 + exp(z)) (a
    quotient also as a product with 1/b or b**-1, and 1/b as b**-1), also seen through
    transposes, reshapes and broadcasts. The nodes in ``keep`` stay
    in the result and count as opaque inputs (no pattern looks inside them).
    ``order``: the outputs' topological order, when the caller has it already.
    """
    if order is None:
        order = topo_order(outputs)
    if not has_candidates(order):
        return list(outputs)  # nothing to rewrite: skip the rebuild
    # (the common case calls _stabilize_node itself: a wrapper was one more call per node)
    node_rule = functools.partial(_stabilize_node, spread=True) if _spreads(order) else \
        _stabilize_node
    inner = [w for w in keep if not w.op.leaf]
    if not inner:
        return rebuild(outputs, node_rule, order)
    # opaque inputs: swap each kept node for a placeholder variable, and back afterwards
    # (outside the hash-consing table: no variable a user makes is one of them)
    hold = {id(w): new_node(VAR, (), {"vname": f"_keep{i}", "shape": w.shape}, w.shape)
            for i, w in enumerate(inner)}
    back = {id(hold[id(w)]): w for w in inner}
    outs = rebuild(outputs, replace=hold)  # by the nodes as they are: a kept node may use another
    outs = rebuild(outs, node_rule)
    return rebuild(outs, replace=back)


def shared_softmax(outputs: list[Expr], family: list[Expr]) -> list[Expr]:
    """For code generation: softmax(x) as exp(log_softmax(x)) where the graph computes that
    log_softmax anyway (softmax cross-entropy, whose gradient is softmax(x) - t): the softmax
    had redone the max, shift, exp and sum of the loss's pass. (Not exp(x - logsumexp(x)):
    x - lse cancels, a relative error of |lse| ulps, 3e-4 in float32 at logits of 1e4.)
    ``family``: the softmax, log_softmax and logsumexp nodes of the outputs' graph."""
    have = {(id(n.args[0]), tuple(n.attrs["axis"])): n for n in family
            if n.op.name == "log_softmax"}
    if not have or not any(n.op.name == "softmax" and (id(n.args[0]), tuple(n.attrs["axis"]))
                           in have for n in family):
        return list(outputs)

    def rewrite(n: Expr) -> Expr | None:
        if n.op.name != "softmax":
            return None
        src = have.get((id(n.args[0]), tuple(n.attrs["axis"])))
        return None if src is None else F.exp(src)

    return rebuild(outputs, rewrite)


_CANDIDATES = ("log", "bce", "div", "pow", "mul", "matmul", "outer")  # _stabilize_node's


def has_candidates(nodes: list[Expr]) -> bool:
    """Whether any of ``nodes`` may be the root of an unstable pattern (cheap: by op name)."""
    spread = False  # (see _spreads)
    for i, n in enumerate(nodes):  # a plain loop: this runs over every node of every graph
        name = n.op.name  # derived or compiled
        if not spread and (name == "div" or name == "pow") and _by_scalar_sum(n):
            spread = True
            # (the products seen before: the nodes need not be in topological order, and
            # autodiff lists new nodes users first)
            if any(p.op.name in _SPREAD_ROOTS and _spread_summed_exp(p) is not None
                   for p in nodes[:i]):
                return True
        if name in _CANDIDATES and (name != "div" or _stable_div(n, spread) is not None) and \
                (name != "pow" or _stable_pow(n) is not None) and \
                (name != "mul" or _stable_mul(n, spread) is not None) and \
                (name not in ("matmul", "outer") or spread and
                 _spread_summed_exp(n) is not None):
            return True
    return False


_SPREAD_ROOTS = frozenset(("mul", "div", "matmul", "outer"))
