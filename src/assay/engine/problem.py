"""What the engine is asked (:class:`Problem`) and what it answers (:class:`Candidate`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.domain import Metric, Observation, Task
from assay.space import Space

__all__ = ["Problem", "Candidate"]


@dataclass(frozen=True)
class Problem:
    """Everything needed to propose the next points of one experiment.

    ``n_suggested`` counts every suggestion ever made (deleted ones too); the initial
    design uses it as its position in the quasi-random sequence so that restarts continue
    the sequence instead of repeating it.
    """

    space: Space
    metrics: tuple[Metric, ...]
    observations: Sequence[Observation] = ()
    pending: Sequence[dict[str, Any]] = ()
    experiment_type: str = "offline"
    tasks: tuple[Task, ...] = ()
    observation_budget: int | None = None
    parallel_bandwidth: int = 1
    seed: int = 0
    n_suggested: int = 0
    random_only: bool = False  # development tokens and type=random
    time_limit: float | None = None  # seconds for the model path; past it the strategy falls back
    pending_tasks: Sequence[Task | None] = ()  # the task of each open suggestion, aligned with ``pending``
    num_solutions: int = 1  # multisolution: every other model suggestion explores away from the good points


@dataclass(frozen=True)
class Candidate:
    """One proposed point; ``source`` says how it was made (and why, for fallbacks)."""

    assignments: dict[str, Any]
    task: Task | None = None
    source: str = "sobol"
    info: dict[str, Any] = field(default_factory=dict)
