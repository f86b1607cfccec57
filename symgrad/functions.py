"""The public constructors: leaves, arithmetic, functions, reductions, linear algebra.

Each function lifts plain numbers and arrays to constants, then builds a node of the op table
(:mod:`symgrad.ops`). The op's build-time rules may return a simpler equal node instead.
"""

from __future__ import annotations

import operator
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any, Union

import numpy as np

from .errors import ShapeError
from .expr import Expr, make
from .ops import REGISTRY as OPS
from .ops.leaves import CONST, DIMSIZE, EYE, VAR
from .shapes import as_shape, check_identifier, fmt_shape, normalize_axis, one_size

ExprLike = Union[Expr, float, int, np.ndarray]


# ------------------------------------------------------------------------ leaves
def _variable(name: str, shape, fn: str) -> Expr:
    """A variable; ``fn``, the function the user called, starts every error message."""
    check_identifier(name, f"{fn}: variable name")
    shape = as_shape(shape, f"{fn}: variable {name}: shape")
    return make(VAR, (), {"vname": name, "shape": shape})


def scalar(name: str) -> Expr:
    """A scalar variable, shape ``()``."""
    return _variable(name, (), "scalar")


_SEPARATORS = re.compile(r"[\s,]+")  # compiled at import, not in the first user's call


def scalars(names: str) -> tuple:
    """A tuple of scalar variables; names split on white space or commas."""
    if not isinstance(names, str):
        raise ValueError(f"scalars: expected a string of names, got {names!r}")
    parts = [p for p in _SEPARATORS.split(names.strip()) if p]
    if not parts:
        raise ValueError("scalars: no names given")
    return tuple(_variable(p, (), "scalars") for p in parts)


def vector(name: str, n) -> Expr:
    """A vector variable of shape ``(n,)``; ``n`` an int or a name for a symbolic size."""
    return _variable(name, (n,), "vector")


def matrix(name: str, shape) -> Expr:
    """A matrix variable of shape ``(m, n)``; sizes ints or names."""
    check_identifier(name, "matrix: variable name")
    shape = as_shape(shape, f"matrix: variable {name}: shape")
    if len(shape) != 2:
        raise ValueError(f"matrix: variable {name}: shape {shape!r} does not have two sizes")
    return _variable(name, shape, "matrix")


def tensor(name: str, shape) -> Expr:
    """A variable of any shape."""
    return _variable(name, shape, "tensor")


def const(value: Any) -> Expr:
    """A constant: a Python number or a numpy array (plain values in operations are lifted).
    An array is copied, read-only, in native byte order; integer and bool arrays as float64."""
    if isinstance(value, Expr):
        return value
    if isinstance(value, (bool, np.bool_)):
        value = float(value)
    if isinstance(value, (int, float, np.integer, np.floating, Fraction, Decimal)):
        try:
            v = float(value)
        except OverflowError:  # a Python int beyond float64's range
            raise OverflowError(f"const: an integer of {int(value).bit_length()} bits is too "
                                "large for a float (at most about 1.8e308)") from None
        return make(CONST, (), {"value": v})
    if isinstance(value, (list, tuple, np.ndarray)):
        if isinstance(value, np.ma.MaskedArray):
            raise ValueError("const: a masked array, whose mask symgrad would ignore; pass the "
                             "values to compute with (e.g. value.filled(0.0))")
        try:
            arr = np.array(value)
        except ValueError as err:  # ragged nested lists
            raise ValueError(f"const: cannot make a constant of {value!r:.60} ({err})") from None
        if arr.dtype == object and all(isinstance(e, (int, float, Fraction, Decimal, np.integer,
                                                     np.floating)) for e in arr.flat):
            try:  # numbers numpy could not type: ints beyond int64, Fractions
                arr = arr.astype(np.float64)
            except OverflowError:
                raise OverflowError(f"const: {value!r:.60} holds an integer too large for a "
                                    "float (at most about 1.8e308)") from None
        if arr.dtype == object or arr.dtype.kind not in "biuf":  # strings, complex, objects
            raise TypeError(f"const: cannot make a constant of {value!r:.60} (values of dtype "
                            f"{arr.dtype}; symgrad computes with real numbers)")
        if arr.dtype.kind in "biu":
            # in floats, as integer inputs are (see backends.real_inputs): int64 constants
            # wrapped around (sum(c**2) of [2**32, 3] was 9), jax without x64 cut them to
            # int32, torch refused a float vector @ an int64 one, numpy negates bool data
            # not at all and unsigned data with a wrap-around
            arr = arr.astype(np.float64)
        elif not arr.dtype.isnative:  # ('>f8' on this machine: its own node, results '>f8',
            arr = arr.astype(arr.dtype.newbyteorder("="))  # and '<f8' after a pickle)
        if arr.ndim == 0:
            return const(arr.item())
        arr.setflags(write=False)
        return make(CONST, (), {"value": arr})
    raise TypeError(f"const: expected a number or an array, got {type(value).__name__}")


