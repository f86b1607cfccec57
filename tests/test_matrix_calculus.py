"""Matrix calculus: Jacobians and Hessians as one matrix expression (issue 3).

Every matrix-form derivative is checked against the elementwise truth: sympy differentiating
the scalarised expression entry by entry on small concrete shapes, and central finite
differences. Structure (node counts, no loops in generated code, the Gram/syrk lowering) and
printing are tested too; timing is not (benchmarks/w3_logreg_hessian.py measures it).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sympy
from sympy.matrices.expressions import HadamardProduct, MatrixExpr, MatrixSymbol, Transpose
from sympy.matrices.expressions.diagonal import DiagMatrix

import symgrad as sg
from symgrad.graph import topo_order
from symgrad.lecture import vector_mlp as lecture_vector_mlp
from symgrad.ops.gram import nonneg
from tests.helpers import assert_grad_fd, numeric_grad

rng = np.random.default_rng(11)


# ------------------------------------------------------------------ elementwise truth (sympy)
def sym_entries(name: str, shape: tuple) -> sympy.Matrix:
    """A sympy matrix of scalar symbols name_i (vectors, as columns) or name_i_j."""
    if len(shape) == 1:
        return sympy.Matrix(shape[0], 1, lambda i, j: sympy.Symbol(f"{name}_{i}", real=True))
    return sympy.Matrix(*shape, lambda i, j: sympy.Symbol(f"{name}_{i}_{j}", real=True))


def substitution(symbols: dict, values: dict) -> dict:
    """{scalar symbol: value} for the entries of each sympy matrix in ``symbols``."""
    out = {}
    for var, mat in symbols.items():
        val = np.asarray(values[var], dtype=float).reshape(mat.shape)
        for idx in np.ndindex(*mat.shape):
            out[mat[idx]] = float(val[idx])
    return out


def sympy_gradient(f, wrt: sympy.Matrix, subs: dict, shape: tuple) -> np.ndarray:
    """d f / d wrt, entry by entry, evaluated at ``subs``, in the layout ``shape``."""
    vals = [float(sympy.diff(f, s).subs(subs)) for s in wrt]  # row-major over wrt's entries
    return np.array(vals).reshape(shape)


def sympy_hessian(f, wrt: sympy.Matrix, subs: dict, shape: tuple) -> np.ndarray:
    entries = list(wrt)
    grads = [sympy.diff(f, s) for s in entries]
    vals = [[float(sympy.diff(g, s).subs(subs)) for s in entries] for g in grads]
    return np.array(vals).reshape(shape + shape)


def logsumexp_sym(z):
    return sympy.log(sum(sympy.exp(v) for v in z))


# ------------------------------------------------------------------ the identities
n_, m_ = 3, 4
a = sg.vector("a", n_)
x = sg.vector("x", n_)
b = sg.vector("b", m_)
A = sg.matrix("A", (n_, n_))
M = sg.matrix("M", (m_, n_))
Xm = sg.matrix("Xm", (n_, n_))
z = sg.vector("z", n_)
t = sg.vector("t", n_)
label = sg.scalar("label")

VALUES = {a: rng.normal(size=n_), x: rng.normal(size=n_), b: rng.normal(size=m_),
          A: rng.normal(size=(n_, n_)), M: rng.normal(size=(m_, n_)),
          Xm: rng.normal(size=(n_, n_)), z: rng.normal(size=n_),
          t: np.eye(n_)[2], label: 2.0}
S = {a: sym_entries("a", (n_,)), x: sym_entries("x", (n_,)), b: sym_entries("b", (m_,)),
     A: sym_entries("A", (n_, n_)), M: sym_entries("M", (m_, n_)),
     Xm: sym_entries("X", (n_, n_)), z: sym_entries("z", (n_,)), t: sym_entries("t", (n_,))}
SUBS = substitution(S, VALUES)


def _np(v):
    return VALUES[v]


# name -> (symgrad f, wrt, sympy f, textbook value of the derivative (numpy), printed form)
IDENTITIES = {
    "d(a^T x)/dx = a": (
        lambda: a @ x, x, lambda: (S[a].T * S[x])[0, 0], lambda: _np(a), "a"),
    "d(x^T A x)/dx = (A + A^T) x": (
        lambda: x @ A @ x, x, lambda: (S[x].T * S[A] * S[x])[0, 0],
        lambda: (_np(A) + _np(A).T) @ _np(x), "(A + A^T) x"),
    "d||Mx - b||^2/dx = 2 M^T (M x - b)": (
        lambda: sg.sum((M @ x - b) ** 2), x,
        lambda: sum(r**2 for r in S[M] * S[x] - S[b]),
        lambda: 2 * _np(M).T @ (_np(M) @ _np(x) - _np(b)), "2 M^T (M x - b)"),
    "d tr(A X)/dX = A^T": (
        lambda: sg.trace(A @ Xm), Xm, lambda: (S[A] * S[Xm]).trace(),
        lambda: _np(A).T, "A^T"),
    "softmax cross-entropy: d/dz = softmax(z) - onehot": (
        lambda: -sg.take(sg.log_softmax(z), label), z,
        lambda: -(S[z][2] - logsumexp_sym(S[z])),
        lambda: np.exp(_np(z)) / np.exp(_np(z)).sum() - np.eye(n_)[2], "softmax(z) - e_label"),
    "softmax cross-entropy with a target vector t": (
        lambda: -sg.sum(t * sg.log_softmax(z)), z,
        lambda: -sum(S[t][i] * (S[z][i] - logsumexp_sym(S[z])) for i in range(n_)),
        lambda: np.exp(_np(z)) / np.exp(_np(z)).sum() - _np(t), None),
}


@pytest.mark.parametrize("name", list(IDENTITIES))
def test_identity_gradient(name):
    build, wrt, build_sym, textbook, printed = IDENTITIES[name]
    f = build()
    g = sg.simplify(sg.grad(f, wrt))
    got = np.asarray(sg.evaluate(g, VALUES))
    assert got.shape == wrt.shape
    np.testing.assert_allclose(got, textbook(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, sympy_gradient(build_sym(), S[wrt], SUBS, wrt.shape),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, numeric_grad(f, wrt, VALUES), rtol=1e-6, atol=1e-8)
    if printed is not None:
        assert str(g) == printed


def test_gradient_of_a_linear_form_is_the_vector_itself():
    assert sg.grad(a @ x, x) is a
    g = sg.grad(sg.trace(A @ Xm), Xm)
    assert g.op.name == "transpose" and g.args[0] is A


def test_hessian_of_quadratic_form_is_A_plus_AT():
    H = sg.hessian(x @ A @ x, x)
    assert str(H) == "A + A^T"
    want = _np(A) + _np(A).T
    np.testing.assert_allclose(sg.evaluate(H, VALUES), want, rtol=1e-12)
    sym = sympy_hessian((S[x].T * S[A] * S[x])[0, 0], S[x], SUBS, x.shape)
    np.testing.assert_allclose(sg.evaluate(H, VALUES), sym, rtol=1e-10, atol=1e-12)


def test_logsumexp_hessian_is_diag_p_minus_ppT():
    H = sg.hessian(sg.logsumexp(z), z)
    assert str(H) == "diag(softmax(z)) - softmax(z) softmax(z)^T"
    assert not any(n.op.name == "eye" for n in topo_order([H]))
    p = np.exp(_np(z)) / np.exp(_np(z)).sum()
    got = sg.evaluate(H, VALUES)
    np.testing.assert_allclose(got, np.diag(p) - np.outer(p, p), rtol=1e-10, atol=1e-12)
    sym = sympy_hessian(logsumexp_sym(S[z]), S[z], SUBS, z.shape)
    np.testing.assert_allclose(got, sym, rtol=1e-9, atol=1e-12)
    assert_grad_fd(sg.grad(sg.logsumexp(z), z), [z], VALUES)


# ------------------------------------------------------------------ logistic regression
def logreg(m="m", n="n"):
    X = sg.matrix("X", (m, n))
    y = sg.vector("y", m)
    w = sg.vector("w", n)
    return X, y, w, sg.sum(sg.log(1 + sg.exp(-y * (X @ w))))


def logreg_values(X, y, w, m, n, labels=True):
    r = np.random.default_rng(5)
    yv = np.where(r.random(m) < 0.5, -1.0, 1.0) if labels else r.normal(size=m)
    return {X: r.normal(size=(m, n)), y: yv, w: r.normal(size=n) / np.sqrt(n)}


def closed_form(vals, X, y, w):
    Xv, yv, wv = vals[X], vals[y], vals[w]
    s = 1 / (1 + np.exp(-yv * (Xv @ wv)))
    g = -Xv.T @ (yv * (1 - s))
    H = Xv.T @ ((yv * yv * s * (1 - s))[:, None] * Xv)
    return g, H


@pytest.mark.parametrize("labels", [True, False])
def test_logistic_regression_gradient_and_hessian_elementwise(labels):
    m, n = 4, 3
    X, y, w, f = logreg(m, n)
    vals = logreg_values(X, y, w, m, n, labels)
    g, H = sg.simplify([sg.grad(f, w), sg.hessian(f, w)])
    gv, Hv = sg.evaluate([g, H], vals)
    g_cf, H_cf = closed_form(vals, X, y, w)
    np.testing.assert_allclose(gv, g_cf, rtol=1e-10)
    np.testing.assert_allclose(Hv, H_cf, rtol=1e-10)
    # sympy, entry by entry, on the scalarised loss
    Xs, ys, ws = sym_entries("X", (m, n)), sym_entries("y", (m,)), sym_entries("w", (n,))
    subs = substitution({X: Xs, y: ys, w: ws}, vals)
    Xw = Xs * ws
    fs = sum(sympy.log(1 + sympy.exp(-ys[i] * Xw[i])) for i in range(m))
    np.testing.assert_allclose(gv, sympy_gradient(fs, ws, subs, (n,)), rtol=1e-10)
    np.testing.assert_allclose(Hv, sympy_hessian(fs, ws, subs, (n,)), rtol=1e-9)
    np.testing.assert_allclose(Hv, numeric_grad(g, w, vals), rtol=1e-6, atol=1e-8)


def test_logistic_regression_hessian_is_one_gram_node():
    X, y, w, f = logreg()
    H = sg.simplify(sg.hessian(f, w))
    assert H.op.name == "gram" and H.args[0] is X
    ops = {n.op.name for n in topo_order([H])}
    assert not ops & {"eye", "diag", "outer"}
    # exactly one matrix-vector product (X w) besides the Gram product itself
    assert sum(n.op.name == "matmul" for n in topo_order([H])) == 1
    text = str(H)
    assert text.startswith("X^T diag(") and text.endswith(") X")
    # σ(z) σ(-z), z = y ⊙ X w: the sigmoid's derivative at -z, each factor exact at every z
    # (σ(z) (1 - σ(z)), this once read, rounds to 0 above z = 37, while σ(-z) does not)
    assert "sigmoid(y ⊙ X w) ⊙ sigmoid(-(y ⊙ X w))" in text
    g = sg.simplify(sg.grad(f, w))
    assert str(g).startswith("-X^T (")


def test_hessian_node_count_does_not_depend_on_n():
    counts = {}
    for m, n in ((6, 3), (200, 100), (2000, 1000), ("m", "n")):
        X, y, w, f = logreg(m, n)
        H = sg.hessian(f, w)
        counts[m, n] = (H.graph.number_of_nodes(), sg.simplify(H).graph.number_of_nodes())
    assert len(set(counts.values())) == 1, counts
    assert counts["m", "n"][0] <= 12


def test_compiled_hessian_uses_syrk_and_no_python_loop():
    X, y, w, f = logreg()
    fn = sg.compile(sg.hessian(f, w), [w, X, y])
    src = fn.source
    for loop in ("for ", "while ", "range(", "map("):
        assert loop not in src
    assert "_xp.sqrt(" in src and ".T @ _z" in src  # Z^T Z, Z = sqrt(d) X: BLAS syrk
    assert "_xp.eye" not in src and "_rt.diag" not in src
    for m, n in ((7, 3), (60, 25)):
        vals = logreg_values(X, y, w, m, n)
        got = fn(vals[w], vals[X], vals[y])
        np.testing.assert_allclose(got, closed_form(vals, X, y, w)[1], rtol=1e-10, atol=1e-12)


def test_gram_without_known_sign_uses_the_closed_form():
    X, d = sg.matrix("X", ("m", "n")), sg.vector("d", "m")
    H = sg.matmul(sg.transpose(X) * d, X)
    assert H.op.name == "gram"
    src = sg.compile(H, [X, d]).source
    assert "sqrt" not in src and "[:, None] *" in src
    Xv, dv = rng.normal(size=(5, 3)), rng.normal(size=5)  # d of both signs
    np.testing.assert_allclose(sg.evaluate(H, {X: Xv, d: dv}), Xv.T @ (dv[:, None] * Xv),
                               rtol=1e-12)
    # the other way round: X^T (d[:, None] ⊙ X)
    H2 = sg.matmul(sg.transpose(X), sg.reshape(d, ("m", 1)) * X)
    assert H2 is H


def test_negations_cancel_in_products():
    u, v = sg.vector("u", 4), sg.vector("v", 4)
    e = (-v) * sg.sigmoid(u) * (-v)
    assert not any(n.op.name == "neg" for n in topo_order([e]))
    assert str(e) == "v ⊙ v ⊙ sigmoid(u)"


@pytest.mark.parametrize("build, want", [
    (lambda u, v: sg.exp(u), True),
    (lambda u, v: u * u, True),
    (lambda u, v: v * sg.functions.sigmoid_deriv(sg.sigmoid(u)) * v, True),
    (lambda u, v: (-v) * sg.sigmoid(u) * (-v), True),
    (lambda u, v: sg.functions.sigmoid_deriv(u), False),
    (lambda u, v: sg.functions.tanh_deriv(sg.tanh(u)), True),
    (lambda u, v: sg.functions.tanh_deriv(u), False),
    (lambda u, v: u**2, True),
    (lambda u, v: u**3, False),
    (lambda u, v: sg.exp(u) + u * u, True),
    (lambda u, v: sg.exp(u) - 1.0, False),
    (lambda u, v: sg.abs(u) / sg.softplus(v), True),
    (lambda u, v: u * v, False),
    (lambda u, v: -sg.exp(u), False),
    (lambda u, v: u, False),
    (lambda u, v: sg.softmax(u) * sg.relu(v), True),
])
def test_sign_analysis(build, want):
    u, v = sg.vector("u", 4), sg.vector("v", 4)
    e = build(u, v)
    assert nonneg(e) is want
    if want:  # and it is right where it says so
        vals = {u: rng.normal(size=4) * 3, v: rng.normal(size=4) * 3}
        assert np.all(np.asarray(sg.evaluate(e, vals)) >= 0)


# ------------------------------------------------------------------ gram op
def test_hessian_blocks_wrt_a_vector_and_a_matrix():
    m, n = 5, 3
    X, y, w, f = logreg(m, n)
    vals = logreg_values(X, y, w, m, n, labels=False)
    H = sg.hessian(f, [w, X])
    for i, p in enumerate([w, X]):
        for j, q in enumerate([w, X]):
            assert H[i][j].shape == p.shape + q.shape
            np.testing.assert_allclose(sg.evaluate(H[i][j], vals),
                                       numeric_grad(sg.grad(f, p), q, vals),
                                       rtol=1e-6, atol=1e-7)


def test_gram_derivatives_fd():
    X, d, C = sg.matrix("X", (4, 3)), sg.vector("d", 4), sg.matrix("C", (3, 3))
    vals = {X: rng.normal(size=(4, 3)), d: rng.normal(size=4), C: rng.normal(size=(3, 3))}
    G = sg.gram(X, d)
    np.testing.assert_allclose(sg.evaluate(G, vals),
                               vals[X].T @ np.diag(vals[d]) @ vals[X], rtol=1e-12)
    assert_grad_fd(G, [X, d], vals)  # 4-D and 3-D Jacobians: batch axes through the vjp
    assert_grad_fd(sg.sum(sg.tanh(G) * C), [X, d], vals)
    assert sg.transpose(G) is G


def test_third_derivative_through_gram():
    m, n = 5, 3
    X, y, w, f = logreg(m, n)
    vals = logreg_values(X, y, w, m, n)
    H = sg.hessian(f, w)
    T = sg.jacobian(H, w)
    assert T.shape == (n, n, n)
    np.testing.assert_allclose(sg.evaluate(T, vals), numeric_grad(H, w, vals),
                               rtol=1e-6, atol=1e-8)


def test_gram_shape_errors():
    X = sg.matrix("X", (4, 3))
    with pytest.raises(sg.ShapeError, match=r"gram: shapes \(4, 3\) and \(5,\)"):
        sg.gram(X, sg.vector("d", 5))
    with pytest.raises(sg.ShapeError, match="gram"):
        sg.gram(sg.vector("v", 4), sg.vector("d", 4))
    Xs, ds = sg.matrix("X", ("m", "n")), sg.vector("d", "k")
    fn = sg.compile(sg.gram(Xs, ds), [Xs, ds])
    with pytest.raises(sg.ShapeError, match="gram"):
        fn(np.ones((4, 3)), np.ones(5))


# ------------------------------------------------------------------ Jacobians and Hessians
p_, q_ = 3, 2
P = sg.matrix("P", (p_, q_))
Q = sg.matrix("Q", (q_, p_))
v = sg.vector("v", q_)
u = sg.vector("u", p_)
JVALS = {P: rng.normal(size=(p_, q_)), Q: rng.normal(size=(q_, p_)), v: rng.normal(size=q_),
         u: rng.normal(size=p_)}

FUNCS = {
    "tanh(P v)": lambda: sg.tanh(P @ v),
    "softmax(P v)": lambda: sg.softmax(P @ v),
    "P Q": lambda: P @ Q,
    "sigmoid(P) diag(v)": lambda: sg.sigmoid(P) * v,
    "outer(u, v)": lambda: sg.outer(u, sg.exp(v)),
    "u^T P v": lambda: u @ P @ v,
    "logsumexp(Q u)": lambda: sg.logsumexp(Q @ u),
    "gram(P, u)": lambda: sg.gram(P, u * u),
}


@pytest.mark.parametrize("name", list(FUNCS))
def test_jacobian_shapes_and_values(name):
    f = FUNCS[name]()
    for w in sg.variables(f):
        J = sg.jacobian(f, w)
        assert J.shape == f.shape + w.shape
        np.testing.assert_allclose(np.asarray(sg.evaluate(J, JVALS)),
                                   numeric_grad(f, w, JVALS), rtol=1e-6, atol=1e-8)


SCALAR_FUNCS = {
    "sum(tanh(P v)^2)": lambda: sg.sum(sg.tanh(P @ v) ** 2),
    "logsumexp(P v) + u^T P v": lambda: sg.logsumexp(P @ v) + u @ P @ v,
    "tr(P Q P Q)": lambda: sg.trace(P @ Q @ P @ Q),
    "logreg": lambda: sg.sum(sg.softplus(-u * (P @ v))),
    "sum(gram(P, exp(u)) ⊙ (Q Q^T))": lambda: sg.sum(sg.gram(P, sg.exp(u)) * (Q @ sg.transpose(Q))),
}


@pytest.mark.parametrize("name", list(SCALAR_FUNCS))
def test_hessians_wrt_vectors_and_matrices(name):
    f = SCALAR_FUNCS[name]()
    for w in sg.variables(f):
        H = sg.hessian(f, w)
        assert H.shape == w.shape + w.shape
        np.testing.assert_allclose(np.asarray(sg.evaluate(H, JVALS)),
                                   numeric_grad(sg.grad(f, w), w, JVALS), rtol=1e-6, atol=1e-7)


def test_identity_tensors_are_removed():
    Aa, xx = sg.matrix("A", ("n", "n")), sg.vector("x", "n")
    J = sg.jacobian(Aa @ xx, xx)
    assert J is Aa
    J2 = sg.jacobian(sg.tanh(Aa @ xx), xx)  # diag(1 - tanh^2) A, as a row scaling: O(n^2)
    ops = [n.op.name for n in topo_order([J2])]
    assert "eye" not in ops and "diag" not in ops
    assert ops.count("matmul") == 1
    assert str(J2) == "diag(1 - tanh(A x)**2) A"
    H = sg.hessian(sg.sum(sg.exp(xx)), xx)
    assert str(H) == "diag(exp(x))"


def test_jacobians_wrt_fewer_entries_hold_no_identity_of_f():
    """The Jacobian of a matrix-valued f wrt a scalar or a vector was a pass seeded by the
    identity of f's entries, f.shape + f.shape, summed away: tanh(b U) wrt b for U of 100 x 100
    held an identity of 10^8 entries (3.7 s; MemoryError at 300 x 300). It is now the
    transpose of reverse mode, seeded by the variable's identity: O(size of f)."""
    b, s = sg.scalar("b_jt"), sg.scalar("s_jt")
    for n in (3, 300, "n"):
        U, w = sg.matrix("U_jt", (n, n)), sg.vector("w_jt", n)
        f = sg.tanh(b * U) * sg.exp(s * w)
        Jb, Jw, Js = sg.jacobian(f, [b, w, s])
        assert (Jb.shape, Jw.shape, Js.shape) == ((n, n), (n, n, n), (n, n))
        for J in (Jb, Js):
            assert "eye" not in {m.op.name for m in topo_order([J])}
            assert "eye" not in sg.compile(J, [U, w, b, s]).source
    U, w = sg.matrix("U_jt", (3, 3)), sg.vector("w_jt", 3)
    f = sg.tanh(b * U) * sg.exp(s * w)
    vals = {U: rng.normal(size=(3, 3)), w: rng.normal(size=3), b: 0.7, s: -0.4}
    for x, J in zip([b, w, s, U], sg.jacobian(f, [b, w, s, U])):
        np.testing.assert_allclose(np.asarray(sg.evaluate(J, vals)), numeric_grad(f, x, vals),
                                   rtol=1e-6, atol=1e-8, err_msg=str(x))
    # an op without a derivative off the variable's path keeps the route (it took the identity
    # seed again: MemoryError at 300 x 300), and a gradient the route returns stays explained
    U300 = sg.matrix("U_jt", (300, 300))
    for f in (sg.tanh(b * U300) + sg.stop_gradient(sg.argmax(U300)),
              sg.tanh(b * U300) * sg.take(U300, sg.argmax(sg.sum(U300, axis=1)))):
        assert "eye" not in sg.compile(sg.jacobian(f, b), [U300, b]).source
    g = sg.grad(sg.sum(sg.exp(U) + 0.5 * U * U), U)
    assert sg.jacobian(g * b, b) is g and sg.origin(g)[0] == "grad"
    sg.explain(g, show=False)
    # a variable f does not depend on, or only through stop_gradient: the known zeros, as before
    c = sg.scalar("c_jt")
    z1, z2 = sg.jacobian(sg.tanh(b * U) + sg.stop_gradient(c), [s, c])
    assert sg.zero_reason(z1).startswith("zero") and sg.zero_reason(z2).startswith("disconn")
    assert z1.shape == z2.shape == (3, 3)


