"""Per-sample calls of a compiled graph with vectors or matrices.

A graph of scalars takes arrays for its scalar inputs and computes per sample by numpy's
broadcasting alone. A graph with vectors or matrices cannot: its tensors already have axes,
which a per-sample array would be broadcast against. There, a scalar input given an array
raises :class:`PerSample` inside the generated code; the code of every array backend catches
it and hands the call to :func:`runner`'s function. Each output gets the samples' shape in front
of its own.

That function computes all samples at once where it can: :func:`batched_graph` rebuilds the
graph with one leading axis of samples on every node that depends on a scalar given samples
(each op's ``batch`` rule says how), and that graph is compiled once per set of such inputs.
Nodes that do not depend on them are computed once per call, not once per sample. Where an op
has no batch rule (``argmax`` over all axes; ``take`` with an index given samples, and the
one-hot vector of its gradient) or draws random numbers, it calls the compiled function
once per sample and stacks the results.
"""

from __future__ import annotations

import math
import threading
from typing import Callable

import numpy as np

from . import runtime
from .backends import traced
from .errors import ShapeError
from .expr import Expr
from .graph import topo_order
from .shapes import fmt_shape

SAMPLES = "_samples"  # the size of the samples' axis in a batched graph
CHUNK = 1 << 22  # entries of the largest batched node computed at once (32 MiB of float64)


class PerSample(ShapeError):
    """A scalar input of a graph with vectors or matrices was given an array.

    Every backend's compiled function catches it and computes the samples (the array
    backends' generated code, the numba driver's wrapper; jax's compiled function looks for
    samples before its jitted call). Only code traced by jax, where inputs are tracers, lets
    it through, as the ShapeError its message describes.
    """


def refuse(name: str, value) -> None:
    """Raise :class:`PerSample` for the scalar input ``name`` given the array ``value``."""
    raise PerSample(f"input {name}: declared a scalar, got an array of shape "
                    f"{fmt_shape(tuple(np.shape(value)))}; a graph with vectors or matrices "
                    "takes arrays of samples for its scalar inputs outside jax tracing only "
                    "(with jax, compile with backend='jax' and pass the samples to its function)")


def samples_shape(names: list[str], values: list) -> tuple:
    """The shape the values given for the scalar inputs ``names`` (arrays of samples, or
    numbers) broadcast to; a ShapeError naming the arrays when they do not."""
    shapes = [np.shape(v) for v in values]
    if len(shapes) == 1:
        return tuple(shapes[0])
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(f"{n} {fmt_shape(tuple(s))}" for n, s in zip(names, shapes) if s)
        raise ShapeError(f"inputs {listed}: arrays of samples for scalar inputs must "
                         "broadcast together") from None


def batched_graph(outs: list[Expr], which: list[Expr]):
    """``outs`` computed for a batch of samples of the scalar variables ``which``.

    Returns (the new outputs, whether each has the samples' axis in front, the variables that
    stand for ``which``: vectors of size ``_samples``, the batched nodes), or None when some
    op on the way has no batch rule or draws random numbers (whose draws a batch would
    reorder).
    """
    from . import functions as F

    new: dict[int, Expr] = {}
    batched: dict[int, bool] = {}
    stand_ins = []
    for w in which:
        v = F.vector(w.attrs["vname"], SAMPLES)
        new[id(w)], batched[id(w)] = v, True
        stand_ins.append(v)
    nodes = []
    for n in topo_order(outs):
        i = id(n)
        if i in new:
            continue
        flags = [batched[id(a)] for a in n.args]
        if not any(flags):  # computed once, as it is
            new[i], batched[i] = n, False
            continue
        if n.op.random:
            return None
        b = n.op.batch(n, tuple(new[id(a)] for a in n.args), flags)
        if b is None:
            return None
        new[i], batched[i] = b, True
        nodes.append(b)
    return [new[id(o)] for o in outs], [batched[id(o)] for o in outs], stand_ins, nodes


