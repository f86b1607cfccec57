"""Array backends: the namespace that generated code calls as ``_xp``.

``sg.compile(outputs, inputs, backend=...)`` takes one of

- ``"numpy"`` (the default);
- ``"dask"``: dask arrays, evaluated lazily (``dask.compute`` runs the graph, on a
  ``dask.distributed`` cluster when a client is active);
- ``"cupy"``: cupy arrays on the current GPU;
- ``"torch"``, ``"torch:cuda"``, ``"torch:cuda:1"``, ...: torch tensors (the device is where
  the constants, identities and zeros the graph creates are put);
- ``"jax"``: jax arrays; the generated function is wrapped in ``jax.jit``, so XLA fuses it;
- ``"numba"``: numpy arrays, with the elementwise chains fused into numba kernels
  (see :mod:`symgrad.fused`);
- or an array-API namespace module (``array_api_strict``, ``jax.numpy``, one of
  ``array_api_compat``'s, or ``torch``/``cupy``/``dask.array`` themselves, which are mapped to
  their backend).

Each optional backend raises :class:`BackendNotInstalled` (an ``ImportError``) naming the extra to
install when its library is missing. Generated code only uses array-API names; libraries that
are not quite array-API namespaces go through ``array_api_compat`` plus a thin adapter (below)
that accepts Python numbers where the code may pass them and creates float64 arrays on the
backend's device.
"""

from __future__ import annotations

import math
import types
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable

import numpy as np

__all__ = ["BackendNotInstalled", "available", "namespace", "BACKENDS"]

BACKENDS = ("numpy", "dask", "cupy", "torch", "jax", "numba")

# the functions generated code may call with a Python number where an array is expected
_COERCE_FIRST = ("exp", "log", "log1p", "sqrt", "tanh", "sin", "cos", "abs", "floor", "sum", "max",
                 "argmax", "reshape", "broadcast_to", "isfinite", "squeeze", "zeros_like")
_COERCE_BOTH = ("maximum", "minimum")
_CREATE = ("eye", "zeros", "ones", "empty", "full")


class BackendNotInstalled(ImportError):
    """An optional backend's library is missing, or its device (a GPU) is not there; the
    message says what to install or use instead."""


def _require(module: str, extra: str):
    from .graph import import_module  # (with the collector on: see there)

    try:
        return import_module(module)
    except ImportError as exc:
        raise BackendNotInstalled(
            f"backend {extra!r} needs the package {module.split('.')[0]!r}, which is not "
            f"installed: pip install 'symgrad[{extra}]' ({exc})") from exc


def _compat(lib: str, extra: str):
    _require(lib, extra)
    return _require(f"array_api_compat.{lib}", extra)


def _no_negative_strides(a):
    """``a``, copied where it is a numpy array with negative strides (``v[::-1]``, ``np.flip``),
    which torch does not read."""
    if a.__class__ is np.ndarray and any(st < 0 for st in a.strides):
        return np.ascontiguousarray(a)
    return a


