"""sg.simplify hands sympy only expressions whose tree is small: a graph with many shared nodes is
a large tree for sympy, and products of sums multiply out (gradients of deep chains)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import sympy

import symgrad as sg
import symgrad.sympy_bridge as bridge

S = sys.modules["symgrad.simplify"]  # the module (sg.simplify is the function)


def _tanh_chain(k: int):
    x = sg.scalar("x")
    ws = [sg.scalar(f"w{i}") for i in range(k)]
    bs = [sg.scalar(f"b{i}") for i in range(k)]
    h = x
    for w, b in zip(ws, bs):
        h = sg.tanh(w * h + b)
    return h**2, [x] + ws + bs, ws + bs


@pytest.fixture
def to_sympy_calls(monkeypatch):
    """Counts the calls simplify makes to sympy (through sympy_bridge.to_sympy)."""
    calls = []
    real = bridge.to_sympy

    def spy(e, keep_names=False):
        calls.append(e)
        return real(e, keep_names=keep_names)

    monkeypatch.setattr(bridge, "to_sympy", spy)
    return calls


def _tree(e, named_leaf=True, root=True) -> int:
    """Tree size by plain recursion (small graphs only): the reference for tree_size."""
    if not root and named_leaf and (e.name is not None or e.op.name == "alias"):
        return 1
    return 1 + sum(_tree(a, named_leaf, False) for a in e.args)


def test_deep_chain_gradient_skips_sympy_and_stays_equivalent(to_sympy_calls):
    L, leaves, params = _tanh_chain(10)
    g = sg.grad(L, params)
    assert all(sg.count_nodes(o) <= S.SYMPY_MAX_NODES for o in g)  # small graphs ...
    assert min(S.tree_size(o, 10**6) for o in g) > S.SYMPY_MAX_TREE  # ... but large trees
    s = sg.simplify(g)
    assert to_sympy_calls == []
    assert sg.count_nodes(s) <= sg.count_nodes(g)
    for o, r in zip(g, s):
        assert sg.count_nodes(r) <= sg.count_nodes(o)
    rng = np.random.default_rng(0)
    for _ in range(3):
        env = {v: float(rng.normal()) for v in leaves}
        np.testing.assert_allclose(sg.evaluate(s, env), sg.evaluate(g, env), rtol=1e-12,
                                   atol=1e-15)


def test_short_chain_gradient_still_goes_to_sympy(to_sympy_calls):
    L, _, params = _tanh_chain(2)
    g = sg.grad(L, params)
    sg.simplify(g)
    assert len(to_sympy_calls) == len(g)  # every output is small enough: the guard lets it in


def test_products_of_many_sums_skip_sympy(to_sympy_calls):
    xs = sg.scalars(" ".join(f"x{i}" for i in range(8)))
    ys = sg.scalars(" ".join(f"y{i}" for i in range(8)))
    e = xs[0] + ys[0]
    for a, b in zip(xs[1:], ys[1:]):
        e = e * (a + b)  # a tree of 31 nodes, 2**8 terms multiplied out
    assert S.tree_size(e, 10**6) <= S.SYMPY_MAX_TREE
    assert sg.simplify(e) is e
    assert len(to_sympy_calls) == 1  # converted, then stopped before cancel/factor
    assert S.expanded_terms(bridge.to_sympy(e), 10**6) == 2**8 > S.SYMPY_MAX_TERMS


def test_sympy_still_simplifies_small_trees():
    mu, y = sg.scalars("mu y")
    g = (mu - y) / (mu * (1 - mu)) * mu * (1 - mu)  # the shape of dC/dmu * dmu/dz
    assert str(sg.simplify(g)) == "mu - y"
    x = sg.scalar("x")
    assert sg.count_nodes(sg.simplify(sg.exp(sg.log(x)) * x / x)) == 1


def test_tree_size_counts_shared_nodes_per_use_and_stops_at_the_cap():
    x, y = sg.scalars("x y")
    e = x * y + x
    for _ in range(6):
        e = e * e + y  # each step doubles the tree, adds 3 nodes to the graph
    assert S.tree_size(e, 10**6) == _tree(e)
    assert S.tree_size(e, 10**6) > 2**6 > sg.count_nodes(e)
    assert S.tree_size(e, 50) == 51
    phi = sg.sigmoid(x * y).named("phi")
    f = phi * (1 - phi) + phi
    assert S.tree_size(f, 10**6) == _tree(f) == 7  # phi is a symbol for sympy: it counts 1
    assert S.tree_size(phi, 10**6) == _tree(phi) == 4  # the root itself is expanded


def _sympy_terms(s) -> int:
    num, den = sympy.fraction(sympy.together(s))
    return max(len(sympy.Add.make_args(sympy.expand(num))),
               len(sympy.Add.make_args(sympy.expand(den))))


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_expanded_terms_of_a_product_of_sums(n):
    a = sympy.symbols(f"a0:{n}")
    b = sympy.symbols(f"b0:{n}")
    s = sympy.Mul(*[ai + bi for ai, bi in zip(a, b)])
    assert S.expanded_terms(s, 10**6) == _sympy_terms(s) == 2**n
    assert S.expanded_terms(s**2, 10**6) >= _sympy_terms(s**2)
    assert S.expanded_terms(s, 1) == min(2, 2**n)  # stops at the cap + 1


def test_expanded_terms_over_a_common_denominator():
    a, b, c, d, x = sympy.symbols("a b c d x")
    s = a / b + c / d  # (a*d + c*b)/(b*d)
    assert S.expanded_terms(s, 100) == _sympy_terms(s) == 2
    sig = 1 / (1 + sympy.exp(-x))  # sigmoid's sympy form: exp(-x) is one symbol
    assert S.expanded_terms(sig, 100) == _sympy_terms(sig) == 2
    t = (1 - sympy.tanh(a + b + c) ** 2) * (a + b)  # no expansion inside tanh
    assert S.expanded_terms(t, 100) == _sympy_terms(t) == 4


def test_numbers_become_symbols_while_sympy_works():
    """cancel and factor write exp(369/200 y) as exp(y/200)**369 (factor took 54 s on the
    square of a sigmoid): sympy gets a symbol for every number that is not small."""
    y = sympy.Symbol("y", real=True)
    s = (sympy.exp(-y - sympy.Rational(369, 200)) + 1) ** -2 + sympy.Float(0.25) * y**3 \
        + y ** sympy.Rational(3, 2) + sympy.Rational(-369, 200) * y
    frozen, back = S.freeze_numbers(s)
    nums = frozen.atoms(sympy.Number)
    assert all(n.is_Rational and abs(n.p) <= S.SMALL_NUMBER and n.q <= S.SMALL_NUMBER
               for n in nums)
    assert sympy.Rational(3, 2) in nums  # small fractions stay (sqrt is x**(1/2))
    assert len(back) == 2 and all(d.is_positive for d in back)  # 369/200 once, 0.25
    assert frozen.xreplace(back) == s


@pytest.mark.parametrize("build", [
    lambda x, y: sg.sigmoid(1.845 + y) ** 2,
    lambda x, y: -1.454 * sg.sigmoid(-2.105 * y) * -2.908 * x
    - 2.478 * sg.sigmoid(-2.105 * y) * 4.956 * x,
    lambda x, y: sg.sigmoid(-1.49 - x - y**2) - (y**2 + x / x) / sg.sigmoid(y**2),
    lambda x, y: sg.exp(0.3 * x) * sg.exp(0.7 * x) + sg.log(2.7 * x) - sg.log(x),
])
def test_sympy_never_sees_large_fractions_and_results_stay_equal(build, monkeypatch):
    x, y = sg.scalars("x y")
    e = build(x, y)
    seen = []
    real = S._candidates
    monkeypatch.setattr(S, "_candidates", lambda s: seen.append(s) or real(s))
    r = sg.simplify(e)
    assert seen, "the expression is small: sympy is tried"
    for s in seen:
        assert all(abs(n.p) <= S.SMALL_NUMBER and n.q <= S.SMALL_NUMBER
                   for n in s.atoms(sympy.Rational))
    vals = {x: 0.7, y: -0.4}
    np.testing.assert_allclose(sg.evaluate(r, vals), sg.evaluate(e, vals), rtol=1e-12)
    assert sg.graph.count_nodes(r) <= sg.graph.count_nodes(e)


def test_the_numbers_come_back_in_sympy_results():
    x = sg.scalar("x")
    assert str(sg.simplify(sg.exp(0.3 * x) * sg.exp(0.7 * x))) == "exp(x)"
    assert str(sg.simplify(sg.log(2.7 * x) - sg.log(x))) == "log(2.7)"


@pytest.mark.parametrize("build, at", [
    (lambda x: sg.grad(sg.sigmoid(x + 750.5), x), -750.5),
    (lambda x: sg.sigmoid(x + 1000.5), -1000.0),
    (lambda x: sg.sigmoid(x + 1000.5) ** 2, -1000.0),
    (lambda x: sg.grad(sg.softplus((10 / (1 / 3 + 0.3)) ** 3 + x), x), -3936.0),
])
def test_a_number_sympy_makes_too_big_for_a_float_keeps_the_expression(build, at):
    """Putting a frozen number back evaluated exp(750.5) to 1.0e326, beyond float64: the
    gradient of sigmoid(x + 750.5) simplified to 0 (0.25 at x = -750.5), sigmoid(x + 1000.5)
    to exp(x)/exp(x) (nan)."""
    x = sg.scalar("x_big")
    e = build(x)
    with np.errstate(all="ignore"):
        assert sg.evaluate(sg.simplify(e), {x: at}) == pytest.approx(sg.evaluate(e, {x: at}))


@pytest.mark.parametrize("c", [1.00000001, 0.33333334, 1e-40, 1.7e-300])
def test_constants_reach_sympy_as_the_floats_they_are(c):
    """nsimplify snapped 1.00000001 to 1, 0.33333334 to 1/3 and 1e-40 to 0, so
    sg.simplify(1.00000001*x - x) was 0 and sg.simplify(x + 1e-40*y) was x."""
    x, y = sg.scalar("x_c"), sg.scalar("y_c")
    assert float(sg.to_sympy(c * x).subs(sympy.Symbol("x_c", real=True), 1.0)) == c
    e = x * c - x if c > 1e-30 else x + c * y
    at = {x: 0.7, y: 1.0 / c if c < 1e-30 else 1.0}
    assert sg.evaluate(sg.simplify(e), at) == pytest.approx(sg.evaluate(e, at), rel=1e-6)


def test_simple_constants_still_print_simply():
    x = sg.scalar("x_s")
    assert str(sg.to_sympy(x / 3)) == "x_s/3"
    assert str(sg.to_sympy(0.1 * x)) == "x_s/10"


@pytest.mark.parametrize("build, at, want", [
    (lambda x: sg.sigmoid(sg.log(x - x)) + x, 0.5, 0.5),  # x - x is 0 when built: log(0)
    (lambda x: sg.exp(sg.log(x - x)) * x, 0.5, 0.0),
    (lambda x: sg.softplus(sg.log(sg.const(0.0))) + x, 0.5, 0.5),
])
def test_a_log_of_zero_is_not_simplified_into_nan(build, at, want):
    """sympy reads log(0) as complex infinity and builds nan on it: the simplified graph was
    the constant nan where the graph is finite."""
    x = sg.scalar("x_l0")
    e = build(x)
    with np.errstate(divide="ignore"):
        assert sg.evaluate(e, {x: at}) == want
        assert sg.evaluate(sg.simplify(e), {x: at}) == want


@pytest.mark.parametrize("number", [sympy.Integer(10) ** 400, sympy.Float("1e400"),
                                    sympy.Rational(1, 10**400)])
def test_from_sympy_refuses_a_number_beyond_floats(number):
    x = sympy.Symbol("x_fs", real=True)
    with pytest.raises(ValueError, match=r"from_sympy: the number .* does not fit a float"):
        sg.from_sympy(number * x)


def test_a_sympy_form_that_is_nan_where_the_graph_is_finite_is_refused():
    """sympy splits sqrt(a b) into sqrt(a) sqrt(b) where a >= 0 (true for complex numbers):
    sqrt(relu(y) y) became sqrt(relu(y)) y**0.5, nan for y < 0 where the graph gives 0."""
    y = sg.scalar("y_fin")
    r = sg.relu(y)
    e = sg.sqrt(sg.maximum(r, y) * sg.minimum(y, r)) / sg.minimum(y, r)
    s = sg.simplify(e)
    assert sg.evaluate(s, {y: -0.5}) == sg.evaluate(e, {y: -0.5}) == 0.0
    assert sg.evaluate(s, {y: 2.0}) == pytest.approx(sg.evaluate(e, {y: 2.0}))


def test_two_values_under_one_name_are_not_merged_by_sympy():
    """Names are global: a node named x next to the variable x, or two nodes named t, were
    one sympy symbol, and simplify returned another value (x*(2y named x) became x**2)."""
    x, y = sg.scalar("x_nm"), sg.scalar("y_nm")
    for e in (x * (2.0 * y).named("x_nm"),
              sg.tanh(y).named("t_nm") + sg.sin(x).named("t_nm")):
        vals = {x: 3.0, y: 5.0}
        np.testing.assert_allclose(sg.evaluate(sg.simplify(e), vals), sg.evaluate(e, vals))


def test_stop_gradient_and_straight_through_survive_simplify():
    """sympy sees only their value: exp(2 log(stop_gradient(x))) became x**2, whose gradient
    is 2x where the original's is 0."""
    x, y = sg.scalar("x_sg"), sg.scalar("y_sg")
    sx = sg.stop_gradient(x)
    for e in (sg.exp(2.0 * sg.log(sx)), (sx**2.0 - y**2.0) / (sx - y),
              sg.straight_through(sg.step(x), x)):
        vals = {x: 0.7, y: 0.2}
        s = sg.simplify(e)
        np.testing.assert_allclose(sg.evaluate(s, vals), sg.evaluate(e, vals))
        np.testing.assert_allclose(sg.evaluate(sg.grad(s, x), vals),
                                   sg.evaluate(sg.grad(e, x), vals))


