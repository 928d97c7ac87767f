"""The dashboard in headless Chromium against a real server holding data made through the API."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

import assay
from tests.conftest import ServerProcess
from tests.dashboard.conftest import Data

pytestmark = pytest.mark.browser

READY = "body[data-ready=true]"
DRAWN = "body[data-drawn]"  # every plot drawn, the off-screen ones too (they follow the first screen)


def open_experiment(page: Any, data: Data, eid: str) -> None:
    page.goto(f"{data.server.url}/experiments/{eid}")
    page.wait_for_selector(READY)
    assert page.evaluate("!!document.getElementById('plot-trace').chart")  # on the first screen
    page.wait_for_selector(DRAWN)


def chart_points(page: Any, div: str, series: str) -> int:
    """How many values a series of the page's own charts (charts.js) draws."""
    return int(page.locator(f"#{div} .series[data-name='{series}']").get_attribute("data-points"))


def chart_series(page: Any, div: str, k: int, axis: str) -> list:
    return page.evaluate(f"document.getElementById('{div}').chart.spec.series[{k}].{axis}")


def plot_points(page: Any, div: str, trace: int = 0, axis: str = "x") -> int:
    return page.evaluate(f"document.getElementById('{div}').data[{trace}].{axis}.length")


def row_count_text(page: Any, container: str) -> str:
    return page.locator(f"#{container} .rowcount").inner_text()


def observations(data: Data, eid: str) -> list[dict]:
    body = httpx.get(f"{data.server.url}/v1/experiments/{eid}/observations", params={"limit": 1000}).json()
    return body["data"]


def test_experiments_list_shows_progress_and_best(page: Any, data: Data) -> None:
    page.goto(data.server.url + "/")
    page.wait_for_selector(READY)
    rows = page.locator("#table tbody tr")
    assert rows.count() == 3
    branin_row = page.locator("#table tbody tr", has_text="branin")
    text = branin_row.inner_text()
    assert "demo" in text and "30 / 40" in text
    best = min(v for v in data.values if v is not None)
    assert f"{best:.5g} (y)" in text
    # sort by name, ascending: "branin" < "multitask" < "two metrics"
    page.get_by_role("button", name="sort by Name").click()
    names = page.locator("#table tbody tr td:nth-child(2)").all_inner_texts()
    assert names == sorted(names)
    page.get_by_role("button", name="sort by Name").click()
    assert page.locator("#table tbody tr td:nth-child(2)").all_inner_texts() == sorted(names, reverse=True)
    # filter: text, then a numeric comparison
    page.fill("#filter", "multi")
    assert page.locator("#table tbody tr").all_inner_texts()[0].count("multitask") == 1
    assert page.locator("#table tbody tr").count() == 1
    page.fill("#filter", "observations > 15")
    assert sorted(page.locator("#table tbody tr td:nth-child(2)").all_inner_texts()) == ["branin", "two metrics"]


def test_archive_and_unarchive(page: Any, data: Data) -> None:
    url = data.server.url
    page.goto(url + "/")
    page.wait_for_selector(READY)
    page.get_by_role("button", name="Archive experiment multitask").click()
    page.locator("#msg .msg.ok", has_text="archived").wait_for()
    assert httpx.get(f"{url}/v1/experiments/{data.tasks}").json()["state"] == "deleted"
    assert page.locator("#table tbody tr", has_text="multitask").count() == 0
    page.select_option("#state", "deleted")
    page.wait_for_selector("#table tbody tr >> text=multitask")
    page.get_by_role("button", name="Unarchive experiment multitask").click()
    # the archive step's "ok" message is still shown: wait for this step's own
    page.locator("#msg .msg.ok", has_text="restored").wait_for()
    assert httpx.get(f"{url}/v1/experiments/{data.tasks}").json()["state"] == "active"


