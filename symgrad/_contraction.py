"""The run time of symgrad._contract: a region's value from its operands, as sums of pairwise
products of labelled arrays, each term added into a strided view of the result.

Each term's order of products is planned on the first call with given shapes (the cheapest by
a cost model, see _cheapest) and kept; the plan records, for each product, the axes each array
sums first, the permutation and shape each is brought to, and whether it is a matrix product.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np

from .runtime import _float_dtype_of

EXACT_ORDER = 8  # terms of at most this many arrays get the cheapest order (3^m steps)


class Contraction:
    """The value of a region's root from its operands (see the module's docstring).

    ``where``: each output axis's size, a number, (operand, axis) or the name of a size
    passed after the operands (``dims``, ``nops`` operands); ``terms``: (coefficient,
    ((operand, labels), ...), the output axes' labels or None) each. The plan of each call's
    work (the order of the products, the axes each one moves) is made on the first call with
    given shapes and kept. ``inverted``: the operands whose reciprocals the terms read (a
    division by a value outside the region)."""

    def __init__(self, where: tuple, terms: tuple, seeded: bool = False, scale: tuple = (),
                 nops: int = 0, dims: tuple = (), inverted: tuple = ()):
        self.where, self.terms, self.seeded, self.scale = where, terms, seeded, scale
        self.nops, self.dims, self.inverted = nops, dims, inverted
        self._plans: dict[tuple, tuple] = {}
        self._einsum_plans: dict[tuple, tuple] = {}  # (see on)

    def __repr__(self) -> str:
        """Each term as einsum would write it (operands by position, ``.`` for an axis the
        term is constant along, a repeated letter for a δ): ``<contraction +1.0 *
        [0]jn,[2]ni,[4]nk->ikjk ...>``."""
        parts = []
        for coef, factors, labels in self.terms:
            ins = ",".join(f"{'1/' if i in self.inverted else ''}[{i}]{_subscripts(ls)}"
                           for i, ls in factors)
            out = "".join("." if lb is None else _subscripts((lb,)) for lb in labels)
            parts.append(f"{coef:+g} * {ins}->{out}")
        return "<contraction " + " ".join(parts) + ">"

    def __call__(self, like, *args):
        """The value from the operands (then the sizes ``dims``); ``like``: the array whose
        floating dtype the identity has in the op-by-op code (the first tensor input the
        outputs use), or None."""
        ops = args[:self.nops] if self.dims else args
        key = tuple(getattr(o, "shape", None) for o in ops) + args[len(ops):]
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > 64:
                self._plans.clear()
            plan = self._plans[key] = self._plan(ops, args[self.nops:])
        shape, terms = plan
        eye = _float_dtype_of(np, like, np.float64) if self.seeded else 1.0
        dtype = np.result_type(eye, 1.0, *ops)
        out = np.zeros(shape, dtype)
        # every product in the result's dtype, as op by op, where each meets the identity's
        ops = tuple(o.astype(dtype) if o.__class__ is np.ndarray and o.dtype != dtype else o
                    for o in ops)
        if self.inverted:  # (1/b once, where op by op divides each value below by b)
            ops = tuple(np.divide(1.0, o, dtype=dtype) if k in self.inverted else o
                        for k, o in enumerate(ops))
        _add_terms(out, terms, ops)
        for i in self.scale:
            out *= ops[i]
        return out if shape else out[()]  # (a numpy scalar, as a sum of an array is)

    def on(self, xp, like, *args):
        """The value on another array library ``xp`` (torch, jax, cupy: anything with
        ``einsum``), which computes each term with its own ``einsum`` (a δ between two output
        axes is an identity matrix there, as small as the axis). The values are
        :meth:`__call__`'s but where a δ meets a nan or inf (multiplied here, as op by op),
        in the array operands' common dtype (and the identity's, where ``like`` has one)."""
        ops = list(args[:self.nops])
        key = tuple(getattr(o, "shape", None) for o in ops) + args[self.nops:]
        plan = self._einsum_plans.get(key)
        if plan is None:
            if len(self._einsum_plans) > 64:
                self._einsum_plans.clear()
            shape = self._shape(ops, args[self.nops:])
            plan = self._einsum_plans[key] = (shape, tuple(
                _einsum_plan(coef, factors, labels, ops, shape)
                for coef, factors, labels in self.terms))
        shape, terms = plan
        arrays = [k for k, o in enumerate(ops) if hasattr(o, "shape") and o.shape != ()]
        kinds = [ops[k] for k in arrays]
        if self.seeded and getattr(like, "dtype", None) is not None:
            kinds.append(like)
        dtype = xp.result_type(*kinds) if kinds else None
        for k in arrays:  # (torch's einsum takes one dtype)
            if ops[k].dtype != dtype:
                ops[k] = xp.astype(ops[k], dtype)
        for k in self.inverted:  # (a Python 0.0: inf, as numpy gives, not ZeroDivisionError)
            ops[k] = float(np.divide(1.0, ops[k])) if ops[k].__class__ in (float, int) \
                else 1.0 / ops[k]
        total = None
        for term in terms:
            r = _einsum_run(xp, term, ops, dtype)
            total = r if total is None else total + r
        for k in self.scale:
            total = total * ops[k]
        if tuple(total.shape) == shape:
            return total
        return xp.zeros(shape, dtype=dtype) + total  # (constant along some axis)

    def _shape(self, ops, dims: tuple) -> tuple:
        return tuple(w if isinstance(w, int) else dims[self.dims.index(w)]
                     if isinstance(w, str) else int(ops[w[0]].shape[w[1]]) for w in self.where)

    def _plan(self, ops: tuple, dims: tuple) -> tuple:
        shape = self._shape(ops, dims)
        return shape, tuple(_term_plan(coef, factors, labels, ops, shape)
                            for coef, factors, labels in self.terms)


# products of tiny probabilities underflow to 0 (a matrix product never says so)
@np.errstate(under="ignore")
class _Product(NamedTuple):
    """One product of two labelled arrays (see _pair_plan): the axes each sums first, the
    permutation and shape each is brought to, whether it is a matrix product (else a
    broadcast one), and the result's shape (None: as it comes)."""
    sum_a: tuple
    sum_b: tuple
    perm_a: tuple
    shape_a: tuple
    perm_b: tuple
    shape_b: tuple
    matmul: bool
    shape: tuple | None


