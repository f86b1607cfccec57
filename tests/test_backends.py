"""The same compiled graphs on other array libraries: torch and jax on the CPU, dask, and any
array-API namespace (array_api_strict checks that generated code uses only array-API names).
Each library's tests skip cleanly when it is not installed."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad import backends
from tests.backend_cases import ARRAY_BACKENDS as BACKENDS
from tests.backend_cases import CASES, numpy_reference
from tests.backend_cases import backend_inputs as _inputs
from tests.backend_cases import have as _have


def _to_numpy(r):
    if hasattr(r, "compute"):  # dask
        r = r.compute()
    if hasattr(r, "detach"):  # torch
        r = r.detach().cpu().numpy()
    return np.asarray(r)


@pytest.fixture(scope="module")
def x64():
    """jax computes in float64 only with x64 enabled (symgrad never flips that switch)."""
    if not _have("jax"):
        yield
        return
    import jax

    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # older jax
        from jax.experimental import enable_x64 as enable
    with enable(True):
        yield


def _backend_arg(name):
    if name == "array_api_strict":
        import array_api_strict

        return array_api_strict
    return name


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", BACKENDS)
def test_backend_matches_numpy(name, case, x64):
    outs, ins, vals = CASES[case]()
    want = numpy_reference(outs, ins, vals)
    fn = sg.compile(outs, ins, backend=_backend_arg(name))
    got = fn(*_inputs(name, vals))
    if name == "dask":
        import dask

        got = dask.compute(*got, scheduler="sync")
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        g = _to_numpy(g)
        assert g.shape == w.shape, (case, k)
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, err_msg=f"{case} output {k}")


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_reads_numpy_arrays_with_negative_strides(name, x64):
    # torch reads none: v[::-1] was refused as "not numbers", and per-sample calls leaked
    # torch's ValueError
    s, v = sg.scalar("s_ns"), sg.vector("v_ns", 3)
    a = np.array([1.0, 2.0, 3.0])
    got = [sg.compile(sg.exp(v), [v], backend=_backend_arg(name))(a[::-1]),
           sg.compile(s * v, [s, v], backend=_backend_arg(name))(a[::-1], np.flip(a))]
    if name == "dask":
        import dask

        got = dask.compute(*got, scheduler="sync")
    np.testing.assert_allclose(_to_numpy(got[0]), np.exp(a[::-1]))
    np.testing.assert_allclose(_to_numpy(got[1]), np.outer(a[::-1], a[::-1]))


@pytest.mark.filterwarnings("error::UserWarning")  # torch warned on sharing a read-only constant
@pytest.mark.parametrize("name", BACKENDS)
def test_backend_compiles_a_function_of_no_inputs(name, x64):
    # torch and array-API namespaces promoted the inputs with a line that read ", = ...(,)"
    fn = sg.compile([sg.const(1.5), sg.const(np.ones(2)) * 2.0], [], backend=_backend_arg(name))
    got = fn()
    if name == "dask":
        import dask

        got = dask.compute(*got, scheduler="sync")
    assert float(_to_numpy(got[0])) == 1.5
    np.testing.assert_array_equal(_to_numpy(got[1]), [2.0, 2.0])


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_shape_errors_name_the_input(name, x64):
    v = sg.vector("v", "n")
    w = sg.vector("w", "n")
    fn = sg.compile(sg.sum(v * w), [v, w], backend=_backend_arg(name))
    a, b = _inputs(name, [np.ones(3), np.ones(4)])
    with pytest.raises(sg.ShapeError, match="input w"):
        fn(a, b)


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_names_a_number_too_large_for_a_float(name, x64):
    # the jax backend said a bare "int too large to convert to float"
    from decimal import Decimal
    from fractions import Fraction

    x, y, v = sg.scalar("x_big"), sg.scalar("y_big"), sg.vector("v_big", 2)
    for outs, ins, rest in ((sg.tanh(x) * y, [x, y], 2.0), (sg.tanh(x) * v, [x, v], None)):
        fn = sg.compile(outs, ins, backend=_backend_arg(name))
        other = rest if rest is not None else _inputs(name, [np.ones(2)])[0]
        for big, what in ((10**400, "an integer of 1329 bits"), (Fraction(10**400, 3),
                                                                 "Fraction 1"),
                          (Decimal("1e400"), "Decimal 1E"), (-(10**400), "an integer of")):
            with pytest.raises(OverflowError, match=rf"^input x_big: {what}.* is too large "
                                                    r"for a float \(at most about 1.8e308\)"):
                fn(big, other)


def test_numpy_samples_for_a_graph_of_scalars_become_jax_arrays_on_the_jax_numpy_module(x64):
    # x + y of numpy samples came back a numpy array, exp(x) a jax one (a probe)
    if not _have("jax"):
        pytest.skip("jax not installed")
    import jax
    import jax.numpy as jnp

    x, y = sg.scalars("x_jm y_jm")
    xs, ys = np.array([-1.0, 0.5]), np.array([0.3, 0.2])
    outs = [x + y, sg.relu(x), x * 2.0, sg.exp(x)]
    f = sg.compile(outs, [x, y], backend=jnp)
    for got, want in zip(f(xs, ys), (xs + ys, np.maximum(xs, 0.0), 2 * xs, np.exp(xs))):
        assert isinstance(got, jax.Array)
        np.testing.assert_allclose(np.asarray(got), want)
    assert all(isinstance(r, jax.Array) for r in f(xs, 0.2))
    for a, b in ((np.int64(1), np.int64(2)), (np.float64(1.0), np.float32(2.0)),
                 (np.array(1.0), 2.0)):
        assert all(isinstance(r, jax.Array) for r in f(a, b)), (a, b)
    got = jax.jit(f)(xs, 0.2)  # (traced: the inputs are jax's already)
    np.testing.assert_allclose(np.asarray(got[0]), xs + 0.2)


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_keeps_the_checks_a_rewrite_dropped(name, x64):
    v, u = sg.vector("v", "n"), sg.vector("u", 3)
    f = sg.sum(v + u)  # n must be 3; d/du is ones, whose graph has no v: a guard keeps the check
    fn = sg.compile([0 * v + u, sg.grad(f, u)], [v, u], backend=_backend_arg(name))
    got = fn(*_inputs(name, [np.ones(3), np.arange(3.0)]))
    if name == "dask":
        import dask

        got = dask.compute(*got, scheduler="sync")
    np.testing.assert_array_equal(_to_numpy(got[0]), np.arange(3.0))
    np.testing.assert_array_equal(_to_numpy(got[1]), np.ones(3))
    with pytest.raises(sg.ShapeError, match=r"add: shapes \(5,\) and \(3,\) do not fit"):
        fn(*_inputs(name, [np.ones(5), np.arange(3.0)]))


@pytest.mark.skipif(not _have("torch"), reason="torch not installed")
def test_torch_results_are_tensors_in_float64():
    import torch

    x = sg.vector("x", 3)
    f = sg.sum(sg.exp(x))
    fn = sg.compile([f, sg.hessian(f, x)], [x], backend="torch")
    val, hess = fn(torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))
    assert isinstance(hess, torch.Tensor) and hess.dtype == torch.float64
    np.testing.assert_allclose(hess.numpy(), np.diag(np.exp([0.1, 0.2, 0.3])), rtol=1e-14)


@pytest.mark.skipif(not _have("jax"), reason="jax not installed")
def test_jax_backend_is_jitted(x64):
    outs, ins, vals = CASES["mlp"]()
    fn = sg.compile(outs, ins, backend="jax")
    assert fn.unjitted is not fn and "_xp." in fn.source
    got = [_to_numpy(r) for r in fn(*_inputs("jax", vals))]
    for g, w in zip(got, numpy_reference(outs, ins, vals)):
        np.testing.assert_allclose(g, w, rtol=1e-10)


@pytest.mark.skipif(not _have("torch") or not _have("dask") or not _have("array_api_compat"),
                    reason="torch / dask / array-api-compat not installed")
def test_library_modules_map_to_their_backend():
    import dask.array as da
    import torch

    assert backends.namespace(torch) is backends.namespace("torch")
    assert backends.namespace(da) is backends.namespace("dask")
    assert backends.namespace(np) is np
    x = sg.vector("x", 3)
    fn = sg.compile(sg.exp(x) * 2.0, [x], backend=torch)
    assert isinstance(fn(torch.ones(3, dtype=torch.float64)), torch.Tensor)


def test_unknown_backend_is_a_clear_error():
    x = sg.scalar("x")
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        sg.compile(x * 2.0, [x], backend="nope")
    with pytest.raises(TypeError, match="not an array namespace"):
        sg.compile(x * 2.0, [x], backend=object())
    if _have("torch"):  # (torch's bare RuntimeError: found by review)
        with pytest.raises(ValueError, match=r"^backend 'torch:nope': not a torch device"):
            sg.compile(x * 2.0, [x], backend="torch:nope")


def test_missing_backend_names_the_extra(monkeypatch):
    import sys

    for mod in ("torch", "dask", "dask.array", "cupy", "jax", "jax.numpy", "numba"):
        monkeypatch.setitem(sys.modules, mod, None)  # import fails as if not installed
    monkeypatch.setattr(backends, "_NAMESPACES", {})
    x = sg.vector("x", 3)
    for name in ("torch", "dask", "cupy", "jax", "numba"):
        with pytest.raises(backends.BackendNotInstalled,
                           match=rf"pip install 'symgrad\[{name}\]'"):
            sg.compile(sg.sum(x), [x], backend=name)
        assert not backends.available(name)
    assert backends.available("numpy")


def test_a_gpu_backend_is_available_only_with_a_gpu():
    # torch built without CUDA imports: available("torch:cuda") said True, and the compile
    # then failed in torch
    if _have("torch"):
        import torch

        assert backends.available("torch:cuda") is bool(torch.cuda.is_available())
        if not torch.cuda.is_available():  # refused when compiled, not blamed on each input
            with pytest.raises(sg.BackendNotInstalled, match=r"'torch:cuda'.*no CUDA device"):
                sg.compile(sg.vector("x_gpu", 3) * 2.0, [sg.vector("x_gpu", 3)],
                           backend="torch:cuda")
    if not _have("cupy"):
        assert not backends.available("cupy")
    with pytest.raises(ValueError, match=r"backend 'numba:cpu': only torch takes a device"):
        sg.compile(sg.vector("x_gpu", 3) * 2.0, [sg.vector("x_gpu", 3)], backend="numba:cpu")


def test_dask_arrays_of_unknown_chunk_sizes_are_named():
    """A boolean mask leaves a dask array of shape (nan, 3): its size N bound to nan gave a
    mean of nan without an error."""
    if not _have("dask") or not _have("array_api_compat"):
        pytest.skip("dask and array_api_compat not installed")
    import dask.array as da

    X, w = sg.matrix("X_unk", ("N", 3)), sg.vector("w_unk", 3)
    data = np.arange(30.0).reshape(10, 3)
    keep = np.arange(10) % 2 == 0
    masked = da.from_array(data, chunks=(4, 3))[da.from_array(keep, chunks=4)]
    f = sg.compile(sg.mean(X @ w), [X, w], backend="dask")
    with pytest.raises(ValueError, match=r"input X_unk: a dask array of shape \(nan, 3\) has "
                                         r"chunks of unknown size: call its "
                                         r"\.compute_chunk_sizes\(\) first"):
        f(masked, np.ones(3))
    got = f(masked.compute_chunk_sizes(), np.ones(3)).compute()
    assert got == pytest.approx((data[keep] @ np.ones(3)).mean())


def test_jax_refuses_a_graph_that_samples_by_name(x64):
    """numpy's generator cannot run inside jax.jit: the call failed in jax's tracing with a
    TracerArrayConversionError that did not say which op or what to do."""
    if not _have("jax"):
        pytest.skip("jax not installed")
    v = sg.vector("v_draw", 4)
    for e in (sg.straight_through(sg.sample_bernoulli(sg.sigmoid(v), seed=1), sg.sigmoid(v)),
              sg.sample_categorical(v, seed=2)):
        with pytest.raises(ValueError, match=r"compile: sample_\w+ draws from numpy's random "
                                             r"generator, which code jitted by jax cannot call"):
            sg.compile(e, [v], backend="jax")


def test_jax_keeps_float32_through_a_kink_of_a_python_float_input(x64):
    """relu'(t), abs'(t) of a Python-float input t: under jit t is a weak tracer, and the
    step made it a strong float64, so float32 data gave float64 gradients (numpy: float32)."""
    if not _have("jax"):
        pytest.skip("jax not installed")
    u, t = sg.vector("u_kink", 3), sg.scalar("t_kink")
    outs = [sg.grad(sg.sum(sg.exp(u) * sg.relu(t)), t), sg.grad(sg.abs(t) * sg.sum(u), t),
            sg.hessian(sg.sum(sg.exp(u) * sg.relu(t)), [u, t])[0][1]]
    u32 = np.ones(3, np.float32)
    want = [np.asarray(r).dtype for r in sg.compile(outs, [u, t])(u32, 2.0)]
    got = [np.asarray(r).dtype for r in sg.compile(outs, [u, t], backend="jax")(u32, 2.0)]
    assert want == got == [np.float32] * 3


def test_torch_promotes_inputs_as_numpy_does():
    """torch refused float32 @ float64 (a RuntimeError), computed int data with Python floats
    in float32 (16777217 * 0.5 lost its last digit), and left float32 data float32 beside a
    float64 numpy scalar: its inputs now take numpy's common dtype, ints as float64."""
    if not _have("torch"):
        pytest.skip("torch not installed")
    import torch

    A, w, v, x = sg.matrix("A_pr", (2, 3)), sg.vector("w_pr", 3), sg.vector("v_pr", 3), \
        sg.scalar("x_pr")
    mixed = sg.compile(A @ w, [A, w], backend="torch")(torch.ones(2, 3), torch.ones(3).double())
    assert mixed.dtype == torch.float64 and mixed.tolist() == [3.0, 3.0]
    half = sg.compile(v * 0.5, [v], backend="torch")(torch.tensor([16777217, 1, 2]))
    assert half.dtype == torch.float64 and half[0].item() == 8388608.5
    got = sg.compile(sg.sum(v * sg.exp(v)), [v], backend="torch")(torch.tensor([3, 1, 2]))
    assert got.item() == pytest.approx(sg.compile(sg.sum(v * sg.exp(v)), [v])(
        np.array([3.0, 1.0, 2.0])))
    for val in (np.float64(1.5), np.array(1.5)):
        r = sg.compile(v * x, [v, x], backend="torch")(torch.ones(3), val)
        assert r.dtype == torch.float64  # as numpy: float32 data times a strong float64
    weak = sg.compile(v * x, [v, x], backend="torch")(torch.ones(3), 1.5)
    assert weak.dtype == torch.float32  # a Python float is weak in both


