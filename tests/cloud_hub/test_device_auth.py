"""Device enrollment and device authentication.

The service on a real SQLite file and a real PostgreSQL (tokens work once and expire; a device
belongs to one store; a racing pair of boxes with one token enrolls one), and a real hub process
with ``device_auth`` required (no secret, a wrong or revoked one: 401 and nothing stored; a
device writes only as itself and only its own store's records).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from cloud_hub.migrate import upgrade_database
from cloud_hub.services.enrollment import (
    DeviceConflictError,
    EnrollmentError,
    EnrollRequest,
    TokenRejectedError,
    create_enrollment_token,
    device_for_secret,
    enroll_device,
    revoke_device,
)
from common.sync import encode_batch
from tests.cloud_hub.batches import batch, count, counter, dead_letters, numbered
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess

NOW = 1_790_000_000.0
INGEST = "/api/v1/ingest/telemetry"


def _token(engine: Engine, store: str = "s1", ttl_s: float = 3600.0) -> str:
    with engine.begin() as conn:
        return create_enrollment_token(conn, store, created_by="t", now=NOW, ttl_s=ttl_s).token


def _enroll(engine: Engine, token: str, device: str, now: float = NOW + 1) -> str:
    with engine.begin() as conn:
        return enroll_device(
            conn, EnrollRequest(token=token, device_id=device), now=now
        ).device_secret


def test_a_token_enrolls_one_device_once_and_the_secret_names_it(hub_db: Engine) -> None:
    token = _token(hub_db, "s1")
    secret = _enroll(hub_db, token, "box-1")
    with hub_db.connect() as conn:
        device = device_for_secret(conn, secret)
        assert device is not None and (device.store_id, device.device_id) == ("s1", "box-1")
        assert device_for_secret(conn, secret + "x") is None
        stored = conn.execute(text("SELECT secret_hash, device_id FROM device_credentials")).all()
        tokens = conn.execute(text("SELECT token_hash FROM enrollment_tokens")).scalars().all()
    assert [r.device_id for r in stored] == ["box-1"]
    assert secret not in stored[0].secret_hash and token not in tokens  # hashes only at rest
    with pytest.raises(TokenRejectedError):
        _enroll(hub_db, token, "box-2")  # used
    with pytest.raises(TokenRejectedError):
        _enroll(hub_db, "rce_" + "x" * 43, "box-3")  # unknown
    short = _token(hub_db, "s1", ttl_s=10)
    with pytest.raises(TokenRejectedError):
        _enroll(hub_db, short, "box-4", now=NOW + 10)  # expired at NOW + 10
    with hub_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM device_credentials")).scalar() == 1


def test_re_enrolling_rotates_the_secret_and_another_store_cannot_take_the_device(
    hub_db: Engine,
) -> None:
    old = _enroll(hub_db, _token(hub_db, "s1"), "box-1")
    new = _enroll(hub_db, _token(hub_db, "s1"), "box-1", now=NOW + 5)
    with pytest.raises(DeviceConflictError):
        _enroll(hub_db, _token(hub_db, "s2"), "box-1")
    with hub_db.begin() as conn:
        assert device_for_secret(conn, old) is None
        assert device_for_secret(conn, new) is not None
        assert revoke_device(conn, "box-1", now=NOW + 6)
        assert device_for_secret(conn, new) is None
        assert not revoke_device(conn, "never-enrolled", now=NOW + 6)
    with pytest.raises(EnrollmentError), hub_db.begin() as conn:
        create_enrollment_token(conn, "s1", created_by="t", now=NOW, ttl_s=0)


def test_two_boxes_racing_with_one_token_enroll_exactly_one(pg_hub_url: str) -> None:
    from cloud_hub.db import create_hub_engine

    engine = create_hub_engine(pg_hub_url)
    try:
        token = _token(engine, "s1")
        results: list[str] = []
        barrier = threading.Barrier(8)

        def attempt(i: int) -> None:
            barrier.wait()
            try:
                _enroll(engine, token, f"box-{i}")
                results.append(f"box-{i}")
            except TokenRejectedError:
                results.append("refused")

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(results) == 8
        assert results.count("refused") == 7
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM device_credentials")).scalar() == 1
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub process with device auth required (the default), on SQLite."""
    folder: Path = tmp_path_factory.mktemp("hub-device-auth")
    url = f"sqlite:///{folder / 'hub.db'}"
    upgrade_database(url)
    proc = HubProcess(folder)
    proc.start(url)
    yield proc
    assert proc.stop() in CLEAN_EXIT, proc.log()


