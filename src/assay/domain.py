"""Domain objects: frozen dataclasses passed between layers.

The store builds them from rows, the service and engine read them, and
``to_json`` renders each in the JSON shape of SigOpt's API v1 (ids as strings,
an ``object`` field naming the type). ``*.from_json`` only reads canonical,
already-validated JSON (what the service stored), never raw user input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ObservationColumns",
    "Bounds",
    "Parameter",
    "Metric",
    "Task",
    "total_cost",
    "Conditional",
    "LinearConstraint",
    "Experiment",
    "MetricValue",
    "Suggestion",
    "QueuedSuggestion",
    "Observation",
    "Progress",
    "Page",
    "Project",
    "TrainingRun",
    "Checkpoint",
    "StoredFile",
    "Tag",
]

Assignments = dict[str, Any]
JSON = dict[str, Any]


@dataclass(frozen=True)
class Bounds:
    min: float
    max: float

    def to_json(self, integer: bool = False) -> JSON:
        cast = int if integer else float
        return {"object": "bounds", "min": cast(self.min), "max": cast(self.max)}


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # "double" | "int" | "categorical"
    bounds: Bounds | None = None
    categorical_values: tuple[str, ...] = ()
    transformation: str | None = None  # None | "log"
    grid: tuple[float, ...] = ()
    prior: JSON | None = None
    default_value: Any = None
    conditions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    precision: int | None = None

    @property
    def is_log(self) -> bool:
        return self.transformation == "log"

    def to_json(self) -> JSON:
        out = {
            "object": "parameter",
            "name": self.name,
            "type": self.type,
            "bounds": self.bounds.to_json(self.type == "int") if self.bounds else None,
            "categorical_values": (
                [{"object": "categorical_value", "name": v, "enum_index": i + 1}
                 for i, v in enumerate(self.categorical_values)]
                if self.type == "categorical" else None
            ),
            "conditions": {k: list(v) for k, v in self.conditions.items()},
            "default_value": self.default_value,
            "grid": [int(g) for g in self.grid] if self.type == "int" else list(self.grid),
            "precision": self.precision,
            "prior": self.prior,
            "transformation": self.transformation,
        }
        return out

    def to_storage(self) -> JSON:
        out = self.to_json()
        if self.type == "categorical":
            out["categorical_values"] = list(self.categorical_values)
        return out

    @classmethod
    def from_json(cls, d: JSON) -> Parameter:
        b = d.get("bounds")
        cats = d.get("categorical_values") or ()
        cats = tuple(c["name"] if isinstance(c, dict) else str(c) for c in cats)
        return cls(
            name=d["name"],
            type=d["type"],
            bounds=Bounds(float(b["min"]), float(b["max"])) if b else None,
            categorical_values=cats,
            transformation=d.get("transformation"),
            grid=tuple(d.get("grid") or ()),
            prior=d.get("prior"),
            default_value=d.get("default_value"),
            conditions={k: tuple(v) for k, v in (d.get("conditions") or {}).items()},
            precision=d.get("precision"),
        )


@dataclass(frozen=True)
class Metric:
    name: str
    objective: str = "maximize"  # "maximize" | "minimize"
    strategy: str = "optimize"  # "optimize" | "store" | "constraint"
    threshold: float | None = None

    def to_json(self) -> JSON:
        return {"object": "metric", "name": self.name, "objective": self.objective,
                "strategy": self.strategy, "threshold": self.threshold}

    @classmethod
    def from_json(cls, d: JSON) -> Metric:
        return cls(d["name"], d.get("objective") or "maximize", d.get("strategy") or "optimize",
                   d.get("threshold"))


@dataclass(frozen=True)
class Task:
    name: str
    cost: float

    def to_json(self) -> JSON:
        return {"object": "task", "name": self.name, "cost": self.cost}

    @classmethod
    def from_json(cls, d: JSON) -> Task:
        return cls(d["name"], float(d["cost"]))


def total_cost(costs: Iterable[float]) -> float:
    """Budget consumed by runs of these task costs: summed exactly, then rounded to 9 decimals, so that ten
    runs of cost 0.1 consume 1.0 and not 0.9999999999999999 (which would leave room for an eleventh run)."""
    return round(math.fsum(costs), 9)


@dataclass(frozen=True)
class Conditional:
    name: str
    values: tuple[str, ...]

    def to_json(self) -> JSON:
        return {"object": "conditional", "name": self.name, "values": list(self.values)}

    def to_storage(self) -> JSON:
        return {"name": self.name, "values": list(self.values)}

    @classmethod
    def from_json(cls, d: JSON) -> Conditional:
        return cls(d["name"], tuple(v["name"] if isinstance(v, dict) else str(v) for v in d["values"]))


@dataclass(frozen=True)
class LinearConstraint:
    type: str  # "greater_than" | "less_than"
    terms: tuple[tuple[str, float], ...]
    threshold: float

    def to_json(self) -> JSON:
        return {"object": "linear_constraint", "type": self.type, "threshold": self.threshold,
                "terms": [{"object": "constraint_term", "name": n, "weight": w} for n, w in self.terms]}

    @classmethod
    def from_json(cls, d: JSON) -> LinearConstraint:
        return cls(d["type"], tuple((t["name"], float(t["weight"])) for t in d["terms"]),
                   float(d["threshold"]))


@dataclass(frozen=True)
class MetricValue:
    name: str
    value: float
    value_stddev: float | None = None

    def to_json(self) -> JSON:
        return {"object": "metric_evaluation", "name": self.name, "value": self.value,
                "value_stddev": self.value_stddev}

    @classmethod
    def from_json(cls, d: JSON) -> MetricValue:
        return cls(d["name"], float(d["value"]), d.get("value_stddev"))


@dataclass(frozen=True)
class Observation:
    id: int
    experiment_id: int
    assignments: Assignments
    values: tuple[MetricValue, ...] = ()
    failed: bool = False
    suggestion_id: int | None = None
    task: Task | None = None
    metadata: JSON | None = None
    created: int = 0

    def value_of(self, metric: str) -> float | None:
        for v in self.values:
            if v.name == metric:
                return v.value
        return None

    def to_json(self) -> JSON:
        first = self.values[0] if len(self.values) == 1 else None
        return {
            "object": "observation",
            "id": str(self.id),
            "experiment": str(self.experiment_id),
            "assignments": dict(self.assignments),
            "created": self.created,
            "failed": self.failed,
            "metadata": self.metadata,
            "suggestion": str(self.suggestion_id) if self.suggestion_id is not None else None,
            "task": self.task.to_json() if self.task else None,
            "value": first.value if first else None,
            "value_stddev": first.value_stddev if first else None,
            "values": [v.to_json() for v in self.values],
        }


@dataclass(frozen=True)
class Suggestion:
    id: int
    experiment_id: int
    assignments: Assignments
    state: str = "open"  # "open" | "closed"
    task: Task | None = None
    metadata: JSON | None = None
    created: int = 0
    deleted: bool = False
    source: str | None = None  # how it was computed (initial design, gp, fallback-random: reason ...)

    def to_json(self) -> JSON:
        return {
            "object": "suggestion",
            "id": str(self.id),
            "experiment": str(self.experiment_id),
            "assignments": dict(self.assignments),
            "created": self.created,
            "deleted": self.deleted,
            "metadata": self.metadata,
            "state": self.state,
            "task": self.task.to_json() if self.task else None,
            "source": self.source,  # assay extension: how it was computed, and why for fallbacks
        }


@dataclass(frozen=True)
class QueuedSuggestion:
    id: int
    experiment_id: int
    assignments: Assignments
    task: Task | None = None
    created: int = 0

    def to_json(self) -> JSON:
        return {"object": "queued_suggestion", "id": str(self.id), "experiment": str(self.experiment_id),
                "assignments": dict(self.assignments), "created": self.created,
                "task": self.task.to_json() if self.task else None}


@dataclass(frozen=True)
class Progress:
    observation_count: int = 0
    observation_budget_consumed: float = 0.0
    failed_observation_count: int = 0
    open_suggestion_count: int = 0
    first_observation: Observation | None = None
    last_observation: Observation | None = None
    best_observation: Observation | None = None

    def to_json(self) -> JSON:
        def obs(o: Observation | None) -> JSON | None:
            return o.to_json() if o else None

        return {
            "object": "progress",
            "observation_count": self.observation_count,
            "observation_budget_consumed": self.observation_budget_consumed,
            "failed_observation_count": self.failed_observation_count,
            "open_suggestion_count": self.open_suggestion_count,
            "first_observation": obs(self.first_observation),
            "last_observation": obs(self.last_observation),
            "best_observation": obs(self.best_observation),
        }


@dataclass(frozen=True)
class Experiment:
    id: int
    name: str
    parameters: tuple[Parameter, ...]
    metrics: tuple[Metric, ...]
    type: str = "offline"  # "offline" | "random" | "grid"
    state: str = "active"  # "active" | "deleted"
    observation_budget: int | None = None
    parallel_bandwidth: int | None = None
    conditionals: tuple[Conditional, ...] = ()
    linear_constraints: tuple[LinearConstraint, ...] = ()
    tasks: tuple[Task, ...] = ()
    num_solutions: int | None = None
    metadata: JSON | None = None
    project: str | None = None
    client_id: int = 1
    development: bool = False
    runs_only: bool = False
    created: int = 0
    updated: int = 0
    progress: Progress | None = None
    # {"max_checkpoints": int|None, "early_stopping_criteria": [{type, name, metric, ...}]} (SigOpt JSON)
    training_monitor: JSON | None = None

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def optimized_metrics(self) -> tuple[Metric, ...]:
        return tuple(m for m in self.metrics if m.strategy == "optimize")

    @property
    def constraint_metrics(self) -> tuple[Metric, ...]:
        return tuple(m for m in self.metrics if m.strategy == "constraint")

    @property
    def bandwidth(self) -> int:
        return self.parallel_bandwidth or 1

    def definition(self) -> JSON:
        """Canonical JSON of the search definition, as the store keeps it."""
        return {
            "parameters": [p.to_storage() for p in self.parameters],
            "metrics": [m.to_json() for m in self.metrics],
            "conditionals": [c.to_storage() for c in self.conditionals],
            "linear_constraints": [c.to_json() for c in self.linear_constraints],
            "tasks": [t.to_json() for t in self.tasks],
            "num_solutions": self.num_solutions,
            "training_monitor": self.training_monitor,
        }

    def to_json(self) -> JSON:
        metrics = [m.to_json() for m in self.metrics]
        return {
            "object": "experiment",
            "id": str(self.id),
            "name": self.name,
            "type": self.type,
            "state": self.state,
            "created": self.created,
            "updated": self.updated,
            "client": str(self.client_id),
            "project": self.project,
            "user": None,
            "development": self.development,
            "runs_only": self.runs_only,
            "observation_budget": self.observation_budget,
            "budget": self.observation_budget,
            "parallel_bandwidth": self.parallel_bandwidth,
            "num_solutions": self.num_solutions,
            "metadata": self.metadata,
            "parameters": [p.to_json() for p in self.parameters],
            "metrics": metrics,
            "metric": metrics[0] if len(metrics) == 1 else None,
            "conditionals": [c.to_json() for c in self.conditionals],
            "linear_constraints": [c.to_json() for c in self.linear_constraints],
            "tasks": [t.to_json() for t in self.tasks] or None,
            "training_monitor": self.training_monitor,
            "progress": self.progress.to_json() if self.progress else None,
        }


@dataclass(frozen=True)
class Page:
    """One page of a list, rendered as SigOpt's ``pagination`` object."""

    data: list[Any]
    count: int
    before: str | None = None
    after: str | None = None

    def to_json(self) -> JSON:
        return {
            "object": "pagination",
            "count": self.count,
            "data": [d.to_json() if hasattr(d, "to_json") else d for d in self.data],
            "paging": {"before": self.before, "after": self.after},
        }


