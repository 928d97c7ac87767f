"""The Python API: ``Connection()`` (embedded, no server) or ``Connection(url, token)`` (remote).

Both speak the same API v1: the embedded connection runs the server's own app in
this process (no socket), so the two give identical results and errors. Resource
calls mirror the ``sigopt`` client (``conn.experiments(id).suggestions().create()``);
:class:`Experiment` adds a Pythonic loop on top::

    conn = assay.Connection()
    exp = conn.create_experiment(name="demo", parameters=[...], metrics=[{"name": "acc"}],
                                 observation_budget=20)
    for trial in exp.loop():
        trial.report(train(**trial.assignments))
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from assay.errors import AssayError, ConnectionFailed, error_from_json

__all__ = ["Connection", "ApiObject", "Pagination", "Experiment", "Trial"]


class ApiObject(dict):
    """A JSON object whose keys read as attributes (``exp.progress.observation_count``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def wrap(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            if value.get("object") == "pagination":
                return Pagination(value)
            return cls({k: cls.wrap(v) for k, v in value.items()})
        if isinstance(value, list):
            return [cls.wrap(v) for v in value]
        return value


class Pagination(ApiObject):
    """A page of a list; :meth:`iterate_pages` walks the following pages too."""

    def __init__(self, raw: Mapping[str, Any], fetch_next: Callable[[str], Pagination] | None = None) -> None:
        super().__init__({k: ApiObject.wrap(v) for k, v in raw.items()})
        self._fetch_next = fetch_next

    def iterate_pages(self) -> Iterator[Any]:
        page: Pagination | None = self
        while page is not None:
            yield from page.data
            before = (page.get("paging") or {}).get("before")
            page = page._fetch_next(before) if before and page._fetch_next else None


class _Transport:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None,
                json: Any = None, retries: int = 3, headers: Mapping[str, str] | None = None) -> Any:
        """One call. 429s are retried; with an ``Idempotency-Key`` header, so are lost connections,
        timeouts and 502/503/504 (the server answers a repeated key with the first result)."""
        import time

        params = {k: v for k, v in (params or {}).items() if v is not None}
        idempotent = method in ("GET", "PUT", "DELETE") or bool(headers and "Idempotency-Key" in headers)
        for attempt in range(retries + 1):
            try:
                resp = self.client.request(method, path, params=params, json=json, headers=headers)
            except httpx.TransportError as exc:
                if idempotent and attempt < retries:
                    time.sleep(min(0.2 * 2**attempt, 5.0))
                    continue
                raise ConnectionFailed(f"could not reach the assay server: {exc}") from exc
            if resp.status_code == 429 and attempt < retries:
                time.sleep(min(float(resp.headers.get("retry-after", "1")), 30.0))
                continue
            if resp.status_code in (502, 503, 504) and idempotent and attempt < retries:
                time.sleep(min(0.2 * 2**attempt, 5.0))
                continue
            break
        return _body(resp)

    def close(self) -> None:
        self.client.close()


def _body(resp: httpx.Response) -> Any:
    """A response's JSON (None for 204); an error status raised as the error tree's exception."""
    if resp.status_code == 204:
        return None
    try:
        body = resp.json()
    except ValueError:
        body = {"message": resp.text}
    if resp.status_code >= 400:
        raise error_from_json(resp.status_code, body)
    return body


class _Resource:
    """``conn.experiments(id)`` and friends: a path with create/fetch/update/delete."""

    def __init__(self, conn: Connection, path: str) -> None:
        self._conn = conn
        self._path = path

    def _wrap(self, body: Any, params: Mapping[str, Any] | None = None) -> Any:
        if isinstance(body, Mapping) and body.get("object") == "pagination":
            def fetch_next(before: str) -> Pagination:
                return self._wrap(self._conn.request("GET", self._path, {**(params or {}), "before": before}),
                                  params)
            return Pagination(body, fetch_next)
        return ApiObject.wrap(body)

    def create(self, **body: Any) -> Any:
        return self._wrap(self._conn.request("POST", self._path, json=body))

    def create_idempotent(self, key: str | None = None, **body: Any) -> Any:
        """``create`` sent with an ``Idempotency-Key`` (a fresh one by default), so lost connections and
        timeouts are retried without creating anything twice."""
        import uuid

        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        return self._wrap(self._conn.request("POST", self._path, json=body, headers=headers))

    def create_batch(self, **body: Any) -> Any:
        return self._wrap(self._conn.request("POST", self._path + "/batch", json=body))

    def fetch(self, **params: Any) -> Any:
        return self._wrap(self._conn.request("GET", self._path, params), params)

    def update(self, **body: Any) -> Any:
        return self._wrap(self._conn.request("PUT", self._path, json=body))

    def delete(self, **params: Any) -> None:
        self._conn.request("DELETE", self._path, params)


class _ExperimentResource(_Resource):
    def _sub(self, name: str, sub_id: Any = None) -> _Resource:
        return _Resource(self._conn, f"{self._path}/{name}" + (f"/{sub_id}" if sub_id is not None else ""))

    def suggestions(self, suggestion_id: Any = None) -> _Resource:
        return self._sub("suggestions", suggestion_id)

    def queued_suggestions(self, queued_id: Any = None) -> _Resource:
        return self._sub("queued_suggestions", queued_id)

    def observations(self, observation_id: Any = None) -> _Resource:
        return self._sub("observations", observation_id)

    def best_assignments(self) -> _Resource:
        return self._sub("best_assignments")

    def stopping_criteria(self) -> _Resource:
        return self._sub("stopping_criteria")

    def metric_importances(self) -> _Resource:
        return self._sub("metric_importances")


class Connection:
    """A connection to assay.

    Args:
        url: server address (``http://host:port``); ``None`` (and no ``ASSAY_URL``) runs embedded.
        token: API token (sent as Bearer); defaults to ``ASSAY_TOKEN``.
        database_url: embedded only: the database (default ``sqlite:///$ASSAY_HOME/assay.db``).
        home: embedded only: the data folder (default ``$ASSAY_HOME`` or ``~/.assay``).
    """

    def __init__(self, url: str | None = None, token: str | None = None, *, database_url: str | None = None,
                 home: str | Path | None = None, timeout: float = 150.0) -> None:
        url = url or os.environ.get("ASSAY_URL") or None
        token = token or os.environ.get("ASSAY_TOKEN") or None
        self.url = url
        self._embedded = None
        if url is None:
            import warnings

            with warnings.catch_warnings():  # starlette nudges towards httpx2; httpx works the same here
                warnings.simplefilter("ignore")
                from starlette.testclient import TestClient

            from assay.config import Settings
            from assay.server.app import create_app

            kwargs: dict[str, Any] = {"precompute": False, "auth": False}  # your own process: no tokens
            if home is not None:
                kwargs["home"] = Path(home)
            if database_url is not None:
                kwargs["database_url"] = database_url
            self.settings = Settings(**kwargs)
            app = create_app(self.settings)
            test_client = TestClient(app, base_url="http://embedded", raise_server_exceptions=True)
            test_client.__enter__()
            self._embedded = test_client
            self._transport = _Transport(test_client)
            self.where = self.settings.resolved_database_url
        else:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            self._transport = _Transport(httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout))
            self.where = url

    @property
    def embedded(self) -> bool:
        return self._embedded is not None

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None, json: Any = None,
                headers: Mapping[str, str] | None = None) -> Any:
        """One API call (``path`` like ``/v1/experiments``); returns the decoded JSON or raises an AssayError."""
        return self._transport.request(method, path, params, json, headers=headers)

    def upload(self, url: str, content: bytes, *, headers: Mapping[str, str] | None = None,
               method: str = "PUT") -> Any:
        """Send bytes to an upload URL the server handed out (file artifacts); returns the file object."""
        try:
            resp = self._transport.client.request(method, url, content=content, headers=dict(headers or {}))
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"could not reach the assay server: {exc}") from exc
        return _body(resp)

    def close(self) -> None:
        if self._embedded is not None:
            self._embedded.__exit__(None, None, None)
            self._embedded = None
        else:
            self._transport.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- sigopt-style resources --------------------------------------------------------
    def experiments(self, experiment_id: Any = None) -> _ExperimentResource:
        path = "/v1/experiments" + (f"/{experiment_id}" if experiment_id is not None else "")
        return _ExperimentResource(self, path)

    def resource(self, path: str) -> _Resource:
        """Any other API path as a resource (``conn.resource("/v1/training_runs/3")``)."""
        return _Resource(self, path)

    # -- Pythonic API ------------------------------------------------------------------
    def create_experiment(self, **body: Any) -> Experiment:
        """Create an experiment (SigOpt's JSON as keyword arguments) and return its handle."""
        return Experiment(self, self.experiments().create(**body))

    def experiment(self, experiment_id: Any) -> Experiment:
        return Experiment(self, self.experiments(experiment_id).fetch())

    def health(self) -> Any:
        return ApiObject.wrap(self.request("GET", "/health"))