def _adapter(name: str, base, array_type: type, device=None) -> types.ModuleType:
    """A copy of namespace ``base`` whose functions accept Python numbers and create float64
    arrays on ``device`` by default."""
    ns = types.ModuleType(f"symgrad.backends.{name}")
    ns.__dict__.update({k: v for k, v in vars(base).items() if not k.startswith("__")})
    float64 = base.float64
    base_asarray = base.asarray

    def asarray(x, dtype=None, device=None, copy=None):
        if dtype is None and isinstance(x, (float, int)) and not isinstance(x, bool):
            dtype = float64
        x = _no_negative_strides(x)
        kw = {} if copy is None else {"copy": copy}
        return base_asarray(x, dtype=dtype, device=device or _device, **kw)

    _device = device

    def wrap1(f):
        def g(x, *args, **kw):
            if not isinstance(x, array_type):
                x = asarray(x)
            return f(x, *args, **kw)

        g.__name__ = f.__name__
        return g

    def wrap2(f):
        def g(x, y, *args, **kw):
            # one Python number beside an array is fine (and stays on the host); two are not.
            # A numpy array of samples is an array too: a number made a float64 array beside
            # float32 samples promoted them (dask's maximum of samples and a Python float)
            if not isinstance(x, (array_type, np.ndarray)) and \
                    not isinstance(y, (array_type, np.ndarray)):
                x = asarray(x)
            return f(x, y, *args, **kw)

        g.__name__ = f.__name__
        return g

    def creator(f):
        def g(*args, dtype=None, device=None, **kw):
            return f(*args, dtype=float64 if dtype is None else dtype,
                     device=device or _device, **kw)

        g.__name__ = f.__name__
        return g

    for f in _COERCE_FIRST:
        if hasattr(base, f):
            setattr(ns, f, wrap1(getattr(base, f)))
    for f in _COERCE_BOTH:
        setattr(ns, f, wrap2(getattr(base, f)))
    for f in _CREATE:
        if hasattr(base, f):
            setattr(ns, f, creator(getattr(base, f)))
    base_arange = base.arange
    ns.arange = lambda *a, device=None, **kw: base_arange(*a, device=device or _device, **kw)
    ns.asarray = asarray
    ns.symgrad_backend = name
    ns.symgrad_device = device
    return ns


def _dask_reshape(reshape):
    """dask reshapes only by merging or splitting whole chunks; other reshapes (rare in
    gradients) go through one chunk along the axes they touch."""

    def g(x, shape, **kw):
        try:
            return reshape(x, shape, **kw)
        except NotImplementedError:
            return reshape(x.rechunk(-1), shape, **kw)

    return g


_NAMESPACES: dict[str, Any] = {}


def _torch_promoter(torch, asarray):
    """``promote(values)``: the inputs with their tensors in numpy's common dtype of the
    tensors and numpy numbers among them (Python numbers are weak and do not count), integer
    data as float64. torch refuses a float32 @ float64 product, computes int data with
    Python floats in float32, and lets a float64 0-d tensor or numpy scalar leave float32
    data float32, where numpy promotes; numpy's rules are symgrad's (see running-at-scale).
    A numpy array left among them (samples for a scalar input of a graph of scalars) becomes
    a tensor on the backend's device."""
    to_np = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64,
             torch.bool: np.bool_, torch.uint8: np.uint8, torch.int8: np.int8,
             torch.int16: np.int16, torch.int32: np.int32, torch.int64: np.int64}
    to_torch = {np.dtype(v): k for k, v in to_np.items()}
    tensor = torch.Tensor

    floats = (torch.float32, torch.float64)

    def promote(values: tuple) -> tuple:
        one = None  # the common case first: tensors of one floating dtype, no numpy values
        for v in values:
            if isinstance(v, tensor):
                if one is None:
                    one = v.dtype
                elif v.dtype != one:
                    break
            elif isinstance(v, (np.generic, np.ndarray)):
                break
        else:
            if one is None or one in floats:
                return values
        dts = []
        for v in values:
            if isinstance(v, tensor):
                dt = to_np.get(v.dtype)
                if dt is None:  # bfloat16, complex: torch's own rules
                    return values
                dts.append(dt)
            elif isinstance(v, (np.generic, np.ndarray)):
                dts.append(v.dtype)
        if not dts:
            return values
        common = np.result_type(*dts)
        if common.kind in "biu":
            common = np.dtype(np.float64)
        target = to_torch.get(common)
        if target is None:
            return values
        return tuple(v.to(target) if isinstance(v, tensor) and v.dtype != target
                     else float(v) if isinstance(v, (np.generic, np.ndarray))
                     and v.dtype.kind in "biuf" and v.ndim == 0
                     else asarray(v, dtype=target) if isinstance(v, np.ndarray)
                     else v for v in values)

    return promote


def _known_sizes(asarray):
    """dask's asarray, refusing an array whose chunk sizes are unknown (after a boolean mask:
    shape (nan, 3)). A size bound to nan gave a mean of nan, without an error."""
    def g(x, *args, **kw):
        x = asarray(x, *args, **kw)
        if any(d != d for d in x.shape):
            raise ValueError(UNKNOWN_SIZES.format(shape=x.shape))
        return x

    return g