class _TermPlan(NamedTuple):
    """How one term is computed for given shapes (see _term_plan)."""
    coef: float
    numbers: tuple  # operands that are numbers: they scale the term
    diags: tuple  # per array operand: einsum subscripts taking its diagonal, or None
    arrays: tuple  # the array operands, in the slots the steps use
    steps: tuple  # (slot, slot, _Product): the result goes to the first slot
    last: int  # the slot holding the product of all (-1: no array)
    drop: tuple  # its axes summed at the end
    view_shape: tuple  # the strided view of the output it is added into
    view_strides: tuple  # (in entries)
    r_shape: tuple  # the product's shape in that view (1 where it broadcasts)


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


def _pair(a: np.ndarray, b: np.ndarray, da: tuple, db: tuple, pa: tuple, ra: tuple,
          pb: tuple, rb: tuple, mm: bool, rc: tuple | None) -> np.ndarray:
    """One product of a plan (the fields of a _Product)."""
    if da:
        a = a.sum(axis=da)
    if db:
        b = b.sum(axis=db)
    a = a.transpose(pa).reshape(ra)
    b = b.transpose(pb).reshape(rb)
    c = a @ b if mm else a * b
    return c if rc is None else c.reshape(rc)


def _term_plan(coef: float, factors: tuple, labels: tuple, ops: tuple,
               shape: tuple) -> _TermPlan:
    """The plan of one term (coefficient, (operand, labels) factors, the output axes'
    labels) for the operands at hand and the output's ``shape``."""
    numbers, arrays, diags, have = [], [], [], []
    for i, ls in factors:
        if not ls:
            numbers.append(i)
            continue
        sub, u = _diagonal_of(ls)
        if sub is not None:
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
        _, order = _cheapest([ls for ls, _ in have], sizes, want)
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
    return _TermPlan(coef, tuple(numbers), tuple(diags), tuple(arrays), tuple(steps), last,
                     drop, tuple(vd), tuple(vs), r_shape)


