"""dask: the vector MLP's loss and gradient over data chunked along the sample axis evaluate
lazily, and on a dask.distributed cluster (2 worker processes) give what numpy gives."""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

import symgrad as sg
from tests.backend_cases import mlp_graph, mlp_values, numpy_reference

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None
    or importlib.util.find_spec("array_api_compat") is None,
    reason="dask.distributed / array-api-compat not installed (pip install 'symgrad[dask]')")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, memory_limit="1GiB")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def _chunked(vals, chunk):
    import dask.array as da

    U, c, w, b, X, y = vals
    return [U, c, w, b, da.from_array(X, chunks=(chunk, X.shape[1])),
            da.from_array(y, chunks=chunk)]


def test_lazy_until_computed():
    import dask.array as da

    outs, ins = mlp_graph()
    fn = sg.compile(outs, ins, backend="dask")
    vals = mlp_values(4, 3, 400)
    res = fn(*_chunked(vals, 100))
    assert all(isinstance(r, da.Array) for r in res)
    assert res[1].shape == (3, 4)  # shapes are known before anything runs
    # the graph keeps the sample chunks apart until the sums combine them
    assert len(res[0].dask) > 4 * 4


def test_cluster_gives_what_numpy_gives(client):
    import dask

    outs, ins = mlp_graph()
    fn = sg.compile(outs, ins, backend="dask")
    vals = mlp_values(6, 4, 3000, seed=2)
    got = dask.compute(*fn(*_chunked(vals, 500)))
    want = numpy_reference(outs, ins, vals)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-12, atol=1e-15)
    # the work ran on both workers
    assert len(client.scheduler_info()["workers"]) == 2


def test_example_runs_small_on_the_cluster(client):
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import distributed_gradient as ex
    finally:
        sys.path.pop(0)
    r = ex.run(4000, 1000, client.scheduler.address, 2, 1, numpy_baseline=False)
    assert r["workers"] == 2 and r["grad_U"].shape == (16, 20) and ex.agrees(r)


def test_numpy_samples_for_a_graph_of_scalars_become_dask_arrays():
    # x + y of numpy samples came back a numpy array, exp(x) a dask one (running-at-scale.md:
    # samples become the backend's arrays; a cross-backend probe)
    import dask.array as da

    x, y = sg.scalars("x_ds y_ds")
    xs, ys = np.array([-1.0, 0.5]), np.array([0.3, 0.2])
    for e, want in ((x + y, xs + ys), (sg.relu(x), np.maximum(xs, 0.0)), (x * 2.0, 2 * xs),
                    (sg.exp(x), np.exp(xs))):
        got = sg.compile(e, [x, y], backend="dask")(xs, ys)
        assert isinstance(got, da.Array), e
        np.testing.assert_allclose(got.compute(), want)
