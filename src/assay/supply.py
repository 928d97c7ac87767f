"""Suggestions off the request path: a background supplier of precomputed candidates.

Candidates live in the database (``candidates`` table), not in a process: a request claims one
in its own transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serializes writers), so
with several server processes each candidate is still served exactly once, by whichever process
gets the request. Each process runs a :class:`Supplier`; the service tells it when an experiment
changes or its stock runs low, and a worker thread computes candidates for the current observations
(as many as the open bandwidth, greedily with the open suggestions as pending points) and stores
them. Only one process computes for an experiment at a time: it holds the experiment's supply lease
(a row update with an expiry, so a crashed process's lease runs out).

A request with no fresh candidate waits for the computation (at most ``timeout`` seconds), polling
the database so candidates stored by another process count too; past that it takes a stale one or a
random point, with the reason recorded in ``source`` (see :meth:`assay.service.Service.create_suggestion`).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from assay.engine.problem import Candidate, Problem

__all__ = ["Supplier", "install"]

log = logging.getLogger("assay.supply")

#: how often a waiting request looks for candidates another process stored (seconds)
POLL = 0.1


class Supplier:
    """Computes candidates for ``service`` in ``workers`` background threads."""

    def __init__(self, service: Any, *, timeout: float = 20.0, workers: int = 1,
                 suggest: Callable[[Problem, int], list[Candidate]] | None = None) -> None:
        self.service = service
        self._suggest = suggest or service._suggest
        self.timeout = timeout
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._cond = threading.Condition()
        self._queue: list[int] = []
        self._waiting: dict[int, int] = {}  # experiment id -> requests of this process waiting now
        self._computing: set[int] = set()
        self._stocked = 0  # bumped whenever this process stored candidates
        self.stopping = False
        self._threads = [threading.Thread(target=self._work, name=f"assay-supply-{i}", daemon=True)
                         for i in range(max(1, workers))]

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Supplier:
        for t in self._threads:
            t.start()
        return self

    def stop(self, wait: float = 5.0) -> None:
        with self._cond:
            self.stopping = True
            self._cond.notify_all()
        for t in self._threads:
            if t.is_alive():
                t.join(wait)

    # -- requests ----------------------------------------------------------------------
    def notify(self, experiment_id: int) -> None:
        """An experiment changed or its stock runs low: plan its candidates in the background."""
        with self._cond:
            self._enqueue(experiment_id)

    def wait(self, experiment_id: int, timeout: float) -> None:
        """A request found no candidate: ask for one and wait until this process stored some,
        or :data:`POLL` seconds passed (another process may have), or ``timeout``."""
        with self._cond:
            self._waiting[experiment_id] = self._waiting.get(experiment_id, 0) + 1
            try:
                self._enqueue(experiment_id)
                seen = self._stocked
                self._cond.wait_for(lambda: self._stocked != seen or self.stopping, min(timeout, POLL))
            finally:  # no longer waiting before it tries to claim again (see asked)
                left = self._waiting[experiment_id] - 1
                if left:
                    self._waiting[experiment_id] = left
                else:
                    del self._waiting[experiment_id]

    def asked(self, experiment_id: int) -> bool:
        """Whether a request of this process waits for a candidate of the experiment right now. A
        request stops waiting before it claims, so a plan that reads the database first and asks this
        after never computes for a request already served (which would take a position in the
        sequence that nobody is served: a sequential client would then get other points than inline)."""
        with self._cond:
            return self._waiting.get(experiment_id, 0) > 0

    def _enqueue(self, eid: int) -> None:
        if eid not in self._queue:
            self._queue.append(eid)
            self._cond.notify_all()

    # -- workers -----------------------------------------------------------------------
    def _next(self) -> int | None:
        for eid in self._queue:
            if eid not in self._computing:
                return eid
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self.stopping and self._next() is None:
                    self._cond.wait()
                if self.stopping:
                    return
                eid = self._next()
                assert eid is not None
                self._queue.remove(eid)
                self._computing.add(eid)
            try:
                self._supply(eid)
            except Exception:  # noqa: BLE001 - a worker must survive anything; requests fall back
                log.exception("precomputing suggestions for experiment %s failed", eid)
            finally:
                with self._cond:
                    self._computing.discard(eid)
                    self._cond.notify_all()

    def _supply(self, eid: int) -> None:
        lease = max(60.0, 3 * self.timeout)
        plan = self.service.supply_plan(eid, self.owner, lease, lambda: self.asked(eid))
        if plan is None:
            return
        problem, n, basis = plan
        try:
            started = time.monotonic()
            cands = self._suggest(problem, n)
            log.debug("experiment %s: %d candidates in %.2fs", eid, len(cands), time.monotonic() - started)
        except BaseException:
            self.service.supply_release(eid, self.owner)
            raise
        self.service.supply_stock(eid, self.owner, problem, cands, basis)
        with self._cond:
            self._stocked += 1
            self._cond.notify_all()


def prewarm(freeze: bool = False) -> None:
    """Import the model stack (torch, BoTorch: seconds) ahead of the first model suggestion."""
    try:
        import botorch.acquisition.logei  # noqa: F401
        import botorch.fit  # noqa: F401
        import botorch.models  # noqa: F401

        import assay.engine.acquisition  # noqa: F401
        import assay.engine.gp  # noqa: F401
    except Exception:  # noqa: BLE001 - only a head start; the first suggestion imports them anyway
        log.exception("prewarming the model stack failed")
    if freeze:
        gc.freeze()  # the imported stack lives as long as the process: keep it out of collections


def install(app: Any) -> None:
    """Run a :class:`Supplier` for the app's service between startup and shutdown."""

    def start(app: Any) -> None:
        svc = app.state.service
        settings = app.state.settings
        sup = Supplier(svc, timeout=settings.suggestion_timeout, workers=max(1, min(2, os.cpu_count() or 1)))
        svc.supplier = sup
        svc.on_change.append(sup.notify)
        app.state.supplier = sup.start()
        if settings.prewarm:
            freeze = bool(getattr(settings, "freeze_heap", False))
            threading.Thread(target=prewarm, args=(freeze,), name="assay-prewarm", daemon=True).start()

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
