"""sg.index_notation: expressions (Hessians and Jacobians with respect to matrices above all)
written as sums of products of indexed arrays.

The printed formula is checked by value: each test evaluates the index form itself (every
term of every sum as one numpy einsum, a δ as an identity matrix, each array by sg.evaluate)
and compares it with sg.evaluate of the expression.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.index_notation import index_form
from tests.strategies import dags, point_is_safe, points, to_scalar
from tests.test_identity_regions import CASES, VALS, A, X, Y, u

rng = np.random.default_rng(3)


def evaluate_form(e: sg.Expr, vals: dict) -> np.ndarray:
    """The value of ``e``'s index form at ``vals`` (variable -> value)."""
    form = index_form(e)
    by_name = {v.attrs["vname"]: x for v, x in vals.items()}
    sizes = {}  # a symbolic size's value, read off the inputs
    for v, x in vals.items():
        for d, n in zip(v.shape, np.shape(x)):
            if isinstance(d, str):
                sizes[d] = n
    arrays = {k: np.asarray(sg.evaluate(a, vals), dtype=float) if a.op.name != "dimsize"
              else float(sizes[a.attrs["dim"]]) for k, a in form.arrays.items()}
    shape = tuple(sizes.get(d, d) for d in e.shape)
    size = {i: sizes.get(d, d) for i, d in form.sizes.items()}
    out = [i for i in form.out if i is not None]
    total = np.zeros(shape)
    for idx, summand in form.sums:
        for term in sympy.Add.make_args(sympy.expand(summand)):
            total += _term_value(term, idx, out, arrays, by_name, size, sizes).reshape(shape)
    return total


def _term_value(term, idx, out, arrays, by_name, size, sizes) -> np.ndarray:
    coef, parts, specs = 1.0, [], []
    for f in sympy.Mul.make_args(term):
        base, k = (f.base, int(f.exp)) if isinstance(f, sympy.Pow) and f.exp.is_Integer \
            and isinstance(f.base, sympy.Indexed) else (f, 1)
        for _ in range(abs(k)):
            if isinstance(base, sympy.Indexed):
                a = arrays[str(base.base)]
                a = a.reshape([n for n in a.shape if n != 1])
                parts.append(a if k > 0 else 1.0 / a)
                specs.append("".join(str(i) for i in base.indices))
            elif isinstance(base, sympy.KroneckerDelta):
                a, b = map(str, base.args)
                parts.append(np.eye(size[a]))
                specs.append(a + b)
            else:  # a number, or a formula of scalars (variables and sizes)
                subs = {s: arrays.get(s.name, by_name.get(s.name, sizes.get(s.name)))
                        for s in base.free_symbols}
                coef *= float(base.subs(subs))
    # an output index no factor carries: the term is constant along it
    for i in out:
        if not any(i in s for s in specs):
            parts.append(np.ones(size[i]))
            specs.append(i)
    # (single letters only in these tests)
    got = np.einsum(",".join(specs) + "->" + "".join(out), *parts) if parts else np.array(1.0)
    return coef * got


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_index_form_has_the_expressions_value(name):
    e = CASES[name]()
    vals = {v: VALS[v] for v in sg.variables(e)}
    np.testing.assert_allclose(evaluate_form(e, vals), sg.evaluate(e, vals), rtol=1e-10,
                               atol=1e-10)


def test_softmax_regression_hessian_reads_as_the_textbook_writes_it():
    N, d, K = "N", "d", "K"
    Xs, W, Ys = sg.matrix("X", (N, d)), sg.matrix("W", (d, K)), sg.matrix("Y", (N, K))
    L = -sg.sum(Ys * sg.log(sg.softmax(Xs @ W, axis=1)))
    text = sg.index_notation(sg.hessian(L, W), "H")
    assert text == (
        "H[i, j, k, l] = Σ_n (δ[j, l] - P[n, l]) P[n, j] X[n, i] X[n, k] s[n]\n"
        "  where P = softmax(X W, axis=1)\n"
        "        s = sum(Y, axis=1)")
    assert "I(" not in text  # the identity that seeded it is gone
    tex = sg.index_notation(sg.hessian(L, W), "H", latex=True)
    assert tex.startswith(r"{H}_{i j k l} = \sum_{n} \left(\delta_{j l} - {P}_{n,l}\right)")
    vals = {Xs: rng.normal(size=(7, 3)), W: rng.normal(size=(3, 4)),
            Ys: rng.dirichlet(np.ones(4), 7)}
    h = sg.hessian(L, W)
    np.testing.assert_allclose(evaluate_form(h, vals), sg.evaluate(h, vals), atol=1e-12)


