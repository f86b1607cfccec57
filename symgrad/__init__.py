"""symgrad: gradients are graphs too.

Build an expression as a networkx DAG, derive its gradient, Jacobian or Hessian as another
graph, simplify it, print it the way a textbook writes it, and compile it to fast numpy code.
"""

from .autodiff import grad, hessian, jacobian, origin, zero_reason
from .backends import BackendNotInstalled
from .check import check_grad
from .compile import compile, evaluate  # noqa: A004
from .draw import Picture, draw, to_dot
from .errors import NonDifferentiableError, ShapeError
from .explain import Explanation, explain
from .expr import Expr
from .functions import (  # noqa: A004
                        abs,
                        argmax,
                        bce,
                        broadcast_to,
                        const,
                        cos,
                        diag,
                        diagonal,
                        div,
                        dot,
                        exp,
                        expand_dims,
                        eye,
                        floor,
                        gram,
                        log,
                        log_softmax,
                        logsumexp,
                        matmul,
                        matrix,
                        maximum,
                        mean,
                        minimum,
                        neg,
                        ones,
                        outer,
                        power,
                        relu,
                        reshape,
                        sample_bernoulli,
                        sample_categorical,
                        scalar,
                        scalars,
                        sigmoid,
                        sin,
                        softmax,
                        softplus,
                        sqrt,
                        square,
                        step,
                        stop_gradient,
                        straight_through,
                        sum,
                        take,
                        tanh,
                        tensor,
                        to_int,
                        trace,
                        transpose,
                        vector,
                        zeros,
)
from .graph import count_nodes, to_networkx, topo_order, variables
from .index_notation import index_notation
from .parse import ParseError, parse
from .printing import latex
from .serialize import load, save
from .simplify import simplify
from .sympy_bridge import from_sympy, to_sympy

__version__ = "0.1.0"

__all__ = [
    "Expr", "ShapeError", "NonDifferentiableError", "BackendNotInstalled",
    "scalar", "scalars", "vector", "matrix", "tensor", "const",
    "exp", "log", "sqrt", "sigmoid", "tanh", "relu", "softplus", "abs", "sin", "cos", "square",
    "maximum", "minimum", "neg", "power", "div", "bce", "stop_gradient",
    "step", "floor", "to_int", "sample_bernoulli", "sample_categorical", "straight_through",
    "sum", "mean", "logsumexp", "softmax", "log_softmax", "argmax",
    "matmul", "dot", "outer", "transpose", "reshape", "broadcast_to", "expand_dims", "diag",
    "diagonal", "eye", "zeros", "ones", "take", "trace", "gram",
    "grad", "jacobian", "hessian", "zero_reason", "origin",
    "simplify", "to_sympy", "from_sympy", "evaluate", "compile", "latex", "index_notation",
    "count_nodes", "topo_order", "to_networkx", "variables", "save", "load",
    "to_dot", "draw", "Picture", "explain", "Explanation", "check_grad", "parse", "ParseError",
]
