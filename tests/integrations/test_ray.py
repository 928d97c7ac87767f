"""Ray Tune searcher and Ray worker pool on a local Ray (2 CPUs), embedded and remote."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="ray[tune] is not installed (pip install 'assay[ray]')")

import assay  # noqa: E402
from assay.integrations.ray import AssaySearch, optimize  # noqa: E402
from tests.conftest import ServerProcess  # noqa: E402

PARAMS = [{"name": "x", "type": "double", "bounds": {"min": -2.0, "max": 2.0}},
          {"name": "k", "type": "int", "bounds": {"min": 0, "max": 3}}]


@pytest.fixture(scope="module")
def local_ray():  # type: ignore[no-untyped-def]
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    src = str(Path(__file__).resolve().parents[2] / "src")
    for attempt in range(3):  # Ray gives its raylet 30 s to register: a busy machine can miss that once
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}})
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    yield
    ray.shutdown()


def test_tune_searcher_respects_concurrency_and_restores(local_ray, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from ray import tune

    conn = assay.Connection(home=tmp_path / "home")
    exp = conn.create_experiment(name="tune", parameters=PARAMS, observation_budget=4, parallel_bandwidth=2,
                                 metrics=[{"name": "loss", "objective": "minimize"}])
    search = AssaySearch(exp)
    assert search.metric == "loss" and search.mode == "min" and search.max_concurrent == 2

    def train(config: dict) -> None:
        if config["k"] == 3 and config["x"] > 1.5:
            raise ValueError("diverged")  # a failing trial becomes a failed observation
        tune.report({"loss": (config["x"] - 0.5) ** 2 + config["k"]})

    grid = tune.Tuner(train, tune_config=tune.TuneConfig(search_alg=search, num_samples=20),
                         run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), verbose=0)).fit()
    assert search.max_live_seen == 2  # two at a time: the experiment's parallel_bandwidth
    assert search.live == {}
    data = exp.fetch()
    results = [grid[i] for i in range(len(grid))]
    assert data.progress.observation_count == 4 == len(results)  # FINISHED at the budget, not num_samples
    assert data.progress.open_suggestion_count == 0
    losses = sorted(r.metrics["loss"] for r in results if r.metrics and "loss" in r.metrics)
    assert exp.best_assignments()[0].value == pytest.approx(losses[0])

    # save/restore: a restored searcher reconnects and an in-flight trial keeps its suggestion
    assert AssaySearch(exp).suggest("trial-z") == "FINISHED"  # the budget is spent
    exp.resource.update(observation_budget=6)
    search2 = AssaySearch(conn.experiment(exp.id), max_concurrent=3)
    first = search2.suggest("trial-a")
    assert isinstance(first, dict) and set(first) == {"x", "k"}
    path = str(tmp_path / "searcher.pkl")
    search2.save(path)
    restored = AssaySearch.from_checkpoint(path)
    assert restored.experiment.id == exp.id and restored.max_concurrent == 3 and restored.live == search2.live
    assert restored.suggest("trial-a") == first  # same trial id -> same suggestion, nothing new
    restored.on_trial_complete("trial-a", {"loss": 0.01})
    assert exp.fetch().progress.observation_count == 5 and exp.data.progress.open_suggestion_count == 0
    conn.close()


def test_optimize_retries_dead_workers_on_a_remote_server(local_ray, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = ServerProcess(tmp_path / "home").start()
    marker = tmp_path / "died-once"
    try:
        with assay.Connection(server.url) as conn:
            exp = conn.create_experiment(name="pool", parameters=PARAMS, observation_budget=5,
                                         metrics=[{"name": "score", "objective": "maximize"}])

            def objective(x: float, k: int) -> float:
                if not marker.exists():
                    marker.write_text("x")
                    os._exit(1)  # the first task's worker process dies mid-task: Ray re-runs the task
                if k == 1 and x < -1.5:
                    raise RuntimeError("bad region")
                return -(x**2) - k

            best = optimize(objective, exp, num_workers=2, max_retries=2)
            obs = exp.observations()
            assert len(obs) == 5 and exp.fetch().progress.open_suggestion_count == 0
            ok = [o for o in obs if not o.failed]
            assert all(o.value == pytest.approx(-(o.assignments["x"] ** 2) - o.assignments["k"]) for o in ok)
            assert all(o.metadata["error"].startswith("RuntimeError") for o in obs if o.failed)
            assert best[0].value == pytest.approx(max(o.value for o in ok))
            assert marker.exists()  # a worker did die, and its trial still got a value (or its own error)
    finally:
        server.stop()
