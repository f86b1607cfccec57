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

Only the numpy code does this (the ops are numpy's: strided views, ``matmul``); other backends
compute such a region op by op, as before. Graphs, printing and derivatives never see it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .expr import Expr

MAX_TERMS = 8  # a root's terms: beyond this the expansion (products of sums) is not worth it
MAX_FACTORS = 8  # arrays in one term (the order search is exponential in this)
# ops a region is read through; any other op's value is an operand (an array with labels)
_INDEX_OPS = frozenset(("mul", "add", "sub", "neg", "sum", "transpose", "matmul", "outer",
                        "broadcast_to", "diag", "diagonal", "alias", "reshape"))
# a region whose values all have fewer entries than this (and known sizes) is computed op by
# op: numpy's few calls on small arrays cost less than a contraction's planning and views
BIG = 1 << 16


class _Unfit(Exception):
    """A root whose region cannot be read as index notation (it is computed op by op)."""


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
        return _Term(self.coef, tuple((n, tuple(m.get(lb, lb) for lb in ls))
                                      for n, ls in self.factors),
                     tuple(None if lb is None else m.get(lb, lb) for lb in self.out))


class _Reader:
    """Reads the nodes of one region as sums of terms (see the module's docstring)."""

    def __init__(self, region: set[int], roots: set[int]):
        self.region, self.roots = region, roots
        self.sizes: list = []  # label -> its size (an int or a size's name)
        self.memo: dict[int, list[_Term]] = {}

    def new(self, size) -> int:
        self.sizes.append(size)
        return len(self.sizes) - 1

    def fresh(self, t: _Term) -> _Term:
        return t.renamed({lb: self.new(self.sizes[lb]) for lb in t.labels()})

    def leaf(self, n: Expr) -> list[_Term]:
        ls = tuple(self.new(d) for d in n.shape)
        out = tuple(None if d == 1 else lb for d, lb in zip(n.shape, ls))
        return [_Term(1.0, ((n, ls),), out)]

    def read(self, n: Expr, top: bool = False) -> list[_Term]:
        i = id(n)
        if i not in self.region or (i in self.roots and not top):
            return self.leaf(n)
        got = self.memo.get(i)
        if got is None:
            got = self.memo[i] = self._read(n)
            if len(got) > MAX_TERMS or any(len(t.factors) > MAX_FACTORS for t in got):
                raise _Unfit
        return got

    def _read(self, n: Expr) -> list[_Term]:
        op, nd = n.op.name, n.ndim
        if op == "eye":
            ls = tuple(None if d == 1 else self.new(d) for d in n.attrs["dims"])
            return [_Term(1.0, (), ls + ls)]
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
            return [self._joined(t, _Term(1.0, (), ()), t.out[:-2] + t.out[-1:],
                                 _pad((), nd), ((t.out[-2], t.out[-1]),)) for t in a]
        if op == "neg":
            return [_Term(-t.coef, t.factors, t.out) for t in a]
        if op == "transpose":
            return [_Term(t.coef, t.factors, tuple(t.out[k] for k in n.attrs["axes"]))
                    for t in a]
        if op == "broadcast_to":
            return [_Term(t.coef, t.factors, _pad(t.out, nd)) for t in a]
        if op == "sum":
            return [self._summed(t, n) for t in a]
        b = self.read(n.args[1])
        if op in ("add", "sub"):
            s = -1.0 if op == "sub" else 1.0
            return [_Term(t.coef, t.factors, _pad(t.out, nd)) for t in a] + \
                [_Term(s * t.coef, t.factors, _pad(t.out, nd)) for t in b]
        terms = []
        for ta in a:
            for tb in b:
                tb = self.fresh(tb)
                if op == "mul":
                    terms.append(self._joined(ta, tb, _pad(ta.out, nd), _pad(tb.out, nd), ()))
                elif op == "outer":  # a[..., :, None] * b[..., None, :]
                    terms.append(self._joined(ta, tb, _pad(ta.out + (None,), nd),
                                              _pad(tb.out[:-1] + (None,) + tb.out[-1:], nd),
                                              ()))
                else:
                    terms.append(self._matmul(ta, tb, n))
        return terms

    def _diag(self, t: _Term, n: Expr) -> _Term:
        lb = t.out[-1]
        if lb is None and n.shape[-1] != 1:  # constant along it: c I, a δ of its own
            lb = self.new(n.shape[-1])
            return _Term(t.coef, t.factors, t.out[:-1] + (lb, lb))
        return _Term(t.coef, t.factors, t.out + (lb,))

    def _summed(self, t: _Term, n: Expr) -> _Term:
        axes, keep = n.attrs["axis"], n.attrs["keepdims"]
        coef = t.coef
        rest = [lb for k, lb in enumerate(t.out) if k not in axes]
        inner = {lb for _, ls in t.factors for lb in ls}
        # an axis the term is constant along (None, or a label of a δ of summed axes alone,
        # counted once: the sum of δ(k, l) over both is K) sums to a factor of its size
        sizes = [n.args[0].shape[k] for k in axes if t.out[k] is None]
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


def _pad(out: tuple, nd: int) -> tuple:
    return (None,) * (nd - len(out)) + out


def _regrouped(out: tuple, before: tuple, shape: tuple) -> tuple:
    """The labels ``out`` of axes ``before`` on ``shape``, which has the same axes but for
    those of size 1."""
    it = iter(lb for d, lb in zip(before, out) if d != 1)
    return tuple(None if d == 1 else next(it) for d in shape)


def _big(n: Expr) -> bool:
    size = 1
    for d in n.shape:
        if not isinstance(d, int):
            return True
        size *= d
    return size >= BIG


# ------------------------------------------------------------------ compile time
def contract_fusions(order: list[Expr], uses: dict[int, int], out_ids: set[int],
                     folded: dict) -> tuple[dict[int, tuple], set[int]]:
    """The roots of identity-seeded regions of ``order`` -> (Contraction, operand nodes), and
    the ids of the region's other nodes, which no line computes."""
    if not any(n.op.name == "eye" and len(n.attrs["dims"]) > 1 for n in order):
        return {}, set()  # (most graphs: one cheap scan)
    region: set[int] = set()
    for n in order:
        i = id(n)
        if i in folded:
            continue
        if (n.op.name == "eye" and len(n.attrs["dims"]) > 1) or (
                n.op.name in _INDEX_OPS and any(id(a) in region for a in n.args)):
            region.add(i)
    if not any(_big(n) for n in order if id(n) in region):
        return {}, set()
    inside: dict[int, int] = {}  # id -> how many of its uses are region nodes'
    for n in order:
        if id(n) in region:
            for a in n.args:
                inside[id(a)] = inside.get(id(a), 0) + 1
    nodes = [n for n in order if id(n) in region]
    by_id = {id(n): n for n in nodes}
    while True:
        roots = {i for i in region if i in out_ids or inside.get(i, 0) < uses.get(i, 0)}
        found: dict[int, tuple] = {}
        for n in nodes:  # (in the graph's order: the same code every time)
            i = id(n)
            if i not in roots or i not in region:
                continue
            if n.op.name == "eye":
                continue  # (used as it is: an operand of the regions below it, if any)
            try:
                reader = _Reader(region, roots)
                terms = reader.read(n, top=True)
                if not _big(n) and not any(_big(by_id[j]) for j in reader.memo):
                    raise _Unfit  # small: op by op
                found[i] = _spec(n, terms)
            except _Unfit:
                region.discard(i)  # computed op by op: its region operands are roots now
                for a in n.args:
                    if id(a) in inside:
                        inside[id(a)] -= 1
                break
        else:
            return found, region - roots


def _spec(root: Expr, terms: list[_Term]) -> tuple:
    """(Contraction, operand nodes) for ``root`` read as ``terms``."""
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
        if src is None:
            raise _Unfit
        where.append(src)
    specs = []
    for t in terms:
        names: dict[int, int] = {}
        for lb in t.labels():
            names.setdefault(lb, len(names))
        if len(names) > 52:  # (einsum's letters, for a δ within one operand)
            raise _Unfit
        factors = tuple((at[id(n)], tuple(names[lb] for lb in ls)) for n, ls in t.factors)
        out = tuple(None if lb is None else names[lb] for lb in t.out)
        specs.append((t.coef, factors, out))
    return Contraction(tuple(where), tuple(specs)), ops


# ------------------------------------------------------------------ run time
class Contraction:
    """The value of a region's root from its operands (see the module's docstring).

    ``where``: each output axis's size, a number or (operand, axis); ``terms``: (coefficient,
    ((operand, labels), ...), the output axes' labels or None) each. The plan of each call's
    work (the order of the products, the axes each one moves) is made on the first call with
    given shapes and kept."""

    def __init__(self, where: tuple, terms: tuple):
        self.where, self.terms = where, terms
        self._plans: dict[tuple, tuple] = {}

    def __repr__(self) -> str:
        """Each term as einsum would write it (operands by position, ``.`` for an axis the
        term is constant along, a repeated letter for a δ): ``<contraction +1.0 *
        [0]jn,[2]ni,[4]nk->ikjk ...>``."""
        parts = []
        for coef, factors, labels in self.terms:
            ins = ",".join(f"[{i}]{_subscripts(ls)}" for i, ls in factors)
            out = "".join("." if lb is None else _subscripts((lb,)) for lb in labels)
            parts.append(f"{coef:+g} * {ins}->{out}")
        return "<contraction " + " ".join(parts) + ">"

    def __call__(self, *ops):
        key = tuple(getattr(o, "shape", None) for o in ops)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > 64:
                self._plans.clear()
            plan = self._plans[key] = self._plan(ops)
        shape, terms = plan
        out = np.zeros(shape, np.result_type(1.0, *ops))  # (a float, as the identity is)
        _add_terms(out, terms, ops)
        return out

    def _plan(self, ops) -> tuple:
        shape = tuple(w if isinstance(w, int) else ops[w[0]].shape[w[1]] for w in self.where)
        return shape, tuple(_term_plan(coef, factors, labels, ops, shape)
                            for coef, factors, labels in self.terms)


# products of tiny probabilities underflow to 0 (a matrix product never says so)
@np.errstate(under="ignore")
def _add_terms(out: np.ndarray, terms: tuple, ops: tuple) -> None:
    size = out.itemsize
    for coef, numbers, diags, arrays, steps, last, drop, view_shape, view_strides, r_shape \
            in terms:
        scale = coef
        for i in numbers:
            scale = scale * ops[i]  # a number (weak, as the op-by-op code has it), 0-d array
        slots = [ops[i] if sub is None else np.einsum(sub, ops[i])
                 for i, sub in zip(arrays, diags)]
        for a, b, rec in steps:
            slots[a] = _pair(slots[a], slots[b], *rec)
        r = slots[last] if slots else np.asarray(1.0)
        if drop:
            r = r.sum(axis=drop)
        view = np.ndarray(view_shape, out.dtype, out, 0, tuple(k * size for k in view_strides))
        r = r.reshape(r_shape)
        if scale.__class__ is float and scale == -1.0:
            view -= r
        elif scale.__class__ is float and scale == 1.0:
            view += r
        else:
            view += r * scale


def _pair(a, b, da, db, pa, ra, pb, rb, mm: bool, rc):
    """One product of a plan (see _pair_plan)."""
    if da:
        a = a.sum(axis=da)
    if db:
        b = b.sum(axis=db)
    a = a.transpose(pa).reshape(ra)
    b = b.transpose(pb).reshape(rb)
    c = a @ b if mm else a * b
    return c if rc is None else c.reshape(rc)


def _term_plan(coef, factors: tuple, labels: tuple, ops, shape: tuple) -> tuple:
    numbers, arrays, diags, have = [], [], [], []
    for i, ls in factors:
        if not ls:
            numbers.append(i)
            continue
        sub = None
        if len(set(ls)) < len(ls):  # a δ joined two of its axes: its diagonal
            u = tuple(dict.fromkeys(ls))
            sub = _subscripts(ls) + "->" + _subscripts(u)
            sizes = dict(zip(ls, ops[i].shape))
            ls, dims = u, tuple(sizes[lb] for lb in u)
        else:
            dims = ops[i].shape
        arrays.append(i)
        diags.append(sub)
        have.append((ls, dims))
    want = {lb for lb in labels if lb is not None}
    steps = []
    if have:
        sizes = {lb: d for ls, dims in have for lb, d in zip(ls, dims)}
        order = _cheapest([ls for ls, _ in have], sizes, want)
        slot = {1 << k: k for k in range(len(have))}
        for ma, mb, keep in order:
            a, b = slot.pop(ma), slot.pop(mb)
            rec, have[a] = _pair_plan(*have[a], *have[b], keep)
            steps.append((a, b, rec))
            slot[ma | mb] = a
        (last,) = slot.values()
        rl, dims = have[last]
    else:
        last, rl, dims = -1, (), ()
    drop = tuple(k for k, lb in enumerate(rl) if lb not in want)
    rl = tuple(lb for lb in rl if lb in want)
    rdims = tuple(d for lb, d in zip(have[last][0], dims) if lb in want) if have else ()
    # a strided view of the output with one axis per label of r, then one per label r lacks
    # (a δ of output axes alone, or an axis the term is constant along): r broadcasts there
    elem = [1] * len(shape)
    for k in range(len(shape) - 2, -1, -1):
        elem[k] = elem[k + 1] * shape[k + 1]
    vs, vd = [], []
    for lb in rl + tuple(dict.fromkeys(lb for lb in labels if lb is not None and lb not in rl)):
        axes = [k for k, x in enumerate(labels) if x == lb]
        vs.append(sum(elem[k] for k in axes))
        vd.append(shape[axes[0]])
    for k, x in enumerate(labels):
        if x is None:
            vs.append(elem[k])
            vd.append(shape[k])
    r_shape = rdims + (1,) * (len(vd) - len(rdims))
    return (coef, tuple(numbers), tuple(diags), tuple(arrays), tuple(steps), last, drop,
            tuple(vd), tuple(vs), r_shape)


def _subscripts(ls: tuple) -> str:
    return "".join(chr(97 + lb) if lb < 26 else chr(65 + lb - 26) for lb in ls)


_BLAS = 16.0  # how much faster a matrix product is per multiply-add than a broadcast product


def _cheapest(labels: list[tuple], sizes: dict, want: set) -> tuple:
    """The order of pairwise products of the arrays with these labels that costs least (by
    dynamic programming over subsets): (mask, mask, labels kept) for each product."""
    m = len(labels)
    sets = [frozenset(ls) for ls in labels]
    full = (1 << m) - 1

    def size(ls) -> float:
        return float(math.prod(sizes[lb] for lb in ls))

    def kept(mask: int) -> frozenset:
        mine = frozenset().union(*(sets[i] for i in range(m) if mask >> i & 1))
        rest = frozenset().union(*(sets[i] for i in range(m) if not mask >> i & 1))
        return mine & (rest | want)

    best: dict[int, tuple] = {1 << i: (0.0, None) for i in range(m)}
    labs = {mask: kept(mask) for mask in range(1, full + 1)}
    for mask in sorted(range(1, full + 1), key=lambda x: bin(x).count("1")):
        if mask in best:
            continue
        low = mask & -mask
        top = None
        sub = (mask - 1) & mask
        while sub:
            if sub & low:  # each split once: the part holding the lowest array
                a, b = sub, mask ^ sub
                la, lb, lc = labs[a], labs[b], labs[mask]
                cost = size(la) + size(lb) + size(lc)
                if (la & lb) - lc:  # a label summed here: a matrix product
                    cost += size(la | lb) / _BLAS
                cost += best[a][0] + best[b][0]
                if top is None or cost < top[0]:
                    top = (cost, (a, b))
            sub = (sub - 1) & mask
        best[mask] = top
    steps: list = []

    def unfold(mask: int) -> None:
        split = best[mask][1]
        if split is None:
            return
        unfold(split[0])
        unfold(split[1])
        steps.append((split[0], split[1], labs[mask]))

    unfold(full)
    return tuple(steps)


def _pair_plan(la: tuple, da_: tuple, lb: tuple, db_: tuple, keep) -> tuple:
    """The record of one product of two labelled arrays (labels, sizes), summed over the
    labels ``keep`` lacks: a matrix product (batched over the labels both have and keep)
    where they share such a label, else a broadcast product; and the result's (labels,
    sizes)."""
    size = dict(zip(la, da_)) | dict(zip(lb, db_))
    da = tuple(k for k, x in enumerate(la) if x not in lb and x not in keep)
    la = tuple(x for x in la if x in lb or x in keep)
    db = tuple(k for k, x in enumerate(lb) if x not in la and x not in keep)
    lb = tuple(x for x in lb if x in la or x in keep)
    inner = [x for x in la if x in lb and x not in keep]
    batch = [x for x in la if x in lb and x in keep]
    fa = [x for x in la if x not in lb]
    fb = [x for x in lb if x not in la]
    bs = tuple(size[x] for x in batch)
    sa, sb = tuple(size[x] for x in fa), tuple(size[x] for x in fb)
    lc = tuple(batch + fa + fb)
    pa = tuple(la.index(x) for x in batch + fa + inner)
    if inner:
        k = math.prod(size[x] for x in inner)
        pb = tuple(lb.index(x) for x in batch + inner + fb)
        rec = (da, db, pa, bs + (math.prod(sa), k), pb, bs + (k, math.prod(sb)), True,
               bs + sa + sb)
    else:
        pb = tuple(lb.index(x) for x in batch + fb)
        rec = (da, db, pa, bs + sa + (1,) * len(sb), pb, bs + (1,) * len(sa) + sb, False,
               None)
    return rec, (lc, bs + sa + sb)
