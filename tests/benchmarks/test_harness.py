"""The benchmark harness end to end in a tiny configuration (assay + random search, real embedded assay)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import optimizers, problems, scoring
from benchmarks.__main__ import main
from benchmarks.space import clip, sample


def test_tiny_run_writes_results_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.md"
    args = ["--problems", "branin", "--optimizers", "assay,random", "--seeds", "2", "--budget", "6",
            "--tag", "tiny", "--results-dir", str(tmp_path), "--out", str(out), "--allow-missing"]
    assert main(args) == 0
    assert "4 runs to do" in capsys.readouterr().out

    raw = json.loads((tmp_path / "tiny" / "raw" / "branin" / "assay.json").read_text())
    assert sorted(raw) == ["0", "1"]
    optimum = problems.PROBLEMS["branin"].optimum
    assert optimum is not None
    for run in raw.values():
        assert run["error"] is None
        assert len(run["observed"]) == len(run["true"]) == len(run["ask_s"]) == 6
        assert all(v >= optimum - 1e-9 for v in run["true"])
        x = run["best_x"]
        assert -5 <= x["x1"] <= 10 and 0 <= x["x2"] <= 15

    summary = json.loads((tmp_path / "tiny" / "summary.json").read_text())
    res = summary["problems"]["branin"]
    assert res["best_known"] == pytest.approx(0.397887, abs=1e-5)
    assert res["random_mean_final"] > res["best_known"]
    rnd, asy = res["optimizers"]["random"], res["optimizers"]["assay"]
    assert rnd["score_mean"] == pytest.approx(0.0, abs=1e-9)  # random search is the zero by construction
    assert asy["seeds"] == rnd["seeds"] == 2 and asy["failed"] == 0
    assert math.isfinite(asy["score_mean"]) and asy["score_mean"] <= 100.0
    assert 0 < asy["suggest_s_mean"] < 60
    assert len(asy["score_curve"]) == 6
    assert set(summary["summary"]["assay_vs"]) == {"random"}

    md = out.read_text()
    assert md.startswith("# Benchmarks")
    assert "budget **6** evaluations, **2 seeds**" in md
    assert "| assay |" in md and "| random |" in md and "### branin" in md
    assert "nproc" not in md and f"{summary['meta']['machine']['nproc']} cores" in md

    # Resumable: a second invocation finds everything cached and rewrites the same scores.
    assert main(args) == 0
    assert "0 runs to do" in capsys.readouterr().out
    again = json.loads((tmp_path / "tiny" / "summary.json").read_text())
    assert again["problems"]["branin"]["optimizers"]["assay"]["score_mean"] == asy["score_mean"]

    # A report on a subset (e.g. a slow peer compared on the seeds it finished) leaves the main one alone.
    sub = tmp_path / "sub.md"
    assert main(["report", "--tag", "tiny", "--results-dir", str(tmp_path), "--out", str(sub),
                 "--optimizers", "assay", "--seeds", "1", "--summary", "summary-sub.json"]) == 0
    part = json.loads((tmp_path / "tiny" / "summary-sub.json").read_text())
    assert part["meta"]["seeds"] == [0] and part["problems"]["branin"]["optimizers"]["assay"]["seeds"] == 1
    assert "then python -m benchmarks report" in part["meta"]["command"] and "**1 seeds**" in sub.read_text()
    assert json.loads((tmp_path / "tiny" / "summary.json").read_text()) == again


def test_real_run_refuses_missing_peer(tmp_path: Path) -> None:
    from benchmarks.optimizers import OPTIMIZERS, Spec

    OPTIMIZERS["not-installed"] = Spec("not-installed", optimizers.RandomSearch, lambda: "package absent",
                                       lambda: "0")
    try:
        with pytest.raises(SystemExit, match="not-installed cannot run: package absent"):
            main(["--problems", "branin", "--optimizers", "not-installed", "--seeds", "1", "--budget", "2",
                  "--results-dir", str(tmp_path), "--out", str(tmp_path / "x.md")])
    finally:
        del OPTIMIZERS["not-installed"]


def test_incumbent_uses_true_value_of_best_observed_point() -> None:
    run = {"observed": [5.0, 1.0, 3.0, 0.5], "true": [4.0, 2.0, 0.0, 1.5]}
    # The third point is truly best but looked worse through the noise: the incumbent ignores it.
    assert scoring.incumbent(run).tolist() == [4.0, 2.0, 2.0, 1.5]


def _fake(problem: str, optimizer: str, seed: int, finals: list[float]) -> dict:
    return {"problem": problem, "optimizer": optimizer, "seed": seed, "observed": finals, "true": finals,
            "ask_s": [0.0] * len(finals), "tell_s": [0.0] * len(finals), "error": None}


def test_clipped_score_bounds_a_narrow_problem_and_the_report_says_why() -> None:
    """A problem whose R - f* is tiny cannot dominate the clipped mean; the report names it (generated)."""
    from benchmarks import report

    runs = []
    for seed in range(4):
        # wide problem: random ends at 10 +- 1, "good" at 2 (optimum 0 is the best seen)
        runs.append(_fake("RF-wine-nll", "random", seed, [12.0, 10.0 + (seed % 2) * 2 - 1]))
        runs.append(_fake("RF-wine-nll", "good", seed, [12.0, 2.0 if seed else 0.0]))
        # narrow problem: random's spread (sd 3) is wider than R - f* (1.5); one "good" seed ends 30 worse
        runs.append(_fake("lasso-diabetes-mse", "random", seed, [106.0, 106.0 if seed == 3 else 100.0]))
        runs.append(_fake("lasso-diabetes-mse", "good", seed, [130.0, 130.0 if seed == 0 else 100.0]))
    scored = scoring.score(runs)
    narrow, wide = scored["lasso-diabetes-mse"], scored["RF-wine-nll"]
    assert narrow["narrow"] and not wide["narrow"]
    g = narrow["optimizers"]["good"]
    assert g["score_mean"] == pytest.approx((-1900 + 3 * 100) / 4)  # one seed: 100 * (101.5 - 130) / 1.5 ...
    assert g["clipped_mean"] == pytest.approx((-100 + 3 * 100) / 4)  # ... clipped to -100, the rest at 100
    assert wide["optimizers"]["good"]["clipped_mean"] == pytest.approx(wide["optimizers"]["good"]["score_mean"])
    summary = scoring.summarize(scored)
    row = summary["optimizers"]["good"]
    assert row["all_score"] < 0 < row["all_clipped"]
    assert row["dominant"]["problem"] == "lasso-diabetes-mse"
    assert summary["flags"] == {"lasso-diabetes-mse": ["narrow"]}
    meta = {"optimizers": ["random", "good"], "machine": report.machine(), "command": "x", "date": "d",
            "budget": 2, "seeds": [0, 1, 2, 3], "problems": ["RF-wine-nll", "lasso-diabetes-mse"],
            "optimizer_versions": {}}
    optimizers.OPTIMIZERS["good"] = optimizers.OPTIMIZERS["random"]
    try:
        md = report.render(meta, scored, summary)
    finally:
        del optimizers.OPTIMIZERS["good"]
    assert "**Reading the aggregate**" in md and "mostly because of **lasso-diabetes-mse**" in md
    assert "**Narrow range**" in md and "| clipped (all) |" in md


def test_subprocess_worker_speaks_the_protocol() -> None:
    """The JSON-lines worker (used for HEBO's own venv), driven here with this interpreter and random search."""
    params = problems.PROBLEMS["mixed"].params
    opt = optimizers.SubprocessOptimizer(Path(sys.executable), "random", params, seed=3, budget=3)
    try:
        for _ in range(3):
            x = opt.ask()
            assert clip(params, x) == x
            opt.tell(x, problems.mixed(x))
    finally:
        opt.close()
    assert opt.worker.proc.returncode == 0


def test_assay_parameters_cover_every_kind() -> None:
    body = optimizers.assay_parameters(problems.SPACES["lasso-reg"])
    kinds = {p["name"]: (p["type"], p.get("transformation")) for p in body}
    assert kinds["alpha"] == ("double", "log")
    assert kinds["max_iter"] == ("int", "log")
    assert body[1]["categorical_values"] == ["true", "false"]
    x = sample(problems.SPACES["lasso-reg"], np.random.default_rng(0))
    assert 10 <= x["max_iter"] <= 5000 and 1e-2 <= x["alpha"] <= 1e2


def test_assay_runs_are_seeded() -> None:
    from benchmarks.runner import run_one

    a, b = (run_one("hartmann6", "assay", seed=5, budget=3) for _ in range(2))
    c = run_one("hartmann6", "assay", seed=6, budget=3)
    assert a["error"] is None and a["true"] == b["true"]
    assert c["true"] != a["true"]
