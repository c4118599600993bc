"""Store layout versions and config rollouts through a real ``retail-hub serve`` process
(SQLite), with devices enrolled the way a store box enrolls: a refused layout is a 422 naming
the field and stores nothing, versions are numbered per store and never change, only HQ admins
create and roll out, no key reads another store's layouts or rollouts, a device reports only
for itself, and a rollout completes on ``applied`` reports or rolls back on ``failed`` (the
devices' desired layout, at ``/desired``, is the previous one again with a higher revision)."""

from __future__ import annotations

import time
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
from common.store_config.layout import StoreLayout
from tests.cloud_hub.hub_process import CLEAN_EXIT, HubProcess
from tests.cloud_hub.store_layouts import layout_json

API = "/api/v1"
DEVICES = {"paris": ["paris-2", "paris-1"], "nyc": ["nyc-1"], "rome": ["rome-1"]}  # enroll order
KEYS = {  # name: role, stores
    "admin": (Role.HQ_ADMIN, []),
    "paris-manager": (Role.STORE_MANAGER, ["paris"]),
    "nyc-rome-manager": (Role.STORE_MANAGER, ["nyc", "rome"]),
    "paris-integrator": (Role.INTEGRATOR, ["paris"]),
}


@dataclass
class Hub:
    """The hub process, API keys by name and device secrets by device id."""

    process: HubProcess
    client: httpx.Client
    keys: dict[str, str]
    secrets: dict[str, str]

    def call(self, method: str, path: str, key: str | None = "admin", **kw: Any) -> httpx.Response:
        """An API call with the named key's (or the device's) bearer token (None: no token)."""
        token = None if key is None else self.keys.get(key) or self.secrets[key]
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return self.client.request(method, API + path, headers=headers, **kw)

    def desired(self, device: str) -> dict[str, Any]:
        """The device's desired state, read as the device."""
        r = self.call("GET", f"/devices/{device}/desired", device)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def report(self, device: str, rollout: int, step: str, version: int, **kw: Any) -> None:
        """A layout report of ``device``, sent as the device (204 expected)."""
        running = kw.pop("running", version if step == "applied" else None)
        body = {"rollout_id": rollout, "version": version, "step": step, "running_version": running}
        r = self.call("POST", f"/devices/{device}/reported/config", device, json={**body, **kw})
        assert r.status_code == 204, r.text


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    folder: Path = tmp_path_factory.mktemp("hub-configs")
    url = f"sqlite:///{folder / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    with engine.begin() as conn:
        keys = {
            name: create_api_key(conn, role, stores, name=name, now=time.time())[0]
            for name, (role, stores) in KEYS.items()
        }
    engine.dispose()
    process = HubProcess(folder)
    process.start(url, env={"RETAIL_HUB_RUN_JOBS": "false"})
    secrets = {d: process.enroll(s, d) for s, devices in DEVICES.items() for d in devices}
    with httpx.Client(base_url=process.url, timeout=30) as client:
        yield Hub(process, client, keys, secrets)
    assert process.stop() in CLEAN_EXIT, process.log()


def _version(hub: Hub, store: str, **kw: Any) -> dict[str, Any]:
    r = hub.call("POST", f"/stores/{store}/configs", json={"layout": layout_json(**kw)})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_refused_layout_is_a_422_naming_the_field_and_stores_nothing(hub: Hub) -> None:
    def bad(change: Any) -> dict[str, Any]:
        layout = layout_json()
        change(layout["cameras"][0])
        return layout

    cases = [
        (bad(lambda c: c["lines"][0].update(points=[[0.1, 0.6], [1.4, 0.6]])), "lines", 0),
        (bad(lambda c: c.update(source="rtsp://admin:hunter2@10.0.0.7/s1")), "source", None),
        (bad(lambda c: c["alerts"][0].update(target="tills")), "alerts", 0),
        (bad(lambda c: c.update(frame_rate=4)), "frame_rate", None),
        ({**layout_json(), "timezone": "Europe/Atlantis"}, "timezone", None),
        # A camera for a box that is not enrolled in the store (here: another store's box).
        (bad(lambda c: c.update(devices=["rome-1", "paris-1"])), "devices", 1),
    ]
    for layout, field, index in cases:
        r = hub.call("POST", "/stores/rome/configs", json={"layout": layout})
        assert r.status_code == 422, r.text
        locs = [e["loc"] for e in r.json()["detail"]]
        assert any(
            loc[:2] == ["body", "layout"]
            and field in loc
            and (index is None or loc[loc.index(field) + 1] == index)
            for loc in locs
        ), (field, locs)
        assert "hunter2" not in r.text
    listed = hub.call("GET", "/stores/rome/configs").json()
    assert listed["total"] == 0 and listed["items"] == []