def test_a_named_output_keeps_its_name_through_sympy():
    y, z = sg.scalar("y_on"), sg.scalar("z_on")
    r = (1.0 / y ** sg.tanh(z)).named("r_on")
    s = sg.simplify(r)
    assert s is not r and s.name == "r_on"


@pytest.mark.parametrize("build", [
    lambda x: 1 / (1 + sg.exp(-x)),
    lambda x: 2 / (1 + sg.exp(-x)) - 1,
    lambda x: sg.exp(x) / (1 + sg.exp(x)),
    lambda x: 3 / (sg.exp(2 * x) + 1),
])
def test_a_logistic_written_out_simplifies_to_the_stable_sigmoid(build):
    # sympy's answer for 1/(1 + exp(-x)) was sigmoid(-x)*exp(x): nan for x > 709, where the
    # expression is finite; the guard only tried small values
    x = sg.scalar("x_lg")
    e = build(x)
    s = sg.simplify(e)
    assert "sigmoid" in str(s) and "exp" not in str(s)
    for at in (-800.0, -3.0, 0.0, 0.5, 800.0):
        with np.errstate(over="ignore", invalid="ignore"):
            want = sg.evaluate(e, {x: at})
        got = sg.evaluate(s, {x: at})
        assert np.isfinite(got)  # exp(x)/(1 + exp(x)) is nan at 800: it may become 1
        assert not np.isfinite(want) or got == pytest.approx(want, rel=1e-12, abs=1e-300)


