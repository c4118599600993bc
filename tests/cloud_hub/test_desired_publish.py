"""The hub worker publishes each device's desired state as the retained message on its MQTT
``desired`` topic: a real ``retail-hub worker`` (publishing every second) on a real Mosquitto
with the TLS listener and ACLs of ``retail-hub broker-config``, devices enrolled through a real
hub process, each test reading the topic as the device itself (user = device id).

Each revision is published once and retained, so a device subscribing later gets the newest;
a change made while the broker is down is published once it is back; a revoked device's
retained message is cleared. The service's own choice of what to publish is also run on
PostgreSQL and SQLite against the plain test broker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import httpx
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import Engine, func, insert, select

from cloud_hub.core.config import HubSettings
from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.models import DEVICE_CREDENTIALS, DEVICE_TWINS, JOB_RUNS
from cloud_hub.services.api_keys import create_api_key
from cloud_hub.services.desired_publish import (
    BrokerUnavailable,
    PublishResult,
    RetainedMessage,
    publish_desired,
    publish_retained,
)
from cloud_hub.services.enrollment import revoke_device
from cloud_hub.services.rollouts import desired_state, set_desired
from common.topics import DeviceTopics
from common.twin import DesiredState
from tests.cloud_hub.hub_process import HubProcess
from tests.cloud_hub.mqtt_clients import WorkerProcess
from tests.deploy.test_broker_config import HUB_PASSWORD, HUB_USER, Broker, Peer, Setup
from tests.pki import TestCA
from tests.services import MosquittoProcess, wait_for

A = DeviceTopics(store_id="s1", device_id="devA")
C = DeviceTopics(store_id="s1", device_id="devC")  # revoked by its test
JOB = "desired_publish"


@dataclass
class Hub:
    setup: Setup
    worker: WorkerProcess
    engine: Engine


def worker_for(setup: Setup, workdir_name: str = "worker") -> WorkerProcess:
    """``retail-hub worker`` logged in as the hub user, publishing desired states every 1 s."""
    worker = WorkerProcess(
        setup.broker.workdir / workdir_name, setup.broker.port, setup.hub.database_url
    )
    worker.env.update(
        {
            "RETAIL_HUB_MQTT_USERNAME": HUB_USER,
            "RETAIL_HUB_MQTT_PASSWORD": HUB_PASSWORD,
            "RETAIL_HUB_MQTT_TLS_CA_FILE": str(setup.ca.ca_file),
            "RETAIL_HUB_DESIRED_PUBLISH_INTERVAL_S": "1",
            "RETAIL_HUB_VIDEO_JOBS": "false",
        }
    )
    return worker


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("desired")
    url = f"sqlite:///{workdir / 'hub.db'}"
    upgrade_database(url)
    api = HubProcess(workdir / "hub")
    api.start(url)
    try:
        secrets = {t.device_id: api.enroll(t.store_id, t.device_id) for t in (A, C)}
        ca = TestCA(workdir / "pki")
        broker = Broker(workdir, api, ca)
        broker.generate()
        broker.start()
        setup = Setup(api, broker, ca, secrets)
        worker = worker_for(setup)
        worker.start()
        engine = create_hub_engine(url)
        try:
            yield Hub(setup, worker, engine)
        finally:
            engine.dispose()
            worker.stop()
            broker.stop()
    finally:
        api.stop()


class DesiredWatcher(Peer):
    """A device's own MQTT client subscribed to its desired topic: (payload, retain flag) of
    every message."""

    def __init__(self, setup: Setup, device: DeviceTopics) -> None:
        self.received: list[tuple[bytes, bool]] = []
        self._seen = threading.Lock()
        super().__init__(setup, device.device_id, setup.secrets[device.device_id])
        assert self.connected
        self.subscribe(device.desired)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._seen:
            self.received.append((bytes(msg.payload), bool(msg.retain)))

    def got(self) -> list[tuple[bytes, bool]]:
        with self._seen:
            return list(self.received)

    def revisions(self) -> list[int]:
        return [DesiredState.model_validate_json(p).revision for p, _ in self.got() if p]


def bump(engine: Engine, device: DeviceTopics) -> None:
    """Change the device's desired state (its config's model), as a rollout does."""
    with engine.begin() as conn:
        set_desired(conn, device.device_id, device.store_id, None, None, None, time.time())


def revision(engine: Engine, device: DeviceTopics) -> int:
    t = DEVICE_TWINS.c
    with engine.connect() as conn:
        return int(
            conn.execute(select(t.revision).where(t.device_id == device.device_id)).scalar_one()
        )


def published_revision(engine: Engine, device: DeviceTopics) -> int | None:
    t = DEVICE_TWINS.c
    with engine.connect() as conn:
        got = conn.execute(
            select(t.published_revision).where(t.device_id == device.device_id)
        ).scalar_one()
    return None if got is None else int(got)


def periods_run_since(engine: Engine, since: float) -> int:
    """Finished periods of the publish job claimed after ``since`` (UNIX s)."""
    c = JOB_RUNS.c
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    c.job == JOB, c.claimed_at > since, c.finished_at.is_not(None)
                )
            ).scalar_one()
        )


def test_each_revision_is_published_once_and_a_later_subscriber_gets_the_newest(
    hub: Hub,
) -> None:
    watcher = DesiredWatcher(hub.setup, A)
    try:
        for revision in (1, 2):
            bump(hub.engine, A)
            wait_for(lambda r=revision: watcher.revisions()[-1:] == [r], 30, f"revision {revision}")
        since = time.time()
        wait_for(lambda: periods_run_since(hub.engine, since) >= 3, 30, "three more periods")
        assert watcher.revisions() == [1, 2]  # once each, though the job ran on since
        assert published_revision(hub.engine, A) == 2
    finally:
        watcher.close()
    late = DesiredWatcher(hub.setup, A)
    try:
        wait_for(late.got, 15, "the retained desired state")
        ((payload, retained),) = late.got()
        assert retained
        with hub.engine.connect() as conn:
            assert DesiredState.model_validate_json(payload) == desired_state(conn, "devA", "s1")
        assert DesiredState.model_validate_json(payload).revision == 2
    finally:
        late.close()


def test_a_change_while_the_broker_is_down_is_published_once_it_is_back(hub: Hub) -> None:
    bump(hub.engine, A)
    before = revision(hub.engine, A)
    wait_for(lambda: published_revision(hub.engine, A) == before, 30, "the current revision")
    hub.setup.broker.stop()
    try:
        bump(hub.engine, A)
        since = time.time()
        wait_for(lambda: periods_run_since(hub.engine, since) >= 2, 30, "two periods, broker down")
        assert published_revision(hub.engine, A) == before  # not acknowledged: not recorded
        hub.worker.wait_log("desired state not published")
    finally:
        hub.setup.broker.start()
    wait_for(lambda: published_revision(hub.engine, A) == before + 1, 60, "the publish, later")
    late = DesiredWatcher(hub.setup, A)
    try:
        wait_for(late.got, 15, "the retained desired state")
        assert late.revisions() == [before + 1]
    finally:
        late.close()


def test_a_revoked_devices_retained_desired_state_is_cleared(hub: Hub) -> None:
    watcher = DesiredWatcher(hub.setup, C)  # still let in: the broker config is not regenerated
    try:
        bump(hub.engine, C)
        wait_for(lambda: watcher.revisions() == [1], 30, "devC's desired state")
        with hub.engine.begin() as conn:
            admin, _ = create_api_key(conn, Role.HQ_ADMIN, name="ops", now=time.time())
        resp = httpx.post(
            f"{hub.setup.hub.url}/api/v1/devices/{C.device_id}/revoke",
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert resp.status_code == 204, resp.text
        wait_for(lambda: watcher.got()[-1][0] == b"", 30, "the retained message cleared")
        assert published_revision(hub.engine, C) is None
    finally:
        watcher.close()


def test_what_is_published_and_recorded_on_both_databases(
    hub_db: Engine, mosquitto: MosquittoProcess
) -> None:
    settings = HubSettings(mqtt_host="127.0.0.1", mqtt_port=mosquitto.port)
    sent: list[RetainedMessage] = []

    def publish(messages: Sequence[RetainedMessage]) -> list[bool]:
        sent.extend(messages)
        return publish_retained(settings, "hub-desired-test", messages)

    now = time.time()
    with hub_db.begin() as conn:
        for d in ("devA", "devC"):  # enrolled; devB never was (open device auth)
            conn.execute(
                insert(DEVICE_CREDENTIALS).values(
                    device_id=d, store_id="s1", secret_hash=f"h-{d}",
                    broker_password_hash="$7$unused", enrolled_at=now,
                )
            )  # fmt: skip
        for d in ("devA", "devB", "devC"):
            set_desired(conn, d, "s1", None, None, None, now)
    assert publish_desired(hub_db, publish) == PublishResult(3, 0, 0)
    assert publish_desired(hub_db, publish) == PublishResult(0, 0, 0)  # nothing new
    with hub_db.begin() as conn:
        set_desired(conn, "devA", "s1", None, None, None, now)
        assert revoke_device(conn, "devC", now=now)
    assert publish_desired(hub_db, publish) == PublishResult(1, 1, 0)
    assert [(m.topic.split("/")[3], m.payload == b"") for m in sent[3:]] == [
        ("devA", False),
        ("devC", True),
    ]
    assert DesiredState.model_validate_json(sent[3].payload).revision == 2
    assert publish_desired(hub_db, publish) == PublishResult(0, 0, 0)
    mosquitto.stop()
    with hub_db.begin() as conn:
        set_desired(conn, "devB", "s1", None, None, None, now)
    with pytest.raises(BrokerUnavailable):
        publish_desired(hub_db, publish)
    assert published_revision(hub_db, DeviceTopics("s1", "devB")) == 1  # not recorded
    mosquitto.start()
    assert publish_desired(hub_db, publish) == PublishResult(1, 0, 0)
    assert published_revision(hub_db, DeviceTopics("s1", "devB")) == 2
