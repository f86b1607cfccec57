"""``sg.simplify``: own rewrites first, sympy where it helps, never a larger graph."""

from __future__ import annotations

import numpy as np

from . import functions as F
from ._lazy import sympy
from .expr import Expr, canonical, keep_checks, rename, unguard
from .graph import (
    as_list,
    count_nodes,
    in_rows,
    larger_than,
    no_gc,
    row_sizes,
    topo_order,
    walk_upto,
)
from .rewrite import over_one_plus_exp, rebuild

SYMPY_MAX_NODES = 120  # scalar graphs up to this size are also tried in sympy
# sympy works on trees, not graphs: a node used k times is k copies there, so a small graph can
# be a large tree (the gradient of an 8-layer tanh chain: 67 nodes, a tree of 263; sympy took
# seconds on it and found nothing smaller). Measured (docs/guide/simplify-and-sympy.md): every
# expression of the tests, docs and lecture that sympy makes smaller is a tree of at most 28
# nodes (the lecture's at most 10), and sympy takes some 20 ms on a tree of 60 with few terms.
SYMPY_MAX_TREE = 60
# cancel and factor multiply products of sums out: (a + b)*(c + d)*... with n factors is 2**n
# terms, and their time grows with the terms (measured: 16 ms at 16 terms, 100 ms at 64,
# 2 s at 1024). Everything sympy improves in the tests, docs and lecture expands to at most
# 3 terms.
SYMPY_MAX_TERMS = 16


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


def _cancel_quotient(n: Expr) -> Expr | None:
    """(a / d) * d -> a, elementwise on any shape: what sympy's cancel does for scalars (the
    chain-rule step of the bce of a sigmoid is ``(s - y) / s'(z) * s'(z)``). As cancel, it
    reads a 0/0 where d is zero as a."""
    if n.op.name != "mul":
        return None
    x, y = n.args
    for q, d in ((x, y), (y, x)):
        if q.op.name == "div" and q.args[1] is d and q.args[0].shape == n.shape:
            return q.args[0]
    return None


def _logistic(n: Expr) -> Expr | None:
    """c / (1 + exp(-u)) -> c sigmoid(u), c / (1 + exp(u)) -> c sigmoid(-u), and
    k exp(u) / (1 + exp(u)) -> k sigmoid(u) (rewrite.over_one_plus_exp): the stable forms,
    where sympy's answer for the last, sigmoid(-u) exp(u), is nan for u > 709."""
    if n.op.name != "div":
        return None
    r = over_one_plus_exp(*n.args)
    return r if r is not None and r.shape == n.shape else None


def _own_rewrite(n: Expr) -> Expr:
    c = canonical(n)
    for rule in (_factor_matmul, _cancel_quotient, _logistic):
        r = rule(c)
        if r is not None:
            return r
    return c


def _own(outs: list[Expr]) -> list[Expr]:
    # rebuilding re-runs every op's build-time rules on the new operands, and canonical()
    # replaces a node by its named twin, so names reach every place their value is used
    return rebuild(outs, _own_rewrite)


def _via_sympy(e: Expr) -> Expr | None:
    from .sympy_bridge import from_sympy, to_sympy

    order = walk_upto([e], SYMPY_MAX_NODES)  # stops early on big graphs: linear in outputs
    if order is None or any(n.ndim or n.op.name in _VALUE_ONLY or n.op.name in _UNSEEN
                            or n.op.name in _TIE_ORDERED for n in order):
        return None
    if tree_size(e, SYMPY_MAX_TREE) > SYMPY_MAX_TREE:
        return None
    try:
        s = to_sympy(e, keep_names=True)
    except (NotImplementedError, ValueError):
        return None
    if expanded_terms(s, SYMPY_MAX_TERMS) > SYMPY_MAX_TERMS:
        return None
    if s.has(sympy.zoo, sympy.nan):
        # log(0) is sympy's complex infinity, and what sympy builds on it nan: the graph's
        # sigmoid(log(0)) + x is x, its "simplification" nan
        return None
    s, back = freeze_numbers(s)
    symbols: dict[str, Expr] = {}
    for n in order:
        if n.name is not None and n is not e:
            name = n.name
        elif n.op.name == "alias" and n is not e:
            name = n.attrs["alias"]
        elif n.op.name == "var":
            name = n.attrs["vname"]
        else:
            continue
        if symbols.setdefault(name, n) is not n:
            # two values under one name (names are global: a node named x next to the
            # variable x): sympy's symbol would merge them
            return None
    best = None
    for cand in _candidates(s):
        cand = cand.xreplace(back)
        if not _numbers_fit_floats(cand):
            continue
        try:
            r = from_sympy(cand, symbols)
        except ValueError:
            continue
        if (best is None or count_nodes(r) < count_nodes(best)) and _agrees(e, r, order):
            best = r
    return best


