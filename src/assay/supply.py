"""Suggestions off the request path: a background supplier of precomputed candidates.

The service tells the :class:`Supplier` whenever an experiment changes; worker threads
then compute candidates for its current observations (as many as its open bandwidth,
greedily with the open suggestions as pending points) and keep them. A request takes
a ready candidate computed on the same observations, skipping any that is now open
or observed. When none is ready it waits for the computation in flight (at most
``timeout`` seconds); past that it gets a candidate computed on older observations, or a
random point, with the reason recorded in ``source``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assay.engine.problem import Candidate, Problem

__all__ = ["Supplier", "fingerprint"]

log = logging.getLogger("assay.supply")

#: candidates computed ahead per experiment, at most
MAX_AHEAD = 4


def fingerprint(problem: Problem) -> str:
    """Identity of what a model would learn from: definition and observations (not pending points)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((problem.space.parameters, problem.space.conditionals, problem.space.linear_constraints,
                   problem.metrics, problem.experiment_type, problem.tasks, problem.random_only)).encode())
    for o in problem.observations:
        h.update(repr((o.id, o.failed, o.values, o.task)).encode())
    return h.hexdigest()


@dataclass
class _State:
    fp: str | None = None  # fingerprint the ready candidates were computed on
    ready: list[Candidate] = field(default_factory=list)
    stale: list[Candidate] = field(default_factory=list)
    computing: str | None = None  # fingerprint being computed now
    wanted: Problem | None = None  # newest problem to compute (None: read it from the store)
    queued: bool = False


class Supplier:
    """Precomputes suggestions per experiment in ``workers`` background threads."""

    def __init__(self, suggest: Callable[[Problem, int], list[Candidate]],
                 snapshot: Callable[[int], Problem | None], *, timeout: float = 20.0, workers: int = 1) -> None:
        self._suggest = suggest
        self._snapshot = snapshot
        self.timeout = timeout
        self._cond = threading.Condition()
        self._states: dict[int, _State] = {}
        self._queue: list[int] = []
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, name=f"assay-supply-{i}", daemon=True)
                         for i in range(max(1, workers))]

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Supplier:
        for t in self._threads:
            t.start()
        return self

    def stop(self, wait: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            if t.is_alive():
                t.join(wait)

    # -- producer side -----------------------------------------------------------------
    def notify(self, experiment_id: int) -> None:
        """An experiment changed: refresh its candidates in the background."""
        with self._cond:
            self._enqueue(experiment_id, None)

    def _enqueue(self, eid: int, problem: Problem | None) -> None:
        st = self._states.setdefault(eid, _State())
        if problem is not None:
            st.wanted = problem
        if not st.queued:
            st.queued = True
            self._queue.append(eid)
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._next_ready():
                    self._cond.wait()
                if self._stopping:
                    return
                eid = self._next_ready()
                assert eid is not None
                self._queue.remove(eid)
                st = self._states[eid]
                st.queued = False
                problem, st.wanted = st.wanted, None
            try:
                asked = problem is not None
                if problem is None:
                    problem = self._snapshot(eid)
                if problem is None or (not asked and len(problem.pending) >= problem.parallel_bandwidth):
                    continue  # the bandwidth is used up: the next request follows an observation
                fp = fingerprint(problem)
                with self._cond:
                    open_keys = {problem.space.key(p) for p in problem.pending}
                    fresh = [c for c in st.ready if problem.space.key(c.assignments) not in open_keys]
                    if st.fp == fp and fresh:
                        continue  # still good: nothing new to learn from
                    st.computing = fp
                n = max(1, min(MAX_AHEAD, problem.parallel_bandwidth - len(problem.pending)))
                started = time.monotonic()
                cands = self._suggest(problem, n)
                log.debug("experiment %s: %d candidates in %.2fs", eid, len(cands), time.monotonic() - started)
                with self._cond:
                    if st.fp is not None and st.fp != fp and st.ready:
                        st.stale = st.ready
                    st.fp, st.ready = fp, list(cands)
                    self._cond.notify_all()
            except Exception:  # noqa: BLE001 - a worker must survive anything; requests fall back
                log.exception("precomputing suggestions for experiment %s failed", eid)
            finally:
                with self._cond:
                    st.computing = None
                    self._cond.notify_all()

    def _next_ready(self) -> int | None:
        """First queued experiment that no other worker is computing."""
        for eid in self._queue:
            if self._states[eid].computing is None:
                return eid
        return None

    # -- consumer side -----------------------------------------------------------------
    def take(self, experiment_id: int, problem: Problem, fallback: Callable[[str], Candidate]) -> Candidate:
        """A candidate for ``problem``: ready, computed within the time-out, stale, or ``fallback(reason)``."""
        fp = fingerprint(problem)
        # with tasks, a point measured on a cheap task may rightly come back on another task
        def key(a: Any, task: Any) -> tuple:
            return problem.space.key(a), (task.name if problem.tasks and task is not None else None)

        tasks = list(problem.pending_tasks) + [None] * (len(problem.pending) - len(problem.pending_tasks))
        seen = {key(p, t) for p, t in zip(problem.pending, tasks, strict=True)}
        seen |= {key(o.assignments, o.task) for o in problem.observations}
        deadline = time.monotonic() + self.timeout
        with self._cond:
            st = self._states.setdefault(experiment_id, _State())
            requested = False
            while True:
                if st.fp == fp:
                    while st.ready:
                        c = st.ready.pop(0)
                        if key(c.assignments, c.task) not in seen:
                            if not st.ready:  # keep one ahead for the next request
                                self._enqueue(experiment_id, None)
                            return c
                if not requested and st.computing != fp:
                    self._enqueue(experiment_id, problem)
                    requested = True
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping:
                    break
                self._cond.wait(left)
            for pool in (st.ready, st.stale):
                while pool:
                    c = pool.pop(0)
                    if key(c.assignments, c.task) not in seen:
                        return Candidate(c.assignments, task=c.task, info=c.info,
                                         source=f"{c.source}; stale: computed before the latest observations "
                                                f"(the model took over {self.timeout:g}s)")
        return fallback(f"fallback-random: no model suggestion within {self.timeout:g}s")


def install(app: Any) -> None:
    """Run a :class:`Supplier` for the app's service between startup and shutdown."""

    def start(app: Any) -> None:
        svc = app.state.service
        settings = app.state.settings
        sup = Supplier(svc._suggest, svc.snapshot, timeout=settings.suggestion_timeout,
                       workers=max(1, min(2, os.cpu_count() or 1)))
        svc.supplier = sup
        svc.on_change.append(sup.notify)
        app.state.supplier = sup.start()

    def stop(app: Any) -> None:
        sup = getattr(app.state, "supplier", None)
        if sup is None:
            return
        svc = app.state.service
        if sup.notify in svc.on_change:
            svc.on_change.remove(sup.notify)
        svc.supplier = None
        sup.stop()
        app.state.supplier = None

    app.state.startup.append(start)
    app.state.shutdown.append(stop)
