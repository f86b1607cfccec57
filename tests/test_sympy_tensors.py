"""to_sympy -> from_sympy on graphs with vectors and matrices: one test per class of graph the
round trip used to refuse (or get wrong), and the property over random tensor graphs.

Every round trip is checked by value: the graph read back and the original are evaluated at
random inputs. ``python -m tests.test_sympy_tensors 5000`` runs the round trip on 5000 random
graphs (tests/strategies.py, up to 6 ops) and prints how many keep their value and, for the
others, the error classes with counts (docs/guide/simplify-and-sympy.md quotes them).
"""

from __future__ import annotations

import re
import sys
from collections import Counter

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import symgrad as sg
from symgrad.shapes import fmt_shape
from tests.strategies import dags, point_is_safe, points

A = sg.matrix("A_st", (2, 3))
B = sg.matrix("B_st", (3, 3))
V = sg.vector("v_st", 3)
W = sg.vector("w_st", 2)
X = sg.scalar("x_st")
rng = np.random.default_rng(7)
VALS = {A: rng.normal(size=(2, 3)), B: rng.normal(size=(3, 3)), V: rng.normal(size=3),
        W: rng.normal(size=2), X: 0.4}


def round_trip(e, symbols=None):
    """``e`` through sympy and back; the leaves map to themselves by name."""
    if symbols is None:
        symbols = {w.attrs["vname"]: w for w in sg.variables(e)}
    return sg.from_sympy(sg.to_sympy(e), symbols)


def assert_same_value(back, e, vals=VALS):
    """``back`` has ``e``'s value (and shape, but for a matrix of one column: a vector)."""
    got = np.asarray(sg.evaluate(back, {w: vals[w] for w in sg.variables(back)}))
    want = np.asarray(sg.evaluate(e, {w: vals[w] for w in sg.variables(e)}))
    assert back.shape == e.shape or (len(e.shape) == 2 and e.shape[1] == 1
                                     and back.shape == e.shape[:1]), (back.shape, e.shape)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-12, atol=1e-12,
                               err_msg=f"{e} came back as {back}")


# ------------------------------------------------------------------ from_sympy: entries
def test_function_matrix_with_broadcast_entries():
    # maximum(A, v) of a matrix and a row is FunctionMatrix(2, 3, Lambda((i, j), Max(A[i, j],
    # v[j, 0]))): v's entries go along the columns (was "only formulas in the entries of
    # whole vectors or matrices are read")
    for e in [sg.minimum(A * (1.0 - A), V), sg.maximum(A, V), sg.bce(sg.sigmoid(A), 0.5 * V),
              sg.maximum(sg.reshape(W, (2, 1)), A), sg.minimum(B, sg.transpose(B))]:
        assert_same_value(round_trip(e), e)


def test_sums_of_products_over_a_shared_index():
    # sum(A @ v): Sum(A[_i, 0]*v[0, 0] + A[_i, 1]*v[1, 0] + A[_i, 2]*v[2, 0], (_i, 0, 1)),
    # the product's entries written out by sympy (was "no symgrad form for Sum")
    for e in [sg.sum(A @ V), sg.sum(sg.diagonal(A @ sg.transpose(A))), sg.sum(sg.sum(A, axis=1)),
              sg.sum(sg.tanh(B @ V) * V), sg.trace(B @ B)]:
        back = round_trip(e)
        assert_same_value(back, e)
        assert "take" not in {n.op.name for n in sg.topo_order([back])}, back  # one sum, rolled


def test_nested_sums_over_symbolic_sizes():
    # with symbolic sizes sympy keeps the inner sum: Sum(Sum(M[_i, _k]*u[_k, 0], (_k, 0, n - 1)),
    # (_i, 0, m - 1)), one index per level
    M, u = sg.matrix("M_st", ("m", "n")), sg.vector("u_st", "n")
    vals = {M: rng.normal(size=(2, 3)), u: rng.normal(size=3)}
    for e in [sg.sum(M @ u), sg.sum(sg.exp(M @ u)) * sg.sum(u), sg.mean(sg.tanh(M @ u) * (M @ u))]:
        s = sg.to_sympy(e)
        assert s.has(sympy.Sum)
        assert_same_value(sg.from_sympy(s), e, vals)
    i, k = sympy.Dummy("i", integer=True), sympy.Dummy("k", integer=True)
    m, n = (sympy.Symbol(d, integer=True, positive=True) for d in "mn")
    Ms, us = sympy.MatrixSymbol("M_st", m, n), sympy.MatrixSymbol("u_st", n, 1)
    nested = sympy.Sum(sympy.Sum(Ms[i, k] * us[k, 0], (k, 0, n - 1)) ** 2, (i, 0, m - 1))
    assert_same_value(sg.from_sympy(nested), sg.sum((M @ u) ** 2.0), vals)


