"""Readable formulas: ``str(e)`` and ``sg.latex(e)``.

Named nodes print as their names (the root prints its definition). Small expressions print as
one formula; a large DAG would print as an exponentially large tree, so shared or big
subexpressions are then bound to temporaries (``t1 = ...``), one per line, the formula last.
Printing is iterative: a chain of depth 100,000 prints without recursion.
"""

from __future__ import annotations

from types import SimpleNamespace

from ._textbook import gathered_product, gathered_sum
from .expr import Expr, unguard
from .graph import as_list, topo_order, use_counts
from .ops.base import P_ATOM, P_HAD, P_MUL, P_NEG, P_POW, jux, par
from .ops.elementwise import MUL, diag_scaling
from .ops.leaves import tex_name, tex_shape
from .ops.linalg import spread_along_columns, transposed
from .shapes import fmt_shape

INLINE_LIMIT = 200  # tree nodes: below this a whole expression prints as one formula
CHUNK = 40  # tree nodes: a bigger subexpression gets a line of its own


def _label(n: Expr) -> str | None:
    if n.name is not None:
        return n.name
    return None


def _shows_sigma(n: Expr) -> bool:
    """Whether ``n`` prints as the letter sigma in LaTeX (a name ``sigma`` or ``sigma_...``)."""
    name = n.name if n.name is not None else n.attrs.get("vname", n.attrs.get("alias"))
    return isinstance(name, str) and name.partition("_")[0] == "sigma"


def _render(root: Expr, latex: bool, names: dict[int, str] | None = None,
            spell_sigmoid: bool | None = None) -> str:
    """``names``: values shown by these names (a node's id -> name) in place of their own,
    whose names then show nothing else (index notation's where lines); ``spell_sigmoid``:
    True where a sigma shows beside this formula (index notation's other lines)."""
    root = unguard(root)  # (a guard prints as its operand: the formula is the operand's)
    order = topo_order([root])
    uses = use_counts(order)
    # the sigmoid is the lecture's sigma, unless a variable of the formula is called sigma
    spell_sigmoid = latex and any(n.op.name == "sigmoid" for n in order) and \
        (spell_sigmoid or any(_shows_sigma(n) for n in order))
    # a name shows one value: a second node under the same name (named elsewhere: names are
    # global) prints its formula, where "phi + phi" read as twice one value
    shown: dict[str, int] = {n.attrs["vname"]: id(n) for n in order if n.op.name == "var"}
    for n in order:  # (a variable's name too: sigmoid(x) named y printed y*y for it times y)
        if n.name is not None and n is not root:
            shown.setdefault(n.name, id(n))
        elif n.op.name == "alias":  # x.named("y") next to a variable y: "y + y" for x + y
            shown.setdefault(n.attrs["alias"], id(n))
    # the nodes printed as a name: the first node of each name, or those ``names`` gives
    label = {id(n): n.name for n in order
             if n.name is not None and n is not root and shown[n.name] == id(n)}
    if names is not None:
        claimed = set(names.values())
        label = {i: nm for i, nm in label.items() if nm not in claimed and i not in names}
        label.update((id(n), names[id(n)]) for n in order if id(n) in names and n is not root)
    tree: dict[int, int] = {}
    for n in order:
        if id(n) in label:
            tree[id(n)] = 1
        else:
            tree[id(n)] = 1 + sum(tree[id(a)] for a in n.args)
    bind_all = tree[id(root)] > INLINE_LIMIT
    users = _Users()  # the nodes that use each node (see _rebuilt)
    for n in order:
        for a in n.args:
            users.setdefault(id(a), []).append(n)
    out: dict[int, tuple[str, int]] = {}
    bound: set[int] = set()  # nodes shown as a temporary (t1) or by their name
    lines: list[str] = []
    k = 0
    for n in order:
        if id(n) in label:
            out[id(n)] = ((tex_name(label[id(n)]) if latex else label[id(n)]), P_ATOM)
            continue
        parts = [out[id(a)] for a in n.args]
        if n.op.name == "alias" and shown[n.attrs["alias"]] != id(n):
            out[id(n)] = parts[0]  # the name shows another value here: the leaf's own name
            continue
        outer = _outer_product(n, out, latex) if n.op.name == "mul" else \
            _broadcast_shown(n, root, users, parts, latex) if n.op.name == "broadcast_to" \
            else None
        if outer is not None:
            out[id(n)] = outer
            if n.op.name == "broadcast_to":
                users.written.add(id(n))
            continue
        if n.op.elementwise and n.ndim == 2 and len(n.args) > 1:
            parts = _scaling_row(n, parts, out) if n.op.name == "mul" else \
                _columns_spread(n, parts, latex)
        if spell_sigmoid and n.op.name == "sigmoid":
            s = (rf"\operatorname{{sigmoid}}\left({parts[0][0]}\right)", P_ATOM)
        elif n.op.name in ("mul", "div", "neg") and not n.shape and \
                (gathered := gathered_product(n, out, bound, latex)) is not None:
            s = gathered
        elif n.op.name in ("add", "sub") and not n.shape and \
                (gathered := gathered_sum(n, out, bound, latex)) is not None:
            s = gathered
        elif n.op.name == "mul" and _number_inside(n, uses) and \
                (first := _number_first(n, out, latex)) is not None:
            s = first
        elif n.op.name == "transpose" and n.ndim == 2 and id(n.args[0]) in users.written:
            s = transposed(parts[0], latex)  # (a broadcast printed in full: not spread again)
        else:
            s = n.op.tex(parts, n) if latex else n.op.text(parts, n)
            if n.op.name == "reshape" and s == parts[0] and n.ndim != n.args[0].ndim and any(
                    "axis" in u.attrs or (u.op.name == "broadcast_to" and u.ndim > 2)
                    for u in users.get(id(n), ())):
                # (a unit axis added or dropped changes what an axis number of its user means:
                # sum(A, axis=(0, 1)) of a (1, 3, 4) reshape read as a sum over all of A)
                s = ((rf"\operatorname{{reshape}}\left({s[0]}, {tex_shape(n.shape)}\right)"
                      if latex else f"reshape({s[0]}, {fmt_shape(n.shape)})"), P_ATOM)
        if bind_all and n is not root and n.args and (
                tree[id(n)] > CHUNK or (uses.get(id(n), 0) > 1 and tree[id(n)] > 2)):
            k += 1
            while f"t{k}" in shown or f"t_{k}" in shown:  # a name of the formula's own
                k += 1
            t = f"t_{{{k}}}" if latex else f"t{k}"
            lines.append(f"{t} = {s[0]}")
            out[id(n)] = (t, P_ATOM)
            bound.add(id(n))
            tree[id(n)] = 1
            continue
        out[id(n)] = s
    text = out[id(root)][0]
    if lines:
        sep = r" \\ " if latex else "\n"
        return sep.join(lines + [text])
    return text