def _post(hub: HubProcess, body: bytes, secret: str | None) -> httpx.Response:
    headers = {"Content-Encoding": "gzip"}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    return httpx.post(hub.url + INGEST, content=body, headers=headers, timeout=30)


def _engine(hub: HubProcess) -> Engine:
    from cloud_hub.db import create_hub_engine

    return create_hub_engine(hub.database_url, pool_size=1)


def test_ingest_needs_the_device_s_own_secret(hub: HubProcess) -> None:
    secret = hub.enroll("s1", "auth-a")
    other = hub.enroll("s1", "auth-b")
    good = encode_batch(batch(numbered([counter(3, target="auth-door")]), device_id="auth-a"))
    for bad in (None, "rcd_" + "x" * 43, other):
        r = _post(hub, good, bad)
        assert r.status_code in (400, 401), r.text
    engine = _engine(hub)
    try:
        # Nothing of auth-a's was applied; the batch sent with auth-b's secret is a dead letter.
        assert count(engine, "received_records", "device_id = 'auth-a'") == 0
        assert any(
            "credentials of store 's1' device 'auth-b'" in d["reason"] for d in dead_letters(engine)
        )
        r = _post(hub, good, secret)
        assert r.status_code == 200, r.text
        assert count(engine, "received_records", "device_id = 'auth-a'") == 1
        # The device asks only about itself.
        auth = {"Authorization": f"Bearer {secret}"}
        assert (
            httpx.get(f"{hub.url}/api/v1/devices/auth-a/sync", headers=auth).json()["max_seq"] == 1
        )
        assert httpx.get(f"{hub.url}/api/v1/devices/auth-b/sync", headers=auth).status_code == 403
        assert httpx.get(f"{hub.url}/api/v1/devices/auth-a/sync").status_code == 401
    finally:
        engine.dispose()


def test_a_device_cannot_write_another_store_s_records(hub: HubProcess) -> None:
    secret = hub.enroll("s1", "auth-c")
    # Claims to be a box of store s2: refused whole (kept as a dead letter with the reason).
    as_s2 = encode_batch(batch(numbered([counter(5)]), device_id="auth-c", store_id="s2"))
    r = _post(hub, as_s2, secret)
    assert r.status_code == 400 and "credentials of store 's1'" in r.json()["reason"]
    engine = _engine(hub)
    try:
        assert count(engine, "rollups", "store_id = 's2'") == 0
        assert count(engine, "received_records", "device_id = 'auth-c'") == 0
    finally:
        engine.dispose()


def test_a_revoked_device_is_refused_until_it_enrolls_again(hub: HubProcess) -> None:
    secret = hub.enroll("s1", "auth-d")
    body = encode_batch(batch(numbered([counter(1, target="auth-d-door")]), device_id="auth-d"))
    engine = _engine(hub)
    try:
        with engine.begin() as conn:
            assert revoke_device(conn, "auth-d", now=time.time())
    finally:
        engine.dispose()
    assert _post(hub, body, secret).status_code == 401
    fresh = hub.enroll("s1", "auth-d")
    assert _post(hub, body, fresh).status_code == 200
    enrolled = httpx.post(
        f"{hub.url}/api/v1/devices/enroll", json={"token": "rce_nope", "device_id": "auth-e"}
    )
    assert enrolled.status_code == 401 and "rce_nope" not in enrolled.text
    log = hub.log()
    assert secret not in log and fresh not in log
