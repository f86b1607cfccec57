"""sg.explain: the chain-rule trace reads like the lecture and its values are the gradient."""

from __future__ import annotations

import io

import numpy as np
import pytest
import sympy

import symgrad as sg


def scalar_mlp():
    # the lecture's names: explain's output is written in them
    x, y, u, c, w, b = sg.scalars("x y u c w b")
    phi = sg.sigmoid(u * x + c).named("phi")
    mu = sg.sigmoid(w * phi + b).named("mu")
    return dict(x=x, y=y, u=u, c=c, w=w, b=b, C=sg.bce(mu, y))


AT = {"x": 0.5, "y": 1.0, "u": 0.7, "c": -0.3, "w": 1.3, "b": 0.2}


def values(m):
    return {m[k]: v for k, v in AT.items()}


def test_dC_dw_reads_as_the_lecture_writes_it():
    m = scalar_mlp()
    ex = sg.explain(sg.grad(m["C"], m["w"]), name="C", show=False)
    text = ex.text
    assert "dC/dw = dC/dmu * dmu/d(mu_pre) * d(mu_pre)/dw" in text
    lines = text.split("\n")
    # the chain-rule product and its simplified result
    chain = lines[lines.index("chain rule:") + 1:]
    assert chain[1].strip() == "= (mu - y)/(mu*(1 - mu)) * mu*(1 - mu) * phi"
    assert chain[2].strip() == "= (mu - y)*phi"
    # one line per step, each named after the ops it passes
    assert [s.lhs for s in ex.steps] == ["delta_mu_pre", "dC/dw"]
    assert ex.steps[0].ops == ["bce", "sigmoid"]
    assert ex.steps[0].value == "mu - y"
    assert ex.steps[1].ops == ["add", "mul"]
    # the forward definitions name the pre-activations
    assert "mu_pre  = w*phi + b" in text
    assert "mu      = sigmoid(mu_pre)" in text


def test_step_values_are_the_gradient():
    m = scalar_mlp()
    params = [m[k] for k in "ucwb"]
    ex = sg.explain(m["C"], params, show=False)
    vals = values(m)
    got = {s.lhs: sg.evaluate(s.expr, vals) for s in ex.steps}
    for v, g in zip(params, sg.grad(m["C"], params)):
        # df/du, or dC/du where another test named an equal cost C (names are global)
        (lhs,) = [k for k in got if k.startswith("d") and k.endswith(f"/d{v.attrs['vname']}")]
        assert got[lhs] == pytest.approx(sg.evaluate(g, vals), rel=1e-12)
    # delta_mu_pre = dC/d(w*phi + b) = mu - y
    mu = sg.evaluate(sg.sigmoid(m["w"] * sg.sigmoid(m["u"] * m["x"] + m["c"]) + m["b"]), vals)
    assert got["delta_mu_pre"] == pytest.approx(mu - AT["y"], rel=1e-12)


def test_latex():
    m = scalar_mlp()
    ex = sg.explain(sg.grad(m["C"], m["u"]), name="C", show=False)
    tex = ex.latex
    assert tex.startswith("\\begin{aligned}") and tex.endswith("\\end{aligned}")
    assert r"\delta_{\mu_{pre}} &= \frac{\mu - y}{\mu \left(1 - \mu\right)}" in tex
    assert r"\frac{\partial C}{\partial u} &= \delta_{\phi_{pre}} x" in tex
    assert r"\text{bce, sigmoid}" in tex
    assert ex._repr_latex_() == "$$" + tex + "$$"


