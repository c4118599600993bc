"""sd_notify from edge_agent/watchdog.py to a real unix datagram socket, as systemd listens.

The agent's own use of it (READY, pings from the loop, STOPPING) runs in
tests/deploy/test_install_edge.py under the installed unit's command."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.watchdog import ServiceNotifier


@pytest.fixture()
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(5)
    yield str(path), sock
    sock.close()


def test_ready_status_and_watchdog_pings_at_half_the_timeout(
    listener: tuple[str, socket.socket],
) -> None:
    path, sock = listener
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}
    notifier = ServiceNotifier.from_environment(env)
    assert notifier.enabled and notifier.watchdog_timeout_s == 10.0
    assert notifier.ready("2 camera(s)")
    assert sock.recv(4096) == b"READY=1\nSTATUS=2 camera(s)"
    # Pings at t = 0, 5, 10 (half the 10 s timeout), none in between.
    sent = [t for t in (0.0, 1.0, 4.9, 5.0, 7.0, 10.0) if notifier.tick(100.0 + t)]
    assert sent == [0.0, 5.0, 10.0]
    assert [sock.recv(4096) for _ in sent] == [b"WATCHDOG=1"] * 3
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_socket_address() -> None:
    name = f"retail-cv-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert ServiceNotifier.from_environment({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(4096) == b"READY=1"


def test_silent_without_a_service_manager_or_for_another_pid(
    listener: tuple[str, socket.socket],
) -> None:
    path, sock = listener
    assert not ServiceNotifier.from_environment({}).ready()
    assert not ServiceNotifier.from_environment({}).tick(0.0)
    # The watchdog is meant for another process: READY still goes, pings do not.
    other = ServiceNotifier.from_environment(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    )
    assert other.watchdog_timeout_s is None and not other.tick(0.0)
    # A socket that is gone: False and a warning, never an exception in the agent's loop.
    sock.close()
    Path(path).unlink()
    assert not ServiceNotifier(path, 1.0).tick(0.0)
