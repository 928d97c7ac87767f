"""Bayesmark-style scoring of stored runs.

* incumbent trace: after n evaluations, the true (noiseless) value of the best *observed* point;
* ``R`` = random search's mean final incumbent, ``f*`` = the known optimum (synthetic) or the best
  true value any optimizer ever found on the problem (real);
* normalized score of a run = ``100 * (R - final) / (R - f*)``: random search averages 0, the best known is 100;
* evals-to-reach: first n whose incumbent is at least as good as ``R``; speed-up = budget ÷ the median of it
  (random search needs about the whole budget to reach its own mean by construction);
* robust views, so that one problem with a tiny ``R - f*`` cannot dominate an average: the **clipped**
  score (each run's score clipped to ``[CLIP_LOW, 100]``: a run counts at most as far below random search
  as the best known is above it; Bayesmark similarly floors runs at random search's median), the median
  over problems, and the average rank. A problem is flagged **narrow** when ``R - f*`` is smaller than the
  seed-to-seed standard deviation of random search's final values (its normalization is mostly noise),
  and **saturated** when every model-based optimizer reached ``f*`` on every seed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from benchmarks import problems

__all__ = ["incumbent", "score", "summarize", "CLIP_LOW", "clip"]

#: lower bound of the clipped score (the upper bound is 100, the best known)
CLIP_LOW = -100.0


def clip(x: float) -> float:
    """A run's normalized score clipped to ``[CLIP_LOW, 100]`` (NaN stays NaN)."""
    return x if not math.isfinite(x) else float(min(100.0, max(CLIP_LOW, x)))


def incumbent(run: dict[str, Any]) -> np.ndarray:
    obs = np.asarray(run["observed"], dtype=float)
    true = np.asarray(run["true"], dtype=float)
    idx = np.zeros(len(obs), dtype=int)
    best = 0
    for i in range(len(obs)):
        if obs[i] < obs[best]:
            best = i
        idx[i] = best
    return true[idx]


def _mean_se(xs: list[float]) -> tuple[float, float]:
    a = np.asarray([x for x in xs if math.isfinite(x)], dtype=float)
    if len(a) == 0:
        return float("nan"), float("nan")
    se = float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")
    return float(a.mean()), se


