"""The sync of one store box as its config describes it: transport, seq resume, syncer thread.

``SyncSession(config, outbox)`` builds the transport from the ``sync:`` section and the
secrets from the environment, starts it (MQTT connects in the background), asks the hub over
HTTP where this device's seqs stand so a new or restored outbox file never reuses seqs, and runs
the ``Syncer`` thread until ``stop()``. ``drain`` sends everything pending and returns.
"""

from __future__ import annotations

import logging
from types import TracebackType

from edge_agent.config import StoreConfig
from edge_agent.errors import ConfigError
from edge_agent.outbox.store import Outbox
from edge_agent.settings import EdgeSecrets
from edge_agent.sync.config import make_transport
from edge_agent.sync.enroll import load_credentials
from edge_agent.sync.errors import SyncError, TransportError
from edge_agent.sync.http import HttpTransport
from edge_agent.sync.mqtt import MqttTransport
from edge_agent.sync.syncer import Syncer, SyncResult

log = logging.getLogger(__name__)


class SyncSession:
    """Transport plus ``Syncer`` for one outbox, started and stopped together."""

    def __init__(
        self, config: StoreConfig, outbox: Outbox, secrets: EdgeSecrets | None = None
    ) -> None:
        if config.sync is None:
            raise ConfigError(
                f"store {config.store_id}: no sync section in the config; add sync: with "
                "transport http (hub_url) or mqtt (mqtt_host)"
            )
        self.config = config
        self.outbox = outbox
        sync = config.sync
        secrets = secrets or EdgeSecrets()
        headers = secrets.http_headers()
        password = secrets.mqtt_password_value()
        username = sync.mqtt_username
        if sync.credentials_file is not None:
            # Enrolled: the device secret is the hub bearer token and, with the device id as
            # user name, the broker password (`retail-hub broker-config`). The environment wins.
            creds = load_credentials(sync.credentials_file, config.store_id, config.device_id)
            headers = headers or creds.http_headers()
            if password is None:
                password = creds.device_secret.get_secret_value()
                username = username or creds.device_id
        self.transport = make_transport(
            sync,
            config.store_id,
            config.device_id,
            mqtt_username=username,
            mqtt_password=password,
            http_headers=headers,
        )
        self.syncer = Syncer(
            outbox,
            self.transport,
            batch_records=sync.batch_records,
            batch_bytes=sync.batch_bytes,
            backoff=sync.backoff(),
            idle_s=sync.idle_s,
        )
        self._started = False

    def open(self) -> None:
        """Connect the transport and line the outbox's seqs up with the hub's (HTTP only)."""
        if isinstance(self.transport, MqttTransport):
            self.transport.start()
        else:
            self._resume_seqs(self.transport)

    def _resume_seqs(self, transport: HttpTransport) -> None:
        try:
            self.outbox.resume_above(transport.hub_max_seq(self.config.device_id))
        except TransportError as exc:
            # Only a new or restored outbox file can collide with seqs the hub holds; the
            # usual case (the same file as before) is safe, so sync starts anyway, loudly.
            log.warning(
                "could not ask the hub where device %s's seqs stand (%s); if this box's outbox "
                "file was replaced, restart once the hub is reachable",
                self.config.device_id,
                exc,
            )

    def start(self) -> None:
        """``open()`` and run the syncer thread."""
        self.open()
        self.syncer.start()
        self._started = True

    def notify(self) -> None:
        """Records were appended: send them without waiting for the idle poll."""
        self.syncer.notify()

    def drain(self, timeout_s: float) -> SyncResult:
        """Send everything pending (after ``open()``); raises SyncError after ``timeout_s``."""
        return self.syncer.drain(timeout_s)

    def stop(self, drain_s: float = 0.0) -> None:
        """Stop the syncer thread, then (``drain_s`` > 0) try that long to send what is still
        pending, and close the transport. What is not sent stays in the outbox."""
        if self._started:
            self.syncer.stop()
            self._started = False
            if drain_s > 0:
                try:
                    self.syncer.drain(drain_s)
                except SyncError as exc:
                    log.warning("records stay in the outbox for the next start: %s", exc)
        if isinstance(self.transport, MqttTransport):
            self.transport.stop()
        else:
            self.transport.close()

    def __enter__(self) -> SyncSession:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
