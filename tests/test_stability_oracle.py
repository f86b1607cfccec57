"""The stability rewrites change no value: random formulas made of the patterns they rewrite
(softmax, sigmoid and weighted-mean quotients in their many spellings: reciprocals, powers
-1, numbers folded into them, shifts of exp, views, sums of them), evaluated and compiled by
symgrad, against a plain numpy walk of the graph as built, at ordinary points where no
pattern overflows; gradients against central differences of that walk.

(A wrong rewrite is a wrong answer everywhere, not only where exp overflows: 2 (e (3/s)),
with the number 2 on a view of 3/s, once came out as 3 e/s.)"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.graph import topo_order

Z, Y = sg.scalar("z_or"), sg.scalar("y_or")
V, M = sg.vector("v_or", 3), sg.matrix("M_or", (2, 3))
B = np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]])
W3 = np.array([1.0, -2.0, 0.5])
NUMS = st.sampled_from([2.0, 3.0, -1.5, 0.5, 1.0])


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


_DIRECT = {
    "exp": np.exp, "log": np.log, "sigmoid": _sigmoid, "tanh": np.tanh,
    "softplus": lambda x: np.logaddexp(0.0, x), "neg": np.negative, "add": np.add,
    "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
    "matmul": np.matmul, "outer": np.outer, "take": lambda m, i: m[int(i)],
    "bce": lambda mu, y: -y * np.log(mu) - (1.0 - y) * np.log(1.0 - mu),
}


def direct(f: sg.Expr, values: dict) -> np.ndarray:
    """f's value by numpy, op by op, on the graph as built (no rewrite)."""
    got: dict[int, np.ndarray] = {}
    for n in topo_order([f]):
        a = [got[id(x)] for x in n.args]
        op, at = n.op.name, n.attrs
        if op == "var":
            r = values[at["vname"]]
        elif op == "const":
            r = at["value"]
        elif op in _DIRECT:
            r = _DIRECT[op](*a)
        elif op == "sum":
            r = np.sum(a[0], axis=at["axis"], keepdims=at["keepdims"])
        elif op == "reshape":
            r = np.reshape(a[0], at["shape"])
        elif op == "transpose":
            r = np.transpose(a[0], at["axes"])
        elif op == "broadcast_to":
            r = np.broadcast_to(a[0], at["shape"])
        else:
            raise AssertionError(f"the oracle has no rule for {op}")
        got[id(n)] = np.asarray(r, dtype=float)
    return got[id(f)]


@st.composite
def vector_pattern(draw):
    u = draw(st.sampled_from([V, 2 * V, V + 1.0, -V, 3.0 - V, V * Y]))
    e = sg.exp(u)
    s = draw(st.sampled_from([sg.sum(e), sg.sum(e, keepdims=True), sg.mean(e)]))
    c, d = draw(NUMS), draw(NUMS)
    return draw(st.sampled_from([
        e / s, e * (1 / s), e * s ** -1, c * e * (1 / s), e * (c / s), c * (e * (d / s)),
        (c * e) * (d / s), sg.exp(u + c) / s, sg.sum(e * (1 / s)),
        (e @ B) * (1 / s) if s.ndim == 0 else e * (c * s ** -1),
        sg.dot(e, W3) * (1 / s) if s.ndim == 0 else e / s,
        sg.mean(e * W3) / sg.mean(e),
        # (28 November: each 1/s into an exp factor, exp(u - logsumexp(z)), or the softmax)
        sg.take(e, 0) / s if s.ndim == 0 else e / s,
        e * sg.exp(sg.take(V, 1)) / s ** 2 if s.ndim == 0 else e / s,
        sg.outer(e, e) / s ** 2 if s.ndim == 0 else e / s,
        sg.sum(sg.exp(2 * V)) / s ** 2 if s.ndim == 0 else e / s,
        (e / s) * (sg.exp(Y) / s) if s.ndim == 0 else e / s,
        sg.exp(Y) * (s ** 2) ** -1 if s.ndim == 0 else e / s,
        -e * s ** -1, c * sg.exp(Y) / s if s.ndim == 0 else e / s]))