def test_an_array_api_namespace_takes_numpy_numbers_for_scalar_inputs():
    # array_api_strict refused a numpy float64 for the scalar input x with its own TypeError
    # ("Expected Array or Python scalar"); the contract's scalar input takes numpy numbers
    if not _have("array_api_strict"):
        pytest.skip("array_api_strict not installed")
    import array_api_strict as xp

    v, x = sg.vector("v_aas", 3), sg.scalar("x_aas")
    f = sg.compile(v * x, [v, x], backend=xp)
    for val in (1.5, np.float64(1.5), np.float32(1.5), np.array(1.5), np.int64(2)):
        got = f(xp.asarray([1.0, 2.0, 3.0]), val)
        np.testing.assert_array_equal(np.asarray(got), np.array([1.0, 2.0, 3.0]) * float(val))


@pytest.mark.parametrize("name", BACKENDS)
def test_integer_inputs_compute_in_floats_where_numpy_does(name, x64):
    """A Python int or bool for a scalar input is a float on every backend (jax took it as an
    integer tracer: 2**-1 gave -9223372036854775808), and the power of two integer arrays is
    a float array (numpy refused a negative integer power without naming the op, jax wrapped
    it around)."""
    a, b = sg.scalar("a_ii"), sg.scalar("b_ii")
    u, v = sg.vector("u_ii", 2), sg.vector("v_ii", 2)
    cases = [((a**b), [a, b], [2, -1]), (a * b, [a, b], [2**62, 4]),
             (a - b, [a, b], [True, False]), (u**v, [u, v], [np.array([2, 3]), np.array([-1, 2])]),
             (u**a, [u, a], [np.array([2.0, 3.0]), -1]),
             (u**2, [u], [np.array([2**31, 3])])]
    for out, ins, vals in cases:
        want = np.asarray(sg.compile(out, ins)(*vals))
        got = sg.compile(out, ins, backend=_backend_arg(name))(*_inputs(name, vals))
        np.testing.assert_allclose(_to_numpy(got), want, rtol=1e-12)
        assert want.dtype.kind == "f"