UNKNOWN_SIZES = ("a dask array of shape {shape} has chunks of unknown size: call its "
                 ".compute_chunk_sizes() first (symgrad checks and binds every size)")


def _make(name: str, device: str | None):
    if name == "numpy":
        return np
    if name == "dask":
        da = _require("dask.array", "dask")
        ns = _adapter("dask", _compat("dask.array", "dask"), da.Array)
        ns.reshape = _dask_reshape(ns.reshape)
        ns.asarray = _known_sizes(ns.asarray)
        # numpy samples for scalar inputs as dask arrays, as every other array is (a graph of
        # scalars returned numpy's arrays for x + y, and dask's for exp(x))
        asarray = ns.asarray
        ns.promote_inputs = lambda values: tuple(
            asarray(v) if v.__class__ is np.ndarray and v.ndim else v for v in values)
        return ns
    if name == "jax":
        return _require("jax.numpy", "jax")
    if name == "torch":
        torch = _require("torch", "torch")
        base = _compat("torch", "torch")
        if device and device.startswith("cuda") and not torch.cuda.is_available():
            # (else compile succeeded and every call blamed its input for torch's error)
            raise BackendNotInstalled(
                f"backend 'torch:{device}': torch is installed but sees no CUDA device "
                "(torch.cuda.is_available() is False); use backend='torch' for the CPU")
        try:
            where = torch.device(device) if device else None
        except RuntimeError as err:  # (torch's bare "Expected one of cpu, cuda, ...")
            raise ValueError(f"backend 'torch:{device}': not a torch device ({err})") from None
        ns = _adapter(f"torch:{device}" if device else "torch", base, torch.Tensor, where)
        ns.promote_inputs = _torch_promoter(torch, ns.asarray)
        return ns
    if name == "cupy":
        cupy = _require("cupy", "cupy")
        return _adapter("cupy", _compat("cupy", "cupy"), cupy.ndarray)
    raise ValueError(f"unknown backend {name!r}: expected one of {', '.join(BACKENDS)}, "
                     "or an array namespace module")


_MODULES = {"numpy": "numpy", "torch": "torch", "cupy": "cupy", "dask.array": "dask",
            "jax.numpy": "jax", "array_api_compat.torch": "torch",
            "array_api_compat.cupy": "cupy", "array_api_compat.dask.array": "dask",
            "array_api_compat.numpy": "numpy"}


def namespace(backend: Any) -> Any:
    """The array namespace generated code calls for ``backend`` (a name or a module)."""
    if backend is None:
        return np
    if not isinstance(backend, str):
        if getattr(backend, "symgrad_backend", None):  # already one of ours
            return backend
        name = _MODULES.get(getattr(backend, "__name__", ""))
        if name is None:
            return _generic(backend)
        backend = name
    key = backend.strip().lower()
    ns = _NAMESPACES.get(key)
    if ns is None:
        name, _, device = key.partition(":")
        if name == "numba" and device:
            raise ValueError(f"backend {backend!r}: only torch takes a device (torch:cuda); "
                             "numba's kernels run on the CPU: backend='numba'")
        if name == "numba":
            raise ValueError("backend 'numba' is a compiler, not an array namespace: use "
                             "sg.compile(..., backend='numba')")
        if device and name != "torch":
            raise ValueError(f"backend {backend!r}: only torch takes a device (torch:cuda)")
        ns = _NAMESPACES[key] = _make(name, device or None)
    return ns


