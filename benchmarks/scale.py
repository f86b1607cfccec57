"""Scale: graphs of 10^3 to 10^5 nodes derived, simplified and compiled; time per node.

Two graphs, each with a forward graph of the given size:

- the W4 chain h_i = tanh(w_i h_(i-1) + b_i), L = h_k^2, gradient wrt all 2k scalars (a
  scalar graph: compiled to Python ``math`` code);
- a vector chain h_i = tanh(a_i * h_(i-1) + s_i * sum(h_(i-1))) with vectors h_i, a_i of length
  n and scalars s_i, gradient wrt every a_i and s_i (a numpy graph with reductions and
  broadcasts).

Target: 10^5 nodes in under 10 s, and a flat time per node from 10^3 to 10^5.

Run: ``python -m benchmarks --only scale`` (``--quick`` stops at 10^4).
"""

from __future__ import annotations

import gc
import time

import numpy as np

from benchmarks._timing import table


def scalar_chain(nodes: int, tag: str):
    import symgrad as sg

    k = max(1, (nodes - 3) // 5)  # 5 nodes per layer: w, b, w*h, +b, tanh
    x = sg.scalar("x" + tag)
    ps = []
    h = x
    for i in range(k):
        w, b = sg.scalar(f"w{i}{tag}"), sg.scalar(f"b{i}{tag}")
        h = sg.tanh(w * h + b)
        ps += [w, b]
    return [x], ps, h**2


def vector_chain(nodes: int, tag: str, n: int = 8):
    import symgrad as sg

    k = max(1, (nodes - 3) // 6)  # a, s, sum(h), s*sum, a*h, +, tanh: about 6 per layer
    x = sg.vector("x" + tag, n)
    ps = []
    h = x
    for i in range(k):
        a, s = sg.vector(f"a{i}{tag}", n), sg.scalar(f"s{i}{tag}")
        h = sg.tanh(a * h + s * sg.sum(h))
        ps += [a, s]
    return [x], ps, sg.sum(h * h)


def run(kind: str, nodes: int, tag: str) -> dict:
    import symgrad as sg
    from symgrad.graph import count_nodes

    build = scalar_chain if kind == "scalar" else vector_chain
    t0 = time.perf_counter()
    xs, ps, L = build(nodes, tag)
    # the garbage of the previous row (or workload) is collected before the clock starts: a
    # full collection of a 10^5-node graph cost the next, small row 0.2 s (200 µs per node)
    gc.collect()
    t1, c1 = time.perf_counter(), time.process_time()
    gs = sg.grad(L, ps)
    t2 = time.perf_counter()
    gs = sg.simplify(gs)
    t3 = time.perf_counter()
    f = sg.compile(gs, xs + ps)
    t4, c4 = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(0)
    vals = [rng.uniform(0.5, 1.0, v.shape) if v.shape else float(rng.uniform(0.5, 1.0))
            for v in xs + ps]
    out = f(*vals)
    t5 = time.perf_counter()
    assert all(np.all(np.isfinite(o)) for o in out)
    return {"fwd": count_nodes(L), "grad": count_nodes(gs), "build": t1 - t0, "derive": t2 - t1,
            "simplify": t3 - t2, "compile": t4 - t3, "call": t5 - t4, "cpu": c4 - c1}


def main(quick: bool = False) -> str:
    sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
    parts = ["## Scale: derive, simplify and compile graphs of 10^3 to 10^5 nodes", ""]
    worst = 0.0
    for kind in ("scalar", "vector"):
        rows = []
        for nodes in sizes:
            r = run(kind, nodes, f"_{kind[0]}{nodes}")
            total = r["derive"] + r["simplify"] + r["compile"]
            if r["fwd"] >= 90_000:
                worst = max(worst, total)
            rows.append([f"{r['fwd']:,}", f"{r['grad']:,}", f"{r['derive']:.3f} s",
                         f"{r['simplify']:.3f} s", f"{r['compile']:.3f} s", f"**{total:.2f} s**",
                         f"{total / r['fwd'] * 1e6:.1f} µs", f"{r['cpu'] / r['fwd'] * 1e6:.1f} µs",
                         f"{r['call'] * 1e3:.2f} ms"])
        parts += [f"### {kind} chain", "",
                  table(["forward nodes", "gradient nodes", "derive", "simplify", "compile",
                         "total", "per forward node", "CPU time per forward node",
                         "first call"], rows), ""]
    parts.append("_Target: 10^5 nodes in under 10 s with a flat time per node. One run per "
                 "size (each takes seconds); fresh variables each time. CPU time is this "
                 "process's, which other sessions on the shared machine disturb less than wall "
                 "time; at 10^5 nodes the graph (hundreds of MB of Python objects) no longer fits "
                 "any cache, which costs some of the growth._")
    if worst:
        parts.append(f"\n_Largest graphs: {worst:.2f} s._")
    return "\n".join(parts)


if __name__ == "__main__":
    print(main())
