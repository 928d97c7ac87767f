"""XGBoost / LightGBM callbacks: a checkpoint per boosting round, the last round's results as the run's metrics."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb

import assay
from assay.integrations.lightgbm import checkpoint_callback as lgb_callback
from assay.integrations.xgboost import checkpoint_callback as xgb_callback


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 4))
    return X, (X[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)


def _checkpoints(conn: assay.Connection, run_id: str) -> list[dict]:
    page = conn.request("GET", f"/v1/training_runs/{run_id}/checkpoints", params={"limit": 1000})
    return sorted(page["data"], key=lambda c: c["step"])


def test_xgboost_callback_logs_rounds_and_final_metric(conn: assay.Connection) -> None:
    X, y = _data()
    dtrain, dvalid = xgb.DMatrix(X[:200], label=y[:200]), xgb.DMatrix(X[200:], label=y[200:])
    history: dict = {}
    with assay.create_run("xgb", project="boost", connection=conn, capture=False) as run:
        xgb.train({"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 2}, dtrain,
                  num_boost_round=6, evals=[(dtrain, "train"), (dvalid, "valid")], evals_result=history,
                  callbacks=[xgb_callback()], verbose_eval=False)
    cps = _checkpoints(conn, run.id)
    assert [c["metadata"]["iteration"] for c in cps] == list(range(6))
    for i, c in enumerate(cps):
        got = {v["name"]: v["value"] for v in c["values"]}
        assert got == pytest.approx({"train-logloss": history["train"]["logloss"][i],
                                     "valid-logloss": history["valid"]["logloss"][i]})
    r = conn.request("GET", f"/v1/training_runs/{run.id}")
    assert r["state"] == "completed" and r["checkpoint_count"] == 6
    assert r["values"]["valid-logloss"]["value"] == pytest.approx(history["valid"]["logloss"][-1])
    assert r["values"]["train-logloss"]["value"] == pytest.approx(history["train"]["logloss"][-1])


def test_xgboost_in_an_experiment_loop_with_early_stopping(embedded: assay.Connection) -> None:
    X, y = _data(1)
    dtrain, dvalid = xgb.DMatrix(X[:200], label=y[:200]), xgb.DMatrix(X[200:], label=y[200:])
    exp = assay.create_experiment(
        name="xgb loop", project="boost", connection=embedded, budget=2,
        parameters=[{"name": "eta", "type": "double", "bounds": {"min": 0.05, "max": 0.5}}],
        metrics=[{"name": "valid-logloss", "objective": "minimize"}])
    rounds = []
    for run in exp.loop():
        booster = xgb.train({"objective": "binary:logistic", "eval_metric": "logloss", "eta": run.params.eta},
                            dtrain, num_boost_round=40, evals=[(dvalid, "valid")], early_stopping_rounds=2,
                            callbacks=[xgb_callback(period=2)], verbose_eval=False)
        rounds.append(booster.num_boosted_rounds())
    runs = exp.runs()
    assert len(runs) == 2 and all(r["state"] == "completed" and r["observation"] for r in runs)
    for r, n in zip(sorted(runs, key=lambda r: int(r["id"])), rounds, strict=True):
        assert r["checkpoint_count"] == (n + 1) // 2  # every second round
    obs = embedded.request("GET", f"/v1/experiments/{exp.id}/observations")["data"]
    assert len(obs) == 2 and not any(o["failed"] for o in obs)
    assert {o["values"][0]["value"] for o in obs} == {r["values"]["valid-logloss"]["value"] for r in runs}


def test_lightgbm_callback_logs_rounds_and_final_metric(embedded: assay.Connection) -> None:
    X, y = _data()
    train = lgb.Dataset(X[:200], label=y[:200])
    valid = lgb.Dataset(X[200:], label=y[200:], reference=train)
    history: dict = {}
    with assay.create_run("lgb", project="boost", connection=embedded, capture=False) as run:
        lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4}, train, num_boost_round=5,
                  valid_sets=[valid], valid_names=["valid"],
                  callbacks=[lgb_callback(period=2), lgb.record_evaluation(history)])
    curve = history["valid"]["binary_logloss"]
    cps = _checkpoints(embedded, run.id)
    assert [c["metadata"]["iteration"] for c in cps] == [0, 2, 4]
    assert [c["values"][0]["value"] for c in cps] == pytest.approx([curve[0], curve[2], curve[4]])
    assert cps[0]["values"][0]["name"] == "valid-binary_logloss"
    r = embedded.request("GET", f"/v1/training_runs/{run.id}")
    assert r["state"] == "completed" and r["values"]["valid-binary_logloss"]["value"] == pytest.approx(curve[-1])
    with pytest.raises(ValueError):
        lgb_callback(period=0)


def test_callbacks_outside_a_run_do_nothing() -> None:
    X, y = _data()
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=y), num_boost_round=2,
                        evals=[(xgb.DMatrix(X, label=y), "train")], callbacks=[xgb_callback()], verbose_eval=False)
    assert booster.num_boosted_rounds() == 2
    model = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, label=y), num_boost_round=2,
                      valid_sets=[lgb.Dataset(X, label=y)], callbacks=[lgb_callback()])
    assert model.current_iteration() == 2
