"""The benchmark workloads, written once: symgrad graph builders and handwritten baselines.

The workload modules (w1, w2, w4, backends_fused, gpu_check) and
tests/test_performance_structure.py build their symgrad graphs here, so that every table and
every structural test measures the same graph. symgrad is imported inside the builders (never
at import time), so that importing this module costs nothing before a timed region.

- W1, the lecture's scalar MLP: ``scalar_mlp`` (its four gradients, one sample or a batch) and
  the handwritten ``scalar_mlp_math`` / ``scalar_mlp_numpy`` backprop, and ``scalar_mlp_loss_in``
  (the cost in any array module, for the peers that trace it);
- W2, the vector MLP: ``vector_mlp_loss`` (loss alone), ``vector_mlp`` (loss and gradients),
  ``vector_mlp_data``, the handwritten ``vector_mlp_numpy`` / ``vector_mlp_numpy_forward`` and
  ``vector_mlp_loss_in`` (the loss in any array module);
- W4, the deep scalar chain: ``chain``.
"""

from __future__ import annotations

import math

import numpy as np


# ------------------------------------------------------------------ W1, scalar MLP
def scalar_mlp(tag: str = "", batch: bool = False) -> tuple[list, list]:
    """The four gradients of the BCE cost wrt u, c, w, b, and the inputs [u, c, w, b, x, y].

        phi = sigmoid(u*x + c);  mu = sigmoid(w*phi + b);  C = bce(mu, y)

    ``batch``: x and y are vectors of length N and the gradients are those of the mean loss.
    ``tag`` is appended to every variable name (fresh names for each build).
    """
    import symgrad as sg

    u, c, w, b = sg.scalars(f"u{tag} c{tag} w{tag} b{tag}")
    if batch:
        x, y = sg.vector(f"x{tag}", "N"), sg.vector(f"y{tag}", "N")
    else:
        x, y = sg.scalars(f"x{tag} y{tag}")
    phi = sg.sigmoid(u * x + c)
    mu = sg.sigmoid(w * phi + b)
    C = sg.bce(mu, y)
    L = sg.mean(C) if batch else C
    return sg.grad(L, [u, c, w, b]), [u, c, w, b, x, y]


def scalar_mlp_math(u, c, w, b, x, y):
    """Handwritten backprop of one sample with Python floats: (dC/du, dC/dc, dC/dw, dC/db)."""
    phi = 1.0 / (1.0 + math.exp(-(u * x + c)))
    mu = 1.0 / (1.0 + math.exp(-(w * phi + b)))
    d = mu - y
    t = d * w * phi * (1.0 - phi)
    return (t * x, t, d * phi, d)


def scalar_mlp_numpy(u, c, w, b, x, y):
    """Handwritten backprop of the batch-mean loss (x, y vectors), the closed forms."""
    n = x.shape[0]
    phi = 1.0 / (1.0 + np.exp(-(u * x + c)))
    mu = 1.0 / (1.0 + np.exp(-(w * phi + b)))
    d = mu - y
    t = d * w * phi * (1.0 - phi)
    return (np.dot(t, x) / n, t.mean(), np.dot(d, phi) / n, d.mean())


def scalar_mlp_loss_in(xp, batch: bool = False):
    """The lecture's BCE cost ``C(u, c, w, b, x, y)`` written with the array module ``xp``
    (``jax.numpy`` for the peers that trace it); ``batch``: the mean over x and y."""

    def C(u, c, w, b, x, y):
        phi = 1 / (1 + xp.exp(-(u * x + c)))
        mu = 1 / (1 + xp.exp(-(w * phi + b)))
        L = -y * xp.log(mu) - (1 - y) * xp.log(1 - mu)
        return xp.mean(L) if batch else L

    return C


