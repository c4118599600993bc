"""Shelf statuses into the hub and out of ``GET /api/v1/inventory/status``, on a real SQLite
file and a real PostgreSQL database (migrated by Alembic).

Statuses go in through ``ingest_payload`` (both transports' entry point); the newest observation
of each slot wins whatever the delivery order, re-sends change nothing, and a store-scoped key
sees only its own stores' slots.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from cloud_hub.core.config import HubSettings
from cloud_hub.core.security import Role
from cloud_hub.main import create_app
from cloud_hub.models import SHELF_SLOTS
from cloud_hub.services.api_keys import create_api_key
from cloud_hub.services.payloads import ingest_payload
from common.sync import BatchAck, encode_batch
from common.telemetry import ShelfStatus, SlotReport
from tests.cloud_hub.batches import T0, batch, count, dead_letters, record

NOW = float(T0 + 600)
API = "/api/v1"


def status(
    observed_at: float,
    states: dict[str, str],
    store: str = "s1",
    shelf: str = "drinks",
    seen: dict[str, str] | None = None,
) -> ShelfStatus:
    """A status of ``shelf`` (camera cam1) whose slots are in ``states``; slots planned for
    cola; empty slots empty since 10 s before ``observed_at``."""
    seen = seen or {}
    slots = []
    for sid, state in states.items():
        since = None if state == "unknown" else observed_at - 10.0
        product = seen.get(sid) if state == "stocked" else None
        slots.append(
            SlotReport(
                slot_id=sid,
                state=state,  # type: ignore[arg-type]
                product="cola",
                seen_product=product,
                misplaced=product not in (None, "cola"),
                since=since,
                empty_since=since if state == "empty" else None,
            )
        )
    stocked = sum(s == "stocked" for s in states.values()) / len(states)
    known = "unknown" not in states.values()
    return ShelfStatus(
        store_id=store,
        camera_id="cam1",
        shelf_id=shelf,
        observed_at=observed_at,
        status=("ok" if stocked >= 0.5 else "low_stock" if stocked else "out_of_stock")
        if known
        else "unknown",
        stock_level=stocked if known else None,
        low_stock_below=0.5,
        slots=slots,
    )


_seq = itertools.count(1)


def send(engine: Engine, *bodies: ShelfStatus, device: str = "d1", store: str = "s1") -> BatchAck:
    """One batch of statuses with fresh seqs, ingested; its ack."""
    recs = [record(next(_seq), b, kind="shelf_status") for b in bodies]
    ack = ingest_payload(engine, encode_batch(batch(recs, device_id=device, store_id=store)), NOW)
    assert isinstance(ack, BatchAck), ack
    return ack


def slots(engine: Engine) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Stored slot rows by (store, shelf, slot)."""
    with engine.connect() as conn:
        rows = conn.execute(select(SHELF_SLOTS)).mappings().all()
    return {(r["store_id"], r["shelf_id"], r["slot_id"]): dict(r) for r in rows}


def test_the_newest_observation_of_each_slot_wins(hub_db: Engine) -> None:
    t = float(T0)
    send(hub_db, status(t + 20, {"a": "empty", "b": "stocked"}))
    send(hub_db, status(t + 10, {"a": "stocked", "b": "empty"}))  # late: older, ignored
    got = slots(hub_db)
    assert {k[2]: v["state"] for k, v in got.items()} == {"a": "empty", "b": "stocked"}
    a = got[("s1", "drinks", "a")]
    assert a["empty_since"] == t + 10 and a["observed_at"] == t + 20 and a["updated_at"] == NOW
    # Within one batch too, in any order; a shelf with another slot set adds its rows.
    send(
        hub_db,
        status(t + 40, {"a": "stocked", "b": "stocked"}, seen={"a": "fanta"}),
        status(t + 30, {"a": "empty", "b": "empty"}),
        status(t + 35, {"x": "unknown"}, shelf="snacks"),
    )
    got = slots(hub_db)
    assert {(k[1], k[2]): v["state"] for k, v in got.items()} == {
        ("drinks", "a"): "stocked",
        ("drinks", "b"): "stocked",
        ("snacks", "x"): "unknown",
    }
    assert got[("s1", "drinks", "a")]["seen_product"] == "fanta"
    assert got[("s1", "snacks", "x")]["state_since"] is None
    # The same observation time: the later record (higher seq) wins.
    send(hub_db, status(t + 40, {"a": "empty", "b": "stocked"}))
    assert slots(hub_db)[("s1", "drinks", "a")]["state"] == "empty"


def test_a_resent_batch_changes_nothing_and_a_foreign_store_is_dead_lettered(
    hub_db: Engine,
) -> None:
    first = batch([record(900, status(T0 + 5.0, {"a": "stocked"}), kind="shelf_status")])
    newer = batch([record(901, status(T0 + 9.0, {"a": "empty"}), kind="shelf_status")])
    for b in (first, newer, first):
        ack = ingest_payload(hub_db, encode_batch(b), NOW)
        assert isinstance(ack, BatchAck) and ack.dead_lettered == []
    assert slots(hub_db)[("s1", "drinks", "a")]["state"] == "empty"
    foreign = status(T0 + 50.0, {"a": "stocked"}, store="s2")
    ack = send(hub_db, foreign)  # sent by a device of store s1
    assert [d.reason for d in ack.dead_lettered] == ["record is for store 's2', batch is from 's1'"]
    assert slots(hub_db)[("s1", "drinks", "a")]["state"] == "empty"
    broken = status(T0 + 60.0, {"a": "stocked"}).model_dump(mode="json") | {"stock_level": None}
    recs = [record(next(_seq), broken, kind="shelf_status")]
    ack = ingest_payload(hub_db, encode_batch(batch(recs)), NOW)
    assert isinstance(ack, BatchAck)
    assert "shelf_status body does not validate" in ack.dead_lettered[0].reason
    assert slots(hub_db)[("s1", "drinks", "a")]["state"] == "empty"
    assert count(hub_db, "shelf_slots") == 1 and len(dead_letters(hub_db)) == 2


