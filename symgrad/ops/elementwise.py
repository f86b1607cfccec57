"""Elementwise ops: arithmetic, the smooth functions, and the losses built from them."""

from __future__ import annotations

import math
import re

import numpy as np

from .. import functions as F
from .._lazy import sympy
from ..expr import AS_BUILT
from .base import P_ADD, P_ATOM, P_HAD, P_MUL, P_NEG, P_POW, REGISTRY, Op, jux, par, register, rule
from .base import _top_level_slash as top_level_slash

# ---------------------------------------------------------------------------- helpers


def _scalar_value(e):
    """The Python float of a scalar constant node, else None."""
    if e.op.name == "const":
        v = e.attrs["value"]
        if not isinstance(v, np.ndarray):
            return v
    return None




class Elementwise(Op):
    elementwise = True
    ufunc = ""  # the numpy ufunc computing the op from its operands, when there is one

    def code_into(self, a, n, g, out):
        return f"_xp.{self.ufunc}({', '.join(a)}, out={out})" if self.ufunc else None

    def sympy(self, a, n, ctx):
        return ctx.apply(self.sym, a, n)

    def sym(self, *xs):  # scalar sympy form
        raise NotImplementedError(self.name)


class Unary(Elementwise):
    nargs = 1
    np_fn = ""  # the array-namespace function
    math_fn = ""  # the math-module function

    def code(self, a, n, g):
        return f"_xp.{self.np_fn}({a[0]})"

    def math(self, a, n, g):
        return f"_m.{self.math_fn}({a[0]})" if self.math_fn else None

    def code_into(self, a, n, g, out):
        return f"_xp.{self.np_fn}({a[0]}, out={out})" if self.np_fn else None

    def text(self, a, n):
        return f"{self.fn or self.name}({a[0][0]})", P_ATOM

    def tex(self, a, n):
        return rf"\{self.fn or self.name}\left({a[0][0]}\right)", P_ATOM

    def vjp(self, n, ct, nb, wants):
        return [F.mul(ct, self.deriv(n))]

    def deriv(self, n):
        raise NotImplementedError(self.name)


def _tensor(e) -> bool:
    return len(e.shape) > 0


# ---------------------------------------------------------------------------- arithmetic


class Add(Elementwise):
    infix = ("+", 1)
    name = "add"
    nargs = 2
    ufunc = "add"

    def code(self, a, n, g):
        return f"{a[0]} + {a[1]}"

    math = code

    def sym(self, x, y):
        return x + y

    def sympy(self, a, n, ctx):
        return ctx.add(a[0], a[1], n)

    def vjp(self, n, ct, nb, wants):
        x, y = n.args
        return [F.unbroadcast(ct, nb, x.shape), F.unbroadcast(ct, nb, y.shape)]

    def text(self, a, n):
        minus = _minus_form(n.args[1], a[1], latex=False)
        if minus is not None:  # x - 4, not x + -4
            return f"{par(a[0], P_ADD)} - {minus}", P_ADD
        return f"{par(a[0], P_ADD)} + {par(a[1], P_ADD)}", P_ADD

    def tex(self, a, n):
        minus = _minus_form(n.args[1], a[1], latex=True)
        if minus is not None:
            return f"{par(a[0], P_ADD, True)} - {minus}", P_ADD
        return f"{par(a[0], P_ADD, True)} + {par(a[1], P_ADD, True)}", P_ADD


def _minus_form(y, part: tuple[str, int], latex: bool) -> str | None:
    """The text of ``-y`` where ``y`` (its text and precedence: ``part``) reads as a negative
    number, a negation, or a product or quotient whose first factor is a negative number
    (``-4``, ``-2*x*y``, ``(-4)*a``, ``-4 v``, ``(-2)/a``): ``x + y`` then reads
    ``x - 4*a``. None for any other ``y``."""
    text = part[0]
    if part[1] == P_NEG and text.startswith("-"):  # -(what follows), which binds tighter
        return text[1:]
    c = _scalar_value(y)
    if c is None and (y.op is MUL or y.op is DIV):  # (-4)*a, (-2)/a
        c = _scalar_value(y.args[0])
    if c is None or not c < 0:
        return None
    if latex and y.op is DIV and text.startswith(r"\frac{-"):  # \frac{-2}{a}
        return r"\frac{" + text[len(r"\frac{-"):]
    opener, closer = (r"\left(-", r"\right)") if latex else ("(-", ")")
    if text.startswith(opener):  # (-4)*a: the number's parentheses go with its sign
        k = text.find(closer)
        return text[len(opener):k] + text[k + len(closer):]
    if text.startswith("-") and (text[1:2].isdigit() or text[1:] in ("inf", r"\infty")):
        return text[1:]
    return None


class Sub(Elementwise):
    infix = ("-", 1)
    name = "sub"
    nargs = 2
    ufunc = "subtract"

    def code(self, a, n, g):
        return f"{a[0]} - {a[1]}"

    math = code

    def sym(self, x, y):
        return x - y

    def sympy(self, a, n, ctx):
        return ctx.add(a[0], ctx.neg(a[1]), n)

    def vjp(self, n, ct, nb, wants):
        x, y = n.args
        return [F.unbroadcast(ct, nb, x.shape) if wants[0] else None,
                F.unbroadcast(F.neg(ct), nb, y.shape) if wants[1] else None]

    def text(self, a, n):
        minus = _minus_form(n.args[1], a[1], latex=False)
        if minus is not None:  # x + 4*a, not x - (-4)*a
            return f"{par(a[0], P_ADD)} + {minus}", P_ADD
        return f"{par(a[0], P_ADD)} - {par(a[1], P_ADD, strict=True)}", P_ADD

    def tex(self, a, n):
        minus = _minus_form(n.args[1], a[1], latex=True)
        if minus is not None:
            return f"{par(a[0], P_ADD, True)} + {minus}", P_ADD
        return f"{par(a[0], P_ADD, True)} - {par(a[1], P_ADD, True, strict=True)}", P_ADD


class Mul(Elementwise):
    infix = ("*", 2)
    name = "mul"
    nargs = 2
    ufunc = "multiply"

    def code(self, a, n, g):
        return f"{a[0]} * {a[1]}"

    math = code

    def sym(self, x, y):
        return x * y

    def sympy(self, a, n, ctx):
        return ctx.mul(a[0], a[1], n)

    def vjp(self, n, ct, nb, wants):
        x, y = n.args
        return [F.unbroadcast(F.mul(ct, y), nb, x.shape) if wants[0] else None,
                F.unbroadcast(F.mul(ct, x), nb, y.shape) if wants[1] else None]

    def text(self, a, n):
        return _mul_render(a, n, latex=False)

    def tex(self, a, n):
        return _mul_render(a, n, latex=True)


def diag_scaling(n) -> tuple[int, str] | None:
    """How a matrix product ``M * v`` reads in matrix notation, or None.

    ``v`` of shape (k,) or (1, k) scales the columns of the (j, k) matrix ``M``: ``M diag(v)``
    ("cols"); ``v`` of shape (j, 1) scales its rows: ``diag(v) M`` ("rows"). Returns (the
    position of ``M`` among the operands, "cols" or "rows").
    """
    if n.ndim != 2:
        return None
    j, k = n.shape
    for i in (0, 1):
        m, v = n.args[i], n.args[1 - i]
        # M has the product's shape; with symbolic sizes it may name them otherwise, where
        # the product's were unified ((n, m) against (m, m) in diag(diagonal(N)) N)
        if m.ndim != 2 or v.shape == m.shape or any(d == 1 != e for d, e in zip(m.shape, n.shape)):
            continue
        mj, mk = m.shape
        if v.shape in ((k,), (1, k), (mk,), (1, mk)):
            return i, "cols"
        if v.shape in ((j, 1), (mj, 1)):
            return i, "rows"
    return None


_CALLED = re.compile(r"(?:\\mathrm\{([A-Za-z_]+)\}|(?<![\w\\])([A-Za-z_][A-Za-z0-9_]*))$")
_CALLS: list = []  # the names printed as calls: ops' and sg.parse's functions (made once)


