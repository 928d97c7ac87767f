"""Plot-ready summaries of an experiment for the dashboard (pure: domain objects in, JSON-able dicts out).

Everything is computed here, on the server, with numpy over :class:`ObservationColumns`; the browser
gets a payload whose size does not grow with the experiment: plots get at most ``max_points`` rows (a
deterministic sample that always keeps the best rows and the newest ones, labelled "showing N of M"),
the best-seen trace only its change points, the contour a 30x30 grid, and the history table one page at
a time (:func:`history_page`, sorted and filtered here).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from assay.domain import Experiment, ObservationColumns, QueuedSuggestion, Suggestion, total_cost
from assay.engine.analysis import best_rows, feasible_mask, metric_column
from assay.errors import InvalidRequest

__all__ = ["experiment_view", "experiment_row", "contour", "history_csv", "history_page",
           "parse_observations_csv", "importances", "MAX_POINTS", "PAGE_SIZE"]

MAX_POINTS = 1000  # rows drawn per plot; SVG markers stay quick at this size
PAGE_SIZE = 50  # history rows per page
NEWEST = 100  # the newest rows are always drawn

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


def _ok_mask(exp: Experiment, cols: ObservationColumns) -> np.ndarray:
    """Feasible and (with tasks) full cost: the rows that count for "best"."""
    ok = feasible_mask(cols, exp.metrics)
    if exp.tasks:
        ok &= np.array([t is not None and c >= 1.0 for t, c in zip(cols.task, cols.cost, strict=True)], dtype=bool)
    return ok


def _best_trace(exp: Experiment, cols: ObservationColumns, ok: np.ndarray) -> dict[str, Any]:
    """Best value seen so far, per optimized metric, as a step function: its change points plus the last row."""
    out: dict[str, Any] = {}
    n = len(cols)
    for m in exp.optimized_metrics:
        sign = 1.0 if m.objective == "maximize" else -1.0
        v = metric_column(cols, m.name) * sign
        v[~ok | np.isnan(v)] = -np.inf
        run = np.maximum.accumulate(v) if n else v
        prev = np.concatenate(([-np.inf], run[:-1]))
        at = np.flatnonzero(run > prev)
        xs = (at + 1).tolist()
        ys = (run[at] * sign).tolist()
        if ys and xs[-1] != n:
            xs.append(n)
            ys.append(ys[-1])
        out[m.name] = {"x": xs, "y": ys}
    return out


def _sample(n: int, keep: Sequence[int], max_points: int) -> np.ndarray:
    """Row positions to draw: all of them up to ``max_points``; beyond, exactly ``max_points`` rows (more only
    when ``keep`` alone is larger): ``keep``, the newest rows, and evenly spaced rows of the rest."""
    if n <= max_points:
        return np.arange(n)
    chosen = np.union1d(np.asarray(keep, dtype=int), np.arange(max(0, n - NEWEST), n))
    room = max_points - len(chosen)
    if room > 0:
        others = np.setdiff1d(np.arange(n), chosen)
        pick = np.unique(np.linspace(0, len(others) - 1, room).round().astype(int))
        chosen = np.union1d(chosen, others[pick])
    return chosen


def _encoded(exp: Experiment, name: str, col: Sequence[Any]) -> np.ndarray:
    p = exp.parameter(name)
    if p.type == "categorical":
        idx = {c: i for i, c in enumerate(p.categorical_values)}
        return np.array([idx.get(v, np.nan) if v is not None else np.nan for v in col], dtype=float)
    try:  # the stored values of a numeric parameter are numbers (or missing): one conversion
        x = np.array([np.nan if v is None else v for v in col], dtype=float)
        if x.size:
            x[~np.isfinite(x)] = np.nan
    except (TypeError, ValueError):
        x = np.array([_num(v) if _num(v) is not None else np.nan for v in col], dtype=float)
    if p.is_log:
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(np.where(x > 0, x, np.nan))
    return x


def importances(exp: Experiment, params: Mapping[str, Sequence[Any]], y: np.ndarray) -> dict[str, float]:
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
            _, groups = np.unique(xv, return_inverse=True)
        else:
            edges = np.unique(np.quantile(xv, np.linspace(0, 1, 11)))
            groups = np.digitize(xv, edges[1:-1])
        counts = np.bincount(groups)
        sums = np.bincount(groups, weights=yv)
        nz = counts > 0
        means = sums[nz] / counts[nz]
        total = float(np.var(yv))
        between = float((counts[nz] * (means - yv.mean()) ** 2).sum()) / len(yv)
        out[p.name] = round(between / total, 4) if total > 0 else 0.0
    return out


def _params(exp: Experiment, cols: ObservationColumns) -> dict[str, list[Any]]:
    return {p.name: [a.get(p.name) for a in cols.assignments] for p in exp.parameters}


def _rows(exp: Experiment, cols: ObservationColumns, at: Sequence[int], ok: np.ndarray,
          best: set[int]) -> list[dict[str, Any]]:
    """Rows ``at`` as objects (the history table's page)."""
    out = []
    for i in at:
        i = int(i)
        a, v = cols.assignments[i], cols.values[i]
        out.append({"n": i + 1, "id": str(cols.id[i]), "created": cols.created[i], "failed": cols.failed[i],
                    "feasible": bool(ok[i]), "best": i in best, "task": cols.task[i],
                    "suggestion": str(cols.suggestion_id[i]) if cols.suggestion_id[i] is not None else None,
                    "p": {p.name: a.get(p.name) for p in exp.parameters},
                    "m": {m.name: v.get(m.name) for m in exp.metrics}})
    return out


def experiment_view(exp: Experiment, cols: ObservationColumns, open_suggestions: Sequence[Suggestion] = (),
                    queued: Sequence[QueuedSuggestion] = (), *, max_points: int = MAX_POINTS) -> dict[str, Any]:
    """Everything the experiment page draws, in one JSON object whose size does not grow with the
    number of observations (the history table is paged separately: :func:`history_page`)."""
    n = len(cols)
    ok = _ok_mask(exp, cols)
    best = best_rows(cols, exp.metrics, exp.tasks).tolist()
    opt = exp.optimized_metrics
    pareto = best if len(opt) >= 2 else []
    sample = _sample(n, sorted(set(best)), max_points)
    at = {int(r): k for k, r in enumerate(sample)}
    params = _params(exp, cols)
    failed = np.array(cols.failed, dtype=bool)
    imp: dict[str, Any] = {}
    if opt and n:
        y = metric_column(cols, opt[0].name)
        y[~ok] = np.nan
        imp = {"metric": opt[0].name, "method": "correlation ratio", "values": importances(exp, params, y)}
    tasks = []
    for t in exp.tasks:
        mine = [c for name, c in zip(cols.task, cols.cost, strict=True) if name == t.name]
        tasks.append({"name": t.name, "cost": t.cost, "count": len(mine), "cost_total": total_cost(mine)})
    sel = sample.tolist()
    return {
        "experiment": exp.to_json(),
        "count": n,
        "failed_count": int(failed.sum()),
        "points": {
            "n": [i + 1 for i in sel],
            "id": [str(cols.id[i]) for i in sel],
            "failed": [cols.failed[i] for i in sel],
            "feasible": [bool(ok[i]) for i in sel],
            "task": [cols.task[i] for i in sel],
            "params": {k: [v[i] for i in sel] for k, v in params.items()},
            "metrics": {m.name: [cols.values[i].get(m.name) for i in sel] for m in exp.metrics},
        },
        "sampled": len(sel) < n,
        "best_rows": [at[i] for i in best],
        "pareto_rows": [at[i] for i in pareto],
        "trace": _best_trace(exp, cols, ok),
        "importance": imp,
        "tasks": tasks,
        "open_suggestions": [{"id": str(s.id), "assignments": s.assignments, "created": s.created,
                              "task": s.task.name if s.task else None, "source": s.source}
                             for s in open_suggestions],
        "queued": [{"id": str(q.id), "assignments": q.assignments, "created": q.created,
                    "task": q.task.name if q.task else None} for q in queued],
    }


# -- the history table: filter, sort and page on the server ---------------------------------------
_COND = re.compile(r"^([^<>=!~]+?)\s*(>=|<=|!=|=|<|>|~)\s*(.*)$")
_YES = {"yes", "true", "1", "y"}


def _history_columns(exp: Experiment, cols: ObservationColumns) -> dict[str, tuple[str, list[Any]]]:
    """Sort/filter keys (as the page names them) -> (label, values)."""
    out: dict[str, tuple[str, list[Any]]] = {
        "n": ("#", list(range(1, len(cols) + 1))), "id": ("id", cols.id), "created": ("created", cols.created),
        "failed": ("failed", cols.failed)}
    if exp.tasks:
        out["task"] = ("task", cols.task)
    for p in exp.parameters:
        out["p:" + p.name] = (p.name, [a.get(p.name) for a in cols.assignments])
    for m in exp.metrics:
        out["m:" + m.name] = (m.name, [v.get(m.name) for v in cols.values])
    return out


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).lower()


