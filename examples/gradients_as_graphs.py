"""Gradients are graphs too: node counts of a forward graph, its gradient and its Hessian,
and derivatives of derivatives (the third derivative of the sigmoid).

The reverse pass adds a constant number of nodes per forward node and reuses the forward
nodes, so the gradient graph of the deep chain h_i = tanh(w_i*h_(i-1) + b_i), L = h_k**2 grows
linearly in k, while the expression tree sympy builds grows much faster.
Run: python examples/gradients_as_graphs.py
"""

import sys

import _path  # noqa: F401
import numpy as np
import sympy

import symgrad as sg

ok = True


def chain(k):
    x = sg.scalar("x")
    ws = [sg.scalar(f"w{i}") for i in range(1, k + 1)]
    bs = [sg.scalar(f"b{i}") for i in range(1, k + 1)]
    h = x
    for w, b in zip(ws, bs):
        h = sg.tanh(w * h + b)
    return x, ws, bs, h**2


print("deep chain h_i = tanh(w_i*h_(i-1) + b_i), L = h_k**2, gradient wrt all 2k parameters")
print(f"{'k':>6} {'forward nodes':>14} {'+ gradients':>12} {'ratio':>7}")
for k in (5, 10, 100, 1000):
    x, ws, bs, L = chain(k)
    grads = sg.grad(L, ws + bs)
    nf = sg.count_nodes(L)
    ng = sg.count_nodes([L] + grads)
    print(f"{k:>6} {nf:>14} {ng:>12} {ng / nf:>7.2f}")
    ok = ok and ng <= 4 * nf

x, ws, bs, L = chain(3)
params = ws + bs
H = sg.hessian(L, params)  # scalars: one sweep of edge pushing (symgrad.edge_pushing)
n_hess = sg.count_nodes([h for row in H for h in row])
rows = [sg.grad(g, params) for g in sg.grad(L, params)]  # the gradient of each gradient entry
n_rows = sg.count_nodes([h for row in rows for h in row])
print(f"\nk=3: forward {sg.count_nodes(L)} nodes; Hessian (6 x 6) {n_hess} nodes from "
      f"sg.hessian, {n_rows} as the gradient of each gradient entry")
vals = {x: 0.8, **{w: 0.9 for w in ws}, **{b: 0.1 for b in bs}}
Hv = np.array([sg.evaluate(row, vals) for row in H])
# the values, against sympy's Hessian of the same chain (symmetry alone would prove nothing:
# sg.hessian gives the blocks below the diagonal as the mirrored ones above)
sx3, sw3, sb3 = sympy.Symbol("x"), sympy.symbols("w1:4"), sympy.symbols("b1:4")
h3 = sx3
for w, b in zip(sw3, sb3):
    h3 = sympy.tanh(w * h3 + b)
at3 = {sx3: 0.8, **{w: 0.9 for w in sw3}, **{b: 0.1 for b in sb3}}
want_h = np.array(sympy.hessian(h3**2, sw3 + sb3).subs(at3).evalf(), dtype=float)
hess_ok = np.allclose(Hv, want_h, rtol=1e-10, atol=1e-12) and \
    np.allclose(np.array([sg.evaluate(row, vals) for row in rows]), want_h, rtol=1e-10,
                atol=1e-12)
ok = ok and hess_ok
print("Hessian matches sympy.hessian (both ways):", hess_ok)

# sympy's tree for comparison
sx = sympy.Symbol("x")
sw = sympy.symbols("w1:6")
sb = sympy.symbols("b1:6")
h = sx
for w, b in zip(sw, sb):
    h = sympy.tanh(w * h + b)
tree = sum(sympy.count_ops(sympy.diff(h**2, p)) for p in sw + sb)
print(f"\nsympy at k=5: forward tree {sympy.count_ops(h**2)} ops, gradient trees {tree} ops")

# derivatives of derivatives: the third derivative of the sigmoid
z = sg.scalar("z")
s = sg.sigmoid(z).named("s")
d1 = sg.grad(s, z)
d2 = sg.grad(d1, z)
d3 = sg.grad(d2, z)
print("\nd/dz   sigmoid =", sg.simplify(d1))
print("d2/dz2 sigmoid =", sg.simplify(d2))
print("d3/dz3 sigmoid =", sg.simplify(d3))
szz = sympy.Symbol("z", real=True)
want = sympy.diff(1 / (1 + sympy.exp(-szz)), szz, 3)
third_ok = all(np.isclose(sg.evaluate(d3, {z: at}), float(want.subs(szz, at)), rtol=1e-10)
               for at in (-3.0, 0.0, 0.5, 2.0))
ok = ok and third_ok
print("third derivative matches sympy.diff:", third_ok)
print("OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