def test_versions_are_numbered_per_store_hashed_and_immutable(hub: Hub) -> None:
    hub.call("PUT", "/stores/lyon", json={"name": "Lyon", "timezone": "Europe/Paris"})
    hub.call("PUT", "/stores/oslo", json={"name": "Oslo", "timezone": "Europe/Oslo"})
    made = [_version(hub, "lyon", queue_alert=a) for a in (3.0, 4.0)] + [_version(hub, "oslo")]
    assert [(m["store_id"], m["version"]) for m in made] == [("lyon", 1), ("lyon", 2), ("oslo", 1)]
    for m in made:
        assert m["sha256"] == StoreLayout.model_validate(m["layout"]).sha256()
        assert m["created_by"] == "admin"
        assert hub.call("GET", f"/stores/{m['store_id']}/configs/{m['version']}").json() == m
    assert made[0]["sha256"] != made[1]["sha256"]
    listed = hub.call("GET", "/stores/lyon/configs").json()
    assert [i["version"] for i in listed["items"]] == [2, 1] and listed["total"] == 2
    for method in ("PUT", "PATCH", "DELETE"):  # no route changes or removes a version
        r = hub.call(method, "/stores/lyon/configs/1", json={"layout": layout_json()})
        assert r.status_code == 405, (method, r.text)
    assert hub.call("GET", "/stores/lyon/configs/1").json() == made[0]
    assert hub.call("GET", "/stores/lyon/configs/3").status_code == 404
    absent = hub.call("POST", "/stores/atlantis/configs", json={"layout": layout_json()})
    assert absent.status_code == 404 and "PUT /api/v1/stores/atlantis" in absent.text


def test_rollout_canary_then_all_then_a_failure_rolls_back(hub: Hub) -> None:
    v1, v2 = _version(hub, "paris", queue_alert=4.0), _version(hub, "paris", queue_alert=6.0)
    r = hub.call("POST", "/config-rollouts", json={"store_id": "paris", "version": v1["version"]})
    assert r.status_code == 201, r.text
    first = r.json()
    rid = first["id"]
    assert first["waves"] == [["paris-2"], ["paris-1"]]  # the first enrolled is the canary
    assert first["state"] == "running" and first["from_version"] is None
    canary = hub.desired("paris-2")
    assert canary["config"]["version"] == v1["version"] and canary["config_rollout_id"] == rid
    assert canary["config"]["sha256"] == v1["sha256"]
    assert StoreLayout.model_validate(canary["config"]["layout"]).sha256() == v1["sha256"]
    assert hub.desired("paris-1")["config"] is None
    hub.report("paris-2", rid, "validated", v1["version"])
    hub.report("paris-2", rid, "applied", v1["version"])
    assert hub.desired("paris-1")["config"]["version"] == v1["version"]
    hub.report("paris-1", rid, "applied", v1["version"])
    done = hub.call("GET", f"/config-rollouts/{rid}").json()
    assert done["state"] == "completed"
    assert [(d["device_id"], d["step"], d["running_version"]) for d in done["devices"]] == [
        ("paris-2", "applied", 1),
        ("paris-1", "applied", 1),
    ]
    assert done["events"][0]["actor"] == "admin" and done["events"][-1]["action"] == "completed"

    body = {"store_id": "paris", "version": v2["version"], "wave_timeout_s": 300}
    second = hub.call("POST", "/config-rollouts", json=body).json()
    assert second["from_version"] == v1["version"]
    before = hub.desired("paris-2")["revision"]
    hub.report(
        "paris-2", second["id"], "failed", v2["version"], running=v1["version"],
        reason="camera entrance: zone till: the agent could not start",
    )  # fmt: skip
    back = hub.desired("paris-2")
    assert back["config"]["version"] == v1["version"] and back["revision"] == before + 1
    assert hub.desired("paris-1")["config"]["version"] == v1["version"]  # never reached
    rolled = hub.call("GET", f"/config-rollouts/{second['id']}").json()
    assert rolled["state"] == "rolled_back" and "could not start" in rolled["reason"]
    listed = hub.call("GET", "/config-rollouts", params={"store_id": "paris"}).json()["items"]
    assert [i["id"] for i in listed] == [second["id"], rid]