def _broadcast_shown(n: Expr, root: Expr, users: dict, parts: list,
                     latex: bool) -> tuple[str, int] | None:
    """A broadcast whose own text (its operand's) would lose its shape where it stands, written
    out: a vector or a row spread along the rows of a matrix (see ``_broadcast_row``), a
    scalar made a tensor (see ``_broadcast_number``), and a tensor given more axes than two
    (``broadcast_to(v, (2, 3, 4))``: softmax(v, axis=0) read as a vector's); None for any
    other."""
    if n.name is not None and n is not root:
        return None
    u = n.args[0]
    if u.ndim == 0 or (n.ndim <= 2 and all(d == 1 for d in u.shape)):  # (one entry, (1,):
        return _broadcast_number(n, root, users, parts, latex)  # as a number's)
    if n.ndim > 2:
        return None if n is not root and _rebuilt(n, users, root) else \
            _written_out(n, parts, latex)
    return _broadcast_row(n, root, users, parts, latex)


def _broadcast_row(n: Expr, root: Expr, users: dict, parts: list,
                   latex: bool) -> tuple[str, int] | None:
    """A vector or a row broadcast along the rows of a matrix, where its own text would lose
    the rows: ``1 w^T`` as the whole formula (the gradient of sum(A w) wrt A read ``w``), and
    ``broadcast_to(w, (3, 4))`` under anything but an elementwise operation with an operand
    of the full shape (which numpy's broadcasting reads right: ``A + w``). None otherwise."""
    u = n.args[0]
    if n.ndim != 2 or n.shape[0] == 1 or u.shape[-1:] != n.shape[-1:] \
            or (u.ndim == 2 and u.shape[0] != 1):
        return None  # (one row, (1, k), is the row w^T itself)
    row = parts[0] if u.ndim == 2 else transposed(parts[0], latex)
    if n is root:  # (a row that starts with a sign, -w^T, in parentheses: not 1 - w^T)
        text = par(row, P_MUL, latex, strict=row[0][:1] == "-")
        return (rf"\mathbf{{1}} {text}" if latex else f"1 {text}"), P_MUL
    if _rebuilt(n, users, root):
        return None
    return _written_out(n, parts, latex)


