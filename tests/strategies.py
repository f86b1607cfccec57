"""Hypothesis strategies: random expression DAGs over symgrad's ops, and points in their domain.

A DAG grows from a pool that starts with the variables; each step applies one op to operands
drawn from the pool (so later nodes share earlier ones), and a node deeper than ``MAX_DEPTH``
is not added. Ops with a restricted domain get operands that lie inside it by construction
(``log(softplus(a) + 0.5)``, ``a / (b*b + 0.5)``, ...); kinks (relu, abs, step, maximum,
minimum) are kept away from by :func:`point_is_safe`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import symgrad as sg

MAX_DEPTH = 6
X0, X1 = sg.scalars("x0 x1")
V = sg.vector("v", 3)
W = sg.vector("w", 2)
A = sg.matrix("A", (2, 3))
SCALAR_VARS = (X0, X1)
TENSOR_VARS = (X0, X1, V, W, A)
F = sg.functions


def _pos(a):
    return sg.softplus(a) + 0.5


UNARY = {  # name -> f(a), defined for every real a
    "exp": lambda a: sg.exp(sg.tanh(a) * 2.0),
    "log": lambda a: sg.log(_pos(a)),
    "sqrt": lambda a: sg.sqrt(a * a + 0.5),
    "tanh": sg.tanh, "sin": sg.sin, "cos": sg.cos, "sigmoid": sg.sigmoid,
    "softplus": sg.softplus, "relu": sg.relu, "abs": sg.abs, "neg": lambda a: -a,
    "step": F.step, "sigmoid_deriv": F.sigmoid_deriv, "tanh_deriv": F.tanh_deriv,
    "square": sg.square, "cube": lambda a: a**3.0,
    "rsqrt": lambda a: _pos(a) ** -0.5,
    "log_sigmoid": lambda a: sg.log(sg.sigmoid(a)),  # rewritten to a stable form
}
BINARY = {  # name -> f(a, b), defined for all reals, shapes broadcast
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 0.5),
    "pow": lambda a, b: _pos(a) ** sg.tanh(b),
    "maximum": sg.maximum, "minimum": sg.minimum,
    "bce": lambda a, b: sg.bce(0.1 + 0.8 * sg.sigmoid(a), b),
    "bce_sigmoid": lambda a, b: sg.bce(sg.sigmoid(a), b),
}
VALUE_ONLY = {  # differentiable, but their derivative is not the function's (FD disagrees)
    "stop_gradient": lambda a: sg.stop_gradient(a),
    "straight_through": lambda a: sg.straight_through(sg.tanh(a), a * 0.5),
}


def _axis(c, e):
    if e.ndim == 0:
        return None
    return c([None] + list(range(e.ndim)))


def _reshaped(c, e):
    n = int(np.prod(e.shape))
    shapes = {(n,), (1, n), (n, 1)}
    if n == 6:
        shapes |= {(2, 3), (3, 2)}
    if n == 4:
        shapes |= {(2, 2)}
    return c(sorted(shapes - {e.shape}))


TENSOR = {  # name -> f(choose, a, b): may raise ShapeError for operands that do not fit
    "sum": lambda d, a, b: sg.sum(a, axis=_axis(d, a)),
    "mean": lambda d, a, b: sg.mean(a, axis=_axis(d, a)),
    "logsumexp": lambda d, a, b: sg.logsumexp(a, axis=_axis(d, a)),
    "softmax": lambda d, a, b: sg.softmax(a, axis=d(range(-a.ndim, 0))),
    "log_softmax": lambda d, a, b: sg.log_softmax(a, axis=d(range(a.ndim))),
    "matmul": lambda d, a, b: a @ b,
    "matmul_bt": lambda d, a, b: a @ sg.transpose(b),
    "outer": lambda d, a, b: sg.outer(a, b),
    "dot": lambda d, a, b: sg.dot(a, b),
    "transpose": lambda d, a, b: sg.transpose(a),
    "reshape": lambda d, a, b: sg.reshape(a, _reshaped(d, a)),
    "broadcast_to": lambda d, a, b: sg.broadcast_to(a, (2,) + a.shape),
    "diag": lambda d, a, b: sg.diag(a),
    "diagonal": lambda d, a, b: sg.diagonal(a @ sg.transpose(a)),
    "take": lambda d, a, b: sg.take(a, d(range(a.shape[0]))),
    "trace": lambda d, a, b: sg.trace(a @ sg.transpose(a)),
    "gram": lambda d, a, b: sg.gram(a, b),
    "gram_nonneg": lambda d, a, b: sg.gram(a, sg.exp(b)),
}
TENSOR_NEEDS = {  # what the first operand must be
    "softmax": 1, "log_softmax": 1, "outer": 1, "transpose": 2, "diag": 1, "diagonal": 2,
    "take": 1, "reshape": 1, "trace": 2, "gram": 2, "gram_nonneg": 2, "sum": 1, "mean": 1,
    "logsumexp": 1, "matmul": 1, "matmul_bt": 1, "dot": 1,
}


def depth(e) -> int:
    d: dict[int, int] = {}
    for n in sg.topo_order([e]):
        d[id(n)] = 1 + max((d[id(a)] for a in n.args), default=-1)
    return d[id(e)]


class _Choices:
    """Structural choices from a numpy Generator seeded by hypothesis: every op is equally
    likely (hypothesis' own choices lean hard on the first entries of a list)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def __call__(self, seq):
        seq = list(seq)
        return seq[int(self.rng.integers(len(seq)))]

    def recent(self, pool):
        """A pool entry, recent ones more likely (they make deeper graphs)."""
        k = len(pool)
        w = np.arange(1, k + 1, dtype=float) ** 2
        return pool[int(self.rng.choice(k, p=w / w.sum()))]


@st.composite
def dags(draw, tensor: bool = True, value_only: bool = False, min_ops: int = 2,
         max_ops: int = 10):
    """A random expression with variables among ``TENSOR_VARS`` (or ``SCALAR_VARS``)."""
    c = _Choices(draw(st.integers(0, 2**32 - 1)))
    pool = list(TENSOR_VARS if tensor else SCALAR_VARS)
    kinds = ["unary", "binary"] + (["tensor", "tensor"] if tensor else []) + (
        ["value"] if value_only else [])
    n_ops = int(c.rng.integers(min_ops, max_ops + 1))
    added = 0
    for _ in range(4 * n_ops):
        if added == n_ops:
            break
        kind = c(kinds)
        b = c(pool)
        try:
            if kind == "unary":
                e = UNARY[c(sorted(UNARY))](c.recent(pool))
            elif kind == "binary":
                e = BINARY[c(sorted(BINARY))](c.recent(pool), b)
            elif kind == "value":
                e = VALUE_ONLY[c(sorted(VALUE_ONLY))](c.recent(pool))
            else:
                name = c(sorted(TENSOR))
                fit = [p for p in pool if p.ndim >= TENSOR_NEEDS.get(name, 0)]
                e = TENSOR[name](c, c.recent(fit), b)
        except (sg.ShapeError, ValueError):
            continue
        if depth(e) > MAX_DEPTH or not sg.variables(e) or any(e is p for p in pool):
            continue
        pool.append(e)
        added += 1
    out = pool[-1]
    if added == 0:
        out = sg.tanh(pool[0]) * pool[1]
    return out


def to_scalar(e):
    """A scalar function of ``e`` (sum with fixed weights, so no entry is left out)."""
    if e.ndim == 0:
        return e
    wts = np.linspace(0.5, 1.5, int(np.prod(e.shape))).reshape(e.shape)
    return sg.sum(e * wts)


@st.composite
def points(draw, variables):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return {v: (float(rng.uniform(-1.5, 1.5)) if v.ndim == 0 else rng.uniform(-1.5, 1.5, v.shape))
            for v in variables}


_KINK = ("relu", "abs", "step", "maximum", "minimum")


def point_is_safe(e, vals, bound: float = 1e6, gap: float = 1e-4) -> bool:
    """Every node of ``e`` is finite and below ``bound`` at ``vals``, and every kink argument
    is at least ``gap`` away from the kink."""
    nodes = [n for n in sg.topo_order([e]) if not n.op.leaf]
    kinks = []
    for n in nodes:
        if n.op.name in _KINK:
            kinks.append(n.args[0] - n.args[1] if n.op.nargs == 2 else n.args[0])
    outs = nodes + kinks
    if not outs:
        return True
    got = sg.evaluate(outs, {k: v for k, v in vals.items() if k in set(sg.variables(e))})
    for val in got:
        a = np.asarray(val, dtype=float)
        if not np.all(np.isfinite(a)) or np.any(np.abs(a) > bound):
            return False
    return all(np.all(np.abs(np.asarray(k)) > gap) for k in got[len(nodes):])


@st.composite
def scalar_cases(draw, max_ops: int = 7, gap: float = 1e-3):
    """(f, its variables, a safe point): a scalar function of a random graph with tensors, for
    second derivatives (kinks kept ``gap`` away)."""
    from hypothesis import assume

    f = to_scalar(draw(dags(tensor=True, max_ops=max_ops), label="e"))
    ws = sg.variables(f)
    vals = draw(points(ws), label="point")
    assume(point_is_safe(f, vals, gap=gap))
    return f, ws, vals
