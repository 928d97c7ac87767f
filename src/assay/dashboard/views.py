"""Plot-ready summaries of an experiment for the dashboard (pure: domain objects in, JSON-able dicts out).

The browser gets columns, not observation objects, and plots get at most ``max_points`` rows
(a deterministic sample that always keeps the best rows and the newest ones), so a page
with 10,000 observations stays light.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from assay.domain import Experiment, Observation, QueuedSuggestion, Suggestion
from assay.engine.analysis import best_observations, feasible
from assay.errors import InvalidRequest

__all__ = ["experiment_view", "experiment_row", "contour", "history_csv", "parse_observations_csv",
           "importances", "MAX_POINTS"]

MAX_POINTS = 2000


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def experiment_row(exp: Experiment) -> dict[str, Any]:
    """One line of the experiments list."""
    p = exp.progress
    best = p.best_observation if p else None
    opt = exp.optimized_metrics
    return {
        "id": str(exp.id), "name": exp.name, "state": exp.state, "type": exp.type, "project": exp.project,
        "created": exp.created, "updated": exp.updated, "development": exp.development,
        "observation_count": p.observation_count if p else 0,
        "budget_consumed": p.observation_budget_consumed if p else 0.0,
        "observation_budget": exp.observation_budget,
        "open_suggestions": p.open_suggestion_count if p else 0,
        "metrics": [m.name for m in exp.metrics],
        "best_value": best.value_of(opt[0].name) if best is not None and opt else None,
        "best_metric": opt[0].name if opt else None,
    }


def _best_trace(exp: Experiment, obs: Sequence[Observation], ok: np.ndarray) -> dict[str, Any]:
    """Best value seen so far, per optimized metric, as a step function (change points plus the last row)."""
    out: dict[str, Any] = {}
    n = len(obs)
    for m in exp.optimized_metrics:
        sign = 1.0 if m.objective == "maximize" else -1.0
        xs: list[int] = []
        ys: list[float] = []
        best = -math.inf
        for i, o in enumerate(obs):
            v = o.value_of(m.name)
            if not ok[i] or v is None:
                continue
            if sign * v > best:
                best = sign * v
                xs.append(i + 1)
                ys.append(v)
        if ys and xs[-1] != n:
            xs.append(n)
            ys.append(ys[-1])
        out[m.name] = {"x": xs, "y": ys}
    return out


def _sample(n: int, keep: Sequence[int], max_points: int) -> list[int]:
    """Row positions for plots: everything when small, else evenly spaced rows plus ``keep`` and the newest 100."""
    if n <= max_points:
        return list(range(n))
    chosen = set(keep) | set(range(max(0, n - 100), n))
    room = max(max_points - len(chosen), 0)
    if room:
        chosen |= {int(i) for i in np.linspace(0, n - 1, room).round()}
    return sorted(chosen)[: max(max_points, len(keep))]


def _encoded(exp: Experiment, name: str, col: list[Any]) -> np.ndarray:
    p = exp.parameter(name)
    if p.type == "categorical":
        idx = {c: i for i, c in enumerate(p.categorical_values)}
        return np.array([idx.get(v, np.nan) if v is not None else np.nan for v in col], dtype=float)
    x = np.array([_num(v) if _num(v) is not None else np.nan for v in col], dtype=float)
    if p.is_log:
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(np.where(x > 0, x, np.nan))
    return x


def importances(exp: Experiment, params: dict[str, list[Any]], y: np.ndarray) -> dict[str, float]:
    """How much of the metric's variance each parameter explains on its own (correlation ratio, 0..1):
    categories, or ten quantile bins of a numeric parameter, as groups."""
    out: dict[str, float] = {}
    good = ~np.isnan(y)
    if good.sum() < 3 or np.nanvar(y) == 0:
        return {p.name: 0.0 for p in exp.parameters}
    for p in exp.parameters:
        x = _encoded(exp, p.name, params[p.name])
        m = good & ~np.isnan(x)
        if m.sum() < 3:
            out[p.name] = 0.0
            continue
        xv, yv = x[m], y[m]
        if p.type == "categorical" or len(np.unique(xv)) <= 10:
            groups = xv
        else:
            edges = np.unique(np.quantile(xv, np.linspace(0, 1, 11)))
            groups = np.digitize(xv, edges[1:-1])
        total = float(np.var(yv))
        between = sum(float((groups == g).sum()) * (float(yv[groups == g].mean()) - float(yv.mean())) ** 2
                      for g in np.unique(groups)) / len(yv)
        out[p.name] = round(between / total, 4) if total > 0 else 0.0
    return out


def experiment_view(exp: Experiment, obs: Sequence[Observation], open_suggestions: Sequence[Suggestion] = (),
                    queued: Sequence[QueuedSuggestion] = (), *, max_points: int = MAX_POINTS) -> dict[str, Any]:
    """Everything the experiment page draws, in one JSON object."""
    n = len(obs)
    pos = {o.id: i for i, o in enumerate(obs)}
    params = {p.name: [o.assignments.get(p.name) for o in obs] for p in exp.parameters}
    metrics = {m.name: [o.value_of(m.name) for o in obs] for m in exp.metrics}
    full_cost = [not exp.tasks or (o.task is not None and o.task.cost >= 1.0) for o in obs]
    ok = np.array([feasible(o, exp.metrics) and fc for o, fc in zip(obs, full_cost, strict=True)], dtype=bool)
    best = best_observations(obs, exp.metrics, exp.tasks)
    best_rows = [pos[o.id] for o in best]
    opt = exp.optimized_metrics
    # the front within the thresholds' region of interest (the whole front when no point meets them)
    pareto_rows = best_rows if len(opt) >= 2 else []
    sample = _sample(n, sorted(set(best_rows) | set(pareto_rows)), max_points)
    imp: dict[str, Any] = {}
    if opt and n:
        y = np.array([v if v is not None and ok[i] else np.nan for i, v in enumerate(metrics[opt[0].name])])
        imp = {"metric": opt[0].name, "method": "correlation ratio", "values": importances(exp, params, y)}
    tasks = []
    for t in exp.tasks:
        rows_t = [o for o in obs if o.task is not None and o.task.name == t.name]
        tasks.append({"name": t.name, "cost": t.cost, "count": len(rows_t),
                      "cost_total": round(sum(o.task.cost for o in rows_t if o.task), 6)})
    return {
        "experiment": exp.to_json(),
        "count": n,
        "columns": {
            "id": [str(o.id) for o in obs],
            "created": [o.created for o in obs],
            "failed": [o.failed for o in obs],
            "feasible": [bool(v) for v in ok],
            "task": [o.task.name if o.task else None for o in obs],
            "suggestion": [str(o.suggestion_id) if o.suggestion_id is not None else None for o in obs],
            "params": params,
            "metrics": metrics,
        },
        "best_rows": best_rows,
        "pareto_rows": pareto_rows,
        "sample": sample,
        "trace": _best_trace(exp, obs, ok),
        "importance": imp,
        "tasks": tasks,
        "open_suggestions": [{"id": str(s.id), "assignments": s.assignments, "created": s.created,
                              "task": s.task.name if s.task else None, "source": s.source}
                             for s in open_suggestions],
        "queued": [{"id": str(q.id), "assignments": q.assignments, "created": q.created,
                    "task": q.task.name if q.task else None} for q in queued],
    }


def contour(exp: Experiment, obs: Sequence[Observation], x: str, y: str, metric: str,
            size: int = 30) -> dict[str, Any]:
    """A ``size x size`` grid of ``metric`` over parameters ``x`` and ``y``, interpolated from the
    observations by inverse-distance weighting (in the parameters' unit/log scale)."""
    names = {p.name for p in exp.parameters}
    for field, name in (("x", x), ("y", y)):
        if name not in names:
            raise InvalidRequest(f"{field}: unknown parameter {name!r}", field=field)
        if exp.parameter(name).type == "categorical":
            raise InvalidRequest(f"{field}: parameter {name!r} is categorical; pick a numeric one", field=field)
    if metric not in {m.name for m in exp.metrics}:
        raise InvalidRequest(f"metric: unknown metric {metric!r}", field="metric")
    cols = {n: [o.assignments.get(n) for o in obs] for n in (x, y)}
    ex, ey = _encoded(exp, x, cols[x]), _encoded(exp, y, cols[y])
    z = np.array([np.nan if o.failed or o.value_of(metric) is None else o.value_of(metric) for o in obs], dtype=float)
    m = ~(np.isnan(ex) | np.isnan(ey) | np.isnan(z))
    if m.sum() < 3:
        return {"x": [], "y": [], "z": [], "points": int(m.sum())}
    ex, ey, z = ex[m], ey[m], z[m]

    def axis(name: str) -> tuple[np.ndarray, np.ndarray]:
        b = exp.parameter(name).bounds
        lo, hi = (b.min, b.max) if b else (0.0, 1.0)
        enc = (math.log(lo), math.log(hi)) if exp.parameter(name).is_log and lo > 0 else (lo, hi)
        grid = np.linspace(enc[0], enc[1], size)
        return grid, (np.exp(grid) if exp.parameter(name).is_log and lo > 0 else grid)

    gx, vx = axis(x)
    gy, vy = axis(y)
    sx = (gx[-1] - gx[0]) or 1.0
    sy = (gy[-1] - gy[0]) or 1.0
    px, py = (ex - gx[0]) / sx, (ey - gy[0]) / sy
    ux, uy = np.meshgrid((gx - gx[0]) / sx, (gy - gy[0]) / sy)
    if len(z) > 4000:  # bound the work: an evenly spaced subset is plenty for a 30x30 picture
        pick = np.linspace(0, len(z) - 1, 4000).round().astype(int)
        px, py, z = px[pick], py[pick], z[pick]
    d2 = (ux.reshape(-1, 1) - px) ** 2 + (uy.reshape(-1, 1) - py) ** 2
    w = 1.0 / np.maximum(d2, 1e-12) ** 1.5
    grid_z = (w @ z) / w.sum(axis=1)
    return {"x": vx.tolist(), "y": vy.tolist(), "z": grid_z.reshape(size, size).round(8).tolist(),
            "points": int(m.sum()), "method": "inverse-distance interpolation"}


def history_csv(exp: Experiment, obs: Sequence[Observation]) -> str:
    """Every observation as CSV: id, created, suggestion, task, failed, parameters, metric values."""
    buf = io.StringIO()
    w = csv.writer(buf)
    pnames = [p.name for p in exp.parameters]
    mnames = [m.name for m in exp.metrics]
    w.writerow(["id", "created", "suggestion", "task", "failed", *pnames, *mnames])
    for o in obs:
        w.writerow([o.id, o.created, o.suggestion_id or "", o.task.name if o.task else "", str(o.failed).lower(),
                    *("" if o.assignments.get(n) is None else o.assignments[n] for n in pnames),
                    *("" if o.value_of(n) is None else repr(o.value_of(n)) for n in mnames)])
    return buf.getvalue()


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def parse_observations_csv(exp: Experiment, text: str) -> dict[str, Any]:
    """CSV (a header of parameter and metric names, optional ``failed`` and ``task`` columns) to the body of
    ``POST /v1/experiments/{id}/observations/batch``. Errors name the line and column."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise InvalidRequest("the CSV file is empty; its first line must name the columns", field="file")
    header = [h.strip() for h in rows[0]]
    pnames = {p.name for p in exp.parameters}
    mnames = {m.name for m in exp.metrics}
    known = pnames | mnames | {"failed", "task", "id", "created", "suggestion"}
    unknown = [h for h in header if h not in known]
    if unknown:
        raise InvalidRequest(f"line 1: unknown column(s) {unknown}; expected parameters {sorted(pnames)} and "
                             f"metrics {sorted(mnames)}", field="file")
    missing = [p.name for p in exp.parameters if p.name not in header and not p.conditions]
    if missing:
        raise InvalidRequest(f"line 1: missing parameter column(s) {missing}", field="file")
    if len(rows) > 10001:
        raise InvalidRequest("at most 10000 observations per upload", field="file")
    out = []
    for ln, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise InvalidRequest(f"line {ln}: {len(r)} cells, the header has {len(header)}", field="file")
        cell = {h: c.strip() for h, c in zip(header, r, strict=True)}
        failed_s = cell.get("failed", "").lower()
        if failed_s not in _TRUE | _FALSE:
            raise InvalidRequest(f"line {ln}: failed must be true or false, not {cell['failed']!r}", field="file")
        failed = failed_s in _TRUE
        assignments: dict[str, Any] = {}
        for p in exp.parameters:
            raw = cell.get(p.name, "")
            if raw == "":
                continue
            if p.type == "categorical":
                assignments[p.name] = raw
            else:
                try:
                    assignments[p.name] = int(raw) if p.type == "int" and float(raw).is_integer() else float(raw)
                except ValueError:
                    raise InvalidRequest(f"line {ln}, column {p.name}: {raw!r} is not a number",
                                         field="file") from None
        item: dict[str, Any] = {"assignments": assignments}
        if failed:
            item["failed"] = True
        else:
            values = []
            for m in exp.metrics:
                raw = cell.get(m.name, "")
                if raw == "":
                    continue
                try:
                    values.append({"name": m.name, "value": float(raw)})
                except ValueError:
                    raise InvalidRequest(f"line {ln}, column {m.name}: {raw!r} is not a number",
                                         field="file") from None
            item["values"] = values
        if cell.get("task"):
            item["task"] = cell["task"]
        out.append(item)
    if not out:
        raise InvalidRequest("the CSV file has a header but no observations", field="file")
    return {"observations": out}
