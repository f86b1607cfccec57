"""Code generation: a graph becomes straight-line Python source, exec'd once.

The generated function takes the inputs positionally, binds symbolic sizes from the inputs'
shapes (checking them, and naming the offending input), computes the nodes in topological order
against an array namespace (numpy unless told otherwise), and returns the outputs.

What the code generator does so that the result reads like careful handwritten code:

- A graph of scalars gets a Python ``math`` version, used when every input is a Python float
  (several times faster than numpy on scalars). Nodes used once are inlined into their user's
  expression, constants are literals. Other inputs (arrays, ints, numpy scalars) take the array
  version, compiled on first use, so scalar inputs given arrays broadcast per sample.
- Subgraphs of constants are evaluated once, at compile time, and passed to the code as
  objects; an array made of Python numbers alone (an identity, a broadcast number) only where
  no tensor input lends it a floating dtype at run time.
- numpy temporaries are freed after their last use, and dead ones are reused as the ``out=``
  buffer of a later elementwise op of the same shape (see :mod:`symgrad._buffers`).
- ``sum(a * b)`` of two vectors is one dot product.
- A graph with vectors or matrices whose scalar inputs are given arrays of samples is called
  once per sample (:mod:`symgrad._per_sample`).

The source holds no user text: variables are validated identifiers, and constants other than
finite floats are passed to the generated code as objects, never as their repr.
"""

from __future__ import annotations

import builtins
import math
import re
import threading
import types
from collections import OrderedDict
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from . import backends, runtime
from ._emit import (
    FREE,
    Gen,
    array_lines,
    fold_constants,
    math_lines,
    number_nodes,
    returned,
    scalar_math_nodes,
)
from ._per_sample import PerSample, refuse, runner, samples_shape
from .errors import ShapeError
from .expr import Expr, checks_of, unguard
from .graph import as_list, in_rows, no_gc, row_sizes, topo_order, walk
from .ops.leaves import VAR
from .ops.linalg import wide_products
from .ops.reduce import exp_pairs
from .rewrite import shared_softmax, stabilize
from .shapes import fmt_shape


def _fast_numpy():
    """numpy, with C-level forms of the few Python-level numpy functions ops call per node.

    ``np.sum`` goes through Python wrappers (2-3x the cost of the reduction itself on small
    arrays); ``np.add.reduce`` is the same reduction. Arrays that reach these are ndarrays
    (inputs pass ``asarray``, and nodes with axes are arrays), but other values fall back.

    A float32 or float64 sum over the leading axes of an array (a bias's gradient: the
    column sums of a batch) is a matrix-vector product with a vector of ones: BLAS does it 2
    to 6 times faster than numpy's reduction, to the same accuracy (numpy adds the rows of a
    column one after the other too). Not over the axes numpy sums along memory: there numpy
    adds pairwise, ten times more accurately in float32 than BLAS. See :func:`_blas_sum`.
    """
    ns = types.ModuleType("symgrad_numpy")
    ns.__dict__.update(np.__dict__)
    reduce, ndarray = np.add.reduce, np.ndarray

    def sum(x, axis=None, keepdims=False):  # noqa: A001
        if x.__class__ is ndarray and x.dtype.kind == "f":  # np.sum widens small ints
            if axis is None:
                return reduce(x, None, None, None, keepdims)
            if x.size >= _BLAS_SUM_MIN and x.ndim > 1 and axis.__class__ is tuple:
                r = _blas_sum(x, axis)
                if r is not None:
                    return r.reshape(_kept(x.shape, axis)) if keepdims else r
            return reduce(x, axis, None, None, keepdims)
        return np.sum(x, axis=axis, keepdims=keepdims)

    def reshape(x, shape):
        return x.reshape(shape) if x.__class__ is ndarray else np.reshape(x, shape)

    ns.sum, ns.reshape = sum, reshape
    return ns


_BLAS_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
_BLAS_SUM_MIN = 512  # entries; below, numpy's reduction costs less than the checks
_ONES: dict[tuple, np.ndarray] = {}


def _ones(n: int, dtype) -> np.ndarray:
    """A read-only vector of ``n`` ones, kept for the next call of the same size."""
    key = (n, dtype)
    o = _ONES.get(key)
    if o is None:
        if len(_ONES) >= 16:
            _ONES.clear()
        o = np.ones(n, dtype)
        o.flags.writeable = False
        _ONES[key] = o
    return o


# numpy adds a row of at most 128 entries in eight running sums, as BLAS does (float32 rows
# of 4 to 128 random entries: the same relative error, 3e-8 on average); longer rows it adds
# pairwise, which BLAS does not (1024 entries: 3.4e-8 against 5.4e-8)
_SHORT_ROWS = 128


def _blas_sum(x: np.ndarray, axes: tuple):
    """The sum of ``x`` over ``axes`` as a product with a vector of ones, where numpy would
    add along the summed axes one entry after the other (they are not the ones along memory):
    the leading axes of a C-ordered array, the trailing one of an F-ordered matrix; and
    short rows (the trailing axes of a C-ordered array, at most 128 entries each), where
    numpy's reduction is as accurate and pays its overhead per row. None elsewhere (numpy
    adds long rows pairwise, more accurately), for other dtypes than float32 and float64,
    and where a copy would be needed."""
    dt = x.dtype
    if dt not in _BLAS_DTYPES:
        return None
    nd, k, s = x.ndim, len(axes), x.shape
    if not 0 < k < nd:
        return None
    if x.flags.c_contiguous:
        if axes == tuple(range(k)):
            n = math.prod(s[:k])
            return (_ones(n, dt) @ x.reshape(n, -1)).reshape(s[k:])
        if axes == tuple(range(nd - k, nd)):
            n = math.prod(s[nd - k:])
            if n <= _SHORT_ROWS:  # as accurate as numpy there, and 3 to 6 times faster
                return (x.reshape(-1, n) @ _ones(n, dt)).reshape(s[:nd - k])
        return None
    if nd == 2 and x.flags.f_contiguous and axes == (1,):
        return x @ _ones(s[1], dt)
    return None


