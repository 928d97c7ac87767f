"""Initial design and random sampling that honour the whole experiment definition.

Every point returned here

* follows the parameters' priors (``normal`` is truncated to the bounds, ``beta`` spans them):
  uniform draws go through the prior's quantile function, so a space-filling design
  stays space-filling in prior measure;
* omits parameters switched off by the conditionals (:meth:`Space.from_unit`);
* lands on grid values where a parameter has a grid;
* satisfies every linear constraint: draws that break one are replaced by
  hit-and-run draws inside the feasible polytope (a mixture of two samples of the
  same distribution restricted to the polytope is still that distribution);
* avoids assignments already observed or pending when the space allows it.

The strategy calls :func:`initial_points` (scrambled Sobol, continuing the experiment's
sequence at ``problem.n_suggested``) and :func:`random_candidates`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from assay.engine.constraints import chebyshev_center, hit_and_run, polytope
from assay.engine.problem import Candidate, Problem
from assay.space import Space

__all__ = [
    "sobol_points",
    "random_points",
    "prior_transform",
    "feasible_unit",
    "initial_points",
    "random_candidates",
    "infeasibility",
]

_REPAIR_ROUNDS = 8


def sobol_points(space: Space, start: int, n: int, seed: int) -> np.ndarray:
    """Points ``start .. start+n-1`` of a scrambled Sobol sequence seeded by ``seed`` (``n x dim``, raw)."""
    from scipy.stats import qmc

    d = max(space.dim, 1)
    sampler = qmc.Sobol(d=d, scramble=True, seed=seed)
    if start:
        sampler.fast_forward(start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # balance properties need powers of 2; we continue a sequence instead
        pts = sampler.random(n)
    return pts[:, : space.dim]


def random_points(space: Space, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform points in the unit encoding (``n x dim``, raw: no priors, no constraints)."""
    return rng.random((n, space.dim))


# -- priors ------------------------------------------------------------------------------
def _prior_columns(space: Space) -> list[tuple[int, dict[str, Any]]]:
    return [(i, p.prior) for i, p in enumerate(space.parameters) if p.prior]


def _normal_limits(space: Space, i: int, prior: dict[str, Any]) -> tuple[float, float, float, float]:
    p = space.parameters[i]
    assert p.bounds is not None
    lo, hi = p.bounds.min, p.bounds.max
    mean, scale = float(prior["mean"]), float(prior["scale"])
    return (lo - mean) / scale, (hi - mean) / scale, mean, scale


def prior_transform(space: Space, u: np.ndarray) -> np.ndarray:
    """Map uniform unit points to points distributed as the priors (columns without a prior unchanged)."""
    cols = _prior_columns(space)
    if not cols:
        return u
    from scipy import stats

    u = np.array(u, dtype=float, copy=True)
    eps = 1e-12
    for i, prior in cols:
        q = np.clip(u[:, i], eps, 1 - eps)
        p = space.parameters[i]
        assert p.bounds is not None
        if prior["name"] == "normal":
            a, b, mean, scale = _normal_limits(space, i, prior)
            x = stats.truncnorm.ppf(q, a, b, loc=mean, scale=scale)
            u[:, i] = (x - p.bounds.min) / (p.bounds.max - p.bounds.min)
        else:
            u[:, i] = stats.beta.ppf(q, float(prior["shape_a"]), float(prior["shape_b"]))
    return np.clip(u, 0.0, 1.0)


def _log_density(space: Space, cols: Sequence[int]) -> Callable[[np.ndarray], np.ndarray] | None:
    """Log prior density (up to a constant) over the polytope columns ``cols``; None when all uniform."""
    priors = dict(_prior_columns(space))
    used = [(j, i, priors[i]) for j, i in enumerate(cols) if i in priors]
    if not used:
        return None
    from scipy import stats

    def logp(x: np.ndarray) -> np.ndarray:
        out = np.zeros(len(x))
        for j, i, prior in used:
            if prior["name"] == "normal":
                _, _, mean, scale = _normal_limits(space, i, prior)
                p = space.parameters[i]
                assert p.bounds is not None
                v = p.bounds.min + x[:, j] * (p.bounds.max - p.bounds.min)
                out += stats.norm.logpdf(v, loc=mean, scale=scale)
            else:
                out += stats.beta.logpdf(np.clip(x[:, j], 1e-12, 1 - 1e-12),
                                         float(prior["shape_a"]), float(prior["shape_b"]))
        return out

    return logp


