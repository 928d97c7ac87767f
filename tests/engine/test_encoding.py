"""The model encoding: round trips, valid values only, and the conditional hierarchy."""

from __future__ import annotations

import numpy as np

from assay.engine.encoding import Encoder

from .helpers import MIXED


def test_round_trip_and_snapping_give_valid_assignments() -> None:
    enc = Encoder(MIXED)
    rng = np.random.default_rng(0)
    for a in MIXED.from_unit(rng.random((200, MIXED.dim))):
        x = enc.encode(a)
        assert x.shape == (enc.dim,) and np.all((x >= 0) & (x <= 1))
        assert enc.decode(x) == a
        assert np.array_equal(enc.snap(x), x)
    for raw in rng.random((200, enc.dim)):  # any vector snaps onto a valid assignment
        a = enc.decode(raw)
        assert isinstance(a["layers"], int) and 1 <= a["layers"] <= 6
        assert a["act"] in ("relu", "tanh", "gelu")
        assert 1e-4 <= a["lr"] <= 1.0
        active = {p.name for p in MIXED.active(a)}
        assert set(a) == active | {"opt"}
        assert np.array_equal(enc.snap(enc.snap(raw)), enc.snap(raw))


def test_inactive_parameters_are_constant_and_the_branch_is_encoded() -> None:
    enc = Encoder(MIXED)
    base = {"lr": 0.01, "layers": 2, "act": "relu", "a": 0.3, "b": 4}
    sgd1 = enc.encode({**base, "opt": "sgd", "momentum": 0.1})
    sgd2 = enc.encode({**base, "opt": "sgd", "momentum": 0.9})
    adam1 = enc.encode({**base, "opt": "adam", "beta": 0.6})
    adam2 = enc.encode({**base, "opt": "adam", "beta": 0.99})
    beta_col = enc.blocks[6].start
    mom_col = enc.blocks[5].start
    assert sgd1[beta_col] == sgd2[beta_col] == 0.5  # beta is inactive under sgd: one constant
    assert adam1[mom_col] == adam2[mom_col] == 0.5
    cond = enc.blocks[-1]
    assert list(sgd1[cond.start:cond.start + cond.width]) == [1.0, 0.0]
    assert list(adam1[cond.start:cond.start + cond.width]) == [0.0, 1.0]
    assert set(np.flatnonzero(sgd1 != sgd2)) == {mom_col}


def test_linear_constraints_map_onto_the_encoding() -> None:
    enc = Encoder(MIXED)
    ((cols, coefs, rhs),) = enc.linear_constraints()  # layers + b <= 9
    rng = np.random.default_rng(1)
    for a in MIXED.from_unit(rng.random((300, MIXED.dim))):
        x = enc.encode(a)
        relaxed = sum(c * x[i] for i, c in zip(cols, coefs, strict=True)) >= rhs - 1e-9
        assert relaxed == MIXED.satisfies_linear_constraints(a)
