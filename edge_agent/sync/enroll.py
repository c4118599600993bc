"""Enrollment: trade the installer's one-time token for this box's own hub credentials.

``enroll`` posts the token and the device id to the hub (``POST /api/v1/devices/enroll``),
and writes what comes back to a credentials file readable by its owner only (0600), atomically,
so a crash never leaves half a file. The sync then sends the device secret as
``Authorization: Bearer`` (``load_credentials``). The secret never appears in a log line.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from edge_agent.errors import ConfigError, RetailCVError

log = logging.getLogger(__name__)

ENROLL_PATH = "/api/v1/devices/enroll"


class EnrollmentFailedError(RetailCVError):
    """The hub refused the enrollment or could not be reached (the message says which)."""


class DeviceCredentials(BaseModel):
    """This box's identity at the hub, as enrollment returned it. ``enrolled_at``: UNIX s."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hub_url: str
    store_id: str
    device_id: str
    device_secret: SecretStr
    enrolled_at: float

    def http_headers(self) -> dict[str, str]:
        """The bearer header for the hub's HTTP API."""
        return {"Authorization": f"Bearer {self.device_secret.get_secret_value()}"}


def enroll(
    hub_url: str,
    token: str,
    device_id: str,
    path: Path,
    *,
    expected_store: str | None = None,
    timeout_s: float = 30.0,
) -> DeviceCredentials:
    """Enroll ``device_id`` with the one-time ``token`` and write the credentials to ``path``.

    Raises:
        EnrollmentFailedError: the hub is unreachable or refused (token unknown, used or
            expired; device id bound to another store), or the token is for another store
            than ``expected_store``.
    """
    url = hub_url.rstrip("/") + ENROLL_PATH
    try:
        resp = httpx.post(url, json={"token": token, "device_id": device_id}, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise EnrollmentFailedError(f"hub {hub_url} unreachable: {exc}") from exc
    if resp.status_code != 201:
        try:
            detail = str(resp.json().get("detail", resp.text[:200]))
        except ValueError:
            detail = resp.text[:200]
        raise EnrollmentFailedError(
            f"hub {hub_url} refused enrollment ({resp.status_code}): {detail}"
        )
    body = resp.json()
    creds = DeviceCredentials(
        hub_url=hub_url,
        store_id=body["store_id"],
        device_id=body["device_id"],
        device_secret=body["device_secret"],
        enrolled_at=time.time(),
    )
    if expected_store is not None and creds.store_id != expected_store:
        raise EnrollmentFailedError(
            f"the token enrolled this box into store {creds.store_id!r}, but its config says "
            f"{expected_store!r}: fix the config's store_id or ask HQ for a token for "
            f"{expected_store!r} (the hub now holds a credential for {device_id!r} in "
            f"{creds.store_id!r}; an admin can revoke it)"
        )
    write_credentials(creds, path)
    log.info("enrolled device %s into store %s; credentials in %s", device_id, creds.store_id, path)
    return creds


def write_credentials(creds: DeviceCredentials, path: Path) -> None:
    """Write ``creds`` to ``path`` (mode 0600) atomically: a temp file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**creds.model_dump(), "device_secret": creds.device_secret.get_secret_value()}
    fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_credentials(path: Path, store_id: str, device_id: str) -> DeviceCredentials:
    """The credentials in ``path``, checked to belong to this store and device.

    Raises:
        ConfigError: the file is missing or unreadable, or is another device's.
    """
    try:
        creds = DeviceCredentials.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no credentials file at {path}: enroll this box first "
            "(`retail-edge enroll --config CONFIG --token TOKEN`)"
        ) from exc
    except (OSError, ValidationError) as exc:
        raise ConfigError(f"credentials file {path} is unreadable: {exc}") from exc
    if (creds.store_id, creds.device_id) != (store_id, device_id):
        raise ConfigError(
            f"credentials file {path} is for store {creds.store_id!r} device "
            f"{creds.device_id!r}, but the config says store {store_id!r} device {device_id!r}"
        )
    return creds
