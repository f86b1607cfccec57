"""The emitters behind ``sg.compile``: names and constants, constant folding, the Python
``math`` version of a scalar graph (with inlining), and the array version's statements.

Each emitter turns a topological order into lines of Python; :mod:`symgrad.compile` assembles
them into functions, with their input checks.
"""

from __future__ import annotations

import builtins
import keyword
import math
import re
from typing import Any

import numpy as np

from . import runtime
from ._buffers import plan_buffers
from ._contract import contract_fusions
from .expr import Expr

FREE = ("var", "const", "dimsize")  # leaves whose code is a name, not a statement
MAX_INLINE_DEPTH = 8  # nesting of inlined expressions in the math version


_RESERVED = frozenset(dir(builtins)) | frozenset(keyword.kwlist)


def plain_name(name: str) -> bool:
    """Whether a variable's name can be the parameter's name in the generated source."""
    return (name.isascii() and name.isidentifier() and name[0] != "_"
            and name not in _RESERVED)


class Gen:
    """Names for one generated function: inputs, constants, sizes and temporaries."""

    def __init__(self, inputs: list[Expr]):
        self.consts: list[Any] = []
        self.const_names: dict[tuple, str] = {}
        self.params: dict[int, str] = {}
        self.dims: dict[str, str] = {}
        # ids of the scalar nodes that may be Python numbers at run time (None: every scalar
        # node may be, as in a graph of scalars; see number_nodes)
        self.numbers: set[int] | None = None
        self.weak = False  # a graph of scalars: its number nodes go through runtime.Weak
        self.wide: set[int] = set()  # products computed transposed (ops.linalg.wide_products)
        used = set()
        for i, v in enumerate(inputs):
            name = v.attrs["vname"]
            p = name if plain_name(name) and name not in used else f"_in{i}"
            used.add(p)
            self.params[id(v)] = p
        # the first tensor input: arrays the code creates (identities) take its floating dtype,
        # so that they do not promote a float32 computation to float64
        self.like: str | None = next((self.params[id(v)] for v in inputs if v.shape), None)

    def may_be_number(self, n: Expr) -> bool:
        """Whether ``n`` may be a Python number at run time (then ``a / b`` may raise)."""
        return not n.shape and (self.numbers is None or id(n) in self.numbers)

    def var_name(self, n: Expr) -> str:
        return self.params[id(n)]

    def const(self, value) -> str:
        """A name for a constant: constants travel to the code as objects, never as text."""
        key = (type(value).__name__, id(value) if isinstance(value, np.ndarray) else value)
        name = self.const_names.get(key)
        if name is None:
            name = f"_c{len(self.consts)}"
            self.consts.append(value)
            self.const_names[key] = name
        return name

    def dim(self, d) -> str:
        if isinstance(d, int):
            return str(d)
        name = self.dims.get(d)
        if name is None:
            # an ASCII size name is kept readable; others are numbered, since Python folds
            # identifiers (NFKC: "ℌ" is "H") and two sizes must never share a variable
            name = f"_d_{d}" if d.isascii() else f"_dx{len(self.dims)}"
            self.dims[d] = name
        return name

    def shape(self, shape) -> str:
        if not shape:
            return "()"
        return "(" + ", ".join(self.dim(d) for d in shape) + ",)"


# ------------------------------------------------------------------ compile-time constants
def fold_constants(order: list[Expr], gen: Gen, xp) -> dict[int, str]:
    """Evaluate every node computed from constants alone, once; id -> the constant's name."""
    folded: dict[int, str] = {}
    known: dict[int, Any] = {}
    ns = {"_xp": xp, "_hx": np, "_m": math, "_rt": runtime, "_max": max, "_min": min,
          "_abs": abs}
    for n in order:
        args = n.args
        if not args:
            op = n.op.name
            if op == "const":
                known[id(n)] = n.attrs["value"]
                continue
            if op != "eye" or not all(isinstance(d, int) for d in n.attrs["dims"]):
                continue
        elif not known:
            continue
        else:
            for a in args:
                if id(a) not in known:
                    break
            else:
                a = None
            if a is not None:
                continue
        if gen.like is not None and n.shape and \
                not any(isinstance(known[id(a)], np.ndarray) for a in args):
            # an array made of Python numbers alone (an identity, a broadcast number) is weak:
            # made at run time in the floating dtype of the first tensor input used (runtime.eye,
            # runtime.broadcast_number), where folding would make it float64
            continue
        names = [f"_k{i}" for i in range(len(args))]
        try:
            src = n.op.code(names, n, gen)
            with np.errstate(all="raise"):  # 1/0, overflow: left to run time, with its warning
                val = eval(src, ns, {nm: known[id(a)] for nm, a in zip(names, args)})  # noqa: S307  (our own generated code)
        except Exception:  # noqa: BLE001  (leave it to run time, where errors are reported)
            continue
        if getattr(val, "ndim", None) == 0:
            item = getattr(val, "item", None)
            if item is None:  # a lazy 0-d array (dask's): like its n-d ones, left to run time
                continue
            val = item()  # a weak Python scalar: never a float64 0-d array in float32 code
        if isinstance(val, np.ndarray):
            val.setflags(write=False)
        elif isinstance(val, bool) or not isinstance(val, (float, int)):
            continue
        known[id(n)] = val
        folded[id(n)] = gen.const(val)
    return folded


