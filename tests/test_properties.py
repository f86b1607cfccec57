"""Properties over random expression DAGs (tests/strategies.py), 300 examples each in CI.

- the compiled gradient equals central finite differences;
- for scalar graphs it equals sympy.diff;
- sg.simplify keeps the value and never grows the node count;
- a compiled function equals sg.evaluate and the plain (no reuse, no math) version, and a
  batch of samples equals each sample, in graphs of scalars and graphs with tensors;
- at inf, nan, zeros and huge values every version gives numpy's answer and dtype (1,500
  examples: the math and numpy versions of scalar graphs, the main and plain versions of
  graphs with tensors, float64 and float32);
- Hessians are symmetric;
- to_sympy / from_sympy keeps the value, for graphs of scalars (graphs with tensors:
  tests/test_sympy_tensors.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import sympy
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

import symgrad as sg
from tests.helpers import plain_numpy
from tests.strategies import dags, point_is_safe, points, scalar_cases, to_scalar

PLAIN = plain_numpy("plain_numpy_properties")

RTOL = 1e-5  # finite differences
EXACT = 1e-9  # two ways of computing the same value


def _args(ws, vals):
    return [vals[w] for w in ws]


def _central(fn, ws, vals, w, h=1e-6):
    """Central differences of the scalar compiled ``fn`` in every entry of ``w``."""
    base = np.array(vals[w], dtype=float)
    out = np.zeros(base.shape)
    for idx in np.ndindex(*base.shape):
        step = h * max(1.0, abs(float(base[idx])))
        hi, lo = base.copy(), base.copy()
        hi[idx] += step
        lo[idx] -= step
        up = dict(vals)
        up[w] = hi if base.shape else float(hi)
        dn = dict(vals)
        dn[w] = lo if base.shape else float(lo)
        out[idx] = (fn(*_args(ws, up)) - fn(*_args(ws, dn))) / (2 * step)
    return out


@given(st.data())
def test_gradient_equals_central_differences(data):
    e = data.draw(dags(tensor=True), label="e")
    f = to_scalar(e)
    ws = sg.variables(f)
    vals = data.draw(points(ws), label="point")
    assume(point_is_safe(f, vals, gap=1e-3))
    grads = sg.grad(f, ws)
    note(f"f = {f}")
    got = sg.compile(grads, ws)(*_args(ws, vals))
    fn = sg.compile(f, ws)
    scale = 1.0 + abs(fn(*_args(ws, vals)))
    for w, g in zip(ws, got):
        assert np.shape(g) == w.shape
        want = _central(fn, ws, vals, w)
        np.testing.assert_allclose(g, want, rtol=RTOL, atol=RTOL * 1e-1 * scale,
                                   err_msg=f"d/d{w}")


@given(st.data())
def test_scalar_gradient_equals_sympy_diff(data):
    f = data.draw(dags(tensor=False), label="f")
    ws = sg.variables(f)
    vals = data.draw(points(ws), label="point")
    assume(point_is_safe(f, vals, gap=1e-3))
    s = sg.to_sympy(f)
    syms = {w: sympy.Symbol(w.attrs["vname"], real=True) for w in ws}
    at = {syms[w]: sympy.Float(vals[w], 30) for w in ws}
    got = sg.evaluate(sg.grad(f, ws), vals)
    for w, g in zip(ws, got):
        want = float(sympy.diff(s, syms[w]).xreplace(at).evalf(20))
        np.testing.assert_allclose(g, want, rtol=EXACT, atol=EXACT, err_msg=f"d/d{w} of {f}")


@given(st.data())
def test_simplify_keeps_value_and_never_grows(data):
    e = data.draw(dags(tensor=data.draw(st.booleans(), label="tensor"), value_only=True),
                  label="e")
    s = sg.simplify(e)
    assert sg.count_nodes(s) <= sg.count_nodes(e)
    assert s.shape == e.shape
    ws = sg.variables(e)
    vals = data.draw(points(ws), label="point")
    assume(point_is_safe(e, vals))
    want = sg.evaluate(e, vals)
    got = sg.evaluate(s, {w: v for w, v in vals.items() if w in set(sg.variables(s))})
    np.testing.assert_allclose(got, want, rtol=EXACT, atol=EXACT)


@given(st.data())
def test_compile_equals_evaluate(data):
    tensor = data.draw(st.booleans(), label="tensor")
    e = data.draw(dags(tensor=tensor, value_only=True), label="e")
    ws = sg.variables(e)
    vals = data.draw(points(ws), label="point")
    assume(point_is_safe(e, vals))
    outs = [e, to_scalar(e)]
    fn = sg.compile(outs, ws)
    together = fn(*_args(ws, vals))
    # the plain version: no math version, no reused buffers, no inlining into Python numbers
    plain = sg.compile(outs, ws, backend=PLAIN)(*_args(ws, vals))
    for o, t, p in zip(outs, together, plain):
        np.testing.assert_allclose(t, sg.evaluate(o, vals), rtol=EXACT, atol=EXACT)
        np.testing.assert_allclose(t, p, rtol=EXACT, atol=EXACT)
    # scalar inputs given arrays: one result per sample (numpy broadcasting in a graph of
    # scalars, one call per sample in a graph with tensors)
    scalars = [w for w in ws if not w.shape]
    if scalars:
        samples = [{**vals, **{w: data.draw(points([w]), label="sample")[w] for w in scalars}}
                   for _ in range(3)]
        for s in samples:
            assume(point_is_safe(e, s))
        batch = [np.array([s[w] for s in samples]) if not w.shape else vals[w] for w in ws]
        got = fn(*batch)[0]
        want = [fn(*_args(ws, s))[0] for s in samples]
        np.testing.assert_allclose(got, want, rtol=EXACT, atol=EXACT)


@given(st.data())
def test_hessian_is_symmetric(data):
    f, ws, vals = data.draw(scalar_cases(), label="case")
    H = sg.hessian(f, ws)
    flat = [h for row in H for h in row]
    got = sg.compile(flat, ws)(*_args(ws, vals))
    k = len(ws)
    blocks = [[np.asarray(got[i * k + j]) for j in range(k)] for i in range(k)]
    for i, wi in enumerate(ws):
        for j, wj in enumerate(ws):
            hij = blocks[i][j].reshape(int(np.prod(wi.shape)), int(np.prod(wj.shape)))
            hji = blocks[j][i].reshape(int(np.prod(wj.shape)), int(np.prod(wi.shape)))
            assert blocks[i][j].shape == wi.shape + wj.shape
            scale = 1.0 + np.max(np.abs(hij), initial=0.0)
            np.testing.assert_allclose(hij, hji.T, rtol=EXACT, atol=EXACT * scale,
                                       err_msg=f"d2f/d{wi}d{wj} of {f}")


@given(st.data())
def test_sympy_round_trip_keeps_value(data):
    e = data.draw(dags(tensor=False, value_only=True), label="e")
    back = sg.from_sympy(sg.to_sympy(e), {w.attrs["vname"]: w for w in sg.variables(e)})
    ws = sg.variables(e)
    vals = data.draw(points(ws), label="point")
    assume(point_is_safe(e, vals))
    got = sg.evaluate(back, {w: v for w, v in vals.items() if w in set(sg.variables(back))})
    np.testing.assert_allclose(got, sg.evaluate(e, vals), rtol=EXACT, atol=EXACT)


_SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 3.0, 700.0, -700.0, 1e308, float("inf"), float("-inf"),
            float("nan")]


def _agree(got, want, rtol):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
    both = np.isfinite(got) & np.isfinite(want)
    assert np.array_equal(np.where(both, 0.0, got), np.where(both, 0.0, want), equal_nan=True)
    np.testing.assert_allclose(got[both], want[both], rtol=rtol, atol=0)


@settings(max_examples=max(1500, settings.default.max_examples))  # fast: 5x CI's default
@given(st.data())
def test_versions_agree_at_inf_nan_and_zero(data):
    """Every version gives numpy's answer, nan, inf, dtype and all: the math version of a graph
    of scalars (Python floats) and its numpy version (numpy floats); the main version of a graph
    with tensors (reused buffers, Python numbers) and the plain one, in float64 and float32."""
    tensor = data.draw(st.booleans(), label="tensor")
    e = data.draw(dags(tensor=tensor, value_only=True), label="e")
    ws = sg.variables(e)
    outs = [e, to_scalar(e), *sg.grad(to_scalar(e), ws)]
    fn = sg.compile(outs, ws)
    special = st.sampled_from(_SPECIAL)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if not tensor:
            vals = [data.draw(special, label=str(w)) for w in ws]
            got, want = fn(*vals), fn(*map(np.float64, vals))
            for g, w in zip(got, want):  # math and numpy's own functions differ in the last bit
                _agree(np.float64(g), w, rtol=1e-6)
            return
        dtype = data.draw(st.sampled_from([np.float64, np.float32]), label="dtype")
        vals = [np.array(data.draw(st.lists(special, min_size=int(np.prod(w.shape)),
                                             max_size=int(np.prod(w.shape)))),
                         dtype).reshape(w.shape) if w.shape else data.draw(special) for w in ws]
        got, want = fn(*vals), sg.compile(outs, ws, backend=PLAIN)(*vals)
        for g, w in zip(got, want):
            _agree(g, w, rtol=1e-12 if dtype == np.float64 else 1e-5)