def _condition(values: list[Any], op: str, raw: str) -> Callable[[int], bool]:
    """One ``column op value`` test (the page's filter language; see app.js ``parseFilter``)."""
    want = raw.lower()
    try:
        num: float | None = float(raw) if raw else None
    except ValueError:
        num = None

    def test(i: int) -> bool:
        v = values[i]
        if op == "~":
            return want in _text(v)
        if v is None:
            return op == "!="
        if isinstance(v, bool):
            b = want in _YES
            return v != b if op == "!=" else (v == b if op == "=" else False)
        if isinstance(v, int | float) and num is not None:
            a: Any = v
            c: Any = num
        else:
            a, c = _text(v), want
        return {">": a > c, "<": a < c, ">=": a >= c, "<=": a <= c, "=": a == c, "!=": a != c}[op]

    return test


def _filter(text: str, columns: dict[str, tuple[str, list[Any]]]) -> Callable[[int], bool]:
    names = {label.lower(): vals for label, vals in columns.values()} | {k.lower(): v for k, (_, v) in columns.items()}
    tests: list[Callable[[int], bool]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        m = _COND.match(part)
        if m and m.group(1).strip().lower() in names:
            tests.append(_condition(names[m.group(1).strip().lower()], m.group(2), m.group(3).strip()))
        elif m and not re.search(r"\s", m.group(1).strip()):
            known = ", ".join(label for label, _ in columns.values())
            raise InvalidRequest(f"filter: unknown column {m.group(1).strip()!r}; columns are {known}",
                                 field="filter")
        else:
            tests.append(_text_search(part.lower(), [vals for _, vals in columns.values()]))
    return lambda i: all(t(i) for t in tests)


def _text_search(needle: str, every: list[Sequence[Any]]) -> Callable[[int], bool]:
    """Row ``i`` matches when any column's text contains ``needle``."""
    return lambda i: any(needle in _text(c[i]) for c in every)


def history_page(exp: Experiment, cols: ObservationColumns, *, offset: int = 0, limit: int = PAGE_SIZE,
                 sort: str = "n", order: str = "descending", filter: str = "") -> dict[str, Any]:
    """One page of the observation history, filtered and sorted over every observation."""
    if limit < 1 or limit > 1000:
        raise InvalidRequest("limit must be between 1 and 1000", field="limit")
    if offset < 0:
        raise InvalidRequest("offset must not be negative", field="offset")
    if order not in ("ascending", "descending"):
        raise InvalidRequest("order must be ascending or descending", field="order")
    columns = _history_columns(exp, cols)
    if sort not in columns:
        raise InvalidRequest(f"sort: unknown column {sort!r}; one of {sorted(columns)}", field="sort")
    keep = _filter(filter, columns)
    rows = [i for i in range(len(cols)) if keep(i)]
    vals = columns[sort][1]
    present = [i for i in rows if vals[i] is not None and vals[i] != ""]
    missing = [i for i in rows if vals[i] is None or vals[i] == ""]
    present.sort(key=lambda i: vals[i], reverse=order == "descending")
    ordered = present + missing  # empty cells last either way
    ok = _ok_mask(exp, cols)
    best = set(best_rows(cols, exp.metrics, exp.tasks).tolist())
    return {"total": len(cols), "matched": len(ordered), "offset": offset, "limit": limit,
            "rows": _rows(exp, cols, ordered[offset:offset + limit], ok, best)}


def contour(exp: Experiment, cols: ObservationColumns, x: str, y: str, metric: str,
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
    ex = _encoded(exp, x, [a.get(x) for a in cols.assignments])
    ey = _encoded(exp, y, [a.get(y) for a in cols.assignments])
    z = metric_column(cols, metric)
    z[np.array(cols.failed, dtype=bool)] = np.nan
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
    if len(z) > 1000:  # bound the work: an evenly spaced subset is plenty for a 30x30 picture
        pick = np.linspace(0, len(z) - 1, 1000).round().astype(int)
        px, py, z = px[pick], py[pick], z[pick]
    d2 = np.square(ux.reshape(-1, 1) - px)
    d2 += np.square(uy.reshape(-1, 1) - py)
    np.maximum(d2, 1e-12, out=d2)
    w = 1.0 / (d2 * np.sqrt(d2))  # weights 1 / distance^3
    grid_z = (w @ z) / w.sum(axis=1)
    return {"x": vx.tolist(), "y": vy.tolist(), "z": grid_z.reshape(size, size).round(8).tolist(),
            "points": int(m.sum()), "method": "inverse-distance interpolation"}


def history_csv(exp: Experiment, cols: ObservationColumns) -> str:
    """Every observation as CSV: id, created, suggestion, task, failed, parameters, metric values."""
    buf = io.StringIO()
    w = csv.writer(buf)
    pnames = [p.name for p in exp.parameters]
    mnames = [m.name for m in exp.metrics]
    w.writerow(["id", "created", "suggestion", "task", "failed", *pnames, *mnames])
    for i in range(len(cols)):
        a, v = cols.assignments[i], cols.values[i]
        w.writerow([cols.id[i], cols.created[i], cols.suggestion_id[i] or "", cols.task[i] or "",
                    str(cols.failed[i]).lower(), *("" if a.get(n) is None else a[n] for n in pnames),
                    *("" if v.get(n) is None else repr(v[n]) for n in mnames)])
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