def _call_names() -> frozenset:
    if not _CALLS:
        from ..parse import FUNCTIONS  # (parse builds on the ops: imported when first used)

        _CALLS.append(frozenset(FUNCTIONS) | {"expand_dims", "const"} |
                      {op.fn or op.name for op in REGISTRY.values() if not op.leaf})
    return _CALLS[0]


def _reads_as_call(left: str, right: str) -> bool:
    r"""Whether ``left right`` would read as a function applied: ``\sigma \left(x + y\right)``
    for a variable named sigma times x + y, ``exp (w + b)`` for a scalar named exp (a dot, or
    ``*`` in text, goes between them)."""
    tex = right.startswith(r"\left(")
    if tex and left.endswith(r"\sigma"):
        return True
    m = _CALLED.search(left)
    if m is None:  # (before any factor: log exp(v) reads log(exp(v)) too)
        return False
    return (m.group(1) or m.group(2)) in _call_names()  # \mathrm{exp} in LaTeX, exp in text


_ONES = re.compile(r"1(?: |\^T|$)")  # the vector of ones, as printing writes it: 2 1 1^T


def _negative_number(s: tuple) -> bool:
    """Whether the printed ``s`` (text, precedence) is a negative number (-2, -0.5, -1/3)."""
    return s[1] == P_NEG and (s[0][1:2].isdigit() or s[0][1:2] == ".")


def _mul_render(a, n, latex: bool):
    x, y = n.args
    if not _tensor(x) and not _tensor(y):
        if x is y:  # a square, as a textbook writes it (y*y is the smaller graph, y**2 reads)
            if latex:
                return f"{par(a[0], P_POW, True, strict=True)}^{{2}}", P_POW
            return f"{par(a[0], P_POW, strict=True)}**2", P_POW
        if not latex:
            if _negative_number(a[0]):  # -4.7*y, not (-4.7)*y (as -2 x below)
                return f"{a[0][0]}*{par(a[1], P_MUL)}", P_NEG
            return f"{par(a[0], P_MUL)}*{par(a[1], P_MUL)}", P_MUL
        left, right = par(a[0], P_MUL, True), par(a[1], P_MUL, True)
        dot = right[:1].isdigit() or right[:1] == "-" or _reads_as_call(left, right)
        op = r" \cdot " if dot else " "
        return f"{left}{op}{right}", P_MUL
    if not _tensor(x) or not _tensor(y):
        # a scalar factor goes in front, written by juxtaposition: (mu - y) (w ⊙ phi)
        s, t = (a[0], a[1]) if not _tensor(x) else (a[1], a[0])
        tt = par(t, P_MUL, latex)
        if not latex and s[0][-1:].isdigit() and tt[:1].isdigit() and not _ONES.match(tt):
            tt = f"({tt})"  # -1.3 (0.5 A v), not -1.3 0.5 A v (one number?)
        sep = r" \cdot " if latex and (tt[:1].isdigit() or _reads_as_call(s[0], tt)) else " "
        if not latex and _reads_as_call(jux(s), tt):  # exp*(w + b): exp (w + b) is a call
            sep = "*"
        if _negative_number(s):
            if not latex and top_level_slash(s[0]):  # -1/3 w would read -1/(3 w)
                return f"-({s[0][1:]}){sep}{tt}", P_NEG
            return f"{s[0]}{sep}{tt}", P_NEG  # a negative number: -2 x
        return f"{par(s, P_MUL, True) if latex else jux(s)}{sep}{tt}", P_MUL
    sc = diag_scaling(n)
    if sc is not None:
        i, side = sc
        return _scaled_text(a[i], a[1 - i][0], side, latex)
    op = r" \odot " if latex else " ⊙ "
    return f"{par(a[0], P_HAD, latex)}{op}{par(a[1], P_HAD, latex)}", P_HAD


class Div(Elementwise):
    infix = ("/", 2)
    numbers_infix = False  # 1.0 / 0.0 raises in Python: array code calls _rt.div (see code)
    name = "div"
    nargs = 2
    ufunc = "divide"

    def code(self, a, n, g):
        if not g.may_be_number(n):
            return f"{a[0]} / {a[1]}"
        # Python numbers may meet here: numpy's inf or nan, not ZeroDivisionError
        return f"_rt.div(_xp, {a[0]}, {a[1]})"

    def math(self, a, n, g):
        return f"{a[0]} / {a[1]}"  # raises on a zero divisor: the array version takes over

    def sym(self, x, y):
        return x / y

    def sympy(self, a, n, ctx):
        return ctx.div(a[0], a[1], n)

    def vjp(self, n, ct, nb, wants):
        x, y = n.args
        gx = F.div(ct, y)
        return [F.unbroadcast(gx, nb, x.shape) if wants[0] else None,
                F.unbroadcast(F.neg(F.mul(gx, n)), nb, y.shape) if wants[1] else None]

    def text(self, a, n):
        return f"{par(a[0], P_MUL)}/{par(a[1], P_MUL, strict=True)}", P_MUL

    def tex(self, a, n):
        if len(n.args[1].shape) >= 2:  # \frac{1}{A} of a matrix reads as its inverse
            return rf"{par(a[0], P_HAD, True)} \oslash {par(a[1], P_HAD, True, strict=True)}", \
                P_HAD
        # a power's precedence: a fraction is an atom in a product, but raised to a power or
        # transposed it takes parentheses: \left(\frac{x}{y}\right)^{2}, not \frac{x}{y}^{2}
        return rf"\frac{{{a[0][0]}}}{{{a[1][0]}}}", P_POW


class Neg(Elementwise):
    infix = ("-", 3)
    name = "neg"
    nargs = 1
    ufunc = "negative"

    def code(self, a, n, g):
        return f"-{a[0]}"

    math = code

    def sym(self, x):
        return -x

    def sympy(self, a, n, ctx):
        return ctx.neg(a[0])

    def vjp(self, n, ct, nb, wants):
        return [F.neg(ct)]

    def text(self, a, n):
        return f"-{par(a[0], P_MUL)}", P_NEG

    def tex(self, a, n):
        return f"-{par(a[0], P_MUL, True)}", P_NEG


def _both_arrays(n) -> bool:
    """Whether the power ``n`` raises an input-made array to an input-made array, which may
    both be integer arrays (symgrad's constants are floats)."""
    x, y = n.args
    return bool(x.shape) and bool(y.shape) and x.op.name != "const" and y.op.name != "const"


# ops whose result is a float array whatever their operands' dtypes
_FLOAT_RESULT = frozenset(("bce", "const", "cos", "div", "exp", "eye", "floor", "log",
                           "log_softmax", "log_softplus", "logsumexp", "pow", "sigmoid",
                           "sigmoid_deriv", "sin", "softmax", "softplus", "sqrt", "tanh",
                           "tanh_deriv"))


# ops whose value is an integer array; and ops that keep integer operands integer
_INT_RESULT = frozenset(("argmax", "to_int"))
_INT_KEEPING = frozenset(("stop_gradient", "alias", "guard", "broadcast_to", "reshape",
                          "fit_shape", "transpose", "neg", "sum", "diag", "diagonal", "add", "sub",
                          "mul", "maximum", "minimum"))


def int_valued(e, depth: int = 0) -> bool:
    """Whether ``e`` is known to be an integer array (argmax, to_int, integer constants, and
    what keeps them so):
    an identity rule must not return it for ``e * 1.0``, which numpy computes in floats (the
    gradient of ``stop_gradient(argmax(v)) * sum(v)`` came back as int64)."""
    op = e.op.name
    if op in _INT_RESULT:
        return True
    if op == "const":  # an integer array constant (one loaded from a file: const makes floats)
        return getattr(e.attrs["value"], "dtype", np.dtype(float)).kind in "iu"
    if depth >= 8 or op not in _INT_KEEPING:
        return False
    # an operand that cannot be integer decides at once, before any deep walk (a gradient's
    # products: the W4 chain's derivation walked 9 nodes per output, 30 % of its time)
    if any(a.op.name not in _MAYBE_INT for a in e.args):
        return False
    return all(int_valued(a, depth + 1) for a in e.args)


_MAYBE_INT = _INT_RESULT | _INT_KEEPING | {"const"}


