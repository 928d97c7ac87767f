"""Request bodies of API v1 as pydantic models (shape and types only).

The server declares them on its routes (so they appear in the OpenAPI document) and
the service parses with them too; rules that need more than one field (bounds order,
limits, names that must exist) live in :mod:`assay.validation`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from assay.errors import Unprocessable

__all__ = [
    "Strict",
    "BoundsIn",
    "PriorIn",
    "ParameterIn",
    "MetricIn",
    "TaskIn",
    "ConditionalIn",
    "TermIn",
    "LinearConstraintIn",
    "EarlyStoppingIn",
    "TrainingMonitorIn",
    "ExperimentCreate",
    "ExperimentUpdate",
    "SuggestionCreate",
    "SuggestionUpdate",
    "ValueIn",
    "ObservationCreate",
    "ObservationUpdate",
    "ObservationBatch",
    "QueuedSuggestionCreate",
    "parse",
]

Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Text = Annotated[str, StringConstraints(max_length=500)]
Metadata = dict[Annotated[str, StringConstraints(max_length=100)], str | float | int | bool | None]


MAX_DEPTH = 32


def check_text(value: Any, where: str = "body", depth: int = 0) -> None:
    """Refuse text no database stores faithfully (NUL, lone surrogates) and absurd nesting, anywhere in ``value``."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where}: text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: text must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            check_text(k, where, depth + 1)
            check_text(v, f"{where}.{k}" if isinstance(k, str) and len(k) < 100 else where, depth + 1)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            check_text(v, f"{where}[{i}]", depth + 1)


