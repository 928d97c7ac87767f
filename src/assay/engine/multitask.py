"""Cost-aware multi-fidelity suggestions for experiments with ``tasks``.

Each task ``{name, cost}`` is one fidelity of the same objective; the cost in (0, 1] is
both the budget it consumes and the fidelity feature of the model (1 = the full task).

* **Model:** BoTorch's ``SingleTaskMultiFidelityGP`` over ``[model encoding of x, cost]``: an
  RBF kernel over the parameters times a *downsampling kernel* over the cost (Klein et al. 2017),
  which models the deviation of a cheap task from the full task as shrinking to zero at cost 1.
  Every cheap observation informs the full task as far as the fitted kernel says they correlate.
  Each task has its own noise level (``base + extra x (1 - cost)``, both fitted), so a noisy cheap
  task does not blur the full-task measurements.
  (Chosen over the product-RBF ``SingleTaskGP``, the linear-truncated fidelity kernel and a
  ``MultiTaskGP`` on held-out full-task rank correlation and fit time; see docs/benchmarks.md.)
* **Outcomes** with a long tail of bad values are warped as the single-task GP warps a skewed objective
  (standardized, then Yeo-Johnson; the same monotone map for every task): without it, values far from the
  optimum set the GP's scale and noise, and the differences that matter near the optimum (and between a cheap
  task's optimum and the full task's) are below the noise the model fits.
* **Point and task (BOCA, Kandasamy et al. 2017):** the point maximizes the *full-task* expected
  improvement under the multi-fidelity model (what matters is the full task), maximized over a
  discrete set (scrambled Sobol points plus perturbations of the incumbents, refined twice around the
  best), which handles integers, categoricals, conditionals and linear constraints exactly. It is
  measured on the cheapest task that can still tell something there: the posterior sd of that task's
  value at the point exceeds ``BIAS_WEIGHT x cost^(1/(dim+2)) x`` the posterior sd of the task's bias
  (full-task value minus the task's). Cheap tasks are used while they inform; once they are known
  where the model hopes for improvement, only the full task can tell more. Open suggestions enter as
  kriging believers (the model conditioned on its own mean there).
* **Committing to the full task:** only full-cost observations count for ``best_assignments``, so a
  full-task run goes to the model's *recommendation* (the posterior-mean maximizer at cost 1, i.e.
  trusting the fitted fidelity correlation) whenever the model predicts it beats the measured full-task
  incumbent, either because the task rule above asked for the full task or because ``VERIFY_AFTER``
  cost was spent on model-chosen cheap runs since the last full-task run; otherwise the expected-
  improvement point itself (also on the full task after ``FORCE_FULL_AFTER`` cost of cheap runs).
* **Is a cheap task informative? (paired runs):** at the first ``PAIRS`` full-task runs, the cheapest
  task still in use is also measured at the same point (cost: its own, e.g. 0.1 per pair). It is judged
  sequentially on those pairs (where the search looks, which is where a misleading fidelity hurts), by two
  kinds of evidence that must agree: its Spearman rank correlation with the full task (at most
  ``RHO_EARLY`` with ``EARLY_PAIRS`` or more pairs, or below ``RHO_MIN`` at ``PAIRS`` pairs), and the
  model's own test (the multi-fidelity model predicts the full-task values at the pairs worse with the
  task's data than without them, i.e. with the other cheap tasks in use only; leave-one-out, as below; with no
  other cheap task measured the ranks decide alone until ``LOO_MIN`` full-task points back a full-task GP).
  Ranks of three to five clustered points are weak evidence alone, and a cheap task whose bias misorders
  neighbouring points near the optimum is often what the model needs there. When both agree, the task is
  *dropped* (its data no longer enter the model, it is never suggested again) and the next cheapest task is
  judged the same way; otherwise, at ``PAIRS`` pairs, it is kept, together with every costlier task. With
  every cheap task dropped the experiment continues as single-task BO on its full-task observations (the
  engine of :mod:`assay.engine.strategy`) after a full-task Sobol restart of ``RESTART`` points, so a
  misleading fidelity costs the pairs and the cheap runs before the verdict, not the whole budget.
* **Do the kept cheap tasks still help? (prediction):** paired ranks judge a task once, on a few points.
  Later, from ``LOO_MIN`` full-task observations on, each suggestion compares how well two models predict
  the full-task values: the multi-fidelity model on all the data, and a GP on the full-task data alone
  (leave-one-out log predictive density, exact for a GP with fitted hyperparameters). When the full-task
  GP predicts better by at least ``LOO_MARGIN`` (nats per point), the cheap data only blur the full-task
  picture where the search now is (their ranking differs among good configurations), and the suggestion
  is single-task BO on the full-task data (no restart: those points came from a model that was not
  misled). A hand-over decided on the data before the ``LOO_MIN + 1``-th full-task point is final; later
  comparisons are made afresh at each suggestion.
* **Start:** until the first full-task run is due (``initial_size`` runs plus ``VERIFY_AFTER`` cost), the
  suggestions are single-task BO on the cheapest task (:mod:`assay.engine.strategy`: its Sobol start, then its
  GP and expected improvement). Before any full-task value the multi-fidelity model knows the cheap task's bias
  only from its prior, so its full-task expected improvement is the cheap task's with an uninformed variance
  added everywhere, and it explored where the cheap task's own search converges (docs/benchmarks.md, "Single-task
  BO on the cheapest task first").
* **Promotion:** the first full-task run (the model's recommendation) is followed by ``PROMOTE - 1`` more at points
  measured on the cheapest task and not yet run in full, as successive halving promotes its best configurations: one
  full-task look at the start's best region often missed it on the real problems, whose cheap tasks order the good
  configurations only roughly. The first goes to the best cheap value; the next by the model's full-task expected
  improvement among those points, so it is spent where the full-task runs so far say least (the cheap start's
  search concentrates around its best region, and the second-best cheap point is often next to the first two).
  A promoted point has its cheap value already, but it is no pair for the verdict above: chosen for that value,
  its full-task rank says little about the cheap task's.
* **Schedule:** once the remaining budget only covers a reserve, every suggestion runs on the full task: the
  recommendation while it is unmeasured, then full-task expected improvement.

Pure: numbers in, :class:`Candidate` out; never raises for a valid problem.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from assay.domain import Observation, Task, total_cost
from assay.engine.initial import random_points, sobol_points
from assay.engine.problem import Candidate, Problem

__all__ = ["suggest", "initial_size", "budget_used", "reserve"]

_N_SOBOL = 256  # discrete candidates per suggestion (plus local perturbations)
_N_LOCAL = 128
#: cost spent on cheap tasks after which the next suggestion is a full-task check
VERIFY_AFTER = 1.0
#: weight of a cheap task's bias uncertainty in the choice of the task (lower: cheap tasks longer)
BIAS_WEIGHT = 0.5
#: paired (cheap task, full task) measurements at the same points on which a cheap task is judged
PAIRS = 5
#: a cheap task whose rank correlation with the full task at its pairs is below this is dropped
RHO_MIN = 0.3
#: sequential verdict: with ``EARLY_PAIRS`` .. ``PAIRS - 1`` pairs, a rank correlation at or below
#: ``RHO_EARLY`` (the cheap task ranks the full-task points backwards) already drops the task
EARLY_PAIRS = 3
RHO_EARLY = -0.5
#: cost of model-chosen cheap runs since the last full-task run after which the next run is on the full
#: task even if the model does not predict an improvement there (at the expected-improvement point)
FORCE_FULL_AFTER = 2.0
#: full-task Sobol points that restart the search when every cheap task was dropped (while at least this
#: much budget is left): the full-task points it inherits lie where the misleading tasks pointed
RESTART = 4
#: full-task runs made in a row at the end of the start: the first at the model's recommendation, the others
#: at the best points measured on the cheapest task (promoted, as in successive halving; not pairs)
PROMOTE = 3
#: full-task observations before the cheap tasks' help is judged by leave-one-out prediction
LOO_MIN = 6
#: mean leave-one-out log density (nats per full-task point) by which a full-task-only GP must beat the
#: multi-fidelity model before the suggestion switches to single-task BO
LOO_MARGIN = 0.25


def initial_size(problem: Problem) -> int:
    """Cheapest-task runs of the start before its further cheap runs count towards ``VERIFY_AFTER``."""
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
    return total_cost([*((o.task.cost if o.task else 1.0) for o in problem.observations),
                       *(t.cost for t in _pending_tasks(problem))])


def _budget_left(problem: Problem) -> float:
    if problem.observation_budget is None:
        return math.inf
    return total_cost([problem.observation_budget, -budget_used(problem)])


def _full(tasks: Sequence[Task]) -> Task:
    return max(tasks, key=lambda t: t.cost)


def _cheapest(tasks: Sequence[Task]) -> Task:
    return min(tasks, key=lambda t: t.cost)


def _data(problem: Problem) -> tuple[list[Observation], np.ndarray]:
    """Successful observations with a task and the optimized metric, and their signed values (larger is
    better), warped when their long tail is on the bad side (:func:`_warp`)."""
    metric = next(m for m in problem.metrics if m.strategy == "optimize")
    keep, ys = [], []
    for o in problem.observations:
        v = o.value_of(metric.name)
        if o.failed or o.task is None or v is None or not math.isfinite(v):
            continue
        keep.append(o)
        ys.append(v if metric.objective == "maximize" else -v)
    return keep, _warp(np.asarray(ys, dtype=float))


def _warp(y: np.ndarray) -> np.ndarray:
    """The single-task GP's warp (:func:`assay.engine.gp.warp`: standardized, then Yeo-Johnson; monotone) when
    the signed values ``y`` have a long tail of *bad* values (negative skew), else ``y``.

    A bad tail (Branin's values up to ~300 around an optimum of 0.4; the log-loss of diverged trainings) sets
    the GP's scale and noise and hides the differences near the optimum; the warp spreads them. A good tail
    (Hartmann: most of the space near 0, the optimum at -3.3) is where the optimum is, and the warp would
    compress it.
    """
    from scipy import stats

    from assay.engine.gp import warp

    if len(y) < 8 or np.ptp(y) == 0 or not stats.skew(y) < 0:
        return y
    return warp(y)


def _inputs(problem: Problem, obs: list[Observation]) -> np.ndarray:
    """The multi-fidelity model's inputs: ``[model encoding, task cost]`` per observation."""
    return np.hstack([problem.space.encode_many([o.assignments for o in obs]),
                      np.array([[o.task.cost] for o in obs])])  # type: ignore[union-attr]


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


def _cheap_start(problem: Problem, n: int) -> list[Candidate] | None:
    """Single-task BO on the cheapest task (:mod:`assay.engine.strategy`, its own space-filling start) until
    the first full-task run is due: ``None`` once a full-task run exists (observed or open) or
    ``initial_size`` runs plus ``VERIFY_AFTER`` cost of further cheap runs were made (see the module's "Start")."""
    from dataclasses import replace

    from assay.engine import strategy

    tasks = [o.task for o in problem.observations] + list(_pending_tasks(problem))
    if any(t is None or t.cost >= 1.0 for t in tasks) or _cheap_since_full(problem) >= VERIFY_AFTER:
        return None
    cheap = _cheapest(problem.tasks)
    return [replace(c, task=cheap, source=f"multitask: single-task BO on the cost-{cheap.cost:g} task before the "
                    f"first full-task run: {c.source}") for c in strategy.suggest(_task_only(problem, cheap), n)]


def _task_only(problem: Problem, task: Task) -> Problem:
    """A problem without tasks made of ``task``'s observations and open suggestions (for single-task BO)."""
    from dataclasses import replace

    return replace(problem, tasks=(), observations=[replace(o, task=None) for o in problem.observations
                                                    if o.task is not None and o.task.cost == task.cost],
                   pending=[a for a, t in zip(problem.pending, _pending_tasks(problem), strict=True)
                            if t.cost == task.cost], pending_tasks=())


def task_verdicts(problem: Problem) -> dict[float, tuple[str, float, int, float]]:
    """Per cheap task cost: ``(verdict, rho, pairs, evidence)``, verdict ``"kept"``, ``"dropped"`` or ``"open"``;
    ``evidence`` is the model's (:func:`_pair_evidence`, nats per pair) where the ranks asked it, else NaN.

    Cheap tasks are judged cheapest first on the points measured on the full task and then on them (the
    first ``PAIRS`` such full-task points, so a verdict never changes once made; a point promoted from the
    cheap task, measured there first, is not a pair). Sequentially, on the first
    ``k`` pairs (``k >= EARLY_PAIRS``), a task is dropped when two kinds of evidence agree that it misleads:

    * its Spearman rank correlation with the full task there is at most ``RHO_EARLY`` (or below ``RHO_MIN``
      at ``PAIRS`` pairs), and
    * the multi-fidelity model predicts the full-task values at those pairs worse with the task's data than
      without them (:func:`_pair_evidence`, on the data up to the ``k``-th pair).

    At ``PAIRS`` pairs a task that was not dropped is kept. A kept task keeps every costlier one; a task is
    only judged once all cheaper ones are dropped. With few pairs a rank correlation alone is weak (with
    three pairs, rho <= -0.5 has probability 1/2 for unrelated values), and a cheap task whose bias misorders
    a few neighbouring points near the optimum may still be what the model needs there.
    """
    from scipy.stats import spearmanr

    obs, y = _data(problem)
    space = problem.space
    at = {id(o): i for i, o in enumerate(problem.observations)}
    full = [(space.key(o.assignments), v, at[id(o)]) for o, v in zip(obs, y, strict=True)
            if o.task.cost >= 1.0]  # type: ignore[union-attr]
    out: dict[float, tuple[str, float, int, float]] = {}
    gone: set[float] = set()
    for cost in sorted({t.cost for t in problem.tasks if t.cost < 1.0}):
        if len(gone) < len(out):  # a cheaper task was kept
            out[cost] = ("kept", math.nan, 0, math.nan)
            continue
        cheap: dict[Any, tuple[float, int]] = {}
        for o, v in zip(obs, y, strict=True):
            if o.task.cost == cost:  # type: ignore[union-attr]
                cheap.setdefault(space.key(o.assignments), (v, at[id(o)]))
        # a paired run follows its full-task run; a point promoted from the cheap task (selected by its cheap
        # value, which narrows the ranks) is not a pair
        pairs = [(k, cheap[k][0], v, cheap[k][1]) for k, v, i in full if k in cheap and cheap[k][1] > i][:PAIRS]
        verdict: tuple[str, float, int, float] = ("open", math.nan, len(pairs), math.nan)
        for k in range(min(EARLY_PAIRS, PAIRS), len(pairs) + 1):  # sequential: the first decisive prefix
            _, a, b, _ = zip(*pairs[:k], strict=True)
            rho = float(spearmanr(a, b)[0]) if np.ptp(a) > 0 and np.ptp(b) > 0 else 0.0
            rho = 0.0 if not math.isfinite(rho) else rho
            evidence = math.nan
            if rho <= RHO_EARLY or (k >= PAIRS and rho < RHO_MIN):
                evidence = _pair_evidence(problem, cost, gone, {p[0] for p in pairs[:k]},
                                          max(p[3] for p in pairs[:k]) + 1)
                if not evidence >= 0:  # the model agrees, or has nothing to compare with (NaN)
                    verdict = ("dropped", rho, k, evidence)
                    break
            verdict = ("kept" if k >= PAIRS else "open", rho, k, evidence)
        out[cost] = verdict
        if verdict[0] == "dropped":
            gone.add(cost)
    return out


def _pair_evidence(problem: Problem, cost: float, gone: set[float], keys: set[Any], end: int) -> float:
    """How much better the cost-``cost`` task's data make the model predict the full task at the paired points
    ``keys`` (space keys): the mean leave-one-out log density (:func:`loo_log_density`) of those full-task
    values under the multi-fidelity model with the task's data minus without them (tasks in ``gone`` left out
    of both), on ``problem.observations[:end]``. A full-task row left out keeps its cheap twin, so this is
    how well the cheap value at a point, together with the rest, predicts the full value there. Without any
    other cheap task the comparison is with the single-task GP on the full-task data, which needs ``LOO_MIN``
    full-task points as in :func:`_cheap_tasks_unhelpful`. NaN (no objection to the rank verdict) when there
    is nothing to compare with or a model cannot be fitted.
    """
    from dataclasses import replace

    from assay.engine import gp

    sub = replace(problem, observations=[o for o in problem.observations[:end]
                                         if o.task is not None and o.task.cost not in gone],
                  pending=[], pending_tasks=())
    obs, y = _data(sub)
    costs = np.array([o.task.cost for o in obs])  # type: ignore[union-attr]
    paired = np.array([c >= 1.0 and problem.space.key(o.assignments) in keys for o, c in zip(obs, costs,
                                                                                              strict=True)])
    x, other = _inputs(sub, obs), costs != cost
    try:
        with_it = loo_log_density(_fit(x, y), np.flatnonzero(paired))
        if (costs[other] < 1.0).any():
            without = loo_log_density(_fit(x[other], y[other]), np.flatnonzero(paired[other]))
        elif (full := costs >= 1.0).sum() >= LOO_MIN:
            without = loo_log_density(gp.fit_gp(x[full, :-1], y[full]), np.flatnonzero(paired[full]))
        else:  # a GP on fewer full-task points has its hyperparameters from the prior: no comparison
            return math.nan
    except Exception:
        return math.nan
    return with_it - without


def drop_reason(cost: float, rho: float, pairs: int, evidence: float) -> str:
    """Why the cost-``cost`` task was dropped, as the suggestions' ``source`` says it (a :func:`task_verdicts`
    entry: rank correlation ``rho`` at ``pairs`` paired points, the model's ``evidence`` in nats per pair)."""
    return (f"cost-{cost:g} task dropped (rank correlation {rho:.2f} with the full task at {pairs} paired points; "
            + (f"the model predicts the full task there {-evidence:.2f} nats per pair better without it)"
               if math.isfinite(evidence) else "no model to compare with yet)"))


def _without_dropped(problem: Problem) -> tuple[Problem, str]:
    """The problem restricted to the tasks still in use (their observations and open suggestions)."""
    from dataclasses import replace

    verdicts = task_verdicts(problem)
    dropped = {c for c, (v, *_) in verdicts.items() if v == "dropped"}
    if not dropped:
        return problem, ""
    why = "; ".join(drop_reason(c, r, n, e) for c, (v, r, n, e) in verdicts.items() if v == "dropped")
    keep = [o for o in problem.observations if o.task is None or o.task.cost not in dropped]
    pend = [(a, t) for a, t in zip(problem.pending, _pending_tasks(problem), strict=True) if t.cost not in dropped]
    return replace(problem, tasks=tuple(t for t in problem.tasks if t.cost not in dropped), observations=keep,
                   pending=[a for a, _ in pend], pending_tasks=[t for _, t in pend]), why


def _single_task(problem: Problem, n: int, why: str, left: float, fresh_start: bool = True) -> list[Candidate]:
    """Single-task BO (:mod:`assay.engine.strategy`) on the full-task data (every cheap task dropped, or
    no longer helping), after a full-task Sobol restart when ``fresh_start``."""
    from dataclasses import replace

    from assay.engine import strategy

    full = _full(problem.tasks)
    restart = _restart(problem, n, why, left) if fresh_start else []
    if restart:
        if len(restart) == n:
            return restart
        problem = replace(problem, pending=list(problem.pending) + [c.assignments for c in restart],
                          pending_tasks=_pending_tasks(problem) + [full] * len(restart),
                          n_suggested=problem.n_suggested + len(restart))
    return restart + [replace(c, task=full, source=f"multitask: full-task BO ({why}): {c.source}")
                      for c in strategy.suggest(_task_only(problem, full), n - len(restart))]


def _cheap_tasks_unhelpful(problem: Problem) -> str:
    """Why the cheap tasks no longer help predict the full task ("" while they do, or while fewer than
    ``LOO_MIN`` full-task points allow no judgement).

    The check on the data before the ``LOO_MIN + 1``-th full-task observation is final: once the full-task
    GP predicted clearly better with ``LOO_MIN`` full-task points, the cheap tasks stay out (else a few
    model-chosen full-task points near the cheap tasks' optimum make them look helpful again, and the
    search goes back to them). Later data are judged afresh at each suggestion. Stateless: the prefix is
    re-judged every time.
    """
    prefix = _up_to_full(problem, LOO_MIN)
    first = "" if prefix is None else _loo_verdict(prefix)
    return f"{first}; final" if first else _loo_verdict(problem)


def _up_to_full(problem: Problem, k: int) -> Problem | None:
    """``problem`` with only the observations made before its ``k + 1``-th successful full-task one, and no
    open suggestions (``None`` while there is no such observation)."""
    from dataclasses import replace

    obs, _ = _data(problem)
    full = [o for o in obs if o.task is not None and o.task.cost >= 1.0]
    if len(full) <= k:
        return None
    end = next(i for i, o in enumerate(problem.observations) if o is full[k])
    return replace(problem, observations=list(problem.observations[:end]), pending=[], pending_tasks=())


def _loo_verdict(problem: Problem) -> str:
    """The leave-one-out comparison of :func:`_cheap_tasks_unhelpful` on ``problem``'s data."""
    obs, y = _data(problem)
    full = np.array([o.task is not None and o.task.cost >= 1.0 for o in obs])
    if full.sum() < LOO_MIN or np.ptp(y[full]) == 0 or full.all():
        return ""
    from assay.engine import gp

    x_obs = _inputs(problem, obs)
    try:
        with_cheap = loo_log_density(_fit(x_obs, y), np.flatnonzero(full))
        alone = loo_log_density(gp.fit_gp(x_obs[full, :-1], y[full]))  # (all of its rows: it may keep a subset)
    except Exception:  # no judgement without both models: keep the cheap tasks
        return ""
    if not alone >= with_cheap + LOO_MARGIN:
        return ""
    return (f"the cheap tasks do not help predict the full task: leave-one-out log density at the "
            f"{int(full.sum())} full-task points {with_cheap:.2f} with them, {alone:.2f} without")


def loo_log_density(model: Any, rows: np.ndarray | None = None) -> float:
    """Mean leave-one-out log predictive density, in the data's units, of an exact GP at its training ``rows``
    (all of them by default).

    For fixed hyperparameters it is closed-form (Rasmussen & Williams 2006, sec. 5.4.2): with ``K`` the
    training covariance plus noise and ``a = K^-1 (y - m)``, point ``i`` left out has predictive mean
    ``y_i - a_i / [K^-1]_ii`` and variance ``1 / [K^-1]_ii``. Standardized outcomes are scaled back.
    """
    import torch

    with torch.no_grad():
        X, y = model.train_inputs[0], model.train_targets
        K = model.covar_module(X).to_dense() + model.likelihood.noise_covar(X, shape=y.shape).to_dense()
        k_inv = torch.cholesky_inverse(torch.linalg.cholesky(K))
        a = k_inv @ (y - model.mean_module(X))
        d = torch.diagonal(k_inv)
        resid, var = (a / d).numpy(), (1.0 / d).numpy()
        if rows is not None:
            resid, var = resid[rows], var[rows]
        scale = float(model.outcome_transform.stdvs.squeeze()) if hasattr(model, "outcome_transform") else 1.0
    return float(np.mean(-0.5 * np.log(2 * np.pi * var * scale**2) - 0.5 * resid**2 / var))


def _run_on(problem: Problem, cost: float) -> list[dict[str, Any]]:
    """The points observed (failed ones too) or open on the task of ``cost`` (1: the full task)."""
    full = cost >= 1.0
    made = [o.assignments for o in problem.observations
            if o.task is not None and (o.task.cost >= 1.0 if full else o.task.cost == cost)]
    return made + [a for a, t in zip(problem.pending, _pending_tasks(problem), strict=True)
                   if (t.cost >= 1.0 if full else t.cost == cost)]


def _restart(problem: Problem, n: int, why: str, left: float) -> list[Candidate]:
    """The first ``RESTART`` full-task Sobol points not yet run or open, while ``left`` (budget) >= ``RESTART``.

    A stateless, deterministic space-filling restart of the single-task search after every cheap task
    was dropped (the inherited full-task points sit where the misleading tasks pointed).
    """
    if left < RESTART:
        return []
    space, full = problem.space, _full(problem.tasks)
    have = {space.key(a) for a in _run_on(problem, 1.0)}
    out: list[Candidate] = []
    for a in space.from_unit(sobol_points(space, 0, RESTART, problem.seed + 104729)):
        if len(out) < n and space.key(a) not in have and space.satisfies_linear_constraints(a):
            have.add(space.key(a))
            out.append(Candidate(a, task=full, source=f"multitask: full-task Sobol restart ({why})"))
    return out


def _pairing(problem: Problem, n: int) -> list[Candidate]:
    """The cheap task being judged, measured at full-task points that lack it (at most ``PAIRS`` of them; not at
    points promoted from it, which it measured first)."""
    if _budget_left(problem) <= reserve(problem):
        return []  # the final reserve is for the full task
    verdicts = task_verdicts(problem)
    open_ = [c for c, (v, *_) in verdicts.items() if v == "open"]
    if not open_:
        return []
    cost = open_[0]
    task = next(t for t in problem.tasks if t.cost == cost)
    space = problem.space
    have = {space.key(a) for a in _run_on(problem, cost)}
    before: dict[Any, int] = {}  # space key -> index of its first observation on the task being judged
    for i, o in enumerate(problem.observations):
        if o.task is not None and o.task.cost == cost:
            before.setdefault(space.key(o.assignments), i)
    full_pts = [o.assignments for i, o in enumerate(problem.observations)  # not the promoted ones
                if o.task is not None and o.task.cost >= 1.0 and not o.failed
                and before.get(space.key(o.assignments), i + 1) > i]
    full_pts += [a for a, t in zip(problem.pending, _pending_tasks(problem), strict=True)
                 if t.cost >= 1.0 and space.key(a) not in before]
    out: list[Candidate] = []
    for a in full_pts[:PAIRS]:
        if space.key(a) not in have and len(out) < n:
            have.add(space.key(a))
            k = verdicts[cost][2] + len(out)
            out.append(Candidate(dict(a), task=task, source=f"multitask: paired run on the cost-{cost:g} task at a "
                                 f"full-task point (judging that task: pair {k + 1} of {PAIRS})"))
    return out


def _promotion(problem: Problem, n: int) -> list[Candidate]:
    """After the first full-task run and until ``PROMOTE`` exist (made or open): full-task runs at points measured
    on the cheapest task and not yet run in full, as successive halving promotes its best configurations. The
    first goes to the best such point by its cheap value; the later ones to the one with the largest full-task
    expected improvement under the multi-fidelity model (the open full-task runs as kriging believers), so they
    also look where the cheap task ranks the full task's good points lower (cheap-value order if the model
    fails). They are no pairs for :func:`task_verdicts` (fewer than ``EARLY_PAIRS`` pairs: no verdict yet)."""
    space, full = problem.space, _full(problem.tasks)
    done = _run_on(problem, 1.0)
    if not done or len(done) >= PROMOTE or _budget_left(problem) <= reserve(problem):
        return []
    have = {space.key(a) for a in done}
    cheap = _cheapest(problem.tasks).cost
    obs, y = _data(problem)
    cand: list[dict[str, Any]] = []  # the cheapest task's points not yet run in full, best cheap value first
    for i in np.argsort(-y, kind="stable"):
        a = obs[i].assignments
        if obs[i].task.cost == cheap and space.key(a) not in have:  # type: ignore[union-attr]
            have.add(space.key(a))
            cand.append(dict(a))
    out: list[Candidate] = []
    while cand and len(out) < min(n, PROMOTE - len(done)):
        k = len(done) + len(out) + 1
        if k == 2:
            a, why = cand.pop(0), "its best point not yet run in full"
        else:
            a, why = cand.pop(_by_full_task_ei(problem, obs, y, cand, [c.assignments for c in out])), \
                "the largest full-task expected improvement among its points not yet run in full"
        out.append(Candidate(a, task=full, source=f"multitask: full-task run {k} of {PROMOTE}: promoted from the "
                             f"cost-{cheap:g} task ({why})"))
    return out


def _by_full_task_ei(problem: Problem, obs: list[Observation], y: np.ndarray, cand: list[dict[str, Any]],
                     chosen: list[dict[str, Any]]) -> int:
    """Index in ``cand`` of the point with the largest full-task expected improvement under the multi-fidelity
    model, the open full-task runs and ``chosen`` (full-task runs being suggested) as kriging believers; 0 (the
    first candidate) if there is no model to ask or it fails."""
    if len(cand) < 2 or len(obs) < 2 or np.ptp(y) == 0:
        return 0
    full_y = [v for o, v in zip(obs, y, strict=True) if o.task.cost >= 1.0]  # type: ignore[union-attr]
    space = problem.space
    try:
        model = _fit(_inputs(problem, obs), y)
        pending = [np.append(space.encode(a), 1.0) for a, t in zip(problem.pending, _pending_tasks(problem),
                                                                    strict=True) if t.cost >= 1.0]
        pending += [np.append(space.encode(a), 1.0) for a in chosen]
        ei = _full_task_ei(_believer(model, pending), space.encode_many(cand),
                           max(full_y) if full_y else float(y.max()))
    except Exception:  # the cheap-value order is still a sound promotion
        return 0
    return int(np.argmax(ei))


def _suggest(problem: Problem, n: int, rng: np.random.Generator) -> list[Candidate]:
    start = _cheap_start(problem, n)
    if start is not None:
        return start
    due = _pairing(problem, n) or _promotion(problem, n)  # paired runs, then promotions
    if due:
        if len(due) == n:
            return due
        from dataclasses import replace

        more = replace(problem, pending=list(problem.pending) + [c.assignments for c in due],
                       pending_tasks=_pending_tasks(problem) + [c.task for c in due],
                       n_suggested=problem.n_suggested + len(due))
        return due + _suggest(more, n - len(due), rng)
    left = _budget_left(problem)
    problem, dropped = _without_dropped(problem)
    if all(t.cost >= 1.0 for t in problem.tasks):
        return _single_task(problem, n, dropped, left)
    unhelpful = _cheap_tasks_unhelpful(problem)
    if unhelpful:
        return _single_task(problem, n, unhelpful, left, fresh_start=False)
    if dropped:
        from dataclasses import replace

        return [replace(c, source=f"{c.source} [{dropped}]") for c in _model(problem, n, rng)]
    return _model(problem, n, rng)


def _model(problem: Problem, n: int, rng: np.random.Generator) -> list[Candidate]:
    """The multi-fidelity model's choices (BOCA point and task, full-task commitments, final reserve)."""
    obs, y = _data(problem)
    if len(obs) < 2 or np.ptp(y) == 0:
        return _random(problem, n, "random: not enough distinct results for a model", rng)
    space = problem.space
    x_obs = _inputs(problem, obs)
    model = _fit(x_obs, y)
    cand_a = _candidates(problem, obs, y, rng)
    pending = [np.append(space.encode(a), t.cost) for a, t in zip(problem.pending, _pending_tasks(problem),
                                                                      strict=False)]
    full_y = [v for o, v in zip(obs, y, strict=True) if o.task.cost >= 1.0]  # type: ignore[union-attr]
    full_keys = {space.key(o.assignments) for o in obs if o.task.cost >= 1.0}  # type: ignore[union-attr]
    left = _budget_left(problem)
    cheap = _cheap_since_full(problem)
    out: list[Candidate] = []
    for k in range(n):
        cand_a = [a for a in cand_a if space.key(a) not in full_keys] or cand_a
        c = _one(problem, model, cand_a, [o.assignments for o in obs], pending, full_keys,
                 max(full_y) if full_y else None, float(y.max()), left, problem.n_suggested + k, cheap)
        out.append(c)
        left = total_cost([left, -c.task.cost])  # type: ignore[union-attr]
        cheap = 0.0 if c.task.cost >= 1.0 else total_cost([cheap, c.task.cost])  # type: ignore[union-attr]
        pending.append(np.append(space.encode(c.assignments), c.task.cost))  # type: ignore[union-attr]
        if c.task.cost >= 1.0:  # type: ignore[union-attr]
            full_keys.add(space.key(c.assignments))
    return out


def _cheap_since_full(problem: Problem) -> float:
    """Cost spent on model-chosen cheap runs (observed, then open) since the last full-task run.

    The first ``initial_size`` runs do not count: a full-task check needs a model that has seen model-chosen
    points.
    """
    cheap: list[float] = []
    n_init = initial_size(problem)
    for i, t in enumerate([o.task for o in problem.observations] + list(_pending_tasks(problem))):
        cost = 1.0 if t is None else t.cost
        if cost >= 1.0:
            cheap = []
        elif i >= n_init:
            cheap.append(cost)
    return total_cost(cheap)


def _one(problem: Problem, model: Any, cand_a: list[dict[str, Any]], seen_a: list[dict[str, Any]],
         pending: list[np.ndarray], full_keys: set, best_full: float | None, best_any: float, left: float,
         step: int, cheap_since_full: float) -> Candidate:
    full = _full(problem.tasks)
    if left <= reserve(problem):  # final-fidelity recommendation: the model's full-task optimum
        rec, _ = _recommend(model, problem, cand_a + seen_a, full_keys, step)
        if rec is not None:
            return Candidate(dict(rec), task=full, source="multitask: the model's full-task recommendation "
                                                          "(final budget reserve)")
        ref = best_any if best_full is None else best_full
        pts, ei = _refine(lambda x: _full_task_ei(model, x, ref), problem, cand_a, step)
        return Candidate(dict(pts[int(np.argmax(ei))]), task=full,
                         source="multitask: full-task expected improvement (final budget reserve)")
    if cheap_since_full >= VERIFY_AFTER:  # the cheap tasks have had their share: check the recommendation
        rec, mean = _recommend(model, problem, cand_a + seen_a, full_keys, step)
        if rec is not None and (best_full is None or mean > best_full):
            return Candidate(dict(rec), task=full, source=f"multitask: full-task check of the model's "
                             f"recommendation ({cheap_since_full:.2g} spent on cheap tasks since the last one)")
    by_cost = {t.cost: t for t in problem.tasks}
    ref = best_any if best_full is None else best_full
    a, cost, why = _boca_choice(_believer(model, pending), problem, cand_a, ref, step)
    if cost < 1.0 and cheap_since_full >= FORCE_FULL_AFTER and best_full is not None:
        return Candidate(dict(a), task=full, source=f"multitask: full-task expected improvement "
                         f"({cheap_since_full:.2g} spent on cheap tasks since the last full-task run)")
    if cost < 1.0:
        return Candidate(dict(a), task=by_cost[cost], source=f"multitask: {why}")
    # the cheap tasks are known at the most promising point: the full task is due, and it is spent where
    # the model expects the best full-task value (while that is predicted to beat the measured incumbent)
    rec, mean = _recommend(model, problem, cand_a + seen_a, full_keys, step)
    if rec is not None and (best_full is None or mean > best_full):
        return Candidate(dict(rec), task=full, source=f"multitask: full-task check of the model's "
                         f"recommendation ({why})")
    return Candidate(dict(a), task=full, source=f"multitask: full-task expected improvement ({why})")


def _believer(model: Any, pending: list[np.ndarray]) -> Any:
    """The model conditioned on its own posterior mean at the open (point, task) pairs (kriging believer)."""
    if not pending:
        return model
    import torch

    x = torch.as_tensor(np.array(pending), dtype=torch.double)
    try:
        with torch.no_grad():
            y = model.posterior(x).mean
        return model.condition_on_observations(x, y)
    except Exception:  # still a valid model, only blind to the open points
        return model


def _boca_choice(model: Any, problem: Problem, cand_a: list[dict[str, Any]], best: float,
                 step: int) -> tuple[dict[str, Any], float, str]:
    """The point by full-task expected improvement; its task by the information a task can still give.

    As in BOCA (Kandasamy et al. 2017): the point is measured on the cheapest task where the posterior
    sd of that task's value still exceeds ``BIAS_WEIGHT x cost^q x`` the posterior sd of the task's bias
    (full-task value minus the task's), ``q = 1 / (dim + 2)``; when every cheap task is known well enough
    there, only the full task can tell more (cost 1 is returned).
    """
    pts, ei = _refine(lambda x: _full_task_ei(model, x, best), problem, cand_a, step)
    i = int(np.argmax(ei))
    x = problem.space.encode(pts[i])
    q = 1.0 / (problem.space.dim + 2)
    why = ""
    for cost in sorted({t.cost for t in problem.tasks if t.cost < 1.0}):
        sd_task, sd_gap = _task_and_gap_sd(model, x, cost)
        limit = BIAS_WEIGHT * cost**q * sd_gap
        if sd_task > limit:
            return pts[i], cost, (f"full-task expected improvement measured on the cost-{cost:g} task "
                                  f"(sd there {sd_task:.3g} > {limit:.3g})")
        why = f"cheap tasks known at the expected-improvement point: sd {sd_task:.3g} <= {limit:.3g}"
    return pts[i], 1.0, why


def _task_and_gap_sd(model: Any, x: np.ndarray, cost: float) -> tuple[float, float]:
    """Posterior sd of ``f(x, cost)`` and of ``f(x, 1) - f(x, cost)``."""
    import torch

    tx = torch.as_tensor(np.vstack([np.append(x, cost), np.append(x, 1.0)]), dtype=torch.double)
    with torch.no_grad():
        cov = model.posterior(tx).mvn.covariance_matrix.numpy()
    gap = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    return math.sqrt(max(cov[0, 0], 0.0)), math.sqrt(max(gap, 0.0))


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


# -- BoTorch parts (imported lazily: torch is heavy) ---------------------------------------

def _fit(x: np.ndarray, y: np.ndarray) -> Any:
    """A multi-fidelity GP on ``[encoding, cost]``: RBF over the parameters x a downsampling kernel over cost.

    The downsampling kernel (Klein et al. 2017, BoTorch ``SingleTaskMultiFidelityGP``) models a cheap
    task's deviation from the full task as shrinking to zero at cost 1. Hyperparameters are warm-started
    as in :mod:`assay.engine.gp`: fitted cold on the anchor prefix of the data (cached), then at most
    ``WARM_ITERS`` L-BFGS steps on all of it, so a suggestion is deterministic and costs a fraction of a
    cold fit.
    """
    import torch

    from assay.engine import gp
    from assay.engine.strategy import _limit_threads

    _limit_threads(torch)
    m = gp.anchor_size(len(y))
    if np.ptp(y[:m]) == 0:
        m = len(y)
    key = gp._key(x[:m], y[:m], tag="mf-cold")
    init = gp._cached(key)
    if init is None:
        anchor = _mf_model(x[:m], y[:m])
        _mf_optimize(anchor, gp.COLD_ITERS, key)
        init = gp._hyper(anchor)
        gp._store(key, init)
    model = _mf_model(x, y)
    if m == len(y):
        model.load_state_dict(init, strict=False)
    else:
        key = gp._key(x, y, *init.values(), tag="mf-warm")
        state = gp._cached(key)
        if state is None:
            model.load_state_dict(init, strict=False)
            _mf_optimize(model, gp.WARM_ITERS, key)
            gp._store(key, gp._hyper(model))
        else:
            model.load_state_dict(state, strict=False)
    model.eval()
    return model


def _mf_model(x: np.ndarray, y: np.ndarray) -> Any:
    import torch
    from botorch.models import SingleTaskMultiFidelityGP
    from botorch.models.transforms.outcome import Standardize

    tx = torch.as_tensor(x, dtype=torch.double)
    ty = torch.as_tensor(y, dtype=torch.double).unsqueeze(-1)
    return SingleTaskMultiFidelityGP(tx, ty, data_fidelities=[x.shape[1] - 1], linear_truncated=False,
                                     outcome_transform=Standardize(m=1),
                                     likelihood=_task_likelihood(x.shape[1] - 1))


def _task_likelihood(column: int) -> Any:
    """A Gaussian likelihood whose noise variance grows as the task gets cheaper: ``base + extra x (1 - cost)``,
    ``cost`` read from input ``column``; both variances fitted, each with BoTorch's LogNormal(-4, 1) noise prior.

    One noise level for every task lets a noisy cheap task (a 5-epoch training, a boosting run cut short)
    blur the full task: the fitted noise is the cheap task's, and the model can then neither trust the
    full-task measurements nor tell the best full-task points apart.
    """
    import torch
    from gpytorch.constraints import GreaterThan
    from gpytorch.likelihoods import GaussianLikelihood
    from gpytorch.likelihoods.noise_models import MultitaskHomoskedasticNoise
    from gpytorch.priors import LogNormalPrior
    from linear_operator.operators import DiagLinearOperator

    class TaskNoise(MultitaskHomoskedasticNoise):  # type: ignore[misc]
        def forward(self, *params: Any, shape: Any = None, **kwargs: Any) -> Any:
            if "noise" in kwargs:
                return DiagLinearOperator(kwargs["noise"])
            x = params[0] if torch.is_tensor(params[0]) else params[0][0]
            base, extra = self.noise[..., 0:1], self.noise[..., 1:2]
            return DiagLinearOperator(base + extra * (1.0 - x[..., column]))

    prior = LogNormalPrior(loc=-4.0, scale=1.0)
    lik = GaussianLikelihood()
    lik.noise_covar = TaskNoise(2, noise_prior=prior,
                                noise_constraint=GreaterThan(1e-4, transform=None, initial_value=prior.mode))
    return lik


def _mf_optimize(model: Any, maxiter: int, key: str) -> None:
    """Fit the hyperparameters (botorch's retries seeded from the data); keep the prior ones on failure."""
    import torch
    from botorch.fit import fit_gpytorch_mll
    from gpytorch.mlls import ExactMarginalLogLikelihood

    with torch.random.fork_rng():
        torch.manual_seed(int(key[:8], 16))
        try:
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model),
                             optimizer_kwargs={"options": {"maxiter": maxiter}})
        except Exception:  # the prior hyperparameters still give a valid (if vague) model
            pass


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