def test_experiment_page_plots_have_every_point(page: Any, data: Data) -> None:
    open_experiment(page, data, data.single)
    # one metric, one task: every plot is the page's own; Plotly.js is not even asked for
    assert page.evaluate("window.Plotly === undefined && !performance.getEntriesByType('resource')"
                         ".some(r => r.name.includes('plotly'))")
    ok = [v for v in data.values if v is not None]
    # convergence: one marker per successful observation, the best-seen line ends at the best value
    assert chart_points(page, "plot-trace", "observations") == len(ok) == 28
    assert page.locator("#plot-trace .series.markers .point").count() == 28
    best_line = chart_series(page, "plot-trace", 1, "y")
    assert best_line[-1] == pytest.approx(min(ok))
    assert all(b <= a for a, b in zip(best_line, best_line[1:], strict=False))
    assert page.locator("#plot-trace .series.line path").count() == 1
    assert f"best y {min(ok):.5g}" in page.get_attribute("#plot-trace", "aria-label")  # the text alternative
    # hovering a marker shows its observation and value
    page.locator("#plot-trace .point").nth(3).hover()
    expect(page.locator("#plot-trace .chart-tip")).to_contain_text("observation ")
    # importance: one bar per parameter, the optimizer's forest importances once they arrive
    assert sorted(chart_series(page, "plot-importance", 0, "y")) == ["opt", "x1", "x2"]
    assert page.locator("#plot-importance .bar").count() == 3
    page.wait_for_selector("body[data-importance=forest]")
    assert page.get_attribute("#plot-importance", "aria-label").startswith("Parameter importance for y: ")
    page.locator("#plot-importance .bar").last.hover()
    expect(page.locator("#plot-importance .chart-tip")).to_have_text(re.compile(r"^(x1|x2|opt): \d\.\d{3}$"))
    expect(page.locator("#imp-note")).to_contain_text("extremely randomized trees")
    # parallel coordinates: 3 parameters + 1 metric, one line per successful observation
    dims = page.evaluate("document.getElementById('plot-parcoords').parcoords.dimensions.map(d => d.values.length)")
    assert dims == [28, 28, 28, 28]
    assert page.locator("#plot-parcoords svg.parcoords .axis").count() == 4
    assert page.locator("#plot-parcoords canvas").count() == 1  # one 2-D canvas, no WebGL
    assert page.locator("#plot-parcoords .gl-canvas").count() == 0
    # slice and contour
    assert chart_points(page, "plot-slice", "y") == 28
    assert page.locator("#plot-slice .point").count() == 28
    z = chart_series(page, "plot-contour", 0, "z")
    assert len(z) == 30 and len(z[0]) == 30
    assert chart_points(page, "plot-contour", "observations") == 28
    assert page.locator("#plot-contour image").count() == 1
    assert page.get_attribute("#plot-contour .isolines", "d").count("M") > 10
    assert page.get_attribute("#plot-contour", "aria-label").startswith("y over x1 and x2, interpolated from 28")
    page.locator("#plot-contour").scroll_into_view_if_needed()
    box = page.locator("#plot-contour image").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#plot-contour .chart-tip")).to_contain_text("y ≈ ")
    page.select_option("#slice-param", "opt")
    page.wait_for_function("new Set(document.getElementById('plot-slice').chart.spec.series[0].x).size === 2")
    assert set(chart_series(page, "plot-slice", 0, "x")) == {"adam", "sgd"}
    assert page.locator("#plot-slice .point").count() == 28
    # best assignments, open and queued suggestions
    assert page.locator("#best tbody tr").count() == 1
    assert page.locator("#open-suggestions tbody tr").count() == 1
    assert page.locator("#queued tbody tr").count() == 1
    assert page.locator("#pareto-panel").is_hidden() and page.locator("#tasks-panel").is_hidden()
    # generated code names this experiment and this server
    code = page.locator("#code-text").inner_text()
    assert f'conn.experiment("{data.single}")' in code and data.server.url in code
    page.get_by_role("tab", name="Python (sigopt client)").click()
    code = page.locator("#code-text").inner_text()
    assert f'conn.set_api_url("{data.server.url}")' in code and f'conn.experiments("{data.single}")' in code
    page.get_by_role("tab", name="curl").click()
    assert f"{data.server.url}/v1/experiments/{data.single}/observations" in page.locator("#code-text").inner_text()


def test_history_sort_filter_and_csv(page: Any, data: Data) -> None:
    open_experiment(page, data, data.single)
    n = len(observations(data, data.single))
    assert row_count_text(page, "history").startswith(f"{n} of {n} rows")
    assert page.locator("#sample-note").is_hidden()  # 30 observations: every one is drawn
    ok = [v for v in data.values if v is not None]
    page.locator("#history").get_by_role("button", name="sort by y").click()  # ascending, on the server
    expect(page.locator("#history th[data-key='m:y']")).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#history tbody tr").first.locator("td").last).to_have_text(f"{min(ok):.5g}")
    page.fill("#history-filter", "y < 50")
    expected = sum(1 for v in ok if v < 50)
    expect(page.locator("#history .rowcount")).to_contain_text(f"{expected} of {n} rows")
    page.fill("#history-filter", "failed = yes")
    expect(page.locator("#history .rowcount")).to_contain_text(f"2 of {n} rows")
    page.fill("#history-filter", "y < 50, opt = sgd")
    want = sum(1 for i, v in enumerate(data.values) if v is not None and v < 50 and i % 3 == 0)
    expect(page.locator("#history .rowcount")).to_contain_text(f"{want} of {n} rows")
    assert page.locator("#history tbody tr").count() == want
    page.fill("#history-filter", "colour = red")  # an unknown column: the server's message, in the table
    expect(page.locator("#history .msg.error")).to_contain_text("unknown column 'colour'")
    page.errors.clear()  # the browser logs the 400 response itself
    page.fill("#history-filter", "")
    expect(page.locator("#history .rowcount")).to_contain_text(f"{n} of {n} rows")
    with page.expect_download() as dl:
        page.click("#csv-download")
    text = open(dl.value.path()).read()
    lines = text.strip().splitlines()
    assert lines[0] == "id,created,suggestion,task,failed,x1,x2,opt,y" and len(lines) == n + 1