@pytest.mark.parametrize("name", BACKENDS)
def test_number_nodes_of_floor_and_to_int_on_every_backend(name, x64):
    """floor and to_int of a scalar computed from Python-float inputs: torch and the array-API
    namespaces crashed (floor(): argument must be Tensor; astype of a host number to the
    backend's int64)."""
    a, b, w = sg.scalar("a_fi"), sg.scalar("b_fi"), sg.vector("w_fi", 3)
    cases = [(sg.floor(a) * b, [a, b], [1.5, 0.3]),
             (sg.to_int(a * 1.7) * w, [a, w], [0.6, np.ones(3)])]
    for out, ins, vals in cases:
        want = np.asarray(sg.compile(out, ins)(*vals))
        got = sg.compile(out, ins, backend=_backend_arg(name))(*_inputs(name, vals))
        np.testing.assert_allclose(_to_numpy(got), want, rtol=1e-12)


@pytest.mark.parametrize("name", BACKENDS)
def test_a_graph_of_scalars_takes_numpy_samples_on_every_backend(name, x64):
    """numpy arrays of samples for the scalar inputs of a graph of scalars: torch and the
    array-API namespaces got them as numpy arrays beside their own (where() of a numpy
    condition and tensors, astype to a numpy dtype)."""
    a, b = sg.scalar("a_ns"), sg.scalar("b_ns")
    vals = [np.array([0.5, -1.5, 2.0]), 0.3]
    for out in (sg.grad(sg.relu(a) * b, a), sg.grad(sg.abs(a) * b, a), sg.step(a) * b,
                sg.grad(sg.maximum(a, b) * b, a), sg.grad(b**a, a), sg.floor(a) * b):
        want = sg.compile(out, [a, b])(*vals)
        got = sg.compile(out, [a, b], backend=_backend_arg(name))(*vals)
        np.testing.assert_allclose(_to_numpy(got), want, rtol=1e-12)


