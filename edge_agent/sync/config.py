"""The ``sync:`` section of the store config: how records reach the hub.

Secrets (the MQTT password, an HTTP device token) are not in the config file: the caller
passes them to ``make_transport`` from the environment settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.sync import MAX_BATCH_RECORDS, MAX_COMPRESSED_BATCH_BYTES
from edge_agent.sources.backoff import BackoffPolicy
from edge_agent.sync.http import HttpTransport
from edge_agent.sync.mqtt import MqttTransport


class SyncConfig(BaseModel):
    """Transport, batching and retry settings of the sync to the hub."""

    model_config = ConfigDict(extra="forbid")

    transport: Literal["mqtt", "http"] = Field(
        "mqtt", description="mqtt: through the broker (default); http: POST to the hub API"
    )
    hub_url: str | None = Field(
        None, description="http: the hub's base URL, e.g. https://hub.example.com"
    )
    mqtt_host: str | None = Field(None, description="mqtt: broker host name or address")
    mqtt_port: int = Field(8883, ge=1, le=65535, description="mqtt: broker TCP port")
    mqtt_tls: bool = Field(True, description="mqtt: use TLS (the broker's certificate checked)")
    mqtt_ca_file: Path | None = Field(
        None, description="mqtt: CA bundle (PEM) of the broker's certificate; default: system"
    )
    mqtt_cert_file: Path | None = Field(
        None, description="mqtt: this device's client certificate (PEM), for mutual TLS"
    )
    mqtt_key_file: Path | None = Field(
        None, description="mqtt: the client certificate's private key (PEM)"
    )
    mqtt_username: str | None = Field(None, description="mqtt: user name; default anonymous")
    mqtt_client_id: str | None = Field(
        None, description="mqtt: fixed client id; default edge-{store_id}-{device_id}"
    )
    credentials_file: Path | None = Field(
        None,
        description="this device's hub credentials, written by `retail-edge enroll`: its "
        "secret is the HTTP bearer token and, with the device id as user name, the MQTT "
        "password (RETAIL_EDGE_HUB_TOKEN / RETAIL_EDGE_MQTT_PASSWORD, when set, win)",
    )
    batch_records: int = Field(
        1000, ge=1, le=MAX_BATCH_RECORDS, description="most records in one batch"
    )
    batch_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=MAX_COMPRESSED_BATCH_BYTES // 2,
        description="most JSON bytes of record bodies in one batch",
    )
    ack_timeout_s: float = Field(
        30.0, gt=0, description="seconds to wait for the hub's ack of a batch before resending"
    )
    idle_s: float = Field(1.0, gt=0, description="seconds between polls of an empty outbox")
    drain_on_stop_s: float = Field(
        10.0,
        ge=0,
        description="when `retail-edge run` stops, try this long (s) to send what is pending "
        "(the open minute's partial rollups are written at stop); what is not sent stays in the "
        "outbox for the next start. Keep it under systemd's TimeoutStopSec",
    )
    backoff_initial_s: float = Field(1.0, gt=0, description="first retry delay bound (s)")
    backoff_cap_s: float = Field(60.0, gt=0, description="largest retry delay (s)")

    @model_validator(mode="after")
    def _transport_settings(self) -> SyncConfig:
        if self.transport == "http" and not self.hub_url:
            raise ValueError("sync.transport http needs sync.hub_url (e.g. https://hub.example)")
        if self.transport == "mqtt" and not self.mqtt_host:
            raise ValueError("sync.transport mqtt needs sync.mqtt_host (the broker's address)")
        if (self.mqtt_cert_file is None) != (self.mqtt_key_file is None):
            raise ValueError("sync.mqtt_cert_file and sync.mqtt_key_file go together")
        if self.mqtt_cert_file is not None and not self.mqtt_tls:
            raise ValueError("sync.mqtt_cert_file needs sync.mqtt_tls: true")
        if self.backoff_cap_s < self.backoff_initial_s:
            raise ValueError(
                f"sync.backoff_cap_s {self.backoff_cap_s} is below backoff_initial_s "
                f"{self.backoff_initial_s}"
            )
        return self

    def backoff(self) -> BackoffPolicy:
        """The retry policy (full jitter: the syncer draws the whole delay)."""
        return BackoffPolicy(
            initial_s=self.backoff_initial_s, factor=2.0, cap_s=self.backoff_cap_s, jitter_s=0.0
        )


def make_transport(
    config: SyncConfig,
    store_id: str,
    device_id: str,
    *,
    mqtt_username: str | None = None,
    mqtt_password: str | None = None,
    http_headers: dict[str, str] | None = None,
) -> HttpTransport | MqttTransport:
    """The transport ``config`` names (an MqttTransport still needs ``start()``);
    ``mqtt_username`` overrides ``config.mqtt_username``."""
    if config.transport == "http":
        assert config.hub_url is not None  # checked by the validator
        return HttpTransport(config.hub_url, config.ack_timeout_s, http_headers)
    assert config.mqtt_host is not None
    return MqttTransport(
        config.mqtt_host,
        config.mqtt_port,
        store_id,
        device_id,
        client_id=config.mqtt_client_id,
        username=mqtt_username or config.mqtt_username,
        password=mqtt_password,
        tls=config.mqtt_tls,
        ca_file=None if config.mqtt_ca_file is None else str(config.mqtt_ca_file),
        cert_file=None if config.mqtt_cert_file is None else str(config.mqtt_cert_file),
        key_file=None if config.mqtt_key_file is None else str(config.mqtt_key_file),
        ack_timeout_s=config.ack_timeout_s,
    )