def _broadcast_number(n: Expr, root: Expr, users: dict, parts: list,
                      latex: bool) -> tuple[str, int] | None:
    """A scalar broadcast to a tensor, where its own text would read as a scalar (anywhere but
    under elementwise operations that meet an operand of its shape, ``x + v``: see _rebuilt):
    times the vector of ones (``x 1``; ``x 1 1^T`` a matrix, ``x 1^T`` a row: the gradient of
    x*sum(v) wrt v read ``x``), or ``broadcast_to(x, (2, 3, 4))`` of more axes. None where it
    is rebuilt."""
    if n is not root and _rebuilt(n, users, root):
        return None
    u = n.args[0]
    number = u.attrs["value"] if u.op.name == "const" and u.name is None and not u.ndim \
        else None
    column = n.ndim == 2 and n.shape[1] == 1 and n.shape[0] != 1 and n is not root
    if n.ndim > 2 or column:  # (a column inside a formula: x 1 reads as a vector, which
        # numpy broadcasts along the other axis: exp(v) + tanh(x 1) of a (3, 1) is (3, 3))
        if number in (0, 1) and not latex:  # ones((2, 3, 4)), as numpy writes it
            return f"{'ones' if number else 'zeros'}({fmt_shape(n.shape)})", P_ATOM
        return _written_out(n, parts, latex)
    one = r"\mathbf{1}" if latex else "1"
    tr = f"{one}^{{T}}" if latex else "1^T"
    ones = ((f"{one} {tr}", P_MUL) if n.ndim == 2 and 1 not in n.shape  # a matrix: 1 1^T
            else (tr, P_POW) if n.ndim == 2 and n.shape[0] == 1 else (one, P_ATOM))
    if number == 1:
        if latex or ones[0] != one:  # 1 1^T, not 1 1 1^T (in brackets after a minus:
            return ones if ones[1] != P_MUL else (ones[0], P_HAD)  # -1 1^T read as the
            # row -1 times 1^T)
        return f"ones({fmt_shape(n.shape)})", P_ATOM  # (in text a lone 1 reads as a number)
    if number == 0:  # (not 0 1)
        return (r"\mathbf{0}", P_ATOM) if latex else (f"zeros({fmt_shape(n.shape)})", P_ATOM)
    if number is not None and not latex and ones[0] == one:  # 2 ones((3,)), not 2 1
        if number == -1:
            return f"-ones({fmt_shape(n.shape)})", P_NEG
        ones = f"ones({fmt_shape(n.shape)})", P_ATOM
    k = n.shape[0] if n.ndim == 1 or n.shape[0] != 1 else n.shape[1]
    product = SimpleNamespace(args=(SimpleNamespace(shape=()), SimpleNamespace(shape=(k,))),
                              shape=(k,))  # (x times a vector: as mul writes it, -(1/3) 1)
    return (MUL.tex if latex else MUL.text)([parts[0], ones], product)


