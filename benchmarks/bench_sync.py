"""Sync and hub ingest: drain rate of a 7-day backlog, MQTT ingest against the raw broker rate,
and the edge CPU that sync costs.

    python benchmarks/bench_sync.py [--days 7] [--cameras 4] [--mqtt-records 60000] [--no-append]

1. **Drain**: the 7-day, 4-camera backlog of ``bench_outbox_size`` (real ``CameraAnalytics``
   output tiled over the days) is drained by the edge's own ``Syncer`` + ``HttpTransport``
   (default batch size) into a real hub process (uvicorn) on SQLite (WAL, synchronous=FULL)
   and on PostgreSQL (private server, fsync on). Peer: the hub's ingest service called
   directly on the same batches and the same kind of database, with no edge, HTTP or
   uvicorn; the ratio is what the whole path keeps of it. Edge CPU is the draining thread's.
2. **MQTT**: the first ``--mqtt-records`` records of the backlog, as batches of 4 devices,
   published at QoS 1 to a private Mosquitto, once with a bare subscriber on the hub's shared
   subscription (the raw broker rate) and once with the real ingest worker process
   (``retail-hub mqtt-worker``) on SQLite and on PostgreSQL, timed until the last ack.
3. **Edge CPU while the pipeline runs**: a store's live rhythm, one camera-minute of records
   appended and then synced at a time (what ``notify()`` does after each bucket), CPU of the
   sync per camera-minute, and what that is of one core for the store's 4 cameras; and the
   sync thread's share of the process CPU during ``process_video`` on real footage.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, append_section, assets_dir
from bench_outbox_size import fill, simulate, store_minutes

sys.path.insert(0, str(REPO))
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.payloads import ingest_payload
from common.sync import BatchAck, SyncRecord, TelemetryBatch, encode_batch
from common.topics import DeviceTopics, hub_telemetry_subscription
from edge_agent.outbox import Outbox
from edge_agent.outbox.records import Codec, OutboxBody
from edge_agent.sync.config import SyncConfig
from edge_agent.sync.http import HttpTransport
from edge_agent.sync.syncer import Syncer
from tests.cloud_hub.hub_process import HubProcess
from tests.cloud_hub.mqtt_clients import EdgeClient, WorkerProcess
from tests.services import MosquittoProcess, PostgresProcess, wait_for

STORE, DEVICE = "store-0042", "edge-1"
BATCH = SyncConfig(transport="http", hub_url="http://x").batch_records  # the edge default


def proc_cpu_s(pid: int | str = "self", tid: int | None = None) -> float:
    """user + system CPU seconds of a process (or one of its threads) from /proc."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Drain:
    """One drain of the backlog."""

    records: int
    wall_s: float
    edge_cpu_s: float
    hub_cpu_s: float

    @property
    def rate(self) -> float:
        """records/s."""
        return self.records / self.wall_s


def drain_http(outbox_path: Path, hub: HubProcess) -> Drain:
    """Drain ``outbox_path`` into ``hub`` with the edge's Syncer; time and CPU."""
    assert hub.proc is not None
    with Outbox.open(outbox_path, DEVICE, STORE, None, "full", 0) as ob:
        n = ob.stats(time.time()).pending_count
        transport = HttpTransport(hub.url, timeout_s=120)
        syncer = Syncer(ob, transport, batch_records=BATCH)
        hub0, cpu0, t0 = proc_cpu_s(hub.proc.pid), time.thread_time(), time.perf_counter()
        total = syncer.drain(timeout_s=3600)
        wall, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
        hub_cpu = proc_cpu_s(hub.proc.pid) - hub0
        transport.close()
        left = ob.stats(time.time()).pending_count
    assert total.delivered == n and left == 0, (total, left)
    return Drain(n, wall, cpu, hub_cpu)


def backlog_batches(outbox_path: Path) -> list[bytes]:
    """The whole backlog as the edge would batch it, gzip-encoded."""
    out = []
    with Outbox.open(outbox_path, DEVICE, STORE, None, "normal", 0) as ob:
        records = ob.pending(10**9, 2**62)
    for i in range(0, len(records), BATCH):
        out.append(encode_batch(_batch(DEVICE, records[i : i + BATCH])))
    return out


