"""The fused numba backend: same values as numpy, elementwise chains in one loop, sums inside
the loop, the parallel path, numba's on-disk cache across processes, and the exp it uses."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import symgrad as sg
from tests.backend_cases import CASES, mlp_graph, mlp_values, numpy_reference

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                                reason="numba not installed (pip install 'symgrad[numba]')")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("symgrad-cache"))
    old = os.environ.get("SYMGRAD_CACHE_DIR")
    os.environ["SYMGRAD_CACHE_DIR"] = d
    yield d
    if old is None:
        os.environ.pop("SYMGRAD_CACHE_DIR", None)
    else:
        os.environ["SYMGRAD_CACHE_DIR"] = old


def _close(got, want, rtol=1e-10, atol=1e-12):
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        g = np.asarray(g)
        assert g.shape == w.shape, k
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"output {k}")


def _close32(got, want):
    """Within float32 rounding (values of order 1, so an absolute 1e-6 where terms cancel)."""
    _close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_matches_numpy(case):
    outs, ins, vals = CASES[case]()
    fn = sg.compile(outs, ins, backend="numba")
    _close(fn(*vals), numpy_reference(outs, ins, vals))


def lecture_mlp():
    u, c, w, b = sg.scalars("u c w b")
    x, y = sg.vector("x", "N"), sg.vector("y", "N")
    mu = sg.sigmoid(w * sg.sigmoid(u * x + c) + b)
    loss = sg.mean(sg.bce(mu, y))
    return loss, [u, c, w, b, x, y]


def test_lecture_gradient_is_one_loop_with_its_sums_inside():
    loss, ins = lecture_mlp()
    fn = sg.compile(sg.grad(loss, ins[:4]), ins, backend="numba")
    assert len(fn.kernels) == 2  # one kernel, in its serial and parallel form
    src = fn.kernel_source
    # the four sums accumulate in the loop; no per-sample array is written out
    assert src.count(" += ") == 2 * 4 and "o0[" not in src
    assert "for " not in fn.source  # the driver has no Python loop
    rng = np.random.default_rng(3)
    vals = [0.7, -0.3, 1.3, 0.2, rng.standard_normal(1000), (rng.random(1000) < 0.5) * 1.0]
    _close(fn(*vals), numpy_reference(sg.grad(loss, ins[:4]), ins, vals))


def test_parallel_kernels_match(monkeypatch):
    from symgrad import fused

    monkeypatch.setattr(fused, "PARALLEL_MIN", 1)  # every loop takes the parallel form
    for case in ("mlp", "reductions", "elementwise"):
        outs, ins, vals = CASES[case]()
        fn = sg.compile(outs, ins, backend="numba")
        assert "_prange" in fn.kernel_source
        _close(fn(*vals), numpy_reference(outs, ins, vals))
    outs, ins = mlp_graph()
    vals = mlp_values(4, 3, 1001)  # chunks of unequal sizes
    _close(sg.compile(outs, ins, backend="numba")(*vals), numpy_reference(outs, ins, vals))


def test_extreme_values_stay_finite_like_numpy():
    z, y = sg.vector("z", 6), sg.vector("y", 6)
    outs = [sg.sigmoid(z), sg.softplus(z), sg.bce(sg.sigmoid(z), y), sg.exp(z) / sg.exp(2.0 * z),
            sg.grad(sg.sum(sg.bce(sg.sigmoid(z), y)), z)]
    vals = [np.array([-1e4, -800.0, -30.0, 0.0, 30.0, 1e4]), np.array([0, 1, 0, 1, 0, 1.0])]
    got = sg.compile(outs, [z, y], backend="numba")(*vals)
    with np.errstate(all="ignore"):
        want = numpy_reference(outs, [z, y], vals)
    _close(got, want)  # inf / inf is NaN in both (assert_allclose: NaN equals NaN)
    assert np.isnan(got[3][-1]) and np.all(np.isfinite(got[2])) and np.all(np.isfinite(got[4]))


def test_maximum_and_minimum_keep_a_nan_on_either_side_inside_a_kernel():
    """numpy's maximum and minimum propagate nan from either operand; a kernel's comparison
    alone drops it in the first (mutation testing found nothing checked this)."""
    x, y = sg.vector("x_mn", 4), sg.vector("y_mn", 4)
    outs = [sg.exp(sg.maximum(x, y)) * 2.0 + y, sg.exp(sg.minimum(x, y)) * 2.0 + y,
            sg.sum(sg.maximum(x, y) * y)]
    nan = np.nan
    for a, b in [(np.array([nan, 1.0, 2.0, 0.0]), np.array([1.0, 0.5, 3.0, 0.0])),
                 (np.array([1.0, 1.0, 2.0, 0.0]), np.array([nan, 0.5, nan, 0.0]))]:
        got = sg.compile(outs, [x, y], backend="numba")(a, b)
        with np.errstate(invalid="ignore"):
            want = numpy_reference(outs, [x, y], [a, b])
        _close(got, want)
        assert np.isnan(got[0][0]) or np.isnan(got[0][2])


def test_fused_exp_is_within_one_ulp():
    from symgrad.fused_math import exp

    z = np.concatenate([np.linspace(-750.0, 720.0, 20001), [np.inf, -np.inf, 0.0, 709.78,
                                                            -745.1, -708.4, 1e-300]])
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        want = np.exp(z)
        got = np.array([exp(v) for v in z])
        err = np.abs(got - want)  # inf - inf is NaN: those compare equal below
    assert np.all((got == want) | (err <= np.spacing(want)))
    assert np.isnan(exp(float("nan")))


def test_shape_errors_name_the_input():
    outs, ins = mlp_graph()
    U, c, w, b, X, y = mlp_values(4, 3, 10)
    fn = sg.compile(outs, ins, backend="numba")
    with pytest.raises(sg.ShapeError, match="input y"):
        fn(U, c, w, b, X, y[:-1])


def test_a_guarded_scalar_graph_is_still_one_loop():
    # 0*sum(u + w3) is folded away, its size check kept in a guard on top (see ops.Guard):
    # the guard computes nothing and stays in the loop
    x, y = sg.scalars("x_fg y_fg")
    u, w3 = sg.vector("u_fg", "n"), sg.vector("w3_fg", 3)
    e = sg.exp(x) * y + sg.sin(x * y) + 0 * sg.sum(u + w3)
    assert e.op.name == "guard"
    fn = sg.compile(e, [x, y], backend="numba")
    xs = np.linspace(-1.0, 1.0, 50)
    _close(fn(xs, 0.5), np.exp(xs) * 0.5 + np.sin(xs * 0.5))
    assert len(fn.kernels) == 2


def test_scalar_graph_with_per_sample_arrays_is_one_loop(monkeypatch):
    from symgrad import fused

    u, c, w, b, x, y = sg.scalars("u c w b x y")
    mu = sg.sigmoid(w * sg.sigmoid(u * x + c) + b)
    loss = sg.bce(mu, y)
    outs = [loss, *sg.grad(loss, [u, c, w, b]), x, sg.const(2.0)]
    ins = [u, c, w, b, x, y]
    fn = sg.compile(outs, ins, backend="numba")
    rng = np.random.default_rng(5)
    xs, ys = rng.standard_normal(40), (rng.random(40) < 0.5) * 1.0
    for vals in ([0.7, -0.3, 1.3, 0.2, xs, ys],  # per-sample data
                 [np.linspace(0, 1, 3)[:, None], -0.3, 1.3, 0.2, xs[:4], 1.0]):  # broadcast
        _close(fn(*vals), numpy_reference(outs, ins, vals))
    assert len(fn.kernels) == 4  # one kernel (serial and parallel) per pattern of arrays
    floats = [0.7, -0.3, 1.3, 0.2, 0.5, 1.0]  # Python numbers: the numpy backend's math code
    assert fn(*floats) == sg.compile(outs, ins)(*floats)
    monkeypatch.setattr(fused, "PARALLEL_MIN", 1)
    _close(fn(0.7, -0.3, 1.3, 0.2, xs, ys), numpy_reference(outs, ins,
                                                             [0.7, -0.3, 1.3, 0.2, xs, ys]))


def test_a_second_process_loads_the_kernels_from_the_cache(cache_dir, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "import symgrad as sg\n"
        "from tests.backend_cases import mlp_graph, mlp_values\n"
        "outs, ins = mlp_graph()\n"
        "fn = sg.compile(outs, ins, backend='numba')\n"
        "fn(*mlp_values(5, 3, 16))\n"
        "ks = [k for k in fn.kernels if k.signatures]\n"
        "print(json.dumps({'hits': sum(sum(k.stats.cache_hits.values()) for k in ks),\n"
        "                  'misses': sum(sum(k.stats.cache_misses.values()) for k in ks),\n"
        "                  'n': len(ks)}))\n")
    env = dict(os.environ, SYMGRAD_CACHE_DIR=cache_dir)
    runs = [json.loads(subprocess.run([sys.executable, str(script)], env=env, check=True,
                                      capture_output=True, text=True).stdout.splitlines()[-1])
            for _ in range(2)]
    assert runs[1]["n"] >= 1
    assert runs[1]["hits"] == runs[1]["n"] and runs[1]["misses"] == 0


def _random_graph(seed: int):
    """A random DAG over a matrix, vectors and a scalar: elementwise ops with broadcasting,
    shared subexpressions, and sums and matrix products between them (which the planner must
    keep outside the loops without making a cycle)."""
    rng = np.random.default_rng(seed)
    A = sg.matrix("A", (5, 3))  # known sizes: shapes that do not fit fail as they are built
    u, v = sg.vector("u", 3), sg.vector("v", 5)
    s = sg.scalar("s")
    pool = [A, u, v, s, A * 0.5, sg.reshape(v, (5, 1))]
    unary = [sg.exp, sg.tanh, sg.sigmoid, sg.softplus, sg.relu, sg.abs, sg.sin,
             lambda e: e * e, lambda e: -e]
    binary = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
              lambda a, b: a / (1.5 + sg.abs(b)), sg.maximum, sg.minimum]
    for _ in range(25):
        k = rng.integers(10)
        try:
            if k < 4:
                e = unary[rng.integers(len(unary))](pool[rng.integers(len(pool))])
            elif k < 8:
                a, b = (pool[i] for i in rng.integers(len(pool), size=2))
                e = binary[rng.integers(len(binary))](a, b)
            else:
                a = pool[rng.integers(len(pool))]
                if a.shape == (5,) and k == 9:
                    e = sg.outer(a, pool[rng.choice([i for i, p in enumerate(pool)
                                                     if p.shape == (3,)])])
                elif a.ndim == 2 and k == 8:
                    e = a @ u  # a product between two elementwise chains
                elif a.ndim >= 1:
                    e = sg.sum(a, axis=int(rng.integers(a.ndim)), keepdims=bool(k == 9))
                else:
                    continue
        except sg.ShapeError:
            continue
        pool.append(e)
    mats = [e for e in pool[6:] if e.ndim == 2] or [A]
    total = sg.sum(mats[-1]) + sg.sum(pool[-1]) + sg.sum(pool[-2])
    outs = pool[-4:] + sg.grad(total, [A, u, v, s])
    vals = [rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal(5), 0.3]
    return outs, [A, u, v, s], vals


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_match_numpy(seed, monkeypatch):
    from symgrad import fused

    outs, ins, vals = _random_graph(seed)
    want = numpy_reference(outs, ins, vals)
    _close(sg.compile(outs, ins, backend="numba")(*vals), want, rtol=1e-9)
    if seed % 2:  # the parallel form too, on chunks of one row
        monkeypatch.setattr(fused, "PARALLEL_MIN", 1)
        _close(sg.compile(outs, ins, backend="numba")(*vals), want, rtol=1e-9)


# ------------------------------------------------------------------ dtypes
def _dtypes(res) -> list:
    return [np.asarray(r).dtype for r in (res if isinstance(res, tuple) else (res,))]


def _want_dtypes(outs, ins, vals, ints=False) -> list:
    """The numpy backend's dtypes; with ``ints`` (integer inputs), integer ones made float64:
    the fused loops never write an integer buffer, which would truncate a float result."""
    return [np.dtype(np.float64) if ints and d.kind != "f" else d
            for d in _dtypes(sg.compile(outs, ins)(*vals))]


def _f32(vals) -> list:
    return [v.astype(np.float32) if isinstance(v, np.ndarray) else v for v in vals]


def _dtype_graph():
    """Fused loops with outputs, sums over all axes and over the first axis, a matrix product
    between loops, and scalar work on the scalar input alone."""
    X, y, w = sg.matrix("X", ("N", 3)), sg.vector("y", "N"), sg.vector("w", 3)
    s = sg.scalar("s")
    z = sg.tanh(X @ w * s + 0.5)
    loss = sg.sum((z - y) ** 2) + sg.sin(s) * sg.sum(y) + 0.1 * s * s
    outs = [loss, *sg.grad(loss, [w, s]), sg.exp(X * s) + 1.0, sg.sum(sg.exp(X * s), 0)]
    rng = np.random.default_rng(11)
    return outs, [X, y, w, s], [rng.standard_normal((50, 3)), rng.standard_normal(50),
                                rng.standard_normal(3), 0.7]


@pytest.mark.parametrize("combo", ["float32", "float64", "float32 + float64", "int arrays",
                                   "float32, np.float32 scalar", "float32, np.float64 scalar",
                                   "float32, 0-d float64 scalar", "float32, unpickled"])
def test_result_dtypes_follow_the_numpy_backend(combo):
    outs, ins, (X, y, w, s) = _dtype_graph()
    vals = {"float32": [X, y, w, s],  # Python float s: a weak scalar
            "float64": [X, y, w, s],
            "float32 + float64": [X.astype(np.float32), y, w.astype(np.float32), s],
            "int arrays": [np.round(X * 3).astype(int), (y > 0).astype(np.int32),
                           np.array([1, -2, 1]), s],
            "float32, np.float32 scalar": [X, y, w, np.float32(s)],
            "float32, np.float64 scalar": [X, y, w, np.float64(s)],
            "float32, 0-d float64 scalar": [X, y, w, np.array(s)],
            "float32, unpickled": [X, y, w, s]}[combo]
    if combo.startswith("float32,") or combo == "float32":
        vals = _f32(vals[:3]) + vals[3:]
    if combo == "float32, unpickled":  # each array's dtype is an object of its own
        vals = pickle.loads(pickle.dumps(vals))
        assert vals[0].dtype is not np.dtype(np.float32)
    fn = sg.compile(outs, ins, backend="numba")
    got, want = _dtypes(fn(*vals)), _want_dtypes(outs, ins, vals, ints=combo == "int arrays")
    if combo == "float32 + float64":
        # one dtype per call: the last two outputs, of the float32 X alone, are float64 here
        # (numpy: float32); the others use the float64 y too
        assert got == [np.dtype(np.float64)] * 5 and want[3:] == [np.dtype(np.float32)] * 2
        got, want = got[:3], want[:3]
    assert got == want
    if combo in ("float32", "float32, unpickled"):
        assert set(got) == {np.dtype(np.float32)}
    if combo == "int arrays":
        assert set(got) == {np.dtype(np.float64)}


@pytest.mark.parametrize("combo", ["float16", "float16 + float32", "float16 scalar"])
def test_float16_inputs_are_read_as_a_dtype_numba_has(combo):
    """numba has no float16: such arrays (and numpy scalars) go in as float64, or float32 next
    to float32 arrays, as integer arrays go in as float64; the values are numpy's."""
    outs, ins, (X, y, w, s) = _dtype_graph()
    vals = {"float16": [X.astype(np.float16), y.astype(np.float16), w.astype(np.float16), s],
            "float16 + float32": [X.astype(np.float16), y.astype(np.float32),
                                  w.astype(np.float32), s],
            "float16 scalar": [X, y, w, np.float16(s)]}[combo]
    got = sg.compile(outs, ins, backend="numba")(*vals)
    want_dt = np.dtype(np.float32) if combo == "float16 + float32" else np.dtype(np.float64)
    assert set(_dtypes(got)) == {want_dt}
    exact = numpy_reference(outs, ins, [np.asarray(v, dtype=np.float64) if hasattr(v, "dtype")
                                        else v for v in vals])
    _close32(got, exact)


