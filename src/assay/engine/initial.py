"""Space-filling start: scrambled Sobol points over the unit encoding."""

from __future__ import annotations

import numpy as np
from scipy.stats import qmc

from assay.space import Space

__all__ = ["sobol_points", "random_points"]


def sobol_points(space: Space, start: int, n: int, seed: int) -> np.ndarray:
    """Points ``start .. start+n-1`` of a scrambled Sobol sequence seeded by ``seed`` (``n x dim``)."""
    d = max(space.dim, 1)
    sampler = qmc.Sobol(d=d, scramble=True, seed=seed)
    if start:
        sampler.fast_forward(start)
    pts = sampler.random(n)
    return pts[:, : space.dim]


def random_points(space: Space, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform points in the unit encoding (``n x dim``)."""
    return rng.random((n, space.dim))
