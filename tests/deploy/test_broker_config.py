"""`retail-hub broker-config` run in a real Mosquitto with TLS from a CA made here.

Devices enroll through a real hub process; the generated config is the broker's whole config.
Checked with MQTT v5 clients: a device gets in with its secret only, cannot publish as another
device or read another device's desired state, the hub user reads every device's telemetry
through a shared subscription, a revoked device is cut off after regenerate + SIGHUP, and an
enrolled edge (credentials from `retail-edge enroll`) gets its batches acked by a real
`retail-hub worker` through this broker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud_hub.migrate import upgrade_database
from cloud_hub.services.broker_config import (
    BrokerConfigError,
    BrokerDevice,
    BrokerOptions,
    render_acl,
    write_broker_config,
)
from common.topics import DeviceTopics, hub_telemetry_subscription
from edge_agent.config import load_config
from edge_agent.outbox import Outbox
from edge_agent.sync.session import SyncSession
from tests.cloud_hub.hub_process import HubProcess
from tests.cloud_hub.mqtt_clients import WorkerProcess
from tests.edge_agent.test_sync_http import store_mix
from tests.pki import TestCA
from tests.services import free_port, wait_for, wait_for_port

HUB_USER, HUB_PASSWORD = "hub", "hub-broker-secret"
A = DeviceTopics(store_id="s1", device_id="devA")
B = DeviceTopics(store_id="s2", device_id="devB")
C = DeviceTopics(store_id="s1", device_id="devC")  # revoked by its test
NOT_AUTHORIZED = 135  # MQTT v5 reason code


class Broker:
    """Mosquitto on the generated config; regenerate + reload as an operator does."""

    def __init__(self, workdir: Path, hub: HubProcess, ca: TestCA) -> None:
        self.workdir = workdir
        self.hub = hub
        self.ca = ca
        self.server = ca.issue("broker", server=True)
        self.port = free_port()
        self.out = workdir / "broker"
        self.log_path = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "DATABASE_URL": hub.database_url,
            "RETAIL_HUB_MQTT_USERNAME": HUB_USER,
            "RETAIL_HUB_MQTT_PASSWORD": HUB_PASSWORD,
        }

    def generate(self) -> dict[str, object]:
        """Run `retail-hub broker-config` as an operator would; its JSON summary."""
        cmd = [
            sys.executable, "-m", "cloud_hub.cli", "broker-config", "--out", str(self.out),
            "--tls-ca", str(self.ca.ca_file), "--tls-cert", str(self.server.cert),
            "--tls-key", str(self.server.key), "--port", str(self.port), "--bind", "127.0.0.1",
            "--data-dir", str(self.workdir / "broker-data"),
        ]  # fmt: skip
        if os.geteuid() == 0:
            # As root Mosquitto would drop to `mosquitto`, which cannot enter pytest's
            # root-only temp folders.
            cmd += ["--run-as", "root"]
        done = subprocess.run(
            cmd, env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert isinstance(summary, dict)
        return summary

    def start(self) -> None:
        (self.workdir / "broker-data").mkdir(exist_ok=True)
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [binary, "-c", str(self.out / "mosquitto.conf")], stdout=log, stderr=log
            )
        wait_for_port(self.port)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def reload(self) -> None:
        """SIGHUP, and wait until the broker says it re-read its config."""
        assert self.proc is not None
        before = self.log().count("Reloading config")
        self.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.log().count("Reloading config") > before, 30, "broker reload")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


@dataclass
class Setup:
    hub: HubProcess
    broker: Broker
    ca: TestCA
    secrets: dict[str, str]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    workdir = tmp_path_factory.mktemp("broker-config")
    url = f"sqlite:///{workdir / 'hub.db'}"
    upgrade_database(url)
    hub = HubProcess(workdir / "hub")
    hub.start(url)  # device auth required, as in production
    try:
        secrets = {t.device_id: hub.enroll(t.store_id, t.device_id) for t in (A, B, C)}
        ca = TestCA(workdir / "pki")
        broker = Broker(workdir, hub, ca)
        summary = broker.generate()
        assert summary["devices"] == 3
        broker.start()
        try:
            yield Setup(hub, broker, ca, secrets)
        finally:
            broker.stop()
    finally:
        hub.stop()


class Peer:
    """An MQTT v5 client over TLS that records what it receives and the broker's answers."""

    def __init__(self, setup: Setup, user: str, password: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-{user}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(user, password)
        self.client.tls_set(ca_certs=str(setup.ca.ca_file))
        self.messages: list[tuple[str, bytes]] = []
        self.pubacks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.connack: ReasonCode | None = None
        self.disconnected = threading.Event()
        self._lock = threading.Lock()
        self._connack = threading.Event()
        c = self.client
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_publish = lambda _c, _u, mid, rc, _p: self.pubacks.__setitem__(mid, rc)
        c.on_subscribe = lambda _c, _u, mid, rcs, _p: self.subacks.__setitem__(mid, rcs)
        c.on_disconnect = lambda *_a: self.disconnected.set()
        c.connect("127.0.0.1", setup.broker.port)
        c.loop_start()
        assert self._connack.wait(15), "no CONNACK"

    def _on_connect(
        self, c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object
    ) -> None:
        self.connack = rc
        if rc.is_failure:
            c.disconnect()  # no automatic reconnect attempts with a refused password
        self._connack.set()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    @property
    def connected(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def topics(self) -> list[str]:
        with self._lock:
            return [t for t, _ in self.messages]

    def subscribe(self, topic: str) -> list[ReasonCode]:
        _rc, mid = self.client.subscribe(topic, options=SubscribeOptions(qos=1))
        wait_for(lambda: mid in self.subacks, 15, f"SUBACK for {topic}")
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        wait_for(lambda: info.mid in self.pubacks, 15, f"PUBACK for {topic}")
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def peer(setup: Setup, device: DeviceTopics | str, password: str | None = None) -> Peer:
    """A peer logged in as ``device`` (with its secret unless ``password``) or the hub user."""
    if isinstance(device, str):
        return Peer(setup, device, password or HUB_PASSWORD)
    return Peer(setup, device.device_id, password or setup.secrets[device.device_id])


def test_device_gets_in_with_its_secret_only(setup: Setup) -> None:
    a = peer(setup, A)
    assert a.connected
    a.close()
    for user, password in (
        (A.device_id, "rcd_wrong"),
        (A.device_id, setup.secrets[B.device_id]),  # another device's secret
        ("intruder", setup.secrets[A.device_id]),
    ):
        refused = Peer(setup, user, password)
        assert refused.connack is not None and refused.connack.is_failure, user
        refused.close()


def test_device_cannot_publish_as_another(setup: Setup) -> None:
    hub = peer(setup, HUB_USER)
    a = peer(setup, A)
    try:
        assert not any(rc.is_failure for rc in hub.subscribe(hub_telemetry_subscription("audit")))
        forged = a.publish(B.telemetry, b"forged by A")
        assert forged.value == NOT_AUTHORIZED, forged
        for leaf in (B.status, B.state, A.ack, A.desired):
            assert a.publish(leaf, b"x").value == NOT_AUTHORIZED, leaf
        # A's own telemetry gets through; published after the forgery, so once it is in, the
        # forgery would have been too.
        assert not a.publish(A.telemetry, b"from A").is_failure
        wait_for(lambda: A.telemetry in hub.topics(), 15, "A's own telemetry at the hub")
        assert hub.messages == [(A.telemetry, b"from A")]
    finally:
        a.close()
        hub.close()


def test_device_cannot_read_another_devices_desired_state(setup: Setup) -> None:
    hub = peer(setup, HUB_USER)
    a, b = peer(setup, A), peer(setup, B)
    try:
        assert not hub.publish(B.desired, b"B's desired", retain=True).is_failure
        # B reads its own desired state (retained): there is something to read.
        b.subscribe(B.desired)
        wait_for(lambda: B.desired in b.topics(), 15, "B's desired at B")
        # A asks for it directly and through wildcards. Mosquitto's ACL file does not refuse
        # a SUBSCRIBE (it grants it); it checks every delivery against A's rights instead.
        for pattern in (B.desired, "retail/v1/s2/+/desired", "retail/v1/#"):
            codes = a.subscribe(pattern)
            assert all(rc.is_failure or rc.value <= 2 for rc in codes)
        a.subscribe(A.desired)
        assert not hub.publish(B.desired, b"B's desired, live").is_failure
        assert not hub.publish(A.desired, b"A's desired").is_failure  # the sentinel
        wait_for(lambda: A.desired in a.topics(), 15, "A's desired at A")
        assert B.desired not in a.topics()
        assert {t for t in a.topics()} == {A.desired}
    finally:
        hub.publish(B.desired, b"", retain=True)  # clear the retained message
        for p in (a, b, hub):
            p.close()


def test_hub_user_reads_every_devices_telemetry_through_the_shared_subscription(
    setup: Setup,
) -> None:
    hub = peer(setup, HUB_USER)
    a, b = peer(setup, A), peer(setup, B)
    try:
        hub.subscribe(hub_telemetry_subscription("audit"))
        for p, t in ((a, A), (b, B)):
            assert not p.publish(t.telemetry, t.device_id.encode()).is_failure
            assert not p.publish(t.status, b"online", retain=True).is_failure
        wait_for(lambda: len(hub.messages) == 2, 15, "both devices' telemetry at the hub")
        assert sorted(hub.messages) == [(A.telemetry, b"devA"), (B.telemetry, b"devB")]
        hub.subscribe("retail/v1/+/+/status")  # status is readable too (retained)
        wait_for(lambda: len(hub.messages) == 4, 15, "both statuses at the hub")
        # ... and the hub answers devices on their ack topic.
        a.subscribe(A.ack)
        assert not hub.publish(A.ack, b"ack").is_failure
        wait_for(lambda: A.ack in a.topics(), 15, "the hub's ack at A")
    finally:
        for p in (a, b, hub):
            p.close()


def test_revoked_device_is_cut_off_after_regenerate_and_sighup(setup: Setup) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "cloud_hub.cli", "admin", "create-key", "--role", "hq_admin"],
        env=setup.broker.env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    admin = {"Authorization": f"Bearer {created.stdout.strip()}"}
    c = peer(setup, C)
    assert c.connected
    resp = httpx.post(f"{setup.hub.url}/api/v1/devices/{C.device_id}/revoke", headers=admin)
    assert resp.status_code == 204, resp.text
    # Revoked at the hub but not yet at the broker: the operator's regenerate + SIGHUP.
    assert setup.broker.generate()["devices"] == 2
    assert C.device_id not in (setup.broker.out / "passwd").read_text()
    setup.broker.reload()
    assert c.disconnected.wait(15), "the connected revoked device was not cut off"
    c.close()
    again = peer(setup, C)
    assert again.connack is not None and again.connack.is_failure
    again.close()
    a = peer(setup, A)  # the others are untouched
    assert a.connected
    a.close()


def test_enrolled_edge_batches_are_acked_by_a_real_worker(setup: Setup, tmp_path: Path) -> None:
    """Enroll with the real CLIs (admin token, `retail-edge enroll`), regenerate + SIGHUP, then
    the edge's own MqttTransport (user = device id, password = its secret) syncs through the
    TLS broker to a real `retail-hub worker` logged in as the hub user."""
    token = subprocess.run(
        [sys.executable, "-m", "cloud_hub.cli", "admin", "enroll-token", "--store", "s1"],
        env=setup.broker.env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    config_path = tmp_path / "store.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "store_id": "s1",
                "device_id": "devE",
                "model": {"path": "unused.onnx"},
                "cameras": [{"id": "door", "source": "0"}],
                "outbox": {"path": "outbox.sqlite3"},
                "sync": {
                    "transport": "mqtt",
                    "hub_url": setup.hub.url,
                    "mqtt_host": "127.0.0.1",
                    "mqtt_port": setup.broker.port,
                    "mqtt_ca_file": str(setup.ca.ca_file),
                    "credentials_file": "credentials.json",
                    "ack_timeout_s": 10,
                },
            }
        )
    )
    enrolled = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "enroll", "--config", str(config_path),
         "--token", token],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    assert setup.broker.generate()["devices"] >= 3
    setup.broker.reload()
    # `retail-edge doctor` logs in to the broker as the agent will (its model and camera here
    # are placeholders and fail; only the hub and broker lines matter).
    doctor = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "doctor", "--config", str(config_path),
         "--camera-timeout", "1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    lines = doctor.stdout.splitlines()
    assert f"PASS  broker: 127.0.0.1:{setup.broker.port} accepted 'devE' over TLS" in lines
    assert any(line.startswith("PASS  hub:") for line in lines), doctor.stdout

    worker = WorkerProcess(tmp_path / "worker", setup.broker.port, setup.hub.database_url)
    worker.env.update(
        {
            "RETAIL_HUB_MQTT_USERNAME": HUB_USER,
            "RETAIL_HUB_MQTT_PASSWORD": HUB_PASSWORD,
            "RETAIL_HUB_MQTT_TLS_CA_FILE": str(setup.ca.ca_file),
        }
    )
    worker.start()
    try:
        config = load_config(config_path)
        with Outbox.open(config.outbox.path, "devE", "s1", reserve_bytes=0) as outbox:
            seqs = outbox.append(store_mix(20), time.time())
            session = SyncSession(config, outbox)
            try:
                session.open()
                result = session.drain(60)
            finally:
                session.stop()
            assert outbox.stats(time.time()).pending_count == 0
        assert result.delivered == len(seqs)
        worker.wait_log("ingested batch")
    finally:
        worker.stop()
    creds = json.loads((tmp_path / "credentials.json").read_text())
    state = httpx.get(
        f"{setup.hub.url}/api/v1/devices/devE/sync",
        headers={"Authorization": f"Bearer {creds['device_secret']}"},
    )
    assert state.status_code == 200, state.text
    assert state.json()["max_seq"] == max(seqs)


def test_files_are_private_and_a_device_cannot_take_the_hub_users_name(tmp_path: Path) -> None:
    device = BrokerDevice("devA", "s1", "$7$101$c2FsdA==$aGFzaA==")
    files = write_broker_config(tmp_path, [device], BrokerOptions(), "hub-secret")
    assert files.passwd.stat().st_mode & 0o777 == 0o600
    assert files.passwd.read_text().splitlines()[1] == f"devA:{device.password_hash}"
    conf = files.conf.read_text()
    assert "allow_anonymous false" in conf and "listener 1883" in conf  # no TLS: plain port
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    with pytest.raises(BrokerConfigError, match="hub workers' MQTT user name"):
        render_acl([BrokerDevice("hub", "s1", device.password_hash)], "hub")
    with pytest.raises(BrokerConfigError, match="RETAIL_HUB_MQTT_PASSWORD"):
        write_broker_config(tmp_path, [device], BrokerOptions(), "")
