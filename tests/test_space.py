"""Space encodings round-trip and never produce invalid values."""

from __future__ import annotations

import numpy as np
import pytest

from assay.domain import Bounds, Parameter
from assay.errors import InvalidRequest
from assay.space import Space

SPACE = Space([
    Parameter("lr", "double", Bounds(1e-5, 1e-1), transformation="log"),
    Parameter("layers", "int", Bounds(1, 8)),
    Parameter("opt", "categorical", categorical_values=("adam", "sgd", "rmsprop")),
    Parameter("x", "double", Bounds(-2.0, 3.0)),
])


def test_unit_samples_are_valid() -> None:
    rng = np.random.default_rng(0)
    for a in SPACE.from_unit(rng.random((500, SPACE.dim))):
        assert SPACE.validate_assignments(a) == a
        assert isinstance(a["layers"], int) and isinstance(a["lr"], float)


def test_every_int_and_category_is_reachable() -> None:
    pts = SPACE.from_unit(np.random.default_rng(1).random((400, SPACE.dim)))
    assert {a["layers"] for a in pts} == set(range(1, 9))
    assert {a["opt"] for a in pts} == {"adam", "sgd", "rmsprop"}


def test_log_parameter_is_uniform_in_log_space() -> None:
    pts = SPACE.from_unit(np.random.default_rng(2).random((4000, SPACE.dim)))
    logs = np.log10([a["lr"] for a in pts])
    assert abs(np.median(logs) - (-3.0)) < 0.1


@pytest.mark.parametrize("a", [
    {"lr": 1e-5, "layers": 1, "opt": "adam", "x": -2.0},
    {"lr": 0.1, "layers": 8, "opt": "rmsprop", "x": 3.0},
    {"lr": 0.003, "layers": 5, "opt": "sgd", "x": 0.25},
])
def test_round_trips(a: dict) -> None:
    assert SPACE.from_unit(SPACE.to_unit(a))[0] == pytest.approx(a)
    assert SPACE.decode(SPACE.encode(a)) == pytest.approx(a)
    x = SPACE.encode(a)
    assert x.shape == (SPACE.model_dim,) == (6,)
    assert x[2:5].sum() == 1.0


def test_round_model_snaps_to_valid_values() -> None:
    x = np.array([0.5, 0.52, 0.2, 0.7, 0.1, 0.3])
    a = SPACE.decode(SPACE.round_model(x))
    assert a["opt"] == "sgd" and isinstance(a["layers"], int)
    assert SPACE.validate_assignments(a) == a


@pytest.mark.parametrize("bad,field", [
    ({"lr": 1e-5, "layers": 1, "opt": "adam"}, "assignments.x"),
    ({"lr": 1e-5, "layers": 1.5, "opt": "adam", "x": 0}, "assignments.layers"),
    ({"lr": 1e-5, "layers": 1, "opt": "nadam", "x": 0}, "assignments.opt"),
    ({"lr": 1e-5, "layers": 1, "opt": "adam", "x": float("nan")}, "assignments.x"),
    ({"lr": 1e-5, "layers": True, "opt": "adam", "x": 0}, "assignments.layers"),
    ({"lr": 1e-5, "layers": 1, "opt": "adam", "x": 0, "y": 1}, "assignments.y"),
])
def test_invalid_assignments(bad: dict, field: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        SPACE.validate_assignments(bad)
    assert err.value.field == field
