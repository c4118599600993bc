"""The device twin over MQTT: each device's desired state as the retained QoS 1 message on its
``retail/v1/{store}/{device}/desired`` topic, so a box that syncs over MQTT learns of a change
at once and gets the current state again on every (re)connect.

``publish_desired`` (the ``desired_publish`` job of ``retail-hub worker``, every
``RETAIL_HUB_DESIRED_PUBLISH_INTERVAL_S``) picks the twins whose ``revision`` is newer than
``published_revision`` (the revision the broker retains for the device; null: none), publishes
``rollouts.desired_state()`` of each and records the revision only once the broker acknowledged
it (a PUBACK with a success reason). A broker that is down, refuses the hub or drops the
connection loses nothing: the next period publishes again. Publishing a revision twice (its
PUBACK lost with the connection) is harmless: the message is retained and the edge ignores a
revision it already has.

A device whose credential is revoked gets its retained message cleared (an empty retained
payload, as MQTT deletes a retained message) and ``published_revision`` null again, so a
device enrolled again gets its state published anew.

Each run opens its own connection with a clean session and closes it before returning: a
message left unacknowledged by one run is never replayed by a later reconnect, after a newer
revision.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.engine import Connection

from cloud_hub.core.broker import use_credentials
from cloud_hub.core.config import HubSettings
from cloud_hub.models import DEVICE_CREDENTIALS, DEVICE_TWINS
from cloud_hub.services.rollouts import desired_state
from common.topics import DeviceTopics

log = logging.getLogger(__name__)

MAX_PER_RUN = 1000  # twins published per run; the rest wait for the next period
PUBLISH_TIMEOUT_S = 5.0  # connect + every PUBACK of one run, s


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached or refused the hub's login (the message says which)."""


@dataclass(frozen=True, slots=True)
class RetainedMessage:
    """A retained QoS 1 message to publish; an empty payload clears the topic's retained one."""

    topic: str
    payload: bytes


# Publishes the messages; for each, whether the broker acknowledged it. Raises BrokerUnavailable.
Publish = Callable[[Sequence[RetainedMessage]], list[bool]]