@pytest.mark.parametrize("case", sorted(CASES))
def test_float32_and_float64_calls_of_one_function(case, monkeypatch):
    """One compiled function, called with float32 and with float64 arrays: float32 in (not
    copied up: the kernels are compiled for float32 arrays), the numpy backend's dtypes out,
    values within float32 rounding of the exact ones; float64 as before."""
    from symgrad import fused

    outs, ins, vals = CASES[case]()
    fn = sg.compile(outs, ins, backend="numba")
    v32 = _f32(vals)
    exact = numpy_reference(outs, ins, [v.astype(np.float64) if isinstance(v, np.ndarray)
                                        else v for v in v32])
    got = fn(*v32)
    assert _dtypes(got) == _want_dtypes(outs, ins, v32)
    _close32(got, exact)
    if fn.kernels:
        sigs = [str(sig) for k in fn.kernels for sig in k.signatures]
        assert any("float32" in sig for sig in sigs)
    got = fn(*vals)
    assert _dtypes(got) == _want_dtypes(outs, ins, vals)
    _close(got, numpy_reference(outs, ins, vals), rtol=1e-12)
    if case in ("mlp", "reductions"):  # the parallel form: partial sums added in float64
        monkeypatch.setattr(fused, "PARALLEL_MIN", 1)
        fn = sg.compile(outs, ins, backend="numba")
        got = fn(*v32)
        assert _dtypes(got) == _want_dtypes(outs, ins, v32)
        _close32(got, exact)


