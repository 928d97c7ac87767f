"""Gaussian-process surrogates (BoTorch), fitted on the model encoding.

One exact :class:`~botorch.models.SingleTaskGP` per outcome (optimized metrics, constraint
metrics and, when some observations failed, a failure indicator), gathered in a
:class:`~botorch.models.ModelListGP` so each outcome keeps its own data, noise and
hyperparameters. Outcomes are standardized; a skewed single objective is first warped
with a Yeo-Johnson power transform (monotone, so the optimum is unchanged). Noise is
fixed from ``value_stddev`` when every observation reports one, and learned otherwise.

**Warm start, deterministically.** Fitting hyperparameters from scratch (~100 L-BFGS steps)
dominated a suggestion's cost. Hyperparameters are now fitted from scratch only on *anchor*
prefixes of the data (the first ``m`` rows, ``m`` on a geometric ladder 4, 5, 6, 8, ... ~x1.25)
and cached in the process keyed by the data; the data of a suggestion is then fitted with at
most :data:`WARM_ITERS` steps starting from its anchor's hyperparameters. Because the anchor
is a function of the data alone (not of what this process fitted before), a suggestion is the
same in a fresh process and in a long-running server. A model fitted on exactly the same data
is rebuilt from the cache without any optimization (the supplier recomputes for new pending
points without refitting).

torch/botorch are imported lazily: ``import assay`` must stay fast.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from botorch.models import SingleTaskGP

__all__ = ["Outcome", "fit_gp", "fit_outcomes", "warp", "anchor_size", "clear_cache"]

#: a GP conditions on at most this many points, and fits its hyperparameters on at most FIT_CAP
#: (suggestion latency stays bounded however many observations there are)
MODEL_CAP = 300
FIT_CAP = 120
#: L-BFGS steps of a cold fit (anchors) and of a warm-started one
COLD_ITERS = 75
WARM_ITERS = 20
_CACHE_SIZE = 256


@dataclass
class Outcome:
    """Training data of one modelled outcome (bigger is better for objectives)."""

    name: str
    X: np.ndarray  # n x d model encoding
    y: np.ndarray  # n
    yvar: np.ndarray | None = None  # n, known noise variances
    kind: str = "objective"  # objective | constraint | failure


def warp(y: np.ndarray) -> np.ndarray:
    """Standardize, then Yeo-Johnson when ``y`` is clearly skewed (monotone increasing)."""
    from scipy import stats

    y = np.asarray(y, dtype=float)
    if len(y) < 8:
        return y
    sd = y.std()
    if not np.isfinite(sd) or sd <= 0:
        return y
    z = (y - y.mean()) / sd
    if abs(stats.skew(z)) < 0.5:
        return y
    try:
        out = stats.yeojohnson(z)[0]
    except (ValueError, FloatingPointError, OverflowError):
        return y
    return out if np.all(np.isfinite(out)) and out.std() > 0 else y


def _ladder(limit: int) -> list[int]:
    out, a = [4], 4.0
    while out[-1] < limit:
        a *= 1.25
        out.append(max(out[-1] + 1, int(round(a))))
    return out


def anchor_size(n: int) -> int:
    """Largest anchor ``<= n`` on the ladder 4, 5, 6, 8, 10, 12, 15, 19, ... (x1.25, rounded)."""
    if n <= 4:
        return n
    return max(m for m in _ladder(n) if m <= n)


# -- the in-process cache of fitted hyperparameters ----------------------------------------
_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every cached fit (tests use it to compare cold and warm paths)."""
    with _cache_lock:
        _cache.clear()


