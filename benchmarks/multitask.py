"""Multi-fidelity (``tasks``) benchmark: cost to reach a target, and quality at a fixed cost.

``python -m benchmarks.multitask [--problems branin-mf,hartmann6-mf,hgb-breast,mlp-digits,mlp-epochs] [--seeds 5]
[--budget 20] [--out PATH]``

Every method minimizes ``f(x, s)`` where the fidelity ``s`` in (0, 1] is also the cost of an
evaluation (``s = 1`` is the full task). Only full-task results count as "found" (as for
assay's ``best_assignments``); quality is the best full-task value seen so far.

Methods (all given the same total cost budget ``B``):

* ``assay-multitask``: assay with ``tasks`` (its cost-aware multi-fidelity engine);
* ``assay-bo``: assay single-task BO, every evaluation on the full task;
* ``optuna-hyperband``: Optuna TPE + ``HyperbandPruner``; a trial climbs the fidelities as
  rungs (training continues, so reaching fidelity ``s`` costs ``s`` in total);
* ``random``: random search on the full task;
* ``bohb``: BOHB (``hpbandster``): Hyperband brackets over the fidelities, KDE-proposed configurations,
  each rung evaluated from scratch (cost = fidelity).

Problems:

* ``branin-mf``: multi-fidelity Branin of Kandasamy et al. 2017 (BOCA), fidelities 0.1/0.3/1;
* ``hartmann6-mf``: augmented Hartmann-6 of Wu et al. 2019 (BoTorch's ``AugmentedHartmann``),
  fidelities 0.1/0.3/1, cost = fidelity;
* ``hgb-breast``: scikit-learn ``HistGradientBoostingClassifier`` on the bundled breast-cancer
  data, validation log-loss on a fixed split; fidelity = boosting iterations / 200 (25, 50, 200
  iterations; Optuna's trials resume, paying only the increment), 4 hyperparameters. Every
  fidelity of a configuration comes from one cached 200-iteration fit (``staged_predict_proba``,
  identical to fitting with fewer iterations), so the run is feasible on a small machine; the
  *accounted* cost is still the fidelity;
* ``mlp-digits``: scikit-learn ``MLPClassifier`` (one hidden layer, 40 epochs of Adam) on the bundled
  digits data, validation log-loss; fidelity = fraction of the training set (1/8, 1/4, all; nested
  subsets of one shuffle), 4 hyperparameters (learning rate, L2 alpha, width, batch size). A larger
  training set starts training over, so Optuna's rungs pay each fidelity in full here;
* ``mlp-epochs``: the same MLP and space on all of the training set; fidelity = epochs of Adam (5, 10, 40,
  as SigOpt's Numenta case: a short run of the same training), from one cached 40-epoch run per
  configuration (``partial_fit`` epoch by epoch); training continues, so Optuna's rungs pay the increment.

``--correlations N`` prints each cheap task's Spearman correlation with the full task over N random
configurations (and over their best quarter). ``--merge a.json b.json --out c.json`` joins runs made
in parallel (e.g. one process per problem); ``--jobs N`` runs the studies in N processes itself.

Targets come from ``assay-bo``: T1 = its median best at half the budget, T2 = its median
final best; the ratio is ``assay-bo``'s median cost to reach a target / the method's (a median
of ``inf`` means most seeds never reached it).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.optimizers import assay_parameters
from benchmarks.runner import run_missing
from benchmarks.space import Param, double, integer, sample

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class MFProblem:
    name: str
    params: list[Param]
    fidelities: tuple[float, ...]  # ascending, last is 1.0
    f: Callable[[dict[str, Any], float], float]  # minimize
    description: str
    resumable: bool = True  # a higher fidelity continues the lower one's work (Optuna's rungs pay the increment)


def branin_mf(x: dict[str, Any], s: float) -> float:
    """Kandasamy et al. 2017: the fidelity shifts b, c and t of Branin; min 0.3979 at s = 1."""
    b = 5.1 / (4 * math.pi**2) - 0.01 * (1 - s)
    c = 5 / math.pi - 0.1 * (1 - s)
    t = 1 / (8 * math.pi) + 0.05 * (1 - s)
    x1, x2 = x["x1"], x["x2"]
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_HART_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
                    [17, 8, 0.05, 10, 0.1, 14]])
_HART_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                           [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def hartmann6_mf(x: dict[str, Any], s: float) -> float:
    """Augmented Hartmann-6 of Wu et al. 2019 (BoTorch ``AugmentedHartmann``): alpha_1 becomes
    ``1 - 0.1 (1 - s)``; min -3.32237 at s = 1."""
    u = np.array([x[f"x{i}"] for i in range(1, 7)])
    alpha = np.array([1.0 - 0.1 * (1 - s), 1.2, 3.0, 3.2])
    return float(-np.sum(alpha * np.exp(-np.sum(_HART_A * (u - _HART_P) ** 2, axis=1))))


@functools.cache
def _breast() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    return tuple(train_test_split(X, y, test_size=0.4, stratify=y, random_state=0))


def _hgb(x: dict[str, Any], iters: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        learning_rate=x["learning_rate"], max_leaf_nodes=x["max_leaf_nodes"], min_samples_leaf=x["min_samples_leaf"],
        l2_regularization=x["l2_regularization"], max_iter=iters, early_stopping=False, random_state=0)


HGB_FULL = 200


def _one_thread(f: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``f`` with one BLAS/OpenMP thread: a training's floating-point sums then do not depend on the
    machine's thread count or ``OMP_NUM_THREADS`` (a last-digit change in one value moves every later
    suggestion of a seeded run; library versions and CPUs still do)."""

    @functools.wraps(f)
    def run(*args: Any) -> Any:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return f(*args)

    return run


