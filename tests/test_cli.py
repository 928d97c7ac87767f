"""The `assay` command: demo and db upgrade, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import assay


def run(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ASSAY_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "assay", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_demo_runs_a_real_optimization(home: Path) -> None:
    out = run(["demo", "--evaluations", "4"], home)
    assert out.returncode == 0, out.stderr
    assert "accuracy" in out.stdout and str(home / "assay.db") in out.stdout
    with assay.Connection(home=home) as conn:
        exps = conn.experiments().fetch().data
        assert len(exps) == 1 and exps[0].progress.observation_count == 4
        values = [o.value for o in conn.experiments(exps[0].id).observations().fetch().data]
        best = exps[0].progress.best_observation.value
        # (4 evaluations are mostly the initial design: the best may still be poor, e.g. a large gamma)
        assert len(values) == 4 and all(0.0 < v <= 1.0 for v in values) and best == max(values)
    assert f"{best:.4f}" in out.stdout  # the printed table shows the stored best


def test_db_upgrade(home: Path) -> None:
    out = run(["db", "upgrade"], home)
    assert out.returncode == 0, out.stderr
    assert "empty ->" in out.stdout
    out = run(["db", "upgrade"], home)
    assert "empty" not in out.stdout
