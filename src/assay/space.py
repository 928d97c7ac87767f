"""The parameter space: checks assignments and maps them to and from numbers.

Two encodings, both in ``[0, 1]`` per column:

* **unit** (``dim`` columns, one per parameter): what samplers draw from. A
  categorical with ``k`` values occupies one column cut into ``k`` equal bins;
  an int ``[a, b]`` one column cut into ``b - a + 1`` bins; log parameters are
  uniform in ``log10``.
* **model** (``model_dim`` columns): what the GP sees. Doubles and ints are
  scaled like *unit* (ints at their bin centres); a categorical becomes ``k``
  one-hot columns.

Inactive parameters (by ``conditions``) are absent from assignments; they
encode to the middle of their range so the model sees a constant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay.domain import Conditional, LinearConstraint, Parameter
from assay.errors import InvalidRequest

__all__ = ["Space"]

_EPS = 1e-12


@dataclass(frozen=True)
class _Column:
    start: int
    width: int


class Space:
    """A validated set of parameters (plus conditionals and linear constraints)."""

    def __init__(
        self,
        parameters: Sequence[Parameter],
        conditionals: Sequence[Conditional] = (),
        linear_constraints: Sequence[LinearConstraint] = (),
    ) -> None:
        self.parameters = tuple(parameters)
        self.conditionals = tuple(conditionals)
        self.linear_constraints = tuple(linear_constraints)
        self.names = tuple(p.name for p in self.parameters)
        self._by_name = {p.name: p for p in self.parameters}
        cols: list[_Column] = []
        start = 0
        for p in self.parameters:
            width = len(p.categorical_values) if p.type == "categorical" else 1
            cols.append(_Column(start, width))
            start += width
        self._cols = cols
        self.model_dim = start

    # -- shape -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Columns of the *unit* encoding: one per parameter, plus one per conditional."""
        return len(self.parameters) + len(self.conditionals)

    def __len__(self) -> int:
        return len(self.parameters)

    def parameter(self, name: str) -> Parameter:
        return self._by_name[name]

    # -- scalar maps -------------------------------------------------------------------
    @staticmethod
    def _lohi(p: Parameter) -> tuple[float, float]:
        assert p.bounds is not None
        lo, hi = p.bounds.min, p.bounds.max
        if p.is_log:
            return math.log10(lo), math.log10(hi)
        if p.type == "int":
            return lo - 0.5, hi + 0.5
        return lo, hi

    def _from_unit(self, p: Parameter, u: float) -> Any:
        return self._column_from_unit(p, np.array([float(u)]))[0]

    def _to_unit(self, p: Parameter, value: Any) -> float:
        if p.grid:
            grid = sorted(p.grid)
            idx = int(np.argmin([abs(g - float(value)) for g in grid]))
            return (idx + 0.5) / len(grid)
        if p.type == "categorical":
            k = len(p.categorical_values)
            return (p.categorical_values.index(value) + 0.5) / k
        lo, hi = self._lohi(p)
        x = math.log10(value) if p.is_log else float(value)
        return min(max((x - lo) / (hi - lo), 0.0), 1.0)

    # -- public maps -------------------------------------------------------------------
    def active(self, assignments: Mapping[str, Any]) -> list[Parameter]:
        """Parameters switched on by the conditional values in ``assignments``."""
        out = []
        for p in self.parameters:
            if all(assignments.get(c) in vals for c, vals in p.conditions.items()):
                out.append(p)
        return out

    def _column_from_unit(self, p: Parameter, u: np.ndarray) -> list[Any]:
        """Vectorized :meth:`_from_unit` over one column."""
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        if p.grid or p.type == "categorical":
            values: Sequence[Any] = sorted(p.grid) if p.grid else p.categorical_values
            idx = np.minimum((u * len(values)).astype(int), len(values) - 1)
            if p.type == "categorical":
                return [values[i] for i in idx]
            arr = np.asarray(values, dtype=float)[idx]
            return arr.astype(int).tolist() if p.type == "int" else arr.tolist()
        lo, hi = self._lohi(p)
        x = lo + u * (hi - lo)
        if p.is_log:
            x = 10.0**x
        assert p.bounds is not None
        if p.type == "int":
            return np.clip(np.round(x), p.bounds.min, p.bounds.max).astype(int).tolist()
        return np.clip(x, p.bounds.min, p.bounds.max).tolist()

    def from_unit(self, u: np.ndarray) -> list[dict[str, Any]]:
        """Map rows of ``u`` (``n x dim``) to assignments (inactive parameters omitted)."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        n_par = len(self.parameters)
        conds: dict[str, list[Any]] = {}
        for j, c in enumerate(self.conditionals):
            k = len(c.values)
            idx = np.minimum((np.clip(u[:, n_par + j], 0.0, 1.0) * k).astype(int), k - 1)
            conds[c.name] = [c.values[i] for i in idx]
        cols = [(p.name, self._column_from_unit(p, u[:, i]), p.conditions) for i, p in enumerate(self.parameters)]
        out = []
        for r in range(len(u)):
            a: dict[str, Any] = {name: vals[r] for name, vals in conds.items()}
            for name, vals, when in cols:
                if not when or all(a.get(c) in ok for c, ok in when.items()):
                    a[name] = vals[r]
            out.append(a)
        return out

    def to_unit_many(self, assignments: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Vectorized :meth:`to_unit` (``len(assignments) x dim``)."""
        n = len(assignments)
        U = np.full((n, self.dim), 0.5)
        for i, p in enumerate(self.parameters):
            rows = [r for r, a in enumerate(assignments) if p.name in a]
            if not rows:
                continue
            vals = [assignments[r][p.name] for r in rows]
            if p.type == "categorical" and not p.grid:
                pos = {v: j for j, v in enumerate(p.categorical_values)}
                U[rows, i] = (np.array([pos[v] for v in vals]) + 0.5) / len(p.categorical_values)
            elif p.grid:
                grid = np.asarray(sorted(p.grid), dtype=float)
                idx = np.argmin(np.abs(grid[None, :] - np.asarray(vals, dtype=float)[:, None]), axis=1)
                U[rows, i] = (idx + 0.5) / len(grid)
            else:
                lo, hi = self._lohi(p)
                x = np.asarray(vals, dtype=float)
                if p.is_log:
                    x = np.log10(x)
                U[rows, i] = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
        n_par = len(self.parameters)
        for j, c in enumerate(self.conditionals):
            pos = {v: k for k, v in enumerate(c.values)}
            for r, a in enumerate(assignments):
                if c.name in a:
                    U[r, n_par + j] = (pos[a[c.name]] + 0.5) / len(c.values)
        return U

    def to_unit(self, assignments: Mapping[str, Any]) -> np.ndarray:
        """Inverse of :meth:`from_unit` for one assignment (inactive parameters at 0.5)."""
        row = np.full(self.dim, 0.5)
        for i, p in enumerate(self.parameters):
            if p.name in assignments:
                row[i] = self._to_unit(p, assignments[p.name])
        n_par = len(self.parameters)
        for j, c in enumerate(self.conditionals):
            if c.name in assignments:
                row[n_par + j] = (c.values.index(assignments[c.name]) + 0.5) / len(c.values)
        return row

    def encode(self, assignments: Mapping[str, Any]) -> np.ndarray:
        """Model encoding of one assignment (length ``model_dim``)."""
        x = np.zeros(self.model_dim)
        for p, col in zip(self.parameters, self._cols, strict=True):
            if p.type == "categorical":
                if p.name in assignments:
                    x[col.start + p.categorical_values.index(assignments[p.name])] = 1.0
                else:
                    x[col.start:col.start + col.width] = 1.0 / col.width
            else:
                x[col.start] = self._to_unit(p, assignments[p.name]) if p.name in assignments else 0.5
        return x

    def encode_many(self, assignments: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if not assignments:
            return np.zeros((0, self.model_dim))
        return np.stack([self.encode(a) for a in assignments])

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """Nearest valid assignment to a model-encoded point (argmax for one-hot blocks)."""
        a: dict[str, Any] = {}
        for p, col in zip(self.parameters, self._cols, strict=True):
            if p.type == "categorical":
                a[p.name] = p.categorical_values[int(np.argmax(x[col.start:col.start + col.width]))]
            else:
                a[p.name] = self._from_unit(p, x[col.start])
        return a

    def round_model(self, x: np.ndarray) -> np.ndarray:
        """Snap a model-encoded point onto valid values (ints, one-hot, grid)."""
        return self.encode(self.decode(x))

    # -- checks ------------------------------------------------------------------------
    def validate_assignments(self, assignments: Any, where: str = "assignments") -> dict[str, Any]:
        """Check a user-given assignment; returns it with values cast to their types.

        Raises :class:`InvalidRequest` naming the offending key.
        """
        if not isinstance(assignments, Mapping):
            raise InvalidRequest(f"{where} must be an object mapping parameter names to values", field=where)
        known = set(self.names) | {c.name for c in self.conditionals}
        for key in assignments:
            if key not in known:
                raise InvalidRequest(f"Unknown parameter {key!r} in {where}", field=f"{where}.{key}")
        out: dict[str, Any] = {}
        for c in self.conditionals:
            if c.name not in assignments:
                raise InvalidRequest(f"Missing conditional {c.name!r} in {where}", field=f"{where}.{c.name}")
            v = assignments[c.name]
            if v not in c.values:
                raise InvalidRequest(
                    f"{where}.{c.name} must be one of {list(c.values)}, got {v!r}", field=f"{where}.{c.name}")
            out[c.name] = v
        active = {p.name for p in self.active(out)}
        for p in self.parameters:
            f = f"{where}.{p.name}"
            if p.name not in active:
                if p.name in assignments and assignments[p.name] is not None:
                    raise InvalidRequest(f"Parameter {p.name!r} is not active for these conditionals", field=f)
                continue
            if p.name not in assignments:
                raise InvalidRequest(f"Missing parameter {p.name!r} in {where}", field=f)
            out[p.name] = self._check_value(p, assignments[p.name], f)
        self.check_linear_constraints(out, where)
        return out

    def _check_value(self, p: Parameter, v: Any, f: str) -> Any:
        if p.type == "categorical":
            if not isinstance(v, str) or v not in p.categorical_values:
                raise InvalidRequest(f"{f} must be one of {list(p.categorical_values)}, got {v!r}", field=f)
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InvalidRequest(f"{f} must be a number, got {v!r}", field=f)
        if not math.isfinite(v):
            raise InvalidRequest(f"{f} must be finite, got {v!r}", field=f)
        if p.type == "int":
            if float(v) != int(v):
                raise InvalidRequest(f"{f} must be an integer, got {v!r}", field=f)
            v = int(v)
        else:
            v = float(v)
        assert p.bounds is not None
        if not (p.bounds.min - _EPS <= v <= p.bounds.max + _EPS):
            raise InvalidRequest(
                f"{f}={v!r} is outside the bounds [{p.bounds.min}, {p.bounds.max}]", field=f)
        return v

    def check_linear_constraints(self, assignments: Mapping[str, Any], where: str = "assignments") -> None:
        for i, c in enumerate(self.linear_constraints):
            if not all(n in assignments for n, _ in c.terms):
                continue
            lhs = sum(w * float(assignments[n]) for n, w in c.terms)
            ok = lhs >= c.threshold - 1e-9 if c.type == "greater_than" else lhs <= c.threshold + 1e-9
            if not ok:
                raise InvalidRequest(
                    f"{where} violate linear_constraints[{i}] ({c.type} {c.threshold}): sum = {lhs:g}",
                    field=f"linear_constraints[{i}]")

    def satisfies_linear_constraints(self, assignments: Mapping[str, Any]) -> bool:
        try:
            self.check_linear_constraints(assignments)
        except InvalidRequest:
            return False
        return True

    def key(self, assignments: Mapping[str, Any]) -> tuple:
        """A hashable identity of an assignment (for duplicate detection)."""
        return tuple(sorted((k, round(v, 12) if isinstance(v, float) else v) for k, v in assignments.items()))
