"""Pictures of graphs: ``sg.to_dot`` (Graphviz DOT text) and ``sg.draw`` (an image file).

Nodes of the forward computation and nodes that the gradient pass added are drawn in two styles,
with a legend, like the lecture's figure of the computation graph with its forward and backward
passes. Each node shows its name (if it has one), its op and its shape; each output is marked
with what it is (``f``, ``dC/dw``, ...).

Which nodes are "forward": every node that the forward expressions reach. The forward
expressions are ``forward=`` when given; otherwise the expressions in the list that are not
derivatives, plus the expression each derivative in the list was taken of (``sg.grad``,
``sg.jacobian`` and ``sg.hessian`` record it; see :func:`symgrad.autodiff.origin`). A node
that a derivative shares with the forward graph (the lecture's "we already computed that") is
a forward node. ``simplified=True`` draws the graph as built beside ``sg.simplify`` of it, and
marks the nodes that simplification removed.

``to_dot`` needs nothing outside Python. ``draw`` renders with Graphviz's ``dot`` program when
it is on the PATH (Debian/Ubuntu: ``apt-get install graphviz``) and with matplotlib otherwise
(``pip install symgrad[draw]``).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from dataclasses import dataclass, field

import numpy as np

from .autodiff import origin
from .expr import Expr
from .graph import _display_name, as_list, topo_order
from .ops.leaves import fmt_number
from .shapes import fmt_shape

FORMATS = ("svg", "png", "pdf")
SVG_MAX_NODES = 300  # Expr._repr_svg_ draws graphs up to this size

_STYLE = {  # kind -> (fill, border, DOT style)
    "forward": ("#dbe8f6", "#2b5c8a", "rounded,filled"),
    "gradient": ("#fde2c8", "#c0601a", "rounded,filled,dashed"),
}
_REMOVED = ("#ffffff", "#8a8a8a", "rounded,filled,dotted")  # (the legend's sample)


def _style(p: _Panel, n: Expr) -> tuple[str, str, str]:
    """(fill, border, DOT style): the fill tells forward from gradient; a removed node keeps
    it, with a grey dotted border."""
    fill, border, style = _STYLE[p.kind(n)]
    if id(n) in p.removed:
        return fill, _REMOVED[1], _REMOVED[2]
    return fill, border, style
_LEGEND = {"forward": "forward pass", "gradient": "added by the gradient pass",
           "removed": "removed by simplify"}
# ops whose operand order matters: their edges are numbered
_ORDERED = {"sub", "div", "pow", "matmul", "outer", "bce", "take", "maximum", "minimum"}


@dataclass
class _Panel:
    title: str
    order: list[Expr]
    forward: set[int]
    captions: dict[int, str]
    removed: set[int] = field(default_factory=set)

    def kind(self, n: Expr) -> str:
        return "forward" if id(n) in self.forward else "gradient"


# ---------------------------------------------------------------------- the model
def _var_name(w) -> str:
    if isinstance(w, tuple):
        return " d".join(_var_name(x) for x in w)
    return w.attrs["vname"] if w.op.name == "var" else (w.name or str(w))


def _forward_roots(e: Expr, seen: set[int]) -> list[Expr]:
    """The forward expressions behind ``e``: ``e`` itself unless it is a recorded derivative."""
    if id(e) in seen:
        return []
    seen.add(id(e))
    o = origin(e)
    if o is None:
        return [e]
    return _forward_roots(o[1], seen)


def _caption(e: Expr, i: int, nforward: int) -> str:
    """``f``, ``dC/dw``, ``d2f/dx dy``: a derivative of an unnamed derivative counts its order
    from the function first differentiated (grad(grad(f, x), y) was captioned df/dy)."""
    o = origin(e)
    if o is None:
        return e.name or ("f" if nforward == 1 else f"f{i + 1}")
    wrts: list[str] = []
    f, seen = e, {id(e)}
    while o is not None:
        kind, f, w = o
        ws = list(w) if isinstance(w, tuple) else [w]
        wrts[:0] = [_var_name(x) for x in ws]
        if f.name or id(f) in seen:  # (a node can be its own derivative: exp(x))
            break
        seen.add(id(f))
        o = origin(f)
    order = f"d{len(wrts)}" if len(wrts) > 1 else "d"
    return f"{order}{f.name or 'f'}/d{' d'.join(wrts)}"


def _check_title(title, what: str) -> None:
    if title is not None and not isinstance(title, str):
        raise TypeError(f"{what}: title must be a string, got {type(title).__name__}")


def _panels(exprs, forward, simplified: bool) -> list[_Panel]:
    outs, _ = as_list(exprs, "to_dot")
    if not outs:
        raise ValueError("to_dot: no expressions given")
    if forward is not None:
        froots, _ = as_list(forward, "to_dot: forward")
        is_fwd = [any(o is r for r in froots) for o in outs]
    else:
        is_fwd = [origin(o) is None for o in outs]
        froots = [o for o, f in zip(outs, is_fwd) if f]
        seen: set[int] = set()
        for o, f in zip(outs, is_fwd):
            if not f:
                froots += _forward_roots(o, seen)
    nfwd = sum(is_fwd)
    captions = {}
    for i, o in enumerate(outs):
        captions.setdefault(id(o), _caption(o, i, nfwd))
    raw = _Panel("as built", topo_order(outs), {id(n) for n in topo_order(froots)}, captions)
    if not simplified:
        return [raw]
    from .simplify import simplify

    souts = simplify(outs)
    sroots = simplify(froots) + froots
    s_fwd = {id(n) for n in topo_order(sroots + [s for s, f in zip(souts, is_fwd) if f])}
    scaps = {}
    for s, o in zip(souts, outs):
        scaps.setdefault(id(s), captions[id(o)])
    simp = _Panel("simplified", topo_order(souts), s_fwd, scaps)
    kept = {id(n) for n in simp.order}
    raw.removed = {id(n) for n in raw.order if id(n) not in kept}
    raw.title = f"as built: {len(raw.order)} nodes"
    simp.title = f"simplified: {len(simp.order)} nodes"
    return [raw, simp]


def _value_text(v) -> str:
    if isinstance(v, np.ndarray):
        if v.size <= 4:
            return np.array2string(v, separator=", ", precision=4).replace("\n", "")
        return "array"
    return fmt_number(v)


def node_label(n: Expr) -> list[str]:
    """The lines a picture shows for a node: its name (or value), its op and its shape."""
    op = n.op.name
    first = _display_name(n)
    if op == "const":
        first = _value_text(n.attrs["value"])
    elif op == "dimsize":
        first = n.attrs["dim"]
    detail = ""
    if op in ("sum", "logsumexp", "softmax", "log_softmax") and n.args and \
            len(n.attrs["axis"]) != n.args[0].ndim:
        ax = n.attrs["axis"]
        detail = f" axis={ax[0] if len(ax) == 1 else ax}"
    elif op == "guard":  # the size checks it keeps (see ops.Guard): "guard n=3"
        cs = n.attrs["checks"]
        detail = " " + ", ".join(f"{c.a}={c.b}" for c in cs[:3]) + (", ..." if len(cs) > 3 else "")
    second = f"{op}{detail} {fmt_shape(n.shape)}"
    return [first, second] if first is not None else [second]


def _labelled(n: Expr, p: _Panel) -> list[str]:
    label = node_label(n)
    cap = p.captions.get(id(n))
    if cap is not None and cap != label[0]:
        label = [f"{cap} ="] + label
    return label


# ---------------------------------------------------------------------- DOT
def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot_panel(p: _Panel, prefix: str, lines: list[str], indent: str) -> None:
    ids = {id(n): f"{prefix}{i}" for i, n in enumerate(p.order)}
    for n in p.order:
        fill, border, style = _style(p, n)
        label = _labelled(n, p)
        cap = p.captions.get(id(n))
        attrs = [f"label={_q(chr(10).join(label))}", f"fillcolor={_q(fill)}",
                 f"color={_q(border)}", f"style={_q(style)}"]
        if cap is not None:
            attrs.append("peripheries=2")
        if id(n) in p.removed:
            attrs.append('fontcolor="#777777"')
        lines.append(f"{indent}{ids[id(n)]} [{', '.join(attrs)}];")
    for n in p.order:
        color = _STYLE[p.kind(n)][1]
        for pos, a in enumerate(n.args):
            extra = f", label={_q(str(pos + 1))}" if n.op.name in _ORDERED else ""
            lines.append(f"{indent}{ids[id(a)]} -> {ids[id(n)]} [color={_q(color)}{extra}];")


def _legend(lines: list[str], kinds: list[str]) -> None:
    lines.append("  subgraph cluster_legend {")
    lines.append('    label="legend"; fontsize=10; color="#bbbbbb";')
    for i, k in enumerate(kinds):
        fill, border, style = _REMOVED if k == "removed" else _STYLE[k]
        lines.append(f"    legend{i} [label={_q(_LEGEND[k])}, fillcolor={_q(fill)}, "
                     f"color={_q(border)}, style={_q(style)}];")
    for i in range(len(kinds) - 1):
        lines.append(f"    legend{i} -> legend{i + 1} [style=invis];")
    lines.append("  }")


def to_dot(exprs, *, forward=None, simplified: bool = False, title: str | None = None) -> str:
    """Graphviz DOT text of the graph of an expression or a list of them (no system dependency).

    Forward nodes and nodes added by the gradient pass are styled apart, with a legend (see the
    module docs for how they are told apart; ``forward=`` names the forward expressions
    explicitly). ``simplified=True`` puts ``sg.simplify`` of the graph beside it.
    """
    _check_title(title, "to_dot")
    panels = _panels(exprs, forward, simplified)
    lines = ["digraph symgrad {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica", '
             'fontsize=11];', '  edge [arrowsize=0.6, fontsize=9, fontcolor="#666666"];']
    if title:
        lines.append(f"  label={_q(title)}; labelloc=t; fontsize=14;")
    if len(panels) == 1:
        _dot_panel(panels[0], "n", lines, "  ")
    else:
        # Graphviz stacks clusters of a left-to-right graph bottom-up: the last one is on top
        for k, p in reversed(list(enumerate(panels))):
            lines.append(f"  subgraph cluster_{k} {{")
            lines.append(f'    label={_q(p.title)}; fontsize=12; color="#bbbbbb";')
            _dot_panel(p, f"p{k}n", lines, "    ")
            lines.append("  }")
    kinds = [k for k in ("forward", "gradient")
             if any(p.kind(n) == k for p in panels for n in p.order)]
    if any(p.removed for p in panels):
        kinds.append("removed")
    _legend(lines, kinds)
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- rendering
def have_graphviz() -> bool:
    """Whether Graphviz's ``dot`` program is on the PATH."""
    return shutil.which("dot") is not None