def test_hessian_blocks_of_a_matrix_and_a_scalar_come_from_the_scalars_row():
    """d2f/dU db for a matrix U listed before a scalar b was U's row's pass, seeded by U's
    identity (U.size**2 entries); the rows of fewer entries now go first, and the block is
    the mirror of b's, whatever the order of the list."""
    n = 40
    U, b, x = sg.matrix("U_hb", (n, n)), sg.scalar("b_hb"), sg.vector("x_hb", n)
    f = sg.sum(sg.tanh(b * (U @ x)))
    H = sg.hessian(f, [U, b])
    H2 = sg.hessian(f, [b, U])
    assert H[0][1] is H2[1][0] and H[1][0] is H2[0][1] and H[1][1] is H2[0][0]
    assert H[0][1].shape == (n, n) and H[1][1].shape == ()
    fn = sg.compile([H[0][1], H[1][1]], [U, b, x])
    assert "eye" not in fn.source
    Uv, xv = rng.normal(size=(n, n)) / n, rng.normal(size=n)
    g = sg.compile(sg.grad(f, U), [U, b, x])
    fd = (g(Uv, 0.5 + 1e-6, xv) - g(Uv, 0.5 - 1e-6, xv)) / 2e-6
    np.testing.assert_allclose(fn(Uv, 0.5, xv)[0], fd, rtol=1e-6, atol=1e-9)
    # with an intermediate value in the list, the rows keep the list's order: the value's row
    # first gave d2C/dw dmu from (mu - y)/(mu (1 - mu)), nan at sum(w) = 40
    w, y = sg.vector("w_hb", 2), sg.scalar("y_hb")
    mu = sg.sigmoid(sg.sum(w)).named("mu_hb")
    H = sg.hessian(sg.bce(mu, y), [w, mu])
    for wv in ([20.0, 20.0], [0.1, 0.2]):
        np.testing.assert_allclose(sg.evaluate(H[0][1], {w: np.array(wv), y: 0.3}), [1.0, 1.0])


