"""What symgrad prints means what the graph computes.

- sg.latex(e) of a random graph of scalars, read back by a small reader of symgrad's LaTeX
  conventions (juxtaposition and \\cdot are products, \\frac, \\sqrt, ^{...}, \\left( \\right),
  \\left| \\right|, \\operatorname{...}, temporaries t_{k} = ... \\\\), has e's value; a number
  must read as a number (``1e-05`` would be 1 e - 5);
- sg.latex of random tensor graphs is balanced (braces, \\left/\\right), has no double
  superscript and no bare underscore in an \\operatorname, and has the structure of str(e)
  (as many products ⊙, transposes and reductions);
- str(e) of tensor expressions, hand-picked per op and per precedence pair, read back by a small
  reader of the textbook notation (juxtaposition is the matrix product, ⊙, ^T, diag, sum with
  numpy's axis/keepdims, ``/`` followed by a juxtaposed factor refused as ambiguous) has e's
  value, on small matrices;
- sg.explain of a random scalar function: every printed forward definition, delta formula,
  filled-in value and chain-rule product, read as Python with the labels bound, equals the
  gradient; explain of the lecture's MLPs does not crash and ends at the gradient;
- sg.to_dot has one node per graph node and one edge per operand edge (repeated operands too).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.expr import make
from symgrad.ops.base import REGISTRY
from symgrad.ops.leaves import tex_name
from tests.strategies import dags, point_is_safe, points

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def _op_functions() -> dict:
    """Each op's printed function name -> the op applied to numbers (evaluated by symgrad)."""

    def apply(op):
        return lambda *a: np.float64(sg.evaluate(make(op, tuple(sg.const(float(x)) for x in a)),
                                                 {}))

    return {op.fn or op.name: apply(op) for op in REGISTRY.values() if not op.leaf}


OPS = _op_functions()


def _names(e, vals) -> dict:
    """Name -> value of every named node of ``e`` (names are process-global: a node named in
    another test prints as its name here)."""
    out = {}
    for n in sg.topo_order([e]):
        name = n.name or (n.attrs["alias"] if n.op.name == "alias" else None)
        if name:
            out[name] = sg.evaluate(n, {v: vals[v] for v in sg.variables(n)})
    return out


# ------------------------------------------------------------------ a reader of symgrad's LaTeX
_TEX_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+(?:\.\d*)?|\.\d+)
  | (?P<left>\\left[(|[])  | (?P<right>\\right[)|\]])
  | (?P<indicator>\\mathbb\{1\})
  | (?P<opname>\\operatorname\{(?:[A-Za-z]|\\_)+\})
  | (?P<mathrm>\\mathrm\{[A-Za-z0-9]+\})
  | (?P<newline>\\\\)
  | (?P<cmd>\\[A-Za-z]+)
  | (?P<sym>[{}^_+\-,=>])
  | (?P<letter>[A-Za-z])
