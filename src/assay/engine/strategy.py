"""Chooses how to propose points for a :class:`~assay.engine.Problem`.

``suggest(problem, n)`` is the single entry point:

1. ``random_only`` / ``type=random`` → uniform random points;
2. until the initial design is done (size from the dimension, the categories and the
   parallel bandwidth, SigOpt's stencil rule) or while fewer than 3 observations succeeded
   → the quasi-random initial design (:mod:`assay.engine.initial`);
3. otherwise Bayesian optimization: GPs on the model encoding (:mod:`assay.engine.gp`),
   qLogNEI / qLogNEHVI / feasibility with pending points (:mod:`assay.engine.acquisition`),
   greedy batches for ``n > 1``. With ``num_solutions > 1`` every other suggestion is a search
   turn (SigOpt's multisolution recast): the probability of reaching the 80th percentile of the
   values so far, repelled from the good points already found, so that several optima are
   explored; the other turns improve on the best as usual.

Never raises for a valid problem: when a method fails or runs out of time the strategy
falls back to a random point that satisfies the space and records the reason in
``Candidate.source`` (``"fallback-random: <reason>"``). Deterministic for a given
``(seed, n_suggested)``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from assay.domain import Metric, Observation
from assay.engine.grid import grid_points
from assay.engine.initial import initial_points, random_candidates
from assay.engine.problem import Candidate, Problem

__all__ = ["suggest", "initial_design_size", "MIN_SUCCESSES"]

#: successful observations needed before a model is fitted
MIN_SUCCESSES = 3


def _random(problem: Problem, n: int, reason: str, rng: np.random.Generator) -> list[Candidate]:
    """Random points honouring priors, conditionals, grids and linear constraints (assay.engine.initial)."""
    return [replace(c, task=_full_task(problem)) for c in random_candidates(problem, n, reason, rng)]


def _full_task(problem: Problem) -> Any:
    return max(problem.tasks, key=lambda t: t.cost) if problem.tasks else None


def initial_design_size(problem: Problem) -> int:
    """``max(5, 2 x parameters)`` or SigOpt's stencil ``max(categories, 1) x numeric parameters`` when
    larger (capped at ``2 x parameters + 6`` so large categorical spaces still reach the model), plus
    ``bandwidth - 1``, and at most a third of the budget.

    SigOpt's stencil alone gave 6 points to a 6-parameter problem; with so few, expected improvement
    settled on the first basin it saw (Hartmann-6, decision trees stuck on their stump value). The
    ``2 x parameters`` floor is Ax's default Sobol budget; its effect is in docs/engine.md."""
    space = problem.space
    n_cat = sum(len(p.categorical_values) for p in space.parameters if p.type == "categorical")
    n_cat += sum(len(c.values) for c in space.conditionals)
    n_num = sum(p.type != "categorical" for p in space.parameters)
    n_par = len(space.parameters)
    bw = max(1, problem.parallel_bandwidth)
    size = max(5, 2 * n_par, min(max(n_cat, 1) * n_num, 2 * n_par + 6)) + bw - 1
    if problem.observation_budget:
        size = min(size, max(MIN_SUCCESSES + bw - 1, problem.observation_budget // 3))
    return size


def _initial(problem: Problem, n: int, rng: np.random.Generator, why: str = "") -> list[Candidate]:
    """The initial design: scrambled Sobol shaped by priors, repaired into the linear constraints."""
    return [replace(c, task=_full_task(problem), source=c.source + why) for c in initial_points(problem, n)]


def suggest(problem: Problem, n: int = 1) -> list[Candidate]:
    """Propose ``n`` candidates for ``problem``."""
    if problem.tasks:  # cost-aware multi-fidelity: its own model, acquisition and schedule
        from assay.engine import multitask

        return multitask.suggest(problem, n)
    if problem.experiment_type == "grid":  # enumerate the grid; 409 once exhausted
        return grid_points(problem, n)
    rng = np.random.default_rng([problem.seed, problem.n_suggested])
    if problem.random_only or problem.experiment_type == "random":
        return _random(problem, n, "random", rng)
    try:
        n_ok = sum(_usable(o, problem.metrics) for o in problem.observations)
        if max(problem.n_suggested, len(problem.observations)) < initial_design_size(problem):
            return _initial(problem, n, rng)
        if n_ok < MIN_SUCCESSES:
            return _initial(problem, n, rng, f": {n_ok} successful observations, the model needs {MIN_SUCCESSES}")
        return _bayes(problem, n, rng)
    except Exception as exc:  # the engine must always answer  # noqa: BLE001
        return _random(problem, n, f"fallback-random: {type(exc).__name__}: {exc}"[:500], rng)


# -- Bayesian optimization ----------------------------------------------------------------
def _usable(o: Observation, metrics: Sequence[Metric]) -> bool:
    return not o.failed and all(o.value_of(m.name) is not None for m in metrics if m.strategy != "store")


def _stddev(o: Observation, name: str) -> float | None:
    for v in o.values:
        if v.name == name:
            return v.value_stddev
    return None


class _Data:
    """Training data, constraints and incumbents of a problem in the model encoding."""

    def __init__(self, problem: Problem, enc: Any) -> None:
        from assay.engine.acquisition import Constraint
        from assay.engine.gp import Outcome

        obs = [o for o in problem.observations if not problem.tasks or o.task is None
               or o.task == _full_task(problem)]
        ok = [o for o in obs if _usable(o, problem.metrics)]
        self.X = enc.encode_many([o.assignments for o in ok])
        self.ok = ok
        opt = [m for m in problem.metrics if m.strategy == "optimize"]
        con = [m for m in problem.metrics if m.strategy == "constraint"]
        self.opt = opt
        self.outcomes: list[Outcome] = []
        self.constraints: list[Constraint] = []
        self.Y = np.zeros((len(ok), len(opt)))
        for j, m in enumerate(opt):
            y = np.array([o.value_of(m.name) for o in ok], dtype=float)
            self.Y[:, j] = y if m.objective == "maximize" else -y
            self.outcomes.append(Outcome(m.name, self.X, self.Y[:, j], self._yvar(ok, m.name), "objective"))
        self.feasible = np.ones(len(ok), dtype=bool)
        for m in con:
            c = np.array([o.value_of(m.name) for o in ok], dtype=float)
            sign = 1.0 if m.objective == "minimize" else -1.0
            assert m.threshold is not None
            self.feasible &= sign * (c - m.threshold) <= 0
            if np.ptp(c) > 0:  # a constant constraint carries no information for the model
                self.constraints.append(Constraint(len(self.outcomes), float(m.threshold), sign))
                self.outcomes.append(Outcome(m.name, self.X, c, self._yvar(ok, m.name), "constraint"))
        if any(o.failed for o in obs):  # in observation order (the GP's warm start fits prefixes)
            rows = [o for o in obs if o.failed or _usable(o, problem.metrics)]
            Xf = enc.encode_many([o.assignments for o in rows])
            yf = np.array([1.0 if o.failed else 0.0 for o in rows])
            self.constraints.append(Constraint(len(self.outcomes), 0.5, 1.0))
            self.outcomes.append(Outcome("failed", Xf, yf, None, "failure"))

    @staticmethod
    def _yvar(ok: list[Observation], name: str) -> np.ndarray | None:
        sd = [_stddev(o, name) for o in ok]
        if any(s is None for s in sd):
            return None
        return np.square(np.asarray(sd, dtype=float))

    def incumbents(self, k: int = 5) -> list[dict]:
        if not self.ok or not self.opt:
            return [o.assignments for o in self.ok[-k:]]
        idx = np.flatnonzero(self.feasible) if self.feasible.any() else np.arange(len(self.ok))
        if len(self.opt) == 1:
            best = idx[np.argsort(-self.Y[idx, 0])[:k]]
        else:
            from assay.engine.analysis import pareto_mask

            front = idx[pareto_mask(self.Y[idx])]
            best = front[:k]
        return [self.ok[i].assignments for i in best]

    def ref_point(self) -> list[float]:
        """Signed thresholds when given, else just below the worst observed value of each objective."""
        out = []
        for j, m in enumerate(self.opt):
            if m.threshold is not None:
                out.append(m.threshold if m.objective == "maximize" else -m.threshold)
            else:
                y = self.Y[:, j]
                out.append(float(y.min() - 0.1 * max(np.ptp(y), 1e-9)))
        return out


#: length scale of the repulsion around good points (fraction of the unit cube's diagonal)
REPULSION_SCALE = 0.1


def _search_acquisition(model: Any, data: _Data, X_pending: Any, seed: int) -> Any:
    """Multisolution search turn: log P(objective >= its 80th percentile and feasible), repelled
    from the observed points already that good (:func:`assay.engine.acquisition.repelled`)."""
    from assay.engine.acquisition import Constraint, build_acquisition, repelled
    from assay.engine.analysis import GOOD_QUANTILE

    y = data.Y[data.feasible, 0] if data.feasible.any() else data.Y[:, 0]
    cut = float(np.quantile(y, GOOD_QUANTILE))
    good = data.feasible & (data.Y[:, 0] >= cut)
    cons = [*data.constraints, Constraint(0, cut, -1.0)]
    base = build_acquisition(model, n_objectives=0, X_baseline=None, X_pending=X_pending, constraints=cons,
                             seed=seed)
    scale = REPULSION_SCALE * float(np.sqrt(max(data.X.shape[1], 1)))
    return repelled(base, data.X[good], scale)


#: the newest observations that must all repeat an earlier value before the search avoids that plateau
PLATEAU_REPEATS = 2


def _plateau(data: _Data) -> np.ndarray | None:
    """Rows of a plateau the search keeps landing on, or None.

    When each of the newest :data:`PLATEAU_REPEATS` observations repeats exactly a value observed
    before it, different assignments are giving the same result: one setting makes the others
    irrelevant (a tree's minimum leaf weight turning every configuration into the same stump) or the
    metric is quantized (an accuracy on a few hundred rows). The GP, smooth and stationary, still sees
    unexplored corners of that flat region as promising, and the search spent most of a small budget
    re-sampling one value. Its rows (every observation with one of those values) are returned so that
    the acquisition is repelled from them (:func:`assay.engine.acquisition.repelled`)."""
    y = data.Y[:, 0]
    k = PLATEAU_REPEATS
    if len(y) <= k:
        return None

    def seen(i: int) -> bool:
        return bool(np.any(np.isclose(y[:i], y[i], rtol=1e-12, atol=0.0)))

    if not all(seen(i) for i in range(len(y) - k, len(y))):
        return None
    recent = y[-k:]
    rows = np.flatnonzero(np.isclose(y[:, None], recent[None, :], rtol=1e-12, atol=0.0).any(axis=1))
    return rows


#: the newest observations that must all lie next to the incumbent before one suggestion looks elsewhere
POLISH_REPEATS = 4
#: "next to": within this fraction of every column's range (model encoding: the unit cube, one-hot)
POLISH_RADIUS = 0.05


def _polishing(data: _Data) -> np.ndarray | None:
    """Rows next to the incumbent when each of the newest :data:`POLISH_REPEATS` observations landed
    there, else None. The search is then only refining one point (on Branin, seeds with the incumbent on
    the boundary next to a minimum it could not see spent 15 of 30 evaluations there): the next suggestion
    is repelled from that neighbourhood, so it tests the model's belief that nothing nearby is better."""
    y = np.where(data.feasible, data.Y[:, 0], -np.inf) if data.feasible.any() else data.Y[:, 0]
    if len(y) < POLISH_REPEATS + 2:
        return None
    near = np.all(np.abs(data.X - data.X[int(np.argmax(y))]) <= POLISH_RADIUS, axis=1)
    if not near[-POLISH_REPEATS:].all():
        return None
    return np.flatnonzero(near)


def _plateau_scale(P: np.ndarray, dim: int) -> np.ndarray:
    """Per-column repulsion lengths of a plateau's points ``P``: the value did not change across
    their spread in a column, so the flat region is taken to extend that far along it (at least the
    multisolution repulsion length): the search leaves the whole slab, not just the points seen."""
    base = REPULSION_SCALE * float(np.sqrt(max(dim, 1)))
    return np.maximum(base, np.ptp(P, axis=0))


def _limit_threads(torch: Any) -> None:
    """Small GP matrices gain nothing from intra-op threads, and on a busy machine threads
    spin against each other (10x slower): one thread unless ``ASSAY_TORCH_THREADS`` says more."""
    want = int(os.environ.get("ASSAY_TORCH_THREADS", "1"))
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)


def _acq_budget(dim: int) -> dict[str, int]:
    """Acquisition search effort scaled to the model dimension (raw points, L-BFGS starts, steps)."""
    return {"n_raw": int(min(512, 128 + 48 * dim)), "n_restarts": int(min(6, 2 + dim // 4)), "maxiter": 40}


def _bayes(problem: Problem, n: int, rng: np.random.Generator) -> list[Candidate]:
    import torch

    from assay.engine import trust_region as tr
    from assay.engine.acquisition import build_acquisition, maximize, repelled
    from assay.engine.encoding import Encoder
    from assay.engine.gp import fit_outcomes

    start = time.monotonic()
    deadline = None if problem.time_limit is None else start + problem.time_limit
    seed = int(np.random.default_rng([problem.seed, problem.n_suggested, 7]).integers(2**31))
    _limit_threads(torch)
    torch.manual_seed(seed)
    enc = Encoder(problem.space)
    data = _Data(problem, enc)
    n_obj = len(data.opt)
    if n_obj == 0 and not data.constraints:
        return _initial(problem, n, rng, ": every observation was feasible so far")
    region = None
    if tr.use_trust_region(len(data.ok), enc.dim, n_obj):
        region = _trust_region(problem, enc, data)
        model, X_base, box, kind = region["model"], region["X"], region["box"], "lognei"
        source = "gp-tr:lognei"
    else:
        model = fit_outcomes(data.outcomes)
        # NEI's incumbents: the objective model's own training points (a subset when there are many)
        X_base = model.models[0].train_inputs[0] if n_obj else torch.as_tensor(data.X, dtype=torch.double)
        box = None
        kind = {0: "logpf", 1: "lognei"}.get(n_obj, "lognehvi")
        source = f"gp:{kind}"
    if deadline is not None and time.monotonic() > deadline:
        raise TimeoutError(f"model fit took {time.monotonic() - start:.2f}s, over the {problem.time_limit}s limit")
    pending = [dict(p) for p in problem.pending]
    exclude = {problem.space.key(o.assignments) for o in problem.observations}
    exclude |= {problem.space.key(p) for p in pending}
    budget = _acq_budget(enc.dim)
    incumbents = data.incumbents()
    plateau = _plateau(data) if n_obj == 1 else None
    polish = _polishing(data) if n_obj == 1 and plateau is None and region is None else None
    out: list[Candidate] = []
    for i in range(n):
        Xp = torch.as_tensor(enc.encode_many(pending), dtype=torch.double) if pending else None
        # multisolution: every other suggestion searches away from the good points (global model only)
        search = (n_obj == 1 and region is None and problem.num_solutions > 1
                  and (problem.n_suggested + i) % 2 == 1)
        if search:
            acqf = _search_acquisition(model, data, Xp, seed + i)
        else:
            acqf = build_acquisition(model, n_objectives=n_obj, X_baseline=X_base, X_pending=Xp,
                                     constraints=data.constraints,
                                     ref_point=data.ref_point() if n_obj > 1 else None, seed=seed + i, mc_samples=64)
            if plateau is not None:
                acqf = repelled(acqf, data.X[plateau], _plateau_scale(data.X[plateau], enc.dim))
            elif polish is not None and i == 0:
                acqf = repelled(acqf, data.X[polish], np.maximum(POLISH_RADIUS, np.ptp(data.X[polish], axis=0)))
        a, v = maximize(acqf, enc, rng, exclude=exclude, incumbents=incumbents, deadline=deadline, box=box,
                        **budget)
        info: dict[str, Any] = {"acquisition": v, "observations": len(data.ok)}
        if region is not None:
            info["trust_region"] = region["info"]
        if plateau is not None and not search:
            info["plateau"] = int(len(plateau))  # observations of the repeated values it is repelled from
        elif polish is not None and not search and i == 0:
            info["polishing"] = int(len(polish))  # observations next to the incumbent it is repelled from
        analytic = n_obj == 1 and not data.constraints and Xp is None  # see build_acquisition
        src = ("gp:multisolution-search" if search else source.replace("lognei", "logei") if analytic
               else source)
        out.append(Candidate(a, task=_full_task(problem), source=src, info=info))
        pending.append(a)
        exclude.add(problem.space.key(a))
    return out


def _trust_region(problem: Problem, enc: Any, data: _Data) -> dict[str, Any]:
    """Local model and box of the trust region (:mod:`assay.engine.trust_region`)."""
    import torch

    from assay.engine import trust_region as tr
    from assay.engine.gp import Outcome, anchor_lengthscales, fit_outcomes

    y = data.Y[:, 0]
    state = tr.replay(np.where(data.feasible, y, -np.inf) if data.feasible.any() else y,
                      initial_design_size(problem), len(enc.numeric_cols) or enc.dim)
    idx = np.flatnonzero(data.feasible) if data.feasible.any() else np.arange(len(y))
    center = data.X[idx[int(np.argmax(y[idx]))]]
    ls = anchor_lengthscales(data.outcomes[0])
    lb, ub = tr.box(center, state.length, ls, enc.numeric_cols)
    minimum = min(len(y), max(2 * enc.dim + 10, 40))
    rows = tr.local_rows(data.X, center, ls, lb, ub, minimum=minimum)
    local: list[Outcome] = []
    for o in data.outcomes:
        r = rows if o.kind != "failure" else tr.local_rows(o.X, center, ls, lb, ub, minimum=minimum)
        if np.ptp(o.y[r]) == 0:  # constant here (e.g. no failure nearby): add the nearest that differ
            d = np.linalg.norm((o.X - center) / ls, axis=1)
            other = np.flatnonzero(o.y != o.y[r[0]])
            r = np.union1d(r, other[np.argsort(d[other], kind="stable")[:10]])
        local.append(Outcome(o.name, o.X[r], o.y[r], None if o.yvar is None else o.yvar[r], o.kind))
    model = fit_outcomes(local, anchors=data.outcomes)
    info = {"length": round(state.length, 6), "restarts": state.restarts, "local_points": int(len(rows))}
    return {"model": model, "X": torch.as_tensor(data.X[rows], dtype=torch.double), "box": (lb, ub), "info": info}
