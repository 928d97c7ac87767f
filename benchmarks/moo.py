"""Multi-objective and constrained optimization benchmark: hypervolume / best feasible value vs budget.

``python -m benchmarks.moo [--problems branin-currin,zdt2,branin-disk,gardner] [--methods ...]
[--seeds 5] [--budget 30] [--out PATH] [--report]``

Every method minimizes every objective and sees the constraint metrics as ``value <= threshold``.
Problems:

* ``branin-currin``: Branin and Currin on [0, 1]^2 (BoTorch's ``BraninCurrin``), reference point
  (18, 6), best hypervolume 59.36;
* ``zdt2``: ZDT2 with 4 variables (non-convex front), reference point (11, 11), best hypervolume 120 1/3;
* ``branin-disk``: Branin s.t. (x1 - 2.5)^2 + (x2 - 7.5)^2 <= 50 (Gelbart et al. 2014), optimum 0.397887
  (two of Branin's three minima are infeasible);
* ``gardner``: cos(2 x1) cos(x2) + sin(x1) s.t. cos(x1 + x2) <= 0.5 on [0, 6]^2 (Gardner et al. 2014),
  optimum -2 at (3 pi / 2, 0).

Quality: the hypervolume of the feasible observed points (two objectives), or the best feasible value
(one objective), after 10, 20, ... evaluations; mean ± standard error over seeds.

Methods: ``assay`` (embedded API: two ``optimize`` metrics → qLogNEHVI; ``constraint`` metrics with a
threshold → constrained qLogNEI), ``random``, ``optuna-tpe`` (``TPESampler``: MOTPE on a two-direction
study, constraints via ``Trial.set_constraint``), ``optuna-gp`` (``GPSampler``, which takes several
objectives and constraints in Optuna 5), ``ax`` (Ax's ``Client``, default generation strategy,
run in ``benchmarks/.venv-ax`` by :mod:`benchmarks.moo_ax`; create it with ``python -m benchmarks.moo
--setup-ax``). No method is told the reference point or the optimum.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.optimizers import WorkerPipe, assay_parameters
from benchmarks.runner import run_missing
from benchmarks.space import Param, double, sample, to_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
AX_VENV = HERE / ".venv-ax"

__all__ = ["PROBLEMS", "METHODS", "hypervolume_2d", "run_method", "summarize", "setup_ax"]


@dataclass(frozen=True)
class MOProblem:
    name: str
    params: list[Param]
    objectives: tuple[str, ...]  # all minimized
    constraints: tuple[tuple[str, float], ...]  # (metric, threshold): feasible when value <= threshold
    f: Callable[[dict[str, Any]], dict[str, float]]
    ref_point: tuple[float, ...] | None  # two objectives: hypervolume reference (minimization)
    best: float  # best hypervolume, or the constrained optimum
    description: str


def _branin(x1: float, x2: float) -> float:
    return ((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def branin_currin(x: dict[str, Any]) -> dict[str, float]:
    u, v = x["x0"], x["x1"]
    factor = 1.0 - math.exp(-1.0 / (2 * v)) if v > 0 else 1.0
    currin = factor * (2300 * u**3 + 1900 * u**2 + 2092 * u + 60) / (100 * u**3 + 500 * u**2 + 4 * u + 20)
    return {"branin": _branin(15 * u - 5, 15 * v), "currin": currin}


def zdt2(x: dict[str, Any]) -> dict[str, float]:
    v = np.array([x[f"x{i}"] for i in range(4)])
    g = 1 + 9 * v[1:].sum() / (len(v) - 1)
    return {"f1": float(v[0]), "f2": float(g * (1 - (v[0] / g) ** 2))}


def branin_disk(x: dict[str, Any]) -> dict[str, float]:
    return {"f": _branin(x["x1"], x["x2"]), "disk": (x["x1"] - 2.5) ** 2 + (x["x2"] - 7.5) ** 2}


def gardner(x: dict[str, Any]) -> dict[str, float]:
    a, b = x["x1"], x["x2"]
    return {"f": math.cos(2 * a) * math.cos(b) + math.sin(a),
            "c": math.cos(a) * math.cos(b) - math.sin(a) * math.sin(b)}


def _gardner_optimum() -> float:
    g = np.linspace(0, 6, 3001)
    a, b = np.meshgrid(g, g)
    f = np.cos(2 * a) * np.cos(b) + np.sin(a)
    return float(f[np.cos(a + b) <= 0.5].min())


PROBLEMS: dict[str, MOProblem] = {
    "branin-currin": MOProblem("branin-currin", [double("x0", 0, 1), double("x1", 0, 1)], ("branin", "currin"), (),
                               branin_currin, (18.0, 6.0), 59.36011874867746,
                               "Branin-Currin (2 objectives, 2 variables), reference point (18, 6)"),
    "zdt2": MOProblem("zdt2", [double(f"x{i}", 0, 1) for i in range(4)], ("f1", "f2"), (), zdt2, (11.0, 11.0),
                      120 + 1 / 3, "ZDT2 (2 objectives, 4 variables, non-convex front), reference point (11, 11)"),
    "branin-disk": MOProblem("branin-disk", [double("x1", -5, 10), double("x2", 0, 15)], ("f",), (("disk", 50.0),),
                             branin_disk, None, 0.397887,
                             "Branin s.t. (x1-2.5)^2+(x2-7.5)^2 <= 50 (Gelbart et al. 2014), 2 variables"),
    "gardner": MOProblem("gardner", [double("x1", 0, 6), double("x2", 0, 6)], ("f",), (("c", 0.5),), gardner, None,
                         -2.0, "Gardner et al. 2014: cos(2x1)cos(x2)+sin(x1) s.t. cos(x1+x2) <= 0.5, 2 variables"),
}


def hypervolume_2d(points: np.ndarray, ref: tuple[float, ...]) -> float:
    """Area dominated by ``points`` (``n x 2``, minimization) and bounded by ``ref``."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    pts = pts[np.all(pts < np.asarray(ref), axis=1)]
    hv, low = 0.0, ref[1]
    for f1, f2 in pts[np.lexsort((pts[:, 1], pts[:, 0]))]:
        if f2 < low:
            hv += (ref[0] - f1) * (low - f2)
            low = f2
    return hv


