"""Use cases shared by the server and the embedded client.

Each public method is one request: it parses and validates its input, runs in one
transaction (or, for suggestions, a short read, the optimizer outside any
transaction, then a short write) and returns domain objects.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assay import schemas
from assay.access import Principal, record
from assay.domain import (
    Experiment,
    MetricValue,
    Observation,
    ObservationColumns,
    Page,
    Parameter,
    Progress,
    QueuedSuggestion,
    Suggestion,
    Task,
    total_cost,
)
from assay.engine import Candidate, Problem
from assay.engine.analysis import best_observations, best_rows
from assay.engine.grid import MAX_GRID, grid_size
from assay.engine.importance import metric_importances, min_observations
from assay.engine.stopping import StoppingCriteria, stopping_criteria
from assay.engine.strategy import suggest
from assay.errors import AssayError, Conflict, Forbidden, InvalidRequest, NotFound, Unprocessable
from assay.space import Space
from assay.store import Store
from assay.store import repository as repo
from assay.validation import build_experiment, build_parameter, check_feasible

__all__ = ["Service", "space_of"]

MAX_PAGE = 1000
#: candidates the supplier keeps ahead per model experiment, at most
MAX_AHEAD = 4
#: random points kept in stock per random experiment (a burst of workers is served without waiting)
RANDOM_STOCK = 256
#: fewer fresh candidates than this after a claim wakes the supplier
LOW_WATER = 128
#: ``delete_candidates(below_basis=...)`` that drops every model candidate (not the random stock)
_ALL_BASES = 2**62


def space_of(exp: Experiment) -> Space:
    return Space(exp.parameters, exp.conditionals, exp.linear_constraints)


def conform_assignments(space: Space, a: dict[str, Any]) -> dict[str, Any] | None:
    """``a`` as the current space sees it: parameters added later take their ``default_value``,
    removed ones are dropped; ``None`` when ``a`` uses a removed categorical or conditional value."""
    out: dict[str, Any] = {}
    for c in space.conditionals:
        if a.get(c.name) not in c.values:
            return None
        out[c.name] = a[c.name]
    for p in space.active(out):
        v = a.get(p.name, p.default_value)
        if v is None or (p.type == "categorical" and v not in p.categorical_values):
            return None
        out[p.name] = v
    return out


def _conform(space: Space, o: Observation) -> Observation | None:
    a = conform_assignments(space, o.assignments)
    return None if a is None else dataclasses.replace(o, assignments=a)


def _refuse_fixed_fields(exp: Experiment, upd: schemas.ExperimentUpdate) -> None:
    """400 for fields SigOpt never lets change (sending the current value is fine)."""
    if upd.type is not None and upd.type != exp.type:
        raise InvalidRequest(f"type cannot be changed after an experiment is created (it is {exp.type!r})",
                             field="type")
    if upd.num_solutions is not None and upd.num_solutions != (exp.num_solutions or 1):
        raise InvalidRequest("num_solutions cannot be changed after an experiment is created", field="num_solutions")
    current = exp.to_json()
    for name in ("conditionals", "linear_constraints", "tasks"):
        given = getattr(upd, name)
        if given is None:
            continue
        if _canonical(name, given) != _canonical(name, current[name] or []):
            raise InvalidRequest(f"{name} cannot be changed after an experiment is created", field=name)


def _canonical(name: str, items: list[Any]) -> Any:
    try:
        if name == "conditionals":
            return sorted((c["name"], tuple(v["name"] if isinstance(v, dict) else v for v in c["values"]))
                          for c in items)
        if name == "linear_constraints":
            return sorted((c["type"], float(c["threshold"]),
                           tuple(sorted((t["name"], float(t["weight"])) for t in c["terms"]))) for c in items)
        return sorted((t["name"], float(t["cost"])) for t in items)
    except (KeyError, TypeError, ValueError):
        raise InvalidRequest(f"{name} cannot be changed after an experiment is created", field=name) from None


def _check_direct(exp: Experiment, what: str) -> None:
    """An AI experiment (runs only) gets its suggestions and observations through runs, as in SigOpt (403)."""
    if exp.runs_only:
        raise Forbidden(f"{what} cannot be created directly for experiment {exp.id}: it is an AI experiment "
                        f"(runs only); create runs instead (POST /v1/aiexperiments/{exp.id}/training_runs), "
                        "each gets a suggestion and becomes an observation when it ends", field="experiment")


def _int_id(value: Any, what: str) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise NotFound(f"{what} {value!r} does not exist", field=what) from None
    if out <= 0 or out > 2**62:
        raise NotFound(f"{what} {value!r} does not exist", field=what)
    return out


def _idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= 200:
        raise InvalidRequest("Idempotency-Key must be 1 to 200 characters", field="idempotency_key")
    return key


def _page_args(limit: int | None, before: Any, after: Any) -> tuple[int, int | None, int | None]:
    if limit is None:
        limit = 100
    if not 0 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 0 and {MAX_PAGE}", field="limit")
    b = None if before in (None, "") else _cursor(before, "before")
    a = None if after in (None, "") else _cursor(after, "after")
    return limit, b, a


def _cursor(v: Any, name: str) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{name} must be a paging marker from a previous page", field=name) from None


#: observations committed out of id order (a transaction that took its id earlier committed later)
#: are found without rereading everything when their id is at most this far below the newest one
LATE_WINDOW = 4096
#: observation summaries kept per experiment (concurrent reads see snapshots a few commits apart)
KEPT_SUMMARIES = 4


@dataclass(frozen=True)
class _Summary:
    """What progress and best assignments need from an experiment's observations."""

    basis: tuple  # (metrics and tasks, observations_version) it was computed under
    count: int = 0
    last_id: int = 0
    failed: int = 0
    cost: float = 0.0
    first: Observation | None = None
    last: Observation | None = None
    best: tuple[Observation, ...] = ()
    recent: frozenset[int] = frozenset()  # summarized ids, at least those above last_id - LATE_WINDOW

    def extend(self, new: list[Observation], exp: Experiment) -> _Summary:
        """Add observations not yet summarized (newer ones, or late ones in the window): the best
        of (best so far + new) is the best of all (single best, Pareto front and feasible sets all
        compose this way)."""
        if not new:
            return self
        new = sorted(new, key=lambda o: o.id)
        last = new[-1] if self.last is None or new[-1].id > self.last.id else self.last
        first = new[0] if self.first is None or new[0].id < self.first.id else self.first
        recent = self.recent.union(o.id for o in new)
        if len(recent) > 2 * LATE_WINDOW:  # ids below the window are never asked about: drop them now and then
            floor = last.id - LATE_WINDOW
            recent = frozenset(i for i in recent if i > floor)
        return replace(
            self, count=self.count + len(new), last_id=last.id,
            failed=self.failed + sum(o.failed for o in new),
            cost=total_cost([self.cost, *(o.task.cost if o.task else 1.0 for o in new)]),
            first=first, last=last,
            best=tuple(best_observations([*self.best, *new], exp.metrics, exp.tasks)), recent=recent)


def _page(items: list[Any], total: int, limit: int) -> Page:
    before = str(items[-1].id) if items and len(items) == limit else None
    return Page(items, total, before=before)