def as_float(x):
    """``x`` where ``x * 1.0`` (or ``x + 0.0``) may be written ``x``: ``x`` itself, unless it is
    known to be integer valued, which numpy computes in floats: an integer constant as a float
    constant (the gradient of ``sum(c * v)`` for an int64 array c came back int64), else None."""
    if not int_valued(x):
        return x
    if x.op.name == "const":
        return F.const(x.attrs["value"].astype(np.float64))
    return None


class Pow(Elementwise):
    name = "pow"
    nargs = 2

    def code(self, a, n, g):
        if _scalar_value(n.args[1]) == 2.0:
            if n.args[0].op.name in _FLOAT_RESULT:
                return f"{a[0]} * {a[0]}"
            # the square of an integer array in floats, as every power (x * x wrapped around
            # in int64: (2**32)**2 gave 0); _rt.float_of leaves numbers and float arrays be
            return f"_rt.float_of({a[0]}) * {a[0]}"
        if not g.may_be_number(n):
            if _both_arrays(n):  # integer arrays both: a power in floats (see runtime)
                return f"_rt.power_arrays({a[0]}, {a[1]})"
            return f"{a[0]} ** {a[1]}"
        # Python numbers may meet here: numpy's nan, not a complex number
        return f"_rt.power(_xp, {a[0]}, {a[1]})"

    def math(self, a, n, g):
        c = _scalar_value(n.args[1])
        if c == 2.0:
            return f"{a[0]} * {a[0]}"
        return f"_m.pow({a[0]}, {a[1]})"

    def code_into(self, a, n, g, out):
        if _scalar_value(n.args[1]) == 2.0:
            return f"_xp.multiply({a[0]}, {a[0]}, out={out})"
        if _both_arrays(n):
            return f"_xp.power(_rt.float_of({a[0]}), {a[1]}, out={out})"
        return f"_xp.power({a[0]}, {a[1]}, out={out})"

    def sym(self, x, y):
        return x**y

    def vjp(self, n, ct, nb, wants):
        x, y = n.args
        gx = gy = None
        if wants[0]:
            c = _scalar_value(y)
            d = F.mul(y, F.power(x, c - 1.0 if c is not None else F.sub(y, 1.0)))
            gx = F.unbroadcast(F.mul(ct, d), nb, x.shape)
        if wants[1]:
            # x**y log(x), with log(1) where x is 0: d(0**y)/dy is 0 (for y > 0), and so is
            # every higher derivative in y, where 0 log(0) was nan (as torch's and jax's)
            base = x if x.op.name in _POSITIVE else _zero_as_one(x)  # (log(sigmoid) is stable)
            gy = F.unbroadcast(F.mul(ct, F.mul(n, F.log(base))), nb, y.shape)
        return [gx, gy]

    def text(self, a, n):
        from .leaves import unrounded_exponent

        y = unrounded_exponent(n.args[1])
        if y is not None:
            a = (a[0], (y, P_NEG if y.startswith("-") else P_ATOM))
        return f"{par(a[0], P_POW, strict=True)}**{par(a[1], P_POW)}", P_POW

    def tex(self, a, n):
        # of a matrix, A^{2} is A A: the entrywise power is the Hadamard one, A^{\circ 2}
        from .leaves import unrounded_exponent

        had = r"\circ " if len(n.shape) >= 2 else ""  # (x^{A} read as a matrix function too)
        y = unrounded_exponent(n.args[1])
        return f"{par(a[0], P_POW, True, strict=True)}^{{{had}{a[1][0] if y is None else y}}}", \
            P_POW


# ---------------------------------------------------------------------------- functions


class Exp(Unary):
    name = fn = np_fn = math_fn = "exp"

    def code(self, a, n, g):
        if _at_most_zero(n.args[0]):  # (only an underflow, to the right 0: not signalled)
            return f"_rt.exp_nonpositive(_xp, {a[0]})"
        return super().code(a, n, g)

    def code_into(self, a, n, g, out):
        if _at_most_zero(n.args[0]):
            return f"_rt.exp_nonpositive(_xp, {a[0]}, {out})"
        return super().code_into(a, n, g, out)

    def sym(self, x):
        return sympy.exp(x)

    def deriv(self, n):
        return n


def _at_most_zero(z) -> bool:
    """Whether ``z`` is at most 0 by construction: a log_softmax (what rewrite.shared_softmax
    takes softmax from), whose exp only underflows, correctly, to 0."""
    return z.op.name == "log_softmax"


class Log(Unary):
    name = fn = np_fn = math_fn = "log"

    def sym(self, x):
        return sympy.log(x)

    def vjp(self, n, ct, nb, wants):
        return [F.div(ct, n.args[0])]


class Sqrt(Unary):
    name = fn = np_fn = math_fn = "sqrt"

    def sym(self, x):
        return sympy.sqrt(x)

    def vjp(self, n, ct, nb, wants):
        return [F.div(F.mul(0.5, ct), n)]

    def tex(self, a, n):
        if len(n.shape) >= 2:  # (\sqrt{A} of a matrix is its matrix square root)
            return rf"{par(a[0], P_POW, True, strict=True)}^{{\circ 1/2}}", P_POW
        return rf"\sqrt{{{a[0][0]}}}", P_ATOM


class Tanh(Unary):
    name = fn = np_fn = math_fn = "tanh"

    def sym(self, x):
        return sympy.tanh(x)

    def deriv(self, n):
        return F.tanh_deriv(n)


class Sin(Unary):
    name = fn = np_fn = math_fn = "sin"

    def sym(self, x):
        return sympy.sin(x)

    def deriv(self, n):
        return F.cos(n.args[0])


class Cos(Unary):
    name = fn = np_fn = math_fn = "cos"

    def sym(self, x):
        return sympy.cos(x)

    def vjp(self, n, ct, nb, wants):
        return [F.neg(F.mul(ct, F.sin(n.args[0])))]


class Sigmoid(Unary):
    """1/(1 + exp(-x)), in that form: accurate for every x (see runtime.sigmoid)."""

    name = fn = "sigmoid"

    def code(self, a, n, g):
        return f"_rt.sigmoid(_xp, {a[0]})"

    def math(self, a, n, g):
        # below x = -709 math.exp raises OverflowError: the call takes the array version
        return f"1.0 / (1.0 + _m.exp(-{a[0]}))"

    def code_into(self, a, n, g, out):
        return f"_rt.sigmoid(_xp, {a[0]}, {out})"

    def kernel(self, a, n, g):
        # in a compiled loop exp overflows to inf (1/(1 + inf) = 0, exact): one exp is
        # twice as fast as tanh
        return f"1.0 / (1.0 + _m.exp(-{a[0]}))"

    def sym(self, x):
        return 1 / (1 + sympy.exp(-x))

    def deriv(self, n):
        return F.sigmoid_deriv(n)

    def tex(self, a, n):
        return rf"\sigma\left({a[0][0]}\right)", P_ATOM


class Softplus(Unary):
    """log(1 + exp(x)) as max(x, 0) + log1p(exp(-|x|)): no overflow for any finite x."""

    name = fn = "softplus"

    def code(self, a, n, g):
        return f"_rt.softplus(_xp, {a[0]})"  # exp(-|x|) may underflow to 0: that is silent

    def math(self, a, n, g):
        x = a[0]
        return f"_max({x}, 0.0) + _m.log1p(_m.exp(-_abs({x})))"

    def code_into(self, a, n, g, out):
        x = a[0]  # the log1p term is computed (in a fresh array) before out is written
        tail = f"_xp.log1p(_rt._exp_small(_xp, -_xp.abs({x})))"  # (underflow: not signalled)
        return f"_xp.add({tail}, _xp.maximum({x}, 0.0, out={out}), out={out})"

    def sym(self, x):
        return sympy.log(1 + sympy.exp(x))

    def deriv(self, n):
        return F.sigmoid(n.args[0])

    def tex(self, a, n):
        return rf"\operatorname{{softplus}}\left({a[0][0]}\right)", P_ATOM


