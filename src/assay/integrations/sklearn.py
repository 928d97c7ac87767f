"""``AssaySearchCV``: a drop-in for scikit-learn's ``GridSearchCV``/``RandomizedSearchCV`` driven by assay.

Each candidate is a run of an AI experiment (so the search is tracked like any other), scored by
cross-validation with scikit-learn's own machinery; the experiment's Bayesian optimizer picks the next one::

    search = AssaySearchCV(SVC(), {"C": (1e-3, 1e3, "log"), "kernel": ["rbf", "linear"]}, n_iter=20, cv=3)
    search.fit(X, y)
    search.best_params_, search.best_score_, search.predict(X_test)

Parameter domains: ``(low, high)`` (int when both are ints), ``(low, high, "log")``, a list of choices,
or a SigOpt parameter dict (``{"type": "double", "bounds": {...}}``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.model_selection._search import BaseSearchCV

__all__ = ["AssaySearchCV", "to_parameters"]


def to_parameters(domains: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """SigOpt parameter definitions for ``domains`` and, per categorical, the map back to the Python values."""
    params: list[dict[str, Any]] = []
    choices: dict[str, dict[str, Any]] = {}
    for name, dom in domains.items():
        if isinstance(dom, Mapping):
            params.append({"name": name, **dom})
        elif isinstance(dom, tuple) and len(dom) in (2, 3):
            low, high = dom[0], dom[1]
            kind = "int" if isinstance(low, (int, np.integer)) and isinstance(high, (int, np.integer)) else "double"
            p: dict[str, Any] = {"name": name, "type": kind, "bounds": {"min": low, "max": high}}
            if len(dom) == 3:
                if dom[2] != "log":
                    raise ValueError(f"{name}: the third element of a range must be 'log'")
                p["transformation"] = "log"
            params.append(p)
        elif isinstance(dom, Sequence) and not isinstance(dom, str) and len(dom) >= 2:
            labels = {str(v): v for v in dom}
            if len(labels) != len(dom):
                raise ValueError(f"{name}: choices must be distinct as strings")
            choices[name] = labels
            params.append({"name": name, "type": "categorical", "categorical_values": list(labels)})
        else:
            raise ValueError(f"{name}: use (low, high), (low, high, 'log'), a list of >= 2 choices or a parameter dict")
    return params, choices


class AssaySearchCV(BaseSearchCV):
    """Hyperparameter search with assay's optimizer, API-compatible with ``RandomizedSearchCV``.

    Args beyond scikit-learn's: ``param_domains`` (see the module doc), ``n_iter`` (the budget),
    ``connection`` (default: ``assay.Connection()``), ``project`` and ``experiment_name`` for the tracked
    AI experiment. After ``fit``, ``experiment_id_`` names it.
    """

    def __init__(self, estimator: Any, param_domains: Mapping[str, Any], *, n_iter: int = 20, scoring: Any = None,
                 n_jobs: int | None = None, refit: Any = True, cv: Any = None, verbose: int = 0,
                 pre_dispatch: Any = "2*n_jobs", error_score: Any = np.nan, return_train_score: bool = False,
                 connection: Any = None, project: str | None = None, experiment_name: str | None = None) -> None:
        super().__init__(estimator=estimator, scoring=scoring, n_jobs=n_jobs, refit=refit, cv=cv, verbose=verbose,
                         pre_dispatch=pre_dispatch, error_score=error_score, return_train_score=return_train_score)
        self.param_domains = param_domains
        self.n_iter = n_iter
        self.connection = connection
        self.project = project
        self.experiment_name = experiment_name

    def _score_key(self) -> str:
        if isinstance(self.refit, str) and not callable(self.scoring) and isinstance(self.scoring, (dict, list, tuple)):
            return f"mean_test_{self.refit}"
        return "mean_test_score"

    def _run_search(self, evaluate_candidates: Any) -> None:
        from assay import tracking

        parameters, choices = to_parameters(self.param_domains)
        exp = tracking.create_experiment(
            name=self.experiment_name or f"{type(self.estimator).__name__} search", parameters=parameters,
            metrics=[{"name": "cv_score", "objective": "maximize"}], budget=int(self.n_iter),
            project=self.project or "sklearn", connection=self.connection)
        self.experiment_id_ = exp.id
        key = self._score_key()
        std_key = key.replace("mean_", "std_", 1)
        for run in exp.loop(name=type(self.estimator).__name__):
            candidate = {k: choices[k][v] if k in choices else v for k, v in run.params.items()}
            results = evaluate_candidates([candidate])
            score = float(results[key][-1])
            if math.isfinite(score):
                std = float(results[std_key][-1])
                run.log_metric("cv_score", score, stddev=std if math.isfinite(std) else None)
            else:
                run.log_failure()
