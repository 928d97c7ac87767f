"""Runs (problem, optimizer, seed) studies and caches each one as JSON (resumable, incremental).

Cache layout: ``<results>/<tag>/raw/<problem>/<optimizer>.json`` = ``{"<seed>": run}``; a run is
kept when its budget matches, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import functools
import json
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import optimizers, problems
from benchmarks.space import clip

__all__ = ["run_one", "run_all", "load_runs", "raw_path", "run_missing"]


def run_one(problem_name: str, optimizer_name: str, seed: int, budget: int) -> dict[str, Any]:
    """One study: ``budget`` ask → evaluate → tell steps; times the optimizer, not the objective."""
    problem = problems.get(problem_name)
    rng = np.random.default_rng([seed, 1_000_003])  # the problem's noise, the same for every optimizer
    run: dict[str, Any] = {"problem": problem_name, "optimizer": optimizer_name, "seed": seed, "budget": budget,
                           "observed": [], "true": [], "ask_s": [], "tell_s": [], "eval_s": [], "error": None}
    started = time.perf_counter()
    opt = None
    try:
        t0 = time.perf_counter()
        opt = optimizers.make(optimizer_name, problem.params, seed, budget)
        run["setup_s"] = time.perf_counter() - t0
        best_obs, best_x = float("inf"), None
        for _ in range(budget):
            t0 = time.perf_counter()
            raw = opt.ask()
            t1 = time.perf_counter()
            x = clip(problem.params, raw)
            obs, true = problem(x, rng)
            t2 = time.perf_counter()
            opt.tell(raw, obs)
            t3 = time.perf_counter()
            run["observed"].append(obs)
            run["true"].append(true)
            run["ask_s"].append(t1 - t0)
            run["eval_s"].append(t2 - t1)
            run["tell_s"].append(t3 - t2)
            if obs < best_obs:
                best_obs, best_x = obs, x
        run["best_x"] = best_x
        if hasattr(opt, "sources"):
            run["sources"] = opt.sources
    except Exception as exc:
        run["error"] = f"{type(exc).__name__}: {exc}"
        run["traceback"] = traceback.format_exc()[-3000:]
    finally:
        if opt is not None:
            try:
                opt.close()
            except Exception:
                pass
    run["wall_s"] = time.perf_counter() - started
    run["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return run


def raw_path(results: Path, problem: str, optimizer: str) -> Path:
    return results / "raw" / problem / f"{optimizer}.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True))
    os.replace(tmp, path)


def _rounded(run: dict[str, Any]) -> dict[str, Any]:
    """Shrink a run for storage (values to 6 significant digits, times to 0.1 ms)."""
    out = dict(run)
    for k in ("observed", "true"):
        out[k] = [float(f"{v:.6g}") for v in run[k]]
    for k in ("ask_s", "tell_s", "eval_s"):
        out[k] = [round(v, 4) for v in run[k]]
    if "sources" in run:
        out["sources"] = sorted(set(run["sources"]))  # which strategies answered, not one per step
    return out


def run_all(results: Path, problem_names: list[str], optimizer_names: list[str], seeds: list[int],
            budget: int, jobs: int = 1, rerun: Iterable[str] = (),
            log: Callable[[str], None] = print) -> None:
    """Run every missing (problem, optimizer, seed) and store it; ``rerun`` optimizers ignore the cache."""
    rerun = set(rerun)
    todo: list[tuple[str, str, int]] = []
    cache = {(p, o): _read(raw_path(results, p, o)) for p in problem_names for o in optimizer_names}
    for s in seeds:  # seed-major: an interrupted run still has whole seeds for every problem and optimizer
        for p in problem_names:
            for o in optimizer_names:
                r = cache[p, o].get(str(s))
                if o in rerun or r is None or r.get("budget") != budget or r.get("error"):
                    todo.append((p, o, s))
    log(f"{len(todo)} runs to do (budget {budget}); results in {results}")
    if rerun:
        for p in problem_names:
            for o in rerun:
                path = raw_path(results, p, o)
                if path.exists():
                    data = _read(path)
                    _write(path, {k: v for k, v in data.items() if int(k) not in set(seeds)})

    def store(run: dict[str, Any]) -> None:
        path = raw_path(results, run["problem"], run["optimizer"])
        data = _read(path)
        data[str(run["seed"])] = _rounded(run)
        _write(path, data)
        best = min(run["true"]) if run["true"] else float("nan")
        status = f"ERROR {run['error']}" if run["error"] else f"best {best:.6g}"
        ask = np.mean(run["ask_s"]) if run["ask_s"] else float("nan")
        log(f"  {run['problem']:<22} {run['optimizer']:<11} seed {run['seed']:<3} {status}  "
            f"({run['wall_s']:.1f} s, {ask * 1000:.0f} ms/ask)")

    for _, run in _each(run_one, [(p, o, s, budget) for p, o, s in todo], jobs):
        store(run)


def _each(fn: Callable[..., Any], calls: list[tuple[Any, ...]], jobs: int) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """``(args, fn(*args))`` for each of ``calls``: in order in this process (the first error stops it), or as
    they finish in ``jobs`` processes (``fn`` must pickle). In processes an error does not stop the other calls:
    their results are still yielded, then a ``RuntimeError`` names the failed calls."""
    if jobs <= 1:
        for args in calls:
            yield args, fn(*args)
        return
    failed: list[tuple[tuple[Any, ...], BaseException]] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(fn, *args): args for args in calls}
        for f in as_completed(futures):
            try:
                result = f.result()
            except Exception as exc:
                failed.append((futures[f], exc))
                print(f"{' '.join(map(str, futures[f]))}: failed: {exc!r}", flush=True)
                continue
            yield futures[f], result
    if failed:
        names = ", ".join(" ".join(map(str, args)) for args, _ in failed)
        raise RuntimeError(f"{len(failed)} of {len(calls)} studies failed ({names})") from failed[0][1]


def load_runs(results: Path, budget: int | None = None) -> list[dict[str, Any]]:
    """Every stored run (optionally only those of one budget)."""
    out: list[dict[str, Any]] = []
    for path in sorted((results / "raw").glob("*/*.json")):
        for run in _read(path).values():
            if budget is None or run.get("budget") == budget:
                out.append(run)
    return out


def _timed(study: Callable[[str, str, int], tuple[dict[str, Any], str]], pname: str, method: str,
           seed: int) -> tuple[dict[str, Any], str, float]:
    t0 = time.time()
    record, line = study(pname, method, seed)
    return record, line, time.time() - t0


def run_missing(results: dict[str, Any], out: Path, studies: Iterable[tuple[str, str, int]],
                study: Callable[[str, str, int], tuple[dict[str, Any], str]], jobs: int = 1) -> None:
    """Run each ``(problem, method, seed)`` not yet in ``results["runs"][problem][method]``, in the given
    order; ``study`` returns the run's record (its ``seed`` and ``seconds`` are added) and a line to print.
    ``results`` is rewritten to ``out`` after each study, so a stopped run resumes where it stopped.
    With ``jobs`` > 1 the studies run in that many processes (``study`` must pickle: a module-level
    function or a ``functools.partial`` of one); a method's runs are kept in seed order either way. A study that
    raises stops a sequential run; in processes the other studies still run and are stored, then the first error
    is raised (see ``_each``)."""
    todo = []
    for pname, method, seed in studies:
        runs = results["runs"].setdefault(pname, {}).setdefault(method, [])
        if not any(r["seed"] == seed for r in runs):
            todo.append((pname, method, seed))

    def store(pname: str, method: str, seed: int, record: dict[str, Any], line: str, seconds: float) -> None:
        runs = results["runs"][pname][method]
        runs.append({"seed": seed, **record, "seconds": round(seconds, 1)})
        runs.sort(key=lambda r: r["seed"])
        print(f"{pname} {method} seed {seed}: {line} ({seconds:.0f}s, load {os.getloadavg()[0]:.1f})", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results))

    for key, done in _each(functools.partial(_timed, study), todo, jobs):
        store(*key, *done)