def lift(v: Any, op: str | None = None) -> Expr:
    """``v`` as an expression (numbers and arrays become constants); ``op`` names the caller."""
    if isinstance(v, Expr):
        return v
    try:
        return const(v)
    except OverflowError as err:
        if op is None:
            raise
        raise OverflowError(f"{op}: operand {str(err).removeprefix('const: ')}") from None
    except (TypeError, ValueError) as err:
        if op is None:
            raise
        raise type(err)(f"{op}: operand {v!r:.60} is not an expression, a number or an array "
                        "of numbers") from None


def dimsize(d) -> Expr:
    """A size as a scalar value: a constant when known, a symbolic size node otherwise."""
    if isinstance(d, int):
        return const(float(d))
    return make(DIMSIZE, (), {"dim": d})


def size(shape) -> Expr:
    """The number of elements of ``shape`` as a scalar expression."""
    out: Expr = const(1.0)
    known = 1
    for d in shape:
        if isinstance(d, int):
            known *= d
        else:
            out = mul(out, dimsize(d))
    return mul(const(float(known)), out)


def eye(dims) -> Expr:
    """The identity tensor of shape ``dims + dims``."""
    dims = as_shape(dims, "eye: dims")
    return make(EYE, (), {"dims": dims})


def zeros(shape) -> Expr:
    """A constant zero of ``shape`` (sizes may be symbolic)."""
    return broadcast_to(const(0.0), as_shape(shape, "zeros: shape"))


def ones(shape) -> Expr:
    """A constant one of ``shape`` (sizes may be symbolic)."""
    return broadcast_to(const(1.0), as_shape(shape, "ones: shape"))


def value_of(e: Expr):
    """The value of a constant node (through broadcasts), else None.

    (The quick exits of the elementwise rules list the ops read here: keep them in sync.)
    """
    while e.op.name == "broadcast_to":
        e = e.args[0]
    if e.op is CONST:
        return e.attrs["value"]
    if e.op.name == "zero":  # a zero that records why (symgrad.ops.special)
        return 0.0
    return None


def is_const(e: Expr, v: float | None = None) -> bool:
    x = value_of(e)
    if x is None:
        return False
    if v is None:
        return True
    if isinstance(x, np.ndarray):
        return bool(np.all(x == v))
    return x == v


def is_scalar_const(e: Expr) -> bool:
    return e.op is CONST and not isinstance(e.attrs["value"], np.ndarray)


# ------------------------------------------------------------------------ elementwise
def _is_int(a) -> bool:
    return isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))


def _ew(name: str, *args: ExprLike) -> Expr:
    for a in args:
        if a.__class__ is not Expr:
            return make(OPS[name], tuple([a if isinstance(a, Expr) else lift(a, name)
                                          for a in args]))
    return make(OPS[name], args)  # operands that are expressions already: the common case


def _ew1(name: str, x: ExprLike) -> Expr:
    """One operand: ``_ew`` without packing the arguments (every derivative builds these)."""
    if x.__class__ is Expr:
        return make(OPS[name], (x,))
    return _ew(name, x)


def add(a: ExprLike, b: ExprLike) -> Expr:
    if a.__class__ is Expr and b.__class__ is Expr:  # the common case, without _ew's packing
        return make(OPS["add"], (a, b))
    return _ew("add", a, b)


def sub(a: ExprLike, b: ExprLike) -> Expr:
    if a.__class__ is Expr and b.__class__ is Expr:  # the common case, without _ew's packing
        return make(OPS["sub"], (a, b))
    return _ew("sub", a, b)


def mul(a: ExprLike, b: ExprLike) -> Expr:
    if a.__class__ is Expr and b.__class__ is Expr:  # the common case, without _ew's packing
        return make(OPS["mul"], (a, b))
    return _ew("mul", a, b)


