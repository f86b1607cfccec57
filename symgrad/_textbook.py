"""Scalar products and sums of a formula as books write them (used by symgrad.printing).

Display only: the graph, and the code compiled from it, stay as derived.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from .expr import Expr
from .ops import REGISTRY
from .ops.base import P_ADD, P_ATOM, P_MUL, par
from .ops.leaves import small_fraction


def _number(m: Expr) -> float | None:
    """The value of ``m`` where it is an unnamed scalar constant, else None."""
    if m.op.name != "const" or m.name is not None or hasattr(m.attrs["value"], "shape"):
        return None
    return float(m.attrs["value"])


def _factors(n: Expr, bound: set) -> tuple[float, list, list, bool, bool] | None:
    """(number, factors above the line, factors below it, whether writing them so reads
    better, whether a number divides) of the scalar product or quotient ``n``, through the
    products, quotients and negations it is made of (but named ones and temporaries); None if
    a number is not finite or a divisor is 0."""
    coef, num, den, consts, gain, divided = 1.0, [], [], 0, False, False
    signs = 0  # minus signs met: two of them cancel, -(-1)/d reads 1/d
    first = None  # the leftmost factor above the line: a number elsewhere moves to the front
    stack = [(n, False)]
    while stack:
        m, below = stack.pop()
        op = m.op.name
        inside = m is n or (m.name is None and id(m) not in bound)
        if inside and op == "mul":
            stack += [(m.args[1], below), (m.args[0], below)]
        elif inside and op == "div":
            if m is not n and not below and m.args[0].op.name == "const":
                gain = True  # a reciprocal inside a product: 1/(1 + x**2)*cos(x)
            stack += [(m.args[1], not below), (m.args[0], below)]
        elif inside and op == "neg":
            coef = -coef
            signs += 1
            stack.append((m.args[0], below))
        elif (v := _number(m)) is not None:
            if not math.isfinite(v) or (below and v == 0):
                return None
            coef = coef / v if below else coef * v
            if not math.isfinite(coef) or (coef == 0.0 and v != 0.0):
                return None  # the numbers multiplied out overflow (1e308*10) or underflow
            consts += 1
            signs += v < 0
            if below:
                divided = True
            elif first is None:
                first = m
        else:
            (den if below else num).append(m)
            if not below and first is None:
                first = m
    number_later = first is not None and first.op.name != "const" and consts > divided
    repeated = len({id(f) for f in num}) < len(num) or len({id(f) for f in den}) < len(den)
    gain = gain or consts > 1 or signs > 1 or number_later or repeated
    return coef, num, den, gain, divided


def gathered_product(n: Expr, out: dict, bound: set, latex: bool) -> tuple[str, int] | None:
    """A scalar product as books write one, where that reads better than the graph's own
    nesting: the numbers multiplied out in front, equal factors as a power, every divisor
    below one line: ``2*x*sin(x)/(1 + x**2)**2`` for the quotient rule's
    ``1/(1 + x**2)*sin(x)/(1 + x**2)*2*x``. None where the graph's own text reads as well."""
    got = _factors(n, bound)
    if got is None or not got[3]:
        return None
    coef, num, den, _, divided = got
    return _product_text(coef, num, den, divided, out, latex)


def _product_text(coef: float, num: list, den: list, divided: bool, out: dict,
                  latex: bool) -> tuple[str, int]:
    """The text of ``coef * prod(num) / prod(den)`` (``divided``: the graph divided by a
    number, so that a fraction coefficient goes below the line)."""
    ops = REGISTRY
    render = (lambda op, a, node: op.tex(a, node)) if latex else \
        (lambda op, a, node: op.text(a, node))
    pair = SimpleNamespace(args=(SimpleNamespace(shape=()), SimpleNamespace(shape=())), shape=())

    def product(factors: list) -> tuple[str, int] | None:
        counts: dict[int, list] = {}
        for f in factors:
            counts.setdefault(id(f), [f, 0])[1] += 1
        # names first, then powers and calls, sums last: 2*x*sin(x), not 2*sin(x)*x
        groups = sorted(counts.values(), key=lambda fc: 0 if fc[0].op.leaf else
                        2 if out[id(fc[0])][1] < P_MUL else 1)
        acc = None
        for f, k in groups:
            t = out[id(f)]
            if k > 1:
                t = render(ops["pow"], [t, (str(k), P_ATOM)], pair)
            acc = t if acc is None else render(ops["mul"], [acc, t], pair)
        return acc

    p, q = abs(coef), None
    if divided:  # x**2/2, not 0.5*x**2, where the graph divides by 2
        frac = small_fraction(p)
        if frac is not None and frac[1] > 1:
            p, q = frac
    top = product(num)
    if p != 1.0 or top is None:
        c = render(ops["const"], [], SimpleNamespace(attrs={"value": p}))
        top = c if top is None else render(ops["mul"], [c, top], pair)
    bottom = product(den)
    if q is not None:
        c = render(ops["const"], [], SimpleNamespace(attrs={"value": q}))
        bottom = c if bottom is None else render(ops["mul"], [c, bottom], pair)
    s = top if bottom is None else render(ops["div"], [top, bottom], pair)
    return render(ops["neg"], [s], pair) if coef < 0 else s


def gathered_sum(n: Expr, out: dict, bound: set, latex: bool) -> tuple[str, int] | None:
    """A scalar sum with its like terms collected, where it has some: ``4*a*b`` for
    ``2*a*b + a*(2*b)`` (two nodes of one value), ``x`` for ``2*x - x``; a sum whose terms
    all cancel reads ``0``. None where no two terms are alike (the graph's own text)."""
    terms: list[tuple[float, Expr]] = []
    stack = [(n, 1.0)]
    while stack:
        m, sign = stack.pop()
        op = m.op.name
        inside = m is n or (m.name is None and id(m) not in bound)
        if inside and op in ("add", "sub"):
            stack += [(m.args[1], -sign if op == "sub" else sign), (m.args[0], sign)]
        elif inside and op == "neg" and m is not n:
            stack.append((m.args[0], -sign))
        else:
            terms.append((sign, m))
    like: dict[tuple, list] = {}  # what a term is a multiple of -> [coef, num, den, divided]
    for sign, m in terms:
        if (v := _number(m)) is not None:
            if not math.isfinite(v):
                return None
            key, got = (), (v, [], [], False, False)
        else:
            got = _factors(m, bound) if m.op.name in ("mul", "div") else None
            if got is None:
                got = (1.0, [m], [], False, False)
            key = (tuple(sorted(map(id, got[1]))), tuple(sorted(map(id, got[2]))))
        entry = like.get(key)
        if entry is None:
            like[key] = [sign * got[0], got[1], got[2], got[4]]
        else:
            entry[0] += sign * got[0]
            entry[3] = entry[3] or got[4]
            if not math.isfinite(entry[0]):
                return None
    if len(like) == len(terms):
        return None
    acc = None
    for coef, num, den, divided in like.values():
        if coef == 0.0:
            continue  # (x - x reads 0, as a book has it, also where x is inf)
        if acc is None:
            acc = _product_text(coef, num, den, divided, out, latex)
            continue
        t = _product_text(abs(coef), num, den, divided, out, latex)
        sep = " - " if coef < 0 else " + "
        acc = (f"{acc[0]}{sep}{par(t, P_ADD, latex, strict=coef < 0)}", P_ADD)
    return acc if acc is not None else ("0", P_ATOM)

