"""One prepared GPU check: run the GPU tests, then time symgrad on the GPU against the references.

    python benchmarks/gpu_check.py            (from the repository root; writes $OUT/gpu_check.md)

On a machine with an NVIDIA GPU, float64 throughout, medians of 20 synchronised calls:

- the vector MLP's loss + gradient at d=784, l=256, N=65536: symgrad with backend "cupy",
  "torch:cuda" and "jax" (jitted) against handwritten cupy, torch autograd and
  jax.jit(value_and_grad) (target: symgrad's best within 1.2x of JAX);
- the logistic-regression Hessian at n=4000 (m=8000): symgrad's ``sg.hessian`` on the same three
  against the cupy closed form X.T @ (d[:, None] * X) and jax.jit(jax.hessian) (target: within
  1.1x of the closed form).

It fails soft: a missing library or a failing system becomes a line in the table, and each part
stops when the time budget (200 s in all) runs out. Needs: numpy, sympy, networkx, pytest,
array-api-compat, cupy-cuda12x, and optionally torch (CUDA build) and jax[cuda12].
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import time
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# jax would otherwise take 75% of the GPU's memory when it starts, leaving cupy and torch short
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

from benchmarks._workloads import vector_mlp  # noqa: E402

BUDGET_S = 200.0
T0 = time.monotonic()
MLP_SIZE = (784, 256, 65536)  # d, l, N
HESSIAN_N = 4000  # m = 2 n samples
rows: list[tuple[str, str, str]] = []
notes: list[str] = []
times: dict[tuple[str, str], float] = {}


def left() -> float:
    return BUDGET_S - (time.monotonic() - T0)


def load(name: str):
    try:
        return __import__(name, fromlist=["_"])
    except Exception as exc:  # not installed, or no CUDA runtime
        notes.append(f"{name}: not available ({type(exc).__name__}: {str(exc)[:100]})")
        return None


class OutOfTime(Exception):
    pass


def median_time(f, sync, reps: int = 20) -> float:
    t = time.perf_counter()
    f()  # warm-up (compiles, plans, caches)
    sync()
    t = time.perf_counter()
    f()
    sync()
    one = time.perf_counter() - t
    if one * reps > left() - 10:
        raise OutOfTime(f"one call takes {one:.2f} s")
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        sync()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def row(work: str, system: str, f, sync) -> None:
    if left() < 10:
        rows.append((work, system, "skipped: out of time"))
        return
    try:
        t = median_time(f, sync)
        times[(work, system)] = t
        rows.append((work, system, f"{t * 1e3:.3f} ms"))
    except OutOfTime as exc:
        rows.append((work, system, f"skipped: {exc}, over the time budget"))
    except Exception as exc:  # one failing system does not stop the others
        rows.append((work, system, f"failed: {type(exc).__name__}: {str(exc)[:90]}"))
        traceback.print_exc()
    print(rows[-1], flush=True)


def guard(work: str, what: str, f) -> None:
    """Run one system's setup and rows; a failure becomes a row, and the others go on."""
    if left() < 15:
        rows.append((work, what, "skipped: out of time"))
        return
    try:
        f()
    except Exception as exc:
        rows.append((work, what, f"failed: {type(exc).__name__}: {str(exc)[:90]}"))
        traceback.print_exc()


def on_each(work: str, cp, torch, jax, on_cupy, on_torch, on_jax) -> None:
    """Guarded runs of one workload on each library that is here (cupy, torch with CUDA, jax)."""
    if cp is not None:
        guard(work, "cupy", on_cupy)
    if torch is not None and torch.cuda.is_available():
        guard(work, "torch", on_torch)
    if jax is not None:
        guard(work, "jax", on_jax)


def card_name(cp, torch) -> str:
    try:
        if cp is not None:
            name = cp.cuda.runtime.getDeviceProperties(0)["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:
        pass
    try:
        if torch is not None and torch.cuda.is_available():
            return torch.cuda.get_device_name()
    except Exception:
        pass
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return "unknown (no cupy, torch or nvidia-smi)"


def run_tests() -> str:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_gpu.py",
           "tests/test_backends.py"]
    try:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        if os.environ.get("OUT"):  # the whole log, for the failures' tracebacks
            with open(os.path.join(os.environ["OUT"], "gpu_tests.log"), "w") as f:
                f.write(r.stdout + r.stderr)
        lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
        fails = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
        return "; ".join(fails[:5] + lines[-1:]) if lines else r.stderr[-300:]
    except Exception as exc:
        return f"tests did not run: {type(exc).__name__}: {exc}"


# ------------------------------------------------------------------ workloads
def hessian_graph(sg):
    X, y, w = sg.matrix("X", ("m", "n")), sg.vector("y", "m"), sg.vector("w", "n")
    f = sg.sum(sg.softplus(-y * (X @ w)))
    return sg.hessian(f, w), [X, y, w]