class LogSoftplus(Unary):
    """log(softplus(x)), finite for every finite x (softplus underflows to 0 below x = -745,
    where its log is x to the last digit). Only the stability rewrites build it (see
    rewrite._stable_log); it prints as what the user wrote."""

    name = "log_softplus"

    def code(self, a, n, g):
        return f"_rt.log_softplus(_xp, {a[0]})"

    def math(self, a, n, g):
        x = a[0]  # below -30, softplus(x) = e^x (1 - e^x/2 + ...): its log is x - e^x/2
        return (f"({x} - 0.5 * _m.exp({x}) if {x} < -30.0 else "
                f"_m.log(_max({x}, 0.0) + _m.log1p(_m.exp(-_abs({x})))))")

    def code_into(self, a, n, g, out):
        return None

    def sym(self, x):
        return sympy.log(sympy.log(1 + sympy.exp(x)))

    def deriv(self, n):
        # sigmoid(x) / softplus(x) as exp(log(sigmoid(x)) - log(softplus(x))): both underflow
        # to 0 below -745, where the ratio is 1
        x = n.args[0]
        return F.exp(F.sub(F.neg(F.softplus(F.neg(x))), n))

    def text(self, a, n):
        return f"log(softplus({a[0][0]}))", P_ATOM

    def tex(self, a, n):
        return rf"\log\left(\operatorname{{softplus}}\left({a[0][0]}\right)\right)", P_ATOM


class Relu(Unary):
    name = fn = "relu"

    def code(self, a, n, g):
        return f"_xp.maximum({a[0]}, 0.0)"

    def math(self, a, n, g):
        return f"_max({a[0]}, 0.0)"

    def code_into(self, a, n, g, out):
        return f"_xp.maximum({a[0]}, 0.0, out={out})"

    def sym(self, x):
        return sympy.Max(0, x)

    def deriv(self, n):
        return F.step(n.args[0])

    def vjp(self, n, ct, nb, wants):
        # ct where x > 0, else 0: not ct * step(x), which is inf * 0 = nan where relu is
        # flat and what follows it has an infinite derivative (sqrt(relu(x)) at x < 0)
        return [_gate(ct, n.args[0])]

    def tex(self, a, n):
        return rf"\operatorname{{relu}}\left({a[0][0]}\right)", P_ATOM


class Abs(Unary):
    name = fn = "abs"

    def code(self, a, n, g):
        return f"_xp.abs({a[0]})"

    def math(self, a, n, g):
        return f"_abs({a[0]})"

    def code_into(self, a, n, g, out):
        return f"_xp.abs({a[0]}, out={out})"

    def sym(self, x):
        return sympy.Abs(x)

    def vjp(self, n, ct, nb, wants):
        x = n.args[0]
        return [F.mul(ct, F.sub(F.step(x), F.step(F.neg(x))))]

    def tex(self, a, n):
        return rf"\left|{a[0][0]}\right|", P_ATOM


class Step(Unary):
    """1 where x > 0 else 0; its derivative is zero (the step is flat where it is defined)."""

    name = fn = "step"

    def code(self, a, n, g):
        return f"_rt.step(_xp, {a[0]})"

    def math(self, a, n, g):
        return f"float({a[0]} > 0.0)"

    def kernel(self, a, n, g):
        return f"(1.0 if {a[0]} > 0.0 else 0.0)"

    def sym(self, x):
        return sympy.Heaviside(x, 0)

    def vjp(self, n, ct, nb, wants):
        return [None]

    def tex(self, a, n):
        # the indicator 1[x > 0]: a variable may well be called theta (the Heaviside letter)
        return rf"\mathbb{{1}}\left[{a[0][0]} > 0\right]", P_ATOM


class ZeroAsOne(Unary):
    """x, with 1 where x is 0: the base of a power in the log of its derivative in the
    exponent. Printed as x (it is x wherever the log is finite); its derivative is 1."""

    name = "zero_as_one"

    def code(self, a, n, g):
        return f"_rt.zero_as_one(_xp, {a[0]})"

    def math(self, a, n, g):
        return f"({a[0]} or 1.0)"

    def kernel(self, a, n, g):
        return f"({a[0]} if {a[0]} != 0.0 else 1.0)"

    def sym(self, x):
        return x

    def vjp(self, n, ct, nb, wants):
        return [ct]

    def text(self, a, n):
        return a[0]

    def tex(self, a, n):
        return a[0]


# ops whose values are > 0 (where they do not underflow, where x**y is 0 too)
# (not softplus: it underflows to 0 below -745, and nothing rewrites log(softplus(z)), so
# the derivative in p of softplus(z)**p was 0*log(0) = nan there)
_POSITIVE = frozenset(("exp", "sigmoid", "softmax", "dimsize"))


class Gate(Elementwise):
    """``c`` where ``x > 0``, else 0: relu's derivative applied to the cotangent ``c``,
    which stays 0 where x <= 0 even where ``c`` is infinite. Printed as the product
    ``c*step(x)`` it equals wherever ``c`` is finite."""

    name = "gate"
    said_as = "step"  # in messages, as in print: relu's derivative
    nargs = 2

    def code(self, a, n, g):
        return f"_rt.gate(_xp, {a[0]}, {a[1]})"

    def code_into(self, a, n, g, out):
        return f"_rt.gate(_xp, {a[0]}, {a[1]}, {out})"

    def math(self, a, n, g):
        return f"({a[0]} if {a[1]} > 0.0 else 0.0)"

    def kernel(self, a, n, g):
        return f"(({a[0]}) if ({a[1]}) > 0.0 else 0.0)"

    def sym(self, c, x):
        return c * sympy.Heaviside(x, 0)

    def vjp(self, n, ct, nb, wants):
        c, x = n.args  # the derivative in x is 0 wherever it is defined (as step's)
        return [F.unbroadcast(_gate(ct, x), nb, c.shape) if wants[0] else None, None]

    def text(self, a, n):
        step = a[1][0] if _indicator(n.args[1]) else REGISTRY["step"].text(a[1:], None)[0]
        scaled = _gate_scaling(a, n, step, False)
        if scaled is not None:
            return scaled
        if _indicator(n.args[1]) and a[1][1] < P_ATOM:
            step = f"({step})"
        if _tensor(n):
            return f"{par(a[0], P_HAD)} ⊙ {step}", P_HAD
        return f"{par(a[0], P_MUL)}*{step}", P_MUL

    def tex(self, a, n):
        step = a[1][0] if _indicator(n.args[1]) else REGISTRY["step"].tex(a[1:], None)[0]
        scaled = _gate_scaling(a, n, step, True)
        if scaled is not None:
            return scaled
        if _indicator(n.args[1]) and a[1][1] < P_ATOM:
            step = rf"\left({step}\right)"
        if _tensor(n):
            return rf"{par(a[0], P_HAD, True)} \odot {step}", P_HAD
        return f"{par(a[0], P_MUL, True)} {step}", P_MUL


def _gate_scaling(a, n, step: str, latex: bool):
    """A matrix gated by a vector, in matrix notation (as a product's ``M diag(v)``): the
    Jacobian of ``A @ relu(x)`` reads ``A diag(step(x))``, of ``relu(A @ x)`` with the identity
    gated ``diag(step(A x))``; None where the gate is not such a scaling."""
    sc = diag_scaling(n) if _tensor(n) else None
    if sc is None or sc[0] != 0 or n.args[1].ndim != 1 or _spreads(n.args[1]):
        return None
    if n.args[0].op.name == "eye" and n.args[0].ndim == 2:
        return (rf"\operatorname{{diag}}\left({step}\right)" if latex else f"diag({step})"), P_ATOM
    return _scaled_text(a[0], step, sc[1], latex)


def _scaled_text(m: tuple, v: str, side: str, latex: bool) -> tuple[str, int]:
    """``M diag(v)`` ("cols") or ``diag(v) M`` ("rows"): ``m`` printed, ``v`` the text."""
    mt = par(m, P_MUL, True) if latex else jux(m)
    d = rf"\operatorname{{diag}}\left({v}\right)" if latex else f"diag({v})"
    return (f"{mt} {d}" if side == "cols" else f"{d} {mt}"), P_MUL


def _spreads(x, limit: int = 64) -> bool:
    """Whether ``x``'s elementwise graph holds a spread number (a broadcast, a constant
    array), which printing may show as the number numpy's broadcasting rebuilds it from:
    inside diag() that reads as a scalar (``diag(1 - step(0))``), where ``I ⊙ (1 - step(0))``
    reads right. A walk of at most ``limit`` nodes (more: taken as spreading)."""
    stack, seen = [x], set()
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if len(seen) > limit or e.op.name == "broadcast_to" or (e.op.name == "const" and e.ndim):
            return True
        if getattr(e.op, "elementwise", False):
            stack.extend(e.args)
    return False


