"""The multi-objective / constrained benchmark: hypervolume, problems and a tiny end-to-end run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import moo


def test_hypervolume_2d_matches_hand_computed_areas() -> None:
    ref = (4.0, 4.0)
    assert moo.hypervolume_2d(np.array([[1.0, 1.0]]), ref) == 9.0
    # a staircase of three points: horizontal slabs 3x1 (y in [3, 4]) + 2x1 + 1x1
    pts = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert moo.hypervolume_2d(pts, ref) == pytest.approx(6.0)
    # dominated points and points beyond the reference add nothing; the order does not matter
    more = np.vstack([pts[::-1], [[2.5, 2.5], [5.0, 0.0], [0.5, 4.0]]])
    assert moo.hypervolume_2d(more, ref) == moo.hypervolume_2d(pts, ref)
    assert moo.hypervolume_2d(np.zeros((0, 2)), ref) == 0.0


def test_problems_know_their_optimum() -> None:
    bc = moo.PROBLEMS["branin-currin"]
    assert bc.ref_point is not None
    # a dense grid's hypervolume approaches (and never beats) the published best
    g = np.linspace(0, 1, 201)
    vals = np.array([[v["branin"], v["currin"]] for v in (bc.f({"x0": a, "x1": b}) for a in g for b in g)])
    hv = moo.hypervolume_2d(vals, bc.ref_point)
    assert 0.97 * bc.best < hv <= bc.best + 1e-6
    z = moo.PROBLEMS["zdt2"]
    assert z.ref_point is not None
    front = [z.f({"x0": t, "x1": 0.0, "x2": 0.0, "x3": 0.0}) for t in np.linspace(0, 1, 2001)]
    assert moo.hypervolume_2d(np.array([[v["f1"], v["f2"]] for v in front]), z.ref_point) == pytest.approx(
        z.best, rel=1e-3)
    disk = moo.PROBLEMS["branin-disk"]
    assert moo.feasible(disk, disk.f({"x1": math.pi, "x2": 2.275}))
    assert not moo.feasible(disk, disk.f({"x1": -math.pi, "x2": 12.275}))
    assert disk.f({"x1": math.pi, "x2": 2.275})["f"] == pytest.approx(disk.best, abs=1e-5)
    assert moo._gardner_optimum() == pytest.approx(moo.PROBLEMS["gardner"].best, abs=1e-5)


def test_tiny_run_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "moo.json"
    moo.main(["--problems", "branin-currin,gardner", "--methods", "assay,random,optuna-tpe", "--seeds", "2",
              "--budget", "5", "--out", str(out)])
    res = json.loads(out.read_text())
    for pname in ("branin-currin", "gardner"):
        p = moo.PROBLEMS[pname]
        for m in ("assay", "random", "optuna-tpe"):
            runs = res["runs"][pname][m]
            assert [r["seed"] for r in runs] == [0, 1] and all(len(r["trace"]) == 5 for r in runs)
            assert all(set(v) == {*p.objectives, *(c for c, _ in p.constraints)} for r in runs for v in r["trace"])
    text = capsys.readouterr().out
    assert "**branin-currin**" in text and "| assay | 2 |" in text and "gap ratio vs assay" in text
    # the random runs are reproducible: a second run with the same seeds only reports
    again = moo.summarize(res)
    assert again in text
