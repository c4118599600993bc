"""Alerts at the hub on real databases (SQLite and PostgreSQL): edge alerts opened at ingest in
the batch's transaction and never twice, the device offline rule (missed batches and MQTT
status), store threshold rules, and acknowledging and resolving."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.models import ALERTS, WEBHOOK_DELIVERIES
from cloud_hub.services.alerts import (
    AlertConflictError,
    AlertFilter,
    AlertKind,
    AlertOut,
    AlertState,
    acknowledge_alert,
    list_alerts,
    prune_alerts,
    resolve_alert,
)
from cloud_hub.services.ingest import ingest_batch
from cloud_hub.services.offline import (
    DeviceStatus,
    Presence,
    check_devices,
    offline_since,
    record_status,
)
from cloud_hub.services.payloads import ingest_payload
from cloud_hub.services.thresholds import (
    ThresholdIn,
    check_thresholds,
    delete_threshold,
    in_active_hours,
    put_threshold,
)
from cloud_hub.services.webhooks import WebhookCreate, create_webhook
from common.sync import BatchAck, SyncRecord, encode_batch
from common.telemetry import AnalyticsEvent
from tests.cloud_hub.batches import T0, batch, counter, numbered, record, samples

HUB_KEY = "k" * 40


def alert_event(kind: str, at: float, rule: str = "long_queue", value: float = 6.0,
                camera: str = "cam1", store: str = "s1") -> AnalyticsEvent:  # fmt: skip
    """An edge alert event of ``rule`` on zone till of ``camera``."""
    return AnalyticsEvent(
        kind=kind,
        store_id=store,
        camera_id=camera,
        target_id="till",
        occurred_at=at,
        payload={
            "rule_id": rule,
            "metric": "queue_length",
            "op": ">=",
            "threshold": 5,
            "clear_threshold": 3,
            "value": value,
        },
    )


def ingest(engine: Engine, records: list[SyncRecord], device: str = "d1", store: str = "s1",
           at: float | None = None) -> BatchAck:  # fmt: skip
    """Send ``records`` as one batch through the real ingest entry point."""
    ack = ingest_payload(
        engine,
        encode_batch(batch(records, device_id=device, store_id=store)),
        time.time() if at is None else at,
    )
    assert isinstance(ack, BatchAck), ack
    return ack


def alerts(engine: Engine, **filters: Any) -> list[AlertOut]:
    """Every alert (newest raise first), filtered like the API filters."""
    with engine.connect() as conn:
        return list_alerts(conn, AlertFilter(store_ids=None, **filters), 1000, 0).items


def test_edge_alerts_open_once_per_raise_and_the_edge_clears_them(hub_db: Engine) -> None:
    raised, cleared, again = T0 + 10.0, T0 + 70.0, T0 + 130.0
    records = numbered(
        [
            alert_event("alert_raised", raised, value=6),
            alert_event("alert_cleared", cleared, value=2),
            alert_event("alert_raised", again, value=7),
            alert_event("alert_raised", again, rule="crowded", camera="cam2"),
        ]
    )
    ingest(hub_db, records)
    ingest(hub_db, records)  # a replay: duplicates, nothing new
    # The edge lost its outbox and sent the same raise under a new seq: still one alert.
    ingest(hub_db, [record(50, alert_event("alert_raised", again, value=7))])
    got = alerts(hub_db)
    assert [(a.camera_id, a.rule_id, a.raised_at.timestamp()) for a in got] == [
        ("cam2", "crowded", again),
        ("cam1", "long_queue", again),
        ("cam1", "long_queue", raised),
    ]
    first = got[2]
    assert first.state is AlertState.RESOLVED and first.resolved_by == "edge"
    assert first.cleared_at is not None and first.cleared_at.timestamp() == cleared
    assert (first.kind, first.source, first.device_id, first.target_id, first.value) == (
        AlertKind.EDGE_RULE, "edge", "d1", "till", 6.0,
    )  # fmt: skip
    assert all(a.state is AlertState.OPEN for a in got[:2])
    assert "queue_length of till on camera cam1 is 7" in got[1].message
    # A clear arriving later clears only the newest uncleared raise of its rule and camera.
    ingest(hub_db, [record(51, alert_event("alert_cleared", again + 60, value=1))])
    states = {(a.camera_id, a.raised_at.timestamp()): a.state for a in alerts(hub_db)}
    assert states == {
        ("cam2", again): AlertState.OPEN,
        ("cam1", again): AlertState.RESOLVED,
        ("cam1", raised): AlertState.RESOLVED,
    }


def test_an_edge_alert_commits_or_rolls_back_with_its_batch(hub_db: Engine) -> None:
    b = batch(numbered([alert_event("alert_raised", T0 + 1.0)]))
    with pytest.raises(RuntimeError), hub_db.begin() as conn:
        ingest_batch(conn, b, time.time())
        raise RuntimeError("crash before the commit")
    assert alerts(hub_db) == []
    with hub_db.begin() as conn:
        ingest_batch(conn, b, time.time())
    assert len(alerts(hub_db)) == 1


# -- property: any replay of the edge's stream gives the alerts of one clean delivery ---------


@pytest.fixture(scope="module")
def property_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One migrated SQLite file for every example (each example uses its own device)."""
    folder: Path = tmp_path_factory.mktemp("alerts-property")
    url = f"sqlite:///{folder / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    yield engine
    engine.dispose()


