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
Reports cycles/s and p50/p99 per endpoint, and the CPU milliseconds per cycle of the server
processes, PostgreSQL and the load generator (read from /proc: nearly independent of how busy the
machine is, unlike throughput and latency) with the throughput that cost allows on all cores; then
how the cost of a suggestion and of the non-optimizer endpoints grows with the number of stored
observations. ``--think-ms`` makes each client wait between its suggestion and its observation (a
worker evaluating the objective), to see latency at an offered load below saturation: with no think
time N closed-loop clients queue, and latency is about N / throughput by Little's law. ``--rate R``
paces the clients instead (open loop): together they start R cycles per second, and a suggestion's
latency counts from its cycle's planned start (latency at a given throughput). PostgreSQL runs in a
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


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def cpu_seconds(pids: list[int], reaped_of: tuple[int, ...] = ()) -> float:
    """User + system CPU seconds used so far by these processes (Linux /proc), plus what the
    processes in ``reaped_of`` collected from children that already exited (PostgreSQL backends
    and server workers that end during a run still count)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    for pid in reaped_of:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[13]) + int(fields[14])
    return total / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(x) for x in out]


class CpuMeter:
    """CPU seconds of the assay server (its process and workers) and of this run's PostgreSQL
    cluster (postmaster and backends), listed afresh at each reading (backends come and go)."""

    def __init__(self, server: Server, pg: Postgres | None) -> None:
        self.server = server.proc.pid
        self.postmaster = (int((pg.dir / "data" / "postmaster.pid").read_text().split()[0])
                           if pg is not None else None)

    def read(self) -> tuple[float, float]:
        srv = cpu_seconds([self.server, *_children(self.server)], (self.server,))
        if self.postmaster is None:
            return srv, 0.0
        return srv, cpu_seconds([self.postmaster, *_children(self.postmaster)], (self.postmaster,))

    def settle(self, limit: float = 90.0) -> None:
        """Wait until the server is idle: its startup work (importing the model stack in the
        background, filling the first stock of candidates) must not be billed to a row."""
        deadline = time.time() + limit
        while time.time() < deadline:
            a = self.read()[0]
            time.sleep(0.5)
            if self.read()[0] - a < 0.03:
                return


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] * 1000


async def _client(c: Any, eid: str, stop_at: float, lat: dict[str, list[float]],
                  errors: list[str], acked: list[int], think: float = 0.0,
                  schedule: tuple[float, float] | None = None) -> int:
    """Loop suggest -> observe (-> every 4th cycle GET) until ``stop_at``. With ``schedule`` =
    (first start, period) the client is paced: cycle k starts at first + k * period, and its
    suggestion's latency counts from that planned start, so a request that starts late because the
    server was slow is charged the wait (no coordinated omission)."""
    import aiohttp

    cycles = planned = 0
    while time.perf_counter() < stop_at:
        try:
            t0 = time.perf_counter()
            if schedule is not None:
                t0 = schedule[0] + planned * schedule[1]
                planned += 1
                if t0 >= stop_at:
                    break
                if t0 > time.perf_counter():
                    await asyncio.sleep(t0 - time.perf_counter())
            async with c.post(f"/v1/experiments/{eid}/suggestions", headers={"Idempotency-Key": uuid.uuid4().hex}) as r:
                body = await r.read()
            t1 = time.perf_counter()
            if r.status != 200:
                errors.append(f"suggest {r.status} {body[:120]!r}")
                continue
            s = json.loads(body)
            suggest_s = t1 - t0
            if think:
                await asyncio.sleep(think)  # the worker evaluates the objective (not part of any latency)
            a = s["assignments"]
            value = -abs(a["layers"] - 4) - a["dropout"] + (0.3 if a["opt"] == "adam" else 0.0)
            t1 = time.perf_counter()
            async with c.post(f"/v1/experiments/{eid}/observations", json={"suggestion": s["id"], "value": value},
                              headers={"Idempotency-Key": uuid.uuid4().hex}) as r:
                body = await r.read()
            t2 = time.perf_counter()
            if r.status != 200:
                errors.append(f"observe {r.status} {body[:120]!r}")
                continue
            acked[0] += 1
            lat["suggest"].append(suggest_s)
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


async def _load(url: str, eid: str, clients: int, seconds: float, headers: dict[str, str] | None = None,
                meter: CpuMeter | None = None, think: float = 0.0, rate: float = 0.0) -> dict[str, Any]:
    """One row: ``clients`` closed-loop clients for ``seconds`` (each as fast as the server answers),
    or with ``rate`` > 0 paced to that many cycles/s in all (open loop: the clients' starts are spread
    evenly, latency counted from each cycle's planned start)."""
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
        served0 = meter.read() if meter else (0.0, 0.0)
        cpu0, start = time.process_time(), time.perf_counter()
        period = clients / rate if rate > 0 else 0.0
        counts = await asyncio.gather(*[
            _client(c, eid, start + seconds, lat, errors, acked, think,
                    (start + i * period / clients, period) if rate > 0 else None)
            for i in range(clients)])
        elapsed = time.perf_counter() - start
        client_cpu = time.process_time() - cpu0
        served1 = meter.read() if meter else (0.0, 0.0)
    k = max(1, sum(counts))
    # CPU per cycle: what the machine spends per suggest -> observe cycle (and its share of the
    # every-4th GET), nearly independent of how busy the machine is, unlike throughput and latency.
    # (Requests still in flight when the window closes are billed to it: a slight overestimate.)
    server_ms, pg_ms = (served1[0] - served0[0]) * 1000 / k, (served1[1] - served0[1]) * 1000 / k
    client_ms = client_cpu * 1000 / k
    cores = os.cpu_count() or 1
    out: dict[str, Any] = {"clients": clients, "think_ms": round(think * 1000), "rate": rate, "cycles": sum(counts),
                           "seconds": round(elapsed, 2),
                           "cycles_per_s": round(sum(counts) / elapsed, 1), "errors": len(errors),
                           "error_sample": errors[:3], "acknowledged_observations": acked[0],
                           "load_generator_cpu_share": round(client_cpu / elapsed / cores, 2),
                           "server_cpu_ms_per_cycle": round(server_ms, 2),
                           "postgres_cpu_ms_per_cycle": round(pg_ms, 2),
                           "load_generator_cpu_ms_per_cycle": round(client_ms, 2),
                           # every core busy with nothing else: the throughput this CPU cost allows
                           "cpu_bound_cycles_per_s": round(cores * 1000 / max(1e-9, server_ms + pg_ms + client_ms), 1)}
    for name, xs in lat.items():
        out[name] = {"p50_ms": round(pct(xs, 0.5), 1), "p99_ms": round(pct(xs, 0.99), 1), "n": len(xs)}
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
    p.add_argument("--think-ms", type=float, default=0.0,
                   help="each client waits this long between its suggestion and its observation (the "
                        "objective's evaluation): latency at a given offered load instead of at saturation")
    p.add_argument("--rate", default="0",
                   help="offered load in cycles/s for all clients together, comma-separated for several rows "
                        "(0 = closed loop, as fast as answered): the clients are paced (open loop) and a "
                        "suggestion's latency counts from its planned start")
    p.add_argument("--out", default="benchmarks/results/load.json")
    a = p.parse_args(argv)
    if a.quick:
        a.clients, a.backends, a.processes, a.seconds, a.scaling = "8", "sqlite", "1", 3.0, ""
    clients = [int(x) for x in a.clients.split(",")]
    backends = a.backends.split(",")
    processes = [int(x) for x in a.processes.split(",")]
    rates = [float(x) for x in a.rate.split(",")]
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
                    meter = CpuMeter(server, pg if backend == "postgresql" else None)
                    for n, rate in [(n, r) for n in clients for r in rates]:  # a fresh experiment per row
                        eid = _experiment(server.url, server.headers, type=a.experiment_type)
                        meter.settle()
                        row = asyncio.run(_load(server.url, eid, n, a.seconds, server.headers, meter,
                                                a.think_ms / 1000, rate))
                        row.update(backend=backend, processes=procs, loadavg=round(os.getloadavg()[0], 1),
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
    results["meta"]["loadavg_at_end"] = os.getloadavg()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(summary(results))
    print(f"wrote {out}")


def summary(results: dict[str, Any]) -> str:
    """A plain-text table of the load rows: throughput and latency (they depend on how busy the
    machine is) beside CPU per cycle (it depends little) and the throughput that CPU cost allows."""
    meta = results["meta"]
    end = meta.get("loadavg_at_end", [float("nan")])[0]
    lines = [f"load benchmark {meta['date']}, {meta['cpus']} CPUs, load average "
             f"{meta['loadavg_at_start'][0]:.1f} at start, {end:.1f} at end",
             f"{'backend':<10} {'proc':>4} {'clients':>7} {'think':>6} {'rate':>5} {'cyc/s':>7} {'sug p50/p99':>12} "
             f"{'obs p50/p99':>12} {'get p50/p99':>12} {'srv ms':>7} {'pg ms':>6} {'gen ms':>6} "
             f"{'cpu-bound cyc/s':>15} {'load':>5} {'err':>4} {'acked=stored':>12}"]
    for r in results["load"]:
        def lat(k: str, r: dict[str, Any] = r) -> str:
            return f"{r[k]['p50_ms']:.0f}/{r[k]['p99_ms']:.0f}"
        stored = "yes" if r["acknowledged_observations"] == r["observation_count"] else "NO"
        lines.append(
            f"{r['backend']:<10} {r['processes']:>4} {r['clients']:>7} {r.get('think_ms', 0):>6} "
            f"{int(r['rate']) if r.get('rate') else '-':>5} "
            f"{r['cycles_per_s']:>7.1f} "
            f"{lat('suggest'):>12} {lat('observe'):>12} {lat('get_experiment'):>12} "
            f"{r['server_cpu_ms_per_cycle']:>7.2f} {r['postgres_cpu_ms_per_cycle']:>6.2f} "
            f"{r['load_generator_cpu_ms_per_cycle']:>6.2f} {r['cpu_bound_cycles_per_s']:>15.0f} "
            f"{r['loadavg']:>5.1f} {r['errors']:>4} {stored:>12}")
    lines.append("srv / pg / gen ms: CPU milliseconds per suggest->observe cycle of the server processes, this "
                 "run's PostgreSQL cluster and the load generator;\ncpu-bound cyc/s = CPUs x 1000 / (srv + pg + gen): "
                 "the throughput if every core did nothing else (the load-independent figure).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