def test_the_guard_refuses_a_form_that_overflows_far_out():
    x = sg.scalar("x_far")
    e = sg.sigmoid(x)
    r = sg.exp(x / 2) / (sg.exp(x / 2) + sg.exp(-x / 2))  # (sigmoid(-x) exp(x): now stable)
    assert S._agrees(e, e, [x]) and not S._agrees(e, r, [x])


@pytest.mark.parametrize("build", [
    lambda x, y, z: [sg.cos((z + y) / (-x)) * (x + z),
                     sg.stop_gradient(y) * sg.cos((z + y) / (-x))],
    lambda x, y, z: [z / y / z, z / y],
])
def test_a_list_is_never_larger_together(build):
    # each output took sympy's smaller form on its own, and shared less with the others:
    # the list grew from 11 nodes to 14
    x, y, z = sg.scalars("x_ls y_ls z_ls")
    outs = build(x, y, z)
    s = sg.simplify(outs)
    assert sg.count_nodes(s) <= sg.count_nodes(outs)
    vals = {x: 0.7, y: -1.3, z: 2.1}
    np.testing.assert_allclose(sg.evaluate(s, vals), sg.evaluate(outs, vals), rtol=1e-12)


def test_a_sympy_form_that_overflows_where_one_variable_is_far_out_is_refused():
    # (1 + exp(x))/(1 + 2 exp(x)) is nan at x = 720 whatever y is; the guard tried x and y
    # far out together only, where the expression itself is nan
    x, y = sg.scalars("x_fo y_fo")
    e = (1 + sg.exp(y)) / (1 + sg.exp(y)) / (1 + sg.sigmoid(x))
    s = sg.simplify(e)
    with np.errstate(all="ignore"):
        for at in ((720.0, 0.0), (800.0, -800.0), (-3.0, 2.0)):
            want = sg.evaluate(e, dict(zip((x, y), at)))
            assert sg.evaluate(s, dict(zip((x, y), at))) == pytest.approx(want)


