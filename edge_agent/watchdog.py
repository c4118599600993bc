"""Tell the service manager the agent is up and its loop alive (systemd ``Type=notify`` with
``WatchdogSec=``), without libsystemd.

The sd_notify protocol: one datagram per message to the unix socket named by ``NOTIFY_SOCKET``
(a path, or ``@name`` for Linux's abstract namespace), text lines such as ``READY=1``,
``WATCHDOG=1``, ``STATUS=...``, ``STOPPING=1``. With ``WatchdogSec=`` systemd sets
``WATCHDOG_USEC``; a service that stays silent longer than that is killed and, with
``Restart=on-failure``, started again. The agent pings from its main loop, so a loop stuck in a
camera read or an inference call stops the pings. Without ``NOTIFY_SOCKET`` (run by hand, or
by another supervisor) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class ServiceNotifier:
    """Sends sd_notify messages; pings the watchdog at half its timeout, as systemd advises."""

    def __init__(self, socket_path: str | None, watchdog_timeout_s: float | None = None) -> None:
        self.socket_path = socket_path
        self.watchdog_timeout_s = watchdog_timeout_s
        self._next_ping: float | None = None
        self._failed = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ServiceNotifier:
        """The notifier systemd set up for this process (``NOTIFY_SOCKET``, ``WATCHDOG_USEC``
        and ``WATCHDOG_PID``); a silent one when there is none."""
        env = os.environ if environ is None else environ
        timeout_s = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process the watchdog is meant for (not a child of ours).
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            timeout_s = int(usec) / 1e6
        return cls(env.get("NOTIFY_SOCKET") or None, timeout_s)

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens."""
        return self.socket_path is not None

    def notify(self, message: str) -> bool:
        """Send ``message`` (``KEY=value`` lines); False when no one listens or it failed."""
        if self.socket_path is None:
            return False
        address = self.socket_path
        if address.startswith("@"):
            address = "\0" + address[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(address)
                s.sendall(message.encode("utf-8"))
        except OSError as exc:
            if not self._failed:  # once: the service manager acts on the silence anyway
                log.warning("cannot notify the service manager at %s: %s", self.socket_path, exc)
            self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str = "") -> bool:
        """Start-up is done (``READY=1``), with an optional status line."""
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, status: str) -> bool:
        """A one-line status for ``systemctl status``."""
        return self.notify(f"STATUS={status}")

    def tick(self, now_s: float) -> bool:
        """Ping the watchdog if half its timeout passed since the last ping; whether it did.

        ``now_s``: a monotonic clock, seconds."""
        if self.watchdog_timeout_s is None or self.socket_path is None:
            return False
        if self._next_ping is not None and now_s < self._next_ping:
            return False
        self._next_ping = now_s + self.watchdog_timeout_s / 2
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        """Shutdown has begun (``STOPPING=1``)."""
        return self.notify("STOPPING=1")