def div(a: ExprLike, b: ExprLike) -> Expr:
    """Elementwise ``a / b`` (numpy broadcasting), as the ``/`` operator builds it."""
    if a.__class__ is Expr and b.__class__ is Expr:  # the common case, without _ew's packing
        return make(OPS["div"], (a, b))
    return _ew("div", a, b)


def power(a: ExprLike, b: ExprLike) -> Expr:
    """``a ** b`` (elementwise)."""
    return _ew("pow", a, b)


def neg(a: ExprLike) -> Expr:
    """Elementwise ``-a``, as the unary ``-`` operator builds it."""
    return _ew1("neg", a)


def exp(x: ExprLike) -> Expr:
    """Elementwise exponential."""
    return _ew1("exp", x)


def log(x: ExprLike) -> Expr:
    """Elementwise natural logarithm."""
    return _ew1("log", x)


def sqrt(x: ExprLike) -> Expr:
    """Elementwise square root."""
    return _ew1("sqrt", x)


def sigmoid(x: ExprLike) -> Expr:
    """The logistic function 1 / (1 + exp(-x)), accurate to the last digits where its value
    is a normal double (x above -708), 0 below -709.78, where exp(-x) overflows (the true value
    is a subnormal down to -745, then the correctly rounded 0), with no overflow warning."""
    return _ew1("sigmoid", x)


def tanh(x: ExprLike) -> Expr:
    """Elementwise hyperbolic tangent."""
    return _ew1("tanh", x)


def relu(x: ExprLike) -> Expr:
    """max(0, x); its derivative at 0 is 0."""
    return _ew1("relu", x)


def softplus(x: ExprLike) -> Expr:
    """log(1 + exp(x)), evaluated without overflow."""
    return _ew1("softplus", x)


def abs(x: ExprLike) -> Expr:  # noqa: A001  (sg.abs mirrors numpy)
    """Elementwise absolute value; its derivative at 0 is 0."""
    return _ew1("abs", x)


def sin(x: ExprLike) -> Expr:
    """Elementwise sine."""
    return _ew1("sin", x)


def cos(x: ExprLike) -> Expr:
    """Elementwise cosine."""
    return _ew1("cos", x)


def square(x: ExprLike) -> Expr:
    """Elementwise ``x**2``."""
    return power(x, 2.0)


def maximum(a: ExprLike, b: ExprLike) -> Expr:
    """Elementwise maximum; at ties the whole gradient goes to ``a``."""
    return _ew("maximum", a, b)


def minimum(a: ExprLike, b: ExprLike) -> Expr:
    """Elementwise minimum; at ties the whole gradient goes to ``a``."""
    return _ew("minimum", a, b)


def step(x: ExprLike) -> Expr:
    """1 where x > 0, else 0 (relu's derivative; its own derivative is zero)."""
    return _ew1("step", x)


def sigmoid_deriv(s: ExprLike) -> Expr:
    """s * (1 - s): the derivative of the sigmoid, given the sigmoid's value ``s``."""
    return _ew1("sigmoid_deriv", s)


def tanh_deriv(t: ExprLike) -> Expr:
    """1 - t**2: the derivative of tanh, given tanh's value ``t``."""
    return _ew1("tanh_deriv", t)


def bce(mu: ExprLike, y: ExprLike) -> Expr:
    """Binary cross-entropy ``-y*log(mu) - (1-y)*log(1-mu)``, elementwise.

    When ``mu`` is a sigmoid, it evaluates and differentiates in the stable form
    ``softplus(z) - y*z``, so that its gradient in ``z`` is ``sigmoid(z) - y`` for every finite z.
    """
    return _ew("bce", mu, y)


def stop_gradient(e: ExprLike) -> Expr:
    """The value of ``e``, differentiated as a constant (zero derivative)."""
    return make(OPS["stop_gradient"], (lift(e, "stop_gradient"),))


# ------------------------------------------------------------------------ not differentiable
def floor(x: ExprLike) -> Expr:
    """The largest integer <= x, elementwise (a float). Not differentiable."""
    return _ew1("floor", x)


def to_int(x: ExprLike) -> Expr:
    """x rounded toward zero, as integers (int64), elementwise. Not differentiable.

    A NaN or infinite value raises ValueError when the expression is evaluated.
    """
    return _ew1("to_int", x)


def _seed(op: str, seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) \
            or seed < 0:
        raise ValueError(f"{op}: seed {seed!r} is not an int >= 0")
    return int(seed)


