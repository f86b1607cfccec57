"""Scalar inputs given arrays of samples, in graphs with vectors or matrices: the compiled
function computes once per sample (symgrad._per_sample) and stacks the results, each output
with the samples' shape in front of its own."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from tests.helpers import plain_numpy


def mlp(tag: str):
    """The lecture's vector MLP on one sample x, with a scalar bias b and a scalar target y."""
    x, c, w = sg.vector(f"x{tag}", 4), sg.vector(f"c{tag}", 3), sg.vector(f"w{tag}", 3)
    U = sg.matrix(f"U{tag}", (3, 4))
    b, y = sg.scalars(f"b{tag} y{tag}")
    phi = sg.sigmoid(U @ x + c)
    loss = sg.bce(sg.sigmoid(sg.dot(w, phi) + b), y)
    ins = [U, c, w, b, x, y]
    return ins, [loss, *sg.grad(loss, [U, c, w, b])]


def values(dtype=np.float64):
    rng = np.random.default_rng(0)
    return [rng.normal(size=(3, 4)).astype(dtype), rng.normal(size=3).astype(dtype),
            rng.normal(size=3).astype(dtype), 0.2, rng.normal(size=4).astype(dtype), 1.0]


def test_each_sample_is_the_call_with_that_scalar():
    ins, outs = mlp("_a")
    f = sg.compile(outs, ins)
    vals = values()
    bs = np.array([-1.0, 0.0, 0.5, 3.0])
    got = f(*vals[:3], bs, *vals[4:])
    assert [g.shape for g in got] == [(4,), (4, 3, 4), (4, 3), (4, 3), (4,)]
    for j, b in enumerate(bs):
        one = f(*vals[:3], float(b), *vals[4:])
        for g, want in zip(got, one):
            np.testing.assert_array_equal(g[j], want)  # the same code on the same numbers


def test_samples_of_two_inputs_broadcast_together():
    ins, outs = mlp("_b")
    f = sg.compile(outs, ins)
    vals = values()
    bs, ys = np.array([[0.1], [0.7], [-0.4]]), np.array([0.0, 1.0])
    got = f(*vals[:3], bs, vals[4], ys)
    assert [g.shape for g in got] == [(3, 2), (3, 2, 3, 4), (3, 2, 3), (3, 2, 3), (3, 2)]
    for i in range(3):
        for k in range(2):
            one = f(*vals[:3], bs[i, 0], vals[4], ys[k])
            for g, want in zip(got, one):
                np.testing.assert_array_equal(g[i, k], want)


def test_samples_that_do_not_broadcast_are_named():
    ins, outs = mlp("_c")
    f = sg.compile(outs, ins)
    vals = values()
    with pytest.raises(sg.ShapeError, match=r"inputs b_c \(3,\) and y_c \(2,\): arrays of "
                                            r"samples for scalar inputs must broadcast together"):
        f(*vals[:3], np.ones(3), vals[4], np.ones(2))


def test_a_bad_tensor_input_is_still_named():
    ins, outs = mlp("_d")
    f = sg.compile(outs, ins)
    vals = values()
    with pytest.raises(sg.ShapeError, match=r"input x_d: expected shape \(4,\), got \(5,\)"):
        f(*vals[:3], np.ones(3), np.ones(5), 1.0)


def test_float32_samples_stay_float32():
    ins, outs = mlp("_e")
    f = sg.compile(outs, ins)
    vals = values(np.float32)
    got = f(*vals[:3], np.array([0.1, 0.2], np.float32), vals[4], np.float32(1.0))
    assert {g.dtype for g in got} == {np.dtype(np.float32)}


def test_no_samples_gives_empty_outputs_of_the_right_shape():
    ins, outs = mlp("_f")
    f = sg.compile(outs, ins)
    vals = values()
    got = f(*vals[:3], np.ones((0, 2)), *vals[4:])
    assert [g.shape for g in got] == [(0, 2), (0, 2, 3, 4), (0, 2, 3), (0, 2, 3), (0, 2)]
    assert {g.dtype for g in got} == {np.dtype(np.float64)}


def test_an_unused_scalar_input_given_samples_is_ignored():
    v, s, t = sg.vector("v_g", 3), sg.scalar("s_g"), sg.scalar("t_g")
    f = sg.compile(sg.sum(v) * s, [v, s, t])
    assert f(np.ones(3), 2.0, np.arange(5.0)) == pytest.approx(6.0)
    np.testing.assert_allclose(f(np.ones(3), np.arange(2.0), np.arange(5.0)), [0.0, 3.0])


def test_single_output_and_evaluate():
    v, s = sg.vector("v_h", 3), sg.scalar("s_h")
    e = sg.sum(sg.tanh(v * s))
    f = sg.compile(e, [v, s])
    vv, ss = np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0])
    want = [np.sum(np.tanh(vv * k)) for k in ss]
    np.testing.assert_allclose(f(vv, ss), want, rtol=1e-15)
    np.testing.assert_allclose(sg.evaluate(e, {v: vv, s: ss}), want, rtol=1e-15)
    # the gradient wrt the scalar itself, per sample, against central differences
    g = sg.compile(sg.grad(e, s), [v, s])
    h = 1e-6
    fd = [(f(vv, k + h) - f(vv, k - h)) / (2 * h) for k in ss]
    np.testing.assert_allclose(g(vv, ss), fd, rtol=1e-7)


def test_the_numpy_versions_catch_it_and_other_backends_say_so():
    v, s = sg.vector("v_i", 3), sg.scalar("s_i")
    f = sg.compile(sg.sum(v) * s, [v, s])
    assert "except _PerSample:" in f.source
    scalar_graph = sg.compile(s * s, [s])
    assert "_PerSample" not in scalar_graph.source  # numpy broadcasting does it there
    other = sg.compile(sg.sum(v) * s, [v, s], backend=plain_numpy("plain_numpy_per_sample"))
    assert "_PerSample" not in other.source
    with pytest.raises(sg.ShapeError, match=r"input s_i: declared a scalar, got an array of "
                                            r"shape \(2,\); .* on the numpy backend only"):
        other(np.ones(3), np.ones(2))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_scalar_graph_names_the_samples_that_do_not_broadcast(backend):
    if backend == "numba":
        pytest.importorskip("numba")
    x, y, z = sg.scalars("x_j y_j z_j")
    f = sg.compile([x * y * z, x + 1.0], [x, y, z], backend=backend)
    np.testing.assert_allclose(f(np.arange(3.0), np.arange(3.0), 2.0)[0], [0.0, 2.0, 8.0])
    with pytest.raises(sg.ShapeError, match=r"^inputs x_j \(3,\) and y_j \(2,\): arrays of "
                                            r"samples for scalar inputs must broadcast together"):
        f(np.arange(3.0), np.arange(2.0), 1.0)