@pytest.mark.parametrize("name", BACKENDS)
def test_complex_values_for_a_scalar_input_are_refused_on_every_backend(name, x64):
    """A complex 0-d numpy array went through on dask and jax (the result was complex), and
    torch dropped the imaginary part of complex samples (1j became 0.0)."""
    X, s = sg.matrix("X_cx", ("N", "d")), sg.scalar("s_cx")
    f = sg.compile(sg.sum(X * s), [X, s], backend=_backend_arg(name))
    data = _inputs(name, [np.ones((2, 2))])[0]
    for bad in (np.array(1j), np.array([1j, 2j])):
        with pytest.raises(TypeError, match=r"input s_cx: .*(complex|real numbers)"):
            f(data, bad)


def test_torch_complex_tensors_for_a_scalar_input_are_refused():
    torch = pytest.importorskip("torch")
    X, s = sg.matrix("X_ct", ("N", "d")), sg.scalar("s_ct")
    f = sg.compile(sg.sum(X * s), [X, s], backend="torch")
    data = torch.ones((2, 2), dtype=torch.float64)
    for bad in (torch.tensor(1j), torch.tensor([1j, 2 + 0j])):
        with pytest.raises(TypeError, match=r"input s_ct: .*complex"):
            f(data, bad)


@pytest.mark.parametrize("backend", ["torch", "jax", "array_api_strict"])
def test_an_integer_constant_computes_on_every_backend(backend):
    # v @ an int64 constant: torch refused Double @ Long, jax without x64 cut 2**32 to 0,
    # array_api_strict refused a float array times an int one
    if backend == "array_api_strict":
        backend = pytest.importorskip("array_api_strict")
    else:
        pytest.importorskip(backend)
    v = sg.vector("v_ic", 2)
    for out, want in ((sg.sum(v * [1, 2]), 3.0), (v * [2**20, 2], [2.0**20, 2.0])):
        got = sg.compile(out, [v], backend=backend)(np.ones(2))
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)


def _as_backend(name):
    if name == "array_api_strict":
        import array_api_strict

        return array_api_strict
    return name


def _host(r):
    r = r.compute() if hasattr(r, "compute") else r
    return np.asarray(r.cpu() if hasattr(r, "cpu") else r)


@pytest.mark.parametrize("backend", ["numpy", "numba", *BACKENDS])
@pytest.mark.parametrize("n", [2, 9])  # 9: more inputs than MANY_INPUTS, another reader
def test_inputs_are_read_alike_on_every_backend_and_input_count(backend, n, tmp_path,
                                                                 monkeypatch):
    # with more than 8 inputs, dask computed int64 samples in integers (2**40 squared was 0),
    # array_api_strict refused a 0-d int array, and object arrays stayed object arrays; a
    # date given for an input that is an output came back as it was, an Expr crashed dask
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    if backend == "numba":
        pytest.importorskip("numba")
    b = _as_backend(backend)
    xs = sg.scalars(" ".join(f"a{k}_rd{n}" for k in range(n)))
    rest = [1.0] * (n - 1)
    sq = sg.compile(xs[0] * xs[0], list(xs), backend=b)
    np.testing.assert_allclose(_host(sq(np.array([2**40, 3]), *rest)), [2.0**80, 9.0],
                               rtol=1e-6)
    np.testing.assert_allclose(_host(sq(np.array(3), *rest)), 9.0)
    from fractions import Fraction  # (an object array of numbers: floats; 2**70 squared is
    np.testing.assert_allclose(_host(sq(np.array([Fraction(1, 2), 3], dtype=object), *rest)),
                               [0.25, 9.0], rtol=1e-6)  # beyond float32, jax's without x64)
    passthrough = sg.compile(sg.grad(xs[0] * xs[1], xs[0]), list(xs), backend=b)
    for bad, what in ((__import__("datetime").date(2020, 1, 1), "date"),
                      (object(), "object"), (sg.scalar("z_rd"), "Expr")):
        with pytest.raises(TypeError, match=rf"^input a1_rd{n}: expected numbers, got {what}"):
            passthrough(2.0, bad, *rest[1:])


