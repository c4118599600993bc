"""deploy/install-edge.sh run for real into a fresh prefix, against a real hub process with
device auth required, with a real model and a real video as the camera. Then this test is the
service manager: it runs the installed unit's ExecStartPre and ExecStart as systemd would
(working directory, environment, a notify socket with a watchdog), stops the agent with
SIGTERM like `systemctl stop`, starts it again like a restart, and checks the hub got the
box's records under its own credentials.

The venv reuses the test environment's packages (``--base-venv``): pip installs the agent
itself from a copy of this repository but downloads no dependency.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from cloud_hub.migrate import upgrade_database
from tests.cloud_hub.hub_process import HubProcess
from tests.conftest import REPO_ROOT
from tests.services import wait_for

pytestmark = pytest.mark.slow

PACKAGE_FILES = ("pyproject.toml", "README.md", "common", "edge_agent", "cloud_hub", "model_export")
WATCHDOG_S = 2.0  # shorter than the unit's WatchdogSec, so a short run shows several pings


def clean_env() -> dict[str, str]:
    """This environment without the test's PYTHONPATH: the box runs what pip installed."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NOTIFY_SOCKET")}


def unit_service_section(unit: Path) -> dict[str, list[str]]:
    """``key -> values`` of the unit's [Service] section (keys may repeat)."""
    values: dict[str, list[str]] = {}
    section = ""
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


class NotifySocket:
    """The service manager's end of sd_notify: a unix datagram socket collecting messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def poll(self) -> list[str]:
        """Read what arrived; all messages so far."""
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                return self.messages

    def count(self, line: str) -> int:
        return sum(line in m.splitlines() for m in self.poll())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture()
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_database(url)
    process = HubProcess(tmp_path / "hub")
    process.start(url)  # device auth required
    yield process
    process.stop()


def start_service(
    service: dict[str, list[str]], notify: NotifySocket, log: Path
) -> subprocess.Popen[bytes]:
    """Run ExecStartPre, then start ExecStart as systemd would (Type=notify, watchdog)."""
    env = clean_env()
    for assignment in service.get("Environment", []):
        key, _, value = assignment.partition("=")
        env[key] = value
    env.update({"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))})
    cwd = service["WorkingDirectory"][0]
    for pre in service.get("ExecStartPre", []):
        subprocess.run(shlex.split(pre), env=env, cwd=cwd, check=True, timeout=120)
    with log.open("ab") as out:
        return subprocess.Popen(
            shlex.split(service["ExecStart"][0]), env=env, cwd=cwd, stdout=out, stderr=out
        )


def test_install_script_enrolls_and_the_unit_command_syncs(
    hub: HubProcess, assets: Path, tmp_path: Path
) -> None:
    token = subprocess.run(
        [sys.executable, "-m", "cloud_hub.cli", "admin", "enroll-token", "--store", "s1"],
        env={**os.environ, "DATABASE_URL": hub.database_url},
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    source = tmp_path / "release"  # what an installer unpacks on the box
    for name in PACKAGE_FILES:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy(src, source / name)
    prefix = tmp_path / "box"
    video = assets / "videos/one-by-one-person-detection.mp4"
    installed = subprocess.run(
        ["bash", str(REPO_ROOT / "deploy/install-edge.sh"), "--prefix", str(prefix),
         "--hub", hub.url, "--token", token, "--store", "s1", "--device", "box-1",
         "--camera", f"door={video}", "--fps", "5",
         "--model", str(assets / "models/person/yolox_nano.onnx"),
         "--transport", "http", "--no-systemd", "--source", str(source),
         "--python", sys.executable, "--base-venv", sys.prefix],
        env=clean_env(), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "all checks passed" in installed.stdout  # the final `retail-edge doctor`

    # What it installed: the agent in its venv (not this checkout), the model copied, the
    # config from the flags, the credentials private to their owner.
    agent = prefix / "venv/bin/retail-edge"
    assert agent.is_file()
    config = yaml.safe_load((prefix / "etc/store.yaml").read_text())
    assert config["cameras"] == [{"id": "door", "source": str(video), "fps": 5.0}]
    assert config["model"]["path"] == str(prefix / "var/models/yolox_nano.onnx")
    assert (prefix / "var/models/yolox_nano.onnx").is_file()
    creds_path = prefix / "var/credentials.json"
    assert creds_path.stat().st_mode & 0o777 == 0o600
    creds = json.loads(creds_path.read_text())
    assert (creds["store_id"], creds["device_id"]) == ("s1", "box-1")

    unit = prefix / "etc/retail-edge.service"
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    service = unit_service_section(unit)
    exec_start = service["ExecStart"][0]
    assert exec_start in installed.stdout.splitlines()  # --no-systemd prints the command
    assert exec_start == f"{agent} -v run --config {prefix}/etc/store.yaml"
    assert service["Type"] == ["notify"] and service["WatchdogSec"] == ["60"]
    assert service["ReadWritePaths"] == [str(prefix / "var")]

    notify = NotifySocket(tmp_path / "notify.sock")
    log = tmp_path / "agent.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        # First start: READY once up, watchdog pings from the loop, STOPPING on SIGTERM.
        proc = start_service(service, notify, log)
        wait_for(lambda: notify.count("READY=1") == 1, 120, "READY=1")
        wait_for(lambda: notify.count("WATCHDOG=1") >= 3, 60, "3 watchdog pings")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
        assert notify.count("STOPPING=1") == 1
        first = json.loads(log.read_text().strip().splitlines()[-1])
        assert first["frames"] > 0 and first["records_appended"] > 0, first

        # What the stop flushed reached the hub before the process exited (sync drains at
        # stop), so the box's outbox is empty.
        auth = {"Authorization": f"Bearer {creds['device_secret']}"}

        def hub_max_seq() -> int:
            resp = httpx.get(f"{hub.url}/api/v1/devices/box-1/sync", headers=auth, timeout=5)
            return int(resp.json()["max_seq"]) if resp.status_code == 200 else 0

        assert first["records_pending"] == 0, first
        assert hub_max_seq() == first["records_appended"]

        # Restart (Restart=on-failure, or the next boot): up again, then a clean stop whose
        # records reach the hub as well.
        proc = start_service(service, notify, log)
        wait_for(lambda: notify.count("READY=1") == 2, 120, "READY=1 after the restart")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
        second = json.loads(log.read_text().strip().splitlines()[-1])
        assert second["records_pending"] == 0, second
        assert hub_max_seq() == first["records_appended"] + second["records_appended"]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        notify.close()