def test_parallel_coordinates_brushing_selects_and_filters(page: Any, data: Data) -> None:
    open_experiment(page, data, data.single)
    page.locator("#plot-parcoords").scroll_into_view_if_needed()
    box = page.locator("#plot-parcoords .axis-brush").first.bounding_box()  # the x1 axis
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + 0.2 * box["height"])
    page.mouse.down()
    page.mouse.move(x, box["y"] + 0.45 * box["height"], steps=5)
    page.mouse.move(x, box["y"] + 0.7 * box["height"], steps=5)
    page.mouse.up()
    page.wait_for_function("!!document.getElementById('plot-parcoords').parcoords.dimensions[0].constraintrange")
    lo, hi = page.evaluate("document.getElementById('plot-parcoords').parcoords.dimensions[0].constraintrange")
    ok = [o for o in observations(data, data.single) if not o["failed"]]
    inside = [o for o in ok if lo <= o["assignments"]["x1"] <= hi]
    assert 0 < len(inside) < len(ok)
    selected = rf"^{len(inside)} of {len(ok)} lines selected \(x1 \S+ – \S+\)\.$"
    expect(page.locator("#par-note")).to_have_text(re.compile(selected))
    # an axis title dragged past its neighbour moves the axis; the brushed range goes with it
    title = page.locator("#plot-parcoords .axis-title").first.bounding_box()
    nxt = page.locator("#plot-parcoords .axis-title").nth(1).bounding_box()
    page.mouse.move(title["x"] + title["width"] / 2, title["y"] + title["height"] / 2)
    page.mouse.down()
    page.mouse.move(nxt["x"] + nxt["width"] + 20, title["y"] + title["height"] / 2, steps=5)
    page.mouse.up()
    order = page.evaluate("document.getElementById('plot-parcoords').parcoords.dimensions.map(d => d.label)")
    assert order[:2] == ["x2", "x1"]
    assert page.locator("#plot-parcoords .brush-range:not([display])").count() == 1
    assert page.locator("#plot-parcoords .axis").nth(1).locator(".brush-range:not([display])").count() == 1
    # the selection becomes a history filter over every observation
    page.get_by_role("button", name="Show the selected observations in the history").click()
    assert page.locator("#history-filter").input_value().startswith("failed = no, x1 >= ")
    n = len(observations(data, data.single))
    expect(page.locator("#history .rowcount")).to_contain_text(f"{len(inside)} of {n} rows")


def test_parallel_coordinates_keyboard_brushing(page: Any, data: Data) -> None:
    """An axis is a focusable slider: arrows select and move a range, shift+arrows resize it, Escape clears it;
    the selection is announced through the note's aria-live region."""
    open_experiment(page, data, data.single)
    pc = "document.getElementById('plot-parcoords').parcoords"
    ok = [o for o in observations(data, data.single) if not o["failed"]]
    x1 = page.locator("#plot-parcoords .axis[data-label=x1]")
    assert x1.get_attribute("role") == "slider" and x1.get_attribute("tabindex") == "0"
    assert page.get_attribute("#par-note", "aria-live") == "polite"
    x1.focus()
    lo, hi = page.evaluate(f"{pc}.dimensions[0].range")
    span, mid = hi - lo, (lo + hi) / 2
    page.keyboard.press("ArrowUp")  # a new range: the middle fifth
    assert page.evaluate(f"{pc}.dimensions[0].constraintrange") == pytest.approx([mid - span / 10, mid + span / 10])
    page.keyboard.press("ArrowUp")  # moved up by a twentieth
    page.keyboard.press("Shift+ArrowUp")  # widened by a twentieth
    a, b = page.evaluate(f"{pc}.dimensions[0].constraintrange")
    assert (a, b) == pytest.approx((mid - span / 10 + span / 40, mid + span / 10 + 3 * span / 40))
    inside = [o for o in ok if a <= o["assignments"]["x1"] <= b]
    expect(page.locator("#par-note")).to_have_text(re.compile(rf"^{len(inside)} of {len(ok)} lines selected \(x1 "))
    assert x1.get_attribute("aria-valuetext") == page.evaluate(f"`${{Assay.fmt({a}, 3)}} to ${{Assay.fmt({b}, 3)}}`")
    assert page.locator("#plot-parcoords .axis[data-label=x1] .brush-range:not([display])").count() == 1
    assert page.evaluate("document.activeElement.getAttribute('data-label')") == "x1"  # focus survives the redraw
    page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("Escape")  # cleared
    assert page.evaluate(f"{pc}.dimensions[0].constraintrange") is None
    expect(page.locator("#par-note")).to_have_text(
        f"{len(ok)} lines (observations with every metric; failed ones left out).")
    # arrow right: the next axes; a category axis steps one category at a time
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.getAttribute('data-label')") == "opt"
    page.keyboard.press("ArrowDown")  # the middle category of [adam, sgd] ...
    page.keyboard.press("ArrowDown")  # ... then the one below it
    adam = [o for o in ok if o["assignments"]["opt"] == "adam"]
    expect(page.locator("#par-note")).to_have_text(f"{len(adam)} of {len(ok)} lines selected (opt adam).")
    assert page.get_attribute("#plot-parcoords .axis[data-label=opt]", "aria-valuetext") == "adam"
    page.get_by_role("button", name="Show the selected observations in the history").click()
    assert page.locator("#history-filter").input_value() == "failed = no, opt = adam"