# values each variable takes at the points where a sympy form is checked (rotated per point)
_PROBE = (-1.3, 0.0, 0.7, -0.4, 2.1)
# and far out, where one sympy rewrite of 1/(1 + exp(-x)), sigmoid(-x) exp(x), is nan (and
# nearer: sigmoid(z)/softplus(z)**4, sympy's d softplus(z)**-3, is inf from z = -178 on)
_FAR = tuple(s * m for m in (100.0, 200.0, 400.0, 800.0, 1e4, 1e8, 1e16, 1e300)
             for s in (1.0, -1.0))


# ops whose derivative is not their value's: stop_gradient(x) is x to sympy, and
# straight_through(hard, soft) is hard, so an answer without them would differentiate otherwise
_VALUE_ONLY = frozenset(("stop_gradient", "straight_through"))
# ops whose sympy form drops part of their value: zero_as_one(a) is a to sympy, so the
# derivative in p of a**p, a**p log(zero_as_one(a)), 0 where a = 0, came back nan there
_UNSEEN = frozenset(("zero_as_one",))
# ops whose derivative at a tie depends on the order of their operands, which sympy's Max and
# Min (sorted, symmetric) forget: maximum(x, 0) gives x the gradient at 0 (1), the relu(x)
# sympy made of it does not (0)
_TIE_ORDERED = frozenset(("maximum", "minimum"))


def _agrees(e: Expr, r: Expr, order: list[Expr]) -> bool:
    """Whether ``r`` is finite wherever ``e`` is, and equal to it there, at a few points.

    sympy's rules hold for complex numbers: sqrt(relu(y) y) becomes sqrt(relu(y)) sqrt(y), nan
    for y < 0 where the product is 0. (The other way round, a nan becoming a number, as
    sqrt(x)**2 = x, is documented.) Equality is a guard: no answer sympy gives should differ.
    """
    import math
    import warnings

    from .compile import compile

    xs = [n for n in order if n.op.name == "var"]
    try:
        fe, fr = compile(e, xs), compile(r, xs)
    except (ValueError, TypeError, NotImplementedError):
        return False

    def both(vals):
        """e's and r's values, None where e has none; r's nan where it raised (with numpy
        raising on overflow, np.errstate(over="raise"), every far point was skipped)."""
        try:
            a = float(fe(*vals))
        except (ValueError, TypeError, ArithmeticError, IndexError):
            return None
        try:
            return a, float(fr(*vals))
        except (ValueError, TypeError, ArithmeticError, IndexError):
            return a, math.nan

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(len(_PROBE)):
            ab = both([_PROBE[(i + k) % len(_PROBE)] for i in range(len(xs))])
            if ab is not None and math.isfinite(ab[0]) and not (
                    math.isfinite(ab[1]) and math.isclose(*ab, rel_tol=1e-6, abs_tol=1e-9)):
                return False
        # where exp overflows, a stable form must stay finite: every variable far out, and
        # each alone (the others 0: (1 + exp(x))/(1 + 2 exp(x)) is nan at x = 720 for any y,
        # where the expression sympy had, 1/(1 + sigmoid(x)) times a ratio of y, is 0.5), at
        # scales from 100 to 1e300 (exp(0.5 w) overflows from w = 1418 on)
        points = [[big] * len(xs) for big in _FAR]
        points += [[big if j == i else 0.0 for j in range(len(xs))]
                   for i in range(len(xs)) for big in _FAR] if len(xs) > 1 else []
        for vals in points:
            ab = both(vals)
            if ab is not None and math.isfinite(ab[0]) and not math.isfinite(ab[1]):
                return False
    return True


