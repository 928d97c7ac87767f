"""Dashboard data: the summaries pages draw, CSV in and out, and the JSON endpoints' errors."""

from __future__ import annotations

import csv
import io

import httpx
import numpy as np
import pytest

import assay
from assay.dashboard import views
from assay.domain import Bounds, Experiment, Metric, MetricValue, Observation, Parameter
from assay.errors import InvalidRequest

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


def test_view_columns_trace_and_importance() -> None:
    o = obs(200, np.random.default_rng(0))
    v = views.experiment_view(EXP, o)
    assert v["count"] == 200 and len(v["columns"]["params"]["x"]) == 200
    best = max(range(200), key=lambda i: o[i].values[0].value)
    assert v["best_rows"] == [best]
    tr = v["trace"]["y"]
    assert tr["x"][-1] == 200 and tr["y"][-1] == o[best].values[0].value
    assert tr["y"] == sorted(tr["y"])  # best-seen never gets worse
    imp = v["importance"]["values"]
    assert imp["x"] > 0.9 and imp["lr"] < 0.2 and imp["c"] < 0.2  # y depends on x only


def test_large_view_is_sampled_but_keeps_best_and_newest() -> None:
    o = obs(10_000, np.random.default_rng(1))
    v = views.experiment_view(EXP, o, max_points=2000)
    assert len(v["columns"]["id"]) == 10_000
    s = v["sample"]
    assert len(s) <= 2000 and s == sorted(set(s))
    assert set(v["best_rows"]) <= set(s) and 9999 in s and 0 in s


def test_contour_grid_and_errors() -> None:
    o = obs(50, np.random.default_rng(2))
    g = views.contour(EXP, o, "x", "lr", "y", size=10)
    assert len(g["z"]) == 10 and len(g["z"][0]) == 10 and g["points"] == 50
    z = np.array(g["z"])
    assert z[:, -1].mean() > z[:, 0].mean()  # y grows with x (columns)
    assert g["y"][0] == pytest.approx(1e-4) and g["y"][-1] == pytest.approx(1.0)  # log axis in real units
    with pytest.raises(InvalidRequest, match="categorical"):
        views.contour(EXP, o, "x", "c", "y")
    with pytest.raises(InvalidRequest, match="unknown parameter"):
        views.contour(EXP, o, "x", "nope", "y")
    with pytest.raises(InvalidRequest, match="unknown metric"):
        views.contour(EXP, o, "x", "lr", "nope")


def test_csv_round_trip_and_line_numbers_in_errors() -> None:
    o = obs(5, np.random.default_rng(3))
    text = views.history_csv(EXP, o)
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
    v = httpx.get(base).json()
    assert v["count"] == 3 and v["columns"]["params"]["z"] == [3, 9, 1]
    assert httpx.get(base + "/observations.csv").text.count("\n") == 4
    js = httpx.get(f"{server.url}/dashboard/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert httpx.get(f"{server.url}/dashboard/static/..%2Fviews.py").status_code == 404
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "/dashboard/static/experiments.js" in page.text
