"""Mosquitto configuration for the fleet: a TLS listener, one password per enrolled device, and
per-device ACLs, all from the hub's database.

``write_broker_config`` (``retail-hub broker-config --out DIR``) writes three files:

- ``mosquitto.conf``: the listener (TLS when given a CA, certificate and key), no anonymous
  clients, the password and ACL files, persistence.
- ``passwd`` (mode 0600): ``device_id:$7$...`` for every enrolled, unrevoked device, straight
  from ``device_credentials.broker_password_hash`` (the hub never holds the secret itself), and
  the hub workers' user, its password (``RETAIL_HUB_MQTT_PASSWORD``) hashed the same way.
- ``acl``: a device (MQTT user name = device id) may publish only its own ``telemetry``,
  ``status`` and ``state`` and read only its own ``ack`` and ``desired``; the hub user reads
  every device's telemetry, status and state (its workers use the shared subscription) and
  writes acks and desired state.

Re-run it after enrollments and revocations, then send SIGHUP to Mosquitto: it re-reads both
files, cuts off connected clients whose password no longer matches (a revoked device at once)
and applies the new ACLs. Each file is replaced atomically, so the broker never reads half of
one.

Mosquitto's ACL file never refuses a SUBSCRIBE: a device may subscribe to another device's
``desired`` and gets a granted SUBACK, but the broker checks every delivery against the ACL, so
nothing published there ever reaches it. A denied publish of an MQTT v5 client gets the
PUBACK reason "Not authorized" and goes nowhere.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.engine import Connection

from cloud_hub.core.security import mosquitto_password_hash
from cloud_hub.models import DEVICE_CREDENTIALS
from cloud_hub.services.api_keys import STORE_ID_PATTERN
from common.topics import DeviceTopics

log = logging.getLogger(__name__)

CONF_NAME = "mosquitto.conf"
PASSWD_NAME = "passwd"
ACL_NAME = "acl"
TLS_PORT = 8883
PLAIN_PORT = 1883
# Per client; the hub workers' queue is what fills while they are down. Mosquitto's default
# (1000) would drop batches of a fleet during a short worker outage (the edge re-sends them,
# but only after its ack timeout).
MAX_QUEUED_MESSAGES = 100_000

HEADER = (
    "# Written by `retail-hub broker-config`; do not edit by hand. Re-run it after enrollments\n"
    "# and revocations, then send SIGHUP to mosquitto (systemctl reload mosquitto, or\n"
    "# docker compose kill -s HUP mosquitto) to apply them.\n"
)


class BrokerConfigError(ValueError):
    """A broker configuration that cannot be written (the message says what to change)."""


@dataclass(frozen=True, slots=True)
class BrokerDevice:
    """An enrolled, unrevoked device as the broker knows it: its user name is its device id."""

    device_id: str
    store_id: str
    password_hash: str  # Mosquitto $7$ (PBKDF2-SHA512) of the device secret


class BrokerTls(BaseModel):
    """The listener's TLS files, as paths on the broker's host (or in its container)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path = Field(description="CA bundle (PEM) that clients' certificates chain to")
    cert_file: Path = Field(description="the broker's certificate (PEM)")
    key_file: Path = Field(description="the broker's private key (PEM)")


