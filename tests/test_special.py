"""Floor, integer casts, seeded sampling and the straight-through estimator."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg

x, y = sg.scalars("x y")
v = sg.vector("v", 5)
L = sg.matrix("L", (4, 3))


def test_floor_and_to_int_values():
    pts = np.array([-2.5, -1.0, -0.2, 0.0, 0.7, 3.0])
    np.testing.assert_array_equal(sg.evaluate(sg.floor(v * 1.0), {v: pts[:5]}), np.floor(pts[:5]))
    got = sg.evaluate(sg.to_int(v), {v: pts[:5]})
    np.testing.assert_array_equal(got, np.trunc(pts[:5]))
    assert sg.compile(sg.to_int(v), [v])(pts[:5]).dtype == np.int64
    for p in pts:  # the scalar fast path agrees with numpy
        assert sg.evaluate(sg.floor(x), {x: float(p)}) == np.floor(p)
        assert sg.evaluate(sg.to_int(x), {x: float(p)}) == np.trunc(p)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])
def test_to_int_of_a_value_without_an_integer_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="to_int"):
        sg.evaluate(sg.to_int(x), {x: bad})


def test_to_int_result_indexes_take():
    M = sg.matrix("M", (4, 2))
    row = sg.take(M, sg.to_int(x * 3.0))
    m = np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(sg.evaluate(row, {M: m, x: 0.7}), m[2])


def test_bernoulli_frequencies_follow_p():
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    pv = sg.vector("pv", 5)
    f = sg.compile(sg.sample_bernoulli(pv, seed=11), [pv])
    draws = np.array([f(p) for _ in range(4000)])
    assert set(np.unique(draws)) <= {0.0, 1.0}
    sd = np.sqrt(p * (1 - p) / len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - p) <= 5 * sd + 1e-12)


def test_categorical_frequencies_follow_softmax():
    logits = np.array([0.3, -1.0, 2.0, 0.0])
    lv = sg.vector("lv", 4)
    s = sg.sample_categorical(lv, seed=5)
    assert s.shape == ()
    f = sg.compile(s, [lv])
    draws = np.array([f(logits) for _ in range(4000)])
    want = np.exp(logits) / np.exp(logits).sum()
    freq = np.bincount(draws, minlength=4) / len(draws)
    assert np.all(np.abs(freq - want) <= 5 * np.sqrt(want * (1 - want) / len(draws)))


def test_categorical_over_rows_and_symbolic_sizes():
    Lr = sg.matrix("Lr", ("n", "k"))
    s = sg.sample_categorical(Lr, seed=2)
    assert s.shape == ("n",)
    logits = np.full((6, 3), -np.inf)
    logits[np.arange(6), [0, 2, 1, 1, 0, 2]] = 0.0  # one possible category per row
    np.testing.assert_array_equal(sg.evaluate(s, {Lr: logits}), [0, 2, 1, 1, 0, 2])


def test_sampling_is_seeded_and_reproducible():
    p = np.full(5, 0.5)
    b = sg.sample_bernoulli(v, seed=3)
    f1, f2 = sg.compile(b, [v]), sg.compile(b, [v])
    s1 = [f1(p) for _ in range(5)]
    s2 = [f2(p) for _ in range(5)]
    np.testing.assert_array_equal(s1, s2)  # a fresh compile restarts the same stream
    assert any(not np.array_equal(s1[0], s) for s in s1[1:])  # calls draw new samples
    other = sg.compile(sg.sample_bernoulli(v, seed=4), [v])
    assert any(not np.array_equal(a, other(p)) for a in s1)
    # evaluate does not depend on what its cache holds: the first draw each time
    np.testing.assert_array_equal(sg.evaluate(b, {v: p}), sg.evaluate(b, {v: p}))


def test_every_version_of_a_function_draws_from_one_stream():
    """The versions compiled later (mixed input dtypes: the plain one) made generators of their
    own, so their draws started over and repeated the main version's."""
    P, Q = sg.matrix("P_st", ("m", "n")), sg.matrix("Q_st", ("m", "n"))
    out = sg.sample_bernoulli(sg.sigmoid(sg.tanh(P * Q)), seed=1)  # p = 0.5 at zeros
    z64 = np.zeros((40, 40))
    ref = sg.compile(out, [P, Q])
    stream = [ref(z64, z64) for _ in range(4)]
    fn = sg.compile(out, [P, Q])
    got = [fn(z64, z64), fn(z64, z64), fn(z64, z64.astype(np.float32)),
           fn(z64, z64.astype(np.float32))]
    for a, b in zip(got, stream):
        np.testing.assert_array_equal(a, b)


def test_generator_is_a_closure_object_not_text():
    src = sg.compile(sg.sample_bernoulli(v, seed=123456789), [v]).source
    assert "123456789" not in src and "default_rng" not in src


@pytest.mark.parametrize("seed", [-1, 1.5, "3", None, True])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="sample_bernoulli: seed"):
        sg.sample_bernoulli(v, seed)
    with pytest.raises(ValueError, match="sample_categorical: seed"):
        sg.sample_categorical(v, seed)


