"""The safe expression parser: what it builds, and everything it refuses without executing."""

from __future__ import annotations

import ast
import builtins

import numpy as np
import pytest
import sympy

import symgrad as sg
from symgrad.parse import MAX_BRACKETS, MAX_CHARS, MAX_DEPTH, ParseError, names_in, parse

pa, pb, pc = sg.scalars("pa pb pc")


def test_builds_the_same_nodes_as_python():
    # hash-consing: the parser's result is the very node the Python operators build
    assert parse("sigmoid(pa*pb + pc)") is sg.sigmoid(pa * pb + pc)
    assert parse("pa**2*pb + exp(pa*pb)") is pa**2 * pb + sg.exp(pa * pb)
    assert parse("-pa / (pb - pc)") is -pa / (pb - pc)
    assert parse("+pa") is pa
    assert parse("  pa + 1  ") is pa + 1
    assert parse("bce(sigmoid(pa), pb)") is sg.bce(sg.sigmoid(pa), pb)
    assert parse("maximum(pa, pb) + pow(pa, 3)") is sg.maximum(pa, pb) + pa**3
    assert parse("step(pa) - floor(pb)") is sg.step(pa) - sg.floor(pb)


def test_printed_derivatives_of_scalars_read_back():
    # relu's and abs's derivatives print with step(...), which the parser did not know
    for f in (sg.relu(pa) * pb, sg.abs(pa) * pa, sg.maximum(pa, pa * pb)):
        g = sg.grad(f, pa)
        back = parse(str(g))
        vals = {pa: -0.7, pb: 1.3}
        assert sg.evaluate(back, vals) == sg.evaluate(g, vals)
        assert sg.evaluate(back, {pa: 0.4, pb: 1.3}) == sg.evaluate(g, {pa: 0.4, pb: 1.3})


def test_declared_tensors_operators_and_axes():
    X = sg.matrix("PX", ("m", "n"))
    v = sg.vector("pv", "n")
    env = {"PX": X, "pv": v}
    assert parse("PX @ pv", env) is X @ v
    assert parse("PX.T", env) is X.T
    assert parse("sum(PX, axis=0)", env) is sg.sum(X, axis=0)
    assert parse("sum(PX, 1)", env) is sg.sum(X, axis=1)
    assert parse("sum(PX, axis=(0, 1))", env) is sg.sum(X, axis=(0, 1))
    assert parse("softmax(PX, axis=-1)", env) is sg.softmax(X, axis=-1)
    assert parse("logsumexp(PX @ pv)", env) is sg.logsumexp(X @ v)
    assert parse("dot(pv, pv) + sum(outer(pv, pv))", env) is \
        sg.dot(v, v) + sg.sum(sg.outer(v, v))


def test_undeclared_names_are_scalars():
    e = parse("pq*pr")
    assert [x.shape for x in sg.variables(e)] == [(), ()]
    assert sorted(x.attrs["vname"] for x in sg.variables(e)) == ["pq", "pr"]


def test_assignments_name_intermediate_values():
    e = parse("ph1 = sigmoid(pa*pb); ph2 = ph1*pc; ph2 + ph1")
    assert str(e) == "ph2 + ph1"
    assert sg.evaluate(e, {pa: 0.3, pb: 2.0, pc: 1.5}) == pytest.approx(
        (1 + 1.5) / (1 + np.exp(-0.6)))
    # the last part may itself be an assignment: the result carries that name
    f = parse("pf = pa*pb + 1")
    assert f.name == "pf"



def test_printed_temporaries_name_only_the_parsed_nodes():
    # str(e) binds shared parts to t1, t2, ...; parsing that text back named tanh(x*y) t1 for
    # every later construction, so an unrelated tanh(x*y) + 1 printed as "t1 + 1"
    x, y = sg.scalars("ptx pty")
    h = sg.tanh(x * y)
    for _ in range(4):
        h = sg.tanh(h * h + h * y)
    g = sg.grad(h, x)
    text = str(g)
    assert "t1 = tanh(ptx*pty)" in text
    back = parse(text)
    at = {x: 0.3, y: 0.7}
    assert sg.evaluate(back, at) == pytest.approx(sg.evaluate(g, at), rel=1e-6)  # (rounded text)
    later = sg.tanh(x * y) + 1
    assert str(later) == "tanh(ptx*pty) + 1"
    assert sg.evaluate(parse(str(later)), at) == pytest.approx(np.tanh(0.21) + 1)
    # other names still name the value for later constructions (derivatives read mu - y)
    mu = parse("pmu = sigmoid(pz)")
    assert str(sg.sigmoid(sg.scalar("pz")) + 1) == "pmu + 1"
    del mu


