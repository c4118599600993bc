"""The hub's MQTT client credentials, shared by the ingest worker, the status listener and the
readiness check."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from cloud_hub.core.config import HubSettings


def use_credentials(client: mqtt.Client, s: HubSettings) -> None:
    """Give ``client`` the hub's broker user name, password and TLS files, as set."""
    if s.mqtt_username is not None:
        password = s.mqtt_password.get_secret_value() if s.mqtt_password else None
        client.username_pw_set(s.mqtt_username, password)
    if s.mqtt_tls_ca_file is not None:
        client.tls_set(
            ca_certs=str(s.mqtt_tls_ca_file),
            certfile=str(s.mqtt_tls_cert_file) if s.mqtt_tls_cert_file else None,
            keyfile=str(s.mqtt_tls_key_file) if s.mqtt_tls_key_file else None,
        )
