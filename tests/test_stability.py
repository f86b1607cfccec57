"""Stable forms: values, gradients and second derivatives for |z| up to 1e3, with no overflow,
no NaN and no floating-point warning (warnings are errors and numpy raises on every event)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import symgrad as sg

ZS = np.array([-1000.0, -750.0, -740.0, -720.0, -700.0, -100.0, -30.0, -1.5, 0.0, 0.4, 30.0,
               100.0, 700.0, 720.0, 750.0, 1000.0])
RTOL, ATOL = 1e-9, 1e-15  # sigmoid's absolute error is ~1e-17 where it is tiny


def _ref_sigmoid(z):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def _ref_softplus(z):
    return np.logaddexp(0.0, z)


def _strict(fn, *args):
    """fn(*args) with every numpy floating-point event raised and every warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            return fn(*args)


def _check(got, want):
    got = np.asarray(got, dtype=float)
    assert np.all(np.isfinite(got)), got
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def _mp(fn):
    """``fn`` of mpmath numbers (50 digits), elementwise, as floats: the exact references."""
    import mpmath

    def ref(t):
        with mpmath.workdps(50):
            return np.vectorize(lambda u: float(fn(mpmath, mpmath.mpf(float(u)))))(t)

    return ref


def _lsp(m, u):  # log(softplus(u)) and its derivatives, exactly
    return m.log(m.log1p(m.exp(u)))


def _lsp1(m, u):
    return m.exp(u) / (1 + m.exp(u)) / m.log1p(m.exp(u))


def _lsp2(m, u):
    s, sp = m.exp(u) / (1 + m.exp(u)), m.log1p(m.exp(u))
    return (s * (1 - s) * sp - s * s) / (sp * sp)


def _lsig(m, u):
    return -m.log1p(m.exp(-u))


def _lsig1(m, u):
    return 1 / (1 + m.exp(u))


def _lsig2(m, u):
    return -m.exp(u) / (1 + m.exp(u)) ** 2


z, y = sg.scalars("z y")
zv = sg.vector("zv", len(ZS))

# pattern -> (f(z), f, f', f'') with the reference derivatives in z
SCALAR_PATTERNS = {
    "log_sigmoid": (lambda a: sg.log(sg.sigmoid(a)),
                    lambda t: -_ref_softplus(-t),
                    lambda t: _ref_sigmoid(-t),
                    lambda t: -_ref_sigmoid(t) * _ref_sigmoid(-t)),
    "log_one_minus_sigmoid": (lambda a: sg.log(1 - sg.sigmoid(a)),
                              lambda t: -_ref_softplus(t),
                              lambda t: -_ref_sigmoid(t),
                              lambda t: -_ref_sigmoid(t) * _ref_sigmoid(-t)),
    "bce_sigmoid": (lambda a: sg.bce(sg.sigmoid(a), 0.3),
                    lambda t: _ref_softplus(t) - 0.3 * t,
                    lambda t: _ref_sigmoid(t) - 0.3,
                    lambda t: _ref_sigmoid(t) * _ref_sigmoid(-t)),
    "log_one_plus_exp": (lambda a: sg.log(1 + sg.exp(a)),
                         _ref_softplus, _ref_sigmoid,
                         lambda t: _ref_sigmoid(t) * _ref_sigmoid(-t)),
    "log_exp": (lambda a: sg.log(sg.exp(a)),
                lambda t: t, lambda t: np.ones_like(t), lambda t: np.zeros_like(t)),
    # log(softplus(z)): softplus underflows to 0 below -745 (log(sigmoid * softplus) was -inf
    # at -1000 for -2000)
    "log_softplus": (lambda a: sg.log(sg.softplus(a)), _mp(_lsp), _mp(_lsp1), _mp(_lsp2)),
    "log_sigmoid_times_softplus": (
        lambda a: sg.log(sg.sigmoid(a) * sg.softplus(a)),
        _mp(lambda m, u: _lsig(m, u) + _lsp(m, u)), _mp(lambda m, u: _lsig1(m, u) + _lsp1(m, u)),
        _mp(lambda m, u: _lsig2(m, u) + _lsp2(m, u))),
    "log_sigmoid_over_softplus": (
        lambda a: sg.log(sg.sigmoid(a) / sg.softplus(a)),
        _mp(lambda m, u: _lsig(m, u) - _lsp(m, u)), _mp(lambda m, u: _lsig1(m, u) - _lsp1(m, u)),
        _mp(lambda m, u: _lsig2(m, u) - _lsp2(m, u))),
    # a power of a positive: log(softplus(z)**2) was -inf below -373 (a power below 1 here:
    # near z = -30 the second derivative is a difference, good to about 5e-16 absolute times
    # the power, where ATOL is 1e-15)
    "log_softplus_power": (lambda a: sg.log(sg.softplus(a) ** 0.75),
                           _mp(lambda m, u: 0.75 * _lsp(m, u)),
                           _mp(lambda m, u: 0.75 * _lsp1(m, u)),
                           _mp(lambda m, u: 0.75 * _lsp2(m, u))),
    "log_sigmoid_cubed": (lambda a: sg.log(sg.sigmoid(a) ** 3), _mp(lambda m, u: 3 * _lsig(m, u)),
                          _mp(lambda m, u: 3 * _lsig1(m, u)), _mp(lambda m, u: 3 * _lsig2(m, u))),
    "hand_sigmoid": (lambda a: sg.log(1 / (1 + sg.exp(-a))),
                     lambda t: -_ref_softplus(-t),
                     lambda t: _ref_sigmoid(-t),
                     lambda t: -_ref_sigmoid(t) * _ref_sigmoid(-t)),
}


@pytest.mark.parametrize("name", sorted(SCALAR_PATTERNS))
def test_scalar_patterns_array_path(name):
    build, f0, f1, f2 = SCALAR_PATTERNS[name]
    f = sg.sum(build(zv))
    g = sg.grad(f, zv)
    H = sg.hessian(f, zv)
    val, gv, hv = _strict(sg.evaluate, [f, g, H], {zv: ZS})
    _check(val, np.sum(f0(ZS)))
    _check(gv, f1(ZS))
    _check(np.diagonal(hv), f2(ZS))
    _check(hv - np.diag(np.diagonal(hv)), np.zeros((len(ZS), len(ZS))))


@pytest.mark.parametrize("name", sorted(SCALAR_PATTERNS))
def test_scalar_patterns_scalar_path(name):
    build, f0, f1, f2 = SCALAR_PATTERNS[name]
    f = build(z)
    fn = sg.compile([f, sg.grad(f, z), sg.grad(sg.grad(f, z), z)], [z])
    for t in ZS:
        got = _strict(fn, float(t))
        _check(got, [f0(t), f1(t), f2(t)])


def test_bce_of_sigmoid_gradient_is_sigmoid_minus_y():
    yv = sg.vector("yv", len(ZS))
    ys = np.linspace(0.0, 1.0, len(ZS))
    f = sg.sum(sg.bce(sg.sigmoid(zv), yv))
    gz, gy = _strict(sg.evaluate, sg.grad(f, [zv, yv]), {zv: ZS, yv: ys})
    _check(gz, _ref_sigmoid(ZS) - ys)
    _check(gy, -ZS)  # d/dy of softplus(z) - y*z


LSE_POINTS = [np.array([1000.0, 0.0, -1000.0]), np.array([-1000.0, -1000.5, -999.0]),
              np.array([700.0, 710.0, 720.0]), np.array([0.1, -0.2, 0.3])]


def _ref_lse(t):
    m = t.max()
    return m + np.log(np.sum(np.exp(t - m)))


def _ref_softmax(t):
    with np.errstate(under="ignore"):
        e = np.exp(t - t.max())
    return e / e.sum()


@pytest.mark.parametrize("k", range(len(LSE_POINTS)))
def test_log_sum_exp_and_softmax(k):
    t = LSE_POINTS[k]
    w = sg.vector("w", 3)
    c = np.array([1.0, -2.0, 0.5])
    s = _ref_softmax(t)
    for lse in (sg.log(sg.sum(sg.exp(w))), sg.logsumexp(w)):
        val, g, H = _strict(sg.evaluate, [lse, sg.grad(lse, w), sg.hessian(lse, w)], {w: t})
        _check(val, _ref_lse(t))
        _check(g, s)
        _check(H, np.diag(s) - np.outer(s, s))
    for sm in (sg.softmax(w), sg.exp(w) / sg.sum(sg.exp(w))):
        f = sg.sum(sm * c)
        val, g, H = _strict(sg.evaluate, [f, sg.grad(f, w), sg.hessian(f, w)], {w: t})
        _check(val, s @ c)
        _check(g, s * (c - s @ c))
        assert np.all(np.isfinite(H))
        np.testing.assert_allclose(H, H.T, atol=1e-15)
    lsm = sg.sum(sg.log(sg.softmax(w)) * c)
    val, g = _strict(sg.evaluate, [lsm, sg.grad(lsm, w)], {w: t})
    _check(val, (t - _ref_lse(t)) @ c)
    _check(g, c - s * c.sum())


# ------------------------------------------------------------------ through views
Zm = sg.matrix("Zm", (2, 3))
Ym = sg.matrix("Ym", (3, 2))
ZVAL = np.array([[1000.0, -1000.0, 0.3], [-750.0, 30.0, 700.0]])
YVAL = np.full((3, 2), 0.25)

VIEW_CASES = {
    "bce_transpose": (lambda: sg.sum(sg.bce(sg.transpose(sg.sigmoid(Zm)), Ym)),
                      lambda: np.sum(_ref_softplus(ZVAL.T) - YVAL * ZVAL.T),
                      lambda: _ref_sigmoid(ZVAL) - YVAL.T),
    "log_sigmoid_reshape": (lambda: sg.sum(sg.log(sg.reshape(sg.sigmoid(Zm), (3, 2))) * Ym),
                            lambda: np.sum(-_ref_softplus(-ZVAL).reshape(3, 2) * YVAL),
                            lambda: (_ref_sigmoid(-ZVAL).reshape(3, 2) * YVAL).reshape(2, 3)),
    "log_one_minus_transposed_sigmoid": (
        lambda: sg.sum(sg.log(1 - sg.transpose(sg.sigmoid(Zm)))),
        lambda: np.sum(-_ref_softplus(ZVAL)),
        lambda: -_ref_sigmoid(ZVAL)),
    "lse_of_transpose": (
        lambda: sg.sum(sg.log(sg.sum(sg.exp(sg.transpose(Zm)), axis=0))),
        lambda: sum(_ref_lse(r) for r in ZVAL),
        lambda: np.stack([_ref_softmax(r) for r in ZVAL])),
    "bce_broadcast_sigmoid": (
        lambda: sg.sum(sg.bce(sg.broadcast_to(sg.sigmoid(Zm), (3, 2, 3)), 0.5)),
        lambda: 3 * np.sum(_ref_softplus(ZVAL) - 0.5 * ZVAL),
        lambda: 3 * (_ref_sigmoid(ZVAL) - 0.5)),
}


@pytest.mark.parametrize("name", sorted(VIEW_CASES))
def test_patterns_through_views(name):
    build, want_val, want_grad = VIEW_CASES[name]
    f = build()
    vals = {Zm: ZVAL, Ym: YVAL}
    val, g, H = _strict(sg.evaluate, [f, sg.grad(f, Zm), sg.hessian(f, Zm)], vals)
    _check(val, want_val())
    _check(g, want_grad())
    assert H.shape == (2, 3, 2, 3) and np.all(np.isfinite(H))


# ------------------------------------------------------------------ after differentiation
def test_pattern_that_appears_only_in_the_derivative():
    # d/dy sigmoid(z)**y = sigmoid(z)**y * log(sigmoid(z)): log(sigmoid) is born in the gradient
    f = sg.sigmoid(z) ** y
    gy = sg.grad(f, y)
    hyy = sg.grad(gy, y)
    for t in (-1000.0, -30.0, 0.5, 1000.0):
        s = _ref_sigmoid(t)
        ls = -_ref_softplus(-t)
        got = _strict(sg.evaluate, [gy, hyy], {z: t, y: 2.0})
        _check(got, [s**2 * ls, s**2 * ls**2])
    # the second derivative of a stable form stays stable
    h = sg.hessian(sg.log(sg.sigmoid(z)) * y, [z, y])
    got = _strict(sg.evaluate, [h[0][0], h[0][1], h[1][0], h[1][1]], {z: -1000.0, y: 3.0})
    _check(got, [0.0, 1.0, 1.0, 0.0])


def test_the_gradient_graph_itself_is_stable():
    # grad() returns stabilized graphs: no log of a sigmoid is left for the user to meet
    g = sg.grad(sg.sigmoid(z) ** y, y)
    ops = {n.op.name for n in sg.topo_order([g])}
    assert "softplus" in ops
    assert not any(n.op.name == "log" and n.args[0].op.name == "sigmoid"
                   for n in sg.topo_order([g]))


def test_stabilize_keeps_intermediate_variables():
    h = sg.sigmoid(z * 2.0)
    f = sg.log(h) + h
    gh = sg.grad(f, h)  # h is not a leaf: it stays an independent input
    assert sg.evaluate(gh, {z: 0.3}) == pytest.approx(1 / _ref_sigmoid(0.6) + 1)


def test_softmax_share_below_the_smallest_double_raises_nothing():
    # exp(z - max) is above the smallest double, its share of the sum is not: the division
    # underflowed, and numpy raised under errstate(all="raise")
    v = sg.vector("v_tiny", 3)
    z = np.array([0.0, -30.32718742, -734.4374293])
    want = _ref_softmax(z)
    for e in (sg.softmax(v), sg.grad(sg.logsumexp(v), v)):
        got = _strict(sg.compile(e, [v]), z)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=0)


def test_several_intermediate_values_one_inside_the_other():
    # asked together with phi, the gradient wrt mu = sigmoid(w phi + b) was 0 ("does not
    # depend on mu"): keeping phi rebuilt mu, which the stable rewrite of bce(sigmoid) removed
    x, y, u, w = sg.scalars("x_nest y_nest u_nest w_nest")
    phi = sg.sigmoid(u * x).named("phi_nest")
    mu = sg.sigmoid(w * phi).named("mu_nest")
    C = sg.bce(mu, y)
    at = {x: 0.5, y: 1.0, u: 0.3, w: 1.5}
    together = sg.grad(C, [u, phi, mu, w])
    alone = [sg.grad(C, v) for v in (u, phi, mu, w)]
    assert all(a is b for a, b in zip(together, alone))  # the variables' keep the stable form
    m = sg.evaluate(mu, at)
    assert sg.evaluate(together[2], at) == pytest.approx(-1 / m)  # d/dmu of -log(mu) at y = 1
    assert sg.evaluate(together[1], at) == pytest.approx((m - 1) * 1.5)
    assert sg.evaluate(sg.jacobian(C, [phi, mu])[1], at) == pytest.approx(-1 / m)


def test_softplus_and_sigmoid_never_warn():
    w = sg.vector("w", len(ZS))
    f = sg.sum(sg.softplus(w) + sg.sigmoid(w))
    val, g = _strict(sg.evaluate, [f, sg.grad(f, w)], {w: ZS})
    _check(val, np.sum(_ref_softplus(ZS) + _ref_sigmoid(ZS)))
    _check(g, _ref_sigmoid(ZS) + _ref_sigmoid(ZS) * _ref_sigmoid(-ZS))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("strict", [False, True])
