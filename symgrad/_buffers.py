"""Buffer planning for the numpy code: when a temporary dies, and which dead one a result reuses.

The plan is made once, at compile time, over the straight-line schedule (the topological order):

- ``free_after[n]``: the temporaries whose last use is node ``n``; the code deletes them right
  after ``n``, so big arrays do not outlive their use (arrays known to be small are left to
  the function's return).
- ``into[n]``: an operand of ``n`` whose buffer ``n`` overwrites (numpy ``out=``), when

  * the operand is a fresh result of an op we know (not an input, a constant, or a view such
    as a transpose, reshape, broadcast, ``take`` or ``stop_gradient``, which share memory),
  * it has ``n``'s shape (not known to be small), is not an output, and ``n`` is its last use,
    and every view of its buffer is dead too,
  * neither has among its ancestors a constant array, an op not known to keep the inputs'
    dtype (``eye``, ``onehot``, ``argmax``, ...), a broadcast scalar or a numpy function of
    scalars (numpy makes those float64): the in-place
    version runs only when every input has one floating dtype, so every other node has that
    dtype too, or is a weak Python number.
"""

from __future__ import annotations

from .expr import Expr

# ops whose result is a new array (or a scalar): its buffer belongs to the node
FRESH = frozenset((
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "tanh", "sin", "cos",
    "sigmoid", "softplus", "relu", "abs", "step", "sigmoid_deriv", "tanh_deriv", "maximum",
    "minimum", "bce", "matmul", "outer", "sum", "logsumexp", "softmax", "log_softmax", "diag",
    "onehot", "eye"))
# ops whose result may share memory with their first operand
VIEWS = frozenset(("transpose", "reshape", "broadcast_to", "alias", "stop_gradient", "take",
                   "diagonal", "guard"))
# ops known to give the inputs' dtype (numpy's promotion of their operands, numbers weak);
# any other op (eye, onehot, argmax, zero, integer casts, samples, ops added later) may not
_KEEPS_DTYPE = (FRESH | VIEWS) - {"eye", "onehot"}
_LEAVES = ("var", "const", "dimsize")


SMALL = 1024  # arrays known to have fewer entries are neither reused nor deleted early


def _big(shape) -> bool:
    """Whether an array of this shape may be big enough for reuse and early ``del`` to pay:
    below SMALL entries numpy's allocator is cheap and ``out=`` costs more than it saves."""
    if not shape:
        return False
    n = 1
    for d in shape:
        if not isinstance(d, int):
            return True
        n *= d
    return n >= SMALL


class BufferPlan:
    def __init__(self) -> None:
        self.into: dict[int, Expr] = {}
        self.free_after: dict[int, list[int]] = {}


def plan_buffers(order: list[Expr], uses: dict[int, int], out_ids: set[int], folded: dict,
                 fused: set[int], operands: dict[int, tuple], inplace: bool, gen,
                 promoting: set[int], calls: set[int] = frozenset()) -> BufferPlan:
    """The buffer plan of ``order``. ``fused`` nodes are computed inside their user's line,
    which reads ``operands[id(user)]`` instead of its own operands; ``promoting``: scalar
    nodes the array namespace computes from Python numbers, which may not have the arrays'
    dtype (numpy's functions of Python numbers give float64); ``calls``: nodes computed by a
    call that returns a new array (a contraction), never into an operand's buffer."""
    plan = BufferPlan()
    for n in order:
        if _big(n.shape):
            break
    else:
        return plan  # every array is known to be small: nothing to reuse or delete early
    remaining = dict(uses)
    root: dict[int, int] = {}  # id -> id of the node owning the memory it refers to
    live: dict[int, int] = {}  # owner id -> number of its live nodes (itself and views)
    pinned: set[int] = set()  # owners never written: outputs' memory, unknown ops' operands
    tainted: set[int] = set()
    into, free_after = plan.into, plan.free_after
    for n in order:
        i = id(n)
        op = n.op.name
        if i in folded or op in _LEAVES:
            if i in folded or (op == "const" and n.shape):
                tainted.add(i)
            continue
        if i in fused:
            continue
        args = operands.get(i, n.args)
        # which operands die here (leaves, constants and fused nodes are not in root)
        dying = []
        taint = op not in _KEEPS_DTYPE or (op == "broadcast_to" and not args[0].shape)
        for a in args:
            ai = id(a)
            if ai in tainted:
                taint = True
            if ai in root:
                left = remaining[ai] - 1
                remaining[ai] = left
                if left == 0:
                    dying.append(a)
        if taint or i in promoting or i in calls:  # (a contraction: the identity's dtype)
            tainted.add(i)
        if op not in FRESH and op not in VIEWS:
            for a in args:  # an op we do not know may return (part of) an operand
                if id(a) in root:
                    pinned.add(root[id(a)])
        dest = None
        for a in dying:
            r = root[id(a)]
            live[r] -= 1
            if live[r] == 0 and inplace and dest is None and r == id(a) and r not in pinned \
                    and a.op.name in FRESH and a.shape == n.shape and _big(n.shape) \
                    and i not in tainted and op in FRESH and i not in calls \
                    and n.op.code_into(["_"] * len(n.args), n, gen, "_") is not None:
                dest = a
        if op in VIEWS and id(args[0]) in root:
            r = root[id(args[0])]
        else:
            r = i
        root[i] = r
        live[r] = live.get(r, 0) + 1
        if i in out_ids:
            pinned.add(r)
        if dest is not None:
            into[i] = dest
        dead = [id(a) for a in dying if a is not dest and _big(a.shape)]
        if dead:
            free_after[i] = dead
    return plan