def _kept(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


_NP = _fast_numpy()


def _resolve_backend(backend):
    if backend is None or backend is np or (isinstance(backend, str) and backend == "numpy"):
        return np
    return backends.namespace(backend)


def _fail(msg_template: str, dims: dict) -> None:
    raise ShapeError(msg_template.format(**dims))


def _check_inputs(outs: list[Expr], inputs, what: str) -> tuple[list[Expr], list[Expr]]:
    """(the inputs, the outputs' topological order), after checking the inputs."""
    ins, order, _ = _check_inputs_walk(outs, inputs, what)
    return ins, order


def _check_inputs_walk(outs: list[Expr], inputs, what: str) -> tuple[list, list, dict]:
    """(the inputs, the outputs' topological order, their use counts), checked."""
    ins, _ = as_list(inputs, f"{what}: inputs")
    ins = [unguard(v) for v in ins]  # (a guarded variable is that variable: see ops.Guard)
    seen: dict[int, Expr] = {}
    for v in ins:
        if v.op.name != "var":
            raise ValueError(f"{what}: inputs must be variables, got {v}")
        if id(v) in seen:
            raise ValueError(f"{what}: input {v.attrs['vname']} is listed twice")
        seen[id(v)] = v
    order, uses = walk(outs)
    names: dict[str, Expr] = {}
    for n in order:
        if n.op is not VAR:
            continue
        nm = n.attrs["vname"]
        if nm in names and names[nm] is not n:
            raise ValueError(f"{what}: two different variables are named {nm} (shapes "
                             f"{fmt_shape(names[nm].shape)} and {fmt_shape(n.shape)})")
        names[nm] = n
        if id(n) not in seen:
            raise ValueError(f"{what}: input {nm} {fmt_shape(n.shape)} is missing")
    return ins, order, uses


def _input_checks(ins: list[Expr], gen: Gen, tensor_graph: bool, checks,
                  convert: bool = True, order: list[Expr] = (),
                  numpy_in: bool = False) -> tuple[list, dict]:
    """Lines that check (and convert) the inputs, and the sizes they bind. ``numpy_in``: the
    code computes with numpy, which takes arrays of odd dtypes (see _array_in) through
    _array_in."""
    lines: list[str] = []
    bound: dict[str, str] = {}
    first_param: dict[str, str] = {}
    meets: dict[str, str] | None = None  # made when a second input has a size (most have none)
    # inputs the outputs do not use are ignored, as the contract says, unless a size of theirs
    # is named (it may fix a size the outputs need)
    in_graph = {id(n) for n in order} if order else None
    for v in ins:
        if in_graph is not None and id(v) not in in_graph and _fixed(v):
            continue
        p = gen.params[id(v)]
        nm = v.attrs["vname"]
        if not v.shape:  # see _scalar_in
            arr = f" or getattr({p}, 'ndim', 0)" if tensor_graph else ""
            lines.append(f"if {p}.__class__ in _NONARRAY{arr}: {p} = _scalar_in({nm!r}, {p})")
            # a 0-d numpy array, or samples for a graph of scalars, of another dtype: widened
            # or refused (complex) on every backend (dask computed a complex 0-d one)
            lines.append(f"elif {p}.__class__ is _ndarray and ({p}.dtype not in _FINE or "
                         f"not {p}.ndim): {p} = _scalar_array_in({nm!r}, {p})")
            if numpy_in:  # a subclass (np.matrix: its * is a matrix product) as an ndarray
                lines.append(f"elif {p}.__class__ is not _float and {p}.__class__ is not "
                             f"_ndarray and _isinstance({p}, _ndarray): "
                             f"{p} = _scalar_array_in({nm!r}, {p})")
            if convert and not numpy_in:  # a 0-d array of the backend's (a complex tensor)
                lines.append(f"elif {p}.__class__ is not _float and {p}.__class__ is not "
                             f"_ndarray and hasattr({p}, 'dtype'): {p} = _real_in({nm!r}, {p})")
            # anything else that is no number (a date, an object): refused, even where the
            # output is the input itself
            lines.append(f"elif {p}.__class__ is not _float and not hasattr({p}, '__float__') "
                         f"and not hasattr({p}, 'dtype'): _scalar_in({nm!r}, {p})")
            continue
        decl = fmt_shape(v.shape)
        if convert and numpy_in:
            lines.append(f"if {p}.__class__ is not _ndarray or {p}.dtype is not _f64 and "
                         f"{p}.dtype not in _FINE: {p} = _array_in({nm!r}, {p})")
        elif convert:
            lines.append(f"{p} = _real_in({nm!r}, {p})")
        if all(isinstance(d, int) for d in v.shape):  # one comparison with a constant tuple
            lines.append(f"if {p}.shape != {tuple(v.shape)!r}: _bad_input({nm!r}, {p}.shape, "
                         f"{decl!r})")
            continue
        lines.append(f"_s = {p}.shape")
        lines.append(f"if len(_s) != {len(v.shape)}: _bad_input({nm!r}, _s, {decl!r})")
        for i, d in enumerate(v.shape):
            if isinstance(d, int):
                lines.append(f"if _s[{i}] != {d}: _bad_input({nm!r}, _s, {decl!r})")
            elif d in bound:
                if meets is None:
                    meets = _where_sizes_meet(order)
                lines.append(f"if _s[{i}] != {gen.dim(d)}: _bad_size({nm!r}, _s, {decl!r}, "
                             f"{d!r}, {gen.dim(d)}, {bound[d]!r}, {first_param[d]}.shape, "
                             f"{meets.get(d)!r})")
            else:
                first_param[d] = p
                bound[d] = nm
                lines.append(f"{gen.dim(d)} = _s[{i}]")
    seen = set()
    via = _through_checks(checks, bound)
    # the user's ops first: where sizes do not fit, the message names the op they wrote
    # (matmul of (4, 3) and (5,)), not a derivative's reshaping of a cotangent (see fit_shape)
    for c in sorted(checks, key=lambda c: c.op == "derivative"):
        if c in seen:
            continue
        seen.add(c)
        ca, cb = via.get(c.a, c.a), via.get(c.b, c.b)
        if ca == cb or any(isinstance(d, str) and d not in bound for d in (ca, cb)):
            # no input fixes this size, even through other checks, so no call can break the
            # check: a size left only in a part of the graph a rewrite dropped (0*u + v, u
            # not an input). A size the code needs is refused below (_unbound)
            continue
        a, b = gen.dim(ca), gen.dim(cb)
        dims = sorted({d for d in (c.a, c.b, *(d for s in c.shapes for d in s))
                       if isinstance(d, str) and d in bound})
        if len(c.shapes) == 1:  # two sizes of one operand (see shapes.same_dim)
            msg = f"{c.op}: shape {_fmt_template(c.shapes[0], bound)} is not square: its " \
                "last two sizes differ"
        else:
            shapes = " and ".join(_fmt_template(s, bound) for s in c.shapes[:2])
            msg = f"{c.op}: shapes {shapes} do not fit"
        # which symbolic sizes these are, and which input gave each
        if dims:
            msg += " (" + ", ".join(f"{d} = {{{d}}} from input {bound[d]}" for d in dims) + ")"
        bind = ", ".join(f"{d!r}: {gen.dim(d)}" for d in dims)
        lines.append(f"if {a} != {b}: _fail({msg!r}, {{{bind}}})")
    # a size no input has that the checks fix (reshape of (2, 3) to (m,): m = 6), for the code
    lines += [f"{gen.dim(d)} = {gen.dim(r)}" for d, r in via.items()]
    return lines, {**bound, **dict.fromkeys(via)}


def _through_checks(checks, bound) -> dict:
    """Each size no input fixes that the checks equate, through one another, to a size an
    input fixes or to a number: 0*(u + v) + w, with u of (n,), v of (m,) and w of (3,),
    checks n == 3 and m == n, so m must be 3 although no input has n."""
    via: dict = {}
    grew = True
    while grew:
        grew = False
        for c in checks:
            for p, q in ((c.a, c.b), (c.b, c.a)):
                if isinstance(p, str) and p not in bound and p not in via:
                    r = q if isinstance(q, int) or q in bound else via.get(q)
                    if r is not None:
                        via[p] = r
                        grew = True
    return via


def _unbound(dim: str) -> None:
    raise ValueError(f"compile: size {dim} is not fixed by the shape of any input (list an "
                     f"input whose shape has {dim}, even one the outputs do not use)")


def _class_checks_only(lines: list[str], used: list[Expr], gen: Gen) -> list[str]:
    """``lines`` with the dtype tests of the used array inputs dropped (their class tests
    kept): where every used array must share one float dtype (``_ip``), the others go to the
    plain version, whose own checks widen or refuse them."""
    full = {}
    for v in used:
        if v.shape:
            p = gen.params[id(v)]
            full[f"if {p}.__class__ is not _ndarray or {p}.dtype is not _f64 and "
                 f"{p}.dtype not in _FINE: "] = f"if {p}.__class__ is not _ndarray: "
    out = []
    for ln in lines:
        for old, new in full.items():
            if ln.startswith(old):
                ln = new + ln[len(old):]
                break
        out.append(ln)
    return out


def _same_dtype_line(ins: list[Expr], gen: Gen) -> str:
    """``_ip = ...``: whether every array input (and numpy scalar) has one floating dtype.

    Then every node computed from inputs alone has that dtype, so a dead temporary can hold
    a later result (Python numbers are weak scalars and do not count).
    """
    arrays = [gen.params[id(v)] for v in ins if v.shape]
    scalars = [gen.params[id(v)] for v in ins if not v.shape]
    if not arrays:
        return "_ip = False"
    if len(arrays) + len(scalars) > 8:
        return f"_ip = _uniform(({', '.join(arrays + scalars)},))"
    first = arrays[0]
    conds = [f"{first}.dtype.kind == 'f'"] + [f"{p}.dtype is {first}.dtype" for p in arrays[1:]]
    conds += [f"({p}.__class__ is _float or {p}.__class__ is int or "
              f"getattr({p}, 'dtype', None) is {first}.dtype)" for p in scalars]
    return "_ip = " + " and ".join(conds)


def _uniform(values: tuple) -> bool:
    """Whether the values that have a dtype (Python numbers do not count) share one float
    dtype (the first value is an array)."""
    dt = values[0].dtype
    if dt.kind != "f":
        return False
    for v in values:
        c = v.__class__
        if c is not float and c is not int and getattr(v, "dtype", None) is not dt:
            return False
    return True


def _fixed(v: Expr) -> bool:
    return all(isinstance(d, int) for d in v.shape)


def _reader(ins: list[Expr], tensor_graph: bool, xp, fname: str,
            used: set[int] | None = None) -> Callable:
    """``read(a)``: the inputs ``a`` (a tuple, in the order of ``ins``) as a list, arrays
    converted; the number of inputs, fixed shapes and scalars checked as the inline checks of a
    version with few inputs do (same errors). Inputs with symbolic sizes are checked inline.
    ``used``: the ids of the inputs the outputs use; the others, but for those with a named
    size, are ignored (as in _input_checks)."""
    n = len(ins)
    names = [v.attrs["vname"] for v in ins]
    read_ = [i for i, v in enumerate(ins) if used is None or id(v) in used or not _fixed(v)]
    arrays = [i for i in read_ if ins[i].shape]
    fixed = [(i, tuple(ins[i].shape), fmt_shape(ins[i].shape)) for i in arrays if _fixed(ins[i])]
    numbers = [i for i in read_ if not ins[i].shape]
    numpy = xp is np
    real_in = _real_in_for(xp)

    def read(a: tuple) -> list:
        if len(a) != n:
            _arity(fname, names, len(a))
        vals = list(a)
        for i in arrays:
            v = vals[i]
            if not numpy:
                vals[i] = real_in(names[i], v)
            elif v.__class__ is not np.ndarray or v.dtype not in _FINE:
                vals[i] = _array_in(names[i], v)
        for i in numbers:  # as the inline checks of _input_checks
            v = vals[i]
            if v.__class__ in _NONARRAY or (tensor_graph and getattr(v, "ndim", 0)):
                vals[i] = _scalar_in(names[i], v)
            elif v.__class__ is np.ndarray and (v.dtype not in _FINE or not v.ndim):
                vals[i] = _scalar_array_in(names[i], v)
            elif v.__class__ is not float and hasattr(v, "dtype"):
                if real_in is not None and v.__class__ is not np.ndarray:
                    vals[i] = real_in(names[i], v)  # (another library's 0-d array or samples)
            elif v.__class__ is not float and backends.not_numbers(v):
                _scalar_in(names[i], v)  # refused
        for i, want, decl in fixed:
            if vals[i].shape != want:
                _bad_input(names[i], vals[i].shape, decl)
        return vals

    return read


def _arity(fname: str, names: list[str], got: int) -> None:
    """Python's own error for a call with the wrong number of positional arguments."""
    n = len(names)
    if got > n:
        raise TypeError(f"{fname}() takes {n} positional arguments but {got} were given")
    missing = [repr(m) for m in names[got:]]
    listed = missing[0] if len(missing) == 1 else \
        ", ".join(missing[:-1]) + ("," if len(missing) > 2 else "") + " and " + missing[-1]
    s = "" if len(missing) == 1 else "s"
    raise TypeError(f"{fname}() missing {len(missing)} required positional argument{s}: {listed}")


def _uniform_picker(ins: list[Expr], used: list[Expr]) -> Callable:
    """``_uniform`` of the used array inputs, then the used scalars, from the list of values."""
    pos = {id(v): i for i, v in enumerate(ins)}
    idx = [pos[id(v)] for v in used if v.shape] + [pos[id(v)] for v in used if not v.shape]

    def uniform_in(vals: list) -> bool:
        return _uniform(tuple(vals[i] for i in idx))

    return uniform_in


def _fmt_template(shape, bound) -> str:
    """A shape for a message: each size an input fixes as ``{name}``, filled in at the call."""
    parts = ["{" + d + "}" if isinstance(d, str) and d in bound else str(d) for d in shape]
    if len(parts) == 1:
        return f"({parts[0]},)"
    return "(" + ", ".join(parts) + ")"


def _bad_input(name, got, decl):
    raise ShapeError(f"input {name}: expected shape {decl}, got {fmt_shape(tuple(got))}")


def _bad_size(name, got, decl, dim, value, first, first_shape=None, op=None):
    msg = (f"input {name}: shape {fmt_shape(tuple(got))} does not fit {decl}: size {dim} is "
           f"{value}, fixed by input {first}")
    if op is not None:  # the operation and both shapes, as the contract's ShapeError says
        msg = f"{op}: shapes do not fit: {msg} of shape {fmt_shape(tuple(first_shape))}"
    raise ShapeError(msg)


def _where_sizes_meet(order) -> dict[str, str]:
    """For each symbolic size, the first op whose operands both have it (``X @ w`` for the n of
    X (m, n) and w (n,)): the operation a disagreement on that size fails."""
    meets: dict[str, str] = {}
    for n in order:
        if len(n.args) < 2:
            continue
        seen: set = set()
        for a in n.args:
            mine = {d for d in a.shape if isinstance(d, str)}
            for d in mine & seen:
                meets.setdefault(d, n.op.name)
            seen |= mine
    return meets


def _diagnose_for(ins: list[Expr]):
    names = [v.attrs["vname"] for v in ins]
    scalar = [not v.shape for v in ins]

    def _diagnose(err: Exception, values: tuple) -> None:
        """Name the input that is not numbers, or the scalar inputs whose arrays of samples do
        not broadcast together, when the generated code fails on them."""
        if isinstance(err, PerSample):  # samples for a scalar input: the caller's to take
            return  # (numba's checks met it here, and refused an object array of numbers)
        # an input check's own error names its input: only that one is read again (an unused
        # input holding anything is allowed, and was blamed for another input's error)
        msg = str(err)
        named = msg[6:msg.index(":")] if msg.startswith("input ") and ":" in msg else None
        for name, v in zip(names, values):
            if named is not None and name != named:
                continue
            if hasattr(v, "compute_chunk_sizes") and any(d != d for d in v.shape):
                raise ValueError(f"input {name}: " + backends.UNKNOWN_SIZES.format(
                    shape=v.shape)) from None
            if hasattr(v, "dtype") and hasattr(v, "shape") and not isinstance(v, np.ndarray):
                continue  # another library's array (or a jax tracer): not numpy's to read
            try:
                dtype = np.asarray(v).dtype
            except (TypeError, ValueError) as e:
                raise ValueError(f"input {name}: cannot be read as an array of numbers ({e})") \
                    from err
            if dtype.kind not in "biufc":
                got = (f"an array of dtype {dtype}" if isinstance(v, np.ndarray)
                       else type(v).__name__)
                raise TypeError(f"input {name}: expected numbers, got {got}") from err
        if isinstance(err, ValueError) and "argmax of an empty sequence" in str(err):
            shapes = ", ".join(f"{n} of shape {tuple(v.shape)}" for n, v in zip(names, values)
                               if getattr(v, "ndim", 0))
            raise ValueError(f"argmax: an axis of size 0 has no largest entry (inputs: "
                             f"{shapes})") from err
        if not isinstance(err, ShapeError):  # (jax: TypeError, torch: RuntimeError)
            batched = [(n, v) for n, s, v in zip(names, scalar, values)
                       if s and getattr(v, "ndim", 0)]
            if len(batched) > 1:
                samples_shape([n for n, _ in batched], [v for _, v in batched])

    return _diagnose


# what a scalar input's check hands to _scalar_in: Python numbers that numpy would compute
# with in another dtype (bool: float16 in numpy's functions; int above 2**63: an object
# array), and sequences, which numpy's functions take as arrays but Python's operators do not
# (and numpy's integer and bool scalars, which numpy would compute with in their dtype)
# and values that are not numbers, which an output equal to the input (the gradient of x*y
# wrt x is y) or an op that takes them (str + str) returned or computed with
_NOT_NUMBERS = frozenset((*backends.NOT_NUMBERS, np.str_, np.bytes_, np.datetime64,
                          np.timedelta64, np.object_, np.void, Expr))
_NONARRAY = frozenset((bool, int, list, tuple, np.bool_, np.int8, np.int16, np.int32, np.int64,
                       np.uint8, np.uint16, np.uint32, np.uint64, np.longlong, np.ulonglong,
                       complex, np.complex64, np.complex128, np.clongdouble, Fraction, Decimal,
                       np.ma.MaskedArray, *_NOT_NUMBERS))

# the dtypes of arrays computed with as they are; arrays of other dtypes go through _array_in
# (as do other array-likes): integers are read as float64 (see backends.real_inputs)
_FINE = frozenset(np.dtype(t) for t in (np.float64, np.float32, np.float16, np.longdouble))
_F64 = np.dtype(np.float64)  # (numpy's native float64 dtype is one object: the quick test)


_numpy_real_in = backends.real_inputs(np)


def _real_in_for(xp) -> Callable | None:
    """What checks an array input's dtype on ``xp`` (on numpy: _array_in, inline)."""
    return None if xp is np else backends.real_inputs(xp)


def _array_in(name: str, v):
    """An array input that is not a numpy array of a float dtype, as one: ``backends.real_inputs``
    on numpy (integer and bool data as float64, complex refused), and a masked array refused,
    whose mask the code would drop."""
    if isinstance(v, np.ma.MaskedArray):
        raise backends.masked_error(name)
    return _numpy_real_in(name, v)


def _scalar_array_in(name: str, v):
    """A numpy array for a scalar input: a 0-d one as the numpy number it holds is taken (of
    integers a float64 scalar: ``x*y`` of two 0-d int64 arrays of 2**40 wrapped around to 0;
    of bools a float; of floats the numpy float), others as an array input (see
    _array_in)."""
    if not v.ndim and v.dtype.kind == "b":  # as np.bool_ is taken: a (weak) float
        return float(v)
    if not v.ndim and v.dtype.kind in "iu":
        return np.float64(v)
    if not v.ndim and v.dtype in _FINE:  # numpy's number: as a numpy scalar is taken (torch
        return v[()]  # made Python floats of a 0-d float32 array, float32 of np.float32)
    return _array_in(name, v)


def _scalar_array_in_for(xp) -> Callable:
    """_scalar_array_in on ``xp``: a numpy number it makes (of a 0-d array) goes on as one
    given as such does, into the library's array (torch made Python floats of a 0-d float32
    array, and float32 tensors of np.float32)."""
    real_in = _real_in_for(xp)
    if real_in is None:  # (numpy)
        return _scalar_array_in

    def read(name: str, v):
        r = _scalar_array_in(name, v)  # (of integers and bools: as their numpy scalars go)
        return real_in(name, r) if isinstance(r, np.generic) and v.dtype.kind == "f" else r

    return read


def _scalar_in(name: str, v):
    """A scalar input that is not a float or an array: an int or bool as a float; a list or
    tuple refused (one message, whichever op meets it first); in a graph with vectors or
    matrices, an array raises PerSample (the numpy code then calls once per sample, see
    symgrad._per_sample)."""
    c = v.__class__
    if isinstance(v, np.integer):  # numpy would compute in its integer dtype (and wrap):
        return np.float64(v)  # a strong float64, as numpy promotes an int64 with float32 data
    if c is np.bool_:
        return float(v)
    if c is bool or c is int:
        return backends.number_as_float(name, v)
    if c is list or c is tuple:
        raise TypeError(f"input {name}: got a Python {c.__name__}; pass a number or a numpy "
                        "array (np.asarray)")
    if c in _NOT_NUMBERS:  # (numba's driver read a used str as a float)
        what = "a symbolic expression (sg.evaluate and compiled functions take numbers; " \
            "to substitute, build the expression on it)" if c is Expr else c.__name__
        raise TypeError(f"input {name}: expected numbers, got {what}")
    if c is Fraction or c is Decimal:
        return backends.number_as_float(name, v)
    if isinstance(v, (complex, np.complexfloating)):
        raise TypeError(f"input {name}: a complex number ({v}); symgrad computes with real "
                        "numbers")
    if isinstance(v, np.ma.MaskedArray):
        return _array_in(name, v)  # refused
    if backends.not_numbers(v):  # (a date, an object)
        raise TypeError(f"input {name}: expected numbers, got {c.__name__}")
    refuse(name, v)


# ------------------------------------------------------------------ assembly
class _Plan:
    """Everything both versions of one compiled function share."""

    def __init__(self, outs, single, ins, order, uses, gen, xp, backend):
        self.outs, self.single, self.ins, self.order = outs, single, ins, order
        self.uses, self.gen, self.xp, self.backend = uses, gen, xp, backend
        self.out_ids = {id(o) for o in outs}
        self.folded = fold_constants(order, gen, xp)
        # a graph with arrays: only scalars computed from scalar inputs are Python numbers
        # (an input the outputs do not use does not count: a listed, unused vector made a
        # graph of scalars a tensor graph, whose jax code refused samples for its scalars)
        # (but a size the graph reads, or checks, is read off the inputs' shapes, used or not:
        # a Hessian that is 0 still refuses sizes that do not fit)
        used = {id(n) for n in order}
        self.tensor = any(v.shape for v in ins if id(v) in used) or \
            any(n.shape or n.op.name == "dimsize" or n.checks for n in order)
        if self.tensor:
            gen.numbers = number_nodes(order, self.folded)
        self.const_outs = {id(o) for o in outs if (o.op.name == "const" and o.ndim > 0) or
                           (id(o) in self.folded and o.ndim > 0)}
        self.params = ", ".join(gen.params[id(v)] for v in ins)
        self.extra: dict[str, Any] = {}  # globals the generated code needs besides _namespace's

    def ret(self, code: dict, numbers: bool = False) -> str:
        """The return statement; ``numbers``: the math version's, whose results are Python
        numbers, which nobody can write into (a repeated output, a symmetric Hessian's twin
        entries, needs no copy: 780 ``own`` calls doubled the W4 Hessian's call time)."""
        vals = returned(self.outs, code, self.const_outs,
                        not numbers and not backends.traced(self.xp), numpy=self.xp is np)
        return f"return {vals[0]}" if self.single else f"return ({', '.join(vals)},)"

    def array_source(self, name: str, variant: str = "main") -> str:
        if len(self.ins) > MANY_INPUTS:
            return self._array_source(name, variant, many=True)
        return self._array_source(name, variant, many=False)

    def _array_source(self, name: str, variant: str, many: bool) -> str:
        """``def name(inputs):`` an array version, with its input checks.

        The main version computes scalar-only nodes as Python numbers and reuses dead
        temporaries; it calls the plain version (no reuse, ``_lazy["plain"]``) when the inputs
        do not share one floating dtype, and the numpy version (numpy everywhere,
        ``_lazy["numpy"]``) when Python math raises (numpy returns inf or nan instead). Both
        are compiled when first needed.
        """
        order, gen = self.order, self.gen
        tensor = self.tensor
        checks = checks_of(self.outs)
        params, call, values = self.params, self.params, f"({self.params}{',' if self.ins else ''})"
        if many:  # name the inputs once: one call reads, converts and checks them (see _reader)
            params, call, values = "*_a", "*_a", "_a"
            self.extra["_read"] = _reader(self.ins, tensor, self.xp, "compiled",
                                          {id(n) for n in order})
            pre = ["_v = _read(_a)", f"{self.params}, = _v"]
            rest = [v for v in self.ins if v.shape and not _fixed(v)]  # symbolic sizes: below
            check_lines, bound = _input_checks(rest, gen, tensor, checks, convert=False,
                                               order=order)
            check_lines = pre + check_lines
        else:
            check_lines, bound = _input_checks(self.ins, gen, tensor, checks, order=order,
                                               numpy_in=self.xp is np)
        promote = getattr(self.xp, "promote_inputs", None)
        # torch, array-API modules (see symgrad.backends): the inputs the outputs use (an
        # unused float64 one made torch's results float64)
        in_graph = {id(n) for n in order}
        used_params = ", ".join(self.gen.params[id(v)] for v in self.ins if id(v) in in_graph)
        if promote is not None and used_params:
            self.extra["_promote"] = promote
            # a floating constant array counts as an input would (torch refused float32 data
            # @ a value a float64 constant made float64; numpy promotes): an empty array of
            # its dtype joins the inputs, and is dropped
            # (one of more than one entry: a one-entry array is weak, as a number is)
            wide = [n.attrs["value"].dtype for n in order if n.op.name == "const"
                    and isinstance(n.attrs["value"], np.ndarray) and n.attrs["value"].size > 1
                    and n.attrs["value"].dtype.kind == "f"]
            if wide:
                self.extra["_cdt"] = np.empty(0, np.result_type(*wide))
                check_lines.append(f"{used_params}, _ = _promote(({used_params}, _cdt))")
            else:
                check_lines.append(f"{used_params}, = _promote(({used_params},))")
        numpy = self.xp is np
        mathed = scalar_math_nodes(order, gen, self.folded) \
            if numpy and tensor and variant != "numpy" else set()
        # the other number nodes: numpy on the host, where another array library (or numpy's
        # own functions) would turn a Python number into a float64 array or numpy scalar
        hosted = gen.numbers - mathed if tensor and not backends.traced(self.xp) else set()
        if not tensor and not backends.traced(self.xp):
            # a graph of scalars given samples for some inputs: a node of Python numbers
            # alone is one too (np.tanh(0.3) is a strong float64 that promoted a float32
            # batch, and torch returned 0-d tensors beside Python floats); see runtime.Weak
            nums = number_nodes(order, self.folded)
            hosted = {id(n) for n in order if id(n) in nums and not n.op.leaf and
                      id(n) not in self.folded}
            gen.weak = True
        gen.uses_memo = False
        gen.wide = wide_products(order, self.out_ids) if numpy and tensor else set()
        lines, names, reused = array_lines(order, gen, self.uses, self.out_ids, self.folded,
                                           numpy and tensor and variant == "main", mathed,
                                           hosted, contract=tensor and (
                                               numpy or backends.einsum_contracts(self.xp)))
        if not tensor and not backends.traced(self.xp):
            check_lines = check_lines + _samples_agree_lines(self.ins, gen, order)
        elif not tensor and not numpy:  # jax.numpy, outside jit: numpy samples (and numbers)
            # as its arrays (x + y of numpy samples was a numpy array, exp(x) a jax one)
            check_lines = check_lines + [
                f"if {p}.__class__ is not _float: {p} = _asarray({p})"
                for p in dict.fromkeys(gen.params[id(v)] for v in self.ins
                                       if id(v) in in_graph)]
        if gen.uses_memo:
            check_lines = check_lines + ["_memo = {}"]
        if "_cdt" in self.extra and gen.like is not None:
            # the inputs now have the widest floating constant's dtype, or a wider one: a
            # narrower constant is widened to theirs (torch refused float64 data @ a float32
            # constant), as numpy promotes it
            text = "\n".join(lines + [str(v) for v in names.values()])
            for i, c in enumerate(gen.consts):
                if isinstance(c, np.ndarray) and c.dtype.kind == "f" and c.size > 1 and \
                        re.search(rf"\b_c{i}\b", text):
                    check_lines = check_lines + [
                        f"_c{i} = _rt.widened(_xp, globals()['_c{i}'], {gen.like})"]
        for d in gen.dims:  # a size the code needs (a shape, a mean's count, ...)
            if d not in bound:
                _unbound(d)
        if reused:
            used = [v for v in self.ins if id(v) in self.uses]
            if many:
                self.extra["_uniform_in"] = _uniform_picker(self.ins, used)
                dtype_line = "_ip = _uniform_in(_v)"
            else:
                dtype_line = _same_dtype_line(used, gen)
                if numpy:  # _ip sends every array of another dtype to the plain version,
                    check_lines = _class_checks_only(check_lines, used, gen)  # which reads it
            check_lines += [dtype_line, f"if not _ip: return _lazy['plain']({call})"]
        if mathed:  # (after _ip, which holds only where the arrays and numpy numbers the
            # outputs use share one dtype: no number is wider then, unless an unused input
            # lends the arrays symgrad makes its dtype)
            lends = gen.like is not None and all(gen.params[id(v)] != gen.like
                                                 for v in self.ins if id(v) in self.uses)
            if not reused or lends:
                check_lines = check_lines + strong_scalar_lines(self.ins, gen, in_graph,
                                                                f"_lazy['numpy']({call})")
        body = ["    try:"] + ["        " + ln for ln in check_lines + lines + [self.ret(names)]]
        if tensor and not backends.traced(self.xp) and any(not v.shape for v in self.ins):
            # first, being a ValueError: a scalar input got samples (symgrad._per_sample)
            body += ["    except _PerSample:",
                     f"        return _lazy['per_sample']({call})"]
        if mathed:  # Python math raised where numpy returns inf or nan
            body += ["    except (ValueError, ArithmeticError):",
                     f"        return _lazy['numpy']({call})"]
        # an input that is not numbers: say which (free unless raised, Python >= 3.11)
        caught = ["TypeError"] if mathed else ["TypeError", "ValueError"]
        if self.backend not in (None, "numpy"):
            caught.append("RuntimeError")  # (torch's errors of shapes that do not fit)
        caught = caught[0] if len(caught) == 1 else f"({', '.join(caught)})"
        body += [f"    except {caught} as _e:",
                 f"        _diagnose(_e, {values})", "        raise"]
        return f"def {name}({params}):\n" + "\n".join(body) + "\n"

    def math_source(self) -> str | None:
        """``def compiled(inputs):`` the math version, falling back to the array version."""
        if self.backend not in (None, "numpy"):
            return None
        if self.tensor:
            return None
        res = math_lines(self.order, self.gen, self.uses, self.folded)
        if res is None:
            return None
        lines, code = res
        body = lines + [self.ret(code, numbers=True)]
        if len(self.ins) > MANY_INPUTS:
            return self._many_math_source(body)
        names = [self.gen.params[id(v)] for v in self.ins if id(v) in self.uses]
        guard = " is ".join(["_float"] + [f"{p}.__class__" for p in names]) if names else None
        out = [f"def compiled({self.params}):"]
        ind = "    "
        if guard:
            out.append(f"{ind}if {guard}:")
            ind += "    "
        out.append(ind + "try:")
        out += [ind + "    " + ln for ln in body]
        out.append(ind + "except (ValueError, ArithmeticError):")
        out.append(ind + "    pass")
        out.append(f"    return _lazy['array']({self.params})")
        return "\n".join(out) + "\n"

    def _many_math_source(self, body: list[str]) -> str:
        """The math version of a function of many inputs, which names them once.

        CPython's compile costs about 1 µs per name or operator, so a guard that names every
        input (``_float is a.__class__ is b.__class__ ...``) would cost as much as the
        parameter list again. Instead the arguments arrive as one tuple, one C-level ``sum``
        checks them (its result is a Python float for Python floats and ints, and a numpy
        scalar or array as soon as one input is one), and one unpacking names them. Anything
        else (numpy values, arrays, objects, the wrong number of arguments) and anything the
        math functions refuse takes the array version, which checks and reports it.
        """
        out = ["def compiled(*_a):", "    try:",
               "        if _sum(_a, 0.0).__class__ is _float:  # all Python numbers",
               f"            {self.params}, = _a"]
        out += ["            " + ln for ln in body]
        out += ["    except (TypeError, ValueError, ArithmeticError):", "        pass",
                "    return _lazy['array'](*_a)"]
        return "\n".join(out) + "\n"


MANY_INPUTS = 8  # more inputs than this: their names are not repeated in the source


def _namespace(gen: Gen, xp, lazy: dict, ins: list[Expr]) -> dict:
    """The globals of the generated functions: helpers, the array namespace, the constants.

    Globals rather than a closure: no wrapper function to compile, and 3.11 specialises
    global loads as well as closure loads.
    """
    ns = {"_xp": _NP if xp is np else xp, "_m": math, "_rt": runtime, "_max": max, "_min": min,
          "_abs": abs, "_float": float, "_sum": sum, "_asarray": xp.asarray,
          "_bad_input": _bad_input, "_bad_size": _bad_size,
          "_NONARRAY": _NONARRAY, "_scalar_in": _scalar_in,
          "_ndarray": np.ndarray, "_FINE": _FINE, "_array_in": _array_in, "_f64": _F64,
          "_scalar_array_in": _scalar_array_in_for(xp), "_real_in": _real_in_for(xp),
          "_fail": _fail, "_lazy": lazy, "_PerSample": PerSample,
          "_samples_agree": _samples_agree,
          "_hx": _NP if xp is np else runtime.HostOr(xp),
          "_wk": runtime.Weak(_NP if xp is np else runtime.HostOr(xp)),
          "_uniform": _uniform, "_diagnose": _diagnose_for(ins), "_isinstance": isinstance}
    _add_consts(ns, gen, xp)
    return ns


def _samples_agree_lines(ins: list[Expr], gen: Gen, order: list[Expr]) -> list[str]:
    """For a graph of scalars: a check that the arrays of samples given for its inputs
    broadcast together, also where no output combines them (sin(s), sin(t) with s of 2
    samples and t of 3 gave outputs of 2 and 3 samples; a tensor graph refuses them)."""
    in_graph = {id(n) for n in order}
    ps = [gen.params[id(v)] for v in ins if id(v) in in_graph]
    ps = list(dict.fromkeys(ps))
    if len(ps) < 2:
        return []
    several = " + ".join(f"(getattr({p}, 'ndim', 0) > 0)" for p in ps)
    names = ", ".join(repr(v.attrs["vname"]) for v in ins if gen.params[id(v)] in ps)
    return [f"if {several} > 1: _samples_agree(({names},), ({', '.join(ps)},))"]


def _samples_agree(names: tuple, values: tuple) -> None:
    arrays = [(n, v) for n, v in zip(names, values) if getattr(v, "ndim", 0)]
    samples_shape([n for n, _ in arrays], [v for _, v in arrays])


def strong_scalar_lines(ins: list[Expr], gen: Gen, in_graph: set, call: str) -> list[str]:
    """Where a scalar input is a numpy number (strong: np.float64(0.5) * a float32 array is
    float64) of a wider dtype than an array input: the numpy version, whose functions of
    numbers keep it strong, since Python's math returns a weak float (sin(s) * v was float32
    where (s + 1) * v was float64). A Python float costs one test."""
    ps = list(dict.fromkeys(gen.params[id(v)] for v in ins if id(v) in in_graph and not v.shape))
    ts = list(dict.fromkeys(gen.params[id(v)] for v in ins if id(v) in in_graph and v.shape))
    if gen.like is not None and gen.like not in ts:  # an unused input lends arrays its dtype
        ts.append(gen.like)
    if not ps or not ts:
        return []
    strong = " or ".join(f"{p}.__class__ is not _float" for p in ps)
    return [f"if ({strong}) and _rt.scalar_widens(({', '.join(ps)},), ({', '.join(ts)},)): "
            f"return {call}"]


def _add_consts(ns: dict, gen: Gen, xp) -> None:
    for i, c in enumerate(gen.consts):
        if f"_c{i}" not in ns:
            ns[f"_c{i}"] = backends.convert_const(xp, c)


# the closure-style interface other code generators build on (symgrad.fused)
_FREE = FREE
_Gen = Gen


def _closure_params(gen: Gen) -> str:
    fixed = ["_xp", "_m", "_rt", "_max", "_min", "_abs", "_float", "_asarray", "_bad_input",
             "_bad_size", "_fail", "_diagnose", "_NONARRAY", "_scalar_in", "_ndarray", "_FINE",
             "_array_in", "_scalar_array_in", "_isinstance"]
    # (and _f64, numpy's float64 dtype: symgrad.fused passes its own)
    return ", ".join(fixed + [f"_c{i}" for i in range(len(gen.consts))])


def _closure_values(gen: Gen, xp, ins: list[Expr]) -> list:
    return [xp, math, runtime, max, min, abs, float, xp.asarray, _bad_input, _bad_size,
            _fail, _diagnose_for(ins), _NONARRAY, _scalar_in, np.ndarray, _FINE, _array_in,
            _scalar_array_in, isinstance] + \
        [backends.convert_const(xp, c) for c in gen.consts]


def _build(fn_source: str, ns: dict) -> Callable:
    """Compile one generated function into the namespace ``ns`` and return it."""
    name = fn_source[4:fn_source.index("(")]
    exec(builtins.compile(fn_source, "<symgrad>", "exec"), ns)  # noqa: S102  (our own generated code, no user text)
    return ns[name]


def compile(outputs, inputs, backend: Any = "numpy") -> Callable:  # noqa: A001
    """A callable computing ``outputs`` from ``inputs`` given positionally.

    Returns one array for one output and a tuple for a list (a tuple of tuples for a list of
    lists, as ``sg.hessian`` of a list gives; ``.outputs`` then lists them row by row).
    Each returned array is the caller's own (writing into it changes no input and no other
    result); a wide matrix product may come back Fortran-ordered (docs/performance.md).
    ``.source`` holds the generated Python code (for a graph of scalars, the ``math``
    version; the array version used for other inputs is added to it when it is first needed).
    ``backend``: "numpy" (default), "dask", "cupy", "torch" ("torch:cuda"), "jax" (jitted),
    "numba" (fused loops) or an array-API namespace module; see :mod:`symgrad.backends` and
    docs/running-at-scale.md.
    """
    sizes = row_sizes(outputs)
    if sizes is not None:  # (Hessian blocks: one flat function, its values handed back in rows)
        return _Rows(compile([e for r in outputs for e in r], inputs, backend), sizes)
    special = backends.compiler(backend)
    if special is not None:  # "numba", "jax": see symgrad.backends
        return special(outputs, inputs)
    with no_gc():
        return _compile(outputs, inputs, backend)


def _softmax_family(order: list[Expr]) -> list[Expr]:
    """The softmax, log_softmax and logsumexp nodes of ``order`` (see shared_softmax, _memo)."""
    return [n for n in order if n.op.name in _SOFTMAX_FAMILY]


_SOFTMAX_FAMILY = frozenset(("softmax", "log_softmax", "logsumexp"))


class _Rows:
    """A compiled function whose values come back in rows; its attributes (``source``, which
    grows when another version is compiled, ``inputs``, ``outputs``) are the flat one's."""

    def __init__(self, flat: Callable, sizes: list[int]):
        self._flat, self._sizes = flat, sizes

    def __call__(self, *args):
        return in_rows(self._flat(*args), self._sizes, tuple)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "_flat":  # (copy.copy makes one without _flat)
            raise AttributeError(name)
        return getattr(self._flat, name)


def _compile(outputs, inputs, backend) -> Callable:
    outs, single = as_list(outputs, "compile")
    if not outs:
        raise ValueError("compile: no outputs given")
    ins, order, uses = _check_inputs_walk(outs, inputs, "compile")
    xp = _resolve_backend(backend)
    new = stabilize(outs, order=order)
    if any(a is not b for a, b in zip(new, outs)):
        outs = new
        order, uses = walk(outs)
    soft = _softmax_family(order)  # (one scan: most graphs have none)
    if soft:
        new = shared_softmax(outs, soft)
        if any(a is not b for a, b in zip(new, outs)):
            outs = new
            order, uses = walk(outs)
            soft = _softmax_family(order)
    for o in outs:
        uses[id(o)] = uses.get(id(o), 0) + 1
    gen = Gen(ins)
    # the arrays symgrad creates (identities, broadcast numbers) take the floating dtype of the
    # first tensor input the outputs use: an unused one is ignored, as sg.evaluate ignores it
    in_graph = {id(n) for n in order}
    gen.like = next((gen.params[id(v)] for v in ins if v.shape and id(v) in in_graph), gen.like)
    gen.shared_exps = exp_pairs(soft) if soft else None  # (a logsumexp and its softmax: _memo)
    plan = _Plan(outs, single, ins, order, uses, gen, xp, backend)
    lazy: dict[str, Callable] = {}
    msrc = plan.math_source()
    if msrc is None:
        source = plan.array_source("compiled")
    else:
        source = msrc
        _later(lazy, "array", lambda: plan.array_source("_compiled_array"), gen, lambda: fn,
               plan.extra)
    _later(lazy, "plain", lambda: plan.array_source("_compiled_plain", "plain"), gen,
           lambda: fn, plan.extra)
    _later(lazy, "numpy", lambda: plan.array_source("_compiled_numpy", "numpy"), gen,
           lambda: fn, plan.extra)
    if plan.tensor and not backends.traced(xp):  # what `except _PerSample` calls
        lazy["per_sample"] = runner(ins, plan.uses, single, lambda: fn, backend, xp)
    ns = _namespace(gen, xp, lazy, ins)
    ns.update(plan.extra)
    fn = _build(source, ns)
    fn.source = source
    fn.inputs = list(ins)
    fn.outputs = list(outs)
    return fn


def _later(lazy: dict, key: str, make_source: Callable, gen: Gen, get_fn: Callable,
           extra: dict) -> None:
    """``lazy[key]``: a stand-in that compiles a version on its first call, then is replaced.

    ``extra``: the plan's globals for the generated code, which making the source may add to.
    """

    lock = threading.Lock()  # threads making the first call at once build it once

    def first_call(*args):
        with lock:
            if lazy[key] is first_call:
                fn = get_fn()
                with no_gc():
                    src = make_source()
                    ns = fn.__globals__
                    _add_consts(ns, gen, ns["_xp"])  # constants this version added
                    ns.update(extra)
                    lazy[key] = _build(src, ns)
                    fn.source = fn.source + "\n" + src
        return lazy[key](*args)

    lazy[key] = first_call


# ------------------------------------------------------------------ evaluate
def _size_givers(order: list[Expr], used: list[Expr], values: dict,
                 checks: tuple = ()) -> list[Expr]:
    """Variables of ``values`` the outputs do not use whose shapes name a size the outputs
    have (the gradient of ``mean(v)`` wrt ``v`` has ``v``'s shape but not ``v``), or a size
    their ``checks`` compare (``0*u + w`` is ``w``, guarded: u's size must be w's), where such
    a value is given: compile checks that they agree with the used ones, as it does for
    inputs of its own (the gradient of dot(v, w) wrt v is w, and given v of 3 and w of 4 it
    came out of shape (4,), not v's)."""
    sizes = {d for n in order for d in n.shape if isinstance(d, str)}
    sizes.update(n.attrs["dim"] for n in order if n.op.name == "dimsize")
    have = {d for v in used for d in v.shape}
    need = sizes - have
    need.difference_update(_through_checks(checks, have))  # fixed by a check (see there)
    checked = {d for c in checks for d in (c.a, c.b) if isinstance(d, str)} - have - need
    # every such value, not the first in the dict's order: compile checks that they agree
    # (the Hessian of sum(v*v) is 2 I, of no variable; given v of 3 and an unused w of the
    # same size n but 5, it came out (5, 5) or (3, 3) by the order of the dict)
    wanted = sizes | checked
    extra = [v for v in values if v.op.name == "var" and v not in used
             and wanted.intersection(v.shape)] if wanted else []
    for v in extra:
        need.difference_update(v.shape)
    if need:
        d = sorted(need)[0]
        raise ValueError(f"evaluate: size {d} is not fixed by the shape of any value given "
                         f"(give a value for a variable whose shape has {d})")
    return extra


def _dtype_lender(used: list[Expr], values: dict) -> list[Expr]:
    """A variable of ``values`` the outputs do not use, given a floating array of its own
    shape, when no used one is: the gradient of mean(v) wrt v does not use v, yet a float32
    v makes it float32 (as compile(g, [v]) does)."""
    if any(getattr(values[v], "dtype", None) is not None for v in used if v.shape):
        return []
    for v, val in values.items():
        if (v.shape and v not in used and isinstance(val, np.ndarray) and val.dtype.kind == "f"
                and _fixed(v) and val.shape == v.shape):
            return [v]
    return []


# sg.evaluate's compiled functions, the most recently used first out; a function keeps its
# graph alive (so the ids in its key stay valid), and so the constants in it
_CACHE: OrderedDict[tuple, tuple] = OrderedDict()
_CACHE_SIZE = 64
_CACHE_LOCK = threading.Lock()  # (a lookup raced another thread's eviction: KeyError)
_CACHE_MAX_CONST_BYTES = 1 << 20  # a graph holding more constant data is not kept


def _to_python(v):
    """A scalar result as a Python float, as the contract says (an integer one too: argmax,
    to_int; ``int(...)`` of it indexes)."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return float(v)
    if isinstance(v, (np.floating, np.integer)):
        return float(v)
    if v.__class__ in (int, bool, Fraction):  # Python numbers through the math version of
        try:  # many inputs (see _many_math_source)
            return float(v)
        except OverflowError:  # an exact int beyond floats: what float arithmetic gives
            return float("inf") if v > 0 else float("-inf")
    return v


def _const_bytes(order: list[Expr]) -> int:
    """How many bytes the constant arrays of a graph hold."""
    return sum(n.attrs["value"].nbytes for n in order
               if n.op.name == "const" and isinstance(n.attrs["value"], np.ndarray))


def evaluate(exprs, values: dict):
    """The value of an expression (a float or an array), or a list of values for a list (a
    list of lists, as ``sg.hessian`` of a list gives, a list of lists of values).

    ``values`` maps each variable the expressions use to a number or an array; extra entries
    are ignored.
    """
    sizes = row_sizes(exprs)
    if sizes is not None:
        return in_rows(evaluate([e for r in exprs for e in r], values), sizes)
    outs, single = as_list(exprs, "evaluate")
    if not isinstance(values, dict):
        raise TypeError("evaluate: values must be a dict from variables to numbers or arrays")
    if not outs:
        return []
    if any(isinstance(k, Expr) and k.op.name == "guard" for k in values):
        values = {unguard(k): v for k, v in values.items()}  # a guarded variable: the variable
    for k in values:
        if not isinstance(k, Expr) or k.op.name != "var":
            raise ValueError(f"evaluate: the keys of values must be variables, got {k!r}")
    order = topo_order(outs)
    used = [n for n in order if n.op.name == "var"]
    for v in used:
        if v not in values:
            raise ValueError(f"evaluate: no value given for input {v.attrs['vname']} "
                             f"{fmt_shape(v.shape)}")
    used += _size_givers(order, used, values, checks_of(outs))
    used += _dtype_lender(used, values)
    key = tuple(id(o) for o in outs) + (None,) + tuple(id(v) for v in used)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
    if hit is None:
        try:
            fn = compile(outs, used)
        except ValueError as err:  # (its own: two variables named x, of two shapes)
            msg = str(err)
            if not msg.startswith("compile: ") or isinstance(err, ShapeError):
                raise
            raise ValueError("evaluate: " + msg.removeprefix("compile: ")) from None
        # a graph that samples gets a fresh compile (fresh generators) each time: its value
        # does not depend on what the cache holds. Nor is a graph of big constants kept: a
        # minibatch lifted to a constant at each step held 64 minibatches
        if not any(n.op.random for n in order) and _const_bytes(order) <= _CACHE_MAX_CONST_BYTES:
            with _CACHE_LOCK:
                _CACHE[key] = (outs, used, fn)  # the graphs stay alive, so the ids stay valid
                if len(_CACHE) > _CACHE_SIZE:
                    _CACHE.popitem(last=False)
    else:
        fn = hit[2]
    res = fn(*[values[v] for v in used])
    if single:
        return _to_python(res[0])
    return [_to_python(r) for r in res]
