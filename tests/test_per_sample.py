"""Scalar inputs given arrays of samples, in graphs with vectors or matrices: the compiled
function computes every sample (symgrad._per_sample), each output with the samples' shape in
front of its own: all samples at once by a batched version of the graph, or one call per
sample where an op has no batch rule."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad import _per_sample
from tests.helpers import plain_numpy
from tests.strategies import dags, point_is_safe, points, to_scalar


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
            np.testing.assert_allclose(g[j], want, rtol=1e-13, atol=1e-15)


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


def test_samples_that_do_not_broadcast_are_refused_in_a_graph_of_scalars_too():
    # where no output combines s and t, sin(s), sin(t) gave 2 and 3 samples (a tensor graph
    # refuses them, as the docs say of both)
    s, t, u = sg.scalars("s_nb t_nb u_nb")
    f = sg.compile([sg.sin(s), sg.sin(t)], [s, t, u])
    with pytest.raises(sg.ShapeError, match=r"inputs s_nb \(2,\) and t_nb \(3,\): arrays of "
                                            r"samples for scalar inputs must broadcast together"):
        f(np.ones(2), np.ones(3), 0.0)
    a, b = f(np.ones(2), np.ones((3, 1)), np.ones(5))  # (u: unused, its samples ignored)
    assert a.shape == (2,) and b.shape == (3, 1)
    a, b = f(np.ones(2), 0.5, 0.0)
    np.testing.assert_array_equal(a, np.sin(np.ones(2)))
    assert b == np.sin(0.5)
    many = sg.scalars(" ".join(f"m{i}_nb" for i in range(10)))  # the many-inputs reader
    g = sg.compile([sg.sin(m) for m in many], list(many))
    with pytest.raises(sg.ShapeError, match=r"inputs m0_nb \(2,\) and m9_nb \(3,\)"):
        g(np.ones(2), *[0.0] * 8, np.ones(3))


def test_a_bad_tensor_input_is_still_named():
    ins, outs = mlp("_d")
    f = sg.compile(outs, ins)
    vals = values()
    with pytest.raises(sg.ShapeError, match=r"input x_d: expected shape \(4,\), got \(5,\)"):
        f(*vals[:3], np.ones(3), np.ones(5), 1.0)


@pytest.mark.parametrize("samples", [
    np.array([1j, 2j]), np.array(["1", "2"]), np.array([None, 1.0]),
    np.array(["2020-01-01"], dtype="M8[D]"), np.array(["a", "b"])])
def test_samples_that_are_not_real_numbers_are_named(samples):
    # they were cast to the samples' float dtype: imaginary parts dropped, strings and dates
    # read as numbers, None as nan
    v, s = sg.vector("v_real", 3), sg.scalar("s_real")
    f = sg.compile(sg.sum(v) * s, [v, s])
    with pytest.raises(TypeError, match=r"input s_real: (samples must be real numbers|"
                                        r"expected numbers, got an array of dtype object)"):
        f(np.ones(3), samples)
    np.testing.assert_array_equal(f(np.ones(3), np.array([1, 2])), [3.0, 6.0])
    np.testing.assert_array_equal(f(np.ones(3), np.array([True, False])), [3.0, 0.0])
    # an object array of numbers (ints beyond int64) is floats, as for a tensor input
    np.testing.assert_array_equal(f(np.ones(3), np.array([2**70, 1], dtype=object)),
                                  [3.0 * 2**70, 3.0])


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


def test_every_backend_catches_it_and_jax_tracing_says_so():
    v, s = sg.vector("v_i", 3), sg.scalar("s_i")
    f = sg.compile(sg.sum(v) * s, [v, s])
    assert "except _PerSample:" in f.source
    scalar_graph = sg.compile(s * s, [s])
    assert "_PerSample" not in scalar_graph.source  # numpy broadcasting does it there
    other = sg.compile(sg.sum(v) * s, [v, s], backend=plain_numpy("plain_numpy_per_sample"))
    assert "except _PerSample:" in other.source
    np.testing.assert_array_equal(other(np.ones(3), np.array([1.0, 2.0])), [3.0, 6.0])
    jnp = pytest.importorskip("jax.numpy")
    traced = sg.compile(sg.sum(v) * s, [v, s], backend=jnp)  # code for jax.jit to trace
    with pytest.raises(sg.ShapeError, match=r"input s_i: declared a scalar, got an array of "
                                            r"shape \(2,\); .* outside jax tracing only"):
        traced(np.ones(3), np.ones(2))


def _to_numpy(x):
    x = x.compute() if hasattr(x, "compute") else x
    return np.asarray(x.cpu() if hasattr(x, "cpu") else x)


@pytest.mark.parametrize("backend", ["dask", "torch", "array_api_strict", "jax", "numba"])
def test_samples_on_other_backends(backend):
    mod = pytest.importorskip(backend)
    if backend == "dask":
        pytest.importorskip("array_api_compat")
    ins, outs = mlp(f"_{backend}")
    vals = values()
    bs = np.array([[-1.0, 0.0], [0.5, 3.0]])
    want = sg.compile(outs, ins)(*vals[:3], bs, *vals[4:])
    f = sg.compile(outs, ins, backend=mod if backend == "array_api_strict" else backend)
    conv = (lambda x: mod.asarray(x) if np.ndim(x) else x) if backend == "array_api_strict" \
        else (lambda x: x)
    got = f(*[conv(x) for x in vals[:3]], conv(bs), *vals[4:])
    assert "_samples" in f.source
    rtol = 1e-5 if backend == "jax" else 1e-12  # jax computes in float32 unless x64 is on
    for g, w in zip(got, want):
        np.testing.assert_allclose(_to_numpy(g), w, rtol=rtol, atol=rtol)
    # an index given samples: one call each, stacked in the backend's arrays
    M, i = sg.matrix(f"M_{backend}", (3, 2)), sg.scalar(f"i_{backend}")
    rows = sg.compile(sg.take(M, i), [M, i], backend=mod if backend == "array_api_strict"
                      else backend)
    m = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(_to_numpy(rows(conv(m), conv(np.array([2.0, 0.0])))),
                                  m[[2, 0]])


def test_float32_tensors_keep_float32_samples_on_torch():
    torch = pytest.importorskip("torch")
    ins, outs = mlp("_t32")
    vals = values(np.float32)
    f = sg.compile(outs, ins, backend="torch")
    got = f(*[torch.tensor(x) for x in vals[:3]], torch.tensor([0.1, 0.2]), torch.tensor(vals[4]),
            1.0)
    assert {g.dtype for g in got} == {torch.float32}


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


# ------------------------------------------------------------------ the batched version
def test_samples_are_computed_together_by_one_batched_function():
    ins, outs = mlp("_bat")
    f = sg.compile(outs, ins)
    vals = values()
    f(*vals[:3], np.linspace(-1, 1, 1000), *vals[4:])
    # the batched version was compiled once and added to the source: a second function whose
    # bias is a vector of samples; the nodes that do not depend on it (U @ x + c, phi) are
    # computed once, so they keep their shapes
    assert f.source.count("def compiled(") == 2
    assert "if len(_s) != 1: _bad_input('b_bat', _s, '(_samples,)')" in f.source
    batched = f.source[f.source.rindex("def compiled("):]
    assert "for " not in batched


@pytest.mark.parametrize(("left", "right"), [(a, b) for a in ("v", "M", "bv", "bM")
                                             for b in ("v", "M", "bv", "bM") if "b" in a + b])
def test_matrix_products_of_samples(left, right):
    """Every case of @ with a batched operand on either side, or both: a vector or a matrix
    scaled by the samples."""
    s = sg.scalar("s_mm")
    shapes = {"v": (3,), "M": (3, 3)}
    leaves = {k: sg.vector(f"{k}_mm", 3) if k == "v" else sg.matrix(f"{k}_mm", (3, 3))
              for k in ("v", "M")}

    def operand(key):
        e = leaves[key.lstrip("b")]
        return e * s if key.startswith("b") else e

    e = operand(left) @ operand(right)
    ins = [s, leaves["v"], leaves["M"]]
    f = sg.compile(e, ins)
    rng = np.random.default_rng(1)
    v, M = rng.normal(size=shapes["v"]), rng.normal(size=shapes["M"])
    ss = np.array([0.5, -2.0, 3.0])
    got = f(ss, v, M)
    want = np.stack([f(float(x), v, M) for x in ss])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert "_samples" in f.source


def test_outer_products_keep_the_samples_axis_in_front_of_their_leading_axes():
    A, v, s = sg.matrix("A_op", (2, 3)), sg.vector("v_op", 3), sg.scalar("s_op")
    f = sg.compile(sg.outer(A, v * s), [A, v, s])  # (2, 3) and (3,): shape (2, 3, 3)
    rng = np.random.default_rng(2)
    a, vv = rng.normal(size=(2, 3)), rng.normal(size=3)
    got = f(a, vv, np.array([1.0, 2.0, -1.0, 0.5]))
    assert got.shape == (4, 2, 3, 3)
    for j, x in enumerate([1.0, 2.0, -1.0, 0.5]):
        np.testing.assert_allclose(got[j], a[:, :, None] * (vv * x)[None, None, :])


def test_diag_diagonal_and_gram_of_samples():
    v, s = sg.vector("v_dg", 3), sg.scalar("s_dg")
    X = sg.matrix("X_dg", (4, 3))
    d = sg.vector("d_dg", 4)
    outs = [sg.diag(v * s), sg.functions.diagonal(sg.outer(v, v * s)),
            sg.functions.gram(X * s, d), sg.functions.gram(X, d * s)]
    f = sg.compile(outs, [v, X, d, s])
    rng = np.random.default_rng(3)
    vals = [rng.normal(size=3), rng.normal(size=(4, 3)), rng.normal(size=4)]
    ss = np.array([1.0, -0.5, 2.0])
    got = f(*vals, ss)
    assert "_samples" in f.source
    for j, x in enumerate(ss):
        for g, want in zip(got, f(*vals, float(x))):
            np.testing.assert_allclose(g[j], want, rtol=1e-12)


def test_an_op_without_a_batch_rule_computes_sample_by_sample():
    M, i = sg.matrix("M_nr", (3, 2)), sg.scalar("i_nr")
    f = sg.compile(sg.take(M, i), [M, i])  # an index per sample has no batch rule
    m = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(f(m, np.array([2.0, 0.0, 1.0])), m[[2, 0, 1]])
    assert "_samples" not in f.source  # no batched version: one call per sample


def test_a_row_of_a_batched_matrix_and_its_gradient():
    M, s, i = sg.matrix("M_row", (3, 2)), sg.scalar("s_row"), sg.scalar("i_row")
    f = sg.compile([sg.take(M * s, 1), sg.grad(sg.sum(sg.take(M * s, i) ** 2), M)], [M, s, i])
    m = np.arange(6.0).reshape(3, 2)
    rows, grads = f(m, np.array([1.0, 2.0]), 1.0)
    np.testing.assert_array_equal(rows, [m[1], 2 * m[1]])
    for j, x in enumerate([1.0, 2.0]):  # the one-hot of take's gradient is the same per sample
        np.testing.assert_allclose(grads[j], f(m, x, 1.0)[1])
    assert "_samples" in f.source


def test_chunks_of_samples_give_the_same_outputs(monkeypatch):
    ins, outs = mlp("_chk")
    vals = values()
    bs = np.linspace(-2, 2, 7).reshape(7, 1)
    whole = sg.compile(outs, ins)(*vals[:3], bs, *vals[4:])
    monkeypatch.setattr(_per_sample, "CHUNK", 30)  # a U-sized node (12 entries) per sample
    chunked = sg.compile(outs, ins)(*vals[:3], bs, *vals[4:])
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-13)
        assert a.shape == b.shape


def test_outputs_that_do_not_depend_on_the_samples_are_repeated_and_writable():
    v, s = sg.vector("v_rep", 2), sg.scalar("s_rep")
    f = sg.compile([sg.sum(v * v), v * s], [v, s])
    once, scaled = f(np.array([1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(once, [5.0, 5.0, 5.0])
    once[0] = 0.0  # a copy per sample, as the per-sample calls' stack was
    np.testing.assert_array_equal(scaled, [[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])


def test_float64_samples_next_to_float32_tensors_compute_in_float32():
    ins, outs = mlp("_f32")
    vals = values(np.float32)
    got = sg.compile(outs, ins)(*vals[:3], np.array([0.1, 0.2]), vals[4], 1.0)
    assert {g.dtype for g in got} == {np.dtype(np.float32)}  # as a Python float b does


def test_float32_samples_stay_float32_where_they_meet_no_float64_value():
    """Found by review: the samples were cast to the tensors' dtype (or float64 where the graph
    had no tensor input), so sigmoid(z) of float32 samples came back float64 next to a
    float64 v, or a float64 constant array. numpy's promotion applies where they meet."""
    z, v = sg.scalar("z_f32s"), sg.vector("v_f32s", 3)
    z32 = np.array([0.1, 0.2], np.float32)
    c = sg.const(np.array([1.0, 2.0, 3.0]))
    f = sg.compile([sg.sigmoid(z), c * z], [z])
    assert [o.dtype for o in f(z32)] == [np.float32, np.float64]
    together = sg.compile([sg.sigmoid(z), sg.sum(v * z)], [z, v])
    one_by_one = sg.compile([sg.sigmoid(z), sg.sum(v * z), sg.argmax(v * z)], [z, v])
    for f in (together, one_by_one):
        outs = f(z32, np.ones(3))
        assert [o.dtype for o in outs[:2]] == [np.float32, np.float64]
        np.testing.assert_allclose(outs[0], 1 / (1 + np.exp(-z32)), rtol=1e-6)
        np.testing.assert_allclose(outs[1], 3 * z32, rtol=1e-6)
    # integer samples are read as Python numbers: in the tensors' dtype
    assert together(np.array([1, 2]), np.ones(3, np.float32))[0].dtype == np.float32


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_batch_of_samples_equals_each_sample(data):
    e = data.draw(dags(tensor=True, value_only=True), label="e")
    ws = sg.variables(e)
    scalars = [w for w in ws if not w.shape]
    assume(scalars and any(w.shape for w in ws))
    vals = data.draw(points(ws), label="point")
    samples = [{**vals, **{w: data.draw(points([w]), label="sample")[w] for w in scalars}}
               for _ in range(4)]
    for s in samples:
        assume(point_is_safe(e, s))
    outs = [e, to_scalar(e)]
    fn = sg.compile(outs, ws)
    batch = [np.array([s[w] for s in samples]).reshape(2, 2) if not w.shape else vals[w]
             for w in ws]
    got = fn(*batch)
    for j, o in enumerate(outs):
        want = np.stack([fn(*[s[w] for w in ws])[j] for s in samples])
        np.testing.assert_allclose(got[j], want.reshape((2, 2) + o.shape), rtol=1e-9,
                                   atol=1e-9)
    # computed together wherever every op on the way has a batch rule
    together = _per_sample.batched_graph(outs, scalars) is not None
    assert ("_samples" in fn.source) == together


