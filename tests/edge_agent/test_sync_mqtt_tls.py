"""Sync over MQTT with TLS, as a store box meets a production broker: a real Mosquitto with a
TLS listener whose certificates come from a CA made here, the hub's real ingest worker, and the
edge's transport built from its ``sync:`` config. Mutual TLS (client certificates) and
user name + password over TLS; clients without the right credentials never get in."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from edge_agent.outbox import Outbox
from edge_agent.sources.backoff import BackoffPolicy
from edge_agent.sync import MqttTransport, Syncer
from edge_agent.sync.config import SyncConfig, make_transport
from tests.cloud_hub.mqtt_clients import WorkerProcess
from tests.edge_agent.test_outbox import DEVICE, STORE, T0
from tests.edge_agent.test_sync_http import hub_seqs, store_mix
from tests.pki import CertFiles, TestCA
from tests.services import MosquittoProcess

FAST = BackoffPolicy(initial_s=0.1, factor=2.0, cap_s=0.5, jitter_s=0.0)
REFUSED_WITHIN_S = 5.0  # a refused client never connects; this long is plenty to see it


@pytest.fixture()
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "pki")


@pytest.fixture()
def hub_db(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    yield url, engine
    engine.dispose()


def tls_broker(folder: Path, ca: TestCA, auth: str) -> MosquittoProcess:
    """Mosquitto with only a TLS listener; ``auth`` is extra listener/security config."""
    server = ca.issue("broker", server=True)
    return MosquittoProcess(
        folder,
        extra_conf=f"cafile {ca.ca_file}\ncertfile {server.cert}\nkeyfile {server.key}\n"
        "tls_version tlsv1.2\n" + auth,
    )


def start_worker(
    folder: Path, broker: MosquittoProcess, url: str, ca: TestCA, env: dict[str, str]
) -> WorkerProcess:
    worker = WorkerProcess(folder, broker.port, url)
    worker.env.update({"RETAIL_HUB_MQTT_TLS_CA_FILE": str(ca.ca_file), **env})
    worker.start()
    return worker


def edge_transport(
    broker: MosquittoProcess,
    ca_file: Path,
    client: CertFiles | None = None,
    username: str | None = None,
    password: str | None = None,
) -> MqttTransport:
    """The edge's transport exactly as ``retail-edge`` builds it from a ``sync:`` section."""
    config = SyncConfig(
        transport="mqtt",
        mqtt_host="127.0.0.1",
        mqtt_port=broker.port,
        mqtt_tls=True,
        mqtt_ca_file=ca_file,
        mqtt_cert_file=client.cert if client else None,
        mqtt_key_file=client.key if client else None,
        mqtt_username=username,
        ack_timeout_s=10,
    )
    transport = make_transport(config, STORE, DEVICE, mqtt_password=password)
    assert isinstance(transport, MqttTransport)
    transport.start()
    return transport


def sync_all(tmp_path: Path, transport: MqttTransport) -> list[int]:
    with Outbox.open(tmp_path / "outbox.sqlite3", DEVICE, STORE, reserve_bytes=0) as ob:
        seqs = ob.append(store_mix(40), T0)
        total = Syncer(ob, transport, batch_records=50, backoff=FAST).drain(timeout_s=60)
        assert ob.stats(T0).pending_count == 0
    assert total.delivered == len(seqs)
    return seqs


def refused(transport: MqttTransport) -> bool:
    try:
        return not transport.wait_connected(REFUSED_WITHIN_S)
    finally:
        transport.stop(timeout_s=1)


def test_mutual_tls_device_syncs_exactly_once_and_strangers_stay_out(
    tmp_path: Path, ca: TestCA, hub_db: tuple[str, Engine]
) -> None:
    auth = "require_certificate true\nuse_identity_as_username true\n"
    with tls_broker(tmp_path / "mqtt", ca, auth) as broker:
        hub_cert = ca.issue("hub-ingest")
        worker = start_worker(
            tmp_path / "worker", broker, hub_db[0], ca,
            {"RETAIL_HUB_MQTT_TLS_CERT_FILE": str(hub_cert.cert),
             "RETAIL_HUB_MQTT_TLS_KEY_FILE": str(hub_cert.key)},
        )  # fmt: skip
        try:
            transport = edge_transport(broker, ca.ca_file, ca.issue(DEVICE))
            assert transport.wait_connected(15)
            try:
                seqs = sync_all(tmp_path, transport)
            finally:
                transport.stop()
            assert hub_seqs(hub_db[1]) == seqs

            # No client certificate; a certificate from another CA; the wrong CA for the
            # broker (the edge must not trust a broker it cannot verify).
            assert refused(edge_transport(broker, ca.ca_file))
            stranger = TestCA(tmp_path / "other-ca")
            assert refused(edge_transport(broker, ca.ca_file, stranger.issue(DEVICE)))
            assert refused(edge_transport(broker, stranger.ca_file, ca.issue(DEVICE)))
        finally:
            worker.stop()


def test_username_and_password_over_tls(
    tmp_path: Path, ca: TestCA, hub_db: tuple[str, Engine]
) -> None:
    passwords = tmp_path / "passwd"
    for i, (user, pw) in enumerate((("hub", "hub-secret"), (DEVICE, "device-secret"))):
        flags = ["-b", "-c"] if i == 0 else ["-b"]
        subprocess.run(["mosquitto_passwd", *flags, str(passwords), user, pw], check=True)
    auth = f"allow_anonymous false\npassword_file {passwords}\n"
    with tls_broker(tmp_path / "mqtt", ca, auth) as broker:
        worker = start_worker(
            tmp_path / "worker", broker, hub_db[0], ca,
            {"RETAIL_HUB_MQTT_USERNAME": "hub", "RETAIL_HUB_MQTT_PASSWORD": "hub-secret"},
        )  # fmt: skip
        try:
            transport = edge_transport(
                broker, ca.ca_file, username=DEVICE, password="device-secret"
            )
            assert transport.wait_connected(15)
            try:
                seqs = sync_all(tmp_path, transport)
            finally:
                transport.stop()
            assert hub_seqs(hub_db[1]) == seqs
            assert refused(edge_transport(broker, ca.ca_file, username=DEVICE, password="nope"))
            assert refused(edge_transport(broker, ca.ca_file))  # anonymous
        finally:
            worker.stop()
        assert "device-secret" not in (tmp_path / "worker").joinpath("worker-1.log").read_text()