def test_parallel_form_of_one_chunk_keeps_float32(monkeypatch):
    from symgrad import fused

    monkeypatch.setattr(fused, "PARALLEL_MIN", 1)
    M = sg.matrix("M", (1, "n"))  # one row: the parallel form runs one chunk
    outs = [sg.sum(sg.exp(M)), sg.sum(sg.exp(M) * M, 1), sg.sum(sg.tanh(M) * M, 0)]
    vals = [np.linspace(-1, 1, 9, dtype=np.float32)[None, :]]
    got = sg.compile(outs, [M], backend="numba")(*vals)
    assert _dtypes(got) == [np.dtype(np.float32)] * 3
    _close32(got, numpy_reference(outs, [M], [vals[0].astype(np.float64)]))


def test_float32_example_from_the_docs():
    x, w = sg.vector("x", "n"), sg.scalar("w")
    L = sg.sum(sg.tanh(w * x) ** 2)
    f = sg.compile([L, sg.grad(L, w)], [w, x], backend="numba")
    xs = np.linspace(0, 1, 1000, dtype=np.float32)
    got = f(0.5, xs)
    assert [type(v) for v in got] == [np.float32, np.float32]
    _close32(got, numpy_reference([L, sg.grad(L, w)], [w, x], [0.5, xs.astype(np.float64)]))
    assert _dtypes(f(0.5, xs.astype(np.float64))) == [np.dtype(np.float64)] * 2


