"""The command line: each subcommand's output, checked against symgrad itself; errors exit 2.

Most tests call ``symgrad.cli.main`` in this process with variable names of their own (names
given to nodes are global to a process); two run ``python -m symgrad`` for real.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

import symgrad as sg
from symgrad.cli import main
from symgrad.draw import have_graphviz
from symgrad.parse import parse

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def definitions(lines):
    """'where a1 = ...' lines as parser text: 'a1 = ...; f = ...'."""
    parts = []
    for line in lines:
        m = re.match(r"^(?:where|     ) (\w+)\s* = (.*)$", line)
        if m:
            parts.append(f"{m.group(1)} = {m.group(2)}")
    return parts


def test_grad_prints_each_derivative_simplified(capsys):
    expr = "sigmoid(gw*sigmoid(gu*gx + gc) + gb)"
    rc, out, err = run(capsys, "grad", expr, "--wrt", "gu,gc,gw,gb")
    assert rc == 0 and err == ""
    lines = out.strip().split("\n")
    assert lines[0] == "where a1 = sigmoid(gu*gx + gc)"
    assert lines[1] == "      f  = sigmoid(gw*a1 + gb)"
    derivs = [ln for ln in lines if ln.startswith("df/d")]
    assert [d.split(" = ")[0] for d in derivs] == ["df/dgu", "df/dgc", "df/dgw", "df/dgb"]
    assert derivs[3] == "df/dgb = f*(1 - f)"
    # the printed formulas, read back, are the gradients
    f = parse(expr)
    names = sg.scalars("gu gc gw gb gx")
    at = dict(zip(names, (0.3, -0.2, 1.1, 0.4, 0.9)))
    want = sg.evaluate(sg.grad(f, list(names[:4])), at)
    prefix = "; ".join(definitions(lines))
    for line, w in zip(derivs, want):
        back = parse(prefix + "; " + line.split(" = ", 1)[1])
        assert sg.evaluate(back, at) == pytest.approx(w, rel=1e-12)


def test_grad_with_names_latex_raw_and_explain(capsys):
    expr = "hphi = sigmoid(hu*hx + hc); hmu = sigmoid(hw*hphi + hb); C = bce(hmu, hy)"
    rc, out, _ = run(capsys, "grad", expr, "--wrt", "hw,hb")
    assert rc == 0
    assert out == "dC/dhw = (hmu - hy)*hphi\ndC/dhb = hmu - hy\n"
    rc, out, _ = run(capsys, "grad", expr, "--wrt", "hb", "--latex")
    assert out.strip() == r"\frac{\partial C}{\partial \mathrm{hb}} = \mathrm{hmu} - \mathrm{hy}"
    rc, out, _ = run(capsys, "grad", expr, "--wrt", "hb", "--raw")
    assert out.startswith("dC/dhb = ")
    rc, out, _ = run(capsys, "grad", expr, "--wrt", "hw", "--explain")
    assert "dC/dhw = dC/dhmu * dhmu/d(hmu_pre) * d(hmu_pre)/dhw" in out
    assert "delta_hmu_pre" in out


def test_grad_wrt_values_the_formula_names(capsys):
    # --wrt phi,mu printed 0 "does not depend on": the names were taken for new variables
    expr = "phi = sigmoid(u*x + c); mu = sigmoid(w*phi + b); C = bce(mu, y)"
    rc, out, err = run(capsys, "grad", expr, "--wrt", "phi,mu")
    assert rc == 0 and err == ""
    assert out.splitlines() == ["dC/dphi = (mu - y)*w", "dC/dmu = (mu - y)/(mu*(1 - mu))"]
    rc, out, err = run(capsys, "grad", expr, "--wrt", "phi,zz")
    assert rc == 2 and "--wrt: zz is not a variable or a named value of the expression" in err


def test_automatic_names_skip_the_formulas_own_names(capsys):
    # 'where a1 = sigmoid(u*x + c)' redefined the user's a1 = tanh(x): the printed gradient
    # read, with its where line, as another formula (names of its own: names are global)
    expr = "a1 = tanh(xn); sigmoid(wn*sigmoid(un*xn + cn) + bn)*a1"
    rc, out, err = run(capsys, "grad", expr, "--wrt", "un,wn", "--raw")
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "where a2 = sigmoid(un*xn + cn)"
    assert lines[-1] == "df/dwn = a1*a3*(1 - a3)*a2"
    defs = "; ".join(["a1 = tanh(xn)"] + definitions(lines))
    env = {"un": 0.3, "cn": -0.2, "wn": 0.7, "bn": 0.1, "xn": 0.9}
    printed = parse(f"{defs}; g = {lines[-1].split(' = ', 1)[1]}")  # read as the user would
    f = parse(expr)
    (w_var,) = [v for v in sg.variables(f) if v.attrs["vname"] == "wn"]
    values = {v: env[v.attrs["vname"]] for v in sg.variables(f)}
    assert sg.evaluate(printed, {v: env[v.attrs["vname"]] for v in sg.variables(printed)}) == \
        pytest.approx(sg.evaluate(sg.grad(f, w_var), values), rel=1e-12)


def test_a_long_derivative_reads_value_first_then_its_temporaries(capsys):
    # the first temporary stood after "df/dx =": df/dx = t1 = x**2 + 0.5 read as the value
    expr = ("log(1 + exp(xl*yl*sin(xl)))*cos(xl*yl)*tanh(xl**2 + yl*xl)/(1 + xl**2)**1.5"
            "*softplus(yl - xl)*exp(-xl)*sigmoid(xl*yl)/(xl**2 + 0.5)")
    rc, out, err = run(capsys, "grad", "--wrt", "xl", "--", expr)
    assert rc == 0 and err == ""
    lines = out.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith("df/dxl = "))
    assert lines[i].count(" = ") == 1 and lines[i + 1].startswith("  where t1 = ")
    temps = [lines[i + 1].removeprefix("  where ")] + [ln.strip() for ln in lines[i + 2:]]
    defs = definitions(lines[:i]) + temps + ["g = " + lines[i].split(" = ", 1)[1]]
    printed = parse("; ".join(defs))
    env = {"xl": 0.7, "yl": -0.4}
    f = parse(expr)
    (x_var,) = [v for v in sg.variables(f) if v.attrs["vname"] == "xl"]
    assert sg.evaluate(printed, {v: env[v.attrs["vname"]] for v in sg.variables(printed)}) == \
        pytest.approx(sg.evaluate(sg.grad(f, x_var), {v: env[v.attrs["vname"]]
                                                      for v in sg.variables(f)}), rel=1e-9)


def test_wrt_repeats_and_a_caret_says_to_write_two_stars(capsys):
    rc, out, err = run(capsys, "grad", "xr*yr*zr", "--wrt", "xr", "--wrt", "yr,zr")
    assert rc == 0 and out.splitlines() == ["df/dxr = zr*yr", "df/dyr = zr*xr", "df/dzr = xr*yr"]
    rc, out, err = run(capsys, "grad", "xr^2")
    assert rc == 2 and "operator ^ is not allowed; write ** for a power (x**2)" in err


def test_variables_folded_away_as_the_formula_was_built(capsys):
    # x - x is 0 when built: "x is not a variable of the expression" refused valid input
    assert run(capsys, "eval", "xf - xf", "xf=1")[:2] == (0, "0.0\n")
    assert run(capsys, "eval", "xf*0 + yf", "xf=1", "yf=2")[:2] == (0, "2.0\n")
    rc, out, err = run(capsys, "grad", "xf*0 + yf", "--wrt", "xf,yf")
    assert rc == 0 and out.splitlines()[0].startswith("df/dxf = 0 [zero: ")
    rc, out, err = run(capsys, "eval", "xf*2", "xf=3", "xf=4")
    assert rc == 2 and "xf is given twice" in err


def test_grad_default_wrt_is_every_variable(capsys):
    rc, out, _ = run(capsys, "grad", "ia*ib + ib")
    lines = out.strip().split("\n")
    assert [ln.split(" = ")[0] for ln in lines] == ["df/dia", "df/dib"]
    assert lines[0] == "df/dia = ib"


def test_hessian_prints_the_matrix(capsys):
    rc, out, _ = run(capsys, "hessian", "jx**2*jy + exp(jx*jy)", "--wrt", "jx,jy")
    assert rc == 0
    lines = out.strip().split("\n")
    assert lines[0] == "Hessian of f with respect to (jx, jy):"
    cells = [re.split(r"\s{3,}", ln.strip()[2:-2].strip()) for ln in lines[1:]]
    assert [len(r) for r in cells] == [2, 2]
    jx, jy = sg.scalars("jx jy")
    H = sg.hessian(parse("jx**2*jy + exp(jx*jy)"), [jx, jy])
    at = {jx: 0.4, jy: -0.7}
    for i in range(2):
        for j in range(2):
            assert sg.evaluate(parse(cells[i][j]), at) == pytest.approx(
                sg.evaluate(H[i][j], at), rel=1e-12)
    assert cells[0][1] == cells[1][0]
    rc, out, _ = run(capsys, "hessian", "jx**2*jy + exp(jx*jy)", "--wrt", "jx,jy", "--latex")
    assert out.startswith(r"\nabla^2_{\mathrm{jx}, \mathrm{jy}} f = \begin{pmatrix}")


def test_hessian_of_vector_variables(capsys):
    rc, out, _ = run(capsys, "hessian", "sum(log(1 + exp(-ky * (kX @ kw))))",
                     "--matrix", "kX:m,n", "--vector", "kw:n", "--vector", "ky:m", "--wrt", "kw")
    assert rc == 0
    assert out.startswith("d2f/dkw dkw = ") and out.rstrip().endswith("shape (n, n)")


def test_index_notation_of_matrix_derivatives(capsys):
    """--index: a Hessian with respect to a matrix as a textbook writes it (the journey
    found no way to get it from the command line)."""
    rc, out, _ = run(capsys, "hessian", "-sum(iY*log_softmax(iX@iW, axis=1))", "--matrix",
                     "iX:N,d", "--matrix", "iY:N,K", "--matrix", "iW:d,K", "--wrt", "iW",
                     "--index")
    assert rc == 0
    assert out.splitlines()[0] == ("d2f_diW_diW[i, j, k, l] = Σ_n (δ[j, l] - P[n, l]) P[n, j] "
                                   "iX[n, i] iX[n, k] s[n]")
    assert "  where P = softmax(iX iW, axis=1)" in out and "I(" not in out
    rc, out, _ = run(capsys, "grad", "sum(tanh(iX@iW))", "--matrix", "iX:N,d", "--matrix",
                     "iW:d,K", "--wrt", "iW", "--index", "--latex")
    assert rc == 0 and out.startswith(r"{\mathrm{df}_{diW}}_{i j} = \sum_{n}")
    # a name of the formula's is not taken (it fell back to F, losing which derivative)
    rc, out, _ = run(capsys, "grad", "ix*df_dix + iy*iz", "--wrt", "ix,iy", "--index")
    assert out == "df_dix_2 = df_dix\ndf_diy = iz\n"
    rc, out, _ = run(capsys, "hessian", "ix**2*iy", "--wrt", "ix,iy", "--index")
    assert out == "d2f_dix_dix = 2 iy\nd2f_dix_diy = 2 ix\nd2f_diy_dix = 2 ix\nd2f_diy_diy = 0\n"


def test_eval(capsys):
    assert run(capsys, "eval", "lx*ly + 1", "lx=2", "ly=3")[1] == "7.0\n"
    rc, out, _ = run(capsys, "eval", "sum(lw*lv)", "--vector", "lw:3", "--vector", "lv:n",
                     "lw=1,2,3", "lv=1,1,2")
    assert out == "9.0\n"
    rc, out, _ = run(capsys, "eval", "lM @ lv", "--matrix", "lM:2,2", "--vector", "lv:n",
                     "lM=1,2;3,4", "lv=1,1")
    assert out == "[3.0, 7.0]\n"
    rc, out, _ = run(capsys, "eval", "lN @ lv", "--matrix", "lN:2,3", "--vector", "lv:3",
                     "lN=1,2,3;4,5,6", "lv=1,0,0")  # (not square: rows are rows)
    assert out == "[1.0, 4.0]\n"


def test_eval_prints_arrays_whole_and_exact(capsys):
    # numpy's printing rounded to 8 digits ([0.33333333, ...]) and cut 1,001 entries to "..."
    rc, out, _ = run(capsys, "eval", "pw/3 + 1e-9", "--vector", "pw:2", "pw=1,2")
    assert out == f"[{1 / 3 + 1e-9!r}, {2 / 3 + 1e-9!r}]\n"
    rc, out, _ = run(capsys, "eval", "pw*1", "--vector", "pw:1001",
                     "pw=" + ",".join(str(k) for k in range(1001)))
    assert out.count(",") == 1000 and "..." not in out and "1000.0]" in out
    rc, out, _ = run(capsys, "eval", "pM*pM", "--matrix", "pM:2,2", "pM=1e-20,2;-0.0,3")
    assert out == "[[1e-40, 4.0],\n [0.0, 9.0]]\n"


def test_draw(capsys, tmp_path):
    rc, out, _ = run(capsys, "draw", "tanh(mw*mx + mb)", "--wrt", "mw,mb")
    assert rc == 0 and out.startswith("digraph symgrad {")
    assert "added by the gradient pass" in out and "df/dmw =" in out
    target = tmp_path / "graph.svg"
    rc, out, err = run(capsys, "draw", "tanh(mw*mx + mb)", "--wrt", "mw,mb", "-o", str(target))
    import importlib.util

    if have_graphviz() or importlib.util.find_spec("matplotlib"):
        assert rc == 0 and out == f"wrote {target}\n"
        assert "<svg" in target.read_text()
    else:
        assert rc == 2 and "apt-get install graphviz" in err


def test_lecture(capsys):
    rc, out, _ = run(capsys, "lecture")
    assert rc == 0
    assert out.count("   equal\n") == 4 and "DIFFERENT" not in out
    assert "dC/dw = (mu - y)*phi" in out
    assert "dC/du = dC/dmu * dmu/d(mu_pre) * d(mu_pre)/dphi * dphi/d(phi_pre) * d(phi_pre)/du" \
        in out
    from symgrad.lecture import scalar_mlp

    m = scalar_mlp()
    gs = sg.grad(m["C"], [m[k] for k in "ucwb"])
    assert f"the forward graph of C:                 {sg.count_nodes(m['C'])} nodes" in out
    assert f"one graph:    {sg.count_nodes([m['C']] + gs)} nodes" in out
    assert "(1) dC/dU = " in out and "(2) dC/dc = " in out
    assert "delta_phi_pre = delta_mu_pre" in out
    rc, out, _ = run(capsys, "lecture", "--latex")
    assert rc == 0 and r"\delta_{\mu_{pre}}" in out
    # formulas in LaTeX throughout: inside prose between $...$ (a probe found plain text)
    assert r"$\mu - y$ is one node" in out and r"C   = \operatorname{bce}\left(\mu, y\right)" in out


@pytest.mark.parametrize("argv, words", [
    (["grad", "__import__('os').system('touch pwned')"], "column 1"),
    (["grad", "nx + * 2"], "column 6: syntax error"),
    (["grad", "nx.__class__"], "attribute access"),
    (["grad", "nv @ nu", "--vector", "nv:3", "--vector", "nu:4"], "(3,) and (4,)"),
    (["grad", "nv", "--vector", "nv:3"], "must be a scalar"),
    (["grad", "nx", "--vector", "nv"], "--vector 'nv': no sizes given"),
    (["grad", "nx", "--matrix", "nM:3"], "two sizes"),
    (["grad", "sum(nv)", "--vector", "nv:-3"], "size '-3' is not a size"),  # identifier
    # (a superscript digit escaped int()'s message; 3.0 was "not a valid identifier")
    (["grad", "sum(nv)", "--vector", "nv:\u00b2"], "size '\u00b2' is not a size"),
    (["grad", "sum(nv)", "--vector", "nv:3.0"], "size '3.0' is not a size (a whole number"),
    (["grad", "nx", "--vector", "nv:3", "--vector", "nv:4"], "declared twice"),
    (["eval", "nx*ny", "nx=1"], "no value given for ny"),
    (["eval", "nx", "nx=abc"], "not a number"),
    (["eval", "sum(nv)", "--vector", "nv:2", "nv=1,2;3,4"], "nv is a vector"),  # dropped 3,4
    (["eval", "nx", "nx"], "write NAME=VALUE"),
    (["eval", "nx", "=2"], "'=2': write NAME=VALUE"),  # said " is not a variable"
    (["grad", "nx*ny", "--wrt", "nx,ny,nx"], "--wrt: nx is listed twice"),  # printed df/dx twice
    (["grad", "nx*ny", "--wrt", "nx,,ny"], "--wrt: an empty name in 'nx,,ny'"),  # skipped
    (["grad", "nx*ny", "--wrt", "nx", "--wrt", ""], "--wrt: an empty name in ''"),
    (["eval", "nx", "nq=1", "nx=2"], "nq is not a variable"),
    (["draw", "nx", "-o", "g.jpg"], ".svg, .png, .pdf, or .dot or .gv"),
    # these escaped as a traceback (IndexError, FileNotFoundError)
    (["eval", "take(nv, ni)", "--vector", "nv:3", "nv=1,2,3", "ni=7"], "take: index 7.0"),
    (["draw", "nx", "-o", "no_such_dir/g.dot"], "cannot write 'no_such_dir/g.dot': No such file"),
])
def test_errors_are_one_line_with_status_2(capsys, argv, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"symgrad {argv[0]}: error: ")
    assert words in err
    assert not (tmp_path / "pwned").exists()


def test_a_file_that_cannot_be_written_is_said_once(capsys, tmp_path):
    # said "cannot write 'x': draw: cannot write 'x': No such file ..."
    target = str(tmp_path / "no_such_dir" / "g.dot")
    rc, out, err = run(capsys, "draw", "nx", "-o", target)
    assert rc == 2 and out == ""
    assert err == (f"symgrad draw: error: cannot write {target!r}: "
                   f"No such file or directory\n")


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["grad", "ox", "--bogus"])
    assert info.value.code == 2


@pytest.mark.parametrize("argv, extra", [
    (["eval", "ox+oy", "ox=1", "--wrt", "ox"], "--wrt ox"),
    (["grad", "ox", "--bogus"], "--bogus"),
    (["lecture", "--foo"], "--foo"),
])
def test_an_unknown_option_gets_its_commands_usage(capsys, argv, extra):
    # printed symgrad's own usage and "symgrad: error:", which hides the command's options
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"usage: symgrad {argv[0]} [-h]")
    assert err.endswith(f"symgrad {argv[0]}: error: unrecognized arguments: {extra}\n")
    assert "Traceback" not in err
    with pytest.raises(SystemExit):  # one before the command is symgrad's own
        main(["--bogus", "grad", "ox"])
    err = capsys.readouterr().err
    assert err.startswith("usage: symgrad [-h]") and "symgrad: error: unrecognized" in err


def test_a_formula_starting_with_a_minus_sign_gets_a_hint(capsys):
    # argparse reads "-x*y" as an option and said only that the expression was missing
    with pytest.raises(SystemExit) as info:
        main(["grad", "-x*y", "--wrt", "x"])
    assert info.value.code == 2
    assert "goes last, after '--'" in capsys.readouterr().err
    assert run(capsys, "grad", "--wrt", "x", "--", "-x*y")[:2] == (0, "df/dx = -y\n")


def test_python_dash_m_symgrad(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ok = subprocess.run([sys.executable, "-m", "symgrad", "eval", "x*y + 1", "x=2", "y=3"],
                        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "7.0\n", "")
    bad = subprocess.run([sys.executable, "-m", "symgrad", "grad",
                          "__import__('os').system('touch pwned')"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("symgrad grad: error: column 1: ")
    assert not (tmp_path / "pwned").exists()


def test_console_script_is_declared():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["symgrad"].split(":")
    assert getattr(import_module(module), func) is main


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"symgrad {sg.__version__}"


def test_eval_warnings_are_one_line_each(capsys):
    # numpy's RuntimeWarnings reached stderr with the runtime's file, line and source line
    rc, out, err = run(capsys, "eval", "log(xw) + xw/xw", "xw=0")
    assert rc == 0 and out == "nan\n"
    assert sorted(err.splitlines()) == ["symgrad eval: warning: divide by zero encountered in log",
                                        "symgrad eval: warning: invalid value encountered in "
                                        "divide"]


def test_names_read_as_python_reads_them(capsys):
    """Python reads the micro sign µ as the Greek μ (NFKC): a vector declared µ became a new
    scalar in the formula, and --wrt µ or µ=2 named nothing."""
    code, out, _ = run(capsys, "grad", "sum(µ*µ)", "--vector", "µ:3")
    assert code == 0 and out.strip() == "df/dµ = 2 µ"
    code, out, _ = run(capsys, "grad", "µ*x", "--wrt", "µ")
    assert code == 0 and out.strip() == "df/dμ = x"
    code, out, _ = run(capsys, "eval", "µ*x", "µ=2", "x=3")
    assert code == 0 and out.strip() == "6.0"
    e = parse("sum(µ*µ)", {"µ": sg.vector("µ", 3)})
    assert e.shape == () and sg.variables(e)[0].shape == (3,)


def test_eval_refuses_a_value_for_a_named_value(capsys):
    code, _, err = run(capsys, "eval", "h = 2; h*y", "y=3", "h=5")  # h=5 was dropped silently
    assert code == 2 and "h is a named value the expression defines, not a variable" in err


def test_draw_of_a_constant_formula_draws_its_graph(capsys):
    code, out, _ = run(capsys, "draw", "2*3")  # "no variables to differentiate" before
    assert code == 0 and out.startswith("digraph symgrad {")


def test_the_default_wrt_keeps_variables_the_formula_folds_away(capsys):
    """--help says every variable, in the order they appear; x - x said 'the expression has no
    variables to differentiate with respect to', and x*0 + y printed df/dy alone."""
    rc, out, _ = run(capsys, "grad", "x - x")
    assert rc == 0 and out.strip() == "df/dx = 0 [zero: f does not depend on x]"
    rc, out, _ = run(capsys, "grad", "x*0 + y")
    assert rc == 0 and [ln.split(" =")[0] for ln in out.strip().splitlines()] == \
        ["df/dx", "df/dy"]
    rc, out, _ = run(capsys, "grad", "h = x*0; h + y")  # a named value is not a variable
    assert rc == 0 and [ln.split(" =")[0] for ln in out.strip().splitlines()] == \
        ["df/dx", "df/dy"]


