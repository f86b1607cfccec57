"""Wide products: the gradient of softmax regression with respect to its weight matrix (not one
of issue 4's workloads: the case behind ``symgrad.ops.linalg.wide_products``).

    Z = X W^T + b,   L = sum(logsumexp(Z, axis=1)) - sum(Y ⊙ Z),
    dL/dW = (softmax(Z) - Y)^T X,   X of (N, d), W of (K, d), Y one-hot

dL/dW has K rows and d columns: with few classes it is a wide matrix. OpenBLAS, numpy's usual
BLAS, computes a product with more rows than columns faster than its transpose, so symgrad's
numpy code computes a wide output product as ``(X^T D)^T``. (Scaled by 1/N, as a mean would
scale it, the gradient is derived as that transpose already; summed, it is ``D^T X``.) Timed
against handwritten numpy (the base of every ratio; it writes ``D.T @ X``, as a textbook
does) and against symgrad's code with the rule turned off, round-robin in one process.

Run: ``python -m benchmarks --only wide_products`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import os
import sys

import numpy as np

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._timing import bench, fmt_ratio, fmt_time, table

SIZES = ((1024, 784, 10), (1024, 784, 100), (4096, 256, 32))
QUICK_SIZES = ((256, 256, 10),)
BASE = "handwritten numpy"


def make_data(N: int, d: int, K: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, d))
    W = rng.normal(size=(K, d)) * 0.05
    b = rng.normal(size=K) * 0.1
    Y = np.eye(K)[rng.integers(0, K, N)]
    return W, b, X, Y


def numpy_grad(W, b, X, Y):
    Z = X @ W.T + b
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    D = P - Y
    return D.T @ X, D.sum(axis=0)


def symgrad_grads(d: int, K: int, wide: bool):
    import symgrad as sg
    from symgrad.ops import linalg

    tag = f"_{d}_{K}"
    W, b = sg.matrix("W" + tag, (K, d)), sg.vector("b" + tag, K)
    X, Y = sg.matrix("X" + tag, ("N", d)), sg.matrix("Y" + tag, ("N", K))
    Z = X @ W.T + b
    L = sg.sum(sg.logsumexp(Z, axis=1)) - sg.sum(Y * Z)
    saved = linalg._WIDE_MIN
    if not wide:
        linalg._WIDE_MIN = 1 << 62  # no product is that large: the rule is off
    try:
        f = sg.compile(sg.grad(L, [W, b]), [W, b, X, Y])
    finally:
        linalg._WIDE_MIN = saved
    assert (".T).T" in f.source) == (wide and K * d >= saved and K < d), f.source
    return f


def main(quick: bool = False) -> str:
    rows = []
    for N, d, K in QUICK_SIZES if quick else SIZES:
        data = make_data(N, d, K)
        want = numpy_grad(*data)
        fns = {BASE: lambda data=data: numpy_grad(*data)}
        for wide, name in ((True, "symgrad"), (False, "symgrad, D.T @ X as written")):
            f = symgrad_grads(d, K, wide)
            for g, w in zip(f(*data), want):
                np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-14)
            fns[name] = lambda f=f, data=data: f(*data)
        t = bench(fns, repeats=3 if quick else 15)
        for name, sec in t.items():
            rows.append([f"N={N}, d={d}, K={K}", name, fmt_time(sec), fmt_ratio(sec / t[BASE])])
    return "\n".join([
        "## Wide products: softmax regression's gradient wrt W (K, d)", "",
        table(["size", "system", "gradient", "/ handwritten numpy"], rows), "",
        "_Every result is checked against the handwritten gradient (rel 1e-10). The two "
        "symgrad rows differ only in how the weight gradient's product is written._"])


if __name__ == "__main__":
    print(main())
