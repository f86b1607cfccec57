"""sg.check_grad: first and second derivatives against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.ops import REGISTRY

ka, kb, kx, ky = sg.scalars("ka kb kx ky")


def test_correct_derivatives_pass_first_and_second_order():
    phi = sg.sigmoid(ka * kx + kb)
    f = sg.bce(sg.sigmoid(2.0 * phi - 0.5), ky)
    err = sg.check_grad(f, [ka, kb], {ka: 0.7, kb: -0.3, kx: 0.5, ky: 1.0})
    assert isinstance(err, float)
    assert 0.0 <= err < 1e-7


def test_names_as_keys_and_tensors():
    X = sg.matrix("kX", ("m", "n"))
    y = sg.vector("ky_", "m")
    w = sg.vector("kw", "n")
    f = sg.sum(sg.log(1 + sg.exp(-y * (X @ w))))
    rng = np.random.default_rng(1)
    at = {"kX": rng.normal(size=(6, 3)), "ky_": rng.choice([-1.0, 1.0], 6),
          "kw": rng.normal(size=3)}
    assert sg.check_grad(f, w, at) < 1e-7
    # a vector-valued f: its Jacobian and second derivatives
    g = sg.tanh(X @ w)
    assert sg.check_grad(g, [w, X], at) < 1e-7


def test_a_wrong_first_derivative_is_caught_and_named():
    # stop_gradient makes symgrad's derivative differ from the function's true slope
    f = kx * sg.stop_gradient(kx) + ka
    with pytest.raises(AssertionError) as info:
        sg.check_grad(f, [ka, kx], {kx: 2.0, ka: 1.0}, order=1)
    msg = str(info.value)
    assert "df/dkx = 2 (symgrad) vs 4 (finite differences)" in msg
    assert "tol" in msg


def test_a_wrong_second_derivative_is_caught_only_at_order_two(monkeypatch):
    # break the derivative of sigmoid_deriv: first derivatives of sigmoid stay right
    op = REGISTRY["sigmoid_deriv"]
    monkeypatch.setattr(type(op), "deriv", lambda self, n: sg.const(0.25))
    f = sg.sigmoid(kx * kb)
    at = {kx: 0.8, kb: -1.1}
    assert sg.check_grad(f, kx, at, order=1) < 1e-7
    with pytest.raises(AssertionError, match=r"d2f/dkx dkx"):
        sg.check_grad(f, kx, at, order=2)


def test_worst_entry_of_a_vector_is_named():
    v = sg.vector("kv", 3)
    f = sg.sum(v * sg.stop_gradient(v) ** 2)
    with pytest.raises(AssertionError, match=r"df/dkv\[2\]"):
        sg.check_grad(f, v, {v: np.array([0.1, 0.2, 3.0])}, order=1)


def test_tolerance_and_errors():
    f = sg.sin(kx) * ky
    at = {kx: 0.3, ky: 2.0}
    err = sg.check_grad(f, kx, at)
    with pytest.raises(AssertionError):
        sg.check_grad(f, kx, at, tol=err / 10)  # a tolerance below the FD error fails
    with pytest.raises(ValueError, match="no value given for ky"):
        sg.check_grad(f, kx, {kx: 0.3})
    with pytest.raises(ValueError, match="shape"):
        sg.check_grad(f, kx, {kx: [0.3, 0.4], ky: 1.0})
    assert sg.check_grad(f, kx, {"other": 1.0, ka: 5.0, kx: 0.3, ky: 2.0}) == err  # ignored
    with pytest.raises(ValueError, match="must be variables"):
        sg.check_grad(f, kx, {kx * 2: 1.0, kx: 0.3, ky: 1.0})
    with pytest.raises(ValueError, match="variables"):
        sg.check_grad(f, kx * 2, at)
    with pytest.raises(ValueError, match="order"):
        sg.check_grad(f, kx, at, order=3)