def _rebuilt(n: Expr, users: dict, root: Expr | None = None, depth: int = 0,
             shown: tuple | None = None) -> bool:
    """Whether every user of the broadcast ``n`` rebuilds its shape where its text reads as
    ``shown`` (its operand's shape): an elementwise operation that numpy broadcasts to its
    own shape from what its operands read as (``A + w``, ``x + v``, ``I ⊙ step(0)``), or one
    that does not but whose own users do (``maximum(v, log(x))``), an op printed as its
    operand whose users do, or a transpose of the broadcast itself, which prints it spread
    (``v 1^T``)."""
    if shown is None:
        shown = n.args[0].shape
    for user in users.get(id(n), ()):
        u = n.args[0]
        if user.op.name == "transpose" and depth == 0 and user.ndim == 2 and \
                user.shape[1] != 1 and (u.ndim == 1 or u.shape[0] == 1):  # (it prints it
            continue  # spread: v 1^T; not one of more axes: transpose(u, (2, 0, 1)) for (3,))
        if user.op.elementwise:
            # (a column or row that scales a matrix prints as diag(v): the matrix must read
            # as one, diag(v) exp(w) read as a product with a vector)
            sc = diag_scaling(user) if user.op.name == "mul" and user.ndim == 2 else None
            scaler = user.args[1 - sc[0]] if sc is not None else None
            reads = _broadcast_shapes(
                [shown] + [a.shape for a in user.args
                           if a is not n and a is not scaler and _reads_full(a, users)])
            if reads == user.shape:
                continue
            if reads is not None and user is not root and depth < 16 and \
                    _rebuilt(user, users, root, depth + 1, reads):
                continue
            return False
        if user.op.name in _SHOWN_AS_OPERAND and user is not root and depth < 16 and \
                _rebuilt(user, users, root, depth + 1, shown):
            continue
        return False
    return True


def _broadcast_shapes(shapes: list) -> tuple | None:
    """numpy's broadcast of ``shapes`` (sizes may be names), or None where they do not fit."""
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(1, rank + 1):
        sizes = {s[-i] for s in shapes if len(s) >= i and s[-i] != 1}
        if len(sizes) > 1:
            return None
        out.append(sizes.pop() if sizes else 1)
    return tuple(reversed(out))


def _reads_full(a: Expr, users: dict, depth: int = 0) -> bool:
    """Whether the text of ``a`` shows its shape: not a broadcast printed as its operand
    (``exp(x) + exp(y)`` of two broadcast scalars read as a scalar: one written out is known
    only once printed, in the graph's order), nor an elementwise operation of such operands
    only."""
    if a.op.name == "broadcast_to":
        return id(a) in getattr(users, "written", ())
    if (a.op.elementwise or a.op.name in _SHOWN_AS_OPERAND) and a.args and depth < 16:
        return any(x.shape == a.shape and _reads_full(x, users, depth + 1) for x in a.args)
    return True


class _Users(dict):
    """id of a node -> the nodes that use it; ``written``: the broadcasts printed in full."""

    def __init__(self) -> None:
        super().__init__()
        self.written: set[int] = set()


# ops that print as their operand (a size check of a derivative, a guard's)
_SHOWN_AS_OPERAND = frozenset(("fit_shape", "guard"))


def _written_out(n: Expr, parts: list, latex: bool) -> tuple[str, int]:
    """``broadcast_to(x, (3, 4))``: the broadcast as numpy code."""
    if latex:
        return (rf"\operatorname{{broadcast\_to}}\left({parts[0][0]}, {tex_shape(n.shape)}"
                r"\right)"), P_ATOM
    return f"broadcast_to({parts[0][0]}, {fmt_shape(n.shape)})", P_ATOM


def _outer_product(n: Expr, out: dict, latex: bool) -> tuple[str, int] | None:
    """``v w^T`` for the product of a column spread along the columns and a vector (numpy's
    ``v[:, None] * w``, the outer product), which read ``v 1^T diag(w)``; None otherwise."""
    if n.ndim != 2:
        return None
    for m, w in (n.args, n.args[::-1]):
        if (m.op.name == "broadcast_to" and m.name is None and m.shape == n.shape
                and m.args[0].ndim == 2 and m.args[0].shape[1] == 1 and w.ndim == 1
                and w.shape[0] == n.shape[1]):
            v = out[id(m.args[0])]
            left = par(v, P_MUL, True) if latex else jux(v)
            return f"{left} {transposed(out[id(w)], latex)[0]}", P_MUL
    return None


def _number_inside(n: Expr, uses: dict) -> bool:
    """Whether the scalar product ``n`` is ``x*(c*z)`` with a number ``c`` (and ``c*z`` used
    nowhere else, so that it prints inside ``n``)."""
    x, m = n.args
    if x.op.name in ("mul", "div") and x.args[0].op.name == "const":
        return False  # c1*y*(c2*z), c1/y*(c2*z): the numbers stay apart, as computed
    return (not n.shape and x.op.name != "const" and m.op.name == "mul" and m.name is None
            and uses.get(id(m)) == 1 and m.args[0].op.name == "const" and not m.args[1].shape
            and not hasattr(m.args[0].attrs["value"], "shape"))


