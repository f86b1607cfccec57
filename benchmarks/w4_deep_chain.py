"""W4, a deep scalar chain: expression swell, derive + compile cost, per-call speed, Hessian.

    h_0 = x;  h_i = tanh(w_i * h_(i-1) + b_i)  (i = 1..k);  L = h_k ** 2

(a) the gradient's graph size next to the forward's (each system's own size measure);
(b) derive + compile time of the gradient wrt all 2k parameters, k = 5 ... 80, and its
    growth up to k = 10,000 (symgrad);
(c) one call with Python floats, against a handwritten ``math`` backprop loop;
(d) the Hessian of the k = 20 chain wrt all 40 parameters (gradient of gradient).

Run: ``python -m benchmarks --only w4`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np

from benchmarks._peers import have, setup_jax
from benchmarks._timing import GCTimer, bench, fmt_ratio, fmt_time, skipped, table
from benchmarks._workloads import chain

PEERS = ["casadi", "jax", "symengine", "sympy"]


def params(k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return 0.8, rng.uniform(0.5, 1.5, k).tolist(), rng.uniform(-0.3, 0.3, k).tolist()


# ------------------------------------------------------------------ handwritten baseline
def grad_math(x, ws, bs):
    k = len(ws)
    hs = [x]
    for i in range(k):
        hs.append(math.tanh(ws[i] * hs[-1] + bs[i]))
    gh = 2.0 * hs[-1]
    gw = [0.0] * k
    gb = [0.0] * k
    for i in range(k - 1, -1, -1):
        gz = gh * (1.0 - hs[i + 1] * hs[i + 1])
        gw[i] = gz * hs[i]
        gb[i] = gz
        gh = gz * ws[i]
    return gw + gb


def hess_fd(x, ws, bs, eps=1e-6):
    """Central differences of the handwritten gradient: the reference Hessian."""
    p = np.array(ws + bs)
    k = len(ws)
    H = np.empty((2 * k, 2 * k))
    for j in range(2 * k):
        e = np.zeros(2 * k)
        e[j] = eps
        gp = np.array(grad_math(x, list((p + e)[:k]), list((p + e)[k:])))
        gm = np.array(grad_math(x, list((p - e)[:k]), list((p - e)[k:])))
        H[:, j] = (gp - gm) / (2 * eps)
    return H


# ------------------------------------------------------------------ symgrad
def sg_build(k: int, tag: str = "", hessian: bool = False) -> dict:
    """symgrad: derive + compile (timed) of the gradient (or Hessian) of a fresh chain."""
    import symgrad as sg
    from symgrad.graph import count_nodes

    t = time.perf_counter()
    x, ws, bs, L = chain(k, tag)
    fwd = time.perf_counter() - t
    with GCTimer() as gct:
        t0, c0 = time.perf_counter(), time.process_time()
        if hessian:
            H = sg.hessian(L, ws + bs)
            outs = [e for row in H for e in row]
        else:
            outs = sg.grad(L, ws + bs)
        t1 = time.perf_counter()
        f = sg.compile(outs, [x, *ws, *bs])
        t2, c2 = time.perf_counter(), time.process_time()
    return {"fn": f, "derive": t1 - t0, "compile": t2 - t1, "cpu": c2 - c0, "gc": gct.seconds,
            "fwd_build": fwd,
            "fwd_nodes": count_nodes(L), "nodes": count_nodes(outs),
            "call": lambda xv, wv, bv: f(xv, *wv, *bv)}


# ------------------------------------------------------------------ peers
def casadi_build(k: int, hessian: bool = False) -> dict:
    import casadi as ca

    x = ca.SX.sym("x")
    p = ca.SX.sym("p", 2 * k)
    t0 = time.perf_counter()
    h = x
    for i in range(k):
        h = ca.tanh(p[i] * h + p[k + i])
    L = h**2
    fwd_build = time.perf_counter() - t0
    fwd = ca.Function("f", [x, p], [L])
    # timed as symgrad's derive + compile is (and as the anchors time casadi): from the
    # forward expression to a callable, not the building of the forward expression itself
    t0 = time.perf_counter()
    out = ca.hessian(L, p)[0] if hessian else ca.gradient(L, p)
    fn = ca.Function("g", [x, p], [out])
    build = time.perf_counter() - t0
    cache: dict = {}

    def call(xv, wv, bv):
        key = id(wv)
        if key not in cache:  # the parameter vector is made once, as for jax and the anchors
            cache[key] = np.array(wv + bv)
        return fn(xv, cache[key])

    return {"fn": fn, "build": build, "fwd_build": fwd_build, "nodes": fn.n_nodes(),
            "fwd_nodes": fwd.n_nodes(), "call": call}


def jax_build(k: int, hessian: bool = False) -> dict:
    jax = setup_jax()
    import jax.numpy as jnp

    def L(x, p):
        h = x
        for i in range(k):
            h = jnp.tanh(p[i] * h + p[k + i])
        return h**2

    x0, wv, bv = params(k)
    pv = jnp.asarray(wv + bv)
    t0 = time.perf_counter()
    g = jax.jit(jax.hessian(L, argnums=1) if hessian else jax.grad(L, argnums=1))
    jax.block_until_ready(g(x0, pv))
    build = time.perf_counter() - t0
    eqns = len(jax.make_jaxpr(jax.hessian(L, argnums=1) if hessian else
                              jax.grad(L, argnums=1))(x0, pv).eqns)
    fwd_eqns = len(jax.make_jaxpr(L)(x0, pv).eqns)
    cache: dict = {}

    def call(xv, wv, bv):
        key = id(wv)
        if key not in cache:  # the device array is made once, as in a training loop
            cache[key] = jnp.asarray(wv + bv)
        return jax.block_until_ready(g(xv, cache[key]))

    return {"fn": g, "build": build, "nodes": eqns, "fwd_nodes": fwd_eqns, "call": call}


def symengine_build(k: int) -> dict:
    import symengine as se

    x = se.Symbol("x")
    ws = se.symbols(f"w1:{k + 1}")
    bs = se.symbols(f"b1:{k + 1}")
    h = x
    for i in range(k):
        h = se.tanh(ws[i] * h + bs[i])
    L = h**2
    t0 = time.perf_counter()
    grads = [L.diff(p) for p in list(ws) + list(bs)]
    f = se.Lambdify([x, *ws, *bs], grads, cse=True, backend="llvm")
    build = time.perf_counter() - t0
    return {"build": build, "call": lambda xv, wv, bv: f(xv, *wv, *bv)}


def sympy_build(k: int) -> dict:
    import sympy as sp

    x = sp.Symbol("x")
    ws = sp.symbols(f"w1:{k + 1}")
    bs = sp.symbols(f"b1:{k + 1}")
    h = x
    for i in range(k):
        h = sp.tanh(ws[i] * h + bs[i])
    L = h**2
    t0 = time.perf_counter()
    grads = [sp.diff(L, p) for p in list(ws) + list(bs)]
    f = sp.lambdify([x, *ws, *bs], grads, modules="math", cse=True)
    build = time.perf_counter() - t0
    return {"build": build, "call": lambda xv, wv, bv: f(xv, *wv, *bv),
            "fwd_nodes": int(sp.count_ops(L)), "nodes": int(sum(sp.count_ops(g) for g in grads))}


def _check(name: str, out, ref, rtol: float = 1e-9) -> None:
    got = np.asarray([float(v) for v in np.ravel(np.asarray(out, dtype=object))] if not
                     hasattr(out, "full") else np.asarray(out.full()).ravel(), dtype=float)
    assert np.allclose(got, np.ravel(ref), rtol=rtol, atol=1e-12), name


# ------------------------------------------------------------------ parts
def _growth(b: dict) -> str:
    """A table cell: forward size → gradient size (their ratio)."""
    return f"{b['fwd_nodes']} → {b['nodes']} ({b['nodes'] / b['fwd_nodes']:.2f}x)"


def part_ab(quick: bool) -> tuple[str, dict]:
    ks = [5, 10, 20] if quick else [5, 10, 20, 40, 80]
    size_rows, time_rows, builds = [], [], {}
    for k in ks:
        xv, wv, bv = params(k)
        ref = grad_math(xv, wv, bv)
        # casadi's builds interleaved with symgrad's: the same noisy moments hit both
        reps, creps = [], []
        for r in range(3 if quick else 7):
            reps.append(sg_build(k, f"_{k}_{r}"))
            if have("casadi"):
                creps.append(casadi_build(k))
        s = reps[0]
        _check("symgrad", s["call"](xv, wv, bv), ref)
        dc = statistics.median(r["derive"] + r["compile"] for r in reps)
        best = min(reps, key=lambda r: r["derive"] + r["compile"])
        builds[k] = {"symgrad": s}
        size = [_growth(s)]
        times = [f"**{fmt_time(dc)}** (best {fmt_time(best['derive'] + best['compile'])}: "
                 f"{fmt_time(best['derive'])} + {fmt_time(best['compile'])})"]
        if creps:
            p = creps[0]
            _check("casadi", p["call"](xv, wv, bv), ref)
            builds[k]["casadi SX"] = p
            size.append(_growth(p))
            cdc = statistics.median(r["build"] for r in creps)
            times.append(f"{fmt_time(cdc)} (symgrad / casadi: {dc / cdc:.1f})")
        if have("jax"):
            p = jax_build(k)
            _check("jax", p["call"](xv, wv, bv), ref)
            builds[k]["jax jit(grad)"] = p
            size.append(_growth(p))
            times.append(fmt_time(p["build"]))
        if have("symengine"):
            if k <= (20 if quick else 80):
                se_ = symengine_build(k)
                _check("symengine", se_["call"](xv, wv, bv), ref)
                builds[k]["symengine llvm"] = se_
                times.append(fmt_time(se_["build"]))
            else:
                times.append("skipped")
        if have("sympy"):
            if k <= (5 if quick else 10):
                sy = sympy_build(k)
                _check("sympy", sy["call"](xv, wv, bv), ref)
                builds[k]["sympy lambdify(math, cse)"] = sy
                size.append(f"{sy['fwd_nodes']} → {sy['nodes']} "
                            f"({sy['nodes'] / sy['fwd_nodes']:.0f}x, tree)")
                times.append(fmt_time(sy["build"]))
            else:
                size.append("skipped (0.2 s at k=5, 250 s at k=80)")
                times.append("skipped")
        fwd = fmt_time(statistics.median(r["fwd_build"] for r in reps))
        if creps:
            fwd += f" / {fmt_time(statistics.median(r['fwd_build'] for r in creps))}"
        size_rows.append([str(k)] + size)
        time_rows.append([str(k)] + times + [fwd])
    heads = ["k", "symgrad nodes"] + (["casadi SX n_nodes"] if have("casadi") else []) + \
        (["jax jaxpr eqns"] if have("jax") else []) + \
        (["sympy count_ops"] if have("sympy") else [])
    theads = ["k", "symgrad derive + compile: median (best: derive + compile)"] + \
        (["casadi SX gradient + Function"] if have("casadi") else []) + \
        (["jax jit(grad) trace + compile"] if have("jax") else []) + \
        (["symengine diff + Lambdify(llvm)"] if have("symengine") else []) + \
        (["sympy diff + lambdify(cse)"] if have("sympy") else []) + \
        ["building the forward graph: symgrad" + (" / casadi" if have("casadi") else "")]
    out = ["### W4(a) gradient graph size next to the forward graph (forward → gradient)", "",
           table(heads, size_rows), "",
           "_symgrad target: at most 2.0x. sympy counts tree operations (no sharing)._", "",
           "### W4(b) derive + compile of the gradient wrt all 2k parameters", "",
           table(theads, time_rows), "",
           "_Every system is timed from the forward expression, already built, to a callable "
           "(the last column times building that expression, not counted in the others). "
           "symgrad: median of fresh chains (new variable names each time); target 5 ms at "
           "k = 80. casadi: median of as many builds, interleaved with symgrad's (the ratio "
           "is the one figure noise hits little). Other peers: one build each (jax: trace + "
           "XLA compile + first call)._"]
    return "\n".join(out), builds


def part_growth(quick: bool) -> str:
    ks = [100, 1000] if quick else [100, 1000, 10000]
    rows = []
    for k in ks:
        reps = [sg_build(k, f"_g{k}_{r}") for r in range(3 if k >= 10000 else 5)]
        best = min(reps, key=lambda r: r["derive"] + r["compile"])
        dc = best["derive"] + best["compile"]
        med = statistics.median(r["derive"] + r["compile"] for r in reps)
        cpu = min(r["cpu"] for r in reps)
        gcs = statistics.median(r["gc"] for r in reps)
        n = reps[0]["nodes"]
        rows.append([str(k), f"{n:,}", fmt_time(dc), f"{dc / k * 1e6:.1f} µs",
                     f"{med / k * 1e6:.1f} µs", f"{cpu / k * 1e6:.1f} µs",
                     f"{gcs / k * 1e6:.1f} µs", f"{dc / n * 1e6:.2f} µs"])
        del reps
    return "\n".join(["### W4(b') growth of symgrad's derive + compile with k", "",
                      table(["k", "gradient nodes", "derive + compile (best)", "per layer (best)",
                             "per layer (median)", "CPU time per layer (best)",
                             "of which garbage collection (median)", "per gradient node"],
                            rows), "",
                      "_Linear means a flat 'per layer' column (best and median of 5 runs, 3 at "
                      "k = 10,000; every build is kept alive, as the table's earlier rows are "
                      "not). CPU time is this process's, which other sessions on the shared "
                      "machine disturb less than the wall time; garbage collection is the time "
                      "Python's cyclic collector ran inside the timed derive + compile._"])


def part_c(builds: dict, quick: bool) -> tuple[str, float]:
    rows = []
    ratio80 = float("nan")
    for k, systems in builds.items():
        xv, wv, bv = params(k)
        calls = {"handwritten math": lambda xv=xv, wv=wv, bv=bv: grad_math(xv, wv, bv)}
        for name, b in systems.items():
            calls[name] = lambda b=b, xv=xv, wv=wv, bv=bv: b["call"](xv, wv, bv)
        res = bench(calls, repeats=3 if quick else 7, min_time=0.03 if quick else 0.1)
        base = res["handwritten math"]
        rows.append([str(k), fmt_time(base)] + [
            f"{fmt_time(res[n])} ({fmt_ratio(res[n] / base)})" for n in systems])
        if k == 80:
            ratio80 = res["symgrad"] / base
    heads = ["k", "handwritten math"] + list(next(iter(builds.values())).keys())
    width = len(heads)
    rows = [r + [""] * (width - len(r)) for r in rows]
    return "\n".join(["### W4(c) one call with Python floats (ratio to the handwritten "
                      "backprop loop)", "", table(heads, rows), "",
                      "_symgrad target: at most 1.0x handwritten math at k = 80. casadi and jax "
                      "take the parameters as one vector (built once)._"]), ratio80


def part_d(quick: bool) -> str:
    k = 20
    xv, wv, bv = params(k)
    H = hess_fd(xv, wv, bv)
    reps = [sg_build(k, f"_h{r}", hessian=True) for r in range(1 if quick else 5)]
    s = reps[0]
    got = np.array(s["call"](xv, wv, bv)).reshape(2 * k, 2 * k)
    assert np.allclose(got, H, rtol=1e-5, atol=1e-7), "symgrad Hessian"
    dc = statistics.median(r["derive"] + r["compile"] for r in reps)
    best = min(reps, key=lambda r: r["derive"] + r["compile"])
    systems = {"symgrad": (s, f"**{fmt_time(dc)}** (best {fmt_time(best['derive'])} + "
                                f"{fmt_time(best['compile'])})", s["nodes"])}
    if have("casadi"):
        ca_ = casadi_build(k, hessian=True)
        assert np.allclose(np.array(ca_["call"](xv, wv, bv)), H, rtol=1e-5, atol=1e-7)
        systems["casadi SX hessian + Function"] = (ca_, fmt_time(ca_["build"]), ca_["nodes"])
    if have("jax") and not quick:
        jx = jax_build(k, hessian=True)
        assert np.allclose(np.array(jx["call"](xv, wv, bv)), H, rtol=1e-5, atol=1e-7)
        systems["jax jit(hessian)"] = (jx, fmt_time(jx["build"]), jx["nodes"])
    calls = {n: (lambda b=b: b["call"](xv, wv, bv)) for n, (b, _, _) in systems.items()}
    res = bench(calls, repeats=3 if quick else 7, min_time=0.05 if quick else 0.2)
    rows = [[n, t, f"{nodes:,}", f"**{fmt_time(res[n])}**"]
            for n, (_, t, nodes) in systems.items()]
    return "\n".join([f"### W4(d) Hessian of the k = {k} chain wrt all {2 * k} parameters", "",
                      table(["system", "derive + compile", "size (nodes / eqns)", "per call"],
                            rows), "",
                      "_symgrad targets: derive + compile at most 50 ms, one call at most "
                      "casadi's. All checked against central differences of the handwritten "
                      "gradient._"])


def main(quick: bool = False) -> str:
    t0 = time.perf_counter()
    ab, builds = part_ab(quick)
    c, r80 = part_c(builds, quick)
    parts = ["## W4, the deep scalar chain h_i = tanh(w_i h_(i-1) + b_i), L = h_k^2", "",
             ab, "", part_growth(quick), "", c, "", part_d(quick), ""]
    missing = skipped(PEERS)
    if missing:
        parts += [missing, ""]
    parts.append(f"_W4 wall time {time.perf_counter() - t0:.0f} s"
                 + (f"; symgrad per call at k = 80: {r80:.2f}x handwritten math" if r80 == r80
                    else "") + "._")
    return "\n".join(parts)


if __name__ == "__main__":
    print(main())
