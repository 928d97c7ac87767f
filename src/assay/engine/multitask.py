"""Cost-aware multi-fidelity suggestions for experiments with ``tasks``.

Each task ``{name, cost}`` is one fidelity of the same objective; the cost in (0, 1] is
both the budget it consumes and the fidelity feature of the model (1 = the full task).

* **Model:** BoTorch's ``SingleTaskMultiFidelityGP`` over ``[model encoding of x, cost]``: an
  RBF kernel over the parameters times a *downsampling kernel* over the cost (Klein et al. 2017),
  which models the deviation of a cheap task from the full task as shrinking to zero at cost 1.
  Every cheap observation informs the full task as far as the fitted kernel says they correlate.
  (Chosen over the product-RBF ``SingleTaskGP``, the linear-truncated fidelity kernel and a
  ``MultiTaskGP`` on held-out full-task rank correlation and fit time; see docs/benchmarks.md.)
* **Exploration:** multi-fidelity max-value entropy search (``qMultiFidelityMaxValueEntropy``,
  Takeno et al. 2020) with ``InverseCostWeightedUtility`` over an ``AffineFidelityCostModel``
  and ``project_to_target_fidelity``: the information a point on a cheap task gives about the
  *full-task* maximum, divided by the task's cost. It is maximized over a discrete set (scrambled
  Sobol points plus perturbations of the incumbents, refined twice around the best) x every
  cheap task, which handles integers, categoricals, conditionals and linear constraints exactly.
* **Full-task checks:** only full-cost observations count for ``best_assignments``, so once
  ``VERIFY_AFTER`` cost has been spent on cheap tasks since the last full-task run, the next
  suggestion is the full-task expected-improvement maximizer under the multi-fidelity model.
* **Schedule:** the initial design runs on the cheapest task (its last point on the full task,
  to anchor the correlation); once the remaining budget only covers a reserve, every suggestion
  runs on the full task: the model's recommendation (posterior-mean maximizer at cost 1) while
  it is unmeasured, then full-task expected improvement.

Pure: numbers in, :class:`Candidate` out; never raises for a valid problem.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from assay.domain import Observation, Task
from assay.engine.initial import random_points, sobol_points
from assay.engine.problem import Candidate, Problem

__all__ = ["suggest", "initial_size", "budget_used", "reserve"]

_N_SOBOL = 256  # discrete candidates per suggestion (plus local perturbations)
_N_LOCAL = 128
#: cost spent on cheap tasks after which the next suggestion is a full-task check
VERIFY_AFTER = 1.0


def initial_size(problem: Problem) -> int:
    """Points of the space-filling start (all on the cheapest task but the last)."""
    return max(6, min(20, 2 * problem.space.dim + 2))


def reserve(problem: Problem) -> float:
    """Budget kept for the final full-task phase."""
    if problem.observation_budget is None:
        return 0.0
    return max(1.0, 0.1 * problem.observation_budget)


def _pending_tasks(problem: Problem) -> list[Task]:
    full = _full(problem.tasks)
    pts = list(problem.pending_tasks)
    return [t or full for t in pts] + [full] * (len(problem.pending) - len(pts))


def budget_used(problem: Problem) -> float:
    """Cost of the observations plus the cost of the open suggestions."""
    done = sum((o.task.cost if o.task else 1.0) for o in problem.observations)
    return done + sum(t.cost for t in _pending_tasks(problem))


def _full(tasks: Sequence[Task]) -> Task:
    return max(tasks, key=lambda t: t.cost)


def _cheapest(tasks: Sequence[Task]) -> Task:
    return min(tasks, key=lambda t: t.cost)


def _data(problem: Problem) -> tuple[list[Observation], np.ndarray]:
    """Successful observations with a task and the optimized metric, and their signed values."""
    metric = next(m for m in problem.metrics if m.strategy == "optimize")
    keep, ys = [], []
    for o in problem.observations:
        v = o.value_of(metric.name)
        if o.failed or o.task is None or v is None or not math.isfinite(v):
            continue
        keep.append(o)
        ys.append(v if metric.objective == "maximize" else -v)
    return keep, np.asarray(ys, dtype=float)


def _random(problem: Problem, n: int, reason: str, rng: np.random.Generator) -> list[Candidate]:
    out: list[Candidate] = []
    tasks = list(problem.tasks)
    for _ in range(200):
        for a in problem.space.from_unit(random_points(problem.space, 64, rng)):
            if problem.space.satisfies_linear_constraints(a):
                out.append(Candidate(a, task=tasks[int(rng.integers(len(tasks)))] if problem.random_only
                                     else _cheapest(tasks), source=reason))
                if len(out) == n:
                    return out
    raise RuntimeError("no random point satisfies the linear constraints")


def suggest(problem: Problem, n: int = 1) -> list[Candidate]:
    """Propose ``n`` (point, task) candidates for a multitask ``problem``."""
    rng = np.random.default_rng([problem.seed, problem.n_suggested, 5])
    if problem.random_only or problem.experiment_type == "random":
        return _random(problem, n, "random", rng)
    try:
        return _suggest(problem, n, rng)
    except Exception as exc:  # the engine must always answer
        return _random(problem, n, f"fallback-random: {type(exc).__name__}: {exc}"[:300], rng)


def _initial(problem: Problem, n: int, n_data: int) -> list[Candidate] | None:
    """Sobol points on the cheapest task while the start is incomplete (``None`` after it)."""
    n_init = initial_size(problem)
    if n_data + len(problem.pending) >= n_init and n_data >= 2:
        return None
    pts = sobol_points(problem.space, problem.n_suggested, n, problem.seed)
    has_full = any(o.task is not None and o.task.cost >= 1.0 for o in problem.observations) or any(
        t.cost >= 1.0 for t in _pending_tasks(problem))
    out = []
    for i, a in enumerate(problem.space.from_unit(pts)):
        if not problem.space.satisfies_linear_constraints(a):
            return None
        last = problem.n_suggested + i >= n_init - 1
        task = _full(problem.tasks) if last and not has_full else _cheapest(problem.tasks)
        has_full = has_full or task.cost >= 1.0
        out.append(Candidate(a, task=task, source="sobol"))
    return out


def _suggest(problem: Problem, n: int, rng: np.random.Generator) -> list[Candidate]:
    obs, y = _data(problem)
    start = _initial(problem, n, len(obs))
    if start is not None:
        return start
    if len(obs) < 2 or np.ptp(y) == 0:
        return _random(problem, n, "random: not enough distinct results for a model", rng)
    space = problem.space
    x_obs = np.hstack([space.encode_many([o.assignments for o in obs]),
                       np.array([[o.task.cost] for o in obs])])  # type: ignore[union-attr]
    model = _fit(x_obs, y)
    cand_a = _candidates(problem, obs, y, rng)
    pending = [np.append(space.encode(a), t.cost) for a, t in zip(problem.pending, _pending_tasks(problem),
                                                                      strict=False)]
    full_y = [v for o, v in zip(obs, y, strict=True) if o.task.cost >= 1.0]  # type: ignore[union-attr]
    full_keys = {space.key(o.assignments) for o in obs if o.task.cost >= 1.0}  # type: ignore[union-attr]
    left = math.inf if problem.observation_budget is None else problem.observation_budget - budget_used(problem)
    cheap = _cheap_since_full(problem)
    out: list[Candidate] = []
    for k in range(n):
        cand_a = [a for a in cand_a if space.key(a) not in full_keys] or cand_a
        c = _one(problem, model, cand_a, [o.assignments for o in obs], pending, full_keys,
                 max(full_y) if full_y else float(y.max()), left, problem.n_suggested + k, cheap)
        out.append(c)
        left -= c.task.cost  # type: ignore[union-attr]
        cheap = 0.0 if c.task.cost >= 1.0 else cheap + c.task.cost  # type: ignore[union-attr]
        pending.append(np.append(space.encode(c.assignments), c.task.cost))  # type: ignore[union-attr]
        if c.task.cost >= 1.0:  # type: ignore[union-attr]
            full_keys.add(space.key(c.assignments))
    return out


def _cheap_since_full(problem: Problem) -> float:
    """Cost spent on cheap tasks (observed, then open) since the last full-task run."""
    cheap = 0.0
    for t in [o.task for o in problem.observations] + list(_pending_tasks(problem)):
        cost = 1.0 if t is None else t.cost
        cheap = 0.0 if cost >= 1.0 else cheap + cost
    return cheap


def _one(problem: Problem, model: Any, cand_a: list[dict[str, Any]], seen_a: list[dict[str, Any]],
         pending: list[np.ndarray], full_keys: set, best_full: float, left: float, step: int,
         cheap_since_full: float) -> Candidate:
    full = _full(problem.tasks)
    if left <= reserve(problem):  # final-fidelity recommendation: the model's full-task optimum
        rec, _ = _recommend(model, problem, cand_a + seen_a, full_keys, step)
        if rec is not None:
            return Candidate(dict(rec), task=full, source="multitask: the model's full-task recommendation "
                                                          "(final budget reserve)")
    if left <= reserve(problem) or cheap_since_full >= VERIFY_AFTER:
        pts, ei = _refine(lambda x: _full_task_ei(model, x, best_full), problem, cand_a, step)
        i = int(np.argmax(ei))
        why = "final budget reserve" if left <= reserve(problem) else \
            f"{cheap_since_full:.2g} spent on cheap tasks since the last full-task run"
        return Candidate(dict(pts[i]), task=full, source=f"multitask: full-task expected improvement ({why})")
    cheap = sorted({t.cost for t in problem.tasks if t.cost < 1.0})
    by_cost = {t.cost: t for t in problem.tasks}
    a, j, v = _mes_choice(model, problem, cand_a, cheap, pending, step)
    return Candidate(dict(a), task=by_cost[cheap[j]],
                     source=f"multitask: max-value entropy per unit cost ({v:.3g})")


def _refine(score: Any, problem: Problem, cand_a: list[dict[str, Any]], step: int,
            rounds: int = 2, top: int = 4) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Score the candidates, then twice perturb the best ones at shrinking scales and score those too."""
    space = problem.space
    rng = np.random.default_rng([problem.seed, step, 17])
    pts = list(cand_a)
    vals = score(space.encode_many(pts))
    for r in range(rounds):
        best = np.argsort(-vals.max(axis=1) if vals.ndim == 2 else -vals)[:top]
        new = []
        for k in best:
            u = space.to_unit(pts[k])
            for a in space.from_unit(np.clip(u + rng.normal(0, 0.03 / 3**r, (16, space.dim)), 0, 1)):
                if space.satisfies_linear_constraints(a):
                    new.append(a)
        if not new:
            break
        pts += new
        vals = np.concatenate([vals, score(space.encode_many(new))])
    return pts, vals