def test_vector_mlp_is_the_backprop_delta_recursion():
    x = sg.vector("x", "d")
    U = sg.matrix("U", ("l", "d"))
    c, w = sg.vector("c", "l"), sg.vector("w", "l")
    b, y = sg.scalars("b y")
    phi = sg.sigmoid(U @ x + c).named("phi")
    mu = sg.sigmoid(w @ phi + b).named("mu")
    C = sg.bce(mu, y)
    ex = sg.explain(C, [U, c], name="C", show=False)
    assert [s.lhs for s in ex.steps] == ["delta_mu_pre", "delta_phi_pre", "dC/dU", "dC/dc"]
    rec = ex.steps[1]
    # delta = (w delta_out) ⊙ phi ⊙ (1 - phi)
    assert "delta_mu_pre" in rec.formula and "w" in rec.formula
    assert "phi ⊙ (1 - phi)" in rec.formula
    assert rec.ops == ["add", "matmul", "sigmoid"]
    assert ex.steps[2].formula == "delta_phi_pre x^T"
    assert ex.steps[3].formula == "delta_phi_pre"
    assert ex.chains == []  # no scalar chain to U: the deltas are the explanation
    rng = np.random.default_rng(0)
    vals = {x: rng.normal(size=3), U: rng.normal(size=(4, 3)), c: rng.normal(size=4),
            w: rng.normal(size=4), b: 0.1, y: 1.0}
    for s, g in zip(ex.steps[2:], sg.grad(C, [U, c])):
        np.testing.assert_allclose(sg.evaluate(s.expr, vals), sg.evaluate(g, vals),
                                   rtol=1e-12)


def test_unnamed_values_get_labels():
    u, c, w, b, x = sg.scalars("eu ec ew eb ex")
    f = sg.sigmoid(w * sg.sigmoid(u * x + c) + b)
    ex = sg.explain(sg.grad(f, u), show=False)
    text = ex.text
    assert "z1 = eu*ex + ec" in text
    assert "z2 = ew*sigmoid(z1) + eb" in text
    assert "f  = sigmoid(z2)" in text
    assert "df/deu = df/dz2 * dz2/dz1 * dz1/deu" in text
    vals = {u: 0.3, c: -0.2, w: 1.1, b: 0.4, x: 0.9}
    assert sg.evaluate(ex.steps[-1].expr, vals) == pytest.approx(
        sg.evaluate(sg.grad(f, u), vals), rel=1e-12)


def test_several_paths_and_shared_values():
    x = sg.scalar("ex2")
    s = sg.sin(x)
    f = x * sg.exp(x) + s * s + s
    ex = sg.explain(f, x, show=False)
    assert ex.chains == []  # several paths: no single product
    assert sg.evaluate(ex.steps[-1].expr, {x: 0.7}) == pytest.approx(
        sg.evaluate(sg.grad(f, x), {x: 0.7}), rel=1e-12)


def test_deep_chain():
    k = 25
    x = sg.scalar("dx0")
    ws = sg.scalars(" ".join(f"dw{i}" for i in range(k)))
    h = x
    for wi in ws:
        h = sg.tanh(wi * h + 0.1)
    ex = sg.explain(sg.grad(h**2, ws[0]), show=False)
    assert len(ex.steps) == k + 1
    vals = {x: 0.3, **{wi: 0.9 for wi in ws}}
    assert sg.evaluate(ex.steps[-1].expr, vals) == pytest.approx(
        sg.evaluate(sg.grad(h**2, ws[0]), vals), rel=1e-10)


def test_independent_and_stopped_variables():
    x, q = sg.scalars("ex3 eq3")
    ex = sg.explain(sg.exp(x), q, show=False)
    assert ex.steps[-1].lhs == "df/deq3" and ex.steps[-1].formula == "0"
    ex = sg.explain(sg.grad(sg.stop_gradient(x) * 2 + x, x), show=False)
    assert sg.evaluate(ex.steps[-1].expr, {x: 1.0}) == 1.0


def test_prints_unless_told_not_to(capsys):
    m = scalar_mlp()
    g = sg.grad(m["C"], m["b"])
    ex = sg.explain(g, name="C")
    assert capsys.readouterr().out == ex.text + "\n"
    sg.explain(g, show=False)
    assert capsys.readouterr().out == ""
    assert repr(ex).startswith("<symgrad explanation")