def test_scalar_math_falls_back_to_numpy_forms():
    """Scalar nodes of scalars are Python numbers in the driver; where Python math raises,
    the numpy forms give nan or inf, as with the numpy backend."""
    x, w = sg.vector("x", "n"), sg.scalar("w")
    outs = [sg.sum(sg.exp(w * x)) + sg.log(w), sg.exp(w) * sg.sum(x)]
    fn = sg.compile(outs, [w, x], backend="numba")
    xs = np.linspace(0, 1, 7, dtype=np.float32)
    for wv in (0.5, -0.5, 800.0):
        with np.errstate(all="ignore"):
            got, want = fn(wv, xs), sg.compile(outs, [w, x])(wv, xs)
        assert _dtypes(got) == _dtypes(want)
        _close(got, [np.asarray(v) for v in want], rtol=1e-6)


@pytest.mark.parametrize("combo", ["float32", "np.float32 scalar", "float32 + float64",
                                   "int", "Python float, float32"])
def test_per_sample_outputs_take_the_numpy_backend_dtype(combo):
    a, b = sg.scalars("a b")
    outs = [sg.tanh(a * b), a * 2.0, sg.exp(b) + 1.0]
    ones = np.linspace(0.5, 1.5, 5)
    vals = {"float32": [ones.astype(np.float32), ones.astype(np.float32)],
            "np.float32 scalar": [np.float32(0.5), ones.astype(np.float32)],
            "float32 + float64": [ones.astype(np.float32)[:, None], ones],
            "int": [0.5, np.arange(5)],
            "Python float, float32": [0.5, ones.astype(np.float32)]}[combo]
    fn = sg.compile(outs, [a, b], backend="numba")
    got = fn(*vals)
    assert _dtypes(got) == _want_dtypes(outs, [a, b], vals, ints=combo == "int")
    exact = numpy_reference(outs, [a, b], [np.asarray(v, np.float64) for v in vals])
    if np.dtype(np.float32) in _dtypes(got):
        _close32(got, exact)
    else:
        _close(got, exact, rtol=1e-12)
    g = sg.compile(sg.tanh(a * b), [a, b], backend="numba")
    if combo == "np.float32 scalar":
        assert g(*vals).dtype == np.float32


