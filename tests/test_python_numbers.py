"""Where Python numbers compute otherwise than numpy, compiled code gives numpy's answer.

Python raises ZeroDivisionError for 1.0 / 0.0 and OverflowError for 10.0 ** 400, and gives a
complex number for (-1.0) ** 0.5; numpy gives inf or nan with a RuntimeWarning. The math version
of a scalar graph raises and falls back to the array version, whose scalar nodes divide and
raise to powers through runtime.div / runtime.power: numpy's answer, as a Python number (a weak
scalar, so a float32 batch stays float32). Python's max(1.0, nan) is 1.0, numpy's maximum nan:
the math version's maximum and minimum propagate nan as numpy does."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import symgrad as sg
from tests.helpers import plain_numpy

x, y = sg.scalars("x_pn y_pn")
v = sg.vector("v_pn", 3)
n = sg.vector("n_pn", "N")


@pytest.mark.parametrize("expr, value, want", [
    (1 / x, 0.0, np.inf),
    (1 / x, -0.0, -np.inf),
    (1 / x, 0, np.inf),  # a Python int
    (x / x, 0.0, np.nan),
    (x**0.5, -1.0, np.nan),  # Python: a complex number
    (x**-1.0, 0.0, np.inf),
    (x**400.0, 10.0, np.inf),  # Python: OverflowError
])
def test_a_scalar_graph_gives_numpys_answer(expr, value, want):
    f = sg.compile(expr, [x])
    with pytest.warns(RuntimeWarning):
        got = f(value)
    assert not isinstance(got, complex)
    np.testing.assert_equal(got, want)
    with pytest.warns(RuntimeWarning):
        np.testing.assert_equal(sg.evaluate(expr, {x: value}), want)
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        f(value)  # as numpy does when told to raise


def test_python_numbers_that_compute_keep_their_python_answer():
    f = sg.compile([x / y, x**y], [x, y])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(3.0, 2.0) == (1.5, 9.0)
        assert f(-8.0, 3.0) == (-8.0 / 3.0, -512.0)  # an integral exponent of a negative base


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_graph_with_tensors_gives_numpys_answer_in_its_dtype(dtype):
    s = sg.scalar("s_pn")
    f = sg.compile([v * (1 / s), v * s**0.5], [v, s])
    with pytest.warns(RuntimeWarning):
        a, b = f(np.ones(3, dtype), 0.0)
    np.testing.assert_equal(a, np.full(3, np.inf))
    with pytest.warns(RuntimeWarning):
        a, b = f(np.ones(3, dtype), -1.0)
    np.testing.assert_equal(b, np.full(3, np.nan))
    assert a.dtype == b.dtype == dtype


def test_the_mean_of_no_samples_is_nan_as_in_numpy():
    f = sg.compile([sg.mean(n), sg.grad(sg.mean(n * n), n)], [n])
    with pytest.warns(RuntimeWarning):
        m, g = f(np.ones(0))
    assert np.isnan(m) and g.shape == (0,)


def test_a_constant_division_by_zero_is_left_to_run_time():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is computed (or warned about) at compile time
        f = sg.compile(x * (sg.const(1.0) / sg.const(0.0)), [x])
    with pytest.warns(RuntimeWarning):
        assert f(2.0) == np.inf


def test_array_code_of_a_scalar_division_calls_the_helper():
    f = sg.compile(v * (1 / x), [v, x])  # 1/x is a scalar node computed from scalars alone
    assert "_c0 / x_pn" in f.source  # the main version: Python math, weak scalars
    with pytest.warns(RuntimeWarning):
        f(np.ones(3), 0.0)
    # the numpy version it fell back to: the helper, which gives numpy's inf as a Python
    # number (an operator needs no runtime.Weak: Python's keep a number weak, see hosted_code)
    assert "_rt.div(_hx, _c0, x_pn)" in f.source
    with pytest.warns(RuntimeWarning):
        assert f(np.ones(3, np.float32), 0.0).dtype == np.float32


def test_the_numpy_version_keeps_a_numpy_number_input_strong_as_the_math_version_does():
    """After the math version fell back to numpy (exp overflowed), np.float64(2)/4 became a
    weak 0.5 there, so float32 data stayed float32 where the math version gives float64: the
    result's dtype depended on an unrelated input's value."""
    X, s, t = sg.matrix("X_st", ("N", "d")), sg.scalar("s_st"), sg.scalar("t_st")
    f = sg.compile([sg.grad(sg.mean(X * X) * t, X), sg.exp(s)], [X, s, t])
    x32 = np.ones((2, 2), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for sv in (1.0, 1000.0):  # exp(1000) overflows in Python's math
            assert f(x32, sv, np.float64(2.0))[0].dtype == np.float64, sv
            assert f(x32, sv, 2.0)[0].dtype == np.float32, sv


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_scalars_computed_from_scalar_inputs_keep_a_float32_batch_float32(backend):
    # a function of a Python number in another array library (or numpy's own functions, in
    # the version the math version falls back to) gives float64, which promotes float32 arrays
    xp = pytest.importorskip(backend)
    s = sg.scalar("s_pn")
    outs = [v * sg.sin(s), sg.sum(v) * sg.exp(s), v * sg.log(s)]
    f = sg.compile(outs, [v, s], backend=xp)
    ones = xp.ones(3, dtype=xp.float32)
    for value in (0.5, -0.5):  # log(-0.5): Python math raises, numpy gives nan
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            got = f(ones, value)
        assert [g.dtype for g in got] == [xp.float32] * 3, value
        want = [np.sin(value), 3 * np.exp(value), np.log(value) if value > 0 else np.nan]
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(g).reshape(-1)[0], w, rtol=1e-6)
    # a 0-d array of the backend for the scalar stays with the backend (it may live on a
    # device, or carry an autograd graph)
    got = f(ones, xp.asarray(0.5, dtype=xp.float32))
    assert [g.dtype for g in got] == [xp.float32] * 3
    np.testing.assert_allclose(np.asarray(got[0]), np.full(3, np.sin(0.5)), rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_maximum_and_minimum_propagate_nan_as_numpy_does(backend):
    # Python's max(1.0, nan) is 1.0 (a nan that comes second is passed over); numpy's is nan
    if backend == "numba":
        pytest.importorskip("numba")
    f = sg.compile([sg.maximum(x, y), sg.minimum(x, y)], [x, y], backend=backend)
    nan = float("nan")
    pairs = [(1.0, nan), (nan, 1.0), (1.0, 2.0), (2.0, 1.0), (3.0, 3.0), (-0.0, 0.0)]
    for a, b in pairs:
        np.testing.assert_equal(f(a, b), (np.maximum(a, b), np.minimum(a, b)))
    xs, ys = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    np.testing.assert_equal(f(xs, ys), (np.maximum(xs, ys), np.minimum(xs, ys)))


def test_a_scalar_computed_from_an_array_keeps_the_arrays_dtype():
    # sum(w) is a numpy float32: math functions of it would give a Python float (float64)
    w, s = sg.vector("w_pn", 3), sg.scalar("s_pn")
    outs = [sg.sigmoid(sg.sum(w) * (1 - sg.sum(w))), sg.sum(v) / s, v * sg.exp(s)]
    f = sg.compile(outs, [v, w, s])
    plain = sg.compile(outs, [v, w, s], backend=plain_numpy("plain_numpy_pn"))
    args = (np.ones(3, np.float32), np.full(3, 0.3, np.float32), 0.5)
    for got in (f(*args), plain(*args)):
        assert [np.asarray(g).dtype for g in got] == [np.dtype(np.float32)] * 3
    assert "_xp.sum(v_pn) / s_pn" in f.source  # a numpy scalar: no helper, never raises
    with pytest.warns(RuntimeWarning):
        assert f(*args[:2], 0.0)[1] == np.inf


@pytest.mark.parametrize("value", [np.int64(2**32), np.uint8(200), np.int32(-7), np.bool_(True)])
def test_numpy_integer_scalars_give_the_values_of_the_equal_floats(value):
    """numpy computes np.int64(2**32)**2 in int64 (0, wrapped) and uint8 200 * 200 in
    uint8; a scalar input takes them as floats, as it takes Python ints."""
    x = sg.scalar("x_npint")
    v = sg.vector("v_npint", 2)
    want = float(value) ** 2
    with np.errstate(all="raise"):
        assert sg.compile(x * x, [x])(value) == want
        assert sg.evaluate(x * x, {x: value}) == want
        got = sg.compile(x * x * v, [x, v])(value, np.ones(2, np.float32))
    np.testing.assert_array_equal(got, [want, want])
    # an int is a float64 (strong, as numpy promotes it with float32 data); a bool is weak
    assert got.dtype == (np.float32 if isinstance(value, np.bool_) else np.float64)


def test_a_0d_integer_array_for_a_scalar_input_is_a_float_as_a_numpy_int_is():
    # x*y of two 0-d int64 arrays of 2**40 wrapped around to 0; np.int64 gave 1.2e24
    x, y = sg.scalars("x_0d y_0d")
    f = sg.compile(x * y, [x, y])
    want = 2.0**80
    for a in (np.int64(2**40), np.array(2**40), np.array(2**40, np.uint64)):
        assert f(a, a) == want
    assert sg.evaluate(x * y, {x: np.array(2**40), y: np.array(2**40)}) == want
    v = sg.vector("v_0d", 2)
    assert sg.compile(x * y * sg.sum(v), [x, y, v])(np.array(2**40), np.array(2**40),
                                                   np.ones(2)) == 2 * want


def test_fractions_decimals_and_big_ints_are_lifted_at_build_time_as_when_called():
    # a compiled function took Fraction(1, 3) as a float, but Fraction(1, 3) * x was a
    # TypeError, and [2**70, 1, 1] * v (an object array to numpy) was refused
    from decimal import Decimal
    from fractions import Fraction

    x, v = sg.scalar("x_fr"), sg.vector("v_fr", 3)
    assert sg.evaluate(Fraction(1, 3) * x, {x: 3.0}) == pytest.approx(1.0)
    assert sg.evaluate(Decimal("0.5") * x, {x: 3.0}) == 1.5
    np.testing.assert_array_equal(sg.evaluate([2**70, 1, 1] * v, {v: np.ones(3)}),
                                  [2.0**70, 1.0, 1.0])
    with pytest.raises(OverflowError, match="^mul: operand .* too large for a float"):
        [2**1100, 1, 1] * v


def test_an_integer_scalar_result_of_evaluate_is_a_python_float():
    """argmax gives an integer index; evaluate returns it as a Python float, as the contract
    says of scalar results (int(...) of it indexes). Found by mutation testing."""
    v = sg.vector("v_am", 3)
    got = sg.evaluate(sg.argmax(v), {v: np.array([1.0, 5.0, 2.0])})
    assert type(got) is float and got == 1.0


def test_an_exact_int_product_beyond_floats_keeps_its_sign():
    """Nine Python-int scalars (the many-inputs math version) multiply exactly; a product beyond
    floats is what float arithmetic gives: -10**200 * 10**200 is -inf, not inf. Found by
    mutation testing."""
    xs = sg.scalars("a_ov b_ov c_ov d_ov e_ov f_ov g_ov h_ov i_ov")
    e = xs[0]
    for s in xs[1:]:
        e = e * s
    vals = {s: 1 for s in xs}
    vals[xs[0]], vals[xs[1]] = -10**200, 10**200
    assert sg.evaluate(e, vals) == -np.inf
    vals[xs[0]] = 10**200
    assert sg.evaluate(e, vals) == np.inf
