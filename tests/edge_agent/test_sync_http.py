"""Sync over HTTP against the real hub (``retail-hub serve`` in a uvicorn subprocess, on a
migrated SQLite file): everything arrives exactly once, a hub outage is ridden out with one
log line each way, oversized batches are split, dead letters and drop notices reach the hub,
and the backoff is full jitter."""

from __future__ import annotations

import contextlib
import logging
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from common.sync import RecordKind, TelemetryBatch
from edge_agent.outbox import Outbox, OutboxLimits
from edge_agent.outbox.records import OutboxBody
from edge_agent.sources.backoff import BackoffPolicy
from edge_agent.sync import HttpTransport, Syncer, TransportError, full_jitter_delay
from tests.cloud_hub.batches import count, device, rollups
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess
from tests.edge_agent.test_outbox import (
    DEVICE,
    STORE,
    T0,
    alert,
    all_pending,
    crossing,
    dwell_rollup,
    heatmap,
    rollup,
    visit,
)
from tests.services import free_port, wait_for

FAST = BackoffPolicy(initial_s=0.1, factor=2.0, cap_s=0.5, jitter_s=0.0)


@pytest.fixture()
def hub_db(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A migrated SQLite hub database and an engine on it."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_hub_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A migrated hub database, once a SQLite file and once PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    upgrade_database(url)
    engine = create_hub_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture()
def hub(tmp_path: Path, hub_db: tuple[str, Engine]) -> Iterator[HubProcess]:
    """The hub API serving ``hub_db``."""
    proc = HubProcess(tmp_path / "hub")
    proc.start(hub_db[0], device_auth="open")
    yield proc
    assert proc.stop() in CLEAN_EXIT, proc.log()


def store_mix(n: int) -> list[OutboxBody]:
    """``n`` distinct records of every kind the analytics produce."""
    out: list[OutboxBody] = []
    for i in range(n):
        out += [rollup(i), dwell_rollup(i), heatmap(i), crossing(i), visit(i)]
        if i % 10 == 0:
            out.append(alert(i))
    return out


def hub_seqs(engine: Engine, device_id: str = DEVICE) -> list[int]:
    """The seqs the hub's ledger holds for ``device_id``, ascending."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT seq FROM received_records WHERE device_id = :d ORDER BY seq"),
            {"d": device_id},
        ).all()
    return [int(r[0]) for r in rows]


def test_everything_appended_arrives_exactly_once(
    tmp_path: Path, any_hub_db: tuple[str, Engine]
) -> None:
    url, engine = any_hub_db
    bodies = store_mix(300)
    hub = HubProcess(tmp_path / "hub")
    hub.start(url, device_auth="open")
    try:
        with (
            Outbox.open(tmp_path / "o.sqlite3", DEVICE, STORE, reserve_bytes=0) as ob,
            HttpTransport(hub.url) as transport,
        ):
            seqs = [s for i in range(0, len(bodies), 97) for s in ob.append(bodies[i : i + 97], T0)]
            syncer = Syncer(ob, transport, batch_records=250, backoff=FAST)
            total = syncer.drain(timeout_s=60)
            assert ob.stats(T0).pending_count == 0
    finally:
        assert hub.stop() in CLEAN_EXIT, hub.log()
    assert (total.sent, total.delivered, total.duplicates) == (len(seqs), len(seqs), 0)
    assert hub_seqs(engine) == seqs
    stored = rollups(engine)
    for i in range(300):  # each counted once: a second copy would have been added on
        assert stored[("door", "line_in", rollup(i).bucket_start)]["count"] == i % 7
        assert stored[("promo", "dwell_s", dwell_rollup(i).bucket_start)]["count"] == 3
    assert count(engine, "events", "device_id = :d", d=DEVICE) == 300 * 2 + 30
    assert count(engine, "heatmaps") == 300
    assert device(engine, DEVICE)["records_received"] == len(seqs)


def test_resent_records_are_acked_as_duplicates_and_change_nothing(
    tmp_path: Path, hub: HubProcess, hub_db: tuple[str, Engine]
) -> None:
    """An ack lost on the way (the hub committed, the edge never heard): the next sync sends
    the same records again; the hub acks them as duplicates and counts nothing twice."""
    engine = hub_db[1]
    with (
        Outbox.open(tmp_path / "o.sqlite3", DEVICE, STORE, reserve_bytes=0) as ob,
        HttpTransport(hub.url) as transport,
    ):
        ob.append([rollup(i) for i in range(40)], T0)
        first = TelemetryBatch(
            batch_id="lost-ack", store_id=STORE, device_id=DEVICE, sent_at=T0,
            records=ob.pending(40, 10**9),
        )  # fmt: skip
        assert transport.send(first).duplicates == 0  # committed; its ack never "arrived"
        assert ob.stats(T0).pending_count == 40
        result = Syncer(ob, transport, batch_records=40).sync_once()
    assert (result.sent, result.delivered, result.duplicates) == (40, 40, 40)
    stored = rollups(engine)
    assert all(
        stored[("door", "line_in", rollup(i).bucket_start)]["count"] == i % 7 for i in range(40)
    )
    assert device(engine, DEVICE)["duplicates_received"] == 40


def test_hub_down_then_up_is_drained_after_with_one_log_line_each_way(
    tmp_path: Path, hub_db: tuple[str, Engine], caplog: pytest.LogCaptureFixture
) -> None:
    url, engine = hub_db
    hub = HubProcess(tmp_path / "hub", port=free_port())  # not started: the hub is down
    caplog.set_level(logging.DEBUG, logger="edge_agent.sync.syncer")
    with (
        Outbox.open(tmp_path / "o.sqlite3", DEVICE, STORE, reserve_bytes=0) as ob,
        HttpTransport(hub.url, timeout_s=5) as transport,
    ):
        syncer = Syncer(ob, transport, batch_records=100, backoff=FAST, idle_s=0.05)
        syncer.start()
        try:
            seqs = ob.append(store_mix(50), T0)
            wait_for(
                lambda: sum("sync retry" in r.message for r in caplog.records) >= 3,
                timeout_s=30,
                what="several failed retries while the hub is down",
            )
            seqs += ob.append(store_mix(60)[-50:], T0 + 1)
            assert ob.stats(T0).pending_count == len(seqs)
            hub.start(url, device_auth="open")
            wait_for(lambda: ob.stats(T0).pending_count == 0, timeout_s=60, what="drained")
        finally:
            syncer.stop()
            hub.stop()
    assert hub_seqs(engine) == seqs
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("sync failing" in m for m in warnings) == 1, warnings
    assert sum("sync working again" in m for m in warnings) == 1, warnings


def test_batches_too_large_for_the_hub_are_split_until_they_fit(
    tmp_path: Path, hub_db: tuple[str, Engine], caplog: pytest.LogCaptureFixture
) -> None:
    url, engine = hub_db
    caplog.set_level(logging.ERROR, logger="edge_agent.sync.syncer")
    rng = random.Random(3)
    hub = HubProcess(tmp_path / "hub")
    hub.start(
        url, env={"RETAIL_HUB_MAX_BODY_BYTES": "40000"}, device_auth="open"
    )  # ~15 noisy heatmaps gzipped
    try:
        with (
            Outbox.open(tmp_path / "o.sqlite3", DEVICE, STORE, reserve_bytes=0) as ob,
            HttpTransport(hub.url) as transport,
        ):
            bodies = [
                heatmap(i, (32, 18)).model_copy(
                    update={"person_seconds": [round(rng.random() * 9, 3) for _ in range(576)]}
                )
                for i in range(100)
            ]
            seqs = ob.append(bodies, T0)
            Syncer(ob, transport, batch_records=100, backoff=FAST).drain(timeout_s=60)
    finally:
        hub.stop()
    assert hub_seqs(engine) == seqs
    assert count(engine, "dead_letters") == 0  # a 413 keeps nothing: only split re-sends
    refused = [r.getMessage() for r in caplog.records if "refused batch" in r.getMessage()]
    assert refused and "(100 records" in refused[0] and "batches of 50" in refused[0]


def test_record_the_hub_cannot_parse_is_dead_lettered_there_and_delivered_here(
    tmp_path: Path, hub: HubProcess, hub_db: tuple[str, Engine], caplog: pytest.LogCaptureFixture
) -> None:
    """A record a newer agent wrote (schema_version 2) in the outbox of an agent rolled back:
    the hub keeps it as a dead letter with the reason, the edge logs it and moves on."""
    engine = hub_db[1]
    path = tmp_path / "o.sqlite3"
    with Outbox.open(path, DEVICE, STORE, reserve_bytes=0) as ob:
        ob.append([rollup(1)], T0)
    future = (
        rollup(2)
        .model_dump_json(exclude_none=True)
        .replace('"schema_version":1', '"schema_version":2')
    )
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "INSERT INTO records (kind, priority, created_at, codec, json_size, size, body) "
            "VALUES ('rollup', 2, ?, 0, ?, ?, ?)",
            (T0, len(future), len(future), future.encode()),
        )
    caplog.set_level(logging.WARNING, logger="edge_agent.sync.syncer")
    with Outbox.open(path, DEVICE, STORE, reserve_bytes=0) as ob, HttpTransport(hub.url) as t:
        ob.append([rollup(3)], T0)
        total = Syncer(ob, t).drain(timeout_s=30)
        assert ob.stats(T0).pending_count == 0
    assert (total.sent, total.delivered, total.dead_lettered) == (3, 3, 1)
    assert hub_seqs(engine) == [1, 2, 3]
    assert count(engine, "dead_letters", "seq = 2 AND reason LIKE '%schema_version%'") == 1
    assert any("dead-lettered record seq 2" in r.getMessage() for r in caplog.records)


def test_drop_notices_reach_the_hub(
    tmp_path: Path, hub: HubProcess, hub_db: tuple[str, Engine]
) -> None:
    engine = hub_db[1]
    limits = OutboxLimits(max_bytes=8192)
    with (
        Outbox.open(tmp_path / "o.sqlite3", DEVICE, STORE, limits, reserve_bytes=0) as ob,
        HttpTransport(hub.url) as transport,
    ):
        ob.append([rollup(i) for i in range(30)], T0)
        ob.append([crossing(i) for i in range(200)], T0 + 1)  # over the bound: events go
        notices = [r for r in all_pending(ob) if r.kind == RecordKind.OUTBOX_DROPPED]
        dropped = ob.stats(T0).dropped_total["event"]
        Syncer(ob, transport).drain(timeout_s=30)
    assert notices and dropped > 0
    assert count(engine, "outbox_drops", "device_id = :d", d=DEVICE) == len(notices)
    assert device(engine, DEVICE)["dropped_at_edge"] == dropped


def test_full_jitter_backoff_spreads_over_zero_to_the_capped_exponential() -> None:
    policy = BackoffPolicy(initial_s=1.0, factor=2.0, cap_s=30.0, jitter_s=0.0)
    assert [full_jitter_delay(n, policy, 1.0) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert full_jitter_delay(3, policy, 0.0) == 0.0
    assert full_jitter_delay(3, policy, 0.25) == 2.0
    assert full_jitter_delay(10**6, policy, 0.5) == 15.0


def test_a_new_outbox_file_resumes_above_what_the_hub_holds(
    tmp_path: Path, hub: HubProcess, hub_db: tuple[str, Engine]
) -> None:
    """The box lost its outbox file: asked at start, the hub's max seq keeps the new records
    from reusing seqs the hub would take for duplicates."""
    engine = hub_db[1]
    lost = tmp_path / "lost.sqlite3"
    with Outbox.open(lost, DEVICE, STORE, reserve_bytes=0) as ob, HttpTransport(hub.url) as t:
        ob.append([rollup(i) for i in range(20)], T0)
        Syncer(ob, t).drain(timeout_s=30)
    fresh = tmp_path / "new.sqlite3"
    with Outbox.open(fresh, DEVICE, STORE, reserve_bytes=0) as ob, HttpTransport(hub.url) as t:
        assert t.hub_max_seq("edge-never-seen") == 0
        assert ob.resume_above(t.hub_max_seq(DEVICE))
        assert not ob.resume_above(5)
        assert ob.append([rollup(i) for i in range(20, 40)], T0) == list(range(21, 41))
        total = Syncer(ob, t).drain(timeout_s=30)
    assert (total.delivered, total.duplicates) == (20, 0)
    assert hub_seqs(engine) == list(range(1, 41))
    stored = rollups(engine)
    for i in range(40):
        assert stored[("door", "line_in", rollup(i).bucket_start)]["count"] == i % 7


def test_unreachable_hub_is_a_retryable_transport_error(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.sqlite3", DEVICE, STORE, reserve_bytes=0) as ob:
        ob.append([rollup(1)], T0)
        down = f"http://127.0.0.1:{free_port()}"
        with HttpTransport(down, timeout_s=2) as t, pytest.raises(TransportError, match="unreach"):
            Syncer(ob, t).sync_once()
        assert [r.seq for r in all_pending(ob)] == [1]