def _run_dot(dot: str, fmt: str) -> bytes:
    exe = shutil.which("dot")
    if exe is None:
        raise FileNotFoundError("Graphviz's dot program is not on the PATH")
    res = subprocess.run([exe, f"-T{fmt}"], input=dot.encode("utf-8"), capture_output=True,
                         timeout=120, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"dot failed: {res.stderr.decode('utf-8', 'replace').strip()}")
    return res.stdout


def _layout(p: _Panel) -> dict[int, tuple[float, float]]:
    """Layered positions: x = longest path from the inputs (each leaf just before its first
    user), y = order within the layer, by barycentres of the neighbours (a few sweeps)."""
    layer: dict[int, int] = {}
    users: dict[int, list[Expr]] = {}
    for n in p.order:
        layer[id(n)] = 1 + max((layer[id(a)] for a in n.args), default=-1)
        for a in n.args:
            users.setdefault(id(a), []).append(n)
    for n in p.order:
        if not n.args and users.get(id(n)):
            layer[id(n)] = min(layer[id(u)] for u in users[id(n)]) - 1
    layers: dict[int, list[Expr]] = {}
    for n in p.order:
        layers.setdefault(layer[id(n)], []).append(n)
    rank = {id(n): float(i) for nodes in layers.values() for i, n in enumerate(nodes)}

    def sweep(keys, neighbours):
        for k in keys:
            def bary(n):
                ys = [rank[id(m)] for m in neighbours(n)]
                return sum(ys) / len(ys) if ys else rank[id(n)]

            layers[k].sort(key=bary)
            for i, n in enumerate(layers[k]):
                rank[id(n)] = float(i)

    ks = sorted(layers)
    for _ in range(3):
        sweep(ks[1:], lambda n: n.args)
        sweep(ks[-2::-1], lambda n: users.get(id(n), []))
    return {id(n): (float(layer[id(n)]), rank[id(n)] - (len(layers[layer[id(n)]]) - 1) / 2)
            for n in p.order}


