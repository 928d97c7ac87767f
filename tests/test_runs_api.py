"""Run-tracking API v1 through the embedded connection (the real app on a real SQLite file)."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import httpx
import pytest

import assay
from assay.errors import Conflict, Forbidden, InvalidRequest, NotFound, PayloadTooLarge, Unprocessable


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.fixture
def run(embedded: assay.Connection) -> dict[str, Any]:
    embedded.request("POST", "/v1/clients/1/projects", json={"id": "proj", "name": "Project"})
    return embedded.request("POST", "/v1/clients/1/projects/proj/training_runs", json={"name": "r1"})


def upload(conn: assay.Connection, run_id: str, data: bytes, **fields: Any) -> dict[str, Any]:
    body = {"content_length": len(data), "content_md5": md5_b64(data), "content_type": "application/octet-stream",
            **fields}
    f = conn.request("POST", f"/v1/training_runs/{run_id}/files", json=body)
    resp = conn._transport.client.request("PUT", f["upload"]["url"], content=data, headers=f["upload"]["headers"])
    return {"file": f, "status": resp.status_code, "body": resp.json()}


def test_files_round_trip_byte_identical(embedded: assay.Connection, run: dict[str, Any]) -> None:
    data = os.urandom(300_000) + b"\x00\xff" * 10
    out = upload(embedded, run["id"], data, filename="../../../etc/passwd", name="weights")
    assert out["status"] == 200 and out["body"]["uploaded"] is True
    assert out["body"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert out["body"]["filename"] == "passwd"  # no directories survive
    fid = out["file"]["id"]
    got = embedded._transport.client.get(f"/v1/files/{fid}/content")
    assert got.status_code == 200 and got.content == data
    # the bytes live under a name derived from the id, inside the artifact directory
    stored = list((embedded.settings.artifact_dir / "files").rglob("*.bin"))
    assert [p.read_bytes() == data for p in stored] == [True]
    assert embedded.request("GET", f"/v1/training_runs/{run['id']}")["files"] == [fid]
    # the one-time URL cannot be reused
    again = embedded._transport.client.request("PUT", out["file"]["upload"]["url"], content=data)
    assert again.status_code == 409


def test_file_upload_checks(embedded: assay.Connection, run: dict[str, Any]) -> None:
    data = b"payload bytes"
    f = embedded.request("POST", f"/v1/training_runs/{run['id']}/files",
                         json={"content_length": len(data), "content_md5": md5_b64(b"other"),
                               "content_type": "text/plain"})
    bad = embedded._transport.client.request("PUT", f["upload"]["url"], content=data)
    assert bad.status_code == 400 and bad.json()["field"] == "content_md5"
    assert embedded.request("GET", f"/v1/files/{f['id']}")["uploaded"] is False
    with pytest.raises(NotFound):
        embedded.request("GET", f"/v1/files/{f['id']}/content")
    # wrong token
    wrong = embedded._transport.client.request("PUT", f"/v1/files/{f['id']}/upload?token=nope", content=data)
    assert wrong.status_code == 403
    # more bytes than declared
    f2 = embedded.request("POST", f"/v1/training_runs/{run['id']}/files",
                          json={"content_length": 4, "content_type": "text/plain"})
    long = embedded._transport.client.request("PUT", f2["upload"]["url"], content=data)
    assert long.status_code == 413
    # beyond the server's size limit
    with pytest.raises(PayloadTooLarge):
        embedded.request("POST", f"/v1/training_runs/{run['id']}/files",
                         json={"content_length": 10**12, "content_type": "text/plain"})
    with pytest.raises(InvalidRequest):
        embedded.request("POST", f"/v1/training_runs/{run['id']}/files",
                         json={"content_length": 3, "content_md5": "not-base64-md5-value!!", "content_type": "a/b"})
    assert list((embedded.settings.artifact_dir / "tmp").glob("*")) == []  # no partial uploads left behind


def test_run_fields_merge_and_put(embedded: assay.Connection, run: dict[str, Any]) -> None:
    rid = run["id"]
    embedded.request("MERGE", f"/v1/training_runs/{rid}", json={
        "values": {"acc": {"value": 0.5, "value_stddev": 0.1}}, "metadata": {"a": 1}, "tags": ["x"],
        "assignments": {"lr": 0.1, "opt": "adam"}, "datasets": {"mnist": {}}, "favorite": True})
    r = embedded.request("MERGE", f"/v1/training_runs/{rid}", json={
        "values": {"loss": {"value": 2.0}}, "metadata": {"b": "two"}, "tags": ["y"], "assignments": {"opt": None}})
    assert set(r["values"]) == {"acc", "loss"} and r["values"]["acc"]["value_stddev"] == 0.1
    assert r["metadata"] == {"a": 1, "b": "two"} and r["assignments"] == {"lr": 0.1}
    names = {t["id"]: t["name"] for t in embedded.request("GET", "/v1/clients/1/tags")["data"]}
    assert [names[t] for t in r["tags"]] == ["x", "y"]  # tags named on a run are made and attached
    assert r["favorite"] is True and list(r["datasets"]) == ["mnist"]
    r = embedded.request("PUT", f"/v1/training_runs/{rid}", json={"metadata": {"c": 3}, "name": "renamed"})
    assert r["metadata"] == {"c": 3} and r["name"] == "renamed" and set(r["values"]) == {"acc", "loss"}
    nan = embedded._transport.client.request("MERGE", f"/v1/training_runs/{rid}",
                                             content=b'{"values": {"acc": {"value": NaN}}}',
                                             headers={"content-type": "application/json"})
    assert nan.status_code == 422 and nan.json()["field"].startswith("values")
    with pytest.raises(Unprocessable):
        embedded.request("MERGE", f"/v1/training_runs/{rid}", json={"state": "exploded"})
    assert embedded.request("GET", f"/v1/training_runs/{rid}")["values"]["acc"]["value"] == 0.5


def test_checkpoints_limit_and_order(embedded: assay.Connection, run: dict[str, Any]) -> None:
    rid = run["id"]
    for step in range(200):
        embedded.request("POST", f"/v1/training_runs/{rid}/checkpoints",
                         json={"values": [{"name": "loss", "value": 1 / (step + 1)}], "metadata": {"epoch": step}})
    with pytest.raises(InvalidRequest) as err:
        embedded.request("POST", f"/v1/training_runs/{rid}/checkpoints",
                         json={"values": [{"name": "loss", "value": 0}]})
    assert "200" in err.value.message
    page = embedded.request("GET", f"/v1/training_runs/{rid}/checkpoints", params={"limit": 1000})
    assert page["count"] == 200 and [c["step"] for c in page["data"]] == list(range(199, -1, -1))
    assert embedded.request("GET", f"/v1/training_runs/{rid}")["checkpoint_count"] == 200


def test_scoping_filters_and_projects(embedded: assay.Connection, run: dict[str, Any]) -> None:
    with pytest.raises(NotFound):
        embedded.request("GET", "/v1/clients/2/projects/proj")
    with pytest.raises(NotFound):
        embedded.request("POST", "/v1/clients/2/projects/proj/training_runs", json={"name": "x"})
    with pytest.raises(Conflict):
        embedded.request("POST", "/v1/clients/1/projects", json={"id": "proj"})
    with pytest.raises(NotFound):
        embedded.request("POST", "/v1/clients/1/projects/nope/training_runs", json={"name": "x"})
    p = embedded.request("PUT", "/v1/clients/1/projects/proj", json={"name": "New name"})
    assert p["name"] == "New name" and p["id"] == "proj"
    assert embedded.request("GET", "/v1/clients/1")["id"] == "1"
    done = embedded.request("POST", "/v1/clients/1/projects/proj/training_runs", json={"name": "r2"})
    embedded.request("PUT", f"/v1/training_runs/{done['id']}", json={"state": "completed"})
    import json

    flt = json.dumps([{"field": "state", "operator": "==", "value": "completed"}])
    page = embedded.request("GET", "/v1/clients/1/projects/proj/training_runs", params={"filters": flt})
    assert [r["id"] for r in page["data"]] == [done["id"]]
    with pytest.raises(InvalidRequest) as err:
        embedded.request("GET", "/v1/clients/1/projects/proj/training_runs",
                         params={"filters": json.dumps([{"field": "password", "value": 1}])})
    assert err.value.field == "filters[0].field"
    assert embedded.request("GET", "/v1/clients/1/training_runs")["count"] == 2
    assert embedded.request("GET", "/v1/projects/proj/training_runs", params={"state": "active"})["count"] == 1


def test_aiexperiment_run_becomes_observation(embedded: assay.Connection) -> None:
    embedded.request("POST", "/v1/clients/1/projects", json={"id": "ai"})
    exp = embedded.request("POST", "/v1/clients/1/projects/ai/aiexperiments", json={
        "name": "ai", "budget": 3, "parameters": [{"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}}],
        "metrics": [{"name": "y", "objective": "minimize"}]})
    assert exp["object"] == "aiexperiment" and exp["progress"]["remaining_budget"] == 3
    r = embedded.request("POST", f"/v1/aiexperiments/{exp['id']}/training_runs", json={"name": "t"})
    with pytest.raises(InvalidRequest) as err:
        embedded.request("MERGE", f"/v1/training_runs/{r['id']}", json={"assignments": {"x": 2.0}})
    assert err.value.field == "assignments.x"
    embedded.request("MERGE", f"/v1/training_runs/{r['id']}", json={"values": {"y": {"value": 1.5}}})
    done = embedded.request("MERGE", f"/v1/training_runs/{r['id']}", json={"state": "completed"})
    obs = embedded.request("GET", f"/v1/experiments/{exp['id']}/observations/{done['observation']}")
    assert obs["failed"] is False and obs["values"][0]["value"] == 1.5 and obs["assignments"] == r["assignments"]
    with pytest.raises(Conflict):  # no checkpoints after the observation
        embedded.request("POST", f"/v1/training_runs/{r['id']}/checkpoints",
                         json={"values": [{"name": "y", "value": 1}]})
    # completed → failed turns the observation into a failed one
    embedded.request("MERGE", f"/v1/training_runs/{r['id']}", json={"state": "failed"})
    assert embedded.request("GET", f"/v1/experiments/{exp['id']}/observations/{done['observation']}")["failed"]
    ai = embedded.request("GET", f"/v1/aiexperiments/{exp['id']}")
    assert ai["progress"]["finished_run_count"] == 1 and ai["progress"]["remaining_budget"] == 2
    listed = embedded.request("GET", "/v1/clients/1/projects/ai/aiexperiments")
    assert [e["id"] for e in listed["data"]] == [exp["id"]]
    with pytest.raises(NotFound):  # a plain experiment is not an AI experiment
        plain = embedded.request("POST", "/v1/experiments", json={
            "name": "p", "parameters": [{"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}}]})
        embedded.request("GET", f"/v1/aiexperiments/{plain['id']}")


def test_aiexperiment_refuses_direct_suggestions_and_observations(conn: assay.Connection) -> None:
    conn.request("POST", "/v1/clients/1/projects", json={"id": "ai-only"})
    exp = conn.request("POST", "/v1/clients/1/projects/ai-only/aiexperiments", json={
        "name": "ai", "budget": 3, "parameters": [{"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}}],
        "metrics": [{"name": "y"}]})
    eid = exp["id"]
    calls = [("POST", f"/v1/experiments/{eid}/suggestions", {}, "Suggestions"),
             ("POST", f"/v1/experiments/{eid}/queued_suggestions", {"assignments": {"x": 0.5}}, "Queued suggestions"),
             ("POST", f"/v1/experiments/{eid}/observations", {"assignments": {"x": 0.5}, "value": 1.0},
              "Observations"),
             ("POST", f"/v1/experiments/{eid}/observations/batch",
              {"observations": [{"assignments": {"x": 0.5}, "value": 1.0}]}, "Observations")]
    for method, path, body, what in calls:
        with pytest.raises(Forbidden) as err:
            conn.request(method, path, json=body)
        assert err.value.status == 403 and err.value.message.startswith(f"{what} cannot be created directly")
        assert f"/v1/aiexperiments/{eid}/training_runs" in err.value.message
    # nothing was stored by the refused calls; runs still get their suggestions
    assert conn.request("GET", f"/v1/experiments/{eid}/suggestions")["count"] == 0
    assert conn.request("GET", f"/v1/experiments/{eid}/observations")["count"] == 0
    run = conn.request("POST", f"/v1/aiexperiments/{eid}/training_runs", json={})
    assert 0 <= run["assignments"]["x"] <= 1 and run["suggestion"] is not None
    sugs = conn.request("GET", f"/v1/experiments/{eid}/suggestions")["data"]
    assert [s["id"] for s in sugs] == [run["suggestion"]]


def test_configured_file_size_limit_on_a_server(tmp_path: Any) -> None:
    from tests.conftest import ServerProcess

    server = ServerProcess(tmp_path / "srv", extra_env={"ASSAY_MAX_FILE_BYTES": "1000"}).start()
    try:
        with assay.Connection(server.url) as conn:
            with assay.create_run("limits", project="limits", connection=conn, capture=False) as run:
                ok = run.log_file(b"\x01" * 1000, filename="exact.bin")
                with pytest.raises(PayloadTooLarge) as err:
                    run.log_file(b"\x01" * 1001, filename="big.bin")
                assert err.value.field == "content_length" and "1000" in err.value.message
            assert httpx.get(f"{server.url}/v1/files/{ok['id']}/content").content == b"\x01" * 1000
            assert ok["sha256"] == hashlib.sha256(b"\x01" * 1000).hexdigest()
            # declared small, sent large: cut off at the limit, nothing kept
            f = conn.request("POST", f"/v1/training_runs/{run.id}/files", json={"content_length": 10})
            r = httpx.put(f["upload"]["url"], content=b"\x02" * 5000)
            assert r.status_code == 413 and conn.request("GET", f"/v1/files/{f['id']}")["uploaded"] is False
            assert conn.request("GET", f"/v1/training_runs/{run.id}")["files"] == [ok["id"]]
        stored = list((tmp_path / "srv" / "artifacts").rglob("*"))
        assert [p.stat().st_size for p in stored if p.is_file()] == [1000]
    finally:
        server.stop()
