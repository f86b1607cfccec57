"""The fused CPU backend (``backend="numba"``) against numpy, symgrad's numpy code and JAX.

(a) the lecture's scalar MLP over a batch of N = 10^6 samples, gradient of the mean loss
    (target: at most 1.2x ``jax.jit(jax.grad)`` timed in the same rounds);
(b) the vector MLP at d=10, l=8, N=32, loss + gradient (target: at most 0.7x handwritten numpy);
(c) compile time: derive + compile + first call in a fresh process with an empty kernel cache,
    and again in a second fresh process that finds numba's cache.

``python benchmarks/backends_fused.py [--quick]`` or ``python -m benchmarks --only backends``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._timing import bench, fmt_ratio, fmt_time, have, table  # noqa: E402
from benchmarks._workloads import (  # noqa: E402
    scalar_mlp,
    scalar_mlp_loss_in,
    scalar_mlp_numpy,
    vector_mlp,
    vector_mlp_data,
    vector_mlp_loss_in,
    vector_mlp_numpy,
)

ARGS = (0.7, -0.3, 1.3, 0.2)  # u, c, w, b


# ------------------------------------------------------------------ the workloads
def mlp_data(d, h, n, seed=0):
    """The vector MLP's values, b as a Python float."""
    U, c, w, _, X, y = vector_mlp_data(d, h, n, seed=seed)
    return [U, c, w, 0.1, X, y]


def _jax_lecture():
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    g = jax.jit(jax.grad(scalar_mlp_loss_in(jnp, batch=True), argnums=(0, 1, 2, 3)))
    return lambda *a: jax.block_until_ready(g(*a))


def _jax_mlp():
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    vg = jax.jit(jax.value_and_grad(vector_mlp_loss_in(jnp)))

    def call(U, c, w, b, X, y):
        return jax.block_until_ready(vg((U, c, w, b), X, y))

    return call


def _ready(x):
    import jax

    return jax.block_until_ready(x)


