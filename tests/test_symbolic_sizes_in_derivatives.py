"""Derivatives of graphs whose symbolic sizes the forward graph checks at run time.

``w @ v`` with w of shape (n,) and v of shape (m,) builds, and checks n == m when it runs. Its
gradient wrt w is v: of shape (m,), where a gradient has its variable's shape (n,). The
reverse pass gives such a cotangent its node's shape (``fit_shape``), with the same check, so
the gradient neither has a wrong shape nor runs where ``f`` itself refuses to. Where a
concrete operand fixes a symbolic size (a (2,) constant times the (m,) row sums of X), the
cotangent has the number, and the pass gives it the symbolic size back rather than failing in
a reshape the user never wrote.
"""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from tests.helpers import assert_grad_fd

X = sg.matrix("X_ss", ("m", "n"))
w = sg.vector("w_ss", "n")
v = sg.vector("v_ss", "m")
c2 = sg.const(np.array([1.0, 2.0]))
rng = np.random.default_rng(3)


def test_the_gradient_has_its_variables_shape_and_fs_size_check():
    g = sg.grad(w @ v, w)
    assert g.shape == w.shape
    np.testing.assert_array_equal(sg.evaluate(g, {w: np.ones(3), v: np.arange(3.0)}),
                                  [0.0, 1.0, 2.0])
    # the message names the product the user wrote, as f's own does
    with pytest.raises(sg.ShapeError, match=r"matmul: shapes \(3,\) and \(4,\) do not fit \(m = 4 "
                                            r"from input v_ss, n = 3 from input w_ss\)"):
        sg.evaluate(g, {w: np.ones(3), v: np.arange(4.0)})
    f = sg.compile(g, [w, v])
    with pytest.raises(sg.ShapeError, match="do not fit"):
        f(np.ones(3), np.arange(4.0))


def test_the_gradient_of_a_trace_refuses_a_matrix_that_is_not_square():
    g = sg.grad(sg.trace(X), X)
    assert g.shape == X.shape
    np.testing.assert_array_equal(sg.evaluate(g, {X: np.ones((3, 3))}), np.eye(3))
    with pytest.raises(sg.ShapeError, match=r"\(m = 2 from input X_ss, n = 3 from input X_ss\)"):
        sg.evaluate(g, {X: np.ones((2, 3))})  # as f itself does


def test_hessian_and_other_layouts_keep_the_variables_shapes():
    H = sg.hessian((w @ v) ** 2, w)
    assert H.shape == ("n", "n")
    vv = np.arange(3.0)
    np.testing.assert_allclose(sg.evaluate(H, {w: np.ones(3), v: vv}), 2 * np.outer(vv, vv))
    P = sg.matrix("P_ss", ("p", "k"))
    g = sg.grad(sg.sum(P @ w), w)
    assert g.shape == ("n",)
    with pytest.raises(sg.ShapeError, match="do not fit"):
        sg.evaluate(g, {P: np.ones((2, 5)), w: np.ones(3)})
    g = sg.grad(sg.sum(sg.diag(w) @ X), X)
    assert g.shape == X.shape
    with pytest.raises(sg.ShapeError, match="size n is 5, fixed by input w_ss"):
        sg.evaluate(g, {w: np.ones(5), X: np.ones((2, 3))})


@pytest.mark.parametrize("build", [
    lambda: sg.sum(sg.sum(X, axis=1) * c2),
    lambda: sg.mean(sg.sum(X, axis=1) * c2),
    lambda: sg.sum(sg.logsumexp(X, axis=1) * c2),
    lambda: c2 @ sg.sum(X, axis=1),
    lambda: sg.sum(sg.tanh(X) * sg.reshape(c2, (2, 1))),
])
def test_a_concrete_operand_that_fixes_a_symbolic_size(build):
    f = build()
    g = sg.grad(f, X)
    assert g.shape == X.shape
    assert_grad_fd(f, [X], {X: rng.standard_normal((2, 3))})
    with pytest.raises(sg.ShapeError, match="m = 3 from input X_ss"):
        sg.evaluate(g, {X: np.ones((3, 3))})


def test_the_gradient_of_a_gradient_weighted_by_a_constant():
    A = sg.matrix("A_ss", ("n", "n"))
    g = sg.grad(sg.sum(sg.tanh(A * w)), w)
    f2 = sg.sum(g * sg.const(np.arange(1.0, 5.0)))
    h = sg.grad(f2, w)
    assert h.shape == w.shape
    assert_grad_fd(f2, [w], {A: rng.standard_normal((4, 4)), w: rng.standard_normal(4)})


def test_fit_shape_pairs_sizes_where_reshape_counts_entries():
    F = sg.functions
    N6 = sg.matrix("N6_ss", ("N", 6))
    with pytest.raises(sg.ShapeError, match=r"cannot reshape \(N, 6\) to \(6, M\)"):
        sg.reshape(N6, (6, "M"))
    e = F.fit_shape(N6, (6, "M"))  # N = 6 and M = 6: the entries stay where they are
    assert e.shape == (6, "M")
    with pytest.raises(sg.ShapeError,
                       match=r"fit_shape: sizes \(N, 6\) and \(5, 6, 2\) do not pair up"):
        F.fit_shape(N6, (5, 6, 2))
    col = F.fit_shape(c2, ("m", 1))
    assert str(col) == str(c2)  # a column, not a reshape that moves entries
    assert F.fit_shape(v, ("m",)) is v