class BrokerOptions(BaseModel):
    """How the broker listens and where it keeps its files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tls: BrokerTls | None = Field(None, description="None: a plain listener (passwords in clear)")
    port: int | None = Field(
        None, ge=1, le=65535, description="listener port; default 8883 with TLS, 1883 without"
    )
    bind_address: str | None = Field(None, description="address to listen on; default: all")
    hub_user: str = Field("hub", pattern=STORE_ID_PATTERN, description="hub workers' user name")
    config_dir: Path | None = Field(
        None,
        description="where passwd and acl are as the broker sees them (a container path); "
        "default: the folder they are written to",
    )
    data_dir: Path = Field(
        Path("/var/lib/mosquitto"), description="persistence folder (queued messages, sessions)"
    )
    run_as: str | None = Field(
        None,
        description="account mosquitto drops to when started as root (its `user` option); it "
        "must read passwd and acl and write data_dir. None: mosquitto's default (mosquitto)",
    )

    @property
    def listener_port(self) -> int:
        """The port, with its default."""
        if self.port is not None:
            return self.port
        return TLS_PORT if self.tls is not None else PLAIN_PORT


@dataclass(frozen=True, slots=True)
class BrokerConfigFiles:
    """What ``write_broker_config`` wrote."""

    conf: Path
    passwd: Path
    acl: Path
    devices: int  # devices in passwd and acl


def enrolled_devices(conn: Connection) -> list[BrokerDevice]:
    """Every device with an unrevoked credential, by device id."""
    c = DEVICE_CREDENTIALS.c
    rows = conn.execute(
        select(c.device_id, c.store_id, c.broker_password_hash)
        .where(c.revoked_at.is_(None))
        .order_by(c.device_id)
    ).all()
    return [BrokerDevice(str(d), str(s), str(h)) for d, s, h in rows]


def _check_names(devices: list[BrokerDevice], hub_user: str) -> None:
    for d in devices:
        if d.device_id == hub_user:
            raise BrokerConfigError(
                f"device {d.device_id!r} has the hub workers' MQTT user name; choose another "
                "--hub-user (and RETAIL_HUB_MQTT_USERNAME)"
            )
        for value in (d.device_id, d.store_id):
            # Ids become user names and topic levels: no wildcard, separator or colon.
            if not re.match(STORE_ID_PATTERN, value):
                raise BrokerConfigError(f"id {value!r} of device {d.device_id!r} is not valid")


def render_passwd(devices: list[BrokerDevice], hub_user: str, hub_password_hash: str) -> str:
    """The password file: the hub user, then one ``device_id:hash`` line per device."""
    _check_names(devices, hub_user)
    lines = [f"{hub_user}:{hub_password_hash}"]
    lines += [f"{d.device_id}:{d.password_hash}" for d in devices]
    return "\n".join(lines) + "\n"


def render_acl(devices: list[BrokerDevice], hub_user: str) -> str:
    """The ACL file: the hub user's rights over every device, then each device's own topics."""
    _check_names(devices, hub_user)
    every = DeviceTopics(store_id="+", device_id="+")
    lines = [
        HEADER.rstrip("\n"),
        "# A device (user name = device id) publishes only its own telemetry, status and state",
        "# and reads only its own ack and desired; the hub reads all devices and answers them.",
        "",
        f"user {hub_user}",
        f"topic read {every.telemetry}",
        f"topic read {every.status}",
        f"topic read {every.state}",
        f"topic write {every.ack}",
        f"topic write {every.desired}",
    ]
    for d in devices:
        t = DeviceTopics(store_id=d.store_id, device_id=d.device_id)
        lines += [
            "",
            f"user {d.device_id}",
            f"topic write {t.telemetry}",
            f"topic write {t.status}",
            f"topic write {t.state}",
            f"topic read {t.ack}",
            f"topic read {t.desired}",
        ]
    return "\n".join(lines) + "\n"


def render_mosquitto_conf(options: BrokerOptions, files_dir: Path) -> str:
    """``mosquitto.conf`` for ``options``; passwd and acl are read from ``files_dir``."""
    bind = f" {options.bind_address}" if options.bind_address else ""
    lines = [
        HEADER.rstrip("\n"),
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {files_dir / PASSWD_NAME}",
        f"acl_file {files_dir / ACL_NAME}",
        "",
        f"listener {options.listener_port}{bind}",
    ]
    if options.tls is None:
        lines.append("# No TLS: passwords and telemetry cross the network in clear.")
    else:
        lines += [
            f"cafile {options.tls.ca_file}",
            f"certfile {options.tls.cert_file}",
            f"keyfile {options.tls.key_file}",
            "tls_version tlsv1.2",
        ]
    lines += [
        "",
        "# Edge boxes and hub workers keep persistent sessions: what is queued for them while",
        "# they are away (acks, batches) survives a broker restart.",
        "persistence true",
        f"persistence_location {str(options.data_dir).rstrip('/')}/",
        "autosave_interval 60",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
    ]
    if options.run_as is not None:
        lines.append(f"user {options.run_as}")
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str, mode: int, owner: str | None) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            entry = pwd.getpwnam(owner)
            os.fchown(fd, entry.pw_uid, entry.pw_gid)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_owner(run_as: str | None) -> str | None:
    """The account to hand passwd and acl to: ``run_as`` when we are root and it exists."""
    if run_as is None or os.geteuid() != 0 or run_as == "root":
        return None
    try:
        pwd.getpwnam(run_as)
    except KeyError:
        log.warning("no user %r here: passwd and acl stay owned by root", run_as)
        return None
    return run_as


def write_broker_config(
    out_dir: Path,
    devices: list[BrokerDevice],
    options: BrokerOptions,
    hub_password: str,
) -> BrokerConfigFiles:
    """Write ``mosquitto.conf``, ``passwd`` (0600) and ``acl`` into ``out_dir``, each atomically.

    When run as root with ``options.run_as`` an existing account, passwd and acl are handed to
    it, so the broker can read them again on SIGHUP after dropping privileges.

    Raises:
        BrokerConfigError: an empty hub password, or a device id equal to the hub user name.
    """
    if not hub_password:
        raise BrokerConfigError(
            "no broker password for the hub workers: set RETAIL_HUB_MQTT_PASSWORD (the workers "
            "read the same setting)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    out_dir = out_dir.resolve()
    passwd = render_passwd(devices, options.hub_user, mosquitto_password_hash(hub_password))
    acl = render_acl(devices, options.hub_user)
    conf = render_mosquitto_conf(options, options.config_dir or out_dir)
    owner = _file_owner(options.run_as)
    files = BrokerConfigFiles(out_dir / CONF_NAME, out_dir / PASSWD_NAME, out_dir / ACL_NAME, 0)
    # passwd and acl first: a broker (re)started meanwhile never reads a conf naming files
    # that are not there yet.
    _write_atomic(files.passwd, passwd, 0o600, owner)
    _write_atomic(files.acl, acl, 0o644, owner)
    _write_atomic(files.conf, conf, 0o644, None)
    log.info("broker config for %d device(s) written to %s", len(devices), out_dir)
    return BrokerConfigFiles(files.conf, files.passwd, files.acl, len(devices))
