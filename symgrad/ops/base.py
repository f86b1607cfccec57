"""The op table's base class.

An op is defined once, in one class: its shape rule (``infer``), its lowering to array code
(``code``) and to Python ``math`` code for scalar graphs (``math``), its sympy form (``sympy``),
its derivative rule (``vjp``, written with symgrad's own functions so that every derivative can be
differentiated again), how it prints (``text`` / ``tex``) and its build-time rewrites (``rules``).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

from ..errors import NonDifferentiableError, ShapeError
from ..shapes import broadcast, fmt_shape

# printing precedences; a Hadamard product (⊙) binds looser than a matrix product or a scalar
# factor written by juxtaposition, so it is parenthesised inside them: (mu - y) (w ⊙ phi) x^T
P_ADD, P_NEG, P_HAD, P_MUL, P_POW, P_ATOM = 10, 15, 18, 20, 30, 100

REGISTRY: dict[str, Op] = {}


def register(op: Op) -> Op:
    if op.name in REGISTRY:
        raise ValueError(f"op {op.name!r} defined twice")
    REGISTRY[op.name] = op
    return op


class Op:
    name: ClassVar[str] = ""
    nargs: ClassVar[int | None] = None  # None: any number
    leaf: ClassVar[bool] = False
    elementwise: ClassVar[bool] = False  # output = broadcast of the operands, value per element
    # whether the op takes extra leading axes on its operands, broadcast together, and gives
    # them to its result (as diag and outer do): then it computes a batch of samples as is
    leading_axes: ClassVar[bool] = False
    nondiff: ClassVar[tuple] = ()  # operand positions through which no derivative exists
    # operand positions that count as constants (derivative zero by the user's choice, as in
    # stop_gradient): derivatives stop there, and "disconnected" zeros name the op
    zero_grad: ClassVar[tuple] = ()
    random: ClassVar[bool] = False  # draws random numbers (a compiled function owns a Generator)
    attr_names: ClassVar[tuple[str, ...]] = ()  # the attributes a node of this op has (sg.load)
    fn: ClassVar[str] = ""  # function name for text/latex/code templates
    # (operator, precedence) when ``math`` is ``a <op> b`` (or ``<op>a`` for one operand):
    # lets the math emitter leave out the parentheses Python does not need
    infix: ClassVar[tuple[str, int] | None] = None
    # whether array code may write a scalar node as its infix too: False where Python numbers
    # would compute something else than numpy (1.0 / 0.0 raises), so ``code`` is used instead
    numbers_infix: ClassVar[bool] = True

    def __init__(self) -> None:
        # build-time rewrites: rule(args, attrs, shape) -> an equal, simpler Expr, or None;
        # scalar_rules: those that can apply to a scalar result (make() tries only these there)
        self.rules: list[Callable[[tuple, dict, tuple], Any]] = []
        self.scalar_rules: list[Callable[[tuple, dict, tuple], Any]] = []
        self.tag = id(self)  # the op in node-table keys (a number: keys stay untracked by the GC)
        # how many operands of one shape make a result of that shape by Op.infer's elementwise
        # rule (1 or 2; 0: not such an op), so that make() can skip the call in that case
        plain = self.elementwise and type(self).infer is Op.infer and self.nargs in (1, 2)
        self.same_shape_nargs = self.nargs if plain else 0

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    # ---------------------------------------------------------------- identity
    def attrs_key(self, attrs: dict | None) -> tuple:
        if not attrs:
            return ()
        return tuple(sorted(attrs.items()))

    # ---------------------------------------------------------------- shapes
    def infer(self, args: tuple, attrs: dict) -> tuple:
        """(shape, deferred checks) of the result; raise ShapeError when shapes do not fit."""
        if self.nargs is not None and len(args) != self.nargs:
            raise ValueError(f"{self.name} takes {self.nargs} operands, got {len(args)}")
        if self.elementwise:
            s = args[0].shape
            if len(args) == 1 or (len(args) == 2 and args[1].shape == s):
                return s, ()  # the common case, without the general broadcasting rule
            return broadcast(self.name, [a.shape for a in args])
        raise NotImplementedError(self.name)

    # ---------------------------------------------------------------- lowering
    def code(self, a: list[str], n, g) -> str:
        """An expression of array code; ``a`` are the operands' code, ``g`` the codegen context."""
        raise NotImplementedError(self.name)

    def math(self, a: list[str], n, g) -> str | None:
        """The same with Python ``math`` (scalar graphs only); None when unsupported."""
        return None

    def code_into(self, a: list[str], n, g, out: str) -> str | None:
        """numpy code writing the result into the array ``out`` and evaluating to it; or None.

        ``out`` has the result's shape and dtype and may be an operand's own buffer (the
        operand is dead after this node), so an operand must be read before ``out`` is written
        unless a single elementwise ufunc does both. Used by codegen to reuse dead temporaries.
        """
        return None

    def kernel(self, a: list[str], n, g) -> str | None:
        """One element of an elementwise op inside a compiled loop (numba, see
        :mod:`symgrad.fused`): like ``math``, but overflow gives inf instead of raising."""
        return self.math(a, n, g)

    # ---------------------------------------------------------------- sympy
    def sympy(self, a: list, n, ctx) -> Any:
        raise NotImplementedError(f"{self.name} has no sympy form")

    # ---------------------------------------------------------------- derivative
    def vjp(self, n, ct, nb: int, wants: list[bool]) -> list:
        """Cotangents of the operands given ``ct`` (shape: ``nb`` batch axes + n.shape).

        Returns one entry per operand (None: zero or not wanted). Entries may be pairs
        ``(target, cotangent)`` for a deeper node (used by fused, stable rules).
        """
        raise NotImplementedError(self.name)

    # ---------------------------------------------------------------- batching
    def batch(self, n, args: tuple, batched: list[bool]) -> Any:
        """``n`` for a batch of samples: ``args`` are its new operands, those marked in
        ``batched`` with one leading axis of samples in front of their shapes. Returns the node
        with that axis in front of ``n``'s shape, or None where this op has no such rule
        (per-sample calls then compute sample by sample: see symgrad._per_sample).

        The default, for elementwise ops and ops with ``leading_axes``: the operands broadcast
        once the batched ones have their sample axis in front of all the others."""
        if not (self.elementwise or self.leading_axes):
            return None
        rank = max(a.ndim for a in n.args)
        return make_node(self, pad_batched(args, batched, rank), n.attrs)

    def check_diff(self, n, wants: list[bool]) -> None:
        for i in self.nondiff:
            if i < len(wants) and wants[i]:
                raise NonDifferentiableError(
                    f"{self.name} has no derivative with respect to its operand {i + 1}")

    # ---------------------------------------------------------------- printing
    def text(self, a: list, n) -> tuple[str, int]:
        return f"{self.fn or self.name}({', '.join(s for s, _ in a)})", P_ATOM

    def tex(self, a: list, n) -> tuple[str, int]:
        f = tex_op_name(self.fn or self.name)
        return rf"\operatorname{{{f}}}\left({', '.join(s for s, _ in a)}\right)", P_ATOM


