"""The multi-fidelity benchmark's problems and cost accounting (no optimizer study: that is benchmarks/)."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import multitask
from benchmarks.runner import run_missing
from benchmarks.space import double


def test_mlp_digits_trains_on_nested_fractions_of_the_training_set() -> None:
    cfg = {"learning_rate": 0.01, "alpha": 1e-4, "hidden": 64, "batch_size": 32}
    losses = [multitask.mlp_digits(cfg, s) for s in multitask.PROBLEMS["mlp-digits"].fidelities]
    assert all(math.isfinite(v) and v > 0 for v in losses)
    assert losses[-1] < losses[0]  # all the data beats an eighth of it for a sensible configuration
    assert multitask.mlp_digits(dict(cfg), 1.0) == losses[-1]  # deterministic (and cached)
    Xt, _, yt, _ = multitask._digits()
    assert len(Xt) == len(yt) and set(np.unique(yt[: round(0.125 * len(yt))])) == set(range(10))


def _increments(p: multitask.MFProblem) -> set[float]:
    tr = multitask.run_optuna(p, 0, 6)
    return {round(b - a, 4) for a, b in zip([0.0, *tr.cost[:-1]], tr.cost, strict=True)}


def test_optuna_rungs_pay_the_increment_only_when_training_resumes() -> None:
    f = lambda x, s: (x["x"] - 0.3) ** 2 + 0.1 * (1 - s)  # noqa: E731
    resumable = multitask.MFProblem("toy", [double("x", 0.0, 1.0)], (0.25, 0.5, 1.0), f, "toy")
    restarts = multitask.MFProblem("toy", [double("x", 0.0, 1.0)], (0.25, 0.5, 1.0), f, "toy", resumable=False)
    assert _increments(resumable) <= {0.25, 0.5}
    assert 1.0 in _increments(restarts) and _increments(restarts) <= {0.25, 0.5, 1.0}


def test_mlp_epochs_fidelities_are_points_of_one_training_run() -> None:
    import warnings

    from sklearn.metrics import log_loss
    from sklearn.neural_network import MLPClassifier

    cfg = {"learning_rate": 0.003, "alpha": 1e-4, "hidden": 32, "batch_size": 64}
    p = multitask.PROBLEMS["mlp-epochs"]
    losses = [multitask.mlp_epochs(cfg, s) for s in p.fidelities]
    assert p.resumable and all(math.isfinite(v) and v > 0 for v in losses)
    assert losses[0] > losses[1] > losses[2]  # a sensible configuration keeps learning
    # the 5-epoch task is what 5 epochs of the same training give
    Xt, Xv, yt, yv = multitask._digits()
    m = MLPClassifier(hidden_layer_sizes=(32,), alpha=1e-4, learning_rate_init=0.003, batch_size=64, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(5):
            m.partial_fit(Xt, yt, classes=list(range(10)))
    assert log_loss(yv, m.predict_proba(Xv), labels=list(range(10))) == losses[0]


def test_a_trace_note_reads_the_engines_reason_for_dropping_a_task() -> None:
    from assay.engine.multitask import drop_reason

    source = ("multitask: full-task BO (" + drop_reason(0.125, -1.0, 3, math.nan) + "; "
              + drop_reason(0.25, -0.5, 5, -0.31) + "): gp:logei")
    assert multitask._DROPPED.findall(source) == [
        ("0.125", "-1.00", "no model"), ("0.25", "-0.50", "the model predicts the full task there 0.31 nats")]


def test_trainings_run_on_one_thread_whatever_the_machine_has() -> None:
    """A training's floating-point sums depend on the BLAS/OpenMP thread count, and one last-digit change moves
    every later suggestion of a seeded run: the benchmark's objectives train on one thread."""
    import sklearn.ensemble  # noqa: F401  (loads OpenMP, which HistGradientBoosting uses)
    from threadpoolctl import threadpool_info

    inside = multitask._one_thread(threadpool_info)()
    assert inside and all(lib["num_threads"] == 1 for lib in inside)