def test_multi_metric_pareto_front_with_thresholds(page: Any, data: Data) -> None:
    open_experiment(page, data, data.multi)
    assert page.evaluate("window.Plotly === undefined")
    front = httpx.get(f"{data.server.url}/v1/experiments/{data.multi}/best_assignments").json()["data"]
    assert chart_points(page, "plot-pareto", "Pareto front") == len(front) > 1
    assert chart_points(page, "plot-pareto", "observations") == len(observations(data, data.multi))
    assert page.locator("#plot-pareto .series.markers .point").count() == len(observations(data, data.multi))
    rules = page.evaluate("document.getElementById('plot-pareto').chart.spec.rules.map(r => [r.axis, r.value])")
    assert rules == [["x", 0.2], ["y", 0.1]]
    assert page.locator("#plot-pareto line.rule").count() == 2
    assert "threshold 0.2" in page.get_attribute("#plot-pareto", "aria-label")
    assert page.locator("#best tbody tr").count() == len(front)


def test_zoom_export_opens_charts_in_plotly_and_back(page: Any, data: Data) -> None:
    """Each own-drawn chart's "Zoom / export" button loads Plotly.js on demand and redraws the same data in it."""
    open_experiment(page, data, data.multi)
    assert page.evaluate("window.Plotly === undefined")  # nothing of Plotly.js until the click
    n = len(observations(data, data.multi))
    page.get_by_role("button", name="Zoom / export the convergence chart (interactive Plotly.js view)").click()
    page.wait_for_selector("#plot-trace .js-plotly-plot")
    trace = "document.querySelector('#plot-trace .js-plotly-plot')"
    assert page.evaluate(f"{trace}.data.map(t => t.x.length)") == [n, len(chart_series(page, "plot-trace", 1, "x"))]
    assert page.evaluate(f"{trace}.data[1].line.shape") == "hv"  # the best-seen step line
    assert page.evaluate(f"{trace}.layout.xaxis.title.text") == "observation #"
    bg = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--bg').trim()")
    assert page.evaluate(f"{trace}.layout.paper_bgcolor") == bg
    assert page.locator("#plot-trace .modebar-btn[data-title='Download plot as a PNG']").count() == 1
    assert page.locator("#plot-trace svg.chart").is_hidden()
    page.get_by_role("button", name="Back to the static convergence chart").click()
    assert page.locator("#plot-trace .js-plotly-plot").count() == 0
    assert page.locator("#plot-trace svg.chart").is_visible()
    assert page.locator("#plot-trace .series.markers .point").count() == n
    page.get_by_role("button", name="Zoom / export the slice chart (interactive Plotly.js view)").click()
    page.wait_for_function(f"document.querySelector('#plot-slice .js-plotly-plot')?.data[0].x.length === {n}")
    # an open Plotly view follows live refreshes
    page.locator("#plot-pareto").scroll_into_view_if_needed()
    page.get_by_role("button", name="Zoom / export the Pareto front chart (interactive Plotly.js view)").click()
    page.wait_for_selector("#plot-pareto .js-plotly-plot")
    assert page.evaluate("document.querySelector('#plot-pareto .js-plotly-plot').layout.shapes.length") == 2
    httpx.post(f"{data.server.url}/v1/experiments/{data.multi}/observations", json={
        "assignments": {"a": 0.25, "b": 3}, "values": [{"name": "f1", "value": 0.3}, {"name": "f2", "value": 0.4}],
    }).raise_for_status()
    page.wait_for_function(
        f"document.querySelector('#plot-pareto .js-plotly-plot')?.data[0].x.length === {n + 1}", timeout=15_000)
    page.get_by_role("button", name="Back to the static Pareto front chart").click()
    assert page.locator("#plot-pareto .series.markers .point").count() == n + 1


