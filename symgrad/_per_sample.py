"""Per-sample calls of a compiled graph with vectors or matrices.

A graph of scalars takes arrays for its scalar inputs and computes per sample by numpy's
broadcasting alone. A graph with vectors or matrices cannot: its tensors already have axes,
which a per-sample array would be broadcast against. There, a scalar input given an array
raises :class:`PerSample` inside the generated code; the numpy versions catch it and hand the
call to :func:`runner`'s function, which calls the compiled function once per sample and
stacks the results: each output gets the samples' shape in front of its own.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import ShapeError
from .expr import Expr
from .shapes import fmt_shape


class PerSample(ShapeError):
    """A scalar input of a graph with vectors or matrices was given an array.

    The numpy backend's generated code catches it and computes sample by sample; other
    backends let it through, as the ShapeError its message describes.
    """


def refuse(name: str, value) -> None:
    """Raise :class:`PerSample` for the scalar input ``name`` given the array ``value``."""
    raise PerSample(f"input {name}: declared a scalar, got an array of shape "
                    f"{fmt_shape(tuple(np.shape(value)))}; a graph with vectors or matrices "
                    "takes arrays of samples for its scalar inputs on the numpy backend only")


def samples_shape(names: list[str], values: list) -> tuple:
    """The shape the values given for the scalar inputs ``names`` (arrays of samples, or
    numbers) broadcast to; a ShapeError naming the arrays when they do not."""
    shapes = [np.shape(v) for v in values]
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(f"{n} {fmt_shape(tuple(s))}" for n, s in zip(names, shapes) if s)
        raise ShapeError(f"inputs {listed}: arrays of samples for scalar inputs must "
                         "broadcast together") from None


def runner(ins: list[Expr], used: set[int], single: bool, get_fn: Callable) -> Callable:
    """``per_sample(*args)``: the compiled function ``get_fn()`` called once per sample.

    The scalar inputs given arrays (of any shape; they broadcast together to the samples'
    shape ``S``) are the samples; every other input is passed to each call as it is. An
    output of shape ``s`` comes back with shape ``S + s``. Scalar inputs the outputs do not
    use are ignored, arrays or not.
    """
    names = [v.attrs["vname"] for v in ins]
    scalars = [i for i, v in enumerate(ins) if not v.shape]
    scalar_used = {i: id(ins[i]) in used for i in scalars}

    def per_sample(*args):
        fn = get_fn()
        call = list(args)
        batched, values = [], []
        for i in scalars:
            if getattr(args[i], "ndim", 0):
                if scalar_used[i]:
                    batched.append(i)
                    values.append(np.asarray(args[i]))
                else:
                    call[i] = 0.0  # ignored: the outputs do not use it
        if not batched:
            return fn(*call)
        shape = samples_shape([names[i] for i in batched], values)
        values = [np.broadcast_to(v, shape) for v in values]
        results = []
        for idx in np.ndindex(shape):
            for i, v in zip(batched, values):
                call[i] = v[idx]
            results.append(fn(*call))
        if not results:  # no samples: one call on stand-in values for the outputs' shapes
            for i, v in zip(batched, values):
                call[i] = np.ones((), v.dtype)[()]
            with np.errstate(all="ignore"):
                first = fn(*call)
            outs = [first] if single else list(first)
            stacked = [np.empty(shape + np.shape(o), np.asarray(o).dtype) for o in outs]
        else:
            per_output = [[r] for r in results] if single else results
            stacked = [np.stack([np.asarray(r[j]) for r in per_output]).reshape(
                shape + np.shape(per_output[0][j])) for j in range(len(per_output[0]))]
        return stacked[0] if single else tuple(stacked)

    return per_sample
