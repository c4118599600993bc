"""The device offline rule over MQTT, for real: the edge's own ``MqttTransport`` in a process
that is killed (the broker publishes its last will), a real Mosquitto, and the real
``retail-hub worker``, which opens a device_offline alert and resolves it when the device is
back; a will that came while the worker was down is read from the retained status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine

from cloud_hub.services.alerts import AlertFilter, AlertKind, AlertOut, AlertState, list_alerts
from tests.cloud_hub.mqtt_clients import WorkerProcess
from tests.services import MosquittoProcess, wait_for

DEVICE = """
import sys, time
from edge_agent.sync.mqtt import MqttTransport
t = MqttTransport("127.0.0.1", int(sys.argv[1]), "s1", "box1", keepalive_s=5)
t.start()
assert t.wait_connected(30), "no broker"
print("connected", flush=True)
time.sleep(3600)
"""


def _device(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", DEVICE, str(port)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "connected"
    return proc


def test_last_will_opens_an_offline_alert_and_coming_back_resolves_it(
    tmp_path: Path, mosquitto: MosquittoProcess, sqlite_url: str
) -> None:
    engine = create_engine(sqlite_url)

    def offline() -> list[AlertOut]:
        with engine.connect() as conn:
            f = AlertFilter(None, kind=AlertKind.DEVICE_OFFLINE)
            return list_alerts(conn, f, 100, 0).items

    worker = WorkerProcess(tmp_path / "worker", mosquitto.port, sqlite_url)
    worker.env["RETAIL_HUB_OFFLINE_AFTER_S"] = "3600"  # only the MQTT status matters here
    worker.start()
    worker.wait_log("listening for device status")
    device = _device(mosquitto.port)
    worker.wait_log("device box1 is online")
    assert offline() == []

    device.kill()  # no clean stop: the broker publishes the last will
    device.wait()
    wait_for(lambda: len(offline()) == 1, 60, "offline alert from the last will")
    [a] = offline()
    assert (a.store_id, a.device_id, a.state, a.source) == ("s1", "box1", AlertState.OPEN, "hub")
    assert "last will" in a.message

    device = _device(mosquitto.port)
    wait_for(lambda: offline()[0].state is AlertState.RESOLVED, 60, "resolved when back")
    assert offline()[0].resolved_by == "hub"

    # The worker is down when the device dies: the retained status tells it on restart.
    assert worker.stop() == 0
    device.kill()
    device.wait()
    worker.start()
    wait_for(lambda: len(offline()) == 2, 60, "offline alert from the retained status")
    assert [x.state for x in offline()] == [AlertState.OPEN, AlertState.RESOLVED]
    assert worker.stop() == 0
    engine.dispose()