@pytest.mark.parametrize("backend", ["numpy", *BACKENDS])
def test_a_vector_input_that_is_no_number_is_named(backend):
    b = _as_backend(backend)
    v, w = sg.vector("v_nn", 2), sg.vector("w_nn", 2)
    f = sg.compile(sg.sum(sg.exp(v) * w), [v, w], backend=b)
    for bad, what in ((sg.scalar("z_nn"), "Expr"), (__import__("datetime").date(2020, 1, 1),
                                                     "date")):
        with pytest.raises(TypeError, match=rf"^input v_nn: expected numbers, got {what}"):
            f(bad, np.ones(2))


def test_an_unused_input_does_not_change_the_dtype_on_torch():
    # the common dtype of the inputs counted an unused float64 one: float32 data came back
    # float64 on torch alone
    torch = pytest.importorskip("torch")
    A, B = sg.matrix("A_ud", (3, 2)), sg.vector("B_ud", 4)
    f = sg.compile(2.0 * A, [A, B], backend="torch")
    got = f(torch.ones((3, 2), dtype=torch.float32), torch.ones(4, dtype=torch.float64))
    assert got.dtype == torch.float32


def test_a_numpy_bool_for_a_scalar_input_is_weak_on_jax_as_on_numpy():
    jax = pytest.importorskip("jax")
    s, v = sg.scalar("s_nb"), sg.vector("v_nb", 3)
    v32 = np.ones(3, np.float32)
    want = sg.compile(s * v, [s, v])(np.bool_(True), v32).dtype
    got = sg.compile(s * v, [s, v], backend="jax")(np.bool_(True), jax.numpy.asarray(v32))
    assert want == np.float32 and got.dtype == np.float32


def test_samples_in_an_object_array_and_a_list_for_a_scalar_input():
    # numba's checks diagnosed the samples (an object array of numbers) before the per-sample
    # path could read them as floats; jax took a Python list for a scalar input as samples,
    # where every other backend refuses it by name
    s, v = sg.scalar("s_os"), sg.vector("v_os", "n")
    if _have("numba"):
        f = sg.compile(sg.sum(s * v), [s, v], backend="numba")
        np.testing.assert_allclose(f(np.array([2**70, 1], dtype=object), np.ones(3)),
                                   [3.0 * 2**70, 3.0])
    if _have("jax"):
        x, y = sg.scalars("x_os y_os")
        with pytest.raises(TypeError, match=r"^input x_os: got a Python list"):
            sg.compile(x * y, [x, y], backend="jax")([0.75, 2.0], 0.5)


@pytest.mark.parametrize("backend", ["torch", "array_api_strict", "dask", "jax"])
def test_an_identity_or_zeros_next_to_a_numpy_input_is_the_backends_own(backend):
    # the Hessian of a quadratic (the identity) and a zero gradient took their dtype from the
    # numpy array given: torch.zeros refused numpy's float64 (a cross-backend probe)
    mod = pytest.importorskip(backend)
    be = mod if backend == "array_api_strict" else backend
    v = sg.vector("v_idz", 3)
    for e, want in ((sg.hessian(0.5 * sg.sum(v * v), v), np.eye(3)),
                    (sg.grad(sg.sum(sg.functions.step(v)), v), np.zeros(3))):
        for dt in (np.float64, np.float32):
            got = sg.compile(e, [v], backend=be)(np.ones(3, dt))
            got = got.compute() if hasattr(got, "compute") else got
            arr = np.asarray(got._array if hasattr(got, "_array") else
                             got.cpu().numpy() if hasattr(got, "cpu") else got)
            np.testing.assert_array_equal(arr, want)
            if backend != "jax":  # (jax without x64 computes in float32)
                assert arr.dtype == dt


@pytest.mark.parametrize("name", BACKENDS)
def test_numpy_inputs_whose_values_are_unused_on_every_backend(name, x64):
    """An output that reads a numpy input's dtype only (a gradient that is a constant times
    ones, a number broadcast next to it): torch and the array-API namespaces built a numpy
    view with the backend's dtype (TypeError: Cannot interpret 'torch.float64')."""
    v, s = sg.vector("v_un", 3), sg.scalar("s_un")
    C3 = sg.const(np.array([1.0, 2.0, 3.0]))
    for out, ins, vals in [(sg.grad(sg.sum(2.0 * v), v), [v], [np.ones(3)]),
                           (sg.grad(sg.mean(v), v), [v], [np.ones(3, np.float32)]),
                           (sg.broadcast_to(s, (3,)), [s, v], [2.0, np.ones(3)]),
                           # next to a constant array (torch's result_type refused the numpy
                           # array; found by review)
                           (sg.grad(sg.sum(v * C3) * s, v), [v, s], [np.ones(3), 2.0]),
                           (C3 * s, [v, s], [np.ones(3), 2.0])]:
        want = sg.compile(out, ins)(*vals)
        got = sg.compile(out, ins, backend=_backend_arg(name))(*vals)
        if name == "dask":
            got = got.compute()
        np.testing.assert_allclose(_to_numpy(got), want, rtol=1e-6)
        assert str(_to_numpy(got).dtype) == str(want.dtype) or name == "jax"