def test_errors():
    x = sg.scalar("ex4")
    with pytest.raises(ValueError, match="not returned by sg.grad"):
        sg.explain(sg.exp(x) + 1)  # never returned by sg.grad
    with pytest.raises(ValueError, match="must be a scalar"):
        sg.explain(sg.vector("ev", 3) * x, x)
    g1 = sg.grad(sg.exp(x) * 3, x)
    g2 = sg.grad(sg.sin(x) * 3, x)
    with pytest.raises(ValueError, match="different functions"):
        sg.explain([g1, g2])
    with pytest.raises(ValueError, match="not returned by sg.grad"):
        sg.explain(sg.hessian(sg.exp(x) * x, x))
    # a path for file= (it failed as "'str' object has no attribute 'write'"); a stream works
    with pytest.raises(TypeError, match=r"^explain: file must be a text stream .* got str "
                                        r"'out.txt'"):
        sg.explain(x * x, x, file="out.txt")
    with pytest.raises(TypeError, match=r"^explain: file must be a text stream .* BytesIO"):
        sg.explain(x * x, x, file=io.BytesIO())  # (a binary stream failed after the work)
    buf = io.StringIO()
    sg.explain(x * x, x, file=buf)
    assert "ex4" in buf.getvalue()


def test_from_sympy_sigmoid_factor_in_a_product():
    # explain simplifies f*(1 - f)*sigmoid(z): a sigmoid pattern inside a sympy product
    z = sg.scalar("ez")
    X = sympy.Symbol("ez", real=True)
    e = sg.from_sympy(3 * X / (1 + sympy.exp(-X)))
    assert sg.evaluate(e, {z: 0.3}) == pytest.approx(0.9 / (1 + np.exp(-0.3)))


def test_bce_of_an_unnamed_sigmoid_cancels_in_the_step():
    # the step (s - y) / s'(z) * s'(z) cancelled only when the sigmoid had a name
    a, y = sg.scalars("qa qy")
    ex = sg.explain(sg.bce(sg.sigmoid(2 * a + 1), y), a, show=False)
    assert "= sigmoid(z1) - qy\n" in ex.text + "\n"
    assert "= 2*(sigmoid(z1) - qy)" in ex.text


def test_bce_of_a_sigmoid_cancels_for_vectors_too():
    X, w, y = sg.matrix("qX", ("N", "d")), sg.vector("qw", "d"), sg.vector("qy", "N")
    ex = sg.explain(sg.mean(sg.bce(sg.sigmoid(X @ w), y)), w, show=False)
    assert "= (1/N) (sigmoid(z1) - qy)" in ex.text
    assert ex.text.rstrip().endswith("= (1/N) qX^T (sigmoid(z1) - qy)")


def test_simplify_cancels_a_quotient_by_the_factor_it_meets():
    v, d = sg.vector("qv", 3), sg.vector("qd", 3)
    x, y = sg.scalars("qx qy2")
    for e, want in [((v / d) * d, v), (d * (v / d), v), ((x / y) * y, x),
                    ((x / y) * sg.sum(d), None), ((v / x) * x, v)]:
        s = sg.simplify(e)
        if want is None:  # another factor: nothing cancels
            assert s is e or sg.count_nodes(s) <= sg.count_nodes(e)
            continue
        assert s is want, (str(e), str(s))
    # a scalar divisor of a vector: (x / y) * y stays x only where shapes agree
    assert sg.simplify((x / v) * v).shape == (3,)


def test_a_variable_named_f_leaves_the_function_another_name():
    # explain called the function f next to a variable f: "(1 - f**2)*f" read one value twice
    f, x = sg.scalars("f x")
    ex = sg.explain(sg.tanh(f * x), x, show=False)
    assert "dF/dx" in ex.text and "(1 - F**2)*f" in ex.text
    assert "df/dx" not in ex.text


def test_unnamed_intermediates_and_bad_names():
    """explain(f, sin(x)) raised a KeyError (an unnamed intermediate had no label), and
    explain(f, x + 1) printed "df/dx = 0", which reads as a wrong derivative wrt x."""
    x, y = sg.scalars("x_ex y_ex")
    ex = sg.explain(sg.sin(x) * sg.sin(x), sg.sin(x), show=False)
    assert "z1 = sin(x_ex)" in ex.text and "df/dz1 = 2*z1" in ex.text
    ex = sg.explain(sg.grad(sg.sin(x) * y, sg.sin(x)), show=False)
    assert "df/dz1 = y_ex" in ex.text
    ex = sg.explain(sg.sin(x) * y, x + 1, show=False)
    assert "df/d(x_ex + 1) = 0" in ex.text and "df/dx_ex" not in ex.text
    with pytest.raises(TypeError, match="explain: name must be a string"):
        sg.explain(sg.sin(x) * y, x, name=3, show=False)
    with pytest.raises(ValueError, match="explain: name 'a b'"):
        sg.explain(sg.sin(x) * y, x, name="a b", show=False)
    with pytest.raises(TypeError, match="to_dot: title must be a string"):
        sg.to_dot(sg.sin(x), title=3)


