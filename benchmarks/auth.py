"""Per-request cost of authentication, and of a database-shared rate-limit counter (the design not taken).

Measures, interleaved round by round so machine load hits every variant alike:

* ``lookup``: ``Access.authenticate`` (one indexed SELECT joining token, team, membership, organization);
* ``orm lookup``: the same token fetched through an ORM session (how it was done before);
* ``db counter``: one fixed-window counter upsert + read in a write transaction (what a rate limit
  shared through the database would add to *every* request, reads included);
* ``GET auth on/off``: a whole ``GET /v1/experiments/{id}`` through the app (in-process ASGI, no sockets)
  with and without tokens; the difference is everything auth adds (lookup, rate limiter, share check).

    python -m benchmarks.auth --rounds 200 [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select, text


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()

    from assay.access import Access
    from assay.config import Settings
    from assay.server.app import create_app
    from assay.store import Store
    from assay.store.models import ApiTokenRow
    from tests.conftest import simple_experiment

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    home = Path(tempfile.mkdtemp(prefix="assay-auth-bench-"))
    url = args.database_url or f"sqlite:///{home / 'auth.db'}"
    store = Store(url)
    store.ensure_schema()
    acc = Access(store)
    secret = acc.bootstrap() or acc.operator_create_token(1, role="admin")["token"]
    with store.write() as s:
        s.execute(text("DROP TABLE IF EXISTS bench_rate"))
        s.execute(text("CREATE TABLE bench_rate (token_id INTEGER, win BIGINT, n INTEGER, "
                       "PRIMARY KEY (token_id, win))"))
    from assay.access import hash_token

    digest = hash_token(secret)

    def orm_lookup() -> None:
        with store.read() as s:
            s.execute(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest)).scalar_one()

    def db_counter() -> None:
        with store.write() as s:
            w = int(time.time())
            s.execute(text("INSERT INTO bench_rate VALUES (1, :w, 1) ON CONFLICT (token_id, win) "
                           "DO UPDATE SET n = bench_rate.n + 1"), {"w": w})
            s.execute(text("SELECT n FROM bench_rate WHERE token_id = 1 AND win = :w"), {"w": w}).scalar()

    on = create_app(Settings(home=home / "on", database_url=url, auth=True, precompute=False, rate_limit=0))
    off = create_app(Settings(home=home / "off", database_url=url, auth=False, precompute=False))
    with TestClient(on, base_url="http://b") as c_on, TestClient(off, base_url="http://b") as c_off:
        h = {"Authorization": f"Bearer {secret}"}
        eid = c_on.post("/v1/experiments", json=simple_experiment(), headers=h).json()["id"]
        variants: dict[str, Callable[[], object]] = {
            "lookup (authenticate)": lambda: acc.authenticate(secret),
            "orm lookup (before)": orm_lookup,
            "db counter (not taken)": db_counter,
            "GET experiment, auth on": lambda: c_on.get(f"/v1/experiments/{eid}", headers=h),
            "GET experiment, auth off": lambda: c_off.get(f"/v1/experiments/{eid}"),
        }
        samples: dict[str, list[float]] = {k: [] for k in variants}
        for f in variants.values():  # warm-up
            for _ in range(5):
                f()
        load = os.getloadavg()[0]
        for _ in range(args.rounds):
            for name, f in variants.items():
                t = time.perf_counter()
                f()
                samples[name].append(time.perf_counter() - t)
        load_end = os.getloadavg()[0]
    store.dispose()

    print(f"database: {url.split(':')[0]}; rounds: {args.rounds}; machine: {platform.machine()} "
          f"{os.cpu_count()} CPUs; load average {load:.1f} -> {load_end:.1f}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| variant | median µs | p90 µs |")
    print("| --- | ---: | ---: |")
    for name, xs in samples.items():
        p90 = sorted(xs)[int(0.9 * len(xs))] * 1e6
        print(f"| {name} | {_median_us(xs):.0f} | {p90:.0f} |")
    diff = _median_us(samples["GET experiment, auth on"]) - _median_us(samples["GET experiment, auth off"])
    print(f"\nauth adds {diff:.0f} µs to a GET (median difference)")


if __name__ == "__main__":
    main()
