"""Graphs that exercise every op's lowering, shared by the backend tests (CPU and GPU).

Each case is (outputs, inputs, values): the outputs include derivatives, so the lowerings of the
ops that only reverse mode creates (eye, onehot, step, diag, ...) are covered too.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import symgrad as sg


def _rng():
    return np.random.default_rng(7)


def mlp_graph(d: int | str = "d", h: int | str = "l", n: str = "N"):
    """The vector MLP (hidden width h): loss and its gradient wrt (U, c, w, b), data X (n, d)."""
    X, y = sg.matrix("X", (n, d)), sg.vector("y", n)
    U, c, w = sg.matrix("U", (h, d)), sg.vector("c", h), sg.vector("w", h)
    b = sg.scalar("b")
    phi = sg.sigmoid(X @ U.T + c)
    mu = sg.sigmoid(phi @ w + b)
    loss = sg.mean(sg.bce(mu, y))
    return [loss, *sg.grad(loss, [U, c, w, b])], [U, c, w, b, X, y]


def mlp_values(d: int, h: int, n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (rng.random(n) < 0.5).astype(float)
    U = rng.standard_normal((h, d)) / np.sqrt(d)
    c = 0.1 * rng.standard_normal(h)
    w = rng.standard_normal(h) / np.sqrt(h)
    return [U, c, w, 0.1, X, y]


def _elementwise():
    v, u = sg.vector("v", 5), sg.vector("u", 5)
    a = sg.scalar("a")
    outs = [sg.exp(v), sg.log(sg.abs(v) + 1.0), sg.sqrt(u), sg.tanh(v), sg.sin(v), sg.cos(v),
            sg.sigmoid(v * 30.0), sg.softplus(v * 30.0), sg.relu(v), sg.maximum(v, u),
            sg.minimum(v, a), v**3.0, u**v, v / u - a, -v, sg.bce(sg.sigmoid(v), u / 3.0),
            sg.bce(u / 3.0, 0.5), sg.stop_gradient(v) * a, sg.exp(a) * v,
            sg.floor(v * 3.0) + v]  # floor inside a fused loop (numba's kernel lacked _float)
    total = sg.sum(outs[0] * outs[3]) + sg.sum(outs[6] + outs[7] + outs[8] + outs[14])
    total = total + sg.sum(sg.maximum(v, u) * sg.abs(v)) + a * a
    outs += sg.grad(total, [v, u, a])
    rng = _rng()
    vals = [rng.standard_normal(5), rng.random(5) + 0.5, 0.7]
    return outs, [v, u, a], vals


def _reductions():
    M = sg.matrix("M", (3, 4))
    outs = [sg.sum(M, 0), sg.sum(M), sg.mean(M, 1), sg.logsumexp(M, 1), sg.logsumexp(M),
            sg.softmax(M), sg.log_softmax(M, 0), sg.argmax(M, 1), sg.argmax(M)]
    f = sg.sum(sg.log_softmax(M) * M) + sg.logsumexp(M * 2.0) + sg.sum(sg.softmax(M, 0) ** 2.0)
    outs += [sg.grad(f, M)]
    return outs, [M], [_rng().standard_normal((3, 4))]


def _linalg():
    A, B = sg.matrix("A", (3, 4)), sg.matrix("B", (4, 2))
    v, T = sg.vector("v", 4), sg.tensor("T", (2, 3, 4))
    i = sg.scalar("i")
    outs = [A @ B, A @ v, v @ B, v @ v, sg.outer(v, v), A.T, sg.transpose(T, (2, 0, 1)),
            sg.reshape(A, (2, 6)), sg.broadcast_to(v, (3, 4)), sg.diag(v),
            sg.diagonal(sg.outer(v, v)), sg.take(A, 1), sg.take(A, i), T @ v, sg.zeros((2, 2))]
    f = sg.sum(sg.take(A, i) * v) + sg.sum(sg.diagonal(sg.outer(v, v)))
    outs += sg.grad(f, [A, v])
    outs += [sg.jacobian(A @ v, v), sg.jacobian(sg.reshape(T, (4, 6)), T)]
    rng = _rng()
    vals = [rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(4),
            rng.standard_normal((2, 3, 4)), 2.0]
    return outs, [A, B, v, T, i], vals


def _negative_index():
    # a negative index counts from the end, in the gradient's one-hot row too (jax's onehot
    # compared arange(n) with -1 and gave a zero gradient)
    A, i = sg.matrix("A", (3, 4)), sg.scalar("i")
    f = sg.sum(sg.take(A, i) ** 2.0) + sg.sum(sg.take(A, -2) * 3.0)
    return [sg.take(A, i), sg.grad(f, A)], [A, i], [_rng().standard_normal((3, 4)), -1.0]


def _hessian():
    X, y, w = sg.matrix("X", ("m", "n")), sg.vector("y", "m"), sg.vector("w", "n")
    f = sg.sum(sg.softplus(-y * (X @ w)))
    rng = _rng()
    vals = [rng.standard_normal((12, 4)), rng.choice([-1.0, 1.0], 12), rng.standard_normal(4)]
    return [f, sg.grad(f, w), sg.hessian(f, w)], [X, y, w], vals


def _kinks():
    """Gradients through gates and steps (relu, maximum, minimum, abs), powers in the exponent
    (their zero_as_one), straight_through, gram, to_int and the derivative helper ops."""
    v, u = sg.vector("v", 6), sg.vector("u", 6)
    X, d, a = sg.matrix("X", (6, 3)), sg.vector("d", 6), sg.scalar("a")
    f = (sg.sum(sg.maximum(v, 0.0) ** 2.0) + sg.sum(u**v) + sg.sum(sg.abs(v) * u)
         + sg.sum(sg.minimum(v, u) * a) + sg.sum(sg.sqrt(u) * sg.sigmoid(v))
         + sg.sum(sg.straight_through(sg.step(v), sg.sigmoid(v)) * u)
         + sg.sum(sg.gram(X, d)) + sg.sum(sg.softplus(v) * sg.tanh(u)) + sg.sum(u**a)
         + sg.sum(sg.relu(v * a) * sg.exp(-u)))
    outs = [sg.to_int(v * 3.0), sg.gram(X, d), sg.step(v), f, *sg.grad(f, [v, u, X, d, a])]
    rng = _rng()
    vals = [rng.standard_normal(6), rng.random(6) + 0.5, rng.standard_normal((6, 3)),
            rng.random(6), 0.7]
    return outs, [v, u, X, d, a], vals


def _mlp():
    outs, ins = mlp_graph()
    return outs, ins, mlp_values(5, 3, 16)


CASES = {"elementwise": _elementwise, "reductions": _reductions, "linalg": _linalg,
         "negative_index": _negative_index, "hessian": _hessian, "mlp": _mlp,
         "kinks": _kinks}


def numpy_reference(outs, ins, vals) -> list:
    return [np.asarray(r) for r in sg.compile(outs, ins)(*vals)]


# ------------------------------------------------------------------ the array libraries
def have(mod: str) -> bool:
    """Whether the module ``mod`` is installed (without importing it)."""
    return importlib.util.find_spec(mod) is not None


def backend_inputs(name, vals):
    """The input values as arrays of the backend (scalars stay Python numbers)."""
    if name == "torch":
        import torch

        return [torch.as_tensor(v) if isinstance(v, np.ndarray) else v for v in vals]
    if name == "jax":
        import jax.numpy as jnp

        return [jnp.asarray(v) if isinstance(v, np.ndarray) else v for v in vals]
    if name == "dask":
        import dask.array as da

        return [da.from_array(v, chunks=max(1, v.shape[0] // 2) if v.ndim else ())
                if isinstance(v, np.ndarray) else v for v in vals]
    if name == "array_api_strict":
        import array_api_strict as xp

        return [xp.asarray(v) if isinstance(v, np.ndarray) else v for v in vals]
    return vals


# the array backends on the CPU, each skipped cleanly when its library is missing
ARRAY_BACKENDS = [
    pytest.param("torch", marks=pytest.mark.skipif(not have("torch") or not have(
        "array_api_compat"), reason="torch / array-api-compat not installed")),
    pytest.param("jax", marks=pytest.mark.skipif(not have("jax"), reason="jax not installed")),
    pytest.param("dask", marks=pytest.mark.skipif(not have("dask") or not have(
        "array_api_compat"), reason="dask / array-api-compat not installed")),
    pytest.param("array_api_strict", marks=pytest.mark.skipif(
        not have("array_api_strict"), reason="array_api_strict not installed")),
]
