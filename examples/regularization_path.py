"""A regularization path in one call: L2-regularized logistic regression for 200 values of lambda.

    L(w) = mean(bce(sigmoid(X w), y)) + lambda/2 |w|^2

The loss, gradient and Hessian are compiled once, with lambda a scalar input. Given an array of
lambdas, the compiled function computes every one of them at once (a batched version of the
graph: X w and sigmoid(X w) do not depend on lambda and are computed once), and numpy's batched
solve then takes one Newton step per lambda. Checks the result against the closed forms and
against one call per lambda, and exits non-zero on a mismatch.
Run: python examples/regularization_path.py
"""

import sys
import time

import _path  # noqa: F401
import numpy as np

import symgrad as sg

X = sg.matrix("X", ("N", "d"))
y = sg.vector("y", "N")
w = sg.vector("w", "d")
lam = sg.scalar("lam")
L = sg.mean(sg.bce(sg.sigmoid(X @ w), y)) + lam / 2 * sg.sum(w * w)
g = sg.grad(L, w)
H = sg.hessian(L, w)
print("dL/dw    =", sg.simplify(g))
print("d2L/dw2  =", sg.simplify(H))
f = sg.compile([L, g, H], [X, y, w, lam])

rng = np.random.default_rng(0)
N, d = 500, 8
Xv = rng.normal(size=(N, d))
yv = (Xv @ rng.normal(size=d) + rng.normal(size=N) > 0).astype(float)
wv = np.zeros(d)
lams = np.logspace(-3, 1, 200)

t0 = time.perf_counter()
Ls, gs, Hs = f(Xv, yv, wv, lams)  # one call: shapes (200,), (200, d), (200, d, d)
t1 = time.perf_counter()
steps = wv - np.linalg.solve(Hs, gs[..., None])[..., 0]  # one Newton step per lambda
print(f"200 lambdas in one call: {(t1 - t0) * 1e3:.2f} ms; shapes {Ls.shape}, {gs.shape}, "
      f"{Hs.shape}")

# the closed forms: g = X^T (mu - y) / N + lambda w, H = X^T diag(mu (1 - mu)) X / N + lambda I,
# at w = 0 (the path's start) and at a w whose lambda w term shows


def closed_forms(at):
    mu = 1 / (1 + np.exp(-(Xv @ at)))
    return Xv.T @ (mu - yv) / N, (Xv.T * (mu * (1 - mu))) @ Xv / N


ok = True
w1 = 0.3 * rng.normal(size=d)
for at, (_, g_at, H_at) in ((wv, (Ls, gs, Hs)), (w1, f(Xv, yv, w1, lams))):
    g0, H0 = closed_forms(at)
    ok = ok and np.allclose(g_at, g0 + lams[:, None] * at) and \
        np.allclose(H_at, H0 + lams[:, None, None] * np.eye(d))

# the same, one call per lambda
t2 = time.perf_counter()
one_by_one = [f(Xv, yv, wv, float(v)) for v in lams]
t3 = time.perf_counter()
ok = ok and all(np.allclose(Ls[i], r[0]) and np.allclose(gs[i], r[1]) and
                np.allclose(Hs[i], r[2]) for i, r in enumerate(one_by_one))
print(f"one call per lambda: {(t3 - t2) * 1e3:.2f} ms")
shrink = np.linalg.norm(steps, axis=1)
ok = ok and bool(np.all(np.diff(shrink) < 0))  # more regularization, a shorter first step
print(f"|Newton step| from {shrink[0]:.3f} (lambda = 1e-3) to {shrink[-1]:.3f} (lambda = 10)")
print("OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