def test_entries_at_constant_indices():
    # sympy writes sums it knows the length of term by term: exp(v[0, 0]) + exp(v[1, 0]) + ...
    # (was "no symgrad form for MatrixElement"); a lone entry is that entry
    vs, As = sympy.MatrixSymbol("v_st", 3, 1), sympy.MatrixSymbol("A_st", 2, 3)
    cases = [(sum(sympy.exp(vs[c, 0]) for c in range(3)), sg.sum(sg.exp(V))),
             (vs[1, 0] * As[1, 2] - As[0, 0], sg.take(V, 1) * sg.take(sg.take(A, 1), 2)
              - sg.take(sg.take(A, 0), 0)),
             (sum(As[r, c] ** 2 for r in range(2) for c in range(3)), sg.sum(A * A))]
    for s, e in cases:
        assert_same_value(sg.from_sympy(s), e)
    assert_same_value(round_trip(sg.softmax(V)), sg.softmax(V))


def test_a_column_given_in_symbols_meets_a_vector_entry_by_entry():
    # a (2, 1) matrix mapped in ``symbols`` times a column read as a vector was their outer
    # product (2, 2), a wrong value: every column now reads as one shape
    C = sg.matrix("C_st", (2, 1))
    s = sympy.HadamardProduct(sympy.MatrixSymbol("C_st", 2, 1), sympy.MatrixSymbol("w_st", 2, 1))
    back = sg.from_sympy(s, {"C_st": C, "w_st": W})
    vals = {**VALS, C: np.array([[1.0], [2.0]])}
    assert back.shape == (2,)
    np.testing.assert_allclose(sg.evaluate(back, vals), vals[C][:, 0] * vals[W])


def test_kronecker_delta_and_piecewise_of_index_ranges():
    # sympy's entries of DiagMatrix(v) are KroneckerDelta(i, j)*v[i, 0], and of A*DiagMatrix(v)
    # Piecewise((A[i, j]*v[j, 0], (j >= 0) & (j <= 2)), (0, True)): the branch that holds
    for e in [sg.logsumexp(sg.diag(sg.sigmoid(W))), sg.bce(sg.sigmoid(sg.tanh(A) @ sg.diag(V)), X)]:
        assert_same_value(round_trip(e), e)
    i = sympy.Dummy("i", integer=True)
    vs = sympy.MatrixSymbol("v_st", 3, 1)
    maybe = sympy.Sum(sympy.Piecewise((vs[i, 0], vs[i, 0] > 0), (0, True)), (i, 0, 2))
    with pytest.raises(ValueError, match=r"from_sympy: no symgrad form for Piecewise"):
        sg.from_sympy(maybe)  # a choice by value: no symgrad form here


def test_free_index_and_partial_sums_are_named():
    i = sympy.Dummy("i", integer=True)
    vs = sympy.MatrixSymbol("v_st", 3, 1)
    with pytest.raises(ValueError, match=r"from_sympy: no symgrad form for the free index"):
        sg.from_sympy(vs[i, 0] + 1)
    with pytest.raises(ValueError, match=r"from_sympy: no symgrad form for MatrixElement.*runs "
                                         r"over 2 values, the axis has 3"):
        sg.from_sympy(sympy.Sum(vs[i, 0], (i, 0, 1)))
    with pytest.raises(ValueError, match=r"from_sympy: no symgrad form for the index"):
        sg.from_sympy(sympy.Sum(i * vs[i, 0], (i, 0, 2)))


