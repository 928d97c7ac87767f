"""Dashboard data: the summaries pages draw, CSV in and out, and the JSON endpoints' errors."""

from __future__ import annotations

import csv
import io
import json
import re

import httpx
import numpy as np
import pytest

import assay
from assay.dashboard import views
from assay.domain import Bounds, Experiment, Metric, MetricValue, Observation, ObservationColumns, Parameter
from assay.errors import InvalidRequest, NotFound

EXP = Experiment(
    id=1, name="e",
    parameters=(Parameter("x", "double", Bounds(0.0, 1.0)), Parameter("lr", "double", Bounds(1e-4, 1.0),
                                                                       transformation="log"),
                Parameter("c", "categorical", categorical_values=("a", "b"))),
    metrics=(Metric("y", "maximize"),),
)


def obs(n: int, rng: np.random.Generator) -> list[Observation]:
    out = []
    for i in range(n):
        x, lr, c = float(rng.random()), float(10 ** rng.uniform(-4, 0)), "a" if i % 2 else "b"
        out.append(Observation(i + 1, 1, {"x": x, "lr": lr, "c": c},
                               (MetricValue("y", 10 * x + 0.01 * rng.random()),), created=i))
    return out


def cols(observations: list[Observation]) -> ObservationColumns:
    return ObservationColumns(
        id=[o.id for o in observations], created=[o.created for o in observations],
        failed=[o.failed for o in observations], suggestion_id=[o.suggestion_id for o in observations],
        task=[o.task.name if o.task else None for o in observations],
        cost=[o.task.cost if o.task else 1.0 for o in observations],
        assignments=[dict(o.assignments) for o in observations],
        values=[{v.name: v.value for v in o.values} for o in observations])


def test_view_points_trace_and_importance() -> None:
    o = obs(200, np.random.default_rng(0))
    v = views.experiment_view(EXP, cols(o))
    assert v["count"] == 200 and len(v["points"]["params"]["x"]) == 200 and v["sampled"] is False
    assert v["points"]["n"] == list(range(1, 201))
    best = max(range(200), key=lambda i: o[i].values[0].value)
    assert v["best_rows"] == [best]
    tr = v["trace"]["y"]
    assert tr["x"][-1] == 200 and tr["y"][-1] == o[best].values[0].value
    assert tr["y"] == sorted(tr["y"])  # best-seen never gets worse
    imp = v["importance"]["values"]
    assert imp["x"] > 0.9 and imp["lr"] < 0.2 and imp["c"] < 0.2  # y depends on x only


def test_large_view_is_a_fixed_size_sample_that_keeps_best_and_newest() -> None:
    o = obs(10_000, np.random.default_rng(1))
    v = views.experiment_view(EXP, cols(o), max_points=1000)
    p = v["points"]
    assert v["count"] == 10_000 and v["sampled"] is True
    assert len(p["id"]) == len(p["params"]["x"]) == len(p["metrics"]["y"]) == 1000  # exactly the limit
    assert p["n"] == sorted(set(p["n"])) and p["n"][0] == 1
    assert set(range(9_901, 10_001)) <= set(p["n"])  # the newest 100
    best = max(range(10_000), key=lambda i: o[i].values[0].value)
    assert [p["n"][k] for k in v["best_rows"]] == [best + 1]
    assert p["metrics"]["y"][v["best_rows"][0]] == o[best].values[0].value
    # the best-seen trace uses every observation: it ends at the overall best
    assert v["trace"]["y"]["y"][-1] == o[best].values[0].value and v["trace"]["y"]["x"][-1] == 10_000
    assert "history" not in v and len(json.dumps(v)) < 200_000  # the payload does not grow with the history


def test_history_page_filters_sorts_and_pages_on_the_server() -> None:
    o = obs(120, np.random.default_rng(4))
    o[7] = Observation(8, 1, {"x": 0.5, "lr": 0.01, "c": "a"}, (), failed=True, created=7)
    c = cols(o)
    first = views.history_page(EXP, c)
    assert first["total"] == first["matched"] == 120 and [r["n"] for r in first["rows"]] == list(range(120, 70, -1))
    ys = {i + 1: x.values[0].value for i, x in enumerate(o) if not x.failed}
    page = views.history_page(EXP, c, sort="m:y", order="ascending", filter="y > 3, c = a", offset=5, limit=10)
    want = sorted((n for n, y in ys.items() if y > 3 and o[n - 1].assignments["c"] == "a"), key=lambda n: ys[n])
    assert page["matched"] == len(want) and [r["n"] for r in page["rows"]] == want[5:15]
    assert all(r["m"]["y"] > 3 and r["p"]["c"] == "a" for r in page["rows"])
    # empty cells sort last in both directions; booleans and plain-text search
    desc = views.history_page(EXP, c, sort="m:y", order="descending", limit=1000)["rows"]
    assert desc[-1]["n"] == 8 and desc[0]["m"]["y"] == max(ys.values())
    assert [r["n"] for r in views.history_page(EXP, c, filter="failed = yes")["rows"]] == [8]
    assert views.history_page(EXP, c, filter="lr ~ e-")["matched"] == sum("e-" in str(x.assignments["lr"]) for x in o)
    best = max(ys, key=lambda n: ys[n])
    assert [r["n"] for r in views.history_page(EXP, c, limit=1000)["rows"] if r["best"]] == [best]
    for kwargs, field in (({"filter": "nope > 1"}, "filter"), ({"sort": "zzz"}, "sort"), ({"order": "up"}, "order"),
                          ({"limit": 0}, "limit"), ({"offset": -1}, "offset")):
        with pytest.raises(InvalidRequest) as e:
            views.history_page(EXP, c, **kwargs)  # type: ignore[arg-type]
        assert e.value.field == field