@pytest.mark.parametrize("name", BACKENDS)
def test_a_graph_of_scalars_keeps_a_float32_batch_and_gives_python_numbers(name, x64):
    """numpy and dask computed tanh(x) of a Python-float x as numpy's strong float64, which
    made the float32 samples of y float64; torch and dask returned 0-d arrays for sin(x) next
    to Python floats for x / y. Scalars computed from Python numbers alone are Python numbers
    (jax traces them: its own arrays)."""
    x, y = sg.scalar("x_wk"), sg.scalar("y_wk")
    ys = np.array([0.5, 0.6], np.float32)
    got = sg.compile([sg.tanh(x) * y, sg.tanh(x)], [x, y], backend=_backend_arg(name))(0.3, ys)
    if name == "dask":
        got = (got[0].compute(), got[1])
    assert str(_to_numpy(got[0]).dtype) == "float32"
    np.testing.assert_allclose(_to_numpy(got[0]), np.tanh(0.3) * ys, rtol=1e-6)
    f = sg.compile([sg.sin(x), x / y, sg.maximum(x, y) * sg.floor(y)], [x, y],
                   backend=_backend_arg(name))
    got = f(0.3, 1.7)
    if name != "jax":
        assert [type(t) for t in got] == [float, float, float]
    np.testing.assert_allclose([float(t) for t in got], [np.sin(0.3), 0.3 / 1.7, 1.7], rtol=1e-12)


@pytest.mark.parametrize("case", ["softmax regression", "mlp", "trace", "diagonal", "log-cosh",
                                  "sum of a δ", "diag of a constant", "mean, diag",
                                  "least squares", "divided", "product of constants"])
@pytest.mark.parametrize("name", BACKENDS)
def test_identity_regions_on_every_backend(name, case, x64):
    """Hessians and Jacobians with respect to a matrix: torch, jax (and cupy) compute the
    region below the identity with their einsum, pairwise in the planned order
    (Contraction.on); dask and array-API namespaces without einsum op by op. The values are
    numpy's."""
    from tests.test_identity_regions import CASES, VALS, _contractions

    h = CASES[case]()
    ins = [x for x in VALS if x in set(sg.variables(h))]
    ref = sg.compile(h, ins)
    want = ref(*[VALS[x] for x in ins])
    fn = sg.compile(h, ins, backend=_backend_arg(name))
    got = fn(*_inputs(name, [VALS[x] for x in ins]))
    if name == "dask":
        got = got.compute()
    np.testing.assert_allclose(_to_numpy(got), want, rtol=1e-10, atol=1e-12)
    # (the same choice as numpy's: where the estimate says a contraction pays)
    assert (".on(_xp, " in fn.source) == (name in ("torch", "jax") and bool(_contractions(ref)))


@pytest.mark.parametrize("name", [b for b in BACKENDS if b.values[0] in ("torch", "jax")])
def test_identity_regions_forced_through_einsum(name, x64, monkeypatch):
    """Every hand-picked region with the contraction forced (δs of output axes, axes a term
    is constant along, sums of δs, divisions): each library's einsum gives numpy's values."""
    import symgrad._contract as contract
    from tests.test_identity_regions import CASES, VALS

    monkeypatch.setattr(contract, "worth", lambda *a: True)
    for case, make in CASES.items():
        h = make()
        ins = [x for x in VALS if x in set(sg.variables(h))]
        want = sg.compile(h, ins)(*[VALS[x] for x in ins])
        fn = sg.compile(h, ins, backend=name)
        got = _to_numpy(fn(*_inputs(name, [VALS[x] for x in ins])))
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=case)
        assert got.dtype == want.dtype, case


@pytest.mark.parametrize("name", [b for b in BACKENDS if b.values[0] in ("torch", "jax")])
def test_einsum_plans_follow_the_number_of_samples(name, x64, monkeypatch):
    """Contraction.on keeps one plan per operand shapes: called with N samples, then M, then
    N again, each value is numpy's (the identity's size, the diagonals and the order of the
    products come from the shapes of that call)."""
    import symgrad._contract as contract

    monkeypatch.setattr(contract, "worth", lambda *a: True)
    X, Y, W = sg.matrix("X", ("N", 3)), sg.matrix("Y", ("N", 4)), sg.matrix("W", (3, 4))
    P = sg.softmax(X @ W, axis=1)
    hs = [sg.hessian(-sg.sum(Y * sg.log(P)), W), sg.jacobian(P * sg.sum(X), X)]
    rng = np.random.default_rng(3)
    for h in hs:
        ins = [x for x in (X, Y, W) if x in set(sg.variables(h))]
        ref, fn = sg.compile(h, ins), sg.compile(h, ins, backend=name)
        assert ".on(_xp, " in fn.source
        for n in (5, 2, 5, 1):
            vals = [rng.standard_normal(tuple(n if d == "N" else d for d in x.shape))
                    for x in ins]
            np.testing.assert_allclose(_to_numpy(fn(*_inputs(name, vals))), ref(*vals),
                                       rtol=1e-10, atol=1e-12, err_msg=f"N = {n}")


@pytest.mark.skipif(not _have("torch") or not _have("array_api_compat"),
                    reason="torch / array-api-compat not installed")