def test_array_api_strict_samples_from_numpy_raise_no_warning():
    # the dtype cache compared array_api_strict's dtypes with numpy's, which it warns about
    xp = pytest.importorskip("array_api_strict")
    s, w = sg.scalar("s_xw"), sg.vector("w_xw", 3)
    f = sg.compile(s * w, [s, w], backend=xp)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f(np.array([1.0, 2.0]), np.ones(3))  # a numpy tensor first: its dtype is cached
        r = f(np.array([1.0, 2.0]), xp.asarray([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(np.asarray(r), [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]])


def test_an_ndarray_subclass_given_as_samples_computes_per_sample():
    # np.matrix passed through to a graph of scalars, whose * and ** are then numpy.matrix's
    # matrix product and power: x*y of two matrices was a @ b (a probe of the API)
    x, y = sg.scalars("x_nm y_nm")
    with warnings.catch_warnings():  # (numpy recommends ndarray over matrix: that is the point)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        a = np.matrix([[1.0, 2.0], [3.0, 4.0]])
        b = np.matrix([[1.0, 0.0], [0.0, 1.0]])
    got = sg.compile(x * y, [x, y])(a, b)
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, [[1.0, 0.0], [0.0, 4.0]])
    np.testing.assert_array_equal(sg.evaluate(x**2, {x: a}), [[1.0, 4.0], [9.0, 16.0]])
    np.testing.assert_array_equal(sg.evaluate(sg.grad(x * x * y, x), {x: a, y: b}),
                                  [[2.0, 0.0], [0.0, 8.0]])


def test_the_batched_and_the_one_by_one_paths_give_the_same_dtypes():
    """Found by review: the one-by-one path (argmax over all axes forces it) gave float64
    for no samples and the dtype of every sample input for each output; the batched path
    gives each output the dtype of the samples it depends on."""
    a, b, w = sg.scalar("a_bo"), sg.scalar("b_bo"), sg.vector("w_bo", 3)
    wv = np.ones(3, np.float32)
    batched = sg.compile([sg.exp(b), sg.sum(w * a)], [a, b, w])
    one_by_one = sg.compile([sg.exp(b), sg.sum(w * a), sg.argmax(w * a)], [a, b, w])
    for A, B in [(np.ones(2, np.float32), np.ones(2, np.float16)),
                 (np.ones(0, np.float32), np.ones(0, np.float32)),
                 (np.ones(2, np.float64), np.ones(2, np.float32))]:
        want = [o.dtype for o in batched(A, B, wv)]
        got = [o.dtype for o in one_by_one(A, B, wv)[:2]]
        assert got == want, (A.dtype, B.dtype, A.size)
        np.testing.assert_allclose(one_by_one(A, B, wv)[0], batched(A, B, wv)[0])
    # an integer-valued output stays integer one by one (it was cast to the samples' float)
    a_ = np.array([1.7, -2.2], np.float32)
    assert sg.compile([sg.functions.to_int(a), sg.argmax(w * a)], [a, w])(a_, wv)[0].dtype == \
        sg.compile([sg.functions.to_int(a), sg.sum(w * a)], [a, w])(a_, wv)[0].dtype == np.int64


def test_the_one_by_one_path_keeps_two_dimensional_samples_in_order():
    """argmax over all axes has no batch rule: one call per sample, stacked in the samples'
    shape (mutation testing: the shape reversed passed; only 1-D samples were tested)."""
    v, s = sg.vector("v_2d", 3), sg.scalar("s_2d")
    f = sg.compile(sg.argmax(v * s), [v, s])
    S = np.array([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]])
    got = f(np.array([0.0, 1.0, 2.0]), S)
    assert got.shape == (2, 3)
    np.testing.assert_array_equal(got, [[2, 0, 2], [0, 0, 2]])