# ------------------------------------------------------------------ to_sympy: forms
def test_softmax_and_log_softmax_over_one_axis_of_a_matrix():
    # the sums along an axis are broadcast back over it (softmax was "no sympy form for softmax
    # of shapes (2, 3)"; log_softmax's log of a matrix "noncommutative scalars in MatMul")
    for axis in (0, 1):
        for e in [sg.softmax(A, axis=axis), sg.log_softmax(A, axis=axis),
                  sg.log_softmax(V + A, axis=axis), sg.softmax(B, axis=axis) @ V]:
            assert_same_value(round_trip(e), e)


def test_sums_that_keep_their_axes():
    # sum(A, axis=0, keepdims=True) is a row (1, 3): it was written as a column, so it came
    # back as a vector and A - it could not be written at all
    for e in [sg.sum(A, axis=0, keepdims=True), A - sg.sum(A, axis=0, keepdims=True),
              A / sg.sum(A * A, axis=1, keepdims=True), sg.sum(B, keepdims=True),
              sg.logsumexp(A, axis=0, keepdims=True) - A]:
        back = round_trip(e)
        assert_same_value(back, e)
        if e.shape[0] == 1 and e.shape[1] != 1:
            assert back.shape == e.shape  # a row is a row ((1, 1) is a column: a vector)


def test_take_at_a_constant_index():
    # a row of a matrix is a slice, an entry of a vector an entry (was "take has no sympy form")
    for e in [sg.take(A, 1), sg.take(V, 2) * A, sg.take(A, -1) ** 3.0, sg.take(sg.exp(B), 0) @ V,
              sg.softmax(sg.take(sg.bce(sg.sigmoid(A), V), 1))]:
        assert_same_value(round_trip(e), e)
    i = sg.scalar("i_st")
    with pytest.raises(NotImplementedError, match=r"to_sympy: no sympy form for take of shapes "
                                                  r"\(3,\) and \(\) -> \(\).*computed index"):
        sg.to_sympy(sg.take(V, sg.to_int(i)))


def test_reshapes():
    # axes of one added or dropped are the same column or its transpose; a reshape that moves
    # entries to other rows is a FunctionMatrix of the entries in row-major order (was "sympy
    # form of this reshape")
    for e in [sg.reshape(A, (6,)), sg.reshape(A, (3, 2)), sg.reshape(A, (1, 6)),
              sg.reshape(A, (6, 1)), sg.reshape(sg.reshape(A, (6,)), (2, 3)) * A,
              sg.reshape(V, (1, 3)) @ B, sg.reshape(sg.reshape(V, (1, 3)), (3,)) * V,
              sg.reshape(X, (1,)) + V, sg.reshape(sg.reshape(X, (1, 1)), ()),
              sg.sum(sg.reshape(B, (9,)) * sg.reshape(B, (9,))),
              sg.diagonal(sg.outer(sg.reshape(A, (6,)), sg.reshape(A, (6,))))]:
        assert_same_value(round_trip(e), e)
    with pytest.raises(NotImplementedError, match=r"to_sympy: no sympy form for reshape .* "
                                                  r"symbolic sizes"):
        sg.to_sympy(sg.reshape(sg.matrix("S_st", ("m", 2)), (2, "m")))


def test_what_has_no_sympy_form_is_named():
    # sympy's matrix expressions have two axes: a value of three has no form; the op, its
    # operands' shapes and its own are named
    for e, name in [(sg.diag(A), r"diag of shape \(2, 3\) -> \(2, 3, 3\)"),
                    (sg.outer(A, V), r"outer of shapes \(2, 3\) and \(3,\) -> \(2, 3, 3\)"),
                    # (the sum of the broadcast alone is 2 A now: a softmax keeps it)
                    (sg.sum(sg.softmax(sg.broadcast_to(A, (2, 2, 3)), axis=0), axis=0),
                     r"broadcast_to of shape \(2, 3\) -> \(2, 2, 3\)")]:
        with pytest.raises(NotImplementedError, match=r"^to_sympy: no sympy form for " + name):
            sg.to_sympy(e)


def test_sympy_refusing_a_form_is_named(monkeypatch):
    # an error sympy raises while building a form is not let through as it is
    from symgrad.ops.elementwise import Maximum

    def refuse(self, x, y):
        raise TypeError("Mix of Matrix and Scalar symbols")

    monkeypatch.setattr(Maximum, "sym", refuse)
    with pytest.raises(NotImplementedError, match=r"^to_sympy: no sympy form for maximum of "
                                                  r"shapes \(2, 3\) and \(\) -> \(2, 3\) "
                                                  r"\(TypeError: Mix"):
        sg.to_sympy(sg.maximum(A, X))