class _EinsumTerm(NamedTuple):
    """How :meth:`Contraction.on` computes one term for given shapes (see _einsum_plan)."""
    coef: float
    numbers: tuple  # operands that are numbers: they scale the term
    arrays: tuple  # per slot: (operand, einsum subscripts taking its diagonal or None), or
    #                the size of an identity matrix (a δ between two output axes)
    steps: tuple  # (slot, slot, subscripts): a pairwise product, kept in the first slot
    last: str | int  # the slot of the result; or the subscripts summing the one array
    shape: tuple  # the result's shape, 1 along an axis the term is constant along


def _einsum_plan(coef: float, factors: tuple, labels: tuple, ops: list,
                 shape: tuple) -> _EinsumTerm:
    """One term's plan on a library with ``einsum``: its arrays multiplied pairwise in the
    order _cheapest plans (a library's einsum may multiply left to right), an identity
    matrix standing for each δ between two output axes, and size-1 axes where the term is
    constant along an output axis."""
    numbers, have, arrays, sizes = [], [], [], {}
    for i, ls in factors:
        if not ls:
            numbers.append(i)
            continue
        sizes.update(zip(ls, (int(d) for d in ops[i].shape)))
        sub, u = _diagonal_of(ls)
        have.append(u)
        arrays.append((i, sub))
    used = {lb for ls in have for lb in ls} | {lb for lb in labels if lb is not None}
    fresh = iter(lb for lb in range(len(used) + len(labels) + 1) if lb not in used)
    out, seen = [], set()
    for k, lb in enumerate(labels):
        if lb is None:
            continue
        if lb in seen:  # a δ of two output axes: I[lb, new] carries the second
            new = next(fresh)
            have.append((lb, new))
            arrays.append(int(shape[k]))
            sizes[lb] = sizes[new] = int(shape[k])
            lb = new
        seen.add(lb)
        out.append(lb)
    steps: list[tuple] = []
    last: str | int = 0
    if len(arrays) > 1:
        order = _cheapest(list(have), sizes, set(out))[1]
        slot = {1 << k: k for k in range(len(have))}
        for n, (ma, mb, keep) in enumerate(order):
            a, b = slot.pop(ma), slot.pop(mb)
            lc = tuple(out) if n == len(order) - 1 else tuple(sorted(keep))
            steps.append((a, b, f"{_subscripts(have[a])},{_subscripts(have[b])}->"
                                f"{_subscripts(lc)}"))
            have[a] = lc
            slot[ma | mb] = a
        (last,) = slot.values()
    elif arrays:
        last = _subscripts(have[0]) + "->" + _subscripts(tuple(out))
    return _EinsumTerm(coef, tuple(numbers), tuple(arrays), tuple(steps), last,
                       tuple(1 if lb is None else d for lb, d in zip(labels, shape)))


def _einsum_run(xp, term: _EinsumTerm, ops: list, dtype):
    """One term's value on ``xp`` by its plan."""
    scale = term.coef
    for i in term.numbers:
        scale = scale * ops[i]
    arrays = [xp.eye(a, dtype=dtype) if a.__class__ is int else
              ops[a[0]] if a[1] is None else xp.einsum(a[1], ops[a[0]]) for a in term.arrays]
    if term.steps:
        for a, b, sub in term.steps:
            arrays[a] = xp.einsum(sub, arrays[a], arrays[b])
        r = arrays[term.last]
    elif arrays:
        r = xp.einsum(term.last, arrays[0])
    else:  # (numbers alone)
        r = xp.ones((), dtype=dtype)
    r = xp.reshape(r, term.shape)
    return r if scale.__class__ is float and scale == 1.0 else r * scale


