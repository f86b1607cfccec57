"""Newton's method for logistic regression with symgrad's gradient and Hessian.

    f(w) = sum(log(1 + exp(-y ⊙ (X w))))

symgrad derives the gradient and the Hessian once, with symbolic sizes m and n, as matrix
expressions (the Hessian is the single node X^T diag(...) X), compiles the loss, gradient and
Hessian into one numpy function, and Newton's method runs on a seeded synthetic data set
(m = 2000, n = 50). The result is checked against scipy.optimize (or, without scipy, against a
handwritten numpy Newton iteration); the script exits non-zero on a mismatch.

Run from the repository root:  python examples/newton_logistic_regression.py
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # examples/: _path, _newton_check
import _path  # noqa: E402, F401
from _newton_check import converged  # noqa: E402

import symgrad as sg  # noqa: E402

M_SAMPLES, N_FEATURES, SEED = 2000, 50, 0
GTOL, MAX_ITER = 1e-8, 15


def make_data(m: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels in {-1, +1} drawn from a logistic model (not separable)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    w_true = rng.standard_normal(n) / np.sqrt(n)
    p = 1.0 / (1.0 + np.exp(-(X @ w_true)))
    y = np.where(rng.random(m) < p, 1.0, -1.0)
    return X, y


def derive():
    """The loss, its gradient and Hessian as symgrad expressions, with symbolic sizes."""
    X = sg.matrix("X", ("m", "n"))
    y = sg.vector("y", "m")
    w = sg.vector("w", "n")
    f = sg.sum(sg.log(1 + sg.exp(-y * (X @ w))))
    g, H = sg.simplify([sg.grad(f, w), sg.hessian(f, w)])
    return (X, y, w), f, g, H


def newton(fgh, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, list]:
    w = np.zeros(X.shape[1])
    history = []
    for it in range(1, MAX_ITER + 1):
        f, g, H = fgh(w, X, y)
        gnorm = float(np.linalg.norm(g))
        history.append((it, float(f), gnorm))
        print(f"  iteration {it:2d}: f = {float(f):.12f}   |grad| = {gnorm:.3e}")
        if gnorm < GTOL:
            return w, history
        w = w - np.linalg.solve(H, g)
    return w, history


def reference(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, str]:
    """The minimiser by scipy.optimize (handwritten loss and gradient), else numpy Newton."""

    def f(w):
        return float(np.sum(np.logaddexp(0.0, -y * (X @ w))))

    def grad(w):
        s = 1.0 / (1.0 + np.exp(y * (X @ w)))  # sigmoid(-y Xw)
        return -X.T @ (y * s)

    def hess(w):
        s = 1.0 / (1.0 + np.exp(-y * (X @ w)))
        return X.T @ ((s * (1 - s))[:, None] * X)

    try:
        from scipy.optimize import minimize
    except ImportError:
        w = np.zeros(X.shape[1])
        for _ in range(50):
            w = w - np.linalg.solve(hess(w), grad(w))
        return w, "handwritten numpy Newton"
    res = minimize(f, np.zeros(X.shape[1]), jac=grad, hess=hess, method="trust-exact",
                   options={"gtol": 1e-10})
    return res.x, "scipy.optimize.minimize(method='trust-exact')"


def main() -> int:
    (Xv, yv, wv), f, g, H = derive()
    print("f        =", f)
    print("grad f   =", g)
    print("Hessian  =", H)
    fgh = sg.compile([f, g, H], [wv, Xv, yv])
    X, y = make_data(M_SAMPLES, N_FEATURES, SEED)
    print(f"Newton's method, m = {M_SAMPLES}, n = {N_FEATURES}:")
    w, history = newton(fgh, X, y)
    w_ref, how = reference(X, y)
    ok = converged(history, w, w_ref, how, GTOL, MAX_ITER, 1e-6)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