# ------------------------------------------------------------------ the property
ERROR = re.compile(r"^(to_sympy: no sympy form for \w+ of shapes? |"
                   r"from_sympy: no symgrad form for )")


def outcome(e, vals) -> str:
    """How ``e``'s round trip ends: "ok" (same value at ``vals``), "unchecked" (``vals`` is
    not a safe point), "error: <op or construct>: <reason>" (an error naming what has no
    form), or, all failures of the bridge, "unnamed error: ...", "wrong shape ...",
    "wrong value"."""
    try:
        back = round_trip(e)
    except (NotImplementedError, ValueError) as err:
        if not ERROR.match(str(err)):
            return f"unnamed error: {type(err).__name__}: {str(err).splitlines()[0][:70]}"
        return "error: " + _error_class(str(err))
    if not (back.shape == e.shape or (len(e.shape) == 2 and e.shape[1] == 1
                                      and back.shape == e.shape[:1])):
        return f"wrong shape {fmt_shape(e.shape)} -> {fmt_shape(back.shape)}"
    if not point_is_safe(e, vals):
        return "unchecked"
    got = np.asarray(sg.evaluate(back, {w: vals[w] for w in sg.variables(back)}))
    want = np.asarray(sg.evaluate(e, {w: vals[w] for w in sg.variables(e)}))
    if not np.allclose(got.reshape(want.shape), want, rtol=1e-8, atol=1e-10):
        return "wrong value"
    return "ok"


def _error_class(msg: str) -> str:
    """The op (or sympy construct) an error names and its reason, without the formulas."""
    m = re.match(r"to_sympy: no sympy form for (\w+) of .*?\(([^()]*(?:\([^()]*\))?[^()]*)\)$",
                 msg)
    if m:
        reason = re.sub(r"^(\w+Error): .*", r"\1", m.group(2))  # sympy's own words vary
        return f"{m.group(1)}: {reason}"
    m = re.match(r"from_sympy: no symgrad form for (\w+)( \(.*\))?(: .*)?$", msg)
    if m:
        return f"{m.group(1)}{m.group(3) or ''}"
    return msg.splitlines()[0][:80]


@settings(max_examples=100)
@given(st.data())
def test_round_trip_keeps_the_value_or_names_the_op(data):
    """The round trip of a random graph with tensors keeps its value (and its shape, but for a
    matrix of one column, which comes back as a vector) or raises an error naming the op or the
    sympy construct with no form: never a wrong value, never another error."""
    e = data.draw(dags(tensor=True, value_only=True, max_ops=6), label="e")
    vals = data.draw(points(sg.variables(e)), label="point")
    result = outcome(e, vals)
    assert result in ("ok", "unchecked") or result.startswith("error: "), (result, str(e))
    assume(result != "unchecked")


def main(n: int) -> Counter:
    """Classify the round trips of ``n`` random graphs (deterministic: the same n, the same
    graphs) and print the classes with counts."""
    counts: Counter = Counter()

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        e = data.draw(dags(tensor=True, value_only=True, max_ops=6))
        counts[outcome(e, data.draw(points(sg.variables(e))))] += 1

    run()
    total = sum(counts.values())
    for name, c in counts.most_common():
        print(f"{c:6d} {100 * c / total:5.1f} %  {name}")
    return counts


def test_from_sympy_refuses_what_it_cannot_read_by_name():
    """Indexed, Idx and units are sympy atoms with parts: reading them raised a KeyError;
    Heaviside(x, nan) read as nan for every x (nan * 1[x = 0] is nan away from 0 too)."""
    import sympy as sp

    x = sp.Symbol("x_hv", real=True)
    with pytest.raises(ValueError, match=r"Heaviside.*finite"):
        sg.from_sympy(sp.Heaviside(x, sp.nan))
    for e, what in ((sp.IndexedBase("a_ix")[0], "Indexed"), (sp.Idx("i_ix", 3), "Idx")):
        with pytest.raises(ValueError, match=f"no symgrad form for {what}"):
            sg.from_sympy(e)
    h = sg.from_sympy(sp.Heaviside(x, sp.Rational(1, 2)))
    X = sg.scalar("x_hv")
    assert [sg.evaluate(h, {X: v}) for v in (-1.0, 0.0, 1.0)] == [0.0, 0.5, 1.0]


