"""The lecture's simplest MLP: one hidden unit, four parameters, four gradients as graphs.

    phi = sigmoid(u*x + c),  mu = sigmoid(w*phi + b),  C = -y*log(mu) - (1 - y)*log(1 - mu)

Prints each derivative as symgrad derives and simplifies it, beside the lecture's formula,
checks them symbolically (sympy) and numerically, and exits non-zero on a mismatch.
Run: python examples/slide_single_hidden_unit.py
"""

import sys

import _path  # noqa: F401
import numpy as np
import sympy

import symgrad as sg

x, y, u, c, w, b = sg.scalars("x y u c w b")
phi = sg.sigmoid(u * x + c).named("phi")
mu = sg.sigmoid(w * phi + b).named("mu")
C = sg.bce(mu, y)
dU, dc, dw, db = sg.grad(C, [u, c, w, b])

LECTURE = {
    "u": (dU, "(mu - y)*w*phi*(1 - phi)*x"),
    "c": (dc, "(mu - y)*w*phi*(1 - phi)"),
    "w": (dw, "(mu - y)*phi"),
    "b": (db, "mu - y"),
}

print("C =", C)
print()
ok = True
sx, sy, su, sc, sw, sb = sympy.symbols("x y u c w b", real=True)
s_phi = 1 / (1 + sympy.exp(-(su * sx + sc)))
s_mu = 1 / (1 + sympy.exp(-(sw * s_phi + sb)))
lecture_sympy = {
    "u": (s_mu - sy) * sw * s_phi * (1 - s_phi) * sx,
    "c": (s_mu - sy) * sw * s_phi * (1 - s_phi),
    "w": (s_mu - sy) * s_phi,
    "b": s_mu - sy,
}
point = {x: 0.5, y: 1.0, u: 0.7, c: -0.3, w: 1.3, b: 0.2}
print(f"{'':7} {'symgrad':32} {'lecture':32}")
for p, (g, formula) in LECTURE.items():
    shown = str(sg.simplify(g))
    print(f"dC/d{p} = {shown:32} {formula:32}")
    symbolic_ok = sympy.simplify(sg.to_sympy(g) - lecture_sympy[p]) == 0
    value = sg.evaluate(g, point)
    want = float(lecture_sympy[p].subs({sx: 0.5, sy: 1.0, su: 0.7, sc: -0.3, sw: 1.3, sb: 0.2}))
    numeric_ok = np.isclose(value, want, rtol=1e-12)
    if not (symbolic_ok and numeric_ok):
        print(f"  MISMATCH for dC/d{p}: symbolic {symbolic_ok}, numeric {value} vs {want}")
        ok = False

print()
print("expanded in the inputs (sg.to_sympy):")
print("  dC/dw =", sg.to_sympy(dw))
shared = [n for n in sg.topo_order([dU, dc, dw, db]) if str(n) == "mu - y"]
print(f"\n'But we already computed that!': all four gradients share {len(shared)} (mu - y) node.")
ok = ok and len(shared) == 1
print("OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
