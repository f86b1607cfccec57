"""Numbers print as a person writes them: a derived constant's rounding error is not shown,
a constant that needs all its digits keeps them, and compiled code keeps the exact value."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.ops.leaves import fmt_number


@pytest.mark.parametrize("value, text", [
    (2.51 - 1.0, "1.51"),  # 1.5099999999999998
    (0.1 + 0.2, "0.3"),
    (0.1 * 0.3, "0.03"),
    (3.141592653589793, "3.141592653589793"),  # all 16 digits are meant
    (1 / 3, "1/3"),  # the mean's factor over 3: exactly the float 1/3, a small fraction
    (-2 / 3, "-2/3"),
    (1 / 96, "1/96"),
    (2 ** 0.5, "1.4142135623730951"),  # no small fraction: its digits are kept
    (1 / 101, "0.009900990099009901"),  # denominators up to 100 only
    (1.2345678901234567e-05, "1.2345678901234568e-05"),
    (2.5e-07, "2.5e-07"),
    (-2.5, "-2.5"),
    (4.0, "4"),
    (1e300, "1e+300"),
])
def test_fmt_number(value, text):
    assert fmt_number(value) == text


def test_a_small_fraction_reads_as_one_in_text_and_latex():
    v, x = sg.vector("fv", 3), sg.scalar("fx")
    assert str(sg.grad(sg.mean(sg.tanh(v)), v)) == "(1/3) (1 - tanh(fv)**2)"
    assert sg.latex(x * (1 / 3)) == r"\frac{1}{3} \mathrm{fx}"
    assert str(x ** (1 / 3)) == "fx**(1/3)"
    assert eval(str(-x * (1 / 3)).replace("fx", "0.9")) == -0.9 * (1 / 3)  # reads back exactly


def test_a_derived_exponent_prints_short_and_computes_exactly():
    x = sg.scalar("x")
    g = sg.grad((x * x + 0.5) ** 2.51, x)
    assert "**1.51" in str(g) and "1.5099" not in str(g)
    f = sg.compile(g, [x])
    want = 2.51 * (0.7 * 0.7 + 0.5) ** (2.51 - 1.0) * 2 * 0.7
    assert f(0.7) == pytest.approx(want, rel=1e-15)


def test_a_product_of_a_scalar_with_itself_prints_as_a_square():
    x, y = sg.scalars("p q")
    assert str(x * x) == "p**2"
    assert sg.latex(x * x) == "p^{2}"
    assert str((x + y) * (x + y)) == "(p + q)**2"
    assert sg.latex((x + y) * (x + y)) == r"\left(p + q\right)^{2}"
    assert str(x * x * y) == "p**2*q"
    assert str(x * y) == "p*q"
    assert (x * x).op.name == "mul"  # only the printing: the graph keeps the smaller product
    v = sg.vector("v_sq", 3)
    assert str(v * v) == "v_sq ⊙ v_sq"  # elementwise products of tensors keep their symbol


def test_negative_zero_prints_its_sign():
    # -0.0 printed 0: exp(1/minimum(x, -0.0)) read exp(1/minimum(x, 0)), which is inf at
    # x = 1 where the expression is 0
    x = sg.scalar("nz_x")
    assert fmt_number(-0.0) == "-0.0" and fmt_number(0.0) == "0"
    e = sg.exp(1 / sg.minimum(x, -sg.const(0.0)))
    assert str(e) == "exp(1/minimum(nz_x, -0.0))"
    assert sg.latex(e) == (r"\exp\left(\frac{1}{\operatorname{minimum}\left(\mathrm{nz}_{x}, -0"
                           r"\right)}\right)")
    with np.errstate(divide="ignore"):
        assert sg.evaluate(sg.parse(str(e)), {x: 1.0}) == sg.evaluate(e, {x: 1.0}) == 0.0
    assert str(1 / sg.const(-0.0)) == "1/(-0.0)"
    assert sg.latex(sg.const(-0.0)) == "-0"


def test_a_negative_fraction_before_a_tensor_is_parenthesised():
    # -1/3 w read as -1/(3 w), while (1/3) w had its parentheses
    w, A, a = sg.vector("nf_w", 3), sg.matrix("nf_A", (3, 3)), sg.vector("nf_a", 3)
    assert str(sg.const(1 / 3) * w) == "(1/3) nf_w"
    assert str(sg.const(-1 / 3) * w) == "-(1/3) nf_w"
    assert str(sg.const(-1 / 3) * (A @ w)) == "-(1/3) nf_A nf_w"
    assert str(a + sg.const(-1 / 3) * w) == "nf_a - (1/3) nf_w"
    assert str(a - sg.const(-1 / 3) * w) == "nf_a + (1/3) nf_w"
    assert str(sg.const(-0.5) * w) == "-0.5 nf_w"  # no slash: as it was
    assert sg.latex(sg.const(-1 / 3) * w) == r"\left(-\frac{1}{3}\right) \mathrm{nf}_{w}"


def test_coefficients_whose_product_underflows_stay_apart():
    # (mutation testing: 1e-200 * 1e-200 gathered into the coefficient 0, printed 0*x*y)
    x, y = sg.scalar("uf_x"), sg.scalar("uf_y")
    e = x * (1e-200 * (y * 1e-200))
    assert str(e) == "1e-200*uf_x*1e-200*uf_y"
    assert sg.latex(e) == r"10^{-200} \mathrm{uf}_{x} \cdot 10^{-200} \mathrm{uf}_{y}"


def test_a_quotient_of_vectors_is_a_fraction_in_latex():
    # only a matrix (or more axes) below the line prints as \oslash (mutation testing: vectors
    # printing v \oslash w passed)
    v, w = sg.vector("dv_v", 3), sg.vector("dv_w", 3)
    A, C = sg.matrix("dv_A", (2, 3)), sg.matrix("dv_C", (2, 3))
    assert sg.latex(v / w) == r"\frac{\mathrm{dv}_{v}}{\mathrm{dv}_{w}}"
    assert sg.latex(1 / w) == r"\frac{1}{\mathrm{dv}_{w}}"
    assert sg.latex(A / C) == r"\mathrm{dv}_{A} \oslash \mathrm{dv}_{C}"


def test_a_full_sum_of_a_matrix_prints_as_a_sigma():
    # (mutation testing: printing \sum only for vectors passed)
    A, B = sg.matrix("A", (2, 3)), sg.matrix("B", (3, 3))
    assert sg.latex(sg.sum(A)) == r"\sum A"
    assert sg.latex(sg.sum(A) * B) == r"\left(\sum A\right) B"
    assert sg.latex(sg.sum(A, axis=0)) == r"\operatorname{sum}\left(A, \mathrm{axis}=0\right)"


def test_a_named_negation_keeps_its_name_in_a_product():
    # 2 * nx is not rewritten to -2 * x when nx = -x has a name of its own (mutation testing:
    # folding the named negation passed)
    xs = sg.scalar("x")
    nx = (-xs).named("nx")
    assert str(nx * 2.0) == "2*nx"
    assert str(2.0 * nx) == "2*nx"


def test_a_zero_dimensional_array_constant_is_a_number():
    # const(np.array(2.0)) prints as 2, as const(2.0) (mutation testing: keeping the 0-d array
    # printed 2.*x and \mathrm{const}())
    xs = sg.scalar("x")
    c = sg.const(np.array(2.0))
    assert c is sg.const(2.0)
    assert str(c * xs) == "2*x"
    assert sg.latex(c) == "2"
    assert str(xs + c * 0.0) == "x"
