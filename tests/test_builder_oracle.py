"""The algebra symgrad does while it builds a graph changes no value: random formulas, each
built twice, once with symgrad's operators (whose rules fold constants and cancel terms:
a - a, 0 a, (a b)/a, y**k / y, double negations and transposes, ...) and once as the numpy
function it stands for, written literally, agree at ordinary points where the literal formula
is finite (a cancellation may give a number where it is 0/0: trust.md); and so do the stable
rewrites and the code symgrad compiles from the built graph.

(The other property tests differentiate and compile the graph as built, so a rule that
changed the function itself would pass them: this one compares against the formula.)"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg

X0, X1 = sg.scalars("x0_bo x1_bo")
V = sg.vector("v_bo", 3)
A = sg.matrix("A_bo", (2, 3))
LEAVES = [(X0, "x0_bo"), (X1, "x1_bo"), (V, "v_bo"), (A, "A_bo")]


def _sp(x):
    return np.logaddexp(0.0, x)


def _sig(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _neg(x):
    return -x


# name -> (symgrad form, numpy form), defined for every real operand
UNARY = {
    "exp": (lambda a: sg.exp(sg.tanh(a) * 2.0), lambda a: np.exp(np.tanh(a) * 2.0)),
    "log": (lambda a: sg.log(sg.softplus(a) + 0.5), lambda a: np.log(_sp(a) + 0.5)),
    "sqrt": (lambda a: sg.sqrt(a * a + 0.5), lambda a: np.sqrt(a * a + 0.5)),
    "tanh": (sg.tanh, np.tanh), "sin": (sg.sin, np.sin), "sigmoid": (sg.sigmoid, _sig),
    "softplus": (sg.softplus, _sp), "neg": (lambda a: -a, np.negative),
    "square": (sg.square, np.square), "cube": (lambda a: a ** 3, lambda a: a ** 3),
    "abs": (sg.abs, np.abs), "relu": (sg.relu, lambda a: np.maximum(a, 0.0)),
    "scale": (lambda a: 2.5 * a, lambda a: 2.5 * a),
    "shift": (lambda a: a - 1.5, lambda a: a - 1.5),
    "recip": (lambda a: 1 / (a * a + 0.5), lambda a: 1 / (a * a + 0.5)),
    "log_sigmoid": (lambda a: sg.log(sg.sigmoid(a)), lambda a: -_sp(-a)),
    "one_minus": (lambda a: 1 - sg.sigmoid(a), lambda a: 1 - _sig(a)),
}
UNARY_RULES = {  # forms the builder's rules rewrite
    "self_minus": (lambda a: a - a, lambda a: a - a),
    "zero_times": (lambda a: 0 * a + 1.0, lambda a: 0 * a + 1.0),
    "double_neg": (lambda a: _neg(_neg(a)), lambda a: _neg(_neg(a))),
    "power_over": (lambda a: (a * a + 1.0) ** 3 / (a * a + 1.0),
                   lambda a: (a * a + 1.0) ** 3 / (a * a + 1.0)),
    "sum_self": (lambda a: a + a, lambda a: a + a),
    "times_one": (lambda a: 1 * a * 1.0, lambda a: 1 * a * 1.0),
    "gather": (lambda a: 2.0 * (3.0 * a), lambda a: 2.0 * (3.0 * a)),
    "c_over": (lambda a: 2.0 * (3.0 / (a * a + 1.0)), lambda a: 2.0 * (3.0 / (a * a + 1.0))),
    "over_c": (lambda a: 2.0 * (a / 4.0), lambda a: 2.0 * (a / 4.0)),
    "exp_pow": (lambda a: sg.exp(sg.tanh(a)) ** -1.5, lambda a: np.exp(np.tanh(a)) ** -1.5),
}
BINARY = {
    "add": (lambda a, b: a + b, np.add), "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / (b * b + 0.5), lambda a, b: a / (b * b + 0.5)),
    "pow": (lambda a, b: (sg.softplus(a) + 0.5) ** sg.tanh(b),
            lambda a, b: (_sp(a) + 0.5) ** np.tanh(b)),
    "maximum": (sg.maximum, np.maximum), "minimum": (sg.minimum, np.minimum),
    "bce": (lambda a, b: sg.bce(sg.sigmoid(a), b), lambda a, b: b * _sp(-a) + (1 - b) * _sp(a)),
}
BINARY_RULES = {  # forms the builder's rules rewrite
    "cancel": (lambda a, b: (sg.exp(a) * b) / sg.exp(a), lambda a, b: (np.exp(a) * b) / np.exp(a)),
    "mul_div": (lambda a, b: a * (b / a), lambda a, b: a * (b / a)),  # (a = 0: nan, skipped)
    "sub_add": (lambda a, b: (a + b) - b, lambda a, b: (a + b) - b),
    "neg_sub": (lambda a, b: -(a - b), lambda a, b: -(a - b)),
    "neg_over": (lambda a, b: -a / (b * b + 1.0), lambda a, b: -a / (b * b + 1.0)),
    "minus_neg": (lambda a, b: a - (-b), lambda a, b: a - (-b)),
    "exp_pow_var": (lambda a, b: sg.exp(sg.tanh(a)) ** b, lambda a, b: np.exp(np.tanh(a)) ** b),
    "recip_pow": (lambda a, b: (a / (b * b + 1.0)) ** -1, lambda a, b: (a / (b * b + 1.0)) ** -1),
    "over_recip": (lambda a, b: a / (b * b + 1.0) ** -1, lambda a, b: a / (b * b + 1.0) ** -1),
    # (an array of -1 broadcasts: a / b**[-1, -1, -1] is no a b)
    "over_recip_array": (lambda a, b: a / (b * b + 1.0) ** np.full(3, -1.0),
                         lambda a, b: a / (b * b + 1.0) ** np.full(3, -1.0)),
    "neg_times": (lambda a, b: (-a) * b, lambda a, b: (-a) * b),
    "times_neg": (lambda a, b: a * (-b), lambda a, b: a * (-b)),
    "neg_scaled": (lambda a, b: -(-1.8 * a) + b, lambda a, b: -(-1.8 * a) + b),
}


MATMULS = [  # (symgrad, numpy) forms of a product of a and b, b's first axis a's last
    (lambda a, b: a @ b, np.matmul),
    (lambda a, b: (-a) @ b, lambda a, b: (-a) @ b),
    (lambda a, b: a @ (-b), lambda a, b: a @ (-b)),
    (lambda a, b: sg.eye(a.shape[-1]) @ b, lambda a, b: np.eye(np.shape(a)[-1]) @ b),
    (lambda a, b: a @ (2.5 * sg.eye(b.shape[0])) @ b,
     lambda a, b: a @ (2.5 * np.eye(np.shape(b)[0])) @ b),
    (lambda a, b: a @ (0 * b), lambda a, b: a @ (0 * b)),
]
# a scalar s in tensor forms the builder's rules rewrite (products with a broadcast number,
# transposes of transposes, sums of broadcasts, outer products)
TENSOR_RULES = [
    (lambda s: sg.broadcast_to(s, (2,)) @ A, lambda s, vals: np.full(2, s) @ vals["A_bo"]),
    (lambda s: A @ sg.broadcast_to(s, (3,)), lambda s, vals: vals["A_bo"] @ np.full(3, s)),
    (lambda s: sg.sum(sg.broadcast_to(s, (2, 3)) * A, 0),
     lambda s, vals: np.sum(np.full((2, 3), s) * vals["A_bo"], 0)),
    (lambda s: (s * A).T.T + A, lambda s, vals: (s * vals["A_bo"]) + vals["A_bo"]),
    (lambda s: sg.outer(s * V, V) @ V, lambda s, vals: np.outer(s * vals["v_bo"], vals["v_bo"])
     @ vals["v_bo"]),
    (lambda s: sg.sum(sg.broadcast_to(s, (3,))) + s, lambda s, vals: 3 * s + s),
    (lambda s: sg.reshape(sg.reshape(s * A, (6,)), (3, 2)),
     lambda s, vals: np.reshape(s * vals["A_bo"], (3, 2))),
]


@st.composite
def twins(draw, max_ops: int = 12):
    """(symgrad expression, numpy function of the values) built side by side; each step
    applies an op to the newest node (or, now and then, an older one)."""
    pool = [(e, (lambda vals, k=k: vals[k])) for e, k in LEAVES]
    pool.append(draw(st.sampled_from(pool)))
    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(["unary", "binary", "unary rule", "binary rule", "sum",
                                     "transpose", "matmul", "tensor rule", "reshape"]))
        e, f = pool[-1] if draw(st.integers(0, 3)) else draw(st.sampled_from(pool))
        if kind.startswith("unary"):
            table = UNARY_RULES if kind.endswith("rule") else UNARY
            s, n = table[draw(st.sampled_from(sorted(table)))]
            pool.append((s(e), (lambda vals, f=f, n=n: n(f(vals)))))
        elif kind.startswith("binary"):
            e2, f2 = draw(st.sampled_from(pool))
            try:
                np.broadcast_shapes(e.shape, e2.shape)
            except ValueError:
                continue
            table = BINARY_RULES if kind.endswith("rule") else BINARY
            s, n = table[draw(st.sampled_from(sorted(table)))]
            pool.append((s(e, e2), (lambda vals, f=f, f2=f2, n=n: n(f(vals), f2(vals)))))
        elif kind == "sum" and e.ndim:
            axis = draw(st.sampled_from([None] + list(range(e.ndim))))
            keep = draw(st.booleans())
            pool.append((sg.sum(e, axis, keepdims=keep),
                         (lambda vals, f=f, axis=axis, keep=keep:
                          np.sum(f(vals), axis=axis, keepdims=keep))))
        elif kind == "transpose" and e.ndim == 2:
            pool.append((e.T, (lambda vals, f=f: np.transpose(f(vals)))))
        elif kind == "matmul" and e.ndim:
            fits = [p for p in pool if p[0].ndim and p[0].shape[0] == e.shape[-1]]
            if not fits:
                continue
            e2, f2 = draw(st.sampled_from(fits))
            s, n = draw(st.sampled_from(MATMULS))
            pool.append((s(e, e2), (lambda vals, f=f, f2=f2, n=n: n(f(vals), f2(vals)))))
        elif kind == "tensor rule" and e.ndim == 0:
            s, n = draw(st.sampled_from(TENSOR_RULES))
            pool.append((s(e), (lambda vals, f=f, n=n: n(f(vals), vals))))
        elif kind == "reshape" and e.ndim:
            size = int(np.prod(e.shape))
            to = draw(st.sampled_from([(size,), (size, 1), (1, size)]))
            pool.append((sg.reshape(e, to), (lambda vals, f=f, to=to: np.reshape(f(vals), to))))
    return pool[-1]


_vals = st.floats(-2.0, 2.0, allow_nan=False)


@settings(max_examples=500, deadline=None)
@given(twins(), _vals, _vals, st.lists(_vals, min_size=3, max_size=3),
       st.lists(_vals, min_size=6, max_size=6))
def test_the_built_graph_computes_the_formula(pair, x0, x1, v, a):
    e, f = pair
    vals = {"x0_bo": np.float64(x0), "x1_bo": np.float64(x1), "v_bo": np.array(v),
            "A_bo": np.reshape(a, (2, 3))}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        want = np.asarray(f(vals), dtype=float)
        if not np.all(np.isfinite(want)) or np.max(np.abs(want), initial=0.0) > 1e12:
            return  # (0/0 of mul_div at a = 0; a huge power: rounding, not algebra)
        used = [x for x, k in LEAVES if x in set(sg.topo_order([e]))]
        feed = {x: vals[k] for x, k in LEAVES}
        got = sg.evaluate(e, feed)
        assert np.shape(got) == want.shape, (str(e), np.shape(got), want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=str(e))
        compiled = sg.compile(e, used)(*[feed[x] for x in used])
        np.testing.assert_allclose(compiled, want, rtol=1e-9, atol=1e-9, err_msg=str(e))