def _indicator(x) -> bool:
    """Whether ``x`` is 0 or 1 everywhere (a step, or 1 minus one): step(x) is x itself."""
    if x.op.name == "step":
        return True
    return x.op is SUB and F.is_const(x.args[0], 1.0) and x.args[1].op.name == "step"


def _gate(c, x):
    from ..expr import make

    return make(REGISTRY["gate"], (c, x))


def _zero_as_one(x):
    from ..expr import make

    return make(REGISTRY["zero_as_one"], (x,))


class SigmoidDeriv(Unary):
    """s*(1 - s) for a sigmoid's value s: one node for the sigmoid's local derivative."""

    name = "sigmoid_deriv"

    def code(self, a, n, g):
        return f"{a[0]} * (1.0 - {a[0]})"

    math = code

    def code_into(self, a, n, g, out):
        return f"_xp.multiply({a[0]}, _xp.subtract(1.0, {a[0]}), out={out})"

    def sym(self, s):
        return s * (1 - s)

    def deriv(self, n):
        return F.sub(1.0, F.mul(2.0, n.args[0]))

    def text(self, a, n):
        if _tensor(n):
            return f"{par(a[0], P_HAD)} ⊙ (1 - {par(a[0], P_ADD, strict=True)})", P_HAD
        return f"{par(a[0], P_MUL)}*(1 - {par(a[0], P_ADD, strict=True)})", P_MUL

    def tex(self, a, n):
        if _tensor(n):
            s = par(a[0], P_HAD, True)
            return rf"{s} \odot \left(1 - {par(a[0], P_ADD, True, strict=True)}\right)", P_HAD
        s = par(a[0], P_MUL, True)
        return rf"{s} \left(1 - {par(a[0], P_ADD, True, strict=True)}\right)", P_MUL


class TanhDeriv(Unary):
    """1 - t**2 for tanh's value t: one node for tanh's local derivative."""

    name = "tanh_deriv"

    def code(self, a, n, g):
        return f"1.0 - {a[0]} * {a[0]}"

    math = code

    def code_into(self, a, n, g, out):
        return f"_xp.subtract(1.0, _xp.multiply({a[0]}, {a[0]}, out={out}), out={out})"

    def sym(self, t):
        return 1 - t**2

    def deriv(self, n):
        return F.mul(-2.0, n.args[0])

    def text(self, a, n):
        return f"1 - {par(a[0], P_POW, strict=True)}**2", P_ADD

    def tex(self, a, n):
        had = r"\circ " if len(n.shape) >= 2 else ""  # (entrywise: see Pow.tex)
        return f"1 - {par(a[0], P_POW, True, strict=True)}^{{{had}2}}", P_ADD


class Maximum(Elementwise):
    name = fn = "maximum"
    nargs = 2
    pick_first = ">="

    def code(self, a, n, g):
        return f"_xp.{self.name}({a[0]}, {a[1]})"

    def code_into(self, a, n, g, out):
        return f"_xp.{self.name}({a[0]}, {a[1]}, out={out})"

    def math(self, a, n, g):
        # not Python's max/min, which keep a number next to a nan that comes second
        return f"_rt.{self.name}_number({a[0]}, {a[1]})"

    def kernel(self, a, n, g):
        x, y = (f"({v})" for v in a)  # as runtime.maximum_number, inline in a compiled loop
        cmp = ">" if self.name == "maximum" else "<"
        return f"({x} if {x} {cmp} {y} or {x} != {x} else {y})"

    def sym(self, x, y):
        return sympy.Max(x, y)

    def vjp(self, n, ct, nb, wants):
        x, y = n.args
        # ties give the whole gradient to the first operand
        d = F.sub(x, y) if self.name == "maximum" else F.sub(y, x)
        second = F.step(F.neg(d))  # 1 where d < 0: y's share
        # gated, not multiplied: ct where the operand wins, 0 elsewhere even where ct is
        # infinite (sqrt(maximum(x, 0)) at x < 0), where ct*step was inf*0 = nan
        gx = _gate(ct, F.sub(1.0, second)) if wants[0] else None
        gy = _gate(ct, second) if wants[1] else None
        return [F.unbroadcast(gx, nb, x.shape) if wants[0] else None,
                F.unbroadcast(gy, nb, y.shape) if wants[1] else None]


class Minimum(Maximum):
    name = fn = "minimum"

    def sym(self, x, y):
        return sympy.Min(x, y)


class BCE(Elementwise):
    """Binary cross-entropy -y*log(mu) - (1 - y)*log(1 - mu)."""

    name = fn = "bce"
    nargs = 2

    def code(self, a, n, g):
        mu, y = a
        if g.may_be_number(n.args[0]) and not g.may_be_number(n):
            # a Python number mu next to an array y: its logs stay Python numbers (weak), as a
            # number node's do (symgrad._emit.hosted_code), and never promote a float32 y; a
            # numpy number's stay strong, as numpy keeps them
            return f"-{y} * _wk.log({mu}) - (1.0 - {y}) * _wk.log(1.0 - {mu})"
        return f"-{y} * _xp.log({mu}) - (1.0 - {y}) * _xp.log(1.0 - {mu})"

    def math(self, a, n, g):
        mu, y = a
        return f"-{y} * _m.log({mu}) - (1.0 - {y}) * _m.log(1.0 - {mu})"

    def sym(self, mu, y):
        return -y * sympy.log(mu) - (1 - y) * sympy.log(1 - mu)

    def vjp(self, n, ct, nb, wants):
        mu, y = n.args
        gmu = gy = None
        if wants[0]:
            d = F.div(F.sub(mu, y), F.sigmoid_deriv(mu))
            gmu = F.unbroadcast(F.mul(ct, d), nb, mu.shape)
        if wants[1]:
            d = F.sub(F.log(F.sub(1.0, mu)), F.log(mu))
            gy = F.unbroadcast(F.mul(ct, d), nb, y.shape)
        return [gmu, gy]

    # elementwise products of tensors read with ⊙, as mul writes them
    def text(self, a, n):
        mu, y = a
        c = _scalar_value(n.args[1])
        if c is not None:  # a label given as a number: 1 - y worked out (said (1 - 0.3))
            return _bce_of_number(c, f"log({mu[0]})",
                                  f"log(1 - {par(mu, P_ADD, strict=True)})", "*", False)
        times, p = (" ⊙ ", P_HAD) if _tensor(n.args[0]) and _tensor(n.args[1]) else ("*", P_MUL)
        return (f"-{par(y, p)}{times}log({mu[0]}) - (1 - {par(y, P_ADD, strict=True)})"
                f"{times}log(1 - {par(mu, P_ADD, strict=True)})"), P_ADD

    def tex(self, a, n):
        mu, y = a
        c = _scalar_value(n.args[1])
        if c is not None:
            return _bce_of_number(c, rf"\log\left({mu[0]}\right)",
                                  rf"\log\left(1 - {par(mu, P_ADD, True, True)}\right)", " ",
                                  True)
        times, p = (r" \odot ", P_HAD) if _tensor(n.args[0]) and _tensor(n.args[1]) else \
            (" ", P_MUL)
        return (rf"-{par(y, p, True)}{times}\log\left({mu[0]}\right) - \left(1 - "
                rf"{par(y, P_ADD, True, True)}\right){times}\log\left(1 - "
                rf"{par(mu, P_ADD, True, True)}\right)"), P_ADD


