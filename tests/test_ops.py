"""Every op's derivative: against central finite differences, and for scalar ops against sympy."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import symgrad as sg
from symgrad.expr import make
from symgrad.ops import REGISTRY
from tests.helpers import assert_grad_fd

x, y = sg.scalars("x y")

# op name -> (expression in x (and y), a point inside the domain)
SCALAR_UNARY = {
    "exp": (lambda a: sg.exp(a), 0.3),
    "log": (lambda a: sg.log(a), 1.7),
    "sqrt": (lambda a: sg.sqrt(a), 2.3),
    "sigmoid": (lambda a: sg.sigmoid(a), -0.4),
    "tanh": (lambda a: sg.tanh(a), 0.6),
    "relu": (lambda a: sg.relu(a), 0.8),
    "relu_neg": (lambda a: sg.relu(a), -0.8),
    "softplus": (lambda a: sg.softplus(a), 0.9),
    "abs": (lambda a: sg.abs(a), -1.2),
    "sin": (lambda a: sg.sin(a), 0.7),
    "cos": (lambda a: sg.cos(a), 0.7),
    "square": (lambda a: sg.square(a), -1.3),
    "neg": (lambda a: -a, 0.5),
    "pow3": (lambda a: a**3, 1.1),
    "reciprocal": (lambda a: 1 / a, 1.9),
    "sigmoid_deriv": (lambda a: sg.functions.sigmoid_deriv(a), 0.3),
    "tanh_deriv": (lambda a: sg.functions.tanh_deriv(a), 0.3),
    "zero_as_one": (lambda a: make(REGISTRY["zero_as_one"], (a,)) * a, 0.7),
    "log_softplus": (lambda a: make(REGISTRY["log_softplus"], (a,)), -0.6),
}

SCALAR_BINARY = {
    "add": (lambda a, b: a + b, (0.3, -1.2)),
    "sub": (lambda a, b: a - b, (0.3, -1.2)),
    "mul": (lambda a, b: a * b, (0.3, -1.2)),
    "div": (lambda a, b: a / b, (0.3, -1.2)),
    "pow": (lambda a, b: a**b, (1.3, 0.7)),
    "maximum": (lambda a, b: sg.maximum(a, b), (0.3, -1.2)),
    "minimum": (lambda a, b: sg.minimum(a, b), (0.3, -1.2)),
    "bce": (lambda a, b: sg.bce(a, b), (0.3, 0.8)),
    "bce_sigmoid": (lambda a, b: sg.bce(sg.sigmoid(a), b), (0.3, 0.8)),
    "softplus_combo": (lambda a, b: sg.softplus(a * b) + sg.exp(a - b), (0.3, 0.8)),
    "gate": (lambda a, b: make(REGISTRY["gate"], (a * b, b)), (0.3, 0.8)),
}


@pytest.mark.parametrize("name", sorted(SCALAR_UNARY))
def test_scalar_unary_fd_and_sympy(name):
    build, at = SCALAR_UNARY[name]
    f = build(x)
    vals = {x: at}
    assert_grad_fd(f, [x], vals)
    g = sg.grad(f, x)
    sx = sympy.Symbol("x", real=True)
    want = sympy.diff(sg.to_sympy(f), sx)
    got = sg.to_sympy(g)
    assert abs(float(want.subs(sx, at)) - sg.evaluate(g, vals)) < 1e-9
    if name not in ("relu", "relu_neg", "abs"):  # piecewise: compare values only
        assert sympy.simplify(want - got) == 0
    # the second derivative too (the derivative graph is differentiable again)
    g2 = sg.grad(g, x)
    want2 = sympy.diff(want, sx)
    assert abs(float(want2.subs(sx, at)) - sg.evaluate(g2, vals)) < 1e-8


@pytest.mark.parametrize("name", sorted(SCALAR_BINARY))
def test_scalar_binary_fd_and_sympy(name):
    build, (a, b) = SCALAR_BINARY[name]
    f = build(x, y)
    vals = {x: a, y: b}
    assert_grad_fd(f, [x, y], vals)
    sx, sy = sympy.Symbol("x", real=True), sympy.Symbol("y", real=True)
    fs = sg.to_sympy(f)
    for v, s in ((x, sx), (y, sy)):
        want = float(sympy.diff(fs, s).subs({sx: a, sy: b}))
        assert abs(want - sg.evaluate(sg.grad(f, v), vals)) < 1e-9
    H = sg.hessian(f, [x, y])
    Hs = sympy.hessian(fs, (sx, sy))
    for i in range(2):
        for j in range(2):
            assert abs(float(Hs[i, j].subs({sx: a, sy: b})) - sg.evaluate(H[i][j], vals)) < 1e-8


def test_relu_derivative_at_zero_is_zero():
    assert sg.evaluate(sg.grad(sg.relu(x), x), {x: 0.0}) == 0.0
    assert sg.evaluate(sg.grad(sg.abs(x), x), {x: 0.0}) == 0.0


def test_maximum_tie_goes_to_one_side():
    gx, gy = sg.grad(sg.maximum(x, y), [x, y])
    assert sg.evaluate([gx, gy], {x: 1.0, y: 1.0}) == [1.0, 0.0]
    gx, gy = sg.grad(sg.minimum(x, y), [x, y])
    assert sg.evaluate([gx, gy], {x: 1.0, y: 1.0}) == [1.0, 0.0]
    a, b = sg.vector("a_tie", 3), sg.vector("b_tie", 3)  # (and on arrays, entry by entry)
    va, vb = np.array([1.0, 2.0, 0.0]), np.array([1.0, 1.0, 3.0])
    for f in (sg.maximum, sg.minimum):
        ga, gb = sg.grad(sg.sum(f(a, b)), [a, b])
        got = sg.evaluate([ga, gb], {a: va, b: vb})
        side = va > vb if f is sg.maximum else va < vb
        np.testing.assert_array_equal(got[0], np.where(va == vb, 1.0, side))
        np.testing.assert_array_equal(got[1], 1.0 - got[0])


# ------------------------------------------------------------------ tensor ops
rng = np.random.default_rng(7)
v3 = sg.vector("v3", 3)
u3 = sg.vector("u3", 3)
A = sg.matrix("A", (2, 3))
B = sg.matrix("B", (3, 4))
S = sg.matrix("S", (3, 3))
T = sg.tensor("T", (2, 2, 3))
Q3 = sg.tensor("Q3", (2, 3, 3))
w2 = sg.vector("w2", 2)
R = sg.matrix("R", (1, 3))

VALUES = {
    v3: rng.normal(size=3), u3: rng.normal(size=3), A: rng.normal(size=(2, 3)),
    B: rng.normal(size=(3, 4)), S: rng.normal(size=(3, 3)), T: rng.normal(size=(2, 2, 3)),
    Q3: rng.normal(size=(2, 3, 3)), w2: rng.normal(size=2), R: rng.normal(size=(1, 3)),
    x: 0.4, y: -0.9,
}

TENSOR_CASES = {
    "sum_all": lambda: sg.sum(A * A),
    "sum_axis0": lambda: sg.sum(sg.tanh(A), axis=0),
    "sum_axis1_keep": lambda: sg.sum(sg.tanh(A), axis=1, keepdims=True),
    "mean_axis": lambda: sg.mean(sg.exp(T), axis=(0, 2)),
    "broadcast_add": lambda: A + v3,
    "broadcast_mul": lambda: A * v3 * x,
    "matmul_mm": lambda: sg.tanh(A @ B),
    "matmul_mv": lambda: A @ sg.sin(v3),
    "matmul_vm": lambda: v3 @ B,
    "matmul_vv": lambda: v3 @ u3,
    "matmul_batched": lambda: T @ S,
    "matmul_batched_vec": lambda: T @ v3,
    # a vector times a stack of matrices: square (a wrong transpose gave a wrong value) and
    # not (mutation testing found neither)
    "matmul_vec_batched": lambda: sg.sin(v3 @ Q3),
    "matmul_vec_batched_rect": lambda: sg.sin(w2 @ T),
    "power3": lambda: v3 ** 3 * A,
    "sum_of_broadcast_size1": lambda: sg.sin(sg.sum(sg.broadcast_to(R, (2, 3)), axis=0)),
    "dot": lambda: sg.dot(v3, u3) * x,
    "outer": lambda: sg.outer(v3, u3 * u3),
    "transpose": lambda: sg.transpose(A) @ A,
    "transpose3": lambda: sg.transpose(T, (2, 0, 1)) * 2.0,
    "reshape": lambda: sg.reshape(A, (3, 2)) @ A,
    "broadcast_to": lambda: sg.broadcast_to(v3, (2, 3)) * A,
    "logsumexp": lambda: sg.logsumexp(A),
    "logsumexp_axis": lambda: sg.logsumexp(A, axis=1),
    "softmax": lambda: sg.softmax(A),
    "softmax_axis0": lambda: sg.softmax(A, axis=0),
    "log_softmax": lambda: sg.log_softmax(A),
    "diag": lambda: sg.diag(v3) @ S,
    "diagonal": lambda: sg.diagonal(S * S),
    "take": lambda: sg.take(A, 1) * 3.0,
    "bce_vec": lambda: sg.bce(sg.sigmoid(v3), 0.3),
    "relu_vec": lambda: sg.relu(v3 + 0.1),
    "xAx": lambda: v3 @ S @ v3,
}


def _wrts(f):
    return [n for n in sg.variables(f)]


@pytest.mark.parametrize("name", sorted(TENSOR_CASES))
def test_tensor_ops_jacobian_fd(name):
    f = TENSOR_CASES[name]()
    vals = {k: v for k, v in VALUES.items() if k in set(_wrts(f))}
    assert_grad_fd(f, _wrts(f), vals, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sum_all", "logsumexp", "xAx", "matmul_vv"])
def test_tensor_hessian_fd(name):
    f = TENSOR_CASES[name]()
    if f.shape != ():
        f = sg.sum(f)
    ws = _wrts(f)
    vals = {k: v for k, v in VALUES.items() if k in set(ws)}
    for w in ws:
        g = sg.grad(f, w)
        assert_grad_fd(g, [w], vals, rtol=1e-5, atol=1e-6)


def test_sum_over_a_broadcast_axis_of_size_one_counts_its_copies():
    """The rewrite sum(broadcast_to(u, ...)) = count * sum(u) (mutation testing found that
    dropping the count here passed: the derivatives were checked against the same value)."""
    r = np.array([[1.0, 2.0, 3.0]])
    for e, want in [(sg.sum(sg.broadcast_to(R, (2, 3)), axis=0), 2 * r[0]),
                    (sg.sum(sg.broadcast_to(R, (4, 3))), 4 * r.sum()),
                    (sg.sum(sg.broadcast_to(R, (4, 3)), axis=1), np.full(4, r.sum())),
                    (sg.sum(sg.broadcast_to(v3, (2, 3)) * 1.5, axis=0), 3 * np.arange(1, 4.0))]:
        got = sg.evaluate(e, {R: r, v3: np.arange(1, 4.0)})
        np.testing.assert_allclose(got, want, rtol=1e-15)


def test_a_jacobian_of_a_size_one_output_through_a_broadcast_axis():
    """f of shape (1, 1) from x (3, 1) broadcast against y (3, 4): the cotangent's batch
    axes come first (mutation testing: an unbroadcast that forgot them passed)."""
    X1, Y4 = sg.matrix("x_ub", (3, 1)), sg.matrix("y_ub", (3, 4))
    f = sg.sum(X1 * Y4, axis=(0, 1), keepdims=True)
    J = sg.jacobian(f, X1)
    assert J.shape == (1, 1, 3, 1)
    yv = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(sg.compile(J, [X1, Y4])(np.ones((3, 1)), yv).ravel(),
                               yv.sum(1))
    assert_grad_fd(sg.sum(sg.sin(f)), [X1], {X1: rng.normal(size=(3, 1)), Y4: yv},
                   rtol=1e-6, atol=1e-8)


def test_the_diagonal_of_a_matrix_with_one_known_size_has_that_size():
    # (mutation testing: same_dim picking the symbolic size passed)
    M = sg.matrix("M_dg", (3, "n"))
    d = sg.diagonal(M)
    assert d.shape == (3,)
    with pytest.raises(sg.ShapeError, match=r"\(3,\) and \(4,\)"):
        d + sg.vector("v_dg", 4)


def test_relu_of_nan_is_nan_in_the_in_place_form_too():
    # a long vector's relu(2 v) is written into its operand's buffer; nan stays nan there as
    # in np.maximum (mutation testing: np.fmax in that form gave 0 and passed)
    v = sg.vector("v_rn", 2000)
    f = sg.compile(sg.relu(2.0 * v), [v])
    xv = np.ones(2000)
    xv[0], xv[1] = np.nan, -1.0
    got = f(xv)
    assert np.isnan(got[0])
    np.testing.assert_array_equal(got[1:], np.r_[0.0, np.full(1998, 2.0)])


def test_a_minus_one_array_times_a_scalar_keeps_the_array_shape():
    # (mutation testing: the rule -1 * y = -y without its shape check gave a scalar -2)
    ys = sg.scalar("y_m1")
    e = sg.const(np.full(3, -1.0)) * ys
    assert e.shape == (3,)
    got = sg.compile(e, [ys])(2.0)
    assert got.shape == (3,)
    np.testing.assert_array_equal(got, [-2.0, -2.0, -2.0])


def test_a_power_zero_folds_to_one_and_its_derivative_is_a_known_zero():
    # (mutation testing: keeping x**0 unfolded passed)
    assert str(x ** 0.0) == "1"
    assert str(sg.grad(x ** 0.0, x)) == "0 [zero: f does not depend on x]"
    e = v3 ** 0.0
    assert str(e) == "ones((3,))" and e.shape == (3,)


@pytest.mark.parametrize("build, want", [
    # an integer value two nodes deep under stop_gradient (mutation testing: a walk of
    # depth 1 missed the argmax under the negation); -argmax([1, 5, 2]) = -1 ...
    (lambda v, M: sg.stop_gradient(-sg.argmax(v)), -1.0),
    # ... and through a sum, 1 + 0 = 1 (mutation testing: "sum" missing from the integer
    # keeping ops)
    (lambda v, M: sg.stop_gradient(sg.sum(sg.argmax(M, axis=1))), 1.0),
])
def test_the_gradient_through_an_integer_factor_is_a_float_array(build, want):
    # the gradient of s * sum(v) is s * ones, which numpy computes in floats for an integer s
    v, M = sg.vector("v_if", 3), sg.matrix("M_if", (2, 3))
    g = sg.grad(build(v, M) * sg.sum(v), v)
    vv, Mv = np.array([1.0, 5.0, 2.0]), np.array([[1.0, 5.0, 2.0], [3.0, 0.0, 1.0]])
    out = sg.compile(g, [v, M])(vv, Mv)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, np.full(3, want))


def test_the_mean_over_an_empty_axis_is_nan_as_in_numpy():
    # the count of an axis of size 0 is 0, and 0/0 is nan (mutation testing: counting a size-0
    # axis as 1 gave zeros)
    A0 = sg.tensor("A_em", (0, 3))
    e = sg.mean(A0, axis=0)
    assert str(e) == "sum(A_em, axis=0)/0"
    with np.errstate(invalid="ignore"):
        got = sg.compile(e, [A0])(np.zeros((0, 3)))
    assert got.shape == (3,) and np.all(np.isnan(got))