def _recommend(model: Any, problem: Problem, cand_a: list[dict[str, Any]], full_keys: set,
               step: int) -> tuple[dict[str, Any] | None, float]:
    """The point the model predicts best on the full task, unless it was already measured there."""
    pts, mean = _refine(lambda x: _full_task_mean(model, x), problem, cand_a, step)
    i = int(np.argmax(mean))
    if problem.space.key(pts[i]) in full_keys:
        return None, float(mean[i])
    return pts[i], float(mean[i])


def _mes_choice(model: Any, problem: Problem, cand_a: list[dict[str, Any]], costs: list[float],
                pending: list[np.ndarray], step: int) -> tuple[dict[str, Any], int, float]:
    space = problem.space
    acq = _mes_per_cost(model, space.encode_many(cand_a), costs, pending, seed=problem.seed + step)
    pts, vals = _refine(acq, problem, cand_a, step)
    i, j = divmod(int(np.argmax(vals)), len(costs))
    return pts[i], j, float(vals[i, j])


# -- BoTorch parts (imported lazily: torch is heavy) ---------------------------------------

def _fit(x: np.ndarray, y: np.ndarray) -> Any:
    """A multi-fidelity GP on ``[encoding, cost]``: RBF over the parameters x a downsampling kernel over cost.

    The downsampling kernel (Klein et al. 2017, BoTorch ``SingleTaskMultiFidelityGP``) models a cheap
    task's deviation from the full task as shrinking to zero at cost 1.
    """
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskMultiFidelityGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    from assay.engine.strategy import _limit_threads

    _limit_threads(torch)
    tx = torch.as_tensor(x, dtype=torch.double)
    ty = torch.as_tensor(y, dtype=torch.double).unsqueeze(-1)
    model = SingleTaskMultiFidelityGP(tx, ty, data_fidelities=[x.shape[1] - 1], linear_truncated=False,
                                      outcome_transform=Standardize(m=1))
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    try:
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 100}})
    except Exception:  # keep the prior hyperparameters: still a valid (if vague) model
        pass
    model.eval()
    return model