@functools.lru_cache(maxsize=4096)
@_one_thread
def _hgb_curve(key: tuple[tuple[str, Any], ...]) -> tuple[float, ...]:
    """Validation log-loss after every boosting iteration of ONE fit of ``HGB_FULL`` iterations.

    Without early stopping or subsampling, the model after k of 200 iterations is exactly the model
    trained with ``max_iter=k``: one fit (cached per configuration) serves every fidelity.
    """
    from sklearn.metrics import log_loss

    Xt, Xv, yt, yv = _breast()
    model = _hgb(dict(key), HGB_FULL).fit(Xt, yt)
    return tuple(float(log_loss(yv, p)) for p in model.staged_predict_proba(Xv))


def hgb_breast(x: dict[str, Any], s: float) -> float:
    return _hgb_curve(tuple(sorted(x.items())))[round(s * HGB_FULL) - 1]


@functools.cache
def _digits() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xt, Xv, yt, yv = train_test_split(X / 16.0, y, test_size=0.4, stratify=y, random_state=0)
    order = np.random.default_rng(1).permutation(len(yt))  # a fidelity's subset is a prefix: nested subsets
    return Xt[order], Xv, yt[order], yv


MLP_EPOCHS = 40


def _mlp(x: dict[str, Any], batch_size: int, **kw: Any) -> Any:
    """The benchmark's MLP (one hidden layer, Adam) for hyperparameters ``x``."""
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(x["hidden"],), alpha=x["alpha"], learning_rate_init=x["learning_rate"],
                         batch_size=batch_size, random_state=0, **kw)


def _val_loss(model: Any) -> float:
    from sklearn.metrics import log_loss

    _, Xv, _, yv = _digits()
    return float(log_loss(yv, model.predict_proba(Xv), labels=list(range(10))))