def _generic(mod) -> Any:
    """An array-API namespace module given directly, adapted once (cached by identity)."""
    if not hasattr(mod, "asarray") or not hasattr(mod, "float64"):
        raise TypeError(f"backend {mod!r} is not an array namespace (it has no asarray or "
                        "float64)")
    key = f"module:{id(mod)}"
    ns = _NAMESPACES.get(key)
    if ns is None:
        array_type = type(mod.asarray(0.0))
        ns = _NAMESPACES[key] = _adapter(getattr(mod, "__name__", "namespace"), mod,
                                         array_type)
        ns.symgrad_module = mod  # keeps the module (and so its id) alive
        ns.promote_inputs = _numpy_numbers_as_arrays(ns.asarray)
    return ns


def _numpy_numbers_as_arrays(asarray):
    """``promote(values)``: numpy numbers (and 0-d arrays) given for scalar inputs as 0-d
    arrays of the namespace, which (array_api_strict) may refuse numpy's own types; numpy
    arrays of samples for them (a graph of scalars) as arrays of the namespace, in floats."""
    def promote(values: tuple) -> tuple:
        return tuple(asarray(v.item() if isinstance(v, np.bool_) else v, dtype=None)
                     if isinstance(v, np.generic) or (isinstance(v, np.ndarray) and v.ndim == 0)
                     else asarray(v if v.dtype.kind == "f" else v.astype(np.float64))
                     if isinstance(v, np.ndarray) else v for v in values)

    return promote


def einsum_contracts(xp) -> str | bool:
    """"einsum" where regions below a tensor identity are computed with ``xp``'s einsum
    (symgrad._contraction.Contraction.on): torch, jax, cupy; else False (op by op: dask's
    lazy graphs, namespaces without einsum)."""
    if getattr(xp, "symgrad_backend", None) == "dask" or getattr(xp, "einsum", None) is None:
        return False
    return "einsum"


def available(name: str) -> bool:
    """Whether the backend ``name`` can be used here: its library imports, and for a GPU
    backend ("cupy", "torch:cuda"), a GPU is there (torch without CUDA imports all the same)."""
    try:
        if name == "numba":
            _require("numba", "numba")
        else:
            namespace(name)
    except ImportError:
        return False
    key = name.strip().lower()
    if key.startswith("torch:cuda"):
        import torch

        return bool(torch.cuda.is_available())
    if key == "cupy":
        import cupy

        try:
            return cupy.cuda.runtime.getDeviceCount() > 0
        except Exception:  # no driver, no device: cupy's CUDARuntimeError and kin
            return False
    return True


def traced(xp) -> bool:
    """Whether code on ``xp`` may run under tracing (jax.jit), where scalar inputs are
    tracers rather than Python numbers: scalar nodes then stay in ``xp``."""
    return getattr(xp, "__name__", "").split(".")[0] == "jax"


NOT_NUMBERS = (type(None), str, bytes, dict, set)  # refused by name where an input is read


_REAL = (int, float, Fraction, Decimal, np.integer, np.floating)  # (bool is an int)


def not_numbers(a) -> bool:
    """Whether the input ``a`` is plainly no number nor array of numbers: a symbolic expression
    (whose float() raises), or an object with neither a number's nor an array's protocol (a
    date). Lists and tuples are read as arrays."""
    if hasattr(a, "op") and hasattr(a, "graph") and hasattr(a, "checks"):  # an Expr
        return True
    return not (isinstance(a, (list, tuple)) or hasattr(a, "__float__") or hasattr(a, "dtype")
                or hasattr(a, "__array__") or hasattr(a, "__array_interface__")
                or hasattr(a, "__dlpack__"))


def object_numbers(name: str, a):
    """An array of dtype object holding numbers (ints beyond int64, Fractions: what numpy could
    not type) as float64, as a scalar input's numbers are taken; holding anything else (strings,
    expressions), refused by name (``*`` and ``@`` computed with it: an array of expressions)."""
    odd = next((e for e in a.flat if not isinstance(e, _REAL)), _NONE_ODD)  # (astype parses "1")
    if odd is _NONE_ODD:
        try:
            return a.astype(np.float64)
        except OverflowError:
            raise OverflowError(f"input {name}: an array of dtype object holding a number too "
                                "large for a float (at most about 1.8e308)") from None
    raise TypeError(f"input {name}: expected numbers, got an array of dtype object holding "
                    f"{type(odd).__name__}")  # (None too: astype read it as nan)


