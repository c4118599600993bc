"""``/api/v1/alerts`` through a real ``retail-hub serve``: every role against every store's
alerts (another store's alert answers 404 like a missing one, never 200, never a leak), who
acknowledged and resolved recorded by key name and id, filters and paging, threshold rules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from common.sync import encode_batch
from tests.cloud_hub.batches import batch, numbered
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess
from tests.cloud_hub.test_alerts import alert_event

API = "/api/v1"
STORES = ("paris", "nyc", "pune")
T = 1_780_315_200.0  # 2026-06-01T12:00:00Z
RULE = {"metric": "footfall_in", "op": "<", "threshold": 10, "window_s": 3600}


@dataclass(frozen=True)
class Holder:
    """A key, its role, the stores it sees and its id."""

    name: str
    key: str
    role: Role
    stores: frozenset[str]
    key_id: int


@dataclass
class Served:
    """The hub, a client, the keys and each store's alert ids (cam1 at T, cam2 at T + 600)."""

    hub: HubProcess
    client: httpx.Client
    holders: dict[str, Holder]
    alert_ids: dict[str, list[int]]

    def call(self, method: str, path: str, holder: Holder | None, **kw: Any) -> httpx.Response:
        headers = {} if holder is None else {"Authorization": f"Bearer {holder.key}"}
        return self.client.request(method, API + path, headers=headers, **kw)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder: Path = tmp_path_factory.mktemp("hub-alerts")
    url = f"sqlite:///{folder / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    made = {
        "admin": (Role.HQ_ADMIN, [], False),
        "paris-manager": (Role.STORE_MANAGER, ["paris"], False),
        "us-asia-manager": (Role.STORE_MANAGER, ["nyc", "pune"], False),
        "pune-integrator": (Role.INTEGRATOR, ["pune"], False),
        "bi-integrator": (Role.INTEGRATOR, [], True),
        "future-manager": (Role.STORE_MANAGER, ["lyon"], False),
    }
    holders = {}
    with engine.begin() as conn:
        for name, (role, stores, every) in made.items():
            key, info = create_api_key(conn, role, stores, all_stores=every, name=name, now=T)
            scope = frozenset(STORES) if role is Role.HQ_ADMIN or every else frozenset(stores)
            holders[name] = Holder(name, key, role, scope, info.id)
    engine.dispose()
    hub = HubProcess(folder)
    hub.start(url, env={"RETAIL_HUB_RUN_JOBS": "false"})
    for store in STORES:
        events = [
            alert_event("alert_raised", T, camera="cam1", store=store),
            alert_event("alert_raised", T + 600, rule="crowded", camera="cam2", store=store),
        ]
        b = batch(numbered(events), device_id=f"{store}-box", store_id=store)
        secret = hub.enroll(store, f"{store}-box")
        r = httpx.post(
            hub.url + API + "/ingest/telemetry",
            content=encode_batch(b),
            headers={"Content-Encoding": "gzip", "Authorization": f"Bearer {secret}"},
        )
        assert r.status_code == 200, r.text
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        s = Served(hub, client, holders, {})
        items = s.call("GET", "/alerts", holders["admin"]).json()["items"]
        for store in STORES:
            s.alert_ids[store] = [
                a["id"]
                for a in sorted(items, key=lambda a: a["raised_at"])
                if a["store_id"] == store
            ]
        yield s
    assert hub.stop() in CLEAN_EXIT, hub.log()


def test_every_role_reads_only_its_own_stores_alerts(served: Served) -> None:
    missing = 10**6
    for h in served.holders.values():
        listed = served.call("GET", "/alerts", h).json()
        assert {a["store_id"] for a in listed["items"]} == h.stores & set(STORES), h.name
        assert listed["total"] == 2 * len(h.stores & set(STORES))
        for store, ids in served.alert_ids.items():
            visible = store in h.stores
            one = served.call("GET", f"/alerts/{ids[0]}", h)
            by_store = served.call("GET", "/alerts", h, params={"store_id": store})
            if visible:
                assert one.status_code == 200 and one.json()["store_id"] == store
                assert [a["id"] for a in by_store.json()["items"]] == ids[::-1]
                continue
            absent = served.call("GET", f"/alerts/{missing}", h)
            assert one.status_code == absent.status_code == 404, (h.name, store)
            assert one.json()["detail"].replace(str(ids[0]), "N") == absent.json()[
                "detail"
            ].replace(str(missing), "N")
            assert by_store.status_code == 404
            assert by_store.json() == {"detail": f"store {store!r} not found"}


