"""``assay demo``: a real optimization of an SVM on the digits data set, embedded."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assay.client import Connection, Trial

__all__ = ["run_demo"]


def run_demo(evaluations: int = 25, home: Path | None = None, console: Console | None = None) -> dict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import cross_val_score
    from sklearn.svm import SVC

    console = console or Console()
    X, y = load_digits(return_X_y=True)

    def accuracy(C: float, gamma: float, kernel: str) -> float:
        return float(cross_val_score(SVC(C=C, gamma=gamma, kernel=kernel), X, y, cv=3).mean())

    with Connection(home=home) as conn:
        exp = conn.create_experiment(
            name=f"demo: SVM on digits ({time.strftime('%Y-%m-%d %H:%M')})",
            parameters=[
                {"name": "C", "type": "double", "bounds": {"min": 1e-2, "max": 1e3}, "transformation": "log"},
                {"name": "gamma", "type": "double", "bounds": {"min": 1e-5, "max": 1e0}, "transformation": "log"},
                {"name": "kernel", "type": "categorical", "categorical_values": ["rbf", "sigmoid"]},
            ],
            metrics=[{"name": "accuracy", "objective": "maximize"}],
            observation_budget=evaluations,
        )
        best = 0.0
        with Progress(TextColumn("[bold]tuning"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TextColumn("best accuracy {task.fields[best]:.4f}"), TimeElapsedColumn(),
                      console=console) as bar:
            task = bar.add_task("tune", total=evaluations, best=0.0)

            def step(trial: Trial) -> None:
                nonlocal best
                if trial.observation and not trial.observation.failed:
                    best = max(best, trial.observation.value)
                bar.update(task, advance=1, best=best)

            results = exp.optimize(accuracy, progress=step)
        top = results[0]
        table = Table(title=f"Best of {evaluations} evaluations (experiment {exp.id})")
        table.add_column("parameter")
        table.add_column("value")
        for k, v in top.assignments.items():
            table.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
        table.add_row("[bold]accuracy", f"[bold]{top.value:.4f}")
        console.print(table)
        console.print(f"Data stored in {conn.where}")
        console.print(f"See it: `assay server` then open http://127.0.0.1:8080/ (experiment {exp.id}); "
                      f"or GET /v1/experiments/{exp.id}")
        return {"experiment": exp.id, "best": dict(top.assignments), "accuracy": top.value}
