"""The Hessian of softmax regression with respect to its weight matrix (not one of issue 4's
workloads: the case that made symgrad lower identity regions as contractions).

    f(W) = -sum(Y ⊙ log_softmax(X W, axis=1)),   X of (N, d), W of (d, K), Y one-hot

The Hessian has shape (d, K, d, K): the sum over samples of x x^T ⊗ (diag(p) - p p^T). Its
reverse pass is seeded by the identity I(d, K), and computed op by op it makes temporaries of
d K N K entries; symgrad's numpy code computes that region as contractions
(``symgrad._contract``). Timed against the handwritten numpy closed form (the base of every
ratio), symgrad's op-by-op lowering (what it did before), and jax and torch where installed
(their own Hessians, and symgrad's code on them: its contractions through their einsum),
round-robin in one process; the peak memory of a call (Python's tracemalloc: numpy's arrays,
not jax's or torch's) is the second figure of the numpy-based rows.

Run: ``python -m benchmarks --only matrix_hessian`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import os
import sys
import tracemalloc
from functools import partial
from typing import Callable

import numpy as np

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._timing import bench, fmt_ratio, fmt_time, have, skipped, table

SIZES = ((500, 20, 5), (2000, 50, 10), (2000, 100, 10))
QUICK_SIZES = ((200, 10, 3), (500, 20, 5))
PEERS = ["jax", "torch"]
BASE = "handwritten numpy (closed form)"
HessFn = Callable[[np.ndarray, np.ndarray, np.ndarray], object]


def make_data(N: int, d: int, K: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, d))
    Y = np.eye(K)[rng.integers(0, K, N)]
    W = rng.standard_normal((d, K)) / np.sqrt(d)
    return X, Y, W


def numpy_closed_form(X, Y, W):
    Z = X @ W
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    d, K = W.shape
    M = (X[:, :, None] * P[:, None, :]).reshape(len(X), d * K)
    H = -(M.T @ M).reshape(d, K, d, K)  # - sum_n (x p)(x p)^T
    G = X.T @ (X[:, :, None] * P[:, None, :]).reshape(len(X), d * K)  # sum_n x x^T p_k
    G = G.reshape(d, d, K)
    for k in range(K):
        H[:, k, :, k] += G[:, :, k]
    return H


def symgrad_hessian(contract: bool = True) -> HessFn:
    import symgrad as sg
    import symgrad._contract
    import symgrad._emit as emit

    X, Y = sg.matrix("X", ("N", "d")), sg.matrix("Y", ("N", "K"))
    W = sg.matrix("W", ("d", "K"))
    H = sg.hessian(-sg.sum(Y * sg.log_softmax(X @ W, axis=1)), W)
    if contract:
        return sg.compile(H, [X, Y, W])
    try:  # the op-by-op lowering of the same graph
        emit.contract_fusions = lambda *a: ({}, set())
        return sg.compile(H, [X, Y, W])
    finally:
        emit.contract_fusions = symgrad._contract.contract_fusions


def symgrad_on(backend: str) -> HessFn:
    """symgrad's code for ``backend`` (its contractions through the library's einsum)."""
    import symgrad as sg

    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    X, Y = sg.matrix("X", ("N", "d")), sg.matrix("Y", ("N", "K"))
    W = sg.matrix("W", ("d", "K"))
    f = sg.compile(sg.hessian(-sg.sum(Y * sg.log_softmax(X @ W, axis=1)), W), [X, Y, W],
                   backend=backend)
    if backend == "jax":
        return lambda X, Y, W: jax.block_until_ready(f(X, Y, W))
    import torch

    return lambda X, Y, W: f(torch.as_tensor(X), torch.as_tensor(Y), torch.as_tensor(W))


def jax_hessian() -> HessFn:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def f(W, X, Y):
        return -jnp.sum(Y * jax.nn.log_softmax(X @ W, axis=1))

    h = jax.jit(jax.hessian(f))
    return lambda X, Y, W: jax.block_until_ready(h(jnp.asarray(W), jnp.asarray(X),
                                                   jnp.asarray(Y)))


def torch_hessian() -> HessFn:
    import torch
    import torch.func

    def call(X, Y, W):
        Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
        f = lambda w: -torch.sum(Yt * torch.log_softmax(Xt @ w, dim=1))  # noqa: E731
        return torch.func.hessian(f)(torch.as_tensor(W))

    return call


def _peak(fn: Callable[[], object]) -> float:
    fn()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(quick: bool = False) -> str:
    sizes = QUICK_SIZES if quick else SIZES
    systems: dict[str, HessFn] = {BASE: numpy_closed_form,
                                  "**symgrad** (contractions)": symgrad_hessian(),
                                  "symgrad op by op (before)": symgrad_hessian(False)}
    traced = set(systems)
    if have("jax"):
        systems["jax jit(jax.hessian)"] = jax_hessian()
        systems["symgrad backend='jax'"] = symgrad_on("jax")
    if have("torch"):
        systems["torch.func.hessian"] = torch_hessian()
        if have("array_api_compat"):
            systems["symgrad backend='torch'"] = symgrad_on("torch")
    results: dict[str, dict] = {k: {} for k in systems}
    for N, d, K in sizes:
        X, Y, W = make_data(N, d, K)
        want = numpy_closed_form(X, Y, W)
        calls = {}
        for name, h in systems.items():
            got = h(X, Y, W)
            got = got.detach().numpy() if hasattr(got, "detach") else np.asarray(got)
            if not np.allclose(got, want, rtol=1e-8, atol=1e-10):
                results[name][(N, d, K)] = "WRONG RESULT"
                continue
            calls[name] = partial(h, X, Y, W)
        times = bench(calls, repeats=3 if quick else 7, min_time=0.05 if quick else 0.2)
        for name, t in times.items():
            cell = f"{fmt_time(t)} ({fmt_ratio(t / times[BASE])})"
            if name in traced:
                cell += f", {_peak(calls[name]) / 1e6:.3g} MB"
            results[name][(N, d, K)] = cell
    headers = ["system"] + [f"N = {N}, d = {d}, K = {K}" for N, d, K in sizes]
    rows = [[name] + [results[name].get(s, "") for s in sizes] for name in systems]
    out = ["## Softmax regression: the Hessian with respect to W (d, K), float64", ""]
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        out += [f"_Load average before the run: {load} ({os.cpu_count()} cores)._", ""]
    out += ["Per call after warm-up (ratio to the handwritten closed form), and for the numpy "
            "rows the peak memory of one call. The output itself is d K d K floats "
            "(8 MB at d = 100, K = 10).", "", table(headers, rows), ""]
    skip = skipped(PEERS)
    if skip:
        out += [skip, ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(main(quick="--quick" in sys.argv))
