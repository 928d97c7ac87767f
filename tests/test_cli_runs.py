"""`assay init | run | optimize | runs | experiments` driving real scripts (subprocesses, real SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import assay
from assay.cli import app as cli_app

SCRIPT = """
import sys
from pathlib import Path

import numpy as np

import pytest
from click.testing import Result
from typer.testing import CliRunner

import assay
from assay.cli import app as cli_app

counter = Path(sys.argv[1])
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
x = assay.params.setdefault("x", 0.25)
print(f"call {n} x={x}")
print("warning on stderr", file=sys.stderr)
for step in range(3):
    assay.log_checkpoint({"loss": 1.0 / (step + 1)})
assay.log_image(np.eye(4) * 255, name="eye")
assay.log_metadata("calls", n)
if n == int(sys.argv[2]):
    raise RuntimeError("crash on purpose")
assay.log_metric("score", -(x - 0.3) ** 2)
"""


def assay_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASSAY_HOME": str(tmp_path / "home"), "ASSAY_PROJECT": "cli-test",
           "PYTHONPATH": os.pathsep.join(p for p in [str(Path(assay.__file__).parents[1]),
                                                     os.environ.get("PYTHONPATH", "")] if p)}
    env.pop("ASSAY_URL", None)
    return subprocess.run([sys.executable, "-m", "assay", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)


def cli_inprocess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """The quick commands (no child process to track) through Typer's runner, in this process."""
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSAY_PROJECT", "cli-test")
    monkeypatch.delenv("ASSAY_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(cli_app, list(args))


def test_init_run_and_optimize_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)
    out = cli_inprocess(tmp_path, monkeypatch, "init")
    assert out.exit_code == 0 and (tmp_path / "run.yml").exists() and (tmp_path / "experiment.yml").exists()

    # one tracked run; the script's defaults become the run's parameters
    proc = assay_cli(tmp_path, "run", "--name", "single", "--", sys.executable, "train.py", "counter", "0")
    assert proc.returncode == 0, proc.stderr
    assert "call 1 x=0.25" in proc.stdout  # the child's output is streamed through

    # an optimization whose second run crashes
    (tmp_path / "experiment.yml").write_text(json.dumps({
        "name": "cli opt", "budget": 2, "metrics": [{"name": "score"}],
        "parameters": [{"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}}]}))
    proc = assay_cli(tmp_path, "optimize", "-e", "experiment.yml", "--", sys.executable, "train.py", "counter", "3")
    assert proc.returncode == 0, proc.stderr
    assert int((tmp_path / "counter").read_text()) == 3

    with assay.Connection(home=tmp_path / "home") as conn:
        runs = conn.request("GET", "/v1/clients/1/projects/cli-test/training_runs")["data"]
        assert len(runs) == 3
        single = next(r for r in runs if r["name"] == "single")
        assert single["state"] == "completed" and single["experiment"] is None
        assert single["assignments"] == {"x": 0.25} and single["values"]["score"]["value"] == -(0.25 - 0.3) ** 2
        assert "call 1" in single["logs"]["stdout"]["content"]
        assert "warning on stderr" in single["logs"]["stderr"]["content"]
        assert single["checkpoint_count"] == 3 and len(single["files"]) == 1
        assert single["metadata"]["exit_code"] == 0

        ai = [r for r in runs if r["experiment"] is not None]
        assert len(ai) == 2 and len({r["experiment"] for r in ai}) == 1
        crashed = next(r for r in ai if r["metadata"]["calls"] == 3)
        assert crashed["state"] == "failed" and crashed["metadata"]["exit_code"] == 1
        assert "crash on purpose" in crashed["logs"]["stderr"]["content"]
        for r in ai:  # suggested values reached the script through the tracking API
            assert 0 <= r["assignments"]["x"] <= 1 and r["observation"] is not None
        eid = ai[0]["experiment"]
        obs = conn.request("GET", f"/v1/experiments/{eid}/observations")["data"]
        assert len(obs) == 2 and sum(o["failed"] for o in obs) == 1
        failed_obs = next(o for o in obs if o["failed"])
        assert failed_obs["id"] == crashed["observation"]
        assert conn.request("GET", f"/v1/aiexperiments/{eid}")["progress"]["remaining_budget"] == 0

    # list / export / archive
    res = cli_inprocess(tmp_path, monkeypatch, "runs", "export", "--format", "json", "-o", "runs.json")
    assert res.exit_code == 0 and len(json.loads((tmp_path / "runs.json").read_text())) == 3
    res = cli_inprocess(tmp_path, monkeypatch, "runs", "export", "--format", "csv", "-o", "runs.csv")
    header = (tmp_path / "runs.csv").read_text().splitlines()[0]
    assert res.exit_code == 0 and "assignments.x" in header and "values.score" in header
    res = cli_inprocess(tmp_path, monkeypatch, "experiments", "export", eid, "-f", "csv", "-o", "obs.csv")
    assert res.exit_code == 0 and len((tmp_path / "obs.csv").read_text().strip().splitlines()) == 3
    res = cli_inprocess(tmp_path, monkeypatch, "runs", "archive", crashed["id"])
    assert res.exit_code == 0
    res = cli_inprocess(tmp_path, monkeypatch, "runs", "list", "--experiment", eid)
    assert res.exit_code == 0 and res.stdout.count("completed") == 1 and "failed" not in res.stdout
    res = cli_inprocess(tmp_path, monkeypatch, "experiments", "show", eid)
    assert res.exit_code == 0 and "best:" in res.stdout
    assert cli_inprocess(tmp_path, monkeypatch, "experiments", "archive", eid).exit_code == 0
    assert "cli opt" not in cli_inprocess(tmp_path, monkeypatch, "experiments", "list").stdout
    assert "cli opt" in cli_inprocess(tmp_path, monkeypatch, "experiments", "list", "--archived").stdout
    assert cli_inprocess(tmp_path, monkeypatch, "experiments", "unarchive", eid).exit_code == 0
    assert "cli opt" in cli_inprocess(tmp_path, monkeypatch, "experiments", "list").stdout
    res = cli_inprocess(tmp_path, monkeypatch, "runs", "show", "999")
    assert res.exit_code == 1


def test_run_failure_exit_code_and_missing_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for cmd in (["init", "-q"], ["add", "train.py"], ["commit", "-q", "-m", "train"]):
        subprocess.run([*git, *cmd], cwd=tmp_path, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    out = assay_cli(tmp_path, "run", "--", sys.executable, "train.py", "counter", "1")
    assert out.returncode == 1  # the script's exit code
    with assay.Connection(home=tmp_path / "home") as conn:
        (run,) = conn.request("GET", "/v1/clients/1/training_runs")["data"]
        assert run["state"] == "failed" and "crash on purpose" in run["logs"]["stderr"]["content"]
        # the tracked script and its commit are the run's source code
        assert run["source_code"]["content"] == SCRIPT and run["source_code"]["hash"] == head
    res = cli_inprocess(tmp_path, monkeypatch, "run")
    assert res.exit_code == 1
    res = cli_inprocess(tmp_path, monkeypatch, "optimize", "-e", "missing.yml", "--", "true")
    assert res.exit_code == 1


def test_runs_list_filters_sorts_and_tags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with assay.Connection(home=tmp_path / "home") as conn:
        conn.request("POST", "/v1/clients/1/projects", json={"id": "cli-test"})
        for name, acc, opt in (("ra", 0.9, "adam"), ("rb", 0.5, "sgd"), ("rc", 0.7, "adam")):
            conn.request("POST", "/v1/clients/1/projects/cli-test/training_runs", json={
                "name": name, "assignments": {"opt": opt}, "values": {"acc": {"value": acc}}})

    def listed(*args: str) -> list[str]:
        res = cli_inprocess(tmp_path, monkeypatch, "runs", "list", *args)
        assert res.exit_code == 0, res.output
        return [line.split("│")[2].strip() for line in res.stdout.splitlines()
                if line.startswith("│") and line.split("│")[2].strip() in ("ra", "rb", "rc")]

    assert listed() == ["rc", "rb", "ra"]
    assert listed("-w", "values.acc>0.6", "--sort", "values.acc", "--asc") == ["rc", "ra"]
    assert listed("-w", "assignments.opt==adam", "-w", "values.acc<0.8") == ["rc"]
    assert listed("-w", "name~b") == ["rb"]
    assert listed("--sort", "values.acc", "--limit", "2") == ["ra", "rc"]
    ids = {r["name"]: r["id"] for r in assay.list_runs("cli-test", connection=assay.Connection(home=tmp_path / "home"))}
    res = cli_inprocess(tmp_path, monkeypatch, "runs", "tag", ids["rb"], "gpu", "nightly")
    assert res.exit_code == 0
    assert listed("--tag", "gpu") == ["rb"]
    res = cli_inprocess(tmp_path, monkeypatch, "runs", "untag", ids["rb"], "gpu")
    assert res.exit_code == 0 and listed("--tag", "gpu") == [] and listed("--tag", "nightly") == ["rb"]
    assert cli_inprocess(tmp_path, monkeypatch, "runs", "favorite", ids["ra"]).exit_code == 0
    assert listed("-w", "favorite==true") == ["ra"]
    assert cli_inprocess(tmp_path, monkeypatch, "runs", "archive", ids["ra"]).exit_code == 0
    assert listed() == ["rc", "rb"] and listed("--archived") == ["rc", "rb", "ra"]
    assert cli_inprocess(tmp_path, monkeypatch, "runs", "unarchive", ids["ra"]).exit_code == 0
    assert listed() == ["rc", "rb", "ra"]
    res = cli_inprocess(tmp_path, monkeypatch, "runs", "export", "-w", "assignments.opt==adam", "-f", "csv",
                        "-o", "adam.csv")
    lines = (tmp_path / "adam.csv").read_text().splitlines()
    assert res.exit_code == 0 and len(lines) == 3 and "tags" in lines[0].split(",")
    for bad in (["-w", "values.acc"], ["-w", "values.acc>high"], ["--sort", "password"]):
        res = cli_inprocess(tmp_path, monkeypatch, "runs", "list", *bad)
        assert res.exit_code == 1, bad


WORKER_SCRIPT = """
import os
import assay

x = assay.params.x
assert float(os.environ["ASSAY_PARAM_X"]) == x  # the suggestion also reaches the script through the environment
assay.log_metadata("worker", os.environ["WORKER"])
assay.log_metric("score", -(x - 0.3) ** 2)
"""


def test_parallel_workers_share_one_experiment(tmp_path: Path) -> None:
    """`assay optimize` starts the experiment, two `assay start-worker` processes finish its budget together."""
    from tests.conftest import ServerProcess

    server = ServerProcess(tmp_path / "server").start()
    try:
        (tmp_path / "train.py").write_text(WORKER_SCRIPT)
        (tmp_path / "experiment.yml").write_text(json.dumps({
            "name": "parallel", "budget": 5, "parallel_bandwidth": 2, "metrics": [{"name": "score"}],
            "parameters": [{"name": "x", "type": "double", "bounds": {"min": 0, "max": 1}}]}))
        env = {**os.environ, "ASSAY_URL": server.url, "ASSAY_PROJECT": "workers", "WORKER": "first",
               "PYTHONPATH": os.pathsep.join(p for p in [str(Path(assay.__file__).parents[1]),
                                                         os.environ.get("PYTHONPATH", "")] if p)}
        first = subprocess.run([sys.executable, "-m", "assay", "optimize", "-e", "experiment.yml", "--max-runs", "1",
                                "--", sys.executable, "train.py"], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=600)
        assert first.returncode == 0, first.stderr
        said = " ".join(first.stdout.split())  # Rich wraps long lines
        eid = said.split("AI experiment ")[1].split()[0]
        assert f"assay start-worker {eid} --" in said  # it says how to add workers
        workers = [subprocess.Popen([sys.executable, "-m", "assay", "start-worker", eid, "--", sys.executable,
                                     "train.py"], cwd=tmp_path, env={**env, "WORKER": w}, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for w in ("w1", "w2")]
        outs = [w.communicate(timeout=600) for w in workers]
        assert [w.returncode for w in workers] == [0, 0], [o[1][-2000:] for o in outs]
        with assay.Connection(server.url) as conn:
            exp = conn.request("GET", f"/v1/aiexperiments/{eid}")
            runs = assay.list_runs("workers", experiment=eid, connection=conn)
            obs = conn.request("GET", f"/v1/experiments/{eid}/observations", params={"limit": 100})["data"]
        assert exp["progress"]["remaining_budget"] == 0
        assert 5 <= len(runs) <= 6  # the budget is soft: two workers may both start the last run
        assert all(r["state"] == "completed" and r["observation"] for r in runs)
        assert {r["metadata"]["worker"] for r in runs} == {"first", "w1", "w2"}  # both workers took runs
        assert len({r["suggestion"] for r in runs}) == len(runs)  # never the same suggestion twice
        assert len(obs) == len(runs) and not any(o["failed"] for o in obs)
    finally:
        server.stop()
