"""W3: the Hessian of logistic regression (the Laue, Mitterreiter and Giesen benchmark).

    f(w) = sum(log(1 + exp(-y ⊙ (X w)))),   X of shape (2n, n),   y in {-1, +1}^(2n)

symgrad derives the Hessian once, with symbolic sizes, as one matrix expression
(X^T diag(s ⊙ (1 - s)) X) and compiles it; it is timed against the handwritten numpy closed form
``X.T @ (d[:, None] * X)`` (the base of every ratio), the same Hessian as ``Z^T Z`` through BLAS
syrk, and every peer that is installed (jax, torch, autograd, pytensor), all in one process,
round-robin. A second table gives the one-off cost of derive + simplify + compile.

Run: ``python -m benchmarks --only w3`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from typing import Callable

import numpy as np

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._timing import bench, fmt_ratio, fmt_time, have, median_of, skipped, table

SIZES = (100, 500, 1000)
QUICK_SIZES = (50, 100)
PEERS = ["jax", "torch", "autograd", "pytensor"]
SLOW_CALL_S = 0.3  # systems slower than this per call are timed with single calls
CALL_CAP_S = 20.0  # skip a system at a size where its predicted call (n^3) exceeds this

BASE = "handwritten numpy X^T (d ⊙ X) (closed form)"
HessFn = Callable[[np.ndarray, np.ndarray, np.ndarray], object]


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = 2 * n
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    y = np.where(rng.random(m) < 0.5, -1.0, 1.0)
    w = rng.standard_normal(n) / np.sqrt(n)
    return w, X, y


# ------------------------------------------------------------------ handwritten numpy
def numpy_closed_form(w, X, y):
    s = 1.0 / (1.0 + np.exp(-y * (X @ w)))
    return X.T @ ((s * (1.0 - s))[:, None] * X)


def numpy_syrk(w, X, y):
    s = 1.0 / (1.0 + np.exp(-y * (X @ w)))
    Z = np.sqrt(s * (1.0 - s))[:, None] * X
    return Z.T @ Z  # one buffer, transposed: numpy calls BLAS syrk


# ------------------------------------------------------------------ symgrad
def symgrad_build(tag: str = ""):
    """Derive, simplify and compile the Hessian with symbolic sizes (fresh names per ``tag``)."""
    import symgrad as sg

    X = sg.matrix("X" + tag, ("m", "n"))
    y = sg.vector("y" + tag, "m")
    w = sg.vector("w" + tag, "n")
    f = sg.sum(sg.log(1 + sg.exp(-y * (X @ w))))
    H = sg.simplify(sg.hessian(f, w))
    return sg.compile(H, [w, X, y]), H


# ------------------------------------------------------------------ peers
def jax_hessian() -> HessFn:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def f(w, X, y):
        return jnp.sum(jnp.log(1 + jnp.exp(-y * (X @ w))))

    h = jax.jit(jax.hessian(f))
    on_device: dict = {}

    def call(w, X, y):  # X and y stay on the device between calls, as in an optimiser loop
        if on_device.get("key") != id(X):
            on_device.update(key=id(X), X=jnp.asarray(X), y=jnp.asarray(y))
        return jax.block_until_ready(h(jnp.asarray(w), on_device["X"], on_device["y"]))

    return call


def _torch_loss(X, y):
    import torch

    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    return lambda w: torch.sum(torch.log(1 + torch.exp(-yt * (Xt @ w))))


def torch_func_hessian() -> HessFn:
    import torch
    import torch.func

    return lambda w, X, y: torch.func.hessian(_torch_loss(X, y))(torch.as_tensor(w))


def torch_functional_hessian() -> HessFn:
    import torch
    from torch.autograd.functional import hessian

    return lambda w, X, y: hessian(_torch_loss(X, y), torch.as_tensor(w))


def autograd_hessian() -> HessFn:
    import autograd
    import autograd.numpy as anp

    def f(w, X, y):
        return anp.sum(anp.log(1 + anp.exp(-y * anp.dot(X, w))))

    return autograd.hessian(f)


def pytensor_hessian() -> HessFn:
    import pytensor
    import pytensor.tensor as pt
    from pytensor.gradient import hessian

    w, X, y = pt.dvector("w"), pt.dmatrix("X"), pt.dvector("y")
    f = pt.sum(pt.log(1 + pt.exp(-y * (X @ w))))
    return pytensor.function([w, X, y], hessian(f, w))


def as_array(H) -> np.ndarray:
    if hasattr(H, "detach"):
        return H.detach().numpy()
    return np.asarray(H)


def peer_factories() -> dict[str, Callable[[], HessFn]]:
    out: dict[str, Callable[[], HessFn]] = {}
    if have("jax"):
        out["jax jit(jax.hessian)"] = jax_hessian
    if have("torch"):
        out["torch.func.hessian"] = torch_func_hessian
        out["torch.autograd.functional.hessian"] = torch_functional_hessian
    if have("autograd"):
        out["autograd.hessian"] = autograd_hessian
    if have("pytensor"):
        out["pytensor gradient.hessian"] = pytensor_hessian
    return out


# ------------------------------------------------------------------ the tables
def per_call_table(sizes, quick: bool) -> tuple[str, list[str]]:
    fn, _ = symgrad_build()
    systems: dict[str, HessFn] = {
        BASE: numpy_closed_form,
        "handwritten numpy Z^T Z, Z = sqrt(d) X (syrk)": numpy_syrk,
        "**symgrad compiled Hessian**": fn,
    }
    notes = []
    for name, make in peer_factories().items():
        try:
            systems[name] = make()
        except Exception as err:  # a peer that fails to build is reported, not fatal
            notes.append(f"{name}: could not build ({type(err).__name__}: {err})")
    results: dict[str, dict[int, str]] = {k: {} for k in systems}
    last: dict[str, tuple[int, float]] = {}
    for n in sizes:
        w, X, y = make_data(n)
        want = numpy_closed_form(w, X, y)
        fast, slow = {}, {}
        for name, h in systems.items():
            if name in last:
                n0, t0 = last[name]
                if t0 * (n / n0) ** 3 > CALL_CAP_S:
                    results[name][n] = f"skip: predicted {t0 * (n / n0) ** 3:.0f} s"
                    continue
            t_first = time.perf_counter()
            got = as_array(h(w, X, y))
            t_first = time.perf_counter() - t_first
            if not np.allclose(got, want, rtol=1e-9, atol=1e-12):
                results[name][n] = "WRONG RESULT"
                continue
            group = slow if t_first > SLOW_CALL_S else fast
            group[name] = partial(h, w, X, y)
        reps = 3 if quick else 7
        times = bench(fast, repeats=reps, min_time=0.05 if quick else 0.2)
        for name, call in slow.items():
            times[name] = median_of(call, repeats=1 if quick else 3)
        base = times[BASE]
        for name, t in times.items():
            results[name][n] = f"{fmt_time(t)} ({fmt_ratio(t / base)})"
            last[name] = (n, t)
    headers = ["system"] + [f"n = {n}" for n in sizes]
    rows = [[name] + [results[name].get(n, "") for n in sizes] for name in systems]
    return table(headers, rows), notes


def build_time_table(quick: bool) -> str:
    import symgrad  # noqa: F401  (the import is not part of the build)

    first = time.perf_counter()
    symgrad_build("_first")
    first = time.perf_counter() - first
    k = [0]

    def fresh():
        k[0] += 1
        symgrad_build(f"_{k[0]}")  # fresh names: nothing is reused from earlier builds

    med = median_of(fresh, repeats=5 if quick else 21)
    _, H = symgrad_build()
    rows = [["symgrad derive + simplify + compile (symbolic m, n: once for every n)",
             fmt_time(med), fmt_time(first), str(H.graph.number_of_nodes())]]
    return table(["what", "median", "first in this process", "nodes in H"], rows)


def main(quick: bool = False) -> str:
    sizes = QUICK_SIZES if quick else SIZES
    out = ["## W3: Hessian of logistic regression, X of shape (2n, n), float64", ""]
    if hasattr(os, "getloadavg"):  # the machine is shared: say how busy it was
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        out += [f"_Load average before the run: {load} ({os.cpu_count()} cores)._", ""]
    per_call, notes = per_call_table(sizes, quick)
    out += ["Per call, after warm-up; in parentheses the ratio to the handwritten closed form "
            "(lower is better). Every Hessian is checked against the closed form first.", "",
            per_call, ""]
    out += ["### Derive, simplify and compile", "", build_time_table(quick), ""]
    skip = skipped(PEERS)
    if skip:
        out += [skip, ""]
    out += [f"_{note}_" for note in notes]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(main(quick="--quick" in sys.argv))
