"""Benchmark problems, all *minimized*: synthetic test functions and Bayesmark-style sklearn tuning.

A problem maps an assignment to ``(observed, true)``: what the optimizer is told and the
noiseless value used for scoring (they differ only for noisy problems). Add a problem by
appending a :class:`Problem` to :data:`PROBLEMS` (the multitask engineer adds theirs the same way).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.space import Param, categorical, double, integer

__all__ = ["Problem", "PROBLEMS", "get", "QUICK"]

Objective = Callable[[dict[str, Any], np.random.Generator], "tuple[float, float]"]


@dataclass(frozen=True)
class Problem:
    name: str
    params: list[Param]
    objective: Objective
    family: str  # "synthetic" | "real"
    optimum: float | None = None  # known minimum (synthetic); real problems use the best value ever seen
    description: str = ""

    def __call__(self, x: dict[str, Any], rng: np.random.Generator) -> tuple[float, float]:
        obs, true = self.objective(x, rng)
        return float(obs), float(true)


# ---------------------------------------------------------------- synthetic


def branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(z: np.ndarray) -> float:
    return float(-np.sum(_H6_ALPHA * np.exp(-np.sum(_H6_A * (z - _H6_P) ** 2, axis=1))))


def ackley(z: np.ndarray) -> float:
    d = len(z)
    return float(-20 * np.exp(-0.2 * np.sqrt(np.sum(z**2) / d)) - np.exp(np.sum(np.cos(2 * np.pi * z)) / d)
                 + 20 + math.e)


def rosenbrock(z: np.ndarray) -> float:
    return float(np.sum(100 * (z[1:] - z[:-1] ** 2) ** 2 + (1 - z[:-1]) ** 2))


def _vec(x: dict[str, Any], d: int) -> np.ndarray:
    return np.array([x[f"x{i}"] for i in range(d)], dtype=float)


def _det(f: Callable[[dict[str, Any]], float]) -> Objective:
    def objective(x: dict[str, Any], rng: np.random.Generator) -> tuple[float, float]:
        v = f(x)
        return v, v
    return objective


_MIX_SCALE = {"red": 1.0, "green": 0.5, "blue": 2.0, "black": 1.0}
_MIX_SHIFT = {"red": 2.0, "green": 1.0, "blue": 0.0, "black": 3.0}
_MIX_K = {"red": 2, "green": 7, "blue": 5, "black": 0}
_BRANIN_MIN = 0.39788735772973816


def mixed(x: dict[str, Any]) -> float:
    """Branin scaled/shifted by a categorical colour plus an integer whose best value depends on the colour."""
    c = x["colour"]
    return _MIX_SCALE[c] * branin(x["x1"], x["x2"]) + _MIX_SHIFT[c] + 0.25 * (x["k"] - _MIX_K[c]) ** 2


def _noisy_hartmann(x: dict[str, Any], rng: np.random.Generator) -> tuple[float, float]:
    true = hartmann6(_vec(x, 6))
    return true + float(rng.normal(0.0, 0.2)), true


def _box(d: int, low: float, high: float) -> list[Param]:
    return [double(f"x{i}", low, high) for i in range(d)]


SYNTHETIC = [
    Problem("branin", [double("x1", -5, 10), double("x2", 0, 15)],
            _det(lambda x: branin(x["x1"], x["x2"])), "synthetic", _BRANIN_MIN, "Branin, 2-d"),
    Problem("hartmann6", _box(6, 0, 1), _det(lambda x: hartmann6(_vec(x, 6))), "synthetic", -3.32237,
            "Hartmann, 6-d"),
    Problem("ackley10", _box(10, -5, 10), _det(lambda x: ackley(_vec(x, 10))), "synthetic", 0.0,
            "Ackley, 10-d on [-5, 10]^10 (optimum off-centre)"),
    Problem("rosenbrock10", _box(10, -5, 10), _det(lambda x: rosenbrock(_vec(x, 10))), "synthetic", 0.0,
            "Rosenbrock, 10-d on [-5, 10]^10"),
    Problem("hartmann6-noisy", _box(6, 0, 1), _noisy_hartmann, "synthetic", -3.32237,
            "Hartmann-6 observed with Gaussian noise (sd 0.2); scored on the noiseless value of the incumbent"),
    Problem("mixed", [double("x1", -5, 10), double("x2", 0, 15), integer("k", 0, 10),
                      categorical("colour", "red", "green", "blue", "black")],
            _det(mixed), "synthetic", 2 * _BRANIN_MIN,
            "Branin x colour (4 categories) x integer k in [0, 10]; each colour scales, shifts and moves the best k"),
]


# ---------------------------------------------------------------- real: Bayesmark-style sklearn tuning


@functools.cache
def _dataset(name: str) -> tuple[np.ndarray, np.ndarray, bool]:
    from sklearn import datasets

    loader = {"digits": datasets.load_digits, "wine": datasets.load_wine, "breast": datasets.load_breast_cancer,
              "iris": datasets.load_iris, "diabetes": datasets.load_diabetes}[name]
    X, y = loader(return_X_y=True)
    return X.astype(float), y, name != "diabetes"


def _model(model: str, x: dict[str, Any], classify: bool) -> Any:
    from sklearn import ensemble, linear_model, neighbors, neural_network, svm, tree
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if model == "DT":
        cls = tree.DecisionTreeClassifier if classify else tree.DecisionTreeRegressor
        return cls(max_depth=x["max_depth"], min_samples_split=x["min_samples_split"],
                   min_samples_leaf=x["min_samples_leaf"], min_weight_fraction_leaf=x["min_weight_fraction_leaf"],
                   max_features=x["max_features"], min_impurity_decrease=x["min_impurity_decrease"], random_state=0)
    if model == "RF":
        cls = ensemble.RandomForestClassifier if classify else ensemble.RandomForestRegressor
        return cls(n_estimators=10, max_depth=x["max_depth"], min_samples_split=x["min_samples_split"],
                   min_samples_leaf=x["min_samples_leaf"], min_weight_fraction_leaf=x["min_weight_fraction_leaf"],
                   max_features=x["max_features"], min_impurity_decrease=x["min_impurity_decrease"], random_state=0)
    if model == "SVM":
        cls = svm.SVC if classify else svm.SVR
        return make_pipeline(StandardScaler(), cls(C=x["C"], gamma=x["gamma"], tol=x["tol"]))
    if model == "kNN":
        cls = neighbors.KNeighborsClassifier if classify else neighbors.KNeighborsRegressor
        return make_pipeline(StandardScaler(), cls(n_neighbors=x["n_neighbors"], p=x["p"]))
    if model == "MLP-adam":
        cls = neural_network.MLPClassifier if classify else neural_network.MLPRegressor
        return make_pipeline(StandardScaler(), cls(
            solver="adam", early_stopping=True, hidden_layer_sizes=(x["hidden_layer_sizes"],), alpha=x["alpha"],
            batch_size=x["batch_size"], learning_rate_init=x["learning_rate_init"], tol=x["tol"],
            validation_fraction=x["validation_fraction"], beta_1=x["beta_1"], beta_2=x["beta_2"],
            epsilon=x["epsilon"], random_state=0))
    if model == "ada":
        cls = ensemble.AdaBoostClassifier if classify else ensemble.AdaBoostRegressor
        return cls(n_estimators=x["n_estimators"], learning_rate=x["learning_rate"], random_state=0)
    if model == "lasso":
        if classify:
            return make_pipeline(StandardScaler(), linear_model.LogisticRegression(
                penalty="l1", solver="liblinear", C=x["C"], intercept_scaling=x["intercept_scaling"]))
        return make_pipeline(StandardScaler(), linear_model.Lasso(
            alpha=x["alpha"], fit_intercept=x["fit_intercept"] == "true", max_iter=x["max_iter"], tol=x["tol"],
            positive=x["positive"] == "true", random_state=0))
    raise KeyError(model)


# Bayesmark's search spaces (its "logit"-warped parameters are plain linear ranges here).
_TREE = [double("max_features", 0.01, 0.99), double("min_samples_split", 0.01, 0.99),
         double("min_samples_leaf", 0.01, 0.49), double("min_weight_fraction_leaf", 0.01, 0.49),
         double("min_impurity_decrease", 0.0, 0.5)]
SPACES: dict[str, list[Param]] = {
    "DT": [integer("max_depth", 1, 15), *_TREE],
    "RF": [integer("max_depth", 1, 15), *_TREE],
    "SVM": [double("C", 1.0, 1e3, log=True), double("gamma", 1e-4, 1e-3, log=True),
            double("tol", 1e-5, 1e-1, log=True)],
    "kNN": [integer("n_neighbors", 1, 25), integer("p", 1, 4)],
    "MLP-adam": [integer("hidden_layer_sizes", 50, 200), double("alpha", 1e-5, 1e1, log=True),
                 integer("batch_size", 10, 250), double("learning_rate_init", 1e-5, 1e-1, log=True),
                 double("tol", 1e-5, 1e-1, log=True), double("validation_fraction", 0.1, 0.9),
                 double("beta_1", 0.5, 0.99), double("beta_2", 0.9, 1 - 1e-6), double("epsilon", 1e-9, 1e-6, log=True)],
    "ada": [integer("n_estimators", 10, 100), double("learning_rate", 1e-4, 1e1, log=True)],
    "lasso-clf": [double("C", 1e-2, 1e2, log=True), double("intercept_scaling", 1e-2, 1e2, log=True)],
    "lasso-reg": [double("alpha", 1e-2, 1e2, log=True), categorical("fit_intercept", "true", "false"),
                  integer("max_iter", 10, 5000, log=True), double("tol", 1e-5, 1e-1, log=True),
                  categorical("positive", "true", "false")],
}


def _cv_objective(model: str, data: str, metric: str) -> Objective:
    def objective(x: dict[str, Any], rng: np.random.Generator) -> tuple[float, float]:
        import warnings

        from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

        X, y, classify = _dataset(data)
        cv = (StratifiedKFold if classify else KFold)(n_splits=3, shuffle=True, random_state=0)
        scoring = {"nll": "neg_log_loss", "acc": "accuracy", "mse": "neg_mean_squared_error"}[metric]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = cross_val_score(_model(model, x, classify), X, y, cv=cv, scoring=scoring, n_jobs=1,
                                     error_score=np.nan)
        v = float(-np.mean(scores)) if metric != "acc" else float(1.0 - np.mean(scores))
        if not math.isfinite(v):
            v = 1e6  # a crashed fit: a very bad but finite value, the same for every optimizer
        return v, v
    return objective


def _real(model: str, data: str, metric: str) -> Problem:
    space = SPACES[model if model != "lasso" else ("lasso-reg" if data == "diabetes" else "lasso-clf")]
    what = {"nll": "3-fold CV log-loss", "acc": "3-fold CV error rate", "mse": "3-fold CV MSE"}[metric]
    return Problem(f"{model}-{data}-{metric}", space, _cv_objective(model, data, metric), "real", None,
                   f"{model} on sklearn's {data}, {what}")


# A representative subset of Bayesmark's grid (each fit takes well under a second on one core).
REAL = [
    _real("DT", "digits", "nll"),
    _real("RF", "wine", "nll"),
    _real("SVM", "breast", "acc"),
    _real("kNN", "wine", "nll"),
    _real("MLP-adam", "wine", "nll"),
    _real("ada", "wine", "nll"),
    _real("lasso", "diabetes", "mse"),
    _real("DT", "diabetes", "mse"),
    _real("kNN", "iris", "nll"),
]

PROBLEMS: dict[str, Problem] = {p.name: p for p in [*SYNTHETIC, *REAL]}
QUICK = ["branin", "hartmann6", "mixed", "RF-wine-nll", "lasso-diabetes-mse"]


def get(name: str) -> Problem:
    try:
        return PROBLEMS[name]
    except KeyError:
        raise SystemExit(f"unknown problem {name!r}; known: {', '.join(PROBLEMS)}") from None
