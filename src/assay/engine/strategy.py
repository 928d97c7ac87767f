"""Chooses how to propose points for a :class:`~assay.engine.Problem`.

Never raises for a valid problem: when a method fails, the strategy falls back to a
random point that satisfies the space and records the reason in ``Candidate.source``.
"""

from __future__ import annotations

import numpy as np

from assay.engine.initial import random_points, sobol_points
from assay.engine.problem import Candidate, Problem

__all__ = ["suggest"]

_MAX_TRIES = 200


def _feasible(problem: Problem, unit: np.ndarray) -> list[dict]:
    return [a for a in problem.space.from_unit(unit) if problem.space.satisfies_linear_constraints(a)]


def _random(problem: Problem, n: int, reason: str, rng: np.random.Generator) -> list[Candidate]:
    out: list[Candidate] = []
    for _ in range(_MAX_TRIES):
        for a in _feasible(problem, random_points(problem.space, 64, rng)):
            out.append(Candidate(a, source=reason))
            if len(out) == n:
                return out
    raise RuntimeError("no random point satisfies the linear constraints")


def suggest(problem: Problem, n: int = 1) -> list[Candidate]:
    """Propose ``n`` candidates for ``problem``."""
    rng = np.random.default_rng([problem.seed, problem.n_suggested])
    if problem.random_only or problem.experiment_type == "random":
        return _random(problem, n, "random", rng)
    try:
        pts = sobol_points(problem.space, problem.n_suggested, n, problem.seed)
        cands = [Candidate(a, source="sobol") for a in problem.space.from_unit(pts)]
        if all(problem.space.satisfies_linear_constraints(c.assignments) for c in cands):
            return cands
        return _random(problem, n, "random: sobol point broke a linear constraint", rng)
    except Exception as exc:  # the engine must always answer
        return _random(problem, n, f"fallback-random: {type(exc).__name__}: {exc}", rng)
