"""The desired state over MQTT end to end: an enrolled store box (``retail-edge run`` on the
store-aisle footage) syncing over MQTT with ``twin.poll_interval_s: 3600`` follows a model
rollout within seconds, because the hub worker publishes the new desired state as the retained
message on the box's ``desired`` topic. Real hub process and ``retail-hub worker``, Mosquitto
with the TLS listener and ACLs of ``retail-hub broker-config``, real signed YOLOX-nano bundles;
the rollout helpers are those of test_rollout_e2e.py.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from common.bundle import archive_bytes
from common.signing import generate_key_pair, load_private_key
from common.topics import DeviceTopics
from edge_agent.sync.enroll import DeviceCredentials, write_credentials
from tests.cloud_hub.hub_process import HubProcess
from tests.cloud_hub.test_desired_publish import worker_for
from tests.deploy.test_broker_config import HUB_PASSWORD, HUB_USER, Broker, Peer, Setup
from tests.edge_agent.twin_bundles import yolox_bundle
from tests.integration.test_rollout_e2e import VIDEO, Edge, Fleet
from tests.pki import TestCA

BOX = DeviceTopics(store_id="s1", device_id="s1-box")


@dataclass
class MqttFleet:
    fleet: Fleet
    setup: Setup


@pytest.fixture(scope="module")
def mqtt_fleet(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Iterator[MqttFleet]:
    root = tmp_path_factory.mktemp("desired-e2e")
    private, public = generate_key_pair(root / "keys" / "hq")
    trusted = root / "trusted"
    trusted.mkdir()
    shutil.copy(public, trusted / "hq.pub")
    key = load_private_key(private)
    v1, _ = yolox_bundle(assets, root / "b" / "1", "1", key)  # the box's config model
    v2, _ = yolox_bundle(assets, root / "b" / "2", "2", key)
    url = f"sqlite:///{root / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    with engine.begin() as conn:
        admin, _ = create_api_key(conn, Role.HQ_ADMIN, name="ml-lead", now=time.time())
    engine.dispose()
    hub = HubProcess(root / "hub")
    hub.start(
        url,
        env={
            "RETAIL_HUB_TRUSTED_KEYS_DIR": str(trusted),
            "RETAIL_HUB_MODELS_DIR": str(root / "models"),
            "RETAIL_HUB_ROLLOUT_GATE_INTERVAL_S": "1",
        },
    )
    edge: Edge | None = None
    try:
        secret = hub.enroll(BOX.store_id, BOX.device_id)
        folder = root / "s1"
        folder.mkdir()
        creds = DeviceCredentials(
            hub_url=hub.url, store_id=BOX.store_id, device_id=BOX.device_id,
            device_secret=secret, enrolled_at=time.time(),  # type: ignore[arg-type]
        )  # fmt: skip
        write_credentials(creds, folder / "credentials.json")
        ca = TestCA(root / "pki")
        broker = Broker(root, hub, ca)
        broker.generate()
        broker.start()
        setup = Setup(hub, broker, ca, {BOX.device_id: secret})
        worker = worker_for(setup)
        worker.start()
        try:
            config = {
                "store_id": BOX.store_id,
                "device_id": BOX.device_id,
                "model": {"path": str(v1), "trusted_keys": str(trusted)},
                "cameras": [{"id": "aisle", "source": str(assets / VIDEO), "fps": 3}],
                "outbox": {"path": str(folder / "outbox.sqlite3")},
                "sync": {
                    "transport": "mqtt",
                    "hub_url": hub.url,
                    "mqtt_host": "127.0.0.1",
                    "mqtt_port": broker.port,
                    "mqtt_ca_file": str(ca.ca_file),
                    "credentials_file": str(folder / "credentials.json"),
                },
                "twin": {"poll_interval_s": 3600, "smoke_frames": 3},
            }
            path = folder / "store.yaml"
            path.write_text(yaml.safe_dump(config))
            edge = Edge(BOX.store_id, path, folder / "edge.log")
            edge.start()
            fleet = Fleet(hub, admin, {BOX.store_id: edge}, root / "models")
            resp = fleet.api("POST", "/models", content=archive_bytes(v2))
            assert resp.status_code == 201, resp.text
            yield MqttFleet(fleet, setup)
        finally:
            if edge is not None:
                edge.stop()
            worker.stop()
            broker.stop()
    finally:
        hub.stop()


def test_a_box_polling_hourly_follows_a_rollout_over_mqtt(mqtt_fleet: MqttFleet) -> None:
    fleet, edge = mqtt_fleet.fleet, mqtt_fleet.fleet.edges[BOX.store_id]
    # The reconciler's poll at start is done and the box is on the broker: from here on, only
    # the retained MQTT message can bring a change within the hour.
    first_poll = f"GET /api/v1/devices/{BOX.device_id}/desired"
    fleet.wait("the box's first poll", lambda: first_poll in fleet.hub.log())
    fleet.wait("the box on the broker", lambda: "MQTT edge-s1-s1-box connected" in edge.text())
    # A retained payload that is no desired state is logged and ignored; the box follows on.
    hub_user = Peer(mqtt_fleet.setup, HUB_USER, HUB_PASSWORD)
    try:
        assert not hub_user.publish(BOX.desired, b"not a desired state", retain=True).is_failure
    finally:
        hub_user.close()
    fleet.wait("garbage ignored", lambda: "desired state over MQTT ignored" in edge.text())

    rid = fleet.rollout("2", [BOX.store_id], canary=BOX.store_id)

    def canary_step() -> str | None:
        (device,) = fleet.get(rid)["devices"]
        assert device["step"] != "failed", device
        return "switched" if device["step"] == "switched" else None

    fleet.wait("the canary switched", canary_step)
    assert "desired state revision 1 arrived over MQTT" in edge.text()