def _batch(device: str, records: list[SyncRecord]) -> TelemetryBatch:
    return TelemetryBatch(
        batch_id=uuid.uuid4().hex,
        store_id=STORE,
        device_id=device,
        sent_at=time.time(),
        records=records,
    )


def service_rate(url: str, bodies: list[bytes]) -> tuple[float, int]:
    """records/s of the hub's ingest service called directly (the peer), and records."""
    engine = create_hub_engine(url)
    n = 0
    t0 = time.perf_counter()
    for p in bodies:
        ack = ingest_payload(engine, p, time.time())
        assert isinstance(ack, BatchAck) and not ack.dead_lettered
        n += sum(b - a + 1 for a, b in ack.committed)
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return n / elapsed, n


def mqtt_messages(outbox_path: Path, n: int, devices: int) -> list[tuple[str, bytes, int]]:
    """(topic, payload, records) of the first ``n`` records split over ``devices`` devices."""
    with Outbox.open(outbox_path, DEVICE, STORE, None, "normal", 0) as ob:
        records = ob.pending(n, 2**62)
    per = len(records) // devices
    out = []
    for d in range(devices):
        mine = records[d * per : (d + 1) * per]
        topic = DeviceTopics(STORE, f"edge-{d + 1}").telemetry
        for i in range(0, len(mine), BATCH):
            chunk = mine[i : i + BATCH]
            out.append((topic, encode_batch(_batch(f"edge-{d + 1}", chunk)), len(chunk)))
    return out


def _publisher(port: int) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )  # fmt: skip
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def raw_broker_rate(port: int, messages: list[tuple[str, bytes, int]]) -> float:
    """records/s a bare QoS 1 subscriber on the hub's shared subscription receives."""
    got = {"messages": 0}
    done = threading.Event()
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        with lock:
            got["messages"] += 1
            if got["messages"] == len(messages):
                done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw-sub", protocol=mqtt.MQTTv5)
    subscribed = threading.Event()
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    sub.subscribe(hub_telemetry_subscription(), qos=1)
    assert subscribed.wait(10)
    pub = _publisher(port)
    t0 = time.perf_counter()
    for topic, payload, _ in messages:
        pub.publish(topic, payload, qos=1)
    assert done.wait(600), got
    elapsed = time.perf_counter() - t0
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return sum(m[2] for m in messages) / elapsed


def worker_rate(
    port: int, url: str, workdir: Path, messages: list[tuple[str, bytes, int]]
) -> tuple[float, float]:
    """records/s the real ingest worker commits and acks, and its CPU seconds per 1k records."""
    upgrade_database(url)
    worker = WorkerProcess(workdir, port, url, name=uuid.uuid4().hex[:6])
    worker.start()
    assert worker.proc is not None
    edge = EdgeClient(port)
    pub = _publisher(port)
    try:
        cpu0, t0 = proc_cpu_s(worker.proc.pid), time.perf_counter()
        for topic, payload, _ in messages:
            pub.publish(topic, payload, qos=1)
        wait_for(lambda: len(edge.answers) >= len(messages), 900, "all acks")
        elapsed = time.perf_counter() - t0
        cpu = proc_cpu_s(worker.proc.pid) - cpu0
        acks = edge.acks()
        n = sum(sum(b - a + 1 for a, b in ack.committed) for ack in acks)
        assert len(acks) == len(messages) and n == sum(m[2] for m in messages), (len(acks), n)
    finally:
        pub.disconnect()
        pub.loop_stop()
        edge.close()
        worker.stop()
    return n / elapsed, cpu / n * 1000