def test_only_a_stores_managers_and_hq_acknowledge_and_resolve(served: Served) -> None:
    order = ["pune-integrator", "bi-integrator", "future-manager", "us-asia-manager",
             "paris-manager", "admin"]  # fmt: skip
    for action in ("ack", "resolve"):
        for name in order:
            h = served.holders[name]
            for store, ids in served.alert_ids.items():
                r = served.call("POST", f"/alerts/{ids[0]}/{action}", h)
                if h.role is Role.INTEGRATOR:
                    assert r.status_code == 403, (name, store)  # the role first: no leak
                elif store not in h.stores:
                    assert r.status_code == 404, (name, store, action)
                    assert r.json() == {"detail": f"alert {ids[0]} not found"}
                else:
                    assert r.status_code == 200, (name, store, r.text)
    admin = served.holders["admin"]
    first_writer = {"paris": "paris-manager", "nyc": "us-asia-manager", "pune": "us-asia-manager"}
    for store, ids in served.alert_ids.items():
        a = served.call("GET", f"/alerts/{ids[0]}", admin).json()
        who = served.holders[first_writer[store]]
        assert (a["state"], a["acknowledged_by"], a["acknowledged_by_key_id"]) == (
            "resolved", who.name, who.key_id,
        )  # fmt: skip
        assert (a["resolved_by"], a["resolved_by_key_id"]) == (who.name, who.key_id)
        assert a["acknowledged_at"] <= a["resolved_at"]
        assert who.key not in str(a)  # the key's name and id, never the key
        untouched = served.call("GET", f"/alerts/{ids[1]}", admin).json()
        assert untouched["state"] == "open" and untouched["acknowledged_by"] is None
    ack_resolved = served.call("POST", f"/alerts/{served.alert_ids['paris'][0]}/ack", admin)
    assert ack_resolved.status_code == 409


def test_filters_and_paging(served: Served) -> None:
    admin = served.holders["admin"]

    def ids(**params: Any) -> list[int]:
        r = served.call("GET", "/alerts", admin, params=params)
        assert r.status_code == 200, r.text
        return [a["id"] for a in r.json()["items"]]

    every = ids()
    assert len(every) == 6
    cam2 = [served.alert_ids[s][1] for s in STORES]
    assert sorted(ids(camera_id="cam2")) == sorted(cam2)
    assert sorted(ids(rule_id="crowded")) == sorted(cam2)
    assert ids(kind="device_offline") == [] and len(ids(kind="edge_rule")) == 6
    assert sorted(ids(start="2026-06-01T12:05:00Z")) == sorted(cam2)
    assert ids(end="2026-06-01T12:05:00+00:00", store_id="nyc") == [served.alert_ids["nyc"][0]]
    page = served.call("GET", "/alerts", admin, params={"limit": 4}).json()
    rest = served.call("GET", "/alerts", admin, params={"limit": 4, "offset": 4}).json()
    assert (page["total"], page["next_offset"], rest["next_offset"]) == (6, 4, None)
    assert [a["id"] for a in page["items"] + rest["items"]] == every
    raised = [a["raised_at"] for a in page["items"] + rest["items"]]
    assert raised == sorted(raised, reverse=True)
    naive = served.call("GET", "/alerts", admin, params={"start": "2026-06-01T12:00:00"})
    assert naive.status_code == 422 and naive.json()["detail"][0]["loc"] == ["query", "start"]
    for path in ("/alerts", f"/alerts/{every[0]}", "/alerts/rules"):
        assert served.call("GET", path, None).status_code == 401


def test_threshold_rules_are_set_by_hq_and_read_within_scope(served: Served) -> None:
    for h in served.holders.values():
        r = served.call("PUT", "/alerts/rules/paris/slow_hour", h, json=RULE)
        assert r.status_code == (201 if h.role is Role.HQ_ADMIN else 403), h.name
    admin = served.holders["admin"]
    again = served.call("PUT", "/alerts/rules/paris/slow_hour", admin, json={**RULE, "op": "<="})
    assert again.status_code == 200 and again.json()["op"] == "<="
    assert served.call("PUT", "/alerts/rules/nyc/busy", admin, json=RULE).status_code == 201
    bad = served.call("PUT", "/alerts/rules/nyc/x", admin, json={**RULE, "metric": "nope"})
    assert bad.status_code == 422
    typo = served.call("PUT", "/alerts/rules/pariss/slow_hour", admin, json=RULE)
    assert typo.status_code == 404 and typo.json() == {"detail": "store 'pariss' not found"}
    for h in served.holders.values():
        listed = served.call("GET", "/alerts/rules", h).json()["items"]
        assert {(r["store_id"], r["rule_id"]) for r in listed} == {
            (s, r) for s, r in (("paris", "slow_hour"), ("nyc", "busy")) if s in h.stores
        }, h.name
        one = served.call("GET", "/alerts/rules", h, params={"store_id": "paris"})
        assert one.status_code == (200 if "paris" in h.stores else 404)
    assert served.call("DELETE", "/alerts/rules/nyc/busy", admin).status_code == 204
    assert served.call("DELETE", "/alerts/rules/nyc/busy", admin).status_code == 404