def test_bad_probabilities_and_logits_are_clear_errors():
    with pytest.raises(ValueError, match=r"sample_bernoulli: probabilities must lie in \[0, 1\]"):
        sg.evaluate(sg.sample_bernoulli(v, 0), {v: np.array([0.1, 0.2, 1.5, 0.0, 0.3])})
    with pytest.raises(ValueError, match="sample_categorical"):
        sg.evaluate(sg.sample_categorical(v, 0), {v: np.array([0.1, np.nan, 1.5, 0.0, 0.3])})
    with pytest.raises(sg.ShapeError, match=r"sample_categorical.*\(\)"):
        sg.sample_categorical(x, 0)
    # all categories at probability 0: it drew index 0 without a word
    with pytest.raises(ValueError, match="sample_categorical: a row of logits is -inf"):
        sg.evaluate(sg.sample_categorical(v, 0), {v: np.full(5, -np.inf)})
    assert sg.evaluate(sg.sample_categorical(v, 0),
                       {v: np.array([-np.inf, 0.0, -np.inf, -np.inf, -np.inf])}) == 1


def test_straight_through_value_of_hard_derivative_of_soft():
    p = sg.sigmoid(v)
    hard = sg.sample_bernoulli(p, seed=9)
    st = sg.straight_through(hard, p)
    f = sg.sum(st * sg.const(np.arange(5.0)))
    vals = {v: np.linspace(-1, 1, 5)}
    value, g = sg.evaluate([f, sg.grad(f, v)], vals)
    h = sg.evaluate(hard, vals)
    assert value == pytest.approx(float(h @ np.arange(5.0)))
    s = 1 / (1 + np.exp(-vals[v]))
    np.testing.assert_allclose(g, np.arange(5.0) * s * (1 - s), rtol=1e-12)


def test_straight_through_broadcasts_and_checks_shapes():
    st = sg.straight_through(sg.floor(x), v)
    assert st.shape == (5,)
    out = sg.evaluate(st, {x: 2.5, v: np.zeros(5)})
    np.testing.assert_array_equal(out, np.full(5, 2.0))
    with pytest.raises(sg.ShapeError, match=r"straight_through.*\(5,\).*\(3,\)"):
        sg.straight_through(v, sg.vector("w3", 3))


def test_printing_of_special_ops():
    assert str(sg.floor(x)) == "floor(x)"
    assert str(sg.to_int(x)) == "int(x)"
    assert str(sg.sample_bernoulli(x, 7)) == "sample_bernoulli(x, seed=7)"
    assert "floor" in sg.latex(sg.floor(x)) or r"\lfloor" in sg.latex(sg.floor(x))
    assert str(sg.straight_through(sg.floor(x), x)) == "straight_through(floor(x), x)"


def test_sympy_forms():
    import sympy

    sx = sympy.Symbol("x", real=True)
    assert sg.to_sympy(sg.floor(x)) == sympy.floor(sx)
    e = sg.to_sympy(sg.to_int(x))
    for p in (-2.5, -0.5, 0.5, 2.5):
        assert float(e.subs(sx, p)) == np.trunc(p)
    with pytest.raises(NotImplementedError, match="sample_bernoulli"):
        sg.to_sympy(sg.sample_bernoulli(x, 0))


def test_one_draw_from_python_numbers_is_a_python_number():
    # the README's "floats in, floats out": a compiled scalar graph that samples gave array(0.)
    q = sg.scalar("q_one")
    assert sg.compile(sg.sample_bernoulli(q, 7), [q])(0.5).__class__ is float
    assert sg.compile(sg.sample_bernoulli(q, 1) * 2 + q, [q])(0.5).__class__ is float
    lg = sg.vector("lg_one", 3)
    assert sg.compile(sg.sample_categorical(lg, 7), [lg])(np.zeros(3)).__class__ is int
    w = sg.vector("w_one", 3)  # next to float32 data, a weak number keeps float32
    out = sg.compile(sg.sample_bernoulli(q, 1) * w, [q, w])(0.5, np.ones(3, np.float32))
    assert out.dtype == np.float32


def test_floor_of_a_python_float_is_a_float():
    # (its math form: math.floor gives an int; mutation testing found it unchecked)
    x = sg.scalar("x_fl")
    assert repr(sg.compile(sg.floor(x), [x])(2.5)) == "2.0"


def test_straight_through_gradient_wrt_a_broadcast_soft_value_has_its_shape():
    """The cotangent of a soft value that was broadcast against the hard one is summed back
    to the soft value's own shape (found by mutation testing: the result's shape was kept)."""
    H, s = sg.matrix("H_stb", (2, 3)), sg.vector("s_stb", 3)
    g = sg.grad(sg.sum(sg.straight_through(H, s)), s)
    assert g.shape == (3,)
    np.testing.assert_array_equal(sg.evaluate(g, {H: np.zeros((2, 3)), s: np.zeros(3)}),
                                  [2.0, 2.0, 2.0])


def test_latex_text_escapes_an_underscore_in_a_name():
    # a zero derivative's note names the variable inside \text{}, where _ must be escaped
    # (found by mutation testing: _ left out of the escaped characters)
    x1, y2 = sg.scalar("x_1"), sg.scalar("y_2")
    assert sg.latex(sg.grad(y2 * 2.0, x1)) == r"0 \;\text{[zero: f does not depend on x\_1]}"