def test_a_fitted_gradient_is_an_array_of_its_own():
    # fit_shape is a reshape: returned as is, grad(w @ v, w) was a view of the caller's v
    vals = np.arange(3.0)
    r = sg.compile(sg.grad(w @ v, w), [w, v])(np.ones(3), vals)
    assert not np.shares_memory(r, vals)
    t, g = sg.evaluate([sg.tanh(v), sg.grad(w @ sg.tanh(v), w)], {w: np.ones(3), v: vals})
    assert not np.shares_memory(t, g)


def test_sympy_says_why_it_has_no_form_for_a_size_fixed_at_run_time():
    # the (2, 1) constant matrix stood for the (m,) node, and sympy failed inside ("%d format:
    # a real number is required, not Symbol")
    g = sg.grad((v * v) @ c2, v)
    with pytest.raises(NotImplementedError, match=r"the sizes 2 and m are equal only at run time"):
        sg.to_sympy(g)
    assert sg.evaluate(sg.simplify(g), {v: np.array([1.0, 3.0])}).tolist() == [2.0, 12.0]


def test_a_size_mismatch_in_a_hessian_names_the_users_op():
    """Sizes k and n that must be equal: the Hessian's error named a derivative's reshaping
    of a cotangent, 'derivative: shapes (5, 5) and (5, 3)', where the gradient's names the
    matmul the user wrote."""
    X, w = sg.matrix("X_hm", ("m", "n")), sg.vector("w_hm", "k")
    f = sg.sum(sg.tanh(X @ w))
    for d in (sg.grad(f, w), sg.hessian(f, w)):
        with pytest.raises(sg.ShapeError, match=r"^matmul: shapes \(4, 3\) and \(5,\) do not"):
            sg.evaluate(d, {X: np.ones((4, 3)), w: np.ones(5)})


def test_an_identity_fitted_to_sizes_equal_at_run_time_is_not_multiplied_out():
    """A Hessian wrt w of size k through X of (m, n): the identity of k, fitted to (k, n), was
    multiplied by X^T (an O(n^2 m) product, and an I in the printed formula)."""
    X, w = sg.matrix("X_fi", ("m", "n")), sg.vector("w_fi", "k")
    f = sg.sum(sg.tanh(X @ w))
    H = sg.hessian(f, w)
    assert H.shape == ("k", "k")
    assert not str(H).startswith("I ")
    fn = sg.compile(H, [X, w])
    assert "eye" not in fn.source
    rng = np.random.default_rng(0)
    Xv, wv = rng.normal(size=(5, 3)), rng.normal(size=3)
    want = Xv.T @ np.diag(-2 * np.tanh(Xv @ wv) * (1 - np.tanh(Xv @ wv) ** 2)) @ Xv
    np.testing.assert_allclose(fn(Xv, wv), want, rtol=1e-12)


def test_broadcast_to_a_one_checks_a_named_size():
    """broadcast_to of a (n,) vector to (1,) gave numpy's raw ValueError at the call for
    n = 3: a named size brought to a 1 is checked to be 1."""
    v = sg.vector("v_b1", "n")
    b = sg.broadcast_to(v, (1,))
    with pytest.raises(sg.ShapeError, match=r"^broadcast_to: shapes \(3,\) and \(1,\)"):
        sg.evaluate(b, {v: np.arange(3.0)})
    np.testing.assert_array_equal(sg.evaluate(b, {v: np.array([4.0])}), [4.0])


def test_transposes_of_a_node_with_sizes_checked_at_the_call():
    """A symbolic (n, n) matrix plus a (3, 3) constant has its sizes checked at the call;
    rules that skipped such nodes left transpose(transpose(E)) as a transpose with identity
    axes, computed as a transpose: (Q + C).T.T gave (Q + C)^T, and a gradient through
    (D^T X)^T Q carried a wrong ^T (found by the differential probe, fixed by taking the
    rules back)."""
    rng = np.random.default_rng(1)
    Q, X, A = sg.matrix("Q_tt", ("n", "n")), sg.matrix("X_tt", ("m", "n")), \
        sg.matrix("A_tt", (2, 3))
    C, D, W = np.arange(9.0).reshape(3, 3), rng.standard_normal((2, 3)), \
        rng.standard_normal((3, 3))
    Qv, Xv, Av = rng.standard_normal((3, 3)), rng.standard_normal((2, 3)), \
        np.arange(6.0).reshape(2, 3)
    vals = {Q: Qv, X: Xv, A: Av}
    for e, want in [((Q + C).T.T, Qv + C), (((Q + C).T @ A.T).T, Av @ (Qv + C)),
                    ((A @ (Q + C).T).T, (Qv + C) @ Av.T)]:
        np.testing.assert_allclose(sg.evaluate(e, vals), want, err_msg=str(e))
    g = sg.grad(sg.sum(((D.T @ X).T @ Q) * W), Q)
    np.testing.assert_allclose(sg.evaluate(g, vals), (D.T @ Xv) @ W, rtol=1e-12)
