"""Device status from MQTT: each device's retained ``retail/v1/{store}/{device}/status``
(``online`` on connect; ``offline`` from its last will or a clean stop) into the database, and
the device offline rule applied to that device at once (``services.offline``).

Every ingest worker runs one listener with an ordinary (not shared) subscription: retained
messages are not delivered on shared subscriptions, and status messages are few. Each worker
thus sees every status; recording one is idempotent (the status time changes only when the
status does) and a device holds one live offline alert at most, so several workers agree.
The session is not persistent: after a reconnect the retained messages give the current state.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from cloud_hub.core.broker import use_credentials
from cloud_hub.core.config import HubSettings
from cloud_hub.services.offline import DeviceStatus, check_devices, record_status
from common.topics import PREFIX, parse_device_topic

log = logging.getLogger(__name__)

STATUS_SUBSCRIPTION = f"{PREFIX}/+/+/status"
RETRY_MAX_S = 30.0


def apply_status(
    engine: Engine,
    store_id: str,
    device_id: str,
    payload: bytes,
    now: float,
    offline_after_s: float,
) -> bool:
    """Record one status message and re-check that device; False for a payload that is not
    ``online``/``offline`` (logged, nothing stored).

    Raises:
        sqlalchemy.exc.OperationalError: the database is unreachable (nothing was stored).
    """
    try:
        status = DeviceStatus(payload.decode("utf-8", errors="replace").strip())
    except ValueError:
        log.warning(
            "store %s device %s: status %r is neither online nor offline; ignored",
            store_id, device_id, payload[:40],
        )  # fmt: skip
        return False
    with engine.begin() as conn:
        record_status(conn, store_id, device_id, status, now)
        done = check_devices(conn, now, offline_after_s, [device_id])
    log.info(
        "store %s device %s is %s (offline alert: %d opened, %d resolved)",
        store_id, device_id, status.value, done.opened, done.resolved,
    )  # fmt: skip
    return True


class DeviceStatusListener:
    """Subscribes to every device's status topic and applies what arrives: ``start()`` /
    ``stop()``. Messages are handled in order on one thread; while the database is down the
    current one is retried with a growing delay (later ones wait)."""

    def __init__(
        self, settings: HubSettings, engine: Engine, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.client_id = f"hub-status-{settings.worker_name}"
        self._inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        use_credentials(self._client, settings)
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    def start(self) -> None:
        """Connect in the background and start handling messages."""
        s = self.settings
        self._stop.clear()
        self._client.connect_async(s.mqtt_host, s.mqtt_port, s.mqtt_keepalive_s, clean_start=True)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, name="device-status", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Disconnect and stop handling (a message being retried is dropped: it is retained,
        so the next start reads it again)."""
        self._stop.set()
        self._client.disconnect()
        self._client.loop_stop()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            self._handle(msg)

    def _handle(self, msg: mqtt.MQTTMessage) -> None:
        try:
            store_id, device_id, _leaf = parse_device_topic(msg.topic)
        except ValueError as exc:  # the subscription filter makes this a broker bug
            log.error("status on unexpected topic %r ignored: %s", msg.topic, exc)
            return
        delay = 0.5
        while not self._stop.is_set():
            try:
                apply_status(
                    self.engine,
                    store_id,
                    device_id,
                    bytes(msg.payload),
                    self.clock(),
                    self.settings.offline_after_s,
                )
                return
            except OperationalError as exc:
                log.warning(
                    "store %s device %s: database unreachable (%s); status retried in %.1f s",
                    store_id, device_id, " ".join(str(exc.orig).split()), delay,
                )  # fmt: skip
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused %s: %s (retrying)", self.client_id, reason)
            return
        client.subscribe(STATUS_SUBSCRIPTION, options=SubscribeOptions(qos=1))
        log.info("listening for device status on %s", STATUS_SUBSCRIPTION)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put(msg)
