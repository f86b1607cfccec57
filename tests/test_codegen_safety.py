"""Generated source holds no user text but validated identifiers; constants travel as objects.

A hypothesis fuzz: hostile variable names, size names and ``.named`` names (builtins, the
generated code's own names, Unicode that Python folds together, soft keywords) and hostile
constant values (NaN, infinities, subnormals, arrays); the generated source is parsed and
every name, string and number in it is checked, and the compiled values are checked too.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import symgrad as sg

HOSTILE = ["print", "len", "float", "getattr", "exec", "eval", "open", "__import__", "_xp",
           "_m", "_rt", "_c0", "_c1", "_t0", "_s", "_e", "_d_n", "_in0", "_diagnose", "_build",
           "compiled", "_compiled_array", "_float", "_asarray", "_fail", "match", "case",
           "type", "_", "__class__", "self", "np", "math", "sg", "ℌ", "H", "ﬁ", "fi", "𝐱", "x",
           "Ω", "Ω", "a" * 80, "T", "sum", "max", "abs", "None_", "dx0", "_dx0", "e"]
_GENERATED = re.compile(r"^_(xp|m|rt|max|min|abs|float|asarray|bad_input|bad_size|PerSample"
                        r"|fail|diagnose|c\d+|t\d+|s|e|z|d_[A-Za-z0-9_]+|dx\d+|in\d+|build|"
                        r"compiled_array|compiled_plain|compiled_numpy|lazy|uniform|ip|NONARRAY|scalar_in|ndarray|FINE|f64"
                        r"|array_in|scalar_array_in|isinstance)$"
                        r"|^compiled$")
# float literals the ops themselves write (sigmoid's 1.0 / (1.0 + exp(-x)), 1 - s, ...)
_OP_FLOATS = {0.0, 0.5, 1.0, 2.0}
_BUILTINS_USED = {"getattr", "hasattr", "len", "float", "TypeError", "ValueError",
                  "ArithmeticError"}

identifiers = st.one_of(
    st.sampled_from(HOSTILE),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
    st.text(min_size=1, max_size=6).filter(str.isidentifier),
).filter(lambda s: not keyword.iskeyword(s))

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -0.0, 5e-324, 1.7976931348623157e308,
                     0.1 + 0.2]),
)


def _check_source(src: str, user_names: set[str], consts: list) -> None:
    tree = ast.parse(src)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            ident = node.id
        elif isinstance(node, ast.arg):
            ident = node.arg
        elif isinstance(node, ast.FunctionDef):
            ident = node.name
        elif isinstance(node, ast.Constant):
            c = node.value
            if isinstance(c, str):  # messages: identifiers, sizes and shape punctuation only
                toks = [t for t in re.split(r"[\s(),:{}]+", c) if t]
                assert all(t.isidentifier() or t.isdigit() for t in toks), c
            elif isinstance(c, float):
                assert c in _OP_FLOATS, c
            else:
                assert c is None or isinstance(c, (int, bool)), c
            continue
        else:
            continue
        if _GENERATED.match(ident) or ident in _BUILTINS_USED:
            continue
        # a user's name in code: only a plain ASCII identifier that shadows nothing
        assert ident in user_names, ident
        assert ident.isascii() and not hasattr(builtins, ident) and not ident.startswith("_")
    for c in consts:
        r = repr(c)
        if isinstance(c, float) and c not in _OP_FLOATS and r not in ("0.0", "-0.0"):
            assert r not in src, r


@given(names=st.lists(identifiers, min_size=1, max_size=5, unique=True),
       consts=st.lists(values, min_size=1, max_size=4),
       size_name=identifiers, alias=identifiers,
       arr=hnp.arrays(np.float64, (3,), elements=st.floats(-1e6, 1e6)))
def test_hostile_names_and_values(names, consts, size_name, alias, arr):
    xs = [sg.scalar(n) for n in names]
    u = sg.vector("u_vec", size_name)
    terms = sg.const(0.25)
    for i, (x, c) in enumerate(zip(xs, consts * len(xs))):
        terms = terms + sg.tanh(x * float(i + 1)) * c
    t = terms.named(alias)
    f = t * sg.sum(u * u) + sg.sum(sg.const(arr))
    ins = xs + [u]
    fn = sg.compile([f, sg.grad(f, xs[0])], ins)
    src = fn.source
    note(src)
    _check_source(src, set(names) | {"u_vec"}, list(consts) + [float(a) for a in arr])
    # and the values are right
    pts = [0.1 * (i + 1) for i in range(len(xs))]
    uv = np.array([1.0, -2.0])
    with np.errstate(all="ignore"):  # hostile values may overflow: that is their value
        got, gx = fn(*pts, uv)
        tv = 0.25
        for i, (p, c) in enumerate(zip(pts, consts * len(xs))):
            tv = tv + np.tanh(p * (i + 1)) * c
        want = tv * np.sum(uv * uv) + np.sum(arr)
        want_g = (1 - np.tanh(pts[0]) ** 2) * consts[0] * np.sum(uv * uv)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    if np.isfinite(want):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)
    if np.isfinite(want_g):
        np.testing.assert_allclose(gx, want_g, rtol=1e-12, atol=1e-300)


def test_names_that_python_folds_together_stay_apart():
    # "ℌ" and "H" are one identifier to Python (NFKC) but two symgrad variables
    a, b = sg.scalar("ℌ"), sg.scalar("H")
    fn = sg.compile(a - 2.0 * b, [a, b])
    assert fn(1.0, 3.0) == -5.0
    p, q = sg.vector("p", "ℌ"), sg.vector("q", "H")  # two size names, two sizes
    g = sg.compile(sg.sum(p) + sg.sum(q), [p, q])
    assert g(np.ones(2), np.ones(3)) == 5.0
    with pytest.raises(sg.ShapeError, match="mul"):
        sg.compile(sg.sum(p * q), [p, q])(np.ones(2), np.ones(3))


@pytest.mark.parametrize("bad", ["x); import os; (", "a.b", "a[0]", "1x", "x y", "", "for",
                                 "__import__('os')", "x\ny", "λ+1"])
def test_names_that_are_not_identifiers_are_refused(bad):
    for make in (sg.scalar, lambda n: sg.vector("v", n), lambda n: sg.scalar("z").named(n)):
        with pytest.raises(ValueError, match="not a valid (Python identifier|name)"):
            make(bad)  # (a keyword says it is one)


def test_builtin_names_do_not_break_the_scalar_fast_path():
    # relu' is float(x > 0) in the math path; a variable called "float" must not shadow it
    fl, ln = sg.scalar("float"), sg.scalar("len")
    fn = sg.compile(sg.grad(sg.relu(fl * ln), fl), [fl, ln])
    assert fn(2.0, 3.0) == 3.0 and fn(-2.0, 3.0) == 0.0


_TOKENS = st.sampled_from(list("xyAv0123456789.+-*/()@,[]_ eT'\"=:;") + [
    "exp(", "log(", "sum(", "**", "__", "import", "os", ".T", "1e309", "nan", "lambda",
    "__import__('os')", "().__class__", "open(", "eval("])


@given(st.one_of(st.text(max_size=30), st.lists(_TOKENS, max_size=15).map("".join)))
def test_parse_takes_hostile_text(text):
    """sg.parse, the other place that reads user text: an expression or a ValueError
    (ParseError), never another exception and never code that runs."""
    names = {"A": sg.matrix("A", (2, 3)), "v": sg.vector("v", 3)}
    try:
        e = sg.parse(text, names)
    except ValueError:
        return
    assert isinstance(e, sg.Expr)


def test_operands_keep_their_parentheses_in_the_generated_code():
    """a / (b c), a - (b + c), 3 softplus(x) (a math form of several terms): mutation testing
    found only the random-graph tests noticed parentheses dropped at equal precedence."""
    a, b, c = sg.scalars("a_pp b_pp c_pp")
    x, y, u = sg.vector("x_pp", 3), sg.vector("y_pp", 3), sg.vector("u_pp", 3)
    vals = (1.0, 2.0, 4.0)
    assert sg.compile(a / (b * c), [a, b, c])(*vals) == 0.125
    assert sg.compile(a - (b + c), [a, b, c])(*vals) == -5.0
    assert sg.compile(a - (b - c), [a, b, c])(*vals) == 3.0
    assert sg.compile(a / (b / c), [a, b, c])(*vals) == 2.0
    np.testing.assert_allclose(sg.compile(3.0 * sg.softplus(a), [a])(1.0), 3 * np.log1p(np.e))
    xv, yv, uv = np.ones(3), np.full(3, 2.0), np.full(3, 4.0)
    np.testing.assert_array_equal(sg.compile(x - (y + u), [x, y, u])(xv, yv, uv), -5.0)
    np.testing.assert_array_equal(sg.compile(x / (y * u), [x, y, u])(xv, yv, uv), 0.125)
    np.testing.assert_allclose(sg.compile(3.0 * sg.softplus(x), [x])(xv), 3 * np.log1p(np.e))
