"""Warm-started GP fits: anchors, validity against a cold fit, caching, determinism across process history."""

from __future__ import annotations

import numpy as np

from assay.domain import Metric
from assay.engine import Problem, gp
from assay.engine.strategy import suggest

from .helpers import BRANIN, branin, observe

F = (Metric("f", "minimize"),)


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, 2))
    y = np.array([-branin({"x1": -5 + 15 * a, "x2": 15 * b}) for a, b in X])
    return X, y


def _mll(model) -> float:
    from gpytorch.mlls import ExactMarginalLogLikelihood

    model.train()
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    X, y = model.train_inputs[0], model.train_targets
    value = float(mll(model(X), y).detach())
    model.eval()
    return value


def test_anchor_ladder_is_a_bounded_geometric_prefix() -> None:
    sizes = [gp.anchor_size(n) for n in range(1, 2000)]
    assert all(1 <= m <= n for n, m in zip(range(1, 2000), sizes, strict=True))
    assert sizes == sorted(sizes)
    assert all(n - m <= 0.25 * n + 1 for n, m in zip(range(8, 2000), sizes[7:], strict=True))
    assert len(set(sizes)) < 40  # few cold fits however long the experiment runs


def test_warm_fit_is_as_good_as_a_cold_fit_and_cached() -> None:
    gp.clear_cache()
    X, y = _data(40)
    cold = gp.fit_gp(X, y, init=gp._cold_hyper(X, y, None, gp.COLD_ITERS), warm_iters=0)
    gp.clear_cache()
    warm = gp.fit_gp(X, y)  # starts from the anchor fitted on the first 37 rows
    assert gp.anchor_size(40) < 40
    assert _mll(warm) >= _mll(cold) - 0.05
    size = len(gp._cache)
    again = gp.fit_gp(X, y)  # same data: rebuilt from the cache, no new fit
    assert len(gp._cache) == size
    for k, v in warm.state_dict().items():
        assert np.allclose(v.numpy(), again.state_dict()[k].numpy())
    # the warm model predicts like the cold one where it matters
    import torch

    Xt = torch.as_tensor(np.random.default_rng(1).random((50, 2)))
    with torch.no_grad():
        a, b = warm.posterior(Xt).mean.numpy().ravel(), cold.posterior(Xt).mean.numpy().ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.95


def _obs(n: int) -> list:
    rng = np.random.default_rng(4)
    out = []
    for i in range(n):
        a = {"x1": float(rng.uniform(-5, 10)), "x2": float(rng.uniform(0, 15))}
        out.append(observe(a, i, {"f": branin(a)}))
    return out


def test_suggestions_do_not_depend_on_what_the_process_fitted_before() -> None:
    obs = _obs(23)

    def ask(k: int) -> dict:
        return suggest(Problem(BRANIN, F, observations=obs[:k], seed=9, n_suggested=k))[0].assignments

    gp.clear_cache()
    fresh = ask(23)
    gp.clear_cache()
    for k in (12, 17, 20, 22):  # a long-running server warmed by earlier fits
        ask(k)
    assert ask(23) == fresh
    assert ask(23) == fresh  # and from the cache