def _model(stream: list[tuple[str, str, float]]) -> set[tuple[str, float, float | None]]:
    """Expected (rule, raised_at, cleared_at) from the events in seq order: each raise opens
    one alert (a repeated raise time opens none), each clear ends the newest uncleared raise
    of its rule at or before it."""
    out: dict[tuple[str, float], float | None] = {}
    for kind, rule, at in stream:
        if kind == "alert_raised":
            out.setdefault((rule, at), None)
            continue
        live = [k for k, c in out.items() if k[0] == rule and k[1] <= at and c is None]
        if live:
            out[max(live, key=lambda k: k[1])] = at
    return {(r, t, c) for (r, t), c in out.items()}


events_st = st.lists(
    st.tuples(
        st.sampled_from(["alert_raised", "alert_cleared"]),
        st.sampled_from(["r1", "r2"]),
        st.integers(0, 20).map(lambda n: T0 + n * 5.0),
    ),
    min_size=1,
    max_size=12,
)
_devices = iter(range(10**6))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=events_st, data=st.data())
def test_replays_and_resends_give_the_alerts_of_one_clean_delivery(
    property_db: Engine, stream: list[tuple[str, str, float]], data: st.DataObject
) -> None:
    device = f"p{next(_devices)}"
    recs = numbered([alert_event(k, at, rule=r) for k, r, at in stream])
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(recs) - 1)), max_size=3)))
    bounds = sorted({0, *[c for c in cuts if c < len(recs)], len(recs)})
    parts = [recs[a:b] for a, b in itertools.pairwise(bounds)]
    sent: list[list[SyncRecord]] = []
    for i, part in enumerate(parts):  # first deliveries in order, re-sends of any earlier part
        sent.append(part)
        for _ in range(data.draw(st.integers(0, 2))):
            sent.append(parts[data.draw(st.integers(0, i))])
    for part in sent:
        ingest(property_db, part, device=device)
    with property_db.connect() as conn:
        rows = conn.execute(
            select(ALERTS.c.rule_id, ALERTS.c.raised_at, ALERTS.c.cleared_at, ALERTS.c.state)
            .where(ALERTS.c.device_id == device)
        ).all()  # fmt: skip
    assert {(r.rule_id, r.raised_at, r.cleared_at) for r in rows} == _model(stream)
    assert all((r.state == "resolved") == (r.cleared_at is not None) for r in rows)


# -- device offline ----------------------------------------------------------------------------


def test_offline_rule() -> None:
    def p(batch_at: float | None, status: str | None = None, at: float | None = None) -> Presence:
        return Presence("d", "s", batch_at, DeviceStatus(status) if status else None, at)

    assert offline_since(p(None), 1e9, 300) is None  # never heard of: nothing to say
    assert offline_since(p(1000.0), 1300.0, 300) is None
    away = offline_since(p(1000.0), 1300.5, 300)
    assert away is not None and away.since == 1000.0 and "300 s" in away.reason
    # The last will: offline at once, since the status arrived...
    will = offline_since(p(1000.0, "offline", 1010.0), 1011.0, 300)
    assert will is not None and will.since == 1010.0 and "last will" in will.reason
    # ... unless a batch came after it (the device is sending: the status is stale).
    assert offline_since(p(1020.0, "offline", 1010.0), 1021.0, 300) is None
    # An online status counts as being heard from, like a batch.
    assert offline_since(p(1000.0, "online", 1200.0), 1450.0, 300) is None
    late = offline_since(p(1000.0, "online", 1200.0), 1500.5, 300)
    assert late is not None and late.since == 1200.0


def _offline(engine: Engine) -> list[AlertOut]:
    return alerts(engine, kind=AlertKind.DEVICE_OFFLINE)


