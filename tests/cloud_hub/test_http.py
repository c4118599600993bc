"""The ingest API through a real uvicorn subprocess (``retail-hub serve``) on a SQLite file."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from common.sync import (
    MAX_COMPRESSED_BATCH_BYTES,
    BatchAck,
    BatchRejected,
    encode_batch,
)
from tests.cloud_hub.batches import (
    T0,
    batch,
    count,
    counter,
    crossing,
    dead_letters,
    numbered,
    rollups,
)
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess
from tests.services import PostgresProcess

INGEST = "/api/v1/ingest/telemetry"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, Engine]]:
    """One hub process on one migrated SQLite file for this module (tests use own devices)."""
    folder = tmp_path_factory.mktemp("hub-http")
    url = f"sqlite:///{folder / 'hub.db'}"
    upgrade_database(url)
    hub = HubProcess(folder)
    hub.start(url, device_auth="open")
    engine = create_hub_engine(url)
    yield hub, engine
    engine.dispose()
    assert hub.stop() in CLEAN_EXIT, hub.log()


def post(hub: HubProcess, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(hub.url + INGEST, content=body, headers=headers, timeout=30)


def test_gzip_batch_is_acked_after_commit_and_resend_is_a_duplicate(
    served: tuple[HubProcess, Engine],
) -> None:
    hub, engine = served
    b = batch(numbered([counter(4, target="http-door"), crossing(5, T0 + 1.0)]), device_id="h1")

    r = post(hub, encode_batch(b), **{"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    ack = BatchAck.model_validate_json(r.content)
    assert (ack.batch_id, ack.device_id, ack.committed, ack.duplicates) == (
        b.batch_id,
        "h1",
        [(1, 2)],
        0,
    )
    assert rollups(engine)[("http-door", "line_in", T0)]["count"] == 4  # committed before the 200
    assert count(engine, "events", "device_id = 'h1'") == 1

    again = BatchAck.model_validate_json(
        post(hub, encode_batch(b), **{"Content-Encoding": "gzip"}).content
    )
    assert again.duplicates == 2 and again.committed == [(1, 2)]
    assert rollups(engine)[("http-door", "line_in", T0)]["count"] == 4

    sync = httpx.get(f"{hub.url}/api/v1/devices/h1/sync", timeout=10).json()
    assert (sync["max_seq"], sync["records_received"], sync["duplicates_received"]) == (2, 2, 2)


def test_plain_json_body_is_accepted(served: tuple[HubProcess, Engine]) -> None:
    hub, engine = served
    b = batch(numbered([counter(2, target="http-json")], first_seq=7), device_id="h2")
    r = post(hub, b.model_dump_json().encode(), **{"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert BatchAck.model_validate_json(r.content).committed == [(7, 7)]
    assert rollups(engine)[("http-json", "line_in", T0)]["count"] == 2


def test_garbage_is_rejected_with_400_and_kept_as_a_dead_letter(
    served: tuple[HubProcess, Engine],
) -> None:
    hub, engine = served
    r = post(hub, b"\x1f\x8bthis is not gzip", **{"Content-Encoding": "gzip"})
    assert r.status_code == 400
    rejected = BatchRejected.model_validate_json(r.content)
    assert "gzip" in rejected.reason and rejected.dead_letter_id is not None
    (kept,) = [d for d in dead_letters(engine) if d["id"] == rejected.dead_letter_id]
    assert (
        kept["raw_size"] == len(b"\x1f\x8bthis is not gzip") and kept["reason"] == rejected.reason
    )

    envelope = json.dumps({"schema_version": 1, "batch_id": "bad-1", "records": "x"}).encode()
    r2 = post(hub, gzip.compress(envelope), **{"Content-Encoding": "gzip"})
    assert r2.status_code == 400
    assert BatchRejected.model_validate_json(r2.content).batch_id == "bad-1"


def test_oversize_bodies_get_413_whether_declared_or_streamed(
    served: tuple[HubProcess, Engine],
) -> None:
    hub, engine = served
    before = count(engine, "dead_letters")
    too_big = b"x" * (MAX_COMPRESSED_BATCH_BYTES + 1)
    declared = post(hub, too_big)
    assert declared.status_code == 413
    assert "exceeds" in BatchRejected.model_validate_json(declared.content).reason

    def chunks() -> Iterator[bytes]:  # no Content-Length: the hub must count while it reads
        for _ in range(MAX_COMPRESSED_BATCH_BYTES // 65536 + 1):
            yield b"y" * 65536

    streamed = httpx.post(hub.url + INGEST, content=chunks(), timeout=30)
    assert streamed.status_code == 413
    assert count(engine, "dead_letters") == before  # refused, not kept: the edge splits it
    assert httpx.get(hub.url + "/api/v1/health", timeout=10).status_code == 200


def test_unknown_content_encoding_is_refused(served: tuple[HubProcess, Engine]) -> None:
    hub, _ = served
    r = post(hub, b"{}", **{"Content-Encoding": "br"})
    assert r.status_code == 415 and "br" in BatchRejected.model_validate_json(r.content).reason


def test_health_and_unknown_device(served: tuple[HubProcess, Engine]) -> None:
    hub, _ = served
    health = httpx.get(hub.url + "/api/v1/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert httpx.get(hub.url + "/api/v1/devices/nobody/sync", timeout=10).status_code == 404


def test_database_down_gives_503_with_retry_after_and_nothing_is_lost(
    tmp_path: Path, pg_hub_url: str, postgres_server: PostgresProcess
) -> None:
    hub = HubProcess(tmp_path)
    hub.start(pg_hub_url, device_auth="open")
    engine = create_hub_engine(pg_hub_url)
    b = batch(numbered([counter(3, target="pg-door")]), device_id="p1")
    try:
        postgres_server.stop()
        try:
            down = post(hub, encode_batch(b), **{"Content-Encoding": "gzip"})
            assert down.status_code == 503 and down.headers["Retry-After"].isdigit()
            assert "retry" in BatchRejected.model_validate_json(down.content).reason
            assert httpx.get(hub.url + "/api/v1/health", timeout=30).status_code == 503
        finally:
            postgres_server.start()
        up = post(hub, encode_batch(b), **{"Content-Encoding": "gzip"})
        assert up.status_code == 200, up.text
        assert BatchAck.model_validate_json(up.content).duplicates == 0  # nothing acked before
        assert rollups(engine)[("pg-door", "line_in", T0)]["count"] == 3
    finally:
        engine.dispose()
        assert hub.stop() in CLEAN_EXIT, hub.log()
