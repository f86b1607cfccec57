"""The backprop lecture, end to end: the single-hidden-unit MLP, the vector MLP, Hessians."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import symgrad as sg
from tests.helpers import numeric_grad

X0 = dict(x=0.5, y=1.0, u=0.7, c=-0.3, w=1.3, b=0.2)


def _scalar_mlp():
    x, y, u, c, w, b = sg.scalars("x y u c w b")
    phi = sg.sigmoid(u * x + c).named("phi")
    mu = sg.sigmoid(w * phi + b).named("mu")
    C = sg.bce(mu, y)
    return (x, y, u, c, w, b), phi, mu, C


def _closed_forms(x, y, u, c, w, b):
    phi = 1 / (1 + np.exp(-(u * x + c)))
    mu = 1 / (1 + np.exp(-(w * phi + b)))
    d = mu - y
    return d * w * phi * (1 - phi) * x, d * w * phi * (1 - phi), d * phi, d


def test_lecture_forms_print_in_named_nodes():
    (x, y, u, c, w, b), phi, mu, C = _scalar_mlp()
    dU, dc, dw, db = sg.grad(C, [u, c, w, b])
    assert str(sg.simplify(dw)) == "(mu - y)*phi"
    assert str(sg.simplify(db)) == "mu - y"
    assert str(sg.simplify(dU)) == "(mu - y)*w*phi*(1 - phi)*x"
    assert str(sg.simplify(dc)) == "(mu - y)*w*phi*(1 - phi)"
    # "But we already computed that!": the four gradients share one (mu - y) node
    shared = [n for n in sg.topo_order([dU, dc, dw, db]) if str(n) == "mu - y"]
    assert len(shared) == 1
    assert "mu" in sg.latex(dw) and r"\phi" in sg.latex(dw)


def test_lecture_forms_symbolically_in_sympy():
    (x, y, u, c, w, b), phi, mu, C = _scalar_mlp()
    grads = sg.grad(C, [u, c, w, b])
    sx, sy, su, sc, sw, sb = sympy.symbols("x y u c w b", real=True)
    sphi = 1 / (1 + sympy.exp(-(su * sx + sc)))
    smu = 1 / (1 + sympy.exp(-(sw * sphi + sb)))
    lecture = [(smu - sy) * sw * sphi * (1 - sphi) * sx, (smu - sy) * sw * sphi * (1 - sphi),
               (smu - sy) * sphi, smu - sy]
    for g, want in zip(grads, lecture):
        expanded = sg.to_sympy(g)  # the fully expanded formula in x, y, u, c, w, b
        assert expanded.free_symbols <= {sx, sy, su, sc, sw, sb}
        assert sympy.simplify(expanded - want) == 0
    # and against sympy's own derivative of the cost
    sC = sg.to_sympy(C)
    for g, s in zip(grads, (su, sc, sw, sb)):
        assert sympy.simplify(sg.to_sympy(g) - sympy.diff(sC, s)) == 0


def test_lecture_forms_numerically():
    (x, y, u, c, w, b), phi, mu, C = _scalar_mlp()
    grads = sg.grad(C, [u, c, w, b])
    env = {x: X0["x"], y: X0["y"], u: X0["u"], c: X0["c"], w: X0["w"], b: X0["b"]}
    got = sg.evaluate(grads, env)
    np.testing.assert_allclose(got, _closed_forms(**X0), rtol=1e-12)
    for v, g in zip((u, c, w, b), got):
        assert abs(numeric_grad(C, v, env) - g) < 1e-8


def test_compile_scalar_mlp_floats_and_batches():
    (x, y, u, c, w, b), phi, mu, C = _scalar_mlp()
    dU, dc, dw, db = sg.grad(C, [u, c, w, b])
    f = sg.compile([C, dU, dc, dw, db], [x, y, u, c, w, b])
    assert "def " in f.source and "math" not in f.source.split("(")[0]
    out = f(X0["x"], X0["y"], X0["u"], X0["c"], X0["w"], X0["b"])
    assert isinstance(out, tuple) and len(out) == 5
    np.testing.assert_allclose(out[1:], _closed_forms(**X0), rtol=1e-12)
    # a batch of x, y with scalar parameters gives per-sample values
    xs = np.array([0.5, -1.0, 2.0])
    ys = np.array([1.0, 0.0, 1.0])
    batch = f(xs, ys, X0["u"], X0["c"], X0["w"], X0["b"])
    assert all(arr.shape == (3,) for arr in batch)
    for i in range(3):
        single = f(float(xs[i]), float(ys[i]), X0["u"], X0["c"], X0["w"], X0["b"])
        np.testing.assert_allclose([a[i] for a in batch], single, rtol=1e-12)
    # ints and numpy scalars are accepted too
    np.testing.assert_allclose(f(0.5, 1, 0.7, -0.3, 1.3, np.float64(0.2)), out, rtol=1e-12)


def test_one_output_returns_one_array():
    (x, y, u, c, w, b), phi, mu, C = _scalar_mlp()
    f = sg.compile(C, [x, y, u, c, w, b])
    assert isinstance(f(0.5, 1.0, 0.7, -0.3, 1.3, 0.2), float)
    assert f(np.ones(4), np.zeros(4), 0.7, -0.3, 1.3, 0.2).shape == (4,)


def test_hessian_scalar_mlp_symmetric_and_matches_sympy():
    (x, y, u, c, w, b), phi, mu, C = _scalar_mlp()
    params = [u, c, w, b]
    H = sg.hessian(C, params)
    assert len(H) == 4 and all(len(r) == 4 for r in H)
    env = {x: 0.5, y: 1.0, u: 0.7, c: -0.3, w: 1.3, b: 0.2}
    Hv = np.array([sg.evaluate(row, env) for row in H])
    np.testing.assert_allclose(Hv, Hv.T, rtol=1e-12, atol=1e-14)
    syms = sympy.symbols("u c w b", real=True)
    sub = {sympy.Symbol(k, real=True): v for k, v in X0.items()}
    Hs = sympy.hessian(sg.to_sympy(C), syms)
    want = np.array(Hs.subs(sub).evalf(), dtype=float)
    np.testing.assert_allclose(Hv, want, rtol=1e-9)


def test_third_derivative_by_nesting_grad():
    x = sg.scalar("x")
    s = sg.sigmoid(x)
    d3 = sg.grad(sg.grad(sg.grad(s, x), x), x)
    sx = sympy.Symbol("x", real=True)
    want = sympy.diff(1 / (1 + sympy.exp(-sx)), sx, 3)
    for at in (-2.0, 0.0, 0.3, 4.0):
        assert abs(sg.evaluate(d3, {x: at}) - float(want.subs(sx, at))) < 1e-12


def _vector_mlp(d, l):
    x = sg.vector("x", d)
    U = sg.matrix("U", (l, d))
    c = sg.vector("c", l)
    w = sg.vector("w", l)
    b, y = sg.scalars("b y")
    phi = sg.sigmoid(U @ x + c).named("phi")
    mu = sg.sigmoid(w @ phi + b).named("mu")
    return (x, U, c, w, b, y), phi, mu, sg.bce(mu, y)


@pytest.mark.parametrize("sizes", [("d", "l"), (5, 3)])
def test_vector_mlp_equations_1_and_2(sizes):
    (x, U, c, w, b, y), phi, mu, C = _vector_mlp(*sizes)
    gU, gc, gw, gb = sg.grad(C, [U, c, w, b])
    assert gU.shape == U.shape and gc.shape == c.shape and gw.shape == w.shape and gb.shape == ()
    rng = np.random.default_rng(3)
    vals = {x: rng.normal(size=5), U: rng.normal(size=(3, 5)), c: rng.normal(size=3),
            w: rng.normal(size=3), b: 0.1, y: 1.0}
    got = sg.evaluate([gU, gc, gw, gb], vals)
    ph = 1 / (1 + np.exp(-(vals[U] @ vals[x] + vals[c])))
    m = 1 / (1 + np.exp(-(vals[w] @ ph + vals[b])))
    delta = (m - vals[y]) * (vals[w] * ph * (1 - ph))
    np.testing.assert_allclose(got[0], np.outer(delta, vals[x]), rtol=1e-12)  # eq (1)
    np.testing.assert_allclose(got[1], delta, rtol=1e-12)  # eq (2)
    np.testing.assert_allclose(got[2], (m - vals[y]) * ph, rtol=1e-12)
    np.testing.assert_allclose(got[3], m - vals[y], rtol=1e-12)
    for v, g in zip((U, c, w, b), got):
        np.testing.assert_allclose(g, numeric_grad(C, v, vals), rtol=1e-6, atol=1e-9)


def test_vector_mlp_on_a_batch_mean_loss():
    d, l = "d", "l"
    X = sg.matrix("X", ("N", d))
    Y = sg.vector("Y", "N")
    U = sg.matrix("U", (l, d))
    c, w = sg.vector("c", l), sg.vector("w", l)
    b = sg.scalar("b")
    H = sg.sigmoid(X @ U.T + c)
    M = sg.sigmoid(H @ w + b)
    L = sg.mean(sg.bce(M, Y))
    grads = sg.grad(L, [U, c, w, b])
    f = sg.compile([L] + grads, [X, Y, U, c, w, b])
    rng = np.random.default_rng(0)
    vals = [rng.normal(size=(7, 4)), (rng.random(7) > 0.5) * 1.0, rng.normal(size=(3, 4)),
            rng.normal(size=3), rng.normal(size=3), 0.2]
    out = f(*vals)
    Xv, Yv, Uv, cv, wv, bv = vals
    Hv = 1 / (1 + np.exp(-(Xv @ Uv.T + cv)))
    Mv = 1 / (1 + np.exp(-(Hv @ wv + bv)))
    dz = (Mv - Yv) / 7
    dA = np.outer(dz, wv) * Hv * (1 - Hv)
    np.testing.assert_allclose(out[1], dA.T @ Xv, rtol=1e-10)
    np.testing.assert_allclose(out[2], dA.sum(0), rtol=1e-10)
    np.testing.assert_allclose(out[3], Hv.T @ dz, rtol=1e-10)
    np.testing.assert_allclose(out[4], dz.sum(), rtol=1e-10)
    loss = np.mean(-Yv * np.log(Mv) - (1 - Yv) * np.log(1 - Mv))
    np.testing.assert_allclose(out[0], loss, rtol=1e-12)


def test_vector_jacobian_and_hessian_shapes_and_values():
    (x, U, c, w, b, y), phi, mu, C = _vector_mlp(4, 3)
    J = sg.jacobian(phi, U)
    assert J.shape == (3, 3, 4)
    Hw = sg.hessian(C, w)
    assert Hw.shape == (3, 3)
    rng = np.random.default_rng(5)
    vals = {x: rng.normal(size=4), U: rng.normal(size=(3, 4)), c: rng.normal(size=3),
            w: rng.normal(size=3), b: 0.1, y: 0.0}
    np.testing.assert_allclose(sg.evaluate(J, vals), numeric_grad(phi, U, vals),
                               rtol=1e-6, atol=1e-9)
    Hv = sg.evaluate(Hw, vals)
    np.testing.assert_allclose(Hv, Hv.T, atol=1e-14)
    np.testing.assert_allclose(Hv, numeric_grad(sg.grad(C, w), w, vals), rtol=1e-6, atol=1e-9)
    Hs = sg.hessian(C, [U, w])
    assert Hs[0][1].shape == (3, 4, 3) and Hs[1][0].shape == (3, 3, 4)
    np.testing.assert_allclose(sg.evaluate(Hs[0][1], vals),
                               np.transpose(sg.evaluate(Hs[1][0], vals), (1, 2, 0)), atol=1e-12)


def test_lecture_text_tags_blank_lines_and_a_zero_finite_difference_error():
    """Found by mutation testing: the vector gradients tagged (2) dC/dU and (1) dC/dc against
    the lecture's numbering, the indented sg.explain traces' blank lines indented to
    whitespace, and a check_grad error of 0 printed as a largest relative error of 0e+00."""
    from symgrad.lecture import _fd_error, lecture
    assert _fd_error(0.0) == "every difference within their rounding noise"
    assert _fd_error(6e-9) == "largest relative error 6e-09"
    for text in (lecture(), lecture(latex=True)):
        lines = text.splitlines()
        assert not [ln for ln in lines if ln and not ln.strip()]
        assert "0e+00" not in text
    lines = lecture().splitlines()
    assert [ln.split(" = ")[0] for ln in lines if ln.startswith(("  (1) ", "  (2) "))] == \
        ["  (1) dC/dU", "  (2) dC/dc"]
    assert "\n    dC/du, by the chain rule (reverse mode):\n\n    forward:\n" in "\n".join(lines)


def test_the_latex_lecture_writes_its_derivatives_and_names_in_latex():
    # section 4 wrote dC/dU = \left(\mu - y\right)... and phi = \sigma(...): text in front of LaTeX
    from symgrad.lecture import lecture

    text = lecture(latex=True)
    assert r"(1) \frac{\partial C}{\partial U} = " in text
    assert r"\phi = \sigma\left(U x + c\right)" in text
    assert r"\frac{\partial C}{\partial b} = " in text
    formulas = [ln for ln in text.splitlines() if "\\" in ln and " = " in ln]
    assert not [ln for ln in formulas if "dC/d" in ln.split(" = ")[0]]
