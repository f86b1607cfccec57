"""Regions seeded by a tensor identity, lowered as sums of pairwise contractions (numpy code).

The Jacobian with respect to a matrix ``W`` of shape (d, K), and so every Hessian block of a
matrix, is a reverse pass seeded by the identity tensor ``I(d, K)`` of shape (d, K, d, K).
Every cotangent below the seed carries those four axes: for data ``X`` of (N, d) the first is
``X @ I(d, K)``, an array of d K N K entries that are ``X[n, i] δ(k, l)``, mostly zeros.
Computed op by op, softmax regression's Hessian at N = 2000, d = 100, K = 10 made three such
arrays (480 MB for a result of 8 MB).

Read as index notation, such a region is a sum of terms, each a product of arrays that carry
index labels (the identity's δ only makes two labels one). This module reads the region of
each identity of more than two axes that way, from the identity down to the values used
outside it (its roots), and lowers each root as one call of a :class:`Contraction`: for each
term it contracts the arrays pairwise in the cheapest order for the sizes at hand (a matrix
product where a label is summed, a broadcast product where none is), and adds the result into
a view of the output whose strides walk the diagonal that a δ between two output axes makes.
Nothing of the region's size is ever allocated.

A root is computed this way only where an estimate says it pays (see worth): small regions
cost less op by op (fewer numpy calls), and so do deep chains of small matrices, whose terms,
multiplied out, repeat the same products. numpy code calls the Contraction (strided views,
``matmul``); torch, jax and cupy code calls ``Contraction.on``, the same terms multiplied
pairwise with the library's ``einsum``; dask and namespaces without ``einsum`` compute such a
region op by op. Graphs, printing and derivatives never see it.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from ._contraction import _BLAS, Contraction, _cheapest
from .expr import Expr

MAX_TERMS = 8  # a root's terms: beyond this the expansion (products of sums) is not worth it
MAX_FACTORS = 8  # arrays in one term: their cheapest order is searched (3^m steps); a term
# of more (deep chains) is left op by op (a greedy order made 5-axis temporaries of 12 GB)
# ops a region is read through; any other op's value is an operand (an array with labels)
_INDEX_OPS = frozenset(("mul", "div", "add", "sub", "neg", "sum", "transpose", "matmul",
                        "outer", "broadcast_to", "diag", "diagonal", "alias", "reshape"))


class _Unfit(Exception):
    """A root whose region cannot be read as index notation (it is computed op by op)."""


class _Recip:
    """The factor ``1 / of`` of a term (a division by a value outside the region: its
    operand is passed as it is, and the contraction takes its reciprocal once per call)."""

    __slots__ = ("of", "shape")

    def __init__(self, of: Expr):
        self.of, self.shape = of, of.shape


class _Term:
    """``coef`` times the product of ``factors`` (node, labels), summed over the labels not in
    ``out``; ``out``: each axis's label, or None where the value is constant along it."""

    __slots__ = ("coef", "factors", "out")

    def __init__(self, coef: float, factors: tuple, out: tuple):
        self.coef, self.factors, self.out = coef, factors, out

    def labels(self) -> set:
        got = {lb for lb in self.out if lb is not None}
        for _, ls in self.factors:
            got.update(ls)
        return got

    def renamed(self, m: dict) -> _Term:
        if not m:
            return self
        get = m.get  # get(lb, lb): a label m does not rename (or None) stays
        return _Term(self.coef, tuple((n, tuple(map(get, ls, ls))) for n, ls in self.factors),
                     tuple(map(get, self.out, self.out)))