def test_the_entries_a_sample_takes_count_every_axis_and_size():
    """The chunks of samples are sized by the largest batched node per sample: known axes
    multiply, symbolic ones by their values (mutation testing: a count of 1 passed, which
    would make chunks 1000 times too big: memory only)."""
    from symgrad._per_sample import _entries_per_sample

    nodes = [sg.matrix("a_en", ("_s", 1000)), sg.tensor("b_en", ("_s", 3, 4)),
             sg.matrix("c_en", ("_s", "n"))]
    entries = _entries_per_sample(nodes)
    assert entries({"n": 10}) == 1000 and entries({"n": 10**6}) == 10**6
    assert entries.symbolic


def test_batched_matrix_products_and_argmax_axes_follow_the_samples():
    """A @ f(s u) with samples of s, and argmax(s M, axis=0): each sample as numpy computes
    it (mutation testing: a batched matrix-vector product without its transpose, and an
    argmax axis not shifted past the samples' axis, passed for these shapes)."""
    A, u, s = sg.matrix("A_bm", (3, 3)), sg.vector("u_bm", 3), sg.scalar("s_bm")
    Av, uv, ss = np.arange(9.0).reshape(3, 3), np.array([1.0, -2.0, 0.5]), np.array([1.0, 2.0])
    got = sg.compile(A @ sg.tanh(s * u), [A, u, s])(Av, uv, ss)
    np.testing.assert_allclose(got, np.stack([Av @ np.tanh(k * uv) for k in ss]), rtol=1e-14)
    got = sg.compile(uv @ (A * s), [A, s])(Av, ss)  # (a vector times a batched matrix)
    np.testing.assert_allclose(got, np.stack([uv @ (Av * k) for k in ss]), rtol=1e-14)
    M = sg.matrix("M_bm", (2, 2))
    Mv, ss = np.array([[1.0, 5.0], [3.0, -2.0]]), np.array([1.0, -1.0])
    got = sg.compile(sg.argmax(s * M, axis=0), [M, s])(Mv, ss)
    np.testing.assert_array_equal(got, np.stack([np.argmax(k * Mv, axis=0) for k in ss]))