def test_rewrites_terminate_and_stay_right_on_mixed_diagonal_products():
    # v ⊙ (diag(u) + B) is distributed only where the diagonal part stays diagonal; the
    # factoring rule would otherwise undo it forever
    n = 3
    Aa, xx, uu, s = sg.matrix("A", (n, n)), sg.vector("x", n), sg.vector("u", n), sg.scalar("s")
    f = sg.sum((Aa @ (s * (sg.diag(uu) @ Aa @ xx) + s * xx + xx))
               * (Aa.T @ ((Aa @ xx - uu) * (Aa @ xx - uu))))
    vals = {Aa: rng.normal(size=(n, n)), xx: rng.normal(size=n), uu: rng.normal(size=n),
            s: 0.7}
    H = sg.hessian(f, xx)
    np.testing.assert_allclose(sg.evaluate(H, vals), numeric_grad(sg.grad(f, xx), xx, vals),
                               rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ printing
def vector_mlp(d="d", l="l"):  # noqa: E741
    """The graph ``symgrad lecture`` prints: x, U, c, w, b, y and the loss C."""
    m = lecture_vector_mlp(d, l)
    return tuple(m[k] for k in ("x", "U", "c", "w", "b", "y", "C"))


def test_lecture_eq1_prints_in_matrix_notation():
    xv, U, c, w, bb, y, C = vector_mlp()
    g = sg.grad(C, U)
    assert str(g) == "(mu - y) (w ⊙ phi ⊙ (1 - phi)) x^T"
    assert sg.latex(g) == (r"\left(\mu - y\right) \left(w \odot \phi \odot \left(1 - \phi"
                           r"\right)\right) x^{T}")
    assert str(sg.grad(C, c)) == "(mu - y) (w ⊙ phi ⊙ (1 - phi))"
    assert str(sg.grad(C, xv)) == "(mu - y) U^T (w ⊙ phi ⊙ (1 - phi))"
    assert str(sg.grad(C, w)) == "(mu - y) phi"


def test_eq1_is_right():
    d, l = 3, 2  # noqa: E741
    xv, U, c, w, bb, y, C = vector_mlp(d, l)
    vals = {xv: rng.normal(size=d), U: rng.normal(size=(l, d)), c: rng.normal(size=l),
            w: rng.normal(size=l), bb: 0.3, y: 1.0}
    assert_grad_fd(C, [U, xv, c, w], vals)


def test_matrix_notation():
    Xx, d = sg.matrix("X", ("m", "n")), sg.vector("d", "m")
    xv, yv = sg.vector("x", "n"), sg.vector("y", "n")
    s = sg.scalar("s")
    assert str(sg.gram(Xx, d)) == "X^T diag(d) X"
    assert sg.latex(sg.gram(Xx, d)) == r"X^{T} \operatorname{diag}\left(d\right) X"
    assert str(sg.outer(xv, yv)) == "x y^T"
    assert str(Xx * xv) == "X diag(x)"
    assert str(sg.reshape(d, ("m", 1)) * Xx) == "diag(d) X"
    assert str(xv * s) == "s x"
    assert str(2.0 * xv) == "2 x"
    assert str(xv * yv) == "x ⊙ y"
    assert str(Xx @ (xv * yv)) == "X (x ⊙ y)"
    assert str((xv * yv) @ sg.transpose(Xx)) == "X (x ⊙ y)"  # v^T M is written M^T v
    assert str(sg.sum(xv)) == "sum(x)"
    assert str(sg.diag(xv)) == "diag(x)"
    assert sg.latex(xv * yv) == r"x \odot y"
    assert sg.latex(Xx * xv) == r"X \operatorname{diag}\left(x\right)"


# ------------------------------------------------------------------ to_sympy
def sympy_value(expr, values: dict) -> np.ndarray:
    """A sympy matrix expression evaluated at concrete values of its MatrixSymbols."""
    subs = {}
    for var, val in values.items():
        val = np.asarray(val, dtype=float)
        if var.ndim == 0:
            subs[sympy.Symbol(var.attrs["vname"], real=True)] = float(val)
            continue
        shape = var.shape if var.ndim == 2 else (var.shape[0], 1)
        subs[MatrixSymbol(var.attrs["vname"], *shape)] = sympy.ImmutableMatrix(
            val.reshape(shape))
    r = expr.subs(subs).doit()
    if isinstance(r, MatrixExpr):
        r = r.as_explicit()
    r = sympy.N(r)
    return np.array(r.tolist() if hasattr(r, "tolist") else r, dtype=float)


def test_to_sympy_gives_matrix_expressions():
    Xx, y, w, f = logreg()
    H = sg.hessian(f, w)
    s = sg.to_sympy(H)
    assert isinstance(s, MatrixExpr) and s.shape == (sympy.Symbol("n", integer=True,
                                                                   positive=True),) * 2
    assert s.has(DiagMatrix) and s.has(Transpose)
    assert s.has(MatrixSymbol("X", sympy.Symbol("m", integer=True, positive=True),
                              sympy.Symbol("n", integer=True, positive=True)))
    assert isinstance(sg.to_sympy(Xx * Xx), HadamardProduct)
    xv, U, c, w2, bb, y2, C = vector_mlp()
    eq1 = sg.to_sympy(sg.grad(C, U), keep_names=True)
    assert eq1.has(MatrixSymbol("phi", sympy.Symbol("l", integer=True, positive=True), 1))
    assert eq1.has(sympy.Symbol("mu", real=True))


@pytest.mark.parametrize("which", ["g", "H", "eq1", "lse_H", "outer", "jac_tanh"])
def test_to_sympy_values(which):
    if which in ("g", "H"):
        m, n = 3, 2
        X, y, w, f = logreg(m, n)
        vals = logreg_values(X, y, w, m, n, labels=False)
        e = sg.grad(f, w) if which == "g" else sg.hessian(f, w)
    elif which == "eq1":
        d, l = 2, 3  # noqa: E741
        xv, U, c, w, bb, y, C = vector_mlp(d, l)
        vals = {xv: rng.normal(size=d), U: rng.normal(size=(l, d)), c: rng.normal(size=l),
                w: rng.normal(size=l), bb: 0.3, y: 1.0}
        e = sg.grad(C, U)
    elif which == "lse_H":
        vals = {z: VALUES[z]}
        e = sg.hessian(sg.logsumexp(z), z)
    elif which == "outer":
        vals = {x: VALUES[x], a: VALUES[a]}
        e = sg.outer(x, sg.exp(a))
    else:
        vals = {A: VALUES[A], x: VALUES[x]}
        e = sg.jacobian(sg.tanh(A @ x), x)
    got = sympy_value(sg.to_sympy(e), vals)
    want = np.asarray(sg.evaluate(e, vals))
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ rules, one by one
def test_rules_give_equal_values():
    n = 4
    vv, ww = sg.vector("vv", n), sg.vector("ww", n)
    MM = sg.matrix("MM", (n, n))
    s = sg.scalar("s")
    vals = {vv: rng.normal(size=n), ww: rng.normal(size=n), MM: rng.normal(size=(n, n)),
            s: 0.7}
    V, W, Mv = vals[vv], vals[ww], vals[MM]
    eye = sg.eye(n)
    cases = [
        (sg.eye(n) * vv, np.eye(n) * V, "diag"),
        (sg.diag(vv) * ww, np.diag(V * W), "diag"),
        (sg.diag(vv) @ MM, np.diag(V) @ Mv, "mul"),
        (MM @ sg.diag(vv), Mv @ np.diag(V), "mul"),
        (sg.reshape(vv, (n, 1)) * ww, np.outer(V, W), "outer"),
        (((sg.transpose(MM) * vv) * ww) * vv, Mv.T * V * W * V, "mul"),
        ((s * vv) * ww, 0.7 * V * W, "mul"),
        (vv * (eye - sg.reshape(ww, (n, 1))), V * (np.eye(n) - W[:, None]), "sub"),
        (sg.sum(sg.diag(vv), axis=1), V, None),
        (sg.sum(sg.eye(n), axis=0), np.ones(n), None),
        (sg.outer(vv, ww) @ vv, np.outer(V, W) @ V, "mul"),
        (MM @ sg.outer(vv, ww), Mv @ np.outer(V, W), "outer"),
        (sg.diagonal(sg.outer(vv, ww)), V * W, "mul"),
        (sg.trace(sg.diag(vv)), V.sum(), "sum"),
        (sg.diag(vv) + sg.diag(ww), np.diag(V + W), "diag"),
        (vv @ MM, V @ Mv, "matmul"),
        ((2.0 * MM) @ vv, 2 * Mv @ V, "mul"),
        (sg.transpose(sg.outer(vv, ww)), np.outer(W, V), "outer"),
        (sg.sum(sg.outer(vv, ww), axis=0), np.outer(V, W).sum(0), "mul"),
    ]
    for e, want, op in cases:
        np.testing.assert_allclose(sg.evaluate(e, vals), want, rtol=1e-12, atol=1e-14,
                                   err_msg=str(e))
        if op is not None:
            assert e.op.name == op, (str(e), e.op.name)
    # a (1, 1) diagonal broadcasts to every entry: diag(v) ± diag(u) of a length-1 u is no
    # diagonal (the rewrite to diag(v ± u) gave 0 off the diagonal, where numpy gives ±u)
    u1 = sg.vector("u1_fold", 1)
    for e, want in [(sg.diag(vv) + sg.diag(u1), np.diag(V) + 5.0),
                    (sg.diag(vv) - sg.diag(u1), np.diag(V) - 5.0),
                    (sg.diag(u1) - sg.diag(vv), 5.0 - np.diag(V))]:
        np.testing.assert_allclose(sg.evaluate(e, {**vals, u1: np.array([5.0])}), want,
                                   err_msg=str(e))
    # reassociation: the small factors meet first, the big matrix is touched once
    e = ((sg.transpose(MM) * vv) * ww) * vv
    assert e.args[0].op.name == "transpose" and e.args[1].ndim == 1


# ------------------------------------------------------------------ the example
def test_newton_example_converges_and_matches_the_reference():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "examples/newton_logistic_regression.py"], cwd=root,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "converged in" in r.stdout and "FAIL" not in r.stdout
    assert "Hessian  = X^T diag(" in r.stdout