def test_torch_float32_data_beside_a_float64_constant_array():
    """Found by review: float32 data times a float64 constant array is float64 (numpy's
    rule), and torch then refused the float32 @ float64 product of the gradient."""
    A, X = sg.matrix("A_c64", (3, 4)), sg.matrix("X_c64", (5, 3))
    a = rng_f32((3, 4))
    x = rng_f32((5, 3))
    for c in (np.arange(1.0, 5.0), np.arange(1, 5, dtype=np.float32)):
        f = sg.sum(sg.tanh(X @ A) ** 2.0 * c)
        for out in (sg.grad(f, A), sg.hessian(f, A)):
            want = sg.compile(out, [A, X])(a, x)
            got = _to_numpy(sg.compile(out, [A, X], backend="torch")(a, x))
            assert got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not _have("torch") or not _have("array_api_compat"),
                    reason="torch / array-api-compat not installed")
def test_torch_float64_data_beside_a_float32_constant_array():
    """The other way round (found by review): the constant is widened to the inputs' dtype
    before torch's matrix product, as numpy promotes it."""
    A, x = sg.matrix("A_c32", (4, 4)), sg.vector("x_c32", 4)
    C = np.arange(16, dtype=np.float32).reshape(4, 4) / 16
    for out, ins, vals in [(A @ np.arange(1, 5, dtype=np.float32), [A], [np.ones((4, 4))]),
                           (sg.grad(sg.sum(sg.tanh(C @ x)), x), [x], [np.ones(4)]),
                           (C @ x, [x], [np.ones(4, np.float32)])]:
        want = sg.compile(out, ins)(*vals)
        got = _to_numpy(sg.compile(out, ins, backend="torch")(*vals))
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-6)


def rng_f32(shape):
    return np.random.default_rng(5).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("name", [b for b in BACKENDS if b.values[0] in ("torch", "jax")])
def test_a_region_divided_by_a_scalar_input_of_zero(name, x64):
    """Found by review: torch's contraction took 1.0 / 0.0 of a Python number
    (ZeroDivisionError); numpy's gives inf and nan, as op by op."""
    X, W, c = sg.matrix("X_dz", ("N", 4)), sg.matrix("W_dz", (4, 3)), sg.scalar("c_dz")
    H = sg.hessian(sg.sum(sg.tanh(X @ W / c)), W)
    x, w = np.ones((50, 4)), np.ones((4, 3))
    with np.errstate(all="ignore"):
        want = sg.compile(H, [X, W, c])(x, w, 0.0)
        got = _to_numpy(sg.compile(H, [X, W, c], backend=name)(x, w, 0.0))
    assert got.shape == want.shape and np.isnan(got).all() and np.isnan(want).all()


@pytest.mark.parametrize("name", BACKENDS)
def test_an_unused_vector_input_leaves_a_graph_of_scalars_one(name, x64):
    """Found by review: a listed, unused vector made s * 2 a tensor graph, whose jax code
    refused samples for s (with a message that said to use backend='jax')."""
    v, s = sg.vector("v_un2", 3), sg.scalar("s_un2")
    got = sg.compile(s * 2.0, [v, s], backend=_backend_arg(name))(np.zeros(3),
                                                                   np.array([1.0, 2.0]))
    if name == "dask":
        got = got.compute()
    np.testing.assert_allclose(_to_numpy(got), [2.0, 4.0])


@pytest.mark.parametrize("name", BACKENDS)
def test_a_0d_array_for_a_scalar_input_is_taken_as_the_numpy_number(name, x64):
    """Found by review: torch made Python floats (float64) of a 0-d float32 array given for
    a scalar input, float32 tensors of np.float32; dask numpy scalars of one, dask arrays
    of the other. numpy itself makes no difference between the two."""
    x, v = sg.scalar("x_0d"), sg.vector("v_0d", 2)
    for outs, ins, rest in [([x * 2.0, sg.tanh(x)], [x], ()),
                            ([x * v, sg.tanh(x) * v], [x, v], (np.ones(2, np.float32),))]:
        f = sg.compile(outs, ins, backend=_backend_arg(name))
        for zero_d, number in [(np.array(3.0, np.float32), np.float32(3.0)),
                               (np.array(2), np.int64(2)), (np.array(True), np.bool_(True))]:
            a, b = f(zero_d, *rest), f(number, *rest)
            assert [type(t) for t in a] == [type(t) for t in b], zero_d
            for s, t in zip(a, b):
                np.testing.assert_array_equal(_to_numpy(s), _to_numpy(t))
                assert str(_to_numpy(s).dtype) == str(_to_numpy(t).dtype), zero_d


@pytest.mark.skipif(not _have("jax") or not _have("torch"), reason="jax / torch not installed")
def test_jax_names_an_input_of_another_library():
    # (found by review: jit's "Error interpreting argument ... as an abstract array")
    import torch

    A, v = sg.matrix("A_jt", (2, 3)), sg.vector("v_jt", 3)
    f = sg.compile(A @ v, [A, v], backend="jax")
    with pytest.raises(TypeError, match=r"^input A_jt: got a torch Tensor; the jax backend"):
        f(torch.ones((2, 3), dtype=torch.float64), np.ones(3))
    np.testing.assert_allclose(np.asarray(f(np.ones((2, 3)), np.ones(3))), [3.0, 3.0])