class Service:
    """The use cases over one :class:`~assay.store.Store`."""

    def __init__(self, store: Store, *, suggest_fn: Callable[[Problem, int], list[Candidate]] = suggest,
                 seed: int | None = None) -> None:
        self.store = store
        self._suggest = suggest_fn
        # With a fixed seed every experiment's random stream is reproducible (ASSAY_SEED); otherwise random.
        self._seed = seed
        with store.write() as s:
            repo.ensure_client(s)
        # Precomputes suggestions off the request path (the server attaches one, see assay.supply).
        self.supplier: Any = None
        self._importances: dict[int, tuple[Any, Any]] = {}  # experiment id -> (data key, importances)
        self._importances_lock = threading.Lock()
        self._summaries: dict[int, tuple[_Summary, ...]] = {}  # experiment id -> recent summaries (see _summary)
        self._summaries_lock = threading.Lock()
        # experiment id -> (experiment, digest of its stored definition) last read (see create_observation)
        self._shapes: dict[int, tuple[Experiment, str]] = {}
        # Called with an experiment id after every change that new suggestions should see.
        self.on_change: list[Callable[[int], None]] = []

    def _changed(self, experiment_id: int) -> None:
        for cb in self.on_change:
            cb(experiment_id)

    # -- experiments -------------------------------------------------------------------
    def _summary(self, s: Session, exp: Experiment) -> _Summary:
        """Counts, first/last and best observations, from a cache that a cheap SQL aggregate
        (count, newest id, version) validates; only observations newer than the cached ones are read.
        A few recent summaries are kept per experiment: a request whose snapshot is older than the
        newest one (a concurrent request took a later snapshot and finished first) extends an older one."""
        count, last_id, version = repo.observation_marker(s, exp.id)
        basis = (repr((exp.metrics, exp.tasks)), version)
        with self._summaries_lock:
            kept = self._summaries.get(exp.id, ())
        cached = next((c for c in reversed(kept) if c.basis == basis and c.last_id <= last_id and c.count <= count),
                      None)
        if cached is not None:
            if cached.count == count and cached.last_id == last_id:
                return cached
            new = repo.observations_after(s, exp.id, cached.last_id) if last_id > cached.last_id else []
            if cached.count + len(new) != count:  # some committed late, below the cached newest id
                floor = cached.last_id - LATE_WINDOW
                late = [i for i in repo.observation_ids_after(s, exp.id, max(0, floor))
                        if i <= cached.last_id and i not in cached.recent]
                if cached.count + len(new) + len(late) == count:
                    new += repo.observations_by_id(s, exp.id, late)
            if cached.count + len(new) == count:
                out = cached.extend(new, exp)
                self._remember(exp.id, out)
                return out
        out = _Summary(basis).extend(repo.all_observations(s, exp.id), exp)
        self._remember(exp.id, out)
        return out

    def _remember(self, eid: int, summary: _Summary) -> None:
        """Keep ``summary`` among the experiment's :data:`KEPT_SUMMARIES` newest (those of another basis go)."""
        with self._summaries_lock:
            kept = [c for c in self._summaries.pop(eid, ()) if c.basis == summary.basis
                    and (c.count, c.last_id) != (summary.count, summary.last_id)]
            kept.append(summary)
            kept.sort(key=lambda c: (c.last_id, c.count))
            self._summaries[eid] = tuple(kept[-KEPT_SUMMARIES:])
            while len(self._summaries) > 1024:
                self._summaries.pop(next(iter(self._summaries)))

    def _progress(self, s: Session, exp: Experiment) -> Progress:
        open_count = repo.count_open_suggestions(s, exp.id)
        return self._progress_of(self._summary(s, exp), open_count)

    @staticmethod
    def _progress_of(sm: _Summary, open_count: int) -> Progress:
        if sm.count == 0:
            return Progress(open_suggestion_count=open_count)
        return Progress(
            observation_count=sm.count, observation_budget_consumed=sm.cost, failed_observation_count=sm.failed,
            open_suggestion_count=open_count, first_observation=sm.first, last_observation=sm.last,
            best_observation=sm.best[0] if len(sm.best) == 1 else None,
        )

    def _with_progress(self, s: Session, exp: Experiment) -> Experiment:
        return Experiment(**{**exp.__dict__, "progress": self._progress(s, exp)})

    def create_experiment(self, body: Any, *, client_id: int = 1, development: bool = False,
                          actor: Principal | None = None) -> Experiment:
        parsed = schemas.parse(schemas.ExperimentCreate, body)
        exp = build_experiment(parsed, client_id=client_id, development=development)
        with self.store.write() as s:
            repo.ensure_client(s, client_id)
            seed = secrets.randbits(31) if self._seed is None else self._seed
            created = repo.insert_experiment(s, exp, seed=seed)
            record(s, actor, "experiment.create", "experiment", created.id, {"name": created.name},
                   client_id=client_id)
            return self._with_progress(s, created)

    def get_experiment(self, experiment_id: Any, *, client_id: int | None = None) -> Experiment:
        eid = _int_id(experiment_id, "experiment")
        if self.store.single_statements and (hot := self._hot_experiment(eid, client_id)) is not None:
            return hot
        with self.store.read() as s:
            exp, _, _ = repo.get_experiment(s, eid, client_id=client_id)
            return self._with_progress(s, exp)

    def _hot_experiment(self, eid: int, client_id: int | None) -> Experiment | None:
        """The experiment with its progress in one statement (PostgreSQL), extending the newest kept
        summary by the observations above it; None when the general path must answer (no summary kept,
        not found, another basis, observations committed late or edited...)."""
        with self._summaries_lock:
            kept = self._summaries.get(eid, ())
        if not kept:
            return None
        base = kept[-1]
        with self.store.autocommit(read=True) as conn:
            got = repo.hot_read_experiment(conn, eid, client_id=client_id, after=base.last_id)
        if got is None:
            return None
        exp, (count, last_id, version), open_count, newer = got
        if base.basis != (repr((exp.metrics, exp.tasks)), version) or base.last_id > last_id \
                or base.count + len(newer) != count:
            return None
        sm = base
        if newer:
            sm = base.extend(newer, exp)
            self._remember(eid, sm)
        return Experiment(**{**exp.__dict__, "progress": self._progress_of(sm, open_count)})

    def list_experiments(self, *, client_id: int | None = None, state: str | None = None,
                         project: str | None = None, limit: int | None = None, before: Any = None,
                         after: Any = None) -> Page:
        if state not in (None, "active", "deleted", "all"):
            raise InvalidRequest("state must be active, deleted or all", field="state")
        lim, b, a = _page_args(limit, before, after)
        with self.store.read() as s:
            exps, total = repo.list_experiments(
                s, client_id=client_id, state=None if state == "all" else (state or "active"), project=project,
                limit=lim, before=b, after=a)
            return _page([self._with_progress(s, e) for e in exps], total, lim)

    def update_experiment(self, experiment_id: Any, body: Any, *, client_id: int | None = None,
                          actor: Principal | None = None) -> Experiment:
        eid = _int_id(experiment_id, "experiment")
        upd = schemas.parse(schemas.ExperimentUpdate, body)
        with self.store.write() as s:
            exp, _, _ = repo.get_experiment(s, eid, lock=True, client_id=client_id)
            _refuse_fixed_fields(exp, upd)
            fields: dict[str, Any] = {}
            if upd.name is not None:
                fields["name"] = upd.name
            if upd.state is not None:
                fields["state"] = upd.state
            budget = upd.observation_budget if upd.observation_budget is not None else upd.budget
            if budget is not None:
                if exp.type == "grid":
                    raise InvalidRequest("the budget of a grid experiment is the grid size", field="observation_budget")
                fields["observation_budget"] = budget
            if upd.parallel_bandwidth is not None:
                fields["parallel_bandwidth"] = upd.parallel_bandwidth
            if "metadata" in upd.model_fields_set:
                fields["metadata"] = upd.metadata
            if "project" in upd.model_fields_set:
                fields["project"] = upd.project
            definition = exp.definition()
            if upd.parameters is not None:
                definition["parameters"] = self._updated_parameters(s, exp, upd.parameters)
                if exp.type == "grid":
                    if "observation_budget" in fields:
                        raise InvalidRequest("the budget of a grid experiment is the grid size",
                                             field="observation_budget")
                    fields["observation_budget"] = grid_size([Parameter.from_json(p)
                                                              for p in definition["parameters"]])
            if upd.metrics is not None:
                definition["metrics"] = self._updated_metrics(exp, upd.metrics)
            if upd.parameters is not None or upd.metrics is not None:
                fields["definition"] = definition
            repo.update_experiment(s, eid, **fields)
            if "definition" in fields or "parallel_bandwidth" in fields:
                repo.delete_candidates(s, eid)  # computed for the old space or batch size
            record(s, actor, "experiment.update", "experiment", eid,
                   {"fields": sorted(upd.model_fields_set)}, client_id=exp.client_id)
            new, _, _ = repo.get_experiment(s, eid)
            out = self._with_progress(s, new)
        self._changed(eid)
        return out

    def _updated_parameters(self, s: Session, exp: Experiment, raw: list[schemas.ParameterIn]) -> list[dict]:
        """SigOpt's parameter update rules: add (with default_value), remove, change bounds, grid, prior,
        remove categorical values; never change type, transformation or conditions."""
        cond = {c.name: c.values for c in exp.conditionals}
        if not raw:
            raise InvalidRequest("parameters must list at least one parameter", field="parameters")
        new = [build_parameter(p, f"parameters[{i}]", cond) for i, p in enumerate(raw)]
        seen: set[str] = set()
        for i, p in enumerate(new):
            if p.name in seen:
                raise InvalidRequest(f"Duplicate name {p.name!r} in parameters", field=f"parameters[{i}].name")
            if p.name in cond:
                raise InvalidRequest(f"parameter {p.name!r} has the name of a conditional",
                                     field=f"parameters[{i}].name")
            seen.add(p.name)
        old = {p.name: p for p in exp.parameters}
        for i, p in enumerate(new):
            f = f"parameters[{i}]"
            if p.name in old:
                o = old[p.name]
                if p.type != o.type:
                    raise InvalidRequest(f"{f}: the type of {p.name!r} cannot change ({o.type})", field=f"{f}.type")
                if p.transformation != o.transformation:
                    raise InvalidRequest(f"{f}: the transformation of {p.name!r} cannot change",
                                         field=f"{f}.transformation")
                if p.conditions != o.conditions:
                    raise InvalidRequest(f"{f}: conditions of {p.name!r} cannot change", field=f"{f}.conditions")
                if p.type == "categorical" and not set(p.categorical_values) <= set(o.categorical_values):
                    raise InvalidRequest(f"{f}: categorical values can be removed, not added",
                                         field=f"{f}.categorical_values")
            elif p.default_value is None:
                raise InvalidRequest(f"{f}: a parameter added later needs a default_value",
                                     field=f"{f}.default_value")
        names = {p.name for p in new}
        for lc in exp.linear_constraints:
            for n, _ in lc.terms:
                if n not in names:
                    raise InvalidRequest(f"parameter {n!r} is used by a linear constraint and cannot be removed",
                                         field="parameters")
                p = next(p for p in new if p.name == n)
                if p.grid:
                    raise InvalidRequest(f"parameter {n!r} is used by a linear constraint and cannot have a grid",
                                         field="parameters")
        if exp.type == "grid":
            for i, p in enumerate(new):
                if p.type != "categorical" and not p.grid:
                    raise InvalidRequest("a grid experiment needs grid values on every double and int parameter",
                                         field=f"parameters[{i}].grid")
            if grid_size(new) > MAX_GRID:
                raise InvalidRequest(f"the grid has {grid_size(new)} points; at most {MAX_GRID} are allowed",
                                     field="parameters")
        if exp.num_solutions and exp.num_solutions > 1 and any(p.type == "categorical" for p in new):
            raise InvalidRequest("num_solutions does not support categorical parameters", field="parameters")
        check_feasible(tuple(new), exp.conditionals, exp.linear_constraints)
        return [p.to_storage() for p in new]

    def _updated_metrics(self, exp: Experiment, raw: list[schemas.MetricIn | str]) -> list[dict]:
        old = {m.name: m for m in exp.metrics}
        items = [schemas.MetricIn(name=m) if isinstance(m, str) else m for m in raw]
        if {m.name for m in items} != set(old) or len(items) != len(old):
            raise InvalidRequest("metrics cannot be added, removed or renamed; only thresholds can change",
                                 field="metrics")
        out = []
        for i, m in enumerate(items):
            o = old[m.name]
            if "objective" in m.model_fields_set and m.objective != o.objective:
                raise InvalidRequest("a metric's objective cannot change", field=f"metrics[{i}].objective")
            if "strategy" in m.model_fields_set and m.strategy != o.strategy:
                raise InvalidRequest("a metric's strategy cannot change", field=f"metrics[{i}].strategy")
            new = type(o)(o.name, o.objective, o.strategy, m.threshold if "threshold" in m.model_fields_set
                          else o.threshold)
            out.append(new)
        from assay.validation import build_metrics

        checked = build_metrics([schemas.MetricIn(**m.to_json()) for m in out], None)
        return [m.to_json() for m in checked]

    def delete_experiment(self, experiment_id: Any, *, client_id: int | None = None,
                          actor: Principal | None = None) -> None:
        eid = _int_id(experiment_id, "experiment")
        with self.store.write() as s:
            exp, _, _ = repo.get_experiment(s, eid, lock=True, client_id=client_id)
            repo.update_experiment(s, eid, state="deleted")
            record(s, actor, "experiment.delete", "experiment", eid, client_id=exp.client_id)
        self._changed(eid)

    # -- suggestions -------------------------------------------------------------------
    def _task(self, exp: Experiment, raw: Any, where: str = "task") -> Task | None:
        if raw is None:
            if exp.tasks:
                raise InvalidRequest(f"{where} is required: this experiment has tasks "
                                     f"{[t.name for t in exp.tasks]}", field=where)
            return None
        name = raw if isinstance(raw, str) else raw.name
        if not exp.tasks:
            raise InvalidRequest(f"{where} given, but this experiment has no tasks", field=where)
        for t in exp.tasks:
            if t.name == name:
                return t
        raise InvalidRequest(f"{where}: unknown task {name!r}; known: {[t.name for t in exp.tasks]}", field=where)

    def problem(self, s: Session, exp: Experiment, seed: int, n_suggested: int,
                random_only: bool = False) -> Problem:
        space = space_of(exp)
        obs = [o for o in (_conform(space, o) for o in repo.all_observations(s, exp.id)) if o is not None]
        pending, _ = repo.list_suggestions(s, exp.id, state="open")
        open_ = [(a, p.task) for a, p in ((conform_assignments(space, p.assignments), p) for p in pending)
                 if a is not None]
        return Problem(
            space=space, metrics=exp.metrics, observations=obs, pending=[a for a, _ in open_],
            experiment_type=exp.type, tasks=exp.tasks,
            observation_budget=exp.observation_budget, parallel_bandwidth=exp.bandwidth, seed=seed,
            n_suggested=n_suggested, random_only=random_only or exp.development,
            pending_tasks=[t for _, t in open_], num_solutions=exp.num_solutions or 1,
        )

    def create_suggestion(self, experiment_id: Any, body: Any = None, *, client_id: int | None = None,
                          random_only: bool = False, idempotency_key: str | None = None,
                          for_run: bool = False) -> Suggestion:
        """A new open suggestion, made in one write transaction. With ``idempotency_key``, a retry
        returns the suggestion the first request made (SigOpt keeps serving beyond
        ``parallel_bandwidth``; so does assay).

        Served (a supplier runs): a precomputed candidate is claimed from the database, so any server
        process serves any candidate exactly once; when none is fresh enough the request waits for the
        supplier (at most ``suggestion_timeout``), then takes a stale one or a random point, with the
        reason in ``source``. Otherwise (embedded, development tokens, grids) the point is computed here.
        An AI experiment's suggestions are made only for its runs (``for_run``).
        """
        eid = _int_id(experiment_id, "experiment")
        req = schemas.parse(schemas.SuggestionCreate, body)
        key = _idempotency_key(idempotency_key)
        sup = self.supplier
        if sup is not None and self.store.single_statements and req.assignments is None and not random_only \
                and not for_run:
            try:
                hot = self._hot_suggestion(eid, req, key, client_id)
            except IntegrityError:
                return self._prior_suggestion(eid, key)
            if hot is not None:
                return hot
        deadline = None if sup is None else time.monotonic() + sup.timeout
        stale_ok = False
        floor: list[int] = []  # the freshness the request asks for, fixed when it first looks
        while True:
            try:
                out = self._suggest_from_store(eid, req, key, client_id, random_only, stale_ok, floor, for_run)
            except IntegrityError:
                out = self._prior_suggestion(eid, key)
            if isinstance(out, Suggestion):
                if out.source == "user" or (out.source or "").startswith("queued:"):
                    self._changed(eid)  # its candidates were dropped: precompute for the new pending point
                break
            if out == "inline" or sup is None or deadline is None:
                out = self._suggest_inline(eid, req, key, client_id, random_only, for_run=for_run)
                break
            left = deadline - time.monotonic()
            if left > 0 and not sup.stopping:
                sup.wait(eid, left)
            elif not stale_ok:
                stale_ok = True
            else:
                out = self._suggest_inline(eid, req, key, client_id, random_only, for_run=for_run,
                                           fallback=f"fallback-random: no model suggestion within {sup.timeout:g}s")
                break
        return out

    def _hot_suggestion(self, eid: int, req: schemas.SuggestionCreate, key: str | None, client_id: int | None
                        ) -> Suggestion | None:
        """A stocked random point claimed in one statement (PostgreSQL); None when the general path must
        answer (not a random experiment, not active, queued suggestions, no stock, not found...)."""
        with self.store.autocommit() as conn:
            exp, digest, out, refill = repo.hot_suggest(conn, eid, client_id=client_id, metadata=req.metadata,
                                                        idempotency_key=key)
        if exp is not None:
            self._remember_shape(exp, digest)
        if refill and self.supplier is not None:
            self.supplier.notify(eid)  # the stock runs low: compute more for the next requests
        return out

    def _remember_shape(self, exp: Experiment, digest: str) -> None:
        """What :meth:`create_observation` checks values against before its one-statement path."""
        with self._summaries_lock:
            self._shapes.pop(exp.id, None)
            self._shapes[exp.id] = (exp, digest)
            while len(self._shapes) > 1024:
                self._shapes.pop(next(iter(self._shapes)))

    def _prior_suggestion(self, eid: int, key: str | None) -> Suggestion:
        """After a unique-key violation: the suggestion a concurrent request with the same key made."""
        if key is not None:
            with self.store.read() as s:
                prior = repo.find_suggestion_by_key(s, eid, key)
            if prior is not None:
                return prior
        raise Conflict("a concurrent request made this suggestion", field="idempotency_key")

    def _pooled(self, exp: Experiment, random_only: bool) -> bool:
        """Whether suggestions of ``exp`` come from precomputed candidates."""
        return (self.supplier is not None and not random_only and not exp.development
                and exp.type != "grid")

    def _suggest_from_store(self, eid: int, req: schemas.SuggestionCreate, key: str | None,
                            client_id: int | None, random_only: bool, stale_ok: bool, floor: list[int],
                            for_run: bool = False) -> Suggestion | str:
        """One write transaction: the prior suggestion for ``key``, a user-made or queued one, or a
        claimed candidate; ``"wait"`` when no candidate is ready, ``"inline"`` to compute one here."""
        with self.store.write() as s:
            # No experiment row lock: claims skip each other's rows and commit together. A retried key
            # is found by the unique constraint (IntegrityError: see create_suggestion), not a lookup.
            exp, n_queued = repo.experiment_for_suggestion(s, eid, client_id=client_id)
            if not for_run:
                _check_direct(exp, "Suggestions")
            self._check_active(exp)
            if req.assignments is not None:  # a user-made suggestion
                a = space_of(exp).validate_assignments(req.assignments)
                task = self._task(exp, req.task)
                out = repo.insert_suggestion(s, eid, a, task=task, metadata=req.metadata, source="user",
                                             idempotency_key=key)
                repo.bump_suggested(s, eid)
                self._pending_changed(s, exp)
                return out
            if n_queued and (q := self._pop_valid_queued(s, exp)) is not None:
                self._pending_changed(s, exp)
                return repo.insert_suggestion(s, eid, q.assignments, task=q.task, metadata=req.metadata,
                                              source=f"queued:{q.id}", idempotency_key=key)
            if not self._pooled(exp, random_only):
                return "inline"
            if exp.type != "random" and not floor:
                # fresh = saw every observation stored before this request came (fair to a slow model:
                # observations arriving while it waits do not push the goal further away)
                floor.append(self._min_basis(s, exp))
            min_basis = None if stale_ok or exp.type == "random" else floor[0]
            got = repo.claim_candidate(s, eid, min_basis)
            if got is None:
                if key is not None and (prior := repo.find_suggestion_by_key(s, eid, key)) is not None:
                    return prior  # a retry: answer now rather than wait for a candidate
                return "wait"
            a, task, source, basis, refill = got
            if stale_ok and basis >= 0 and floor and basis < floor[0]:
                source = (f"{source}; stale: computed before the latest observations "
                          f"(the model took over {self.supplier.timeout:g}s)")
                if exp.bandwidth == 1:  # it may have been stored stale, its position not taken (see supply_stock)
                    repo.bump_suggested(s, eid)
            out = repo.insert_suggestion(s, eid, a, task=task, metadata=req.metadata, source=source,
                                         idempotency_key=key)
        if refill and self.supplier is not None:
            self.supplier.notify(eid)  # the stock runs low: compute more for the next requests
        return out

    def _pending_changed(self, s: Session, exp: Experiment) -> None:
        """The open suggestions changed other than by claiming a candidate or observing one (a user-made,
        queued or inline suggestion opened, open ones deleted): stored model candidates were computed
        for the old pending points, so they are stale (random stock is not: it ignores pending points).
        The supplier is told after the commit (``_changed``) or by the next request's wait."""
        if self._pooled(exp, False) and exp.type != "random":
            repo.delete_candidates(s, exp.id, below_basis=_ALL_BASES)

    def _min_basis(self, s: Session, exp: Experiment) -> int:
        """Candidates computed on fewer observations than this are stale: with parallel_bandwidth B,
        up to B - 1 newer observations may be unseen (they were pending when it was computed)."""
        count, _, _ = repo.observation_marker(s, exp.id)
        return count - (exp.bandwidth - 1)

    def _suggest_inline(self, eid: int, req: schemas.SuggestionCreate, key: str | None, client_id: int | None,
                        random_only: bool, fallback: str | None = None, for_run: bool = False) -> Suggestion:
        """Compute the point in this request: read, compute outside any transaction, then one write that
        takes the position in the quasi-random sequence only if no concurrent request took it first."""
        for attempt in range(8):
            with self.store.read() as s:
                exp, seed, n = repo.get_experiment(s, eid, client_id=client_id)
                if not for_run:
                    _check_direct(exp, "Suggestions")
                problem = self.problem(s, exp, seed, n, random_only or fallback is not None)
            cand = self._suggest(problem, 1)[0]
            source = fallback or cand.source
            # a sequence position (initial design, random, grid) must not be served twice; a model point
            # computed while another suggestion opened is as good as a precomputed one
            positional = cand.source.startswith(("sobol", "random", "grid", "fallback", "lhs"))
            try:
                with self.store.write() as s:
                    exp, _, now_n = repo.get_experiment(s, eid, lock=True, client_id=client_id)
                    if key is not None and (prior := repo.find_suggestion_by_key(s, eid, key)) is not None:
                        return prior
                    self._check_active(exp)
                    if now_n != n and positional and attempt < 7:
                        continue  # a concurrent request used this position: compute the next one
                    repo.bump_suggested(s, eid)
                    self._pending_changed(s, exp)
                    return repo.insert_suggestion(s, eid, cand.assignments, task=cand.task, metadata=req.metadata,
                                                  source=source, idempotency_key=key)
            except IntegrityError:
                return self._prior_suggestion(eid, key)
        raise AssertionError("unreachable")

    # -- supply (precomputed candidates; driven by assay.supply.Supplier) ---------------------
    def supply_plan(self, experiment_id: int, owner: str, lease: float, asked: bool | Callable[[], bool]
                    ) -> tuple[Problem, int, int] | None:
        """What to compute for an experiment: ``(problem, how many, basis)``, holding its supply lease
        (give it back with :meth:`supply_stock` or :meth:`supply_release`); None when nothing is needed
        (enough fresh candidates, bandwidth used up, not served from candidates) or another process
        computes. ``asked``: a request is waiting, so compute at least one; a callable is asked after
        the database is read (a request stops waiting before it claims: see :meth:`Supplier.asked`)."""
        with self.store.read() as s:  # decide without writing (most wake-ups need nothing)
            if self._plan(s, experiment_id, asked, build=False) is None:
                return None
        with self.store.write() as s:
            if not repo.take_supply_lease(s, experiment_id, owner, time.time() + lease, time.time()):
                return None
        try:
            with self.store.read() as s:  # again under the lease: the last holder may have stocked
                plan = self._plan(s, experiment_id, asked)
        except BaseException:
            self.supply_release(experiment_id, owner)
            raise
        if plan is None:
            self.supply_release(experiment_id, owner)
        return plan

    def _plan(self, s: Session, experiment_id: int, asked: bool | Callable[[], bool], build: bool = True
              ) -> tuple[Problem, int, int] | None:
        """The plan, or None; with ``build=False`` only whether there is one (the problem left unread).
        ``asked`` is evaluated only after the counts are read."""
        def waiting() -> bool:
            return asked() if callable(asked) else asked

        try:
            exp, seed, n_sug = repo.get_experiment(s, experiment_id)
        except NotFound:
            return None
        if exp.state != "active" or not self._pooled(exp, False):
            return None
        if exp.type == "random":  # any random point stays valid: keep a stock
            have = repo.count_candidates(s, experiment_id, None, limit=RANDOM_STOCK)
            if have >= RANDOM_STOCK or (have > LOW_WATER and not waiting()):
                return None
            problem = Problem(space=space_of(exp), metrics=exp.metrics, experiment_type=exp.type,
                              tasks=exp.tasks, seed=seed, n_suggested=n_sug, random_only=True,
                              parallel_bandwidth=exp.bandwidth)
            return problem, RANDOM_STOCK - have, -1
        count, _, _ = repo.observation_marker(s, experiment_id)
        fresh = repo.count_candidates(s, experiment_id, count - (exp.bandwidth - 1))
        open_count = repo.count_open_suggestions(s, experiment_id)
        want = min(MAX_AHEAD, exp.bandwidth - open_count) - fresh
        if want <= 0 and (fresh > 0 or not waiting()):
            return None
        if not build:
            return Problem(space_of(exp), exp.metrics), max(1, want), count
        problem = self.problem(s, exp, seed, n_sug)
        if fresh:  # candidates in stock will be served too: new ones must keep away from them
            space = problem.space
            stock = [(a, t) for a, t in ((conform_assignments(space, a), t) for a, t in
                                         repo.list_candidates(s, experiment_id, count - (exp.bandwidth - 1)))
                     if a is not None]
            problem = replace(problem, pending=[*problem.pending, *(a for a, _ in stock)],
                              pending_tasks=[*problem.pending_tasks, *(t for _, t in stock)])
        return problem, max(1, want), count

    def supply_stock(self, experiment_id: int, owner: str, problem: Problem, cands: list[Candidate], basis: int
                     ) -> None:
        """Store candidates computed for ``problem`` (unless the experiment changed meanwhile), drop
        ones now stale, and give the lease back.

        With parallel_bandwidth 1 a sequential client must get exactly what inline computation on the
        state it sees gives. Candidates computed on a state that changed meanwhile (observations or open
        suggestions) are kept only as stale ones, for a request that waited out the timeout: their basis
        says so and they take no position in the sequence until one is served (see
        :meth:`_suggest_from_store`), so the next fresh candidate is computed on the positions inline
        computation would use."""
        with self.store.write() as s:
            exp, _, _ = repo.get_experiment(s, experiment_id)
            same = (exp.parameters, exp.conditionals, exp.linear_constraints, exp.metrics, exp.tasks,
                    exp.bandwidth) == (problem.space.parameters, problem.space.conditionals,
                                       problem.space.linear_constraints, problem.metrics, problem.tasks,
                                       problem.parallel_bandwidth)
            positions = len(cands)
            count = self._changed_count(s, exp, problem, basis) if same and basis >= 0 and exp.bandwidth == 1 else None
            if count is not None:  # stale already: never judged fresh (basis below the count), no position taken
                basis, positions, same = min(basis, count - 1), 0, count > 0
            if same and exp.state == "active":
                if basis >= 0:  # a point opened or stocked while this was computed is not offered twice
                    space = problem.space
                    open_, _ = repo.list_suggestions(s, experiment_id, state="open")
                    taken = {space.key(o.assignments) for o in open_}
                    # (stale stock is not: it is served only to a request that waited out the time-out)
                    stock = repo.list_candidates(s, experiment_id, basis - (exp.bandwidth - 1))
                    taken |= {space.key(a) for a, _ in stock}
                    kept: list[Candidate] = []
                    for c in cands:
                        if (k := space.key(c.assignments)) not in taken:
                            taken.add(k)
                            kept.append(c)
                    cands = kept
                repo.insert_candidates(s, experiment_id, [(c.assignments, c.task, c.source) for c in cands], basis,
                                       refill_at=LOW_WATER if basis < 0 else 0)
                repo.bump_suggested(s, experiment_id, positions)  # their positions in the sequence are used
                if basis >= 0 and positions:
                    repo.delete_candidates(s, experiment_id, below_basis=basis - (exp.bandwidth - 1))
            repo.release_supply_lease(s, experiment_id, owner)

    def _changed_count(self, s: Session, exp: Experiment, problem: Problem, basis: int) -> int | None:
        """None when ``problem`` (computed on ``basis`` observations) still has the stored observations'
        count and the open suggestions as its pending points; else the observation count."""
        count, _, _ = repo.observation_marker(s, exp.id)
        space = problem.space
        open_, _ = repo.list_suggestions(s, exp.id, state="open")
        now = sorted(repr(space.key(a)) for a in (conform_assignments(space, o.assignments) for o in open_)
                     if a is not None)
        if count == basis and now == sorted(repr(space.key(a)) for a in problem.pending):
            return None
        return count

    def supply_release(self, experiment_id: int, owner: str) -> None:
        with self.store.write() as s:
            repo.release_supply_lease(s, experiment_id, owner)

    @staticmethod
    def _pop_valid_queued(s: Session, exp: Experiment) -> QueuedSuggestion | None:
        """The oldest queued suggestion still valid for the (possibly updated) space; invalid ones are dropped."""
        space = space_of(exp)
        while (q := repo.pop_queued(s, exp.id)) is not None:
            try:
                a = space.validate_assignments(q.assignments)
            except InvalidRequest:
                continue
            return QueuedSuggestion(q.id, q.experiment_id, a, q.task, q.created)
        return None

    def _check_active(self, exp: Experiment) -> None:
        if exp.state != "active":
            raise Conflict(f"experiment {exp.id} is {exp.state}; set its state to active to continue",
                           field="experiment")

    def list_suggestions(self, experiment_id: Any, *, state: str | None = None, limit: int | None = None,
                         before: Any = None, after: Any = None, client_id: int | None = None) -> Page:
        eid = _int_id(experiment_id, "experiment")
        if state not in (None, "open", "closed", "all"):
            raise InvalidRequest("state must be open, closed or all", field="state")
        lim, b, a = _page_args(limit, before, after)
        with self.store.read() as s:
            repo.experiment_row(s, eid, client_id=client_id)
            items, total = repo.list_suggestions(s, eid, state=None if state == "all" else state, limit=lim,
                                                 before=b, after=a)
            return _page(items, total, lim)

    def get_suggestion(self, experiment_id: Any, suggestion_id: Any, *, client_id: int | None = None
                       ) -> Suggestion:
        eid = _int_id(experiment_id, "experiment")
        sid = _int_id(suggestion_id, "suggestion")
        with self.store.read() as s:
            repo.experiment_row(s, eid, client_id=client_id)
            return repo.get_suggestion(s, eid, sid)

    def update_suggestion(self, experiment_id: Any, suggestion_id: Any, body: Any, *,
                          client_id: int | None = None) -> Suggestion:
        eid = _int_id(experiment_id, "experiment")
        sid = _int_id(suggestion_id, "suggestion")
        req = schemas.parse(schemas.SuggestionUpdate, body)
        with self.store.write() as s:
            repo.experiment_row(s, eid, lock=True, client_id=client_id)
            repo.get_suggestion(s, eid, sid)
            if "metadata" in req.model_fields_set:
                repo.update_suggestion(s, sid, metadata=req.metadata)
            return repo.get_suggestion(s, eid, sid)

    def delete_suggestions(self, experiment_id: Any, suggestion_id: Any = None, *, state: str | None = None,
                           client_id: int | None = None, actor: Principal | None = None) -> int:
        """Delete one suggestion, or all (``state="open"``: all open ones)."""
        eid = _int_id(experiment_id, "experiment")
        if state not in (None, "open", "closed", "all"):
            raise InvalidRequest("state must be open, closed or all", field="state")
        with self.store.write() as s:
            row = repo.experiment_row(s, eid, lock=True, client_id=client_id)
            if suggestion_id is not None:
                sid = _int_id(suggestion_id, "suggestion")
                repo.get_suggestion(s, eid, sid)
                n = repo.delete_suggestions(s, eid, suggestion_id=sid)
            else:
                n = repo.delete_suggestions(s, eid, state=None if state == "all" else state)
            if n and self.supplier is not None and row.type != "random":  # candidates assumed them pending
                repo.delete_candidates(s, eid, below_basis=_ALL_BASES)
            record(s, actor, "suggestion.delete", "experiment", eid,
                   {"suggestion": None if suggestion_id is None else str(suggestion_id), "state": state, "count": n},
                   client_id=row.client_id)
        self._changed(eid)
        return n

    # -- queued suggestions ------------------------------------------------------------
    def create_queued(self, experiment_id: Any, body: Any, *, client_id: int | None = None) -> QueuedSuggestion:
        eid = _int_id(experiment_id, "experiment")
        req = schemas.parse(schemas.QueuedSuggestionCreate, body)
        with self.store.write() as s:
            exp, _, _ = repo.get_experiment(s, eid, lock=True, client_id=client_id)
            _check_direct(exp, "Queued suggestions")
            a = space_of(exp).validate_assignments(req.assignments)
            return repo.insert_queued(s, eid, a, self._task(exp, req.task))

    def list_queued(self, experiment_id: Any, *, client_id: int | None = None) -> Page:
        eid = _int_id(experiment_id, "experiment")
        with self.store.read() as s:
            repo.experiment_row(s, eid, client_id=client_id)
            items = repo.list_queued(s, eid)
            return Page(items, len(items))

    def get_queued(self, experiment_id: Any, queued_id: Any, *, client_id: int | None = None) -> QueuedSuggestion:
        eid = _int_id(experiment_id, "experiment")
        with self.store.read() as s:
            repo.experiment_row(s, eid, client_id=client_id)
            return repo.get_queued(s, eid, _int_id(queued_id, "queued_suggestion"))

    def delete_queued(self, experiment_id: Any, queued_id: Any, *, client_id: int | None = None,
                      actor: Principal | None = None) -> None:
        eid = _int_id(experiment_id, "experiment")
        qid = _int_id(queued_id, "queued_suggestion")
        with self.store.write() as s:
            row = repo.experiment_row(s, eid, lock=True, client_id=client_id)
            repo.get_queued(s, eid, qid)
            repo.delete_queued(s, eid, qid)
            record(s, actor, "queued_suggestion.delete", "queued_suggestion", qid, {"experiment": str(eid)},
                   client_id=row.client_id)

    # -- observations ------------------------------------------------------------------
    def _values(self, exp: Experiment, req: schemas.ObservationCreate | schemas.ObservationUpdate,
                failed: bool, where: str) -> tuple[MetricValue, ...]:
        raw = list(req.values or [])
        if req.value is not None:
            if raw:
                raise InvalidRequest(f"{where}: give either value or values, not both", field=f"{where}.value")
            raw = [schemas.ValueIn(value=req.value, value_stddev=req.value_stddev)]
        if failed:
            if raw:
                raise InvalidRequest(f"{where}: a failed observation cannot have values", field=f"{where}.values")
            return ()
        known = {m.name for m in exp.metrics}
        out: list[MetricValue] = []
        for i, v in enumerate(raw):
            name = v.name
            if name is None:
                if len(exp.metrics) != 1:
                    raise InvalidRequest(f"{where}.values[{i}].name is required with several metrics",
                                         field=f"{where}.values[{i}].name")
                name = exp.metrics[0].name
            if name not in known:
                raise InvalidRequest(f"{where}.values[{i}]: unknown metric {name!r}; known: {sorted(known)}",
                                     field=f"{where}.values[{i}].name")
            if any(o.name == name for o in out):
                raise InvalidRequest(f"{where}.values: metric {name!r} given twice", field=f"{where}.values[{i}]")
            out.append(MetricValue(name, float(v.value), v.value_stddev))
        given = {v.name for v in out}
        for m in exp.metrics:
            if m.strategy != "store" and m.name not in given:
                raise InvalidRequest(f"{where}.values: missing a value for metric {m.name!r} "
                                     "(or report failed: true)", field=f"{where}.values")
        return tuple(out)

    def _observe(self, s: Session, exp: Experiment, req: schemas.ObservationCreate, where: str) -> Observation:
        if (req.suggestion is None) == (req.assignments is None):
            raise InvalidRequest(f"{where}: give exactly one of suggestion or assignments", field=f"{where}.suggestion")
        values = self._values(exp, req, req.failed, where)
        sid = None
        if req.suggestion is not None:
            sid = _int_id(req.suggestion, "suggestion")
            # Closing the suggestion locks its row: a concurrent request for it waits here, then finds it
            # closed (PostgreSQL re-reads the row after the wait; SQLite serializes writers).
            closed = repo.close_suggestion(s, exp.id, sid)
            if closed is None:
                sug = repo.get_suggestion(s, exp.id, sid, include_deleted=True)
                if req.idempotency_key is not None:
                    prior = repo.find_observation_by_key(s, exp.id, req.idempotency_key)
                    if prior is not None:
                        return prior  # a retry of the request that closed it
                if sug.state == "closed":
                    raise Conflict(f"{where}: suggestion {sid} already has an observation",
                                   field=f"{where}.suggestion")
                raise Conflict(f"{where}: suggestion {sid} was deleted; report the observation with assignments "
                               "instead", field=f"{where}.suggestion")
            assignments, task = closed
            if req.task is not None and (task is None or self._task(exp, req.task, f"{where}.task") != task):
                raise InvalidRequest(f"{where}.task differs from the suggestion's task", field=f"{where}.task")
        else:
            assignments = space_of(exp).validate_assignments(req.assignments, f"{where}.assignments")
            task = self._task(exp, req.task, f"{where}.task")
        return repo.insert_observation(
            s, exp.id, assignments=assignments, values=values, failed=req.failed, suggestion_id=sid, task=task,
            metadata=req.metadata, idempotency_key=req.idempotency_key)

    def create_observation(self, experiment_id: Any, body: Any, *, client_id: int | None = None,
                           idempotency_key: str | None = None) -> Observation:
        """Store one observation. A retry with the same idempotency key (body field or the
        ``Idempotency-Key`` header) returns the stored observation instead of a second one."""
        eid = _int_id(experiment_id, "experiment")
        req = schemas.parse(schemas.ObservationCreate, body)
        key = _idempotency_key(idempotency_key)
        if key is not None:
            if req.idempotency_key not in (None, key):
                raise InvalidRequest("the Idempotency-Key header and idempotency_key in the body differ",
                                     field="idempotency_key")
            req = req.model_copy(update={"idempotency_key": key})
        try:
            hot = self._hot_observation(eid, req, client_id) if self.store.single_statements else None
            if hot is not None:
                obs, learns = hot
            else:
                # No experiment row lock: concurrent observations commit together (PostgreSQL group commit);
                # the suggestion row lock and the unique constraints keep them exactly-once.
                # A retried key is found after the suggestion is seen closed, or by the unique constraint.
                with self.store.write() as s:
                    exp, digest = repo.get_experiment_digest(s, eid, client_id=client_id)
                    _check_direct(exp, "Observations")
                    self._check_active(exp)
                    obs = self._observe(s, exp, req, "observation")
                    learns = exp.type != "random"
                if self.store.single_statements:
                    self._remember_shape(exp, digest)
        except IntegrityError:
            if req.idempotency_key is not None:  # a concurrent retry with the same key stored it first
                with self.store.read() as s:
                    prior = repo.find_observation_by_key(s, eid, req.idempotency_key)
                if prior is not None:
                    return prior
            raise Conflict("the suggestion already has an observation (a concurrent request reported it)",
                           field="suggestion") from None
        if learns:  # random points learn nothing from observations
            self._changed(eid)
        return obs

    def _hot_observation(self, eid: int, req: schemas.ObservationCreate, client_id: int | None
                         ) -> tuple[Observation, bool] | None:
        """An observation of a suggestion stored in one statement (PostgreSQL), its values checked
        against the experiment as last read; the statement checks that the stored definition is still
        that one. ``(observation, learns)``, or None when the general path must answer (no experiment
        read yet, an error to report, the suggestion not open, the experiment changed...)."""
        shape = self._shapes.get(eid)
        if shape is None or req.suggestion is None or req.assignments is not None or req.task is not None:
            return None
        exp, digest = shape
        try:
            sid = _int_id(req.suggestion, "suggestion")
            values = self._values(exp, req, req.failed, "observation")
        except AssayError:
            return None  # reported by the general path (in its order, against the stored experiment)
        with self.store.autocommit() as conn:
            obs = repo.hot_observe(conn, eid, client_id=client_id, digest=digest, suggestion_id=sid, values=values,
                                   failed=req.failed, metadata=req.metadata, idempotency_key=req.idempotency_key)
        return None if obs is None else (obs, exp.type != "random")

    def create_observations_batch(self, experiment_id: Any, body: Any, *, client_id: int | None = None) -> Page:
        """All or nothing: one bad observation rejects the whole batch, naming its index."""
        eid = _int_id(experiment_id, "experiment")
        req = schemas.parse(schemas.ObservationBatch, body)
        try:
            with self.store.write() as s:
                exp, _, _ = repo.get_experiment(s, eid, lock=True, client_id=client_id)
                _check_direct(exp, "Observations")
                self._check_active(exp)
                out = [self._observe(s, exp, o, f"observations[{i}]") for i, o in enumerate(req.observations)]
        except IntegrityError:
            raise Conflict("a suggestion in the batch already has an observation", field="observations") from None
        self._changed(eid)
        return Page(out, len(out))

    def list_observations(self, experiment_id: Any, *, limit: int | None = None, before: Any = None,
                          after: Any = None, client_id: int | None = None) -> Page:
        eid = _int_id(experiment_id, "experiment")
        lim, b, a = _page_args(limit, before, after)
        with self.store.read() as s:
            repo.experiment_row(s, eid, client_id=client_id)
            items, total = repo.list_observations(s, eid, limit=lim, before=b, after=a)
            return _page(items, total, lim)

    def get_observation(self, experiment_id: Any, observation_id: Any, *, client_id: int | None = None
                        ) -> Observation:
        eid = _int_id(experiment_id, "experiment")
        with self.store.read() as s:
            repo.experiment_row(s, eid, client_id=client_id)
            return repo.get_observation(s, eid, _int_id(observation_id, "observation"))

    def update_observation(self, experiment_id: Any, observation_id: Any, body: Any, *,
                           client_id: int | None = None, actor: Principal | None = None) -> Observation:
        eid = _int_id(experiment_id, "experiment")
        oid = _int_id(observation_id, "observation")
        req = schemas.parse(schemas.ObservationUpdate, body)
        with self.store.write() as s:
            exp, _, _ = repo.get_experiment(s, eid, lock=True, client_id=client_id)
            old = repo.get_observation(s, eid, oid)
            if req.suggestion is not None or req.assignments is not None:
                raise InvalidRequest("an observation's suggestion and assignments cannot change; "
                                     "delete it and report a new one", field="suggestion")
            fields: dict[str, Any] = {}
            failed = old.failed if req.failed is None else req.failed
            if req.values is not None or req.value is not None or req.failed is not None:
                if req.values is None and req.value is None and not failed:
                    raise InvalidRequest("values are required when failed becomes false", field="values")
                fields["values"] = self._values(exp, req, failed, "observation")
                fields["failed"] = failed
            if "metadata" in req.model_fields_set:
                fields["metadata"] = req.metadata
            if req.task is not None:
                fields["task"] = self._task(exp, req.task)
            if fields:
                repo.update_observation(s, oid, **fields)
                repo.bump_observations_version(s, eid)
                repo.delete_candidates(s, eid)
                record(s, actor, "observation.update", "observation", oid,
                       {"experiment": str(eid), "fields": sorted(req.model_fields_set)}, client_id=exp.client_id)
            out = repo.get_observation(s, eid, oid)
        self._changed(eid)
        return out

    def delete_observations(self, experiment_id: Any, observation_id: Any = None, *,
                            client_id: int | None = None, actor: Principal | None = None) -> int:
        eid = _int_id(experiment_id, "experiment")
        with self.store.write() as s:
            row = repo.experiment_row(s, eid, lock=True, client_id=client_id)
            if observation_id is not None:
                oid = _int_id(observation_id, "observation")
                repo.get_observation(s, eid, oid)
                n = repo.delete_observations(s, eid, oid)
            else:
                n = repo.delete_observations(s, eid)
            repo.bump_observations_version(s, eid)
            repo.delete_candidates(s, eid)
            record(s, actor, "observation.delete", "experiment", eid,
                   {"observation": None if observation_id is None else str(observation_id), "count": n},
                   client_id=row.client_id)
        self._changed(eid)
        return n

    # -- results -----------------------------------------------------------------------
    def best_assignments(self, experiment_id: Any, *, client_id: int | None = None) -> Page:
        eid = _int_id(experiment_id, "experiment")
        with self.store.read() as s:
            exp, _, _ = repo.get_experiment(s, eid, client_id=client_id)
            k = exp.num_solutions or 1
            if k > 1:  # diverse picks: distances need every point in the current space (added parameters
                obs = repo.all_observations(s, eid)  # at their default); the stored assignments are returned
                space = space_of(exp)
                conformed = [c for o in obs if (c := _conform(space, o)) is not None]
                by_id = {o.id: o for o in obs}
                picked = best_observations(conformed, exp.metrics, exp.tasks, num_solutions=k, space=space)
                best: Sequence[Observation] = [by_id[o.id] for o in picked]
            else:
                best = self._summary(s, exp).best
        data = [{"object": "best_assignments", "id": str(o.id), "assignments": dict(o.assignments),
                 "value": o.values[0].value if len(o.values) == 1 else None,
                 "value_stddev": o.values[0].value_stddev if len(o.values) == 1 else None,
                 "values": [v.to_json() for v in o.values], "task": o.task.to_json() if o.task else None}
                for o in best]
        return Page(data, len(data))

    # -- analysis ----------------------------------------------------------------------
    def stopping_criteria(self, experiment_id: Any, *, client_id: int | None = None) -> StoppingCriteria:
        """SigOpt's ``stopping_criteria``: budget reached and possible stagnation."""
        eid = _int_id(experiment_id, "experiment")
        with self.store.read() as s:
            exp, _, _ = repo.get_experiment(s, eid, client_id=client_id)
            obs = repo.all_observations(s, eid)
        return stopping_criteria(obs, exp.metrics, len(exp.parameters), exp.observation_budget, exp.tasks)

    def metric_importances(self, experiment_id: Any, *, client_id: int | None = None,
                           recompute: bool = False) -> Page:
        """Parameter importance per metric (one ``metric_importances`` object each, sorted by metric name).

        Raises :class:`Unprocessable` (422) until there are enough successful observations.
        """
        eid = _int_id(experiment_id, "experiment")
        with self.store.read() as s:
            exp, seed, _ = repo.get_experiment(s, eid, client_id=client_id)
            obs = repo.all_observations(s, eid)
        space = space_of(exp)
        obs = [o for o in (_conform(space, o) for o in obs) if o is not None]
        key = (repr(exp.definition()), tuple((o.id, o.failed, o.values) for o in obs))
        with self._importances_lock:
            cached = self._importances.get(eid)
        if cached is not None and cached[0] == key and not recompute:
            result = cached[1]
        else:
            result = metric_importances(space, obs, exp.metrics, seed=seed % (2**31))
            with self._importances_lock:
                self._importances[eid] = (key, result)
                while len(self._importances) > 256:
                    self._importances.pop(next(iter(self._importances)))
        if result is None:
            raise Unprocessable(
                f"Not enough observations to calculate parameter importances: need {min_observations(space)} "
                f"successful observations, have {sum(not o.failed for o in obs)}", field="observations")
        data = [{"object": "metric_importances", "metric": m, "importances": imp} for m, imp in result.items()]
        return Page(data, len(data))

    def importances(self, experiment_id: Any, *, client_id: int | None = None) -> dict[str, Any]:
        """Legacy single-metric ``importances`` (the first optimized metric, else the first metric)."""
        page = self.metric_importances(experiment_id, client_id=client_id)
        exp = self.get_experiment(experiment_id, client_id=client_id)
        first = (exp.optimized_metrics or exp.metrics)[0].name
        imp = next(d["importances"] for d in page.data if d["metric"] == first)
        return {"object": "importances", "importances": imp}

    # -- dashboard ---------------------------------------------------------------------
    def experiment_columns(self, experiment_id: Any, *, client_id: int | None = None
                           ) -> tuple[Experiment, ObservationColumns, list[Suggestion], list[QueuedSuggestion]]:
        """One consistent read for the dashboard: the experiment with its progress, every observation as
        columns (oldest first; a bulk read that builds no per-row objects), the open suggestions and the queue."""
        eid = _int_id(experiment_id, "experiment")
        with self.store.read() as s:
            exp, _, _ = repo.get_experiment(s, eid, client_id=client_id)
            cols = repo.observation_columns(s, eid)
            open_sugs, _ = repo.list_suggestions(s, eid, state="open", limit=MAX_PAGE)
            queued = repo.list_queued(s, eid)
            open_count = repo.count_open_suggestions(s, eid)
        n = len(cols)
        progress = Progress(open_suggestion_count=open_count)
        if n:
            best = best_rows(cols, exp.metrics, exp.tasks)
            progress = Progress(
                observation_count=n, observation_budget_consumed=total_cost(cols.cost),
                failed_observation_count=sum(cols.failed), open_suggestion_count=open_count,
                first_observation=cols.observation(0, eid), last_observation=cols.observation(n - 1, eid),
                best_observation=cols.observation(int(best[0]), eid) if len(best) == 1 else None)
        return Experiment(**{**exp.__dict__, "progress": progress}), cols, open_sugs, queued

    def experiment_marker(self, experiment_id: Any, *, client_id: int | None = None) -> str:
        """A short string that changes whenever the experiment, its observations (added, edited or deleted), its open
        or queued suggestions change."""
        eid = _int_id(experiment_id, "experiment")
        with self.store.read() as s:
            exp, _, _ = repo.get_experiment(s, eid, client_id=client_id)
            parts = (exp.updated, exp.state, *repo.experiment_marker(s, eid))
        return "-".join(str(p) for p in parts)