# The docs page (docs/matrix-calculus.md) shows its outputs in ```output blocks, which
# tests/test_docs.py runs and compares like every page's.


def test_a_weighted_product_of_two_different_matrices_is_no_gram_matrix():
    """(Y^T ⊙ d) X is Y^T diag(d) X, not X^T diag(d) X, and a gram of weights that may be
    negative (a minimum with a negative value) is the closed form, not Z^T Z of their square
    roots (mutation testing: a match on shapes alone, and minimum read as non-negative,
    passed)."""
    X, Y, d = sg.matrix("X_gm", (4, 2)), sg.matrix("Y_gm", (4, 2)), sg.vector("d_gm", 4)
    rng = np.random.default_rng(2)
    Xv, Yv, dv = rng.normal(size=(4, 2)), rng.normal(size=(4, 2)), rng.normal(size=4)
    e = (Y.T * d) @ X
    np.testing.assert_allclose(sg.evaluate(e, {X: Xv, Y: Yv, d: dv}), (Yv.T * dv) @ Xv,
                               rtol=1e-13)
    u = sg.vector("u_gm", 4)
    G = sg.gram(X, sg.minimum(sg.exp(u), u))
    uv = np.array([-1.0, 0.5, 2.0, -0.3])
    w = np.minimum(np.exp(uv), uv)
    np.testing.assert_allclose(sg.compile(G, [X, u])(Xv, uv), Xv.T @ (w[:, None] * Xv),
                               rtol=1e-13)


