"""Differentiable, zero, disconnected or undefined: symgrad says which, and why."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg

x, y = sg.scalars("x y")
v = sg.vector("v", 4)
M = sg.matrix("M", (4, 3))
VALS = {x: 0.3, y: -0.7, v: np.array([0.5, -1.0, 2.0, 0.1]),
        M: np.arange(12.0).reshape(4, 3) / 7}


# ------------------------------------------------------------------ undefined
UNDEFINED = {
    "argmax": (lambda: sg.argmax(v) * x, "argmax", "v"),
    "take_index": (lambda: sg.sum(sg.take(M, sg.argmax(sg.tanh(v)))), "argmax", "v"),
    "take_index_direct": (lambda: sg.sum(sg.take(M, sg.floor(x * 3.0))), "floor", "x"),
    "floor": (lambda: sg.floor(x) * x, "floor", "x"),
    "to_int": (lambda: sg.to_int(x) + 0.5, "to_int", "x"),
    "bernoulli": (lambda: sg.sum(sg.sample_bernoulli(sg.sigmoid(v), 1)), "sample_bernoulli", "v"),
    "categorical": (lambda: sg.sample_categorical(v, 1) * 1.0, "sample_categorical", "v"),
    # other, differentiable paths to v do not hide the undefined one
    "mixed": (lambda: sg.sum(v * v) + sg.argmax(v), "argmax", "v"),
    # nor does an op whose derivative would cut the cotangent (step is flat)
    "behind_step": (lambda: sg.functions.step(sg.argmax(v) - 1.0), "argmax", "v"),
}


@pytest.mark.parametrize("name", sorted(UNDEFINED))
def test_undefined_derivative_names_op_path_variable(name):
    build, op, var = UNDEFINED[name]
    f = build()
    wrt = {"v": v, "x": x}[var]
    with pytest.raises(sg.NonDifferentiableError) as info:
        sg.grad(f, wrt)
    msg = str(info.value)
    assert isinstance(info.value, TypeError)
    assert "undefined" in msg and op in msg and f"respect to {var}" in msg
    assert "sg.stop_gradient" in msg
    assert f"{var} ->" in msg or f"which is {var} itself" in msg  # the path from the variable
    with pytest.raises(sg.NonDifferentiableError):  # jacobian and hessian say the same
        sg.jacobian(f, [wrt])
    with pytest.raises(sg.NonDifferentiableError):
        sg.hessian(f, wrt)


def test_path_is_listed_in_order():
    f = sg.sum(sg.take(M, sg.argmax(sg.exp(sg.tanh(v)))))
    with pytest.raises(sg.NonDifferentiableError) as info:
        sg.grad(f, v)
    msg = str(info.value)
    assert "the path is v -> tanh -> exp -> argmax -> take -> sum." in msg
    assert "take (operand 2) has no derivative either" in msg
    assert "sg.stop_gradient(argmax(exp(tanh(v))))" in msg  # the value to hold constant


def test_long_paths_are_shortened():
    h = x
    for _ in range(500):
        h = sg.sin(h) * 1.01
    with pytest.raises(sg.NonDifferentiableError) as info:
        sg.grad(sg.floor(h) * x, x)
    msg = str(info.value)
    assert "more) ..." in msg and len(msg) < 700 and "-> floor" in msg


def test_take_is_differentiable_in_the_matrix():
    i = sg.argmax(v)
    f = sg.sum(sg.take(M, i) * sg.const([1.0, 2.0, 3.0]))
    g = sg.evaluate(sg.grad(f, M), VALS)
    want = np.zeros((4, 3))
    want[int(np.argmax(VALS[v]))] = [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(g, want)


def test_stop_gradient_makes_a_path_constant():
    f = sg.sum(sg.take(M, sg.stop_gradient(sg.argmax(v)))) + sg.sum(v * v)
    np.testing.assert_allclose(sg.evaluate(sg.grad(f, v), VALS), 2 * VALS[v])
    g = sg.grad(sg.stop_gradient(x * x) * x, x)
    assert sg.evaluate(g, VALS) == pytest.approx(VALS[x] ** 2)


def test_straight_through_hard_part_may_be_undefined():
    soft = sg.softmax(v)
    hard = sg.functions.onehot(sg.argmax(v), 4)
    f = sg.sum(sg.straight_through(hard, soft) * sg.const([1.0, 2.0, 3.0, 4.0]))
    g = sg.evaluate(sg.grad(f, v), VALS)
    s = np.exp(VALS[v]) / np.exp(VALS[v]).sum()
    c = np.arange(1.0, 5.0)
    np.testing.assert_allclose(g, s * (c - s @ c), rtol=1e-12)


# ------------------------------------------------------------------ zero and disconnected
def test_zero_when_f_does_not_depend_on_x():
    for w in (x, v, M):
        g = sg.grad(sg.sin(y), w)
        assert g.shape == w.shape
        assert sg.zero_reason(g) == f"zero: f does not depend on {sg.variables(w)[0]}"
        np.testing.assert_array_equal(sg.evaluate(g, VALS), np.zeros(w.shape))
        assert "zero: f does not depend on" in str(g)
    j = sg.jacobian(sg.tanh(v), x)
    assert j.shape == (4,) and sg.zero_reason(j).startswith("zero:")
    assert sg.grad(sg.sin(y).named("loss"), x).attrs["why"] == "loss does not depend on x"
    # an unnamed expression is called by its formula, not by its op's name ("mul"); x*x does
    # depend on the value 2x, but its graph holds no use of that node, which is what is said
    assert sg.zero_reason(sg.grad(x * x, 2.0 * x)) == (
        "zero: f as built holds no use of the value 2*x (rules may have rewritten its uses "
        "away: build f on a variable standing for it)")


def test_a_mixed_hessian_with_respect_to_a_value_rewritten_away_says_so():
    # the gradient (1.5 A^T)^T cos(...) is built as 1.5 A cos(...): the node U is gone from it,
    # and its zero said "df/dx does not depend on 1.5 A^T", which is false (trust.md)
    A, xv = sg.matrix("A_mh", (2, 3)), sg.vector("x_mh", 2)
    U = 1.5 * A.T
    H = sg.hessian(sg.sum(sg.sin(U @ xv)), [xv, U])
    assert sg.zero_reason(H[0][1]) == (
        "zero: df/dx_mh as built holds no use of the value 1.5 A_mh^T (rules may have "
        "rewritten its uses away: build f on a variable standing for it)")


def test_disconnected_through_stop_gradient_and_straight_through():
    g = sg.grad(sg.sin(y) * sg.stop_gradient(x), x)
    assert sg.zero_reason(g) == "disconnected: f depends on x only through stop_gradient"
    assert "disconnected" in str(g) and "disconnected" in sg.latex(g)
    assert sg.evaluate(g, VALS) == 0.0
    g = sg.grad(sg.sum(sg.straight_through(v * v, sg.tanh(y))), v)
    assert sg.zero_reason(g).startswith("disconnected: f depends on v only through "
                                        "straight_through")
    np.testing.assert_array_equal(sg.evaluate(g, VALS), np.zeros(4))


def test_zero_through_a_flat_op():
    H = sg.hessian(sg.sum(sg.relu(v)), v)
    assert H.shape == (4, 4)
    # the Hessian differentiates df/dv (the messages named it f, which depends on v)
    assert sg.zero_reason(H) == \
        "zero: df/dv depends on v only through step, whose derivative is zero"
    np.testing.assert_array_equal(sg.evaluate(H, VALS), np.zeros((4, 4)))


def test_a_zero_value_is_not_a_known_zero():
    g = sg.grad(x * y, x)
    assert sg.zero_reason(g) is None
    assert sg.evaluate(g, {x: 1.0, y: 0.0}) == 0.0  # zero here, but a real derivative
    assert sg.zero_reason(sg.hessian(x * x, x)) is None
    with pytest.raises(TypeError, match="zero_reason"):
        sg.zero_reason(0.0)


def test_known_zeros_fold_away_in_larger_expressions():
    g = sg.grad(sg.sin(y), x)
    assert (g + x) is x and sg.count_nodes(g * sg.tanh(x)) == 1
    # and compile, printed or not, to zeros of the right shape
    G = sg.grad(sg.sin(y), M)
    out = sg.compile(G, [y])(0.5)
    assert out.shape == (4, 3) and not out.any()


def test_hessian_of_a_linear_function_is_a_known_zero():
    H = sg.hessian(3.0 * x + y, x)
    assert sg.zero_reason(H) == "zero: df/dx does not depend on x"
    L = (x * x * y).named("L")
    assert sg.zero_reason(sg.hessian(L, [x, y])[1][1]) == "zero: dL/dy does not depend on y"
    g = sg.grad(sg.sin(x) * y, y)  # sin(x), a gradient
    assert sg.zero_reason(sg.grad(g, y)) == "zero: df/dy does not depend on y"


# ------------------------------------------------------------------ conventions
def test_relu_and_abs_derivatives_at_zero_are_zero_elementwise():
    w = sg.vector("w", 3)
    pts = {w: np.array([-1.0, 0.0, 2.0])}
    np.testing.assert_array_equal(sg.evaluate(sg.grad(sg.sum(sg.relu(w)), w), pts), [0, 0, 1])
    np.testing.assert_array_equal(sg.evaluate(sg.grad(sg.sum(sg.abs(w)), w), pts), [-1, 0, 1])


@pytest.mark.parametrize("fn", [sg.maximum, sg.minimum])
def test_ties_give_the_whole_gradient_to_the_first_operand(fn):
    a, b = sg.vector("a", 3), sg.vector("b", 3)
    pts = {a: np.array([1.0, 2.0, 3.0]), b: np.array([1.0, 0.0, 5.0])}
    ga, gb = sg.evaluate(sg.grad(sg.sum(fn(a, b)), [a, b]), pts)
    assert ga[0] == 1.0 and gb[0] == 0.0  # the tie: no 0.5 split
    np.testing.assert_array_equal(ga + gb, np.ones(3))


def test_a_value_named_after_it_was_used_is_still_differentiated():
    """h.named("h") after f = h*h was built is a named twin of h: the gradient with respect to
    it was a zero that said f does not depend on h."""
    t = sg.tanh(sg.scalar("x_twin"))
    f = t * t
    named = t.named("h_twin")
    assert named is not t
    for g in (sg.grad(f, named), sg.grad(f, [named, t])[0], sg.jacobian(f, named)):
        assert sg.zero_reason(g) is None
        assert sg.evaluate(g, {sg.scalar("x_twin"): 0.5}) == pytest.approx(2 * np.tanh(0.5))


def test_a_variable_named_after_it_was_used_is_still_differentiated():
    """x.named("beta") is an alias node equal to x: for f built on x, the derivatives with
    respect to it were zeros that said f does not depend on beta."""
    b, U = sg.scalar("b_alias"), sg.matrix("U_alias", (2, 2))
    f = sg.tanh(b * U)
    beta = b.named("beta_alias")
    vals = {b: 0.3, U: np.array([[1.0, 2.0], [-1.0, 0.5]])}
    want = vals[U] * (1 - np.tanh(0.3 * vals[U]) ** 2)
    for J in (sg.jacobian(f, beta), sg.grad(sg.sum(f), [beta, U])[0]):
        assert sg.zero_reason(J) is None
        np.testing.assert_allclose(np.sum(sg.evaluate(J, vals)) if J.shape == () else
                                   sg.evaluate(J, vals), want.sum() if J.shape == () else want)
    assert sg.evaluate(sg.hessian(b * b, beta), {b: 1.0}) == 2.0


def test_a_gradient_that_is_its_own_function_has_a_zero_with_a_reason():
    # grad(exp(x), x) is exp(x) itself: its record named the node as its own function, and
    # the zero's message recursed without end (RecursionError)
    x, y = sg.scalars("x_self y_self")
    H = sg.hessian(sg.exp(x), [x, y])
    assert sg.zero_reason(H[1][1]) == "zero: f does not depend on y_self"
    assert sg.zero_reason(sg.jacobian(sg.grad(sg.exp(x), x), y)).startswith("zero: ")


def test_a_power_at_base_zero_has_a_zero_derivative_in_its_exponent():
    """d(x**p)/dp = x**p log(x) was 0 * log(0) = nan at x = 0 (a dead relu unit to a learned
    power): 0**p is 0 for every p > 0, so the derivative and all its higher ones in p are 0."""
    import warnings

    x, p = sg.scalars("x_pz p_pz")
    g = sg.grad(sg.relu(x) ** p, p)
    assert str(g) == "relu(x_pz)**p_pz*log(relu(x_pz))"
    assert sg.evaluate(g, {x: -1.0, p: 2.0}) == 0.0
    assert sg.compile(g, [x, p])(-1.0, 2.0) == 0.0  # the math version
    H = sg.hessian(x**p, [x, p])
    assert sg.evaluate([e for row in H for e in row], {x: 0.0, p: 3.0}) == [0.0] * 4
    v = sg.vector("v_pz", 3)
    got = sg.evaluate(sg.grad(sg.sum(v**p), p), {v: np.array([0.0, 2.0, 3.0]), p: 2.0})
    assert got == pytest.approx(4 * np.log(2) + 9 * np.log(3), rel=1e-14)
    with warnings.catch_warnings():  # a negative base is still nan, as x**p is
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(sg.evaluate(sg.grad(x**p, p), {x: -1.0, p: 0.5}))
    assert sg.check_grad(x**p, [x, p], {x: 1.5, p: 2.5}) < 1e-6


def test_relu_under_an_infinite_derivative_is_zero_where_it_is_flat():
    """sqrt(relu(v))'s derivative was 0.5/sqrt(0) * step(v) = inf * 0 = nan for v < 0, where
    the function is constant (torch and jax give 0)."""
    import warnings

    v = sg.vector("v_gate", 3)
    s = sg.scalar("s_gate")
    x = np.array([-1.0, 0.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = sg.grad(sg.sum(sg.sqrt(sg.relu(v))), v)
        assert sg.evaluate(g, {v: x}).tolist() == [0.0, 0.0, 0.25]
        H = sg.hessian(sg.sum(sg.relu(v) ** 1.5), v)
        np.testing.assert_allclose(sg.evaluate(H, {v: x}), np.diag([0.0, 0.0, 0.375]))
        gs = sg.grad(sg.sqrt(sg.relu(s)), s)
        assert sg.compile(gs, [s])(-1.0) == 0.0 and sg.evaluate(gs, {s: -1.0}) == 0.0
    # first derivatives print as before: relu' is step
    assert str(sg.grad(sg.relu(s), s)) == "step(s_gate)"
    assert str(sg.grad(3 * sg.relu(s), s)) == "3*step(s_gate)"
    assert sg.check_grad(sg.relu(s) ** 1.5, s, {s: 0.7}) < 1e-6


def test_maximum_and_minimum_under_an_infinite_derivative_are_zero_where_they_lose():
    # sqrt(maximum(v, 0)) at v < 0: ct * (1 - step(-v)) was inf * 0 = nan; the loser gets 0
    import warnings

    v = sg.vector("v_mg", 3)
    x = np.array([-1.0, 0.5, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = sg.grad(sg.sum(sg.sqrt(sg.maximum(v, 0.0))), v)
        np.testing.assert_allclose(sg.evaluate(g, {v: x}), [0.0, 0.5 / np.sqrt(0.5), 0.25])
        g = sg.grad(sg.sum(sg.sqrt(-sg.minimum(v, 0.0))), v)
        np.testing.assert_allclose(sg.evaluate(g, {v: -x}), [0.0, -0.5 / np.sqrt(0.5), -0.25])
    a, b = sg.scalars("a_mg b_mg")  # ties still give everything to the first operand
    assert sg.evaluate(sg.grad(sg.maximum(a, b), [a, b]), {a: 1.0, b: 1.0}) == [1.0, 0.0]
    assert str(sg.grad(sg.maximum(a, b), b)) == "step(-(a_mg - b_mg))"


def test_a_constant_differentiated_is_called_f_whatever_gradient_it_was_before():
    # a gradient that was a constant (3.0, or 0 after an underflow) recorded its origin on the
    # one shared constant node, so every later derivative of that constant was called df/dy
    x_, y_ = sg.scalars("x_cf y_cf")
    assert sg.grad(0 * x_ + y_ * 3.0, y_) is sg.const(3.0)
    assert sg.zero_reason(sg.grad(sg.const(3.0), x_)) == "zero: f does not depend on x_cf"


def test_a_hessian_zero_names_its_own_row_when_two_rows_are_one_node():
    # both gradients of 3x + 3y are the one node 3: H[0][0] said "df/dy does not depend on x"
    a, b = sg.scalars("x_rw y_rw")
    H = sg.hessian(3 * a + 3 * b, [a, b])
    assert sg.zero_reason(H[0][0]) == "zero: df/dx_rw does not depend on x_rw"
    assert sg.zero_reason(H[1][1]) == "zero: df/dy_rw does not depend on y_rw"


def test_zero_reason_sees_through_a_negated_view_of_a_known_zero():
    """Found by mutation testing: zero_reason looks through neg as it does through views; the
    negated reshape of a disconnected gradient is a neg node, and still says why it is zero."""
    g = sg.grad(sg.sum(sg.stop_gradient(v) * y), v)
    e = -sg.reshape(g, (4, 1))
    assert e.op.name == "neg"
    assert sg.zero_reason(e) == "disconnected: f depends on v only through stop_gradient"


def test_a_cut_beside_a_flat_op_is_a_zero_not_a_disconnection():
    """Found by mutation testing: f reaches x through step (flat) and stop_gradient (a cut);
    that is a zero naming both, not "disconnected", which is for cuts alone."""
    g = sg.grad(sg.step(x) + sg.stop_gradient(x), x)
    assert sg.zero_reason(g) == ("zero: f depends on x only through step and stop_gradient, "
                                 "whose derivative is zero")


def test_the_one_entry_hint_is_only_for_an_f_with_one_entry():
    """Found by mutation testing: a (1, 3) f has three entries, and grad's hint is to use
    sg.jacobian; only an f whose every size is 1 is told to reshape to a scalar."""
    R = sg.matrix("R_oe", (1, 3))
    with pytest.raises(ValueError, match=r"got shape \(1, 3\); use sg\.jacobian for a "
                                         r"non-scalar f, or sum it first$"):
        sg.grad(R * x, x)
    C = sg.matrix("C_oe", (1, 1))
    with pytest.raises(ValueError, match=r"got shape \(1, 1\); it has one entry: "
                                         r"sg\.reshape\(f, \(\)\) is the scalar$"):
        sg.grad(C * x, x)


def test_an_undefined_index_suggests_stopping_the_index_not_the_lookup():
    """Found by mutation testing: take has a derivative in its array, not its index; the error
    suggests sg.stop_gradient of the index alone, not of the whole v[i]."""
    w = sg.vector("w_ix", 3)
    i = sg.scalar("i_ix")
    with pytest.raises(sg.NonDifferentiableError,
                       match=r"take has no derivative with respect to its operand 2.*"
                             r"\(e\.g\. sg\.stop_gradient\(i_ix\)\)\.$"):
        sg.grad(sg.take(w, i) * 2.0, i)
    with pytest.raises(sg.NonDifferentiableError,
                       match=r"\(e\.g\. sg\.stop_gradient\(argmax\(v\)\)\)\.$"):
        sg.grad(sg.argmax(v) * x, v)


def test_a_gradient_with_respect_to_a_named_value_is_restabilized():
    """Found by mutation testing: the gradient of mu**2 log(mu) with respect to mu, a named
    sigmoid(z), holds log(mu) anew; the reverse pass stabilizes it again (-softplus(-z))
    because mu is not a leaf."""
    z = sg.scalar("z_rs")
    mu = sg.sigmoid(z).named("mu")
    g = sg.grad(mu * mu * sg.log(mu), mu)
    assert str(g) == "mu - 2*softplus(-z_rs)*mu"  # ((mu mu)/mu is mu: a build-time rule)
    m = 1 / (1 + np.exp(3.0))
    assert sg.evaluate(g, {z: -3.0}) == pytest.approx(m + 2 * m * np.log(m), rel=1e-12)
    # (mu mu)/mu lost mu once mu**2 underflowed: 1e-3 off at z = -400, nan below -710
    m = np.exp(-400.0)
    assert sg.evaluate(g, {z: -400.0}) == pytest.approx(m - 2 * 400.0 * m, rel=1e-12)