@dataclass(frozen=True, slots=True)
class TwinToPublish:
    """A twin whose retained message is out of date: publish ``revision``, or clear it."""

    device_id: str
    store_id: str
    revision: int
    clear: bool  # the device's credential is revoked


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What one run did: messages acknowledged, and those still to do next period."""

    published: int
    cleared: int
    unacknowledged: int


def twins_to_publish(conn: Connection, limit: int = MAX_PER_RUN) -> list[TwinToPublish]:
    """Twins of unrevoked devices (or devices without a credential) whose revision the broker
    does not retain yet, and twins of revoked devices that still have a retained message."""
    t, c = DEVICE_TWINS.c, DEVICE_CREDENTIALS.c
    revoked = c.revoked_at.is_not(None)
    rows = conn.execute(
        select(t.device_id, t.store_id, t.revision, revoked.label("revoked"))
        .select_from(DEVICE_TWINS.outerjoin(DEVICE_CREDENTIALS, c.device_id == t.device_id))
        .where(
            or_(
                and_(
                    c.revoked_at.is_(None),
                    or_(t.published_revision.is_(None), t.revision > t.published_revision),
                ),
                and_(revoked, t.published_revision.is_not(None)),
            )
        )
        .order_by(t.device_id)
        .limit(limit)
    ).all()
    return [TwinToPublish(str(d), str(s), int(r), bool(x)) for d, s, r, x in rows]


def mark_published(conn: Connection, device_id: str, revision: int) -> None:
    """Record that the broker retains ``revision`` for the device (never moves backwards)."""
    t = DEVICE_TWINS.c
    conn.execute(
        update(DEVICE_TWINS)
        .where(
            t.device_id == device_id,
            or_(t.published_revision.is_(None), t.published_revision < revision),
        )
        .values(published_revision=revision)
    )


def mark_cleared(conn: Connection, device_id: str) -> None:
    """Record that the broker retains nothing for the device."""
    t = DEVICE_TWINS.c
    conn.execute(
        update(DEVICE_TWINS).where(t.device_id == device_id).values(published_revision=None)
    )


def publish_desired(engine: Engine, publish: Publish, limit: int = MAX_PER_RUN) -> PublishResult:
    """Publish every out-of-date twin through ``publish`` and record what the broker
    acknowledged.

    Raises:
        BrokerUnavailable: from ``publish``; nothing was recorded.
    """
    with engine.connect() as conn:
        # The revision each message carries: a change committed since the select is newer.
        pairs = [_with_message(conn, twin) for twin in twins_to_publish(conn, limit)]
    if not pairs:
        return PublishResult(0, 0, 0)
    todo = [twin for twin, _ in pairs]
    acked = publish([message for _, message in pairs])
    with engine.begin() as conn:
        for twin, ok in zip(todo, acked, strict=True):
            if ok and twin.clear:
                mark_cleared(conn, twin.device_id)
            elif ok:
                mark_published(conn, twin.device_id, twin.revision)
    done = [twin for twin, ok in zip(todo, acked, strict=True) if ok]
    published = [f"{t.device_id} r{t.revision}" for t in done if not t.clear]
    cleared = [t.device_id for t in done if t.clear]
    if published:
        log.info("desired state published to %d device(s): %s", len(published), _few(published))
    if cleared:
        log.info("retained desired state cleared for revoked device(s): %s", _few(cleared))
    missing = len(todo) - len(done)
    if missing:
        log.warning("desired state: %d publish(es) not acknowledged; next period", missing)
    return PublishResult(len(published), len(cleared), missing)


def _with_message(conn: Connection, twin: TwinToPublish) -> tuple[TwinToPublish, RetainedMessage]:
    topic = DeviceTopics(twin.store_id, twin.device_id).desired
    if twin.clear:
        return twin, RetainedMessage(topic, b"")
    desired = desired_state(conn, twin.device_id, twin.store_id)
    message = RetainedMessage(topic, desired.model_dump_json().encode())
    return replace(twin, revision=desired.revision), message


def _few(items: list[str], n: int = 10) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def publish_retained(
    settings: HubSettings,
    client_id: str,
    messages: Sequence[RetainedMessage],
    timeout_s: float = PUBLISH_TIMEOUT_S,
) -> list[bool]:
    """Publish ``messages`` retained at QoS 1 over one new connection with the hub's broker
    credentials, wait up to ``timeout_s`` seconds (connect included) for their PUBACKs and
    disconnect. For each message: whether the broker acknowledged it with a success reason.

    Raises:
        BrokerUnavailable: no connection, or the broker refused the login.
    """
    where = f"{settings.mqtt_host}:{settings.mqtt_port}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    use_credentials(client, settings)
    client.connect_timeout = timeout_s
    client.max_inflight_messages_set(100)
    connack: list[ReasonCode] = []
    pubacks: dict[int, ReasonCode] = {}

    def on_connect(
        _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: Properties | None
    ) -> None:
        connack.append(rc)

    def on_publish(
        _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: Properties | None
    ) -> None:
        pubacks[mid] = rc

    client.on_connect = on_connect
    client.on_publish = on_publish
    deadline = time.monotonic() + timeout_s
    try:
        client.connect(settings.mqtt_host, settings.mqtt_port, settings.mqtt_keepalive_s)
    except (OSError, ValueError) as exc:  # refused, unreachable, TLS failure
        raise BrokerUnavailable(f"broker {where}: {exc}") from exc
    try:
        while not connack and time.monotonic() < deadline:
            rc = client.loop(0.05)
            if not connack and rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise BrokerUnavailable(f"broker {where} closed the connection before CONNACK")
        if not connack:
            raise BrokerUnavailable(f"broker {where} did not answer within {timeout_s} s")
        if connack[0].is_failure:
            raise BrokerUnavailable(f"broker {where} refused {client_id}: {connack[0]}")
        infos = [client.publish(m.topic, m.payload, qos=1, retain=True) for m in messages]
        sent = {i.mid for i in infos if i.rc == MQTTErrorCode.MQTT_ERR_SUCCESS}
        while not sent <= pubacks.keys() and time.monotonic() < deadline:
            if client.loop(0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break  # connection lost: what was not acknowledged goes again next period
        refused = {rc.getName() for mid, rc in pubacks.items() if rc.is_failure}
        if refused:
            log.error("broker %s refused desired state publishes: %s", where, sorted(refused))
        return [i.mid in sent and i.mid in pubacks and not pubacks[i.mid].is_failure for i in infos]
    finally:
        client.disconnect()
        client.loop(0.05)  # send the DISCONNECT


class DesiredPublishJob:
    """The ``desired_publish`` job: ``run(now)`` publishes what changed. A broker outage is
    logged once (a warning) and again when it ends, not every period."""

    def __init__(self, engine: Engine, settings: HubSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.client_id = f"hub-desired-{settings.worker_name}"
        self._failing = False

    def _publish(self, messages: Sequence[RetainedMessage]) -> list[bool]:
        return publish_retained(self.settings, self.client_id, messages)

    def run(self, _now: float) -> PublishResult | None:
        """One period; None while the broker is unavailable (the twins stay to publish)."""
        try:
            done = publish_desired(self.engine, self._publish)
        except BrokerUnavailable as exc:
            log.log(
                logging.DEBUG if self._failing else logging.WARNING,
                "desired state not published: %s (trying again every period)",
                exc,
            )
            self._failing = True
            return None
        if self._failing and done != PublishResult(0, 0, 0):  # the broker answered again
            log.info("desired state: broker reachable again")
            self._failing = False
        return done
