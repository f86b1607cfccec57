"""Instructions per node: is deriving, simplifying and compiling linear in the graph?

Wall time per node grows from 10^3 to 10^5 nodes (see ``scale.py`` and W4(b')), and wall time
cannot tell an algorithm that does more work per node from one whose graph has outgrown the
caches. This benchmark counts the machine instructions instead, with valgrind's cachegrind,
which counts the same total for the same program whatever else the machine is doing. Each
figure is the difference of two processes: one builds the forward graph and stops, the other
builds it and then derives (``sg.grad``), simplifies (scale graphs only) and compiles; the
difference divided by the forward graph's node count (W4: by k) is the work per node.
With ``--cache`` cachegrind also simulates this machine's caches (48 KiB L1d, 32 MiB
last level) and the table shows the last-level misses per node.

Not part of ``python -m benchmarks`` (it takes minutes under valgrind): run it as
``python -m benchmarks --only instructions`` or ``python -m benchmarks.instructions [--quick]
[--cache]``. Needs ``valgrind`` on the PATH; without it, it says so and measures nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

from benchmarks._timing import table

DEFAULT = False  # left out of a plain ``python -m benchmarks`` run (see benchmarks/run.py)

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CACHE = ["--D1=49152,12,64", "--LL=33554432,16,64"]  # this machine's L1d and L3


def _child(kind: str, n: int, mode: str) -> None:
    """Build one graph (after a small warm-up of the same kind); with mode 'full', transform it."""
    import symgrad as sg
    from benchmarks._workloads import chain
    from benchmarks.scale import scalar_chain, vector_chain

    def work(size: int, tag: str, transform: bool) -> None:
        if kind == "w4":
            x, ws, bs, L = chain(size, tag)
            if transform:
                sg.compile(sg.grad(L, ws + bs), [x, *ws, *bs])
            return
        xs, ps, L = (scalar_chain if kind == "scalar" else vector_chain)(size, tag)
        if transform:
            sg.compile(sg.simplify(sg.grad(L, ps)), xs + ps)

    work(100 if kind == "w4" else 1000, "_warm", True)
    work(n, "_t", mode == "full")


def _run(kind: str, n: int, mode: str, cache: bool) -> dict[str, int]:
    """cachegrind's totals for one child process: instructions (and last-level misses)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["valgrind", "--tool=cachegrind", f"--cache-sim={'yes' if cache else 'no'}",
               *(_CACHE if cache else []), f"--cachegrind-out-file={tmp}/cg.out",
               sys.executable, "-m", "benchmarks.instructions", "--child", kind, str(n), mode]
        # a fixed hash seed: string hashing otherwise moves a base run's count by about 0.4 %
        env = dict(os.environ, PYTHONHASHSEED="0",
                   PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=_ROOT, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"valgrind run of {kind} {n} {mode} failed:\n{p.stderr[-2000:]}")

    def total(label: str) -> int:
        m = re.search(label + r":\s+([\d,]+)", p.stderr)
        return int(m.group(1).replace(",", "")) if m else 0

    return {"ir": total(r"I\s+refs"), "ll": total(r"LLd misses")}


def _row(kind: str, n: int, cache: bool) -> dict:
    """Work of deriving (+ simplifying) + compiling one graph of size ``n`` (W4: k = n)."""
    from benchmarks.scale import scalar_chain, vector_chain
    from symgrad.graph import count_nodes

    base, full = _run(kind, n, "base", cache), _run(kind, n, "full", cache)
    if kind == "w4":
        per = n
    else:
        per = count_nodes((scalar_chain if kind == "scalar" else vector_chain)(n, "_n")[2])
    return {"n": n, "per": per, "ir": (full["ir"] - base["ir"]) / per,
            "ll": (full["ll"] - base["ll"]) / per}


def main(quick: bool = False, cache: bool = False) -> str:
    title = "## Instructions per node (valgrind cachegrind): derive, simplify, compile"
    if shutil.which("valgrind") is None:
        return f"{title}\n\n_valgrind is not installed: nothing measured._"
    sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
    ks = [100, 1_000] if quick else [100, 1_000, 10_000]
    parts = [title, ""]
    for kind, label, ns, unit in (("scalar", "scalar chain (scale.py)", sizes, "forward node"),
                                  ("vector", "vector chain (scale.py)", sizes, "forward node"),
                                  ("w4", "W4 chain, derive + compile (no simplify)", ks, "layer")):
        rows = []
        first = None
        for n in ns:
            r = _row(kind, n, cache)
            first = first or r["ir"]
            row = [f"{r['per']:,}" if kind != "w4" else f"{n:,}",
                   f"{r['ir']:,.0f}", f"{r['ir'] / first:.3f}"]
            if cache:
                row.append(f"{r['ll']:.1f}")
            rows.append(row)
        head = ["forward nodes" if kind != "w4" else "k", f"instructions per {unit}",
                "relative to the first row"]
        if cache:
            head.append(f"last-level cache misses per {unit} (simulated)")
        parts += [f"### {label}", "", table(head, rows), ""]
    parts.append("_Each figure: instructions of (build + transform) less those of (build), one "
                 "process each, after a warm-up in the same process; divided by the forward "
                 "graph's node count (W4: by k). A flat column is an algorithm linear in the "
                 "graph; wall time per node can still grow where the graph outgrows the "
                 "caches._")
    return "\n".join(parts)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="stop at 10^4 nodes (W4: k = 1,000)")
    ap.add_argument("--cache", action="store_true", help="also simulate the caches (slower)")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "N", "MODE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        _child(a.child[0], int(a.child[1]), a.child[2])
    else:
        print(main(quick=a.quick, cache=a.cache))