def _number_first(n: Expr, out: dict, latex: bool) -> tuple[str, int] | None:
    """``x*(c*z)`` written with the number first, as books do: ``3*a**2`` for ``a*(3*a)``;
    None where the rest starts with a number too (``2*1/s``)."""
    x, (c, z) = n.args[0], n.args[1].args
    render = n.op.tex if latex else n.op.text
    xz = SimpleNamespace(args=(x, z), shape=())
    inner = render([out[id(x)], out[id(z)]], xz)
    if inner[0][:1].isdigit():
        return None
    return render([out[id(c)], inner], SimpleNamespace(args=(c, xz), shape=()))


def _scaling_row(n: Expr, parts: list, out: dict) -> list:
    """``A diag(w)`` for ``A * reshape(w, (1, k))``: inside diag the vector's own text, not
    the row ``w^T`` the reshape prints elsewhere."""
    sc = diag_scaling(n)
    if sc is None:
        return parts
    v = n.args[1 - sc[0]]
    text = _without_keepdims(v, parts[1 - sc[0]])
    if text is not None:  # diag(sum(Y, axis=1)), not diag of the (n, 1) keepdims sum
        out_parts = list(parts)
        out_parts[1 - sc[0]] = text
        return out_parts
    if sc[1] != "cols" or v.op.name != "reshape" or v.name is not None or v.args[0].ndim != 1:
        return parts
    out_parts = list(parts)
    out_parts[1 - sc[0]] = out[id(v.args[0])]
    return out_parts


def _without_keepdims(v: Expr, s: tuple[str, int]) -> tuple[str, int] | None:
    """The text of the sum ``v`` (kept axes: a column or a row of a matrix) without its
    ``keepdims``, as a vector inside diag(...); None for anything else."""
    if v.op.name != "sum" or not v.attrs["keepdims"] or v.name is not None or v.ndim != 2:
        return None
    for mark, end in ((", keepdims=True)", ")"), (r", \mathrm{keepdims}\right)", r"\right)")):
        if s[0].endswith(mark):
            return s[0][: -len(mark)] + end, s[1]
    return None


def _columns_spread(n: Expr, parts: list, latex: bool) -> list:
    """A column (k, 1) spread along the columns of ``n`` reads ``v 1^T``: a column made of a
    vector prints as the vector, which a numpy reader would spread along the rows (``A + w``
    for a row ``w``). (``mul`` writes such a product as ``diag(v) A`` itself.)"""
    if n.shape[1] == 1:
        return parts
    out = list(parts)
    for i, a in enumerate(n.args):
        if a.ndim == 2 and a.shape[1] == 1 and _column_of_a_vector(a):
            out[i] = spread_along_columns(parts[i], latex)
    return out


def _column_of_a_vector(a: Expr, depth: int = 8) -> bool:
    """Whether the column ``a`` prints as a vector: a reshaped vector, a matrix times such a
    column (``M u``), or elementwise ops on such columns (``0.5 v``, ``v + w``). A name, a
    variable of shape (k, 1) or ``keepdims=True`` show the column."""
    if a.name is not None or not a.args or depth == 0:
        return False
    if a.op.name == "reshape":
        return a.args[0].ndim == 1
    if a.op.name == "matmul":
        return _column_of_a_vector(a.args[1], depth - 1)
    if not a.op.elementwise:
        return False
    cols = [x for x in a.args if x.shape == a.shape]
    return bool(cols) and all(_column_of_a_vector(x, depth - 1) for x in cols)


def to_str(e: Expr) -> str:
    """A readable formula for ``e`` (what ``str(e)`` returns)."""
    return _render(e, latex=False)


def latex(e) -> str:
    """LaTeX for an expression (or a list: one per line); honours names given with ``.named``."""
    outs, single = as_list(e, "latex")
    parts = [_render(x, latex=True) for x in outs]
    return parts[0] if single else r" \\ ".join(parts)


to_latex = latex
