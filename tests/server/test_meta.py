"""Health and the OpenAPI document."""

from __future__ import annotations

import httpx

from tests.conftest import ServerProcess


def test_health_and_openapi(server: ServerProcess) -> None:
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok"
    spec = httpx.get(server.url + "/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v1/experiments", "/v1/experiments/{experiment_id}",
                 "/v1/experiments/{experiment_id}/suggestions", "/v1/experiments/{experiment_id}/observations",
                 "/v1/experiments/{experiment_id}/observations/batch",
                 "/v1/experiments/{experiment_id}/best_assignments"):
        assert path in paths
    assert "ExperimentCreate" in spec["components"]["schemas"]
