"""Shared test helpers: central finite differences against symgrad's derivatives."""

from __future__ import annotations

import numpy as np

import symgrad as sg


def numeric_grad(f_expr, wrt, values: dict, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of ``f_expr`` (any shape) wrt the variable ``wrt``.

    Returns an array of shape f.shape + wrt.shape (the Jacobian layout).
    """
    base = np.array(values[wrt], dtype=float)
    fshape = np.shape(sg.evaluate(f_expr, values))
    out = np.zeros(fshape + base.shape)
    for idx in np.ndindex(*base.shape) if base.shape else [()]:
        plus, minus = base.copy(), base.copy()
        plus[idx] += eps
        minus[idx] -= eps
        vp = dict(values)
        vm = dict(values)
        vp[wrt] = plus if base.shape else float(plus)
        vm[wrt] = minus if base.shape else float(minus)
        d = (np.asarray(sg.evaluate(f_expr, vp)) - np.asarray(sg.evaluate(f_expr, vm))) / (2 * eps)
        out[(...,) + tuple(idx)] = d
    return out


def assert_grad_fd(f_expr, wrt_list, values, rtol=1e-5, atol=1e-7, eps=1e-6):
    """symgrad's jacobian of f wrt each variable equals central finite differences."""
    jacs = sg.jacobian(f_expr, list(wrt_list))
    got = sg.evaluate(jacs, values)
    for v, j in zip(wrt_list, got):
        want = numeric_grad(f_expr, v, values, eps)
        np.testing.assert_allclose(np.asarray(j), want, rtol=rtol, atol=atol,
                                   err_msg=f"d/d{v} of {f_expr}")


def plain_numpy(name: str):
    """A copy of numpy as another array namespace (a module of its own name: numpy's
    ``__name__`` would make symgrad take it for numpy). Code compiled against it is the plain
    version: no reused buffers, no Python-number scalars, no math version."""
    import types

    ns = types.ModuleType(name)
    ns.__dict__.update({k: v for k, v in np.__dict__.items() if k != "__name__"})
    return ns
