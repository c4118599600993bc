"""The ``outbox:`` and ``sync:`` sections of the store config: defaults, validation messages
that name the field, and what they build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import parse_config
from edge_agent.errors import ConfigError
from edge_agent.outbox import OutboxLimits
from edge_agent.sync import HttpTransport, MqttTransport, make_transport


def store(**sections: Any) -> dict[str, Any]:
    """A minimal store config with ``sections`` added."""
    return {
        "store_id": "store-1",
        "device_id": "edge-1",
        "model": {"path": "person.onnx"},
        "cameras": [{"id": "cam-1", "source": "rtsp://cam-1/stream"}],
        **sections,
    }


def test_defaults_keep_records_in_the_outbox_with_a_month_of_bounds(tmp_path: Path) -> None:
    cfg = parse_config(store(), tmp_path)
    assert cfg.sync is None
    assert cfg.outbox.synchronous == "full"
    assert cfg.outbox.limits() == OutboxLimits(
        max_bytes=1024 * 1024 * 1024, max_age_s=30 * 86400.0, drop_to_fraction=0.9
    )
    assert cfg.outbox.reserve_bytes == 4 * 1024 * 1024


def test_outbox_section_sets_the_bounds(tmp_path: Path) -> None:
    cfg = parse_config(
        store(outbox={"max_mb": 256, "max_age_s": 86400, "synchronous": "normal"}), tmp_path
    )
    assert cfg.outbox.limits().max_bytes == 256 * 1024 * 1024
    assert cfg.outbox.limits().max_age_s == 86400
    assert cfg.outbox.synchronous == "normal"


@pytest.mark.parametrize(
    ("sync", "message"),
    [
        ({"transport": "http"}, "needs sync.hub_url"),
        ({"transport": "mqtt"}, "needs sync.mqtt_host"),
        ({"mqtt_host": "b", "batch_records": 6000}, "sync.batch_records"),
        ({"mqtt_host": "b", "backoff_initial_s": 5, "backoff_cap_s": 1}, "below backoff_initial"),
        ({"mqtt_host": "b", "mqtt_prot": 1883}, "sync.mqtt_prot"),
    ],
)
def test_sync_section_errors_name_the_field(
    tmp_path: Path, sync: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(store(sync=sync), tmp_path)


def test_sync_section_builds_the_transport_it_names(tmp_path: Path) -> None:
    http = parse_config(store(sync={"transport": "http", "hub_url": "http://hub:8000"}), tmp_path)
    assert http.sync is not None
    t = make_transport(http.sync, "store-1", "edge-1", http_headers={"X-Device": "edge-1"})
    assert isinstance(t, HttpTransport) and t.base_url == "http://hub:8000"
    t.close()

    mqtt = parse_config(
        store(sync={"mqtt_host": "broker", "mqtt_port": 1883, "mqtt_tls": False}), tmp_path
    )
    assert mqtt.sync is not None
    m = make_transport(mqtt.sync, "store-1", "edge-1")
    assert isinstance(m, MqttTransport)
    assert (m.host, m.port, m.client_id) == ("broker", 1883, "edge-store-1-edge-1")
    assert m.topics.telemetry == "retail/v1/store-1/edge-1/telemetry"
