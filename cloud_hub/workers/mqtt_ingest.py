"""MQTT ingest worker: telemetry batches from the broker into the database, acked after commit.

The worker subscribes at QoS 1 to the shared subscription ``$share/hub/retail/v1/+/+/telemetry``
with a persistent MQTT v5 session (fixed client id ``hub-ingest-{name}``, ``clean_start`` false,
a session expiry), so several workers split the load and the broker keeps what arrives while a
worker is down. Messages are acknowledged by hand (paho ``manual_ack``): for each message the
worker decodes and ingests it in one transaction, publishes the ``BatchAck`` (or
``BatchRejected``) on the device's ``ack`` topic at QoS 1, and only then sends the PUBACK. A
worker killed before that PUBACK gets the message again (the broker re-sends unacknowledged
messages when the session resumes) and the ingest ledger turns the re-send into a duplicate.

While the database is down the worker acknowledges nothing: it retries the same message with a
growing, logged back-off, and later messages wait in the broker.

Mosquitto 2.0 and shared subscriptions: the broker hands each message of a share group to the
next member in turn, including members that are offline with a live session; a message handed
to a stopped worker stays queued in that worker's session until it comes back (or its session
expires, ``RETAIL_HUB_MQTT_SESSION_EXPIRY_S``). Restart a stopped worker under the same name,
or its share of the queue waits for it.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from cloud_hub.core.broker import use_credentials
from cloud_hub.core.config import HubSettings
from cloud_hub.services.payloads import ingest_payload, reject_payload
from common.sync import BatchAck, BatchRejected
from common.topics import DeviceTopics, hub_telemetry_subscription, parse_device_topic

log = logging.getLogger(__name__)

FIRST_RETRY_S = 0.5


class MqttIngestWorker:
    """One ingest worker: owns an MQTT client and ingests what it receives until stopped."""

    def __init__(
        self, settings: HubSettings, engine: Engine, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.client_id = f"hub-ingest-{settings.worker_name}"
        self.subscription = hub_telemetry_subscription(settings.mqtt_share_group)
        self._inbox: queue.Queue[tuple[int, mqtt.MQTTMessage]] = queue.Queue()
        self._connection = 0  # bumped on every connect; a message is acked on its own only
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        use_credentials(client, s)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def run(self, stop: threading.Event) -> None:
        """Connect, ingest until ``stop`` is set, then disconnect (the session stays)."""
        s = self.settings
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = s.mqtt_session_expiry_s
        props.ReceiveMaximum = s.mqtt_receive_maximum
        log.info(
            "worker %s connecting to %s:%d (share group %s)",
            self.client_id, s.mqtt_host, s.mqtt_port, s.mqtt_share_group,
        )  # fmt: skip
        self._client.connect_async(
            s.mqtt_host, s.mqtt_port, s.mqtt_keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()
        try:
            while not stop.is_set():
                try:
                    connection, msg = self._inbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                if connection != self._connection:
                    log.info(
                        "dropping mid %d of a lost connection; the broker re-sends it", msg.mid
                    )
                    continue
                self._handle(msg, connection, stop)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            log.info("worker %s stopped", self.client_id)

    def _handle(self, msg: mqtt.MQTTMessage, connection: int, stop: threading.Event) -> None:
        try:
            store_id, device_id, _leaf = parse_device_topic(msg.topic)
        except ValueError as exc:  # the subscription filter makes this a broker bug
            log.error("message on unexpected topic %r not ingested: %s", msg.topic, exc)
            self._client.ack(msg.mid, msg.qos)
            return
        source = DeviceTopics(store_id, device_id)
        result = self._ingest(bytes(msg.payload), source, stop)
        if result is None:
            return  # stopping while the database is down: not acked, the broker keeps it
        info = self._client.publish(source.ack, result.model_dump_json(), qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS or connection != self._connection:
            log.warning(
                "store %s device %s: connection lost before the ack of mid %d; the broker "
                "re-sends the batch and the hub answers it as a duplicate",
                store_id, device_id, msg.mid,
            )  # fmt: skip
            return
        self._client.ack(msg.mid, msg.qos)
        if isinstance(result, BatchAck):
            log.info(
                "ingested batch %s from store %s device %s: %d committed range(s), "
                "%d duplicate(s), %d dead-lettered",
                result.batch_id, store_id, device_id, len(result.committed),
                result.duplicates, len(result.dead_lettered),
            )  # fmt: skip

    def _ingest(
        self, payload: bytes, source: DeviceTopics, stop: threading.Event
    ) -> BatchAck | BatchRejected | None:
        """The answer for ``payload``, retrying while the database is down; None if stopped."""
        s = self.settings
        delay = FIRST_RETRY_S
        while True:
            try:
                if len(payload) > s.max_body_bytes:
                    reason = f"payload of {len(payload)} bytes exceeds {s.max_body_bytes}"
                    return reject_payload(self.engine, payload, reason, self.clock(), None, source)
                return ingest_payload(
                    self.engine,
                    payload,
                    self.clock(),
                    source=source,
                    max_batch_bytes=s.max_batch_bytes,
                )
            except OperationalError as exc:
                log.warning(
                    "store %s device %s: database unreachable (%s); batch not acknowledged, "
                    "retrying in %.1f s",
                    source.store_id, source.device_id, str(exc.orig).strip(), delay,
                )  # fmt: skip
                if stop.wait(delay):
                    return None
                delay = min(delay * 2, s.db_retry_max_s)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused %s: %s (retrying)", self.client_id, reason)
            return
        self._connection += 1
        log.info("connected as %s (session present: %s)", self.client_id, flags.session_present)
        client.subscribe(self.subscription, options=SubscribeOptions(qos=1))

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        if any(r.is_failure for r in reasons):
            log.error("subscription to %s refused: %s", self.subscription, reasons)
        else:
            log.info("subscribed to %s", self.subscription)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        log.warning("disconnected from the broker: %s", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put((self._connection, msg))


def stop_on_signals() -> threading.Event:
    """An event that SIGTERM and SIGINT set (call from the main thread)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping after the current batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def main(argv: list[str] | None = None) -> int:
    """``python -m cloud_hub.workers.mqtt_ingest``: same as ``retail-hub mqtt-worker``."""
    from cloud_hub.cli import main as cli_main

    return cli_main(["mqtt-worker", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
