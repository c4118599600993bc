"""Store layout rollouts end to end: a real hub process, two real enrolled store boxes of one
store (``retail-edge run`` on the store-aisle footage, syncing over HTTP).

A good layout (a new camera with a counting line) goes canary → all, and the hub then gets
rollups of the new line; a layout whose camera cannot stream is tried on the canary, rolled
back there by itself and at the hub with the edge's reason, the second box never getting it;
a box restarted after applying runs the rolled-out layout again.
"""

from __future__ import annotations

import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from common.signing import generate_key_pair, load_private_key
from common.store_config.layout import CameraLayout, StoreLayout
from edge_agent.sync.enroll import DeviceCredentials, write_credentials
from tests.cloud_hub.hub_process import HubProcess
from tests.edge_agent.twin_bundles import yolox_bundle
from tests.integration.test_rollout_e2e import Edge

AISLE = "videos/store-aisle-detection.gif"  # 2-3 shoppers in view all along
ENTRANCE = "videos/one-by-one-person-detection.mp4"
BOXES = ("s1-a", "s1-b")  # enrolled in this order: s1-a is the canary
API = "/api/v1"


@dataclass
class Store:
    hub: HubProcess
    admin: str
    edges: dict[str, Edge]

    def api(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.admin}"}
        resp = httpx.request(method, self.hub.url + API + path, headers=headers, timeout=60, **kw)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()

    def roll_out(self, layout: StoreLayout, note: str) -> tuple[int, int]:
        body = {"layout": layout.model_dump(mode="json"), "note": note}
        version = int(self.api("POST", "/stores/s1/configs", json=body)["version"])
        rollout = self.api("POST", "/config-rollouts", json={"store_id": "s1", "version": version})
        return version, int(rollout["id"])

    def wait(self, what: str, check: Callable[[], Any], timeout_s: float = 120) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            for e in self.edges.values():
                if e.proc is not None and e.proc.poll() is not None:
                    pytest.fail(f"edge {e.store} exited {e.proc.returncode}:\n{e.text()[-4000:]}")
            time.sleep(0.3)
        logs = "\n".join(f"--- {s}\n{e.text()[-3000:]}" for s, e in self.edges.items())
        pytest.fail(f"timed out waiting for {what}\n{logs}\n--- hub\n{self.hub.log()[-3000:]}")

    def finished(self, rollout_id: int) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            r = self.api("GET", f"/config-rollouts/{rollout_id}")
            return None if r["state"] == "running" else r

        return self.wait(f"config rollout {rollout_id} to finish", check)  # type: ignore[no-any-return]

    def rollup_buckets(self, camera_id: str, target_id: str) -> list[int]:
        """bucket_start of every rollup row of this target at the hub (UNIX s)."""
        engine = sa.create_engine(self.hub.database_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT bucket_start FROM rollups WHERE store_id = 's1' AND "
                        "camera_id = :c AND target_id = :t"
                    ),
                    {"c": camera_id, "t": target_id},
                ).all()
        finally:
            engine.dispose()
        return [int(r[0]) for r in rows]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Iterator[Store]:
    root = tmp_path_factory.mktemp("config-rollout")
    private, public = generate_key_pair(root / "keys" / "hq")
    trusted = root / "edge-keys"
    trusted.mkdir()
    shutil.copy(public, trusted / "hq.pub")
    bundle, _ = yolox_bundle(assets, root / "b" / "1", "1", load_private_key(private))
    url = f"sqlite:///{root / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    with engine.begin() as conn:
        admin, _ = create_api_key(conn, Role.HQ_ADMIN, name="ops-lead", now=time.time())
    engine.dispose()
    hub = HubProcess(root / "hub")
    hub.start(url, env={"RETAIL_HUB_ROLLOUT_GATE_INTERVAL_S": "1"})
    edges: dict[str, Edge] = {}
    try:
        for device in BOXES:
            secret = hub.enroll("s1", device)
            folder = root / device
            folder.mkdir()
            creds = DeviceCredentials(
                hub_url=hub.url, store_id="s1", device_id=device,
                device_secret=secret, enrolled_at=time.time(),  # type: ignore[arg-type]
            )  # fmt: skip
            write_credentials(creds, folder / "credentials.json")
            config = {
                "store_id": "s1",
                "device_id": device,
                "model": {"path": str(bundle), "trusted_keys": str(trusted)},
                "cameras": [{"id": "aisle", "source": str(assets / AISLE), "fps": 3}],
                "outbox": {"path": str(folder / "outbox.sqlite3")},
                "sync": {
                    "transport": "http",
                    "hub_url": hub.url,
                    "credentials_file": str(folder / "credentials.json"),
                },
                "twin": {"poll_interval_s": 0.5, "config_trial_s": 2},
            }
            path = folder / "store.yaml"
            path.write_text(yaml.safe_dump(config))
            edges[device] = Edge(device, path, folder / "edge.log")
            edges[device].start()
        yield Store(hub, admin, edges)
    finally:
        for e in edges.values():
            e.stop()
        hub.stop()


