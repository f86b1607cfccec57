"""sg.save / sg.load: every op round-trips; a bad file is a ValueError naming the node."""

from __future__ import annotations

import base64
import copy
import gc
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symgrad as sg
from symgrad import serialize
from symgrad.ops import REGISTRY
from symgrad.serialize import from_data, to_data

x, y = sg.scalars("x y")
v = sg.vector("v", 3)
A = sg.matrix("A", (2, 3))
S = sg.matrix("S", (3, 3))
vn = sg.vector("vn", "n")
F = sg.functions

# one expression per op of the registry: a new op without an entry here fails the test below
EXAMPLES = {
    "var": lambda: x,
    "const": lambda: sg.const(np.array([[1.5, -2.0, np.nan], [np.inf, 0.0, 1e-300]])) * 1.0,
    "dimsize": lambda: sg.mean(vn),
    "eye": lambda: sg.eye(3) * 2.0,
    "alias": lambda: x.named("alpha") * y,
    "add": lambda: x + y,
    "sub": lambda: x - y,
    "mul": lambda: x * y,
    "div": lambda: x / y,
    "neg": lambda: -x,
    "pow": lambda: x**y,
    "exp": lambda: sg.exp(x),
    "log": lambda: sg.log(x),
    "sqrt": lambda: sg.sqrt(x),
    "tanh": lambda: sg.tanh(x).named("t"),
    "sin": lambda: sg.sin(x),
    "cos": lambda: sg.cos(x),
    "sigmoid": lambda: sg.sigmoid(x),
    "softplus": lambda: sg.softplus(x),
    "log_softplus": lambda: sg.grad(sg.log(sg.softplus(x)), x),
    "relu": lambda: sg.relu(x),
    "abs": lambda: sg.abs(x),
    "step": lambda: F.step(x),
    "sigmoid_deriv": lambda: F.sigmoid_deriv(x),
    "tanh_deriv": lambda: F.tanh_deriv(x),
    "zero_as_one": lambda: sg.grad(x**y, y),
    "gate": lambda: sg.grad(sg.sqrt(sg.relu(x)), x),
    "maximum": lambda: sg.maximum(x, y),
    "minimum": lambda: sg.minimum(x, y),
    "bce": lambda: sg.bce(x, y),
    "stop_gradient": lambda: sg.stop_gradient(x),
    "sum": lambda: sg.sum(A, axis=1, keepdims=True),
    "logsumexp": lambda: sg.logsumexp(A, axis=0),
    "softmax": lambda: sg.softmax(A, axis=0),
    "log_softmax": lambda: sg.log_softmax(A),
    "argmax": lambda: sg.argmax(A, axis=1),
    "matmul": lambda: A @ S,
    "outer": lambda: sg.outer(v, v),
    "transpose": lambda: sg.transpose(A),
    "reshape": lambda: sg.reshape(A, (3, 2)),
    "fit_shape": lambda: F.fit_shape(vn, (3, 1)),
    "guard": lambda: 0 * vn + v,  # v, guarded: n must be 3
    "broadcast_to": lambda: sg.broadcast_to(v, (4, 3)),
    "diag": lambda: sg.diag(v),
    "diagonal": lambda: sg.diagonal(S),
    "take": lambda: sg.take(A, 1),
    "onehot": lambda: F.onehot(sg.argmax(v), 3),
    "floor": lambda: sg.floor(x),
    "to_int": lambda: sg.to_int(x),
    "sample_bernoulli": lambda: sg.sample_bernoulli(sg.sigmoid(v), seed=4),
    "sample_categorical": lambda: sg.sample_categorical(A, seed=2**40),
    "straight_through": lambda: sg.straight_through(sg.floor(v), v),
    "zero": lambda: sg.grad(sg.sin(y), A),
    "gram": lambda: sg.gram(A, sg.exp(sg.vector("d2", 2))),
}
VALUES = {sg.vector("d2", 2): np.array([0.3, -0.2]),
          x: 0.7, y: 1.3, v: np.array([0.2, -0.4, 0.9]), A: np.arange(6.0).reshape(2, 3) / 5,
          S: np.eye(3) + 0.1, vn: np.array([1.0, 2.0, 4.0])}