# ------------------------------------------------------------------ the returned values
# ops whose numpy code may return (a view of) their operand's own array
_VIEW_OPS = frozenset(("transpose", "reshape", "fit_shape", "take", "stop_gradient", "alias",
                       "guard", "diagonal", "broadcast_to", "straight_through"))


def returned(outs: list[Expr], code: dict, fresh_ids, mutable: bool = True,
             numpy: bool = False) -> list[str]:
    """Each output's code in the ``return``, so that every result is an array of its own.

    A broadcast (or a view of one) and a constant are made fresh, writable arrays
    (``fresh_ids``: the outputs folded to constants). On a backend of ``mutable`` arrays, an
    output that is an input or a view of one (``grad(sum(a*b), b)`` is ``a``), a read-only
    diagonal, or a view of the same array as an earlier output, is copied: writing into a result
    then changes neither the caller's arrays nor another result. ``numpy``: the code's arrays
    are numpy's, whose copy of a named value is written inline (``_rt.own``'s call is 0.15 µs,
    paid by each of a symmetric Hessian's repeated entries even where they are numpy scalars).
    """
    vals, bases = [], set()
    for o in outs:
        v = code[id(o)]
        base, broadcast = o, False
        while base.op.name in _VIEW_OPS:
            broadcast = broadcast or base.op.name == "broadcast_to"
            base = base.args[0]
        # a broadcast, or a view of one (its transpose, a row of it): read-only, entries shared
        if broadcast or id(o) in fresh_ids:
            v = f"_rt.materialize(_xp, {v})"
        elif mutable and (base.op.name in ("var", "const") or id(base) in bases or
                          o.op.name in ("diagonal", "straight_through")):
            # (straight_through's value is its hard operand, or a read-only broadcast of it)
            if numpy and v.isidentifier():
                v = f"({v} if {v}.__class__ is not _ndarray else {v}.copy())"
            else:
                v = f"_rt.own(_xp, {v})"
        bases.add(id(base))
        vals.append(v)
    return vals


# ------------------------------------------------------------------ the math version
def _wrap(expr: str) -> str:
    """``expr`` as an operand: parenthesised unless it is a name, a literal or one call."""
    if expr.isidentifier():
        return expr
    if expr[-1] == ")":
        i = 0 if expr[0] == "(" else expr.find("(")
        if (i == 0 or expr[:i].replace(".", "").replace("_", "a").isalnum()) \
                and _closes_at_end(expr, i):
            return expr
    return f"({expr})"


def _closes_at_end(expr: str, i: int) -> bool:
    """Whether the parenthesis at ``i`` closes at the last character."""
    depth = 0
    last = len(expr) - 1
    for j in range(i, len(expr)):
        c = expr[j]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j == last
    return False


def _substitute(src: str, ph: str, expr: str) -> str:
    """``src`` with the placeholder replaced by ``expr``, in parentheses where they are needed."""
    p = src.index(ph)
    q = p + len(ph)
    if (src[p - 1:p] == "(" or src[p - 2:p] == ", ") and src[q:q + 1] in (")", ","):
        return src[:p] + expr + src[q:]  # a whole argument of a call
    return src[:p] + _wrap(expr) + src[q:]


_PH = [f"\x00{i}\x00" for i in range(8)]  # operand placeholders while deciding what to inline


_UNARY, _ATOM = 3, 9  # precedences of -x and of a name, literal or call; generic code: 0


def _operand(expr: str, prec: int, need: int) -> str:
    """``expr`` (of precedence ``prec``; 0: unknown) as an operand that needs ``need``."""
    if prec >= need:
        return expr
    return _wrap(expr) if prec == 0 else f"({expr})"


