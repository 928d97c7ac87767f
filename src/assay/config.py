"""Settings from the environment (``ASSAY_*``) via pydantic-settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Process settings; every field reads ``ASSAY_<NAME>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="ASSAY_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".assay")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    # Suggestions computed ahead of demand by a background worker (server only).
    precompute: bool = True
    suggestion_timeout: float = 20.0
    # Import the model stack (torch, BoTorch: seconds of CPU) when the server starts, so the first model
    # suggestion is not slowed by it. Off: imported by the first model suggestion instead.
    prewarm: bool = True
    max_body_bytes: int = 16 * 1024 * 1024
    # Fixes every new experiment's random seed (reproducible runs and tests); unset: a random seed each.
    seed: int | None = None
    # API tokens. None: on for `assay server`, off in-process (embedded Connection, create_app in tests).
    auth: bool | None = None
    # Serve without auth on an address beyond loopback (refused unless this is set).
    insecure_no_auth: bool = False
    # Requests per second per token and burst (token bucket; 0 = unlimited). Only with auth. With
    # several server processes each one allows its share (rate / workers), so the sum stays the limit.
    rate_limit: float = 100.0
    rate_burst: int = 200
    # Rejected tokens (missing, unknown, revoked, expired) per second and burst per client address,
    # then 429: token guessing and floods of bad tokens (0 = unlimited).
    auth_failure_limit: float = 5.0
    auth_failure_burst: int = 50
    # Seconds a server process reuses a token lookup (0: look up on every request). Changes made
    # through this process's API apply at once; a revocation by the CLI or another server process
    # applies within this time.
    auth_cache_seconds: float = 2.0
    # Exempt the startup heap and the imported model stack from garbage collection (full collections
    # over them stall requests for 0.1-0.5 s). `assay server` sets it: its processes serve nothing else.
    freeze_heap: bool = False
    # Server processes sharing the limits above (`assay server --workers N` sets it).
    workers: int = Field(default=1, ge=1)
    # Largest artifact (image, model file ...) a training run may upload.
    max_file_bytes: int = 256 * 1024 * 1024
    # Database connections per server process, for writes and for reads (PostgreSQL: keep
    # processes * (pool + read pool + 2 * overflow) < max_connections). A few writers per process keep
    # 2 cores busy; more threads in transactions only contend for the interpreter lock, slowing every
    # request. Reads have their own pool so they never queue behind writes. No overflow by default:
    # an overflow connection is opened for one transaction and closed after it (a PostgreSQL backend
    # started per request under load doubled PostgreSQL's CPU per request).
    db_pool_size: int = 4
    db_read_pool_size: int = 8
    db_max_overflow: int = 0

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'assay.db'}"

    @property
    def artifact_dir(self) -> Path:
        return self.home / "artifacts"