def test_every_op_has_a_round_trip_example():
    missing = set(REGISTRY) - set(EXAMPLES)
    assert not missing, f"ops without a save/load example in {__file__}: {sorted(missing)}"
    for name, build in EXAMPLES.items():
        assert any(n.op.name == name for n in sg.topo_order([build()])), name


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_round_trip(name, tmp_path):
    e = EXAMPLES[name]()
    path = tmp_path / "e.json"
    sg.save(e, path)
    text = path.read_text()
    data = json.loads(text)  # plain JSON
    ops = {n["op"] for n in data["graph"]["nodes"]}
    assert name in ops
    back = sg.load(path)
    assert back is e  # the same node: same ops, operands, attributes (hash-consing)
    assert serialize.to_data(back) == data
    assert str(back) == str(e)
    vals = {k: val for k, val in VALUES.items() if k in set(sg.variables(e))}
    np.testing.assert_array_equal(sg.evaluate(back, vals), sg.evaluate(e, vals))


def test_constants_round_trip_bit_exactly(tmp_path):
    """Found by mutation testing: constants written as float32 passed every test (the
    examples' constants are exact in float32). The file itself must hold each float64."""
    cs = [1.0 / 3.0, 0.1, 1e-300, 5e-324, 1.7976931348623157e308, -2.5e-17, np.pi]
    es = [c * x for c in cs] + [sg.exp(0.1 * x) + 1.0 / 3.0, sg.const(np.array(cs)) * x]
    path = tmp_path / "c.json"
    sg.save(es, path)
    code = ("import sys, symgrad as sg; es = sg.load(sys.argv[1]); x = sg.scalar('x'); "
            "print([repr(v) for e in es for v in list(map(float, __import__('numpy')"
            ".ravel(sg.evaluate(e, {x: 1.0}))))])")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, cwd=str(Path(__file__).parent.parent))
    assert out.returncode == 0, out.stderr
    want = [repr(float(v)) for e in es for v in np.ravel(sg.evaluate(e, {x: 1.0}))]
    assert want[:len(cs)] == [repr(c) for c in cs]
    assert out.stdout.strip() == str(want)


def test_lists_round_trip_and_share_nodes(tmp_path):
    f = sg.sum(sg.tanh(A @ v) * x)
    g = sg.grad(f, [A, v, x])
    sg.save([f] + g, tmp_path / "fg.json")
    back = sg.load(tmp_path / "fg.json")
    assert isinstance(back, list) and len(back) == 4
    assert back[0] is f and all(b is a for b, a in zip(back[1:], g))
    sg.save([f], tmp_path / "one.json")
    assert sg.load(tmp_path / "one.json") == [f]


def test_round_trip_in_a_fresh_process(tmp_path):
    exprs = [EXAMPLES[k]() for k in sorted(EXAMPLES)]
    sg.save(exprs, tmp_path / "all.json")
    code = ("import sys, symgrad as sg\n"
            "for e in sg.load(sys.argv[1]):\n"
            "    print(repr(str(e)), sg.count_nodes(e), e.shape)\n")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "all.json")], cwd=root,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    want = [f"{str(e)!r} {sg.count_nodes(e)} {e.shape}" for e in exprs]
    assert out == want


# ------------------------------------------------------------------ copy and pickle
def test_copy_and_deepcopy_return_the_node():
    e = sg.sin(x) * x + sg.sum(A @ v)
    assert copy.copy(e) is e and copy.deepcopy(e) is e
    box = copy.deepcopy({"loss": e, "params": [x, A]})
    assert box["loss"] is e and box["params"][1] is A
    # a copied graph of new variables would be independent of x: the gradient would be zero
    assert sg.grad(copy.deepcopy(e), x) is sg.grad(e, x)
    assert sg.zero_reason(sg.grad(copy.deepcopy(e), x)) is None


@pytest.mark.parametrize("protocol", [0, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_pickle_gives_back_the_nodes(protocol):
    exprs = [EXAMPLES[k]() for k in sorted(EXAMPLES)]
    for e in exprs:
        assert pickle.loads(pickle.dumps(e, protocol)) is e, str(e)
    f = sg.sum(sg.tanh(A @ v) * x)
    g = sg.grad(f, [A, v, x])
    back = pickle.loads(pickle.dumps({"f": f, "g": g}, protocol))
    assert back["f"] is f and all(b is a for b, a in zip(back["g"], g))


def test_pickle_in_a_fresh_process():
    exprs = [EXAMPLES[k]() for k in sorted(EXAMPLES)]
    code = ("import pickle, sys, symgrad as sg\n"
            "for e in pickle.loads(sys.stdin.buffer.read()):\n"
            "    print(repr(str(e)), sg.count_nodes(e), e.shape)\n")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(exprs), cwd=root,
                         capture_output=True, check=True).stdout.decode().splitlines()
    assert out == [f"{str(e)!r} {sg.count_nodes(e)} {e.shape}" for e in exprs]


# ------------------------------------------------------------------ validation
def _data(e=None):
    return serialize.to_data(e if e is not None else sg.tanh(x * y).named("h") + x)


def _node(d, op):
    return next(n for n in d["graph"]["nodes"] if n["op"] == op)


def _load_bad(d, tmp_path, match):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=match):
        sg.load(p)


