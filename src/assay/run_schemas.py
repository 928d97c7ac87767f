"""Request bodies of the run-tracking API (projects, training runs, checkpoints, files, AI experiments)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from assay.schemas import Name, Strict, ValueIn

__all__ = [
    "ProjectCreate",
    "ProjectUpdate",
    "RunValueIn",
    "TrainingRunIn",
    "TrainingRunBatch",
    "CheckpointCreate",
    "FileCreate",
    "TagCreate",
    "RunTagAdd",
    "PROJECT_ID_PATTERN",
    "MAX_LOG_CHARS",
]

PROJECT_ID_PATTERN = r"^[a-z0-9\-_\.]+$"
MAX_LOG_CHARS = 2_000_000
RunText = Annotated[str, StringConstraints(max_length=10_000)]
Key = Annotated[str, StringConstraints(min_length=1, max_length=100)]
RunMetadata = dict[Key, RunText | float | int | bool | None]


class ProjectCreate(Strict):
    id: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=PROJECT_ID_PATTERN)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    metadata: RunMetadata | None = None
    object: Literal["project"] | None = None


class ProjectUpdate(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    metadata: RunMetadata | None = None


class RunValueIn(Strict):
    value: float
    value_stddev: float | None = Field(default=None, ge=0)
    name: Name | None = None
    object: Literal["metric_evaluation"] | None = None


class LogIn(Strict):
    content: Annotated[str, StringConstraints(max_length=MAX_LOG_CHARS)] = ""
    object: Literal["log"] | None = None


class ModelIn(Strict):
    type: Annotated[str, StringConstraints(max_length=500)] | None = None
    object: Literal["model"] | None = None


class SourceCodeIn(Strict):
    content: Annotated[str, StringConstraints(max_length=1_000_000)] | None = None
    hash: Annotated[str, StringConstraints(max_length=100)] | None = None
    object: Literal["source_code"] | None = None


Assignment = float | int | Annotated[str, StringConstraints(max_length=500)] | bool | None


class TrainingRunIn(Strict):
    """Fields of a training run as sent by create, PUT (replace) and MERGE (merge maps)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    state: Literal["active", "completed", "failed"] | None = None
    deleted: bool | None = None
    favorite: bool | None = None
    assignments: dict[Name, Assignment] | None = None
    assignments_meta: dict[Name, dict[Key, Any] | None] | None = None
    assignments_sources: dict[Name, dict[Key, Any] | None] | None = None
    values: dict[Name, RunValueIn | None] | list[RunValueIn] | None = Field(default=None)
    logs: dict[Name, LogIn | None] | None = None
    metadata: RunMetadata | None = None
    sys_metadata: dict[Key, Any] | None = None
    dev_metadata: dict[Key, Any] | None = None
    model: ModelIn | None = None
    source_code: SourceCodeIn | None = None
    datasets: dict[Name, dict[Key, Any] | None] | list[Name] | None = None
    tags: list[Name] | None = Field(default=None, max_length=100)
    object: Literal["training_run"] | None = None


class TrainingRunBatch(Strict):
    runs: list[TrainingRunIn] = Field(max_length=10_000)
    fields: str | None = None


class CheckpointCreate(Strict):
    values: list[ValueIn] = Field(max_length=100)
    metadata: RunMetadata | None = None
    object: Literal["checkpoint"] | None = None


class FileCreate(Strict):
    content_length: int = Field(ge=0)
    content_type: Annotated[str, StringConstraints(min_length=3, max_length=200,
                                                   pattern=r"^[\w.+-]+/[\w.+-]+$")] = "application/octet-stream"
    content_md5: Annotated[str, StringConstraints(min_length=22, max_length=24)] | None = None
    content_sha256: Annotated[str, StringConstraints(min_length=64, max_length=64,
                                                     pattern=r"^[0-9a-fA-F]{64}$")] | None = None
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    filename: Annotated[str, StringConstraints(max_length=500)] | None = None
    object: Literal["file"] | None = None


class TagCreate(Strict):
    name: Name
    color: Annotated[str, StringConstraints(max_length=20)] | None = None
    object: Literal["tag"] | None = None


class RunTagAdd(Strict):
    id: Annotated[str, StringConstraints(max_length=20)] | int