def _key(*arrays: np.ndarray | None, tag: str = "") -> str:
    h = hashlib.blake2b(tag.encode(), digest_size=16)
    for a in arrays:
        if a is None:
            h.update(b"-")
        else:
            a = np.ascontiguousarray(a, dtype=float)
            h.update(repr(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()


def _cached(key: str) -> dict[str, Any] | None:
    with _cache_lock:
        state = _cache.get(key)
        if state is not None:
            _cache.move_to_end(key)
        return state


def _store(key: str, state: dict[str, Any]) -> None:
    with _cache_lock:
        _cache[key] = state
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def _hyper(model: Any) -> dict[str, Any]:
    """The fitted hyperparameters of ``model`` (not its data-bound outcome transform)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("outcome_transform")}


# -- fitting -------------------------------------------------------------------------------
def _check(X: np.ndarray, y: np.ndarray) -> None:
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("non-finite training data")
    if np.std(y) == 0 or not np.isfinite(np.std(y)):
        raise ValueError("outcome values have no usable spread")


#: strength of the penalty on long lengthscales (see :func:`_kernel`)
LONG_LENGTHSCALE_RATE = 0.1


def _kernel(d: int) -> Any:
    """RBF kernel with BoTorch's dimension-scaled LogNormal lengthscale prior plus a ``-rate * l^2`` term
    (lengthscales in units of the unit cube).

    The LogNormal prior alone (median ~10 in 6-d) let a lengthscale run to 11-29 once a few observations
    tied (a decision tree's stump value), switching off the parameters that lead away from the plateau
    (benchmark results with and without the term: docs/benchmarks.md). The extra term costs 0.1 nats at
    l = 1, 2.5 at l = 5 and 10 at l = 10, so fitted lengthscales below ~2 (Branin, Hartmann-6) are
    essentially unchanged. Optuna's GPSampler penalizes ``l^2 + 1/l^2`` (a prior centred on 1); that prior
    (with a Matern-5/2 kernel) also lengthens short lengthscales (Branin's 0.12) and did no better here,
    so only the long side is penalized.
    """
    import math

    from gpytorch.constraints import GreaterThan
    from gpytorch.kernels import RBFKernel
    from gpytorch.priors import LogNormalPrior

    class LongPenalizedLogNormalPrior(LogNormalPrior):
        def log_prob(self, x: Any) -> Any:
            return super().log_prob(x) - LONG_LENGTHSCALE_RATE * x.square()

    prior = LongPenalizedLogNormalPrior(loc=math.sqrt(2) + 0.5 * math.log(d), scale=math.sqrt(3))
    return RBFKernel(ard_num_dims=d, lengthscale_prior=prior,
                     lengthscale_constraint=GreaterThan(2.5e-2, transform=None, initial_value=prior.mode))


def _model(X: np.ndarray, y: np.ndarray, yvar: np.ndarray | None) -> Any:
    import torch
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize

    tX = torch.as_tensor(X, dtype=torch.double)
    tY = torch.as_tensor(y, dtype=torch.double).unsqueeze(-1)
    tV = None if yvar is None else torch.as_tensor(np.maximum(yvar, 1e-12), dtype=torch.double).unsqueeze(-1)
    return SingleTaskGP(tX, tY, tV, covar_module=_kernel(X.shape[1]), outcome_transform=Standardize(m=1))


def _optimize(model: Any, maxiter: int, seed: str) -> None:
    import torch
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    # botorch re-samples hyperparameters when a fit fails: seed that from the data (determinism)
    with torch.random.fork_rng():
        torch.manual_seed(int(seed[:8], 16))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model),
                         optimizer_kwargs={"options": {"maxiter": maxiter}})


def _cold_hyper(X: np.ndarray, y: np.ndarray, yvar: np.ndarray | None, maxiter: int) -> dict[str, Any]:
    """Hyperparameters fitted from the default initialization (on a spread-out subset when large)."""
    if len(y) > FIT_CAP:
        idx = _fit_subset(X, y, FIT_CAP)
        X, y, yvar = X[idx], y[idx], None if yvar is None else yvar[idx]
    key = _key(X, y, yvar, tag=f"cold{maxiter}")
    state = _cached(key)
    if state is None:
        _check(X, y)
        m = _model(X, y, yvar)
        _optimize(m, maxiter, key)
        state = _hyper(m)
        _store(key, state)
    return state


def fit_gp(X: np.ndarray, y: np.ndarray, yvar: np.ndarray | None = None, *, maxiter: int = COLD_ITERS,
           init: dict[str, Any] | None = None, warm_iters: int = WARM_ITERS) -> SingleTaskGP:
    """Fit an exact GP with standardized outcomes; raises if the data cannot be modelled.

    The hyperparameters start from ``init`` (a state from another fit, then at most ``warm_iters``
    L-BFGS steps) or, without it, from the anchor prefix of ``(X, y)`` (see the module docstring).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    _check(X, y)
    if init is None:
        m = anchor_size(len(y))
        init = _cold_hyper(X[:m], y[:m], None if yvar is None else yvar[:m], maxiter)
        if m == len(y) and len(y) <= FIT_CAP:
            warm_iters = 0  # the anchor is this very data set
    if len(y) > MODEL_CAP:  # bounded cost: the best, their neighbours and an even spread of the rest
        idx = _fit_subset(X, y, MODEL_CAP)
        X, y, yvar = X[idx], y[idx], None if yvar is None else yvar[idx]
    model = _model(X, y, yvar)
    key = _key(X, y, yvar, *init.values(), tag=f"final{warm_iters}")
    state = _cached(key)
    if state is None:
        model.load_state_dict(init, strict=False)
        if warm_iters > 0:
            _optimize(model, warm_iters, key)
        state = _hyper(model)
        _store(key, state)
    else:
        model.load_state_dict(state, strict=False)
    model.eval()
    return model


def _fit_subset(X: np.ndarray, y: np.ndarray, cap: int) -> np.ndarray:
    """Best third, the neighbours of the best, and an even spread of the rest."""
    order = np.argsort(-y, kind="stable")
    best = order[: cap // 3]
    d = np.linalg.norm(X - X[order[0]], axis=1)
    taken = np.zeros(len(y), dtype=bool)
    taken[best] = True
    near = [i for i in np.argsort(d, kind="stable") if not taken[i]][: cap // 3]
    taken[near] = True
    rest = np.flatnonzero(~taken)
    want = cap - int(taken.sum())
    step = max(1, len(rest) // max(1, want))
    taken[rest[::step][:want]] = True
    return np.flatnonzero(taken)


def _values(o: Outcome, single: bool) -> np.ndarray:
    return warp(o.y) if o.kind == "objective" and o.yvar is None and single else o.y


def _anchor(o: Outcome, single: bool, maxiter: int) -> tuple[dict[str, Any], int]:
    """Hyperparameters of the anchor prefix of ``o`` (all of it when the prefix is constant) and its size."""
    m = anchor_size(len(o.y))
    if np.ptp(o.y[:m]) == 0:
        m = len(o.y)
    pre = Outcome(o.name, o.X[:m], o.y[:m], None if o.yvar is None else o.yvar[:m], o.kind)
    return _cold_hyper(pre.X, _values(pre, single), pre.yvar, maxiter), m


def fit_outcomes(outcomes: list[Outcome], *, maxiter: int = COLD_ITERS,
                 anchors: list[Outcome] | None = None) -> Any:
    """A fitted :class:`~botorch.models.ModelListGP` with one output per outcome, in order.

    ``anchors`` (aligned with ``outcomes``): fit each outcome warm-started from the anchor
    hyperparameters of the corresponding (larger) data set, e.g. a local model from the global data.
    """
    from botorch.models import ModelListGP

    single = sum(o.kind == "objective" for o in outcomes) == 1
    models = []
    for i, o in enumerate(outcomes):
        init, m = _anchor(o if anchors is None else anchors[i], single, maxiter)
        same = anchors is None and m == len(o.y) and m <= FIT_CAP
        models.append(fit_gp(o.X, _values(o, single), o.yvar, maxiter=maxiter, init=init,
                             warm_iters=0 if same else WARM_ITERS))
    return ModelListGP(*models)


def anchor_lengthscales(outcome: Outcome, *, maxiter: int = COLD_ITERS) -> np.ndarray:
    """Per-column lengthscales of the anchor fit of a single objective (shapes the trust region)."""
    state, _ = _anchor(outcome, True, maxiter)
    model = _model(outcome.X[:2], np.array([0.0, 1.0]), None)
    model.load_state_dict(state, strict=False)
    kernel = model.covar_module
    ls = getattr(kernel, "lengthscale", None)
    if ls is None:
        ls = kernel.base_kernel.lengthscale
    return ls.detach().cpu().numpy().reshape(-1)
