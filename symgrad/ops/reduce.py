"""Reductions and normalisations over axes: sum, logsumexp, softmax, log_softmax, argmax."""

from __future__ import annotations

from .. import functions as F
from .._lazy import sympy
from .base import P_ATOM, P_MUL, P_NEG, Op, make_node, par, register, rule, tex_op_name


def reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def expand_back(ct, nb: int, x_shape, axes, keepdims):
    """``ct`` (batch + reduced shape) reshaped so it broadcasts against batch + x_shape."""
    if keepdims or not axes:
        return ct
    kd = reduced_shape(x_shape, axes, True)
    return F.reshape(ct, ct.shape[:nb] + kd)


def _memo(n, g) -> str:
    """``, _memo`` where a logsumexp and a softmax of one value over the same axes are both
    computed (see runtime.logsumexp), for code generators that declare ``_memo`` (their Gen
    has ``shared_exps``, the keys of such pairs); else nothing."""
    pairs = getattr(g, "shared_exps", None)
    if not pairs or (id(n.args[0]), tuple(n.attrs["axis"])) not in pairs:
        return ""
    g.uses_memo = True
    return ", _memo"


def exp_pairs(nodes) -> set:
    """The (id of the value, axes) of every logsumexp among ``nodes`` that has a softmax
    partner there."""
    lse = {(id(n.args[0]), tuple(n.attrs["axis"])) for n in nodes if n.op.name == "logsumexp"}
    return {(id(n.args[0]), tuple(n.attrs["axis"])) for n in nodes
            if n.op.name == "softmax"} & lse if lse else set()


def _axis_code(axes, ndim):
    if len(axes) == ndim:
        return "None"
    if not axes:  # numpy's axis=(): no reduction ("(,)" was a SyntaxError)
        return "()"
    return f"({', '.join(str(a) for a in axes)},)"


def _axis_text(axes, ndim, keepdims=False, latex=False, last_by_default=False):
    """``, axis=1`` (nothing over every axis), and ``, keepdims=True`` where the reduced axes
    are kept: ``B - sum(C, axis=1)`` and ``B - sum(C, axis=1, keepdims=True)`` broadcast
    differently, so the text must tell them apart. ``last_by_default``: the op's default is
    the last axis (softmax), so every axis of a matrix reads ``axis=None``."""
    out = ""
    if len(axes) != ndim:
        ax = axes[0] if len(axes) == 1 else axes
        out = rf", \mathrm{{axis}}={ax}" if latex else f", axis={ax}"
    elif last_by_default and ndim >= 2:
        out = r", \mathrm{axis}=\mathrm{None}" if latex else ", axis=None"
    # kept leading axes broadcast as dropped ones do (numpy aligns shapes on the right): the
    # sum of a vector reads the same without keepdims. A matrix's column sums kept as a row
    # show it: the row is not the vector it would print as (in S^T S, an outer product)
    if keepdims and (tuple(sorted(axes)) != tuple(range(len(axes))) or ndim >= 2):
        out += r", \mathrm{keepdims}" if latex else ", keepdims=True"
    return out


class AxisOp(Op):
    nargs = 1

    def infer(self, args, attrs):
        x = args[0]
        return reduced_shape(x.shape, attrs["axis"], attrs.get("keepdims", False)), ()

    def batch(self, n, args, batched):
        # the same reduction, each axis one further along behind the samples' axis
        return make_node(self, args, {**n.attrs, "axis": tuple(a + 1 for a in n.attrs["axis"])})

    last_by_default = False  # softmax's default axis is the last one, not every axis

    def text(self, a, n):
        ax = _axis_text(n.attrs["axis"], n.args[0].ndim, n.attrs.get("keepdims", False),
                        last_by_default=self.last_by_default)
        return f"{self.name}({a[0][0]}{ax})", P_ATOM

    def tex(self, a, n):
        ax = _axis_text(n.attrs["axis"], n.args[0].ndim, n.attrs.get("keepdims", False), True,
                        self.last_by_default)
        f = tex_op_name(self.name)
        return rf"\operatorname{{{f}}}\left({a[0][0]}{ax}\right)", P_ATOM


