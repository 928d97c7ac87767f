"""Rules that span fields: turn a parsed :class:`~assay.schemas.ExperimentCreate` into a
domain :class:`~assay.domain.Experiment`, or raise :class:`~assay.errors.InvalidRequest`
naming the field (SigOpt's rules, see ``shared/reference/sigopt.md``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from assay import schemas
from assay.domain import Bounds, Conditional, Experiment, LinearConstraint, Metric, Parameter, Task
from assay.engine.grid import MAX_GRID, grid_size
from assay.errors import InvalidRequest
from assay.schemas import ExperimentCreate, MetricIn, ParameterIn

__all__ = ["build_experiment", "build_parameter", "build_metrics", "check_feasible", "grid_size", "MAX_OPTIMIZED",
           "MAX_CONSTRAINT", "MAX_METRICS"]

MAX_OPTIMIZED = 2
MAX_CONSTRAINT = 4
MAX_METRICS = 50
MIN_SPAN = 1e-8
MAX_CONSTRAINED_INTS = 10


def _names(items: list[Any], where: str) -> None:
    seen: set[str] = set()
    for i, it in enumerate(items):
        if it.name in seen:
            raise InvalidRequest(f"Duplicate name {it.name!r} in {where}", field=f"{where}[{i}].name")
        seen.add(it.name)


def build_parameter(p: ParameterIn, where: str, conditionals: dict[str, tuple[str, ...]] | None = None
                    ) -> Parameter:
    """One parameter, checked on its own (conditions are checked against ``conditionals``)."""
    transformation = "log" if p.transformation == "log" else None
    bounds = None
    cats: tuple[str, ...] = ()
    if p.type in ("double", "int"):
        if p.categorical_values:
            raise InvalidRequest(f"{where}.categorical_values is only for categorical parameters",
                                 field=f"{where}.categorical_values")
        if p.bounds is None and not p.grid:
            raise InvalidRequest(f"{where}.bounds is required for a {p.type} parameter without a grid",
                                 field=f"{where}.bounds")
        if p.bounds is not None:
            lo, hi = p.bounds.min, p.bounds.max
            if p.type == "int" and (lo != int(lo) or hi != int(hi)):
                raise InvalidRequest(f"{where}.bounds must be integers for an int parameter",
                                     field=f"{where}.bounds")
        if p.grid:
            if p.bounds is not None and not (lo - 1e-12 <= min(p.grid) and max(p.grid) <= hi + 1e-12):
                raise InvalidRequest(f"{where}.grid values must lie within the bounds [{lo}, {hi}]",
                                     field=f"{where}.grid")
            lo, hi = min(p.grid), max(p.grid)
        elif not hi - lo >= MIN_SPAN:
            raise InvalidRequest(
                f"{where}.bounds: min ({lo}) must be less than max ({hi}) by at least {MIN_SPAN}",
                field=f"{where}.bounds")
        if transformation == "log" and lo <= 0:
            raise InvalidRequest(f"{where}: a log transformation needs bounds above 0 (min is {lo})",
                                 field=f"{where}.bounds.min")
        bounds = Bounds(float(lo), float(hi))
    else:
        if p.bounds is not None:
            raise InvalidRequest(f"{where}.bounds is not allowed on a categorical parameter",
                                 field=f"{where}.bounds")
        if transformation:
            raise InvalidRequest(f"{where}.transformation is only for double and int parameters",
                                 field=f"{where}.transformation")
        raw = p.categorical_values or []
        cats = tuple(c if isinstance(c, str) else c.name for c in raw)
        if len(cats) < 2:
            raise InvalidRequest(f"{where}.categorical_values needs at least 2 values",
                                 field=f"{where}.categorical_values")
        if len(set(cats)) != len(cats):
            raise InvalidRequest(f"{where}.categorical_values has duplicates", field=f"{where}.categorical_values")
    grid: tuple[float, ...] = ()
    if p.grid:
        if p.type == "categorical":
            raise InvalidRequest(f"{where}.grid is not allowed on categorical parameters", field=f"{where}.grid")
        if len(set(p.grid)) != len(p.grid) or len(p.grid) < 2:
            raise InvalidRequest(f"{where}.grid needs at least 2 distinct values", field=f"{where}.grid")
        if p.type == "int" and any(g != int(g) for g in p.grid):
            raise InvalidRequest(f"{where}.grid values must be integers", field=f"{where}.grid")
        if transformation == "log" and min(p.grid) <= 0:
            raise InvalidRequest(f"{where}.grid values must be above 0 with a log transformation",
                                 field=f"{where}.grid")
        grid = tuple(sorted(float(g) for g in p.grid))
    prior = None
    if p.prior is not None:
        if p.type != "double" or transformation or grid:
            raise InvalidRequest(f"{where}.prior is only for double parameters without log or grid",
                                 field=f"{where}.prior")
        extra = ({"shape_a", "shape_b"} if p.prior.name == "normal" else {"mean", "scale"}) & {
            k for k in ("mean", "scale", "shape_a", "shape_b") if getattr(p.prior, k) is not None}
        if extra:
            raise InvalidRequest(f"{where}.prior: a {p.prior.name} prior does not take {sorted(extra)}",
                                 field=f"{where}.prior.{sorted(extra)[0]}")
        if p.prior.name == "normal":
            if p.prior.mean is None or p.prior.scale is None or p.prior.scale <= 0:
                raise InvalidRequest(f"{where}.prior: a normal prior needs mean and a scale above 0",
                                     field=f"{where}.prior")
            assert bounds is not None
            if not bounds.min <= p.prior.mean <= bounds.max:
                raise InvalidRequest(f"{where}.prior.mean must lie within the bounds", field=f"{where}.prior.mean")
            prior = {"object": "normal_prior", "name": "normal", "mean": p.prior.mean, "scale": p.prior.scale}
        else:
            if not (p.prior.shape_a and p.prior.shape_b and p.prior.shape_a > 0 and p.prior.shape_b > 0):
                raise InvalidRequest(f"{where}.prior: a beta prior needs shape_a and shape_b above 0",
                                     field=f"{where}.prior")
            prior = {"object": "beta_prior", "name": "beta", "shape_a": p.prior.shape_a, "shape_b": p.prior.shape_b}
    conditions: dict[str, tuple[str, ...]] = {}
    for cname, vals in (p.conditions or {}).items():
        vals_t = (vals,) if isinstance(vals, str) else tuple(vals)
        if not vals_t:
            raise InvalidRequest(f"{where}.conditions.{cname} must list at least one value",
                                 field=f"{where}.conditions.{cname}")
        if conditionals is None or cname not in conditionals:
            raise InvalidRequest(f"{where}.conditions names unknown conditional {cname!r}",
                                 field=f"{where}.conditions.{cname}")
        for v in vals_t:
            if v not in conditionals[cname]:
                raise InvalidRequest(f"{where}.conditions.{cname}: {v!r} is not a value of that conditional",
                                     field=f"{where}.conditions.{cname}")
        conditions[cname] = vals_t
    param = Parameter(name=p.name, type=p.type, bounds=bounds, categorical_values=cats,
                      transformation=transformation, grid=grid, prior=prior, default_value=None,
                      conditions=conditions, precision=p.precision)
    if p.default_value is not None:
        from assay.space import Space

        f = f"{where}.default_value"
        value = Space([param])._check_value(param, p.default_value, f)
        if grid and value not in grid:
            raise InvalidRequest(f"{f} must be one of the grid values {list(grid)}", field=f)
        param = Parameter(**{**param.__dict__, "default_value": value})
    return param


def build_metrics(raw: list[MetricIn | str] | None, legacy: MetricIn | str | None) -> tuple[Metric, ...]:
    if raw is None:
        raw = [legacy] if legacy is not None else [MetricIn(name="value")]
    items = [MetricIn(name=m) if isinstance(m, str) else m for m in raw]
    if not items:
        raise InvalidRequest("metrics must name at least one metric", field="metrics")
    if len(items) > MAX_METRICS:
        raise InvalidRequest(f"at most {MAX_METRICS} metrics are allowed, got {len(items)}", field="metrics")
    _names(items, "metrics")
    metrics = tuple(Metric(m.name, m.objective, m.strategy, m.threshold) for m in items)
    n_opt = sum(m.strategy == "optimize" for m in metrics)
    n_con = sum(m.strategy == "constraint" for m in metrics)
    if n_opt > MAX_OPTIMIZED:
        raise InvalidRequest(f"at most {MAX_OPTIMIZED} metrics can have strategy optimize, got {n_opt}",
                             field="metrics")
    if n_con > MAX_CONSTRAINT:
        raise InvalidRequest(f"at most {MAX_CONSTRAINT} metrics can have strategy constraint, got {n_con}",
                             field="metrics")
    if n_opt == 0 and n_con == 0:
        raise InvalidRequest("at least one metric must have strategy optimize or constraint", field="metrics")
    for i, m in enumerate(metrics):
        if m.strategy == "store" and m.threshold is not None:
            raise InvalidRequest("stored metrics cannot have a threshold", field=f"metrics[{i}].threshold")
        if m.strategy == "constraint" and m.threshold is None:
            raise InvalidRequest("constraint metrics need a threshold", field=f"metrics[{i}].threshold")
        if m.strategy == "optimize" and m.threshold is not None and n_opt < 2:
            raise InvalidRequest("thresholds on optimized metrics need two optimized metrics",
                                 field=f"metrics[{i}].threshold")
    return metrics


def build_experiment(body: ExperimentCreate, client_id: int = 1, development: bool = False) -> Experiment:
    """The domain experiment for a create request, or :class:`InvalidRequest`."""
    if not body.parameters:
        raise InvalidRequest("parameters must list at least one parameter", field="parameters")
    _names(body.parameters, "parameters")
    conds = body.conditionals or []
    _names(conds, "conditionals")
    cond_map: dict[str, tuple[str, ...]] = {}
    for i, c in enumerate(conds):
        vals = tuple(v if isinstance(v, str) else v.name for v in c.values)
        if len(vals) < 2 or len(set(vals)) != len(vals):
            raise InvalidRequest("a conditional needs at least 2 distinct values", field=f"conditionals[{i}].values")
        if c.name in {p.name for p in body.parameters}:
            raise InvalidRequest(f"conditional {c.name!r} has the name of a parameter", field=f"conditionals[{i}].name")
        cond_map[c.name] = vals
    params = tuple(build_parameter(p, f"parameters[{i}]", cond_map) for i, p in enumerate(body.parameters))
    if body.metric is not None and body.metrics is not None:
        raise InvalidRequest("give metrics or the legacy metric, not both", field="metric")
    metrics = build_metrics(body.metrics, body.metric)
    if (body.observation_budget is not None and body.budget is not None
            and body.observation_budget != body.budget):
        raise InvalidRequest("budget is an alias of observation_budget; they differ", field="budget")
    budget = body.observation_budget if body.observation_budget is not None else body.budget
    n_opt = len([m for m in metrics if m.strategy == "optimize"])
    has_constraint = any(m.strategy == "constraint" for m in metrics)
    num_solutions = body.num_solutions or 1
    tasks: tuple[Task, ...] = ()
    if body.tasks is not None:
        _names(body.tasks, "tasks")
        if len(body.tasks) < 2:
            raise InvalidRequest("tasks needs at least 2 tasks", field="tasks")
        costs = [t.cost for t in body.tasks]
        for i, cost in enumerate(costs):
            if not 0 < cost <= 1:
                raise InvalidRequest("task costs must lie in (0, 1]", field=f"tasks[{i}].cost")
        if len(set(costs)) != len(costs):
            raise InvalidRequest("task costs must be distinct", field="tasks")
        if costs.count(1) != 1:
            raise InvalidRequest("exactly one task must have cost 1", field="tasks")
        if n_opt > 1 or has_constraint or num_solutions > 1:
            raise InvalidRequest("tasks cannot be combined with multiple metrics, constraint metrics "
                                 "or num_solutions", field="tasks")
        tasks = tuple(Task(t.name, t.cost) for t in body.tasks)
    if conds and (any(p.grid for p in params) or num_solutions > 1):
        raise InvalidRequest("conditionals cannot be combined with grid values or num_solutions",
                             field="conditionals")
    if num_solutions > 1:
        if n_opt != 1 or budget is None:
            raise InvalidRequest("num_solutions needs exactly one optimized metric and an observation_budget",
                                 field="num_solutions")
        if num_solutions > budget:
            raise InvalidRequest(f"num_solutions ({num_solutions}) cannot exceed the observation_budget ({budget})",
                                 field="num_solutions")
        if any(p.type == "categorical" for p in params):
            raise InvalidRequest("num_solutions does not support categorical parameters", field="num_solutions")
    lcs = _linear_constraints(body, params)
    if (n_opt > 1 or has_constraint) and budget is None:
        raise InvalidRequest("observation_budget is required with several metrics or constraint metrics",
                             field="observation_budget")
    if tasks and budget is None:
        raise InvalidRequest("observation_budget is required with tasks", field="observation_budget")
    if body.type == "grid":
        for i, p in enumerate(params):
            if p.type != "categorical" and not p.grid:
                raise InvalidRequest("a grid experiment needs grid values on every double and int parameter",
                                     field=f"parameters[{i}].grid")
        if conds or lcs or tasks:
            raise InvalidRequest("a grid experiment cannot have conditionals, linear constraints or tasks",
                                 field="type")
        if num_solutions > 1:
            raise InvalidRequest("a grid experiment cannot have num_solutions", field="num_solutions")
        budget = grid_size(params)
        if budget > MAX_GRID:
            raise InvalidRequest(f"the grid has {budget} points; at most {MAX_GRID} are allowed", field="parameters")
    for i, m in enumerate(metrics):
        if m.threshold is not None and not math.isfinite(m.threshold):
            raise InvalidRequest("thresholds must be finite", field=f"metrics[{i}].threshold")
    exp = Experiment(
        id=0, name=body.name, parameters=params, metrics=metrics, type=body.type,
        observation_budget=budget, parallel_bandwidth=body.parallel_bandwidth, conditionals=tuple(
            Conditional(n, v) for n, v in cond_map.items()), linear_constraints=tuple(lcs), tasks=tasks,
        num_solutions=body.num_solutions, metadata=body.metadata, project=body.project, client_id=client_id,
        development=development, runs_only=body.runs_only,
        training_monitor=build_training_monitor(body.training_monitor, metrics),
    )
    check_feasible(params, exp.conditionals, exp.linear_constraints)
    return exp


def build_training_monitor(tm: schemas.TrainingMonitorIn | None, metrics: Sequence[Metric]) -> dict[str, Any] | None:
    """Canonical SigOpt JSON of ``training_monitor`` (early stopping of runs from their checkpoints)."""
    if tm is None:
        return None
    names = {m.name for m in metrics}
    default = next((m.name for m in metrics if m.strategy == "optimize"), None)
    out: list[dict[str, Any]] = []
    for i, c in enumerate(tm.early_stopping_criteria or []):
        f = f"training_monitor.early_stopping_criteria[{i}]"
        metric = c.metric or default
        if metric not in names:
            raise InvalidRequest(f"{f}.metric must name one of the experiment's metrics {sorted(names)}",
                                 field=f"{f}.metric")
        name = c.name or f"{c.type}-{metric}"
        if any(o["name"] == name for o in out):
            raise InvalidRequest(f"{f}.name: duplicate criterion name {name!r}", field=f"{f}.name")
        crit: dict[str, Any] = {"object": "training_early_stopping_criteria", "type": c.type, "name": name,
                                "metric": metric, "min_checkpoints": c.min_checkpoints or 1}
        if c.type == "convergence":
            if c.reduction_factor is not None:
                raise InvalidRequest(f"{f}.reduction_factor applies to asha criteria only",
                                     field=f"{f}.reduction_factor")
            crit["lookback_checkpoints"] = c.lookback_checkpoints or 3
            crit["min_improvement"] = c.min_improvement or 0.0
        else:
            if c.lookback_checkpoints is not None or c.min_improvement is not None:
                raise InvalidRequest(f"{f}: lookback_checkpoints and min_improvement apply to convergence "
                                     "criteria only", field=f)
            crit["reduction_factor"] = c.reduction_factor or 3
        out.append(crit)
    return {"object": "training_monitor", "max_checkpoints": tm.max_checkpoints, "early_stopping_criteria": out}


def check_feasible(params: tuple[Parameter, ...], conditionals: tuple[Conditional, ...],
                   lcs: tuple[LinearConstraint, ...]) -> None:
    """:class:`InvalidRequest` when the linear constraints leave no point to suggest."""
    if not lcs:
        return
    from assay.engine.initial import infeasibility
    from assay.space import Space

    why = infeasibility(Space(params, conditionals, lcs))
    if why:
        raise InvalidRequest(f"linear_constraints: {why}", field="linear_constraints")


def _linear_constraints(body: ExperimentCreate, params: tuple[Parameter, ...]) -> list[LinearConstraint]:
    """SigOpt's rules, except that conditioned parameters are allowed: a constraint binds when all its
    parameters are active."""
    lcs: list[LinearConstraint] = []
    by_name = {p.name: p for p in params}
    int_vars: set[str] = set()
    for i, c in enumerate(body.linear_constraints or []):
        f = f"linear_constraints[{i}]"
        if not c.terms:
            raise InvalidRequest(f"{f}.terms must not be empty", field=f"{f}.terms")
        types = set()
        seen: set[str] = set()
        for j, t in enumerate(c.terms):
            p = by_name.get(t.name)
            if p is None:
                raise InvalidRequest(f"{f}.terms[{j}] names unknown parameter {t.name!r}", field=f"{f}.terms[{j}].name")
            if p.type == "categorical" or p.is_log or p.grid:
                raise InvalidRequest(f"{f}.terms[{j}]: {t.name!r} must be a double or int parameter without "
                                     "log transformation or grid", field=f"{f}.terms[{j}].name")
            if t.name in seen:
                raise InvalidRequest(f"{f}.terms[{j}]: {t.name!r} appears twice", field=f"{f}.terms[{j}].name")
            seen.add(t.name)
            types.add(p.type)
            if p.type == "int":
                int_vars.add(p.name)
        if len(types) > 1:
            raise InvalidRequest(f"{f} mixes double and int parameters", field=f"{f}.terms")
        if all(t.weight == 0 for t in c.terms):
            raise InvalidRequest(f"{f} needs a non-zero weight", field=f"{f}.terms")
        lcs.append(LinearConstraint(c.type, tuple((t.name, t.weight) for t in c.terms), c.threshold))
    if len(int_vars) > MAX_CONSTRAINED_INTS:
        raise InvalidRequest(f"linear_constraints may use at most {MAX_CONSTRAINED_INTS} int parameters, "
                             f"got {len(int_vars)}", field="linear_constraints")
    return lcs