def test_multitask_distribution_and_cost(page: Any, data: Data) -> None:
    open_experiment(page, data, data.tasks)
    # Plotly.js (the tasks' bars) is evaluated only after the first screen is shown
    assert page.evaluate("performance.getEntriesByName('first-screen')[0].detail") == {"plotly": False}
    shown, plotly = page.evaluate(
        "['first-screen painted', 'plotly'].map(n => performance.getEntriesByName(n)[0].startTime)")
    assert shown < plotly
    page.wait_for_function("document.getElementById('plot-tasks').data !== undefined")
    counts = page.evaluate("document.getElementById('plot-tasks').data[0].y")
    costs = page.evaluate("document.getElementById('plot-tasks').data[1].y")
    assert counts == [7, 3]
    assert costs == pytest.approx([0.7, 3.0])


def test_manual_observation_form_reaches_the_api(page: Any, data: Data) -> None:
    open_experiment(page, data, data.single)
    before = len(observations(data, data.single))
    page.get_by_label("x1 [-5, 10]").fill("2.5")
    page.get_by_label("x2 [0, 15]").fill("7.25")
    page.select_option("#f-p-opt", "sgd")
    page.get_by_label("y value").fill("42.5")
    page.get_by_role("button", name="Add observation").click()
    page.wait_for_selector("#obs-msg .msg.ok")
    obs = observations(data, data.single)
    assert len(obs) == before + 1
    newest = max(obs, key=lambda o: int(o["id"]))
    assert newest["assignments"] == {"x1": 2.5, "x2": 7.25, "opt": "sgd"} and newest["value"] == 42.5
    page.wait_for_function(f"document.querySelector('#history .rowcount').textContent.startsWith('{before + 1} of')")
    # out of bounds: the API's message is shown, nothing is stored
    page.get_by_label("x1 [-5, 10]").fill("99")
    page.get_by_label("x2 [0, 15]").fill("1")
    page.get_by_label("y value").fill("1")
    page.get_by_role("button", name="Add observation").click()
    page.wait_for_selector("#obs-msg .msg.error")
    assert "x1" in page.locator("#obs-msg").inner_text()
    assert len(observations(data, data.single)) == before + 1
    page.errors.clear()  # the browser logs the 400 response itself


def test_csv_upload(page: Any, data: Data, tmp_path: Any) -> None:
    open_experiment(page, data, data.single)
    before = len(observations(data, data.single))
    bad = tmp_path / "bad.csv"
    bad.write_text("x1,x2,opt,y\n1,2,adam,3\n1,two,adam,3\n")
    page.set_input_files("#csv-file", str(bad))
    page.click("#csv-upload")
    page.wait_for_selector("#csv-msg .msg.error")
    assert "line 3" in page.locator("#csv-msg").inner_text()
    assert len(observations(data, data.single)) == before
    good = tmp_path / "good.csv"
    good.write_text("x1,x2,opt,y,failed\n1,2,adam,3.5,false\n-1,4,sgd,,true\n")
    page.set_input_files("#csv-file", str(good))
    page.click("#csv-upload")
    page.wait_for_selector("#csv-msg .msg.ok")
    obs = sorted(observations(data, data.single), key=lambda o: int(o["id"]))
    assert len(obs) == before + 2
    assert obs[-2]["assignments"] == {"x1": 1.0, "x2": 2.0, "opt": "adam"} and obs[-2]["value"] == 3.5
    assert obs[-1]["failed"] is True
    page.errors.clear()  # the rejected upload's 400 is logged by the browser


def test_live_refresh_without_reload(page: Any, data: Data) -> None:
    open_experiment(page, data, data.multi)
    page.evaluate("window.__same_document = true")
    n = len(observations(data, data.multi))
    new = httpx.post(f"{data.server.url}/v1/experiments/{data.multi}/observations",
                     json={"assignments": {"a": 0.5, "b": 2}, "values": [{"name": "f1", "value": 0.5},
                                                                        {"name": "f2", "value": 0.5}]})
    new.raise_for_status()
    page.wait_for_function(f"document.querySelector('#history .rowcount').textContent.startsWith('{n + 1} of')",
                           timeout=15_000)
    assert page.evaluate("window.__same_document") is True
    # an edit (same count, same newest id) refreshes the page too
    httpx.put(f"{data.server.url}/v1/experiments/{data.multi}/observations/{new.json()['id']}",
              json={"values": [{"name": "f1", "value": 0.123}, {"name": "f2", "value": 0.5}]}).raise_for_status()
    expect(page.locator("#history tbody tr").first).to_contain_text("0.123", timeout=15_000)
    assert page.evaluate("window.__same_document") is True
    # an off-screen plot is redrawn when it is scrolled into view
    page.locator("#plot-pareto").scroll_into_view_if_needed()
    page.wait_for_function(f"document.getElementById('plot-pareto').chart.spec.series[0].x.length === {n + 1}")