def tex_op_name(f: str) -> str:
    """An op's name inside ``\\operatorname{...}``: math mode there too, so ``stop_gradient``
    would print as stop with the subscript gradient; the underscore is escaped."""
    return f.replace("_", r"\_")


def par(s: tuple[str, int], prec: int, latex: bool = False, strict: bool = False) -> str:
    """``s`` (text, precedence) in parentheses when its precedence is below ``prec``."""
    text, p = s
    if p < prec or (strict and p == prec):
        return rf"\left({text}\right)" if latex else f"({text})"
    return text


def jux(s: tuple[str, int]) -> str:
    """Text of ``s`` as the left factor of a product written by juxtaposition (``A B``,
    ``x A``): parenthesised below a product, and where it is a quotient, since ``x/y A``
    would read as ``x/(y A)``."""
    text, p = s
    if p < P_MUL or (p == P_MUL and _top_level_slash(text)):
        return f"({text})"
    return text


def _top_level_slash(text: str) -> bool:
    depth = 0
    for c in text:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "/" and depth == 0:
            return True
    return False


def shape_error(op: str, *shapes) -> ShapeError:
    return ShapeError(f"{op}: shapes " + " and ".join(fmt_shape(s) for s in shapes) + " do not fit")


def rule(op: Op, tensor_only: bool = False):
    """Decorator: add a build-time rewrite ``f(args, attrs, shape) -> Expr | None`` to ``op``.

    ``tensor_only``: the rule never applies when the result is a scalar (shape ``()``), so
    building a scalar node skips it (most nodes of scalar graphs: cheaper construction).
    """

    def deco(f):
        op.rules.append(f)
        if not tensor_only:
            op.scalar_rules.append(f)
        return f

    return deco


def broadcast_code(a: str, x, shape: tuple, g) -> str:
    """Array code broadcasting the operand ``x`` (its code ``a``) to ``shape``.

    A scalar that may be a Python number at run time (a constant, a size, a scalar input) is
    weak, as numpy's Python scalars are: where a tensor input lends a floating dtype
    (``g.like``), it is made in that dtype (runtime.broadcast_number), so that the mean's
    gradient of float32 data is float32. Other operands keep numpy's broadcasting.
    """
    like = getattr(g, "like", None)
    if like and not x.shape and g.may_be_number(x):
        return f"_rt.broadcast_number(_xp, {a}, {g.shape(shape)}, {like})"
    return f"_xp.broadcast_to({a}, {g.shape(shape)})"


def make_node(op: Op, args: tuple, attrs: dict | None) -> Any:
    """``symgrad.expr.make``, imported when first used (expr imports the op table)."""
    from ..expr import make

    return make(op, tuple(args), attrs or None)


def pad_batched(args, batched: list[bool], rank: int) -> tuple:
    """The operands, each batched one (shape ``(B,) + s``) reshaped to ``(B,) + (1, ...) + s``
    of ``rank + 1`` axes, so that numpy's broadcasting keeps the sample axis in front."""
    from .. import functions as F

    out = []
    for a, b in zip(args, batched):
        k = rank + 1 - a.ndim
        if b and k > 0:
            a = F.reshape(a, a.shape[:1] + (1,) * k + a.shape[1:])
        out.append(a)
    return tuple(out)