def _entries_per_sample(nodes: list[Expr]) -> Callable[[dict], int]:
    """``entries(sizes)``: the most entries one sample takes in any of the batched ``nodes``
    (whose first axis is the samples'), given the symbolic sizes' values ``sizes``."""
    known, symbolic = 1, []
    for n in nodes:
        k, names = 1, []
        for d in n.shape[1:]:
            if isinstance(d, int):
                k *= d
            else:
                names.append(d)
        if names:
            symbolic.append((k, names))
        else:
            known = max(known, k)
    def entries(sizes: dict) -> int:
        most = known
        for k, names in symbolic:
            for d in names:
                k *= sizes.get(d, 1)
            most = max(most, k)
        return most

    entries.symbolic = bool(symbolic)  # whether it reads sizes at all
    return entries


class _Arrays:
    """The few array operations per-sample calls need: numpy's own, or the backend namespace's
    (array API) for the other array backends."""

    def __init__(self, xp) -> None:
        self.xp = xp
        self.numpy = xp is np
        self._dtypes: dict = {}  # the tensors' dtypes -> the samples' (the same each call)

    def asarray(self, v):
        return np.asarray(v) if self.numpy else self.xp.asarray(v)

    def sample_dtype(self, tensors: list):
        """The dtype samples compute in: as Python numbers next to the tensors (float32
        tensors keep float32)."""
        dtypes = tuple(t.dtype for t in tensors if getattr(t, "dtype", None) is not None)
        # keyed by name: array_api_strict warns when its dtypes are compared with numpy's
        key = tuple(map(str, dtypes))
        known = self._dtypes.get(key)
        if known is None:
            known = self._dtypes[key] = self._sample_dtype(dtypes)
        return known

    def _sample_dtype(self, dtypes: tuple):
        if self.numpy:
            return np.result_type(0.0, *(d for d in dtypes if d.kind in "fiub"))
        # by name: a tensor given as a numpy array to another backend has a numpy dtype
        xp = self.xp
        names = {str(d).rsplit(".", 1)[-1] for d in dtypes}
        default = xp.asarray(0.0).dtype  # a Python float's (torch, jax: float32)
        if "float64" in names and not (traced(xp) and "float32" in str(default)):
            return xp.float64  # (jax without x64 has no float64: it keeps its default)
        return xp.float32 if "float32" in names else default

    def of_samples(self, v, dtype):
        """The dtype the samples ``v`` compute in, ``dtype`` being a Python number's next to
        the tensors (sample_dtype): on numpy, float samples narrower than that keep their
        own (float32 samples next to float64 tensors: float32 where they do not meet them, as
        per-sample calls with numpy's float32 numbers give); every other backend takes one
        common dtype for its inputs."""
        if self.numpy and v.dtype.kind == "f" and v.dtype.itemsize < np.dtype(dtype).itemsize:
            return v.dtype
        return dtype

    def cast(self, v, dtype):
        """The samples ``v`` in ``dtype``."""
        return v.astype(dtype, copy=False) if self.numpy else self.xp.astype(v, dtype)

    def flat(self, v, shape: tuple, dtype):
        if self.numpy:
            if v.shape != shape:
                v = np.broadcast_to(v, shape)
            return v.reshape(-1).astype(dtype, copy=False)
        xp = self.xp
        return xp.astype(xp.reshape(xp.broadcast_to(v, shape), (-1,)), dtype)

    def reshape(self, r, shape: tuple):
        return r.reshape(shape) if self.numpy else self.xp.reshape(r, shape)

    def concat(self, parts: list):
        return np.concatenate(parts) if self.numpy else self.xp.concat(parts, axis=0)

    def stack(self, parts: list):
        return np.stack(parts) if self.numpy else self.xp.stack(parts)

    def result(self, r, dtype):
        """A result as an array: a Python float (weak: computed from numbers alone) in the
        samples' ``dtype``, as the results computed from the samples are; a Python int (an
        integer-valued node: to_int) as an integer array, as the batched version gives."""
        if r.__class__ is float:
            return np.asarray(r, dtype) if self.numpy else self.xp.asarray(r, dtype=dtype)
        if getattr(r, "weak_type", False) and not r.ndim and \
                getattr(r.dtype, "kind", None) == "f":  # (jax: a Python float that went
            return self.xp.asarray(float(r), dtype=dtype)  # through jit, float64 with x64)
        return self.asarray(r)

    def repeated(self, r, shape: tuple, dtype):
        """A fresh array of ``r`` repeated over the samples' shape in front of its own."""
        r = self.result(r, dtype)
        shape = shape + tuple(r.shape)
        if self.numpy:
            return np.broadcast_to(r, shape).copy()
        return runtime.materialize(self.xp, self.xp.broadcast_to(r, shape))

    def one(self, dtype):
        return np.ones((), dtype)[()] if self.numpy else self.xp.ones((), dtype=dtype)

    def empty(self, shape: tuple, like):
        like = self.asarray(like)
        shape = shape + tuple(like.shape)
        return np.empty(shape, like.dtype) if self.numpy else \
            self.xp.empty(shape, dtype=like.dtype)


