"""Dashboard render time: the experiment page with N observations, in headless Chromium.

    python -m benchmarks.dashboard [--sizes 100,1000,10000] [--repeats 3] [--peer] [--metrics 2]

For each size it starts ``assay server`` (SQLite, no auth) on a loopback port, stores N observations of a
4-parameter experiment through the API, then measures:
  * api: GET /dashboard/api/experiments/{id} (the page's data request: summaries, plot sample, trace, importance;
    the page asks for its history page and contour grid beside it) just after an edit of one observation
    (computed), and again (api_cached: kept per change marker), and the size of its body;
  * first screen: from navigation until every plot in the 1400x900 viewport is drawn and the browser has shown
    it (summary, best assignments, history page, convergence and importance plots, the last two drawn by the page
    itself, without Plotly.js): the page's ``performance.mark("first-screen painted")``, set in the task after the
    frame that follows ``body[data-ready=true]``. Read from the page, because Playwright's own wait for
    ``data-ready`` only gets its turn after the main thread has evaluated Plotly.js, which follows at once;
  * all plots: until every plot on the page is drawn, the off-screen ones too (``body[data-drawn]``: slice,
    contour and parallel coordinates, also the page's own; with ``--metrics 2`` the Pareto front too, the one plot
    here still drawn with Plotly.js, which is then loaded and evaluated after the first screen);
each cold (a fresh browser context, so Plotly.js is neither cached nor compiled, right after an edit of one
observation, so the server computes the page's data again) and warm (the same page opened again). Between loads
the benchmark waits, untimed, for the forest importances the page fetches after its plots. It prints the
in-page ``performance.mark``s of the last loads (ms from navigation) and a closing ``SUMMARY`` line per size.
The run fails if a page logs an error or the convergence plot does not hold min(N, 1000) markers.
With ``--peer`` it also times optuna-dashboard (``pip install optuna-dashboard``) on an Optuna study with the
same N trials, until its history plot has drawn all N points (or a 60 s timeout).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PARAMS = [{"name": "x1", "type": "double", "bounds": {"min": -5, "max": 10}},
          {"name": "x2", "type": "double", "bounds": {"min": 0, "max": 15}},
          {"name": "lr", "type": "double", "bounds": {"min": 1e-5, "max": 1e-1}, "transformation": "log"},
          {"name": "opt", "type": "categorical", "categorical_values": ["adam", "sgd", "rmsprop"]}]


def branin(x1: float, x2: float) -> float:
    return ((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def stop(proc: subprocess.Popen) -> None:
    """End a server we started; under heavy load a graceful shutdown can take a while."""
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def points(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x1, x2 = rng.uniform(-5, 10), rng.uniform(0, 15)
        out.append({"x1": x1, "x2": x2, "lr": 10 ** rng.uniform(-5, -1), "opt": rng.choice(["adam", "sgd", "rmsprop"]),
                    "y": branin(x1, x2), "cost": (x1 + 5) ** 2 / 15 + x2})
    return out


# where a load spends its time, in ms from navigation: the HTML, the page's data request (sent, answered) and
# Plotly.js (asked, answered), then the page's own marks (data in hand, tables, each plot, first screen, all plots)
TIMELINE = """(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const data = res.find(r => /\\/dashboard\\/api\\/experiments\\/\\d+$/.test(r.name));
  const plotly = res.find(r => r.name.includes('plotly'));
  const out = [['html', nav.responseEnd]];
  if (data) out.push(['data sent', data.startTime], ['data answered', data.responseEnd]);
  if (plotly) out.push(['plotly.js asked', plotly.startTime], ['plotly.js answered', plotly.responseEnd]);
  return out.concat(performance.getEntriesByType('mark').map(m => [m.name, m.startTime]));
})()"""


def assay_times(browser, n: int, repeats: int, metrics: int = 1) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    home = Path(tempfile.mkdtemp(prefix="assay-bench-dash-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ASSAY_HOME": str(home), "ASSAY_AUTH": "off", "ASSAY_PRECOMPUTE": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "assay", "server", "--port", str(port), "--no-auth"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(url + "/health", proc)
        with httpx.Client(base_url=url, timeout=300) as h:
            exp = h.post("/v1/experiments", json={"name": f"bench {n}", "parameters": PARAMS,
                                                  "metrics": [{"name": "y", "objective": "minimize"},
                                                              {"name": "cost", "objective": "minimize"}][:metrics],
                                                  "observation_budget": n}).json()
            pts = points(n)
            for i in range(0, n, 2500):
                batch = [{"assignments": {k: p[k] for k in ("x1", "x2", "lr", "opt")},
                          "values": [{"name": "y", "value": p["y"]}, {"name": "cost", "value": p["cost"]}][:metrics]}
                         for p in pts[i:i + 2500]]
                h.post(f"/v1/experiments/{exp['id']}/observations/batch", json={"observations": batch}
                       ).raise_for_status()
            out: dict[str, list] = {"api": [], "api_cached": [], "kb": [], "cold": [], "cold_all": [], "warm": [],
                                    "warm_all": [], "changed": [], "changed_all": [], "marks": []}
            first = h.get(f"/v1/experiments/{exp['id']}/observations", params={"limit": 1}).json()["data"][0]["id"]
            for k in range(repeats):
                h.put(f"/v1/experiments/{exp['id']}/observations/{first}", json={"metadata": {"api": k}}
                      ).raise_for_status()
                for key in ("api", "api_cached"):  # computed after the edit, then kept until the next change
                    t = time.perf_counter()
                    r = h.get(f"/dashboard/api/experiments/{exp['id']}")
                    r.raise_for_status()
                    out[key].append(time.perf_counter() - t)
                out["kb"].append(len(r.content) / 1000)
            for k in range(repeats):
                # cold = nothing cached: a fresh browser context, and an edit just before (the server computes the
                # page's data again, as for the first view after any change); warm = the same page opened again;
                # changed = a returning user after new data: the browser has Plotly.js cached and compiled, the
                # server computes the page's data again
                h.put(f"/v1/experiments/{exp['id']}/observations/{first}", json={"metadata": {"touch": k}}
                      ).raise_for_status()
                ctx = browser.new_context(viewport={"width": 1400, "height": 900})
                page = ctx.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
                for kind in ("cold", "warm", "changed"):
                    if kind == "changed":
                        h.put(f"/v1/experiments/{exp['id']}/observations/{first}", json={"metadata": {"again": k}}
                              ).raise_for_status()
                    t = time.perf_counter()
                    page.goto(f"{url}/experiments/{exp['id']}")
                    page.wait_for_selector("body[data-drawn]", timeout=120_000)
                    out[kind + "_all"].append(time.perf_counter() - t)
                    out[kind].append(page.evaluate("performance.getEntriesByName('first-screen painted')[0].startTime")
                                     / 1000)
                    marks = page.evaluate(TIMELINE)
                    out["marks"].append((kind, marks))
                    # untimed: the forest importances the page asks for after its plots (computed once per change
                    # of the experiment) finish before the next load, so each load starts on an idle server
                    page.wait_for_selector("body[data-importance]", timeout=300_000)
                drawn = page.evaluate("Number(document.querySelector('#plot-trace .series[data-name=observations]')"
                                      ".dataset.points)")
                if errors or drawn != min(n, 1000):
                    raise RuntimeError(f"page broken at n={n}: errors={errors} drawn={drawn}")
                ctx.close()
            return out
    finally:
        stop(proc)
        shutil.rmtree(home, ignore_errors=True)


CLI = "import sys; from optuna_dashboard._cli import main; sys.exit(main())"


def optuna_dashboard_times(browser, n: int, repeats: int) -> list[float | None]:  # type: ignore[no-untyped-def]
    import optuna

    home = Path(tempfile.mkdtemp(prefix="optuna-bench-dash-"))
    storage = f"sqlite:///{home / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name="bench")
    dists = {"x1": optuna.distributions.FloatDistribution(-5, 10), "x2": optuna.distributions.FloatDistribution(0, 15),
             "lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
             "opt": optuna.distributions.CategoricalDistribution(["adam", "sgd", "rmsprop"])}
    study.add_trials([optuna.trial.create_trial(params={k: p[k] for k in dists}, distributions=dists, value=p["y"])
                      for p in points(n)])
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", CLI, storage, "--port", str(port),
                             "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc)
        out: list[float | None] = []
        for _ in range(repeats):
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            t = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/dashboard/studies/{study._study_id}")
            try:  # the history plot is drawn with every trial as a marker
                page.wait_for_function(f"[...document.querySelectorAll('.js-plotly-plot')].some(d => d.data && "
                                       f"d.data.some(t => t.x && t.x.length >= {n}))", timeout=60_000)
                out.append(time.perf_counter() - t)
            except Exception:  # noqa: BLE001 - a timeout is the result
                out.append(None)
            ctx.close()
        return out
    finally:
        stop(proc)
        shutil.rmtree(home, ignore_errors=True)


def fmt(xs: Sequence[float | None]) -> str:
    vals = [x for x in xs if x is not None]
    if not vals:
        return "timeout (>60 s)"
    return f"{statistics.median(vals):.2f} s" + ("" if len(vals) == len(xs) else f" ({len(xs) - len(vals)} timeouts)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--peer", action="store_true", help="also time optuna-dashboard")
    ap.add_argument("--metrics", type=int, choices=(1, 2), default=1,
                    help="2: a second metric, so the page also draws the Pareto front (with Plotly.js)")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    summary: list[tuple[int, dict]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for n in (int(s) for s in a.sizes.split(",")):
            t = assay_times(browser, n, a.repeats, a.metrics)
            print(f"assay n={n}: " + ", ".join(f"{k} {fmt(v)}" for k, v in t.items() if k not in ("kb", "marks")),
                  flush=True)
            # where the last cold, warm and changed load spent its time (ms from navigation)
            for kind, marks in t["marks"][-3:]:
                print(f"  {kind} marks: " + ", ".join(f"{name} {ms:.0f}" for name, ms in marks), flush=True)
            summary.append((n, t))
            peer = fmt(optuna_dashboard_times(browser, n, a.repeats)) if a.peer else "-"
            rows.append(f"| {n} | {fmt(t['api'])} / {fmt(t['api_cached'])} ({statistics.median(t['kb']):.0f} kB) | "
                        f"{fmt(t['cold'])} | "
                        f"{fmt(t['cold_all'])} | {fmt(t['warm'])} | {fmt(t['warm_all'])} | "
                        f"{fmt(t['changed_all'])} | {peer} |")
            print(rows[-1], flush=True)
        browser.close()
    load = os.getloadavg()
    print(f"\n{a.metrics} metric(s); machine: {platform.machine()}, {os.cpu_count()} cores, load average {load[0]:.1f} "
          f"(shared); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; medians of {a.repeats}")
    print("| observations | data API computed / kept (body) | first screen, cold | all plots, cold | "
          "first screen, warm | all plots, warm | all plots, after a change (browser warm) | optuna-dashboard |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    for n, t in summary:  # one line per size, what the lead compares against the 2 s target
        worst = max(statistics.median(t["cold_all"]), statistics.median(t["warm_all"]))
        what = " (2 metrics, Pareto front)" if a.metrics == 2 else ""
        print(f"SUMMARY dashboard n={n}{what}: all plots cold {fmt(t['cold_all'])}, warm {fmt(t['warm_all'])}; "
              f"first screen cold {fmt(t['cold'])}, warm {fmt(t['warm'])}; all plots after a change (browser warm) "
              f"{fmt(t['changed_all'])}; data API {fmt(t['api'])} (kept: {fmt(t['api_cached'])}); "
              f"target all plots < 2 s: "
              f"{'MET' if worst < 2 else 'NOT MET'}; load average {load[0]:.1f}; medians of {a.repeats}")


if __name__ == "__main__":
    main()
