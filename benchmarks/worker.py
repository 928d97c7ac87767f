"""JSON-lines workers: peers whose pins cannot live in assay's environment run behind a pipe.

:func:`serve` is the protocol (one JSON command per line on stdin, one ``{"result": ...}`` or
``{"error": "..."}`` reply per line on stdout, ``close`` ends it); :class:`benchmarks.optimizers.WorkerPipe`
is the client side. ``python -m benchmarks.worker`` serves one :func:`benchmarks.optimizers.make`
optimizer (HEBO, whose numpy pin needs its own venv): ``init`` (name, params, seed, budget), ``ask``,
``tell`` (x, value), ``close``.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

Handler = Callable[[str, dict[str, Any]], Any]


def serve(make_handler: Callable[[], Handler]) -> None:
    """Answer commands until ``close`` or end of input.

    ``make_handler`` runs after stdout is redirected to stderr, so import-time chatter of the peer
    library cannot corrupt the protocol; the handler gets ``(cmd, message)`` and returns the result.
    """
    out = sys.stdout
    sys.stdout = sys.stderr
    handle = make_handler()
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg.get("cmd", "")
        try:
            reply: dict[str, Any] = {"result": handle(cmd, msg)}
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
        if cmd == "close":
            return


def _optimizer_handler() -> Handler:
    from benchmarks.optimizers import make
    from benchmarks.space import from_json

    opt: Any = None

    def handle(cmd: str, msg: dict[str, Any]) -> Any:
        nonlocal opt
        if cmd == "init":
            opt = make(msg["name"], from_json(msg["params"]), int(msg["seed"]), int(msg["budget"]))
        elif cmd == "ask":
            return opt.ask()
        elif cmd == "tell":
            opt.tell(msg["x"], float(msg["value"]))
        elif cmd == "close":
            if opt is not None:
                opt.close()
        else:
            raise ValueError(f"unknown command {cmd!r}")
        return True

    return handle


def main() -> None:
    serve(_optimizer_handler)


if __name__ == "__main__":
    main()
