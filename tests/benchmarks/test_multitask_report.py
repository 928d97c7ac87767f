"""The multitask benchmark's report: targets, costs to them and the half-the-seeds line, from hand-made traces."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.multitask import cost_to, summarize


def _trace(seed: int, steps: list[tuple[float, float]]) -> dict[str, Any]:
    return {"seed": seed, "cost": [c for c, _ in steps], "best": [b for _, b in steps], "evals": len(steps),
            "full": len(steps), "seconds": 1.0}


def _runs(n_seeds: int) -> dict[str, Any]:
    # assay-bo: seed k's best drops to 1 - 0.1 k at cost 4 (budget 4, so T2 = its median final)
    bo = [_trace(k, [(2.0, 5.0), (4.0, 1.0 - 0.1 * k)]) for k in range(n_seeds)]
    # the multitask method: the same final qualities, seed k reaching its own at cost 0.5 (k + 1)
    mt = [_trace(k, [(0.5 * (k + 1), 1.0 - 0.1 * k), (4.0, 1.0 - 0.1 * k)]) for k in range(n_seeds)]
    return {"budget": 4, "runs": {"branin-mf": {"assay-bo": bo, "assay-multitask": mt}}}


def test_an_even_seed_count_adds_the_cost_by_which_half_the_seeds_reach_t2() -> None:
    results = _runs(4)
    text = summarize(results)
    assert "T2 = at cost 4 = 0.85" in text  # assay-bo's median final: seeds 2 and 3 reach it, 0 and 1 do not
    costs = [cost_to(t, 0.85) for t in results["runs"]["branin-mf"]["assay-multitask"]]
    assert costs[:2] == [math.inf, math.inf] and costs[2:] == [1.5, 2.0]
    assert "| assay-multitask | 4 | " in text and "| inf (2/4) | n/a |" in text  # median of two infs
    assert "Cost by which half the seeds reach T2: assay-bo 4, assay-multitask 2." in text


def test_an_odd_seed_count_reports_the_plain_median() -> None:
    text = summarize(_runs(5))
    assert "Cost by which half the seeds reach T2" not in text
    assert "| assay-multitask | 5 | " in text