class Trial:
    """One suggestion handed to user code; :meth:`report` turns it into an observation."""

    def __init__(self, experiment: Experiment, suggestion: ApiObject) -> None:
        self.experiment = experiment
        self.suggestion = suggestion
        self.observation: ApiObject | None = None

    @property
    def id(self) -> str:
        return self.suggestion.id

    @property
    def assignments(self) -> ApiObject:
        return self.suggestion.assignments

    @property
    def task(self) -> Any:
        return self.suggestion.get("task")

    def report(self, value: float | Mapping[str, float] | None = None, *, stddev: float | None = None,
               failed: bool = False, metadata: Mapping[str, Any] | None = None) -> ApiObject:
        """Report a value (one metric), a ``{metric: value}`` dict, or ``failed=True``."""
        self.observation = self.experiment.observe(self.suggestion.id, value, stddev=stddev, failed=failed,
                                                   metadata=metadata)
        return self.observation


def _values(value: float | Mapping[str, Any] | None, stddev: float | None) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        out = []
        for name, v in value.items():
            if isinstance(v, tuple):
                out.append({"name": name, "value": float(v[0]), "value_stddev": v[1]})
            else:
                out.append({"name": name, "value": float(v)})
        return out
    return [{"value": float(value), "value_stddev": stddev}]


