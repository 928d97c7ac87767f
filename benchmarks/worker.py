"""Runs one optimizer for :class:`benchmarks.optimizers.SubprocessOptimizer` (JSON lines on stdin/stdout).

Messages: ``init`` (name, params, seed, budget), ``ask``, ``tell`` (x, value), ``close``. Every
reply is ``{"result": ...}`` or ``{"error": "..."}``. Used for HEBO, whose numpy pin cannot live
in assay's environment.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # library chatter must not corrupt the protocol
    from benchmarks.optimizers import make
    from benchmarks.space import from_json

    opt: Any = None
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            cmd = msg["cmd"]
            if cmd == "init":
                opt = make(msg["name"], from_json(msg["params"]), int(msg["seed"]), int(msg["budget"]))
                result: Any = True
            elif cmd == "ask":
                result = opt.ask()
            elif cmd == "tell":
                opt.tell(msg["x"], float(msg["value"]))
                result = True
            elif cmd == "close":
                if opt is not None:
                    opt.close()
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
