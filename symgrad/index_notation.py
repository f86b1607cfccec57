"""An expression written in index notation: ``sg.index_notation(e)``.

A Hessian or Jacobian with respect to a matrix is a tensor of four or more axes. As a matrix
formula it prints with the identity that seeded it (``X I(d, K) ⊙ ...``); in index notation it
is what a textbook writes::

    H[i, j, k, l] = Σ_n s[n] X[n, i] X[n, k] A[n, j] (δ[j, l] - A[n, l])
      where A = softmax(X W, axis=1)
            s = sum(Y, axis=1)

The expression is read bottom up by the same reader that lowers such regions as contractions
(``symgrad._contract``): every index op (products, sums, matrix products, transposes,
broadcasts, diagonals, identities) becomes sums of products of indexed arrays, where an
identity is a δ; any other op's value (tanh, softmax, ...) is an array of its own, printed as
a matrix formula in the ``where`` lines. A sum over an index that only one array carries is
that array's sum (``s = sum(Y, axis=1)``). sympy then gathers the terms of each sum.
"""

from __future__ import annotations

import math
import string
from collections import defaultdict
from fractions import Fraction
from typing import NamedTuple

from ._contract import _INDEX_OPS, _Reader, _Recip, _Term, _Unfit
from ._lazy import sympy  # (imported on first use: deriving and compiling never need it)
from .expr import Expr, unguard
from .graph import topo_order
from .ops.leaves import tex_name
from .shapes import check_identifier

_OUT = "ijklabcdefgh"  # output axes, in order
_SUMMED = "nmpqrstuvwxyz"  # summed indices (a symbolic size's own letter first)
_PREFERRED = {"sum": "s", "softmax": "P"}  # a created array's letter, where it is free
PRINT_TERMS, PRINT_FACTORS = 16, 10  # beyond these a value is an array of its own
_SIMPLIFY_LIMIT = 120  # sympy operations in a sum's summand: beyond this only factor_terms


class IndexForm(NamedTuple):
    """An expression as index notation: ``out`` the indices of its axes (None for an axis of
    size 1), ``sums`` a list of (summed indices, summand), ``arrays`` each array's name -> its
    Expr, ``sizes`` each index -> its size."""

    out: tuple
    sums: list
    arrays: dict
    sizes: dict


