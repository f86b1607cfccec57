"""Newton's method for softmax (multinomial logistic) regression, with respect to a matrix.

    f(W) = -sum(Y ⊙ log_softmax(X W, axis=1)) + lam/2 sum(W ⊙ W),   W of shape (d, K)

symgrad derives the gradient (shape (d, K)) and the Hessian (shape (d, K, d, K)) once, with
symbolic sizes, and compiles the loss, gradient and Hessian into one numpy function. The
Hessian's reverse pass is seeded with the identity tensor I(d, K); the compiled code never
makes it, nor the (d, K, N, K) values below it: it computes them as sums of contractions (see
docs/matrix-calculus.md). The script prints the Hessian in index notation, as a textbook
writes it. Newton's method reshapes the Hessian to a (d K) x (d K) matrix and runs on a seeded
synthetic data set (N = 2000, d = 20, K = 5). The result is checked against
scipy.optimize (or, without scipy, a handwritten numpy Newton iteration) and the Hessian
against the handwritten closed form; the script exits non-zero on a mismatch.

Run from the repository root:  python examples/newton_softmax_regression.py
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # examples/: _path, _newton_check
import _path  # noqa: E402, F401
from _newton_check import converged  # noqa: E402

import symgrad as sg  # noqa: E402

N, D, K, LAM, SEED = 2000, 20, 5, 1.0, 0
GTOL, MAX_ITER = 1e-8, 20


def make_data(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features and one-hot labels drawn from a softmax model."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Z = X @ (rng.standard_normal((d, k)) / np.sqrt(d))
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(k, p=p) for p in P])
    return X, np.eye(k)[labels]


def derive():
    """The loss, its gradient and its Hessian as symgrad expressions, with symbolic sizes."""
    X, Y = sg.matrix("X", ("N", "d")), sg.matrix("Y", ("N", "K"))
    W = sg.matrix("W", ("d", "K"))
    f = -sg.sum(Y * sg.log_softmax(X @ W, axis=1)) + LAM / 2 * sg.sum(W * W)
    return (X, Y, W), f, sg.grad(f, W), sg.hessian(f, W)


def closed_form_hessian(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """sum over samples of x x^T ⊗ (diag(p) - p p^T), plus lam I, by hand."""
    Z = X @ W
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    d, k = W.shape
    M = (X[:, :, None] * P[:, None, :]).reshape(len(X), d * k)
    H = -(M.T @ M).reshape(d, k, d, k)
    G = (X.T @ M).reshape(d, d, k)
    for j in range(k):
        H[:, j, :, j] += G[:, :, j]
    return H + LAM * np.eye(d * k).reshape(d, k, d, k)


def newton(fgh, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, list]:
    d, k = X.shape[1], Y.shape[1]
    W = np.zeros((d, k))
    history = []
    for it in range(1, MAX_ITER + 1):
        f, g, H = fgh(X, Y, W)
        gnorm = float(np.linalg.norm(g))
        history.append((it, float(f), gnorm))
        print(f"  iteration {it:2d}: f = {float(f):.10f}   |grad| = {gnorm:.3e}")
        if gnorm < GTOL:
            return W, history
        step = np.linalg.solve(H.reshape(d * k, d * k), g.reshape(d * k))
        W = W - step.reshape(d, k)
    return W, history


def reference(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, str]:
    """The minimiser by scipy.optimize (handwritten loss and gradient), else numpy Newton."""
    d, k = X.shape[1], Y.shape[1]

    def f(w):
        Z = X @ w.reshape(d, k)
        lse = Z.max(axis=1) + np.log(np.exp(Z - Z.max(axis=1, keepdims=True)).sum(axis=1))
        return float(np.sum(lse) - np.sum(Y * Z) + LAM / 2 * w @ w)

    def grad(w):
        W = w.reshape(d, k)
        Z = X @ W
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        return (X.T @ (P - Y) + LAM * W).reshape(d * k)

    try:
        from scipy.optimize import minimize
    except ImportError:
        w = np.zeros(d * k)
        for _ in range(50):
            H = closed_form_hessian(X, w.reshape(d, k)).reshape(d * k, d * k)
            w = w - np.linalg.solve(H, grad(w))
        return w.reshape(d, k), "handwritten numpy Newton"
    res = minimize(f, np.zeros(d * k), jac=grad, method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10000})
    return res.x.reshape(d, k), "scipy.optimize.minimize(method='L-BFGS-B')"


def main() -> int:
    (Xv, Yv, Wv), f, g, H = derive()
    print("f        =", f)
    print("grad f   =", g)
    print("Hessian shape", H.shape, "in index notation:")
    print(sg.index_notation(H, "H"))
    fgh = sg.compile([f, g, H], [Xv, Yv, Wv])
    ok = "reshape(_rt.eye" not in fgh.source  # the identity tensor is never made
    if not ok:
        print("FAIL: the compiled code makes the identity tensor")
    X, Y = make_data(N, D, K, SEED)
    W0 = np.random.default_rng(1).standard_normal((D, K)) * 0.1
    err_h = float(np.max(np.abs(fgh(X, Y, W0)[2] - closed_form_hessian(X, W0))))
    print(f"Hessian against the handwritten closed form: max difference {err_h:.2e}")
    if err_h > 1e-9:
        print("FAIL: the Hessian differs from the closed form")
        ok = False
    print(f"Newton's method, N = {N}, d = {D}, K = {K}:")
    W, history = newton(fgh, X, Y)
    W_ref, how = reference(X, Y)
    ok = converged(history, W, W_ref, how, GTOL, MAX_ITER, 1e-5) and ok
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