def sample_bernoulli(p: ExprLike, seed: int) -> Expr:
    """1.0 with probability ``p``, else 0.0, elementwise. Not differentiable in ``p``.

    Each compiled function draws from its own numpy Generator seeded with ``seed``: its
    successive calls give a reproducible stream of samples. For a gradient estimate, use
    ``sg.straight_through(sample, p)``.
    """
    seed = _seed("sample_bernoulli", seed)
    return make(OPS["sample_bernoulli"], (lift(p, "sample_bernoulli"),), {"seed": seed})


def sample_categorical(logits: ExprLike, seed: int) -> Expr:
    """An index drawn with probabilities ``softmax(logits)`` along the last axis (int64).

    The result has ``logits.shape[:-1]``. Not differentiable in ``logits``; seeded like
    :func:`sample_bernoulli`.
    """
    seed = _seed("sample_categorical", seed)
    return make(OPS["sample_categorical"], (lift(logits, "sample_categorical"),),
                {"seed": seed})


def straight_through(hard: ExprLike, soft: ExprLike) -> Expr:
    """The value of ``hard`` with the derivative of ``soft`` (the straight-through estimator).

    ``hard`` counts as a constant for derivatives, so it may contain non-differentiable ops.
    """
    return make(OPS["straight_through"],
                (lift(hard, "straight_through"), lift(soft, "straight_through")))


# ------------------------------------------------------------------------ reductions
def _axis_attrs(op: str, e: Expr, axis, keepdims: bool = False) -> dict:
    axes = normalize_axis(op, axis, e.ndim, e.shape)
    if not isinstance(keepdims, (bool, np.bool_)):
        raise ValueError(f"{op}: keepdims {keepdims!r} is not a bool")
    return {"axis": axes, "keepdims": bool(keepdims)}


def sum(e: ExprLike, axis=None, keepdims: bool = False) -> Expr:  # noqa: A001
    """Sum over ``axis`` (None: all axes)."""
    e = lift(e, "sum")
    return make(OPS["sum"], (e,), _axis_attrs("sum", e, axis, keepdims))


def mean(e: ExprLike, axis=None, keepdims: bool = False) -> Expr:
    """Mean over ``axis`` (None: all axes): the sum divided by the (possibly symbolic) count."""
    e = lift(e, "mean")
    attrs = _axis_attrs("mean", e, axis, keepdims)
    count = size([e.shape[a] for a in attrs["axis"]])
    return div(sum(e, attrs["axis"], keepdims), count)


def logsumexp(e: ExprLike, axis=None, keepdims: bool = False) -> Expr:
    """log(sum(exp(e), axis)), evaluated without overflow (default: all axes)."""
    e = lift(e, "logsumexp")
    return make(OPS["logsumexp"], (e,), _axis_attrs("logsumexp", e, axis, keepdims))


def softmax(e: ExprLike, axis=-1) -> Expr:
    """exp(e) / sum(exp(e), axis), stable (default: the last axis)."""
    e = lift(e, "softmax")
    if e.ndim == 0:
        raise ShapeError(f"softmax: needs at least one axis, got shape {fmt_shape(e.shape)}")
    return make(OPS["softmax"], (e,), {"axis": normalize_axis("softmax", axis, e.ndim, e.shape)})


def log_softmax(e: ExprLike, axis=-1) -> Expr:
    """e - logsumexp(e, axis), stable (default: the last axis)."""
    e = lift(e, "log_softmax")
    if e.ndim == 0:
        raise ShapeError(f"log_softmax: needs at least one axis, got shape {fmt_shape(e.shape)}")
    return make(OPS["log_softmax"], (e,),
                {"axis": normalize_axis("log_softmax", axis, e.ndim, e.shape)})


def argmax(e: ExprLike, axis=None) -> Expr:
    """Index of the largest entry (integer valued; not differentiable). Default: flattened."""
    e = lift(e, "argmax")
    if axis is not None:
        axis = normalize_axis("argmax", axis, e.ndim, e.shape)
        if len(axis) != 1:
            raise ValueError("argmax: axis must be one axis or None")
        axis = axis[0]
    return make(OPS["argmax"], (e,), {"axis": axis})


# ------------------------------------------------------------------------ linear algebra
def matmul(a: ExprLike, b: ExprLike) -> Expr:
    """Matrix product with numpy semantics (vectors promoted, leading axes broadcast)."""
    return make(OPS["matmul"], (lift(a, "matmul"), lift(b, "matmul")))


