"""Dashboard pages (static HTML shells) and the JSON they read under ``/dashboard/api``.

Pages carry no data: their scripts fetch it with the token the user entered at ``/login``
(``Authorization: Bearer``), so the API decides what a token may see, exactly as for ``/v1``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

from assay.dashboard import views
from assay.domain import Experiment, ObservationColumns, QueuedSuggestion, Suggestion
from assay.errors import AssayError, InvalidRequest, NotFound, Unprocessable
from assay.server.deps import Principal, reader, service, writer
from assay.server.runs_deps import runs
from assay.service import Service
from assay.service_runs import RunService

__all__ = ["router", "STATIC_DIR", "PLOTLY_JS", "PLOTLY_URL"]

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES = HERE / "templates"

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/dashboard/api", tags=["dashboard"])


# Plotly.js's "cartesian" bundle (vendor/README.md): a third of the full bundle the ``plotly`` package ships,
# so a cold page evaluates 1.5 MB of script instead of 4.8 MB. Its URL names its version: cached for good.
PLOTLY_JS = STATIC_DIR / "vendor" / "plotly-cartesian.min.js"
PLOTLY_URL = "/dashboard/static/plotly-cartesian-4.1.1.min.js"
IMMUTABLE = "public, max-age=31536000, immutable"
_STATIC_REF = re.compile(r'/dashboard/static/([a-z0-9_-]+\.(?:js|css|svg))"')


@lru_cache(maxsize=64)
def _digest(name: str, mtime_ns: int) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def _versioned(m: re.Match[str]) -> str:
    """``/dashboard/static/app.js"`` -> ``/dashboard/static/app.js?v=<content hash>"``: browsers keep the file
    until it changes, with no revalidation request on later page loads."""
    name = m.group(1)
    f = STATIC_DIR / name
    if not f.is_file():
        return m.group(0)
    return f'/dashboard/static/{name}?v={_digest(name, f.stat().st_mtime_ns)}"'


def _page(name: str) -> HTMLResponse:
    """A page: the shared head and navigation (``_head.html``) followed by the page's own body.

    A page template that starts with ``<!-- title: X -->`` gets the shared head (and what follows up to
    ``<!-- /early -->`` when the next line is ``<!-- early -->``, put in the head before the stylesheet); one
    without it (the login page) is served as it is.
    """
    body = (TEMPLATES / name).read_text(encoding="utf-8")
    first, _, rest = body.partition("\n")
    if first.startswith("<!-- title:"):
        title = first.removeprefix("<!-- title:").removesuffix("-->").strip()
        early = ""
        if rest.startswith("<!-- early -->"):  # runs before the stylesheet, so it does not wait for it
            early, _, rest = rest.removeprefix("<!-- early -->").partition("<!-- /early -->\n")
        head = (TEMPLATES / "_head.html").read_text(encoding="utf-8").replace("__TITLE__", title)
        body = head.replace("__EARLY__\n", early) + rest
    body = _STATIC_REF.sub(_versioned, body)
    return HTMLResponse(body, headers={"Cache-Control": "no-cache"})


# -- pages -----------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def experiments_page() -> HTMLResponse:
    return _page("experiments.html")


@router.get("/login", response_class=HTMLResponse)
def login_page() -> HTMLResponse:
    return _page("login.html")


@router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
def experiment_page(experiment_id: str) -> HTMLResponse:
    return _page("experiment.html")


@router.get("/projects", response_class=HTMLResponse)
def projects_page() -> HTMLResponse:
    return _page("projects.html")


@router.get("/projects/{project}", response_class=HTMLResponse)
def project_page(project: str) -> HTMLResponse:
    return _page("project.html")


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(run_id: str) -> HTMLResponse:
    return _page("run.html")


@router.get(PLOTLY_URL)
def plotly_js() -> FileResponse:
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": IMMUTABLE})


@router.get("/dashboard/static/{name}")
def static_file(name: str, v: str = "") -> FileResponse:
    """The dashboard's own files; with ``?v=`` equal to the content hash the pages put there, cached for good."""
    if not re.fullmatch(r"[a-z0-9_-]+\.(js|css|svg)", name) or not (STATIC_DIR / name).is_file():
        raise NotFound(f"no dashboard file {name!r}")
    f = STATIC_DIR / name
    kind = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}[name.rsplit(".", 1)[1]]
    fixed = v and v == _digest(name, f.stat().st_mtime_ns)
    return FileResponse(f, media_type=kind, headers={"Cache-Control": IMMUTABLE if fixed else "no-cache"})


