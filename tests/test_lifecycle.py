"""symgrad over time and across threads: sg.evaluate's cache, the collector's pauses, lazily
compiled versions. Found by a probe of threads and memory."""

from __future__ import annotations

import gc
import importlib
import importlib.util
import re
import sys
import threading
import weakref

import numpy as np
import pytest

import symgrad as sg

sg_compile = importlib.import_module("symgrad.compile")  # (sg.compile is the function)


class _LockedOnly(dict):
    """A stand-in for evaluate's cache that checks every use holds the cache's lock."""

    def _check(self):
        assert sg_compile._CACHE_LOCK.locked(), "evaluate's cache used without its lock"

    def get(self, *a):
        self._check()
        return super().get(*a)

    def __setitem__(self, k, v):
        self._check()
        super().__setitem__(k, v)

    def move_to_end(self, k, last=True):
        self._check()
        v = self.pop(k)
        super().__setitem__(k, v)

    def popitem(self, last=True):
        self._check()
        k = next(iter(self))
        return k, self.pop(k)


def test_evaluates_cache_is_used_under_its_lock(monkeypatch):
    """A lookup raced another thread's eviction: move_to_end raised KeyError (8 threads over
    70 graphs, a few times in 10^5 calls)."""
    monkeypatch.setattr(sg_compile, "_CACHE", _LockedOnly())
    monkeypatch.setattr(sg_compile, "_CACHE_SIZE", 2)
    x = sg.scalar("x_lock")
    exprs = [sg.sin(x) * k + k for k in range(4)]
    for _ in range(2):
        for k, e in enumerate(exprs):
            assert sg.evaluate(e, {x: 0.5}) == np.sin(0.5) * k + k


def test_evaluate_keeps_no_graph_of_big_constants():
    """A minibatch lifted to a constant at each step stayed in the cache with its graph: 64
    minibatches held (6.4 GB for batches of 100 MB)."""
    w = sg.vector("w_big", 1000)
    batch = sg.const(np.random.default_rng(0).random((250, 1000)))  # 2 MB
    gone = weakref.ref(batch.attrs["value"])  # the array the graph holds
    loss = sg.sum(sg.softplus(batch @ w))
    assert sg.evaluate(loss, {w: np.zeros(1000)}) == pytest.approx(np.log(2.0) * 250)
    del batch, loss
    gc.collect()
    assert gone() is None
    small = sg.sum(sg.const(np.ones(3)) * sg.vector("w_small", 3))  # small ones are kept
    sg.evaluate(small, {sg.vector("w_small", 3): np.ones(3)})
    assert any(entry[0][0] is small for entry in sg_compile._CACHE.values())


def test_an_interrupt_just_after_the_collector_is_paused_leaves_it_on():
    """A KeyboardInterrupt landing between gc.disable() and the code that enables it again
    (in no_gc's __enter__, or before walk's try) left the collector off for good."""
    assert gc.isenabled()
    x = sg.scalar("x_gc")
    f = sg.sin(x) * x
    calls = [lambda: sg.grad(f, x), lambda: str(f), lambda: sg.compile(f, [x]),
             lambda: sg.simplify(f), lambda: sg.hessian(f * f, x)]
    for call in calls:
        for nth in range(1, 4):  # the first, second and third pause of the call
            count = [0]

            def interrupt(frame, event, arg, nth=nth, count=count):
                # (symgrad's own pauses only: another library's finalizer may run meanwhile)
                if event == "c_return" and arg is gc.disable and \
                        "symgrad" in frame.f_code.co_filename:
                    count[0] += 1
                    if count[0] == nth:
                        sys.setprofile(None)
                        raise KeyboardInterrupt

            sys.setprofile(interrupt)
            try:
                call()
            except KeyboardInterrupt:
                pass
            finally:
                sys.setprofile(None)
            assert gc.isenabled(), (nth, call)


