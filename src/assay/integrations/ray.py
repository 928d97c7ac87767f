"""Ray: a Tune ``Searcher`` backed by an assay experiment, and a Ray worker pool.

Install with ``pip install "assay[ray]"``. Both work with an embedded or a remote connection;
only the driver talks to assay, the Ray workers just evaluate.

Ray Tune::

    from ray import tune
    from assay.integrations.ray import AssaySearch

    search = AssaySearch(conn.create_experiment(name="tune", parameters=[...],
                                                metrics=[{"name": "acc", "objective": "maximize"}],
                                                observation_budget=30, parallel_bandwidth=4))
    tune.Tuner(train, tune_config=tune.TuneConfig(search_alg=search, num_samples=30)).fit()

Plain Ray tasks, retried when a worker process dies::

    from assay.integrations.ray import optimize

    best = optimize(objective, experiment, num_workers=8)
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import ray
from ray.tune.search import Searcher

from assay.client import ApiObject, Connection, Experiment

__all__ = ["AssaySearch", "optimize"]


def _connect(where: Mapping[str, Any]) -> Connection:
    if where.get("url"):
        return Connection(where["url"])
    return Connection(database_url=where["database_url"])


def _where(conn: Connection) -> dict[str, Any]:
    # Tokens are never written into checkpoints: a restored remote searcher reads ASSAY_TOKEN.
    if conn.embedded:
        return {"database_url": conn.settings.resolved_database_url}
    return {"url": conn.url}


def _values(experiment: ApiObject, result: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    """The experiment's metrics found in a Tune result (None when one is missing or not finite)."""
    if not result:
        return None
    out = []
    for m in experiment.metrics:
        if m.get("strategy") == "store" and m.name not in result:
            continue
        v = result.get(m.name)
        if not isinstance(v, int | float) or not math.isfinite(v):
            return None
        out.append({"name": m.name, "value": float(v)})
    return out


class AssaySearch(Searcher):
    """A Ray Tune searcher whose trials are the suggestions of one assay experiment.

    Every suggestion and observation is sent with an idempotency key derived from the Tune trial
    id, so a restored searcher (or a retried call) never creates a second suggestion or
    observation for a trial. At most ``max_concurrent`` trials (default: the experiment's
    ``parallel_bandwidth``; unlimited without one) run at once; Tune's ``ConcurrencyLimiter`` and
    ``TuneConfig(max_concurrent_trials=...)`` set it too. ``suggest`` returns ``FINISHED`` once the
    observation budget is spent by observed and running trials.
    """

    def __init__(self, experiment: Experiment, *, max_concurrent: int | None = None,
                 metric: str | None = None, mode: str | None = None) -> None:
        data = experiment.fetch()
        names = [m.name for m in data.metrics]
        metric = metric or names[0]
        if mode is None:
            first = next(m for m in data.metrics if m.name == metric)
            mode = "min" if first.get("objective") == "minimize" else "max"
        super().__init__(metric=metric, mode=mode)
        self.experiment = experiment
        self.max_concurrent = max_concurrent or data.get("parallel_bandwidth") or 0
        self.live: dict[str, str] = {}  # Tune trial id -> assay suggestion id
        self.max_live_seen = 0

    # -- Tune hooks ----------------------------------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        # The experiment defines the space; a Tune param_space is not used.
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.max_concurrent = max_concurrent
        return True

    def suggest(self, trial_id: str) -> dict | str | None:  # type: ignore[override]  # Ray returns FINISHED (a str)
        if trial_id not in self.live:
            if self.max_concurrent and len(self.live) >= self.max_concurrent:
                return None
            exp = self.experiment.fetch()
            budget = exp.get("observation_budget")
            if budget is not None and exp.progress.observation_budget_consumed + len(self.live) >= budget:
                return Searcher.FINISHED
        s = self.experiment.resource.suggestions().create_idempotent(key=f"tune-{trial_id}")
        self.live[trial_id] = s.id
        self.max_live_seen = max(self.max_live_seen, len(self.live))
        return dict(s.assignments)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        sid = self.live.pop(trial_id, None)
        if sid is None:
            return
        values = None if error else _values(self.experiment.data, result)
        body: dict[str, Any] = {"suggestion": sid}
        if values is None:
            body["failed"] = True
            body["metadata"] = {"tune_trial": trial_id, "reason": "error" if error else "metric missing"}
        else:
            body["values"] = values
            body["metadata"] = {"tune_trial": trial_id}
        self.experiment.resource.observations().create_idempotent(key=f"tune-{trial_id}", **body)

    # -- checkpoints ---------------------------------------------------------------------
    def get_state(self) -> dict:
        return {"where": _where(self.experiment.conn), "experiment": self.experiment.id, "live": dict(self.live),
                "max_concurrent": self.max_concurrent, "metric": self._metric, "mode": self._mode}

    def set_state(self, state: dict) -> None:
        conn = _connect(state["where"])
        self.experiment = conn.experiment(state["experiment"])
        self.live = dict(state["live"])
        self.max_concurrent = state["max_concurrent"]
        self._metric, self._mode = state["metric"], state["mode"]
        self.max_live_seen = len(self.live)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))

    def __getstate__(self) -> dict:  # Tune pickles its search algorithm with the experiment state
        state = {k: v for k, v in self.__dict__.items() if k != "experiment"}
        state["_assay"] = self.get_state()
        return state

    def __setstate__(self, state: dict) -> None:
        assay_state = state.pop("_assay")
        self.__dict__.update(state)
        self.set_state(assay_state)

    @classmethod
    def from_checkpoint(cls, checkpoint_path: str) -> AssaySearch:
        """A searcher restored from :meth:`save` (reconnects to the same database or server)."""
        self = cls.__new__(cls)
        Searcher.__init__(self)
        self.max_live_seen = 0
        self.restore(checkpoint_path)
        return self