def test_unknown_op(tmp_path):
    d = _data()
    _node(d, "tanh")["op"] = "os.system"
    _load_bad(d, tmp_path, r"node \d+ \(os.system\): unknown op 'os.system'")


def test_an_edge_to_a_node_that_is_not_listed(tmp_path):
    d = _data()
    d["graph"]["nodes"][0]["id"] = "renamed"  # its edges still name it 0
    _load_bad(d, tmp_path, r"node 0: an edge refers to it, but it is not in the nodes")


def test_cycle(tmp_path):
    d = _data()
    ids = {n["op"]: n["id"] for n in d["graph"]["nodes"]}
    d["graph"]["edges"].append({"source": ids["add"], "target": ids["mul"], "positions": [2]})
    _load_bad(d, tmp_path, r"node \d+ is on a cycle")


def test_wrong_arity(tmp_path):
    d = _data()
    mul = _node(d, "mul")["id"]
    d["graph"]["edges"] = [e for e in d["graph"]["edges"]
                           if not (e["target"] == mul and e["positions"] == [1])]
    _load_bad(d, tmp_path, rf"node {mul} \(mul\): mul takes 2 operands, got 1")
    d = _data()
    for e in d["graph"]["edges"]:
        if e["target"] == mul:
            e["positions"] = [p + 1 for p in e["positions"]]
    _load_bad(d, tmp_path, rf"node {mul} \(mul\): operand positions \[1, 2\] have a gap")


def test_bad_shape(tmp_path):
    d = _data()
    _node(d, "tanh")["shape"] = [3]
    _load_bad(d, tmp_path, r"\(tanh\): the stored shape \(3,\) is not the shape \(\)")
    d = _data(A @ S)
    _node(d, "var")["attrs"]["shape"] = {"tuple": [2, 4]}
    _node(d, "var")["shape"] = [2, 4]
    _load_bad(d, tmp_path, r"\(matmul\): matmul: shapes \(2, 4\) and \(3, 3\) do not fit")


@pytest.mark.parametrize("bad", ["1x", "a b", "__import__('os')", "", None, 3, "for"])
def test_bad_names(bad, tmp_path):
    d = _data()
    _node(d, "tanh")["name"] = bad
    if bad is None:  # no name is fine
        assert str(serialize.from_data(d)) != ""
        return
    _load_bad(d, tmp_path, r"\(tanh\): bad name")
    d = _data()
    _node(d, "var")["attrs"]["vname"] = bad
    _load_bad(d, tmp_path, r"\(var\): vname")


@pytest.mark.parametrize("key, value", [
    ("axis", "__import__('os').system('true')"), ("axis", {"tuple": [5]}),
    ("axis", {"tuple": [1, 0]}), ("keepdims", "True"), ("keepdims", 1),
    ("novel", 1), ("axis", {"tuple": [{"tuple": [0]}]}), ("axis", [0]),
])
def test_bad_attributes(key, value, tmp_path):
    d = _data(sg.sum(A, axis=(0, 1)))
    _node(d, "sum")["attrs"][key] = value
    _load_bad(d, tmp_path, r"node \d+ \(sum\)")


def test_bad_constants(tmp_path):
    d = _data(sg.const(np.arange(4.0)) * x)
    _node(d, "const")["attrs"]["value"]["dtype"] = "|O"
    _load_bad(d, tmp_path, r"\(const\).*not a numeric dtype")
    d = _data(sg.const(np.arange(4.0)) * x)
    _node(d, "const")["attrs"]["value"]["shape"] = [5]
    _load_bad(d, tmp_path, r"\(const\).*does not fit shape")
    d = _data(sg.const(2.5) * x)
    _node(d, "const")["attrs"]["value"] = "2.5"
    _load_bad(d, tmp_path, r"\(const\).*not a float")


