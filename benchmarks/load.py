"""API load on loopback: N concurrent clients doing suggest -> observe against real server processes.

    nice python -m benchmarks.load                      # full grid (several minutes)
    nice python -m benchmarks.load --quick              # one small configuration
    nice python -m benchmarks.load --clients 1,8,32,128 --backends sqlite,postgresql --processes 1,2 \
        --seconds 6 --scaling 100,1000,10000

Every client loops on ONE experiment (the contended case): POST suggestion, POST observation (both
with an Idempotency-Key), and every 4th cycle GET the experiment. The default experiment type,
``random``, is served entirely from precomputed candidates (the supplier keeps a stock of rows that
requests claim), so the optimizer costs nothing on the request path: this is the serving ceiling.
``--experiment-type offline`` puts the real optimizer behind it. The server runs with API tokens on
(one admin token for every client, the per-token rate limit off: ``ASSAY_RATE_LIMIT=0``) unless
``--no-auth``. Clients are aiohttp coroutines in one process (lighter than httpx, so the load
generator takes less of the machine's CPU from the server: it shares the same cores).
Reports cycles/s and p50/p99 per endpoint; then how the cost of a suggestion and of the
non-optimizer endpoints grows with the number of stored observations. PostgreSQL runs in a
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
    def __init__(self, database_url: str, processes: int, home: Path, auth: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ASSAY_HOME": str(home), "ASSAY_DATABASE_URL": database_url,
               "ASSAY_AUTH": "on" if auth else "off", "ASSAY_RATE_LIMIT": "0",
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                              os.environ.get("PYTHONPATH", "")])}
        home.mkdir(parents=True, exist_ok=True)
        self.headers: dict[str, str] = {}
        if auth:
            from assay.access import Access
            from assay.store import Store

            store = Store(database_url)
            store.ensure_schema()
            token = Access(store).bootstrap()
            store.dispose()
            self.headers = {"Authorization": f"Bearer {token}"}
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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (Linux /proc)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def server_pids(server: Server, pg: Postgres | None) -> tuple[list[int], list[int]]:
    """(assay server process and its workers, PostgreSQL processes)."""
    def children(pid: int) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        return [int(x) for x in out]

    assay = [server.proc.pid, *children(server.proc.pid)]
    pgs = []
    if pg is not None:  # this cluster's postmaster and its backends (other clusters may run beside it)
        postmaster = int((pg.dir / "data" / "postmaster.pid").read_text().split()[0])
        pgs = [postmaster, *children(postmaster)]
    return assay, pgs


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] * 1000


async def _client(c: Any, eid: str, stop_at: float, lat: dict[str, list[float]],
                  errors: list[str], acked: list[int]) -> int:
    import aiohttp

    cycles = 0
    while time.perf_counter() < stop_at:
        try:
            t0 = time.perf_counter()
            async with c.post(f"/v1/experiments/{eid}/suggestions", headers={"Idempotency-Key": uuid.uuid4().hex}) as r:
                body = await r.read()
            t1 = time.perf_counter()
            if r.status != 200:
                errors.append(f"suggest {r.status} {body[:120]!r}")
                continue
            s = json.loads(body)
            a = s["assignments"]
            value = -abs(a["layers"] - 4) - a["dropout"] + (0.3 if a["opt"] == "adam" else 0.0)
            async with c.post(f"/v1/experiments/{eid}/observations", json={"suggestion": s["id"], "value": value},
                              headers={"Idempotency-Key": uuid.uuid4().hex}) as r:
                body = await r.read()
            t2 = time.perf_counter()
            if r.status != 200:
                errors.append(f"observe {r.status} {body[:120]!r}")
                continue
            acked[0] += 1
            lat["suggest"].append(t1 - t0)
            lat["observe"].append(t2 - t1)
            cycles += 1
            if cycles % 4 == 0:
                t3 = time.perf_counter()
                async with c.get(f"/v1/experiments/{eid}") as r:
                    await r.read()
                lat["get_experiment"].append(time.perf_counter() - t3)
                if r.status != 200:
                    errors.append(f"get {r.status}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:160])
    return cycles


async def _load(url: str, eid: str, clients: int, seconds: float, headers: dict[str, str] | None = None
                ) -> dict[str, Any]:
    import aiohttp

    lat: dict[str, list[float]] = {"suggest": [], "observe": [], "get_experiment": []}
    errors: list[str] = []
    acked = [0]
    conn = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(base_url=url, connector=conn, headers=headers or {},
                                     timeout=aiohttp.ClientTimeout(total=120)) as c:
        # warm-up: one cycle per client, not measured
        await asyncio.gather(*[_client(c, eid, time.perf_counter() + 0.01, {k: [] for k in lat}, errors, acked)
                               for _ in range(clients)])
        cpu0, start = time.process_time(), time.perf_counter()
        counts = await asyncio.gather(*[_client(c, eid, start + seconds, lat, errors, acked)
                                        for _ in range(clients)])
        elapsed = time.perf_counter() - start
        client_cpu = time.process_time() - cpu0
    out: dict[str, Any] = {"clients": clients, "cycles": sum(counts), "seconds": round(elapsed, 2),
                           "cycles_per_s": round(sum(counts) / elapsed, 1), "errors": len(errors),
                           "error_sample": errors[:3], "acknowledged_observations": acked[0],
                           "load_generator_cpu_share": round(client_cpu / elapsed / (os.cpu_count() or 1), 2)}
    for k, xs in lat.items():
        out[k] = {"p50_ms": round(pct(xs, 0.5), 1), "p99_ms": round(pct(xs, 0.99), 1), "n": len(xs)}
    return out


def _experiment(url: str, headers: dict[str, str] | None = None, **extra: Any) -> str:
    body = {"name": "load", "parameters": PARAMS, "metrics": [{"name": "score", "objective": "maximize"}], **extra}
    r = httpx.post(url + "/v1/experiments", json=body, timeout=60, headers=headers)
    r.raise_for_status()
    return r.json()["id"]


def _check_consistency(url: str, eid: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Counts after the run: every acknowledged observation stored once, no suggestion shared."""
    e = httpx.get(f"{url}/v1/experiments/{eid}", timeout=120, headers=headers).json()["progress"]
    return {"observation_count": e["observation_count"], "open_suggestions": e["open_suggestion_count"]}


