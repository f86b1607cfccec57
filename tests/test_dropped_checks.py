"""Size checks left for call time survive the rewrites that drop the nodes needing them.

A symbolic size that meets another size is checked when the function is called (``v + w3``, v of
(n,) and w3 of (3,), needs n = 3). A build-time rule, ``simplify`` or a derivative can replace
the graph by one that no longer holds that node (``0*u + w3`` is ``w3``); the result then
carries the checks in a ``guard`` node, so a call with sizes that do not fit fails, naming the
op the user wrote, instead of broadcasting to a wrong answer.
"""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.ops import REGISTRY
from tests.helpers import assert_grad_fd

v = sg.vector("v_dc", "n")
u = sg.vector("u_dc", "n")
u1 = sg.vector("u1_dc", 1)
w3 = sg.vector("w3_dc", 3)
A = sg.matrix("A_dc", ("n", "m"))
GUARD = REGISTRY["guard"]


def _guarded(e) -> bool:
    return any(n.op is GUARD for n in sg.topo_order([e]))


# (expression, its inputs, values whose sizes fit, the same with a size that does not,
#  the op the message names)
CASES = {
    "diag(v) @ u1 is v * u1": (lambda: sg.diag(v) @ u1, lambda: [v, u1],
                               [np.array([2.0]), np.array([3.0])],
                               [np.ones(3), np.array([3.0])], "matmul"),
    "sum(broadcast_to(v, (2, 1))) is 2 sum(v)": (
        lambda: sg.sum(sg.broadcast_to(v, (2, 1))), lambda: [v],
        [np.array([1.5])], [np.ones(3)], "broadcast_to"),
    "0*u + w3 is w3": (lambda: 0 * u + w3, lambda: [u, w3],
                       [np.ones(3), np.array([1.0, 2.0, 3.0])],
                       [np.ones(5), np.array([1.0, 2.0, 3.0])], "add"),
    "w3 * (0*v + 1) is w3": (lambda: w3 * (0 * v + 1.0), lambda: [v, w3],
                             [np.ones(3), np.array([1.0, 2.0, 3.0])],
                             [np.ones(4), np.array([1.0, 2.0, 3.0])], "mul"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_rewritten_graph_still_refuses_sizes_that_do_not_fit(case):
    build, ins, good, bad, op = CASES[case]
    e = build()
    assert _guarded(e)
    f = sg.compile(e, ins())
    want = sg.evaluate(build(), dict(zip(ins(), good)))
    np.testing.assert_allclose(f(*good), want)
    with pytest.raises(sg.ShapeError, match=rf"^{op}: shapes .* do not fit \(.* from input "):
        f(*bad)
    with pytest.raises(sg.ShapeError, match=rf"^{op}: "):
        sg.evaluate(e, dict(zip(ins(), bad)))


def test_the_values_where_sizes_fit_are_numpys():
    a = np.array([0.5, -1.0, 2.0])
    np.testing.assert_array_equal(sg.compile(0 * u + w3, [u, w3])(np.ones(3), a),
                                  0 * np.ones(3) + a)
    np.testing.assert_array_equal(sg.compile(sg.diag(v) @ u1, [v, u1])(np.array([2.0]),
                                                                         np.array([3.0])),
                                  np.diag([2.0]) @ np.array([3.0]))


def test_a_guard_is_the_same_node_each_time_and_prints_as_its_operand():
    e = 0 * u + w3
    assert e is 0 * u + w3  # hash-consing: one node per value, guard included
    assert e.op is GUARD and e.args[0] is w3
    assert str(e) == "w3_dc" and sg.latex(e) == sg.latex(w3)
    assert e.shape == (3,)
    assert e.checks and all(c.op == "add" for c in e.checks)


def test_no_guard_where_nothing_was_dropped():
    a = sg.vector("a_dc", 3)
    assert (a * 1.0) is a and (a + 0.0) is a  # fixed sizes: no checks to keep
    assert (v * 1.0) is v and (0 * v + v) is v  # one size: nothing deferred
    X, y = sg.matrix("X_dc", ("N", 4)), sg.vector("y_dc", "N")
    wv = sg.vector("wv_dc", 4)
    loss = sg.mean(sg.bce(sg.sigmoid(X @ wv), y))
    for e in [loss, *sg.grad(loss, [wv]), sg.hessian(loss, wv)]:
        assert not _guarded(e)
    # a guard is added once: building on a guarded node does not stack guards
    g = 0 * u + w3
    assert sum(n.op is GUARD for n in sg.topo_order([(g * 1.0) + 0.0])) == 1


def test_an_input_that_is_not_listed_needs_no_check():
    # u is not an input: nothing fixes n, so no call can break the check (v + 0*u's value is v)
    f = sg.compile(0 * u + w3, [w3])
    np.testing.assert_array_equal(f(np.array([1.0, 2.0, 3.0])), [1.0, 2.0, 3.0])
    assert sg.evaluate(sg.sum(0 * u + w3), {w3: np.ones(3)}) == 3.0
    # a size the code needs is still refused when no input fixes it
    with pytest.raises(ValueError, match="size n is not fixed by the shape of any input"):
        sg.compile(sg.sum(sg.broadcast_to(sg.sum(w3), ("n",))), [w3])


def test_derivatives_are_refused_where_f_is():
    f = sg.sum(v + w3)  # needs n = 3
    g_w = sg.grad(f, w3)  # ones: its graph has no v
    assert _guarded(g_w)
    gv, gw = sg.compile(sg.grad(f, [v, w3]), [v, w3])(np.ones(3), np.ones(3))
    np.testing.assert_array_equal(gw, np.ones(3))
    for e in (g_w, sg.jacobian(v + w3, w3), sg.hessian(f + sg.sum(w3 * w3), w3)):
        fn = sg.compile(e, [v, w3])
        fn(np.ones(3), np.ones(3))
        with pytest.raises(sg.ShapeError, match=r"^add: shapes \(5,\) and \(3,\) do not fit "
                                                r"\(n = 5 from input v_dc\)"):
            fn(np.ones(5), np.ones(3))


def test_a_guarded_gradient_keeps_its_origin():
    f = sg.sum(v + w3)
    g = sg.grad(f, w3)
    kind, ff, wrt = sg.origin(g)
    assert (kind, ff, wrt) == ("grad", f, w3)
    assert sg.explain(g, show=False) is not None


def test_simplify_keeps_the_checks():
    e = sg.sum(u * w3) * 0 + sg.sum(w3)
    s = sg.simplify(e)
    fn = sg.compile(s, [u, w3])
    assert fn(np.ones(3), np.ones(3)) == 3.0
    with pytest.raises(sg.ShapeError, match=r"^mul: shapes \(5,\) and \(3,\) do not fit"):
        fn(np.ones(5), np.ones(3))


def test_derivatives_pass_through_a_guard():
    g = 0 * u + w3
    f = sg.sum(sg.tanh(g * w3))
    vals = {u: np.ones(3), w3: np.array([0.3, -0.2, 0.5])}
    assert_grad_fd(f, [w3], vals)
    gw = sg.grad(f, w3)
    want = 2 * vals[w3] * (1 - np.tanh(vals[w3] ** 2) ** 2)
    np.testing.assert_allclose(sg.evaluate(gw, vals), want, rtol=1e-12)
    # and to second order
    H = sg.hessian(f, w3)
    fn = sg.compile(H, [u, w3])
    assert fn(*vals.values()).shape == (3, 3)
    with pytest.raises(sg.ShapeError, match="add"):
        fn(np.ones(2), vals[w3])


def test_a_guarded_graph_batches_per_sample():
    a = sg.scalar("a_dc")
    e = sg.sum((0 * u + w3) * a)
    fn = sg.compile(e, [a, u, w3])
    got = fn(np.array([1.0, 2.0]), np.ones(3), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(got, [6.0, 12.0])
    with pytest.raises(sg.ShapeError, match="add"):
        fn(np.array([1.0, 2.0]), np.ones(4), np.array([1.0, 2.0, 3.0]))


def test_a_guard_round_trips_through_save_and_load(tmp_path):
    e = sg.diag(v) @ u1
    sg.save(e, tmp_path / "g.json")
    back = sg.load(tmp_path / "g.json")
    assert back is e
    with pytest.raises(sg.ShapeError, match="matmul"):
        sg.evaluate(back, {v: np.ones(3), u1: np.ones(1)})


def test_load_refuses_malformed_checks(tmp_path):
    e = 0 * u + w3
    sg.save(e, tmp_path / "g.json")
    text = (tmp_path / "g.json").read_text()
    assert '"add"' in text
    (tmp_path / "bad.json").write_text(text.replace('"add"', '"{n}"'))
    with pytest.raises(ValueError, match="is not a tuple of size checks"):
        sg.load(tmp_path / "bad.json")


def test_a_matrix_case_names_the_users_product():
    B = sg.matrix("B_dc", (1, 2))
    e = sg.diag(sg.diagonal(A @ A.T)) @ sg.ones((1,))  # (n, n) @ (1,): n must be 1
    fn = sg.compile(e, [A])
    assert fn(np.ones((1, 2))).shape == (1,)
    with pytest.raises(sg.ShapeError, match="matmul"):
        fn(np.ones((3, 2)))
    assert B.shape == (1, 2)


# ---------------------------------------------------------------- a guard stays out of the way
def _no_guard_below_the_top(e) -> bool:
    return all(a.op is not GUARD for n in sg.topo_order([e]) for a in n.args)


def test_a_guard_is_never_an_operand_so_every_rule_still_applies():
    z = sg.vector("z_dc", 3)
    f = sg.sum(sg.softplus(z)) + sg.sum(v * w3)  # v * w3: n must be 3
    s = sg.grad(f, z)  # sigmoid(z), guarded
    assert s.op is GUARD and str(s) == "sigmoid(z_dc)"
    L = sg.sum(sg.log(s))  # the stable log(sigmoid): finite at |z| = 800
    y = sg.vector("y_dc", 3)
    B = sg.sum(sg.bce(s, y))
    for e in (L, B, sg.grad(L, z), sg.grad(B, z)):
        assert _no_guard_below_the_top(e)
    vals = {z: np.array([-800.0, 0.0, 800.0]), v: np.ones(3), w3: np.ones(3),
            y: np.array([1.0, 0.0, 1.0])}
    np.testing.assert_allclose(sg.evaluate(L, vals), -800.0 - np.log(2.0))
    np.testing.assert_allclose(sg.evaluate(sg.grad(L, z), vals), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(sg.evaluate(B, vals), 800.0 + np.log(2.0))
    np.testing.assert_allclose(sg.evaluate(sg.grad(B, z), vals), [-1.0, 0.5, 0.0])


def test_constants_behind_a_guard_still_fold():
    k = sg.vector("k_dc", "k")
    b = sg.scalar("b_dc")
    s = sg.sum(k * u)  # k must be n
    for e in (0 * s + b, b * (0 * s + 1)):
        assert str(e) == "b_dc" and sg.count_nodes(e) == 2  # b, and the guard on top
        assert e.op is GUARD and e.args[0] is b
    g = sg.grad(b * (0 * s + 1), b)
    assert str(g) == "1" and sg.count_nodes(g) == 2
    # guards merge: one on top, whatever is built on guarded values
    e = (0 * s + b) * (0 * sg.sum(v * w3) + b)
    assert e.op is GUARD and _no_guard_below_the_top(e) and len(e.attrs["checks"]) == 2


def test_the_first_op_to_fail_in_evaluation_order_is_named():
    with pytest.raises(sg.ShapeError, match=r"^add: shapes \(4,\) and \(3,\) do not fit"):
        sg.evaluate((v + w3) * u, {v: np.ones(4), w3: np.ones(3), u: np.ones(4)})


def test_simplify_keeps_a_zeros_reason_and_messages_name_a_guarded_f():
    b = sg.scalar("b_dc")
    f = b + 0 * sg.sum(v * w3)  # b, guarded
    g = sg.grad(f, u)
    assert sg.zero_reason(g) == "zero: b_dc does not depend on u_dc"
    assert sg.zero_reason(sg.simplify(g)) == sg.zero_reason(g)


def test_pictures_and_explanations_show_a_guard_as_its_checks():
    e = 0 * u + w3
    labels = [ln for ln in sg.to_dot(e).splitlines() if "guard" in ln]
    assert len(labels) == 1 and "guard n=3 (3,)" in labels[0]
    a = sg.scalar("a_dc")
    text = str(sg.explain(sg.sum(sg.exp(a * e)), w3, show=False))
    assert "guard" not in text


def test_many_distinct_checks_stay_cheap():
    # each layer checks a size of its own: every node lists the checks of its graph once, and
    # the lists are shared between nodes, not copied per use
    x = x0 = sg.vector("x_dc", 3)
    for i in range(300):
        x = sg.tanh(x + sg.vector(f"v{i}_dc", f"n{i}"))
    assert len(x.checks) == 300 and len(set(x.checks)) == 300
    g = sg.grad(sg.sum(x), x0)
    assert g.op is GUARD or len(g.checks) == 300
    fn = sg.compile(g, sg.variables(sg.sum(x)))
    vals = [np.full(3, 0.1)] * (len(sg.variables(sg.sum(x))))
    assert fn(*vals).shape == (3,)


def test_a_named_guarded_value_shows_its_name_where_it_is_used():
    z, y = sg.vector("z2_dc", 3), sg.vector("y2_dc", 3)
    mu = (sg.sigmoid(z) * (0 * u + 1.0)).named("mu_dc")
    assert mu.op is GUARD and mu.name == "mu_dc" and str(mu) == "sigmoid(z2_dc)"
    L = sg.sum(sg.bce(mu, y))
    assert "log(mu_dc)" in str(L)
    assert str(sg.grad(L, z)) == "mu_dc - y2_dc"  # the textbook form, through the guard


def test_simplify_is_never_larger_guard_included():
    x = sg.scalar("x_dc")
    for e in (v + w3, sg.sum(v + w3) * x, sg.sum(v * w3) * 0 + x, sg.exp(sg.log(v + w3)),
              (x * x + 2 * x * x) * sg.sum(v * w3)):
        s = sg.simplify(e)
        assert sg.count_nodes(s) <= sg.count_nodes(e), str(e)
        assert set(s.checks) >= set(e.checks), str(e)


def test_a_rebuild_rewrites_the_value_a_guard_holds():
    # rebuilding v * w3 on a zero constant drops its check, so the nodes rebuilt above it come
    # back guarded; the stability rewrite still sees the log of a sigmoid among them
    from symgrad.rewrite import _stabilize_node, rebuild

    t = sg.vector("t_dc", 3)
    f = sg.sum(sg.log(sg.sigmoid(v * w3 + t)))
    (g,) = rebuild([f], replace={id(w3): sg.const(np.zeros(3))})
    assert g.op is GUARD and str(g) == "sum(log(sigmoid(t_dc)))"
    (s,) = rebuild([f], _stabilize_node, replace={id(w3): sg.const(np.zeros(3))})
    assert s.op is GUARD and str(s) == "-sum(softplus(-t_dc))"
    with pytest.raises(sg.ShapeError, match="mul"):
        sg.evaluate(s, {v: np.ones(4), t: np.zeros(3)})


# ---------------------------------------------------------------- a guarded value as an argument
def test_derivatives_with_respect_to_a_guarded_value_are_those_wrt_the_value():
    x, y, w, b = sg.scalars("x_dc y_dc w_dc b_dc")
    mu = (sg.sigmoid(w * x + b) + 0 * sg.sum(v + w3)).named("mu_g")
    assert mu.op is GUARD
    C = sg.bce(mu, y)
    assert str(sg.grad(C, mu)) == "(mu_g - y_dc)/(mu_g*(1 - mu_g))"
    h = 0 * v + w3
    assert str(sg.jacobian(2 * h, h)) == "2 I"
    assert str(sg.hessian(sg.sum(h**3), h)) == "diag(6 w3_dc)"
    z = (0 * v + w3).named("z_g")
    assert str(sg.grad(sg.sum(z * z), z)) == "2 z_g"
    text = str(sg.explain(C, [mu], show=False))
    assert text.startswith("dC/dmu_g") or "dmu_g" in text.splitlines()[0], text


def test_no_silent_zero_through_a_guarded_value():
    M = sg.matrix("M_dc", (3, 2))
    h = 0 * v + w3
    f = sg.sum(sg.take(M, sg.argmax(h))) + sg.sum(h)
    for wrt in (h, w3):
        with pytest.raises(sg.NonDifferentiableError) as err:
            sg.grad(f, wrt)
        assert "guard" not in str(err.value) and "argmax" in str(err.value)


def test_a_guarded_variable_is_that_variable_as_an_input_a_key_or_wrt():
    h = 0 * v + w3
    a = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(sg.compile(sg.exp(h), [h])(a), np.exp(a))
    np.testing.assert_allclose(sg.evaluate(sg.exp(h), {h: a}), np.exp(a))
    assert sg.check_grad(sg.sum(sg.exp(h)), h, {h: a}) < 1e-6


def test_to_sympy_keeps_a_named_guarded_root_as_its_formula():
    x = sg.scalar("x_dc")
    p = (sg.tanh(x) + 0 * sg.sum(v + w3)).named("p_g")
    assert str(sg.to_sympy(p, keep_names=True)) == "tanh(x_dc)"
    assert str(sg.to_sympy(2 * p, keep_names=True)) == "2*p_g"


def test_a_size_fixed_through_two_checks_is_checked():
    m3 = sg.vector("m3_dc", "m")
    e = 0 * (u + m3) + w3  # n == 3 and m == n: m must be 3, though no input has n
    fn = sg.compile(e, [w3, m3])
    np.testing.assert_array_equal(fn(np.ones(3), np.ones(3)), np.ones(3))
    with pytest.raises(sg.ShapeError, match="do not fit"):
        fn(np.ones(3), np.ones(4))
    with pytest.raises(sg.ShapeError, match="do not fit"):
        sg.evaluate(e, {w3: np.ones(3), m3: np.ones(4)})


def test_a_gradients_size_error_names_the_op_of_f():
    # f's checks come first on a derivative: the message names the product the user wrote,
    # not the broadcast the reverse pass made (u * a, the gradient wrt a is u fitted to (3,))
    a = sg.vector("a_op", 3)
    for f in (sg.sum(u * a), sg.sum(u + a)):
        with pytest.raises(sg.ShapeError, match=rf"^{f.args[0].op.name}: shapes"):
            sg.evaluate(sg.grad(f, a), {u: np.ones(5), a: np.ones(3)})
