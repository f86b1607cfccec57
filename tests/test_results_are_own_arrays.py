"""Every array a compiled function returns is its own: it shares no memory with the caller's
inputs or with another result, and it is writable. A gradient that is an input (the gradient
of sum(a*b) wrt b is a) came back as the caller's array, so that an in-place update of the
gradient changed the parameter; outputs that were views of inputs, repeated outputs and
read-only diagonals did the same in their ways."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symgrad as sg
from tests.strategies import dags, points, to_scalar

a, b, c = (sg.vector(f"{n}_own", 3) for n in "abc")
M = sg.matrix("M_own", (2, 3))
S = sg.matrix("S_own", (3, 3))
w = sg.vector("w_own", 2)
s = sg.scalar("s_own")
x, y = sg.scalars("x_own y_own")
VALS = {a: np.array([1.0, 2.0, 3.0]), b: np.ones(3), c: np.array([0.5, -1.0, 2.0]),
        M: np.arange(6.0).reshape(2, 3), w: np.array([1.0, 2.0]), S: np.arange(9.0).reshape(3, 3)}


def _own(results, inputs) -> None:
    arrays = [r for r in results if isinstance(r, np.ndarray)]
    for i, r in enumerate(arrays):
        assert r.flags.writeable, i
        for v in inputs:
            if isinstance(v, np.ndarray):
                assert not np.shares_memory(r, v), i
        for other in arrays[:i]:
            assert not np.shares_memory(r, other), i


CASES = {
    "gradient that is an input": lambda: sg.grad(sg.sum(a * b) + sg.sum(a * c), [a, b, c]),
    "jacobian that is an input": lambda: [sg.jacobian(M @ b, b)],
    "views of inputs": lambda: [b, M.T, sg.reshape(M, (3, 2)), sg.stop_gradient(b),
                                sg.take(M, 1), b.named("b_alias_own")],
    "diagonals": lambda: [sg.diagonal(S), sg.diagonal(S * 2.0)],
    "repeated outputs": lambda: [M * 2.0, M * 2.0, (M * 2.0).T],
    "straight-through values": lambda: [sg.straight_through(b, sg.sigmoid(c)),
                                        sg.straight_through(sg.sum(a), sg.sigmoid(c))],
    # views of a broadcast are read-only and share entries: the gradient of
    # sum(mean(M.T, 0) * w) wrt M came back as broadcast_to(...).T, and g *= 0.1 raised
    "views of a broadcast": lambda: [
        sg.grad(sg.sum(sg.mean(M.T, axis=0) * w), M),
        *(view(sg.broadcast_to(sg.tanh(a), (2, 3)))
          for view in (sg.transpose, lambda e: sg.take(e, 0), sg.stop_gradient,
                       lambda e: sg.expand_dims(e, 0)))],
    "a row of a constant": lambda: [sg.take(sg.const(np.eye(3)), 1) * 1.0 + a * 0.0,
                                    sg.take(sg.const(np.eye(3)), 1)],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_results_share_no_memory(name):
    outs = CASES[name]()
    ins = [v for v in VALS if v in set(sg.variables(outs))]
    f = sg.compile(outs, ins)
    args = [VALS[v].copy() for v in ins]
    before = [v.copy() for v in args]
    first = f(*args)
    _own(first, args)
    want = [np.array(r, copy=True) for r in first]
    for r in first:
        r[...] = -7.0  # the caller updates its results in place
    for arg, old in zip(args, before):
        np.testing.assert_array_equal(arg, old)  # its inputs did not change
    for r, w in zip(f(*args), want):  # nor did the next call
        np.testing.assert_array_equal(r, w)


def test_evaluate_and_samples_return_their_own_arrays():
    arr = VALS[a].copy()
    assert not np.shares_memory(sg.evaluate(a, {a: arr}), arr)
    xs = np.array([1.0, 2.0])
    out = sg.compile([s, sg.sum(a) * s], [s, a])(xs, arr)  # samples of a scalar input
    _own(out, [xs, arr])
    ys = np.array([3.0, 4.0])
    _own(sg.compile([x * y, *sg.grad(x * y, [x, y])], [x, y])(xs, ys), [xs, ys])


def test_numbers_stay_numbers():
    assert sg.compile(x, [x])(2.0) == 2.0
    assert isinstance(sg.compile(sg.sum(a) * 1.0, [a])(VALS[a]), np.float64)


@settings(max_examples=max(1, settings.default.max_examples // 5))
@given(st.data())
def test_random_graphs_and_their_gradients_return_their_own_arrays(data):
    e = data.draw(dags(tensor=True, max_ops=6), label="e")
    ws = sg.variables(e)
    outs = [e, *sg.grad(to_scalar(e), ws)]
    vals = data.draw(points(ws), label="point")
    args = [np.array(vals[w]) if w.ndim else vals[w] for w in ws]
    with np.errstate(all="ignore"):
        _own(sg.compile(outs, ws)(*args), args)


def test_a_small_numba_result_does_not_keep_a_large_buffer_alive():
    """A fused loop writes its results into one buffer of the broadcast shape; a result
    with fewer entries is copied out (mutation testing: a view kept 2.4 MB alive for 24
    bytes)."""
    pytest.importorskip("numba")
    x, y = sg.scalars("x_sb y_sb")
    f = sg.compile([sg.exp(x) * 2.0, x * y + 1.0], [x, y], backend="numba")
    a, _ = f(np.linspace(0, 1, 3), np.linspace(0, 1, 100_000).reshape(-1, 1))
    assert a.flags.owndata and a.nbytes == 24


def test_an_input_fitted_to_another_inputs_size_is_copied_out():
    """The gradient of w @ v wrt w is v fitted to w's size (n,) (a guard around fit_shape, a
    view of v): the caller gets a copy, not its own v (found by mutation testing: fit_shape
    left out of the views walked to the input)."""
    w, v = sg.vector("w_fit", "n"), sg.vector("v_fit", "m")
    f = sg.compile(sg.grad(w @ v, w), [w, v])
    wv, vv = np.zeros(3), np.array([1.0, 2.0, 3.0])
    r = f(wv, vv)
    np.testing.assert_array_equal(r, [1.0, 2.0, 3.0])
    _own([r], [wv, vv])
    r[...] = 7.0
    np.testing.assert_array_equal(vv, [1.0, 2.0, 3.0])  # the caller's v is unchanged