def bench_mlp(sg, cp, torch, jax, jnp) -> None:
    d, h, n = MLP_SIZE
    work = f"vector MLP loss+grad d={d} l={h} N={n}"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    y = (rng.random(n) < 0.5).astype(float)
    U, c, w, b = rng.standard_normal((h, d)) * 0.05, np.zeros(h), rng.standard_normal(h) * 0.1, 0.0
    outs, ins = vector_mlp()

    def on_cupy():
        Xc, yc, Uc, cc, wc = (cp.asarray(a) for a in (X, y, U, c, w))
        sync = cp.cuda.Device().synchronize

        def hand():
            phi = 1 / (1 + cp.exp(-(Xc @ Uc.T + cc)))
            z = phi @ wc + b
            mu = 1 / (1 + cp.exp(-z))
            loss = cp.mean(cp.logaddexp(0, -z) * yc + cp.logaddexp(0, z) * (1 - yc))
            dz = (mu - yc) / n
            dphi = cp.outer(dz, wc) * phi * (1 - phi)
            return loss, dphi.T @ Xc, dphi.sum(0), phi.T @ dz, dz.sum()

        row(work, "handwritten cupy backprop", hand, sync)
        ref = [cp.asnumpy(cp.asarray(r)) for r in hand()]
        fn = sg.compile(outs, ins, backend="cupy")
        args = (Uc, cc, wc, b, Xc, yc)
        row(work, "symgrad backend='cupy'", lambda: fn(*args), sync)
        got = [cp.asnumpy(cp.asarray(r)) for r in fn(*args)]
        err = max(float(np.max(np.abs(g - r)) / max(np.max(np.abs(r)), 1e-300))
                  for g, r in zip(got, ref))
        rows.append((work, "check: symgrad cupy vs handwritten, max rel", f"{err:.1e}"))

    def on_torch():
        Xt, yt, Ut, ct, wt = (torch.tensor(a, device="cuda") for a in (X, y, U, c, w))
        tsync = torch.cuda.synchronize
        Ur, cr, wr = (t.clone().requires_grad_(True) for t in (Ut, ct, wt))
        br = torch.tensor(b, device="cuda", requires_grad=True)

        def tbp():
            z = torch.sigmoid(Xt @ Ur.T + cr) @ wr + br
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, yt)
            return loss, *torch.autograd.grad(loss, [Ur, cr, wr, br])

        row(work, "torch autograd", tbp, tsync)
        fn = sg.compile(outs, ins, backend="torch:cuda")
        row(work, "symgrad backend='torch:cuda'", lambda: fn(Ut, ct, wt, b, Xt, yt), tsync)

    def on_jax():
        Xj, yj, Uj, cj, wj = (jnp.asarray(a) for a in (X, y, U, c, w))

        def lj(p):
            U_, c_, w_, b_ = p
            z = jax.nn.sigmoid(Xj @ U_.T + c_) @ w_ + b_
            return jnp.mean(jnp.logaddexp(0, -z) * yj + jnp.logaddexp(0, z) * (1 - yj))

        gj = jax.jit(jax.value_and_grad(lj))
        pj = (Uj, cj, wj, jnp.asarray(b))
        row(work, "jax.jit(value_and_grad)", lambda: jax.block_until_ready(gj(pj)),
            lambda: None)
        fn = sg.compile(outs, ins, backend="jax")
        row(work, "symgrad backend='jax' (jit)",
            lambda: jax.block_until_ready(fn(Uj, cj, wj, b, Xj, yj)), lambda: None)

    on_each(work, cp, torch, jax, on_cupy, on_torch, on_jax)


def bench_hessian(sg, cp, torch, jax, jnp) -> None:
    n = HESSIAN_N
    m = 2 * n
    work = f"logistic Hessian n={n} m={m}"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, n))
    y = rng.choice([-1.0, 1.0], m)
    w = rng.standard_normal(n) / np.sqrt(n)
    H, ins = hessian_graph(sg)

    def on_cupy():
        Xc, yc, wc = cp.asarray(X), cp.asarray(y), cp.asarray(w)
        sync = cp.cuda.Device().synchronize

        def closed():
            s = 1 / (1 + cp.exp(-(yc * (Xc @ wc))))
            return Xc.T @ ((s * (1 - s))[:, None] * Xc)

        row(work, "cupy closed form Xᵀ(d∘X)", closed, sync)
        fn = sg.compile(H, ins, backend="cupy")
        row(work, "symgrad sg.hessian, backend='cupy'", lambda: fn(Xc, yc, wc), sync)
        ref = closed()
        err = float(cp.max(cp.abs(fn(Xc, yc, wc) - ref)) / cp.max(cp.abs(ref)))
        rows.append((work, "check: symgrad cupy vs closed form, max rel", f"{err:.1e}"))

    def on_torch():
        Xt, yt, wt = (torch.tensor(a, device="cuda") for a in (X, y, w))
        fn = sg.compile(H, ins, backend="torch:cuda")
        row(work, "symgrad sg.hessian, backend='torch:cuda'", lambda: fn(Xt, yt, wt),
            torch.cuda.synchronize)

    def on_jax():
        Xj, yj, wj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(w)
        hj = jax.jit(jax.hessian(lambda v: jnp.sum(jnp.logaddexp(0.0, -yj * (Xj @ v)))))
        row(work, "jax.jit(jax.hessian)", lambda: jax.block_until_ready(hj(wj)), lambda: None)
        fn = sg.compile(H, ins, backend="jax")
        row(work, "symgrad sg.hessian, backend='jax' (jit)",
            lambda: jax.block_until_ready(fn(Xj, yj, wj)), lambda: None)

    on_each(work, cp, torch, jax, on_cupy, on_torch, on_jax)