def live_sync_cpu(
    minutes: list[tuple[float, list[OutboxBody]]], hub: HubProcess, workdir: Path, n_minutes: int
) -> tuple[float, float, int]:
    """Append one camera-minute, sync it, repeat: edge CPU ms per camera-minute (append
    excluded), records per minute, and the number of camera-minutes measured."""
    path = workdir / "live.sqlite3"
    cpu = 0.0
    records = 0
    with Outbox.open(path, "live-1", STORE, None, "full", 0) as ob:
        transport = HttpTransport(hub.url)
        syncer = Syncer(ob, transport, batch_records=BATCH)
        for now, recs in minutes[:n_minutes]:
            ob.append(recs, now)
            records += len(recs)
            c0 = time.thread_time()
            while syncer.sync_once().sent:
                pass
            cpu += time.thread_time() - c0
        transport.close()
    return cpu / n_minutes * 1000, records / n_minutes, n_minutes


def pipeline_share(hub: HubProcess, workdir: Path) -> tuple[float, float, int]:
    """Sync thread CPU and process CPU (s) during ``process_video`` with live sync on, and the
    records sent."""
    import yaml

    from edge_agent.config import load_config
    from edge_agent.process import process_video
    from edge_agent.sync.session import SyncSession

    demo = yaml.safe_load((REPO / "examples/demo-store.yaml").read_text())
    video = assets_dir() / "videos/one-by-one-person-detection.mp4"
    demo["model"] = {"path": str(assets_dir() / "models/person/yolox_nano.onnx")}
    demo["cameras"][0]["source"] = str(video)
    demo["outbox"] = {"path": str(workdir / "pipeline.sqlite3")}
    demo["sync"] = {"transport": "http", "hub_url": hub.url, "idle_s": 0.2}
    demo["device_id"] = "pipeline-1"
    demo.pop("privacy")
    cfg_path = workdir / "store.yaml"
    cfg_path.write_text(yaml.safe_dump(demo))
    config = load_config(cfg_path)
    o = config.outbox
    with Outbox.open(o.path, config.device_id, config.store_id, o.limits(), o.synchronous, 0) as ob:
        session = SyncSession(config, ob)
        session.start()
        thread = session.syncer._thread  # measuring its CPU
        assert thread is not None and thread.native_id is not None
        p0 = proc_cpu_s()
        report = process_video(video, config, outbox=ob, on_records=session.notify)
        wait_for(lambda: ob.stats(time.time()).pending_count == 0, 60, "outbox drained")
        sync_cpu = proc_cpu_s(tid=thread.native_id)
        total = proc_cpu_s() - p0
        session.stop()
    return sync_cpu, total, report.records_appended