def test_login_stores_token_and_sends_bearer(page: Any, data: Data) -> None:
    page.goto(f"{data.server.url}/login?next=/experiments/{data.single}")
    seen: list[str | None] = []
    page.on("request", lambda r: seen.append(r.headers.get("authorization")) if "/dashboard/api/" in r.url else None)
    page.get_by_label("API token").fill("secret-token")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/experiments/{data.single}")
    page.wait_for_selector(READY)
    assert seen and all(h == "Bearer secret-token" for h in seen)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert page.evaluate("localStorage.getItem('assay.token')") is None


def test_unknown_experiment_says_so(page: Any, data: Data) -> None:
    page.goto(f"{data.server.url}/experiments/999999")
    page.wait_for_selector("#msg .msg.error")
    assert "999999" in page.locator("#msg").inner_text()
    page.errors.clear()  # the 404 response is logged by the browser


def test_auth_login_and_token_scope(browser: Any, tmp_path: Any) -> None:
    """With tokens required: the login page, a read-only token sees the team without write controls,
    a share token sees only its experiment."""
    srv = ServerProcess(tmp_path / "home", auth=True).start()
    try:
        admin = {"Authorization": f"Bearer {srv.token}"}
        with assay.Connection(srv.url, token=srv.token) as c:
            space = [{"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}}]
            e1 = c.create_experiment(name="first", parameters=space, metrics=[{"name": "y"}])
            e2 = c.create_experiment(name="second", parameters=space, metrics=[{"name": "y"}])
        read = httpx.post(f"{srv.url}/v1/tokens", json={"role": "read", "name": "viewer"}, headers=admin).json()
        share = httpx.post(f"{srv.url}/v1/experiments/{e2.id}/tokens", headers=admin).json()
        ctx = browser.new_context()
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        js_errors: list[str] = []
        page.on("pageerror", lambda e: js_errors.append(str(e)))
        page.goto(srv.url + "/")
        page.wait_for_url("**/login?next=*")
        page.get_by_label("API token").fill("assay_wrong")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("#msg .msg.error")
        assert "not accepted" in page.locator("#msg").inner_text()
        page.get_by_label("API token").fill(read["token"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(srv.url + "/")
        page.wait_for_selector(READY)
        assert sorted(page.locator("#table tbody tr td:nth-child(2)").all_inner_texts()) == ["first", "second"]
        assert page.locator("button.archive").count() == 0
        assert "viewer · read" in page.locator("#who").inner_text()
        page.goto(f"{srv.url}/experiments/{e1.id}")
        page.wait_for_selector(READY)
        assert page.locator("#h-add").is_hidden() and page.locator("#archive").count() == 0
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/login")
        page.get_by_label("API token").fill(share["token"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"**/experiments/{e2.id}")
        page.wait_for_selector(READY)
        assert page.locator("#title").inner_text().startswith("second")
        page.goto(srv.url + "/")  # the list is not for share tokens: back to its experiment
        page.wait_for_url(f"**/experiments/{e2.id}")
        page.goto(f"{srv.url}/experiments/{e1.id}")
        page.wait_for_selector("#msg .msg.error")
        assert not js_errors
        ctx.close()
    finally:
        srv.stop()


def test_projects_and_runs_table(page: Any, data: Data) -> None:
    page.goto(f"{data.server.url}/projects")
    page.wait_for_selector(READY)
    page.get_by_role("link", name=data.project).click()
    page.wait_for_url(f"**/projects/{data.project}")
    page.wait_for_selector(READY)
    assert page.locator("#runs tbody tr").count() == 4
    headers = page.locator("#runs thead th").all_inner_texts()
    assert {"lr", "depth", "accuracy", "loss"} <= {h.strip() for h in headers}
    names = page.locator("#runs tbody tr td:nth-child(3)")
    page.locator("#runs").get_by_role("button", name="sort by accuracy").click()
    expect(names).to_have_text(["resnet-0", "resnet-1", "resnet-2", "resnet-3"])
    page.fill("#runs-filter", "accuracy > 0.76")
    expect(names).to_have_text(["resnet-2", "resnet-3"])
    page.fill("#runs-filter", "")
    expect(names).to_have_count(4)
    # hide a column: the choice survives a reload
    page.click("#columns-box summary")
    page.locator("#columns label", has_text="loss").locator("input").uncheck()
    assert "loss" not in [h.strip() for h in page.locator("#runs thead th").all_inner_texts()]
    page.reload()
    page.wait_for_selector(READY)
    assert "loss" not in [h.strip() for h in page.locator("#runs thead th").all_inner_texts()]
    # compare two runs side by side
    page.get_by_label("select run resnet-0").check()
    page.get_by_label("select run resnet-3").check()
    page.click("#compare")
    table = page.locator("#comparison table")
    assert table.locator("thead th").all_inner_texts()[1:] == ["resnet-0", "resnet-3"]
    acc = table.locator("tr", has=page.locator("th", has_text="accuracy")).locator("td").all_inner_texts()
    assert [float(a) for a in acc] == pytest.approx([0.7, 0.85])


def test_runs_table_filters_sorts_and_pages_on_the_server(page: Any, data: Data) -> None:
    """120 runs: the table holds one page of 50; filters, sorting and paging are the API's (SigOpt ``filters``)."""
    url = data.server.url
    with httpx.Client(base_url=url) as h:
        h.post("/v1/clients/1/projects", json={"id": "sweep", "name": "Sweep"}).raise_for_status()
        runs = [{"name": f"trial-{i:03d}", "assignments": {"lr": i / 1000, **({"opt": "sgd"} if i % 4 else {}),
                                                          **({"momentum": 0.9} if i == 0 else {})},
                 "values": {"acc": {"value": (i * 37 % 120) / 120}}} for i in range(120)]
        h.post("/v1/clients/1/projects/sweep/training_runs/batch", json={"runs": runs}).raise_for_status()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/training_runs?" in r.url else None)
    page.goto(f"{url}/projects/sweep")
    page.wait_for_selector(READY)
    rows = page.locator("#runs tbody tr")
    expect(rows).to_have_count(50)
    expect(page.locator("#runs .rowcount")).to_contain_text("120 of 120 rows · page 1 of 3")
    # the columns are every key the project's runs use: "momentum" too, which only the oldest run has
    assert {"lr", "opt", "momentum", "acc"} <= {h.strip() for h in page.locator("#runs thead th").all_inner_texts()}
    page.locator("#runs").get_by_role("button", name="sort by acc").click()  # ascending, over all 120
    expect(rows.first.locator("td").last).to_have_text("0")
    assert any("sort=values.acc" in u and "ascending=true" in u for u in asked)
    page.locator("#runs").get_by_role("button", name="Next ›").click()
    expect(page.locator("#runs .rowcount")).to_contain_text("page 2 of 3")
    expect(rows.first.locator("td").last).to_have_text(f"{50 / 120:.5g}")
    page.fill("#runs-filter", "acc >= 0.5, opt = sgd")
    want = sum(1 for i in range(120) if (i * 37 % 120) / 120 >= 0.5 and i % 4)
    expect(page.locator("#runs .rowcount")).to_contain_text(f"{want} of 120 rows")
    assert any("filters=" in u and "values.acc" in u and "assignments.opt" in u for u in asked)
    page.fill("#runs-filter", "trial-11")  # plain text: the run name contains it
    expect(page.locator("#runs .rowcount")).to_contain_text("10 of 120 rows")
    page.fill("#runs-filter", "colour = red")
    expect(page.locator("#runs .msg.error")).to_contain_text("unknown column 'colour'")


def test_run_page(page: Any, data: Data) -> None:
    rid = data.runs[0]
    page.goto(f"{data.server.url}/runs/{rid}")
    page.wait_for_selector(READY)
    assert page.locator("#title").inner_text().startswith("resnet-0")
    params = page.locator("#params tbody").inner_text()
    assert "lr" in params and "user" in params and "depth" in params
    assert "accuracy" in page.locator("#metrics").inner_text()
    assert "run 0 finished" in page.locator("#logs").inner_text()
    meta = page.locator("#metadata").inner_text()
    assert "gpu" in meta and "abc0" in meta and "vision-sweep" in meta  # tag ids shown by name
    # checkpoint curves: one line per metric, one point per checkpoint
    assert page.evaluate("document.getElementById('plot-checkpoints').data.map(d => d.x.length)") == [5, 5]
    # the image file is shown (fetched with the token, decoded by the browser)
    page.wait_for_function("(document.querySelector('img.run-image') || {}).naturalWidth === 2")
    assert page.get_by_role("link", name="confusion matrix").count() == 1


def test_large_experiment_draws_a_labelled_sample_and_pages_the_history(page: Any, data: Data) -> None:
    """1,500 observations: plots draw the documented 1,000-row sample and say so; the history holds all."""
    with assay.Connection(data.server.url) as c:
        e = c.create_experiment(name="large", parameters=[
            {"name": "a", "type": "double", "bounds": {"min": 0, "max": 1}},
            {"name": "b", "type": "double", "bounds": {"min": 0, "max": 1}}], metrics=[{"name": "y"}])
        ys = [((i * 7919) % 1500) / 1500 for i in range(1500)]
        c.experiments(e.id).observations().create_batch(observations=[
            {"assignments": {"a": y, "b": 1 - y}, "values": [{"name": "y", "value": y}]} for y in ys])
    open_experiment(page, data, e.id)
    assert chart_points(page, "plot-trace", "observations") == chart_points(page, "plot-slice", "y") == 1000
    assert page.evaluate("document.getElementById('plot-parcoords').parcoords.dimensions[0].values.length") == 1000
    assert chart_points(page, "plot-contour", "observations") == 1000
    expect(page.locator("#sample-note")).to_contain_text("show 1000 of 1500 observations")
    # the best-seen line and the best-assignment table use every observation
    assert chart_series(page, "plot-trace", 1, "y")[-1] == max(ys)
    assert chart_series(page, "plot-trace", 1, "x")[-1] == 1500
    expect(page.locator("#best tbody tr")).to_have_count(1)
    # history: 50 rows in the page, 1500 on the server; sorting and paging cover all of them
    assert row_count_text(page, "history").startswith("1500 of 1500 rows · page 1 of 30")
    assert page.locator("#history tbody tr").count() == 50
    page.locator("#history").get_by_role("button", name="sort by y").click()
    expect(page.locator("#history tbody tr").first.locator("td").last).to_have_text("0")
    page.locator("#history").get_by_role("button", name="Next ›").click()
    expect(page.locator("#history .rowcount")).to_contain_text("page 2 of 30")
    assert page.locator("#history tbody tr").first.locator("td").last.inner_text() == f"{50 / 1500:.5g}"


def test_light_and_dark_color_schemes(browser: Any, data: Data) -> None:
    """The page and its plots follow the system color scheme."""
    for scheme, bg, rgb in (("light", "#ffffff", "rgb(255, 255, 255)"), ("dark", "#0d1117", "rgb(13, 17, 23)")):
        ctx = browser.new_context(viewport={"width": 1400, "height": 900}, color_scheme=scheme)
        pg = ctx.new_page()
        errors: list[str] = []
        pg.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        pg.goto(f"{data.server.url}/experiments/{data.multi}")
        pg.wait_for_selector(DRAWN, timeout=60_000)
        assert pg.evaluate("getComputedStyle(document.body).backgroundColor") == rgb
        assert pg.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--bg').trim()") == bg
        fg = pg.evaluate("getComputedStyle(document.body).color")
        assert fg != rgb  # text stays readable on the background
        # the page's own plots (parallel coordinates, convergence, importance) use the scheme's text color (CSS --fg)
        css_fg = pg.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--fg').trim()")
        assert pg.evaluate("document.querySelector('#plot-parcoords .axis-title').getAttribute('fill')") == css_fg
        for div in ("plot-trace", "plot-importance", "plot-slice", "plot-contour", "plot-pareto"):
            assert pg.evaluate(f"document.querySelector('#{div} svg.chart > g').getAttribute('fill')") == css_fg
        ctx.close()
        assert not errors, errors


def test_projects_and_run_pages_refresh_live(page: Any, data: Data) -> None:
    url = data.server.url
    with httpx.Client(base_url=url) as h:
        h.post("/v1/clients/1/projects", json={"id": "live", "name": "Live"}).raise_for_status()
        rid = h.post("/v1/projects/live/training_runs", json={"name": "first"}).json()["id"]
        page.goto(f"{url}/projects/live")
        page.wait_for_selector(READY)
        page.evaluate("window.__same_document = true")
        expect(page.locator("#runs tbody tr")).to_have_count(1)
        h.post("/v1/projects/live/training_runs", json={"name": "second"}).raise_for_status()
        expect(page.locator("#runs tbody tr")).to_have_count(2, timeout=20_000)
        assert page.evaluate("window.__same_document") is True
        page.goto(f"{url}/runs/{rid}")
        page.wait_for_selector(READY)
        page.evaluate("window.__same_document = true")
        for step in (1, 2):
            h.post(f"/v1/training_runs/{rid}/checkpoints", json={"values": [{"name": "loss", "value": 1 / step}]}
                   ).raise_for_status()
        page.wait_for_function("(document.getElementById('plot-checkpoints').data || [{x: []}])[0].x.length === 2",
                               timeout=20_000)
        assert page.evaluate("window.__same_document") is True
