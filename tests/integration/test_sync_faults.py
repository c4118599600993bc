"""Fault injection across the whole sync path: real edge processes, hub processes, broker and
databases, killed and restarted while records flow. Each ends with the hub holding exactly
what the edge produced: every seq 1..N once (no gap), and rollup totals equal to the known
sum (a duplicate would add to them: the hub merges rollups that share a bucket)."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from tests.cloud_hub.hub_process import HubProcess
from tests.cloud_hub.mqtt_clients import WorkerProcess
from tests.integration.edge_producer import expected_count
from tests.services import MosquittoProcess, PostgresProcess, wait_for

REPO = Path(__file__).resolve().parents[2]
ASSETS_MODEL = "../shared/assets/models/person/yolox_nano.onnx"


class Producer:
    """``tests.integration.edge_producer`` as a child process, killed and restarted at will."""

    def __init__(self, config: Path, total: int, rate: float) -> None:
        self.config, self.total, self.rate = config, total, rate
        self.proc: subprocess.Popen[str] | None = None
        self.log = config.with_suffix(".log")

    def start(self, config: Path | None = None) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "tests.integration.edge_producer",
                    str(config or self.config), "--total", str(self.total),
                    "--rate", str(self.rate), "--drain-timeout", "180",
                ],
                cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True,
            )  # fmt: skip
        self.appended = 0
        self.lines: list[str] = []
        # Read its output on a thread: run_for must never block on a producer that went quiet
        # (all appended, draining) or the test's timeline would stretch to the drain timeout.
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line)
            if line.startswith("appended"):
                self.appended = int(line.split()[1])

    def run_for(self, seconds: float) -> None:
        """Let it run for ``seconds`` (its progress is read meanwhile)."""
        time.sleep(seconds)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def finish(self, timeout_s: float = 240.0) -> None:
        """Wait for it to append the rest and drain; fails with its log otherwise."""
        assert self.proc is not None
        self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=10)
        out = "".join(self.lines)
        assert self.proc.returncode == 0 and "drained" in out, (
            f"producer exit {self.proc.returncode}: {out[-500:]}\n{self.log.read_text()[-3000:]}"
        )


def write_config(path: Path, sync: dict[str, object], outbox: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "store_id": "s1",
                "device_id": "d1",
                "model": {"path": str(REPO / ASSETS_MODEL)},
                "cameras": [{"id": "cam-1", "source": "unused.mp4"}],
                "outbox": {"path": str(outbox)},
                "sync": {"idle_s": 0.2, "backoff_initial_s": 0.2, "backoff_cap_s": 2.0} | sync,
            }
        )
    )
    return path


def http_sync(hub: HubProcess) -> dict[str, object]:
    return {"transport": "http", "hub_url": hub.url, "ack_timeout_s": 10.0}


def mqtt_sync(broker: MosquittoProcess) -> dict[str, object]:
    return {
        "transport": "mqtt",
        "mqtt_host": "127.0.0.1",
        "mqtt_port": broker.port,
        "mqtt_tls": False,
        "ack_timeout_s": 5.0,
    }


def assert_hub_holds_exactly(database_url: str, total: int) -> None:
    """Every seq 1..total once, and rollup counts adding up to exactly what was produced."""
    engine = create_hub_engine(database_url)
    try:
        with engine.connect() as c:
            seqs = [
                r[0]
                for r in c.execute(
                    sa.text("SELECT seq FROM received_records WHERE device_id = 'd1' ORDER BY seq")
                )
            ]
            rows, counted = c.execute(
                sa.text("SELECT COUNT(*), COALESCE(SUM(count), 0) FROM rollups")
            ).one()
            dead = c.execute(sa.text("SELECT COUNT(*) FROM dead_letters")).scalar_one()
    finally:
        engine.dispose()
    assert seqs == list(range(1, total + 1)), (len(seqs), seqs[:5], seqs[-5:])
    assert rows == total
    assert counted == sum(expected_count(k) for k in range(1, total + 1))
    assert dead == 0


def ledger_size(database_url: str) -> int:
    """How many of device d1's records the hub has committed."""
    engine = create_hub_engine(database_url)
    try:
        with engine.connect() as c:
            sql = "SELECT COUNT(*) FROM received_records WHERE device_id = 'd1'"
            return int(c.execute(sa.text(sql)).scalar_one())
    finally:
        engine.dispose()


