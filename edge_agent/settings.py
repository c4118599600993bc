"""Edge settings from the environment: the secrets that never go in the store config file.

One pydantic-settings object, read once at start (``EdgeSecrets()``), prefix ``RETAIL_EDGE_``:
``RETAIL_EDGE_MQTT_PASSWORD`` (the broker password of this device) and
``RETAIL_EDGE_HUB_TOKEN`` (sent as ``Authorization: Bearer`` to the hub's HTTP API), and
``RETAIL_EDGE_ENROLL_TOKEN`` (the one-time token ``retail-edge enroll`` trades, so it need not
be on a command line that every local user can read). All are ``SecretStr``, so they never
show in a repr or a log line.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EdgeSecrets(BaseSettings):
    """Credentials of this device, from the environment."""

    model_config = SettingsConfigDict(env_prefix="RETAIL_EDGE_", extra="ignore", frozen=True)

    mqtt_password: SecretStr | None = Field(None, description="broker password of this device")
    hub_token: SecretStr | None = Field(None, description="bearer token for the hub's HTTP API")
    enroll_token: SecretStr | None = Field(
        None, description="one-time enrollment token for `retail-edge enroll`"
    )

    def http_headers(self) -> dict[str, str]:
        """Headers for the hub's HTTP API (the bearer token, when set)."""
        if self.hub_token is None:
            return {}
        return {"Authorization": f"Bearer {self.hub_token.get_secret_value()}"}

    def mqtt_password_value(self) -> str | None:
        """The broker password in clear, for the MQTT client only."""
        return None if self.mqtt_password is None else self.mqtt_password.get_secret_value()
