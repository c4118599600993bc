"""Sync over MQTT against the real hub: its ingest worker (``retail-hub mqtt-worker``) on a
real Mosquitto and a migrated SQLite hub database. Exactly-once at the hub, a broker restart in
the middle of syncing, late acks, switching to HTTP with batches still queued in the broker,
and the retained online/offline status with its last will."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, text

from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from common.topics import DeviceTopics
from edge_agent.outbox import Outbox
from edge_agent.sources.backoff import BackoffPolicy
from edge_agent.sync import HttpTransport, MqttTransport, Syncer, TransportError
from tests.cloud_hub.batches import device
from tests.cloud_hub.hub_process import HubProcess
from tests.cloud_hub.mqtt_clients import WorkerProcess
from tests.conftest import REPO_ROOT
from tests.edge_agent.test_outbox import DEVICE, STORE, T0, dwell_rollup, rollup
from tests.edge_agent.test_sync_http import hub_seqs, store_mix
from tests.services import MosquittoProcess, wait_for

FAST = BackoffPolicy(initial_s=0.1, factor=2.0, cap_s=0.5, jitter_s=0.0)
TOPICS = DeviceTopics(STORE, DEVICE)


@pytest.fixture()
def broker(mosquitto: MosquittoProcess) -> MosquittoProcess:
    """The private Mosquitto (keeps sessions and queued messages across restarts)."""
    return mosquitto


@pytest.fixture()
def hub_db(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A migrated SQLite hub database and an engine on it."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url)
    yield url, engine
    engine.dispose()


@pytest.fixture()
def worker(
    tmp_path: Path, broker: MosquittoProcess, hub_db: tuple[str, Engine]
) -> Iterator[WorkerProcess]:
    """The hub's MQTT ingest worker, started and subscribed (its session then persists)."""
    proc = WorkerProcess(tmp_path / "worker", broker.port, hub_db[0])
    proc.start()
    yield proc
    if proc.proc is not None:
        proc.stop()


@pytest.fixture()
def transport(broker: MosquittoProcess) -> Iterator[MqttTransport]:
    """The edge's MQTT transport, connected."""
    t = MqttTransport("127.0.0.1", broker.port, STORE, DEVICE, ack_timeout_s=10, reconnect_max_s=2)
    t.start()
    assert t.wait_connected(15), "edge transport did not connect"
    yield t
    t.stop()


def rollup_counts(engine: Engine, metric: str = "line_in") -> dict[tuple[str, int], int]:
    """``count`` of the hub's ``metric`` rollups by (camera, bucket_start)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT camera_id, bucket_start, count FROM rollups WHERE metric = :m"),
            {"m": metric},
        ).all()
    return {(r[0], int(r[1])): int(r[2]) for r in rows}


class StatusWatcher:
    """A paho client that records every message on the device's status topic."""

    def __init__(self, port: int) -> None:
        self.seen: list[str] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        self.client.on_message = lambda _c, _u, m: self.seen.append(m.payload.decode())
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(TOPICS.status, qos=1)

    def wait(self, status: str) -> None:
        """Until ``status`` is the latest message seen."""
        wait_for(lambda: self.seen[-1:] == [status], timeout_s=30, what=f"status {status}")

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def test_everything_arrives_exactly_once_and_status_goes_online_then_offline(
    tmp_path: Path,
    broker: MosquittoProcess,
    worker: WorkerProcess,
    hub_db: tuple[str, Engine],
) -> None:
    engine = hub_db[1]
    watcher = StatusWatcher(broker.port)
    t = MqttTransport("127.0.0.1", broker.port, STORE, DEVICE, ack_timeout_s=10)
    t.start()
    try:
        watcher.wait("online")
        with Outbox.open(tmp_path / "o.sqlite3", DEVICE, STORE, reserve_bytes=0) as ob:
            seqs = ob.append(store_mix(200), T0)
            total = Syncer(ob, t, batch_records=150, backoff=FAST).drain(timeout_s=60)
            assert ob.stats(T0).pending_count == 0
        t.stop()
        watcher.wait("offline")
    finally:
        watcher.close()
    assert (total.sent, total.delivered, total.duplicates) == (len(seqs), len(seqs), 0)
    assert hub_seqs(engine) == seqs
    assert rollup_counts(engine) == {("cam-1", rollup(i).bucket_start): i % 7 for i in range(200)}
    dwell = rollup_counts(engine, "dwell_s")
    assert dwell == {("cam-1", dwell_rollup(i).bucket_start): 3 for i in range(200)}