def _bce_of_number(c: float, log_mu: str, log_rest: str, times: str,
                   latex: bool) -> tuple[str, int]:
    """bce(mu, c) for a number c, as a person writes it: -log(mu) for c = 1, -log(1 - mu) for
    c = 0, else -c log(mu) - (1 - c) log(1 - mu) with 1 - c worked out (a fraction of a
    fraction: 1 - 1/3 is 2/3, where the float is one ulp off)."""
    from .leaves import fmt_number, small_fraction, tex_number

    if c == 1.0:
        return f"-{log_mu}", P_NEG
    if c == 0.0:
        return f"-{log_rest}", P_NEG

    def number(k: float) -> str:
        return tex_number(k)[0] if latex else fmt_number(k)

    def scaled(text: str, log: str) -> str:
        return log if text == "1" else f"{text}{times}{log}"

    rest = 1.0 - c
    rest_text = number(abs(rest))
    frac = small_fraction(c) if 0.0 < c < 1.0 and "/" in fmt_number(c) else None
    if frac is not None:
        num, den = frac[1] - frac[0], frac[1]
        rest_text = rf"\frac{{{num}}}{{{den}}}" if latex else f"{num}/{den}"
    first = f"-{scaled(number(c), log_mu)}" if c > 0 else scaled(number(-c), log_mu)
    second = f" - {scaled(rest_text, log_rest)}" if rest > 0 else \
        f" + {scaled(rest_text, log_rest)}"
    return first + second, P_ADD


class StopGradient(Elementwise):
    name = fn = "stop_gradient"
    nargs = 1
    zero_grad = (0,)

    def code(self, a, n, g):
        return a[0]

    math = code

    def sympy(self, a, n, ctx):
        return a[0]

    def vjp(self, n, ct, nb, wants):
        return [None]


ADD, SUB, MUL, DIV, NEG, POW = (register(c()) for c in (Add, Sub, Mul, Div, Neg, Pow))
for _c in (Exp, Log, Sqrt, Tanh, Sin, Cos, Sigmoid, Softplus, LogSoftplus, Relu, Abs, Step,
           SigmoidDeriv,
           TanhDeriv, Maximum, Minimum, BCE, StopGradient, ZeroAsOne, Gate):
    register(_c())


# ---------------------------------------------------------------------------- build-time rules
# Each rule sees the operands, the attributes and the result's shape, and returns an equal,
# simpler node or None.


def _fold(f):
    def r(args, attrs, shape):
        vals = []
        for a in args:  # most operands are not constants: leave early
            if a.op.name != "const":
                return None
            v = a.attrs["value"]
            if isinstance(v, np.ndarray):
                return None
            vals.append(v)
        try:
            out = f(*vals)
        except (ArithmeticError, ValueError):
            return AS_BUILT
        # a complex result (a negative base to a fractional power) is not folded: the node
        # evaluates to numpy's nan, with its warning, like the same power of a variable; nor
        # is another that is not finite, and no other rule sees the numbers (a - a = 0 and
        # 0 a = 0 made inf - inf and 0 inf 0)
        if out.__class__ is complex or not math.isfinite(out):
            return AS_BUILT
        return F.const(out)

    return r


rule(ADD)(_fold(lambda x, y: x + y))
rule(SUB)(_fold(lambda x, y: x - y))
rule(MUL)(_fold(lambda x, y: x * y))
rule(DIV)(_fold(lambda x, y: x / y))
rule(NEG)(_fold(lambda x: -x))
rule(POW)(_fold(lambda x, y: x**y))


def _common_factor(x, y):
    """(f, p, q) when x = f*p and y = f*q (or p*f, q*f) share a factor f, else None."""
    if x.op is not MUL or y.op is not MUL:
        return None
    for i in (0, 1):
        for j in (0, 1):
            if x.args[i] is y.args[j]:
                return x.args[i], x.args[1 - i], y.args[1 - j]
    return None


def _factor_out(x, y, shape, combine):
    """f*p +/- f*q -> f*(p +/- q), when that keeps the shape."""
    c = _common_factor(x, y)
    if c is None:
        return None
    f, p, q = c
    inner = combine(p, q)
    r = F.mul(f, inner) if f.ndim == 0 or inner.ndim == 0 else F.mul(inner, f)
    return r if r.shape == shape else None


def _like_terms(x, y, shape, sign: float):
    """u + s*c*u -> (1 + s*c)*u and c*u + s*u -> (c + s)*u for a scalar constant c (s = 1 for
    a sum, -1 for a difference): the product rule's x + 2 x is 3 x (sum(x**3)'s gradient)."""
    for u, m, c_first in ((x, y, False), (y, x, True)):
        if m.op is MUL and m.args[1] is u and u.shape == shape:
            c = _scalar_value(m.args[0])
            if c is not None:
                k = c + sign if c_first else 1.0 + sign * c
                return F.mul(k, u) if _gathers(k) else None
    return None


def _gathered(x, y, shape, sign: float):
    """(p ± c1) ± c2 -> p ± c for numbers c1, c2 (sign: that of y): the exponent of the
    second derivative of x**z read z - 1 - 1."""
    c2 = _scalar_value(y)
    if c2 is None or (x.op is not ADD and x.op is not SUB) or x.shape != shape \
            or x.name is not None:  # (a named sum stays: s + 2 is not w + 3)
        return None
    p, q = x.args
    c1 = _scalar_value(q)
    if c1 is None or p.shape != shape:
        return None
    k = (c1 if x.op is ADD else -c1) + sign * c2  # p + k
    if k == 0:
        return p
    if not _gathers(k):
        return None
    return F.add(p, k) if k > 0 else F.sub(p, -k)


def _absorbed(s, t, shape):
    """(p ± q) + t with t equal or like p (or q, in a sum): the like terms meet, (p + t) ± q.
    The derivative of 3x^2 - 2x read 3*x - 2 + 3*x, and now reads 6*x - 2."""
    if (s.op is not ADD and s.op is not SUB) or s.shape != shape or t.shape != shape \
            or _scalar_value(t) is not None or s.name is not None:  # (see _gathered)
        return None
    p, q = s.args
    if s.op is SUB and q is t and p.shape == shape:  # (p - t) + t is p
        return p
    for term, first in ((p, True), (q, s.op is ADD)):
        if not first or term.shape != shape:
            continue
        both = F.mul(2.0, t) if term is t else _like_terms(term, t, shape, 1.0)
        if both is not None:
            if term is p:
                return F.add(both, q) if s.op is ADD else F.sub(both, q)
            return F.add(p, both)
    return None


def _broadcast_after(x, y, shape, combine):
    """op(broadcast_to(a, s), y) -> broadcast_to(op(a, y), shape) for a scalar a or y (and the
    mirror image): the op on the smaller operands, broadcast once. Computed the other way, a
    scalar constant's broadcast (sum's derivative) is a float64 array that promotes a float32
    y's result (so the rules also drop a broadcast that the other operand makes anyway)."""
    if x.op.name == "broadcast_to" and (y.ndim == 0 or x.args[0].ndim == 0):
        return F.broadcast_to(combine(x.args[0], y), shape)
    if y.op.name == "broadcast_to" and (x.ndim == 0 or y.args[0].ndim == 0):
        return F.broadcast_to(combine(x, y.args[0]), shape)
    return None


# operands that some rule below looks at; a node whose operands are none of these is left alone
# (the ops functions.value_of reads a constant from: const, broadcast_to, zero; keep in sync)
_SEEN = frozenset(("const", "broadcast_to", "zero", "neg", "mul"))
_MUL_SEEN = frozenset(("const", "broadcast_to", "zero", "neg"))  # mul matters next to a const
_ADD_SEEN = _SEEN | {"add", "sub"}  # a sum meets a like term of its own (see _absorbed)


@rule(ADD)
def _add_zero(args, attrs, shape):
    x, y = args
    if x.op.name not in _ADD_SEEN and y.op.name not in _ADD_SEEN:
        return None
    if F.is_const(y, 0.0) and x.shape == shape and (r := as_float(x)) is not None:
        return r
    if F.is_const(x, 0.0) and y.shape == shape and (r := as_float(y)) is not None:
        return r
    if y.op is NEG:
        return F.sub(x, y.args[0])
    if x.op is NEG:
        return F.sub(y, x.args[0])
    # a broadcast term whose broadcast the other term already makes (sum's derivative)
    if x.op.name == "broadcast_to" and y.shape == shape:
        return F.add(x.args[0], y)
    if y.op.name == "broadcast_to" and x.shape == shape:
        return F.add(x, y.args[0])
    r = _broadcast_after(x, y, shape, F.add)
    if r is None:
        r = _like_terms(x, y, shape, 1.0)
    if r is None:
        r = _absorbed(x, y, shape)
    if r is None:
        r = _absorbed(y, x, shape)
    if r is None:
        r = _gathered(x, y, shape, 1.0)
    return r if r is not None else _factor_out(x, y, shape, F.add)