def test_contour_grid_and_errors() -> None:
    o = obs(50, np.random.default_rng(2))
    g = views.contour(EXP, cols(o), "x", "lr", "y", size=10)
    assert len(g["z"]) == 10 and len(g["z"][0]) == 10 and g["points"] == 50
    z = np.array(g["z"])
    assert z[:, -1].mean() > z[:, 0].mean()  # y grows with x (columns)
    assert g["y"][0] == pytest.approx(1e-4) and g["y"][-1] == pytest.approx(1.0)  # log axis in real units
    with pytest.raises(InvalidRequest, match="categorical"):
        views.contour(EXP, cols(o), "x", "c", "y")
    with pytest.raises(InvalidRequest, match="unknown parameter"):
        views.contour(EXP, cols(o), "x", "nope", "y")
    with pytest.raises(InvalidRequest, match="unknown metric"):
        views.contour(EXP, cols(o), "x", "lr", "nope")


def test_csv_round_trip_and_line_numbers_in_errors() -> None:
    o = obs(5, np.random.default_rng(3))
    text = views.history_csv(EXP, cols(o))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5"]
    body = views.parse_observations_csv(EXP, text)
    assert [b["assignments"] for b in body["observations"]] == [dict(x.assignments) for x in o]
    assert [b["values"][0]["value"] for b in body["observations"]] == [x.values[0].value for x in o]
    with pytest.raises(InvalidRequest, match="line 3, column x"):
        views.parse_observations_csv(EXP, "x,lr,c,y\n0.1,0.01,a,1\nbad,0.01,a,1\n")
    with pytest.raises(InvalidRequest, match="missing parameter column"):
        views.parse_observations_csv(EXP, "x,c,y\n0.1,a,1\n")
    with pytest.raises(InvalidRequest, match="unknown column"):
        views.parse_observations_csv(EXP, "x,lr,c,y,zzz\n0.1,0.01,a,1,2\n")
    with pytest.raises(InvalidRequest, match="empty"):
        views.parse_observations_csv(EXP, "\n")
    failed = views.parse_observations_csv(EXP, "x,lr,c,y,failed\n0.1,0.01,a,,true\n")
    assert failed["observations"][0] == {"assignments": {"x": 0.1, "lr": 0.01, "c": "a"}, "failed": True}


