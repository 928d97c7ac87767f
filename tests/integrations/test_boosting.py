"""XGBoost / LightGBM checkpoint callbacks (skipped when the library is not installed)."""

from __future__ import annotations

import numpy as np
import pytest

import assay


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    return X, (X[:, 0] + 0.1 * rng.normal(size=200) > 0).astype(int)


def test_xgboost_callback_logs_checkpoints(embedded: assay.Connection) -> None:
    xgb = pytest.importorskip("xgboost")
    from assay.integrations.xgboost import checkpoint_callback

    X, y = _data()
    dtrain = xgb.DMatrix(X, label=y)
    with assay.create_run("xgb", project="boost", connection=embedded, capture=False) as run:
        xgb.train({"objective": "binary:logistic", "eval_metric": "logloss"}, dtrain, num_boost_round=5,
                  evals=[(dtrain, "train")], callbacks=[checkpoint_callback()])
    cps = embedded.request("GET", f"/v1/training_runs/{run.id}/checkpoints")["data"]
    assert len(cps) == 5 and cps[0]["values"][0]["name"] == "train-logloss"


def test_lightgbm_callback_logs_checkpoints(embedded: assay.Connection) -> None:
    lgb = pytest.importorskip("lightgbm")
    from assay.integrations.lightgbm import checkpoint_callback

    X, y = _data()
    train = lgb.Dataset(X, label=y)
    with assay.create_run("lgb", project="boost", connection=embedded, capture=False) as run:
        lgb.train({"objective": "binary", "verbose": -1}, train, num_boost_round=4, valid_sets=[train],
                  valid_names=["train"], callbacks=[checkpoint_callback()])
    cps = embedded.request("GET", f"/v1/training_runs/{run.id}/checkpoints")["data"]
    assert len(cps) == 4 and cps[0]["values"][0]["name"].startswith("train-")
