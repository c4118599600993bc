"""The edge's MQTT transport follows its retained ``desired`` topic on a real Mosquitto: the
retained message arrives on connect and again after every reconnect (the transport subscribes
each time), an empty retained payload is not passed on, and a handler that raises does not
stop later messages."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from common.topics import DeviceTopics
from edge_agent.sync import MqttTransport
from tests.services import MosquittoProcess, wait_for

TOPICS = DeviceTopics("s1", "box-1")


def publish_retained(port: int, payload: bytes) -> None:
    """Publish ``payload`` retained at QoS 1 on the box's desired topic, as the hub does."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"hub-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        info = client.publish(TOPICS.desired, payload, qos=1, retain=True)
        info.wait_for_publish(timeout=10)
        assert info.is_published(), "no PUBACK"
    finally:
        client.disconnect()
        client.loop_stop()


def test_desired_state_arrives_on_every_connect_and_bad_payloads_do_not_stop_it(
    mosquitto: MosquittoProcess,
) -> None:
    got: list[bytes] = []
    lock = threading.Lock()

    def handler(payload: bytes) -> None:
        with lock:
            got.append(payload)
        if payload == b"boom":
            raise ValueError("a handler that fails")

    def seen() -> list[bytes]:
        with lock:
            return list(got)

    publish_retained(mosquitto.port, b'{"revision": 1}')
    t = MqttTransport("127.0.0.1", mosquitto.port, "s1", "box-1", reconnect_max_s=1)
    t.set_desired_handler(handler)
    t.start()
    try:
        wait_for(lambda: seen() == [b'{"revision": 1}'], 30, "the retained message on connect")
        # The broker's restart keeps the box's session (with its subscription): the retained
        # message comes again only because the transport subscribes again on reconnect.
        mosquitto.stop()
        mosquitto.start()
        wait_for(lambda: len(seen()) == 2, 60, "the retained message after the reconnect")
        assert seen()[1] == b'{"revision": 1}'
        for payload in (b"", b"boom", b'{"revision": 2}'):
            publish_retained(mosquitto.port, payload)
        wait_for(lambda: seen()[-1:] == [b'{"revision": 2}'], 30, "the message after a failure")
        assert seen() == [b'{"revision": 1}', b'{"revision": 1}', b"boom", b'{"revision": 2}']
        assert t.connected
    finally:
        t.stop()
