"""Fuzz every operation of the OpenAPI document with schemathesis (bounded): no 5xx, responses match it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from assay.config import Settings
from assay.server.app import create_app
from assay.service import Service
from assay.store import Store

schemathesis = pytest.importorskip("schemathesis")

_home = Path(tempfile.mkdtemp(prefix="assay-fuzz-"))
_store = Store(f"sqlite:///{_home / 'fuzz.db'}")
_store.ensure_schema()
_service = Service(_store)
# objects for path parameters to hit: experiment 1 with a suggestion, an observation and a queued suggestion
_exp = _service.create_experiment({"name": "fuzz", "parameters": [
    {"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}},
    {"name": "c", "type": "categorical", "categorical_values": ["a", "b"]}], "metrics": [{"name": "y"}],
    "observation_budget": 50})
_app = create_app(Settings(home=_home, precompute=False, max_body_bytes=256 * 1024), service=_service)
schema = schemathesis.openapi.from_asgi("/openapi.json", _app)


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_fuzz(case) -> None:  # type: ignore[no-untyped-def]
    from schemathesis import checks as core
    from schemathesis.specs.openapi import checks

    # What the API promises: no 5xx, and status codes, content types, headers and bodies as documented.
    # Not checked: rules beyond the schema (bounds order ... are 400s by design), pydantic's lax coercion
    # (``0`` for ``false``), and Starlette's Allow header on 405 (it lists the first matching route's methods).
    case.call_and_validate(checks=[core.not_a_server_error, checks.status_code_conformance,
                                   checks.content_type_conformance, checks.response_headers_conformance,
                                   checks.response_schema_conformance])
