"""sg.explain on tensor graphs: the trace of a scalar function of vectors and matrices ends at
the gradient, every printed step reads back (as numpy) to the value of the delta it defines,
and it never crashes. (A fuzz of some 3,000 graphs found the defects fixed here; the tests run
a few dozen.)"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import symgrad as sg
from tests.strategies import dags, point_is_safe, points
from tests.test_readable import _NP, TextReader, _names

FAST = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


def _softmax(a, axis=-1):  # as sg.softmax: the last axis by default (every axis: axis=None)
    a = np.asarray(a)
    e = np.exp(a - a.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _diag(v):  # a column scaling prints diag(r^T) when r is a row: the diagonal of r
    v = np.asarray(v)
    if v.ndim == 2 and 1 in v.shape:
        return np.diag(v.ravel())
    return np.apply_along_axis(np.diag, -1, v) if v.ndim > 1 else np.diag(v)


_ENV_NP = {"softmax": _softmax, "log_softmax": lambda a, axis=-1: np.log(_softmax(a, axis)),
           "diag": _diag}
# printed as their operand, or (3-d) in a notation the reader does not know
_UNREADABLE = ("reshape", "broadcast_to", "expand_dims", "outer", "gram", "diag", "take")


def _read(text, env):
    """The value of symgrad's text, read as numpy (tests/test_readable.py's reader)."""
    saved = dict(_NP)
    _NP.update(_ENV_NP)
    try:
        with np.errstate(all="ignore"):
            return np.asarray(TextReader(text, env).read(), dtype=float)
    finally:
        _NP.clear()
        _NP.update(saved)


def _final_steps(ex, ws, fname):
    out = {}
    for s in ex.steps:
        for w in ws:
            lab = w.attrs["vname"]
            if s.lhs in (f"d{fname}/d{lab}", f"d{fname}/d({lab})"):
                out[w] = s
    return out


def _check(f, ws, vals, read_back=True, fname="f"):
    ex = sg.explain(f, ws, show=False)
    grads = sg.evaluate(sg.grad(f, ws), vals)
    final = _final_steps(ex, ws, fname)
    for w, g in zip(ws, grads):
        s = final[w]
        got = sg.evaluate(s.expr, vals)
        np.testing.assert_allclose(np.asarray(got, float), np.asarray(g, float), rtol=1e-7,
                                   atol=1e-10, err_msg=str(ex))
    if not read_back:
        return ex
    env = {v.attrs["vname"]: vals[v] for v in vals}
    env.update(_names(f, vals))
    env.update({f"e_{i}": np.eye(3)[i] for i in range(3)})  # take's basis vectors (K = 3)
    for lab, d, _, _ in ex.forward:
        env[lab] = _read(d, env)
    for s in ex.steps:
        want = np.asarray(sg.evaluate(s.expr, vals),
                          float)
        for txt in (s.formula, s.value):
            if txt is None:
                continue
            got = _read(txt, env)
            if got.size == 1 and want.size > 1:  # a broadcast prints as its operand
                got = np.broadcast_to(got.reshape(()), want.shape)
            if "1^T" in txt and got.ndim == 1 and want.ndim == 2:  # v 1^T: the reader's 1 is
                got = np.broadcast_to(got[:, None], want.shape)  # a scalar; spread v as columns
            assert got.shape == want.shape, (f"{s.lhs} = {txt}", got.shape, want.shape, str(ex))
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8,
                                       err_msg=f"{s.lhs} = {txt}\n{ex}")
        env[s.lhs] = want
    return ex


@FAST
@given(st.data(), st.sampled_from(["sum", "mean"]))
def test_explain_of_a_random_tensor_graph(data, reduce):
    e = data.draw(dags(tensor=True), label="e")
    f = sg.sum(e) if reduce == "sum" else sg.mean(e)
    ws = sg.variables(f)
    vals = data.draw(points(ws), label="point")
    assume(point_is_safe(f, vals))
    note(str(f))
    order = sg.topo_order([f])
    readable = not any(n.op.name in _UNREADABLE or n.ndim > 2 or
                       n.op.name == "transpose" and n.ndim != 2 for n in order)
    _check(f, ws, vals, read_back=readable)


def _models(sym):
    d, n_, k, l_ = ("d", "N", "K", "l") if sym else (3, 5, 3, 4)
    x, c, w = sg.vector("tx", d), sg.vector("tc", l_), sg.vector("tw", l_)
    U = sg.matrix("tU", (l_, d))
    b, y = sg.scalars("tb ty")
    X, v, yv = sg.matrix("tX", (n_, d)), sg.vector("tv", d), sg.vector("tyv", n_)
    W, bb = sg.matrix("tW", (k, d)), sg.vector("tbb", k)
    z = W @ x + bb
    return {
        "vector mlp": (sg.bce(sg.sigmoid(w @ sg.sigmoid(U @ x + c) + b), y), [U, c, w, b]),
        "logistic regression": (sg.mean(sg.bce(sg.sigmoid(X @ v + b), yv)), [v, b]),
        "softmax cross-entropy": (-sg.take(sg.log_softmax(z), 1), [W, bb]),
        "least squares": (sg.mean((X @ v - yv) ** 2.0) + 0.5 * (v @ v), [v]),
        "batch mlp": (sg.mean(sg.bce(sg.sigmoid(sg.tanh(X @ sg.transpose(U)) @ w + b), yv)),
                      [U, w, b]),
        "column sums": (sg.sum(sg.tanh(sg.sum(U, axis=1)) * c), [U]),
        "transposed product": (sg.sum(sg.transpose(U) @ c), [U, c]),
    }


@pytest.mark.parametrize("sym", [False, True], ids=["numeric sizes", "symbolic sizes"])
@pytest.mark.parametrize("model", sorted(_models(False)))
def test_explain_of_the_lecture_models(model, sym):
    f, ws = _models(sym)[model]
    sizes = {"d": 3, "N": 5, "K": 3, "l": 4}
    rng = np.random.default_rng(0)
    vals = {}
    for v in sg.variables(f):
        shape = tuple(sizes.get(s, s) for s in v.shape)
        vals[v] = float(rng.uniform(-1, 1)) if not shape else rng.uniform(-1, 1, shape)
        if v.attrs["vname"] in ("ty", "tyv"):
            vals[v] = (np.asarray(vals[v]) > 0) * 1.0
    # symbolic sizes: the values are checked, the text not read (it has (1/N))
    _check(f, ws, vals, read_back=not sym)


def test_a_column_spread_prints_as_v_times_ones_transposed():
    # d sum(A^T c)/dA = c 1^T and d sum(tanh(rowsums(A)) c)/dA = (...) 1^T: both printed as
    # their operand (c^T, a row; or a vector that numpy spreads along the rows)
    A, c = sg.matrix("pA", (2, 3)), sg.vector("pc", 2)
    assert str(sg.grad(sg.sum(sg.transpose(A) @ c), A)) == "pc 1^T"
    g = sg.grad(sg.sum(sg.sum(A, axis=1) * c), A)
    assert str(g) == "pc 1^T"
    assert sg.latex(g) == r"\mathrm{pc} \mathbf{1}^{T}"
    ex = sg.explain(sg.sum(sg.transpose(A) @ c), A, show=False)
    assert ex.steps[-1].formula == "pc 1^T"
    # a broadcast scalar transposed is a broadcast, which as the whole formula is the scalar
    # times ones (it printed px, a scalar); a vector spread along the rows, as the whole
    # formula, is 1 v^T (it printed the vector alone, a column by the convention)
    x = sg.scalar("px")
    assert str(sg.transpose(sg.broadcast_to(x, (3, 2)))) == "px 1 1^T"
    assert str(sg.grad(sg.sum(A @ sg.vector("pv", 3)), A)) == "1 pv^T"