class _Reader:
    """Reads the nodes of a region as sums of terms (see the module's docstring), each once,
    in the graph's order: a node's terms are made of its operands' (``terms``), or of an
    operand as an array with labels where that operand is outside the region or computed on
    its own (``kept``)."""

    def __init__(self, max_terms: int = MAX_TERMS, max_factors: int = MAX_FACTORS,
                 printing: bool = False) -> None:
        self.max_terms, self.max_factors = max_terms, max_factors
        # printing (index notation): gate(c, x) read as c step(x) (equal where c is finite;
        # never computed so: gate is 0 where x <= 0 even where c is inf), zeros as no terms
        self.printing = printing
        self.sizes: list = []  # label -> its size (an int or a size's name)
        self.terms: dict[int, list[_Term]] = {}
        self.kept: set[int] = set()
        self.seeded: set[int] = set()  # nodes whose terms read through an identity
        self.recips: dict[int, _Recip] = {}  # a denominator's id -> its factor

    def new(self, size) -> int:
        self.sizes.append(size)
        return len(self.sizes) - 1

    def fresh(self, t: _Term) -> _Term:
        return t.renamed({lb: self.new(self.sizes[lb]) for lb in t.labels()})

    def leaf(self, n: Expr) -> list[_Term]:
        ls = tuple(self.new(d) for d in n.shape)
        out = tuple(None if d == 1 else lb for d, lb in zip(n.shape, ls))
        return [_Term(1.0, ((n, ls),), out)]

    def read(self, n: Expr) -> list[_Term]:
        got = self.terms.get(id(n))
        return self.leaf(n) if got is None or id(n) in self.kept else got

    def add(self, n: Expr) -> None:
        """Reads ``n`` (its operands read before), or raises _Unfit."""
        got = [_settled(t) for t in self._read(n)]
        if len(got) > self.max_terms or any(len(t.factors) > self.max_factors for t in got):
            raise _Unfit
        self.terms[id(n)] = got
        if n.op.name == "eye" or any(id(a) in self.seeded and id(a) not in self.kept
                                     for a in n.args):
            self.seeded.add(id(n))

    def _read(self, n: Expr) -> list[_Term]:
        op, nd = n.op.name, n.ndim
        if op == "eye":
            ls = tuple(None if d == 1 else self.new(d) for d in n.attrs["dims"])
            return [_Term(1.0, (), ls + ls)]
        if op == "zero" and self.printing:  # (printing: no terms, "H = 0")
            return []
        if op == "gram":
            return self._gram(n)
        a = self.read(n.args[0])
        if op == "alias":
            return a
        if op == "reshape":  # only one that adds or drops axes of size 1 (expand_dims)
            kept = [d for d in n.shape if d != 1]
            if kept != [d for d in n.args[0].shape if d != 1]:
                raise _Unfit
            return [_Term(t.coef, t.factors, _regrouped(t.out, n.args[0].shape, n.shape))
                    for t in a]
        if op == "diag":  # diag(x)[..., i, j] = x[..., i] δ(i, j)
            return [self._diag(t, n) for t in a]
        if op == "diagonal":
            return [self._diagonal(t) for t in a]
        if op == "neg":
            return [_Term(-t.coef, t.factors, t.out) for t in a]
        if op == "transpose":
            return [_Term(t.coef, t.factors, tuple(t.out[k] for k in n.attrs["axes"]))
                    for t in a]
        if op == "broadcast_to":
            return [_Term(t.coef, t.factors, _pad(t.out, nd)) for t in a]
        if op == "sum":
            return [self._summed(t, n) for t in a]
        if op == "div":  # a times 1/b, for b outside the region (computed on its own)
            d = n.args[1]
            if id(d) in self.seeded and id(d) not in self.kept:
                raise _Unfit
            r = self.recips.get(id(d))
            if r is None:
                r = self.recips[id(d)] = _Recip(d)
            b = self.leaf(r)
        elif op == "gate":  # (by an indicator, 0 or 1 already: that one, as printed)
            from .functions import step
            from .ops.elementwise import _indicator

            if not self.printing:
                raise _Unfit
            x = n.args[1]
            b, op = self.leaf(x if _indicator(x) else step(x)), "mul"
        else:
            b = self.read(n.args[1])
        if op in ("add", "sub"):
            s = -1.0 if op == "sub" else 1.0
            return [_Term(t.coef, t.factors, _pad(t.out, nd)) for t in a] + \
                [_Term(s * t.coef, t.factors, _pad(t.out, nd)) for t in b]
        terms = []
        for ta in a:
            for tb in b:
                tb = self.fresh(tb)
                if op in ("mul", "div"):
                    terms.append(self._joined(ta, tb, _pad(ta.out, nd), _pad(tb.out, nd), ()))
                elif op == "outer":  # a[..., :, None] * b[..., None, :]
                    terms.append(self._joined(ta, tb, _pad(ta.out + (None,), nd),
                                              _pad(tb.out[:-1] + (None,) + tb.out[-1:], nd),
                                              ()))
                else:
                    terms.append(self._matmul(ta, tb, n))
        return terms

    def _diagonal(self, t: _Term) -> _Term:
        x, y = t.out[-2], t.out[-1]
        if x is None or y is None:  # constant along one of the two: the other's label
            return _Term(t.coef, t.factors, t.out[:-2] + (y if x is None else x,))
        return self._joined(t, _Term(1.0, (), ()), t.out[:-2] + (y,), _pad((), len(t.out) - 1),
                            ((x, y),))

    def _diag(self, t: _Term, n: Expr) -> _Term:
        lb = t.out[-1]
        if lb is None and n.shape[-1] != 1:  # constant along it: c I, a δ of its own
            lb = self.new(n.shape[-1])
            return _Term(t.coef, t.factors, t.out[:-1] + (lb, lb))
        return _Term(t.coef, t.factors, t.out + (lb,))

    def _gram(self, n: Expr) -> list[_Term]:
        """X^T diag(d) X, printing only: Σ_p X[p, i] d[p] X[p, j]."""
        if not self.printing:
            raise _Unfit
        X, d = n.args
        terms = []
        for t1 in self.read(X):
            for t2 in self.read(X):
                t2 = self.fresh(t2)
                for t3 in self.read(d):
                    t3 = self.fresh(t3)
                    t = self._joined(t1, t2, (t1.out[0], t1.out[1], None),
                                     (t2.out[0], None, t2.out[1]), ())
                    t = self._joined(t, t3, t.out, (t3.out[0], None, None), ())
                    terms.append(self._summed_over(t, (0,), False, (X.shape[0], *n.shape)))
        return terms

    def _summed(self, t: _Term, n: Expr) -> _Term:
        return self._summed_over(t, n.attrs["axis"], n.attrs["keepdims"], n.args[0].shape)

    def _summed_over(self, t: _Term, axes: tuple, keep: bool, shape: tuple) -> _Term:
        """``t`` summed over ``axes`` of its ``shape``."""
        coef = t.coef
        rest = [lb for k, lb in enumerate(t.out) if k not in axes]
        inner = {lb for _, ls in t.factors for lb in ls}
        # an axis the term is constant along (None, or a label of a δ of summed axes alone,
        # counted once: the sum of δ(k, l) over both is K) sums to a factor of its size
        sizes = [shape[k] for k in axes if t.out[k] is None]
        sizes += [self.sizes[lb] for lb in dict.fromkeys(t.out[k] for k in axes)
                  if lb is not None and lb not in inner and lb not in rest]
        for size in sizes:
            if not isinstance(size, int):
                raise _Unfit
            coef *= size
        out = tuple(None if k in axes else lb for k, lb in enumerate(t.out)) if keep \
            else tuple(rest)
        return _Term(coef, t.factors, out)

    def _joined(self, ta: _Term, tb: _Term, oa: tuple, ob: tuple, summed: tuple) -> _Term:
        """The product of two terms whose axes ``oa`` and ``ob`` are one axis each pair;
        ``summed``: pairs of labels contracted (a matrix product's inner axis)."""
        same: dict[int, int] = {}

        def find(lb):
            while lb in same:
                lb = same[lb]
            return lb

        def join(x, y):
            if x is None or y is None:
                return y if x is None else x
            x, y = find(x), find(y)
            if x != y:
                same[y] = x
            return x

        out = tuple(join(x, y) for x, y in zip(oa, ob))
        for x, y in summed:
            join(x, y)
        m = {lb: find(lb) for lb in list(same)}
        t = _Term(ta.coef * tb.coef, ta.factors + tb.factors, out)
        return t.renamed(m)

    def _matmul(self, ta: _Term, tb: _Term, n: Expr) -> _Term:
        x, y = n.args
        oa, ob = ta.out, tb.out
        if oa[-1] is None and ob[-2 if y.ndim > 1 else -1] is None:
            k = x.shape[-1]  # both constant along the summed axis: times its size
            if not isinstance(k, int):
                raise _Unfit
            ta = _Term(ta.coef * k, ta.factors, ta.out)
        if x.ndim == 1 and y.ndim == 1:
            return self._joined(ta, tb, (), (), ((oa[0], ob[0]),))
        if x.ndim == 1:  # (k,) @ (..., k, n)
            return self._joined(ta, tb, _pad((), n.ndim), ob[:-2] + ob[-1:], ((oa[0], ob[-2]),))
        if y.ndim == 1:  # (..., m, k) @ (k,)
            return self._joined(ta, tb, oa[:-1], _pad((), n.ndim), ((oa[-1], ob[0]),))
        nb = n.ndim - 2
        pa = _pad(oa[:-2], nb) + (oa[-2], None)
        pb = _pad(ob[:-2], nb) + (None, ob[-1])
        return self._joined(ta, tb, pa, pb, ((oa[-1], ob[-2]),))


