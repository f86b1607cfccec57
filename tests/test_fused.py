"""The fused numba backend: same values as numpy, elementwise chains in one loop, sums inside
the loop, the parallel path, numba's on-disk cache across processes, and the exp it uses."""

from __future__ import annotations

import importlib.util
import json
import os
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


def _close(got, want, rtol=1e-10):
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        g = np.asarray(g)
        assert g.shape == w.shape, k
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-12, err_msg=f"output {k}")


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
