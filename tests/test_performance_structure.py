"""Performance, checked by structure only (never wall time): graph sizes, the shape of the
generated code, and that buffer reuse and inlining never change a value."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symgrad as sg
from benchmarks._workloads import chain  # the W4 chain the benchmark measures
from symgrad.graph import count_nodes
from tests.helpers import plain_numpy


@pytest.fixture
def reuse_small_arrays(monkeypatch):
    """Reuse buffers of any size (normally only arrays of SMALL entries or more, or of unknown
    size, are reused), so that small test graphs exercise the buffer planner."""
    monkeypatch.setattr(sys.modules["symgrad._buffers"], "SMALL", 1)


# a copy of numpy as another array namespace: the code generator reuses buffers and writes the
# math version only for numpy itself, so compiling against this gives the plain version
PLAIN = plain_numpy("plain_numpy")


# ------------------------------------------------------------------ graph sizes
@pytest.mark.parametrize("k", [5, 20, 80])
def test_chain_gradient_at_most_twice_the_forward(k):
    x, ws, bs, L = chain(k, f"_a{k}")
    gs = sg.grad(L, ws + bs)
    assert count_nodes(gs) <= 2.0 * L.graph.number_of_nodes()


@pytest.mark.parametrize("k", [10, 100, 1000])
def test_loss_and_all_gradients_at_most_four_times_the_loss(k):
    x, ws, bs, L = chain(k, f"_b{k}")
    gs = sg.grad(L, ws + bs)
    assert count_nodes([L, *gs]) <= 4 * count_nodes(L)


def test_gradient_node_count_grows_linearly():
    counts = []
    for k in (50, 100, 150, 200):
        x, ws, bs, L = chain(k, f"_c{k}")
        counts.append((count_nodes(L), count_nodes(sg.grad(L, ws + bs))))
    steps = {(b[0] - a[0], b[1] - a[1]) for a, b in zip(counts, counts[1:])}
    assert len(steps) == 1  # exactly the same number of new nodes per 50 layers


def test_hessian_of_the_chain_stays_polynomial():
    x, ws, bs, L = chain(20, "_h")
    H = sg.hessian(L, ws + bs)
    n = count_nodes([e for row in H for e in row])
    assert n <= 60 * count_nodes(L)  # casadi: 48x; a tree would be exponential


def test_hessian_blocks_below_the_diagonal_are_those_above():
    x, ws, bs, L = chain(6, "_hs")
    ps = ws + bs
    H = sg.hessian(L, ps)
    assert all(H[j][i] is H[i][j] for i in range(len(ps)) for j in range(i))
    # each row's pass asks only for the variables from the diagonal on: fewer nodes than rows
    # derived in full
    full = [sg.grad(g, ps) for g in sg.grad(L, ps)]
    assert count_nodes([h for r in H for h in r]) < 0.85 * count_nodes([h for r in full for h in r])
    # tensor blocks: the transpose of the block above, with the axes of the two variables swapped
    v, A = sg.vector("v_hs", 3), sg.matrix("A_hs", (2, 3))
    Ht = sg.hessian(sg.sum(sg.exp(A @ v)) * sg.sum(v), [v, A])
    assert Ht[1][0].op.name == "transpose" and Ht[1][0].args[0] is Ht[0][1]
    vals = {v: np.array([0.1, -0.2, 0.3]), A: np.arange(6.0).reshape(2, 3) / 7}
    direct = sg.jacobian(sg.grad(sg.sum(sg.exp(A @ v)) * sg.sum(v), A), v)  # no symmetry used
    np.testing.assert_allclose(sg.evaluate(Ht[1][0], vals), sg.evaluate(direct, vals),
                               rtol=1e-13)


# ------------------------------------------------------------------ scalar code
def test_scalar_graph_compiles_to_math_calls_with_inlining():
    x, ws, bs, L = chain(4, "_m")
    f = sg.compile(sg.grad(L, ws + bs), [x, *ws, *bs])
    src = f.source
    assert "_m.tanh(" in src and "_xp." not in src  # the array version is not even built
    assert "for " not in src and "while " not in src
    # nodes used once are inlined: fewer statements than gradient nodes
    statements = [ln for ln in src.splitlines() if " = " in ln]
    assert len(statements) < count_nodes(sg.grad(L, ws + bs)) / 3
    vals = [0.3] + [0.9] * 4 + [0.1] * 4
    out = f(*vals)
    assert all(type(v) is float for v in out)
    # numpy inputs take the array version, built on first use, and agree
    arr = f(*[np.float64(v) for v in vals])
    assert "_wk." in f.source  # (numpy's functions, of Python numbers a Python number)
    np.testing.assert_allclose(np.array(arr, dtype=float), out, rtol=1e-14)
    ref = sg.compile(sg.grad(L, ws + bs), [x, *ws, *bs], backend=PLAIN)(*vals)
    np.testing.assert_allclose(np.array(ref, dtype=float), out, rtol=1e-14)


def test_math_version_returns_repeated_numbers_without_copies():
    # a symmetric Hessian returns each entry above the diagonal twice; Python numbers cannot be
    # written into, so the math version returns them as they are (copies doubled the W4
    # Hessian's call time)
    x, ws, bs, L = chain(3, "_rep")
    H = sg.hessian(L, ws + bs)
    f = sg.compile([e for row in H for e in row], [x, *ws, *bs])
    math_version = f.source.split("def _compiled_array")[0]
    assert "own(" not in math_version and "materialize(" not in math_version
    vals = [0.3, 0.9, -0.8, 1.1, 0.1, -0.2, 0.05]
    out = f(*vals)
    assert all(type(v) is float for v in out)
    arr = f(*[np.float64(v) for v in vals])  # the array version still makes each its own,
    array_version = f.source.split("def _compiled_array")[1]  # inline, without a call
    assert ".copy())" in array_version and "own(" not in array_version
    np.testing.assert_allclose(np.array(arr, dtype=float), out, rtol=1e-13)
    samples = f(*[np.array([v, v + 0.01]) for v in vals])  # arrays: every result its own
    for i, r in enumerate(samples):
        assert all(not np.shares_memory(r, q) for q in samples[:i])


def test_constant_subgraphs_are_folded_at_compile_time():
    x = sg.scalar("x")
    f = sg.compile(sg.exp(sg.const(2.0)) * x + 0.5, [x])
    body = f.source.split("def compiled")[1]
    assert "exp" not in body  # exp(2) computed once, passed in as an object
    assert f(1.0) == pytest.approx(np.exp(2.0) + 0.5)


def test_math_domain_errors_fall_back_to_numpy():
    x = sg.scalar("x")
    f = sg.compile(sg.log(x), [x])
    with np.errstate(invalid="ignore"):
        assert np.isnan(f(-1.0))


# ------------------------------------------------------------------ array code
def w1_batch():
    u, c, w, b = sg.scalars("u c w b")
    x, y = sg.vector("x", "N"), sg.vector("y", "N")
    phi = sg.sigmoid(u * x + c)
    mu = sg.sigmoid(w * phi + b)
    L = sg.mean(sg.bce(mu, y))
    return [u, c, w, b, x, y], sg.grad(L, [u, c, w, b])


def test_batch_gradient_reuses_dead_buffers_and_folds_sums_into_dots():
    ins, gs = w1_batch()
    f = sg.compile(gs, ins)
    src = f.source
    assert "out=" in src and "del " in src
    assert " @ " in src  # sum(a * b) of two vectors is one dot product
    assert "for " not in src
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), (rng.random(50) < 0.5).astype(float)
    P = (0.7, -0.3, 1.3, 0.2)
    xc, yc = x.copy(), y.copy()
    got = f(*P, x, y)
    np.testing.assert_array_equal(x, xc)  # inputs are never written
    np.testing.assert_array_equal(y, yc)
    ref = sg.compile(gs, ins, backend=PLAIN)(*P, x, y)
    np.testing.assert_allclose(got, ref, rtol=1e-13)
    # float32 in, float32 out, through the same buffers (no float64 0-d constants)
    got32 = f(*P, x.astype(np.float32), y.astype(np.float32))
    assert {np.asarray(v).dtype for v in got32} == {np.dtype(np.float32)}
    np.testing.assert_allclose(got32, ref, rtol=1e-4)
    # mixed dtypes take the plain version, built when first needed, and promote as numpy does
    mixed = f(*P, x.astype(np.float32), y)
    assert "def _compiled_plain" in f.source
    assert {np.asarray(v).dtype for v in mixed} == {np.dtype(np.float64)}
    np.testing.assert_allclose(mixed, sg.compile(gs, ins, backend=PLAIN)(
        *P, x.astype(np.float32), y), rtol=1e-13)


def test_vector_mlp_float32_stays_float32():
    U, c, w, b = sg.matrix("U", (4, 3)), sg.vector("c", 4), sg.vector("w", 4), sg.scalar("b")
    X, y = sg.matrix("X", ("N", 3)), sg.vector("y", "N")
    L = sg.mean(sg.bce(sg.sigmoid(sg.sigmoid(X @ U.T + c) @ w + b), y))
    f = sg.compile([L, *sg.grad(L, [U, c, w, b])], [U, c, w, b, X, y])
    rng = np.random.default_rng(1)
    vals = [rng.normal(size=s).astype(np.float32) for s in ((4, 3), (4,), (4,))]
    vals += [np.float32(0.1), rng.normal(size=(6, 3)).astype(np.float32),
             (rng.random(6) < 0.5).astype(np.float32)]
    out = f(*vals)
    assert all(np.asarray(v).dtype == np.float32 for v in out)


def test_constant_subgraphs_are_hoisted_out_of_the_call():
    v = sg.vector("v", 3)
    J = sg.jacobian(sg.tanh(v) * 2.0, v)  # built from an identity seed
    f = sg.compile(J, [v])
    body = f.source.split("def compiled")[1]
    assert "_xp.eye(" not in body
    x = np.array([0.1, -0.2, 0.3])
    np.testing.assert_allclose(f(x), np.diag(2 * (1 - np.tanh(x) ** 2)), rtol=1e-14)


def test_symbolic_identity_is_built_per_call():
    v = sg.vector("v", "n")
    f = sg.compile(sg.jacobian(sg.tanh(v), v), [v])  # eye(n) with n known only at the call
    x = np.array([0.1, -0.2, 0.3, 0.4])
    np.testing.assert_allclose(f(x), np.diag(1 - np.tanh(x) ** 2), rtol=1e-14)


def test_outputs_and_views_of_temporaries_are_never_overwritten(reuse_small_arrays):
    M = sg.matrix("M", (3, 4))
    t = sg.tanh(M) * 2.0  # a temporary
    outs = [t.T, sg.exp(t) + 1.0, sg.sum(t * t, 1), sg.reshape(t, (12,)) * 3.0, t]
    f = sg.compile(outs, [M])
    assert "out=" in f.source
    m = np.random.default_rng(2).normal(size=(3, 4))
    got = f(m)
    ref = sg.compile(outs, [M], backend=PLAIN)(m)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    assert not np.shares_memory(got[0], got[1]) and not np.shares_memory(got[1], got[3])


# ------------------------------------------------------------------ random graphs
def random_graph(rng: random.Random, n_ops: int):
    X, v, w, s = sg.matrix("X", (3, 4)), sg.vector("v", 4), sg.vector("w", 3), sg.scalar("s")
    pool = [X, v, w, s, X, v]
    unary = [sg.tanh, sg.sigmoid, sg.softplus, sg.relu, sg.abs, sg.sin, lambda e: -e,
             lambda e: e * e, lambda e: sg.exp(sg.tanh(e)), lambda e: sg.sqrt(1.0 + e * e),
             sg.functions.sigmoid_deriv, sg.functions.tanh_deriv, sg.stop_gradient,
             # (an op that returns its operand's array: its buffer must stay pinned)
             lambda e: sg.straight_through(sg.tanh(e), e)]
    binary = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
              lambda a, b: a / (1.5 + sg.tanh(b)), sg.maximum]
    for _ in range(n_ops):
        r = rng.random()
        a = rng.choice(pool)
        try:
            if r < 0.4:
                e = rng.choice(unary)(a)
            elif r < 0.75:
                e = rng.choice(binary)(a, rng.choice(pool))
            elif r < 0.85:
                e = a.T if a.ndim == 2 else (sg.sum(a, 0) if a.ndim == 1 else a * 0.5)
            elif r < 0.9:
                e = sg.reshape(a, (12,)) if a.shape == (3, 4) else sg.broadcast_to(a, (3, 4)) \
                    if a.shape in ((4,), ()) else sg.outer(a, v)
            elif r < 0.95:
                e = X @ a if a.shape == (4,) else (a @ X if a.shape == (3,) else sg.take(X, 1))
            else:
                e = sg.sum(a, 1) if a.ndim == 2 else sg.sum(a)
        except (sg.ShapeError, ValueError):
            continue
        pool.append(e)
    outs = rng.sample(pool[6:], min(3, len(pool) - 6)) or [pool[-1]]
    loss = sg.sum(sg.tanh(pool[-1]))
    return [X, v, w, s], outs, loss


def keeps_dtype(e) -> bool:
    """Whether numpy keeps the inputs' dtype for e: no float64 constant array in it
    (identities, one-hot vectors, zeros and broadcast numbers take the inputs' dtype)."""
    return not any(n.op.name == "const" and n.ndim for n in e.graph)


@pytest.mark.parametrize("seed", range(40))
def test_buffer_reuse_and_inlining_never_change_values(seed, reuse_small_arrays):
    rng = random.Random(seed)
    ins, outs, loss = random_graph(rng, 25)
    grads = sg.grad(loss, ins)
    exprs = outs + grads
    f = sg.compile(exprs, ins)
    ref = sg.compile(exprs, ins, backend=PLAIN)
    nr = np.random.default_rng(seed)
    for dtype in (np.float64, ">f8", np.float32):  # big-endian: the plain version
        vals = [nr.normal(size=v.shape).astype(dtype) if v.shape else float(nr.normal())
                for v in ins]
        keep = [np.copy(a) for a in vals]
        got = f(*vals)
        want = ref(*vals)
        rtol = 2e-4 if dtype == np.float32 else 1e-12
        for e, a, b in zip(exprs, got, want):
            np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                       rtol=rtol, atol=rtol)
            if dtype == np.float32 and keeps_dtype(e) and type(a) is not float:
                assert np.asarray(a).dtype == np.float32  # scalars are weak: float32 stays
        for a, b in zip(vals, keep):
            np.testing.assert_array_equal(a, b)
        again = f(*vals)  # a second call sees fresh buffers, not the first call's results
        for a, b in zip(again, got):
            np.testing.assert_array_equal(a, b)


