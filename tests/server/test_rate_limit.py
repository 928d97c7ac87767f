"""Per-token rate limiting on a real server: 429 + Retry-After, and the clients back off and succeed."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

import assay
from assay.access import Access
from assay.errors import RateLimited
from assay.server.auth import RateLimiter
from assay.store import Store
from tests.conftest import ServerProcess


def test_bucket_refills_at_the_rate() -> None:
    lim = RateLimiter(rate=10, burst=2)
    lim.check(1)
    lim.check(1)
    with pytest.raises(RateLimited) as exc:
        lim.check(1)
    assert 0 < exc.value.retry_after <= 1.0
    lim.check(2)  # other tokens have their own bucket
    time.sleep(0.15)
    lim.check(1)
    unlimited = RateLimiter(rate=0, burst=1)  # 0: unlimited
    for _ in range(50):
        unlimited.check(1)  # never raises


def test_server_limits_per_token_and_clients_back_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = ServerProcess(tmp_path / "h", auth=True,
                         extra_env={"ASSAY_RATE_LIMIT": "4", "ASSAY_RATE_BURST": "4"}).start()
    try:
        admin = proc.token
        assert admin
        store = Store(f"sqlite:///{tmp_path / 'h' / 'assay.db'}")
        other = Access(store).operator_create_token(1, role="read")["token"]
        store.dispose()
        with httpx.Client(base_url=proc.url, auth=(admin, "")) as h:
            codes = [h.get("/v1/experiments") for _ in range(12)]
        limited = [r for r in codes if r.status_code == 429]
        assert limited, [r.status_code for r in codes]
        assert int(limited[0].headers["retry-after"]) >= 1
        assert limited[0].json()["object"] == "error" and "rate limit" in limited[0].json()["message"]
        # another token is not slowed down by the first one's burst
        assert httpx.get(proc.url + "/v1/experiments", auth=(other, "")).status_code == 200

        # the public sigopt client retries 429s with exponential backoff: every call succeeds
        from sigopt import Connection as SigOpt

        monkeypatch.setenv("SIGOPT_API_URL", proc.url)
        sig = SigOpt(client_token=admin)
        exp = sig.experiments().create(name="rl", parameters=[dict(name="x", type="double",
                                                                   bounds=dict(min=0, max=1))],
                                       metrics=[dict(name="y")], observation_budget=30)
        t0 = time.monotonic()
        for _ in range(5):
            s = sig.experiments(exp.id).suggestions().create()
            sig.experiments(exp.id).observations().create(suggestion=s.id, value=s.assignments["x"])
        assert time.monotonic() - t0 > 1.0  # 10 calls at 4/s had to wait
        assert sig.experiments(exp.id).fetch().progress.observation_count == 5
        # assay's own client honours Retry-After too
        with assay.Connection(proc.url, token=admin) as conn:
            for _ in range(8):
                assert conn.experiments(exp.id).fetch().id == exp.id
    finally:
        proc.stop()


def test_each_process_takes_its_share(tmp_path: Path) -> None:
    """With ``workers=2`` one process allows half the burst and half the rate."""
    import warnings

    from assay.config import Settings
    from assay.server.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    app = create_app(Settings(home=tmp_path, auth=True, precompute=False, rate_limit=4, rate_burst=4, workers=2))
    with TestClient(app, base_url="http://t") as c:
        token = Access(app.state.service.store).bootstrap()
        codes = [c.get("/v1/tokens/self", headers={"Authorization": f"Bearer {token}"}).status_code
                 for _ in range(6)]
    assert codes[:2] == [200, 200] and codes[2:] == [429] * 4, codes


def test_limit_holds_across_worker_processes(tmp_path: Path) -> None:
    """`--workers 2`: each process allows its share, so the server as a whole allows the configured rate."""
    from concurrent.futures import ThreadPoolExecutor

    rate, burst = 1, 4
    proc = ServerProcess(tmp_path / "w", auth=True, args=["--workers", "2"],
                         extra_env={"ASSAY_RATE_LIMIT": str(rate), "ASSAY_RATE_BURST": str(burst)}).start()
    try:
        def call(_: int) -> int:  # a new connection each time: the kernel spreads them over both processes
            assert proc.token is not None
            return httpx.get(proc.url + "/v1/tokens/self", auth=(proc.token, ""),
                             headers={"Connection": "close"}).status_code

        t0 = time.monotonic()
        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(call, range(36)))
        elapsed = time.monotonic() - t0
        assert set(codes) <= {200, 429}, codes
        served = codes.count(200)
        # never more than the burst plus what the rate refills meanwhile (+1: rounding at the edges)
        assert 2 <= served <= burst + rate * elapsed + 1, (served, elapsed)
    finally:
        proc.stop()


def test_failed_authentications_are_limited_per_address(tmp_path: Path) -> None:
    """Guessing tokens: after the burst of rejected tokens an address gets 429; valid tokens still work."""
    import warnings

    from assay.config import Settings
    from assay.server.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    app = create_app(Settings(home=tmp_path, auth=True, precompute=False, auth_failure_limit=0.5,
                              auth_failure_burst=3))
    with TestClient(app, base_url="http://t") as c:
        token = Access(app.state.service.store).bootstrap()
        codes = [c.get("/v1/experiments", headers={"Authorization": f"Bearer assay_guess{i}"}) for i in range(5)]
        assert [r.status_code for r in codes] == [401, 401, 401, 429, 429]
        assert int(codes[3].headers["retry-after"]) >= 1 and "failed authentications" in codes[3].json()["message"]
        assert c.get("/v1/experiments").status_code == 429  # no token at all counts too
        assert c.get("/v1/experiments", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert c.get("/health").status_code == 200
