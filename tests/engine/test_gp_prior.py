"""The GP's lengthscale prior: BoTorch's dimension-scaled LogNormal plus a penalty on long lengthscales."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gpytorch.priors import LogNormalPrior

from assay.engine.gp import LONG_LENGTHSCALE_RATE, clear_cache, fit_gp


def test_prior_is_botorchs_lognormal_minus_a_square_penalty() -> None:
    rng = np.random.default_rng(0)
    model = fit_gp(rng.random((6, 6)), rng.normal(size=6))
    prior = model.covar_module.lengthscale_prior
    base = LogNormalPrior(loc=math.sqrt(2) + 0.5 * math.log(6), scale=math.sqrt(3))
    for length in (0.1, 1.0, 10.0):
        x = torch.tensor(length, dtype=torch.double)
        assert float(prior.log_prob(x) - base.log_prob(x)) == pytest.approx(-LONG_LENGTHSCALE_RATE * length**2)


def test_tied_plateau_does_not_switch_parameters_off() -> None:
    """Most observations tie at one value (a tree's stump): no lengthscale may run off to the cube's
    several-times size (BoTorch's prior alone gave 4.1 on this data, and 11-29 in benchmark traces)."""
    clear_cache()
    rng = np.random.default_rng(1)
    X = rng.random((16, 6))
    y = np.where(X[:, 0] + X[:, 3] > 0.7, -4348.0, -3900.0 - 200.0 * X[:, 3])
    assert (y == -4348.0).sum() >= 10
    ls = fit_gp(X, y).covar_module.lengthscale.detach().numpy().ravel()
    assert ls.max() < 2.5
    assert ls[0] < 0.5 and ls[3] < 0.5  # the two columns that decide the plateau stay relevant
