"""Grid experiments: every combination of grid values, in a shuffled order, each once.

The grid is the product of each parameter's ``grid`` values (categoricals: their
values). Points are handed out in an order fixed by the experiment's seed; a point is
skipped while it has an observation or an open suggestion, so a deleted suggestion's
point is handed out again later. When every point is observed or pending the grid is
exhausted and :class:`~assay.errors.Conflict` (HTTP 409) says so: a grid never repeats
a point. The budget of a grid experiment is :func:`grid_size`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from assay.domain import Parameter
from assay.engine.problem import Candidate, Problem
from assay.errors import Conflict

__all__ = ["grid_values", "grid_size", "grid_point", "grid_points", "MAX_GRID"]

MAX_GRID = 1_000_000


def grid_values(p: Parameter) -> tuple[Any, ...]:
    if p.type == "categorical":
        return tuple(p.categorical_values)
    if p.type == "int":
        return tuple(int(v) for v in p.grid)
    return tuple(float(v) for v in p.grid)


def grid_size(parameters: Sequence[Parameter]) -> int:
    n = 1
    for p in parameters:
        n *= len(grid_values(p))
    return n


def grid_point(parameters: Sequence[Parameter], index: int) -> dict[str, Any]:
    """The ``index``-th combination (mixed radix, last parameter fastest)."""
    out: dict[str, Any] = {}
    for p in reversed(parameters):
        values = grid_values(p)
        index, r = divmod(index, len(values))
        out[p.name] = values[r]
    return {p.name: out[p.name] for p in parameters}


def grid_points(problem: Problem, n: int = 1) -> list[Candidate]:
    """The next ``n`` grid points not yet observed nor pending; 409 when fewer remain."""
    params = problem.space.parameters
    size = grid_size(params)
    key = problem.space.key
    taken = {key(o.assignments) for o in problem.observations} | {key(a) for a in problem.pending}
    order = np.random.default_rng([problem.seed, 0x6121D]).permutation(size)
    out: list[Candidate] = []
    for idx in order:
        a = grid_point(params, int(idx))
        k = key(a)
        if k in taken:
            continue
        taken.add(k)
        out.append(Candidate(a, source=f"grid:{int(idx)}"))
        if len(out) == n:
            return out
    raise Conflict(f"the grid is exhausted: all {size} grid points have an observation or an open suggestion",
                   field="experiment")
