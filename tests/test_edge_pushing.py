"""Hessians of scalar graphs by edge pushing: the same values as differentiating twice, a
smaller graph, and the row-by-row method wherever edge pushing does not apply."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import symgrad as sg
from benchmarks._workloads import chain
from symgrad import autodiff, edge_pushing
from symgrad.graph import count_nodes
from tests.strategies import X0, X1, dags, point_is_safe, points


@pytest.fixture
def spy(monkeypatch):
    """Counts the Hessians edge pushing built."""
    calls = {"used": 0}
    real = edge_pushing.hessian_rows

    def counting(*a, **k):
        calls["used"] += 1
        return real(*a, **k)

    monkeypatch.setattr(edge_pushing, "hessian_rows", counting)
    return calls


def row_by_row(f, ws):
    return [[sg.grad(sg.grad(f, wi), wj) for wj in ws] for wi in ws]


x, y, z = sg.scalars("x y z")
CASES = {
    "x*x*y*y": (x * x * y * y, {x: 0.7, y: -1.3}),  # an operand in two slots
    "x**x*y + y*y": (sg.power(x, x) * y + y * y, {x: 1.3, y: 0.4}),
    "x/(x + y)": (x / (x + y), {x: 0.8, y: 1.9}),
    "exp(x*y)*tanh(x)": (sg.exp(x * y) * sg.tanh(x), {x: 0.3, y: -0.8}),
    "bce(sigmoid(w*x + b), y)": (sg.bce(sg.sigmoid(z * x + y), 1.0), {x: 0.5, y: 0.2, z: 1.3}),
    "sin(x*y*z) + z**3": (sg.sin(x * y * z) + z**3.0, {x: 0.9, y: 0.6, z: -0.4}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_sympy(name, spy):
    f, at = CASES[name]
    ws = list(at)
    H = sg.hessian(f, ws)
    assert spy["used"] == 1, "edge pushing was not used"
    syms = [sympy.Symbol(w.attrs["vname"], real=True) for w in ws]
    Hs = sympy.hessian(sg.to_sympy(f), syms).subs(dict(zip(syms, at.values())))
    got = np.array([[sg.evaluate(h, at) for h in row] for row in H])
    np.testing.assert_allclose(got, np.array(Hs, dtype=float), rtol=1e-12, atol=1e-12)
    for i in range(len(ws)):
        for j in range(len(ws)):
            assert H[i][j] is H[j][i]  # each entry built once
            assert set(sg.variables(H[i][j])) <= set(sg.variables(f))  # no placeholder left


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_scalar_graphs_match_differentiating_twice(data):
    e = data.draw(dags(tensor=False, min_ops=3, max_ops=12), label="e")
    ws = [X0, X1]
    assume(set(sg.variables(e)) == set(ws))
    vals = data.draw(points(ws), label="point")
    assume(point_is_safe(e, vals, gap=1e-3))
    H = sg.hessian(e, ws)
    ref = row_by_row(e, ws)
    got = sg.compile([h for row in H for h in row], ws)(vals[X0], vals[X1])
    want = sg.compile([h for row in ref for h in row], ws)(vals[X0], vals[X1])
    scale = 1.0 + np.max(np.abs(want))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * scale, err_msg=str(e))


FLAT_SIDES = {  # an infinite curvature above a kink, at a point where the graph is flat
    "relu(x)**1.5 + x*y": (sg.relu(x) ** 1.5 + x * y, [[0.0, 1.0], [1.0, 0.0]]),
    "sqrt(relu(x))*y": (sg.sqrt(sg.relu(x)) * y, [[0.0, 0.0], [0.0, 0.0]]),
    "sqrt(maximum(x, 0))*y": (sg.sqrt(sg.maximum(x, 0.0)) * y, [[0.0, 0.0], [0.0, 0.0]]),
    "sqrt(maximum(0, x))*y": (sg.sqrt(sg.maximum(0.0, x)) * y, [[0.0, 0.0], [0.0, 0.0]]),
    "sqrt(-minimum(-x, 0))*y": (sg.sqrt(-sg.minimum(-x, 0.0)) * y, [[0.0, 0.0], [0.0, 0.0]]),
}


@pytest.mark.parametrize("name", list(FLAT_SIDES))
def test_steps_gate_infinite_curvature(name, spy):
    # relu's, maximum's and minimum's partials are steps: where one is 0 the Hessian's terms
    # through it are 0, even where the curvature above it is infinite (it was inf*0 = nan)
    f, want = FLAT_SIDES[name]
    H = sg.hessian(f, [x, y])
    assert spy["used"] == 1
    fn = sg.compile([h for row in H for h in row], [x, y])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(np.reshape(fn(-1.0, 2.0), (2, 2)), want)
        # on the smooth side, the same values as differentiating twice
        for at in (1.0, 2.5):
            ref = sg.compile([h for row in row_by_row(f, [x, y]) for h in row], [x, y])
            np.testing.assert_allclose(fn(at, 2.0), ref(at, 2.0), rtol=1e-13)


def test_the_chain_hessian_is_less_than_half_the_row_by_row_graph(monkeypatch):
    sizes = {}
    for k in (10, 20):
        _, ws, bs, L = chain(k, f"_ep{k}")
        sizes[k] = count_nodes([h for row in sg.hessian(L, ws + bs) for h in row])
    monkeypatch.setattr(autodiff, "_edge_pushed", lambda f, ws: None)
    _, ws, bs, L = chain(20, "_rows20")
    rows = count_nodes([h for row in sg.hessian(L, ws + bs) for h in row])
    assert sizes[20] < 0.5 * rows
    assert sizes[20] <= 4.2 * sizes[10]  # quadratic, as the matrix itself


def test_known_zeros_keep_the_row_methods_reasons(spy, monkeypatch):
    fs = [x * y, x * x + y * y * z, sg.exp(x) + sg.tanh(y) * z, x * y + sg.exp(z),
          sg.relu(x) * y + z * z * x]  # the last: d2/dx2 is zero through relu's flat step
    got = [sg.hessian(f, [x, y, z]) for f in fs]
    assert spy["used"] == len(fs)
    monkeypatch.setattr(autodiff, "_edge_pushed", lambda f, ws: None)
    for f, H in zip(fs, got):
        want = sg.hessian(f, [x, y, z])
        for i in range(3):
            for j in range(3):
                assert sg.zero_reason(H[i][j]) == sg.zero_reason(want[i][j]), (str(f), i, j)
                assert H[i][j] is H[j][i]
    assert sg.zero_reason(got[0][0][0]) == "zero: y does not depend on x"
    assert "step" in sg.zero_reason(got[4][0][0])


def test_cut_edges_are_cut(spy, monkeypatch):
    fs = [x * y + sg.stop_gradient(x) * x, sg.straight_through(sg.floor(x), x * x) * y + y * y,
          sg.exp(sg.stop_gradient(y) * x) + x * y]
    got = [sg.hessian(f, [x, y]) for f in fs]
    assert spy["used"] == len(fs)
    monkeypatch.setattr(autodiff, "_edge_pushed", lambda f, ws: None)
    at = {x: 0.7, y: -0.4}
    for f, H in zip(fs, got):
        want = sg.hessian(f, [x, y])
        for i in range(2):
            for j in range(2):
                assert sg.zero_reason(H[i][j]) == sg.zero_reason(want[i][j]), (str(f), i, j)
                np.testing.assert_allclose(sg.evaluate(H[i][j], at), sg.evaluate(want[i][j], at),
                                           rtol=1e-12)
    assert sg.zero_reason(got[0][0][0]).startswith("disconnected")


def test_tensor_variables_and_undefined_paths_take_the_row_method(spy):
    v = sg.vector("v_ep", 3)
    H = sg.hessian(sg.sum(sg.exp(v)) * x, [v, x])
    assert H[0][0].shape == (3, 3) and H[0][1].shape == (3,)
    with pytest.raises(sg.NonDifferentiableError):
        sg.hessian(sg.floor(x) * y + x * y, [x, y])
    assert spy["used"] == 0


@pytest.mark.parametrize("scalars", [True, False])
def test_origin_names_each_block_in_order(scalars):
    """A symmetric scalar block is one node at H[0][1] and H[1][0]: its record named the pair
    (w1, w0), the later row's; the first row's record wins now, in the row-major order."""
    a, b, c = sg.scalars("oa ob oc")
    v = sg.vector("ov", 2)
    ws = [a, b, c] if scalars else [a, v]  # edge pushing, or the row method
    f = sg.exp(a * b) * sg.sin(c) if scalars else sg.exp(a * sg.sum(v * v))
    H = sg.hessian(f, ws)
    for i, wi in enumerate(ws):
        for j in range(i, len(ws)):
            kind, g, pair = sg.origin(H[i][j])
            assert kind == "hessian" and g is f
            assert pair[0] is wi and pair[1] is ws[j]


def test_a_variable_named_like_a_placeholder_is_not_one():
    """The partials' placeholders were scalar variables _edge_push_0, _edge_push_1, ...: a
    user's variable of that name was the placeholder, and an operand replaced by it was
    replaced again (H[b][b] of x*b**3 came out 18 x, not 6 x b)."""
    x, a, b = sg.scalar("x"), sg.scalar("_edge_push_0"), sg.scalar("_edge_push_1")
    vals = {x: 2.0, a: 0.7, b: -0.4}
    for f in (x * b**3, a * b**3, sg.maximum(b, a) * x**2 + b**2 * a):
        ws = [w for w in (x, a, b) if w in sg.variables(f)]
        H = sg.hessian(f, ws)
        for i, wi in enumerate(ws):
            for j, wj in enumerate(ws):
                want = sg.evaluate(sg.grad(sg.grad(f, wi), wj), vals)
                np.testing.assert_allclose(sg.evaluate(H[i][j], vals), want, rtol=1e-12)



def test_a_zero_block_wrt_a_formula_names_it_in_parentheses():
    v = sg.vector("v_zp", 3)
    h = sg.hessian(sg.sum(v**2), v * 2.0)
    assert sg.zero_reason(h) == ("zero: df/d(2 v_zp) as built holds no use of the value 2 v_zp "
                                 "(rules may have rewritten its uses away: build f on a "
                                 "variable standing for it)")


def test_an_edge_pushed_hessian_is_zero_where_relu_is_flat_under_an_infinite_derivative():
    """Found by mutation testing: the second adjoint of sqrt(relu(x y)) multiplies
    0.5/sqrt(relu(x y)) (inf where x y < 0) by relu's flat step (0); the product is gated, 0,
    as when differentiating twice, not inf 0 = nan."""
    import warnings

    x, y = sg.scalars("x_ef y_ef")
    f = sg.sqrt(sg.relu(x * y))
    H = sg.hessian(f, [x, y])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 1/sqrt(0) is computed, then gated
        assert sg.evaluate(H, {x: 1.0, y: -1.0}) == [[0.0, 0.0], [0.0, 0.0]]
    np.testing.assert_allclose(sg.evaluate(H, {x: 1.0, y: 4.0}),
                               [[-0.5, 0.125], [0.125, -0.03125]], rtol=1e-12)


def test_a_hessian_through_a_sum_of_a_vector_has_scalar_entries():
    """Found by mutation testing: edge pushing handles scalar nodes only; sum(exp(x c)) y with
    a constant vector c goes through vector nodes, and its Hessian entries are the scalars
    y sum(c^2 exp(c x)), sum(c exp(c x)) and 0, not vectors of the summands."""
    x, y = sg.scalars("x_ts y_ts")
    c = np.array([1.0, 2.0, 3.0])
    H = sg.hessian(sg.sum(sg.exp(x * sg.const(c))) * y, [x, y])
    assert [[h.shape for h in row] for row in H] == [[(), ()], [(), ()]]
    got = sg.evaluate(H, {x: 0.5, y: 2.0})
    e = np.exp(0.5 * c)
    np.testing.assert_allclose(np.array(got, dtype=float),
                               [[2.0 * np.sum(c * c * e), np.sum(c * e)], [np.sum(c * e), 0.0]],
                               rtol=1e-12)
