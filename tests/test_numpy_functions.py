"""numpy's functions called on expressions build symgrad nodes, or say they cannot."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg

v = sg.vector("v_npf", 3)
w = sg.vector("w_npf", 2)
A = sg.matrix("A_npf", (2, 3))
S = sg.matrix("S_npf", (3, 3))
x, y = sg.scalars("x_npf y_npf")
VALUES = {v: np.array([0.5, -1.0, 2.0]), w: np.array([1.5, 0.25]),
          A: np.arange(6.0).reshape(2, 3) - 2.0, S: np.arange(9.0).reshape(3, 3) / 4}

SAME_NODE = [  # numpy's call, the symgrad call that builds the same node, numpy on the values
    (lambda: np.sum(v), lambda: sg.sum(v), lambda a: np.sum(a[v])),
    (lambda: np.sum(A, axis=1, keepdims=True), lambda: sg.sum(A, axis=1, keepdims=True),
     lambda a: np.sum(a[A], axis=1, keepdims=True)),
    (lambda: np.mean(A, axis=0), lambda: sg.mean(A, axis=0), lambda a: np.mean(a[A], axis=0)),
    (lambda: np.dot(np.ones(3), v), lambda: sg.dot(np.ones(3), v),
     lambda a: np.dot(np.ones(3), a[v])),
    (lambda: np.dot(A, v), lambda: A @ v, lambda a: a[A] @ a[v]),
    (lambda: np.dot(2.0, v), lambda: 2.0 * v, lambda a: 2.0 * a[v]),
    (lambda: np.outer(v, w), lambda: sg.outer(v, w), lambda a: np.outer(a[v], a[w])),
    (lambda: np.transpose(A), lambda: A.T, lambda a: a[A].T),
    (lambda: np.reshape(A, (3, 2)), lambda: sg.reshape(A, (3, 2)),
     lambda a: a[A].reshape(3, 2)),
    (lambda: np.diag(v), lambda: sg.diag(v), lambda a: np.diag(a[v])),
    (lambda: np.diag(S), lambda: sg.diagonal(S), lambda a: np.diag(a[S])),
    (lambda: np.trace(S), lambda: sg.trace(S), lambda a: np.trace(a[S])),
]


@pytest.mark.parametrize("case", range(len(SAME_NODE)))
def test_numpy_functions_build_the_symgrad_node(case):
    via_numpy, via_sg, on_values = SAME_NODE[case]
    e = via_numpy()
    assert e is via_sg()
    np.testing.assert_allclose(sg.evaluate(e, VALUES), on_values(VALUES))


def test_shape_and_ndim():
    assert np.shape(A) == (2, 3) and np.ndim(v) == 1 and np.ndim(x) == 0


@pytest.mark.parametrize("call, match", [
    (lambda: np.concatenate([v, v]), "numpy.concatenate does not work on symgrad"),
    (lambda: np.linalg.norm(v), "numpy.linalg.norm does not work"),
    (lambda: np.allclose(v, 1.0), "numpy.allclose"),
    (lambda: np.sum(v, out=np.zeros(())), "numpy.sum: out="),
    (lambda: np.mean(v, dtype=np.float32), "numpy.mean: dtype="),
    (lambda: np.reshape(A, (3, 2), order="F"), "C order"),
    (lambda: np.outer(A, v), "two vectors"),
    (lambda: np.diag(v, k=1), "k=0"),
])
def test_other_numpy_functions_are_refused_by_name(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def test_what_numpy_did_before_is_kept_where_it_was_right():
    assert np.sum([x, y]) is x + y  # a list of scalar expressions: numpy adds them
    assert not np.any(np.ones(3) == x)  # == is node identity, as for Python numbers
    with pytest.raises(TypeError, match="ufunc"):
        np.exp(x)  # ufuncs: numpy refuses them itself (use sg.exp)


# ------------------------------------------------------------------ reshape with -1
T = sg.tensor("T_npf", (2, 3, 4))
X = sg.matrix("X_npf", ("N", 3))


@pytest.mark.parametrize("shape", [(-1, 4), (6, -1), (-1,), -1, (2, -1, 2), (1, -1, 1)])
def test_reshape_infers_a_minus_one_as_numpy_does(shape):
    t = np.arange(24.0).reshape(2, 3, 4)
    e = sg.reshape(T, shape)
    want = t.reshape(shape)
    assert e.shape == want.shape
    assert e is sg.reshape(T, want.shape)  # the same node as the shape given in full
    np.testing.assert_array_equal(sg.evaluate(e, {T: t}), want)


def test_reshape_minus_one_with_symbolic_sizes():
    assert sg.reshape(X, ("N", -1)).shape == ("N", 3)
    assert sg.reshape(X, (-1, 3)).shape == ("N", 3)
    assert sg.reshape(X, (-1, 1, 3)).shape == ("N", 1, 3)
    with pytest.raises(sg.ShapeError, match=r"the -1 would be N\*3, and a size is a number"):
        sg.reshape(X, (-1,))


@pytest.mark.parametrize("shape, error, match", [
    ((-1, -1), ValueError, "only one size"),
    ((-1, 5), sg.ShapeError, r"cannot reshape \(2, 3, 4\) to \(-1, 5\)"),
    ((0, -1), sg.ShapeError, "cannot reshape"),
    ((-2, 12), ValueError, "not a size"),
])
def test_reshape_minus_one_errors(shape, error, match):
    with pytest.raises(error, match=match):
        sg.reshape(T, shape)


def test_reshape_method_and_its_gradient():
    assert A.reshape(3, 2) is sg.reshape(A, (3, 2)) is A.reshape((3, 2))
    assert v.reshape(-1, 1).shape == (3, 1)
    g = sg.grad(sg.sum(A.reshape(-1) * sg.const(np.arange(6.0))), A)
    np.testing.assert_array_equal(sg.evaluate(g, {}), np.arange(6.0).reshape(2, 3))


def test_numpy_methods():
    assert A.sum(axis=0, keepdims=True) is sg.sum(A, axis=0, keepdims=True)
    assert A.mean(1, True) is sg.mean(A, axis=1, keepdims=True)
    assert A.dot(v) is A @ v and v.dot(v) is v @ v
    assert A.transpose() is A.T
    assert T.transpose(1, 0, 2) is T.transpose((1, 0, 2)) is sg.transpose(T, (1, 0, 2))


def test_numpy_trace_offsets_and_mean_keepdims():
    # (mutation testing: an offset ignored, and keepdims dropped from np.mean, passed)
    A = sg.matrix("A_tm", (3, 3))
    with pytest.raises(TypeError, match="offset=0"):
        np.trace(A, offset=1)
    assert np.mean(A, axis=0, keepdims=True).shape == (1, 3)
    av = np.arange(9.0).reshape(3, 3)
    np.testing.assert_allclose(sg.evaluate(np.mean(A, axis=1, keepdims=True), {A: av}),
                               av.mean(axis=1, keepdims=True))


@pytest.mark.parametrize("call, match", [
    (lambda: np.sum(v, initial=5.0), r"^numpy\.sum: initial= is not supported on symgrad "
                                     r"expressions$"),
    (lambda: np.mean(v, where=np.array([True, True, False])),
     r"^numpy\.mean: where= is not supported on symgrad expressions$"),
    (lambda: np.trace(S, dtype=np.float32),
     r"^numpy\.trace: dtype= is not supported on symgrad expressions$"),
    (lambda: np.diag(sg.reshape(S, (1, 3, 3))),
     r"^numpy\.diag: symgrad takes a vector \(diag\) or a square matrix \(diagonal\), "
     r"with k=0$"),
], ids=["sum-initial", "mean-where", "trace-dtype", "diag-3d"])
def test_numpy_arguments_symgrad_would_drop_are_refused(call, match):
    """initial=, where=, dtype= and a 3-d array for np.diag: refused by name, never dropped
    (found by mutation testing: np.sum(v, initial=5) as sum(v), np.mean(v, where=...) as the
    mean of every entry, np.trace(dtype=float32) in float64, a 3-d np.diag, passed)."""
    with pytest.raises(TypeError, match=match):
        call()


def test_numpy_transpose_with_axes_permutes_them():
    """np.transpose(a, axes) follows axes, not the reversal (found by mutation testing: the
    axes were dropped; only the reversal, the same for 2-d, was tested)."""
    A3 = sg.reshape(A, (1, 2, 3))
    e = np.transpose(A3, (0, 2, 1))
    assert e is sg.transpose(A3, (0, 2, 1)) and e.shape == (1, 3, 2)
    np.testing.assert_array_equal(sg.evaluate(e, VALUES),
                                  np.transpose(VALUES[A].reshape(1, 2, 3), (0, 2, 1)))
    assert np.transpose(A3) is sg.transpose(A3) and np.transpose(A3).shape == (3, 2, 1)
