"""dtypes of results: the arrays symgrad creates (a broadcast number such as the mean's
gradient 1/n, the zeros of a gradient the output does not depend on, identities) take the
floating dtype of the first tensor input, as Python numbers are weak in numpy: float32 data
gives float32 results and gradients, float64 data float64, integer data float64 as before. A
constant array the user gives (``sg.const``) keeps its dtype, as a numpy array does, and so does
a scalar computed from float64 arrays."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import symgrad as sg
from tests.backend_cases import ARRAY_BACKENDS
from tests.backend_cases import backend_inputs as _inputs
from tests.backend_cases import have as _have
from tests.strategies import TENSOR_VARS, X0, dags

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def _dtype(r):
    """The result's dtype as numpy's (torch and jax dtypes by name)."""
    if hasattr(r, "compute"):  # dask
        r = r.compute(scheduler="sync")
    dt = getattr(r, "dtype", None)
    if dt is None:
        return type(r)
    return np.dtype(str(dt).rsplit(".", 1)[-1])


# ------------------------------------------------------------------ the cases
def _mean_fixed():
    A = sg.matrix("A", (3, 4))
    return [sg.grad(sg.mean(A), A)], [A]


def _mean_symbolic():
    v = sg.vector("v", "n")
    return [sg.grad(sg.mean(v), v)], [v]


def _mean_matrix_symbolic():
    M = sg.matrix("M", ("m", "n"))
    return [sg.grad(sg.mean(M), M)], [M]


def _outer():
    A, v = sg.matrix("A", (3, 4)), sg.vector("v", 3)
    return sg.grad(sg.sum(sg.outer(v, A)), [v, A]), [v, A]


def _diag():
    v = sg.vector("v", 3)
    return [sg.grad(sg.sum(sg.diag(v)), v)], [v]


def _diag_symbolic():
    v = sg.vector("v", "n")
    return [sg.grad(sg.sum(sg.diag(v)), v)], [v]


def _unused_input():
    v, w = sg.vector("v", 3), sg.vector("w", "n")
    return sg.grad(sg.sum(v * v), [v, w]), [v, w]


def _ones_and_zeros():
    v = sg.vector("v", "n")
    return [sg.ones((2, "n")), sg.zeros(("n",)), sg.broadcast_to(2.5, (3,)), v * 0.5], [v]


def _python_float_input():
    s, v = sg.scalar("s"), sg.vector("v", "n")
    return [sg.broadcast_to(s, ("n",)), *sg.grad(sg.mean(v * s), [v, s])], [v, s]


def _bce_of_a_number():
    s, v = sg.scalar("s"), sg.vector("v", "n")
    mu = 0.1 + 0.8 * sg.sigmoid(s)  # a Python number at run time: its logs are weak too
    return [sg.bce(mu, v), sg.bce(mu, sg.sum(v)) * v], [v, s]


def _hessian():
    X, w = sg.matrix("X", ("m", "n")), sg.vector("w", "n")
    f = sg.mean(sg.softplus(X @ w)) + 0.5 * sg.sum(w * w)
    return [sg.grad(f, w), sg.hessian(f, w)], [w, X]


CASES = {"mean": _mean_fixed, "mean symbolic": _mean_symbolic,
         "mean matrix symbolic": _mean_matrix_symbolic, "outer": _outer, "diag": _diag,
         "diag symbolic": _diag_symbolic, "unused input": _unused_input,
         "ones and zeros": _ones_and_zeros, "Python float input": _python_float_input,
         "bce of a number": _bce_of_a_number,
         "hessian": _hessian}

_SIZES = {"n": 3, "m": 5}


def _values(ins, dtype, scalar=1.5):
    rng = np.random.default_rng(0)
    out = []
    for v in ins:
        if not v.shape:
            out.append(scalar)
            continue
        shape = tuple(d if isinstance(d, int) else _SIZES[d] for d in v.shape)
        out.append(rng.uniform(0.5, 1.5, shape).astype(dtype))
    return out


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype, want", [(np.float32, F32), (np.float64, F64),
                                         (np.int64, F64)])  # integers: float64, as before
def test_numpy_results_have_the_inputs_dtype(case, dtype, want):
    outs, ins = CASES[case]()
    vals = [v if isinstance(v, float) else (4 * v).astype(dtype) for v in
            _values(ins, np.float64)]
    f = sg.compile(outs, ins)
    got = f(*vals)
    assert [_dtype(r) for r in got] == [want] * len(outs)
    # the values float64 computes
    ref = f(*[v if isinstance(v, float) else v.astype(np.float64) for v in vals])
    for g, r in zip(got, ref):
        np.testing.assert_allclose(np.asarray(g, dtype=float), r, rtol=1e-6)


def test_results_are_writable_arrays_of_their_own():
    outs, ins = _mean_fixed()
    f = sg.compile(outs, ins)
    a = f(np.ones((3, 4), np.float32))[0]
    b = f(np.ones((3, 4), np.float32))[0]
    a[0, 0] = 7.0
    assert b[0, 0] == np.float32(1 / 12)


def test_constant_arrays_stay_strong_as_in_numpy():
    """A constant array the user gives keeps its dtype (numpy: float32 * float64 array is
    float64); so do scalars computed from float64 arrays, broadcast."""
    A, x = sg.matrix("A", (3, 4)), sg.vector("x", 3)
    K = sg.const(np.full((3, 4), 2.0))
    outs = [sg.grad(sg.sum(A * K), A), K * 1.0, sg.broadcast_to(sg.sum(x), (3, 4)),
            sg.broadcast_to(sg.sum(A), (2,)), sg.grad(sg.mean(A), A)]
    a32, x64 = np.ones((3, 4), np.float32), np.ones(3)
    got = sg.compile(outs, [A, x])(a32, x64)
    # strong: the constant, the float64 sum; weak: 1/12, the mean's gradient
    assert [_dtype(r) for r in got] == [F64, F64, F64, F32, F32]
    k32 = sg.const(np.full((3, 4), 2.0, np.float32))  # a float32 constant: numpy's promotion
    f = sg.compile(sg.grad(sg.sum(sg.sin(A) * k32), A), [A])
    assert f(np.ones((3, 4))).dtype == F64
    assert f(a32).dtype == F32


def test_numpy_scalar_inputs_are_strong():
    """A numpy float64 scalar given for a scalar input is strong, as in numpy."""
    s, v = sg.scalar("s"), sg.vector("v", 3)
    f = sg.compile(sg.broadcast_to(s, (3,)) + 0 * v, [v, s])
    assert f(np.ones(3, np.float32), 2.0).dtype == F32
    assert f(np.ones(3, np.float32), np.float32(2.0)).dtype == F32
    assert f(np.ones(3, np.float32), np.float64(2.0)).dtype == F64


def test_a_numpy_scalar_input_is_strong_through_functions_too():
    # sin(s) * v was float32 for s = np.float64(0.5) and float32 v (Python's math makes a
    # weak float of it), where (s + 1) * v was float64 as in numpy; also in the numpy version
    # (numpy's functions of numbers were made Python numbers there)
    s, t, v = sg.scalar("s_sf"), sg.scalar("t_sf"), sg.vector("v_sf", 3)
    v32 = np.array([1.0, 2.0, 3.0], np.float32)
    forms = [sg.sin(s) * v, sg.exp(s) * v, (s + 1) * v, s**2 * v, sg.sigmoid(s) * v,
             sg.relu(s) * v, sg.maximum(s, 0.2) * v, sg.sin(t) * sg.tanh(s) * v]
    for e in forms:
        f = sg.compile(e, [v, s, t])
        for sv, want in ((np.float64(0.5), F64), (np.int64(1), F64), (np.array(0.5), F64),
                         (0.5, F32), (np.float32(0.5), F32)):
            got = f(v32, sv, 0.25)
            assert got.dtype == want, (str(e), sv)
            ref = np.float64(sv) if want == F64 else np.float32(sv)
            np.testing.assert_allclose(got, sg.evaluate(e, {v: v32.astype(float), s: ref,
                                                            t: 0.25}), rtol=1e-6)
        assert f(v32.astype(np.float64), np.float64(0.5), 0.25).dtype == F64
        if "sin(t_sf)" in str(e):  # a Python float stays weak beside a strong numpy one
            assert f(v32, 0.5, np.float64(0.25)).dtype == F64
            assert f(v32, 0.5, 0.25).dtype == F32
    # the gradient of sum(sin(s) v) wrt v uses no tensor input: v lends its dtype
    g = sg.grad(sg.sum(sg.sin(s) * v), v)
    assert sg.evaluate(g, {v: v32, s: np.float64(0.5)}).dtype == F64
    assert sg.evaluate(g, {v: v32, s: 0.5}).dtype == F32
    # a numpy number no wider than the arrays keeps the main version (W2 passes b as
    # np.float32 with float32 data: the numpy version has no buffer reuse)
    f = sg.compile(sg.sin(s) * v, [v, s])
    f(v32, np.float32(0.5))
    f(v32.astype(np.float64), np.float64(0.5))
    f(v32.astype(np.float16), np.float16(0.5))
    assert "_compiled_numpy" not in f.source
    assert f(v32.astype(np.float16), np.float32(0.5)).dtype == F32  # (numpy: float32)
    assert "_compiled_numpy" in f.source
    # bce of a scalar mu and a float32 y: its logs of a numpy mu stay strong
    y = sg.vector("y_sf", 3)
    fb = sg.compile(sg.bce(s, y), [s, y])
    assert fb(np.float64(0.3), v32 / 4).dtype == F64
    assert fb(0.3, v32 / 4).dtype == F32
    np.testing.assert_allclose(fb(np.float64(0.3), v32 / 4),
                               -(v32 / 4) * np.log(0.3) - (1 - v32 / 4) * np.log(0.7))
    # and where Python's math overflows, the numpy version keeps it too
    with np.errstate(over="ignore"):
        got = sg.compile(sg.exp(s) * v, [v, s])(v32, np.float64(1000.0))
    assert got.dtype == F64 and np.all(np.isinf(got))


def test_per_sample_calls_keep_float32():
    """Scalar inputs given arrays of samples: float32 tensors (and samples) stay float32."""
    s, v = sg.scalar("s"), sg.vector("v", "n")
    L = sg.mean(sg.tanh(v * s))
    outs = [sg.broadcast_to(s, ("n",)), *sg.grad(L, [v, s]), sg.grad(sg.mean(v), v)]
    f = sg.compile(outs, [v, s])
    v32 = np.linspace(0.5, 1.0, 3, dtype=np.float32)
    for samples in (np.float32([0.5, 1.0]), np.array([0.5, 1.0])):
        got = f(v32, samples)
        assert [_dtype(r) for r in got] == [F32] * len(outs)
        assert got[0].shape == (2, 3)
    got = f(v32.astype(np.float64), np.array([0.5, 1.0]))
    assert [_dtype(r) for r in got] == [F64] * len(outs)


def test_per_sample_calls_one_by_one_keep_float32():
    """An index given samples has no batch rule: one call per sample. As in the batched
    calls, the samples compute as Python numbers would next to the float32 tensors (float64
    samples too), and a result that is a Python number (2 i) takes their dtype."""
    M, i = sg.matrix("M", (2, 3)), sg.scalar("i")
    row = sg.take(M, i)
    outs = [row * i, sg.grad(sg.sum(row), M), 2.0 * i]
    f = sg.compile(outs, [M, i])
    m32 = np.arange(6, dtype=np.float32).reshape(2, 3)
    for samples in (np.array([0.0, 1.0]), np.float32([0.0, 1.0])):
        got = f(m32, samples)
        assert [_dtype(r) for r in got] == [F32] * 3
        assert [r.shape for r in got] == [(2, 3), (2, 2, 3), (2,)]
        np.testing.assert_allclose(got[0], [[0.0, 0.0, 0.0], [3.0, 4.0, 5.0]])
    got = f(m32.astype(np.float64), np.array([0.0, 1.0]))
    assert [_dtype(r) for r in got] == [F64] * 3


def test_a_broadcast_number_is_made_at_run_time_only_next_to_a_tensor_input():
    """With a tensor input, a broadcast number is made at run time, in that input's dtype;
    without one (an all-scalar input list), it is folded once as before."""
    v = sg.vector("v", "n")
    f = sg.compile(sg.grad(sg.mean(v), v), [v])
    assert "_rt.broadcast_number(_xp, " in f.source
    s = sg.scalar("s")
    g = sg.compile(sg.broadcast_to(2.0, (3,)), [s])
    assert "broadcast" not in g.source.split("def compiled")[1]  # folded, float64
    assert g(1.0).dtype == F64


# ------------------------------------------------------------------ other backends
def _jax_x64():
    import jax

    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # older jax
        from jax.experimental import enable_x64 as enable
    return enable(True)


def _backend(name):
    if name == "array_api_strict":
        import array_api_strict

        return array_api_strict
    return name


BACKENDS = [*ARRAY_BACKENDS, pytest.param("numba", marks=pytest.mark.skipif(
    not _have("numba"), reason="numba not installed"))]


@pytest.fixture
def numba_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", BACKENDS)
def test_backends_results_have_the_inputs_dtype(name, case, dtype, numba_cache):
    outs, ins = CASES[case]()
    vals = _values(ins, dtype)
    if name == "jax":  # with x64, where jax has float64 to get wrong
        with _jax_x64():
            got = sg.compile(outs, ins, backend="jax")(*_inputs(name, vals))
            dts = [_dtype(r) for r in got]
    else:
        got = sg.compile(outs, ins, backend=_backend(name))(*_inputs(name, vals))
        dts = [_dtype(r) for r in got]
    assert dts == [np.dtype(dtype)] * len(outs)


# ------------------------------------------------------------------ random graphs
def _graph_and_gradients(e):
    """(outputs, inputs): ``e``, and the gradients of sum(e) wrt every variable of the pool,
    those it does not depend on included (zeros)."""
    loss = sg.sum(e) if e.ndim else e
    return [e, *sg.grad(loss, list(TENSOR_VARS))], list(TENSOR_VARS)


def _random_values(seed, ins, dtype, scalar_kind):
    rng = np.random.default_rng(seed)
    vals = []
    for v in ins:
        x = rng.uniform(-1.5, 1.5, v.shape)
        if v.shape:
            vals.append(x.astype(dtype))
        else:
            vals.append(float(x) if scalar_kind == "python" else dtype(x))
    return vals


def _check_dtypes(outs, got, dtype):
    """Every tensor result has ``dtype``; a scalar result is a Python number (a weak scalar,
    computed from scalar inputs alone) or has ``dtype``."""
    for e, r in zip(outs, got):
        if e.shape:
            assert isinstance(r, np.ndarray) and r.dtype == dtype, (str(e), r)
        else:
            assert type(r) in (float, int) or np.asarray(r).dtype == dtype, (str(e), r)


@given(dags(tensor=True, value_only=True, max_ops=8), st.integers(0, 2**32 - 1),
       st.sampled_from(["python", "numpy"]))
def test_random_graphs_keep_float32_and_float64(e, seed, scalar_kind):
    outs, ins = _graph_and_gradients(e)
    f = sg.compile(outs, ins)
    with np.errstate(all="ignore"):
        for dtype in (np.float32, np.float64):
            _check_dtypes(outs, f(*_random_values(seed, ins, dtype, scalar_kind)),
                          np.dtype(dtype))


@given(dags(tensor=True, max_ops=8), st.integers(0, 2**32 - 1))
def test_random_graphs_keep_float32_per_sample(e, seed):
    """The first scalar input given float32 samples: every result float32, samples in front."""
    outs, ins = _graph_and_gradients(e)
    f = sg.compile(outs, ins)
    vals = _random_values(seed, ins, np.float32, "python")
    vals[0] = np.float32([0.25, -0.5])
    with np.errstate(all="ignore"):
        got = f(*vals)
    if not any(v is X0 for o in outs for v in sg.variables(o)):  # the samples are ignored
        _check_dtypes(outs, got, F32)
        return
    for o, r in zip(outs, got):
        assert isinstance(r, np.ndarray) and r.dtype == F32, str(o)
        assert r.shape == (2, *o.shape)


def test_evaluate_takes_its_dtype_from_a_value_the_graph_does_not_use():
    # the gradient of mean(v) wrt v does not use v: evaluate gave float64 for float32 v,
    # where compile(g, [v]) gives float32
    v = sg.vector("v_lend", 3)
    g = sg.grad(sg.mean(v), v)
    assert sg.evaluate(g, {v: np.ones(3, np.float32)}).dtype == np.float32
    assert sg.compile(g, [v])(np.ones(3, np.float32)).dtype == np.float32
    assert sg.evaluate(g, {v: np.ones(3)}).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16,
                                   np.bool_])
def test_small_unsigned_and_bool_arrays_are_taken_as_float64(dtype):
    """sigmoid of uint8 [1, 2, 3] was [0, 0, 0] (-x wrapped to 255, in float16), softmax nan,
    logsumexp inf, exp of int8 12 inf: such arrays now compute as their float64 values."""
    v = sg.vector("dv", 3)
    x = sg.scalar("dx")
    data = np.array([1, 0, 1] if dtype is np.bool_ else [12, 1, 3], dtype=dtype)
    ref = data.astype(np.float64)
    for e in (sg.sigmoid(v), sg.softmax(v), sg.logsumexp(v), sg.exp(v), sg.log_softmax(v),
              sg.grad(sg.sum(sg.softplus(v)), v), -v + 1):
        got = sg.evaluate(e, {v: data})
        want = sg.evaluate(e, {v: ref})
        assert np.asarray(got).dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-15)
    # samples for the scalar input of a graph of scalars, and the many-input reader
    np.testing.assert_allclose(sg.evaluate(sg.sigmoid(x), {x: data}),
                               1 / (1 + np.exp(-ref)), rtol=1e-15)
    many = [sg.vector(f"dm{i}", 3) for i in range(10)]
    f = sg.compile(sum(sg.sigmoid(m) for m in many), many)
    np.testing.assert_allclose(f(*[data] * 10), 10 / (1 + np.exp(-ref)), rtol=1e-14)


def test_complex_masked_and_odd_values_are_refused_by_name():
    v = sg.vector("cv", 3)
    x, y = sg.scalars("cx cy")
    bad = {
        "complex128": np.array([1 + 1j, 2, 3]),
        "masked array": np.ma.array([1.0, -4.0, 9.0], mask=[0, 1, 0]),
    }
    for what, val in bad.items():
        with pytest.raises(TypeError, match=f"input cv: .*{what}"):
            sg.evaluate(sg.sum(v), {v: val})
    for val in (3 + 4j, np.complex128(1.0), np.ma.array([1.0, 2.0], mask=[0, 1])):
        with pytest.raises(TypeError, match=r"input cx: .*(complex|masked)"):
            sg.evaluate(sg.softplus(x) * y, {x: val, y: 2.0})
    with pytest.raises(TypeError, match=r"input cx: .*complex"):
        sg.compile(sg.sum(v) * x, [v, x])(np.ones(3), 1j)
    from decimal import Decimal
    from fractions import Fraction

    assert sg.evaluate(sg.softplus(x) * y, {x: Decimal("0.5"), y: Fraction(1, 2)}) == \
        pytest.approx(0.5 * np.log1p(np.exp(0.5)), rel=1e-15)


def test_constant_arrays_of_bools_or_integers_are_float64():
    # -const([True, False]) raised numpy's "boolean negative is not supported" at evaluate
    assert list(sg.evaluate(-sg.const(np.array([True, False])), {})) == [-1.0, -0.0]
    s = sg.evaluate(sg.sigmoid(sg.const(np.array([1, 2], np.uint8))), {})
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-np.array([1.0, 2.0]))), rtol=1e-15)
    assert sg.const(np.array([1, 2], np.int8)).attrs["value"].dtype == np.float64
    # and every integer array: int64 constants wrapped around (sum(c**2) of [2**32, 3] was 9),
    # jax without x64 cut them to int32, torch refused a float vector @ an int64 one
    assert sg.const(np.array([1, 2], np.int64)).attrs["value"].dtype == np.float64
    x = sg.scalar("x_ci")
    assert sg.evaluate(sg.sum(sg.const(np.array([2**32, 3])) ** 2) * x, {x: 1.0}) == 2.0**64 + 9
    assert sg.const(np.array([1, 2], np.float16)).attrs["value"].dtype == np.float16
    with pytest.raises(ValueError, match="const: a masked array"):
        sg.const(np.ma.array([1.0, 2.0], mask=[0, 1]))


def _computed(r):
    r = r.compute(scheduler="sync") if hasattr(r, "compute") else r
    return np.asarray(r, dtype=float)


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_widens_small_ints_and_refuses_complex(name, numba_cache):
    """uint8 [200, 3] gave sum(u*u) = 73 on dask, jax and array-API namespaces (the squares
    wrapped around), and complex data computed in complex numbers there."""
    u = sg.vector("u_bk", 2)
    data = np.array([200, 3], np.uint8)
    backend = _backend(name)
    ctx = _jax_x64() if name == "jax" else contextlib.nullcontext()
    with ctx:
        f = sg.compile([sg.sum(u * u), sg.softmax(u)], [u], backend=backend)
        total, soft = f(*_inputs(name, [data]))
        assert float(_computed(total)) == 40009.0
        np.testing.assert_allclose(_computed(soft), [1.0, np.exp(-197.0)], rtol=1e-12)
        with pytest.raises(TypeError, match=r"input u_bk: .*complex"):
            f(*_inputs(name, [np.array([1 + 1j, 2.0])]))


@pytest.mark.skipif(not _have("jax"), reason="jax not installed")
def test_jax_refuses_a_complex_number_for_a_scalar_input():
    # under jit a Python complex became a complex tracer: x*2 at 1j was 2j
    x = sg.scalar("x_jc")
    with pytest.raises(TypeError, match=r"input x_jc: a complex number"):
        sg.compile(x * 2, [x], backend="jax")(1j)
    assert float(sg.compile(x * 2, [x], backend="jax")(2.0)) == 4.0


@pytest.mark.parametrize("name", BACKENDS)
def test_the_softmax_family_over_an_empty_axis_on_every_backend(name, numba_cache):
    # torch raised "amax(): Expected reduction dim", dask "zero-size array" at compute time
    v, M = sg.vector("v_em", "n"), sg.matrix("M_em", ("n", 2))
    backend = _backend(name)
    ctx = _jax_x64() if name == "jax" else contextlib.nullcontext()
    with ctx, np.errstate(divide="ignore"):
        f = sg.compile([sg.logsumexp(v), sg.softmax(v)], [v], backend=backend)
        lse, soft = f(*_inputs(name, [np.zeros(0)]))
        assert float(_computed(lse)) == -np.inf and _computed(soft).shape == (0,)
        g = sg.compile([sg.logsumexp(M, 0), sg.log_softmax(M, 1)], [M], backend=backend)
        col, rows = g(*_inputs(name, [np.zeros((0, 2))]))
        assert _computed(col).tolist() == [-np.inf, -np.inf] and _computed(rows).shape == (0, 2)


@pytest.mark.parametrize("name", [p for p in BACKENDS if p.values[0] != "array_api_strict"])
def test_bad_inputs_are_named_on_the_other_backends(name, numba_cache):
    # torch said "Could not infer dtype of NoneType", dask and numba "expected shape (3,),
    # got ()", numba "float() argument must be ...", jax "Error interpreting argument to
    # <function compiled> as an abstract array"
    v, b = sg.vector("v_bad", 3), sg.scalar("b_bad")
    f = sg.compile(sg.sum(sg.tanh(v * b)), [v, b], backend=name)
    for args, who in (((None, 1.0), "v_bad"), (("abc", 1.0), "v_bad"),
                      ((np.ones(3), None), "b_bad"), ((np.ones(3), "x"), "b_bad")):
        with pytest.raises(TypeError, match=f"input {who}: "):
            f(*args)


def test_a_version_that_reuses_buffers_reads_odd_dtypes_through_its_plain_version():
    """The main version (reusing dead temporaries) tests only its array inputs' classes: its
    one-float-dtype test sends any other dtype to the plain version, which widens or refuses."""
    from tests.backend_cases import mlp_graph, mlp_values

    outs, ins = mlp_graph(4, 3)
    f = sg.compile(outs, ins)
    assert "_ip = " in f.source and "X.dtype not in _FINE" not in f.source.split("_ip = ")[0]
    vals = mlp_values(4, 3, 6)
    odd = list(vals)
    odd[4] = (vals[4] * 10).astype(np.int8)
    odd[5] = vals[5].astype(np.uint8)
    want = f(*[v.astype(float) if isinstance(v, np.ndarray) else v for v in odd])
    for got, ref in zip(f(*odd), want):
        np.testing.assert_allclose(got, ref, rtol=1e-14)
    with pytest.raises(TypeError, match=r"input y: .*complex"):
        f(*vals[:5], vals[5].astype(complex))


def test_the_square_of_an_integer_array_is_taken_in_floats():
    """x**2 is written x * x, which kept an int64 array in int64 and wrapped around:
    (2**32)**2 gave 0, in values, means and gradients (3 v**2 of sum(v**3)), where every other
    power of integers is a float array."""
    v, x = sg.vector("v_sq", 2), sg.scalar("x_sq")
    big = np.array([2**32, 3])
    want = big.astype(float) ** 2
    for out, ins, vals, ref in [(v**2, [v], [big], want), (v**2.0, [v], [big], want),
                                (sg.mean(v**2), [v], [big], want.mean()),
                                (sg.grad(sg.sum(v**3), v), [v], [big], 3 * want),
                                (x**2, [x], [big], want)]:  # samples of a scalar input
        got = np.asarray(sg.compile(out, ins)(*vals))
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, ref, rtol=1e-15)
    # a float32 array stays float32, and a square of a float result is still x * x
    assert sg.compile(v**2, [v])(np.ones(2, np.float32)).dtype == np.float32
    assert "float_of" not in sg.compile(sg.exp(v) ** 2, [v]).source


@pytest.mark.parametrize("name", BACKENDS)
def test_odd_inputs_are_refused_by_name_on_every_backend(name, numba_cache):
    """What the numpy backend refuses, naming the input, every backend refuses: numba's loop
    over samples made complex samples 0, dropped a mask and parsed strings, and its kernels
    read "0.5" as a number (an object array leaked numba's typing error); dask, torch and
    array_api_strict dropped a mask; jax and torch raised their own errors for samples that
    do not broadcast and for strings."""
    backend = _backend(name)
    x, w = sg.scalars("x_odd w_odd")
    v, s = sg.vector("v_odd", 3), sg.scalar("s_odd")
    ctx = _jax_x64() if name == "jax" else contextlib.nullcontext()
    with ctx:
        f = sg.compile(sg.tanh(w * x), [x, w], backend=backend)
        g = sg.compile(sg.sum(sg.exp(v * s)), [v, s], backend=backend)
        masked = np.ma.masked_array([1.0, 2.0, 3.0], [0, 1, 0])
        cases = [(g, (masked, 0.5), TypeError, "input v_odd: a masked array")]
        if name != "array_api_strict":  # (its asarray reads numpy arrays only as numbers)
            cases += [(g, (np.ones(3), "0.5"), TypeError, "input s_odd: expected numbers"),
                      (g, (np.ones(3), b"0.5"), TypeError, "input s_odd: expected numbers")]
        if name in ("numba", "jax", "torch"):  # numpy arrays of samples for a scalar graph
            cases += [
                (f, (np.array([1j, 2j]), 0.5), TypeError, "input x_odd: .*complex"),
                (f, (np.ma.masked_array([1.0, 2.0], [0, 1]), 0.5), TypeError,
                 "input x_odd: a masked array"),
                (f, (np.array(["1", "2"]), 0.5), TypeError, "input x_odd: expected numbers"),
                (f, (np.ones(3), np.ones(4)), sg.ShapeError,
                 r"inputs x_odd \(3,\) and w_odd \(4,\): arrays of samples")]
        cases += [(g, (np.array(["1", 2.0, 3.0], dtype=object), 0.5), TypeError,
                   "input v_odd: expected numbers, got an array of dtype object"),
                  (g, (np.array([s, s, s], dtype=object), 0.5), TypeError,
                   "input v_odd: expected numbers, got an array of dtype object")]
        for fn, args, err, pattern in cases:
            with pytest.raises(err, match=pattern):
                fn(*args)
        # an object array of numbers (what numpy makes of ints beyond int64) is floats
        got = g(np.array([1.0, 2**70, 3], dtype=object), 1e-21)
        want = g(np.array([1.0, 2.0**70, 3.0]), 1e-21)
        np.testing.assert_allclose(np.asarray(_computed(got)), np.asarray(_computed(want)))


@pytest.mark.skipif(not _have("dask"), reason="dask not installed")
def test_dask_keeps_float32_samples_beside_a_python_float():
    """maximum(u, x) of float32 samples and a Python float: dask's adapter made the number a
    float64 array, which promoted the samples (numpy keeps float32)."""
    x, u = sg.scalars("x_mx u_mx")
    xs = np.linspace(-1, 1, 5, dtype=np.float32)
    for out in (sg.maximum(u, x), sg.minimum(x, u)):
        got = sg.compile(out, [x, u], backend="dask")(xs, 0.2)
        assert _computed(got).shape == (5,) and np.asarray(
            got.compute() if hasattr(got, "compute") else got).dtype == np.float32


@pytest.mark.skipif(not _have("array_api_strict"), reason="array_api_strict not installed")
def test_the_sigmoid_is_quiet_on_every_namespace():
    """array_api_strict computes with numpy underneath, whose overflow warnings the sigmoid
    let through there (the contract promises none for any finite input)."""
    import warnings

    import array_api_strict as xps

    z, y = sg.vector("z_sw", 2), sg.vector("y_sw", 2)
    g = sg.grad(sg.sum(sg.bce(sg.sigmoid(z), y)), z)
    f = sg.compile([sg.sigmoid(z), g], [z, y], backend=xps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sig, grad = f(xps.asarray([-1e3, 1e3]), xps.asarray([0.0, 0.0]))
    np.testing.assert_array_equal(np.asarray(sig), [0.0, 1.0])
    np.testing.assert_array_equal(np.asarray(grad), [0.0, 1.0])


@pytest.mark.parametrize("name", ["numpy", *BACKENDS])
def test_inputs_the_outputs_do_not_use_are_ignored_on_every_backend(name, numba_cache):
    """The contract: inputs the outputs do not use are allowed and ignored. sg.compile checked
    an unused vector's shape (ShapeError for a (5,) given to a (3,) input) and refused None,
    where sg.evaluate ignored them; an unused input with a named size still fixes that size."""
    x, u, v = sg.scalar("x_un"), sg.vector("u_un", 2), sg.vector("v_un", 3)
    backend = _backend(name)
    ctx = _jax_x64() if name == "jax" else contextlib.nullcontext()
    with ctx:
        f = sg.compile(sg.sum(u) * x, [x, u, v], backend=backend)
        for junk in (None, np.ones(5), "junk"):
            got = f(1.0, *_inputs(name, [np.ones(2)]), junk)
            assert float(_computed(got)) == 2.0
    many = sg.scalars(" ".join(f"m{i}_un" for i in range(10)))  # the version reading *args
    g = sg.compile(sg.sum(u) * many[0], [*many, u, v])
    assert g(*[1.0] * 10, np.ones(2), None) == 2.0
    w, M = sg.vector("w_un", "n"), sg.matrix("M_un", ("m", "n"))  # a named size is still read
    with pytest.raises(sg.ShapeError, match="input M_un"):
        sg.compile(sg.sum(w), [w, M])(np.ones(3), np.ones((2, 4)))


def test_a_gradient_equal_to_an_integer_value_is_float():
    # d/dv of stop_gradient(argmax(v)) * sum(v) is the index, broadcast: 1.0 * index folded to
    # the index itself came back int64 (and g *= 0.1 raised), where numpy computes in floats
    v, w = sg.vector("v_iv", 3), sg.vector("w_iv", 3)
    vals = {v: np.array([1.0, 3.0, 2.0]), w: np.ones(3)}
    for g, want in ((sg.grad(sg.stop_gradient(sg.argmax(v)) * sg.sum(v), v), [1.0, 1.0, 1.0]),
                    (sg.grad(sg.sum(w * sg.stop_gradient(sg.to_int(v))), w), [1.0, 3.0, 2.0])):
        r = sg.evaluate(g, vals)
        assert r.dtype == np.float64
        np.testing.assert_array_equal(r, want)
        r *= 0.1
    x = sg.scalar("x_iv")
    assert isinstance(sg.evaluate(sg.argmax(v) * 1.0 + x, {v: vals[v], x: 0.0}), float)


def test_a_derivative_equal_to_an_integer_constant_is_float():
    # the gradient of sum(c * v) for an int64 array c is c: it came back int64 (and
    # g *= 0.1 raised), the gradient wrt a scalar a Python int, a Jacobian C @ v an int64 C
    v, x = sg.vector("v_ic", 3), sg.scalar("x_ic")
    A = sg.matrix("A_ic", (2, 3))
    c, C = np.array([1, 2, 3]), np.arange(6).reshape(2, 3)
    f32 = np.array([0.5, 1.5, 2.5], np.float32)
    g = sg.evaluate(sg.grad(sg.sum(c * v), v), {v: f32})
    assert g.dtype == np.float64
    g *= 0.1
    r = sg.compile(sg.grad(sg.sum(x * c), x), [x])(0.5)
    assert type(r) is float and r == 6.0
    for d, vals in ((sg.jacobian(C @ v, v), {v: np.ones(3)}),
                    (sg.grad(sg.sum(A * C), A), {A: np.ones((2, 3))}),
                    (sg.hessian(x * sg.sum(c * v), [x, v])[0][1], {x: 1.0, v: np.ones(3)})):
        assert sg.evaluate(d, vals).dtype == np.float64


@pytest.mark.parametrize("name", BACKENDS)
def test_integer_arrays_are_computed_in_floats_on_every_backend(name, numba_cache):
    # int64 data was computed as numpy computes it, in integers: sum(v*v) of [2**32, 3]
    # wrapped around to 9, and v * 1.0 (the way to ask for floats) was folded to v by a rule
    backend = _backend(name)
    v, x = sg.vector("v_int", 2), sg.scalar("x_int")
    d = np.array([2**32, 3])
    want = 2.0**64 + 9
    ctx = _jax_x64() if name == "jax" else contextlib.nullcontext()
    with ctx:
        for out in (sg.sum(v * v), sg.dot(v * 1.0, v * 1.0), sg.sum((v / 1) * v)):
            got = _computed(sg.compile(out, [v], backend=backend)(d))
            assert float(np.asarray(got)) == pytest.approx(want, rel=1e-12)
        got = np.asarray(_computed(sg.compile(v + v, [v], backend=backend)(d)))
        assert got.dtype.kind == "f"
        np.testing.assert_array_equal(got, 2.0 * d)
        # samples of integers for a scalar input, too
        got = _computed(sg.compile(x * x * sg.sum(v), [x, v], backend=backend)(
            np.array([2**32, 2]), np.ones(2)))
        np.testing.assert_allclose(np.asarray(got), [2.0**65, 8.0], rtol=1e-12)


def test_an_unused_tensor_input_lends_no_dtype():
    """The dtype of the arrays symgrad creates comes from the first tensor input the outputs
    use: x (float64) listed first but unused gives way to y (float32). Found by mutation
    testing."""
    x, y = sg.vector("x_ul", 3), sg.vector("y_ul", 3)
    f = sg.compile(sg.eye(3) * sg.sum(y), [x, y])
    got = f(np.ones(3), np.ones(3, np.float32))
    assert got.dtype == F32
    np.testing.assert_array_equal(got, 3.0 * np.eye(3))


def test_evaluate_takes_no_dtype_from_a_numpy_scalar_value():
    """grad(mean(v), v) uses no variable, so evaluate lends it the dtype of v's float32 value;
    a np.float64 value of a scalar input lends none. Found by mutation testing."""
    s, v = sg.scalar("s_dl"), sg.vector("v_dl", 4)
    g = sg.grad(sg.mean(v), v)
    r = sg.evaluate([g, s * 2], {s: np.float64(2.0), v: np.ones(4, np.float32)})
    assert r[0].dtype == F32
    np.testing.assert_array_equal(r[0], [0.25] * 4)
    assert r[1] == 4.0


@pytest.mark.skipif(not _have("numba"), reason="numba not installed")
def test_numba_keeps_float16_samples_of_a_graph_of_scalars(numba_cache):
    """float16 samples for a graph of scalars: float16 on numba, as numpy computes them
    (found by mutation testing: numba's loop took any float dtype and gave float64)."""
    x = sg.scalar("x_f16")
    e = sg.exp(x) * 2 + x
    s = np.array([0.5, 1.5], np.float16)
    want = sg.compile(e, [x])(s)
    got = sg.compile(e, [x], backend="numba")(s)
    assert want.dtype == np.float16 and got.dtype == np.float16
    np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(not _have("numba"), reason="numba not installed")
def test_numba_ignores_the_dtype_of_an_unused_array_input(numba_cache):
    """An unused float64 vector listed next to float32 data: float32 on numba, as on numpy
    (found by mutation testing: the unused array counted and made it float64)."""
    v, w = sg.vector("v_ua", 3), sg.vector("w_ua", 3)
    e = sg.exp(v) * 2 + v
    data = np.array([0.0, 1.0, 2.0], np.float32)
    want = sg.compile(e, [v, w])(data, np.ones(3))
    got = sg.compile(e, [v, w], backend="numba")(data, np.ones(3))
    assert want.dtype == np.float32 and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6)