def math_lines(order, gen, uses, folded) -> tuple[list[str], dict[int, str]] | None:
    """Statements of the math version and each node's code; None if an op has no math form.

    A node used exactly once (by another node or by the return) is inlined into its user when
    the user's code mentions it once; everything else gets a statement. Operators (``op.infix``)
    get parentheses only where Python's precedence needs them: ``a * b * (c - d)``.
    """

    return inline_lines(order, uses, gen, folded, None, lambda n, a: n.op.math(a, n, gen))


def inline_lines(order, uses, gen, folded, free, src_of, operands=None, skip=None,
                 infix_numbers=True):
    """Statements computing ``order`` with nodes used once inlined, and each node's code.

    Nodes in ``folded`` (id -> constant's name) and leaves whose op is in ``free`` (None: every
    leaf) need no statement; ``src_of(n, a)``: the code of ``n`` from its operands' code ``a``
    (None: no such form, and the result is None); ``operands(n)``: the nodes whose code
    ``src_of`` takes (default ``n.args``); ``skip``: ids of nodes computed inside another
    node's code (fused into it); ``infix_numbers``: whether scalar nodes are written with
    their op's infix even where Python numbers compute otherwise than numpy (the math
    version, which falls back when Python raises), or with ``src_of`` there (array code).
    """
    code: dict[int, str] = {}
    prec: dict[int, int] = {}  # precedence of each node's code
    depth: dict[int, int] = {}  # nodes not yet written: id -> nesting depth of their expression
    lines: list[str] = []
    emit = lines.append
    fget, params, pending = folded.get, gen.params, depth.pop
    k = 0
    for n in order:
        i = id(n)
        if skip and i in skip:
            continue
        op = n.op
        c = fget(i)
        if c is None and (op.leaf if free is None else op.name in free):
            c = params[i] if op.name == "var" else op.code([], n, gen)
        if c is not None:  # a name or a literal: no statement
            code[i] = c
            prec[i] = _UNARY if c[0] == "-" else _ATOM
            continue
        args = n.args if operands is None else operands(n)
        inf = op.infix if args is n.args else None  # (a fused node's code is src_of's)
        if inf is not None and not infix_numbers and not op.numbers_infix \
                and gen.may_be_number(n):
            inf = None  # array code: this op's code for a scalar node (see Op.numbers_infix)
        if inf is not None:
            sym, level = inf
            x = id(args[0])
            c, p = code[x], prec[x]
            d = pending(x, 0)  # how deep the inlined operands nest (0: names)
            if p < level:
                c = _operand(c, p, level)
            if len(args) == 1:
                src = f"{sym}{c}"
            else:
                # a right operand may not share the operator's level (left-associative): a - b - c
                # is (a - b) - c, and a - (b - c) keeps its parentheses
                y = id(args[1])
                c2, p = code[y], prec[y]
                dy = pending(y, 0)
                if dy > d:
                    d = dy
                if p <= level:
                    c2 = _operand(c2, p, level + 1)
                src = f"{c} {sym} {c2}"
            sp = level
        else:
            d = 0
            a = []
            pend = []
            for j, x in enumerate(args):
                xi = id(x)
                if xi in depth and j < 8:
                    a.append(_PH[j])
                    pend.append(j)
                else:
                    a.append(code[xi])
            src = src_of(n, a)
            if src is None:
                return None
            for j in pend:
                xi = id(args[j])
                ph = _PH[j]
                if src.count(ph) == 1:
                    src = _substitute(src, ph, code[xi])
                    if depth[xi] > d:
                        d = depth[xi]
                else:  # mentioned twice: compute it once, before
                    name = f"_t{k}"
                    k += 1
                    emit(f"{name} = {code[xi]}")
                    code[xi] = name
                    src = src.replace(ph, name)
                del depth[xi]
            sp = 0
        if uses[i] == 1 and d < MAX_INLINE_DEPTH and not op.random:
            code[i] = src
            depth[i] = d + 1
            prec[i] = sp
        else:
            name = f"_t{k}"
            k += 1
            emit(f"{name} = {src}")
            code[i] = name
            prec[i] = _ATOM
    return lines, code


# ------------------------------------------------------------------ the array version
def dot_fusions(order, uses, region: set[int] = frozenset()) -> set[int]:
    """ids of ``mul`` nodes whose only user sums them to a scalar: lowered as ``a @ b``
    (not in a ``region`` computed as contractions)."""
    fused: set[int] = set()
    for n in order:
        if n.op.name != "sum" or n.attrs["keepdims"] or n.ndim or id(n) in region:
            continue
        m = n.args[0]
        if m.op.name == "mul" and m.ndim == 1 and uses.get(id(m)) == 1 \
                and id(m) not in region and m.args[0].shape == m.args[1].shape == m.shape:
            fused.add(id(m))
    return fused


