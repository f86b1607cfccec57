"""Readable formulas: ``str(e)`` and ``sg.latex(e)``.

Named nodes print as their names (the root prints its definition). Small expressions print as
one formula; a large DAG would print as an exponentially large tree, so shared or big
subexpressions are then bound to temporaries (``t1 = ...``), one per line, the formula last.
Printing is iterative: a chain of depth 100,000 prints without recursion.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from .expr import Expr
from .graph import as_list, topo_order, use_counts
from .ops import REGISTRY
from .ops.base import P_ATOM, P_MUL, jux, par
from .ops.elementwise import diag_scaling
from .ops.leaves import small_fraction, tex_name
from .ops.linalg import spread_along_columns, transposed

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


def _render(root: Expr, latex: bool) -> str:
    order = topo_order([root])
    uses = use_counts(order)
    # the sigmoid is the lecture's sigma, unless a variable of the formula is called sigma
    spell_sigmoid = latex and any(n.op.name == "sigmoid" for n in order) and \
        any(_shows_sigma(n) for n in order)
    # a name shows one value: a second node under the same name (named elsewhere: names are
    # global) prints its formula, where "phi + phi" read as twice one value
    shown: dict[str, int] = {n.attrs["vname"]: id(n) for n in order if n.op.name == "var"}
    for n in order:  # (a variable's name too: sigmoid(x) named y printed y*y for it times y)
        if n.name is not None and n is not root:
            shown.setdefault(n.name, id(n))
        elif n.op.name == "alias":  # x.named("y") next to a variable y: "y + y" for x + y
            shown.setdefault(n.attrs["alias"], id(n))
    tree: dict[int, int] = {}
    for n in order:
        if n.name is not None and n is not root and shown[n.name] == id(n):
            tree[id(n)] = 1
        else:
            tree[id(n)] = 1 + sum(tree[id(a)] for a in n.args)
    bind_all = tree[id(root)] > INLINE_LIMIT
    users: dict[int, list[Expr]] = {}  # the nodes that use each broadcast (see _broadcast_row)
    for n in order:
        for a in n.args:
            if a.op.name == "broadcast_to":
                users.setdefault(id(a), []).append(n)
    out: dict[int, tuple[str, int]] = {}
    bound: set[int] = set()  # nodes shown as a temporary (t1) or by their name
    lines: list[str] = []
    k = 0
    for n in order:
        if n.name is not None and n is not root and shown[n.name] == id(n):
            out[id(n)] = ((tex_name(n.name) if latex else n.name), P_ATOM)
            continue
        parts = [out[id(a)] for a in n.args]
        if n.op.name == "alias" and shown[n.attrs["alias"]] != id(n):
            out[id(n)] = parts[0]  # the name shows another value here: the leaf's own name
            continue
        outer = _outer_product(n, out, latex) if n.op.name == "mul" else \
            _broadcast_row(n, root, users, parts, latex) if n.op.name == "broadcast_to" else None
        if outer is not None:
            out[id(n)] = outer
            continue
        if n.op.elementwise and n.ndim == 2 and len(n.args) > 1:
            parts = _scaling_row(n, parts, out) if n.op.name == "mul" else \
                _columns_spread(n, parts, latex)
        if spell_sigmoid and n.op.name == "sigmoid":
            s = (rf"\operatorname{{sigmoid}}\left({parts[0][0]}\right)", P_ATOM)
        elif n.op.name in ("mul", "div") and not n.shape and \
                (gathered := _gathered_product(n, out, bound, latex)) is not None:
            s = gathered
        elif n.op.name == "mul" and _number_inside(n, uses) and \
                (first := _number_first(n, out, latex)) is not None:
            s = first
        else:
            s = n.op.tex(parts, n) if latex else n.op.text(parts, n)
        if bind_all and n is not root and n.args and (
                tree[id(n)] > CHUNK or (uses.get(id(n), 0) > 1 and tree[id(n)] > 2)):
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


def _broadcast_row(n: Expr, root: Expr, users: dict, parts: list,
                   latex: bool) -> tuple[str, int] | None:
    """A vector or a row broadcast along the rows of a matrix, where its own text would lose
    the rows: ``1 w^T`` as the whole formula (the gradient of sum(A w) wrt A read ``w``), and
    ``broadcast_to(w, (3, 4))`` under anything but an elementwise operation with an operand
    of the full shape (which numpy's broadcasting reads right: ``A + w``). None otherwise."""
    u = n.args[0]
    if n.name is not None or n.ndim != 2 or n.shape[0] == 1 or u.ndim == 0 \
            or u.shape[-1:] != n.shape[-1:] or (u.ndim == 2 and u.shape[0] != 1):
        return None  # (one row, (1, k), is the row w^T itself)
    row = parts[0] if u.ndim == 2 else transposed(parts[0], latex)
    if n is root:  # (a row that starts with a sign, -w^T, in parentheses: not 1 - w^T)
        text = par(row, P_MUL, latex, strict=row[0][:1] == "-")
        return (rf"\mathbf{{1}} {text}" if latex else f"1 {text}"), P_MUL
    for user in users.get(id(n), ()):
        if user.op.name != "transpose" and not (
                user.op.elementwise and user.shape == n.shape
                and any(a is not n and a.shape == n.shape for a in user.args)):
            break  # (a transpose prints the broadcast's operand spread: v 1^T)
    else:
        return None
    if latex:
        return rf"\operatorname{{broadcast\_to}}\left({parts[0][0]}, {n.shape}\right)", P_ATOM
    return f"broadcast_to({parts[0][0]}, {n.shape})", P_ATOM


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


def _factors(n: Expr, bound: set) -> tuple[float, list, list, bool, bool] | None:
    """(number, factors above the line, factors below it, whether writing them so reads
    better, whether a number divides) of the scalar product or quotient ``n``, through the
    products, quotients and negations it is made of (but named ones and temporaries); None if
    a number is not finite or a divisor is 0."""
    coef, num, den, consts, gain, divided = 1.0, [], [], 0, False, False
    first = None  # the leftmost factor above the line: a number elsewhere moves to the front
    stack = [(n, False)]
    while stack:
        m, below = stack.pop()
        op = m.op.name
        inside = m is n or (m.name is None and id(m) not in bound)
        if inside and op == "mul":
            stack += [(m.args[1], below), (m.args[0], below)]
        elif inside and op == "div":
            if m is not n and not below and m.args[0].op.name == "const":
                gain = True  # a reciprocal inside a product: 1/(1 + x**2)*cos(x)
            stack += [(m.args[1], not below), (m.args[0], below)]
        elif inside and op == "neg" and m is not n:
            coef = -coef
            stack.append((m.args[0], below))
        elif op == "const" and not hasattr(m.attrs["value"], "shape") and m.name is None:
            v = float(m.attrs["value"])
            if not math.isfinite(v) or (below and v == 0):
                return None
            coef = coef / v if below else coef * v
            consts += 1
            if below:
                divided = True
            elif first is None:
                first = m
        else:
            (den if below else num).append(m)
            if not below and first is None:
                first = m
    gain = gain or consts > 1 or (first is not None and first.op.name != "const" and
                                  consts > divided) or \
        len({id(f) for f in num}) < len(num) or len({id(f) for f in den}) < len(den)
    return coef, num, den, gain, divided


def _gathered_product(n: Expr, out: dict, bound: set, latex: bool) -> tuple[str, int] | None:
    """A scalar product as books write one, where that reads better than the graph's own
    nesting: the numbers multiplied out in front, equal factors as a power, every divisor
    below one line: ``2*x*sin(x)/(1 + x**2)**2`` for the quotient rule's
    ``1/(1 + x**2)*sin(x)/(1 + x**2)*2*x``. None where the graph's own text reads as well."""
    got = _factors(n, bound)
    if got is None or not got[3]:
        return None
    coef, num, den, _, divided = got
    ops = REGISTRY
    render = (lambda op, a, node: op.tex(a, node)) if latex else \
        (lambda op, a, node: op.text(a, node))
    pair = SimpleNamespace(args=(SimpleNamespace(shape=()), SimpleNamespace(shape=())), shape=())

    def product(factors: list) -> tuple[str, int] | None:
        counts: dict[int, list] = {}
        for f in factors:
            counts.setdefault(id(f), [f, 0])[1] += 1
        # names first, then powers and calls, sums last: 2*x*sin(x), not 2*sin(x)*x
        groups = sorted(counts.values(), key=lambda fc: 0 if fc[0].op.leaf else
                        2 if out[id(fc[0])][1] < P_MUL else 1)
        acc = None
        for f, k in groups:
            t = out[id(f)]
            if k > 1:
                t = render(ops["pow"], [t, (str(k), P_ATOM)], pair)
            acc = t if acc is None else render(ops["mul"], [acc, t], pair)
        return acc

    p, q = abs(coef), None
    if divided:  # x**2/2, not 0.5*x**2, where the graph divides by 2
        frac = small_fraction(p)
        if frac is not None and frac[1] > 1:
            p, q = frac
    top = product(num)
    if p != 1.0 or top is None:
        c = render(ops["const"], [], SimpleNamespace(attrs={"value": p}))
        top = c if top is None else render(ops["mul"], [c, top], pair)
    bottom = product(den)
    if q is not None:
        c = render(ops["const"], [], SimpleNamespace(attrs={"value": q}))
        bottom = c if bottom is None else render(ops["mul"], [c, bottom], pair)
    s = top if bottom is None else render(ops["div"], [top, bottom], pair)
    return render(ops["neg"], [s], pair) if coef < 0 else s


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