def test_where_lines_name_only_what_the_printed_derivatives_repeat(capsys):
    """Found by mutation testing: counting through named values (qp prints as qp) added an
    unused 'where a1 = sigmoid(qu*qx + qc)'; and a long activation the derivative uses once
    stays in place ('where a1 = tanh(ru*rx + rc)' and 'df/drw = a1' read worse)."""
    rc, out, err = run(capsys, "grad", "qp = sigmoid(qu*qx + qc)*2; qp*qp*qw", "--wrt", "qw")
    assert (rc, out, err) == (0, "df/dqw = qp**2\n", "")
    rc, out, err = run(capsys, "grad", "tanh(ru*rx + rc)*rw", "--wrt", "rw")
    assert (rc, out, err) == (0, "df/drw = tanh(ru*rx + rc)\n", "")


def test_index_name_skips_a_variable_the_derivative_does_not_use(capsys):
    # found by mutation testing: the derivative 2 qX does not contain df_dqX, but the formula
    # does: printing df_dqX[i, j] = ... read as a second definition of the variable df_dqX
    rc, out, err = run(capsys, "grad", "sum(qX*qX) + sum(df_dqX)", "--matrix", "qX:2,3",
                       "--matrix", "df_dqX:2,3", "--wrt", "qX", "--index")
    assert (rc, out, err) == (0, "df_dqX_2[i, j] = 2 qX[i, j]\n", "")