def test_endpoints_over_http(remote: assay.Connection, server) -> None:  # type: ignore[no-untyped-def]
    e = remote.create_experiment(name="h", parameters=[{"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}},
                                                       {"name": "z", "type": "int", "bounds": {"min": 0, "max": 9}}],
                                 metrics=[{"name": "y"}])
    base = f"{server.url}/dashboard/api/experiments/{e.id}"
    r = httpx.post(base + "/observations.csv", content="x,z,y\n0.5,3,1.5\n0.25,9,2\n")
    assert r.status_code == 200 and r.json() == {"created": 2}
    # the batch rejects the row out of bounds, naming its CSV line; nothing of the file is stored
    r = httpx.post(base + "/observations.csv", content="x,z,y\n0.5,3,1.5\n0.5,30,1\n")
    assert r.status_code == 400 and r.json()["message"].startswith("line 3:")
    assert len(remote.experiment(e.id).observations()) == 2
    r = httpx.get(base + "/contour", params={"x": "x", "y": "x", "metric": "nope"})
    assert r.status_code == 400 and r.json()["field"] == "metric"
    assert httpx.get(f"{server.url}/dashboard/api/experiments/999/marker").status_code == 404
    m1 = httpx.get(base + "/marker").json()["marker"]
    remote.experiment(e.id).observe(assignments={"x": 0.1, "z": 1}, value=0.3)
    assert httpx.get(base + "/marker").json()["marker"] != m1
    r = httpx.get(base)
    assert r.headers["cache-control"] == "no-store"
    v = r.json()
    assert v["count"] == 3 and v["points"]["params"]["z"] == [3, 9, 1]
    first = httpx.get(base + "/history").json()  # the page's first history page: newest first
    assert first["total"] == 3 and [r["p"]["z"] for r in first["rows"]] == [1, 9, 3]
    h = httpx.get(base + "/history", params={"sort": "p:z", "order": "ascending", "filter": "z > 1"}).json()
    assert h["matched"] == 2 and [r["p"]["z"] for r in h["rows"]] == [3, 9]
    r = httpx.get(base + "/history", params={"filter": "w = 2"})
    assert r.status_code == 400 and r.json()["field"] == "filter" and "'w'" in r.json()["message"]
    assert httpx.get(base + "/observations.csv").text.count("\n") == 4
    grid = httpx.get(base + "/contour", params={"x": "x", "y": "z", "metric": "y"}).json()
    assert len(grid["z"]) == 30 and grid["points"] == 3
    # forest importances need more observations than 3: the optimizer's message, not an error
    imp = httpx.get(base + "/importances").json()
    assert imp["data"] is None and "Not enough observations" in imp["message"]
    js = httpx.get(f"{server.url}/dashboard/static/plotly-cartesian-4.1.1.min.js")
    assert js.status_code == 200 and 1_000_000 < len(js.content) < 2_000_000  # the cartesian bundle, not the full one
    assert "immutable" in js.headers["cache-control"]
    assert httpx.get(f"{server.url}/dashboard/static/..%2Fviews.py").status_code == 404
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "/dashboard/static/experiments.js?v=" in page.text
    # the pages name their scripts with a content hash: those URLs are cached for good, plain ones revalidate
    found = re.search(r'"(/dashboard/static/experiments\.js\?v=[0-9a-f]+)"', page.text)
    assert found, page.text[:300]
    url = found.group(1)
    assert "immutable" in httpx.get(server.url + url).headers["cache-control"]
    assert httpx.get(server.url + "/dashboard/static/experiments.js?v=stale").headers["cache-control"] == "no-cache"


def test_marker_changes_when_an_observation_is_edited_or_deleted(server) -> None:  # type: ignore[no-untyped-def]
    v1 = f"{server.url}/v1/experiments"
    x = {"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}}
    e = httpx.post(v1, json={"name": "m", "parameters": [x], "metrics": [{"name": "y"}]}).json()
    obs = [httpx.post(f"{v1}/{e['id']}/observations",
                      json={"assignments": {"x": v}, "values": [{"name": "y", "value": v}]}).json()["id"]
           for v in (0.1, 0.2, 0.3)]
    url = f"{server.url}/dashboard/api/experiments/{e['id']}/marker"
    m0 = httpx.get(url).json()["marker"]
    assert httpx.get(url).json()["marker"] == m0  # stable while nothing changes
    # an edit keeps the count and the newest id: the marker must still change
    r = httpx.put(f"{v1}/{e['id']}/observations/{obs[1]}", json={"values": [{"name": "y", "value": 9.0}]})
    assert r.status_code == 200
    m1 = httpx.get(url).json()["marker"]
    assert m1 != m0
    page = httpx.get(f"{server.url}/dashboard/api/experiments/{e['id']}").json()
    assert page["marker"] == m1 and page["points"]["metrics"]["y"] == [0.1, 9.0, 0.3]
    assert httpx.delete(f"{v1}/{e['id']}/observations/{obs[0]}").status_code in (200, 204)
    m2 = httpx.get(url).json()["marker"]
    assert m2 not in (m0, m1)
    assert httpx.get(f"{server.url}/dashboard/api/experiments/{e['id']}").json()["points"]["metrics"]["y"] == [9.0, 0.3]


def test_view_cache_keeps_one_state_per_experiment_and_bounds_memory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from assay.dashboard.routes import ViewCache
    from assay.service import Service
    from assay.store import Store

    store = Store(f"sqlite:///{tmp_path / 'assay.db'}")
    store.ensure_schema()
    svc = Service(store)
    try:
        ids = []
        for k in range(3):
            e = svc.create_experiment({"name": f"e{k}", "metrics": [{"name": "y"}], "parameters": [
                {"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}}]})
            svc.create_observations_batch(e.id, {"observations": [
                {"assignments": {"x": i / 10}, "values": [{"name": "y", "value": i}]} for i in range(k + 2)]})
            ids.append(str(e.id))
        cache = ViewCache(size=2, rows=100)
        first = cache.get(svc, ids[0], None)
        assert cache.get(svc, ids[0], None) is first  # unchanged: the same entry, nothing read again
        svc.create_observations_batch(ids[0], {"observations": [{"assignments": {"x": 0.5}, "values": [
            {"name": "y", "value": 9}]}]})
        again = cache.get(svc, ids[0], None)
        assert again is not first and len(again.cols) == 3  # a change: read again
        cache.get(svc, ids[1], None)
        cache.get(svc, ids[2], None)
        assert list(cache.entries) == ids[1:]  # at most two; the least recently viewed left
        small = ViewCache(size=8, rows=5)
        small.get(svc, ids[1], None)  # 3 observations
        small.get(svc, ids[2], None)  # 4 more: over 5 in all
        assert list(small.entries) == [ids[2]]
        with pytest.raises(NotFound):
            cache.get(svc, "999", None)
    finally:
        store.dispose()