HOSTILE = [
    "__import__('os').system('echo pwned')",
    "pa.__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "pa.T.__dict__",
    "lambda: 1",
    "(lambda: 1)()",
    "[i for i in pa]",
    "{i: i for i in pa}",
    "(i for i in pa)",
    "{pa, pb}",
    "[pa, pb]",
    "pa if pb else pc",
    "pa[0]",
    "pa[0:1]",
    "f'{pa}'",
    "'text'",
    "b'bytes'",
    "None",
    "True",
    "1j",
    "...",
    "(pa := 1)",
    "pa < pb",
    "pa and pb",
    "not pa",
    "~pa",
    "pa // pb",
    "pa % pb",
    "pa << 1",
    "pa | pb",
    "open('/etc/passwd')",
    "eval('1')",
    "exec('1')",
    "getattr(pa, 'T')",
    "import os",
    "pa; import os",
    "del pa",
    "pa += 1",
    "pa = pb = 1",
    "x.y = 1",
    "def f(): pass",
    "exp(*[pa])",
    "exp(pa, **{})",
    "sum(pa, axis=__import__('os'))",
    "sum(pa, axis=pb)",
    "exp(pa, axis=0)",
    "exp = 1",
    "_secret + 1",
    "__builtins__",
    "exp",
    "pa\x00",
    "await pa",
    "pa(1)",
]


def _forbid_execution(monkeypatch):
    """eval/exec/sympify raise; compile may only build syntax trees (what ast.parse does)."""
    real_compile = builtins.compile

    def forbidden(*a, **k):
        raise AssertionError("the parser must never execute or sympify text")

    def ast_only(source, filename, mode, flags=0, *a, **k):
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("the parser must never compile text to code")
        return real_compile(source, filename, mode, flags, *a, **k)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", ast_only)
    monkeypatch.setattr(sympy, "sympify", forbidden)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_refused_with_a_position(text, monkeypatch):
    _forbid_execution(monkeypatch)
    with pytest.raises(ParseError) as info:
        parse(text)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(("column ", "line "))
    assert 1 <= info.value.col <= len(text) + 1


def test_valid_text_never_calls_eval_exec_or_sympify(monkeypatch):
    _forbid_execution(monkeypatch)
    e = parse("pg = tanh(pa*pb + pc); pg**2 + log(1 + exp(-pa))")
    assert e.shape == ()


@pytest.mark.parametrize("text, col, words", [
    ("pa + @", 6, "syntax error"),
    ("   pa + @", 9, "syntax error"),
    ("pa + foo(pb)", 6, "unknown function 'foo'"),
    ("pa + pb.__class__", 8, "attribute access"),
    ("exp(pa, pb)", 1, "exp takes 1 operand"),
    ("pa // pb", 1, "operator //"),
    ("pa + 1e999", 6, "number too large"),
    ("pa * 10**400", 6, "number too large"),  # (Python: int too large to convert to float)
    ("(pa * 10**400) / 10**400", 7, "number too large"),  # gave nan
    ("pa + 10**10**10", 6, "number too large"),  # (refused, not computed)
    ("10**400", 1, "number too large"),  # (the whole formula: parse returned None)
    ("pq = 10**400; pq", 6, "number too large"),
    # more digits than Python converts (4,300): its own message, at column 1, had leaked
    ("pa*" + "9" * 5000, 4, "number too large"),
    ("  pa + " + "1" * 4500, 8, "number too large"),
    # the integer that is too long, not a long decimal or name before it, and with underscores
    ("pa + 0." + "3" * 4500 + " + " + "1" * 4500, 4511, "number too large"),
    ("pa" + "1" * 4100 + " + " + "2" * 4500, 4106, "number too large"),
    ("pa + " + "_".join(["1" * 100] * 48), 6, "number too large"),
])
def test_error_points_at_the_position(text, col, words):
    with pytest.raises(ParseError) as info:
        parse(text)
    assert info.value.col == col
    assert words in str(info.value)
    assert str(info.value).startswith(f"column {col}: ")


def test_arithmetic_on_integers_is_python_s():
    """Found by review: 10**400 / 10**399 * x overflowed to inf / inf, a silent nan; Python
    computes integers exactly (and / of two of them correctly rounded)."""
    x = sg.scalar("pa")
    for text, want in [("10**400 / 10**399 * pa", 20.0), ("2**-3 * pa", 0.25),
                       ("(2**1023 * 2 - 2**1024 + 3) * pa", 6.0), ("-2**2 * pa", -8.0),
                       ("(-2)**3 + pa", -6.0), ("3/2 * pa", 3.0), ("pa**2**2", 16.0),
                       ("(10**400 - 10**400 + 1) / 3 * pa", 2 / 3)]:
        assert sg.evaluate(parse(text), {x: 2.0}) == want, text
    with np.errstate(divide="ignore"):  # 1/0 and 0**-1 stay numpy's inf
        assert sg.evaluate(parse("1/0 + pa"), {x: 2.0}) == np.inf
        assert sg.evaluate(parse("pa + 0**-1"), {x: 2.0}) == np.inf

    # products of large integers are refused before they are computed (900 factors of 63,000
    # bits took 341 s)
    with pytest.raises(ParseError, match="number too large"):
        parse("*".join(["(9**20000)"] * 900) + "*pa")