def main() -> None:
    """Run everything, print the tables and append them to BENCHMARKS.md."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--mqtt-records", type=int, default=60_000)
    ap.add_argument("--live-minutes", type=int, default=400, help="camera-minutes, live test")
    ap.add_argument("--no-append", action="store_true", help="print only, leave BENCHMARKS.md")
    args = ap.parse_args()

    t0 = time.perf_counter()
    samples = [simulate(f"cam-{i + 1}", 4 + 3 * i, 60, seed=i) for i in range(args.cameras)]
    minutes = store_minutes(samples, args.days, seed=7)
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        work = Path(tmp)
        backlog = work / "backlog.sqlite3"
        filled = fill(backlog, minutes, Codec.DEFLATE_DICT_V1)
        print(f"backlog: {filled['records']} records, {time.perf_counter() - t0:.0f} s", flush=True)
        bodies = backlog_batches(backlog)

        # Its own top-level temp dir: the postgres user cannot enter root's private ones.
        pg_dir = Path(tempfile.mkdtemp(prefix="bench-sync-pg-"))
        pg = PostgresProcess(pg_dir, fsync=True)
        pg.start()
        try:
            admin = f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres"

            def pg_db(name: str) -> str:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")
                return pg.url.rsplit("/", 1)[0] + "/" + name

            drains: dict[str, tuple[Drain, float]] = {}
            for name, make_url in (
                ("SQLite", lambda tag: f"sqlite:///{work / (tag + '.db')}"),
                ("PostgreSQL", pg_db),
            ):
                peer_url = make_url("peer")
                upgrade_database(peer_url)
                peer, _ = service_rate(peer_url, bodies)
                copy = work / f"drain-{name}.sqlite3"
                shutil.copy(backlog, copy)
                hub = HubProcess(work / f"hub-{name}")
                drain_url = make_url("drain")
                upgrade_database(drain_url)
                hub.start(drain_url, device_auth="open")
                try:
                    drains[name] = (drain_http(copy, hub), peer)
                finally:
                    hub.stop()
                d = drains[name][0]
                print(f"drain {name}: {d.rate:,.0f} records/s (peer {peer:,.0f})", flush=True)

            # A fresh broker per case: a stopped worker's persistent session would keep its
            # share of the shared subscription's messages queued.
            msgs = mqtt_messages(backlog, args.mqtt_records, devices=4)
            with MosquittoProcess(work / "mqtt-raw") as broker:
                raw = raw_broker_rate(broker.port, msgs)
            print(f"raw broker: {raw:,.0f} records/s", flush=True)
            ingest = {}
            for name, url in (
                ("SQLite", f"sqlite:///{work / 'mqtt.db'}"),
                ("PostgreSQL", pg_db("mqtt")),
            ):
                with MosquittoProcess(work / f"mqtt-{name}") as broker:
                    ingest[name] = worker_rate(broker.port, url, work / f"w-{name}", msgs)
                print(f"worker {name}: {ingest[name][0]:,.0f} records/s", flush=True)
            hub = HubProcess(work / "hub-live")
            upgrade_database(f"sqlite:///{work / 'live.db'}")
            hub.start(f"sqlite:///{work / 'live.db'}", device_auth="open")
            try:
                live_ms, per_minute, n_live = live_sync_cpu(minutes, hub, work, args.live_minutes)
                sync_cpu, proc_cpu, piped = pipeline_share(hub, work)
            finally:
                hub.stop()
        finally:
            pg.stop()
            shutil.rmtree(pg_dir, ignore_errors=True)

    n = filled["records"]
    lines += [
        f"Backlog: {args.days} days x {args.cameras} cameras = {n:,} records "
        f"({filled['file_bytes'] / 2**20:.1f} MB outbox), batches of {BATCH} (edge default).",
        "",
        "| drain over HTTP into | records/s | wall s | edge CPU s | hub CPU s | "
        "hub ingest service alone (peer), records/s | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (d, peer) in drains.items():
        lines.append(
            f"| {name} | {d.rate:,.0f} | {d.wall_s:.0f} | {d.edge_cpu_s:.0f} | "
            f"{d.hub_cpu_s:.0f} | {peer:,.0f} | {d.rate / peer:.2f} |"
        )
    n_mqtt = sum(m[2] for m in msgs)
    lines += [
        "",
        f"MQTT: {n_mqtt:,} records in {len(msgs)} QoS 1 messages from 4 devices, one worker.",
        "",
        "| path | records/s | worker CPU s per 1k records | ratio to raw broker |",
        "|---|---|---|---|",
        f"| raw broker (bare shared-subscription subscriber) | {raw:,.0f} | - | 1.00 |",
    ]
    for name, (rate, cpu_k) in ingest.items():
        lines.append(
            f"| ingest worker into {name}, until the last ack | {rate:,.0f} | {cpu_k:.3f} | "
            f"{rate / raw:.4f} (1/{raw / rate:,.0f}) |"
        )
    per_day = n / args.days / 86400 * 60  # records per minute, whole store
    store_minute_cpu_ms = live_ms * args.cameras
    lines += [
        "",
        f"Edge CPU of live sync: {live_ms:.1f} ms per camera-minute synced on its own "
        f"({per_minute:.1f} records, {n_live} camera-minutes, HTTP into a SQLite hub); "
        f"{args.cameras} cameras = {store_minute_cpu_ms:.0f} ms per minute = "
        f"{store_minute_cpu_ms / 600:.3f}% of one core (store average {per_day:.0f} "
        "records/min).",
        f"During `process_video` on one-by-one-person-detection.mp4 with live sync on: sync "
        f"thread {sync_cpu:.2f} s of {proc_cpu:.1f} s process CPU "
        f"({100 * sync_cpu / proc_cpu:.2f}%), {piped} records sent.",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_append:
        append_section("Sync: backlog drain, MQTT ingest, edge CPU", body)


if __name__ == "__main__":
    main()