observations = st.lists(
    st.tuples(
        st.integers(0, 5),  # observed_at offset (s): ties happen
        st.sampled_from(["stocked", "empty", "unknown"]),
        st.sampled_from(["a", "b"]),
    ),
    min_size=1,
    max_size=8,
)


@given(obs=observations, order=st.randoms(use_true_random=False), split=st.integers(1, 8))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_delivery_order_ends_with_the_newest_state(
    sqlite_url: str, obs: list[tuple[int, str, str]], order: Any, split: int
) -> None:
    """Statuses delivered in any order, split into batches in any way, leave per slot the
    state of the newest observation (ties: the highest seq)."""
    from cloud_hub.db import create_hub_engine

    engine = create_hub_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            conn.execute(SHELF_SLOTS.delete())
        base = 10_000 * next(_seq)  # seqs unique across examples (one ledger per database)
        recs = [
            record(base + i, status(T0 + dt, {slot: state}), kind="shelf_status")
            for i, (dt, state, slot) in enumerate(obs)
        ]
        want = {}
        for i, (dt, state, slot) in enumerate(obs):
            if slot not in want or (dt, i) > want[slot][0]:
                want[slot] = ((dt, i), state)
        shuffled = list(recs)
        order.shuffle(shuffled)
        for k in range(0, len(shuffled), split):
            part = sorted(shuffled[k : k + split], key=lambda r: r.seq)
            ack = ingest_payload(engine, encode_batch(batch(part)), NOW)
            assert isinstance(ack, BatchAck)
        got = {k[2]: v["state"] for k, v in slots(engine).items()}
        assert got == {slot: s for slot, (_, s) in want.items()}
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite_url", "pg_hub_url"])
def served(request: pytest.FixtureRequest) -> Any:
    """A hub app on a migrated database holding shelves of stores paris and lyon, and keys."""
    from cloud_hub.db import create_hub_engine

    url = request.getfixturevalue(request.param)
    engine = create_hub_engine(url)
    t = float(T0)
    send(engine, status(t + 5, {"a": "stocked", "b": "empty"}, store="paris"), store="paris")
    send(engine, status(t + 6, {"c": "stocked"}, store="paris", shelf="snacks"), store="paris")
    send(engine, status(t + 7, {"a": "empty"}, store="lyon"), store="lyon", device="d2")
    with engine.begin() as conn:
        admin, _ = create_api_key(conn, Role.HQ_ADMIN, now=0.0)
        manager, _ = create_api_key(conn, Role.STORE_MANAGER, ["lyon"], now=0.0)
        integrator, _ = create_api_key(conn, Role.INTEGRATOR, ["paris"], now=0.0)
    engine.dispose()
    with TestClient(create_app(HubSettings(database_url=url))) as client:
        yield client, {"admin": admin, "manager": manager, "integrator": integrator}


def _get(client: TestClient, key: str, **params: Any) -> Any:
    return client.get(
        f"{API}/inventory/status", params=params, headers={"Authorization": f"Bearer {key}"}
    )


def test_inventory_status_lists_slots_in_key_order_and_pages(served: Any) -> None:
    client, keys = served
    r = _get(client, keys["admin"])
    assert r.status_code == 200, r.text
    body = r.json()
    keys_seen = [(i["store_id"], i["shelf_id"], i["slot_id"]) for i in body["items"]]
    assert keys_seen == [
        ("lyon", "drinks", "a"),
        ("paris", "drinks", "a"),
        ("paris", "drinks", "b"),
        ("paris", "snacks", "c"),
    ]
    b = body["items"][2]
    assert b["state"] == "empty" and b["product"] == "cola" and b["misplaced"] is False
    assert datetime.fromisoformat(b["empty_since"]) == datetime.fromtimestamp(T0 - 5.0, UTC)
    assert datetime.fromisoformat(b["updated_at"]) == datetime.fromtimestamp(T0 + 5.0, UTC)
    page = _get(client, keys["admin"], limit=2, offset=1).json()
    assert [i["slot_id"] for i in page["items"]] == ["a", "b"]
    assert (page["total"], page["next_offset"]) == (4, 3)
    only = _get(client, keys["admin"], store_id="paris").json()
    assert {i["store_id"] for i in only["items"]} == {"paris"} and only["total"] == 3


def test_a_store_scoped_key_sees_only_its_stores(served: Any) -> None:
    client, keys = served
    mine = _get(client, keys["manager"]).json()
    assert [(i["store_id"], i["slot_id"]) for i in mine["items"]] == [("lyon", "a")]
    assert mine["total"] == 1
    hidden = _get(client, keys["manager"], store_id="paris")
    assert hidden.status_code == 404  # another store answers like an unknown one
    assert _get(client, keys["integrator"]).status_code == 403  # no inventory role