def dot(a: ExprLike, b: ExprLike) -> Expr:
    """numpy's dot for vectors and matrices (the matrix product); scalars multiply."""
    a, b = lift(a, "dot"), lift(b, "dot")
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    if a.ndim > 2 or b.ndim > 2:
        raise ShapeError(f"dot: shapes {fmt_shape(a.shape)} and {fmt_shape(b.shape)}: "
                         "use sg.matmul for more than two axes")
    try:
        return matmul(a, b)
    except ShapeError as err:  # named as the user called it (the check is matmul's)
        msg = str(err)
        raise ShapeError("dot:" + msg[len("matmul:"):] if msg.startswith("matmul:")
                         else msg) from None


def outer(a: ExprLike, b: ExprLike) -> Expr:
    """The outer product a b^T of two vectors (shape (n, m)).

    Leading axes batch, broadcast against each other: a (3, 1) ``a`` is three vectors of
    length 1, and with a (4,) ``b`` gives shape (3, 1, 4), one outer product per row
    (``np.outer`` would flatten ``a``; ``np.outer`` of an expression refuses it).
    """
    a, b = lift(a, "outer"), lift(b, "outer")
    return make(OPS["outer"], (a, b))


def transpose(e: ExprLike, axes=None) -> Expr:
    """Axes permuted (default: reversed, like numpy's ``.T``)."""
    e = lift(e, "transpose")
    if axes is None:
        axes = tuple(reversed(range(e.ndim)))
    else:
        given = axes
        try:
            axes = tuple(axes)
        except TypeError:
            axes = None
        if axes is None or not all(_is_int(a) and -e.ndim <= a < e.ndim for a in axes) or \
                sorted(int(a) % e.ndim for a in axes) != list(range(e.ndim)):
            raise ValueError(f"transpose: {given!r} is not a permutation of the axes of shape "
                             f"{fmt_shape(e.shape)}")
        axes = tuple(int(a) % e.ndim for a in axes)
    return make(OPS["transpose"], (e,), {"axes": axes})


def reshape(e: ExprLike, shape) -> Expr:
    """The same entries in a new shape (sizes may be symbolic). One size may be -1, as in
    numpy: the size that keeps the number of entries (a number, or the one named size left).
    Where one named size on either side is what the numbers fix (``(2,)`` to ``(1, m)``,
    ``(n, 3)`` to ``(6,)``), it is checked when called."""
    e = lift(e, "reshape")
    shape = _fill_unknown_size(e.shape, shape)
    return make(OPS["reshape"], (e,), {"shape": as_shape(shape, "reshape: size")})


def fit_shape(e: Expr, shape) -> Expr:
    """``e`` in ``shape``, which differs from ``e.shape`` only in sizes checked equal at run
    time (see :class:`symgrad.ops.linalg.FitShape`); the reverse pass uses it."""
    return make(OPS["fit_shape"], (e,), {"shape": as_shape(shape, "fit_shape: size")})


def _minus_one(d) -> bool:
    """Whether the size ``d`` is -1 (an int of any kind: numpy's, sympy's, a 0-d array)."""
    if isinstance(d, (bool, np.bool_, str)):
        return False
    try:
        return operator.index(d) == -1
    except TypeError:
        return False


