"""Which multi-fidelity surrogate for ``tasks``: held-out full-task accuracy and fit time.

``python -m benchmarks.multitask_models``

Fits each candidate model on random points spread over the three fidelities (0.1 / 0.3 / 1) of
multi-fidelity Branin and augmented Hartmann-6 (see :mod:`benchmarks.multitask`), then predicts 300
random points of the *full* task: Spearman rank correlation (what matters to pick points) and fit
seconds. Models: a ``SingleTaskGP`` with an ARD RBF over ``[x, cost]`` (product kernel), BoTorch's
``SingleTaskMultiFidelityGP`` with the linear-truncated or the downsampling fidelity kernel, a
``MultiTaskGP`` (task index, learned task covariance) and a GP on the full-task points only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.multitask import branin_mf, hartmann6_mf

COSTS = (0.1, 0.3, 1.0)


def _f(name: str) -> tuple[Callable[[np.ndarray, float], np.ndarray], int]:
    if name == "branin-mf":
        return (lambda u, s: np.array([branin_mf({"x1": -5 + 15 * a, "x2": 15 * b}, s) for a, b in u])), 2
    return (lambda u, s: np.array([hartmann6_mf({f"x{i + 1}": v for i, v in enumerate(r)}, s) for r in u])), 6


def compare(name: str, sizes: tuple[int, int, int], seed: int) -> dict[str, tuple[float, float]]:
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import MultiTaskGP, SingleTaskGP, SingleTaskMultiFidelityGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood
    from scipy.stats import spearmanr

    torch.set_num_threads(1)
    f, d = _f(name)
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.random((n, d)) for n in sizes])
    T = np.concatenate([[s] * n for s, n in zip(COSTS, sizes, strict=True)])
    Y = -np.concatenate([f(X[T == s], s) for s in COSTS])  # maximize
    ut = rng.random((300, d))
    yt = -f(ut, 1.0)
    tx, ty = torch.tensor(np.hstack([X, T[:, None]])), torch.tensor(Y)[:, None]
    full = torch.tensor(np.hstack([ut, np.ones((300, 1))]))
    idx = np.array([COSTS.index(t) for t in T], dtype=float)
    makers: dict[str, tuple[Callable[[], Any], Any]] = {
        "SingleTaskGP on [x, cost]": (lambda: SingleTaskGP(tx, ty, outcome_transform=Standardize(1)), full),
        "MF-GP linear-truncated": (lambda: SingleTaskMultiFidelityGP(
            tx, ty, data_fidelities=[d], outcome_transform=Standardize(1)), full),
        "MF-GP downsampling": (lambda: SingleTaskMultiFidelityGP(
            tx, ty, data_fidelities=[d], linear_truncated=False, outcome_transform=Standardize(1)), full),
        "MultiTaskGP": (lambda: MultiTaskGP(torch.tensor(np.hstack([X, idx[:, None]])), ty, task_feature=d,
                                            output_tasks=[2], outcome_transform=Standardize(1)),
                        torch.tensor(np.hstack([ut, 2 * np.ones((300, 1))]))),
        "full-task points only": (lambda: SingleTaskGP(tx[T == 1.0, :d], ty[T == 1.0],
                                                        outcome_transform=Standardize(1)), full[:, :d]),
    }
    out = {}
    for label, (make, xt) in makers.items():
        t0 = time.time()
        model = make()
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        seconds = time.time() - t0
        with torch.no_grad():
            mu = model.posterior(xt).mean.squeeze(-1).numpy()
        out[label] = (float(spearmanr(mu, yt)[0]), seconds)
    return out


def main() -> None:
    print("| problem | points (0.1 / 0.3 / 1) | seed | " + " | ".join(
        ["SingleTaskGP on [x, cost]", "MF-GP linear-truncated", "MF-GP downsampling", "MultiTaskGP",
         "full-task points only"]) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("branin-mf", "hartmann6-mf"):
        for sizes in ((30, 10, 4), (60, 15, 8)):
            for seed in range(2):
                res = compare(name, sizes, seed)
                cells = [f"{r:.2f} ({s:.1f}s)" for r, s in res.values()]
                print(f"| {name} | {' / '.join(map(str, sizes))} | {seed} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