def test_a_chunk_smaller_than_one_sample_still_takes_one_sample_at_a_time(monkeypatch):
    """A sample larger than CHUNK entries: chunks of one sample each, never of none
    (found by mutation testing: a step of CHUNK // entries, 0 here, raised range()'s
    ValueError only for samples of over 4M entries)."""
    x, v = sg.scalar("x_c0"), sg.vector("v_c0", "n")
    monkeypatch.setattr(_per_sample, "CHUNK", 2)  # 5 entries per sample: 2 // 5 == 0
    f = sg.compile(x * v, [x, v])
    got = f(np.array([1.0, 2.0, 3.0]), np.arange(5.0))
    assert got.shape == (3, 5)
    np.testing.assert_array_equal(got, np.outer([1.0, 2.0, 3.0], np.arange(5.0)))


def test_a_repeated_output_on_torch_is_its_own_tensor():
    """An output that does not depend on the samples, repeated over them on torch: each row
    its own memory, as on numpy (found by mutation testing: a broadcast view, where writing
    one entry changed every row, passed)."""
    torch = pytest.importorskip("torch")
    x, v = sg.scalar("x_rt"), sg.vector("v_rt", 3)
    f = sg.compile([x * v, 2 * v], [x, v], backend="torch")
    a, b = f(np.array([1.0, 2.0]), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert b.tolist() == [[2.0, 4.0, 6.0], [2.0, 4.0, 6.0]]
    b[0, 0] = 100.0
    assert b.tolist() == [[100.0, 4.0, 6.0], [2.0, 4.0, 6.0]]
    assert a.tolist() == [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]


def test_no_samples_on_the_one_by_one_path_keep_each_outputs_own_shape():
    """Zero samples where the graph has an op without a batch rule: outputs of shape
    (0,) + the output's own (found by mutation testing: (0,) alone passed)."""
    x, v = sg.scalar("x_0s"), sg.vector("v_0s", 3)
    f = sg.compile(v * sg.argmax(v * x), [x, v])
    vv = np.array([1.0, 5.0, 2.0])
    got = f(np.array([]), vv)
    assert got.shape == (0, 3) and got.dtype == np.float64
    assert f(np.array([1.0, 2.0, 3.0]), vv).shape == (3, 3)


def test_an_unused_scalar_given_samples_is_ignored_on_jax():
    """Samples for a scalar input the outputs do not use, on jax: ignored, as on numpy
    (found by mutation testing: passing the array on into the jitted call recursed)."""
    pytest.importorskip("jax")
    x, y, v = sg.scalar("x_uj"), sg.scalar("y_uj"), sg.vector("v_uj", 3)
    f = sg.compile(x * v, [x, y, v], backend="jax")
    got = f(np.array([1.0, 2.0]), np.array([7.0, 8.0, 9.0]), np.array([1.0, 2.0, 3.0]))
    assert np.asarray(got).tolist() == [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_a_constant_output_repeated_over_samples_takes_their_float32(backend):
    # the gradient of sum(v) + 2 s in s is the number 2: repeated over the samples it takes
    # their dtype; on jax it had gone through jit as a weak float64 0-d array and stayed float64
    x64 = contextlib.nullcontext()
    if backend != "numpy":
        pytest.importorskip(backend)
    if backend == "jax":  # (without x64 jax has no float64, and its numbers are float32)
        import jax

        if hasattr(jax, "enable_x64"):
            x64 = jax.enable_x64(True)
        else:  # (older jax)
            from jax.experimental import enable_x64

            x64 = enable_x64()
    v, s = sg.vector("v_cr", 3), sg.scalar("s_cr")
    with x64:
        f = sg.compile([s * sg.sum(v), sg.grad(sg.sum(v) + 2 * s, s)], [v, s], backend=backend)
        for dt in (np.float32, np.float64):
            r = f(np.ones(3, dt), np.arange(4.0, dtype=dt))
            assert [str(a.dtype).rsplit(".", 1)[-1] for a in r] == [np.dtype(dt).name] * 2
            assert [float(e) for e in r[1]] == [2.0] * 4
        if backend != "torch":  # (torch reads a Python int as a float there: noticed)
            # an integer a graph computes once stays an integer (to_int of a constant)
            g = sg.compile([sg.to_int(sg.const(2.7)), sg.sum(v) * s], [v, s], backend=backend)
            r = g(np.ones(3), np.array([1.0, 2.0]))
            assert str(r[0].dtype).startswith("int") and list(map(int, r[0])) == [2, 2]