def targets() -> list[str]:
    out = []
    h = f"logistic Hessian n={HESSIAN_N} m={2 * HESSIAN_N}"
    base = times.get((h, "cupy closed form Xᵀ(d∘X)"))
    sgh = times.get((h, "symgrad sg.hessian, backend='cupy'"))
    if base and sgh:
        r = sgh / base
        out.append(f"Hessian: symgrad cupy / cupy closed form = **{r:.2f}x** (target ≤ 1.10x: "
                   f"{'met' if r <= 1.1 else 'NOT met'})")
    m = "vector MLP loss+grad d={} l={} N={}".format(*MLP_SIZE)
    jx = times.get((m, "jax.jit(value_and_grad)"))
    ours = {k[1]: v for k, v in times.items() if k[0] == m and k[1].startswith("symgrad")}
    if jx and ours:
        best = min(ours, key=ours.get)
        r = ours[best] / jx
        out.append(f"MLP: best symgrad ({best}) / jax.jit = **{r:.2f}x** (target ≤ 1.20x: "
                   f"{'met' if r <= 1.2 else 'NOT met'})")
    return out


def gpu_present() -> bool:
    """Whether any NVIDIA GPU is visible (nvidia-smi, cupy or torch), without importing much."""
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
        if r.returncode == 0 and "GPU" in r.stdout:
            return True
    except Exception:
        pass
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def main(quick: bool = False) -> str:
    """The report (markdown). ``quick`` is accepted for benchmarks/run.py and changes nothing:
    the check is already short. Without a GPU it returns at once."""
    if not gpu_present():
        return ("## GPU check\n\n_No NVIDIA GPU here: nothing measured. Run "
                "`python benchmarks/gpu_check.py` on a GPU machine._")
    cp = load("cupy")
    torch = load("torch")
    jax = load("jax")
    jnp = None
    if jax is not None:
        jax.config.update("jax_enable_x64", True)
        jnp = jax.numpy
        if not any(dev.platform == "gpu" for dev in jax.devices()):
            notes.append(f"jax runs on {jax.devices()[0].platform}, not a GPU: not timed "
                         "(install jax[cuda12])")
            jax = jnp = None
    import symgrad as sg

    if cp is not None:
        try:
            cp.zeros(1).sum()
        except Exception as exc:
            notes.append(f"cupy cannot use a GPU here: {type(exc).__name__}: {str(exc)[:100]}")
            cp = None
    if torch is not None and not torch.cuda.is_available():
        notes.append("torch has no CUDA device here: not timed")
    card = card_name(cp, torch)
    versions = " · ".join(f"{mod.__name__} {getattr(mod, '__version__', '?')}"
                          for mod in (np, cp, torch, jax) if mod is not None)
    head = [f"GPU check — {datetime.date.today().isoformat()} — card: {card}",
            f"{versions} · python {platform.python_version()}", ""]
    print("\n".join(head), flush=True)
    tests = run_tests()
    print("tests:", tests, flush=True)
    for part in (bench_hessian, bench_mlp):
        if left() < 20:
            notes.append(f"{part.__name__} skipped: out of time")
            continue
        try:
            part(sg, cp, torch, jax, jnp)
        except Exception as exc:
            notes.append(f"{part.__name__} stopped: {type(exc).__name__}: {str(exc)[:120]}")
            traceback.print_exc()
    table = ["| workload | system | median per call (float64) |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(head + [f"GPU tests (tests/test_gpu.py, tests/test_backends.py): {tests}",
                             ""] + table + [""] + targets()
                     + ([""] + [f"- {n}" for n in notes] if notes else [])
                     + ["", f"_wall time {time.monotonic() - T0:.0f} s_"])
    return text


if __name__ == "__main__":
    report = main()
    print(report)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "gpu_check.md"), "w") as f:
            f.write(report + "\n")
