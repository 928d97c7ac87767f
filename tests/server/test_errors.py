"""Every class of bad input gets a clear JSON error, and nothing stored changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, simple_experiment


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    proc = ServerProcess(tmp_path_factory.mktemp("errors")).start()
    with httpx.Client(base_url=proc.url, timeout=30) as client:
        yield client
    proc.stop()


@pytest.fixture
def exp(api: httpx.Client) -> dict[str, Any]:
    e = api.post("/v1/experiments", json=simple_experiment()).json()
    s = api.post(f"/v1/experiments/{e['id']}/suggestions").json()
    api.post(f"/v1/experiments/{e['id']}/observations", json={"suggestion": s["id"], "values": [{"value": 1.0}]})
    return e


def snapshot(api: httpx.Client, eid: str) -> Any:
    return (api.get(f"/v1/experiments/{eid}").json(),
            api.get(f"/v1/experiments/{eid}/observations").json(),
            api.get(f"/v1/experiments/{eid}/suggestions").json())


def check(resp: httpx.Response, status: int, field: str | None, words: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["object"] == "error" and body["status"] == status
    assert words.lower() in body["message"].lower(), body
    if field is not None:
        assert body.get("field") == field, body


def test_bounds_reversed(api: httpx.Client) -> None:
    before = api.get("/v1/experiments").json()["count"]
    body = simple_experiment()
    body["parameters"][1]["bounds"] = {"min": 8, "max": 1}
    check(api.post("/v1/experiments", json=body), 400, "parameters[1].bounds", "less than max")
    assert api.get("/v1/experiments").json()["count"] == before


@pytest.mark.parametrize("param,field,words", [
    ({"name": "x", "type": "double", "bounds": {"min": -1, "max": 1}, "transformation": "log"},
     "parameters[0].bounds.min", "above 0"),
    ({"name": "x", "type": "categorical", "categorical_values": ["only"]}, "parameters[0].categorical_values",
     "at least 2"),
    ({"name": "x", "type": "double"}, "parameters[0].bounds", "required"),
    ({"name": "x", "type": "int", "bounds": {"min": 0.5, "max": 3}}, "parameters[0].bounds", "integers"),
])
def test_bad_parameter(api: httpx.Client, param: dict, field: str, words: str) -> None:
    check(api.post("/v1/experiments", json={"name": "bad", "parameters": [param]}), 400, field, words)


def test_wrong_types_and_unknown_fields(api: httpx.Client) -> None:
    check(api.post("/v1/experiments", json={"name": "x", "parameters": [{"name": "a", "type": "float"}]}),
          422, "parameters[0].type", "invalid")
    check(api.post("/v1/experiments", json={**simple_experiment(), "paramaters": []}), 422, "paramaters",
          "unknown field")
    check(api.post("/v1/experiments", content=b"{not json", headers={"content-type": "application/json"}),
          422, None, "not valid JSON")


def test_unknown_parameter_in_assignments(api: httpx.Client, exp: dict) -> None:
    before = snapshot(api, exp["id"])
    resp = api.post(f"/v1/experiments/{exp['id']}/observations", json={
        "assignments": {"lr": 0.01, "layers": 2, "opt": "sgd", "dropout": 0.5}, "values": [{"value": 1}]})
    check(resp, 400, "observation.assignments.dropout", "unknown parameter")
    resp = api.post(f"/v1/experiments/{exp['id']}/observations", json={
        "assignments": {"lr": 5.0, "layers": 2, "opt": "sgd"}, "values": [{"value": 1}]})
    check(resp, 400, "observation.assignments.lr", "outside the bounds")
    assert snapshot(api, exp["id"]) == before


def test_value_for_failed_observation(api: httpx.Client, exp: dict) -> None:
    before = snapshot(api, exp["id"])
    s = api.post(f"/v1/experiments/{exp['id']}/suggestions").json()
    before = snapshot(api, exp["id"])
    resp = api.post(f"/v1/experiments/{exp['id']}/observations",
                    json={"suggestion": s["id"], "failed": True, "values": [{"value": 3}]})
    check(resp, 400, "observation.values", "failed observation cannot have values")
    resp = api.post(f"/v1/experiments/{exp['id']}/observations", json={"suggestion": s["id"]})
    check(resp, 400, "observation.values", "missing a value")
    assert snapshot(api, exp["id"]) == before
    assert api.get(f"/v1/experiments/{exp['id']}/suggestions/{s['id']}").json()["state"] == "open"


def test_closed_and_foreign_suggestion(api: httpx.Client, exp: dict) -> None:
    closed = api.get(f"/v1/experiments/{exp['id']}/suggestions", params={"state": "closed"}).json()["data"][0]
    before = snapshot(api, exp["id"])
    resp = api.post(f"/v1/experiments/{exp['id']}/observations",
                    json={"suggestion": closed["id"], "values": [{"value": 2}]})
    check(resp, 409, "observation.suggestion", "already has an observation")
    other = api.post("/v1/experiments", json=simple_experiment(name="other")).json()
    foreign = api.post(f"/v1/experiments/{other['id']}/suggestions").json()
    resp = api.post(f"/v1/experiments/{exp['id']}/observations",
                    json={"suggestion": foreign["id"], "values": [{"value": 2}]})
    check(resp, 404, "suggestion", "does not exist in experiment")
    assert snapshot(api, exp["id"]) == before


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers(api: httpx.Client, exp: dict, raw: str) -> None:
    before = snapshot(api, exp["id"])
    body = '{"assignments": {"lr": 0.01, "layers": 2, "opt": "sgd"}, "values": [{"value": ' + raw + "}]}"
    resp = api.post(f"/v1/experiments/{exp['id']}/observations", content=body.encode(),
                    headers={"content-type": "application/json"})
    check(resp, 422, "values[0].value", "finite")
    params = json.dumps(simple_experiment()).replace('"max": 0.1', f'"max": {raw}')
    check(api.post("/v1/experiments", content=params.encode(), headers={"content-type": "application/json"}),
          422, "parameters[0].bounds.max", "finite")
    assert snapshot(api, exp["id"]) == before


@pytest.mark.parametrize("path", ["/v1/experiments/999999", "/v1/experiments/abc", "/v1/experiments/-1",
                                  "/v1/experiments/999999/suggestions", "/v1/experiments/999999/observations",
                                  "/v1/experiments/999999/best_assignments"])
def test_unknown_experiment(api: httpx.Client, path: str) -> None:
    check(api.get(path), 404, "experiment", "does not exist")


def test_batch_is_all_or_nothing(api: httpx.Client, exp: dict) -> None:
    before = snapshot(api, exp["id"])
    resp = api.post(f"/v1/experiments/{exp['id']}/observations/batch", json={"observations": [
        {"assignments": {"lr": 0.01, "layers": 2, "opt": "sgd"}, "values": [{"value": 1}]},
        {"assignments": {"lr": 0.01, "layers": 99, "opt": "sgd"}, "values": [{"value": 1}]},
    ]})
    check(resp, 400, "observations[1].assignments.layers", "outside the bounds")
    assert snapshot(api, exp["id"]) == before


def test_deleted_experiment_refuses_new_work(api: httpx.Client) -> None:
    e = api.post("/v1/experiments", json=simple_experiment(name="gone")).json()
    assert api.delete(f"/v1/experiments/{e['id']}").status_code == 204
    check(api.post(f"/v1/experiments/{e['id']}/suggestions"), 409, "experiment", "deleted")
    assert api.get(f"/v1/experiments/{e['id']}").json()["state"] == "deleted"
    assert api.put(f"/v1/experiments/{e['id']}", json={"state": "active"}).json()["state"] == "active"
    assert api.post(f"/v1/experiments/{e['id']}/suggestions").status_code == 200


def test_update_refuses_fixed_fields(api: httpx.Client, exp: dict) -> None:
    before = snapshot(api, exp["id"])
    check(api.put(f"/v1/experiments/{exp['id']}", json={"type": "grid"}), 400, "type", "cannot be changed")
    check(api.put(f"/v1/experiments/{exp['id']}", json={"metrics": [{"name": "acc", "objective": "minimize"}]}),
          400, "metrics[0].objective", "cannot change")
    assert snapshot(api, exp["id"]) == before