def outer_fusions(order, uses, out_ids, folded, region: set[int] = frozenset()
                  ) -> dict[int, tuple]:
    """id of a ``mul`` node -> (P, M) where it multiplies the matrix ``M`` by ``P``, the outer
    product of two vectors ``a`` and ``b`` that has no other use.

    It is lowered as ``M * a[:, None] * b`` (in place in ``M``'s buffer when ``M`` dies there):
    the N x l outer product is never allocated. This is the backward pass of every hidden
    layer that feeds one output unit, ``outer(dL/dz, w) * sigmoid'(...)``: one N x l temporary
    fewer at the peak (W2: 2.3 instead of 3.1 of them; its time moves within the noise).
    """
    found: dict[int, tuple] = {}
    for n in order:
        if n.op.name != "mul" or n.ndim != 2 or id(n) in region:
            continue
        for j in (0, 1):
            p, m = n.args[j], n.args[1 - j]
            if p.op.name == "outer" and m.shape == n.shape and p is not m \
                    and uses.get(id(p)) == 1 and id(p) not in out_ids and id(p) not in region \
                    and id(p) not in folded and p.args[0].ndim == 1 and p.args[1].ndim == 1:
                found[id(n)] = (p, m)
                break
    return found


def scalar_math_nodes(order, gen, folded) -> set[int]:
    """ids of the number nodes of a tensor graph (see number_nodes) that have a Python
    ``math`` form: computed as Python numbers, they stay weak scalars, so a float32 batch
    stays float32 (numpy functions would return float64 numpy scalars). A scalar computed
    from an array (a sum) is a numpy scalar of the array's dtype, and stays with numpy."""
    nums = gen.numbers if gen.numbers is not None else number_nodes(order, folded)
    return {id(n) for n in order if id(n) in nums and not n.op.leaf and id(n) not in folded
            and n.op.math(["_"] * len(n.args), n, gen) is not None}


def number_nodes(order, folded) -> set[int]:
    """ids of the scalar nodes of a tensor graph computed from scalar inputs, constants and
    sizes alone: Python numbers at run time (samples for a scalar input never reach them: they
    are computed one call each, or by a batched version in which that input is a vector; see
    symgrad._per_sample)."""
    out: set[int] = set()
    for n in order:
        if n.shape or n.op.random:
            continue
        if id(n) in folded or (n.op.name in FREE if n.op.leaf else
                               all(id(a) in out for a in n.args)):
            out.add(id(n))
    return out


_XP = re.compile(r"\b_xp\b")


def hosted_code(n, a: list[str], gen) -> str:
    """The code of the number node ``n`` computed by numpy on the host (through runtime.Weak
    of ``_hx``: numpy, or runtime.HostOr for another backend): numpy's inf and nan (never
    Python's exceptions), and, of Python numbers, a Python number, weak as they are (an array
    library's function of a Python number would make a float64 array, promoting a float32
    batch); of a numpy number given for an input, numpy's, strong as numpy keeps it (a Python
    number of np.float64 made sin(s) * v float32 where s * v is float64). An operator
    (+, -, *, /) is left as it is: Python's operators keep a number weak or strong as it is."""
    if gen.weak or n.op.infix is None:
        return _XP.sub('_wk', n.op.code(a, n, gen))
    return _XP.sub('_hx', n.op.code(a, n, gen))


