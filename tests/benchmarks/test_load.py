"""The load benchmark's client against a real server: closed loop, paced (open loop), and the summary."""

from __future__ import annotations

import asyncio

from benchmarks import load
from tests.conftest import ServerProcess


def test_paced_clients_offer_the_asked_rate_and_closed_loop_runs_faster(server: ServerProcess) -> None:
    eid = load._experiment(server.url, type="random")
    paced = asyncio.run(load._load(server.url, eid, 4, 2.0, rate=20.0))
    # 4 clients, one cycle each every 0.2 s, starts spread 50 ms apart: 40 planned starts in 2 s
    assert 36 <= paced["cycles"] <= 40, paced
    assert paced["errors"] == 0 and paced["rate"] == 20.0
    closed = asyncio.run(load._load(server.url, eid, 4, 2.0))
    assert closed["cycles"] > paced["cycles"], (closed, paced)
    stored = load._check_consistency(server.url, eid)
    # every acknowledged observation (warm-up cycles included) is stored once
    assert stored["observation_count"] == paced["acknowledged_observations"] + closed["acknowledged_observations"]


def test_a_rate_beyond_the_server_charges_the_backlog_to_the_suggestion(server: ServerProcess) -> None:
    eid = load._experiment(server.url, type="random")
    row = asyncio.run(load._load(server.url, eid, 2, 1.5, rate=10_000.0))
    # the clients fall ever further behind their plan: latency counts from each cycle's planned start,
    # so the suggestion's median is a large share of the run, while the observation stays fast
    assert row["suggest"]["p50_ms"] > 300, row
    assert row["observe"]["p50_ms"] < row["suggest"]["p50_ms"] / 3, row
    text = load.summary({"meta": {"date": "d", "cpus": 2, "loadavg_at_start": [0.0], "loadavg_at_end": [0.0]},
                         "load": [{**row, "backend": "sqlite", "processes": 1, "loadavg": 0.0,
                                   "observation_count": row["acknowledged_observations"]}]})
    assert " 10000 " in text and text.splitlines()[2].split()[-1] == "yes", text
