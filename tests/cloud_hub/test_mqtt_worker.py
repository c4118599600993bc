"""The MQTT ingest worker as a real subprocess against a real Mosquitto and real databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_hub.db import create_hub_engine
from common.sync import BatchAck, BatchRejected, encode_batch
from common.topics import DeviceTopics
from tests.cloud_hub.batches import (
    T0,
    batch,
    count,
    counter,
    dead_letters,
    device,
    numbered,
    rollups,
)
from tests.cloud_hub.mqtt_clients import EdgeClient, WorkerProcess
from tests.services import MosquittoProcess, PostgresProcess


def telemetry(store: str, dev: str) -> str:
    return DeviceTopics(store, dev).telemetry


def test_worker_ingests_batches_and_answers_on_the_device_ack_topic(
    tmp_path: Path, mosquitto: MosquittoProcess, sqlite_url: str
) -> None:
    worker = WorkerProcess(tmp_path, mosquitto.port, sqlite_url)
    worker.start()
    edge = EdgeClient(mosquitto.port)
    engine = create_hub_engine(sqlite_url)
    try:
        good = batch(numbered([counter(3, target="m-door"), counter(2, target="m-door")]), "m1")
        edge.publish(telemetry("s1", "m1"), encode_batch(good))
        edge.publish(telemetry("s1", "m2"), b"\x00garbage")
        edge.publish(telemetry("s1", "m3"), encode_batch(batch(numbered([counter(1)]), "m1")))
        answers = edge.wait_answers(3)

        by_topic = dict(zip(edge.answer_topics, answers, strict=True))
        ack = by_topic[DeviceTopics("s1", "m1").ack]
        assert isinstance(ack, BatchAck)
        assert (ack.batch_id, ack.committed, ack.duplicates) == (good.batch_id, [(1, 2)], 0)
        assert rollups(engine)[("m-door", "line_in", T0)]["count"] == 5

        garbage = by_topic[DeviceTopics("s1", "m2").ack]
        assert isinstance(garbage, BatchRejected) and "not JSON" in garbage.reason
        spoofed = by_topic[DeviceTopics("s1", "m3").ack]
        assert (
            isinstance(spoofed, BatchRejected)
            and "was sent on the topic or with the credentials of" in spoofed.reason
        )
        kept = {d["id"]: d for d in dead_letters(engine)}
        assert kept[garbage.dead_letter_id]["device_id"] == "m2"
        assert kept[spoofed.dead_letter_id]["device_id"] == "m3"
        assert count(engine, "received_records", "device_id = 'm1'") == 2  # spoofed batch not in

        edge.publish(telemetry("s1", "m1"), encode_batch(good))  # an edge re-send
        (again,) = edge.wait_answers(4)[3:]
        assert isinstance(again, BatchAck) and again.duplicates == 2
        assert rollups(engine)[("m-door", "line_in", T0)]["count"] == 5
    finally:
        edge.close()
        engine.dispose()
        assert worker.stop() == 0, worker.log()
    assert "worker hub-ingest-1 stopped" in worker.log()


@pytest.mark.parametrize("broker_restart", [False, True], ids=["worker-restart", "broker-restart"])
def test_batches_sent_while_the_only_worker_is_down_are_kept_and_ingested_on_restart(
    tmp_path: Path, sqlite_url: str, broker_restart: bool, request: pytest.FixtureRequest
) -> None:
    """Mosquitto queues the shared subscription's messages in the stopped worker's persistent
    session (and, with broker persistence, keeps them across a broker restart)."""
    broker: MosquittoProcess = request.getfixturevalue("mosquitto")
    worker = WorkerProcess(tmp_path, broker.port, sqlite_url)
    worker.start()  # creates the session and its subscription
    assert worker.stop() == 0
    edge = EdgeClient(broker.port)
    sent = [batch(numbered([counter(1, target="q-door")], first_seq=s), "q1") for s in range(1, 11)]
    for b in sent:
        edge.publish(telemetry("s1", "q1"), encode_batch(b))
    if broker_restart:
        edge.close()
        broker.stop()
        broker.start()
        edge = EdgeClient(broker.port)

    worker.start()
    engine = create_hub_engine(sqlite_url)
    try:
        answers = edge.wait_answers(len(sent))
        assert sorted(a.batch_id or "" for a in answers) == sorted(b.batch_id for b in sent)
        assert "session present: True" in worker.log()
        assert rollups(engine)[("q-door", "line_in", T0)]["count"] == 10
        dev = device(engine, "q1")
        assert (dev["records_received"], dev["duplicates_received"], dev["max_seq"]) == (10, 0, 10)
    finally:
        edge.close()
        engine.dispose()
        assert worker.stop() == 0, worker.log()


def test_two_workers_split_the_load_and_ingest_every_batch_once(
    tmp_path: Path, mosquitto: MosquittoProcess, sqlite_url: str
) -> None:
    workers = [WorkerProcess(tmp_path, mosquitto.port, sqlite_url, name) for name in "ab"]
    for w in workers:
        w.start()
    edge = EdgeClient(mosquitto.port)
    engine = create_hub_engine(sqlite_url)
    try:
        sent = [
            batch(numbered([counter(1, target=f"t{dev}")] * 4, first_seq=1 + 4 * i), dev)
            for i in range(10)
            for dev in ("w1", "w2", "w3")
        ]
        for b in sent:
            edge.publish(telemetry("s1", b.device_id), encode_batch(b))
        answers = edge.wait_answers(len(sent))
        assert all(isinstance(a, BatchAck) and a.duplicates == 0 for a in answers)
        assert count(engine, "received_records") == 4 * len(sent)
        for dev in ("w1", "w2", "w3"):
            assert rollups(engine)[(f"t{dev}", "line_in", T0)]["count"] == 40
        took = [w.ingested() for w in workers]
        assert sum(took) == len(sent) and min(took) > 0, took
    finally:
        edge.close()
        engine.dispose()
        for w in workers:
            assert w.stop() == 0, w.log()


def test_nothing_is_acked_while_the_database_is_down_and_a_killed_worker_loses_nothing(
    tmp_path: Path, mosquitto: MosquittoProcess, pg_hub_url: str, postgres_server: PostgresProcess
) -> None:
    worker = WorkerProcess(tmp_path, mosquitto.port, pg_hub_url)
    worker.start()
    edge = EdgeClient(mosquitto.port)
    sent = [batch(numbered([counter(2, target="o-door")], first_seq=s), "o1") for s in range(1, 6)]
    try:
        postgres_server.stop()
        try:
            for b in sent:
                edge.publish(telemetry("s1", "o1"), encode_batch(b))
            worker.wait_log("database unreachable", times=2)  # retrying the first batch
            assert edge.answers == []
            worker.stop(kill=True)  # dies holding unacknowledged messages
        finally:
            postgres_server.start()
        worker.start()
        answers = edge.wait_answers(len(sent))
        assert sorted(a.batch_id or "" for a in answers) == sorted(b.batch_id for b in sent)
        engine = create_hub_engine(pg_hub_url)
        try:
            assert rollups(engine)[("o-door", "line_in", T0)]["count"] == 10
            assert device(engine, "o1")["records_received"] == 5
        finally:
            engine.dispose()
    finally:
        edge.close()
        if worker.proc is not None:
            assert worker.stop() == 0, worker.log()
