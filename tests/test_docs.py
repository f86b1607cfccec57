"""The docs cannot drift from the code: their examples run, print what they show, and build.

See tests/docs_blocks.py for the conventions (```python, ```output, ```console blocks) and for
``python -m tests.docs_blocks --update`` to rewrite the shown outputs.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import subprocess
import sys

import pytest

from symgrad.draw import have_graphviz
from tests.docs_blocks import ROOT, blocks, doc_files, needs, run_file

FILES = doc_files()


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_examples_run_and_print_what_the_docs_show(path, tmp_path):
    wanted = needs(path.read_text())
    if "draw" in wanted and not (have_graphviz() or importlib.util.find_spec("matplotlib")):
        pytest.skip("the page draws pictures: needs Graphviz's dot or matplotlib")
    missing = sorted(m for m in wanted - {"draw"} if importlib.util.find_spec(m) is None)
    if missing:  # an optional extra (pip install -e ".[dev]" has them all; CI installs it)
        pytest.skip(f"the page's examples need {', '.join(missing)}, not installed")
    for r in run_file(path, tmp_path):
        if r.actual != r.expected:
            diff = "\n".join(difflib.unified_diff(r.expected.split("\n"), r.actual.split("\n"),
                                                  "shown in the docs", "printed now",
                                                  lineterm=""))
            pytest.fail(f"{path.relative_to(ROOT)}, line {r.block.start + 1}: the output "
                        f"differs (python -m tests.docs_blocks --update rewrites it)\n{diff}")


def test_the_api_page_documents_what_sg_exports_and_nothing_else():
    """api.md says everything on it is ``sg.<name>`` (but the CLI's entry point): it listed
    sg.origin, which was not, and left out sg.save, sg.zero_reason and a dozen functions."""
    import symgrad as sg

    listed = re.findall(r"^::: symgrad\.([\w.]+)$", (ROOT / "docs" / "api.md").read_text(), re.M)
    names = {entry.rsplit(".", 1)[1] for entry in listed if entry != "cli.main"}
    assert names - set(sg.__all__) == set(), "documented but not sg.<name>"
    assert set(sg.__all__) - names == set(), "exported but not on the API page"


def test_the_docs_have_examples():
    langs = [b.lang for f in FILES for b in blocks(f.read_text())]
    assert langs.count("python") >= 20
    assert langs.count("output") >= 15
    assert langs.count("console") >= 8


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?(\S+\.md)\s*$",
                     (ROOT / "mkdocs.yml").read_text(), re.M)
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert set(nav) == pages
    for name in ("matrix-calculus.md", "performance.md", "running-at-scale.md",
                 "architecture.md", "api.md", "index.md"):
        assert name in nav


def test_the_scalar_mlp_picture_is_regenerated_by_its_script(tmp_path):
    if not (have_graphviz() or importlib.util.find_spec("matplotlib")):
        pytest.skip("neither Graphviz's dot nor matplotlib is installed")
    res = subprocess.run([sys.executable, str(ROOT / "docs" / "make_figures.py"),
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    svg = (tmp_path / "scalar_mlp.svg").read_text()
    assert "<svg" in svg and "added by the gradient pass" in svg
    assert (ROOT / "docs" / "img" / "scalar_mlp.svg").exists()
    for page in ("index.md", "guide/lecture.md", "guide/pictures.md"):
        assert "img/scalar_mlp.svg" in (ROOT / "docs" / page).read_text()


def test_mkdocs_build_strict(tmp_path):
    for mod in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(mod.split(".")[0]) is None:
            pytest.skip(f"{mod} is not installed (pip install 'symgrad[docs]')")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                          "--site-dir", str(tmp_path / "site")], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "check_grad" in api and "The largest relative error" in api