def test_the_far_out_check_covers_scaled_arguments_and_numpys_error_state():
    # exp(0.5 w) overflows from w = 1418 on: at +-800 the check saw no overflow and passed
    # 0.5 sigmoid(-0.5 w)(exp(0.5 w) - y - y exp(0.5 w)), nan at w = 2000; and under
    # np.errstate(over="raise") every far point raised and was skipped
    w, y, z = sg.scalars("w_sc y_sc z_sc")
    mu = sg.sigmoid(0.5 * w)
    g = sg.grad(-y * sg.log(mu) - (1 - y) * sg.log(1 - mu), w)
    assert sg.evaluate(sg.simplify(g), {w: 2000.0, y: 0.0}) == pytest.approx(0.5)
    r = sg.sigmoid(0.5 * w) / (sg.sigmoid(0.5 * w) + 2 * sg.sigmoid(-0.5 * w))
    assert sg.evaluate(sg.simplify(r), {w: 2000.0}) == pytest.approx(1.0)
    mz = sg.sigmoid(z)
    gz = sg.grad(-y * sg.log(mz) - (1 - y) * sg.log(1 - mz), z)
    with np.errstate(over="raise"):
        s = sg.simplify(gz)
    assert s is sg.simplify(gz)
    assert sg.evaluate(s, {z: 800.0, y: 0.0}) == 1.0