def test_missed_batches_open_one_offline_alert_that_resolves_itself(hub_db: Engine) -> None:
    t = 1_800_000_000.0
    ingest(hub_db, numbered([counter(1)]), device="d1", at=t)
    ingest(hub_db, numbered([counter(1)]), device="d2", at=t + 250)
    with hub_db.begin() as conn:
        assert check_devices(conn, t + 300, 300).opened == 0
    with hub_db.begin() as conn:
        done = check_devices(conn, t + 301, 300)
    assert (done.opened, done.resolved) == (1, 0)
    with hub_db.begin() as conn:  # checked again: still one
        assert check_devices(conn, t + 330, 300).opened == 0
    [a] = _offline(hub_db)
    assert (a.device_id, a.store_id, a.state, a.source) == ("d1", "s1", AlertState.OPEN, "hub")
    assert a.raised_at.timestamp() == t
    ingest(hub_db, numbered([counter(1)], first_seq=2), device="d1", at=t + 400)  # back
    with hub_db.begin() as conn:
        done = check_devices(conn, t + 401, 300)
    assert (done.opened, done.resolved) == (0, 1)
    [a] = _offline(hub_db)
    assert a.state is AlertState.RESOLVED and a.resolved_by == "hub"
    assert a.cleared_at is not None and a.cleared_at.timestamp() == t + 400

    # Away again: a new alert. A person resolves it while the device stays away: it is not
    # reopened for the same absence.
    with hub_db.begin() as conn:
        check_devices(conn, t + 800, 300)
    live = [x for x in _offline(hub_db) if x.state is AlertState.OPEN]
    assert sorted((x.device_id, x.raised_at.timestamp()) for x in live) == [
        ("d1", t + 400),
        ("d2", t + 250),
    ]
    d1 = next(x for x in live if x.device_id == "d1")
    with hub_db.begin() as conn:
        resolve_alert(conn, d1.id, "ops", 7, t + 810)
        assert check_devices(conn, t + 900, 300).opened == 0
    assert len([x for x in _offline(hub_db) if x.device_id == "d1"]) == 2


def test_mqtt_status_offline_opens_at_once_and_online_resolves(hub_db: Engine) -> None:
    t = float(int(time.time()))
    ingest(hub_db, numbered([counter(1)]), device="d1", at=t)
    with hub_db.begin() as conn:
        record_status(conn, "s1", "d1", DeviceStatus.OFFLINE, t + 5)
        assert check_devices(conn, t + 5, 300, ["d1"]).opened == 1
        # The retained offline seen again (a worker re-subscribing) changes nothing.
        record_status(conn, "s1", "d1", DeviceStatus.OFFLINE, t + 60)
        assert check_devices(conn, t + 60, 300, ["d1"]).opened == 0
    [a] = _offline(hub_db)
    assert a.raised_at.timestamp() == t + 5 and "last will" in a.message
    with hub_db.begin() as conn:
        record_status(conn, "s1", "d1", DeviceStatus.ONLINE, t + 70)
        assert check_devices(conn, t + 70, 300, ["d1"]).resolved == 1
    [a] = _offline(hub_db)
    assert a.state is AlertState.RESOLVED and a.cleared_at is not None
    assert a.cleared_at.timestamp() == t + 70


# -- store thresholds --------------------------------------------------------------------------


def _check(engine: Engine, now: float) -> tuple[int, int]:
    with engine.begin() as conn:
        done = check_thresholds(conn, now, lag_s=120)
    return done.opened, done.resolved


def test_a_store_threshold_opens_on_a_breach_and_resolves_itself(hub_db: Engine) -> None:
    now = T0 + 600 + 120  # windows end at T0 + 600
    rule = ThresholdIn(metric="footfall_in", op="<", threshold=5, window_s=3600)
    with hub_db.begin() as conn:
        put_threshold(conn, "s1", "slow_hour", rule, now)
    ingest(hub_db, numbered([counter(2, T0), counter(1, T0 + 60, target="exit")]))
    ingest(hub_db, numbered([counter(50, T0 + 600)], first_seq=3))  # after the window's end
    assert _check(hub_db, now) == (1, 0)
    assert _check(hub_db, now + 30) == (0, 0)  # still breached: the same alert
    [a] = alerts(hub_db, kind=AlertKind.STORE_THRESHOLD)
    assert (a.rule_id, a.metric, a.op, a.threshold, a.value) == (
        "slow_hour", "footfall_in", "<", 5.0, 3.0,
    )  # fmt: skip
    assert a.raised_at.timestamp() == T0 + 600 and a.state is AlertState.OPEN
    # The window moves on a minute and takes in 50 more crossings: no longer below 5.
    assert _check(hub_db, now + 60) == (0, 1)
    [a] = alerts(hub_db, kind=AlertKind.STORE_THRESHOLD)
    assert a.state is AlertState.RESOLVED and a.resolved_by == "hub"


