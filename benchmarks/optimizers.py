"""Optimizers behind one small ask/tell interface (all minimize).

Add an optimizer with :func:`register`: a factory ``(params, seed, budget) -> Optimizer``
and an availability check returning ``None`` or the reason it cannot run. Heavy imports
happen inside the factories so this module imports with numpy alone (the HEBO worker
imports it from its own virtual environment).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from benchmarks.space import Param, sample, to_json

__all__ = ["Optimizer", "Spec", "OPTIMIZERS", "register", "make", "unavailable", "version", "HEBO_VENV"]

ROOT = Path(__file__).resolve().parent.parent
HEBO_VENV = Path(__file__).resolve().parent / ".venv-hebo"


class Optimizer(Protocol):
    def ask(self) -> dict[str, Any]: ...
    def tell(self, x: dict[str, Any], value: float) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Spec:
    name: str
    factory: Callable[[list[Param], int, int], Optimizer]
    check: Callable[[], str | None]  # None when it can run, else why not
    version: Callable[[], str]
    optional: bool = False  # optional peers may be missing even in a real run
    description: str = ""


OPTIMIZERS: dict[str, Spec] = {}


def register(spec: Spec) -> Spec:
    OPTIMIZERS[spec.name] = spec
    return spec


def make(name: str, params: list[Param], seed: int, budget: int) -> Optimizer:
    return OPTIMIZERS[name].factory(params, seed, budget)


def unavailable(name: str) -> str | None:
    try:
        return OPTIMIZERS[name].check()
    except Exception as exc:  # a broken install is "unavailable", with the reason
        return f"{type(exc).__name__}: {exc}"


def version(name: str) -> str:
    try:
        return OPTIMIZERS[name].version()
    except Exception:
        return "?"


def _module_version(module: str) -> str:
    from importlib.metadata import version as v

    return v(module)


def _importable(module: str) -> Callable[[], str | None]:
    def check() -> str | None:
        import importlib.util

        return None if importlib.util.find_spec(module) else f"python package {module!r} is not installed"
    return check


# ---------------------------------------------------------------- random search


class RandomSearch:
    def __init__(self, params: list[Param], seed: int, budget: int) -> None:
        self.params = params
        self.rng = np.random.default_rng([seed, 7])

    def ask(self) -> dict[str, Any]:
        return sample(self.params, self.rng)

    def tell(self, x: dict[str, Any], value: float) -> None:
        pass

    def close(self) -> None:
        pass


register(Spec("random", RandomSearch, lambda: None, lambda: "numpy " + np.__version__,
              description="uniform (log-uniform for log parameters) random search"))


# ---------------------------------------------------------------- assay (public embedded API)


def assay_parameters(params: list[Param]) -> list[dict[str, Any]]:
    """Our space as SigOpt/assay parameter JSON."""
    out: list[dict[str, Any]] = []
    for p in params:
        if p.kind == "categorical":
            out.append({"name": p.name, "type": "categorical", "categorical_values": list(p.choices)})
        else:
            d: dict[str, Any] = {"name": p.name, "type": p.kind,
                                 "bounds": {"min": int(p.low) if p.kind == "int" else p.low,
                                            "max": int(p.high) if p.kind == "int" else p.high}}
            if p.log:
                d["transformation"] = "log"
            out.append(d)
    return out


class AssayOptimizer:
    """assay through ``assay.Connection`` (embedded, own SQLite file): whatever engine is installed."""

    def __init__(self, params: list[Param], seed: int, budget: int) -> None:
        import assay

        self._tmp = tempfile.TemporaryDirectory(prefix="assay-bench-")
        saved = os.environ.get("ASSAY_SEED")
        os.environ["ASSAY_SEED"] = str(seed)  # the experiment's seed: assay runs are reproducible like the peers'
        try:
            self.conn = assay.Connection(database_url=f"sqlite:///{self._tmp.name}/bench.db", home=self._tmp.name)
        finally:
            if saved is None:
                os.environ.pop("ASSAY_SEED", None)
            else:
                os.environ["ASSAY_SEED"] = saved
        self.exp = self.conn.create_experiment(
            name="benchmark", parameters=assay_parameters(params),
            metrics=[{"name": "loss", "objective": "minimize"}], observation_budget=budget,
            metadata={"benchmark_seed": seed})
        self._open: list[tuple[Any, dict[str, Any]]] = []
        self.sources: list[str] = []

    def ask(self) -> dict[str, Any]:
        s = self.exp.suggest()
        x = dict(s.assignments)
        self._open.append((s.id, x))
        self.sources.append(str(s.get("source") or ""))  # how assay computed it (initial design, gp, fallback...)
        return x

    def tell(self, x: dict[str, Any], value: float) -> None:
        i = next((i for i, (_, y) in enumerate(self._open) if y == x), 0)
        sid, _ = self._open.pop(i)
        self.exp.observe(sid, value)

    def close(self) -> None:
        self.conn.close()
        self._tmp.cleanup()


def _assay_version() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip()
    except Exception:
        rev = ""
    import assay

    return f"{getattr(assay, '__version__', _module_version('assay'))}" + (f" @ {rev}" if rev else "")


register(Spec("assay", AssayOptimizer, _importable("assay"), _assay_version,
              description="assay's engine via the embedded API (assay.Connection, SQLite)"))


# ---------------------------------------------------------------- Optuna


class OptunaOptimizer:
    def __init__(self, params: list[Param], seed: int, budget: int, sampler: str) -> None:
        import optuna
        from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        import warnings

        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        s: optuna.samplers.BaseSampler
        if sampler == "tpe":
            s = optuna.samplers.TPESampler(multivariate=True, seed=seed)
        elif sampler == "gp":
            s = optuna.samplers.GPSampler(seed=seed)
        else:
            raise ValueError(sampler)
        self.study = optuna.create_study(direction="minimize", sampler=s)
        self.dists: dict[str, BaseDistribution] = {
            p.name: (CategoricalDistribution(list(p.choices)) if p.kind == "categorical"
                     else IntDistribution(int(p.low), int(p.high), log=p.log) if p.kind == "int"
                     else FloatDistribution(p.low, p.high, log=p.log))
            for p in params}
        self._open: list[tuple[Any, dict[str, Any]]] = []

    def ask(self) -> dict[str, Any]:
        trial = self.study.ask(self.dists)
        x = dict(trial.params)
        self._open.append((trial, x))
        return x

    def tell(self, x: dict[str, Any], value: float) -> None:
        i = next((i for i, (_, y) in enumerate(self._open) if y == x), 0)
        trial, _ = self._open.pop(i)
        self.study.tell(trial, value)

    def close(self) -> None:
        pass


register(Spec("optuna-tpe", lambda p, s, b: OptunaOptimizer(p, s, b, "tpe"), _importable("optuna"),
              lambda: "optuna " + _module_version("optuna"),
              description="Optuna TPESampler(multivariate=True), defaults otherwise"))
register(Spec("optuna-gp", lambda p, s, b: OptunaOptimizer(p, s, b, "gp"), _importable("optuna"),
              lambda: "optuna " + _module_version("optuna"),
              description="Optuna GPSampler, defaults"))


# ---------------------------------------------------------------- HEBO (in-process, or in its own venv)


class HeboOptimizer:
    """HEBO (Huawei's winner of the NeurIPS 2020 BBO challenge) with its default settings."""

    def __init__(self, params: list[Param], seed: int, budget: int) -> None:
        import random

        import torch
        from hebo.design_space.design_space import DesignSpace
        from hebo.optimizers.hebo import HEBO

        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        spec: list[dict[str, Any]] = []
        for p in params:
            if p.kind == "categorical":
                spec.append({"name": p.name, "type": "cat", "categories": list(p.choices)})
            elif p.kind == "int":
                spec.append({"name": p.name, "type": "pow_int" if p.log else "int", "lb": int(p.low),
                             "ub": int(p.high)})
            else:
                spec.append({"name": p.name, "type": "pow" if p.log else "num", "lb": p.low, "ub": p.high})
        self.params = params
        self.opt = HEBO(DesignSpace().parse(spec), scramble_seed=seed)
        self._open: list[tuple[Any, dict[str, Any]]] = []

    def ask(self) -> dict[str, Any]:
        rec = self.opt.suggest(n_suggestions=1)
        row = rec.iloc[0]
        x: dict[str, Any] = {}
        for p in self.params:
            v = row[p.name]
            x[p.name] = str(v) if p.kind == "categorical" else int(v) if p.kind == "int" else float(v)
        self._open.append((rec, x))
        return x

    def tell(self, x: dict[str, Any], value: float) -> None:
        i = next((i for i, (_, y) in enumerate(self._open) if y == x), 0)
        rec, _ = self._open.pop(i)
        self.opt.observe(rec, np.array([[value]], dtype=float))

    def close(self) -> None:
        pass


class WorkerPipe:
    """A Python module run by another interpreter, spoken to in JSON lines (``{"cmd": ...}`` → ``{"result"}``)."""

    def __init__(self, python: Path, module: str, label: str, **env: str) -> None:
        self.label = label
        full = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
                **env}
        self.proc = subprocess.Popen([str(python), "-m", module], cwd=ROOT, env=full, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def call(self, msg: dict[str, Any]) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.label} worker died (exit {self.proc.poll()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.label} worker: {reply['error']}")
        return reply.get("result")

    def close(self, timeout: float = 30) -> None:
        try:
            self.call({"cmd": "close"})
        except Exception:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class SubprocessOptimizer:
    """Any registered optimizer run by another interpreter (``python -m benchmarks.worker``), JSON lines."""

    def __init__(self, python: Path, name: str, params: list[Param], seed: int, budget: int) -> None:
        self.worker = WorkerPipe(python, "benchmarks.worker", name)
        self.worker.call({"cmd": "init", "name": name, "params": to_json(params), "seed": seed, "budget": budget})

    def ask(self) -> dict[str, Any]:
        return self.worker.call({"cmd": "ask"})

    def tell(self, x: dict[str, Any], value: float) -> None:
        self.worker.call({"cmd": "tell", "x": x, "value": value})

    def close(self) -> None:
        self.worker.close()


def _hebo_python() -> Path | None:
    py = HEBO_VENV / "bin" / "python"
    return py if py.exists() else None


def _hebo_in_process() -> bool:
    import importlib.util

    return importlib.util.find_spec("hebo") is not None


def _hebo_factory(params: list[Param], seed: int, budget: int) -> Optimizer:
    if _hebo_in_process():
        return HeboOptimizer(params, seed, budget)
    py = _hebo_python()
    if py is None:
        raise RuntimeError("HEBO is not installed: run `python -m benchmarks setup-hebo`")
    return SubprocessOptimizer(py, "hebo-local", params, seed, budget)


def _hebo_check() -> str | None:
    if _hebo_in_process():
        return None
    py = _hebo_python()
    if py is None:
        return f"hebo is not importable here and {HEBO_VENV} does not exist (run `python -m benchmarks setup-hebo`)"
    r = subprocess.run([str(py), "-c", "import hebo"], capture_output=True, text=True, timeout=300)
    return None if r.returncode == 0 else f"hebo does not import in {HEBO_VENV}: {r.stderr.strip()[-300:]}"


def _hebo_version() -> str:
    if _hebo_in_process():
        return "HEBO " + _module_version("HEBO")
    py = _hebo_python()
    code = ("from importlib.metadata import version as v; "
            "print('HEBO', v('HEBO'), '(own venv: numpy', v('numpy'), 'torch', v('torch') + ')')")
    return subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300).stdout.strip()