class Experiment:
    """A handle on one experiment with the suggest → evaluate → observe loop."""

    def __init__(self, conn: Connection, data: ApiObject) -> None:
        self.conn = conn
        self.data = data

    def __repr__(self) -> str:
        return f"Experiment(id={self.id}, name={self.data.name!r})"

    @property
    def id(self) -> str:
        return self.data.id

    @property
    def resource(self) -> _ExperimentResource:
        return self.conn.experiments(self.id)

    def fetch(self) -> ApiObject:
        self.data = self.resource.fetch()
        return self.data

    def suggest(self, **body: Any) -> ApiObject:
        return self.resource.suggestions().create_idempotent(**body)

    def observe(self, suggestion: Any = None, value: float | Mapping[str, Any] | None = None, *,
                assignments: Mapping[str, Any] | None = None, stddev: float | None = None,
                failed: bool = False, metadata: Mapping[str, Any] | None = None,
                task: str | None = None) -> ApiObject:
        body: dict[str, Any] = {"failed": failed}
        if suggestion is not None:
            body["suggestion"] = suggestion
        if assignments is not None:
            body["assignments"] = dict(assignments)
        vals = _values(value, stddev)
        if vals is not None:
            body["values"] = vals
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if task is not None:
            body["task"] = task
        return self.resource.observations().create_idempotent(**body)

    def best_assignments(self) -> list[ApiObject]:
        return list(self.resource.best_assignments().fetch().data)

    def observations(self) -> list[ApiObject]:
        return list(self.resource.observations().fetch(limit=1000).iterate_pages())

    def remaining(self) -> float:
        """Budget left (``inf`` without a budget)."""
        self.fetch()
        budget = self.data.observation_budget
        if budget is None:
            return math.inf
        return budget - self.data.progress.observation_budget_consumed

    def loop(self, max_trials: int | None = None) -> Iterator[Trial]:
        """Yield trials until the observation budget is spent (or ``max_trials``).

        A trial the loop body leaves unreported is reported as failed before the next one.
        """
        done = 0
        while (max_trials is None or done < max_trials) and self.remaining() > 0:
            trial = Trial(self, self.suggest())
            try:
                yield trial
            finally:
                if trial.observation is None:
                    try:
                        trial.report(failed=True, metadata={"reason": "not reported by the loop body"})
                    except AssayError:
                        pass
            done += 1

    def optimize(self, objective: Callable[..., Any], max_trials: int | None = None,
                 progress: Callable[[Trial], None] | None = None) -> list[ApiObject]:
        """Run ``objective(**assignments)`` over the budget; an exception makes a failed observation."""
        for trial in self.loop(max_trials):
            try:
                value = objective(**trial.assignments)
            except Exception as exc:  # the objective is user code: record the failure, keep going
                trial.report(failed=True, metadata={"error": f"{type(exc).__name__}: {exc}"[:500]})
            else:
                trial.report(value)
            if progress is not None:
                progress(trial)
        return self.best_assignments()
