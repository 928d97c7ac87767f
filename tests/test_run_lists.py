"""Run lists filtered and sorted on values, assignments, metadata, state, tags, name and time; team tags."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import assay
from assay.errors import Conflict, InvalidRequest, NotFound, Unprocessable

RUNS = [  # name, state, values.acc, assignments, metadata, tags
    ("alpha", "completed", 0.91, {"lr": 0.1, "opt": "adam"}, {"note": "big GPU box"}, ["baseline"]),
    ("beta", "completed", 0.55, {"lr": 0.001, "opt": "sgd"}, {"note": "cpu"}, []),
    ("gamma", "failed", None, {"lr": 0.01, "opt": "adam"}, {}, ["baseline", "flaky"]),
    ("delta", "active", 0.72, {"lr": 0.05, "opt": "rmsprop", "layers": 3}, {"note": "gpu again"}, []),
    ("epsilon", "completed", 0.72, {"lr": 0.2, "opt": 7}, {"note": 4}, ["flaky"]),
]


@pytest.fixture
def lists(database_url: str, tmp_path: Path) -> Iterator[tuple[assay.Connection, dict[str, str]]]:
    """Five runs in project "lists" (on SQLite and on PostgreSQL), and ids by name."""
    with assay.Connection(database_url=database_url, home=tmp_path / "home") as conn:
        conn.request("POST", "/v1/clients/1/projects", json={"id": "lists"})
        conn.request("POST", "/v1/clients/1/projects", json={"id": "other"})
        conn.request("POST", "/v1/clients/1/projects/other/training_runs", json={"name": "elsewhere"})
        ids = {}
        for name, state, acc, assignments, metadata, tags in RUNS:
            body: dict[str, Any] = {"name": name, "assignments": assignments, "metadata": metadata, "tags": tags}
            if acc is not None:
                body["values"] = {"acc": {"value": acc}}
            r = conn.request("POST", "/v1/clients/1/projects/lists/training_runs", json=body)
            if state != "active":
                conn.request("MERGE", f"/v1/training_runs/{r['id']}", json={"state": state})
            ids[name] = r["id"]
        yield conn, ids


def names(conn: assay.Connection, filters: list[dict[str, Any]] | None = None, **params: Any) -> list[str]:
    if filters is not None:
        params["filters"] = json.dumps(filters)
    page = conn.request("GET", "/v1/clients/1/projects/lists/training_runs", params=params)
    assert page["count"] == len(page["data"]) or params.get("limit")
    return [r["name"] for r in page["data"]]


def test_filters_on_every_kind_of_field(lists: tuple[assay.Connection, dict[str, str]]) -> None:
    conn, ids = lists
    assert names(conn) == ["epsilon", "delta", "gamma", "beta", "alpha"]  # newest first, this project only
    f = lambda field, op, value: [{"field": field, "operator": op, "value": value}]  # noqa: E731
    assert names(conn, f("values.acc", ">", 0.7)) == ["epsilon", "delta", "alpha"]
    assert names(conn, f("values.acc", "==", 0.72)) == ["epsilon", "delta"]
    assert names(conn, f("values.acc", "!=", 0.72)) == ["gamma", "beta", "alpha"]  # no value differs too
    assert names(conn, f("values.acc", "exists", False)) == ["gamma"]
    assert names(conn, f("assignments.opt", "==", "adam")) == ["gamma", "alpha"]
    assert names(conn, f("assignments.opt", "==", 7)) == ["epsilon"]  # numbers compare as numbers
    assert names(conn, f("assignments.opt", ">", 1)) == ["epsilon"]  # text values never match a number
    assert names(conn, f("assignments.lr", "<=", 0.01)) == ["gamma", "beta"]
    assert names(conn, f("assignments.layers", "exists", True)) == ["delta"]
    assert names(conn, f("metadata.note", "contains", "gpu")) == ["delta", "alpha"]  # case-insensitive
    assert names(conn, f("name", "contains", "ta")) == ["delta", "beta"]
    assert names(conn, f("name", ">=", "delta")) == ["epsilon", "delta", "gamma"]
    assert names(conn, f("tags", "==", "baseline")) == ["gamma", "alpha"]  # a tag by name ...
    flaky = next(t["id"] for t in conn.request("GET", "/v1/clients/1/tags")["data"] if t["name"] == "flaky")
    assert names(conn, f("tags", "==", flaky)) == ["epsilon", "gamma"]  # ... or by id
    assert names(conn, f("tags", "!=", "baseline")) == ["epsilon", "delta", "beta"]
    assert names(conn, f("tags", "==", "no such tag")) == []
    assert names(conn, f("id", ">", ids["gamma"])) == ["epsilon", "delta"]
    conn.request("MERGE", f"/v1/training_runs/{ids['beta']}", json={"favorite": True})
    assert names(conn, f("favorite", "==", True)) == ["beta"]
    assert names(conn, f("favorite", "!=", True)) == ["epsilon", "delta", "gamma", "alpha"]
    created = conn.request("GET", f"/v1/training_runs/{ids['alpha']}")["created"]
    assert set(names(conn, f("created", ">=", created))) == {n for n, *_ in RUNS}
    # several filters all apply; state has its own shortcut
    both: list[dict[str, Any]] = [{"field": "state", "value": "completed"},
                                  {"field": "values.acc", "operator": "<", "value": 0.8}]
    assert names(conn, both) == ["epsilon", "beta"]
    assert names(conn, state="failed") == ["gamma"]
    # the client-wide list filters the same way
    page = conn.request("GET", "/v1/clients/1/training_runs",
                        params={"filters": json.dumps(f("assignments.opt", "==", "sgd"))})
    assert [r["name"] for r in page["data"]] == ["beta"] and page["count"] == 1


def test_sort_and_paging(lists: tuple[assay.Connection, dict[str, str]]) -> None:
    conn, ids = lists
    # runs missing the sort key come last in both directions; ties by id
    assert names(conn, sort="values.acc") == ["alpha", "epsilon", "delta", "beta", "gamma"]
    assert names(conn, sort="values.acc", ascending="true") == ["beta", "delta", "epsilon", "alpha", "gamma"]
    assert names(conn, sort="assignments.lr", ascending="true") == ["beta", "gamma", "delta", "alpha", "epsilon"]
    assert names(conn, sort="name", ascending="true") == ["alpha", "beta", "delta", "epsilon", "gamma"]
    assert names(conn, sort="created") == ["epsilon", "delta", "gamma", "beta", "alpha"]
    assert names(conn, sort="metadata.note", ascending="true") == ["epsilon", "alpha", "beta", "delta", "gamma"]
    flt = [{"field": "state", "value": "completed"}]
    assert names(conn, flt, sort="values.acc", ascending="true") == ["beta", "epsilon", "alpha"]
    # paging through a sorted list with its markers, forward and back
    seen, before, pages = [], None, []
    while True:
        params: dict[str, Any] = {"sort": "values.acc", "limit": 2}
        if before:
            params["before"] = before
        page = conn.request("GET", "/v1/clients/1/projects/lists/training_runs", params=params)
        assert page["count"] == 5
        pages.append(page)
        seen += [r["name"] for r in page["data"]]
        before = page["paging"]["before"]
        if not before:
            break
    assert seen == ["alpha", "epsilon", "delta", "beta", "gamma"] and len(pages) == 3
    back = conn.request("GET", "/v1/clients/1/projects/lists/training_runs",
                        params={"sort": "values.acc", "limit": 2, "after": pages[2]["paging"]["after"]})
    assert [r["name"] for r in back["data"]] == ["delta", "beta"]


def test_run_keys_name_every_parameter_and_metric(lists: tuple[assay.Connection, dict[str, str]]) -> None:
    """The dashboard's runs table columns: keys read inside the runs' JSON by the database."""
    conn, ids = lists
    cols = conn.request("GET", "/dashboard/api/projects/lists/run_columns")
    assert cols == {"assignments": ["layers", "lr", "opt"], "values": ["acc"]}
    conn.request("MERGE", f"/v1/training_runs/{ids['delta']}", json={"deleted": True})  # archived runs don't count
    assert conn.request("GET", "/dashboard/api/projects/lists/run_columns")["assignments"] == ["lr", "opt"]
    assert conn.request("GET", "/dashboard/api/projects/other/run_columns") == {"assignments": [], "values": []}
    with pytest.raises(NotFound):
        conn.request("GET", "/dashboard/api/projects/nope/run_columns")


@pytest.mark.parametrize(("params", "field"), [
    ({"filters": "not json"}, "filters"),
    ({"filters": json.dumps({"field": "state"})}, "filters"),
    ({"filters": json.dumps([{"field": "password", "value": 1}])}, "filters[0].field"),
    ({"filters": json.dumps([{"field": "values.", "value": 1}])}, "filters[0].field"),
    ({"filters": json.dumps([{"field": 'values.a"b', "value": 1}])}, "filters[0].field"),
    ({"filters": json.dumps([{"field": "values.acc", "operator": "~", "value": 1}])}, "filters[0].operator"),
    ({"filters": json.dumps([{"field": "values.acc", "value": "high"}])}, "filters[0].value"),
    ({"filters": json.dumps([{"field": "values.acc", "value": "NaN"}])}, "filters[0].value"),
    ({"filters": json.dumps([{"field": "values.acc", "operator": "exists", "value": "yes"}])}, "filters[0].value"),
    ({"filters": json.dumps([{"field": "created", "operator": "contains", "value": "1"}])}, "filters[0].value"),
    ({"filters": json.dumps([{"field": "tags", "operator": "<", "value": "x"}])}, "filters[0].operator"),
    ({"filters": json.dumps([{"field": "favorite", "operator": "<", "value": True}])}, "filters[0].value"),
    ({"sort": "secret"}, "sort"),
    ({"sort": "values.acc", "ascending": "maybe"}, "ascending"),
    ({"sort": "values.acc", "before": "123"}, "before"),
])
def test_bad_list_queries_name_the_field(lists: tuple[assay.Connection, dict[str, str]], params: dict[str, Any],
                                         field: str) -> None:
    conn, _ = lists
    with pytest.raises(InvalidRequest) as err:
        conn.request("GET", "/v1/clients/1/projects/lists/training_runs", params=params)
    assert err.value.field == field and err.value.status == 400


def test_team_tags_and_run_tags(conn: assay.Connection) -> None:
    conn.request("POST", "/v1/clients/1/projects", json={"id": "tagged"})
    gpu = conn.request("POST", "/v1/clients/1/tags", json={"name": "gpu", "color": "00AA11"})
    assert gpu["object"] == "tag" and gpu["color"] == "#00aa11" and gpu["client"] == "1"
    with pytest.raises(Conflict):
        conn.request("POST", "/v1/clients/1/tags", json={"name": "gpu"})
    with pytest.raises(InvalidRequest) as err:
        conn.request("POST", "/v1/clients/1/tags", json={"name": "red", "color": "crimson"})
    assert err.value.field == "color"
    with pytest.raises(NotFound):  # another team's tag list is not there
        conn.request("GET", "/v1/clients/2/tags")
    with pytest.raises(NotFound):
        conn.request("POST", "/v1/clients/2/tags", json={"name": "x"})
    # a run names tags on create: existing ones by id or name, new names become tags (with a colour)
    run = conn.request("POST", "/v1/clients/1/projects/tagged/training_runs",
                       json={"name": "r", "tags": [gpu["id"], "nightly"]})
    tags = {t["name"]: t for t in conn.request("GET", "/v1/clients/1/tags")["data"]}
    assert set(tags) == {"gpu", "nightly"} and tags["nightly"]["color"].startswith("#")
    assert run["tags"] == sorted([gpu["id"], tags["nightly"]["id"]], key=int)
    assert conn.request("GET", f"/v1/clients/1/tags/{gpu['id']}")["name"] == "gpu"
    # SigOpt's attach / detach calls
    best = conn.request("POST", "/v1/clients/1/tags", json={"name": "best"})
    assert conn.request("POST", f"/v1/training_runs/{run['id']}/tags", json={"id": best["id"]})["name"] == "best"
    conn.request("POST", f"/v1/training_runs/{run['id']}/tags", json={"id": best["id"]})  # twice: still once
    assert conn.request("GET", f"/v1/training_runs/{run['id']}")["tags"].count(best["id"]) == 1
    with pytest.raises(Unprocessable) as unknown:
        conn.request("POST", f"/v1/training_runs/{run['id']}/tags", json={"id": "987654"})
    assert unknown.value.field == "id"
    assert conn.request("DELETE", f"/v1/training_runs/{run['id']}/tags/{gpu['id']}")["name"] == "gpu"
    assert gpu["id"] not in conn.request("GET", f"/v1/training_runs/{run['id']}")["tags"]
    with pytest.raises(NotFound):
        conn.request("DELETE", f"/v1/training_runs/{run['id']}/tags/987654")
    # MERGE adds, PUT replaces
    r = conn.request("MERGE", f"/v1/training_runs/{run['id']}", json={"tags": ["gpu"]})
    assert set(r["tags"]) == {gpu["id"], best["id"], tags["nightly"]["id"]}
    r = conn.request("PUT", f"/v1/training_runs/{run['id']}", json={"tags": [best["id"]]})
    assert r["tags"] == [best["id"]]
    # deleting a tag takes it off every run
    assert conn.request("DELETE", f"/v1/clients/1/tags/{best['id']}")["id"] == best["id"]
    assert conn.request("GET", f"/v1/training_runs/{run['id']}")["tags"] == []
    with pytest.raises(NotFound):
        conn.request("GET", f"/v1/clients/1/tags/{best['id']}")
    assert conn.request("GET", "/v1/clients/1/tags")["count"] == 2
    actions = [a["action"] for a in conn.request("GET", "/v1/audit", params={"limit": 100})["data"]]
    assert actions.count("tag.create") == 2 and actions.count("tag.delete") == 1  # POSTed tags are audited


def test_upgrade_moves_tags_out_of_run_data(database_url: str, tmp_path: Path) -> None:
    """Runs made before tags were objects (names inside the run's data) keep their tags through 0008."""
    from alembic import command
    from sqlalchemy import text

    from assay.store import Store

    store = Store(database_url)
    cfg = store._alembic_config()
    with store.engine.begin() as c:
        cfg.attributes["connection"] = c
        command.upgrade(cfg, "0006")
        c.execute(text("INSERT INTO clients (id, name, created) VALUES (1, 'team', 0), (2, 'other', 0)"))
        c.execute(text("INSERT INTO projects (id, client_id, reference, name, created, updated) "
                       "VALUES (1, 1, 'p', 'p', 0, 0), (2, 2, 'q', 'q', 0, 0)"))
        for rid, client, project, tags in ((1, 1, 1, ["gpu", "best"]), (2, 1, 1, ["gpu"]), (3, 2, 2, ["gpu"]),
                                           (4, 1, 1, [])):
            c.execute(text("INSERT INTO training_runs (id, client_id, project_id, name, state, deleted, favorite, "
                           "created, updated, assignments, data, checkpoint_count) VALUES (:id, :c, :p, 'r', "
                           "'active', false, false, 0, 0, '{}', :data, 0)"),
                      {"id": rid, "c": client, "p": project,
                       "data": json.dumps({"tags": tags, "metadata": {"k": rid}})})
    store.upgrade()
    store.dispose()
    with assay.Connection(database_url=database_url, home=tmp_path / "home") as conn:
        team = {t["name"]: t["id"] for t in conn.request("GET", "/v1/clients/1/tags")["data"]}
        assert set(team) == {"gpu", "best"}
        r1 = conn.request("GET", "/v1/training_runs/1")
        assert sorted(r1["tags"]) == sorted([team["gpu"], team["best"]]) and r1["metadata"] == {"k": 1}
        assert conn.request("GET", "/v1/training_runs/2")["tags"] == [team["gpu"]]
        assert conn.request("GET", "/v1/training_runs/4")["tags"] == []
        flt = json.dumps([{"field": "tags", "value": "gpu"}])
        assert {r["id"] for r in conn.request("GET", "/v1/clients/1/training_runs", params={"filters": flt})["data"]} \
            == {"1", "2"}
    other = Store(database_url)
    with other.read() as s:  # team 2's run got team 2's own "gpu" tag
        rows = s.execute(text("SELECT t.client_id, t.name FROM tags t JOIN training_run_tags l ON l.tag_id = t.id "
                              "WHERE l.training_run_id = 3")).all()
        assert [tuple(r) for r in rows] == [(2, "gpu")]
        data = s.execute(text("SELECT data FROM training_runs WHERE id = 3")).scalar_one()
        assert (json.loads(data) if isinstance(data, str) else data) == {"metadata": {"k": 3}}
    other.dispose()