register(Spec("hebo", _hebo_factory, _hebo_check, _hebo_version,
              description="HEBO defaults (run in benchmarks/.venv-hebo when it cannot share our numpy)"))
# The worker's in-process variant (never listed by default).
OPTIMIZERS["hebo-local"] = Spec("hebo-local", HeboOptimizer, _importable("hebo"), lambda: "", optional=True)


# ---------------------------------------------------------------- scikit-optimize (optional)


class SkoptOptimizer:
    def __init__(self, params: list[Param], seed: int, budget: int) -> None:
        import skopt
        from skopt.space import Categorical, Integer, Real

        dims = [Categorical(list(p.choices), name=p.name) if p.kind == "categorical"
                else Integer(int(p.low), int(p.high), prior="log-uniform" if p.log else "uniform", name=p.name)
                if p.kind == "int" else Real(p.low, p.high, prior="log-uniform" if p.log else "uniform", name=p.name)
                for p in params]
        self.names = [p.name for p in params]
        self.opt = skopt.Optimizer(dims, base_estimator="GP", random_state=seed)

    def ask(self) -> dict[str, Any]:
        return dict(zip(self.names, self.opt.ask(), strict=True))

    def tell(self, x: dict[str, Any], value: float) -> None:
        self.opt.tell([x[n] for n in self.names], float(value))

    def close(self) -> None:
        pass


register(Spec("skopt", SkoptOptimizer, _importable("skopt"), lambda: "scikit-optimize " + _module_version(
    "scikit-optimize"), optional=True, description="scikit-optimize GP (gp_hedge), defaults"))

DEFAULT = ["assay", "random", "optuna-tpe", "optuna-gp", "hebo", "skopt"]


def setup_hebo(python: str = sys.executable) -> Path:
    """Create ``benchmarks/.venv-hebo`` with HEBO and the old numpy/pandas it pins (numpy<1.25)."""
    constraints = ROOT / "constraints.txt"
    if not (HEBO_VENV / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(HEBO_VENV)], check=True)
    pip = [str(HEBO_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if constraints.exists():
        pip += ["-c", str(constraints)]
    # HEBO 0.3.6 needs numpy<1.25; pinning its companions avoids pip backtracking through old sdists.
    subprocess.run([*pip, "numpy==1.24.4", "scipy==1.11.4", "pandas==2.1.4", "matplotlib==3.8.4",
                    "scikit-learn==1.4.2", "HEBO==0.3.6"], check=True)
    return HEBO_VENV