def array_lines(order, gen, uses, out_ids, folded, inplace: bool,
                mathed: set[int], hosted: set[int] = frozenset(),
                contract: bool | str = False) -> tuple[list[str], dict, bool]:
    """Statements of an array version, each node's name, and whether a dead buffer is reused
    (then the code needs every input to share one floating dtype). ``mathed``: number nodes
    written in their Python ``math`` form; ``hosted``: those computed by numpy on the host
    (see hosted_code); ``contract``: regions below a tensor identity are computed as
    contractions (True: numpy's, see symgrad._contract; "einsum": another library's)."""
    roots, interior = contract_fusions(order, uses, out_ids, folded) if contract else ({}, set())
    region = interior | set(roots)  # (the other fusions stay out of it)
    fused = dot_fusions(order, uses, region)
    outers = outer_fusions(order, uses, out_ids, folded, region)
    # the operands each fused line reads, instead of the node it computes in passing
    operands: dict[int, tuple] = {i: (m, *p.args) for i, (p, m) in outers.items()}
    for n in order:
        if n.op.name == "sum" and id(n.args[0]) in fused:
            operands[id(n)] = n.args[0].args
    skipped = fused | {id(p) for p, _ in outers.values()}
    calls: dict[int, tuple] = {}  # root of a contracted region -> its call, around operands
    if roots:
        uses = _contracted_uses(order, uses, roots, interior)
        like = gen.like or "None"
        for i, (spec, ops) in roots.items():
            operands[i] = tuple(ops)
            call = "(" if contract is True else ".on(_xp, "  # (numpy's, or einsum's)
            calls[i] = (f"{gen.const(spec)}{call}{like}",
                        "".join(f", {gen.dim(d)}" for d in spec.dims) + ")")
        skipped = skipped | interior
    promoting = (gen.numbers or set()) - mathed - hosted  # xp's functions of Python numbers
    plan = plan_buffers(order, uses, out_ids, folded, skipped, operands, inplace, gen,
                        promoting, set(calls))
    if not plan.into and not plan.free_after:
        # no buffer to reuse or free early: nodes used once are inlined, as in the math version
        # (outer products are not fused there: each is one expression with its user)
        return (*_inlined_array_lines(order, gen, uses, folded, mathed, fused | interior,
                                      hosted, {i: operands[i] for i in operands
                                               if i not in outers}, calls), False)
    names: dict[int, str] = {}
    lines: list[str] = []
    k = 0
    for n in order:
        i = id(n)
        if i in folded:
            names[i] = folded[i]
            continue
        if n.op.name in FREE:
            names[i] = n.op.code([], n, gen)
            continue
        if i in skipped:
            continue
        into = plan.into.get(i)
        if n.op.name == "sum" and id(n.args[0]) in fused:
            m = n.args[0]
            src = f"{names[id(m.args[0])]} @ {names[id(m.args[1])]}"
        elif i in calls:
            head, tail = calls[i]
            src = head + "".join(f", {names[id(x)]}" for x in operands[i]) + tail
        elif i in outers:
            m, a, b = (names[id(x)] for x in operands[i])
            if into is not None:  # into is M: scale its rows, then its columns, in place
                name = m
                src = f"_xp.multiply(_xp.multiply({m}, {a}[:, None], out={m}), {b}, out={m})"
            else:
                src = f"{m} * {a}[:, None] * {b}"
        else:
            a = [names[id(x)] for x in n.args]
            if into is not None:
                name = names[id(into)]  # the result overwrites the dead operand, under its name
                src = n.op.code_into(a, n, gen, name)
            elif i in mathed:
                src = n.op.math(a, n, gen)
            elif i in hosted:
                src = hosted_code(n, a, gen)
            else:
                src = n.op.code(a, n, gen)
        if into is None:
            name = f"_t{k}"
            k += 1
        lines.append(f"{name} = {src}")
        names[i] = name
        dead = plan.free_after.get(i)
        if dead:
            lines.append("del " + ", ".join(sorted(names[x] for x in dead)))
    return lines, names, bool(plan.into)


def _contracted_uses(order, uses, roots: dict, interior: set[int]) -> dict[int, int]:
    """``uses`` with the region nodes' uses of their operands replaced by the roots' calls'
    (one each per operand)."""
    uses = dict(uses)
    for n in order:
        if id(n) in roots or id(n) in interior:
            for a in n.args:
                uses[id(a)] -= 1
    for _, ops in roots.values():
        for x in ops:
            uses[id(x)] = uses.get(id(x), 0) + 1
    return uses


def _inlined_array_lines(order: list[Expr], gen: Gen, uses: dict, folded: dict, mathed: set,
                         skipped: set, hosted: set, fused_args: dict,
                         calls: dict) -> tuple[list[str], dict]:
    """The array version's statements where no buffer is reused: nodes used once inlined;
    ``skipped``: nodes computed inside another's code, ``fused_args``: the operands such a
    node's code reads, ``calls``: the contractions' calls (see array_lines)."""
    def operands(n):
        return fused_args.get(id(n), n.args)

    def src_of(n, a):
        if id(n) in calls:
            head, tail = calls[id(n)]
            return head + "".join(f", {x}" for x in a) + tail
        if n.op.name == "sum" and id(n.args[0]) in skipped:
            return f"{_wrap(a[0])} @ {_wrap(a[1])}"
        if id(n) in mathed:
            return n.op.math(a, n, gen)
        if id(n) in hosted:
            return hosted_code(n, a, gen)
        return n.op.code(a, n, gen)

    return inline_lines(order, uses, gen, folded, FREE, src_of, operands, skipped,
                        infix_numbers=False)