def _settled(t: _Term) -> _Term:
    """``t`` with a label that only one output axis has, and no factor, made None: the term
    is constant along that axis (the other half of a δ was summed away); a matrix product or
    a diagonal over it then counts it as such."""
    inner = {lb for _, ls in t.factors for lb in ls}
    lone = [lb for lb in t.out if lb is not None and lb not in inner and t.out.count(lb) == 1]
    if not lone:
        return t
    return _Term(t.coef, t.factors, tuple(None if lb in lone else lb for lb in t.out))


def _pad(out: tuple, nd: int) -> tuple:
    return (None,) * (nd - len(out)) + out


def _regrouped(out: tuple, before: tuple, shape: tuple) -> tuple:
    """The labels ``out`` of axes ``before`` on ``shape``, which has the same axes but for
    those of size 1."""
    it = iter(lb for d, lb in zip(before, out) if d != 1)
    return tuple(None if d == 1 else next(it) for d in shape)


def worth(root: Expr, contracted: float, by_ops: float, inner: list[Expr],
          terms: list[_Term]) -> bool:
    """Whether computing ``root`` as a contraction pays: where some value of the region it
    reads through (``inner``) may be bigger than it, or every term is a diagonal of the
    result (a δ of two output axes: op by op writes all of it, mostly zeros); else there is
    nothing to save, and writing a big result through strided views is the slower. And where
    its estimated cost (see _contraction_cost) is below that of the region's values op by
    op."""
    if all(_not_smaller(root.shape, x.shape) for x in inner) and not all(
            len(set(lb for lb in t.out if lb is not None)) < sum(lb is not None for lb in t.out)
            for t in terms):
        return False
    return contracted < by_ops