def test_an_activation_the_simplified_derivative_repeats_gets_a_where_line(capsys):
    """(a review) sigmoid'(z) is one node, and simplified it is s(z) (1 - s(z)): counting the
    derivative as derived, df/db printed the outer sigmoid twice in full, while --wrt u,c,w,b
    printed f*(1 - f). --raw prints the derivative as derived, where it occurs once."""
    f = "sigmoid(sw*sigmoid(su*sx + sc) + sb)"
    rc, out, err = run(capsys, "grad", f, "--wrt", "sb")
    assert (rc, err) == (0, "")
    assert out == ("where a1 = sigmoid(su*sx + sc)\n      f  = sigmoid(sw*a1 + sb)\n"
                   "df/dsb = f*(1 - f)\n")
    rc, out, err = run(capsys, "grad", f, "--wrt", "sb", "--raw")
    assert out.startswith("df/dsb = ") and "where" not in out


def test_a_value_too_large_for_a_float_is_an_error_as_in_the_formula(capsys):
    # "1e400" in the formula is "number too large"; x=1e400 was read as inf without a word
    for spec in ("x=1e400", "x=-1e999", "x=1,1e400"):
        rc, out, err = run(capsys, "eval", "x*2", spec, *(["--vector", "x:2"] if "," in spec
                                                          else []))
        assert rc == 2 and "too large for a float" in err and not out
    rc, out, _ = run(capsys, "eval", "x*2", "x=-inf")
    assert rc == 0 and out.strip() == "-inf"