# A second camera (its own source: the boxes' files do not know it) counting at a door, in
# 2 s buckets; the aisle camera keeps its file's source (none in the layout) and gets a line.
DOOR_LINE = {"id": "door", "points": [[0.0, 0.6], [1.0, 0.6]], "inside": [0.5, 0.9]}
AISLE_LINE = {"id": "aisle-mid", "points": [[0.5, 0.0], [0.5, 1.0]], "inside": [0.9, 0.5]}


def _good(assets: Path) -> StoreLayout:
    return StoreLayout(
        cameras=[
            CameraLayout(id="aisle", fps=3, lines=[AISLE_LINE]),
            CameraLayout(
                id="entrance",
                source=str(assets / ENTRANCE),
                fps=3,
                lines=[DOOR_LINE],
                rollup_interval_s=2,
            ),
        ]
    )


def test_good_layout_rolls_out_canary_then_all_and_its_line_reports(
    store: Store, assets: Path
) -> None:
    version, rid = store.roll_out(_good(assets), "door counting")
    done = store.finished(rid)
    assert done["state"] == "completed", (done["reason"], done["devices"])
    assert done["waves"] == [["s1-a"], ["s1-b"]]
    for d in done["devices"]:
        assert d["step"] == "applied" and d["running_version"] == version, d
    # The canary applied it before the second box was given it.
    applied = {d["device_id"]: d["updated_at"] for d in done["devices"]}
    assert applied["s1-a"] < applied["s1-b"]
    # The hub now gets rollups of the new line (2 s buckets; the aisle's are a minute long).
    store.wait("rollups of the door line", lambda: store.rollup_buckets("entrance", "door"))


def test_a_layout_the_canary_cannot_run_is_rolled_back_by_itself(store: Store) -> None:
    dead = StoreLayout(
        cameras=[CameraLayout(id="aisle", source=f"rtsp://127.0.0.1:{_closed_port()}/live")]
    )
    _, rid = store.roll_out(dead, "camera moved to a new NVR")
    done = store.finished(rid)
    assert done["state"] == "rolled_back", done
    assert "s1-a" in done["reason"]
    assert "no enabled camera streamed within the 2 s trial" in done["reason"]
    devices = {d["device_id"]: d for d in done["devices"]}
    assert devices["s1-a"]["step"] == "failed"
    assert devices["s1-a"]["running_version"] == done["from_version"]  # back on the previous
    assert devices["s1-b"]["step"] == "pending"  # never given it


def test_a_restarted_box_runs_the_rolled_out_layout(store: Store) -> None:
    for edge in store.edges.values():  # both at once, then wait for each
        assert edge.proc is not None
        edge.proc.send_signal(signal.SIGTERM)
    for edge in store.edges.values():
        edge.stop()
    restarted = time.time()  # no box runs now: later buckets come from the restarted one
    store.edges["s1-a"].start()
    store.wait(
        "a door-line bucket from the restarted box",
        lambda: [b for b in store.rollup_buckets("entrance", "door") if b >= restarted],
    )
    assert "twin: running layout version 1" in store.edges["s1-a"].text()