@functools.lru_cache(maxsize=8192)
@_one_thread
def _mlp_loss(key: tuple[tuple[str, Any], ...], s: float) -> float:
    """Validation log-loss of an MLP trained ``MLP_EPOCHS`` epochs on the first ``s`` of the (shuffled) training set."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    x = dict(key)
    Xt, _, yt, _ = _digits()
    n = round(s * len(yt))
    model = _mlp(x, min(x["batch_size"], n), max_iter=MLP_EPOCHS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(Xt[:n], yt[:n])
    return _val_loss(model)


def mlp_digits(x: dict[str, Any], s: float) -> float:
    return _mlp_loss(tuple(sorted(x.items())), s)


@functools.lru_cache(maxsize=4096)
@_one_thread
def _mlp_curve(key: tuple[tuple[str, Any], ...]) -> tuple[float, ...]:
    """Validation log-loss after every epoch of ONE ``MLP_EPOCHS``-epoch run on the whole training set.

    ``partial_fit`` is one epoch of Adam (its state carries over), so the model after k epochs is the one a
    k-epoch run gives: one run (cached per configuration) serves every fidelity.
    """
    import warnings

    x = dict(key)
    Xt, _, yt, _ = _digits()
    model = _mlp(x, x["batch_size"])
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saturated softmax on wild learning rates: a bad loss, not an error
        for _ in range(MLP_EPOCHS):
            model.partial_fit(Xt, yt, classes=list(range(10)))
            out.append(_val_loss(model))
    return tuple(out)


def mlp_epochs(x: dict[str, Any], s: float) -> float:
    return _mlp_curve(tuple(sorted(x.items())))[round(s * MLP_EPOCHS) - 1]


PROBLEMS = {
    "branin-mf": MFProblem("branin-mf", [double("x1", -5, 10), double("x2", 0, 15)], (0.1, 0.3, 1.0), branin_mf,
                           "multi-fidelity Branin (Kandasamy et al. 2017), costs 0.1 / 0.3 / 1"),
    "hartmann6-mf": MFProblem(
        "hartmann6-mf", [double(f"x{i}", 0.0, 1.0) for i in range(1, 7)], (0.1, 0.3, 1.0), hartmann6_mf,
        "augmented Hartmann-6 (Wu et al. 2019, BoTorch AugmentedHartmann), costs 0.1 / 0.3 / 1"),
    "hgb-breast": MFProblem(
        "hgb-breast", [double("learning_rate", 1e-3, 1.0, log=True), integer("max_leaf_nodes", 2, 64),
                       integer("min_samples_leaf", 1, 100), double("l2_regularization", 1e-4, 10.0, log=True)],
        (0.125, 0.25, 1.0), hgb_breast,
        "HistGradientBoosting on breast-cancer, validation log-loss; 25 / 50 / 200 iterations"),
    "mlp-digits": MFProblem(
        "mlp-digits", [double("learning_rate", 1e-4, 0.3, log=True), double("alpha", 1e-6, 1.0, log=True),
                       integer("hidden", 8, 256, log=True), integer("batch_size", 16, 256, log=True)],
        (0.125, 0.25, 1.0), mlp_digits,
        "MLP on digits, validation log-loss; 1/8 / 1/4 / all of the training set", resumable=False),
    "mlp-epochs": MFProblem(
        "mlp-epochs", [double("learning_rate", 1e-4, 0.3, log=True), double("alpha", 1e-6, 1.0, log=True),
                       integer("hidden", 8, 256, log=True), integer("batch_size", 16, 256, log=True)],
        (0.125, 0.25, 1.0), mlp_epochs, "MLP on digits, validation log-loss; 5 / 10 / 40 epochs"),
}


class Trace:
    """Cumulative cost and best full-task value after every evaluation."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.best: list[float] = []
        self.full = 0
        self.evals = 0
        self._c = 0.0
        self._b = math.inf
        self.notes: list[str] = []  # assay-multitask: why the engine stopped using cheap tasks, and when

    def add(self, cost: float, value: float | None) -> None:
        self._c += cost
        self.evals += 1
        if value is not None:
            self.full += 1
            self._b = min(self._b, value)
        self.cost.append(round(self._c, 4))
        self.best.append(self._b)

    @property
    def spent(self) -> float:
        return self._c


def _connection(seed: int) -> tuple[Any, tempfile.TemporaryDirectory]:
    import assay

    tmp = tempfile.TemporaryDirectory(prefix="assay-mt-bench-")
    os.environ["ASSAY_SEED"] = str(seed)
    try:
        conn = assay.Connection(database_url=f"sqlite:///{tmp.name}/bench.db", home=tmp.name)
    finally:
        os.environ.pop("ASSAY_SEED", None)
    return conn, tmp


