"""Train the lecture's vector MLP by plain SGD with symgrad's compiled gradients.

Data: two interleaved moons (made with numpy, seeded) - not linearly separable. The model is
the lecture's: phi = sigmoid(X U^T + c), mu = sigmoid(phi w + b), mean BCE loss. Prints the
loss as it falls and the final accuracy, and exits non-zero below 90%.
Run: python examples/train_mlp_sgd.py
"""

import sys

import _path  # noqa: F401
import numpy as np

import symgrad as sg


def two_moons(n, noise, rng):
    t = rng.uniform(0, np.pi, n)
    top = np.c_[np.cos(t), np.sin(t)]
    bottom = np.c_[1 - np.cos(t), 0.5 - np.sin(t)]
    X = np.r_[top, bottom] + rng.normal(scale=noise, size=(2 * n, 2))
    y = np.r_[np.zeros(n), np.ones(n)]
    return X, y


rng = np.random.default_rng(0)
Xtr, ytr = two_moons(500, 0.1, rng)
Xte, yte = two_moons(200, 0.1, rng)

d, hidden = 2, 16
X = sg.matrix("X", ("N", d))
Y = sg.vector("Y", "N")
U = sg.matrix("U", (hidden, d))
c = sg.vector("c", hidden)
w = sg.vector("w", hidden)
b = sg.scalar("b")
phi = sg.sigmoid(X @ U.T + c).named("phi")
mu = sg.sigmoid(phi @ w + b).named("mu")
L = sg.mean(sg.bce(mu, Y))
params = [U, c, w, b]
step = sg.compile([L] + sg.grad(L, params), [X, Y] + params)
predict = sg.compile(mu, [X] + params)

theta = [rng.normal(scale=1.0, size=(hidden, d)), np.zeros(hidden),
         rng.normal(scale=1.0, size=hidden), 0.0]
lr, batch = 1.0, 32
for epoch in range(301):
    order = rng.permutation(len(Xtr))
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        loss, *grads = step(Xtr[idx], ytr[idx], *theta)
        theta = [p - lr * g for p, g in zip(theta, grads)]
    if epoch % 50 == 0:
        full = step(Xtr, ytr, *theta)[0]
        print(f"epoch {epoch:3d}  loss {full:.4f}")

acc = np.mean((predict(Xte, *theta) > 0.5) == yte)
print(f"test accuracy {acc:.1%}")
ok = acc > 0.9
print("OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