def test_from_sympy_of_an_explicit_matrix_is_a_clear_error_and_floor_reads_back():
    B = sg.matrix("B_em", (3, 3))
    e = sg.sum(B @ sg.diag(sg.const(np.array([1.0, 2.0, 3.0]))))
    with pytest.raises(ValueError, match="from_sympy: no symgrad form for ImmutableDenseMatrix"):
        sg.from_sympy(sg.to_sympy(e))  # an AttributeError on the Matrix's int shape before
    x = sg.scalar("x_fl")
    r = sg.from_sympy(sg.to_sympy(sg.floor(x) * 2.0 + x))
    assert sg.evaluate(r, {x: 2.7}) == pytest.approx(6.7)


def test_to_sympy_keep_names_writes_a_named_guarded_output_as_its_formula():
    """The gradient of sum(v w) for v of size n, w of size 3 is v under a guard (n == 3); named
    dg and given as the output, keep_names writes its formula, as for an unguarded output, not
    the symbol dg (found by mutation testing: only the guard itself counted as the output)."""
    v, w = sg.vector("v_kg", "n"), sg.vector("w_kg", 3)
    h = sg.grad(sg.sum(v * w), w).named("dg_kg")
    assert h.op.name == "guard"
    r = sg.to_sympy(h, keep_names=True)
    n = sympy.Symbol("n", integer=True, positive=True)
    assert str(r) == "v_kg.T.T"  # (sympy's form of v broadcast to the size 3 it is checked at)
    assert r.doit() == sympy.MatrixSymbol("v_kg", n, 1)
    f = sg.sum(v * w).named("f_kg")  # (the unguarded output, written out too)
    assert str(sg.to_sympy(f, keep_names=True)) == "Sum(v_kg[_i, 0]*w_kg[_i, 0], (_i, 0, 2))"


def test_to_sympy_keep_names_gives_a_variables_name_to_the_variable():
    """A value named like a variable (2y named x, beside the variable x) is written as its
    formula, whichever comes first in the graph: the symbol x is the variable's (found by
    mutation testing: with the value claiming the name, sympy merged the two into 2*x)."""
    x, y = sg.scalars("x_vn y_vn")
    h = (y * 2.0).named("x_vn")
    assert str(sg.to_sympy(h + x, keep_names=True)) == "x_vn + 2*y_vn"
    assert str(sg.to_sympy(x + h, keep_names=True)) == "x_vn + 2*y_vn"


XS_RD = sympy.Symbol("x_rd", real=True)
X_RD = sg.scalar("x_rd")


def test_from_sympy_reads_abs():
    # (found by mutation testing: without Abs in the table of functions, it was refused)
    e = sg.from_sympy(sympy.Abs(XS_RD - 1))
    assert str(e) == "abs(x_rd - 1)"
    assert [sg.evaluate(e, {X_RD: v}) for v in (-2.0, 3.0)] == [3.0, 2.0]


def test_from_sympy_reads_an_infinite_coefficient():
    # oo * x is inf * x (found by mutation testing: refusing every infinite number passed)
    e = sg.from_sympy(sympy.oo * XS_RD)
    assert str(e) == "inf*x_rd"
    assert [sg.evaluate(e, {X_RD: v}) for v in (-1.0, 3.0)] == [-np.inf, np.inf]


def test_from_sympy_keeps_the_power_of_a_denominator():
    # x / (x + 1)^2, not x / (x + 1) (found by mutation testing: dropping the power passed)
    e = sg.from_sympy(XS_RD / (XS_RD + 1) ** 2)
    assert str(e) == "x_rd/(1 + x_rd)**2"
    assert sg.evaluate(e, {X_RD: 3.0}) == pytest.approx(0.1875, rel=1e-15)


def test_from_sympy_reads_softplus_only_from_log_of_one_plus_exp():
    # log(2 + exp(x)) is no softplus (found by mutation testing: any constant read as 1 passed)
    e = sg.from_sympy(sympy.log(2 + sympy.exp(XS_RD)))
    assert str(e) == "log(2 + exp(x_rd))"
    assert sg.evaluate(e, {X_RD: 3.0}) == pytest.approx(np.log(2 + np.exp(3.0)), rel=1e-15)


