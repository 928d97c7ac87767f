"""Runs Ax for :class:`benchmarks.moo.AxMethod` inside ``benchmarks/.venv-ax`` (JSON lines on stdin/stdout).

Messages: ``init`` (params, objectives, constraints, seed, budget), ``ask``, ``tell`` (x, values),
``close``; replies ``{"result": ...}`` or ``{"error": "..."}``. Ax's ``Client`` with its default
generation strategy (Sobol, then BoTorch: qLogNEHVI for several objectives, constrained qLogNEI
otherwise); objectives are minimized (``-name``), constraints are ``name <= threshold``.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # library chatter must not corrupt the protocol
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from ax import Client, RangeParameterConfig

    client: Any = None
    names: list[str] = []
    open_: dict[str, int] = {}
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            cmd = msg["cmd"]
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
                result: Any = True
            elif cmd == "ask":
                (idx, x), = client.get_next_trials(max_trials=1).items()
                point = {n: float(x[n]) for n in names}
                open_[json.dumps(point, sort_keys=True)] = idx
                result = point
            elif cmd == "tell":
                idx = open_.pop(json.dumps(msg["x"], sort_keys=True))
                client.complete_trial(trial_index=idx, raw_data={k: float(v) for k, v in msg["values"].items()})
                result = True
            elif cmd == "close":
                out.write(json.dumps({"result": True}) + "\n")
                out.flush()
                return
            else:
                raise ValueError(f"unknown command {cmd!r}")
            reply: dict[str, Any] = {"result": result}
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