_NONE_ODD = object()  # (no entry of an object array that is not a number)


def host_numbers(name: str, a):
    """``a`` with Python numbers as numpy reads them: a list or tuple as an array (ints beyond
    int64, which torch and jax could not parse, in an object array), and an object array of
    numbers as float64 (see object_numbers); anything else as it is."""
    if a.__class__ is list or a.__class__ is tuple:
        try:
            a = np.asarray(a)
        except (ValueError, TypeError):
            return a  # (ragged: the library reading it says so)
    if a.__class__ is np.ndarray and a.dtype.kind == "O":
        return object_numbers(name, a)
    return a


def masked_error(name: str) -> TypeError:
    """The error for a numpy masked array given as input ``name``, on every backend."""
    return TypeError(f"input {name}: a masked array, whose mask symgrad would ignore; pass the "
                     f"values to compute with (e.g. {name}.filled(0.0))")


def number_as_float(name: str, v) -> float:
    """The int, bool, Fraction or Decimal (or numpy integer) ``v`` given for input ``name`` as
    a float; an OverflowError naming the input where it is too large for one."""
    c = v.__class__
    if c is int:
        if not -_MAX_FLOAT_INT <= v <= _MAX_FLOAT_INT:
            raise OverflowError(f"input {name}: an integer of {v.bit_length()} bits is too "
                                "large for a float (at most about 1.8e308)")
        return float(v)
    try:
        f = float(v)
    except OverflowError:  # (a Fraction's; a Decimal's float is inf)
        f = math.inf
    if not math.isfinite(f) and (v.is_finite() if c is Decimal else c is Fraction):
        raise OverflowError(f"input {name}: {c.__name__} {v} is too large for a float (at "
                            "most about 1.8e308)")
    return f


_MAX_FLOAT_INT = int(np.finfo(np.float64).max)


def real_inputs(xp) -> Callable:
    """``read(name, value)``: an array input on ``xp`` (numpy, dask, jax, cupy, torch, an
    array-API namespace) as an array of ``xp``, its name in the error where it cannot be one;
    integer and bool data in ``xp``'s default float dtype, complex data refused.

    symgrad computes with real numbers, its constants are floats: unsigned data wrapped around
    under the negation inside sigmoid and softmax (uint8 [200, 3] had sum(u*u) = 73), int64
    data under a square (``sum(v*v)`` of [2**32, 3] was 9), a rewrite that drops a float
    operation kept integers integers (``v * 1.0`` is v), and complex data computed in complex
    numbers.
    """
    isdtype = getattr(xp, "isdtype", None)
    default = None

    def kind(dt) -> str:
        k = getattr(dt, "kind", None)  # numpy's dtypes (dask, jax, cupy)
        if k is not None:
            return "s" if k == "i" else k
        if isdtype is None:
            return "f"
        if isdtype(dt, "real floating"):
            return "f"
        if isdtype(dt, "complex floating"):
            return "c"
        if isdtype(dt, "bool"):
            return "b"
        if isdtype(dt, "unsigned integer"):
            return "u"
        return "s"  # a signed integer dtype

    asarray = xp.asarray

    def read(name: str, a):
        nonlocal default
        if a.__class__ in NOT_NUMBERS or not_numbers(a):
            raise TypeError(f"input {name}: expected numbers, got {type(a).__name__}")
        if isinstance(a, np.ma.MaskedArray):  # (dask, torch and array_api_strict dropped it)
            raise masked_error(name)
        a = host_numbers(name, a)  # (before another library reads them)
        given = a
        try:
            a = asarray(_no_negative_strides(a))
        except (TypeError, ValueError, RuntimeError) as err:  # (torch: RuntimeError)
            raise TypeError(f"input {name}: cannot be read as an array of numbers "
                            f"({type(a).__name__}: {err})") from None
        dt = getattr(a, "dtype", None)
        if dt is None:
            return a
        k = kind(dt)
        if k == "f":
            return a
        if k == "O":  # a list of ints beyond int64 (numpy's object array), or a library's
            if a.__class__ is np.ndarray:  # object array of what it was given (a date)
                return object_numbers(name, a)
            raise TypeError(f"input {name}: expected numbers, got {type(given).__name__}")
        if k == "c":
            raise TypeError(f"input {name}: an array of dtype {dt}; symgrad computes with real "
                            "numbers")
        if k in "bus":
            if default is None:
                default = xp.asarray(0.0).dtype  # float64, or jax's float32 without x64
            return xp.astype(a, default) if hasattr(xp, "astype") else a.astype(default)
        raise TypeError(f"input {name}: an array of dtype {dt}; symgrad computes with real "
                        "numbers (float or integer arrays)")

    return read