def test_named_values_scalars_and_sizes():
    # (variables of this test's own: a name given to a value is kept by the value, which
    # every later construction of it returns, in other tests too)
    W = sg.matrix("W_nm", ("d", "K"))
    Xs = sg.matrix("X_nm", ("N", "d"))
    P = sg.softmax(Xs @ W, axis=1).named("P")
    lam = sg.scalar("lam")
    L = -sg.mean(sg.log(P)) + lam / 2.0 * sg.sum(W * W)
    h = sg.hessian(L, W)
    text = sg.index_notation(h, "H")
    assert text.splitlines()[0].startswith("H[i, j, k, l] = ")
    assert "lam δ[i, k] δ[j, l]" in text and "P[n, j]" in text and "/N" in text
    assert "  where P = softmax(X_nm W_nm, axis=1)" in text  # a named value: name, definition
    vals = {Xs: rng.normal(size=(5, 3)), W: rng.normal(size=(3, 2)), lam: 0.3}
    np.testing.assert_allclose(evaluate_form(h, vals), sg.evaluate(h, vals), atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda: sg.jacobian(A.T @ A, A),
    lambda: sg.jacobian(sg.outer(sg.diagonal(A @ A.T), sg.sum(A, axis=0)), A),
    lambda: sg.broadcast_to(sg.sum(A, axis=1, keepdims=True), (3, 4)),
    lambda: sg.grad(sg.sum(Y * sg.log_softmax(X @ A, axis=1)), A),
    lambda: sg.jacobian(sg.expand_dims(sg.trace(A @ A.T), 0), A),
    lambda: 2.0 * sg.diag(sg.sum(A * A, axis=1)),
    # relu's derivative (a gate) reads as a product with step(...) (found by review: the
    # Jacobian was one array, I(3, 4) ⊙ step(A))
    lambda: sg.jacobian(sg.relu(A), A),
    lambda: sg.jacobian(sg.maximum(A, 0.5), A),
    lambda: sg.hessian(sg.sum(sg.relu(X @ A) ** 2.0), A),
    # a weighted Gram matrix X^T diag(d) X (one node: the journey found it one array)
    lambda: sg.hessian(sg.sum(sg.log(1 + sg.exp(X @ u))), u),
], ids=["A^T A", "outer of reductions", "broadcast", "gradient", "trace", "diag", "relu",
        "maximum", "relu Hessian", "gram"])
def test_other_index_expressions(make):
    e = make()
    vals = {v: VALS[v] for v in sg.variables(e)}
    np.testing.assert_allclose(evaluate_form(e, vals), sg.evaluate(e, vals), atol=1e-10)
    text = sg.index_notation(e)
    assert "I(" not in text and "diag(" not in text, text


def test_an_expression_without_index_ops_is_one_array():
    x = sg.vector("x", 3)
    assert sg.index_notation(sg.tanh(x), "y") == "y[i] = A[i]\n  where A = tanh(x)"
    assert sg.index_notation(sg.scalar("a") * 2.0) == "F = 2 a"


def test_bad_input_is_a_clear_error():
    with pytest.raises(TypeError, match="index_notation: expected an expression, got list"):
        sg.index_notation([A])