def test_the_random_graphs_do_reuse_buffers(reuse_small_arrays):
    reused = 0
    for seed in range(40):  # the graphs of the test above
        ins, outs, loss = random_graph(random.Random(seed), 25)
        reused += "out=" in sg.compile(outs + sg.grad(loss, ins), ins).source
    assert reused >= 20


def test_small_arrays_are_left_to_numpy():
    M = sg.matrix("M", (3, 4))
    src = sg.compile(sg.exp(sg.tanh(M) * 2.0) + 1.0, [M]).source
    assert "out=" not in src and "del " not in src


def test_math_errors_in_a_tensor_graph_fall_back_to_numpy():
    s, v = sg.scalar("s"), sg.vector("v", 3)
    f = sg.compile(sg.tanh(v) * sg.log(s) + sg.exp(s), [s, v])
    x = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(f(2.0, x), np.tanh(x) * np.log(2.0) + np.exp(2.0), rtol=1e-14)
    assert "_m.log(" in f.source  # scalar work in Python floats
    with np.errstate(invalid="ignore"):
        assert np.all(np.isnan(f(-1.0, x)))  # math raised; numpy gives nan, as numpy would
    with np.errstate(over="ignore"):
        assert np.all(np.isinf(f(1000.0, x)))


SCALAR_OPS = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b,
              lambda a, b: sg.tanh(a) * b, lambda a, b: a / (2.0 + sg.sigmoid(b)),
              lambda a, b: sg.softplus(a) - a * a, sg.maximum]