def _fill_unknown_size(have: tuple, shape):
    """``shape`` with its -1 replaced by the size that keeps ``have``'s number of entries."""
    dims = (shape,) if one_size(shape) else shape
    try:
        dims = list(dims)
    except TypeError:
        return shape  # as_shape says what is wrong with it
    unknown = [i for i, d in enumerate(dims) if _minus_one(d)]
    if not unknown:
        return shape
    if len(unknown) > 1:
        raise ValueError(f"reshape: only one size of {tuple(dims)} can be -1")
    known = as_shape([d for i, d in enumerate(dims) if i != unknown[0]], "reshape: size")
    names = [d for d in have if isinstance(d, str)]
    whole = 1
    for d in have:
        whole *= d if isinstance(d, int) else 1
    part = 1
    for d in known:
        if isinstance(d, int):
            part *= d
        elif d in names:
            names.remove(d)
        else:
            names = None
            break
    if names is None or part == 0 or whole % part:
        raise ShapeError(f"reshape: cannot reshape {fmt_shape(have)} to {tuple(dims)}")
    if names and (len(names) > 1 or whole != part):
        product = "*".join(names + ([str(whole // part)] if whole != part else []))
        raise ShapeError(f"reshape: cannot reshape {fmt_shape(have)} to {tuple(dims)}: the -1 "
                         f"would be {product}, and a size is a number or one name")
    dims[unknown[0]] = names[0] if names else whole // part
    return tuple(dims)


def broadcast_to(e: ExprLike, shape) -> Expr:
    """``e`` broadcast to ``shape`` (numpy rules)."""
    e = lift(e, "broadcast_to")
    return make(OPS["broadcast_to"], (e,), {"shape": as_shape(shape, "broadcast_to: size")})


def expand_dims(e: ExprLike, axes) -> Expr:
    """Insert axes of size 1 at the given positions of the result (negative counts from the end)."""
    e = lift(e, "expand_dims")
    try:
        axes = (axes,) if _is_int(axes) else tuple(axes)
    except TypeError:
        raise ValueError(f"expand_dims: axes {axes!r} is not an int or a tuple of ints") \
            from None
    nd = e.ndim + len(axes)
    if not all(_is_int(a) and -nd <= a < nd for a in axes):
        raise ValueError(f"expand_dims: axes {axes!r} are not ints in range for a result with "
                         f"{nd} axes (shape {fmt_shape(e.shape)})")
    pos = sorted(int(a) % nd for a in axes)
    if len(set(pos)) != len(pos):
        raise ValueError(f"expand_dims: repeated axis in {axes!r}")
    dims = list(e.shape)
    for p in pos:
        dims.insert(p, 1)
    return reshape(e, tuple(dims))


def diag(v: ExprLike) -> Expr:
    """The diagonal matrix with the vector ``v`` on its diagonal (leading axes batch)."""
    return make(OPS["diag"], (lift(v, "diag"),))


def diagonal(m: ExprLike) -> Expr:
    """The diagonal of the last two (square) axes."""
    return make(OPS["diagonal"], (lift(m, "diagonal"),))


def trace(m: ExprLike) -> Expr:
    """The trace of a square matrix (the sum of its diagonal)."""
    m = lift(m, "trace")
    if m.ndim != 2 or (isinstance(m.shape[0], int) and isinstance(m.shape[1], int)
                       and m.shape[0] != m.shape[1]):
        raise ShapeError(f"trace: shape {fmt_shape(m.shape)} is not a square matrix")
    return sum(diagonal(m))


def gram(X: ExprLike, d: ExprLike) -> Expr:
    """The weighted Gram matrix ``X^T diag(d) X`` of a matrix X (m, n) and a vector d (m,)."""
    return make(OPS["gram"], (lift(X, "gram"), lift(d, "gram")))


def take(M: ExprLike, i: ExprLike) -> Expr:
    """Row ``i`` of ``M`` (``i`` an int or an integer-valued scalar expression).

    Differentiable in ``M``; not in ``i``.
    """
    M = lift(M, "take")
    if isinstance(i, Expr) and is_scalar_const(i):  # sg.const(7.0), or 7 in sg.parse's text
        i = i.attrs["value"]
    if not isinstance(i, Expr):
        try:
            ok = _is_int(i) or (not isinstance(i, (bool, np.bool_)) and float(i).is_integer())
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"take: index {i!r:.40} is not an integer")
        n = M.shape[0] if M.ndim else None
        if isinstance(n, int) and not -n <= int(i) < n:
            raise ValueError(f"take: index {int(i)} is out of range for shape "
                             f"{fmt_shape(M.shape)}")
    i = lift(i, "take")
    return make(OPS["take"], (M, i))


def onehot(i: ExprLike, n, like: ExprLike | None = None) -> Expr:
    """A vector of length ``n`` with 1 at index ``i`` and 0 elsewhere; in ``like``'s floating
    dtype at run time when given (float64 otherwise)."""
    args = (lift(i, "onehot"),) if like is None else (lift(i, "onehot"), lift(like, "onehot"))
    return make(OPS["onehot"], args, {"n": as_shape((n,), "onehot: size")[0]})


def unbroadcast(ct: Expr, nb: int, shape) -> Expr:
    """Sum ``ct`` (``nb`` batch axes + a broadcast shape) down to ``nb`` batch axes + ``shape``."""
    if not nb and ct.shape == shape:
        return ct  # the common case: nothing was broadcast
    shape = tuple(shape)
    out = ct.shape[nb:]
    if out == shape:
        return ct
    lead = len(out) - len(shape)
    if lead > 0:
        ct = sum(ct, tuple(range(nb, nb + lead)))
    keep = tuple(nb + i for i, d in enumerate(shape) if d == 1 and ct.shape[nb + i] != 1)
    if keep:
        ct = sum(ct, keep, keepdims=True)
    return ct
