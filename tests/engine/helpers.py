"""Small problems shared by the engine tests."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from assay.domain import Bounds, Conditional, LinearConstraint, Metric, MetricValue, Observation, Parameter
from assay.engine import Problem
from assay.engine.strategy import suggest
from assay.space import Space


def branin(a: dict[str, Any]) -> float:
    x1, x2 = a["x1"], a["x2"]
    return ((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


BRANIN = Space([Parameter("x1", "double", Bounds(-5, 10)), Parameter("x2", "double", Bounds(0, 15))])

MIXED = Space(
    [
        Parameter("lr", "double", Bounds(1e-4, 1.0), transformation="log"),
        Parameter("layers", "int", Bounds(1, 6)),
        Parameter("act", "categorical", categorical_values=("relu", "tanh", "gelu")),
        Parameter("a", "double", Bounds(0, 1)),
        Parameter("b", "int", Bounds(0, 10)),
        Parameter("momentum", "double", Bounds(0, 0.99), conditions={"opt": ("sgd",)}),
        Parameter("beta", "double", Bounds(0.5, 0.999), conditions={"opt": ("adam",)}),
    ],
    conditionals=[Conditional("opt", ("sgd", "adam"))],
    linear_constraints=[LinearConstraint("less_than", (("layers", 1.0), ("b", 1.0)), 9)],
)


def observe(assignments: dict[str, Any], i: int, values: dict[str, float] | None, failed: bool = False,
            stddev: float | None = None) -> Observation:
    vals = tuple(MetricValue(k, v, stddev) for k, v in (values or {}).items())
    return Observation(i + 1, 1, dict(assignments), vals, failed=failed)


def run_study(space: Space, metrics: Sequence[Metric], f: Callable[[dict], dict[str, float] | None], budget: int,
              seed: int = 0, random_only: bool = False, **kw: Any) -> list[Observation]:
    """A sequential loop; ``f`` returns metric values or None for a failure."""
    obs: list[Observation] = []
    for i in range(budget):
        c = suggest(Problem(space, tuple(metrics), observations=list(obs), seed=seed, n_suggested=i,
                            random_only=random_only, **kw), 1)[0]
        v = f(c.assignments)
        obs.append(observe(c.assignments, i, v, failed=v is None))
    return obs
