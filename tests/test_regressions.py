"""Bugs found by the property tests (tests/test_properties.py), one test each."""

from __future__ import annotations

import sympy

import symgrad as sg

x = sg.scalar("x")


def test_from_sympy_product_with_a_sigmoid_written_as_a_power():
    # x/(1 + exp(-x)): the Pow(-1) factor is recognised as a sigmoid, so its base is never
    # converted; the product must use the sigmoid, not look the base up (was a KeyError)
    sx = sympy.Symbol("x", real=True)
    e = sg.from_sympy(sx / (1 + sympy.exp(-sx)))
    assert sg.evaluate(e, {x: 0.7}) == sg.evaluate(x * sg.sigmoid(x), {x: 0.7})
    f = sg.bce(0.1 + 0.8 * sg.sigmoid(x), x)
    assert abs(sg.evaluate(sg.simplify(f), {x: 0.4}) - sg.evaluate(f, {x: 0.4})) < 1e-12
