"""Functions of many inputs name them once (both versions take ``*_a``; the math version checks
them with one ``sum`` and unpacks them, the array version reads and checks them in one call):
the source stays short, and every check and error is that of a function with few inputs.
Structure and values only, never wall time."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import symgrad as sg
from symgrad.compile import MANY_INPUTS
from tests.helpers import plain_numpy

N = MANY_INPUTS + 4


def scalar_graph(tag: str):
    xs = [sg.scalar(f"p{i}{tag}") for i in range(N)]
    out = [sg.tanh(xs[0] * xs[1] + xs[2])] + [x * x + 1.0 for x in xs[3:]]
    return xs, out


def vector_graph(tag: str, n=3, size="n"):
    """Vectors of a fixed size, scalars, and one vector of a symbolic size."""
    vs = [sg.vector(f"v{i}{tag}", n) for i in range(N // 2)]
    ss = [sg.scalar(f"s{i}{tag}") for i in range(N - N // 2 - 1)]
    z = sg.vector(f"z{tag}", size)
    ins = [x for pair in zip(vs, ss) for x in pair] + vs[len(ss):] + [z]
    h = sum((s * v for s, v in zip(ss, vs)), vs[-1])
    return ins, [sg.exp(h), sg.sum(h) * sg.sum(z)]


def test_scalar_graph_with_many_inputs_names_them_once():
    xs, out = scalar_graph("_a")
    f = sg.compile(out, xs)
    names = [f"p{i}_a" for i in range(N)]
    head = f.source.splitlines()
    assert head[0] == "def compiled(*_a):"
    assert head[3].strip() == f"{', '.join(names)}, = _a"
    # every name appears once in the math version (no guard, no fallback listing them)
    math_version = f.source
    assert all(math_version.count(nm + ",") + math_version.count(nm + " ") >= 1 for nm in names)
    assert math_version.count("p5_a,") == 1
    fallback = [ln for ln in f.source.splitlines() if "_lazy" in ln]
    assert fallback == ["    return _lazy['array'](*_a)"]
    vals = [0.1 * (i + 1) for i in range(N)]
    got = f(*vals)
    assert all(type(v) is float for v in got)
    want = [np.tanh(vals[0] * vals[1] + vals[2])] + [v * v + 1.0 for v in vals[3:]]
    np.testing.assert_allclose(got, want, rtol=1e-15)
    # numpy scalars and arrays take the array version, which agrees
    np.testing.assert_allclose(f(*map(np.float64, vals)), want, rtol=1e-15)
    arr = f(*[np.full(2, v) for v in vals])
    np.testing.assert_allclose([a[0] for a in arr], want, rtol=1e-15)
    assert "_compiled_array" in f.source


def test_the_math_version_takes_python_ints_and_bools_and_nothing_else():
    xs, out = scalar_graph("_i")
    f = sg.compile(out, xs)
    ints = list(range(1, N + 1))
    got = f(*ints)
    assert "_compiled_array" not in f.source  # ints are Python numbers: the math version ran
    want = [np.tanh(1 * 2 + 3)] + [v * v + 1.0 for v in ints[3:]]
    np.testing.assert_allclose(got, want, rtol=1e-15)
    assert type(got[0]) is float
    bools = [True] * N
    assert type(f(*bools)[0]) is float
    # a float32 scalar is not a Python number: the array version keeps its dtype
    got = f(*[np.float32(0.5)] * N)
    assert "_compiled_array" in f.source
    assert got[0].dtype == np.float32
    # a value math cannot take: the array version says which input
    bad = [0.5] * N
    bad[4] = "x"
    with pytest.raises(TypeError, match="input p4_i: expected numbers"):
        f(*bad)


def test_an_unused_input_may_be_anything():
    xs, out = scalar_graph("_u")
    extra = sg.scalar("unused_u")
    f = sg.compile(out, xs + [extra])
    vals = [0.2] * N
    # a value that is not a Python number sends the call to the array version (which never
    # reads it): the same answers, to rounding
    np.testing.assert_allclose(f(*vals, "not a number"), f(*vals, 1.5), rtol=1e-15)


@pytest.mark.parametrize("graph", ["scalar", "vector"])
def test_wrong_numbers_of_arguments_raise_pythons_own_error(graph):
    ins, out = scalar_graph("_n") if graph == "scalar" else vector_graph("_n")
    f = sg.compile(out, ins)
    names = [v.attrs["vname"] for v in ins]
    good = [0.5] * len(ins) if graph == "scalar" else \
        [np.ones(3) if v.shape else 0.5 for v in ins[:-1]] + [np.ones(4)]
    with pytest.raises(TypeError, match=rf"takes {len(ins)} positional arguments but "
                                        rf"{len(ins) + 1} were given"):
        f(*good, 1.0)
    with pytest.raises(TypeError, match=f"missing 1 required positional argument: "
                                        f"'{names[-1]}'"):
        f(*good[:-1])
    with pytest.raises(TypeError, match=f"missing 3 required positional arguments: "
                                        f"'{names[-3]}', '{names[-2]}', and '{names[-1]}'"):
        f(*good[:-3])


def test_tensor_inputs_are_checked_as_with_few_inputs():
    ins, out = vector_graph("_c")
    f = sg.compile(out, ins)
    assert f.source.startswith("def compiled(*_a):")
    vals = [np.linspace(0.1, 0.3, 3) if v.shape else 0.3 for v in ins[:-1]] + [np.ones(5)]
    ref = sg.compile(out, ins, backend=_plain())(*vals)  # no reuse, no Python-number scalars
    for a, b in zip(f(*vals), ref):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    bad = list(vals)
    bad[0] = np.ones(4)
    with pytest.raises(sg.ShapeError, match=r"input v0_c: expected shape \(3,\), got \(4,\)"):
        f(*bad)
    per_sample = list(vals)
    per_sample[1] = np.array([0.3, 0.5])  # samples: one call each (symgrad._per_sample)
    got = f(*per_sample)
    for j, s in enumerate(per_sample[1]):
        one = f(*vals[:1], float(s), *vals[2:])
        for o, want in zip(got, one):
            np.testing.assert_allclose(o[j], want, rtol=1e-15)
    bad = list(vals)
    bad[-1] = np.ones((2, 2))  # the symbolic size: checked inline
    with pytest.raises(sg.ShapeError, match="input z_c"):
        f(*bad)
    bad = list(vals)
    bad[1] = "x"
    with pytest.raises(TypeError, match="input s0_c: expected numbers"):
        f(*bad)


def test_many_inputs_with_buffer_reuse_and_mixed_dtypes(monkeypatch):
    monkeypatch.setattr(sys.modules["symgrad._buffers"], "SMALL", 1)
    ins, out = vector_graph("_r", n=4)
    f = sg.compile(out, ins)
    assert "out=" in f.source and "_uniform_in(_v)" in f.source
    rng = np.random.default_rng(0)
    vals = [rng.uniform(0.1, 0.5, 4) if v.shape else 0.3 for v in ins[:-1]] + [np.ones(6)]
    ref = sg.compile(out, ins, backend=_plain())(*vals)
    for a, b in zip(f(*vals), ref):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    f32 = [v.astype(np.float32) if isinstance(v, np.ndarray) else v for v in vals]
    got = f(*f32)
    assert got[0].dtype == np.float32
    mixed = list(f32)
    mixed[0] = vals[0]  # one float64 array: the plain version runs
    got = f(*mixed)
    assert "def _compiled_plain(*_a):" in f.source
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-5)


def _plain():
    return plain_numpy("plain_numpy_many")


def test_a_python_list_for_a_scalar_input_is_named():
    xs, out = scalar_graph("_l")
    f = sg.compile(out, xs)
    vals = [0.5] * N
    vals[3] = [1.0, 2.0]
    with pytest.raises(TypeError, match=r"input p3_l: got a Python list; pass a number or a "
                                        r"numpy array"):
        f(*vals)
    vals[3] = np.array([1.0, 2.0])  # the same values as an array: one result per sample
    assert f(*vals)[1].shape == (2,)  # p3 * p3 + 1


def test_an_integer_too_big_for_a_float_is_named():
    xs, out = scalar_graph("_i")
    f = sg.compile(out, xs)
    vals = [0.5] * N
    vals[4] = 10**400  # the math version's sum raises OverflowError, the array version names it
    with pytest.raises(OverflowError, match=r"input p4_i: an integer of 1329 bits is too large"):
        f(*vals)
    vals[4] = 10**300  # big, but a float: both versions compute with it
    with np.errstate(over="ignore"):
        assert f(*vals)[2] == float("inf")  # p4 * p4 + 1, in floats


def test_bools_and_ints_with_arrays_compute_as_floats():
    xs = [sg.scalar(f"q{i}") for i in range(N)]
    f = sg.compile([sg.tanh(xs[0]), sum(xs[1:], xs[0])], xs)
    rest = [np.full(2, 0.5)] + [0.5] * (N - 2)  # an array: the array version runs
    for one in (True, 1):  # numpy computes tanh of a Python bool in float16 (0.7617)
        got = f(one, *rest)
        assert type(got[0]) is float  # (of Python numbers alone: a Python number)
        np.testing.assert_allclose(got[0], np.tanh(1.0), rtol=1e-15)
        np.testing.assert_allclose(got[1], 1.0 + 0.5 * (N - 1), rtol=1e-15)


def test_ints_through_sums_and_products():
    """With more than 8 inputs the math version's one guard lets Python ints through, and an
    output that only adds or multiplies them is an int from sg.compile (documented: a check of
    every argument would cost W4's call, and a walk of the outputs its compile). sg.evaluate
    gives floats, as its contract says: an int beyond floats is inf, as floats give."""
    xs = sg.scalars(" ".join(f"q{i}_mi" for i in range(N)))
    total = xs[0]
    for q in xs[1:]:
        total = total + q
    outs = [total, xs[0] * xs[1], sg.tanh(xs[6])]
    got = sg.compile(outs, xs)(*range(N))
    assert got == (sum(range(N)), 0, pytest.approx(np.tanh(6)))
    assert type(got[2]) is float
    assert sg.evaluate(total, {q: 1 for q in xs}) == float(N)
    assert type(sg.evaluate(total, {q: 1 for q in xs})) is float
    assert sg.evaluate(xs[3] ** 2, {q: 10**200 for q in xs}) == float("inf")
    assert sg.evaluate(-(xs[3] * xs[4]), {q: 10**200 for q in xs}) == float("-inf")