# ------------------------------------------------------------------ compile time
def _child(which: str) -> None:
    """Derive, compile and call once in this (fresh) process; print the times as JSON."""
    t0 = time.perf_counter()
    import numba  # noqa: F401  (its import is not the compile)

    import symgrad as sg

    t_import = time.perf_counter() - t0
    if which == "trivial":  # numba's own cost of a first call, loaded from its cache
        import importlib.util

        os.makedirs(os.environ["SYMGRAD_CACHE_DIR"], exist_ok=True)
        path = os.path.join(os.environ["SYMGRAD_CACHE_DIR"], "trivial_numba.py")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("import numba\n\n@numba.njit(cache=True)\ndef f(x):\n"
                        "    return x + 1.0\n")
        t0 = time.perf_counter()
        spec = importlib.util.spec_from_file_location("trivial_numba", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["trivial_numba"] = mod
        spec.loader.exec_module(mod)
        mod.f(1.0)
        print(json.dumps({"import": t_import, "build": 0.0, "first": time.perf_counter() - t0,
                          "kernels": 1}))
        return
    if which == "lecture":
        outs, ins = scalar_mlp(batch=True)
        vals = [*ARGS, np.linspace(-1, 1, 1000), np.ones(1000)]
    else:
        outs, ins = vector_mlp()
        vals = mlp_data(10, 8, 32)
    t0 = time.perf_counter()
    fn = sg.compile(outs, ins, backend="numba")
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn(*vals)
    t_first = time.perf_counter() - t0
    print(json.dumps({"import": t_import, "build": t_build, "first": t_first,
                      "kernels": len(fn.kernels) // 2}))


def compile_times(which: str) -> tuple[dict, dict]:
    """(cold, warm): a fresh process with an empty cache, then another one that finds it."""
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, SYMGRAD_CACHE_DIR=d)
        runs = []
        for _ in range(2):
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", which],
                               env=env, capture_output=True, text=True)
            if r.returncode:
                raise RuntimeError(f"compile-time child {which!r} failed: {r.stderr[-500:]}")
            runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return runs[0], runs[1]


# ------------------------------------------------------------------ the report
def main(quick: bool = False) -> str:
    import symgrad as sg

    if not have("numba"):
        return "## Fused CPU backend\n\n_numba is not installed (`pip install symgrad[numba]`)._"
    out = ["## Fused CPU backend (`backend=\"numba\"`)", ""]
    repeats, min_time = (3, 0.05) if quick else (9, 0.2)

    # (a) lecture MLP, N = 10^6
    n = 100_000 if quick else 1_000_000
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(n), (rng.random(n) < 0.5).astype(float)
    vals = [*ARGS, x, y]
    outs, ins = scalar_mlp(batch=True)
    f_np = sg.compile(outs, ins)
    f_nb = sg.compile(outs, ins, backend="numba")
    want = scalar_mlp_numpy(*vals)
    for f in (f_np, f_nb):
        np.testing.assert_allclose(np.array(f(*vals), dtype=float), want, rtol=1e-9)
    fns = {"handwritten numpy": lambda: scalar_mlp_numpy(*vals),
           "symgrad numpy": lambda: f_np(*vals), "symgrad numba": lambda: f_nb(*vals)}
    if have("jax"):
        jg = _jax_lecture()
        np.testing.assert_allclose(np.array(jg(*vals), dtype=float), want, rtol=1e-9)
        fns["jax.jit(grad)"] = lambda: jg(*vals)
        f_jx = sg.compile(outs, ins, backend="jax")
        np.testing.assert_allclose(np.array(f_jx(*vals), dtype=float), want, rtol=1e-9)
        fns["symgrad jax (jit)"] = lambda: _ready(f_jx(*vals))
    t = bench(fns, repeats=repeats, min_time=min_time)
    base = t.get("jax.jit(grad)")
    rows = [[k, fmt_time(v), fmt_ratio(v / t["handwritten numpy"]),
             fmt_ratio(v / base) if base else "—"] for k, v in t.items()]
    out += [f"### (a) lecture scalar MLP, N = {n:,}: gradient of the mean loss", "",
            table(["system", "per call", "/ handwritten numpy", "/ jax.jit"], rows), ""]
    if base and not quick:
        r = t["symgrad numba"] / base
        out.append(f"Target ≤ 1.20x jax.jit: **{r:.2f}x** ({'met' if r <= 1.2 else 'NOT met'}).")
        out.append("")

    # (b) vector MLP, d=10, l=8, N=32
    outs, ins = vector_mlp()
    vals2 = mlp_data(10, 8, 32)
    g_np = sg.compile(outs, ins)
    g_nb = sg.compile(outs, ins, backend="numba")
    want2 = vector_mlp_numpy(*vals2)
    for f in (g_np, g_nb):
        for a, b in zip(f(*vals2), want2):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-9, atol=1e-15)
    fns = {"handwritten numpy": lambda: vector_mlp_numpy(*vals2),
           "symgrad numpy": lambda: g_np(*vals2), "symgrad numba": lambda: g_nb(*vals2)}
    if have("jax"):
        jm = _jax_mlp()
        fns["jax.jit(value_and_grad)"] = lambda: jm(*vals2)
        g_jx = sg.compile(outs, ins, backend="jax")
        fns["symgrad jax (jit)"] = lambda: _ready(g_jx(*vals2))
    t = bench(fns, repeats=repeats, min_time=min_time)
    rows = [[k, fmt_time(v), fmt_ratio(v / t["handwritten numpy"])] for k, v in t.items()]
    r = t["symgrad numba"] / t["handwritten numpy"]
    out += ["### (b) vector MLP, d=10, l=8, N=32: loss + gradient", "",
            table(["system", "per call", "/ handwritten numpy"], rows), ""]
    if quick:
        out += ["_Quick run (N = 10^5 in (a), few short rounds): the targets are judged on a "
                "full run._", ""]
    else:
        out += [f"Target ≤ 0.70x handwritten numpy: **{r:.2f}x** "
                f"({'met' if r <= 0.7 else 'NOT met'}).", ""]

    # (c) compile time
    rows = []
    for which, label in (("lecture", "lecture MLP gradient"), ("mlp", "vector MLP loss+grad"),
                         ("trivial", "numba alone: `x + 1.0`, njit(cache=True)")):
        cold, warm = compile_times(which)
        rows.append([label, str(cold["kernels"]), fmt_time(cold["build"]),
                     fmt_time(cold["first"]), fmt_time(warm["build"] + warm["first"])])
    out += ["### (c) compile time (fresh processes, after `import numba, symgrad`)", "",
            table(["graph", "kernels", "derive + compile", "first call (numba JIT), cold cache",
                   "derive + compile + first call, warm cache (2nd process)"], rows), "",
            "_Each kernel is compiled lazily, per argument types, at its first call; the "
            "parallel form only when an input is large. The warm column is a second process "
            "that loads the kernels from numba's cache; most of it is numba's own first use in "
            "a process, which the last row (a trivial cached function) measures alone._"]
    return "\n".join(out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        _child(a.child)
    else:
        print(main(quick=a.quick))