def test_one_running_rollout_per_store_and_abort(hub: Hub) -> None:
    v = _version(hub, "nyc")
    body = {"store_id": "nyc", "version": v["version"]}
    rid = hub.call("POST", "/config-rollouts", json=body).json()["id"]
    busy = hub.call("POST", "/config-rollouts", json=body)
    assert busy.status_code == 409 and f"config rollout {rid} is running" in busy.text
    missing = hub.call("POST", "/config-rollouts", json={**body, "version": 99})
    assert missing.status_code == 404
    r = hub.call("POST", f"/config-rollouts/{rid}/abort", json={"reason": "wrong store"})
    assert r.status_code == 200 and r.json()["state"] == "aborted"
    assert r.json()["events"][-1]["actor"] == "admin"
    assert hub.desired("nyc-1")["config"] is None  # its file's layout again
    assert hub.call("POST", f"/config-rollouts/{rid}/abort").status_code == 409
    assert hub.call("POST", "/config-rollouts", json=body).status_code == 201


def test_a_device_reports_only_for_itself(hub: Hub) -> None:
    v = _version(hub, "rome")
    rid = hub.call("POST", "/config-rollouts", json={"store_id": "rome", "version": v["version"]})
    rollout = rid.json()["id"]
    body = {"rollout_id": rollout, "version": v["version"], "step": "failed", "reason": "x"}
    body["running_version"] = None
    path = "/devices/rome-1/reported/config"
    for key, code in (("paris-1", 403), (None, 401), ("admin", 401)):
        r = hub.call("POST", path, key, json=body)
        assert r.status_code == code, (key, r.text)
    # paris-1 reporting as itself about rome's rollout changes nothing either.
    hub.report("paris-1", rollout, "failed", v["version"], reason="not mine")
    got = hub.call("GET", f"/config-rollouts/{rollout}").json()
    assert got["state"] == "running" and got["devices"][0]["step"] == "pending"
    hub.call("POST", f"/config-rollouts/{rollout}/abort")


def test_only_hq_admins_write_and_no_key_reads_another_store(hub: Hub) -> None:
    for store in DEVICES:  # a version and a finished rollout in each store
        _version(hub, store)
        started = hub.call("POST", "/config-rollouts", json={"store_id": store, "version": 1})
        if started.status_code == 201:
            hub.call("POST", f"/config-rollouts/{started.json()['id']}/abort")
    rollouts = {r["id"]: r["store_id"] for r in hub.call("GET", "/config-rollouts").json()["items"]}
    assert set(rollouts.values()) == set(DEVICES)
    for name, (role, stores) in KEYS.items():
        scope = set(DEVICES) if role is Role.HQ_ADMIN else set(stores)
        reads = role is not Role.INTEGRATOR  # integrators read analytics, not layouts
        for store in DEVICES:
            for path in (f"/stores/{store}/configs", f"/stores/{store}/configs/1"):
                r = hub.call("GET", path, name)
                want = 403 if not reads else 200 if store in scope else 404
                assert r.status_code == want, (name, path, r.text)
        listed = hub.call("GET", "/config-rollouts", name)
        if not reads:
            assert listed.status_code == 403
            continue
        assert {i["store_id"] for i in listed.json()["items"]} == scope & set(rollouts.values())
        for rid, store in rollouts.items():
            r = hub.call("GET", f"/config-rollouts/{rid}", name)
            assert r.status_code == (200 if store in scope else 404), (name, rid)
        if role is Role.HQ_ADMIN:
            continue
        writes = [
            ("POST", f"/stores/{stores[0]}/configs", {"layout": layout_json()}),
            ("POST", "/config-rollouts", {"store_id": stores[0], "version": 1}),
            ("POST", f"/config-rollouts/{next(iter(rollouts))}/abort", None),
        ]
        for method, path, body in writes:
            r = hub.call(method, path, name, json=body)
            assert r.status_code == 403, (name, path, r.text)
