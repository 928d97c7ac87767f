"""Runs Ax for :class:`benchmarks.moo.AxMethod` inside ``benchmarks/.venv-ax`` (:func:`benchmarks.worker.serve`).

Commands: ``init`` (params, objectives, constraints, seed, budget), ``ask``, ``tell`` (x, values),
``close``. Ax's ``Client`` with its default generation strategy (Sobol, then BoTorch: qLogNEHVI for
several objectives, constrained qLogNEI otherwise); objectives are minimized (``-name``), constraints
are ``name <= threshold``.
"""

from __future__ import annotations

import json
from typing import Any

from benchmarks.worker import Handler, serve


def _ax_handler() -> Handler:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from ax import Client, RangeParameterConfig

    client: Any = None
    names: list[str] = []
    open_: dict[str, int] = {}

    def handle(cmd: str, msg: dict[str, Any]) -> Any:
        nonlocal client, names
        if cmd == "init":
            client = Client(random_seed=int(msg["seed"]))
            params = msg["params"]
            names = [p["name"] for p in params]
            client.configure_experiment(parameters=[
                RangeParameterConfig(name=p["name"], parameter_type="float", bounds=(p["low"], p["high"]))
                for p in params], name="bench")
            client.configure_optimization(
                objective=", ".join(f"-{o}" for o in msg["objectives"]),
                outcome_constraints=[f"{c} <= {t}" for c, t in msg["constraints"]] or None)
        elif cmd == "ask":
            (idx, x), = client.get_next_trials(max_trials=1).items()
            point = {n: float(x[n]) for n in names}
            open_[json.dumps(point, sort_keys=True)] = idx
            return point
        elif cmd == "tell":
            idx = open_.pop(json.dumps(msg["x"], sort_keys=True))
            client.complete_trial(trial_index=idx, raw_data={k: float(v) for k, v in msg["values"].items()})
        elif cmd != "close":
            raise ValueError(f"unknown command {cmd!r}")
        return True

    return handle


def main() -> None:
    serve(_ax_handler)


if __name__ == "__main__":
    main()