def test_matrix_products_factored_by_simplify_keep_their_values():
    """P v ± Q v -> (P ± Q) v, v P ± v Q -> v (P ± Q), A + A^T (mutation testing found
    that a sum in place of the difference passed every test)."""
    P, Q = sg.matrix("P_fm", (3, 3)), sg.matrix("Q_fm", (3, 3))
    v, u = sg.vector("v_fm", 3), sg.vector("u_fm", 3)
    rng = np.random.default_rng(5)
    vals = {P: rng.normal(size=(3, 3)), Q: rng.normal(size=(3, 3)), v: rng.normal(size=3),
            u: rng.normal(size=3)}
    for e in [P @ v - Q @ v, P @ v + Q @ v, v @ P - v @ Q, v @ P + v @ Q, P @ v - P @ u,
              P @ v + P @ u, P @ Q - Q @ Q, P.T @ v + P @ v, P @ Q @ v - Q @ v]:
        s = sg.simplify(e)
        np.testing.assert_allclose(sg.evaluate(s, vals), sg.evaluate(e, vals), rtol=1e-12,
                                   err_msg=str(e))
    assert str(sg.simplify(P @ v - Q @ v)) == "(P_fm - Q_fm) v_fm"  # (the rule applies)


def test_a_quotient_cancelled_by_simplify_keeps_its_shape():
    # (x / v) v is x broadcast to v's shape, not x (mutation testing: no shape check passed)
    x, v = sg.scalar("x_qs"), sg.vector("v_qs", 3)
    s = sg.simplify((x / v) * v)
    assert s.shape == (3,)
    np.testing.assert_allclose(sg.evaluate(s, {x: 2.0, v: np.array([1.0, 2.0, 4.0])}), 2.0)


def test_a_sympy_form_that_is_nan_only_near_the_point_is_refused():
    # (mutation testing: with only the far-out check, a form nan on a bounded interval passed)
    y = sg.scalar("y_bn")
    z = (y * y - 1.0).named("z_bn")
    r = sg.relu(z)
    e = sg.sqrt(sg.maximum(r, z) * sg.minimum(z, r)) / sg.minimum(z, r)
    s = sg.simplify(e)
    with np.errstate(all="ignore"):
        for at in (0.5, 0.9, 2.0):
            a, b = sg.evaluate(e, {y: at}), sg.evaluate(s, {y: at})
            assert (np.isnan(a) and np.isnan(b)) or a == b, (at, str(s))


