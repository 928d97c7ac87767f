"""Gaussian-process surrogates (BoTorch), fitted on the model encoding.

One exact :class:`~botorch.models.SingleTaskGP` per outcome (optimized metrics, constraint
metrics and, when some observations failed, a failure indicator), gathered in a
:class:`~botorch.models.ModelListGP` so each outcome keeps its own data, noise and
hyperparameters. Outcomes are standardized; a skewed single objective is first warped
with a Yeo-Johnson power transform (monotone, so the optimum is unchanged). Noise is
fixed from ``value_stddev`` when every observation reports one, and learned otherwise.

torch/botorch are imported lazily: ``import assay`` must stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from botorch.models import SingleTaskGP

__all__ = ["Outcome", "fit_gp", "fit_outcomes", "warp"]

#: a GP conditions on at most this many points, and fits its hyperparameters on at most FIT_CAP
#: (suggestion latency stays bounded however many observations there are)
MODEL_CAP = 300
FIT_CAP = 120


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
    sd = y.std()
    if len(y) < 8 or not np.isfinite(sd) or sd <= 0:
        return y
    z = (y - y.mean()) / sd
    if abs(stats.skew(z)) < 0.5:
        return y
    try:
        out = stats.yeojohnson(z)[0]
    except (ValueError, FloatingPointError, OverflowError):
        return y
    return out if np.all(np.isfinite(out)) and out.std() > 0 else y


def fit_gp(X: np.ndarray, y: np.ndarray, yvar: np.ndarray | None = None, *, maxiter: int = 75) -> SingleTaskGP:
    """Fit an exact GP with standardized outcomes; raises if the data cannot be modelled."""
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("non-finite training data")
    if np.std(y) == 0 or not np.isfinite(np.std(y)):
        raise ValueError("outcome values have no usable spread")
    tX = torch.as_tensor(X, dtype=torch.double)
    tY = torch.as_tensor(y, dtype=torch.double).unsqueeze(-1)
    tV = None
    if yvar is not None:
        tV = torch.as_tensor(np.maximum(yvar, 1e-12), dtype=torch.double).unsqueeze(-1)
    if len(y) > MODEL_CAP:  # bounded cost: the best, their neighbours and an even spread of the rest
        idx = torch.as_tensor(_fit_subset(X, y, MODEL_CAP))
        tX, tY = tX[idx], tY[idx]
        tV = None if tV is None else tV[idx]
    model = SingleTaskGP(tX, tY, tV, outcome_transform=Standardize(m=1))
    if len(tY) > FIT_CAP:  # hyperparameters from a spread-out subset, then condition on all the points
        sub_idx = torch.as_tensor(_fit_subset(tX.numpy(), tY[:, 0].numpy(), FIT_CAP))
        sub = SingleTaskGP(tX[sub_idx], tY[sub_idx], None if tV is None else tV[sub_idx],
                           outcome_transform=Standardize(m=1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(sub.likelihood, sub),
                         optimizer_kwargs={"options": {"maxiter": maxiter}})
        keep = {k: v for k, v in sub.state_dict().items() if not k.startswith("outcome_transform")}
        model.load_state_dict(keep, strict=False)
    else:
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model),
                         optimizer_kwargs={"options": {"maxiter": maxiter}})
    model.eval()
    return model


def _fit_subset(X: np.ndarray, y: np.ndarray, cap: int) -> np.ndarray:
    """Best third, the neighbours of the best, and an even spread of the rest."""
    order = np.argsort(-y)
    best = order[: cap // 3]
    d = np.linalg.norm(X - X[order[0]], axis=1)
    taken = set(best.tolist())
    near = [i for i in np.argsort(d) if i not in taken][: cap // 3]
    chosen = set(best) | set(near)
    rest = [i for i in range(len(y)) if i not in chosen]
    step = max(1, len(rest) // max(1, cap - len(chosen)))
    spread = rest[::step][: cap - len(chosen)]
    return np.array(sorted(chosen | set(spread)))


def fit_outcomes(outcomes: list[Outcome], *, maxiter: int = 75) -> Any:
    """A fitted :class:`~botorch.models.ModelListGP` with one output per outcome, in order."""
    from botorch.models import ModelListGP

    single = sum(o.kind == "objective" for o in outcomes) == 1
    models = []
    for o in outcomes:
        y = warp(o.y) if o.kind == "objective" and o.yvar is None and single else o.y
        models.append(fit_gp(o.X, y, o.yvar, maxiter=maxiter))
    return ModelListGP(*models)