@rule(SUB)
def _sub_rules(args, attrs, shape):
    x, y = args
    if x is not y and x.op.name not in _SEEN and y.op.name not in _SEEN:
        return None
    if F.is_const(y, 0.0) and x.shape == shape and (r := as_float(x)) is not None:
        return r
    if F.is_const(x, 0.0) and y.shape == shape and (r := as_float(y)) is not None:
        return F.neg(r)
    if x is y:
        return F.zeros(shape)
    if y.op is NEG:
        return F.add(x, y.args[0])
    if x.op is NEG:  # -u - v -> -(u + v): -u - u is -(2 u)
        return F.neg(F.add(x.args[0], y))
    if x.op.name == "broadcast_to" and y.shape == shape:
        return F.sub(x.args[0], y)
    if y.op.name == "broadcast_to" and x.shape == shape:
        return F.sub(x, y.args[0])
    r = _broadcast_after(x, y, shape, F.sub)
    if r is None:
        r = _like_terms(x, y, shape, -1.0)
    if r is None:
        r = _gathered(x, y, shape, -1.0)
    return r if r is not None else _factor_out(x, y, shape, F.sub)


@rule(MUL)
def _mul_rules(args, attrs, shape):
    x, y = args
    if x.op.name not in _MUL_SEEN and y.op.name not in _MUL_SEEN:
        return None
    if F.is_const(x, 0.0) or F.is_const(y, 0.0):
        return F.zeros(shape)
    if F.is_const(y, 1.0) and x.shape == shape and (r := as_float(x)) is not None:
        return r
    if F.is_const(x, 1.0) and y.shape == shape and (r := as_float(y)) is not None:
        return r
    if F.is_const(x, -1.0) and y.shape == shape and (r := as_float(y)) is not None:
        return F.neg(r)
    if F.is_const(y, -1.0) and x.shape == shape and (r := as_float(x)) is not None:
        return F.neg(r)
    if x.op is NEG and x.name is None:  # (a named value stays one: 2 nx, not -2 x)
        return F.neg(F.mul(x.args[0], y))
    if y.op is NEG and y.name is None:
        return F.neg(F.mul(x, y.args[0]))
    # a broadcast factor whose broadcast the other operand already makes
    if x.op.name == "broadcast_to" and y.shape == shape:
        return F.mul(x.args[0], y)
    if y.op.name == "broadcast_to" and x.shape == shape:
        return F.mul(x, y.args[0])
    r = _broadcast_after(x, y, shape, F.mul)
    if r is not None:
        return r
    # constants to the front, and scalar constants gathered: c1*(c2*z) -> (c1*c2)*z
    cy = _scalar_value(y)
    if cy is not None and _scalar_value(x) is None:
        return F.mul(y, x)
    cx = _scalar_value(x)
    if cx is not None and y.name is not None:
        return None  # a named value stays one: 2*r is not 6*exp(w) for r = 3*exp(w)
    if cx is not None and y.op is MUL:
        cz = _scalar_value(y.args[0])
        if cz is not None and _gathers(cx * cz):
            return F.mul(cx * cz, y.args[1])
    if cx is not None and y.op.name == "outer":  # c1 outer(c2 u, v) -> outer((c1 c2) u, v):
        for i, v in enumerate(y.args):  # the Hessian of (w^T w)^2 read "2 4 w w^T" (24?)
            cz = _scalar_value(v.args[0]) if v.op is MUL and v.name is None else None
            if cz is not None and v.args[1].shape == v.shape and _gathers(cx * cz):
                scaled = F.mul(cx * cz, v.args[1])
                return F.outer(*(scaled if j == i else o for j, o in enumerate(y.args)))
    if cx is not None and y.op is DIV and y.shape == shape:  # c1*(c2/z) -> (c1*c2)/z: the
        cz = _scalar_value(y.args[0])  # mean's 2*(1/n) reads 2/n, sqrt's 2*(0.5/s) is 1/s
        if cz is not None and _gathers(cx * cz):
            return F.div(cx * cz, y.args[1])
    if cx is not None and y.op is DIV:  # c1*(z/c2) -> (c1/c2)*z: 2*(lam/2) is lam
        cz = _scalar_value(y.args[1])
        if cz is not None and cz != 0 and y.args[0].shape == shape and _gathers(cx / cz):
            return F.mul(cx / cz, y.args[0])
    return None


_F32_TINY, _F32_MAX = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)


def _gathers(c: float) -> bool:
    """Whether two scalar constants may be gathered into ``c``: a normal float32 (1e200 *
    (1e200 * x) gathered to inf * x, and 1e-200 * (1e-200 * x) to the exact 0, whose gradient
    said x was not used; (v 1e20)(w 1e20) gathered to 1e40 v w, inf for float32 v and w,
    whose product is 3.0). The constants are never zero here: the rules above take x * 0."""
    return _F32_TINY <= abs(c) <= _F32_MAX


@rule(DIV)
def _div_rules(args, attrs, shape):
    x, y = args
    if F.is_const(y, 1.0) and x.shape == shape and (r := as_float(x)) is not None:
        return r
    if F.is_const(x, 0.0) and not F.is_const(y, 0.0):  # (0/0 is nan: the constants fold)
        return F.zeros(shape)
    if x.op is NEG:
        return F.neg(F.div(x.args[0], y))
    # (a b) / a = b and y**k / y = y**(k - 1) for a whole k >= 2: the product rule's
    # (mu mu) (1/mu) of d(mu**2 log(mu))/dmu was 0/0 = nan once mu**2 underflows
    if x.op is MUL and (x.args[0] is y or x.args[1] is y):
        other = x.args[1] if x.args[0] is y else x.args[0]
        if other.shape == shape:
            return other
    if x.op is POW and x.args[0] is y and x.shape == shape:
        k = _scalar_value(x.args[1])
        if k is not None and k >= 2 and k == int(k):
            return y if k == 2 else F.power(y, k - 1.0)
    if x.op.name == "broadcast_to" and y.shape == shape:
        return F.div(x.args[0], y)
    if y.op.name == "broadcast_to" and x.shape == shape:
        return F.div(x, y.args[0])
    if y.op is POW and F.is_const(y.args[1], -1.0) and y.shape == y.args[0].shape and \
            y.name is None and not (int_valued(x) and int_valued(y.args[0])):
        # a / b**-1 = a b (0 and inf included); not where an array of -1 broadcasts b
        # (b**[-1, -1] is no b), nor for two integer values, whose product is an integer
        # where a quotient is a float
        return F.mul(x, y.args[0])
    return _broadcast_after(x, y, shape, F.div)


@rule(NEG)
def _neg_rules(args, attrs, shape):
    (x,) = args
    if x.op is NEG:
        return x.args[0]
    if F.is_const(x, 0.0):
        return x
    if x.op is not MUL or x.name is not None or x.args[0].name is not None:
        return None  # (a named value stays one: -r is not (1/s) u for r = (-1/s) u)
    if (c := _scalar_value(x.args[0])) is not None and c < 0:  # -(-1.8 X v) is 1.8 X v
        return F.mul(-c, x.args[1])
    if x.args[0].op is DIV and x.args[0].ndim == 0:
        # -((c/d) b) with a number c < 0 is ((-c)/d) b (exact): -(-(1/s**2) X^T r) read as a
        # double negation in a regression's gradient
        c = _scalar_value(x.args[0].args[0])
        if c is not None and c < 0:
            return F.mul(F.div(-c, x.args[0].args[1]), x.args[1])
    return None


@rule(POW)
def _pow_rules(args, attrs, shape):
    x, y = args
    if F.is_const(y, 1.0) and x.shape == shape and (r := as_float(x)) is not None:
        return r
    if F.is_const(y, 0.0):
        return F.ones(shape)
    if x.op.name == "exp" and x.name is None:
        # exp(u)**p = exp(p u): the power rule's exp(u)**(p - 2) underflowed where exp(u)**p
        # does not (the Hessian of exp(z)**-1 had the wrong sign at z = 300)
        return F.exp(F.mul(y, x.args[0]))
    if F.is_const(y, -1.0) and x.op is DIV and x.shape == shape and x.name is None:
        return F.div(x.args[1], x.args[0])  # (a/b)**-1 = b/a
    return None


