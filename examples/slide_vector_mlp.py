"""The lecture's vector MLP: x in R^d, U in R^(l x d), c, w in R^l, b scalar.

    phi = sigmoid(U x + c),  mu = sigmoid(w^T phi + b),  C = bce(mu, y)

eq (1): dC/dU = (mu - y) (w ⊙ phi ⊙ (1 - phi)) x^T,   eq (2): dC/dc = (mu - y) (w ⊙ phi ⊙ (1 - phi))

Derives both with symbolic sizes, checks them numerically at sizes d=5, l=3 and on a batch
(X of shape (N, d), mean loss), and exits non-zero on a mismatch.
Run: python examples/slide_vector_mlp.py
"""

import sys

import _path  # noqa: F401
import numpy as np

import symgrad as sg

x = sg.vector("x", "d")
U = sg.matrix("U", ("l", "d"))
c = sg.vector("c", "l")
w = sg.vector("w", "l")
b, y = sg.scalars("b y")
phi = sg.sigmoid(U @ x + c).named("phi")
mu = sg.sigmoid(w @ phi + b).named("mu")
C = sg.bce(mu, y)
gU, gc, gw, gb = sg.grad(C, [U, c, w, b])

print("dC/dU =", sg.simplify(gU), "   shape", gU.shape)
print("dC/dc =", sg.simplify(gc), "   shape", gc.shape)
print("dC/dw =", sg.simplify(gw), "   shape", gw.shape)
print("dC/db =", sg.simplify(gb), "   shape", gb.shape)

rng = np.random.default_rng(0)
vals = {x: rng.normal(size=5), U: rng.normal(size=(3, 5)), c: rng.normal(size=3),
        w: rng.normal(size=3), b: 0.1, y: 1.0}
f = sg.compile([gU, gc, gw, gb], [x, U, c, w, b, y])
got = f(*[vals[v] for v in (x, U, c, w, b, y)])
ph = 1 / (1 + np.exp(-(vals[U] @ vals[x] + vals[c])))
m = 1 / (1 + np.exp(-(vals[w] @ ph + vals[b])))
delta = (m - vals[y]) * (vals[w] * ph * (1 - ph))
ok = np.allclose(got[0], np.outer(delta, vals[x])) and np.allclose(got[1], delta)
ok = ok and np.allclose(got[2], (m - vals[y]) * ph) and np.isclose(got[3], m - vals[y])
print("eq (1) and (2) at d=5, l=3:", "match" if ok else "MISMATCH")

# the same on a batch, mean loss
X = sg.matrix("X", ("N", "d"))
Y = sg.vector("Y", "N")
H = sg.sigmoid(X @ U.T + c).named("H")
M = sg.sigmoid(H @ w + b).named("M")
L = sg.mean(sg.bce(M, Y))
grads = sg.grad(L, [U, c, w, b])
print("batch: dL/dU =", sg.simplify(grads[0]))
fb = sg.compile(grads, [X, Y, U, c, w, b])
Xv, Yv = rng.normal(size=(64, 5)), (rng.random(64) > 0.5).astype(float)
out = fb(Xv, Yv, vals[U], vals[c], vals[w], vals[b])
per_sample = [f(Xv[i], vals[U], vals[c], vals[w], vals[b], Yv[i]) for i in range(64)]
mean = [np.mean([p[k] for p in per_sample], axis=0) for k in range(4)]
batch_ok = all(np.allclose(o, m_) for o, m_ in zip(out, mean))
print("batch gradient = mean of per-sample gradients:", "match" if batch_ok else "MISMATCH")
ok = ok and batch_ok
print("OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