# -- data --------------------------------------------------------------------------------------
@api.get("/experiments")
def experiments(state: str = "active", project: str | None = None, svc: Service = Depends(service),
                p: Principal = Depends(reader)) -> dict[str, Any]:
    page = svc.list_experiments(client_id=p.client_id, state=state, project=project, limit=1000)
    return {"count": page.count, "data": [views.experiment_row(e) for e in page.data]}


def _json(body: Any) -> Response:
    """JSON without FastAPI's per-item ``jsonable_encoder`` pass (the payloads are plain already); team data,
    so never stored by caches."""
    return _raw(json.dumps(body, separators=(",", ":"), allow_nan=False).encode())


def _raw(body: bytes) -> Response:
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@dataclass
class _Entry:
    """What the experiment page reads, for one state of one experiment (its change marker)."""

    marker: str
    exp: Experiment
    cols: ObservationColumns
    sugs: list[Suggestion]
    queued: list[QueuedSuggestion]
    page: bytes | None = None  # the page's data, encoded
    derived: dict[Any, Any] = field(default_factory=dict)  # contour grids, forest importances


class ViewCache:
    """The experiment page's data computed once per change marker (per server process), not per request: every
    open page polls, and a reload, a second viewer or a contour request then costs a marker check (three
    aggregate queries), not a read and summary of every observation. A few experiments are kept (at most
    ``size``, and ``rows`` observations in all), the least recently viewed leave first."""

    def __init__(self, size: int = 8, rows: int = 200_000) -> None:
        self.size = size
        self.rows = rows  # observations kept in all (memory), the newest entry always stays
        self.entries: OrderedDict[str, _Entry] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, svc: Service, experiment_id: str, client_id: int | None) -> _Entry:
        marker = svc.experiment_marker(experiment_id, client_id=client_id)  # also the access check
        key = str(experiment_id)
        with self.lock:
            e = self.entries.get(key)
            if e is not None and e.marker == marker:
                self.entries.move_to_end(key)
                return e
        # read after the marker: the data is at least as new as the marker it is kept under
        exp, cols, sugs, queued = svc.experiment_columns(experiment_id, client_id=client_id)
        e = _Entry(marker, exp, cols, sugs, queued)
        with self.lock:
            self.entries[key] = e
            self.entries.move_to_end(key)
            while len(self.entries) > 1 and (len(self.entries) > self.size
                                             or sum(len(x.cols) for x in self.entries.values()) > self.rows):
                self.entries.popitem(last=False)
        return e


def _cache(request: Request) -> ViewCache:
    c = getattr(request.app.state, "dashboard_cache", None)
    if c is None:
        c = request.app.state.dashboard_cache = ViewCache()
    return c


@api.get("/experiments/{experiment_id}")
def experiment(experiment_id: str, request: Request, svc: Service = Depends(service),
               p: Principal = Depends(reader)) -> Response:
    """The experiment page's data: summaries and plot samples (the page asks for its history page and contour grid
    beside it, so the server sorts and interpolates while the browser draws)."""
    e = _cache(request).get(svc, experiment_id, p.client_id)
    if e.page is None:
        out = views.experiment_view(e.exp, e.cols, e.sugs, e.queued)
        out["marker"] = e.marker
        e.page = json.dumps(out, separators=(",", ":"), allow_nan=False).encode()
    return _raw(e.page)