def _not_smaller(a: tuple, b: tuple) -> bool:
    """Whether shape ``a`` surely has at least half as many entries as shape ``b`` (its
    symbolic sizes include ``b``'s, and its known ones multiply to at least half of
    ``b``'s)."""
    names = [d for d in a if not isinstance(d, int)]
    for d in b:
        if not isinstance(d, int):
            if d not in names:
                return False
            names.remove(d)
    known = [d for d in a if isinstance(d, int)], [d for d in b if isinstance(d, int)]
    return 2 * math.prod(known[0]) >= math.prod(known[1])


def _wider(a: tuple, b: tuple) -> str | None:
    """"name" where shape ``a`` has a symbolic size that shape ``b`` lacks (counted with
    multiplicity), "size" where its known sizes make it more than WIDER times as big."""
    names = [d for d in b if not isinstance(d, int)]
    for d in a:
        if not isinstance(d, int):
            if d not in names:
                return "name"
            names.remove(d)
    if math.prod(d for d in a if isinstance(d, int)) > \
            WIDER * math.prod(d for d in b if isinstance(d, int)):
        return "size"
    return None


WIDER = 4  # an operand this many times bigger than its root: see contract_fusions
SLACK = 1.5  # ... which is then contracted unless the estimate says it costs this much more


GUESS = 1000  # the size a symbolic size is taken to have in the estimates
CALL = 1000.0  # a numpy call's own cost, in entries read or written