class Strict(BaseModel):
    """Base: unknown fields, non-finite numbers, NUL characters and lone surrogates are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:
        check_text(data, "body")
        return data


class BoundsIn(Strict):
    min: float
    max: float
    object: Literal["bounds"] | None = None


class PriorIn(Strict):
    name: Literal["normal", "beta"]
    mean: float | None = None
    scale: float | None = None
    shape_a: float | None = None
    shape_b: float | None = None
    object: Literal["prior", "normal_prior", "beta_prior"] | None = None


class CategoricalValueIn(Strict):
    name: Name
    enum_index: int | None = None
    object: Literal["categorical_value"] | None = None


class ParameterIn(Strict):
    name: Name
    type: Literal["double", "int", "categorical"]
    bounds: BoundsIn | None = None
    categorical_values: list[Name | CategoricalValueIn] | None = Field(default=None, max_length=1000)
    transformation: Literal["none", "log"] | None = None
    grid: list[float] | None = Field(default=None, max_length=10000)
    prior: PriorIn | None = None
    default_value: float | int | str | None = None
    conditions: dict[Name, list[Name] | Name] | None = None
    precision: int | None = None
    object: Literal["parameter"] | None = None


class MetricIn(Strict):
    name: Name
    objective: Literal["maximize", "minimize"] = "maximize"
    strategy: Literal["optimize", "store", "constraint"] = "optimize"
    threshold: float | None = None
    object: Literal["metric"] | None = None


class TaskIn(Strict):
    name: Name
    cost: float
    object: Literal["task"] | None = None


class ConditionalIn(Strict):
    name: Name
    values: list[Name | CategoricalValueIn] = Field(max_length=100)
    object: Literal["conditional"] | None = None


class TermIn(Strict):
    name: Name
    weight: float
    object: Literal["constraint_term"] | None = None


class LinearConstraintIn(Strict):
    type: Literal["greater_than", "less_than"]
    terms: list[TermIn] = Field(max_length=100)
    threshold: float
    object: Literal["linear_constraint"] | None = None


class EarlyStoppingIn(Strict):
    type: Literal["convergence", "asha"]
    name: Name | None = None
    metric: Name | None = None
    lookback_checkpoints: int | None = Field(default=None, ge=1, le=200)
    min_checkpoints: int | None = Field(default=None, ge=1, le=200)
    min_improvement: float | None = Field(default=None, ge=0)
    reduction_factor: int | None = Field(default=None, ge=2, le=20)
    object: Literal["training_early_stopping_criteria"] | None = None


class TrainingMonitorIn(Strict):
    max_checkpoints: int | None = Field(default=None, ge=1, le=200)
    early_stopping_criteria: list[EarlyStoppingIn] | None = Field(default=None, max_length=10)
    object: Literal["training_monitor"] | None = None


class ExperimentCreate(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    parameters: list[ParameterIn] = Field(max_length=100)
    metrics: list[MetricIn | Name] | None = Field(default=None, max_length=500)
    metric: MetricIn | Name | None = None
    type: Literal["offline", "random", "grid"] = "offline"
    observation_budget: int | None = Field(default=None, ge=0, le=1_000_000)
    budget: int | None = Field(default=None, ge=0, le=1_000_000)
    parallel_bandwidth: int | None = Field(default=None, ge=1, le=10_000)
    conditionals: list[ConditionalIn] | None = Field(default=None, max_length=20)
    linear_constraints: list[LinearConstraintIn] | None = Field(default=None, max_length=50)
    tasks: list[TaskIn] | None = Field(default=None, max_length=50)
    num_solutions: int | None = Field(default=None, ge=1, le=100)
    metadata: Metadata | None = None
    project: Name | None = None
    runs_only: bool = False
    training_monitor: TrainingMonitorIn | None = None
    client: str | None = None
    development: bool | None = None


class ExperimentUpdate(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    state: Literal["active", "deleted"] | None = None
    observation_budget: int | None = Field(default=None, ge=0, le=1_000_000)
    budget: int | None = Field(default=None, ge=0, le=1_000_000)
    parallel_bandwidth: int | None = Field(default=None, ge=1, le=10_000)
    metadata: Metadata | None = None
    parameters: list[ParameterIn] | None = Field(default=None, max_length=100)
    metrics: list[MetricIn | Name] | None = Field(default=None, max_length=500)
    project: Name | None = None
    no_optimize: bool | None = None
    # Fields SigOpt refuses to change; accepted here so the service can say so clearly.
    type: str | None = None
    conditionals: list[Any] | None = None
    linear_constraints: list[Any] | None = None
    tasks: list[Any] | None = None
    num_solutions: int | None = None


class TaskRef(Strict):
    name: Name
    cost: float | None = None
    object: Literal["task"] | None = None


class SuggestionCreate(Strict):
    assignments: dict[Name, Any] | None = None
    metadata: Metadata | None = None
    task: TaskRef | Name | None = None


class SuggestionUpdate(Strict):
    metadata: Metadata | None = None


class ValueIn(Strict):
    name: Name | None = None
    value: float
    value_stddev: float | None = Field(default=None, ge=0)
    object: Literal["metric_evaluation"] | None = None


class ObservationCreate(Strict):
    suggestion: int | Annotated[str, StringConstraints(max_length=40)] | None = None
    assignments: dict[Name, Any] | None = None
    values: list[ValueIn] | None = Field(default=None, max_length=50)
    value: float | None = None
    value_stddev: float | None = Field(default=None, ge=0)
    failed: bool = False
    metadata: Metadata | None = None
    task: TaskRef | Name | None = None
    no_optimize: bool | None = None
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


class ObservationUpdate(Strict):
    values: list[ValueIn] | None = Field(default=None, max_length=50)
    value: float | None = None
    value_stddev: float | None = Field(default=None, ge=0)
    failed: bool | None = None
    metadata: Metadata | None = None
    suggestion: int | str | None = None
    assignments: dict[Name, Any] | None = None
    task: TaskRef | Name | None = None
    no_optimize: bool | None = None


class ObservationBatch(Strict):
    observations: list[ObservationCreate] = Field(max_length=2500)


class QueuedSuggestionCreate(Strict):
    assignments: dict[Name, Any]
    task: TaskRef | Name | None = None


M = TypeVar("M", bound=BaseModel)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def text_error(msg: str) -> tuple[str, str] | None:
    """``(field, message)`` from a :func:`check_text` error ("Value error, body.x: ..."), else ``None``."""
    head = "Value error, body"
    if not msg.startswith(head) or ": " not in msg:
        return None
    where, _, what = msg[len(head):].partition(": ")
    return where.lstrip("."), what


def describe(err: ValidationError, prefix: str = "") -> tuple[str, str]:
    """First problem of a pydantic error as ``(field, message)``."""
    first = err.errors()[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and ("[" in p or "function-" in p)))
    field = _loc(loc)
    if prefix:
        field = f"{prefix}.{field}" if field else prefix
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    elif first["type"] == "finite_number":
        msg = "must be a finite number"
    elif (te := text_error(msg)) is not None:
        sub, msg = te
        field = ".".join(x for x in (field, sub) if x)
        if prefix and not field.startswith(prefix):
            field = f"{prefix}.{field}"
    return field, f"Invalid {field or 'body'}: {msg}"


def parse(model: type[M], body: Any, prefix: str = "") -> M:
    """Validate ``body`` (a dict or an instance) as ``model``; errors become :class:`Unprocessable`."""
    if isinstance(body, model):
        return body
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise Unprocessable("The request body must be a JSON object", field=prefix or None)
    try:
        return model.model_validate(body)
    except ValidationError as err:
        field, msg = describe(err, prefix)
        raise Unprocessable(msg, field=field or None) from None
