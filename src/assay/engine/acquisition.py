"""Acquisition functions and their optimization over mixed spaces.

* one optimized metric: qLogNEI (noisy expected improvement, log-space), pending points
  included jointly so parallel workers get diverse points; with nothing pending and no
  constraints, analytic LogEI over the best posterior mean at the observed points (same
  criterion for one point, a fraction of the cost);
* two optimized metrics: qLogNEHVI with the reference point from the metric thresholds;
* none (constraint-only search): log probability of feasibility;
* multisolution (``num_solutions > 1``) search turns: log probability of reaching the 80th
  percentile of the observed values, repelled from the good points already found
  (:func:`repelled`), so several optima get explored;
* constraint metrics and failed observations act as outcome constraints (the acquisition
  is weighted by the modelled probability of feasibility).

:func:`maximize` searches the encoding: a pool of valid random points plus perturbations
of the incumbents, then multi-start L-BFGS-B (SLSQP with linear constraints) on the
numeric columns with the one-hot columns of each start held fixed, then every result is
snapped to a valid assignment, checked against the linear constraints and the points
already observed or pending, and re-scored.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay.engine.encoding import Encoder
from assay.engine.initial import random_points

__all__ = ["Constraint", "build_acquisition", "maximize", "repelled"]


@dataclass(frozen=True)
class Constraint:
    """Output ``index`` of the model must satisfy ``sign * (value - bound) <= 0``."""

    index: int
    bound: float
    sign: float  # +1: value <= bound; -1: value >= bound


def _callables(constraints: Sequence[Constraint]) -> list:
    return [lambda Z, c=c: c.sign * (Z[..., c.index] - c.bound) for c in constraints]


def build_acquisition(model: Any, *, n_objectives: int, X_baseline: Any, X_pending: Any,
                      constraints: Sequence[Constraint] = (), ref_point: Sequence[float] | None = None,
                      seed: int = 0, mc_samples: int = 128) -> Any:
    """The acquisition function for this problem shape (maximized by :func:`maximize`)."""
    import torch
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement, qLogProbabilityOfFeasibility
    from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
    from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
    from botorch.acquisition.objective import GenericMCObjective
    from botorch.sampling import SobolQMCNormalSampler

    sampler = SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=seed)
    cons = _callables(constraints) or None
    if n_objectives == 0:
        return qLogProbabilityOfFeasibility(model, constraints=_callables(constraints), sampler=sampler,
                                            X_pending=X_pending)
    if n_objectives == 1 and not constraints and X_pending is None and model.num_outputs == 1:
        # one point, nothing pending, no constraints: analytic LogEI against the best posterior mean
        # at the observed points (a noise-robust incumbent), far cheaper than the MC qLogNEI
        from botorch.acquisition.analytic import LogExpectedImprovement

        single = model.models[0] if hasattr(model, "models") else model
        with torch.no_grad():
            best = single.posterior(X_baseline).mean.max().item()
        return LogExpectedImprovement(single, best_f=best)
    if n_objectives == 1:
        objective = GenericMCObjective(_first_output) if model.num_outputs > 1 else None
        return qLogNoisyExpectedImprovement(model, X_baseline=X_baseline, sampler=sampler, objective=objective,
                                            X_pending=X_pending, constraints=cons, prune_baseline=True)
    assert ref_point is not None
    _no_jit_compile()
    return qLogNoisyExpectedHypervolumeImprovement(
        model, ref_point=list(ref_point), X_baseline=X_baseline, sampler=sampler,
        objective=IdentityMCMultiOutputObjective(outcomes=list(range(n_objectives))), constraints=cons,
        X_pending=X_pending, prune_baseline=True)


def _no_jit_compile() -> None:
    """BoTorch's qLogNEHVI JIT-compiles an optional C++ kernel on first use (``-march=native``, a
    compiler and ninja needed) behind a file lock in ``~/.cache/torch_extensions``: a process killed
    mid-compile leaves the lock behind and every later qLogNEHVI waits for it forever. A suggestion
    must never compile or block on that, so the pure-PyTorch path is used unless
    ``ASSAY_BOTORCH_FUSED=1``."""
    import os

    if os.environ.get("ASSAY_BOTORCH_FUSED") == "1":
        return
    import botorch.acquisition.multi_objective.logei as mo_logei

    if getattr(mo_logei, "_C", None) is None and hasattr(mo_logei, "_load_attempted"):
        mo_logei._load_attempted = True


def repelled(acqf: Any, centers: np.ndarray, scale: float | np.ndarray) -> Any:
    """``acqf`` (a log-space acquisition) plus ``sum log(1 - exp(-|(x - c) / scale|^2 / 2))`` over
    ``centers`` (model encoding): a smooth penalty that vanishes away from them. ``scale`` is one
    length or one per column (a region stretched along some columns)."""
    import torch
    from botorch.acquisition import AcquisitionFunction

    C = torch.as_tensor(np.asarray(centers, dtype=float), dtype=torch.double)
    S = torch.as_tensor(np.asarray(scale, dtype=float), dtype=torch.double)

    class _Repelled(AcquisitionFunction):
        def __init__(self) -> None:
            super().__init__(model=acqf.model)
            self.base = acqf

        def forward(self, X: Any) -> Any:
            out = self.base(X)
            if len(C):
                d2 = (((X[..., :, None, :] - C) / S) ** 2).sum(-1)  # batch x q x centers
                pen = torch.log1p(-torch.exp(-d2 / 2) + 1e-9).sum(dim=(-1, -2))
                out = out + pen
            return out

    return _Repelled()


def _score(acqf: Any, X: np.ndarray, chunk: int = 256) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(X), chunk):
            t = torch.as_tensor(X[i:i + chunk], dtype=torch.double).unsqueeze(1)
            out.append(acqf(t).detach().cpu().numpy())
    v = np.concatenate(out) if out else np.zeros(0)
    return np.where(np.isfinite(v), v, -np.inf)


def _pool(enc: Encoder, rng: np.random.Generator, n_raw: int, incumbents: Sequence[dict],
          box: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict]:
    """Valid random assignments plus local perturbations of the incumbents (unit encoding).

    With a trust-region ``box`` (model encoding bounds), the numeric columns are drawn inside it:
    half uniformly, half by perturbing a few columns of the first incumbent (TuRBO's candidates);
    categorical columns keep the incumbent's value with probability 0.8.
    """
    space = enc.space
    if box is not None and incumbents:
        return _box_pool(enc, rng, n_raw, incumbents[0], box)
    u = random_points(space, n_raw, rng)
    if incumbents:
        per = max(1, n_raw // (2 * len(incumbents)))
        for a in incumbents:
            base = space.to_unit(a)
            for scale in (0.02, 0.08, 0.2):
                k = max(1, per // 3)
                noise = rng.normal(0.0, scale, (k, space.dim))
                # perturb a random subset of columns (all when the space is small)
                mask = rng.random((k, space.dim)) < min(1.0, 4.0 / max(space.dim, 1))
                mask[np.arange(k), rng.integers(0, space.dim, k)] = True
                u = np.vstack([u, np.clip(base + noise * mask, 0.0, 1.0)])
    return [a for a in space.from_unit(u) if space.satisfies_linear_constraints(a)]


def _box_pool(enc: Encoder, rng: np.random.Generator, n: int, center: dict,
              box: tuple[np.ndarray, np.ndarray]) -> list[dict]:
    space = enc.space
    base = space.to_unit(center)
    u = np.tile(base, (n, 1))
    blocks = [b for b in enc.blocks if b.start in enc.numeric_cols]
    lo = np.array([box[0][b.start] for b in blocks])
    hi = np.array([box[1][b.start] for b in blocks])
    cols = [b.unit for b in blocks]
    if cols:
        draw = lo + rng.random((n, len(cols))) * (hi - lo)
        half = n // 2  # perturb only a few columns around the centre (TuRBO), keep the rest
        keep = rng.random((half, len(cols))) >= min(1.0, 20.0 / len(cols))
        keep[np.arange(half), rng.integers(0, len(cols), half)] = False
        draw[:half][keep] = base[cols][np.nonzero(keep)[1]]
        u[:, cols] = draw
    other = [c for c in range(space.dim) if c not in set(cols)]
    if other:
        flip = rng.random((n, len(other))) < 0.2
        u[:, other] = np.where(flip, rng.random((n, len(other))), u[:, other])
    return [a for a in space.from_unit(u) if space.satisfies_linear_constraints(a)]


#: at most this many extra local-search starts that give every category its own start
CATEGORY_STARTS = 12


def _starts(enc: Encoder, X: np.ndarray, order: np.ndarray, n: int) -> np.ndarray:
    """Rows of ``X`` (ranked best first by ``order``) to start the local search from: the ``n`` best,
    plus the best row holding each value of each categorical block that no start holds yet, the
    best-ranked of those first, up to :data:`CATEGORY_STARTS` more.

    The local search moves only the numeric columns, so a category is explored only from starts
    that hold it: with the ``n`` best alone, a category the model favours less at random points
    (but whose optimum is better) never got its numeric columns optimized."""
    rows = [int(r) for r in order[:n]]
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    best = {}  # one-hot column -> its best-ranked row
    for b in enc.onehot:
        for c in range(b.start, b.start + b.width):
            hit = order[X[order, c] == 1.0]
            if len(hit):
                best[c] = int(hit[0])
    extra: list[int] = []
    for c, r in sorted(best.items(), key=lambda item: rank[item[1]]):
        if len(extra) >= CATEGORY_STARTS:
            break
        if not any(X[s, c] == 1.0 for s in rows + extra):
            extra.append(r)
    return np.asarray(rows + extra, dtype=int)


def maximize(acqf: Any, enc: Encoder, rng: np.random.Generator, *, exclude: set, incumbents: Sequence[dict] = (),
             n_raw: int = 1024, n_restarts: int = 8, maxiter: int = 100, deadline: float | None = None,
             box: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[dict, float]:
    """Best valid assignment for ``acqf`` not in ``exclude`` (keys from ``space.key``), inside
    ``box`` (lower and upper bounds in the model encoding) when given.

    Raises :class:`LookupError` when every candidate found was excluded.
    """
    import torch
    from botorch.generation.gen import gen_candidates_scipy

    space = enc.space
    pool = _pool(enc, rng, n_raw, incumbents, box)
    pool = [a for a in pool if space.key(a) not in exclude]
    if not pool:
        raise LookupError("no new valid point found")
    Xp = enc.encode_many(pool)
    vals = _score(acqf, Xp)
    order = np.argsort(-vals)
    cands: list[dict] = [pool[i] for i in order[: max(n_restarts, 4)]]
    if enc.numeric_cols and n_restarts > 0 and (deadline is None or time.monotonic() < deadline):
        starts = torch.as_tensor(Xp[_starts(enc, Xp, order, n_restarts)], dtype=torch.double).unsqueeze(1)
        fixed = {c: starts[:, 0, c].clone() for c in enc.fixed_cols}
        ineq = [(torch.tensor(cols, dtype=torch.long), torch.tensor(coefs, dtype=torch.double), float(rhs))
                for cols, coefs, rhs in enc.linear_constraints()] or None
        timeout = None if deadline is None else max(0.05, deadline - time.monotonic())
        lower, upper = (0.0, 1.0) if box is None else (torch.as_tensor(box[0]), torch.as_tensor(box[1]))
        try:
            with warnings.catch_warnings():  # an early stop still returns usable points
                warnings.simplefilter("ignore")
                Xr, _ = gen_candidates_scipy(starts, acqf, lower_bounds=lower, upper_bounds=upper,
                                             inequality_constraints=ineq, fixed_features=fixed or None,
                                             options={"maxiter": maxiter}, timeout_sec=timeout)
            for x in Xr[:, 0, :].detach().cpu().numpy():
                a = enc.decode(x)
                if space.satisfies_linear_constraints(a) and space.key(a) not in exclude:
                    cands.append(a)
        except Exception:  # noqa: BLE001 - keep the pool's best when the local search fails
            pass
    Xc = enc.encode_many(cands)
    cv = _score(acqf, Xc)
    best = int(np.argmax(cv))
    return cands[best], float(cv[best])


def _first_output(Z: Any, X: Any = None) -> Any:
    """The objective of a model whose later outputs are constraints: its first output."""
    return Z[..., 0]