def test_simplify_keeps_the_zero_base_guard_of_a_powers_exponent_derivative():
    """A probe: d/dp a**p is a**p log(zero_as_one(a)), 0 where a = 0; sympy reads
    zero_as_one(a) as a, and simplify's sympy form, one node smaller, was nan at x = 1 for
    a = 1 - x (the check points never put a at 0)."""
    x, p, z, y = sg.scalars("x_zg p_zg z_zg y_zg")
    for f, at in (((1 - x) ** p, {x: 1.0, p: 2.0}), (3 * (x - 1) ** p, {x: 1.0, p: 2.0}),
                  (sg.log(x) ** p, {x: 1.0, p: 2.0}), ((sg.log(z) ** y) ** 2, {z: 1.0, y: 2.0})):
        ws = [v for v in (x, p, z, y) if v in at]
        g = sg.grad(f, ws)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            want = sg.evaluate(g, at)
            got = sg.evaluate(sg.simplify(g), at)
        assert np.all(np.isfinite(want)) and got == want


def test_simplify_takes_sympys_factored_form_of_a_perfect_square():
    # x^2 + 2xy + y^2 -> (x + y)^2: only sympy.factor finds it (cancel keeps the expanded sum);
    # found by mutation testing (dropping the factor candidate passed every test)
    x, y = sg.scalars("x_ps y_ps")
    s = sg.simplify(x * x + 2 * x * y + y * y)
    assert str(s) == "(x_ps + y_ps)**2"
    assert sg.evaluate(s, {x: 1.5, y: -4.0}) == pytest.approx(6.25)


def test_simplify_of_a_list_takes_every_smaller_form_when_the_total_stays_the_same():
    """[x(x - 2) + 1, x - 2]: the first output's form (x - 1)^2 shares nothing with the second,
    so the list stays at 6 nodes; all forms are taken when the total is not larger (found by
    mutation testing: taking them only when the total shrinks passed every test)."""
    x = sg.scalar("x_ta")
    outs = [x * (x - 2) + 1, x - 2]
    s = sg.simplify(outs)
    assert [str(o) for o in s] == ["(x_ta - 1)**2", "x_ta - 2"]
    assert sg.count_nodes(outs) == sg.count_nodes(s) == 6


def test_simplify_of_a_list_never_grows_the_list_as_a_whole():
    """A v + B v -> (A + B) v is smaller alone but shares nothing with the other outputs A v
    and B v: the list would grow from 6 to 7 nodes, so it is given back unchanged (found by
    mutation testing: without the check on the list's total, simplify grew it)."""
    A, B = sg.matrix("A_lt", (3, 3)), sg.matrix("B_lt", (3, 3))
    v = sg.vector("v_lt", 3)
    outs = [A @ v + B @ v, A @ v, B @ v]
    s = sg.simplify(outs)
    assert [str(o) for o in s] == ["A_lt v_lt + B_lt v_lt", "A_lt v_lt", "B_lt v_lt"]
    assert sg.count_nodes(s) == sg.count_nodes(outs) == 6
    assert str(sg.simplify(A @ v + B @ v)) == "(A_lt + B_lt) v_lt"  # (alone it is factored)


def test_simplify_keeps_which_operand_of_a_maximum_takes_a_tie():
    # sympy's Max(0, x) is relu(x): the same values, but relu'(0) = 0 where maximum(x, 0)
    # gives x the whole gradient at the tie (1)
    x = sg.scalar("x_tie")
    for f in (sg.maximum(x, 0.0), sg.maximum(0.0, x), sg.minimum(x, 0.0), sg.minimum(0.0, x),
              sg.maximum(x, 0.0) * 2.0 + sg.minimum(x, 1.0)):
        s = sg.simplify(f)
        for v in (0.0, 1.0, -1.0, 0.5):
            assert sg.evaluate(sg.grad(s, x), {x: v}) == sg.evaluate(sg.grad(f, x), {x: v})
    assert sg.simplify(sg.maximum(x, 0.0)).op.name == "maximum"
