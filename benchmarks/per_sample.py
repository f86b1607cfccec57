"""Per-sample calls: a graph with vectors and matrices whose scalar input is given samples.

The lecture's vector MLP on one data point x (d = 10, l = 8), its loss and the gradient with
respect to U, c, w and b, computed for S values of the scalar bias b (a sensitivity sweep):

    phi = sigmoid(U x + c);  mu = sigmoid(w . phi + b);  L = bce(mu, y)

symgrad computes the samples together with a batched version of the graph; the row "one call
per sample" is the same compiled function forced to call itself once per sample (what it does
for an op without a batch rule). The baseline is handwritten numpy, vectorised over the samples
by hand; jax.vmap of jax.grad is the peer.

Run: ``python -m benchmarks --only per_sample`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import sys
from unittest import mock

import numpy as np

from benchmarks._peers import have, setup_jax
from benchmarks._timing import bench, fmt_ratio, fmt_time, skipped, table

D, L = 10, 8
PEERS = ["jax"]


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(L, D)) / np.sqrt(D), rng.normal(size=L), rng.normal(size=L),
            rng.normal(size=D), 1.0)


def numpy_sweep(U, c, w, bs, x, y):
    """Loss and gradients for every bias in ``bs``: what the phi-side computes once is shared."""
    phi = 1.0 / (1.0 + np.exp(-(U @ x + c)))
    z = w @ phi + bs
    mu = 1.0 / (1.0 + np.exp(-z))
    loss = np.logaddexp(0.0, z) - y * z
    dz = mu - y
    dc = dz[:, None] * (w * phi * (1.0 - phi))
    return loss, dc[:, :, None] * x, dc, dz[:, None] * phi, dz


def symgrad_build(tag: str):
    import symgrad as sg

    x, c, w = sg.vector(f"x{tag}", D), sg.vector(f"c{tag}", L), sg.vector(f"w{tag}", L)
    U = sg.matrix(f"U{tag}", (L, D))
    b, y = sg.scalars(f"b{tag} y{tag}")
    phi = sg.sigmoid(U @ x + c)
    loss = sg.bce(sg.sigmoid(sg.dot(w, phi) + b), y)
    return sg.compile([loss, *sg.grad(loss, [U, c, w, b])], [U, c, w, b, x, y])


def jax_build():
    jax = setup_jax()
    import jax.numpy as jnp

    def loss(U, c, w, b, x, y):
        phi = jax.nn.sigmoid(U @ x + c)
        z = w @ phi + b
        return jnp.logaddexp(0.0, z) - y * z

    def both(U, c, w, b, x, y):
        val, g = jax.value_and_grad(loss, argnums=(0, 1, 2, 3))(U, c, w, b, x, y)
        return (val, *g)

    f = jax.jit(jax.vmap(both, in_axes=(None, None, None, 0, None, None)))
    return lambda *a: jax.block_until_ready(f(*a))


def systems(S: int, bs, U, c, w, x, y) -> dict:
    """name -> a call computing the loss and gradients for the biases ``bs``."""
    from symgrad import _per_sample

    fns = {"handwritten numpy (vectorised over the samples)":
           lambda: numpy_sweep(U, c, w, bs, x, y)}
    together = symgrad_build(f"_ps{S}")
    fns["symgrad"] = lambda: together(U, c, w, bs, x, y)
    with mock.patch.object(_per_sample, "batched_graph", lambda *a: None):
        loop = symgrad_build(f"_pl{S}")
        loop(U, c, w, bs[:1], x, y)  # the choice is made on the first call
    fns["symgrad, one call per sample"] = lambda: loop(U, c, w, bs, x, y)
    if have("jax"):
        fj = jax_build()
        fns["jax.jit(vmap(value_and_grad))"] = lambda: fj(U, c, w, bs, x, y)
    return fns


def main(quick: bool = False) -> str:
    counts = [100] if quick else [100, 10_000]
    U, c, w, x, y = data()
    rows = []
    for S in counts:
        bs = np.linspace(-2.0, 2.0, S)
        want = numpy_sweep(U, c, w, bs, x, y)
        fns = systems(S, bs, U, c, w, x, y)
        for name, fn in fns.items():
            got = [np.asarray(g) for g in fn()]
            for g, r in zip(got, want):
                np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12, err_msg=name)
        res = bench(fns, repeats=3 if quick else 7, min_time=0.02 if quick else 0.1)
        base = res["handwritten numpy (vectorised over the samples)"]
        rows += [[f"{S:,}", k, f"**{fmt_time(v)}**", fmt_ratio(v / base)] for k, v in res.items()]
    out = ["## Per-sample calls: the vector MLP's loss and gradient for S values of a scalar "
           f"bias (d = {D}, l = {L})", "",
           table(["S", "system", "median per call", "/ handwritten numpy"], rows), "",
           "_Every result is checked against the handwritten numpy first._"]
    skip = skipped(PEERS)
    if skip:
        out += ["", skip]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(main(quick="--quick" in sys.argv))