def runner(ins: list[Expr], used: set[int], single: bool, get_fn: Callable,
           backend="numpy", xp=np) -> Callable:
    """``per_sample(*args)``: the compiled function ``get_fn()`` computed for each sample.

    The scalar inputs given arrays (of any shape; they broadcast together to the samples'
    shape ``S``) are the samples; every other input is passed as it is. An output of shape
    ``s`` comes back with shape ``S + s``. Scalar inputs the outputs do not use are ignored,
    arrays or not. The samples are computed together by a batched version of the graph
    (compiled for ``backend`` on first need, ``CHUNK`` entries at a time), or one call each
    where the graph has an op without a batch rule. ``xp``: the backend's namespace.
    """
    names = [v.attrs["vname"] for v in ins]
    scalars = [i for i, v in enumerate(ins) if not v.shape]
    scalar_used = {i: id(ins[i]) in used for i in scalars}
    versions: dict[tuple, tuple | None] = {}  # batched inputs -> the batched version
    lock = threading.Lock()
    arrays = _Arrays(xp)

    def batched_version(fn, batched: tuple):
        with lock:  # threads making the first such call at once build it once
            if batched not in versions:
                from .compile import compile as sg_compile

                made = batched_graph(fn.outputs, [ins[i] for i in batched])
                if made is None:
                    versions[batched] = None
                else:
                    outs, flags, stand_ins, nodes = made
                    swap = dict(zip(batched, stand_ins))
                    bfn = sg_compile(outs, [swap.get(i, v) for i, v in enumerate(ins)],
                                     backend)
                    fn.source = fn.source + "\n" + bfn.source
                    versions[batched] = (bfn, flags, _entries_per_sample(nodes))
            return versions[batched]

    def per_sample(*args):
        fn = get_fn()
        call = list(args)
        batched, values = [], []
        for i in scalars:
            if getattr(args[i], "ndim", 0):
                if scalar_used[i]:
                    batched.append(i)
                    # checked as given and as converted (torch: 1j became 0.0 on the way)
                    values.append(_real_samples(names[i], arrays.asarray(
                        _real_samples(names[i], args[i]))))
                else:
                    call[i] = 0.0  # ignored: the outputs do not use it
        if not batched:
            return fn(*call)
        shape = samples_shape([names[i] for i in batched], values)
        version = batched_version(fn, tuple(batched))
        if version is None:
            return _one_by_one(fn, call, batched, values, shape, ins, args, single, arrays)
        return _together(version, args, call, batched, values, shape, ins, single, arrays)

    return per_sample


