"""Leaves: variables, constants, symbolic sizes, identity tensors, and name aliases."""

from __future__ import annotations

import hashlib
import keyword
import math
import numbers

import numpy as np

from .._lazy import sympy
from ..shapes import as_shape, fmt_shape
from .base import P_ATOM, P_MUL, P_NEG, P_POW, Op, register


def fmt_number(v: float) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if v == 0.0 and math.copysign(1.0, v) < 0:  # not 0: 1/-0.0 is -inf, and -0 reads as 0
        return "-0.0"
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    s = repr(v)
    short = f"{v:.15g}"
    if len(short.split("e")[0].lstrip("-").replace(".", "").strip("0")) <= 12:
        # the rounding error of a derived constant (2.51 - 1 is 1.5099999999999998) is not
        # printed: 1.51, as a person writes it (the code keeps the exact value)
        return short
    frac = small_fraction(v)
    return s if frac is None else f"{frac[0]}/{frac[1]}"


def unrounded_exponent(e) -> str | None:
    """The full text of a number exponent ``e`` that :func:`fmt_number` would print as a whole
    number it is not: (-x)**99.99999999999999 is nan where (-x)**100 is finite, so a reader (and
    ``sg.parse``) must see every digit there, where a coefficient may drop an ulp."""
    op = getattr(e, "op", None)  # (printing a Hessian's entries passes stand-in nodes)
    if op is None or op.name != "const" or e.shape:
        return None
    v = e.attrs["value"]
    if isinstance(v, (int, np.integer)) or not math.isfinite(v) or float(v).is_integer():
        return None
    short = fmt_number(v)
    return repr(float(v)) if "/" not in short and float(short).is_integer() else None


def small_fraction(v: float) -> tuple[int, int] | None:
    """(p, q) when ``v`` is exactly the float p/q for a denominator up to 100 (the mean's 1/3,
    2/3): printed as the fraction, not 0.3333333333333333."""
    if not np.isfinite(v) or abs(v) > 1000:  # (and v * q of the largest floats is inf)
        return None
    for q in range(2, 101):
        p = round(v * q)
        if p and abs(p) <= 1000 and p / q == v and np.gcd(p, q) == 1:
            return p, q
    return None


class Var(Op):
    name = "var"
    attr_names = ("vname", "shape")
    nargs = 0
    leaf = True

    def infer(self, args, attrs):
        return attrs["shape"], ()

    def code(self, a, n, g):
        return g.var_name(n)

    math = code

    def sympy(self, a, n, ctx):
        return ctx.symbol(n)

    def vjp(self, n, ct, nb, wants):
        return []

    def text(self, a, n):
        return n.attrs["vname"], P_ATOM

    def tex(self, a, n):
        return tex_name(n.attrs["vname"]), P_ATOM


class Const(Op):
    name = "const"
    attr_names = ("value",)
    nargs = 0
    leaf = True

    def attrs_key(self, attrs):
        v = attrs["value"]
        if isinstance(v, np.ndarray):
            # a digest of the bytes, not the bytes: a key outlives its node until the table is
            # swept, and a copy of every dropped constant (a minibatch a step) held gigabytes
            digest = hashlib.blake2b(np.ascontiguousarray(v), digest_size=32).digest()
            return ("arr", v.dtype.str, v.shape, digest)
        if isinstance(v, float):  # by its bits: -0.0 == 0.0, yet 1/-0.0 is -inf
            return ("float", v.hex())
        return (type(v).__name__, v)

    def infer(self, args, attrs):
        v = attrs["value"]
        return (tuple(v.shape) if isinstance(v, np.ndarray) else ()), ()

    def code(self, a, n, g):
        return g.const(n.attrs["value"])

    math = code

    def sympy(self, a, n, ctx):
        v = n.attrs["value"]
        if isinstance(v, np.ndarray):
            if v.ndim == 0:
                return sympy.Float(float(v)) if v.dtype.kind == "f" else sympy.Integer(int(v))
            if v.ndim == 1:
                return sympy.ImmutableMatrix(v.reshape(-1, 1).tolist())
            if v.ndim == 2:
                return sympy.ImmutableMatrix(v.tolist())
            raise NotImplementedError("sympy has no form for constants of more than two axes")
        if isinstance(v, float) and v.is_integer():
            return sympy.Integer(int(v))
        if not isinstance(v, float):
            return sympy.Integer(v)
        # a simple form (1/3 for 0.3333333333333333) only where it is this very float:
        # nsimplify alone snapped 1.00000001 to 1 and 1e-40 to 0, so sg.simplify(1.00000001*x - x)
        # was 0
        r = sympy.nsimplify(v, rational=False)
        return r if r.is_Number and float(r) == v else sympy.Float(v)

    def vjp(self, n, ct, nb, wants):
        return []

    def text(self, a, n):
        v = n.attrs["value"]
        if isinstance(v, np.ndarray):
            if v.size <= 6:
                return np.array2string(v, separator=", ").replace("\n", ""), P_ATOM
            return f"const{fmt_shape(v.shape)}", P_ATOM
        s = fmt_number(v)
        return s, (P_NEG if s.startswith("-") else P_MUL if "/" in s else P_ATOM)

    def tex(self, a, n):
        v = n.attrs["value"]
        if isinstance(v, np.ndarray):
            return rf"\mathrm{{const}}{tex_shape(v.shape)}", P_ATOM
        return tex_number(v)