def _evaluate(objective: Callable[..., Any], assignments: dict[str, Any]) -> tuple[str, Any]:
    """Runs in a Ray worker: ("ok", value) or ("error", message) for an exception in user code."""
    try:
        return "ok", objective(**assignments)
    except Exception as exc:  # user code: becomes a failed observation
        return "error", f"{type(exc).__name__}: {exc}"[:500]


def optimize(objective: Callable[..., Any], experiment: Experiment, num_workers: int, *,
             max_trials: int | None = None, max_retries: int = 3,
             resources: Mapping[str, float] | None = None) -> list[ApiObject]:
    """Evaluate ``objective(**assignments)`` as Ray tasks, ``num_workers`` at a time, until the budget
    (or ``max_trials``) is spent; returns the best assignments.

    A task whose worker process dies (node lost, OOM kill, segfault) is re-run by Ray up to
    ``max_retries`` times; past that, and when ``objective`` raises, the trial is a failed
    observation with the reason in its metadata. ``objective`` returns one value, or a
    ``{metric: value}`` dict. Starts a local Ray when none is running.
    """
    from ray.exceptions import RayError

    if not ray.is_initialized():
        ray.init()
    task = ray.remote(_evaluate).options(max_retries=max_retries, retry_exceptions=False,
                                         **({"resources": dict(resources)} if resources else {}))
    obj_ref = ray.put(objective)
    running: dict[Any, Any] = {}  # ray ObjectRef -> assay suggestion
    started = 0

    def budget_left() -> bool:
        if max_trials is not None and started >= max_trials:
            return False
        left = experiment.remaining()
        return left - len(running) > 0

    while True:
        while len(running) < num_workers and budget_left():
            s = experiment.suggest()
            running[task.remote(obj_ref, dict(s.assignments))] = s
            started += 1
        if not running:
            break
        done, _ = ray.wait(list(running), num_returns=1)
        for ref in done:
            s = running.pop(ref)
            try:
                kind, value = ray.get(ref)
            except RayError as exc:  # the worker died more than max_retries times
                experiment.observe(s.id, failed=True, metadata={"error": f"{type(exc).__name__}"[:500]})
                continue
            if kind == "error":
                experiment.observe(s.id, failed=True, metadata={"error": value})
            else:
                experiment.observe(s.id, value)
    return experiment.best_assignments()