def test_per_sample_outputs_of_numbers_alone_are_python_floats():
    """In a per-sample call, an output that depends on no array of samples came back as a
    numpy float64 from the numba loop, where the numpy version gives a Python float."""
    x, w = sg.scalars("x_pf w_pf")
    outs = [sg.tanh(x * w), w * 2.0, sg.const(3.0)]
    for backend in ("numpy", "numba"):
        got = sg.compile(outs, [x, w], backend=backend)(np.ones(3), 0.5)
        assert [type(r) for r in got] == [np.ndarray, float, float], backend
        got = sg.compile(outs, [x, w], backend=backend)(np.ones(3, np.float32), np.float32(0.5))
        assert type(got[1]) is np.float32, backend


def test_kernel_modules_leave_with_the_last_function_that_uses_them():
    # a constant's value is part of a kernel's source: a loop that changed one (a temperature)
    # made a module per step, each kept in sys.modules for good (a probe of long runs)
    import gc

    x = sg.vector("x_km", "n")

    def kernels_now():
        return {k for k in sys.modules if k.startswith("symgrad_kernels_")}

    before = kernels_now()
    L = sg.sum(sg.softplus(x / 1.2345))
    f = sg.compile([L, sg.grad(L, x)], [x], backend="numba")
    g = sg.compile([L, sg.grad(L, x)], [x], backend="numba")  # the same kernels
    ref = f(np.linspace(-1.0, 1.0, 50))
    mine = kernels_now() - before
    assert len(mine) == 1
    del f
    gc.collect()
    assert kernels_now() - before == mine  # g still uses it
    # a new dtype compiles (or reads numba's cache back, which imports the module by name)
    got32 = g(np.linspace(-1.0, 1.0, 50, dtype=np.float32))
    np.testing.assert_allclose(got32[0], ref[0], rtol=1e-5)
    del g
    gc.collect()
    assert not (kernels_now() - before)
    h = sg.compile([L, sg.grad(L, x)], [x], backend="numba")  # loaded again, same values
    np.testing.assert_allclose(h(np.linspace(-1.0, 1.0, 50))[1], ref[1], rtol=1e-15)
    del h
    gc.collect()
    # per-sample kernels (scalar inputs given arrays) are held by their function alike
    a, b = sg.scalars("a_km b_km")
    p = sg.compile(sg.tanh(a * 0.777) + b, [a, b], backend="numba")
    np.testing.assert_allclose(p(np.ones(4), 1.0), np.tanh(0.777) + 1.0)
    assert kernels_now() - before
    del p
    gc.collect()
    assert not (kernels_now() - before)


