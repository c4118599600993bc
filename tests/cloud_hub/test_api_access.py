"""Every role against every store's data, through a real ``retail-hub serve`` process.

No key sees a store outside its scope (404, as for a store that does not exist), a role never
uses a route it lacks (403), a missing, unknown or revoked key gets 401, ingest takes a device
secret from enrollment and never an API key (nor the other way round), and no key or secret ever
appears in the hub's log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key, revoke_api_key
from common.sync import encode_batch
from common.telemetry import HeatmapRollup, Rollup
from tests.cloud_hub.batches import batch, numbered
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess

API = "/api/v1"
STORES = {"paris": 11, "nyc": 22, "pune": 33}  # each store's distinctive count
T = 1_780_315_200  # 2026-06-01T12:00:00Z
RANGE = {"start": "2026-06-01T00:00:00Z", "end": "2026-06-02T12:00:00Z", "bucket": "day"}
ANALYTICS = ("footfall", "visits", "queues", "occupancy", "heatmap")


@dataclass(frozen=True)
class Holder:
    """A key and what it should be allowed."""

    name: str
    key: str
    role: Role
    stores: frozenset[str]


@dataclass
class Served:
    """The hub process, the keys by name, and the revoked and never-issued keys."""

    hub: HubProcess
    client: httpx.Client
    holders: dict[str, Holder]
    revoked: str
    unknown: str
    device_secrets: dict[str, str]  # by store

    def get(self, path: str, key: str | None, **params: str) -> httpx.Response:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        return self.client.get(API + path, params=params, headers=headers)


def _store_records(store: str, n: int) -> list[BaseModel]:
    common = {"store_id": store, "bucket_start": T, "interval_s": 60}
    counter = {**common, "kind": "counter", "count": n}
    value = float(n)
    samples = {**common, "kind": "samples", "count": 1, "sum": value, "min": value, "max": value}
    return [
        Rollup(camera_id="cam", target_id="door", metric="line_in", **counter),
        Rollup(camera_id="cam", target_id="shelf", metric="visits", **counter),
        Rollup(camera_id="cam", target_id="till", metric="served", **counter),
        Rollup(camera_id="cam", target_id="shelf", metric="occupancy", **samples),
        HeatmapRollup(camera_id="cam", grid_w=1, grid_h=1, person_seconds=[value], **common),
    ]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Three stores with data sent over HTTP ingest by enrolled boxes, and keys of every role."""
    folder: Path = tmp_path_factory.mktemp("hub-access")
    url = f"sqlite:///{folder / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    now = time.time()
    with engine.begin() as conn:
        made = {
            "admin": (Role.HQ_ADMIN, [], False),
            "paris-manager": (Role.STORE_MANAGER, ["paris"], False),
            "us-asia-manager": (Role.STORE_MANAGER, ["nyc", "pune"], False),
            "pune-integrator": (Role.INTEGRATOR, ["pune"], False),
            "bi-integrator": (Role.INTEGRATOR, [], True),
            "future-manager": (Role.STORE_MANAGER, ["lyon"], False),  # no data from lyon yet
        }
        holders = {}
        for name, (role, stores, every) in made.items():
            key, _ = create_api_key(conn, role, stores, all_stores=every, name=name, now=now)
            scope = frozenset(STORES) if role is Role.HQ_ADMIN or every else frozenset(stores)
            holders[name] = Holder(name, key, role, scope)
        revoked, info = create_api_key(conn, Role.HQ_ADMIN, name="gone", now=now)
        revoke_api_key(conn, info.id, now=now)
    engine.dispose()
    hub = HubProcess(folder)
    hub.start(url, env={"RETAIL_HUB_LOG_LEVEL": "DEBUG"})
    secrets = {}
    for store, n in STORES.items():
        secrets[store] = hub.enroll(store, f"{store}-box")
        b = batch(numbered(_store_records(store, n)), device_id=f"{store}-box", store_id=store)
        r = httpx.post(
            hub.url + API + "/ingest/telemetry",
            content=encode_batch(b),
            headers={"Content-Encoding": "gzip", "Authorization": f"Bearer {secrets[store]}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        yield Served(hub, client, holders, revoked, "rcv_" + "x" * 43, secrets)
    assert hub.stop() in CLEAN_EXIT, hub.log()


def _value(route: str, body: dict[str, Any]) -> float:
    """The store's distinctive number as the route reports it (summed over the buckets)."""
    items = body["items"]
    if route == "heatmap":
        return float(sum(sum(i["person_seconds"]) for i in items))
    if route == "footfall":
        return float(sum(b["footfall_in"] for b in items))
    if route == "visits":
        return float(sum(z["visits"] for b in items for z in b["zones"]))
    if route == "queues":
        return float(sum(q["served"] for b in items for q in b["queues"]))
    return float(sum(t["max"] for b in items for t in b["targets"]))


def test_every_role_reads_only_its_own_stores(served: Served) -> None:
    for holder in served.holders.values():
        for store, n in STORES.items():
            visible = store in holder.stores
            for route in ANALYTICS:
                r = served.get(f"/analytics/{route}", holder.key, store_id=store, **RANGE)
                if not visible:
                    assert r.status_code == 404, (holder.name, store, route, r.text)
                    assert r.json() == {"detail": f"store {store!r} not found"}
                    continue
                assert r.status_code == 200, (holder.name, store, route, r.text)
                assert r.json()["store_id"] == store and _value(route, r.json()) == n
            one = served.get(f"/stores/{store}", holder.key)
            assert one.status_code == (200 if visible else 404), (holder.name, store)
            inv = served.get("/inventory/status", holder.key, store_id=store)
            if holder.role is Role.INTEGRATOR:
                assert inv.status_code == 403, (holder.name, store)  # role first: leaks nothing
            else:
                assert inv.status_code == (200 if visible else 404), (holder.name, store)
        existing = holder.stores & set(STORES)  # lyon's manager sees nothing until it exists
        listed = served.get("/stores", holder.key).json()
        assert {s["store_id"] for s in listed["items"]} == existing
        at = "2026-06-01T18:00:00Z"
        ranked = served.get("/analytics/ranking", holder.key, period="day", at=at).json()
        assert {s["store_id"]: s["current"] for s in ranked["items"]} == {
            s: float(STORES[s]) for s in existing
        }


def test_an_unknown_store_and_a_hidden_store_answer_alike(served: Served) -> None:
    manager = served.holders["paris-manager"].key
    hidden = served.get("/analytics/footfall", manager, store_id="nyc", **RANGE)
    absent = served.get("/analytics/footfall", manager, store_id="nowhere", **RANGE)
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json()["detail"].replace("nyc", "X") == absent.json()["detail"].replace(
        "nowhere", "X"
    )
    future = served.holders["future-manager"].key
    assert served.get("/stores", future).json()["items"] == []
    assert served.get("/analytics/ranking", future).json()["items"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/stores",
        "/stores/paris",
        "/analytics/footfall?store_id=paris",
        "/analytics/visits?store_id=paris",
        "/analytics/queues?store_id=paris",
        "/analytics/occupancy?store_id=paris",
        "/analytics/heatmap?store_id=paris",
        "/analytics/ranking",
        "/inventory/status",
    ],
)
def test_missing_unknown_or_revoked_keys_get_401(served: Served, path: str) -> None:
    url = served.hub.url + API + path
    params = RANGE if path.startswith("/analytics/") and "ranking" not in path else {}
    for headers in (
        {},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": f"Bearer {served.unknown}"},
        {"Authorization": f"Bearer {served.revoked}"},
        {"Authorization": "Bearer"},
    ):
        r = httpx.get(url, params=params, headers=headers, timeout=30)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["WWW-Authenticate"] == "Bearer"


def test_only_hq_admins_change_stores(served: Served) -> None:
    body = {"name": "Paris Opéra", "timezone": "Europe/Paris", "group": "FR"}
    url = served.hub.url + API + "/stores/paris"
    for holder in served.holders.values():
        r = httpx.put(url, json=body, headers={"Authorization": f"Bearer {holder.key}"})
        assert r.status_code == (200 if holder.role is Role.HQ_ADMIN else 403), holder.name
    for key in (served.revoked, served.unknown):
        r = httpx.put(url, json=body, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 401
    admin = {"Authorization": f"Bearer {served.holders['admin'].key}"}
    bad = httpx.put(url, json={**body, "timezone": "Europe/Atlantis"}, headers=admin)
    assert bad.status_code == 422 and "IANA" in bad.text
    created = httpx.put(
        served.hub.url + API + "/stores/lyon",
        json={"name": "Lyon", "timezone": "Europe/Paris"},
        headers=admin,
    )
    assert created.status_code == 201 and created.json()["group"] is None
    assert served.get("/stores/paris", served.holders["paris-manager"].key).json() == {
        **served.get("/stores/paris", served.holders["admin"].key).json(),
        "name": "Paris Opéra",
    }
    lyon = served.get("/stores", served.holders["future-manager"].key).json()["items"]
    assert [s["store_id"] for s in lyon] == ["lyon"]


def test_devices_are_listed_only_within_the_key_s_stores(served: Served) -> None:
    for holder in served.holders.values():
        r = served.get("/devices", holder.key)
        assert r.status_code == 200, holder.name
        listed = {(d["store_id"], d["device_id"]) for d in r.json()["items"]}
        want = {(s, f"{s}-box") for s in STORES if s in holder.stores}
        assert listed == want, holder.name
        assert all(d["enrolled_at"] is not None for d in r.json()["items"])


def test_device_secrets_and_api_keys_do_not_stand_in_for_each_other(served: Served) -> None:
    secret = served.device_secrets["paris"]
    assert served.get("/stores", secret).status_code == 401
    b = batch(
        numbered(_store_records("paris", 1), first_seq=100), device_id="paris-box", store_id="paris"
    )
    for key in (served.holders["admin"].key, None):
        headers = {"Content-Encoding": "gzip"} | (
            {} if key is None else {"Authorization": f"Bearer {key}"}
        )
        r = served.client.post(API + "/ingest/telemetry", content=encode_batch(b), headers=headers)
        assert r.status_code == 401, r.text
    # Only HQ admins issue enrollment tokens.
    for holder in served.holders.values():
        r = served.client.post(
            API + "/devices/enrollment-tokens",
            json={"store_id": "paris"},
            headers={"Authorization": f"Bearer {holder.key}"},
        )
        assert r.status_code == (201 if holder.role is Role.HQ_ADMIN else 403), holder.name


def test_no_key_appears_in_the_hub_log(served: Served) -> None:
    keys = [h.key for h in served.holders.values()] + [served.revoked, served.unknown]
    keys += list(served.device_secrets.values())
    for key in keys:  # every key used at least once, valid or not
        served.get("/stores", key)
    log = served.hub.log()
    assert "GET /api/v1/stores" in log  # the access log is there (DEBUG level)
    for key in keys:
        assert key not in log
        assert key[4:20] not in log  # not even a part of it