def test_studies_in_two_processes_store_what_one_process_stores(tmp_path: Path) -> None:
    keys = [("branin-mf", "random", 1), ("branin-mf", "random", 0)]
    study = functools.partial(multitask.study, budget=2)
    one: dict = {"runs": {}}
    two: dict = {"runs": {}}
    run_missing(one, tmp_path / "one.json", keys, study)
    run_missing(two, tmp_path / "two.json", keys, study, jobs=2)

    def traces(results: dict) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in results["runs"]["branin-mf"]["random"]]

    assert [r["seed"] for r in traces(two)] == [0, 1]  # seed order, though asked for 1 first
    assert traces(one) == traces(two) and traces(two)[0]["best"] != traces(two)[1]["best"]
    assert json.loads((tmp_path / "two.json").read_text()) == two
    (tmp_path / "two.json").unlink()
    run_missing(two, tmp_path / "two.json", keys, study, jobs=2)  # nothing missing: nothing run, nothing written
    assert not (tmp_path / "two.json").exists()


def test_a_failing_study_in_a_process_does_not_lose_the_others(tmp_path: Path) -> None:
    keys = [("branin-mf", "no-such-method", 0), ("branin-mf", "random", 0), ("branin-mf", "random", 1)]
    results: dict = {"runs": {}}
    with pytest.raises(RuntimeError, match="1 of 3 studies failed .branin-mf no-such-method 0.") as err:
        run_missing(results, tmp_path / "r.json", keys, functools.partial(multitask.study, budget=2), jobs=2)
    assert isinstance(err.value.__cause__, KeyError)
    stored = json.loads((tmp_path / "r.json").read_text())["runs"]["branin-mf"]
    assert [r["seed"] for r in stored["random"]] == [0, 1] and stored["no-such-method"] == []


def test_promotion_odds_follow_the_cheap_tasks_ranks() -> None:
    full = np.arange(10.0)  # configuration 0 is the only one as good as the target
    # a cheap task ranking as the full task does: all ten measured (cost 1 + 10 x 0.1 = 2) find it for sure
    assert multitask.promotion_odds(full, full, 0.1, 0.0, 2.0)[0] == (10, 1, 1.0)
    # ranking backwards: the best cheap value is the worst configuration, the target is never met with k = 1
    assert multitask.promotion_odds(-full, full, 0.1, 0.0, 2.0)[0] == (10, 1, 0.0)
    # four random cheap runs (cost 1 + 4 x 0.25): the right one is drawn in 4 of 10 draws
    ((m, k, q), *_) = multitask.promotion_odds(full, full, 0.25, 0.0, 2.0, draws=2000)
    assert (m, k) == (4, 1) and q == pytest.approx(0.4, abs=0.05)
    # cost 3: 8 cheap runs with one full, 4 with two, none with three (no such row)
    assert [r[:2] for r in multitask.promotion_odds(full, full, 0.25, 0.0, 3.0)] == [(8, 1), (4, 2)]


def test_correlations_say_what_5x_would_take_against_single_task_bo() -> None:
    toy = multitask.MFProblem("toy", [double("x", 0.0, 1.0)], (0.25, 1.0), lambda x, s: (x["x"] - 0.3) ** 2, "toy")
    bo = [{"cost": [1.0, 2.0, 3.0], "best": [0.5, 0.2, v]} for v in (0.01, 0.02, 0.03)]  # T2 0.02, at cost 3
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(multitask.PROBLEMS, "toy", toy)
        plain = multitask.correlations(["toy"], 20)
        odds = multitask.correlations(["toy"], 20, results={"budget": 3, "runs": {"toy": {"assay-bo": bo}}})
    assert "| toy | 0.25 | 1.000 |" in plain and "chance of T2" not in plain
    row = odds.splitlines()[-1]
    assert row.startswith("| toy | 0.25 | 0.02 (") and "| 0.6 |" in row and row.endswith("|")