def test_outputs_that_use_only_the_inputs_shapes_keep_float32():
    # an identity or a constant Hessian whose kernels read no input's values wrote float64
    # for float32 data (the numpy backend lends the inputs' dtype; a cross-backend probe)
    v, A = sg.vector("v_sh", 3), sg.matrix("A_sh", ("k", "n"))
    J = sg.jacobian(sg.maximum(v, v), v)
    m = sg.mean(A, axis=0)
    H = sg.hessian(sg.dot(m, m), A)
    for e, ins, arg in ((J, [v], np.ones(3, np.float32)), (H, [A], np.ones((2, 3), np.float32))):
        got = sg.compile(e, ins, backend="numba")(arg)
        want = sg.compile(e, ins)(arg)
        assert got.dtype == want.dtype == np.float32
        np.testing.assert_allclose(got, want)
        assert sg.compile(e, ins, backend="numba")(arg.astype(np.float64)).dtype == np.float64


def test_a_float16_constant_array_in_a_reduction():
    # found by review: numba has no float16, and the constant went into the kernel as it was
    # (NotImplementedError: float16 from numba's data model)
    x = sg.vector("x_f16c", 3)
    c16 = np.array([1.0, 2.0, 3.0], dtype=np.float16)
    for e in (sg.sum(c16 * x), c16 * x):
        for xs in (np.ones(3), np.ones(3, np.float32)):
            got = sg.compile(e, [x], backend="numba")(xs)
            want = sg.compile(e, [x])(xs)
            assert np.asarray(got).dtype == np.asarray(want).dtype
            np.testing.assert_allclose(got, want)