def index_notation(e: Expr, name: str | None = None, *, latex: bool = False) -> str:
    """``e`` written in index notation, with its arrays defined below it.

    Every index op (``*``, ``+``, ``-``, ``sum``, ``@``, ``outer``, transposes, broadcasts,
    ``diag``, ``diagonal``, identities) is written out as sums over indices of products of
    indexed arrays, an identity as a Kronecker delta ``δ[j, l]``; every other value is an array
    of its own, named (its name, or a capital letter) and defined as a matrix formula in the
    ``where`` lines (a named value too). Names never clash: a value whose name another value
    already shows gets a letter of its own. ``name``: the left-hand side's, an identifier
    that names nothing in the expression (default: ``e``'s name, else ``F``, ``G``, ...);
    ``latex=True`` gives LaTeX. Sizes of 1 carry no index. Meant for Jacobians and Hessians
    with respect to matrices, which as matrix formulas show the identity that seeded them."""
    if not isinstance(e, Expr):
        raise TypeError(f"index_notation: expected an expression, got {type(e).__name__}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"index_notation: name must be a string, got {type(name).__name__}")
    if not isinstance(latex, bool):
        raise TypeError(f"index_notation: latex must be True or False, got {latex!r}")
    names = _graph_names(unguard(e))
    names.pop(e.name, None)  # (the expression's own name is the left-hand side's to take)
    if name is not None:
        check_identifier(name, "index_notation: name")
        if name in names:
            raise ValueError(f"index_notation: name {name!r} is already a name in the "
                             "expression: choose another")
        if _notation(name):
            raise ValueError(f"index_notation: name {name!r} reads as the notation's own "
                             "(a Kronecker δ, a sum Σ, the identity I): choose another")
    else:
        name = next(c for c in ([e.name] if e.name else []) + list("FGHJKLMQRTUVWZ") +
                    [f"F{k}" for k in range(1, 1000)] if c not in names)
    form = index_form(e, name)
    if latex:
        return _as_latex(form, name)
    p = _printers()[0]()
    lhs = f"{name}[{', '.join(i for i in form.out if i)}]" if any(form.out) else name
    lines = [f"{lhs} = {_joined(form, p.doprint, 'Σ_{}', ' ')}"]
    defs = _defined(form)
    for n, (k, v) in enumerate(defs):
        body = " " + _definition(form, v, latex=False)
        if "\n" in body:  # (temporaries, one per line: below the name)
            body = "".join("\n" + " " * 10 + line for line in body[1:].splitlines())
        lines.append(("  where " if n == 0 else " " * 8) + f"{k} =" + body)
    return "\n".join(lines)


def _notation(name: str) -> bool:
    """Whether a name would read as the notation's own symbols: δ (``delta`` in LaTeX), a
    sum Σ, the identity I (which the where lines' formulas show as ``I(3, 4)``)."""
    return name in ("δ", "delta", "I") or name.startswith("Σ")


def _defined(form: IndexForm) -> list:
    """The arrays that need a definition: all but variables and sizes under their own names
    (a named value too: its name is shown, and what it stands for), then each named value a
    definition shows by its name."""
    out = [(k, v) for k, v in form.arrays.items() if k != _own_name(v)
           or v.op.name not in ("var", "dimsize")]
    shown = {id(v) for v in form.arrays.values()}
    names = set(form.arrays)
    for _, v in out:  # (the list grows: a definition's own named values, in turn)
        for n in topo_order([v]):
            if n is not v and n.name is not None and id(n) not in shown and \
                    n.name not in names and n.op.name != "var":
                shown.add(id(n))
                names.add(n.name)
                out.append((n.name, n))
    return out


def _own_name(n: Expr) -> str | None:
    return n.attrs["vname"] if n.op.name == "var" else \
        n.attrs["dim"] if n.op.name == "dimsize" else n.name


def _definition(form: IndexForm, v: Expr, latex: bool) -> str:
    """``v``'s matrix formula, with the values the index form names shown by those names (a
    name of the graph's may stand for another value there)."""
    from .printing import _render

    if v.op.name in ("var", "dimsize"):  # (one that lost its name to a value of the graph's)
        what = "the variable" if v.op.name == "var" else "the size"
        own = _own_name(v)
        return rf"\text{{{what} }}{own}" if latex else f"{what} {own}"
    sigma = any(k.partition("_")[0] == "sigma" for k in form.arrays)  # (σ is the sigmoid)
    return _render(v, latex, names={id(n): k for k, n in form.arrays.items()},
                   spell_sigmoid=sigma or None)


def _graph_names(root: Expr) -> dict[str, set]:
    """Each name the expression's values go by (variables, sizes, named values) -> the ids
    of the values that have it (more than one: names that must not be used as they are)."""
    out: dict[str, set] = defaultdict(set)
    for n in topo_order([root]):
        own = _own_name(n)
        if own is not None:
            out[own].add(id(n))
        for d in n.shape:
            if isinstance(d, str):
                out[d]  # (a size: an index letter must not read as it)
    return out


def _joined(form: IndexForm, show, sigma: str, space: str, latex: bool = False) -> str:
    parts = []
    for idx, summand in form.sums:
        text = show(summand)
        if idx:
            sign = ""
            if isinstance(summand, sympy.Add):
                text = f"({text})"
            elif text.startswith("-"):  # - Σ_n A[i, n] B[n, j], not + Σ_n -A[i, n] B[n, j]
                sign, text = "-", text[1:].lstrip()
            text = sign + sigma.format(",".join(idx) if len(idx) == 1 or latex else
                                       "{" + ",".join(idx) + "}") + space + text
        parts.append(text)
    return " + ".join(parts).replace("+ -", "- ") if parts else "0"


def _as_latex(form: IndexForm, name: str) -> str:
    tex = _printers()[1]()
    lhs = tex.doprint(sympy.Symbol(name))
    if any(form.out):
        lhs = "{" + lhs + "}_{" + " ".join(i for i in form.out if i) + "}"
    body = _joined(form, tex.doprint, r"\sum_{{{}}}", " ", latex=True)
    defs = [f"{tex.doprint(sympy.Symbol(k))} = {_definition(form, v, latex=True)}"
            for k, v in _defined(form)]
    return lhs + " = " + body + (r",\quad " + r",\ ".join(defs) if defs else "")


_PRINTERS: list = []


def _printers() -> tuple:
    """(text printer, LaTeX printer) classes: sympy's, with products written side by side and
    δ for the Kronecker delta (made on first use, as sympy is imported)."""
    if not _PRINTERS:
        from sympy.printing.latex import LatexPrinter
        from sympy.printing.str import StrPrinter

        class Text(StrPrinter):
            def _print_KroneckerDelta(self, e):
                return f"δ[{self._print(e.args[0])}, {self._print(e.args[1])}]"

            def _print_Mul(self, e):
                return super()._print_Mul(e).replace("**", "^").replace("*", " ")

            def _print_Pow(self, e):
                return super()._print_Pow(e).replace("**", "^")

            def _print_Infinity(self, e):
                return "inf"

        class Tex(LatexPrinter):
            def _print_Symbol(self, e, style="plain"):  # as sg.latex writes names (W1:
                return tex_name(e.name)  # \mathrm{W1}, where sympy's W_{1} read as W_1)

            def _print_KroneckerDelta(self, e, exp=None):
                return r"\delta_{" + self._print(e.args[0]) + " " + self._print(e.args[1]) + "}"

        _PRINTERS.extend((Text, Tex))
    return tuple(_PRINTERS)


# ------------------------------------------------------------------------------- reading
def index_form(e: Expr, name: str | None = None) -> IndexForm:
    """``e`` read as index notation (see :func:`index_notation`), as data: what the printer
    prints, and what the tests evaluate; ``name``: the left-hand side's, which no array or
    index takes."""
    if not isinstance(e, Expr):
        raise TypeError(f"index_notation: expected an expression, got {type(e).__name__}")
    root = unguard(e)
    reader = _Reader(PRINT_TERMS, PRINT_FACTORS, printing=True)
    for n in topo_order([root]):
        if n.name is not None and n is not root:
            continue  # a named value prints as its name (an array)
        if n.op.name in ("eye", "gate", "zero", "gram") or (n.args and n.op.name in _INDEX_OPS):
            try:
                reader.add(n)
            except _Unfit:  # (too many terms or factors: its operands are arrays)
                reader.kept.update(id(a) for a in n.args if id(a) in reader.terms)
    terms = [_summed_alone(t) for t in reader.read(root)]
    return _Written(root, terms, reader.sizes, name).form()


def _summed_alone(t: _Term) -> _Term:
    """``t`` with each array that alone carries some summed indices replaced by its sum over
    them (``Σ_m Y[n, m]`` is ``sum(Y, axis=1)[n]``)."""
    from .functions import sum as sg_sum

    count: dict = defaultdict(int)
    for _, ls in t.factors:
        for lb in ls:
            count[lb] += 1
    out = set(t.out)
    factors = []
    for n, ls in t.factors:
        axes = tuple(k for k, lb in enumerate(ls)
                     if lb not in out and count[lb] == 1 and n.shape[k] != 1)
        if axes and len(axes) < len(ls) and not isinstance(n, _Recip):
            n = sg_sum(n, axis=axes)
            ls = tuple(lb for k, lb in enumerate(ls) if k not in axes)
        factors.append((n, ls))
    return _Term(t.coef, tuple(factors), t.out)


class _Written:
    """Names the arrays and indices of ``terms`` and builds the sympy summands."""

    def __init__(self, root: Expr, terms: list, sizes: list, name: str | None):
        self.root, self.terms, self.sizes = root, terms, sizes
        self.graph_names = _graph_names(root)
        self.taken = set(self.graph_names) | {name}
        # a name used -> the id of the value it shows (the left-hand side's: none, so that
        # the expression, where it is an array of its own, gets a letter)
        self.owner: dict[str, int] = {name: 0}
        for k in self.graph_names:  # (a variable named δ: a letter, and "the variable δ")
            if _notation(k):
                self.owner[k] = 0
        for n in topo_order([root]):  # variables and sizes keep their names first
            if n.op.name in ("var", "dimsize"):
                self.owner.setdefault(_own_name(n), id(n))
        self.names: dict[int, str] = {}  # an array's id -> its letter
        self.arrays: dict[str, Expr] = {}
        self.size_of: dict[str, object] = {}
        letters = iter([c for c in _OUT if c not in self.taken] +
                       [f"i{k}" for k in range(1, 100)])
        self.out = tuple(None if d == 1 else next(letters) for d in root.shape)
        for i, d in zip(self.out, root.shape):
            if i is not None:
                self.size_of[i] = d
        self.summed: dict[tuple, str] = {}  # (size, ordinal) -> letter

    def form(self) -> IndexForm:
        groups: dict[tuple, list] = defaultdict(list)
        for t in self.terms:
            idx, e = self._term(t)
            groups[idx].append(e)
        sums = []
        for idx, es in groups.items():
            summand = _gathered(sympy.Add(*es))
            if summand != 0:
                sums.append((idx, summand))
        # a variable named as the notation's symbols (δ, I) inside an array's definition: a
        # letter there too (tanh(M δ) read as a product with the Kronecker δ)
        for v in list(self.arrays.values()):
            for n in topo_order([v]):
                if n.op.name == "var" and _notation(n.attrs["vname"]):
                    self._name(n)
        return IndexForm(self.out, sums, self.arrays, self.size_of)

    def _term(self, t: _Term) -> tuple[tuple, sympy.Expr]:
        lab: dict = {}
        e: sympy.Expr = _number(t.coef)
        for k, lb in enumerate(t.out):
            if lb is None or self.out[k] is None:  # (constant along the axis, or size 1)
                continue
            if lb in lab:
                e *= sympy.KroneckerDelta(sympy.Symbol(lab[lb]), sympy.Symbol(self.out[k]))
            else:
                lab[lb] = self.out[k]
        ordinal: dict = defaultdict(int)
        idx = []
        for n, ls in t.factors:
            keep = []
            for lb, d in zip(ls, n.shape):
                if d == 1:
                    continue
                if lb not in lab:
                    size = self.sizes[lb]
                    lab[lb] = self._letter(size, ordinal[size])
                    ordinal[size] += 1
                    idx.append(lab[lb])
                keep.append(sympy.Symbol(lab[lb]))
            e *= self._array(n, keep)
        return tuple(sorted(idx, key=_SUMMED_ORDER)), e

    def _letter(self, size, ordinal: int) -> str:
        key = (size, ordinal)
        if key not in self.summed:
            used = set(self.out) | set(self.summed.values()) | self.taken | set(self.arrays)
            own = size.lower() if isinstance(size, str) and len(size) == 1 else None
            # (a symbolic size's own letter is its, even before it is used: Σ_n over 3
            # entries beside a size N read as a sum over N)
            used |= {d.lower() for d in self.graph_names if len(d) == 1 and d != size}
            pool = ([own] if own and ordinal == 0 else []) + list(_SUMMED) + \
                [f"n{k}" for k in range(1, 100)]
            self.summed[key] = next(c for c in pool if c not in used)
            self.size_of[self.summed[key]] = size
        return self.summed[key]

    def _array(self, n: Expr, idx: list) -> sympy.Expr:
        if isinstance(n, _Recip):  # (a division)
            d = self._array(n.of, idx)
            return sympy.oo if d == 0 else 1 / d  # (1/0.0 is inf, not sympy's zoo)
        if n.op.name == "const" and not n.shape:
            return _number(n.attrs["value"])
        if not n.shape and n.op.name not in ("var", "dimsize") and n.name is None:
            number = _scalar(n, self.graph_names)  # a number's formula (1/(N K), not A)
            if number is not None:
                return number
        name = self._name(n)
        if not idx:  # (the assumptions sg.to_sympy gives: the same symbol as in a formula)
            if n.op.name == "dimsize" and name == n.attrs["dim"]:
                return sympy.Symbol(name, positive=True, integer=True)
            return sympy.Symbol(name, real=True)
        return sympy.IndexedBase(name)[tuple(idx)]

    def _name(self, n: Expr) -> str:
        own = _own_name(n)
        if own is not None and self.owner.setdefault(own, id(n)) == id(n):
            self.arrays[own] = n
            return own
        # (no name, or one another value shows already: a letter, and its definition; one
        # letter per value, which hash-consing makes one node: two values may print alike)
        text = id(n)
        if text not in self.names:
            used = self.taken | set(self.arrays) | set(self.out) | set(self.summed.values())
            letter = _PREFERRED.get(n.op.name)
            letter = letter if letter not in used else None
            letter = letter or next(c for c in list(string.ascii_uppercase) +
                                    [f"A{k}" for k in range(1, 1000)]
                                    if c not in used and c != "I")  # (I: the identity)
            self.names[text] = letter
            self.arrays[letter] = n
        return self.names[text]


def _scalar(n: Expr, graph_names: dict) -> sympy.Expr | None:
    from .sympy_bridge import to_sympy

    below = topo_order([n])
    if any(a.shape for a in below):
        return None  # (sympy would write out a matrix's entries)
    if any(len(graph_names.get(_own_name(a), ())) > 1 for a in below):
        return None  # (a name two values go by: sympy would take them for one)
    try:
        e = to_sympy(n, keep_names=True)
    except Exception:  # (an op sympy has no form for: the value is an array of its own)
        return None
    return e if sympy.count_ops(e) <= 12 else None


def _number(c: float) -> sympy.Expr:
    """A coefficient: an integer, a fraction of small terms where it is one to rounding (a
    mean's 1/3, not 0.333333333333333), else a float."""
    c = float(c)
    if not math.isfinite(c):  # (inf, nan: as sympy writes the float)
        return sympy.Float(c)
    if c.is_integer():
        return sympy.Integer(int(c))
    r = Fraction(c).limit_denominator(1000)
    if abs(float(r) - c) <= 1e-15 * abs(c):
        return sympy.Rational(r.numerator, r.denominator)
    return sympy.Float(c)


def _SUMMED_ORDER(c: str) -> tuple:
    return (_SUMMED.index(c) if c in _SUMMED else -1, c)


def _gathered(e: sympy.Expr) -> sympy.Expr:
    """``e`` with its terms gathered: common factors out, and sympy's simplification where
    the summand is small and it comes out shorter."""
    e = sympy.factor_terms(e)
    if sympy.count_ops(e) <= _SIMPLIFY_LIMIT:
        s = sympy.simplify(e)
        if sympy.count_ops(s) < sympy.count_ops(e):
            e = s
    return e