@given(st.data())
@settings(max_examples=max(1, settings.default.max_examples // 5), deadline=None)
def test_random_hessians_and_jacobians_read_as_their_values(data):
    e = data.draw(dags(tensor=True, max_ops=6), label="e")
    mats = [w for w in sg.variables(e) if w.ndim == 2]
    assume(mats)
    w = mats[0]
    f = to_scalar(e)
    ws = sg.variables(f)
    vals = data.draw(points(ws), label="point")
    assume(point_is_safe(f, vals))
    for out in [sg.hessian(f, w)] + ([sg.jacobian(e, w)] if e.ndim else []):
        note(sg.index_notation(out))
        want = np.asarray(sg.evaluate(out, vals), dtype=float)
        got = evaluate_form(out, vals)
        scale = 1.0 + np.max(np.abs(want), initial=0.0)
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8 * scale)


def test_a_value_that_does_not_read_as_index_notation_is_an_array():
    """A deep chain multiplies out into too many terms: part of it stays an array, defined
    below (its temporaries one per line), and no created name is the left-hand side's or an
    index's."""
    M, x = sg.matrix("M", (3, 3)), sg.vector("x", 3)
    h = x
    for _ in range(8):
        h = sg.tanh(M @ h)
    H = sg.hessian(sg.sum(h), M)
    text = sg.index_notation(H, "H")
    assert text.startswith("H[i, j, k, l] = ")
    assert " =\n          t1 = " in text
    names = [line.split(" = ")[0].split()[-1] for line in text.splitlines()[1:]
             if " = " in line and not line.startswith(" " * 10)]
    assert "H" not in names and not set(names) & set("ijklnmpqrstuvwxyz")
    vals = {M: rng.normal(size=(3, 3)) / 2, x: rng.normal(size=3)}
    np.testing.assert_allclose(evaluate_form(H, vals), sg.evaluate(H, vals), atol=1e-12)


def test_names_never_clash():
    """Found by review: a named value and a created array, a named value and an index, a
    named value and a variable, a size and a variable, each printed as one letter (and sympy
    multiplied them as one: P^2 for two values)."""
    Xs, W = sg.matrix("X_cl", ("N", "d")), sg.matrix("W_cl", ("d", "K"))
    vals = {Xs: rng.normal(size=(4, 3)), W: rng.normal(size=(3, 2))}
    cases = [sg.sum(sg.softmax(Xs @ W, axis=1) * sg.tanh(Xs @ W).named("P"), axis=1),
             sg.grad(sg.sum(sg.exp(Xs @ W).named("A") * sg.tanh(Xs @ W)), W),
             sg.grad(sg.sum(sg.tanh(Xs @ W).named("n") ** 2.0), W),
             sg.grad(sg.sum(sg.exp(Xs @ W).named("X_cl")), W)]
    for e in cases:
        np.testing.assert_allclose(evaluate_form(e, vals), sg.evaluate(e, vals), atol=1e-12)
        text = sg.index_notation(e, "H")
        defined = [ln.split(" = ")[0].split()[-1] for ln in text.splitlines()[1:]]
        assert len(set(defined)) == len(defined) and "X_cl" not in defined, text
    N = sg.scalar("N")  # a variable named as a size
    h = sg.hessian(sg.mean(sg.tanh(X @ A) ** 2.0) / N, A)
    vals = {X: VALS[X], A: VALS[A], N: 1.7}
    np.testing.assert_allclose(evaluate_form(h, vals), sg.evaluate(h, vals), atol=1e-12)


def test_the_left_hand_side_is_an_identifier_that_names_nothing_else():
    with pytest.raises(ValueError, match="not a valid Python identifier"):
        sg.index_notation(A @ A.T, "H[i]")
    with pytest.raises(ValueError, match="'A' is already a name in the expression"):
        sg.index_notation(A @ A.T, "A")
    assert sg.index_notation(A @ A.T).startswith("F[i, j] = ")
    assert sg.index_notation(sg.matrix("F", (2, 2)) * 2.0).startswith("G[i, j] = 2 F[i, j]")
    assert sg.index_notation(A @ A.T, "H_1", latex=True).startswith("{H_{1}}_{i j} = ")
    assert "inf" in sg.index_notation(sg.jacobian(A / 0.0, A))  # (not sympy's zoo)


def test_the_expressions_own_name_is_the_default_left_hand_side():
    Xz = sg.matrix("X_own", (3, 2))
    assert sg.index_notation((Xz @ Xz.T).named("G_own")).startswith("G_own[i, j] = Σ_")
    # an expression that is one array: that array gets a letter, not the left-hand side's
    assert sg.index_notation(sg.tanh(Xz).named("T_own")) == \
        "T_own[i, j] = A[i, j]\n  where A = tanh(X_own)"


def test_definitions_use_the_index_forms_names():
    """Found by review: a where line printed a value by the name it was given with .named,
    which the formula used for another value (A = sigmoid(Q), Q = tanh(x), where the
    sigmoid's operand was exp(x), also named Q); variables and sizes keep their names first,
    and one that cannot is defined."""
    x = sg.vector("x_df", 3)
    u, w = sg.tanh(x).named("Q_df"), sg.exp(x).named("Q_df")
    text = sg.index_notation(u * sg.sigmoid(w))
    assert "A = sigmoid(exp(x_df))" in text and "Q_df = tanh(x_df)" in text
    p = sg.vector("p_df", 3)
    assert sg.index_notation(sg.exp(sg.tanh(x).named("p_df")) * p) == \
        "F[i] = A[i] p_df[i]\n  where A = exp(tanh(x_df))"
    N = sg.scalar("N")
    v = sg.vector("v_df", "N")
    text = sg.index_notation(sg.mean(v) + N * v)
    assert text == "F[i] = Σ_n v_df[n]/N + A v_df[i]\n  where A = the variable N"
    vals = {v: np.arange(1.0, 5.0), N: 0.5}
    e = sg.mean(v) + N * v
    np.testing.assert_allclose(evaluate_form(e, vals), sg.evaluate(e, vals))


def test_values_that_print_alike_get_letters_of_their_own():
    # found by review: created arrays were named by their text, and two constants of 100
    # entries (printed const(100,)) or tanh of two variables named v shared one letter
    Am = sg.matrix("A_pa", (3, 100))
    c1, c2 = np.ones(100), np.ones(100)
    c1[5] = c2[7] = 3.0
    e = Am * c1 + (Am * Am) * c2
    vals = {Am: rng.normal(size=(3, 100))}
    np.testing.assert_allclose(evaluate_form(e, vals), sg.evaluate(e, vals), atol=1e-12)
    v3, v4 = sg.vector("v_pa", 3), sg.vector("v_pa", 4)
    assert sg.index_notation(sg.outer(sg.tanh(v3), sg.tanh(v4))).startswith(
        "F[i, j] = A[i] B[j]")


def test_the_notations_own_symbols_are_nobody_elses():
    """Found by review: a variable named δ (or delta, in LaTeX) printed as the Kronecker
    delta, δ was taken as the left-hand side, a created array took the letter I (which the
    where lines show as the identity I(3, 4)), and LaTeX wrote W1 and W_1 alike."""
    W, Ys = sg.matrix("W_ns", (3, 4)), sg.matrix("Y_ns", ("N", 4))
    D = sg.matrix("δ", ("N", 3))
    h = sg.hessian(-sg.sum(Ys * sg.log_softmax(D @ W, axis=1)), W)
    text = sg.index_notation(h, "H")
    assert "where A = the variable δ" in text and "δ[n" not in text
    vals = {D: rng.normal(size=(5, 3)), W: rng.normal(size=(3, 4)),
            Ys: rng.dirichlet(np.ones(4), 5)}
    np.testing.assert_allclose(evaluate_form(h, vals), sg.evaluate(h, vals), atol=1e-12)
    with pytest.raises(ValueError, match="reads as the notation's own"):
        sg.index_notation(sg.jacobian(W * W, W), "δ")
    M = sg.matrix("M_ns", (3, 3))  # (one inside a definition only: a letter there too)
    for nm in ("δ", "I"):
        text = sg.index_notation(sg.jacobian(sg.tanh(M @ sg.matrix(nm, (3, 3))), M), "J")
        assert f"the variable {nm}" in text and f"M_ns {nm})" not in text, text
    assert sg.index_notation(sg.jacobian(W * np.inf, W), "J") == \
        "J[i, j, k, l] = inf δ[i, k] δ[j, l]"  # (an inf coefficient raised OverflowError)
    tex = sg.index_notation(sg.jacobian(sg.matrix("delta", (3, 4)) * W, W), latex=True)
    assert r"A = \text{the variable }delta" in tex
    W1, W_1 = sg.matrix("W1", (3, 4)), sg.matrix("W_1", (3, 4))
    tex = sg.index_notation(sg.jacobian(W1 * W1 * W_1, W1), latex=True)
    assert r"{\mathrm{W1}}_{i,j} {W_{1}}_{i,j}" in tex
    S = sg.matrix("sigma", (3, 4))  # (σ is the sigmoid, unless a variable is called sigma)
    tex = sg.index_notation(sg.jacobian(sg.sigmoid(W) * S, W), latex=True)
    assert r"{\sigma}_{i,j}" in tex and r"\operatorname{sigmoid}\left(W_{ns}\right)" in tex
    U, a = sg.matrix("U_ns", (4, 3)), sg.scalar("a_ns")
    Z = sg.matrix("X_ns", ("N", 3)) @ (W * W) @ U @ W  # (many arrays: letters beyond I)
    letters = [ln.split(" = ")[0].split()[-1] for ln in sg.index_notation(
        sg.hessian(sg.sum(1 / (1 + Z * Z) * (1 / (1 + Z * Z))) / a, W), "H").splitlines()]
    assert "J" in letters and "I" not in letters


def test_a_named_value_a_definition_shows_is_defined_too():
    """Found by review: where A = 1 - tanh(Q)**2, and Q was never defined."""
    M = sg.matrix("M_nd", (3, 3))
    Q = (M @ M).named("Q_nd")
    text = sg.index_notation(sg.jacobian(sg.tanh(Q), M), "J")
    assert "where A = 1 - tanh(Q_nd)**2\n        Q_nd = M_nd M_nd" in text


def test_zeros_coefficients_and_letters_read_as_a_textbook_writes_them():
    X_, W = sg.matrix("X_zc", ("N", 3)), sg.matrix("W_zc", (3, 4))
    assert sg.index_notation(sg.hessian(sg.sum(X_ @ W), W), "H") == "H[i, j, k, l] = 0"
    assert sg.index_notation(sg.hessian(sg.sum(W * W * W) / 9.0, W), "H") == \
        "H[i, j, k, l] = 2 δ[i, k] δ[j, l] W_zc[i, j]/3"  # (said 0.666666666666667)
    # a sum over 3 entries is not Σ_n next to a size N (n is N's letter)
    text = sg.index_notation(sg.hessian(sg.sum(X_ @ W) * sg.sum(W ** 2), W), "H")
    assert "Σ_n" not in text and "Σ_m" in text
    with pytest.raises(TypeError, match="latex must be True or False"):
        sg.index_notation(W, latex="yes")


def test_output_letters_move_aside_for_a_variable_so_named_and_decimals_stay():
    # (mutation testing: an output letter equal to a variable's name, and a coefficient read
    # as a fraction with a loose tolerance, passed)
    i = sg.vector("i", 3)
    assert sg.index_notation(sg.exp(i) * i) == "F[j] = A[j] i[j]\n  where A = exp(i)"
    assert sg.index_notation(0.1234 * sg.matrix("X_dc", (2, 3))) == "F[i, j] = 0.1234 X_dc[i, j]"


def test_coefficients_minus_signs_brackets_and_sigma_subscripts_as_printed():
    """Found by mutation testing: a coefficient 1/13 read with a coarse denominator bound
    (0.0769230769230769), '+ -C' left unmerged, a summed sum without brackets, the LaTeX
    subscript of a double sum in doubled braces, a name beginning with Σ accepted, an output
    index for an axis of size 1, and a short scalar factor taken out as an array A."""
    v = sg.vector("v_cm", 13)
    assert sg.index_notation((1 / 13) * v) == "F[i] = v_cm[i]/13"
    A, B, C = sg.matrix("A_cm", (3, 4)), sg.matrix("B_cm", (4, 5)), sg.matrix("C_cm", (3, 5))
    D, E = sg.matrix("D_cm", (3, 4)), sg.matrix("E_cm", (4, 5))
    assert sg.index_notation(A @ B - C) == "F[i, j] = Σ_n A_cm[i, n] B_cm[n, j] - C_cm[i, j]"
    assert sg.index_notation(A @ B + D @ E) == \
        "F[i, j] = Σ_n (A_cm[i, n] B_cm[n, j] + D_cm[i, n] E_cm[n, j])"
    X_ = sg.matrix("X_cm", (3, 4))
    assert sg.index_notation(sg.sum(X_) * X_, latex=True) == \
        r"{F}_{i j} = \sum_{n,m} {X_{cm}}_{i,j} {X_{cm}}_{n,m}"
    with pytest.raises(ValueError, match="name 'Σv' reads as the notation's own"):
        sg.index_notation(2 * sg.vector("v_cm3", 3), "Σv")
    assert sg.index_notation(A @ sg.matrix("B_cm1", (4, 1))) == "F[i] = Σ_n A_cm[i, n] B_cm1[n]"
    x, y = sg.scalars("x_cm y_cm")
    assert sg.index_notation(sg.tanh(x**2 + x * y + 1) * sg.vector("v_cm3", 3)) == \
        "F[i] = tanh(x_cm^2 + x_cm y_cm + 1) v_cm3[i]"


def test_a_subtracted_sum_reads_with_its_minus_before_the_sigma():
    # (a review: C - A B read "C[i, j] + Σ_n -A[i, n] B[n, j]")
    A, B, C = sg.matrix("A_ms", (3, 4)), sg.matrix("B_ms", (4, 5)), sg.matrix("C_ms", (3, 5))
    assert sg.index_notation(C - A @ B) == "F[i, j] = C_ms[i, j] - Σ_n A_ms[i, n] B_ms[n, j]"
    assert sg.index_notation(-(A @ B)) == "F[i, j] = -Σ_n A_ms[i, n] B_ms[n, j]"
    assert sg.index_notation(C - A @ B, latex=True) == \
        r"{F}_{i j} = {C_{ms}}_{i,j} - \sum_{n} {A_{ms}}_{i,n} {B_{ms}}_{n,j}"