@st.composite
def scalar_pattern(draw):
    u = draw(st.sampled_from([Z, 2 * Z, Z + 1.0, -Z, 2.0 - Z, Z * Y, -(2 * Z)]))
    e = sg.exp(u)
    c = draw(NUMS)
    return draw(st.sampled_from([
        e / (1 + e), e * (1 / (1 + e)), e * (1 + e) ** -1, c * e * (1 / (1 + e)),
        e * (c / (1 + e)), e * sg.sigmoid(-u), e * (1 - sg.sigmoid(u)), e * (c * sg.sigmoid(-u)),
        (1 + sg.exp(-u)) ** -1, sg.log(sg.sigmoid(u) * (1 / e)), sg.log(1 + abs(c) * e),
        sg.exp(u + c) / (1 + e), sg.exp(-u + c) / (1 + sg.exp(-u)), sg.sigmoid(u) ** -1,
        sg.softplus(u) ** -1, sg.bce(1 - sg.sigmoid(u), 0.25), Y / (c * e), Y / sg.sigmoid(u),
        Y / (1 - sg.sigmoid(u)),
        # (28 November: powers of 1 + exp, products of sigmoids, 1 + c exp)
        e / (1 + e) ** 2, sg.exp(2 * u) / (1 + e) ** 3, (1 + e) ** -2, (1 + e) ** -3,
        c * Y * e * (1 + e) ** -2, 1 / (sg.sigmoid(u) * (1 - sg.sigmoid(u))),
        sg.sigmoid(-u) * sg.sigmoid(u) * e, Y * sg.sigmoid(-u) ** 2 * e,
        (1 - sg.sigmoid(u)) * sg.sigmoid(-u) * e, 1 / (1 + abs(c) * e),
        1 / (1 + sg.exp(sg.const(2.0)) * e), sg.exp(Y) * sg.exp(u) / (1 + e) ** 2]))


@st.composite
def matrix_pattern(draw):
    E = sg.exp(M)
    c = draw(NUMS)
    return draw(st.sampled_from([
        E / sg.sum(E, 1, keepdims=True), E * (1 / sg.sum(E, 1, keepdims=True)),
        (E @ B) / sg.sum(E, 1, keepdims=True),
        (E @ W3) / sg.sum(E, 1, keepdims=True),  # (a vector: (2,) by (2, 1) is (2, 2))
        E / sg.reshape(sg.sum(E, 0, keepdims=True), (3,)),  # (the column sums, as numpy aligns)
        E / sg.transpose(sg.sum(sg.exp(M.T), 0, keepdims=True)),
        sg.sum(E * M, 0) / sg.sum(E, 0), sg.mean(E * 2.0, 1) / sg.mean(E, 1),
        c * E * (1 / sg.sum(E, 0, keepdims=True)), E * (c * sg.sum(E, 0, keepdims=True) ** -1),
        sg.exp(M) * sg.transpose(1 - sg.sigmoid(M.T))]))


@st.composite
def formula(draw):
    pattern = draw(st.sampled_from([vector_pattern, scalar_pattern, matrix_pattern]))
    f = draw(pattern())
    how = draw(st.sampled_from(["alone", "times", "plus"]))
    if how != "alone":
        g = draw(pattern())
        try:
            f = f * g if how == "times" else f + g
        except sg.ShapeError:
            pass
    return sg.sum(f) if f.shape and draw(st.booleans()) else f


_finite = st.floats(-2.0, 2.0, allow_nan=False)


@settings(max_examples=250, deadline=None)
@given(formula(), st.lists(_finite, min_size=3, max_size=3),
       st.lists(_finite, min_size=6, max_size=6), _finite, st.floats(0.5, 1.5))
def test_stable_rewrites_change_no_value_or_gradient(f, v, m, z, y):
    values = {"v_or": np.array(v), "M_or": np.reshape(m, (2, 3)), "z_or": z, "y_or": y}
    ins = [x for x in (Z, Y, V, M) if x in set(topo_order([f]))]
    feed = {x: values[x.attrs["vname"]] for x in ins}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        ref = direct(f, values)
        if not np.all(np.isfinite(ref)):
            return  # (a log of a negative number: nothing to compare)
        np.testing.assert_allclose(sg.evaluate(f, feed), ref, rtol=1e-9, atol=1e-12,
                                   err_msg=str(f))
        np.testing.assert_allclose(sg.compile(f, ins)(*[feed[x] for x in ins]), ref,
                                   rtol=1e-9, atol=1e-12, err_msg=str(f))
        if f.shape:
            return
        h = 1e-6
        for x in ins:
            name = x.attrs["vname"]
            d = np.cos(np.arange(1.0, np.size(values[name]) + 1.0)).reshape(np.shape(values[name]))
            g = np.asarray(sg.evaluate(sg.grad(f, x), feed), dtype=float)
            up, down = dict(values), dict(values)
            up[name], down[name] = values[name] + h * d, values[name] - h * d
            fd = (direct(f, up) - direct(f, down)) / (2 * h)
            assert np.isclose(np.sum(g * d), fd, rtol=1e-5, atol=1e-6), (str(f), name)