def test_a_path_without_a_derivative_gets_grads_own_message():
    # explain raised the op's bare "floor has no derivative with respect to its operand 1"
    x = sg.scalar("x_nd")
    with pytest.raises(sg.NonDifferentiableError, match=r"the path is x_nd -> floor -> mul.*"
                                                        r"stop_gradient"):
        sg.explain(sg.floor(x) * x, x, show=False)


def test_a_name_given_elsewhere_shows_its_formula():
    """Names are global: a derivative may hold a node named in another cell. explain printed
    that name without defining it (df/dx = cos(x) - x*s), or read it as another value of the
    same name (s = tanh(u) above df/dz = y*s, whose s is sigmoid(z))."""
    y, z, u, x = sg.scalars("y_gn z_gn u_gn x_gn")
    sg.sigmoid(z).named("s_gn")
    s = sg.tanh(u).named("s_gn")
    ex = sg.explain(sg.softplus(z) * y + s, z, show=False)
    assert ex.steps[-1].formula == "y_gn*sigmoid(z_gn)"
    sg.sin(x).named("sx_gn")
    ex = sg.explain(sg.cos(x) * x, x, show=False)
    assert "sx_gn" not in ex.text and "sin(x_gn)" in ex.steps[-1].formula


def test_f_among_the_variables_and_a_name_already_taken():
    x, y = sg.scalar("xfv"), sg.scalar("yfv")
    h = sg.sin(x).named("hfv")
    ex = sg.explain(h, [h, x], show=False)  # dh/dh was dropped
    assert [(s.lhs, s.formula) for s in ex.steps] == [("dhfv/dhfv", "1"),
                                                       ("dhfv/dxfv", "cos(xfv)")]
    ex = sg.explain(y, [x, y], show=False)  # f was a variable: "df/df = 1"
    assert [s.lhs for s in ex.steps] == ["df/dxfv", "df/dyfv"]
    assert "with respect to xfv, yfv" in ex.title
    with pytest.raises(ValueError, match="explain: name 'xfv' is a variable or named value"):
        sg.explain(sg.exp(x * y), x, name="xfv")


def test_explain_a_size_checked_at_call_time():
    # v (n,) times sum(A, 1) (m,) needs m = n when called; explain's chain rule handed the
    # sum an (n,) cotangent without the check sg.grad adds, a ShapeError naming reshape
    v = sg.vector("v", "n")
    A = sg.matrix("A", ("m", "n"))
    f = sg.sum(v * sg.sum(A, axis=1))
    ex = sg.explain(f, A, show=False)
    vals = {v: np.arange(3.0), A: np.zeros((3, 3))}
    np.testing.assert_array_equal(sg.evaluate(ex.steps[-1].expr, vals),
                                  sg.evaluate(sg.grad(f, A), vals))
    assert "df/dA" in str(sg.explain(sg.grad(f, A), show=False))


def test_explain_with_respect_to_a_constant_names_the_constant():
    # it was labelled x, the fallback name, and read df/dx = 0 next to the real df/dx
    x, y = sg.scalars("x y")
    text = str(sg.explain(sg.sin(x) * y, [x, sg.const(2.0)], show=False))
    assert "df/d(2) = 0" in text and text.count("df/dx ") == 1


def test_chain_rule_latex_separates_a_number_from_the_factor_before_it():
    # "2 2 q q" read as 22 q q (a probe of the derivations)
    w = sg.scalar("w_cd")
    q = sg.exp(w).named("q_cd")
    r = (q * q).named("r_cd")
    ex = sg.explain(2 * r, w, name="C", show=False)
    assert ex.latex.splitlines()[-2] == r"&= 2 \cdot 2 q_{cd} q_{cd} = 4 q_{cd}^{2}"
    assert "= 2 * 2*q_cd * q_cd" in ex.text