# -- feasibility -------------------------------------------------------------------------
def _bound_constraints(space: Space, a: dict[str, Any]) -> tuple[str, ...]:
    """Names of the parameters whose linear constraints bind for assignment ``a``."""
    return tuple(n for n in space.names if n in a)


def feasible_unit(space: Space, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shape ``u`` (uniform unit points, ``n x dim``) by the priors and repair linear-constraint violations.

    Rows that already satisfy every binding constraint are kept; the constrained
    columns of the others are redrawn by hit-and-run in the polytope for their
    conditional values. Raises ``ValueError`` when no feasible point can be found.
    """
    u = prior_transform(space, np.atleast_2d(np.asarray(u, dtype=float)))
    if not space.linear_constraints or len(u) == 0:
        return u
    for _ in range(_REPAIR_ROUNDS):
        assignments = space.from_unit(u)
        bad = [r for r, a in enumerate(assignments) if not space.satisfies_linear_constraints(a)]
        if not bad:
            return u
        groups: dict[tuple[str, ...], list[int]] = {}
        for r in bad:
            groups.setdefault(_bound_constraints(space, assignments[r]), []).append(r)
        for active, rows in groups.items():
            poly = polytope(space, active)
            draws = hit_and_run(poly, len(rows), rng, log_density=_log_density(space, poly.cols))
            u[np.ix_(rows, list(poly.cols))] = draws
    if any(not space.satisfies_linear_constraints(a) for a in space.from_unit(u)):
        raise ValueError("could not find points that satisfy the linear constraints (integer rounding)")
    return u


def infeasibility(space: Space) -> str | None:
    """Why ``space``'s linear constraints admit no point (``None`` when they do)."""
    if not space.linear_constraints:
        return None
    _, radius = chebyshev_center(polytope(space))
    if radius <= 1e-9:
        return "the linear constraints leave no feasible region inside the bounds"
    try:
        feasible_unit(space, np.random.default_rng(0).random((16, space.dim)), np.random.default_rng(1))
    except ValueError as exc:
        return str(exc)
    return None


# -- candidates ----------------------------------------------------------------------------
def _taken(problem: Problem) -> set[tuple]:
    keys = {problem.space.key(o.assignments) for o in problem.observations}
    keys.update(problem.space.key(a) for a in problem.pending)
    return keys


def _pick(problem: Problem, pools: Callable[[int], np.ndarray], n: int, source: str,
          rng: np.random.Generator) -> list[Candidate]:
    """The first ``n`` new assignments among growing pools of unit points (repeats only if unavoidable)."""
    space = problem.space
    taken = _taken(problem)
    out: list[dict[str, Any]] = []
    spare: list[dict[str, Any]] = []
    for attempt in range(4):
        u = feasible_unit(space, pools(attempt), rng)
        for a in space.from_unit(u):
            k = space.key(a)
            if k in taken:
                spare.append(a)
                continue
            taken.add(k)
            out.append(a)
            if len(out) == n:
                return [Candidate(x, source=source) for x in out]
    out.extend(spare[: n - len(out)])
    while len(out) < n:  # every point of a small discrete space is taken: repeat some
        out.append(space.from_unit(feasible_unit(space, random_points(space, 1, rng), rng))[0])
    return [Candidate(x, source=source) for x in out]


def initial_points(problem: Problem, n: int = 1) -> list[Candidate]:
    """``n`` points of the initial design: scrambled Sobol from position ``problem.n_suggested``."""
    space = problem.space
    rng = np.random.default_rng([problem.seed, problem.n_suggested, 7])

    def pool(attempt: int) -> np.ndarray:
        if attempt == 0:
            return sobol_points(space, problem.n_suggested, n, problem.seed)
        return random_points(space, 8 * n * attempt, rng)

    return _pick(problem, pool, n, "sobol", rng)


def random_candidates(problem: Problem, n: int = 1, reason: str = "random",
                      rng: np.random.Generator | None = None) -> list[Candidate]:
    """``n`` random points (priors, conditionals, grids and linear constraints honoured)."""
    rng = rng or np.random.default_rng([problem.seed, problem.n_suggested, 11])
    space = problem.space
    return _pick(problem, lambda attempt: random_points(space, n * (1 + 8 * attempt), rng), n, reason, rng)