def test_shape_errors_name_the_position_and_shapes():
    env = {"pv3": sg.vector("pv3", 3), "pv4": sg.vector("pv4", 4)}
    with pytest.raises(ParseError) as info:
        parse("1 + pv3 @ pv4", env)
    assert info.value.col == 5
    assert "(3,)" in str(info.value) and "(4,)" in str(info.value)
    assert isinstance(info.value.__cause__, sg.ShapeError)


def test_too_long_and_too_deep():
    with pytest.raises(ParseError, match="too long"):
        parse("pa+" * (MAX_CHARS // 3 + 1) + "pa")
    with pytest.raises(ParseError, match="nested too deeply"):
        parse("(" * 300 + "pa" + ")" * 300)
    with pytest.raises(ParseError, match="nested too deeply"):
        parse("-" * (MAX_DEPTH + 10) + "pa")
    with pytest.raises(ParseError, match="nested too deeply"):
        parse("+".join(["pa"] * 3000))  # within the length limit, deeper than Python allows
    # long but shallow enough is fine
    e = parse("+".join(["pa"] * 300))
    assert sg.evaluate(e, {pa: 2.0}) == 600.0


def test_reassignment_and_empty_text():
    with pytest.raises(ParseError, match="already assigned"):
        parse("pz = pa; pz = pb")
    with pytest.raises(ParseError, match="already a variable"):
        parse("pv = pa", {"pv": sg.vector("pv", 2)})
    with pytest.raises(ParseError, match="empty"):
        parse("   ")
    with pytest.raises(ParseError, match="only the last part"):
        parse("pa; pb")
    with pytest.raises(TypeError):
        parse(3)  # type: ignore[arg-type]


def test_multi_line_positions():
    with pytest.raises(ParseError) as info:
        parse("pm = pa + 1\npm + foo(pb)")
    assert (info.value.line, info.value.col) == (2, 6)
    assert str(info.value).startswith("line 2, column 6: ")


@pytest.mark.parametrize("text, match", [
    ("sum(Xp, axis=0, axis=1)", r"column 22: sum: axis given twice"),  # the second was ignored
    ("xs = xs + 1; xs*xs", r"'xs' is used in its own definition"),
    ("\n\nxs +* ys", r"line 3, column 5: syntax error"),  # lines counted in the stripped text
    ("\n\na = xs\nb = foo(a)\nb", r"line 4, column 5: unknown function 'foo'"),
    ("  \n  xs + foo(ys)", r"line 2, column 8: unknown function 'foo'"),
])
def test_texts_that_read_otherwise_are_refused_where_they_are(text, match):
    with pytest.raises(sg.ParseError, match=match):
        sg.parse(text, {"Xp": sg.matrix("Xp", (2, 3))})


def test_the_nesting_limits_are_the_ones_documented():
    # the docstring said 500 levels, but brackets and calls stop at Python's parser's 200
    doc = " ".join(parse.__doc__.split())
    assert f"nest at most {MAX_BRACKETS} deep" in doc and f"at most {MAX_DEPTH} levels" in doc
    assert sg.evaluate(parse("(" * MAX_BRACKETS + "pa" + ")" * MAX_BRACKETS), {pa: 2.0}) == 2.0
    parse("exp(" * MAX_BRACKETS + "pa" + ")" * MAX_BRACKETS)
    parse("-" * MAX_DEPTH + "pa")
    for text in ("(" * (MAX_BRACKETS + 1) + "pa" + ")" * (MAX_BRACKETS + 1),
                 "exp(" * (MAX_BRACKETS + 1) + "pa" + ")" * (MAX_BRACKETS + 1)):
        with pytest.raises(ParseError, match=f"nested too deeply .*at most {MAX_BRACKETS} "
                           "brackets"):
            parse(text)


def test_a_long_flat_sum_is_not_nested():
    """Python's grammar nests x0 + x1 + ... to the left, and 502 terms were refused as
    'nested too deeply (more than 500 levels)', far under the length limit."""
    n = 1500  # (8,390 characters)
    names = [f"x{i}" for i in range(n)]
    f = sg.parse("+".join(names), {})
    xs = [sg.scalar(nm) for nm in names]
    assert sg.evaluate(f, {x: float(i) for i, x in enumerate(xs)}) == sum(range(n))
    g = sg.parse(" - ".join(names[:600]) + " * 2", {})  # mixed operators chain as well
    assert sg.evaluate(sg.grad(g, xs[599]), {x: 1.0 for x in xs[:600]}) == -2.0
    with pytest.raises(sg.ParseError, match="nested too deeply"):
        sg.parse("x" + "**x" * 600, {})  # nesting to the right still counts


def test_a_negative_axis_counts_from_the_end():
    # (mutation testing: the sign dropped passed; -1 of a matrix reads the same either way)
    X = sg.matrix("pX", (2, 3))
    assert parse("sum(pX, -2)", {"pX": X}).shape == (3,)
    assert parse("sum(pX, axis=-1)", {"pX": X}).shape == (2,)
    assert parse("softmax(pX, -2)", {"pX": X}) is sg.softmax(X, axis=0)


def test_the_integer_size_limit_is_exactly_65536_bits():
    """Found by mutation testing: the limit raised to 2**20 bits, or > read as >=, passed. A
    power of exactly 65,536 bits is computed (and may come back to a float); one bit more is
    refused, not computed."""
    assert str(parse("2**65536 / 2**65535 * pa")) == "2*pa"
    with pytest.raises(ParseError, match=r"^column 1: number too large"):
        parse("2**65537 / 2**65536 * pa")


def test_a_product_over_the_limit_is_refused_at_once():
    """Found by mutation testing: without the product's own check, two 60,000-bit factors were
    multiplied (and 900 of them took 310 s); the product is refused before it is computed, even
    where dividing would bring it back to 2."""
    with pytest.raises(ParseError, match="number too large"):
        parse("(2**60000 * 2**60000) / (2**60000 * 2**59999) * pa")
    # the same limit as a power's (a review: 2**65536 was accepted, 2**32768 * 2**32768 not)
    assert str(parse("2**32768 * 2**32768 / 2**65535 * pa")) == "2*pa"
    with pytest.raises(ParseError, match="number too large"):
        parse("2**32768 * 2**32769 / 2**65535 * pa")


def test_powers_of_zero_and_to_the_zero_are_integers():
    """Found by mutation testing: 0**5 took log2(0) (a math domain error) in the size check,
    and 3**0 as a float lost the exact arithmetic that brings 10**400 / 10**399 back."""
    assert str(parse("0**5 * pa")) == "0"
    assert parse("0**5 + pa") is pa
    assert str(parse("3**0 * 10**400 / 10**399 * pa")) == "10*pa"


def test_unary_plus_on_an_integer_keeps_its_sign():
    # found by mutation testing: +3 read as -3 (the integer path negated every unary operator)
    assert str(parse("(+3) * pa")) == "3*pa"
    assert str(parse("pa - +1")) == "pa - 1"
    assert sg.evaluate(parse("(+3) * pa"), {pa: 2.0}) == 6.0


def test_a_positional_axis_and_an_axis_keyword_together_are_refused():
    # found by mutation testing: sum(X, 0, axis=1) silently summed over axis 0
    with pytest.raises(ParseError, match=r"^column 17: sum: axis given twice"):
        parse("sum(pX, 0, axis=1)", {"pX": sg.matrix("pX", (2, 3))})


def test_a_name_that_only_starts_like_a_temporary_names_later_constructions():
    """Found by mutation testing: t1a was taken for a printed temporary (t1, t2, ...: a prefix
    match), so it named only the parsed nodes; like any other name it names the value."""
    y = sg.scalar("pty9")
    e = parse("t1a = tanh(pty9); t1a*2")  # (kept: a name lasts while its node does)
    assert str(e) == "2*t1a"
    assert str(sg.tanh(y) * 3) == "3*t1a"


def test_inf_and_nan_are_the_numbers_str_prints():
    # str(x + inf) is "x + inf", which parse read as a new variable named inf
    x = sg.scalar("x")
    for e in (x * np.nan, x + np.inf, x - np.inf, sg.exp(-np.inf * x), x + 1e300):
        back = parse(str(e))
        assert sg.variables(back) == [x]
        np.testing.assert_equal(sg.evaluate(back, {x: 2.0}), sg.evaluate(e, {x: 2.0}))
    # a variable or a named value of that name wins
    v = sg.scalar("inf")
    assert sg.variables(parse("inf*x", {"inf": v})) == [v, x]
    assert sg.evaluate(parse("inf = x + 1; inf*2"), {x: 1.0}) == 4.0
    assert names_in("inf*x + nan") == ["x"]


def test_cli_eval_says_inf_is_a_number(capsys):
    from symgrad.cli import main

    assert main(["eval", "x + inf", "x=1"]) == 0
    assert capsys.readouterr().out == "inf\n"
    assert main(["eval", "x + inf", "x=1", "inf=2"]) == 2
    assert "inf is a number in an expression, not a variable" in capsys.readouterr().err
