"""Acquisition maximization over mixed spaces (:func:`assay.engine.acquisition.maximize`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from assay.domain import Bounds, Parameter
from assay.engine import acquisition
from assay.engine.encoding import Encoder
from assay.space import Space

SPACE = Space([Parameter("x", "double", Bounds(0, 1)),
               Parameter("c", "categorical", categorical_values=("a", "b"))])


def _narrow_peak_in_b() -> Any:
    """1 - small slope everywhere in category "a"; in "b" below 1 except within 0.05 of x = 0.9,
    where it rises to 2: random points rate "a" higher, the best point is in "b"."""
    import torch
    from botorch.acquisition import AcquisitionFunction
    from botorch.models import SingleTaskGP

    model = SingleTaskGP(torch.rand(3, 3, dtype=torch.double), torch.rand(3, 1, dtype=torch.double))

    class Peak(AcquisitionFunction):
        def forward(self, X: Any) -> Any:
            x, b = X[..., 0, 0], X[..., 0, 2]  # one-hot column of "b" (columns: x, a, b)
            in_a = 1.0 - 0.1 * (x - 0.5) ** 2
            in_b = 2.0 - 400.0 * (x - 0.9) ** 2
            return torch.where(b > 0.5, in_b, in_a)

    return Peak(model)


def _pool_misses_the_peak(seed: int) -> bool:
    pool = acquisition._pool(Encoder(SPACE), np.random.default_rng(seed), 16, ())
    return all(abs(p["x"] - 0.9) >= 0.05 for p in pool if p["c"] == "b")


@pytest.mark.parametrize("category_starts, expected", [(acquisition.CATEGORY_STARTS, "b"), (0, "a")])
def test_every_category_gets_a_local_search_start(monkeypatch: pytest.MonkeyPatch, category_starts: int,
                                                 expected: str) -> None:
    seed = next(s for s in range(100) if _pool_misses_the_peak(s))
    monkeypatch.setattr(acquisition, "CATEGORY_STARTS", category_starts)
    a, v = acquisition.maximize(_narrow_peak_in_b(), Encoder(SPACE), np.random.default_rng(seed), exclude=set(),
                                n_raw=16, n_restarts=2, maxiter=50)
    assert a["c"] == expected
    if expected == "b":  # the local search in "b" climbed to the peak the random points missed
        assert abs(a["x"] - 0.9) < 0.01 and v > 1.9