def _mpl_figure(panels: list[_Panel], title: str | None):
    try:
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError:
        raise ImportError(
            "sg.draw needs Graphviz's dot program (Debian/Ubuntu: apt-get install graphviz) "
            "or matplotlib (pip install 'symgrad[draw]'); neither was found. sg.to_dot "
            "works without either.") from None
    pos = [_layout(p) for p in panels]
    width = sum(1.25 * (1 + max(x for x, _ in ps.values()) - min(x for x, _ in ps.values()))
                for ps in pos) + 0.5
    height = max(0.6 * (1 + max(abs(y) for _, y in ps.values()) * 2) for ps in pos) + 1.0
    fig = Figure(figsize=(min(max(width, 4), 60), min(max(height, 3), 60)))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, p, ps in zip(axes, panels, pos):
        ax.set_axis_off()
        if len(panels) > 1:
            ax.set_title(p.title, fontsize=11)
        for n in p.order:
            x1, y1 = ps[id(n)]
            color = _STYLE[p.kind(n)][1]
            for a in set(n.args):
                x0, y0 = ps[id(a)]
                ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                            arrowprops={"arrowstyle": "-|>", "color": color, "lw": 0.8,
                                        "shrinkA": 14, "shrinkB": 14})
        for n in p.order:
            x, y = ps[id(n)]
            fill, border, style = _style(p, n)
            label = _labelled(n, p)
            cap = p.captions.get(id(n))
            ax.text(x, y, "\n".join(label), ha="center", va="center", fontsize=8,
                    color="#777777" if id(n) in p.removed else "black",
                    bbox={"boxstyle": "round,pad=0.3", "fc": fill, "ec": border,
                          "ls": "--" if "dashed" in style else (":" if "dotted" in style
                                                                 else "-"),
                          "lw": 2.0 if cap is not None else 1.0})
        xs = [x for x, _ in ps.values()]
        ys = [y for _, y in ps.values()]
        ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
        ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    kinds = [k for k in ("forward", "gradient")
             if any(p.kind(n) == k for p in panels for n in p.order)]
    handles = [Patch(facecolor=_STYLE[k][0], edgecolor=_STYLE[k][1],
                     linestyle="--" if k == "gradient" else "-", label=_LEGEND[k])
               for k in kinds]
    if any(p.removed for p in panels):
        handles.append(Patch(facecolor=_REMOVED[0], edgecolor=_REMOVED[1], linestyle=":",
                             label=_LEGEND["removed"]))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    if title:  # as written: matplotlib reads $...$ as mathtext (Graphviz prints it as it is)
        fig.suptitle(title.replace("$", r"\$"))
    return fig