# cancel and factor write exp(369/200 * y) as exp(y/200)**369: a polynomial of degree 369
# (measured: factor((1 + exp(-y - 369/200))**-2) took 54 s). Numbers other than small integers
# and simple fractions become symbols while sympy works, and the numbers are put back after.
SMALL_NUMBER = 16


def _numbers_fit_floats(s) -> bool:
    """Whether every number of ``s`` is a float64 other than inf, and 0 only if it is 0.
    Putting a frozen number back evaluates what sympy made of it: ``exp(c0)`` with
    c0 = 750.5 is 1.0e326, which sympy's floats hold and float64 does not (it became inf, and
    the gradient of sigmoid(x + 750.5) "simplified" to 0)."""
    for x in s.atoms(sympy.Number):
        if x is sympy.nan or x is sympy.zoo:
            return False
        if x.is_zero or not (x.is_real and x.is_finite):
            continue
        v = abs(float(x))
        if v == 0.0 or v == float("inf"):
            return False
    return True


def freeze_numbers(s):
    """(``s`` with every number but small integers and fractions p/q with |p|, q at most
    ``SMALL_NUMBER`` replaced by a positive symbol (times -1 for a negative number), the
    replacement that puts the numbers back)."""
    symbol: dict = {}  # |number| -> its symbol
    frozen: dict = {}
    for x in s.atoms(sympy.Number):
        if (x.is_Rational and abs(x.p) <= SMALL_NUMBER and x.q <= SMALL_NUMBER) \
                or x.is_zero or not (x.is_real and x.is_finite):
            continue
        d = symbol.get(abs(x))
        if d is None:
            d = symbol[abs(x)] = sympy.Dummy(f"c{len(symbol)}", positive=True)
        frozen[x] = -d if x.is_negative else d
    return (s.xreplace(frozen) if frozen else s), {d: m for m, d in symbol.items()}


def tree_size(e: Expr, cap: int) -> int:
    """The size of ``e`` as a tree, as ``to_sympy(e, keep_names=True)`` writes it: a node shared
    k times counts k times, named nodes below ``e`` count 1 (they become symbols). One pass over
    the graph; sizes stop growing past ``cap`` (the result is then ``cap + 1``)."""
    size: dict[int, int] = {}
    for n in topo_order([e]):
        if n is not e and (n.name is not None or n.op.name == "alias"):
            size[id(n)] = 1
        else:
            size[id(n)] = min(cap + 1, 1 + sum(size[id(a)] for a in n.args))
    return size[id(e)]


def expanded_terms(s, cap: int) -> int:
    """How many monomials sympy's ``cancel``/``factor`` expand ``s`` into, estimated: the larger
    of the numerator's and the denominator's term counts over a common denominator, with every
    product of sums multiplied out. Function calls (``exp(...)``, ``tanh(...)``) count as one
    symbol: sympy does not expand inside them. One pass over the distinct subexpressions;
    counts stop growing past ``cap`` (the result is then ``cap + 1``)."""
    memo: dict = {}
    stack = [s]
    while stack:
        x = stack[-1]
        if x in memo:
            stack.pop()
            continue
        todo = [a for a in x.args if a not in memo] if (x.is_Add or x.is_Mul or x.is_Pow) else ()
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        memo[x] = _num_den(x, memo, cap + 1)
    return max(memo[s])