#: a dropped cheap task in a suggestion's ``source``: its cost, rank correlation and the model's evidence
_DROPPED = re.compile(r"cost-([0-9.]+) task dropped \(rank correlation (-?[0-9.]+) with the full task at \d+ paired "
                      r"points; (no model|the model predicts the full task there -?[0-9.]+ nats)")


def run_assay(p: MFProblem, seed: int, budget: int, multitask: bool) -> Trace:
    conn, tmp = _connection(seed)
    body: dict[str, Any] = dict(name=p.name, parameters=assay_parameters(p.params),
                                metrics=[{"name": "loss", "objective": "minimize"}], observation_budget=budget)
    if multitask:
        body["tasks"] = [{"name": f"s{s:g}", "cost": s} for s in p.fidelities]
    exp = conn.create_experiment(**body)
    tr = Trace()
    try:
        while tr.spent < budget - 1e-9:
            sug = exp.suggest()
            s = float(sug.task.cost) if multitask else 1.0
            v = p.f(dict(sug.assignments), s)
            exp.observe(sug.id, v)
            tr.add(s, v if s >= 1.0 else None)
            for cost, rho, why in _DROPPED.findall(getattr(sug, "source", None) or ""):
                if not any(n.startswith(f"cost-{cost} ") for n in tr.notes):
                    tr.notes.append(f"cost-{cost} task dropped at cost {tr.spent:.2f} (rho {rho}, {why})")
    finally:
        conn.close()
        tmp.cleanup()
    return tr


def run_random(p: MFProblem, seed: int, budget: int) -> Trace:
    rng = np.random.default_rng([seed, 11])
    tr = Trace()
    while tr.spent < budget - 1e-9:
        tr.add(1.0, p.f(sample(p.params, rng), 1.0))
    return tr


def run_optuna(p: MFProblem, seed: int, budget: int) -> Trace:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=len(p.fidelities), reduction_factor=3))
    tr = Trace()
    while tr.spent < budget - 1e-9:
        trial = study.ask()
        x: dict[str, Any] = {}
        for q in p.params:
            if q.kind == "int":
                x[q.name] = trial.suggest_int(q.name, int(q.low), int(q.high), log=q.log)
            else:
                x[q.name] = trial.suggest_float(q.name, q.low, q.high, log=q.log)
        prev, pruned, v = 0.0, False, math.nan
        for step, s in enumerate(p.fidelities, start=1):
            v = p.f(x, s)
            # training resumes: each rung costs the increment (a new training-set size starts over: in full)
            tr.add(s - prev if p.resumable else s, v if s >= 1.0 else None)
            prev = s
            trial.report(v, step)
            if s < 1.0 and trial.should_prune():
                pruned = True
                break
            if tr.spent >= budget - 1e-9:
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, v)
    return tr


