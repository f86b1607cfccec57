"""Ops at the edge of differentiability: floor, integer casts, sampling, straight-through, and
the zero that knows why it is zero.

- ``floor`` and ``to_int`` (an integer cast, rounding toward zero) are piecewise constant: their
  derivative is undefined at the jumps and useless elsewhere, so asking for it raises
  :class:`~symgrad.NonDifferentiableError`.
- ``sample_bernoulli(p, seed)`` and ``sample_categorical(logits, seed)`` draw from a seeded numpy
  ``Generator``. Each compiled function owns its generators (created when it is compiled and
  passed to the generated code as closure objects, never as text): its calls draw a reproducible
  stream. A sample has no derivative with respect to its parameters.
- ``straight_through(hard, soft)`` has the value of ``hard`` and the derivative of ``soft``.
- ``zero`` is a zero tensor that records why a derivative is zero (see :mod:`symgrad.autodiff`).
"""

from __future__ import annotations

import numpy as np

from .. import functions as F
from .._lazy import sympy
from ..errors import ShapeError
from ..shapes import broadcast, fmt_shape
from .base import P_ATOM, Op, broadcast_code, register, tex_op_name


class Floor(Op):
    """The largest integer <= x (as a float), elementwise; not differentiable."""

    name = fn = "floor"
    nargs = 1
    elementwise = True
    nondiff = (0,)

    def code(self, a, n, g):
        return f"_xp.floor({a[0]})"

    def math(self, a, n, g):
        return f"_float(_m.floor({a[0]}))"

    def sympy(self, a, n, ctx):
        return ctx.apply(sympy.floor, a, n)

    def vjp(self, n, ct, nb, wants):
        self.check_diff(n, wants)
        return [None]

    def tex(self, a, n):
        return rf"\left\lfloor {a[0][0]} \right\rfloor", P_ATOM


class ToInt(Op):
    """x rounded toward zero, as an integer array (int64); not differentiable."""

    name = fn = "to_int"
    nargs = 1
    elementwise = True
    nondiff = (0,)

    def code(self, a, n, g):
        return f"_rt.to_int(_xp, {a[0]})"

    def sympy(self, a, n, ctx):
        return ctx.apply(lambda x: sympy.sign(x) * sympy.floor(sympy.Abs(x)), a, n)

    def vjp(self, n, ct, nb, wants):
        self.check_diff(n, wants)
        return [None]

    def text(self, a, n):
        return f"int({a[0][0]})", P_ATOM

    def tex(self, a, n):
        return rf"\operatorname{{int}}\left({a[0][0]}\right)", P_ATOM


class _Sample(Op):
    nargs = 1
    attr_names = ("seed",)
    nondiff = (0,)
    random = True

    def rng(self, n, g) -> str:
        """The closure name of this node's generator: one per node per compiled function, which
        every version of it shares (the versions compiled later for mixed dtypes or for
        numpy's inf and nan made generators of their own, so their draws started over)."""
        key = ("rng", id(n))
        name = g.const_names.get(key)
        if name is None:
            name = g.const_names[key] = g.const(np.random.default_rng(n.attrs["seed"]))
        return name

    def sympy(self, a, n, ctx):
        raise NotImplementedError(f"{self.name} (a random sample) has no sympy form")

    def vjp(self, n, ct, nb, wants):
        self.check_diff(n, wants)
        return [None]

    def text(self, a, n):
        return f"{self.name}({a[0][0]}, seed={n.attrs['seed']})", P_ATOM

    def tex(self, a, n):
        short = tex_op_name(self.name.removeprefix("sample_"))
        return (rf"\operatorname{{{short}}}_{{{n.attrs['seed']}}}\left({a[0][0]}\right)",
                P_ATOM)


class SampleBernoulli(_Sample):
    """1.0 with probability p, else 0.0 (elementwise), from a seeded generator."""

    name = "sample_bernoulli"

    def infer(self, args, attrs):
        return args[0].shape, ()

    def code(self, a, n, g):
        return f"_rt.sample_bernoulli(_xp, {self.rng(n, g)}, {a[0]})"


class SampleCategorical(_Sample):
    """An index drawn with probabilities softmax(logits) along the last axis (int64)."""

    name = "sample_categorical"

    def infer(self, args, attrs):
        x = args[0]
        if x.ndim < 1:
            raise ShapeError(f"sample_categorical: the logits need at least one axis, got "
                             f"shape {fmt_shape(x.shape)}")
        return x.shape[:-1], ()

    def code(self, a, n, g):
        return f"_rt.sample_categorical(_xp, {self.rng(n, g)}, {a[0]})"


class StraightThrough(Op):
    """The value of ``hard`` with the derivative of ``soft`` (shapes broadcast)."""

    name = fn = "straight_through"
    nargs = 2
    leading_axes = True  # the operands broadcast, as an elementwise op's do
    zero_grad = (0,)  # the hard value counts as a constant

    def infer(self, args, attrs):
        return broadcast(self.name, [a.shape for a in args])

    def code(self, a, n, g):
        if n.args[0].shape == n.shape:
            return a[0]
        return broadcast_code(a[0], n.args[0], n.shape, g)

    def math(self, a, n, g):
        return a[0]

    def sympy(self, a, n, ctx):
        return ctx.broadcast(a[0], n) if n.args[0].shape != n.shape else a[0]

    def vjp(self, n, ct, nb, wants):
        return [None, F.unbroadcast(ct, nb, n.args[1].shape) if wants[1] else None]


class Zero(Op):
    """A zero tensor that records why it is zero ("zero" or "disconnected", and a sentence)."""

    name = "zero"
    attr_names = ("kind", "why", "shape")
    nargs = 0
    leaf = True

    def infer(self, args, attrs):
        return tuple(attrs["shape"]), ()

    def code(self, a, n, g):
        if not n.shape:
            return "0.0"
        like = getattr(g, "like", None)  # in the floating dtype of a tensor input, if any
        shape = g.shape(n.shape)
        return f"_rt.zeros(_xp, {shape}, {like})" if like else f"_xp.zeros({shape})"

    def math(self, a, n, g):
        return "0.0"

    def sympy(self, a, n, ctx):
        if not n.shape:
            return sympy.Integer(0)
        return sympy.ZeroMatrix(*ctx._mshape(n.shape))

    def vjp(self, n, ct, nb, wants):
        return []

    def text(self, a, n):
        shape = f" {fmt_shape(n.shape)}" if n.shape else ""
        return f"0{shape} [{n.attrs['kind']}: {n.attrs['why']}]", P_ATOM

    def tex(self, a, n):
        return rf"0 \;\text{{[{n.attrs['kind']}: {_tex_text(n.attrs['why'])}]}}", P_ATOM


def _tex_text(s: str) -> str:
    for c in "\\{}$&#^_%~":
        s = s.replace(c, "\\" + c if c not in "\\^~" else " ")
    return s


FLOOR = register(Floor())
TO_INT = register(ToInt())
SAMPLE_BERNOULLI = register(SampleBernoulli())
SAMPLE_CATEGORICAL = register(SampleCategorical())
STRAIGHT_THROUGH = register(StraightThrough())
ZERO = register(Zero())