@pytest.mark.parametrize("seed", range(15))
def test_scalar_inlining_never_changes_values(seed):
    rng = random.Random(100 + seed)
    xs = sg.scalars("p q r")
    pool = list(xs)
    for _ in range(30):
        a, b = rng.choice(pool), rng.choice(pool)
        op = rng.randrange(len(SCALAR_OPS))
        e = SCALAR_OPS[op](a, b)
        pool.append(e)
    outs = rng.sample(pool[3:], 4) + sg.grad(sg.tanh(pool[-1]) + pool[-2], list(xs))
    f = sg.compile(outs, list(xs))
    assert "_xp." not in f.source
    ref = sg.compile(outs, list(xs), backend=PLAIN)
    vals = [rng.uniform(-1, 1) for _ in xs]
    np.testing.assert_allclose(np.array(f(*vals), dtype=float),
                               np.array(ref(*vals), dtype=float), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ inlined array code
def test_small_array_code_inlines_nodes_used_once():
    v, w, s = sg.vector("v_i", 8), sg.vector("w_i", 8), sg.scalar("s_i")
    h = v
    for _ in range(5):
        h = sg.tanh(w * h + s * sg.sum(h))
    L = sg.sum(h * h)
    gs = sg.grad(L, [v, w, s])
    f = sg.compile([L, *gs], [v, w, s])
    body = [ln for ln in f.source.splitlines() if " = " in ln and "_asarray" not in ln]
    computed = [n for n in sg.topo_order([L, *gs]) if n.args]
    assert len(body) < 0.6 * len(computed)  # one statement per value used twice, or so
    assert "del " not in f.source and "out=" not in f.source
    assert "broadcast_to" not in f.source  # sum's derivative: numpy broadcasts the scalar
    vals = [np.linspace(-1, 1, 8), np.linspace(0.5, 1.5, 8), 0.3]
    ref = sg.compile([L, *gs], [v, w, s], backend=PLAIN)
    for a, b in zip(f(*vals), ref(*vals)):
        np.testing.assert_allclose(a, b, rtol=1e-13)


@pytest.mark.parametrize("seed", range(20))
def test_inlined_array_code_never_changes_values(seed, monkeypatch):
    ins, outs, loss = random_graph(random.Random(1000 + seed), 25)
    exprs = outs + sg.grad(loss, ins)
    f = sg.compile(exprs, ins)  # arrays of 12 entries at most: statements inlined
    assert "del " not in f.source
    # the reference: one statement per node (every array counts as big for the planner, and
    # a plain namespace writes into no buffer)
    monkeypatch.setattr(sys.modules["symgrad._buffers"], "SMALL", 1)
    ref = sg.compile(exprs, ins, backend=PLAIN)
    nr = np.random.default_rng(seed)
    for dtype in (np.float64, np.float32):
        vals = [nr.normal(size=v.shape).astype(dtype) if v.shape else float(nr.normal())
                for v in ins]
        rtol = 2e-4 if dtype == np.float32 else 1e-12
        for e, a, b in zip(exprs, f(*vals), ref(*vals)):
            np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                       rtol=rtol, atol=rtol)
            if dtype == np.float32 and keeps_dtype(e) and type(a) is not float:
                assert np.asarray(a).dtype == np.float32


