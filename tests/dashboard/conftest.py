"""One headless Chromium per session, one real server with data made through the API."""

from __future__ import annotations

import math
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import assay
from tests.conftest import ServerProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def branin(x1: float, x2: float) -> float:
    return ((x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


@dataclass
class Data:
    """What the session's server holds."""

    server: ServerProcess
    single: str = ""  # 30 observations (2 failed), one open suggestion, one queued
    multi: str = ""  # two metrics with thresholds
    tasks: str = ""  # multitask
    values: list[float] = field(default_factory=list)  # single's metric values, in order (None for failed)
    project: str = "vision"
    runs: list[str] = field(default_factory=list)  # 4 training runs in project "vision"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip("needs /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    srv = ServerProcess(tmp_path_factory.mktemp("dash") / "home").start()
    try:
        yield _populate(srv)
    finally:
        srv.stop()


def _populate(srv: ServerProcess) -> Data:
    d = Data(srv)
    rng = random.Random(7)
    with assay.Connection(srv.url) as c:
        e = c.create_experiment(name="branin", project="demo", observation_budget=40, parameters=[
            {"name": "x1", "type": "double", "bounds": {"min": -5, "max": 10}},
            {"name": "x2", "type": "double", "bounds": {"min": 0, "max": 15}},
            {"name": "opt", "type": "categorical", "categorical_values": ["adam", "sgd"]}],
            metrics=[{"name": "y", "objective": "minimize"}])
        obs = []
        for i in range(30):
            x1, x2 = rng.uniform(-5, 10), rng.uniform(0, 15)
            a = {"x1": x1, "x2": x2, "opt": "adam" if i % 3 else "sgd"}
            if i in (4, 17):
                obs.append({"assignments": a, "failed": True})
                d.values.append(None)  # type: ignore[arg-type]
            else:
                y = branin(x1, x2)
                obs.append({"assignments": a, "values": [{"name": "y", "value": y}]})
                d.values.append(y)
        c.experiments(e.id).observations().create_batch(observations=obs)
        e.suggest()
        c.experiments(e.id).queued_suggestions().create(assignments={"x1": 1.0, "x2": 2.0, "opt": "sgd"})
        d.single = e.id

        m = c.create_experiment(name="two metrics", observation_budget=30, parameters=[
            {"name": "a", "type": "double", "bounds": {"min": 0, "max": 1}},
            {"name": "b", "type": "int", "bounds": {"min": 1, "max": 5}}],
            metrics=[{"name": "f1", "objective": "maximize", "threshold": 0.2},
                     {"name": "f2", "objective": "maximize", "threshold": 0.1}])
        mobs = []
        for _ in range(20):
            xa, xb = rng.random(), rng.randint(1, 5)
            mobs.append({"assignments": {"a": xa, "b": xb}, "values": [
                {"name": "f1", "value": xa + rng.random() * 0.1}, {"name": "f2", "value": 1 - xa**2 + xb * 0.01}]})
        c.experiments(m.id).observations().create_batch(observations=mobs)
        d.multi = m.id

        t = c.create_experiment(name="multitask", observation_budget=10,
                                parameters=[{"name": "a", "type": "double", "bounds": {"min": 0, "max": 1}}],
                                metrics=[{"name": "acc"}],
                                tasks=[{"name": "cheap", "cost": 0.1}, {"name": "full", "cost": 1.0}])
        tobs = [{"assignments": {"a": rng.random()}, "task": "cheap" if i < 7 else "full",
                 "values": [{"name": "acc", "value": rng.random()}]} for i in range(10)]
        c.experiments(t.id).observations().create_batch(observations=tobs)
        d.tasks = t.id
    _runs(srv, d, rng)
    return d


def png(width: int = 2, height: int = 2) -> bytes:
    """A small solid red PNG."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PNG = png()


def _runs(srv: ServerProcess, d: Data, rng: random.Random) -> None:
    import httpx

    with httpx.Client(base_url=srv.url) as h:
        h.post("/v1/clients/1/projects", json={"id": d.project, "name": "Vision models"}).raise_for_status()
        for i in range(4):
            body = {"name": f"resnet-{i}", "assignments": {"lr": 0.01 * (i + 1), "depth": 18 + i},
                    "assignments_meta": {"lr": {"source": "user"}},
                    "values": {"accuracy": {"value": 0.7 + 0.05 * i}, "loss": {"value": 1.0 - 0.1 * i}},
                    "logs": {"stdout": {"content": f"epoch 1 done\nrun {i} finished\n"}},
                    "metadata": {"gpu": "none", "seed": i}, "source_code": {"hash": f"abc{i}"},
                    "tags": ["vision-sweep"]}
            run = h.post(f"/v1/projects/{d.project}/training_runs", json=body)
            run.raise_for_status()
            d.runs.append(run.json()["id"])
        first = d.runs[0]
        for step in range(1, 6):
            values = [{"name": "accuracy", "value": 0.5 + 0.05 * step}, {"name": "loss", "value": 1.0 / step}]
            h.post(f"/v1/training_runs/{first}/checkpoints", json={"values": values}).raise_for_status()
        f = h.post(f"/v1/training_runs/{first}/files", json={"content_length": len(PNG), "content_type": "image/png",
                                                              "name": "confusion matrix", "filename": "cm.png"}).json()
        httpx.put(f["upload"]["url"], content=PNG, headers=f["upload"]["headers"]).raise_for_status()
        for rid in d.runs[1:]:
            h.request("MERGE", f"/v1/training_runs/{rid}", json={"state": "completed"}).raise_for_status()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh context; the test fails if the page logs a console error or throws."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()
    assert not errors, f"console errors: {errors}"