def test_threshold_on_samples_waits_for_samples_and_respects_opening_hours(
    hub_db: Engine,
) -> None:
    now = T0 + 600 + 120
    wait = ThresholdIn(metric="mean_wait_s", op=">", threshold=100, window_s=900)
    with hub_db.begin() as conn:
        put_threshold(conn, "s1", "long_wait", wait, now)
    assert _check(hub_db, now) == (0, 0)  # no samples: nothing to judge by
    ingest(hub_db, numbered([samples([120.0, 200.0], metric="queue_wait_s", bucket_start=T0)]))
    assert _check(hub_db, now) == (1, 0)
    [a] = alerts(hub_db, kind=AlertKind.STORE_THRESHOLD)
    assert a.value == 160.0
    # Restricted to hours that exclude the window's end (T0 + 600 is 22:24 UTC): it ends.
    end_hour = time.gmtime(T0 + 600).tm_hour
    hours = {"active_from_hour": (end_hour + 1) % 24, "active_to_hour": (end_hour + 3) % 24 or 24}
    closed = ThresholdIn(**{**wait.model_dump(), **hours})
    with hub_db.begin() as conn:
        put_threshold(conn, "s1", "long_wait", closed, now)  # a replaced rule starts afresh
    assert alerts(hub_db, kind=AlertKind.STORE_THRESHOLD)[0].state is AlertState.RESOLVED
    assert _check(hub_db, now) == (0, 0)
    with hub_db.begin() as conn:
        assert delete_threshold(conn, "s1", "long_wait", now)
        assert not delete_threshold(conn, "s1", "long_wait", now)


def test_active_hours_wrap_past_midnight() -> None:
    assert [h for h in range(24) if in_active_hours(h, 22, 2)] == [0, 1, 22, 23]
    assert [h for h in range(24) if in_active_hours(h, 9, 12)] == [9, 10, 11]
    assert all(in_active_hours(h, None, None) for h in range(24))
    with pytest.raises(ValueError, match="come together"):
        ThresholdIn(metric="visits", op="<", threshold=1, active_from_hour=9)


# -- people acknowledge and resolve ------------------------------------------------------------


def test_ack_and_resolve_record_who_and_queue_one_webhook_event_each(hub_db: Engine) -> None:
    with hub_db.begin() as conn:
        create_webhook(conn, WebhookCreate(url="http://127.0.0.1:9/hook"), HUB_KEY, "ops", 1.0)
    ingest(hub_db, numbered([alert_event("alert_raised", T0 + 1.0)]))
    [a] = alerts(hub_db)
    with hub_db.begin() as conn:
        acked = acknowledge_alert(conn, a.id, "paris-manager", 4, 2000.0)
        again = acknowledge_alert(conn, a.id, "someone-else", 5, 2001.0)
    assert acked is not None and again is not None
    assert (again.state, again.acknowledged_by, again.acknowledged_by_key_id) == (
        AlertState.ACKNOWLEDGED, "paris-manager", 4,
    )  # fmt: skip
    assert again.acknowledged_at is not None and again.acknowledged_at.timestamp() == 2000.0
    with hub_db.begin() as conn:
        done = resolve_alert(conn, a.id, "hq-ops", 1, 2100.0)
        resolve_alert(conn, a.id, "hq-ops", 1, 2200.0)  # again: nothing changes
    assert done is not None and (done.state, done.resolved_by, done.resolved_by_key_id) == (
        AlertState.RESOLVED, "hq-ops", 1,
    )  # fmt: skip
    assert done.resolved_at is not None and done.resolved_at.timestamp() == 2100.0
    with pytest.raises(AlertConflictError, match="resolved"), hub_db.begin() as conn:
        acknowledge_alert(conn, a.id, "late", 9, 2300.0)
    with hub_db.begin() as conn:
        assert acknowledge_alert(conn, 10**6, "x", 1, 1.0) is None
        events = conn.execute(
            select(WEBHOOK_DELIVERIES.c.event).order_by(WEBHOOK_DELIVERIES.c.id)
        ).scalars().all()  # fmt: skip
    assert events == ["alert.opened", "alert.acknowledged", "alert.resolved"]


def test_long_resolved_alerts_are_pruned_and_live_ones_stay(hub_db: Engine) -> None:
    ingest(hub_db, numbered([alert_event("alert_raised", T0 + 1.0, rule=r) for r in "abc"]))
    a, b, c = sorted(alerts(hub_db), key=lambda x: x.rule_id)
    with hub_db.begin() as conn:
        resolve_alert(conn, a.id, "hq-ops", 1, 1000.0)
        resolve_alert(conn, b.id, "hq-ops", 1, 5000.0)
        acknowledge_alert(conn, c.id, "hq-ops", 1, 100.0)  # live, and older than both
    with hub_db.begin() as conn:
        assert prune_alerts(conn, 4000.0) == 1
    assert sorted(x.rule_id for x in alerts(hub_db)) == ["b", "c"]
    with hub_db.begin() as conn:
        assert prune_alerts(conn, 10**10) == 1
    assert [x.rule_id for x in alerts(hub_db)] == ["c"]