def test_parallel_sums_of_float32_accumulate_in_float64():
    """The parallel form's partial sums are merged in float64, as the serial form adds
    (mutation testing: float32 partials passed): 1e8 + 1 - 1e8 is 1, not 0."""
    X, Y = sg.matrix("X_pf", (2, "n")), sg.matrix("Y_pf", (2, "n"))
    f = sg.compile(sg.sum(X * Y), [X, Y], backend="numba")
    x = np.zeros((2, 2**17), np.float32)  # 2**18 entries: the parallel form
    x[0, 0], x[0, 1], x[1, 0] = 1e8, 1.0, -1e8
    assert f(x, np.ones_like(x)) == 1.0


def test_a_float32_numpy_number_beside_float64_data_gives_float64():
    # (mutation testing: dropping a numpy scalar's dtype from the call's dtype passed)
    v, s = sg.vector("v_fs", 3), sg.scalar("s_fs")
    out = sg.exp(v) * s + v
    got = sg.compile(out, [v, s], backend="numba")(np.ones(3), np.float32(2.0))
    want = sg.compile(out, [v, s])(np.ones(3), np.float32(2.0))
    assert got.dtype == want.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_damaged_kernel_file_in_the_cache_is_written_again(cache_dir):
    # a truncated file (a full disk, an editor) was run as it was: AttributeError, no k0_s
    import glob

    from symgrad import _numba_kernels as nk

    v = sg.vector("v_damaged", "n")
    want = 4 * np.exp(1.25)
    fn = sg.compile(sg.sum(sg.exp(v * 1.25)), [v], backend="numba")
    assert fn(np.ones(4)) == pytest.approx(want)
    paths = [p for p in glob.glob(os.path.join(cache_dir, "numba", "*.py"))
             if "1.25" in open(p).read()]
    assert len(paths) == 1
    for bad in ("", "garbage(", "import numba as _nb\n"):
        with open(paths[0], "w") as f:
            f.write(bad)
        for name in [m for m in sys.modules if m.startswith("symgrad_kernels_")]:
            sys.modules.pop(name)  # as in a new process
        nk._USERS.clear()
        fn = sg.compile(sg.sum(sg.exp(v * 1.25)), [v], backend="numba")
        assert fn(np.ones(4)) == pytest.approx(want)
        assert "1.25" in open(paths[0]).read()