def _scaling(url: str, sizes: list[int], experiment_type: str, repeats: int = 3,
             headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Suggestion and read latency as stored observations grow (observations added by batch)."""
    rng = __import__("random").Random(0)
    out = []
    eid = _experiment(url, headers, type=experiment_type)
    have = 0
    with httpx.Client(base_url=url, timeout=600, headers=headers) as c:
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
    p.add_argument("--experiment-type", default="random",
                   help="random (precomputed candidates: the serving ceiling) or offline (the real optimizer)")
    p.add_argument("--scaling-type", default="offline", help="experiment type for the scaling study")
    p.add_argument("--quick", action="store_true", help="sqlite, 1 process, 8 clients, 3 s, no scaling")
    p.add_argument("--no-auth", action="store_true", help="serve without API tokens")
    p.add_argument("--out", default="benchmarks/results/load.json")
    a = p.parse_args(argv)
    if a.quick:
        a.clients, a.backends, a.processes, a.seconds, a.scaling = "8", "sqlite", "1", 3.0, ""
    clients = [int(x) for x in a.clients.split(",")]
    backends = a.backends.split(",")
    processes = [int(x) for x in a.processes.split(",")]
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "loadavg_at_start": os.getloadavg(), "experiment_type": a.experiment_type, "auth": not a.no_auth}
    print(json.dumps(meta), flush=True)
    results: dict[str, Any] = {"meta": meta, "load": [], "scaling": []}
    pg = Postgres().start() if "postgresql" in backends else None
    tmp = Path(tempfile.mkdtemp(prefix="assay-bench-"))
    try:
        for backend in backends:
            for procs in processes:
                url_db = pg.new_database() if backend == "postgresql" and pg else f"sqlite:///{tmp / f'{procs}.db'}"
                server = Server(url_db, procs, tmp / f"home-{backend}-{procs}", auth=not a.no_auth)
                try:
                    for n in clients:  # a fresh experiment per client count
                        eid = _experiment(server.url, server.headers, type=a.experiment_type)
                        assay_pids, pg_pids = server_pids(server, pg)
                        cpu0 = cpu_seconds(assay_pids), cpu_seconds(pg_pids)
                        row = asyncio.run(_load(server.url, eid, n, a.seconds, server.headers))
                        cpu1 = cpu_seconds(assay_pids), cpu_seconds(pg_pids)
                        # (includes the warm-up cycle per client: a slight overestimate)
                        k = max(1, row["cycles"])
                        row.update(server_cpu_ms_per_cycle=round((cpu1[0] - cpu0[0]) * 1000 / k, 2),
                                   postgres_cpu_ms_per_cycle=round((cpu1[1] - cpu0[1]) * 1000 / k, 2))
                        row.update(backend=backend, processes=procs, loadavg=os.getloadavg()[0],
                                   **_check_consistency(server.url, eid, server.headers))
                        results["load"].append(row)
                        print(json.dumps(row), flush=True)
                finally:
                    server.stop()
        if a.scaling:
            for backend in backends:
                url_db = pg.new_database() if backend == "postgresql" and pg else f"sqlite:///{tmp / 'scaling.db'}"
                server = Server(url_db, 1, tmp / f"home-scaling-{backend}", auth=not a.no_auth)
                try:
                    for row in _scaling(server.url, [int(x) for x in a.scaling.split(",")], a.scaling_type,
                                        headers=server.headers):
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
