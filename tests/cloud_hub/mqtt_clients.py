"""MQTT test peers: the hub's ingest worker as a real subprocess, and an edge-like paho client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from common.sync import BatchAck, BatchRejected
from common.topics import PREFIX
from tests.services import wait_for


class WorkerProcess:
    """``python -m cloud_hub.cli mqtt-worker --name NAME`` against a broker and a database."""

    def __init__(self, workdir: Path, broker_port: int, database_url: str, name: str = "1"):
        self.name = name
        self.log_path = workdir / f"worker-{name}.log"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "RETAIL_HUB_MQTT_HOST": "127.0.0.1",
            "RETAIL_HUB_MQTT_PORT": str(broker_port),
            "RETAIL_HUB_DB_RETRY_MAX_S": "1",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0
        workdir.mkdir(parents=True, exist_ok=True)

    def start(self, wait_subscribed: bool = True) -> None:
        """Start the worker; by default wait until it has subscribed."""
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cloud_hub.cli", "mqtt-worker", "--name", self.name],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait_subscribed:
            self.wait_log("subscribed to")

    def stop(self, kill: bool = False) -> int:
        """SIGTERM (or SIGKILL) and wait; the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code

    def log(self, since_start: bool = True) -> str:
        """The log (of this run only, by default)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(self._log_start if since_start else 0)
            return f.read().decode(errors="replace")

    def wait_log(self, text: str, times: int = 1, timeout_s: float = 30.0) -> None:
        """Wait until ``text`` appears ``times`` times in this run's log."""

        def seen() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log()}")
            return self.log().count(text) >= times

        try:
            wait_for(seen, timeout_s, f"{text!r} x{times} in worker {self.name}'s log")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.log()}") from None

    def ingested(self) -> int:
        """Batches this worker acknowledged as ingested, over all its runs."""
        return self.log(since_start=False).count("ingested batch")


class EdgeClient:
    """A paho client that publishes telemetry like an edge and collects the hub's answers."""

    def __init__(self, broker_port: int) -> None:
        self.answers: list[BatchAck | BatchRejected] = []
        self.answer_topics: list[str] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"edge-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: self._subscribed.set()
        self.client.connect("127.0.0.1", broker_port)
        self.client.loop_start()
        self.client.subscribe(f"{PREFIX}/+/+/ack", qos=1)
        if not self._subscribed.wait(10):
            raise TimeoutError("edge client not subscribed to acks")

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        answer: BatchAck | BatchRejected
        try:
            answer = BatchAck.model_validate_json(msg.payload)
        except ValidationError:  # not an ack: then it must be a rejection
            answer = BatchRejected.model_validate_json(msg.payload)
        with self._lock:
            self.answers.append(answer)
            self.answer_topics.append(msg.topic)

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published(), f"no PUBACK for {topic}"

    def acks(self) -> list[BatchAck]:
        """The BatchAcks received so far."""
        with self._lock:
            return [a for a in self.answers if isinstance(a, BatchAck)]

    def wait_answers(self, n: int, timeout_s: float = 60.0) -> list[BatchAck | BatchRejected]:
        """Wait until ``n`` answers arrived; all of them."""
        wait_for(lambda: len(self.answers) >= n, timeout_s, f"{n} answers from the hub")
        with self._lock:
            return list(self.answers)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
