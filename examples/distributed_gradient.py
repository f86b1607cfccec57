"""The full-batch gradient of the vector MLP over 10^7 samples, on a dask cluster.

The loss and its gradient are derived once by symgrad and compiled twice from the same graph:
for numpy (the whole data set in one process's memory) and for dask (``backend="dask"``). The
data set (X: N x 20 float64, 1.6 GB at N = 10^7, and labels y) is made chunk by chunk by dask
itself on the workers and kept there (``persist``); the client only builds task graphs and
receives the gradient, so its memory stays far below the data's size.

    python examples/distributed_gradient.py                     # 10^7 samples, LocalCluster
    python examples/distributed_gradient.py --samples 200000    # a quick run
    python examples/distributed_gradient.py --address tcp://scheduler:8786   # a real cluster

The numpy baseline runs in a child process (so that its memory is not counted as the client's)
on the same data, computed locally from the same dask random generator; ``--no-numpy`` skips it.
Needs ``pip install 'symgrad[dask]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # examples/, for _path
import _path  # noqa: E402, F401

import symgrad as sg  # noqa: E402

D, H = 20, 16


def mlp() -> tuple[list, list]:
    """Loss and gradient wrt (U, c, w, b) of the vector MLP; N is a symbolic size."""
    X, y = sg.matrix("X", ("N", D)), sg.vector("y", "N")
    U, c, w, b = sg.matrix("U", (H, D)), sg.vector("c", H), sg.vector("w", H), sg.scalar("b")
    mu = sg.sigmoid(sg.sigmoid(X @ U.T + c) @ w + b)
    loss = sg.mean(sg.bce(mu, y))
    return [loss, *sg.grad(loss, [U, c, w, b])], [U, c, w, b, X, y]


def params(seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((H, D)) / np.sqrt(D), 0.1 * rng.standard_normal(H),
            rng.standard_normal(H) / np.sqrt(H), 0.1]


def data(n: int, chunk: int, seed: int = 0):
    """X (n, D) and y (n,) as lazy dask arrays, made chunk by chunk by dask."""
    import dask.array as da

    rng = da.random.default_rng(seed)
    X = rng.standard_normal((n, D), chunks=(chunk, D))
    teacher = np.linspace(-1.0, 1.0, D)
    noise = rng.standard_normal(n, chunks=chunk)
    y = ((X @ teacher + noise) > 0).astype(float)
    return X, y


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _numpy_child(n: int, chunk: int, repeats: int) -> None:
    """Run in a child process: the numpy baseline on the same data, printed as JSON."""
    import dask

    X, y = data(n, chunk)
    X, y = dask.compute(X, y, scheduler="threads")
    outs, ins = mlp()
    fn = sg.compile(outs, ins)
    p = params()
    res = fn(*p, X, y)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*p, X, y)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"time": statistics.median(times), "loss": float(res[0]),
                      "grad_U": np.asarray(res[1]).tolist(), "peak_mb": peak_rss_mb()}))


def run(n: int, chunk: int, address: str | None, workers: int, repeats: int,
        numpy_baseline: bool) -> dict:
    import dask
    from dask.distributed import Client, LocalCluster, wait

    outs, ins = mlp()
    t0 = time.perf_counter()
    fn = sg.compile(outs, ins, backend="dask")
    compile_s = time.perf_counter() - t0
    cluster = None
    if address:
        client = Client(address)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        t0 = time.perf_counter()
        X, y = client.persist(list(data(n, chunk)))
        wait([X, y])
        make_s = time.perf_counter() - t0
        p = params()
        times, res = [], None
        for _ in range(repeats + 1):  # the first call warms the workers up
            t0 = time.perf_counter()
            lazy = fn(*p, X, y)  # builds task graphs, computes nothing
            res = dask.compute(*lazy)
            times.append(time.perf_counter() - t0)
        out = {"samples": n, "chunk": chunk, "workers": len(client.scheduler_info()["workers"]),
               "data_mb": (X.nbytes + y.nbytes) / 1e6, "compile_s": compile_s,
               "make_data_s": make_s, "dask_s": statistics.median(times[1:]),
               "loss": float(res[0]), "grad_U": np.asarray(res[1])}
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    out["client_peak_mb"] = peak_rss_mb()
    if numpy_baseline:
        cmd = [sys.executable, os.path.abspath(__file__), "--numpy-child", "--samples", str(n),
               "--chunk", str(chunk), "--repeats", str(repeats)]
        child = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                          text=True).stdout.strip().splitlines()[-1])
        out.update(numpy_s=child["time"], numpy_peak_mb=child["peak_mb"],
                   numpy_loss=child["loss"],
                   max_rel_diff=float(np.max(np.abs(out["grad_U"] - np.array(child["grad_U"])))
                                      / np.max(np.abs(out["grad_U"]))))
    return out


def report(r: dict) -> str:
    lines = [f"samples {r['samples']:,} (d={D}, l={H}), chunks of {r['chunk']:,}, "
             f"{r['workers']} dask workers; data {r['data_mb']:,.0f} MB",
             f"compile (symgrad, backend='dask'): {r['compile_s'] * 1e3:.1f} ms; "
             f"making + persisting the data on the workers: {r['make_data_s']:.2f} s",
             f"dask:  {r['dask_s']:.3f} s per loss + gradient (graph build + compute)"]
    if "numpy_s" in r:
        lines += [f"numpy: {r['numpy_s']:.3f} s per loss + gradient (one process, data in "
                  f"memory; its peak memory {r['numpy_peak_mb']:,.0f} MB)",
                  f"loss dask {r['loss']:.12f}, numpy {r['numpy_loss']:.12f}; gradient max "
                  f"relative difference {r['max_rel_diff']:.1e}"]
    lines.append(f"client process peak memory: {r['client_peak_mb']:,.0f} MB "
                 f"({r['client_peak_mb'] / r['data_mb']:.0%} of the data's size)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=10_000_000)
    ap.add_argument("--chunk", type=int, default=0, help="samples per chunk (default N/20)")
    ap.add_argument("--address", default=None, help="a dask scheduler's address")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-numpy", action="store_true", help="skip the numpy baseline")
    ap.add_argument("--numpy-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    chunk = a.chunk or max(1, a.samples // 20)
    if a.numpy_child:
        _numpy_child(a.samples, chunk, a.repeats)
        return {}
    r = run(a.samples, chunk, a.address, a.workers, a.repeats, not a.no_numpy)
    print(report(r), flush=True)
    return r


def agrees(r: dict) -> bool:
    """dask and numpy gave the same loss and gradient (when numpy ran), and the client stayed
    below a tenth of the data's size (when the data is large enough for that to mean much)."""
    ok = np.isfinite(r["loss"])
    if "numpy_s" in r:
        ok = ok and abs(r["loss"] - r["numpy_loss"]) <= 1e-10 and r["max_rel_diff"] <= 1e-10
    if r["data_mb"] >= 1000:
        ok = ok and r["client_peak_mb"] < 0.1 * r["data_mb"]
    return bool(ok)


if __name__ == "__main__":
    res = main()
    if res:
        good = agrees(res)
        print("OK" if good else "FAILED")
        sys.exit(0 if good else 1)
