"""``python -m benchmarks [run|report|list|setup-hebo] ...`` (``run`` is the default)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import optimizers, problems, report, runner, scoring

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FULL_BUDGET, FULL_SEEDS = 50, 10
QUICK_BUDGET, QUICK_SEEDS = 10, 2


def _problem_names(spec: str) -> list[str]:
    groups = {"all": list(problems.PROBLEMS), "quick": problems.QUICK,
              "real": [p.name for p in problems.REAL], "synthetic": [p.name for p in problems.SYNTHETIC]}
    out: list[str] = []
    for part in spec.split(","):
        for name in groups.get(part.strip(), [part.strip()]):
            problems.get(name)
            if name not in out:
                out.append(name)
    return out


def _seeds(spec: str) -> list[int]:
    """``10`` → seeds 0..9; ``3,5,8`` → those seeds."""
    return [int(s) for s in spec.split(",")] if "," in spec else list(range(int(spec)))


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = ap.add_subparsers(dest="cmd")
    run = sub.add_parser("run", help="run missing studies, then write the report (default command)")
    for p in (ap, run):
        p.add_argument("--problems", default=None, help="names or groups all|quick|real|synthetic, comma-separated")
        p.add_argument("--optimizers", default=None, help=f"comma-separated, default {','.join(optimizers.DEFAULT)}")
        p.add_argument("--seeds", default=None, help=f"count (0..n-1) or a comma list; default {FULL_SEEDS}")
        p.add_argument("--budget", type=int, default=None, help=f"evaluations per study; default {FULL_BUDGET}")
        p.add_argument("--quick", action="store_true", help=f"smoke run: quick problems, {QUICK_SEEDS} seeds, "
                       f"budget {QUICK_BUDGET}, tag 'quick', report inside the results folder")
        p.add_argument("--tag", default=None, help="results sub-folder (cache); default full or quick")
        p.add_argument("--results-dir", type=Path, default=HERE / "results")
        p.add_argument("--out", type=Path, default=None, help="markdown report (default docs/benchmarks.md)")
        p.add_argument("--jobs", type=int, default=1, help="parallel studies (default 1: the machine is shared)")
        p.add_argument("--rerun", default="", help="optimizers whose cached runs are recomputed (e.g. assay)")
        p.add_argument("--allow-missing", action="store_true",
                       help="skip peers that are not installed (tests); a real run refuses to")
        p.add_argument("--note", default="", help="a sentence put at the top of the report")
    rep = sub.add_parser("report", help="re-render the report from a results folder")
    rep.add_argument("--tag", default="full")
    rep.add_argument("--results-dir", type=Path, default=HERE / "results")
    rep.add_argument("--out", type=Path, default=None)
    rep.add_argument("--note", default=None, help="replace the sentence at the top of the report")
    rep.add_argument("--optimizers", default=None,
                     help="report these (comma-separated; random is always added) instead of the run's")
    rep.add_argument("--seeds", default=None, help="report only these seeds (count or comma list)")
    rep.add_argument("--summary", default="summary.json", help="file name of the JSON summary in the results folder")
    sub.add_parser("list", help="list problems and optimizers with availability")
    sub.add_parser("setup-hebo", help="create benchmarks/.venv-hebo with HEBO and its old numpy")
    return ap


def _finish(results: Path, meta: dict[str, Any], out: Path, summary_name: str = "summary.json") -> dict[str, Any]:
    runs = [r for r in runner.load_runs(results, meta["budget"])
            if r["problem"] in meta["problems"] and r["optimizer"] in meta["optimizers"]
            and r["seed"] in meta["seeds"] and not r.get("error")]
    # Compare like with like: per problem, only seeds that every optimizer completed.
    done: dict[tuple[str, int], set[str]] = {}
    for r in runs:
        done.setdefault((r["problem"], r["seed"]), set()).add(r["optimizer"])
    complete = {k for k, v in done.items() if v >= set(meta["optimizers"])}
    expected = len(meta["problems"]) * len(meta["seeds"])
    meta = {**meta, "complete_studies": len(complete), "expected_studies": expected,
            "seeds_done": {p: sorted(s for (q, s) in complete if q == p) for p in meta["problems"]}}
    runs = [r for r in runs if (r["problem"], r["seed"]) in complete]
    scored = scoring.score(runs)
    summary = scoring.summarize(scored)
    (results / summary_name).write_text(json.dumps({"meta": meta, "summary": summary, "problems": scored},
                                                     indent=1, default=str))
    out.parent.mkdir(parents=True, exist_ok=True)
    text = report.render(meta, scored, summary)
    old = out.read_text() if out.exists() else ""
    keep = old.find("\n## Multitask") + 1 or (0 if old.startswith("## Multitask") else -1)
    if keep >= 0:  # hand-written sections from '## Multitask' on: keep them
        text += "\n" + old[keep:]
    out.write_text(text)
    print(f"wrote {out} and {results / summary_name}")
    return summary


def cmd_run(a: argparse.Namespace) -> int:
    tag = a.tag or ("quick" if a.quick else "full")
    results = a.results_dir / tag
    budget = a.budget or (QUICK_BUDGET if a.quick else FULL_BUDGET)
    seeds = _seeds(a.seeds or str(QUICK_SEEDS if a.quick else FULL_SEEDS))
    pnames = _problem_names(a.problems or ("quick" if a.quick else "all"))
    wanted = [o.strip() for o in (a.optimizers or ",".join(optimizers.DEFAULT)).split(",") if o.strip()]
    for o in wanted:
        if o not in optimizers.OPTIMIZERS:
            raise SystemExit(f"unknown optimizer {o!r}; known: {', '.join(optimizers.OPTIMIZERS)}")
    if "random" not in wanted:
        wanted.insert(0, "random")  # the score is normalized against it
    skipped: dict[str, str] = {}
    onames: list[str] = []
    for o in wanted:
        why = optimizers.unavailable(o)
        if why is None:
            onames.append(o)
        elif a.allow_missing or optimizers.OPTIMIZERS[o].optional:
            skipped[o] = why
            print(f"skipping {o}: {why}")
        else:
            raise SystemExit(f"{o} cannot run: {why}\n(install the bench extra and `python -m benchmarks "
                             "setup-hebo`, or pass --allow-missing to leave it out)")
    out = a.out or ((results / "report.md") if a.quick else ROOT / "docs" / "benchmarks.md")
    results.mkdir(parents=True, exist_ok=True)
    started = time.time()
    meta: dict[str, Any] = {
        "command": "python -m benchmarks " + shlex.join(a.argv),
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "budget": budget, "seeds": seeds,
        "problems": pnames, "optimizers": onames, "skipped": skipped, "jobs": a.jobs, "tag": tag,
        "machine": report.machine(), "optimizer_versions": {o: optimizers.version(o) for o in onames},
        "note": a.note,
    }
    (results / "meta.json").write_text(json.dumps(meta, indent=1))  # `report` works on a partial run too
    runner.run_all(results, pnames, onames, seeds, budget, jobs=a.jobs,
                   rerun=[o for o in a.rerun.split(",") if o])
    meta["wall_minutes"] = (time.time() - started) / 60
    (results / "meta.json").write_text(json.dumps(meta, indent=1))
    _finish(results, meta, out)
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    results = a.results_dir / a.tag
    meta = json.loads((results / "meta.json").read_text())
    if a.note is not None:
        meta["note"] = a.note
    if a.optimizers:  # e.g. a peer run later, compared on the seeds it finished
        meta["optimizers"] = ["random", *(o for o in a.optimizers.split(",") if o and o != "random")]
        meta["optimizer_versions"] = {o: meta.get("optimizer_versions", {}).get(o) or optimizers.version(o)
                                      for o in meta["optimizers"]}
        meta["skipped"] = {k: v for k, v in meta.get("skipped", {}).items() if k not in meta["optimizers"]}
    if a.seeds:
        meta["seeds"] = _seeds(a.seeds)
    if a.optimizers or a.seeds:
        meta["command"] = f"{meta['command']}, then python -m benchmarks {shlex.join(a.argv)}"
    out = a.out or ((results / "report.md") if meta["tag"] == "quick" else ROOT / "docs" / "benchmarks.md")
    _finish(results, meta, out, a.summary)
    return 0


def cmd_list(a: argparse.Namespace) -> int:
    for p in problems.PROBLEMS.values():
        print(f"problem    {p.name:<22} {p.family:<9} {len(p.params)} params  {p.description}")
    for o in optimizers.DEFAULT:
        why = optimizers.unavailable(o)
        print(f"optimizer  {o:<22} {'ok' if why is None else 'unavailable: ' + why}")
    return 0


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    a.argv = list(sys.argv[1:] if argv is None else argv)
    if a.cmd == "report":
        return cmd_report(a)
    if a.cmd == "list":
        return cmd_list(a)
    if a.cmd == "setup-hebo":
        print(f"created {optimizers.setup_hebo()}")
        return 0
    return cmd_run(a)


if __name__ == "__main__":
    sys.exit(main())