def _render(exprs, fmt: str, forward, simplified: bool, title, engine: str) -> bytes:
    if engine not in ("auto", "graphviz", "matplotlib"):
        raise ValueError(f"draw: engine must be 'auto', 'graphviz' or 'matplotlib', "
                         f"got {engine!r}")
    if engine == "graphviz" or (engine == "auto" and have_graphviz()):
        return _run_dot(to_dot(exprs, forward=forward, simplified=simplified, title=title), fmt)
    fig = _mpl_figure(_panels(exprs, forward, simplified), title)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, bbox_inches="tight", metadata=_mpl_metadata(fmt))
    return buf.getvalue()


def _mpl_metadata(fmt: str) -> dict:
    # no dates in the files, so that regenerated pictures only change when the graph does
    if fmt == "svg":
        return {"Date": None}
    if fmt == "pdf":
        return {"CreationDate": None}
    return {}


class Picture:
    """An SVG picture; Jupyter shows it (``_repr_svg_``), ``.svg`` is the text."""

    def __init__(self, svg: str):
        self.svg = svg

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return f"<symgrad picture, {len(self.svg)} characters of SVG>"


def draw(exprs, path: str | os.PathLike | None = None, *, forward=None,
         simplified: bool = False, title: str | None = None, engine: str = "auto"):
    """Draw the graph of an expression or a list (e.g. ``[C, *sg.grad(C, params)]``).

    With ``path`` (``.svg``, ``.png``, ``.pdf`` or ``.dot``), writes the picture there and
    returns the path; without, returns a :class:`Picture` (SVG) that Jupyter displays.
    ``engine``: "auto" (Graphviz's ``dot`` when installed, else matplotlib), "graphviz" or
    "matplotlib". ``forward`` and ``simplified`` as in :func:`to_dot`.
    """
    if not as_list(exprs, "draw")[0]:
        raise ValueError("draw: no expressions given")
    _check_title(title, "draw")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"draw: path must be a file name (a str or a path), got "
                        f"{type(path).__name__}")
    if path is None:
        svg = _render(exprs, "svg", forward, simplified, title, engine)
        return Picture(svg.decode("utf-8"))
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    if fmt == "dot" or fmt == "gv":
        data = to_dot(exprs, forward=forward, simplified=simplified, title=title).encode()
    elif fmt in FORMATS:
        data = _render(exprs, fmt, forward, simplified, title, engine)
    else:
        raise ValueError(f"draw: cannot write {path!r}: the file name must end in .svg, .png, "
                         ".pdf, or .dot or .gv (Graphviz's text)")
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:  # a folder of that name, no such folder, no permission
        raise OSError(exc.errno, f"draw: cannot write {path!r}: {exc.strerror or exc}") \
            from None
    return path


def svg_or_none(e: Expr) -> str | None:
    """SVG of ``e``'s graph when Graphviz is installed and the graph is small, else None."""
    if not have_graphviz():
        return None
    if len(topo_order([e])) > SVG_MAX_NODES:
        return None
    try:
        return _run_dot(to_dot(e), "svg").decode("utf-8")
    except (OSError, RuntimeError, subprocess.SubprocessError):
        return None