AS_CS = sympy.MatrixSymbol("A_cs", 3, 3)
A_CS = sg.matrix("A_cs", (3, 3))
AV_CS = np.arange(9.0).reshape(3, 3)
I_CS, J_CS = sympy.symbols("i j", integer=True)


def _entrywise(entry):
    """from_sympy of the 3 x 3 FunctionMatrix (i, j) -> entry, evaluated at A = arange(9)."""
    e = sg.from_sympy(sympy.FunctionMatrix(3, 3, sympy.Lambda((I_CS, J_CS), entry)))
    return sg.evaluate(e, {A_CS: AV_CS}).tolist()


def test_from_sympy_reads_a_column_slice_as_the_column():
    # A[:, 1] is column 1, not row 1 (found by mutation testing)
    e = sg.from_sympy(AS_CS[:, 1])
    assert e.shape == (3,)
    assert sg.evaluate(e, {A_CS: AV_CS}).tolist() == [1.0, 4.0, 7.0]


def test_from_sympy_reads_a_delta_at_a_value_past_the_range_as_zero():
    # KroneckerDelta(i, 3) for i < 3 is 0 everywhere (found by mutation testing: a one-hot of
    # size 3 at 3 raised an IndexError)
    assert _entrywise(sympy.KroneckerDelta(I_CS, 3) * AS_CS[I_CS, J_CS]) == [[0.0] * 3] * 3
    assert _entrywise(sympy.KroneckerDelta(I_CS, 2) * AS_CS[I_CS, J_CS]) == \
        [[0.0] * 3, [0.0] * 3, [6.0, 7.0, 8.0]]  # (the last row, for contrast)


def test_from_sympy_piecewise_condition_with_and_needs_both_parts():
    # (i >= 0) & (j > 5) holds nowhere for j < 3: the second piece, 2 A, everywhere (found by
    # mutation testing: & read as | passed)
    pw = sympy.Piecewise((AS_CS[I_CS, J_CS], (I_CS >= 0) & (J_CS > 5)),
                         (2 * AS_CS[I_CS, J_CS], True))
    assert _entrywise(pw) == (2 * AV_CS).tolist()


def test_from_sympy_refuses_a_sum_that_does_not_start_at_0():
    # (found by mutation testing: without the check, Sum over i = 1..3 read as the whole sum)
    vs = sympy.MatrixSymbol("v_cs", 4, 1)
    with pytest.raises(ValueError, match=r"no symgrad form for Sum .*its indices must start "
                                         r"at 0"):
        sg.from_sympy(sympy.Sum(vs[I_CS, 0], (I_CS, 1, 3)))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)


def test_real_and_unassumed_symbols_are_scalars_and_a_complex_one_may_be_mapped():
    # (the refusal of a complex symbol is in test_validation: a plain one, real, positive or
    # integer ones are read as scalars, and symbols= maps a complex one where the caller says)
    w = sg.scalar("zw_c")
    for sym in (sympy.Symbol("zw_c"), sympy.Symbol("zw_c", real=True),
                sympy.Symbol("zw_c", positive=True), sympy.Symbol("zw_c", integer=True)):
        assert sg.evaluate(sg.from_sympy(sym ** 2), {w: 3.0}) == 9.0
    z = sympy.Symbol("zz_c", complex=True)
    assert sg.evaluate(sg.from_sympy(z ** 2, {z: w}), {w: 3.0}) == 9.0


def test_symbols_may_be_keyed_by_the_symgrad_variable_and_other_keys_are_refused():
    # a variable's .name is None (it is the printing name of a named node): its key was read
    # as the name "None", and the mapping silently dropped
    x, y = sg.scalars("xk_s yk_s")
    X = sympy.Symbol("xk_s", real=True)
    for key in (x, "xk_s", X):
        assert str(sg.from_sympy(X + 1, symbols={key: y})) == "1 + yk_s"
    A, B = sg.matrix("Ak_s", (2, 2)), sg.matrix("Bk_s", (2, 2))
    assert sg.from_sympy(sg.to_sympy(A.T), symbols={A: B}) is B.T
    for bad in (1, None, x * y):
        with pytest.raises(TypeError, match="a key of symbols"):
            sg.from_sympy(X + 1, symbols={bad: y})
