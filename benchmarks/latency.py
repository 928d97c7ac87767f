"""Suggestion latency of a served instance: ``POST /suggestions`` with one other suggestion open.

Starts ``assay server`` on a free loopback port (SQLite, auth off), creates a 6-parameter
experiment (doubles, an int, a categorical), loads N random observations through the batch
endpoint, then repeats: report the previous suggestion, keep one suggestion open, and time a
new ``POST /suggestions``. Prints a Markdown table; ``--write`` puts it in docs/benchmarks.md
between ``<!-- latency:begin -->`` and ``<!-- latency:end -->`` (replacing an earlier run).

    python benchmarks/latency.py --sizes 100 1000 --requests 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

PARAMS = [
    {"name": "x1", "type": "double", "bounds": {"min": 0, "max": 1}},
    {"name": "x2", "type": "double", "bounds": {"min": 0, "max": 1}},
    {"name": "x3", "type": "double", "bounds": {"min": 0, "max": 1}},
    {"name": "lr", "type": "double", "bounds": {"min": 1e-4, "max": 1}, "transformation": "log"},
    {"name": "n", "type": "int", "bounds": {"min": 1, "max": 20}},
    {"name": "kind", "type": "categorical", "categorical_values": ["a", "b", "c"]},
]


def _value(a: dict) -> float:
    x = [a["x1"], a["x2"], a["x3"]]
    return (-sum((xi - 0.3) ** 2 for xi in x) - 0.1 * (math.log10(a["lr"]) + 2) ** 2 - 0.01 * abs(a["n"] - 7)
            + {"a": 0.0, "b": 0.1, "c": -0.1}[a["kind"]])


def _random_assignment(rng: random.Random) -> dict:
    return {"x1": rng.random(), "x2": rng.random(), "x3": rng.random(), "lr": 10 ** rng.uniform(-4, 0),
            "n": rng.randint(1, 20), "kind": rng.choice(["a", "b", "c"])}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(client: httpx.Client, n_obs: int, requests: int, seed: int, pid: int
            ) -> tuple[list[float], list[float], Counter]:
    rng = random.Random(seed)
    exp = client.post("/v1/experiments", json={"name": f"latency-{n_obs}", "parameters": PARAMS,
                                               "parallel_bandwidth": 2}).json()
    base = f"/v1/experiments/{exp['id']}"
    for i in range(0, n_obs, 500):
        batch = [_random_assignment(rng) for _ in range(min(500, n_obs - i))]
        r = client.post(f"{base}/observations/batch",
                        json={"observations": [{"assignments": a, "value": _value(a)} for a in batch]})
        r.raise_for_status()
    held = client.post(f"{base}/suggestions").json()  # the one other open suggestion
    times, cpu = [], []
    sources: Counter = Counter()
    c0 = _cpu(pid)
    for i in range(requests):
        t = time.perf_counter()
        r = client.post(f"{base}/suggestions")
        times.append(time.perf_counter() - t)
        r.raise_for_status()
        if i:  # CPU of one observe + suggest cycle (the refit runs between the two requests)
            cpu.append(_cpu(pid) - c0)
        s = r.json()
        sources["stale" if "stale" in str(s.get("source")) else str(s.get("source")).split(":")[0]] += 1
        c0 = _cpu(pid)
        client.post(f"{base}/observations", json={"suggestion": s["id"], "value": _value(s["assignments"])})
    client.post(f"{base}/observations", json={"suggestion": held["id"], "value": _value(held["assignments"])})
    return times, cpu, sources


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true", help="write the section into docs/benchmarks.md")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="assay-latency-"))
    port = _free_port()
    env = {**os.environ, "ASSAY_HOME": str(home), "ASSAY_AUTH": "off"}
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "assay", "server", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    rows = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for _ in range(300):
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            for n in args.sizes:
                t, cpu, src = measure(client, n, args.requests, args.seed, proc.pid)
                rows.append((n, statistics.median(t), _pct(t, 0.9), max(t), statistics.median(cpu), ", ".join(
                    f"{k} x{v}" for k, v in src.most_common())))
                print(f"{n} observations: p50 {rows[-1][1]:.3f}s p90 {rows[-1][2]:.3f}s max {rows[-1][3]:.3f}s "
                      f"server CPU/suggestion {rows[-1][4]:.3f}s sources {rows[-1][5]}", flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "## Suggestion latency (server, one other suggestion open)",
        "",
        f"`python benchmarks/latency.py --sizes {' '.join(map(str, args.sizes))} --requests {args.requests}` — "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()} {os.cpu_count()} cores, "
        f"load average {load:.1f} at the end (shared machine). Each request follows an observation, so the "
        "model is refitted for every suggestion. Target: p50 < 1 s at 100 observations, < 3 s at 1,000. "
        "The CPU column (the server process's CPU time per observe+suggest cycle) is what the wall time "
        "approaches on an idle machine: the refit runs on one thread.",
        "",
        "| observations | p50 (s) | p90 (s) | max (s) | server CPU per suggestion, median (s) | sources |",
        "|---:|---:|---:|---:|---:|---|",
        *[f"| {n} | {p50:.3f} | {p90:.3f} | {mx:.3f} | {c:.3f} | {src} |" for n, p50, p90, mx, c, src in rows],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md", text)


BEGIN, END = "<!-- latency:begin -->", "<!-- latency:end -->"


def write_section(doc: Path, text: str) -> None:
    """Put ``text`` between the latency markers of ``doc`` (replacing an earlier run), else append it."""
    doc.parent.mkdir(exist_ok=True)
    old = doc.read_text() if doc.exists() else ""
    block = f"{BEGIN}\n{text}{END}\n"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + block + old[old.index(END) + len(END):].lstrip("\n")
    else:
        new = (old.rstrip("\n") + "\n\n" if old else "") + block
    doc.write_text(new)

if __name__ == "__main__":
    main()