def _est(shape: tuple) -> float:
    return float(math.prod(d if isinstance(d, int) else GUESS for d in shape))


def _op_cost(n: Expr) -> float:
    """The estimated cost of computing ``n`` op by op: entries written and read (and a matrix
    product's multiply-adds), and the call."""
    out = _est(n.shape)
    if n.op.name == "eye":
        return CALL + out
    cost = CALL + out + sum(_est(a.shape) for a in n.args)
    if n.op.name == "matmul" and n.args[0].shape:
        k = n.args[0].shape[-1]
        cost += out * (k if isinstance(k, int) else GUESS) / _BLAS
    return cost


def _contraction_cost(root: Expr, terms: list[_Term], sizes: list, limit: float) -> float:
    """The estimated cost of ``root`` as a contraction: each term's products in a greedy order
    (see _cheapest), its write into the result, and the calls (a product is about five numpy
    calls, with the Python around them). Stops once it exceeds ``limit``."""
    out = _est(root.shape)
    arrays = [[ls for _, ls in t.factors if ls] for t in terms]
    # first what no order avoids: the calls, the output's zeros and each term's addition
    # into it (read, read, write)
    cost = CALL + out + sum(3 * out + CALL * (6 + 5 * max(len(a) - 1, 0)) for a in arrays)
    for t, ls in zip(terms, arrays):
        if cost > limit:
            break
        if len(ls) > 1:
            est = {lb: sizes[lb] if isinstance(sizes[lb], int) else GUESS
                   for x in ls for lb in x}
            cost += _cheapest(ls, est, {lb for lb in t.out if lb is not None}, exact=False)[0]
    return cost


# ------------------------------------------------------------------ compile time
def contract_fusions(order: list[Expr], uses: dict[int, int], out_ids: set[int],
                     folded: dict) -> tuple[dict[int, tuple], set[int]]:
    """The roots of identity-seeded regions of ``order`` -> (Contraction, operand nodes), and
    the ids of the region's other nodes, which no line computes.

    Each region node is read once, in the graph's order; one that cannot be read (an op or a
    reshape the reading does not know, too many terms) is computed op by op, and its operands
    in the region are computed on their own. Then, from the last node back, a root (a value
    used outside the region) that is not worth a contraction (see worth) is computed op by op
    too, and so its operands in the region become roots.
    """
    if not any(n.op.name == "eye" and len(n.attrs["dims"]) > 1 for n in order):
        return {}, set()  # (most graphs: one cheap scan)
    # values that something other than the reading uses: computed on their own, read as such
    own = set(out_ids)
    for n in order:
        if n.op.name not in _INDEX_OPS or id(n) in folded:
            own.update(id(a) for a in n.args)
    reader = _Reader()
    terms, kept = reader.terms, reader.kept
    inner: dict[int, frozenset] = {}  # id -> the region nodes its terms read through, itself too
    nodes = []
    for n in order:
        i = id(n)
        if i in folded:
            continue
        seed = n.op.name == "eye" and len(n.attrs["dims"]) > 1
        if not seed and (n.op.name not in _INDEX_OPS or
                         not any(id(a) in terms and id(a) not in kept for a in n.args)):
            continue
        try:
            reader.add(n)
        except _Unfit:
            kept.update(id(a) for a in n.args if id(a) in terms)
            continue
        nodes.append(n)
        inner[i] = frozenset((i,)).union(*(inner[id(a)] for a in n.args
                                           if id(a) in terms and id(a) not in kept))
        if i in own:
            kept.add(i)
    region = terms
    roots = set(kept) | {i for i in out_ids if i in region}
    for n in order:
        if id(n) not in region:
            roots.update(id(a) for a in n.args if id(a) in region)
    found: dict[int, tuple] = {}
    by_id = {id(n): n for n in nodes}
    # a node that several roots read through is computed once op by op: each root's share
    shared = Counter(j for i in roots for j in inner[i])
    for n in reversed(nodes):
        i = id(n)
        if i not in roots or n.op.name == "eye":  # (an identity is used as it is)
            continue
        try:
            by_ops = sum(_op_cost(by_id[j]) / shared[j] for j in inner[i])
            below = [by_id[j] for j in inner[i] if j != i]
            # an operand much bigger than the root would be made whole op by op (X^T @ A, A
            # of (d, h, N, h)): where that is by a symbolic size, the estimate cannot weigh N
            # against d (both 1000: 1.9 GB were made for a 32 MB Hessian), and where it is by
            # known sizes, a near tie is settled for the memory (the Brier score's 656 MB)
            wider = [_wider(a.shape, n.shape) for a in n.args if id(a) in region]
            if "name" in wider:
                pass
            elif "size" in wider:
                limit = SLACK * by_ops
                if not _contraction_cost(n, region[i], reader.sizes, limit) < limit:
                    raise _Unfit
            elif not worth(n, _contraction_cost(n, region[i], reader.sizes, by_ops), by_ops,
                           below, region[i]):
                raise _Unfit
            found[i] = _spec(n, region[i], i in reader.seeded)
        except _Unfit:  # op by op: its operands in the region are values of their own
            roots.update(id(a) for a in n.args if id(a) in region)
    return found, set(region) - roots