# -- run tracking ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Project:
    id: int
    reference: str
    name: str
    client_id: int = 1
    metadata: JSON | None = None
    created: int = 0
    updated: int = 0

    def to_json(self) -> JSON:
        return {"object": "project", "id": self.reference, "name": self.name, "client": str(self.client_id),
                "user": None, "created": self.created, "updated": self.updated, "metadata": self.metadata}


@dataclass(frozen=True)
class TrainingRun:
    """A tracked run. ``data`` holds values, logs, metadata, model, source_code, datasets, tags ..."""

    id: int
    name: str
    project: str
    client_id: int = 1
    state: str = "active"  # "active" | "completed" | "failed"
    deleted: bool = False
    favorite: bool = False
    assignments: Assignments = field(default_factory=dict)
    data: JSON = field(default_factory=dict)
    experiment_id: int | None = None
    suggestion_id: int | None = None
    observation_id: int | None = None
    checkpoint_count: int = 0
    files: tuple[int, ...] = ()
    created: int = 0
    updated: int = 0
    completed: int | None = None
    tags: tuple[int, ...] = ()  # ids of the team's tags

    @property
    def values(self) -> dict[str, JSON]:
        return self.data.get("values") or {}

    def to_json(self) -> JSON:
        d = self.data
        return {
            "object": "training_run",
            "id": str(self.id),
            "name": self.name,
            "client": str(self.client_id),
            "project": self.project,
            "user": None,
            "state": self.state,
            "finished": self.state in ("completed", "failed"),
            "deleted": self.deleted,
            "favorite": self.favorite,
            "created": self.created,
            "updated": self.updated,
            "completed": self.completed,
            "experiment": str(self.experiment_id) if self.experiment_id is not None else None,
            "suggestion": str(self.suggestion_id) if self.suggestion_id is not None else None,
            "observation": str(self.observation_id) if self.observation_id is not None else None,
            "assignments": dict(self.assignments),
            "assignments_meta": d.get("assignments_meta") or {},
            "assignments_sources": d.get("assignments_sources") or {},
            "values": {k: {"object": "metric_evaluation", "name": k, "value": v.get("value"),
                           "value_stddev": v.get("value_stddev")} for k, v in self.values.items()},
            "logs": {k: {"object": "log", "content": v.get("content", "")} for k, v in (d.get("logs") or {}).items()},
            "metadata": d.get("metadata") or {},
            "sys_metadata": d.get("sys_metadata") or {},
            "dev_metadata": d.get("dev_metadata") or {},
            "model": {"object": "model", **(d.get("model") or {})},
            "source_code": {"object": "source_code", **(d.get("source_code") or {})},
            "datasets": {k: {"object": "dataset", **(v or {})} for k, v in (d.get("datasets") or {}).items()},
            "tags": [str(t) for t in self.tags],
            "files": [str(f) for f in self.files],
            "checkpoint_count": self.checkpoint_count,
            "best_checkpoint": None,
        }