class Sum(AxisOp):
    name = "sum"
    attr_names = ("axis", "keepdims")

    def code(self, a, n, g):
        axes, nd = n.attrs["axis"], n.args[0].ndim
        kd = ", keepdims=True" if n.attrs["keepdims"] else ""
        if len(axes) == nd and not kd:
            return f"_xp.sum({a[0]})"  # every axis: the default
        return f"_xp.sum({a[0]}, axis={_axis_code(axes, nd)}{kd})"

    def sympy(self, a, n, ctx):
        return ctx.sum(a[0], n)

    def vjp(self, n, ct, nb, wants):
        x = n.args[0]
        e = expand_back(ct, nb, x.shape, n.attrs["axis"], n.attrs["keepdims"])
        return [F.broadcast_to(e, ct.shape[:nb] + x.shape)]

    def tex(self, a, n):
        x = n.args[0]
        if x.ndim == 1 or len(n.attrs["axis"]) == x.ndim:
            # a big operator takes everything to its right: as a left factor it needs
            # parentheses (\sum A B would be the sum of A B), as a prefix minus does
            return rf"\sum {par(a[0], P_MUL, True)}", P_NEG
        return super().tex(a, n)


SUM = register(Sum())


@rule(SUM)
def _sum_rules(args, attrs, shape):
    (x,) = args
    axes, keep = attrs["axis"], attrs["keepdims"]
    if not axes or x.ndim == 0:
        return x
    if all(x.shape[a] == 1 for a in axes):  # a sum over axes of size 1 moves no entries:
        return x if keep else F.reshape(x, shape)  # sum(reshape(A, (3, 1, 3)), axis=1) is A
    # (not through a named broadcast: the gradient wrt that value read "f does not depend on
    # h", a zero, where f was sum(tanh(h)) with h a broadcast the user named)
    if x.op.name == "broadcast_to" and x.name is None:
        return _sum_of_broadcast(x, axes, keep, shape)
    if x.op.elementwise and len(x.args) == 1 and x.args[0].op.name == "broadcast_to" \
            and x.args[0].name is None:
        # f(broadcast(u)) is broadcast(f(u)): sum(exp(s + 0*A)) read sum(exp(s))
        b = x.args[0]
        inner = make_node(x.op, (b.args[0],), x.attrs)
        return _sum_of_broadcast(F.broadcast_to(inner, b.shape), axes, keep, shape)
    if x.op.name == "mul":
        # a scalar factor comes out of the sum
        p, q = x.args
        if p.ndim == 0 and q.shape == x.shape:
            return F.mul(p, F.sum(q, axes, keep))
        if q.ndim == 0 and p.shape == x.shape:
            return F.mul(q, F.sum(p, axes, keep))
    if x.op.name == "neg":
        return F.neg(F.sum(x.args[0], axes, keep))
    return None


def _sum_of_broadcast(x, axes: tuple, keep: bool, shape: tuple):
    """The sum of ``broadcast_to(u, S)`` over ``axes``: the count of the broadcast axes
    summed over times the sum of ``u`` over its own, broadcast to the result's shape.

    Printed, ``sum(broadcast_to(w, (2, 3)))`` read ``sum(w)`` (a broadcast prints as its
    operand), half its value; now it is ``2 sum(w)``. It also computes less.
    """
    u, full = x.args[0], x.shape
    lead = len(full) - u.ndim  # u's axes are the last ones of the broadcast (numpy's rule)
    spread = [full[i] for i in axes if i < lead or (u.shape[i - lead] == 1 and full[i] != 1)]
    own = tuple(i - lead for i in axes if i >= lead)
    r = F.sum(u, own, keep) if own else u
    return F.broadcast_to(F.mul(F.size(spread), r), shape)


class LogSumExp(AxisOp):
    name = "logsumexp"
    attr_names = ("axis", "keepdims")

    def code(self, a, n, g):
        axes, nd = n.attrs["axis"], n.args[0].ndim
        if not axes:  # over no axis (a scalar's): the value itself (axis=None would have
            return a[0]  # summed a scalar input's array of samples over the samples)
        return f"_rt.logsumexp(_xp, {a[0]}, {_axis_code(axes, nd)}, {n.attrs['keepdims']}" \
            f"{_memo(n, g)})"

    def math(self, a, n, g):
        return a[0] if not n.attrs["axis"] else None

    def sympy(self, a, n, ctx):
        # over some axes of a matrix the sum is a matrix: its log is taken entry by entry
        return ctx.apply(sympy.log, [ctx.sum(ctx.apply(sympy.exp, [a[0]], n.args[0]), n)], n)

    def vjp(self, n, ct, nb, wants):
        x = n.args[0]
        e = expand_back(ct, nb, x.shape, n.attrs["axis"], n.attrs["keepdims"])
        if not n.attrs["axis"]:  # over no axis (a scalar's): the value is x, its softmax 1
            return [e]
        return [F.mul(e, F.softmax(x, n.attrs["axis"]))]