def convert_const(xp, value):
    """A constant of the graph as an array of ``xp`` (numbers stay Python numbers)."""
    if xp is np or not isinstance(value, np.ndarray):
        return value
    if not value.flags.writeable:  # (a graph's constants are read-only; torch warned, sharing it)
        value = value.copy()
    return xp.asarray(value)


def compiler(backend: Any) -> Callable | None:
    """A compile function of its own for ``backend`` ("numba", "jax"), or None."""
    if not isinstance(backend, str):
        return None
    name = backend.strip().lower()
    if name == "numba":
        from .fused import compile_fused

        return compile_fused
    if name == "jax":
        return _compile_jax
    return None


# numbers a scalar input takes as floats: jit made an int an integer tracer, and could not
# read a Fraction or a Decimal at all (bool is an int)
_INTEGRAL = (int, np.integer, np.bool_, Fraction, Decimal)


def _compile_jax(outputs, inputs) -> Callable:
    """The numpy-style generated code run on jax.numpy under ``jax.jit`` (XLA fuses it).

    In a graph with vectors or matrices, scalar inputs given arrays of samples go to a batched
    version of the graph, jitted in its turn (see symgrad._per_sample): under jit they are
    tracers, which the generated code cannot tell from a tensor's."""
    from ._per_sample import runner
    from .compile import compile as core_compile
    from .graph import as_list, topo_order

    jax = _require("jax", "jax")
    xp = namespace("jax")
    fn = core_compile(outputs, inputs, backend=xp)
    order = topo_order(fn.outputs)
    drawn = next((n.op.name for n in order if n.op.random), None)
    if drawn is not None:  # it failed inside jax's tracing, with jax's TracerArrayConversionError
        raise ValueError(f"compile: {drawn} draws from numpy's random generator, which code "
                         "jitted by jax cannot call; compile it with another backend "
                         "('numpy', 'numba', 'torch', 'dask')")
    if not any(n.op.name in ("take", "onehot", "to_int") for n in order):
        jitted = jax.jit(fn)
    else:
        # an index computed inside jit is checked there (jax would clamp it to a valid row,
        # a silently wrong answer), and so is an integer cast of nan or inf (jax gives some
        # integer): checkify carries the failure out, raised here
        from jax.experimental import checkify

        from . import runtime

        checked = jax.jit(checkify.checkify(fn))

        def jitted(*args):
            runtime.CHECKING.on = True  # read only while jax traces, inside this call
            try:
                err, out = checked(*args)
            finally:
                runtime.CHECKING.on = False
            msg = err.get()
            if msg is not None:
                for tail in (" (`check` failed", " (check failed at"):  # jax's suffixes
                    msg = msg.split(tail)[0]
                raise (ValueError if msg.startswith("to_int") else IndexError)(msg)
            return out

    ins = fn.inputs
    scalars = [i for i, v in enumerate(ins) if not v.shape]
    names = [v.attrs["vname"] for v in ins]
    in_graph = {id(n) for n in order}
    # (inputs the outputs do not use are ignored, as by sg.compile, unless a size is named)
    ignored = {i for i, v in enumerate(ins)
               if id(v) not in in_graph and all(isinstance(d, int) for d in v.shape)}

    def widened(i: int, a):
        """Integer and bool arrays in floats, numbers in object arrays as floats (as
        real_inputs reads them on the other backends: jit computed int64 data in integers)."""
        if i >= len(names) or i in ignored:
            return a
        if i in scalars and (a.__class__ is list or a.__class__ is tuple):
            raise TypeError(f"input {names[i]}: got a Python {a.__class__.__name__}; pass a "
                            "number or a numpy array (np.asarray)")  # (as on numpy)
        a = host_numbers(names[i], a)  # (jit could not parse ints beyond int64)
        k = getattr(getattr(a, "dtype", None), "kind", None)
        if k == "b" and a.__class__ is np.ndarray and not a.ndim and i in scalars:
            a = a[()]  # (a 0-d one as the numpy bool it holds: a weak float, as on numpy)
        if k not in ("b", "i", "u") or a.__class__ is np.bool_:  # (a numpy bool: a Python
            return a  # float below, as on numpy)
        return a.astype(np.float64 if a.__class__ is np.ndarray
                        else jax.dtypes.canonicalize_dtype(np.float64))

    def real(args: tuple) -> tuple:  # under jit a Python complex is a tracer like any other
        if any(getattr(getattr(a, "dtype", None), "kind", None) in ("O", "b", "i", "u")
               or a.__class__ is list or a.__class__ is tuple for a in args):
            args = tuple(widened(i, a) for i, a in enumerate(args))
        for i, a in enumerate(args[:len(names)]):
            if i in ignored:
                continue
            if isinstance(a, complex) and i in scalars:
                raise TypeError(f"input {names[i]}: a complex number ({a}); symgrad "
                                "computes with real numbers")
            kind = getattr(getattr(a, "dtype", None), "kind", "f")
            if kind == "c":  # (a 0-d one too)
                raise TypeError(f"input {names[i]}: an array of dtype {a.dtype}; symgrad "
                                "computes with real numbers")
            if a.__class__ in NOT_NUMBERS or not_numbers(a) or kind not in "biuf":  # (jit's
                # error names none)
                got = type(a).__name__ if kind in "biuf" else f"an array of dtype {a.dtype}"
                raise TypeError(f"input {names[i]}: expected numbers, got {got}")
            if isinstance(a, np.ma.MaskedArray):
                raise masked_error(names[i])
            mod = a.__class__.__module__
            if mod != "builtins" and not mod.startswith(("numpy", "jax")) and \
                    hasattr(a, "shape"):  # (a torch tensor: jit's own error named no input)
                raise TypeError(f"input {names[i]}: got a {mod.split('.')[0]} "
                                f"{a.__class__.__name__}; the jax backend takes jax or numpy "
                                "arrays (convert it, e.g. with np.asarray)")
        if any(isinstance(args[i], _INTEGRAL) for i in scalars if i < len(args)):
            # an int or bool for a scalar input is a float, as on every backend: under jit it
            # was an integer tracer (2**-1 gave -9223372036854775808, 2**62 * 4 gave 0)
            args = tuple(number_as_float(names[i], a)
                         if i in scalars and isinstance(a, _INTEGRAL) else a
                         for i, a in enumerate(args))
        if ignored:  # (an array still lends its dtype; what jit cannot take is given None)
            args = tuple(None if i in ignored and not hasattr(a, "dtype") and
                         not isinstance(a, (int, float)) else a for i, a in enumerate(args))
        return args

    if scalars and any(n.shape for n in order):
        used = {id(n) for n in order}
        per_sample = runner(ins, used, as_list(outputs)[1], lambda: compiled, "jax", xp)

        def compiled(*args):
            args = real(args)
            if len(args) == len(ins) and any(getattr(args[i], "ndim", 0) for i in scalars):
                return per_sample(*args)
            return jitted(*args)
    else:
        def compiled(*args):
            return jitted(*real(args))

    compiled.source = fn.source
    compiled.inputs = fn.inputs
    compiled.outputs = fn.outputs
    compiled.unjitted = fn
    return compiled
