"""Regions below a tensor identity, computed as contractions (symgrad._contract).

A Jacobian or Hessian with respect to a matrix seeds reverse mode with the identity tensor
I(d, K). The numpy code computes the values below it as sums of pairwise contractions instead of
op by op, so that nothing of the size d K N K is allocated. These tests check that the two
lowerings agree (on hand-picked graphs, and on random graphs with the contraction forced on
small sizes), that the result agrees with finite differences and closed forms, and the
structure that makes it cheap: no identity tensor and no temporary of the region's size.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

import symgrad as sg
import symgrad._contract as contract
import symgrad._emit as emit
from tests.helpers import numeric_grad
from tests.strategies import dags, point_is_safe, points, to_scalar

rng = np.random.default_rng(7)
A, B = sg.matrix("A", (3, 4)), sg.matrix("B", (4, 2))
C, v, u = sg.matrix("C", (5, 3)), sg.vector("v", 4), sg.vector("u", 3)
X, Y = sg.matrix("X", ("N", 3)), sg.matrix("Y", ("N", 4))
T = sg.tensor("T", (3, 4, 3, 4))
VALS = {A: rng.normal(size=(3, 4)), B: rng.normal(size=(4, 2)), C: rng.normal(size=(5, 3)),
        v: rng.normal(size=4), u: rng.normal(size=3), X: rng.normal(size=(6, 3)),
        Y: rng.dirichlet(np.ones(4), 6), T: rng.normal(size=(3, 4, 3, 4))}
I34 = sg.eye((3, 4))
G = sg.reshape(C.T @ C, (3, 1, 3, 1))  # constant along the identity's second and fourth axes

CASES = {
    "A B": lambda: sg.jacobian(A @ B, A),
    "C A": lambda: sg.jacobian(C @ A, A),
    "A v": lambda: sg.jacobian(A @ v, A),
    "u A": lambda: sg.jacobian(u @ A, A),
    "tanh(A) A": lambda: sg.jacobian(sg.tanh(A) * A, A),
    "sum(A, 0)": lambda: sg.jacobian(sg.sum(A, axis=0), A),
    "outer": lambda: sg.jacobian(sg.outer(A @ v, u), A),
    "sum A^3": lambda: sg.hessian(sg.sum(A**3.0), A),
    "trace": lambda: sg.hessian(sg.trace(A @ A.T @ A @ A.T), A),
    "diagonal": lambda: sg.hessian(sg.log(sg.sigmoid(sg.sum(sg.diagonal(A @ A.T)))), A),
    "softmax regression": lambda: sg.hessian(-sg.sum(Y * sg.log_softmax(X @ A, axis=1)), A),
    "sigmoid": lambda: sg.hessian(sg.sum(sg.sigmoid(X @ A)), A),
    "mlp": lambda: sg.hessian(sg.sum((sg.tanh(X @ A) @ v) ** 2.0), A),
    "logsumexp": lambda: sg.hessian(sg.sum(sg.logsumexp(X @ A, axis=1)), A),
    "least squares": lambda: sg.hessian(sg.sum((X @ A - Y) ** 2.0), A),
    "sum(A B)^2": lambda: sg.hessian(sg.sum(A @ B) ** 2.0, A),
    "(A^T A)^2": lambda: sg.hessian(sg.sum((A.T @ A) ** 2.0), A),
    # divisions by values outside the region: read as products with their reciprocals
    "log-cosh": lambda: sg.hessian(sg.sum(sg.log(sg.exp(X @ A) + sg.exp(-(X @ A)))), A),
    "divided": lambda: sg.hessian(sg.sum(sg.tanh(X @ A) / (sg.sum(X @ A, axis=1, keepdims=True)
                                                          ** 2.0 + 1.0)), A),
    "mean": lambda: sg.hessian(sg.mean(sg.tanh(X @ A) ** 2.0) / sg.sum(v * v), A),
    "named": lambda: sg.hessian(sg.sum(sg.tanh((X @ A).named("z")) ** 2.0), A),
    "mean, diag": lambda: sg.hessian(sg.sum(sg.diag(sg.mean(A * A, axis=0)) @ B), A),
    # regions written out: sums over a δ of two summed axes (the sum of δ(k, l) is 4), over
    # an axis a term is constant along, and a matrix product of two such terms (5 each)
    "sum of a δ": lambda: sg.sum(I34 * G, axis=(1, 3)),
    "sum of a constant": lambda: sg.sum(I34 + G, axis=1),
    "product of constants": lambda: sg.broadcast_to(
        sg.sum(I34 * T, axis=3, keepdims=True), (3, 4, 3, 5)) @ sg.broadcast_to(
        sg.sum(I34 * T, axis=2, keepdims=True), (3, 4, 5, 4)),
    "diag of a constant": lambda: sg.diag(sg.broadcast_to(sg.sum(I34 * T, axis=(2, 3),
                                                                 keepdims=True), (3, 4, 1, 6))),
}


WORTH = contract.worth
_NOT_CONTRACTED = {"A v", "u A", "sum(A, 0)"}  # (their Jacobians are transposed gradients)


def _contractions(fn) -> list:
    return [c for c in fn.__globals__.values() if isinstance(c, contract.Contraction)]


def _op_by_op(order, uses, out_ids, folded):
    return {}, set()


def _always(*args):
    return True


def _compiled(h, force: bool, monkeypatch):
    """``h`` compiled with the contractions forced wherever they apply (or never used)."""
    monkeypatch.setattr(contract, "worth", _always)
    monkeypatch.setattr(emit, "contract_fusions",
                        contract.contract_fusions if force else _op_by_op)
    ins = [x for x in VALS if x in set(sg.variables(h))]
    return sg.compile(h, ins), [VALS[x] for x in ins]


@pytest.mark.parametrize("name", sorted(CASES))
def test_contraction_equals_op_by_op(name, monkeypatch):
    h = CASES[name]()
    fn, args = _compiled(h, True, monkeypatch)
    ref_fn, _ = _compiled(h, False, monkeypatch)
    assert not _contractions(ref_fn)
    got, want = fn(*args), ref_fn(*args)
    assert _contractions(fn) or name in _NOT_CONTRACTED
    assert got.shape == want.shape == h.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["softmax regression", "mlp", "trace", "C A", "diagonal",
                                  "mean, diag"])
def test_contraction_is_used_and_equals_finite_differences(name, monkeypatch):
    h = CASES[name]()
    fn, args = _compiled(h, True, monkeypatch)
    assert _contractions(fn), fn.source
    assert "reshape(_rt.eye" not in fn.source  # no identity tensor is ever made
    # the graph that h differentiates: a Jacobian (of a tensor) or a Hessian (of a scalar)
    if name in ("C A",):
        want = numeric_grad(C @ A, A, VALS)
    else:
        f = {"softmax regression": -sg.sum(Y * sg.log_softmax(X @ A, axis=1)),
             "mlp": sg.sum((sg.tanh(X @ A) @ v) ** 2.0),
             "trace": sg.trace(A @ A.T @ A @ A.T),
             "diagonal": sg.log(sg.sigmoid(sg.sum(sg.diagonal(A @ A.T)))),
             "mean, diag": sg.sum(sg.diag(sg.mean(A * A, axis=0)) @ B)}[name]
        want = numeric_grad(sg.grad(f, A), A, VALS)
    np.testing.assert_allclose(fn(*args), want, rtol=1e-5, atol=1e-7)


def test_softmax_regression_hessian_closed_form():
    # sum over samples of x x^T ⊗ (diag(p) - p p^T), at a size where the contraction is the
    # default (a symbolic number of samples)
    N, d, K = 300, 6, 4
    Xs, Ys, W = sg.matrix("X", ("N", d)), sg.matrix("Y", ("N", K)), sg.matrix("W", (d, K))
    H = sg.hessian(-sg.sum(Ys * sg.log_softmax(Xs @ W, axis=1)), W)
    fn = sg.compile(H, [Xs, Ys, W])
    assert _contractions(fn) and "reshape(_rt.eye" not in fn.source
    x, w = rng.normal(size=(N, d)), rng.normal(size=(d, K))
    y = np.eye(K)[rng.integers(0, K, N)]
    z = x @ w
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    want = np.zeros((d, K, d, K))
    for n in range(N):
        want += np.einsum("i,k,j,l->ikjl", x[n], np.ones(K), x[n], np.ones(K)) * (
            np.diag(p[n]) - np.outer(p[n], p[n]))[None, :, None, :]
    np.testing.assert_allclose(fn(x, y, w), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss", [
    lambda Xs, Ys, W: -sg.sum(Ys * sg.log_softmax(Xs @ W, axis=1)),
    # found by review: the Brier score's region was cut into roots of its own size (the
    # estimate called the whole a tie), log-cosh's at a division (656 and 320 MB peaks)
    lambda Xs, Ys, W: sg.sum((sg.softmax(Xs @ W, axis=1) - Ys) ** 2.0),
    lambda Xs, Ys, W: sg.sum(sg.log(sg.exp(Xs @ W) + sg.exp(-(Xs @ W)))),
], ids=["cross-entropy", "brier", "log-cosh"])
def test_no_temporary_of_the_regions_size(loss):
    # op by op, X @ I(d, K) alone is d K N K entries (160 MB here, and two more like it);
    # the contraction's largest temporaries are N d K (16 MB)
    N, d, K = 2000, 100, 10
    Xs, Ys, W = sg.matrix("X", ("N", d)), sg.matrix("Y", ("N", K)), sg.matrix("W", (d, K))
    fn = sg.compile(sg.hessian(loss(Xs, Ys, W), W), [Xs, Ys, W])
    x, w = rng.normal(size=(N, d)), rng.normal(size=(d, K)) * 0.1
    y = np.eye(K)[rng.integers(0, K, N)]
    fn(x, y, w)  # (the first call plans the order of the products)
    tracemalloc.start()
    try:
        out = fn(x, y, w)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    region = d * K * N * K * 8
    assert out.shape == (d, K, d, K)
    assert peak < region / 2, (peak, region)  # (a few N d K temporaries at once)
    want = sg.evaluate(sg.hessian(loss(Xs, Ys, W), W), {Xs: x, Ys: y, W: w})
    np.testing.assert_allclose(out, want, rtol=1e-9, atol=1e-12)


def test_symbolic_sizes_do_not_make_an_operand_bigger_than_its_root():
    # found by review: with every symbolic size taken as 1000, the estimate could not weigh
    # N against d, and X^T @ A was computed op by op from A of (d, h, N, h): 1.9 GB for a
    # 32 MB Hessian. An operand with a size its root lacks is never made whole
    N, d, h, K = 400, 10, 16, 3
    Xs, Ys = sg.matrix("X", ("N", "d")), sg.matrix("Y", ("N", "K"))
    W1, W2 = sg.matrix("W1", ("d", "h")), sg.matrix("W2", ("h", "K"))
    H = sg.hessian(-sg.sum(Ys * sg.log_softmax(sg.tanh(Xs @ W1) @ W2, axis=1)), W1)
    fn = sg.compile(H, [Xs, Ys, W1, W2])
    vals = [rng.normal(size=(N, d)), rng.dirichlet(np.ones(K), N), rng.normal(size=(d, h)) / 4,
            rng.normal(size=(h, K))]
    fn(*vals)
    tracemalloc.start()
    try:
        out = fn(*vals)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < d * h * N * h * 8 / 3, peak
    np.testing.assert_allclose(out, sg.evaluate(H, dict(zip([Xs, Ys, W1, W2], vals))),
                               rtol=1e-9, atol=1e-12)


def test_float32_stays_float32(monkeypatch):
    h = CASES["softmax regression"]()
    fn, args = _compiled(h, True, monkeypatch)
    got = fn(*[a.astype(np.float32) for a in args])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, fn(*args), rtol=1e-4, atol=1e-5)


def test_symbolic_sizes_come_from_the_operands(monkeypatch):
    # the number of samples is known only when called: two sizes, one function
    monkeypatch.setattr(contract, "worth", _always)
    fn = sg.compile(CASES["least squares"](), [X, A, Y])
    assert _contractions(fn)
    for n in (1, 4, 9):
        x, y, a = rng.normal(size=(n, 3)), rng.normal(size=(n, 4)), VALS[A]
        np.testing.assert_allclose(fn(x, a, y),
                                   np.einsum("ni,nj,kl->ikjl", x, x, 2 * np.eye(4)),
                                   rtol=1e-12, atol=1e-12)


def test_small_known_sizes_stay_op_by_op():
    # a region of a few hundred entries costs less op by op than planned
    fn = sg.compile(sg.hessian(sg.sum(A**3.0), A), [A])
    assert not _contractions(fn)


def test_contraction_says_what_it_computes(monkeypatch):
    fn, args = _compiled(CASES["least squares"](), True, monkeypatch)
    (c,) = _contractions(fn)
    assert "contraction" in repr(c) and "->" in repr(c)


@given(st.data())
@settings(max_examples=max(1, settings.default.max_examples // 5))
def test_random_graphs_contract_as_they_compute_op_by_op(data):
    """Hessians and Jacobians with respect to the matrix of random graphs: the numpy code with
    the contraction forced on every size gives what the op-by-op code gives."""
    e = data.draw(dags(tensor=True, max_ops=8), label="e")
    mat = sg.variables(e)
    assume(any(w.ndim == 2 for w in mat))
    w = next(w for w in mat if w.ndim == 2)
    f = to_scalar(e)
    ws = sg.variables(f)
    vals = data.draw(points(ws), label="point")
    assume(point_is_safe(f, vals))
    outs = [sg.hessian(f, w)] + ([sg.jacobian(e, w)] if e.ndim else [])
    note(f"e = {e}")
    try:
        contract.worth = _always
        got = sg.compile(outs, ws)(*[vals[x] for x in ws])
        emit.contract_fusions = _op_by_op
        want = sg.compile(outs, ws)(*[vals[x] for x in ws])
    finally:
        contract.worth = WORTH
        emit.contract_fusions = contract.contract_fusions
    for g, h in zip(got, want):
        scale = 1.0 + np.max(np.abs(h), initial=0.0)
        np.testing.assert_allclose(g, h, rtol=1e-9, atol=1e-9 * scale)


# ------------------------------------------------------------------ found by review
def test_a_summed_axis_the_term_is_constant_along_counts_its_size():
    # the other half of a δ summed away leaves an axis constant, though labelled: U is all
    # ones, U U^T is 20 everywhere (the contraction gave 1)
    n = 20
    U = sg.sum(sg.eye((n, n)), axis=(1, 2))
    M = sg.matrix("M", (n, n))
    fn = sg.compile((U @ U.T) * M, [M])
    assert _contractions(fn)
    m = rng.normal(size=(n, n))
    np.testing.assert_allclose(fn(m), n * m, rtol=1e-12)


def test_diagonal_of_a_term_constant_along_its_last_axis():
    n = 16
    Tn = sg.tensor("Tn", (n, n, n, n))
    R = sg.sum(sg.eye((n, n)) * Tn, axis=3, keepdims=True)
    e = sg.diagonal(sg.broadcast_to(R, (n, n, n, n)))  # e[i, k, j] = T[i, k, j, k] δ(i, j)
    t = rng.normal(size=(n, n, n, n))
    np.testing.assert_allclose(sg.compile(e, [Tn])(t), np.einsum("ikjk,ij->ikj", t, np.eye(n)),
                               rtol=1e-12, atol=1e-12)
    # the same through sg.hessian: the reverse pass of diag(x) is diagonal(cotangent)
    k = 16
    Ak, vk, q = sg.matrix("Ak", (n, k)), sg.vector("vk", k), sg.matrix("q", (n, 1))
    f = sg.sum(sg.sum(sg.diag(Ak @ vk) + q, axis=1) ** 3.0)  # sum((A v + n q)^3)
    a, vv, qq = rng.normal(size=(n, k)), rng.normal(size=k), rng.normal(size=(n, 1))
    z = a @ vv + n * qq[:, 0]
    want = np.einsum("p,pm,i,j->pimj", 6 * z, np.eye(n), vv, vv)
    np.testing.assert_allclose(sg.compile(sg.hessian(f, Ak), [Ak, vk, q])(a, vv, qq), want,
                               rtol=1e-10, atol=1e-9)


def test_other_fusions_leave_the_region_alone():
    # a dot product and an outer product that the numpy code would fuse, in a region
    n = 20
    vn, Xb = sg.vector("vn", n), sg.matrix("Xb", (40, 40))
    s = sg.sum(sg.sum(sg.eye((n, n)), axis=(1, 2, 3)) * vn)  # n sum(v)
    fn = sg.compile([s, sg.exp(sg.exp(Xb * 0.01))], [vn, Xb])
    assert fn(np.ones(n), np.zeros((40, 40)))[0] == pytest.approx(n * n)
    a, b, Wn = sg.vector("a", n), sg.vector("b", n), sg.matrix("Wn", (n, n))
    M = sg.sum(sg.eye((n, n)) * Wn, axis=(2, 3))  # W
    x, y, w = rng.normal(size=n), rng.normal(size=n), rng.normal(size=(n, n))
    np.testing.assert_allclose(sg.compile(sg.outer(a, b) * M, [a, b, Wn])(x, y, w),
                               np.outer(x, y) * w, rtol=1e-12)


@pytest.mark.parametrize("low", [np.float16, np.float32])
def test_the_identity_keeps_its_dtype(low):
    # op by op the identity has the first tensor input's dtype the outputs use (Z's float64
    # here), and every product meets it: the same result, in the same dtype, as the contraction
    Z, Xs, W = sg.matrix("Z", (1, 1)), sg.matrix("X", ("N", 3)), sg.matrix("W", (3, 4))
    H = sg.hessian(sg.sum((Xs @ W) ** 2.0), W) * sg.sum(Z)  # 2 X^T X ⊗ I
    x, z = rng.normal(size=(6, 3)).astype(low), np.ones((1, 1))
    fn = sg.compile(H, [Z, Xs, W])
    assert _contractions(fn)
    got = fn(z, x, VALS[A])
    x64 = x.astype(float)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, 2 * np.einsum("ni,nj,kl->ikjl", x64, x64, np.eye(4)),
                               rtol=1e-12, atol=1e-12)
    assert fn(z.astype(low), x, VALS[A]).dtype == low


def test_an_unused_input_does_not_choose_the_dtype():
    # W is not in the Hessian of a quadratic: its float64 is ignored, as sg.evaluate ignores it
    Xs, W = sg.matrix("X", ("N", 3)), sg.matrix("W", (3, 4))
    H = sg.hessian(sg.sum((Xs @ W) ** 2.0), W)
    x, w = rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=(3, 4))
    assert sg.compile(H, [W, Xs])(w, x).dtype == np.float32
    assert sg.evaluate(H, {W: w, Xs: x}).dtype == np.float32


def test_a_number_times_the_whole_sum_multiplies_it_once():
    # s (a - b) at s = inf is ±inf (or nan where a = b), as op by op; s a - s b was nan
    s = sg.scalar("s")
    H = CASES["softmax regression"]() * s
    fn = sg.compile(H, [X, Y, A, s])
    got = fn(VALS[X], VALS[Y], VALS[A], np.inf)
    emit.contract_fusions = _op_by_op
    try:
        want = sg.compile(H, [X, Y, A, s])(VALS[X], VALS[Y], VALS[A], np.inf)
    finally:
        emit.contract_fusions = contract.contract_fusions
    assert _contractions(fn)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_deep_chains_of_small_matrices_are_not_multiplied_out():
    # the terms of a deep chain, multiplied out, repeat the same products: 713 arrays in the
    # terms of the 16-layer chain where every root that can be is contracted (1,610 when terms
    # of 16 arrays were allowed). The estimate keeps the chain's values op by op where that is
    # cheaper, and the work stays linear in the depth (about 13 arrays a layer; 22 since the
    # last root, whose operand has the size N it lacks, is always contracted: see _wider)
    L = 16
    Xs, W = sg.matrix("X", ("N", 5)), sg.matrix("W", (5, 5))
    z = Xs
    for _ in range(L):
        z = sg.tanh(z @ W)
    H = sg.hessian(sg.sum(z**2.0), W)
    fn = sg.compile(H, [Xs, W])
    arrays = sum(len(factors) for c in _contractions(fn) for _, factors, _ in c.terms)
    assert arrays <= 24 * L
    x, w = rng.normal(size=(30, 5)), rng.normal(size=(5, 5)) * 0.5
    emit.contract_fusions = _op_by_op
    try:
        want = sg.compile(H, [Xs, W])(x, w)
    finally:
        emit.contract_fusions = contract.contract_fusions
    np.testing.assert_allclose(fn(x, w), want, rtol=1e-9, atol=1e-12)


def test_a_symbolic_size_only_a_delta_has():
    # 2 X^T X ⊗ I(K): no operand has K, which the call passes after the operands; the plans
    # are kept per size
    Xs, Ys, W = sg.matrix("X", ("N", "d")), sg.matrix("Y", ("N", "K")), sg.matrix("W", ("d", "K"))
    fn = sg.compile(sg.hessian(sg.sum((Xs @ W - Ys) ** 2.0), W), [Xs, Ys, W])
    assert _contractions(fn) and "reshape(_rt.eye" not in fn.source
    # (7, 3, 4) after (7, 3, 2): only K differs, which no operand's shape shows (mutation
    # testing: a plan kept by the operands' shapes alone passed)
    for N, d, K in [(7, 3, 2), (5, 2, 4), (0, 2, 3), (7, 3, 2), (7, 3, 4)]:
        x, y, w = rng.normal(size=(N, d)), rng.normal(size=(N, K)), rng.normal(size=(d, K))
        np.testing.assert_allclose(fn(x, y, w), 2 * np.einsum("ni,nj,kl->ikjl", x, x, np.eye(K)),
                                   rtol=1e-12, atol=1e-12)


def test_a_division_by_a_value_read_through_the_identity_is_left_op_by_op(monkeypatch):
    """T / (2 I + 1): the denominator is seeded by the identity, so it is no operand of a
    contraction (mutation testing: dropping that refusal crashed compile, untested)."""
    monkeypatch.setattr(contract, "worth", lambda *a: True)
    T = sg.tensor("T_dv", (3, 4, 3, 4))
    e = T / (sg.eye((3, 4)) * 2.0 + 1.0)
    t = rng.normal(size=(3, 4, 3, 4))
    want = t / (2.0 * np.eye(12).reshape(3, 4, 3, 4) + 1.0)
    np.testing.assert_allclose(sg.compile(e, [T])(t), want, rtol=1e-14)


def test_a_contraction_result_is_never_written_into_a_narrower_buffer():
    # an unused float64 input U made the identity float64 while every used input was float32,
    # and a dead float32 buffer took the float64 contraction (maximum(..., out=)). The
    # identity now follows the used inputs (float32 here), and a contraction's result is
    # never a buffer's new owner of another dtype (see _buffers.plan_buffers)
    U = sg.matrix("U", (2, 2))
    Xs, W, Tn = sg.matrix("X", ("N", 6)), sg.matrix("W", (6, 6)), sg.tensor("Tn", (6, 6, 6, 6))
    out = sg.maximum(sg.tanh(Tn), sg.hessian(sg.sum(sg.tanh(Xs @ W) ** 2.0), W))
    x, w, t = (rng.normal(size=s).astype(np.float32) for s in [(50, 6), (6, 6), (6, 6, 6, 6)])
    got = sg.compile(out, [U, Xs, W, Tn])(np.zeros((2, 2)), x, w, t)
    emit.contract_fusions = _op_by_op
    try:
        want = sg.compile(out, [U, Xs, W, Tn])(np.zeros((2, 2)), x, w, t)
    finally:
        emit.contract_fusions = contract.contract_fusions
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_scalar_contraction_is_a_numpy_scalar(monkeypatch):
    Xs, W = sg.matrix("X", ("N", 20)), sg.matrix("W", (20, 10))
    Tn = sg.tensor("Tn", (20, 10, 20, 10))
    H = sg.hessian(sg.sum(sg.tanh(Xs @ W) ** 2.0), W)
    monkeypatch.setattr(contract, "worth", _always)
    fn = sg.compile(sg.sum(H * Tn), [Xs, W, Tn])
    x, w, t = rng.normal(size=(50, 20)), rng.normal(size=(20, 10)) * 0.1, rng.normal(
        size=(20, 10, 20, 10))
    got = fn(x, w, t)
    assert isinstance(got, np.float64)


def test_a_result_as_big_as_its_region_is_contracted_only_where_it_is_a_diagonal():
    # the Jacobian of tanh(X W) wrt W is X[n, i] (1 - tanh^2)[n, k] δ(k, l): op by op writes
    # all N K d K entries, the contraction only the diagonal. The Jacobian of A B C wrt B is
    # a full outer product: nothing to save, so op by op (a contraction was 6-13x slower)
    Xs, W = sg.matrix("X", (500, 20)), sg.matrix("W", (20, 5))
    fn = sg.compile(sg.jacobian(sg.tanh(Xs @ W), W), [Xs, W])
    assert _contractions(fn)
    x, w = rng.normal(size=(500, 20)), rng.normal(size=(20, 5)) * 0.2
    t = np.tanh(x @ w)
    np.testing.assert_allclose(fn(x, w), np.einsum("ni,nk,kl->nkil", x, 1 - t * t, np.eye(5)),
                               rtol=1e-12, atol=1e-12)
    As, Bs, Cs = sg.matrix("As", (50, 20)), sg.matrix("Bs", (20, 5)), sg.matrix("Cs", (5, 50))
    assert not _contractions(sg.compile(sg.jacobian(As @ Bs @ Cs, Bs), [As, Bs, Cs]))
