"""sg.explain on tensor graphs (and the printing its steps use)."""

from __future__ import annotations

import symgrad as sg


def test_a_column_spread_prints_as_v_times_ones_transposed():
    # d sum(A^T c)/dA = c 1^T and d sum(tanh(rowsums(A)) c)/dA = (...) 1^T: both printed as
    # their operand (c^T, a row; or a vector that numpy spreads along the rows)
    A, c = sg.matrix("pA", (2, 3)), sg.vector("pc", 2)
    assert str(sg.grad(sg.sum(sg.transpose(A) @ c), A)) == "pc 1^T"
    g = sg.grad(sg.sum(sg.sum(A, axis=1) * c), A)
    assert str(g) == "pc 1^T"
    assert sg.latex(g) == r"\mathrm{pc} \mathbf{1}^{T}"
    ex = sg.explain(sg.sum(sg.transpose(A) @ c), A, show=False)
    assert ex.steps[-1].formula == "pc 1^T"
    # a broadcast scalar transposed prints as the scalar, a row broadcast as the row
    x = sg.scalar("px")
    assert str(sg.transpose(sg.broadcast_to(x, (3, 2)))) == "px"
    assert str(sg.grad(sg.sum(A @ sg.vector("pv", 3)), A)) == "pv"