def run_bohb(p: MFProblem, seed: int, budget: int) -> Trace:
    """BOHB (Falkner et al. 2018, ``hpbandster``): Hyperband brackets over the fidelities with a TPE-like
    KDE model proposing configurations. Each rung re-evaluates from scratch (hpbandster has no resume), so
    an evaluation at fidelity ``s`` costs ``s``. The Pyro name server listens on 127.0.0.1 only."""
    import logging
    import threading

    import ConfigSpace as CS
    import hpbandster.core.nameserver as hpns
    import Pyro4
    from hpbandster.core.worker import Worker
    from hpbandster.optimizers import BOHB

    logging.getLogger("hpbandster").setLevel(logging.ERROR)
    # ConfigSpace 1.x hands numpy scalars, which Pyro's default serpent serializer cannot carry
    Pyro4.config.SERIALIZER = "pickle"
    Pyro4.config.SERIALIZERS_ACCEPTED.add("pickle")
    np.random.seed(seed)  # BOHB's KDE sampling draws from numpy's global generator
    cs = CS.ConfigurationSpace(seed=seed)
    for q in p.params:
        if q.kind == "int":
            cs.add(CS.UniformIntegerHyperparameter(q.name, int(q.low), int(q.high), log=q.log))
        else:
            cs.add(CS.UniformFloatHyperparameter(q.name, q.low, q.high, log=q.log))
    # hpbandster's budgets are max_budget * eta^-k: with eta 3 and 3 rungs, rung k is fidelity k
    rungs = {round(9 / 3**k, 6): s for k, s in enumerate(reversed(p.fidelities))}
    tr, lock, total = Trace(), threading.Lock(), budget

    class _W(Worker):  # type: ignore[misc]
        def compute(self, config: dict[str, Any], budget: float, **_: Any) -> dict[str, Any]:
            s = rungs[round(budget, 6)]  # hpbandster's budget (rung), not the benchmark's total cost
            with lock:
                if tr.spent >= total - 1e-9:
                    return {"loss": 1e12, "info": "over budget"}
                v = p.f(dict(config), s)
                tr.add(s, v if s >= 1.0 else None)
            return {"loss": v, "info": {}}

    run_id = f"assay-mt-{os.getpid()}-{seed}"
    ns = hpns.NameServer(run_id=run_id, host="127.0.0.1", port=0)
    host, port = ns.start()
    w = _W(run_id=run_id, host="127.0.0.1", nameserver=host, nameserver_port=port)
    w.run(background=True)
    opt = BOHB(configspace=cs, run_id=run_id, nameserver=host, nameserver_port=port, min_budget=1, max_budget=9,
               eta=3, host="127.0.0.1", ping_interval=1)
    try:
        while tr.spent < budget - 1e-9:
            opt.run(n_iterations=1)  # one more Hyperband iteration per call
    finally:
        opt.shutdown(shutdown_workers=True)
        ns.shutdown()
    return tr


METHODS: dict[str, Callable[[MFProblem, int, int], Trace]] = {
    "assay-multitask": lambda p, s, b: run_assay(p, s, b, True),
    "assay-bo": lambda p, s, b: run_assay(p, s, b, False),
    "optuna-hyperband": run_optuna,
    "random": run_random,
    "bohb": run_bohb,
}


def cost_to(trace: dict[str, Any], target: float) -> float:
    for c, b in zip(trace["cost"], trace["best"], strict=True):
        if b <= target:
            return c
    return math.inf


def best_at(trace: dict[str, Any], cost: float) -> float:
    out = math.inf
    for c, b in zip(trace["cost"], trace["best"], strict=True):
        if c <= cost + 1e-9:
            out = b
    return out


def _median(xs: list[float]) -> float:
    return float(np.median(xs)) if xs else math.nan


