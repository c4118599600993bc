"""`retail-edge doctor` on real things: a real model, a real video as the camera, a real hub
process with device auth required. A good box passes every check; a missing model, a dead
camera, an unreachable hub or broker, and credentials the hub refuses each fail with a line that
says what to fix."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cloud_hub.migrate import upgrade_database
from edge_agent.doctor import _check_clock
from edge_agent.sync.enroll import DeviceCredentials, write_credentials
from tests.cloud_hub.hub_process import HubProcess
from tests.services import free_port

STORE, DEVICE = "s1", "box-1"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    workdir = tmp_path_factory.mktemp("doctor-hub")
    url = f"sqlite:///{workdir / 'hub.db'}"
    upgrade_database(url)
    process = HubProcess(workdir)
    process.start(url)  # device auth required
    yield process
    process.stop()


def doctor(config: dict[str, object], folder: Path) -> tuple[int, dict[str, str], str]:
    """Run `retail-edge doctor`; exit code, {check: its line and fix}, and the whole output."""
    path = folder / "store.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", "doctor", "--config", str(path),
         "--camera-timeout", "5"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    checks: dict[str, str] = {}
    name = ""
    for line in done.stdout.splitlines():
        if line.startswith(("PASS", "FAIL", "SKIP")):
            name = line.split("  ", 1)[1].split(":", 1)[0]
            checks[name] = line
        elif line.strip().startswith("fix:"):
            checks[name] += "\n" + line
    return done.returncode, checks, done.stdout + done.stderr


def box_config(assets: Path, folder: Path, hub_url: str) -> dict[str, object]:
    return {
        "store_id": STORE,
        "device_id": DEVICE,
        "model": {"path": str(assets / "models/person/yolox_nano.onnx")},
        "cameras": [
            {"id": "door", "source": str(assets / "videos/one-by-one-person-detection.mp4")}
        ],
        "outbox": {"path": str(folder / "data/outbox.sqlite3")},
        "sync": {
            "transport": "http",
            "hub_url": hub_url,
            "credentials_file": str(folder / "data/credentials.json"),
        },
    }


def enrolled(hub: HubProcess, folder: Path, secret: str) -> None:
    creds = DeviceCredentials(
        hub_url=hub.url,
        store_id=STORE,
        device_id=DEVICE,
        device_secret=secret,  # type: ignore[arg-type]
        enrolled_at=time.time(),
    )
    write_credentials(creds, folder / "data/credentials.json")


def test_a_good_box_passes_and_refused_credentials_fail(
    hub: HubProcess, assets: Path, tmp_path: Path
) -> None:
    enrolled(hub, tmp_path, hub.enroll(STORE, DEVICE))
    code, checks, out = doctor(box_config(assets, tmp_path, hub.url), tmp_path)
    assert code == 0, out
    for name in ("config", "model", "camera door", "disk", "clock", "hub"):
        assert checks[name].startswith("PASS"), out
    assert "768x432 frame" in checks["camera door"]
    assert "one inference in" in checks["model"]
    assert checks["broker"].startswith("SKIP")  # transport http
    assert out.rstrip().endswith("all checks passed")

    enrolled(hub, tmp_path, "rcd_not-this-box")
    code, checks, out = doctor(box_config(assets, tmp_path, hub.url), tmp_path)
    assert code == 1, out
    assert checks["hub"].startswith("FAIL") and "refused this box's credentials (401)" in out
    assert "fix: enroll this box: `retail-edge enroll" in checks["hub"]


def test_missing_model_dead_camera_and_unreachable_hub_and_broker_each_fail(
    assets: Path, tmp_path: Path
) -> None:
    config = box_config(assets, tmp_path, f"http://127.0.0.1:{free_port()}")
    config["model"] = {"path": str(tmp_path / "models/missing.onnx")}
    dead = f"tcp://127.0.0.1:{free_port()}"
    config["cameras"] = [
        {"id": "door", "source": str(assets / "videos/one-by-one-person-detection.mp4")},
        {"id": "aisle", "source": dead},
    ]
    config["sync"] = {
        **config["sync"],  # type: ignore[dict-item]
        "transport": "mqtt",
        "mqtt_host": "127.0.0.1",
        "mqtt_port": free_port(),
        "mqtt_tls": False,
    }
    enrolled(HubProcess(tmp_path), tmp_path, "rcd_whatever")
    code, checks, out = doctor(config, tmp_path)
    assert code == 1, out
    assert checks["camera door"].startswith("PASS"), out  # one dead camera spoils nothing else
    expected = {
        "model": ("model file not found", "fix: copy the model there"),
        "camera aisle": ("cannot open stream", "fix: check the camera is powered"),
        "hub": ("cannot reach the hub", "fix: check sync.hub_url"),
        "broker": ("cannot reach the broker", "fix: check sync.mqtt_host"),
    }
    for name, (seen, fix) in expected.items():
        assert checks[name].startswith("FAIL"), out
        assert seen in checks[name] and fix in checks[name], checks[name]
    assert checks["clock"].startswith("SKIP")
    assert "4 check(s) failed: model, camera aisle, hub, broker" in out


def test_invalid_config_fails_first_and_alone(tmp_path: Path) -> None:
    code, checks, out = doctor({"store_id": "s 1", "cameras": []}, tmp_path)
    assert code == 1
    assert list(checks) == ["config"] and checks["config"].startswith("FAIL")
    assert "fix: correct the fields named above" in out


def test_clock_skew_is_measured_against_the_hub_date() -> None:
    date = "Tue, 24 Nov 2026 10:00:00 GMT"
    hub_s = 1795514400.0
    assert _check_clock(date, hub_s + 3, "h").status.value == "PASS"
    late = _check_clock(date, hub_s - 120, "h")
    assert late.status.value == "FAIL" and "120 s behind the hub" in late.detail
    assert late.fix is not None and "timedatectl set-ntp true" in late.fix
