"""HubSettings: DATABASE_URL without a prefix, everything else RETAIL_HUB_*, checked at load."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cloud_hub.core.config import HubSettings
from common.sync import MAX_COMPRESSED_BATCH_BYTES


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://hub:pw@db:5432/hub")
    monkeypatch.setenv("RETAIL_HUB_MQTT_HOST", "broker.hq")
    monkeypatch.setenv("RETAIL_HUB_MQTT_PORT", "8883")
    monkeypatch.setenv("RETAIL_HUB_WORKER_NAME", "w7")
    s = HubSettings()
    assert s.database_url == "postgresql+psycopg://hub:pw@db:5432/hub"  # psycopg 3, always
    assert (s.mqtt_host, s.mqtt_port, s.worker_name) == ("broker.hq", 8883, "w7")
    assert s.max_body_bytes == MAX_COMPRESSED_BATCH_BYTES


def test_defaults_need_nothing_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert HubSettings().database_url == "sqlite:///./hub.db"


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"RETAIL_HUB_MQTT_TLS_CERT_FILE": "/c.pem"}, "KEY_FILE"),
        ({"RETAIL_HUB_MQTT_PORT": "70000"}, "mqtt_port"),
    ],
)
def test_bad_settings_name_the_field(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], field: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValidationError, match=field):
        HubSettings()