def _at_full(x: np.ndarray) -> Any:
    import torch

    t = torch.as_tensor(np.hstack([x, np.ones((len(x), 1))]), dtype=torch.double)
    return t


def _full_task_mean(model: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model.posterior(_at_full(x)).mean.squeeze(-1).numpy()


def _full_task_ei(model: Any, x: np.ndarray, best: float) -> np.ndarray:
    import torch
    from botorch.acquisition import LogExpectedImprovement

    acq = LogExpectedImprovement(model, best_f=best)
    with torch.no_grad():
        return np.concatenate([acq(chunk.unsqueeze(-2)).numpy() for chunk in _at_full(x).split(1024)])


def _mes_per_cost(model: Any, x: np.ndarray, costs: list[float], pending: list[np.ndarray],
                  seed: int) -> Any:
    """Multi-fidelity MES per unit cost: a scorer of encoded rows × every task cost (``n x tasks``)."""
    import torch
    from botorch.acquisition.cost_aware import InverseCostWeightedUtility
    from botorch.acquisition.max_value_entropy_search import qMultiFidelityMaxValueEntropy
    from botorch.acquisition.utils import project_to_target_fidelity
    from botorch.models.cost import AffineFidelityCostModel

    d = x.shape[1]
    torch.manual_seed(seed)
    cost_model = AffineFidelityCostModel(fidelity_weights={d: 1.0}, fixed_cost=0.0)
    acq = qMultiFidelityMaxValueEntropy(
        model, candidate_set=_at_full(x), num_mv_samples=16,
        cost_aware_utility=InverseCostWeightedUtility(cost_model=cost_model),
        project=lambda X: project_to_target_fidelity(X, target_fidelities={d: 1.0}, d=d + 1),
        X_pending=torch.as_tensor(np.array(pending), dtype=torch.double) if pending else None,
        num_fantasies=8,
    )

    def score(rows: np.ndarray) -> np.ndarray:
        n, t = len(rows), len(costs)
        grid = np.hstack([np.repeat(rows, t, axis=0), np.tile(np.array(costs)[:, None], (n, 1))])
        tx = torch.as_tensor(grid, dtype=torch.double)
        with torch.no_grad():
            vals = torch.cat([acq(chunk.unsqueeze(-2)) for chunk in tx.split(512)])
        out = vals.numpy().reshape(n, t)
        return np.where(np.isfinite(out), out, -np.inf)

    return score


def _candidates(problem: Problem, obs: list[Observation], y: np.ndarray,
                rng: np.random.Generator) -> list[dict[str, Any]]:
    """Sobol points plus Gaussian perturbations (in the unit encoding) of the best observed points."""
    space = problem.space
    pts = [sobol_points(space, 0, _N_SOBOL, problem.seed + 7919 * (problem.n_suggested + 1))]
    # perturb the best points of each task, weighted towards the most expensive ones seen
    order = np.lexsort((-y, np.array([-(o.task.cost if o.task else 1.0) for o in obs])))
    top = [space.to_unit(obs[k].assignments) for k in order[:3]] + \
        [space.to_unit(obs[k].assignments) for k in np.argsort(-y)[:3]]
    for u in top:
        for scale in (0.02, 0.08):
            pts.append(np.clip(u + rng.normal(0, scale, (_N_LOCAL // (2 * len(top)) + 1, space.dim)), 0, 1))
    out = []
    for a in space.from_unit(np.vstack(pts)):
        if space.satisfies_linear_constraints(a):
            out.append(a)
    if not out:
        raise RuntimeError("no candidate satisfies the linear constraints")
    return out