def _lower_median(xs: list[float]) -> float:
    """The value by which half the entries are in: the median for an odd count, the lower middle for an even one."""
    return float(sorted(xs)[(len(xs) - 1) // 2]) if xs else math.nan


def summarize(results: dict[str, Any]) -> str:
    """Markdown tables from the raw results (medians over seeds)."""
    lines = []
    budget = results["budget"]
    for pname, runs in results["runs"].items():
        p = PROBLEMS[pname]
        bo = runs.get("assay-bo", [])
        targets = {"T1": _median([best_at(t, budget // 2) for t in bo]),
                   "T2": _median([best_at(t, budget) for t in bo])}
        lines += [f"**{pname}** — {p.description}. Budget {budget} (= full-task evaluations). Targets from "
                  f"assay-bo's median best: T1 = at cost {budget // 2} = {targets['T1']:.4g}, "
                  f"T2 = at cost {budget} = {targets['T2']:.4g}.", "",
                  "| method | seeds | cost to T1 (reached) | ratio vs assay-bo | cost to T2 (reached) | "
                  f"ratio vs assay-bo | best at cost {budget // 4} | at {budget // 2} | at {budget} | "
                  "evaluations (full-task) | seconds/run |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for m, traces in runs.items():
            row = [m, str(len(traces))]
            for key in ("T1", "T2"):
                costs = [cost_to(t, targets[key]) for t in traces]
                med = _median(costs)
                ref = _median([cost_to(t, targets[key]) for t in bo])
                ratio = ref / med if math.isfinite(med) and math.isfinite(ref) else math.nan
                row += [f"{med:.3g} ({sum(math.isfinite(c) for c in costs)}/{len(traces)})",
                        f"{ratio:.2f}x" if math.isfinite(ratio) else "n/a"]
            row += [f"{_median([best_at(t, c) for t in traces]):.4g}" for c in (budget // 4, budget // 2, budget)]
            row.append(f"{_median([t['evals'] for t in traces]):.0f} ({_median([t['full'] for t in traces]):.0f})")
            row.append(f"{_median([t['seconds'] for t in traces]):.0f}")
            lines.append("| " + " | ".join(row) + " |")
        if any(len(traces) % 2 == 0 for traces in runs.values()):
            # with an even number of seeds the median cost is inf once half of them miss (even assay-bo's own
            # median final quality, T2, is missed by half its seeds), so also say by when half got there
            half = ", ".join(f"{m} {_lower_median([cost_to(t, targets['T2']) for t in traces]):.3g}"
                             for m, traces in runs.items())
            lines += ["", f"Cost by which half the seeds reach T2: {half}."]
        mt = runs.get("assay-multitask", [])
        if mt and all("notes" in t for t in mt):
            n_cheap = len(p.fidelities) - 1
            gone = [t for t in mt if t["notes"]]
            detail = "; ".join(f"seed {t['seed']}: " + ", ".join(t["notes"]) for t in gone)
            lines += ["", f"assay-multitask dropped a cheap task in {len(gone)} of {len(mt)} seeds, every cheap task "
                      f"(fell back to full-task BO) in {sum(len(t['notes']) == n_cheap for t in gone)}"
                      + (f": {detail}." if gone else ".")]
        lines.append("")
    return "\n".join(lines)


def correlations(names: list[str], n: int = 200, seed: int = 0, results: dict[str, Any] | None = None) -> str:
    """How informative each cheap task is: Spearman rank correlation with the full task over ``n`` random
    configurations, and over the best quarter of them (by full-task value), where a search spends its time.

    With ``results`` (a results file with ``assay-bo`` traces) also what the issue's 5x would take of a cheap task
    (:func:`promotion_odds`): single-task BO's median final quality T2 and a fifth of its median cost to T2."""
    from scipy.stats import spearmanr

    from benchmarks.space import sample

    lines = [f"| problem | task cost | Spearman vs full task, {n} random points | among the best quarter | "
             "full-task value at the task's best point (its rank) | best full-task value |",
             "|---|---|---|---|---|---|"]
    odds = ["| problem | task cost | T2 (random points as good) | a fifth of BO's cost to T2 | chance of T2 "
            "by then: m random cheap runs, the k best run in full |", "|---|---|---|---|---|"]
    for name in names:
        p = PROBLEMS[name]
        rng = np.random.default_rng(seed)
        xs = [sample(p.params, rng) for _ in range(n)]
        y = np.array([[p.f(x, s) for s in p.fidelities] for x in xs])
        full = y[:, -1]
        top = full <= np.quantile(full, 0.25)
        bo = (results or {}).get("runs", {}).get(name, {}).get("assay-bo", [])
        target = _median([best_at(t, results["budget"]) for t in bo]) if results and bo else math.nan
        cost = _median([cost_to(t, target) for t in bo]) / 5 if bo else math.nan
        for j, s in enumerate(p.fidelities[:-1]):
            k = int(np.argmin(y[:, j]))
            lines.append(f"| {name} | {s:g} | {spearmanr(y[:, j], full)[0]:.3f} | "
                         f"{spearmanr(y[top, j], full[top])[0]:.3f} | {full[k]:.4g} "
                         f"({int((full < full[k]).sum()) + 1} of {n}) | {full.min():.4g} |")
            if math.isfinite(cost):
                chances = ", ".join(f"m={m} k={k}: {q:.2f}" for m, k, q in promotion_odds(y[:, j], full, s, target,
                                                                                          cost))
                odds.append(f"| {name} | {s:g} | {target:.4g} ({int((full <= target).sum())} of {n}) | {cost:.3g} | "
                            f"{chances} |")
    return "\n".join(lines + ([""] + odds if len(odds) > 2 else []))


def promotion_odds(cheap: np.ndarray, full: np.ndarray, task_cost: float, target: float, cost: float,
                   draws: int = 4000, seed: int = 1) -> list[tuple[int, int, float]]:
    """For k = 1, 2, 3 full-task runs: the chance that ``m`` configurations drawn from the given ones and measured
    on a cheap task (values ``cheap``), then the ``k`` best of them run in full (values ``full``), find a full-task
    value <= ``target`` within ``cost`` (``m = (cost - k) / task_cost``), over ``draws`` random draws.

    Successive halving from a random start, the simplest use of a cheap task: a yardstick for what its ranks allow
    (a model-guided search concentrates its cheap runs where they rank better or worse)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in (1, 2, 3):
        m = min(len(full), int(math.floor((cost - k) / task_cost + 1e-9)))
        if m < k:
            continue
        hits = 0
        for _ in range(draws):
            idx = rng.choice(len(full), size=m, replace=False)
            hits += bool(full[idx[np.argsort(cheap[idx], kind="stable")[:k]]].min() <= target)
        out.append((m, k, hits / draws))
    return out


def study(pname: str, m: str, seed: int, budget: int) -> tuple[dict[str, Any], str]:
    """One run of method ``m`` on problem ``pname``: its trace's record and a line to print."""
    tr = METHODS[m](PROBLEMS[pname], seed, budget)
    return ({"cost": tr.cost, "best": tr.best, "evals": tr.evals, "full": tr.full, "notes": tr.notes},
            f"best {tr.best[-1]:.4g} after cost {tr.spent:.2f} ({tr.evals} evals)")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.multitask", description=__doc__.split("\n")[0])
    ap.add_argument("--problems", default="branin-mf,hartmann6-mf,hgb-breast,mlp-digits,mlp-epochs")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", type=int, default=5,
                    help="end of the seed range (exclusive): seeds --seed-start .. --seeds - 1")
    ap.add_argument("--budget", type=int, default=20)
    ap.add_argument("--seed-start", type=int, default=0, help="first seed (to split seeds over processes)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="run the studies in this many processes (with OMP_NUM_THREADS=1, one per core)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "multitask.json")
    ap.add_argument("--report", action="store_true", help="only print the tables of --out")
    ap.add_argument("--merge", type=Path, nargs="*", default=[],
                    help="merge these result files (one run per problem, e.g. in parallel) into --out")
    ap.add_argument("--correlations", type=int, metavar="N", default=0,
                    help="only print each cheap task's rank correlation with the full task over N random points "
                         "(with --out of a results file that has assay-bo: also what 5x would take of each task)")
    args = ap.parse_args()
    if args.correlations:
        have = args.out.exists() and args.out != ap.get_default("out")
        print(correlations(args.problems.split(","), args.correlations,
                           results=json.loads(args.out.read_text()) if have else None))
        return
    if args.merge:
        parts = [json.loads(f.read_text()) for f in args.merge]
        if len({p["budget"] for p in parts}) != 1:
            raise SystemExit("the merged runs must share one --budget")
        merged = {**parts[0], "runs": {}, "date": " / ".join(p["date"] for p in parts)}
        for part in parts:  # per problem and method, the union of the seeds
            for pname, methods in part["runs"].items():
                have = merged["runs"].setdefault(pname, {})
                for m, runs in methods.items():
                    by_seed = {r["seed"]: r for r in have.get(m, []) + runs}
                    have[m] = [by_seed[k] for k in sorted(by_seed)]
        args.out.write_text(json.dumps(merged))
        args.report = True
    if args.report:
        print(summarize(json.loads(args.out.read_text())))
        return
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    if results.get("budget") != args.budget:
        results = {"budget": args.budget, "runs": {}}
    results.update(machine=f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    run_missing(results, args.out, [(pname, m, seed) for pname in args.problems.split(",")
                                    for m in args.methods.split(",")
                                    for seed in range(args.seed_start, args.seeds)],
                functools.partial(study, budget=args.budget), jobs=args.jobs)
    print(summarize(results))


if __name__ == "__main__":
    main()