def _diagonal_of(ls: tuple) -> tuple:
    """(einsum subscripts taking the diagonal, the labels once each) of an operand two of
    whose axes a δ joined (a label repeated), else (None, ls)."""
    if len(set(ls)) == len(ls):
        return None, ls
    u = tuple(dict.fromkeys(ls))
    return _subscripts(ls) + "->" + _subscripts(u), u


def _subscripts(ls: tuple) -> str:
    return "".join(chr(97 + lb) if lb < 26 else chr(65 + lb - 26) for lb in ls)


_BLAS = 16.0  # how much faster a matrix product is per multiply-add than a broadcast product


def _cheapest(labels: list[tuple], sizes: dict, want: set, exact: bool = True) -> tuple:
    """(cost, steps): the order of pairwise products of the arrays with these labels, each
    step (mask, mask, labels kept). The cheapest by a cost model (entries read and written, a
    matrix product's multiply-adds at BLAS speed), by dynamic programming over subsets for up
    to EXACT_ORDER arrays (where ``exact``); else the cheapest product first, again and
    again."""
    m = len(labels)
    where: dict[int, int] = {}  # label -> the mask of the arrays that have it
    for i, ls in enumerate(labels):
        for lb in ls:
            where[lb] = where.get(lb, 0) | 1 << i
    labs: dict[int, frozenset] = {}

    def kept(mask: int) -> frozenset:
        """The labels of the product of the arrays in ``mask`` that the rest (or the result)
        still needs."""
        got = labs.get(mask)
        if got is None:
            got = labs[mask] = frozenset(lb for lb, w in where.items() if w & mask and (
                w & ~mask or lb in want))
        return got

    def size(ls) -> float:
        return float(math.prod(sizes[lb] for lb in ls))

    def cost(a: int, b: int) -> float:
        la, lb, lc = kept(a), kept(b), kept(a | b)
        c = size(la) + size(lb) + size(lc)
        if (la & lb) - lc:  # a label summed here: a matrix product
            c += size(la | lb) / _BLAS
        return c

    if m > EXACT_ORDER or not exact:
        parts = [1 << i for i in range(m)]
        pairs = {(a, b): cost(a, b) for a, b in itertools.combinations(parts, 2)}
        greedy = []
        total = 0.0
        while len(parts) > 1:
            (a, b), c = min(pairs.items(), key=lambda kv: kv[1])
            total += c
            greedy.append((a, b, kept(a | b)))
            parts = [p for p in parts if p not in (a, b)]
            pairs = {k: v for k, v in pairs.items() if a not in k and b not in k}
            pairs.update(((p, a | b), cost(p, a | b)) for p in parts)
            parts.append(a | b)
        return total, tuple(greedy)
    full = (1 << m) - 1
    best: dict[int, tuple] = {1 << i: (0.0, None) for i in range(m)}
    for mask in sorted(range(1, full + 1), key=lambda x: bin(x).count("1")):
        if mask in best:
            continue
        low = mask & -mask
        top = None
        sub = (mask - 1) & mask
        while sub:
            if sub & low:  # each split once: the part holding the lowest array
                c = cost(sub, mask ^ sub) + best[sub][0] + best[mask ^ sub][0]
                if top is None or c < top[0]:
                    top = (c, (sub, mask ^ sub))
            sub = (sub - 1) & mask
        best[mask] = top
    steps: list = []

    def unfold(mask: int) -> None:
        split = best[mask][1]
        if split is None:
            return
        unfold(split[0])
        unfold(split[1])
        steps.append((split[0], split[1], kept(mask)))

    unfold(full)
    return best[full][0], tuple(steps)


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
        rec = _Product(da, db, pa, bs + (math.prod(sa), k), pb, bs + (k, math.prod(sb)), True,
                       bs + sa + sb)
    else:
        pb = tuple(lb.index(x) for x in batch + fb)
        rec = _Product(da, db, pa, bs + sa + (1,) * len(sb), pb, bs + (1,) * len(sa) + sb,
                       False, None)
    return rec, (lc, bs + sa + sb)
