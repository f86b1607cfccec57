"""Every public function checks its arguments: the contract's errors, with messages that name
the op, the shapes or the variable. Compiled functions check the number, type and shape of
their inputs and name the offending one."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import sympy

import symgrad as sg

x, y = sg.scalars("x y")
v = sg.vector("v", 3)
A = sg.matrix("A", (2, 3))
S = sg.matrix("S", ("n", "n"))
ShapeError = sg.ShapeError

# (call, error, a regex the message must match)
BAD = {
    "scalar_name": (lambda: sg.scalar("1a"), ValueError,
                    r"^scalar: variable name '1a' is not a valid Python identifier"),
    "scalar_keyword": (lambda: sg.scalar("lambda"), ValueError, r"^scalar: variable name 'lambda'"),
    "scalars_name": (lambda: sg.scalars("a 1b"), ValueError, r"^scalars: variable name '1b'"),
    "scalars_none": (lambda: sg.scalars(None), ValueError, r"scalars"),
    "scalars_empty": (lambda: sg.scalars(" , "), ValueError, r"scalars: no names"),
    "vector_size": (lambda: sg.vector("v", -1), ValueError,
                    r"^vector: variable v: shape -1 is not a size"),
    "vector_float": (lambda: sg.vector("v", 2.5), ValueError, r"^vector: .*2.5 is not a size"),
    "vector_name": (lambda: sg.vector("1v", 3), ValueError, r"^vector: variable name '1v'"),
    "matrix_shape": (lambda: sg.matrix("M", 3), ValueError, r"^matrix: variable M.*two sizes"),
    "matrix_name": (lambda: sg.matrix("1M", (2, 2)), ValueError, r"^matrix: variable name"),
    "tensor_dim": (lambda: sg.tensor("T", ("n m",)), ValueError, r"^tensor: variable T: .*'n m'"),
    "const_str": (lambda: sg.const("abc"), TypeError, r"const"),
    "const_ragged": (lambda: sg.const([[1.0], [1.0, 2.0]]), ValueError, r"const"),
    "const_object": (lambda: sg.const([1, "a"]), TypeError, r"const: .*dtype"),
    "const_complex": (lambda: sg.const(np.array([1j])), TypeError, r"const: .*complex"),
    "mean_strings": (lambda: sg.mean([1, "a"]), TypeError, r"^mean: operand"),
    "exp_str": (lambda: sg.exp("a"), TypeError, r"^exp: operand 'a'"),
    "add_none": (lambda: x + None, TypeError, r"^add: operand None"),
    "pow_str": (lambda: x ** "2", TypeError, r"^pow: operand '2'"),
    "add_shapes": (lambda: v + A.T, ShapeError, r"add.*\(3,\).*\(3, 2\)"),
    "maximum_shapes": (lambda: sg.maximum(v, A.T), ShapeError, r"maximum.*\(3,\).*\(3, 2\)"),
    "sum_axis": (lambda: sg.sum(A, 2), ShapeError, r"sum: axis 2 .*\(2, 3\)"),
    "sum_axis_float": (lambda: sg.sum(A, 1.5), ValueError, r"sum: axis 1.5"),
    "sum_axis_repeat": (lambda: sg.sum(A, (0, 0)), ValueError, r"sum: repeated axis"),
    "sum_keepdims": (lambda: sg.sum(A, 0, keepdims="yes"), ValueError, r"sum: keepdims"),
    "mean_axis": (lambda: sg.mean(A, 5), ShapeError, r"mean: axis 5"),
    "lse_axis": (lambda: sg.logsumexp(A, -3), ShapeError, r"logsumexp: axis -3"),
    "softmax_scalar": (lambda: sg.softmax(x), ShapeError, r"softmax.*\(\)"),
    "log_softmax_axis": (lambda: sg.log_softmax(A, 7), ShapeError, r"log_softmax: axis 7"),
    "argmax_axes": (lambda: sg.argmax(A, (0, 1)), ValueError, r"argmax: axis"),
    "matmul_shapes": (lambda: A @ A, ShapeError, r"matmul: shapes \(2, 3\) and \(2, 3\)"),
    "matmul_fn": (lambda: sg.matmul(A, A), ShapeError, r"matmul: shapes"),
    "matmul_scalar": (lambda: x @ A, ShapeError, r"matmul: shapes \(\) and \(2, 3\)"),
    "dot_shapes": (lambda: sg.dot(v, A), ShapeError, r"^dot: shapes \(3,\) and \(2, 3\)"),
    "outer_scalar": (lambda: sg.outer(x, v), ShapeError, r"outer: shapes \(\) and \(3,\)"),
    "transpose_range": (lambda: sg.transpose(A, (0, 5)), ValueError, r"transpose: \(0, 5\)"),
    "transpose_type": (lambda: sg.transpose(A, 1), ValueError, r"transpose: 1"),
    "reshape_size": (lambda: sg.reshape(A, (4,)), ShapeError, r"reshape.*\(2, 3\).*\(4,\)"),
    "reshape_neg": (lambda: sg.reshape(A, (-2, 3)), ValueError, r"reshape: size -2"),
    "broadcast_shapes": (lambda: sg.broadcast_to(A, (3, 3)), ShapeError,
                         r"broadcast_to.*\(2, 3\).*\(3, 3\)"),
    "broadcast_bad": (lambda: sg.broadcast_to(A, (-2, 3)), ValueError, r"broadcast_to: size -2"),
    "broadcast_none": (lambda: sg.broadcast_to(A, None), ValueError, r"broadcast_to"),
    "expand_dims_range": (lambda: sg.expand_dims(A, 5), ValueError, r"expand_dims.*\(2, 3\)"),
    "expand_dims_repeat": (lambda: sg.expand_dims(A, (0, 0)), ValueError, r"expand_dims: rep"),
    "diag_scalar": (lambda: sg.diag(x), ShapeError, r"diag.*\(\)"),
    "diagonal_vector": (lambda: sg.diagonal(v), ShapeError, r"diagonal.*\(3,\)"),
    "diagonal_rect": (lambda: sg.diagonal(A), ShapeError, r"diagonal.*\(2, 3\)"),
    "eye_size": (lambda: sg.eye(-1), ValueError, r"eye: dims -1"),
    "zeros_size": (lambda: sg.zeros((2, -1)), ValueError, r"zeros: shape -1"),
    "ones_none": (lambda: sg.ones(None), ValueError, r"ones"),
    "trace_rect": (lambda: sg.trace(A), ShapeError, r"trace: shape \(2, 3\) is not a square"),
    "trace_type": (lambda: sg.trace("a"), TypeError, r"^trace: operand 'a'"),
    "gram_shapes": (lambda: sg.gram(A, v), ShapeError, r"gram: shapes \(2, 3\) and \(3,\)"),
    "gram_type": (lambda: sg.gram(A, None), TypeError, r"^gram: operand None"),
    "take_range": (lambda: sg.take(A, 5), ValueError, r"take: index 5 .*\(2, 3\)"),
    "take_float": (lambda: sg.take(A, 1.5), ValueError, r"take: index 1.5"),
    "take_str": (lambda: sg.take(A, "a"), ValueError, r"take: index 'a'"),
    "take_vector_index": (lambda: sg.take(A, v), ShapeError, r"take.*\(3,\)"),
    "take_scalar": (lambda: sg.take(x, 0), ShapeError, r"take.*\(\)"),
    "floor_str": (lambda: sg.floor("a"), TypeError, r"^floor: operand"),
    "straight_through_shapes": (lambda: sg.straight_through(v, A.T), ShapeError,
                                r"straight_through.*\(3,\).*\(3, 2\)"),
    "seed": (lambda: sg.sample_bernoulli(v, -2), ValueError, r"sample_bernoulli: seed -2"),
    "grad_vector": (lambda: sg.grad(v, v), ValueError, r"grad: f must be a scalar.*\(3,\)"),
    "grad_f_type": (lambda: sg.grad(3.0, x), TypeError, r"grad: f must be an expression"),
    "grad_wrt_type": (lambda: sg.grad(x, "x"), TypeError, r"grad: expected expressions"),
    "grad_wrt_list": (lambda: sg.grad(x, [x, 3]), TypeError, r"grad: .*int"),
    "jacobian_wrt": (lambda: sg.jacobian(v, None), TypeError, r"jacobian: "),
    "hessian_vector": (lambda: sg.hessian(v, v), ValueError,
                       r"hessian: f must be a scalar.*\(3,\); sum it first.*sg\.take\(f, i\)"),
    "hessian_one_entry": (lambda: sg.hessian(sg.reshape(v, (1, 3)) @ sg.reshape(v, (3, 1)), v),
                          ValueError, r"hessian: .*\(1, 1\); it has one entry: "
                                      r"sg\.reshape\(f, \(\)\) is the scalar"),
    "simplify_type": (lambda: sg.simplify(3), TypeError, r"simplify: "),
    "to_sympy_type": (lambda: sg.to_sympy("x"), TypeError, r"to_sympy: "),
    "to_sympy_3d": (lambda: sg.to_sympy(sg.tensor("T3", (2, 2, 2)) * 2.0), NotImplementedError,
                    r"to_sympy: "),
    # a value of three axes has no sympy form: the op and the shapes are named
    # (sympy refusing a form itself is too: tests/test_sympy_tensors.py)
    "to_sympy_diag_of_matrix": (lambda: sg.to_sympy(sg.diag(A)), NotImplementedError,
                                r"to_sympy: no sympy form for diag of shape \(2, 3\) -> "
                                r"\(2, 3, 3\)"),
    "from_sympy_object": (lambda: sg.from_sympy(object()), ValueError, r"from_sympy: cannot"),
    "from_sympy_symbols": (lambda: sg.from_sympy("x + 1", {"x": 3}), TypeError,
                           r"from_sympy: symbols\['x'\]"),
    "from_sympy_symbols_type": (lambda: sg.from_sympy("x", [1]), TypeError, r"from_sympy: sym"),
    # the construct is named, not an operand of it (True, a tuple, ...)
    "from_sympy_piecewise": (lambda: sg.from_sympy("Piecewise((1, x > 0), (0, True))"),
                             ValueError, r"from_sympy: no symgrad form for Piecewise"),
    "from_sympy_matrix": (lambda: sg.from_sympy(sympy.Matrix([[1, 2]])), ValueError,
                          r"from_sympy: no symgrad form for ImmutableDenseMatrix"),
    # a symbol declared complex was read as a real scalar (a probe)
    "from_sympy_complex": (lambda: sg.from_sympy(sympy.Symbol("zc", complex=True) ** 2),
                           ValueError, r"^from_sympy: symbol 'zc' is declared complex, and "
                                       r"symgrad's variables are real"),
    "from_sympy_imaginary": (lambda: sg.from_sympy(1 + sympy.Symbol("zi", imaginary=True)),
                             ValueError, r"^from_sympy: symbol 'zi' is declared complex"),
    "from_sympy_infinite": (lambda: sg.from_sympy(sympy.Symbol("zf", infinite=True) ** 2),
                            ValueError, r"^from_sympy: symbol 'zf' is declared infinite"),
    "from_sympy_noncommutative": (
        lambda: sg.from_sympy(sympy.Symbol("zn", commutative=False) ** 2), ValueError,
        r"^from_sympy: symbol 'zn' is declared non-commutative"),
    "from_sympy_derivative": (lambda: sg.from_sympy("Derivative(f(x), x)"), ValueError,
                              r"from_sympy: no symgrad form for Derivative"),
    "evaluate_values": (lambda: sg.evaluate(x, [1.0]), TypeError, r"evaluate: values"),
    "evaluate_missing": (lambda: sg.evaluate(x * y, {x: 1.0}), ValueError,
                         r"evaluate: no value given for input y"),
    "evaluate_key": (lambda: sg.evaluate(x, {"x": 1.0}), ValueError, r"evaluate: the keys"),
    "evaluate_shape": (lambda: sg.evaluate(v * 2.0, {v: [1.0, 2.0]}), ShapeError,
                       r"input v: expected shape \(3,\), got \(2,\)"),
    "evaluate_type": (lambda: sg.evaluate(3, {}), TypeError, r"evaluate: "),
    "compile_missing": (lambda: sg.compile(x * y, [x]), ValueError, r"compile: input y"),
    "compile_not_var": (lambda: sg.compile(x, [x * 2.0]), ValueError, r"compile: inputs must"),
    "compile_twice": (lambda: sg.compile(x, [x, x]), ValueError, r"compile: input x is listed"),
    "compile_empty": (lambda: sg.compile([], [x]), ValueError, r"compile: no outputs"),
    "compile_inputs_type": (lambda: sg.compile(x, "x"), TypeError, r"compile: inputs"),
    "compile_same_name": (lambda: sg.compile(x + sg.vector("x", 2), [x, sg.vector("x", 2)]),
                          ValueError, r"two different variables are named x"),
    "latex_type": (lambda: sg.latex("x"), TypeError, r"latex: "),
    "count_nodes_type": (lambda: sg.count_nodes(1), TypeError, r"count_nodes: "),
    "variables_type": (lambda: sg.variables("x"), TypeError, r"variables: "),
    "to_networkx_type": (lambda: sg.to_networkx(1), TypeError, r"to_networkx: "),
    "topo_order_type": (lambda: sg.topo_order([1]), TypeError, r"topo_order: "),
    "named": (lambda: x.named("a-b"), ValueError,
              r"^named: name 'a-b' is not a valid Python identifier"),
    "bool": (lambda: bool(x), TypeError, r"truth value"),
    "float": (lambda: float(x * y), TypeError,
              r"cannot convert the symbolic expression x\*y \(shape \(\)\) to a float: .*"
              r"sg.evaluate"),
    "int": (lambda: int(v), TypeError, r"expression v \(shape \(3,\)\) to an int"),
    "complex": (lambda: complex(x), TypeError, r"expression x .* to a complex number"),
    "index": (lambda: [1, 2][x], TypeError, r"expression x .* to an index"),
    "math": (lambda: math.exp(x), TypeError, r"expression x .* to a float"),
    "save_type": (lambda: sg.save(3, "unused.json"), TypeError, r"save: "),
    "zero_reason_type": (lambda: sg.zero_reason(1), TypeError, r"zero_reason: "),
    "origin_type": (lambda: sg.origin(1), TypeError, r"^origin: expected an expression, got int"),
    "to_dot_type": (lambda: sg.to_dot(3), TypeError, r"^to_dot: "),
    "draw_type": (lambda: sg.draw("x"), TypeError, r"^draw: "),
    "explain_type": (lambda: sg.explain(3), TypeError, r"^explain: "),
    "index_notation_type": (lambda: sg.index_notation(3), TypeError, r"^index_notation: "),
    "index_notation_name": (lambda: sg.index_notation(sg.scalar("x"), 3), TypeError,
                            r"^index_notation: name must be a string, got int"),
    "explain_not_a_gradient": (lambda: sg.explain(sg.sin(sg.scalar("q_not_a_gradient"))),
                               ValueError, r"^explain: "),
    "check_grad_f": (lambda: sg.check_grad(3, x, {x: 1.0}), TypeError, r"^check_grad: f"),
    "check_grad_wrt": (lambda: sg.check_grad(x * x, 3, {x: 1.0}), TypeError, r"^check_grad: "),
    "check_grad_value": (lambda: sg.check_grad(x * x, x, {x: "a"}), ValueError,
                         r"^check_grad: the value of x"),
    "check_grad_missing": (lambda: sg.check_grad(x * y, x, {x: 1.0}), ValueError,
                           r"^check_grad: no value given for y"),
    "parse_type": (lambda: sg.parse(3), TypeError, r"^parse: "),
    "parse_syntax": (lambda: sg.parse("x +"), sg.ParseError, r"column 4"),
    "parse_attribute": (lambda: sg.parse("x.__class__"), sg.ParseError, r"attribute access"),
    "parse_function": (lambda: sg.parse("__import__('os')"), sg.ParseError,
                       r"unknown function '__import__'"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_arguments(name):
    call, err, pattern = BAD[name]
    with pytest.raises(err) as info:
        call()
    assert re.search(pattern, str(info.value)), str(info.value)


def test_every_public_function_is_checked():
    """Each public callable appears in the table above (a new one needs its bad-input test)."""
    import inspect

    src = inspect.getsource(inspect.getmodule(test_bad_arguments))
    callables = [n for n in sg.__all__ if callable(getattr(sg, n)) and not inspect.isclass(
        getattr(sg, n))]
    covered = {"neg", "div", "sqrt", "log", "sigmoid", "tanh", "relu", "softplus", "abs", "sin",
               "cos", "square", "minimum", "bce", "stop_gradient", "to_int", "step",
               "sample_categorical", "load", "power"}  # tested below or through the same code
    missing = [n for n in callables if f"sg.{n}(" not in src and n not in covered]
    assert not missing, missing


@pytest.mark.parametrize("fn", [sg.neg, sg.sqrt, sg.log, sg.sigmoid, sg.tanh, sg.relu,
                                sg.softplus, sg.abs, sg.sin, sg.cos, sg.square, sg.to_int,
                                sg.stop_gradient, sg.step])
def test_unary_functions_name_themselves(fn):
    with pytest.raises(TypeError, match=r"^\w+: operand None"):
        fn(None)


@pytest.mark.parametrize("fn", [sg.div, sg.minimum, sg.bce, sg.maximum, sg.power])
def test_binary_functions_name_themselves(fn):
    with pytest.raises(TypeError, match=r"^\w+: operand"):
        fn(x, "a")
    with pytest.raises(ShapeError, match=r"\(3,\) and \(2,\)|\(3,\).*\(2,\)"):
        fn(v, sg.vector("w2", 2))


def test_sample_categorical_and_load_checks():
    with pytest.raises(ShapeError, match=r"sample_categorical"):
        sg.sample_categorical(x, 1)
    with pytest.raises(FileNotFoundError):
        sg.load("/nonexistent/symgrad.json")


# ------------------------------------------------------------------ compiled functions
def test_compiled_function_checks_the_number_of_inputs():
    fn = sg.compile(x * y, [x, y])
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'y'"):
        fn(1.0)
    with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):
        fn(1.0, 2.0, 3.0)


@pytest.mark.parametrize("bad, err, pattern", [
    (None, TypeError, r"input v: expected numbers, got NoneType"),
    (["a", "b", "c"], TypeError, r"input v: expected numbers"),
    ([[1.0], [1.0, 2.0]], ValueError, r"input v: cannot be read as an array of numbers"),
    (np.ones(4), ShapeError, r"input v: expected shape \(3,\), got \(4,\)"),
    (np.ones((3, 1)), ShapeError, r"input v: expected shape \(3,\), got \(3, 1\)"),
])
def test_compiled_function_names_the_bad_tensor_input(bad, err, pattern):
    fn = sg.compile(sg.sum(sg.tanh(v)) * x, [x, v])
    with pytest.raises(err, match=pattern):
        fn(0.5, bad)


@pytest.mark.parametrize("bad, err, pattern", [
    (None, TypeError, r"input x: expected numbers, got NoneType"),
    ("1.0", TypeError, r"input x: expected numbers"),
])
def test_compiled_function_names_the_bad_scalar_input(bad, err, pattern):
    fn = sg.compile(sg.sum(sg.tanh(v)) * x, [x, v])
    with pytest.raises(err, match=pattern):
        fn(bad, np.ones(3))
    g = sg.compile(sg.tanh(x) * y, [x, y])  # a scalar graph
    with pytest.raises(err, match=pattern):
        g(bad, 1.0)


def test_scalar_graph_accepts_arrays_per_sample():
    g = sg.compile(sg.tanh(x) * y, [x, y])
    np.testing.assert_allclose(g(np.array([0.1, 0.2]), 2.0), 2.0 * np.tanh([0.1, 0.2]))


def test_a_python_bool_input_computes_in_full_precision():
    # numpy's tanh of a Python bool is float16 (0.7617): the scalar graph's array version
    # computes with 1.0 instead
    g = sg.compile(sg.tanh(x) * y, [x, y])
    got = g(True, 3.0)
    assert got == pytest.approx(3.0 * np.tanh(1.0), rel=1e-15)
    assert np.asarray(got).dtype == np.float64


def test_python_ints_compute_as_floats_and_a_too_big_one_is_named():
    g = sg.compile(sg.tanh(x) * y, [x, y])
    # numpy would make an object array of an int above 2**63, and fail in tanh
    assert g(10**300, 2.0) == pytest.approx(2.0, rel=1e-15)
    assert g(3, 2) == pytest.approx(2.0 * np.tanh(3.0), rel=1e-15)
    with pytest.raises(OverflowError, match=r"input x: an integer of 1329 bits is too large for "
                                            r"a float"):
        g(-10**400, 2.0)
    v = sg.vector("v", 3)
    h = sg.compile(sg.sum(v * x), [x, v])  # a tensor graph names it too
    with pytest.raises(OverflowError, match=r"input x: an integer of 1329 bits"):
        h(10**400, np.ones(3))


@pytest.mark.parametrize("seq", [[1.0, 2.0, 3.0], (1.0, 2.0, 3.0)])
def test_a_python_sequence_for_a_scalar_input_is_refused_by_name(seq):
    # numpy's functions would take it as an array and Python's operators would not: the
    # graph with vectors used to compute s * v elementwise, the scalar graph to fail in '*'
    s, v = sg.scalar("s"), sg.vector("v", 3)
    kind = type(seq).__name__
    for fn, args in ((sg.compile(s * v, [s, v]), (seq, np.ones(3))),
                     (sg.compile(sg.tanh(x) * y, [x, y]), (seq, 2.0)),
                     (sg.compile(x * sg.tanh(y), [x, y]), (seq, 2.0))):
        with pytest.raises(TypeError, match=rf"input (s|x): got a Python {kind}; pass a number "
                                            r"or a numpy array"):
            fn(*args)


def test_symbolic_sizes_are_checked_at_call_time():
    u = sg.vector("u", "n")
    fn = sg.compile(sg.sum(S @ u), [S, u])
    assert fn(np.eye(2), np.ones(2)) == 2.0
    with pytest.raises(ShapeError, match=r"input u: shape \(3,\) does not fit \(n,\): size n "
                                         r"is 2, fixed by input S"):
        fn(np.eye(2), np.ones(3))
    with pytest.raises(ShapeError, match=r"input S: expected shape \(n, n\), got \(2, 3\)|"
                                         r"input S: shape \(2, 3\) does not fit \(n, n\)"):
        fn(np.ones((2, 3)), np.ones(2))
    a, b = sg.vector("a", "p"), sg.vector("b", "q")
    h = sg.compile(sg.sum(a * b), [a, b])  # p == q is deferred to the call
    with pytest.raises(ShapeError, match=r"mul: shapes \(4,\) and \(3,\) do not fit"):
        h(np.ones(4), np.ones(3))


def test_runtime_index_errors_name_take():
    i = sg.scalar("i")
    fn = sg.compile(sg.take(A, i), [A, i])
    with pytest.raises(IndexError, match=r"take: index 7"):
        fn(np.ones((2, 3)), 7.0)


def test_from_sympy_reads_matrix_symbols_as_matrices_and_columns_as_vectors():
    Q = sg.from_sympy(sympy.MatrixSymbol("Q_ms", 2, 3) * sympy.MatrixSymbol("q_ms", 3, 1))
    assert Q.shape == (2,)  # a column MatrixSymbol is how to_sympy writes a vector
    assert set(sg.variables(Q)) == {sg.matrix("Q_ms", (2, 3)), sg.vector("q_ms", 3)}


def test_abs_of_an_expression():
    assert str(abs(x - 1.0)) == str(sg.abs(x - 1.0))
    assert sg.evaluate(abs(x), {x: -2.5}) == 2.5


def test_a_size_the_outputs_need_comes_from_an_input_they_do_not_use():
    # the gradient of mean(v) has v's shape (N,) but does not contain v: 1/N, broadcast
    v = sg.vector("v_size", "N")
    g = sg.grad(sg.mean(v), v)
    assert v not in set(sg.variables(g))
    np.testing.assert_allclose(sg.compile(g, [v])(np.ones(4)), [0.25] * 4)
    np.testing.assert_allclose(sg.evaluate(g, {v: np.ones(4)}), [0.25] * 4)
    with pytest.raises(ValueError, match=r"compile: size N is not fixed by the shape of any "
                                         r"input \(list an input whose shape has N"):
        sg.compile(g, [])
    with pytest.raises(ValueError, match=r"evaluate: size N is not fixed by the shape of any "
                                         r"value given"):
        sg.evaluate(sg.grad(sg.mean(v), v), {})


def test_evaluate_checks_a_given_value_that_names_a_size_of_the_outputs():
    # the gradient of dot(v, w) wrt v is w: given v of 3 and w of 4, evaluate skipped v and
    # returned a (4,) "gradient" for a (3,) variable, where compile refused the two sizes
    v, w = sg.vector("v_gv", "n"), sg.vector("w_gv", "n")
    g = sg.grad(sg.dot(v, w), v)
    assert sg.variables(g) == [w]
    msg = r"input v_gv: shape \(3,\) does not fit \(n,\): size n is 4, fixed by input w_gv"
    for e in (g, sg.simplify(g), sg.tanh(w)):
        with pytest.raises(sg.ShapeError, match=msg):
            sg.evaluate(e, {v: np.ones(3), w: np.ones(4)})
        with pytest.raises(sg.ShapeError):
            sg.compile(e, [v, w])(np.ones(3), np.ones(4))
    np.testing.assert_array_equal(sg.evaluate(g, {v: np.ones(4), w: np.arange(4.0)}),
                                  np.arange(4.0))
    # a value whose shape names no size of the outputs is still ignored, whatever it is
    u = sg.vector("u_gv", "k")
    assert sg.evaluate(sg.sum(w), {w: np.ones(4), u: np.ones(7)}) == 4.0


def test_reshape_with_a_symbolic_size_keeps_it_and_counts_the_numbers():
    X = sg.matrix("X_rs", ("N", 6))
    T = sg.reshape(X, ("N", 2, 3))
    assert T.shape == ("N", 2, 3)
    assert sg.reshape(T, ("N", 6)).shape == ("N", 6)
    f = sg.compile(sg.reshape(T, ("N", 3, 2)), [X])
    np.testing.assert_array_equal(f(np.arange(12.0).reshape(2, 6)),
                                  np.arange(12.0).reshape(2, 3, 2))
    with pytest.raises(sg.ShapeError, match=r"reshape: cannot reshape \(N, 6\) to \(N, 4\)"):
        sg.reshape(X, ("N", 4))
    with pytest.raises(sg.ShapeError, match=r"cannot reshape \(N, 6\) to \(6, M\)"):
        sg.reshape(X, (6, "M"))


def test_a_reshape_whose_one_named_size_the_numbers_fix_is_checked_when_called():
    # the contract: a shape error at build time only where every size is a number
    wm, b2 = sg.vector("wm_rs", "m"), sg.vector("b2_rs", 2)
    e = sg.reshape(wm + b2, (1, "m"))  # (2,) to (1, m): m must be 2
    assert e.shape == (1, "m")
    f = sg.compile(e, [wm, b2])
    np.testing.assert_array_equal(f(np.ones(2), np.arange(2.0)), [[1.0, 2.0]])
    with pytest.raises(sg.ShapeError, match=r"do not fit \(m = 3 from input wm_rs\)"):
        f(np.ones(3), np.arange(2.0))
    Y = sg.matrix("Y_rs", ("n", 3))
    g = sg.reshape(Y, (6,))  # n must be 2
    fg = sg.compile(g, [Y])
    np.testing.assert_array_equal(fg(np.arange(6.0).reshape(2, 3)), np.arange(6.0))
    with pytest.raises(sg.ShapeError, match=r"reshape: shapes \(3, 3\) and \(6,\) do not fit"):
        fg(np.ones((3, 3)))
    dY = sg.grad(sg.sum(g * sg.const(np.arange(6.0))), Y)
    np.testing.assert_array_equal(sg.compile(dY, [Y])(np.ones((2, 3))),
                                  np.arange(6.0).reshape(2, 3))
    # a size no input has, which the reshape fixes, is the number it must be
    q = sg.vector("q_rs", 2)
    np.testing.assert_array_equal(sg.evaluate(sg.reshape(q, (1, "m")), {q: np.arange(2.0)}),
                                  [[0.0, 1.0]])
    # Jacobians and Hessians reshape an identity of (n, n) to (n, 2, 3): n must be 6
    un = sg.vector("un_rs", "n")
    f = sg.sum(sg.reshape(un, (2, 3)) ** 3)
    H = sg.hessian(f, un)
    assert H.shape == ("n", "n")
    np.testing.assert_allclose(sg.evaluate(H, {un: np.arange(6.0)}), np.diag(6 * np.arange(6.0)))
    J = sg.jacobian(sg.reshape(un, (2, 3)), un)
    assert J.shape == (2, 3, "n")
    np.testing.assert_array_equal(sg.evaluate(J, {un: np.arange(6.0)}).reshape(6, 6), np.eye(6))
    with pytest.raises(sg.ShapeError, match="reshape"):
        sg.evaluate(H, {un: np.arange(5.0)})
    B = sg.matrix("B_rs", (2, 3))
    JB = sg.jacobian(sg.reshape(B, ("m",)), B)
    np.testing.assert_array_equal(sg.evaluate(JB, {B: np.ones((2, 3))}).reshape(6, 6), np.eye(6))
    # a reshape of such a reshape: each checks n = 6, where fused into one, (n, n) to (6, 6),
    # n appeared twice and the pair was refused
    Bn = sg.matrix("Bn_rs", ("n", "n"))
    D = sg.reshape(sg.reshape(Bn, ("n", 2, 3)), (6, 6))
    np.testing.assert_array_equal(sg.evaluate(D, {Bn: np.arange(36.0).reshape(6, 6)}),
                                  np.arange(36.0).reshape(6, 6))
    with pytest.raises(sg.ShapeError, match="reshape"):
        sg.evaluate(D, {Bn: np.ones((4, 4))})
    for i, (have, want) in enumerate((((2,), (1, 3)), (("n", "m"), (6,)), ((5,), (2, "k")))):
        with pytest.raises(sg.ShapeError, match="cannot reshape"):  # no size fits, or two names
            sg.reshape(sg.tensor(f"T_rs{i}", have), want)


def test_an_error_of_an_input_is_not_blamed_on_an_unused_one():
    """An unused input is ignored, whatever it holds; when another input then failed its
    check, the error named the unused one ('input s: expected numbers, got str')."""
    v, s, M = sg.vector("v_un", "n"), sg.scalar("s_un"), sg.matrix("M_un", ("m", "n"))
    f = sg.compile(sg.sum(v), [v, s, M])
    assert f(np.ones(3), "junk", np.ones((2, 3))) == 3.0
    with pytest.raises(TypeError, match="^input M_un: expected numbers, got NoneType"):
        f(np.ones(3), "junk", None)
    with pytest.raises(sg.ShapeError, match=r"^input M_un: expected shape \(m, n\), got \(7,\)"):
        f(np.ones(3), "junk", np.ones(7))


@pytest.mark.parametrize("value", [None, "abc", b"ab", np.str_("1"), np.datetime64("2020-01-01"),
                                   sg.scalar("x_pass")])
def test_an_input_that_is_not_numbers_is_refused_even_where_no_op_computes_with_it(value):
    # the gradient of x*y wrt x is y: the function returned y as given (None, 'abc'), and
    # x + y of two strings was their concatenation
    x, y = sg.scalars("x_pass y_pass")
    for fn, args in ((sg.compile(sg.grad(x * y, x), [x, y]), (1.0, value)),
                     (sg.compile(x + y, [x, y]), (value, value)),
                     (sg.compile([y, y * 1.0], [y]), (value,)),
                     (sg.compile(y * 2 + sg.sum(sg.vector("v_pass", 2)),
                                 [y, sg.vector("v_pass", 2)]), (value, np.ones(2)))):
        with pytest.raises(TypeError, match=r"^input \w+_pass: expected numbers"):
            fn(*args)
    with pytest.raises(TypeError, match=r"^input y_pass: expected numbers"):
        sg.evaluate(y, {y: value})


def test_an_object_array_is_read_as_numbers_or_refused():
    # * and @ computed with object arrays: an object array back, or one of expressions
    v = sg.vector("v_obj", 3)
    A = sg.matrix("A_obj", (2, 3))
    f = sg.compile(A @ v, [A, v])
    got = f(np.ones((2, 3)), np.array([2**70, 1, 1], dtype=object))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, np.full(2, 2.0**70 + 2))
    for bad in (np.array([sg.scalar("x_obj")] * 3, dtype=object), np.array(["1", 2, 3], object)):
        with pytest.raises(TypeError, match=r"^input v_obj: expected numbers, got an array of "
                                            r"dtype object"):
            f(np.ones((2, 3)), bad)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax", "dask"])
def test_a_list_holding_an_int_beyond_int64_is_read_as_floats(backend):
    # numpy makes it an object array, which was refused as "expected numbers, got list";
    # torch and jax could not parse it at all
    pytest.importorskip(backend)
    v = sg.vector("v_bl", 3)
    got = sg.compile(sg.sum(v), [v], backend=backend)([2**70, 1, 1])
    got = got.compute() if hasattr(got, "compute") else got
    assert float(got) == pytest.approx(2.0**70 + 2)
    if backend == "numpy":
        assert sg.evaluate(sg.sum(v), {v: [2**70, 1, 1]}) == pytest.approx(2.0**70 + 2)


def test_evaluate_names_itself_where_compile_refuses_the_graph():
    x, xv = sg.scalar("x_ev2"), sg.vector("x_ev2", 3)
    with pytest.raises(ValueError, match=r"^evaluate: two different variables are named x_ev2"):
        sg.evaluate(sg.sum(x * xv), {x: 2.0, xv: np.ones(3)})


def test_an_unused_input_that_fixes_a_size_is_read_and_converted_among_many_inputs():
    """An input the outputs do not use but whose symbolic size they need is read (a list taken
    as an array) in the many-inputs reader too, as with few inputs. Found by mutation testing."""
    s = [sg.scalar(f"s_un{i}") for i in range(8)]
    u = sg.vector("u_un", "n")  # listed and unused, but it fixes the n of ones("n")
    f = sg.compile([s[0] + s[1], sg.ones("n") * s[3]], [*s, u])
    a, b = f(*([1.0] * 8), [1.0, 2.0, 3.0])
    assert a == 2.0
    np.testing.assert_array_equal(b, [1.0, 1.0, 1.0])


def test_a_size_no_input_has_is_fixed_through_a_chain_of_checks():
    """0*(u + v) + w checks m == n and n == 3: with only w (3,) listed, the m the code needs
    is 3 through n, which no input has. Found by mutation testing."""
    u, v, w = sg.vector("u_ch", "n"), sg.vector("v_ch", "m"), sg.vector("w_ch", 3)
    e = (0 * (u + v) + w) * sg.sum(sg.ones("m"))
    np.testing.assert_array_equal(sg.compile(e, [w])(np.ones(3)), [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(sg.evaluate(e, {w: np.ones(3)}), [3.0, 3.0, 3.0])


def test_evaluate_with_and_then_without_an_extra_size_giver_computes_both_times():
    """The cache of evaluate is keyed on the inputs read too: grad(mean(v), v) uses no variable,
    so a (n,) entry w given once must not be asked for in a later call without it. Found by
    mutation testing."""
    v, w = sg.vector("v_ck", "n"), sg.vector("w_ck", "n")
    g = sg.grad(sg.mean(v), v)
    np.testing.assert_array_equal(sg.evaluate(g, {v: np.ones(4), w: np.ones(4)}), [0.25] * 4)
    np.testing.assert_array_equal(sg.evaluate(g, {v: np.ones(4)}), [0.25] * 4)


def test_a_size_that_disagrees_names_the_first_op_where_its_operands_meet():
    """n of X (m, n) and w (n,) meet first at X @ w, later at w * w2: a w of 4 entries where X
    gives n = 3 fails the matmul. Found by mutation testing."""
    X, w, w2 = sg.matrix("X_mt", ("m", "n")), sg.vector("w_mt", "n"), sg.vector("w2_mt", "n")
    f = sg.compile(sg.sum(X @ w) + sg.sum(w * w2), [X, w2, w])
    with pytest.raises(ShapeError, match=re.escape(
            "matmul: shapes do not fit: input w_mt: shape (4,) does not fit (n,): size n is 3, "
            "fixed by input X_mt of shape (2, 3)")):
        f(np.ones((2, 3)), np.ones(3), np.ones(4))