@dataclass(frozen=True)
class Checkpoint:
    id: int
    training_run_id: int
    step: int
    values: tuple[MetricValue, ...]
    metadata: JSON | None = None
    created: int = 0
    should_stop: bool = False  # the experiment's training_monitor decision when it was reported
    stopping_reasons: JSON | None = None

    def to_json(self) -> JSON:
        return {"object": "checkpoint", "id": str(self.id), "training_run": str(self.training_run_id),
                "step": self.step, "created": self.created, "values": [v.to_json() for v in self.values],
                "metadata": self.metadata or {}, "should_stop": self.should_stop,
                "stopping_reasons": dict(self.stopping_reasons or {})}


@dataclass(frozen=True)
class StoredFile:
    """An artifact's record; the bytes are in the artifact directory."""

    id: int
    client_id: int
    content_type: str
    content_length: int
    training_run_id: int | None = None
    name: str | None = None
    filename: str | None = None
    content_md5: str | None = None
    sha256: str | None = None
    uploaded: bool = False
    created: int = 0

    def to_json(self) -> JSON:
        return {"object": "file", "id": str(self.id), "client": str(self.client_id), "user": None,
                "training_run": str(self.training_run_id) if self.training_run_id is not None else None,
                "name": self.name, "filename": self.filename, "content_type": self.content_type,
                "content_length": self.content_length, "content_md5": self.content_md5, "sha256": self.sha256,
                "uploaded": self.uploaded, "created": self.created,
                "download": {"object": "download", "url": f"/v1/files/{self.id}/content"} if self.uploaded else None}