def tex_number(v) -> tuple[str, int]:
    """LaTeX of a number, with its precedence: ``1e-05`` would read as 1 e - 5 (e Euler's
    number), so powers of ten are written out: ``10^{-5}``, ``2.5 \\cdot 10^{20}``; ``inf`` is
    ``\\infty``."""
    s = fmt_number(v)
    sign, body = ("-", s[1:]) if s.startswith("-") else ("", s)
    if body == "inf":
        body, p = r"\infty", P_ATOM
    elif body == "0.0":  # negative zero: -0
        body, p = "0", P_ATOM
    elif body == "nan":  # (upright text: a variable named NaN is \mathrm{NaN})
        body, p = r"\text{NaN}", P_ATOM
    elif "/" in body:  # a small fraction
        num, _, den = body.partition("/")
        body, p = rf"\frac{{{num}}}{{{den}}}", P_ATOM
    elif "e" in body:
        m, _, k = body.partition("e")
        k = str(int(k))
        body, p = (f"10^{{{k}}}", P_POW) if m == "1" else (rf"{m} \cdot 10^{{{k}}}", P_MUL)
    else:
        p = P_ATOM
    return sign + body, (P_NEG if sign else p)


class DimSize(Op):
    """A symbolic size used as a scalar value (e.g. the N in a mean over N samples)."""

    name = "dimsize"
    attr_names = ("dim",)
    nargs = 0
    leaf = True

    def infer(self, args, attrs):
        return (), ()

    def code(self, a, n, g):
        return g.dim(n.attrs["dim"])

    math = code

    def sympy(self, a, n, ctx):
        return sympy.Symbol(n.attrs["dim"], positive=True, integer=True)

    def vjp(self, n, ct, nb, wants):
        return []

    def text(self, a, n):
        return n.attrs["dim"], P_ATOM

    def tex(self, a, n):
        return tex_name(n.attrs["dim"]), P_ATOM


class Eye(Op):
    """The identity tensor of shape ``dims + dims`` (the seed of vectorised reverse mode)."""

    name = "eye"
    attr_names = ("dims",)
    nargs = 0
    leaf = True

    def infer(self, args, attrs):
        d = attrs["dims"]
        if not d:  # its code would be _xp.eye() (a SyntaxError where it is compiled)
            raise ValueError("eye: dims () has no size (the identity of shape () is 1.0)")
        return tuple(d) + tuple(d), ()

    def code(self, a, n, g):
        dims = n.attrs["dims"]
        like = getattr(g, "like", None)  # in the floating dtype of a tensor input, if any
        size = " * ".join(g.dim(d) for d in dims)
        eye = f"_rt.eye(_xp, {size}, {like})" if like else f"_xp.eye({size})"
        if len(dims) == 1:
            return eye
        full = ", ".join(g.dim(d) for d in dims + dims)
        return f"_xp.reshape({eye}, ({full},))"

    def sympy(self, a, n, ctx):
        dims = n.attrs["dims"]
        if len(dims) == 1:
            return sympy.Identity(ctx.size(dims[0]))
        raise NotImplementedError("sympy has no identity tensor of more than two axes")

    def vjp(self, n, ct, nb, wants):
        return []

    def text(self, a, n):
        dims = n.attrs["dims"]
        return ("I" if len(dims) == 1 else f"I{fmt_shape(dims)}"), P_ATOM

    def tex(self, a, n):
        dims = n.attrs["dims"]  # (a tensor identity says its sizes, as the text does)
        return ("I" if len(dims) == 1 else f"I_{{{tex_shape(dims)}}}"), P_ATOM


class Alias(Op):
    """A leaf (variable or constant) shown under another name; its value is the leaf's."""

    name = "alias"
    attr_names = ("alias",)
    nargs = 1

    def infer(self, args, attrs):
        return args[0].shape, ()

    def code(self, a, n, g):
        return a[0]

    math = code

    def sympy(self, a, n, ctx):
        return a[0]

    def vjp(self, n, ct, nb, wants):
        return [ct]

    def batch(self, n, args, batched):
        return args[0]  # only a leaf is shown by another name, and a batched one is new

    def text(self, a, n):
        return n.attrs["alias"], P_ATOM

    def tex(self, a, n):
        return tex_name(n.attrs["alias"]), P_ATOM


_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
          "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
          "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi",
          "Psi", "Omega"}


def tex_shape(shape) -> str:
    r"""A shape as ``fmt_shape`` writes it, its symbolic sizes as LaTeX names (``n_{a\_b}``,
    where ``n_a_b`` is a double subscript to TeX)."""
    return fmt_shape(tuple(tex_name(d) if isinstance(d, str) else d for d in shape))


def tex_name(name: str) -> str:
    """LaTeX for an identifier: Greek letters as symbols, a trailing _suffix as a subscript.
    An underscore inside the subscript is written as such (``x_{long\\_name}``), not as a
    subscript of the subscript. A leading or trailing underscore is written out, so that
    ``x_`` and ``_`` do not print as ``x`` and nothing (``lambda_`` is λ: no name is
    ``lambda``)."""
    base, sep, sub = name.partition("_")
    if not base:
        return r"\mathrm{" + name.replace("_", r"\_") + "}"
    b = "\\" + base if base in _GREEK else (base if len(base) == 1 else rf"\mathrm{{{base}}}")
    if sep and sub:
        rest = tex_name(sub) if sub in _GREEK else sub.replace("_", r"\_")
        return f"{b}_{{{rest}}}"
    # (lambda_: Python's spelling of a keyword as a name, and no name is lambda)
    return b + r"\_" if sep and not keyword.iskeyword(base) else b


VAR = register(Var())
CONST = register(Const())
DIMSIZE = register(DimSize())
EYE = register(Eye())
ALIAS = register(Alias())


def is_number(v) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, bool) or isinstance(v, np.number)


def shape_of_value(v) -> tuple:
    return as_shape(np.shape(v))