def feasible(p: MOProblem, values: dict[str, float]) -> bool:
    return all(values[c] <= t for c, t in p.constraints)


def quality(p: MOProblem, trace: list[dict[str, float]], n: int) -> float:
    """Hypervolume (two objectives) or best feasible value (one; ``inf`` when none) of the first ``n``."""
    ok = [v for v in trace[:n] if feasible(p, v)]
    if len(p.objectives) == 2:
        assert p.ref_point is not None
        return hypervolume_2d(np.array([[v[o] for o in p.objectives] for v in ok]), p.ref_point) if ok else 0.0
    return min((v[p.objectives[0]] for v in ok), default=math.inf)


# ---------------------------------------------------------------- methods (ask/tell with every metric)


class Method:
    def ask(self) -> dict[str, Any]:
        raise NotImplementedError

    def tell(self, x: dict[str, Any], values: dict[str, float]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class RandomMethod(Method):
    def __init__(self, p: MOProblem, seed: int, budget: int) -> None:
        self.p, self.rng = p, np.random.default_rng([seed, 13])

    def ask(self) -> dict[str, Any]:
        return sample(self.p.params, self.rng)

    def tell(self, x: dict[str, Any], values: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


class AssayMethod(Method):
    def __init__(self, p: MOProblem, seed: int, budget: int) -> None:
        import assay

        self._tmp = tempfile.TemporaryDirectory(prefix="assay-moo-bench-")
        os.environ["ASSAY_SEED"] = str(seed)
        try:
            self.conn = assay.Connection(database_url=f"sqlite:///{self._tmp.name}/bench.db", home=self._tmp.name)
        finally:
            os.environ.pop("ASSAY_SEED", None)
        metrics: list[dict[str, Any]] = [{"name": o, "objective": "minimize"} for o in p.objectives]
        metrics += [{"name": c, "objective": "minimize", "strategy": "constraint", "threshold": t}
                    for c, t in p.constraints]
        self.exp = self.conn.create_experiment(name=p.name, parameters=assay_parameters(p.params), metrics=metrics,
                                               observation_budget=budget)
        self._open: dict[str, Any] = {}

    def ask(self) -> dict[str, Any]:
        s = self.exp.suggest()
        x = dict(s.assignments)
        self._open[json.dumps(x, sort_keys=True)] = s.id
        return x

    def tell(self, x: dict[str, Any], values: dict[str, float]) -> None:
        sid = self._open.pop(json.dumps(x, sort_keys=True))
        self.exp.observe(sid, dict(values))

    def close(self) -> None:
        self.conn.close()
        self._tmp.cleanup()


class OptunaMethod(Method):
    def __init__(self, p: MOProblem, seed: int, budget: int, kind: str) -> None:
        import warnings

        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        # constraints go through Trial.set_constraint (Optuna 5; it deprecates samplers' constraints_func)
        sampler = (optuna.samplers.TPESampler(seed=seed, multivariate=True) if kind == "tpe"
                   else optuna.samplers.GPSampler(seed=seed))
        self.p = p
        self.study = optuna.create_study(directions=["minimize"] * len(p.objectives), sampler=sampler)
        self.dists: dict[str, optuna.distributions.BaseDistribution] = {
            q.name: optuna.distributions.FloatDistribution(q.low, q.high) for q in p.params}
        self._open: dict[str, Any] = {}

    def ask(self) -> dict[str, Any]:
        t = self.study.ask(self.dists)
        x = dict(t.params)
        self._open[json.dumps(x, sort_keys=True)] = t
        return x

    def tell(self, x: dict[str, Any], values: dict[str, float]) -> None:
        t = self._open.pop(json.dumps(x, sort_keys=True))
        for c, thr in self.p.constraints:
            t.set_constraint(c, values[c] - thr)  # feasible when <= 0
        self.study.tell(t, [values[o] for o in self.p.objectives])

    def close(self) -> None:
        pass


class AxMethod(Method):
    """Ax in its own virtual environment (:mod:`benchmarks.moo_ax`), JSON lines over a pipe."""

    def __init__(self, p: MOProblem, seed: int, budget: int) -> None:
        py = AX_VENV / "bin" / "python"
        if not py.exists():
            raise RuntimeError(f"{AX_VENV} is missing: run `python -m benchmarks.moo --setup-ax`")
        # its own torch extension cache: Ax's BoTorch compiles its fused kernel from another source path
        self.worker = WorkerPipe(py, "benchmarks.moo_ax", "Ax", TORCH_EXTENSIONS_DIR=str(AX_VENV / "torch_extensions"))
        self.worker.call({"cmd": "init", "params": to_json(p.params), "objectives": list(p.objectives),
                          "constraints": [list(c) for c in p.constraints], "seed": seed, "budget": budget})

    def ask(self) -> dict[str, Any]:
        return self.worker.call({"cmd": "ask"})

    def tell(self, x: dict[str, Any], values: dict[str, float]) -> None:
        self.worker.call({"cmd": "tell", "x": x, "values": values})

    def close(self) -> None:
        self.worker.close(timeout=60)


METHODS: dict[str, Callable[[MOProblem, int, int], Method]] = {
    "assay": AssayMethod,
    "random": RandomMethod,
    "optuna-tpe": lambda p, s, b: OptunaMethod(p, s, b, "tpe"),
    "optuna-gp": lambda p, s, b: OptunaMethod(p, s, b, "gp"),
    "ax": AxMethod,
}


def run_method(name: str, p: MOProblem, seed: int, budget: int) -> list[dict[str, float]]:
    """The metric values of every evaluation, in order."""
    m = METHODS[name](p, seed, budget)
    trace: list[dict[str, float]] = []
    try:
        for _ in range(budget):
            x = m.ask()
            values = p.f(x)
            m.tell(x, values)
            trace.append(values)
    finally:
        m.close()
    return trace


def ax_version() -> str:
    py = AX_VENV / "bin" / "python"
    if not py.exists():
        return "not installed"
    code = ("from importlib.metadata import version as v; "
            "print('ax-platform', v('ax-platform'), 'botorch', v('botorch'))")
    return subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300).stdout.strip()


def setup_ax(python: str = sys.executable) -> Path:
    """Create ``benchmarks/.venv-ax`` with ax-platform, torch held at our pin (constraints.txt)."""
    if not (AX_VENV / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(AX_VENV)], check=True)
    subprocess.run([str(AX_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "-c", str(ROOT / "constraints.txt"), "ax-platform"], check=True)
    return AX_VENV


# ---------------------------------------------------------------- report


def _mean_se(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs, dtype=float)
    if not len(a):
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else 0.0


def budgets(budget: int) -> list[int]:
    return sorted({*range(10, budget + 1, 10), budget})


def summarize(results: dict[str, Any]) -> str:
    """Markdown tables (mean ± s.e. over seeds) from the raw traces."""
    lines: list[str] = []
    B = budgets(results["budget"])
    for pname, runs in results["runs"].items():
        p = PROBLEMS[pname]
        mo = len(p.objectives) == 2
        what = "hypervolume (higher is better)" if mo else "best feasible value (lower is better)"
        gap_name = "HV gap" if mo else "regret"
        lines += [f"**{pname}** — {p.description}; {what}; best possible {p.best:.4g}.", "",
                  "| method | seeds | " + " | ".join(f"n={n}" for n in B)
                  + f" | {gap_name} at n={B[-1]} | gap ratio vs assay | s/run |",
                  "|---|---|" + "---|" * len(B) + "---|---|---|"]

        def gap(q: float, p: MOProblem = p, mo: bool = mo) -> float:
            return (p.best - q) if mo else (q - p.best)

        ref = [gap(quality(p, r["trace"], B[-1])) for r in runs.get("assay", [])]
        for m, rs in runs.items():
            cells = [m, str(len(rs))]
            for n in B:
                qs = [quality(p, r["trace"], n) for r in rs]
                if not mo and any(math.isinf(q) for q in qs):
                    found = sum(math.isfinite(q) for q in qs)
                    mean, se = _mean_se([q for q in qs if math.isfinite(q)])
                    cells.append(f"{mean:.4g} ± {se:.2g} ({found}/{len(qs)} feasible)")
                else:
                    mean, se = _mean_se(qs)
                    cells.append(f"{mean:.4g} ± {se:.2g}")
            gaps = [gap(quality(p, r["trace"], B[-1])) for r in rs]
            gm, gs = _mean_se(gaps)
            cells.append(f"{gm:.3g} ± {gs:.2g}")
            am = _mean_se(ref)[0] if ref else math.nan
            cells.append(f"{gm / am:.2f}x" if ref and am > 0 and math.isfinite(gm) else "—")
            cells.append(f"{np.mean([r['seconds'] for r in rs]):.0f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Gap ratio = the method's mean gap to the best possible value at the final budget / assay's "
                 "(above 1: assay is closer to the optimum).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.moo", description=__doc__.split("\n")[0])
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. seeds-1 (for shards)")
    ap.add_argument("--budget", type=int, default=30)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "moo.json")
    ap.add_argument("--report", action="store_true", help="only print the tables of --out")
    ap.add_argument("--setup-ax", action="store_true", help=f"create {AX_VENV} with ax-platform and exit")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="merge these result files (shards run in parallel, same budget) into --out and report")
    args = ap.parse_args(argv)
    if args.merge:
        merged: dict[str, Any] = {"runs": {}}
        for f in args.merge:
            part = json.loads(f.read_text())
            if merged.setdefault("budget", part["budget"]) != part["budget"]:
                raise SystemExit(f"{f}: budget {part['budget']} differs from {merged['budget']}")
            for k in ("machine", "date", "versions"):
                merged.setdefault(k, part.get(k))
            for pname, by_method in part["runs"].items():
                for m, rs in by_method.items():
                    merged["runs"].setdefault(pname, {}).setdefault(m, []).extend(rs)
        args.out.write_text(json.dumps(merged))
        print(summarize(merged))
        return
    if args.setup_ax:
        print(f"created {setup_ax()}")
        return
    if args.report:
        print(summarize(json.loads(args.out.read_text())))
        return
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    if results.get("budget") != args.budget:
        results = {"budget": args.budget, "runs": {}}
    methods = args.methods.split(",")
    if "ax" in methods and not (AX_VENV / "bin" / "python").exists():
        print(f"ax: left out, {AX_VENV} is missing (python -m benchmarks.moo --setup-ax)", file=sys.stderr)
        methods.remove("ax")
    import optuna

    results.update(machine=f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   versions={"optuna": optuna.__version__, "ax": ax_version() if "ax" in methods else "not run"})
    def study(pname: str, m: str, seed: int) -> tuple[dict[str, Any], str]:
        p = PROBLEMS[pname]
        trace = run_method(m, p, seed, args.budget)
        return {"trace": trace}, f"{quality(p, trace, args.budget):.4g}"

    # seeds outermost: a cut run still compares methods
    run_missing(results, args.out, [(pname, m, seed) for pname in args.problems.split(",")
                                    for seed in range(args.first_seed, args.seeds) for m in methods], study)
    print(summarize(results))


if __name__ == "__main__":
    main()