def _real_samples(name: str, v):
    """``v``, after checking that it holds real numbers: samples are computed in a real float
    dtype, which would drop the imaginary parts of complex ones and read strings, None and
    dates as numbers."""
    dt = getattr(v, "dtype", None)
    kind = getattr(dt, "kind", None)  # numpy's dtypes have a kind; torch's are read as numpy's
    if kind is None:
        kind = getattr(runtime.host_dtype(dt), "kind", "f") if dt is not None else "f"
    if kind == "O" and v.__class__ is np.ndarray:  # numbers numpy could not type: floats
        from .backends import object_numbers

        return object_numbers(name, v)
    if kind not in "biuf":
        raise TypeError(f"input {name}: samples must be real numbers, got an array of dtype "
                        f"{v.dtype}")
    return v


def _together(version, args, call, batched, values, shape, ins, single, arrays):
    """The samples computed by the batched version, a chunk of them at a time."""
    bfn, flags, entries = version
    tensors = [(v, args[i]) for i, v in enumerate(ins) if v.shape]
    dtype = arrays.sample_dtype([t for _, t in tensors])  # as Python numbers next to them
    count = math.prod(shape)
    flat = [arrays.flat(v, shape, arrays.of_samples(v, dtype)) for v in values]
    sizes = {d: k for v, t in tensors for d, k in zip(v.shape, np.shape(t)) if isinstance(d, str)} \
        if entries.symbolic else {}
    step = max(1, CHUNK // entries(sizes))
    if count <= step:
        for i, v in zip(batched, flat):
            call[i] = v
        parts = [bfn(*call)]
    else:
        parts = []
        for start in range(0, count, step):
            for i, v in zip(batched, flat):
                call[i] = v[start:start + step]
            parts.append(bfn(*call))
    outs = []
    for j, b in enumerate(flags):
        if b:
            r = parts[0][j] if len(parts) == 1 else arrays.concat([p[j] for p in parts])
            outs.append(arrays.reshape(r, shape + tuple(r.shape[1:])))
        else:  # computed once: the same for every sample
            outs.append(arrays.repeated(parts[0][j], shape, dtype))
    return outs[0] if single else tuple(outs)


def _one_by_one(fn, call, batched, values, shape, ins, args, single, arrays):
    """The samples computed by one call of ``fn`` each, stacked."""
    dtype = arrays.sample_dtype([args[i] for i, v in enumerate(ins) if v.shape])  # as together
    dtypes = [arrays.of_samples(v, dtype) for v in values]
    values = [arrays.xp.broadcast_to(arrays.cast(v, t), shape) for v, t in zip(values, dtypes)]
    # a Python number an output computes from samples: in those samples' dtype (numpy), as
    # the batched version computes it
    kinds = _number_dtypes(fn, batched, dtypes, ins, dtype) if arrays.numpy else None
    results = []
    for idx in np.ndindex(shape):
        for i, v in zip(batched, values):
            call[i] = v[idx]
        results.append(fn(*call))
    if not results:  # no samples: one call on stand-in values for the outputs' shapes
        for i, t in zip(batched, dtypes):
            call[i] = arrays.one(t)
        with np.errstate(all="ignore"):
            first = fn(*call)
        outs = [first] if single else list(first)
        stacked = [arrays.empty(shape, arrays.result(o, kinds[j] if kinds else dtype))
                   for j, o in enumerate(outs)]
    else:
        per_output = [[r] for r in results] if single else results
        stacked = []
        for j in range(len(per_output[0])):
            one = [arrays.result(r[j], kinds[j] if kinds else dtype) for r in per_output]
            stacked.append(arrays.reshape(arrays.stack(one), shape + tuple(one[0].shape)))
    return stacked[0] if single else tuple(stacked)


def _number_dtypes(fn, batched: list, dtypes: list, ins: list, dtype) -> list | None:
    """Per output of ``fn``, the dtype of the samples it depends on (``dtype``, the tensors'
    number dtype, where it depends on none); None where the outputs are not a flat list."""
    outs = getattr(fn, "outputs", None)
    if outs is None or any(not isinstance(o, Expr) for o in outs):
        return None
    kinds = []
    for o in outs:
        used = {id(n) for n in topo_order([o])}
        mine = [t for i, t in zip(batched, dtypes) if id(ins[i]) in used]
        kinds.append(np.result_type(*mine) if mine else dtype)
    return kinds
