"""The public contract (../shared/CONTRACT.md), item by item, errors included."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import sympy

import symgrad as sg


# ------------------------------------------------------------------ leaves
def test_leaves_and_identity():
    x = sg.scalar("x")
    assert x.shape == () and sg.scalar("x") is x and sg.scalar("x") == x
    a, b, c = sg.scalars("a, b c")
    assert (a.shape, b.shape, c.shape) == ((), (), ())
    v = sg.vector("v", 3)
    assert v.shape == (3,)
    assert sg.vector("v", "n").shape == ("n",)
    assert sg.matrix("A", (2, "n")).shape == (2, "n")
    assert sg.const(2.0).shape == () and sg.const(np.ones((2, 3))).shape == (2, 3)
    assert hash(x) == hash(sg.scalar("x"))
    assert {x: 1}[sg.scalar("x")] == 1
    assert (x == sg.scalar("y")) is False  # identity, not an elementwise comparison


@pytest.mark.parametrize("bad", ["1x", "a b", "", "x-y", "lambda", None, 3])
def test_bad_variable_names(bad):
    with pytest.raises(ValueError):
        sg.scalar(bad)


def test_bad_sizes():
    with pytest.raises(ValueError):
        sg.vector("v", -1)
    with pytest.raises(ValueError):
        sg.vector("v", 2.5)
    with pytest.raises(ValueError):
        sg.matrix("M", (2,))


def test_plain_numbers_and_arrays_are_lifted():
    x = sg.scalar("x")
    e = 2 * x + 1
    assert sg.evaluate(e, {x: 3.0}) == 7.0
    v = sg.vector("v", 3)
    arr = np.array([1.0, 2.0, 3.0])
    assert np.allclose(sg.evaluate(arr * v, {v: arr}), arr**2)
    assert np.allclose(sg.evaluate(v + [1, 1, 1], {v: arr}), arr + 1)


# ------------------------------------------------------------------ expressions
def test_operators_and_functions():
    x, y = sg.scalars("x y")
    env = {x: 0.7, y: 1.9}
    cases = {
        x + y: 2.6, x - y: -1.2, x * y: 0.7 * 1.9, x / y: 0.7 / 1.9, x**y: 0.7**1.9,
        -x: -0.7, y**x: 1.9**0.7, 2**x: 2**0.7,
        sg.exp(x): np.exp(0.7), sg.log(y): np.log(1.9), sg.sqrt(y): np.sqrt(1.9),
        sg.sigmoid(x): 1 / (1 + np.exp(-0.7)), sg.tanh(x): np.tanh(0.7),
        sg.relu(-x): 0.0, sg.softplus(x): np.log1p(np.exp(0.7)),
        sg.bce(sg.sigmoid(x), 0.25): -(0.25 * np.log(1 / (1 + np.exp(-0.7))) +
                                       0.75 * np.log(1 - 1 / (1 + np.exp(-0.7)))),
    }
    for e, want in cases.items():
        assert sg.evaluate(e, env) == pytest.approx(want, rel=1e-12), str(e)


def test_tensor_functions():
    A = sg.matrix("A", (2, 3))
    v = sg.vector("v", 3)
    u = sg.vector("u", 2)
    rng = np.random.default_rng(1)
    Av, vv, uv = rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=2)
    env = {A: Av, v: vv, u: uv}
    checks = [
        (A @ v, Av @ vv), (sg.matmul(u, A), uv @ Av), (sg.dot(v, v), vv @ vv),
        (sg.outer(u, v), np.outer(uv, vv)), (A.T, Av.T), (sg.transpose(A), Av.T),
        (sg.sum(A), Av.sum()), (sg.sum(A, axis=0), Av.sum(0)), (sg.mean(A, axis=1), Av.mean(1)),
        (sg.mean(A), Av.mean()),
        (sg.logsumexp(A), np.log(np.exp(Av).sum())),
        (sg.logsumexp(A, axis=1), np.log(np.exp(Av).sum(1))),
        (sg.softmax(A), np.exp(Av) / np.exp(Av).sum(-1, keepdims=True)),
        (sg.softmax(A, axis=0), np.exp(Av) / np.exp(Av).sum(0, keepdims=True)),
        (sg.log_softmax(A), Av - np.log(np.exp(Av).sum(-1, keepdims=True))),
        (sg.argmax(A), np.argmax(Av)), (sg.argmax(A, axis=1), np.argmax(Av, axis=1)),
        (sg.take(A, 1), Av[1]), (A + v, Av + vv), (u @ (A * vv), uv @ (Av * vv)),
    ]
    for e, want in checks:
        np.testing.assert_allclose(sg.evaluate(e, env), want, rtol=1e-12, err_msg=str(e))
    assert sg.evaluate(sg.argmax(A), env) == np.argmax(Av)


def test_take_with_an_expression_index():
    A = sg.matrix("A", (3, 2))
    i = sg.scalar("i")
    Av = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(sg.evaluate(sg.take(A, i), {A: Av, i: 2.0}), Av[2])
    with pytest.raises(IndexError):
        sg.evaluate(sg.take(A, i), {A: Av, i: 1.5})


def test_graph_is_a_networkx_dag_with_operand_order():
    x = sg.scalar("x")
    e = x * x + sg.exp(x)
    g = e.graph
    assert isinstance(g, nx.DiGraph) and nx.is_directed_acyclic_graph(g)
    assert set(g.nodes) >= {e, x}
    sq = next(n for n in g.nodes if g.nodes[n]["op"] == "mul")
    assert g.nodes[sq]["args"] == (x, x)
    assert g.edges[x, sq]["positions"] == [0, 1]
    assert e.graph.number_of_nodes() == sg.count_nodes(e) == 4  # x, x*x, exp(x), the sum
    assert g.nodes[x]["shape"] == ()


def test_the_cached_graph_cannot_be_edited_into_other_expressions():
    # e.graph is cached on a node that every equal construction shares: an edit would have
    # changed the node count of expressions built later
    x, y = sg.scalars("x_fz y_fz")
    e = sg.exp(x * y) + x
    with pytest.raises(nx.NetworkXError):
        e.graph.remove_node(x)
    with pytest.raises(nx.NetworkXError):
        e.graph.add_edge(x, y)
    f = sg.exp(x * y) + x
    assert f.graph.number_of_nodes() == 5 and x in f.graph
    mine = e.graph.copy()  # an editable copy
    mine.remove_node(x)
    assert mine.number_of_nodes() == 4 and e.graph.number_of_nodes() == 5


def test_hash_consing_shares_subexpressions():
    x, y = sg.scalars("x y")
    assert (x * y) is (x * y)
    assert sg.sigmoid(x + y) is sg.sigmoid(x + y)
    e = sg.exp(x * y) + sg.sin(x * y)
    assert e.graph.number_of_nodes() == 6


def test_named_and_printing():
    x, y = sg.scalars("x y")
    z = (x * y + 1).named("z")
    assert sg.evaluate(z, {x: 2.0, y: 3.0}) == 7.0
    assert str(sg.exp(z)) == "exp(z)"
    assert str(z) == "x*y + 1"  # the root prints its definition
    assert sg.latex(sg.exp(z)) == r"\exp\left(z\right)"
    with pytest.raises(ValueError):
        x.named("not a name")
    assert str(sg.sigmoid(x) - y) == "sigmoid(x) - y"
    assert str(x - (y - 1)) == "x - (y - 1)"
    assert str((x + y) * (x - y)) == "(x + y)*(x - y)"
    assert str(x ** (y + 1)) == "x**(y + 1)"


def test_named_leaf_keeps_identity_of_variable():
    x = sg.scalar("x")
    t = x.named("theta")
    assert str(sg.exp(t)) == "exp(theta)"
    assert sg.evaluate(sg.grad(sg.exp(t), x), {x: 0.0}) == 1.0


def test_pow_both_sides():
    x, y = sg.scalars("x y")
    gx, gy = sg.grad(x**y, [x, y])
    env = {x: 1.5, y: 2.5}
    assert sg.evaluate(gx, env) == pytest.approx(2.5 * 1.5**1.5)
    assert sg.evaluate(gy, env) == pytest.approx(np.log(1.5) * 1.5**2.5)


# ------------------------------------------------------------------ numerical conventions
def test_stable_functions_without_warnings():
    z = sg.scalar("z")
    y = sg.scalar("y")
    exprs = [sg.sigmoid(z), sg.softplus(z), sg.bce(sg.sigmoid(z), y)]
    g = sg.grad(sg.bce(sg.sigmoid(z), y), z)
    v = sg.vector("v", 3)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for at in (-1e3, -50.0, 0.0, 50.0, 1e3, -1e300, 1e300):
            for e in exprs:
                val = sg.evaluate(e, {z: at, y: 1.0})
                assert np.isfinite(val)
            s = 1 / (1 + np.exp(-at)) if at > -700 else 0.0
            assert sg.evaluate(g, {z: at, y: 1.0}) == pytest.approx(s - 1.0, abs=1e-12)
            assert sg.evaluate(g, {z: at, y: 0.0}) == pytest.approx(s, abs=1e-12)
            big = np.array([at, 0.0, -at])
            assert np.isfinite(sg.evaluate(sg.logsumexp(v), {v: big}))
            assert np.all(np.isfinite(sg.evaluate(sg.log_softmax(v), {v: big})))
            assert np.all(np.isfinite(sg.evaluate(sg.softmax(v), {v: big})))


def test_gradient_layout_is_the_variables():
    U = sg.matrix("U", (3, 2))
    v = sg.vector("v", 2)
    f = sg.sum(sg.tanh(U @ v))
    assert sg.grad(f, U).shape == (3, 2)
    assert sg.grad(f, v).shape == (2,)


# ------------------------------------------------------------------ derivatives
def test_grad_list_jacobian_hessian_shapes():
    x = sg.vector("x", 3)
    A = sg.matrix("A", (2, 3))
    f = sg.sum(sg.exp(A @ x))
    assert isinstance(sg.grad(f, [x, A]), list)
    assert sg.jacobian(A @ x, x).shape == (2, 3)
    assert sg.jacobian(A @ x, A).shape == (2, 2, 3)
    assert sg.hessian(f, x).shape == (3, 3)
    H = sg.hessian(f, [x, A])
    assert [[h.shape for h in row] for row in H] == [[(3, 3), (3, 2, 3)], [(2, 3, 3), (2, 3, 2, 3)]]


def test_grad_of_a_variable_not_used_is_zero():
    x, y = sg.scalars("x y")
    assert sg.evaluate(sg.grad(x * 2, y), {x: 1.0}) == 0.0
    v = sg.vector("v", 2)
    np.testing.assert_array_equal(sg.evaluate(sg.grad(x * 2, v), {x: 1.0}), np.zeros(2))


# ------------------------------------------------------------------ sympy, simplify, evaluate
def test_to_sympy_forms():
    x = sg.scalar("x")
    sx = sympy.Symbol("x", real=True)
    assert sg.to_sympy(x) == sx
    assert sympy.simplify(sg.to_sympy(sg.sigmoid(x)) - 1 / (1 + sympy.exp(-sx))) == 0
    assert sympy.simplify(sg.to_sympy(sg.softplus(x)) - sympy.log(1 + sympy.exp(sx))) == 0
    assert sg.to_sympy(sg.relu(x)) == sympy.Max(0, sx)
    named = (x * 2).named("h")
    assert sg.to_sympy(sg.exp(named), keep_names=True) == sympy.exp(sympy.Symbol("h", real=True))
    assert sg.to_sympy(sg.exp(named)) == sympy.exp(2 * sx)
    A = sg.matrix("A", ("m", "n"))
    assert isinstance(sg.to_sympy(A), sympy.MatrixSymbol)


def test_from_sympy():
    sx, sy = sympy.symbols("x y", real=True)
    x = sg.scalar("x")
    e = sg.from_sympy(sympy.exp(sx) * sy - sympy.sin(sx) / sy + sx**3, {sx: x})
    assert sg.evaluate(e, {x: 0.3, sg.scalar("y"): 2.0}) == pytest.approx(
        np.exp(0.3) * 2 - np.sin(0.3) / 2 + 0.027)
    s = sg.from_sympy(1 / (1 + sympy.exp(-sx)))
    assert s.op.name == "sigmoid"
    assert sg.from_sympy(sympy.Max(0, sx)).op.name == "relu"


def test_simplify_never_larger():
    x, y = sg.scalars("x y")
    for e in [x * 1 + 0, (x + y) * (x + y) - x * x, sg.exp(sg.log(x)), x / x, x + x]:
        s = sg.simplify(e)
        assert sg.count_nodes(s) <= sg.count_nodes(e)
        assert sg.evaluate(s, {x: 1.3, y: 0.4}) == pytest.approx(sg.evaluate(e, {x: 1.3, y: 0.4}))
    assert sg.simplify([x * 1, y])[1] is y


def test_evaluate_and_compile_ignore_unused_inputs():
    x, y, z = sg.scalars("x y z")
    assert sg.evaluate(x + 1, {x: 1.0, y: 5.0}) == 2.0
    assert sg.evaluate([x + 1, x * 2], {x: 1.0}) == [2.0, 2.0]
    f = sg.compile(x + 1, [x, y, z])
    assert f(1.0, 2.0, 3.0) == 2.0
    assert "x" in f.source


# ------------------------------------------------------------------ errors
def test_shape_errors_at_build_time_name_op_and_shapes():
    a, b = sg.vector("a", 3), sg.vector("b", 4)
    with pytest.raises(sg.ShapeError) as e:
        _ = a + b
    assert "add" in str(e.value) and "(3,)" in str(e.value) and "(4,)" in str(e.value)
    assert isinstance(e.value, ValueError)
    A = sg.matrix("A", (2, 3))
    with pytest.raises(sg.ShapeError) as e:
        _ = A @ b
    assert "matmul" in str(e.value) and "(2, 3)" in str(e.value) and "(4,)" in str(e.value)


def test_shape_errors_with_symbolic_sizes_when_called():
    a, b = sg.vector("a", "n"), sg.vector("b", 3)
    e = a + b  # n may be 3: the check waits for the call
    f = sg.compile(e, [a, b])
    np.testing.assert_allclose(f(np.ones(3), np.ones(3)), 2 * np.ones(3))
    with pytest.raises(sg.ShapeError) as err:
        f(np.ones(4), np.ones(3))
    assert "add" in str(err.value) and "(4,)" in str(err.value) and "(3,)" in str(err.value)
    A = sg.matrix("A", ("m", "n"))
    g = sg.compile(A @ a, [A, a])
    with pytest.raises(sg.ShapeError) as err:
        g(np.ones((2, 3)), np.ones(4))
    assert "a" in str(err.value) and "(4,)" in str(err.value)


def test_compiled_function_checks_inputs():
    v = sg.vector("v", 3)
    f = sg.compile(sg.sum(v), [v])
    with pytest.raises(sg.ShapeError) as e:
        f(np.ones(4))
    assert "v" in str(e.value)
    with pytest.raises(TypeError):
        f()


def test_non_differentiable_error():
    v = sg.vector("v", 3)
    A = sg.matrix("A", (3, 2))
    i = sg.argmax(v)
    f = sg.sum(sg.take(A, i)) * sg.sum(v)
    with pytest.raises(sg.NonDifferentiableError) as e:
        sg.grad(f, v)
    msg = str(e.value)
    assert "take" in msg and "v" in msg and "stop_gradient" in msg
    assert isinstance(e.value, TypeError)
    # differentiable in the matrix
    assert sg.grad(f, A).shape == (3, 2)
    # stop_gradient makes the path constant
    g = sg.sum(sg.take(A, sg.stop_gradient(i))) * sg.sum(v)
    assert sg.grad(g, v).shape == (3,)
    with pytest.raises(sg.NonDifferentiableError) as e:
        sg.grad(sg.argmax(v) * 1.0, v)
    assert "argmax" in str(e.value)


def test_value_errors():
    v = sg.vector("v", 3)
    x = sg.scalar("x")
    with pytest.raises(ValueError):
        sg.grad(v * 2, v)  # not a scalar
    with pytest.raises(ValueError) as e:
        sg.compile(v + x, [v])
    assert "x" in str(e.value)
    with pytest.raises(ValueError) as e:
        sg.evaluate(v + x, {v: np.ones(3)})
    assert "x" in str(e.value)
    with pytest.raises(ValueError):
        sg.hessian(v, v)


def test_evaluate_takes_the_list_of_lists_a_hessian_of_a_list_gives():
    x, y = sg.scalars("x_ll y_ll")
    H = sg.hessian(x * x * y, [x, y])
    assert sg.evaluate(H, {x: 1.0, y: 2.0}) == [[4.0, 2.0], [2.0, 0.0]]


def test_compile_takes_the_list_of_lists_a_hessian_of_a_list_gives():
    # evaluate took it and compile refused it ("expected expressions, got list")
    x, y = sg.scalars("x_cl y_cl")
    v = sg.vector("v_cl", 2)
    H = sg.hessian(sg.sin(x * y) + sg.sum(v * v) * x, [x, y, v])
    f = sg.compile(H, [x, y, v])
    at = {x: 0.3, y: 0.5, v: np.array([1.0, 2.0])}
    got = f(0.3, 0.5, np.array([1.0, 2.0]))
    assert isinstance(got, tuple) and [len(r) for r in got] == [3, 3, 3]
    for row_got, row_ref in zip(got, sg.evaluate(H, at)):
        for a, b in zip(row_got, row_ref):
            np.testing.assert_allclose(a, b, rtol=1e-15)
    assert len(f.outputs) == 9 and "def compiled" in f.source
    assert sg.compile([[x * y], [x, y]], [x, y])(2.0, 3.0) == ((6.0,), (2.0, 3.0))


def test_simplify_takes_the_list_of_lists_a_hessian_of_a_list_gives():
    x, y = sg.scalars("x_sl y_sl")
    H = sg.hessian(sg.sin(x * y) + x * x * y, [x, y])
    S = sg.simplify(H)
    assert [len(r) for r in S] == [2, 2]
    from symgrad.graph import count_nodes
    assert count_nodes([h for r in S for h in r]) <= count_nodes([h for r in H for h in r])
    at = {x: 0.3, y: -1.2}
    for rs, rh in zip(S, H):
        for a, b in zip(rs, rh):
            assert sg.evaluate(a, at) == pytest.approx(sg.evaluate(b, at), rel=1e-12)


def test_evaluate_gives_a_float_a_variables_list_in_order_and_the_graph_names_aliases():
    """Mutation testing found none of these checked: evaluate of a scalar made by a
    reduction or a take returns a float; sg.variables lists in order of first appearance;
    the networkx graph carries an alias's name."""
    v, i = sg.vector("v_ct", 3), sg.scalar("i_ct")
    vals = {v: np.array([1.0, 2.0, 3.0]), i: 1.0}
    for e in (sg.logsumexp(v), sg.take(v, i), sg.sum(v)):
        assert type(sg.evaluate(e, vals)) is float
    y, x = sg.scalar("y_ct"), sg.scalar("x_ct")
    assert [w.attrs["vname"] for w in sg.variables(y * x + x)] == ["y_ct", "x_ct"]
    g = (x.named("q_ct") * 2.0).graph
    assert ("alias", "q_ct") in {(d["op"], d["name"]) for _, d in g.nodes(data=True)}