def _num_den(x, memo, top: int) -> tuple[int, int]:
    """(numerator terms, denominator terms) of ``x`` expanded, each at most ``top``."""
    if x.is_Add:
        den = 1
        for a in x.args:
            den = min(top, den * memo[a][1])
        num = 0
        for a in x.args:  # a/b + c/d = (a*d + c*b)/(b*d)
            other = 1
            for b in x.args:
                if b is not a:
                    other = min(top, other * memo[b][1])
            num = min(top, num + memo[a][0] * other)
        return num, den
    if x.is_Mul:
        num = den = 1
        for a in x.args:
            num, den = min(top, num * memo[a][0]), min(top, den * memo[a][1])
        return num, den
    if x.is_Pow and x.exp.is_Integer:
        n, d = memo[x.base]
        p = int(x.exp)
        if p < 0:
            n, d, p = d, n, -p
        return _power(n, p, top), _power(d, p, top)
    return 1, 1


def _power(n: int, p: int, top: int) -> int:
    r = 1
    for _ in range(p):
        r = min(top, r * n)
        if r in (1, top):
            break
    return r


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
    """An equivalent expression (a list gives a list, a list of lists such as ``sg.hessian``
    of a list gives a list of lists), never larger in node count.

    symgrad's own rewrites run on the whole graph. A small scalar output is also handed to
    sympy (``cancel``, ``factor``), but only when sympy's tree of it is small: at most
    ``SYMPY_MAX_TREE`` nodes with shared nodes counted once per use, and at most
    ``SYMPY_MAX_TERMS`` terms once its products of sums are multiplied out. Larger ones
    (gradients of deep chains, products of many sums) would take sympy seconds or more, so
    they keep symgrad's own result, and simplify stays fast on every graph.
    """
    sizes = row_sizes(e)
    if sizes is not None:  # (the blocks share nodes: one graph)
        return in_rows(simplify([x for r in e for x in r]), sizes)
    with no_gc():
        return _simplify(e)


def _take_alternatives(res: list[Expr], alts: dict[int, Expr]) -> list[Expr]:
    """``res`` with sympy's smaller forms ``alts`` (index -> form) put in, all of them where
    the list is not larger then; else one at a time while the list shrinks. Of several
    outputs, the smaller form of one can share less with the others ([f, g] grew from 11 nodes
    to 14), and one can only pay off once another is in (f's nodes stay while g uses them)."""
    if not alts:
        return res
    every = [alts.get(i, r) for i, r in enumerate(res)]
    if len(res) == 1 or count_nodes(every) <= count_nodes(res):
        return every
    size = count_nodes(res)
    changed = True
    while changed:
        changed = False
        for i, alt in alts.items():
            if res[i] is alt:
                continue
            tried = res[:i] + [alt] + res[i + 1:]
            n = count_nodes(tried)
            if n < size:
                res, size, changed = tried, n, True
    return res


def _simplify(e):
    given, single = as_list(e, "simplify")
    # a guard (see ops.Guard) is only ever on top: simplify what it guards, then guard that
    outs = [unguard(o) for o in given]
    res = _own(outs)
    big = larger_than(res, SYMPY_MAX_NODES)  # one pass, however many outputs share the graph
    alts = {}
    for i, o in enumerate(res):
        alt = None if id(o) in big else _via_sympy(o)
        if alt is None:
            continue
        if count_nodes(alt) < count_nodes(o):
            alts[i] = alt
    res = _take_alternatives(res, alts)
    # with every size check left for call time, those a rewrite dropped in a guard
    res = [keep_checks(r, g.checks) if g.checks else r for r, g in zip(res, given)]
    # an output's own name stays: rebuilding took the value's canonical twin (p named q too
    # read q), and sympy's form has none
    for i, g in enumerate(given):
        name = unguard(g).name
        if name is not None and unguard(res[i]).name != name:
            res[i] = rename(res[i], name)
    # never larger than what was given (a guard included), each output and all together
    res = [r if r is g or count_nodes(r) <= count_nodes(g) else g for r, g in zip(res, given)]
    if len(res) > 1 and count_nodes(res) > count_nodes(given):
        res = given
    return res[0] if single else res