def sqlite_hub(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_database(url)
    return url


@pytest.mark.slow
def test_edge_sigkilled_while_writing_and_syncing_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    url = sqlite_hub(tmp_path)
    hub = HubProcess(tmp_path)
    hub.start(url, device_auth="open")
    try:
        cfg = write_config(tmp_path / "edge.yaml", http_sync(hub), tmp_path / "outbox.sqlite3")
        producer = Producer(cfg, total=2500, rate=250)
        rng = random.Random(7)
        for _ in range(5):
            producer.start()
            producer.run_for(rng.uniform(0.8, 2.5))
            producer.kill()
        producer.start()
        producer.finish()
        assert_hub_holds_exactly(url, 2500)
    finally:
        hub.stop()


@pytest.mark.slow
def test_hub_sigkilled_mid_batch_and_restarted(tmp_path: Path) -> None:
    url = sqlite_hub(tmp_path)
    hub = HubProcess(tmp_path)
    hub.start(url, device_auth="open")
    try:
        cfg = write_config(tmp_path / "edge.yaml", http_sync(hub), tmp_path / "outbox.sqlite3")
        producer = Producer(cfg, total=3000, rate=300)
        producer.start()
        for pause in (1.0, 1.5, 0.7):
            producer.run_for(pause)
            hub.stop(kill=True)
            producer.run_for(1.0)  # appends go on while the hub is gone
            hub.start(url, device_auth="open")
        producer.finish()
        assert_hub_holds_exactly(url, 3000)
    finally:
        hub.stop()


@pytest.mark.slow
def test_hub_database_restarted_under_load(
    tmp_path: Path, pg_url: str, postgres_server: PostgresProcess
) -> None:
    upgrade_database(pg_url)
    hub = HubProcess(tmp_path)
    hub.start(pg_url, device_auth="open")
    try:
        cfg = write_config(tmp_path / "edge.yaml", http_sync(hub), tmp_path / "outbox.sqlite3")
        producer = Producer(cfg, total=2500, rate=250)
        producer.start()
        for mode in ("immediate", "fast"):
            producer.run_for(1.5)
            postgres_server.stop(mode)
            producer.run_for(1.5)
            postgres_server.start()
        producer.finish()
        assert_hub_holds_exactly(pg_url, 2500)
    finally:
        hub.stop()


@pytest.mark.slow
def test_long_broker_outage_worker_killed_then_switch_to_http(
    tmp_path: Path, mosquitto: MosquittoProcess
) -> None:
    """MQTT: the broker is down for 15 s while the edge keeps appending, the hub's worker is
    SIGKILLed mid-run, and finally the edge is killed and restarted on HTTP to finish."""
    url = sqlite_hub(tmp_path)
    worker = WorkerProcess(tmp_path, mosquitto.port, url)
    worker.start()
    hub = HubProcess(tmp_path)
    hub.start(url, device_auth="open")
    try:
        outbox = tmp_path / "outbox.sqlite3"
        cfg_mqtt = write_config(tmp_path / "edge-mqtt.yaml", mqtt_sync(mosquitto), outbox)
        cfg_http = write_config(tmp_path / "edge-http.yaml", http_sync(hub), outbox)
        producer = Producer(cfg_mqtt, total=6000, rate=200)  # 30 s of appends
        producer.start()
        producer.run_for(2.0)
        mosquitto.stop()
        before_outage = producer.appended
        producer.run_for(15.0)
        during_outage = producer.appended - before_outage
        mosquitto.start()
        producer.run_for(2.0)
        worker.stop(kill=True)
        producer.run_for(1.0)
        worker.start()
        # Over MQTT again: the edge and the worker reconnected and the outage's backlog flows
        # (the ledger passes what was appended before the broker stopped); then the edge is
        # killed and restarted on HTTP for the rest.
        wait_for(lambda: ledger_size(url) > before_outage + 1000, 90, "MQTT sync resumed")
        producer.kill()
        producer.start(cfg_http)
        producer.finish()
        assert during_outage > 2000  # the outage really spanned thousands of appends
        assert_hub_holds_exactly(url, 6000)
        assert worker.ingested() > 0
    finally:
        hub.stop()
        worker.stop()


@pytest.mark.slow
def test_switch_from_http_to_mqtt_mid_run(tmp_path: Path, mosquitto: MosquittoProcess) -> None:
    """HTTP first; the hub is SIGKILLed while batches are in flight (some committed, never
    acked) and the edge is SIGKILLed too; the edge comes back on MQTT and finishes there."""
    url = sqlite_hub(tmp_path)
    hub = HubProcess(tmp_path)
    hub.start(url, device_auth="open")
    worker = WorkerProcess(tmp_path, mosquitto.port, url)
    worker.start()
    try:
        outbox = tmp_path / "outbox.sqlite3"
        cfg_http = write_config(tmp_path / "edge-http.yaml", http_sync(hub), outbox)
        cfg_mqtt = write_config(tmp_path / "edge-mqtt.yaml", mqtt_sync(mosquitto), outbox)
        producer = Producer(cfg_http, total=3000, rate=300)
        producer.start()
        producer.run_for(3.0)
        hub.stop(kill=True)
        producer.kill()
        over_http = ledger_size(url)
        assert 0 < over_http < 3000
        producer.start(cfg_mqtt)
        producer.finish()
        assert_hub_holds_exactly(url, 3000)
        assert worker.ingested() > 0
    finally:
        worker.stop()