def test_softplus_of_small_and_big_arrays_agree(dtype, strict):
    """Arrays below _SMALL_SOFTPLUS entries take numpy's logaddexp, others the vectorised
    formula: the same values (to rounding) and dtype, and no warning either way."""
    from symgrad import runtime

    small = np.concatenate([ZS, np.linspace(-40, 40, 51)]).astype(dtype)
    assert small.size < runtime._SMALL_SOFTPLUS
    big = np.tile(small, runtime._SMALL_SOFTPLUS // small.size + 1)
    run = (lambda f, *a: _strict(f, *a)) if strict else (lambda f, *a: f(*a))
    s = run(runtime.softplus, np, small)
    b = run(runtime.softplus, np, big)[:small.size]
    assert s.dtype == b.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-15
    tiny = np.finfo(dtype).tiny  # subnormal results carry fewer digits
    np.testing.assert_allclose(s, b, rtol=tol, atol=tiny)
    np.testing.assert_allclose(s, _ref_softplus(small.astype(np.float64)), rtol=tol, atol=tiny)


SIG_ZS = np.concatenate([np.linspace(-700.0, 700.0, 57), [-40.0, -37.0, -20.0, -1e-3, 1e-3]])


def _sigmoid_exact(z):
    """1/(1 + e^-z) to about 1e-16 relative: exp(z)/(1 + exp(z)) below 0, where it is the
    form with no cancellation."""
    z = np.asarray(z, dtype=float)
    with np.errstate(over="ignore"):
        return np.where(z < 0, np.exp(z) / (1.0 + np.exp(z)), 1.0 / (1.0 + np.exp(-z)))


@pytest.mark.parametrize("path", ["array", "in place", "python floats", "per sample",
                                  "numpy numbers", "0-d arrays"])
def test_sigmoid_is_accurate_to_the_last_digits_where_it_is_tiny(path):
    """0.5 + 0.5 tanh(z/2) cancels for negative z: it gave 0 for sigmoid(-40) = 4.2e-18 and
    was 30 % off at -37. Relative accuracy, not an absolute 1e-15, is the test."""
    z = sg.scalar("z_sig")
    w = sg.vector("w_sig", len(SIG_ZS))
    A, B = sg.matrix("A_sig", (len(SIG_ZS), 50)), sg.matrix("B_sig", (50, 60))
    if path == "array":
        got = _strict(sg.compile(sg.sigmoid(w), [w]), SIG_ZS)
    elif path == "in place":  # the matrix product's buffer is dead: sigmoid writes into it
        fn = sg.compile(sg.sigmoid(A @ B), [A, B])
        assert "_rt.sigmoid(_xp, _t0, _t0)" in fn.source
        a, b = np.zeros((len(SIG_ZS), 50)), np.zeros((50, 60))
        a[:, 0], b[0] = SIG_ZS, 1.0
        got = _strict(fn, a, b)[:, 7]
    elif path == "python floats":
        fn = sg.compile(sg.sigmoid(z), [z])
        got = [_strict(fn, float(t)) for t in SIG_ZS]
    elif path in ("numpy numbers", "0-d arrays"):  # (runtime.sigmoid's path for one number)
        fn = sg.compile(sg.sigmoid(z), [z])
        wrap = np.float64 if path == "numpy numbers" else np.array
        got = [_strict(fn, wrap(t)) for t in SIG_ZS]
    else:
        got = _strict(sg.compile(sg.sigmoid(z), [z]), SIG_ZS)
    np.testing.assert_allclose(got, _sigmoid_exact(SIG_ZS), rtol=1e-13, atol=0)


@pytest.mark.parametrize("path", ["array", "python floats"])
def test_log_softplus_is_accurate_on_both_sides_of_its_tail(path):
    """log(softplus(z)) switches to z - e^z/2 below -30: checked on a grid across the switch
    (mutation testing: moving it to -2 passed; the grids jumped from -30 to -1.5)."""
    zs = np.array([-60.0, -31.0, -30.5, -29.5, -25.0, -20.0, -10.0, -5.0, -3.0, -2.0, -1.0,
                   0.0, 3.0])
    # log(log1p(e^z)) with log1p(e^z) = e^z (1 - e^z/2 + e^2z/3 - ...): exact enough here
    want = np.log(np.log1p(np.exp(zs)))
    z, w = sg.scalar("z_lsp"), sg.vector("w_lsp", len(zs))
    if path == "array":
        got = _strict(sg.compile(sg.log(sg.softplus(w)), [w]), zs)
    else:
        fn = sg.compile(sg.log(sg.softplus(z)), [z])
        got = [_strict(fn, float(t)) for t in zs]
    np.testing.assert_allclose(got, want, rtol=2e-16 * 4, atol=0)


def test_sigmoid_below_the_range_of_exp_is_zero_without_a_warning():
    z, w = sg.scalar("z_sig0"), sg.vector("w_sig0", 3)
    assert _strict(sg.compile(sg.sigmoid(z), [z]), -800.0) == 0.0  # math.exp overflows
    for dtype in (np.float64, np.float32):
        got = _strict(sg.compile(sg.sigmoid(w), [w]), np.array([-800.0, -90.0, 0.0], dtype))
        assert got.dtype == dtype
        np.testing.assert_allclose(got, _sigmoid_exact([-800.0, -90.0, 0.0]).astype(dtype),
                                   rtol=1e-6, atol=np.finfo(dtype).tiny)


def test_entries_further_apart_than_the_largest_double():
    # x - max(x) overflowed to -inf (its exp is the correct 0) with numpy's signal raised
    v = sg.vector("v_far", 2)
    f = sg.compile([sg.logsumexp(v), sg.grad(sg.logsumexp(v), v), sg.log_softmax(v)], [v])
    lse, g, ls = _strict(f, np.array([-1.7e308, 1.7e308]))
    assert lse == 1.7e308 and g.tolist() == [0.0, 1.0] and ls.tolist() == [-np.inf, 0.0]


def test_dask_computes_the_stable_forms_without_signals():
    """The try around exp that silences a correct underflow ran while dask built its graph;
    the underflow came later, in compute()."""
    pytest.importorskip("dask")
    pytest.importorskip("array_api_compat")
    import dask
    import dask.array as da

    z, v = sg.scalar("z_dask"), sg.vector("v_dask", 2)
    f = sg.compile([sg.softplus(z), sg.log(sg.sigmoid(z)), sg.grad(sg.softplus(z), z)], [z],
                   backend="dask")
    g = sg.compile([sg.logsumexp(v), sg.softmax(v)], [v], backend="dask")
    with dask.config.set(scheduler="synchronous"):
        vals = _strict(lambda: dask.compute(*f(da.from_array(np.array([-800.0, 800.0]),
                                                             chunks=1))))
        lse, sm = _strict(lambda: dask.compute(*g(da.from_array(np.array([0.0, -800.0])))))
    np.testing.assert_allclose(vals[0], [0.0, 800.0])
    np.testing.assert_allclose(vals[1], [-800.0, 0.0])
    assert lse == pytest.approx(0.0) and sm.tolist() == [1.0, 0.0]


def test_a_hessian_with_an_intermediate_keeps_the_variables_stable_forms():
    """hessian(C, [z, mu]) took one first pass with mu = sigmoid(z) opaque: d/dz of bce(mu, y)
    was (mu - y)/(mu (1 - mu)) times mu (1 - mu), nan at z = 40 (grad already passed each
    intermediate on its own)."""
    z, y = sg.scalars("z_hi y_hi")
    mu = sg.sigmoid(z).named("mu_hi")
    H = sg.hessian(sg.bce(mu, y), [z, mu])
    for at in (40.0, -800.0):
        assert _strict(sg.evaluate, H[0], {z: at, y: 0.3}) == [0.0, 1.0]
    m = 1 / (1 + np.exp(-0.3))
    np.testing.assert_allclose(sg.evaluate([h for row in H for h in row], {z: 0.3, y: 0.4}),
                               [m * (1 - m), 1.0, 1.0, 0.4 / m**2 + 0.6 / (1 - m) ** 2])


def test_log_of_a_sum_over_a_broadcast_of_exp_is_stable():
    """sum(broadcast(exp(u))) is built as count * sum(exp(u)), and log(2 sum(exp(u))) was
    not recognised: inf at u = 800, its gradient nan (log(c a) = log(c) + log(a) now)."""
    u = sg.vector("u_bst", 3)
    uv = np.array([800.0, 0.0, -3.0])
    want = np.log(2) + 800 + np.log1p(np.exp(-800) + np.exp(-803))
    for e in (sg.log(sg.sum(sg.broadcast_to(sg.exp(u), (2, 3)))),
              sg.log(sg.sum(sg.exp(sg.broadcast_to(u, (2, 3))))),
              sg.log(2.0 * sg.sum(sg.exp(u)))):
        assert sg.evaluate(e, {u: uv}) == pytest.approx(want, rel=1e-15)
        np.testing.assert_allclose(sg.evaluate(sg.grad(e, u), {u: uv}), [1, 0, 0], atol=1e-300)
    e = sg.log(sg.sum(sg.broadcast_to(sg.exp(u), (2, 3)), axis=0))
    np.testing.assert_allclose(sg.evaluate(e, {u: uv}), np.log(2) + uv, rtol=1e-15)


def test_a_power_of_softplus_in_its_exponent_is_0_where_softplus_underflows():
    """softplus(z) is 0 in floating point below about -745 (float32: -104), and nothing
    rewrites log(softplus(z)): d/dy softplus(z)**y was 0*log(0) = nan, where trust.md's kink
    table (and the true value, about e^-1600) say 0."""
    z, y = sg.scalar("z_sp"), sg.scalar("y_sp")
    f = sg.softplus(z) ** y
    assert sg.evaluate(sg.grad(f, y), {z: -800.0, y: 2.0}) == 0.0
    g = sg.compile(sg.grad(f, y), [z, y])
    assert g(np.array([-110.0], np.float32), 2.0)[0] == 0.0
    h = sg.hessian(f, [z, y])
    assert sg.evaluate(h[1][1], {z: -800.0, y: 2.0}) == 0.0


def test_a_sigmoid_of_one_large_numpy_number_raises_no_underflow():
    """The fast path for one number skipped errstate only against overflow: exp(-710) is
    subnormal, and under np.errstate(all="raise") sigmoid(np.float64(710)) raised."""
    z = sg.scalar("z_su")
    fn = sg.compile(sg.sigmoid(z), [z])
    with np.errstate(all="raise"):
        for v in (np.float64(710.0), np.array(710.0), np.float32(90.0), np.float64(-710.0)):
            assert np.isfinite(fn(v))
        assert fn(np.float64(710.0)) == 1.0 and fn(np.float64(-710.0)) == 0.0
        # numpy's float32 exp of a subnormal signals an underflow (its result is 1): found
        # by review, sigmoid(np.float32(1e-45)) raised, and so did softplus' and bce's gradient
        y = sg.scalar("y_su")
        for v in (np.float32(1e-45), np.float32(-1e-40), np.array(np.float32(1e-45)),
                  np.float64(5e-324), np.float32(0.0)):
            assert fn(v) == 0.5
            assert sg.evaluate(sg.grad(sg.softplus(z), z), {z: v}) == 0.5
            assert sg.evaluate(sg.grad(sg.bce(sg.sigmoid(z), y), z), {z: v, y: 1.0}) == -0.5


def test_a_softmax_over_leading_axes_written_without_keepdims_is_stable():
    """exp(Z)/sum(exp(Z), 0): numpy broadcasts the (3,) sum back along axis 0, a softmax over
    the columns; it was left unrewritten and gave nan at 800."""
    Z = sg.matrix("Z_lk", (2, 3))
    e = sg.exp(Z) / sg.sum(sg.exp(Z), 0)
    got = sg.evaluate(e, {Z: np.array([[800.0, 0.0, 1.0], [0.0, 800.0, 1.0]])})
    np.testing.assert_allclose(got, [[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    T = sg.tensor("T_lk", (2, 2, 3))  # axis 1 of three is not leading: not a softmax
    t = np.arange(12.0).reshape(2, 2, 3)
    np.testing.assert_allclose(sg.evaluate(sg.exp(T) / sg.sum(sg.exp(T), 1), {T: t}),
                               np.exp(t) / np.exp(t).sum(1))


def _fd_grad(f, x, vals, h=1e-6):
    base = np.asarray(vals[x], float)
    g = np.zeros_like(base)
    for i in np.ndindex(base.shape):
        up, dn = base.copy(), base.copy()
        up[i] += h
        dn[i] -= h
        g[i] = (sg.evaluate(f, {**vals, x: up}) - sg.evaluate(f, {**vals, x: dn})) / (2 * h)
    return g


def test_softmax_back_from_sympy_and_written_as_a_product_with_a_reciprocal_is_stable():
    # sympy writes a quotient a * (1/b): from_sympy(to_sympy(softmax(v))) read back as
    # exp(v) (1/sum(exp(v))), nan at v = 1000, as were exp(v) * sum(exp(v))**-1 and the
    # weighted mean sum(exp(v) w)/sum(exp(v)) the builder makes of sum(exp(v)/sum(exp(v)) w)
    v = sg.vector("v_rc", 3)
    B, W = sg.matrix("B_rc", (2, 3)), sg.matrix("W_rc", (2, 3))
    w = np.array([1.0, 2.0, 3.0])
    big = np.array([1000.0, 999.0, 998.0])
    want = np.exp(big - 1000) / np.exp(big - 1000).sum()
    forms = [sg.from_sympy(sg.to_sympy(sg.softmax(v))), sg.exp(v) * (1 / sg.sum(sg.exp(v))),
             (1 / sg.sum(sg.exp(v))) * sg.exp(v), sg.exp(v) * sg.sum(sg.exp(v)) ** -1]
    for e in forms:
        np.testing.assert_allclose(_strict(sg.evaluate, e, {v: big}), want, rtol=1e-14)
        f = sg.sum(e * sg.const(w))  # (the builder: sum(exp(v) w) / sum(exp(v)))
        np.testing.assert_allclose(_strict(sg.evaluate, f, {v: big}), want @ w, rtol=1e-14)
        g = _strict(sg.evaluate, sg.grad(f, v), {v: big})
        np.testing.assert_allclose(g, want * (w - want @ w), rtol=1e-12)
        small = {v: np.array([0.3, -0.2, 0.1])}
        np.testing.assert_allclose(sg.evaluate(sg.grad(f, v), small), _fd_grad(f, v, small),
                                   rtol=1e-7)
    b = np.full((2, 3), 800.0) + np.arange(6.0).reshape(2, 3)
    wm = np.arange(6.0).reshape(2, 3)
    for axis in (0, 1):
        e = sg.from_sympy(sg.to_sympy(sg.softmax(B, axis=axis)))
        sm = np.exp(b - b.max(axis, keepdims=True))
        sm /= sm.sum(axis, keepdims=True)
        np.testing.assert_allclose(_strict(sg.evaluate, e, {B: b}), sm, rtol=1e-14)
        mean = sg.sum(sg.exp(B) * W, axis=axis) / sg.sum(sg.exp(B), axis=axis)
        np.testing.assert_allclose(_strict(sg.evaluate, mean, {B: b, W: wm}),
                                   (sm * wm).sum(axis), rtol=1e-14)
    # a sum of another product, or over other axes, is no weighted mean: left as written
    T = sg.matrix("T_rc", (2, 3))
    other = sg.sum(sg.exp(B) * W, axis=0) / sg.sum(sg.exp(T), axis=0)
    assert "softmax" not in str(sg.simplify(other))
    t = np.arange(6.0).reshape(2, 3) / 7
    np.testing.assert_allclose(sg.evaluate(other, {B: t, W: wm, T: t + 1}),
                               (np.exp(t) * wm).sum(0) / np.exp(t + 1).sum(0), rtol=1e-14)


def test_exp_times_the_sigmoid_of_minus_its_argument_is_the_sigmoid():
    # exp(z) * (1/(1 + exp(z))): the reciprocal is rewritten first, to sigmoid(-z), and the
    # product exp(z) sigmoid(-z) was inf 0 = nan at z = 1000; so was exp(z) (1 - sigmoid(z))
    z, Z = sg.vector("z_es", 2), sg.matrix("Z_es", (2, 2))
    big = np.array([1000.0, -3.0])
    want = np.array([1.0, 1 / (1 + np.exp(3.0))])
    forms = [sg.exp(z) * (1 / (1 + sg.exp(z))), sg.exp(z) * (1 + sg.exp(z)) ** -1,
             sg.exp(z) * sg.sigmoid(-z), sg.sigmoid(-z) * sg.exp(z),
             sg.exp(z) * (1 - sg.sigmoid(z))]
    for e in forms:
        np.testing.assert_allclose(_strict(sg.evaluate, e, {z: big}), want, rtol=1e-14)
        g = _strict(sg.evaluate, sg.grad(sg.sum(e), z), {z: big})
        np.testing.assert_allclose(g, want * (1 - want), rtol=1e-12)
        small = {z: np.array([0.3, -1.1])}
        np.testing.assert_allclose(sg.evaluate(sg.grad(sg.sum(e), z), small),
                                   _fd_grad(sg.sum(e), z, small), rtol=1e-7)
    np.testing.assert_allclose(_strict(sg.evaluate, 3 * sg.exp(z + 1) * sg.sigmoid(-z),
                                       {z: big}), 3 * np.e * want, rtol=1e-14)
    e = 3 * sg.exp(Z) * (1 / (1 + sg.exp(Z)))
    np.testing.assert_allclose(_strict(sg.evaluate, e, {Z: np.full((2, 2), 1000.0)}), 3.0)
    # a sigmoid of another argument is left as written
    w = sg.vector("w_es", 2)
    other = sg.exp(z) * sg.sigmoid(-w)
    assert "exp" in str(sg.simplify(other))
    np.testing.assert_allclose(sg.evaluate(other, {z: np.array([0.5, 1.0]), w: np.ones(2)}),
                               np.exp([0.5, 1.0]) / (1 + np.e))


def test_a_softmax_over_every_axis_with_keepdims_written_as_a_product_is_stable():
    # the (1, 1) sum is reshaped to a scalar to scale the matrix, and the builder drops the
    # keepdims of a (1, 1) numerator: exp(Z) * (1/b) and a * (1/b) were nan at Z = 1000
    Z, W = sg.matrix("Z_kd", (2, 3)), sg.matrix("W_kd", (2, 3))
    b = sg.sum(sg.exp(Z), keepdims=True)
    a = sg.sum(sg.exp(Z) * W, keepdims=True)
    big = {Z: np.full((2, 3), 1000.0), W: np.ones((2, 3))}
    for e in (sg.exp(Z) / b, sg.exp(Z) * (1 / b), sg.exp(Z) * b**-1):
        np.testing.assert_allclose(_strict(sg.evaluate, e, big), np.full((2, 3), 1 / 6))
    for e in (a / b, a * (1 / b), a * b**-1):
        np.testing.assert_allclose(_strict(sg.evaluate, e, big), [[1.0]])
    # over one axis of two, keepdims on one side only broadcasts to (2, 2): no weighted mean
    zz, ww = np.arange(6.0).reshape(2, 3), np.arange(6.0).reshape(2, 3)
    e = sg.sum(sg.exp(Z) * W, axis=1) / sg.sum(sg.exp(Z), axis=1, keepdims=True)
    assert e.shape == (2, 2)
    np.testing.assert_allclose(sg.evaluate(e, {Z: zz, W: ww}),
                               (np.exp(zz) * ww).sum(1) / np.exp(zz).sum(1, keepdims=True))


def test_a_multiple_of_a_softmax_written_out_is_stable():
    # 2 exp(Z)/sum(exp(Z), 1, keepdims=True) and exp(Z + 1)/... were nan at Z = 1000
    Z = sg.matrix("Z_ms", (2, 3))
    W = sg.const(np.arange(6.0).reshape(2, 3))
    zz = np.full((2, 3), 1000.0) + np.arange(6.0).reshape(2, 3)
    sm = np.exp(zz - zz.max(1, keepdims=True))
    sm /= sm.sum(1, keepdims=True)
    den = sg.sum(sg.exp(Z), 1, keepdims=True)
    for e, k in ((2 * sg.exp(Z) / den, 2.0), (sg.exp(Z + 1) / den, np.e),
                 (sg.exp(Z) * (1 / den) * 2, 2.0), (-sg.exp(Z) / den, -1.0)):
        np.testing.assert_allclose(_strict(sg.evaluate, e, {Z: zz}), k * sm, rtol=1e-14)
        f = sg.sum(e * W)
        small = {Z: np.arange(6.0).reshape(2, 3) / 7}
        np.testing.assert_allclose(sg.evaluate(sg.grad(f, Z), small), _fd_grad(f, Z, small),
                                   rtol=1e-7)
        assert np.all(np.isfinite(_strict(sg.evaluate, sg.grad(f, Z), {Z: zz})))


def test_from_sympy_reads_the_stable_functions_back():
    # sum(s * s) of the sympy form of a softmax s was nan at v = 1000: the builder folds it
    # to sum(exp(v) exp(v)) / sum(exp(v))**2, which no rule recognises
    import sympy

    v = sg.vector("v_fs", 3)
    big = {v: np.array([1000.0, 999.0, 998.0])}
    s1, s2 = sg.softmax(v), sg.from_sympy(sg.to_sympy(sg.softmax(v)))
    assert s2 is s1
    x = sympy.Symbol("x_fs", real=True)
    assert str(sg.from_sympy(sympy.exp(x) / (1 + sympy.exp(x)))) == "sigmoid(x_fs)"
    assert str(sg.from_sympy(sympy.log(sympy.exp(2 * x)))) == "2*x_fs"
    # an expression given in symbols stays as given (no rule looks inside it)
    h = sg.sigmoid(sg.scalar("z_fs"))
    assert str(sg.from_sympy(sympy.log(sympy.Symbol("h")), {"h": h})) == "log(sigmoid(z_fs))"
    np.testing.assert_allclose(_strict(sg.evaluate, sg.sum(s2 * s2), big),
                               sg.evaluate(sg.sum(s1 * s1), big), rtol=1e-14)


@pytest.mark.parametrize("b", ["3", "exp(y)", "2*exp(y)", "sigmoid(y)", "softplus(y)",
                               "1 + exp(y)", "y**2 + 1", "2 + exp(y)"])
def test_log_of_a_quotient_with_one_minus_sigmoid_or_a_positive_sum_is_stable(b):
    # log(a/b) is log(a) - log(b) for positive a and b: 1 - sigmoid(z) was not known positive,
    # nor a sum of non-negative terms one of which is positive
    z, y = sg.scalars("z_q y_q")
    den = {"3": sg.const(3.0), "exp(y)": sg.exp(y), "2*exp(y)": 2 * sg.exp(y),
           "sigmoid(y)": sg.sigmoid(y), "softplus(y)": sg.softplus(y),
           "1 + exp(y)": 1 + sg.exp(y), "y**2 + 1": y**2 + 1, "2 + exp(y)": 2 + sg.exp(y)}[b]
    lb = float(np.log(sg.evaluate(den, {y: 0.3})))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for a, at in ((1 - sg.sigmoid(z), 1000.0), (sg.sigmoid(z), -1000.0)):
            f = sg.log(a / den)
            vals = {z: at, y: 0.3}
            assert sg.evaluate(f, vals) == pytest.approx(-1000.0 - lb, rel=1e-12)
            assert sg.evaluate(sg.grad(f, z), vals) == pytest.approx(-1.0 if at > 0 else 1.0)


def test_dask_given_numbers_or_numpy_samples_computes_the_sigmoid_without_signals():
    # a sigmoid of a number or numpy samples on dask built its graph under errstate and
    # overflowed later, in compute()
    pytest.importorskip("dask")
    pytest.importorskip("array_api_compat")
    import dask

    z, y = sg.scalar("z_dn"), sg.scalar("y_dn")
    outs = [sg.sigmoid(z), sg.grad(sg.softplus(z), z), sg.grad(sg.bce(sg.sigmoid(z), y), z)]
    f = sg.compile(outs, [z, y], backend="dask")
    with dask.config.set(scheduler="synchronous"):
        a = _strict(lambda: dask.compute(*f(-1000.0, 1.0)))
        b = _strict(lambda: dask.compute(*f(np.array([-1000.0, 1.0]), 1.0)))
    assert [float(x) for x in a] == [0.0, 0.0, -1.0]
    np.testing.assert_allclose(b[0], [0.0, 1 / (1 + np.exp(-1.0))])


def test_array_api_strict_computes_the_stable_forms_without_signals():
    # numpy underneath: exp's correct underflow to 0 raised under np.errstate(all="raise")
    xp = pytest.importorskip("array_api_strict")
    z, y = sg.scalar("z_as"), sg.scalar("y_as")
    for e, at, want in ((sg.softplus(z), 1000.0, 1000.0), (sg.log(sg.sigmoid(z)), -1000.0, -1000.0),
                        (sg.log(1 - sg.sigmoid(z)), 1000.0, -1000.0),
                        (sg.bce(sg.sigmoid(z), y), 1000.0, 0.0)):
        f = sg.compile(e, [z, y], backend=xp)
        r = _strict(lambda f=f, at=at: f(xp.asarray(at), 1.0))
        assert float(r) == pytest.approx(want)


def test_log_of_a_product_of_positives_is_stable():
    z, y = sg.scalars("z_lp y_lp")
    s = sg.sigmoid
    e1 = sg.log(s(z) * sg.exp(y) / (1 + sg.exp(z)))  # y - softplus(-z) - softplus(z)
    e2 = sg.log(s(z) / (s(z) * s(-z)))  # softplus(z)
    e3 = sg.log(s(z) * s(y))
    f = sg.compile([e1, e2, e3, sg.grad(e1, z)], [z, y])
    r = _strict(lambda: f(np.array([-1000.0, 3.0]), np.array([0.5, -2.0])))
    want = [[-999.5, -2.0 - np.logaddexp(0, -3.0) - np.logaddexp(0, 3.0)],
            [0.0, np.logaddexp(0, 3.0)], [-1000.0 - np.logaddexp(0, -0.5),
                                          -np.logaddexp(0, -3.0) - np.logaddexp(0, 2.0)],
            [1.0, -np.tanh(1.5)]]
    for got, w in zip(r, want):
        np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-300)


def test_subnormal_softmax_shares_are_right_and_underflow_only_when_asked():
    # logits 720 apart: the smaller share is e^-720 = 1.2e-313, a subnormal double; the mean's
    # 1/N times it is rounded correctly, and numpy raises on that underflow only when asked
    # (trust.md, "Numerical stability")
    Z = sg.matrix("Zsub", (2, 3))
    Y = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    z = np.array([[720.0, 0.0, 0.0], [0.0, 1.0, 2.0]])
    loss = sg.mean(-sg.sum(Y * sg.log_softmax(Z), axis=1))
    g = sg.grad(loss, Z)
    ref = (np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(
        1, keepdims=True) - Y) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = sg.evaluate(g, {Z: z})
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)
    assert got[0, 1] == ref[0, 1] > 0  # the subnormal share, halved, not flushed to 0
    with np.errstate(under="raise"), pytest.raises(FloatingPointError):
        sg.evaluate(g, {Z: z})


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_softplus_of_an_array_without_a_tail_is_the_same_values(dtype):
    # an array with no entry below -30 skips the tail and its wheres (1.45x numpy's own
    # log(softplus(x)) before): the same values, the same dtype, as with a tail entry beside
    from symgrad import runtime as rt

    x = np.linspace(-30.0, 50.0, 801).astype(dtype)
    fast = rt.log_softplus(np, x)
    general = rt.log_softplus(np, np.append(x, dtype(-40.0)))
    assert fast.dtype == dtype and general[-1] == pytest.approx(-40.0)
    np.testing.assert_array_equal(fast, general[:-1])


def test_softplus_in_place_and_log_softplus_in_float16():
    # softplus written into a buffer raised numpy's underflow under errstate(all="raise"), and
    # float16's softplus underflows from -17, where log(softplus) was -inf (a review probe)
    x = sg.vector("x_sp16", "n")
    f = sg.compile(sg.softplus(-x), [x])
    with np.errstate(all="raise"):
        assert f(np.array([1000.0])) == 0.0
    g = sg.compile(sg.log(sg.softplus(x)), [x])
    got = g(np.array([-20.0, -9.0, 0.0, 1.0], np.float16))
    assert got.dtype == np.float16 and np.all(np.isfinite(got))
    ref = np.log(np.logaddexp(0.0, np.array([-20.0, -9.0, 0.0, 1.0])))
    np.testing.assert_allclose(got.astype(float), ref, rtol=2e-3)


def test_the_softmax_family_of_the_largest_logits_raises_nothing_on_array_api_strict():
    # x - max overflowed to -inf with numpy's warning, which array_api_strict (computing with
    # numpy, no errstate of its own) let through (a cross-backend probe)
    xps = pytest.importorskip("array_api_strict")
    M = sg.matrix("M_aas", (1, 3))
    x = np.array([[1e308, 1e308, -1e308]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lse = sg.compile(sg.logsumexp(M, axis=1), [M], backend=xps)(x)
        sm = sg.compile(sg.softmax(M, axis=1), [M], backend=xps)(x)
    np.testing.assert_allclose(np.asarray(lse._array), [1e308 + np.log(2.0)])
    np.testing.assert_allclose(np.asarray(sm._array), [[0.5, 0.5, 0.0]])


@pytest.mark.parametrize("backend", ["numpy", "numba", "dask"])
def test_logsumexp_and_log_softmax_of_an_empty_axis_warn_not(backend):
    """log of a sum of nothing is -inf: numpy said "divide by zero encountered in log"
    (found by review; the contract promises no numpy warnings for finite inputs)."""
    pytest.importorskip(backend)
    n, B = sg.vector("n_ew", "N"), sg.matrix("B_ew", (3, "K"))
    cases = [(sg.logsumexp(n), n, np.zeros(0), -np.inf),
             (sg.log_softmax(n), n, np.zeros(0), np.zeros(0)),
             (sg.logsumexp(B, axis=1), B, np.zeros((3, 0)), [-np.inf] * 3),
             (sg.logsumexp(B, axis=0), B, np.zeros((3, 0)), np.zeros(0)),
             (sg.log_softmax(B, axis=1), B, np.zeros((3, 0)), np.zeros((3, 0)))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for e, x, value, want in cases:
            got = sg.compile(e, [x], backend=backend)(value)
            got = got.compute() if backend == "dask" else got
            np.testing.assert_array_equal(got, want)
            assert np.shape(got) == np.shape(want)


def test_forms_that_only_look_like_a_stable_pattern_are_left_alone():
    """Mutation testing found no test of near misses: c - sigmoid(z) read as sigmoid(-z) for
    any constant c, a sum of exps laid out along the other axis read as a softmax, and a
    softmax and a log_softmax of one array on different axes sharing their work."""
    z = sg.scalar("z_nm")
    f = sg.log(2.0 - sg.sigmoid(z))
    s = 1 / (1 + np.exp(-0.3))
    got = sg.compile([f, sg.grad(f, z)], [z])(0.3)
    np.testing.assert_allclose(got, [np.log(2 - s), -s * (1 - s) / (2 - s)], rtol=1e-14)
    Z = sg.matrix("Z_nm", (3, 3))
    rows = sg.reshape(sg.sum(sg.exp(Z), axis=1), (1, 3))  # row sums laid out as a row
    zv = np.arange(9.0).reshape(3, 3) / 4
    e = np.exp(zv)
    np.testing.assert_allclose(
        sg.compile(sg.exp(Z) / sg.broadcast_to(rows, (3, 3)), [Z])(zv), e / e.sum(1)[None, :],
        rtol=1e-14)
    X = sg.matrix("X_nm", (3, 4))
    xv = np.arange(12.0).reshape(3, 4) / 5
    sm0, lsm1 = sg.compile([sg.softmax(X, axis=0), sg.log_softmax(X, axis=1)], [X])(xv)
    ex = np.exp(xv)
    np.testing.assert_allclose(sm0, ex / ex.sum(0, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(lsm1, xv - np.log(ex.sum(1, keepdims=True)), rtol=1e-14)


def test_a_numerator_over_one_plus_exp_is_a_times_the_sigmoid():
    """a / (1 + exp(-x)): its gradient in x was inf / inf = nan at x = -800 (found by
    mutation testing's side look); only a numerator of exactly 1 was rewritten."""
    a, x = sg.scalar("a_ns"), sg.scalar("x_ns")
    f = a / (1.0 + sg.exp(-x))
    for at, want in [(-800.0, [0.0, 0.0, 0.0]), (800.0, [2.0, 0.0, 1.0])]:
        got = _strict(sg.evaluate, [f, sg.grad(f, x), sg.grad(f, a)], {a: 2.0, x: at})
        np.testing.assert_allclose(got, want, atol=1e-300)
    s = 1 / (1 + np.exp(-0.3))
    np.testing.assert_allclose(sg.evaluate(sg.grad(f, x), {a: 2.0, x: 0.3}), 2 * s * (1 - s),
                               rtol=1e-14)
    assert str(sg.simplify(f)) == "a_ns*sigmoid(x_ns)"
    e = sg.exp(x) / (1.0 + sg.exp(x))  # (a numerator exp(x) itself: sigmoid, not exp(x)
    for at, want in [(800.0, [1.0, 0.0]), (-800.0, [0.0, 0.0])]:  # sigmoid(-x), inf * 0)
        np.testing.assert_allclose(_strict(sg.evaluate, [e, sg.grad(e, x)], {x: at}), want,
                                   atol=1e-300)


def test_a_logsumexp_and_a_softmax_of_one_array_on_different_axes():
    # (mutation testing: pairing them by array alone, whatever the axes, passed)
    M = sg.matrix("M_la", (2, 3))
    Mv = np.array([[0.1, 2.0, -1.0], [1.5, 0.3, 0.7]])
    lse, sm = sg.compile([sg.logsumexp(M, axis=0), sg.softmax(M, axis=1)], [M])(Mv)
    np.testing.assert_allclose(lse, np.log(np.exp(Mv).sum(0)), rtol=1e-14)
    np.testing.assert_allclose(sm, np.exp(Mv) / np.exp(Mv).sum(1, keepdims=True), rtol=1e-14)


def test_a_multiple_of_exp_over_one_plus_exp_is_a_multiple_of_sigmoid():
    """c exp(z) / (1 + exp(z)) was rewritten as c exp(z) sigmoid(-z), whose derivative took
    sigmoid(-z)' as -sigmoid(z) (1 - sigmoid(z)): exp(z) times that term's rounding gave
    -0.113 at z = 35 for 2 exp(z) / (1 + exp(z)), whose slope is 1.3e-15 (a probe)."""
    z, a = sg.scalars("z_mx a_mx")
    e = sg.exp(z)
    cases = [(2 * e / (1 + e), lambda t: 2.0), (a * e / (1 + e), lambda t: 1.5),
             (e * a / (1 + e), lambda t: 1.5), (-e / (1 + e), lambda t: -1.0),
             (sg.exp(z + a) / (1 + e), lambda t: np.exp(1.5)),
             (sg.exp(a + z) / (e + 1), lambda t: np.exp(1.5)),
             (sg.exp(z - a) / (1 + e), lambda t: np.exp(-1.5))]
    for f, c in cases:
        g = sg.grad(f, z)
        for t in (-800.0, -35.0, 0.0, 0.7, 20.0, 30.0, 35.0, 800.0):
            s, r = _ref_sigmoid(t), _ref_sigmoid(-t)
            assert _strict(sg.evaluate, f, {z: t, a: 1.5}) == \
                pytest.approx(c(t) * s, rel=1e-14, abs=1e-300)
            # the slope c s (1 - s): its rounding is that of 1 - s, tiny where s is near 1
            assert _strict(sg.evaluate, g, {z: t, a: 1.5}) == pytest.approx(
                c(t) * s * r, rel=1e-12, abs=abs(c(t)) * 2e-16)
    w, v = sg.vector("w_mx", 3), sg.vector("v_mx", 3)
    f = sg.sum(w * sg.exp(v) / (1 + sg.exp(v)))
    vv, wv = np.array([20.0, 35.0, -30.0]), np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(sg.evaluate(sg.grad(f, v), {v: vv, w: wv}),
                               wv * _ref_sigmoid(vv) * _ref_sigmoid(-vv), rtol=1e-12,
                               atol=6e-16)


def test_the_derivative_of_sigmoid_of_minus_z_keeps_its_precision_for_large_z():
    """A probe: sigmoid(-z)' was written -s(z) (1 - s(z)), which rounds to 0 (or to noise of
    1e-16) once z is above 37; times a large factor that noise became the answer:
    exp(z) sigmoid(-z) (= sigmoid(z)) had slope 1 at z = 40, sigmoid(z)/sigmoid(-z) (= e^z)
    slope 0, exp(z) softplus(-z) curvature -1. It is -s(z) s(-z) now, exact on both sides."""
    z = sg.scalar("z_sm")
    cases = [  # (f, its true slope at t)
        (sg.exp(z) * sg.sigmoid(-z), lambda t: _ref_sigmoid(t) * _ref_sigmoid(-t)),
        (sg.sigmoid(z) / sg.sigmoid(-z), np.exp),
        (z * sg.exp(z) * sg.sigmoid(-z),
         lambda t: _ref_sigmoid(t) + t * _ref_sigmoid(t) * _ref_sigmoid(-t)),
        (sg.sigmoid(-z), lambda t: -_ref_sigmoid(t) * _ref_sigmoid(-t))]
    for f, slope in cases:
        g = sg.grad(f, z)
        for t in (-40.0, -35.0, 0.3, 35.0, 40.0, 100.0):
            assert sg.evaluate(g, {z: t}) == pytest.approx(slope(t), rel=1e-6, abs=1e-15)
    # the curvature of exp(z) softplus(-z), about -e^-z / 2 for large z: tiny, not -1
    h = sg.hessian(sg.exp(z) * sg.softplus(-z), z)
    for t in (40.0, 100.0, 400.0):
        assert abs(sg.evaluate(h, {z: t})) < 1e-12


def test_a_quotient_over_one_plus_exp_differentiates_right_for_any_numerator():
    """A probe: a / (1 + exp(u)) is a sigmoid(-u); exp(2z), exp(z/2), z^2, 2 + exp(z) and an
    exp(z) over 1 + exp(z + 1) gave gradients off by a factor 2, of the wrong sign or of order 1
    at z = 40 (through sigmoid(-u)'s derivative above, or an unrecognised exp(z) factor)."""
    z = sg.scalar("z_qe")
    s = _ref_sigmoid
    cases = [  # (f, its slope at t)
        (sg.exp(2 * z) / (1 + sg.exp(z)), lambda t: np.exp(t) * s(t) * (1 + s(-t))),
        (sg.exp(z) / (1 + sg.exp(z + 1)), lambda t: np.exp(-1.0) * s(t + 1) * s(-t - 1)),
        (sg.exp(z / 2) / (1 + sg.exp(z)), lambda t: np.exp(t / 2) * s(-t) * (0.5 - s(t))),
        (z**2 / (1 + sg.exp(z)), lambda t: t * s(-t) * (2 - t * s(t))),
        ((2 + sg.exp(z)) / (1 + sg.exp(z)), lambda t: -s(t) * s(-t))]
    for f, slope in cases:
        g = sg.grad(f, z)
        for t in (-30.0, 0.3, 20.0, 40.0, 100.0):
            want = slope(t)
            assert sg.evaluate(g, {z: t}) == pytest.approx(want, rel=1e-6, abs=1e-15), (f, t)


def test_simplify_keeps_a_multiple_of_exp_over_one_plus_exp_stable():
    """A probe: simplify wrote 2 exp(z)/(1 + exp(z)) as 2 exp(z) sigmoid(-z), nan at z = 800
    (inf 0), with slope 2 at z = 40; it is 2 sigmoid(z) there too."""
    z = sg.scalar("z_ss")
    for f, c in ((2 * sg.exp(z) / (1 + sg.exp(z)), 2.0),
                 (sg.exp(z + 1) / (1 + sg.exp(z)), np.e)):
        s = sg.simplify(f)
        assert "sigmoid(-" not in str(s)
        assert _strict(sg.evaluate, s, {z: 800.0}) == pytest.approx(c, rel=1e-15)
        assert sg.evaluate(sg.grad(s, z), {z: 40.0}) == pytest.approx(
            c * _ref_sigmoid(40.0) * _ref_sigmoid(-40.0), rel=1e-6, abs=1e-16)


def test_the_log_of_a_quotient_with_a_power_of_a_positive_is_stable():
    """A probe: log(exp(z)/(1 + exp(z))^2), the log of the logistic density, was -inf at
    z = 400 and its gradient nan, where the same with the square written as a product was
    z - 2 softplus(z): a power of a positive is positive."""
    z = sg.scalar("z_lp2")
    f = sg.log(sg.exp(z) / (1 + sg.exp(z)) ** 2)
    for t in (-800.0, 400.0):
        assert _strict(sg.evaluate, f, {z: t}) == pytest.approx(-abs(t), rel=1e-12)
        assert _strict(sg.evaluate, sg.grad(f, z), {z: t}) == pytest.approx(
            -np.sign(t), rel=1e-12)


def test_a_sigmoid_or_softplus_to_a_fractional_power_differentiates_at_its_tail():
    """A probe: the power rule writes p s**(p - 1) s', and the next orders s**(p - 2),
    s**(p - 3), which overflow where s = sigmoid(x) is tiny: sigmoid(x)**0.3 had an -inf
    second derivative at x = -500 (true 6.5e-67), sigmoid(x)**-0.3 an -inf slope at -700.
    It is exp(-p softplus(-x)) before differentiating; sigmoid(x)**2 stays as it is."""
    x, y = sg.scalars("x_fp y_fp")
    f = sg.sigmoid(x) ** 0.3  # = exp(-0.3 softplus(-x)): its k-th derivative is ~ 0.3^k f
    g1 = sg.grad(f, x)
    g2 = sg.grad(g1, x)
    g3 = sg.grad(g2, x)
    t = -500.0
    fv = np.exp(-0.3 * _ref_softplus(-t))
    got = _strict(sg.evaluate, [f, g1, g2, g3, sg.hessian(f, x)], {x: t})
    np.testing.assert_allclose(got, [fv, 0.3 * fv, 0.09 * fv, 0.027 * fv, 0.09 * fv],
                               rtol=1e-12)
    assert _strict(sg.evaluate, sg.grad(sg.sigmoid(x) ** -0.3, x), {x: -700.0}) == \
        pytest.approx(-0.3 * np.exp(0.3 * 700.0), rel=1e-12)
    # softplus: like sqrt(softplus(x)), whose second derivative is fine
    h = sg.grad(sg.grad(sg.softplus(x) ** 0.5, x), x)
    want = sg.evaluate(sg.grad(sg.grad(sg.sqrt(sg.softplus(x)), x), x), {x: t})
    assert _strict(sg.evaluate, h, {x: t}) == pytest.approx(want, rel=1e-12, abs=1e-300)
    H = sg.hessian(sg.sigmoid(x) ** y, [x, y])
    assert np.all(np.isfinite(sg.evaluate([h for r in H for h in r], {x: -700.0, y: 0.5})))
    assert str(sg.grad(sg.sigmoid(x) ** 2, x)) == \
        "2*sigmoid(x_fp)*sigmoid(x_fp)*(1 - sigmoid(x_fp))"


def test_a_log_sigmoid_under_a_transpose_and_a_reshape_peels_the_views_in_order():
    """Found by mutation testing: bce(reshape(transpose(sigmoid(Z)), (6,)), y) is rewritten on
    the logits, the views rebuilt innermost first (transpose, then reshape); rebuilt the other
    way round, the reshape to (6,) came first and the transpose of a vector raised IndexError."""
    Z = sg.matrix("Z_pv", (2, 3))
    yv = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    zv = np.array([[-600.0, -1.5, 0.0], [2.0, 300.0, 900.0]])
    u = zv.T.reshape(6)
    f = sg.bce(sg.reshape(sg.transpose(sg.sigmoid(Z)), (6,)), sg.const(yv))
    _check(_strict(sg.evaluate, f, {Z: zv}), _ref_softplus(u) - yv * u)
    g = sg.log(1.0 + sg.reshape(sg.transpose(sg.exp(Z)), (6,)))
    _check(_strict(sg.evaluate, g, {Z: zv}), _ref_softplus(u))


def test_a_sum_is_positive_only_where_every_term_is_nonnegative():
    """Found by mutation testing: y + exp(w) is not known positive (y may be negative), so
    log((exp(z) (y + exp(w)))**2) is not 2 log of the product (log of -4: nan); it is
    log(16) at z = w = 0, y = -5."""
    z, w, y = sg.scalars("z_sp w_sp y_sp")
    f = sg.log((sg.exp(z) * (y + sg.exp(w))) ** 2)
    assert _strict(sg.evaluate, f, {z: 0.0, w: 0.0, y: -5.0}) == pytest.approx(np.log(16.0),
                                                                            rel=1e-15)


def test_a_quotient_of_positives_is_positive_in_a_log_of_a_product():
    """Found by mutation testing: (1 + exp(w))/(2 + exp(u)) is a positive quotient, so
    log(sigmoid(z) * quotient) splits into -softplus(-z) + log(quotient): finite at
    z = -800 (-800 + log(2/3)) with slope 1, not -inf and nan."""
    z, w, u = sg.scalars("z_pq w_pq u_pq")
    f = sg.log(sg.sigmoid(z) * ((1.0 + sg.exp(w)) / (2.0 + sg.exp(u))))
    got = _strict(sg.evaluate, [f, sg.grad(f, z)], {z: -800.0, w: 0.0, u: 0.0})
    np.testing.assert_allclose(got, [-800.0 + np.log(2.0 / 3.0), 1.0], rtol=1e-15)


def test_log_of_exp_plus_one_is_softplus_with_the_one_on_either_side():
    """Found by mutation testing: log(exp(z) + 1), the one written second, is softplus(z)
    as log(1 + exp(z)) is: 800 at z = 800 with slope 1, not inf."""
    z = sg.scalar("z_1e")
    for f in (sg.log(sg.exp(z) + 1.0), sg.log(1.0 + sg.exp(z))):
        got = _strict(sg.evaluate, [f, sg.grad(f, z)], {z: 800.0})
        np.testing.assert_allclose(got, [800.0, 1.0], rtol=1e-15)


def test_exp_over_one_plus_a_shifted_exp_keeps_the_shift_in_its_cofactor():
    """Found by mutation testing: exp(x)/(1 + exp(x - 2)) is e^2 sigmoid(x - 2), the cofactor
    exp(x - (x - 2)) = e^2; with the sign of the shift lost it was e^-2 sigmoid(x - 2)
    (0.0161 at x = 0, not 0.8808)."""
    x = sg.scalar("x_cs")
    f = sg.exp(x) / (1.0 + sg.exp(x - 2.0))
    for t in (0.0, -30.0, 40.0, 800.0):
        assert _strict(sg.evaluate, f, {x: t}) == pytest.approx(
            np.exp(2.0) * _ref_sigmoid(t - 2.0), rel=1e-12, abs=1e-300), t


def test_a_weighted_sum_over_one_axis_by_a_sum_over_another_is_no_softmax():
    """Found by mutation testing: sum(exp(Z) W, axis=0) / sum(exp(Z), axis=1) sums over
    different axes, so it is not sum(softmax(Z) W), the attention rewrite: it is the plain
    quotient, as numpy computes it."""
    Z, W = sg.matrix("Z_wa", (3, 3)), sg.matrix("W_wa", (3, 3))
    zv, wv = np.arange(9.0).reshape(3, 3) / 4, np.arange(9.0).reshape(3, 3)
    f = sg.sum(sg.exp(Z) * W, axis=0) / sg.sum(sg.exp(Z), axis=1)
    np.testing.assert_allclose(_strict(sg.evaluate, f, {Z: zv, W: wv}),
                               (np.exp(zv) * wv).sum(0) / np.exp(zv).sum(1), rtol=1e-12)


def test_a_product_with_a_square_is_not_a_quotient():
    """Found by mutation testing: x (1 + exp(-z))**2 has a power with exponent 2, which is no
    reciprocal; only **-1 is read as 1/b (read as x/(1 + exp(-z)) = x sigmoid(z), it was 1 at
    x = 2, z = 0, not 8)."""
    x, z = sg.scalars("x_sq z_sq")
    f = x * (1.0 + sg.exp(-z)) ** 2
    for t in (0.0, -1.5, 3.0):
        assert _strict(sg.evaluate, f, {x: 2.0, z: t}) == pytest.approx(
            2.0 * (1.0 + np.exp(-t)) ** 2, rel=1e-14), t


def test_one_minus_sigmoid_to_a_fractional_power_differentiates_at_its_tail():
    """Found by mutation testing: (1 - sigmoid(z))**0.3 is sigmoid(-z)**0.3, rewritten to
    exp(-0.3 softplus(z)) before differentiating; left as a power it was 0 at z = 500 and its
    derivatives nan (true 7.2e-66, -0.3 and 0.09 times that)."""
    z = sg.scalar("z_om")
    f = (1.0 - sg.sigmoid(z)) ** 0.3
    g1 = sg.grad(f, z)
    g2 = sg.grad(g1, z)
    fv = np.exp(-0.3 * _ref_softplus(500.0))
    np.testing.assert_allclose(_strict(sg.evaluate, [f, g1, g2], {z: 500.0}),
                               [fv, -0.3 * fv, 0.09 * fv], rtol=1e-12)


def test_a_gradient_with_respect_to_a_named_value_is_stabilized():
    """Found by mutation testing: the gradient of log(sigmoid(h)) with respect to a named
    h = 2 x is stabilized like any other (sigmoid(-h)): 1 at x = -400, where the unstabilized
    sigmoid(h) (1 - sigmoid(h))/sigmoid(h) is 0/0."""
    x = sg.scalar("x_nv")
    h = (2.0 * x).named("h")
    g = sg.grad(sg.log(sg.sigmoid(h)), h)
    assert str(g) == "sigmoid(-h)"
    assert _strict(sg.evaluate, g, {x: -400.0}) == 1.0


def test_stabilizing_inside_a_named_value_keeps_its_name():
    """Found by mutation testing: h = sin(log(sigmoid(z))) named "h" is rebuilt with
    -softplus(-z) inside; the rebuilt node keeps the name, so d(exp(h) y)/dy prints exp(h)."""
    z, y = sg.scalars("z_kn y_kn")
    h = sg.sin(sg.log(sg.sigmoid(z))).named("h")
    assert str(sg.grad(sg.exp(h) * y, y)) == "exp(h)"


def test_a_reciprocal_power_of_one_plus_exp_is_a_sigmoid():
    """(1 + exp(-z))**-1, sympy's way of writing a sigmoid, was left as a power: its gradient
    (1 + exp(-z))**-2 exp(-z) was 0 from z = -355 and overflowed (nan) from z = -710."""
    z = sg.scalar("z_rp")
    f = (1 + sg.exp(-z)) ** -1
    g, h = sg.grad(f, z), sg.hessian(f, z)
    for t in ZS:
        s = _ref_sigmoid(t)
        assert _strict(sg.evaluate, f, {z: t}) == pytest.approx(s, rel=RTOL, abs=1e-300)
        # (sigmoid' is s (1 - s) of the value: 1 - s is rounding's for t > 0, as trust.md says)
        assert _strict(sg.evaluate, g, {z: t}) == pytest.approx(
            s * _ref_sigmoid(-t), rel=1e-9, abs=1e-16 if t > 0 else 1e-300), t
        assert np.isfinite(_strict(sg.evaluate, h, {z: t}))
    assert _strict(sg.evaluate, g, {z: -400.0}) == pytest.approx(1.9151695967140057e-174,
                                                                 rel=1e-12, abs=1e-300)
    y = sg.scalar("y_rp")  # a numerator times the reciprocal: y sigmoid(z)
    np.testing.assert_allclose(_strict(sg.evaluate, sg.grad(y * f, z), {y: 2.0, z: -400.0}),
                               2 * 1.9151695967140057e-174, rtol=1e-12)
    # another power, or a base that is no 1 + exp, is what it is
    assert _strict(sg.evaluate, (1 + sg.exp(-z)) ** -2, {z: 1.0}) == pytest.approx(
        (1 + np.exp(-1.0)) ** -2, rel=1e-14, abs=1e-300)
    assert _strict(sg.evaluate, (2 + sg.exp(-z)) ** -1, {z: 1.0}) == pytest.approx(
        1 / (2 + np.exp(-1.0)), rel=1e-14, abs=1e-300)


def test_attention_written_with_a_matrix_product_is_a_softmax():
    """exp(v) @ W / sum(exp(v)), dot(exp(v), W) / sum(exp(v)), dot(exp(v) * (1/Z), W) (the
    builder takes the scalar 1/Z out of the dot) and (exp(S) @ V) / sum(exp(S), axis=1,
    keepdims=True) were nan (inf/inf) where exp overflows: each is a softmax times the matrix."""
    v = sg.vector("v_at", 3)
    W = np.array([0.5, -1.0, 2.0])
    E, Z = sg.exp(v), sg.sum(sg.exp(v))
    M = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]])
    forms = {"E@W/Z": (E @ W) / Z, "dot(E,W)/Z": sg.dot(E, W) / Z,
             "dot(E*(1/Z),W)": sg.dot(E * (1 / Z), W), "W@E/Z": sg.dot(W, E) / Z,
             "M@E/Z": sg.sum((M @ E) / Z)}
    for at in (np.array([0.0, 1.0, 1000.0]), np.array([0.3, -0.2, 0.1])):
        p = np.exp(at - at.max())
        p /= p.sum()
        for k, f in forms.items():
            w = M.sum(0) if k == "M@E/Z" else W
            got = _strict(sg.evaluate, f, {v: at})
            np.testing.assert_allclose(got, p @ w, rtol=1e-12, err_msg=k)
            dg = _strict(sg.evaluate, sg.grad(f, v), {v: at})
            np.testing.assert_allclose(dg, p * (w - p @ w), rtol=1e-9, atol=1e-300, err_msg=k)
    S = sg.matrix("S_at", (2, 3))
    V = np.arange(1.0, 7.0).reshape(3, 2)
    sv = np.array([[0.0, 1.0, 800.0], [2.0, 900.0, 3.0]])
    P = np.exp(sv - sv.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    f = sg.sum(((sg.exp(S) @ V) / sg.sum(sg.exp(S), axis=1, keepdims=True)) ** 2)
    ref = sg.sum((sg.softmax(S, axis=1) @ V) ** 2)
    assert _strict(sg.evaluate, f, {S: sv}) == \
        pytest.approx(((P @ V) ** 2).sum(), rel=1e-12, abs=1e-300)
    np.testing.assert_allclose(_strict(sg.evaluate, sg.grad(f, S), {S: sv}),
                               sg.evaluate(sg.grad(ref, S), {S: sv}), rtol=1e-9, atol=1e-12)
    # columns: A @ exp(S) / sum(exp(S), axis=0) is A @ softmax(S, axis=0)
    A = np.array([[1.0, -2.0], [0.5, 3.0]])
    f = sg.sum((A @ sg.exp(S)) / sg.sum(sg.exp(S), axis=0))
    Pc = np.exp(sv - sv.max(0))
    Pc /= Pc.sum(0)
    assert _strict(sg.evaluate, f, {S: sv}) == pytest.approx((A @ Pc).sum(), rel=1e-12, abs=1e-300)
    # rows summed where columns are contracted (or the other way) is no softmax: as numpy
    S2 = sg.matrix("S2_at", (2, 2))
    sm = np.array([[0.1, 0.2], [0.4, 0.7]])
    for f, want in (((sg.exp(S2) @ A) / sg.sum(sg.exp(S2), axis=0),
                     (np.exp(sm) @ A) / np.exp(sm).sum(0)),
                    ((A @ sg.exp(S2)) / sg.sum(sg.exp(S2), axis=1, keepdims=True),
                     (A @ np.exp(sm)) / np.exp(sm).sum(1, keepdims=True))):
        np.testing.assert_allclose(_strict(sg.evaluate, f, {S2: sm}), want, rtol=1e-12)


def test_a_weighted_mean_written_with_means_is_a_softmax():
    """mean(exp(v) w) / mean(exp(v)) is (sum/3) / (sum/3), which the weighted-mean rule did not
    see through: nan where exp overflows, while the sums' form was 2.0. Symbolic sizes too."""
    v = sg.vector("v_wm", 3)
    W = np.array([0.5, -1.0, 2.0])
    f = sg.mean(sg.exp(v) * W) / sg.mean(sg.exp(v))
    at = np.array([0.0, 1.0, 1000.0])
    assert _strict(sg.evaluate, f, {v: at}) == pytest.approx(2.0, abs=1e-300)
    np.testing.assert_allclose(_strict(sg.evaluate, sg.grad(f, v), {v: at}), 0.0, atol=1e-300)
    u = sg.vector("u_wm", "n")
    f = sg.mean(sg.exp(u) * u) / sg.mean(sg.exp(u))
    assert _strict(sg.evaluate, f, {u: np.array([1.0, 1000.0])}) == \
        pytest.approx(1000.0, abs=1e-300)
    g = _strict(sg.evaluate, sg.grad(f, u), {u: np.array([1.0, 1000.0])})
    np.testing.assert_allclose(g, [0.0, 1.0], atol=1e-12)
    # different divisors are not cancelled: (sum/3) / (sum/2)
    x = sg.vector("x_wm", 2)
    f = (sg.sum(sg.exp(x) * W[:2]) / 3) / (sg.sum(sg.exp(x)) / 2)
    xv = np.array([0.2, -0.4])
    assert _strict(sg.evaluate, f, {x: xv}) == pytest.approx(
        (np.exp(xv) @ W[:2] / 3) / (np.exp(xv).sum() / 2), rel=1e-13, abs=1e-300)
    # nor a divisor that may be 0 or an array: only a count (a constant, a symbolic size)
    from symgrad.rewrite import stabilize
    d = sg.scalar("d_wm")
    for den in (d, sg.vector("dv_wm", 2)):
        f = sg.sum(sg.exp(x) * W[:2] / den) / sg.sum(sg.exp(x) / den)
        assert "softmax" not in {n.op.name for n in sg.topo_order(stabilize([f]))}
    f = (sg.sum(sg.exp(x) * W[:2]) / d) / (sg.sum(sg.exp(x)) / d)
    assert "softmax" not in {n.op.name for n in sg.topo_order(stabilize([f]))}


def test_one_minus_sigmoid_under_a_view_is_a_sigmoid_of_minus_z():
    """bce((1 - sigmoid(M)).T, Y) was inf (its gradient nan) where bce(1 - sigmoid(M), Y.T) is
    finite, and exp(M) (1 - sigmoid(M.T)).T was nan where exp(M) (1 - sigmoid(M)) is 1: the
    1 - sigmoid form was recognised only without a view around it."""
    M = sg.matrix("M_ov", (2, 3))
    mv = np.array([[0.0, 1.0, 1000.0], [2.0, 3.0, -1000.0]])
    Y = np.full((3, 2), 0.25)
    ok = sg.sum(sg.bce(1 - sg.sigmoid(M), Y.T))
    for f in (sg.sum(sg.bce((1 - sg.sigmoid(M)).T, Y)),
              sg.sum(sg.bce(sg.reshape(1 - sg.sigmoid(M), (3, 2)), Y))):
        assert _strict(sg.evaluate, f, {M: mv}) == pytest.approx(
            sg.evaluate(ok, {M: mv}), rel=1e-13, abs=1e-300)
        np.testing.assert_allclose(_strict(sg.evaluate, sg.grad(f, M), {M: mv}),
                                   sg.evaluate(sg.grad(ok, M), {M: mv}), rtol=1e-12)
    f = sg.exp(M) * (1 - sg.sigmoid(M.T)).T
    np.testing.assert_allclose(_strict(sg.evaluate, f, {M: mv}), _ref_sigmoid(mv), rtol=1e-13)
    lg = sg.log((1 - sg.sigmoid(M)).T)
    np.testing.assert_allclose(_strict(sg.evaluate, lg, {M: mv}),
                               -_ref_softplus(mv).T, rtol=1e-13)


def test_the_log_of_a_product_with_a_reciprocal_is_the_log_of_the_quotient():
    """log(sigmoid(z) (1/exp(z))) was -inf at z = 1000 (its gradient nan), where
    log(sigmoid(z)/exp(z)) is -1000: log(1/b) was a plain log of an underflowed 1/b."""
    z = sg.scalar("z_lr")
    for f, ref in ((sg.log(sg.sigmoid(z) * (1 / sg.exp(z))), lambda t: -_ref_softplus(t)),
                   (sg.log((1 + sg.exp(z)) * (1 / sg.sigmoid(z))),
                    lambda t: _ref_softplus(t) + _ref_softplus(-t)),
                   (sg.log(1 / sg.sigmoid(z)), lambda t: _ref_softplus(-t))):
        for t in ZS:
            assert _strict(sg.evaluate, f, {z: t}) == \
                pytest.approx(ref(t), rel=1e-12, abs=1e-300), (f, t)
            assert _strict(sg.compile(f, [z]), t) == pytest.approx(ref(t), rel=1e-12, abs=1e-300)
        assert np.isfinite(_strict(sg.evaluate, sg.grad(f, z), {z: 1000.0}))
        assert np.isfinite(_strict(sg.evaluate, sg.grad(f, z), {z: -1000.0}))
    assert _strict(sg.evaluate, sg.grad(sg.log(sg.sigmoid(z) * (1 / sg.exp(z))), z),
                   {z: 1000.0}) == pytest.approx(-1.0, abs=1e-300)
    # 1/b of a b that may be negative is not split: log(1/(z**2 - 1)) is numpy's
    f = sg.log(1 / (z * z - 1))
    assert _strict(sg.evaluate, f, {z: 2.0}) == pytest.approx(-np.log(3.0), rel=1e-14, abs=1e-300)


def test_a_shifted_exp_over_one_plus_exp_is_recognised_however_the_shift_is_written():
    """exp(2 - z)/(1 + exp(-z)) and exp(z + 3)/(1 + exp(z + 1)) were nan at |z| = 1000: the
    builder folds the constants, so exp's argument is no sum with the denominator's in it;
    exp(-2 z) sigmoid(2 z) was nan at z = -1000, -(2 z) being another node than -2 z."""
    z, y = sg.scalars("z_sh y_sh")
    for f, ref in ((sg.exp(-z + 2) / (1 + sg.exp(-z)), lambda t: np.exp(2) * _ref_sigmoid(-t)),
                   (sg.exp(z + 3) / (1 + sg.exp(z + 1)), lambda t: np.exp(2) * _ref_sigmoid(t + 1)),
                   (2 * sg.exp(2 - 3 * z) / (1 + sg.exp(-3 * z + 1)),
                    lambda t: 2 * np.exp(1) * _ref_sigmoid(1 - 3 * t)),
                   (sg.exp(-2 * z) * sg.sigmoid(2 * z), lambda t: _ref_sigmoid(-2 * t)),
                   (sg.exp(z * y - 2) / (1 + sg.exp(z * y + 1)),  # (y = 1.5 below)
                    lambda t: np.exp(-3) * _ref_sigmoid(1.5 * t + 1)),
                   (sg.exp(-z - z) * sg.sigmoid(2 * z), lambda t: _ref_sigmoid(-2 * t))):
        for t in ZS:
            assert _strict(sg.evaluate, f, {z: t, y: 1.5}) == pytest.approx(ref(t), rel=1e-12,
                                                                           abs=1e-300)
            assert np.isfinite(_strict(sg.evaluate, sg.grad(f, z), {z: t, y: 1.5}))
    # other exponents are no shift of the denominator's: as numpy computes them
    for f, ref, ts in (
            (sg.exp(2 * z) / (1 + sg.exp(z)), lambda t: np.exp(2 * t) / (1 + np.exp(t)),
             (-1.5, 0.4, 3.0)),
            (sg.exp(z * z) / (1 + sg.exp(z)), lambda t: np.exp(t * t) / (1 + np.exp(t)),
             (-1.5, 0.4, 3.0)),
            # exp(800) sigmoid(z) would be inf 0: a shift this large is left as written
            (sg.exp(z + 800) / (1 + sg.exp(z)), lambda t: np.exp(t + 800) / (1 + np.exp(t)),
             (-1000.0, -900.0, -1.5))):
        for t in ts:
            with np.errstate(under="ignore", over="ignore"):  # (inf at -1.5, as numpy)
                assert sg.evaluate(f, {z: t}) == \
                    pytest.approx(ref(t), rel=1e-12, abs=1e-300), (f, t)


def test_a_summed_softmax_or_attention_written_with_a_reciprocal_is_stable():
    """sum(exp(v) (1/sum(exp(v)))) (also with **-1, keepdims) is built as
    sum(exp(v)) / sum(exp(v)), inf/inf; and (exp(v) @ B) (1/sum(exp(v))) had the right value
    but a nan gradient, its sum being sum(exp(v) @ B) / sum(exp(v))."""
    v = sg.vector("v_sr", 3)
    e = sg.exp(v)
    B = np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]])
    for at in (np.array([1000.0, 745.0, 40.0]), np.array([0.3, -0.2, 0.5])):
        p = np.exp(at - at.max())
        p /= p.sum()
        for f, val in ((sg.sum(e * (1 / sg.sum(e))), 1.0), (sg.sum(e * sg.sum(e) ** -1), 1.0),
                       (sg.sum(e * (1 / sg.sum(e, keepdims=True))), 1.0),
                       (sg.sum(sg.exp(v + 1) * (1 / sg.sum(e))), np.e)):
            assert _strict(sg.evaluate, f, {v: at}) == pytest.approx(val, rel=1e-12, abs=1e-300)
            np.testing.assert_allclose(_strict(sg.evaluate, sg.grad(f, v), {v: at}), 0.0,
                                       atol=1e-12)
        w = np.array([1.0, -1.0])
        for f in ((e @ B) * (1 / sg.sum(e)), (e @ B) * sg.sum(e) ** -1):
            np.testing.assert_allclose(_strict(sg.evaluate, f, {v: at}), p @ B, rtol=1e-12)
            g = _strict(sg.evaluate, sg.grad(sg.sum(f * w), v), {v: at})
            np.testing.assert_allclose(g, p * (B @ w - p @ B @ w), rtol=1e-9, atol=1e-300)


def test_log_of_one_plus_a_positive_multiple_of_exp_is_a_shifted_softplus():
    """log(1 + 3 exp(z)) was inf from z = 709 (the true value 746.1 at z = 745): it is
    softplus(z + log 3); a negative multiple has no such form and stays numpy's."""
    z = sg.scalar("z_lm")
    for c in (3.0, 0.5, 1e-300):
        for f in (sg.log(1 + c * sg.exp(z)), sg.log(sg.exp(z) * c + 1)):
            for t in ZS:
                want = np.logaddexp(0.0, t + np.log(c))
                assert _strict(sg.evaluate, f, {z: t}) == pytest.approx(want, rel=1e-12, abs=1e-300)
                g = _strict(sg.evaluate, sg.grad(f, z), {z: t})
                assert g == pytest.approx(_ref_sigmoid(t + np.log(c)), rel=1e-9, abs=1e-300)
    f = sg.log(1 - 3 * sg.exp(z))
    assert _strict(sg.evaluate, f, {z: -3.0}) == pytest.approx(np.log(1 - 3 * np.exp(-3.0)),
                                                              rel=1e-14, abs=1e-300)


def test_a_softmax_over_a_transposed_sum_of_exp_is_recognised():
    """exp(Z) / sum(exp(Z.T), 0, keepdims=True).T (the row sums, written on the transpose)
    was nan where exp overflows: a transposed sum that keeps its axes is the sum of the
    transposed exp, over the axes the permutation moves them to."""
    Z = sg.matrix("Z_ts", (2, 3))
    zv = np.array([[0.0, 1.0, 1000.0], [2.0, 900.0, 3.0]])
    for axis, f in ((1, sg.exp(Z) / sg.transpose(sg.sum(sg.exp(Z.T), 0, keepdims=True))),
                    (0, sg.exp(Z) / sg.transpose(sg.sum(sg.exp(Z.T), 1, keepdims=True)))):
        want = sg.evaluate(sg.softmax(Z, axis=axis), {Z: zv})
        np.testing.assert_allclose(_strict(sg.evaluate, f, {Z: zv}), want, rtol=1e-13)
        g = _strict(sg.evaluate, sg.grad(sg.sum(f * f), Z), {Z: zv})
        np.testing.assert_allclose(g, sg.evaluate(sg.grad(sg.sum(sg.softmax(Z, axis=axis) ** 2),
                                                          Z), {Z: zv}), rtol=1e-9, atol=1e-300)
    T = sg.tensor("T_ts", (2, 3, 4))
    tv = np.random.default_rng(0).normal(size=(2, 3, 4)) * 300
    perm = (2, 0, 1)
    f = sg.exp(sg.transpose(T, perm)) / sg.transpose(sg.sum(sg.exp(T), 1, keepdims=True), perm)
    tp = tv.transpose(perm)
    want = np.exp(tp - tp.max(2, keepdims=True))
    want /= want.sum(2, keepdims=True)
    np.testing.assert_allclose(_strict(sg.evaluate, f, {T: tv}), want, rtol=1e-12, atol=1e-300)
    # a sum that drops an axis, transposed, is what numpy computes
    U = sg.tensor("U_ts", (2, 3, 2))
    uv = np.arange(12.0).reshape(2, 3, 2) / 10
    f = sg.exp(sg.transpose(sg.sum(U, 2))) / sg.transpose(sg.sum(sg.exp(U), 2))
    np.testing.assert_allclose(_strict(sg.evaluate, f, {U: uv}),
                               np.exp(uv.sum(2).T) / np.exp(uv).sum(2).T, rtol=1e-13)


def test_a_number_folded_into_a_reciprocal_keeps_the_quotient_stable():
    """2 exp(v) (1/sum(exp(v))) is built as (2/sum(exp(v))) exp(v), and 2 exp(v) s**-1 as
    (2 s**-1) exp(v): neither was read as a quotient (nan where exp overflows), nor was
    exp(z) (2/(1 + exp(z))), whose quotient becomes 2 sigmoid(-z) first."""
    v = sg.vector("v_nf", 3)
    e = sg.exp(v)
    w = np.array([1.0, 2.0, 3.0])
    for at in (np.array([745.0, 300.0, 700.0]), np.array([0.3, -0.2, 0.5])):
        p = np.exp(at - at.max())
        p /= p.sum()
        for c, f in ((2.0, 2 * e * (1 / sg.sum(e))), (2.0, 2 * e * sg.sum(e) ** -1),
                     (2.0, e * (1 / sg.sum(e)) + e * (1 / sg.sum(e))),
                     (3.0, e * (3 * sg.sum(e) ** -1)),
                     (2.0, e * sg.sum(e, keepdims=True) ** -1 * 2),
                     (-1.5, e * (-1.5 / sg.sum(e, keepdims=True))),
                     # a number on a view of another: 2 reshape(3/s)
                     (6.0, 2 * (e * (3 / sg.sum(e, keepdims=True)))),
                     (6.0, (2 * e) * (3 / sg.sum(e, keepdims=True)))):
            np.testing.assert_allclose(_strict(sg.evaluate, f, {v: at}), c * p, rtol=1e-12,
                                       atol=1e-300)
            g = _strict(sg.evaluate, sg.grad(sg.sum(f * w), v), {v: at})
            np.testing.assert_allclose(g, c * p * (w - p @ w), rtol=1e-9, atol=1e-300)
    z = sg.scalar("z_nf")
    for f, c in ((sg.exp(z) * (2 / (1 + sg.exp(z))), 2.0),
                 (3 * sg.exp(z) * (1 + sg.exp(z)) ** -1, 3.0),
                 (sg.exp(z) * (2 * sg.sigmoid(-z)), 2.0)):
        for t in ZS:
            assert _strict(sg.evaluate, f, {z: t}) == pytest.approx(c * _ref_sigmoid(t),
                                                                   rel=1e-12, abs=1e-300)
            assert np.isfinite(_strict(sg.evaluate, sg.grad(f, z), {z: t}))
    # a number times a reciprocal of no pattern is the product numpy computes
    y = sg.scalar("y_nf")
    assert _strict(sg.evaluate, y * (2 / (y + 3)), {y: 1.5}) == \
        pytest.approx(1.5 * 2 / 4.5, abs=1e-300)


@pytest.mark.parametrize("p", [-1, -2, -3])
def test_a_sigmoid_or_softplus_to_a_negative_integer_power_differentiates_at_its_tail(p):
    """sigmoid(z)**-1 and softplus(z)**-1 had a gradient of -inf (their Hessian nan) at
    z = -400, where it is -5.2e173: **-1 was taken as a quotient, and left to the power rule's
    s**-2 when it was no quotient of a known form. simplify wrote the gradient of
    softplus**-1 as -sigmoid/softplus**2, inf at -400: its far points now include +-400."""
    z = sg.scalar("z_np")
    t = -400.0 if p == -1 else -200.0  # (where the values are finite)
    # p s**(p - 1) s' in logs: s**(p - 1) alone overflows
    for f, want in ((sg.sigmoid(z) ** p, p * np.exp(-p * _ref_softplus(-t)) * _ref_sigmoid(-t)),
                    (sg.softplus(z) ** p,
                     p * np.exp((p - 1) * np.log(_ref_softplus(t)) - _ref_softplus(-t)))):
        g = sg.grad(f, z)
        assert _strict(sg.evaluate, g, {z: t}) == pytest.approx(want, rel=1e-9, abs=1e-300)
        assert _strict(sg.compile(g, [z]), t) == pytest.approx(want, rel=1e-9, abs=1e-300)
        assert _strict(sg.compile(sg.simplify(g), [z]), t) == \
            pytest.approx(want, rel=1e-9, abs=1e-300)
        assert np.isfinite(_strict(sg.evaluate, sg.hessian(f, z), {z: t}))


@pytest.mark.parametrize("p", [-1.0, -0.5, -2.0, 0.5, 3.0])
def test_a_power_of_exp_is_an_exp_and_its_derivatives_keep_their_range(p):
    """exp(z)**p is built as exp(p z): the power rule's exp(z)**(p - 2) underflowed at
    z = 300 where exp(z)**p does not (the Hessian of exp(z)**-1 had the wrong sign, that of
    exp(z)**-2 was 0), and log(exp(z)**y) had a Hessian of -2 in z, inf at z = 700."""
    z, y = sg.scalars("z_pe y_pe")
    f = sg.exp(z) ** p
    assert f.op.name == "exp"
    for t in (300.0, 1.0, -200.0):
        if abs(p * t) > 690:
            continue  # (exp(p z) itself is out of range)
        want = np.exp(p * t)
        assert _strict(sg.evaluate, f, {z: t}) == pytest.approx(want, rel=1e-13, abs=1e-300)
        assert _strict(sg.evaluate, sg.grad(f, z), {z: t}) == \
            pytest.approx(p * want, rel=1e-13, abs=1e-300)
        assert _strict(sg.evaluate, sg.hessian(f, z), {z: t}) == \
            pytest.approx(p * p * want, rel=1e-13, abs=1e-300)
    g = sg.log(sg.exp(z) ** y)
    assert _strict(sg.evaluate, sg.hessian(g, z), {z: 300.0, y: -1.0}) == 0.0
    np.testing.assert_allclose(_strict(sg.evaluate, [g] + sg.grad(g, [z, y]), {z: 700.0, y: 1.5}),
                               [1050.0, 1.5, 700.0], rtol=1e-14)


def test_a_reciprocal_of_a_quotient_or_by_a_reciprocal_is_a_product():
    """(1/softplus(y))**-1 differentiated by the power rule through (1/s)**-2 and s**2 was
    0 at y = -400 (softplus(y)**2 underflows), where its derivative sigmoid(y) is 1.9e-174:
    (a/b)**-1 is b/a and a/b**-1 is a b when built."""
    z, y = sg.scalars("z_rq y_rq")
    f = (1 / sg.softplus(y)) ** -1
    assert _strict(sg.evaluate, sg.grad(f, y), {y: -400.0}) == pytest.approx(_ref_sigmoid(-400.0),
                                                                            rel=1e-12, abs=1e-300)
    f = (sg.sigmoid(2 * z) ** -1 / sg.softplus(y)) ** -1
    assert _strict(sg.evaluate, sg.grad(f, y), {z: -10.0, y: -400.0}) == pytest.approx(
        _ref_sigmoid(-20.0) * _ref_sigmoid(-400.0), rel=1e-12, abs=1e-300)
    # at 0 and inf, as numpy: 1/(0**-1) = 1/inf = 0 = 1*0
    x = sg.scalar("x_rq")
    with np.errstate(divide="ignore"):
        assert sg.evaluate(1.0 / x ** -1, {x: 0.0}) == 0.0


def test_a_sigmoid_over_an_exp_is_the_sigmoid_of_minus_z():
    """log(sigmoid(z)/exp(z)) became -softplus(-z) - z, which cancels to 0 for z << 0
    (-1.4e-87 at z = -200): sigmoid(z)/exp(z) is sigmoid(-z), and c sigmoid(u)/exp(u + k)
    is c exp(-k) sigmoid(-u)."""
    z = sg.scalar("z_so")
    for f, ref, dref in ((sg.log(sg.sigmoid(z) / sg.exp(z)), lambda t: -_ref_softplus(t),
                          lambda t: -_ref_sigmoid(t)),
                         (sg.log(sg.sigmoid(z) * (1 / sg.exp(z))), lambda t: -_ref_softplus(t),
                          lambda t: -_ref_sigmoid(t)),
                         (sg.log(3 * sg.sigmoid(z) / sg.exp(z + 1)),
                          lambda t: np.log(3) - 1 - _ref_softplus(t), lambda t: -_ref_sigmoid(t))):
        for t in ZS:
            assert _strict(sg.evaluate, f, {z: t}) == \
                pytest.approx(ref(t), rel=1e-12, abs=1e-300), (f, t)
            assert _strict(sg.evaluate, sg.grad(f, z), {z: t}) == pytest.approx(
                dref(t), rel=1e-12, abs=1e-300), (f, t)


def test_a_large_shift_goes_into_the_exponent_so_float32_keeps_its_range():
    """exp(z + 100)/(1 + exp(z)) became exp(100) sigmoid(z), and exp(100) is inf in float32:
    nan at z = -150 (true 1.9e-22) and inf at -60 (true 2.35e17). A cofactor beyond 1e30
    is exp(100 - softplus(-z)) instead, on every spelling of the shifted forms."""
    z = sg.vector("z_l32", 2)
    v = np.array([-150.0, -60.0], np.float32)
    want = np.exp(v.astype(float) + 100) / (1 + np.exp(v.astype(float)))
    forms = [(sg.exp(z + 100) / (1 + sg.exp(z)), 1.0), (2 * sg.exp(z + 100) / (1 + sg.exp(z)), 2.0),
             (-sg.exp(z + 100) / (1 + sg.exp(z)), -1.0),
             (sg.exp(z + 100) * sg.sigmoid(-z), 1.0), (sg.exp(z + 100) * (1 - sg.sigmoid(z)), 1.0)]
    for f, c in forms:
        for got in (sg.compile(f, [z])(v), sg.evaluate(f, {z: v})):
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, c * want, rtol=1e-5)
        g = sg.compile(sg.grad(sg.sum(f), z), [z])(v)
        np.testing.assert_allclose(g, c * want * _ref_sigmoid(-v.astype(float)), rtol=1e-4)
    # a shifted softmax: exp(z + 100)/sum(exp(z)) at [-60, 0] is [e^40, e^100]: the first
    # is 2.35e17 in float32 (the second overflows, as it must)
    f = sg.exp(z + 100) / sg.sum(sg.exp(z), keepdims=True)
    with np.errstate(over="ignore"):
        got = sg.compile(f, [z])(np.array([-60.0, 0.0], np.float32))
    assert got[0] == pytest.approx(np.exp(40.0) / (1 + np.exp(-60.0)), rel=1e-5)
    # and in float64 the value is the same as before
    s = sg.scalar("s_l32")
    f = sg.exp(s + 100) / (1 + sg.exp(s))
    for t in (-1000.0, -150.0, 0.5, 1000.0):
        assert _strict(sg.evaluate, f, {s: t}) == pytest.approx(
            np.exp(100 - _ref_softplus(-t)), rel=1e-12, abs=1e-300)


def test_numbers_are_gathered_only_into_a_float32_number():
    """(v 1e20)(w 1e20) was built as 1e40 (v ⊙ w), inf for float32 v and w whose product is
    3: two numbers are gathered only where their product is a normal float32."""
    v, w = sg.vector("v_g32", 2), sg.vector("w_g32", 2)
    e = (v * 1e20) * (w * 1e20)
    a = np.array([1e-20, 2e-20], np.float32)
    b = np.array([3e-20, 1e-20], np.float32)
    for got in (sg.compile(e, [v, w])(a, b), sg.evaluate(e, {v: a, w: b})):
        np.testing.assert_allclose(got, [3.0, 2.0], rtol=1e-5)
    assert "1e+40" not in str(e)
    assert str(2.0 * (3.0 * v)) == "6 v_g32"  # (ordinary numbers are still gathered)


def test_the_review_of_this_sessions_rules():
    """An adversarial review: a sigmoid over exp(u + y) with a variable shift y was left nan
    at u = -800 (exp(-w) was matched against -u); (exp(Z) @ v) / rowsums with a vector v,
    which broadcasts to (m, m), was taken for softmax(Z) @ v; and the new build rules dropped
    names ((a/b).named("q")**-1 printed b/a)."""
    x, y = sg.scalars("x_rv y_rv")
    e = sg.sigmoid(x) / sg.exp(x + y)
    assert _strict(sg.evaluate, e, {x: -800.0, y: -1.2}) == pytest.approx(np.exp(1.2),
                                                                         rel=1e-12)
    assert _strict(sg.evaluate, e, {x: 0.3, y: -1.2}) == pytest.approx(
        _ref_sigmoid(0.3) / np.exp(-0.9), rel=1e-12)
    Z, v = sg.matrix("Z_rv", (3, 4)), sg.vector("v_rv", 4)
    f = (sg.exp(Z) @ v) / sg.sum(sg.exp(Z), axis=1, keepdims=True)
    zv, vv = np.arange(12.0).reshape(3, 4) / 6 - 1, np.array([1.0, -2.0, 0.5, 3.0])
    assert f.shape == (3, 3)
    np.testing.assert_allclose(_strict(sg.evaluate, f, {Z: zv, v: vv}),
                               (np.exp(zv) @ vv) / np.exp(zv).sum(1, keepdims=True), rtol=1e-12)
    # a second review: column sums reshaped into a column scale rows (no softmax, old and
    # new rules alike); an array of -1 under a view crashed; two integers multiplied
    S, B = sg.matrix("S_rv", (2, 2)), sg.matrix("B_rv", (2, 2))
    col = sg.reshape(sg.sum(sg.exp(S), 0, keepdims=True), (2, 1))
    sv, bv = np.array([[0.5, -1.0], [2.0, 0.3]]), np.array([[1.0, 2.0], [-0.5, 1.5]])
    E = np.exp(sv)
    np.testing.assert_allclose(_strict(sg.evaluate, (B @ sg.exp(S)) / col, {S: sv, B: bv}),
                               (bv @ E) / E.sum(0).reshape(2, 1), rtol=1e-12)
    np.testing.assert_allclose(_strict(sg.evaluate, sg.exp(S) / col, {S: sv}),
                               E / E.sum(0).reshape(2, 1), rtol=1e-12)
    # (laid out as numpy aligns them, (2,) for (1, 2), they are the softmax's, also where exp
    # overflows)
    row = sg.reshape(sg.sum(sg.exp(S), 0, keepdims=True), (2,))
    np.testing.assert_allclose(_strict(sg.evaluate, sg.exp(S) / row, {S: 1000 * sv}),
                               [[0.0, 0.0], [1.0, 1.0]], atol=1e-300)
    u, w = sg.vector("u_rv", 6), sg.vector("w_rv", 3)
    f = sg.exp(u) * sg.reshape(sg.sum(sg.exp(w)) ** -np.ones((2, 3)), (6,))
    uu, ww = np.linspace(-1, 1, 6), np.array([0.3, -1.2, 0.8])
    np.testing.assert_allclose(_strict(sg.evaluate, f, {u: uu, w: ww}),
                               np.exp(uu) / np.exp(ww).sum(), rtol=1e-12)
    p, q = sg.vector("p_rv", 3), sg.vector("q_rv", 3)
    r = sg.compile(sg.argmax(p) / sg.argmax(q) ** -1, [p, q])(np.array([0.3, -1.2, 0.8]),
                                                               np.array([0.1, 1.5, -0.7]))
    assert r == 2.0 and np.asarray(r).dtype == np.float64
    a, b = sg.scalars("a_rv b_rv")
    assert str((a / b).named("q_rv") ** -1) == "q_rv**(-1)"
    assert str(a / (b ** -1).named("r_rv")) == "a_rv/r_rv"
    assert str(sg.exp(a).named("e_rv") ** 2) == "e_rv**2"


def test_a_quotient_by_exp_or_by_a_sigmoid_differentiates_in_range():
    """The quotient rule's a exp(z)/exp(z)**2 and a sigmoid'/sigmoid**2 overflowed: the
    gradient of y/exp(z) was -inf at z = -400 (true -1.04e174) and nan at 710, that of
    y/sigmoid(z) -inf at -400, and the Gaussian NLL x**2/(2 exp(s)) + s/2 had a gradient of
    -inf below s = -372 (a probe): a / (c exp(w)) is (a/c) exp(-w), a / sigmoid(u) is
    a exp(softplus(-u))."""
    z, y = sg.scalars("z_qe y_qe")
    for f, d in ((y / sg.exp(z), lambda t: -2.0 * np.exp(-t)),
                 (y / (3 * sg.exp(z)), lambda t: -2.0 / 3 * np.exp(-t)),
                 ((sg.exp(z) / y) ** -1, lambda t: -2.0 * np.exp(-t)),
                 (y / sg.sigmoid(z), lambda t: -2.0 * np.exp(-t)),
                 (y / (1 - sg.sigmoid(z)), lambda t: 2.0 * np.exp(t))):
        for t in (-400.0, -1.5, 0.3, 2.0):
            if abs(t) > 700 or (d(t) != 0 and not np.isfinite(d(t))):
                continue
            assert _strict(sg.evaluate, sg.grad(f, z), {z: t, y: 2.0}) == \
                pytest.approx(d(t), rel=1e-9, abs=1e-300), (f, t)
    # a number beyond 1e30 over exp(z) goes into the exponent, as a cofactor does
    f = (sg.exp(z) / 1e300) ** -1
    assert _strict(sg.evaluate, f, {z: 750.0}) == pytest.approx(np.exp(np.log(1e300) - 750),
                                                              rel=1e-12)
    f = (sg.exp(z) / 1e30) ** -1  # (1e30 exp(-z) in float32: 3.8e-14 at z = 100)
    g = _strict(sg.compile([f, sg.grad(f, z)], [z]), np.float32([100.0]))
    assert g[0].dtype == np.float32
    np.testing.assert_allclose(g, [[1e30 * np.exp(-100.0)], [-1e30 * np.exp(-100.0)]], rtol=1e-5)
    s, x = sg.scalars("s_qe x_qe")
    f = x ** 2 / (2 * sg.exp(s)) + s / 2
    got = _strict(sg.compile([f, sg.grad(f, s), sg.hessian(f, s)], [s, x]), -400.0, 1.5)
    want = 1.125 * np.exp(400.0)
    np.testing.assert_allclose(got, [want - 200.0, 0.5 - want, want], rtol=1e-12)


def _no_overflow(fn, *args):
    """fn(*args) with overflow, invalid values and division by zero raised (an entry of
    exp(-1600) may underflow to 0: that is its value)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            return fn(*args)


def test_what_sympy_writes_of_a_softmax_entry_dot_or_hessian_reads_back_stable():
    # sympy writes softmax(v)[0] as exp(v[0])/sum(exp(v)), a dot with it as
    # exp(v)^T w/sum(exp(v)), the cross-entropy gradient as (sum(w)/sum(exp(v))) exp(v) - w and
    # the Hessian of logsumexp with exp(v) exp(v)^T/sum(exp(v))**2: read back, each was inf/inf
    # = nan at v = 800; each 1/sum(exp(v)) now goes into an exp factor, exp(u - logsumexp(v))
    v, w = sg.vector("v_se", 3), sg.vector("w_se", 3)
    y = sg.scalar("y_se")
    forms = [sg.take(sg.softmax(v), 0), sg.dot(sg.softmax(v), w),
             sg.grad(-sg.sum(w * sg.log_softmax(v)), v), sg.hessian(sg.logsumexp(v), v),
             sg.sum(sg.softmax(v) ** 2), sg.jacobian(sg.softmax(v), v),
             sg.take(sg.grad(sg.logsumexp(v), v), 2)]
    wv = np.array([0.2, 0.5, 0.3])
    for big in (np.array([800.0, -800.0, 3.0]), np.array([-750.0, -760.0, -770.0])):
        for i, e in enumerate(forms):
            back = sg.from_sympy(sg.to_sympy(e))
            want = sg.evaluate(e, {v: big, w: wv})
            # (the Hessian's p - p**2 at p = 0.99995 cancels: exp(v - lse) of a v of -750
            # carries 750 ulps, the native softmax fewer; trust.md's precision limits)
            np.testing.assert_allclose(_no_overflow(sg.evaluate, back, {v: big, w: wv}), want,
                                       rtol=1e-12, atol=1e-13 if i in (3, 5) else 1e-300)
    small = {v: np.array([0.3, -0.2, 0.1]), w: wv}
    for e in forms:
        back = sg.from_sympy(sg.to_sympy(e))
        np.testing.assert_allclose(sg.evaluate(back, small), sg.evaluate(e, small), rtol=1e-14)
    f = sg.from_sympy(sg.to_sympy(sg.dot(sg.softmax(v), w)))
    np.testing.assert_allclose(sg.evaluate(sg.grad(f, v), small), _fd_grad(f, v, small),
                               rtol=1e-7)
    # written by hand: an exp of anything over a summed exp, a square over its square
    s = sg.sum(sg.exp(v))
    big = {v: np.array([800.0, 799.0, 0.0]), y: 799.5}
    lse = 800 + np.log1p(np.exp(-1.0) + np.exp(-800.0))
    for e, want in ((sg.exp(y) / s, np.exp(799.5 - lse)),
                    (sg.exp(y) * sg.exp(sg.take(v, 1)) / s ** 2, np.exp(799.5 + 799 - 2 * lse)),
                    (sg.sum(sg.exp(2.0 * v)) / s ** 2,
                     np.exp(2 * (np.array([800.0, 799.0, 0.0]) - lse)).sum())):
        np.testing.assert_allclose(_no_overflow(sg.evaluate, e, big), want, rtol=1e-13)
    # where the factors 1/s outnumber what the exps take: left as written
    assert "logsumexp" not in str(sg.simplify(sg.exp(sg.take(v, 0)) / s ** 2))
    assert "logsumexp" not in str(sg.simplify(y / s))


def test_what_sympy_writes_of_a_sigmoids_derivatives_reads_back_stable():
    # sympy's derivative of 1/(1 + exp(-x)) is exp(-x)/(1 + exp(-x))**2, its second
    # 2 exp(-2x)/(1 + exp(-x))**3 - ...: read back, inf/inf = nan at x = -800; now products
    # of sigmoids, c exp(j u + k)/(1 + exp(u))**m = c exp(k) sigmoid(u)**j sigmoid(-u)**(m-j)
    sympy = pytest.importorskip("sympy")
    x = sg.scalar("x_sd")
    X = sympy.Symbol("x_sd", real=True)
    points = [-800.0, -30.0, -1.0, 0.0, 0.5, 30.0, 800.0]
    for f in (sg.sigmoid(x), sg.softplus(x), sg.log(sg.sigmoid(x))):
        d1 = sympy.diff(sg.to_sympy(f), X)
        for d, native in ((d1, sg.grad(f, x)), (sympy.diff(d1, X), sg.grad(sg.grad(f, x), x))):
            back = sg.from_sympy(d)
            for p in points:
                got = _no_overflow(sg.evaluate, back, {x: p})
                # (sigmoid(x) - sigmoid(x)**2 cancels where sigmoid(x) is near 1: absolute)
                np.testing.assert_allclose(got, sg.evaluate(native, {x: p}), rtol=1e-12,
                                           atol=1e-15)
            g = _no_overflow(sg.evaluate, sg.grad(back, x), {x: -800.0})
            assert np.isfinite(g)
    # written by hand, with a factor and a shift, in a product with the power's reciprocal
    y = sg.scalar("y_sd")
    e = 3.0 * y * sg.exp(2.0 * x + 1.0) * (1.0 + sg.exp(x)) ** -3.0
    for p in (-800.0, -2.0, 0.0, 2.0, 800.0):
        want = 3.0 * 0.5 * np.e * _ref_sigmoid(p) ** 2 * _ref_sigmoid(-p)
        np.testing.assert_allclose(_no_overflow(sg.evaluate, e, {x: p, y: 0.5}), want,
                                   rtol=1e-13)
    # an exponent not between 0 and m is left as written (exp(3x)/(1 + exp(x))**2 grows)
    assert "sigmoid" not in str(sg.simplify(sg.exp(3.0 * x) / (1.0 + sg.exp(x)) ** 2))


def test_the_review_of_the_summed_exp_and_sigmoid_power_rules():
    # found by a review of the two rules above: (s**2)**-1 was read as one 1/s (a wrong
    # value at every point); a coefficient 0 that _affine keeps ((y + x) - y) divided by zero;
    # an exp the rule had filled took a second 1/s (exp(x - 2 lse) exp(y), 0 inf); a product
    # of products never reached the rule
    x, y = sg.scalars("x_rv y_rv")
    v = sg.vector("v_rv", 3)
    s = sg.sum(sg.exp(v))
    V = np.array([0.3, -1.2, 2.0])
    S = np.exp(V).sum()
    e = sg.exp(x) * (s**2) ** -1
    np.testing.assert_allclose(sg.evaluate(e, {x: 0.5, v: V}), np.exp(0.5) / S**2, rtol=1e-14)
    np.testing.assert_allclose(sg.compile(e, [x, v])(0.5, V), np.exp(0.5) / S**2, rtol=1e-14)
    e = sg.outer(sg.exp(v), sg.exp(v)) * (s**3) ** -2
    np.testing.assert_allclose(sg.evaluate(e, {v: V}), np.outer(np.exp(V), np.exp(V)) / S**6,
                               rtol=1e-13)
    u = (y + x) - y
    e = sg.exp(2 * u) / (1 + sg.exp(u)) ** 2
    np.testing.assert_allclose(sg.evaluate(e, {x: 0.3, y: 0.2}),
                               np.exp(0.6) / (1 + np.exp(0.3)) ** 2, rtol=1e-14)
    assert np.isfinite(sg.evaluate(sg.grad(e, x), {x: 0.3, y: 0.2}))
    assert _no_overflow(sg.evaluate, e, {x: 800.0, y: 0.2}) == 1.0  # sigmoid(x)**2
    big = {x: 800.0, y: 795.0, v: np.array([800.0, 799.0, -5.0])}
    lse = 800 + np.log1p(np.exp(-1.0) + np.exp(-805.0))
    want = np.exp(800 + 795 - 2 * lse)
    for e in (sg.exp(x) * sg.exp(y) / s**2, sg.exp(x) / s * sg.exp(y) / s,
              sg.exp(x) * sg.exp(y) / s / s, (sg.exp(x) / s) * (sg.exp(y) / s)):
        np.testing.assert_allclose(_no_overflow(sg.evaluate, e, big), want, rtol=1e-12)
    want = np.exp(1600 + 795 - 3 * lse)
    for e in (sg.exp(x) * sg.exp(x) * sg.exp(y) / s**3, sg.exp(x) / s**3 * sg.exp(x) * sg.exp(y)):
        np.testing.assert_allclose(_no_overflow(sg.evaluate, e, big), want, rtol=1e-12)


def test_a_bare_power_of_one_plus_exp_and_softmax_entries_in_float32():
    # (1 + exp(z))**-2 alone (no factor) was left to the power rule: its gradient
    # -2 sigmoid(-z)**3 exp(z) was 0 inf = nan from z = 89 in float32 (710 in float64)
    z = sg.scalar("z_bp")
    v = sg.vector("v_bp", 2)
    for m in (2, 3):
        f = (1 + sg.exp(z)) ** -float(m)
        assert sg.evaluate(f, {z: 0.3}) == pytest.approx((1 + np.exp(0.3)) ** -m, rel=1e-14)
        g = sg.grad(f, z)
        for p in (-1000.0, -3.0, 0.5, 1000.0):
            want = -m * _ref_sigmoid(-p) ** m * _ref_sigmoid(p)
            np.testing.assert_allclose(_no_overflow(sg.evaluate, g, {z: p}), want, rtol=1e-13,
                                       atol=1e-300)
        gv = sg.compile(sg.grad(sg.sum((1 + sg.exp(v)) ** -float(m)), v), [v])
        assert np.all(np.isfinite(_no_overflow(gv, np.array([89.0, 1000.0], np.float32))))
    # what sympy writes of a softmax's entries and dots reads back as the softmax itself:
    # exp(v - logsumexp(v)) carried |logsumexp| ulps, 2e-4 in float32 at logits of 1e4
    u, w = sg.vector("u_bp", 3), sg.vector("w_bp", 3)
    x = np.array([1e4, 1e4 - 1, 0], np.float32)
    wv = np.array([1, 0, 0], np.float32)
    for e in (sg.dot(sg.softmax(u), w), sg.take(sg.softmax(u), 0), sg.sum(sg.softmax(u) ** 2),
              sg.hessian(sg.logsumexp(u), u)):
        back = sg.from_sympy(sg.to_sympy(e))
        assert "logsumexp" not in str(back)
        got = _no_overflow(sg.evaluate, back, {u: x, w: wv})
        np.testing.assert_allclose(got, sg.evaluate(e, {u: x, w: wv}), rtol=2e-7, atol=1e-7)
        assert isinstance(got, float) or got.dtype == np.float32  # (a number: sg.evaluate's)


def test_the_second_review_of_the_summed_exp_and_sigmoid_power_rules():
    # the exp factor that is a multiple of u is found whichever comes first; has_candidates
    # finds the pattern in nodes listed users first (as autodiff lists new nodes)
    from symgrad.graph import topo_order
    from symgrad.rewrite import has_candidates

    x, y = sg.scalars("x_r2 y_r2")
    v = sg.vector("v_r2", 3)
    s = sg.sum(sg.exp(v))
    d = {x: -700.0, y: 690.0}
    for e in (sg.exp(-x) * sg.exp(y) / (1 + sg.exp(-x)) ** 2,
              sg.exp(y) * sg.exp(-x) / (1 + sg.exp(-x)) ** 2,
              sg.exp(y) * sg.exp(-x) * (1 + sg.exp(-x)) ** -2):
        np.testing.assert_allclose(_no_overflow(sg.evaluate, e, d), np.exp(-10.0), rtol=1e-12)
    # (1 + exp(x))**-3 alone, rewritten first, still meets the exp it multiplies
    e = 3.0 * y * sg.exp(2.0 * x + 1.0) * (1.0 + sg.exp(x)) ** -3.0
    for p in (-800.0, 0.5, 800.0):
        want = 3.0 * 0.5 * np.e * _ref_sigmoid(p) ** 2 * _ref_sigmoid(-p)
        np.testing.assert_allclose(_no_overflow(sg.evaluate, e, {x: p, y: 0.5}), want,
                                   rtol=1e-13, atol=1e-300)
    order = topo_order([sg.exp(x) * s**-1])
    assert has_candidates(order) and has_candidates(order[::-1])


def test_a_quotient_by_a_product_of_sigmoids_and_a_scaled_exp_under_one_plus():
    # 1/(sigmoid(z) (1 - sigmoid(z))) was inf at z = 40 (2.4e17) and its gradient nan; sympy's
    # factor and cancel write exp(z + 2) as exp(2) exp(z), and 1/(1 + exp(2) exp(z)) was no
    # sigmoid (gradient nan at z = 800), nor e exp(z)/(1 + e exp(z))**2 a product of sigmoids
    sympy = pytest.importorskip("sympy")
    z = sg.scalar("z_qs")
    s = sg.sigmoid
    f = 1 / (s(z) * (1 - s(z)))
    for p in (-40.0, 0.3, 40.0):
        want = 1 / (_ref_sigmoid(p) * _ref_sigmoid(-p))
        assert _no_overflow(sg.evaluate, f, {z: p}) == pytest.approx(want, rel=1e-13)
        g = _no_overflow(sg.evaluate, sg.grad(f, z), {z: p})
        assert g == pytest.approx(want * (_ref_sigmoid(p) - _ref_sigmoid(-p)), rel=1e-12)
    Z, E = sympy.Symbol("z_qs", real=True), sympy.exp
    cases = [(1 / (E(2) * E(Z) + 1), lambda p: _ref_sigmoid(-(p + 2))),
             (E(1) * E(Z) / (E(1) * E(Z) + 1) ** 2,
              lambda p: _ref_sigmoid(p + 1) * _ref_sigmoid(-(p + 1))),
             (1 / (1 + 2.5 * E(-Z / 2)), lambda p: _ref_sigmoid(p / 2 - np.log(2.5)))]
    for expr, want in cases:
        e = sg.from_sympy(expr)
        for p in (-800.0, -3.0, 0.3, 800.0):
            assert _no_overflow(sg.evaluate, e, {z: p}) == pytest.approx(want(p), rel=1e-12,
                                                                        abs=1e-300)
            assert np.isfinite(_no_overflow(sg.evaluate, sg.grad(e, z), {z: p}))


def test_a_sigmoid_or_its_power_deep_in_a_product_meets_the_exp():
    # the builder groups products from the left: sigmoid(-x) sigmoid(x) exp(x) is
    # (sigmoid(-x) sigmoid(x)) exp(x), and y sigmoid(-u)**2 exp(u) is (y s**2) exp(u): the
    # sigmoid was no direct factor, 0 inf = nan at 800; a bare (ONES + exp(u))**-2 that
    # broadcasts u was rewritten under a broadcast_to the product rule did not see through
    sympy = pytest.importorskip("sympy")
    x = sg.scalar("x_dp")
    u, y = sg.vector("u_dp", 2), sg.vector("y_dp", 2)
    s = sg.sigmoid
    for e, want in ((s(-x) * s(x) * sg.exp(x), lambda p: _ref_sigmoid(p) ** 2),
                    ((1 - s(x)) * s(-x) * sg.exp(x), lambda p: _ref_sigmoid(p) * _ref_sigmoid(-p)),
                    (s(-x) * sg.tanh(x) * sg.exp(x), lambda p: np.tanh(p) * _ref_sigmoid(p))):
        for p in (-800.0, 0.3, 800.0):
            assert _no_overflow(sg.evaluate, e, {x: p}) == pytest.approx(want(p), rel=1e-13,
                                                                        abs=1e-300)
            assert np.isfinite(_no_overflow(sg.evaluate, sg.grad(e, x), {x: p}))
    X = sympy.Symbol("x_dp", real=True)
    e = sg.from_sympy(sympy.diff(sympy.log(1 + sympy.exp(X)), X, 2))
    assert _no_overflow(sg.evaluate, e, {x: 710.0}) == 0.0
    uv, yv = np.array([0.3, 800.0]), np.array([1.5, 2.0])
    want = yv * _ref_sigmoid(uv) * _ref_sigmoid(-uv)
    for e in (sg.exp(u) * s(-u) ** 2 * y, y * s(-u) ** 2 * sg.exp(u),
              y * (1 + sg.exp(u)) ** -2 * sg.exp(u)):
        np.testing.assert_allclose(_no_overflow(sg.evaluate, e, {u: uv, y: yv}), want,
                                   rtol=1e-13, atol=1e-300)
    ones = np.ones((2, 2))
    e = sg.exp(u) * (ones + sg.exp(u)) ** -2
    np.testing.assert_allclose(_no_overflow(sg.evaluate, e, {u: uv}),
                               np.broadcast_to(_ref_sigmoid(uv) * _ref_sigmoid(-uv), (2, 2)),
                               rtol=1e-13, atol=1e-300)


def test_the_fourth_review_of_this_sessions_stability_rules():
    # (ONES + exp(x))**-2 that broadcasts x: its gradient was nan once the bare power was kept
    # from the sigmoid form; exp(x) times it, rebuilt, is a product the builder hoists a
    # broadcast out of; an exp over sigmoids goes into the exponent (exp(x + y) over
    # sigmoid(x) sigmoid(y) was exp(-720) exp(720) = inf at -360); a vector sigmoid times a
    # matrix one is a product of sigmoids too
    x, y = sg.scalars("x_r4 y_r4")
    v, A = sg.vector("v_r4", 3), sg.matrix("A_r4", (2, 3))
    S = sg.sigmoid
    f = sg.sum((np.ones(3) + sg.exp(x)) ** -2)
    assert _no_overflow(sg.evaluate, sg.grad(f, x), {x: 800.0}) == 0.0
    g = sg.sum((np.ones((2, 3)) + sg.exp(v)) ** -2)
    gv = _no_overflow(sg.evaluate, sg.grad(g, v), {v: np.array([800.0, 1.0, 2.0])})
    np.testing.assert_allclose(gv, -4 * (_ref_sigmoid(-np.array([800.0, 1.0, 2.0])) ** 2 *
                                         _ref_sigmoid(np.array([800.0, 1.0, 2.0]))),
                               rtol=1e-13, atol=1e-300)
    np.testing.assert_array_equal(
        _no_overflow(sg.evaluate, sg.exp(x) * (np.ones(3) + sg.exp(x)) ** -2, {x: 800.0}),
        np.zeros(3))
    assert _no_overflow(sg.evaluate, sg.exp(x + y) / (S(x) * S(y)),
                        {x: -360.0, y: -360.0}) == pytest.approx(1.0, rel=1e-13)
    assert _no_overflow(sg.evaluate, sg.exp(x) / S(x), {x: -800.0}) == pytest.approx(1.0)
    vv = np.array([-500.0, 2.0, 3.0])
    f = sg.sum(1 / (S(v) * S(A)))
    gv, gA = _no_overflow(sg.evaluate, sg.grad(f, [v, A]), {v: vv, A: np.zeros((2, 3))})
    assert np.all(np.isfinite(gv)) and np.all(np.isfinite(gA))
    assert gv[0] == pytest.approx(-2 * np.exp(500.0) * 2, rel=1e-12)
    # several exp factors over a product of sigmoids: each goes into the exponent
    xv = {v: np.array([-800.0, 1.0, 2.0])}
    w3 = sg.vector("w_r4", 3)
    e = sg.exp(v) * sg.exp(w3) / (S(v) * S(w3))
    got = _no_overflow(sg.evaluate, e, {**xv, w3: np.array([-800.0, 2.0, 0.5])})
    np.testing.assert_allclose(got, [1.0, (1 + np.e) * (1 + np.exp(2.0)),
                                     (1 + np.exp(2.0)) * (1 + np.exp(0.5))], rtol=1e-13)
    # a number beside the sigmoid's power: 3 sigmoid(-x)**2 exp(x)
    e = (S(-x) ** 2 * 3) * sg.exp(x)
    for p in (-800.0, 0.3, 800.0):
        want = 3 * _ref_sigmoid(-p) * _ref_sigmoid(p)
        assert _no_overflow(sg.evaluate, e, {x: p}) == pytest.approx(want, rel=1e-13,
                                                                    abs=1e-300)


def test_a_variable_shift_of_an_exp_goes_into_the_exponent_of_the_stable_form():
    # sigmoid(x)/exp(x + y) was rewritten to exp(-y) sigmoid(-x): inf 0 = nan at (800, -800),
    # where the value is 1 (a backends probe)
    x, y = sg.scalars("x_vs y_vs")
    f = sg.sigmoid(x) / sg.exp(x + y)
    for px, py in ((800.0, -800.0), (0.3, 0.2), (-800.0, -1.2)):
        # sigmoid(x) exp(-x - y) = exp(-x - y - softplus(-x)): no overflow in the reference
        want = np.exp(-px - py - np.logaddexp(0.0, -px))
        assert _no_overflow(sg.evaluate, f, {x: px, y: py}) == pytest.approx(want, rel=1e-12)
    g = _no_overflow(sg.evaluate, sg.grad(f, x), {x: 800.0, y: -800.0})
    assert g == pytest.approx(-1.0, rel=1e-12)
    # the cofactor a product with such exps: x exp(u + y) sigmoid(-u), exp(u + y) exp(t)/(1 +
    # exp(u)) were inf 0 (a variable-shift probe)
    u, t = sg.scalars("u_vs t_vs")
    e = x * sg.exp(u + y) * sg.sigmoid(-u)
    assert _no_overflow(sg.evaluate, e, {x: 2.0, u: -800.0, y: 800.0}) == pytest.approx(2.0)
    assert _no_overflow(sg.evaluate, e, {x: 2.0, u: 0.5, y: 0.25}) == pytest.approx(
        2.0 * np.exp(0.75) * _ref_sigmoid(-0.5), rel=1e-13)
    e = sg.exp(u + y) * sg.exp(t) / (1 + sg.exp(u))
    assert _no_overflow(sg.evaluate, e, {u: 800.0, y: 800.0, t: -800.0}) == pytest.approx(1.0)
