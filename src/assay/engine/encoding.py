"""The model encoding used by the GP and the acquisition optimizer.

Built on :class:`~assay.space.Space`'s *unit* encoding (one column per parameter and per
conditional). Numeric parameters keep their unit column (log already applied, ints and
grids at bin centres after snapping); categorical parameters and conditionals become
one-hot blocks. The conditional one-hot columns tell the model which branch a point is
in, and inactive parameters sit at a constant (0.5), so two points in the same branch
are compared on their active parameters only: the encoding respects the hierarchy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay.space import Space

__all__ = ["Encoder"]


@dataclass(frozen=True)
class _Block:
    unit: int  # column in the unit encoding
    start: int  # first column in the model encoding
    width: int  # 1 for numeric, k for one-hot


class Encoder:
    """Maps assignments to model vectors in ``[0, 1]^dim`` and back, always to valid values."""

    def __init__(self, space: Space) -> None:
        self.space = space
        blocks: list[_Block] = []
        start = 0
        n_par = len(space.parameters)
        for i, p in enumerate(space.parameters):
            w = len(p.categorical_values) if p.type == "categorical" else 1
            blocks.append(_Block(i, start, w))
            start += w
        for j, c in enumerate(space.conditionals):
            blocks.append(_Block(n_par + j, start, len(c.values)))
            start += len(c.values)
        self.blocks = tuple(blocks)
        self.dim = start
        self.onehot = tuple(b for b in blocks if b.width > 1 or b.unit >= n_par)
        #: model columns of numeric parameters (free for gradient-based search)
        self.numeric_cols = tuple(b.start for b in blocks if b.unit < n_par and b.width == 1
                                  and space.parameters[b.unit].type != "categorical")
        self.fixed_cols = tuple(c for b in self.onehot for c in range(b.start, b.start + b.width))
        self._col_of = {p.name: blocks[i].start for i, p in enumerate(space.parameters)}

    # -- maps --------------------------------------------------------------------------
    def _unit_to_model(self, u: np.ndarray) -> np.ndarray:
        x = np.zeros(self.dim)
        for b in self.blocks:
            if b.width == 1 and b.unit < len(self.space.parameters) and b not in self.onehot:
                x[b.start] = u[b.unit]
            else:
                k = b.width
                x[b.start + min(int(u[b.unit] * k), k - 1)] = 1.0
        return x

    def _model_to_unit(self, x: np.ndarray) -> np.ndarray:
        u = np.empty(self.space.dim)
        for b in self.blocks:
            if b in self.onehot:
                u[b.unit] = (int(np.argmax(x[b.start:b.start + b.width])) + 0.5) / b.width
            else:
                u[b.unit] = x[b.start]
        return u

    def encode(self, assignments: Mapping[str, Any]) -> np.ndarray:
        """Model vector of one assignment (inactive parameters at 0.5)."""
        u = self.space.to_unit(assignments)
        x = self._unit_to_model(u)
        for b in self.onehot:  # inactive categorical: uniform block (a constant)
            if b.unit < len(self.space.parameters) and self.space.parameters[b.unit].name not in assignments:
                x[b.start:b.start + b.width] = 1.0 / b.width
        return x

    def encode_many(self, assignments: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Vectorized :meth:`encode` (``len(assignments) x dim``)."""
        if not assignments:
            return np.zeros((0, self.dim))
        U = self.space.to_unit_many(assignments)
        X = np.zeros((len(U), self.dim))
        n_par = len(self.space.parameters)
        rows = np.arange(len(U))
        for b in self.blocks:
            if b not in self.onehot:
                X[:, b.start] = U[:, b.unit]
                continue
            idx = np.minimum((U[:, b.unit] * b.width).astype(int), b.width - 1)
            X[rows, b.start + idx] = 1.0
            if b.unit < n_par:  # inactive categorical: uniform block (a constant)
                name = self.space.parameters[b.unit].name
                off = [r for r, a in enumerate(assignments) if name not in a]
                if off:
                    X[off, b.start:b.start + b.width] = 1.0 / b.width
        return X

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """Nearest valid assignment (ints rounded, one-hot by argmax, inactive parameters omitted)."""
        u = np.clip(self._model_to_unit(np.asarray(x, dtype=float)), 0.0, 1.0)
        return self.space.from_unit(u[None, :])[0]

    def snap(self, x: np.ndarray) -> np.ndarray:
        """Project a model vector onto the valid points."""
        return self.encode(self.decode(x))

    def from_unit(self, u: np.ndarray) -> list[dict[str, Any]]:
        return self.space.from_unit(u)

    # -- linear constraints ------------------------------------------------------------
    def linear_constraints(self) -> list[tuple[list[int], list[float], float]]:
        """Linear constraints as ``(columns, coefficients, rhs)`` meaning ``sum c*x[col] >= rhs``
        in the model encoding (ints use their continuous relaxation)."""
        out = []
        for lc in self.space.linear_constraints:
            sign = 1.0 if lc.type == "greater_than" else -1.0
            cols, coefs, rhs = [], [], sign * lc.threshold
            for name, w in lc.terms:
                p = self.space.parameter(name)
                assert p.bounds is not None
                lo, hi = p.bounds.min, p.bounds.max
                if p.type == "int":
                    lo, hi = lo - 0.5, hi + 0.5
                cols.append(self._col_of[name])
                coefs.append(sign * w * (hi - lo))
                rhs -= sign * w * lo
            out.append((cols, coefs, rhs))
        return out