def test_chain_rule_latex_separates_a_number_from_a_fraction_after_it():
    # 2 \frac{1}{7} q reads as two and a seventh (a review probe)
    w = sg.scalar("w_cf")
    q = sg.exp(w).named("q_cf")
    r = (q / 7.0).named("r_cf")
    ex = sg.explain(2 * r, w, name="C", show=False)
    assert r"2 \cdot \frac{1}{7} q_{cf}" in ex.latex


def test_a_difference_in_a_chain_keeps_its_brackets_and_a_shared_value_its_step():
    """Mutation testing found neither checked: step(z1) - step(-z1), the derivative of abs,
    bracketed inside a product, and a value used twice (x*y in u*w + u) given its own step."""
    w, x, y = sg.scalars("w_xb x_xb y_xb")
    text = sg.explain(sg.sin(sg.abs(w * x)), [w], show=False).text
    assert "* (step(z1) - step(-z1)) *" in text, text
    u = x * y
    text = sg.explain(u * w + u, [x], show=False).text
    assert "z1 = x_xb*y_xb" in text and "delta_z1" in text, text


def test_a_negative_factor_is_bracketed_and_a_delta_equal_to_its_formula_said_once():
    """Found by mutation testing: the chain rule of sin(-3 w) printed cos(z1) * -3, and a delta
    whose filled-in value reads as its formula repeated it on a line of its own."""
    w = sg.scalar("w")
    ex = sg.explain(sg.sin(-3 * w), w, show=False)
    assert ex.text.endswith("  df/dw = df/dz1 * dz1/dw\n        = cos(z1) * (-3)\n"
                            "        = -3*cos(z1)"), ex.text
    assert ex.latex.splitlines()[-2] == \
        r"&= \cos\left(z_{1}\right) \left(-3\right) = \left(-3\right) \cos\left(z_{1}\right)"
    ex = sg.explain(sg.cos(sg.sin(w)), w, show=False)
    assert "backward (delta_v = df/dv):\n  delta_z1 = -sin(z1)    [cos]\n" \
           "  df/dw    = delta_z1*cos(w)    [sin]\n" \
           "           = -sin(z1)*cos(w)\n\n" in ex.text, ex.text
    assert r"\delta_{z_{1}} &= -\sin\left(z_{1}\right) && \text{cos} \\" "\n" \
           r"\frac{\partial f}{\partial w} &= \delta_{z_{1}}" in ex.latex, ex.latex


def test_names_of_the_function_and_of_intermediates_skip_the_variables_names():
    """Found by mutation testing: with variables f, F, L, g, h and f1 the function was named
    f1 (df1/df1), and beside a variable delta_z1 an intermediate z1 made its delta delta_z1."""
    f_, F_, L_, g_, h_, f1 = sg.scalars("f F L g h f1")
    text = sg.explain(f_ * F_ + L_ * g_ + h_ * f1, f1, show=False).text
    assert text.startswith("df2/df1, by the chain rule (reverse mode):\n\nforward:\n"
                           "  f2 = f*F + L*g + h*f1\n"), text
    w, d = sg.scalars("w delta_z1")
    text = sg.explain(sg.sin(2 * w + d), w, show=False).text
    assert "forward:\n  z2 = 2*w + delta_z1\n  f  = sin(z2)\n\n" in text, text
    assert "  delta_z2 = cos(z2)    [sin]\n" in text and "delta_z1 =" not in text, text


def test_the_delta_note_only_where_a_delta_is_shown():
    # (mutation testing: "backward (delta_v = df/dv):" above a backward pass with no delta)
    w, x = sg.scalars("w x")
    assert sg.explain(w * x, w, show=False).text == (
        "df/dw, by the chain rule (reverse mode):\n\nforward:\n  f = w*x\n\n"
        "backward:\n  df/dw = x    [mul]")