def test_bad_files(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        sg.load(p)
    p.write_text('{"format": "symgrad", "version": 1, "single": true, "outputs": [0], '
                 '"graph": {"directed": true, "multigraph": false, "graph": {}, "nodes": '
                 '[{"id": 0, "op": "const", "shape": [], "name": null, '
                 '"attrs": {"value": NaN}}], "edges": []}}')
    with pytest.raises(ValueError, match="NaN is not valid JSON"):
        sg.load(p)
    for d, match in [({"format": "other"}, "not a symgrad file"),
                     (dict(_data(), version=99), "unsupported version 99"),
                     (dict(_data(), outputs=[12345]), "output 12345 is not a node"),
                     (dict(_data(), outputs="0"), "outputs"),
                     (dict(_data(), graph=[]), "not node-link data")]:
        _load_bad(d, tmp_path, match)


def test_non_finite_constants_round_trip(tmp_path):
    e = sg.const(float("nan")) + sg.const(float("-inf")) * x
    sg.save(e, tmp_path / "c.json")
    assert "NaN" not in (tmp_path / "c.json").read_text()
    back = sg.load(tmp_path / "c.json")  # NaN != NaN: an equal graph, not the same node
    assert serialize.to_data(back) == serialize.to_data(e)
    assert str(back) == "nan - inf*x"


def test_float16_constants_round_trip_and_long_double_ones_say_why_not(tmp_path):
    v2 = sg.vector("v_f16", 2)
    c = v2 * sg.const(np.array([1.5, 2.0], dtype=np.float16))
    assert pickle.loads(pickle.dumps(c)) is c  # pickled, then refused when loaded
    sg.save(c, tmp_path / "c.json")
    assert sg.load(tmp_path / "c.json") is c
    d = v2 * sg.const(np.array([1.0, 2.0], dtype=np.longdouble))
    with pytest.raises(TypeError, match=r"save: a constant of dtype \w+ cannot be saved"):
        pickle.dumps(d)


# ------------------------------------------------------------------ gaps a round-trip helper found
def test_an_op_takes_exactly_its_attributes(tmp_path):
    """An extra attribute made another node that printed the same (x with a "seed" was a
    second variable x: a gradient of x*x with respect to x was x); a missing one raised a
    bare KeyError when the node was printed or evaluated."""
    d = _data(x * x)
    _node(d, "var")["attrs"]["seed"] = 1
    _load_bad(d, tmp_path, r"node \d+ \(var\): var has no attribute 'seed'")
    d = _data(sg.tanh(x))
    _node(d, "tanh")["attrs"]["keepdims"] = True
    _load_bad(d, tmp_path, r"\(tanh\): tanh has no attribute 'keepdims'")
    for op, key in (("var", "vname"), ("sum", "axis"), ("sample_bernoulli", "seed")):
        d = _data(sg.sum(sg.sample_bernoulli(sg.sigmoid(v), seed=3)))
        del _node(d, op)["attrs"][key]
        _load_bad(d, tmp_path, rf"\({op}\): {op} needs the attribute '{key}'")
    for build in EXAMPLES.values():  # the declaration matches every op's nodes
        for n in sg.topo_order([build()]):
            assert set(n.attrs) == set(n.op.attr_names), n.op.name


def test_axes_of_the_softmax_family_and_take_indices_are_checked(tmp_path):
    d = _data(sg.softmax(A))
    _node(d, "softmax")["attrs"]["axis"] = None
    _load_bad(d, tmp_path, r"\(softmax\): the axis of softmax must be a tuple of axes")
    d = _data(sg.log_softmax(A))
    _node(d, "log_softmax")["attrs"]["axis"] = {"tuple": []}
    _load_bad(d, tmp_path, r"\(log_softmax\): the axis of log_softmax names no axis")
    for bad in (0.5, 5.0, -3.0):
        d = _data(sg.take(A, 1))
        _node(d, "const")["attrs"]["value"] = bad
        _load_bad(d, tmp_path, r"\(take\): take: index")


def test_node_ids_are_distinct_ints_or_strings(tmp_path):
    # networkx kept the last of two nodes with one id: the file loaded as another graph
    d = _data(sg.tanh(x) + sg.sin(x))
    tanh, sin = _node(d, "tanh"), _node(d, "sin")
    sin["id"] = tanh["id"]
    _load_bad(d, tmp_path, rf"two nodes have the id {tanh['id']}")
    d = _data()
    d["graph"]["nodes"][0]["id"] = True  # True == 1
    _load_bad(d, tmp_path, r"node id True is not an int or a string")
    d = _data()
    d["version"] = True
    _load_bad(d, tmp_path, r"unsupported version True")


def test_a_value_saved_unnamed_next_to_its_named_twin_loads_unnamed(tmp_path):
    # after h = s.named("h"), building sin(x) gives h: loading rebuilt s as h (h * h, and a
    # gradient wrt h twice the right one)
    z = sg.scalar("z_twin")
    s = sg.sin(z)
    h = s.named("h_twin")
    f = s * h
    sg.save(f, tmp_path / "f.json")
    back = sg.load(tmp_path / "f.json")
    assert back is f and str(back) == "sin(z_twin)*h_twin"
    assert sg.evaluate(sg.grad(back, h), {z: 0.5}) == pytest.approx(np.sin(0.5))
    code = ("import symgrad as sg, numpy as np\n"
            f"g = sg.load({str(tmp_path / 'f.json')!r})\n"
            "print(g)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(Path(sg.__file__).parent.parent), check=True)
    assert out.stdout.strip() == "sin(z_twin)*h_twin"


def test_a_twin_named_for_itself_reads_back_as_one(tmp_path):
    # simplify names its result like the output without making it what later constructions
    # return; pickle and load named it with .named, so every later x**2 printed "out" again
    x = sg.scalar("x_tw")
    out = sg.simplify(sg.exp(2 * sg.log(x)).named("out_tw"))
    assert str(sg.sin(x**2)) == "sin(x_tw**2)"
    assert to_data(out)["graph"]["nodes"][-1]["twin"] is True
    back = pickle.loads(pickle.dumps(out))
    assert back is out and str(sg.sin(x**2)) == "sin(x_tw**2)"
    sg.save(out, tmp_path / "tw.json")
    assert sg.load(tmp_path / "tw.json") is out and str(sg.sin(x**2)) == "sin(x_tw**2)"
    # in a process where the value has no other node (the twin's own base is unknown) too
    data = to_data(out)
    del out, back
    gc.collect()
    again = from_data(data)
    assert again.name == "out_tw" and str(sg.sin(x**2)) == "sin(x_tw**2)"
    # a name given with .named still names what later constructions return
    h = sg.sigmoid(x).named("h_tw")
    assert "twin" not in to_data(h)["graph"]["nodes"][-1]
    assert pickle.loads(pickle.dumps(h)) is h and str(sg.sigmoid(x) + 1) == "h_tw + 1"
    bad = to_data(h)
    bad["graph"]["nodes"][-1]["twin"] = "yes"
    with pytest.raises(ValueError, match="twin"):
        from_data(bad)


# ------------------------------------------------------------------ found by mutation testing
def test_axes_are_non_negative_distinct_and_a_whole_permutation(tmp_path):
    """Found by mutation testing: a negative axis, a repeated axis and a transpose's axes of
    the wrong length loaded (the file stores axes as the op normalized them: 0 <= a < ndim,
    sorted, distinct; a transpose's axes a permutation of all the operand's axes)."""
    T3 = sg.tensor("T3_ax", (2, 3, 4))
    d = _data(sg.sum(A, axis=1))
    _node(d, "sum")["attrs"]["axis"] = {"tuple": [-1]}
    _load_bad(d, tmp_path, r"\(sum\): axis \(-1,\) is not a tuple of axes of an operand "
              r"with 2 axes")
    d = _data(sg.sum(T3, axis=1))
    _node(d, "sum")["attrs"]["axis"] = {"tuple": [1, 1]}
    _load_bad(d, tmp_path, r"\(sum\): axis \(1, 1\) is not sorted and distinct")
    d = _data(sg.transpose(T3, (1, 0, 2)))
    _node(d, "transpose")["attrs"]["axes"] = {"tuple": [1, 0]}
    _node(d, "transpose")["shape"] = [3, 2]
    _load_bad(d, tmp_path, r"\(transpose\): axes \(1, 0\) is not a permutation of the "
              r"operand's axes")


def test_a_negative_seed_is_refused(tmp_path):
    # found by mutation testing: seed -5 loaded
    d = _data(sg.sample_bernoulli(sg.sigmoid(v), seed=1))
    _node(d, "sample_bernoulli")["attrs"]["seed"] = -5
    _load_bad(d, tmp_path, r"\(sample_bernoulli\): seed -5 is not an int >= 0")


def test_only_nan_and_the_infinities_are_written_as_strings(tmp_path):
    # found by mutation testing: {"float": "2.5"} loaded as 2.5 (save writes finite floats as
    # numbers; a string is only for what JSON cannot hold)
    d = _data(x * 2.5)
    _node(d, "const")["attrs"]["value"] = {"float": "2.5"}
    _load_bad(d, tmp_path, r"\(const\), attribute 'value': \{'float': '2.5'\} is not an "
              "attribute value")


def test_the_outputs_must_be_what_single_says(tmp_path):
    """Found by mutation testing: "single": true with two outputs loaded as the first output,
    and an output id true loaded node 1 (True == 1)."""
    d = _data([x * 2, sg.exp(x)])
    d["single"] = True
    _load_bad(d, tmp_path, r"\"outputs\" must be a list of node ids and \"single\" a bool")
    d = _data(sg.exp(x))
    assert d["outputs"] == [1]
    d["outputs"] = [True]
    _load_bad(d, tmp_path, r"output True is not a node of the graph")


def test_two_operands_in_one_position_are_refused(tmp_path):
    # found by mutation testing: exp(x) - y with y's edge also at position 0 loaded as y - y
    d = _data(sg.exp(x) - y)
    sub = _node(d, "sub")["id"]
    for e in d["graph"]["edges"]:
        if e["target"] == sub and e["positions"] == [1]:
            e["positions"] = [0, 1]
    _load_bad(d, tmp_path, rf"node {sub} \(sub\): two operands in position 0")


def test_a_big_endian_constant_is_stored_in_native_order():
    # const(np.array(..., dtype=">f8")) kept its byte order: its own node beside the same
    # values in native order, results of dtype >f8, and a pickle or a save gave another node
    # (they write native order; trust.md: the very nodes in the same process; a probe)
    import pickle

    v = sg.vector("v_be", 3)
    k = sg.const(np.array([1.0, 2.0, 3.0], dtype=">f8"))
    assert k is sg.const(np.array([1.0, 2.0, 3.0]))
    assert sg.const(np.array([1.0, 2.0], dtype=">f4")).attrs["value"].dtype == np.float32
    f = sg.sum(k * v)
    assert pickle.loads(pickle.dumps(f)) is f
    assert sg.evaluate(k, {}).dtype == np.float64
    assert sg.evaluate(f, {v: np.ones(3)}) == 6.0


def test_a_loaded_integer_or_bool_constant_is_read_as_sg_const_reads_it():
    # sg.const makes every integer or bool array float64; a file could hold one as it is, and
    # numpy then computed exp of an int8 array in float16 (30.19 came out 30.1875) and gave a
    # bool gradient that - refused
    x, v = sg.scalar("x_li"), sg.vector("v_li", 3)

    def with_value(e, arr):
        d = to_data(e)
        c = next(n for n in d["graph"]["nodes"] if n["op"] == "const" and
                 isinstance(n["attrs"]["value"], dict))
        c["attrs"]["value"] = {"array": base64.b64encode(arr.tobytes()).decode(),
                               "dtype": arr.dtype.str, "shape": list(arr.shape)}
        return from_data(d)

    f = with_value(sg.sum(sg.exp(sg.const(np.array([1.0, 2.0, 3.0])))) * x,
                   np.array([1, 2, 3], np.int8))
    assert sg.evaluate(f, {x: 1.0}) == pytest.approx(np.exp([1.0, 2.0, 3.0]).sum(), rel=1e-15)
    f = with_value(sg.sum(sg.const(np.array([1.0, 0.0, 1.0])) * v), np.array([1, 0, 1], bool))
    g = sg.evaluate(sg.grad(-f, v), {v: np.ones(3)})
    assert g.dtype == np.float64 and list(g) == [-1.0, 0.0, -1.0]


@pytest.mark.parametrize("patch, what", [
    (lambda g: g.pop("edges"), '"edges" must be a list'),
    (lambda g: g.update(nodes={"a": 1}), '"nodes" must be a list'),
    (lambda g: g.update(edges=5), '"edges" must be a list'),
    (lambda g: g.update(nodes=[1]), '"nodes" must be a list of objects'),
])
def test_a_graph_without_lists_of_nodes_and_edges_says_so(patch, what):
    d = to_data(sg.tanh(sg.scalar("x_ne")))
    patch(d["graph"])
    with pytest.raises(ValueError, match=what):
        from_data(d)


def test_load_refuses_a_device_or_a_pipe(tmp_path):
    # /dev/zero was read until memory ran out; a FIFO would wait forever for a writer
    paths = ["/dev/zero"] if Path("/dev/zero").exists() else []
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe")
        paths.append(tmp_path / "pipe")
    if not paths:
        pytest.skip("no device or FIFO on this system")
    for p in paths:
        with pytest.raises(ValueError, match="is not a file"):
            sg.load(p)