""", re.VERBOSE)

_TEX_FUNCS = {r"\exp": "exp", r"\log": "log", r"\tanh": "tanh", r"\sin": "sin", r"\cos": "cos",
              r"\sigma": "sigmoid"}


def _matches(pattern, s: str) -> list:
    """The tokens of ``s`` (matches of ``pattern``'s named groups), white space left out."""
    out, pos = [], 0
    while pos < len(s):
        m = pattern.match(s, pos)
        if m is None:
            raise ValueError(f"cannot read {s[pos:pos + 20]!r} in {s!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append(m)
    return out


def tex_tokens(s: str) -> list[tuple[str, str]]:
    return [(m.lastgroup, m.group()) for m in _matches(_TEX_TOKEN, s)]


class _Descent:
    """The moves both readers make over their tokens (``self.t``, read from ``self.i``)."""

    t: list
    i: int

    def peek(self, k=0):
        return self.t[self.i + k] if self.i + k < len(self.t) else ("eof", "")

    def take(self, text=None):
        kind, tok = self.peek()
        if text is not None and tok != text:
            raise ValueError(f"expected {text!r}, got {tok!r} at token {self.i} of {self.t}")
        self.i += 1
        return kind, tok

    def finished(self, v):
        """``v``, once every token has been read."""
        if self.peek()[0] != "eof":
            raise ValueError(f"left over: {self.t[self.i:]}")
        return v

    def sums(self, operand):
        """``operand (+|- operand)*``, left to right."""
        v = operand()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            w = operand()
            v = v + w if op == "+" else v - w
        return v


class TexReader(_Descent):
    """Recursive descent over symgrad's LaTeX for scalars; names are looked up by their LaTeX
    (``env`` maps tex_name(name) to a value)."""

    def __init__(self, s: str, env: dict):
        self.t, self.i, self.env = tex_tokens(s), 0, env

    def read(self):
        """Lines ``t_{k} = ...`` bound in turn, the last line the value."""
        while True:
            start = self.i
            name = self.name_if_binding()
            if name is None:
                self.i = start
                return self.finished(self.expr())
            self.env[name] = self.expr()
            self.take(r"\\")

    def name_if_binding(self):
        try:
            name = self.atom_name()
        except ValueError:
            return None
        if name is None or self.peek()[1] != "=":
            return None
        self.take("=")
        return name

    def atom_name(self):
        kind, tok = self.peek()
        # \sigma not followed by a parenthesis (the sigmoid's case) is a variable named sigma
        if kind in ("letter", "mathrm") or (kind == "cmd" and (tok == r"\sigma" or tok not in
                                            _TEX_FUNCS) and tok not in
                                            (r"\frac", r"\sqrt", r"\cdot", r"\infty")):
            self.take()
            if self.peek()[1] == "_":
                self.take()
                self.take("{")
                sub = ""
                while self.peek()[1] != "}":
                    sub += self.take()[1]
                self.take("}")
                tok = f"{tok}_{{{sub}}}"
            return tok
        return None

    def expr(self):
        return self.sums(self.term)

    def term(self):
        if self.peek()[1] == "-":  # a sign applies to the whole product: -x y = -(x y)
            self.take()
            return -self.term()
        v = self.power()
        while True:
            kind, tok = self.peek()
            if tok == r"\cdot":
                self.take()
                v = v * self.power()
            elif kind == "num":
                raise ValueError(f"a number juxtaposed after a factor: {tok!r} (ambiguous)")
            elif kind in ("letter", "mathrm", "opname", "left", "cmd"):
                v = v * self.power()
            else:
                return v

    def group(self):
        self.take("{")
        v = self.expr()
        self.take("}")
        return v

    def power(self):
        v = self.atom()
        if self.peek()[1] == "^":
            self.take()
            if self.peek()[1] == "{":
                v = v ** self.group()
            else:
                raise ValueError("an exponent without braces")
            if self.peek()[1] == "^":
                raise ValueError("double superscript")
        return v

    def args(self):
        self.take(r"\left(")
        vals = [self.expr()]
        while self.peek()[1] == ",":
            self.take()
            vals.append(self.expr())
        self.take(r"\right)")
        return vals

    def atom(self):
        kind, tok = self.peek()
        if kind == "num":
            self.take()
            return np.float64(tok)
        if tok == r"\infty":
            self.take()
            return np.float64(np.inf)
        if tok == r"\left(":
            self.take()
            v = self.expr()
            self.take(r"\right)")
            return v
        if tok == r"\left|":
            self.take()
            v = self.expr()
            self.take(r"\right|")
            return abs(v)
        if kind == "indicator":  # \mathbb{1}\left[x > 0\right]: the step function
            self.take()
            self.take(r"\left[")
            v = self.expr()
            self.take(">")
            self.take("0")
            self.take(r"\right]")
            return np.float64(v > 0)
        if tok == r"\frac":
            self.take()
            v = self.group() / self.group()
            if self.peek()[1] == "^":
                raise ValueError("a fraction raised to a power without parentheses")
            return v
        if tok == r"\sqrt":
            self.take()
            return np.sqrt(self.group())
        if kind == "opname" or tok in _TEX_FUNCS:
            self.take()
            name = _TEX_FUNCS.get(tok) or tok[len(r"\operatorname{"):-1].replace(r"\_", "_")
            if self.peek()[1] != r"\left(":  # a variable that prints as a Greek letter
                self.i -= 1
            else:
                return OPS[name](*self.args())
        name = self.atom_name()
        if name is None:
            raise ValueError(f"unexpected {tok!r} at token {self.i}")
        if name not in self.env:
            raise ValueError(f"unknown name {name!r}")
        return np.float64(self.env[name])


def read_tex(s: str, env: dict) -> float:
    with np.errstate(all="ignore"):
        return float(TexReader(s, env).read())


@FAST
@given(st.data())
def test_latex_of_a_scalar_graph_has_its_value(data):
    e = data.draw(dags(tensor=False, value_only=True), label="e")
    vals = data.draw(points(sg.variables(e)), label="point")
    assume(point_is_safe(e, vals))
    s = sg.latex(e)
    note(s)
    env = {tex_name(v.attrs["vname"]): vals[v] for v in sg.variables(e)}
    env.update({tex_name(k): v for k, v in _names(e, vals).items()})
    np.testing.assert_allclose(read_tex(s, env), sg.evaluate(e, vals), rtol=1e-7, atol=1e-9,
                               err_msg=s)


@pytest.mark.parametrize("build", [
    lambda x, y: x * 1e-5 + y, lambda x, y: x ** 1e-5, lambda x, y: 2.5e20 * x * y,
    lambda x, y: (x / y) ** 2, lambda x, y: -1e-7 * x, lambda x, y: x - 1e-7,
    lambda x, y: (x - y) * 1e-3, lambda x, y: 1e-5 ** x, lambda x, y: x * sg.sum(y * y),
    lambda x, y: sg.sum(x) * y, lambda x, y: -(x / y), lambda x, y: (-x) ** 2.0 + (-y) ** 3.0,
    lambda x, y: x ** (-y), lambda x, y: x * (-2.0), lambda x, y: x - (-y),
    lambda x, y: -(x + y), lambda x, y: -(x - y * y), lambda x, y: x - (y - x * x),
    lambda x, y: (x ** y) ** 2.0, lambda x, y: x / (y / x), lambda x, y: x / (y * x),
])
def test_latex_numbers_and_precedence(build):
    x, y = sg.scalars("rx ry")
    e = build(x, y)
    vals = {x: 1.3, y: 0.7}
    s = sg.latex(e)
    env = {tex_name("rx"): 1.3, tex_name("ry"): 0.7}
    np.testing.assert_allclose(read_tex(s, env), sg.evaluate(e, vals), rtol=1e-12, err_msg=s)


def test_latex_powers_of_ten_and_fractions():
    x, y = sg.scalars("rx ry")
    assert sg.latex(x * 1e-5) == "10^{-5} rx".replace("rx", tex_name("rx"))
    assert "e-05" not in sg.latex(x ** 1e-5)
    assert sg.latex((x / y) ** 2).startswith(r"\left(\frac")


# arithmetic trees that stress precedence (random DAGs rarely put a sum right of a minus, a
# quotient in a power, a negative number in a product, ...); no domain restriction: nan reads
# as nan
_PX, _PY = sg.scalars("px py")
_CONSTS = (2.0, 3.0, 0.5, -2.0, -0.5, 1e-5, 2.5e20, -3e-7)
_ARITH = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: a ** b,
    "maximum": sg.maximum,
}
_ARITH1 = {"neg": lambda a: -a, "exp": sg.exp, "tanh": sg.tanh, "square": sg.square,
           "sqrt": lambda a: sg.sqrt(sg.abs(a)), "sigmoid": sg.sigmoid,
           "sum": lambda a: sg.sum(a), "log": lambda a: sg.log(sg.abs(a) + 1.0)}


def _arith_tree(rng, depth: int = 5):
    """A random tree, mostly binary arithmetic, of the given depth at most."""
    if depth == 0 or rng.random() < 0.15:
        if rng.random() < 0.7:
            return (_PX, _PY)[rng.integers(2)]
        return sg.const(_CONSTS[rng.integers(len(_CONSTS))])
    if rng.random() < 0.6:
        name = sorted(_ARITH)[rng.integers(len(_ARITH))]
        return _ARITH[name](_arith_tree(rng, depth - 1), _arith_tree(rng, depth - 1))
    name = sorted(_ARITH1)[rng.integers(len(_ARITH1))]
    return _ARITH1[name](_arith_tree(rng, depth - 1))


@FAST
@given(st.integers(0, 2**32 - 1), st.floats(-2, 2), st.floats(-2, 2))
def test_text_and_latex_of_arithmetic_have_its_value(seed, px, py):
    e = _arith_tree(np.random.default_rng(seed))
    assume(e.op.name != "const")
    vals = {_PX: px, _PY: py}
    used = {v: vals[v] for v in sg.variables(e)}
    with np.errstate(all="ignore"):
        want = float(sg.evaluate(e, used))
    assume(np.isfinite(want) and abs(want) < 1e12)
    text, tex = str(e), sg.latex(e)
    note(text)
    note(tex)
    names = _names(e, used)
    env = dict(OPS, px=np.float64(px), py=np.float64(py), **names)
    with np.errstate(all="ignore"):
        got = float(eval(text, env))  # noqa: S307  (our own printed formula)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9, err_msg=text)
    tenv = {tex_name("px"): px, tex_name("py"): py}
    tenv.update({tex_name(k): v for k, v in names.items()})
    np.testing.assert_allclose(read_tex(tex, tenv), want, rtol=1e-7, atol=1e-9, err_msg=tex)


# ------------------------------------------------------------------ a reader of tensor text
_TXT_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<sym>\*\*|\^T|⊙|[()\[\]+\-*/,=])
""", re.VERBOSE)

_NP = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "sqrt": np.sqrt, "abs": np.abs,
       "sigmoid": lambda a: 1 / (1 + np.exp(-a)), "relu": lambda a: np.maximum(a, 0),
       "diag": lambda v: np.apply_along_axis(np.diag, -1, v) if np.ndim(v) > 1 else np.diag(v),
       "sum": np.sum, "mean": np.mean, "sin": np.sin, "cos": np.cos,
       "softplus": lambda a: np.logaddexp(0, a), "maximum": np.maximum, "minimum": np.minimum,
       "step": lambda a: (np.asarray(a) > 0) * 1.0,
       "diagonal": lambda a: np.diagonal(a, axis1=-2, axis2=-1),
       "outer": lambda a, b: np.asarray(a)[..., :, None] * np.asarray(b)[..., None, :],
       "log_softmax": lambda a, axis=-1: a - np.log(np.exp(a).sum(axis, keepdims=True)),
       "softmax": lambda a, axis=-1: np.exp(a - a.max(axis, keepdims=True)) / np.exp(
           a - a.max(axis, keepdims=True)).sum(axis, keepdims=True),
       "logsumexp": lambda a, axis=None, keepdims=False: np.log(np.exp(a).sum(axis,
                                                                              keepdims=keepdims))}


class TextReader(_Descent):
    """The textbook notation of str(e): juxtaposition is the matrix product (a scalar factor
    scales), vectors are columns, ⊙ binds looser than juxtaposition, ^T and ** tightest;
    elementwise operators broadcast as numpy does; sum(..., axis=, keepdims=) as numpy's.
    A quotient followed by a juxtaposed factor (x/y A) is refused as ambiguous."""

    def __init__(self, s: str, env: dict):
        ms = _matches(_TXT_TOKEN, s)
        self.t, self.i, self.env = [(m.lastgroup, m.group()) for m in ms], 0, env
        self.spaced = [m.start() > 0 and s[m.start() - 1] == " " for m in ms]

    def call(self) -> bool:
        """A name followed by ``(`` with no space between is a function call: ``f(x)``;
        ``x (y + z)`` is a product."""
        return self.peek()[1] == "(" and not self.spaced[self.i]

    def read(self):
        return self.finished(self.add())

    def add(self):
        return self.sums(self.neg)

    def neg(self):
        if self.peek()[1] == "-":
            self.take()
            return -self.neg()
        return self.had()

    def had(self):
        v = self.mul()
        while self.peek()[1] == "⊙":
            self.take()
            v = v * self.mul()
        return v

    def mul(self):
        v, quotient = self.pow(), False
        while True:
            kind, tok = self.peek()
            if tok in ("*", "/"):
                self.take()
                w = self.pow()
                v, quotient = (v * w, quotient) if tok == "*" else (v / w, True)
            elif kind in ("name", "num") or tok == "(":
                if quotient:
                    raise ValueError("a quotient followed by a juxtaposed factor (ambiguous)")
                v = _juxtapose(v, self.pow())
            else:
                return v

    def pow(self):
        v = self.atom()
        while self.peek()[1] in ("**", "^T"):
            if self.take()[1] == "^T":
                v = np.asarray(v)
                v = v.reshape(1, -1) if v.ndim == 1 else v.T
            else:
                v = v ** self.pow()
        return v

    def atom(self):
        kind, tok = self.take()
        if kind == "num":
            v = np.float64(tok)
        elif tok == "(":
            v = self.add()
            self.take(")")
        elif kind == "name" and self.call():
            self.take("(")
            args, kw = [], {}
            while True:
                if self.peek()[0] == "name" and self.t[self.i + 1][1] == "=":
                    key = self.take()[1]
                    self.take("=")
                    val = self.take()[1]
                    kw[key] = {"True": True, "False": False, "None": None}.get(val) if val in (
                        "True", "False", "None") else int(val)
                else:
                    args.append(self.add())
                if self.peek()[1] != ",":
                    break
                self.take(",")
            self.take(")")
            v = _NP[tok](*args, **kw)
        elif kind == "name":
            v = self.env[tok]
        else:
            raise ValueError(f"unexpected {tok!r}")
        while self.peek()[1] == "[":
            self.take("[")
            v = np.asarray(v)[int(self.add())]
            self.take("]")
        return v


def _juxtapose(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 1 and a.ndim != 1 or b.size == 1 and b.ndim != 1:
        return a * b
    col = a.ndim == 1 or b.ndim == 1
    p = (a.reshape(-1, 1) if a.ndim == 1 else a) @ (b.reshape(-1, 1) if b.ndim == 1 else b)
    if p.size == 1:
        return p.reshape(())
    return p.ravel() if col and 1 in p.shape and a.ndim + b.ndim < 4 and (
        a.ndim == 1 or b.ndim == 1) and p.shape[-1] == 1 else p


_A, _B = sg.matrix("rA", (3, 3)), sg.matrix("rB", (3, 3))
_C = sg.matrix("rC", (2, 3))
_V, _W = sg.vector("rv", 3), sg.vector("rw", 3)
_X, _Y = sg.scalars("rx ry")

TENSOR_CASES = {  # (builder, the text expected where a defect was fixed, else None)
    "vector @ power": (lambda: _V @ (_A ** 2.0), "(rA**2)^T rv"),
    "dot of a power": (lambda: (_V ** 2.0) @ _W, "(rv**2)^T rw"),
    "outer of a power": (lambda: sg.outer(_V, _W ** 2.0), "rv (rw**2)^T"),
    "outer of a quotient": (lambda: sg.outer(_V / _W, _W), "(rv/rw) rw^T"),
    "scalar quotient times matrix": (lambda: (_X / _Y) * _A, "(rx/ry) rA"),
    # a negative fraction read -1/3 rw, which is -1/(3 rw)
    "negative fraction times vector": (lambda: sg.const(-1 / 3) * _W, "-(1/3) rw"),
    "negative fraction times product": (lambda: sg.const(-1 / 3) * (_A @ _W), "-(1/3) rA rw"),
    "plus a negative fraction times vector": (lambda: _V + sg.const(-1 / 3) * _W,
                                              "rv - (1/3) rw"),
    "quotient times matrix": (lambda: (_A / _B) @ _A, "(rA/rB) rA"),
    "quotient scaled by columns": (lambda: (_A / _B) * _W, "(rA/rB) diag(rw)"),
    "hadamard of a product": (lambda: _A * (_B @ _A), None),
    "product of a hadamard": (lambda: (_A * _B) @ _A, None),
    "transpose of a sum": (lambda: (_A + _B).T, None),
    "minus a product": (lambda: -(_A @ _B), None),
    "product of a negation": (lambda: (-_A) @ _B, None),
    "sum times matrix": (lambda: sg.sum(_A) * _B, None),
    "matrix times column sums": (lambda: _B @ sg.sum(_A, axis=0), None),
    "keepdims row sums": (lambda: _A - sg.sum(_A, axis=1, keepdims=True),
                          "rA - sum(rA, axis=1, keepdims=True)"),
    "softmax gradient": (lambda: sg.grad(sg.sum(sg.softmax(_A) * _B), _A), None),
    "log-softmax gradient": (lambda: sg.grad(sg.sum(sg.log_softmax(_A, axis=0) * _B), _A),
                             None),
    "rows scaled": (lambda: _A * sg.reshape(_V, (3, 1)), None),
    "row of a product": (lambda: sg.take(_A @ _B, 1), None),
    "scalar times hadamard": (lambda: _X * (_A * _B), None),
    "dot times matrix": (lambda: (_V @ _W) * _A, None),
    "transposed product": (lambda: (_A @ _B).T, None),
    "vector @ matrix": (lambda: _V @ _A, None),
    "power times vector": (lambda: (_A ** 2.0) @ _V, None),
    "square scales matrix": (lambda: _X ** 2.0 * _A, None),
    "mean of columns": (lambda: sg.mean(_C, axis=0), None),
    "exp product": (lambda: sg.exp(_A) @ _B - _A.T @ _B, None),
    "quadratic form gradient": (lambda: sg.grad(_V @ (_A @ _V) / (_W @ _W), _V), None),
    "outer products per row": (lambda: sg.outer(_C, _V), "outer(rC, rv)"),
    "hessian of a quadratic form": (lambda: sg.hessian(sg.sum(sg.tanh(_A @ _V)), _V), None),
    # softmax's default is the last axis: over every entry it printed softmax(A), which reads
    # (and parses) as the softmax of each row
    "softmax over every entry": (lambda: sg.grad(sg.logsumexp(_A), _A), "softmax(rA, axis=None)"),
    "log_softmax of rows": (lambda: sg.log_softmax(_A), "log_softmax(rA, axis=1)"),
}


@pytest.mark.parametrize("case", sorted(TENSOR_CASES))
def test_tensor_text_reads_back_to_its_value(case):
    build, expected = TENSOR_CASES[case]
    e = build()
    rng = np.random.default_rng(0)
    vals = {v: (float(rng.uniform(0.5, 1.5)) if v.ndim == 0 else rng.uniform(-1.5, 1.5, v.shape))
            for v in sg.variables(e)}
    text = str(e)
    if expected is not None:
        assert text == expected
    env = {v.attrs["vname"]: vals[v] for v in vals}
    env.update(_names(e, vals))
    got = np.asarray(TextReader(text, env).read(), dtype=float)
    want = np.asarray(sg.evaluate(e, vals), dtype=float)
    assert got.size == want.size, (text, got.shape, want.shape)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-9, atol=1e-12,
                               err_msg=text)


_UNREADABLE = ("reshape", "broadcast_to", "expand_dims")  # mostly printed as their operand (a
# vector made a row reads v^T, a column spread over columns v 1^T: tested by hand below)


@FAST
@given(st.data())
def test_tensor_text_of_a_random_graph_reads_back(data):
    e = data.draw(dags(tensor=True), label="e")
    vals = data.draw(points(sg.variables(e)), label="point")
    order = sg.topo_order([e])
    assume(not any(n.op.name in _UNREADABLE or n.op.name == "transpose" and n.ndim != 2
                   for n in order))
    assume(point_is_safe(e, vals))
    text = str(e)
    note(text)
    env = {v.attrs["vname"]: vals[v] for v in vals}
    env.update(_names(e, vals))
    with np.errstate(all="ignore"):
        got = np.asarray(TextReader(text, env).read(), dtype=float)
    want = np.asarray(sg.evaluate(e, vals), dtype=float)
    assert got.size == want.size, (text, got.shape, want.shape)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-7, atol=1e-9, err_msg=text)


# ------------------------------------------------------------------ explain
def _explain_reads_back(e, vals):
    ws = sg.variables(e)
    ex = sg.explain(e, ws, show=False)
    grads = dict(zip(ws, sg.evaluate(sg.grad(e, ws), vals)))
    env = dict(OPS, **{v.attrs["vname"]: np.float64(vals[v]) for v in ws}, **_names(e, vals))
    checked = 0
    with np.errstate(all="ignore"):
        for lab, d, _, _ in ex.forward:
            env[lab] = eval(d, env)  # noqa: S307  (our own printed formula)
        for s in ex.steps:
            want = sg.evaluate(s.expr, {v: vals[v] for v in sg.variables(s.expr)})
            for txt in [s.formula] + ([s.value] if s.value else []):
                got = eval(txt, env)  # noqa: S307
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9,
                                           err_msg=f"{s.lhs} = {txt}\n{ex}")
                checked += 1
            env[s.lhs] = want
        for w in ws:  # the last step of each variable is its gradient
            step = [s for s in ex.steps if s.lhs.endswith(f"/d{w.attrs['vname']}")
                    or s.lhs.endswith(f"/d({w.attrs['vname']})")][-1]
            np.testing.assert_allclose(eval(step.value or step.formula, env), grads[w],  # noqa: S307
                                       rtol=1e-6, atol=1e-9, err_msg=str(ex))
        for lhs, _, factors, *_ in ex.chains:
            w = next(v for v in ws if lhs.endswith(v.attrs["vname"]) or
                     lhs.endswith(v.attrs["vname"] + ")"))
            prod = factors.partition("\n")[0]
            np.testing.assert_allclose(eval(prod, env), grads[w], rtol=1e-6, atol=1e-9,  # noqa: S307
                                       err_msg=f"{lhs} = {prod}\n{ex}")
    _balanced(ex.latex)
    return checked


@settings(FAST, max_examples=40)
@given(st.data())
def test_explain_of_a_scalar_function_prints_the_gradient(data):
    e = data.draw(dags(tensor=False, value_only=True), label="e")
    vals = data.draw(points(sg.variables(e)), label="point")
    assume(point_is_safe(e, vals))
    _explain_reads_back(e, vals)


def test_explain_of_a_lecture_chain():
    x, y, u, c, w, b = sg.scalars("ex_x ex_y ex_u ex_c ex_w ex_b")
    phi = sg.sigmoid(u * x + c)
    mu = sg.sigmoid(w * phi + b)
    C = sg.bce(mu, y) + (w - u) ** 2.0 / (b * b + 1.0)
    vals = {x: 0.3, y: 1.0, u: -0.4, c: 0.2, w: 0.7, b: -0.1}
    assert _explain_reads_back(C, vals) >= 6


def test_explain_of_the_lecture_mlps_ends_at_the_gradient():
    from symgrad import lecture

    for m, params in ((lecture.scalar_mlp(), "u c w b"), (lecture.vector_mlp(3, 4), "U c w b")):
        C, ps = m["C"], [m[k] for k in params.split()]
        ex = sg.explain(C, ps, show=False)
        _balanced(ex.latex)
        rng = np.random.default_rng(1)
        vals = {v: (float(rng.uniform(-1, 1)) if v.ndim == 0 else rng.uniform(-1, 1, v.shape))
                for v in sg.variables(C)}
        if m["y"].ndim == 0:
            vals[m["y"]] = 1.0
        grads = sg.evaluate(sg.grad(C, ps), vals)
        last = {s.lhs: s for s in ex.steps}
        for p, g in zip(ps, grads):
            name = p.name or p.attrs["vname"]
            (step,) = [s for lhs, s in last.items() if lhs.endswith(f"/d{name}")]
            got = sg.evaluate(step.expr, {v: vals[v] for v in sg.variables(step.expr)})
            np.testing.assert_allclose(got, g, rtol=1e-9, atol=1e-12, err_msg=str(ex))


# ------------------------------------------------------------------ LaTeX of tensor graphs
def _balanced(s: str) -> None:
    depth = 0
    for i, ch in enumerate(s):
        if ch == "{" and (i == 0 or s[i - 1] != "\\"):
            depth += 1
        elif ch == "}" and (i == 0 or s[i - 1] != "\\"):
            depth -= 1
            assert depth >= 0, s
    assert depth == 0, s
    assert s.count(r"\left") == s.count(r"\right"), s
    assert s.count(r"\begin{") == s.count(r"\end{"), s
    assert not re.search(r"\^\{(?:[^{}]|\{[^{}]*\})*\}\^", s), f"double superscript: {s}"
    assert not re.search(r"\^[A-Za-z0-9]\^", s), f"double superscript: {s}"
    for m in re.finditer(r"\\operatorname\{([^}]*)\}", s):
        assert re.fullmatch(r"(?:[A-Za-z]|\\_)+", m.group(1)), f"bad operator name: {s}"


@FAST
@given(dags(tensor=True))
def test_latex_of_a_tensor_graph_is_balanced_and_has_the_structure_of_its_text(e):
    s, t = sg.latex(e), str(e)
    note(t)
    note(s)
    _balanced(s)
    assert s.count(r"\odot") == t.count("⊙")
    assert s.count("^{T}") == t.count("^T")
    assert s.count("diag") == t.count("diag")
    assert s.count("keepdims") == t.count("keepdims")
    assert s.count(r"\mathrm{axis}") == t.count("axis=")


# ------------------------------------------------------------------ DOT
_DOT_NODE = re.compile(r"^\s*(n\d+) \[label=", re.M)
_DOT_EDGE = re.compile(r"^\s*(n\d+) -> (n\d+) \[", re.M)


@FAST
@given(dags(tensor=True))
def test_dot_has_one_node_per_node_and_one_edge_per_operand(e):
    order = sg.topo_order([e])
    dot = sg.to_dot(e)
    ids = _DOT_NODE.findall(dot)
    assert len(ids) == len(set(ids)) == len(order)
    edges = sorted(_DOT_EDGE.findall(dot))
    # each node's number of incoming edges is its operand count (repeated operands too)
    assert len(edges) == sum(len(n.args) for n in order)
    fan_in = {}
    for _, dst in edges:
        fan_in[dst] = fan_in.get(dst, 0) + 1
    assert sorted(fan_in.values()) == sorted(len(n.args) for n in order if n.args)


def test_dot_of_a_square_has_both_edges():
    x = sg.scalar("dx")
    dot = sg.to_dot(x * x)
    assert len(_DOT_NODE.findall(dot)) == 2
    assert len(_DOT_EDGE.findall(dot)) == 2


def test_the_step_function_is_an_indicator_in_latex_not_a_variable_named_theta():
    theta, x = sg.scalars("theta x")
    assert sg.latex(sg.functions.step(x) * theta) == r"\mathbb{1}\left[x > 0\right] \theta"


def test_a_variable_named_sigma_next_to_the_sigmoid_reads_back():
    # σ(x+y) would read as the sigmoid of x + y: a variable named sigma gets a dot before a
    # parenthesis, and with such a variable in the formula the sigmoid is spelled out.
    # (Names of its own: names are process-global, another test may name sigmoid(x) "mu".)
    sigma, x, y = sg.scalars("sigma sgx sgy")
    X, Y = tex_name("sgx"), tex_name("sgy")
    e = sigma * (x + y) + sg.sigmoid(y)
    s = sg.latex(e)
    assert s == rf"\sigma \cdot \left({X} + {Y}\right) + \operatorname{{sigmoid}}\left({Y}\right)"
    vals = {sigma: 0.3, x: 1.1, y: -0.4}
    env = {r"\sigma": 0.3, X: 1.1, Y: -0.4}
    np.testing.assert_allclose(read_tex(s, env), sg.evaluate(e, vals), rtol=1e-12)
    assert sg.latex(sg.sigmoid(x) * x) == rf"\sigma\left({X}\right) {X}"  # the lecture's letter
    assert "operatorname" in sg.latex(sg.sigmoid(x) * sg.scalar("sigma_2"))
    v = sg.vector("sgv", 3)
    assert sg.latex(sigma * (v + x)) == rf"\sigma \cdot \left({tex_name('sgv')} + {X}\right)"


def test_reshapes_of_vectors_print_as_columns_and_rows():
    A, v, w = sg.matrix("rsA", (3, 4)), sg.vector("rsv", 3), sg.vector("rsw", 4)
    col, row = sg.reshape(v, (3, 1)), sg.reshape(w, (1, 4))
    assert str(col @ row) == "rsv rsw^T"  # an outer product, not "rsv rsw"
    # a column spread along the columns is not the row broadcast A + w
    assert str(A + col) == "rsA + rsv 1^T"
    assert str(A + w) == "rsA + rsw"
    assert str(A - sg.reshape(v + 1.0, (3, 1))) == "rsA - (rsv + 1) 1^T"
    assert sg.latex(A + col) == r"\mathrm{rsA} + \mathrm{rsv} \mathbf{1}^{T}"
    assert str(col * A) == "diag(rsv) rsA"
    assert str(A * row) == "rsA diag(rsw)"  # inside diag the vector, not the row rsw^T
    assert str(A * sg.reshape(w + 1.0, (1, 4))) == "rsA diag(rsw + 1)"


def test_bce_of_vectors_reads_as_a_hadamard_product():
    v, y, s = sg.vector("bcv", 3), sg.vector("bcy", 3), sg.scalar("bcs")
    assert str(sg.bce(v, y)) == "-bcy ⊙ log(bcv) - (1 - bcy) ⊙ log(1 - bcv)"
    assert r"\odot" in sg.latex(sg.bce(v, y))
    assert str(sg.bce(v, s)) == "-bcs*log(bcv) - (1 - bcs)*log(1 - bcv)"  # a scalar y: as before


def test_a_transposed_broadcast_number_is_a_broadcast_and_prints_its_size():
    # transpose(broadcast_to(1, (3, 2))) printed as "1": the gradient below printed sum(1)
    # (its value is 6), and a matrix of twos in a product printed (1 + 1), which reads as 2
    A, x1, w = sg.matrix("tbA", (2, 3)), sg.scalar("tbx"), sg.vector("tbw", 2)
    g = sg.grad(sg.sum((A + x1).T), x1)
    assert str(g) == "6"
    h = sg.grad(sg.sum(A.T @ (sg.reshape(w, (2, 1)) * A)), A)
    assert "1 + 1" not in str(h)
    vals = {A: np.arange(6.0).reshape(2, 3) / 7, w: np.array([0.3, -1.2])}
    r = vals[A].sum(axis=1)
    np.testing.assert_allclose(sg.evaluate(h, vals), 2 * (vals[w] * r)[:, None] * np.ones(3))
    assert str(h) == "diag(tbw) 2 sum(tbA, axis=1) 1^T"
    t = sg.transpose(sg.broadcast_to(2.0, (3, 2)))
    assert t.op.name == "broadcast_to" and t.shape == (2, 3)


def test_any_column_spread_along_columns_prints_v_times_ones_transposed():
    # a column that is not a bare reshape (a scaled one, an (n, 1) matrix) printed as the
    # vector it holds: "cA + 0.5 cv" reads, in numpy, as the row broadcast
    A, x, v, c = sg.matrix("csA", (2, 3)), sg.scalar("csx"), sg.vector("csv", 2), \
        sg.matrix("csc", (2, 1))
    assert str(A + 0.5 * sg.reshape(v, (2, 1))) == "csA + 0.5 csv 1^T"
    assert str(A - sg.reshape(v, (2, 1)) * x) == "csA - csx csv 1^T"
    assert str(A + c) == "csA + csc"  # its declared shape shows the column


def test_a_sum_of_a_broadcast_prints_its_count():
    # a broadcast prints as its operand, so its sum read as the operand's: sum(w) for a value
    # of 2 sum(w), sum(exp(s)) for 12 exp(s)
    w, v = sg.vector("w_sumb", 3), sg.vector("v_sumb", 4)
    s, A = sg.scalar("s_sumb"), sg.matrix("A_sumb", (3, 4))
    vals = {w: np.array([1.0, 2.0, 3.0]), v: np.arange(4.0), s: 0.4, A: np.ones((3, 4))}
    cases = [
        (sg.sum(sg.broadcast_to(w, (2, 3))), "2*sum(w_sumb)", 12.0),
        (sg.sum(sg.broadcast_to(w, (2, 3)), axis=0), "2 w_sumb", [2.0, 4.0, 6.0]),
        (sg.sum(sg.exp(s + A * 0.0)), "12*exp(s_sumb)", 12 * np.exp(0.4)),
        (sg.grad(sg.sum(sg.broadcast_to(v, (3, 4)) ** 2), v), "6 v_sumb", 6 * np.arange(4.0)),
        (sg.hessian(sg.sum(sg.exp(sg.broadcast_to(v, (3, 4)))), v), "diag(3 exp(v_sumb))",
         np.diag(3 * np.exp(np.arange(4.0)))),
    ]
    for e, text, want in cases:
        assert str(e) == text
        used = {k: val for k, val in vals.items() if k in set(sg.variables(e))}
        np.testing.assert_allclose(sg.evaluate(e, used), want)


def test_a_reshape_that_moves_entries_says_so():
    # it printed its operand: reshape(A, (3, 2)) @ B read "A B", a product that does not fit
    A, B = sg.matrix("A_mv", (2, 3)), sg.matrix("B_mv", (2, 2))
    u, v = sg.vector("u_mv", 6), sg.vector("v_mv", 3)
    assert str(A.reshape(3, 2) @ B) == "reshape(A_mv, (3, 2)) B_mv"
    assert sg.latex(A.reshape(3, 2) @ B) == \
        r"\operatorname{reshape}\left(A_{mv}, (3, 2)\right) B_{mv}"
    assert str(sg.sum(u.reshape(2, 3), axis=0)) == "sum(reshape(u_mv, (2, 3)), axis=0)"
    # adding or dropping axes of size 1 moves nothing: the operand, or a row's transpose
    assert str(v.reshape(3, 1)) == "v_mv" and str(v.reshape(1, 3)) == "v_mv^T"
    assert str(sg.reshape(A, (1, 2, 3))) == "A_mv"


def test_columns_and_rows_that_printed_as_vectors():
    M, u = sg.matrix("M_cr", (3, 3)), sg.vector("u_cr", 3)
    # a matrix times a column made of a vector, spread along the columns: "M u + u" read as
    # the vector M u + u, for a (3, 3) value
    assert str(M @ sg.reshape(u, (3, 1)) + u) == "M_cr u_cr 1^T + u_cr"
    # column sums kept as a row: S^T S (an outer product) read as an inner one
    S = sg.sum(M, axis=0, keepdims=True)
    assert str(S.T @ S) == ("sum(M_cr, axis=0, keepdims=True)^T "
                            "sum(M_cr, axis=0, keepdims=True)")
    assert str(sg.sum(u, keepdims=True)) == "sum(u_cr)"  # one entry: it broadcasts as a number


def test_a_name_shows_one_value():
    """Names are global: sigmoid(x) named phi elsewhere and sigmoid(y) named phi here printed
    phi + phi (read: twice one value) for sigmoid(y) + sigmoid(x)."""
    x, y = sg.scalars("x_one y_one")
    earlier = sg.sigmoid(x).named("phi_one")  # an earlier cell, still alive
    C = sg.sigmoid(y).named("phi_one") + sg.sigmoid(x)
    assert sg.sigmoid(x) is earlier  # later constructions return the named node
    assert str(C) in ("phi_one + sigmoid(x_one)", "sigmoid(y_one) + phi_one")
    assert sg.latex(C).count(r"\phi") <= 1
    ex = sg.explain(C, [x, y], name="C_one", show=False)
    assert "phi_one_2" in ex.text
    assert ex.text.count("phi_one   =") + ex.text.count("phi_one =") == 1


def test_softmax_over_every_entry_and_argmax_axes_in_latex():
    A = sg.matrix("A_ax", (2, 3))
    assert str(sg.softmax(A, axis=None)) == "softmax(A_ax, axis=None)"
    assert sg.latex(sg.log_softmax(A, axis=None)).endswith(r"\mathrm{axis}=\mathrm{None}\right)")
    assert str(sg.softmax(sg.vector("v_ax", 3))) == "softmax(v_ax)"
    assert sg.latex(sg.argmax(A, axis=0)) == \
        r"\operatorname{argmax}\left(A_{ax}, \mathrm{axis}=0\right)"
    assert sg.latex(sg.argmax(A)) == r"\operatorname{argmax}\left(A_{ax}\right)"


def test_a_value_named_like_a_variable_prints_its_formula():
    # sigmoid(x) named y, times the variable y, printed y*y
    x, y = sg.scalars("x_nv y_nv")
    s = sg.sigmoid(x).named("y_nv")
    assert str(s * y) == "sigmoid(x_nv)*y_nv"
    assert str(s) == "sigmoid(x_nv)"  # the root prints its formula anyway


def test_the_largest_floats_print():
    # str() of 1.7976931348623157e308 raised OverflowError looking for a small fraction
    assert str(sg.const(1.7976931348623157e308)) == "1.7976931348623157e+308"
    assert str(sg.const(-1e300) * sg.scalar("x_big_p")) == "-1e+300*x_big_p"


def test_a_row_read_as_a_vector_prints_transposed():
    """A (1, k) row reshaped to a vector printed as the row itself: c @ r (built as the outer
    product of c and r as vectors) read "c r^T", and the gradient of sum(exp(c r)) wrt c
    "exp(c r^T) r", which no shapes fit (its value is exp(c r) r^T)."""
    r, c, A = sg.matrix("rr", (1, 3)), sg.matrix("rc", (3, 1)), sg.matrix("rA", (3, 3))
    assert str(c @ r) == "rc rr" and str(c * r) == "rc rr"
    assert sg.latex(c @ r) == r"\mathrm{rc} \mathrm{rr}"
    assert str(sg.matmul(A, sg.reshape(r, (3,)))) == "rA rr^T"
    g = sg.grad(sg.sum(sg.exp(c * r)), c)
    assert str(g) == "exp(rc rr) rr^T"
    assert sg.latex(g) == r"\exp\left(\mathrm{rc} \mathrm{rr}\right) \mathrm{rr}^{T}"
    v, w = sg.vector("rv", 3), sg.vector("rw", 3)
    assert str(sg.outer(v, A @ w)) == "rv (rA rw)^T"
    assert str(sg.outer(v, w).T) == "rw rv^T"


def test_a_leaf_named_like_another_variable_prints_its_own_name_beside_it():
    # x.named("y") + y printed "y + y" (and its LaTeX "y y" for the product): one name, two values
    x, y = sg.scalars("x_al y_al")
    assert str(x.named("y_al") + y) == "x_al + y_al"
    assert sg.latex(x.named("y_al") * y) == sg.latex(x * y)
    assert str(x.named("zeta_al") * 2) == "2*zeta_al"  # alone, the alias is shown


def test_a_constant_times_a_reciprocal_is_a_quotient():
    # the mean's 1/n times 2 printed (2*1/n) v
    v = sg.vector("v_rec", "n")
    x = sg.scalar("x_rec")
    assert str(sg.grad(sg.mean(v * v), v)) == "(2/n) v_rec"
    assert sg.latex(sg.grad(sg.mean(v * v), v)) == r"\frac{2}{n} v_{rec}"
    assert 2 * (1 / x) is 2 / x
    assert sg.evaluate(sg.grad(sg.mean(v * v), v), {v: np.array([1.0, 3.0])}).tolist() == [1, 3]


def test_row_scaling_with_symbolic_sizes_reads_as_diag():
    # the product's sizes were unified to (m, m) while N keeps (n, m): it printed
    # diagonal(N) ⊙ N, which reads as scaling the columns
    N = sg.matrix("N_rs", ("n", "m"))
    assert str(sg.diag(sg.diagonal(N)) @ N) == "diag(diagonal(N_rs)) N_rs"
    c, r = sg.matrix("c_rs", (3, 1)), sg.matrix("r_rs", (1, 4))
    assert str(c * r) == "c_rs r_rs"  # neither operand is the full matrix: no diag


def test_like_terms_and_numbers_read_as_in_a_textbook():
    a = sg.scalar("a_tb")
    v = sg.vector("v_tb", 3)
    # the product rule's terms are collected: u + c u is (1 + c) u, for every shape
    assert str(sg.grad(sg.sum(v * v * v), v)) == "3 (v_tb ⊙ v_tb)"
    assert str(sg.hessian(sg.sum(v * v * v), v)) == "diag(6 v_tb)"
    assert str(sg.grad(a * a * a, a)) == "3*a_tb**2"  # a number inside a product goes first
    assert str(sg.hessian(a * a * a, a)) == "6*a_tb"
    assert sg.latex(a * (0.5 * a)) == "0.5 a_{tb}^{2}"
    # numbers gathered: c1*(c2/z) is (c1 c2)/z, so the gradient of a norm has no 2*0.5
    norm = sg.grad(sg.sqrt(sg.sum(v * v)), v)
    assert str(norm) == "(1/sqrt(sum(v_tb ⊙ v_tb))) v_tb"
    at = np.array([3.0, -4.0, 12.0])
    np.testing.assert_allclose(sg.evaluate(norm, {v: at}), at / 13.0, rtol=1e-15)
    assert str(0.5 / sg.sqrt(a * a + 1.0) * (2.0 * a)) == "a_tb/sqrt(a_tb**2 + 1)"
    # numpy's outer product v[:, None] * w reads v w^T (it read v 1^T diag(w))
    u = sg.vector("u_tb", 2)
    assert str(sg.grad(u @ (sg.matrix("A_tb", (2, 3)) @ v), sg.matrix("A_tb", (2, 3)))) \
        == "u_tb v_tb^T"
    assert str(sg.hessian(sg.sum(v * v) ** 2.0, v)) == \
        "4*sum(v_tb ⊙ v_tb) I + 4 v_tb (2 v_tb)^T"  # the equal terms met (see _absorbed)
    assert sg.latex(sg.grad(u @ (sg.matrix("A_tb", (2, 3)) @ v), sg.matrix("A_tb", (2, 3)))) \
        == "u_{tb} v_{tb}^{T}"
    # a negative number after + or - gives its sign to the operator: x - 4, not x + -4
    poly = 3.0 * a**4.0 - 2.0 * a**2.0 + a
    assert str(sg.grad(poly, a)) == "1 - 4*a_tb + 12*a_tb**3"
    assert str(sg.hessian(poly, a)) == "36*a_tb**2 - 4"
    assert sg.latex(sg.hessian(poly, a)) == "36 a_{tb}^{2} - 4"
    assert str(a - (-2.0 * sg.exp(a))) == "a_tb + 2*exp(a_tb)"
    assert str(v + (-3.0) * sg.exp(v)) == "v_tb - 3 exp(v_tb)"
    assert str(sg.grad(sg.exp(-a * a), a)) == "-2*a_tb*exp(-a_tb**2)"  # -u - u is -(2 u)
    for e in (poly, sg.grad(poly, a), sg.hessian(poly, a), a - (-2.0 * sg.exp(a))):
        got = eval(str(e), {"a_tb": 0.7, "exp": np.exp})  # noqa: S307  (our own text)
        assert got == pytest.approx(sg.evaluate(e, {a: 0.7}), rel=1e-14)
    vals = np.array([0.3, -1.7, 2.5])
    for e, want in [(v + 2.0 * v, 3 * vals), (v - 2.0 * v, -vals), (2.0 * v - v, vals),
                    (0.25 * v + v, 1.25 * vals), (v - 0.5 * v, 0.5 * vals)]:
        assert e is v or (e.op.name in ("mul", "neg") and e.args[-1] is v), str(e)  # no sum
        np.testing.assert_allclose(sg.evaluate(e, {v: vals}), want, rtol=1e-15)
    # a constant that would not be finite is not gathered: v + inf v is nan where v is 0
    assert (v + float("inf") * v).op.name == "add"


def test_least_squares_hessian_has_no_identity_left():
    # (c I) @ A is c A: with numeric sizes the Hessian read 2 I X^T X
    X, w, y = sg.matrix("X_ls", (5, 3)), sg.vector("w_ls", 3), sg.vector("y_ls", 5)
    H = sg.hessian(sg.sum((X @ w - y) ** 2.0), w)
    assert str(H) == "2 X_ls^T X_ls"
    assert str(sg.hessian(sg.mean((X @ w - y) ** 2.0), w)) == "0.4 X_ls^T X_ls"
    xv = np.arange(15.0).reshape(5, 3) / 7
    np.testing.assert_allclose(sg.evaluate(H, {X: xv, w: np.ones(3), y: np.ones(5)}),
                               2 * xv.T @ xv, rtol=1e-14)
    A = sg.matrix("A_ls", (3, 3))
    for e, want in [(sg.matmul(2.0 * sg.eye(3), A), 2 * np.eye(3)),
                    (sg.matmul(A, 3.0 * sg.eye(3)), 3 * np.eye(3))]:
        assert e.op.name == "mul"
        np.testing.assert_allclose(sg.evaluate(e, {A: np.eye(3)}), want)


def test_hessians_wrt_a_broadcast_vector_read_back():
    # a sum over axes of size 1 moves no entries (sum(reshape(2I, (3, 1, 3)), axis=1) is 2I):
    # the Hessian of sum((X - mu)**2) printed 5 sum(2 I, axis=1), which numpy reads as a vector
    X, mu = sg.matrix("X_bh", (5, 3)), sg.vector("mu_bh", 3)
    assert str(sg.hessian(sg.sum((X - mu) ** 2.0), mu)) == "10 I"
    Xs, ms = sg.matrix("Xs_bh", ("m", "n")), sg.vector("ms_bh", "n")
    assert str(sg.hessian(sg.sum((Xs - ms) ** 2.0), ms)) == "2*m I"
    # a tensor reshape that adds a unit axis numpy would not align says so
    H = sg.hessian(sg.sum(sg.exp(X - mu)), mu)
    text = str(H)
    assert "reshape(I, (3, 1, 3))" in text
    xv, mv = np.arange(15.0).reshape(5, 3) / 10, np.array([0.1, -0.2, 0.3])
    env = {"X_bh": xv, "mu_bh": mv, "I": np.eye(3), "exp": np.exp, "reshape": np.reshape,
           "sum": lambda a, axis: np.sum(a, axis=axis)}
    got = eval(text.replace("⊙", "*"), env)  # noqa: S307  (our own text)
    np.testing.assert_allclose(got, sg.evaluate(H, {X: xv, mu: mv}), rtol=1e-14)
    np.testing.assert_allclose(got, np.diag(np.exp(xv - mv).sum(axis=0)), rtol=1e-14)


def test_a_sum_meets_its_like_terms():
    # (p ± q) + t with t like p: the derivative of 3x^2 - 2x read 3*x - 2 + 3*x
    x, y = sg.scalars("x_lt y_lt")
    w = sg.vector("w_lt", 3)
    assert str(sg.grad(3.0 * x * x - 2.0 * x, x)) == "6*x_lt - 2"
    assert str(sg.grad(x * x - 2.0 * x, x)) == "2*x_lt - 2"
    assert str(sg.grad(3.0 * sg.sum(w * w) - 2.0 * sg.sum(w), w)) == "-2 + 6 w_lt"
    assert (y - x) + x is y
    assert str((2.0 * x + 1.0) + x) == "3*x_lt + 1"
    for e, f in [((2.0 * x + 1.0) + x, lambda a, b: 3 * a + 1),
                 (x + (y + x), lambda a, b: b + 2 * a),
                 ((3.0 * x - y) + 3.0 * x, lambda a, b: 6 * a - b)]:
        assert sg.evaluate(e, {x: 0.3, y: -1.7}) == pytest.approx(f(0.3, -1.7), rel=1e-15)


def test_diag_of_a_kept_sum_reads_as_a_vector():
    # np.diag of an (n, 1) keepdims sum is its one-element diagonal: inside diag(...) the sum
    # reads as the vector it is
    X, W = sg.matrix("X_dk", ("n", "d")), sg.matrix("W_dk", ("d", "k"))
    Y = sg.matrix("Y_dk", ("n", "k"))
    g = sg.grad(-sg.sum(Y * sg.log_softmax(X @ W, axis=1)), W)
    assert str(g) == "X_dk^T (diag(sum(Y_dk, axis=1)) softmax(X_dk W_dk, axis=1) - Y_dk)"
    A = sg.matrix("A_dk", (3, 4))
    assert str(sg.sum(A, axis=0, keepdims=True) * A) == "A_dk diag(sum(A_dk, axis=0))"
    assert sg.latex(sg.sum(A, axis=1, keepdims=True) * A) == (
        r"\operatorname{diag}\left(\operatorname{sum}\left(A_{dk}, \mathrm{axis}=1\right)\right)"
        r" A_{dk}")


def test_a_broadcast_row_keeps_its_rows_in_print():
    # a vector spread along the rows printed as the vector: sum(exp(-B), axis=0) read
    # sum(exp(-w), axis=0), a third of its value
    A, w = sg.matrix("A_br", (3, 4)), sg.vector("w_br", 4)
    B = sg.broadcast_to(w, (3, 4))
    e = sg.sum(sg.exp(-B), axis=0)
    assert str(e) == "sum(exp(-broadcast_to(w_br, (3, 4))), axis=0)"
    wv = np.array([0.1, -0.2, 0.3, 0.5])
    env = {"w_br": wv, "exp": np.exp, "broadcast_to": np.broadcast_to,
           "sum": lambda a, axis: np.sum(a, axis=axis)}
    got = eval(str(e), env)  # noqa: S307  (our own text)
    np.testing.assert_allclose(got, sg.evaluate(e, {w: wv}), rtol=1e-15)
    assert str(A + B) == "A_br + w_br"  # numpy's broadcasting reads it right there
    assert str(sg.grad(sg.sum(A @ w), A)) == "1 w_br^T"  # the whole formula: 1 w^T
    assert str(sg.grad(-sg.sum(A @ w), A)) == "1 (-w_br)^T"  # not 1 - w^T
    # a vector broadcast to one row is that row, w^T (its transpose printed s^T for s)
    x, c, M = sg.scalar("x_br"), sg.matrix("c_br", (3, 1)), sg.matrix("M_br", (3, 4))
    assert str(sg.grad(sg.sum((x * c).T @ sg.sum(M, axis=1)), x)) == \
        "sum(sum(M_br, axis=1) ⊙ c_br)"
    v = sg.vector("v_br", 3)
    assert str(sg.broadcast_to(v, (1, 3)) @ c) == "v_br^T c_br"


def test_numbers_in_a_sum_are_gathered():
    # (p ± c1) ± c2 is p ± c: the second derivative of x**z had the exponent z - 1 - 1
    x, z = sg.scalars("x_ng z_ng")
    assert str(sg.hessian(x**z, [x, z])[0][0]) == "z_ng*(z_ng - 1)*x_ng**(z_ng - 2)"
    assert (z + 1.0) - 1.0 is z
    assert str((z - 1.0) + 3.0) == "z_ng + 2"
    assert sg.evaluate((z - 0.25) - 0.5, {z: 2.0}) == 1.25
    big = (z + 1e308) + 1e308  # 2e308 is not a float: not gathered
    assert big.op.name == "add" and sg.evaluate(big, {z: 1.0}) == float("inf")


def test_a_negative_numerator_gives_its_sign_to_the_operator():
    x, a = sg.scalars("x_nn a_nn")
    assert str(x + (-2.0) / a) == "x_nn - 2/a_nn"
    assert str(x - (-2.0) / a) == "x_nn + 2/a_nn"
    assert sg.latex(x + (-2.0) / a) == r"x_{nn} - \frac{2}{a_{nn}}"
    assert sg.latex(x + sg.const(float("-inf"))) == r"x_{nn} - \infty"  # not + -\infty
    for e in (x + (-2.0) / a, x - (-2.0) / a):
        got = eval(str(e), {"x_nn": 0.7, "a_nn": 1.3})  # noqa: S307  (our own text)
        assert got == pytest.approx(sg.evaluate(e, {x: 0.7, a: 1.3}), rel=1e-15)


def test_a_product_reads_with_its_numbers_in_front_and_its_divisors_below_one_line():
    """The quotient rule's graph is 1/(1 + x**2)*cos(x) - 1/(1 + x**2)*sin(x)/(1 + x**2)*2*x;
    it prints as books write it. Display only: the graph is unchanged."""
    x, y = sg.scalar("x_pr"), sg.scalar("y_pr")
    g = sg.grad(sg.sin(x) / (1.0 + x * x), x)
    assert str(g) == "cos(x_pr)/(1 + x_pr**2) - 2*x_pr*sin(x_pr)/(1 + x_pr**2)**2"
    assert sg.latex(g) == (r"\frac{\cos\left(x_{pr}\right)}{1 + x_{pr}^{2}} - \frac{2 x_{pr} "
                           r"\sin\left(x_{pr}\right)}{\left(1 + x_{pr}^{2}\right)^{2}}")
    assert sg.count_nodes(g) == sg.count_nodes(sg.grad(sg.sin(x) / (1.0 + x * x), x))
    # numbers multiplied out in front; a graph that divides by a number keeps the fraction
    assert str(x * (3.0 * x) / 2.0) == "3*x_pr**2/2"
    assert str((x + y) * 2.0) == "2*(x_pr + y_pr)"
    assert str(-x * (y * 4.0)) == "-4*x_pr*y_pr"
    # a negative product after + or - gives its sign to the operator
    assert str(y + x * (y * -2.0)) == "y_pr - 2*x_pr*y_pr"
    assert str(y - x * (y * -2.0)) == "y_pr + 2*x_pr*y_pr"
    assert sg.latex(y + x * (y * -2.0)) == "y_{pr} - 2 x_{pr} y_{pr}"
    # what already reads well keeps the graph's own text
    for e, text in [(x / 2.0, "x_pr/2"), (x * y / 2.0, "x_pr*y_pr/2"), (2.0 / x, "2/x_pr"),
                    (x * 0.5, "0.5*x_pr"), (x * y, "x_pr*y_pr")]:
        assert str(e) == text
    # two minus signs cancel
    assert str(-(sg.const(-1.0) / (x * x + 1.0))) == "1/(x_pr**2 + 1)"
    # like terms of a sum are collected: two nodes of one value, or multiples of one
    assert str(2.0 * x * y + x * (2.0 * y)) == "4*x_pr*y_pr"
    assert sg.latex(2.0 * x * y + x * (2.0 * y)) == "4 x_{pr} y_{pr}"
    assert str(sg.sin(x) - y - y) == "sin(x_pr) - 2*y_pr"
    assert str(x * (3.0 * y) - 1.0 - y * x * 3.0 + 4.0) == "3"
    # a named factor stays its name, and is a factor like any other
    d = (1.0 + x * x).named("d_pr")
    assert str(sg.grad(sg.sin(x) / d, x)) == "cos(x_pr)/d_pr - 2*x_pr*sin(x_pr)/d_pr**2"


def test_gathered_products_read_back_to_their_values():
    """Printed text of derivatives, evaluated by Python, against sg.evaluate (temporaries
    of a long formula included: a factor bound to t1 is not opened up again)."""
    x, y = sg.scalar("x_rb"), sg.scalar("y_rb")
    h = sg.sin(x) / (1.0 + x * x)
    exprs = [sg.grad(h, x), sg.grad(sg.grad(h, x), x), sg.grad(sg.grad(sg.grad(h, x), x), x),
             sg.grad(sg.tanh(x * y) / (y * y + 1.0) * (3.0 * x), y),
             sg.grad(sg.sqrt(x * x + y * y) * x / (2.0 * y), x)]
    ns = {"sin": math.sin, "cos": math.cos, "tanh": math.tanh, "sqrt": math.sqrt}
    for e in exprs:
        lines = str(e).split("\n")
        for vals in ({"x_rb": 0.7, "y_rb": -0.4}, {"x_rb": -1.3, "y_rb": 2.1}):
            env = dict(ns, **vals)
            for ln in lines[:-1]:
                name, _, rhs = ln.partition(" = ")
                env[name] = eval(rhs, env)  # noqa: S307  (our own printed text)
            want = sg.evaluate(e, {v: vals[v.attrs["vname"]] for v in sg.variables(e)})
            assert math.isclose(eval(lines[-1], env), float(want), rel_tol=1e-12)  # noqa: S307
    assert "\n" in str(exprs[2])  # the long one has temporaries


def test_temporaries_take_no_name_of_the_formula_and_numbers_that_overflow_stay_apart():
    x, y = sg.scalar("x_tn"), sg.scalar("y_tn")
    u = sg.tanh(x * y).named("t1")  # a name the temporaries would take
    h = x
    for _ in range(12):
        h = sg.sigmoid(h * y + x)
    text = str(sg.grad(h * u, x))
    assert "\nt1 = " not in "\n" + text and "t2 = " in text
    # multiplied out, 1e308*10 is inf: the numbers keep the graph's own text
    assert "inf" not in str(x * 1e308 * 10.0 / 1e308)


def test_underscores_after_the_first_are_part_of_the_subscript_in_latex():
    # x_long_name printed x_{long_name}: a subscript name with a subscript of its own
    x, y = sg.scalar("x_long_name"), sg.scalar("y_us")
    assert sg.latex(x) == r"x_{long\_name}"
    h = (x + y).named("h_prev_t")
    assert sg.latex(sg.sin(h)) == r"\sin\left(h_{prev\_t}\right)"
    assert sg.latex(h) == r"x_{long\_name} + y_{us}"
    assert tex_name("mu") == r"\mu" and tex_name("x_1") == "x_{1}"
    assert tex_name("mu_1") == r"\mu_{1}" and tex_name("sigma_mu") == r"\sigma_{\mu}"
    assert tex_name("long_name_2") == r"\mathrm{long}_{name\_2}"


def test_leading_and_trailing_underscores_are_written_in_latex():
    # x_ printed x, so x - x_ read as 0; alpha_ as alpha, and _ as nothing at all
    x, x_, a, a_ = sg.scalar("x"), sg.scalar("x_"), sg.scalar("alpha"), sg.scalar("alpha_")
    assert sg.latex(x - x_) == r"x - x\_"
    assert sg.latex(a * a_) in (r"\alpha \alpha\_", r"\alpha\_ \alpha")
    assert sg.latex(sg.scalar("_") ** 2 + 1) == r"\mathrm{\_}^{2} + 1"
    assert tex_name("_x") == r"\mathrm{\_x}" and tex_name("x__") == r"x_{\_}"
    names = ["x", "x_", "_x", "_", "__", "x__", "x_1", "alpha", "alpha_", "mu_1", "mu_1_"]
    assert len({tex_name(n) for n in names}) == len(names)
    # a keyword's Python spelling is its letter: no name can be lambda itself
    assert tex_name("lambda_") == r"\lambda" and tex_name("lambda_1") == r"\lambda_{1}"
    assert tex_name("for_") == r"\mathrm{for}"  # (any keyword: no variable is named for)


def test_the_constant_nan_and_a_variable_named_nan_print_apart_in_latex():
    import math

    q = sg.scalar("q_nan")
    got = sg.latex(sg.scalar("NaN") + sg.const(math.nan) * q)
    assert got == r"\mathrm{NaN} + \text{NaN} q_{nan}"


def test_a_scalar_named_like_a_function_is_not_read_as_a_call():
    # exp (w + b) read as exp applied to w + b, for a scalar named exp times w + b
    w, b, x = sg.vector("w_fc", 3), sg.vector("b_fc", 3), sg.scalar("x_fc")
    vals = {w: np.array([0.3, -1.2, 2.0]), b: np.array([1.0, 0.5, -0.25]), x: 0.7}
    for f in ("exp", "sum", "log", "diag", "sigmoid"):
        s = sg.scalar(f)
        e = s * (w + b)
        assert str(e) == f"{f}*(w_fc + b_fc)"
        assert sg.latex(e) == rf"\mathrm{{{f}}} \cdot \left(w_{{fc}} + b_{{fc}}\right)"
        env = {"w_fc": vals[w], "b_fc": vals[b], f: 1.5}
        got = TextReader(str(e), env).read()
        np.testing.assert_allclose(got, sg.evaluate(e, {**vals, s: 1.5}))
        assert sg.latex(s * (x + 1.0)) == rf"\mathrm{{{f}}} \cdot \left(x_{{fc}} + 1\right)"
        assert str(2.0 * s * (w + b)) == f"2*{f}*(w_fc + b_fc)"
    # other names keep the juxtaposition
    assert str(sg.scalar("abc") * (w + b)) == "abc (w_fc + b_fc)"
    # a function's name before any factor reads as a call (log exp(v) as log(exp(v)))
    assert str(sg.scalar("exp") * w) == "exp*w_fc"
    assert str(sg.scalar("log") * sg.exp(w)) == "log*exp(w_fc)"
    assert str(sg.exp(x) * (w + b)) == "exp(x_fc) (w_fc + b_fc)"


def test_a_scalar_broadcast_to_a_tensor_is_written_out_where_numpy_would_not_rebuild_it():
    # a scalar made a vector printed as the scalar: the gradient of x*sum(v) wrt v read x
    x, y, v = sg.scalar("x_sb"), sg.scalar("y_sb"), sg.vector("v_sb", 3)
    g = sg.grad(x * sg.sum(v), v)
    assert g.shape == (3,) and str(g) == "x_sb 1" and sg.latex(g) == r"x_{sb} \mathbf{1}"
    assert str(sg.grad(sg.sum(v) ** 2, v)) == "2*sum(v_sb) 1"
    assert str(sg.broadcast_to(sg.sum(v), (3,))) == "sum(v_sb) 1"
    assert str(sg.broadcast_to(x, (3, 4))) == "x_sb 1 1^T"  # a matrix: ones times ones^T
    assert sg.latex(sg.broadcast_to(x, (3, 4))) == r"x_{sb} \mathbf{1} \mathbf{1}^{T}"
    assert str(sg.broadcast_to(x, (1, 3))) == "x_sb 1^T"  # a row
    assert str(sg.broadcast_to(x, (3, 1))) == "x_sb 1"  # a column reads as a vector
    assert str(sg.broadcast_to(x, (2, 3, 4))) == "broadcast_to(x_sb, (2, 3, 4))"
    assert str(sg.broadcast_to(sg.const(-1 / 3), (3,))) == "-(1/3) ones((3,))"  # not 1/3 1
    assert str(sg.broadcast_to(sg.const(-1.0), (3,))) == "-ones((3,))"
    assert str(sg.ones((2, 3, 4))) == "ones((2, 3, 4))"
    assert str(sg.broadcast_to(x / y, (3,))) == "(x_sb/y_sb) 1"
    assert str(sg.hessian(sg.sum(v) ** 2, v)) == "2 1 1^T"
    g1 = sg.grad(sg.sum(v), v)  # the vector of ones: 1 alone reads as the number
    assert str(g1) == "ones((3,))" and sg.latex(g1) == r"\mathbf{1}"
    assert str(sg.broadcast_to(1.0, (2, 3))) == "1 1^T"
    assert str(sg.broadcast_to(x * x, (3,)).named("b_sb")) == "x_sb**2 1"  # its definition
    # where numpy's broadcasting rebuilds it, the scalar alone
    assert str(x + v) == "x_sb + v_sb"
    assert str(make(REGISTRY["add"], (sg.broadcast_to(x, (3,)), v))) == "x_sb + v_sb"
    assert str(sg.sin(sg.broadcast_to(x * x, (3,)).named("b_sb")) + v) == "sin(b_sb) + v_sb"
    # under an operation that would not rebuild it, times ones too
    e = sg.exp(sg.broadcast_to(x, (3,)))
    assert e.shape == (3,) and str(e) == "exp(x_sb 1)"
    assert sg.latex(e) == r"\exp\left(x_{sb} \mathbf{1}\right)"
    # through operations that keep its shape, up to one that meets an operand of that shape
    A = sg.matrix("A_sb", (3, 3))
    assert str(A * (1 - sg.step(sg.broadcast_to(x, (3, 3))))) == "A_sb ⊙ (1 - step(x_sb))"
    assert str(-sg.broadcast_to(x, (3,))) == "-x_sb 1"

    # (and a symbolic size as the shapes print elsewhere, not ('n', 4))
    w = sg.vector("w_sb", 4)
    assert str(sg.sum(sg.exp(-sg.broadcast_to(w, ("n", 4))), axis=0)) == \
        "sum(exp(-broadcast_to(w_sb, (n, 4))), axis=0)"


def test_broadcasts_that_would_read_as_another_shape_are_written_out():
    # a tensor given a third axis printed as its operand: the Jacobian of sum(X, axis=1),
    # (3, 3, 4), read reshape(I, (3, 3, 1)); softmax(v, axis=0) of a (2, 3, 4) broadcast
    X, v = sg.matrix("X_b3", (3, 4)), sg.vector("v_b3", 4)
    J = sg.jacobian(sg.sum(X, axis=1), X)
    assert str(J) == "broadcast_to(reshape(I, (3, 3, 1)), (3, 3, 4))"
    assert str(sg.softmax(sg.broadcast_to(v, (2, 3, 4)), axis=0)) == \
        "softmax(broadcast_to(v_b3, (2, 3, 4)), axis=0)"
    # two broadcast scalars meeting: neither rebuilds the other's shape
    x, y, a, c = sg.scalars("x_b3 y_b3 a_b3 c_b3")
    assert str(sg.exp(sg.broadcast_to(x, (3,))) + sg.exp(sg.broadcast_to(y, (3,)))) == \
        "exp(x_b3 1) + exp(y_b3)"  # (the first written out: numpy rebuilds the second)
    J = sg.jacobian(sg.abs(sg.broadcast_to(c - a, (3,))), a)
    assert str(J) == "-(step((c_b3 - a_b3) 1) - step(-(c_b3 - a_b3) 1))"  # it read as a scalar
    # where numpy's broadcasting of what is shown gives the shape, as it stands
    M, mu = sg.matrix("M_b3", (5, 3)), sg.vector("mu_b3", 3)
    assert str(sg.hessian(sg.sum(sg.exp(M - mu)), mu)) == \
        "-sum((-reshape(I, (3, 1, 3))) ⊙ exp(M_b3 - mu_b3), axis=1)"


def test_simplify_keeps_an_outputs_own_name_and_no_other():
    # p and q name one value: simplify(p) came back as q; sympy's form of an output named
    # out became what every later x**2 printed as (3*out for the gradient of x**3)
    u, w, x = sg.scalars("u_kn w_kn x_kn")
    p = (u * w).named("p_kn")
    (u * w).named("q_kn")
    assert sg.simplify(p).name == "p_kn"
    s = sg.simplify(sg.exp(2 * sg.log(x)).named("out_kn"))
    assert s.name == "out_kn" and str(s) == "x_kn**2"
    assert str(sg.grad(x**3, x)) == "3*x_kn**2"
    assert "out_kn" not in str(sg.to_sympy(x**2 + u, keep_names=True))


def test_latex_sizes_with_underscores_and_a_vector_of_zeros():
    # n_a_b in a shape is a double subscript to TeX; sg.zeros((3,)) printed 0 1
    M = sg.matrix("M_us", ("n_a_b", 3))
    assert sg.latex(sg.reshape(M, (3, "n_a_b"))) == \
        r"\operatorname{reshape}\left(M_{us}, (3, n_{a\_b})\right)"
    assert str(sg.zeros((3,))) == "zeros((3,))" and sg.latex(sg.zeros((3,))) == r"\mathbf{0}"


def test_a_spread_vector_keeps_reading_as_a_matrix_through_several_operations():
    # past its first user, the check took the broadcast's own shape for what the text read
    # as: exp(1 v^T) + 1, a (2, 3) matrix, printed exp(v) + 1, a vector
    v, w = sg.vector("v_sv", 3), sg.vector("w_sv", 4)
    s = sg.scalar("s_sv")
    assert str(sg.exp(sg.ones((2, 3)) * v) + 1.0) == "exp(broadcast_to(v_sv, (2, 3))) + 1"
    assert str(sg.logsumexp(sg.exp(sg.broadcast_to(v, (2, 3))) + 1.0, axis=1)) == \
        "logsumexp(exp(broadcast_to(v_sv, (2, 3))) + 1, axis=1)"
    # a column scaling a matrix prints as diag(v): the matrix must read as one
    assert str(sg.broadcast_to(sg.reshape(v, (3, 1)), (3, 4)) *
               sg.exp(sg.broadcast_to(w, (3, 4)))) == \
        "diag(v_sv) exp(broadcast_to(w_sv, (3, 4)))"
    # a scalar spread over a vector, deep inside
    assert str(2.0 * sg.exp(s * sg.ones((3,)))) == "2 exp(s_sv 1)"
    # and where numpy rebuilds it from a larger operand, as it stands
    text = str(sg.hessian(sg.sum(sg.maximum(v, v) ** 2), v))
    assert "I ⊙ step(0)" in text and "zeros" not in text  # (step(zeros((3,))) four times)


def test_a_broadcast_under_a_transpose_reads_its_shape():
    # the transpose of a broadcast counted as printing it spread whatever its axes: a (3, 2, 4)
    # tensor read transpose(u, (2, 0, 1)) of a vector, and a row spread over rows then
    # transposed read v, a vector (inside a sum, a third of the value)
    u, v = sg.vector("u_bt", 3), sg.vector("v_bt", 3)
    assert str(sg.transpose(sg.broadcast_to(u, (2, 4, 3)), (2, 0, 1))) == \
        "transpose(broadcast_to(u_bt, (2, 4, 3)), (2, 0, 1))"
    assert str(sg.transpose(sg.broadcast_to(sg.reshape(v, (1, 3)), (4, 3)))) == "v_bt 1^T"
    C = sg.matrix("C_bt", (3, 4))
    assert str(sg.grad(sg.sum(sg.sum(C.T, axis=0) ** 2), C)) == "2 sum(C_bt^T, axis=0) 1^T"
    x = sg.scalar("x_bt")
    assert str(sg.transpose(sg.broadcast_to(x, (4, 3)))) == "x_bt 1 1^T"


def test_a_one_entry_vector_and_a_column_broadcast_read_their_shapes():
    # broadcast_to of a (1,) vector to (3,) printed as the (1,) operand; a scalar made a
    # (3, 1) column inside a formula printed x 1, a vector: exp(v) + tanh(x 1) reads (3,)
    # where numpy broadcasts the column to (3, 3)
    from symgrad.expr import make
    from symgrad.ops import REGISTRY

    v, w, x = sg.vector("v_oc", 3), sg.vector("w_oc", 2), sg.scalar("x_oc")
    assert str(sg.broadcast_to(sg.reshape(x, (1,)), (3,))) == "x_oc 1"
    col = make(REGISTRY["broadcast_to"], (sg.sum(w),), {"shape": (3, 1)})
    e = sg.exp(v) + sg.tanh(col)
    assert e.shape == (3, 3)
    assert str(e) == "exp(v_oc) + tanh(broadcast_to(sum(w_oc), (3, 1)))"


def test_a_reshape_under_an_axis_operation_and_a_negated_matrix_of_ones():
    # a unit axis added by a reshape printed as its operand, so sum(..., axis=(0, 1)) of a
    # (1, 3, 4) reshape read as a sum over all of a (3, 4) matrix; -(1 1^T) read -1 1^T
    w, T = sg.vector("w_ra", 4), sg.tensor("T_ra", (2, 3, 4))
    e = 2 * sg.sum(sg.reshape(2 * sg.sum(w - T, axis=0), (1, 3, 4)), axis=(0, 1))
    assert str(e) == "2 sum(reshape(2 sum(w_ra - T_ra, axis=0), (1, 3, 4)), axis=(0, 1))"
    assert str(-sg.ones((4, 3))) == "-(1 1^T)"


def test_a_column_given_more_axes_and_a_transpose_of_a_broadcast_written_in_full():
    # the (3, 1) reshape printed as v, so broadcast_to(v, (2, 3, 4)) named an impossible
    # broadcast; B^T of a B printed in full (another use needs it) read B 1^T
    v, u, w = sg.vector("v_cw", 3), sg.vector("u_cw", 3), sg.vector("w_cw", 4)
    assert str(sg.broadcast_to(sg.reshape(v, (3, 1)), (2, 3, 4))) == \
        "broadcast_to(reshape(v_cw, (3, 1)), (2, 3, 4))"
    B = sg.broadcast_to(u, (4, 3))
    assert str(B @ (B.T @ w)) == "broadcast_to(u_cw, (4, 3)) (broadcast_to(u_cw, (4, 3))^T w_cw)"
    assert str(B.T @ w) == "u_cw 1^T w_cw"


def test_numbers_scaling_an_outer_product_meet():
    # the Hessian of (w^T w)^2 printed "2 4 w w^T", which reads as 24 w w^T
    w = sg.vector("w_op", 2)
    H = sg.hessian((w @ w) ** 2, w)
    assert str(H) == "4*w_op^T w_op I + 8 w_op w_op^T"
    assert str(2 * sg.outer(4 * w, w)) == "8 w_op w_op^T"
    assert str(2 * sg.outer(w, 4 * w)) == "w_op (8 w_op)^T"
    assert str(-(-1.5 * sg.outer(w, w))) == "1.5 w_op w_op^T"  # (no double negation)
    at = np.array([1.0, -2.0])
    np.testing.assert_allclose(sg.evaluate(H, {w: at}),
                               4 * (at @ at) * np.eye(2) + 8 * np.outer(at, at))


def test_latex_of_a_tensor_transpose_and_identity_says_axes_and_sizes():
    # LaTeX dropped what the text says: X I + transpose(I X^T) read as a (3, 2) matrix, 2 X
    X = sg.matrix("X_lt", (3, 2))
    J = sg.jacobian(X.T @ X, X)
    assert str(J) == "X_lt I(2, 2) + transpose(I(2, 2) X_lt^T, (0, 1, 3, 2))"
    assert sg.latex(J) == (r"X_{lt} I_{(2, 2)} + \operatorname{transpose}\left(I_{(2, 2)} "
                           r"X_{lt}^{T}, (0, 1, 3, 2)\right)")


def test_latex_of_entrywise_powers_roots_and_quotients_of_matrices():
    # A^{2} of a matrix reads as A A, \sqrt{A} as its matrix root and \frac{1}{A} as its
    # inverse: entrywise, they are the Hadamard forms (the text is numpy's, A**2, and stays)
    A, B = sg.matrix("A_hp", (2, 2)), sg.matrix("B_hp", (2, 2))
    v = sg.vector("v_hp", 2)
    assert sg.latex(A**2) == r"A_{hp}^{\circ 2}" and str(A**2) == "A_hp**2"
    assert sg.latex(sg.sqrt(A)) == r"A_{hp}^{\circ 1/2}"
    assert sg.latex(A / B) == r"A_{hp} \oslash B_{hp}"
    assert sg.latex((A + B) / (A * B)) == \
        r"\left(A_{hp} + B_{hp}\right) \oslash \left(A_{hp} \odot B_{hp}\right)"
    assert sg.latex(A / 2) == r"\frac{A_{hp}}{2}"
    assert sg.latex(v**2) == r"v_{hp}^{2}" and sg.latex(sg.sqrt(v)) == r"\sqrt{v_{hp}}"


def test_a_matrix_gated_by_a_vector_reads_as_a_diagonal_scaling():
    # the Jacobians of relu layers printed (I ⊙ step(A x)) A and A ⊙ step(x): a matrix times a
    # vector, which a reader of column vectors takes as scaling the rows (a probe)
    A, x = sg.matrix("A_gs", ("m", "n")), sg.vector("x_gs", "n")
    J1, J2 = sg.jacobian(sg.relu(A @ x), x), sg.jacobian(A @ sg.relu(x), x)
    assert str(J1) == "diag(step(A_gs x_gs)) A_gs"
    assert str(J2) == "A_gs diag(step(x_gs))"
    assert sg.latex(J2) == \
        r"A_{gs} \operatorname{diag}\left(\mathbb{1}\left[x_{gs} > 0\right]\right)"
    rng = np.random.default_rng(0)
    a, xv = rng.normal(size=(4, 3)), rng.normal(size=3)
    np.testing.assert_allclose(sg.evaluate(J1, {A: a, x: xv}), np.diag(a @ xv > 0) @ a)
    np.testing.assert_allclose(sg.evaluate(J2, {A: a, x: xv}), a @ np.diag(xv > 0))
    # a spread number inside would read as a scalar in diag(): kept as the product
    v = sg.vector("v_gs", 3)
    assert "I ⊙ step(0)" in str(sg.hessian(sg.sum(sg.maximum(v, v) ** 2), v))


def test_numbers_do_not_gather_through_a_named_value():
    # 2*r for r = (3 exp(w)).named("r") printed 6*exp(w), and (w + 1).named("s") + 2 printed
    # w + 3: the names the user gave vanished (a probe of the derivations)
    w = sg.scalar("w_ng")
    r = (3 * sg.exp(w)).named("r_ng")
    assert str(sg.sin(2 * r)) == "sin(2*r_ng)"
    assert str((w + 1).named("s_ng") + 2) == "s_ng + 2"
    assert str((w - 1).named("d_ng") + w) == "d_ng + w_ng"
    assert sg.evaluate(sg.sin(2 * r), {w: 0.1}) == pytest.approx(np.sin(6 * np.exp(0.1)))
    # unnamed, numbers still meet
    assert str(2 * (3 * sg.cos(w))) == "6*cos(w_ng)" and str((w + 5) + 2) == "w_ng + 7"


def test_a_regression_gradient_reads_without_a_double_negation():
    # -(-(1/s**2) X^T (y - X w)), the gradient of -||y - X w||^2 / (2 s^2) (a probe)
    X, w = sg.matrix("X_dn", ("m", "n")), sg.vector("w_dn", "n")
    y, s = sg.vector("y_dn", "m"), sg.scalar("s_dn")
    g = sg.grad(-sg.sum((y - X @ w) ** 2) / (2 * s**2), w)
    assert str(g) == "(1/s_dn**2) X_dn^T (y_dn - X_dn w_dn)"
    rng = np.random.default_rng(1)
    xv, wv, yv = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=4)
    np.testing.assert_allclose(sg.evaluate(g, {X: xv, w: wv, y: yv, s: 0.7}),
                               xv.T @ (yv - xv @ wv) / 0.49)


def test_a_number_never_stands_beside_another_or_in_brackets_of_its_own():
    # -1.337 0.553 C v read as one number beside another; (-4.69)*sum(...) had brackets that
    # -4.69*sum(...) does not need (the differential harness)
    v, Z = sg.vector("v_nb", 2), sg.matrix("Z_nb", (2, 2))
    x, y = sg.scalars("x_nb y_nb")
    e = 1e200 * ((1e200 * Z) @ v)  # (numbers beyond 1e100 are not gathered)
    assert str(e) == "1e+200 (1e+200 Z_nb v_nb)"
    assert str(-4.5 * sg.sin(x * y)) == "-4.5*sin(x_nb*y_nb)"
    assert str(sg.exp(-4.5 * x)) == "exp(-4.5*x_nb)" and str(y - (-4.5 * sg.sin(x))) == \
        "y_nb + 4.5*sin(x_nb)"
    assert str((-2 * x) ** 2) == "(-2*x_nb)**2"
    assert sg.evaluate(sg.parse(str(-4.5 * sg.sin(x * y))), {x: 0.3, y: 2.0}) == \
        pytest.approx(-4.5 * np.sin(0.6))


def test_names_stay_through_negations_and_outer_products_and_latex_is_entrywise():
    # today's rules first rewrote named values away: -r printed (1/s) u and the gradient wrt r
    # was a zero; a named 2 u inside an outer product printed 2 u v^T (a review probe)
    s, u, v = sg.scalar("s_nn"), sg.vector("u_nn", 3), sg.vector("v_nn", 3)
    r = ((-1.0 / s) * u).named("r_nn")
    assert str(-r) == "-r_nn" and str(sg.grad(sg.sum(sg.exp(-r)), r)) == "-exp(-r_nn)"
    q = (-1.0 / s).named("q_nn")
    assert str(-(q * u)) == "-q_nn u_nn"
    p = (2.0 * u).named("p_nn")
    assert str(3 * sg.outer(p, v)) == "3 p_nn v_nn^T"
    nx = (-s).named("nx_nn")
    assert str(2 * nx) == "2*nx_nn"
    X, W = sg.matrix("X_nn", (4, 3)), sg.matrix("W_nn", (3, 2))
    assert r"^{\circ 2}" in sg.latex(sg.grad(sg.sum(sg.tanh(X @ W)), W))
    assert sg.latex(s ** sg.matrix("A_nn", (2, 2))) == r"s_{nn}^{\circ A_{nn}}"


def test_a_bce_of_a_number_label_works_out_one_minus_it():
    # (found by review: printed -0.3*log(p) - (1 - 0.3)*log(1 - p))
    p = sg.scalar("p_bn")
    assert str(sg.bce(p, 0.3)) == "-0.3*log(p_bn) - 0.7*log(1 - p_bn)"
    assert str(sg.bce(p, 1.0)) == "-log(p_bn)" and str(sg.bce(p, 0.0)) == "-log(1 - p_bn)"
    assert str(sg.bce(p, 2.0)) == "-2*log(p_bn) + log(1 - p_bn)"
    assert sg.latex(sg.bce(p, 0.3)) == \
        r"-0.3 \log\left(p_{bn}\right) - 0.7 \log\left(1 - p_{bn}\right)"
    # (review: LaTeX in its own number forms, 1 - 1/3 as 2/3, no 1* for a c that prints 1)
    assert str(sg.bce(p, 1 / 3)) == "-1/3*log(p_bn) - 2/3*log(1 - p_bn)"
    assert sg.latex(sg.bce(p, 1e-20)).startswith(r"-10^{-20} \log")
    assert str(sg.bce(p, 1 - 1e-16)).startswith("-log(p_bn) - ")
    for c in (0.3, 1.0, 0.0, 2.0, 1 / 3):  # the text reads back as the same value
        e = sg.bce(p, c)
        assert abs(sg.evaluate(sg.parse(str(e)), {p: 0.4}) - sg.evaluate(e, {p: 0.4})) < 1e-15


def test_a_gathered_coefficient_is_written_as_a_textbook_does():
    # (mutation testing: 2/3*x for x/3 + x*(1/3) passed)
    x = sg.scalar("x_gc")
    assert str(x / 3.0 + x * (1.0 / 3.0)) == "2*x_gc/3"


def test_a_repeated_subexpression_of_a_long_formula_gets_a_temporary():
    # (mutation testing: binding only values used three times printed a first line of ~190
    # characters, sin(t) + cos(t) of t written out twice)
    x = sg.scalar("x_rt")
    a = x
    for _ in range(7):
        a = sg.sin(a) + sg.cos(a)
    assert str(a) == "\n".join([
        "t1 = sin(x_rt) + cos(x_rt)", "t2 = sin(t1) + cos(t1)", "t3 = sin(t2) + cos(t2)",
        "t4 = sin(t3) + cos(t3)", "t5 = sin(t4)", "t6 = cos(t4)", "t7 = t5 + t6",
        "t8 = sin(t7)", "t9 = cos(t7)", "t10 = t8 + t9", "t11 = sin(t10)", "t12 = cos(t10)",
        "t11 + t12"])


def test_a_shared_number_product_keeps_its_temporary():
    # (mutation testing: 3*z used twice was also written inside x*(3*z), as t68 = 3*x*t66
    # beside t67 = 3*t66)
    x, y = sg.scalars("x_sn y_sn")
    z = x
    for i in range(30):
        z = sg.tanh(z * y + i)
    m = 3 * z
    text = str(x * m + sg.sin(m))
    assert text.endswith("\nt66 = tanh(t65)\nt67 = 3*t66\nt68 = x_sn*t67\nt69 = sin(t67)\n"
                         "t68 + t69")


def test_an_outer_product_reads_v_w_transposed_with_the_vector_on_either_side():
    # (mutation testing: w * v[:, None] spread, the vector first, read v 1^T diag(w))
    v, w = sg.vector("v_op", 3), sg.vector("w_op", 4)
    m = sg.broadcast_to(sg.reshape(v, (3, 1)), (3, 4))
    assert str(m * w) == str(w * m) == "v_op w_op^T"


def test_signs_and_factor_order_of_a_product_as_computed():
    # (mutation testing: one minus sign gathered, x/(-y) as -x/y and -(x/y)*y as -x*y/y; a
    # sum factor put before a function factor; a subtracted sum without its brackets,
    # x - (x*y + 1) printed x - x*y + 1)
    x, y = sg.scalars("x_sf y_sf")
    assert str(x / (-y)) == "x_sf/(-y_sf)"
    assert sg.latex(x / (-y)) == r"\frac{x_{sf}}{-y_{sf}}"
    assert str(-(x / y) * y) == "-x_sf/y_sf*y_sf"
    assert str(x * (3 * (sg.sin(x) * (x + y)))) == "3*x_sf*sin(x_sf)*(x_sf + y_sf)"
    s, s2 = (x + y).named("s_sf"), (x * y + 1).named("s_sf")  # (two values of one name)
    e = sg.exp(s) * ((2 * x - s2) - x)
    assert str(e) == "exp(s_sf)*(x_sf - (x_sf*y_sf + 1))"
    assert sg.latex(e) == \
        r"\exp\left(s_{sf}\right) \left(x_{sf} - \left(x_{sf} y_{sf} + 1\right)\right)"