class Softmax(AxisOp):
    name = "softmax"
    attr_names = ("axis",)
    last_by_default = True

    def infer(self, args, attrs):
        return args[0].shape, ()

    def code(self, a, n, g):
        axes, nd = n.attrs["axis"], n.args[0].ndim
        return f"_rt.softmax(_xp, {a[0]}, {_axis_code(axes, nd)}{_memo(n, g)})"

    def sympy(self, a, n, ctx):
        # exp(x) over its sums along the axes, broadcast back to x's shape
        x = n.args[0]
        ex = ctx.apply(sympy.exp, [a[0]], x)
        return ctx.div(ex, ctx.sum_back(ex, x.shape, n.attrs["axis"]), n, (x.shape, x.shape))

    def vjp(self, n, ct, nb, wants):
        axes = tuple(a + nb for a in n.attrs["axis"])
        inner = F.sum(F.mul(ct, n), axes, keepdims=True)
        return [F.mul(n, F.sub(ct, inner))]


class LogSoftmax(Softmax):
    name = "log_softmax"

    def code(self, a, n, g):
        axes, nd = n.attrs["axis"], n.args[0].ndim
        return f"_rt.log_softmax(_xp, {a[0]}, {_axis_code(axes, nd)})"

    def sympy(self, a, n, ctx):
        # x minus the log of its sums of exp along the axes, broadcast back to x's shape
        x = n.args[0]
        total = ctx.sum_back(ctx.apply(sympy.exp, [a[0]], x), x.shape, n.attrs["axis"])
        return ctx.add(a[0], ctx.neg(ctx.apply(sympy.log, [total], x)), n, (x.shape, x.shape))

    def vjp(self, n, ct, nb, wants):
        x = n.args[0]
        axes = tuple(a + nb for a in n.attrs["axis"])
        total = F.sum(ct, axes, keepdims=True)
        return [F.sub(ct, F.mul(F.softmax(x, n.attrs["axis"]), total))]


class Argmax(Op):
    """The index of the largest entry: integer valued, not differentiable."""

    name = "argmax"
    attr_names = ("axis",)
    nargs = 1
    nondiff = (0,)

    def infer(self, args, attrs):
        x, ax = args[0], attrs["axis"]
        if ax is None:
            return (), ()
        return tuple(d for i, d in enumerate(x.shape) if i != ax), ()

    def code(self, a, n, g):
        ax = n.attrs["axis"]
        if not n.args[0].shape:  # a scalar's is 0 (of each sample: argmax of an input's
            return f"_rt.zero_index(_xp, {a[0]})"  # samples was the largest sample's)
        return f"_rt.argmax(_xp, {a[0]}{'' if ax is None else f', {ax}'})"

    def sympy(self, a, n, ctx):
        raise NotImplementedError("argmax has no sympy form")

    def vjp(self, n, ct, nb, wants):
        self.check_diff(n, wants)
        return [None]

    def batch(self, n, args, batched):
        ax = n.attrs["axis"]
        if ax is None:
            return None  # an index into the flattened samples: computed sample by sample
        return make_node(self, args, {"axis": ax + 1})

    def text(self, a, n):
        ax = n.attrs["axis"]
        return f"argmax({a[0][0]}{'' if ax is None else f', axis={ax}'})", P_ATOM

    def tex(self, a, n):
        ax = n.attrs["axis"]
        ax = "" if ax is None else rf", \mathrm{{axis}}={ax}"
        return rf"\operatorname{{argmax}}\left({a[0][0]}{ax}\right)", P_ATOM


LSE = register(LogSumExp())
SOFTMAX = register(Softmax())
LOG_SOFTMAX = register(LogSoftmax())
ARGMAX = register(Argmax())
