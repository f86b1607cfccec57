"""GPU backends: the same compiled graphs on cupy arrays and on torch CUDA tensors.

Skipped cleanly where cupy / torch or a CUDA device is missing; ``benchmarks/gpu_check.py`` runs
these on a GPU machine.
"""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from tests.backend_cases import CASES, numpy_reference


def _cupy():
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        cupy.zeros(1).sum()  # the device works
        return cupy
    except Exception:  # not installed, no driver, no device
        return None


def _torch_cuda():
    try:
        import torch

        return torch if torch.cuda.is_available() else None
    except Exception:
        return None


cupy_only = pytest.mark.skipif(_cupy() is None, reason="cupy with a CUDA device not available")
torch_cuda = pytest.mark.skipif(_torch_cuda() is None, reason="torch with CUDA not available")


def _check(got, want, is_device_array):
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert is_device_array(g) or np.ndim(w) == 0, (k, type(g))
        g = g.get() if hasattr(g, "get") else g
        g = g.detach().cpu().numpy() if hasattr(g, "detach") else g
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-10, atol=1e-12, err_msg=str(k))


@cupy_only
@pytest.mark.parametrize("case", sorted(CASES))
def test_cupy_matches_numpy(case):
    cp = _cupy()
    outs, ins, vals = CASES[case]()
    fn = sg.compile(outs, ins, backend="cupy")
    got = fn(*[cp.asarray(v) if isinstance(v, np.ndarray) else v for v in vals])
    _check(got, numpy_reference(outs, ins, vals), lambda a: isinstance(a, cp.ndarray))


@torch_cuda
@pytest.mark.parametrize("case", sorted(CASES))
def test_torch_cuda_matches_numpy(case):
    torch = _torch_cuda()
    outs, ins, vals = CASES[case]()
    fn = sg.compile(outs, ins, backend="torch:cuda")
    got = fn(*[torch.as_tensor(v, device="cuda") if isinstance(v, np.ndarray) else v
               for v in vals])
    _check(got, numpy_reference(outs, ins, vals),
           lambda a: isinstance(a, torch.Tensor) and a.is_cuda)


@cupy_only
def test_cupy_logistic_hessian_is_the_closed_form():
    cp = _cupy()
    X, y, w = sg.matrix("X", ("m", "n")), sg.vector("y", "m"), sg.vector("w", "n")
    f = sg.sum(sg.softplus(-y * (X @ w)))
    fn = sg.compile(sg.hessian(f, w), [X, y, w], backend="cupy")
    rng = np.random.default_rng(0)
    Xv, yv, wv = rng.standard_normal((200, 50)), rng.choice([-1.0, 1.0], 200), \
        rng.standard_normal(50) / 7
    s = 1 / (1 + np.exp(-(yv * (Xv @ wv))))
    want = Xv.T @ ((s * (1 - s))[:, None] * Xv)
    got = fn(cp.asarray(Xv), cp.asarray(yv), cp.asarray(wv))
    np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-10, atol=1e-12)


def _samples_on_the_device(backend: str, to_device, is_device_array) -> None:
    """A scalar input given an array of samples on the device: the batched version runs there
    and returns device arrays equal to numpy's (symgrad._per_sample)."""
    v, s, A = sg.vector("v_gs", 3), sg.scalar("s_gs"), sg.matrix("A_gs", (2, 3))
    outs = [sg.sum(sg.tanh(v * s)), A @ (v * s), sg.sum(v)]
    vals = [np.array([0.1, 0.2, 0.3]), np.arange(6.0).reshape(2, 3), np.array([1.0, -2.0, 0.5])]
    want = sg.compile(outs, [v, A, s])(*vals)
    got = sg.compile(outs, [v, A, s], backend=backend)(*[to_device(x) for x in vals])
    _check(got, want, is_device_array)


@cupy_only
def test_cupy_samples_of_a_scalar_input():
    cp = _cupy()
    _samples_on_the_device("cupy", cp.asarray, lambda a: isinstance(a, cp.ndarray))


@torch_cuda
def test_torch_cuda_samples_of_a_scalar_input():
    torch = _torch_cuda()
    _samples_on_the_device("torch:cuda", lambda x: torch.as_tensor(x, device="cuda"),
                           lambda a: isinstance(a, torch.Tensor) and a.is_cuda)


def _float32_on_the_device(backend: str, to_device, to_host) -> None:
    """float32 data stays float32 on the device, through the MLP's gradient and the kinks
    case's gates and powers (Python-float scalars and float64 constants do not promote it),
    and agrees with numpy's float32 run."""
    for case in ("mlp", "kinks"):
        outs, ins, vals = CASES[case]()
        vals32 = [v.astype(np.float32) if isinstance(v, np.ndarray) else v for v in vals]
        want = sg.compile(outs, ins)(*vals32)
        got = sg.compile(outs, ins, backend=backend)(*[to_device(v) for v in vals32])
        for k, (g, w) in enumerate(zip(got, want)):
            g = to_host(g)
            assert g.dtype == np.asarray(w).dtype, (case, k, g.dtype, np.asarray(w).dtype)
            np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5, err_msg=f"{case} {k}")


@cupy_only
def test_cupy_keeps_float32():
    cp = _cupy()
    _float32_on_the_device("cupy", lambda v: cp.asarray(v) if isinstance(v, np.ndarray) else v,
                           lambda a: np.asarray(cp.asnumpy(a)))


@torch_cuda
def test_torch_cuda_keeps_float32():
    torch = _torch_cuda()
    _float32_on_the_device(
        "torch:cuda",
        lambda v: torch.as_tensor(v, device="cuda") if isinstance(v, np.ndarray) else v,
        lambda a: a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a))