def test_small_filled_in_values_are_simplified():
    # (mutation testing: a simplification limit of 3 nodes left z2*(1 - z2)/z2 for 1 - z2 and
    # did not gather x*exp(w)*exp(z1)/z2 + exp(z1)*exp(w)/z2)
    w, x, y = sg.scalars("w x y")
    text = sg.explain(sg.log(sg.sigmoid(w * x + y)), w, show=False).text
    assert "  delta_z1 = delta_z2*z2*(1 - z2)    [sigmoid]\n           = 1 - z2\n" in text, text
    assert text.endswith("        = (1 - z2)*x"), text
    text = sg.explain(sg.log(sg.exp(w) * sg.exp(x * w)), w, show=False).text
    assert text.endswith("           = (1 + x)*exp(z1)*exp(w)/z2"), text


def test_an_inner_value_named_as_the_function_gets_a_name_of_its_own():
    # h = sigmoid(y).named("L") inside L = tanh(h x).named("L"): both read L, so tanh's
    # 1 - L**2 and sigmoid's L*(1 - L) were one symbol, and the printed product was 0.379
    # where dL/dy is 0.298 (a probe)
    x, y = sg.scalars("x_in y_in")
    L = sg.tanh(sg.sigmoid(y).named("L") * x).named("L")
    text = sg.explain(L, y, show=False).text
    assert "forward:\n  L_2   = sigmoid(y_in)\n  L_pre = L_2*x_in\n  L     = tanh(L_pre)\n" \
        in text, text
    assert "= (1 - L**2) * x_in * L_2*(1 - L_2)\n" in text, text
    X, Y = 2.0, -1.0
    s = 1 / (1 + np.exp(-Y))
    t = np.tanh(X * s)
    assert sg.evaluate(sg.grad(L, y), {x: X, y: Y}) == pytest.approx((1 - t**2) * X * s * (1 - s))


def test_a_function_that_is_a_variable_or_a_constant_has_its_forward_line():
    # sg.explain(x, x) printed an empty "forward:" section (f never defined); x.named("L")
    # was called f (a probe)
    x, y = sg.scalars("x_fv y_fv")
    assert sg.explain(x, x, show=False).text == (
        "df/dx_fv, by the chain rule (reverse mode):\n\nforward:\n  f = x_fv\n\n"
        "backward:\n  df/d(x_fv) = 1")
    assert "forward:\n  f = x_fv\n\nbackward:\n  df/d(y_fv) = 0" in \
        sg.explain(x, y, show=False).text
    assert "forward:\n  f = 2\n" in sg.explain(sg.const(2.0), x, show=False).text
    text = sg.explain(x.named("L"), x, show=False).text
    assert text.startswith("dL/dx_fv, by the chain rule (reverse mode):\n\nforward:\n"
                           "  L = x_fv\n"), text
    assert sg.explain(x, x, show=False).latex.startswith("\\begin{aligned}\nf &= x_{fv}")


def test_a_users_name_like_a_delta_or_a_pre_label_is_not_reused():
    # a value named delta_phi_pre: phi's pre-activation was labelled phi_pre and its delta
    # delta_phi_pre, the user's value; "delta_phi_pre = delta_phi_pre*exp(phi)..." read false
    x, u, c = sg.scalars("x_dn u_dn c_dn")
    q = (u * x).named("delta_phi_dn_pre")
    phi = sg.sigmoid(q + c).named("phi_dn")
    text = sg.explain(sg.exp(phi) * q, [u, c], show=False).text
    lhs = [ln.split(" = ")[0].strip() for ln in text.splitlines() if " = " in ln]
    assert lhs.count("delta_phi_dn_pre") == 1  # its own forward line only
    assert "phi_dn_pre" not in [s for s in lhs if s != "delta_phi_dn_pre"]
    # a delta whose name a variable has: d<f>_d<label>
    d = sg.scalar("delta_k_dn")
    k = sg.tanh(u * x).named("k_dn")
    g = k * k * d + sg.exp(k)
    ex = sg.explain(g, [k, d], show=False)
    names = [ln.split(" = ")[0].strip() for ln in ex.text.splitlines() if " = " in ln]
    assert "delta_k_dn" not in names[names.index("f") + 1:] if "f" in names else True