def test_scalar_results_skip_the_tensor_only_rules():
    from symgrad.ops import REGISTRY

    mul = REGISTRY["mul"]
    skipped = [r for r in mul.rules if r not in mul.scalar_rules]
    assert skipped and len(mul.scalar_rules) < len(mul.rules)
    x, y = sg.scalars("x_r y_r")
    for r in skipped:  # each of them indeed leaves scalar products alone
        assert r((x, y), {}, ()) is None


def test_deriving_and_compiling_never_import_sympy():
    # sympy costs 0.3 s to import and doubles what each full garbage collection scans; only
    # to_sympy and simplify need it (a fresh interpreter: this one has imported it already)
    code = (
        "import sys, symgrad as sg\n"
        "x, w = sg.scalars('x w')\n"
        "f = sg.compile(sg.grad(sg.tanh(w * x) ** 2, [x, w]), [x, w])\n"
        "assert f(0.5, 2.0)[0] > 0\n"
        "assert 'sympy' not in sys.modules, 'sympy imported'\n"
        "print(sg.to_sympy(sg.tanh(w * x)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "tanh(w*x)"


# ------------------------------------------------------------------ sums over some axes
_SUM_CASES = [((7, 5), (0,)), ((7, 5), (1,)), ((4, 3, 5), (0,)), ((4, 3, 5), (0, 1)),
              ((4, 3, 5), (2,)), ((4, 3, 5), (1, 2)), ((4, 3, 5), (1,)), ((4, 3, 5), (0, 2)),
              ((0, 5), (0,)), ((6, 0), (1,)), ((2, 3, 4, 5), (0, 1, 2)),
              # 512 entries and more go to BLAS (mutation testing: F-ordered column sums of
              # this size were not checked)
              ((40, 30), (0,)), ((40, 30), (1,)), ((8, 10, 12), (0, 1)), ((8, 10, 12), (2,))]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,axes", _SUM_CASES)
@pytest.mark.parametrize("order", ["C", "F", "view"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_partial_sums_match_numpy(shape, axes, dtype, order, keepdims):
    """The generated code's ``_xp.sum`` (BLAS ``ones @ x`` where it can) gives numpy's sum:
    value, dtype and shape, in every memory order, and for empty arrays."""
    fast = sys.modules["symgrad.compile"]._NP
    rng = np.random.default_rng(len(shape) * 10 + len(axes))
    x = rng.standard_normal(shape).astype(dtype)
    if order == "F":
        x = np.asfortranarray(x)
    elif order == "view" and x.shape[0] > 1:
        x = np.concatenate([x, x])[::2]  # strided: neither memory order
    got = fast.sum(x, axis=axes, keepdims=keepdims)
    want = np.sum(x, axis=axes, keepdims=keepdims)
    assert got.shape == want.shape and got.dtype == want.dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_column_sums_go_to_blas_and_keep_inf_and_nan():
    blas_sum = sys.modules["symgrad.compile"]._blas_sum
    x = np.ones((5, 3))
    assert blas_sum(x, (0,)) is not None and blas_sum(x.astype(np.int64), (0,)) is None
    assert blas_sum(x[:, ::2], (0,)) is None  # would need a copy: numpy's reduction instead
    x[1, 0], x[2, 1] = np.inf, np.nan
    np.testing.assert_array_equal(blas_sum(x, (0,)), [np.inf, np.nan, 5.0])


def test_ones_vectors_are_read_only():
    ones = sys.modules["symgrad.compile"]._ones
    o = ones(4, np.dtype(np.float64))
    assert o is ones(4, np.dtype(np.float64)) and not o.flags.writeable


# ------------------------------------------------------------------ outer products
def test_hidden_layer_backward_never_allocates_the_outer_product():
    """W2's backward multiplies sigmoid'(z) (N x l) by outer(dL/dmu, w): the outer product is
    never built; sigmoid' is scaled by rows and columns in place. One N x l temporary fewer."""
    import tracemalloc

    from benchmarks._workloads import vector_mlp, vector_mlp_data

    outs, ins = vector_mlp(12, 16)
    f = sg.compile(outs, ins)
    assert "[:, None], out=" in f.source and "[..., :, None]" not in f.source
    data = vector_mlp_data(12, 16, 4096, np.float32)
    ref = sg.compile(outs, ins, backend=PLAIN)
    for a, b in zip(f(*data), ref(*data)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    tracemalloc.start()
    try:
        f(*data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # sigmoid(z) and sigmoid'(z) are the N x l arrays alive together (with the outer product
    # built, 3.1 of them)
    assert peak <= 2.5 * (4096 * 16 * 4)


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("m_lives", [True, False])
def test_products_with_an_outer_product_keep_their_values(left, m_lives, reuse_small_arrays):
    a, b, M = sg.vector("a", "N"), sg.vector("b", 3), sg.matrix("M", ("N", 3))
    T = sg.tanh(M)  # a temporary, dead after the product unless m_lives
    P = sg.outer(a, b)
    prod = P * T if left else T * P
    outs = [prod, sg.exp(T)] if m_lives else [prod]
    f = sg.compile(outs, [a, b, M])
    assert "[:, None]" in f.source
    rng = np.random.default_rng(3)
    av, bv, Mv = rng.normal(size=5), rng.normal(size=3), rng.normal(size=(5, 3))
    want = [np.outer(av, bv) * np.tanh(Mv)] + ([np.exp(np.tanh(Mv))] if m_lives else [])
    for dtype in (np.float64, np.float32):
        got = f(av.astype(dtype), bv.astype(dtype), Mv.astype(dtype))
        for g, w in zip(got, want):
            assert np.asarray(g).dtype == dtype
            np.testing.assert_allclose(g, w, rtol=1e-5 if dtype == np.float32 else 1e-14)


def test_a_softmax_reuses_the_log_softmax_the_graph_computes():
    # softmax cross-entropy's gradient computed softmax from scratch, redoing the max, the exp
    # and the sum of the loss's own pass (a probe); exp(x - logsumexp(x)) is not used for a
    # logsumexp's gradient: x - lse cancels (3e-4 relative in float32 at logits of 1e4)
    M, T = sg.matrix("M_ss", (6, 4)), sg.matrix("T_ss", (6, 4))
    ce = -sg.sum(T * sg.log_softmax(M, axis=1))
    g = sg.compile([ce, sg.grad(ce, M)], [M, T])
    assert g.source.count("_rt.log_softmax(") == 1 and "_rt.softmax(" not in g.source
    L = sg.sum(sg.logsumexp(M, axis=1))
    assert "_rt.softmax(" in sg.compile([L, sg.grad(L, M)], [M]).source
    rng = np.random.default_rng(0)
    m = rng.normal(size=(6, 4)) * 3
    m[0] = [800.0, 0.0, -800.0, 1.0]  # shares of 0 and 1: exp only underflows, not signalled
    t = np.eye(4)[rng.integers(0, 4, 6)]
    e = np.exp(m - m.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    with np.errstate(all="raise"):
        cv, cg = g(m, t)
    np.testing.assert_allclose(cg, p * t.sum(axis=1, keepdims=True) - t, rtol=1e-13, atol=1e-300)
    # in place (a symbolic size lets buffers be reused): under errstate(under="raise") the exp
    # was retried on the buffer it had already written, exp(exp(z))
    Mn, Tn = sg.matrix("M_sn", ("m", 4)), sg.matrix("T_sn", ("m", 4))
    cen = -sg.sum(Tn * sg.log_softmax(Mn, axis=1))
    gn = sg.compile([cen, sg.grad(cen, Mn)], [Mn, Tn])
    with np.errstate(under="raise"):
        np.testing.assert_allclose(gn(m, t)[1], cg, rtol=1e-13, atol=1e-300)
    # the printed gradient is still softmax: the sharing is the compiled code's alone
    assert "softmax(M_ss, axis=1)" in str(sg.grad(ce, M))


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "dask"])
def test_a_logsumexp_and_its_softmax_share_one_pass(backend):
    # the gradient of a row-wise logsumexp redid the loss's max, exps and sum (1.7 to 2x
    # handwritten numpy; a probe): one compiled call computes them once, in either order
    pytest.importorskip(backend)
    M = sg.matrix("M_sp", (5, 4))
    c = np.linspace(-1.0, 1.0, 20).reshape(5, 4)
    L = sg.sum(sg.logsumexp(M, axis=1))
    outs = [L, sg.grad(L, M), sg.sum(sg.softmax(M, axis=0) * c) + sg.sum(sg.logsumexp(M, axis=0))]
    f = sg.compile(outs, [M], backend=backend)
    if backend == "numpy":
        assert "_memo = {}" in f.source and f.source.count(", _memo)") == 4
    m = np.random.default_rng(0).normal(size=(5, 4)) * 3
    m[0] = [800.0, 0.0, -800.0, 1.0]
    tol = 1e-6 if backend == "jax" else 1e-13  # (jax: float32 unless x64 is on)
    with np.errstate(all="raise"):
        got = [np.asarray(v, dtype=float) for v in f(m)]
    e = np.exp(m - m.max(axis=1, keepdims=True))
    np.testing.assert_allclose(got[1], e / e.sum(axis=1, keepdims=True), rtol=tol, atol=1e-300)
    np.testing.assert_allclose(got[0], np.sum(np.log(e.sum(axis=1)) + m.max(axis=1)), rtol=tol)
    e0 = np.exp(m - m.max(axis=0))
    want = np.sum(e0 / e0.sum(axis=0) * c) + np.sum(np.log(e0.sum(axis=0)) + m.max(axis=0))
    np.testing.assert_allclose(got[2], want, rtol=tol)


def test_an_op_that_returns_its_operand_keeps_that_buffer(reuse_small_arrays):
    """straight_through(t, x) is t's own array: t's buffer stays pinned while it lives
    (mutation testing: unpinned, exp(t) was written into it, and the product read it)."""
    x = sg.vector("x_st", 8)
    t = sg.tanh(x)
    f = sg.straight_through(t, x) * sg.exp(t)
    xv = np.linspace(-1.0, 1.0, 8)
    tv = np.tanh(xv)
    np.testing.assert_allclose(sg.compile(f, [x])(xv), tv * np.exp(tv), rtol=1e-14)


def test_wide_product_outputs_are_computed_transposed():
    """A weight's gradient delta^T X with fewer rows than columns is computed as
    (X^T delta)^T, which OpenBLAS runs 5 to 35 % faster (benchmarks/w2); only where it is an
    output alone, of known and large enough shape, and only for numpy."""
    d, l = 96, 32  # U is (l, d): wide
    U, V = sg.matrix("U_wd", (l, d)), sg.matrix("V_wd", (d, l))
    X = sg.matrix("X_wd", ("N", d))
    L = sg.sum(sg.tanh(X @ U.T)) + sg.sum(sg.tanh(X @ V))
    gU, gV = sg.grad(L, [U, V])
    rng = np.random.default_rng(0)
    vals = [rng.normal(size=(l, d)), rng.normal(size=(d, l)), rng.normal(size=(50, d))]
    f = sg.compile([L, gU, gV], [U, V, X])
    assert f.source.count(".T).T") == 1  # gU, not gV (tall) nor the forward's X @ U^T
    ref = sg.compile([L, gU, gV], [U, V, X], backend=PLAIN)
    assert ".T).T" not in ref.source
    got, want = f(*vals), ref(*vals)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)
    assert got[1].shape == (l, d)
    got[1][:] = 0.0  # the result is its own array: writing into it changes nothing else
    np.testing.assert_allclose(f(*vals)[1], want[1], rtol=1e-12)
    # used by another node (here a sum), it stays as written: the transposed array would slow
    # an elementwise op that reads it beside C-ordered arrays
    g2 = sg.compile([gU, sg.sum(gU * gU)], [U, V, X])
    assert ".T).T" not in g2.source
    # a small product costs its call, not its arithmetic
    small = sg.matrix("S_wd", (4, 10))
    Y = sg.matrix("Y_wd", ("N", 10))
    gs = sg.grad(sg.sum(sg.tanh(Y @ small.T)), small)
    assert ".T).T" not in sg.compile(gs, [small, Y]).source


def test_the_wide_products_benchmark_checks_its_results():
    # (timed, but nothing here asserts a time: the benchmark checks symgrad's gradient against
    # the handwritten one, and that the rule is on in one symgrad row and off in the other)
    from benchmarks import wide_products

    report = wide_products.main(quick=True)
    assert report.count("N=256, d=256, K=10") == 3