def _spec(root: Expr, terms: list[_Term], seeded: bool) -> tuple:
    """(Contraction, operand nodes) for ``root`` read as ``terms``; ``seeded``: whether they
    read through an identity (whose dtype the result then has too)."""
    ops: list[Expr] = []
    at: dict[int, int] = {}
    for t in terms:
        for n, _ in t.factors:
            if id(n) not in at:
                at[id(n)] = len(ops)
                ops.append(n)
    if not any(n.shape for n in ops):
        raise _Unfit  # an identity times numbers: its dtype is the inputs', kept op by op
    # each output axis's size: from an operand's axis with its label, or a known number
    where: list = []
    for k, d in enumerate(root.shape):
        src: Any = d if isinstance(d, int) else None
        for t in terms:
            lb = t.out[k]
            for n, ls in t.factors:
                if src is None and lb is not None and lb in ls:
                    src = (at[id(n)], ls.index(lb))
        if src is None:  # a symbolic size no operand has (a δ of output axes alone)
            src = d
        where.append(src)
    # a number that multiplies every term multiplies the sum once: s (a - b), not s a - s b
    # (inf a - inf b is nan where the op-by-op code gives inf)
    common = Counter(at[id(n)] for n, ls in terms[0].factors if not ls)
    for t in terms[1:]:
        common &= Counter(at[id(n)] for n, ls in t.factors if not ls)
    scale = tuple(common.elements())
    specs = []
    for t in terms:
        left = Counter(common)
        factors = []
        for n, ls in t.factors:
            if not ls and left[at[id(n)]] > 0:
                left[at[id(n)]] -= 1
                continue
            factors.append((n, ls))
        t = _Term(t.coef, tuple(factors), t.out)
        names: dict[int, int] = {}
        for lb in t.labels():
            names.setdefault(lb, len(names))
        if len(names) > 52:  # (einsum's letters, for a δ within one operand)
            raise _Unfit
        factors = tuple((at[id(n)], tuple(names[lb] for lb in ls)) for n, ls in t.factors)
        out = tuple(None if lb is None else names[lb] for lb in t.out)
        specs.append((t.coef, factors, out))
    dims = tuple(dict.fromkeys(w for w in where if isinstance(w, str)))
    inverted = tuple(k for k, n in enumerate(ops) if isinstance(n, _Recip))
    ops = [n.of if isinstance(n, _Recip) else n for n in ops]  # (the contraction inverts)
    return Contraction(tuple(where), tuple(specs), seeded, scale, len(ops), dims,
                       inverted), ops