@dataclass(frozen=True)
class ObservationColumns:
    """Every observation of an experiment as parallel lists (oldest first): a bulk read for the dashboard
    that skips building one :class:`Observation` per row."""

    id: list[int]
    created: list[int]
    failed: list[bool]
    suggestion_id: list[int | None]
    task: list[str | None]
    cost: list[float]
    assignments: list[dict[str, Any]]
    values: list[dict[str, float]]  # metric name -> value

    def __len__(self) -> int:
        return len(self.id)

    def observation(self, i: int, experiment_id: int) -> Observation:
        """Row ``i`` as an :class:`Observation` (without value stddevs or metadata)."""
        name = self.task[i]
        task = Task(name, self.cost[i]) if name is not None else None
        return Observation(id=self.id[i], experiment_id=experiment_id, assignments=self.assignments[i],
                           values=tuple(MetricValue(k, v) for k, v in self.values[i].items()),
                           failed=self.failed[i], suggestion_id=self.suggestion_id[i], task=task,
                           created=self.created[i])


@dataclass(frozen=True)
class Tag:
    """A team's run tag (SigOpt's ``tag``: a name and a ``#rrggbb`` colour)."""

    id: int
    client_id: int
    name: str
    color: str
    created: int = 0

    def to_json(self) -> JSON:
        return {"object": "tag", "id": str(self.id), "client": str(self.client_id), "name": self.name,
                "color": self.color, "created": self.created}
