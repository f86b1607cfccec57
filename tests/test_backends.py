"""The same compiled graphs on other array libraries: torch and jax on the CPU, dask, and any
array-API namespace (array_api_strict checks that generated code uses only array-API names).
Each library's tests skip cleanly when it is not installed."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad import backends
from tests.backend_cases import ARRAY_BACKENDS as BACKENDS
from tests.backend_cases import CASES, numpy_reference
from tests.backend_cases import backend_inputs as _inputs
from tests.backend_cases import have as _have


def _to_numpy(r):
    if hasattr(r, "compute"):  # dask
        r = r.compute()
    if hasattr(r, "detach"):  # torch
        r = r.detach().cpu().numpy()
    return np.asarray(r)


@pytest.fixture(scope="module")
def x64():
    """jax computes in float64 only with x64 enabled (symgrad never flips that switch)."""
    if not _have("jax"):
        yield
        return
    import jax

    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # older jax
        from jax.experimental import enable_x64 as enable
    with enable(True):
        yield


def _backend_arg(name):
    if name == "array_api_strict":
        import array_api_strict

        return array_api_strict
    return name


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", BACKENDS)
def test_backend_matches_numpy(name, case, x64):
    outs, ins, vals = CASES[case]()
    want = numpy_reference(outs, ins, vals)
    fn = sg.compile(outs, ins, backend=_backend_arg(name))
    got = fn(*_inputs(name, vals))
    if name == "dask":
        import dask

        got = dask.compute(*got, scheduler="sync")
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        g = _to_numpy(g)
        assert g.shape == w.shape, (case, k)
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, err_msg=f"{case} output {k}")


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_shape_errors_name_the_input(name, x64):
    v = sg.vector("v", "n")
    w = sg.vector("w", "n")
    fn = sg.compile(sg.sum(v * w), [v, w], backend=_backend_arg(name))
    a, b = _inputs(name, [np.ones(3), np.ones(4)])
    with pytest.raises(sg.ShapeError, match="input w"):
        fn(a, b)


@pytest.mark.skipif(not _have("torch"), reason="torch not installed")
def test_torch_results_are_tensors_in_float64():
    import torch

    x = sg.vector("x", 3)
    f = sg.sum(sg.exp(x))
    fn = sg.compile([f, sg.hessian(f, x)], [x], backend="torch")
    val, hess = fn(torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))
    assert isinstance(hess, torch.Tensor) and hess.dtype == torch.float64
    np.testing.assert_allclose(hess.numpy(), np.diag(np.exp([0.1, 0.2, 0.3])), rtol=1e-14)


@pytest.mark.skipif(not _have("jax"), reason="jax not installed")
def test_jax_backend_is_jitted(x64):
    outs, ins, vals = CASES["mlp"]()
    fn = sg.compile(outs, ins, backend="jax")
    assert fn.unjitted is not fn and "_xp." in fn.source
    got = [_to_numpy(r) for r in fn(*_inputs("jax", vals))]
    for g, w in zip(got, numpy_reference(outs, ins, vals)):
        np.testing.assert_allclose(g, w, rtol=1e-10)


@pytest.mark.skipif(not _have("torch") or not _have("dask") or not _have("array_api_compat"),
                    reason="torch / dask / array-api-compat not installed")
def test_library_modules_map_to_their_backend():
    import dask.array as da
    import torch

    assert backends.namespace(torch) is backends.namespace("torch")
    assert backends.namespace(da) is backends.namespace("dask")
    assert backends.namespace(np) is np
    x = sg.vector("x", 3)
    fn = sg.compile(sg.exp(x) * 2.0, [x], backend=torch)
    assert isinstance(fn(torch.ones(3, dtype=torch.float64)), torch.Tensor)


def test_unknown_backend_is_a_clear_error():
    x = sg.scalar("x")
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        sg.compile(x * 2.0, [x], backend="nope")
    with pytest.raises(TypeError, match="not an array namespace"):
        sg.compile(x * 2.0, [x], backend=object())


def test_missing_backend_names_the_extra(monkeypatch):
    import sys

    for mod in ("torch", "dask", "dask.array", "cupy", "jax", "jax.numpy", "numba"):
        monkeypatch.setitem(sys.modules, mod, None)  # import fails as if not installed
    monkeypatch.setattr(backends, "_NAMESPACES", {})
    x = sg.vector("x", 3)
    for name in ("torch", "dask", "cupy", "jax", "numba"):
        with pytest.raises(backends.BackendNotInstalled,
                           match=rf"pip install 'symgrad\[{name}\]'"):
            sg.compile(sg.sum(x), [x], backend=name)
        assert not backends.available(name)
    assert backends.available("numpy")
