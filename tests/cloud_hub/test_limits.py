"""Request limits, CORS and readiness on a real hub process (and the rate limiter's arithmetic
with a driven clock)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud_hub.api.limits import RateLimiter
from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from common.sync import encode_batch
from tests.cloud_hub.batches import batch, counter, numbered
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess
from tests.services import MosquittoProcess

API = "/api/v1"
ORIGIN = "https://bi.example.com"


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one a second, bursts of 60
    assert [limiter.take("a") for _ in range(60)] == [0.0] * 60
    wait = limiter.take("a")
    assert 0.99 <= wait <= 1.0
    assert limiter.take("b") == 0.0  # callers do not share a bucket
    now[0] += 2.5
    assert [limiter.take("a") > 0 for _ in range(3)] == [False, False, True]
    now[0] += 3600
    assert sum(limiter.take("a") == 0.0 for _ in range(100)) == 60  # never more than a burst


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, list[str]]]:
    folder: Path = tmp_path_factory.mktemp("hub-limits")
    url = f"sqlite:///{folder / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    with engine.begin() as conn:
        keys = [
            create_api_key(conn, Role.HQ_ADMIN, name=f"k{i}", now=time.time())[0] for i in range(3)
        ]
    engine.dispose()
    proc = HubProcess(folder)
    proc.start(
        url,
        env={
            "RETAIL_HUB_RATE_LIMIT_PER_MINUTE": "5",
            "RETAIL_HUB_MAX_REQUEST_BYTES": "1000",
            "RETAIL_HUB_CORS_ORIGINS": f'["{ORIGIN}"]',
        },
    )
    yield proc, keys
    assert proc.stop() in CLEAN_EXIT, proc.log()


def test_a_caller_over_its_rate_gets_429_and_others_do_not(
    hub: tuple[HubProcess, list[str]],
) -> None:
    proc, keys = hub
    a = {"Authorization": f"Bearer {keys[0]}"}
    codes = [httpx.get(proc.url + API + "/stores", headers=a).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
    r = httpx.get(proc.url + API + "/stores", headers=a)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    b = {"Authorization": f"Bearer {keys[1]}"}
    assert httpx.get(proc.url + API + "/stores", headers=b).status_code == 200
    assert all(httpx.get(proc.url + API + "/health").status_code == 200 for _ in range(10))
    secret = proc.enroll("s1", "limits-box")
    dev = {"Authorization": f"Bearer {secret}", "Content-Encoding": "gzip"}
    for i in range(8):  # ingest is never rate limited: enrolled devices back off by themselves
        body = encode_batch(batch(numbered([counter(1)], first_seq=i + 1), device_id="limits-box"))
        assert (
            httpx.post(proc.url + API + "/ingest/telemetry", content=body, headers=dev).status_code
            == 200
        )


def test_oversize_bodies_get_413_declared_or_streamed(hub: tuple[HubProcess, list[str]]) -> None:
    proc, keys = hub
    auth = {"Authorization": f"Bearer {keys[2]}"}
    big = {"name": "x" * 2000, "timezone": "UTC"}
    r = httpx.put(proc.url + API + "/stores/big", json=big, headers=auth)
    assert r.status_code == 413, r.text

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(20):
            yield b"y" * 100
        yield b'", "timezone": "UTC"}'

    r = httpx.put(
        proc.url + API + "/stores/big",
        content=chunks(),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    assert (
        httpx.get(proc.url + API + "/stores/big", headers=auth).status_code == 404
    )  # nothing made
    ok = httpx.put(
        proc.url + API + "/stores/small", json={"name": "s", "timezone": "UTC"}, headers=auth
    )
    assert ok.status_code == 201, ok.text


def test_cors_answers_only_the_configured_origin(hub: tuple[HubProcess, list[str]]) -> None:
    proc, _ = hub
    for origin, allowed in ((ORIGIN, True), ("https://evil.example", False)):
        r = httpx.options(
            proc.url + API + "/stores",
            headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
        )
        assert (r.headers.get("access-control-allow-origin") == origin) is allowed, r.headers


def test_readiness_follows_the_broker(tmp_path: Path) -> None:
    broker = MosquittoProcess(tmp_path / "broker")
    broker.start()
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_database(url)
    proc = HubProcess(tmp_path / "hub")
    proc.start(
        url,
        env={
            "RETAIL_HUB_READY_CHECKS": '["database", "broker"]',
            "RETAIL_HUB_MQTT_HOST": "127.0.0.1",
            "RETAIL_HUB_MQTT_PORT": str(broker.port),
        },
    )
    try:
        up = httpx.get(proc.url + API + "/health/ready", timeout=30)
        assert up.status_code == 200, up.text
        assert up.json()["checks"]["broker"]["ok"] and up.json()["checks"]["database"]["ok"]
        broker.stop()
        down = httpx.get(proc.url + API + "/health/ready", timeout=30)
        assert down.status_code == 503 and down.headers["Retry-After"] == "5"
        checks = down.json()["checks"]
        assert not checks["broker"]["ok"] and checks["database"]["ok"]
        assert httpx.get(proc.url + API + "/health").status_code == 200  # alive, not ready
    finally:
        assert proc.stop() in CLEAN_EXIT, proc.log()
        broker.stop()
