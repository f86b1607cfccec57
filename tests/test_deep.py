"""A chain of depth 100,000: every pass is a loop, none recurses (no RecursionError).

One cheap chain (h <- sin(h)) is built once and shared; each test runs one pass over it.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import symgrad as sg

DEPTH = 100_000
x = sg.scalar("x")


@pytest.fixture(scope="module")
def chain():
    assert sys.getrecursionlimit() < DEPTH  # a recursive pass would fail here
    h = x
    for _ in range(DEPTH):
        h = sg.sin(h)
    return h


def _ref(x0: float):
    """Value and derivative of the chain by a plain loop."""
    h, d = x0, 1.0
    for _ in range(DEPTH):
        d *= math.cos(h)
        h = math.sin(h)
    return h, d


def test_derivative_of_a_shorter_deep_chain():
    h = x
    for _ in range(5000):
        h = sg.sin(h)
    got = sg.compile(sg.grad(h, x), [x])(0.9)
    h_ref, d_ref = 0.9, 1.0
    for _ in range(5000):
        d_ref *= math.cos(h_ref)
        h_ref = math.sin(h_ref)
    np.testing.assert_allclose(got, d_ref, rtol=1e-9)


def test_derivation(chain):
    g = sg.grad(chain, x)
    assert g.shape == () and sg.count_nodes(g) > 2 * DEPTH


def test_compile(chain):
    fn = sg.compile(chain, [x])
    np.testing.assert_allclose(fn(0.9), _ref(0.9)[0], rtol=1e-9)
    # straight-line code: single-use nodes are inlined into their user at most 8 deep, so
    # there is a statement at least every 9 nodes and no deeply nested expression
    assert len(fn.source.splitlines()) > DEPTH // 9
    assert max(ln.count("(") for ln in fn.source.splitlines()) < 40


def test_simplify_and_graph(chain):
    s = sg.simplify(chain)
    assert sg.count_nodes(s) <= DEPTH + 1
    assert chain.graph.number_of_nodes() == DEPTH + 1
    assert len(sg.topo_order([chain])) == DEPTH + 1


def test_printing(chain):
    text = str(chain)
    assert text.count("\n") > 100 and "sin" in text  # bound to temporaries, one per line
    assert "sin" in sg.latex(chain)


def test_save_load(tmp_path):
    h = x
    for _ in range(DEPTH // 5):  # 20 times the recursion limit: the JSON is flat anyway
        h = sg.tanh(h)
    sg.save(h, tmp_path / "deep.json")
    assert sg.load(tmp_path / "deep.json") is h


def test_undefined_derivative_message_on_a_deep_path(chain):
    with pytest.raises(sg.NonDifferentiableError, match=r"more\) \.\.\. .*-> floor"):
        sg.grad(sg.floor(chain) * x, x)


def test_sympy_conversion_of_a_deep_chain_is_a_clear_error(chain):
    with pytest.raises(ValueError, match="to_sympy: the expression is too deep for sympy"):
        sg.to_sympy(chain)
