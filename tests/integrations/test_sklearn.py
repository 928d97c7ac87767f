"""AssaySearchCV on a small scikit-learn dataset, with the embedded database."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

import assay
from assay.integrations.sklearn import AssaySearchCV, to_parameters


def test_search_cv_is_a_tracked_drop_in(embedded: assay.Connection) -> None:
    X, y = load_iris(return_X_y=True)
    search = AssaySearchCV(
        LogisticRegression(max_iter=300),
        {"C": (1e-3, 1e2, "log"), "fit_intercept": [True, False], "tol": (1e-5, 1e-2)},
        n_iter=5, cv=3, connection=embedded, project="sk", experiment_name="iris")
    assert search.fit(X, y) is search
    assert len(search.cv_results_["params"]) == 5
    assert search.best_score_ == pytest.approx(np.max(search.cv_results_["mean_test_score"]))
    best = search.best_params_
    assert 1e-3 <= best["C"] <= 1e2 and isinstance(best["fit_intercept"], bool)
    again = cross_val_score(LogisticRegression(max_iter=300, **best), X, y, cv=3).mean()
    assert again == pytest.approx(search.best_score_)
    assert search.predict(X[:5]).shape == (5,) and search.score(X, y) > 0.8

    # every candidate is a tracked run of the AI experiment, scored with its CV mean and stddev
    runs = embedded.request("GET", "/v1/clients/1/projects/sk/training_runs",
                            params={"experiment": search.experiment_id_})["data"]
    assert len(runs) == 5 and all(r["state"] == "completed" for r in runs)
    scores = sorted(r["values"]["cv_score"]["value"] for r in runs)
    assert scores == pytest.approx(sorted(search.cv_results_["mean_test_score"]))
    assert all(r["values"]["cv_score"]["value_stddev"] is not None for r in runs)


def test_domains_are_checked() -> None:
    params, choices = to_parameters({"n": (1, 5), "a": (0.1, 1.0, "log"), "k": ["x", None]})
    assert [p["type"] for p in params] == ["int", "double", "categorical"]
    assert params[1]["transformation"] == "log" and choices["k"]["None"] is None
    with pytest.raises(ValueError):
        to_parameters({"bad": (1, 2, "exp")})
    with pytest.raises(ValueError):
        to_parameters({"bad": "abc"})