# ------------------------------------------------------------------ W2, vector MLP
def vector_mlp_loss(d="d", l="l") -> tuple:  # noqa: E741  (the lecture's names)
    """The mean BCE loss of the vector MLP, its parameters [U, c, w, b] and data [X, y].

        phi = sigmoid(X U^T + c);  mu = sigmoid(phi w + b);  L = mean(bce(mu, y))

    U is (l, d), X is (N, d); ``d`` and ``l`` are ints or symbolic sizes, N is symbolic.
    """
    import symgrad as sg

    U, c, w, b = sg.matrix("U", (l, d)), sg.vector("c", l), sg.vector("w", l), sg.scalar("b")
    X, y = sg.matrix("X", ("N", d)), sg.vector("y", "N")
    phi = sg.sigmoid(X @ U.T + c)
    mu = sg.sigmoid(phi @ w + b)
    return sg.mean(sg.bce(mu, y)), [U, c, w, b], [X, y]


def vector_mlp(d="d", l="l") -> tuple[list, list]:  # noqa: E741
    """[loss, dL/dU, dL/dc, dL/dw, dL/db] and the inputs [U, c, w, b, X, y]."""
    import symgrad as sg

    L, params, data = vector_mlp_loss(d, l)
    return [L, *sg.grad(L, params)], [*params, *data]


def vector_mlp_data(d: int, l: int, n: int, dtype=np.float64, seed: int = 0):  # noqa: E741
    """(U, c, w, b, X, y) in ``dtype``: N(0, 1) data, random labels, scaled weights."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = (rng.random(n) < 0.5).astype(dtype)
    U = (rng.standard_normal((l, d)) / np.sqrt(d)).astype(dtype)
    c = (0.1 * rng.standard_normal(l)).astype(dtype)
    w = (rng.standard_normal(l) / np.sqrt(l)).astype(dtype)
    return U, c, w, dtype(0.1), X, y


def vector_mlp_loss_in(xp):
    """The vector MLP's mean BCE loss ``loss((U, c, w, b), X, y)`` written with the array
    module ``xp`` (``jax.numpy`` for the peers that trace it)."""

    def loss(params, X, y):
        U, c, w, b = params
        phi = 1 / (1 + xp.exp(-(X @ U.T + c)))
        mu = 1 / (1 + xp.exp(-(phi @ w + b)))
        return -xp.mean(y * xp.log(mu) + (1 - y) * xp.log(1 - mu))

    return loss


def vector_mlp_numpy_forward(U, c, w, b, X, y):
    """Handwritten numpy: the loss alone."""
    phi = 1 / (1 + np.exp(-(X @ U.T + c)))
    mu = 1 / (1 + np.exp(-(phi @ w + b)))
    return -np.mean(y * np.log(mu) + (1 - y) * np.log(1 - mu))


def vector_mlp_numpy(U, c, w, b, X, y):
    """Handwritten numpy backprop: (loss, dL/dU, dL/dc, dL/dw, dL/db)."""
    N = X.shape[0]
    phi = 1 / (1 + np.exp(-(X @ U.T + c)))
    mu = 1 / (1 + np.exp(-(phi @ w + b)))
    loss = -np.mean(y * np.log(mu) + (1 - y) * np.log(1 - mu))
    d2 = (mu - y) / N
    gw = phi.T @ d2
    gb = d2.sum()
    dz1 = np.outer(d2, w) * phi * (1 - phi)
    return loss, dz1.T @ X, dz1.sum(axis=0), gw, gb


# ------------------------------------------------------------------ W4, deep scalar chain
def chain(k: int, tag: str = "") -> tuple:
    """The W4 chain h_0 = x, h_i = tanh(w_i h_(i-1) + b_i), L = h_k**2: (x, ws, bs, L)."""
    import symgrad as sg

    x = sg.scalar("x" + tag)
    ws = [sg.scalar(f"w{i}{tag}") for i in range(k)]
    bs = [sg.scalar(f"b{i}{tag}") for i in range(k)]
    h = x
    for w, b in zip(ws, bs):
        h = sg.tanh(w * h + b)
    return x, ws, bs, h**2