def test_an_odd_power_written_as_a_product_is_no_known_sign():
    """v ⊙ v ⊙ v has v's sign: a gram of it with a negative v is the closed form, not Z^T Z
    of square roots (nan) (found by mutation testing: a factor counted more than once was
    read as non-negative)."""
    X, v = sg.matrix("X_odd", (4, 3)), sg.vector("v_odd", 4)
    assert nonneg(v * v * v) is False and nonneg(v * v) is True
    Xv, vv = np.arange(12.0).reshape(4, 3), np.array([1.0, -2.0, 1.0, 1.0])
    got = sg.compile(sg.gram(X, v * v * v), [X, v])(Xv, vv)
    np.testing.assert_allclose(got, Xv.T @ (vv[:, None] ** 3 * Xv), rtol=1e-13)
    np.testing.assert_array_equal(got[0], [45.0, 36.0, 27.0])


def test_a_column_weighted_product_of_two_different_matrices_is_no_gram_matrix():
    """X^T (c ⊙ Y) with a column c and Y not X stays a product (found by mutation testing:
    the Gram rule matched on c's shape alone)."""
    X, Y, c = sg.matrix("X_cw", (4, 3)), sg.matrix("Y_cw", (4, 3)), sg.matrix("c_cw", (4, 1))
    e = sg.transpose(X) @ (c * Y)
    assert e.op.name == "matmul"
    r = np.random.default_rng(0)
    a, b, cc = r.random((4, 3)), r.random((4, 3)), r.random((4, 1))
    np.testing.assert_allclose(sg.evaluate(e, {X: a, Y: b, c: cc}), a.T @ (cc * b), rtol=1e-13)
    assert (sg.transpose(X) @ (c * X)).op.name == "gram"  # the same with X itself is one


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch", "jax", "dask"])
def test_diag_of_an_infinite_or_nan_entry_leaves_zeros_around_it(backend):
    # diag(v) was v[:, None] * eye: 0 * inf made the rest of an infinite entry's row nan (the
    # Hessian of sum(w / sigmoid(v)) at v = -800 was nan where it is 0); numpy's diag keeps 0
    if backend != "numpy":
        pytest.importorskip(backend)
    v = sg.vector("v_di", 3)
    x = np.array([np.inf, 1.0, np.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = np.asarray(sg.compile(sg.diag(v), [v], backend=backend)(x))
    np.testing.assert_array_equal(got, np.diag(x))
    if backend == "numpy":
        np.testing.assert_array_equal(sg.evaluate(sg.diag(v), {v: x}), np.diag(x))
        w = sg.vector("w_di", 3)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            H = sg.evaluate(sg.hessian(sg.sum(w / sg.sigmoid(v)), v),
                            {v: np.array([-800.0, 0.0, 1.0]), w: np.ones(3)})
        assert H[0, 1] == H[0, 2] == H[1, 0] == H[2, 0] == 0.0
