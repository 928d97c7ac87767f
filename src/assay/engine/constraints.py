"""Linear constraints as a polytope in the unit encoding, and sampling inside it.

A linear constraint ``sum(w_i * x_i) <= t`` (or ``>= t``) over double/int parameters is
linear in the unit coordinates ``u_i`` too (those parameters are never log or grid), so
the feasible region of the unit cube is a polytope ``{u : A u <= b, 0 <= u <= 1}``.

A constraint binds only when every parameter it names is active (see
:meth:`assay.space.Space.check_linear_constraints`), so the polytope depends on the
conditional values; :func:`polytope` takes the set of active parameter names.

:func:`hit_and_run` draws points inside a polytope (uniform, or weighted by the
parameters' priors through a Metropolis step), starting from its Chebyshev centre.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from assay.domain import Parameter
from assay.space import Space

__all__ = ["Polytope", "polytope", "chebyshev_center", "hit_and_run", "model_inequalities", "unit_affine"]


def unit_affine(p: Parameter) -> tuple[float, float]:
    """``(offset, scale)`` with ``x = offset + scale * u`` for a linear (non-log) double or int parameter.

    Ints use the same bins as :class:`~assay.space.Space` (``[min - 0.5, max + 0.5]``), then round.
    """
    assert p.bounds is not None
    lo, hi = p.bounds.min, p.bounds.max
    if p.type == "int":
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi - lo


@dataclass(frozen=True)
class Polytope:
    """``{u : a @ u[cols] <= b}`` inside the unit cube; ``cols`` index parameter columns of the unit encoding."""

    cols: tuple[int, ...]
    a: np.ndarray  # (rows x len(cols))
    b: np.ndarray  # (rows,)

    @property
    def empty_rows(self) -> bool:
        return self.a.shape[0] == 0

    def contains(self, u: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        """Row mask of ``u`` (``n x dim``) inside the polytope."""
        u = np.atleast_2d(u)
        if self.empty_rows:
            return np.ones(len(u), dtype=bool)
        return np.all(u[:, list(self.cols)] @ self.a.T <= self.b + tol, axis=1)


def polytope(space: Space, active: Iterable[str] | None = None) -> Polytope:
    """The constraints of ``space`` that bind when the parameters ``active`` are on (default: all)."""
    on = set(space.names if active is None else active)
    index = {n: i for i, n in enumerate(space.names)}
    rows = [c for c in space.linear_constraints if all(n in on for n, _ in c.terms)]
    cols = sorted({index[n] for c in rows for n, _ in c.terms})
    pos = {c: j for j, c in enumerate(cols)}
    a = np.zeros((len(rows), len(cols)))
    b = np.zeros(len(rows))
    for r, c in enumerate(rows):
        const = 0.0
        for name, w in c.terms:
            off, scale = unit_affine(space.parameter(name))
            a[r, pos[index[name]]] += w * scale
            const += w * off
        sign = 1.0 if c.type == "less_than" else -1.0
        a[r] *= sign
        b[r] = sign * (c.threshold - const)
    return Polytope(tuple(cols), a, b)


def chebyshev_center(poly: Polytope) -> tuple[np.ndarray, float]:
    """Centre and radius of the largest ball inside the polytope (radius <= 0: empty or flat)."""
    from scipy.optimize import linprog

    d = len(poly.cols)
    if d == 0:
        return np.zeros(0), 0.5
    # rows: polytope, u <= 1, -u <= 0 ; variables (u, r), maximise r
    a = np.vstack([poly.a, np.eye(d), -np.eye(d)])
    b = np.concatenate([poly.b, np.ones(d), np.zeros(d)])
    norms = np.linalg.norm(a, axis=1)
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.c_[a, norms], b_ub=b,
                  bounds=[(None, None)] * d + [(None, 1.0)], method="highs")
    if res.status != 0:
        return np.full(d, 0.5), -1.0
    return res.x[:d], float(res.x[d])


def hit_and_run(poly: Polytope, n: int, rng: np.random.Generator, *,
                log_density: Callable[[np.ndarray], np.ndarray] | None = None,
                start: np.ndarray | None = None, steps: int | None = None) -> np.ndarray:
    """``n`` points (``n x len(cols)``) inside ``poly`` from ``n`` independent hit-and-run chains.

    ``log_density`` (of rows in the polytope's columns) makes it Metropolis-within-hit-and-run,
    targeting that density restricted to the polytope; otherwise the target is uniform.
    Raises ``ValueError`` when the polytope has no interior.
    """
    d = len(poly.cols)
    if d == 0 or n == 0:
        return np.zeros((n, d))
    if start is None:
        start, radius = chebyshev_center(poly)
        if radius <= 1e-12:
            raise ValueError("the linear constraints leave no feasible region")
    a = np.vstack([poly.a, np.eye(d), -np.eye(d)])
    b = np.concatenate([poly.b, np.ones(d), np.zeros(d)])
    x = np.tile(start, (n, 1))
    logp = log_density(x) if log_density is not None else None
    steps = steps or min(40 + 10 * d, 600)
    for _ in range(steps):
        direction = rng.standard_normal((n, d))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        ad = direction @ a.T  # (n x rows)
        slack = np.maximum(b - x @ a.T, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = slack / ad
        hi = np.where(ad > 1e-15, ratio, np.inf).min(axis=1)
        lo = np.where(ad < -1e-15, ratio, -np.inf).max(axis=1)
        hi = np.maximum(hi, 0.0)
        lo = np.minimum(lo, 0.0)
        t = lo + rng.random(n) * (hi - lo)
        proposal = x + t[:, None] * direction
        if log_density is None:
            x = proposal
        else:
            new = log_density(proposal)
            assert logp is not None
            accept = np.log(rng.random(n)) < new - logp
            x = np.where(accept[:, None], proposal, x)
            logp = np.where(accept, new, logp)
    return np.clip(x, 0.0, 1.0)


def model_inequalities(space: Space, columns: list[int] | None = None) -> list[tuple[list[int], list[float], float]]:
    """The linear constraints as ``(indices, coefficients, rhs)`` meaning ``sum(c * x[i]) >= rhs``.

    ``x`` is the model encoding of :class:`~assay.space.Space` (doubles and ints use the unit
    coordinates there too), which is the form BoTorch's ``optimize_acqf(inequality_constraints=...)``
    takes (convert to tensors). ``columns`` maps parameter index to model column (default: the space's).
    All constraints are returned, whatever the conditionals (conditioned parameters in a
    constraint are then constrained as if active).
    """
    cols = columns if columns is not None else [space._cols[i].start for i in range(len(space.parameters))]
    poly = polytope(space)
    out = []
    for r in range(poly.a.shape[0]):
        idx = [cols[c] for c, w in zip(poly.cols, poly.a[r], strict=True) if w != 0.0]
        coef = [-float(w) for w in poly.a[r] if w != 0.0]
        out.append((idx, coef, -float(poly.b[r])))
    return out
