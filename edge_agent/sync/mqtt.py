"""Batches to the hub over MQTT: publish on the device's telemetry topic, wait for the hub's
``BatchAck`` on its ack topic.

The client keeps a persistent MQTT v5 session (fixed client id, ``clean_start`` false, a
session expiry), so acks the hub publishes while the box is offline wait in the broker and
arrive after reconnecting. A QoS 1 PUBACK only says the broker has the batch; the records are
delivered when the hub's ack (sent after its database commit) names them. An ack for a batch
``send`` stopped waiting for goes to the late-ack handler, so those records are marked
delivered too. The last will sets the retained status topic to ``offline``; each connect sets
it to ``online``.

With a desired-state handler set (``retail-edge run`` with a ``twin:`` section), every
(re)connect also subscribes to the device's retained ``desired`` topic (QoS 1): the broker sends
the hub's current desired state at once and each change as the hub publishes it. The handler
gets the raw payload on paho's network thread; an empty payload (the hub cleared the retained
message) is not passed on.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import ValidationError

from common.sync import BatchAck, BatchRejected, TelemetryBatch, encode_batch
from common.topics import DeviceTopics
from edge_agent.sync.errors import BatchRejectedError, TransportError
from edge_agent.sync.transport import LateAckHandler

log = logging.getLogger(__name__)

ONLINE, OFFLINE = b"online", b"offline"
_Answer = BatchAck | BatchRejected
DesiredHandler = Callable[[bytes], None]  # the retained desired state's payload (JSON)


class MqttTransport:
    """One device's MQTT connection to the hub's broker. ``start()`` before ``send``;
    ``stop()`` at the end (publishes ``offline`` and disconnects; the session stays)."""

    def __init__(
        self,
        host: str,
        port: int,
        store_id: str,
        device_id: str,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        ack_timeout_s: float = 30.0,
        keepalive_s: int = 30,
        session_expiry_s: int = 7 * 86400,
        reconnect_min_s: int = 1,
        reconnect_max_s: int = 30,
    ) -> None:
        self.host, self.port = host, port
        self.topics = DeviceTopics(store_id, device_id)
        self.client_id = client_id or f"edge-{store_id}-{device_id}"
        self.ack_timeout_s = ack_timeout_s
        self.keepalive_s = keepalive_s
        self.session_expiry_s = session_expiry_s
        self._cond = threading.Condition()
        self._waiting: dict[str, _Answer | None] = {}
        self._late: LateAckHandler | None = None
        self._desired: DesiredHandler | None = None
        self._connected = threading.Event()
        self._was_connected = False
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls:
            self._client.tls_set(
                ca_certs=ca_file,
                certfile=cert_file,
                keyfile=key_file,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self._client.will_set(self.topics.status, OFFLINE, qos=1, retain=True)
        self._client.reconnect_delay_set(reconnect_min_s, reconnect_max_s)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying until the broker answers) and keep connected."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        self._client.connect_async(
            self.host, self.port, self.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()
        log.info("MQTT %s connecting to %s:%d", self.client_id, self.host, self.port)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish ``offline`` (retained), disconnect and stop the network thread."""
        if self._connected.is_set():
            info = self._client.publish(self.topics.status, OFFLINE, qos=1, retain=True)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                info.wait_for_publish(timeout_s)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up now."""
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` seconds for the connection; True once connected."""
        return self._connected.wait(timeout_s)

    def set_desired_handler(self, handler: DesiredHandler | None) -> None:
        """``handler(payload)`` gets each desired state the hub publishes for this device
        (paho's thread; it must not block long). Set it before ``start()``: the subscription is
        made on every connect; set later, it subscribes at once when connected."""
        self._desired = handler
        if handler is not None and self._connected.is_set():
            self._client.subscribe(self.topics.desired, options=SubscribeOptions(qos=1))

    # -- Transport ------------------------------------------------------------------------

    def set_late_ack_handler(self, handler: LateAckHandler | None) -> None:
        """``handler(ack)`` gets acks of batches ``send`` gave up waiting for (paho's thread)."""
        self._late = handler

    def send(self, batch: TelemetryBatch) -> BatchAck:
        """Publish ``batch`` (QoS 1) and wait up to ``ack_timeout_s`` for the hub's ack.

        Raises:
            TransportError: not connected, the publish failed, or no ack in time (the ack may
                still come later: it then goes to the late-ack handler).
            BatchRejectedError: the hub answered BatchRejected for this batch.
        """
        if not self._connected.is_set():
            raise TransportError(f"not connected to MQTT broker {self.host}:{self.port}")
        bid = batch.batch_id
        with self._cond:
            self._waiting[bid] = None
        info = self._client.publish(self.topics.telemetry, encode_batch(batch), qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            with self._cond:
                self._waiting.pop(bid, None)
            raise TransportError(
                f"publish to {self.host}:{self.port} failed: {mqtt.error_string(info.rc)}"
            )
        deadline = time.monotonic() + self.ack_timeout_s
        with self._cond:
            while (answer := self._waiting[bid]) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    del self._waiting[bid]
                    raise TransportError(
                        f"no ack from the hub for batch {bid} within {self.ack_timeout_s} s "
                        "(records stay pending; a late ack still marks them)"
                    )
                self._cond.wait(left)
            del self._waiting[bid]
        if isinstance(answer, BatchRejected):
            raise BatchRejectedError(answer)
        return answer

    # -- paho callbacks (network thread) --------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error(
                "MQTT broker %s:%d refused %s: %s", self.host, self.port, self.client_id, reason
            )
            return
        client.subscribe(self.topics.ack, options=SubscribeOptions(qos=1))
        if self._desired is not None:
            client.subscribe(self.topics.desired, options=SubscribeOptions(qos=1))
        client.publish(self.topics.status, ONLINE, qos=1, retain=True)
        log_at = logging.INFO if not self._was_connected else logging.WARNING
        log.log(
            log_at,
            "MQTT %s connected to %s:%d (session present: %s)",
            self.client_id,
            self.host,
            self.port,
            flags.session_present,
        )
        self._was_connected = True
        self._connected.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if self._connected.is_set():
            log.warning(
                "MQTT %s lost %s:%d: %s (reconnecting)",
                self.client_id,
                self.host,
                self.port,
                reason,
            )
        self._connected.clear()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topics.desired:
            self._on_desired(bytes(msg.payload))
            return
        if msg.topic != self.topics.ack:
            log.warning(
                "MQTT %s: message on unexpected topic %s ignored", self.client_id, msg.topic
            )
            return
        answer = _parse_answer(bytes(msg.payload))
        if answer is None:
            log.error(
                "MQTT %s: unreadable message on %s: %r",
                self.client_id,
                msg.topic,
                msg.payload[:200],
            )
            return
        with self._cond:
            if answer.batch_id in self._waiting:
                self._waiting[answer.batch_id] = answer
                self._cond.notify_all()
                return
        if isinstance(answer, BatchRejected):
            log.error("late rejection of batch %s by the hub: %s", answer.batch_id, answer.reason)
        elif self._late is not None:
            try:
                self._late(answer)
            except Exception:  # a handler failure must not kill paho's network thread
                log.exception("late ack of batch %s: handler failed", answer.batch_id)
        else:
            log.warning("late ack of batch %s with no handler: ignored", answer.batch_id)

    def _on_desired(self, payload: bytes) -> None:
        handler = self._desired
        if not payload:
            log.info("MQTT %s: the hub cleared the retained desired state", self.client_id)
            return
        if handler is None:
            log.debug("MQTT %s: desired state with no handler ignored", self.client_id)
            return
        try:
            handler(payload)
        except Exception:  # a handler failure must not kill paho's network thread
            log.exception("MQTT %s: desired state handler failed", self.client_id)


def _parse_answer(payload: bytes) -> _Answer | None:
    """The BatchAck or BatchRejected in ``payload``; None when it is neither."""
    for model in (BatchAck, BatchRejected):
        try:
            return model.model_validate_json(payload)
        except ValidationError:
            continue
    return None