def score(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per problem and optimizer: scores, final values, evals-to-reach, time per suggestion."""
    by_problem: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        by_problem[r["problem"]][r["optimizer"]].append(r)
    out: dict[str, Any] = {}
    for pname, by_opt in sorted(by_problem.items()):
        ok = {o: [r for r in rs if not r.get("error") and r["true"]] for o, rs in by_opt.items()}
        traces = {o: [incumbent(r) for r in rs] for o, rs in ok.items()}
        if not traces.get("random"):
            out[pname] = {"error": "no random-search runs: nothing to normalize against"}
            continue
        budget = min(len(t) for ts in traces.values() for t in ts)
        R = float(np.mean([t[budget - 1] for t in traces["random"]]))
        problem = problems.PROBLEMS.get(pname)
        seen = min(float(np.min(r["true"])) for rs in ok.values() for r in rs)
        fstar = problem.optimum if problem is not None and problem.optimum is not None else seen
        fstar = min(fstar, seen)
        span = R - fstar
        res: dict[str, Any] = {"budget": budget, "random_mean_final": R, "best_known": fstar,
                               "best_known_source": "known optimum" if problem and problem.optimum is not None
                               else "best value seen in this run", "optimizers": {}}
        rand_reach = [next((i + 1 for i in range(budget) if t[i] <= R), math.inf) for t in traces["random"]]
        ref = float(np.median(rand_reach))
        ref = ref if math.isfinite(ref) else float(budget)
        res["random_reach_median"] = ref
        for o, ts in traces.items():
            finals = [float(t[budget - 1]) for t in ts]
            scores = [100.0 * (R - f) / span if span > 1e-12 else float("nan") for f in finals]
            reach = [next((i + 1 for i in range(budget) if t[i] <= R), math.inf) for t in ts]
            med = float(np.median(reach)) if reach else math.inf
            asks = np.concatenate([np.asarray(r["ask_s"]) + np.asarray(r["tell_s"]) for r in ok[o]])
            curve = np.mean([[100.0 * (R - v) / span if span > 1e-12 else float("nan") for v in t[:budget]]
                             for t in ts], axis=0)
            sm, sse = _mean_se(scores)
            cm, cse = _mean_se([clip(x) for x in scores])
            fm, fse = _mean_se(finals)
            res["optimizers"][o] = {
                "seeds": len(ts), "failed": len(by_opt[o]) - len(ok[o]),
                "errors": sorted({str(r.get("error")) for r in by_opt[o] if r.get("error")}),
                "score_mean": sm, "score_se": sse, "clipped_mean": cm, "clipped_se": cse,
                "final_mean": fm, "final_se": fse,
                "reach_median": med, "reached": sum(math.isfinite(x) for x in reach),
                "speedup": ref / med if math.isfinite(med) else 0.0,
                "suggest_s_mean": float(asks.mean()) if len(asks) else float("nan"),
                "suggest_s_p50": float(np.median(asks)) if len(asks) else float("nan"),
                "suggest_s_max": float(asks.max()) if len(asks) else float("nan"),
                "score_curve": [round(float(c), 2) for c in curve],
                "sources": sorted({s for r in ok[o] for s in r.get("sources", [])}),
            }
        rand_sd = float(np.std([t[budget - 1] for t in traces["random"]], ddof=1)) \
            if len(traces["random"]) > 1 else 0.0
        res["random_final_sd"] = rand_sd
        res["narrow"] = bool(span < rand_sd)
        models = [v for o, v in res["optimizers"].items() if o != "random"]
        res["saturated"] = bool(models) and all(v["score_mean"] >= 100.0 - 1e-9 and not (v["score_se"] > 1e-6)
                                                for v in models)
        out[pname] = res
    return out


def summarize(scored: dict[str, Any]) -> dict[str, Any]:
    """Across problems: mean score (± combined SE), average rank, head-to-head vs assay."""
    per_opt: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    ranks: dict[str, list[float]] = defaultdict(list)
    for pname, res in scored.items():
        if "optimizers" not in res:
            continue
        family = problems.PROBLEMS[pname].family if pname in problems.PROBLEMS else "other"
        means = {o: v["score_mean"] for o, v in res["optimizers"].items() if math.isfinite(v["score_mean"])}
        order = sorted(means, key=lambda o: -means[o])
        for i, o in enumerate(order):
            ranks[o].append(i + 1.0)
        for o, v in res["optimizers"].items():
            if not math.isfinite(v["score_mean"]):
                continue
            for group in ("all", family):
                per_opt[o][f"{group}_score"].append(v["score_mean"])
                per_opt[o][f"{group}_se"].append(_z(v["score_se"]))
                per_opt[o][f"{group}_clipped"].append(v["clipped_mean"])
                per_opt[o][f"{group}_clipped_se"].append(_z(v["clipped_se"]))
                per_opt[o][f"{group}_speedup"].append(v["speedup"])
            per_opt[o]["problem"].append(pname)
            per_opt[o]["suggest_s"].append(v["suggest_s_mean"])
    summary: dict[str, Any] = {}
    for o, d in per_opt.items():
        row: dict[str, Any] = {"problems": len(d["all_score"]), "avg_rank": float(np.mean(ranks[o]))}
        for group in ("all", "real", "synthetic"):
            sc = d.get(f"{group}_score", [])
            if sc:
                row[f"{group}_score"] = float(np.mean(sc))
                row[f"{group}_se"] = float(math.sqrt(sum(s * s for s in d[f"{group}_se"])) / len(sc))
                row[f"{group}_clipped"] = float(np.mean(d[f"{group}_clipped"]))
                row[f"{group}_clipped_se"] = float(math.sqrt(sum(s * s for s in d[f"{group}_clipped_se"]))
                                                   / len(sc))
                row[f"{group}_median"] = float(np.median(sc))
                row[f"{group}_speedup_median"] = float(np.median(d[f"{group}_speedup"]))
        row["suggest_s_mean"] = float(np.mean(d["suggest_s"]))
        # the problem that moves the unclipped mean furthest from the clipped one
        gap = [(a - b) / len(d["all_score"]) for a, b in zip(d["all_score"], d["all_clipped"], strict=True)]
        k = int(np.argmax(np.abs(gap)))
        row["dominant"] = {"problem": d["problem"][k], "shift": float(gap[k]), "score": d["all_score"][k],
                           "clipped": d["all_clipped"][k]}
        summary[o] = row
    h2h: dict[str, Any] = {}
    if "assay" in per_opt:
        for peer in per_opt:
            if peer == "assay":
                continue
            wins = losses = ties = 0
            diffs, cdiffs = [], []
            for res in scored.values():
                ops = res.get("optimizers", {})
                if "assay" not in ops or peer not in ops:
                    continue
                a, b = ops["assay"], ops[peer]
                if not (math.isfinite(a["score_mean"]) and math.isfinite(b["score_mean"])):
                    continue
                d = a["score_mean"] - b["score_mean"]
                se = math.sqrt(_z(a["score_se"]) ** 2 + _z(b["score_se"]) ** 2)
                diffs.append(d)
                cdiffs.append(a["clipped_mean"] - b["clipped_mean"])
                if d > 2 * se:
                    wins += 1
                elif d < -2 * se:
                    losses += 1
                else:
                    ties += 1
            h2h[peer] = {"wins": wins, "losses": losses, "ties": ties,
                         "mean_diff": float(np.mean(diffs)) if diffs else float("nan"),
                         "mean_diff_clipped": float(np.mean(cdiffs)) if cdiffs else float("nan")}
    flags = {p: [f for f in ("narrow", "saturated") if res.get(f)] for p, res in scored.items()}
    return {"optimizers": summary, "assay_vs": h2h, "flags": {p: f for p, f in flags.items() if f}}


def _z(x: float) -> float:
    return x if math.isfinite(x) else 0.0
