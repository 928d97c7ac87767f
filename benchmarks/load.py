"""API load on loopback: N concurrent clients doing suggest -> observe against real server processes.

    nice python -m benchmarks.load                      # full grid (several minutes)
    nice python -m benchmarks.load --quick              # one small configuration
    nice python -m benchmarks.load --clients 1,8,32,128 --backends sqlite,postgresql --processes 1,2 \
        --seconds 6 --scaling 100,1000,10000

Every client loops on ONE experiment (the contended case: all writes take that experiment's lock):
POST suggestion, POST observation (both with an Idempotency-Key), and every 4th cycle GET the
experiment. Reports cycles/s and p50/p99 per endpoint; then how the cost of a suggestion and of
the non-optimizer endpoints grows with the number of stored observations. PostgreSQL runs in a
throwaway cluster (initdb in a temp dir, default durability settings: fsync on).
Only 127.0.0.1 is used; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

PARAMS = [
    {"name": "lr", "type": "double", "bounds": {"min": 1e-5, "max": 1e-1}, "transformation": "log"},
    {"name": "layers", "type": "int", "bounds": {"min": 1, "max": 8}},
    {"name": "dropout", "type": "double", "bounds": {"min": 0.0, "max": 0.5}},
    {"name": "opt", "type": "categorical", "categorical_values": ["adam", "sgd", "rmsprop"]},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A throwaway cluster (as the ``postgres`` user when run as root)."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not bins:
            raise SystemExit("no PostgreSQL binaries: install postgresql or drop it from --backends")
        self.bin = bins[-1].parent
        self.dir = Path(tempfile.mkdtemp(prefix="assay-bench-pg-"))
        self.user = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.user = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self.n = 0

    def start(self) -> Postgres:
        data = str(self.dir / "data")
        subprocess.run([*self.user, str(self.bin / "initdb"), "-D", data, "-U", "postgres", "--auth=trust"],
                       check=True, capture_output=True)
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=300"
        subprocess.run([*self.user, str(self.bin / "pg_ctl"), "-D", data, "-l", str(self.dir / "log"), "-w",
                        "-o", opts, "start"], check=True, capture_output=True)
        return self

    def new_database(self) -> str:
        import psycopg

        self.n += 1
        name = f"bench{self.n}"
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run([*self.user, str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w",
                        "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    def __init__(self, database_url: str, processes: int, home: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ASSAY_HOME": str(home), "ASSAY_DATABASE_URL": database_url, "ASSAY_AUTH": "off",
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                              os.environ.get("PYTHONPATH", "")])}
        home.mkdir(parents=True, exist_ok=True)
        self.log = open(home / "server.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "assay", "server", "--port", str(self.port),
                                      "--workers", str(processes)], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited; see {home / 'server.log'}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the server's own process group (its workers)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] * 1000


async def _client(c: httpx.AsyncClient, eid: str, stop_at: float, lat: dict[str, list[float]],
                  errors: list[str], acked: list[int]) -> int:
    cycles = 0
    while time.perf_counter() < stop_at:
        try:
            t0 = time.perf_counter()
            r = await c.post(f"/v1/experiments/{eid}/suggestions", headers={"Idempotency-Key": uuid.uuid4().hex})
            t1 = time.perf_counter()
            if r.status_code != 200:
                errors.append(f"suggest {r.status_code} {r.text[:120]}")
                continue
            s = r.json()
            a = s["assignments"]
            value = -abs(a["layers"] - 4) - a["dropout"] + (0.3 if a["opt"] == "adam" else 0.0)
            r = await c.post(f"/v1/experiments/{eid}/observations", json={"suggestion": s["id"], "value": value},
                             headers={"Idempotency-Key": uuid.uuid4().hex})
            t2 = time.perf_counter()
            if r.status_code != 200:
                errors.append(f"observe {r.status_code} {r.text[:120]}")
                continue
            acked[0] += 1
            lat["suggest"].append(t1 - t0)
            lat["observe"].append(t2 - t1)
            cycles += 1
            if cycles % 4 == 0:
                t3 = time.perf_counter()
                r = await c.get(f"/v1/experiments/{eid}")
                lat["get_experiment"].append(time.perf_counter() - t3)
                if r.status_code != 200:
                    errors.append(f"get {r.status_code}")
        except httpx.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:160])
    return cycles


async def _load(url: str, eid: str, clients: int, seconds: float) -> dict[str, Any]:
    lat: dict[str, list[float]] = {"suggest": [], "observe": [], "get_experiment": []}
    errors: list[str] = []
    acked = [0]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        # warm-up: one cycle per client, not measured
        await asyncio.gather(*[_client(c, eid, time.perf_counter() + 0.01, {k: [] for k in lat}, errors, acked)
                               for _ in range(clients)])
        start = time.perf_counter()
        counts = await asyncio.gather(*[_client(c, eid, start + seconds, lat, errors, acked)
                                        for _ in range(clients)])
        elapsed = time.perf_counter() - start
    out: dict[str, Any] = {"clients": clients, "cycles": sum(counts), "seconds": round(elapsed, 2),
                           "cycles_per_s": round(sum(counts) / elapsed, 1), "errors": len(errors),
                           "error_sample": errors[:3], "acknowledged_observations": acked[0]}
    for k, xs in lat.items():
        out[k] = {"p50_ms": round(pct(xs, 0.5), 1), "p99_ms": round(pct(xs, 0.99), 1), "n": len(xs)}
    return out


def _experiment(url: str, **extra: Any) -> str:
    body = {"name": "load", "parameters": PARAMS, "metrics": [{"name": "score", "objective": "maximize"}], **extra}
    r = httpx.post(url + "/v1/experiments", json=body, timeout=60)
    r.raise_for_status()
    return r.json()["id"]


def _check_consistency(url: str, eid: str) -> dict[str, Any]:
    """Counts after the run: every acknowledged observation stored once, no suggestion shared."""
    e = httpx.get(f"{url}/v1/experiments/{eid}", timeout=120).json()["progress"]
    return {"observation_count": e["observation_count"], "open_suggestions": e["open_suggestion_count"]}


def _scaling(url: str, sizes: list[int], experiment_type: str, repeats: int = 3) -> list[dict[str, Any]]:
    """Suggestion and read latency as stored observations grow (observations added by batch)."""
    rng = __import__("random").Random(0)
    out = []
    eid = _experiment(url, type=experiment_type)
    have = 0
    with httpx.Client(base_url=url, timeout=600) as c:
        for n in sizes:
            while have < n:
                k = min(1000, n - have)
                batch = [{"assignments": {"lr": 10 ** rng.uniform(-5, -1), "layers": rng.randint(1, 8),
                                          "dropout": rng.uniform(0, 0.5), "opt": rng.choice(["adam", "sgd"])},
                          "values": [{"value": rng.gauss(0, 1)}]} for _ in range(k)]
                c.post(f"/v1/experiments/{eid}/observations/batch", json={"observations": batch}).raise_for_status()
                have += k
            row: dict[str, Any] = {"observations": n, "experiment_type": experiment_type}
            for name, call in [
                ("suggest", lambda: c.post(f"/v1/experiments/{eid}/suggestions")),
                ("get_experiment", lambda: c.get(f"/v1/experiments/{eid}")),
                ("list_observations_100", lambda: c.get(f"/v1/experiments/{eid}/observations", params={"limit": 100})),
                ("best_assignments", lambda: c.get(f"/v1/experiments/{eid}/best_assignments")),
            ]:
                times = []
                for _ in range(repeats):
                    t = time.perf_counter()
                    r = call()
                    times.append(time.perf_counter() - t)
                    r.raise_for_status()
                row[name + "_ms"] = round(statistics.median(times) * 1000, 1)
            c.delete(f"/v1/experiments/{eid}/suggestions", params={"state": "open"})
            out.append(row)
            print(json.dumps(row), flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", default="1,8,32,128")
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--processes", default="1,2")
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--scaling", default="100,1000,10000", help="observation counts ('' to skip)")
    p.add_argument("--experiment-type", default="offline",
                   help="offline (the real optimizer) or random (no optimizer cost: the API/DB ceiling)")
    p.add_argument("--scaling-type", default="offline", help="experiment type for the scaling study")
    p.add_argument("--quick", action="store_true", help="sqlite, 1 process, 8 clients, 3 s, no scaling")
    p.add_argument("--out", default="benchmarks/results/load.json")
    a = p.parse_args(argv)
    if a.quick:
        a.clients, a.backends, a.processes, a.seconds, a.scaling = "8", "sqlite", "1", 3.0, ""
    clients = [int(x) for x in a.clients.split(",")]
    backends = a.backends.split(",")
    processes = [int(x) for x in a.processes.split(",")]
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "loadavg_at_start": os.getloadavg(), "experiment_type": a.experiment_type}
    print(json.dumps(meta), flush=True)
    results: dict[str, Any] = {"meta": meta, "load": [], "scaling": []}
    pg = Postgres().start() if "postgresql" in backends else None
    tmp = Path(tempfile.mkdtemp(prefix="assay-bench-"))
    try:
        for backend in backends:
            for procs in processes:
                url_db = pg.new_database() if backend == "postgresql" and pg else f"sqlite:///{tmp / f'{procs}.db'}"
                server = Server(url_db, procs, tmp / f"home-{backend}-{procs}")
                try:
                    for n in clients:  # a fresh experiment per client count
                        eid = _experiment(server.url, type=a.experiment_type)
                        row = asyncio.run(_load(server.url, eid, n, a.seconds))
                        row.update(backend=backend, processes=procs, **_check_consistency(server.url, eid))
                        results["load"].append(row)
                        print(json.dumps(row), flush=True)
                finally:
                    server.stop()
        if a.scaling:
            for backend in backends:
                url_db = pg.new_database() if backend == "postgresql" and pg else f"sqlite:///{tmp / 'scaling.db'}"
                server = Server(url_db, 1, tmp / f"home-scaling-{backend}")
                try:
                    for row in _scaling(server.url, [int(x) for x in a.scaling.split(",")], a.scaling_type):
                        results["scaling"].append({"backend": backend, **row})
                finally:
                    server.stop()
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