def test_kernel_files_are_named_by_fused_math_too(monkeypatch):
    # numba's cache of a kernel module does not see a change in the fused_math functions it
    # inlines: after an upgrade, the old machine code ran (exp(0) = 1 where the new gave 2)
    import hashlib

    from symgrad import _numba_kernels as nk

    with open(os.path.join(ROOT, "symgrad", "fused_math.py"), "rb") as f:
        assert nk._fused_math_digest() == hashlib.sha256(f.read()).hexdigest()[:20]
    source = nk.HEADER + "\n"
    first = nk.load_module(source)
    assert nk._fused_math_digest() in open(first.__file__).read()
    monkeypatch.setattr(nk, "_fused_math_digest", lambda: "f" * 20)  # fused_math edited
    second = nk.load_module(source)
    assert second.__name__ != first.__name__
    assert "f" * 20 in open(second.__file__).read()


def test_a_numpy_scalar_input_is_strong_through_functions_as_on_numpy():
    # sin(s) * v was float32 for s = np.float64(0.5) and float32 v (math's weak float), and
    # exp(s) * v at s = 1000 (Python's math overflows: the numpy forms) raised a NameError
    v, s = sg.vector("v_sfn", 3), sg.scalar("s_sfn")
    v32 = np.ones(3, np.float32)
    for e in (sg.sin(s) * v, (s + 1) * v, sg.exp(v * sg.sin(s)), sg.sum(sg.exp(v * sg.sin(s)))):
        f, g = sg.compile(e, [v, s], backend="numba"), sg.compile(e, [v, s])
        for sv in (np.float64(0.5), 0.5):
            got, want = np.asarray(f(v32, sv)), np.asarray(g(v32, sv))
            assert got.dtype == want.dtype == (np.float64 if sv.__class__ is not float
                                               else np.float32), (str(e), sv)
            np.testing.assert_allclose(got, want, rtol=1e-6)
    f = sg.compile(sg.exp(s) * v, [v, s], backend="numba")
    with np.errstate(over="ignore"):
        assert np.all(np.isinf(f(v32, 1000.0)))
        assert f(v32, np.float64(1000.0)).dtype == np.float64


def test_the_derivative_of_a_power_in_its_exponent_at_a_zero_base():
    # d/dp v**p = v**p log(v) is 0 where v = 0 (p > 0): the fused loop writes log(zero_as_one(v))
    # as numpy does (mutation testing: a kernel without the "else 1.0" gave nan and passed)
    v, p = sg.vector("v_zb", 4), sg.scalar("p_zb")
    g = sg.grad(sg.sum(sg.exp(v) * v ** p), p)
    vv = np.array([0.0, 1.0, 2.0, 3.0])
    want = float(np.sum(np.exp(vv[1:]) * vv[1:] ** 2 * np.log(vv[1:])))
    got = sg.compile(g, [v, p], backend="numba")(vv, 2.0)
    assert got == pytest.approx(want, rel=1e-12)
    assert sg.compile(g, [v, p])(vv, 2.0) == pytest.approx(want, rel=1e-12)