def test_broker_stopped_and_restarted_during_sync_loses_and_duplicates_nothing(
    tmp_path: Path,
    broker: MosquittoProcess,
    worker: WorkerProcess,
    hub_db: tuple[str, Engine],
    transport: MqttTransport,
) -> None:
    """Appends go on while the broker is down; after it is back the syncer drains, and the hub
    holds every record once (re-sent batches counted as duplicates, applied never)."""
    engine = hub_db[1]
    transport.ack_timeout_s = 3
    with Outbox.open(tmp_path / "o.sqlite3", DEVICE, STORE, reserve_bytes=0) as ob:
        syncer = Syncer(ob, transport, batch_records=50, backoff=FAST, idle_s=0.05)
        appended: list[int] = []
        stop_appending = threading.Event()

        def append_loop() -> None:
            i = 0
            while not stop_appending.is_set():
                appended.extend(ob.append([rollup(i), rollup(i, "cam-2")], T0 + i))
                i += 1
                stop_appending.wait(0.01)  # a store's pace, not synchronisation

        appender = threading.Thread(target=append_loop, daemon=True)
        syncer.start()
        appender.start()
        try:
            wait_for(
                lambda: len(hub_seqs(engine)) >= 100, timeout_s=30, what="first records at hub"
            )
            broker.stop()
            n_down = len(appended)
            wait_for(lambda: len(appended) >= n_down + 200, timeout_s=30, what="appends while down")
            assert not transport.connected
            broker.start()
            wait_for(lambda: len(appended) >= n_down + 400, timeout_s=30, what="appends after")
            stop_appending.set()
            appender.join(timeout=10)
            wait_for(lambda: ob.stats(T0).pending_count == 0, timeout_s=90, what="drained")
        finally:
            stop_appending.set()
            syncer.stop()
    assert hub_seqs(engine) == sorted(appended)
    n = len(appended) // 2
    want = {(cam, rollup(i).bucket_start): i % 7 for i in range(n) for cam in ("cam-1", "cam-2")}
    assert rollup_counts(engine) == want


def test_an_ack_after_the_timeout_still_marks_the_records_delivered(
    tmp_path: Path,
    worker: WorkerProcess,
    hub_db: tuple[str, Engine],
    transport: MqttTransport,
) -> None:
    """The hub's worker is down, so the batch waits in the broker and ``send`` times out; when
    the worker comes back its ack arrives late and the records leave the outbox anyway."""
    worker.stop()
    transport.ack_timeout_s = 1.0
    with Outbox.open(tmp_path / "o.sqlite3", DEVICE, STORE, reserve_bytes=0) as ob:
        seqs = ob.append([rollup(i) for i in range(30)], T0)
        syncer = Syncer(ob, transport, backoff=FAST)
        with pytest.raises(TransportError, match="no ack"):
            syncer.sync_once()
        assert ob.stats(T0).pending_count == 30
        worker.start()
        wait_for(lambda: ob.stats(T0).pending_count == 0, timeout_s=30, what="late ack")
    assert hub_seqs(hub_db[1]) == seqs


def test_switching_to_http_with_batches_queued_in_the_broker_counts_nothing_twice(
    tmp_path: Path,
    worker: WorkerProcess,
    hub_db: tuple[str, Engine],
    transport: MqttTransport,
) -> None:
    url, engine = hub_db
    worker.stop()
    transport.ack_timeout_s = 1.0
    hub = HubProcess(tmp_path / "hub")
    hub.start(url, device_auth="open")
    try:
        with Outbox.open(tmp_path / "o.sqlite3", DEVICE, STORE, reserve_bytes=0) as ob:
            seqs = ob.append([rollup(i) for i in range(60)], T0)
            with pytest.raises(TransportError, match="no ack"):
                Syncer(ob, transport, batch_records=60).sync_once()  # now queued in the broker
            transport.stop()
            with HttpTransport(hub.url) as http:
                Syncer(ob, http, backoff=FAST).drain(timeout_s=30)
            assert ob.stats(T0).pending_count == 0
        worker.start()
        wait_for(lambda: worker.ingested() >= 1, timeout_s=30, what="queued MQTT batch ingested")
    finally:
        hub.stop()
    assert hub_seqs(engine) == seqs
    assert device(engine, DEVICE)["duplicates_received"] == 60
    assert rollup_counts(engine) == {("cam-1", rollup(i).bucket_start): i % 7 for i in range(60)}


def test_last_will_sets_status_offline_when_the_edge_process_dies(broker: MosquittoProcess) -> None:
    watcher = StatusWatcher(broker.port)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.edge_agent.test_sync_mqtt", str(broker.port)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
    )
    try:
        watcher.wait("online")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        watcher.wait("offline")  # the broker published the will: nobody said goodbye
    finally:
        if child.poll() is None:
            child.kill()
        watcher.close()


def child_main(port: int) -> None:
    """Connect an edge transport and wait (for the parent to kill us)."""
    t = MqttTransport("127.0.0.1", port, STORE, DEVICE, keepalive_s=5)
    t.start()
    sys.stdin.read()


if __name__ == "__main__":
    child_main(int(sys.argv[1]))