# ---------------------------------------------------------------------------- tensor calculus
# Rules that keep Jacobians and Hessians in matrix form (vectorised reverse mode seeds them with
# identity tensors): I ⊙ v becomes diag(v), a column times a row an outer product, and the small
# factors of a product meet each other before they meet a big matrix: (X^T ⊙ a) ⊙ b becomes
# X^T ⊙ (a ⊙ b), one pass over the matrix instead of two.


def _is_eye2(e) -> bool:
    return e.op.name == "eye" and len(e.attrs["dims"]) == 1


def _as_vec(v, k):
    """``v`` of shape (k,), (1, k) or (k, 1) as a vector of shape (k,), else None."""
    if v.shape == (k,):
        return v
    if v.shape in ((1, k), (k, 1)):
        return F.reshape(v, (k,))
    return None


@rule(MUL, tensor_only=True)
def _mul_eye_diag(args, attrs, shape):
    """I ⊙ v -> diag(v) and diag(u) ⊙ v -> diag(u ⊙ v), v a row, a column or a scalar."""
    if len(shape) != 2:
        return None
    for i in (0, 1):
        e, v = args[i], args[1 - i]
        if e.shape != shape:
            continue
        if _is_eye2(e):
            u = _as_vec(v, shape[0])
            if u is not None:
                return F.diag(u)
        elif e.op.name == "diag" and e.args[0].ndim == 1:
            u = v if v.ndim == 0 else _as_vec(v, shape[0])
            if u is not None:
                return F.diag(F.mul(e.args[0], u))
    return None


@rule(MUL, tensor_only=True)
def _mul_outer(args, attrs, shape):
    """A column (j, 1) times a row (k,) is the outer product of the two vectors."""
    if len(shape) != 2:
        return None
    j, k = shape
    for i in (0, 1):
        c, r = args[i], args[1 - i]
        if c.shape == (j, 1) and r.shape in ((k,), (1, k)) and c.shape != r.shape:
            return F.outer(F.reshape(c, (j,)), F.reshape(r, (k,)))
    return None


@rule(MUL, tensor_only=True)
def _mul_regroup(args, attrs, shape):
    """Reassociate products: small factors first, scalars in front, equal factors together.
    Not with a constant far from 1 among the factors: regrouped, 1e200 * (1e200 * x * s)
    became (1e200 * 1e200 * s) * x, inf where x = 1e-300 makes the product as written 2e100."""
    nd = len(shape)
    if nd == 0:
        return None
    x, y = args
    if any(_far_from_one(a) for f in args for a in (f.args if f.op in (MUL, DIV) else (f,))):
        return None  # (a constant divisor or dividend scales as a factor does)
    for inner, other in ((x, y), (y, x)):
        if inner.op is not MUL:
            continue
        p, q = inner.args

        def pair(a, b, other=other, first=inner is x):
            return F.mul(a, b) if first else F.mul(b, a)

        for big, small in ((p, q), (q, p)):
            # (P ⊙ a) ⊙ b -> P ⊙ (a ⊙ b) when a and b broadcast over P (two numbers are
            # multiplied only where _gathers allows)
            if big.shape == shape and small.ndim < nd and other.ndim < nd:
                cs, co = _scalar_value(small), _scalar_value(other)
                if cs is not None and co is not None and not _gathers(cs * co):
                    continue
                return F.mul(big, pair(small, other))
        for s, v in ((p, q), (q, p)):
            # (s v) ⊙ u -> s (v ⊙ u): the scalar factor in front
            if s.ndim == 0 and v.shape == shape and other.shape == shape:
                return F.mul(s, pair(v, other))
        if other is p and q is not p and p.shape == q.shape == shape:
            # (a ⊙ b) ⊙ a -> (a ⊙ a) ⊙ b: a square shows (and is known non-negative)
            return F.mul(F.mul(p, p), q)
    if x.ndim == 0 and y.op is MUL:
        # s (t V) -> (s t) V for scalars s and t: one pass over V (two numbers are
        # multiplied only where _gathers allows)
        for t, v in (y.args, y.args[::-1]):
            if t.ndim == 0 and v.shape == shape:
                cx, ct = _scalar_value(x), _scalar_value(t)
                if cx is not None and ct is not None and not _gathers(cx * ct):
                    return None
                return F.mul(F.mul(x, t), v)
    return None


def _far_from_one(e) -> bool:
    """Whether ``e`` is a scalar constant beyond 1e100 or below 1e-100 in size (not 0)."""
    c = _scalar_value(e) if e.op.name in ("const", "broadcast_to") else None
    return c is not None and c != 0 and not 1e-100 <= abs(c) <= 1e100


def _is_diagonal(e) -> bool:
    return _is_eye2(e) or (e.op.name == "diag" and e.args[0].ndim == 1)


@rule(MUL, tensor_only=True)
def _mul_distribute_diagonal(args, attrs, shape):
    """v ⊙ (D ± B) -> v ⊙ D ± v ⊙ B when D is I or diag(u): the diagonal part stays diagonal."""
    if len(shape) != 2:
        return None
    for i in (0, 1):
        s, v = args[i], args[1 - i]
        if s.op not in (ADD, SUB) or s.shape != shape or v.shape == shape:
            continue
        a, b = s.args
        if _is_diagonal(a) or _is_diagonal(b):
            pa, pb = F.mul(v, a), F.mul(v, b)
            if (pa if _is_diagonal(a) else pb).op is MUL:
                return None  # the diagonal part did not stay diagonal: nothing gained
            return F.add(pa, pb) if s.op is ADD else F.sub(pa, pb)
    return None


@rule(ADD)
def _add_tensor_rules(args, attrs, shape):
    x, y = args
    if x is y:
        return F.mul(2.0, x)
    # (of equal shapes: a (1, 1) diagonal broadcasts to every entry of the other, not only to
    # its diagonal)
    if x.op.name == y.op.name == "diag" and x.shape == y.shape and _is_diagonal(x) \
            and _is_diagonal(y):
        return F.diag(F.add(x.args[0], y.args[0]))
    return None


@rule(SUB, tensor_only=True)
def _sub_tensor_rules(args, attrs, shape):
    x, y = args
    if x.op.name == y.op.name == "diag" and x.shape == y.shape and _is_diagonal(x) \
            and _is_diagonal(y):  # (of equal shapes, as for a sum)
        return F.diag(F.sub(x.args[0], y.args[0]))
    return None


@rule(MUL, tensor_only=True)
def _mul_size_one(args, attrs, shape):
    """A factor with one entry (shape (1,), (1, 1), ...) is a scalar factor."""
    if not shape:
        return None
    for i in (0, 1):
        t, o = args[i], args[1 - i]
        if t.ndim and all(d == 1 for d in t.shape) and o.shape == shape and t.ndim <= len(shape):
            return F.mul(F.reshape(t, ()), o)
    return None


@rule(REGISTRY["gate"])
def _gate_rules(args, attrs, shape):
    c, x = args
    if F.is_const(c) and np.all(np.isfinite(F.value_of(c))):  # a finite constant: its product
        return F.mul(c, x if _indicator(x) else F.step(x))   # with step, as printed
    if x.op.name == "step" and x.shape == shape:  # step(z) > 0 where z > 0: gate on z, one
        return _gate(c, x.args[0])  # array pass fewer (maximum(0, z)'s derivative in z)
    return None


@rule(REGISTRY["zero_as_one"])
def _zero_as_one_positive(args, attrs, shape):
    """A base that is never 0 is its own: log(sigmoid(z)) keeps its stable form where a
    Hessian's edge pushing writes a power's partials on such a base."""
    (x,) = args
    return x if x.op.name in _POSITIVE else None


@rule(REGISTRY["sigmoid_deriv"])
def _sigmoid_deriv_even(args, attrs, shape):
    """s(-z) (1 - s(-z)) = s(z) s(-z): both factors keep their precision at every z, where
    1 - s rounds to 0 once s is near 1 (as s(z) (1 - s(z)), this rule's form until a probe,
    exp(z) sigmoid(-z) had a gradient of 1 at z = 40, where it is 4e-18)."""
    (s,) = args
    if s.op.name == "sigmoid" and s.args[0].op is NEG:
        return F.mul(F.sigmoid(s.args[0].args[0]), s)
    return None