def test_torch_reads_numpy_arrays_with_some_negative_strides():
    """A numpy array with one negative stride (M[::-1]) is copied before torch reads it, not
    only one whose strides are all negative (found by mutation testing)."""
    pytest.importorskip("torch")
    A = sg.matrix("A_ns", (2, 2))
    f = sg.compile(sg.sum(A * A), [A], backend="torch")
    M = np.array([[1.0, 2.0], [3.0, 4.0]])[::-1]
    assert M.strides[0] < 0 < M.strides[1]
    assert float(f(M)) == 30.0
    assert float(f(M[::-1, ::-1])) == 30.0  # (every stride negative)


def test_torch_float32_numpy_samples_times_a_numpy_float64_are_float64():
    """float32 numpy samples next to np.float64(3): float64 on torch, as numpy computes it
    (found by mutation testing: the samples kept float32 there)."""
    torch = pytest.importorskip("torch")
    x, y = sg.scalars("x_t5 y_t5")
    s = np.array([1.0, 2.0], np.float32)
    assert sg.compile(x * y, [x, y])(s, np.float64(3.0)).dtype == np.float64
    got = sg.compile(x * y, [x, y], backend="torch")(s, np.float64(3.0))
    assert got.dtype == torch.float64 and got.tolist() == [3.0, 6.0]


def test_backend_names_are_read_in_any_case():
    """backend="Torch", "NumPy": the library's name in any case (found by mutation testing:
    case-sensitive names passed)."""
    v = sg.vector("v_case", 3)
    f = sg.compile(sg.exp(v), [v], backend="NumPy")
    assert type(f(np.zeros(3))) is np.ndarray
    np.testing.assert_array_equal(f(np.zeros(3)), np.ones(3))
    if _have("torch"):
        import torch

        got = sg.compile(sg.exp(v), [v], backend="Torch")(np.zeros(3))
        assert isinstance(got, torch.Tensor) and got.tolist() == [1.0, 1.0, 1.0]


def test_the_numba_compiler_is_named_in_any_case():
    """backend="Numba" is numba's compiler, as "numba" is (found by mutation testing: it was
    refused as "a compiler, not an array namespace")."""
    pytest.importorskip("numba")
    v = sg.vector("v_nbc", 3)
    f = sg.compile(sg.exp(v), [v], backend="Numba")
    assert hasattr(f, "kernels") and not hasattr(sg.compile(sg.exp(v), [v]), "kernels")
    np.testing.assert_array_equal(f(np.zeros(3)), np.ones(3))


def test_a_device_on_a_backend_other_than_torch_is_refused():
    """Only torch takes a device: "numpy:cuda" and "dask:gpu" are refused by name (found by
    mutation testing: they compiled, the device dropped)."""
    x = sg.scalar("x_dev")
    for be in ("numpy:cuda", "dask:gpu"):
        with pytest.raises(ValueError, match=rf"^backend '{be}': only torch takes a device "
                                             r"\(torch:cuda\)$"):
            sg.compile(x * 2, [x], backend=be)


def test_a_module_without_float64_is_no_array_namespace():
    """A module with asarray but no float64 is refused as it is given (found by mutation
    testing: one lacking both was needed, and this one failed later with AttributeError)."""
    import types

    mod = types.ModuleType("halfns_nf")
    mod.asarray = np.asarray
    x = sg.scalar("x_hn")
    with pytest.raises(TypeError, match=r"^backend <module 'halfns_nf'> is not an array "
                                        r"namespace \(it has no asarray or float64\)$"):
        sg.compile(x * 2, [x], backend=mod)


def test_object_arrays_of_numbers_are_read_as_float64():
    """Ints beyond int64 and Decimals in an object array: float64, as a scalar input's numbers
    (found by mutation testing: float32, and a Decimal refused, passed)."""
    from decimal import Decimal

    v = sg.vector("v_obj", 2)
    f = sg.compile(v * 1.0, [v])
    got = f([2**64 + 1, 3])
    assert got.dtype == np.float64 and got.tolist() == [2.0**64, 3.0]
    got = sg.compile(v * 2.0, [v])(np.array([Decimal("1.5"), Decimal("2")], dtype=object))
    assert got.dtype == np.float64 and got.tolist() == [3.0, 4.0]


def test_jax_to_int_of_nan_raises_a_value_error(x64):
    """to_int of nan under jax.jit: checked there, raised as the ValueError numpy's backend
    gives (found by mutation testing: unchecked, jax gave some integer; or an IndexError)."""
    pytest.importorskip("jax")
    v = sg.vector("v_tij", 2)
    f = sg.compile(sg.to_int(v) * 1.0, [v], backend="jax")
    np.testing.assert_array_equal(np.asarray(f(np.array([2.5, 1.0]))), [2.0, 1.0])
    with pytest.raises(ValueError, match=r"^to_int: cannot convert a NaN or infinite value "
                                         r"to an integer"):
        f(np.array([np.nan, 1.0]))


def test_jax_reads_an_unused_input_that_names_a_size(x64):
    """An unused vector whose size n the used w shares is read as an input on jax (a list
    too), so n is checked, as on numpy (found by mutation testing: ignored, the list went to
    jit raw and was refused)."""
    pytest.importorskip("jax")
    x, v, w = sg.scalar("x_us"), sg.vector("v_us", "n"), sg.vector("w_us", "n")
    f = sg.compile(x * 2.0 + sg.sum(w), [x, v, w], backend="jax")
    assert float(f(1.0, [5.0, 6.0], np.ones(2))) == 4.0
    with pytest.raises(sg.ShapeError, match=r"^input w_us: shape \(2,\) does not fit \(n,\): "
                                            r"size n is 3, fixed by input v_us"):
        f(1.0, [5.0, 6.0, 7.0], np.ones(2))