@api.get("/experiments/{experiment_id}/history")
def history(experiment_id: str, request: Request, offset: int = 0, limit: int = views.PAGE_SIZE, sort: str = "n",
            order: str = "descending", filter: str = "", svc: Service = Depends(service),
            p: Principal = Depends(reader)) -> Response:
    """One page of the observation history, filtered and sorted on the server."""
    e = _cache(request).get(svc, experiment_id, p.client_id)
    return _json(views.history_page(e.exp, e.cols, offset=offset, limit=limit, sort=sort, order=order, filter=filter))


@api.get("/experiments/{experiment_id}/marker")
def marker(experiment_id: str, svc: Service = Depends(service), p: Principal = Depends(reader)) -> dict[str, str]:
    """Polled by open pages: changes when anything on the experiment page would."""
    return {"marker": svc.experiment_marker(experiment_id, client_id=p.client_id)}


def _contour(e: _Entry, x: str, y: str, metric: str) -> dict[str, Any]:
    key = ("contour", x, y, metric)
    if key not in e.derived:
        e.derived[key] = views.contour(e.exp, e.cols, x, y, metric)
    return e.derived[key]


@api.get("/experiments/{experiment_id}/contour")
def contour(experiment_id: str, request: Request, x: str, y: str, metric: str, svc: Service = Depends(service),
            p: Principal = Depends(reader)) -> Response:
    return _json(_contour(_cache(request).get(svc, experiment_id, p.client_id), x, y, metric))


@api.get("/experiments/{experiment_id}/importances")
def forest_importances(experiment_id: str, request: Request, svc: Service = Depends(service),
                       p: Principal = Depends(reader)) -> Response:
    """``GET /v1/experiments/{id}/metric_importances`` (the optimizer's extremely randomized trees), kept with the
    page's data: computed once per change of the experiment, not once per page view."""
    e = _cache(request).get(svc, experiment_id, p.client_id)
    if "forest" not in e.derived:
        try:
            page = svc.metric_importances(experiment_id, client_id=p.client_id)
            e.derived["forest"] = {"data": page.data, "message": None}
        except Unprocessable as err:
            e.derived["forest"] = {"data": None, "message": err.message}
    return _json(e.derived["forest"])


@api.get("/projects/{project}/run_columns")
def run_columns(project: str, svc: RunService = Depends(runs), p: Principal = Depends(reader)) -> dict[str, Any]:
    """The runs table's parameter and metric columns: every key the project's runs use (the table itself reads
    one page at a time from ``GET /v1/projects/{project}/training_runs`` with ``filters`` and ``sort``)."""
    return svc.run_keys(project, client_id=p.client_id)


@api.get("/experiments/{experiment_id}/observations.csv")
def history_csv(experiment_id: str, request: Request, svc: Service = Depends(service),
                p: Principal = Depends(reader)) -> PlainTextResponse:
    e = _cache(request).get(svc, experiment_id, p.client_id)
    exp, cols = e.exp, e.cols
    return PlainTextResponse(views.history_csv(exp, cols), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="experiment-{exp.id}-observations.csv"'})


@api.post("/experiments/{experiment_id}/observations.csv")
async def upload_csv(experiment_id: str, request: Request, svc: Service = Depends(service),
                     p: Principal = Depends(writer)) -> dict[str, Any]:
    """Bulk upload: all rows or none. Errors name the CSV line."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the CSV file must be UTF-8 text", field="file") from None
    exp = svc.get_experiment(experiment_id, client_id=p.client_id)
    body = views.parse_observations_csv(exp, text)
    if len(body["observations"]) > 2500:
        raise InvalidRequest("at most 2500 observations per upload; split the file", field="file")
    try:
        page = svc.create_observations_batch(experiment_id, body, client_id=p.client_id)
    except AssayError as e:
        m = re.match(r"observations\[(\d+)\]", e.field or "") or re.match(r"observations\[(\d+)\]", e.message)
        if m:
            e.message = f"line {int(m.group(1)) + 2}: {e.message}"
        raise
    return {"created": page.count}


router.include_router(api)