def test_threads_making_the_first_call_at_once_build_one_version():
    """Each thread making the first call built the lazy version itself and appended it to
    fn.source, which listed the same function up to 9 times."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        a, c = sg.scalars("a_first c_first")
        for _ in range(10):
            fn = sg.compile(sg.grad(a * sg.sin(c) ** 2 * sg.exp(a * c), [a, c]), [a, c])
            barrier = threading.Barrier(8)
            results = []

            def call(fn=fn, barrier=barrier, results=results):
                barrier.wait()
                results.append(fn(np.ones(3), np.ones(3)))

            threads = [threading.Thread(target=call) for _ in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            assert re.findall(r"def (\w+)", fn.source) == ["compiled", "_compiled_array"]
            assert len(results) == 8
            for r in results:
                np.testing.assert_array_equal(r[0], results[0][0])
    finally:
        sys.setswitchinterval(old)


@pytest.mark.skipif(importlib.util.find_spec("dask") is None, reason="dask not installed")
def test_a_backend_first_imported_during_a_pass_leaves_the_collector_on():
    """dask's disable_gc decorator keeps gc.isenabled() as read at import, and restores that
    after each call: imported inside sg.compile's pause (backend="dask" first in a process),
    it turned the collector off for good at its first slicing. A fresh process, so that dask
    is first imported there."""
    import subprocess

    code = (
        "import gc, numpy as np, symgrad as sg\n"
        "v = sg.vector('v', 4)\n"
        "f = sg.compile(sg.sum(sg.take(sg.reshape(v, (2, 2)), 1)), [v], backend='dask')\n"
        "import dask\n"
        "assert dask.compute(f(np.arange(4.0)))[0] == 5.0\n"
        "print(gc.isenabled())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True"


def test_edge_pushings_templates_stay_bounded_when_names_vary():
    # a template per op and attributes: an alias's attribute is its name, so a loop naming a
    # fresh value each step grew the table for good (a probe of long runs)
    ep = importlib.import_module("symgrad.edge_pushing")
    x, y = sg.scalars("x_tb y_tb")
    for i in range(ep._MAX_TEMPLATES + 50):
        a = x.named(f"a_tb{i}")
        ep._template(a)
    assert len(ep._TEMPLATES) <= ep._MAX_TEMPLATES
    H = sg.hessian(sg.tanh(x.named("a_tb_last") * y) ** 2, [x, y])
    at = {x: 0.3, y: -0.7}
    t = np.tanh(0.3 * -0.7)
    d = 2 * (1 - t * t) * (1 - 3 * t * t)  # d2/du2 tanh(u)^2
    assert sg.evaluate(H[0][0], at) == pytest.approx(d * 0.49)


# ------------------------------------------------------------------ shared nodes over time
def test_a_nodes_attributes_refuse_an_in_place_union():
    """attrs |= {...} is refused like attrs[k] = v: the node is shared (found by mutation
    testing: |= changed sum(A, axis=0)'s axis in place, for every later build of it)."""
    A = sg.matrix("A_ior", (2, 3))
    s = sg.sum(A, axis=0)
    a = s.attrs
    with pytest.raises(TypeError, match=r"^a node's attributes cannot be changed \(nodes are "
                                        r"shared\)"):
        a |= {"axis": (1,)}
    assert dict(s.attrs) == {"axis": (0,), "keepdims": False} and s.shape == (3,)
    assert sg.sum(A, axis=0) is s


def test_a_nodes_attributes_pickle_and_copy():
    """pickle, copy.copy and copy.deepcopy of a node's attrs give the same attributes, still
    refusing changes (found by mutation testing: without Attrs.__reduce__ each refused, as
    pickle fills a new dict item by item)."""
    import copy
    import pickle

    A = sg.matrix("A_pk", (2, 3))
    at = sg.sum(A, axis=1).attrs
    for again in (pickle.loads(pickle.dumps(at)), copy.copy(at), copy.deepcopy(at)):
        assert type(again) is type(at) and again == {"axis": (1,), "keepdims": False}
        with pytest.raises(TypeError, match="cannot be changed"):
            again["axis"] = (0,)


def test_naming_a_value_again_makes_that_name_what_builds_return():
    """Named p, then q, then p again: later builds of the value return the p node again, not
    q (found by mutation testing: a name found again was returned but not made canonical)."""
    b = sg.scalar("b_rn")
    t = sg.exp(b)
    p = t.named("p_rn")
    t.named("q_rn")
    assert t.named("p_rn") is p
    assert sg.exp(b) is p
    assert str(sg.exp(b) * 2) == "2*p_rn"


def test_loading_a_node_a_rule_rewrites_to_a_named_one_gives_that_node(tmp_path):
    """A saved mul(1, p), which mul's rule builds as p (named): load gives p itself, not a
    new unnamed copy of p's value (found by mutation testing: make_unnamed took the rule's
    result for a named twin of mul(1, p)). The file is a saved p * 2 with the 2 made a 1."""
    x = sg.scalar("x_ld")
    p = sg.exp(x).named("p_ld")
    path = tmp_path / "p.json"
    sg.save(p * 2.0, path)
    text = path.read_text()
    assert text.count('"value":2.0') == 1
    path.write_text(text.replace('"value":2.0', '"value":1.0'))
    got = sg.load(path)
    assert got is p and got.name == "p_ld"
    assert str(got * 3) == "3*p_ld"


def test_a_sweep_after_a_named_twin_dies_gives_back_the_unnamed_node():
    """u = sin(c), named h; h dies; a sweep of the node table then puts u back, so sin(c) is
    u again (found by mutation testing: the sweep dropped the dead entry, and sin(c) became a
    third node)."""
    from symgrad import expr

    c = sg.scalar("c_sw")
    u = sg.sin(c)
    h = u.named("h_sw")
    assert sg.sin(c) is h
    del h
    gc.collect()
    expr._sweep()
    assert sg.sin(c) is u
