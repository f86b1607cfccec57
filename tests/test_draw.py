"""Pictures: DOT text, forward vs gradient styles, the simplified view, both renderers."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys

import numpy as np
import pytest

import symgrad as sg
from symgrad.draw import _STYLE, have_graphviz, node_label

draw_module = importlib.import_module("symgrad.draw")  # sg.draw is the function

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
needs_dot = pytest.mark.skipif(not have_graphviz(), reason="Graphviz's dot is not installed")
needs_mpl = pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed")

NODE = re.compile(r'^\s*(p?\d*n\d+) \[label="((?:[^"\\]|\\.)*)", fillcolor="([^"]+)"', re.M)
EDGE = re.compile(r"^\s*(p?\d*n\d+) -> (p?\d*n\d+)", re.M)


def mlp():
    u, c, w, b, x, y = sg.scalars("du dc dw db dx dy")
    phi = sg.sigmoid(u * x + c).named("dphi")
    mu = sg.sigmoid(w * phi + b).named("dmu")
    C = sg.bce(mu, y)
    return C, [u, c, w, b]


def nodes(dot: str) -> dict[str, tuple[str, str]]:
    return {m.group(1): (m.group(2), m.group(3)) for m in NODE.finditer(dot)}


def test_dot_has_every_node_and_edge_with_op_name_and_shape():
    C, params = mlp()
    gs = sg.grad(C, params)
    dot = sg.to_dot([C] + gs)
    ns = nodes(dot)
    order = sg.topo_order([C] + gs)
    assert len(ns) == len(order) == sg.count_nodes([C] + gs)
    assert len(EDGE.findall(dot)) == sum(len(n.args) for n in order)
    labels = [lab for lab, _ in ns.values()]
    assert any(lab == "dphi\\nsigmoid ()" for lab in labels)
    assert any(lab == "du\\nvar ()" for lab in labels)
    assert dot.startswith("digraph symgrad {") and dot.rstrip().endswith("}")


def test_forward_and_gradient_nodes_are_styled_apart_with_a_legend():
    C, params = mlp()
    gs = sg.grad(C, params)
    dot = sg.to_dot([C] + gs)
    fills = [fill for lab, fill in nodes(dot).values()]
    n_fwd = sg.count_nodes(C)
    n_grad = sg.count_nodes([C] + gs) - n_fwd
    assert n_grad > 0
    assert fills.count(_STYLE["forward"][0]) == n_fwd
    assert fills.count(_STYLE["gradient"][0]) == n_grad
    assert "forward pass" in dot and "added by the gradient pass" in dot
    # each output is marked with what it is
    for name in ("du", "dc", "dw", "db"):
        assert f'label="dC/d{name} =' not in dot  # C is unnamed: it is "f"
        assert f'label="df/d{name} =\\n' in dot


def test_a_gradient_alone_is_drawn_against_its_recorded_forward_graph():
    C, params = mlp()
    g = sg.grad(C, params[0])
    fills = [fill for _, fill in nodes(sg.to_dot(g)).values()]
    shared = [n for n in sg.topo_order([g]) if n in set(sg.topo_order([C]))]
    assert fills.count(_STYLE["forward"][0]) == len(shared) > 0
    assert fills.count(_STYLE["gradient"][0]) == sg.count_nodes(g) - len(shared) > 0


def test_forward_can_be_given_explicitly():
    x = sg.scalar("dq")
    e1 = sg.exp(x)
    e2 = e1 * sg.sin(x)
    dot = sg.to_dot([e2], forward=[e1])
    fills = [fill for _, fill in nodes(dot).values()]
    assert fills.count(_STYLE["forward"][0]) == 2  # dq and exp(dq)
    assert fills.count(_STYLE["gradient"][0]) == 2  # sin and the product


def test_simplified_beside_raw_marks_what_simplification_removed():
    x, y = sg.scalars("dsx dsy")
    f = sg.exp(sg.log(x)) * y
    g = sg.grad(f, x)
    dot = sg.to_dot([f, g], simplified=True)
    raw_n = sg.count_nodes([f, g])
    simp_n = sg.count_nodes(sg.simplify([f, g]))
    assert simp_n < raw_n
    assert f"as built: {raw_n} nodes" in dot
    assert f"simplified: {simp_n} nodes" in dot
    assert "removed by simplify" in dot
    removed = dot.count('color="#8a8a8a", style="rounded,filled,dotted"') - 1  # - the legend
    raw = set(sg.topo_order([f, g]))
    kept = set(sg.topo_order(sg.simplify([f, g])))
    assert removed == len(raw - kept) > 0
    # a removed node keeps the fill that tells forward from gradient
    assert 'fillcolor="#fde2c8", color="#8a8a8a"' in dot


def test_node_labels():
    v = sg.vector("dv", "n")
    s = sg.sum(sg.exp(v), axis=0).named("total")
    assert node_label(s) == ["total", "sum ()"]
    assert node_label(v) == ["dv", "var (n,)"]
    assert node_label(sg.const(2.5)) == ["2.5", "const ()"]
    M = sg.matrix("dM", (2, 3))
    assert node_label(sg.sum(M, axis=1)) == ["sum axis=1 (2,)"]


def test_quoting():
    assert draw_module._q('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


@needs_dot
@pytest.mark.parametrize("fmt, magic", [("svg", b"<svg"), ("png", b"\x89PNG"),
                                        ("pdf", b"%PDF")])
def test_graphviz_renders(tmp_path, fmt, magic):
    C, params = mlp()
    path = tmp_path / f"g.{fmt}"
    out = sg.draw([C] + sg.grad(C, params), path, engine="graphviz")
    assert out == str(path)
    data = path.read_bytes()
    assert magic in data[:2000]


@needs_mpl
@pytest.mark.parametrize("fmt, magic", [("svg", b"<svg"), ("png", b"\x89PNG"),
                                        ("pdf", b"%PDF")])
def test_matplotlib_renders(tmp_path, fmt, magic):
    C, params = mlp()
    path = tmp_path / f"g.{fmt}"
    sg.draw([C] + sg.grad(C, params), path, engine="matplotlib", simplified=fmt == "svg")
    data = path.read_bytes()
    assert magic in data[:2000]


@needs_mpl
def test_auto_falls_back_to_matplotlib_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(draw_module.shutil, "which", lambda name: None)
    C, params = mlp()
    path = tmp_path / "g.svg"
    sg.draw([C] + sg.grad(C, params), path)
    svg = path.read_text()
    assert "<svg" in svg
    assert "added by the gradient pass" in svg  # the legend, as text in the SVG


def test_neither_renderer_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(draw_module.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="apt-get install graphviz.*symgrad\\[draw\\]"):
        sg.draw(sg.scalar("dz") * 2, tmp_path / "g.png")
    # DOT text needs neither
    path = tmp_path / "g.dot"
    sg.draw(sg.scalar("dz") * 2, path)
    assert path.read_text().startswith("digraph")


def test_bad_arguments(tmp_path):
    x = sg.scalar("dbad")
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.pdf, or \.dot or \.gv"):
        sg.draw(x, tmp_path / "g.jpg")
    with pytest.raises(ValueError, match="engine"):
        sg.draw(x, tmp_path / "g.svg", engine="tikz")
    with pytest.raises(ValueError, match="no expressions"):
        sg.to_dot([])


def test_picture_and_repr_svg(monkeypatch):
    x = sg.scalar("drs")
    e = sg.tanh(x) * 2
    if have_graphviz():
        assert "<svg" in e._repr_svg_()
    if have_graphviz() or HAVE_MPL:
        pic = sg.draw(e)
        assert "<svg" in pic._repr_svg_()
    monkeypatch.setattr(draw_module.shutil, "which", lambda name: None)
    assert e._repr_svg_() is None  # Jupyter then shows the LaTeX formula only


@needs_mpl
def test_matplotlib_draws_a_title_with_dollar_signs_as_written():
    x = sg.scalar("x_dl")
    pic = sg.draw(x * x, title=r"$\frac{x$ costs $5", engine="matplotlib")  # mathtext raised
    assert "<svg" in pic.svg


def test_draw_to_a_path_it_cannot_write_names_draw_and_the_path(tmp_path):
    (tmp_path / "pic.dot").mkdir()
    with pytest.raises(OSError, match=r"draw: cannot write '.*pic\.dot'"):
        sg.draw(sg.scalar("x_dp") * 2.0, tmp_path / "pic.dot")


def test_dot_labels_edge_order_captions_guards_and_small_constants():
    """Found by mutation testing: a difference's operands lost their edge labels 1 and 2, the
    captions of several outputs counted from f0, a guard of exactly three checks gained ', ...',
    a named output repeated its name (C =\\nC), and a constant of 4 entries read 'array'."""
    x, y = sg.scalars("x_dd y_dd")
    dot = sg.to_dot(x - y)
    assert re.findall(r'-> n2 \[color="#2b5c8a", label="(\d)"\]', dot) == ["1", "2"], dot
    labels = [m[1] for m in NODE.findall(sg.to_dot([x * y, sg.exp(x)]))]
    assert "f1 =\\nmul ()" in labels and "f2 =\\nexp ()" in labels, labels
    a, b, c = sg.vector("a_dd", "n"), sg.vector("b_dd", "m"), sg.vector("c_dd", "k")
    e = 0 * a + 0 * b + 0 * c + sg.vector("w_dd", 3)
    assert e.op.name == "guard" and len(e.attrs["checks"]) == 3
    assert 'label="f =\\nguard m=n, k=n, n=3 (3,)"' in sg.to_dot(e)
    C = (x * y).named("C_dd")
    assert [m[1] for m in NODE.findall(sg.to_dot(C)) if "mul" in m[1]] == ["C_dd\\nmul ()"]
    v = sg.vector("v_dd", 4)
    labels = [m[1] for m in NODE.findall(sg.to_dot(v * np.array([1.0, 2.0, 3.0, 4.0])))]
    assert "[1., 2., 3., 4.]\\nconst (4,)" in labels, labels


def test_captions_of_higher_derivatives_count_their_order():
    """grad(grad(f, x), y) was captioned df/dy, its gradient wrt x df/dx, and the Hessian
    block H[0][1] (made by a gradient pass) df/dy: each is a derivative of f, not of the
    unnamed gradient it came from."""
    x, y = sg.scalars("x_hc y_hc")
    f = x * x * y + sg.exp(x * y)

    def caption(e):
        return [m[1] for m in NODE.findall(sg.to_dot(e)) if " =\\n" in m[1]][0].split(" =")[0]

    gx = sg.grad(f, x)
    gxy = sg.grad(gx, y)
    assert caption(gx) == "df/dx_hc"
    assert caption(gxy) == "d2f/dx_hc dy_hc"
    assert caption(sg.grad(gxy, x)) == "d3f/dx_hc dy_hc dx_hc"
    assert caption(sg.hessian(f, [x, y])[0][1]) == "d2f/dx_hc dy_hc"
    assert caption(sg.hessian(f, x)) == "d2f/dx_hc dx_hc"
    # a named derivative is where the count starts again
    assert caption(sg.grad(gx.named("g_hc"), y)) == "dg_hc/dy_hc"
    C = (x * sg.tanh(y)).named("C_hc")
    assert caption(sg.grad(sg.grad(C, y), x)) == "d2C_hc/dy_hc dx_hc"


def test_the_simplified_view_keeps_forward_values_forward_and_comes_first():
    """Found by mutation testing: exp(x), a forward value the simplified gradient uses, drawn in
    the gradient's style; and the panels' clusters written in the other order."""
    x, y = sg.scalars("x_sv y_sv")
    f = sg.exp(x) * sg.exp(x) + sg.log(sg.exp(y))
    dot = sg.to_dot([f, *sg.grad(f, [x, y])], simplified=True)
    assert re.findall(r"subgraph (cluster_\w+)", dot) == ["cluster_1", "cluster_0",
                                                          "cluster_legend"]
    simp = dot.split("subgraph cluster_0")[0]
    exps = [fill for _, label, fill in NODE.findall(simp) if label == "exp ()"]
    assert exps == [_STYLE["forward"][0]] * 2, simp


def test_matplotlib_layout_puts_a_leaf_just_before_its_first_user():
    # (mutation testing: a leaf placed one layer before its last user, x right of exp(x))
    from symgrad.draw import _layout, _panels
    x, y = sg.scalars("x_ml y_ml")
    p = _panels(sg.tanh(sg.exp(x) * y) + x, None, False)[0]
    at = {n.attrs.get("vname", n.op.name): _layout(p)[id(n)] for n in p.order}
    assert at == {"x_ml": (0.0, 0.0), "exp": (1.0, -0.5), "y_ml": (1.0, 0.5),
                  "mul": (2.0, 0.0), "tanh": (3.0, 0.0), "add": (4.0, 0.0)}


def test_draw_writes_dot_text_to_a_gv_file(tmp_path):
    # (mutation testing: .gv, Graphviz's other extension, refused)
    path = tmp_path / "g.gv"
    assert sg.draw(sg.exp(sg.scalar("x_gv")), path) == str(path)
    assert path.read_text() == sg.to_dot(sg.exp(sg.scalar("x_gv")))
